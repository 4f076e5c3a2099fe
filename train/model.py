"""The lvc image model: a mean-scale hyperprior with per-quality channel gains.

Every network uses only the portable op set (Conv, Mul/Add/Div, Sqrt, Relu,
Reshape/Transpose or DepthToSpace), so the Go runtime and onnxruntime-web run
the exported graphs. Upsampling is conv + PixelShuffle: ConvTranspose2d runs
about 40x slower in this machine's PyTorch build.
"""
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

# Quality indices map to rate-distortion trade-offs log-spaced between these
# ends. They are the defaults of weights that do not record their own λs
# (hp64m and before); hp64b used 0.0018..0.18 (0.31..1.35 bpp on Kodak),
# hp64m 0.0009..0.2 (0.17..1.23), hp64r 0.0004..0.2 (0.09..1.38).
NUM_QUALITIES = 8
LAMBDA_MIN, LAMBDA_MAX = 0.0009, 0.2


def lambdas(lo=LAMBDA_MIN, hi=LAMBDA_MAX):
    r = hi / lo
    return [lo * r ** (q / (NUM_QUALITIES - 1)) for q in range(NUM_QUALITIES)]


# The Gaussian conditional codes each latent with one of these scales. The Go
# entropy coder holds one integer CDF table per entry.
SCALE_MIN, SCALE_MAX, NUM_SCALES = 0.11, 256.0, 64

# Reconstruction offsets (HyperpriorModel recon_offsets) are kept for coded
# residuals up to this magnitude; larger ones share the outermost entries.
OFFSET_RESIDUALS = 3


def scale_table():
    lo, hi = math.log(SCALE_MIN), math.log(SCALE_MAX)
    return [math.exp(lo + (hi - lo) * i / (NUM_SCALES - 1)) for i in range(NUM_SCALES)]


class GDN(nn.Module):
    """Generalized divisive normalization, y = x / sqrt(beta + gamma * x^2).

    beta and gamma are kept positive by squaring a reparametrized value, so the
    exported graph is plain Mul, Conv (1x1), Add, Sqrt and Div. The gradient
    of gamma_p**2 is zero where gamma_p is zero, so the off-diagonal terms
    start small but non-zero (gamma = 1e-6), or they would never learn.
    """

    OFF_DIAGONAL_INIT = 1e-3

    def __init__(self, ch, inverse=False):
        super().__init__()
        self.inverse = inverse
        self.beta_p = nn.Parameter(torch.ones(ch))
        eye = torch.eye(ch)
        self.gamma_p = nn.Parameter(0.1 * eye + self.OFF_DIAGONAL_INIT * (1 - eye))

    def forward(self, x):
        beta = self.beta_p ** 2 + 1e-6
        gamma = (self.gamma_p ** 2).view(x.shape[1], x.shape[1], 1, 1)
        norm = torch.sqrt(F.conv2d(x * x, gamma, beta))
        return x * norm if self.inverse else x / norm


def conv(cin, cout, k, stride=1):
    return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2)


class Up(nn.Sequential):
    """2x upsampling: 3x3 conv to 4x channels, then depth-to-space."""

    def __init__(self, cin, cout, k=3):
        super().__init__(conv(cin, cout * 4, k), nn.PixelShuffle(2))


def zero_init(conv):
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return conv


class Residual(nn.Module):
    """x + body(x). Each body's last conv starts at zero, so adding a block to a
    trained network leaves its function unchanged."""

    def forward(self, x):
        return x + self.body(x)


class ResBlock(Residual):
    """x + conv(relu(conv(x))), 3x3."""

    def __init__(self, ch):
        super().__init__()
        self.body = nn.Sequential(conv(ch, ch, 3), nn.ReLU(), zero_init(conv(ch, ch, 3)))


class BottleneckBlock(Residual):
    """x + 1x1(relu(3x3(relu(1x1(x))))) through mid channels (mid = ch/2: a
    quarter of a ResBlock's MACs), for the half-resolution stage where a full
    one would cost 18 kMAC/pixel."""

    def __init__(self, ch, mid):
        super().__init__()
        self.body = nn.Sequential(conv(ch, mid, 1), nn.ReLU(), conv(mid, mid, 3), nn.ReLU(),
                                  zero_init(conv(mid, ch, 1)))


class ChannelContext(nn.Module):
    """Channel-conditional entropy model (Minnen and Singh 2020), small: y is
    coded in slices, and slice i's mean and scale are h_s's plus a correction
    computed from h_s's parameters for the slice and the slices decoded before
    it (3x3 conv to hidden channels, Relu, 1x1). Decoding stays parallel over
    positions; only the slices are serial. The corrections start at zero, so
    a trained hyperprior model's function is unchanged."""

    def __init__(self, m, slices, hidden=32):
        super().__init__()
        if m % slices:
            raise ValueError(f"{m} latent channels do not split into {slices} slices")
        self.width = m // slices
        self.nets = nn.ModuleList(
            nn.Sequential(conv(2 * self.width + i * self.width, hidden, 3), nn.ReLU(),
                          zero_init(conv(hidden, 2 * self.width, 1)))
            for i in range(slices))

    def forward(self, y, mean, scale):
        """Per-slice means and scales, and ŷ = round(y - mean) + mean
        (straight-through), slice after slice."""
        means, scales, y_hats = [], [], []
        for i, net in enumerate(self.nets):
            sl = slice(i * self.width, (i + 1) * self.width)
            d = net(torch.cat([mean[:, sl], scale[:, sl], *y_hats], 1))
            mu, sigma = mean[:, sl] + d[:, :self.width], scale[:, sl] + d[:, self.width:]
            means.append(mu)
            scales.append(sigma)
            y_hats.append(ste_round(y[:, sl] - mu) + mu)
        return torch.cat(means, 1), torch.cat(scales, 1), torch.cat(y_hats, 1)


