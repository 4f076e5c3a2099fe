"""Would a VQ mode pay on the shipped transforms? PyTorch's estimate before
the codec codes codebook indices.

    python3 train/vq_probe.py --weights train/runs/hp64u11/weights_fp16.pt --qs 2,4,6 --sizes 16,64,256

At each quality q it takes the analysis's latents y (gains applied) of
--crops random training crops, splits every position's channels into groups
of --dim, and fits one codebook of each --sizes per group by k-means. Kodak's
latents are then replaced by their nearest entries and decoded by the
unchanged synthesis. The rate is what a coder with one static table per
group would spend: the cross-entropy of Kodak's indices under the training
histogram (each count plus one half), with no hyperprior. It prints bpp and
PSNR next to the hyperprior's own points (estimated from its likelihoods, the
model's coding), and how many more bits the VQ point needs than the
hyperprior's curve at the same PSNR (log-rate interpolation).

Measured on hp64u11 (session 29, Kodak 1-6, 200 crops of 256 px from the 80
training photos that are that large, groups of 8 channels, 20 iterations):
q1 with 256 entries 0.664 bpp / 28.38 dB (+262% bits against the
hyperprior), with 1024 0.889 / 29.10 (+288%); q4 with 256 0.679 / 29.58
(+157%); 16 entries stay near 25.4 dB at any quality, below the curve's
start. Codebooks fitted after the fact to a scalar model's latents, coded
without a hyperprior, cost two to four times the bits: a VQ mode needs
codebooks trained with the transforms.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from refine import bits_psnr  # noqa: E402
from train import DATA, NUM_QUALITIES, kodak_tensors, load_training_images, pad64  # noqa: E402


def kmeans(x, k, iters, gen):
    """Lloyd's k-means on the rows of x from k random rows; an entry left
    empty takes the row worst served."""
    c = x[torch.randperm(len(x), generator=gen)[:k]].clone()
    for _ in range(iters):
        d = (x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)
        dist, a = d.min(1)
        counts = torch.bincount(a, minlength=k)
        sums = torch.zeros_like(c).index_add_(0, a, x)
        full = counts > 0
        c[full] = sums[full] / counts[full].unsqueeze(1)
        for i in torch.nonzero(~full).flatten():
            worst = dist.argmax()
            c[i], dist[worst] = x[worst], 0
    return c


def nearest(x, c):
    return ((x * x).sum(1, keepdim=True) - 2 * x @ c.T + (c * c).sum(1)).argmin(1)


def groups(y, dim):
    """[1, M, H, W] latents as [M/dim, H*W, dim] vectors, one set per group."""
    m = y.shape[1]
    return y[0].reshape(m // dim, dim, -1).permute(0, 2, 1)


def rate_at(curve, psnr):
    """bpp of the hyperprior's (bpp, PSNR) curve at this PSNR, log-rate linear."""
    bpps, psnrs = zip(*curve)
    if not psnrs[0] <= psnr <= psnrs[-1]:
        return float("nan")
    return math.exp(np.interp(psnr, psnrs, np.log(bpps)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="train/runs/hp64u11/weights_fp16.pt")
    ap.add_argument("--qs", default="2,4,6")
    ap.add_argument("--sizes", default="16,64,256")
    ap.add_argument("--dim", type=int, default=8)
    ap.add_argument("--crops", type=int, default=200)
    ap.add_argument("--crop", type=int, default=256)
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--images", type=int, default=24, help="Kodak images to evaluate")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, step = load_model(args.weights)
    model.eval()
    gen = torch.Generator().manual_seed(1)
    rng = np.random.default_rng(1)
    train = load_training_images(os.path.join(DATA, "train"), args.crop)
    crops = []
    for i in rng.integers(len(train), size=args.crops):
        a = train[i][0]
        top, left = rng.integers(0, a.shape[0] - args.crop + 1), rng.integers(0, a.shape[1] - args.crop + 1)
        crops.append(a[top:top + args.crop, left:left + args.crop])
    crops = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float().div(255)
    kodak = kodak_tensors(args.images)
    with torch.no_grad():
        curve = []
        for q in range(NUM_QUALITIES):
            qs = torch.tensor([q])
            pts = []
            for x in kodak:
                xp, h, w = pad64(x)
                y = model.analysis(xp, qs)
                pts.append(bits_psnr(model, x, qs, y, model.h_a(y), h, w))
            curve.append(tuple(np.mean(pts, axis=0)))
        print(f"weights {args.weights} (step {step}), Kodak 1-{args.images}; hyperprior: "
              + "  ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in enumerate(curve)), flush=True)
        for q in (int(v) for v in args.qs.split(",")):
            qs = torch.tensor([q])
            y_train = torch.cat([groups(model.analysis(c.unsqueeze(0), qs), args.dim) for c in crops], 1)
            latents = []
            for x in kodak:
                xp, h, w = pad64(x)
                latents.append((x, h, w, model.analysis(xp, qs)))
            for k in (int(v) for v in args.sizes.split(",")):
                books = [kmeans(g, k, args.iters, gen) for g in y_train]
                tables = [torch.log2((torch.bincount(nearest(g, c), minlength=k) + 0.5) / (len(g) + 0.5 * k))
                          for g, c in zip(y_train, books)]
                pts = []
                for x, h, w, y in latents:
                    vecs = groups(y, args.dim)
                    bits = 0.0
                    y_vq = torch.empty_like(vecs)
                    for g, (c, t) in enumerate(zip(books, tables)):
                        idx = nearest(vecs[g], c)
                        bits -= t[idx].sum().item()
                        y_vq[g] = c[idx]
                    y_hat = y_vq.permute(0, 2, 1).reshape(y.shape)
                    x_hat = torch.round(model.synthesis(y_hat, qs)[:, :, :h, :w].clamp(0, 1) * 255) / 255
                    mse = ((x_hat - x) ** 2).mean().item()
                    pts.append((bits / (h * w), 10 * math.log10(1 / mse)))
                b, p = np.mean(pts, axis=0)
                ref = rate_at(curve, p)
                print(f"q{q} dim {args.dim} size {k}: {b:.3f} bpp {p:.2f} dB; hyperprior at that PSNR "
                      f"{ref:.3f} bpp ({(b / ref - 1) * 100:+.0f}% bits)", flush=True)


if __name__ == "__main__":
    main()
