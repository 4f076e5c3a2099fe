"""Uniform average of several checkpoints' weights, as one checkpoint that
export.py, eval_run.sh and compare_estimates.py take (stochastic weight
averaging, tested after the fact on copies of a run's ckpt.pt):

    python3 train/average_weights.py OUT.pt A/ckpt.pt B/ckpt.pt ...

Everything but the weights (step, options, lambdas) comes from the last one;
the optimizer state is dropped.
"""
import sys

import torch


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, paths = sys.argv[1], sys.argv[2:]
    total = None
    for path in paths:
        ck = torch.load(path, map_location="cpu")
        weights = {k: v.float() for k, v in ck["model"].items()}
        if total is None:
            total = weights
        elif total.keys() != weights.keys():
            sys.exit(f"average_weights: {path} holds other weights than {paths[0]}")
        else:
            for k, v in weights.items():
                total[k] += v
    meta = {k: v for k, v in ck.items() if k not in ("model", "opt")}
    torch.save({"model": {k: v / len(paths) for k, v in total.items()}, **meta}, out)
    print(f"averaged {len(paths)} checkpoints; step {meta['step']} from the last")


if __name__ == "__main__":
    main()
