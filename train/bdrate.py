#!/usr/bin/python3
"""Bjøntegaard delta rate (BD-rate) and curve interpolation for RD curves.

BD-rate: log(rate) is interpolated as a function of quality (PSNR, or MS-SSIM
in dB) with a monotone piecewise-cubic (PCHIP) interpolant, for the anchor and
the test curve. The difference of the two is averaged over the overlapping
quality interval, and the result is the mean relative rate change of test vs
anchor at equal quality, in percent (negative = test needs fewer bits).

Usage: python3 train/bdrate.py --selftest
"""
import argparse
import sys

import numpy as np
from scipy.interpolate import PchipInterpolator


def _sorted_curve(rates, metric):
    """Points sorted by metric; rates must be positive and metric strictly
    increasing with rate, otherwise log-rate is not a function of metric."""
    rates = np.asarray(rates, dtype=float)
    metric = np.asarray(metric, dtype=float)
    if rates.shape != metric.shape or rates.size < 2:
        raise ValueError("need at least two (rate, metric) points of equal count")
    if np.any(rates <= 0):
        raise ValueError("rates must be positive")
    order = np.argsort(rates)
    rates, metric = rates[order], metric[order]
    if np.any(np.diff(metric) <= 0):
        raise ValueError("metric is not strictly increasing with rate: %s" % metric)
    return rates, metric


def bd_rate(anchor_rates, anchor_metric, test_rates, test_metric):
    """Percent rate change of test vs anchor at equal metric; NaN if the
    curves' metric ranges do not overlap."""
    ra, ma = _sorted_curve(anchor_rates, anchor_metric)
    rt, mt = _sorted_curve(test_rates, test_metric)
    lo, hi = max(ma[0], mt[0]), min(ma[-1], mt[-1])
    if lo >= hi:
        return float("nan")
    fa = PchipInterpolator(ma, np.log(ra))
    ft = PchipInterpolator(mt, np.log(rt))
    mean_diff = (ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo)
    return float((np.exp(mean_diff) - 1.0) * 100.0)


def rate_change_at(anchor_rates, anchor_metric, test_rates, test_metric, metric):
    """Percent rate change of test vs anchor at one metric value (PCHIP of
    log-rate, as bd_rate); NaN outside the range both curves cover."""
    ra, ma = _sorted_curve(anchor_rates, anchor_metric)
    rt, mt = _sorted_curve(test_rates, test_metric)
    if not max(ma[0], mt[0]) <= metric <= min(ma[-1], mt[-1]):
        return float("nan")
    diff = PchipInterpolator(mt, np.log(rt))(metric) - PchipInterpolator(ma, np.log(ra))(metric)
    return float((np.exp(diff) - 1.0) * 100.0)


def metric_at_rate(rates, metric, rate):
    """Metric interpolated (PCHIP over log-rate) at the given rate; NaN when
    the rate lies outside the measured range (no extrapolation)."""
    r, m = _sorted_curve(rates, metric)
    if not r[0] <= rate <= r[-1]:
        return float("nan")
    return float(PchipInterpolator(np.log(r), m)(np.log(rate)))


def selftest():
    # A JPEG-like Kodak curve (bpp, PSNR), concave like real RD curves.
    rates = np.array([0.15, 0.25, 0.5, 1.0, 1.5, 2.5])
    psnr = np.array([23.9, 26.5, 29.6, 32.9, 35.0, 38.3])
    checks = [
        ("identical curves", bd_rate(rates, psnr, rates, psnr), 0.0),
        ("rates halved", bd_rate(rates, psnr, rates * 0.5, psnr), -50.0),
        ("rates x1.1", bd_rate(rates, psnr, rates * 1.1, psnr), 10.0),
        # Symmetry: the anchor is 2x the test, so anchor vs test is +100%.
        ("anchor/test swapped", bd_rate(rates * 0.5, psnr, rates, psnr), 100.0),
    ]
    # A test curve shifted up in PSNR only partly overlaps the anchor; the
    # result must still be a rate saving, and non-overlap must give NaN.
    partial = bd_rate(rates, psnr, rates, psnr + 2.0)
    disjoint = bd_rate(rates, psnr, rates, psnr + 20.0)
    ok = True
    for name, got, want in checks:
        good = abs(got - want) < 0.1
        ok &= good
        print("%-22s %+8.3f%%  (want %+.1f%%)  %s" % (name, got, want, "ok" if good else "FAIL"))
    good = partial < 0
    ok &= good
    print("%-22s %+8.3f%%  (want < 0)  %s" % ("PSNR +2 dB", partial, "ok" if good else "FAIL"))
    good = np.isnan(disjoint)
    ok &= good
    print("%-22s %8s   (want nan)  %s" % ("disjoint curves", disjoint, "ok" if good else "FAIL"))
    good = abs(metric_at_rate(rates, psnr, 0.5) - 29.6) < 1e-9 and np.isnan(metric_at_rate(rates, psnr, 5.0))
    ok &= good
    print("%-22s %s" % ("metric_at_rate", "ok" if good else "FAIL"))
    good = (abs(rate_change_at(rates, psnr, rates * 0.5, psnr, 30.0) + 50.0) < 1e-9
            and abs(rate_change_at(rates, psnr, rates, psnr, 29.6)) < 1e-9
            and np.isnan(rate_change_at(rates, psnr, rates, psnr + 2.0, 24.5)))
    ok &= good
    print("%-22s %s" % ("rate_change_at", "ok" if good else "FAIL"))
    return ok


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--selftest", action="store_true", help="run the built-in checks")
    args = p.parse_args()
    if not args.selftest:
        p.print_help()
        return 2
    ok = selftest()
    print("selftest", "passed" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
