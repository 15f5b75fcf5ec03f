//! Bootstrap confidence intervals for any two-sample metric, and the stability
//! of a ranking of models under resampling.
//!
//! *A Study on the Evaluation of Generative Models* (Betzalel et al., 2022)
//! finds that FID and IS "rank close models" unreliably. The question this
//! module answers from data is: if the real and generated sample sets had been
//! drawn again, how often would model A still rank above model B, and how
//! much would the Kendall tau between two metrics' rankings move?
//!
//! **Resampling scheme (Efron 1979, two-sample bootstrap).** Resample `b`
//! (`b = 0..B`) draws `N_real` real rows and, for each generated set in order,
//! `N_fake` rows, uniformly with replacement, from
//! `ChaCha8Rng::seed_from_u64(seed)` switched to stream `b`
//! (`set_stream(b)`), indices as `random_range(0..N)` on `u64`. Each resample
//! has its own stream, so the numbers do not depend on the number of threads:
//! resamples run in parallel with rayon and are collected in order.
//!
//! The metric is any closure `Fn(real, fake) -> Result<f64, E>` (for a
//! `gen_metrics_distribution::TwoSampleMetric` `m`:
//! `|r, f| m.compute(r, f).map(|o| o.value)`).

use ndarray::{Array2, ArrayView2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::error::RankingError;
use crate::rank_correlation::kendall_tau_b;
use crate::stats::{mean_std, norm_cdf, norm_ppf, percentile_sorted};

/// A metric of a (real, fake) pair of feature matrices (rows are samples).
pub type MetricFn<'a, E> =
    dyn Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<f64, E> + Sync + 'a;

/// How the interval is read off the bootstrap replicates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub enum CiMethod {
    /// Percentile interval (Efron & Tibshirani 1993, §13.3):
    /// `[q_{α/2}, q_{1−α/2}]` of the replicates (numpy's linear percentile).
    #[default]
    Percentile,
    /// Bias-corrected and accelerated interval (Efron 1987; Efron &
    /// Tibshirani 1993, §14.3), with the two-sample jackknife acceleration of
    /// `scipy.stats.bootstrap(method="BCa")`. Costs `N_real + N_fake` extra
    /// metric evaluations (leave-one-out on each set).
    Bca,
}

/// Bootstrap confidence interval of a two-sample metric.
///
/// ```text
/// θ̂ = metric(real, fake);   θ*_b = metric(real*_b, fake*_b),  b = 1..B
/// percentile: [P_{100·α/2}(θ*), P_{100·(1−α/2)}(θ*)],  α = 1 − confidence
/// BCa: ẑ₀ = Φ⁻¹(#{θ* < θ̂}/B + ½#{θ* = θ̂}/B),
///      â  = Σ_s Σ_i U_si³ / n_s³ / (6 [Σ_s Σ_i U_si² / n_s²]^{3/2}),  U_si = (n_s − 1)(θ̄_(s·) − θ_(s,i))
///      α₁ = Φ(ẑ₀ + (ẑ₀ + z_{α/2}) / (1 − â(ẑ₀ + z_{α/2}))),  α₂ likewise with z_{1−α/2}
///      interval [P_{100α₁}(θ*), P_{100α₂}(θ*)]
/// ```
/// (θ_(s,i): the metric with row `i` of set `s` left out; as scipy 1.17.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bootstrap {
    /// Number of resamples `B` (default 1000).
    pub n_resamples: usize,
    /// Interval coverage (default 0.95).
    pub confidence: f64,
    /// Percentile (default) or BCa.
    pub method: CiMethod,
    /// Seed of the ChaCha8 generator (default 0).
    pub seed: u64,
}

impl Default for Bootstrap {
    fn default() -> Self {
        Self {
            n_resamples: 1000,
            confidence: 0.95,
            method: CiMethod::Percentile,
            seed: 0,
        }
    }
}

