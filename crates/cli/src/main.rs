//! The `gen-metrics` command line: argument parsing over the `gen-metrics`
//! library, which does all the work (as ripgrep is over its crates).
//!
//! Exit codes: 0 success (also when standard output is closed early, as by
//! `| head`); 2 bad input or usage (unknown metric, missing or malformed
//! file, an input a metric needs); 1 anything else (the runtime library, a
//! missing artifact, writing output). Every failure is one message on
//! standard error, never a panic.

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod eval_cmd;
mod features_cmd;
mod fid_cmd;
mod fringe_cmd;
mod metrics_cmd;
mod models_cmd;
mod output;

/// The binary's allocator: mimalloc instead of the system `malloc`. The
/// numeric work allocates a few large float64 buffers per run (the feature
/// matrices, the `D × D` co-moments, covariances and Fréchet intermediates:
/// 2048² × 8 B = 32 MiB each), and with glibc's `malloc` every one is a fresh
/// `mmap` whose pages fault in one by one (109,000 minor faults, ~9% of a
/// whole-process `fid` on two 10,000 × 2048 files); mimalloc serves them from
/// arenas it maps with transparent huge pages and reuses (439 faults): that
/// `fid` went from 1.05 s to 0.97 s, median of alternating runs
/// (docs/benchmarks.md). The libraries do not choose an allocator; an
/// application embedding them picks its own.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Metrics for generative image models, with the numbers of the Python references.
#[derive(Debug, Parser)]
#[command(name = "gen-metrics", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Evaluate generated sets against a real one: every metric with intervals, a ranking,
    /// and a report (JSON, Markdown, SVG plots).
    Eval(eval_cmd::EvalArgs),
    /// Compute metrics of one generated set from files (features, images or statistics).
    Metrics(metrics_cmd::MetricsArgs),
    /// Extract features from images (folder, zip, .npy/.npz) into an .npy file.
    Features(features_cmd::FeaturesArgs),
    /// FID between two image folders or statistics files, as short as pytorch-fid.
    Fid(fid_cmd::FidArgs),
    /// The FID fringe-feature attack: how much FID a selection of candidates that only
    /// matches fringe features (class histograms) gains, checked in another feature space.
    Fringe(Box<fringe_cmd::FringeArgs>),
    /// Provision and inspect the cached artifacts (ONNX Runtime, FID Inception).
    Models(models_cmd::ModelsArgs),
}

/// A usage error found by a command itself (exit code 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

fn exit_code(e: &anyhow::Error) -> u8 {
    for cause in e.chain() {
        if let Some(ev) = cause.downcast_ref::<gen_metrics::EvalError>() {
            return if ev.is_input_error() { 2 } else { 1 };
        }
        if cause.downcast_ref::<gen_metrics::io::IoError>().is_some()
            || cause.downcast_ref::<Usage>().is_some()
        {
            return 2;
        }
        if let Some(f) = cause.downcast_ref::<gen_metrics::features::FeatureError>() {
            return if gen_metrics::eval::error::feature_error_is_input(f) {
                2
            } else {
                1
            };
        }
    }
    1
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval(args) => eval_cmd::run(&args),
        Command::Metrics(args) => metrics_cmd::run(&args),
        Command::Features(args) => features_cmd::run(&args),
        Command::Fid(args) => fid_cmd::run(&args),
        Command::Fringe(args) => fringe_cmd::run(&args),
        Command::Models(args) => models_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.downcast_ref::<output::BrokenPipe>().is_some() => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "gen-metrics: error: {e:#}");
            ExitCode::from(exit_code(&e))
        }
    }
}
