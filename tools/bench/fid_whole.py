#!/usr/bin/env python3
"""Whole-process FID on two feature files, side by side in one run (issue #10, item 4(b)).

Routes, each from the two .npy files on disk to the number:
  * ours:        `gen-metrics fid A.npy B.npy` as a child process (wall time of the whole
                 process: start, reading, statistics, Fréchet distance, exit);
  * pytorch-fid: np.load, mu = np.mean(axis=0), sigma = np.cov(rowvar=False) (as pytorch-fid's
                 `calculate_activation_statistics`), then pytorch-fid 0.3.0
                 `pytorch_fid.fid_score.calculate_frechet_distance` (scipy.linalg.sqrtm);
  * numpy Cholesky: the same np.load / mean / np.cov, then L = cholesky(s1),
                 tr sqrt = sum sqrt(max(eigvalsh(L.T @ s2 @ L), 0)).
The Python routes are timed inside this interpreter (no interpreter start-up, modules already
imported), which favours them. Runs are interleaved (ours, Cholesky, pytorch-fid, ours,
Cholesky, ...) and the minimum of each route is compared (medians are printed too); the ratios
are printed last as one JSON line. `--baseline OTHER_BINARY` times a second build of ours in the
same rounds, so a change is measured against the references and its predecessor in one run: on
a VM whose speed drifts between runs, only that compares. The two builds swap places every round
(ours, baseline, Cholesky; then baseline, ours, Cholesky; ...): on the development VM a process
that allocates a few hundred MB runs slow and fast by turns (system time 0.2-0.6 s, then
0.07-0.12 s, the same binary back to back; docs/benchmarks.md), so a fixed order would give one
build every slow turn.

    python3 tools/bench/fid_whole.py --bin target/release/gen-metrics A.npy B.npy
    python3 tools/bench/fid_whole.py --bin new/gen-metrics --baseline old/gen-metrics A.npy B.npy
    python3 tools/bench/fid_whole.py --bin target/release/gen-metrics --make 10000 2048 DIR
"""
import argparse
import json
import os
import statistics
import subprocess
import time

import numpy as np
import scipy

try:
    from pytorch_fid.fid_score import calculate_frechet_distance
except ImportError:
    # pytorch_fid.fid_score imports torch and torchvision at the top, for its image pipeline;
    # `calculate_frechet_distance` itself uses only numpy and scipy.linalg. Without torch
    # (`pip install --no-deps pytorch-fid==0.3.0`), take that one function from the installed
    # package's own file, unchanged, and run it with numpy and scipy.linalg.
    import ast
    import importlib.util

    def _from_package_file():
        spec = importlib.util.find_spec("pytorch_fid")
        if spec is None or not spec.submodule_search_locations:
            raise
        path = os.path.join(list(spec.submodule_search_locations)[0], "fid_score.py")
        tree = ast.parse(open(path).read(), path)
        fn = [n for n in tree.body
              if isinstance(n, ast.FunctionDef) and n.name == "calculate_frechet_distance"]
        ns = {"np": np, "linalg": scipy.linalg}
        exec(compile(ast.Module(body=fn, type_ignores=[]), path, "exec"), ns)
        return ns["calculate_frechet_distance"]

    import scipy.linalg
    calculate_frechet_distance = _from_package_file()

from synthetic_features import make


def stats(path):
    x = np.load(path)
    return np.mean(x, axis=0), np.cov(x, rowvar=False)


def route_pytorch_fid(a, b):
    m1, s1 = stats(a)
    m2, s2 = stats(b)
    return float(calculate_frechet_distance(m1, s1, m2, s2))


def route_cholesky(a, b):
    m1, s1 = stats(a)
    m2, s2 = stats(b)
    diff = m1 - m2
    l = np.linalg.cholesky(s1)
    w = np.linalg.eigvalsh(l.T @ s2 @ l)
    tr = np.sqrt(np.clip(w, 0.0, None)).sum()
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * tr)


def route_ours(binary, a, b):
    out = subprocess.run([binary, "fid", "--json", a, b], check=True, capture_output=True, text=True)
    return float(json.loads(out.stdout)["fid"])


def timed(f, *args):
    t0 = time.perf_counter()
    v = f(*args)
    return time.perf_counter() - t0, v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, help="the gen-metrics binary (release build)")
    ap.add_argument("--baseline", help="another gen-metrics build, timed in the same rounds")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of ours + Cholesky")
    ap.add_argument("--sqrtm-rounds", type=int, default=1)
    ap.add_argument("--make", nargs=3, metavar=("N", "D", "DIR"), help="write A.npy, B.npy first")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    files = make(int(a.make[0]), int(a.make[1]), a.make[2]) if a.make else a.files
    if len(files) != 2:
        ap.error("two .npy files (or --make N D DIR)")
    fa, fb = files
    t = {"ours": [], "cholesky": [], "pytorch_fid": []}
    if a.baseline:
        t["baseline"] = []
    v = {}
    route_ours(a.bin, fa, fb)  # warm-up: page cache, binary
    for r in range(max(a.rounds, a.sqrtm_rounds)):
        if r < a.rounds:
            builds = [("ours", a.bin)] + ([("baseline", a.baseline)] if a.baseline else [])
            for name, binary in builds if r % 2 == 0 else builds[::-1]:
                s, v[name] = timed(route_ours, binary, fa, fb)
                t[name].append(s)
            s, v["cholesky"] = timed(route_cholesky, fa, fb)
            t["cholesky"].append(s)
        if r < a.sqrtm_rounds:
            s, v["pytorch_fid"] = timed(route_pytorch_fid, fa, fb)
            t["pytorch_fid"].append(s)
        print("round", r, {k: [round(x, 3) for x in ts] for k, ts in t.items()}, flush=True)
    best = {k: min(ts) for k, ts in t.items()}
    median = {k: statistics.median(ts) for k, ts in t.items()}
    result = {
        "numpy": np.__version__, "scipy": scipy.__version__, "cpus": os.cpu_count(),
        "shape": list(np.load(fa, mmap_mode="r").shape),
        "seconds_min": best, "seconds_median": median, "seconds_all": t, "fid": v,
        "rel_diff_vs_pytorch_fid": abs(v["ours"] - v["pytorch_fid"]) / abs(v["pytorch_fid"]),
        "rel_diff_vs_cholesky": abs(v["ours"] - v["cholesky"]) / abs(v["cholesky"]),
        "ratio_vs_pytorch_fid": best["pytorch_fid"] / best["ours"],
        "ratio_vs_cholesky": best["cholesky"] / best["ours"],
        "ratio_vs_cholesky_medians": median["cholesky"] / median["ours"],
    }
    if a.baseline:
        result["baseline_ratio_vs_cholesky"] = best["cholesky"] / best["baseline"]
        result["baseline_ratio_vs_pytorch_fid"] = best["pytorch_fid"] / best["baseline"]
        result["speedup_vs_baseline"] = best["baseline"] / best["ours"]
        result["speedup_vs_baseline_medians"] = median["baseline"] / median["ours"]
    print(json.dumps(result))


if __name__ == "__main__":
    main()
