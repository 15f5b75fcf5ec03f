//! FID∞ (Chong & Forsyth 2020, "Effectively Unbiased FID and Inception Score
//! and where to find them"; mchong6/FID_IS_infinity `score_infinity.py`,
//! `calculate_FID_infinity_path`).
//!
//! FID is biased in the number `N` of generated samples, approximately
//! linearly in `1/N`: `FID_N ≈ FID_∞ + k/N`. The estimate evaluates `FID_N`
//! at `num_points` (15) sizes `N_j = ⌊linspace(min_fake, N_fake, 15)⌋`, each on
//! the first `N_j` rows of the generated set after a further shuffle (the
//! shuffles are **cumulative**: the original shuffles the array in place once
//! per point), fits `FID_N = a + b/N` by ordinary least squares and returns
//! the intercept `a` ([`extrapolate_to_infinity`], shared with IS∞ in
//! [`crate::extrapolation`]).
//!
//! The original does not seed its shuffles. Here the row orders either come
//! from a seeded `ChaCha8Rng` (deterministic under the seed) or are replayed
//! exactly ([`FdInfinity::compute_with_orders`]; the conformance corpus stores
//! them as `fdinf_perm.npy`).

use gen_metrics_linalg::{FrechetDistance, FrechetMethod, FrechetSide};
use ndarray::{ArrayView2, Axis};

use crate::extrapolation::check_orders;
pub use crate::extrapolation::{
    InfinityExtrapolation, batch_sizes, cumulative_shuffles, extrapolate_to_infinity,
};
use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Curve, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "FD-infinity";

/// FID∞ configuration: Chong & Forsyth's defaults are `min_fake = 5000`,
/// `num_points = 15`; the row orders come from `seed` unless replayed.
#[derive(Debug, Clone, Copy)]
pub struct FdInfinity {
    min_fake: usize,
    num_points: usize,
    seed: u64,
    method: FrechetMethod,
}

impl Default for FdInfinity {
    fn default() -> Self {
        FdInfinity {
            min_fake: 5000,
            num_points: 15,
            seed: 0,
            method: FrechetMethod::Auto,
        }
    }
}

/// FID∞ with the points it was extrapolated from (`points` are
/// `(N_j, FID_{N_j})`).
pub type FdInfinityOutput = InfinityExtrapolation;

impl FdInfinity {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The smallest subset size (Chong & Forsyth: 5000; at least 2).
    pub fn min_fake(mut self, n: usize) -> Self {
        self.min_fake = n;
        self
    }

    /// The number of subset sizes (default 15; at least 2).
    pub fn num_points(mut self, k: usize) -> Self {
        self.num_points = k;
        self
    }

    /// The seed of the row shuffles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The Fréchet-distance algorithm for every point.
    pub fn method(mut self, method: FrechetMethod) -> Self {
        self.method = method;
        self
    }

