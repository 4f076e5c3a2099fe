"""Fit the y entropy tables to the symbols a model really produces, one set
per quality, and add them to an exported bundle's params.json:

    python3 train/fit_tables.py BUNDLE --weights train/runs/hp64x/weights_fp16.pt
    python3 train/fit_tables.py --holdout --weights W   (what they would save)

The Gaussian tables assume that a residual round(y - mean) follows the
Gaussian bin probabilities of its predicted scale. Trained with the
uniform-noise rate proxy, the model's scales are not calibrated for that,
and less so the higher the quality: on held-out training photos the fitted
tables code y in 1.4% fewer bits at the lowest quality and 4.4% fewer at the
highest (hp64x, --holdout --images 100). The tables are counts of (quality, scale table, residual) over
training photos (never Kodak), mixed with the Gaussian as a prior worth a few
observations, so rare scales keep the Gaussian's shape. The z tables are
fitted the same way, per quality and channel, around the factorized prior's
pmfs (also trained with noise: held out, they code z in 3-38% fewer bits,
the most at the top qualities). `lvc model pack` turns them into integer
tables (META y_tables_per_quality, z_tables_per_quality).
"""
import argparse
import json
import math
import os
import random
import sys

import numpy as np
import torch
from scipy.stats import norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model, z_pmfs  # noqa: E402
from model import NUM_QUALITIES, scale_table  # noqa: E402

# Weight of the Gaussian prior, in observations (5 and 50 measured the same).
PRIOR = 5
# Support of each table: the residuals within this many scales of zero (at
# least MIN_HALF_WIDTH); the rest is escape-coded.
SIGMAS, MIN_HALF_WIDTH = 7, 4


# z values counted, on [-Z_RANGE, Z_RANGE]; beyond, the escape codes them.
Z_RANGE = 256


