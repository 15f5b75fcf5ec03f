//! The one error type of the memorization crate.

use gen_metrics_linalg::LinalgError;

/// Why a memorization test could not be computed. Never a panic, never a NaN
/// passed on.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MemorizationError {
    /// A kernel (PCA, k-means, distances) rejected its input.
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// A set is empty or smaller than the test needs.
    #[error("{metric}: the {set} set needs at least {needed} samples, got {got}")]
    TooFewSamples {
        /// The test.
        metric: &'static str,
        /// Which set ("train", "test", "gen", ...).
        set: &'static str,
        /// The minimum.
        needed: usize,
        /// What was given.
        got: usize,
    },
    /// Two sets have different feature dimensions.
    #[error("{metric}: the {set} set has {got} dimensions, expected {expected} (as the train set)")]
    DimensionMismatch {
        /// The test.
        metric: &'static str,
        /// The set whose dimension differs from the train set.
        set: &'static str,
        /// The train set's dimension.
        expected: usize,
        /// This set's dimension.
        got: usize,
    },
    /// A per-sample array (cell labels, ...) does not have one entry per row.
    #[error("{metric}: {what} has {got} entries, expected {expected}")]
    LengthMismatch {
        /// The test.
        metric: &'static str,
        /// Which array.
        what: &'static str,
        /// The number of rows it must match.
        expected: usize,
        /// Its length.
        got: usize,
    },
    /// A NaN or infinite input value.
    #[error("{metric}: non-finite value in the {set} set at row {row}, column {col}")]
    NonFinite {
        /// The test.
        metric: &'static str,
        /// Which set.
        set: &'static str,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
    },
    /// A C_T cell holds no training or no test samples, so its Z_U is undefined
    /// (data-copying's `Zu_cells` raises the same error).
    #[error("{metric}: cell {cell} has no {set} samples; use fewer cells")]
    EmptyCell {
        /// The test.
        metric: &'static str,
        /// The cell label.
        cell: usize,
        /// The set missing from it ("train" or "test").
        set: &'static str,
    },
    /// A parameter outside its valid range.
    #[error("{metric}: invalid parameter: {detail}")]
    InvalidParameter {
        /// The test.
        metric: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The computation gave a non-finite or undefined result (reported, never
    /// returned).
    #[error("{metric}: numerical failure: {detail}")]
    Numerical {
        /// The test.
        metric: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// Checks `x` has at least `needed` rows, at least one column and only finite
/// values.
pub(crate) fn check_set(
    metric: &'static str,
    set: &'static str,
    x: ndarray::ArrayView2<'_, f32>,
    needed: usize,
) -> Result<(), MemorizationError> {
    if x.nrows() < needed {
        return Err(MemorizationError::TooFewSamples {
            metric,
            set,
            needed,
            got: x.nrows(),
        });
    }
    if x.ncols() == 0 {
        return Err(MemorizationError::InvalidParameter {
            metric,
            detail: format!("the {set} set has zero feature dimensions"),
        });
    }
    for ((row, col), v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(MemorizationError::NonFinite {
                metric,
                set,
                row,
                col,
            });
        }
    }
    Ok(())
}

/// [`check_set`], then `x` widened to float64 (exact).
pub(crate) fn to_f64_checked(
    metric: &'static str,
    set: &'static str,
    x: ndarray::ArrayView2<'_, f32>,
    needed: usize,
) -> Result<ndarray::Array2<f64>, MemorizationError> {
    check_set(metric, set, x, needed)?;
    Ok(x.mapv(f64::from))
}

/// Checks that `set` has the train set's dimension `expected`.
pub(crate) fn check_dim(
    metric: &'static str,
    set: &'static str,
    expected: usize,
    got: usize,
) -> Result<(), MemorizationError> {
    if expected != got {
        return Err(MemorizationError::DimensionMismatch {
            metric,
            set,
            expected,
            got,
        });
    }
    Ok(())
}

/// Turns a non-finite result into [`MemorizationError::Numerical`].
pub(crate) fn finite(metric: &'static str, what: &str, v: f64) -> Result<f64, MemorizationError> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(MemorizationError::Numerical {
            metric,
            detail: format!("{what} is not finite ({v})"),
        })
    }
}

impl From<MemorizationError> for gen_metrics_metric::MetricError {
    /// The shared variants map one to one; the memorization-only ones
    /// (an empty C_T cell) keep their message.
    fn from(e: MemorizationError) -> Self {
        use gen_metrics_metric::MetricError as M;
        match e {
            MemorizationError::Linalg(l) => M::Linalg(l),
            MemorizationError::TooFewSamples {
                metric,
                set,
                needed,
                got,
            } => M::TooFewSamples {
                metric,
                set,
                needed,
                got,
            },
            MemorizationError::LengthMismatch {
                metric,
                what,
                expected,
                got,
            } => M::LengthMismatch {
                metric,
                what,
                expected,
                got,
            },
            MemorizationError::NonFinite {
                metric,
                set,
                row,
                col,
            } => M::NonFinite {
                metric,
                set,
                row,
                col,
            },
            MemorizationError::InvalidParameter { metric, detail } => {
                M::InvalidParameter { metric, detail }
            }
            MemorizationError::Numerical { metric, detail } => M::Numerical { metric, detail },
            other @ (MemorizationError::DimensionMismatch { .. }
            | MemorizationError::EmptyCell { .. }) => M::Failed {
                metric: other.metric(),
                detail: other.to_string(),
            },
        }
    }
}

impl MemorizationError {
    /// The test that reported the error.
    pub fn metric(&self) -> &'static str {
        match self {
            MemorizationError::Linalg(_) => "memorization",
            MemorizationError::TooFewSamples { metric, .. }
            | MemorizationError::DimensionMismatch { metric, .. }
            | MemorizationError::LengthMismatch { metric, .. }
            | MemorizationError::NonFinite { metric, .. }
            | MemorizationError::EmptyCell { metric, .. }
            | MemorizationError::InvalidParameter { metric, .. }
            | MemorizationError::Numerical { metric, .. } => metric,
        }
    }
}
