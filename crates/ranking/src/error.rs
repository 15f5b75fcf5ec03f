//! The one error type of `gen-metrics-ranking`.
//!
//! Every function of this crate returns `Result<_, RankingError>` on bad input
//! (mismatched lengths, too few samples, NaN/Inf, constant inputs for which a
//! correlation is undefined, singular covariances) instead of panicking or
//! returning a NaN.

use thiserror::Error;

/// What can go wrong in a divergence, rank-correlation, bootstrap or
/// normality computation.
#[derive(Debug, Error)]
pub enum RankingError {
    /// A dense kernel of `gen-metrics-linalg` refused its input.
    #[error(transparent)]
    Linalg(#[from] gen_metrics_linalg::LinalgError),

    /// Two inputs that must be paired element by element have different lengths.
    #[error("{what}: length mismatch ({left} vs {right})")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Length of the first input.
        left: usize,
        /// Length of the second input.
        right: usize,
    },

    /// Two sample matrices that must share a feature dimension do not.
    #[error("{what}: dimension mismatch ({left} vs {right})")]
    DimensionMismatch {
        /// Which inputs.
        what: &'static str,
        /// Dimension of the first input.
        left: usize,
        /// Dimension of the second input.
        right: usize,
    },

    /// Fewer samples than the statistic needs.
    #[error("{what}: needs at least {min} samples, got {got}")]
    TooFewSamples {
        /// Which statistic.
        what: &'static str,
        /// Minimum number of samples.
        min: usize,
        /// Number supplied.
        got: usize,
    },

    /// A NaN or infinite value where only finite values are meaningful.
    #[error("{what}: non-finite value {value} at index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
        /// The offending value.
        value: f64,
    },

    /// A log-likelihood that is NaN or `+inf`, or a `-inf` log-density of a
    /// point under the distribution it was sampled from (impossible for a
    /// sample of that distribution).
    #[error("{what}: invalid log-likelihood {value} at index {index}: {reason}")]
    InvalidLogLikelihood {
        /// Which log-likelihood array.
        what: &'static str,
        /// Index of the first offending sample.
        index: usize,
        /// The offending value.
        value: f64,
        /// Why it is invalid.
        reason: &'static str,
    },

    /// An input is constant (every pair tied), so the correlation is undefined.
    #[error("{what}: input is constant; the statistic is undefined")]
    ConstantInput {
        /// Which statistic / input.
        what: &'static str,
    },

    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },

    /// A covariance matrix that is not positive definite (N <= D, constant or
    /// collinear features).
    #[error("{what}: covariance is not positive definite ({reason})")]
    SingularCovariance {
        /// Which computation.
        what: &'static str,
        /// Details.
        reason: String,
    },

    /// The user-supplied metric failed on one bootstrap resample (or on the
    /// full data, `resample == None`).
    #[error("metric `{metric}` failed on {}: {error}", match .resample { Some(b) => format!("bootstrap resample {b}"), None => "the full data".to_string() })]
    Metric {
        /// Name of the metric (or `"metric"` when unnamed).
        metric: String,
        /// Which resample (`None`: the full-data evaluation; jackknife
        /// evaluations are reported as `None` too).
        resample: Option<usize>,
        /// The metric's own error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    /// The user-supplied metric returned a NaN or infinite value.
    #[error("metric `{metric}` returned a non-finite value {value}")]
    MetricNonFinite {
        /// Name of the metric.
        metric: String,
        /// The value it returned.
        value: f64,
    },

    /// A result that should be finite came out NaN/Inf (overflow, cancellation).
    #[error("{what}: numerical failure ({reason})")]
    Numerical {
        /// Which computation.
        what: &'static str,
        /// Details.
        reason: String,
    },
}

/// Checks that every value of `xs` is finite.
pub(crate) fn check_finite(what: &'static str, xs: &[f64]) -> Result<(), RankingError> {
    match xs.iter().position(|v| !v.is_finite()) {
        Some(index) => Err(RankingError::NonFinite {
            what,
            index,
            value: xs[index],
        }),
        None => Ok(()),
    }
}
