"""Time the shipped synthesis transform (g_s) on one ONNX file, in one run,
with PyTorch, onnxruntime (npm onnxruntime-node, CPU), the Go runtime (fast
and portable kernels) and the Go runtime under js/wasm in node.

  /usr/bin/python3 train/bench_synthesis.py                 # export from the checkpoint
  /usr/bin/python3 train/bench_synthesis.py --bundle DIR    # an exported bundle

Setup (once): cd train && ONNXRUNTIME_NODE_INSTALL=skip npm ci
(onnxruntime-node ships its CPU build in the npm package; its postinstall
step only fetches optional CUDA binaries from outside the npm registry.)

Every runtime runs the same g_s.onnx on the same input tensor
(x[i] = i%11 - 5, as nn/bench_test.go's BenchmarkGraphFile). PyTorch runs the
frozen g_s (FrozenGDN, Conv2d + PixelShuffle) with its weights read from that
ONNX file's float16 initializers, i.e. exactly the weights the other runtimes
load; its output is checked against onnxruntime's.

The machine may be shared (a training job): every configuration is run in
each of --rounds interleaved rounds and the median over all timed runs is
reported, with the load average and the other jobs' CPU use over the run.
The markdown table goes to stdout and to train/rd_out/synthesis_bench.md.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from cpuinfo import describe  # noqa: E402
TIME = "/usr/bin/time"  # GNU time, for peak RSS (apt-get install time)


def bench_input(shape):
    n = int(np.prod(shape))
    return ((np.arange(n) % 11) - 5).astype(np.float32).reshape(shape)


def declared_scaler_shapes(path):
    """(name, shape) of each input of an ONNX file other than x, sorted by
    name, as the file declares them."""
    import onnx
    ins = []
    for i in onnx.load(path).graph.input:
        if i.name == "x":
            continue
        if not i.type.tensor_type.HasField("shape"):
            raise SystemExit(f"{path} declares no shape for input {i.name}")
        # A free dimension gets 1, as in the Go benchmark.
        ins.append((i.name, [d.dim_value if d.HasField("dim_value") else 1 for d in i.type.tensor_type.shape.dim]))
    return sorted(ins, key=lambda i: int(i[0][1:]) if i[0][1:].isdigit() else i[0])


def frozen_gs_from_onnx(path, n, m):
    """The exported g_s module (export.Transform) with its weights taken from
    the ONNX file; its residual blocks and skip path are read off the
    initializers' names."""
    import onnx
    import torch
    from onnx import numpy_helper
    from model import HyperpriorModel
    from export import frozen_transform
    g = onnx.load(path).graph
    weights = {}
    for init in g.initializer:
        name = init.name[:-5] if init.name.endswith("_fp16") else init.name
        weights[name] = torch.from_numpy(numpy_helper.to_array(init).astype(np.float32))
    # Export renumbers the layers; a bottleneck block is the one with a third conv.
    blocks = {k.split(".body.")[0] for k in weights if ".body." in k}
    fine = {k.split(".body.4.")[0] for k in weights if ".body.4." in k}
    # The last conv (to 3·2·2 channels) reads the last stage, which may be wider than n.
    last = next(v for k, v in weights.items() if not k.startswith("skip.") and v.dim() == 4 and v.shape[0] == 12)
    # The first conv (from the m latents to 4 x the 1/8-resolution stage) gives that stage's width.
    first = next(v for k, v in weights.items() if not k.startswith("skip.") and v.dim() == 4 and v.shape[1] == m)
    # The scaler inputs s0, s1, ... have each (I)GDN's width: s1 is the 1/4 stage's.
    scalers = [inp.type.tensor_type.shape.dim[1].dim_value for inp in g.input[1:]]
    model = HyperpriorModel(n, m, feature_scalers=bool(scalers), decoder_blocks=bool(blocks - fine),
                            fine_block=weights[f"{min(fine)}.body.0.weight"].shape[0] if fine else 0,
                            linear_skip=any(k.startswith("skip.") for k in weights), fine_width=last.shape[1],
                            synthesis_width=first.shape[0] // 4,
                            quarter_width=scalers[1] if scalers else 0)
    net = frozen_transform(model, "g_s")
    sd = net.state_dict()
    missing = set(sd) - set(weights)
    if missing:
        raise SystemExit(f"{path}: no initializer for {sorted(missing)}")
    net.load_state_dict({k: weights[k] for k in sd})
    return net.eval()


