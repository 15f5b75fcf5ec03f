//! Analytic and behavioural tests of the memorization tests on seeded
//! synthetic data. FLS has no conformance reference (the corpus README: the
//! original needs a CUDA run of an optimiser-path-dependent fit), so its tests
//! check properties that hold by construction.

use gen_metrics_memorization::MemorizationError;
use gen_metrics_memorization::authpct::AuthPct;
use gen_metrics_memorization::copy_detection::CopyDetection;
use gen_metrics_memorization::data_copying::{CellLabels, DataCopying};
use gen_metrics_memorization::fls::Fls;
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Standard normal by Box-Muller (keeps the dev-dependencies small).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>();
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// `n` rows of a `modes`-component Gaussian mixture in `d` dimensions
/// (unit covariance, centres drawn once from N(0, 3²) with `centre_seed`).
fn mixture(n: usize, d: usize, modes: usize, centre_seed: u64, seed: u64) -> Array2<f32> {
    let mut crng = ChaCha8Rng::seed_from_u64(centre_seed);
    let centres: Vec<Vec<f64>> = (0..modes)
        .map(|_| (0..d).map(|_| 3.0 * normal(&mut crng)).collect())
        .collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut x = Array2::<f32>::zeros((n, d));
    for i in 0..n {
        let c = &centres[i % modes];
        for j in 0..d {
            x[[i, j]] = (c[j] + normal(&mut rng)) as f32;
        }
    }
    x
}

/// `n` noisy copies (σ = `sigma`) of the first `n` rows of `src`.
fn copies(src: &Array2<f32>, n: usize, sigma: f64, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, src.ncols()), |(i, j)| {
        (f64::from(src[[i, j]]) + sigma * normal(&mut rng)) as f32
    })
}

#[test]
fn fls_identical_generated_and_baseline_sets_give_exactly_100() {
    let train = mixture(300, 6, 3, 1, 10);
    let base = mixture(300, 6, 3, 1, 11);
    let test = mixture(300, 6, 3, 1, 12);
    let out = Fls::default()
        .compute(train.view(), base.view(), test.view(), base.view())
        .unwrap();
    assert_eq!(out.gen_nll, out.baseline_nll);
    assert_eq!(out.fls, 100.0);
}

#[test]
fn fls_penalises_a_copying_model() {
    let train = mixture(400, 8, 4, 2, 20);
    let base = mixture(400, 8, 4, 2, 21);
    let test = mixture(400, 8, 4, 2, 22);
    let fresh = mixture(400, 8, 4, 2, 23);
    let copied = copies(&train, 400, 0.01, 24);
    let fls = Fls::default();
    let good = fls
        .compute(train.view(), base.view(), test.view(), fresh.view())
        .unwrap();
    let bad = fls
        .compute(train.view(), base.view(), test.view(), copied.view())
        .unwrap();
    eprintln!(
        "FLS fresh model {:.4} (gen NLL {:.4}, baseline {:.4}); copying model {:.4} (gen NLL {:.4}, train NLL {:.4} vs fresh {:.4})",
        good.fls,
        good.gen_nll,
        good.baseline_nll,
        bad.fls,
        bad.gen_nll,
        bad.gen_train_nll,
        good.gen_train_nll
    );
    // A fresh sample of the same distribution is as good as held-out data.
    assert!(
        (good.fls - 100.0).abs() < 10.0,
        "fresh model FLS {}",
        good.fls
    );
    // The copying model fits train far better but test far worse.
    assert!(bad.gen_train_nll < good.gen_train_nll);
    assert!(bad.gen_nll > good.gen_nll);
    assert!(
        bad.fls < 0.5 * good.fls,
        "copying FLS {} vs fresh {}",
        bad.fls,
        good.fls
    );
    // Deterministic.
    assert_eq!(
        fls.compute(train.view(), base.view(), test.view(), copied.view())
            .unwrap(),
        bad
    );

    let good_o = fls
        .compute_overfit(train.view(), base.view(), test.view(), fresh.view())
        .unwrap();
    let bad_o = fls
        .compute_overfit(train.view(), base.view(), test.view(), copied.view())
        .unwrap();
    eprintln!(
        "FLS overfit: fresh {:.2}, copying {:.2}",
        good_o.score, bad_o.score
    );
    assert!(
        good_o.score.abs() < 15.0,
        "fresh overfit score {}",
        good_o.score
    );
    assert!(bad_o.score > 45.0, "copying overfit score {}", bad_o.score);

    let split = fls
        .compute_split(train.view(), test.view(), fresh.view())
        .unwrap();
    assert_eq!(
        split,
        fls.compute_split(train.view(), test.view(), fresh.view())
            .unwrap()
    );
    assert_eq!(split.gen_log_sigmas.len(), 200, "r = min(400/2, 400, 400)");
}

#[test]
fn fls_rejects_bad_input() {
    let a = mixture(20, 4, 2, 3, 30);
    let b = mixture(20, 5, 2, 3, 31);
    let fls = Fls::default();
    assert!(matches!(
        fls.compute(a.view(), a.view(), a.view(), b.view()),
        Err(MemorizationError::DimensionMismatch { set: "gen", .. })
    ));
    let mut nan = a.clone();
    nan[[3, 1]] = f32::NAN;
    assert!(matches!(
        fls.compute(a.view(), a.view(), nan.view(), a.view()),
        Err(MemorizationError::NonFinite {
            set: "test",
            row: 3,
            col: 1,
            ..
        })
    ));
    assert!(
        fls.clone()
            .lr(-1.0)
            .compute(a.view(), a.view(), a.view(), a.view())
            .is_err()
    );
    let one = mixture(1, 4, 1, 3, 32);
    assert!(matches!(
        fls.compute(a.view(), a.view(), a.view(), one.view()),
        Err(MemorizationError::TooFewSamples { .. })
    ));
}

