//! Confidence intervals for two-sample metrics from subsamples drawn without
//! replacement (random half-splits), for statistics that the ordinary
//! bootstrap gets wrong.
//!
//! **Why not the bootstrap.** A bootstrap resample draws `N` rows *with*
//! replacement, so about 37% of its rows are duplicates. For k-NN metrics a
//! duplicated row is its own nearest neighbour at distance 0, so the k-NN radii
//! collapse and precision, recall, density and coverage move systematically;
//! FID's upward bias (about `tr Σ / N`) grows because a resample has only
//! about `0.632 N` distinct rows. The replicates are then centred far from the
//! estimate and the percentile interval can exclude the estimate itself (seen:
//! FID 10.1 with 95% interval [13.8, 15.3]; coverage 0.776 with [0.522, 0.651]).
//! A subsample drawn *without* replacement is an honest sample of the
//! population of a smaller size: no duplicates, no collapsed radii. The
//! sampling distribution at size `N` is then inferred from honest samples of
//! size `N/2` through the `1/N` rate.
//!
//! **Estimand.** Every metric here is a statistic `θ̂ = T(X_1..X_N, Y_1..Y_M)`
//! of `N` real and `M` generated i.i.d. rows. Its finite-sample value depends
//! on `(N, M)`: FID is biased upward by `O(1/N + 1/M)`; k-NN metrics depend on
//! the sizes through the k-NN radii; only unbiased statistics (KID's MMD²_u)
//! have no size dependence. The default estimand is therefore the metric's
//! value **at the given sample sizes**,
//!
//! ```text
//! θ_{N,M} = E[ T(X_1..X_N, Y_1..Y_M) ],   X_i ~ P_real, Y_j ~ P_gen i.i.d.
//! ```
//!
//! (the value the same evaluation would give on average over infinitely many
//! independent draws of both sets; for KID it equals the population MMD²). It
//! is the quantity a reported "FID@50k" estimates, and it is defined for every
//! metric key, which is what a generic interval needs. [`Estimand::LargeSample`]
//! targets instead `θ_∞ = lim θ_{N,M}` for statistics whose bias is linear in
//! `1/N` (FID, FD; Chong & Forsyth 2020), by jackknife extrapolation; it is not
//! meaningful for k-NN metrics, whose size dependence is not `1/N`.
//!
//! **Method: random half-splits (Mahalanobis 1946, interpenetrating
//! subsamples; McCarthy 1969, half-samples), or delete-d subsampling
//! (Politis & Romano 1994; Shao & Wu 1989).** Both draw rows *without*
//! replacement and differ in how the variance is read off.
//!
//! [`Design::HalfSplits`] (default): split `s = 1..S` divides the real rows at
//! random into two disjoint halves `A_s`, `B_s` (`⌊N/2⌋` and `⌈N/2⌉` rows) and
//! the generated rows likewise, and evaluates the metric on both. `A_s` and
//! `B_s` are two *independent* samples of half size, so
//! `E[(θ̂_A − θ̂_B)²] = 2 Var(θ̂_{N/2})` exactly, whatever the statistic
//! (k-NN radii included: each half has its own honest radii). With the `1/N`
//! variance rate of a √N-consistent statistic, `Var(θ̂_N) = Var(θ̂_{N/2})/2`:
//!
//! ```text
//! SE² = (1/S) Σ_s (θ̂_{A_s} − θ̂_{B_s})² / 4,   θ̄ = mean of the 2S half values,  c = 1
//! ```
//!
//! [`Design::Subsample`]: subsample `s` draws `b_r = round(f N)` real and
//! `b_g = round(f M)` generated rows; for a statistic with an asymptotically
//! linear part `Var*(θ̂_b | data) ≈ Var(θ̂_N)(1 − f)/f`, so
//!
//! ```text
//! c = f̄/(1 − f̄),  f̄ = (b_r/N + b_g/M)/2;   SE² = c · (1/(S−1)) Σ_s (θ̂_s − θ̄)²   (delete-d jackknife)
//! ```
//!
//! For smooth statistics (FID, KID) both agree. For the k-NN metrics the
//! conditional spread of overlapping subsamples also contains the
//! reshuffling of k-NN radii among the rows kept, which is not sampling
//! noise: in the coverage simulation (n = 300, D = 8) the delete-d standard
//! error of precision, recall and coverage was 10–21% too large at `f = ½`,
//! 20–39% at `f = 0.7` and 27–47% at `f = 0.8` (coverage up to 0.99), while
//! half-splits matched the true spread within 5% (`docs/intervals.md`).
//! Hence the default.
//!
//! Then, for either design, with `t = t_{S−1, (1+confidence)/2}` (the Student
//! quantile allows for the Monte Carlo noise of `S` random splits):
//!
//! ```text
//! at the sample size:  [θ̂ − t·SE, θ̂ + t·SE]
//! bias (θ̂ − θ_∞)   :  B̂ = c (θ̄ − θ̂)                       (1/N extrapolation; jackknife bias)
//! large sample      :  centre θ̂ − B̂,  SE_∞² = SE² (1 + m),  [centre ∓ t·SE_∞]
//!                      m = 1/(2S) (half-splits) or c/S (subsample): Monte Carlo noise of θ̄
//! ```
//!
//! The bias line is the extrapolation `E[θ̂_n] = θ_∞ + a/n` through sizes
//! `N/2` and `N` (through `fN` and `N` for subsamples), the idea of FID-∞
//! (Chong & Forsyth 2020). The interval at the sample size is centred on
//! the estimate, so it always contains it; the large-sample interval is
//! centred on the bias-corrected value and excludes the estimate exactly when
//! `|B̂| > t·SE_∞`, i.e. when the estimate's finite-sample bias is larger than
//! its sampling error ([`Interval::contains_estimate`] says so).
//!
//! *A Study on the Evaluation of Generative Models* (Betzalel et al. 2022)
//! shows that FID/IS fluctuate enough to reorder close models and that
//! FID-∞'s bias removal helps; these intervals quantify both: the
//! fluctuation at the sample size, and (for FID) the bias.
//!
//! **Limits.** The `1/N` variance rate is assumed. When the two distributions
//! are nearly identical the second-order (degenerate U-statistic) part of
//! FID/KID, of order `1/N²`, is a larger share of the variance and half-splits
//! overstate it (by a factor 2; delete-d by `1 + 1/f`), so the interval is
//! conservative there. Each half (subsample) must be a valid input of the
//! metric: FID needs `N/2 > D` for a non-singular covariance; a k-NN metric
//! needs `k < N/2`. Half-splits need at least 4 rows per set.
//!
//! **Coverage** was measured by simulation (`examples/coverage.rs`, results in
//! `docs/intervals.md`) for FID, KID, precision/recall (k=3) and
//! density/coverage (k=5).
//!
//! **Determinism.** Split (subsample) `s` is drawn from
//! `ChaCha8Rng::seed_from_u64(seed)` switched to stream `s`, real rows first
//! (partial Fisher–Yates over `0..N` with `random_range`; the first `b` rows
//! are `A`, the rest `B`), then generated rows;
//! subsamples run in parallel with rayon and are collected in order, so the
//! result does not depend on the number of threads.

