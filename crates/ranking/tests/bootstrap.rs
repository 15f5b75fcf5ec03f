//! Bootstrap intervals and rank stability: BCa against scipy's formula,
//! determinism under a seed (and across thread counts), calibration on a
//! mean difference, error propagation, and the conformance case `ranking`.

use gen_metrics_ranking::RankingError;
use gen_metrics_ranking::bootstrap::{
    Better, Bootstrap, CiMethod, MetricFn, RankStability, RankedMetric, bca_interval,
};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::{Array2, ArrayView2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Debug)]
struct Never;
impl std::fmt::Display for Never {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "never")
    }
}
impl std::error::Error for Never {}

fn mean_diff(r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>) -> Result<f64, Never> {
    let m = |x: ArrayView2<'_, f32>| {
        x.column(0).iter().map(|&v| f64::from(v)).sum::<f64>() / x.nrows() as f64
    };
    Ok(m(r) - m(f))
}

fn gaussian(n: usize, d: usize, shift: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32 + shift
    })
}

#[test]
fn bca_matches_scipy_formula() {
    // scipy 1.17.1 `scipy.stats._resampling._bca_interval((x, y), mean(x) − mean(y),
    // alpha=0.025, theta_hat_b=reps)` then `scipy.stats.quantile(reps, [a1, a2])`
    // (`low` as numpy's `np.quantile`, 1 ulp from scipy's). Generator:
    // `tools/references/bootstrap.py` (`--check` compares with these literals).
    let x: Vec<f64> = (0..30).map(|i| (f64::from(i) * 1.3).sin().exp()).collect();
    let y: Vec<f64> = (0..25)
        .map(|j| (f64::from(j) * 0.7).cos().powi(2))
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let theta = mean(&x) - mean(&y);
    assert_close("theta", theta, 0.74325570330719, 1e-14, 0.0);
    let reps: Vec<f64> = (0..200)
        .map(|b| {
            let b = f64::from(b);
            theta + 0.3 * (b * 2.1).sin() + 0.1 * (b * 0.37).cos().powi(3)
        })
        .collect();
    let loo = |v: &[f64], i: usize| {
        let s: f64 = v
            .iter()
            .enumerate()
            .filter(|(k, _)| *k != i)
            .map(|(_, t)| t)
            .sum();
        s / (v.len() - 1) as f64
    };
    let jx: Vec<f64> = (0..x.len()).map(|i| loo(&x, i) - mean(&y)).collect();
    let jy: Vec<f64> = (0..y.len()).map(|j| mean(&x) - loo(&y, j)).collect();
    let (lo, hi, d) = bca_interval(theta, &reps, &[&jx, &jy], 0.95).unwrap();
    assert_close("alpha_1", d.alpha_low, 0.007471924182477364, 1e-12, 0.0);
    assert_close("alpha_2", d.alpha_high, 0.9282750337057257, 1e-13, 0.0);
    assert_close("a_hat", d.acceleration, 0.012195794613560622, 1e-11, 0.0);
    assert_close("low", lo, 0.35196860289988435, 1e-12, 0.0);
    assert_close("high", hi, 1.0046098670316048, 1e-12, 0.0);
}

#[test]
fn percentile_interval_is_calibrated_for_a_mean_difference() {
    let real = gaussian(1000, 3, 0.0, 1);
    let fake = gaussian(1000, 3, 0.25, 2);
    let ci = Bootstrap::default()
        .n_resamples(2000)
        .seed(11)
        .confidence_interval(real.view(), fake.view(), mean_diff)
        .unwrap();
    // SE of a difference of two means of unit-variance samples: √(2/1000).
    let se = (2.0f64 / 1000.0).sqrt();
    eprintln!(
        "mean diff {:.4}, 95% [{:.4}, {:.4}], bootstrap SE {:.5} (theory {se:.5}), bias {:.2e}",
        ci.estimate, ci.low, ci.high, ci.std_error, ci.bias
    );
    assert!((ci.std_error / se - 1.0).abs() < 0.1);
    assert!(ci.low < ci.estimate && ci.estimate < ci.high);
    assert!(((ci.high - ci.low) / (2.0 * 1.959964 * se) - 1.0).abs() < 0.1);
    assert!(
        ci.low < -0.25 + 0.1 && -0.25 < ci.high,
        "truth -0.25 inside"
    );
    assert_eq!(ci.replicates.len(), 2000);

    // BCa on the same data: close to the percentile interval for a nearly
    // symmetric statistic, and consistent with the formula-level function.
    let bca = Bootstrap::default()
        .n_resamples(2000)
        .seed(11)
        .method(CiMethod::Bca)
        .confidence_interval(real.view(), fake.view(), mean_diff)
        .unwrap();
    assert_eq!(bca.replicates, ci.replicates);
    let d = bca.bca.unwrap();
    eprintln!(
        "BCa [{:.4}, {:.4}], z0 {:.4}, a {:.2e}",
        bca.low, bca.high, d.z0, d.acceleration
    );
    assert!((bca.low - ci.low).abs() < 0.2 * se && (bca.high - ci.high).abs() < 0.2 * se);
}

