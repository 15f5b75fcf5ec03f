//! CMMD: the maximum mean discrepancy between CLIP embeddings (Jayasumana et
//! al. 2024, "Rethinking FID: Towards a Better Evaluation Metric for Image
//! Generation"; reference: google-research/google-research `cmmd/distance.py`,
//! `mmd(x, y)`).
//!
//! With the Gaussian RBF kernel `k(x, y) = exp(−‖x − y‖² / (2σ²))`, `σ = 10`,
//! and the biased (minimum-variance, V-statistic) estimate over all pairs,
//! diagonal terms included (Gretton et al. 2012, Eq. 5):
//!
//! ```text
//! CMMD = 1000 · [ Σ_{i,j} k(x_i, x_j)/m² + Σ_{i,j} k(y_i, y_j)/n² − 2 Σ_{i,j} k(x_i, y_j)/(mn) ]
//! ```
//!
//! (the scale 1000 only makes the number readable, as in the reference).
//!
//! **Input.** The paper's CMMD is defined on L2-normalised CLIP ViT-L/14@336px
//! image embeddings (the reference's `embedding.py` normalises them before
//! `mmd`). This metric takes the features **as given** and does not normalise
//! them: pass unit-norm CLIP ViT-L/14@336 features to get the published
//! number; any other features give the same formula on other inputs.
//!
//! The kernel sums are `gen_metrics_linalg::KernelSums` (float64, blocked,
//! compensated): memory is bounded whatever the set sizes, where the reference
//! materialises the full `m × n` matrices.

use gen_metrics_linalg::{Kernel, KernelSums};
use ndarray::ArrayView2;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "cmmd";

/// CMMD configuration: RBF bandwidth σ (10) and output scale (1000), the
/// reference's `_SIGMA` and `_SCALE`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cmmd {
    sigma: f64,
    scale: f64,
}

impl Default for Cmmd {
    fn default() -> Self {
        Cmmd {
            sigma: 10.0,
            scale: 1000.0,
        }
    }
}

/// The CMMD value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CmmdOutput {
    /// `scale · MMD²_b` (see the module docs).
    pub value: f64,
    /// The bandwidth σ used.
    pub sigma: f64,
}

impl Cmmd {
    /// Sets the RBF bandwidth σ (`k = exp(−‖x − y‖²/(2σ²))`, default 10).
    pub fn sigma(mut self, sigma: f64) -> Self {
        self.sigma = sigma;
        self
    }

    /// Sets the output scale (default 1000).
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = scale;
        self
    }
}

impl TwoSampleMetric for Cmmd {
    type Output = CmmdOutput;

    /// CMMD of `fake` against `real` (symmetric in the two sets).
    ///
    /// # Errors
    /// Empty sets, mismatched dimensions, non-finite values, σ not finite
    /// and > 0, a non-finite result.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<CmmdOutput, MetricError> {
        if !(self.sigma.is_finite() && self.sigma > 0.0 && self.scale.is_finite()) {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "sigma must be finite and > 0 and the scale finite, got {} and {}",
                    self.sigma, self.scale
                ),
            });
        }
        check_pair(METRIC, real, fake, 1)?;
        let gamma = 1.0 / (2.0 * self.sigma * self.sigma);
        let mmd2 = KernelSums::new(Kernel::Rbf { gamma }).mmd2_biased(real, fake)?;
        Ok(CmmdOutput {
            value: self.scale * mmd2,
            sigma: self.sigma,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of CMMD (σ = 10, scale 1000).
pub static SPEC: Spec = Spec {
    name: "cmmd",
    about: "CMMD: biased MMD² with a Gaussian RBF kernel (σ = 10) × 1000; expects L2-normalised CLIP ViT-L/14@336 features",
    reference: "Jayasumana et al. 2024, Rethinking FID: Towards a Better Evaluation Metric for Image Generation; google-research cmmd/distance.py",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "cmmd",
        Direction::LowerIsBetter,
        "1000 · MMD²_b, k(x, y) = exp(−‖x − y‖²/200), all pairs including the diagonal",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(Cmmd::default())),
};

impl Metric for Cmmd {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("cmmd", self.compute(real, fake)?.value))
    }
}