# ---------------------------------------------------------------- workers

def torch_worker(args):
    import torch
    torch.set_num_threads(args.threads)
    net = frozen_gs_from_onnx(args.onnx, args.n, args.shape[1])
    x = torch.from_numpy(bench_input(args.shape))
    scales = [torch.ones(1, w, 1, 1) for w in getattr(net, "widths", [])]
    times = []
    with torch.inference_mode():
        for _ in range(args.warmup):
            y = net(x, *scales)
        for _ in range(args.iters):
            t = time.perf_counter()
            y = net(x, *scales)
            times.append((time.perf_counter() - t) * 1e3)
    if args.dump:
        y.numpy().astype(np.float32).tofile(args.dump)
    print(json.dumps({"threads": torch.get_num_threads(), "times_ms": times,
                      "out_shape": list(y.shape)}))


# ---------------------------------------------------------------- driver

def run_rss(cmd, env=None, cwd=None):
    """Runs cmd; returns (stdout, stderr, peak RSS in MB).

    The peak RSS comes from GNU time (/usr/bin/time -f %M): a child forked
    from this (large, torch-loaded) process would report this process's RSS
    as its own high-water mark, since ru_maxrss survives exec."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rf:
        if os.path.exists(TIME):
            cmd = [TIME, "-f", "%M", "-o", rf.name] + cmd
        p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}")
        txt = rf.read().strip().splitlines()
    rss = float(txt[-1]) / 1024.0 if txt and txt[-1].isdigit() else float("nan")  # KiB
    return p.stdout, p.stderr, rss


def parse_go_bench(out):
    """ns/op of every BenchmarkGraphFile line, in ms; MBalloc/op of the last."""
    ms, alloc = [], None
    for line in out.splitlines():
        f = line.split()
        if f and f[0].startswith("BenchmarkGraphFile") and "ns/op" in f:
            ms.append(float(f[f.index("ns/op") - 1]) / 1e6)
            if "MBalloc/op" in f:
                alloc = float(f[f.index("MBalloc/op") - 1])
    if not ms:
        raise RuntimeError("no BenchmarkGraphFile result (skipped? env not passed?):\n" + out)
    return ms, alloc


def other_jobs_cpu_seconds():
    """CPU seconds used so far by train/train.py processes (the shared load)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            if "train.py" not in cmd or "bench_synthesis" in cmd:
                continue
            with open(f"/proc/{pid}/stat") as f:
                st = f.read().rsplit(")", 1)[1].split()
            total += (int(st[11]) + int(st[12])) / tick
        except (OSError, IndexError, ValueError):
            continue
    return total


