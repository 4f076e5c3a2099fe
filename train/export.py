"""Export a trained model for the Go codec, and write the nn golden tests.

  python3 train/export.py model --ckpt train/runs/hp64/ckpt.pt --out /tmp/bundle
      writes g_a/g_s/h_a/h_s.onnx (and ctx.onnx for a checkerboard context, ctx_anchor.onnx
      for an anchor context)
      and params.json; `lvc model pack` turns the
      bundle into one .lvcm file with integer entropy tables.
  python3 train/export.py tiny --out /tmp/tiny
      the same for a small untrained model (a few KB), for tests.
  python3 train/export.py goldens --out testdata/nn
      per-op ONNX graphs with PyTorch inputs and outputs.

Weights are stored as float16 initializers followed by a Cast to float, which
halves the model files and keeps them valid ONNX for onnxruntime.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper, TensorProto

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import GDN, HyperpriorModel, NUM_QUALITIES, ResBlock, scale_table, macs_per_pixel  # noqa: E402

OPSET = 13


class FrozenGDN(nn.Module):
    """GDN with its parameters baked: x / sqrt(conv1x1(x*x, gamma, beta))."""

    def __init__(self, gdn):
        super().__init__()
        c = gdn.beta_p.shape[0]
        self.inverse = gdn.inverse
        self.norm = nn.Conv2d(c, c, 1)
        with torch.no_grad():
            self.norm.weight.copy_((gdn.gamma_p ** 2).view(c, c, 1, 1))
            self.norm.bias.copy_(gdn.beta_p ** 2 + 1e-6)

    def forward(self, x):
        n = torch.sqrt(self.norm(x * x))
        return x * n if self.inverse else x / n


def freeze(net):
    layers = [FrozenGDN(m) if isinstance(m, GDN) else m for m in net]
    return nn.Sequential(*layers).eval()


def half_initializers(path):
    """Store float initializers as float16, each followed by a Cast to float."""
    m = onnx.load(path)
    g = m.graph
    casts = []
    for init in list(g.initializer):
        if init.data_type != TensorProto.FLOAT or len(init.dims) == 0:
            continue
        arr = numpy_helper.to_array(init).astype(np.float16)
        name = init.name
        g.initializer.remove(init)
        g.initializer.append(numpy_helper.from_array(arr, name + "_fp16"))
        casts.append(helper.make_node("Cast", [name + "_fp16"], [name], to=TensorProto.FLOAT))
    nodes = casts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)


class Transform(nn.Module):
    """A frozen g_a or g_s with its linear skip path, if any. With feature
    scalers it takes the per-quality (I)GDN input scalers as inputs s0, s1, ...
    of shape [1, C, 1, 1], C the layer's width (HyperpriorModel.run_scaled)."""

    def __init__(self, net, widths, skip, scaled):
        super().__init__()
        self.net, self.skip = net, skip
        self.widths = widths if scaled else []

    def forward(self, x, *scales):
        # Without scales (macs_per_pixel calls it with x alone) it runs unscaled.
        return HyperpriorModel.run_scaled(self.net, x, scales or None, gdn=FrozenGDN, skip=self.skip)


def export_net(net, shape, path, fp16=True):
    net = net.eval()
    args, names = (torch.zeros(shape),), ["x"]
    if isinstance(net, Transform):
        args += tuple(torch.ones(1, w, 1, 1) for w in net.widths)
        names += [f"s{i}" for i in range(len(net.widths))]
    torch.onnx.export(net, args, path, opset_version=OPSET, input_names=names,
                      output_names=["y"], dynamic_axes={"x": {2: "h", 3: "w"}, "y": {2: "h", 3: "w"}})
    if fp16:
        half_initializers(path)


def z_pmfs(prior, tail=1e-9, search=256):
    """Per-channel pmfs of z over the smallest integer range that leaves at
    most `tail` of the mass outside."""
    pmf = prior.pmf(-search, search).numpy()
    out = []
    for p in pmf:
        c = np.cumsum(p)
        lo = int(np.searchsorted(c, tail / 2))
        hi = int(np.searchsorted(c, c[-1] - tail / 2))
        hi = max(hi, lo + 1)
        out.append({"offset": lo - search, "pmf": [float(v) for v in p[lo:hi + 1]]})
    return out


