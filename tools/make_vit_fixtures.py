#!/usr/bin/env python3
"""Fixtures for the DINOv2 checkpoint -> ONNX conversion (crates/convert/src/vit.rs).

Reference: facebookresearch/dinov2 at commit b8931f7bf91576930313be2c6d6af376033b35f0,
`dinov2/models/vision_transformer.py` and `dinov2/layers/*`, copied unchanged into
tools/third_party/dinov2 (Apache-2.0, see its README). Run with torch 2.15.0 CPU:

    XFORMERS_DISABLED=1 /work/venv-metrics/bin/python tools/make_vit_fixtures.py

Two small random DINOv2 models, built by the official constructor
`DinoVisionTransformer(...)` exactly as `dinov2/hub/backbones.py` builds the hub models
(`init_values=1.0`, `block_chunks=0`, `interpolate_offset=0.1`, `interpolate_antialias=False`)
but small, with every parameter (layer scales, norms and biases included) drawn at random with
`torch.manual_seed(SEED)`, saved with `torch.save(model.state_dict(), path)` (the official
checkpoint format) into crates/features/tests/fixtures/dinov2/:

- `mlp.pth`: embed_dim 24, depth 2, 2 heads, patch 14, img_size 168 (a 12x12 position grid,
  interpolated to the 16x16 grid of a 224 input), MLP FFN (ViT-S/B/L);
- `swiglu_reg.pth`: embed_dim 16, depth 1, 1 head, patch 14, img_size 168, `ffn_layer=
  "swiglufused"` (ViT-g's FFN, hidden (int(64*2/3)+7)//8*8 = 48), 2 register tokens.

Inputs: the PNG images of ../shared/models/images (astronaut, camera, logo), decoded by PIL,
`.convert("RGB")`, centre-cropped to 224x224 (no resampling, so the Rust test rebuilds the
input exactly), `ToTensor` then `Normalize(ImageNet mean, std)`. Output: `model(x)` in eval
mode, i.e. `x_norm_clstoken` (what dgm-eval takes as the DINOv2 feature) -> `outputs.json`.
"""
import hashlib
import json
import math
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "third_party", "dinov2"))
os.environ.setdefault("XFORMERS_DISABLED", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from dinov2.models.vision_transformer import DinoVisionTransformer  # noqa: E402

REPO = os.path.dirname(HERE)
OUT = os.path.join(REPO, "crates", "features", "tests", "fixtures", "dinov2")
IMAGES = os.path.join(REPO, "..", "shared", "models", "images")
NAMES = ["astronaut.png", "camera.png", "logo.png"]
MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]
SEED = 20240
COMMIT = "b8931f7bf91576930313be2c6d6af376033b35f0"

MODELS = {
    "mlp": dict(embed_dim=24, depth=2, num_heads=2, ffn_layer="mlp", num_register_tokens=0),
    "swiglu_reg": dict(embed_dim=16, depth=1, num_heads=1, ffn_layer="swiglufused", num_register_tokens=2),
}


def inputs():
    xs = []
    for name in NAMES:
        img = Image.open(os.path.join(IMAGES, name)).convert("RGB")
        w, h = img.size
        left, top = (w - 224) // 2, (h - 224) // 2
        a = np.asarray(img.crop((left, top, left + 224, top + 224)), dtype=np.uint8)
        t = torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(255)  # ToTensor
        t = (t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)  # Normalize
        xs.append(t)
    return torch.stack(xs)


def main():
    torch.set_grad_enabled(False)
    x = inputs()
    result = {
        "reference": f"facebookresearch/dinov2 {COMMIT}, DinoVisionTransformer(...).eval()(x)",
        "torch": torch.__version__,
        "seed": SEED,
        "images": NAMES,
        "crop": "centre 224x224: left = (w - 224) // 2, top = (h - 224) // 2",
        "mean": MEAN,
        "std": STD,
        "models": {},
    }
    for i, (name, kw) in enumerate(MODELS.items()):
        torch.manual_seed(SEED + i)
        model = DinoVisionTransformer(
            img_size=168,
            patch_size=14,
            mlp_ratio=4,
            init_values=1.0,
            block_chunks=0,
            interpolate_offset=0.1,
            interpolate_antialias=False,
            **kw,
        )
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * (0.5 if p.ndim == 1 else 1.0 / math.sqrt(p.shape[-1])))
        model.eval()
        y = model(x)
        path = os.path.join(OUT, f"{name}.pth")
        torch.save(model.state_dict(), path)
        digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
        result["models"][name] = {
            "file": f"{name}.pth",
            "sha256": digest,
            "config": dict(kw, patch_size=14, img_size=168, init_values=1.0, interpolate_offset=0.1),
            "parameters": sum(t.numel() for t in model.state_dict().values()),
            "features": y.tolist(),
        }
        print(name, tuple(y.shape), os.path.getsize(path), "bytes")
    with open(os.path.join(OUT, "outputs.json"), "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
