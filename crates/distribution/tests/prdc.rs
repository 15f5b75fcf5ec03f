//! prdc's precision, recall, density and coverage against the conformance
//! corpus (`prdc_k5_*`, `prdc_k3_*`, and the per-model `model{i}_prdc_k5_*` of
//! `case_ranking`). Ratios of counts: asserted equal, not close.

use gen_metrics_distribution::prdc::Prdc;
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_testkit::Case;
use ndarray::Array2;

#[test]
fn prdc_k5_and_k3_match_every_case_exactly() {
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        for k in [5usize, 3] {
            let key = |m: &str| case.value(&format!("prdc_k{k}_{m}"));
            let (Some(p), Some(r), Some(d), Some(c)) = (
                key("precision"),
                key("recall"),
                key("density"),
                key("coverage"),
            ) else {
                continue;
            };
            let real = case.array2::<f32>("real.npy");
            let fake = case.array2::<f32>("fake.npy");
            let out = Prdc::default()
                .k(k)
                .compute(real.view(), fake.view())
                .unwrap();
            assert_eq!(out.precision, p, "{name} k={k} precision");
            assert_eq!(out.recall, r, "{name} k={k} recall");
            assert_eq!(out.density, d, "{name} k={k} density");
            assert_eq!(out.coverage, c, "{name} k={k} coverage");
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} (case, k) pairs checked");
}

#[test]
fn prdc_k5_matches_every_ranking_model() {
    let case = Case::load("ranking");
    let real = case.array2::<f32>("real.npy");
    for i in 0..8 {
        let key = |m: &str| case.value(&format!("model{i}_prdc_k5_{m}")).unwrap();
        let fake = case.array2::<f32>(&format!("fake_{i}.npy"));
        let out = Prdc::default().compute(real.view(), fake.view()).unwrap();
        assert_eq!(
            (out.precision, out.recall, out.density, out.coverage),
            (
                key("precision"),
                key("recall"),
                key("density"),
                key("coverage")
            ),
            "model {i}"
        );
    }
}

#[test]
fn zero_radii_are_never_inside_with_strict_less_than() {
    // Five copies of each of 4 points: with k = 3 every radius is 0, and prdc's
    // strict rule puts nothing inside a ball of radius 0.
    let base = [[0.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
    let x = Array2::from_shape_fn((20, 2), |(i, j)| base[i % 4][j]);
    let out = Prdc::default().k(3).compute(x.view(), x.view()).unwrap();
    assert_eq!(
        (out.precision, out.recall, out.density, out.coverage),
        (0.0, 0.0, 0.0, 0.0)
    );
}

#[test]
fn errors_not_panics() {
    let x = Array2::<f32>::from_shape_fn((5, 3), |(i, j)| (i * 3 + j) as f32);
    assert!(matches!(
        Prdc::default().compute(x.view(), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(Prdc::default().k(4).compute(x.view(), x.view()).is_ok());
    assert!(matches!(
        Prdc::default().k(0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    let y = Array2::<f32>::zeros((6, 2));
    assert!(matches!(
        Prdc::default().k(2).compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    let mut inf = x.clone();
    inf[[0, 0]] = f32::INFINITY;
    assert!(matches!(
        Prdc::default().k(2).compute(inf.view(), x.view()),
        Err(MetricError::NonFinite { .. })
    ));
}