def round_to_half(net):
    """Round weights to the float16 values the exported file will hold, so
    goldens computed from net match what the runtime loads."""
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.half().float())
    return net


def frozen_transform(model, name):
    """model's g_a or g_s as it is exported: frozen, weights rounded to
    float16, wrapped in a Transform when it has scaler inputs or a skip path."""
    net, skip = round_to_half(freeze(getattr(model, name))), getattr(model, name + "_skip")
    if skip is None and not model.feature_scalers:
        return net
    return Transform(net, model.scaler_widths(name), None if skip is None else round_to_half(skip.eval()),
                     model.feature_scalers)


def layer_scalers(model, net, log_scales):
    """Per quality, per (I)GDN of net, its scalers at the layer's width."""
    widths = model.scaler_widths(net)
    with torch.no_grad():
        return [[torch.exp(q[i, :w]).tolist() for i, w in enumerate(widths)] for q in log_scales]


def export_model(model, out, fp16=True):
    """Export the four networks; returns them (frozen, as exported) and params."""
    os.makedirs(out, exist_ok=True)
    model.eval()
    n, m = model.n, model.m
    nets = {"g_a": frozen_transform(model, "g_a"), "g_s": frozen_transform(model, "g_s"),
            "h_a": round_to_half(model.h_a.eval()),
            # h_s runs in integer arithmetic in Go; float32 weights keep its
            # fixed point as close as possible to the trained network.
            "h_s": model.h_s.eval()}
    export_net(nets["g_a"], (1, 3, 64, 64), os.path.join(out, "g_a.onnx"), fp16)
    export_net(nets["g_s"], (1, m, 4, 4), os.path.join(out, "g_s.onnx"), fp16)
    export_net(nets["h_a"], (1, m, 4, 4), os.path.join(out, "h_a.onnx"), fp16)
    export_net(nets["h_s"], (1, n, 1, 1), os.path.join(out, "h_s.onnx"), fp16=False)
    checkerboard = model.checkerboard
    if checkerboard:
        # Also fixed point in Go, so float32 like h_s.
        nets["ctx"] = model.context.positionwise().eval()
        export_net(nets["ctx"], (1, 6 * m, 1, 4), os.path.join(out, "ctx.onnx"), fp16=False)
    if model.anchor_context:
        nets["ctx_anchor"] = model.context.anchor.positionwise().eval()
        export_net(nets["ctx_anchor"], (1, 6 * m, 1, 4), os.path.join(out, "ctx_anchor.onnx"), fp16=False)
    px = 512 * 768
    with torch.no_grad():
        gains_enc = torch.exp(model.log_gain_enc).tolist()
        gains_dec = torch.exp(model.log_gain_dec).tolist()
    params = {
        "n": n, "m": m, "qualities": NUM_QUALITIES, "lambdas": model.lambdas, "stride": 64,
        "family": model.family, "scales": scale_table(),
        "gain_enc": gains_enc, "gain_dec": gains_dec,
        "z_pmfs": z_pmfs(model.prior_z),
        "feature_scalers": {"g_a": layer_scalers(model, "g_a", model.log_fs_a),
                            "g_s": layer_scalers(model, "g_s", model.log_fs_s)}
        if model.feature_scalers else None,
        "kmac_per_pixel": {
            "g_a": macs_per_pixel(nets["g_a"], (1, 3, 512, 768)) / px / 1e3,
            "h_a": macs_per_pixel(model.h_a, (1, m, 32, 48)) / px / 1e3,
            "h_s": macs_per_pixel(model.h_s, (1, n, 8, 12)) / px / 1e3,
            "g_s": macs_per_pixel(nets["g_s"], (1, m, 32, 48)) / px / 1e3,
        },
    }
    if checkerboard:
        params["checkerboard"] = checkerboard
        # Run at the 768 second-pass positions of a 768x512 frame's 32x48 latents.
        params["kmac_per_pixel"]["context"] = macs_per_pixel(nets["ctx"], (1, 6 * m, 1, 768)) / px / 1e3
    if model.anchor_context:
        params["anchor_context"] = model.anchor_context
        # Run at the 384 later anchors of the same latents.
        params["kmac_per_pixel"]["anchor_context"] = macs_per_pixel(nets["ctx_anchor"], (1, 6 * m, 1, 384)) / px / 1e3
    return nets, params


