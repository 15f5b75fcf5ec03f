//! The one error type of the features crate.
//!
//! Every failure between a file on disk and a feature vector is a
//! [`FeatureError`]: an artifact that cannot be provisioned (wrapping the
//! error of `gen-metrics-artifacts`), an ONNX Runtime failure, a batch of
//! the wrong shape. Each variant names the file or the artifact involved and,
//! where the user can do something about it, says what.

use std::path::PathBuf;

/// Everything that can go wrong while provisioning artifacts, running an
/// encoder, caching features or accumulating statistics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeatureError {
    /// An operating-system error on a named file or folder.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (shown in the message, so not also a
        /// `source`: a chain printer such as anyhow's `{:#}` would repeat it,
        /// "x: Permission denied (os error 13): Permission denied (os error 13)").
        error: std::io::Error,
    },
    /// An artifact (ONNX Runtime, the FID Inception weights) could not be
    /// provisioned: not cached and not fetchable, a refused checksum, a failed
    /// conversion. The message says what to install or which file to pass.
    #[error(transparent)]
    Artifact(#[from] gen_metrics_artifacts::ArtifactError),
    /// A feature file could not be read or written (the codec of
    /// `gen-metrics-io` names the file).
    #[error(transparent)]
    File(#[from] gen_metrics_io::IoError),
    /// The ONNX Runtime shared library could not be loaded.
    #[error("cannot load the ONNX Runtime library {}: {detail}", path.display())]
    RuntimeLoad {
        /// The library that was tried.
        path: PathBuf,
        /// The loader's message.
        detail: String,
    },
    /// ONNX Runtime reported an error (session creation, a run).
    #[error("ONNX Runtime: {context}: {message}")]
    Runtime {
        /// What was being done.
        context: String,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The model does not have the input or output an encoder expects.
    #[error("model {model}: {detail}")]
    Model {
        /// The model (path or encoder id).
        model: String,
        /// What is wrong.
        detail: String,
    },
    /// A batch or array of the wrong shape, an empty input, a bad value.
    #[error("{what}: {detail}")]
    InvalidInput {
        /// What was being processed.
        what: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A NaN or infinite value came out of an encoder.
    #[error("{what}: non-finite value at row {row}, column {col}")]
    NonFinite {
        /// What produced it.
        what: String,
        /// Row of the first offending value.
        row: usize,
        /// Column of the first offending value.
        col: usize,
    },
    /// An encoder name or an encoder specification file that cannot be used.
    #[error("encoder specification: {0}")]
    EncoderSpec(String),
    /// JSON (encoder specification, cache metadata) that cannot be parsed.
    #[error("{}: {error}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: serde_json::Error,
    },
    /// Two evaluators (or accumulators) that cannot be combined.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A statistics kernel failed (too few samples, dimension mismatch, ...).
    #[error(transparent)]
    Linalg(#[from] gen_metrics_linalg::LinalgError),
    /// An image file could not be decoded (the error names the file).
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    /// An image could not be resized or normalised (the cause is shown in
    /// the message, so it is not also a `source`; `From` is written out
    /// below).
    #[error("preprocessing: {0}")]
    Resize(crate::resize::ResizeError),
    /// An image source (folder, zip, `.npy`/`.npz`) could not be read.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
}

impl From<crate::resize::ResizeError> for FeatureError {
    fn from(e: crate::resize::ResizeError) -> Self {
        FeatureError::Resize(e)
    }
}

impl FeatureError {
    /// An [`FeatureError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        FeatureError::Io {
            path: path.into(),
            error,
        }
    }

    /// An [`FeatureError::Runtime`] from an ONNX Runtime error and what was being done.
    pub fn runtime(context: impl Into<String>, err: impl std::fmt::Display) -> Self {
        FeatureError::Runtime {
            context: context.into(),
            message: err.to_string(),
        }
    }

    /// An [`FeatureError::InvalidInput`].
    pub fn invalid(what: &'static str, detail: impl Into<String>) -> Self {
        FeatureError::InvalidInput {
            what,
            detail: detail.into(),
        }
    }
}

/// `Result` with a [`FeatureError`].
pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
