//! The one error type of the provisioning crate.

use std::path::PathBuf;

/// Everything that can go wrong while fetching, verifying and caching an
/// artifact. Each variant names the file or the artifact involved and, where
/// the user can do something about it, says what.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArtifactError {
    /// An operating-system error on a named file or folder.
    #[error("{}: {error}", path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The underlying error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: std::io::Error,
    },
    /// An atomic write of a cached file failed.
    #[error(transparent)]
    File(#[from] gen_metrics_io::IoError),
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
    /// JSON (the sidecar of a converted model) that cannot be written.
    #[error("{}: {error}", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// The serialiser's error (shown in the message, so not also a
        /// `source`).
        error: serde_json::Error,
    },
    /// A checkpoint could not be read or converted to ONNX (the cause is
    /// shown in the message, so it is not also a `source`: a chain printer
    /// would repeat it; `From` is written out below for the same reason).
    #[error("model conversion: {0}")]
    Convert(gen_metrics_convert::TorchScriptError),
    /// A checkpoint holds another architecture than its entry's.
    #[error("{} is not a {id} checkpoint: {detail}", path.display())]
    WrongCheckpoint {
        /// The checkpoint entry (`dinov2-vitl14`).
        id: String,
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
}

impl From<gen_metrics_convert::TorchScriptError> for ArtifactError {
    fn from(e: gen_metrics_convert::TorchScriptError) -> Self {
        ArtifactError::Convert(e)
    }
}

impl ArtifactError {
    /// An [`ArtifactError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        ArtifactError::Io {
            path: path.into(),
            error,
        }
    }
}

/// `Result` with an [`ArtifactError`].
pub type Result<T, E = ArtifactError> = std::result::Result<T, E>;
