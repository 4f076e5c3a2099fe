"""Checks of the model's construction and export that need no training data.

  /usr/bin/python3 -m unittest discover -s train -p 'test_*.py'   (make test-train)
"""
import os
import sys
import tempfile
import random
import unittest

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export import Transform, export_net, freeze, round_to_half  # noqa: E402
from model import OFFSET_RESIDUALS, CheckerboardContext, HyperpriorModel, gaussian_likelihood, scale_table  # noqa: E402
from train import JPEG_SCALES, PNG_SCALES, crop_scale, random_scaled_batch  # noqa: E402

N, M = 8, 12


def outputs(model):
    """model's reconstruction and bits on a fixed batch, under fixed noise."""
    torch.manual_seed(1)
    with torch.no_grad():
        return model(torch.rand(2, 3, 64, 64), torch.tensor([1, 6]))


def assert_same_outputs(case, a, b):
    for x, y in zip(outputs(a), outputs(b)):
        case.assertTrue(torch.equal(x, y))


def randomized(model, seed=0):
    """model with every parameter, including zero-initialized ones, random."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


class ExtensionsTest(unittest.TestCase):
    """Residual blocks and linear skips extend a trained model: loaded from its
    weights, the extended model computes exactly what the original did."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = HyperpriorModel(N, M, feature_scalers=True)
        with torch.no_grad():
            self.base.log_fs_a.uniform_(-0.5, 0.5)
            self.base.log_fs_s.uniform_(-0.5, 0.5)
        self.ext = HyperpriorModel(N, M, feature_scalers=True, encoder_blocks=True, decoder_blocks=True,
                                    linear_skip=True, fine_block=16, encoder_fine_block=True,
                                    coarse_block=True)
        missing, unexpected = self.ext.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(missing)
        for key in missing:
            self.assertTrue(HyperpriorModel.is_block_key(key) or HyperpriorModel.is_skip_key(key), key)
        self.x = torch.rand(2, 3, 64, 64)
        self.q = torch.tensor([0, 7])

    def outputs(self, model):
        with torch.no_grad():
            y = model.analysis(self.x, self.q)
            return y, model.synthesis(torch.round(y), self.q)

    def test_extended_model_starts_unchanged(self):
        for a, b in zip(self.outputs(self.base), self.outputs(self.ext)):
            self.assertTrue(torch.equal(a, b))

    def test_skip_paths_take_part_once_trained(self):
        with torch.no_grad():
            self.ext.g_a_skip.weight.normal_(0, 0.1)
            self.ext.g_s_skip[0].weight.normal_(0, 0.1)
        for a, b in zip(self.outputs(self.base), self.outputs(self.ext)):
            self.assertGreater((a - b).abs().max().item(), 1e-3)