use ndarray::{Array2, ArrayView2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::bootstrap::{check_common, check_set};
use crate::error::RankingError;

/// A metric with several keys from one evaluation of a (real, fake) pair of
/// feature matrices (rows are samples), e.g. `[precision, recall]`.
pub type MultiMetricFn<'a, E> =
    dyn Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<Vec<f64>, E> + Sync + 'a;

/// What the interval is an interval for (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Estimand {
    /// `θ_{N,M} = E[T(X_1..X_N, Y_1..Y_M)]`: the expected value of the metric
    /// at the given sample sizes over repeated independent draws of both sets
    /// (default; right for every metric, the only meaningful one for k-NN
    /// metrics).
    #[default]
    AtSampleSize,
    /// `θ_∞ = lim_{N,M→∞} θ_{N,M}` for a statistic whose bias is linear in
    /// `1/N` at a fixed ratio `N/M` (FID, FD; Chong & Forsyth 2020): the
    /// estimate minus the jackknife bias `c (θ̄ − θ̂)`.
    LargeSample,
}

/// How the subsamples are drawn (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum Design {
    /// Random complementary half-splits: each split `s` divides the real rows
    /// into two disjoint halves `A_s`, `B_s` (sizes `⌊N/2⌋`, `⌈N/2⌉`) and the
    /// generated rows likewise, and evaluates the metric on both,
    /// `SE² = (1/S) Σ_s (θ̂_{A_s} − θ̂_{B_s})² / 4`. The two halves are
    /// independent samples of half size, so `E[(θ̂_A − θ̂_B)²]/4 =
    /// Var(θ̂_{N/2})/2` exactly; the only assumption is the `1/N` variance rate
    /// `Var(θ̂_N) = Var(θ̂_{N/2})/2`. `2S` evaluations. `fraction` is unused.
    #[default]
    HalfSplits,
    /// Delete-d jackknife / subsampling without replacement at fraction `f`:
    /// `SE² = c · sample variance of θ̂_s`, `c = f/(1 − f)`. `S` evaluations.
    /// Overstates the variance of k-NN metrics (see `docs/intervals.md`).
    Subsample,
}

