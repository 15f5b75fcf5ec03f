//! How close a feature distribution is to a Gaussian — the assumption behind
//! the Fréchet distance. *A Study on the Evaluation of Generative Models*
//! (Betzalel et al., 2022) compares Inception and CLIP features with
//! normality tests; [`NormalityTest`] gives the same comparison in one line.
//!
//! * Per dimension: D'Agostino's K² omnibus test (D'Agostino 1971;
//!   D'Agostino & Pearson 1973; D'Agostino, Belanger & D'Agostino 1990),
//!   numerically as `scipy.stats.normaltest` (skewtest + kurtosistest).
//! * Jointly: Mardia's (1970) multivariate skewness and kurtosis tests, with
//!   the small-sample skewness correction of Mardia (1974), as in the R
//!   package MVN (Korkmaz, Goksuluk & Zararsiz 2014).

use std::fmt;

use gen_metrics_linalg::{cholesky_lower, matmul_nt, matmul_tn, solve_lower_triangular};
use ndarray::{Array2, ArrayView2, Axis, Slice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF};

use crate::error::RankingError;
use crate::stats::norm_sf;

/// D'Agostino's K² test of one variable.
///
/// With central moments `m_k = (1/n) Σ (x_i − x̄)^k`, `√b₁ = m₃/m₂^{3/2}`,
/// `b₂ = m₄/m₂²`:
///
/// ```text
/// skewtest:     Y = √b₁ √((n+1)(n+3) / (6(n−2)))
///               β₂ = 3(n²+27n−70)(n+1)(n+3) / ((n−2)(n+5)(n+7)(n+9))
///               W² = −1 + √(2(β₂−1)),  δ = 1/√(½ ln W²),  α = √(2/(W²−1))
///               Z₁ = δ ln(Y/α + √((Y/α)² + 1))          (Y = 0 is replaced by 1, as scipy)
/// kurtosistest: E = 3(n−1)/(n+1),  Var = 24n(n−2)(n−3) / ((n+1)²(n+3)(n+5))
///               x = (b₂ − E)/√Var
///               √β₁ = 6(n²−5n+2)/((n+7)(n+9)) · √(6(n+3)(n+5) / (n(n−2)(n−3)))
///               A = 6 + (8/√β₁)(2/√β₁ + √(1 + 4/β₁))
///               Z₂ = [(1 − 2/(9A)) − ((1 − 2/A)/(1 + x√(2/(A−4))))^{1/3}] / √(2/(9A))
/// K² = Z₁² + Z₂² ~ χ²₂,   p = exp(−K²/2)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DagostinoK2 {
    /// Sample skewness `√b₁` (biased, as `scipy.stats.skew`).
    pub skewness: f64,
    /// Sample excess kurtosis `b₂ − 3` (biased, as `scipy.stats.kurtosis`).
    pub excess_kurtosis: f64,
    /// Skewness z-score `Z₁`.
    pub z_skewness: f64,
    /// Kurtosis z-score `Z₂`.
    pub z_kurtosis: f64,
    /// The omnibus statistic `K²`.
    pub statistic: f64,
    /// Its p-value under χ²₂.
    pub p_value: f64,
}

/// Why a dimension has no K² test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Degenerate {
    /// The column is constant (`m₂ ≤ (ε·x̄)²`, scipy's criterion): skewness
    /// and kurtosis are undefined.
    Constant,
    /// The kurtosis test's denominator `1 + x√(2/(A−4))` is 0.
    KurtosisUndefined,
}

