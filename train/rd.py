#!/usr/bin/python3
"""Rate-distortion evaluation on Kodak: JPEG, WebP, AVIF and lvc.

Usage:
  /usr/bin/python3 train/rd.py [--codecs jpeg,webp,avif,lvc,lvc-refine] [--images N]
      [--out train/rd_out] [--lvc PATH_TO_LVC_BINARY] [--refine-steps 40] [--jobs 2]
      [--kodak DIR] [--timing-reps 5] [--merge]

Every image is encoded and decoded at every quality setting of every codec.
Rate is the real file size (bits / (W*H)); PSNR is on 8-bit RGB; MS-SSIM is
Wang et al.'s 5-scale MS-SSIM computed on each of R, G, B and averaged (the
pytorch_msssim / CompressAI convention). Per-image metrics are averaged over
the images for each quality setting. A separate sequential pass then times
encode and decode (median wall-clock and CPU time, including process
start-up) on one 768x512 image.

Writes OUT/curves.json, OUT/rd.png and OUT/rd_section.md.
"""
import argparse
import datetime
import json
import math
import multiprocessing
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np
from PIL import Image
from scipy.ndimage import correlate1d

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate, metric_at_rate, rate_change_at  # noqa: E402

KODAK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "kodak")
ANCHORS = ("jpeg", "webp", "avif")
LVC = ("lvc", "lvc-refine")  # lvc-refine: the encoder's slow mode, --refine STEPS
ORDER = ANCHORS + LVC
REPORT_RATES = (0.25, 0.5, 1.0)
# PSNRs at which each learned codec's rate is set against each anchor's: where
# along the curve a BD-rate's average comes from.
REPORT_PSNRS = (26, 28, 30, 32, 34)
TIMING_TARGET_BPP = 0.5
PLOT_MAX_BPP = 2.0
LVC_DEFAULT_QUALITIES = 8

# Command templates. {png}/{ppm}: source image, {bits}: compressed file,
# {dec}: decoded image. Decoders write uncompressed files where they can:
# zlib-compressing a PNG costs 10-20x the decode itself and would swamp the
# timing. For AVIF the "quality" is the AV1 quantizer (lower is better); it is
# used as both --min and --max so the whole image uses it.
CODECS = {
    "jpeg": {
        "label": "JPEG 4:2:0 (libjpeg-turbo)",
        "ext": ".jpg",
        "dec_ext": ".ppm",
        "qualities": [5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95],
        "enc": ["cjpeg", "-quality", "{q}", "-optimize", "-outfile", "{bits}", "{ppm}"],
        "dec": ["djpeg", "-outfile", "{dec}", "{bits}"],
    },
    "webp": {
        "label": "WebP (libwebp)",
        "ext": ".webp",
        "dec_ext": ".ppm",
        "qualities": [0, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90],
        "enc": ["cwebp", "-quiet", "-m", "6", "-q", "{q}", "{png}", "-o", "{bits}"],
        "dec": ["dwebp", "-quiet", "{bits}", "-ppm", "-o", "{dec}"],
    },
    "avif": {
        "label": "AVIF 4:4:4 (libaom)",
        "ext": ".avif",
        "dec_ext": ".png",
        "qualities": [60, 56, 52, 48, 44, 40, 36, 32, 28, 24, 20, 16],
        "enc": ["avifenc", "-c", "aom", "-s", "6", "-j", "1", "-y", "444",
                "--min", "{q}", "--max", "{q}", "{png}", "{bits}"],
        "dec": ["avifdec", "-c", "dav1d", "-j", "1", "--png-compress", "0", "{bits}", "{dec}"],
    },
}

# Codecs run single-threaded: lvc is a Go program, the rest are told so by flags.
CODEC_ENV = dict(os.environ, GOMAXPROCS="1", OMP_NUM_THREADS="1")


