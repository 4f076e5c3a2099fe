#!/usr/bin/python3
"""Video rate-distortion: lvc against x264 and x265 on the clips in shared/data/video.

Usage:
  /usr/bin/python3 train/video_rd.py --lvc bin/lvc [--out train/video_out] [--jobs 2]
      [--gop 12] [--preset medium] [--clips a,b] [--render]

Every clip is first written as one 8-bit 4:2:0 Y4M by ffmpeg (the PNG sequences
through its BT.601 limited-range conversion). That file is every codec's input and
the reference it is measured against, so the colour conversion is not charged
to anyone but lvc, which codes RGB and converts back itself.

Configurations, all low delay: no B-frames, and no encoder looks at frames
after the one it codes (x264/x265 run without rate-control look-ahead,
MB-tree or CU-tree, as their zerolatency tune sets):
  lvc        intra frame every GOP frames, the rest conditioned on the frame before,
             with skipped blocks
  lvc-noskip the same without skipped blocks (--no-skip)
  lvc-intra  every frame intra (--intra 1)
  x264/x265  -preset PRESET -tune psnr, an IDR every GOP frames, no scene cut
  x264-intra/x265-intra  every frame an IDR
Encoders and decoders run on one thread each; --jobs settings run side by side.
A clip shorter than GOP frames holds one intra frame and the rest inter.

Rate: real bitstream bytes as bits per luma pixel per frame, and kbit/s at the
clip's frame rate. For lvc, the .lvc file with its container headers; for x264
and x265, the raw Annex B stream with its parameter sets but without SEI
(see ffmpeg_codec).
Distortion: PSNR of Y, U and V over 8-bit 4:2:0 frames, averaged over frames;
PSNR-YUV = (6 Y + U + V) / 8, the JVET weighting. BD-rate is on PSNR-YUV, per
clip, then averaged over clips. lvc's own colour round trip (4:2:0 to RGB and
back, no coding) bounds its PSNR-YUV; round_trip_ceiling reports that bound.

Writes OUT/curves.json and OUT/video_section.md (spliced into docs/BENCHMARKS.md
by `make video-rd`).
"""
import argparse
import datetime
import glob
import json
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bdrate import bd_rate, rate_change_at  # noqa: E402
from rd import curve as rd_curve, first_line, lvc_codec, pct, run  # noqa: E402

VIDEO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data", "video")

# name: (source, frame rate, crop). A PNG sequence is a glob, its frames taken
# in name order. CiscoVT2people's last 12 rows are padding at Y=0, below
# limited range's black, which no RGB codec can give back: they are cropped.
# foreman (3 frames) is too short for a GOP and is left out.
CLIPS = {
    "CiscoVT2people": ("CiscoVT2people_320x192_12fps.y4m", None, "320:180:0:0"),
    "BasketballPass": ("basketballpass_416x240/f*.png", 50, None),
    "Sintel": ("sintel_1024x436/frame_*.png", 24, None),
}

CRFS = [14, 18, 22, 26, 30, 34, 38, 42, 46]
REPORT_PSNRS = (30, 34, 38)
# The 4:2:0 chroma tags cmd/lvc reads; other Y4M layouts have other frame sizes.
CHROMA_420 = ("420", "420jpeg", "420mpeg2", "420paldv")
ORDER = ("lvc", "lvc-noskip", "lvc-intra", "x264", "x264-intra", "x265", "x265-intra")
# (test, anchor) pairs reported as BD-rates.
COMPARISONS = (("lvc", "x264"), ("lvc", "x265"), ("lvc-intra", "x264-intra"),
               ("lvc-intra", "x265-intra"), ("lvc", "lvc-intra"), ("lvc", "lvc-noskip"), ("x264", "x264-intra"),
               ("x265", "x265-intra"))
# The comparisons whose rate change is also tabled at REPORT_PSNRS.
AT_PSNR = (("lvc", "x264"), ("lvc", "x265"), ("lvc-intra", "x265-intra"))