def tensor_file(path, arr):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(np.ascontiguousarray(arr, dtype=np.float32)).SerializeToString())


def single_node_graph(path, node, inputs, out_shape, initializers, opset=OPSET):
    ins = [helper.make_tensor_value_info(name, TensorProto.FLOAT, shape) for name, shape in inputs]
    out = helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)
    g = helper.make_graph([node], "op", ins, [out],
                          [numpy_helper.from_array(v.astype(np.float32) if v.dtype == np.float64 else v, k)
                           for k, v in initializers.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(m)
    onnx.save(m, path)


def write_goldens(out):
    """Each case: <name>.onnx, <name>.in.pb (input) and <name>.out.pb (PyTorch's output)."""
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(5)

    def rnd(*shape):
        return torch.randn(*shape, generator=g)

    def case_module(name, mod, x, opset=OPSET):
        mod = mod.eval()
        torch.onnx.export(mod, x, os.path.join(out, name + ".onnx"), opset_version=opset,
                          input_names=["x"], output_names=["y"])
        tensor_file(os.path.join(out, name + ".in.pb"), x.numpy())
        with torch.no_grad():
            tensor_file(os.path.join(out, name + ".out.pb"), mod(x).numpy())

    case_module("conv3x3_s1", nn.Conv2d(8, 12, 3, padding=1), rnd(1, 8, 13, 17))
    case_module("conv5x5_s2", nn.Conv2d(3, 7, 5, stride=2, padding=2), rnd(1, 3, 21, 18))
    case_module("conv1x1_nobias", nn.Conv2d(5, 9, 1, bias=False), rnd(1, 5, 6, 7))
    case_module("conv_depthwise", nn.Conv2d(6, 6, 3, padding=1, groups=6), rnd(1, 6, 9, 8))
    case_module("conv_relu", nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.ReLU()), rnd(1, 4, 8, 8))
    case_module("conv_leaky", nn.Sequential(nn.Conv2d(4, 8, 3, padding=1), nn.LeakyReLU(0.2)), rnd(1, 4, 8, 8))
    case_module("pixelshuffle_d2s", nn.PixelShuffle(2), rnd(1, 12, 5, 6))
    case_module("pixelshuffle_reshape", nn.PixelShuffle(2), rnd(1, 12, 5, 6), opset=9)
    gdn = GDN(6)
    igdn = GDN(6, inverse=True)
    with torch.no_grad():
        for m in (gdn, igdn):
            m.beta_p.uniform_(0.5, 1.5)
            m.gamma_p.uniform_(0, 0.5)
    case_module("gdn", FrozenGDN(gdn), rnd(1, 6, 7, 5))
    case_module("igdn", FrozenGDN(igdn), rnd(1, 6, 7, 5))

    class Elementwise(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.rand(1, 4, 1, 1) + 0.5)
            self.shift = nn.Parameter(torch.randn(1, 4, 1, 1))

        def forward(self, x):
            a = torch.sqrt(torch.abs(x) + 1) * self.scale - self.shift
            b = torch.exp(-torch.abs(x)) / (a * a + 1) + torch.log(torch.abs(x) + 2)
            c = torch.sigmoid(x) + torch.tanh(a) + F.leaky_relu(x, 0.1) + torch.relu(b)
            d = torch.cat([c, x], dim=1)
            return d.reshape(1, 2, 4, -1).transpose(2, 3).reshape(1, 8, 5, 6)

    case_module("elementwise", Elementwise(), rnd(1, 4, 5, 6))
    # Asymmetric padding is a Conv attribute that PyTorch never exports, so
    # the graph is built by hand and checked against F.pad + conv.
    w = rnd(5, 3, 3, 3)
    b = rnd(5)
    x = rnd(1, 3, 10, 9)
    node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[3, 3], pads=[0, 1, 2, 0], strides=[2, 1])
    ref = F.conv2d(F.pad(x, (1, 0, 0, 2)), w, b, stride=(2, 1))
    single_node_graph(os.path.join(out, "conv_asympad.onnx"), node, [("x", [1, 3, 10, 9])], list(ref.shape),
                      {"w": w.numpy(), "b": b.numpy()})
    tensor_file(os.path.join(out, "conv_asympad.in.pb"), x.numpy())
    tensor_file(os.path.join(out, "conv_asympad.out.pb"), ref.numpy())
    node = helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="DCR")
    x = rnd(1, 8, 3, 4)
    ref = x.reshape(1, 2, 2, 2, 3, 4).permute(0, 3, 4, 1, 5, 2).reshape(1, 2, 6, 8)
    single_node_graph(os.path.join(out, "d2s_dcr.onnx"), node, [("x", [1, 8, 3, 4])], list(ref.shape), {})
    tensor_file(os.path.join(out, "d2s_dcr.in.pb"), x.numpy())
    tensor_file(os.path.join(out, "d2s_dcr.out.pb"), ref.numpy())

    # Residual blocks: the Go runtime adds the residual in the last conv's
    # store, in place when nothing reads it afterwards ("resblock"), into a
    # copy when something does ("resblock_kept").
    class Kept(nn.Module):
        def __init__(self, block):
            super().__init__()
            self.block = block

        def forward(self, x):
            return self.block(x) * x

    for name, wrap in (("resblock", lambda b: b), ("resblock_kept", Kept)):
        block = ResBlock(6)
        with torch.no_grad():
            block.body[2].weight.copy_(rnd(*block.body[2].weight.shape) * 0.2)
            block.body[2].bias.copy_(rnd(6))
        case_module(name, nn.Sequential(nn.Conv2d(6, 6, 1), wrap(block)), rnd(1, 6, 9, 7))

    # A conv plus a per-channel constant kept in float16 behind a Cast, as
    # exported weights are: the compiler folds the Cast, and the Add is fused
    # like a residual, broadcast per channel. Built by hand: PyTorch's export
    # folds the Cast itself.
    w, b, x = rnd(6, 4, 3, 3), rnd(6), rnd(1, 4, 7, 5)
    shift = rnd(1, 6, 1, 1).half()
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Cast", ["shift16"], ["shift"], to=TensorProto.FLOAT),
             helper.make_node("Add", ["c", "shift"], ["y"])]
    ref = F.conv2d(x, w, b, padding=1) + shift.float()
    graph = helper.make_graph(nodes, "conv_add_const", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 7, 5])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(ref.shape))],
                              [numpy_helper.from_array(w.numpy(), "w"), numpy_helper.from_array(b.numpy(), "b"),
                               numpy_helper.from_array(shift.numpy(), "shift16")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "conv_add_const.onnx"))
    tensor_file(os.path.join(out, "conv_add_const.in.pb"), x.numpy())
    tensor_file(os.path.join(out, "conv_add_const.out.pb"), ref.numpy())