class PassContext(nn.Module):
    """One pass of a spatial context: at its target positions, a correction
    of h_s's mean and scale computed from the ŷ at the known positions
    around (3x3 conv) and the position's own mean and scale (1x1 conv),
    summed, Relu, 1x1. The correction starts at zero, so a trained model's
    function is unchanged. Subclasses say which positions are known and
    which are targets; inside the 3x3 window a target sees known ŷ only at
    TAPS, so the codec runs the network at the targets alone, as 1x1 convs
    over the ŷ at TAPS and the position's own mean and scale."""
    TAPS = ()

    def __init__(self, m, hidden):
        super().__init__()
        self.m = m
        self.spatial = conv(m, hidden, 3)
        self.params = nn.Conv2d(2 * m, hidden, 1)
        self.out = zero_init(nn.Conv2d(hidden, 2 * m, 1))

    @staticmethod
    def mask(like, keep):
        """1 where keep(rows, cols) holds on a (B, C, H, W) tensor's
        positions, 0 elsewhere: (1, 1, H, W)."""
        h, w = like.shape[-2:]
        rows = torch.arange(h, device=like.device).view(-1, 1)
        cols = torch.arange(w, device=like.device).view(1, -1)
        return keep(rows, cols).to(like.dtype).view(1, 1, h, w)

    def corrections(self, y, mean, scale):
        """mean and scale corrected at the targets from ŷ = round(y - mean)
        + mean (straight-through) at the known positions."""
        y_known = (ste_round(y - mean) + mean) * self.known(y)
        d = self.out(F.relu(self.spatial(y_known) + self.params(torch.cat([mean, scale], 1))))
        target = self.target(y)
        return mean + d[:, :self.m] * target, scale + d[:, self.m:] * target

    def positionwise(self):
        """The network as the codec runs it: 1x1 conv (6M -> hidden), Relu,
        1x1 conv (hidden -> 2M), over gather()'s input."""
        hidden = self.out.in_channels
        first = nn.Conv2d(6 * self.m, hidden, 1)
        out = nn.Conv2d(hidden, 2 * self.m, 1)
        with torch.no_grad():
            w = self.spatial.weight
            taps = [w[:, :, 1 + dy, 1 + dx] for dy, dx in self.TAPS]
            first.weight.copy_(torch.cat(taps + [self.params.weight[:, :, 0, 0]], 1)[:, :, None, None])
            first.bias.copy_(self.spatial.bias + self.params.bias)
            out.load_state_dict(self.out.state_dict())
        return nn.Sequential(first, nn.ReLU(), out)

    @classmethod
    def gather(cls, y_hat, mean, scale):
        """positionwise()'s input, (1, 6M, 1, P): for each of the P targets
        in raster order, the ŷ at its TAPS (zero outside the tensor), then
        its own mean and scale."""
        _, _, h, w = y_hat.shape
        target = cls.target(y_hat)[0, 0].bool()
        padded = F.pad(y_hat, (1, 1, 1, 1))
        parts = [padded[:, :, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in cls.TAPS]
        return torch.cat(parts + [mean, scale], 1)[:, :, target].unsqueeze(2)


class AnchorContext(PassContext):
    """The checkerboard's anchors in two passes: those with row and column
    even are coded with h_s's mean and scale alone, and those with both odd
    get a correction from the first ones at their four corners. On smooth
    images the anchors, without spatial context, cost up to twice what the
    second pass does (train/anchor_bits.py); this leaves a quarter of the
    positions without."""
    TAPS = ((-1, -1), (-1, 1), (1, -1), (1, 1))

    @classmethod
    def known(cls, like):
        return cls.mask(like, lambda r, c: (r % 2 == 0) & (c % 2 == 0))

    @classmethod
    def target(cls, like):
        return cls.mask(like, lambda r, c: (r % 2 == 1) & (c % 2 == 1))


class CheckerboardContext(PassContext):
    """Spatial context in two passes (He et al. 2021, small): the anchors,
    the latent positions with (row + column) even, are coded with h_s's mean
    and scale; every other position gets a correction from the anchors' ŷ
    beside it and its own mean and scale. Both passes decode in parallel
    over positions. With anchor_hidden > 0 the anchors are coded in two
    passes themselves (AnchorContext), three in all."""
    # At a second-pass position the 3x3 window holds anchors only beside
    # it: the corners and the centre are second-pass positions themselves.
    NEIGHBOURS = ((-1, 0), (0, -1), (0, 1), (1, 0))  # above, left, right, below
    TAPS = NEIGHBOURS

    def __init__(self, m, hidden=64, anchor_hidden=0):
        super().__init__(m, hidden)
        self.anchor = AnchorContext(m, anchor_hidden) if anchor_hidden else None

    @classmethod
    def anchors(cls, like):
        """1 at the anchor positions of a (B, C, H, W) tensor, 0 elsewhere: (1, 1, H, W)."""
        return cls.mask(like, lambda r, c: (r + c) % 2 == 0)

    known = anchors

    @classmethod
    def target(cls, like):
        return 1 - cls.anchors(like)

    def forward(self, y, mean, scale):
        """Means and scales for every position, and ŷ = round(y - mean) + mean
        (straight-through) under them."""
        if self.anchor is not None:
            mean, scale = self.anchor.corrections(y, mean, scale)
        mu, sigma = self.corrections(y, mean, scale)
        return mu, sigma, ste_round(y - mu) + mu


class SliceContext(nn.Module):
    """Channel-conditional corrections on top of the checkerboard (after ELIC,
    He et al. 2022, small): y's channels split into slices, and each pass of
    the checkerboard decodes them slice after slice, so that slice i's mean
    and scale get a correction from the ŷ of slices 0..i-1 at the same
    position (1x1 conv over them and slice i's own mean and scale to hidden
    channels, Relu, 1x1). The order is every slice's anchors, then every
    slice's second-pass positions, so the checkerboard's network still sees
    all the anchors it was trained on. Position-wise, like the codec's
    other context networks; slice 0 gets no correction. The corrections
    start at zero, so a trained model's function is unchanged."""

    def __init__(self, m, slices, hidden=32):
        super().__init__()
        if slices < 2 or m % slices:
            raise ValueError(f"{m} latent channels do not split into {slices} slices (2 or more)")
        self.width = m // slices

        def nets():
            return nn.ModuleList(
                nn.Sequential(nn.Conv2d((i + 2) * self.width, hidden, 1), nn.ReLU(),
                              zero_init(nn.Conv2d(hidden, 2 * self.width, 1)))
                for i in range(1, slices))
        self.anchor_nets, self.second_nets = nets(), nets()

    def slices(self, y, mean, scale, nets, where):
        """Corrects each slice's mean and scale at the positions where (1, 1,
        H, W) is 1, slice after slice: ŷ = round(y - mean) + mean
        (straight-through) of the slices before feeds the next."""
        w = self.width
        means, scales, y_hats = [], [], []
        for i in range(len(nets) + 1):
            sl = slice(i * w, (i + 1) * w)
            mu, sigma = mean[:, sl], scale[:, sl]
            if i:
                d = nets[i - 1](torch.cat([*y_hats, mu, sigma], 1)) * where
                mu, sigma = mu + d[:, :w], sigma + d[:, w:]
            means.append(mu)
            scales.append(sigma)
            y_hats.append(ste_round(y[:, sl] - mu) + mu)
        return torch.cat(means, 1), torch.cat(scales, 1), torch.cat(y_hats, 1)

    def forward(self, y, mean, scale, checkerboard):
        """Means and scales for every position, and ŷ under them: the
        anchors with h_s's parameters and this context, the other positions
        with the checkerboard's corrections from those anchors, then this
        context."""
        anchors = checkerboard.anchors(y)
        mean, scale, _ = self.slices(y, mean, scale, self.anchor_nets, anchors)
        mean, scale = checkerboard.corrections(y, mean, scale)
        mean, scale, y_hat = self.slices(y, mean, scale, self.second_nets, 1 - anchors)
        return mean, scale, y_hat


class FactorizedPrior(nn.Module):
    """Per-channel learned density for z (Balle et al. 2018, appendix 6.1).

    The CDF is a monotone function built from positive matrices and tanh gates;
    the likelihood of a unit bin is cdf(v + 1/2) - cdf(v - 1/2).
    """

    def __init__(self, ch, filters=(3, 3, 3), init_scale=10.0):
        super().__init__()
        dims = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) + 1):
            init = math.log(math.expm1(1 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((ch, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(ch, dims[i + 1], 1) - 0.5))
            if i < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(ch, dims[i + 1], 1)))

    def logits_cdf(self, v):
        # v: (C, 1, n)
        for i, m in enumerate(self.matrices):
            v = torch.matmul(F.softplus(m), v) + self.biases[i]
            if i < len(self.factors):
                v = v + torch.tanh(self.factors[i]) * torch.tanh(v)
        return v

    def likelihood(self, z):
        c = z.shape[1]
        v = z.transpose(0, 1).reshape(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lik.reshape(c, z.shape[0], *z.shape[2:]).transpose(0, 1)

    @torch.no_grad()
    def pmf(self, lo, hi):
        """Probabilities of the integers lo..hi for every channel: (C, hi-lo+1)."""
        c = self.matrices[0].shape[0]
        v = torch.arange(lo, hi + 1, dtype=torch.float32).view(1, 1, -1).expand(c, 1, -1)
        lower = self.logits_cdf(v - 0.5)
        upper = self.logits_cdf(v + 0.5)
        sign = -torch.sign(lower + upper)
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower)).squeeze(1).double()


