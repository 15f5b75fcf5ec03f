#!/usr/bin/env python3
"""Writes the tiny decode fixtures of crates/features/tests/fixtures/decode/ and
expected.json: for each file, Pillow's `Image.open(f).convert('RGB')` as a flat list
(row-major, RGB interleaved) with its width and height. Re-run after changing the
list; needs numpy and pillow. The files are a few hundred bytes each."""
import io, json, os, struct, sys, zlib
import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "features", "tests", "fixtures", "decode")


def chunk(t, d):
    return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)


def png(width, height, bitdepth, colortype, rows, extra=b""):
    ihdr = struct.pack(">IIBBBBB", width, height, bitdepth, colortype, 0, 0, 0)
    raw = b"".join(b"\x00" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def pil_bytes(img, fmt, **kw):
    b = io.BytesIO()
    img.save(b, format=fmt, **kw)
    return b.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    files = {}
    v16 = [0x0000, 0x00FF, 0x0100, 0x7F80, 0x80FF, 0xFF00, 0xFFFF, 0x1234, 0xFE7F]
    files["rgb16.png"] = png(9, 1, 16, 2, [b"".join(struct.pack(">HHH", v, v ^ 0x0F0F, 65535 - v) for v in v16)])
    files["rgba16.png"] = png(9, 1, 16, 6, [b"".join(struct.pack(">HHHH", v, v, v, 0x1234) for v in v16)])
    files["la16.png"] = png(9, 1, 16, 4, [b"".join(struct.pack(">HH", v, 0x1234) for v in v16)])
    files["gray16.png"] = png(9, 1, 16, 0, [b"".join(struct.pack(">H", v) for v in v16)])
    files["gray16_trns.png"] = png(9, 1, 16, 0, [b"".join(struct.pack(">H", v) for v in v16)],
                                   extra=chunk(b"tRNS", struct.pack(">H", 0x0100)))
    for bd in (1, 2, 4):
        vals = list(range(2 ** bd))
        bits = "".join(format(v, "0%db" % bd) for v in vals)
        bits += "0" * (-len(bits) % 8)
        files[f"gray{bd}.png"] = png(len(vals), 1, bd, 0, [int(bits, 2).to_bytes(len(bits) // 8, "big")])
    plte = chunk(b"PLTE", bytes([10, 20, 30, 40, 50, 60, 70, 80, 90]))
    files["palette_trns.png"] = png(4, 1, 8, 3, [bytes([0, 1, 2, 1])], extra=plte + chunk(b"tRNS", bytes([0, 128])))
    files["gray_trns.png"] = png(3, 1, 8, 0, [bytes([0, 100, 255])], extra=chunk(b"tRNS", struct.pack(">H", 100)))
    rng = np.random.default_rng(0)
    rgba = rng.integers(0, 256, (5, 6, 4), dtype=np.uint8)
    rgba[..., 3] = [0, 1, 128, 200, 255, 7]  # alpha must be dropped, never composited
    files["rgba.png"] = pil_bytes(Image.fromarray(rgba, "RGBA"), "PNG")
    files["la.png"] = pil_bytes(Image.fromarray(rgba[..., :2].copy(), "LA"), "PNG")
    files["rgb.bmp"] = pil_bytes(Image.fromarray(rgba[..., :3].copy(), "RGB"), "BMP")
    files["gray.bmp"] = pil_bytes(Image.fromarray(rgba[..., 0].copy(), "L"), "BMP")
    files["palette.bmp"] = pil_bytes(Image.fromarray(rgba[..., :3].copy(), "RGB").convert("P"), "BMP")
    files["lossless.webp"] = pil_bytes(Image.fromarray(rgba, "RGBA"), "WEBP", lossless=True)
    files["rgb.tiff"] = pil_bytes(Image.fromarray(rgba[..., :3].copy(), "RGB"), "TIFF")
    files["gray16.tiff"] = pil_bytes(Image.fromarray((rgba[..., 0].astype(np.uint16) * 3)), "TIFF")
    # EXIF orientation 6 (rotate 90): Pillow's open does not apply it.
    exif = Image.Exif()
    exif[0x0112] = 6
    files["exif_rot.png"] = pil_bytes(Image.fromarray(rgba[..., :3].copy(), "RGB"), "PNG", exif=exif)
    expected = {}
    for name, data in sorted(files.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
        im = Image.open(io.BytesIO(data))
        rgb = np.asarray(im.convert("RGB"))
        expected[name] = {"mode": im.mode, "width": rgb.shape[1], "height": rgb.shape[0],
                          "rgb": [int(v) for v in rgb.reshape(-1)]}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f, indent=0)
    print(f"wrote {len(files)} fixtures to {OUT}")


if __name__ == "__main__":
    sys.exit(main())