class ContextTest(unittest.TestCase):
    """A channel context added to a trained model starts as the plain
    hyperprior, then conditions each slice on the ones before it."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = HyperpriorModel(N, M)
        self.ctx = HyperpriorModel(N, M, context_slices=2)
        missing, unexpected = self.ctx.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(missing and all(HyperpriorModel.is_context_key(k) for k in missing), missing)
        self.x = torch.rand(2, 3, 64, 64)
        self.q = torch.tensor([1, 6])

    def run_model(self, model):
        torch.manual_seed(1)
        with torch.no_grad():
            return model(self.x, self.q)

    def test_starts_unchanged(self):
        for a, b in zip(self.run_model(self.base), self.run_model(self.ctx)):
            self.assertTrue(torch.equal(a, b))

    def test_later_slices_see_earlier_ones(self):
        with torch.no_grad():
            for net in self.ctx.context.nets:
                net[2].weight.normal_(0, 0.1)
        y = torch.randn(1, M, 4, 4) * 3
        mean, scale = torch.zeros_like(y), torch.ones_like(y)
        _, s1, _ = self.ctx.context(y, mean, scale)
        y2 = y.clone()
        y2[:, :M // 2] += 5
        _, s2, _ = self.ctx.context(y2, mean, scale)
        w = M // 2
        self.assertTrue(torch.equal(s1[:, :w], s2[:, :w]), "slice 0 depends on y")
        self.assertGreater((s1[:, w:] - s2[:, w:]).abs().max().item(), 1e-3, "slice 1 ignores slice 0")


class SliceContextTest(unittest.TestCase):
    """A slice context added to a checkerboard model starts as that model;
    then each slice's parameters see only what the decoder has by then."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = randomized(HyperpriorModel(N, M, checkerboard=16))
        self.ctx = HyperpriorModel(N, M, checkerboard=16, slice_context=3)
        missing, unexpected = self.ctx.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(missing and all(HyperpriorModel.is_context_key(k) for k in missing), missing)

    def test_starts_unchanged(self):
        assert_same_outputs(self, self.base, self.ctx)

    def test_checkerboard_reads_the_coded_anchors(self):
        # The checkerboard's second pass rounds the anchors under the means
        # they are coded with, the slice-corrected ones.
        model = randomized(self.ctx, seed=2)
        cb, read = model.context, {}

        def corrections(y, mean, scale):
            read["mean"] = mean
            return CheckerboardContext.corrections(cb, y, mean, scale)
        cb.corrections = corrections
        torch.manual_seed(3)
        y = torch.randn(1, M, 4, 4) * 2
        mean = torch.randn_like(y)
        mu, _, _ = model.slice_context(y, mean, torch.rand_like(y) + 0.5, cb)
        anchors = cb.anchors(y).bool().expand_as(y)
        self.assertFalse(torch.equal(mu[anchors], mean[anchors]), "the slices corrected no anchor")
        self.assertTrue(torch.equal(read["mean"][anchors], mu[anchors]))

    def test_sees_only_what_is_decoded(self):
        ctx = randomized(self.ctx, seed=2).slice_context
        cb = self.ctx.context
        torch.manual_seed(3)
        y = torch.randn(1, M, 4, 4) * 2
        mean, scale = torch.randn_like(y), torch.rand_like(y) + 0.5
        w = M // 3
        anchor = cb.anchors(y)[0, 0].bool()

        def params(v):
            mu, sigma, _ = ctx(v, mean, scale, cb)
            return torch.stack([mu, sigma])

        jac = torch.autograd.functional.jacobian(params, y)[:, 0, :, :, :, 0]  # (2, M, H, W, M, H, W)
        for c in range(M):
            i = c // w
            for r in range(4):
                for col in range(4):
                    seen = jac[:, c, r, col].abs().sum(0) > 0  # (M, H, W)
                    known = torch.zeros_like(seen)
                    if anchor[r, col]:
                        known[:i * w, r, col] = True  # earlier slices' anchors here
                    else:
                        known[:, anchor] = True  # every anchor, then earlier slices here
                        known[:i * w, r, col] = True
                    self.assertFalse((seen & ~known).any(), f"channel {c} at {(r, col)} sees undecoded latents")
                    if i:
                        self.assertTrue(seen[:i * w, r, col].any(), f"channel {c} at {(r, col)} ignores earlier slices")


