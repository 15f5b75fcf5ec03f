//! Subsampling intervals (half-splits and delete-d subsamples): the variance
//! formula on a linear statistic, coverage
//! on a mean difference, the jackknife bias of a 1/N-biased statistic,
//! determinism (seed, thread count), several keys at once, and errors.
//! (Coverage for FID, KID and the k-NN metrics: `examples/coverage.rs`.)

use gen_metrics_ranking::RankingError;
use gen_metrics_ranking::interval::{Design, Estimand, Subsampling};
use ndarray::{Array2, ArrayView2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug)]
struct Boom;
impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "boom")
    }
}
impl std::error::Error for Boom {}

fn col_mean(x: ArrayView2<'_, f32>, c: usize) -> f64 {
    x.column(c).iter().map(|&v| f64::from(v)).sum::<f64>() / x.nrows() as f64
}

fn mean_diff(r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>) -> Result<f64, Boom> {
    Ok(col_mean(r, 0) - col_mean(f, 0))
}

/// Plug-in (ddof 0) variance of the real column 0: biased by −σ²/N.
fn plugin_var(r: ArrayView2<'_, f32>, _f: ArrayView2<'_, f32>) -> Result<f64, Boom> {
    let m = col_mean(r, 0);
    Ok(r.column(0)
        .iter()
        .map(|&v| (f64::from(v) - m).powi(2))
        .sum::<f64>()
        / r.nrows() as f64)
}

fn gaussian(n: usize, d: usize, shift: f64, scale: f64, rng: &mut ChaCha8Rng) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |_| {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        (shift + scale * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    })
}

fn sample_var(x: ArrayView2<'_, f32>) -> f64 {
    let m = col_mean(x, 0);
    x.column(0)
        .iter()
        .map(|&v| (f64::from(v) - m).powi(2))
        .sum::<f64>()
        / (x.nrows() - 1) as f64
}

#[test]
fn half_sample_variance_is_the_full_size_variance_of_a_mean_difference() {
    // θ̂ = x̄ − ȳ: half-splits, E*[(θ̂_A − θ̂_B)²]/4 = s_r²/N + s_g²/M exactly
    // for even N and M; the delete-d design at f gives the same after c = f/(1 − f).
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let real = gaussian(400, 1, 0.0, 1.0, &mut rng);
    let fake = gaussian(300, 1, 0.3, 2.0, &mut rng);
    let ci = Subsampling::default()
        .n_subsamples(4000)
        .interval(real.view(), fake.view(), mean_diff)
        .unwrap();
    let exact = (sample_var(real.view()) / 400.0 + sample_var(fake.view()) / 300.0).sqrt();
    let rel = (ci.std_error - exact).abs() / exact;
    assert!(rel < 0.05, "SE {} vs {exact} (rel {rel})", ci.std_error);
    assert_eq!(ci.subsample_sizes, (200, 150));
    assert!(ci.contains_estimate && ci.low < ci.estimate && ci.estimate < ci.high);
    assert_eq!(ci.center, ci.estimate);
    // t_{3999, 0.975} = scipy.stats.t.ppf(0.975, 3999) (tools/references/small.py)
    assert!((ci.t_quantile - 1.9605).abs() < 1e-3, "{}", ci.t_quantile);
    // Other fractions rescale by c = f/(1 − f).
    for f in [0.3, 0.8] {
        let ci = Subsampling::default()
            .n_subsamples(4000)
            .fraction(f)
            .interval(real.view(), fake.view(), mean_diff)
            .unwrap();
        let rel = (ci.std_error - exact).abs() / exact;
        assert!(rel < 0.06, "f {f}: SE {} vs {exact}", ci.std_error);
    }
}

#[test]
fn covers_a_mean_difference_about_95_percent_of_the_time() {
    let (reps, mut hits) = (400, 0);
    for rep in 0..reps {
        let mut rng = ChaCha8Rng::seed_from_u64(1000 + rep);
        let real = gaussian(60, 1, 0.0, 1.0, &mut rng);
        let fake = gaussian(40, 1, 0.5, 2.0, &mut rng);
        let ci = Subsampling::default()
            .n_subsamples(100)
            .seed(rep)
            .interval(real.view(), fake.view(), mean_diff)
            .unwrap();
        if ci.low <= -0.5 && -0.5 <= ci.high {
            hits += 1;
        }
    }
    let coverage = f64::from(hits) / reps as f64;
    assert!((0.92..=0.98).contains(&coverage), "coverage {coverage}");
}

