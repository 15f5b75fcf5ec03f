//! `gen-metrics fringe`: the FID fringe-feature attack on a user's sets
//! (`gen_metrics::eval::fringe::FringeEvaluation`): how much FID a selection
//! of the candidates that only matches fringe features gains, checked in an
//! independent feature space.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, ValueEnum};
use gen_metrics::distribution::fringe::{FringeAttack, FringeMethod, WeightOptimisation};
use gen_metrics::eval::fringe::{FringeCheck, FringeEvaluation, FringeLabels};
use gen_metrics::eval::report::fmt_value;

use crate::Usage;
use crate::features_cmd::EncoderArgs;
use crate::output::print;

/// The attack.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Method {
    /// Match the label histogram of the real set (the paper's Top-1 matching).
    Histogram,
    /// Minimise FD over per-candidate weights, then draw by weight.
    Weights,
}

/// Arguments of `gen-metrics fringe`.
#[derive(Debug, Args)]
pub struct FringeArgs {
    /// Real set: folder, .zip, features .npy or uint8 image array.
    #[arg(long)]
    pub real: PathBuf,
    /// Candidate pool (more generated samples than will be reported), same kinds.
    #[arg(long)]
    pub candidates: PathBuf,
    /// Size of the reported subset (default: the number of real rows, as the paper).
    #[arg(long)]
    pub n: Option<usize>,
    /// The attack.
    #[arg(long, value_enum, default_value_t = Method::Histogram)]
    pub method: Method,
    /// k-means cells of the real features used as labels when no labels are given
    /// (the registry Inception has no classifier head for Top-1 labels).
    #[arg(long, default_value_t = 64, value_name = "K")]
    pub cells: usize,
    /// Top-1 class labels of the real rows (.npy integers or one per line).
    #[arg(long, value_name = "FILE", requires = "labels_candidates")]
    pub labels_real: Option<PathBuf>,
    /// Top-1 class labels of the candidate rows.
    #[arg(long, value_name = "FILE", requires = "labels_real")]
    pub labels_candidates: Option<PathBuf>,
    /// Check encoder (preset or JSON spec) run over the same images: FD there
    /// before and after (the paper checks with CLIP).
    #[arg(long, value_name = "NAME|SPEC.json", conflicts_with = "check_real")]
    pub check_encoder: Option<String>,
    /// ONNX model of the check encoder.
    #[arg(long, value_name = "MODEL.onnx", requires = "check_encoder")]
    pub check_model: Option<PathBuf>,
    /// The real rows' features in the check space (instead of --check-encoder).
    #[arg(long, value_name = "FILE", requires = "check_candidates")]
    pub check_real: Option<PathBuf>,
    /// The candidate rows' features in the check space.
    #[arg(long, value_name = "FILE", requires = "check_real")]
    pub check_candidates: Option<PathBuf>,
    /// Seed of every draw (k-means, subsets).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print one JSON object instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Encoder and runtime options of the attacked space (FID's Inception by default).
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// Runs `gen-metrics fringe`.
///
/// # Errors
/// Any failure, with the file or step it concerns.
pub fn run(args: &FringeArgs) -> Result<()> {
    let extract = args.encoder.extract_options();
    let labels = match (&args.labels_real, &args.labels_candidates) {
        (Some(r), Some(c)) => FringeLabels::Given {
            real: gen_metrics::io::read_labels(r)?,
            candidates: gen_metrics::io::read_labels(c)?,
        },
        _ => {
            if args.cells < 2 {
                return Err(
                    Usage(format!("--cells must be at least 2, got {}", args.cells)).into(),
                );
            }
            FringeLabels::KMeans { k: args.cells }
        }
    };
    let check = match (
        &args.check_encoder,
        &args.check_real,
        &args.check_candidates,
    ) {
        (Some(enc), _, _) => {
            let mut o = extract.clone();
            o.encoder = enc.clone();
            o.model = args.check_model.clone();
            o.layer = None;
            o.resize = None;
            FringeCheck::Encoder(o)
        }
        (None, Some(r), Some(c)) => FringeCheck::Features {
            real: r.into(),
            candidates: c.into(),
        },
        _ => FringeCheck::None,
    };
    let mut attack = FringeAttack::default().seed(args.seed);
    if let Some(n) = args.n {
        attack = attack.subset_size(n);
    }
    if let Method::Weights = args.method {
        attack = attack.method(FringeMethod::Weights(WeightOptimisation::default()));
    }
    let out = FringeEvaluation {
        real: (&args.real).into(),
        candidates: (&args.candidates).into(),
        extract,
        labels,
        check,
        attack,
    }
    .run()?;
    let mut fields = vec![
        ("n", out.selected.len() as f64),
        ("fd_before", out.fd_before),
        ("fd_after", out.fd_after),
    ];
    for (k, v) in [
        ("fd_check_before", out.fd_independent_before),
        ("fd_check_after", out.fd_independent_after),
        ("histogram_l1_before", out.histogram_l1_before),
        ("histogram_l1_after", out.histogram_l1_after),
        ("shortfall", out.shortfall.map(|s| s as f64)),
    ] {
        if let Some(v) = v {
            fields.push((k, v));
        }
    }
    if args.json {
        let map: serde_json::Map<String, serde_json::Value> = fields
            .iter()
            .map(|(k, v)| {
                let v = if matches!(*k, "n" | "shortfall") {
                    serde_json::json!(*v as u64)
                } else {
                    serde_json::json!(v)
                };
                ((*k).to_owned(), v)
            })
            .collect();
        print(&format!("{}\n", serde_json::Value::Object(map)))
    } else {
        let mut s = String::new();
        for (k, v) in fields {
            s.push_str(&format!("{k:<20} {}\n", fmt_value(v)));
        }
        print(&s)
    }
}