class CheckerboardTest(unittest.TestCase):
    """A checkerboard context added to a trained model starts as the plain
    hyperprior; then the second pass sees the anchors and nothing else of y."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = HyperpriorModel(N, M)
        self.ctx = HyperpriorModel(N, M, checkerboard=16)
        missing, unexpected = self.ctx.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(missing and all(HyperpriorModel.is_context_key(k) for k in missing), missing)

    def test_starts_unchanged(self):
        assert_same_outputs(self, self.base, self.ctx)

    def test_positionwise_form_matches(self):
        """gather() and positionwise() give the codec's form the same
        corrections as the module, at every second-pass position."""
        ctx = self.ctx.context
        with torch.no_grad():
            for p in ctx.parameters():
                p.normal_(0, 0.3)
            y = torch.randn(1, M, 5, 7) * 3
            mean, scale = torch.randn_like(y), torch.rand_like(y) + 0.5
            mu, sigma, _ = ctx(y, mean, scale)
            anchor = ctx.anchors(y).bool()
            y_hat = torch.where(anchor, torch.round(y - mean) + mean, torch.zeros_like(y))
            d = ctx.positionwise()(ctx.gather(y_hat, mean, scale))[:, :, 0]
            rest = ~anchor[0, 0]
            self.assertTrue(torch.allclose(d[:, :M], (mu - mean)[:, :, rest], atol=1e-5))
            self.assertTrue(torch.allclose(d[:, M:], (sigma - scale)[:, :, rest], atol=1e-5))

    def test_second_pass_sees_only_anchors(self):
        with torch.no_grad():
            self.ctx.context.out.weight.normal_(0, 0.1)
        y = torch.randn(1, M, 6, 6) * 3
        mean, scale = torch.zeros_like(y), torch.ones_like(y)
        anchor = self.ctx.context.anchors(y).bool().expand_as(y)
        m1, s1, _ = self.ctx.context(y, mean, scale)
        y2 = torch.where(anchor, y, y + 5)
        m2, s2, _ = self.ctx.context(y2, mean, scale)
        self.assertTrue(torch.equal(m1, m2) and torch.equal(s1, s2), "a parameter depends on a non-anchor")
        y3 = torch.where(anchor, y + 5, y)
        m3, s3, _ = self.ctx.context(y3, mean, scale)
        self.assertTrue(torch.equal(m1[anchor], m3[anchor]) and torch.equal(s1[anchor], s3[anchor]),
                        "an anchor's parameters depend on y")
        self.assertGreater((s1 - s3)[~anchor].abs().max().item(), 1e-3, "the second pass ignores the anchors")


class AnchorContextTest(unittest.TestCase):
    """An anchor context added to a checkerboard model starts as that model;
    then the anchors with both coordinates odd see the ones with both even
    at their corners, and nothing else of y."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = randomized(HyperpriorModel(N, M, checkerboard=8))
        self.ctx = HyperpriorModel(N, M, checkerboard=8, anchor_context=6)
        missing, unexpected = self.ctx.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual(unexpected, [])
        self.assertTrue(missing and all(k.startswith("context.anchor.") for k in missing), missing)

    def test_starts_unchanged(self):
        assert_same_outputs(self, self.base, self.ctx)

    def test_positionwise_form_matches(self):
        anchor = self.ctx.context.anchor
        with torch.no_grad():
            for p in anchor.parameters():
                p.normal_(0, 0.3)
            y = torch.randn(1, M, 5, 7) * 3
            mean, scale = torch.randn_like(y), torch.rand_like(y) + 0.5
            mu, sigma = anchor.corrections(y, mean, scale)
            first = anchor.known(y).bool()
            y_hat = torch.where(first, torch.round(y - mean) + mean, torch.zeros_like(y))
            d = anchor.positionwise()(anchor.gather(y_hat, mean, scale))[:, :, 0]
            later = anchor.target(y)[0, 0].bool()
            self.assertEqual(d.shape[2], int(later.sum()))
            self.assertTrue(torch.allclose(d[:, :M], (mu - mean)[:, :, later], atol=1e-5))
            self.assertTrue(torch.allclose(d[:, M:], (sigma - scale)[:, :, later], atol=1e-5))

    def test_passes_see_only_what_was_decoded(self):
        with torch.no_grad():
            for p in self.ctx.context.anchor.parameters():
                p.normal_(0, 0.3)
        y = torch.randn(1, M, 6, 6) * 3
        mean, scale = torch.zeros_like(y), torch.ones_like(y)
        ctx = self.ctx.context
        first = ctx.anchor.known(y).bool().expand_as(y)
        later = ctx.anchor.target(y).bool().expand_as(y)
        rest = ~ctx.anchors(y).bool().expand_as(y)
        m1, s1, _ = ctx(y, mean, scale)
        m2, s2, _ = ctx(torch.where(first, y, y + 5), mean, scale)
        anchors = first | later
        self.assertTrue(torch.equal(m1[anchors], m2[anchors]) and torch.equal(s1[anchors], s2[anchors]),
                        "an anchor's parameters depend on a later position")
        m3, s3, _ = ctx(torch.where(first, y + 5, y), mean, scale)
        self.assertTrue(torch.equal(m1[first], m3[first]) and torch.equal(s1[first], s3[first]),
                        "a first anchor's parameters depend on y")
        self.assertGreater((s1 - s3)[later].abs().max().item(), 1e-3, "the later anchors ignore the first")
        m4, s4, _ = ctx(torch.where(later, y + 5, y), mean, scale)
        self.assertTrue(torch.equal(m1[later], m4[later]), "a later anchor's mean depends on its own y")
        self.assertGreater((m1 - m4)[rest].abs().max().item() + (s1 - s4)[rest].abs().max().item(), 1e-3,
                           "the second pass ignores the later anchors")

    def test_needs_a_checkerboard(self):
        with self.assertRaises(ValueError):
            HyperpriorModel(N, M, anchor_context=4)


