//! The in-process evaluator: streaming sides, metrics on demand, reset, merge
//! (images encoded by a tiny ONNX encoder, as in the features crate's tests).

#[path = "../../features/tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::tiny_onnx;
use gen_metrics_eval::EvalError;
use gen_metrics_eval::evaluator::{Evaluator, EvaluatorOptions, ImageBatch};
use gen_metrics_features::encoder::{
    Crop, Encoder, EncoderOptions, EncoderSpec, NormalizationSpec,
};
use gen_metrics_features::extractor::{OutputSelect, RuntimeOptions};
use gen_metrics_features::resize::ValueRange;
use gen_metrics_linalg::FrechetDistance;
use ndarray::{Array4, Axis};

/// Deterministic test numbers (SplitMix64), uniform in [0, 1).
struct SplitMix(u64);

impl SplitMix {
    fn seed_from_u64(seed: u64) -> Self {
        SplitMix(seed)
    }

    fn random<T: From<f32>>(&mut self) -> T {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        T::from((z >> 40) as f32 / (1u64 << 24) as f32)
    }
}

/// A 6-dimensional encoder on 8x8 inputs: channel means mixed by a fixed matrix.
fn encoder(dir: &Path, lib: &Path, weights_seed: f32) -> Encoder {
    // Generic weights with a clear response to overall brightness.
    let w: Vec<f32> = (0..18)
        .map(|i| {
            0.2 + ((i * 7 + weights_seed as usize) % 11) as f32 / 10.0
                - 0.4 * ((i % 3) as f32 - 1.0)
        })
        .collect();
    let model = dir.join(format!("enc{weights_seed}.onnx"));
    std::fs::write(&model, tiny_onnx::channel_mean(8, 8, &w, 6)).expect("write model");
    let spec = EncoderSpec {
        id: "tiny".into(),
        model: Some(model),
        input_size: [8, 8],
        resize: "clean".into(),
        crop: Crop::None,
        normalization: NormalizationSpec::SymmetricUnit,
        input_name: None,
        output_name: None,
        output_dim: 6,
        output: OutputSelect::Flatten,
        logits_output: None,
    };
    let options = EncoderOptions {
        runtime: RuntimeOptions::new().library(lib).intra_threads(1),
        batch_size: 16,
        provisioner: Some(common::test_provisioner().quiet(true)),
        ..EncoderOptions::default()
    };
    Encoder::new(spec, &options).expect("encoder")
}

/// Random images: per-image colour plus noise; `shift` moves the colours.
fn images(rng: &mut SplitMix, n: usize, shift: f32) -> Array4<u8> {
    let mut a = Array4::<u8>::zeros((n, 12, 10, 3));
    for mut img in a.outer_iter_mut() {
        let base: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        for ((_, _, c), v) in img.indexed_iter_mut() {
            let x = 255.0 * (0.5 * base[c] + 0.15 * rng.random::<f32>() + shift);
            *v = x.clamp(0.0, 255.0) as u8;
        }
    }
    a
}

fn options(metrics: &[&str]) -> EvaluatorOptions {
    EvaluatorOptions {
        metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
        ..EvaluatorOptions::default()
    }
}

fn real_stats(ev: &Evaluator) -> gen_metrics_linalg::GaussianStats {
    ev.state()
        .real
        .accumulator()
        .expect("rows")
        .finalize(1)
        .expect("stats")
}

