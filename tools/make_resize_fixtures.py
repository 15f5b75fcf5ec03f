#!/usr/bin/env python3
"""Writes crates/features/tests/fixtures/resize_reference.json: for the shared
images (../shared/models/images) and two committed fixtures, Pillow-decoded and
preprocessed to 299x299 by the reference formulas of tools/check_resize.py
(clean: Pillow float BICUBIC + clip; legacy-pytorch: ATen bilinear port on
uint8/255; legacy-tensorflow: TF1 ResizeBilinear port), each stored as the
SHA-256 of the float32 little-endian [3, 299, 299] array, its sum, and 24 sampled
values; plus the normalised network inputs of the README's two modes
((x-128)/128 after clean, 2x-1 after legacy-pytorch). Needs numpy and pillow."""
import hashlib, json, os, sys
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from check_resize import reference  # noqa: E402

F32 = np.float32
REPO = os.path.dirname(HERE)
SHARED = os.environ.get("GEN_METRICS_SHARED", os.path.join(REPO, "..", "shared"))
FIX = os.path.join(REPO, "crates", "features", "tests", "fixtures")


def entry(arr):
    arr = np.ascontiguousarray(arr.astype("<f4"))
    rng = np.random.default_rng(0)
    idx = [tuple(int(v) for v in (rng.integers(0, arr.shape[0]), rng.integers(0, arr.shape[1]), rng.integers(0, arr.shape[2])))
           for _ in range(24)]
    return {"sha256": hashlib.sha256(arr.tobytes()).hexdigest(), "sum": float(arr.astype(np.float64).sum()),
            "samples": [[c, y, x, float(arr[c, y, x])] for (c, y, x) in idx]}


def main():
    images = [("shared", n) for n in ["astronaut.png", "rocket.jpg", "camera.png", "logo.png"]]
    images += [("fixture", "decode/rgba.png"), ("fixture", "jpeg/q50_420.jpg")]
    out = {}
    for where, name in images:
        path = os.path.join(SHARED, "models", "images", name) if where == "shared" else os.path.join(FIX, name)
        pil = np.asarray(Image.open(path).convert("RGB"))
        e = {"where": where}
        for mode in ("clean", "legacy-pytorch", "legacy-tensorflow"):
            e[mode] = entry(reference(pil, mode, 299, 299))
        clean = reference(pil, "clean", 299, 299).astype(F32)
        e["clean/centered128"] = entry((clean - F32(128)) / F32(128))
        torch = reference(pil, "legacy-pytorch", 299, 299).astype(F32)
        e["legacy-pytorch/symmetric"] = entry(F32(2) * torch - F32(1))
        out[name] = e
    with open(os.path.join(FIX, "resize_reference.json"), "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
    print("wrote", os.path.join(FIX, "resize_reference.json"))


if __name__ == "__main__":
    sys.exit(main())
