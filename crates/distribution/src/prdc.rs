//! Precision, recall, density and coverage with the conventions of the `prdc`
//! package (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
//! Generative Models"; `prdc` 0.2 `compute_prdc`).
//!
//! With `r_k(x)` the distance from `x` to its k-th nearest other sample of its
//! own set, N real samples `x_i` and M fake samples `y_j`, and **strict** `<`
//! everywhere (prdc's convention; nothing is inside a ball of radius 0):
//!
//! ```text
//! precision = (1/M) Σ_j 1[ ∃ i : d(x_i, y_j) < r_k(x_i) ]
//! recall    = (1/N) Σ_i 1[ ∃ j : d(x_i, y_j) < r_k(y_j) ]
//! density   = (1/k) · (1/M) Σ_j #{ i : d(x_i, y_j) < r_k(x_i) }
//! coverage  = (1/N) Σ_i 1[ min_j d(x_i, y_j) < r_k(x_i) ]
//! ```
//!
//! prdc computes the distances with scikit-learn in float32-upcast arithmetic;
//! the conformance corpus shows that its decisions agree with exact float64
//! distances in every case, and exact float64 is what is computed here (see
//! `gen_metrics_linalg::pairwise`), so the four ratios are those of the exact
//! rule. `density` is formed as prdc forms it, `(1/k) · (Σ counts / M)`.

use gen_metrics_linalg::{Boundary, CrossBallStats, cross_ball_statistics, kth_neighbour_radii};
use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::validate::{check_neighbours, check_pair};
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, Need, Outcome, Plan, Set, Spec,
};

const METRIC: &str = "prdc";

/// Configuration of prdc's four metrics: the neighbourhood size `k`
/// (default 5, prdc's `nearest_k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Prdc {
    k: usize,
}

impl Default for Prdc {
    /// k = 5, as in the paper and prdc's examples.
    fn default() -> Self {
        Prdc { k: 5 }
    }
}

impl Prdc {
    /// Sets the neighbourhood size k (≥ 1, and below both set sizes).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// The neighbourhood size.
    pub fn nearest_k(&self) -> usize {
        self.k
    }
}

/// prdc's four numbers and their integer numerators.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrdcOutput {
    /// Fraction of fake samples inside some real k-NN ball.
    pub precision: f64,
    /// Fraction of real samples inside some fake k-NN ball.
    pub recall: f64,
    /// Mean number of real balls containing a fake sample, divided by k
    /// (can exceed 1).
    pub density: f64,
    /// Fraction of real samples whose own k-NN ball contains a fake sample.
    pub coverage: f64,
    /// Neighbourhood size used.
    pub k: usize,
    /// Σ_j #{ i : d(x_i, y_j) < r_k(x_i) } (density numerator).
    pub real_balls_containing_fakes: usize,
}

impl Prdc {
    fn check(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<(), MetricError> {
        check_neighbours(METRIC, self.k)?;
        check_pair(METRIC, real, fake, self.k + 1)
    }

    /// The four numbers from precomputed k-th neighbour radii of both sets
    /// (`kth_neighbour_radii(real, k)`, likewise fake), as the metric
    /// contract's shared work provides them.
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`]; radii of the wrong length.
    pub fn compute_with_radii(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        r_real: ArrayView1<'_, f64>,
        r_fake: ArrayView1<'_, f64>,
    ) -> Result<PrdcOutput, MetricError> {
        self.check(real, fake)?;
        let st = cross_ball_statistics(real, fake, r_real, r_fake, Boundary::Open)?;
        Ok(self.values_from_cross(&st, r_real))
    }

    /// The four values from the ball statistics of (real, fake) with these
    /// k-NN radii (`a` = real, open balls).
    fn values_from_cross(&self, st: &CrossBallStats, r_real: ArrayView1<'_, f64>) -> PrdcOutput {
        let (n, m) = (st.a_in_b_balls.len() as f64, st.b_in_a_balls.len() as f64);
        let precision_count = st.b_in_a_balls.iter().filter(|&&c| c > 0).count();
        let recall_count = st.a_in_b_balls.iter().filter(|&&c| c > 0).count();
        let density_count: usize = st.b_in_a_balls.sum();
        let coverage_count = st
            .a_nearest_b
            .iter()
            .zip(r_real.iter())
            .filter(|&(d, r)| d < r)
            .count();
        PrdcOutput {
            precision: precision_count as f64 / m,
            recall: recall_count as f64 / n,
            density: (1.0 / self.k as f64) * (density_count as f64 / m),
            coverage: coverage_count as f64 / n,
            k: self.k,
            real_balls_containing_fakes: density_count,
        }
    }
}

impl TwoSampleMetric for Prdc {
    type Output = PrdcOutput;

    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<PrdcOutput, MetricError> {
        self.check(real, fake)?;
        let r_real = kth_neighbour_radii(real, self.k)?;
        let r_fake = kth_neighbour_radii(fake, self.k)?;
        self.compute_with_radii(real, fake, r_real.view(), r_fake.view())
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of prdc's precision, recall, density and coverage (k = 5,
/// strict balls); `--k` overrides k.
pub static SPEC: Spec = Spec {
    name: "prdc",
    about: "precision, recall, density and coverage, prdc convention k = 5, <",
    reference: "Naeem et al. 2020, Reliable Fidelity and Diversity Metrics for Generative Models; prdc 0.2 compute_prdc",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "prdc_precision",
            Direction::HigherIsBetter,
            "share of generated samples inside some real k-NN ball",
        )
        .with_interval()
        .share(),
        KeySpec::new(
            "prdc_recall",
            Direction::HigherIsBetter,
            "share of real samples inside some generated k-NN ball",
        )
        .with_interval()
        .share(),
        KeySpec::new(
            "density",
            Direction::HigherIsBetter,
            "mean number of real balls holding a generated sample, over k",
        )
        .with_interval()
        .non_negative(),
        KeySpec::new(
            "coverage",
            Direction::HigherIsBetter,
            "share of real balls holding at least one generated sample",
        )
        .with_interval()
        .share(),
    ],
    dynamic_keys: None,
    make: |p| {
        p.check(METRIC)?;
        let m = Prdc::default();
        Ok(Box::new(if let Some(k) = p.k { m.k(k) } else { m }))
    },
};

impl Metric for Prdc {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.radii(Set::Real, self.k);
        plan.radii(Set::Fake, self.k);
        plan.need(Need::CrossBalls {
            k: self.k,
            boundary: Boundary::Open,
        });
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        self.check(real, fake)?;
        let r_real = cx.radii(&SPEC, Set::Real, self.k)?;
        let st = cx.cross_balls(&SPEC, self.k, Boundary::Open)?;
        let out = self.values_from_cross(&st, r_real.view());
        Ok(Outcome::new()
            .value("prdc_precision", out.precision)
            .value("prdc_recall", out.recall)
            .value("density", out.density)
            .value("coverage", out.coverage))
    }
}