class ReconOffsetsTest(unittest.TestCase):
    """Reconstruction offsets added to a trained model start as no change;
    then they move what g_s sees, by quality, scale table and residual, and
    never the bits."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = randomized(HyperpriorModel(N, M, checkerboard=8))
        self.off = HyperpriorModel(N, M, checkerboard=8, recon_offsets=True)
        missing, unexpected = self.off.load_state_dict(self.base.state_dict(), strict=False)
        self.assertEqual((missing, unexpected), (["recon_offsets"], []))

    def test_starts_unchanged(self):
        assert_same_outputs(self, self.base, self.off)

    def test_offsets_move_pixels_not_bits(self):
        with torch.no_grad():
            self.off.recon_offsets.uniform_(-0.4, 0.4)
        (x_base, bits_base), (x_off, bits_off) = outputs(self.base), outputs(self.off)
        self.assertTrue(torch.equal(bits_base, bits_off))
        self.assertGreater((x_base - x_off).abs().max().item(), 1e-4)

    def test_lookup_by_quality_scale_and_residual(self):
        k = OFFSET_RESIDUALS
        with torch.no_grad():
            self.off.recon_offsets.copy_(torch.randn(self.off.recon_offsets.shape))
        scales = np.array(scale_table())
        bounds = np.sqrt(scales[1:] * scales[:-1])
        mean = torch.randn(2, M, 3, 4)
        residual = torch.randint(-6, 7, mean.shape).float()
        scale = torch.exp(torch.empty(mean.shape).uniform_(-3, 6))
        q = torch.tensor([0, 5])
        got = self.off.reconstruction_offset(mean + residual, mean, scale, q)
        t = np.searchsorted(bounds, scale.numpy(), side="right")
        s = np.clip(residual.numpy().astype(int), -k, k) + k
        table = self.off.recon_offsets.detach().numpy()
        want = np.stack([table[qi][t[b], s[b]] for b, qi in enumerate(q.tolist())])
        np.testing.assert_array_equal(got.detach().numpy(), want)

    def test_offsets_learn(self):
        x, q = torch.rand(2, 3, 64, 64), torch.tensor([2, 7])
        x_hat, bits = self.off(x, q)
        ((x_hat - x) ** 2).mean().backward()
        grad = self.off.recon_offsets.grad
        self.assertGreater(grad[2].abs().sum().item(), 0)
        self.assertEqual(grad[0].abs().sum().item(), 0, "a quality not in the batch got a gradient")


class WidenTest(unittest.TestCase):
    """Widening g_s's last stage keeps a trained model's function, and the
    new channels then take part."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = randomized(HyperpriorModel(N, M, feature_scalers=True, fine_block=4))
        self.wide = HyperpriorModel(N, M, feature_scalers=True, fine_block=4, fine_width=N + 4)
        missing, unexpected = self.wide.load_widened(self.base.state_dict())
        self.assertEqual((missing, unexpected), ([], []))
        self.y = torch.randn(2, M, 4, 4)
        self.q = torch.tensor([2, 5])

    def test_starts_nearly_unchanged(self):
        with torch.no_grad():
            a, b = self.base.synthesis(self.y, self.q), self.wide.synthesis(self.y, self.q)
        self.assertLess((a - b).abs().max().item(), 1e-3 * a.abs().max().item())

    def test_new_channels_learn(self):
        x_hat = self.wide.synthesis(self.y, self.q)
        x_hat.square().mean().backward()
        self.assertGreater(self.wide.g_s[-1][0].weight.grad[:, N:].abs().max().item(), 0)
        self.assertEqual(self.wide.log_fs_s.shape[-1], N + 4)
        self.assertEqual(self.wide.scaler_widths("g_s"), [N, N, N + 4])


