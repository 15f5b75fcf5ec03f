//! The one error type of `gen-metrics-cas`.
//!
//! Bad input (mismatched lengths or dimensions, labels out of range, a class
//! without training samples, NaN/Inf features, bad parameters) and numerical
//! failure are reported here; nothing in the crate panics or returns a NaN.

use thiserror::Error;

/// What can go wrong while fitting the classifier or scoring.
#[derive(Debug, Error)]
pub enum CasError {
    /// Features and their labels have different lengths.
    #[error("{what}: {left} feature rows but {right} labels (one label per row)")]
    LengthMismatch {
        /// Which inputs.
        what: &'static str,
        /// Feature rows.
        left: usize,
        /// Labels.
        right: usize,
    },

    /// Feature sets with different dimensions.
    #[error("{what}: feature dimension mismatch ({left} vs {right})")]
    DimensionMismatch {
        /// Which inputs.
        what: &'static str,
        /// First dimension.
        left: usize,
        /// Second dimension.
        right: usize,
    },

    /// A label `>= n_classes`.
    #[error("{what}: label {label} at index {index} is out of range (n_classes = {n_classes})")]
    LabelOutOfRange {
        /// Which label array.
        what: &'static str,
        /// Position of the first bad label.
        index: usize,
        /// The label.
        label: usize,
        /// Number of classes.
        n_classes: usize,
    },

    /// A class with no training samples (the classifier cannot learn it).
    #[error("{what}: class {class} has no training samples")]
    EmptyClass {
        /// Which training set.
        what: &'static str,
        /// The empty class.
        class: usize,
    },

    /// Too few samples, classes or dimensions.
    #[error("{what}: needs at least {min}, got {got}")]
    TooFewSamples {
        /// What is counted.
        what: &'static str,
        /// Minimum.
        min: usize,
        /// Supplied.
        got: usize,
    },

    /// A NaN or infinite feature.
    #[error("{what}: non-finite value {value} at flat index {index}")]
    NonFinite {
        /// Which input.
        what: &'static str,
        /// Flat (row-major) index of the first bad value.
        index: usize,
        /// The value.
        value: f64,
    },

    /// A parameter outside its valid range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },

    /// The optimisation produced a non-finite loss or gradient.
    #[error("{what}: numerical failure ({reason})")]
    Numerical {
        /// Which computation.
        what: &'static str,
        /// Details.
        reason: String,
    },
}
