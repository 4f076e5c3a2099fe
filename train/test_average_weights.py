"""Checks of average_weights.py: the mean of the weights, the last checkpoint's metadata."""
import os
import subprocess
import sys
import tempfile
import unittest

import torch

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "average_weights.py")


def average(out, *paths):
    return subprocess.run([sys.executable, "-W", "ignore", SCRIPT, out, *paths], capture_output=True, text=True)


class AverageWeightsTest(unittest.TestCase):
    def test_mean_of_weights_with_the_last_metadata(self):
        with tempfile.TemporaryDirectory() as d:
            a, b, out = (os.path.join(d, n) for n in ("a.pt", "b.pt", "out.pt"))
            torch.save({"model": {"w": torch.tensor([1.0, 2.0]).half()}, "step": 10, "opt": {}, "n": 4}, a)
            torch.save({"model": {"w": torch.tensor([3.0, 6.0])}, "step": 20, "opt": {}, "n": 4}, b)
            self.assertEqual(average(out, a, b).returncode, 0)
            ck = torch.load(out)
            self.assertTrue(torch.equal(ck["model"]["w"], torch.tensor([2.0, 4.0])))
            self.assertEqual((ck["step"], ck["n"], "opt" in ck), (20, 4, False))

    def test_refuses_checkpoints_of_other_models(self):
        with tempfile.TemporaryDirectory() as d:
            a, b, out = (os.path.join(d, n) for n in ("a.pt", "b.pt", "out.pt"))
            torch.save({"model": {"w": torch.zeros(2)}, "step": 1}, a)
            torch.save({"model": {"v": torch.zeros(2)}, "step": 2}, b)
            res = average(out, a, b)
            self.assertNotEqual(res.returncode, 0)
            self.assertIn("other weights", res.stderr)
            self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
    unittest.main()