class WidenSynthesisTest(unittest.TestCase):
    """Widening g_s's stages at 1/8 and 1/4 resolution keeps a trained
    model's reconstruction, and the new channels then take part."""

    quarter_width = 0  # the 1/4 stage as wide as the 1/8 one

    def setUp(self):
        torch.manual_seed(0)
        shape = dict(feature_scalers=True, decoder_blocks=True, fine_block=4, linear_skip=True)
        self.base = randomized(HyperpriorModel(N, M, **shape))
        self.wide = HyperpriorModel(N, M, synthesis_width=N + 3, quarter_width=self.quarter_width, **shape)
        missing, unexpected = self.wide.load_widened(self.base.state_dict())
        self.assertEqual((missing, unexpected), ([], []))
        self.y = torch.randn(2, M, 4, 4)
        self.q = torch.tensor([0, 7])

    def test_starts_nearly_unchanged(self):
        with torch.no_grad():
            a, b = self.base.synthesis(self.y, self.q), self.wide.synthesis(self.y, self.q)
        self.assertLess((a - b).abs().max().item(), 1e-3 * a.abs().max().item())

    def test_new_channels_learn(self):
        self.wide.synthesis(self.y, self.q).square().mean().backward()
        # The stage after them reads the new channels.
        self.assertGreater(self.wide.g_s._modules["4"][0].weight.grad[:, N:].abs().max().item(), 0)
        self.assertEqual(self.wide.scaler_widths("g_s"), [N + 3, N + 3, N])
        self.assertEqual(self.wide.log_fs_s.shape[-1], N + 3)

    def test_options_keep_the_width(self):
        saved = {"model": self.wide.state_dict(), "n": N, "m": M}
        self.assertEqual(HyperpriorModel.options(saved)["synthesis_width"], N + 3)
        with self.assertRaises(ValueError):
            HyperpriorModel(N, M, synthesis_width=N - 1)


class WidenEighthStageTest(WidenSynthesisTest):
    """quarter_width keeps g_s's 1/4 stage at N while the 1/8 one widens:
    the model still starts computing what it did (the inherited test), the
    new channels feed the 1/4 stage, and the widths survive a save."""

    quarter_width = N

    def test_new_channels_learn(self):
        self.assertEqual(self.wide.scaler_widths("g_s"), [N + 3, N, N])
        self.wide.synthesis(self.y, self.q).square().mean().backward()
        self.assertGreater(self.wide.g_s._modules["2"][0].weight.grad[:, N:].abs().max().item(), 0)

    def test_options_keep_the_width(self):
        options = HyperpriorModel.options({"model": self.wide.state_dict(), "n": N, "m": M})
        self.assertEqual((options["synthesis_width"], options["quarter_width"]), (N + 3, N))
        with self.assertRaises(ValueError):
            HyperpriorModel(N, M, synthesis_width=N + 3, quarter_width=N - 1)


