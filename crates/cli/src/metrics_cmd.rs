//! `gen-metrics metrics`: every metric of the library from feature files.
//!
//! Inputs are `.npy` feature matrices `[N, D]` (real, generated, training),
//! optional logits for IS, class labels for CAS and per-sample
//! log-likelihoods for KL. Each requested metric adds its keys to one report;
//! `--bootstrap B` adds `<key>_ci_low` / `<key>_ci_high` (percentile interval,
//! `--confidence`) for the metrics that are a function of (real, generated).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;
use gen_metrics_cas::score::{ClassificationAccuracyScore, LabelledFeatures};
use gen_metrics_distribution::TwoSampleMetric;
use gen_metrics_distribution::fd_infinity::FdInfinity;
use gen_metrics_distribution::fid::Fid;
use gen_metrics_distribution::inception_score::{InceptionScore, IsInfinity};
use gen_metrics_distribution::kid::Kid;
use gen_metrics_distribution::mifid::Mifid;
use gen_metrics_distribution::prdc::Prdc;
use gen_metrics_distribution::precision_recall::PrecisionRecall;
use gen_metrics_distribution::rarity::Rarity;
use gen_metrics_distribution::realism::Realism;
use gen_metrics_distribution::vendi::Vendi;
use gen_metrics_memorization::authpct::AuthPct;
use gen_metrics_memorization::copy_detection::CopyDetection;
use gen_metrics_memorization::data_copying::DataCopying;
use gen_metrics_memorization::fls::Fls;
use gen_metrics_ranking::bootstrap::Bootstrap;
use gen_metrics_ranking::divergence::{
    Divergence, LogLikelihoods, kl_monte_carlo, reverse_kl_monte_carlo,
};
use ndarray::{Array1, Array2, ArrayView2};

use crate::report::Report;

/// Every metric name `--metrics` takes, in the order they are computed.
pub const METRIC_NAMES: &[&str] = &[
    "fid",
    "fd_inf",
    "kid",
    "is",
    "is_inf",
    "pr",
    "prdc",
    "realism",
    "rarity",
    "vendi",
    "mifid",
    "kl",
    "rkl",
    "authpct",
    "ct",
    "ct_modified",
    "copy_ratio",
    "fls",
    "cas",
];

/// Arguments of `gen-metrics metrics`.
#[derive(Debug, Args)]
pub struct MetricsArgs {
    /// Real (reference / held-out test) features: .npy [N, D], float32 or float64.
    #[arg(long, value_name = "REAL.npy")]
    pub real: PathBuf,
    /// Generated features: .npy [N, D].
    #[arg(long, value_name = "FAKE.npy")]
    pub fake: Option<PathBuf>,
    /// Training-set features (memorization metrics: authpct, ct, ct_modified, copy_ratio, fls).
    #[arg(long, value_name = "TRAIN.npy")]
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
    /// Comma-separated metric names: fid, fd_inf, kid, is, is_inf, pr, prdc, realism, rarity,
    /// vendi, mifid, kl, rkl, authpct, ct, ct_modified, copy_ratio, fls, cas.
    #[arg(long, value_delimiter = ',', default_value = "fid,kid,pr,prdc")]
    pub metrics: Vec<String>,
    /// Neighbourhood size of pr (default 3), prdc (default 5), realism (3) and rarity (3).
    #[arg(long)]
    pub k: Option<usize>,
    /// Seed of every randomized metric (same seed, same numbers).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Bootstrap resamples for confidence intervals of the (real, generated) metrics (0: none).
    #[arg(long, default_value_t = 0)]
    pub bootstrap: usize,
    /// Coverage of the bootstrap intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The loaded inputs.
struct Inputs {
    real: Array2<f32>,
    fake: Option<Array2<f32>>,
    train: Option<Array2<f32>>,
}

impl Inputs {
    fn fake(&self, metric: &str) -> Result<ArrayView2<'_, f32>> {
        self.fake
            .as_ref()
            .map(|a| a.view())
            .with_context(|| format!("metric '{metric}' needs --fake"))
    }
    fn train(&self, metric: &str) -> Result<ArrayView2<'_, f32>> {
        self.train
            .as_ref()
            .map(|a| a.view())
            .with_context(|| format!("metric '{metric}' needs --train"))
    }
}

