//! dgm-eval's "efficient" Fréchet distance (Stein et al. 2023, "Exposing
//! flaws of generative model evaluation metrics and their unfair treatment of
//! diffusion models"; reference: layer6ai-labs/dgm-eval,
//! `dgm_eval/metrics/fd.py`, `compute_efficient_FD_with_reps`).
//!
//! dgm-eval evaluates the trace of the matrix square root from the
//! eigenvalues of the product of the two covariances (ddof 1, `np.cov`):
//!
//! ```text
//! FD_eff = ‖μ_r − μ_f‖² + tr Σ_r + tr Σ_f − 2 Σ_k Re √λ_k(Σ_r Σ_f)
//! ```
//!
//! The eigenvalues of `Σ_r Σ_f` are those of the symmetric positive
//! semi-definite `Lᵀ Σ_f L` (`Σ_r = L Lᵀ`), so in exact arithmetic they are real
//! and `≥ 0` and `FD_eff` equals FID; round-off makes some of them slightly
//! negative when a covariance is singular (`N ≤ D`), and `Re √λ = 0` for those,
//! which is the clamping of negative eigenvalues that
//! [`gen_metrics_linalg::FrechetDistance`] does. This metric is therefore that
//! one routine (no `sqrtm`, no non-symmetric eigensolver; the shared Gaussian
//! fits of the [`Context`]); with `N ≤ D` rows its Gram/SVD branch is accurate
//! to ~1e-15 relative where dgm-eval's `eigvals` route is good to ~1e-8. A
//! computed value between minus the rounding bound and 0 (identical sets) is
//! reported as 0, as FID's.

use gen_metrics_linalg::{FrechetDistance, FrechetSide};
use ndarray::ArrayView2;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Plan, Set, Spec};

const METRIC: &str = "fd_eff";

/// dgm-eval's efficient Fréchet distance (see the module docs); no
/// parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct FdEff;

impl FdEff {
    /// `FD_eff` between two prepared Gaussian fits (statistics or rows).
    ///
    /// # Errors
    /// [`MetricError::DimensionMismatch`], [`MetricError::Linalg`] for a
    /// failed decomposition.
    pub fn compute_from_sides(
        &self,
        real: &FrechetSide,
        fake: &FrechetSide,
    ) -> Result<f64, MetricError> {
        if real.dim() != fake.dim() {
            return Err(MetricError::DimensionMismatch {
                metric: METRIC,
                real: real.dim(),
                fake: fake.dim(),
            });
        }
        Ok(FrechetDistance::new().between_sides(real, fake)?.value)
    }
}

impl TwoSampleMetric for FdEff {
    type Output = f64;

    /// `FD_eff` of the Gaussians fitted to `real` and `fake` (ddof 1).
    ///
    /// # Errors
    /// Fewer than 2 rows in a set, mismatched dimensions, non-finite values,
    /// a failed decomposition.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<f64, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        let (a, b) = FrechetSide::from_features_pair(real, fake);
        self.compute_from_sides(&a?, &b?)
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of dgm-eval's `fd_eff` (reads the shared Gaussian fits, so
/// statistics files are accepted).
pub static SPEC: Spec = Spec {
    name: "fd_eff",
    about: "dgm-eval's efficient Fréchet distance: the trace term from the eigenvalues of Σ_r Σ_g (equals FID up to round-off)",
    reference: "Stein et al. 2023, Exposing flaws of generative model evaluation metrics; dgm-eval compute_efficient_FD_with_reps",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: true,
    keys: &[KeySpec::new(
        "fd_eff",
        Direction::LowerIsBetter,
        "‖μ_r − μ_g‖² + tr Σ_r + tr Σ_g − 2 Σ_k Re √λ_k(Σ_r Σ_g)",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(FdEff)),
};

impl Metric for FdEff {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.gaussian(Set::Real);
        plan.gaussian(Set::Fake);
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.frechet_side(&SPEC, Set::Real)?;
        let fake = cx.frechet_side(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("fd_eff", self.compute_from_sides(&real, &fake)?))
    }
}
