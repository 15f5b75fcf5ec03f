//! Encoder presets, specification files, preprocessing (crop, normalisation)
//! and the extractor, checked exactly with tiny ONNX models built here.

mod common;

use std::path::{Path, PathBuf};

use common::tiny_onnx;
use gen_metrics_features::FeatureError;
use gen_metrics_features::encoder::{
    CLIP_MEAN, CLIP_STD, Crop, Encoder, EncoderOptions, EncoderSpec, NormalizationSpec, Preset,
    center_offset, shorter_side_size,
};
use gen_metrics_features::extractor::{Device, Extractor, OutputSelect, RuntimeOptions};
use gen_metrics_features::resize::{Normalization, ResizeMode, ResizeSpec, ValueRange};
use gen_metrics_features::source::{BatchOptions, ErrorPolicy, ImageSource};
use ndarray::{Array2, Array4, s};

fn write_model(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).expect("write model");
    p
}

fn options(lib: &Path, model: Option<PathBuf>) -> EncoderOptions {
    EncoderOptions {
        runtime: RuntimeOptions::new().library(lib).intra_threads(1),
        model,
        batch_size: 3,
        provisioner: Some(common::test_provisioner().quiet(true)),
        ..EncoderOptions::default()
    }
}

fn spec(id: &str, size: usize, crop: Crop, norm: NormalizationSpec, dim: usize) -> EncoderSpec {
    EncoderSpec {
        id: id.into(),
        model: None,
        input_size: [size, size],
        resize: "clean".into(),
        crop,
        normalization: norm,
        input_name: None,
        output_name: None,
        output_dim: dim,
        output: OutputSelect::Flatten,
        logits_output: None,
    }
}

fn constant_image(h: usize, w: usize, rgb: [u8; 3]) -> Array4<u8> {
    let mut a = Array4::<u8>::zeros((1, h, w, 3));
    for (c, v) in rgb.into_iter().enumerate() {
        a.slice_mut(s![.., .., .., c]).fill(v);
    }
    a
}

/// An encoder over the 8 × 8 pixel-token model with the whole flattened
/// input as its features (the features are the preprocessed pixels,
/// token-major), and the folder holding the model.
fn pixel_encoder(crop: Crop) -> Option<(tempfile::TempDir, Encoder)> {
    let lib = common::runtime_library()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(tmp.path(), "tokens.onnx", &tiny_onnx::pixel_tokens(8, 8));
    let sp = spec("tokens", 8, crop, NormalizationSpec::Raw255, 8 * 8 * 3);
    let enc = Encoder::new(sp, &options(&lib, Some(model))).expect("encoder");
    Some((tmp, enc))
}

/// An extractor over the 4 × 4 channel-mean model, and the folder holding it.
fn mean_extractor() -> Option<(tempfile::TempDir, Extractor)> {
    let lib = common::runtime_library()?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(
        tmp.path(),
        "m.onnx",
        &tiny_onnx::channel_mean_identity(4, 4),
    );
    let ex = Extractor::from_file(&model, &lib, &RuntimeOptions::new()).expect("extractor");
    Some((tmp, ex))
}

#[test]
fn torchvision_resize_and_crop_arithmetic() {
    assert_eq!(shorter_side_size(300, 400, 224), (224, 298));
    assert_eq!(shorter_side_size(400, 300, 224), (298, 224));
    assert_eq!(shorter_side_size(256, 256, 224), (224, 224));
    // Python's round: ties to even.
    assert_eq!(center_offset(13, 8), 2); // 2.5 -> 2
    assert_eq!(center_offset(15, 8), 4); // 3.5 -> 4
    assert_eq!(center_offset(298, 224), 37);
    assert_eq!(center_offset(8, 8), 0);
}