def ffmpeg_codec(lib, gop, preset):
    """ffmpeg's encoder arguments and raw output format for x264 or x265.

    SEI NAL units are dropped: the encoders write their version and settings
    there, about 600 bytes once for x264 and 2.3 KB at every IDR for x265
    (ffmpeg repeats its headers in a raw stream), which would swamp a small
    clip's rate and say nothing about compression."""
    low_delay = "bframes=0:scenecut=0:rc-lookahead=0"
    if lib == "x264":
        params = "keyint=%d:%s:mbtree=0:sync-lookahead=0" % (gop, low_delay)
        return ["-c:v", "libx264", "-preset", preset, "-tune", "psnr", "-threads", "1",
                "-x264-params", params, "-bsf:v", "filter_units=remove_types=6"], "h264"
    params = "keyint=%d:%s:cutree=0:open-gop=0:pools=none:frame-threads=1:log-level=error" % (gop, low_delay)
    return ["-c:v", "libx265", "-preset", preset, "-tune", "psnr", "-x265-params", params,
            "-bsf:v", "filter_units=remove_types=39|40"], "hevc"


def configs(lvc, gop, preset):
    """Every configuration: label, qualities, and how to encode one clip."""
    out = {}
    if lvc:
        qualities = lvc_codec(lvc)["qualities"]
        for name, intra, flags, label in (("lvc", gop, [], "lvc, intra every %d" % gop),
                                          ("lvc-noskip", gop, ["--no-skip"], "lvc, intra every %d, no skipped blocks" % gop),
                                          ("lvc-intra", 1, [], "lvc, all intra")):
            out[name] = {"label": label, "qualities": qualities, "kind": "lvc", "binary": lvc,
                         "args": ["--intra", str(intra)] + flags}
    for lib in ("x264", "x265"):
        for name, g in ((lib, gop), (lib + "-intra", 1)):
            label = "%s %s, IDR every %d, no B" % (lib, preset, g) if g > 1 else "%s %s, all intra" % (lib, preset)
            args, fmt = ffmpeg_codec(lib, g, preset)
            out[name] = {"label": label, "qualities": CRFS, "kind": "ffmpeg", "args": args, "format": fmt}
    return out


# ---- Y4M --------------------------------------------------------------------

def read_y4m(path):
    """(header fields, list of (Y, U, V) uint8 planes) of an 8-bit 4:2:0 Y4M."""
    with open(path, "rb") as f:
        data = f.read()
    end = data.index(b"\n")
    fields = data[:end].decode("ascii").split()
    if fields[0] != "YUV4MPEG2":
        raise ValueError("%s: not a Y4M file" % path)
    tags = {t[0]: t[1:] for t in fields[1:]}
    w, h = int(tags["W"]), int(tags["H"])
    if tags.get("C", "420") not in CHROMA_420:
        raise ValueError("%s: chroma %s, want 8-bit 4:2:0" % (path, tags["C"]))
    cw, ch = (w + 1) // 2, (h + 1) // 2
    size = w * h + 2 * cw * ch
    frames, pos = [], end + 1
    while pos < len(data):
        nl = data.index(b"\n", pos)
        if not data[pos:nl].startswith(b"FRAME"):
            raise ValueError("%s: frame %d has no FRAME marker" % (path, len(frames)))
        pos = nl + 1
        if pos + size > len(data):
            raise ValueError("%s: frame %d is truncated" % (path, len(frames)))
        buf = np.frombuffer(data, np.uint8, size, pos)
        frames.append((buf[:w * h].reshape(h, w), buf[w * h:w * h + cw * ch].reshape(ch, cw),
                       buf[w * h + cw * ch:].reshape(ch, cw)))
        pos += size
    return tags, frames


def plane_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 100.0 if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def yuv_psnr(ref, dec):
    """Per-plane PSNRs averaged over frames, and the 6:1:1 weighted PSNR-YUV."""
    if len(ref) != len(dec):
        raise ValueError("decoded %d frames, source has %d" % (len(dec), len(ref)))
    y, u, v = (float(np.mean([plane_psnr(r[i], d[i]) for r, d in zip(ref, dec)])) for i in range(3))
    return {"psnr_y": y, "psnr_u": u, "psnr_v": v, "psnr_yuv": (6 * y + u + v) / 8}


def _clamp8(v):
    """cmd/lvc's clamp8: round half up, then clamp."""
    return np.clip(np.floor(v + 0.5), 0, 255)