# The quality whose feature scalers the goldens of a scaled model use
# (codec/golden_test.go reads the same).
GOLDEN_QUALITY = 3


def write_model_goldens(model, nets, out, size=(32, 64)):
    """Inputs and PyTorch outputs of each exported network on one image; for
    a model with feature scalers also the scalers of GOLDEN_QUALITY fed to
    g_a and g_s (g_a.s0.pb, ...)."""
    g = torch.Generator().manual_seed(9)
    x = torch.rand(1, 3, *size, generator=g)
    files = []
    scales = {"g_a": (), "g_s": ()}
    if model.feature_scalers:
        q = torch.tensor([GOLDEN_QUALITY])
        for net, s in zip(("g_a", "g_s"), model.scalers(q)):
            scales[net] = tuple(v[:, :w] for v, w in zip(s, model.scaler_widths(net)))
            files += [(f"{net}.s{i}", v) for i, v in enumerate(scales[net])]
    with torch.no_grad():
        y = nets["g_a"](x, *scales["g_a"])
        z = nets["h_a"](y)
        z_hat = torch.round(z)
        params = nets["h_s"](z_hat)
        x_hat = nets["g_s"](torch.round(y), *scales["g_s"])
    files += [("g_a.in", x), ("g_a.out", y), ("h_a.out", z), ("h_s.in", z_hat), ("h_s.out", params),
              ("g_s.in", torch.round(y)), ("g_s.out", x_hat)]
    if model.checkerboard:
        # Each context pass's corrections to the means and scales at its
        # targets (zero elsewhere), given the ŷ at the positions decoded
        # before it, for a y drawn around h_s's means: the goldens' y above
        # need not have h_s's size. The anchor context's pass comes first,
        # and the checkerboard's sees the anchors it corrected.
        ctx = model.context
        with torch.no_grad():
            mean, scale = params[:, :model.m], params[:, model.m:]
            y_ctx = mean + 3 * torch.randn(mean.shape, generator=g)
            passes = [("ctx", ctx)] if ctx.anchor is None else [("ctx_anchor", ctx.anchor), ("ctx", ctx)]
            for name, net in passes:
                mu, sigma = net.corrections(y_ctx, mean, scale)
                y_hat = torch.where(net.known(y_ctx).bool(), torch.round(y_ctx - mean) + mean, torch.zeros_like(y_ctx))
                files += [(name + ".yhat", y_hat), (name + ".out", torch.cat([mu - mean, sigma - scale], 1))]
                mean, scale = mu, sigma
    for name, a in files:
        tensor_file(os.path.join(out, name + ".pb"), a.detach().numpy())


