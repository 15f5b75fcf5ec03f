//! The one error type of the metric crates (distribution, memorization,
//! ranking, CAS): every way a metric can refuse its input or fail.

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
    /// A per-sample array (labels, log-likelihoods, cell labels) does not have
    /// one entry per row of the set it belongs to.
    #[error("{metric}: {what} has {got} entries, expected {expected}")]
    LengthMismatch {
        /// The metric.
        metric: &'static str,
        /// Which array.
        what: &'static str,
        /// The number of rows it must match.
        expected: usize,
        /// Its length.
        got: usize,
    },
    /// The metric needs an input that was not given (checked before any work).
    #[error("{metric} needs {input}")]
    MissingInput {
        /// The metric.
        metric: &'static str,
        /// What is missing.
        input: crate::Input,
    },
    /// The metric needs the rows of a set, but only its Gaussian statistics
    /// were given (a statistics `.npz`): only FID-type metrics work from those.
    #[error(
        "{metric} needs the {set} features as rows, but only statistics (mean, covariance) were given"
    )]
    NeedsRows {
        /// The metric.
        metric: &'static str,
        /// Which set.
        set: &'static str,
    },
    /// A failure reported by a metric crate with its own error type
    /// (memorization, ranking, CAS), kept as its message.
    #[error("{metric}: {detail}")]
    Failed {
        /// The metric.
        metric: &'static str,
        /// The crate's message.
        detail: String,
    },
}