def _upsample_centred(c, n, axis):
    """Bilinear 2x along axis from centred (420jpeg) chroma, edges clamped, as
    cmd/lvc's chromaTaps does."""
    pos = np.clip(np.arange(n) / 2 - 0.25, 0, c.shape[axis] - 1)
    lo = pos.astype(int)
    hi = np.minimum(lo + 1, c.shape[axis] - 1)
    w = pos - lo
    shape = [1, 1]
    shape[axis] = n
    w = w.reshape(shape)
    return np.take(c, lo, axis) * (1 - w) + np.take(c, hi, axis) * w


def _average_2x2(c):
    """Mean of each 2x2 block, over the pixels that exist at odd edges."""
    h, w = c.shape
    hh, ww = (h + 1) // 2, (w + 1) // 2
    s = np.zeros((hh * 2, ww * 2))
    n = np.zeros((hh * 2, ww * 2))
    s[:h, :w], n[:h, :w] = c, 1
    return (s.reshape(hh, 2, ww, 2).sum(axis=(1, 3))) / n.reshape(hh, 2, ww, 2).sum(axis=(1, 3))


def lvc_round_trip(frame):
    """One limited-range 420jpeg frame through what cmd/lvc's Y4M reader and
    writer do around the codec, with no coding in between: chroma
    interpolated, BT.601 to 8-bit RGB, back with chroma averaged over 2x2.
    A numpy transcription of cmd/lvc/y4m.go (yuvToRGB, y4mWriter.write)."""
    y, u, v = (p.astype(np.float64) for p in frame)
    h, w = y.shape
    cb = (_upsample_centred(_upsample_centred(u, h, 0), w, 1) - 128) * 255 / 224
    cr = (_upsample_centred(_upsample_centred(v, h, 0), w, 1) - 128) * 255 / 224
    luma = (y - 16) * 255 / 219
    r = _clamp8(luma + 1.402 * cr)
    g = _clamp8(luma - 0.344136 * cb - 0.714136 * cr)
    b = _clamp8(luma + 1.772 * cb)
    y2 = _clamp8(16 + (0.299 * r + 0.587 * g + 0.114 * b) * 219 / 255)
    u2 = _clamp8(128 + _average_2x2(-0.168736 * r - 0.331264 * g + 0.5 * b) * 224 / 255)
    v2 = _clamp8(128 + _average_2x2(0.5 * r - 0.418688 * g - 0.081312 * b) * 224 / 255)
    return y2, u2, v2


def round_trip_ceiling(frames):
    """PSNR-YUV of lvc's colour round trip alone: no lvc quality can exceed it."""
    return yuv_psnr(frames, [lvc_round_trip(f) for f in frames])


def prepare(name, tmp):
    """The clip as a 4:2:0 Y4M in tmp: (path, width, height, frames, fps)."""
    src, fps, crop = CLIPS[name]
    src = os.path.join(VIDEO, src)
    if not glob.glob(src):
        raise FileNotFoundError(src)
    path = os.path.join(tmp, name + ".y4m")
    source = ["-i", src] if fps is None else ["-framerate", str(fps), "-pattern_type", "glob", "-i", src]
    run(["ffmpeg", "-v", "error", "-y"] + source + (["-vf", "crop=" + crop] if crop else [])
        + ["-pix_fmt", "yuv420p", "-f", "yuv4mpegpipe", path])
    tags, frames = read_y4m(path)
    num, den = (int(x) for x in tags["F"].split(":"))
    return path, int(tags["W"]), int(tags["H"]), len(frames), num / den


def measure(task):
    """Encode and decode one clip at one quality; returns its record."""
    _, _, cfg, q, clip = task
    src = clip["path"]
    with tempfile.TemporaryDirectory(dir=os.path.dirname(src)) as d:
        if cfg["kind"] == "lvc":
            bits, dec = os.path.join(d, "v.lvc"), os.path.join(d, "dec.y4m")
            run([cfg["binary"], "encode", src, "-o", bits, "-q", str(q)] + cfg["args"])
            run([cfg["binary"], "decode", bits, "-o", dec])
        else:
            bits, dec = os.path.join(d, "v." + cfg["format"]), os.path.join(d, "dec.y4m")
            run(["ffmpeg", "-v", "error", "-y", "-i", src] + cfg["args"]
                + ["-crf", str(q), "-f", cfg["format"], bits])
            run(["ffmpeg", "-v", "error", "-y", "-threads", "1", "-i", bits, "-pix_fmt", "yuv420p",
                 "-f", "yuv4mpegpipe", dec])
        size = os.path.getsize(bits)
        _, out = read_y4m(dec)
    _, ref = read_y4m(src)
    pixels = clip["width"] * clip["height"] * clip["frames"]
    return dict(q=q, bytes=size, bpp=size * 8.0 / pixels,
                kbps=size * 8.0 * clip["fps"] / clip["frames"] / 1000, **yuv_psnr(ref, out))