#[test]
fn large_sample_estimand_removes_a_one_over_n_bias() {
    // E[plug-in variance] = σ²(1 − 1/N); the jackknife-corrected centre is
    // ≈ the unbiased (ddof 1) variance, and the bias estimate ≈ −s²/N.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let real = gaussian(50, 1, 0.0, 3.0, &mut rng);
    let fake = gaussian(50, 1, 0.0, 1.0, &mut rng);
    let cfg = Subsampling::default().n_subsamples(4000);
    let at = cfg.interval(real.view(), fake.view(), plugin_var).unwrap();
    let large = cfg
        .estimand(Estimand::LargeSample)
        .interval(real.view(), fake.view(), plugin_var)
        .unwrap();
    let s2 = sample_var(real.view());
    assert_eq!(at.bias, large.bias);
    assert!(
        (large.bias + s2 / 50.0).abs() < 0.1 * s2 / 50.0 + 0.02,
        "{}",
        large.bias
    );
    assert!(
        (large.center - s2).abs() < 0.03 * s2,
        "{} vs {s2}",
        large.center
    );
    assert_eq!(large.estimand, Estimand::LargeSample);
    assert!(large.std_error > at.std_error);
    // The same subsamples: identical replicates.
    assert_eq!(at.replicates, large.replicates);
}

#[test]
fn large_sample_interval_can_exclude_the_estimate_and_says_so() {
    // A statistic with a bias of 100/N and no spread at all.
    let real = Array2::from_shape_fn((100, 1), |(i, _)| i as f32);
    let fake = real.clone();
    let biased = |r: ArrayView2<'_, f32>, _f: ArrayView2<'_, f32>| -> Result<f64, Boom> {
        Ok(1.0 + 100.0 / r.nrows() as f64)
    };
    let ci = Subsampling::default()
        .estimand(Estimand::LargeSample)
        .interval(real.view(), fake.view(), biased)
        .unwrap();
    assert!((ci.center - 1.0).abs() < 1e-12, "{}", ci.center);
    assert!((ci.bias - 1.0).abs() < 1e-12);
    assert_eq!(ci.std_error, 0.0);
    assert!(!ci.contains_estimate);
    let at = Subsampling::default()
        .interval(real.view(), fake.view(), biased)
        .unwrap();
    assert!(at.contains_estimate);
    assert_eq!((at.low, at.high), (2.0, 2.0));
}

#[test]
fn several_keys_equal_single_key_calls_and_are_deterministic() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let real = gaussian(80, 2, 0.0, 1.0, &mut rng);
    let fake = gaussian(70, 2, 0.2, 1.5, &mut rng);
    let cfg = Subsampling::default().n_subsamples(64).seed(11);
    let both = |r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>| -> Result<Vec<f64>, Boom> {
        Ok(vec![
            col_mean(r, 0) - col_mean(f, 0),
            col_mean(r, 1) - col_mean(f, 1),
        ])
    };
    let v = cfg.intervals(real.view(), fake.view(), both).unwrap();
    assert_eq!(v.len(), 2);
    let one = cfg.interval(real.view(), fake.view(), mean_diff).unwrap();
    assert_eq!(v[0], one);
    let again = cfg.intervals(real.view(), fake.view(), both).unwrap();
    assert_eq!(v, again);
    let single_thread = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
        .install(|| cfg.intervals(real.view(), fake.view(), both).unwrap());
    assert_eq!(v, single_thread);
    let other_seed = cfg
        .seed(12)
        .intervals(real.view(), fake.view(), both)
        .unwrap();
    assert_ne!(v[0].replicates, other_seed[0].replicates);
    assert_eq!(v[0].estimate, other_seed[0].estimate);
}