/// D'Agostino's K² test of one variable (formulas on [`DagostinoK2`]).
///
/// Returns `Ok(Err(Degenerate))` for a constant column.
///
/// # Errors
/// Fewer than 8 values (the skewness test needs `n ≥ 8`, as scipy), or a
/// non-finite value.
pub fn dagostino_k2(x: &[f64]) -> Result<Result<DagostinoK2, Degenerate>, RankingError> {
    if x.len() < 8 {
        return Err(RankingError::TooFewSamples {
            what: "D'Agostino K^2",
            min: 8,
            got: x.len(),
        });
    }
    crate::error::check_finite("D'Agostino K^2", x)?;
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let (mut m2, mut m3, mut m4) = (0.0, 0.0, 0.0);
    for &v in x {
        let d = v - mean;
        let d2 = d * d;
        m2 += d2;
        m3 += d2 * d;
        m4 += d2 * d2;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    if m2 <= (f64::EPSILON * mean) * (f64::EPSILON * mean) {
        return Ok(Err(Degenerate::Constant));
    }
    let sk = m3 / m2.powf(1.5);
    let b2 = m4 / (m2 * m2);

    // skewtest
    let y = sk * (((n + 1.0) * (n + 3.0)) / (6.0 * (n - 2.0))).sqrt();
    let beta2 = 3.0 * (n * n + 27.0 * n - 70.0) * (n + 1.0) * (n + 3.0)
        / ((n - 2.0) * (n + 5.0) * (n + 7.0) * (n + 9.0));
    let w2 = -1.0 + (2.0 * (beta2 - 1.0)).sqrt();
    let delta = 1.0 / (0.5 * w2.ln()).sqrt();
    let alpha = (2.0 / (w2 - 1.0)).sqrt();
    let y = if y == 0.0 { 1.0 } else { y };
    let ya = y / alpha;
    let z1 = delta * (ya + (ya * ya + 1.0).sqrt()).ln();

    // kurtosistest
    let e = 3.0 * (n - 1.0) / (n + 1.0);
    let varb2 = 24.0 * n * (n - 2.0) * (n - 3.0) / ((n + 1.0) * (n + 1.0) * (n + 3.0) * (n + 5.0));
    let xk = (b2 - e) / varb2.sqrt();
    let sqrtbeta1 = 6.0 * (n * n - 5.0 * n + 2.0) / ((n + 7.0) * (n + 9.0))
        * ((6.0 * (n + 3.0) * (n + 5.0)) / (n * (n - 2.0) * (n - 3.0))).sqrt();
    let a =
        6.0 + 8.0 / sqrtbeta1 * (2.0 / sqrtbeta1 + (1.0 + 4.0 / (sqrtbeta1 * sqrtbeta1)).sqrt());
    let term1 = 1.0 - 2.0 / (9.0 * a);
    let denom = 1.0 + xk * (2.0 / (a - 4.0)).sqrt();
    if denom == 0.0 {
        return Ok(Err(Degenerate::KurtosisUndefined));
    }
    let term2 = denom.signum() * ((1.0 - 2.0 / a) / denom.abs()).powf(1.0 / 3.0);
    let z2 = (term1 - term2) / (2.0 / (9.0 * a)).sqrt();

    let k2 = z1 * z1 + z2 * z2;
    let p = (-0.5 * k2).exp();
    if !(k2.is_finite() && p.is_finite()) {
        return Err(RankingError::Numerical {
            what: "D'Agostino K^2",
            reason: format!("Z1 {z1}, Z2 {z2}"),
        });
    }
    Ok(Ok(DagostinoK2 {
        skewness: sk,
        excess_kurtosis: b2 - 3.0,
        z_skewness: z1,
        z_kurtosis: z2,
        statistic: k2,
        p_value: p,
    }))
}

/// χ²_k survival function: statrs' regularized gamma for `k ≤ 10⁷`, the
/// Wilson–Hilferty (1931) cube-root normal approximation above (where the
/// incomplete gamma loses accuracy; relative error of both ≲ 1e-8 there).
fn chi2_sf(x: f64, k: f64) -> Result<f64, RankingError> {
    if k > 1e7 {
        let z = ((x / k).powf(1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / (2.0 / (9.0 * k)).sqrt();
        return Ok(norm_sf(z));
    }
    let c = ChiSquared::new(k).map_err(|e| RankingError::Numerical {
        what: "chi-square",
        reason: format!("{k} degrees of freedom: {e}"),
    })?;
    Ok(c.sf(x))
}

/// Mardia's multivariate skewness and kurtosis tests.
///
/// With `x̄` the mean, `S = (1/N) Σ (x_i − x̄)(x_i − x̄)ᵀ` (the MLE covariance)
/// and `g_ij = (x_i − x̄)ᵀ S⁻¹ (x_j − x̄)`:
///
/// ```text
/// b₁,D = (1/N²) Σ_i Σ_j g_ij³          b₂,D = (1/N) Σ_i g_ii²
/// skewness: N b₁,D / 6 ~ χ²_{D(D+1)(D+2)/6}        (N ≥ 20)
///           N κ b₁,D / 6,  κ = (D+1)(N+1)(N+3) / (N((N+1)(D+1) − 6))   (N < 20, Mardia 1974)
/// kurtosis: z = (b₂,D − D(D+2)) / √(8D(D+2)/N) ~ N(0, 1), two-sided p
/// ```
/// `g_ij = z_iᵀ z_j` with `z_i = L⁻¹(x_i − x̄)`, `S = L Lᵀ` (Cholesky, `gen-metrics-linalg`).
/// `b₁` is summed block by block over rows of `Z Zᵀ` (never storing the
/// `N × N` matrix; upper block triangle only, `N² D / 2` multiply-adds), or, when `D ≤ 256` and `N > 2D²`, from the
/// symmetric third-moment tensor `b₁ = Σ_{abc} (1/N Σ_i z_ia z_ib z_ic)²`
/// (`O(N D³/6)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MardiaTest {
    /// Rows used (after any subsampling).
    pub n: usize,
    /// Dimension.
    pub d: usize,
    /// `b₁,D`.
    pub b1: f64,
    /// The skewness statistic (χ²).
    pub skewness_statistic: f64,
    /// Its degrees of freedom `D(D+1)(D+2)/6`.
    pub skewness_df: f64,
    /// Its p-value.
    pub skewness_p: f64,
    /// `b₂,D`.
    pub b2: f64,
    /// The kurtosis z-score.
    pub kurtosis_z: f64,
    /// Its two-sided p-value.
    pub kurtosis_p: f64,
}

/// Route for `b₁` (exposed for testing both).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MardiaRoute {
    /// Pick by shape (see [`MardiaTest`]).
    Auto,
    /// Blocked Gram `Z Zᵀ`.
    Gram,
    /// Third-moment tensor.
    Tensor,
}

/// Mardia's tests on the rows of `x` (formulas on [`MardiaTest`]).
///
/// # Errors
/// `N ≤ D` or fewer than 3 rows, non-finite values, or a covariance that is
/// not positive definite (constant or collinear features).
pub fn mardia(x: ArrayView2<'_, f64>, route: MardiaRoute) -> Result<MardiaTest, RankingError> {
    let (n, d) = x.dim();
    if d == 0 {
        return Err(RankingError::TooFewSamples {
            what: "Mardia dimension",
            min: 1,
            got: 0,
        });
    }
    if n < 3 || n <= d {
        return Err(RankingError::TooFewSamples {
            what: "Mardia (needs N > D)",
            min: (d + 1).max(3),
            got: n,
        });
    }
    if let Some((index, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(RankingError::NonFinite {
            what: "Mardia",
            index,
            value: *v,
        });
    }
    let nf = n as f64;
    let mean: Vec<f64> = (0..d).map(|j| x.column(j).sum() / nf).collect();
    // Xcᵀ as a D × N matrix.
    let zt = Array2::<f64>::from_shape_fn((d, n), |(j, i)| x[[i, j]] - mean[j]);
    let s = matmul_nt(zt.view(), zt.view(), 1.0 / nf, true)?;
    let l = cholesky_lower(s.view()).map_err(|e| RankingError::SingularCovariance {
        what: "Mardia",
        reason: e.to_string(),
    })?;
    // Zᵀ = L⁻¹ Xcᵀ.
    let zt = solve_lower_triangular(l.view(), zt.view(), true)?;
    // Row-major Z (N × D) for cache-friendly row access.
    let z: Vec<f64> = (0..n)
        .flat_map(|i| (0..d).map(move |j| (i, j)))
        .map(|(i, j)| zt[[j, i]])
        .collect();
    let b2 = (0..n)
        .map(|i| z[i * d..(i + 1) * d].iter().map(|t| t * t).sum::<f64>())
        .map(|g| g * g)
        .sum::<f64>()
        / nf;
    let use_tensor = match route {
        MardiaRoute::Auto => d <= 256 && (n as f64) > 2.0 * (d * d) as f64,
        MardiaRoute::Gram => false,
        MardiaRoute::Tensor => true,
    };
    let b1 = if use_tensor {
        b1_tensor(&z, n, d)
    } else {
        b1_gram(&zt, n, d)?
    };
    let df = (d as f64) * (d as f64 + 1.0) * (d as f64 + 2.0) / 6.0;
    let skew_stat = if n < 20 {
        let df1 = d as f64 + 1.0;
        let kappa = df1 * (nf + 1.0) * (nf + 3.0) / (nf * ((nf + 1.0) * df1 - 6.0));
        nf * kappa * b1 / 6.0
    } else {
        nf * b1 / 6.0
    };
    let skew_p = chi2_sf(skew_stat, df)?;
    let dd2 = d as f64 * (d as f64 + 2.0);
    let kz = (b2 - dd2) / (8.0 * dd2 / nf).sqrt();
    let kp = 2.0 * norm_sf(kz.abs());
    let out = MardiaTest {
        n,
        d,
        b1,
        skewness_statistic: skew_stat,
        skewness_df: df,
        skewness_p: skew_p,
        b2,
        kurtosis_z: kz,
        kurtosis_p: kp,
    };
    if [b1, skew_stat, skew_p, b2, kz, kp]
        .iter()
        .any(|v| !v.is_finite())
    {
        return Err(RankingError::Numerical {
            what: "Mardia",
            reason: format!("{out:?}"),
        });
    }
    Ok(out)
}

/// `(1/N²) Σ_ij (z_iᵀ z_j)³` by row blocks of `Z Zᵀ` (`zt` is `Zᵀ`, D × N).
/// Only the upper block triangle is formed: block `[i0, i1)` is multiplied by
/// columns `[i0, N)`; its own square counts once, the rest twice (symmetry).
fn b1_gram(zt: &Array2<f64>, n: usize, _d: usize) -> Result<f64, RankingError> {
    // About 2^21 Gram entries (16 MiB) per block.
    let block = ((1usize << 21) / n).clamp(1, n);
    let starts: Vec<usize> = (0..n).step_by(block).collect();
    let partial: Vec<f64> = starts
        .par_iter()
        .map(|&i0| {
            let i1 = (i0 + block).min(n);
            let rows = i1 - i0;
            // Sequential product: the blocks already run in parallel.
            let g = matmul_tn(
                zt.slice_axis(Axis(1), Slice::from(i0..i1)),
                zt.slice_axis(Axis(1), Slice::from(i0..n)),
                1.0,
                false,
            )?;
            let (mut own, mut rest) = (0.0, 0.0);
            for j in 0..n - i0 {
                let mut s = 0.0;
                for i in 0..rows {
                    let v = g[[i, j]];
                    s += v * v * v;
                }
                if j < rows {
                    own += s;
                } else {
                    rest += s;
                }
            }
            Ok(own + 2.0 * rest)
        })
        .collect::<Result<_, RankingError>>()?;
    Ok(partial.iter().sum::<f64>() / (n as f64 * n as f64))
}

/// `Σ_{abc} M_abc²`, `M_abc = (1/N) Σ_i z_ia z_ib z_ic`, over `a ≤ b ≤ c` with
/// multiplicities 1, 3, 6 (`z` row-major N × D).
fn b1_tensor(z: &[f64], n: usize, d: usize) -> f64 {
    // Offsets of the (a, b) rows of the packed upper tensor: c runs b..d.
    let mut offsets = Vec::with_capacity(d * d);
    let mut len = 0usize;
    for a in 0..d {
        for b in 0..d {
            offsets.push(len);
            if b >= a {
                len += d - b;
            }
        }
    }
    let chunks = 16usize.min(n);
    let per = n.div_ceil(chunks);
    let partial: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|ci| {
            let mut acc = vec![0.0f64; len];
            for i in ci * per..((ci + 1) * per).min(n) {
                let row = &z[i * d..(i + 1) * d];
                for a in 0..d {
                    for b in a..d {
                        let p = row[a] * row[b];
                        let o = offsets[a * d + b];
                        for (slot, &zc) in acc[o..o + d - b].iter_mut().zip(&row[b..]) {
                            *slot += p * zc;
                        }
                    }
                }
            }
            acc
        })
        .collect();
    let nf = n as f64;
    let mut total = 0.0;
    for a in 0..d {
        for b in a..d {
            let o = offsets[a * d + b];
            for (k, c) in (b..d).enumerate() {
                let m: f64 = partial.iter().map(|p| p[o + k]).sum::<f64>() / nf;
                let mult = if a == b && b == c {
                    1.0
                } else if a == b || b == c {
                    3.0
                } else {
                    6.0
                };
                total += mult * m * m;
            }
        }
    }
    total
}

/// Per-dimension result of [`NormalityTest::compute`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DimensionNormality {
    /// Column index.
    pub dim: usize,
    /// The K² test, or why there is none.
    pub test: Result<DagostinoK2, Degenerate>,
}

