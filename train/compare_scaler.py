"""Per-channel gain units (Cui et al.) against one scalar per quality (the
quantization-step form of DCVC-FM's scaler), on a trained model.

    python3 train/compare_scaler.py --ckpt train/runs/hp64m/ckpt.pt --images 8

Both variants run the same trained transforms. The scalar variant keeps the
middle quality's gain vectors as a fixed channel profile (a scaler model would
fold that profile into its g_a and g_s weights) and moves every other quality
by one number: the geometric mean over channels of its gain ratio to the
profile. It measures what per-channel freedom across qualities is worth. It
is not a retrained scaler model: a network trained with a scalar from the start would adapt its
transforms to it, so the difference is an upper bound on what the scaler loses.
Rates are estimated from the likelihoods, PSNR is on rounded RGB.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402
from export import load_model  # noqa: E402
from model import NUM_QUALITIES  # noqa: E402
from train import evaluate, kodak_tensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--images", type=int, default=8, help="first N Kodak images")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    model, _ = load_model(args.ckpt)
    images = kodak_tensors(args.images)
    qualities = list(range(NUM_QUALITIES))
    torch.manual_seed(0)
    gains = evaluate(model, images, qualities)
    with torch.no_grad():
        ref = NUM_QUALITIES // 2
        for p in (model.log_gain_enc, model.log_gain_dec):
            shift = (p - p[ref]).mean(1, keepdim=True)
            p.copy_(p[ref] + shift)
    scalar = evaluate(model, images, qualities)
    print("quality  gain units (bpp, dB)  scalar (bpp, dB)")
    for q in qualities:
        print(f"{q:7d}  {gains[q][0]:.4f} {gains[q][1]:.3f}       {scalar[q][0]:.4f} {scalar[q][1]:.3f}")
    try:
        r = bd_rate([gains[q][0] for q in qualities], [gains[q][1] for q in qualities],
                    [scalar[q][0] for q in qualities], [scalar[q][1] for q in qualities])
        print(f"BD-rate of the scalar variant against gain units, {args.images} Kodak images: {r:+.1f}%")
    except ValueError:
        print("the scalar variant's PSNR does not rise with its rate: one number per quality cannot "
              "stand in for this model's gain vectors (no BD-rate)")


if __name__ == "__main__":
    main()
