"""Would refining the latents at encoding time pay, and with which schedule?
PyTorch's estimate, before (and to check) the Go encoder's --refine.

    python3 train/refine.py --ckpt train/runs/hp64x/weights_fp16.pt --steps 0,20,40 --decay

For each step count it refines y on each of the first --images Kodak images
at the qualities --qs by Adam on λ·255²·MSE + bits per pixel (the training
loss: distortion through the rounded latents, straight-through; rate of y
plus uniform noise, narrowing to none with --anneal, or with --rate ste of
the rounded y), z kept from the
analysis unless --rez recomputes it from the refined y. It prints estimated
bpp (from the Gaussian likelihoods) and PSNR per quality, and the BD-rate
against 0 steps.
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402
from export import load_model  # noqa: E402
from model import LIKELIHOODS, ste_round  # noqa: E402
from train import kodak_tensors, pad64  # noqa: E402


@torch.no_grad()
def bits_psnr(model, x, qs, y, z, h, w, mean, scale):
    s = torch.round(y - mean)
    bits_y = -torch.log2(LIKELIHOODS[model.family](s, scale).clamp(min=1e-9)).sum()
    bits_z = -torch.log2(model.prior_z.likelihood(z).clamp(min=1e-9)).sum()
    x_hat = torch.round(model.synthesis(s + mean, qs)[:, :, :h, :w].clamp(0, 1) * 255) / 255
    mse = ((x_hat - x) ** 2).mean().item()
    return (bits_y + bits_z).item() / (h * w), 10 * math.log10(1 / mse)


def hyper(model, y):
    z = torch.round(model.h_a(y))
    params = model.h_s(z)
    return z, params[:, :model.m], params[:, model.m:]


def step_size(model, q, args):
    """The first step at quality q: --lr, grown in proportion to λ above
    --knee-lambda, where the distortion dominates and the latents have
    further to go (the Go encoder's refineFirstStep). Unlike the Go encoder,
    this script keeps the last iterate, not the cheapest."""
    if not args.knee_lambda:
        return args.lr
    return args.lr * max(1, model.lambdas[q] / args.knee_lambda)


def code(model, x, q, steps, args):
    """Estimated bpp and PSNR of x at quality q after this many refinement steps."""
    xp, h, w = pad64(x)
    qs = torch.tensor([q])
    with torch.no_grad():
        y0 = model.analysis(xp, qs)
        z, mean, scale = hyper(model, y0)
    y = y0.clone().requires_grad_(True)
    opt = torch.optim.Adam([y], lr=step_size(model, q, args))
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps) if args.decay and steps else None
    for i in range(steps):
        r = y - mean
        width = 1 - i / steps if args.anneal else 1
        s = ste_round(r) if args.rate == "ste" else r + torch.empty_like(r).uniform_(-0.5, 0.5) * width
        bpp = -torch.log2(LIKELIHOODS[model.family](s, scale).clamp(min=1e-9)).sum() / (h * w)
        mse = ((model.synthesis(ste_round(r) + mean, qs)[:, :, :h, :w] - x) ** 2).mean()
        loss = args.lambda_scale * model.lambdas[q] * 255 ** 2 * mse + bpp
        opt.zero_grad()
        loss.backward()
        opt.step()
        if decay:
            decay.step()
    y = y.detach()
    if args.rez:
        with torch.no_grad():
            z, mean, scale = hyper(model, y)
    return bits_psnr(model, x, qs, y, z, h, w, mean, scale)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="ckpt.pt or weights_fp16.pt")
    ap.add_argument("--images", type=int, default=2, help="the first this many Kodak images")
    ap.add_argument("--steps", default="0,20,40", help="comma-separated step counts; 0 is the reference")
    ap.add_argument("--lr", type=float, default=0.005)
    ap.add_argument("--knee-lambda", type=float, default=0.0625,
                    help="above this λ, grow the step in proportion to λ (0: a constant first step)")
    ap.add_argument("--decay", action="store_true", help="decay the step linearly to 0")
    ap.add_argument("--rate", choices=["noise", "ste"], default="noise")
    ap.add_argument("--lambda-scale", type=float, default=1, help="refine with λ times this")
    ap.add_argument("--anneal", action="store_true", help="narrow the rate's noise linearly to 0")
    ap.add_argument("--rez", action="store_true", help="recompute z from the refined y")
    ap.add_argument("--qs", default="0,3,5,7")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model, step = load_model(args.ckpt)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    images = kodak_tensors(args.images)
    qs = [int(v) for v in args.qs.split(",")]
    curves = {}
    for steps in (int(v) for v in args.steps.split(",")):
        t0 = time.time()
        curves[steps] = [np.mean([code(model, x, q, steps, args) for x in images], axis=0) for q in qs]
        print(f"steps={steps} ({time.time() - t0:.0f} s): "
              + "  ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in zip(qs, curves[steps])), flush=True)
    if 0 not in curves:
        return
    base = curves[0]
    for steps, pts in curves.items():
        if steps:
            r = bd_rate([b for b, _ in base], [p for _, p in base], [b for b, _ in pts], [p for _, p in pts])
            print(f"BD-rate of {steps} steps against none (step {step}, Kodak 1-{args.images}): {r:+.2f}%")


if __name__ == "__main__":
    main()
