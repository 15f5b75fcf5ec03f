//! Rank correlations between two rankings of the same items (models): Kendall's
//! tau-b and tau-c in `O(n log n)` with ties, and Spearman's rho, with the
//! p-values of `scipy.stats.kendalltau` / `scipy.stats.spearmanr` (scipy 1.17).
//!
//! *A Study on the Evaluation of Generative Models* (Betzalel et al., 2022)
//! compares metrics by the Kendall tau between the rankings of models they
//! induce; the conformance case `ranking` holds scipy's values for such
//! comparisons, and this module reproduces them exactly.
//!
//! Inputs are `f64` scores. NaN is rejected; `±∞` is allowed (an infinite KL
//! ranks last) because only the order matters.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::error::RankingError;
use crate::stats::{norm_cdf, norm_sf};

/// Which tau.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum TauVariant {
    /// Kendall's tau-b (Kendall 1945): `(C − D) / √((n₀ − n₁)(n₀ − n₂))`.
    #[default]
    B,
    /// Stuart's tau-c (Stuart 1953): `2(C − D) / (n² (m − 1)/m)`, `m` the
    /// smaller number of distinct values.
    C,
}

/// How the p-value of Kendall's tau is computed (scipy's `method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum PValueMethod {
    /// scipy's `'auto'`: exact when there are no ties and `n ≤ 33` or
    /// `min(D, n₀ − D) ≤ 1`, asymptotic otherwise.
    #[default]
    Auto,
    /// Exact null distribution of the number of concordant pairs (no ties
    /// allowed).
    Exact,
    /// Normal approximation with the tie-corrected variance.
    Asymptotic,
}

/// The alternative hypothesis (scipy's `alternative`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Alternative {
    /// Correlation ≠ 0.
    #[default]
    TwoSided,
    /// Correlation < 0.
    Less,
    /// Correlation > 0.
    Greater,
}

/// Kendall's rank correlation, computed with Knight's `O(n log n)` algorithm
/// (Knight 1966, "A computer method for calculating Kendall's tau with
/// ungrouped data", JASA 61) exactly as `scipy.stats.kendalltau`:
///
/// ```text
/// n₀ = n(n−1)/2,  n₁ = Σ_x-groups t(t−1)/2,  n₂ = Σ_y-groups u(u−1)/2,  n₃ = joint ties
/// C − D = n₀ − n₁ − n₂ + n₃ − 2·D           (D: discordant pairs, counted by merge sort)
/// tau-b = (C − D) / √(n₀ − n₁) / √(n₀ − n₂)
/// tau-c = 2(C − D) / (n²(m−1)/m)
/// var(C − D) = [n(n−1)(2n+5) − Σt(t−1)(2t+5) − Σu(u−1)(2u+5)]/18
///            + 2 n₁ n₂ / (n(n−1)) + Σt(t−1)(t−2) Σu(u−1)(u−2) / (9 n(n−1)(n−2))
/// z = (C − D)/√var,   exact: Kendall (1970) recursion for the number of
///                     permutations with ≤ c inversions.
/// ```
/// The p-value depends only on `C − D`, so it is the same for tau-b and tau-c.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct KendallTau {
    /// tau-b (default) or tau-c.
    pub variant: TauVariant,
    /// p-value method (default scipy's `'auto'`).
    pub method: PValueMethod,
    /// Alternative hypothesis (default two-sided).
    pub alternative: Alternative,
}

/// The output of [`KendallTau::compute`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KendallTauResult {
    /// The correlation, clipped to `[−1, 1]`.
    pub tau: f64,
    /// The p-value under the chosen alternative.
    pub p_value: f64,
    /// The method actually used (`Exact` or `Asymptotic`).
    pub method: PValueMethod,
    /// The normal statistic `z` (asymptotic method only).
    pub z: Option<f64>,
    /// Number of pairs of observations `n`.
    pub n: usize,
    /// `C − D`.
    pub concordant_minus_discordant: i64,
    /// `D`, pairs ordered oppositely (ties excluded).
    pub discordant: u64,
    /// `n₁`, pairs tied in x.
    pub x_ties: u64,
    /// `n₂`, pairs tied in y.
    pub y_ties: u64,
    /// `n₃`, pairs tied in both.
    pub joint_ties: u64,
}

