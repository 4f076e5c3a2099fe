"""Would the decoder gain from reconstruction offsets, at no cost in bits?

    python3 train/offsets.py --weights train/runs/hp64j/weights_fp16.pt --images 200 --kodak 24

The decoder feeds the synthesis ŷ = mean + s for the coded residual
s = round(y - mean). Given s, the expected y is not mean + s: under a
peaked distribution more of the interval's mass lies towards the mean. This
measures E[y - mean - s | quality, scale table, s] on training photos (never
Kodak), then decodes Kodak with ŷ = mean + s + that offset and reports the
PSNR change per quality at the same bits, and the BD-rate it implies. The
checkerboard context still sees the plain ŷ, so the bitstream is unchanged.
"""
import argparse
import os
import random
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402
from export import load_model  # noqa: E402
from model import LIKELIHOODS, NUM_QUALITIES, scale_table  # noqa: E402
from train import DATA, kodak_tensors, load_training_images, pad64  # noqa: E402

# Residuals are bucketed as s clipped to [-K, K].
K = 3


@torch.no_grad()
def coded(model, x, q):
    """y, and the means and scales the coder uses, for a padded image."""
    y = model.analysis(x, torch.tensor([q]))
    z_hat = torch.round(model.h_a(y))
    return (y, z_hat, *model.coding_params(y, z_hat)[:2])


def buckets(s, scale, thresholds):
    t = np.searchsorted(thresholds, scale.numpy().ravel(), side="right")
    return t, np.clip(s.numpy().ravel(), -K, K).astype(np.int64) + K


def fit(model, images, thresholds, n_scales):
    sums = np.zeros((NUM_QUALITIES, n_scales, 2 * K + 1))
    counts = np.zeros_like(sums)
    for q in range(NUM_QUALITIES):
        for im in images:
            h, w = im.shape[0] // 64 * 64, im.shape[1] // 64 * 64
            x = torch.from_numpy(im[:h, :w].copy()).permute(2, 0, 1).float().div(255).unsqueeze(0)
            y, _, mean, scale = coded(model, x, q)
            s = torch.round(y - mean)
            t, b = buckets(s, scale, thresholds)
            np.add.at(sums[q], (t, b), (y - mean - s).numpy().ravel())
            np.add.at(counts[q], (t, b), 1)
    return sums / np.maximum(counts, 1), counts


@torch.no_grad()
def kodak(model, images, offsets, thresholds, qs):
    """Estimated bpp, PSNR without and with offsets, per quality."""
    rows = []
    for q in qs:
        bpp, plain, shifted = [], [], []
        for x in images:
            xp, h, w = pad64(x)
            y, z_hat, mean, scale = coded(model, xp, q)
            s = torch.round(y - mean)
            bits = -torch.log2(LIKELIHOODS[model.family](s, scale).clamp(min=1e-9)).sum()
            bits -= torch.log2(model.prior_z.likelihood(z_hat).clamp(min=1e-9)).sum()
            bpp.append(bits.item() / (h * w))
            t, b = buckets(s, scale, thresholds)
            off = torch.from_numpy(offsets[q][t, b].astype(np.float32)).view_as(s)
            for y_hat, out in ((mean + s, plain), (mean + s + off, shifted)):
                x_hat = torch.round(model.synthesis(y_hat, torch.tensor([q]))[:, :, :h, :w].clamp(0, 1) * 255) / 255
                out.append(10 * np.log10(1 / ((x_hat - x) ** 2).mean().item()))
        rows.append((q, np.mean(bpp), np.mean(plain), np.mean(shifted)))
        print(f"q{q}: {rows[-1][1]:.4f} bpp, {rows[-1][2]:.3f} dB plain, {rows[-1][3]:.3f} with offsets "
              f"({rows[-1][3] - rows[-1][2]:+.3f})", flush=True)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", type=int, default=200, help="training photos to fit on")
    ap.add_argument("--kodak", type=int, default=24, help="the first this many Kodak images")
    ap.add_argument("--qs", default=",".join(str(q) for q in range(NUM_QUALITIES)))
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.weights)
    model.eval()
    scales = scale_table()
    thresholds = np.sqrt(np.array(scales[1:]) * np.array(scales[:-1]))
    images = [im for im, _ in load_training_images(os.path.join(DATA, "train"), 128)]
    random.Random(0).shuffle(images)
    offsets, counts = fit(model, images[:args.images], thresholds, len(scales))
    for q in (0, NUM_QUALITIES // 2, NUM_QUALITIES - 1):
        print(f"q{q} offsets for s=-1,0,+1 at the most used scales:")
        for t in np.argsort(-counts[q].sum(1))[:6]:
            print(f"  scale {scales[t]:.3f} ({int(counts[q][t].sum())}): "
                  + " ".join(f"{offsets[q][t][K + d]:+.3f}" for d in (-1, 0, 1)))
    rows = kodak(model, kodak_tensors(args.kodak), offsets, thresholds, [int(v) for v in args.qs.split(",")])
    bpp = [r[1] for r in rows]
    print(f"BD-rate of the offsets (same bits, Kodak 1-{args.kodak}): "
          f"{bd_rate(bpp, [r[2] for r in rows], bpp, [r[3] for r in rows]):+.2f}%")


if __name__ == "__main__":
    main()
