//! `gen-metrics metrics`: distribution metrics from feature files.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use gen_metrics_distribution::TwoSampleMetric;
use gen_metrics_distribution::fd_infinity::FdInfinity;
use gen_metrics_distribution::fid::Fid;
use gen_metrics_distribution::kid::Kid;
use ndarray::Array2;

use crate::report::Report;

/// Every metric name `--metrics` takes, in the order they are computed.
pub const METRIC_NAMES: &[&str] = &["fid", "fd_inf", "kid"];

/// Arguments of `gen-metrics metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Real features: .npy [N, D] (float32 or float64).
    #[arg(long, value_name = "REAL.npy")]
    pub real: PathBuf,
    /// Generated features: .npy [N, D].
    #[arg(long, value_name = "FAKE.npy")]
    pub fake: Option<PathBuf>,
    /// Comma-separated metric names (see --help of the README for the keys).
    #[arg(long, value_delimiter = ',', default_value = "fid,kid")]
    pub metrics: Vec<String>,
    /// Seed of every randomized metric (same seed, same numbers).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The loaded inputs.
struct Inputs {
    real: Array2<f32>,
    fake: Option<Array2<f32>>,
}

impl Inputs {
    fn fake(&self, metric: &str) -> Result<&Array2<f32>> {
        self.fake
            .as_ref()
            .with_context(|| format!("metric '{metric}' needs --fake"))
    }
}

/// Runs the subcommand.
pub fn run(args: &MetricsArgs) -> Result<()> {
    for m in &args.metrics {
        if !METRIC_NAMES.contains(&m.as_str()) {
            bail!("unknown metric '{m}'; known: {}", METRIC_NAMES.join(", "));
        }
    }
    let inputs = Inputs {
        real: gen_metrics_io::read_features(&args.real)?,
        fake: args
            .fake
            .as_ref()
            .map(gen_metrics_io::read_features)
            .transpose()?,
    };
    if let Some(fake) = &inputs.fake {
        if fake.ncols() != inputs.real.ncols() {
            bail!(
                "--real has {} feature dimensions but --fake has {}: they must come from the same encoder",
                inputs.real.ncols(),
                fake.ncols()
            );
        }
    }
    let mut report = Report::default();
    for name in METRIC_NAMES
        .iter()
        .filter(|n| args.metrics.iter().any(|m| m == *n))
    {
        compute(name, &inputs, args, &mut report).with_context(|| format!("computing '{name}'"))?;
    }
    if args.json {
        println!("{}", report.to_json()?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn compute(name: &str, inputs: &Inputs, args: &MetricsArgs, report: &mut Report) -> Result<()> {
    let real = inputs.real.view();
    match name {
        "fid" => {
            let out = Fid::new().compute(real, inputs.fake(name)?.view())?;
            report.push("fid", out.value)?;
        }
        "fd_inf" => {
            let fake = inputs.fake(name)?;
            // Chong & Forsyth use min_fake = 5000; smaller sets start at N/5.
            let min_fake = 5000.min((fake.nrows() / 5).max(2));
            let out = FdInfinity::new()
                .min_fake(min_fake)
                .seed(args.seed)
                .compute(real, fake.view())?;
            report.push("fd_inf", out.value)?;
        }
        "kid" => {
            let out = Kid::new()
                .seed(args.seed)
                .full_set(true)
                .compute(real, inputs.fake(name)?.view())?;
            report.push("kid_mean", out.mean)?;
            report.push("kid_std", out.std)?;
            if let Some(full) = out.full_unbiased {
                report.push("kid_full", full)?;
            }
        }
        other => bail!("metric '{other}' is listed but not wired"),
    }
    Ok(())
}