/// BCa internals, reported for diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BcaDetails {
    /// Bias correction `ẑ₀`.
    pub z0: f64,
    /// Acceleration `â`.
    pub acceleration: f64,
    /// Adjusted lower percentile level `α₁ ∈ (0, 1)`.
    pub alpha_low: f64,
    /// Adjusted upper percentile level `α₂ ∈ (0, 1)`.
    pub alpha_high: f64,
}

/// The output of [`Bootstrap::confidence_interval`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapInterval {
    /// The metric on the full data, `θ̂`.
    pub estimate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Bootstrap standard error: sample std (ddof 1) of the replicates.
    pub std_error: f64,
    /// Bootstrap bias estimate `mean(θ*) − θ̂`.
    pub bias: f64,
    /// Interval method used.
    pub method: CiMethod,
    /// Coverage.
    pub confidence: f64,
    /// BCa internals (BCa only).
    pub bca: Option<BcaDetails>,
    /// The replicates `θ*_b` in resample order.
    pub replicates: Vec<f64>,
}

pub(crate) fn check_common(n_resamples: usize, confidence: f64) -> Result<(), RankingError> {
    if n_resamples < 2 {
        return Err(RankingError::InvalidParameter {
            name: "n_resamples",
            reason: format!("need at least 2, got {n_resamples}"),
        });
    }
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(RankingError::InvalidParameter {
            name: "confidence",
            reason: format!("must be in (0, 1), got {confidence}"),
        });
    }
    Ok(())
}

pub(crate) fn check_set(what: &'static str, x: &ArrayView2<'_, f32>) -> Result<(), RankingError> {
    if x.nrows() < 2 {
        return Err(RankingError::TooFewSamples {
            what,
            min: 2,
            got: x.nrows(),
        });
    }
    if x.ncols() == 0 {
        return Err(RankingError::TooFewSamples {
            what: "feature dimension",
            min: 1,
            got: 0,
        });
    }
    if let Some((index, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(RankingError::NonFinite {
            what,
            index,
            value: f64::from(*v),
        });
    }
    Ok(())
}

/// The generator of resample `b`: seed, then stream `b`.
fn resample_rng(seed: u64, b: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(b as u64);
    rng
}

fn draw(rng: &mut ChaCha8Rng, x: &ArrayView2<'_, f32>) -> Array2<f32> {
    let n = x.nrows() as u64;
    let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..n) as usize).collect();
    x.select(Axis(0), &idx)
}

fn eval<E>(
    name: &str,
    metric: &MetricFn<'_, E>,
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    resample: Option<usize>,
) -> Result<f64, RankingError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let v = metric(real, fake).map_err(|e| RankingError::Metric {
        metric: name.to_string(),
        resample,
        error: Box::new(e),
    })?;
    if !v.is_finite() {
        return Err(RankingError::MetricNonFinite {
            metric: name.to_string(),
            value: v,
        });
    }
    Ok(v)
}

/// Fraction-based `ẑ₀ = Φ⁻¹(percentile of θ̂ among θ*)`, scipy's
/// `_percentile_of_score`: `(#{θ* < θ̂} + #{θ* ≤ θ̂}) / (2B)`.
fn z0_of(theta_hat: f64, replicates: &[f64]) -> f64 {
    let b = replicates.len() as f64;
    let below = replicates.iter().filter(|&&t| t < theta_hat).count() as f64;
    let at_or_below = replicates.iter().filter(|&&t| t <= theta_hat).count() as f64;
    norm_ppf((below + at_or_below) / (2.0 * b))
}

