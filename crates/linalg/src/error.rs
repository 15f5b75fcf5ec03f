//! The one error type of the kernels crate.

/// Everything that can go wrong in a kernel: always about the shape or the
/// values of the input, never a bug to `unwrap` away.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum LinalgError {
    /// A matrix had no rows (or too few for the estimate asked for).
    #[error("{what}: need at least {needed} rows, got {got}")]
    TooFewRows {
        /// What was being computed.
        what: &'static str,
        /// The minimum number of rows.
        needed: usize,
        /// The number of rows given.
        got: usize,
    },
    /// Two inputs that must share a dimension do not.
    #[error("{what}: dimension mismatch ({left} vs {right})")]
    DimensionMismatch {
        /// What was being computed.
        what: &'static str,
        /// The first dimension.
        left: usize,
        /// The second dimension.
        right: usize,
    },
    /// A NaN or infinite value in the input.
    #[error("{what}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// What was being computed.
        what: &'static str,
        /// Row of the first offending value.
        row: usize,
        /// Column of the first offending value.
        col: usize,
    },
    /// A parameter outside its valid range (k >= N, zero block size, ...).
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// A matrix that must be a covariance has an eigenvalue more negative
    /// than rounding can explain (see
    /// [`crate::stats::check_positive_semidefinite`]).
    #[error(
        "{what}: not a valid covariance (not positive semi-definite): smallest eigenvalue {min_eigenvalue:e} is below -{tolerance:e} x the largest ({max_eigenvalue:e}), more negative than rounding can make it"
    )]
    NotPositiveSemidefinite {
        /// What was checked.
        what: &'static str,
        /// The smallest eigenvalue.
        min_eigenvalue: f64,
        /// The largest eigenvalue.
        max_eigenvalue: f64,
        /// The relative tolerance applied ([`crate::stats::psd_tolerance`]).
        tolerance: f64,
    },
    /// A decomposition did not converge or the result is not finite.
    #[error("numerical failure in {what}: {detail}")]
    Numerical {
        /// What was being computed.
        what: &'static str,
        /// What went wrong.
        detail: String,
    },
}
