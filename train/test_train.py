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
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import argparse  # noqa: E402
import torch  # noqa: E402
import train as train_module  # noqa: E402
from train import DATA, NUM_QUALITIES, ThreadTuner, draw_qualities, quality_weights  # noqa: E402


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

    def test_refuses_a_log_without_its_checkpoint(self):
        # A clone of a run has its log but not its checkpoint (not committed):
        # training there, from scratch or from weights, would drop logged rows.
        with tempfile.TemporaryDirectory() as run:
            train(run, "--steps", "2", "--no-scale-augment")
            with open(os.path.join(run, "log.csv")) as f:
                logged = f.read()
            # The checkpoint moves away; it still serves as --init weights.
            init = os.path.join(run, "init.pt")
            os.rename(os.path.join(run, "ckpt.pt"), init)
            for options in ([], ["--init", init, "--start-step", "1"]):
                with self.assertRaises(subprocess.CalledProcessError) as refused:
                    train(run, "--steps", "4", *options)
                self.assertIn(b"has a log up to step 2 but no checkpoint", refused.exception.stderr)
            with open(os.path.join(run, "log.csv")) as f:
                self.assertEqual(f.read(), logged)

    def test_option_given_again_overrides(self):
        with tempfile.TemporaryDirectory() as run:
            train(run, "--steps", "1", "--no-scale-augment")
            train(run, "--steps", "2", "--scale-augment")
            with open(os.path.join(run, "settings.json")) as f:
                self.assertTrue(json.load(f)["scale_augment"])


@unittest.skipUnless(os.path.isdir(os.path.join(DATA, "train")), "no training data beside the repository")
class WidenSynthesisTest(unittest.TestCase):
    def test_quarter_width_sets_the_quarter_stage_apart(self):
        from model import HyperpriorModel
        with tempfile.TemporaryDirectory() as base, tempfile.TemporaryDirectory() as wide, \
                tempfile.TemporaryDirectory() as both:
            train(base, "--steps", "1", "--no-scale-augment")
            init = os.path.join(base, "ckpt.pt")
            train(wide, "--steps", "2", "--init", init, "--synthesis-width", "10", "--quarter-width", "8")
            train(wide, "--steps", "3")  # resumed with no options: the widths hold
            train(both, "--steps", "2", "--init", init, "--synthesis-width", "10")
            for run, widths in ((wide, (10, 8)), (both, (10, 10))):
                options = HyperpriorModel.options(torch.load(os.path.join(run, "ckpt.pt"), map_location="cpu"))
                self.assertEqual((options["synthesis_width"], options["quarter_width"]), widths)


class ThreadTunerTest(unittest.TestCase):
    def run_steps(self, tuner, steps, seconds_per_step):
        """Steps the tuner on a fake clock; seconds_per_step(threads) is the speed."""
        for _ in range(steps):
            tuner.before_step(self.step)
            self.clock += seconds_per_step(torch.get_num_threads())
            self.step += 1

    def test_reprobes_when_a_process_starts_beside_it(self):
        self.clock, self.step = 0.0, 0
        self.addCleanup(torch.set_num_threads, torch.get_num_threads())
        with mock.patch.object(train_module.time, "time", lambda: self.clock):
            tuner = ThreadTuner(2, every=1000, probe=10)
            self.run_steps(tuner, 100, lambda t: 1.0 / t)  # idle machine: 2 threads win
            self.assertEqual(tuner.best, 2)
            # A busy core: 2 threads become 8x slower than 1, long before step 1000.
            self.run_steps(tuner, 100, lambda t: 8.0 if t == 2 else 1.0)
            self.assertEqual(tuner.best, 1)
            self.assertLess(self.step, 1000)
            # Steady speed at the chosen count: no further probes.
            probed_at = tuner.trial_start
            self.run_steps(tuner, 500, lambda t: 8.0 if t == 2 else 1.0)
            self.assertEqual((tuner.best, tuner.trial_start), (1, probed_at))

    def test_resumed_run_probes_at_once(self):
        self.addCleanup(torch.set_num_threads, torch.get_num_threads())
        tuner = ThreadTuner(2, every=1000, probe=10)
        tuner.before_step(343)
        self.assertEqual(tuner.trial, 0)


class QualityDrawTest(unittest.TestCase):
    def test_uniform_draw_is_unchanged(self):
        # Runs started before --quality-weights resume on the same draws.
        torch.manual_seed(3)
        before = [int(torch.randint(0, NUM_QUALITIES, ())) for _ in range(50)]
        torch.manual_seed(3)
        self.assertEqual([int(draw_qualities(None, 4, True)[0]) for _ in range(50)], before)

    def test_weights_are_followed(self):
        top = [0] * (NUM_QUALITIES - 1) + [1]
        self.assertEqual(draw_qualities(top, 4, True).tolist(), [NUM_QUALITIES - 1] * 4)
        torch.manual_seed(1)
        drawn = draw_qualities([0, 1] + [0] * (NUM_QUALITIES - 3) + [3], 4000, False).tolist()
        self.assertEqual(set(drawn), {1, NUM_QUALITIES - 1})
        self.assertAlmostEqual(drawn.count(1) / len(drawn), 0.25, delta=0.03)

    def test_one_quality_per_batch(self):
        for weights in (None, [1] * NUM_QUALITIES):
            q = draw_qualities(weights, 5, True).tolist()
            self.assertEqual(len(q), 5)
            self.assertEqual(len(set(q)), 1)

    def test_bad_weights_are_refused(self):
        for bad in ("1,2", ",".join(["1"] * (NUM_QUALITIES - 1) + ["-1"]), ",".join(["0"] * NUM_QUALITIES), "a,b"):
            with self.assertRaises(argparse.ArgumentTypeError, msg=bad):
                quality_weights(bad)


if __name__ == "__main__":
    unittest.main()
