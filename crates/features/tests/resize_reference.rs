//! Regression against numbers computed from the Python references
//! (`tools/make_resize_fixtures.py`: Pillow decode + Pillow float BICUBIC,
//! numpy ports of ATen bilinear and TF1 ResizeBilinear): decode + preprocess
//! to 299x299 must be bit-identical (SHA-256 of the float32 output), for the
//! shared images and two committed fixtures.
use std::path::Path;

use gen_metrics_features::decode::decode_file;
use gen_metrics_features::resize::{Normalization, ResizeMode, ResizeSpec, preprocess};
use ndarray::{Array3, ArrayView3};
use sha2::{Digest, Sha256};

fn sha(a: &Array3<f32>) -> String {
    let mut h = Sha256::new();
    for v in a.iter() {
        h.update(v.to_le_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

fn check(
    name: &str,
    key: &str,
    got: &Array3<f32>,
    want: &serde_json::Value,
    failures: &mut Vec<String>,
) {
    let want = &want[key];
    if sha(got) == want["sha256"].as_str().unwrap() {
        return;
    }
    let mut max = 0f64;
    for s in want["samples"].as_array().unwrap() {
        let s = s.as_array().unwrap();
        let (c, y, x) = (
            s[0].as_u64().unwrap() as usize,
            s[1].as_u64().unwrap() as usize,
            s[2].as_u64().unwrap() as usize,
        );
        max = max.max((f64::from(got[[c, y, x]]) - s[3].as_f64().unwrap()).abs());
    }
    let sum: f64 = got.iter().map(|&v| f64::from(v)).sum();
    failures.push(format!(
        "{name} {key}: not bit-identical (sum {sum} vs {}, max |diff| on samples {max:e})",
        want["sum"]
    ));
}

#[test]
fn preprocessing_matches_python_references_bit_for_bit() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/resize_reference.json"),
    )
    .unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let shared = gen_metrics_testkit::shared_dir().join("models/images");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, want) in expected.as_object().unwrap() {
        let path = if want["where"] == "shared" {
            shared.join(name)
        } else {
            fixtures.join(name)
        };
        if !path.exists() {
            gen_metrics_testkit::missing_artifact(&path.display().to_string());
            continue;
        }
        let img = decode_file(&path).unwrap();
        let (w, h) = img.dimensions();
        let view =
            ArrayView3::from_shape((h as usize, w as usize, 3), img.as_raw().as_slice()).unwrap();
        for (key, mode, norm) in [
            ("clean", ResizeMode::Clean, Normalization::Raw255),
            (
                "legacy-pytorch",
                ResizeMode::LegacyPytorch,
                Normalization::Unit,
            ),
            (
                "legacy-tensorflow",
                ResizeMode::LegacyTensorflow,
                Normalization::Raw255,
            ),
            (
                "clean/centered128",
                ResizeMode::Clean,
                Normalization::Centered128,
            ),
            (
                "legacy-pytorch/symmetric",
                ResizeMode::LegacyPytorch,
                Normalization::SymmetricUnit,
            ),
        ] {
            let got = preprocess(view, &ResizeSpec::new(mode, (299, 299), norm)).unwrap();
            check(name, key, &got, want, &mut failures);
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} cases checked");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn readme_presets_are_the_reference_combinations() {
    assert_eq!(
        ResizeSpec::inception_clean(),
        ResizeSpec::new(ResizeMode::Clean, (299, 299), Normalization::Centered128)
    );
    assert_eq!(
        ResizeSpec::inception_legacy_pytorch(),
        ResizeSpec::new(
            ResizeMode::LegacyPytorch,
            (299, 299),
            Normalization::SymmetricUnit
        )
    );
}