def busy_cpu_seconds():
    """(all CPUs' busy seconds from /proc/stat, this process tree's CPU seconds)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    busy = (sum(v[:8]) - v[3] - v[4]) / os.sysconf("SC_CLK_TCK")
    import resource
    own = sum(getattr(resource.getrusage(w), a) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
              for a in ("ru_utime", "ru_stime"))
    return busy, own


def activation_sizes(onnx_path, shape):
    """Shapes of every tensor of the graph for the given input, via ONNX shape
    inference; returns (largest name, shape, bytes) and the input/output bytes."""
    import onnx
    from onnx import shape_inference
    m = onnx.load(onnx_path)
    inp = m.graph.input[0]
    for d, v in zip(inp.type.tensor_type.shape.dim, shape):
        d.ClearField("dim_param")
        d.dim_value = v
    for o in m.graph.output:
        for d in o.type.tensor_type.shape.dim:
            d.ClearField("dim_param")
    m = shape_inference.infer_shapes(m)
    inits = {i.name for i in m.graph.initializer}
    best = None
    for vi in list(m.graph.value_info) + list(m.graph.output):
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if not dims or any(d == 0 for d in dims) or vi.name in inits:
            continue
        if vi.type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
            continue
        # skip the Cast outputs of the weights
        if any(n.op_type == "Cast" and vi.name in n.output and n.input[0] in inits for n in m.graph.node):
            continue
        nbytes = int(np.prod(dims)) * 4
        if best is None or nbytes > best[2]:
            best = (vi.name, dims, nbytes)
    return best


def median(v):
    return statistics.median(v) if v else float("nan")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--onnx", help=argparse.SUPPRESS)
    ap.add_argument("--dump", help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (per process)")
    ap.add_argument("--shape", type=lambda s: [int(v) for v in s.split(",")], help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--ckpt", default=os.path.join(HERE, "runs", "hp64x", "weights_fp16.pt"),
                    help="a checkpoint or weights file (default: the shipped model's run)")
    ap.add_argument("--bundle", help="an exported bundle dir (g_s.onnx, params.json); default: export --ckpt")
    ap.add_argument("--width", type=int, default=768)
    ap.add_argument("--height", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds for the fast runtimes")
    ap.add_argument("--iters", type=int, default=4, help="timed runs per fast configuration per round")
    ap.add_argument("--slow-rounds", type=int, default=3, help="rounds for the portable and wasm runs (1 timed run each)")
    ap.add_argument("--go-rev", help="build the Go runtime from this git revision (git archive into the work dir) "
                    "instead of the work tree, e.g. HEAD while nn/ is being edited")
    ap.add_argument("--no-wasm", action="store_true")
    ap.add_argument("--no-portable", action="store_true")
    ap.add_argument("--out", default=os.path.join(HERE, "rd_out", "synthesis_bench.md"))
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    args = ap.parse_args()

    if args.torch_worker:
        torch_worker(args)
        return

    t_start = time.time()
    load0 = os.getloadavg()
    cpu0 = other_jobs_cpu_seconds()
    busy0 = busy_cpu_seconds()
    work = tempfile.mkdtemp(prefix="lvc_synth_bench_")
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731

    # ---- the ONNX file
    ckpt_step = None
    if args.bundle:
        bundle = os.path.abspath(args.bundle)
    else:
        import torch
        from export import export_model, load_model
        ck = os.path.join(work, "ckpt.pt")
        shutil.copyfile(args.ckpt, ck)  # training may rewrite it meanwhile
        torch.manual_seed(0)
        model, ckpt_step = load_model(ck)
        bundle = os.path.join(work, "bundle")
        _, params = export_model(model, bundle)
        params["step"] = ckpt_step
        with open(os.path.join(bundle, "params.json"), "w") as f:
            json.dump(params, f)
        log(f"exported step {ckpt_step} to {bundle}")
    gs = os.path.join(bundle, "g_s.onnx")
    with open(os.path.join(bundle, "params.json")) as f:
        params = json.load(f)
    ckpt_step = params.get("step", ckpt_step)
    n, m = params["n"], params["m"]
    # The per-quality scaler inputs s0, s1, ... (if any) get ones in the
    # shapes g_s declares (as the Go benchmark reads them from the file).
    scaler_shape = ";".join(",".join(str(d) for d in shape) for _, shape in declared_scaler_shapes(gs)) or "1"
    if args.width % 16 or args.height % 16:
        raise SystemExit("width and height must be multiples of 16")
    shape = [1, m, args.height // 16, args.width // 16]
    shape_s = ",".join(map(str, shape))
    pixels = args.width * args.height
    kmac = params["kmac_per_pixel"]["g_s"]
    gflop = kmac * 1e3 * pixels * 2 / 1e9
    largest = activation_sizes(gs, shape)

    # ---- Go test binaries, built once so that the Go tree can't change mid-run
    goroot = subprocess.run(["go", "env", "GOROOT"], capture_output=True, text=True, check=True).stdout.strip()
    wasm_exec = os.path.join(goroot, "lib", "wasm", "wasm_exec_node.js")
    go_native = os.path.join(work, "nn.test")
    go_wasm = os.path.join(work, "nn_wasm.test")
    git = lambda *a: subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()  # noqa: E731
    rev = git("rev-parse", (args.go_rev or "HEAD") + "^{commit}")  # fixed now: others may commit meanwhile
    head = rev[:7]
    dirty = "" if args.go_rev else git("status", "--porcelain", "--", "nn").replace("\n", "; ")
    go_src = ROOT
    if args.go_rev:
        go_src = os.path.join(work, "src")
        os.makedirs(go_src)
        tar = subprocess.run(["git", "archive", "--format=tar", rev], cwd=ROOT, check=True,
                             capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", go_src], input=tar, check=True)
    log(f"building Go test binaries from {'revision ' + args.go_rev if args.go_rev else 'the work tree'}")
    subprocess.run(["go", "test", "-c", "-o", go_native, "./nn"], cwd=go_src, check=True)
    if not args.no_wasm:
        subprocess.run(["go", "test", "-c", "-o", go_wasm, "./nn"], cwd=go_src, check=True,
                       env=dict(os.environ, GOOS="js", GOARCH="wasm"))

    ort_js = os.path.join(HERE, "ort_bench.mjs")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "onnxruntime-node")):
        log("installing onnxruntime-node (npm ci)")
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True,
                       env=dict(os.environ, ONNXRUNTIME_NODE_INSTALL="skip"))

    bench_env = dict(os.environ, LVC_BENCH_ONNX=gs, LVC_BENCH_SHAPE=shape_s)
    bench_env.pop("LVC_BENCH_PORTABLE", None)
    go_flags = ["-test.run", "^$", "-test.bench", "^BenchmarkGraphFile$", "-test.benchtime", "1x"]

    # ---- configurations: key -> (label, threads, fn() -> (list of ms, peak RSS MB, extra))
    def torch_cfg(th, passive=False):
        env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if passive else None

        def f(iters, dump=None):
            cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker", "--onnx", gs, "--shape", shape_s,
                   "--n", str(n),
                   "--threads", str(th), "--iters", str(iters), "--warmup", str(args.warmup)]
            if dump:
                cmd += ["--dump", dump]
            out, _, rss = run_rss(cmd, env=env)
            r = json.loads(out.strip().splitlines()[-1])
            assert r["threads"] == th, r
            return r["times_ms"], rss, r
        return f

    def ort_cfg(th, spin=True):
        def f(iters, dump=None):
            out, _, rss = run_rss(["node", ort_js, "--model", gs, "--shape", shape_s, "--threads", str(th),
                                   "--scaler-shape", scaler_shape,
                                   "--spin", "1" if spin else "0",
                                   "--iters", str(iters), "--warmup", str(args.warmup)] + (["--dump", dump] if dump else []))
            r = json.loads(out.strip().splitlines()[-1])
            return r["times_ms"], rss, r
        return f

    def go_cfg(th, portable=False):
        def f(iters, dump=None):
            env = dict(bench_env, GOMAXPROCS=str(th))
            if portable:
                env["LVC_BENCH_PORTABLE"] = "1"
            # -test.count N with -benchtime 1x: N samples of one timed run,
            # each after BenchmarkGraphFile's own warm-up run.
            out, _, rss = run_rss([go_native] + go_flags + ["-test.cpu", str(th), "-test.count", str(iters)],
                                  env=env, cwd=os.path.join(ROOT, "nn"))
            ms, alloc = parse_go_bench(out)
            return ms, rss, {"mballoc_per_op": alloc}
        return f

    def wasm_cfg():
        def f(iters, dump=None):
            env = dict(bench_env)  # wasm_exec_node.js hands process.env to the Go program
            out, _, rss = run_rss(["node", "--stack-size=8192", wasm_exec, go_wasm] + go_flags +
                                  ["-test.count", str(iters)], env=env, cwd=os.path.join(ROOT, "nn"))
            ms, alloc = parse_go_bench(out)
            return ms, rss, {"mballoc_per_op": alloc}
        return f

    fast = [
        ("torch2", "PyTorch (same weights, eager)", 2, torch_cfg(2)),
        ("torch2p", "PyTorch, OMP_WAIT_POLICY=PASSIVE", 2, torch_cfg(2, passive=True)),
        ("ort2", "onnxruntime-node (CPU EP)", 2, ort_cfg(2)),
        ("ort2p", "onnxruntime-node, allow_spinning=0", 2, ort_cfg(2, spin=False)),
        ("go2", "Go nn, fast kernel", 2, go_cfg(2)),
        ("torch1", "PyTorch (same weights, eager)", 1, torch_cfg(1)),
        ("ort1", "onnxruntime-node (CPU EP)", 1, ort_cfg(1)),
        ("go1", "Go nn, fast kernel", 1, go_cfg(1)),
    ]
    slow = []
    if not args.no_portable:
        slow += [("goport1", "Go nn, portable kernel", 1, go_cfg(1, True)),
                 ("goport2", "Go nn, portable kernel", 2, go_cfg(2, True))]
    if not args.no_wasm:
        slow += [("wasm", "Go nn, js/wasm in node (portable)", 1, wasm_cfg())]
    labels = {k: (lab, th) for k, lab, th, _ in fast + slow}
    fast_keys = {k for k, _, _, _ in fast}
    samples = {k: [] for k in labels}
    rss = {k: 0.0 for k in labels}
    extra = {}

    # correctness: PyTorch vs onnxruntime on the same input
    t_dump, o_dump = os.path.join(work, "torch.f32"), os.path.join(work, "ort.f32")
    torch_cfg(1)(1, t_dump)
    ort_cfg(1)(1, o_dump)
    yt, yo = np.fromfile(t_dump, np.float32), np.fromfile(o_dump, np.float32)
    maxdiff = float(np.max(np.abs(yt - yo)))
    out_range = float(yt.max() - yt.min())
    log(f"torch vs onnxruntime: max |diff| {maxdiff:.3g} (output range {out_range:.3g})")

    for r in range(max(args.rounds, args.slow_rounds)):
        cfgs = (fast if r < args.rounds else []) + (slow if r < args.slow_rounds else [])
        # alternate the order between rounds so no runtime always runs first
        if r % 2:
            cfgs = cfgs[::-1]
        for k, lab, th, fn in cfgs:
            iters = args.iters if k in fast_keys else 1
            ms, peak, ex = fn(iters)
            samples[k] += ms
            rss[k] = max(rss[k], peak)
            extra[k] = ex
            log(f"round {r + 1} {k:8s} " + " ".join(f"{v:.1f}" for v in ms) + f" ms  (load {os.getloadavg()[0]:.2f})")

    # peak RSS of one decode-like Go run: load the graph, warm-up run, one timed run
    go_rss = {}
    for th in (1, 2):
        _, _, go_rss[th] = run_rss([go_native] + go_flags + ["-test.cpu", str(th)],
                                   env=dict(bench_env, GOMAXPROCS=str(th)), cwd=os.path.join(ROOT, "nn"))
    _, _, go_rss_base = run_rss([go_native] + go_flags, env=dict(os.environ, LVC_BENCH_ONNX=""),
                                cwd=os.path.join(ROOT, "nn"))

    # ---- report
    t_end = time.time()
    load1 = os.getloadavg()
    other_cores = (other_jobs_cpu_seconds() - cpu0) / (t_end - t_start)
    busy1 = busy_cpu_seconds()
    foreign_cores = ((busy1[0] - busy0[0]) - (busy1[1] - busy0[1])) / (t_end - t_start)
    med = {k: median(v) for k, v in samples.items()}

    def ver(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT).stdout.strip()
        except OSError:
            return "?"
    import torch
    import onnx
    ort_ver = extra.get("ort1", {}).get("version", "?")
    cpu, go_kernel = describe()

    lines = []
    w = lines.append
    w(f"## Synthesis transform (g_s) at {args.width}x{args.height}, input [{shape_s}]")
    w("")
    cmdline = " ".join(["train/bench_synthesis.py"] + sys.argv[1:])
    w(f"{datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}, `{cmdline}`; checkpoint step {ckpt_step}; "
      f"{kmac:.3f} kMAC/pixel -> {gflop:.2f} GFLOP per run.")
    w("")
    w("| runtime | threads | median ms | min ms | runs | GFLOP/s | Go fast (same threads) / this | peak RSS MB |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for k, (lab, th) in labels.items():
        if not samples[k]:
            continue
        go_same = med.get(f"go{th}")
        ratio = f"{go_same / med[k]:.2f}x" if go_same and not k.startswith("go") and k != "wasm" else ""
        w(f"| {lab} | {th} | {med[k]:.1f} | {min(samples[k]):.1f} | {len(samples[k])} | "
          f"{gflop / med[k] * 1e3:.1f} | {ratio} | {rss[k]:.0f} |")
    w("")
    for th in (1, 2):
        if f"go{th}" not in med:
            continue
        go = med[f"go{th}"]
        ort = min(v for k, v in med.items() if k.startswith(f"ort{th}"))
        tor = min(v for k, v in med.items() if k.startswith(f"torch{th}"))
        w(f"- {th} thread{'s' if th > 1 else ''}: Go / onnxruntime = **{go / ort:.2f}x** "
          f"(goal <= 1.5x: {'met' if go / ort <= 1.5 else 'not met'}); Go / PyTorch = {go / tor:.2f}x"
          + (" (each against its faster setting: with the other core busy, spinning worker threads "
             "slow onnxruntime and OpenMP down)." if th > 1 else "."))
    if "wasm" in med:
        w(f"- js/wasm in node (single thread, portable kernel): {med['wasm']:.0f} ms = "
          f"**{gflop / med['wasm'] * 1e3:.2f} GFLOP/s** ({med['wasm'] / med['go1']:.1f}x the native fast path on 1 thread"
          + (f", {med['wasm'] / med['goport1']:.2f}x native portable" if "goport1" in med else "") + ").")
    name, dims, nbytes = largest
    w(f"- Largest activation: `{name}` {dims} float32 = {nbytes / 1e6:.1f} MB "
      f"(input {np.prod(shape) * 4 / 1e6:.2f} MB, output {3 * pixels * 4 / 1e6:.1f} MB).")
    w(f"- Peak RSS of one decode-like Go run (test binary: load graph, warm-up run, timed run): "
      f"{go_rss[1]:.0f} MB at GOMAXPROCS=1, {go_rss[2]:.0f} MB at GOMAXPROCS=2; the same binary with the benchmark "
      f"skipped: {go_rss_base:.0f} MB. Net {go_rss[1] - go_rss_base:.0f} / {go_rss[2] - go_rss_base:.0f} MB = "
      f"{(go_rss[1] - go_rss_base) / nbytes * 1e6:.1f}x / {(go_rss[2] - go_rss_base) / nbytes * 1e6:.1f}x the largest activation "
      f"(Go heap allocations per run after warm-up: {extra.get('go1', {}).get('mballoc_per_op', float('nan')):.2f} MB).")
    w(f"- Same weights: PyTorch loads g_s.onnx's float16 initializers into the frozen g_s; max |PyTorch - onnxruntime| "
      f"= {maxdiff:.2g} over an output range of {out_range:.3g}.")
    w(f"- Method: {args.rounds} interleaved rounds x {args.iters} timed runs (after {args.warmup} warm-up run per process) "
      f"for PyTorch, onnxruntime and the Go fast path; {args.slow_rounds} rounds x 1 run for the portable and wasm paths; "
      f"Go samples are `-test.benchtime 1x -test.count N` of BenchmarkGraphFile (each after its own warm-up run). "
      f"Median over all timed runs. Peak RSS: whole process (GNU time %M), largest over that configuration's "
      f"processes, so it includes each runtime's own footprint (python+torch, node+onnxruntime, node+wasm heap).")
    w(f"- Load: shared machine ({os.cpu_count()} cores); load average {load0[0]:.2f} at start, {load1[0]:.2f} at end; "
      f"processes outside this benchmark used {foreign_cores:.2f} cores on average during the {t_end - t_start:.0f} s run "
      f"(train/train.py alone {other_cores:.2f}), so 2-thread numbers compete with them for a core and the 1-thread "
      f"numbers are the cleaner comparison.")
    w(f"- Versions: CPU {cpu} (Go fast kernel: {go_kernel}); {ver(['go', 'version'])}; node {ver(['node', '--version'])}; "
      f"onnxruntime-node {ort_ver}; torch {torch.__version__} (Debian, oneDNN); onnx {onnx.__version__}; "
      f"Python {platform.python_version()}; Go runtime built from {'revision' if args.go_rev else 'the work tree at'} {head}" + (f" with local changes in nn/ ({dirty})" if dirty else "") + ".")
    text = "\n".join(lines) + "\n"
    print(text)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        log("work dir kept:", work)


if __name__ == "__main__":
    main()
