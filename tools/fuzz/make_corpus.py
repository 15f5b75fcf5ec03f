#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets (fuzz/corpus/TARGET/*): tiny valid files of
every format a target reads, so the fuzzer starts from inputs that pass the header checks.

Needs numpy and Pillow; the `torchscript` and `checkpoint` seeds need torch (any 2.x:
`torch.jit.script(...).save` and `torch.save` of tiny modules). Without torch those two
targets are seeded by the archive-shaped inputs only. The ONNX seed is hand-encoded
protobuf (a Relu node and one initializer), so no `onnx` package is needed.

Usage: python3 tools/fuzz/make_corpus.py [OUT_DIR]   (default fuzz/corpus)
The committed corpus is this output after `afl-cmin` minimisation plus what the fuzzers
found (tools/fuzz/run.sh); re-running this script only adds the seeds back.
"""
import io
import os
import struct
import sys
import zipfile

import numpy as np
from PIL import Image

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "..", "fuzz", "corpus")


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def npz(compressed=False, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()


def image(fmt, mode="RGB", size=(5, 3), **kw):
    rng = np.random.default_rng(0)
    px = rng.integers(0, 256, size=(size[1], size[0], len(mode) if mode != "P" else 1), dtype=np.uint8)
    if mode in ("L", "P"):
        im = Image.fromarray(px[:, :, 0], "L")
        if mode == "P":
            im = im.convert("P")
    else:
        im = Image.fromarray(px, mode)
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def zip_bytes(members, method=zipfile.ZIP_DEFLATED):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", method) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


# --- jpeg: the own decoder (baseline, progressive, restart intervals, subsampling, gray, CMYK)
put("jpeg", "baseline_420.jpg", image("JPEG", quality=75))
put("jpeg", "baseline_444.jpg", image("JPEG", quality=90, subsampling=0))
put("jpeg", "progressive.jpg", image("JPEG", size=(9, 7), progressive=True, quality=80))
put("jpeg", "gray.jpg", image("JPEG", mode="L", size=(4, 4)))
put("jpeg", "cmyk.jpg", image("JPEG", mode="CMYK", size=(3, 2)))
put("jpeg", "restart.jpg", image("JPEG", size=(17, 9), restart_marker_blocks=1))
put("jpeg", "optimize_422.jpg", image("JPEG", size=(6, 5), optimize=True, subsampling=1))

# --- image: PNG (8/16-bit, palette, alpha), BMP, WebP, TIFF through the decode entry
put("image", "rgb.png", image("PNG"))
put("image", "rgba.png", image("PNG", mode="RGBA", size=(2, 2)))
put("image", "palette.png", image("PNG", mode="P", size=(3, 3)))
put("image", "gray.png", image("PNG", mode="L", size=(3, 2)))
put("image", "rgb.bmp", image("BMP", size=(3, 2)))
put("image", "lossless.webp", image("WEBP", size=(3, 2), lossless=True))
put("image", "lossy.webp", image("WEBP", size=(4, 4), quality=50))
put("image", "rgb.tiff", image("TIFF", size=(2, 2)))

# --- npy: features (float32/float64/float16), labels (int64), log-likelihoods, uint8 images NHWC/NHW
put("npy", "f4.npy", npy(np.arange(6, dtype="<f4").reshape(2, 3)))
put("npy", "f8.npy", npy(np.linspace(-1, 1, 6).reshape(3, 2)))
put("npy", "f2.npy", npy(np.array([[1, -2, 0.5], [65504, 2.0**-24, 0]], dtype="<f2")))
put("npy", "f2_be_fortran.npy", npy(np.asfortranarray(np.linspace(-3, 3, 6, dtype=">f2").reshape(2, 3))))
put("npy", "labels.npy", npy(np.array([0, 2, 1], dtype="<i8")))
put("npy", "loglik.npy", npy(np.array([-1.5, -2.0], dtype="<f8")))
put("npy", "u8_nhwc.npy", npy(np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)))
put("npy", "u8_nhw.npy", npy(np.arange(2 * 3 * 2, dtype=np.uint8).reshape(2, 3, 2)))

# --- npz: uint8 image arrays (stored and deflated)
put("npz", "images.npz", npz(arr_0=np.arange(2 * 2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 2, 3)))
put("npz", "images_deflate.npz", npz(True, images=np.zeros((1, 3, 3, 3), dtype=np.uint8)))

# --- zip: image sources (PNG and JPEG members, a folder, a stored member)
put("zip", "images.zip", zip_bytes([("a.png", image("PNG", size=(2, 2))), ("d/b.jpg", image("JPEG", size=(3, 3)))]))
put("zip", "stored.zip", zip_bytes([("c.bmp", image("BMP", size=(2, 1)))], zipfile.ZIP_STORED))

# --- stats: pytorch-fid / clean-fid statistics, ADM reference batch, accumulator state, npz features
mu = np.array([0.5, -0.25])
sigma = np.array([[1.0, 0.2], [0.2, 0.5]])
put("stats", "stats.npz", npz(mu=mu, sigma=sigma))
put("stats", "stats_f4.npz", npz(True, mu=mu.astype("<f4"), sigma=sigma.astype("<f4")))
put("stats", "adm_batch.npz", npz(arr_0=np.zeros((2, 1, 1, 3), dtype=np.uint8), mu=mu, sigma=sigma))
put("stats", "accumulator.npz", npz(n=np.array(3, dtype="<i8"), mean=mu, comoment=2 * sigma))
# dgm-eval's save_outputs: np.savez(path, model=..., reps=..., hparams=...)
put("stats", "reps.npz", npz(model="dinov2", reps=np.arange(6.0).reshape(3, 2), hparams={"batch_size": 2}))

# --- onnx: a ModelProto with one Relu node and one float initializer, hand-encoded


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(n, v):
    return varint(n << 3) + varint(v)


def field_bytes(n, data):
    if isinstance(data, str):
        data = data.encode()
    return varint((n << 3) | 2) + varint(len(data)) + data


def value_info(name, dims):
    shape = b"".join(field_bytes(1, field_varint(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    tensor_type = field_varint(1, 1) + field_bytes(2, shape)  # elem_type FLOAT, shape
    return field_bytes(1, name) + field_bytes(2, field_bytes(1, tensor_type))  # name, type.tensor_type


node = field_bytes(1, "x") + field_bytes(2, "y") + field_bytes(3, "relu0") + field_bytes(4, "Relu")
init = field_varint(1, 2) + field_varint(2, 1) + field_bytes(8, "w") + field_bytes(9, struct.pack("<2f", 1.0, -1.0))
graph = (field_bytes(1, node) + field_bytes(2, "g") + field_bytes(5, init)
         + field_bytes(11, value_info("x", [1, 2])) + field_bytes(12, value_info("y", [1, 2])))
model = (field_varint(1, 8) + field_bytes(2, "gen-metrics") + field_bytes(7, graph)
         + field_bytes(8, field_bytes(1, "") + field_varint(2, 17)))
put("onnx", "relu.onnx", model)

# --- torchscript / checkpoint: tiny archives written by torch itself
try:
    import torch

    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 2, 1)
            self.fc = torch.nn.Linear(2, 1)

        def forward(self, x):
            return self.fc(torch.relu(self.conv(x)).mean([2, 3]))

    m = Tiny().eval()
    b = io.BytesIO()
    torch.jit.save(torch.jit.script(m), b)
    put("torchscript", "tiny_scripted.pt", b.getvalue())
    b = io.BytesIO()
    torch.jit.save(torch.jit.trace(m, torch.zeros(1, 1, 2, 2)), b)
    put("torchscript", "tiny_traced.pt", b.getvalue())
    b = io.BytesIO()
    torch.save(m.state_dict(), b)
    put("checkpoint", "state_dict.pth", b.getvalue())
    b = io.BytesIO()
    torch.save({"model": m.state_dict(), "epoch": 3}, b)
    put("checkpoint", "nested.pth", b.getvalue())
    b = io.BytesIO()
    torch.save(m.half().state_dict(), b)
    put("checkpoint", "half.pth", b.getvalue())
except ImportError:
    print("torch not installed: torchscript/checkpoint seeds skipped", file=sys.stderr)

# The pickle reader alone (protocol 2, a dict of ints, a tuple and a string).
import pickle  # noqa: E402

put("torchscript", "plain.pkl", pickle.dumps({"a": (1, 2), "b": "x", "c": [3.5]}, protocol=2))
