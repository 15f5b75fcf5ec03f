//! Decoding matches Pillow's `Image.open(f).convert('RGB')` on the fixtures
//! written by `tools/make_decode_fixtures.py` (expected pixels from Pillow 13),
//! and bad files are errors naming the file.
use std::path::{Path, PathBuf};

use gen_metrics_features::decode::{DecodeError, decode_bytes, decode_file};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/decode")
}

#[test]
fn fixtures_match_pillow_exactly() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let map = expected.as_object().unwrap();
    assert!(map.len() >= 19);
    let mut failures = Vec::new();
    for (name, want) in map {
        let got = match decode_file(&fixtures().join(name)) {
            Ok(img) => img,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let (w, h) = got.dimensions();
        assert_eq!(w as u64, want["width"].as_u64().unwrap(), "{name}");
        assert_eq!(h as u64, want["height"].as_u64().unwrap(), "{name}");
        let want_px: Vec<u8> = want["rgb"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u8)
            .collect();
        if got.as_raw() != &want_px {
            failures.push(format!(
                "{name} (Pillow mode {}): got {:?}.., want {:?}..",
                want["mode"],
                &got.as_raw()[..want_px.len().min(12)],
                &want_px[..want_px.len().min(12)]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn shared_png_images_match_pillow_checksums() {
    // Sum and a position-weighted sum of Pillow's RGB bytes for the shared
    // images (computed with Pillow 13; see tools/check_resize.py for the full comparison).
    // Generator: `tools/references/decode.py` (`--check` compares with these literals).
    let dir = gen_metrics_testkit::shared_dir().join("models/images");
    if !dir.exists() {
        gen_metrics_testkit::missing_artifact("shared/models/images");
        return;
    }
    for (name, (w, h, sum, wsum)) in [
        (
            "astronaut.png",
            (512u32, 512u32, 90_124_324u64, 2_881_509_980_090u64),
        ),
        ("camera.png", (512, 512, 101_497_485, 3_303_224_157_660)),
        ("logo.png", (500, 500, 136_059_231, 4_304_361_668_999)),
    ] {
        let img = decode_file(&dir.join(name)).unwrap();
        assert_eq!(img.dimensions(), (w, h), "{name}");
        let s: u64 = img.as_raw().iter().map(|&v| u64::from(v)).sum();
        let ws: u64 = img
            .as_raw()
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as u64 % 65_521) * u64::from(v))
            .sum();
        assert_eq!((s, ws), (sum, wsum), "{name}");
    }
}

#[test]
fn bad_files_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let e = decode_file(&empty).unwrap_err();
    assert!(matches!(e, DecodeError::Empty { .. }));
    assert!(e.to_string().contains("empty.png"), "{e}");

    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"this is not an image at all").unwrap();
    assert!(matches!(
        decode_file(&garbage).unwrap_err(),
        DecodeError::UnknownFormat { .. }
    ));

    let missing = dir.path().join("missing.png");
    let e = decode_file(&missing).unwrap_err();
    assert!(matches!(e, DecodeError::Io { .. }) && e.path() == missing);

    // Truncations of every fixture at several points: an error or an image,
    // never a panic; the error names the file.
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let p = entry.unwrap().path();
        if p.extension().is_some_and(|e| e == "json") {
            continue;
        }
        let bytes = std::fs::read(&p).unwrap();
        for cut in [1, 8, 16, 33, bytes.len() / 2, bytes.len() - 1] {
            let cut = cut.min(bytes.len());
            if let Err(e) = decode_bytes(&bytes[..cut], Path::new("cut.bin")) {
                assert!(e.to_string().contains("cut.bin"), "{e}");
            }
        }
    }
    // A truncated PNG body is an error, not a silently shortened image.
    let bytes = std::fs::read(fixtures().join("rgba.png")).unwrap();
    let e = decode_bytes(&bytes[..bytes.len() - 20], Path::new("short.png")).unwrap_err();
    assert!(matches!(e, DecodeError::Malformed { .. }), "{e}");
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A well-formed PNG (valid chunk CRCs) whose `IHDR` declares `w x h` 8-bit
/// RGB pixels over a tiny `IDAT`.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    // A zlib stream of one empty stored block.
    chunk(
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(b"IEND", &[]);
    out
}

/// A baseline (or progressive) JPEG header declaring `w x h`, one component,
/// ending right after the frame header.
fn jpeg_declaring(w: u16, h: u16, progressive: bool) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    // DQT, table 0, all ones.
    out.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
    out.extend([1u8; 64]);
    out.extend([0xFF, if progressive { 0xC2 } else { 0xC0 }, 0x00, 0x0B, 8]);
    out.extend(h.to_be_bytes());
    out.extend(w.to_be_bytes());
    out.extend([1, 1, 0x11, 0]);
    out.extend([0xFF, 0xD9]);
    out
}

