"""How much detail per pixel the training crops carry, against Kodak's photos.

    python3 train/crop_detail.py [--crops 400]
    python3 train/crop_detail.py --changes B/curves.json --against A/curves.json

Detail is the mean absolute Laplacian of the luma, in grey levels. It prints
Kodak's per image and the crops' (random_scaled_batch, 192 pixels) as trained
by default, with the JPEGs and PNGs shrunk less, and band-limited
(--smooth-fraction 1). With --changes it also ranks each image's BD-rate of
B's lvc against A's (train/per_image.py) with Kodak's detail: whether a model
change moved smooth and textured images differently.
"""
import argparse
import json
import os
import random
import statistics
import sys

import numpy as np
from PIL import Image
from scipy.stats import spearmanr

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import train  # noqa: E402
from per_image import per_image_bd  # noqa: E402

SMOOTH = 14  # grey levels: under it, an image counts as smooth


def detail(rgb):
    y = rgb.astype(np.float64) @ [0.299, 0.587, 0.114]
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.mean(np.abs(lap)))


def crop_details(images, crops, smooth_fraction):
    rng = random.Random(1)
    out = []
    for _ in range(crops // 4):
        batch = train.random_scaled_batch(images, 4, 192, rng, smooth_fraction=smooth_fraction)
        out += [detail(x.permute(1, 2, 0).mul(255).numpy()) for x in batch]
    return out


def summary(values):
    v = np.array(values)
    return f"mean {v.mean():.1f}, median {np.median(v):.1f}, {100 * (v < SMOOTH).mean():.0f}% under {SMOOTH}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--crops", type=int, default=400)
    ap.add_argument("--changes", help="curves.json of the changed model")
    ap.add_argument("--against", help="curves.json of the model it changed")
    args = ap.parse_args()
    kodak = {f"kodim{i:02d}": detail(np.asarray(Image.open(os.path.join(train.DATA, "kodak", f"kodim{i:02d}.png"))
                                                 .convert("RGB"))) for i in range(1, 25)}
    print("Kodak:", summary(list(kodak.values())))
    print("  " + " ".join(f"{im[5:]}:{v:.1f}" for im, v in kodak.items()))
    if args.changes:
        with open(args.changes) as f:
            changed = json.load(f)["codecs"]["lvc"]["points"]
        with open(args.against) as f:
            before = json.load(f)["codecs"]["lvc"]["points"]
        rows, _ = per_image_bd(before, changed)
        rho, p = spearmanr([kodak[im] for _, im in rows], [r for r, _ in rows])
        smooth = [r for r, im in rows if kodak[im] < SMOOTH]
        textured = [r for r, im in rows if kodak[im] >= SMOOTH]
        print(f"BD-rate per image against detail: Spearman {rho:.2f} (p = {p:.3f}); median {statistics.median(smooth):+.1f}% "
              f"over {len(smooth)} smooth images, {statistics.median(textured):+.1f}% over {len(textured)} others")
        return
    images = train.load_training_images(os.path.join(train.DATA, "train"), 0, full_size=True)
    images = [e for e in images if train.fits_scaled(e, 192)]
    print(f"crops as trained (JPEG scales {train.JPEG_SCALES}, PNG {train.PNG_SCALES}):",
          summary(crop_details(images, args.crops, 0)))
    print("band-limited (--smooth-fraction 1):", summary(crop_details(images, args.crops, 1)))
    train.JPEG_SCALES, train.PNG_SCALES = (0.7, 0.9), (0.8, 1.0)
    print(f"shrunk less (JPEG {train.JPEG_SCALES}, PNG {train.PNG_SCALES}):", summary(crop_details(images, args.crops, 0)))


if __name__ == "__main__":
    main()
