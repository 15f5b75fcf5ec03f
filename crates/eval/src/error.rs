//! The one error type of the evaluation layer.

use std::path::PathBuf;

use gen_metrics_metric::MetricError;

/// Why an evaluation could not be run. Each variant says whether it is the
/// user's input ([`EvalError::is_input_error`]: the command line exits 2) or
/// the environment (exit 1).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// A metric name that is not in the registry.
    #[error("unknown metric '{name}'; known: {known}")]
    UnknownMetric {
        /// What was asked.
        name: String,
        /// The registry's names.
        known: String,
    },
    /// A selected metric needs an input that was not given.
    #[error("metric '{metric}' needs {input}{hint}")]
    MissingInput {
        /// The metric.
        metric: &'static str,
        /// The missing input.
        input: gen_metrics_metric::Input,
        /// How to give it (front-end specific, may be empty).
        hint: String,
    },
    /// Options that do not fit together.
    #[error("{0}")]
    Usage(String),
    /// A file or folder given as a set could not be used. Shown as
    /// `path: detail`, or as `detail` alone when it already begins with the
    /// path (an error of a lower layer that names its file: the path is
    /// printed once).
    #[error("{}", named(path, detail))]
    Source {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file format error (from `gen-metrics-io`).
    #[error(transparent)]
    Io(#[from] gen_metrics_io::IoError),
    /// Image decoding, the encoder or its runtime (from `gen-metrics-features`).
    #[cfg(feature = "images")]
    #[error(transparent)]
    Features(#[from] gen_metrics_features::FeatureError),
    /// Image sources need the `images` feature.
    #[error("{}: image folders and archives need gen-metrics-eval's `images` feature", path.display())]
    ImagesDisabled {
        /// The path.
        path: PathBuf,
    },
    /// A metric refused its input or failed.
    #[error("computing '{name}': {error}")]
    Metric {
        /// The metric.
        name: &'static str,
        /// Why (shown in the message, so not also a `source`: a chain
        /// printer would repeat it).
        error: MetricError,
    },
    /// A metric produced a non-finite value (a bug or degenerate input, never
    /// printed as a result).
    #[error(
        "metric '{name}' key '{key}' came out non-finite ({value}); this is degenerate input or a bug, not a result"
    )]
    NonFinite {
        /// The metric.
        name: &'static str,
        /// The key.
        key: String,
        /// The value.
        value: f64,
    },
    /// Interval resampling failed.
    #[error("intervals: {0}")]
    Interval(String),
    /// Writing the report.
    #[error("writing {}: {error}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why (shown in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// Rendering a plot.
    #[error("plot {name}: {detail}")]
    Plot {
        /// The plot.
        name: String,
        /// Why.
        detail: String,
    },
}

/// `path: detail`, or `detail` when it already begins with the path (then
/// `": "` or `" (member ...)"`).
fn named(path: &std::path::Path, detail: &str) -> String {
    let shown = path.display().to_string();
    let names_it = detail
        .strip_prefix(&shown)
        .is_some_and(|rest| rest.starts_with(": ") || rest.starts_with(" ("));
    if names_it {
        detail.to_owned()
    } else {
        format!("{shown}: {detail}")
    }
}

impl EvalError {
    /// Whether the error is about what the user gave (bad input or usage:
    /// exit code 2) rather than the environment (runtime library, artifacts,
    /// writing output: exit code 1).
    pub fn is_input_error(&self) -> bool {
        match self {
            EvalError::UnknownMetric { .. }
            | EvalError::MissingInput { .. }
            | EvalError::Usage(_)
            | EvalError::Source { .. }
            | EvalError::ImagesDisabled { .. }
            | EvalError::Metric { .. }
            | EvalError::NonFinite { .. }
            | EvalError::Interval(_) => true,
            EvalError::Io(_) => true,
            #[cfg(feature = "images")]
            EvalError::Features(e) => feature_error_is_input(e),
            EvalError::Write { .. } | EvalError::Plot { .. } => false,
        }
    }
}

/// Whether a feature-extraction error is about the user's input (exit 2)
/// rather than the runtime, an artifact or the machine (exit 1).
#[cfg(feature = "images")]
pub fn feature_error_is_input(e: &gen_metrics_features::FeatureError) -> bool {
    use gen_metrics_features::FeatureError as F;
    matches!(
        e,
        F::InvalidInput { .. }
            | F::NonFinite { .. }
            | F::EncoderSpec(_)
            | F::File(_)
            | F::Json { .. }
            | F::Merge(_)
            | F::Decode(_)
            | F::Resize(_)
            | F::Source(_)
    )
}