/// A 24-bit uncompressed BMP header declaring `w x h` with no pixel data.
fn bmp_declaring(w: i32, h: i32) -> Vec<u8> {
    let mut out = b"BM".to_vec();
    out.extend(54u32.to_le_bytes()); // file size (a lie is fine)
    out.extend([0u8; 4]);
    out.extend(54u32.to_le_bytes()); // pixel data offset
    out.extend(40u32.to_le_bytes()); // BITMAPINFOHEADER
    out.extend(w.to_le_bytes());
    out.extend(h.to_le_bytes());
    out.extend(1u16.to_le_bytes());
    out.extend(24u16.to_le_bytes());
    out.extend(0u32.to_le_bytes()); // BI_RGB
    out.extend([0u8; 20]);
    out.extend([0u8; 16]); // a few bytes of "pixels"
    out
}

/// Regression (issue #12): a PNG of a few hundred bytes whose header claims
/// 100000 x 100000 pixels ended the process ("memory allocation of
/// 30000000000 bytes failed"). Every decoder checks the declared size
/// against the pixel limit and, where the compression is bounded, against
/// the file's size before allocating.
#[test]
fn declared_sizes_are_checked_before_allocating() {
    use gen_metrics_features::decode::MAX_PIXELS;

    let huge = png_declaring(100_000, 100_000);
    assert!(huge.len() < 200);
    let e = decode_bytes(&huge, Path::new("huge.png")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::TooLarge {
                width: 100_000,
                height: 100_000,
                ..
            }
        ),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("huge.png: png image of 100000 x 100000"),
        "{e}"
    );
    assert!(e.to_string().contains(&MAX_PIXELS.to_string()), "{e}");

    // Under the pixel limit but far more than 1032:1 deflate can hold.
    let dense = png_declaring(10_000, 10_000);
    let e = decode_bytes(&dense, Path::new("dense.png")).unwrap_err();
    assert!(
        matches!(e, DecodeError::TooSmallForSize { needed, len, .. } if needed == 10_000 * 30_001 / 1032 && len == dense.len() as u64),
        "{e}"
    );
    assert!(e.to_string().contains("dense.png"), "{e}");

    // Baseline JPEG: 2 bits per coded block at least.
    let e = decode_bytes(&jpeg_declaring(8000, 8000, false), Path::new("a.jpg")).unwrap_err();
    assert!(
        matches!(
            e,
            DecodeError::TooSmallForSize {
                needed: 250_000,
                ..
            }
        ),
        "{e}"
    );
    let e = decode_bytes(&jpeg_declaring(65_535, 65_535, true), Path::new("b.jpg")).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");

    // Uncompressed BMP: the rows must be there.
    let e = decode_bytes(&bmp_declaring(10_000, 10_000), Path::new("c.bmp")).unwrap_err();
    assert!(
        matches!(e, DecodeError::TooSmallForSize { needed, .. } if needed == 54 + 30_000 * 10_000),
        "{e}"
    );
    assert_eq!(e.path(), Path::new("c.bmp"));
    // Over the pixel limit (and within the bmp decoder's own 65535 cap).
    let e = decode_bytes(&bmp_declaring(20_000, -20_000), Path::new("d.bmp")).unwrap_err();
    assert!(matches!(e, DecodeError::TooLarge { .. }), "{e}");
}

/// A progressive one-component JPEG of `w x h` (multiples of 8) whose only
/// scans are `scans` copies of one AC refinement scan (coefficients 1..=63,
/// `Ah = 1`, `Al = 0`) coded as end-of-band runs of 27,306 blocks: 15 bits
/// per run, so each scan over a 2^27-pixel frame takes about 145 bytes.
fn jpeg_repeating_refinement_scans(w: u16, h: u16, scans: usize) -> Vec<u8> {
    let mut out = jpeg_declaring(w, h, true);
    out.truncate(out.len() - 2); // EOI
    // AC table 0: one code, '0', for EOBRUN with 14 extra bits (symbol 0xE0).
    out.extend([0xFF, 0xC4, 0x00, 0x14, 0x10, 1]);
    out.extend([0u8; 15]);
    out.push(0xE0);
    let blocks = usize::from(w / 8) * usize::from(h / 8);
    let extra: u32 = 0b10_1010_1010_1010; // no run of 8 one-bits: no byte stuffing
    let run = (1usize << 14) + extra as usize;
    let mut bits: Vec<bool> = Vec::new();
    for _ in 0..blocks.div_ceil(run) {
        bits.push(false);
        bits.extend((0..14).rev().map(|i| (extra >> i) & 1 == 1));
    }
    let data: Vec<u8> = bits
        .chunks(8)
        .map(|c| {
            c.iter()
                .enumerate()
                .fold(0u8, |b, (i, &x)| b | (u8::from(x) << (7 - i)))
        })
        .collect();
    assert!(!data.contains(&0xFF));
    for _ in 0..scans {
        out.extend([0xFF, 0xDA, 0x00, 0x08, 1, 1, 0x00, 1, 63, 0x10]);
        out.extend(&data);
    }
    out.extend([0xFF, 0xD9]);
    out
}

