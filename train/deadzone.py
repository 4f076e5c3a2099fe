"""Would a deadzone in the encoder's rounding pay? An encoder-only change:
the decoder reconstructs s + mean whatever rule chose s.

    python3 train/deadzone.py --ckpt train/runs/hp64r/weights_fp16.pt --deltas 0,0.1,0.2

The codec codes s = round(y - mean). With a deadzone δ it codes
s = sign(r) * floor(|r| + 1/2 - δ), r = y - mean: residuals near a rounding
boundary go to the value nearer zero, which the Gaussian makes cheaper.
For each δ it prints Kodak averages per quality (rate estimated from the
likelihoods, as train.py's eval; PSNR on rounded RGB) and the BD-rate
against δ = 0.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402
from export import load_model  # noqa: E402
from model import LIKELIHOODS  # noqa: E402
from train import kodak_tensors, pad64  # noqa: E402


@torch.no_grad()
def code(model, x, q, delta):
    """Estimated bits and PSNR of x at quality q with deadzone delta."""
    xp, h, w = pad64(x)
    qs = torch.tensor([q])
    y, mean, scale = model.latents(xp, qs)
    r = y - mean
    s = torch.sign(r) * torch.floor(torch.abs(r) + 0.5 - delta).clamp(min=0)
    bits_y = -torch.log2(LIKELIHOODS[model.family](s, scale).clamp(min=1e-9)).sum()
    z = torch.round(model.h_a(y))
    bits_z = -torch.log2(model.prior_z.likelihood(z).clamp(min=1e-9)).sum()
    x_hat = torch.round(model.synthesis(s + mean, qs)[:, :, :h, :w].clamp(0, 1) * 255) / 255
    mse = ((x_hat - x) ** 2).mean().item()
    return (bits_y + bits_z).item() / (h * w), 10 * math.log10(1 / mse)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="ckpt.pt or weights_fp16.pt")
    ap.add_argument("--images", type=int, default=6, help="the first this many Kodak images")
    ap.add_argument("--deltas", default="0,0.1,0.2")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    model, step = load_model(args.ckpt)
    model.eval()
    images = kodak_tensors(args.images)
    curves = {}
    for d in (float(v) for v in args.deltas.split(",")):
        pts = [np.mean([code(model, x, q, d) for x in images], axis=0) for q in range(len(model.lambdas))]
        curves[d] = pts
        print(f"δ={d}: " + "  ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in enumerate(pts)), flush=True)
    base = curves[min(curves)]
    for d, pts in curves.items():
        if d != min(curves):
            r = bd_rate([b for b, _ in base], [p for _, p in base], [b for b, _ in pts], [p for _, p in pts])
            print(f"BD-rate of δ={d} against δ={min(curves)} (step {step}, Kodak 1-{args.images}): {r:+.2f}%")


if __name__ == "__main__":
    main()
