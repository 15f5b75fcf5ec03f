//! One-dimensional inputs: class labels and per-sample log-likelihoods.
//!
//! * Labels: a 1-D `.npy` of integers (`u8`/`u16`/`u32`/`u64`/`i8`/`i16`/`i32`/`i64`,
//!   none negative), or a text file with one integer per line.
//! * Log-likelihoods: a 1-D `.npy` of `float32`/`float64`. `-inf` is allowed
//!   (a sample the model gives zero density, which makes a KL infinite, as it
//!   should); NaN and `+inf` are errors.

use std::path::Path;

use ndarray::{Array1, ArrayD, Ix1};
use ndarray_npy::ReadableElement;

use crate::IoError;
use crate::npy::{NpyHeader, decode_dyn, read_file};

/// Reads class labels from a 1-D integer `.npy` or a text file (one per line).
///
/// # Errors
/// [`IoError`] naming the file: unreadable, malformed, a non-integer dtype,
/// another rank, a negative value, or a text line that is not an integer.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<usize>, IoError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    if !bytes.starts_with(b"\x93NUMPY") {
        return labels_from_text(&bytes, path);
    }
    let descr = NpyHeader::parse(&bytes, path, None)?.descr;
    let wide: Vec<i128> = match descr.trim_start_matches(['<', '|', '=']) {
        "u1" => ints::<u8>(&bytes, path)?,
        "u2" => ints::<u16>(&bytes, path)?,
        "u4" => ints::<u32>(&bytes, path)?,
        "u8" => ints::<u64>(&bytes, path)?,
        "i1" => ints::<i8>(&bytes, path)?,
        "i2" => ints::<i16>(&bytes, path)?,
        "i4" => ints::<i32>(&bytes, path)?,
        "i8" => ints::<i64>(&bytes, path)?,
        _ => {
            return Err(IoError::WrongDtype {
                path: path.to_owned(),
                member: None,
                found: descr,
                expected: "an integer dtype (u1..u8, i1..i8)",
            });
        }
    };
    wide.into_iter()
        .enumerate()
        .map(|(index, v)| {
            usize::try_from(v).map_err(|_| IoError::InvalidValue {
                path: path.to_owned(),
                member: None,
                index,
                columns: 1,
                detail: format!("negative class label {v} (labels are 0, 1, 2, ...)"),
            })
        })
        .collect()
}

fn ints<T: ReadableElement + Copy + Into<i128>>(
    bytes: &[u8],
    path: &Path,
) -> Result<Vec<i128>, IoError> {
    Ok(vector::<T>(decode_dyn::<T>(bytes, path, None)?, path)?
        .iter()
        .map(|&v| v.into())
        .collect())
}

fn vector<T>(a: ArrayD<T>, path: &Path) -> Result<Array1<T>, IoError> {
    let shape = a.shape().to_vec();
    a.into_dimensionality::<Ix1>()
        .map_err(|_| IoError::WrongShape {
            path: path.to_owned(),
            member: None,
            found: shape,
            expected: "a 1-D array (one value per sample)".into(),
        })
}

fn labels_from_text(bytes: &[u8], path: &Path) -> Result<Vec<usize>, IoError> {
    let text = std::str::from_utf8(bytes).map_err(|_| IoError::MalformedNpy {
        path: path.to_owned(),
        member: None,
        detail: "neither an .npy file nor UTF-8 text with one label per line".into(),
    })?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            l.trim()
                .parse::<usize>()
                .map_err(|_| IoError::MalformedNpy {
                    path: path.to_owned(),
                    member: None,
                    detail: format!(
                        "line {}: '{}' is not a non-negative integer label",
                        i + 1,
                        l.trim()
                    ),
                })
        })
        .collect()
}

/// Reads per-sample log-likelihoods (1-D `float32`/`float64` `.npy`).
///
/// # Errors
/// [`IoError`] naming the file: unreadable, malformed, another dtype or rank,
/// NaN or `+inf`.
pub fn read_log_likelihoods(path: impl AsRef<Path>) -> Result<Array1<f64>, IoError> {
    let path = path.as_ref();
    let bytes = read_file(path)?;
    let descr = NpyHeader::parse(&bytes, path, None)?.descr;
    let v: Array1<f64> = match descr.as_str() {
        "<f8" => vector(decode_dyn::<f64>(&bytes, path, None)?, path)?,
        "<f4" => vector(decode_dyn::<f32>(&bytes, path, None)?, path)?.mapv(f64::from),
        other => {
            return Err(IoError::WrongDtype {
                path: path.to_owned(),
                member: None,
                found: other.to_owned(),
                expected: "<f4 (float32) or <f8 (float64)",
            });
        }
    };
    if let Some(index) = v.iter().position(|x| x.is_nan() || *x == f64::INFINITY) {
        return Err(IoError::NonFinite {
            path: path.to_owned(),
            member: None,
            index,
            columns: 1,
        });
    }
    Ok(v)
}