    /// The subset sizes for `n_fake` generated rows.
    ///
    /// # Errors
    /// [`MetricError::InvalidParameter`] unless `2 ≤ min_fake ≤ n_fake` and
    /// `num_points ≥ 2`.
    pub fn sizes(&self, n_fake: usize) -> Result<Vec<usize>, MetricError> {
        if self.num_points < 2 || self.min_fake < 2 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "need num_points >= 2 and min_fake >= 2, got {} and {}",
                    self.num_points, self.min_fake
                ),
            });
        }
        if self.min_fake > n_fake {
            return Err(MetricError::TooFewSamples {
                metric: METRIC,
                set: "fake",
                needed: self.min_fake,
                got: n_fake,
            });
        }
        Ok(batch_sizes(self.min_fake, n_fake, self.num_points))
    }

    /// FID∞ replaying given row orders: point `j` uses
    /// `fake[orders[j, ..N_j]]` (row `j` = the order after the `j`-th cumulative
    /// shuffle, as the corpus' `fdinf_perm.npy`).
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`], plus [`MetricError::InvalidParameter`]
    /// for orders of the wrong shape, out of range or with repeats.
    pub fn compute_with_orders(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        orders: ArrayView2<'_, usize>,
    ) -> Result<FdInfinityOutput, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        let sizes = self.sizes(fake.nrows())?;
        check_orders(METRIC, orders, fake.nrows(), &sizes)?;
        let real_side = FrechetSide::from_features(real)?;
        let fd = FrechetDistance::new().method(self.method);
        let mut points = Vec::with_capacity(sizes.len());
        for (row, &nj) in orders.outer_iter().zip(&sizes) {
            let idx: Vec<usize> = row.iter().take(nj).copied().collect();
            let subset = fake.select(Axis(0), &idx);
            let side = FrechetSide::from_features(subset.view())?;
            points.push((nj, fd.between_sides(&real_side, &side)?.value));
        }
        let (value, slope) = extrapolate_to_infinity(METRIC, &points)?;
        Ok(FdInfinityOutput {
            value,
            slope,
            points,
        })
    }
}

impl TwoSampleMetric for FdInfinity {
    type Output = FdInfinityOutput;

    /// FID∞ with seeded cumulative shuffles ([`cumulative_shuffles`]).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] (fewer than `min_fake` fake rows, fewer
    /// than 2 real rows), [`MetricError::DimensionMismatch`],
    /// [`MetricError::NonFinite`], [`MetricError::InvalidParameter`],
    /// [`MetricError::Linalg`].
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<FdInfinityOutput, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        self.sizes(fake.nrows())?;
        let orders = cumulative_shuffles(fake.nrows(), self.num_points, self.seed);
        self.compute_with_orders(real, fake, orders.view())
    }
}

// --- the metric contract ----------------------------------------------------

/// The first batch size of the extrapolation for `n` generated samples:
/// Chong & Forsyth's 5000, or N/5 for smaller sets (at least 2).
pub fn infinity_start(n: usize) -> usize {
    5000.min((n / 5).max(2))
}

/// FD-inf as the registry builds it: the first batch size follows the
/// generated set's size ([`infinity_start`]).
#[derive(Debug, Clone, Copy)]
pub struct FdInfinityMetric {
    /// Seed of the cumulative shuffles.
    pub seed: u64,
}

/// Registry entry of FD-inf.
pub static SPEC: Spec = Spec {
    name: "fd_inf",
    about: "FID extrapolated to infinitely many generated samples (removes the 1/N bias)",
    reference: "Chong & Forsyth 2020, Effectively Unbiased FID and Inception Score and where to find them",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "fd_inf",
        Direction::LowerIsBetter,
        "intercept of FID_N = FID_∞ + b/N fitted over 15 subset sizes",
    )
    .signed_estimator()],
    dynamic_keys: None,
    make: |p| Ok(Box::new(FdInfinityMetric { seed: p.seed })),
};

impl Metric for FdInfinityMetric {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let out = FdInfinity::new()
            .min_fake(infinity_start(fake.nrows()))
            .seed(self.seed)
            .compute(real, fake)?;
        let curve = Curve {
            key: "fd_vs_inverse_n",
            x_label: "1/N",
            y_label: "FID_N",
            points: out
                .points
                .iter()
                .map(|&(n, v)| (1.0 / n as f64, v))
                .collect(),
            line: Some((out.value, out.slope)),
        };
        Ok(Outcome::new().value("fd_inf", out.value).curve(curve))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_numpy() {
        // np.linspace(500, 2000, 15).astype(np.int32) (tools/references/small.py)
        assert_eq!(
            batch_sizes(500, 2000, 15),
            vec![
                500, 607, 714, 821, 928, 1035, 1142, 1250, 1357, 1464, 1571, 1678, 1785, 1892, 2000
            ]
        );
        assert_eq!(batch_sizes(7, 7, 3), vec![7, 7, 7]);
    }

    #[test]
    fn ols_recovers_a_line() {
        let pts: Vec<(usize, f64)> = [10usize, 20, 40, 80]
            .iter()
            .map(|&n| (n, 3.0 + 5.0 / n as f64))
            .collect();
        let (a, b) = extrapolate_to_infinity("t", &pts).unwrap();
        assert!((a - 3.0).abs() < 1e-13 && (b - 5.0).abs() < 1e-11);
        assert!(extrapolate_to_infinity("t", &[(5, 1.0), (5, 2.0)]).is_err());
    }

    #[test]
    fn shuffles_are_deterministic_permutations() {
        let a = cumulative_shuffles(50, 3, 7);
        assert_eq!(a, cumulative_shuffles(50, 3, 7));
        assert_ne!(a, cumulative_shuffles(50, 3, 8));
        for row in a.outer_iter() {
            let mut v = row.to_vec();
            v.sort_unstable();
            assert_eq!(v, (0..50).collect::<Vec<_>>());
        }
        assert_ne!(a.row(0), a.row(1));
    }
}
