#!/usr/bin/env python3
"""Writes crates/features/tests/fixtures/tf_resize_reference.json: TensorFlow's own
bilinear resize, the reference of the `legacy-tensorflow` resize mode.

Reference: TTUR (bioinf-jku/TTUR, fid.py) feeds images in [0, 255] to the 2015
Inception graph, whose `ResizeBilinear` node resizes to 299x299 with
align_corners=False and the legacy coordinates (no half-pixel centres), then
`Sub 128`, `Mul 1/128`. The exact call run here:

    tf.compat.v1.image.resize_bilinear(images, [h, w], align_corners=False)

on `images` = float32 copies of uint8 RGB images, shape [1, H, W, 3], then
`(out - 128.0) * 0.0078125` in float32 for the network input.

Environment: python3 -m venv /work/venv-tf &&
/work/venv-tf/bin/pip install tensorflow-cpu==2.21.0 numpy
Run: /work/venv-tf/bin/python tools/make_tf_resize_fixture.py [--check]
(--check recomputes and compares with the committed fixture; exit 1 on mismatch).

Test images (uint8, generated from integers only so Rust rebuilds them exactly):
    img[y, x, c] = (x * (3 + 2c) + y * (5 + c) + ((x * y) % (7 + c)) * 11
                    + ((x ^ y) & 15) * 4 + 37 * c) % 256
and, for `noise` images, a 32-bit LCG per pixel in row-major order
(state = state * 1664525 + 1013904223 mod 2^32, value = state >> 24),
seeded with 12345, so that every pixel is unrelated to its neighbours.

Stored per case: the input's SHA-256 (uint8, HWC), and either all output values
(targets of at most 512 pixels: HWC float32, as JSON numbers that round-trip exactly) or, for
larger ones (299x299, 48x64), the SHA-256 of the float32 little-endian HWC output, its float64 sum,
and 64 sampled [y, x, c, value] entries, the same for the Centered128 network input.
"""
import hashlib
import json
import os
import sys

import numpy as np
import tensorflow as tf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(REPO, "crates", "features", "tests", "fixtures", "tf_resize_reference.json")

# (name, height, width, kind, [targets (h, w)])
CASES = [
    ("pattern_7x5", 7, 5, "pattern", [(13, 11), (299, 299)]),
    ("pattern_32x32", 32, 32, "pattern", [(13, 11), (299, 299)]),
    ("pattern_64x48", 64, 48, "pattern", [(13, 11), (299, 299), (48, 64)]),
    ("noise_5x9", 5, 9, "noise", [(13, 11), (3, 4)]),
    ("noise_400x333", 400, 333, "noise", [(299, 299)]),
]


def pattern(h, w):
    y, x, c = np.meshgrid(np.arange(h), np.arange(w), np.arange(3), indexing="ij")
    v = (x * (3 + 2 * c) + y * (5 + c) + ((x * y) % (7 + c)) * 11 + ((x ^ y) & 15) * 4 + 37 * c) % 256
    return v.astype(np.uint8)


def noise(h, w):
    state = 12345
    out = np.empty(h * w * 3, dtype=np.uint8)
    for i in range(out.size):
        state = (state * 1664525 + 1013904223) % (1 << 32)
        out[i] = state >> 24
    return out.reshape(h, w, 3)


def tf_resize(img, h, w):
    images = tf.constant(img.astype(np.float32)[None])
    out = tf.compat.v1.image.resize_bilinear(images, [h, w], align_corners=False)
    assert out.dtype == tf.float32
    raw = out.numpy()[0]
    centered = ((out - tf.constant(128.0, tf.float32)) * tf.constant(0.0078125, tf.float32)).numpy()[0]
    return raw, centered


def sha(a):
    return hashlib.sha256(np.ascontiguousarray(a).astype("<f4").tobytes()).hexdigest()


def summary(a):
    rng = np.random.default_rng(0)
    h, w, _ = a.shape
    idx = [(0, 0, 0), (h - 1, w - 1, 2), (h // 2, w // 2, 1), (0, w - 1, 1), (h - 1, 0, 0)]
    idx += [(int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(0, 3))) for _ in range(59)]
    return {
        "sha256": sha(a),
        "sum": float(a.astype(np.float64).sum()),
        "samples": [[y, x, c, float(a[y, x, c])] for (y, x, c) in idx],
    }


def build():
    cases = []
    for name, h, w, kind, targets in CASES:
        img = pattern(h, w) if kind == "pattern" else noise(h, w)
        entry = {
            "name": name,
            "kind": kind,
            "height": h,
            "width": w,
            "input_sha256": hashlib.sha256(img.tobytes()).hexdigest(),
            "outputs": [],
        }
        for th, tw in targets:
            raw, centered = tf_resize(img, th, tw)
            o = {"height": th, "width": tw}
            if th * tw <= 512:
                o["values"] = [float(v) for v in raw.reshape(-1)]
            else:
                o["summary"] = summary(raw)
                o["centered128_summary"] = summary(centered)
            entry["outputs"].append(o)
        cases.append(entry)
    return {
        "reference": "tf.compat.v1.image.resize_bilinear(images, [h, w], align_corners=False) "
        "on float32(uint8) images [1, H, W, 3]; centered128 = (out - 128) * 0.0078125 (float32), "
        "as TTUR's Inception graph (ResizeBilinear, Sub, Mul)",
        "generator": "tools/make_tf_resize_fixture.py",
        "tensorflow": tf.__version__,
        "numpy": np.__version__,
        "layout": "HWC, float32",
        "cases": cases,
    }


def main():
    data = build()
    text = json.dumps(data, separators=(",", ":"))
    if "--check" in sys.argv:
        with open(OUT) as f:
            old = json.load(f)
        new = json.loads(text)
        for k in ("tensorflow", "numpy"):
            old.pop(k, None)
            new.pop(k, None)
        if old != new:
            print("MISMATCH: recomputed TensorFlow resize differs from", OUT)
            return 1
        print("ok:", OUT, "matches TensorFlow", tf.__version__)
        return 0
    with open(OUT, "w") as f:
        f.write(text + "\n")
    print("wrote", OUT, len(text), "bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
