//! The JPEG decoder reproduces Pillow (libjpeg-turbo) bit for bit on the
//! fixtures written by `tools/make_jpeg_fixtures.py`: sampling 4:4:4, 4:2:2,
//! 4:2:0, 4:4:0, 4:1:1, progressive, optimized tables, grayscale, CMYK,
//! Adobe RGB, restart markers and tiny sizes.
use std::path::{Path, PathBuf};

use gen_metrics_features::decode::{DecodeError, decode_bytes, decode_file};
use sha2::{Digest, Sha256};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jpeg")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn jpeg_fixtures_match_pillow_bit_for_bit() {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let map = expected.as_object().unwrap();
    assert!(map.len() >= 16);
    let mut failures = Vec::new();
    for (name, want) in map {
        let path = fixtures().join(name);
        let result = decode_file(&path);
        if name.contains("arith") {
            // Arithmetic coding is refused, never decoded differently.
            assert!(
                matches!(result, Err(DecodeError::Unsupported { .. })),
                "{name}: {result:?}"
            );
            continue;
        }
        let img = match result {
            Ok(i) => i,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let (w, h) = img.dimensions();
        assert_eq!(
            (u64::from(w), u64::from(h)),
            (
                want["width"].as_u64().unwrap(),
                want["height"].as_u64().unwrap()
            ),
            "{name}"
        );
        let sum: u64 = img.as_raw().iter().map(|&v| u64::from(v)).sum();
        let sha = hex(&Sha256::digest(img.as_raw()));
        if sha != want["sha256"].as_str().unwrap() {
            failures.push(format!(
                "{name} ({}): byte sum {sum}, Pillow's {}",
                want["mode"], want["sum"]
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn shared_jpeg_matches_pillow() {
    let path = gen_metrics_testkit::shared_dir().join("models/images/rocket.jpg");
    if !path.exists() {
        gen_metrics_testkit::missing_artifact("shared/models/images/rocket.jpg");
        return;
    }
    let img = decode_file(&path).unwrap();
    assert_eq!(img.dimensions(), (640, 427));
    let s: u64 = img.as_raw().iter().map(|&v| u64::from(v)).sum();
    let ws: u64 = img
        .as_raw()
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u64 % 65_521) * u64::from(v))
        .sum();
    // Pillow 13 (libjpeg-turbo 3.2): sum and position-weighted sum of the RGB bytes
    // (generator: `tools/references/decode.py`, `--check` compares with these literals).
    assert_eq!((s, ws), (53_516_744, 1_727_030_028_985));
}

#[test]
fn truncated_and_corrupt_jpegs_are_errors_not_panics() {
    let bytes = std::fs::read(fixtures().join("progressive_420.jpg")).unwrap();
    // Pillow also refuses a file that only lacks its EOI marker.
    for cut in [
        2,
        3,
        20,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 2,
        bytes.len() - 1,
    ] {
        let r = decode_bytes(&bytes[..cut], Path::new("cut.jpg"));
        let e = r.expect_err("a truncated JPEG must be an error");
        assert!(e.to_string().contains("cut.jpg"), "{e}");
    }
    // Flipped bytes in the entropy-coded data: an image or an error, never a panic.
    for name in [
        "q50_420.jpg",
        "progressive_444.jpg",
        "restart_blocks_420.jpg",
        "cmyk.jpg",
    ] {
        let good = std::fs::read(fixtures().join(name)).unwrap();
        for i in (good.len() / 2..good.len() - 2).step_by(7) {
            let mut b = good.clone();
            b[i] ^= 0x5A;
            let _ = decode_bytes(&b, Path::new(name));
        }
    }
}
