//! `gen-metrics eval`: one real set against one or more generated sets,
//! every selected metric with intervals, the ranking of the generated sets
//! with pairwise resample comparisons, and a report folder (`report.json`,
//! `report.md`, SVG plots).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gen_metrics::Evaluation;
use gen_metrics::eval::{IntervalOptions, Params};

use crate::features_cmd::EncoderArgs;
use crate::metrics_cmd::{input_hints, metric_name};
use crate::output::print;

/// Arguments of `gen-metrics eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Real set: image folder, .zip, features .npy, or statistics .npz (FID-type metrics only).
    #[arg(long, value_name = "REAL")]
    pub real: PathBuf,
    /// A generated set (repeat for several: they are ranked and compared).
    #[arg(long, value_name = "FAKE", required = true)]
    pub fake: Vec<PathBuf>,
    /// Training set (memorization metrics).
    #[arg(long, value_name = "TRAIN")]
    pub train: Option<PathBuf>,
    /// Comma-separated metric names, or `all` (every metric whose inputs are given, but the
    /// costly `prd`: name it).
    #[arg(long, value_delimiter = ',', default_value = "all", value_parser = metric_name())]
    pub metrics: Vec<String>,
    /// Random half-splits for the intervals and the pairwise comparisons (0: none; at least 2;
    /// see docs/intervals.md).
    #[arg(long, default_value_t = 20)]
    pub bootstrap: usize,
    /// Coverage of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Neighbourhood size override of the k-NN metrics.
    #[arg(long)]
    pub k: Option<usize>,
    /// KID subset size (default min(1000, N)).
    #[arg(long)]
    pub kid_subset_size: Option<usize>,
    /// Seed of every randomized metric and of the resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Report folder: report.json, report.md and SVG plots are written there.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Print report.json on standard output instead of the Markdown summary.
    #[arg(long)]
    pub json: bool,
    /// Encoder and runtime options (for image sets).
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Under mpirun: gather at most N rows per set to rank 0, a seeded uniform subset
    /// (`--seed`); default all rows (docs/distributed.md).
    #[cfg(feature = "mpi")]
    #[arg(long, value_name = "N")]
    pub gather_cap: Option<usize>,
    /// Under mpirun: merge each set's Gaussian statistics across ranks instead of gathering
    /// rows (FID-type metrics only, no intervals).
    #[cfg(feature = "mpi")]
    #[arg(long)]
    pub reduce_statistics: bool,
}

/// Runs `gen-metrics eval`.
///
/// # Errors
/// Any failure, with the file or metric it concerns.
pub fn run(args: &EvalArgs) -> Result<()> {
    let mut ev = Evaluation::new()
        .real(&args.real)
        .metrics(args.metrics.clone())
        .params(Params {
            k: args.k,
            seed: args.seed,
            confidence: args.confidence,
            kid_subset_size: args.kid_subset_size,
            ..Params::default()
        })
        .interval_options(IntervalOptions {
            resamples: args.bootstrap,
            confidence: args.confidence,
            seed: args.seed,
        })
        .extract_options(args.encoder.extract_options())
        .input_hints(input_hints());
    for f in &args.fake {
        ev = ev.fake(f);
    }
    if let Some(t) = &args.train {
        ev = ev.train(t);
    }
    #[cfg(feature = "mpi")]
    if gen_metrics::mpi::Group::launched() {
        return run_distributed(args, &ev);
    }
    let report = ev.run()?;
    write_report(args, &report)
}

/// Under an MPI launcher: every rank encodes its shard, rank 0 evaluates and
/// writes the report, the others write nothing. An error on any rank is
/// printed (naming the file) and ends every rank (`MPI_Abort`), so that no
/// rank waits for one that failed.
#[cfg(feature = "mpi")]
fn run_distributed(args: &EvalArgs, ev: &Evaluation) -> Result<()> {
    use gen_metrics::mpi::{DistError, DistOptions, Group, evaluate};
    let group = Group::init()?;
    let options = DistOptions {
        gather_cap: args.gather_cap,
        seed: args.seed,
        statistics_only: args.reduce_statistics,
    };
    let fail = |e: &dyn std::fmt::Display, code: i32| -> ! {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "gen-metrics: error (rank {} of {}): {e}",
            group.rank(),
            group.size()
        );
        let _ = std::io::stderr().flush();
        group.abort(code)
    };
    match evaluate(&group, ev, &options) {
        Ok(Some(report)) => match write_report(args, &report) {
            Ok(()) => Ok(()),
            Err(e) if e.downcast_ref::<crate::output::BrokenPipe>().is_some() => Ok(()),
            Err(e) => fail(&format!("{e:#}"), 1),
        },
        Ok(None) => Ok(()),
        // The same on every rank, before any communication: say it once.
        Err(DistError::Plan(e)) if group.is_root() => Err(e.into()),
        Err(e @ DistError::Plan(_)) => {
            let code = e.exit_code();
            drop(group);
            std::process::exit(code)
        }
        Err(e) => {
            let code = e.exit_code();
            fail(&e, code)
        }
    }
}

fn write_report(args: &EvalArgs, report: &gen_metrics::Report) -> Result<()> {
    let written = report.write_dir(&args.out)?;
    if !args.encoder.quiet {
        for p in &written {
            eprintln!("gen-metrics: wrote {}", p.display());
        }
    }
    if args.json {
        print(&format!("{}\n", report.to_json()?))
    } else {
        print(&report.to_markdown())
    }
}
