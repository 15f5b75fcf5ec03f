//! `gen-metrics fid A B`: the FID between two image sets, feature files or
//! reference statistics (each side as `gen_metrics::eval::SetSource` takes
//! it: folder, `.zip`, statistics, accumulator or features `.npz`, features
//! `.npy`, or uint8 image array).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gen_metrics::Evaluation;

use crate::features_cmd::EncoderArgs;
use crate::output::print;

/// Arguments of `gen-metrics fid`.
#[derive(Debug, Args)]
pub struct FidArgs {
    /// First set (the reference): folder, .zip, statistics or accumulator .npz, features .npy or image array.
    #[arg(value_name = "DIR_OR_NPZ")]
    pub first: PathBuf,
    /// Second set (the generated images), same kinds.
    #[arg(value_name = "DIR_OR_NPZ")]
    pub second: PathBuf,
    /// Print one JSON object (`{"fid": ...}`) instead of a line.
    #[arg(long)]
    pub json: bool,
    /// Encoder and runtime options (for image sets).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// Runs `gen-metrics fid`.
///
/// # Errors
/// Any failure, with the file or artifact it concerns.
pub fn run(args: &FidArgs) -> Result<()> {
    let report = Evaluation::between(&args.first, &args.second)
        .metrics(["fid"])
        .extract_options(args.encoder.extract_options())
        .run()?;
    let fid = report.value("fid").unwrap_or(f64::NAN);
    if args.json {
        print(&format!("{}\n", serde_json::json!({ "fid": fid })))
    } else {
        print(&format!(
            "fid {}\n",
            gen_metrics::eval::report::fmt_value(fid)
        ))
    }
}