def lvc_codec(binary, model=None, refine=0):
    """The lvc codec entry, with its number of qualities from `lvc model info`.
    model: a .lvcm file to use instead of the embedded default; refine: the
    encoder's refinement steps."""
    n, info = LVC_DEFAULT_QUALITIES, ""
    with_model = ["--model", model] if model else []
    try:
        r = subprocess.run([binary, "model", "info"] + ([model] if model else []),
                           capture_output=True, text=True, timeout=60, env=CODEC_ENV)
        info = r.stdout.strip()
        m = re.search(r"^qualities:\s*(\d+)\s*$", info, re.M) if r.returncode == 0 else None
        if m:
            n = int(m.group(1))
        else:
            print("lvc: could not read the number of qualities from `model info`; assuming %d" % n)
    except (OSError, subprocess.TimeoutExpired) as e:
        print("lvc: `model info` failed (%s); assuming %d qualities" % (e, n))
    return {
        "label": "lvc --refine %d" % refine if refine else "lvc",
        "ext": ".lvc",
        "dec_ext": ".png",
        "qualities": list(range(n)),
        "enc": [binary, "encode", "{png}", "-o", "{bits}", "-q", "{q}"] + with_model
               + (["--refine", str(refine)] if refine else []),
        "dec": [binary, "decode", "{bits}", "-o", "{dec}"] + with_model,
        "info": info,
    }


def fill(template, **kw):
    return [a.format(**kw) for a in template]


def run(argv):
    """Run a codec command; returns its (wall-clock, CPU user+sys) seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=CODEC_ENV)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(argv), r.returncode, r.stderr.strip()))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def load_rgb(path):
    im = Image.open(path)
    if im.mode != "RGB":
        raise ValueError("%s: expected 8-bit RGB, got mode %s" % (path, im.mode))
    return np.asarray(im)


# ---- metrics ---------------------------------------------------------------

def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * math.log10(255.0 ** 2 / mse))


MS_SSIM_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])
_g = np.exp(-((np.arange(11) - 5.0) ** 2) / (2 * 1.5 ** 2))
GAUSS = _g / _g.sum()


def _blur(x):
    """Separable 11x11 Gaussian over axes 0 and 1, 'valid' region only."""
    y = correlate1d(correlate1d(x, GAUSS, axis=0), GAUSS, axis=1)
    return y[5:-5, 5:-5]


def _ssim_cs(x, y):
    """Per-channel mean SSIM and contrast-structure term, for HxWxC floats."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _blur(x), _blur(y)
    sxx = _blur(x * x) - mx * mx
    syy = _blur(y * y) - my * my
    sxy = _blur(x * y) - mx * my
    cs = (2 * sxy + c2) / (sxx + syy + c2)
    ssim = (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs
    return ssim.mean(axis=(0, 1)), cs.mean(axis=(0, 1))


def _halve(x):
    """2x2 average pooling; an odd last row/column is dropped."""
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    x = x[:h, :w]
    return 0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2])


def ms_ssim(a, b):
    """5-scale MS-SSIM of two HxWx3 uint8 images, per channel then averaged."""
    x, y = a.astype(np.float64), b.astype(np.float64)
    factors = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim, cs = _ssim_cs(x, y)
        if scale < len(MS_SSIM_WEIGHTS) - 1:
            factors.append(np.maximum(cs, 0))
            x, y = _halve(x), _halve(y)
    factors.append(np.maximum(ssim, 0))
    per_channel = np.prod(np.stack(factors) ** MS_SSIM_WEIGHTS[:, None], axis=0)
    return float(per_channel.mean())


def msssim_db(v):
    return -10 * math.log10(1 - v) if v < 1 else float("inf")


# ---- measurement -----------------------------------------------------------

def measure(task):
    """Encode + decode one image at one quality; returns its per-image record."""
    name, codec, q, png, ppm, tmp = task
    stem = os.path.splitext(os.path.basename(png))[0]
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        bits = os.path.join(d, stem + codec["ext"])
        dec = os.path.join(d, stem + "_dec" + codec["dec_ext"])
        run(fill(codec["enc"], q=q, png=png, ppm=ppm, bits=bits))
        run(fill(codec["dec"], bits=bits, dec=dec))
        size = os.path.getsize(bits)
        ref, out = load_rgb(png), load_rgb(dec)
    if ref.shape != out.shape:
        raise ValueError("%s %s q=%s: decoded shape %s != %s" % (name, stem, q, out.shape, ref.shape))
    h, w = ref.shape[:2]
    return {"image": stem, "bytes": size, "bpp": size * 8.0 / (w * h),
            "psnr": psnr(ref, out), "msssim": ms_ssim(ref, out)}


