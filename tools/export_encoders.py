#!/usr/bin/env python3
"""Export the encoder presets of gen-metrics to ONNX (run once, where PyTorch and the weights are).

gen-metrics provisions the FID Inception-V3 itself; the other presets need an
ONNX file that this script writes from the reference PyTorch models. Pass it
to gen-metrics with the preset name:

    python3 tools/export_encoders.py dinov2-vit-l14 -o dinov2-vit-l14.onnx
    gen-metrics features --encoder dinov2-vit-l14 --model dinov2-vit-l14.onnx DIR -o feats.npy

Needs `pip install torch onnx onnxscript` plus `open_clip_torch` (CLIP) or
`torchvision` (VGG-16); DINOv2 comes through torch.hub.

Every model takes the preprocessed input gen-metrics makes (float32
[N, 3, 224, 224], normalised as the preset says: see the table in
crates/features/src/encoder.rs) and gives one row per image:

| preset           | source (pip package: model)                                     | output                  |
|------------------|-----------------------------------------------------------------|-------------------------|
| clip-vit-b-32    | open_clip_torch: ViT-B-32, pretrained='openai'                  | encode_image, [N, 512]  |
| clip-vit-l-14    | open_clip_torch: ViT-L-14, pretrained='openai'                  | encode_image, [N, 768]  |
| dinov2-vit-s14   | torch.hub facebookresearch/dinov2: dinov2_vits14                | CLS token, [N, 384]     |
| dinov2-vit-b14   | torch.hub facebookresearch/dinov2: dinov2_vitb14                | CLS token, [N, 768]     |
| dinov2-vit-l14   | torch.hub facebookresearch/dinov2: dinov2_vitl14 (recommended)  | CLS token, [N, 1024]    |
| dinov2-vit-g14   | torch.hub facebookresearch/dinov2: dinov2_vitg14                | CLS token, [N, 1536]    |
| vgg16-fc2        | torchvision: vgg16(weights=IMAGENET1K_V1), classifier[:5]       | fc2 after ReLU, [N, 4096] |

DINOv2's hub model returns the final-norm CLS token from `forward` (what
dgm-eval uses); CLIP's `encode_image` is the projected image embedding
(not L2-normalised, as in the reference FD computations). The VGG cut is
torch-fidelity's `fc2_relu` (features, avgpool, flatten, fc1, ReLU, dropout,
fc2, ReLU; dropout is the identity in eval mode).

After export, the script runs the ONNX file with onnxruntime (if installed) on
random inputs and prints the largest difference from PyTorch, and the file's
SHA-256 (gen-metrics keys its feature cache on it).
"""

import argparse
import hashlib
import sys

DIMS = {
    "clip-vit-b-32": 512,
    "clip-vit-l-14": 768,
    "dinov2-vit-s14": 384,
    "dinov2-vit-b14": 768,
    "dinov2-vit-l14": 1024,
    "dinov2-vit-g14": 1536,
    "vgg16-fc2": 4096,
}


def build(name, random_weights=False):
    import torch

    if name.startswith("clip-"):
        import open_clip

        arch = {"clip-vit-b-32": "ViT-B-32", "clip-vit-l-14": "ViT-L-14"}[name]
        model, _, _ = open_clip.create_model_and_transforms(
            arch, pretrained=None if random_weights else "openai"
        )

        class Clip(torch.nn.Module):
            def __init__(self, m):
                super().__init__()
                self.m = m

            def forward(self, x):
                return self.m.encode_image(x)

        return Clip(model)
    if name.startswith("dinov2-"):
        arch = "dinov2_vit" + name.split("-vit-")[1]  # dinov2_vitl14
        return torch.hub.load("facebookresearch/dinov2", arch, pretrained=not random_weights)
    if name == "vgg16-fc2":
        import torchvision

        weights = None if random_weights else torchvision.models.VGG16_Weights.IMAGENET1K_V1
        vgg = torchvision.models.vgg16(weights=weights)

        class Fc2Relu(torch.nn.Module):
            def __init__(self, v):
                super().__init__()
                self.features, self.avgpool = v.features, v.avgpool
                self.head = torch.nn.Sequential(*list(v.classifier.children())[:5])

            def forward(self, x):
                x = self.avgpool(self.features(x))
                return self.head(torch.flatten(x, 1))

        return Fc2Relu(vgg)
    sys.exit(f"unknown preset {name}; one of {sorted(DIMS)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("encoder", choices=sorted(DIMS))
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument(
        "--random-weights",
        action="store_true",
        help="the architecture with random weights (tests the plumbing; its features mean nothing)",
    )
    args = ap.parse_args()

    import torch

    torch.manual_seed(0)
    model = build(args.encoder, args.random_weights).eval()
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        ref = model(x)
    if tuple(ref.shape) != (2, DIMS[args.encoder]):
        sys.exit(f"{args.encoder}: output shape {tuple(ref.shape)}, expected (2, {DIMS[args.encoder]})")
    common = dict(input_names=["input"], output_names=["features"], opset_version=args.opset)
    try:
        # The TorchScript-based exporter: stable graphs with a symbolic batch.
        torch.onnx.export(
            model,
            (x,),
            args.output,
            dynamic_axes={"input": {0: "N"}, "features": {0: "N"}},
            dynamo=False,
            **common,
        )
    except TypeError:  # PyTorch before 2.5 has no `dynamo` argument
        torch.onnx.export(
            model, (x,), args.output, dynamic_axes={"input": {0: "N"}, "features": {0: "N"}}, **common
        )
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(args.output, providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x.numpy()})[0]
        print(f"max |onnxruntime - torch| = {abs(got - ref.numpy()).max():.2e}")
    except ImportError:
        print("onnxruntime not installed: exported file not checked")
    sha = hashlib.sha256(open(args.output, "rb").read()).hexdigest()
    print(f"wrote {args.output} (sha256 {sha})")
    print(f"use: gen-metrics features --encoder {args.encoder} --model {args.output} DIR -o OUT.npy")


if __name__ == "__main__":
    main()