/// The BCa interval from precomputed pieces (exposed so that it can be checked
/// against `scipy.stats.bootstrap`'s `_bca_interval` on the same numbers).
///
/// `replicates` are the bootstrap values `θ*_b`; `jackknife[s]` holds the
/// leave-one-out values `θ_(s,i)` of sample set `s` (formulas on
/// [`Bootstrap`]). A jackknife without any spread (`Σ U² = 0`, e.g. a count
/// statistic that no single row changes) has no skewness information; the
/// acceleration is then taken as 0 (plain bias-corrected interval).
///
/// # Errors
/// Fewer than 2 replicates, an empty jackknife set, non-finite inputs, a bad
/// `confidence`, or a degenerate bootstrap distribution (θ̂ outside the
/// replicates' range, so `ẑ₀ = ±∞`).
pub fn bca_interval(
    theta_hat: f64,
    replicates: &[f64],
    jackknife: &[&[f64]],
    confidence: f64,
) -> Result<(f64, f64, BcaDetails), RankingError> {
    check_common(replicates.len(), confidence)?;
    crate::error::check_finite("BCa replicates", replicates)?;
    crate::error::check_finite("BCa estimate", &[theta_hat])?;
    if jackknife.is_empty() {
        return Err(RankingError::TooFewSamples {
            what: "BCa jackknife sets",
            min: 1,
            got: 0,
        });
    }
    let z0 = z0_of(theta_hat, replicates);
    if !z0.is_finite() {
        return Err(RankingError::Numerical {
            what: "BCa",
            reason: "the estimate lies outside the bootstrap distribution (z0 infinite); \
                     use the percentile interval"
                .into(),
        });
    }
    let (mut num, mut den) = (0.0, 0.0);
    for jk in jackknife {
        if jk.len() < 2 {
            return Err(RankingError::TooFewSamples {
                what: "BCa jackknife values",
                min: 2,
                got: jk.len(),
            });
        }
        crate::error::check_finite("BCa jackknife values", jk)?;
        let n = jk.len() as f64;
        let dot = jk.iter().sum::<f64>() / n;
        let (mut s3, mut s2) = (0.0, 0.0);
        for &t in jk.iter() {
            let u = (n - 1.0) * (dot - t);
            s2 += u * u;
            s3 += u * u * u;
        }
        num += s3 / (n * n * n);
        den += s2 / (n * n);
    }
    let a = if den > 0.0 {
        num / 6.0 / den.powf(1.5)
    } else {
        0.0
    };
    let alpha = (1.0 - confidence) / 2.0;
    let z_lo = norm_ppf(alpha);
    let z_hi = -z_lo;
    let n1 = z0 + z_lo;
    let alpha_low = norm_cdf(z0 + n1 / (1.0 - a * n1));
    let n2 = z0 + z_hi;
    let alpha_high = norm_cdf(z0 + n2 / (1.0 - a * n2));
    if !(alpha_low.is_finite() && alpha_high.is_finite()) {
        return Err(RankingError::Numerical {
            what: "BCa",
            reason: format!("adjusted levels {alpha_low}, {alpha_high}"),
        });
    }
    let mut sorted = replicates.to_vec();
    sorted.sort_by(f64::total_cmp);
    let low = percentile_sorted(&sorted, 100.0 * alpha_low);
    let high = percentile_sorted(&sorted, 100.0 * alpha_high);
    Ok((
        low,
        high,
        BcaDetails {
            z0,
            acceleration: a,
            alpha_low,
            alpha_high,
        },
    ))
}

/// Leave-one-out values of the metric over the rows of one set.
fn jackknife_set<E>(
    metric: &MetricFn<'_, E>,
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    drop_real: bool,
) -> Result<Vec<f64>, RankingError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let n = if drop_real {
        real.nrows()
    } else {
        fake.nrows()
    };
    (0..n)
        .into_par_iter()
        .map(|i| {
            let keep: Vec<usize> = (0..n).filter(|&k| k != i).collect();
            if drop_real {
                let r = real.select(Axis(0), &keep);
                eval("metric", metric, r.view(), fake, None)
            } else {
                let f = fake.select(Axis(0), &keep);
                eval("metric", metric, real, f.view(), None)
            }
        })
        .collect()
}

impl Bootstrap {
    /// Sets `B`.
    pub fn n_resamples(mut self, n: usize) -> Self {
        self.n_resamples = n;
        self
    }

    /// Sets the coverage.
    pub fn confidence(mut self, confidence: f64) -> Self {
        self.confidence = confidence;
        self
    }