/// Pair counts of two paired samples (Knight's algorithm).
#[derive(Debug, Clone, Copy)]
struct PairCounts {
    n: u64,
    dis: u64,
    xtie: u64,
    ytie: u64,
    ntie: u64,
    /// Σ t(t−1)(t−2), Σ t(t−1)(2t+5) over x tie groups.
    x0: u128,
    x1: u128,
    y0: u128,
    y1: u128,
    x_distinct: u64,
    y_distinct: u64,
}

fn check_pair(what: &'static str, x: &[f64], y: &[f64], min: usize) -> Result<(), RankingError> {
    if x.len() != y.len() {
        return Err(RankingError::LengthMismatch {
            what,
            left: x.len(),
            right: y.len(),
        });
    }
    if x.len() < min {
        return Err(RankingError::TooFewSamples {
            what,
            min,
            got: x.len(),
        });
    }
    for v in [x, y] {
        if let Some(index) = v.iter().position(|t| t.is_nan()) {
            return Err(RankingError::NonFinite {
                what,
                index,
                value: f64::NAN,
            });
        }
    }
    Ok(())
}

/// Dense ranks `0..k` (equal values share a rank; `-0.0 == 0.0`) and `k`.
fn dense_ranks(v: &[f64]) -> (Vec<u32>, u64) {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    // No NaN (checked by the caller), so partial_cmp is total here.
    idx.sort_unstable_by(|&a, &b| v[a].partial_cmp(&v[b]).unwrap_or(std::cmp::Ordering::Equal));
    let mut ranks = vec![0u32; v.len()];
    let mut r = 0u32;
    for k in 0..idx.len() {
        if k > 0 && v[idx[k]] != v[idx[k - 1]] {
            r += 1;
        }
        ranks[idx[k]] = r;
    }
    (ranks, if v.is_empty() { 0 } else { u64::from(r) + 1 })
}

/// Tie statistics of dense ranks: (Σ t(t−1)/2, Σ t(t−1)(t−2), Σ t(t−1)(2t+5)).
fn tie_stats(ranks: &[u32], k: u64) -> (u64, u128, u128) {
    let mut cnt = vec![0u64; k as usize];
    for &r in ranks {
        cnt[r as usize] += 1;
    }
    let (mut t2, mut t3, mut t5) = (0u64, 0u128, 0u128);
    for &t in cnt.iter().filter(|&&t| t > 1) {
        let t128 = u128::from(t);
        t2 += t * (t - 1) / 2;
        t3 += t128 * (t128 - 1) * (t128 - 2);
        t5 += t128 * (t128 - 1) * (2 * t128 + 5);
    }
    (t2, t3, t5)
}

/// Counts strict inversions (`i < j`, `v[i] > v[j]`) by bottom-up merge sort.
fn count_inversions(v: &mut [u32]) -> u64 {
    let n = v.len();
    let mut buf = vec![0u32; n];
    let mut inv = 0u64;
    let mut width = 1;
    while width < n {
        let mut lo = 0;
        while lo < n {
            let mid = (lo + width).min(n);
            let hi = (lo + 2 * width).min(n);
            let (mut i, mut j, mut k) = (lo, mid, lo);
            while i < mid && j < hi {
                if v[i] <= v[j] {
                    buf[k] = v[i];
                    i += 1;
                } else {
                    buf[k] = v[j];
                    j += 1;
                    inv += (mid - i) as u64;
                }
                k += 1;
            }
            buf[k..k + (mid - i)].copy_from_slice(&v[i..mid]);
            k += mid - i;
            buf[k..k + (hi - j)].copy_from_slice(&v[j..hi]);
            lo = hi;
        }
        v.copy_from_slice(&buf);
        width *= 2;
    }
    inv
}

