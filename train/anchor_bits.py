"""How the checkerboard's second pass costs against its anchors, image by image.

    python3 train/anchor_bits.py --weights train/runs/hp64u7/weights_fp16.pt

The anchors (half the latent positions) are coded with h_s's means and scales
alone; the other half also see the anchors' ŷ around them. For each Kodak
image and quality this prints the second half's estimated y bits over the
anchors' (Gaussian likelihoods of the rounded residuals): the lower, the more
a spatial context earns on that image, and the more the anchors, which have
none, cost in comparison.
"""
import argparse
import os
import statistics
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from model import LIKELIHOODS, CheckerboardContext  # noqa: E402
from train import kodak_tensors, pad64  # noqa: E402


@torch.no_grad()
def bit_ratio(model, x, q):
    """Estimated y bits of the second-pass positions over the anchors'."""
    xp, _, _ = pad64(x)
    y, mean, scale = model.latents(xp, torch.tensor([q]))
    bits = -torch.log2(LIKELIHOODS[model.family](torch.round(y - mean), scale).clamp(min=1e-9))
    anchor = CheckerboardContext.anchors(y).bool().expand_as(bits)
    return bits[~anchor].sum().item() / bits[anchor].sum().item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", type=int, default=24, help="the first this many Kodak images")
    ap.add_argument("--qs", default="1,3,5")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, step = load_model(args.weights)
    model.eval()
    if not model.checkerboard or model.anchor_context:
        sys.exit(f"anchor_bits: {args.weights} has no checkerboard context, or anchors with a context of "
                 "their own (an anchor context), which this ratio does not separate")
    images = kodak_tensors(args.images)
    print(f"step {step}: second-pass y bits / anchor y bits, per Kodak image")
    for q in (int(v) for v in args.qs.split(",")):
        rows = sorted((bit_ratio(model, x, q), i + 1) for i, x in enumerate(images))
        print(f"q{q}: median {statistics.median(r for r, _ in rows):.3f}; "
              + " ".join(f"kodim{i:02d} {r:.2f}" for r, i in rows))


if __name__ == "__main__":
    main()