def average(records):
    bpp = float(np.mean([r["bpp"] for r in records]))
    p = float(np.mean([r["psnr"] for r in records]))
    ms = float(np.mean([r["msssim"] for r in records]))
    return {"bpp": bpp, "psnr": p, "msssim": ms, "msssim_db": msssim_db(ms)}


def measure_codec(name, codec, images, ppms, tmp, pool):
    tasks = [(name, codec, q, png, ppms.get(png), tmp) for q in codec["qualities"] for png in images]
    results = pool.imap(measure, tasks) if pool else map(measure, tasks)
    points = []
    for q in codec["qualities"]:
        per_image = [next(results) for _ in images]
        pt = dict(q=q, **average(per_image), per_image=per_image)
        points.append(pt)
        print("  %-5s q=%-3s bpp %.4f  PSNR %.3f  MS-SSIM %.5f (%.2f dB)"
              % (name, q, pt["bpp"], pt["psnr"], pt["msssim"], pt["msssim_db"]), flush=True)
    return points


def time_codec(codec, points, png, ppm, tmp, reps):
    """Median wall-clock and CPU encode/decode ms on one image, at the quality
    whose Kodak-average rate is closest to TIMING_TARGET_BPP."""
    q = min(points, key=lambda p: abs(math.log(p["bpp"] / TIMING_TARGET_BPP)))["q"]
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(dir=tmp) as d:
        bits = os.path.join(d, "t" + codec["ext"])
        dec = os.path.join(d, "t" + codec["dec_ext"])
        enc_argv = fill(codec["enc"], q=q, png=png, ppm=ppm, bits=bits)
        dec_argv = fill(codec["dec"], bits=bits, dec=dec)
        runs = []
        for i in range(reps + 1):  # the first round only warms the page cache
            enc, dec = run(enc_argv), run(dec_argv)
            if i:
                runs.append(enc + dec)
        size = os.path.getsize(bits)
    w, h = Image.open(png).size
    enc_wall, enc_cpu, dec_wall, dec_cpu = (float(np.median(c)) * 1e3 for c in zip(*runs))
    return {"image": os.path.basename(png), "q": q, "bpp": size * 8.0 / (w * h), "reps": reps,
            "encode_ms": enc_wall, "decode_ms": dec_wall, "encode_cpu_ms": enc_cpu, "decode_cpu_ms": dec_cpu,
            "loadavg": load}


# ---- reporting -------------------------------------------------------------

