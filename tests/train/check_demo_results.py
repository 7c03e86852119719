#!/usr/bin/env python3
"""Checks gcl_demo's results.json: every pre-trained run learned every meta label.

For each run with a pre-training and each meta label m: final_image_loss[m] at least LOSS_MARGIN
below log_2b_minus_1 (the loss of a collapsed embedding), and probe_accuracy[m] at least
PROBE_MARGIN above probe_chance[m]. Exits 1 with the failing runs named.

usage: check_demo_results.py results.json
"""
import argparse
import json
import sys

LOSS_MARGIN = 0.5
PROBE_MARGIN = 0.2


def problems(results):
    out = []
    pretrained = [r for r in results["runs"] if r.get("pretrain")]
    if not pretrained:
        return ["no pre-trained run in results.json"]
    for run in pretrained:
        p = run["pretrain"]
        name = f'{run["method"]} (seed {run["seed"]})'
        losses, labels = p["final_image_loss"], p["labels"]
        if len(p["probe_accuracy"]) != len(labels) or len(losses) != len(labels):
            out.append(f"{name}: {len(labels)} labels, {len(losses)} losses, {len(p['probe_accuracy'])} probes")
            continue
        for m, label in enumerate(labels):
            loss_met = losses[m] <= p["log_2b_minus_1"] - LOSS_MARGIN
            print(f"{name}: {label} image loss {losses[m]:.3f} (log(2B-1) {p['log_2b_minus_1']:.3f}, "
                  f"{'met' if loss_met else 'NOT met'}), "
                  f"probe {p['probe_accuracy'][m]:.3f} (chance {p['probe_chance'][m]:.3f})")
            if not loss_met:
                out.append(f"{name}: {label} image loss {losses[m]:.3f} is not {LOSS_MARGIN} below "
                           f"log(2B-1) = {p['log_2b_minus_1']:.3f}")
            acc, chance = p["probe_accuracy"][m], p["probe_chance"][m]
            if not acc >= chance + PROBE_MARGIN:
                out.append(f"{name}: {label} probe accuracy {acc:.3f} is not {PROBE_MARGIN} above chance {chance:.3f}")
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results")
    args = parser.parse_args()
    with open(args.results) as f:
        found = problems(json.load(f))
    for line in found:
        print(line)
    if found:
        sys.exit(1)
    print("every pre-trained run's probe is above chance for every meta label, and every loss below collapse")


if __name__ == "__main__":
    main()