class WidenAnalysisTest(unittest.TestCase):
    """Widening g_a's hidden layers keeps a trained model's latents, and the
    new channels then take part."""

    def setUp(self):
        torch.manual_seed(0)
        shape = dict(feature_scalers=True, encoder_blocks=True, encoder_fine_block=True)
        self.base = randomized(HyperpriorModel(N, M, **shape))
        self.wide = HyperpriorModel(N, M, analysis_width=N + 2, **shape)
        missing, unexpected = self.wide.load_widened(self.base.state_dict())
        self.assertEqual((missing, unexpected), ([], []))
        self.x = torch.rand(2, 3, 64, 64)
        self.q = torch.tensor([1, 6])

    def test_starts_nearly_unchanged(self):
        with torch.no_grad():
            a, b = self.base.analysis(self.x, self.q), self.wide.analysis(self.x, self.q)
        self.assertLess((a - b).abs().max().item(), 1e-3 * a.abs().max().item())

    def test_new_channels_learn(self):
        self.wide.analysis(self.x, self.q).square().mean().backward()
        self.assertGreater(self.wide.analysis_out.weight.grad[:, N:].abs().max().item(), 0)
        self.assertEqual(self.wide.scaler_widths("g_a"), [N + 2] * 3)

    def test_options_keep_the_width(self):
        saved = {"model": self.wide.state_dict(), "n": N, "m": M}
        self.assertEqual(HyperpriorModel.options(saved)["analysis_width"], N + 2)
        with self.assertRaises(ValueError):
            HyperpriorModel(N, M, analysis_width=N - 1)


class WidenEntropyModelTest(unittest.TestCase):
    """Adding a stage to h_s, or widening it or the checkerboard context's
    hidden layer, keeps a trained model's means and scales exactly, and the
    new channels then take part."""

    def setUp(self):
        torch.manual_seed(0)
        self.base = randomized(HyperpriorModel(N, M, checkerboard=8))
        self.z = torch.randn(2, N, 2, 3)

    def widened(self, base, **wider):
        model = HyperpriorModel(N, M, **{"checkerboard": 8, **wider})
        missing, unexpected = model.load_widened(base.state_dict())
        self.assertEqual((missing, unexpected), ([], []))
        return model

    def params(self, model):
        with torch.no_grad():
            mean, scale = model.h_s(self.z).chunk(2, 1)
            y = torch.randn_like(mean) * 3
            return model.context(y, mean, scale)[:2]

    def test_starts_unchanged(self):
        for wider in ({"hs_width": N}, {"hs_width": N + 8}, {"checkerboard": 16}, {"hs_width": N + 4, "checkerboard": 12}):
            model = self.widened(self.base, **wider)
            torch.manual_seed(3)
            a = self.params(self.base)
            torch.manual_seed(3)
            b = self.params(model)
            for u, v in zip(a, b):
                self.assertLess((u - v).abs().max().item(), 1e-5, wider)

    def test_a_stage_widens_again(self):
        once = randomized(self.widened(self.base, hs_width=N + 4), seed=2)
        twice = self.widened(once, hs_width=N + 8)
        with torch.no_grad():
            self.assertTrue(torch.allclose(once.h_s(self.z), twice.h_s(self.z), atol=1e-5))

    def test_new_channels_learn(self):
        model = self.widened(self.base, hs_width=N + 8, checkerboard=16)
        mean, scale = model.h_s(self.z).chunk(2, 1)
        mu, sigma, _ = model.context(torch.randn_like(mean) * 3, mean, scale)
        (mu.square().mean() + sigma.square().mean()).backward()
        self.assertGreater(model.h_s[-1].weight.grad[:, N:].abs().max().item(), 0)
        self.assertGreater(model.context.out.weight.grad[:, 8:].abs().max().item(), 0)

    def test_narrower_than_n_is_refused(self):
        with self.assertRaises(ValueError):
            HyperpriorModel(N, M, hs_width=N - 1)


class RateProxyTest(unittest.TestCase):
    """The rounded rate proxy is the likelihood of what the codec writes:
    free of noise, and lower than the noise proxy where scales are small."""

    def test_round_is_the_coded_rate(self):
        torch.manual_seed(0)
        model = randomized(HyperpriorModel(N, M))
        x, q = torch.rand(2, 3, 64, 64), torch.tensor([0, 3])
        model.rate_proxy = "round"
        with torch.no_grad():
            torch.manual_seed(1)
            _, a = model(x, q)
            torch.manual_seed(2)
            _, b = model(x, q)
            y = model.analysis(x, q)
            z_hat = torch.round(model.h_a(y))
            params = model.h_s(z_hat)
            mean, scale = params[:, :M], params[:, M:]
            lik = gaussian_likelihood(torch.round(y - mean), scale).clamp(min=1e-9)
            want = -(torch.log2(lik).sum((1, 2, 3))
                     + torch.log2(model.prior_z.likelihood(z_hat).clamp(min=1e-9)).sum((1, 2, 3)))
        self.assertTrue(torch.equal(a, b), "the rounded rate depends on the noise draw")
        torch.testing.assert_close(a, want, rtol=1e-4, atol=1e-3)