#[test]
fn fid_matches_the_distance_between_all_features() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = SplitMix::seed_from_u64(7);
    let real = images(&mut rng, 40, 0.0);
    let fake = images(&mut rng, 30, 0.1);
    let mut ev = Evaluator::with_encoder(encoder(tmp.path(), &lib, 1.0), options(&["fid", "kid"]))
        .expect("evaluator");
    assert!(ev.keeps_rows(), "KID needs rows");
    for chunk in real.axis_chunks_iter(Axis(0), 16) {
        ev.update_real_images(ImageBatch::U8Nhwc(chunk))
            .expect("real");
    }
    // Generated images as floats in [-1, 1].
    let fake_f = fake
        .mapv(|v| f32::from(v) / 127.5 - 1.0)
        .permuted_axes([0, 3, 1, 2]);
    for chunk in fake_f.axis_chunks_iter(Axis(0), 7) {
        ev.update_fake_images(ImageBatch::F32Nchw(chunk, ValueRange::Symmetric))
            .expect("fake");
    }
    assert_eq!((ev.real_count(), ev.fake_count()), (40, 30));
    let fid = ev.value("fid").expect("fid");

    let rf = ev.real_rows();
    let gf = ev.fake_rows();
    assert_eq!(rf.dim(), (40, 6));
    let want = FrechetDistance::new()
        .between_features(rf.view(), gf.view())
        .expect("reference");
    assert!(
        (fid - want.value).abs() <= 1e-9 * want.value.abs().max(1.0),
        "{fid} vs {}",
        want.value
    );
    assert!(fid > 0.0);
    // KID on the kept rows equals KID of the features.
    use gen_metrics_distribution::TwoSampleMetric;
    let kid = gen_metrics_distribution::Kid::new()
        .full_set(true)
        .compute(rf.view(), gf.view())
        .expect("kid");
    assert_eq!(ev.value("kid_mean").expect("kid"), kid.mean);

    // Same images through the encoder directly.
    let mut enc = encoder(tmp.path(), &lib, 1.0);
    let direct = enc.encode_u8_nhwc(real.view()).expect("direct");
    assert_eq!(direct, rf);
}

#[test]
fn reset_fake_keeps_the_real_side() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = SplitMix::seed_from_u64(8);
    let real = images(&mut rng, 40, 0.0);
    let far = images(&mut rng, 40, 0.35);
    let near = images(&mut rng, 40, 0.0);
    let mut ev = Evaluator::with_encoder(encoder(tmp.path(), &lib, 2.0), options(&["fid"]))
        .expect("evaluator");
    assert!(!ev.keeps_rows(), "FID alone keeps statistics only");
    ev.update_real_images(ImageBatch::U8Nhwc(real.view()))
        .expect("real");
    ev.update_fake_images(ImageBatch::U8Nhwc(far.view()))
        .expect("far");
    let fid_far = ev.value("fid").expect("fid");
    ev.reset_fake();
    assert_eq!((ev.real_count(), ev.fake_count()), (40, 0));
    assert!(matches!(ev.value("fid"), Err(EvalError::Usage(_))));
    ev.update_fake_images(ImageBatch::U8Nhwc(near.view()))
        .expect("near");
    let fid_near = ev.value("fid").expect("fid");
    assert!(fid_near < fid_far, "near {fid_near} vs far {fid_far}");
    assert_eq!(
        ev.real_rows().nrows(),
        0,
        "rows kept without a metric that needs them"
    );
    ev.reset();
    assert_eq!(ev.real_count(), 0);
}

#[test]
fn merging_ranks_equals_one_evaluator() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = SplitMix::seed_from_u64(9);
    let real = images(&mut rng, 36, 0.0);
    let fake = images(&mut rng, 36, 0.05);
    let metrics = ["fid", "pr"];
    let mut whole = Evaluator::with_encoder(encoder(tmp.path(), &lib, 3.0), options(&metrics))
        .expect("evaluator");
    whole
        .update_real_images(ImageBatch::U8Nhwc(real.view()))
        .expect("real");
    whole
        .update_fake_images(ImageBatch::U8Nhwc(fake.view()))
        .expect("fake");

    let mut ranks: Vec<Evaluator> = (0..3)
        .map(|_| {
            Evaluator::with_encoder(encoder(tmp.path(), &lib, 3.0), options(&metrics))
                .expect("evaluator")
        })
        .collect();
    for (r, ev) in ranks.iter_mut().enumerate() {
        let s = r * 12..(r + 1) * 12;
        ev.update_real_images(ImageBatch::U8Nhwc(
            real.slice_axis(Axis(0), s.clone().into()),
        ))
        .expect("real shard");
        ev.update_fake_images(ImageBatch::U8Nhwc(fake.slice_axis(Axis(0), s.into())))
            .expect("fake shard");
    }
    let (first, rest) = ranks.split_at_mut(1);
    for other in rest.iter() {
        first[0].merge(other.state()).expect("merge");
    }
    let merged = &first[0];
    assert_eq!((merged.real_count(), merged.fake_count()), (36, 36));
    let a = whole.value("fid").expect("whole");
    let b = merged.value("fid").expect("merged");
    assert!((a - b).abs() <= 1e-9 * a.abs().max(1.0), "{a} vs {b}");
    let (rs, ms) = (real_stats(&whole), real_stats(merged));
    let dmean = (&rs.mean - &ms.mean)
        .mapv(f64::abs)
        .fold(0.0f64, |m, &v| m.max(v));
    let dcov = (&rs.cov - &ms.cov)
        .mapv(f64::abs)
        .fold(0.0f64, |m, &v| m.max(v));
    assert!(dmean < 1e-12 && dcov < 1e-12, "{dmean} {dcov}");
    // Kept rows are concatenated in merge order (rank 0 is the merged one),
    // so the k-NN metrics see the same rows as one evaluator.
    let kept = merged.real_rows();
    assert_eq!(kept.nrows(), 36);
    assert_eq!(kept.slice(ndarray::s![12..24, ..]), rest[0].real_rows());
    assert_eq!(
        merged.value("precision").expect("merged"),
        whole.value("precision").expect("whole")
    );
}

