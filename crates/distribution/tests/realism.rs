//! Realism scores against the conformance corpus: kynkaat's
//! `realism_nvlabs_{mean,median,min,max}` and the per-sample
//! `realism_nvlabs.npy` of every case that has them, and dgm-eval's
//! `realism_dgm_eval_k5_mean` where it is finite (it is omitted, being +inf
//! or NaN in the reference, for `identical` and `ties`; there we must report
//! it, not return a number).
//!
//! Tolerance: 1e-12 relative. The references use exact float64 distances,
//! as we do; only the summation order of the squared differences differs
//! (about 1e-16 relative per distance, observed ≤ 5e-15 on the scores).

use gen_metrics_distribution::MetricError;
use gen_metrics_distribution::realism::{Realism, RealismDgmEval, realism_dgm_eval_k5_mean};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::{Array2, s};

const REL: f64 = 1e-12;

#[test]
fn kynkaat_realism_matches_every_case() {
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let Some(mean) = case.value("realism_nvlabs_mean") else {
            continue;
        };
        let real = case.array2::<f32>("real.npy");
        let fake = case.array2::<f32>("fake.npy");
        let out = Realism::default()
            .compute(real.view(), fake.view())
            .unwrap();
        assert_close(&format!("{name} mean"), out.mean, mean, REL, 0.0);
        for (key, got) in [("median", out.median), ("min", out.min), ("max", out.max)] {
            let want = case.value(&format!("realism_nvlabs_{key}")).unwrap();
            assert_close(&format!("{name} {key}"), got, want, REL, 0.0);
        }
        let per = case.array1::<f64>("realism_nvlabs.npy");
        assert_eq!(per.len(), out.scores.len());
        for (i, (&got, &want)) in out.scores.iter().zip(per.iter()).enumerate() {
            assert_close(&format!("{name} sample {i}"), got, want, REL, 0.0);
        }
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} cases checked");
}

#[test]
fn ties_realism_is_zero_because_the_clamp_drops_every_ball() {
    // More than half the k=3 radii are exactly 0, so the 50th percentile is 0
    // and every positive radius is dropped: every score is 0.
    let case = Case::load("ties");
    let out = Realism::default()
        .compute(
            case.array2::<f32>("real.npy").view(),
            case.array2::<f32>("fake.npy").view(),
        )
        .unwrap();
    assert!(out.scores.iter().all(|&v| v == 0.0));
    assert_eq!(out.kept_real_balls, 0);
}

#[test]
fn dgm_eval_realism_matches_where_finite_and_is_reported_where_not() {
    let (mut finite, mut reported) = (0, 0);
    for name in Case::all_names() {
        let case = Case::load(&name);
        if !(case.has("real.npy") && case.has("fake.npy"))
            || case.value("realism_nvlabs_mean").is_none()
        {
            continue;
        }
        let real = case.array2::<f32>("real.npy");
        let fake = case.array2::<f32>("fake.npy");
        let out = RealismDgmEval::default()
            .compute(real.view(), fake.view())
            .unwrap();
        match case.value("realism_dgm_eval_k5_mean") {
            Some(want) => {
                assert_close(
                    &format!("{name} dgm-eval mean"),
                    out.mean.unwrap(),
                    want,
                    REL,
                    0.0,
                );
                assert_close(
                    &name,
                    realism_dgm_eval_k5_mean(real.view(), fake.view()).unwrap(),
                    want,
                    REL,
                    0.0,
                );
                assert_eq!((out.infinite_samples, out.undefined_samples), (0, 0));
                assert!(out.scores.iter().all(Option::is_some));
                finite += 1;
            }
            None => {
                // The reference is +inf (identical) or NaN (ties): no number comes out.
                assert!(out.mean.is_none(), "{name}");
                assert!(out.infinite_samples + out.undefined_samples > 0, "{name}");
                assert_eq!(
                    out.scores.iter().filter(|v| v.is_none()).count(),
                    out.infinite_samples + out.undefined_samples
                );
                assert!(matches!(
                    realism_dgm_eval_k5_mean(real.view(), fake.view()),
                    Err(MetricError::Numerical { .. })
                ));
                reported += 1;
            }
        }
    }
    assert!(
        finite >= 5 && reported >= 2,
        "finite {finite}, reported {reported}"
    );
}

#[test]
fn dgm_eval_counts_on_identical_and_ties() {
    // identical: every fake equals its real twin; the half of the real samples
    // with radius below the median make their twins +inf. ties: some fakes
    // equal a kept real of radius 0 (0/0, NaN in numpy), others one of positive radius.
    let case = Case::load("identical");
    let x = case.array2::<f32>("real.npy");
    let out = RealismDgmEval::default()
        .compute(x.view(), case.array2::<f32>("fake.npy").view())
        .unwrap();
    assert_eq!(out.infinite_samples, out.kept_real_balls);
    assert_eq!(out.undefined_samples, 0);
    let case = Case::load("ties");
    let out = RealismDgmEval::default()
        .compute(
            case.array2::<f32>("real.npy").view(),
            case.array2::<f32>("fake.npy").view(),
        )
        .unwrap();
    assert!(out.infinite_samples > 0 && out.undefined_samples > 0);
}

#[test]
fn analytic_realism_on_a_line() {
    // Real points 0, 1, 2, ..., 9 on a line (k = 1): every radius is 1, the
    // median is 1, nothing is dropped; a fake at 4.5 is at distance 0.5 from
    // two centres: R = 1 / (0.25 + 1e-5).
    let real = Array2::from_shape_fn((10, 1), |(i, _)| i as f32);
    let fake = ndarray::array![[4.5f32], [4.0]];
    let out = Realism::default()
        .k(1)
        .compute(real.view(), fake.view())
        .unwrap();
    assert_eq!(out.scores[0], 1.0 / (0.25 + 1e-5));
    assert_eq!(out.scores[1], 1.0 / 1e-5);
    assert_eq!(out.kept_real_balls, 10);
}

#[test]
fn errors_not_panics() {
    let x = Array2::<f32>::from_shape_fn((8, 3), |(i, j)| ((i * 7 + j * 3) % 5) as f32);
    let r = Realism::default();
    assert!(matches!(
        r.compute(x.slice(s![..3, ..]), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(matches!(
        r.compute(x.view(), x.slice(s![..0, ..])),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(r.compute(x.view(), x.slice(s![..1, ..])).is_ok());
    assert!(matches!(
        r.k(0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    assert!(matches!(
        r.eps(0.0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    assert!(matches!(
        r.clamp_percentile(101.0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    let y = Array2::<f32>::zeros((8, 2));
    assert!(matches!(
        r.compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    let mut nan = x.clone();
    nan[[2, 2]] = f32::NAN;
    assert!(matches!(
        r.compute(nan.view(), x.view()),
        Err(MetricError::NonFinite { .. })
    ));
    assert!(matches!(
        RealismDgmEval::default().compute(x.view(), nan.view()),
        Err(MetricError::NonFinite { .. })
    ));
    // All radii equal: nothing is strictly below the median.
    let line = Array2::from_shape_fn((10, 1), |(i, _)| i as f32);
    assert!(matches!(
        RealismDgmEval::default()
            .k(1)
            .compute(line.view(), line.view()),
        Err(MetricError::Numerical { .. })
    ));
}