    /// Sets the interval method.
    pub fn method(mut self, method: CiMethod) -> Self {
        self.method = method;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The bootstrap interval of `metric(real, fake)` (formulas on [`Bootstrap`]).
    ///
    /// # Errors
    /// Fewer than 2 rows in a set, mismatched feature dimensions, non-finite
    /// features, bad parameters, a metric error ([`RankingError::Metric`]) or a
    /// non-finite metric value, or a degenerate BCa.
    pub fn confidence_interval<F, E>(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        metric: F,
    ) -> Result<BootstrapInterval, RankingError>
    where
        F: Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<f64, E> + Sync,
        E: std::error::Error + Send + Sync + 'static,
    {
        check_common(self.n_resamples, self.confidence)?;
        check_set("real", &real)?;
        check_set("fake", &fake)?;
        if real.ncols() != fake.ncols() {
            return Err(RankingError::DimensionMismatch {
                what: "real vs fake features",
                left: real.ncols(),
                right: fake.ncols(),
            });
        }
        let metric: &MetricFn<'_, E> = &metric;
        let estimate = eval("metric", metric, real, fake, None)?;
        let replicates: Vec<f64> = (0..self.n_resamples)
            .into_par_iter()
            .map(|b| {
                let mut rng = resample_rng(self.seed, b);
                let r = draw(&mut rng, &real);
                let f = draw(&mut rng, &fake);
                eval("metric", metric, r.view(), f.view(), Some(b))
            })
            .collect::<Result<_, _>>()?;
        let (mean, std_error) = mean_std(&replicates);
        let (low, high, bca) = match self.method {
            CiMethod::Percentile => {
                let mut sorted = replicates.clone();
                sorted.sort_by(f64::total_cmp);
                let alpha = (1.0 - self.confidence) / 2.0;
                (
                    percentile_sorted(&sorted, 100.0 * alpha),
                    percentile_sorted(&sorted, 100.0 * (1.0 - alpha)),
                    None,
                )
            }
            CiMethod::Bca => {
                let jr = jackknife_set(metric, real, fake, true)?;
                let jf = jackknife_set(metric, real, fake, false)?;
                let (lo, hi, d) =
                    bca_interval(estimate, &replicates, &[&jr, &jf], self.confidence)?;
                (lo, hi, Some(d))
            }
        };
        Ok(BootstrapInterval {
            estimate,
            low,
            high,
            std_error,
            bias: mean - estimate,
            method: self.method,
            confidence: self.confidence,
            bca,
            replicates,
        })
    }
}

/// Whether a lower or a higher value of a metric means a better model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Better {
    /// Lower is better (FID, KID, KL).
    Lower,
    /// Higher is better (IS, precision, recall, CAS).
    Higher,
}

impl Better {
    /// The score oriented so that lower is better: `v` or `−v`.
    fn orient(self, v: f64) -> f64 {
        match self {
            Better::Lower => v,
            Better::Higher => -v,
        }
    }
}

/// One metric to rank models by: its name, its orientation and the closure.
pub struct RankedMetric<'a, E> {
    /// Name used in the report.
    pub name: String,
    /// Orientation.
    pub better: Better,
    /// The metric `Fn(real, fake) -> Result<f64, E>`.
    pub metric: &'a MetricFn<'a, E>,
}

impl<'a, E> RankedMetric<'a, E> {
    /// Bundles a named metric.
    pub fn new(name: impl Into<String>, better: Better, metric: &'a MetricFn<'a, E>) -> Self {
        Self {
            name: name.into(),
            better,
            metric,
        }
    }
}