class FitTablesTest(unittest.TestCase):
    """Fitted y tables follow the counts where there are many and the
    Gaussian where there are none."""

    def test_pmfs(self):
        import numpy as np
        from fit_tables import NUM_QUALITIES, fitted_pmfs, half_width
        scales = [0.11, 1.0, 5.0]
        r = half_width(scales[-1])
        counts = np.zeros((NUM_QUALITIES, len(scales), 2 * r + 2))
        counts[2, 1, r + 1] = 1e6  # quality 2, scale 1: always +1
        tables = fitted_pmfs(counts, r, scales)
        self.assertEqual((len(tables), len(tables[0])), (NUM_QUALITIES, len(scales)))
        t = tables[2][1]
        self.assertGreater(t["pmf"][1 - t["offset"]], 0.999)
        g = tables[0][1]["pmf"]
        self.assertAlmostEqual(g[-tables[0][1]["offset"]], 0.3829, places=3)  # N(0,1) on [-0.5, 0.5]
        for set_ in tables:
            for t in set_:
                self.assertLessEqual(sum(t["pmf"]), 1 + 1e-9)
                self.assertEqual(len(t["pmf"]), 1 - 2 * t["offset"])


class ScaledCropsTest(unittest.TestCase):
    """random_scaled_batch shrinks each crop by a factor in its image's range."""

    def test_png_as_small_as_the_patch_is_cropped_unscaled(self):
        im = np.arange(16 * 16 * 3, dtype=np.uint8).reshape(16, 16, 3)
        x = random_scaled_batch([(im, True)], 4, 16, random.Random(0))
        for crop in x.mul(255).round().byte().permute(0, 2, 3, 1).numpy():
            self.assertTrue(any(np.array_equal(crop, f) for f in (im, im[::-1], im[:, ::-1], im[::-1, ::-1])))

    def test_scales_cover_each_kind_s_range(self):
        rng = random.Random(0)
        for lossless, (lo, hi) in ((False, JPEG_SCALES), (True, PNG_SCALES)):
            scales = [crop_scale(lossless, 1000, 128, rng) for _ in range(2000)]
            self.assertGreaterEqual(min(scales), lo)
            self.assertLessEqual(max(scales), hi)
            self.assertLess(min(scales), lo * 1.02)
            self.assertGreater(max(scales), hi * 0.98)

    def test_small_images_shrink_less_or_refuse(self):
        rng = random.Random(0)
        scales = [crop_scale(False, 200, 128, rng) for _ in range(200)]
        self.assertGreaterEqual(min(scales), 128 / 200)
        self.assertLessEqual(max(scales), JPEG_SCALES[1])
        with self.assertRaises(ValueError):
            crop_scale(False, 150, 128, rng)

    def test_jpeg_is_shrunk_by_at_least_its_largest_scale(self):
        # Vertical stripes of period 2 vanish under any real shrinking; a crop
        # taken at scale 1 would keep them at full contrast.
        im = np.zeros((64, 64, 3), np.uint8)
        im[:, ::2] = 255
        x = random_scaled_batch([(im, False)], 8, 16, random.Random(0))
        self.assertEqual(tuple(x.shape), (8, 3, 16, 16))
        self.assertLess(float((x[..., 1:] - x[..., :-1]).abs().max()), 0.5)

    def test_band_limited_crops_are_smoother(self):
        # Noise keeps its detail at any shrinking; magnified afterwards, it loses it.
        im = np.random.default_rng(0).integers(0, 256, (400, 400, 3), dtype=np.uint8)

        def detail(x):
            return float((x[..., 1:] - x[..., :-1]).abs().mean())
        plain = random_scaled_batch([(im, True)], 8, 64, random.Random(0))
        smooth = random_scaled_batch([(im, True)], 8, 64, random.Random(0), smooth_fraction=1.0)
        self.assertEqual(tuple(smooth.shape), (8, 3, 64, 64))
        self.assertLess(detail(smooth), 0.8 * detail(plain))