#[test]
fn presets_have_the_published_settings() {
    let ids: Vec<&str> = Preset::ALL.iter().map(|p| p.id()).collect();
    assert_eq!(
        ids,
        [
            "inception-v3-fid",
            "clip-vit-b-32",
            "clip-vit-b-16",
            "clip-vit-l-14",
            "clip-vit-l-14-336",
            "dinov2-vit-s14",
            "dinov2-vit-b14",
            "dinov2-vit-l14",
            "dinov2-vit-g14",
            "vgg16-fc2"
        ]
    );
    let dims: Vec<usize> = Preset::ALL.iter().map(|p| p.spec().output_dim).collect();
    assert_eq!(dims, [2048, 512, 512, 768, 768, 384, 768, 1024, 1536, 4096]);
    // CMMD's encoder: CLIP ViT-L/14 at 336, shorter side to 336, centre crop.
    let cmmd = Preset::ClipVitL14At336.spec();
    assert_eq!(cmmd.input_size, [336, 336]);
    assert_eq!(
        cmmd.crop,
        Crop::Center {
            resize_shorter: 336
        }
    );
    // Every official checkpoint feeds a preset of its output dimension.
    for c in gen_metrics_artifacts::checkpoints::CHECKPOINTS {
        let p = Preset::from_id(c.preset).unwrap_or_else(|| panic!("{} has no preset", c.preset));
        assert_eq!(p.spec().output_dim, c.output_dim, "{}", c.id);
    }
    let inc = Preset::InceptionV3Fid.spec();
    assert_eq!(inc.input_size, [299, 299]);
    assert_eq!(inc.crop, Crop::None);
    assert_eq!(
        Preset::ClipVitB32.spec().crop,
        Crop::Center {
            resize_shorter: 224
        }
    );
    assert_eq!(Preset::Vgg16Fc2.spec().resize, "legacy-tensorflow");
    assert_eq!(Preset::from_id("dinov2"), Some(Preset::Dinov2VitL14));
    assert_eq!(Preset::from_id("CLIP_VIT_L_14"), Some(Preset::ClipVitL14));
    for p in Preset::ALL {
        p.spec().validate().expect("preset spec valid");
    }
}

#[test]
fn preset_without_model_says_how_to_fetch_or_export() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    // An empty home: nothing converted, nothing downloaded by the encoder.
    let home = tempfile::tempdir().expect("tempdir");
    let mut opts = options(&lib, None);
    opts.provisioner = Some(
        gen_metrics_artifacts::Provisioner::new(home.path())
            .offline(true)
            .quiet(true),
    );
    let err = Encoder::preset(Preset::Dinov2VitL14, &opts).expect_err("no model");
    let msg = err.to_string();
    assert!(matches!(err, FeatureError::EncoderSpec(_)), "{msg}");
    assert!(
        msg.contains("`gen-metrics models fetch dinov2-vitl14`"),
        "{msg}"
    );
    assert!(
        msg.contains("`gen-metrics models fetch dinov2-vitl14 --checkpoint FILE`"),
        "{msg}"
    );
    assert!(
        msg.contains("dinov2_vitl14/dinov2_vitl14_pretrain.pth"),
        "{msg}"
    );
    assert!(!home.path().join("checkpoints").exists());
    // Presets without a converted checkpoint still say how to export.
    let err = Encoder::preset(Preset::Dinov2VitG14, &opts).expect_err("no model");
    assert!(
        err.to_string()
            .contains("tools/export_encoders.py dinov2-vit-g14"),
        "{err}"
    );
}

/// A DINOv2 preset runs the model `models fetch --checkpoint` cached, with
/// no --model: here the small random DINOv2 fixture stands for ViT-L/14 (the
/// entry's width is the fixture's; its outputs are checked against PyTorch
/// in `dinov2_convert.rs`).
#[test]
fn dinov2_preset_uses_the_cached_conversion() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let home = tempfile::tempdir().expect("tempdir");
    let prov = gen_metrics_artifacts::Provisioner::new(home.path())
        .offline(true)
        .quiet(true);
    let official = gen_metrics_artifacts::checkpoint("dinov2-vitl14").expect("entry");
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dinov2");
    let c = gen_metrics_artifacts::Checkpoint {
        output_dim: 24,
        num_heads: 2,
        ..*official
    };
    prov.install_checkpoint(&c, &fixtures.join("mlp.pth"))
        .expect("install");
    let (onnx, sha) = prov.checkpoint_onnx(&c).expect("convert");
    let mut opts = options(&lib, None);
    opts.provisioner = Some(prov);
    let mut spec = Preset::Dinov2VitL14.spec();
    spec.output_dim = 24;
    let enc = Encoder::new(spec, &opts).expect("encoder from the cache");
    assert_eq!(enc.model_path(), onnx.as_path());
    assert_eq!(enc.weights_sha256(), sha);
}