/// The bootstrap distribution of a Kendall tau-b. The summary statistics are
/// over the resamples where tau is defined; when there is none
/// (`n_defined == 0`) they are reported as 0 (never NaN).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TauDistribution {
    /// tau-b on the full data (`None` if undefined: a constant ranking).
    pub point: Option<f64>,
    /// Mean over the resamples where it is defined.
    pub mean: f64,
    /// Standard deviation (ddof 1) over those resamples.
    pub std: f64,
    /// Lower percentile (`(1 − confidence)/2`).
    pub low: f64,
    /// Median.
    pub median: f64,
    /// Upper percentile (`(1 + confidence)/2`).
    pub high: f64,
    /// Fraction of resamples with tau-b = 1 (identical orderings).
    pub fraction_identical: f64,
    /// Resamples where tau-b is defined.
    pub n_defined: usize,
    /// Resamples where it is undefined (a metric tied every model).
    pub n_undefined: usize,
    /// Per-resample values (`None`: undefined).
    pub values: Vec<Option<f64>>,
}

/// How one metric ranks the models, and how stable that ranking is.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricRanking {
    /// Metric name.
    pub name: String,
    /// Orientation.
    pub better: Better,
    /// Value per model on the full data.
    pub point: Vec<f64>,
    /// Rank per model on the full data (1 = best; ties get the average rank).
    pub point_rank: Vec<f64>,
    /// Percentile interval per model, `[low, high]`.
    pub interval: Vec<[f64; 2]>,
    /// `prob_better[a][b]` = P(model a strictly better than b) + ½ P(tie),
    /// over resamples (diagonal 0.5).
    pub prob_better: Vec<Vec<f64>>,
    /// `rank_frequency[m][r]` = fraction of resamples in which model `m` has
    /// rank `r + 1` (competition ranking: 1 + number of strictly better models).
    pub rank_frequency: Vec<Vec<f64>>,
    /// Mean (average-tie) rank per model over resamples.
    pub mean_rank: Vec<f64>,
    /// Kendall tau-b between this metric's ranking and the reference ranking
    /// (when one is given).
    pub tau_vs_reference: Option<TauDistribution>,
    /// Per-resample values `[resample][model]`.
    pub replicates: Vec<Vec<f64>>,
}

/// Kendall tau-b between two metrics' rankings over resamples.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricPairTau {
    /// First metric.
    pub a: String,
    /// Second metric.
    pub b: String,
    /// The distribution of tau-b between their (oriented) rankings.
    pub tau: TauDistribution,
}

/// The output of [`RankStability::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RankStabilityReport {
    /// Number of models.
    pub n_models: usize,
    /// Number of resamples.
    pub n_resamples: usize,
    /// Seed.
    pub seed: u64,
    /// Per-metric rankings.
    pub metrics: Vec<MetricRanking>,
    /// tau-b between every pair of metrics (`i < j`, in input order).
    pub between_metrics: Vec<MetricPairTau>,
}

/// Stability of a ranking of models under bootstrap resampling of the real set
/// and of every generated set (the question of Betzalel et al. 2022: can
/// FID/IS order close models reliably?).
///
/// For resample `b`, one bootstrap copy of the real set is drawn, then one of
/// each generated set (in model order) from stream `b` of the seeded ChaCha8
/// generator; every metric is evaluated on (real*, fake*_m) for every model.
/// The same real resample is shared by all models within a resample, as in a
/// real evaluation where every model is scored against one reference set.
///
/// ```text
/// P(a ≻ b) = (1/B) Σ_b [s*_a < s*_b] + ½ [s*_a = s*_b],  s = oriented score (lower = better)
/// τ_b(metric i, metric j) over resamples = KendallTauB(s*_i, s*_j)
/// τ_b(metric i, reference) = KendallTauB(s*_i, reference)  (reference: lower = better)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankStability {
    /// Number of resamples (default 200).
    pub n_resamples: usize,
    /// Coverage of the percentile intervals (default 0.95).
    pub confidence: f64,
    /// Seed (default 0).
    pub seed: u64,
}

impl Default for RankStability {
    fn default() -> Self {
        Self {
            n_resamples: 200,
            confidence: 0.95,
            seed: 0,
        }
    }
}

