#!/usr/bin/env python3
"""Fréchet distance and covariance with numpy/scipy, for the side-by-side run
of `cargo bench --bench frechet -- --side-by-side` (which writes the inputs
and reads the JSON line printed last).

FD routes, on the same float64 statistics (mu1, s1, mu2, s2):
  * sqrtm:  pytorch-fid 0.3.0 `calculate_frechet_distance` (scipy.linalg.sqrtm
            of s1 @ s2, eps offset if not finite, real part), verbatim logic;
  * chol:   L = cholesky(s1); tr sqrt = sum sqrt(max(eigvalsh(L.T @ s2 @ L), 0)).
Covariance: np.cov(X, rowvar=False) of the float32 [n, d] matrix X (numpy
promotes to float64), as pytorch-fid / clean-fid compute their statistics.

Run alone (random data):
    python3 tools/bench/fd_side_by_side.py --d 2048 --n-cov 50000
"""
import argparse
import json
import os
import time

import numpy as np
import scipy
from scipy import linalg


def fd_sqrtm(mu1, sigma1, mu2, sigma2, eps=1e-6):
    # pytorch-fid 0.3.0 calculate_frechet_distance (disp=False is deprecated
    # in recent scipy, which now returns the matrix alone).
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if isinstance(covmean, tuple):
        covmean = covmean[0]
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
        if isinstance(covmean, tuple):
            covmean = covmean[0]
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    tr_covmean = np.trace(covmean)
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


def fd_chol(mu1, sigma1, mu2, sigma2):
    diff = mu1 - mu2
    l = np.linalg.cholesky(sigma1)
    w = np.linalg.eigvalsh(l.T @ sigma2 @ l)
    tr = np.sqrt(np.clip(w, 0.0, None)).sum()
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr


def timed(repeats, f, *args):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = f(*args)
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[0], times[len(times) // 2], out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", help="folder with mu1 mu2 s1 s2 (raw <f8) and x (raw <f4); random data if absent")
    ap.add_argument("--d", type=int, default=2048)
    ap.add_argument("--n-cov", type=int, default=50000)
    ap.add_argument("--sqrtm-repeats", type=int, default=2)
    a = ap.parse_args()
    d = a.d
    if a.dir:
        rd = lambda n, dt: np.fromfile(os.path.join(a.dir, n), dtype=dt)
        mu1, mu2 = rd("mu1", "<f8"), rd("mu2", "<f8")
        s1, s2 = rd("s1", "<f8").reshape(d, d), rd("s2", "<f8").reshape(d, d)
    else:
        rng = np.random.default_rng(0)
        x1 = rng.standard_normal((2 * d, d)); x2 = 1.2 * rng.standard_normal((2 * d, d)) + 0.1
        mu1, mu2 = x1.mean(0), x2.mean(0)
        s1, s2 = np.cov(x1, rowvar=False), np.cov(x2, rowvar=False)

    if a.dir:
        x = np.fromfile(os.path.join(a.dir, "x"), dtype="<f4").reshape(a.n_cov, d)
    else:
        x = np.random.default_rng(1).standard_normal((a.n_cov, d), dtype=np.float32)

    # On a shared machine the load drifts: the fast routes are timed both
    # before and after the long sqrtm run, and the minimum is reported.
    fd_chol(mu1, s1, mu2, s2)  # warm-up (BLAS threads, page faults)
    ch1 = timed(3, fd_chol, mu1, s1, mu2, s2)
    cv1 = timed(2, np.cov, x, None, False)
    sq_min, sq_med, v_sq = timed(a.sqrtm_repeats, fd_sqrtm, mu1, s1, mu2, s2)
    ch2 = timed(3, fd_chol, mu1, s1, mu2, s2)
    cv2 = timed(2, np.cov, x, None, False)
    ch_min, ch_med, v_ch = min(ch1[0], ch2[0]), sorted([ch1[1], ch2[1]])[0], ch2[2]
    cov_min, cov_med, c = min(cv1[0], cv2[0]), sorted([cv1[1], cv2[1]])[0], cv2[2]
    dev = float("nan")
    if a.dir and os.path.exists(os.path.join(a.dir, "cov_ours")):
        ours = np.fromfile(os.path.join(a.dir, "cov_ours"), dtype="<f8").reshape(d, d)
        dev = float(np.abs(ours - c).max() / np.abs(c).max())
        np.array([dev], dtype="<f8").tofile(os.path.join(a.dir, "cov_dev"))

    cfg = np.show_config(mode="dicts") if hasattr(np, "show_config") else {}
    blas = cfg.get("Build Dependencies", {}).get("blas", {}) if isinstance(cfg, dict) else {}
    print(json.dumps({
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "blas": f"{blas.get('name', '?')} {blas.get('version', '')}".strip(),
        "threads": os.cpu_count(),
        "fd_sqrtm": float(v_sq), "sqrtm_min_s": sq_min, "sqrtm_median_s": sq_med,
        "fd_chol": float(v_ch), "chol_min_s": ch_min, "chol_median_s": ch_med,
        "cov_min_s": cov_min, "cov_median_s": cov_med, "cov_rel_dev": dev,
    }))


if __name__ == "__main__":
    main()
