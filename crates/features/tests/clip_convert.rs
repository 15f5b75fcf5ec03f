//! OpenAI CLIP TorchScript archive -> ONNX (gen_metrics_convert::clip) against
//! PyTorch running the official model code: a small random CLIP saved as the
//! official files are (a `torch.jit` archive of the whole model, float16
//! weights), its image encoder converted in Rust, run by ONNX Runtime on three
//! real images, compared with `encode_image` computed by openai/CLIP at
//! d05afc4 (`tools/make_clip_fixtures.py`, fixtures in `tests/fixtures/clip`).

mod common;

use std::path::{Path, PathBuf};

use gen_metrics_convert::StateDict;
use gen_metrics_convert::clip::{ClipVisionConfig, convert_clip_visual};
use gen_metrics_features::encoder::{Encoder, EncoderOptions, Preset};
use gen_metrics_features::extractor::RuntimeOptions;
use ndarray::Array4;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip")
}

/// The PNGs, `convert("RGB")`, centre `size` crop, `ToTensor`, `Normalize`
/// (f32: `(v / 255 - mean) / std`, as torchvision computes it).
fn inputs(names: &[String], size: u32, mean: [f32; 3], std: [f32; 3]) -> Option<Array4<f32>> {
    let dir = gen_metrics_testkit::shared_dir().join("models/images");
    let s = size as usize;
    let mut x = Array4::<f32>::zeros((names.len(), 3, s, s));
    for (n, name) in names.iter().enumerate() {
        let path = dir.join(name);
        if !path.is_file() {
            gen_metrics_testkit::missing_artifact(&format!("{}", path.display()));
            return None;
        }
        let img = image::open(&path).expect("decode").to_rgb8();
        let (w, h) = img.dimensions();
        let (left, top) = ((w - size) / 2, (h - size) / 2);
        for y in 0..size {
            for xx in 0..size {
                let p = img.get_pixel(left + xx, top + y);
                for c in 0..3 {
                    x[[n, c, y as usize, xx as usize]] =
                        (f32::from(p[c]) / 255.0 - mean[c]) / std[c];
                }
            }
        }
    }
    Some(x)
}

#[test]
fn small_random_clip_matches_pytorch() {
    let text = std::fs::read_to_string(fixtures().join("outputs.json")).expect("outputs.json");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("json");
    let file = fixtures().join(reference["file"].as_str().expect("file"));
    let sd = StateDict::from_torchscript_file(&file).expect("read the archive");
    let v = &reference["visual"];
    let heads = v["heads"].as_u64().expect("heads") as usize;
    let cfg = ClipVisionConfig::from_state_dict(&sd, Some(heads)).expect("architecture");
    assert_eq!(
        cfg,
        ClipVisionConfig {
            width: v["width"].as_u64().unwrap() as usize,
            layers: v["layers"].as_u64().unwrap() as usize,
            heads,
            patch_size: v["patch_size"].as_u64().unwrap() as usize,
            image_size: v["input_resolution"].as_u64().unwrap() as usize,
            output_dim: v["output_dim"].as_u64().unwrap() as usize,
        }
    );
    assert_eq!(
        cfg.parameter_count(),
        reference["visual_parameters"].as_u64().expect("count")
    );
    // The default head count is the official width / 64: not this model's.
    assert!(ClipVisionConfig::from_state_dict(&sd, None).is_err());
    let onnx = convert_clip_visual(&sd, &cfg, &[]).expect("convert");

    let Some(lib) = common::runtime_library() else {
        return;
    };
    let names: Vec<String> = reference["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect();
    let f3 = |k: &str| -> [f32; 3] {
        let a = reference[k].as_array().expect(k);
        [0, 1, 2].map(|i| a[i].as_f64().expect("value") as f32)
    };
    let Some(x) = inputs(&names, cfg.image_size as u32, f3("mean"), f3("std")) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("clip.onnx");
    std::fs::write(&path, onnx).expect("write");
    let mut spec = Preset::ClipVitB32.spec();
    spec.id = "clip-test".into();
    spec.input_size = [cfg.image_size, cfg.image_size];
    spec.crop = gen_metrics_features::encoder::Crop::None;
    spec.output_dim = cfg.output_dim;
    let opts = EncoderOptions {
        runtime: RuntimeOptions::new().library(&lib).intra_threads(1),
        model: Some(path),
        batch_size: 2,
        provisioner: Some(common::test_provisioner().quiet(true)),
        ..EncoderOptions::default()
    };
    let mut enc = Encoder::new(spec, &opts).expect("encoder");
    let got = enc.encode_preprocessed(x.view()).expect("run");
    let want = reference["features"].as_array().expect("features");
    assert_eq!(got.nrows(), want.len());
    let mut worst = 0f64;
    for (i, row) in want.iter().enumerate() {
        let row = row.as_array().expect("row");
        assert_eq!(got.ncols(), row.len());
        for (j, w) in row.iter().enumerate() {
            let w = w.as_f64().expect("value");
            let d = (f64::from(got[[i, j]]) - w).abs();
            worst = worst.max(d);
            assert!(d <= 1e-4, "image {i} feature {j}: {} vs {w}", got[[i, j]]);
        }
    }
    eprintln!("clip: max abs difference {worst:.2e}");
}
