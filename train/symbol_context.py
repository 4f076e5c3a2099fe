"""Would the coder save bits by choosing y's table from decoded neighbours?

    python3 train/symbol_context.py --weights train/runs/hp64u11/weights_fp16.pt [--images 60]

The coder picks each residual's table by quality and scale table alone. A
context made of integers the decoder already has (the magnitudes of decoded
residuals) could refine that choice bit-exactly on every platform, with no
change to the networks. This script fits tables per (quality, scale table)
and per (quality, scale table, context class) on training photos (never
Kodak; the class tables mixed with their parent as a prior worth 20
observations) and prints how many more or fewer bits the class tables take
for Kodak's y, per context and quality. Contexts, all available in the
codec's order (anchors channel after channel, then the second pass):

- n4: a second-pass position's four anchor neighbours, sum of |s| (0..5+);
- previous channel: an anchor's |s| at the same position in channel c-1;
- nonzero share: the share of channels before c that are nonzero there;
- diagonal: an anchor's two anchor neighbours in the row above.
"""
import argparse
import os
import random
import sys

import numpy as np
import torch
from scipy.stats import norm

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import load_model  # noqa: E402
from fit_tables import residuals  # noqa: E402
from model import NUM_QUALITIES, scale_table  # noqa: E402
from train import DATA, kodak_tensors, load_training_images  # noqa: E402

R = 40  # residuals beyond ±R are clipped: rare, and the same for every context
PARENT_PRIOR = 5  # observations of the Gaussian behind each (quality, scale) table, as fit_tables.py
CLASS_PRIOR = 20  # observations of the parent table behind each class's


def context_classes(s):
    """{name: (class per element, number of classes)}; anchors and second-pass
    positions get separate classes."""
    a = np.abs(s)
    c, h, w = a.shape
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    anchor = np.broadcast_to((rows + cols) % 2 == 0, a.shape)
    p = np.pad(a, ((0, 0), (1, 1), (1, 1)))
    n4 = np.minimum(p[:, :-2, 1:-1] + p[:, 2:, 1:-1] + p[:, 1:-1, :-2] + p[:, 1:-1, 2:], 5)
    previous = np.zeros_like(a)
    previous[1:] = np.minimum(a[:-1], 2)
    nonzero_before = np.cumsum(a > 0, 0) - (a > 0)
    share = np.minimum((6 * nonzero_before / np.maximum(np.arange(c), 1)[:, None, None]).astype(int), 5)
    diagonal = np.minimum(p[:, :-2, :-2] + p[:, :-2, 2:], 3)
    return {"n4 (second pass only)": (np.where(anchor, 0, 1 + n4), 7),
            "n4 + previous channel": (np.where(anchor, previous, 3 + n4), 9),
            "n4 + nonzero share": (np.where(anchor, share, 6 + n4), 12),
            "n4 + diagonal": (np.where(anchor, diagonal, 4 + n4), 10)}


def collect(model, images, q, thresholds):
    """Residuals, table indices and context classes, flattened over images."""
    s_all, t_all, classes = [], [], {}
    for x in images:
        h, w = x.shape[2] // 64 * 64, x.shape[3] // 64 * 64
        s, t, _ = residuals(model, x[:, :, :h, :w], q, thresholds)
        s_all.append(s.ravel())
        t_all.append(t.ravel())
        for name, (cl, k) in context_classes(s).items():
            classes.setdefault(name, ([], k))[0].append(cl.ravel())
    return (np.concatenate(s_all), np.concatenate(t_all),
            {name: (np.concatenate(parts), k) for name, (parts, k) in classes.items()})


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--images", type=int, default=60, help="training photos to fit on")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, _ = load_model(args.weights)
    model.eval()
    scales = np.array(scale_table())
    thresholds = np.sqrt(scales[1:] * scales[:-1])
    values = np.arange(-R, R + 1)
    gauss = np.maximum([norm.cdf(values + 0.5, scale=sc) - norm.cdf(values - 0.5, scale=sc) for sc in scales], 1e-12)
    photos = [im for im, _ in load_training_images(os.path.join(DATA, "train"), 128)]
    random.Random(0).shuffle(photos)
    train = [torch.from_numpy(im.copy()).permute(2, 0, 1).float().div(255).unsqueeze(0) for im in photos[:args.images]]
    kodak = kodak_tensors(24)
    report = {}
    for q in range(NUM_QUALITIES):
        s, t, classes = collect(model, train, q, thresholds)
        ks, kt, kclasses = collect(model, kodak, q, thresholds)
        v, kv = np.clip(s, -R, R) + R, np.clip(ks, -R, R) + R
        counts = np.zeros((len(scales), 2 * R + 1))
        np.add.at(counts, (t, v), 1)
        parent = (counts + PARENT_PRIOR * gauss) / (counts.sum(1, keepdims=True) + PARENT_PRIOR)
        base = -np.log2(parent[kt, kv]).sum()
        for name, (cl, k) in classes.items():
            cc = np.zeros((len(scales), k, 2 * R + 1))
            np.add.at(cc, (t, cl, v), 1)
            tables = (cc + CLASS_PRIOR * parent[:, None]) / (cc.sum(2, keepdims=True) + CLASS_PRIOR)
            bits = -np.log2(tables[kt, kclasses[name][0], kv]).sum()
            report.setdefault(name, []).append(f"q{q} {100 * (bits / base - 1):+.2f}%")
        pixels = sum(x.shape[2] // 64 * 64 * (x.shape[3] // 64 * 64) for x in kodak)
        print(f"q{q}: y {base / pixels:.4f} bpp under the (quality, scale) tables", flush=True)
    print("y bits with class tables, against without (Kodak):")
    for name, line in report.items():
        print(f"  {name}: " + "  ".join(line))


if __name__ == "__main__":
    main()