def first_line(argv):
    """The first line a tool prints (its version, for the report)."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True)
        return (r.stdout.strip() or r.stderr.strip()).splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def tool_versions(names, codecs):
    v = {}
    if "jpeg" in names:
        v["cjpeg"] = first_line(["cjpeg", "-version"])
    if "webp" in names:
        v["cwebp"] = first_line(["cwebp", "-version"])
        v["dwebp"] = first_line(["dwebp", "-version"])
    if "avif" in names:
        v["avifenc"] = first_line(["avifenc", "--version"])
    for n in LVC:
        if n in names:
            info = codecs[n]["info"]
            v["lvc"] = codecs[n]["enc"][0] + (": " + info.splitlines()[0] if info else "")
    return v


def curve(points, key):
    return [p["bpp"] for p in points], [p[key] for p in points]


def safe_bd(anchor, test, key):
    try:
        return bd_rate(*curve(anchor, key), *curve(test, key))
    except ValueError as e:
        print("BD-rate skipped: %s" % e)
        return float("nan")


def summarize(results):
    """BD-rates (PSNR and MS-SSIM dB) vs each anchor present, and PSNR at REPORT_RATES."""
    anchors = [a for a in ANCHORS if a in results]
    summary = {}
    for name, res in results.items():
        pts = res["points"]
        summary[name] = {
            "bd_psnr": {a: safe_bd(results[a]["points"], pts, "psnr") for a in anchors},
            "bd_msssim": {a: safe_bd(results[a]["points"], pts, "msssim_db") for a in anchors},
            "psnr_at": {str(r): metric_at_rate(*curve(pts, "psnr"), r) for r in REPORT_RATES},
            "rate_change_at": {a: {str(m): rate_change_at(*curve(results[a]["points"], "psnr"), *curve(pts, "psnr"), m)
                                   for m in REPORT_PSNRS} for a in anchors if name not in anchors},
        }
    return anchors, summary


def fmt(v, spec):
    return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def pct(v):
    out = fmt(v, "+.1f")
    return out if out == "–" else out + "%"


def tables(results, anchors, summary):
    """The summary, timing and per-quality tables, each as markdown lines."""
    names = list(results)
    label = {n: results[n]["label"] for n in names}
    summary_rows = ["| codec | " + " | ".join("PSNR@%g bpp" % r for r in REPORT_RATES)
                    + "".join(" | BD-rate vs %s" % results[a]["label"].split()[0] for a in anchors)
                    + "".join(" | BD-rate (MS-SSIM) vs %s" % results[a]["label"].split()[0] for a in anchors)
                    + " |",
                    "|---" * (1 + len(REPORT_RATES) + 2 * len(anchors)) + "|"]
    for n in names:
        s = summary[n]
        summary_rows.append("| %s | " % label[n]
                            + " | ".join(fmt(s["psnr_at"][str(r)], ".2f") for r in REPORT_RATES)
                            + "".join(" | " + fmt(s["bd_psnr"][a], "+.1f") + "%" for a in anchors)
                            + "".join(" | " + fmt(s["bd_msssim"][a], "+.1f") + "%" for a in anchors) + " |")
    at_psnr = ["| codec | against | " + " | ".join("%g dB" % m for m in REPORT_PSNRS) + " |",
               "|---|---|" + "---|" * len(REPORT_PSNRS)]
    for n in names:
        if n in anchors:
            continue
        for a, changes in summary[n]["rate_change_at"].items():
            at_psnr.append("| %s | %s | " % (label[n], results[a]["label"].split()[0])
                           + " | ".join(pct(changes[str(m)]) for m in REPORT_PSNRS) + " |")
    timing = ["| codec | timing image | quality | bpp | encode ms | decode ms | encode CPU ms | decode CPU ms "
              "| load | measured |", "|---|---|---|---|---|---|---|---|---|---|"]
    for n in names:
        t = results[n]["timing"]
        timing.append("| %s | %s | %s | %.3f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |" % (
            label[n], t["image"], t["q"], t["bpp"], t["encode_ms"], t["decode_ms"], t["encode_cpu_ms"],
            t["decode_cpu_ms"], t["loadavg"], results[n]["measured"]))
    per_quality = []
    for n in names:
        per_quality += ["", "%s, Kodak averages:" % label[n], "",
                        "| quality | bpp | PSNR (dB) | MS-SSIM | MS-SSIM (dB) |", "|---|---|---|---|---|"]
        per_quality += ["| %s | %.4f | %.3f | %.5f | %.2f |"
                        % (p["q"], p["bpp"], p["psnr"], p["msssim"], p["msssim_db"]) for p in results[n]["points"]]
    return summary_rows, at_psnr, timing, per_quality


def write_markdown(path, data, anchors, summary):
    results = data["codecs"]
    lines = [
        "## Rate-distortion on Kodak",
        "",
        "Generated by `train/rd.py` on %s from %s. Rate is the real file size in bits "
        "per pixel; PSNR is on 8-bit RGB, computed per image and averaged over the images; MS-SSIM is the "
        "5-scale Wang et al. MS-SSIM (11x11 Gaussian, σ=1.5) on each of R, G, B, averaged over channels "
        "and images, and shown in dB as −10·log10(1−MS-SSIM) of that average. BD-rates use PCHIP "
        "interpolation of log-rate over the overlapping quality range; negative means fewer bits than "
        "the anchor at equal quality. PSNR at a given rate is PCHIP-interpolated over log-rate "
        "(– where the rate is outside the measured range)." % (
            data["date"], "all 24 Kodak images" if len(data["images"]) == 24
            else "%d Kodak images (%s)" % (len(data["images"]), ", ".join(data["images"]))),
        "",
    ]
    summary_table, at_psnr, timing_table, per_quality = tables(results, anchors, summary)
    lines += summary_table + [""]
    if len(at_psnr) > 2:
        lines += ["Rate against each anchor at equal PSNR, PCHIP-interpolated over log-rate "
                  "as the BD-rates are (negative: fewer bits; – outside either curve):", ""] + at_psnr + [""]
    lines += timing_table + per_quality
    lines += ["", "Settings (codecs run single-threaded; `{q}` is the quality setting in the tables above):", ""]
    for n, r in results.items():
        lines.append("- %s: `%s`, then `%s`" % (r["label"], " ".join(r["enc"]), " ".join(r["dec"])))
    lines += ["- JPEG input is the PNG converted to binary PPM; the others read the PNG.",
              "- Timing: median of %d sequential runs after one warm-up, on one 768x512 image, at the quality "
              "nearest %.1f bpp on average. It includes process start-up and writing the decoded file (PPM for "
              "djpeg and dwebp, uncompressed PNG for avifdec, what `lvc decode` writes for lvc). CPU ms is the "
              "process's user+sys time, which other load on the machine disturbs less than wall-clock; load "
              "is the 1-minute load average when the codec's timing started (the machine has %d cores)."
              % (data["timing_reps"], TIMING_TARGET_BPP, os.cpu_count()),
              "", "Tool versions:", ""]
    lines += ["- %s: %s" % (k, v) for k, v in data["versions"].items()]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def plot(path, results):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, key, ylabel in ((axes[0], "psnr", "PSNR RGB (dB)"), (axes[1], "msssim_db", "MS-SSIM RGB (dB)")):
        visible = []
        for n, r in results.items():
            bpp, val = zip(*sorted((p["bpp"], p[key]) for p in r["points"]))
            ax.plot(bpp, val, "o-", ms=3, label=r["label"])
            # Curves run past the x limit; fit the y range to the part that shows.
            visible += [v for b, v in zip(bpp, val) if b <= PLOT_MAX_BPP] + [np.interp(PLOT_MAX_BPP, bpp, val)]
        ax.set_xlabel("bits per pixel")
        ax.set_ylabel(ylabel)
        ax.set_xlim(0, PLOT_MAX_BPP)
        ax.set_ylim(min(visible) - 0.5, max(visible) + 0.5)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Kodak, average over images")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_outputs(out, data):
    data["codecs"] = {n: data["codecs"][n] for n in ORDER if n in data["codecs"]}
    anchors, summary = summarize(data["codecs"])
    data["summary"] = summary
    with open(os.path.join(out, "curves.json"), "w") as f:
        json.dump(data, f, indent=1)
    plot(os.path.join(out, "rd.png"), data["codecs"])
    write_markdown(os.path.join(out, "rd_section.md"), data, anchors, summary)
    return anchors, summary


# ---- main ------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--codecs", default="jpeg,webp,avif,lvc",
                   help="comma-separated subset of jpeg,webp,avif,lvc,lvc-refine")
    p.add_argument("--images", type=int, default=24, help="use the first N Kodak images")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "rd_out"))
    p.add_argument("--lvc", help="path to the lvc binary (lvc is skipped without it)")
    p.add_argument("--lvc-model", help="a .lvcm model file for lvc (default: the binary's embedded model)")
    p.add_argument("--refine-steps", type=int, default=40, help="lvc-refine's --refine STEPS")
    p.add_argument("--jobs", type=int, default=2, help="images measured in parallel (RD pass only)")
    p.add_argument("--kodak", default=KODAK, help="directory holding kodim01.png..kodim24.png")
    p.add_argument("--timing-reps", type=int, default=5, help="timed runs per codec after one warm-up")
    p.add_argument("--merge", action="store_true",
                   help="keep other codecs' results from an existing OUT/curves.json on the same images")
    p.add_argument("--render", action="store_true",
                   help="measure nothing: rewrite OUT's tables and plot from its curves.json "
                        "(the other options are ignored)")
    args = p.parse_args()
    if args.render:
        with open(os.path.join(args.out, "curves.json")) as f:
            write_outputs(args.out, json.load(f))
        print("wrote %s/{curves.json,rd.png,rd_section.md} from its measurements" % args.out)
        return 0

    names = [n.strip() for n in args.codecs.split(",") if n.strip()]
    unknown = set(names) - set(ORDER)
    if unknown:
        p.error("unknown codecs: %s" % ", ".join(sorted(unknown)))
    if args.timing_reps < 1:
        p.error("--timing-reps must be at least 1")
    codecs = dict(CODECS)
    for n in LVC:
        if n not in names:
            continue
        if args.lvc and os.path.isfile(args.lvc) and os.access(args.lvc, os.X_OK):
            codecs[n] = lvc_codec(os.path.abspath(args.lvc),
                                  os.path.abspath(args.lvc_model) if args.lvc_model else None,
                                  args.refine_steps if n == "lvc-refine" else 0)
        else:
            print("%s: no binary%s; skipping it" % (n, " at " + args.lvc if args.lvc else " given (--lvc)"))
            names.remove(n)
    for n in list(names):
        missing = [t for t in (codecs[n]["enc"][0], codecs[n]["dec"][0]) if not shutil.which(t)]
        if missing:
            print("%s: %s not found; skipping" % (n, ", ".join(missing)))
            names.remove(n)

    images = sorted(os.path.join(args.kodak, f) for f in os.listdir(args.kodak)
                    if re.fullmatch(r"kodim\d\d\.png", f))[:args.images]
    if not images:
        p.error("no kodimNN.png images in %s" % args.kodak)
    stems = [os.path.splitext(os.path.basename(i))[0] for i in images]
    timing_png = next((i for i in images if Image.open(i).size == (768, 512)), None)
    if timing_png is None:
        p.error("the chosen images include none of size 768x512 for timing")

    os.makedirs(args.out, exist_ok=True)
    data = {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "images": stems, "timing_reps": args.timing_reps,
            "metrics": {"psnr": "RGB 8-bit, per image, averaged",
                        "msssim": "5-scale MS-SSIM on R, G, B separately, averaged over channels, then images",
                        "msssim_db": "-10*log10(1 - average MS-SSIM)"},
            "versions": {}, "codecs": {}}
    old_path = os.path.join(args.out, "curves.json")
    if args.merge and os.path.exists(old_path):
        with open(old_path) as f:
            old = json.load(f)
        if old["images"] == stems:
            data["codecs"] = {n: c for n, c in old["codecs"].items() if n not in names}
            data["versions"] = old.get("versions", {})
            print("merging earlier results for: %s" % (", ".join(data["codecs"]) or "none"))
        else:
            print("--merge: %s used other images; not merging" % old_path)

    with tempfile.TemporaryDirectory(prefix="lvc_rd_") as tmp:
        # cjpeg reads PPM, not PNG: convert each image once.
        ppms = {}
        if "jpeg" in names:
            for png in images:
                ppms[png] = os.path.join(tmp, os.path.basename(png)[:-4] + ".ppm")
                Image.open(png).convert("RGB").save(ppms[png])
        data["versions"].update(tool_versions(names, codecs))
        pool = multiprocessing.Pool(args.jobs) if args.jobs > 1 else None
        try:
            for n in names:
                print("%s: %d qualities x %d images" % (n, len(codecs[n]["qualities"]), len(images)), flush=True)
                t0 = time.time()
                points = measure_codec(n, codecs[n], images, ppms, tmp, pool)
                data["codecs"][n] = {
                    "label": codecs[n]["label"], "enc": codecs[n]["enc"], "dec": codecs[n]["dec"],
                    "measured": data["date"][:10], "points": points}
                print("  %s done in %.0f s" % (n, time.time() - t0), flush=True)
        finally:
            if pool:
                pool.close()
                pool.join()
        # Sequential timing pass, after the pool is gone, so no codec runs concurrently with another.
        for n in names:
            t = time_codec(codecs[n], data["codecs"][n]["points"], timing_png, ppms.get(timing_png), tmp,
                           args.timing_reps)
            data["codecs"][n]["timing"] = t
            print("timing %-5s %s q=%s (%.3f bpp): encode %.1f ms (CPU %.1f), decode %.1f ms (CPU %.1f)"
                  % (n, t["image"], t["q"], t["bpp"], t["encode_ms"], t["encode_cpu_ms"], t["decode_ms"],
                     t["decode_cpu_ms"]), flush=True)

    if not data["codecs"]:
        print("nothing measured")
        return 1
    anchors, summary = write_outputs(args.out, data)
    print()
    summary_table, at_psnr, timing_table, _ = tables(data["codecs"], anchors, summary)
    print("\n".join(summary_table + [""] + at_psnr + [""] + timing_table))
    print("\nwrote %s/{curves.json,rd.png,rd_section.md}" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
