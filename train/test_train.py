"""Checks of train.py as a program: a resumed run continues as it was started.

Needs ../shared/data (the training photos and Kodak), as the trainer does.
"""
import csv
import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from train import DATA  # noqa: E402


def train(run, *options):
    subprocess.run([sys.executable, "-W", "ignore", os.path.join(HERE, "train.py"), "--run", run,
                    "--n", "8", "--m", "8", "--batch", "1", "--patch", "64", "--eval-images", "1",
                    "--threads", "1", "--log-every", "1", *options],
                   check=True, capture_output=True, env=dict(os.environ, OPENBLAS_NUM_THREADS="1"))


@unittest.skipUnless(os.path.isdir(os.path.join(DATA, "train")), "no training data beside the repository")
class ResumeTest(unittest.TestCase):
    def test_resumed_run_keeps_its_options(self):
        with tempfile.TemporaryDirectory() as run:
            train(run, "--steps", "2", "--no-scale-augment", "--train-only", "g_s.", "--lr", "1e-3")
            # `make train RUN=...` gives no options: the run's own must hold.
            train(run, "--steps", "4")
            with open(os.path.join(run, "settings.json")) as f:
                settings = json.load(f)
            self.assertEqual((settings["scale_augment"], settings["train_only"], settings["lr"]),
                             (False, "g_s.", 1e-3))
            with open(os.path.join(run, "log.csv"), newline="") as f:
                steps = [int(r["step"]) for r in csv.DictReader(f) if r["kind"] == "train"]
            self.assertEqual(steps, [1, 2, 3, 4])

    def test_option_given_again_overrides(self):
        with tempfile.TemporaryDirectory() as run:
            train(run, "--steps", "1", "--no-scale-augment")
            train(run, "--steps", "2", "--scale-augment")
            with open(os.path.join(run, "settings.json")) as f:
                self.assertTrue(json.load(f)["scale_augment"])


if __name__ == "__main__":
    unittest.main()
