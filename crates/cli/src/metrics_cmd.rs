//! `gen-metrics metrics`: every metric of the registry for one generated set.
//!
//! Sets are files or folders as the pipeline takes them (features `.npy`,
//! images, statistics `.npz` where only FID-type metrics are asked);
//! optional logits for IS, class labels for CAS and per-sample
//! log-likelihoods for KL. `--bootstrap B` adds `<key>_ci_low` /
//! `<key>_ci_high` for the keys with intervals.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use gen_metrics::Evaluation;
use gen_metrics::eval::{Extras, Input, IntervalOptions, Params};

use crate::features_cmd::EncoderArgs;
use crate::output::print;

/// Arguments of `gen-metrics metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Real (reference / held-out test) set: features .npy [N, D], images, or statistics .npz.
    #[arg(long, value_name = "REAL")]
    pub real: Option<PathBuf>,
    /// Generated set: features .npy [N, D] or images.
    #[arg(long, value_name = "FAKE")]
    pub fake: Option<PathBuf>,
    /// Training set (memorization metrics: authpct, ct, ct_modified, copy_ratio, fls).
    #[arg(long, value_name = "TRAIN")]
    pub train: Option<PathBuf>,
    /// Classifier logits of the generated samples [N, C] (is, is_inf).
    #[arg(long, value_name = "LOGITS.npy")]
    pub logits: Option<PathBuf>,
    /// Class labels of the real samples (.npy integers or one per line) (cas).
    #[arg(long, value_name = "FILE")]
    pub labels_real: Option<PathBuf>,
    /// Class labels of the generated samples (cas).
    #[arg(long, value_name = "FILE")]
    pub labels_fake: Option<PathBuf>,
    /// Class labels of the training samples: adds the real-data baseline to cas.
    #[arg(long, value_name = "FILE")]
    pub labels_train: Option<PathBuf>,
    /// log p_data at the real samples, 1-D .npy (kl).
    #[arg(long, value_name = "FILE")]
    pub logp_real: Option<PathBuf>,
    /// log p_model at the real samples, 1-D .npy (kl).
    #[arg(long, value_name = "FILE")]
    pub logq_real: Option<PathBuf>,
    /// log p_data at the generated samples, 1-D .npy (rkl).
    #[arg(long, value_name = "FILE")]
    pub logp_fake: Option<PathBuf>,
    /// log p_model at the generated samples, 1-D .npy (rkl).
    #[arg(long, value_name = "FILE")]
    pub logq_fake: Option<PathBuf>,
    /// Comma-separated metric names, or `all` (every metric whose inputs are given, but the
    /// costly `prd`: name it).
    #[arg(long, value_delimiter = ',', default_value = "fid,kid,pr,prdc", value_parser = metric_name())]
    pub metrics: Vec<String>,
    /// Neighbourhood size of pr (default 3), prdc (default 5), realism (3) and rarity (3).
    #[arg(long)]
    pub k: Option<usize>,
    /// Seed of every randomized metric and of the resampling (same seed, same numbers).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Random half-splits for confidence intervals of the (real, generated) metrics (0: none;
    /// at least 2; see docs/intervals.md).
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
    /// Coverage of the intervals (and of KL's standard-error interval).
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Encoder and runtime options (for image sets).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// The `--metrics` values: `all` and every registry name, each with its
/// one-line description (clap shows them in `--help` and refuses others).
pub fn metric_name() -> clap::builder::PossibleValuesParser {
    let all = clap::builder::PossibleValue::new("all")
        .help("every metric whose inputs are given (but the costly prd: name it)");
    clap::builder::PossibleValuesParser::new(
        std::iter::once(all).chain(
            gen_metrics::eval::REGISTRY
                .iter()
                .map(|s| clap::builder::PossibleValue::new(s.name).help(s.about)),
        ),
    )
}

/// How each input is given on this command line (for error messages).
pub fn input_hints() -> Vec<(Input, String)> {
    vec![
        (Input::Real, "--real".into()),
        (Input::Fake, "--fake".into()),
        (Input::Train, "--train".into()),
        (Input::Logits, "--logits".into()),
        (Input::LabelsReal, "--labels-real".into()),
        (Input::LabelsFake, "--labels-fake".into()),
        (
            Input::LogLikelihoodsReal,
            "--logp-real and --logq-real".into(),
        ),
        (
            Input::LogLikelihoodsFake,
            "--logp-fake and --logq-fake".into(),
        ),
    ]
}

fn pair(
    p: &Option<PathBuf>,
    q: &Option<PathBuf>,
) -> Result<Option<(ndarray::Array1<f64>, ndarray::Array1<f64>)>> {
    Ok(match (p, q) {
        (Some(p), Some(q)) => Some((
            gen_metrics::io::read_log_likelihoods(p)?,
            gen_metrics::io::read_log_likelihoods(q)?,
        )),
        _ => None,
    })
}

/// Reads the extra inputs (logits, labels, log-likelihoods).
///
/// # Errors
/// The files' format errors.
pub fn extras(args: &MetricsArgs) -> Result<Extras> {
    let labels = |p: &Option<PathBuf>| -> Result<Option<Vec<usize>>> {
        Ok(p.as_ref().map(gen_metrics::io::read_labels).transpose()?)
    };
    Ok(Extras {
        logits: args
            .logits
            .as_ref()
            .map(gen_metrics::io::read_features)
            .transpose()?,
        labels_real: labels(&args.labels_real)?,
        labels_fake: labels(&args.labels_fake)?,
        labels_train: labels(&args.labels_train)?,
        log_likelihoods_real: pair(&args.logp_real, &args.logq_real)?,
        log_likelihoods_fake: pair(&args.logp_fake, &args.logq_fake)?,
    })
}

/// Runs the subcommand.
///
/// # Errors
/// Any failure, with the file or metric it concerns.
pub fn run(args: &MetricsArgs) -> Result<()> {
    let mut ev = Evaluation::new()
        .metrics(args.metrics.clone())
        .params(Params {
            k: args.k,
            seed: args.seed,
            confidence: args.confidence,
            ..Params::default()
        })
        .interval_options(IntervalOptions {
            resamples: args.bootstrap,
            confidence: args.confidence,
            seed: args.seed,
        })
        .extract_options(args.encoder.extract_options())
        .input_hints(input_hints());
    if let Some(r) = &args.real {
        ev = ev.real(r);
    }
    if let Some(f) = &args.fake {
        ev = ev.fake(f);
    }
    if let Some(t) = &args.train {
        ev = ev.train(t);
    }
    let report = ev.extras(extras(args)?).run()?;
    if args.json {
        print(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report.flat(0))?
        ))
    } else {
        print(&report.to_table(0))
    }
}
