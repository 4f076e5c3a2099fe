"""Train the lvc hyperprior model. Resumable: rerun the same command to continue.

Usage: python3 train/train.py --run train/runs/hp64 --steps 40000

Writes <run>/ckpt.pt (model + optimizer, for resuming), <run>/log.csv and
<run>/settings.json. Every --eval-every steps it estimates bpp and PSNR on a few
Kodak images (evaluation only: Kodak is never trained on).
"""
import argparse
import csv
import functools
import json
import math
import os
import random
import sys
import time

# OpenBLAS (under torch's 1x1 convolutions) keeps a worker thread of its own
# that torch.set_num_threads does not reach; beside a twin run it spun in
# sched_yield for 13% of a core. One thread: torch's OpenMP pool parallelizes.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import HyperpriorModel, NUM_QUALITIES, LAMBDA_MIN, LAMBDA_MAX, lambdas  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def load_training_images(root, min_side, full_size=False):
    """All training photos as uint8 HxWx3 arrays. JPEGs are halved with an
    antialiasing filter first, which hides most of their compression artefacts;
    with full_size they stay as they are, for random_scaled_batch to shrink."""
    images = []
    for dirpath, _, files in os.walk(root):
        for f in sorted(files):
            ext = os.path.splitext(f)[1].lower()
            if ext not in (".jpg", ".jpeg", ".png"):
                continue
            im = Image.open(os.path.join(dirpath, f)).convert("RGB")
            if ext != ".png" and not full_size:
                im = im.resize((im.width // 2, im.height // 2), Image.LANCZOS)
            if min(im.size) >= min_side:
                images.append((np.asarray(im), ext == ".png"))
    return images


def flip_randomly(p, rng):
    if rng.random() < 0.5:
        p = p[:, ::-1]
    if rng.random() < 0.5:
        p = p[::-1]
    return p


def to_tensor(batch):
    return torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255)


def random_batch(images, batch, size, rng):
    out = np.empty((batch, size, size, 3), np.uint8)
    for i in range(batch):
        im, _ = images[rng.randrange(len(images))]
        y = rng.randrange(im.shape[0] - size + 1)
        x = rng.randrange(im.shape[1] - size + 1)
        out[i] = flip_randomly(im[y:y + size, x:x + size], rng)
    return to_tensor(out)


# Scale ranges of random_scaled_batch. Every JPEG is shrunk by at least 1/0.7,
# enough to hide its block artefacts; PNGs have none and may stay at full size.
JPEG_SCALES = (0.5, 0.7)
PNG_SCALES = (0.5, 1.0)


def crop_scale(lossless, side, size, rng):
    """A scale for a size-pixel crop of an image with this short side:
    log-uniform over its kind's range, above size/side so the source fits."""
    lo, hi = PNG_SCALES if lossless else JPEG_SCALES
    lo = max(lo, size / side)
    if lo > hi:
        raise ValueError(f"a {side}-pixel image is too small for {size}-pixel crops at scales up to {hi}")
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def fits_scaled(entry, size):
    im, lossless = entry
    return min(im.shape[:2]) * (PNG_SCALES if lossless else JPEG_SCALES)[1] >= size


# Magnification range of the band-limited crops (--smooth-fraction).
SMOOTH_UPSCALE = (1.25, 2.0)


def random_scaled_batch(images, batch, size, rng, smooth_fraction=0.0):
    """Crops of full-size images shrunk by a random factor (crop_scale). The
    training set is small, most photos 320-500 pixels on the short side:
    halved, they hold 57 megapixels, each seen about 400 times by the 172,000
    steps behind hp64x. A fresh scale per crop gives new pixels.

    A smooth_fraction of the crops are band-limited: shrunk as usual to a
    smaller size, then magnified by SMOOTH_UPSCALE to size. Shrunk thumbnails
    are denser in detail per pixel than full-resolution photos (the Laplacian
    of the crops averages 27 grey levels, of Kodak's images 20, of its smooth
    half under 14), and the JPEGs cannot be used nearer full size for their
    artefacts."""
    out = np.empty((batch, size, size, 3), np.uint8)
    for i in range(batch):
        im, lossless = images[rng.randrange(len(images))]
        h, w = im.shape[:2]
        scale = crop_scale(lossless, min(h, w), size, rng)
        inner = size
        if smooth_fraction and rng.random() < smooth_fraction:
            inner = round(size / math.exp(rng.uniform(*map(math.log, SMOOTH_UPSCALE))))
        src = min(h, w, round(inner / scale))  # min: float rounding only
        y = rng.randrange(h - src + 1)
        x = rng.randrange(w - src + 1)
        # A margin of the Lanczos filter's reach, so the crop's edges are
        # filtered with their real neighbours.
        m = math.ceil(3 / scale)
        y0, x0 = max(0, y - m), max(0, x - m)
        region = Image.fromarray(im[y0:y + src + m, x0:x + src + m])
        p = region.resize((inner, inner), Image.LANCZOS, box=(x - x0, y - y0, x - x0 + src, y - y0 + src))
        if inner != size:
            p = p.resize((size, size), Image.LANCZOS)
        out[i] = flip_randomly(np.asarray(p), rng)
    return to_tensor(out)


def last_logged_step(log_path):
    """The last step in a run's log, 0 without one."""
    if not os.path.exists(log_path):
        return 0
    with open(log_path) as f:
        steps = [int(row["step"]) for row in csv.DictReader(f)]
    return max(steps, default=0)


def drop_rows_after(log_path, step):
    """A resumed run repeats the steps after its last checkpoint; drop their
    old rows so that the log has each step once."""
    if not os.path.exists(log_path):
        return
    with open(log_path, newline="") as f:
        rows = list(csv.reader(f))
    kept = rows[:1] + [r for r in rows[1:] if int(r[0]) <= step]
    if len(kept) < len(rows):
        with open(log_path + ".tmp", "w", newline="") as f:
            csv.writer(f).writerows(kept)
        os.replace(log_path + ".tmp", log_path)


def lr_at(step, args):
    """Warmup, constant, then cosine decay over the last part of the run. A
    run initialized from weights warms its fresh optimizer up again."""
    since = step - args.start_step if args.init else step
    if since < args.warmup:
        return args.lr * (since + 1) / args.warmup
    start = int(args.steps * args.decay_start)
    if step < start:
        return args.lr
    t = min(1.0, (step - start) / max(1, args.steps - start))
    return args.lr_min + 0.5 * (args.lr - args.lr_min) * (1 + math.cos(math.pi * t))


class ThreadTuner:
    """Picks the OpenMP thread count that trains fastest right now.

    Two threads run about 8x slower than one while another process keeps a
    core busy (a build, a test run), so every `every` steps the trainer times
    `probe` steps at each count from 1 to max_threads and keeps the fastest.
    It probes again at once when the chosen count runs twice as slow as it
    did when probed: a process started beside the trainer.
    """

    def __init__(self, max_threads, every=1000, probe=40):
        self.counts = list(range(1, max_threads + 1))
        self.every, self.probe = every, probe
        self.best = max_threads
        self.timings = {}
        self.trial = None  # index into counts while probing
        self.t0 = 0.0
        torch.set_num_threads(self.best)

    def before_step(self, step):
        if len(self.counts) == 1:
            return
        if self.trial is None and (step % self.every == 0 or self._probe_due(step)):
            self.trial, self.timings = 0, {}
            self._start(step)
        elif self.trial is not None and step - self.trial_start >= self.probe:
            self.timings[self.counts[self.trial]] = time.time() - self.t0
            self.trial += 1
            if self.trial < len(self.counts):
                self._start(step)
            else:
                self.best = min(self.timings, key=self.timings.get)
                self.trial = None
                torch.set_num_threads(self.best)
                self.watch_start, self.watch_t0 = step, time.time()

    def _probe_due(self, step):
        """True before the first probe and when the chosen count has slowed
        down twice over since it was probed (checked every `probe` steps)."""
        if not self.timings:
            return True  # not probed yet: a resumed run starts between probes
        if step - self.watch_start < self.probe:
            return False
        now = time.time()
        slowed_down = now - self.watch_t0 > 2 * self.timings[self.best]
        self.watch_start, self.watch_t0 = step, now
        return slowed_down

    def _start(self, step):
        torch.set_num_threads(self.counts[self.trial])
        self.trial_start, self.t0 = step, time.time()


# Per-quality parameters that learn at the gains' rate (--gain-lr-mult).
GAIN_PARAMS = ("log_gain_enc", "log_gain_dec", "recon_offsets")
SCALER_PARAMS = ("log_fs_a", "log_fs_s")


def param_groups(model):
    """Parameter names in optimizer order: the transforms, the gains, then the
    feature scalers (a group only when the model has them)."""
    names = [n for n, _ in model.named_parameters()]
    groups = [[n for n in names if n not in GAIN_PARAMS + SCALER_PARAMS], [n for n in names if n in GAIN_PARAMS]]
    scalers = [n for n in names if n in SCALER_PARAMS]
    return groups + [scalers] if scalers else groups


def make_optimizer(model, args):
    params = dict(model.named_parameters())
    mults = [1.0, args.gain_lr_mult, args.scaler_lr_mult]
    return torch.optim.Adam([{"params": [params[n] for n in group], "lr_mult": mult}
                             for group, mult in zip(param_groups(model), mults)], lr=args.lr)


def load_optimizer_state(opt, model, saved):
    """Loads Adam's state, also from checkpoints with other parameter groups
    (one group before the gains had their own, two before the scalers had
    theirs). That works because the per-quality parameters are registered
    last, group by group, so the flat order never changed. The learning-rate
    multipliers are this run's, not the checkpoint's. With the same groups
    the order is the optimizer's own, so a fine block registered after the
    gains resumes too."""
    mults = [g["lr_mult"] for g in opt.param_groups]
    if len(saved["param_groups"]) == len(opt.param_groups):
        opt.load_state_dict(saved)
    else:
        order = [n for group in param_groups(model) for n in group]
        assert order == [n for n, _ in model.named_parameters()], "parameter groups out of registration order"
        opt.load_state_dict({"state": saved["state"], "param_groups": opt.state_dict()["param_groups"]})
    for g, mult in zip(opt.param_groups, mults):
        g["lr_mult"] = mult


def kodak_tensors(n):
    """The first n Kodak images (evaluation only, never training) as [1,3,H,W] float tensors in [0,1].

    np.array copies: torch.from_numpy warns on PIL's read-only buffers."""
    return [torch.from_numpy(np.array(Image.open(os.path.join(DATA, "kodak", f"kodim{i:02d}.png")).convert("RGB")))
            .permute(2, 0, 1).float().div(255).unsqueeze(0) for i in range(1, n + 1)]


def pad64(x):
    h, w = x.shape[2:]
    ph, pw = (-h) % 64, (-w) % 64
    return torch.nn.functional.pad(x, (0, pw, 0, ph), mode="replicate"), h, w


@torch.no_grad()
def evaluate(model, images, qualities):
    """Estimated bpp (from likelihoods) and PSNR per quality on Kodak images (kodak_tensors)."""
    model.eval()
    res = {}
    for q in qualities:
        bpp, psnr = [], []
        for x in images:
            xp, h, w = pad64(x)
            x_hat, bits = model(xp, torch.tensor([q]))
            x_hat = x_hat[:, :, :h, :w].clamp(0, 1)
            mse = torch.mean((torch.round(x_hat * 255) - x * 255) ** 2).item()
            bpp.append(bits.item() / (h * w))
            psnr.append(10 * math.log10(255 ** 2 / max(mse, 1e-10)))
        res[q] = (sum(bpp) / len(bpp), sum(psnr) / len(psnr))
    model.train()
    return res


def quality_weights(text):
    """Parses --quality-weights: one non-negative weight per quality, not all zero."""
    try:
        w = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers")
    if len(w) != NUM_QUALITIES or min(w) < 0 or sum(w) <= 0:
        raise argparse.ArgumentTypeError(f"need {NUM_QUALITIES} non-negative weights, not all zero: {text!r}")
    return w


def draw_qualities(weights, batch, per_batch):
    """Quality indices for a batch: one for all images (per_batch) or one each,
    uniform or in proportion to weights."""
    n = 1 if per_batch else batch
    if weights is None:
        q = torch.randint(0, NUM_QUALITIES, (n,))
    else:
        q = torch.multinomial(torch.tensor(weights, dtype=torch.float64), n, replacement=True)
    return q.repeat(batch) if per_batch else q


def main():
    ap = argparse.ArgumentParser(allow_abbrev=False)  # `given` below matches options by full name
    ap.add_argument("--run", required=True)
    ap.add_argument("--steps", type=int, default=40000)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--m", type=int, default=96)
    ap.add_argument("--family", choices=["gaussian", "laplace"], default="gaussian")
    # 192-pixel crops give z 3x3, so h_a and h_s see more than padding
    # (6.9% BD-rate against 128-pixel crops, session 16); most photos are
    # too small for them once halved, hence the scale augmentation.
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--patch", type=int, default=192)
    ap.add_argument("--scale-augment", action=argparse.BooleanOptionalAction, default=True,
                    help="crop full-size photos shrunk by a random factor per crop, instead of halved JPEGs")
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--lr-min", type=float, default=1e-5)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--decay-start", type=float, default=0.65)
    ap.add_argument("--threads", type=int, default=2,
                    help="at most this many; the trainer measures whether fewer run faster")
    ap.add_argument("--gain-lr-mult", type=float, default=10,
                    help="learning-rate factor for the per-quality gains; each row only gets a gradient "
                         "when its quality is drawn, and at 1x they needed >20k steps to follow a new λ range")
    ap.add_argument("--lambda-per", choices=["batch", "image"], default="batch",
                    help="draw the quality index once per batch (default) or per image")
    ap.add_argument("--quality-weights", type=quality_weights, metavar="W0,...,W7",
                    help="draw quality q in proportion to Wq instead of uniformly, e.g. to give the top "
                         "qualities, where the transforms cap the curve, more of the shared networks' training")
    ap.add_argument("--lambda-min", type=float, help=f"λ of quality 0 for a new model (default {LAMBDA_MIN}); "
                    "a checkpoint or --init file that records its λs keeps them unless this is given")
    ap.add_argument("--lambda-max", type=float, help=f"λ of the top quality (default {LAMBDA_MAX})")
    ap.add_argument("--hold-steps", type=int, default=2000,
                    help="channels re-initialized by train/revive.py first train this many steps with their "
                         "rate free and their analysis filters and encoder gains fixed, so that g_s learns to "
                         "use them (Adam would otherwise shrink them at full speed under any rate weight)")
    ap.add_argument("--ramp-steps", type=int, default=3000,
                    help="after the hold, their rate term rises linearly to full weight over this many steps")
    ap.add_argument("--scaler-lr-mult", type=float, default=1,
                    help="learning-rate multiplier of the feature scalers: at the gains' 10x they "
                         "scrambled the transforms of a trained model (hp64f attempt 1)")
    ap.add_argument("--feature-scalers", action="store_true",
                    help="add per-quality scalers on every (I)GDN input (model.py) to a model that has none")
    ap.add_argument("--linear-skip", action="store_true",
                    help="add linear pixel-latent paths around g_a and g_s (model.py); they start at zero")
    ap.add_argument("--decoder-blocks", action="store_true",
                    help="add residual blocks at 1/8 and 1/4 resolution to g_s (model.py); they start as the identity")
    ap.add_argument("--fine-block", type=int, nargs="?", const=32, default=0, metavar="WIDTH",
                    help="add a bottleneck block of WIDTH channels (default 32) at 1/2 resolution to g_s "
                         "(model.py); it starts as the identity")
    ap.add_argument("--context-slices", type=int, default=0, metavar="S",
                    help="code y in S slices, each slice's mean and scale also conditioned on the slices "
                         "before it (model.py ChannelContext); it starts as the plain hyperprior")
    ap.add_argument("--checkerboard", type=int, nargs="?", const=64, default=0, metavar="HIDDEN",
                    help="code y in two passes, the second conditioned on the first's ŷ around each position "
                         "(model.py CheckerboardContext, HIDDEN channels, default 64); it starts as the plain "
                         "hyperprior, or, from --init with a narrower context, as that context (load_widened)")
    ap.add_argument("--anchor-context", type=int, nargs="?", const=64, default=0, metavar="HIDDEN",
                    help="code the checkerboard's anchors in two passes, the second conditioned on the first's "
                         "ŷ at its corners (model.py AnchorContext, HIDDEN channels, default 64); it starts "
                         "as the plain checkerboard")
    ap.add_argument("--slice-context", type=int, default=0, metavar="S",
                    help="code each checkerboard pass in S channel slices, each slice's mean and scale corrected "
                         "from the slices before at the same position (model.py SliceContext; PyTorch only); "
                         "from --init, it starts as no correction")
    ap.add_argument("--fine-width", type=int, default=0, metavar="W",
                    help="widen g_s's last stage (1/2 resolution) to W channels (model.py load_widened); "
                         "the model starts computing what it did")
    ap.add_argument("--analysis-width", type=int, default=0, metavar="W",
                    help="widen g_a's hidden layers to W channels (W >= N; model.py load_widened); "
                         "the model starts computing what it did")
    ap.add_argument("--synthesis-width", type=int, default=0, metavar="W",
                    help="widen g_s's stages at 1/8 and 1/4 resolution to W channels (W >= N; model.py "
                         "load_widened); the model starts computing what it did")
    ap.add_argument("--quarter-width", type=int, default=0, metavar="W",
                    help="with --synthesis-width, give g_s's 1/4 stage its own width W (N to keep it; "
                         "default: the same as the 1/8 stage)")
    ap.add_argument("--hs-width", type=int, default=0, metavar="W",
                    help="add a 3x3 conv to W channels and a Relu at the end of h_s (W >= N), or widen it to W; "
                         "from --init, it starts as the identity (model.py load_widened)")
    ap.add_argument("--smooth-fraction", type=float, default=0.0,
                    help="with --scale-augment, this fraction of the crops band-limited (random_scaled_batch), "
                         "nearer full-resolution photos than the shrunk thumbnails")
    ap.add_argument("--rate-proxy", choices=["noise", "round"], default="noise",
                    help="rate of y and z with uniform noise, or of the rounded values (straight-through), "
                         "which is what the files cost (model.py HyperpriorModel.rate_proxy); the training "
                         "log's Kodak estimates follow it")
    ap.add_argument("--recon-offsets", action="store_true",
                    help="add learned offsets to the ŷ that g_s sees, by quality, scale table and residual "
                         "(model.py); they start at zero and leave the bits unchanged")
    ap.add_argument("--coarse-block", action="store_true",
                    help="a residual block on the latents at the head of g_s, at 1/16 resolution")
    ap.add_argument("--encoder-fine-block", action="store_true",
                    help="add a residual block at 1/2 resolution to g_a (model.py); it starts as the identity")
    ap.add_argument("--train-only", metavar="PREFIX",
                    help="train only the parameters whose names start with PREFIX (e.g. context.): the rest "
                         "stays as loaded, which measures a new part on a trained model quickly")
    ap.add_argument("--encoder-blocks", action="store_true",
                    help="add residual blocks to the analysis of a model that has none (model.py)")
    ap.add_argument("--log-every", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=4000)
    ap.add_argument("--ckpt-every", type=float, default=300, help="seconds")
    ap.add_argument("--eval-images", type=int, default=6)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--init", help="start from these model weights (e.g. a committed weights_fp16.pt) "
                                   "when the run has no checkpoint yet; the optimizer starts afresh")
    ap.add_argument("--start-step", type=int, default=0, help="with --init: step to continue the schedule from")
    args = ap.parse_args()

    # Denormal floats appear in GDN and the prior as training goes on and slow
    # CPU arithmetic many times over.
    torch.set_flush_denormal(True)
    os.makedirs(args.run, exist_ok=True)
    ckpt_path = os.path.join(args.run, "ckpt.pt")
    # A checkpoint or --init file fixes the model's shape; --n/--m/--family
    # only shape a model that starts from scratch.
    ck = torch.load(ckpt_path) if os.path.exists(ckpt_path) else None
    log_path = os.path.join(args.run, "log.csv")
    logged = last_logged_step(log_path)
    if ck is None and logged > args.start_step:
        # A clone has a run's log but not its checkpoint: starting here,
        # from scratch or --init, would drop the log's later rows.
        sys.exit(f"train: {args.run} has a log up to step {logged} but no checkpoint; "
                 "train in a new --run directory (a run's README has its --init command)")
    settings_path = os.path.join(args.run, "settings.json")
    given = {a.split("=")[0].replace("--no-", "--") for a in sys.argv[1:] if a.startswith("--")}
    if ck and os.path.exists(settings_path):
        # A resumed run keeps its schedule and origin: options not given
        # again come from its settings, so `make train RUN=...` continues it
        # as started instead of on the defaults.
        with open(settings_path) as f:
            before = json.load(f)
        before.setdefault("scale_augment", False)  # runs from before the option
        for key, value in before.items():
            if hasattr(args, key) and "--" + key.replace("_", "-") not in given:
                setattr(args, key, value)
    w = torch.load(args.init, map_location="cpu") if ck is None and args.init else None
    src = ck or w
    saved = HyperpriorModel.options(src) if src else {}
    if src:
        args.n, args.m, args.family = saved["n"], saved["m"], saved["family"]
    lams = (src or {}).get("lambdas") or lambdas()
    if args.lambda_min or args.lambda_max:
        lams = lambdas(args.lambda_min or lams[0], args.lambda_max or lams[-1])
    # Channels that train/revive.py re-initialized, and the step they were revived at.
    revived, revived_at = (src or {}).get("revived", []), (src or {}).get("revived_at", 0)
    args.feature_scalers = args.feature_scalers or saved.get("feature_scalers", False)
    args.encoder_blocks = args.encoder_blocks or saved.get("encoder_blocks", False)
    args.decoder_blocks = args.decoder_blocks or saved.get("decoder_blocks", False)
    args.linear_skip = args.linear_skip or saved.get("linear_skip", False)
    args.fine_block = args.fine_block or saved.get("fine_block", 0)
    args.context_slices = args.context_slices or saved.get("context_slices", 0)
    args.encoder_fine_block = args.encoder_fine_block or saved.get("encoder_fine_block", False)
    args.coarse_block = args.coarse_block or saved.get("coarse_block", False)
    args.recon_offsets = args.recon_offsets or saved.get("recon_offsets", False)
    args.anchor_context = args.anchor_context or saved.get("anchor_context", 0)
    args.checkerboard = args.checkerboard or saved.get("checkerboard", 0)
    args.fine_width = args.fine_width or saved.get("fine_width", 0)
    args.slice_context = args.slice_context or saved.get("slice_context", 0)
    args.hs_width = args.hs_width or saved.get("hs_width", 0)
    args.analysis_width = args.analysis_width or saved.get("analysis_width", 0)
    args.synthesis_width = args.synthesis_width or saved.get("synthesis_width", 0)
    # A saved 1/4 stage as wide as the 1/8 one follows --synthesis-width.
    apart = saved.get("quarter_width", 0) != saved.get("synthesis_width", 0)
    args.quarter_width = args.quarter_width or (saved["quarter_width"] if apart else args.synthesis_width)
    widths = ("hs_width", "checkerboard", "fine_width", "analysis_width", "anchor_context", "slice_context",
              "synthesis_width", "quarter_width")
    if ck and [getattr(args, k) for k in widths] != [saved.get(k, 0) for k in widths]:
        sys.exit(f"train: {ckpt_path} holds a model of other widths; widen from its weights in a new run "
                 "(--init with export.py weights)")
    model = HyperpriorModel(args.n, args.m, family=args.family, lambda_list=lams,
                            feature_scalers=args.feature_scalers, encoder_blocks=args.encoder_blocks,
                            decoder_blocks=args.decoder_blocks,
                            linear_skip=args.linear_skip, fine_block=args.fine_block,
                            context_slices=args.context_slices, encoder_fine_block=args.encoder_fine_block,
                            coarse_block=args.coarse_block,
                            checkerboard=args.checkerboard, fine_width=args.fine_width, hs_width=args.hs_width,
                            analysis_width=args.analysis_width, recon_offsets=args.recon_offsets,
                            anchor_context=args.anchor_context, slice_context=args.slice_context,
                            synthesis_width=args.synthesis_width, quarter_width=args.quarter_width)
    model.rate_proxy = args.rate_proxy
    opt = make_optimizer(model, args)
    step = 0
    if ck:
        model.load_state_dict(ck["model"])
        load_optimizer_state(opt, model, ck["opt"])
        step = ck["step"]
        print(f"resumed at step {step}", flush=True)
    elif w:
        missing, unexpected = model.load_widened({k: v.float() for k, v in w["model"].items()})
        # Only new scalers (they start at 1), new residual blocks (they start
        # as the identity), new skip paths, a new channel context and new
        # reconstruction offsets (they start at zero) may be missing.
        new = set(SCALER_PARAMS) | {"recon_offsets"} | {k for k in missing if HyperpriorModel.is_block_key(k)
                                    or HyperpriorModel.is_skip_key(k) or HyperpriorModel.is_context_key(k)}
        if unexpected or set(missing) - new:
            sys.exit(f"train: {args.init} does not fit this model: missing {missing}, unexpected {unexpected}")
        step = args.start_step
        print(f"initialized from {args.init} (trained {w.get('step')} steps), schedule at step {step}", flush=True)
    if args.train_only:
        trained = [n for n, p in model.named_parameters() if n.startswith(args.train_only)]
        if not trained:
            sys.exit(f"train: no parameter starts with {args.train_only!r}")
        for n, p in model.named_parameters():
            p.requires_grad_(n.startswith(args.train_only))
    settings = dict(vars(args), lambdas=lams, qualities=NUM_QUALITIES, revived=revived, revived_at=revived_at)
    with open(os.path.join(args.run, "settings.json"), "w") as f:
        json.dump(settings, f, indent=1)

    t0 = time.time()
    images = load_training_images(os.path.join(DATA, "train"), 0, full_size=args.scale_augment)
    found = len(images)
    if args.scale_augment:
        images = [e for e in images if fits_scaled(e, args.patch)]
    else:
        images = [e for e in images if min(e[0].shape[:2]) >= args.patch]
    if args.smooth_fraction and not args.scale_augment:
        sys.exit("train: --smooth-fraction needs --scale-augment")
    batch_of = (functools.partial(random_scaled_batch, smooth_fraction=args.smooth_fraction)
                if args.scale_augment else random_batch)
    kodak = kodak_tensors(args.eval_images)
    print(f"{len(images)} training images loaded in {time.time() - t0:.0f}s", flush=True)
    if len(images) < found:
        # A larger crop silently trains on fewer photos (at 256 pixels a
        # third of them, hp64u3), which can cost more than the crop gains.
        print(f"warning: {found - len(images)} of {found} photos are too small for {args.patch}-pixel crops"
              + ("" if args.scale_augment else " (--scale-augment cuts crops from the full-size photos)"),
              flush=True)
    if not images:
        sys.exit(f"train: no training photo is large enough for {args.patch}-pixel crops")

    rng = random.Random(args.seed * 1000003 + step)
    torch.manual_seed(args.seed * 7919 + step)
    lam = torch.tensor(lams)
    drop_rows_after(log_path, step)
    new_log = not os.path.exists(log_path)
    logf = open(log_path, "a", newline="")
    log = csv.writer(logf)
    if new_log:
        log.writerow(["step", "seconds", "lr", "loss", "bpp", "psnr", "kind", "grad_norm", "threads"])
    acc = [0.0, 0.0, 0.0, 0, 0.0]
    tuner = ThreadTuner(args.threads)
    last_ckpt = t_start = t_log = time.time()
    model.train()
    while step < args.steps:
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args) * g["lr_mult"]
        tuner.before_step(step)
        x = batch_of(images, args.batch, args.patch, rng)
        # One quality per batch: gradient clipping then gives every quality an
        # equal say in the shared transforms, where per-image draws let the
        # high-lambda images (100x larger distortion term) dominate each step.
        q = draw_qualities(args.quality_weights, args.batch, args.lambda_per == "batch")
        since_revival = step - revived_at
        holding = revived and since_revival < args.hold_steps
        rate_weight = None
        if revived and since_revival < args.hold_steps + args.ramp_steps:
            rate_weight = torch.ones(args.m)
            rate_weight[revived] = max(0, since_revival - args.hold_steps) / args.ramp_steps
        x_hat, bits = model(x, q, rate_weight)
        mse = ((x_hat - x) ** 2).mean((1, 2, 3))
        bpp = bits / (args.patch * args.patch)
        loss = (lam[q] * 255 ** 2 * mse + bpp).mean()
        opt.zero_grad()
        loss.backward()
        if holding and model.analysis_out.weight.grad is not None:  # None: frozen by --train-only
            for grad in (model.analysis_out.weight.grad, model.analysis_out.bias.grad):
                grad[revived] = 0
            model.log_gain_enc.grad[:, revived] = 0
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        acc[0] += loss.item()
        acc[1] += bpp.mean().item()
        acc[2] += (10 * torch.log10(1 / mse.clamp(min=1e-10))).mean().item()
        acc[3] += 1
        acc[4] += float(grad_norm)
        if step % args.log_every == 0:
            n = acc[3]
            log.writerow([step, round(time.time() - t_start), f"{lr_at(step, args):.3g}",
                          f"{acc[0] / n:.4f}", f"{acc[1] / n:.4f}", f"{acc[2] / n:.3f}", "train", f"{acc[4] / n:.3g}", tuner.best])
            logf.flush()
            print(f"step {step} loss {acc[0] / n:.4f} bpp {acc[1] / n:.3f} psnr {acc[2] / n:.2f} "
                  f"grad {acc[4] / n:.3g} ({n / (time.time() - t_log):.2f} steps/s, {tuner.best} threads)", flush=True)
            t_log = time.time()
            acc = [0.0, 0.0, 0.0, 0, 0.0]
        if step % args.eval_every == 0 or step == args.steps:
            for qq, (b, p) in evaluate(model, kodak, [0, NUM_QUALITIES // 2, NUM_QUALITIES - 1]).items():
                log.writerow([step, round(time.time() - t_start), "", "", f"{b:.4f}", f"{p:.3f}", f"kodak{len(kodak)}_q{qq}"])
                print(f"  eval q{qq}: {b:.3f} bpp {p:.2f} dB", flush=True)
            logf.flush()
        if time.time() - last_ckpt > args.ckpt_every or step == args.steps:
            tmp = ckpt_path + ".tmp"
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "n": args.n, "m": args.m, "family": args.family, "lambdas": lams,
                        "revived": revived, "revived_at": revived_at, "train_only": args.train_only,
                        "scale_augment": args.scale_augment}, tmp)
            os.replace(tmp, ckpt_path)
            last_ckpt = time.time()
    logf.close()


if __name__ == "__main__":
    main()
