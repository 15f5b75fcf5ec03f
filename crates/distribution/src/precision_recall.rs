//! Improved precision and recall (Kynkäänniemi et al. 2019, "Improved
//! Precision and Recall Metric for Assessing Generative Models").
//!
//! Each set is modelled as the union of k-NN balls around its samples:
//!
//! ```text
//! r_k(x)          = distance from x to its k-th nearest other sample of its own set
//! manifold(Φ)     = ∪_{φ ∈ Φ} B(φ, r_k(φ))
//! precision       = (1/M) Σ_{fake g} 1[ g ∈ manifold(real) ]
//! recall          = (1/N) Σ_{real x} 1[ x ∈ manifold(fake) ]
//! ```
//!
//! Two conventions are in use and give visibly different numbers on data with
//! duplicates (radii of exactly 0) or points on a sphere:
//!
//! * **NVlabs** ([`PrecisionRecall::nvlabs`], the default): k = 3 and the closed
//!   ball, `d ≤ r` (NVlabs/stylegan2-ada-pytorch `metrics/precision_recall.py`
//!   `compute_pr`, kynkaat/improved-precision-and-recall-metric).
//! * **prdc** ([`PrecisionRecall::prdc`]): k = 5 and the open ball, `d < r`
//!   (Naeem et al. 2020, the `prdc` package).
//!
//! Distances are exact float64 ones (see `gen_metrics_linalg::pairwise`), so the
//! counts equal those of a float64 reference exactly; the original NVlabs code
//! runs in float16 on GPU and can differ by a few samples (see the conformance
//! corpus README).

use gen_metrics_linalg::{Boundary, CrossBallStats, cross_ball_statistics, kth_neighbour_radii};
use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::validate::{check_neighbours, check_pair};
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, Need, Outcome, Plan, Set, Spec,
};

const METRIC: &str = "precision_recall";

/// Configuration of improved precision/recall: the neighbourhood size `k`
/// and whether the balls are closed (`d ≤ r`) or open (`d < r`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrecisionRecall {
    k: usize,
    boundary: Boundary,
}

impl Default for PrecisionRecall {
    /// The NVlabs convention: k = 3, closed balls.
    fn default() -> Self {
        Self::nvlabs()
    }
}

impl PrecisionRecall {
    /// NVlabs / kynkaat: k = 3, in the manifold iff `d ≤ r`.
    pub fn nvlabs() -> Self {
        PrecisionRecall {
            k: 3,
            boundary: Boundary::Closed,
        }
    }

    /// prdc (Naeem et al. 2020): k = 5, in the manifold iff `d < r`.
    pub fn prdc() -> Self {
        PrecisionRecall {
            k: 5,
            boundary: Boundary::Open,
        }
    }

    /// Sets the neighbourhood size k (≥ 1, and below both set sizes).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// Sets the ball boundary rule.
    pub fn boundary(mut self, boundary: Boundary) -> Self {
        self.boundary = boundary;
        self
    }

    /// The neighbourhood size.
    pub fn nearest_k(&self) -> usize {
        self.k
    }
}

/// Precision and recall, with the convention that produced them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrecisionRecallOutput {
    /// Fraction of fake samples inside the real manifold.
    pub precision: f64,
    /// Fraction of real samples inside the fake manifold.
    pub recall: f64,
    /// Neighbourhood size used.
    pub k: usize,
    /// `true` for closed balls (`d ≤ r`), `false` for open ones (`d < r`).
    pub closed_balls: bool,
    /// Number of fake samples inside the real manifold (precision numerator).
    pub fake_in_real_manifold: usize,
    /// Number of real samples inside the fake manifold (recall numerator).
    pub real_in_fake_manifold: usize,
}

impl PrecisionRecall {
    fn check(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<(), MetricError> {
        check_neighbours(METRIC, self.k)?;
        check_pair(METRIC, real, fake, self.k + 1)
    }

    /// Precision and recall from precomputed k-th neighbour radii of both
    /// sets (`r_real = kth_neighbour_radii(real, k)`, likewise fake), as the
    /// metric contract's shared work provides them.
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`]; radii of the wrong length.
    pub fn compute_with_radii(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        r_real: ArrayView1<'_, f64>,
        r_fake: ArrayView1<'_, f64>,
    ) -> Result<PrecisionRecallOutput, MetricError> {
        self.check(real, fake)?;
        let st = cross_ball_statistics(real, fake, r_real, r_fake, self.boundary)?;
        Ok(self.values_from_cross(&st))
    }

    /// The output from the ball statistics of (real, fake) with these k-NN
    /// radii (`a` = real): precision = share of fakes in some real ball,
    /// recall = share of reals in some fake ball.
    fn values_from_cross(&self, st: &CrossBallStats) -> PrecisionRecallOutput {
        let fake_in = st.b_in_a_balls.iter().filter(|&&c| c > 0).count();
        let real_in = st.a_in_b_balls.iter().filter(|&&c| c > 0).count();
        PrecisionRecallOutput {
            precision: fake_in as f64 / st.b_in_a_balls.len() as f64,
            recall: real_in as f64 / st.a_in_b_balls.len() as f64,
            k: self.k,
            closed_balls: self.boundary == Boundary::Closed,
            fake_in_real_manifold: fake_in,
            real_in_fake_manifold: real_in,
        }
    }
}

impl TwoSampleMetric for PrecisionRecall {
    type Output = PrecisionRecallOutput;

    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<PrecisionRecallOutput, MetricError> {
        self.check(real, fake)?;
        let r_real = kth_neighbour_radii(real, self.k)?;
        let r_fake = kth_neighbour_radii(fake, self.k)?;
        self.compute_with_radii(real, fake, r_real.view(), r_fake.view())
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of precision/recall in NVlabs' convention (k = 3, closed
/// balls); `--k` overrides k.
pub static SPEC: Spec = Spec {
    name: "pr",
    about: "k-NN precision (fidelity) and recall (diversity), NVlabs convention k = 3, ≤",
    reference: "Kynkäänniemi et al. 2019, Improved Precision and Recall Metric; NVlabs stylegan2-ada compute_pr",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "precision",
            Direction::HigherIsBetter,
            "share of generated samples inside some real k-NN ball",
        )
        .with_interval()
        .share(),
        KeySpec::new(
            "recall",
            Direction::HigherIsBetter,
            "share of real samples inside some generated k-NN ball",
        )
        .with_interval()
        .share(),
    ],
    dynamic_keys: None,
    make: |p| {
        p.check(METRIC)?;
        let m = PrecisionRecall::nvlabs();
        Ok(Box::new(if let Some(k) = p.k { m.k(k) } else { m }))
    },
};

impl Metric for PrecisionRecall {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.radii(Set::Real, self.k);
        plan.radii(Set::Fake, self.k);
        plan.need(Need::CrossBalls {
            k: self.k,
            boundary: self.boundary,
        });
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        self.check(real, fake)?;
        let st = cx.cross_balls(&SPEC, self.k, self.boundary)?;
        let out = self.values_from_cross(&st);
        Ok(Outcome::new()
            .value("precision", out.precision)
            .value("recall", out.recall))
    }
}
