"""bdrate.py's self-checks (known rate changes between synthetic curves), in
the unittest run of make test-train."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import selftest  # noqa: E402
from per_image import per_image_bd  # noqa: E402


class BDRateTest(unittest.TestCase):
    def test_selftest(self):
        self.assertTrue(selftest())

    def test_per_image(self):
        """Each image is measured on its own curves: one image at 0.9x the
        anchor's rates, another at 1.2x, give -10% and +20%."""
        def points(scale):
            return [{"per_image": [{"image": im, "bpp": 0.1 * 2 ** q * scale[im], "psnr": 25 + 2 * q + d,
                                    "msssim": 1 - 0.1 / (q + 1)}
                                   for im, d in (("a", 0), ("b", 3))]} for q in range(6)]
        rows, apart = per_image_bd(points({"a": 1, "b": 1}), points({"a": 0.9, "b": 1.2}))
        self.assertEqual(([im for _, im in rows], apart), (["a", "b"], []))
        self.assertAlmostEqual(rows[0][0], -10, places=6)
        self.assertAlmostEqual(rows[1][0], 20, places=6)
        self.assertAlmostEqual(per_image_bd(points({"a": 1, "b": 1}), points({"a": 0.9, "b": 1}), "msssim_db")[0][0][0],
                               -10, places=6)
        # Curves that do not overlap in quality have no BD-rate: listed apart.
        far = [{"per_image": [{**r, "psnr": r["psnr"] + (30 if r["image"] == "b" else 0)} for r in p["per_image"]]}
               for p in points({"a": 1, "b": 1})]
        rows, apart = per_image_bd(points({"a": 1, "b": 1}), far)
        self.assertEqual(([im for _, im in rows], apart), (["a"], ["b"]))


if __name__ == "__main__":
    unittest.main()