/// CLIP preset plumbing: shorter side to 224, center crop, CLIP mean/std.
/// A constant image stays constant, so every input value is
/// `(v/255 − mean)/std` (read back through a pixel-token model).
#[test]
fn clip_preset_preprocessing_is_exact_on_a_constant_image() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(tmp.path(), "clip.onnx", &tiny_onnx::pixel_tokens(224, 224));
    // The preset expects 512 features; the tiny model gives every input value.
    let mut spec = Preset::ClipVitB32.spec();
    spec.output_dim = 224 * 224 * 3;
    let mut enc = Encoder::new(spec, &options(&lib, Some(model))).expect("encoder");
    let rgb = [200u8, 100, 50];
    let got = enc
        .encode_u8_nhwc(constant_image(300, 400, rgb).view())
        .expect("features");
    for (i, v) in got.row(0).iter().enumerate() {
        let c = i % 3;
        let want = (f32::from(rgb[c]) / 255.0 - CLIP_MEAN[c]) / CLIP_STD[c];
        assert!(
            (v - want).abs() <= 1e-6,
            "value {i} (channel {c}): {v} vs {want}"
        );
    }
    assert_eq!(enc.identity().resize, "clean");
    assert_eq!(enc.identity().weights_sha256.len(), 64);
}

/// The center crop takes exactly torchvision's window: token 0 of a
/// pixel-token model is the crop's top-left pixel.
#[test]
fn center_crop_window_matches_torchvision() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(tmp.path(), "tokens.onnx", &tiny_onnx::pixel_tokens(8, 8));
    let mut sp = spec(
        "tokens",
        8,
        Crop::Center { resize_shorter: 8 },
        NormalizationSpec::Raw255,
        3,
    );
    sp.output = OutputSelect::Token(0);
    let mut enc = Encoder::new(sp, &options(&lib, Some(model))).expect("encoder");
    // 13x8: width is the shorter side (already 8, so no resize); top offset
    // round(2.5) = 2 (ties to even), left 0.
    let mut img = Array4::<u8>::zeros((1, 13, 8, 3));
    for (c, v) in [10u8, 20, 30].into_iter().enumerate() {
        img[[0, 2, 0, c]] = v;
    }
    let got = enc.encode_u8_nhwc(img.view()).expect("features");
    assert_eq!(got.row(0).to_vec(), vec![10.0, 20.0, 30.0]);
}

/// A cropping encoder's images are decoded, resized and cropped on the
/// source's producer thread ([`Encoder::preprocessing`]), written into the
/// extractor's buffers: the same inputs as [`Encoder::preprocess`] image by
/// image, for 8-bit and (new with the producer path) float sources.
#[test]
fn cropping_encoders_stream_through_the_producer_for_every_source_kind() {
    let Some((_tmp, mut enc)) = pixel_encoder(Crop::Center { resize_shorter: 11 }) else {
        return;
    };
    let imgs = Array4::from_shape_fn((7, 13, 10, 3), |(n, y, x, c)| {
        ((n * 41 + y * 17 + x * 9 + c * 80) % 256) as u8
    });
    // The network outputs its input pixels, so the features are the
    // preprocessed images, token-major.
    let tokens = |x: ndarray::Array3<f32>| -> Vec<f32> {
        x.permuted_axes([1, 2, 0]).iter().copied().collect()
    };
    let want: Vec<f32> = imgs
        .outer_iter()
        .flat_map(|im| tokens(enc.preprocess(im).expect("preprocess")))
        .collect();
    let src = ImageSource::from_u8_nhwc(imgs.clone()).expect("source");
    let got = enc
        .encode_source(src, ErrorPolicy::Fail, |_, _| {})
        .expect("u8 features");
    assert_eq!(got.features.iter().copied().collect::<Vec<_>>(), want);
    // Batches of 3: the two full ones ran from the ring without a copy.
    assert_eq!(enc.extractor_mut().batches_bound_in_place(), 2);

    let unit = imgs
        .mapv(|v| f32::from(v) / 255.0)
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned();
    let want: Vec<f32> = unit
        .outer_iter()
        .flat_map(|im| tokens(enc.preprocess_f32(im, ValueRange::Unit).expect("f32")))
        .collect();
    let src = ImageSource::from_f32_nchw(unit, ValueRange::Unit).expect("source");
    let got = enc
        .encode_source(src, ErrorPolicy::Fail, |_, _| {})
        .expect("float features with a crop");
    assert_eq!(got.features.iter().copied().collect::<Vec<_>>(), want);
}