fn required<'a>(p: &'a Option<PathBuf>, flag: &str, metric: &str) -> Result<&'a PathBuf> {
    p.as_ref()
        .with_context(|| format!("metric '{metric}' needs {flag}"))
}

/// Runs the subcommand.
pub fn run(args: &MetricsArgs) -> Result<()> {
    for m in &args.metrics {
        if !METRIC_NAMES.contains(&m.as_str()) {
            bail!("unknown metric '{m}'; known: {}", METRIC_NAMES.join(", "));
        }
    }
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        bail!("--confidence must be in (0, 1), got {}", args.confidence);
    }
    let inputs = Inputs {
        real: gen_metrics_io::read_features(&args.real)?,
        fake: args
            .fake
            .as_ref()
            .map(gen_metrics_io::read_features)
            .transpose()?,
        train: args
            .train
            .as_ref()
            .map(gen_metrics_io::read_features)
            .transpose()?,
    };
    for (flag, set) in [("--fake", &inputs.fake), ("--train", &inputs.train)] {
        if let Some(set) = set
            && set.ncols() != inputs.real.ncols()
        {
            bail!(
                "--real has {} feature dimensions but {flag} has {}: they must come from the same encoder",
                inputs.real.ncols(),
                set.ncols()
            );
        }
    }
    let mut report = Report::default();
    for name in METRIC_NAMES
        .iter()
        .filter(|n| args.metrics.iter().any(|m| m == *n))
    {
        compute(name, &inputs, args, &mut report).with_context(|| format!("computing '{name}'"))?;
        if args.bootstrap > 0 {
            bootstrap(name, &inputs, args, &mut report)
                .with_context(|| format!("bootstrapping '{name}'"))?;
        }
    }
    if args.json {
        println!("{}", report.to_json()?);
    } else {
        print!("{}", report.to_table());
    }
    Ok(())
}

fn pr(args: &MetricsArgs) -> PrecisionRecall {
    let m = PrecisionRecall::nvlabs();
    if let Some(k) = args.k { m.k(k) } else { m }
}

fn prdc(args: &MetricsArgs) -> Prdc {
    let m = Prdc::default();
    if let Some(k) = args.k { m.k(k) } else { m }
}

fn kid(args: &MetricsArgs) -> Kid {
    Kid::new().seed(args.seed)
}

/// Chong & Forsyth use min_fake = 5000; smaller sets start at N/5.
fn infinity_start(n: usize) -> usize {
    5000.min((n / 5).max(2))
}

