//! Memorization-informed FID (Bai et al. 2021, "On Training Sample
//! Memorization: Lessons from Benchmarking Generative Modeling with a
//! Large-scale Competition"; the Kaggle "Generative Dog Images" scoring code,
//! jybai/generative-memorization-benchmark `competition_scoring.py`).
//!
//! MiFID divides the FID by a memorization distance that becomes small when
//! generated samples are near-copies of training samples:
//!
//! ```text
//! c(y, x)  = 1 − |ŷ · x̂|                                  (x̂ = x / ‖x‖; absolute cosine)
//! d        = mean_{fake y} min_{real x} c(y, x)
//! d_thr    = d if d < ε else 1                             (ε = 0.1)
//! MiFID    = FID(real, fake) / (d_thr + 1e-14)
//! ```
//!
//! As in the reference, rows whose feature **sum** is exactly 0 are left out
//! of `d` (not of the FID), and `d` averages over the generated samples (the
//! reference's `features1`). torchmetrics'
//! `MemorizationInformedFrechetInceptionDistance` averages over the real
//! samples instead and returns 0 when FID ≤ 1e-8;
//! [`MifidConvention::Torchmetrics`] reproduces that.
//!
//! The FID is `gen_metrics_linalg::FrechetDistance` on the two feature sets
//! (float64 statistics, ddof 1, the well-conditioned branch for the shapes);
//! the cosines are float64 (`gen_metrics_linalg::max_abs_cosine_similarity`).
//! That FID is never negative (a negative round-off within its documented
//! bound is 0, see `gen_metrics_linalg::frechet`), so neither is MiFID: on
//! identical sets the division by `d + 1e-14` once turned −4e-14 of
//! round-off into −4.23.

use gen_metrics_linalg::{FrechetDistance, max_abs_cosine_similarity};
use ndarray::{ArrayView2, Axis};
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "mifid";

/// Which reference MiFID follows (they differ in the direction of the
/// memorization distance and in a guard for tiny FIDs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MifidConvention {
    /// The Kaggle competition code: `d` = mean over fake of the min over real.
    #[default]
    Kaggle,
    /// torchmetrics: `d` = mean over real of the min over fake, and MiFID = 0
    /// when FID ≤ 1e-8.
    Torchmetrics,
}

/// Configuration of MiFID: the threshold ε (0.1) and the convention (Kaggle).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mifid {
    eps: f64,
    convention: MifidConvention,
}

impl Default for Mifid {
    /// ε = 0.1, the Kaggle convention.
    fn default() -> Self {
        Mifid {
            eps: 0.1,
            convention: MifidConvention::Kaggle,
        }
    }
}

impl Mifid {
    /// Sets the memorization threshold ε (0 < ε ≤ 1).
    pub fn eps(mut self, eps: f64) -> Self {
        self.eps = eps;
        self
    }

    /// Sets the convention.
    pub fn convention(mut self, convention: MifidConvention) -> Self {
        self.convention = convention;
        self
    }
}

/// MiFID and its two factors.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MifidOutput {
    /// `FID / (d_thr + 1e-14)`.
    pub mifid: f64,
    /// The Fréchet distance between the two feature sets.
    pub fid: f64,
    /// The memorization distance `d` before thresholding.
    pub memorization_distance: f64,
    /// `d` if `d < ε`, else 1.
    pub thresholded_distance: f64,
    /// The threshold ε.
    pub eps: f64,
}

/// Rows whose sum is not exactly 0 (the reference's `features[np.sum(features, axis=1) != 0]`).
fn nonzero_sum_rows(x: ArrayView2<'_, f32>) -> Vec<usize> {
    x.outer_iter()
        .enumerate()
        .filter(|(_, r)| r.iter().map(|&v| f64::from(v)).sum::<f64>() != 0.0)
        .map(|(i, _)| i)
        .collect()
}

impl TwoSampleMetric for Mifid {
    type Output = MifidOutput;

    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<MifidOutput, MetricError> {
        if !(self.eps > 0.0 && self.eps <= 1.0) {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!("eps must be in (0, 1], got {}", self.eps),
            });
        }
        check_pair(METRIC, real, fake, 2)?;
        let fid = FrechetDistance::new().between_features(real, fake)?.value;
        let (r_idx, f_idx) = (nonzero_sum_rows(real), nonzero_sum_rows(fake));
        if r_idx.is_empty() || f_idx.is_empty() {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: "every row of a set sums to 0; the memorization distance is undefined"
                    .into(),
            });
        }
        let (r_sel, f_sel) = (real.select(Axis(0), &r_idx), fake.select(Axis(0), &f_idx));
        let max_cos = match self.convention {
            MifidConvention::Kaggle => max_abs_cosine_similarity(f_sel.view(), r_sel.view())?,
            MifidConvention::Torchmetrics => max_abs_cosine_similarity(r_sel.view(), f_sel.view())?,
        };
        let d = max_cos.iter().map(|&m| 1.0 - m).sum::<f64>() / max_cos.len() as f64;
        let d_thr = if d < self.eps { d } else { 1.0 };
        let mifid = match self.convention {
            MifidConvention::Torchmetrics if fid <= 1e-8 => 0.0,
            _ => fid / (d_thr + 1e-14),
        };
        if !mifid.is_finite() {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("MiFID is {mifid}"),
            });
        }
        Ok(MifidOutput {
            mifid,
            fid,
            memorization_distance: d,
            thresholded_distance: d_thr,
            eps: self.eps,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of MiFID (Kaggle convention, eps = 0.1).
pub static SPEC: Spec = Spec {
    name: "mifid",
    about: "memorization-informed FID: FID divided by the thresholded memorization distance",
    reference: "Bai et al. 2021, On Training Sample Memorization: Lessons from Benchmarking Generative Modeling with a Large-scale Competition; Kaggle convention",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "mifid",
        Direction::LowerIsBetter,
        "FID / d_thr, d = mean over generated of 1 − max |cos| to the real set",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(Mifid::default())),
};

impl Metric for Mifid {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("mifid", self.compute(real, fake)?.mifid))
    }
}
