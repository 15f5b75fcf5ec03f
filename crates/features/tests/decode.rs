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
