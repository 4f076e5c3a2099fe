"""Checks of video_rd.py's measurement: Y4M parsing, PSNR weighting, curve cleaning."""
import math
import os
import tempfile
import unittest

import numpy as np

import video_rd


def write_y4m(path, frames, w, h, tail=b"", chroma=b" C420jpeg", marker=b"FRAME\n"):
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W%d H%d F25:1 Ip A1:1%s XYSCSS=420JPEG\n" % (w, h, chroma))
        for y, u, v in frames:
            f.write(marker + y.tobytes() + u.tobytes() + v.tobytes())
        f.write(tail)


class Y4MTest(unittest.TestCase):
    def frames(self, n, w, h, seed=0):
        rng = np.random.default_rng(seed)
        cw, ch = (w + 1) // 2, (h + 1) // 2
        return [(rng.integers(0, 256, (h, w), np.uint8), rng.integers(0, 256, (ch, cw), np.uint8),
                 rng.integers(0, 256, (ch, cw), np.uint8)) for _ in range(n)]

    def test_odd_size_round_trip(self):
        src = self.frames(3, 5, 3)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.y4m")
            write_y4m(path, src, 5, 3)
            tags, got = video_rd.read_y4m(path)
        self.assertEqual((tags["W"], tags["H"]), ("5", "3"))
        self.assertEqual(len(got), 3)
        for a, b in zip(src, got):
            for pa, pb in zip(a, b):
                np.testing.assert_array_equal(pa, pb)

    def test_frame_parameters_and_no_chroma_tag(self):
        src = self.frames(2, 4, 2)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.y4m")
            write_y4m(path, src, 4, 2, chroma=b"", marker=b"FRAME Ip XTAG=1\n")
            _, got = video_rd.read_y4m(path)
        self.assertEqual(len(got), 2)
        np.testing.assert_array_equal(got[1][2], src[1][2])

    def test_high_bit_depth_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.y4m")
            write_y4m(path, self.frames(1, 2, 2), 2, 2, chroma=b" C420p10")
            with self.assertRaisesRegex(ValueError, "want 8-bit 4:2:0"):
                video_rd.read_y4m(path)

    def test_truncated_frame_is_an_error(self):
        src = self.frames(2, 4, 4)
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.y4m")
            write_y4m(path, src, 4, 4, tail=b"FRAME\n" + bytes(5))
            with self.assertRaisesRegex(ValueError, "frame 2 is truncated"):
                video_rd.read_y4m(path)

    def test_not_420_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "a.y4m")
            with open(path, "wb") as f:
                f.write(b"YUV4MPEG2 W2 H2 F25:1 C444\nFRAME\n" + bytes(12))
            with self.assertRaisesRegex(ValueError, "want 8-bit 4:2:0"):
                video_rd.read_y4m(path)


class RoundTripTest(unittest.TestCase):
    def test_flat_colour_survives(self):
        # A mid grey and a saturated-free colour: conversion both ways is exact
        # up to rounding, so the planes come back unchanged.
        for yuv in ((128, 128, 128), (100, 110, 150)):
            frame = tuple(np.full(s, c, np.uint8) for s, c in zip(((5, 7), (3, 4), (3, 4)), yuv))
            for a, b in zip(frame, video_rd.lvc_round_trip(frame)):
                np.testing.assert_array_equal(a, b)

    def test_chroma_is_blurred_not_moved(self):
        # A vertical chroma edge: the round trip softens it but keeps it in
        # place (a half-pixel siting error would move its centre).
        u = np.tile(np.array([[100] * 4 + [156] * 4], np.uint8), (4, 1))
        frame = (np.full((8, 16), 120, np.uint8), u, np.full((4, 8), 128, np.uint8))
        _, u2, _ = video_rd.lvc_round_trip(frame)
        np.testing.assert_array_equal(u2[:, :3], 100)
        np.testing.assert_array_equal(u2[:, 5:], 156)
        self.assertEqual(u2[0, 3] + u2[0, 4], 256)  # symmetric about the edge


class FFmpegArgsTest(unittest.TestCase):
    def test_low_delay_and_no_sei(self):
        for lib, fmt, sei in (("x264", "h264", "remove_types=6"), ("x265", "hevc", "remove_types=39|40")):
            args, got = video_rd.ffmpeg_codec(lib, 12, "medium")
            params = dict(kv.split("=") for kv in args[args.index("-%s-params" % lib) + 1].split(":"))
            self.assertEqual(got, fmt)
            self.assertEqual((params["keyint"], params["bframes"], params["rc-lookahead"]), ("12", "0", "0"))
            self.assertEqual(params["mbtree" if lib == "x264" else "cutree"], "0")
            self.assertIn("filter_units=" + sei, args)


class MetricTest(unittest.TestCase):
    def test_yuv_weighting(self):
        ref = [(np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))]
        # Y off by 1 everywhere (48.13 dB), U off by 16 (24.05 dB), V exact (capped at 100).
        dec = [(np.ones((2, 2), np.uint8), np.full((1, 1), 16, np.uint8), np.zeros((1, 1), np.uint8))]
        got = video_rd.yuv_psnr(ref, dec)
        y, u = 10 * math.log10(255 ** 2), 10 * math.log10(255 ** 2 / 256)
        self.assertAlmostEqual(got["psnr_y"], y)
        self.assertAlmostEqual(got["psnr_u"], u)
        self.assertEqual(got["psnr_v"], 100.0)
        self.assertAlmostEqual(got["psnr_yuv"], (6 * y + u + 100) / 8)

    def test_frame_count_mismatch_is_an_error(self):
        f = (np.zeros((2, 2), np.uint8), np.zeros((1, 1), np.uint8), np.zeros((1, 1), np.uint8))
        with self.assertRaisesRegex(ValueError, "decoded 1 frames, source has 2"):
            video_rd.yuv_psnr([f, f], [f])

    def test_monotone_drops_points_that_do_not_gain(self):
        pts = [{"q": 2, "bpp": 0.4, "psnr_yuv": 33.0}, {"q": 0, "bpp": 0.1, "psnr_yuv": 30.0},
               {"q": 3, "bpp": 0.9, "psnr_yuv": 33.0}, {"q": 1, "bpp": 0.2, "psnr_yuv": 31.5}]
        self.assertEqual([p["bpp"] for p in video_rd.monotone(pts)], [0.1, 0.2, 0.4])

    def test_summary_matches_a_known_rate_ratio(self):
        base = [{"q": i, "bpp": b, "psnr_yuv": 30 + 4 * math.log2(b / 0.1)}
                for i, b in enumerate((0.1, 0.2, 0.4, 0.8))]
        half = [dict(p, bpp=p["bpp"] / 2) for p in base]
        row = video_rd.summarize({"clip": {"lvc": half, "x264": base}})[0]
        self.assertEqual((row["test"], row["anchor"]), ("lvc", "x264"))
        self.assertAlmostEqual(row["mean"], -50.0, places=6)


if __name__ == "__main__":
    unittest.main()
