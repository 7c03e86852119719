"""Runs the `gcl` program the way a user does and checks what it answers and writes.

    run_programs.py usage|end_to_end GCL_BINARY WORK_DIR

usage:       --help exits 0 everywhere; bad values exit 2 with a message naming the option and the
             value, before any output is written; runtime failures exit 1 with the gcl::Error text.
end_to_end:  phantom -> pretrain -> finetune -> predict -> evaluate on a small phantom tree; the
             pre-training repeated from its config.toml gives the same metrics; nibabel reads every
             predicted label map with its input's shape and affine, also for inputs that need
             resampling and for a rotated, shifted affine; perfect predictions score Dice 1.
Exit code 77 (skipped) when /usr/bin/python3 lacks a module the mode needs.
"""
import csv
import json
import os
import shutil
import subprocess
import sys

MODE, GCL, WORK = sys.argv[1], sys.argv[2], sys.argv[3]
failures = []


def check(condition, what):
    if not condition:
        failures.append(what)
        print("FAILED:", what, flush=True)


def gcl(*args, expect=0, cwd=None):
    """Runs gcl with the arguments; checks the exit code; returns (stdout, stderr)."""
    run = subprocess.run([GCL, *map(str, args)], cwd=cwd or WORK, capture_output=True, text=True)
    shown = " ".join(map(str, args))
    check(run.returncode == expect,
          f"gcl {shown}: exit code {run.returncode}, expected {expect}\nstdout: {run.stdout}\nstderr: {run.stderr}")
    return run.stdout, run.stderr


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


# Tiny sizes: the point is the plumbing, not the accuracy.
TINY_PRETRAIN = ["--size", 32, "--depth", 2, "--base-width", 4, "--image-hidden", 16, "--image-out", 12,
                 "--pixel-hidden", 8, "--pixel-out", 6, "--pixel-samples", 4, "--batch-size", 8, "--steps", 6,
                 "--threads", 2]


