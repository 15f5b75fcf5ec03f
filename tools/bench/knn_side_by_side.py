#!/usr/bin/env python3
"""k-NN radii with numpy, written the way a numpy user would: blocked float32
GEMM through the expansion ||a||^2 + ||b||^2 - 2 a.b, clamp at 0, then
np.partition for the k-th smallest (the 0 self-distance is included, so index
k is the k-th nearest *other* row), as in prdc / kynkaat.

Run alone:
    python3 tools/bench/knn_side_by_side.py --n 10000 --d 2048 --k 3
or driven by the Rust runner (`cargo bench --bench knn -- --side-by-side`),
which passes --data (raw little-endian float32, row-major) and --out (where
the radii are written as raw float64) and reads the JSON line printed last.
"""
import argparse
import json
import os
import time

import numpy as np


def knn_radii_numpy(x, k, block=1024):
    n = x.shape[0]
    sq = np.einsum("ij,ij->i", x, x)
    out = np.empty(n, dtype=np.float32)
    for s in range(0, n, block):
        e = min(n, s + block)
        d2 = x[s:e] @ x.T
        d2 *= -2.0
        d2 += sq[s:e, None]
        d2 += sq[None, :]
        np.maximum(d2, 0.0, out=d2)
        out[s:e] = np.sqrt(np.partition(d2, k, axis=1)[:, k])
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--data", help="raw float32 [n, d] file; random uniform data if absent")
    ap.add_argument("--out", help="write the radii here as raw float64")
    a = ap.parse_args()
    if a.data:
        x = np.fromfile(a.data, dtype="<f4").reshape(a.n, a.d)
    else:
        x = np.random.default_rng(0).random((a.n, a.d), dtype=np.float32)
    knn_radii_numpy(x[: min(a.n, 1024)], a.k)  # warm-up (BLAS threads, page faults)
    times = []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        r = knn_radii_numpy(x, a.k)
        times.append(time.perf_counter() - t0)
    if a.out:
        r.astype("<f8").tofile(a.out)
    cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = cfg.get("Build Dependencies", {}).get("blas", {}) if isinstance(cfg, dict) else {}
    print(json.dumps({
        "numpy": np.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "threads": os.cpu_count(),
        "times_s": times,
        "min_s": min(times),
        "median_s": sorted(times)[len(times) // 2],
    }))


if __name__ == "__main__":
    main()
