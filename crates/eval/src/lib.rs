//! # gen-metrics-eval: the evaluation pipeline
//!
//! **Owns:** the path from what a user has to every metric with error bars:
//! sets given as image folders, `.zip` archives, `.npy` feature matrices or
//! uint8 image arrays, statistics or accumulator `.npz` files, or in-memory
//! arrays ([`source`]) -> features (encoded once per set with one shared
//! encoder, cached, with a progress bar: [`extract`]) -> the selected metrics
//! from the [`registry`], their shared work computed once ([`compute`]) ->
//! intervals and pairwise comparisons by resampling ([`intervals`]) -> a
//! [`Report`] (JSON, Markdown, SVG plots: [`report`], [`plots`]). Also the
//! in-process evaluator that training loops call ([`evaluator`]), on the
//! same metric contract.
//!
//! **Must not:** implement a metric (metrics live in their crates and are
//! listed once in [`registry::REGISTRY`]), parse a file format (that is
//! `gen-metrics-io`), or decode images (that is `gen-metrics-features`).
//! The command line is a thin shell over [`Evaluation`].
//!
//! ```no_run
//! use gen_metrics_eval::Evaluation;
//! # fn main() -> Result<(), gen_metrics_eval::EvalError> {
//! let report = Evaluation::between("real/", "generated/").metrics(["fid"]).run()?;
//! println!("FID {}", report.value("fid").unwrap_or(f64::NAN));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod compute;
pub mod error;
pub mod evaluator;
#[cfg(feature = "images")]
pub mod extract;
#[cfg(feature = "images")]
pub mod fringe;
pub mod intervals;
pub mod plots;
pub mod registry;
pub mod report;
pub mod source;

use std::collections::HashSet;
use std::path::Path;

pub use error::EvalError;
pub use evaluator::{Evaluator, EvaluatorState, SideParts};
#[cfg(feature = "images")]
pub use extract::{CacheChoice, ExtractOptions, Extraction};
pub use gen_metrics_metric::{Direction, Input, Metric, Params};
pub use intervals::IntervalOptions;
pub use registry::REGISTRY;
pub use report::{Comparison, Interval, Ranking, Report, SetInfo, SetReport, Settings, Value};
pub use source::{LoadedSet, SetData, SetKind, SetSource};

use gen_metrics_metric::{Inputs, LogLikelihoodPair, SideData, Spec};
use ndarray::{Array1, Array2};

/// The FID Inception's spatial output (`gen_metrics_features::encoder::SPATIAL_LAYER`,
/// repeated here so that a build without the `images` feature names it).
const SPATIAL_LAYER: &str = "spatial";

/// The interval method named in reports.
pub const INTERVAL_METHOD: &str = "random half-splits without replacement: θ̂ ± t·SE, SE² = mean (θ̂_A − θ̂_B)²/4, for the value at the given sample sizes, clipped to the key's range (docs/intervals.md)";

/// Inputs besides the sets: logits, labels and log-likelihoods.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// Classifier logits of the generated samples (IS, IS-inf).
    pub logits: Option<Array2<f32>>,
    /// Class labels of the real samples (CAS).
    pub labels_real: Option<Vec<usize>>,
    /// Class labels of the generated samples (CAS).
    pub labels_fake: Option<Vec<usize>>,
    /// Class labels of the training samples (CAS baseline).
    pub labels_train: Option<Vec<usize>>,
    /// `(log p_data, log p_model)` at the real samples (KL).
    pub log_likelihoods_real: Option<(Array1<f64>, Array1<f64>)>,
    /// `(log p_data, log p_model)` at the generated samples (reverse KL).
    pub log_likelihoods_fake: Option<(Array1<f64>, Array1<f64>)>,
}

/// Sets loaded before [`Evaluation::run_with_encoded`]: by path, with the
/// description of the encoder that made them (for the report).
#[derive(Debug, Clone, Default)]
pub struct EncodedSets {
    /// Loaded sets by the path given to the evaluation.
    pub sets: std::collections::HashMap<std::path::PathBuf, LoadedSet>,
    /// The encoder description (`inception-v3-fid (clean resize, 2048
    /// features, cpu)`), as `Extraction::encoder_description` gives it.
    pub encoder: Option<String>,
}