fn pair_counts(x: &[f64], y: &[f64]) -> PairCounts {
    let n = x.len();
    let (xr, xk) = dense_ranks(x);
    let (yr, yk) = dense_ranks(y);
    let mut pairs: Vec<(u32, u32)> = xr.iter().copied().zip(yr.iter().copied()).collect();
    pairs.sort_unstable();
    // Joint ties: runs of equal (x, y).
    let mut ntie = 0u64;
    let mut run = 1u64;
    for k in 1..=n {
        if k < n && pairs[k] == pairs[k - 1] {
            run += 1;
        } else {
            ntie += run * (run - 1) / 2;
            run = 1;
        }
    }
    let mut ys: Vec<u32> = pairs.iter().map(|p| p.1).collect();
    let dis = count_inversions(&mut ys);
    let (xtie, x0, x1) = tie_stats(&xr, xk);
    let (ytie, y0, y1) = tie_stats(&yr, yk);
    PairCounts {
        n: n as u64,
        dis,
        xtie,
        ytie,
        ntie,
        x0,
        x1,
        y0,
        y1,
        x_distinct: xk,
        y_distinct: yk,
    }
}

/// Exact p-value of Kendall's tau without ties: scipy's
/// `mstats_basic._kendall_p_exact(n, c)` with `c` the number of concordant
/// pairs. Counts of permutations by number of inversions (Mahonian numbers,
/// Kendall 1970, *Rank Correlation Methods*) are exact integers (`u128`) for
/// `n ≤ 34`, normalised floats beyond.
fn kendall_p_exact(n: u64, c: u64, alternative: Alternative) -> f64 {
    let tot = n * (n - 1) / 2;
    let in_right_tail = c >= tot - c;
    let c = c.min(tot - c);
    let factorial = |m: u64| -> f64 { (1..=m).map(|k| k as f64).product() };
    let (prob, mass): (f64, f64) = if n == 1 {
        (1.0, 1.0)
    } else if n == 2 {
        (1.0, 0.5)
    } else if c == 0 {
        let p = if n < 171 { 2.0 / factorial(n) } else { 0.0 };
        (p, p / 2.0)
    } else if c == 1 {
        let p = if n < 172 { 2.0 / factorial(n - 1) } else { 0.0 };
        (p, (n - 1) as f64 / factorial(n))
    } else if 4 * c == n * (n - 1) && alternative == Alternative::TwoSided {
        (1.0, 0.0)
    } else if n <= 34 {
        let c = c as usize;
        let mut new = vec![0u128; c + 1];
        new[0] = 1;
        new[1] = 1;
        for j in 3..=n as usize {
            for k in 1..=c {
                new[k] += new[k - 1];
            }
            if j <= c {
                for k in (j..=c).rev() {
                    new[k] -= new[k - j];
                }
            }
        }
        let sum: u128 = new.iter().sum();
        let nf: u128 = (1..=u128::from(n)).product();
        (2.0 * (sum as f64) / (nf as f64), new[c] as f64 / nf as f64)
    } else {
        let c = c as usize;
        let mut new = vec![0f64; c + 1];
        new[0] = 1.0;
        new[1] = 1.0;
        for j in 3..=n as usize {
            for k in 1..=c {
                new[k] += new[k - 1];
            }
            for v in new.iter_mut() {
                *v /= j as f64;
            }
            if j <= c {
                for k in (j..=c).rev() {
                    new[k] -= new[k - j];
                }
            }
        }
        (new.iter().sum(), new[c] / 2.0)
    };
    let prob = match alternative {
        Alternative::TwoSided => prob,
        _ => {
            let greater = alternative == Alternative::Greater;
            if in_right_tail == greater {
                prob / 2.0
            } else {
                1.0 - prob / 2.0 + mass
            }
        }
    };
    prob.clamp(0.0, 1.0)
}

impl KendallTau {
    /// Sets the variant.
    pub fn variant(mut self, variant: TauVariant) -> Self {
        self.variant = variant;
        self
    }

    /// Sets the p-value method.
    pub fn method(mut self, method: PValueMethod) -> Self {
        self.method = method;
        self
    }

    /// Sets the alternative.
    pub fn alternative(mut self, alternative: Alternative) -> Self {
        self.alternative = alternative;
        self
    }

