"""BD-rate between lvc curves measured by train/rd.py for two models.

    python3 train/compare_runs.py A/curves.json B/curves.json

Prints, per quality, both models' Kodak averages, then the BD-rate of B
against A in PSNR and MS-SSIM (negative: B needs fewer bits). Both files
come from real bitstreams (rd.py --lvc-model).
"""
import json
import sys
import os

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate  # noqa: E402


def lvc_points(path):
    with open(path) as f:
        return json.load(f)["codecs"]["lvc"]["points"]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = (lvc_points(p) for p in sys.argv[1:])
    if [p["q"] for p in a] != [p["q"] for p in b]:
        sys.exit("the two runs measured different qualities")
    print("quality  A bpp   A PSNR  A MS-SSIM dB   B bpp   B PSNR  B MS-SSIM dB")
    for pa, pb in zip(a, b):
        print(f"{pa['q']:>7}  {pa['bpp']:.4f} {pa['psnr']:7.3f} {pa['msssim_db']:8.3f}     "
              f"{pb['bpp']:.4f} {pb['psnr']:7.3f} {pb['msssim_db']:8.3f}")
    for key, name in (("psnr", "PSNR"), ("msssim_db", "MS-SSIM")):
        r = bd_rate([p["bpp"] for p in a], [p[key] for p in a], [p["bpp"] for p in b], [p[key] for p in b])
        print(f"BD-rate of B against A ({name}): {r:+.2f}%")


if __name__ == "__main__":
    main()