/// In-memory batches larger than the encoder's batch size stream a batch at
/// a time (preprocessing a batch ahead on a producer thread): the rows are
/// those of batch-sized calls, and a bad image midway stops the call with
/// its error instead of hanging the producer.
#[test]
fn large_in_memory_batches_stream_and_stop_at_a_bad_image() {
    let Some((_tmp, mut enc)) = pixel_encoder(Crop::None) else {
        return;
    };
    assert_eq!(enc.batch_size(), 3);
    let imgs = Array4::from_shape_fn((11, 9, 12, 3), |(n, y, x, c)| {
        ((n * 23 + y * 5 + x * 11 + c * 90) % 256) as u8
    });
    let all = enc.encode_u8_nhwc(imgs.view()).expect("all at once");
    // 11 images in batches of 3: the three full batches ran from the
    // encoder's ring of host buffers, the last (2) was copied.
    assert_eq!(enc.extractor_mut().batches_bound_in_place(), 3);
    let mut parts = Vec::new();
    for chunk in imgs.axis_chunks_iter(ndarray::Axis(0), 3) {
        parts.push(enc.encode_u8_nhwc(chunk).expect("batch"));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    assert_eq!(
        all,
        ndarray::concatenate(ndarray::Axis(0), &views).expect("rows")
    );
    assert!(enc.encode_u8_nhwc(imgs.slice(s![..0, .., .., ..])).is_err());

    let mut unit = imgs
        .mapv(|v| f32::from(v) / 255.0)
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned();
    unit[[7, 1, 2, 3]] = f32::NAN;
    let err = enc
        .encode_f32_nchw(unit.view(), ValueRange::Unit)
        .expect_err("NaN in image 7");
    assert!(err.to_string().contains("non-finite"), "{err}");
    // The encoder is still usable after the stopped call.
    assert_eq!(enc.encode_u8_nhwc(imgs.view()).expect("again"), all);
}

#[test]
fn spec_file_with_relative_model_and_token_output() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    write_model(tmp.path(), "tokens.onnx", &tiny_onnx::pixel_tokens(4, 4));
    let spec_path = tmp.path().join("my-encoder.json");
    std::fs::write(
        &spec_path,
        r#"{ "id": "my-encoder", "model": "tokens.onnx", "input_size": [4, 4],
             "resize": "legacy-pytorch", "normalization": "unit",
             "output_dim": 3, "output": {"token": 5} }"#,
    )
    .expect("write spec");
    let mut enc = Encoder::from_name(spec_path.to_str().expect("utf-8"), &options(&lib, None))
        .expect("encoder");
    assert_eq!(enc.id(), "my-encoder");
    assert_eq!(enc.resize_mode(), ResizeMode::LegacyPytorch);
    let mut img = Array4::<u8>::zeros((2, 4, 4, 3));
    img[[1, 1, 1, 0]] = 255; // token 5 = pixel (1, 1)
    let got = enc.encode_u8_nhwc(img.view()).expect("features");
    assert_eq!(got.dim(), (2, 3));
    assert_eq!(got.row(0).to_vec(), vec![0.0, 0.0, 0.0]);
    assert_eq!(got.row(1).to_vec(), vec![1.0, 0.0, 0.0]);

    // Unknown fields are refused, as are unknown encoders.
    std::fs::write(&spec_path, r#"{ "id": "x", "input_size": [4, 4], "normalization": "unit", "output_dim": 3, "colour": 1 }"#)
        .expect("write spec");
    let err = Encoder::from_name(spec_path.to_str().expect("utf-8"), &options(&lib, None))
        .expect_err("unknown field");
    assert!(matches!(err, FeatureError::Json { .. }), "{err}");
    let err = Encoder::from_name("no-such-encoder", &options(&lib, None)).expect_err("unknown");
    assert!(err.to_string().contains("inception-v3-fid"), "{err}");
}