class OptionsTest(unittest.TestCase):
    def test_options_come_back_from_the_state(self):
        for fs in (False, True):
            for enc, dec in ((False, False), (True, False), (False, True), (True, True)):
                for skip, fine in ((False, 0), (True, 0), (False, 32), (True, 16)):
                    args = dict(n=N, m=M, family="gaussian", lambda_list=[0.01 * (q + 1) for q in range(8)],
                                feature_scalers=fs, encoder_blocks=enc, decoder_blocks=dec, linear_skip=skip,
                                fine_block=fine)
                    args["context_slices"] = 2 if fine else 0
                    args["encoder_fine_block"] = skip and not enc
                    args["checkerboard"] = 8 if fs and not fine else 0
                    args["fine_width"] = N + 2 if dec else N
                    args["coarse_block"] = enc != skip
                    args["hs_width"] = N + 4 if fs != dec else 0
                    args["analysis_width"] = N + 2 if enc != fs else N
                    args["recon_offsets"] = fs != skip
                    args["anchor_context"] = 4 if args["checkerboard"] and enc else 0
                    args["slice_context"] = 3 if args["checkerboard"] and not enc and dec else 0
                    args["synthesis_width"] = N + 3 if fs != skip else N
                    args["quarter_width"] = N if dec else args["synthesis_width"]
                    model = HyperpriorModel(**args)
                    saved = {"n": N, "m": M, "family": "gaussian", "lambdas": model.lambdas,
                             "model": model.state_dict()}
                    self.assertEqual(HyperpriorModel.options(saved), args)


class ExportTest(unittest.TestCase):
    """The exported g_a and g_s (frozen GDNs, skip paths, scaler inputs)
    compute what the trained model does."""

    def test_transforms_match_the_model(self):
        model = round_to_half(randomized(HyperpriorModel(N, M, feature_scalers=True, decoder_blocks=True,
                                                         linear_skip=True, fine_block=32,
                                                         encoder_fine_block=True, fine_width=N + 4,
                                                         coarse_block=True)))
        # GDN's beta and gamma come out of squares; keep beta away from zero.
        with torch.no_grad():
            for mod in model.modules():
                if hasattr(mod, "beta_p"):
                    mod.beta_p.add_(1)
        model.eval()
        x, q = torch.rand(1, 3, 64, 64), torch.tensor([5])
        scale_a, scale_s = model.scalers(q)
        widths = model.scaler_widths("g_s")
        with torch.no_grad():
            g_a = Transform(freeze(model.g_a), model.scaler_widths("g_a"), model.g_a_skip, scaled=True)
            g_s = Transform(freeze(model.g_s), widths, model.g_s_skip, scaled=True)
            want_y = model.run_scaled(model.g_a, x, scale_a, skip=model.g_a_skip)
            got_y = g_a(x, *scale_a[:, 0:1])
            y = torch.round(want_y)
            want_x = model.run_scaled(model.g_s, y, scale_s, skip=model.g_s_skip)
            got_x = g_s(y, *(s[0:1, :w] for s, w in zip(scale_s, widths)))
        torch.testing.assert_close(got_y, want_y, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(got_x, want_x, rtol=1e-5, atol=1e-5)
        self.assertEqual(widths, [N, N, N + 4])
        # The exported graph takes each scaler at its layer's width and
        # stays in the portable op set (no Slice for the narrower layers).
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "g_s.onnx")
            export_net(g_s, (1, M, 4, 4), path)
            graph = onnx.load(path).graph
        shapes = [[dim.dim_value for dim in i.type.tensor_type.shape.dim] for i in graph.input[1:]]
        self.assertEqual(shapes, [[1, w, 1, 1] for w in widths])
        self.assertNotIn("Slice", {node.op_type for node in graph.node})

if __name__ == "__main__":
    unittest.main()
