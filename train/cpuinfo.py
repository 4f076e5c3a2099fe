"""Name the CPU a benchmark ran on, and the Go kernel it selects.

Speed figures differ by microarchitecture (Zen 3 has no AVX-512; Zen 4 runs
it on 256-bit units; Zen 5 on full-width ones), so every generated section
says which CPU measured it instead of assuming one.
"""

# AMD's family/model numbers for the server cores these machines have had.
_AMD = {
    25: [(range(0x00, 0x10), "Zen 3"), (range(0x10, 0x20), "Zen 4"), (range(0xA0, 0xB0), "Zen 4")],
    26: [(range(0x00, 0x100), "Zen 5")],
}


def _fields(text):
    out = {}
    for line in text.splitlines():
        if ":" in line:
            key, val = line.split(":", 1)
            out.setdefault(key.strip(), val.strip())
    return out


def describe(text=None):
    """(description, go_kernel) from /proc/cpuinfo's text, e.g.
    ("AMD EPYC (family 25, model 1: Zen 3; AVX2+FMA, no AVX-512)", "avx2")."""
    if text is None:
        with open("/proc/cpuinfo") as f:
            text = f.read()
    info = _fields(text)
    flags = set(info.get("flags", "").split())
    kernel = "avx512" if "avx512f" in flags else "avx2" if {"avx2", "fma"} <= flags else "portable"
    simd = {"avx512": "AVX-512", "avx2": "AVX2+FMA, no AVX-512", "portable": "no AVX2+FMA"}[kernel]
    name = info.get("model name", "unknown CPU")
    try:
        family, model = int(info["cpu family"]), int(info["model"])
    except (KeyError, ValueError):
        return f"{name} ({simd})", kernel
    core = ""
    if info.get("vendor_id") == "AuthenticAMD":
        core = next((f": {c}" for r, c in _AMD.get(family, []) if model in r), "")
    return f"{name} (family {family}, model {model}{core}; {simd})", kernel
