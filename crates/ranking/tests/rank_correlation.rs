//! Kendall / Spearman: analytic cases, O(n log n) vs brute force, scipy
//! cross-checks and errors.
//!
//! Reference values: scipy 1.17.1 / numpy 2.4.6 (Python 3.11.7), computed with
//! `scipy.stats.kendalltau(x, y, ...)` and `scipy.stats.spearmanr(x, y, ...)`
//! on the vectors built below (`det_col` reproduces the Python expressions
//! `exp(sin(i)*1.5)` and `sin(0.3 i) + 0.01 i`). Generator:
//! `tools/references/ranking.py` (recomputes every value; `--check` compares
//! them with the literals below).

use gen_metrics_ranking::RankingError;
use gen_metrics_ranking::rank_correlation::{
    Alternative, KendallTau, PValueMethod, Spearman, TauVariant, kendall_tau_b, kendall_tau_c,
    rank_average,
};
use gen_metrics_testkit::assert_close;

fn det_col(kind: u32, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            match kind {
                1 => (i.sin() * 1.5).exp(),
                3 => (i * 0.3).sin() + 0.01 * i,
                _ => unreachable!(),
            }
        })
        .collect()
}

const TIE_A: ([f64; 10], [f64; 10]) = (
    [1., 2., 2., 3., 4., 4., 4., 5., 6., 6.],
    [1., 3., 2., 2., 5., 4., 6., 4., 6., 7.],
);
const TIE_B: ([f64; 11], [f64; 11]) = (
    [3., 1., 4., 1., 5., 9., 2., 6., 5., 3., 5.],
    [2., 7., 1., 8., 2., 8., 1., 8., 2., 8., 4.],
);

/// O(n²) definition of tau-b (Kendall 1945).
fn brute_tau_b(x: &[f64], y: &[f64]) -> f64 {
    let n = x.len();
    let (mut c, mut d, mut tx, mut ty) = (0i64, 0i64, 0i64, 0i64);
    for i in 0..n {
        for j in i + 1..n {
            let sx = (x[i] - x[j]).signum() as i64 * i64::from(x[i] != x[j]);
            let sy = (y[i] - y[j]).signum() as i64 * i64::from(y[i] != y[j]);
            if sx == 0 && sy == 0 {
                continue;
            }
            if sx == 0 {
                tx += 1;
            } else if sy == 0 {
                ty += 1;
            } else if sx == sy {
                c += 1;
            } else {
                d += 1;
            }
        }
    }
    (c - d) as f64 / (((c + d + tx) as f64) * ((c + d + ty) as f64)).sqrt()
}

#[test]
fn identity_and_reversal() {
    let x: Vec<f64> = (0..50).map(f64::from).collect();
    let rev: Vec<f64> = x.iter().rev().copied().collect();
    assert_eq!(kendall_tau_b(&x, &x).unwrap(), 1.0);
    assert_eq!(kendall_tau_b(&x, &rev).unwrap(), -1.0);
    assert_eq!(kendall_tau_c(&x, &x).unwrap(), 1.0);
    // Spearman as scipy: Pearson of the ranks, 1 − 1 ulp here (scipy gives
    // 0.9999999999999999 and p = 0.0 too).
    let s = Spearman::default().compute(&x, &x).unwrap();
    assert_close("rho identity", s.rho, 1.0, 2e-16, 0.0);
    assert!(s.p_value < 1e-300);
    let s = Spearman::default().compute(&x, &rev).unwrap();
    assert_close("rho reversed", s.rho, -1.0, 2e-16, 0.0);
    // A ranking with ties against itself: tau-b = 1 up to the rounding of
    // (C−D)/√a/√a, bit for bit what scipy gives (0.9999999999999999).
    assert_eq!(
        kendall_tau_b(&TIE_A.0, &TIE_A.0).unwrap(),
        0.9999999999999999
    );
}

#[test]
fn knight_matches_brute_force_with_ties() {
    // Deterministic pseudo-random integers with many ties.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for n in [2usize, 3, 7, 50, 333] {
        for levels in [2u64, 5, 1000] {
            let x: Vec<f64> = (0..n).map(|_| (next() % levels) as f64).collect();
            let y: Vec<f64> = (0..n).map(|_| (next() % levels) as f64).collect();
            match kendall_tau_b(&x, &y) {
                Ok(t) => {
                    let b = brute_tau_b(&x, &y);
                    assert!((t - b).abs() <= 1e-15, "n={n} levels={levels}: {t} vs {b}");
                }
                Err(RankingError::ConstantInput { .. }) => {
                    assert!(x.iter().all(|&v| v == x[0]) || y.iter().all(|&v| v == y[0]));
                }
                Err(e) => panic!("{e}"),
            }
        }
    }
}

