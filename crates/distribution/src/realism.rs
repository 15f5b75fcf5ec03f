//! Per-sample realism score (Kynkäänniemi et al. 2019, "Improved Precision
//! and Recall Metric for Assessing Generative Models", §5), in two variants.
//!
//! # kynkaat (the paper's definition) — [`Realism`]
//!
//! kynkaat/improved-precision-and-recall-metric `ManifoldEstimator(real,
//! nhood_sizes=[3], clamp_to_percentile=50, eps=1e-5)`, which works on
//! **squared** distances:
//!
//! ```text
//! ρ_i    = r_k(x_i)²                         squared k-th NN distance of real x_i
//! m      = percentile_50(ρ)                   numpy's linear interpolation
//! ρ'_i   = 0 if ρ_i > m else ρ_i              the largest half of the balls is dropped
//! R(y)   = max_i ρ'_i / (‖y − x_i‖² + eps)    eps = 1e-5
//! ```
//!
//! `R(y) ≥ 1` roughly means "inside the real manifold". Dropped balls
//! contribute 0, so `R ≥ 0`; it is 0 for every sample when more than half of
//! the real radii are 0 (heavily duplicated data).
//!
//! # dgm-eval's variant — [`RealismDgmEval`]
//!
//! layer6ai-labs/dgm-eval `metrics/prdc.py compute_prdc(realism=True)`:
//! **non-squared** distances, k = 5, no eps, and the balls kept are those
//! strictly below the median radius (np.median):
//!
//! ```text
//! R(y) = max_{i : r_k(x_i) < median(r_k)} r_k(x_i) / ‖y − x_i‖
//! ```
//!
//! A fake sample equal to a kept real sample divides by zero: `+inf` when that
//! sample's radius is positive, `0/0 = NaN` when it is 0 (numpy's `max` then
//! propagates NaN). The reference then reports a non-finite mean (the
//! conformance corpus omits it). **We never return such a number**: those
//! samples are reported as `None` with their count, the mean is `None`, and
//! [`realism_dgm_eval_k5_mean`] returns an error naming them.
//!
//! Both variants use exact float64 distances (`gen_metrics_linalg::pairwise`),
//! as the float64 references do; the per-sample scores match them to rounding.

use gen_metrics_linalg::{
    Boundary, DistancePower, count_within_radii, kth_neighbour_radii, kth_neighbour_squared_radii,
    max_weight_over_distance, zero_above_percentile,
};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use serde::Serialize;

use crate::MetricError;
use crate::validate::{check_neighbours, check_set};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, Need, Outcome, Plan, Set, Spec,
};

const METRIC: &str = "realism";
const METRIC_DGM: &str = "realism_dgm_eval";

/// numpy's `np.median` on a sorted slice: the middle value, or the mean of the
/// two middle values, `(a + b) / 2`.
fn median_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// Real needs `real_rows` rows (k + 1 for k-NN radii), fake at least one.
fn check_real_fake(
    metric: &'static str,
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    real_rows: usize,
) -> Result<(), MetricError> {
    check_set(metric, "real", real, real_rows)?;
    check_set(metric, "fake", fake, 1)?;
    if real.ncols() != fake.ncols() {
        return Err(MetricError::DimensionMismatch {
            metric,
            real: real.ncols(),
            fake: fake.ncols(),
        });
    }
    Ok(())
}

fn sorted(v: &Array1<f64>) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Configuration of kynkaat's realism score: neighbourhood size `k` (3),
/// clamp percentile (50) and `eps` (1e-5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Realism {
    k: usize,
    clamp_percentile: f64,
    eps: f64,
}

impl Default for Realism {
    /// kynkaat's defaults: k = 3, radii above the 50th percentile dropped, eps = 1e-5.
    fn default() -> Self {
        Realism {
            k: 3,
            clamp_percentile: 50.0,
            eps: 1e-5,
        }
    }
}

impl Realism {
    /// Sets the neighbourhood size k.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets the percentile (0..=100) above which real radii are dropped.
    pub fn clamp_percentile(mut self, q: f64) -> Self {
        self.clamp_percentile = q;
        self
    }