# ---- summary and report -----------------------------------------------------

def curve(points):
    return rd_curve(points, "psnr_yuv")


def monotone(points, what=""):
    """The points whose PSNR rises with rate: log-rate must be a function of
    PSNR for the interpolation. Any point dropped is printed, so a dip in a
    curve shows instead of vanishing."""
    out = []
    for p in sorted(points, key=lambda p: p["bpp"]):
        if not out or p["psnr_yuv"] > out[-1]["psnr_yuv"]:
            out.append(p)
        else:
            print("%s: q=%s (%.4f bpp, %.2f dB) gains nothing over the point below; left out of BD-rate"
                  % (what, p["q"], p["bpp"], p["psnr_yuv"]))
    return out


def summarize(results):
    """Per comparison: BD-rate per clip and its mean; rate change at REPORT_PSNRS."""
    summary = []
    for test, anchor in COMPARISONS:
        row = {"test": test, "anchor": anchor, "clips": {}}
        for clip, res in results.items():
            if test not in res or anchor not in res:
                continue
            t, a = monotone(res[test], "%s %s" % (clip, test)), monotone(res[anchor], "%s %s" % (clip, anchor))
            try:
                bd = bd_rate(*curve(a), *curve(t))
                at = {str(m): rate_change_at(*curve(a), *curve(t), m) for m in REPORT_PSNRS}
            except ValueError as e:
                print("%s vs %s on %s: %s" % (test, anchor, clip, e))
                bd, at = float("nan"), {}
            row["clips"][clip] = {"bd_rate": bd, "at_psnr": at}
        # A clip without a BD-rate makes the mean NaN rather than a mean of the others.
        bds = [c["bd_rate"] for c in row["clips"].values()]
        row["mean"] = float(np.mean(bds)) if bds and len(bds) == len(results) else float("nan")
        summary.append(row)
    return summary


