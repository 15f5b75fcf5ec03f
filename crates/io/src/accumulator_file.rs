//! Files holding the state of a [`GaussianAccumulator`], so that statistics
//! accumulated in several processes (the ranks of a distributed evaluation,
//! the chunks of a long job, a checkpoint) can be merged later.
//!
//! The file is an uncompressed `.npz` that numpy reads as it is:
//!
//! | member     | dtype | shape    | meaning                                   |
//! |------------|-------|----------|-------------------------------------------|
//! | `n`        | `<i8` | `[]`     | rows accumulated                          |
//! | `mean`     | `<f8` | `[D]`    | `μ = (1/n) Σ x_i`                         |
//! | `comoment` | `<f8` | `[D, D]` | `M = Σ (x_i − μ)(x_i − μ)ᵀ`, symmetric    |
//!
//! The covariance is `M / (n − ddof)`; keeping `M` and `n` rather than the
//! covariance is what makes the state mergeable exactly (Chan, Golub &
//! LeVeque 1979; see [`GaussianAccumulator::merge`]). Only float64 is
//! accepted for `mean` and `comoment`: a float32 co-moment would silently
//! lose the precision that merging relies on.

use std::path::Path;

use gen_metrics_linalg::{AccumulatorParts, GaussianAccumulator};
use ndarray::{Array0, Array1, Array2, Ix1};

use crate::IoError;
use crate::npy::{NpyHeader, decode, decode_dyn};
use crate::npz::{NpzArchive, check_complete, write_npz};

/// Writes the state of `acc` to `path` (format in the [module docs](self)),
/// atomically. With `overwrite == false` an existing file is an error and is
/// left untouched; an existing read-only file is never replaced.
///
/// # Errors
/// [`IoError::WouldOverwrite`], [`IoError::NotWritable`], or [`IoError::Os`].
pub fn write_accumulator(
    path: impl AsRef<Path>,
    acc: &GaussianAccumulator,
    overwrite: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let AccumulatorParts { n, mean, comoment } = acc.to_parts();
    // `usize` rows always fit `i64` on the platforms Rust targets with 64-bit
    // address spaces; refuse rather than wrap anywhere else.
    let n = i64::try_from(n).map_err(|_| IoError::Os {
        path: path.to_owned(),
        error: std::io::Error::other(format!("row count {n} does not fit int64")),
    })?;
    write_npz(path, overwrite, |npz| {
        npz.add_array("n", &Array0::from_elem((), n))?;
        npz.add_array("mean", &mean)?;
        npz.add_array("comoment", &comoment)
    })
}

/// Reads an accumulator file written by [`write_accumulator`] (or by numpy,
/// `np.savez(path, n=np.int64(n), mean=mu, comoment=M)`) and rebuilds the
/// accumulator, validated by [`GaussianAccumulator::from_parts`].
///
/// # Errors
/// [`IoError`] naming the file and member: a damaged archive,
/// [`IoError::MissingMember`] when none of `n`, `mean`, `comoment` is present
/// (not an accumulator file), [`IoError::IncompleteFile`] when only some are,
/// `n` not a non-negative integer scalar, `mean`/`comoment` not float64 or of
/// inconsistent shapes, and [`IoError::InvalidContent`] for arrays that are
/// no accumulator state (NaN/Inf, an asymmetric or negative-diagonal
/// co-moment, data with `n = 0`).
pub fn read_accumulator(path: impl AsRef<Path>) -> Result<GaussianAccumulator, IoError> {
    let path = path.as_ref();
    let mut npz = NpzArchive::open(path)?;
    check_complete(
        &npz,
        "accumulator file (n, mean, comoment)",
        &["n", "mean", "comoment"],
        "n, mean and comoment",
    )?;
    let n = row_count(&npz.required("n")?, path)?;
    let mean = float64(&npz.required("mean")?, path, "mean")?;
    let shape = mean.shape().to_vec();
    let mean: Array1<f64> = mean
        .into_dimensionality::<Ix1>()
        .map_err(|_| IoError::WrongShape {
            path: path.to_owned(),
            member: Some("mean".into()),
            found: shape,
            expected: "a vector [D]".into(),
        })?;
    let comoment_bytes = npz.required("comoment")?;
    check_float64(&comoment_bytes, path, "comoment")?;
    let comoment: Array2<f64> = decode(&comoment_bytes, path, Some("comoment"))?;
    let d = mean.len();
    if comoment.dim() != (d, d) {
        return Err(IoError::not_square(
            path,
            "comoment",
            comoment.shape(),
            "mean",
            d,
        ));
    }
    GaussianAccumulator::from_parts(AccumulatorParts { n, mean, comoment }).map_err(|error| {
        IoError::InvalidContent {
            path: path.to_owned(),
            error,
        }
    })
}

/// The `n` member: a non-negative int64/uint64 scalar (shape `[]` or `[1]`).
fn row_count(bytes: &[u8], path: &Path) -> Result<usize, IoError> {
    let member = Some("n");
    let wrong_shape = |found: Vec<usize>| IoError::WrongShape {
        path: path.to_owned(),
        member: member.map(str::to_owned),
        found,
        expected: "a scalar (shape [] or [1])".into(),
    };
    let descr = NpyHeader::parse(bytes, path, member)?.descr;
    let (shape, values): (Vec<usize>, Vec<i128>) = match descr.as_str() {
        "<i8" => {
            let a = decode_dyn::<i64>(bytes, path, member)?;
            (
                a.shape().to_vec(),
                a.iter().map(|&v| i128::from(v)).collect(),
            )
        }
        "<u8" => {
            let a = decode_dyn::<u64>(bytes, path, member)?;
            (
                a.shape().to_vec(),
                a.iter().map(|&v| i128::from(v)).collect(),
            )
        }
        other => {
            return Err(IoError::WrongDtype {
                path: path.to_owned(),
                member: member.map(str::to_owned),
                found: other.to_owned(),
                expected: "<i8 (int64) or <u8 (uint64)",
            });
        }
    };
    let (true, [value]) = (shape.len() <= 1, &values[..]) else {
        return Err(wrong_shape(shape));
    };
    usize::try_from(*value).map_err(|_| IoError::WrongShape {
        path: path.to_owned(),
        member: member.map(str::to_owned),
        found: shape,
        expected: format!("a non-negative row count (found {value})"),
    })
}

fn check_float64(bytes: &[u8], path: &Path, name: &str) -> Result<(), IoError> {
    let descr = NpyHeader::parse(bytes, path, Some(name))?.descr;
    if descr == "<f8" {
        Ok(())
    } else {
        Err(IoError::WrongDtype {
            path: path.to_owned(),
            member: Some(name.to_owned()),
            found: descr,
            expected: "<f8 (float64): an accumulator's state must not be rounded",
        })
    }
}

fn float64(bytes: &[u8], path: &Path, name: &str) -> Result<ndarray::ArrayD<f64>, IoError> {
    check_float64(bytes, path, name)?;
    decode_dyn::<f64>(bytes, path, Some(name))
}