#[test]
fn deterministic_under_seed_and_thread_count() {
    let real = gaussian(300, 4, 0.0, 3);
    let fake = gaussian(250, 4, 0.1, 4);
    let run = |threads: usize, seed: u64| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            Bootstrap::default()
                .n_resamples(64)
                .seed(seed)
                .confidence_interval(real.view(), fake.view(), mean_diff)
                .unwrap()
        })
    };
    let a = run(1, 42);
    let b = run(3, 42);
    assert_eq!(a, b);
    let c = run(2, 43);
    assert_ne!(a.replicates, c.replicates);
}

#[test]
fn metric_errors_and_bad_input() {
    let real = gaussian(50, 2, 0.0, 5);
    let fake = gaussian(50, 2, 0.0, 6);
    // Succeeds on the full data, fails on every resample.
    let full = fake.clone();
    let failing = move |_: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>| {
        if f != full.view() {
            Err(std::io::Error::other("boom"))
        } else {
            Ok(1.0)
        }
    };
    match Bootstrap::default().n_resamples(50).confidence_interval(
        real.view(),
        fake.view(),
        failing,
    ) {
        Err(RankingError::Metric {
            error, resample, ..
        }) => {
            assert_eq!(error.to_string(), "boom");
            assert!(resample.is_some());
        }
        other => panic!("{other:?}"),
    }
    let nan = |_: ArrayView2<'_, f32>, _: ArrayView2<'_, f32>| Ok::<f64, Never>(f64::NAN);
    assert!(matches!(
        Bootstrap::default().confidence_interval(real.view(), fake.view(), nan),
        Err(RankingError::MetricNonFinite { .. })
    ));
    assert!(matches!(
        Bootstrap::default().n_resamples(1).confidence_interval(
            real.view(),
            fake.view(),
            mean_diff
        ),
        Err(RankingError::InvalidParameter { .. })
    ));
    let other_dim = gaussian(50, 3, 0.0, 7);
    assert!(matches!(
        Bootstrap::default().confidence_interval(real.view(), other_dim.view(), mean_diff),
        Err(RankingError::DimensionMismatch { .. })
    ));
    let mut bad = real.clone();
    bad[[3, 1]] = f32::NAN;
    assert!(matches!(
        Bootstrap::default().confidence_interval(bad.view(), fake.view(), mean_diff),
        Err(RankingError::NonFinite { index: 7, .. })
    ));
    // A constant statistic: θ̂ outside (0, 1) of the replicates' distribution
    // for BCa is reported, not turned into NaN.
    let constant = |_: ArrayView2<'_, f32>, _: ArrayView2<'_, f32>| Ok::<f64, Never>(2.0);
    let ci = Bootstrap::default()
        .n_resamples(20)
        .confidence_interval(real.view(), fake.view(), constant)
        .unwrap();
    assert_eq!((ci.low, ci.high, ci.std_error), (2.0, 2.0, 0.0));
    assert!(
        Bootstrap::default()
            .n_resamples(20)
            .method(CiMethod::Bca)
            .confidence_interval(real.view(), fake.view(), constant)
            .is_ok()
    );
}

/// Diagonal Fréchet distance `‖μr − μf‖² + Σ_j (σr_j − σf_j)²` (f64).
fn fd_diag(r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>) -> Result<f64, Never> {
    let stats = |x: ArrayView2<'_, f32>| {
        let n = x.nrows() as f64;
        x.columns()
            .into_iter()
            .map(|c| {
                let m = c.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
                let v = c.iter().map(|&v| (f64::from(v) - m).powi(2)).sum::<f64>() / (n - 1.0);
                (m, v.sqrt())
            })
            .collect::<Vec<_>>()
    };
    let (a, b) = (stats(r), stats(f));
    Ok(a.iter()
        .zip(&b)
        .map(|(p, q)| (p.0 - q.0).powi(2) + (p.1 - q.1).powi(2))
        .sum())
}

/// Fraction of fake rows within the median real-to-mean distance of the real mean
/// (a crude "precision", higher is better).
fn inside_fraction(r: ArrayView2<'_, f32>, f: ArrayView2<'_, f32>) -> Result<f64, Never> {
    let d = r.ncols();
    let mu: Vec<f64> = (0..d)
        .map(|j| r.column(j).iter().map(|&v| f64::from(v)).sum::<f64>() / r.nrows() as f64)
        .collect();
    let dist = |row: ndarray::ArrayView1<'_, f32>| {
        row.iter()
            .zip(&mu)
            .map(|(&v, m)| (f64::from(v) - m).powi(2))
            .sum::<f64>()
    };
    let mut rd: Vec<f64> = r.rows().into_iter().map(dist).collect();
    rd.sort_by(f64::total_cmp);
    let med = rd[rd.len() / 2];
    Ok(f.rows().into_iter().filter(|row| dist(*row) <= med).count() as f64 / f.nrows() as f64)
}

