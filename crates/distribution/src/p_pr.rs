//! Probabilistic precision and recall (Park & Kim 2023, "Probabilistic
//! Precision and Recall Towards Reliable Evaluation of Generative Models",
//! ICCV; reference: kdst-team/Probablistic_precision_recall,
//! `metric/pp_pr.py`, `compute_pprecision_precall(real, fake, a=1.2, kth=4)`).
//!
//! With `R_X = (1/N) Σ_i r_k(x_i)` the mean distance of a real sample to its
//! k-th nearest other real sample (likewise `R_Y` for the generated set),
//! `k = 4`, `a = 1.2`, and the scoring rule
//!
//! ```text
//! f(d; R) = 1 − d/(aR)  if d < aR,  0 otherwise,
//! ```
//!
//! every generated sample `y_j` is in the real support with probability
//! `1 − Π_i (1 − f(‖x_i − y_j‖; R_X))` (and every real `x_i` in the generated
//! support with `1 − Π_j (1 − f(‖x_i − y_j‖; R_Y))`):
//!
//! ```text
//! P-precision = (1/M) Σ_j [1 − Π_i (1 − f(‖x_i − y_j‖; R_X))]
//! P-recall    = (1/N) Σ_i [1 − Π_j (1 − f(‖x_i − y_j‖; R_Y))]
//! ```
//!
//! The radii are the shared k-th neighbour radii of the [`Context`] (exact
//! float64). Cross distances are visited in blocks
//! (`gen_metrics_linalg::for_each_distance_block`, O(block²) memory); a pair
//! whose GEMM bounds do not exclude `d < aR` is recomputed exactly, so every
//! factor uses the exact float64 distance. The reference uses scikit-learn's
//! float64 `pairwise_distances` (pass float64 features to it for a float64
//! reference; with float32 it works in float32).

use gen_metrics_linalg::{for_each_distance_block, kth_neighbour_radii};
use ndarray::ArrayView2;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Plan, Set, Spec};

const METRIC: &str = "p_pr";

/// Probabilistic precision/recall configuration: `k = 4`, `a = 1.2`
/// (the paper's and the official code's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbabilisticPr {
    k: usize,
    a: f64,
}

impl Default for ProbabilisticPr {
    fn default() -> Self {
        ProbabilisticPr { k: 4, a: 1.2 }
    }
}

/// P-precision and P-recall with the radii they used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProbabilisticPrOutput {
    /// P-precision, in [0, 1].
    pub precision: f64,
    /// P-recall, in [0, 1].
    pub recall: f64,
    /// `R_X`: mean k-th neighbour distance of the real set.
    pub radius_real: f64,
    /// `R_Y`: mean k-th neighbour distance of the generated set.
    pub radius_fake: f64,
}

impl ProbabilisticPr {
    /// Sets k (default 4).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets the scale a of the support radius (default 1.2).
    pub fn a(mut self, a: f64) -> Self {
        self.a = a;
        self
    }

