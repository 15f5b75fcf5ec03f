//! The one error type of the features crate.
//!
//! Every failure between a file on disk and a feature vector is a
//! [`FeatureError`]: a missing or corrupt artifact, a refused checksum, a
//! package client that is not installed, an ONNX Runtime failure, a batch of
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
    /// A file's SHA-256 differs from the pinned value: it is refused, never used.
    #[error(
        "checksum mismatch for {what} ({}): expected sha256 {expected}, got {actual}; the file was refused (delete it if it is a stale download and try again)",
        path.display()
    )]
    ChecksumMismatch {
        /// The artifact (package and member).
        what: String,
        /// The file that was checked.
        path: PathBuf,
        /// The pinned SHA-256 (hex).
        expected: String,
        /// The SHA-256 found (hex).
        actual: String,
    },
    /// An artifact is not cached and cannot be fetched (offline mode, no
    /// package client, unsupported platform). The message says what to install
    /// or which file to pass.
    #[error("{artifact} is not available: {help}")]
    ArtifactUnavailable {
        /// The artifact (`name==version`).
        artifact: String,
        /// What the user can do.
        help: String,
    },
    /// The package client ran but failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    PackageClient {
        /// The command line that was run.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of its standard error.
        stderr: String,
    },
    /// A wheel (zip archive) could not be read, or lacks a member.
    #[error("{}: {detail}", path.display())]
    Archive {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
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
    /// A malformed `.npy` file (feature cache or output).
    #[error("{}: malformed .npy: {detail}", path.display())]
    Npy {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// JSON (encoder specification, cache metadata) that cannot be parsed.
    #[error("{}: {source}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },
    /// Two evaluators (or accumulators) that cannot be combined.
    #[error("cannot merge: {0}")]
    Merge(String),
    /// A statistics kernel failed (too few samples, dimension mismatch, ...).
    #[error(transparent)]
    Linalg(#[from] gen_metrics_linalg::LinalgError),
    /// The TorchScript archive could not be read or converted to ONNX (the
    /// cause is shown in the message, so it is not also a `source`).
    #[error("FID Inception conversion: {0}")]
    TorchScript(crate::torchscript::TorchScriptError),
    /// An image file could not be decoded (the error names the file).
    #[error(transparent)]
    Decode(#[from] crate::decode::DecodeError),
    /// An image could not be resized or normalised.
    #[error("preprocessing: {0}")]
    Resize(#[from] crate::resize::ResizeError),
    /// An image source (folder, zip, `.npy`/`.npz`) could not be read.
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
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

impl From<crate::torchscript::TorchScriptError> for FeatureError {
    fn from(e: crate::torchscript::TorchScriptError) -> Self {
        FeatureError::TorchScript(e)
    }
}

/// `Result` with a [`FeatureError`].
pub type Result<T, E = FeatureError> = std::result::Result<T, E>;
