//! The `gen-metrics` command line: a thin layer of argument parsing over the
//! library crates (as ripgrep is over its crates). Every failure is a clear
//! message on standard error and exit code 2 (bad input) or 1 (anything else),
//! never a panic.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod metrics_cmd;
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Metrics(args) => metrics_cmd::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-metrics: error: {e:#}");
            ExitCode::from(2)
        }
    }
}
