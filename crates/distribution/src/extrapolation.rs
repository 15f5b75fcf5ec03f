//! The `1/N` extrapolation shared by FID∞ and IS∞ (Chong & Forsyth 2020,
//! "Effectively Unbiased FID and Inception Score and where to find them";
//! mchong6/FID_IS_infinity `score_infinity.py`).
//!
//! Both metrics are biased in the number `N` of generated samples,
//! approximately linearly in `1/N`: `M_N ≈ M_∞ + b/N`. They are evaluated at
//! the subset sizes [`batch_sizes`] on cumulatively shuffled rows
//! ([`cumulative_shuffles`]), and [`extrapolate_to_infinity`] fits the line and
//! returns its intercept. This module owns that shared machinery; the metrics
//! themselves live in [`crate::fd_infinity`] and [`crate::inception_score`].

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::MetricError;

/// A metric extrapolated to infinitely many samples, with the points it was
/// extrapolated from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InfinityExtrapolation {
    /// The intercept `M_∞`.
    pub value: f64,
    /// The slope `b` of `M_N = M_∞ + b/N`.
    pub slope: f64,
    /// `(N_j, M_{N_j})`.
    pub points: Vec<(usize, f64)>,
}

/// `⌊linspace(min, n, num)⌋` exactly as `np.linspace(min, n, num).astype('int32')`:
/// `y_i = i·((n − min)/(num − 1)) + min` in float64, the last point set to `n`,
/// truncated toward zero.
pub fn batch_sizes(min: usize, n: usize, num: usize) -> Vec<usize> {
    if num == 0 {
        return Vec::new();
    }
    if num == 1 {
        return vec![min];
    }
    let (start, stop) = (min as f64, n as f64);
    let div = (num - 1) as f64;
    let step = (stop - start) / div;
    (0..num)
        .map(|i| {
            if i == num - 1 {
                n
            } else if step == 0.0 {
                // numpy's denormal-step branch: y = i/div * delta + start
                ((i as f64 / div) * (stop - start) + start) as usize
            } else {
                (i as f64 * step + start) as usize
            }
        })
        .collect()
}

/// The ordinary-least-squares fit `y = a + b·(1/N)` through `(N_j, y_j)` and its
/// value at `1/N = 0`: returns `(a, b)`.
///
/// `b = Σ(x−x̄)(y−ȳ) / Σ(x−x̄)²`, `a = ȳ − b x̄` with `x = 1/N` — the same fit as
/// `sklearn.linear_model.LinearRegression().fit(1/N, y).predict([[0]])` used by
/// Chong & Forsyth for both FID∞ and IS∞.
///
/// # Errors
/// [`MetricError::InvalidParameter`] for fewer than two distinct `N` or a zero
/// `N`; [`MetricError::Numerical`] for a non-finite result.
pub fn extrapolate_to_infinity(
    metric: &'static str,
    points: &[(usize, f64)],
) -> Result<(f64, f64), MetricError> {
    if points.iter().any(|&(n, _)| n == 0) {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: "a subset size of 0".into(),
        });
    }
    let k = points.len() as f64;
    let xbar = points.iter().map(|&(n, _)| 1.0 / n as f64).sum::<f64>() / k;
    let ybar = points.iter().map(|&(_, y)| y).sum::<f64>() / k;
    let sxx: f64 = points
        .iter()
        .map(|&(n, _)| (1.0 / n as f64 - xbar).powi(2))
        .sum();
    let sxy: f64 = points
        .iter()
        .map(|&(n, y)| (1.0 / n as f64 - xbar) * (y - ybar))
        .sum();
    if points.len() < 2 || sxx <= 0.0 {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: "the 1/N extrapolation needs at least two distinct subset sizes".into(),
        });
    }
    let b = sxy / sxx;
    let a = ybar - b * xbar;
    if !(a.is_finite() && b.is_finite()) {
        return Err(MetricError::Numerical {
            metric,
            detail: format!("non-finite extrapolation (a = {a}, b = {b})"),
        });
    }
    Ok((a, b))
}

/// Cumulative seeded shuffles: row `j` is the order after the `(j+1)`-th
/// in-place shuffle of `0..n` with `ChaCha8Rng::seed_from_u64(seed)`.
pub fn cumulative_shuffles(n: usize, num: usize, seed: u64) -> Array2<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut out = Array2::<usize>::zeros((num, n));
    for j in 0..num {
        order.shuffle(&mut rng);
        out.row_mut(j)
            .iter_mut()
            .zip(&order)
            .for_each(|(o, &v)| *o = v);
    }
    out
}

/// Checks that every row of `orders` has `n` entries below `n` and the first
/// `sizes[j]` entries of row `j` are distinct.
pub(crate) fn check_orders(
    metric: &'static str,
    orders: ArrayView2<'_, usize>,
    n: usize,
    sizes: &[usize],
) -> Result<(), MetricError> {
    if orders.nrows() != sizes.len() || orders.ncols() < sizes.iter().copied().max().unwrap_or(0) {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: format!(
                "row orders have shape {:?}, need {} rows of at least {} indices",
                orders.dim(),
                sizes.len(),
                sizes.iter().copied().max().unwrap_or(0)
            ),
        });
    }
    let mut seen = vec![usize::MAX; n];
    for (j, (row, &sz)) in orders.outer_iter().zip(sizes).enumerate() {
        for &i in row.iter().take(sz) {
            if i >= n {
                return Err(MetricError::InvalidParameter {
                    metric,
                    detail: format!("row order {j} has index {i} >= {n}"),
                });
            }
            if seen[i] == j {
                return Err(MetricError::InvalidParameter {
                    metric,
                    detail: format!("row order {j} repeats index {i}"),
                });
            }
            seen[i] = j;
        }
    }
    Ok(())
}
