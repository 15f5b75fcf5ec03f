//! Gaussian statistics files, as the field writes them.
//!
//! * **pytorch-fid / clean-fid** `.npz`: members `mu` (`[D]`) and `sigma`
//!   (`[D, D]`), the mean and covariance (ddof 1) of the Inception pool3
//!   features.
//! * **ADM reference batches** (Dhariwal & Nichol 2021, `evaluator.py`):
//!   `arr_0` (the uint8 images `[N, H, W, 3]`, not read here), `mu`, `sigma`
//!   and the spatial-feature statistics `mu_s`, `sigma_s`.
//!
//! Both members may be `float32` or `float64`; they are returned as `f64`.
//! Shapes are checked (`mu` is `[D]`, `sigma` is `[D, D]`, same `D`), and so
//! are finiteness, the symmetry of `sigma` (to 1e-6 relative, as float32
//! files round it) and that `sigma` is a covariance: positive semi-definite
//! up to rounding, `λ_min ≥ −tol · λ_max` with `tol = D · 2⁻²³`
//! ([`gen_metrics_linalg::psd_tolerance`], which derives it from float32
//! storage); a matrix with a more negative eigenvalue would give negative
//! "distances" and is refused with [`IoError::InvalidContent`].
//!
//! A file with `mu` but not `sigma` (or the reverse) is a damaged statistics
//! file, [`IoError::IncompleteFile`]; a file with neither is not a statistics
//! file, [`IoError::MissingMember`] (a caller may then try another reader,
//! e.g. [`crate::read_accumulator`] or an image-array reader).

use std::path::Path;

use gen_metrics_linalg::GaussianStats;
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Ix1};

use crate::IoError;
use crate::npy::{NpyHeader, decode, decode_dyn};
use crate::npz::{NpzArchive, check_complete, write_npz};

/// Which convention a statistics file follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsFormat {
    /// `mu`, `sigma` only (pytorch-fid, clean-fid).
    MuSigma,
    /// An ADM reference batch (`arr_0` and/or `mu_s`, `sigma_s` present).
    AdmReferenceBatch,
}

/// Mean and covariance read from a statistics file.
#[derive(Debug, Clone, PartialEq)]
pub struct StatisticsFile {
    /// Mean `mu`, `[D]`.
    pub mu: Array1<f64>,
    /// Covariance `sigma`, `[D, D]`.
    pub sigma: Array2<f64>,
    /// ADM's spatial statistics (`mu_s`, `sigma_s`), if present.
    pub spatial: Option<(Array1<f64>, Array2<f64>)>,
    /// The convention the file follows.
    pub format: StatsFormat,
}

impl StatisticsFile {
    /// The main (`mu`, `sigma`) statistics as [`GaussianStats`]. The files do
    /// not record how many samples they came from, so `n` is 0 ("unknown").
    pub fn gaussian(&self) -> GaussianStats {
        GaussianStats {
            mean: self.mu.clone(),
            cov: self.sigma.clone(),
            n: 0,
        }
    }
}

/// Reads a pytorch-fid / clean-fid `.npz` or an ADM reference batch.
///
/// # Errors
/// [`IoError`] naming the file and member for a damaged archive,
/// [`IoError::MissingMember`] when neither `mu` nor `sigma` is present (not a
/// statistics file), [`IoError::IncompleteFile`] when only one is, a dtype
/// other than float32/float64, inconsistent shapes, NaN or infinity, an
/// asymmetric `sigma`, or [`IoError::InvalidContent`] for a `sigma` that is
/// not positive semi-definite (module docs).
pub fn read_statistics(path: impl AsRef<Path>) -> Result<StatisticsFile, IoError> {
    let path = path.as_ref();
    let mut npz = NpzArchive::open(path)?;
    check_complete(
        &npz,
        "statistics file (mu, sigma)",
        &["mu", "sigma"],
        "mu and sigma",
    )?;
    let mu_bytes = npz.required("mu")?;
    let sigma_bytes = npz.required("sigma")?;
    let (mu, sigma) = mean_and_covariance(&mu_bytes, "mu", &sigma_bytes, "sigma", path)?;
    let spatial = match (npz.member("mu_s")?, npz.member("sigma_s")?) {
        (Some(m), Some(s)) => Some(mean_and_covariance(&m, "mu_s", &s, "sigma_s", path)?),
        _ => None,
    };
    let adm = spatial.is_some() || npz.has("arr_0");
    let format = if adm {
        StatsFormat::AdmReferenceBatch
    } else {
        StatsFormat::MuSigma
    };
    Ok(StatisticsFile {
        mu,
        sigma,
        spatial,
        format,
    })
}

