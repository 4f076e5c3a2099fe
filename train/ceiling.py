"""How much of the distortion at each quality comes from quantization, and how
much from the transforms themselves.

    python3 train/ceiling.py --ckpt train/runs/hp64r/ckpt.pt

For each quality it decodes a few Kodak images twice: from the rounded latents
the codec sends, and from the unquantized analysis output. The second PSNR is
the ceiling of g_a and g_s at that quality's gains: more rate cannot get past
it, only a better pair of transforms can.

With --fit-steps it also fits latents to the first image by gradient descent
through g_s alone, at the top quality's decoder gains: that PSNR bounds what
any encoder could get out of this synthesis transform.

With --pca it also prints the linear bound for comparison: the PSNR of
projecting each 16x16x3 block onto its top-k principal components (fitted on
the same images, so optimistic), k being the number of latents per block.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from train import kodak_tensors, pad64  # noqa: E402


def psnr(x_hat, x):
    x_hat = torch.round(x_hat.clamp(0, 1) * 255) / 255
    return 10 * math.log10(1 / ((x_hat - x) ** 2).mean().item())


@torch.no_grad()
def ceiling(model, x, q):
    """PSNR decoded from the rounded latents, and from the unquantized ones."""
    xp, h, w = pad64(x)
    qs = torch.tensor([q])
    y, mean, _ = model.latents(xp, qs)
    y_hat = torch.round(y - mean) + mean
    return [psnr(model.synthesis(v, qs)[:, :, :h, :w], x) for v in (y_hat, y)]


def fit_latents(model, x, q, steps):
    """PSNR of g_s from latents fitted to x (no quantization, no rate)."""
    xp, h, w = pad64(x)
    for p in model.parameters():
        p.requires_grad_(False)
    qs = torch.tensor([q])
    y = model.analysis(xp, qs).detach().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=0.05)
    for _ in range(steps):
        loss = ((model.synthesis(y, qs)[:, :, :h, :w] - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return psnr(model.synthesis(y, qs)[:, :, :h, :w], x)


def pca_psnr(images, ks):
    """Mean PSNR of the best rank-k linear code of 16x16 RGB blocks, per k."""
    blocks = []
    for x in images:
        a = x[0].permute(1, 2, 0).double()
        h, w = a.shape[0] // 16 * 16, a.shape[1] // 16 * 16
        blocks.append(a[:h, :w].reshape(h // 16, 16, w // 16, 16, 3).permute(0, 2, 1, 3, 4).reshape(-1, 768))
    every = torch.cat(blocks)
    mean = every.mean(0)
    _, vecs = torch.linalg.eigh(torch.cov((every - mean).T))
    out = {}
    for k in ks:
        basis = vecs[:, -k:]
        out[k] = np.mean([psnr(((b - mean) @ basis @ basis.T + mean).float(), b.float()) for b in blocks])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="ckpt.pt or weights_fp16.pt")
    ap.add_argument("--images", type=int, default=6, help="the first this many Kodak images")
    ap.add_argument("--fit-steps", type=int, default=0, help="also fit latents to kodim01 for this many steps")
    ap.add_argument("--pca", default="", help="comma-separated latents per 16x16 block for the linear bound, e.g. 96,192")
    args = ap.parse_args()
    model, step = load_model(args.ckpt)
    model.eval()
    images = kodak_tensors(args.images)
    print(f"step {step}, Kodak 1-{args.images}: PSNR from rounded latents / from unquantized latents")
    for q in range(len(model.lambdas)):
        r = np.mean([ceiling(model, x, q) for x in images], axis=0)
        print(f"q{q}  {r[0]:.2f} / {r[1]:.2f} dB")
    if args.pca:
        for k, p in pca_psnr(images, [int(k) for k in args.pca.split(",")]).items():
            print(f"linear bound, {k} components per 16x16 block: {p:.2f} dB")
    if args.fit_steps:
        top = len(model.lambdas) - 1
        r = ceiling(model, images[0], top)
        print(f"kodim01 at q{top}: rounded {r[0]:.2f}, unquantized {r[1]:.2f}, "
              f"latents fitted through g_s in {args.fit_steps} steps {fit_latents(model, images[0], top, args.fit_steps):.2f} dB")


if __name__ == "__main__":
    main()
