"""One-off repair of checkpoints trained before the GDN fix: set GDN
off-diagonal gamma_p entries that are exactly zero (and so never received a
gradient) to GDN.OFF_DIAGONAL_INIT, so training can learn them.

  python3 train/fix_gdn_ckpt.py train/runs/hp64/ckpt.pt
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model import GDN  # noqa: E402

path = sys.argv[1]
ck = torch.load(path, map_location="cpu")
fixed = 0
for name, t in ck["model"].items():
    if name.endswith("gamma_p"):
        off = ~torch.eye(t.shape[0], dtype=torch.bool)
        dead = off & (t == 0)
        t[dead] = GDN.OFF_DIAGONAL_INIT
        fixed += int(dead.sum())
torch.save(ck, path + ".tmp")
os.replace(path + ".tmp", path)
print(f"{path}: step {ck['step']}, {fixed} off-diagonal GDN entries set to {GDN.OFF_DIAGONAL_INIT}")