    fn check(&self, n_real: usize, n_fake: usize) -> Result<(), MetricError> {
        if !(self.a.is_finite() && self.a > 0.0) || self.k == 0 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "need k >= 1 and a finite a > 0, got k = {} and a = {}",
                    self.k, self.a
                ),
            });
        }
        let needed = self.k + 1;
        for (set, n) in [("real", n_real), ("fake", n_fake)] {
            if n < needed {
                return Err(MetricError::TooFewSamples {
                    metric: METRIC,
                    set,
                    needed,
                    got: n,
                });
            }
        }
        Ok(())
    }

    /// P-precision and P-recall from the k-th neighbour distances of each
    /// set (`radii_real[i] = r_k(x_i)`, `radii_fake[j] = r_k(y_j)`).
    ///
    /// # Errors
    /// Bad parameters, radii of the wrong length, a zero mean radius, as
    /// [`TwoSampleMetric::compute`].
    pub fn compute_with_radii(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        radii_real: &[f64],
        radii_fake: &[f64],
    ) -> Result<ProbabilisticPrOutput, MetricError> {
        check_pair(METRIC, real, fake, 1)?;
        self.check(real.nrows(), fake.nrows())?;
        for (what, r, n) in [
            ("real radii", radii_real, real.nrows()),
            ("fake radii", radii_fake, fake.nrows()),
        ] {
            if r.len() != n {
                return Err(MetricError::LengthMismatch {
                    metric: METRIC,
                    what,
                    expected: n,
                    got: r.len(),
                });
            }
        }
        let radius_real = radii_real.iter().sum::<f64>() / radii_real.len() as f64;
        let radius_fake = radii_fake.iter().sum::<f64>() / radii_fake.len() as f64;
        if !(radius_real > 0.0 && radius_fake > 0.0) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!(
                    "the mean k-th neighbour distance is not positive (real {radius_real}, fake {radius_fake}): too many duplicate rows"
                ),
            });
        }
        let (sx, sy) = (self.a * radius_real, self.a * radius_fake);
        let reach = sx.max(sy);
        let reach2 = reach * reach;
        // psr_x[j] = Π_i (1 − f(d_ij; R_X)), psr_y[i] = Π_j (1 − f(d_ij; R_Y)),
        // multiplied in increasing index order as numpy's np.prod.
        let mut psr_x = vec![1.0f64; fake.nrows()];
        let mut psr_y = vec![1.0f64; real.nrows()];
        for_each_distance_block(real, fake, 0, |b| {
            for ii in 0..b.nrows() {
                let i = b.row0() + ii;
                for jj in 0..b.ncols() {
                    if b.squared_bounds(ii, jj).0 >= reach2 {
                        continue;
                    }
                    let d = b.exact_squared(ii, jj).sqrt();
                    let j = b.col0() + jj;
                    if d < sx {
                        psr_x[j] *= d / sx; // 1 − f = d/(aR)
                    }
                    if d < sy {
                        psr_y[i] *= d / sy;
                    }
                }
            }
        })?;
        let precision = psr_x.iter().map(|p| 1.0 - p).sum::<f64>() / psr_x.len() as f64;
        let recall = psr_y.iter().map(|p| 1.0 - p).sum::<f64>() / psr_y.len() as f64;
        Ok(ProbabilisticPrOutput {
            precision,
            recall,
            radius_real,
            radius_fake,
        })
    }
}

impl TwoSampleMetric for ProbabilisticPr {
    type Output = ProbabilisticPrOutput;

    /// P-precision and P-recall of `fake` against `real`.
    ///
    /// # Errors
    /// Fewer than k + 1 rows in a set, mismatched dimensions, non-finite
    /// values, parameters out of range, a zero mean radius.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<ProbabilisticPrOutput, MetricError> {
        check_pair(METRIC, real, fake, 1)?;
        self.check(real.nrows(), fake.nrows())?;
        let rr = kth_neighbour_radii(real, self.k)?;
        let rf = kth_neighbour_radii(fake, self.k)?;
        self.compute_with_radii(real, fake, &rr.to_vec(), &rf.to_vec())
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of P-precision / P-recall (k = 4, a = 1.2; reads the
/// shared k = 4 radii of both sets).
pub static SPEC: Spec = Spec {
    name: "p_pr",
    about: "probabilistic precision and recall: k-NN supports with a linear scoring rule (k = 4, a = 1.2)",
    reference: "Park & Kim 2023, Probabilistic Precision and Recall Towards Reliable Evaluation of Generative Models (ICCV); kdst-team/Probablistic_precision_recall",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "p_precision",
            Direction::HigherIsBetter,
            "mean over generated samples of 1 − Π_i (1 − f(‖x_i − y‖; R_real))",
        )
        .with_interval()
        .share(),
        KeySpec::new(
            "p_recall",
            Direction::HigherIsBetter,
            "mean over real samples of 1 − Π_j (1 − f(‖x − y_j‖; R_gen))",
        )
        .with_interval()
        .share(),
    ],
    dynamic_keys: None,
    make: |_| Ok(Box::new(ProbabilisticPr::default())),
};

impl Metric for ProbabilisticPr {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.radii(Set::Real, self.k);
        plan.radii(Set::Fake, self.k);
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        check_pair(METRIC, real, fake, 1)?;
        self.check(real.nrows(), fake.nrows())?;
        let rr = cx.radii(&SPEC, Set::Real, self.k)?.to_vec();
        let rf = cx.radii(&SPEC, Set::Fake, self.k)?.to_vec();
        let out = self.compute_with_radii(real, fake, &rr, &rf)?;
        Ok(Outcome::new()
            .value("p_precision", out.precision)
            .value("p_recall", out.recall))
    }
}