def load_model(ckpt):
    """A checkpoint or fp16 weights file (weights are widened to float32)."""
    ck = torch.load(ckpt, map_location="cpu")
    model = HyperpriorModel(**HyperpriorModel.options(ck))
    model.load_state_dict({k: v.float() for k, v in ck["model"].items()})
    return model, ck["step"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["model", "tiny", "goldens", "weights"])
    ap.add_argument("--ckpt")
    ap.add_argument("--out", required=True)
    ap.add_argument("--goldens", action="store_true", help="also write network goldens")
    ap.add_argument("--feature-scalers", action="store_true", help="tiny: with per-quality (I)GDN input scalers")
    ap.add_argument("--checkerboard", action="store_true", help="tiny: with a checkerboard context")
    ap.add_argument("--anchor-context", action="store_true", help="tiny: with a checkerboard and an anchor context")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.what == "goldens":
        write_goldens(args.out)
        return
    if args.what == "weights":
        # Model weights only, in float16: what a later session needs to go on
        # training (train.py --init), at a quarter of a full checkpoint.
        ck = torch.load(args.ckpt, map_location="cpu")
        torch.save({"model": {k: v.half() for k, v in ck["model"].items()}, "step": ck["step"],
                    "n": ck["n"], "m": ck["m"], "family": ck.get("family", "gaussian"),
                    **{k: ck[k] for k in ("lambdas", "revived", "revived_at") if k in ck}}, args.out)
        return
    if args.what == "tiny":
        # The scaled one also widens g_s's last stage, so tests see layers
        # of different widths.
        model = HyperpriorModel(4, 6, feature_scalers=args.feature_scalers,
                                fine_width=6 if args.feature_scalers else None,
                                checkerboard=4 if args.checkerboard or args.anchor_context else 0,
                                anchor_context=3 if args.anchor_context else 0)
        with torch.no_grad():
            if args.feature_scalers:  # scalers that differ, so tests see them used
                model.log_fs_a.uniform_(-0.5, 0.5)
                model.log_fs_s.uniform_(-0.5, 0.5)
            if model.checkerboard:  # a context whose corrections are not zero
                for p in model.context.parameters():
                    p.normal_(0, 0.3)
        step = 0
    else:
        model, step = load_model(args.ckpt)
        if model.context is not None and not model.checkerboard:
            sys.exit("export: the Go codec has no channel context; this model trains and evaluates "
                     "in PyTorch only (train/compare_estimates.py)")
        if model.slice_context is not None:
            sys.exit("export: the Go codec has no slice context yet; this model trains and evaluates "
                     "in PyTorch only (train/compare_estimates.py)")
        if model.recon_offsets is not None:
            sys.exit("export: the Go codec has no reconstruction offsets yet; this model trains and "
                     "evaluates in PyTorch only (train/compare_estimates.py)")
    nets, params = export_model(model, args.out)
    params["step"] = step
    with open(os.path.join(args.out, "params.json"), "w") as f:
        json.dump(params, f)
    if args.goldens or args.what == "tiny":
        write_model_goldens(model, nets, args.out)
    print(json.dumps(params["kmac_per_pixel"]))


if __name__ == "__main__":
    main()