#[test]
fn subsamples_have_no_duplicate_rows_and_half_splits_are_complementary() {
    // Row i holds the value i.
    let real = Array2::from_shape_fn((41, 1), |(i, _)| i as f32);
    let fake = Array2::from_shape_fn((30, 1), |(i, _)| i as f32);
    let describe = |r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>| -> Result<Vec<f64>, Boom> {
        let count = |x: ArrayView2<'_, f32>| {
            let mut v: Vec<u32> = x.column(0).iter().map(|&t| t as u32).collect();
            v.sort_unstable();
            v.dedup();
            v.len() as f64
        };
        let sum = |x: ArrayView2<'_, f32>| x.column(0).iter().map(|&t| f64::from(t)).sum::<f64>();
        Ok(vec![
            count(r),
            count(f),
            r.nrows() as f64,
            f.nrows() as f64,
            sum(r),
            sum(f),
        ])
    };
    // Delete-d subsamples: 21 of 41 and 15 of 30 distinct rows.
    let v = Subsampling::default()
        .n_subsamples(50)
        .fraction(0.5)
        .intervals(real.view(), fake.view(), describe)
        .unwrap();
    assert_eq!(v[0].design, Design::Subsample);
    assert_eq!(v[0].subsample_sizes, (21, 15));
    assert_eq!(v[0].replicates.len(), 50);
    for s in 0..50 {
        assert_eq!(v[0].replicates[s], 21.0);
        assert_eq!(v[1].replicates[s], 15.0);
        assert_eq!(v[2].replicates[s], 21.0);
        assert_eq!(v[3].replicates[s], 15.0);
    }
    // Half-splits: halves of 20 + 21 and 15 + 15 distinct rows that together
    // are the whole set (their value sums add up to the totals).
    let v = Subsampling::default()
        .n_subsamples(50)
        .intervals(real.view(), fake.view(), describe)
        .unwrap();
    assert_eq!(v[0].design, Design::HalfSplits);
    assert_eq!(v[0].subsample_sizes, (20, 15));
    assert_eq!(v[0].replicates.len(), 100);
    for s in 0..50 {
        let (a, b) = (2 * s, 2 * s + 1);
        assert_eq!((v[0].replicates[a], v[0].replicates[b]), (20.0, 21.0));
        assert_eq!((v[1].replicates[a], v[1].replicates[b]), (15.0, 15.0));
        assert_eq!((v[2].replicates[a], v[2].replicates[b]), (20.0, 21.0));
        assert_eq!(v[4].replicates[a] + v[4].replicates[b], 820.0);
        assert_eq!(v[5].replicates[a] + v[5].replicates[b], 435.0);
    }
    // Different splits differ.
    assert_ne!(v[4].replicates[0], v[4].replicates[2]);
}

#[test]
fn errors_are_reported_not_panicked() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let real = gaussian(20, 2, 0.0, 1.0, &mut rng);
    let fake = gaussian(20, 2, 0.0, 1.0, &mut rng);
    let ok = Subsampling::default().n_subsamples(10);

    for f in [0.0, 1.0, -0.5, f64::NAN, 0.02, 0.99] {
        let e = ok
            .fraction(f)
            .interval(real.view(), fake.view(), mean_diff)
            .unwrap_err();
        assert!(
            matches!(
                e,
                RankingError::InvalidParameter {
                    name: "fraction",
                    ..
                }
            ),
            "{f}: {e}"
        );
    }
    assert!(matches!(
        ok.n_subsamples(1)
            .interval(real.view(), fake.view(), mean_diff),
        Err(RankingError::InvalidParameter { .. })
    ));
    assert!(matches!(
        ok.confidence(1.0)
            .interval(real.view(), fake.view(), mean_diff),
        Err(RankingError::InvalidParameter { .. })
    ));
    let narrow = gaussian(20, 3, 0.0, 1.0, &mut rng);
    assert!(matches!(
        ok.interval(real.view(), narrow.view(), mean_diff),
        Err(RankingError::DimensionMismatch { .. })
    ));
    let mut nan = real.clone();
    nan[[3, 1]] = f32::NAN;
    assert!(matches!(
        ok.interval(nan.view(), fake.view(), mean_diff),
        Err(RankingError::NonFinite { .. })
    ));
    let three_rows = gaussian(3, 2, 0.0, 1.0, &mut rng);
    assert!(matches!(
        ok.interval(three_rows.view(), fake.view(), mean_diff),
        Err(RankingError::TooFewSamples { min: 4, .. })
    ));
    let one_row = gaussian(1, 2, 0.0, 1.0, &mut rng);
    assert!(matches!(
        ok.interval(one_row.view(), fake.view(), mean_diff),
        Err(RankingError::TooFewSamples { .. })
    ));
    // The metric fails on subsamples only.
    let e = ok
        .interval(real.view(), fake.view(), |r, _f| {
            if r.nrows() < 20 { Err(Boom) } else { Ok(1.0) }
        })
        .unwrap_err();
    assert!(
        matches!(
            e,
            RankingError::Metric {
                resample: Some(_),
                ..
            }
        ),
        "{e}"
    );
    // Different key counts on a subsample.
    let e = ok
        .intervals(real.view(), fake.view(), |r, _f| {
            Ok::<_, Boom>(vec![0.0; if r.nrows() < 20 { 1 } else { 2 }])
        })
        .unwrap_err();
    assert!(matches!(e, RankingError::LengthMismatch { .. }), "{e}");
    // No keys.
    let e = ok
        .intervals(real.view(), fake.view(), |_r, _f| Ok::<_, Boom>(vec![]))
        .unwrap_err();
    assert!(matches!(e, RankingError::TooFewSamples { .. }), "{e}");
    // A NaN value on a subsample.
    let e = ok
        .intervals(real.view(), fake.view(), |r, _f| {
            Ok::<_, Boom>(vec![if r.nrows() < 20 { f64::NAN } else { 0.0 }])
        })
        .unwrap_err();
    assert!(matches!(e, RankingError::MetricNonFinite { .. }), "{e}");
}
