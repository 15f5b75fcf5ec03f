//! DINOv2 checkpoint -> ONNX (gen_metrics_convert::vit) against PyTorch running
//! the official model code: two small random DINOv2 models saved with
//! `torch.save(model.state_dict())` (MLP FFN; SwiGLU FFN with register tokens),
//! converted in Rust, run by ONNX Runtime on three real images, compared with
//! `model(x)` (`x_norm_clstoken`) computed by facebookresearch/dinov2 at
//! b8931f7 (`tools/make_vit_fixtures.py`, fixtures in `tests/fixtures/dinov2`).

mod common;

use std::path::{Path, PathBuf};

use gen_metrics_convert::StateDict;
use gen_metrics_convert::vit::{Ffn, VitConfig, convert_dinov2};
use gen_metrics_features::encoder::{Encoder, EncoderOptions, Preset};
use gen_metrics_features::extractor::RuntimeOptions;
use ndarray::Array4;

const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dinov2")
}

/// The PNGs, `convert("RGB")`, centre 224x224 crop, `ToTensor`, `Normalize`
/// (f32: `(v / 255 - mean) / std`, as torchvision computes it).
fn inputs(names: &[String]) -> Option<Array4<f32>> {
    let dir = gen_metrics_testkit::shared_dir().join("models/images");
    let mut x = Array4::<f32>::zeros((names.len(), 3, 224, 224));
    for (n, name) in names.iter().enumerate() {
        let path = dir.join(name);
        if !path.is_file() {
            gen_metrics_testkit::missing_artifact(&format!("{}", path.display()));
            return None;
        }
        let img = image::open(&path).expect("decode").to_rgb8();
        let (w, h) = img.dimensions();
        let (left, top) = ((w - 224) / 2, (h - 224) / 2);
        for y in 0..224 {
            for xx in 0..224 {
                let p = img.get_pixel(left + xx, top + y);
                for c in 0..3 {
                    x[[n, c, y as usize, xx as usize]] =
                        (f32::from(p[c]) / 255.0 - MEAN[c]) / STD[c];
                }
            }
        }
    }
    Some(x)
}

#[test]
fn small_random_dinov2_models_match_pytorch() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let text = std::fs::read_to_string(fixtures().join("outputs.json")).expect("outputs.json");
    let reference: serde_json::Value = serde_json::from_str(&text).expect("json");
    let names: Vec<String> = reference["images"]
        .as_array()
        .expect("images")
        .iter()
        .map(|v| v.as_str().expect("name").to_string())
        .collect();
    let Some(x) = inputs(&names) else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    for (name, m) in reference["models"].as_object().expect("models") {
        let sd = StateDict::from_file(&fixtures().join(m["file"].as_str().expect("file")))
            .expect("read the checkpoint");
        assert_eq!(
            sd.parameter_count(),
            m["parameters"].as_u64().expect("parameters")
        );
        let c = &m["config"];
        let heads = c["num_heads"].as_u64().expect("heads") as usize;
        let cfg = VitConfig::from_state_dict(&sd, Some(heads), 224).expect("architecture");
        assert_eq!(cfg.embed_dim as u64, c["embed_dim"].as_u64().expect("D"));
        assert_eq!(cfg.depth as u64, c["depth"].as_u64().expect("depth"));
        assert_eq!(
            cfg.num_register_tokens as u64,
            c["num_register_tokens"].as_u64().expect("registers")
        );
        assert_eq!((cfg.patch_size, cfg.pos_grid, cfg.grid()), (14, 12, 16));
        assert!(cfg.layer_scale && cfg.biases);
        match (c["ffn_layer"].as_str(), cfg.ffn) {
            (Some("mlp"), Ffn::Mlp { hidden }) => assert_eq!(hidden, 4 * cfg.embed_dim),
            (Some("swiglufused"), Ffn::SwiGlu { hidden }) => {
                // SwiGLUFFNFused: (int(4 D * 2/3) + 7) // 8 * 8
                assert_eq!(hidden, (4 * cfg.embed_dim * 2 / 3).div_ceil(8) * 8)
            }
            other => panic!("{name}: {other:?}"),
        }
        assert_eq!(cfg.parameter_count(), sd.parameter_count());
        let onnx = convert_dinov2(&sd, &cfg, &[]).expect("convert");
        let path = tmp.path().join(format!("{name}.onnx"));
        std::fs::write(&path, onnx).expect("write");
        let mut spec = Preset::Dinov2VitL14.spec();
        spec.id = format!("dinov2-test-{name}");
        spec.output_dim = cfg.embed_dim;
        let opts = EncoderOptions {
            runtime: RuntimeOptions::new().library(&lib).intra_threads(1),
            model: Some(path),
            batch_size: 2,
            provisioner: Some(common::test_provisioner().quiet(true)),
            ..EncoderOptions::default()
        };
        let mut enc = Encoder::new(spec, &opts).expect("encoder");
        let got = enc.encode_preprocessed(x.view()).expect("run");
        let want = m["features"].as_array().expect("features");
        assert_eq!(got.nrows(), want.len());
        let mut worst = 0f64;
        for (i, row) in want.iter().enumerate() {
            let row = row.as_array().expect("row");
            assert_eq!(got.ncols(), row.len());
            for (j, w) in row.iter().enumerate() {
                let w = w.as_f64().expect("value");
                let d = (f64::from(got[[i, j]]) - w).abs();
                worst = worst.max(d);
                assert!(
                    d <= 1e-4,
                    "{name} image {i} feature {j}: {} vs {w}",
                    got[[i, j]]
                );
            }
        }
        eprintln!("{name}: max abs difference {worst:.2e}");
    }
}