/// Confidence intervals for any two-sample metric from random half-splits
/// (default) or delete-d subsamples, both without replacement (formulas in
/// the [module docs](self)).
///
/// ```
/// use gen_metrics_ranking::interval::Subsampling;
/// use ndarray::{Array2, ArrayView2};
/// // Difference of the means of column 0, and of column 1: two keys at once.
/// let real = Array2::from_shape_fn((200, 2), |(i, j)| ((i * 7 + j) % 13) as f32);
/// let fake = Array2::from_shape_fn((150, 2), |(i, j)| ((i * 5 + j) % 11) as f32);
/// let mean = |x: ArrayView2<'_, f32>, c: usize| {
///     x.column(c).iter().map(|&v| f64::from(v)).sum::<f64>() / x.nrows() as f64
/// };
/// let ci = Subsampling::default().n_subsamples(100).intervals(
///     real.view(),
///     fake.view(),
///     |r, f| Ok::<_, std::convert::Infallible>(vec![mean(r, 0) - mean(f, 0), mean(r, 1) - mean(f, 1)]),
/// )?;
/// assert_eq!(ci.len(), 2);
/// assert!(ci[0].low <= ci[0].estimate && ci[0].estimate <= ci[0].high);
/// # Ok::<(), gen_metrics_ranking::RankingError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Subsampling {
    /// Number of half-splits (subsamples) `S` (default 100, at least 2); a
    /// half-split costs two metric evaluations at half size.
    pub n_subsamples: usize,
    /// How subsamples are drawn (default [`Design::HalfSplits`]).
    pub design: Design,
    /// Subsample fraction `f ∈ (0, 1)` of each set for [`Design::Subsample`]
    /// (default 0.5).
    pub fraction: f64,
    /// Interval coverage (default 0.95).
    pub confidence: f64,
    /// Seed of the ChaCha8 generator (default 0).
    pub seed: u64,
    /// What the interval covers (default [`Estimand::AtSampleSize`]).
    pub estimand: Estimand,
}

impl Default for Subsampling {
    fn default() -> Self {
        Self {
            n_subsamples: 100,
            design: Design::HalfSplits,
            fraction: 0.5,
            confidence: 0.95,
            seed: 0,
            estimand: Estimand::AtSampleSize,
        }
    }
}

/// One metric key's interval, the output of [`Subsampling::intervals`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Interval {
    /// The metric on all rows, `θ̂`.
    pub estimate: f64,
    /// Centre of the interval: `θ̂` ([`Estimand::AtSampleSize`]) or the
    /// bias-corrected `θ̂ − B̂` ([`Estimand::LargeSample`]).
    pub center: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
    /// Standard error of [`Interval::center`] (`SE` or `SE_∞`).
    pub std_error: f64,
    /// Estimated finite-sample bias relative to the large-sample value,
    /// `B̂ = c (θ̄ − θ̂)` (meaningful for `1/N`-biased statistics only).
    pub bias: f64,
    /// Mean of the subsample values, `θ̄` (the metric at the subsample sizes).
    pub subsample_mean: f64,
    /// Whether `low ≤ estimate ≤ high`. Always true at the sample size; for
    /// the large-sample estimand false exactly when `|B̂| > t·SE_∞`: the
    /// estimate's finite-sample bias is larger than its sampling error.
    pub contains_estimate: bool,
    /// Coverage.
    pub confidence: f64,
    /// The estimand.
    pub estimand: Estimand,
    /// The design.
    pub design: Design,
    /// Quantile `t_{S−1, (1+confidence)/2}` used.
    pub t_quantile: f64,
    /// Subsample sizes `(b_r, b_g)` (for half-splits: of half `A`; half `B`
    /// has the other `N − b_r`, `M − b_g` rows).
    pub subsample_sizes: (usize, usize),
    /// The subsample values `θ̂_s` in subsample order (for half-splits
    /// `θ̂_{A_1}, θ̂_{B_1}, θ̂_{A_2}, …`).
    pub replicates: Vec<f64>,
}

