#!/usr/bin/env python3
"""check_demo_results.py accepts a results.json whose pre-trainings learned every label and
rejects one with a collapsed label, a probe at chance, or no pre-training at all."""
import copy
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_demo_results import problems  # noqa: E402

good = {"runs": [
    {"method": "random-init", "seed": 1, "pretrain": None},
    {"method": "gcl-parameters", "seed": 1, "pretrain": {
        "labels": ["patient", "position", "phase"], "final_image_loss": [2.1, 1.9, 2.9],
        "log_2b_minus_1": 3.434, "probe_accuracy": [0.8, 0.7, 0.75], "probe_chance": [0.1, 0.25, 0.5]}}]}
assert problems(good) == [], problems(good)

collapsed = copy.deepcopy(good)
collapsed["runs"][1]["pretrain"]["final_image_loss"][0] = 3.43
assert len(problems(collapsed)) == 1 and "patient image loss" in problems(collapsed)[0]

at_chance = copy.deepcopy(good)
at_chance["runs"][1]["pretrain"]["probe_accuracy"][2] = 0.55
assert len(problems(at_chance)) == 1 and "phase probe" in problems(at_chance)[0]

phase_near_collapse = copy.deepcopy(good)
phase_near_collapse["runs"][1]["pretrain"]["final_image_loss"][2] = 3.0
assert len(problems(phase_near_collapse)) == 1 and "phase image loss" in problems(phase_near_collapse)[0]

none = {"runs": [good["runs"][0]]}
assert problems(none) == ["no pre-trained run in results.json"]
print("check_demo_results.py: ok")