fn compute(name: &str, inputs: &Inputs, args: &MetricsArgs, report: &mut Report) -> Result<()> {
    let real = inputs.real.view();
    match name {
        "fid" => report.push("fid", Fid::new().compute(real, inputs.fake(name)?)?.value)?,
        "fd_inf" => {
            let fake = inputs.fake(name)?;
            let out = FdInfinity::new()
                .min_fake(infinity_start(fake.nrows()))
                .seed(args.seed)
                .compute(real, fake)?;
            report.push("fd_inf", out.value)?;
        }
        "kid" => {
            let out = kid(args).full_set(true).compute(real, inputs.fake(name)?)?;
            report.push("kid_mean", out.mean)?;
            report.push("kid_std", out.std)?;
            if let Some(full) = out.full_unbiased {
                report.push("kid_full", full)?;
            }
        }
        "is" | "is_inf" => {
            let path = required(&args.logits, "--logits", name)?;
            let logits = gen_metrics_io::read_features(path)?;
            if name == "is" {
                let out = InceptionScore::new().compute(logits.view())?;
                report.push("is_mean", out.mean)?;
                report.push("is_std", out.std)?;
            } else {
                let out = IsInfinity::new()
                    .min_fake(infinity_start(logits.nrows()))
                    .seed(args.seed)
                    .compute(logits.view())?;
                report.push("is_inf", out.value)?;
            }
        }
        "pr" => {
            let out = pr(args).compute(real, inputs.fake(name)?)?;
            report.push("precision", out.precision)?;
            report.push("recall", out.recall)?;
        }
        "prdc" => {
            let out = prdc(args).compute(real, inputs.fake(name)?)?;
            report.push("prdc_precision", out.precision)?;
            report.push("prdc_recall", out.recall)?;
            report.push("density", out.density)?;
            report.push("coverage", out.coverage)?;
        }
        "realism" => {
            let m = Realism::default();
            let m = if let Some(k) = args.k { m.k(k) } else { m };
            let out = m.compute(real, inputs.fake(name)?)?;
            report.push("realism_mean", out.mean)?;
            report.push("realism_median", out.median)?;
        }
        "rarity" => {
            let m = Rarity::default();
            let m = if let Some(k) = args.k { m.k(k) } else { m };
            let out = m.compute(real, inputs.fake(name)?)?;
            report.push("rarity_in_manifold", out.in_manifold as f64)?;
            if let Some(mean) = out.mean_in_manifold {
                report.push("rarity_mean", mean)?;
            }
        }
        "vendi" => report.push("vendi", Vendi::default().compute(inputs.fake(name)?)?.score)?,
        "mifid" => report.push(
            "mifid",
            Mifid::default().compute(real, inputs.fake(name)?)?.mifid,
        )?,
        "kl" | "rkl" => {
            let (p, q) = if name == "kl" {
                (
                    required(&args.logp_real, "--logp-real", name)?,
                    required(&args.logq_real, "--logq-real", name)?,
                )
            } else {
                (
                    required(&args.logp_fake, "--logp-fake", name)?,
                    required(&args.logq_fake, "--logq-fake", name)?,
                )
            };
            let (log_p, log_q): (Array1<f64>, Array1<f64>) = (
                gen_metrics_io::read_log_likelihoods(p)?,
                gen_metrics_io::read_log_likelihoods(q)?,
            );
            let ll = LogLikelihoods::new(log_p.view(), log_q.view());
            let d = if name == "kl" {
                kl_monte_carlo(&ll, args.confidence)?
            } else {
                reverse_kl_monte_carlo(&ll, args.confidence)?
            };
            match d {
                Divergence::Finite(est) => {
                    report.push(name, est.value)?;
                    report.push(format!("{name}_std_error"), est.std_error)?;
                }
                Divergence::Infinite {
                    first_index,
                    count,
                    n,
                } => bail!(
                    "{name} is infinite: the model gives zero density to {count} of {n} samples (first: index {first_index})"
                ),
            }
        }
        "authpct" => {
            let out = AuthPct.compute(inputs.train(name)?, inputs.fake(name)?)?;
            report.push("authpct", out.authpct)?;
        }
        "ct" | "ct_modified" => {
            let m = DataCopying {
                seed: args.seed,
                ..DataCopying::default()
            };
            let (train, fake) = (inputs.train(name)?, inputs.fake(name)?);
            let out = if name == "ct" {
                m.compute(train, real, fake)?
            } else {
                m.compute_mem(train, real, fake)?
            };
            report.push(name, out.c_t)?;
        }
        "copy_ratio" => {
            let out = CopyDetection::default().compute(inputs.train(name)?, inputs.fake(name)?)?;
            report.push("copy_ratio", out.fraction_copied)?;
        }
        "fls" => {
            let out = Fls::default().seed(args.seed).compute_split(
                inputs.train(name)?,
                real,
                inputs.fake(name)?,
            )?;
            report.push("fls", out.fls)?;
        }
        "cas" => {
            let fake = inputs.fake(name)?;
            let labels_fake =
                gen_metrics_io::read_labels(required(&args.labels_fake, "--labels-fake", name)?)?;
            let labels_real =
                gen_metrics_io::read_labels(required(&args.labels_real, "--labels-real", name)?)?;
            let labels_train = args
                .labels_train
                .as_ref()
                .map(gen_metrics_io::read_labels)
                .transpose()?;
            let n_classes = labels_fake
                .iter()
                .chain(&labels_real)
                .chain(labels_train.iter().flatten())
                .max()
                .map_or(0, |m| m + 1);
            let train = match &labels_train {
                Some(l) => Some(LabelledFeatures::new(inputs.train(name)?, l)),
                None => None,
            };
            let out = ClassificationAccuracyScore::default().compute(
                LabelledFeatures::new(fake, &labels_fake),
                LabelledFeatures::new(real, &labels_real),
                train,
                n_classes,
            )?;
            report.push("cas_top1", out.cas.top1)?;
            report.push("cas_top5", out.cas.top_k)?;
            if let Some(gap) = out.top1_gap {
                report.push("cas_top1_gap", gap)?;
            }
            for (c, acc) in out.cas.per_class.iter().enumerate() {
                if let Some(acc) = acc {
                    report.push(format!("cas_class_{c}"), *acc)?;
                }
            }
        }
        other => bail!("metric '{other}' is listed but not wired"),
    }
    Ok(())
}

