#!/usr/bin/env python3
"""Our k-NN + kernel metrics against the GEMM floor, side by side in one run (issue #10, item 4(a)).

  * ours:  `gen-metrics metrics --real A.npy --fake B.npy --metrics fid,kid,pr,prdc,realism --json`
           as a child process (wall time of the whole process; peak resident memory from
           /usr/bin/time -v when it exists);
  * floor: the three full float32 GEMMs over the same pairs of sets, real·realᵀ, fake·fakeᵀ and
           real·fakeᵀ, with numpy/OpenBLAS in row blocks of --block rows (X[i:i+B] @ Y.T, so
           memory stays bounded as ours does), on the same machine and threads.
The floor is what any exact-distance implementation must at least multiply (without symmetry:
the two within-set products could be halved).

With --kid-floor the run also times what exact KID alone must multiply: the float64 products of
the upper-triangle blocks of real·realᵀ and fake·fakeᵀ and all of real·fakeᵀ (the references
compute KID in float64; float32 products move it by ~5e-5 relative). Its ratio to the float32
floor bounds from below what any implementation keeping KID exact can reach (docs/benchmarks.md). Rounds are interleaved (ours, floor, ours, ...);
minima are compared and printed last as one JSON line with the ratio ours / floor.

    python3 tools/bench/gram_floor.py --bin target/release/gen-metrics A.npy B.npy
    python3 tools/bench/gram_floor.py --bin target/release/gen-metrics --make 10000 2048 DIR
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import time

import numpy as np

from synthetic_features import make

METRICS = "fid,kid,pr,prdc,realism"


def ours(binary, a, b, metrics):
    cmd = [binary, "metrics", "--real", a, "--fake", b, "--metrics", metrics, "--json"]
    timev = shutil.which("time") or ("/usr/bin/time" if os.path.exists("/usr/bin/time") else None)
    if timev:
        cmd = [timev, "-v"] + cmd
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr)
    rss = int(m.group(1)) * 1024 if m else None
    return wall, rss, json.loads(out.stdout)


def floor(x, y, block):
    t0 = time.perf_counter()
    for p, q in ((x, x), (y, y), (x, y)):
        for i in range(0, p.shape[0], block):
            g = p[i:i + block] @ q.T
            del g
    return time.perf_counter() - t0


def kid_floor(x, y, block):
    """float64 products exact KID needs: upper-triangle blocks within each set, all across."""
    t0 = time.perf_counter()
    x64, y64 = x.astype(np.float64), y.astype(np.float64)
    for p in (x64, y64):
        for i in range(0, p.shape[0], block):
            g = p[i:i + block] @ p[i:].T
            del g
    for i in range(0, x64.shape[0], block):
        g = x64[i:i + block] @ y64.T
        del g
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the gen-metrics binary (release build)")
    ap.add_argument("--metrics", default=METRICS)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--block", type=int, default=2048, help="rows per GEMM block of the floor")
    ap.add_argument("--make", nargs=3, metavar=("N", "D", "DIR"), help="write A.npy, B.npy first")
    ap.add_argument("--kid-floor", action="store_true",
                    help="also time the float64 products exact KID needs (see above)")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = make(int(a.make[0]), int(a.make[1]), a.make[2]) if a.make else a.files
    if len(files) != 2:
        ap.error("two .npy files (or --make N D DIR)")
    fa, fb = files
    x, y = np.load(fa), np.load(fb)
    assert x.dtype == np.float32 and y.dtype == np.float32
    t_ours, t_floor, t_kid, rss, values = [], [], [], [], None
    floor(x[:512], y[:512], a.block)  # warm-up (BLAS threads)
    for r in range(a.rounds):
        w, m, values = ours(a.bin, fa, fb, a.metrics)
        t_ours.append(w)
        rss.append(m)
        t_floor.append(floor(x, y, a.block))
        row = {"ours": round(w, 2), "floor": round(t_floor[-1], 2), "rss": m}
        if a.kid_floor:
            t_kid.append(kid_floor(x, y, a.block))
            row["kid_floor"] = round(t_kid[-1], 2)
        print("round", r, row, flush=True)
    summary = {
        "numpy": np.__version__, "cpus": os.cpu_count(), "real": list(x.shape), "fake": list(y.shape),
        "metrics": a.metrics, "ours_s": t_ours, "floor_three_f32_gemms_s": t_floor,
        "peak_rss_bytes": rss, "values": values,
        "ratio_ours_over_floor": min(t_ours) / min(t_floor),
    }
    if t_kid:
        summary["kid_float64_products_s"] = t_kid
        summary["ratio_kid_float64_products_over_floor"] = min(t_kid) / min(t_floor)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
