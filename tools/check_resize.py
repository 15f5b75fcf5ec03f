#!/usr/bin/env python3
"""Side-by-side check of gen-metrics' decode + resize against the Python references.

For every image of ../shared/models/images (and a few synthetic sizes: upscaling,
odd sizes, identity), compares the Rust output of
`cargo run --release -p gen-metrics-features --example preprocess_dump` with:

* decode: Pillow `Image.open(p).convert('RGB')` (must be identical);
* clean: clean-fid's resize, per channel
  `Image.fromarray(ch.astype(float32), mode 'F').resize((W, H), BICUBIC)`, clip [0, 255];
* legacy-pytorch: a line-by-line numpy port of ATen's CPU `upsample_bilinear2d`
  (align_corners=False, no antialias, generic channels-first kernel) on uint8 / 255;
* legacy-tensorflow: a numpy port of TF1 `ResizeBilinear` (align_corners=False,
  legacy coordinates) on [0, 255].

The resize comparisons feed Rust the Pillow-decoded pixels, so they isolate the
resize. Differences are printed in pixel units of [0, 255].

Usage: python3 tools/check_resize.py [--bin PATH] [--shared DIR] [--size 299]
Needs numpy and pillow.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image

F32 = np.float32


def pil_clean(img_u8, h, w):
    chans = []
    for c in range(3):
        ch = Image.fromarray(img_u8[:, :, c].astype(F32))
        assert ch.mode == "F"
        r = np.asarray(ch.resize((w, h), resample=Image.BICUBIC), dtype=F32)
        chans.append(r.clip(0, 255))
    return np.stack(chans, 0)


def torch_linear_weights(n_in, n_out):
    if n_in == n_out:
        i = np.arange(n_out)
        return i, i, np.ones(n_out, F32), np.zeros(n_out, F32)
    scale = F32(n_in) / F32(n_out)
    dst = np.arange(n_out).astype(F32)
    s = scale * (dst + F32(0.5)) - F32(0.5)
    s = np.where(s < 0, F32(0), s).astype(F32)
    i0 = np.minimum(np.floor(s).astype(np.int64), n_in - 1)
    l1 = np.clip(s - i0.astype(F32), F32(0), F32(1)).astype(F32)
    i1 = np.where(i0 < n_in - 1, i0 + 1, i0)
    return i0, i1, (F32(1) - l1).astype(F32), l1


def torch_bilinear(plane, h, w):
    """ATen upsample_generic_Nd<2, HelperInterpLinear>: (a*lw0 + b*lw1)*lh0 + (c*lw0 + d*lw1)*lh1."""
    h0, h1, lh0, lh1 = torch_linear_weights(plane.shape[0], h)
    w0, w1, lw0, lw1 = torch_linear_weights(plane.shape[1], w)
    r0, r1 = plane[h0], plane[h1]
    t0 = (r0[:, w0] * lw0[None, :]).astype(F32) + (r0[:, w1] * lw1[None, :]).astype(F32)
    t1 = (r1[:, w0] * lw0[None, :]).astype(F32) + (r1[:, w1] * lw1[None, :]).astype(F32)
    return ((t0 * lh0[:, None]).astype(F32) + (t1 * lh1[:, None]).astype(F32)).astype(F32)


def tf_weights(n_in, n_out):
    scale = F32(n_in) / F32(n_out)
    s = (np.arange(n_out).astype(F32) * scale).astype(F32)
    sf = np.floor(s)
    lo = np.minimum(np.maximum(sf, 0).astype(np.int64), n_in - 1)
    hi = np.minimum(np.ceil(s).astype(np.int64), n_in - 1)
    return lo, hi, (s - sf).astype(F32)


def tf_bilinear(plane, h, w):
    y0, y1, ly = tf_weights(plane.shape[0], h)
    x0, x1, lx = tf_weights(plane.shape[1], w)
    tl, tr = plane[y0][:, x0], plane[y0][:, x1]
    bl, br = plane[y1][:, x0], plane[y1][:, x1]
    top = tl + ((tr - tl) * lx[None, :]).astype(F32)
    bottom = bl + ((br - bl) * lx[None, :]).astype(F32)
    return (top + ((bottom - top) * ly[:, None]).astype(F32)).astype(F32)


def reference(img_u8, mode, h, w):
    if mode == "clean":
        return pil_clean(img_u8, h, w)
    if mode == "legacy-pytorch":
        x = img_u8.astype(F32) / F32(255)
        return np.stack([torch_bilinear(x[:, :, c], h, w) for c in range(3)], 0)
    if mode == "legacy-tensorflow":
        x = img_u8.astype(F32)
        return np.stack([tf_bilinear(x[:, :, c], h, w) for c in range(3)], 0)
    raise ValueError(mode)


def run(binary, *args):
    subprocess.run([binary, *args], check=True)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.dirname(here)
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(repo, "target/release/examples/preprocess_dump"))
    ap.add_argument("--shared", default=os.environ.get("GEN_METRICS_SHARED", os.path.join(repo, "..", "shared")))
    ap.add_argument("--size", type=int, default=299)
    args = ap.parse_args()
    if not os.path.exists(args.bin):
        subprocess.run(["cargo", "build", "--release", "-p", "gen-metrics-features", "--example", "preprocess_dump"],
                       cwd=repo, check=True)
    img_dir = os.path.join(args.shared, "models", "images")
    names = json.load(open(os.path.join(img_dir, "index.json")))["files_in_row_order"]
    tmp = tempfile.mkdtemp(prefix="check_resize_")
    worst = {}
    ok = True
    cases = []
    for name in names:
        path = os.path.join(img_dir, name)
        pil = np.asarray(Image.open(path).convert("RGB"))
        rust_dec = os.path.join(tmp, name + ".rust.npy")
        run(args.bin, "decode", path, rust_dec)
        dec = np.load(rust_dec)
        ndiff = int((dec.astype(int) != pil.astype(int)).sum()) if dec.shape == pil.shape else -1
        maxd = int(np.abs(dec.astype(int) - pil.astype(int)).max()) if dec.shape == pil.shape else -1
        print(f"decode  {name:16s} {pil.shape[1]}x{pil.shape[0]} {Image.open(path).mode:5s} "
              f"samples differing from Pillow: {ndiff} (max |diff| {maxd})")
        ok &= ndiff == 0
        cases.append((name, pil, [(args.size, args.size)]))
    # Synthetic: upscaling, odd non-square sizes, identity.
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    cases.append(("noise37x53", small, [(args.size, args.size), (64, 17)]))
    portrait = rng.integers(0, 256, (640, 427, 3), dtype=np.uint8)  # Pillow 13 runs the vertical pass first
    cases.append(("noise640x427", portrait, [(args.size, args.size), (50, 60)]))
    same = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    cases.append((f"noise{args.size}", same, [(args.size, args.size), (100, 300)]))
    for name, pil, sizes in cases:
        src = os.path.join(tmp, name + ".pil.npy")
        np.save(src, np.ascontiguousarray(pil))
        for (h, w) in sizes:
            for mode in ("clean", "legacy-pytorch", "legacy-tensorflow"):
                out = os.path.join(tmp, f"{name}.{mode}.{h}x{w}.npy")
                run(args.bin, "preprocess", src, mode, str(h), str(w), out)
                got = np.load(out).astype(np.float64)
                want = reference(pil, mode, h, w).astype(np.float64)
                scale = 255.0 if mode == "legacy-pytorch" else 1.0
                d = float(np.abs(got - want).max()) * scale
                exact = int((got != want).sum())
                worst[mode] = max(worst.get(mode, 0.0), d)
                print(f"{mode:18s} {name:16s} {pil.shape[0]}x{pil.shape[1]} -> {h}x{w}: "
                      f"max |diff| {d:.3e} px, {exact} of {got.size} values not bit-identical")
    print("worst max |diff| (pixel units):", {k: f"{v:.3e}" for k, v in worst.items()})
    tol = 1e-4
    ok &= all(v <= tol for v in worst.values())
    print("OK" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