def write_markdown(path, data):
    clips, results = data["clips"], data["results"]
    names = list(clips)
    lines = [
        "Generated by `train/video_rd.py` on %s; do not edit by hand." % data["date"],
        "",
        "Clips, each coded whole as 8-bit 4:2:0 Y4M: "
        + ", ".join("%s %dx%d, %d frames at %g fps" % (n, c["width"], c["height"], c["frames"], c["fps"])
                    for n, c in clips.items()) + ".",
        "Low delay: no B-frames, no look-ahead, an intra frame every %d (so a clip of %d frames or fewer "
        "has one). x264 and x265 at preset %s with tune psnr. PSNR-YUV = (6 Y + U + V) / 8 on the 4:2:0 "
        "planes, averaged over frames. Rate from real bitstream sizes: lvc's file with its container "
        "headers, x264's and x265's raw streams with their parameter sets but without SEI. Encoders and "
        "decoders on one thread." % (data["gop"], data["gop"], data["preset"]),
        "",
        "lvc's colour round trip alone (4:2:0 → RGB → 4:2:0, no coding) reaches "
        + ", ".join("%.2f dB on %s" % (c["round_trip_psnr_yuv"], n) for n, c in clips.items())
        + ": the ceiling of its curves.",
        "",
        "BD-rate on PSNR-YUV (negative: the first needs fewer bits at equal quality):",
        "",
        "| comparison | " + " | ".join(names) + " | mean |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for row in data["summary"]:
        cells = [pct(row["clips"][n]["bd_rate"]) if n in row["clips"] else "–" for n in names]
        lines.append("| %s vs %s | %s | %s |" % (row["test"], row["anchor"], " | ".join(cells), pct(row["mean"])))
    lines += ["", "Rate change at equal PSNR-YUV (– outside a curve's range):", "",
              "| comparison | clip | " + " | ".join("%g dB" % m for m in REPORT_PSNRS) + " |",
              "|---|---|" + "---|" * len(REPORT_PSNRS)]
    for row in (r for r in data["summary"] if (r["test"], r["anchor"]) in AT_PSNR):
        for n in names:
            at = row["clips"].get(n, {}).get("at_psnr", {})
            lines.append("| %s vs %s | %s | %s |" % (row["test"], row["anchor"], n,
                                                     " | ".join(pct(at.get(str(m))) for m in REPORT_PSNRS)))
    lines += ["", "Points (bits per luma pixel per frame / PSNR-YUV dB):", ""]
    for n in names:
        lines.append("- %s:" % n)
        for cfg in ORDER:
            if cfg in results[n]:
                pts = sorted(results[n][cfg], key=lambda p: p["bpp"])
                lines.append("  - %s: %s" % (data["labels"][cfg], ", ".join(
                    "%.3f/%.2f" % (p["bpp"], p["psnr_yuv"]) for p in pts)))
    lines += ["", "Tools: " + "; ".join("%s: %s" % kv for kv in data["versions"].items())]
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def versions(lvc):
    v = {"ffmpeg": first_line(["ffmpeg", "-version"])}
    for lib in ("x264", "x265"):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "lib%s-*" % lib],
                           capture_output=True, text=True)
        v["lib" + lib] = r.stdout.strip().replace("\n", ", ") or "unknown"
    if lvc:
        v["lvc"] = first_line([lvc, "model", "info"])
    return v


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lvc", help="path to the lvc binary (lvc is skipped without it)")
    p.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "video_out"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--gop", type=int, default=12, help="intra period of the low-delay configurations")
    p.add_argument("--preset", default="medium", help="x264 and x265 preset (e.g. veryslow)")
    p.add_argument("--clips", default=",".join(CLIPS), help="comma-separated subset of " + ",".join(CLIPS))
    p.add_argument("--render", action="store_true", help="measure nothing: rewrite OUT's table from curves.json")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.render:
        with open(os.path.join(args.out, "curves.json")) as f:
            data = json.load(f)
        write_markdown(os.path.join(args.out, "video_section.md"), data)
        return 0
    if shutil.which("ffmpeg") is None:
        p.error("ffmpeg is not installed (apt-get install ffmpeg)")
    names = [n for n in args.clips.split(",") if n]
    if set(names) - set(CLIPS):
        p.error("unknown clips: %s" % ", ".join(sorted(set(names) - set(CLIPS))))
    lvc = os.path.abspath(args.lvc) if args.lvc else None
    cfgs = configs(lvc, args.gop, args.preset)
    tools = versions(lvc)  # before measuring, so a rebuilt binary cannot relabel the results
    with tempfile.TemporaryDirectory() as tmp:
        clips = {}
        for n in names:
            path, w, h, frames, fps = prepare(n, tmp)
            clips[n] = {"path": path, "width": w, "height": h, "frames": frames, "fps": fps,
                        "round_trip_psnr_yuv": round_trip_ceiling(read_y4m(path)[1])["psnr_yuv"]}
        tasks = [(n, c, cfg, q, clips[n]) for n in names for c, cfg in cfgs.items() for q in cfg["qualities"]]
        with multiprocessing.Pool(args.jobs) as pool:
            records = pool.map(measure, tasks, chunksize=1)
    results = {n: {c: [] for c in cfgs} for n in names}
    for (n, c, _, _, _), r in zip(tasks, records):
        results[n][c].append(r)
        print("%-15s %-10s q=%-3s %.4f bpp %7.1f kbit/s  YUV %.2f dB (Y %.2f)"
              % (n, c, r["q"], r["bpp"], r["kbps"], r["psnr_yuv"], r["psnr_y"]))
    for c in clips.values():
        del c["path"]
    data = {"date": datetime.date.today().isoformat(), "gop": args.gop, "preset": args.preset, "clips": clips,
            "labels": {k: v["label"] for k, v in cfgs.items()}, "versions": tools,
            "results": results}
    data["summary"] = summarize(results)
    for row in data["summary"]:
        print("%-10s vs %-10s mean BD-rate %s  (%s)" % (row["test"], row["anchor"], pct(row["mean"]), ", ".join(
            "%s %s" % (k, pct(v["bd_rate"])) for k, v in row["clips"].items())))
    with open(os.path.join(args.out, "curves.json"), "w") as f:
        json.dump(data, f, indent=1)
    write_markdown(os.path.join(args.out, "video_section.md"), data)
    print("wrote %s/{curves.json,video_section.md}" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
