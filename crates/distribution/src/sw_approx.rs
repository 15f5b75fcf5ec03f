//! The Monte-Carlo-free approximation of the sliced Wasserstein-2 distance
//! (Nadjahi et al. 2021, "Fast Approximation of the Sliced-Wasserstein
//! Distance Using Concentration of Random Projections"; reference:
//! layer6ai-labs/dgm-eval, `dgm_eval/metrics/sw.py`, `sw_approx(X, Y)`).
//!
//! For `X` (real, `m` rows) and `Y` (generated, `n` rows) in `D` dimensions,
//! with means `μ_X`, `μ_Y`:
//!
//! ```text
//! mean_term = ‖μ_X − μ_Y‖² / D
//! m2_X      = (1/m) Σ_i ‖x_i − μ_X‖² / D          (likewise m2_Y)
//! SW_approx = ( mean_term + (√m2_X − √m2_Y)² )^½
//! ```
//!
//! Nothing is random (the approximation replaces the projections by their
//! Gaussian limit). Computed in float64 (`f32` features widened exactly),
//! with two passes (means, then centred second moments) as the reference.

use ndarray::{Array1, ArrayView2};

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "sw_approx";

/// The approximate sliced Wasserstein-2 distance (no parameters).
#[derive(Debug, Clone, Copy, Default)]
pub struct SwApprox;

/// Column means and the mean squared distance to them, divided by `D`.
fn moments(x: ArrayView2<'_, f32>) -> (Array1<f64>, f64) {
    let (n, d) = x.dim();
    let mut mean = Array1::<f64>::zeros(d);
    for row in x.rows() {
        for (m, &v) in mean.iter_mut().zip(row.iter()) {
            *m += f64::from(v);
        }
    }
    mean.mapv_inplace(|v| v / n as f64);
    let mut m2 = 0.0;
    for row in x.rows() {
        m2 += row
            .iter()
            .zip(mean.iter())
            .map(|(&v, &m)| (f64::from(v) - m).powi(2))
            .sum::<f64>();
    }
    (mean, m2 / n as f64 / d as f64)
}

impl TwoSampleMetric for SwApprox {
    type Output = f64;

    /// `SW_approx(real, fake)` (symmetric).
    ///
    /// # Errors
    /// Empty sets, mismatched dimensions, non-finite values or result.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<f64, MetricError> {
        check_pair(METRIC, real, fake, 1)?;
        let d = real.ncols() as f64;
        let (mx, m2x) = moments(real);
        let (my, m2y) = moments(fake);
        let mean_term = mx
            .iter()
            .zip(my.iter())
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / d;
        let v = (mean_term + (m2x.sqrt() - m2y.sqrt()).powi(2)).sqrt();
        if !v.is_finite() {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("the value is {v}"),
            });
        }
        Ok(v)
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of dgm-eval's `sw_approx`.
pub static SPEC: Spec = Spec {
    name: "sw_approx",
    about: "approximate sliced Wasserstein-2 distance without Monte Carlo (Gaussian limit of random projections)",
    reference: "Nadjahi et al. 2021, Fast Approximation of the Sliced-Wasserstein Distance Using Concentration of Random Projections; dgm-eval sw_approx",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "sw_approx",
        Direction::LowerIsBetter,
        "(‖μ_r − μ_g‖²/D + (√m2_r − √m2_g)²)^½, m2 = mean ‖x − μ‖²/D",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(SwApprox)),
};

impl Metric for SwApprox {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("sw_approx", self.compute(real, fake)?))
    }
}