    /// Sets the `eps` added to squared distances.
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    fn check(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<(), MetricError> {
        check_neighbours(METRIC, self.k)?;
        if !(0.0..=100.0).contains(&self.clamp_percentile) {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "clamp percentile {} is outside [0, 100]",
                    self.clamp_percentile
                ),
            });
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!("eps must be finite and > 0, got {}", self.eps),
            });
        }
        check_real_fake(METRIC, real, fake, self.k + 1)
    }

    /// Realism of every fake sample against the real set.
    ///
    /// # Errors
    /// Sets smaller than k + 1 rows, mismatched dimensions, non-finite
    /// values, k = 0, a percentile outside [0, 100], eps not finite and > 0.
    pub fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<RealismOutput, MetricError> {
        self.check(real, fake)?;
        let rho = kth_neighbour_squared_radii(real, self.k)?;
        self.compute_with_squared_radii(real, fake, rho.view())
    }

    /// Realism from the precomputed squared k-th neighbour radii of the real
    /// set (`kth_neighbour_squared_radii(real, k)`), as the metric contract's
    /// shared work provides them.
    ///
    /// # Errors
    /// As [`Realism::compute`]; radii of the wrong length.
    pub fn compute_with_squared_radii(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        rho: ndarray::ArrayView1<'_, f64>,
    ) -> Result<RealismOutput, MetricError> {
        self.check(real, fake)?;
        if rho.len() != real.nrows() {
            return Err(MetricError::LengthMismatch {
                metric: METRIC,
                what: "the squared radii",
                expected: real.nrows(),
                got: rho.len(),
            });
        }
        let kept = zero_above_percentile(rho, self.clamp_percentile);
        let scores =
            max_weight_over_distance(fake, real, kept.view(), DistancePower::Squared, self.eps)?;
        RealismOutput::from_scores(scores, kept.iter().filter(|&&v| v > 0.0).count())
    }
}

/// Per-sample realism scores and their summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealismOutput {
    /// Realism of each fake sample, in input order.
    pub scores: Vec<f64>,
    /// Mean of the scores.
    pub mean: f64,
    /// Median of the scores (np.median: mean of the two middle values for even M).
    pub median: f64,
    /// Smallest score.
    pub min: f64,
    /// Largest score.
    pub max: f64,
    /// Number of real balls kept after the percentile clamp with a positive radius.
    pub kept_real_balls: usize,
}

impl RealismOutput {
    fn from_scores(scores: Array1<f64>, kept_real_balls: usize) -> Result<Self, MetricError> {
        if let Some(i) = scores.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("the realism of fake sample {i} is {}", scores[i]),
            });
        }
        let s = sorted(&scores);
        let mean = scores.iter().sum::<f64>() / scores.len() as f64;
        Ok(RealismOutput {
            mean,
            median: median_sorted(&s),
            min: s[0],
            max: s[s.len() - 1],
            scores: scores.to_vec(),
            kept_real_balls,
        })
    }
}

/// Configuration of dgm-eval's realism variant: neighbourhood size `k` (5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RealismDgmEval {
    k: usize,
}

impl Default for RealismDgmEval {
    /// dgm-eval's default `nearest_k = 5`.
    fn default() -> Self {
        RealismDgmEval { k: 5 }
    }
}

/// dgm-eval's realism variant, per sample, with infinite and undefined
/// samples reported rather than passed on as numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealismDgmEvalOutput {
    /// Per fake sample: the score, or `None` where the reference gives `+inf`
    /// or NaN (the sample equals a kept real sample).
    pub scores: Vec<Option<f64>>,
    /// Mean over fake samples; `None` iff some score is `None` (the reference
    /// mean is then `+inf` or NaN).
    pub mean: Option<f64>,
    /// Fake samples equal to a kept real sample of positive radius (reference: `+inf`).
    pub infinite_samples: usize,
    /// Fake samples equal to a kept real sample of radius 0 (reference: `0/0 = NaN`).
    pub undefined_samples: usize,
    /// Number of real balls kept (radius strictly below the median).
    pub kept_real_balls: usize,
}

impl RealismDgmEval {
    /// Sets the neighbourhood size k.
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// dgm-eval realism of every fake sample against the real set.
    ///
    /// # Errors
    /// Sets smaller than k + 1 rows, mismatched dimensions, non-finite
    /// values, k = 0, and no real radius strictly below the median (numpy
    /// raises on the empty maximum then).
    pub fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<RealismDgmEvalOutput, MetricError> {
        check_neighbours(METRIC_DGM, self.k)?;
        check_real_fake(METRIC_DGM, real, fake, self.k + 1)?;
        let r = kth_neighbour_radii(real, self.k)?;
        let med = median_sorted(&sorted(&r));
        let kept: Vec<usize> = (0..r.len()).filter(|&i| r[i] < med).collect();
        if kept.is_empty() {
            return Err(MetricError::Numerical {
                metric: METRIC_DGM,
                detail: "no real k-NN radius is strictly below the median (all radii equal)".into(),
            });
        }
        // Positive kept radii: max r_i / d(y, x_i), +inf where d = 0.
        let w = Array1::from_shape_fn(r.len(), |i| if r[i] < med { r[i] } else { 0.0 });
        let finite_part =
            max_weight_over_distance(fake, real, w.view(), DistancePower::Distance, 0.0)?;
        // Kept radii equal to 0: r/d = 0 when d > 0, 0/0 (NaN) when the fake equals that real.
        let zero_kept: Vec<usize> = kept.iter().copied().filter(|&i| r[i] == 0.0).collect();
        let undefined = if zero_kept.is_empty() {
            vec![false; fake.nrows()]
        } else {
            let centres: Array2<f32> = real.select(Axis(0), &zero_kept);
            let zeros = Array1::<f64>::zeros(zero_kept.len());
            count_within_radii(fake, centres.view(), zeros.view(), Boundary::Closed)?
                .iter()
                .map(|&c| c > 0)
                .collect()
        };
        let mut scores = Vec::with_capacity(fake.nrows());
        let (mut infinite_samples, mut undefined_samples) = (0, 0);
        for (v, und) in finite_part.iter().zip(undefined) {
            if und {
                undefined_samples += 1;
                scores.push(None);
            } else if v.is_finite() {
                scores.push(Some(*v));
            } else {
                infinite_samples += 1;
                scores.push(None);
            }
        }
        let mean = if infinite_samples + undefined_samples == 0 {
            let m = scores.iter().flatten().sum::<f64>() / scores.len() as f64;
            if !m.is_finite() {
                return Err(MetricError::Numerical {
                    metric: METRIC_DGM,
                    detail: format!("mean realism is {m}"),
                });
            }
            Some(m)
        } else {
            None
        };
        Ok(RealismDgmEvalOutput {
            scores,
            mean,
            infinite_samples,
            undefined_samples,
            kept_real_balls: kept.len(),
        })
    }
}

