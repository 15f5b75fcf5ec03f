#!/usr/bin/env python3
"""Writes small JPEG fixtures to crates/features/tests/fixtures/jpeg/ and
expected.json with, for each, the size and the SHA-256 and byte sum of Pillow's
`Image.open(f).convert('RGB')` (libjpeg-turbo's decode). Covers 4:4:4, 4:2:2,
4:2:0, progressive, optimized tables, grayscale, CMYK (Adobe), RGB (Adobe
transform 0), restart markers, tiny sizes (box upsampling) and, when `cjpeg`
(libjpeg-turbo-progs) is installed, 4:4:0, 4:1:1 and arithmetic coding (the last
must be refused). Needs numpy and pillow."""
import hashlib, io, json, os, shutil, subprocess, sys, tempfile
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "crates", "features", "tests", "fixtures", "jpeg")
SHARED = os.environ.get("GEN_METRICS_SHARED", os.path.join(HERE, "..", "..", "shared"))


def main():
    os.makedirs(OUT, exist_ok=True)
    src = Image.open(os.path.join(SHARED, "models", "images", "astronaut.png")).convert("RGB")
    base = src.crop((180, 60, 180 + 37, 60 + 29))  # odd size, real texture
    files = {}

    def save(name, img, **kw):
        b = io.BytesIO()
        img.save(b, format="JPEG", **kw)
        files[name] = b.getvalue()

    save("q90_444.jpg", base, quality=90, subsampling=0)
    save("q75_422.jpg", base, quality=75, subsampling=1)
    save("q50_420.jpg", base, quality=50, subsampling=2)
    save("q97_420_optimize.jpg", base, quality=97, subsampling=2, optimize=True)
    save("progressive_420.jpg", base, quality=80, subsampling=2, progressive=True)
    save("progressive_444.jpg", base, quality=92, subsampling=0, progressive=True, optimize=True)
    save("gray.jpg", base.convert("L"), quality=85)
    save("gray_progressive.jpg", base.convert("L"), quality=70, progressive=True)
    save("cmyk.jpg", base.convert("CMYK"), quality=90)
    save("rgb_adobe.jpg", base, quality=90, keep_rgb=True)
    save("restart_blocks_420.jpg", base, quality=80, subsampling=2, restart_marker_blocks=1)
    save("restart_rows_422.jpg", base, quality=80, subsampling=1, restart_marker_rows=1, progressive=True)
    save("tiny_1x1.jpg", base.crop((0, 0, 1, 1)), quality=90, subsampling=2)
    save("tiny_3x2_420.jpg", base.crop((0, 0, 3, 2)), quality=90, subsampling=2)
    save("small_5x17_422.jpg", base.crop((3, 4, 8, 21)), quality=60, subsampling=1)
    save("q100_17x9_420.jpg", base.crop((5, 5, 22, 14)), quality=100, subsampling=2)
    exif = Image.Exif()
    exif[0x0112] = 8  # orientation "rotate 270": Pillow's open does not apply it
    save("exif_orientation8.jpg", base, quality=85, exif=exif)
    if shutil.which("cjpeg"):
        with tempfile.TemporaryDirectory() as d:
            ppm = os.path.join(d, "in.ppm")
            base.save(ppm)
            for name, args in [("cjpeg_440.jpg", ["-sample", "1x2"]), ("cjpeg_411.jpg", ["-sample", "4x1"]),
                               ("cjpeg_420_restart.jpg", ["-sample", "2x2", "-restart", "2B", "-progressive"]),
                               ("cjpeg_arith.jpg", ["-arithmetic"])]:
                files[name] = subprocess.run(["cjpeg", "-quality", "85", *args, ppm], check=True,
                                             capture_output=True).stdout
    expected = {}
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        try:
            im = Image.open(io.BytesIO(data))
            rgb = np.ascontiguousarray(np.asarray(im.convert("RGB")))
            expected[name] = {"mode": im.mode, "width": rgb.shape[1], "height": rgb.shape[0],
                              "sha256": hashlib.sha256(rgb.tobytes()).hexdigest(), "sum": int(rgb.sum())}
        except Exception as e:  # e.g. arithmetic coding when Pillow's libjpeg lacks it
            expected[name] = {"error": str(e)}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
    print(f"wrote {len(files)} JPEG fixtures to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
