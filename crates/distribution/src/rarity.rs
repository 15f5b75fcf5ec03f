//! Rarity score (Han et al. 2022, "Rarity Score: A New Metric to Evaluate the
//! Uncommonness of Synthesized Images"; reference code hichoe95/Rarity-Score
//! `rarity_score.py`, `MANIFOLD.rarity(k=3)`).
//!
//! A real sample whose k-NN ball is large lives in a sparse, uncommon region
//! of the real distribution. A fake sample is scored by the *smallest* real
//! ball that contains it:
//!
//! ```text
//! r_k(x_i)   = distance from real x_i to its k-th nearest other real sample
//! rarity(y)  = min{ r_k(x_i) : d(y, x_i) < r_k(x_i) }     (strict, as r − d > 0 in the reference)
//! ```
//!
//! A fake sample outside every real ball has no score: the reference sets it
//! to 0 and leaves it out of its ranking (`scores_ids`); here it is `None`
//! and counted in [`RarityOutput::out_of_manifold`]. Larger is rarer;
//! [`RarityOutput::rarest_first`] is the reference's `scores_ids` (in-manifold
//! samples by decreasing score; ties by index).
//!
//! Distances are exact float64 (`gen_metrics_linalg::pairwise`); the reference
//! computes them with torch, possibly in float32, which can move samples lying
//! within ~1e-7 (relative) of a sphere.

use gen_metrics_linalg::{Boundary, kth_neighbour_radii, smallest_containing_radius};
use ndarray::{ArrayView1, ArrayView2};
use serde::Serialize;

use crate::validate::{check_neighbours, check_set};
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Plan, Set, Spec};

const METRIC: &str = "rarity";

/// Configuration of the rarity score: the neighbourhood size `k` (default 3,
/// the reference's default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rarity {
    k: usize,
}

impl Default for Rarity {
    /// k = 3.
    fn default() -> Self {
        Rarity { k: 3 }
    }
}

impl Rarity {
    /// Sets the neighbourhood size k (≥ 1, below the number of real samples).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }
}

/// Rarity of every fake sample.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RarityOutput {
    /// Per fake sample: the radius of the smallest real k-NN ball containing
    /// it, or `None` when no real ball contains it.
    pub scores: Vec<Option<f64>>,
    /// Index of the real sample whose ball gives the score (the smallest such
    /// index among equal radii).
    pub ball: Vec<Option<usize>>,
    /// Number of fake samples inside at least one real ball.
    pub in_manifold: usize,
    /// Number of fake samples outside every real ball.
    pub out_of_manifold: usize,
    /// Mean score over the in-manifold samples (`None` if there are none).
    pub mean_in_manifold: Option<f64>,
    /// In-manifold fake samples ordered from rarest (largest score) to most
    /// common; ties by index.
    pub rarest_first: Vec<usize>,
}

impl Rarity {
    fn check(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<(), MetricError> {
        check_neighbours(METRIC, self.k)?;
        check_set(METRIC, "real", real, self.k + 1)?;
        check_set(METRIC, "fake", fake, 1)?;
        if real.ncols() != fake.ncols() {
            return Err(MetricError::DimensionMismatch {
                metric: METRIC,
                real: real.ncols(),
                fake: fake.ncols(),
            });
        }
        Ok(())
    }

    /// Rarity from the precomputed k-th neighbour radii of the real set
    /// (`kth_neighbour_radii(real, k)`), as the metric contract's shared work
    /// provides them.
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`].
    pub fn compute_with_radii(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        radii: ArrayView1<'_, f64>,
    ) -> Result<RarityOutput, MetricError> {
        self.check(real, fake)?;
        let found = smallest_containing_radius(fake, real, radii, Boundary::Open)?;
        let scores: Vec<Option<f64>> = found.iter().map(|f| f.map(|(_, r)| r)).collect();
        let ball: Vec<Option<usize>> = found.iter().map(|f| f.map(|(j, _)| j)).collect();
        let mut rarest_first: Vec<usize> =
            (0..scores.len()).filter(|&i| scores[i].is_some()).collect();
        rarest_first.sort_by(|&a, &b| {
            let (sa, sb) = (scores[a].unwrap_or(0.0), scores[b].unwrap_or(0.0));
            sb.total_cmp(&sa).then(a.cmp(&b))
        });
        let in_manifold = rarest_first.len();
        let mean_in_manifold =
            (in_manifold > 0).then(|| scores.iter().flatten().sum::<f64>() / in_manifold as f64);
        Ok(RarityOutput {
            out_of_manifold: scores.len() - in_manifold,
            scores,
            ball,
            in_manifold,
            mean_in_manifold,
            rarest_first,
        })
    }
}

impl TwoSampleMetric for Rarity {
    type Output = RarityOutput;

    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<RarityOutput, MetricError> {
        self.check(real, fake)?;
        let radii = kth_neighbour_radii(real, self.k)?;
        self.compute_with_radii(real, fake, radii.view())
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of the rarity score (k = 3); `--k` overrides k.
pub static SPEC: Spec = Spec {
    name: "rarity",
    about: "rarity score of the generated samples inside the real manifold",
    reference: "Han et al. 2022, Rarity Score: A New Metric to Evaluate the Uncommonness of Synthesized Images; hichoe95/Rarity-Score",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "rarity_mean",
            Direction::NotAScore,
            "mean over in-manifold generated samples of the smallest real k-NN radius containing them",
        ),
        KeySpec::new(
            "rarity_in_manifold",
            Direction::NotAScore,
            "number of generated samples inside some real k-NN ball",
        ),
    ],
    dynamic_keys: None,
    make: |p| {
        p.check(METRIC)?;
        let m = Rarity::default();
        Ok(Box::new(if let Some(k) = p.k { m.k(k) } else { m }))
    },
};

impl Metric for Rarity {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.radii(Set::Real, self.k);
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        self.check(real, fake)?;
        let radii = cx.radii(&SPEC, Set::Real, self.k)?;
        let out = self.compute_with_radii(real, fake, radii.view())?;
        let mut o = Outcome::new();
        if let Some(mean) = out.mean_in_manifold {
            o = o.value("rarity_mean", mean);
        }
        Ok(o.value("rarity_in_manifold", out.in_manifold as f64))
    }
}