#[test]
fn ct_variants_and_errors() {
    let train = mixture(600, 10, 3, 4, 40);
    let test = mixture(300, 10, 3, 4, 41);
    let fresh = mixture(300, 10, 3, 4, 42);
    let copied = copies(&train, 300, 0.05, 43);
    let ct = DataCopying::default().seed(3);
    let good = ct.compute(train.view(), test.view(), fresh.view()).unwrap();
    let bad = ct
        .compute(train.view(), test.view(), copied.view())
        .unwrap();
    eprintln!("C_T fresh {:.3}, copying {:.3}", good.c_t, bad.c_t);
    assert_eq!(good.dim, 10, "no PCA for D <= 64");
    assert!(good.c_t.abs() < 3.0);
    assert!(bad.c_t < -10.0);
    // Test-split variant: no training set; fresh samples look like test data.
    let split = ct.compute_test_split(test.view(), fresh.view()).unwrap();
    assert_eq!(split.cells.train.len(), 150);
    assert_eq!(split.cells.test.len(), 150);
    assert!(split.c_t.abs() < 3.0, "test-split C_T {}", split.c_t);

    // Errors: a cell without test samples, wrong label lengths, no kept cell.
    let t = Array2::<f32>::from_shape_fn((6, 2), |(i, j)| (i * 2 + j) as f32);
    let cells = CellLabels {
        train: vec![0, 0, 0, 1, 1, 1],
        test: vec![0, 0],
        gen_cells: vec![0, 1],
    };
    assert!(matches!(
        DataCopying::default().tau_count(0.5).compute_with_cells(
            t.view(),
            t.slice_axis(ndarray::Axis(0), (0..2).into()),
            t.slice_axis(ndarray::Axis(0), (0..2).into()),
            &cells
        ),
        Err(MemorizationError::EmptyCell {
            cell: 1,
            set: "test",
            ..
        })
    ));
    let short = CellLabels {
        train: vec![0; 5],
        test: vec![0, 1],
        gen_cells: vec![0, 1],
    };
    assert!(matches!(
        DataCopying::default().tau_count(0.5).compute_with_cells(
            t.view(),
            t.view(),
            t.view(),
            &short
        ),
        Err(MemorizationError::LengthMismatch { .. })
    ));
    let bad_d = Array2::<f32>::zeros((6, 3));
    assert!(matches!(
        DataCopying::default().compute(t.view(), bad_d.view(), t.view()),
        Err(MemorizationError::DimensionMismatch { set: "test", .. })
    ));
}

/// Regression (issue #12): with fewer than 21 generated samples C_T's error
/// named `tau_count`, a parameter a command-line user cannot set; it now
/// says how many samples are needed.
#[test]
fn c_t_with_too_few_generated_samples_says_what_to_do() {
    let train = Array2::<f32>::from_shape_fn((30, 2), |(i, j)| (i * 3 + j * 7) as f32 % 5.0);
    let gen_feats = train.slice_axis(ndarray::Axis(0), (0..8).into());
    let err = DataCopying::default()
        .compute(train.view(), train.view(), gen_feats)
        .unwrap_err();
    assert_eq!(
        err,
        MemorizationError::TooFewSamples {
            metric: "C_T",
            set: "generated",
            needed: 21,
            got: 8
        }
    );
    assert_eq!(
        err.to_string(),
        "C_T: the generated set needs at least 21 samples, got 8"
    );
}

#[test]
fn authpct_and_copy_detection_edge_cases() {
    // A bitwise copy is never authentic (d1 = 0 is not > d2 >= 0).
    let train = mixture(50, 3, 2, 5, 50);
    let out = AuthPct.compute(train.view(), train.view()).unwrap();
    assert_eq!(out.n_authentic, 0);
    assert_eq!(out.authpct, 0.0);
    // Far-away samples are all authentic.
    let far = train.mapv(|v| v + 1000.0);
    assert_eq!(
        AuthPct.compute(train.view(), far.view()).unwrap().authpct,
        100.0
    );
    assert!(matches!(
        AuthPct.compute(
            train.slice_axis(ndarray::Axis(0), (0..1).into()),
            far.view()
        ),
        Err(MemorizationError::TooFewSamples { set: "train", .. })
    ));
    // Copy detection on exact copies: ratio 0, all flagged.
    let cd = CopyDetection::default()
        .compute(train.view(), train.view())
        .unwrap();
    assert_eq!(cd.copies.len(), 50);
    // Duplicated training rows: d2 = 0, ratio defined as 0, no NaN.
    let mut dup = train.clone();
    dup.row_mut(1).assign(&train.row(0));
    let cd = CopyDetection::default()
        .compute(
            dup.view(),
            train.slice_axis(ndarray::Axis(0), (0..1).into()),
        )
        .unwrap();
    assert_eq!(cd.ratio, vec![0.0]);
}