/// The rows of two complementary halves `(A, B)` of one set, each sorted.
pub type HalfSplit = (Vec<usize>, Vec<usize>);

/// The row choice of half-split `s` (see the [module docs](self)): the real
/// rows `0..n` into halves `(A, B)` of `⌊n/2⌋` and `⌈n/2⌉` rows, then the
/// generated rows `0..m` likewise, from `ChaCha8Rng::seed_from_u64(seed)` on
/// stream `s`, real rows first. [`Subsampling::intervals`] uses exactly
/// these; a pipeline that evaluates several metrics (or several generated
/// sets against one real set) on the same halves calls this and then
/// [`Subsampling::interval_from_halves`].
pub fn half_split_rows(seed: u64, s: usize, n: usize, m: usize) -> (HalfSplit, HalfSplit) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(s as u64);
    let real = split_rows(&mut rng, n, n / 2);
    let fake = split_rows(&mut rng, m, m / 2);
    (real, fake)
}

/// Rows `0..n` split at random: the first `b` of a partial Fisher–Yates
/// shuffle (with `random_range`) and the other `n − b`, each sorted (a
/// subsample keeps the original row order).
fn split_rows(rng: &mut ChaCha8Rng, n: usize, b: usize) -> (Vec<usize>, Vec<usize>) {
    let mut idx: Vec<usize> = (0..n).collect();
    for i in 0..b {
        let j = rng.random_range(i as u64..n as u64) as usize;
        idx.swap(i, j);
    }
    let mut rest = idx.split_off(b);
    idx.sort_unstable();
    rest.sort_unstable();
    (idx, rest)
}

fn subsample_size(what: &'static str, n: usize, fraction: f64) -> Result<usize, RankingError> {
    let b = (fraction * n as f64).round() as usize;
    if b < 2 || b >= n {
        return Err(RankingError::InvalidParameter {
            name: "fraction",
            reason: format!(
                "{what}: a subsample of round({fraction} × {n}) = {b} rows; \
                 need at least 2 and fewer than {n}"
            ),
        });
    }
    Ok(b)
}

fn eval_keys<E>(
    metric: &MultiMetricFn<'_, E>,
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    resample: Option<usize>,
    n_keys: Option<usize>,
) -> Result<Vec<f64>, RankingError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let v = metric(real, fake).map_err(|e| RankingError::Metric {
        metric: "metric".to_string(),
        resample,
        error: Box::new(e),
    })?;
    match n_keys {
        Some(k) if v.len() != k => {
            return Err(RankingError::LengthMismatch {
                what: "metric keys on a subsample vs on the full data",
                left: v.len(),
                right: k,
            });
        }
        None if v.is_empty() => {
            return Err(RankingError::TooFewSamples {
                what: "metric keys",
                min: 1,
                got: 0,
            });
        }
        _ => {}
    }
    if let Some((i, &value)) = v.iter().enumerate().find(|(_, x)| !x.is_finite()) {
        return Err(RankingError::MetricNonFinite {
            metric: match resample {
                Some(s) => format!("key {i} on subsample {s}"),
                None => format!("key {i}"),
            },
            value,
        });
    }
    Ok(v)
}

/// `t_{df, p}`.
fn student_t_quantile(df: usize, p: f64) -> Result<f64, RankingError> {
    let t = StudentsT::new(0.0, 1.0, df as f64).map_err(|e| RankingError::Numerical {
        what: "Student t quantile",
        reason: e.to_string(),
    })?;
    let q = t.inverse_cdf(p);
    if !q.is_finite() {
        return Err(RankingError::Numerical {
            what: "Student t quantile",
            reason: format!("t_({df}, {p}) = {q}"),
        });
    }
    Ok(q)
}

impl Subsampling {
    /// Sets `S`.
    pub fn n_subsamples(mut self, n: usize) -> Self {
        self.n_subsamples = n;
        self
    }

