"""Training loss of two runs on the same batches, joined by step.

    python3 train/compare_logs.py train/runs/A train/runs/B [--window 5]

Twin runs (same seed and start step) draw the same batches and qualities, so
their per-step losses compare directly. Prints, per window of logged steps,
both runs' mean loss, bpp and PSNR and B's loss relative to A's.
"""
import argparse
import csv
import os


def train_rows(run):
    with open(os.path.join(run, "log.csv")) as f:
        return {int(r["step"]): r for r in csv.DictReader(f) if r["kind"] == "train"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--window", type=int, default=5, help="logged steps averaged per line")
    args = ap.parse_args()
    a, b = train_rows(args.a), train_rows(args.b)
    steps = sorted(set(a) & set(b))
    if not steps:
        raise SystemExit("the two logs share no step")
    mean = lambda rows, w, k: sum(float(rows[s][k]) for s in w) / len(w)  # noqa: E731
    print("steps            A loss   B loss   B/A-1    A bpp   B bpp   A PSNR  B PSNR")
    for i in range(0, len(steps), args.window):
        w = steps[i:i + args.window]
        la, lb = mean(a, w, "loss"), mean(b, w, "loss")
        print(f"{w[0]:>6}-{w[-1]:<6}  {la:8.4f} {lb:8.4f} {100 * (lb / la - 1):+6.2f}%  "
              f"{mean(a, w, 'bpp'):.4f}  {mean(b, w, 'bpp'):.4f}  {mean(a, w, 'psnr'):.3f}  {mean(b, w, 'psnr'):.3f}")


if __name__ == "__main__":
    main()
