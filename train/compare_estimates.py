"""BD-rate between two models from estimated rates, for models the Go codec
cannot run yet (a channel context):

    python3 train/compare_estimates.py A/weights_fp16.pt B/weights_fp16.pt --images 24

Both models see the same Kodak images and the same noise draws. Rates come
from the likelihoods (with the training's uniform-noise proxy, or with
--rate-proxy round of the rounded residuals the coder writes), PSNR from
rounded RGB, as in the training log's evaluations. For models the codec runs,
train/eval_run.sh and compare_runs.py measure real files instead.
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
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--images", type=int, default=24, help="first N Kodak images")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rate-proxy", choices=["noise", "round"], default="noise",
                    help="rate of y and z plus uniform noise (the training's proxy), or of the rounded "
                         "values, nearer what the files cost (model.py HyperpriorModel.rate_proxy)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    images = kodak_tensors(args.images)
    qualities = list(range(NUM_QUALITIES))
    res = []
    for path in (args.a, args.b):
        model, step = load_model(path)
        model.rate_proxy = args.rate_proxy
        torch.manual_seed(0)
        res.append(evaluate(model, images, qualities))
        print(f"{path}: step {step}", flush=True)
    a, b = res
    print("quality  A (bpp, dB)       B (bpp, dB)")
    for q in qualities:
        print(f"{q:7d}  {a[q][0]:.4f} {a[q][1]:.3f}    {b[q][0]:.4f} {b[q][1]:.3f}")
    r = bd_rate([a[q][0] for q in qualities], [a[q][1] for q in qualities],
                [b[q][0] for q in qualities], [b[q][1] for q in qualities])
    print(f"BD-rate of B against A ({args.rate_proxy} rates, {args.images} Kodak images): {r:+.2f}%")


if __name__ == "__main__":
    main()
