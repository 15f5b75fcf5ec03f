//! The one error type of the file-format crate. Every variant names the file.

use std::path::PathBuf;

/// Why a file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IoError {
    /// The operating system refused (missing file, permissions, disk full).
    #[error("{path}: {error}")]
    Os {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not also a `source`).
        error: std::io::Error,
    },
    /// The file is not a readable `.npy` (bad magic, bad header, truncated data,
    /// extra bytes, unsupported dtype).
    #[error("{path}: not a valid .npy array{member}: {detail}", member = member_suffix(.member))]
    MalformedNpy {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// What is wrong.
        detail: String,
    },
    /// The file is not a readable `.npz` (zip) archive.
    #[error("{path}: not a valid .npz archive: {detail}")]
    MalformedNpz {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// An array has a dtype this reader does not take.
    #[error("{path}{member}: dtype {found} is not supported here (expected {expected})", member = member_suffix(.member))]
    WrongDtype {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// The dtype found.
        found: String,
        /// The dtypes accepted.
        expected: &'static str,
    },
    /// An array has the wrong number of dimensions or an inconsistent shape.
    #[error("{path}{member}: shape {found:?} does not fit: {expected}", member = member_suffix(.member))]
    WrongShape {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// The shape found.
        found: Vec<usize>,
        /// What was expected.
        expected: String,
    },
    /// A required member is missing from an `.npz` archive.
    #[error("{path}: member '{member}' is missing (found: {found})")]
    MissingMember {
        /// The file.
        path: PathBuf,
        /// The member looked for.
        member: String,
        /// The members present, comma separated.
        found: String,
    },
    /// A file of a known kind (it has some of the kind's members) lacks one
    /// of the others: a statistics `.npz` with `mu` but no `sigma`, an
    /// accumulator file without `comoment`. Unlike [`IoError::MissingMember`]
    /// (the file is not of the kind asked for at all, so a caller may try
    /// another reader), this is a damaged file to report as it is.
    #[error("{path}: {kind} is missing member '{member}' (found: {found}); it needs {needs}")]
    IncompleteFile {
        /// The file.
        path: PathBuf,
        /// What the file is, by the members it has ("statistics file (mu,
        /// sigma)", ...).
        kind: &'static str,
        /// The first required member that is missing.
        member: String,
        /// The members present, comma separated.
        found: String,
        /// Every required member, comma separated.
        needs: &'static str,
    },
    /// A finite float64 value too large for float32, the precision features
    /// are read in (converting it would give infinity).
    #[error(
        "{path}{member}: value {value:e} at {at} overflows float32 (largest finite magnitude {max:e}); features are read as float32, rescale them",
        member = member_suffix(.member),
        at = position(*.index, *.columns),
        max = f32::MAX
    )]
    OverflowsFloat32 {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// Flat (C-order) index of the first offending value.
        index: usize,
        /// Columns of the array, to name the row and column.
        columns: usize,
        /// The value.
        value: f64,
    },
    /// A value the file's kind does not allow (a negative class label).
    #[error("{path}{member}: {detail} at {at}", member = member_suffix(.member), at = position(*.index, *.columns))]
    InvalidValue {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// Flat (C-order) index of the first offending value.
        index: usize,
        /// Columns of the array (1 for a vector).
        columns: usize,
        /// What is wrong with it.
        detail: String,
    },
    /// A NaN or infinite value.
    #[error("{path}{member}: non-finite value (NaN or infinity) at {at}", member = member_suffix(.member), at = position(*.index, *.columns))]
    NonFinite {
        /// The file.
        path: PathBuf,
        /// The member of an `.npz` archive, if any.
        member: Option<String>,
        /// Flat (C-order) index of the first offending value.
        index: usize,
        /// Columns of the array (1 for a vector), to name the row and
        /// column.
        columns: usize,
    },
    /// The arrays are well-formed but do not describe a valid state (an
    /// accumulator file with an asymmetric co-moment, say).
    #[error("{path}: {error}")]
    InvalidContent {
        /// The file.
        path: PathBuf,
        /// What the validating crate said (shown in the message, so not also a
        /// `source`).
        error: gen_metrics_linalg::LinalgError,
    },
    /// Refusing to write: the destination exists and overwriting was not asked for.
    #[error("{path}: already exists (refusing to overwrite)")]
    WouldOverwrite {
        /// The file.
        path: PathBuf,
    },
    /// Refusing to write: the destination exists and is read-only (or not
    /// writable by this process), so replacing it, which an atomic rename
    /// could do silently, would destroy a file its owner protected; as the
    /// shell's `>` refuses.
    #[error(
        "{path}: exists and is not writable (read-only); refusing to replace it: make it writable or choose another output"
    )]
    NotWritable {
        /// The file.
        path: PathBuf,
    },
}

impl IoError {
    /// Member `member` of `path` has shape `found` where `[d, d]` was needed
    /// to match the vector member `vector` of length `d`.
    pub(crate) fn not_square(
        path: &std::path::Path,
        member: &str,
        found: &[usize],
        vector: &str,
        d: usize,
    ) -> IoError {
        IoError::WrongShape {
            path: path.to_owned(),
            member: Some(member.to_owned()),
            found: found.to_vec(),
            expected: format!("[{d}, {d}] to match '{vector}' of length {d}"),
        }
    }
}

/// "row 5, column 3" of a flat C-order index in an array of `columns`
/// columns; "index 7" in a vector.
fn position(index: usize, columns: usize) -> String {
    if columns > 1 {
        format!("row {}, column {}", index / columns, index % columns)
    } else {
        format!("index {index}")
    }
}

fn member_suffix(member: &Option<String>) -> String {
    member
        .as_ref()
        .map(|m| format!(" (member '{m}')"))
        .unwrap_or_default()
}
