#!/usr/bin/env python3
"""Writes the statistics .npz fixtures of crates/cli/tests/fid_routes.rs as
numpy itself writes them (pytorch-fid / clean-fid / TTUR reference statistics
are `np.savez(path, mu=mu, sigma=sigma)` files).

numpy's `savez` / `savez_compressed` open every member with
`force_zip64=True`, so these files carry zip64 extra fields: the reader must
handle them. The data is the same as the test's feature files:

    a[i, j] = (i * 7 + j * 3) % 11   (40 x 3, float32),   b = a + 1

so FID(a, b) = ||mu_a - mu_b||^2 = 3 exactly (same covariance).

Usage: python3 tools/make_cli_fixtures.py [--check]
    (numpy 2.x; written with numpy 2.2.6). --check recomputes the statistics
    and compares them with the committed files instead of writing.
"""
import io
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent.parent / "crates/cli/tests/fixtures"


def local_headers_have_zip64(data):
    """True when every local file header carries a zip64 extra field (id 1)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            o = info.header_offset
            name_len, extra_len = struct.unpack("<HH", data[o + 26 : o + 30])
            extra = data[o + 30 + name_len : o + 30 + name_len + extra_len]
            if len(extra) < 4 or struct.unpack("<H", extra[:2])[0] != 1:
                return False
    return True


def stats(x):
    x = x.astype(np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False)


def main():
    check = "--check" in sys.argv[1:]
    a = np.fromfunction(lambda i, j: (i * 7 + j * 3) % 11, (40, 3)).astype(np.float32)
    b = a + 1
    files = {
        "stats_a_savez.npz": (np.savez, stats(a)),
        "stats_b_savez_compressed.npz": (np.savez_compressed, stats(b)),
    }
    bad = 0
    for name, (save, (mu, sigma)) in files.items():
        path = OUT / name
        if check:
            with np.load(path) as f:
                ok = np.array_equal(f["mu"], mu) and np.array_equal(f["sigma"], sigma)
            print(f"{name}: {'ok' if ok else 'MISMATCH'}")
            bad += not ok
            continue
        buf = io.BytesIO()
        save(buf, mu=mu, sigma=sigma)
        path.write_bytes(buf.getvalue())
        zip64 = local_headers_have_zip64(path.read_bytes())
        print(f"wrote {path} ({path.stat().st_size} bytes, zip64 extra fields: {zip64})")
    mu_a, _ = stats(a)
    mu_b, _ = stats(b)
    print("expected FID(a, b) =", float(((mu_a - mu_b) ** 2).sum()))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