/// One-line comparison of encoders: how often the per-dimension tests reject
/// and what Mardia says. Its `Display` is the line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalitySummary {
    /// Rows.
    pub n: usize,
    /// Dimensions.
    pub d: usize,
    /// Level.
    pub alpha: f64,
    /// Dimensions with a K² test.
    pub n_tested: usize,
    /// Constant (or otherwise untestable) dimensions.
    pub n_degenerate: usize,
    /// Fraction of tested dimensions with `p < alpha`.
    pub fraction_rejecting: f64,
    /// Fraction of tested dimensions with `p < alpha / n_tested` (Bonferroni).
    pub fraction_rejecting_bonferroni: f64,
    /// Median K² over tested dimensions.
    pub median_k2: f64,
    /// Mardia skewness p-value (if computed).
    pub mardia_skewness_p: Option<f64>,
    /// Mardia kurtosis p-value (if computed).
    pub mardia_kurtosis_p: Option<f64>,
}

impl fmt::Display for NormalitySummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "N={} D={}: {:.1}% of {} dims reject normality at alpha={} (D'Agostino K^2; {:.1}% after Bonferroni; median K^2 {:.3}; {} constant)",
            self.n,
            self.d,
            100.0 * self.fraction_rejecting,
            self.n_tested,
            self.alpha,
            100.0 * self.fraction_rejecting_bonferroni,
            self.median_k2,
            self.n_degenerate
        )?;
        match (self.mardia_skewness_p, self.mardia_kurtosis_p) {
            (Some(s), Some(k)) => write!(f, "; Mardia skewness p={s:.3e}, kurtosis p={k:.3e}"),
            _ => write!(f, "; Mardia not computed"),
        }
    }
}

