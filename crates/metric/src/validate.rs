//! Input checks shared by every metric: one place that turns bad input into a
//! [`MetricError`] before any arithmetic runs.

use crate::MetricError;
use ndarray::ArrayView2;

/// Checks a neighbourhood size `k` of a k-NN metric (precision/recall,
/// density/coverage, realism, rarity): at least 1 (the `k`-th nearest
/// neighbour other than the point itself, Kynkäänniemi et al. 2019).
///
/// # Errors
/// [`MetricError::InvalidParameter`] for `k = 0`.
pub fn check_neighbours(metric: &'static str, k: usize) -> Result<(), MetricError> {
    if k == 0 {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: "k must be at least 1".into(),
        });
    }
    Ok(())
}

/// Checks that `x` has at least `needed` rows and only finite values.
///
/// # Errors
/// [`MetricError::TooFewSamples`] or [`MetricError::NonFinite`].
pub fn check_set(
    metric: &'static str,
    set: &'static str,
    x: ArrayView2<'_, f32>,
    needed: usize,
) -> Result<(), MetricError> {
    if x.nrows() < needed {
        return Err(MetricError::TooFewSamples {
            metric,
            set,
            needed,
            got: x.nrows(),
        });
    }
    if x.ncols() == 0 {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: format!("the {set} set has zero feature dimensions"),
        });
    }
    for (row, r) in x.outer_iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !v.is_finite()) {
            return Err(MetricError::NonFinite {
                metric,
                set,
                row,
                col,
            });
        }
    }
    Ok(())
}

/// Checks both sets (each with at least `needed` rows) and that their
/// dimensions agree.
///
/// # Errors
/// As [`check_set`], plus [`MetricError::DimensionMismatch`].
pub fn check_pair(
    metric: &'static str,
    real: ArrayView2<'_, f32>,
    fake: ArrayView2<'_, f32>,
    needed: usize,
) -> Result<(), MetricError> {
    check_set(metric, "real", real, needed)?;
    check_set(metric, "fake", fake, needed)?;
    if real.ncols() != fake.ncols() {
        return Err(MetricError::DimensionMismatch {
            metric,
            real: real.ncols(),
            fake: fake.ncols(),
        });
    }
    Ok(())
}