/// One scalar (real, fake) -> value function per report key.
type ScalarMetric<'a> =
    Box<dyn Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<f64, MetricFailure> + Sync + 'a>;

/// The error a bootstrapped metric reports (any crate's error, as text).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct MetricFailure(String);

fn scalar<'a, T, E: std::fmt::Display>(
    f: impl Fn(ArrayView2<'_, f32>, ArrayView2<'_, f32>) -> Result<T, E> + Sync + 'a,
    pick: impl Fn(&T) -> f64 + Sync + 'a,
) -> ScalarMetric<'a> {
    Box::new(move |r, g| {
        f(r, g)
            .map(|o| pick(&o))
            .map_err(|e| MetricFailure(e.to_string()))
    })
}

/// Bootstrap intervals for the keys of `name` that are functions of (real, fake).
fn bootstrap(name: &str, inputs: &Inputs, args: &MetricsArgs, report: &mut Report) -> Result<()> {
    let keys: Vec<(&str, ScalarMetric<'_>)> = match name {
        "fid" => vec![("fid", scalar(|r, g| Fid::new().compute(r, g), |o| o.value))],
        "kid" => vec![(
            "kid_mean",
            scalar(move |r, g| kid(args).compute(r, g), |o| o.mean),
        )],
        "pr" => vec![
            (
                "precision",
                scalar(move |r, g| pr(args).compute(r, g), |o| o.precision),
            ),
            (
                "recall",
                scalar(move |r, g| pr(args).compute(r, g), |o| o.recall),
            ),
        ],
        "prdc" => vec![
            (
                "density",
                scalar(move |r, g| prdc(args).compute(r, g), |o| o.density),
            ),
            (
                "coverage",
                scalar(move |r, g| prdc(args).compute(r, g), |o| o.coverage),
            ),
        ],
        "mifid" => vec![(
            "mifid",
            scalar(|r, g| Mifid::default().compute(r, g), |o| o.mifid),
        )],
        _ => return Ok(()),
    };
    let fake = inputs.fake(name)?;
    let b = Bootstrap::default()
        .n_resamples(args.bootstrap)
        .confidence(args.confidence)
        .seed(args.seed);
    for (key, f) in keys {
        let ci = b.confidence_interval(inputs.real.view(), fake, f)?;
        report.push(format!("{key}_ci_low"), ci.low)?;
        report.push(format!("{key}_ci_high"), ci.high)?;
    }
    Ok(())
}
