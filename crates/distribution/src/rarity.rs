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
use ndarray::ArrayView2;
use serde::Serialize;

use crate::validate::check_set;
use crate::{MetricError, TwoSampleMetric};

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

impl TwoSampleMetric for Rarity {
    type Output = RarityOutput;

    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<RarityOutput, MetricError> {
        if self.k == 0 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: "k must be at least 1".into(),
            });
        }
        check_set(METRIC, "real", real, self.k + 1)?;
        check_set(METRIC, "fake", fake, 1)?;
        if real.ncols() != fake.ncols() {
            return Err(MetricError::DimensionMismatch {
                metric: METRIC,
                real: real.ncols(),
                fake: fake.ncols(),
            });
        }
        let radii = kth_neighbour_radii(real, self.k)?;
        let found = smallest_containing_radius(fake, real, radii.view(), Boundary::Open)?;
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