/// The mean of dgm-eval's realism variant with its defaults (k = 5), the value
/// the conformance corpus stores as `realism_dgm_eval_k5_mean`.
///
/// # Errors
/// As [`RealismDgmEval::compute`], and [`MetricError::Numerical`] when some
/// fake sample equals a kept real sample, where the reference's mean is
/// `+inf` or NaN (use [`RealismDgmEval::compute`] to get the other samples'
/// scores).
pub fn realism_dgm_eval_k5_mean(
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
) -> Result<f64, MetricError> {
    let out = RealismDgmEval::default().compute(real, fake)?;
    out.mean.ok_or_else(|| MetricError::Numerical {
        metric: METRIC_DGM,
        detail: format!(
            "the mean is not finite in the reference: {} fake samples equal a kept real sample (+inf), {} equal a kept \
             real sample of radius 0 (NaN)",
            out.infinite_samples, out.undefined_samples
        ),
    })
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of the realism score (k = 3, kynkaat's
/// `ManifoldEstimator`); `--k` overrides k. The per-sample scores go to the
/// report's histogram.
pub static SPEC: Spec = Spec {
    name: "realism",
    about: "per-sample realism score of the generated samples (mean and median)",
    reference: "Kynkäänniemi et al. 2019, Improved Precision and Recall Metric; kynkaat/improved-precision-and-recall-metric",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "realism_mean",
            Direction::HigherIsBetter,
            "mean over generated samples of max_i r_k(x_i)² / ‖x_i − y‖²",
        ),
        KeySpec::new(
            "realism_median",
            Direction::HigherIsBetter,
            "median of the per-sample realism scores",
        ),
    ],
    dynamic_keys: None,
    make: |p| {
        p.check(METRIC)?;
        let m = Realism::default();
        Ok(Box::new(if let Some(k) = p.k { m.k(k) } else { m }))
    },
};

impl Metric for Realism {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.radii(Set::Real, self.k);
        plan.need(Need::ClampedRadiusScores {
            k: self.k,
            percentile_bits: self.clamp_percentile.to_bits(),
            eps_bits: self.eps.to_bits(),
        });
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        self.check(real, fake)?;
        // The scores of `compute_with_squared_radii`, from the shared cross pass.
        let rho = cx.squared_radii(&SPEC, Set::Real, self.k)?;
        let kept = zero_above_percentile(rho.view(), self.clamp_percentile);
        let scores = cx.clamped_radius_scores(&SPEC, self.k, self.clamp_percentile, self.eps)?;
        let out = RealismOutput::from_scores(scores, kept.iter().filter(|&&v| v > 0.0).count())?;
        Ok(Outcome::new()
            .value("realism_mean", out.mean)
            .value("realism_median", out.median)
            .per_sample("realism", Set::Fake, out.scores))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gen_metrics_linalg::percentile_linear;

    #[test]
    fn percentile_matches_numpy_linear() {
        // np.percentile([1, 2, 3, 4], 50) = 2.5; ([1, 2, 3], 50) = 2; ([1, 2, 3, 4], 25) = 1.75
        // (tools/references/small.py)
        assert_eq!(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 50.0), 2.5);
        assert_eq!(percentile_linear(&[1.0, 2.0, 3.0], 50.0), 2.0);
        assert_eq!(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 25.0), 1.75);
        assert_eq!(percentile_linear(&[1.0, 2.0, 3.0, 4.0], 100.0), 4.0);
        assert_eq!(percentile_linear(&[5.0], 50.0), 5.0);
        assert_eq!(median_sorted(&[1.0, 2.0, 3.0, 10.0]), 2.5);
    }
}
