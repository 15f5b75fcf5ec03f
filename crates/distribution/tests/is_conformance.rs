//! Inception Score and IS∞ against every case with logits (`is_logits`):
//! torch-fidelity without shuffle (mean, std, split scores), its default
//! shuffle replayed from `is_tfid_shuffle_perm.npy`, torchmetrics' chunks with
//! ddof 1, Chong & Forsyth's one-split IS and IS∞ replayed from
//! `isinf_perm.npy`. README tolerance: IS ~1e-13 relative.

use gen_metrics_distribution::MetricError;
use gen_metrics_distribution::inception_score::{
    InceptionScore, IsConvention, IsInfinity, IsOrder,
};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

const REL: f64 = 1e-13;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

fn check(label: &str, got: f64, want: f64) {
    assert_close(label, got, want, REL, 0.0);
    eprintln!("{label}: rel err {:.3e}", rel(got, want));
}

#[test]
fn inception_score_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        if !case.has("logits.npy") {
            continue;
        }
        let logits: Array2<f32> = case.array2("logits.npy");
        let splits = case
            .param("/is/splits")
            .and_then(|v| v.as_u64())
            .unwrap_or(10) as usize;

        if let Some(want) = case.value("is_torch_fidelity_noshuffle_mean") {
            let out = InceptionScore::new()
                .splits(splits)
                .compute(logits.view())
                .unwrap();
            check(
                &format!("{name} is_torch_fidelity_noshuffle_mean"),
                out.mean,
                want,
            );
            check(
                &format!("{name} is_torch_fidelity_noshuffle_std"),
                out.std,
                case.value("is_torch_fidelity_noshuffle_std").unwrap(),
            );
            if let Some(ps) = case
                .arrays("/is_torch_fidelity_noshuffle_split_scores")
                .and_then(|v| v.as_array())
            {
                assert_eq!(ps.len(), out.split_scores.len());
                for (k, (g, w)) in out.split_scores.iter().zip(ps).enumerate() {
                    assert_close(
                        &format!("{name} split {k}"),
                        *g,
                        w.as_f64().unwrap(),
                        REL,
                        0.0,
                    );
                }
            }
            seen += 1;
        }
        if let Some(want) = case.value("is_torch_fidelity_default_mean") {
            let perm: Vec<usize> = case
                .array1::<u16>("is_tfid_shuffle_perm.npy")
                .iter()
                .map(|&v| usize::from(v))
                .collect();
            let out = InceptionScore::new()
                .splits(splits)
                .order(IsOrder::Permutation(perm))
                .compute(logits.view())
                .unwrap();
            check(
                &format!("{name} is_torch_fidelity_default_mean"),
                out.mean,
                want,
            );
            check(
                &format!("{name} is_torch_fidelity_default_std"),
                out.std,
                case.value("is_torch_fidelity_default_std").unwrap(),
            );
            seen += 1;
        }
        if let Some(want) = case.value("is_torchmetrics_noshuffle_mean") {
            let out = InceptionScore::new()
                .splits(splits)
                .convention(IsConvention::TorchMetrics)
                .compute(logits.view())
                .unwrap();
            check(
                &format!("{name} is_torchmetrics_noshuffle_mean"),
                out.mean,
                want,
            );
            check(
                &format!("{name} is_torchmetrics_noshuffle_std"),
                out.std,
                case.value("is_torchmetrics_noshuffle_std").unwrap(),
            );
            seen += 1;
        }
        if let Some(want) = case.value("is_chong_full_1split") {
            let out = InceptionScore::new()
                .splits(1)
                .compute(logits.view())
                .unwrap();
            check(&format!("{name} is_chong_full_1split"), out.mean, want);
            seen += 1;
        }
        if let Some(want) = case.value("is_infinity_chong") {
            let perm: Array2<usize> = case.array2::<u16>("isinf_perm.npy").mapv(usize::from);
            let min_fake = case
                .param("/is_infinity/min_fake")
                .and_then(|v| v.as_u64())
                .unwrap() as usize;
            let num = case
                .param("/is_infinity/num_points")
                .and_then(|v| v.as_u64())
                .unwrap() as usize;
            let out = IsInfinity::new()
                .min_fake(min_fake)
                .num_points(num)
                .compute_with_orders(logits.view(), perm.view())
                .unwrap();
            check(&format!("{name} is_infinity_chong"), out.value, want);
            let pts = case
                .arrays("/is_infinity_points")
                .and_then(|v| v.as_array())
                .unwrap();
            let mut worst: f64 = 0.0;
            for ((n, v), p) in out.points.iter().zip(pts) {
                assert_eq!(*n as u64, p[0].as_u64().unwrap());
                let w = p[1].as_f64().unwrap();
                assert_close(&format!("{name} IS_{n}"), *v, w, REL, 0.0);
                worst = worst.max(rel(*v, w));
            }
            eprintln!("{name} is_infinity points: worst rel err {worst:.3e}");
            if let Some(cf) = case.diagnostic("is_infinity_ols_closed_form") {
                assert_close("closed form", out.value, cf, REL, 0.0);
            }
            seen += 1;
        }
    }
    assert!(seen >= 5, "only {seen} IS checks ran");
}

#[test]
fn seeded_modes_are_deterministic() {
    let case = Case::load("is_logits");
    let logits: Array2<f32> = case.array2("logits.npy");
    let a = InceptionScore::new()
        .order(IsOrder::Seeded(3))
        .compute(logits.view())
        .unwrap();
    let b = InceptionScore::new()
        .order(IsOrder::Seeded(3))
        .compute(logits.view())
        .unwrap();
    assert_eq!(a, b);
    let c = InceptionScore::new()
        .order(IsOrder::Seeded(4))
        .compute(logits.view())
        .unwrap();
    assert_ne!(a.split_scores, c.split_scores);
    let i1 = IsInfinity::new()
        .min_fake(400)
        .seed(9)
        .compute(logits.view())
        .unwrap();
    let i2 = IsInfinity::new()
        .min_fake(400)
        .seed(9)
        .compute(logits.view())
        .unwrap();
    assert_eq!(i1, i2);
    // The last point is the full set: Chong's one-split IS.
    assert_close(
        "IS_N at N",
        i1.points[14].1,
        case.value("is_chong_full_1split").unwrap(),
        REL,
        0.0,
    );
}

#[test]
fn is_errors() {
    let empty = Array2::<f32>::zeros((0, 5));
    assert!(matches!(
        InceptionScore::new().compute(empty.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    let few = Array2::<f32>::zeros((5, 5));
    assert!(matches!(
        InceptionScore::new().compute(few.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(IsInfinity::new().compute(few.view()).is_err()); // min_fake 5000
    let mut nan = Array2::<f32>::zeros((20, 5));
    nan[[7, 3]] = f32::NAN;
    assert!(matches!(
        InceptionScore::new().compute(nan.view()),
        Err(MetricError::NonFinite { row: 7, col: 3, .. })
    ));
    assert!(
        InceptionScore::new()
            .splits(1)
            .order(IsOrder::Permutation(vec![0; 20]))
            .compute(Array2::<f32>::zeros((20, 5)).view())
            .is_err()
    );
}