#[test]
fn kendall_matches_scipy() {
    // n = 25 without ties: scipy 'auto' uses the exact distribution.
    let (x, y) = (det_col(1, 25), det_col(3, 25));
    let r = KendallTau::default().compute(&x, &y).unwrap();
    assert_eq!(r.method, PValueMethod::Exact);
    assert_close("tau n=25", r.tau, -0.11333333333333331, 1e-15, 0.0);
    assert_close("p exact n=25", r.p_value, 0.4448568614280395, 1e-13, 0.0);
    let less = KendallTau::default()
        .alternative(Alternative::Less)
        .compute(&x, &y)
        .unwrap();
    assert_close("p less", less.p_value, 0.22242843071401974, 1e-13, 0.0);
    let greater = KendallTau::default()
        .alternative(Alternative::Greater)
        .compute(&x, &y)
        .unwrap();
    assert_close("p greater", greater.p_value, 0.7911845442831494, 1e-13, 0.0);
    let asym = KendallTau::default()
        .method(PValueMethod::Asymptotic)
        .compute(&x, &y)
        .unwrap();
    assert_close("p asymptotic", asym.p_value, 0.4271553081827698, 1e-13, 0.0);
    let c = KendallTau::default()
        .variant(TauVariant::C)
        .compute(&x, &y)
        .unwrap();
    assert_close("tau-c n=25", c.tau, -0.11333333333333333, 1e-15, 0.0);

    // n = 40 without ties: asymptotic (n > 33).
    let (x, y) = (det_col(1, 40), det_col(3, 40));
    let r = KendallTau::default().compute(&x, &y).unwrap();
    assert_eq!(r.method, PValueMethod::Asymptotic);
    assert_close("tau n=40", r.tau, -0.005128205128205129, 1e-14, 0.0);
    assert_close("p n=40", r.p_value, 0.9628287337753054, 1e-13, 0.0);
    // ... and the exact distribution when asked (x = 0..39, y = Box–Muller column: see normality tests).
    let x: Vec<f64> = (0..40).map(f64::from).collect();
    let y = gen_col2(40);
    let r = KendallTau::default()
        .method(PValueMethod::Exact)
        .compute(&x, &y)
        .unwrap();
    assert_close("tau n=40 exact", r.tau, -0.023076923076923078, 1e-15, 0.0);
    assert_close("p n=40 exact", r.p_value, 0.8440243450403817, 1e-12, 0.0);

    // Ties, one-sided.
    let less = KendallTau::default()
        .alternative(Alternative::Less)
        .compute(&TIE_B.0, &TIE_B.1)
        .unwrap();
    assert_close("tie_b less", less.p_value, 0.7181954744651858, 1e-13, 0.0);
    let greater = KendallTau::default()
        .alternative(Alternative::Greater)
        .compute(&TIE_B.0, &TIE_B.1)
        .unwrap();
    assert_close(
        "tie_b greater",
        greater.p_value,
        0.28180452553481417,
        1e-13,
        0.0,
    );

    // n = 300 integer data with heavy ties: x = (7i) mod 13, y = (11i) mod 17 + [x > 6].
    let x: Vec<f64> = (0..300).map(|i| ((i * 7) % 13) as f64).collect();
    let y: Vec<f64> = (0..300)
        .map(|i| ((i * 11) % 17) as f64 + f64::from(u8::from((i * 7) % 13 > 6)))
        .collect();
    let r = KendallTau::default().compute(&x, &y).unwrap();
    assert_eq!(r.tau, 0.07413202641628326);
    assert_close("p n=300 ties", r.p_value, 0.0716915426562967, 1e-13, 0.0);
    assert_eq!(kendall_tau_c(&x, &y).unwrap(), 0.07491851851851852);
    let s = Spearman::default().compute(&x, &y).unwrap();
    assert_close("spearman n=300", s.rho, 0.10410969077749793, 1e-13, 0.0);
    assert_close(
        "spearman p n=300",
        s.p_value,
        0.07176582220154094,
        1e-10,
        0.0,
    );

    // Exact branch for large n when min(D, n0 − D) ≤ 1: n = 50, one swap.
    let x: Vec<f64> = (0..50).map(f64::from).collect();
    let mut y = x.clone();
    y.swap(10, 11);
    let r = KendallTau::default().compute(&x, &y).unwrap();
    assert_eq!(r.method, PValueMethod::Exact);
    assert_close("tau one swap", r.tau, 0.9983673469387755, 1e-15, 0.0);
    assert_close("p one swap", r.p_value, 3.287949416633158e-63, 1e-13, 0.0);
    let x: Vec<f64> = (0..60).map(f64::from).collect();
    let r = KendallTau::default()
        .method(PValueMethod::Exact)
        .compute(&x, &x)
        .unwrap();
    assert_close(
        "p identity n=60",
        r.p_value,
        2.4035609872986455e-82,
        1e-13,
        0.0,
    );
}