def gaussian_likelihood(v, scale):
    """P(|v| in a unit bin) under a zero-mean Gaussian with the given scale."""
    scale = scale.clamp(min=SCALE_MIN)
    v = torch.abs(v)
    upper = 0.5 * torch.erfc(-(0.5 - v) / (scale * math.sqrt(2)))
    lower = 0.5 * torch.erfc(-(-0.5 - v) / (scale * math.sqrt(2)))
    return upper - lower


def laplace_likelihood(v, scale):
    """The same for a zero-mean Laplace distribution with standard deviation scale."""
    b = scale.clamp(min=SCALE_MIN) / math.sqrt(2)
    v = torch.abs(v)
    # For v >= 0.5 both bin edges are positive; the bin around 0 is special.
    upper = 1 - 0.5 * torch.exp(-(v + 0.5) / b)
    lower = torch.where(v >= 0.5, 1 - 0.5 * torch.exp(-(v - 0.5) / b), 0.5 * torch.exp((v - 0.5) / b))
    return upper - lower


LIKELIHOODS = {"gaussian": gaussian_likelihood, "laplace": laplace_likelihood}


class LikelihoodBound(torch.autograd.Function):
    """Clamp likelihoods from below, passing gradients that push them up."""

    @staticmethod
    def forward(ctx, x, bound):
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp(min=bound)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        pass_through = (x >= ctx.bound) | (g < 0)
        return g * pass_through, None