/// An evaluation: sets, metrics, parameters and intervals, run by
/// [`Evaluation::run`] into a [`Report`].
///
/// ```no_run
/// use gen_metrics_eval::Evaluation;
/// # fn main() -> Result<(), gen_metrics_eval::EvalError> {
/// let report = Evaluation::new()
///     .real("real/")
///     .fake("model_a/")
///     .fake("model_b/")
///     .metrics(["all"])
///     .intervals(50)
///     .run()?;
/// report.write_dir("report/".as_ref())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Evaluation {
    real: Option<SetSource>,
    fakes: Vec<(Option<String>, SetSource)>,
    train: Option<SetSource>,
    extras: Extras,
    metrics: Vec<String>,
    params: Params,
    intervals: IntervalOptions,
    #[cfg(feature = "images")]
    extract: ExtractOptions,
    input_hints: Vec<(Input, String)>,
}

impl Default for Evaluation {
    fn default() -> Self {
        Evaluation::new()
    }
}

impl Evaluation {
    /// An empty evaluation (default metrics `fid`, no intervals).
    pub fn new() -> Self {
        Evaluation {
            real: None,
            fakes: Vec::new(),
            train: None,
            extras: Extras::default(),
            metrics: vec!["fid".into()],
            params: Params::default(),
            intervals: IntervalOptions::default(),
            #[cfg(feature = "images")]
            extract: ExtractOptions::default(),
            input_hints: Vec::new(),
        }
    }

    /// `real` against one generated set.
    pub fn between(real: impl Into<SetSource>, fake: impl Into<SetSource>) -> Self {
        Evaluation::new().real(real).fake(fake)
    }

    /// Sets the real (reference) set.
    pub fn real(mut self, source: impl Into<SetSource>) -> Self {
        self.real = Some(source.into());
        self
    }

    /// Adds a generated set, named after its file or folder.
    pub fn fake(mut self, source: impl Into<SetSource>) -> Self {
        self.fakes.push((None, source.into()));
        self
    }

    /// Adds a generated set with a name for the report.
    pub fn fake_named(mut self, name: impl Into<String>, source: impl Into<SetSource>) -> Self {
        self.fakes.push((Some(name.into()), source.into()));
        self
    }

    /// Sets the training set (memorization metrics, CAS baseline).
    pub fn train(mut self, source: impl Into<SetSource>) -> Self {
        self.train = Some(source.into());
        self
    }

    /// Sets logits, labels and log-likelihoods.
    pub fn extras(mut self, extras: Extras) -> Self {
        self.extras = extras;
        self
    }

    /// Selects metrics by name (`fid`, `kid`, ...; `all`: every metric whose
    /// inputs are given).
    pub fn metrics<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.metrics = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the metric parameters (k, seed, ...).
    pub fn params(mut self, params: Params) -> Self {
        self.params = params;
        self
    }

    /// Seeds every randomized metric and the resampling.
    pub fn seed(mut self, seed: u64) -> Self {
        self.params.seed = seed;
        self.intervals.seed = seed;
        self
    }

    /// Computes intervals from `resamples` resamples (0: none).
    pub fn intervals(mut self, resamples: usize) -> Self {
        self.intervals.resamples = resamples;
        self
    }

    /// Sets the interval options.
    pub fn interval_options(mut self, options: IntervalOptions) -> Self {
        self.intervals = options;
        self
    }

    /// Sets how images are encoded.
    #[cfg(feature = "images")]
    pub fn extract_options(mut self, options: ExtractOptions) -> Self {
        self.extract = options;
        self
    }

    /// How a front end names each input in messages (`--train`, ...): a
    /// missing input's error then says how to give it.
    pub fn input_hints(mut self, hints: Vec<(Input, String)>) -> Self {
        self.input_hints = hints;
        self
    }

    fn has_input(&self, input: Input) -> bool {
        let e = &self.extras;
        match input {
            Input::Real => self.real.is_some(),
            Input::Fake => !self.fakes.is_empty(),
            Input::Train => self.train.is_some(),
            Input::Logits => e.logits.is_some() || self.encoder_logits_output().is_some(),
            Input::LabelsReal => e.labels_real.is_some(),
            Input::LabelsFake => e.labels_fake.is_some(),
            Input::LogLikelihoodsReal => e.log_likelihoods_real.is_some(),
            Input::LogLikelihoodsFake => e.log_likelihoods_fake.is_some(),
        }
    }