/// Regression (issue #12, the `jpeg` fuzz target): a JPEG of a few kilobytes
/// repeating one refinement scan over a 2^27-pixel frame made the decoder
/// walk 2 million blocks per scan (9.8 s for this 9.4 kB file, longer for
/// larger ones). Each scan's block visits
/// are charged against a budget of `MAX_SCANS_PER_BLOCK = 32` passes per
/// block before it is decoded; a file within it decodes as before.
#[test]
fn repeated_progressive_scans_are_refused_within_a_work_budget() {
    let hostile = jpeg_repeating_refinement_scans(16_384, 8_192, 60);
    assert!(hostile.len() < 10_000, "{}", hostile.len());
    let e = decode_bytes(&hostile, Path::new("scans.jpg")).unwrap_err();
    let message = e.to_string();
    assert!(matches!(e, DecodeError::Unsupported { .. }), "{message}");
    assert!(
        message.starts_with("scans.jpg: unsupported jpeg image")
            && message.contains("more than 32 times"),
        "{message}"
    );

    // 32 scans over every block fit the budget: the decoder reads them all
    // and refuses the file for its missing DC scan, as before; a 33rd scan
    // exceeds it.
    let within = jpeg_repeating_refinement_scans(64, 64, 32);
    let e = decode_bytes(&within, Path::new("within.jpg")).unwrap_err();
    assert!(e.to_string().contains("incomplete scans"), "{e}");
    let over = jpeg_repeating_refinement_scans(64, 64, 33);
    let e = decode_bytes(&over, Path::new("over.jpg")).unwrap_err();
    assert!(e.to_string().contains("more than 32 times"), "{e}");
}

/// A classic little-endian TIFF with one IFD of `(tag, type, value)` entries
/// (type 3 SHORT or 4 LONG, count 1) and no pixel data.
fn tiff_with(tags: &[(u16, u16, u32)]) -> Vec<u8> {
    let mut b = b"II*\0".to_vec();
    b.extend_from_slice(&8u32.to_le_bytes());
    b.extend_from_slice(&(tags.len() as u16).to_le_bytes());
    for &(tag, ty, value) in tags {
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&ty.to_le_bytes());
        b.extend_from_slice(&1u32.to_le_bytes());
        if ty == 3 {
            b.extend_from_slice(&(value as u16).to_le_bytes());
            b.extend_from_slice(&[0, 0]);
        } else {
            b.extend_from_slice(&value.to_le_bytes());
        }
    }
    b.extend_from_slice(&0u32.to_le_bytes());
    b
}

/// Found by the `image` fuzz target (docs/fuzzing.md, crash 4): `tiff` 0.11.3
/// (the newest release) multiplies the strip count by the planes in `u32`
/// while it reads the header, which panics with overflow checks on (tests,
/// the fuzz build) for a 4,294,967,295-row planar image. `decode_bytes`
/// catches a third-party decoder's panic and reports the file as malformed:
/// an error naming the file, never a panic reaching the caller.
#[test]
fn a_tiff_header_overflowing_the_decoders_strip_count_is_an_error() {
    let tiff = tiff_with(&[
        (256, 4, 1),        // ImageWidth
        (257, 4, u32::MAX), // ImageLength
        (258, 3, 8),        // BitsPerSample
        (259, 3, 1),        // Compression: none
        (262, 3, 1),        // PhotometricInterpretation: BlackIsZero
        (273, 4, 0),        // StripOffsets
        (277, 3, 2),        // SamplesPerPixel
        (278, 4, 1),        // RowsPerStrip
        (279, 4, 1),        // StripByteCounts
        (284, 3, 2),        // PlanarConfiguration: planar
    ]);
    let e = decode_bytes(&tiff, Path::new("planes.tif")).unwrap_err();
    assert!(matches!(e, DecodeError::Malformed { .. }), "{e}");
    assert!(e.to_string().contains("planes.tif"), "{e}");
}