def collect(model, images, scales):
    """Counts per quality and scale table of each residual, on [-R, R] with
    R the widest table's half-width (and of the residuals beyond), and per
    quality and channel of each z value."""
    thresholds = np.sqrt(np.array(scales[1:]) * np.array(scales[:-1]))
    r = half_width(scales[-1])
    counts = np.zeros((NUM_QUALITIES, len(scales), 2 * r + 2))
    z_counts = np.zeros((NUM_QUALITIES, model.n, 2 * Z_RANGE + 1))
    for q in range(NUM_QUALITIES):
        for im in images:
            h, w = im.shape[0] // 64 * 64, im.shape[1] // 64 * 64
            x = torch.from_numpy(im[:h, :w].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
            s, t, z = residuals(model, x, q, thresholds)
            s, t = s.ravel(), t.ravel()
            np.add.at(counts[q], (t, np.where(np.abs(s) > r, 2 * r + 1, s + r)), 1)
            inside = np.abs(z) <= Z_RANGE
            channel = np.broadcast_to(np.arange(z.shape[0])[:, None, None], z.shape)
            np.add.at(z_counts[q], (channel[inside], z[inside] + Z_RANGE), 1)
    return counts, r, z_counts


def residuals(model, x, q, thresholds):
    """What the coder writes for x (1, 3, H, W; H and W multiples of 64) at
    quality q: the residuals round(y - mean) (M, H/16, W/16), each one's
    scale table index under thresholds (the geometric means of adjacent
    scales), and z (N, H/64, W/64)."""
    with torch.no_grad():
        y = model.analysis(x, torch.tensor([q]))
        z_hat = torch.round(model.h_a(y))
        mean, scale, _ = model.coding_params(y, z_hat)
    s = torch.round(y - mean)[0].numpy().astype(np.int64)
    t = np.searchsorted(thresholds, scale[0].numpy(), side="right")
    return s, t, z_hat[0].numpy().astype(np.int64)


def half_width(scale):
    return max(MIN_HALF_WIDTH, math.ceil(SIGMAS * scale))


def fitted_pmfs(counts, r, scales):
    """Per quality, per scale: {"offset", "pmf"} over that scale's support;
    the mass left out (beyond it) is what the escape symbol gets."""
    out = []
    for q in range(NUM_QUALITIES):
        tables = []
        for t, sc in enumerate(scales):
            k = half_width(sc)
            v = np.arange(-k, k + 1)
            gauss = norm.cdf(v + 0.5, scale=sc) - norm.cdf(v - 0.5, scale=sc)
            c = counts[q, t]
            inside = c[r - k:r + k + 1]
            n = c.sum()
            p = (inside + PRIOR * gauss) / (n + PRIOR)
            tables.append({"offset": -k, "pmf": [float(x) for x in p]})
        out.append(tables)
    return out


def fitted_z_pmfs(z_counts, prior):
    """Per quality, per channel: {"offset", "pmf"} over the prior's support
    widened to every value seen, mixed with the prior as for y."""
    out = []
    for q in range(z_counts.shape[0]):
        tables = []
        for c, p0 in enumerate(prior):
            seen = np.nonzero(z_counts[q, c])[0] - Z_RANGE
            lo = min(p0["offset"], int(seen.min()) if len(seen) else 0)
            hi = max(p0["offset"] + len(p0["pmf"]) - 1, int(seen.max()) if len(seen) else 0)
            base = np.zeros(hi - lo + 1)
            base[p0["offset"] - lo:p0["offset"] - lo + len(p0["pmf"])] = p0["pmf"]
            counted = z_counts[q, c, lo + Z_RANGE:hi + Z_RANGE + 1]
            p = (counted + PRIOR * base) / (z_counts[q, c].sum() + PRIOR)
            tables.append({"offset": lo, "pmf": [float(x) for x in p]})
        out.append(tables)
    return out


def table_bits(counts, r, tables):
    """Bits to code counts (per table, on [-r, r] plus beyond) with tables
    ({"offset", "pmf"}); values outside a table cost its leftover mass plus
    20 bits of escape payload, roughly what the coder spends."""
    total = 0.0
    for c, t in zip(counts, tables):
        p = np.asarray(t["pmf"])
        escape = max(1 - p.sum(), 1e-9)
        lo, hi = t["offset"], t["offset"] + len(p) - 1
        values = np.arange(-r, r + 1)
        inside = (values >= lo) & (values <= hi)
        total += (c[:-1][inside] * -np.log2(np.maximum(p[values[inside] - lo], 2 ** -16))).sum()
        total += (c[:-1][~inside].sum() + c[-1]) * (20 - math.log2(escape))
    return total


def report_holdout(model, scales, counts, r, z_counts, held):
    """Per quality, the bits of the held-out photos' y and z under the
    model's own tables (Gaussian at each table's scale; the prior's pmfs)
    and under tables fitted on the other photos."""
    h_counts, _, h_z = held
    gauss = fitted_pmfs(np.zeros_like(counts), r, scales)  # no counts: the prior alone
    fitted = fitted_pmfs(counts, r, scales)
    prior = z_pmfs(model.prior_z)
    fitted_z = fitted_z_pmfs(z_counts, prior)
    zr = (z_counts.shape[2] - 1) // 2
    print("quality  y: Gaussian -> fitted   z: prior -> fitted   (bits on the held-out photos)")
    for q in range(NUM_QUALITIES):
        yg, yf = table_bits(h_counts[q], r, gauss[q]), table_bits(h_counts[q], r, fitted[q])
        z = np.concatenate([h_z[q], np.zeros((h_z.shape[1], 1))], 1)  # no beyond-range bin
        zp, zf = table_bits(z, zr, prior), table_bits(z, zr, fitted_z[q])
        print(f"{q:7d}  {yg:.4g} -> {yf:.4g} ({100 * (yf / yg - 1):+.1f}%)   "
              f"{zp:.4g} -> {zf:.4g} ({100 * (zf / zp - 1):+.1f}%)")


FIT_THREADS = 2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bundle", nargs="?", help="directory written by export.py model (its params.json gets "
                                              "y_pmfs and z_pmfs_per_quality)")
    ap.add_argument("--holdout", action="store_true",
                    help="instead, fit on --images photos and report the bits saved on as many others")
    ap.add_argument("--weights", required=True, help="the checkpoint or weights file the bundle came from")
    ap.add_argument("--images", type=int, default=200, help="training photos to count over")
    args = ap.parse_args()
    # Imported here so that tests can import this file: run from the repository root, "train" is the directory.
    from train import DATA, load_training_images
    # The counts move with the thread count (oneDNN splits the convolutions
    # differently, and a few residuals round the other way), and the counts
    # make the model ID: a fixed count keeps a re-export reproducible.
    torch.set_num_threads(FIT_THREADS)
    torch.set_flush_denormal(True)
    model, _ = load_model(args.weights)
    model.eval()
    images = [im for im, _ in load_training_images(os.path.join(DATA, "train"), 128)]
    random.Random(0).shuffle(images)
    scales = scale_table()
    counts, r, z_counts = collect(model, images[:args.images], scales)
    if args.holdout:
        report_holdout(model, scales, counts, r, z_counts, collect(model, images[args.images:2 * args.images], scales))
        return
    if not args.bundle:
        sys.exit("fit_tables: a bundle directory, or --holdout")
    path = os.path.join(args.bundle, "params.json")
    with open(path) as f:
        params = json.load(f)
    if params["scales"] != scales:
        sys.exit(f"fit_tables: {path} has another scale table than model.py")
    params["y_pmfs"] = fitted_pmfs(counts, r, scales)
    params["z_pmfs_per_quality"] = fitted_z_pmfs(z_counts, z_pmfs(model.prior_z))
    with open(path, "w") as f:
        json.dump(params, f)
    print(f"fitted {NUM_QUALITIES}x{len(scales)} y tables and {NUM_QUALITIES}x{model.n} z tables on "
          f"{args.images} training photos ({int(counts.sum())} residuals, {int(z_counts.sum())} z values)")


if __name__ == "__main__":
    main()