/// The output of [`NormalityTest::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalityReport {
    /// Per-dimension K² tests.
    pub per_dim: Vec<DimensionNormality>,
    /// Mardia's tests (`None` if skipped; see `mardia_skipped`).
    pub mardia: Option<MardiaTest>,
    /// Why Mardia was not computed (singular covariance, `N ≤ D`, disabled).
    pub mardia_skipped: Option<String>,
    /// The summary line.
    pub summary: NormalitySummary,
}

/// Normality of a feature matrix `[N, D]` (rows are samples): per-dimension
/// D'Agostino K² ([`dagostino_k2`]) and Mardia's tests ([`mardia`]).
///
/// Mardia costs `O(N² D)`; above `mardia_max_samples` rows it runs on a
/// uniform subsample without replacement (partial Fisher–Yates with
/// `ChaCha8Rng::seed_from_u64(seed)`), which keeps it valid but less powerful.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct NormalityTest {
    /// Level for the rejection fractions (default 0.05).
    pub alpha: f64,
    /// Run Mardia's tests (default true).
    pub mardia: bool,
    /// Subsample size cap for Mardia (default `Some(10_000)`; `None`: all rows).
    pub mardia_max_samples: Option<usize>,
    /// Seed of the subsample (default 0).
    pub seed: u64,
}

