"""Widen a trained model's latent y from M to more channels, keeping what it computes.

    python3 train/widen.py --ckpt train/runs/hp64b/ckpt.pt --m 192 --out init.pt

The new channels start as copies of the old ones in g_a (so they carry signal
and their synthesis weights get gradients), with zero weight in g_s and h_a (so
the reconstruction and z are unchanged) and the prior of the channel they copy.
Only their rate is new; training decides what they become. A fresh model of
the wide size would have to relearn everything the narrow one knows.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import HyperpriorModel  # noqa: E402


def widen(sd, m_old, m_new):
    src = torch.arange(m_new) % m_old  # which old channel each new one copies
    extra = m_new - m_old
    out = dict(sd)
    out["g_a.6.weight"] = sd["g_a.6.weight"][src]
    out["g_a.6.bias"] = sd["g_a.6.bias"][src]
    w = sd["g_s.0.0.weight"]
    out["g_s.0.0.weight"] = torch.cat([w, torch.zeros(w.shape[0], extra, *w.shape[2:])], 1)
    w = sd["h_a.0.weight"]
    out["h_a.0.weight"] = torch.cat([w, torch.zeros(w.shape[0], extra, *w.shape[2:])], 1)
    # h_s's last conv: means for channels 0..M-1, then scales.
    w, b = sd["h_s.4.weight"], sd["h_s.4.bias"]
    out["h_s.4.weight"] = torch.cat([w[:m_old][src], w[m_old:][src]], 0)
    out["h_s.4.bias"] = torch.cat([b[:m_old][src], b[m_old:][src]], 0)
    out["log_gain_enc"] = sd["log_gain_enc"][:, src]
    out["log_gain_dec"] = sd["log_gain_dec"][:, src]
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--ckpt", required=True, help="ckpt.pt or weights_fp16.pt")
    ap.add_argument("--m", type=int, required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    ck = torch.load(args.ckpt, map_location="cpu")
    sd = {k: v.float() for k, v in ck["model"].items()}
    m_old = sd["g_a.6.weight"].shape[0]
    if any(k.startswith(("g_a.res2.", "g_s.resc.")) for k in sd):
        sys.exit("widen: the model has a residual block on the latents, which widen() does not widen")
    if args.m <= m_old:
        sys.exit(f"widen: --m {args.m} is not wider than the model's {m_old}")
    sd = widen(sd, m_old, args.m)
    model = HyperpriorModel(ck["n"], args.m, family=ck.get("family", "gaussian"))
    model.load_state_dict(sd)  # checks every shape
    torch.save({"model": model.state_dict(), "step": ck["step"], "n": ck["n"], "m": args.m,
                "family": ck.get("family", "gaussian"), "widened_from": m_old}, args.out)
    print(f"widened y from {m_old} to {args.m} channels at step {ck['step']}")


if __name__ == "__main__":
    main()