/// `sqrt(-2 ln u) cos(2πv)`, `u = (0.618.. i mod 1) + 1e-3`, `v = 0.414.. i mod 1`.
fn gen_col2(n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let i = i as f64;
            let u = (i * 0.6180339887498949) % 1.0 + 1e-3;
            let v = (i * 0.4142135623730951) % 1.0;
            (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
        })
        .collect()
}

#[test]
fn spearman_matches_scipy() {
    let s = Spearman::default().compute(&TIE_A.0, &TIE_A.1).unwrap();
    assert_close("rho tie_a", s.rho, 0.8785430414108695, 1e-14, 0.0);
    assert_close("p tie_a", s.p_value, 0.0008202055955077199, 1e-10, 0.0);
    let s = Spearman::default().compute(&TIE_B.0, &TIE_B.1).unwrap();
    assert_close("rho tie_b", s.rho, 0.1384567651467695, 1e-14, 0.0);
    assert_close("p tie_b", s.p_value, 0.6847503048108998, 1e-10, 0.0);
    let l = Spearman::default()
        .alternative(Alternative::Less)
        .compute(&TIE_B.0, &TIE_B.1)
        .unwrap();
    assert_close("p tie_b less", l.p_value, 0.6576248475945501, 1e-10, 0.0);
    let g = Spearman::default()
        .alternative(Alternative::Greater)
        .compute(&TIE_B.0, &TIE_B.1)
        .unwrap();
    assert_close("p tie_b greater", g.p_value, 0.3423751524054499, 1e-10, 0.0);
    let s = Spearman::default()
        .compute(&det_col(1, 40), &det_col(3, 40))
        .unwrap();
    assert_close("rho n=40", s.rho, -0.005440900562851784, 1e-12, 0.0);
    assert_close("p n=40", s.p_value, 0.9734191635744349, 1e-10, 0.0);
}

#[test]
fn average_ranks() {
    assert_eq!(
        rank_average(&[3.0, 1.0, 4.0, 1.0, 5.0]).unwrap(),
        vec![3.0, 1.5, 4.0, 1.5, 5.0]
    );
    // -0.0 and 0.0 are the same value.
    assert_eq!(rank_average(&[0.0, -0.0]).unwrap(), vec![1.5, 1.5]);
    assert_eq!(
        kendall_tau_b(&[0.0, -0.0, 1.0], &[1.0, 2.0, 3.0]).unwrap(),
        kendall_tau_b(&[0.0, 0.0, 1.0], &[1.0, 2.0, 3.0]).unwrap()
    );
}

#[test]
fn infinities_rank_last() {
    let kl = [0.1, f64::INFINITY, 0.3];
    let order = [1.0, 3.0, 2.0];
    assert_eq!(kendall_tau_b(&kl, &order).unwrap(), 1.0);
}

#[test]
fn errors() {
    assert!(matches!(
        kendall_tau_b(&[1.0, 2.0], &[1.0]),
        Err(RankingError::LengthMismatch { .. })
    ));
    assert!(matches!(
        kendall_tau_b(&[1.0], &[1.0]),
        Err(RankingError::TooFewSamples { .. })
    ));
    assert!(matches!(
        kendall_tau_b(&[1.0, f64::NAN], &[1.0, 2.0]),
        Err(RankingError::NonFinite { .. })
    ));
    assert!(matches!(
        kendall_tau_b(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]),
        Err(RankingError::ConstantInput { .. })
    ));
    assert!(matches!(
        KendallTau::default()
            .method(PValueMethod::Exact)
            .compute(&TIE_A.0, &TIE_A.1),
        Err(RankingError::InvalidParameter { .. })
    ));
    assert!(matches!(
        Spearman::default().compute(&[1.0, 2.0], &[2.0, 1.0]),
        Err(RankingError::TooFewSamples { .. })
    ));
    assert!(matches!(
        Spearman::default().compute(&[1.0, 2.0, 3.0], &[2.0, 2.0, 2.0]),
        Err(RankingError::ConstantInput { .. })
    ));
}