#[test]
fn model_and_spec_disagreements_are_errors() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(
        tmp.path(),
        "m8.onnx",
        &tiny_onnx::channel_mean_identity(8, 8),
    );
    // Input size.
    let err = Encoder::new(
        spec("big", 16, Crop::None, NormalizationSpec::Unit, 3),
        &options(&lib, Some(model.clone())),
    )
    .expect_err("size mismatch");
    assert!(matches!(err, FeatureError::Model { .. }), "{err}");
    // Output dimension.
    let mut enc = Encoder::new(
        spec("dim", 8, Crop::None, NormalizationSpec::Unit, 5),
        &options(&lib, Some(model.clone())),
    )
    .expect("encoder");
    let err = enc
        .encode_u8_nhwc(constant_image(8, 8, [1, 2, 3]).view())
        .expect_err("dimension");
    assert!(err.to_string().contains("expects 5"), "{err}");
    // Output name.
    let mut sp = spec("name", 8, Crop::None, NormalizationSpec::Unit, 3);
    sp.output_name = Some("logits".into());
    let err = Encoder::new(sp, &options(&lib, Some(model))).expect_err("no such output");
    assert!(
        err.to_string().contains("no output named `logits`"),
        "{err}"
    );
}

#[test]
fn non_finite_features_are_an_error() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(tmp.path(), "log.onnx", &tiny_onnx::log_mean(4, 4));
    let mut enc = Encoder::new(
        spec("log", 4, Crop::None, NormalizationSpec::Centered128, 3),
        &options(&lib, Some(model)),
    )
    .expect("encoder");
    // (0 - 128) / 128 = -1: log is NaN.
    let err = enc
        .encode_u8_nhwc(constant_image(4, 4, [0, 0, 0]).view())
        .expect_err("NaN");
    assert!(
        matches!(err, FeatureError::NonFinite { row: 0, col: 0, .. }),
        "{err}"
    );
}

#[test]
fn u8_f32_and_image_inputs_agree() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(
        tmp.path(),
        "mix.onnx",
        &tiny_onnx::channel_mean(16, 16, &[1., 2., 3., -1., 0.5, 0.25], 2),
    );
    let mut enc = Encoder::new(
        spec(
            "mix",
            16,
            Crop::None,
            NormalizationSpec::InceptionReference,
            2,
        ),
        &options(&lib, Some(model)),
    )
    .expect("encoder");
    let mut imgs = Array4::<u8>::zeros((5, 23, 31, 3));
    for ((n, y, x, c), v) in imgs.indexed_iter_mut() {
        *v = ((n * 37 + y * 7 + x * 3 + c * 11) % 256) as u8;
    }
    let a = enc.encode_u8_nhwc(imgs.view()).expect("u8");
    let f = imgs.mapv(f32::from).permuted_axes([0, 3, 1, 2]);
    let b = enc
        .encode_f32_nchw(f.view(), ValueRange::Byte)
        .expect("f32");
    let unit = f.mapv(|v| v / 255.0);
    let c = enc
        .encode_f32_nchw(unit.view(), ValueRange::Unit)
        .expect("unit");
    let rgb: Vec<image::RgbImage> = imgs
        .outer_iter()
        .map(|im| image::RgbImage::from_raw(31, 23, im.iter().copied().collect()).expect("rgb"))
        .collect();
    let d = enc.encode_images(&rgb).expect("images");
    assert_eq!(a, b);
    assert_eq!(a, d);
    let diff = (&a - &c).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(diff < 1e-5, "unit range differs by {diff}");
}

