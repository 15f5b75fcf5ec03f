#!/usr/bin/env python3
"""Reference values of the decoding tests: Pillow's `Image.open(f).convert('RGB')`.

* crates/features/tests/decode.rs (`shared_png_images_match_pillow_checksums`) and
  crates/features/tests/jpeg.rs (`shared_jpeg_matches_pillow`): for the shared
  images (../shared/models/images), the width, height, the sum of the RGB bytes and
  the position-weighted sum Σ_i (i mod 65521)·byte_i over the row-major RGB bytes.
* The committed fixtures' expected.json (crates/features/tests/fixtures/decode and
  .../jpeg): each committed file decoded again and compared with its entry
  (decode: every RGB value; jpeg: SHA-256 and byte sum). The fixture files
  themselves are written by tools/make_decode_fixtures.py and
  tools/make_jpeg_fixtures.py; this script only re-decodes what is committed.

Canonical call (Pillow 13.0.0, its bundled libjpeg-turbo / zlib, numpy 2.4.6):
    np.asarray(PIL.Image.open(path).convert('RGB'))

Run: /work/venv-ref/bin/python tools/references/decode.py [--check]
(GEN_METRICS_SHARED overrides the shared folder, default ../shared beside the repository)
"""
import hashlib
import json
import os
import sys
import warnings

import numpy as np
import PIL
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from refcheck import REPO, Refs  # noqa: E402

SHARED = os.environ.get("GEN_METRICS_SHARED", os.path.join(REPO, "..", "shared"))
FIX = os.path.join(REPO, "crates", "features", "tests", "fixtures")

# (test, image, literals of (width, height, sum, weighted sum) as the test writes them)
SHARED_CASES = [
    ("crates/features/tests/decode.rs", "astronaut.png", ("512u32", "512u32", "90_124_324u64", "2_881_509_980_090u64")),
    ("crates/features/tests/decode.rs", "camera.png", ("512", "512", "101_497_485", "3_303_224_157_660")),
    ("crates/features/tests/decode.rs", "logo.png", ("500", "500", "136_059_231", "4_304_361_668_999")),
    ("crates/features/tests/jpeg.rs", "rocket.jpg", ("640", "427", "53_516_744", "1_727_030_028_985")),
]


def rgb(path):
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def checksums(a):
    flat = a.reshape(-1).astype(np.uint64)
    weights = np.arange(flat.size, dtype=np.uint64) % np.uint64(65521)
    return int(flat.sum()), int((weights * flat).sum())


def fixture_mismatches():
    """Re-decodes the committed fixtures; returns (checked, list of mismatches)."""
    bad, checked = [], 0
    with open(os.path.join(FIX, "decode", "expected.json")) as f:
        for name, want in json.load(f).items():
            a = rgb(os.path.join(FIX, "decode", name))
            checked += 1
            if (a.shape[1], a.shape[0]) != (want["width"], want["height"]) or a.reshape(-1).tolist() != want["rgb"]:
                bad.append(f"decode/{name}: Pillow {PIL.__version__} decodes it differently from expected.json")
    with open(os.path.join(FIX, "jpeg", "expected.json")) as f:
        for name, want in json.load(f).items():
            a = rgb(os.path.join(FIX, "jpeg", name))
            checked += 1
            sha = hashlib.sha256(a.tobytes()).hexdigest()
            if (a.shape[1], a.shape[0]) != (want["width"], want["height"]) or sha != want["sha256"] \
                    or int(a.astype(np.uint64).sum()) != want["sum"]:
                bad.append(f"jpeg/{name}: Pillow {PIL.__version__} decodes it differently from expected.json")
    return checked, bad


def main():
    warnings.simplefilter("ignore", UserWarning)  # Pillow's palette-transparency notice
    r = Refs("decode.py")
    for test, name, lits in SHARED_CASES:
        a = rgb(os.path.join(SHARED, "models", "images", name))
        s, ws = checksums(a)
        for what, got, lit in zip(("width", "height", "byte sum", "weighted sum"), (a.shape[1], a.shape[0], s, ws), lits):
            r.add(test, f"{name} {what} (assert_eq)", got, lit, 0.0, 0.0)
    status = r.run()
    checked, bad = fixture_mismatches()
    for line in bad:
        print("MISMATCH", line)
    print(f"decode.py: {checked} committed decode/jpeg fixtures re-decoded, {len(bad)} differ from expected.json")
    return 1 if bad else status


if __name__ == "__main__":
    sys.exit(main())
