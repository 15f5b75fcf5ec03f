//! End to end: provision ONNX Runtime (CPU) and the FID Inception-V3, run it
//! on the shared reference images, compare with the TorchScript features.

mod common;

use std::path::PathBuf;

use gen_metrics_features::encoder::{Encoder, EncoderOptions, Preset, SPATIAL_LAYER};
use gen_metrics_features::extractor::RuntimeOptions;
use gen_metrics_features::resize::ResizeMode;

fn models_dir() -> PathBuf {
    gen_metrics_testkit::shared_dir().join("models")
}

fn encoder(resize: ResizeMode) -> Option<Encoder> {
    encoder_layer(resize, None)
}

fn encoder_layer(resize: ResizeMode, layer: Option<&str>) -> Option<Encoder> {
    let (prov, lib, _model) = common::provision_inception()?;
    let options = EncoderOptions {
        layer: layer.map(str::to_owned),
        runtime: RuntimeOptions::new().library(lib).intra_threads(2),
        resize: Some(resize),
        batch_size: 8,
        provisioner: Some(prov),
        ..EncoderOptions::default()
    };
    Some(Encoder::preset(Preset::InceptionV3Fid, &options).expect("inception encoder"))
}

/// 16 synthetic 299x299 PNGs: no resize, input (x - 128) / 128.
#[test]
fn synthetic_features_match_torchscript() {
    let Some(mut enc) = encoder(ResizeMode::Clean) else {
        return;
    };
    let dir = models_dir().join("synthetic");
    let paths: Vec<PathBuf> = (0..16)
        .map(|i| dir.join(format!("img_{i:02}.png")))
        .collect();
    let got = enc.encode_files(&paths, |_| {}).expect("features");
    let want = common::read_npy(&dir.join("features.npy"));
    let (d, at) = common::max_abs_diff(&got, &want);
    eprintln!("synthetic: max abs diff {d:.3e} at {at:?}");
    assert!(d <= 1e-4, "synthetic features differ by {d} at {at:?}");
}

/// The sFID output (`spatial`, mixed_6/conv's first 7 channels in NHWC
/// order) of the first 4 synthetic images and of the 4 photos (clean-fid
/// resize) against PyTorch running the same TorchScript archive block by
/// block (`tools/make_spatial_fixture.py`).
#[test]
fn synthetic_spatial_features_match_torchscript() {
    let Some(mut enc) = encoder_layer(ResizeMode::Clean, Some(SPATIAL_LAYER)) else {
        return;
    };
    assert_eq!(enc.output_dim(), 2023);
    let dir = models_dir().join("synthetic");
    let mut paths: Vec<PathBuf> = (0..4)
        .map(|i| dir.join(format!("img_{i:02}.png")))
        .collect();
    paths.extend(photos());
    let got = enc.encode_files(&paths, |_| {}).expect("features");
    let want = common::read_npy(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/inception_spatial_reference.npy"),
    );
    assert_eq!(got.dim(), (8, 2023));
    let (d, at) = common::max_abs_diff(&got, &want);
    eprintln!("spatial: max abs diff {d:.3e} at {at:?}");
    assert!(d <= 1e-4, "spatial features differ by {d} at {at:?}");
    // Not the pool3 features, and not all zero (the ReLU keeps some).
    assert!(want.iter().any(|&v| v > 0.5));
}

fn photos() -> Vec<PathBuf> {
    let dir = models_dir().join("images");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).expect("index.json"))
            .expect("index.json is JSON");
    index["files_in_row_order"]
        .as_array()
        .expect("files_in_row_order")
        .iter()
        .map(|v| dir.join(v.as_str().expect("file name")))
        .collect()
}

fn check_photos(mode: ResizeMode, reference: &str) {
    let Some(mut enc) = encoder(mode) else {
        return;
    };
    let got = enc.encode_files(&photos(), |_| {}).expect("features");
    let want = common::read_npy(&models_dir().join("images").join(reference));
    for r in 0..got.nrows() {
        let row_diff = got
            .row(r)
            .iter()
            .zip(want.row(r))
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        eprintln!("{reference} row {r}: max abs diff {row_diff:.3e}");
    }
    let (d, at) = common::max_abs_diff(&got, &want);
    eprintln!("{reference}: max abs diff {d:.3e} at {at:?}");
    assert!(d <= 1e-4, "{reference}: features differ by {d} at {at:?}");
}

/// Photos (RGB, JPEG, L, RGBA) with clean-fid's resize.
#[test]
fn photos_clean_match_torchscript() {
    check_photos(ResizeMode::Clean, "features_clean.npy");
}

/// Photos with pytorch-fid's resize (torch bilinear, no antialias) and 2x - 1.
#[test]
fn photos_legacy_pytorch_match_torchscript() {
    check_photos(ResizeMode::LegacyPytorch, "features_legacy_pytorch.npy");
}