#[test]
fn folder_source_rows_follow_sorted_names_with_and_without_crop() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).expect("mkdir");
    let names = ["b.png", "a.png", "sub/c.png"];
    std::fs::create_dir(imgs.join("sub")).expect("mkdir");
    for (k, n) in names.iter().enumerate() {
        let v = (k as u8 + 1) * 60;
        image::RgbImage::from_pixel(12, 10, image::Rgb([v, 255 - v, v / 2]))
            .save(imgs.join(n))
            .expect("save png");
    }
    std::fs::write(imgs.join("broken.png"), b"not a png").expect("write");
    let model = write_model(
        tmp.path(),
        "m.onnx",
        &tiny_onnx::channel_mean_identity(8, 8),
    );
    for crop in [Crop::None, Crop::Center { resize_shorter: 9 }] {
        let mut enc = Encoder::new(
            spec("m", 8, crop, NormalizationSpec::Raw255, 3),
            &options(&lib, Some(model.clone())),
        )
        .expect("encoder");
        let src = ImageSource::open(&imgs).expect("source");
        let err = enc
            .encode_source(src, ErrorPolicy::Fail, |_, _| {})
            .expect_err("broken file fails");
        assert!(err.to_string().contains("broken.png"), "{err}");
        let src = ImageSource::open(&imgs).expect("source");
        let mut calls = Vec::new();
        let out = enc
            .encode_source(src, ErrorPolicy::Skip, |done, total| {
                calls.push((done, total))
            })
            .expect("features");
        assert_eq!(out.names, ["a.png", "b.png", "sub/c.png"], "{crop:?}");
        assert_eq!(out.skipped.len(), 1);
        assert_eq!(out.skipped[0].name, "broken.png");
        assert_eq!(calls.last(), Some(&(4, 4)));
        let files: Vec<PathBuf> = out.names.iter().map(|n| imgs.join(n)).collect();
        let direct = enc.encode_files(&files, |_| {}).expect("files");
        assert_eq!(out.features, direct, "{crop:?}");
        // Constant images: the means are the colours.
        let want = Array2::from_shape_vec(
            (3, 3),
            vec![120., 135., 60., 60., 195., 30., 180., 75., 90.],
        )
        .expect("shape");
        let diff = (&out.features - &want)
            .mapv(f32::abs)
            .fold(0.0f32, |m, &v| m.max(v));
        assert!(diff < 1e-3, "{crop:?}: {}", out.features);
    }
}

#[test]
fn extractor_checks_batches_and_batches_agree() {
    let Some((_tmp, mut ex)) = mean_extractor() else {
        return;
    };
    assert_eq!(ex.input_shape(), &[-1, 3, 4, 4]);
    assert_eq!(ex.output_name(), "out");
    let empty = Array4::<f32>::zeros((0, 3, 4, 4));
    assert!(matches!(
        ex.run(empty.view()),
        Err(FeatureError::InvalidInput { .. })
    ));
    let wrong = Array4::<f32>::zeros((1, 3, 5, 4));
    let err = ex.run(wrong.view()).expect_err("shape");
    assert!(err.to_string().contains("does not fit"), "{err}");
    let mut x = Array4::<f32>::zeros((7, 3, 4, 4));
    for ((n, c, y, xx), v) in x.indexed_iter_mut() {
        *v = (n * 100 + c * 10 + y + xx) as f32;
    }
    let all = ex.run(x.view()).expect("run");
    let batched = ex.run_batched(x.view(), 3).expect("batched");
    assert_eq!(all, batched);
    // A non-contiguous view is accepted.
    let flipped = x.slice(s![..;-1, .., .., ..]);
    let rev = ex.run(flipped).expect("reversed");
    assert_eq!(rev.row(0), all.row(6));
    assert!(ex.run_batched(x.view(), 0).is_err());
    // Every run above went through the IO binding (a reused batch buffer,
    // reallocated for each new batch shape; the values are checked against
    // TorchScript in inception_e2e).
    assert_eq!(ex.io_binding_unavailable(), None);
    assert!(ex.with_output("nope").is_err());
}