#[test]
fn rank_stability_on_conformance_ranking() {
    let case = Case::load("ranking");
    let real = case.array2::<f32>("real.npy");
    let fakes: Vec<Array2<f32>> = (0..8)
        .map(|i| case.array2::<f32>(&format!("fake_{i}.npy")))
        .collect();
    let views: Vec<ArrayView2<'_, f32>> = fakes.iter().map(|f| f.view()).collect();
    let fd: &MetricFn<'_, Never> = &fd_diag;
    let inside: &MetricFn<'_, Never> = &inside_fraction;
    let metrics = [
        RankedMetric::new("fd_diag", Better::Lower, fd),
        RankedMetric::new("inside_fraction", Better::Higher, inside),
    ];
    let order: Vec<f64> = (0..8).map(f64::from).collect();
    let cfg = RankStability::default().n_resamples(100).seed(7);
    let rep = cfg
        .compute(real.view(), &views, &metrics, Some(&order))
        .unwrap();

    let fdr = &rep.metrics[0];
    eprintln!("fd_diag point {:?}", fdr.point);
    eprintln!(
        "fd_diag point ranks {:?}, mean ranks {:?}",
        fdr.point_rank, fdr.mean_rank
    );
    let tv = fdr.tau_vs_reference.as_ref().unwrap();
    eprintln!(
        "tau(fd_diag, order): point {:?}, mean {:.3}, 95% [{:.3}, {:.3}], identical {:.2}",
        tv.point, tv.mean, tv.low, tv.high, tv.fraction_identical
    );
    eprintln!(
        "P(model0 ≻ model1) = {:.2}, P(model6 ≻ model7) = {:.2}",
        fdr.prob_better[0][1], fdr.prob_better[6][7]
    );
    let pair = &rep.between_metrics[0];
    eprintln!(
        "tau(fd_diag, inside_fraction): mean {:.3}, 95% [{:.3}, {:.3}]",
        pair.tau.mean, pair.tau.low, pair.tau.high
    );

    // Structure.
    assert_eq!(rep.n_models, 8);
    for m in &rep.metrics {
        for a in 0..8 {
            assert_eq!(m.prob_better[a][a], 0.5);
            for b in 0..8 {
                assert_close(
                    "P(a≻b)+P(b≻a)",
                    m.prob_better[a][b] + m.prob_better[b][a],
                    1.0,
                    1e-12,
                    0.0,
                );
            }
            assert_close(
                "rank frequencies",
                m.rank_frequency[a].iter().sum::<f64>(),
                1.0,
                1e-12,
                0.0,
            );
            assert!(m.interval[a][0] <= m.interval[a][1]);
        }
        assert_eq!(m.replicates.len(), 100);
    }
    // Far-apart models are ordered every time; the two noisiest models never swap.
    assert_eq!(fdr.prob_better[6][7], 1.0);
    assert_eq!(fdr.prob_better[0][7], 1.0);
    // On this case the diagonal FD ranks the models exactly as pytorch-fid's
    // FD does (`arrays.fd_rank`), so tau vs the order is the reference value.
    let fd_rank: Vec<f64> = case
        .arrays("/fd_rank")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    assert_eq!(fdr.point_rank, fd_rank);
    assert_eq!(tv.point, case.value("kendall_tau_b_fd_rank_vs_order"));
    // The two closest models swap in a sizeable share of resamples.
    assert!(fdr.prob_better[0][1] > 0.1 && fdr.prob_better[0][1] < 0.9);
    assert!(tv.n_defined == 100 && tv.n_undefined == 0);
    // Deterministic under the seed.
    let again = cfg
        .compute(real.view(), &views, &metrics, Some(&order))
        .unwrap();
    assert_eq!(rep, again);
}

#[test]
fn rank_stability_errors() {
    let real = gaussian(40, 2, 0.0, 1);
    let f1 = gaussian(40, 2, 0.0, 2);
    let f2 = gaussian(40, 3, 0.0, 3);
    let md: &MetricFn<'_, Never> = &mean_diff;
    let metrics = [RankedMetric::new("md", Better::Lower, md)];
    let cfg = RankStability::default().n_resamples(10);
    assert!(matches!(
        cfg.compute(real.view(), &[f1.view()], &metrics, None),
        Err(RankingError::TooFewSamples { .. })
    ));
    assert!(matches!(
        cfg.compute(real.view(), &[f1.view(), f2.view()], &metrics, None),
        Err(RankingError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        cfg.compute(real.view(), &[f1.view(), f1.view()], &metrics, Some(&[1.0])),
        Err(RankingError::LengthMismatch { .. })
    ));
    // A metric that ties every model: tau is undefined, counted, never NaN.
    let constant = |_: ArrayView2<'_, f32>, _: ArrayView2<'_, f32>| Ok::<f64, Never>(1.0);
    let cm: &MetricFn<'_, Never> = &constant;
    let tied = [RankedMetric::new("constant", Better::Lower, cm)];
    let rep = cfg
        .compute(
            real.view(),
            &[f1.view(), f1.view()],
            &tied,
            Some(&[0.0, 1.0]),
        )
        .unwrap();
    let t = rep.metrics[0].tau_vs_reference.as_ref().unwrap();
    assert_eq!((t.n_defined, t.n_undefined, t.point), (0, 10, None));
    assert_eq!(rep.metrics[0].prob_better[0][1], 0.5);
}
