//! Improved precision/recall against the conformance corpus: every case that
//! has `precision_nvlabs_k3` / `recall_nvlabs_k3` (and the per-model values of
//! `case_ranking`). These are ratios of counts, so they must be equal, not
//! close; `ties` and `identical` exercise `<=` on radii of exactly 0 and
//! probes lying exactly on spheres (their margins are 0 by construction).

use gen_metrics_distribution::precision_recall::PrecisionRecall;
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_linalg::Boundary;
use gen_metrics_testkit::Case;
use ndarray::{Array2, s};

#[test]
fn nvlabs_k3_matches_every_case_exactly() {
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let (Some(p), Some(r)) = (
            case.value("precision_nvlabs_k3"),
            case.value("recall_nvlabs_k3"),
        ) else {
            continue;
        };
        let real = case.array2::<f32>("real.npy");
        let fake = case.array2::<f32>("fake.npy");
        let out = PrecisionRecall::nvlabs()
            .compute(real.view(), fake.view())
            .unwrap();
        let margin = case.diagnostic("nvlabs_k3_recall_min_abs_rel_margin");
        assert_eq!(
            out.precision, p,
            "{name}: precision (counts {})",
            out.fake_in_real_manifold
        );
        assert_eq!(
            out.recall, r,
            "{name}: recall (counts {}, min margin {margin:?})",
            out.real_in_fake_manifold
        );
        assert_eq!(out.k, 3);
        assert!(out.closed_balls);
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} cases checked");
}

#[test]
fn nvlabs_k3_matches_every_ranking_model() {
    let case = Case::load("ranking");
    let real = case.array2::<f32>("real.npy");
    let mut checked = 0;
    for i in 0..8 {
        let (Some(p), Some(r)) = (
            case.value(&format!("model{i}_precision_nvlabs_k3")),
            case.value(&format!("model{i}_recall_nvlabs_k3")),
        ) else {
            continue;
        };
        let fake = case.array2::<f32>(&format!("fake_{i}.npy"));
        let out = PrecisionRecall::default()
            .compute(real.view(), fake.view())
            .unwrap();
        assert_eq!((out.precision, out.recall), (p, r), "model {i}");
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn prdc_convention_equals_prdc_keys() {
    // PrecisionRecall::prdc() is prdc's precision/recall (k = 5, strict <).
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let (Some(p), Some(r)) = (
            case.value("prdc_k5_precision"),
            case.value("prdc_k5_recall"),
        ) else {
            continue;
        };
        let real = case.array2::<f32>("real.npy");
        let fake = case.array2::<f32>("fake.npy");
        let out = PrecisionRecall::prdc()
            .compute(real.view(), fake.view())
            .unwrap();
        assert_eq!((out.precision, out.recall), (p, r), "{name}");
        checked += 1;
    }
    assert!(checked >= 7);
}

#[test]
fn closed_and_open_differ_on_ties() {
    // On the lattice case the two boundary rules give different counts with
    // the same k: the NVlabs value (closed) is not the prdc k=3 value (open).
    let case = Case::load("ties");
    let real = case.array2::<f32>("real.npy");
    let fake = case.array2::<f32>("fake.npy");
    let closed = PrecisionRecall::nvlabs()
        .compute(real.view(), fake.view())
        .unwrap();
    let open = PrecisionRecall::nvlabs()
        .boundary(Boundary::Open)
        .compute(real.view(), fake.view())
        .unwrap();
    assert_eq!(closed.precision, case.value("precision_nvlabs_k3").unwrap());
    assert_eq!(open.precision, case.value("prdc_k3_precision").unwrap());
    assert_eq!(open.recall, case.value("prdc_k3_recall").unwrap());
    assert!(closed.precision > open.precision);
}

#[test]
fn identical_sets_have_precision_and_recall_one() {
    let case = Case::load("identical");
    let real = case.array2::<f32>("real.npy");
    let out = PrecisionRecall::nvlabs()
        .compute(real.view(), real.view())
        .unwrap();
    assert_eq!((out.precision, out.recall), (1.0, 1.0));
}

#[test]
fn errors_not_panics() {
    let x = Array2::<f32>::from_shape_fn((10, 3), |(i, j)| (i * 3 + j) as f32);
    let y = Array2::<f32>::zeros((10, 4));
    let pr = PrecisionRecall::nvlabs();
    assert!(matches!(
        pr.compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        pr.compute(x.slice(s![..3, ..]), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(matches!(
        pr.compute(x.view(), x.slice(s![..0, ..])),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(matches!(
        pr.k(0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    assert!(pr.k(9).compute(x.view(), x.view()).is_ok());
    assert!(pr.k(10).compute(x.view(), x.view()).is_err());
    let mut nan = x.clone();
    nan[[4, 1]] = f32::NAN;
    assert!(matches!(
        pr.compute(x.view(), nan.view()),
        Err(MetricError::NonFinite { row: 4, col: 1, .. })
    ));
}