/// Batches written into the extractor's own buffers
/// ([`Extractor::batch_buffers`]) run without a copy and give the rows a
/// copied batch gives.
#[test]
fn batches_in_the_extractors_buffers_run_in_place() {
    let Some((_tmp, mut ex)) = mean_extractor() else {
        return;
    };
    assert!(ex.batch_buffers(0, 2).is_err());
    let ring = ex
        .batch_buffers(3, 3)
        .expect("buffers")
        .expect("a fixed size");
    let imgs = Array4::from_shape_fn((8, 6, 5, 3), |(n, y, x, c)| {
        ((n * 29 + y * 13 + x * 7 + c * 70) % 256) as u8
    });
    let spec = ResizeSpec::new(ResizeMode::Clean, (4, 4), Normalization::Centered128);
    let opts = BatchOptions::default().batch_size(3).prefetch(1);
    let batches = ImageSource::from_u8_nhwc(imgs)
        .expect("source")
        .into_batches_in(spec, opts, Some(ring))
        .expect("batches");
    let mut sizes = Vec::new();
    for b in batches {
        let b = b.expect("batch");
        let copied = ex.run(b.pixels()).expect("copied");
        let in_place = ex.run_batch(&b).expect("in place");
        assert_eq!(in_place, copied);
        sizes.push(b.pixels().len_of(ndarray::Axis(0)));
    }
    assert_eq!(sizes, [3, 3, 2]);
    // The two full batches were bound as they lay; the last (2 of 3) was
    // copied into the staging buffer.
    assert_eq!(ex.batches_bound_in_place(), 2);
    assert_eq!(ex.io_binding_unavailable(), None);
}

/// Regression (issue #12): `--threads 256` on 2 cores spun 256 intra-op
/// threads and did not finish 8 images in 120 s. The request is capped at
/// the available parallelism; a session built with it runs.
#[test]
fn intra_threads_are_capped_at_the_available_parallelism() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(RuntimeOptions::new().effective_intra_threads(), 0);
    assert_eq!(
        RuntimeOptions::new()
            .intra_threads(1)
            .effective_intra_threads(),
        1
    );
    assert_eq!(
        RuntimeOptions::new()
            .intra_threads(256)
            .effective_intra_threads(),
        cores.min(256)
    );
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(
        tmp.path(),
        "m.onnx",
        &tiny_onnx::channel_mean_identity(4, 4),
    );
    let opts = RuntimeOptions::new().intra_threads(256);
    let mut ex = Extractor::from_file(&model, &lib, &opts).expect("extractor");
    let out = ex
        .run(Array4::<f32>::ones((8, 3, 4, 4)).view())
        .expect("run");
    assert_eq!(out.nrows(), 8);
}

#[test]
fn cuda_request_falls_back_to_cpu_with_a_reason() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let model = write_model(
        tmp.path(),
        "m.onnx",
        &tiny_onnx::channel_mean_identity(4, 4),
    );
    let cuda = RuntimeOptions::new().device(Device::Cuda { device_id: 0 });
    // The CPU library has no CUDA execution provider (and without the `cuda`
    // feature it is not even tried): the session runs on the CPU and says why.
    let mut ex = Extractor::from_file(&model, &lib, &cuda).expect("fallback");
    assert_eq!(ex.device(), Device::Cpu);
    assert!(ex.fallback_reason().is_some());
    assert!(ex.run(Array4::<f32>::ones((1, 3, 4, 4)).view()).is_ok());
    let err = Extractor::from_file(&model, &lib, &cuda.require_device(true)).expect_err("required");
    assert!(err.to_string().contains("CUDA"), "{err}");
    assert_eq!(
        "cuda:1".parse::<Device>().expect("parse"),
        Device::Cuda { device_id: 1 }
    );
    assert!("tpu".parse::<Device>().is_err());
}

#[test]
fn a_second_library_in_one_process_is_refused() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    gen_metrics_features::extractor::init_runtime(&lib).expect("same library again");
    let tmp = tempfile::tempdir().expect("tempdir");
    let other = tmp.path().join("libonnxruntime.so.1.31.1");
    std::fs::copy(&lib, &other).expect("copy");
    let err = gen_metrics_features::extractor::init_runtime(&other).expect_err("other file");
    assert!(err.to_string().contains("one library per process"), "{err}");
}