    /// Sets the subsample fraction `f` and selects [`Design::Subsample`].
    pub fn fraction(mut self, f: f64) -> Self {
        self.fraction = f;
        self.design = Design::Subsample;
        self
    }

    /// Sets the design.
    pub fn design(mut self, design: Design) -> Self {
        self.design = design;
        self
    }

    /// Sets the coverage.
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the estimand.
    pub fn estimand(mut self, estimand: Estimand) -> Self {
        self.estimand = estimand;
        self
    }

    /// One interval per key of `metric(real, fake)` (a closure that returns
    /// several values of one evaluation, e.g. precision and recall, so each
    /// subsample is evaluated once for all of them), in the closure's order.
    /// Formulas in the [module docs](self).
    ///
    /// # Errors
    /// Bad parameters (`S < 2`, `confidence ∉ (0, 1)`, a fraction that gives a
    /// subsample of fewer than 2 rows or of a whole set), fewer than 2 rows in
    /// a set, mismatched feature dimensions, non-finite features, a metric
    /// error ([`RankingError::Metric`]), no keys or a different number of keys
    /// on a subsample, or a non-finite metric value.
    pub fn intervals<F, E>(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        metric: F,
    ) -> Result<Vec<Interval>, RankingError>
    where
        F: Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<Vec<f64>, E> + Sync,
        E: std::error::Error + Send + Sync + 'static,
    {
        check_common(self.n_subsamples, self.confidence)?;
        check_set("real", &real)?;
        check_set("fake", &fake)?;
        if real.ncols() != fake.ncols() {
            return Err(RankingError::DimensionMismatch {
                what: "real vs fake features",
                left: real.ncols(),
                right: fake.ncols(),
            });
        }
        let (n, m) = (real.nrows(), fake.nrows());
        let split = self.design == Design::HalfSplits;
        let (br, bg, c) = if split {
            for (what, rows) in [
                ("real rows for half-splits", n),
                ("fake rows for half-splits", m),
            ] {
                if rows < 4 {
                    return Err(RankingError::TooFewSamples {
                        what,
                        min: 4,
                        got: rows,
                    });
                }
            }
            (n / 2, m / 2, 1.0)
        } else {
            if !(self.fraction > 0.0 && self.fraction < 1.0) {
                return Err(RankingError::InvalidParameter {
                    name: "fraction",
                    reason: format!("must be in (0, 1), got {}", self.fraction),
                });
            }
            let br = subsample_size("real", n, self.fraction)?;
            let bg = subsample_size("fake", m, self.fraction)?;
            let f_bar = 0.5 * (br as f64 / n as f64 + bg as f64 / m as f64);
            (br, bg, f_bar / (1.0 - f_bar))
        };
        let t = student_t_quantile(self.n_subsamples - 1, 0.5 + 0.5 * self.confidence)?;

        let metric = &metric;
        let estimate = eval_keys(metric, real, fake, None, None)?;
        let n_keys = estimate.len();
        // Per subsample: one evaluation, or two (halves A and B) for a split.
        let reps: Vec<Vec<Vec<f64>>> = (0..self.n_subsamples)
            .into_par_iter()
            .map(|s| {
                let ((ir, jr), (ig, jg)) = if split {
                    half_split_rows(self.seed, s, n, m)
                } else {
                    let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
                    rng.set_stream(s as u64);
                    (split_rows(&mut rng, n, br), split_rows(&mut rng, m, bg))
                };
                let mut out = Vec::with_capacity(2);
                let r: Array2<f32> = real.select(Axis(0), &ir);
                let g: Array2<f32> = fake.select(Axis(0), &ig);
                out.push(eval_keys(
                    metric,
                    r.view(),
                    g.view(),
                    Some(s),
                    Some(n_keys),
                )?);
                if split {
                    let r: Array2<f32> = real.select(Axis(0), &jr);
                    let g: Array2<f32> = fake.select(Axis(0), &jg);
                    out.push(eval_keys(
                        metric,
                        r.view(),
                        g.view(),
                        Some(s),
                        Some(n_keys),
                    )?);
                }
                Ok(out)
            })
            .collect::<Result<_, RankingError>>()?;

        (0..n_keys)
            .map(|k| {
                let per: Vec<Vec<f64>> = reps
                    .iter()
                    .map(|v| v.iter().map(|x| x[k]).collect())
                    .collect();
                self.interval_from_replicates(estimate[k], &per, (br, bg), c, t)
                    .map_err(|e| match e {
                        RankingError::Numerical { what, reason } => RankingError::Numerical {
                            what,
                            reason: format!("key {k}: {reason}"),
                        },
                        other => other,
                    })
            })
            .collect()
    }