impl Default for NormalityTest {
    fn default() -> Self {
        Self {
            alpha: 0.05,
            mardia: true,
            mardia_max_samples: Some(10_000),
            seed: 0,
        }
    }
}

impl NormalityTest {
    /// Sets the level.
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Enables or disables Mardia's tests.
    pub fn mardia(mut self, on: bool) -> Self {
        self.mardia = on;
        self
    }

    /// Sets the Mardia subsample cap.
    pub fn mardia_max_samples(mut self, cap: Option<usize>) -> Self {
        self.mardia_max_samples = cap;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Runs the tests on `features` (computed in `f64`).
    ///
    /// # Errors
    /// Fewer than 8 rows, no columns, non-finite values, `alpha ∉ (0, 1)`, a
    /// subsample cap below 3. A Mardia failure (singular covariance, `N ≤ D`)
    /// is not an error: it is reported in `mardia_skipped`.
    pub fn compute(&self, features: ArrayView2<'_, f32>) -> Result<NormalityReport, RankingError> {
        let (n, d) = features.dim();
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(RankingError::InvalidParameter {
                name: "alpha",
                reason: format!("must be in (0, 1), got {}", self.alpha),
            });
        }
        if d == 0 {
            return Err(RankingError::TooFewSamples {
                what: "feature dimension",
                min: 1,
                got: 0,
            });
        }
        if n < 8 {
            return Err(RankingError::TooFewSamples {
                what: "normality test rows",
                min: 8,
                got: n,
            });
        }
        if let Some((index, v)) = features.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(RankingError::NonFinite {
                what: "features",
                index,
                value: f64::from(*v),
            });
        }
        let per_dim: Vec<DimensionNormality> = (0..d)
            .into_par_iter()
            .map(|j| {
                let col: Vec<f64> = features.column(j).iter().map(|&v| f64::from(v)).collect();
                dagostino_k2(&col).map(|test| DimensionNormality { dim: j, test })
            })
            .collect::<Result<_, _>>()?;

