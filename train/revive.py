"""Re-initialize the latent channels a trained model leaves idle.

    python3 train/revive.py --ckpt train/runs/hp64n/ckpt.pt --out init.pt
    python3 train/revive.py --ckpt train/runs/hp64r/ckpt.pt --report

hp64m's widening left about 90 of its 192 y channels carrying almost no bits
(train/runs/hp64m/README.md): each was a copy of a live channel, so it brought
no new information and the rate term switched it off.

This finds the channels carrying under --share of the bits at the top quality
on training crops and gives each fresh random analysis filters, scaled so its
output is as large as a live channel's. Their weights into g_s and h_a and their
predicted means start at zero, so the model computes the same image as before;
but unlike copies, random filters see information the live channels miss, so
the synthesis weights get a distortion gradient. train.py then holds them
(--hold-steps: rate free, analysis rows and encoder gains fixed) while g_s
learns to use them, and ramps their rate in (--ramp-steps).

--report shows, for a model that went through this, what the revived channels
carry now.
"""
import argparse
import os
import random
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from model import LIKELIHOODS  # noqa: E402
from train import DATA, load_training_images, random_batch  # noqa: E402


def channel_bits(model, x, q):
    """Bits each y channel costs on the batch x at quality q, as the codec codes them,
    and y before the gains."""
    qs = torch.full((x.shape[0],), q)
    y, mean, scale = model.latents(x, qs)
    with torch.no_grad():
        lik = LIKELIHOODS[model.family](torch.round(y - mean), scale).clamp(min=1e-9)
        return -torch.log2(lik).sum((0, 2, 3)), y / model.gains(qs)[0]


def report(model, revived, x):
    others = [c for c in range(model.m) if c not in set(revived)]
    w = model.g_s[0][0].weight.abs()
    print(f"{len(revived)} revived channels: mean |g_s weight| {w[:, revived].mean():.4f}, "
          f"other channels {w[:, others].mean():.4f}")
    pixels = x.shape[0] * x.shape[2] * x.shape[3]
    for q in range(len(model.lambdas)):
        bits, _ = channel_bits(model, x, q)
        print(f"q{q}: {bits.sum() / pixels:.3f} bpp, revived channels {bits[revived].sum() / pixels:.3f}")


@torch.no_grad()
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="ckpt.pt or weights_fp16.pt")
    ap.add_argument("--out")
    ap.add_argument("--report", action="store_true", help="only report what the revived channels carry")
    ap.add_argument("--share", type=float, default=0.002, help="idle below this share of the top quality's bits")
    ap.add_argument("--crops", type=int, default=32)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not args.report and not args.out:
        sys.exit("revive: --out or --report")
    torch.manual_seed(args.seed)
    model, step = load_model(args.ckpt)
    if hasattr(model.g_s, "resc"):
        sys.exit("revive: the model has a block on the latents at the head of g_s, whose readers "
                 "of the revived channels this script does not reset")
    model.eval()
    images = load_training_images(os.path.join(DATA, "train"), 256)
    x = random_batch(images, args.crops, 256, random.Random(args.seed))
    if args.report:
        revived = torch.load(args.ckpt, map_location="cpu").get("revived")
        if not revived:
            sys.exit(f"revive: {args.ckpt} records no revived channels")
        print(f"step {step}, {args.crops} training crops of 256 px:")
        report(model, revived, x)
        return
    top = len(model.lambdas) - 1
    bits, y = channel_bits(model, x, top)
    share = bits / bits.sum()
    idle = torch.nonzero(share < args.share).flatten()
    live = torch.nonzero(share >= args.share).flatten()
    if len(idle) == 0:
        sys.exit("revive: no idle channels")
    live_std = y[:, live].std((0, 2, 3)).median()
    print(f"step {step}: {len(idle)} of {model.m} channels carry under {args.share:.1%} of the bits at q{top} "
          f"({share[idle].sum():.2%} together); live channels' median std {live_std:.3f}")

    # state_dict() shares storage with the parameters: editing it edits the model.
    sd = model.state_dict()
    w = sd["g_a.6.weight"]
    w[idle] = torch.randn(len(idle), *w.shape[1:]) * w[live].std()
    sd["g_a.6.bias"][idle] = 0
    _, y = channel_bits(model, x, top)
    w[idle] *= (live_std / y[:, idle].std((0, 2, 3))).view(-1, 1, 1, 1)
    sd["g_s.0.0.weight"][:, idle] = 0
    sd["h_a.0.weight"][:, idle] = 0
    m = model.m
    for rows in (idle, idle + m):  # h_s's last conv: means, then scales
        sd["h_s.4.weight"][rows] = 0
    sd["h_s.4.bias"][idle] = 0
    for name in ("log_gain_enc", "log_gain_dec"):
        sd[name][:, idle] = sd[name][:, live].median(1, keepdim=True).values
    # No z information reaches the new channels yet, so their predicted scale
    # is a constant: their spread at the middle quality.
    y_mid, _, _ = model.latents(x, torch.full((x.shape[0],), top // 2))
    sd["h_s.4.bias"][idle + m] = y_mid[:, idle].std()
    torch.save({"model": model.state_dict(), "step": step, "n": model.n, "m": m, "family": model.family,
                "lambdas": model.lambdas, "revived": idle.tolist(), "revived_at": step}, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