    /// One key's interval from half-split values `(θ̂_{A_s}, θ̂_{B_s})`, one
    /// pair per split, computed on the rows of [`half_split_rows`] (the
    /// formulas of the [module docs](self); `estimate` is the key on all
    /// rows, `sizes` the half sizes `(⌊N/2⌋, ⌊M/2⌋)`).
    ///
    /// # Errors
    /// Fewer than 2 splits, a confidence outside (0, 1), non-finite values.
    pub fn interval_from_halves(
        &self,
        estimate: f64,
        halves: &[(f64, f64)],
        sizes: (usize, usize),
    ) -> Result<Interval, RankingError> {
        let this = Subsampling {
            n_subsamples: halves.len(),
            design: Design::HalfSplits,
            ..*self
        };
        check_common(this.n_subsamples, this.confidence)?;
        if let Some(v) = std::iter::once(estimate)
            .chain(halves.iter().flat_map(|&(a, b)| [a, b]))
            .find(|v| !v.is_finite())
        {
            return Err(RankingError::MetricNonFinite {
                metric: "half-split value".into(),
                value: v,
            });
        }
        let t = student_t_quantile(this.n_subsamples - 1, 0.5 + 0.5 * this.confidence)?;
        let per: Vec<Vec<f64>> = halves.iter().map(|&(a, b)| vec![a, b]).collect();
        this.interval_from_replicates(estimate, &per, sizes, 1.0, t)
    }

    /// The interval of one key from its replicates: one value per subsample
    /// (`Design::Subsample`) or the two half values per split.
    fn interval_from_replicates(
        &self,
        theta: f64,
        reps: &[Vec<f64>],
        sizes: (usize, usize),
        c: f64,
        t: f64,
    ) -> Result<Interval, RankingError> {
        let split = self.design == Design::HalfSplits;
        let s_count = reps.len() as f64;
        let replicates: Vec<f64> = reps.iter().flatten().copied().collect();
        let mean = replicates.iter().sum::<f64>() / replicates.len() as f64;
        let var = if split {
            reps.iter()
                .map(|v| (v[0] - v[1]).powi(2) / 4.0)
                .sum::<f64>()
                / s_count
        } else {
            c * replicates
                .iter()
                .map(|x| (x - mean) * (x - mean))
                .sum::<f64>()
                / (s_count - 1.0)
        };
        let bias = c * (mean - theta);
        // Monte Carlo noise of θ̄ (S values, or 2S half values) in the bias.
        let mc = if split {
            1.0 / (2.0 * s_count)
        } else {
            c / s_count
        };
        let (center, std_error) = match self.estimand {
            Estimand::AtSampleSize => (theta, var.sqrt()),
            Estimand::LargeSample => (theta - bias, (var * (1.0 + mc)).sqrt()),
        };
        let (low, high) = (center - t * std_error, center + t * std_error);
        if !(low.is_finite() && high.is_finite()) {
            return Err(RankingError::Numerical {
                what: "subsampling interval",
                reason: format!("[{low}, {high}]"),
            });
        }
        Ok(Interval {
            estimate: theta,
            center,
            low,
            high,
            std_error,
            bias,
            subsample_mean: mean,
            contains_estimate: low <= theta && theta <= high,
            confidence: self.confidence,
            estimand: self.estimand,
            design: self.design,
            t_quantile: t,
            subsample_sizes: sizes,
            replicates,
        })
    }

    /// [`Subsampling::intervals`] for a metric with a single key.
    ///
    /// # Errors
    /// As [`Subsampling::intervals`].
    pub fn interval<F, E>(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        metric: F,
    ) -> Result<Interval, RankingError>
    where
        F: Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<f64, E> + Sync,
        E: std::error::Error + Send + Sync + 'static,
    {
        let mut v = self.intervals(real, fake, |r, f| metric(r, f).map(|x| vec![x]))?;
        v.pop().ok_or(RankingError::TooFewSamples {
            what: "metric keys",
            min: 1,
            got: 0,
        })
    }
}
