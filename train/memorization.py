"""Has a model memorized its training pixels? Compares its rate-distortion on
crops of the training JPEGs at the scale it trained on (halved) with the same
crops at two nearby scales, which hold pixels it never saw:

    python3 train/memorization.py train/runs/hp64x/weights_fp16.pt --images 150

A scale changes the content too (a smaller one packs more detail per pixel),
so the seen scale is judged against the mean of its two neighbours: BD-rate
well below both, rather than between them, means the model codes pixels it
has seen better than fresh ones of the same kind.
"""
import argparse
import json
import os
import random
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402
from export import load_model  # noqa: E402
from model import NUM_QUALITIES  # noqa: E402
from train import DATA, evaluate, load_training_images  # noqa: E402

SEEN_SCALE = 0.5  # load_training_images halves every JPEG
FRESH_SCALES = (0.45, 0.56)
PATCH = 128


def crops_at(images, scale, spots):
    """A PATCH-pixel crop of each image shrunk by scale, at the same relative place."""
    out = []
    for im, (fy, fx) in zip(images, spots):
        h, w = im.shape[:2]
        if scale == SEEN_SCALE:
            size = (w // 2, h // 2)  # exactly the training's halving
        else:
            size = (round(w * scale), round(h * scale))
        s = np.asarray(Image.fromarray(im).resize(size, Image.LANCZOS))
        y = int(fy * (s.shape[0] - PATCH))
        x = int(fx * (s.shape[1] - PATCH))
        out.append(np.ascontiguousarray(s[y:y + PATCH, x:x + PATCH]))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("weights")
    ap.add_argument("--images", type=int, default=150, help="training JPEGs to crop")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    settings = os.path.join(os.path.dirname(args.weights), "settings.json")
    if os.path.exists(settings):
        with open(settings) as f:
            if json.load(f).get("scale_augment"):
                sys.exit("memorization: this run trained on crops at random scales; no scale is unseen")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    rng = random.Random(0)
    jpegs = [im for im, lossless in load_training_images(os.path.join(DATA, "train"), 0, full_size=True)
             if not lossless and min(im.shape[:2]) * min(FRESH_SCALES) >= PATCH]
    rng.shuffle(jpegs)
    jpegs = jpegs[:args.images]
    spots = [(rng.random(), rng.random()) for _ in jpegs]
    model, step = load_model(args.weights)
    qualities = list(range(NUM_QUALITIES))
    curves = {}
    for scale in sorted(FRESH_SCALES + (SEEN_SCALE,)):
        torch.manual_seed(0)
        curves[scale] = evaluate(model, crops_at(jpegs, scale, spots), qualities)
        print(f"scale {scale}: " + "  ".join(f"q{q} {b:.3f}/{p:.2f}" for q, (b, p) in curves[scale].items()),
              flush=True)
    seen = curves[SEEN_SCALE]

    def against_seen(c):
        return bd_rate([seen[q][0] for q in qualities], [seen[q][1] for q in qualities],
                       [c[q][0] for q in qualities], [c[q][1] for q in qualities])

    rates = [against_seen(curves[s]) for s in FRESH_SCALES]
    print(f"{args.weights} (step {step}), {len(jpegs)} training JPEGs, {PATCH}-pixel crops, estimated rates")
    for s, r in zip(FRESH_SCALES, rates):
        print(f"BD-rate of scale {s} (fresh pixels) against {SEEN_SCALE} (trained on): {r:+.2f}%")
    print(f"mean of the fresh scales against the seen one: {sum(rates) / len(rates):+.2f}%")


if __name__ == "__main__":
    main()