#[test]
fn reservoir_keeps_at_most_max_rows_and_fid_uses_every_row() {
    let mut capped = Evaluator::new(EvaluatorOptions {
        max_rows: Some(50),
        ..options(&["fid", "kid"])
    })
    .expect("evaluator");
    let mut full = Evaluator::new(options(&["fid"])).expect("evaluator");
    let mut rng = SplitMix::seed_from_u64(11);
    let rows = |rng: &mut SplitMix, n: usize, shift: f32| {
        ndarray::Array2::from_shape_fn((n, 4), |(_, j)| rng.random::<f32>() + shift * j as f32)
    };
    for _ in 0..4 {
        let (r, f) = (rows(&mut rng, 40, 0.0), rows(&mut rng, 40, 0.2));
        capped.update_real(r.view()).expect("real");
        capped.update_fake(f.view()).expect("fake");
        full.update_real(r.view()).expect("real");
        full.update_fake(f.view()).expect("fake");
    }
    assert_eq!(capped.real_rows().nrows(), 50);
    assert_eq!(capped.real_count(), 160);
    assert_eq!(
        capped.value("fid").expect("capped"),
        full.value("fid").expect("full")
    );
    // Merging two capped reservoirs keeps the cap.
    let other = capped.state().clone();
    capped.merge(&other).expect("merge");
    assert_eq!((capped.real_rows().nrows(), capped.real_count()), (50, 320));
}

#[test]
fn merging_states_of_different_encoders_is_refused() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut rng = SplitMix::seed_from_u64(10);
    let imgs = images(&mut rng, 4, 0.0);
    let mut a =
        Evaluator::with_encoder(encoder(tmp.path(), &lib, 4.0), options(&["fid"])).expect("a");
    let mut b =
        Evaluator::with_encoder(encoder(tmp.path(), &lib, 5.0), options(&["fid"])).expect("b");
    a.update_real_images(ImageBatch::U8Nhwc(imgs.view()))
        .expect("a");
    b.update_real_images(ImageBatch::U8Nhwc(imgs.view()))
        .expect("b");
    let err = a.merge(b.state()).expect_err("other weights");
    assert!(matches!(err, EvalError::Usage(_)), "{err}");
    assert_eq!(a.real_count(), 4, "a failed merge changed the state");
    // Features of the wrong width, or not finite, are refused and change nothing.
    let wrong = ndarray::Array2::<f32>::zeros((3, 5));
    assert!(a.update_fake(wrong.view()).is_err());
    let nan = ndarray::Array2::<f32>::from_elem((3, 6), f32::NAN);
    assert!(a.update_fake(nan.view()).is_err());
    assert_eq!(a.fake_count(), 0);
}

#[test]
fn unknown_or_unsupported_metrics_are_refused_up_front() {
    assert!(matches!(
        Evaluator::new(options(&["nope"])),
        Err(EvalError::UnknownMetric { .. })
    ));
    assert!(matches!(
        Evaluator::new(options(&["authpct"])),
        Err(EvalError::MissingInput { .. })
    ));
    assert!(Evaluator::new(options(&["all"])).is_err());
}