def bound_likelihood(x):
    return LikelihoodBound.apply(x, 1e-9)


def ste_round(x):
    return x + (torch.round(x) - x).detach()


class HyperpriorModel(nn.Module):
    def __init__(self, n=64, m=96, qualities=NUM_QUALITIES, family="gaussian", lambda_list=None,
                 feature_scalers=False, encoder_blocks=False, decoder_blocks=False, linear_skip=False,
                 fine_block=0, context_slices=0, encoder_fine_block=False, checkerboard=0, fine_width=None,
                 coarse_block=False, hs_width=0, analysis_width=0, recon_offsets=False, anchor_context=0,
                 slice_context=0, synthesis_width=0, quarter_width=0):
        super().__init__()
        self.n, self.m, self.family = n, m, family
        # analysis_width widens every hidden layer of g_a beyond n: the
        # encoder has time to spare (encode goal 300 ms, decode 150), and
        # latents fitted through g_s reached 0.8 dB more at the top than g_a's
        # on kodim01 (hp64r, BENCHMARKS.md): a better analysis may add quality
        # at no decoding cost (hp64ga: -0.29% in 8,000 steps, not shipped).
        na = self.analysis_width = analysis_width or n
        if na < n:
            raise ValueError(f"analysis_width {na} is narrower than N={n}")
        # fine_width widens g_s's last stage, the 1/2-resolution features
        # between its last upsampling and the output, beyond n: the stage
        # that draws the finest detail, which caps the top qualities.
        fw = self.fine_width = fine_width or n
        # synthesis_width widens g_s's stages at 1/8 and 1/4 resolution (the
        # features after its first two upsamplings and their residual
        # blocks) beyond n: the top qualities sit 1.6 dB under AVIF at 1 bpp
        # with the transforms' ceiling close above them, and these stages
        # cost far less per channel than the 1/2-resolution one.
        ns = self.synthesis_width = synthesis_width or n
        if ns < n:
            raise ValueError(f"synthesis_width {ns} is narrower than N={n}")
        # quarter_width sets the 1/4 stage apart from the 1/8 one (default:
        # synthesis_width). Widening both to 96 gained 1.2% but cost 67% more
        # g_s MACs (hp64u13); the 1/8 stage alone costs a quarter as much per
        # channel, so quarter_width=N with a wide synthesis_width puts the
        # width where it is cheapest.
        nq = self.quarter_width = quarter_width or ns
        if nq < n:
            raise ValueError(f"quarter_width {nq} is narrower than N={n}")
        # The trade-off each quality was trained for; it travels with the
        # weights because runs differ in their λ range.
        self.lambdas = list(lambda_list) if lambda_list else lambdas()
        # encoder_blocks adds residual blocks at 1/4, 1/8 and 1/16 resolution
        # to the analysis: the encoder has twice the decoder's time budget,
        # and a better g_a lowers the rate at no decoding cost. decoder_blocks
        # adds two to the synthesis, at 1/8 and 1/4 (5.76 kMAC/pixel), for
        # the high rates, where the transforms cap the quality. fine_block > 0
        # adds a bottleneck block of that width at 1/2 resolution (3.3
        # kMAC/pixel at 32), the finest stage, where the synthesis had no
        # nonlinearity but its IGDN.
        # coarse_block adds a ResBlock on the latents at the head of g_s, at
        # 1/16 resolution, where 192 channels cost 2.6 kMAC/pixel: capacity
        # that is cheap in time too, its activations being small.
        # encoder_fine_block adds one at 1/2 resolution, the analysis's finest
        # stage (18.4 kMAC/pixel): the encoder has time to spare, and a better
        # g_a costs no decoding time.
        # The blocks are named apart, so the other layers keep the state-dict
        # keys of a model without them.
        def block(name, ch, wanted):
            return [(name, ResBlock(ch))] if wanted else []
        self.g_a = nn.Sequential(OrderedDict([
            ("0", conv(3, na, 5, 2)), ("1", GDN(na)), *block("resf", na, encoder_fine_block),
            ("2", conv(na, na, 5, 2)), ("3", GDN(na)),
            *block("res0", na, encoder_blocks), ("4", conv(na, na, 5, 2)), ("5", GDN(na)),
            *block("res1", na, encoder_blocks), ("6", conv(na, m, 5, 2)), *block("res2", m, encoder_blocks)]))
        self.g_s = nn.Sequential(OrderedDict([
            *block("resc", m, coarse_block), ("0", Up(m, ns)), ("1", GDN(ns, inverse=True)),
            *block("res0", ns, decoder_blocks), ("2", Up(ns, nq)), ("3", GDN(nq, inverse=True)),
            *block("res1", nq, decoder_blocks), ("4", Up(nq, fw)), ("5", GDN(fw, inverse=True)),
            *([("res2", BottleneckBlock(fw, fine_block))] if fine_block else []), ("6", Up(fw, 3))]))
        # linear_skip adds a linear path around each transform, between pixels
        # and latents, one 16x16 block per latent position: a stride-16 conv
        # in the analysis, a 1x1 conv and depth-to-space in the synthesis
        # (0.58 kMAC/pixel each). A linear code of 192 components per block
        # reconstructs Kodak at 38.6 dB (PCA fitted on the same images, so
        # optimistic) where the 64-channel transforms stopped near 35, so the
        # path serves the high rates. It starts at zero,
        # which leaves a trained model's function unchanged.
        self.g_a_skip = zero_init(nn.Conv2d(3, m, 16, stride=16)) if linear_skip else None
        self.g_s_skip = nn.Sequential(zero_init(nn.Conv2d(m, 3 * 16 * 16, 1)), nn.PixelShuffle(16)) \
            if linear_skip else None
        self.h_a = nn.Sequential(
            conv(m, n, 3), nn.ReLU(), conv(n, n, 5, 2), nn.ReLU(), conv(n, n, 5, 2))
        # h_s runs in the Go decoder in integer arithmetic, so that scales and
        # means are bit-exact on every platform; it is kept small for that.
        # hs_width > 0 adds a 3x3 conv to that many channels and a Relu at
        # 1/16 resolution before h_s's output, whose means and scales for 2M
        # channels otherwise come linearly from N: entropy-model capacity at
        # about 0.12 kMAC/pixel per 32 channels (with N=64, M=192), in the
        # fixed-point decoder.
        if hs_width and hs_width < n:
            raise ValueError(f"hs_width {hs_width} is narrower than N={n}")
        self.h_s = nn.Sequential(OrderedDict([
            ("0", Up(n, n)), ("1", nn.ReLU()), ("2", Up(n, n)), ("3", nn.ReLU()),
            *([("wide", conv(n, hs_width, 3)), ("wide_relu", nn.ReLU())] if hs_width else []),
            ("4", conv(hs_width or n, 2 * m, 1))]))
        self.prior_z = FactorizedPrior(n)
        if context_slices and checkerboard:
            raise ValueError("a model has one context: channel slices or a checkerboard")
        self.context = ChannelContext(m, context_slices) if context_slices else \
            CheckerboardContext(m, checkerboard, anchor_context) if checkerboard else None
        if anchor_context and not checkerboard:
            raise ValueError("an anchor context splits a checkerboard's anchors: it needs a checkerboard")
        # slice_context > 0 codes each checkerboard pass in that many channel
        # slices (SliceContext); PyTorch only so far, to measure it.
        if slice_context and (not checkerboard or anchor_context):
            raise ValueError("a slice context splits a checkerboard's two passes: it needs one, without an anchor context")
        self.slice_context = SliceContext(m, slice_context) if slice_context else None
        # Per-quality channel gains (Cui et al. 2021): the encoder multiplies
        # y by gain_enc[q], the decoder by gain_dec[q]. Stored as logs.
        init = torch.linspace(math.log(0.5), math.log(4.0), qualities).view(-1, 1).expand(-1, m)
        self.log_gain_enc = nn.Parameter(init.clone())
        self.log_gain_dec = nn.Parameter(-init.clone())
        # recon_offsets adds a learned offset to each ŷ that g_s sees, by
        # quality, scale-table entry and coded residual round(y - mean)
        # clipped to ±OFFSET_RESIDUALS: given its bin, y is not at the bin's
        # centre (under a peaked density more mass lies towards the mean).
        # Measured on a trained model (train/offsets.py, session 14) the
        # offsets lost 0.3 dB, since g_s had learnt the lattice; trained
        # jointly, g_s can use them. The entropy model and the context still
        # see the lattice ŷ, so bits and bitstream are unchanged, and the
        # decoder needs a table lookup per latent. They start at zero, which
        # leaves a trained model's function unchanged.
        self.recon_offsets = nn.Parameter(torch.zeros(qualities, NUM_SCALES, 2 * OFFSET_RESIDUALS + 1)) \
            if recon_offsets else None
        scales = torch.tensor(scale_table(), dtype=torch.float64)
        # The coder picks the table whose scale is nearest in log: the
        # boundaries are the geometric midpoints (as in fit_tables.py).
        self.register_buffer("scale_bounds", torch.sqrt(scales[1:] * scales[:-1]).float(), persistent=False)
        # DCVC-style quantization scalers inside the transforms: every (I)GDN's
        # input is scaled per quality and channel, so one set of transforms can
        # shape its nonlinearities differently at each rate. They start at 1,
        # which leaves a trained model's function unchanged.
        # Scalers are stored at the net's widest layer; narrower layers use the first channels.
        for name, net, width in (("log_fs_a", self.g_a, na), ("log_fs_s", self.g_s, max(ns, nq, fw))):
            self.register_parameter(name, nn.Parameter(torch.zeros(qualities, self.gdn_count(net), width))
                                    if feature_scalers else None)

    def scaler_widths(self, net):
        """The channel count of each (I)GDN of g_a or g_s, in order."""
        return [mod.beta_p.shape[0] for mod in getattr(self, net) if isinstance(mod, GDN)]

    # The keys that widening a stage reshapes, and the axis each grows
    # along: for g_s's last stage, the outputs of the upsampling and of the
    # block's last conv, the IGDN, and the inputs of the layers that read
    # the stage; for h_s's added stage and the checkerboard context's hidden
    # layer, the outputs of the convs that make it and the inputs of the one
    # that reads it. "io" marks a conv inside a widened stack (g_a's, or g_s's
    # 1/8 and 1/4 stages), which grows along both: its old outputs get zero
    # weights from the new inputs.
    WIDENED_AXES = {"g_s.4.0.weight": "io", "g_s.4.0.bias": 0, "g_s.5.beta_p": 0, "g_s.5.gamma_p": (0, 1),
                    "g_s.0.0.weight": 0, "g_s.0.0.bias": 0, "g_s.2.0.weight": "io", "g_s.2.0.bias": 0,
                    **{f"g_s.{gdn}.{key}": axes for gdn in (1, 3)
                       for key, axes in (("beta_p", 0), ("gamma_p", (0, 1)))},
                    "g_s.res2.body.0.weight": 1, "g_s.res2.body.4.weight": 0, "g_s.res2.body.4.bias": 0,
                    "g_s.6.0.weight": 1, "log_fs_s": 2,
                    "h_s.wide.weight": 0, "h_s.wide.bias": 0, "h_s.4.weight": 1,
                    "context.spatial.weight": 0, "context.spatial.bias": 0, "context.params.weight": 0,
                    "context.params.bias": 0, "context.out.weight": 1,
                    "g_a.0.weight": 0, "g_a.0.bias": 0, "g_a.2.weight": "io", "g_a.2.bias": 0,
                    "g_a.4.weight": "io", "g_a.4.bias": 0, "g_a.6.weight": 1, "log_fs_a": 2,
                    **{f"g_a.{gdn}.{key}": axes for gdn in (1, 3, 5)
                       for key, axes in (("beta_p", 0), ("gamma_p", (0, 1)))},
                    **{f"g_a.{block}.body.{layer}.{key}": axes for block in ("resf", "res0", "res1")
                       for layer in (0, 2) for key, axes in (("weight", "io"), ("bias", 0))},
                    **{f"g_s.{block}.body.{layer}.{key}": axes for block in ("res0", "res1")
                       for layer in (0, 2) for key, axes in (("weight", "io"), ("bias", 0))}}

    def load_widened(self, state):
        """Loads a trained model's state whose g_a, g_s stages, h_s's last
        stage or checkerboard context's hidden layer is narrower
        (Net2Net-style): the new channels come from the fresh weights of the
        layers that make them, and every layer reading them starts with zero
        weights for them, so the model computes what it did (up to the
        (I)GDNs' 1e-6 cross terms, which must be non-zero to learn) and learns
        to use them. An h_s without the added stage gets one that starts as
        the identity on its N channels. Returns what
        load_state_dict(strict=False) does."""
        own = self.state_dict()
        merged = dict(state)
        if "h_s.wide.weight" in own and "h_s.wide.weight" not in state:
            # The ReLU before it leaves its input non-negative, so an identity
            # conv and ReLU pass it through unchanged.
            n = self.n
            w, b = own["h_s.wide.weight"].clone(), own["h_s.wide.bias"].clone()
            w[:n], b[:n] = 0, 0
            w[torch.arange(n), torch.arange(n), 1, 1] = 1
            merged["h_s.wide.weight"], merged["h_s.wide.bias"] = w[:n], b[:n]
        for key, axes in self.WIDENED_AXES.items():
            old = merged.get(key)
            if old is None or key not in own or old.shape == own[key].shape:
                continue
            new = own[key].clone()
            if any(old.shape[d] > new.shape[d] for d in range(new.dim())):
                raise ValueError(f"{key}: the model is narrower than the state ({tuple(new.shape)} < {tuple(old.shape)})")
            if axes == "io":
                new[:old.shape[0], old.shape[1]:] = 0
                axes = (0, 1)
            axes = axes if isinstance(axes, tuple) else (axes,)
            if axes == (1,):  # a layer reading the stage: its new inputs start at zero
                new.zero_()
            new[tuple(slice(0, old.shape[d]) if d in axes else slice(None) for d in range(new.dim()))] = old
            merged[key] = new
        return self.load_state_dict(merged, strict=False)

    @property
    def feature_scalers(self):
        return self.log_fs_a is not None

    @property
    def linear_skip(self):
        return self.g_a_skip is not None

    @property
    def encoder_blocks(self):
        return "res0" in self.g_a._modules

    @property
    def encoder_fine_block(self):
        return "resf" in self.g_a._modules

    @property
    def decoder_blocks(self):
        return any(isinstance(mod, ResBlock) for mod in self.g_s)

    @property
    def fine_block(self):
        """The width of the bottleneck block at 1/2 resolution, 0 if none."""
        return next((mod.body[0].out_channels for mod in self.g_s if isinstance(mod, BottleneckBlock)), 0)

    @property
    def context_slices(self):
        return len(self.context.nets) if isinstance(self.context, ChannelContext) else 0

    @property
    def checkerboard(self):
        """The hidden width of the checkerboard context, 0 if none."""
        return self.context.out.in_channels if isinstance(self.context, CheckerboardContext) else 0

    @property
    def anchor_context(self):
        """The hidden width of the checkerboard's anchor context, 0 if none."""
        return self.context.anchor.out.in_channels if self.checkerboard and self.context.anchor else 0

    @property
    def analysis_out(self):
        """g_a's convolution that produces the m latent channels."""
        return self.g_a._modules["6"]

    @staticmethod
    def options(saved):
        """The constructor arguments of the model a checkpoint or weights file holds."""
        state = saved["model"]
        return dict(n=saved["n"], m=saved["m"], family=saved.get("family", "gaussian"),
                    lambda_list=saved.get("lambdas"), feature_scalers="log_fs_a" in state,
                    encoder_blocks=any(k.startswith(("g_a.res0.", "g_a.res1.", "g_a.res2.")) for k in state),
                    encoder_fine_block=any(k.startswith("g_a.resf.") for k in state),
                    decoder_blocks=any(k.startswith(("g_s.res0.", "g_s.res1.")) for k in state),
                    coarse_block=any(k.startswith("g_s.resc.") for k in state),
                    linear_skip="g_a_skip.weight" in state,
                    fine_block=state["g_s.res2.body.0.weight"].shape[0] if "g_s.res2.body.0.weight" in state else 0,
                    context_slices=sum(k.startswith("context.nets.") and k.endswith(".0.weight") for k in state),
                    checkerboard=state["context.out.weight"].shape[1] if "context.out.weight" in state else 0,
                    fine_width=state["g_s.5.beta_p"].shape[0], analysis_width=state["g_a.1.beta_p"].shape[0],
                    synthesis_width=state["g_s.1.beta_p"].shape[0], quarter_width=state["g_s.3.beta_p"].shape[0],
                    hs_width=state["h_s.wide.weight"].shape[0] if "h_s.wide.weight" in state else 0,
                    recon_offsets="recon_offsets" in state,
                    anchor_context=state["context.anchor.out.weight"].shape[1]
                    if "context.anchor.out.weight" in state else 0,
                    slice_context=1 + sum(k.startswith("slice_context.anchor_nets.") and k.endswith(".0.weight")
                                          for k in state) if "slice_context.anchor_nets.0.0.weight" in state else 0)

    @staticmethod
    def is_block_key(key):
        """Whether a state-dict key belongs to a residual block of g_a or g_s."""
        return key.startswith(("g_a.", "g_s.")) and ".body." in key

    @staticmethod
    def is_context_key(key):
        """Whether a state-dict key belongs to a context network."""
        return key.startswith(("context.", "slice_context."))

    @staticmethod
    def is_skip_key(key):
        """Whether a state-dict key belongs to the linear skip paths."""
        return key.startswith(("g_a_skip.", "g_s_skip."))

    @staticmethod
    def gdn_count(net):
        return sum(isinstance(mod, GDN) for mod in net)

    def gains(self, q):
        return (torch.exp(self.log_gain_enc[q]).unsqueeze(-1).unsqueeze(-1),
                torch.exp(self.log_gain_dec[q]).unsqueeze(-1).unsqueeze(-1))

    def scalers(self, q):
        """Per-quality (I)GDN input scales for g_a and g_s: (layers, B, width, 1, 1) each, or None."""
        return self.layer_scales(self.log_fs_a, q), self.layer_scales(self.log_fs_s, q)

    @staticmethod
    def layer_scales(log_scales, q):
        if log_scales is None:
            return None
        return torch.exp(log_scales[q]).transpose(0, 1).unsqueeze(-1).unsqueeze(-1)

    @staticmethod
    def run_scaled(net, x, scales, gdn=GDN, skip=None):
        """net's layers in turn, each gdn's input times the next of scales
        (None: no scaling), which are indexed as scales[layer][batch]; plus
        skip(x) when there is a skip path."""
        out, layer = x, 0
        for mod in net:
            if scales is not None and isinstance(mod, gdn):
                # Scalers are stored at the widest layer's width. (No slice
                # when they fit: the export would trace it as an op.)
                s = scales[layer]
                out = out * (s if s.shape[1] == out.shape[1] else s[:, :out.shape[1]])
                layer += 1
            out = mod(out)
        return out if skip is None else out + skip(x)

    def analysis(self, x, q):
        """y = g_a(x) times the encoder gains of qualities q (B,)."""
        ge, _ = self.gains(q)
        return self.run_scaled(self.g_a, x, self.layer_scales(self.log_fs_a, q), skip=self.g_a_skip) * ge

    def synthesis(self, y_hat, q):
        """The reconstruction from dequantized latents ŷ (before the decoder gains)."""
        _, gd = self.gains(q)
        return self.run_scaled(self.g_s, y_hat * gd, self.layer_scales(self.log_fs_s, q), skip=self.g_s_skip)

    def reconstruction_offset(self, y_hat, mean, scale, q):
        """The offset recon_offsets adds to each ŷ (on the lattice mean +
        integer) before g_s, by quality q (B,), the scale table the coder
        uses for it and its residual."""
        k = OFFSET_RESIDUALS
        s = torch.round(y_hat - mean).detach().clamp(-k, k).long() + k
        t = torch.bucketize(scale.detach().contiguous(), self.scale_bounds, right=True)
        return self.recon_offsets[q.view(-1, 1, 1, 1), t, s]

    def coding_params(self, y, z_hat):
        """The means and scales the coder uses for y: h_s's from the rounded
        z_hat, corrected by the context from the latents decoded before; and
        ŷ = round(y - mean) + mean under them (straight-through)."""
        params = self.h_s(z_hat)
        mean, scale = params[:, :self.m], params[:, self.m:]
        if self.slice_context is not None:
            return self.slice_context(y, mean, scale, self.context)
        if self.context is not None:
            return self.context(y, mean, scale)
        return mean, scale, ste_round(y - mean) + mean

    @torch.no_grad()
    def latents(self, x, q):
        """What the codec computes from x at qualities q (B,): y after the
        gains, and the means and scales the coder uses for it."""
        y = self.analysis(x, q)
        return (y, *self.coding_params(y, torch.round(self.h_a(y)))[:2])

    # How the rate term treats quantization: "noise" (the likelihood of y
    # and z plus uniform noise, Balle et al.) or "round" (of the rounded
    # values the codec writes, straight-through). The noise proxy charges a
    # latent whose scale is near the minimum about 0.3 bits where the coder
    # pays nearly none: at the lowest quality it estimated 0.21 bpp for
    # files of 0.08 (hp64x), which misleads training most where the
    # latents are sparse.
    rate_proxy = "noise"

    def forward(self, x, q, rate_weight=None):
        """x in [0,1], q: (B,) quality indices. Returns x_hat and bits per image.

        rate_weight (M,) scales each y channel's rate term; training uses it to
        bring new channels in gradually (see train/revive.py)."""
        rounded = self.rate_proxy == "round"
        y = self.analysis(x, q)
        z = self.h_a(y)
        z_hat = ste_round(z)
        z_rate = z_hat if rounded else z + torch.empty_like(z).uniform_(-0.5, 0.5)
        lik_z = bound_likelihood(self.prior_z.likelihood(z_rate))
        # Rate from the noisy proxy; the synthesis sees the rounded residual
        # (straight-through), which matches what the decoder will get.
        mean, scale, y_hat = self.coding_params(y, z_hat)
        y_rate = y_hat if rounded else y + torch.empty_like(y).uniform_(-0.5, 0.5)
        lik_y = bound_likelihood(LIKELIHOODS[self.family](y_rate - mean, scale))
        if self.recon_offsets is not None:
            y_hat = y_hat + self.reconstruction_offset(y_hat, mean, scale, q)
        x_hat = self.synthesis(y_hat, q)
        bits_y = torch.log2(lik_y)
        if rate_weight is not None:
            bits_y = bits_y * rate_weight.view(1, -1, 1, 1)
        bits = -(bits_y.sum((1, 2, 3)) + torch.log2(lik_z).sum((1, 2, 3)))
        return x_hat, bits


def macs_per_pixel(net, shape):
    """Multiply-accumulates per input-image pixel of one network."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1] * mod.in_channels // mod.groups
            total += out.numel() * k
        elif isinstance(mod, GDN):
            total += out.numel() * out.shape[1]

    hs = [m.register_forward_hook(hook) for m in net.modules()]
    with torch.no_grad():
        net(torch.zeros(shape))
    for h in hs:
        h.remove()
    return total
