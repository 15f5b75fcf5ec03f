//! The one error type of the distribution-metrics crate.

use gen_metrics_linalg::LinalgError;

/// Why a metric could not be computed. Never a panic, never a NaN passed on.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum MetricError {
    /// A kernel rejected its input (shape, values, parameters).
    #[error(transparent)]
    Linalg(#[from] LinalgError),
    /// A set is empty or smaller than the metric needs.
    #[error("{metric}: the {set} set needs at least {needed} samples, got {got}")]
    TooFewSamples {
        /// The metric.
        metric: &'static str,
        /// Which set ("real", "fake", "logits", ...).
        set: &'static str,
        /// The minimum.
        needed: usize,
        /// What was given.
        got: usize,
    },
    /// The real and fake features have different dimensions.
    #[error("{metric}: real features have {real} dimensions but fake features have {fake}")]
    DimensionMismatch {
        /// The metric.
        metric: &'static str,
        /// Real dimension.
        real: usize,
        /// Fake dimension.
        fake: usize,
    },
    /// A NaN or infinite input value.
    #[error("{metric}: non-finite value in the {set} set at row {row}, column {col}")]
    NonFinite {
        /// The metric.
        metric: &'static str,
        /// Which set.
        set: &'static str,
        /// Row.
        row: usize,
        /// Column.
        col: usize,
    },
    /// A parameter outside its valid range.
    #[error("{metric}: invalid parameter: {detail}")]
    InvalidParameter {
        /// The metric.
        metric: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// The computation gave a non-finite result (reported, never returned).
    #[error("{metric}: numerical failure: {detail}")]
    Numerical {
        /// The metric.
        metric: &'static str,
        /// What went wrong.
        detail: String,
    },
}
