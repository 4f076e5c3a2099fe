"""Per-image BD-rate of lvc against another codec, from train/rd.py's curves.

    python3 train/per_image.py train/rd_out/curves.json              (against AVIF)
    python3 train/per_image.py B/curves.json --anchor jpeg --metric msssim_db
    python3 train/per_image.py B/curves.json --against A/curves.json  (lvc of A)

The Kodak average hides where a model loses. This prints each image's
BD-rate over its own rate-distortion curves (negative: lvc needs fewer bits),
sorted, with the median. --against takes the anchor from another run's lvc
curves instead, to see which images a model change helps.
"""
import argparse
import json
import math
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402


def image_curves(points, metric):
    """{image: (rates, metric values)} from one codec's rd.py points."""
    curves = {}
    for p in points:
        for r in p["per_image"]:
            rates, values = curves.setdefault(r["image"], ([], []))
            rates.append(r["bpp"])
            values.append(r[metric] if metric != "msssim_db" else msssim_db(r["msssim"]))
    return curves


def msssim_db(v):
    return -10 * math.log10(max(1 - v, 1e-12))


def per_image_bd(anchor_points, test_points, metric="psnr"):
    """[(BD-rate %, image)] sorted, for the images both codecs measured
    whose curves overlap, and the images whose curves do not."""
    a, t = image_curves(anchor_points, metric), image_curves(test_points, metric)
    rows = [(bd_rate(*a[im], *t[im]), im) for im in a if im in t]
    return sorted(r for r in rows if not math.isnan(r[0])), [im for r, im in rows if math.isnan(r)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("curves", help="curves.json whose lvc curves are measured")
    ap.add_argument("--anchor", default="avif", help="codec in the same file to measure against")
    ap.add_argument("--against", help="another curves.json, whose lvc curves are the anchor")
    ap.add_argument("--metric", default="psnr", choices=["psnr", "msssim_db"])
    args = ap.parse_args()
    with open(args.curves) as f:
        codecs = json.load(f)["codecs"]
    if args.against:
        with open(args.against) as f:
            anchor, name = json.load(f)["codecs"]["lvc"]["points"], f"lvc of {args.against}"
    elif args.anchor in codecs:
        anchor, name = codecs[args.anchor]["points"], args.anchor
    else:
        sys.exit(f"per_image: {args.curves} has no {args.anchor!r} curves (it has {', '.join(codecs)})")
    rows, apart = per_image_bd(anchor, codecs["lvc"]["points"], args.metric)
    print(f"lvc against {name}, BD-rate per image ({args.metric}):")
    for r, im in rows:
        print(f"  {im}  {r:+6.1f}%")
    if apart:
        print(f"no overlap of the curves, so no BD-rate: {', '.join(apart)}")
    if rows:
        print(f"median {statistics.median(r for r, _ in rows):+.1f}% over {len(rows)} images")


if __name__ == "__main__":
    main()
