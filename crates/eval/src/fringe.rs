//! The FID fringe-feature attack from sets a user has (folders, `.zip`,
//! feature files): the pipeline's front end to
//! [`gen_metrics_distribution::fringe`] (Kynkäänniemi et al. 2023, "The Role
//! of ImageNet Classes in Fréchet Inception Distance", ICLR).
//!
//! Real and candidate sets are loaded as every evaluation loads them (images
//! are encoded with [`ExtractOptions`], with the feature cache). The attack
//! selects `n` of the candidates so that their labels match the real set's
//! (Top-1 histogram matching) or so that their Gaussian fit moves towards the
//! real one (weight optimisation), and reports FD before (a uniform subset)
//! and after (the selection). Labels come from the caller (classifier top-1
//! labels of both sets) or, where the encoder has no classifier head (the
//! registry Inception has none), from k-means cells of the real features
//! ([`gen_metrics_distribution::fringe::cluster_labels`]). The check space —
//! the paper's CLIP — is a second encoder over the same images or feature
//! files of the same rows: a selection that only matches fringe features
//! gains much less there.
//!
//! Needs the `images` feature (it takes [`ExtractOptions`]). Owns the
//! loading and the plumbing; the attack and its formulas live in
//! `gen-metrics-distribution`.

use gen_metrics_distribution::fringe::{FringeAttack, FringeData, FringeOutput, cluster_labels};
use ndarray::Array2;

use crate::source::{self, SetSource};
use crate::{EvalError, ExtractOptions};

const NAME: &str = "fringe";

/// Where the labels of the histogram matching come from.
#[derive(Debug, Clone)]
pub enum FringeLabels {
    /// k-means cells (`k` of them, seeded) of the real features, every
    /// candidate in its nearest cell.
    KMeans {
        /// Number of cells.
        k: usize,
    },
    /// Labels given by the caller (e.g. a classifier's top-1 classes), one
    /// per real row and one per candidate row.
    Given {
        /// Labels of the real rows.
        real: Vec<usize>,
        /// Labels of the candidate rows.
        candidates: Vec<usize>,
    },
}

/// The independent space the result is checked in.
#[derive(Debug, Clone)]
pub enum FringeCheck {
    /// None.
    None,
    /// The same image sets through a second encoder.
    Encoder(ExtractOptions),
    /// Features of the same rows, given.
    Features {
        /// Real rows in the check space.
        real: SetSource,
        /// Candidate rows in the check space.
        candidates: SetSource,
    },
}

/// A fringe-attack run: sets, labels, check space and the attack's settings.
#[derive(Debug, Clone)]
pub struct FringeEvaluation {
    /// The real set.
    pub real: SetSource,
    /// The candidate pool (at least `n` rows).
    pub candidates: SetSource,
    /// How images are encoded (the attacked space: FID's Inception by default).
    pub extract: ExtractOptions,
    /// Where the labels come from.
    pub labels: FringeLabels,
    /// The independent check space.
    pub check: FringeCheck,
    /// The attack (method, subset size, seed).
    pub attack: FringeAttack,
}

fn rows(set: &SetSource, extract: &ExtractOptions, what: &str) -> Result<Array2<f32>, EvalError> {
    let mut extraction = crate::Extraction::new(extract.clone());
    let loaded = source::load(set, &mut |p: &std::path::Path| extraction.load(p))?;
    loaded.rows().cloned().ok_or_else(|| {
        EvalError::Usage(format!(
            "{}: the fringe attack selects {what} rows, so it needs features or images, not statistics",
            loaded.label
        ))
    })
}

impl FringeEvaluation {
    /// Loads the sets, labels them, runs the attack and checks it.
    ///
    /// # Errors
    /// Loading and encoding errors naming the file; [`EvalError::Usage`] for
    /// statistics files, label counts that differ from the rows, or a check
    /// encoder over sets that are not images; the attack's errors
    /// ([`EvalError::Metric`] named `fringe`: too few candidates, ...).
    pub fn run(&self) -> Result<FringeOutput, EvalError> {
        let real = rows(&self.real, &self.extract, "real")?;
        let cand = rows(&self.candidates, &self.extract, "candidate")?;
        let metric = |error| EvalError::Metric { name: NAME, error };
        let (real_labels, cand_labels) = match &self.labels {
            FringeLabels::KMeans { k } => {
                cluster_labels(real.view(), cand.view(), *k, self.attack.seed).map_err(metric)?
            }
            FringeLabels::Given {
                real: r,
                candidates: c,
            } => {
                if r.len() != real.nrows() || c.len() != cand.nrows() {
                    return Err(EvalError::Usage(format!(
                        "{} real / {} candidate labels for {} / {} rows",
                        r.len(),
                        c.len(),
                        real.nrows(),
                        cand.nrows()
                    )));
                }
                (r.clone(), c.clone())
            }
        };
        let check = match &self.check {
            FringeCheck::None => None,
            FringeCheck::Encoder(options) => {
                if !(self.real.is_image_collection() && self.candidates.is_image_collection()) {
                    return Err(EvalError::Usage(
                        "a check encoder needs the real and candidate sets as images; for feature files give the check space's features instead".into(),
                    ));
                }
                Some((
                    rows(&self.real, options, "real")?,
                    rows(&self.candidates, options, "candidate")?,
                ))
            }
            FringeCheck::Features { real, candidates } => Some((
                rows(real, &self.extract, "real")?,
                rows(candidates, &self.extract, "candidate")?,
            )),
        };
        let mut data = FringeData::new(real.view(), cand.view()).labels(&real_labels, &cand_labels);
        if let Some((r, c)) = &check {
            data = data.independent(r.view(), c.view());
        }
        self.attack.run(&data).map_err(metric)
    }
}