        let (mardia, mardia_skipped) = if !self.mardia {
            (None, Some("disabled".to_string()))
        } else {
            let rows: Vec<usize> = match self.mardia_max_samples {
                Some(cap) if cap < 3 => {
                    return Err(RankingError::InvalidParameter {
                        name: "mardia_max_samples",
                        reason: format!("must be at least 3, got {cap}"),
                    });
                }
                Some(cap) if cap < n => {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                    let mut idx: Vec<usize> = (0..n).collect();
                    for i in 0..cap {
                        let j = i + rng.random_range(0..(n - i) as u64) as usize;
                        idx.swap(i, j);
                    }
                    idx.truncate(cap);
                    idx.sort_unstable();
                    idx
                }
                _ => (0..n).collect(),
            };
            let x = ndarray::Array2::from_shape_fn((rows.len(), d), |(i, j)| {
                f64::from(features[[rows[i], j]])
            });
            match mardia(x.view(), MardiaRoute::Auto) {
                Ok(m) => (Some(m), None),
                Err(
                    e @ (RankingError::SingularCovariance { .. }
                    | RankingError::TooFewSamples { .. }),
                ) => (None, Some(e.to_string())),
                Err(e) => return Err(e),
            }
        };

        let mut k2s: Vec<f64> = Vec::new();
        let mut pvals: Vec<f64> = Vec::new();
        for t in per_dim.iter().filter_map(|t| t.test.ok()) {
            k2s.push(t.statistic);
            pvals.push(t.p_value);
        }
        let n_tested = k2s.len();
        k2s.sort_by(f64::total_cmp);
        let frac = |thr: f64| {
            if n_tested == 0 {
                0.0
            } else {
                pvals.iter().filter(|&&p| p < thr).count() as f64 / n_tested as f64
            }
        };
        let summary = NormalitySummary {
            n,
            d,
            alpha: self.alpha,
            n_tested,
            n_degenerate: d - n_tested,
            fraction_rejecting: frac(self.alpha),
            fraction_rejecting_bonferroni: frac(self.alpha / n_tested.max(1) as f64),
            median_k2: if n_tested == 0 {
                0.0
            } else {
                crate::stats::percentile_sorted(&k2s, 50.0)
            },
            mardia_skewness_p: mardia.map(|m| m.skewness_p),
            mardia_kurtosis_p: mardia.map(|m| m.kurtosis_p),
        };
        Ok(NormalityReport {
            per_dim,
            mardia,
            mardia_skipped,
            summary,
        })
    }
}
