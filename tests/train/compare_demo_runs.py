"""Compares two gcl_demo results.json files run by one process and by the ranks of an MPI job.

    python3 compare_demo_runs.py SINGLE/results.json RANKS/results.json

Prints the largest differences (final image loss, relative; mean Dice per test set, absolute) and
exits 1 when a run is missing, a probe accuracy differs, a final image loss differs by more than
1e-2 (relative, or 1e-3 absolute near zero) or a mean Dice by more than 0.02. GradFilter's top-k
ranking turns the ranks' other order of sums into another pixel pair now and then, which moved
the losses up to 4e-3 (docs/distributed.md); ranks that contrasted their own share alone would
have losses near log(2b - 1) instead of log(2B - 1), tens of percent away.
"""
import json
import math
import sys


def main(single_path, ranks_path):
    single = json.load(open(single_path))["runs"]
    ranks = json.load(open(ranks_path))["runs"]
    if len(single) != len(ranks) or len(single) < 3:
        print(f"expected the same runs (at least 3), got {len(single)} and {len(ranks)}")
        return 1
    bad, loss_diff, dice_diff = [], 0.0, 0.0
    for a, b in zip(single, ranks):
        if a["pretrain"]:
            for k, (x, y) in enumerate(zip(a["pretrain"]["final_image_loss"], b["pretrain"]["final_image_loss"])):
                loss_diff = max(loss_diff, abs(x - y) / abs(x))
                if not math.isclose(x, y, rel_tol=1e-2, abs_tol=1e-3):
                    bad.append((a["method"], "loss", k))
            if a["pretrain"]["probe_accuracy"] != b["pretrain"]["probe_accuracy"]:
                bad.append((a["method"], "probe"))
        for test_set, dice in a["dice"].items():
            d = abs(dice["mean"] - b["dice"][test_set]["mean"])
            dice_diff = max(dice_diff, d)
            if d > 0.02:
                bad.append((a["method"], "dice", test_set))
    print(f"largest differences: final image loss {loss_diff:.2g} relative, mean Dice {dice_diff:.2g}")
    print(f"one process vs ranks differ in {bad}" if bad else "one process and ranks agree")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
