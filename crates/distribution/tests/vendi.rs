//! The Vendi score against the conformance corpus (`vendi_cosine_fake`,
//! `vendi_rbf_fake` with `params.vendi.rbf_gamma`), 1e-10 relative as the
//! corpus README advises (eigenvalues of a kernel matrix), plus analytic cases.

use gen_metrics_distribution::MetricError;
use gen_metrics_distribution::vendi::{Vendi, VendiKernel};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::{Array2, s};

const REL: f64 = 1e-10;

#[test]
fn cosine_and_rbf_match_every_case() {
    let (mut cos, mut rbf) = (0, 0);
    for name in Case::all_names() {
        let case = Case::load(&name);
        if let Some(want) = case.value("vendi_cosine_fake") {
            let fake = case.array2::<f32>("fake.npy");
            let out = Vendi::default().compute(fake.view()).unwrap();
            assert_close(&format!("{name} cosine"), out.score, want, REL, 0.0);
            if let Some(dgm) = case.diagnostic("vendi_cosine_fake_dgm_eval") {
                assert_close(
                    &format!("{name} cosine (dgm-eval)"),
                    out.score,
                    dgm,
                    REL,
                    0.0,
                );
            }
            cos += 1;
        }
        if let Some(want) = case.value("vendi_rbf_fake") {
            let gamma = case
                .param("/vendi/rbf_gamma")
                .and_then(|v| v.as_f64())
                .unwrap();
            let fake = case.array2::<f32>("fake.npy");
            let out = Vendi::default()
                .kernel(VendiKernel::Rbf { gamma })
                .compute(fake.view())
                .unwrap();
            assert_close(&format!("{name} rbf"), out.score, want, REL, 0.0);
            assert_eq!(out.kernel, "rbf");
            rbf += 1;
        }
    }
    assert!(cos >= 6 && rbf >= 6, "cosine {cos}, rbf {rbf}");
}

#[test]
fn both_cosine_routes_agree() {
    // n > D uses the D x D Gram; its first D rows (n <= D) the n x n kernel.
    let case = Case::load("clusters"); // D = 32
    let fake = case.array2::<f32>("fake.npy");
    let small = Vendi::default()
        .compute(fake.slice(s![..32, ..]))
        .unwrap()
        .score;
    let wide = Array2::from_shape_fn((32, 64), |(i, j)| if j < 32 { fake[[i, j]] } else { 0.0 });
    let via_gram = Vendi::default().compute(wide.view()).unwrap().score; // n = 32 <= D = 64
    assert_close("routes", small, via_gram, 1e-12, 0.0);
}

#[test]
fn analytic_values() {
    // n copies of one vector: one eigenvalue 1, score 1.
    let same = Array2::from_shape_fn((7, 5), |(_, j)| j as f32 + 1.0);
    assert_close(
        "copies",
        Vendi::default().compute(same.view()).unwrap().score,
        1.0,
        1e-12,
        0.0,
    );
    // Orthogonal rows: K = I, score n (also for the RBF kernel with a large gamma).
    let eye = Array2::from_shape_fn((6, 6), |(i, j)| if i == j { 3.0f32 } else { 0.0 });
    assert_close(
        "orthogonal",
        Vendi::default().compute(eye.view()).unwrap().score,
        6.0,
        1e-12,
        0.0,
    );
    let rbf = Vendi::default()
        .kernel(VendiKernel::Rbf { gamma: 50.0 })
        .compute(eye.view())
        .unwrap();
    assert_close("rbf far apart", rbf.score, 6.0, 1e-12, 0.0);
    // Two antipodal groups have |cos| = 1 but cos = -1: K has two blocks.
    let two = ndarray::array![[1.0f32, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]];
    // K/n eigenvalues: 1 and 0 (K = v vᵀ with v = (1, 1, -1, -1)): score 1.
    assert_close(
        "antipodal",
        Vendi::default().compute(two.view()).unwrap().score,
        1.0,
        1e-12,
        0.0,
    );
    // Order q: q = 0 counts the positive eigenvalues, q = inf uses the largest.
    let blocks = ndarray::array![[1.0f32, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]];
    // eigenvalues of K/4: 3/4, 1/4.
    let h1 = -(0.75f64 * 0.75f64.ln() + 0.25 * 0.25f64.ln());
    assert_close(
        "q=1",
        Vendi::default().compute(blocks.view()).unwrap().score,
        h1.exp(),
        1e-12,
        0.0,
    );
    assert_close(
        "q=0",
        Vendi::default()
            .order(0.0)
            .compute(blocks.view())
            .unwrap()
            .score,
        2.0,
        1e-12,
        0.0,
    );
    let q2 = 1.0 / (0.75f64 * 0.75 + 0.25 * 0.25);
    assert_close(
        "q=2",
        Vendi::default()
            .order(2.0)
            .compute(blocks.view())
            .unwrap()
            .score,
        q2,
        1e-12,
        0.0,
    );
    let qi = Vendi::default()
        .order(f64::INFINITY)
        .compute(blocks.view())
        .unwrap()
        .score;
    assert_close("q=inf", qi, 4.0 / 3.0, 1e-12, 0.0);
    // A single sample.
    let one = ndarray::array![[0.3f32, 0.4]];
    assert_close(
        "n=1",
        Vendi::default().compute(one.view()).unwrap().score,
        1.0,
        1e-12,
        0.0,
    );
}

#[test]
fn errors_not_panics() {
    let x = Array2::<f32>::from_shape_fn((4, 3), |(i, j)| (i + j) as f32);
    let empty = Array2::<f32>::zeros((0, 3));
    assert!(matches!(
        Vendi::default().compute(empty.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    let mut nan = x.clone();
    nan[[1, 1]] = f32::NAN;
    assert!(matches!(
        Vendi::default().compute(nan.view()),
        Err(MetricError::NonFinite { .. })
    ));
    for gamma in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let r = Vendi::default()
            .kernel(VendiKernel::Rbf { gamma })
            .compute(x.view());
        assert!(
            matches!(r, Err(MetricError::InvalidParameter { .. })),
            "gamma {gamma}"
        );
    }
    assert!(matches!(
        Vendi::default().order(-1.0).compute(x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    let no_cols = Array2::<f32>::zeros((3, 0));
    assert!(Vendi::default().compute(no_cols.view()).is_err());
}
