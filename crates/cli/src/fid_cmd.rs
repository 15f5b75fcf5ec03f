//! `gen-metrics fid A B`: the FID between two image sets, feature files or
//! reference statistics.
//!
//! Each side is, by what it is: a folder or `.zip` of images (encoded with
//! the chosen encoder, cached), a `.npz` of statistics (`mu`, `sigma`:
//! pytorch-fid / clean-fid files, ADM reference batches) or of a streaming
//! accumulator's state (`n`, `mean`, `comoment`: merged ranks, see
//! `gen_metrics_io::write_accumulator`), a `.npy` feature
//! matrix (float `[N, D]`), or a `.npy`/`.npz` uint8 image array.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gen_metrics_distribution::fid::{Fid, FidOutput};
use gen_metrics_features::encoder::Encoder;
use gen_metrics_io::IoError;
use gen_metrics_linalg::FrechetSide;
use ndarray::Array2;

use crate::features_cmd::{EncoderArgs, extract};

/// Arguments of `gen-metrics fid`.
#[derive(Debug, Args)]
pub struct FidArgs {
    /// First set (the reference): folder, .zip, statistics or accumulator .npz, features .npy or image array.
    #[arg(value_name = "DIR_OR_NPZ")]
    pub first: PathBuf,
    /// Second set (the generated images), same kinds.
    #[arg(value_name = "DIR_OR_NPZ")]
    pub second: PathBuf,
    /// Print one JSON object instead of a line.
    #[arg(long)]
    pub json: bool,
    /// Encoder and runtime options (for image sets).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// One side, loaded.
enum Side {
    Features(Array2<f32>),
    Stats(gen_metrics_linalg::GaussianStats),
}

fn is_images(path: &Path) -> bool {
    path.is_dir()
        || path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("zip"))
}

fn ext_is(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn load(path: &Path, args: &FidArgs, encoder: &mut Option<Encoder>) -> Result<Side> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    if ext_is(path, "npz") {
        match gen_metrics_io::read_statistics(path) {
            Ok(s) => return Ok(Side::Stats(s.gaussian())),
            // Not statistics: an accumulator state, then an image array
            // (`arr_0` uint8), are tried below.
            Err(IoError::MissingMember { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        match gen_metrics_io::read_accumulator(path) {
            Ok(acc) => return Ok(Side::Stats(acc.finalize_unbiased()?)),
            Err(IoError::MissingMember { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    } else if ext_is(path, "npy") {
        match gen_metrics_io::read_features(path) {
            Ok(f) => return Ok(Side::Features(f)),
            // uint8 images [N, H, W, C] or [N, H, W] are tried below.
            Err(IoError::WrongDtype { .. } | IoError::WrongShape { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    } else if !is_images(path) {
        bail!(
            "{}: expected a folder, .zip, .npz (statistics or images) or .npy (features or images)",
            path.display()
        );
    }
    let enc = match encoder {
        Some(e) => e,
        None => encoder.insert(args.encoder.encoder()?),
    };
    let out = extract(path, &args.encoder, enc)?;
    Ok(Side::Features(out.features))
}

fn side(s: &Side) -> Result<FrechetSide> {
    Ok(match s {
        Side::Features(f) => FrechetSide::from_features(f.view())?,
        Side::Stats(g) => FrechetSide::from_stats(g)?,
    })
}

/// The FID between the two sets of `args` (images are encoded once, with one session).
///
/// # Errors
/// Loading, encoding and metric errors.
pub fn compute(args: &FidArgs) -> Result<FidOutput> {
    let mut encoder = None;
    let a = load(&args.first, args, &mut encoder)
        .with_context(|| format!("loading {}", args.first.display()))?;
    let b = load(&args.second, args, &mut encoder)
        .with_context(|| format!("loading {}", args.second.display()))?;
    let out = match (&a, &b) {
        (Side::Features(x), Side::Features(y)) => {
            use gen_metrics_distribution::TwoSampleMetric;
            Fid::new().compute(x.view(), y.view())?
        }
        _ => Fid::new().compute_from_sides(&side(&a)?, &side(&b)?)?,
    };
    Ok(out)
}

/// Runs `gen-metrics fid`.
///
/// # Errors
/// Any failure, with the file or artifact it concerns.
pub fn run(args: &FidArgs) -> Result<()> {
    let out = compute(args)?;
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("fid {:.6}", out.value);
    }
    Ok(())
}