    fn hint(&self, input: Input) -> String {
        self.input_hints
            .iter()
            .find(|(i, _)| *i == input)
            .map(|(_, h)| format!(" ({h})"))
            .unwrap_or_default()
    }

    /// The metrics this evaluation will run, checked: names known, every
    /// input present, parameters valid. Nothing is read.
    ///
    /// # Errors
    /// [`EvalError::UnknownMetric`], [`EvalError::MissingInput`],
    /// [`EvalError::Metric`] for invalid parameters, [`EvalError::Usage`].
    pub fn plan(&self) -> Result<Vec<&'static Spec>, EvalError> {
        let selection = registry::resolve(&self.metrics)?;
        let specs = selection.specs_for(|i| self.has_input(i));
        if specs.is_empty() {
            return Err(EvalError::Usage(
                "no metric selected (or none whose inputs are given)".into(),
            ));
        }
        for s in &specs {
            for &input in s.inputs {
                if !self.has_input(input) {
                    return Err(EvalError::MissingInput {
                        metric: s.name,
                        input,
                        hint: self.hint(input),
                    });
                }
            }
        }
        if !(self.intervals.confidence > 0.0 && self.intervals.confidence < 1.0) {
            return Err(EvalError::Usage(format!(
                "the interval confidence must be in (0, 1), got {}",
                self.intervals.confidence
            )));
        }
        if self.fakes.len() > 1 && self.extras.logits.is_some() {
            return Err(EvalError::Usage(
                "logits belong to one generated set; give one generated set with logits".into(),
            ));
        }
        registry::build(&specs, &self.params)?;
        Ok(specs)
    }

    /// The sets in the order [`Evaluation::run`] loads them: real, train,
    /// then the generated sets. A distributed front end encodes the image
    /// collections among them itself ([`Evaluation::run_with_encoded`]).
    pub fn sources(&self) -> Vec<&SetSource> {
        self.real
            .iter()
            .chain(self.train.iter())
            .chain(self.fakes.iter().map(|(_, s)| s))
            .collect()
    }

    /// How images are encoded.
    #[cfg(feature = "images")]
    pub fn extraction_options(&self) -> &ExtractOptions {
        &self.extract
    }

    /// Runs the evaluation.
    ///
    /// # Errors
    /// Everything [`Evaluation::plan`] checks, then loading and encoding
    /// errors naming the file, metric errors naming the metric, and
    /// mismatched feature dimensions.
    pub fn run(&self) -> Result<Report, EvalError> {
        // Usage errors first, before any file is read.
        let specs = self.plan()?;
        self.run_with_encoded(self.prefetch_feature_files(&specs))
    }

    /// Whether the Gaussian statistics of each set are all this evaluation
    /// reads of it: every selected metric reads only the real and generated
    /// sets' Gaussian fits (FID, `fd_eff`: [`Spec::accepts_statistics`], not
    /// the spatial sFID), no `all` selection (which decides per set what can
    /// run), no intervals (resampling needs the rows), no training set.
    fn statistics_suffice(&self, specs: &[&'static Spec]) -> bool {
        let all = registry::resolve(&self.metrics).is_ok_and(|s| s.all);
        !all && self.intervals.resamples == 0
            && self.train.is_none()
            && specs.iter().all(|s| {
                s.accepts_statistics
                    && !registry::SPATIAL.contains(&s.name)
                    && s.inputs
                        .iter()
                        .all(|i| matches!(i, Input::Real | Input::Fake))
            })
    }

    /// The feature files (`.npy` float rows) among the sets, read side by
    /// side before the sets are loaded in order: reading is a real share of a
    /// feature-file evaluation (two 10,000 × 2048 files: 0.085 s of a 1.1 s
    /// `fid`), and two reads overlap on two cores. When the metrics read only
    /// each set's Gaussian fit ([`Evaluation::statistics_suffice`]) a file
    /// with more rows than columns is streamed instead, chunk by chunk, into
    /// its statistics ([`source::stream_statistics`]): the rows are never
    /// held (memory `O(D²)`, not `O(N·D)`), and on a VM where fresh pages
    /// are slow to fault in this takes the read off the clock (docs/benchmarks.md).
    /// A file that is not a feature matrix (a uint8 image array, a damaged
    /// file) is left out here and loaded, or reported, in order as before; a
    /// path given twice is read once here (the second use loads it as usual,
    /// as [`Evaluation::run_with_encoded`] documents).
    fn prefetch_feature_files(&self, specs: &[&'static Spec]) -> EncodedSets {
        use rayon::prelude::*;
        let mut paths: Vec<&std::path::PathBuf> = Vec::new();
        for s in self.sources() {
            if let SetSource::Path(p) = s
                && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy"))
                && !paths.contains(&p)
            {
                paths.push(p);
            }
        }
        let stream = self.statistics_suffice(specs);
        if paths.is_empty() || (paths.len() < 2 && !stream) {
            return EncodedSets::default();
        }
        let streams = std::sync::atomic::AtomicUsize::new(paths.len());
        let sets = paths
            .par_iter()
            .filter_map(|p| {
                if stream && let Some(set) = source::stream_statistics(p, &streams) {
                    return Some(((*p).clone(), set));
                }
                let rows = gen_metrics_io::read_features(p).ok()?;
                Some(((*p).clone(), LoadedSet::features(p, rows)))
            })
            .collect();
        EncodedSets {
            sets,
            encoder: None,
        }
    }

    /// [`Evaluation::run`] with some path sets already loaded (a distributed
    /// evaluation's gathered features, in the source's row order): a path
    /// found in `encoded` is taken from there (once; a second use of the same
    /// path loads it as usual), every other set is loaded as usual. With the
    /// same rows this is the same computation as `run`, so the same numbers.
    ///
    /// # Errors
    /// As [`Evaluation::run`].
    pub fn run_with_encoded(&self, mut encoded: EncodedSets) -> Result<Report, EvalError> {
        let specs = self.plan()?;
        let metrics = registry::build(&specs, &self.params)?;
        #[cfg(feature = "images")]
        let mut extraction = Extraction::new(self.extract.clone());
        let pre_encoder = encoded.encoder.take();
        let mut load = |s: &SetSource| -> Result<LoadedSet, EvalError> {
            if let SetSource::Path(p) = s
                && let Some(set) = encoded.sets.remove(p)
            {
                return Ok(set);
            }
            source::load(s, &mut |p: &Path| {
                #[cfg(feature = "images")]
                {
                    extraction.load(p)
                }
                #[cfg(not(feature = "images"))]
                {
                    Err(EvalError::ImagesDisabled {
                        path: p.to_path_buf(),
                    })
                }
            })
        };
        let real = self.real.as_ref().map(&mut load).transpose()?;
        let train = self.train.as_ref().map(&mut load).transpose()?;
        let mut fakes = Vec::with_capacity(self.fakes.len());
        let mut names = HashSet::new();
        for (i, (name, src)) in self.fakes.iter().enumerate() {
            let set = load(src)?;
            let mut name = name.clone().unwrap_or_else(|| set_name(src, i));
            while !names.insert(name.clone()) {
                name = format!("{name}-{}", i + 1);
            }
            fakes.push((name, set));
        }
        #[cfg(feature = "images")]
        let encoder = extraction.encoder_description().or(pre_encoder);
        #[cfg(not(feature = "images"))]
        let encoder: Option<String> = pre_encoder;
        self.check_dims(real.as_ref(), train.as_ref(), &fakes)?;
        // With `--device cuda`, the distance blocks (float32 k-NN, float64
        // with KID) go to the GPU while the metrics run (same k-NN answers,
        // KID to float64 rounding; `Extraction::gram_device`).
        #[cfg(feature = "images")]
        let _gram = extraction.gram_device()?;
        let e = &self.extras;
        fn pair(p: &Option<(Array1<f64>, Array1<f64>)>) -> Option<LogLikelihoodPair<'_>> {
            p.as_ref().map(|(a, b)| LogLikelihoodPair {
                log_p: a.view(),
                log_q: b.view(),
            })
        }
        // IS from the images: the encoder's logits output, per generated set.
        let needs_logits = specs.iter().any(|s| s.inputs.contains(&Input::Logits));
        let mut logits_left_out: Option<String> = None;
        let image_logits: Option<Vec<(String, LoadedSet)>> = match self.encoder_logits_output() {
            Some(layer) if needs_logits && e.logits.is_none() => {
                match self.load_output(&layer, "images (the encoder's logits output)", None, &fakes)
                {
                    Ok((_, l)) => Some(l),
                    Err(reason) => {
                        let explicit = registry::resolve(&self.metrics)?.specs;
                        if let Some(s) = specs.iter().find(|s| {
                            s.inputs.contains(&Input::Logits)
                                && explicit.iter().any(|x| x.name == s.name)
                        }) {
                            return Err(EvalError::Usage(format!("{}: {reason}", s.name)));
                        }
                        logits_left_out = Some(reason);
                        None
                    }
                }
            }
            _ => None,
        };
        let logits_of = |i: usize| -> Option<ndarray::ArrayView2<'_, f32>> {
            image_logits
                .as_ref()
                .and_then(|l| l.get(i))
                .and_then(|(_, s)| s.rows())
                .map(|r| r.view())
        };
        let base = Inputs {
            real: real.as_ref().map(LoadedSet::side),
            fake: None,
            train: train.as_ref().and_then(LoadedSet::rows).map(|r| r.view()),
            logits: e.logits.as_ref().map(|l| l.view()).or_else(|| logits_of(0)),
            labels_real: e.labels_real.as_deref(),
            labels_fake: e.labels_fake.as_deref(),
            labels_train: e.labels_train.as_deref(),
            log_likelihoods_real: pair(&e.log_likelihoods_real),
            log_likelihoods_fake: pair(&e.log_likelihoods_fake),
        };
        if let Some(t) = &train
            && t.rows().is_none()
        {
            return Err(EvalError::Usage(format!(
                "{}: the training set must be features or images, not statistics",
                t.label
            )));
        }
        let refs: Vec<&dyn Metric> = metrics.iter().map(|m| m.as_ref()).collect();
        // `all` keeps only metrics that can run on what was loaded (a
        // statistics file stands in only for FID-type metrics).
        // A metric `all` added is left out (with the reason) when the sets
        // do not admit it (too few rows for its neighbourhoods, ...).
        let mut left_out = Vec::new();
        if let Some(reason) = logits_left_out {
            for s in specs.iter().filter(|s| s.inputs.contains(&Input::Logits)) {
                left_out.push(format!("{}: {reason}", s.name));
            }
        }
        let refs: Vec<&dyn Metric> = if registry::resolve(&self.metrics)?.all {
            let explicit = registry::resolve(&self.metrics)?.specs;
            refs.into_iter()
                .filter(|m| {
                    if explicit.iter().any(|s| s.name == m.spec().name) {
                        return true;
                    }
                    let kept = fakes
                        .iter()
                        .map(|(_, f)| Some(f.side()))
                        .chain(fakes.is_empty().then_some(None));
                    for fake in kept {
                        let cx = gen_metrics_metric::Context::new(
                            base.with_sides(base.real.map(SideData::reborrow), fake),
                        );
                        if cx.require(m.spec()).is_err() {
                            return false;
                        }
                        if let Err(e) = m.admits(&cx) {
                            left_out.push(format!("{}: {e}", m.spec().name));
                            return false;
                        }
                    }
                    true
                })
                .collect()
        } else {
            refs
        };
        // Metrics on the spatial features (sFID) get their own sets.
        let (spatial_refs, refs): (Vec<&dyn Metric>, Vec<&dyn Metric>) = refs
            .into_iter()
            .partition(|m| registry::SPATIAL.contains(&m.spec().name));
        let spatial = if spatial_refs.is_empty() {
            None
        } else {
            match self.load_spatial(real.as_ref(), &fakes) {
                Ok(s) => Some(s),
                Err(reason) => {
                    let explicit = registry::resolve(&self.metrics)?.specs;
                    for m in &spatial_refs {
                        let name = m.spec().name;
                        if explicit.iter().any(|s| s.name == name) {
                            return Err(EvalError::Usage(format!("{name}: {reason}")));
                        }
                        left_out.push(format!("{name}: {reason}"));
                    }
                    None
                }
            }
        };
        let spatial_refs = if spatial.is_some() {
            spatial_refs
        } else {
            Vec::new()
        };
        let selection = registry::resolve(&self.metrics)?;
        let mut too_small: Vec<&str> = Vec::new();
        let mut sets = Vec::with_capacity(fakes.len());
        // Generated-only metrics (IS from logits) run once with no fake set.
        let runs: Vec<Option<&(String, LoadedSet)>> = if fakes.is_empty() {
            vec![None]
        } else {
            fakes.iter().map(Some).collect()
        };
        for (i, run) in runs.iter().enumerate() {
            let mut inputs = base.with_sides(
                base.real.map(SideData::reborrow),
                run.map(|(_, f)| f.side()),
            );
            if image_logits.is_some() {
                inputs.logits = logits_of(i);
            }
            let (mut outs, dropped) =
                compute::compute_all_optional(&refs, inputs, false, &|s: &Spec| {
                    selection.all && !selection.specs.iter().any(|e| e.name == s.name)
                })?;
            for (name, e) in dropped {
                if !too_small.contains(&name) {
                    too_small.push(name);
                }
                let set = run.map_or("", |(n, _)| n.as_str());
                left_out.push(format!("{name} ({set}): {e}"));
            }
            if let (Some((sr, sf)), Some((name, _))) = (&spatial, run) {
                let fake = sf.iter().find(|(n, _)| n == name).map(|(_, f)| f.side());
                let inputs = base.with_sides(sr.as_ref().map(LoadedSet::side), fake);
                outs.extend(compute::compute_all(&spatial_refs, inputs, false)?);
            }
            let info = match run {
                Some((name, f)) => set_info(name, f),
                None => SetInfo {
                    name: "logits".into(),
                    source: "logits".into(),
                    kind: SetKind::Features,
                    n: e.logits.as_ref().map_or(0, |l| l.nrows()),
                    skipped: Vec::new(),
                },
            };
            sets.push(set_report(info, outs));
        }
        // Metrics `all` added that a set was too small for are left out of
        // the intervals too.
        let refs: Vec<&dyn Metric> = refs
            .into_iter()
            .filter(|m| !too_small.contains(&m.spec().name))
            .collect();
        // Intervals and pairwise comparisons.
        let mut comparisons = Vec::new();
        if self.intervals.resamples > 0 {
            let real_rows = real.as_ref().and_then(LoadedSet::rows);
            let fake_rows: Option<Vec<_>> = fakes.iter().map(|(_, f)| f.rows()).collect();
            match (real_rows, fake_rows) {
                (Some(r), Some(fr)) if !fr.is_empty() => {
                    let views: Vec<_> = fr.iter().map(|a| a.view()).collect();
                    let reps =
                        intervals::replicate(&refs, r.view(), &views, &base, &self.intervals)?;
                    for (set, rep) in sets.iter_mut().zip(&reps) {
                        attach_intervals(set, rep, &self.intervals)?;
                    }
                    // The spatial metrics on the same splits of their own rows.
                    if let Some((Some(sr), sf)) = &spatial
                        && let Some(sr) = sr.rows()
                        && let Some(sfr) =
                            sf.iter().map(|(_, f)| f.rows()).collect::<Option<Vec<_>>>()
                    {
                        let views: Vec<_> = sfr.iter().map(|a| a.view()).collect();
                        let sreps = intervals::replicate(
                            &spatial_refs,
                            sr.view(),
                            &views,
                            &base,
                            &self.intervals,
                        )?;
                        for (set, rep) in sets.iter_mut().zip(&sreps) {
                            attach_intervals(set, rep, &self.intervals)?;
                        }
                    }
                    comparisons = compare(&sets, &reps);
                }
                _ => {
                    for set in &mut sets {
                        for v in &mut set.values {
                            if registry::key_spec(&v.key).is_some_and(|(_, k)| k.interval) {
                                v.note = Some(
                                    "no interval: a set was given as statistics, which cannot be resampled"
                                        .into(),
                                );
                            }
                        }
                    }
                }
            }
        }
        let ranking = (sets.len() > 1).then(|| rank(&sets, comparisons)).flatten();
        Ok(Report {
            settings: Settings {
                version: env!("CARGO_PKG_VERSION"),
                metrics: refs
                    .iter()
                    .chain(&spatial_refs)
                    .map(|m| m.spec().name)
                    .collect(),
                encoder,
                seed: self.params.seed,
                k: self.params.k,
                resamples: self.intervals.resamples,
                confidence: self.intervals.confidence,
                interval_method: INTERVAL_METHOD,
                left_out,
            },
            real: real.as_ref().map(|r| set_info("real", r)),
            train: train.as_ref().map(|t| set_info("train", t)),
            sets,
            ranking,
        })
    }

    /// The sets again, encoded to their spatial features (a second pass of
    /// the same encoder with `layer = spatial`; features come from the
    /// cache when it holds them). `Err` says why they cannot be had.
    #[allow(clippy::type_complexity)]
    fn load_spatial(
        &self,
        real: Option<&LoadedSet>,
        fakes: &[(String, LoadedSet)],
    ) -> Result<(Option<LoadedSet>, Vec<(String, LoadedSet)>), String> {
        #[cfg(feature = "images")]
        {
            let fid_inception = gen_metrics_features::encoder::Preset::InceptionV3Fid.id();
            if self.extract.encoder != fid_inception || self.extract.layer.is_some() {
                return Err(format!(
                    "only the {fid_inception} encoder's pooled features come with spatial ones (encoder {}{})",
                    self.extract.encoder,
                    self.extract
                        .layer
                        .as_deref()
                        .map(|l| format!(", layer {l}"))
                        .unwrap_or_default()
                ));
            }
        }
        self.load_output(
            SPATIAL_LAYER,
            "images encoded by the FID Inception (its `spatial` output); give image folders, or compute `fid` on features written with `--layer spatial`",
            real,
            fakes,
        )
    }

    /// The logits output of the encoder, when it names one
    /// (`EncoderSpec::logits_output`).
    fn encoder_logits_output(&self) -> Option<String> {
        #[cfg(feature = "images")]
        {
            gen_metrics_features::encoder::EncoderSpec::from_name(&self.extract.encoder)
                .ok()?
                .logits_output
        }
        #[cfg(not(feature = "images"))]
        {
            None
        }
    }

    /// The sets again, encoded to the encoder's output `layer` (a second
    /// pass of the same encoder; rows come from the cache when it holds
    /// them). `Err` says why they cannot be had (`needs` says what is
    /// needed).
    #[allow(clippy::type_complexity)]
    fn load_output(
        &self,
        layer: &str,
        needs: &str,
        real: Option<&LoadedSet>,
        fakes: &[(String, LoadedSet)],
    ) -> Result<(Option<LoadedSet>, Vec<(String, LoadedSet)>), String> {
        let path_of = |src: Option<&SetSource>, set: &LoadedSet| match src {
            Some(SetSource::Path(p)) if set.kind == SetKind::Images => Ok(p.clone()),
            _ => Err(format!("needs {needs}, and {} is not images", set.label)),
        };
        let real_path = real.map(|r| path_of(self.real.as_ref(), r)).transpose()?;
        let fake_paths = fakes
            .iter()
            .zip(&self.fakes)
            .map(|((name, f), (_, src))| path_of(Some(src), f).map(|p| (name.clone(), p)))
            .collect::<Result<Vec<_>, _>>()?;
        #[cfg(feature = "images")]
        {
            let mut options = self.extract.clone();
            options.layer = Some(layer.to_owned());
            let mut extraction = Extraction::new(options);
            let mut load = |p: &Path| extraction.load(p).map_err(|e| e.to_string());
            let real = real_path.as_deref().map(&mut load).transpose()?;
            let fakes = fake_paths
                .into_iter()
                .map(|(n, p)| load(&p).map(|s| (n, s)))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((real, fakes))
        }
        #[cfg(not(feature = "images"))]
        {
            let _ = (layer, real_path, fake_paths);
            Err("needs the `images` feature (image encoding)".into())
        }
    }

    fn check_dims(
        &self,
        real: Option<&LoadedSet>,
        train: Option<&LoadedSet>,
        fakes: &[(String, LoadedSet)],
    ) -> Result<(), EvalError> {
        let mut all: Vec<(&str, &LoadedSet)> = Vec::new();
        if let Some(r) = real {
            all.push(("real", r));
        }
        if let Some(t) = train {
            all.push(("train", t));
        }
        for (n, f) in fakes {
            all.push((n, f));
        }
        if let Some((first_name, first)) = all.first() {
            for (name, s) in &all[1..] {
                if s.dim() != first.dim() {
                    return Err(EvalError::Usage(format!(
                        "{first_name} ({}) has {} feature dimensions but {name} ({}) has {}: they must come from the same encoder",
                        first.label,
                        first.dim(),
                        s.label,
                        s.dim()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn set_name(src: &SetSource, i: usize) -> String {
    match src {
        SetSource::Path(p) => p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("generated-{}", i + 1)),
        _ => format!("generated-{}", i + 1),
    }
}

fn set_info(name: &str, s: &LoadedSet) -> SetInfo {
    SetInfo {
        name: name.to_owned(),
        source: s.label.clone(),
        kind: s.kind,
        n: s.count(),
        skipped: s.skipped.clone(),
    }
}

fn set_report(set: SetInfo, outs: Vec<compute::MetricOutcome>) -> SetReport {
    let mut values = Vec::new();
    let mut per_sample = Vec::new();
    let mut curves = Vec::new();
    for o in outs {
        for (key, value) in o.outcome.values {
            let ks = o.spec.key(&key);
            let direction = ks.map_or_else(|| dynamic_direction(o.spec), |k| k.direction);
            let note = ks
                .filter(|k| k.can_be_negative && value < 0.0)
                .map(|_| {
                    "below zero: an unbiased / extrapolated estimator of a non-negative quantity; the sets are indistinguishable within the estimator's error".to_owned()
                });
            values.push(Value {
                metric: o.spec.name,
                key,
                value,
                direction,
                interval: None,
                note,
            });
        }
        per_sample.extend(o.outcome.per_sample);
        curves.extend(o.outcome.curves);
    }
    SetReport {
        set,
        values,
        per_sample,
        curves,
    }
}

/// Dynamic keys (`cas_class_<c>`) share the direction of their metric's first key.
fn dynamic_direction(spec: &Spec) -> Direction {
    spec.keys
        .first()
        .map_or(Direction::NotAScore, |k| k.direction)
}

fn attach_intervals(
    set: &mut SetReport,
    rep: &intervals::Replicates,
    options: &IntervalOptions,
) -> Result<(), EvalError> {
    for v in &mut set.values {
        if let Some((_, note)) = rep.too_small.iter().find(|(n, _)| n == v.metric) {
            v.note.get_or_insert_with(|| note.clone());
            continue;
        }
        if let Some(ci) = intervals::interval(v.value, rep, &v.key, options) {
            let ci = ci?;
            // The population value lies in the key's range, so clipping the
            // symmetric interval to it never loses coverage.
            let (lo, hi) = registry::key_spec(&v.key)
                .map_or((f64::NEG_INFINITY, f64::INFINITY), |(_, k)| k.range);
            v.interval = Some(Interval {
                low: ci.low.clamp(lo, hi),
                high: ci.high.clamp(lo, hi),
            });
        }
    }
    Ok(())
}

fn compare(sets: &[SetReport], reps: &[intervals::Replicates]) -> Vec<Comparison> {
    let mut out = Vec::new();
    let Some(first) = reps.first() else {
        return out;
    };
    for key in &first.keys {
        let Some((_, ks)) = registry::key_spec(key) else {
            continue;
        };
        if ks.direction == Direction::NotAScore {
            continue;
        }
        for a in 0..sets.len() {
            for b in (a + 1)..sets.len() {
                let (Some(pa), Some(pb)) = (reps[a].pairs(key), reps[b].pairs(key)) else {
                    continue;
                };
                // Both halves of every split: the two sets on the same real half.
                let duels: Vec<(f64, f64)> = pa
                    .iter()
                    .zip(&pb)
                    .flat_map(|(x, y)| [(x.0, y.0), (x.1, y.1)])
                    .collect();
                if duels.is_empty() {
                    continue;
                }
                let wins: f64 = duels
                    .iter()
                    .map(|&(x, y)| match ks.direction.better(x, y) {
                        Some(true) => 1.0,
                        Some(false) if x == y => 0.5,
                        _ => 0.0,
                    })
                    .sum();
                out.push(Comparison {
                    key: key.clone(),
                    a: sets[a].set.name.clone(),
                    b: sets[b].set.name.clone(),
                    a_better: wins / duels.len() as f64,
                });
            }
        }
    }
    out
}

fn rank(sets: &[SetReport], comparisons: Vec<Comparison>) -> Option<Ranking> {
    let first = sets.first()?;
    let key = first
        .values
        .iter()
        .find(|v| v.direction != Direction::NotAScore && v.direction != Direction::CloserToZero)?;
    let dir = key.direction;
    let mut order: Vec<(&str, f64)> = sets
        .iter()
        .filter_map(|s| s.get(&key.key).map(|v| (s.set.name.as_str(), v.value)))
        .collect();
    order.sort_by(|a, b| match dir {
        Direction::HigherIsBetter => b.1.total_cmp(&a.1),
        _ => a.1.total_cmp(&b.1),
    });
    Some(Ranking {
        key: key.key.clone(),
        order: order.into_iter().map(|(n, _)| n.to_owned()).collect(),
        comparisons,
    })
}
