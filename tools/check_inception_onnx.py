#!/usr/bin/env python3
"""Check an FID Inception-V3 ONNX model against the TorchScript reference features.

Usage: python3 tools/check_inception_onnx.py MODEL.onnx [SHARED_MODELS_DIR] [--threads N] [--bench]

Runs MODEL.onnx with ONNX Runtime (CPU) on synthetic/img_*.png of the shared
models folder (299x299 RGB; input = (pixels - 128) / 128, NCHW, no resize) and
compares with synthetic/features.npy (float32 [16, 2048], TorchScript on CPU,
file-name order). Prints the max abs difference and exits non-zero above 1e-4.
With --bench, also prints images/s over a few runs of the 16 images.
"""
import argparse
import pathlib
import sys
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

TOLERANCE = 1e-4


def main() -> int:
    here = pathlib.Path(__file__).resolve().parent
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("models_dir", nargs="?", default=str(here.parent.parent / "shared" / "models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bench", action="store_true")
    a = ap.parse_args()

    syn = pathlib.Path(a.models_dir) / "synthetic"
    files = sorted(syn.glob("img_*.png"))
    if not files:
        print(f"no images in {syn}", file=sys.stderr)
        return 2
    imgs = [np.asarray(Image.open(f).convert("RGB"), dtype=np.float32) for f in files]
    x = (np.stack(imgs).transpose(0, 3, 1, 2) - 128.0) / 128.0
    x = np.ascontiguousarray(x, dtype=np.float32)
    want = np.load(syn / "features.npy")

    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    inp, out = sess.get_inputs()[0], sess.get_outputs()[0]
    print(f"input {inp.name} {inp.shape} {inp.type}; output {out.name} {out.shape} {out.type}")
    got = sess.run([out.name], {inp.name: x})[0]
    assert got.shape == want.shape, (got.shape, want.shape)
    # Also one image at a time (batch 1) to be sure the batch dimension is free.
    one = np.concatenate([sess.run([out.name], {inp.name: x[i : i + 1]})[0] for i in range(len(x))])
    diff = float(np.abs(got - want).max())
    diff1 = float(np.abs(one - want).max())
    rel = float((np.abs(got - want) / (np.abs(want) + 1e-3)).max())
    print(f"images {len(files)}  max abs diff {diff:.3e} (batch {len(x)}), {diff1:.3e} (batch 1); "
          f"max rel {rel:.3e}; features min {got.min():.4f} max {got.max():.4f} mean {got.mean():.4f}")
    if a.bench:
        sess.run([out.name], {inp.name: x})
        runs = 5
        t = time.perf_counter()
        for _ in range(runs):
            sess.run([out.name], {inp.name: x})
        dt = time.perf_counter() - t
        print(f"ORT {ort.__version__} CPU, {a.threads} threads, batch {len(x)}: {runs * len(x) / dt:.1f} images/s")
    ok = diff <= TOLERANCE and diff1 <= TOLERANCE
    print("OK" if ok else f"FAIL: above {TOLERANCE}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
