"""What a classical enhancement layer on top of lvc's top qualities would buy.

    python3 train/residual_layer.py --lvc ./bin/lvc [--images 24] [--jobs 2]

The shipped model's curve flattens above 35 dB: its transforms, not its rate,
cap the top. This script asks whether coding what the synthesis misses, the
residual x - x̂, with a plain 8x8 DCT layer would pass that cap more cheaply
than the model's own top qualities. For each Kodak image and quality 4..7 it
writes a real lvc file, decodes it, and codes the residual in YCbCr: 8x8 DCT,
uniform quantization with a dead zone, chroma step 1.5x luma, each band's
magnitudes (capped at 15, escape in Exp-Golomb) under an adaptive model with
four contexts from the same band in the blocks left and above, plus a bit per
sign. The layer's rate is that adaptive code length, so an estimate, but
without any side information; the base rate is the real file's.

It prints the Pareto front of every (quality, step) point and the model's own
qualities, and BD-rates (PSNR) of that front against the model alone and
against AVIF from train/rd_out/curves.json.
"""
import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from PIL import Image
from scipy.fft import dctn, idctn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate, rate_change_at  # noqa: E402
from train import DATA  # noqa: E402

BLOCK = 8
MAG_CAP = 15  # magnitudes above are escape-coded
CHROMA_STEP = 1.5
DEAD_ZONE = 0.2  # rounds |c|/step + 0.5 - DEAD_ZONE down
STEPS = (6, 8, 10, 12, 14, 16, 20, 24, 32)
QUALITIES = (4, 5, 6, 7)


def to_ycc(x):
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([0.299 * r + 0.587 * g + 0.114 * b,
                     -0.168736 * r - 0.331264 * g + 0.5 * b,
                     0.5 * r - 0.418688 * g - 0.081312 * b], -1)


def to_rgb(c):
    y, cb, cr = c[..., 0], c[..., 1], c[..., 2]
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], -1)


