"""Does a finer scale table pay? Packs one checkpoint with 64 and with 128
log-spaced scales (0.11..256) and compares the total size of Kodak files at
a few qualities. The network is the same; only the entropy tables differ.

  /usr/bin/python3 train/scale_table.py --ckpt train/runs/hp64/ckpt.pt
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import tempfile

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
KODAK = os.path.join(ROOT, "..", "shared", "data", "kodak")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True)
    ap.add_argument("--qualities", default="1,4,7")
    args = ap.parse_args()
    subprocess.run(["make", "-s", "build"], cwd=ROOT, check=True)
    lvc = os.path.join(ROOT, "bin", "lvc")
    with tempfile.TemporaryDirectory() as d:
        base = os.path.join(d, "b64")
        subprocess.run(["/usr/bin/python3", "-W", "ignore", "train/export.py", "model", "--ckpt", args.ckpt,
                        "--out", base], cwd=ROOT, check=True, capture_output=True)
        sizes = {}
        for n in (64, 128):
            bundle = os.path.join(d, f"b{n}")
            if n != 64:
                shutil.copytree(base, bundle)
            p = json.load(open(os.path.join(bundle, "params.json")))
            lo, hi = math.log(0.11), math.log(256)
            p["scales"] = [math.exp(lo + (hi - lo) * i / (n - 1)) for i in range(n)]
            json.dump(p, open(os.path.join(bundle, "params.json"), "w"))
            model = os.path.join(d, f"m{n}.lvcm")
            subprocess.run([lvc, "model", "pack", bundle, "-o", model], check=True)
            for q in args.qualities.split(","):
                total = 0
                for i in range(1, 25):
                    out = os.path.join(d, "x.lvc")
                    subprocess.run([lvc, "encode", os.path.join(KODAK, f"kodim{i:02d}.png"), "-o", out, "-q", q,
                                    "--model", model], check=True, capture_output=True)
                    total += os.path.getsize(out)
                sizes[(n, q)] = total
        print("| quality | 64 scales, bytes | 128 scales, bytes | change |")
        print("|---|---|---|---|")
        for q in args.qualities.split(","):
            a, b = sizes[(64, q)], sizes[(128, q)]
            print(f"| {q} | {a} | {b} | {100 * (b / a - 1):+.2f}% |")


if __name__ == "__main__":
    main()
