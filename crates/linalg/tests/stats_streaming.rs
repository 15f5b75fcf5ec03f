//! Streaming Gaussian statistics: batches + merges equal the one-shot
//! statistics, the one-shot statistics equal a plain two-pass float64
//! computation (`np.cov`'s algorithm), the update is stable under a large
//! offset, and bad input is an error.

use gen_metrics_linalg::{GaussianAccumulator, GaussianStats, LinalgError};
use gen_metrics_testkit::Case;
use ndarray::{Array1, Array2, Axis, Slice};

/// Two-pass reference: mean, then Σ (x−μ)(x−μ)ᵀ / (n − ddof).
fn two_pass(x: &Array2<f64>, ddof: usize) -> (Array1<f64>, Array2<f64>) {
    let n = x.nrows();
    let mean = x.mean_axis(Axis(0)).unwrap();
    let xc = x - &mean;
    let cov = xc.t().dot(&xc) / (n - ddof) as f64;
    (mean, cov)
}

fn max_rel(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let scale = b.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    a.iter()
        .zip(b)
        .fold(0.0f64, |m, (p, q)| m.max((p - q).abs()))
        / scale
}

#[test]
fn batches_and_merges_equal_one_shot() {
    let case = Case::load("gauss_shift");
    let x: Array2<f32> = case.array2("real.npy");
    let one = GaussianStats::from_features(x.view()).unwrap();

    // Uneven batches into one accumulator.
    let mut acc = GaussianAccumulator::new(x.ncols()).unwrap();
    let mut r = 0;
    for (i, b) in [1usize, 7, 100, 3, 889, 1000].iter().enumerate() {
        let end = (r + b).min(x.nrows());
        acc.push(x.slice_axis(Axis(0), Slice::from(r..end)))
            .unwrap();
        r = end;
        assert_eq!(acc.count(), r, "after batch {i}");
    }
    assert_eq!(r, x.nrows());
    let batched = acc.finalize(1).unwrap();

    // Three shards merged (one of them empty).
    let mut a = GaussianAccumulator::new(x.ncols()).unwrap();
    let mut b = GaussianAccumulator::new(x.ncols()).unwrap();
    let mut c = GaussianAccumulator::new(x.ncols()).unwrap();
    let empty = GaussianAccumulator::new(x.ncols()).unwrap();
    a.push(x.slice_axis(Axis(0), Slice::from(0..500))).unwrap();
    b.push(x.slice_axis(Axis(0), Slice::from(500..1777)))
        .unwrap();
    c.push(x.slice_axis(Axis(0), Slice::from(1777..2000)))
        .unwrap();
    a.merge(&empty).unwrap();
    b.merge(&c).unwrap();
    a.merge(&b).unwrap();
    let merged = a.finalize(1).unwrap();
    let mut e = GaussianAccumulator::new(x.ncols()).unwrap();
    e.merge(&a).unwrap();
    assert_eq!(e.finalize(1).unwrap(), merged);

    let x64 = x.mapv(f64::from);
    let (m_ref, c_ref) = two_pass(&x64, 1);
    for (label, s) in [
        ("one-shot", &one),
        ("batched", &batched),
        ("merged", &merged),
    ] {
        assert_eq!(s.n, 2000);
        let em = (&s.mean - &m_ref)
            .iter()
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let ec = max_rel(&s.cov, &c_ref);
        eprintln!("{label}: max |mean err| {em:.3e}, max cov err / max|cov| {ec:.3e}");
        assert!(em < 1e-13, "{label} mean");
        assert!(ec < 1e-13, "{label} cov");
        // symmetric
        assert_eq!(s.cov, s.cov.t());
    }

    // ddof 0 = ddof 1 · (n−1)/n.
    let mle = acc.finalize(0).unwrap();
    let (_, c0) = two_pass(&x64, 0);
    assert!(max_rel(&mle.cov, &c0) < 1e-13);
}

#[test]
fn stable_under_a_large_offset() {
    // Variance 1 around a mean of 1e7: the naive E[x²] − E[x]² formula loses
    // every digit here; the centred batch + Chan update does not.
    let n = 3000;
    let x = Array2::from_shape_fn((n, 3), |(i, j)| {
        1.0e7 + ((i * 37 + j * 11) % 101) as f64 / 50.0 - 1.0
    });
    let (_, c_ref) = two_pass(&x, 1);
    let mut acc = GaussianAccumulator::new(3).unwrap();
    for chunk in x.axis_chunks_iter(Axis(0), 128) {
        acc.push(chunk).unwrap();
    }
    let s = acc.finalize(1).unwrap();
    assert!(
        max_rel(&s.cov, &c_ref) < 1e-10,
        "{}",
        max_rel(&s.cov, &c_ref)
    );
}

#[test]
fn f32_and_f64_inputs_agree() {
    let x = Array2::from_shape_fn((50, 4), |(i, j)| ((i * 13 + j * 7) % 17) as f32 * 0.25);
    let a = GaussianStats::from_features(x.view()).unwrap();
    let b = GaussianStats::from_features(x.mapv(f64::from).view()).unwrap();
    assert_eq!(a, b);
}

#[test]
fn errors() {
    assert!(matches!(
        GaussianAccumulator::new(0),
        Err(LinalgError::InvalidParameter(_))
    ));
    let mut acc = GaussianAccumulator::new(3).unwrap();
    // empty set / one row
    assert!(matches!(
        acc.finalize(1),
        Err(LinalgError::TooFewRows {
            needed: 2,
            got: 0,
            ..
        })
    ));
    acc.push(Array2::<f32>::zeros((0, 3)).view()).unwrap();
    acc.push(Array2::<f32>::ones((1, 3)).view()).unwrap();
    assert!(matches!(
        acc.finalize(1),
        Err(LinalgError::TooFewRows {
            needed: 2,
            got: 1,
            ..
        })
    ));
    assert!(acc.finalize(0).is_ok());
    // dimension mismatch
    assert!(matches!(
        acc.push(Array2::<f32>::zeros((2, 4)).view()),
        Err(LinalgError::DimensionMismatch {
            left: 3,
            right: 4,
            ..
        })
    ));
    let other = GaussianAccumulator::new(4).unwrap();
    assert!(matches!(
        acc.merge(&other),
        Err(LinalgError::DimensionMismatch { .. })
    ));
    // NaN / Inf rows: reported with their position, state unchanged
    let mut bad = Array2::<f32>::zeros((5, 3));
    bad[[3, 1]] = f32::NAN;
    assert!(matches!(
        acc.push(bad.view()),
        Err(LinalgError::NonFinite { row: 3, col: 1, .. })
    ));
    bad[[3, 1]] = f32::NEG_INFINITY;
    assert!(matches!(
        acc.push(bad.view()),
        Err(LinalgError::NonFinite { row: 3, col: 1, .. })
    ));
    assert_eq!(acc.count(), 1);
    assert!(GaussianStats::from_features(Array2::<f64>::zeros((1, 2)).view()).is_err());
    assert!(GaussianStats::from_features(Array2::<f64>::zeros((5, 0)).view()).is_err());
    // hand-built statistics are validated
    assert!(GaussianStats::new(Array1::zeros(2), Array2::zeros((2, 3)), 5).is_err());
    assert!(
        GaussianStats::new(
            Array1::from_vec(vec![0.0, f64::NAN]),
            Array2::zeros((2, 2)),
            5
        )
        .is_err()
    );
}