    /// Kendall's tau of the paired scores `x`, `y` (see the type's docs).
    ///
    /// # Errors
    /// Length mismatch, `n < 2`, a NaN, a constant input (every pair tied in
    /// x or in y: the correlation is undefined), or `method = Exact` with ties.
    pub fn compute(&self, x: &[f64], y: &[f64]) -> Result<KendallTauResult, RankingError> {
        check_pair("Kendall tau", x, y, 2)?;
        let pc = pair_counts(x, y);
        let n = pc.n;
        let tot = n * (n - 1) / 2;
        if pc.xtie == tot || pc.ytie == tot {
            return Err(RankingError::ConstantInput {
                what: "Kendall tau",
            });
        }
        let cmd = tot as i64 - pc.xtie as i64 - pc.ytie as i64 + pc.ntie as i64 - 2 * pc.dis as i64;
        // Same operation order as scipy so that the value is bit-identical.
        let tau = match self.variant {
            TauVariant::B => {
                cmd as f64 / ((tot - pc.xtie) as f64).sqrt() / ((tot - pc.ytie) as f64).sqrt()
            }
            TauVariant::C => {
                let m = pc.x_distinct.min(pc.y_distinct);
                let denom = (u128::from(n) * u128::from(n) * u128::from(m - 1)) as f64 / m as f64;
                (2 * cmd) as f64 / denom
            }
        };
        let tau = tau.clamp(-1.0, 1.0);
        let ties = pc.xtie != 0 || pc.ytie != 0;
        let method = match self.method {
            PValueMethod::Exact if ties => {
                return Err(RankingError::InvalidParameter {
                    name: "method",
                    reason: "ties found, the exact p-value needs untied data".into(),
                });
            }
            PValueMethod::Auto => {
                if !ties && (n <= 33 || pc.dis.min(tot - pc.dis) <= 1) {
                    PValueMethod::Exact
                } else {
                    PValueMethod::Asymptotic
                }
            }
            m => m,
        };
        let (p_value, z) = if method == PValueMethod::Exact {
            (kendall_p_exact(n, tot - pc.dis, self.alternative), None)
        } else {
            let nf = n as f64;
            let m = nf * (nf - 1.0);
            let var = (m * (2.0 * nf + 5.0) - pc.x1 as f64 - pc.y1 as f64) / 18.0
                + (2 * u128::from(pc.xtie) * u128::from(pc.ytie)) as f64 / m
                + (pc.x0 * pc.y0) as f64 / (9.0 * m * (nf - 2.0));
            let z = cmd as f64 / var.sqrt();
            let p = match self.alternative {
                Alternative::TwoSided => 2.0 * norm_sf(z.abs()),
                Alternative::Less => norm_cdf(z),
                Alternative::Greater => norm_sf(z),
            };
            (p, Some(z))
        };
        if !tau.is_finite() || !p_value.is_finite() {
            return Err(RankingError::Numerical {
                what: "Kendall tau",
                reason: format!("tau {tau}, p {p_value}"),
            });
        }
        Ok(KendallTauResult {
            tau,
            p_value,
            method,
            z,
            n: n as usize,
            concordant_minus_discordant: cmd,
            discordant: pc.dis,
            x_ties: pc.xtie,
            y_ties: pc.ytie,
            joint_ties: pc.ntie,
        })
    }
}

/// Kendall's tau-b of `x` and `y` (value only); see [`KendallTau`].
///
/// # Errors
/// As [`KendallTau::compute`].
pub fn kendall_tau_b(x: &[f64], y: &[f64]) -> Result<f64, RankingError> {
    Ok(KendallTau::default().compute(x, y)?.tau)
}

/// Stuart's tau-c of `x` and `y` (value only); see [`KendallTau`].
///
/// # Errors
/// As [`KendallTau::compute`].
pub fn kendall_tau_c(x: &[f64], y: &[f64]) -> Result<f64, RankingError> {
    Ok(KendallTau::default()
        .variant(TauVariant::C)
        .compute(x, y)?
        .tau)
}

