//! The `gen-metrics` command line: a thin layer of argument parsing over the
//! library crates (as ripgrep is over its crates). Every failure is a clear
//! message on standard error and exit code 2 (bad input) or 1 (anything else),
//! never a panic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod features_cmd;
mod fid_cmd;
mod metrics_cmd;
mod models_cmd;
mod report;

/// Metrics for generative image models, with the numbers of the Python references.
#[derive(Debug, Parser)]
#[command(name = "gen-metrics", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compute metrics from feature files (.npy [N, D]).
    Metrics(metrics_cmd::MetricsArgs),
    /// Extract features from images (folder, zip, .npy/.npz) into an .npy file.
    Features(features_cmd::FeaturesArgs),
    /// FID between two image folders or statistics files, as short as pytorch-fid.
    Fid(fid_cmd::FidArgs),
    /// Provision and inspect the cached artifacts (ONNX Runtime, FID Inception).
    Models(models_cmd::ModelsArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Metrics(args) => metrics_cmd::run(&args),
        Command::Features(args) => features_cmd::run(&args),
        Command::Fid(args) => fid_cmd::run(&args),
        Command::Models(args) => models_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-metrics: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