def usage_checks():
    fresh(WORK)
    out, _ = gcl("--help")
    check("Subcommands:" in out and "pretrain" in out and "evaluate" in out, "gcl --help lists the subcommands")
    for sub in ["phantom", "pretrain", "finetune", "predict", "evaluate"]:
        out, _ = gcl(sub, "--help")
        check("--threads" in out and "--quiet" in out and "--config" in out, f"gcl {sub} --help shows the common options")

    gcl("phantom", "--out", "tree", "--patients", 2, "--size", 32, "--slices", 2, "--quiet")

    # Bad values: exit 2, the message names the option and the value, nothing is written.
    bad = [
        (["pretrain", "--steps", "abc", "--data", "tree", "--out", "x"], ["--steps", "abc"]),
        (["pretrain", "--steps", 0, "--data", "tree", "--out", "x"], ["--steps", "0"]),
        (["pretrain", "--lr", "nan", "--data", "tree", "--out", "x"], ["--lr", "nan"]),
        (["pretrain", "--optimizer", "lbfgs", "--data", "tree", "--out", "x"], ["--optimizer", "lbfgs"]),
        (["pretrain", "--meta-labels", "patient,colour", "--data", "tree", "--out", "x"], ["--meta-labels", "colour"]),
        (["pretrain", "--mitigation", "sometimes", "--data", "tree", "--out", "x"], ["--mitigation", "sometimes"]),
        (["pretrain", "--size", 36, "--data", "tree", "--out", "x"], ["--size", "36"]),
        (["pretrain", "--out", "x"], ["--data", "--phantom"]),
        (["pretrain", "--data", "tree", "--phantom", 4, "--out", "x"], ["--data", "--phantom"]),
        (["pretrain", "--data", "tree", "--patients", "1-9", "--out", "x"], ["--patients", "patient003"]),
        (["pretrain", "--data", "tree", "--patients", "two", "--out", "x"], ["--patients", "two"]),
        (["pretrain", "--data", "no_such_folder", "--out", "x"], ["--data", "no_such_folder"]),
        (["pretrain", "--data", "tree", "--threads", -1, "--out", "x"], ["--threads", "-1"]),
        (["pretrain", "--data", "tree", "--min-scale", 1.2, "--max-scale", 1.1, "--out", "x"], ["--min-scale", "1.2"]),
        (["pretrain", "--data", "tree", "--bogus", "--out", "x"], ["--bogus"]),
        (["finetune", "--data", "tree", "--labelled", 5, "--out", "x"], ["--labelled", "5"]),
        (["finetune", "--data", "tree", "--val-patients", "2", "--labelled", 2, "--out", "x"], ["--val-patients", "patient002"]),
        (["finetune", "--data", "tree", "--init", "tree/patient001/Info.cfg", "--out", "x"], ["--init", "Info.cfg"]),
        (["phantom", "--size", 8, "--out", "x"], ["--size", "8"]),
        (["phantom", "--scanner", 3, "--out", "x"], ["--scanner", "3"]),
        (["predict", "--model", "tree/overview.png", "--data", "tree", "--out", "x"], ["--model", "overview.png"]),
        (["evaluate", "--data", "tree", "--out", "x"], ["--predictions", "--model"]),
        (["evaluate", "--data", "tree", "--predictions", "tree", "--out", "x"], ["--predictions", "_pred.nii.gz"]),
        ([], ["subcommand"]),
    ]
    for args, words in bad:
        _, err = gcl(*args, expect=2)
        for w in words:
            check(w in err, f"gcl {' '.join(map(str, args))}: the message names {w!r}: {err!r}")
        check(not os.path.exists(os.path.join(WORK, "x")), f"gcl {' '.join(map(str, args))} wrote nothing")

    # A config file with a key the subcommand does not have is a usage error too.
    with open(os.path.join(WORK, "bad.toml"), "w") as f:
        f.write("[pretrain]\ndata=\"tree\"\nout=\"x\"\nstepz=3\n")
    _, err = gcl("--config", "bad.toml", expect=2)
    check("stepz" in err, f"an unknown config key is named: {err!r}")

    # Runtime failure: a damaged volume. Exit 1, the gcl::Error text, no bare std:: message.
    shutil.copytree(os.path.join(WORK, "tree"), os.path.join(WORK, "broken"))
    with open(os.path.join(WORK, "broken", "patient002", "patient002_frame01.nii.gz"), "wb") as f:
        f.write(b"\x1f\x8b not really gzip")
    _, err = gcl("pretrain", "--data", "broken", "--out", "y", *TINY_PRETRAIN, "--quiet", expect=1)
    check(err.startswith("gcl pretrain: gcl::") and "patient002_frame01.nii.gz" in err, f"runtime error text: {err!r}")
    check("std::" not in err and "terminate" not in err, f"no bare std:: text: {err!r}")


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def is_png(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"


def end_to_end_checks():
    import nibabel as nib
    import numpy as np

    fresh(WORK)
    gcl("phantom", "--out", "tree", "--patients", 6, "--size", 32, "--slices", 4, "--seed", 3)
    # Another scanner: 1.8 mm pixels, so predictions are resampled to the model's 1.5 mm and back.
    gcl("phantom", "--out", "other", "--patients", 1, "--first-patient", 7, "--size", 28, "--slices", 3,
        "--scanner", 1, "--quiet")
    # A patient with a rotated, shifted affine and 1.2 mm pixels, written by nibabel.
    os.makedirs(os.path.join(WORK, "turned", "patient005"))
    shutil.copy(os.path.join(WORK, "tree", "patient005", "Info.cfg"), os.path.join(WORK, "turned", "patient005"))
    angle = 0.3
    affine = np.array([[1.2 * np.cos(angle), -1.2 * np.sin(angle), 0, -40.5],
                       [1.2 * np.sin(angle), 1.2 * np.cos(angle), 0, 12.25],
                       [0, 0, 8.0, -3.0],
                       [0, 0, 0, 1]])
    for name in sorted(os.listdir(os.path.join(WORK, "tree", "patient005"))):
        if name.endswith(".nii.gz"):
            src = nib.load(os.path.join(WORK, "tree", "patient005", name))
            data = np.asanyarray(src.dataobj)
            nib.save(nib.Nifti1Image(data, affine), os.path.join(WORK, "turned", "patient005", name))

    # ---- pre-training, and the same run again from its config file ----
    gcl("pretrain", "--data", "tree", "--patients", "1-4", "--out", "pre", *TINY_PRETRAIN)
    for name in ["pretrained.gclckpt", "metrics.jsonl", "loss.png", "config.toml"]:
        check(os.path.exists(os.path.join(WORK, "pre", name)), f"pretrain wrote {name}")
    records = read_jsonl(os.path.join(WORK, "pre", "metrics.jsonl"))
    check([r["step"] for r in records] == list(range(1, 7)), "one metrics record per pre-training step")
    check(all(np.isfinite(r["loss"]) and "image/patient" in r and "pixel/phase" in r for r in records),
          "pre-training records hold every loss term")
    check(is_png(os.path.join(WORK, "pre", "loss.png")), "loss.png is a PNG")
    with open(os.path.join(WORK, "pre", "config.toml")) as f:
        config = f.read().splitlines()
    check('optimizer="adamw"' in config and 'lr="0.003"' in config,
          f"config.toml names the default optimizer and its learning rate: {config}")
    check(abs(records[0]["lr"] - 0.003) < 1e-12, f"6 steps warm up 0 steps: step 1 runs at adamw's 0.003, not {records[0]['lr']}")
    gcl("pretrain", "--config", "pre/config.toml", "--out", "again", "--quiet")
    with open(os.path.join(WORK, "pre", "metrics.jsonl")) as a, open(os.path.join(WORK, "again", "metrics.jsonl")) as b:
        check(a.read() == b.read(), "the run repeated from config.toml gives the same metrics, bit for bit")

    # ---- fine-tuning on two labelled patients, validated on two others ----
    gcl("finetune", "--data", "tree", "--patients", "1-4", "--labelled", 2, "--val-patients", "5-6",
        "--eval-every", 3, "--init", "pre/pretrained.gclckpt", "--steps", 6, "--batch-size", 4, "--threads", 2,
        "--out", "ft")
    records = read_jsonl(os.path.join(WORK, "ft", "metrics.jsonl"))
    validation = [r for r in records if r["phase"] == "validation"]
    check([r["step"] for r in validation] == [3, 6], "validation after steps 3 and 6")
    check(all(0 <= r["dice/LV"] <= 1 for r in validation), "validation Dice in [0, 1]")
    check(is_png(os.path.join(WORK, "ft", "dice.png")), "dice.png is a PNG")

    # ---- predictions: NIfTI files on each input's grid, with its affine ----
    for data, patients, chosen in [("tree", "5-6", {"patient005", "patient006"}), ("other", "7", {"patient007"}),
                                   ("turned", "5", {"patient005"})]:
        out = "pred_" + data
        gcl("predict", "--model", "ft/model.gclckpt", "--data", data, "--patients", patients, "--out", out,
            "--threads", 2, "--quiet")
        for patient in os.listdir(os.path.join(WORK, data)):
            folder = os.path.join(WORK, data, patient)
            if patient not in chosen:
                continue
            for name in os.listdir(folder):
                if not name.endswith(".nii.gz") or name.endswith("_gt.nii.gz"):
                    continue
                image = nib.load(os.path.join(folder, name))
                pred_path = os.path.join(WORK, out, patient, name.replace(".nii.gz", "_pred.nii.gz"))
                check(os.path.exists(pred_path), f"predicted {pred_path}")
                if not os.path.exists(pred_path):
                    continue
                pred = nib.load(pred_path)
                labels = np.asanyarray(pred.dataobj)
                check(pred.shape == image.shape, f"{pred_path}: shape {pred.shape}, input {image.shape}")
                check(np.allclose(pred.affine, image.affine, atol=1e-5),
                      f"{pred_path}: affine\n{pred.affine}\ninput\n{image.affine}")
                check(labels.dtype == np.uint8 and labels.max() <= 3, f"{pred_path}: uint8 classes 0 to 3")
                check(is_png(os.path.join(WORK, out, "overlays", name.replace(".nii.gz", ".png"))),
                      f"overlay of {name}")

    # ---- evaluation: from the files, and predicted in memory; the same scores ----
    gcl("evaluate", "--data", "tree", "--patients", "5-6", "--predictions", "pred_tree", "--out", "eval", "--quiet")
    gcl("evaluate", "--data", "tree", "--patients", "5-6", "--model", "ft/model.gclckpt", "--out", "eval_model",
        "--threads", 2, "--quiet")
    with open(os.path.join(WORK, "eval", "scores.csv")) as f:
        rows = list(csv.DictReader(f))
    check(len(rows) == 2 * 2 * 3, f"scores.csv: a row per patient, phase and class, got {len(rows)}")
    check(all(r["dice"] == "" or 0 <= float(r["dice"]) <= 1 for r in rows), "Dice in [0, 1]")
    with open(os.path.join(WORK, "eval", "scores.csv")) as a, open(os.path.join(WORK, "eval_model", "scores.csv")) as b:
        check(a.read() == b.read(), "evaluating files and evaluating the model in memory agree")
    with open(os.path.join(WORK, "eval", "scores.json")) as f:
        report = json.load(f)
    check(len(report["volumes"]) == 4 and set(report["summary"]) == {"RV", "myocardium", "LV"},
          "scores.json holds the volumes and a summary per class")
    # The ground truth as the prediction: Dice 1, HD95 0, ASSD 0 for every class present.
    for patient in ["patient005", "patient006"]:
        os.makedirs(os.path.join(WORK, "perfect", patient))
        for name in os.listdir(os.path.join(WORK, "tree", patient)):
            if name.endswith("_gt.nii.gz"):
                shutil.copy(os.path.join(WORK, "tree", patient, name),
                            os.path.join(WORK, "perfect", patient, name.replace("_gt.nii.gz", "_pred.nii.gz")))
    out, _ = gcl("evaluate", "--data", "tree", "--patients", "5-6", "--predictions", "perfect", "--out", "eval_perfect")
    check("1.000 +- 0.000" in out, f"the printed table shows Dice 1: {out}")
    with open(os.path.join(WORK, "eval_perfect", "scores.csv")) as f:
        rows = list(csv.DictReader(f))
    # A class absent from a volume has no score (empty fields); every other row is perfect.
    scored = [r for r in rows if r["dice"] != ""]
    check(all(r["dice"] != "" for r in rows if r["class"] != "RV"), "myocardium and LV are in every volume")
    check(all(float(r["dice"]) == 1 and float(r["hd95_mm"]) == 0 and float(r["assd_mm"]) == 0 for r in scored),
          "perfect predictions: Dice 1, HD95 0, ASSD 0")
    check(all(r["hd95_mm"] == "" and r["assd_mm"] == "" for r in rows if r["dice"] == ""),
          "no distances where there is no Dice")


def main():
    needed = ["nibabel", "numpy"] if MODE == "end_to_end" else []
    for module in needed:
        try:
            __import__(module)
        except ImportError:
            print(f"SKIPPED: /usr/bin/python3 cannot import {module} (Debian package python3-{module})")
            return 77
    {"usage": usage_checks, "end_to_end": end_to_end_checks}[MODE]()
    if failures:
        print(f"{len(failures)} check(s) failed")
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
