//! Divergences from log-likelihoods: Monte Carlo vs closed form for Gaussians,
//! the infinite case, JS bounds and error cases.
//!
//! Closed-form reference values: numpy 2.4.6 (`0.5*(trace(inv(S1)@S0) +
//! dm@inv(S1)@dm − d + log det S1 − log det S0)`), scipy 1.17.1
//! `multivariate_normal.logpdf`, and `scipy.integrate.quad` for the 1-D JS.
//! Generator: `tools/references/divergence.py` (`--check` compares with the
//! literals below).

use gen_metrics_ranking::RankingError;
use gen_metrics_ranking::divergence::{
    Divergence, Gaussian, LikelihoodDivergences, LogLikelihoods, js_monte_carlo, kl_monte_carlo,
    reverse_kl_monte_carlo,
};
use gen_metrics_testkit::assert_close;
use ndarray::{Array1, Array2, array};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// `d` standard-normal draws by Box–Muller.
fn standard_normal(rng: &mut ChaCha8Rng, d: usize) -> Array1<f64> {
    (0..d)
        .map(|_| {
            let u: f64 = 1.0 - rng.random::<f64>();
            let v: f64 = rng.random::<f64>();
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

/// `n` draws of `N(mean, L Lᵀ)` by Box–Muller on a seeded ChaCha8.
fn sample(mean: &Array1<f64>, cov: &Array2<f64>, n: usize, seed: u64) -> Array2<f64> {
    let d = mean.len();
    // Cholesky by hand (small d).
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum();
            l[[i, j]] = if i == j {
                (cov[[i, i]] - s).sqrt()
            } else {
                (cov[[i, j]] - s) / l[[j, j]]
            };
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Array2::zeros((n, d));
    for r in 0..n {
        let z = standard_normal(&mut rng, d);
        for i in 0..d {
            out[[r, i]] = mean[i] + (0..=i).map(|k| l[[i, k]] * z[k]).sum::<f64>();
        }
    }
    out
}

fn fixture() -> (
    Gaussian,
    Gaussian,
    Array1<f64>,
    Array2<f64>,
    Array1<f64>,
    Array2<f64>,
) {
    let m0 = array![0.0, 1.0, -0.5];
    let s0 = array![[2.0, 0.3, 0.1], [0.3, 1.0, 0.2], [0.1, 0.2, 0.5]];
    let m1 = array![0.3, 0.8, 0.0];
    let s1 = array![[1.0, 0.0, 0.2], [0.0, 1.5, -0.3], [0.2, -0.3, 0.8]];
    let p = Gaussian::new(m0.view(), s0.view()).unwrap();
    let q = Gaussian::new(m1.view(), s1.view()).unwrap();
    (p, q, m0, s0, m1, s1)
}

#[test]
fn closed_form_matches_numpy() {
    let (p, q, ..) = fixture();
    assert_close(
        "KL(p||q)",
        p.kl_to(&q).unwrap(),
        0.5502573206277884,
        1e-13,
        0.0,
    );
    assert_close(
        "KL(q||p)",
        q.kl_to(&p).unwrap(),
        0.8701290072214819,
        1e-13,
        0.0,
    );
    assert_eq!(p.kl_to(&p).unwrap(), 0.0);
    let lp = p.log_pdf_rows(array![[1.0, 2.0, 3.0]].view()).unwrap();
    assert_close("log N0", lp[0], -15.072890430083273, 1e-13, 0.0);
    let lq = q.log_pdf_rows(array![[-1.0, 0.5, 0.25]].view()).unwrap();
    assert_close("log N1", lq[0], -3.8008535388415923, 1e-13, 0.0);
    // 1-D: KL(N(0,1) || N(1,4)) = ln 2 + (1 + 1)/8 − 1/2.
    let a = Gaussian::new(array![0.0].view(), array![[1.0]].view()).unwrap();
    let b = Gaussian::new(array![1.0].view(), array![[4.0]].view()).unwrap();
    assert_close(
        "1-D KL",
        a.kl_to(&b).unwrap(),
        std::f64::consts::LN_2 - 0.25,
        1e-15,
        0.0,
    );
}

#[test]
fn monte_carlo_within_four_standard_errors() {
    let (p, q, m0, s0, m1, s1) = fixture();
    let n = 20_000;
    let xp = sample(&m0, &s0, n, 7);
    let xq = sample(&m1, &s1, n, 8);
    let (lp_p, lq_p) = (
        p.log_pdf_rows(xp.view()).unwrap(),
        q.log_pdf_rows(xp.view()).unwrap(),
    );
    let (lp_q, lq_q) = (
        p.log_pdf_rows(xq.view()).unwrap(),
        q.log_pdf_rows(xq.view()).unwrap(),
    );
    let at_p = LogLikelihoods::new(lp_p.view(), lq_p.view());
    let at_q = LogLikelihoods::new(lp_q.view(), lq_q.view());

    let report = LikelihoodDivergences::default()
        .compute(&at_p, &at_q)
        .unwrap();
    let truth = [p.kl_to(&q).unwrap(), q.kl_to(&p).unwrap()];
    for (name, est, want) in [
        ("KL", report.kl, truth[0]),
        ("reverse KL", report.reverse_kl, truth[1]),
        ("Jeffreys", report.jeffreys, truth[0] + truth[1]),
    ] {
        let Divergence::Finite(e) = est else {
            panic!("{name} infinite")
        };
        let z = (e.value - want) / e.std_error;
        eprintln!(
            "{name}: MC {:.5} ± {:.5} vs closed form {want:.5} (z = {z:.2})",
            e.value, e.std_error
        );
        assert!(z.abs() < 4.0, "{name}: z = {z}");
        assert!(e.ci_low < e.value && e.value < e.ci_high);
        assert_close(
            "95% half-width",
            e.ci_high - e.value,
            1.959963984540054 * e.std_error,
            1e-12,
            0.0,
        );
    }
    // Functions agree with the report.
    assert_eq!(kl_monte_carlo(&at_p, 0.95).unwrap(), report.kl);
    assert_eq!(
        reverse_kl_monte_carlo(&at_q, 0.95).unwrap(),
        report.reverse_kl
    );
    assert!(report.js.value > 0.0 && report.js.value < std::f64::consts::LN_2);
}

#[test]
fn js_monte_carlo_matches_quadrature() {
    // JS(N(0,1), N(1,1)) by scipy.integrate.quad.
    let want = 0.11142148218473619;
    let p = Gaussian::new(array![0.0].view(), array![[1.0]].view()).unwrap();
    let q = Gaussian::new(array![1.0].view(), array![[1.0]].view()).unwrap();
    let xp = sample(&array![0.0], &array![[1.0]], 40_000, 1);
    let xq = sample(&array![1.0], &array![[1.0]], 40_000, 2);
    let at_p_p = p.log_pdf_rows(xp.view()).unwrap();
    let at_p_q = q.log_pdf_rows(xp.view()).unwrap();
    let at_q_p = p.log_pdf_rows(xq.view()).unwrap();
    let at_q_q = q.log_pdf_rows(xq.view()).unwrap();
    let js = js_monte_carlo(
        &LogLikelihoods::new(at_p_p.view(), at_p_q.view()),
        &LogLikelihoods::new(at_q_p.view(), at_q_q.view()),
        0.95,
    )
    .unwrap();
    let z = (js.value - want) / js.std_error;
    eprintln!(
        "JS: MC {:.5} ± {:.5} vs quad {want:.5} (z = {z:.2})",
        js.value, js.std_error
    );
    assert!(z.abs() < 4.0, "z = {z}");
}

#[test]
fn identical_models_give_zero() {
    let l = array![-1.0, -2.5, -0.3, -4.0];
    let ll = LogLikelihoods::new(l.view(), l.view());
    let Divergence::Finite(e) = kl_monte_carlo(&ll, 0.95).unwrap() else {
        panic!()
    };
    assert_eq!((e.value, e.std_error), (0.0, 0.0));
    let js = js_monte_carlo(&ll, &ll, 0.95).unwrap();
    assert!(js.value.abs() < 1e-15);
}

#[test]
fn zero_model_density_is_typed_infinity() {
    let lp = array![-1.0, -2.0, -1.5, -0.5];
    let lq = array![-1.2, f64::NEG_INFINITY, -1.0, f64::NEG_INFINITY];
    let at_p = LogLikelihoods::new(lp.view(), lq.view());
    let kl = kl_monte_carlo(&at_p, 0.95).unwrap();
    assert_eq!(
        kl,
        Divergence::Infinite {
            first_index: 1,
            count: 2,
            n: 4
        }
    );
    assert_eq!(kl.value(), f64::INFINITY);
    assert!(!kl.is_finite());
    assert_eq!(kl.std_error(), None);
    // Serialized with a tag, never a NaN.
    let json = serde_json::to_string(&kl).unwrap();
    assert!(json.contains("\"kind\":\"infinite\""), "{json}");

    // Jeffreys inherits the infinity; JS stays finite.
    let lp_q = array![-3.0, -1.0, -2.0];
    let lq_q = array![-1.0, -1.1, -0.9];
    let at_q = LogLikelihoods::new(lp_q.view(), lq_q.view());
    let r = LikelihoodDivergences::default()
        .compute(&at_p, &at_q)
        .unwrap();
    assert!(!r.jeffreys.is_finite());
    assert!(r.reverse_kl.is_finite());
    assert!(r.js.value.is_finite() && r.js.value <= std::f64::consts::LN_2);

    // Disjoint supports: JS = ln 2 exactly.
    let ninf = array![f64::NEG_INFINITY, f64::NEG_INFINITY];
    let own = array![-1.0, -2.0];
    let js = js_monte_carlo(
        &LogLikelihoods::new(own.view(), ninf.view()),
        &LogLikelihoods::new(ninf.view(), own.view()),
        0.95,
    )
    .unwrap();
    assert_eq!(js.value, std::f64::consts::LN_2);
    assert_eq!(js.std_error, 0.0);
}

#[test]
fn errors() {
    let a = array![-1.0, -2.0, -3.0];
    let short = array![-1.0, -2.0];
    let err = |lp: &Array1<f64>, lq: &Array1<f64>| {
        kl_monte_carlo(&LogLikelihoods::new(lp.view(), lq.view()), 0.95)
    };
    assert!(matches!(
        err(&a, &short),
        Err(RankingError::LengthMismatch { .. })
    ));
    assert!(matches!(
        err(&array![-1.0], &array![-1.0]),
        Err(RankingError::TooFewSamples { .. })
    ));
    assert!(matches!(
        err(&a, &array![-1.0, f64::NAN, -1.0]),
        Err(RankingError::InvalidLogLikelihood { index: 1, .. })
    ));
    assert!(matches!(
        err(&array![-1.0, f64::INFINITY, -1.0], &a),
        Err(RankingError::InvalidLogLikelihood { index: 1, .. })
    ));
    // A sample of p with zero density under p is impossible.
    assert!(matches!(
        err(&array![-1.0, -2.0, f64::NEG_INFINITY], &a),
        Err(RankingError::InvalidLogLikelihood { index: 2, .. })
    ));
    // ... and for reverse KL the roles swap.
    assert!(matches!(
        reverse_kl_monte_carlo(
            &LogLikelihoods::new(a.view(), array![-1.0, f64::NEG_INFINITY, -1.0].view()),
            0.95
        ),
        Err(RankingError::InvalidLogLikelihood { index: 1, .. })
    ));
    assert!(matches!(
        kl_monte_carlo(&LogLikelihoods::new(a.view(), a.view()), 1.0),
        Err(RankingError::InvalidParameter { .. })
    ));
    // Overflowing differences are an error, not an inf/NaN estimate.
    assert!(matches!(
        err(&array![1e308, -1e308], &array![-1e308, 1e308]),
        Err(RankingError::Numerical { .. })
    ));
    // Gaussian construction.
    assert!(matches!(
        Gaussian::new(
            array![0.0, 0.0].view(),
            array![[1.0, 2.0], [2.0, 1.0]].view()
        ),
        Err(RankingError::SingularCovariance { .. })
    ));
    assert!(matches!(
        Gaussian::new(
            array![0.0, 0.0].view(),
            array![[1.0, 0.5], [0.4, 1.0]].view()
        ),
        Err(RankingError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Gaussian::new(array![0.0].view(), array![[1.0, 0.0], [0.0, 1.0]].view()),
        Err(RankingError::DimensionMismatch { .. })
    ));
}

/// `from_standard_normal` maps `z` to `μ + L z`: the unit vectors give the
/// columns of `L` (so `L Lᵀ = Σ`), and a seeded sample has the moments of
/// `N(μ, Σ)`.
#[test]
fn from_standard_normal_is_mean_plus_cholesky_times_z() {
    let (p, _, m0, s0, _, _) = fixture();
    let d = m0.len();
    let mut l = Array2::<f64>::zeros((d, d));
    for k in 0..d {
        let mut e = Array1::<f64>::zeros(d);
        e[k] = 1.0;
        let x = p.from_standard_normal(e.view()).unwrap();
        l.column_mut(k).assign(&(&x - &m0));
    }
    for i in 0..d {
        for j in (i + 1)..d {
            assert_eq!(l[[i, j]], 0.0, "L is lower triangular");
        }
    }
    let llt = l.dot(&l.t());
    for i in 0..d {
        for j in 0..d {
            assert_close("L Lᵀ", llt[[i, j]], s0[[i, j]], 1e-12, 1e-15);
        }
    }
    assert_eq!(p.from_standard_normal(Array1::zeros(d).view()).unwrap(), m0);
    // Moments of 20,000 seeded draws.
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let n = 20_000;
    let mut x = Array2::<f64>::zeros((n, d));
    for mut row in x.rows_mut() {
        let z = standard_normal(&mut rng, d);
        row.assign(&p.from_standard_normal(z.view()).unwrap());
    }
    let mean = x.mean_axis(ndarray::Axis(0)).unwrap();
    let c = &x - &mean;
    let cov = c.t().dot(&c) / (n as f64 - 1.0);
    for i in 0..d {
        assert!((mean[i] - m0[i]).abs() < 0.05, "mean {i}: {}", mean[i]);
        for j in 0..d {
            assert!((cov[[i, j]] - s0[[i, j]]).abs() < 0.08, "cov {i},{j}");
        }
    }
    assert!(matches!(
        p.from_standard_normal(Array1::zeros(d + 1).view()),
        Err(RankingError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        p.from_standard_normal(array![0.0, f64::NAN, 0.0].view()),
        Err(RankingError::NonFinite { .. })
    ));
}