def blocks(plane):
    h, w = plane.shape
    return plane.reshape(h // BLOCK, BLOCK, w // BLOCK, BLOCK).transpose(0, 2, 1, 3)


def unblocks(b):
    hb, wb = b.shape[:2]
    return b.transpose(0, 2, 1, 3).reshape(hb * BLOCK, wb * BLOCK)


def seen_before(key):
    """For each element, how many earlier elements have the same key."""
    order = np.argsort(key, kind="stable")
    k = key[order]
    starts = np.r_[0, np.flatnonzero(np.diff(k)) + 1]
    group = np.cumsum(np.isin(np.arange(len(k)), starts)) - 1
    out = np.empty(len(k), np.int64)
    out[order] = np.arange(len(k)) - starts[group]
    return out


def layer_bits(q):
    """Adaptive code length of quantized coefficients q (hb, wb, 8, 8)."""
    mag = np.abs(q)
    m = np.minimum(mag, MAG_CAP)
    left, up = np.zeros_like(m), np.zeros_like(m)
    left[:, 1:], up[1:] = m[:, :-1], m[:-1]
    ctx = np.minimum(left + up, 3)
    symbols = MAG_CAP + 1
    bits = 0.0
    for i in range(BLOCK):
        for j in range(BLOCK):
            s, c = m[:, :, i, j].ravel(), ctx[:, :, i, j].ravel()
            # Counts start at 1/2 per symbol (Krichevsky-Trofimov).
            bits -= np.log2((seen_before(c * symbols + s) + 0.5) / (seen_before(c) + 0.5 * symbols)).sum()
    escaped = mag[mag >= MAG_CAP] - MAG_CAP
    return bits + (mag > 0).sum() + (2 * np.floor(np.log2(escaped + 1)) + 1).sum()


def measure(job):
    """(base bpp, base PSNR, [(bpp, PSNR) per step]) of one image at one quality."""
    lvc, tmp, name, q = job
    src = os.path.join(DATA, "kodak", name + ".png")
    coded, decoded = os.path.join(tmp, f"{name}_q{q}.lvc"), os.path.join(tmp, f"{name}_q{q}.png")
    subprocess.run([lvc, "encode", src, "-o", coded, "-q", str(q)], check=True, capture_output=True)
    subprocess.run([lvc, "decode", coded, "-o", decoded], check=True, capture_output=True)
    x = np.asarray(Image.open(src).convert("RGB"), np.float64)
    x_hat = np.asarray(Image.open(decoded).convert("RGB"), np.float64)
    pixels = x.shape[0] * x.shape[1]
    base_bits = os.path.getsize(coded) * 8
    residual = to_ycc(x) - to_ycc(x_hat)
    points = []
    for step in STEPS:
        added, bits = np.zeros_like(residual), 0.0
        for ch in range(3):
            d = step * (CHROMA_STEP if ch else 1)
            c = dctn(blocks(residual[..., ch]), axes=(2, 3), norm="ortho")
            level = np.floor(np.abs(c) / d + 0.5 - DEAD_ZONE)
            qc = (np.sign(c) * np.maximum(level, 0)).astype(np.int64)
            bits += layer_bits(qc)
            added[..., ch] = unblocks(idctn(qc * d, axes=(2, 3), norm="ortho"))
        out = np.clip(np.round(to_rgb(to_ycc(x_hat) + added)), 0, 255)
        points.append(((base_bits + bits) / pixels, psnr(out, x)))
    return base_bits / pixels, psnr(x_hat, x), points


def psnr(a, b):
    return 10 * math.log10(255 ** 2 / np.mean((a - b) ** 2))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lvc", required=True, help="the lvc binary (its embedded model is the one measured)")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--curves", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "rd_out", "curves.json"),
                    help="train/rd.py's curves: the model's own qualities and AVIF's")
    args = ap.parse_args()
    with open(args.curves) as f:
        curves = json.load(f)["codecs"]
    own = [(p["bpp"], p["psnr"], f"q{p['q']}") for p in curves["lvc"]["points"]]
    names = [f"kodim{i:02d}" for i in range(1, args.images + 1)]
    points = list(own) if args.images == 24 else []
    with tempfile.TemporaryDirectory() as tmp, ProcessPoolExecutor(args.jobs) as pool:
        for q in QUALITIES:
            results = list(pool.map(measure, [(os.path.abspath(args.lvc), tmp, n, q) for n in names]))
            for k, step in enumerate(STEPS):
                points.append((np.mean([r[2][k][0] for r in results]), np.mean([r[2][k][1] for r in results]),
                               f"q{q}+step{step}"))
            if args.images != 24:
                points.append((np.mean([r[0] for r in results]), np.mean([r[1] for r in results]), f"q{q}"))
    front = []
    for p in sorted(points):
        if not front or p[1] > front[-1][1]:
            front.append(p)
    print("Pareto front (mean bpp, mean PSNR):")
    for r, p, label in front:
        print(f"  {label:14s} {r:.4f} {p:.3f}")
    if args.images != 24:
        return
    fr, fp = [p[0] for p in front], [p[1] for p in front]
    lr, lp = [p[0] for p in own], [p[1] for p in own]
    ar, ap_ = [p["bpp"] for p in curves["avif"]["points"]], [p["psnr"] for p in curves["avif"]["points"]]
    print(f"BD-rate of the front against the model alone: {bd_rate(lr, lp, fr, fp):+.2f}%")
    print(f"against AVIF: the front {bd_rate(ar, ap_, fr, fp):+.2f}%, the model alone {bd_rate(ar, ap_, lr, lp):+.2f}%")
    for t in (32, 34, 36, 38):
        print(f"  at {t} dB against AVIF: front {rate_change_at(ar, ap_, fr, fp, t):+.1f}%, "
              f"model alone {rate_change_at(ar, ap_, lr, lp, t):+.1f}%")


if __name__ == "__main__":
    main()