/// Ranks `1..n` with ties given the average of the ranks they span
/// (`scipy.stats.rankdata(x, method="average")`).
///
/// # Errors
/// A NaN value.
pub fn rank_average(x: &[f64]) -> Result<Vec<f64>, RankingError> {
    if let Some(index) = x.iter().position(|t| t.is_nan()) {
        return Err(RankingError::NonFinite {
            what: "rank_average",
            index,
            value: f64::NAN,
        });
    }
    let mut idx: Vec<usize> = (0..x.len()).collect();
    idx.sort_by(|&a, &b| x[a].partial_cmp(&x[b]).unwrap_or(std::cmp::Ordering::Equal));
    let mut ranks = vec![0.0; x.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i + 1;
        while j < idx.len() && x[idx[j]] == x[idx[i]] {
            j += 1;
        }
        // Positions i..j (0-based) hold ranks i+1..=j; their mean is (i+1+j)/2.
        let r = (i + 1 + j) as f64 / 2.0;
        for &k in &idx[i..j] {
            ranks[k] = r;
        }
        i = j;
    }
    Ok(ranks)
}

/// Spearman's rank correlation (Spearman 1904) as `scipy.stats.spearmanr`:
///
/// ```text
/// rho = Pearson(rank(x), rank(y))       (average ranks for ties)
/// t   = rho √((n−2) / ((1+rho)(1−rho))),  p from Student's t with n−2 dof
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Spearman {
    /// Alternative hypothesis (default two-sided).
    pub alternative: Alternative,
}

/// The output of [`Spearman::compute`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SpearmanResult {
    /// The correlation, clipped to `[−1, 1]`.
    pub rho: f64,
    /// The p-value (Student's t approximation, as scipy).
    pub p_value: f64,
    /// The t statistic (`±∞` when `|rho| = 1`).
    pub t: f64,
    /// Number of pairs.
    pub n: usize,
}

impl Spearman {
    /// Sets the alternative.
    pub fn alternative(mut self, alternative: Alternative) -> Self {
        self.alternative = alternative;
        self
    }

    /// Spearman's rho of `x` and `y` with its p-value.
    ///
    /// # Errors
    /// Length mismatch, `n < 3` (the t distribution needs `n − 2 ≥ 1` dof), a
    /// NaN, or a constant input.
    pub fn compute(&self, x: &[f64], y: &[f64]) -> Result<SpearmanResult, RankingError> {
        check_pair("Spearman rho", x, y, 3)?;
        if x.iter().all(|&v| v == x[0]) || y.iter().all(|&v| v == y[0]) {
            return Err(RankingError::ConstantInput {
                what: "Spearman rho",
            });
        }
        let rx = rank_average(x)?;
        let ry = rank_average(y)?;
        let n = x.len();
        let nf = n as f64;
        let mx = rx.iter().sum::<f64>() / nf;
        let my = ry.iter().sum::<f64>() / nf;
        let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
        for (a, b) in rx.iter().zip(&ry) {
            let (da, db) = (a - mx, b - my);
            sxy += da * db;
            sxx += da * da;
            syy += db * db;
        }
        let dof = nf - 2.0;
        let rho = ((sxy / (nf - 1.0)) / (sxx / (nf - 1.0)).sqrt() / (syy / (nf - 1.0)).sqrt())
            .clamp(-1.0, 1.0);
        let t = rho * (dof / ((rho + 1.0) * (1.0 - rho))).max(0.0).sqrt();
        let t = if t.is_nan() { 0.0 } else { t };
        let dist = StudentsT::new(0.0, 1.0, dof).map_err(|e| RankingError::Numerical {
            what: "Spearman rho",
            reason: format!("Student t with {dof} dof: {e}"),
        })?;
        let p_value = match self.alternative {
            Alternative::TwoSided => 2.0 * dist.sf(t.abs()),
            Alternative::Less => dist.cdf(t),
            Alternative::Greater => dist.sf(t),
        };
        if !rho.is_finite() || !p_value.is_finite() {
            return Err(RankingError::Numerical {
                what: "Spearman rho",
                reason: format!("rho {rho}, p {p_value}"),
            });
        }
        Ok(SpearmanResult { rho, p_value, t, n })
    }
}