fn tau_distribution(
    point: Option<f64>,
    values: Vec<Option<f64>>,
    confidence: f64,
) -> TauDistribution {
    let mut defined: Vec<f64> = values.iter().flatten().copied().collect();
    let n_defined = defined.len();
    let n_undefined = values.len() - n_defined;
    defined.sort_by(f64::total_cmp);
    let (mean, std, low, median, high, identical) = if defined.is_empty() {
        (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, 0.0)
    } else {
        let (m, s) = mean_std(&defined);
        let a = 100.0 * (1.0 - confidence) / 2.0;
        (
            m,
            s,
            percentile_sorted(&defined, a),
            percentile_sorted(&defined, 50.0),
            percentile_sorted(&defined, 100.0 - a),
            defined.iter().filter(|&&t| t >= 1.0).count() as f64 / defined.len() as f64,
        )
    };
    // All-undefined distributions are reported with zeros, never NaN.
    let z = |v: f64| if v.is_finite() { v } else { 0.0 };
    TauDistribution {
        point,
        mean: z(mean),
        std: z(std),
        low: z(low),
        median: z(median),
        high: z(high),
        fraction_identical: identical,
        n_defined,
        n_undefined,
        values,
    }
}

fn tau_or_none(x: &[f64], y: &[f64]) -> Result<Option<f64>, RankingError> {
    match kendall_tau_b(x, y) {
        Ok(t) => Ok(Some(t)),
        Err(RankingError::ConstantInput { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Competition rank (1 + number strictly better) of each oriented score.
fn competition_ranks(s: &[f64]) -> Vec<usize> {
    s.iter()
        .map(|&v| 1 + s.iter().filter(|&&w| w < v).count())
        .collect()
}

impl RankStability {
    /// Sets the number of resamples.
    pub fn n_resamples(mut self, n: usize) -> Self {
        self.n_resamples = n;
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

    /// Ranks `models` (generated feature sets) against `real` by every metric
    /// in `metrics`, on the full data and over resamples (see the type's docs).
    /// `reference`, if given, is a per-model score where lower is better (a
    /// known perturbation order, or KL from [`crate::divergence`]).
    ///
    /// # Errors
    /// Fewer than 2 models or no metric, a set with < 2 rows, mismatched
    /// dimensions, non-finite features, `reference` of the wrong length or
    /// with NaN, bad parameters, or a metric error / non-finite metric value.
    pub fn compute<E>(
        &self,
        real: ArrayView2<'_, f32>,
        models: &[ArrayView2<'_, f32>],
        metrics: &[RankedMetric<'_, E>],
        reference: Option<&[f64]>,
    ) -> Result<RankStabilityReport, RankingError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        check_common(self.n_resamples, self.confidence)?;
        let k = models.len();
        if k < 2 {
            return Err(RankingError::TooFewSamples {
                what: "models to rank",
                min: 2,
                got: k,
            });
        }
        if metrics.is_empty() {
            return Err(RankingError::TooFewSamples {
                what: "metrics",
                min: 1,
                got: 0,
            });
        }
        check_set("real", &real)?;
        for m in models {
            check_set("model features", m)?;
            if m.ncols() != real.ncols() {
                return Err(RankingError::DimensionMismatch {
                    what: "real vs model features",
                    left: real.ncols(),
                    right: m.ncols(),
                });
            }
        }
        if let Some(r) = reference {
            if r.len() != k {
                return Err(RankingError::LengthMismatch {
                    what: "reference scores vs models",
                    left: r.len(),
                    right: k,
                });
            }
            if let Some(index) = r.iter().position(|v| v.is_nan()) {
                return Err(RankingError::NonFinite {
                    what: "reference scores",
                    index,
                    value: f64::NAN,
                });
            }
        }
        // Full-data values [metric][model].
        let point: Vec<Vec<f64>> = metrics
            .iter()
            .map(|m| {
                models
                    .iter()
                    .map(|f| eval(&m.name, m.metric, real, *f, None))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        // Replicates [resample][metric][model].
        let reps: Vec<Vec<Vec<f64>>> = (0..self.n_resamples)
            .into_par_iter()
            .map(|b| {
                let mut rng = resample_rng(self.seed, b);
                let r = draw(&mut rng, &real);
                let fakes: Vec<Array2<f32>> = models.iter().map(|f| draw(&mut rng, f)).collect();
                metrics
                    .iter()
                    .map(|m| {
                        fakes
                            .iter()
                            .map(|f| eval(&m.name, m.metric, r.view(), f.view(), Some(b)))
                            .collect::<Result<Vec<_>, _>>()
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<_, _>>()?;
        let bn = self.n_resamples as f64;
        let alpha = 100.0 * (1.0 - self.confidence) / 2.0;
        let oriented = |mi: usize, vals: &[f64]| -> Vec<f64> {
            vals.iter().map(|&v| metrics[mi].better.orient(v)).collect()
        };
        let mut out = Vec::with_capacity(metrics.len());
        for (mi, m) in metrics.iter().enumerate() {
            let per_b: Vec<Vec<f64>> = reps.iter().map(|r| r[mi].clone()).collect();
            let interval = (0..k)
                .map(|j| {
                    let mut v: Vec<f64> = per_b.iter().map(|r| r[j]).collect();
                    v.sort_by(f64::total_cmp);
                    [
                        percentile_sorted(&v, alpha),
                        percentile_sorted(&v, 100.0 - alpha),
                    ]
                })
                .collect();
            let mut prob_better = vec![vec![0.0; k]; k];
            let mut rank_frequency = vec![vec![0.0; k]; k];
            let mut mean_rank = vec![0.0; k];
            for r in &per_b {
                let s = oriented(mi, r);
                for a in 0..k {
                    for c in 0..k {
                        if s[a] < s[c] {
                            prob_better[a][c] += 1.0;
                        } else if s[a] == s[c] {
                            prob_better[a][c] += 0.5;
                        }
                    }
                }
                for (j, rk) in competition_ranks(&s).into_iter().enumerate() {
                    rank_frequency[j][rk - 1] += 1.0;
                }
                for (j, rk) in crate::rank_correlation::rank_average(&s)?
                    .into_iter()
                    .enumerate()
                {
                    mean_rank[j] += rk;
                }
            }
            prob_better.iter_mut().flatten().for_each(|v| *v /= bn);
            rank_frequency.iter_mut().flatten().for_each(|v| *v /= bn);
            mean_rank.iter_mut().for_each(|v| *v /= bn);
            let sp = oriented(mi, &point[mi]);
            let tau_vs_reference = match reference {
                Some(refv) => {
                    let values = per_b
                        .iter()
                        .map(|r| tau_or_none(&oriented(mi, r), refv))
                        .collect::<Result<Vec<_>, _>>()?;
                    Some(tau_distribution(
                        tau_or_none(&sp, refv)?,
                        values,
                        self.confidence,
                    ))
                }
                None => None,
            };
            out.push(MetricRanking {
                name: m.name.clone(),
                better: m.better,
                point: point[mi].clone(),
                point_rank: crate::rank_correlation::rank_average(&sp)?,
                interval,
                prob_better,
                rank_frequency,
                mean_rank,
                tau_vs_reference,
                replicates: per_b,
            });
        }
        let mut between = Vec::new();
        for i in 0..metrics.len() {
            for j in i + 1..metrics.len() {
                let values = reps
                    .iter()
                    .map(|r| tau_or_none(&oriented(i, &r[i]), &oriented(j, &r[j])))
                    .collect::<Result<Vec<_>, _>>()?;
                let p = tau_or_none(&oriented(i, &point[i]), &oriented(j, &point[j]))?;
                between.push(MetricPairTau {
                    a: metrics[i].name.clone(),
                    b: metrics[j].name.clone(),
                    tau: tau_distribution(p, values, self.confidence),
                });
            }
        }
        Ok(RankStabilityReport {
            n_models: k,
            n_resamples: self.n_resamples,
            seed: self.seed,
            metrics: out,
            between_metrics: between,
        })
    }
}
