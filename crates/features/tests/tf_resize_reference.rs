//! The `legacy-tensorflow` resize against TensorFlow itself: the fixture
//! `tests/fixtures/tf_resize_reference.json` was written by
//! `tools/make_tf_resize_fixture.py` with tensorflow-cpu 2.21.0,
//! `tf.compat.v1.image.resize_bilinear(images, [h, w], align_corners=False)` as
//! TTUR's Inception graph calls it (then `(x - 128) * (1/128)` for the network
//! input), on small deterministic uint8 images rebuilt here from the same integer
//! formulas.
//!
//! Tolerance: none. Every value must be bit-identical in `f32` (small targets:
//! each value; 299x299 and 48x64: SHA-256 of the `f32` little-endian HWC output,
//! of the resized values and of the `Centered128` network input).
//! Both sides compute `top = tl + (tr − tl)·lx`, `bottom = bl + (br − bl)·lx`,
//! `top + (bottom − top)·ly` in `f32` with the same weights, so equal bits are
//! the expected outcome, not a lucky one; a fused multiply-add on either side
//! would show up here as a 1-ulp difference.
use std::path::Path;

use gen_metrics_features::resize::{Normalization, ResizeMode, ResizeSpec, preprocess};
use ndarray::{Array3, ArrayView3};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// `img[y, x, c] = (x(3 + 2c) + y(5 + c) + ((x·y) mod (7 + c))·11 + ((x ^ y) & 15)·4 + 37c) mod 256`.
fn pattern(h: usize, w: usize) -> Array3<u8> {
    Array3::from_shape_fn((h, w, 3), |(y, x, c)| {
        let v =
            x * (3 + 2 * c) + y * (5 + c) + ((x * y) % (7 + c)) * 11 + ((x ^ y) & 15) * 4 + 37 * c;
        (v % 256) as u8
    })
}

/// A 32-bit LCG per value in row-major HWC order, seed 12345, top byte.
fn noise(h: usize, w: usize) -> Array3<u8> {
    let mut state: u32 = 12345;
    let data: Vec<u8> = (0..h * w * 3)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 24) as u8
        })
        .collect();
    Array3::from_shape_vec((h, w, 3), data).expect("h * w * 3 values")
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// CHW `f32` output as HWC values (TensorFlow's layout).
fn hwc(chw: &Array3<f32>) -> Vec<f32> {
    let (c, h, w) = chw.dim();
    let mut out = Vec::with_capacity(c * h * w);
    for y in 0..h {
        for x in 0..w {
            for ch in 0..c {
                out.push(chw[[ch, y, x]]);
            }
        }
    }
    out
}

fn sha_f32(v: &[f32]) -> String {
    let mut h = Sha256::new();
    for x in v {
        h.update(x.to_le_bytes());
    }
    hex(&h.finalize())
}

fn f32_of(v: &Value) -> f32 {
    // The fixture stores f32 values as the shortest JSON number that
    // round-trips through f64; f64 -> f32 is then exact.
    v.as_f64().expect("number") as f32
}

/// Compares `got` (HWC) with `want`: every value (`values` array) or the
/// summary (SHA-256; samples and sum for the message).
fn compare(what: &str, got: &[f32], want: &Value, w: usize, failures: &mut Vec<String>) {
    if let Some(values) = want.as_array() {
        assert_eq!(values.len(), got.len(), "{what}: value count");
        let mut bad = 0;
        let mut first = None;
        let mut max_ulps = 0u32;
        for (i, (g, v)) in got.iter().zip(values).enumerate() {
            let t = f32_of(v);
            if g.to_bits() != t.to_bits() {
                bad += 1;
                first.get_or_insert((i, *g, t));
                max_ulps = max_ulps.max(g.to_bits().abs_diff(t.to_bits()));
            }
        }
        if let Some((i, g, t)) = first {
            failures.push(format!(
                "{what}: {bad} of {} values differ (max {max_ulps} ulps); first at {i}: {g:e} vs TensorFlow {t:e}",
                got.len()
            ));
        }
        return;
    }
    if sha_f32(got) == want["sha256"].as_str().expect("sha256") {
        return;
    }
    let mut max = 0f64;
    for s in want["samples"].as_array().expect("samples") {
        let s = s.as_array().expect("sample");
        let at = |k: usize| s[k].as_u64().expect("index") as usize;
        let i = (at(0) * w + at(1)) * 3 + at(2);
        max = max.max((f64::from(got[i]) - s[3].as_f64().expect("value")).abs());
    }
    let sum: f64 = got.iter().map(|&v| f64::from(v)).sum();
    failures.push(format!(
        "{what}: not bit-identical to TensorFlow (sum {sum} vs {}, max |diff| on samples {max:e})",
        want["sum"]
    ));
}

#[test]
fn legacy_tensorflow_resize_is_bit_identical_to_tensorflow() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tf_resize_reference.json");
    let text = std::fs::read_to_string(&path).expect("fixture");
    let fixture: Value = serde_json::from_str(&text).expect("JSON");
    let mut failures = Vec::new();
    let mut outputs = 0;
    for case in fixture["cases"].as_array().expect("cases") {
        let name = case["name"].as_str().expect("name");
        let h = case["height"].as_u64().expect("height") as usize;
        let w = case["width"].as_u64().expect("width") as usize;
        let img = match case["kind"].as_str() {
            Some("pattern") => pattern(h, w),
            Some("noise") => noise(h, w),
            other => panic!("{name}: unknown kind {other:?}"),
        };
        let bytes = img.as_slice().expect("standard layout");
        assert_eq!(
            hex(&Sha256::digest(bytes)),
            case["input_sha256"].as_str().expect("input_sha256"),
            "{name}: the test image differs from the script's"
        );
        let view = ArrayView3::from_shape((h, w, 3), bytes).expect("HWC");
        for out in case["outputs"].as_array().expect("outputs") {
            let th = out["height"].as_u64().expect("height") as usize;
            let tw = out["width"].as_u64().expect("width") as usize;
            for (key, norm) in [
                ("values", Normalization::Raw255),
                ("summary", Normalization::Raw255),
                ("centered128_summary", Normalization::Centered128),
            ] {
                if out.get(key).is_none() {
                    continue;
                }
                let spec = ResizeSpec::new(ResizeMode::LegacyTensorflow, (th, tw), norm);
                let got = hwc(&preprocess(view, &spec).expect("preprocess"));
                compare(
                    &format!("{name} -> {th}x{tw} {key}"),
                    &got,
                    &out[key],
                    tw,
                    &mut failures,
                );
                outputs += 1;
            }
        }
    }
    assert!(outputs >= 15, "only {outputs} outputs checked");
    assert!(failures.is_empty(), "{failures:#?}");
}
