"""Synthetic pool3-like feature files shared by the side-by-side benchmarks
(fid_whole.py, gram_floor.py)."""

import os

import numpy as np


def make(n, d, folder):
    """Two synthetic pool3-like sets: non-negative, low rank (64) plus noise, seeds 0 and 1."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, seed in (("A", 0), ("B", 1)):
        rng = np.random.default_rng(seed)
        z = rng.standard_normal((n, 64)).astype(np.float32)
        w = rng.standard_normal((64, d)).astype(np.float32) / 8
        x = z @ w + 0.3 * rng.standard_normal((n, d)).astype(np.float32) + (0.2 if seed else 0.0)
        p = os.path.join(folder, f"{name}.npy")
        np.save(p, np.maximum(x, 0).astype(np.float32))
        paths.append(p)
    return paths
