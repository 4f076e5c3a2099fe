"""bdrate.py's self-checks (known rate changes between synthetic curves), in
the unittest run of make test-train."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import selftest  # noqa: E402


class BDRateTest(unittest.TestCase):
    def test_selftest(self):
        self.assertTrue(selftest())


if __name__ == "__main__":
    unittest.main()
