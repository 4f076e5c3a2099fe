"""Would refining the latents at encoding time pay, and with which schedule?
PyTorch's estimate, before (and to check) the Go encoder's --refine.

    python3 train/refine.py --ckpt train/runs/hp64x/weights_fp16.pt --steps 0,20,40 --decay

For each step count it refines y on each of the first --images Kodak images
at the qualities --qs by Adam on λ·255²·MSE + bits per pixel (the training
loss: distortion through the rounded latents, straight-through; rate of y
plus uniform noise, narrowing to none with --anneal, or with --rate ste of
the rounded y), z kept from the
analysis unless --rez recomputes it from the refined y or --refine-z descends
on it too. --round sga replaces rounding by stochastic Gumbel annealing (Yang
et al. 2020) in both terms. Rates and means follow the model's checkerboard
context, as the codec's do. It prints estimated bpp (from the Gaussian
likelihoods) and PSNR per quality, and the BD-rate against 0 steps.

Measured on hp64u11 (session 27, Kodak 1-2, 40 steps, --decay --cheapest):
-3.78% as the Go encoder refines, -3.46% with --round sga, -3.85% with
--refine-z. At 40 steps neither pays for its cost in the encoder.
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
def bits_psnr(model, x, qs, y, z, h, w):
    """Estimated bpp and PSNR of coding y and z as the codec does: z
    rounded, y's residuals rounded under the means and scales h_s and the
    context give, the pixels rounded to 8 bits."""
    z = torch.round(z)
    mean, scale, y_hat = model.coding_params(y, z)
    bits_y = -torch.log2(LIKELIHOODS[model.family](y_hat - mean, scale).clamp(min=1e-9)).sum()
    bits_z = -torch.log2(model.prior_z.likelihood(z).clamp(min=1e-9)).sum()
    x_hat = torch.round(model.synthesis(y_hat, qs)[:, :, :h, :w].clamp(0, 1) * 255) / 255
    mse = ((x_hat - x) ** 2).mean().item()
    return (bits_y + bits_z).item() / (h * w), 10 * math.log10(1 / mse)


def rd_cost(model, q, point):
    """The coding cost λ·255²·MSE + bpp of a (bpp, PSNR) point at quality q."""
    bpp, psnr = point
    return model.lambdas[q] * 255 ** 2 * 10 ** (-psnr / 10) + bpp


def soft_round(r, tau):
    """Stochastic Gumbel annealing (Yang et al. 2020): r moves to floor(r) or
    ceil(r), drawn with odds that favour the nearer one and relaxed by a
    Gumbel-softmax; tau divides both the odds and the relaxation (so the
    odds sharpen with tau squared, as in the authors' code), and as tau
    falls the draw hardens into rounding to the nearer integer."""
    lo = torch.floor(r)
    frac = r - lo
    eps = 1e-5
    logits = torch.stack([-torch.atanh(frac.clamp(-1 + eps, 1 - eps)),
                          -torch.atanh((1 - frac).clamp(-1 + eps, 1 - eps))], -1) / tau
    gumbel = -torch.log(-torch.log(torch.empty_like(logits).uniform_(1e-9, 1 - 1e-9)))
    return lo + torch.softmax((logits + gumbel) / tau, -1)[..., 1]


def step_size(model, q, args):
    """The first step at quality q: --lr, grown in proportion to λ above
    --knee-lambda, where the distortion dominates and the latents have
    further to go (the Go encoder's refineFirstStep). The script codes the
    last iterate unless --cheapest makes it keep the cheapest, as the Go
    encoder does."""
    if not args.knee_lambda:
        return args.lr
    return args.lr * max(1, model.lambdas[q] / args.knee_lambda)


def code(model, x, q, steps, args):
    """Estimated bpp and PSNR of x at quality q after this many refinement steps."""
    xp, h, w = pad64(x)
    qs = torch.tensor([q])
    with torch.no_grad():
        y0 = model.analysis(xp, qs)
        z0 = model.h_a(y0)
    y = y0.clone().requires_grad_(True)
    z = z0.clone().requires_grad_(args.refine_z)
    params = [y, z] if args.refine_z else [y]
    opt = torch.optim.Adam(params, lr=step_size(model, q, args))
    decay = torch.optim.lr_scheduler.LambdaLR(opt, lambda i: 1 - i / steps) if args.decay and steps else None
    best = None
    for i in range(steps):
        z_hat = ste_round(z)
        z_rate = z + torch.empty_like(z).uniform_(-0.5, 0.5) if args.refine_z else z_hat
        bits_z = -torch.log2(model.prior_z.likelihood(z_rate).clamp(min=1e-9)).sum()
        mean, scale, y_hat = model.coding_params(y, z_hat)
        r = y - mean
        if args.round == "sga":
            # Both terms see the same draw: SGA's ŷ is a point near the
            # lattice, priced by its own bin. (The context's means still
            # come from the anchors rounded straight-through.)
            tau = max(args.tau_min, args.tau * (1 - i / steps))
            y_hat = soft_round(r, tau) + mean
            s = y_hat - mean
        else:
            width = 1 - i / steps if args.anneal else 1
            s = ste_round(r) if args.rate == "ste" else r + torch.empty_like(r).uniform_(-0.5, 0.5) * width
        bits_y = -torch.log2(LIKELIHOODS[model.family](s, scale).clamp(min=1e-9)).sum()
        mse = ((model.synthesis(y_hat, qs)[:, :, :h, :w] - x) ** 2).mean()
        loss = args.lambda_scale * model.lambdas[q] * 255 ** 2 * mse + (bits_y + bits_z) / (h * w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if decay:
            decay.step()
        if args.cheapest:
            point = bits_psnr(model, x, qs, y.detach(), z.detach(), h, w)
            if best is None or rd_cost(model, q, point) < rd_cost(model, q, best):
                best = point
    y, z = y.detach(), z.detach()
    if args.rez:
        with torch.no_grad():
            z = model.h_a(y)
    result = bits_psnr(model, x, qs, y, z, h, w)
    if best is not None:
        # The Go encoder keeps the cheapest iterate, the analysis's own included.
        candidates = [best, bits_psnr(model, x, qs, y0, z0, h, w), result]
        result = min(candidates, key=lambda point: rd_cost(model, q, point))
    return result


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
    ap.add_argument("--refine-z", action="store_true", help="refine z by gradient too (rate: z plus uniform noise)")
    ap.add_argument("--round", choices=["ste", "sga"], default="ste",
                    help="ste: distortion of the rounded latents, rate by --rate; sga: stochastic Gumbel "
                         "annealing for both")
    ap.add_argument("--tau", type=float, default=0.5, help="SGA's first temperature, falling linearly")
    ap.add_argument("--tau-min", type=float, default=0.05)
    ap.add_argument("--cheapest", action="store_true",
                    help="keep the cheapest iterate by the estimated cost, as the Go encoder does")
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
