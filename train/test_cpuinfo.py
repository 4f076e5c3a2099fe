"""cpuinfo names the core and the Go kernel from /proc/cpuinfo's text."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpuinfo import describe  # noqa: E402


def cpuinfo(family, model, flags, vendor="AuthenticAMD"):
    return (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            f"model name\t: AMD EPYC\nflags\t\t: fpu sse2 {flags}\n\nprocessor\t: 1\nmodel\t\t: 99\n")


class DescribeTest(unittest.TestCase):
    def test_zen3_has_no_avx512(self):
        self.assertEqual(describe(cpuinfo(25, 1, "avx2 fma")),
                         ("AMD EPYC (family 25, model 1: Zen 3; AVX2+FMA, no AVX-512)", "avx2"))

    def test_zen4_and_zen5(self):
        self.assertEqual(describe(cpuinfo(25, 17, "avx2 fma avx512f"))[0],
                         "AMD EPYC (family 25, model 17: Zen 4; AVX-512)")
        self.assertIn(": Zen 5;", describe(cpuinfo(26, 2, "avx2 fma avx512f"))[0])

    def test_unknown_core_and_no_simd(self):
        self.assertEqual(describe(cpuinfo(6, 85, "sse4_2", vendor="GenuineIntel")),
                         ("AMD EPYC (family 6, model 85; no AVX2+FMA)", "portable"))
        self.assertEqual(describe("flags : avx2\n"), ("unknown CPU (no AVX2+FMA)", "portable"))


if __name__ == "__main__":
    unittest.main()
