#!/usr/bin/env python3
"""Fixture for the OpenAI CLIP image encoder -> ONNX conversion (crates/convert/src/clip.rs).

Reference: openai/CLIP at commit d05afc436d78f1c48dc0dbf8e5980a9d471f35f6, `clip/model.py`,
copied unchanged into tools/third_party/clip (MIT, see its README). Run with torch 2.15.0 CPU:

    /work/venv-metrics/bin/python tools/make_clip_fixtures.py

A small random CLIP built by the official constructor `CLIP(...)` (the ViT branch), with its
visual transformer replaced by the official `VisionTransformer(...)` of width 32 and 2 heads
(`CLIP` itself takes `width // 64` heads, which would need width >= 64 and a larger fixture; a
traced archive does not store the head count, so the converter is told it, as for the official
models, whose heads are width / 64), every parameter drawn
at random with `torch.manual_seed(SEED)`, then `convert_weights(model)` (fp16 weights, as the
official files hold) and saved as the official files are: a TorchScript archive of the whole
model, `torch.jit.save(torch.jit.trace_module(model, {"forward": (image, text),
"encode_image": image, "encode_text": text}), path)` -> crates/features/tests/fixtures/clip/vit_tiny.pt.

Inputs: the PNG images of ../shared/models/images (astronaut, camera, logo), decoded by PIL,
`.convert("RGB")`, centre-cropped to 112x112 (no resampling, so the Rust test rebuilds the input
exactly), `ToTensor` then `Normalize(CLIP mean, std)`. Output: `clip.load`'s CPU path for a JIT
file, reduced to its effect: `model.float().encode_image(x)` (fp32 compute with the fp16-rounded
weights the archive holds; checked equal to `torch.jit.load(path).state_dict()`) -> `outputs.json`.
"""
import hashlib
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "third_party", "clip"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from clip.model import CLIP, VisionTransformer, convert_weights  # noqa: E402

SEED = 20241
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "crates", "features", "tests", "fixtures", "clip")
IMAGES = os.path.join(ROOT, "..", "shared", "models", "images")
NAMES = ["astronaut.png", "camera.png", "logo.png"]
MEAN = (0.48145466, 0.4578275, 0.40821073)
STD = (0.26862954, 0.26130258, 0.27577711)
CONFIG = dict(
    embed_dim=16,
    image_resolution=112,
    vision_layers=2,
    vision_width=64,  # replaced below by width 32, 2 heads
    vision_patch_size=16,
    context_length=4,
    vocab_size=8,
    transformer_width=8,
    transformer_heads=1,
    transformer_layers=1,
)
VISUAL = dict(input_resolution=112, patch_size=16, width=32, layers=2, heads=2, output_dim=16)


def inputs():
    xs = []
    for name in NAMES:
        img = Image.open(os.path.join(IMAGES, name)).convert("RGB")
        w, h = img.size
        left, top = (w - 112) // 2, (h - 112) // 2
        a = np.asarray(img.crop((left, top, left + 112, top + 112)), dtype=np.float32) / 255.0
        t = torch.from_numpy(a).permute(2, 0, 1)
        t = (t - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
        xs.append(t)
    return torch.stack(xs)


def main():
    torch.manual_seed(SEED)
    model = CLIP(**CONFIG)
    model.visual = VisionTransformer(**VISUAL)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        # LayerNorm gains around 1 so that the activations stay in range.
        for name, p in model.named_parameters():
            if ".ln_" in name and name.endswith("weight") or name.endswith("ln_post.weight"):
                p.add_(1.0)
    model.eval()
    convert_weights(model)
    image = torch.zeros(1, 3, 112, 112, dtype=torch.float16)
    text = torch.zeros(1, 4, dtype=torch.long)
    traced = torch.jit.trace_module(
        model, {"forward": (image, text), "encode_image": image, "encode_text": text},
        check_trace=False,
    )
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "vit_tiny.pt")
    torch.jit.save(traced, path)

    # The archive holds exactly the model's (fp16) weights.
    loaded = torch.jit.load(path, map_location="cpu")
    lsd = loaded.state_dict()
    for k, v in model.state_dict().items():
        assert lsd[k].dtype == v.dtype and torch.equal(lsd[k], v), k
    # `clip.load(name, device="cpu", jit=False)`: `model.float()`, fp32 compute with the
    # fp16-rounded weights (the JIT path on CPU patches its dtype constants to the same effect).
    model.float()
    x = inputs()
    with torch.no_grad():
        feats = model.encode_image(x)
    sd = model.visual.state_dict()
    out = {
        "reference": "openai/CLIP d05afc436d78f1c48dc0dbf8e5980a9d471f35f6 clip/model.py: "
        "model.float().encode_image(x) after convert_weights (the weights of vit_tiny.pt)",
        "torch": torch.__version__,
        "seed": SEED,
        "images": NAMES,
        "crop": "centre 112x112: left = (w - 112) // 2, top = (h - 112) // 2",
        "mean": MEAN,
        "std": STD,
        "file": "vit_tiny.pt",
        "sha256": hashlib.sha256(open(path, "rb").read()).hexdigest(),
        "visual": VISUAL,
        "visual_parameters": sum(v.numel() for v in sd.values()),
        "features": feats.tolist(),
    }
    with open(os.path.join(OUT, "outputs.json"), "w") as f:
        json.dump(out, f, indent=1)
    print(path, os.path.getsize(path), "bytes;", feats.shape, float(feats.abs().max()))


if __name__ == "__main__":
    main()