fn mean_and_covariance(
    mu: &[u8],
    mu_name: &str,
    sigma: &[u8],
    sigma_name: &'static str,
    path: &Path,
) -> Result<(Array1<f64>, Array2<f64>), IoError> {
    let mu = float_array(mu, path, mu_name, 1)?;
    let shape = mu.shape().to_vec();
    let mu = mu
        .into_dimensionality::<Ix1>()
        .map_err(|_| IoError::WrongShape {
            path: path.to_owned(),
            member: Some(mu_name.to_owned()),
            found: shape,
            expected: "a vector [D]".into(),
        })?;
    let d = mu.len();
    let sigma = float_matrix(sigma, path, sigma_name)?;
    if sigma.dim() != (d, d) {
        return Err(IoError::not_square(
            path,
            sigma_name,
            sigma.shape(),
            mu_name,
            d,
        ));
    }
    for (name, index, columns) in [
        (mu_name, mu.iter().position(|v| !v.is_finite()), 1),
        (sigma_name, sigma.iter().position(|v| !v.is_finite()), d),
    ] {
        if let Some(index) = index {
            return Err(IoError::NonFinite {
                path: path.to_owned(),
                member: Some(name.to_owned()),
                index,
                columns,
            });
        }
    }
    let scale = sigma
        .diag()
        .iter()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(f64::MIN_POSITIVE);
    for i in 0..d {
        for j in 0..i {
            if (sigma[[i, j]] - sigma[[j, i]]).abs() > 1e-6 * scale {
                return Err(IoError::WrongShape {
                    path: path.to_owned(),
                    member: Some(sigma_name.to_owned()),
                    found: vec![d, d],
                    expected: format!(
                        "a symmetric covariance (entries [{i},{j}] and [{j},{i}] differ)"
                    ),
                });
            }
        }
    }
    gen_metrics_linalg::check_positive_semidefinite(sigma_name, sigma.view()).map_err(|error| {
        IoError::InvalidContent {
            path: path.to_owned(),
            error,
        }
    })?;
    Ok((mu, sigma))
}

fn float_array(
    bytes: &[u8],
    path: &Path,
    name: &str,
    _rank: usize,
) -> Result<ndarray::ArrayD<f64>, IoError> {
    let descr = NpyHeader::parse(bytes, path, Some(name))?.descr;
    match descr.as_str() {
        "<f8" => decode_dyn::<f64>(bytes, path, Some(name)),
        "<f4" => Ok(decode_dyn::<f32>(bytes, path, Some(name))?.mapv(f64::from)),
        other => Err(IoError::WrongDtype {
            path: path.to_owned(),
            member: Some(name.to_owned()),
            found: other.to_owned(),
            expected: "<f4 (float32) or <f8 (float64)",
        }),
    }
}

fn float_matrix(bytes: &[u8], path: &Path, name: &str) -> Result<Array2<f64>, IoError> {
    let descr = NpyHeader::parse(bytes, path, Some(name))?.descr;
    match descr.as_str() {
        "<f8" => decode::<f64>(bytes, path, Some(name)),
        "<f4" => Ok(decode::<f32>(bytes, path, Some(name))?.mapv(f64::from)),
        other => Err(IoError::WrongDtype {
            path: path.to_owned(),
            member: Some(name.to_owned()),
            found: other.to_owned(),
            expected: "<f4 (float32) or <f8 (float64)",
        }),
    }
}

/// Writes `mu` and `sigma` as a pytorch-fid / clean-fid compatible `.npz`
/// (float64, uncompressed), atomically. With `overwrite == false` an existing
/// file is an error and is left untouched.
///
/// # Errors
/// [`IoError::WrongShape`] if `sigma` is not `[D, D]` for `mu` of length `D`,
/// [`IoError::WouldOverwrite`], [`IoError::NotWritable`] (an existing
/// read-only file is never replaced), or [`IoError::Os`].
pub fn write_statistics(
    path: impl AsRef<Path>,
    mu: ArrayView1<'_, f64>,
    sigma: ArrayView2<'_, f64>,
    overwrite: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    let d = mu.len();
    if sigma.dim() != (d, d) {
        return Err(IoError::not_square(path, "sigma", sigma.shape(), "mu", d));
    }
    write_npz(path, overwrite, |npz| {
        npz.add_array("mu", &mu)?;
        npz.add_array("sigma", &sigma)
    })
}
