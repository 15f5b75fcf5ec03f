//! # gen-metrics-metric: the one metric contract
//!
//! **Owns:** the shape every metric of gen-metrics has, whatever it measures
//! (distribution distance, fidelity/diversity, memorization, divergence,
//! classification accuracy):
//!
//! * a static [`Spec`]: the name users type (`--metrics fid`), the inputs it
//!   needs ([`Input`]), the report keys it produces ([`KeySpec`]: key,
//!   direction, whether an interval is computed for it), the paper and the
//!   reference code it matches, and a constructor from user [`Params`] that
//!   validates them before any feature is read (linfa's `ParamGuard`);
//! * the [`Metric`] trait: `plan` declares the shared work it reads
//!   ([`Need`]: k-NN radii of a set for a k, the Gaussian fit of a set),
//!   `evaluate` reads the [`Context`] and returns an [`Outcome`] (named values,
//!   per-sample scores, curves);
//! * the [`Context`]: the inputs of one evaluation and the shared work,
//!   computed once per `(set, k)` or per set however many metrics ask
//!   (compute groups keyed by parameters, never by value);
//! * the one error type of the metric crates, [`MetricError`], and the input
//!   checks ([`validate`]) that turn bad input into it before arithmetic.
//!
//! **Must not:** know any concrete metric (the registry that lists them lives
//! in `gen-metrics-eval`), read files, run encoders, or resample (intervals
//! are the pipeline's). The shared work calls `gen-metrics-linalg` and nothing
//! else, so its results are bit-identical to a metric computing them alone.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod context;
pub mod error;
pub mod validate;

pub use context::{Context, Inputs, KernelNeed, LogLikelihoodPair, Need, Plan, Set, SideData};
pub use error::MetricError;

use serde::Serialize;

/// An input a metric can need. The evaluation checks that every input of the
/// selected metrics is present before any work starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Input {
    /// Real (reference) features, rows `[N, D]` (or their statistics for
    /// metrics that accept them, see [`Spec::accepts_statistics`]).
    Real,
    /// Generated features `[M, D]`.
    Fake,
    /// Training-set features (memorization tests).
    Train,
    /// Classifier logits of the generated samples `[M, C]` (IS).
    Logits,
    /// Class labels of the real samples (CAS).
    LabelsReal,
    /// Class labels of the generated samples (CAS).
    LabelsFake,
    /// `log p_data` and `log p_model` at the real samples (KL).
    LogLikelihoodsReal,
    /// `log p_data` and `log p_model` at the generated samples (reverse KL).
    LogLikelihoodsFake,
}

impl Input {
    /// A short human description ("real features", "generated logits", ...).
    pub fn describe(self) -> &'static str {
        match self {
            Input::Real => "real features",
            Input::Fake => "generated features",
            Input::Train => "training features",
            Input::Logits => "classifier logits of the generated samples",
            Input::LabelsReal => "class labels of the real samples",
            Input::LabelsFake => "class labels of the generated samples",
            Input::LogLikelihoodsReal => {
                "log-likelihoods (log p_data, log p_model) at the real samples"
            }
            Input::LogLikelihoodsFake => {
                "log-likelihoods (log p_data, log p_model) at the generated samples"
            }
        }
    }
}

impl std::fmt::Display for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Which way a report key improves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (precision, recall, IS, CAS, ...).
    HigherIsBetter,
    /// Smaller is better (FID, KID, KL, ...).
    LowerIsBetter,
    /// Closer to zero is better (C_T: negative means copying, positive
    /// under-fitting).
    CloserToZero,
    /// A diagnostic, not a score (a standard error, a count).
    NotAScore,
}

impl Direction {
    /// `true` when `a` is strictly better than `b` under this direction
    /// (`None` for [`Direction::NotAScore`]).
    pub fn better(self, a: f64, b: f64) -> Option<bool> {
        match self {
            Direction::HigherIsBetter => Some(a > b),
            Direction::LowerIsBetter => Some(a < b),
            Direction::CloserToZero => Some(a.abs() < b.abs()),
            Direction::NotAScore => None,
        }
    }

    /// A short arrow for tables: `↑`, `↓`, `→0` or empty.
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::HigherIsBetter => "↑",
            Direction::LowerIsBetter => "↓",
            Direction::CloserToZero => "→0",
            Direction::NotAScore => "",
        }
    }
}

/// One report key of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KeySpec {
    /// The JSON key (`fid`, `kid_mean`, `precision`, ...).
    pub key: &'static str,
    /// Which way it improves.
    pub direction: Direction,
    /// Whether the pipeline computes a confidence interval for it (a function
    /// of the (real, generated) rows that resampling can re-evaluate).
    pub interval: bool,
    /// Whether the value is an estimator that can fall below zero when the
    /// two sets are indistinguishable (KID's unbiased MMD², FD-inf's
    /// extrapolation): the report then says so instead of printing a bare
    /// negative "distance".
    pub can_be_negative: bool,
    /// One line: what the value is.
    pub about: &'static str,
    /// The values the key can take, `(low, high)`; intervals are clipped to
    /// it (a share is in `[0, 1]`, a distance `≥ 0`).
    #[serde(skip)]
    pub range: (f64, f64),
}

impl KeySpec {
    /// A key with no interval that is never negative.
    pub const fn new(key: &'static str, direction: Direction, about: &'static str) -> Self {
        KeySpec {
            key,
            direction,
            interval: false,
            can_be_negative: false,
            about,
            range: (f64::NEG_INFINITY, f64::INFINITY),
        }
    }

    /// The same key with values in `[low, high]`.
    pub const fn within(mut self, low: f64, high: f64) -> Self {
        self.range = (low, high);
        self
    }

    /// The same key with values in `[0, 1]` (a share).
    pub const fn share(self) -> Self {
        self.within(0.0, 1.0)
    }

    /// The same key with values `≥ 0` (a distance, a count).
    pub const fn non_negative(self) -> Self {
        self.within(0.0, f64::INFINITY)
    }

    /// The same key with a confidence interval.
    pub const fn with_interval(mut self) -> Self {
        self.interval = true;
        self
    }

    /// The same key, marked as an estimator that can be below zero.
    pub const fn signed_estimator(mut self) -> Self {
        self.can_be_negative = true;
        self
    }
}

/// User parameters shared by the registry's constructors. Each metric reads
/// what concerns it and validates it in [`Spec::make`].
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Neighbourhood size override of the k-NN metrics (pr, prdc, realism,
    /// rarity); `None`: each metric's published default.
    pub k: Option<usize>,
    /// Seed of every randomized metric (same seed, same numbers).
    pub seed: u64,
    /// Coverage of the intervals a metric reports itself (KL's standard
    /// errors), in (0, 1).
    pub confidence: f64,
    /// KID subset size override (`None`: min(1000, N, M)).
    pub kid_subset_size: Option<usize>,
    /// KID number of subsets override (`None`: 100).
    pub kid_subsets: Option<usize>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            k: None,
            seed: 0,
            confidence: 0.95,
            kid_subset_size: None,
            kid_subsets: None,
        }
    }
}

impl Params {
    /// Checks the shared parameters.
    ///
    /// # Errors
    /// [`MetricError::InvalidParameter`] for k = 0 or a confidence outside (0, 1).
    pub fn check(&self, metric: &'static str) -> Result<(), MetricError> {
        if self.k == Some(0) {
            return Err(MetricError::InvalidParameter {
                metric,
                detail: "k must be at least 1".into(),
            });
        }
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(MetricError::InvalidParameter {
                metric,
                detail: format!("confidence must be in (0, 1), got {}", self.confidence),
            });
        }
        Ok(())
    }
}

/// The static description of a metric: everything the registry, the command
/// line, the README table, the JSON keys and the intervals read.
#[derive(Clone, Copy)]
pub struct Spec {
    /// The name users select (`--metrics fid`).
    pub name: &'static str,
    /// One line: what it measures.
    pub about: &'static str,
    /// The paper (authors, year) and the reference implementation matched.
    pub reference: &'static str,
    /// Inputs it needs; a missing one is an error before any work.
    pub inputs: &'static [Input],
    /// Whether Gaussian statistics (a pytorch-fid / clean-fid `.npz`) may
    /// stand in for the rows of a set.
    pub accepts_statistics: bool,
    /// The fixed report keys, in report order.
    pub keys: &'static [KeySpec],
    /// Keys the metric adds per class or item, documented as a pattern
    /// (e.g. `cas_class_<c>`); `None` when it has only [`Spec::keys`].
    pub dynamic_keys: Option<&'static str>,
    /// Builds the metric from user parameters, validating them first.
    pub make: fn(&Params) -> Result<Box<dyn Metric>, MetricError>,
}

impl std::fmt::Debug for Spec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spec")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl Spec {
    /// The key spec of `key` (fixed keys only).
    pub fn key(&self, key: &str) -> Option<&'static KeySpec> {
        self.keys.iter().find(|k| k.key == key)
    }
}

/// A per-sample score series (one value per generated sample, say), for
/// histograms and for finding the samples behind a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PerSample {
    /// Series name (`realism`).
    pub key: &'static str,
    /// Which set the samples belong to.
    pub set: Set,
    /// One value per sample (samples with no defined score are left out and
    /// counted in the metric's keys).
    pub values: Vec<f64>,
}

/// A curve a metric produced (FID against 1/N for FD-inf), with the fitted
/// line when there is one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    /// Curve name (`fd_vs_inverse_n`).
    pub key: &'static str,
    /// Label of x.
    pub x_label: &'static str,
    /// Label of y.
    pub y_label: &'static str,
    /// Points `(x, y)`.
    pub points: Vec<(f64, f64)>,
    /// Fitted line `y = intercept + slope · x`, if any.
    pub line: Option<(f64, f64)>,
}

/// What a metric returns: named values in report order, and optional
/// per-sample series and curves for the report's plots.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Outcome {
    /// `(key, value)` in report order; every value finite (the pipeline
    /// refuses a non-finite one with an error naming the key).
    pub values: Vec<(String, f64)>,
    /// Per-sample series.
    pub per_sample: Vec<PerSample>,
    /// Curves.
    pub curves: Vec<Curve>,
}

impl Outcome {
    /// An empty outcome.
    pub fn new() -> Self {
        Outcome::default()
    }

    /// Adds `key = value`.
    pub fn value(mut self, key: impl Into<String>, value: f64) -> Self {
        self.values.push((key.into(), value));
        self
    }

    /// Adds a per-sample series.
    pub fn per_sample(mut self, key: &'static str, set: Set, values: Vec<f64>) -> Self {
        self.per_sample.push(PerSample { key, set, values });
        self
    }

    /// Adds a curve.
    pub fn curve(mut self, curve: Curve) -> Self {
        self.curves.push(curve);
        self
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }
}

/// The one trait every metric implements (the shape of `burn`'s `Metric` and
/// `linfa`'s `Fit`): a validated configuration that declares the shared work
/// it reads and evaluates its keys from a [`Context`].
///
/// A metric computed alone and the same metric computed beside any other
/// selection give identical values: shared work is keyed by its parameters
/// (set, k), and computed exactly as the metric would compute it alone.
pub trait Metric: Send + Sync + std::fmt::Debug {
    /// The static description.
    fn spec(&self) -> &'static Spec;

    /// Declares the shared work this metric reads (default: none).
    fn plan(&self, _plan: &mut Plan) {}

    /// Computes the metric's keys.
    ///
    /// # Errors
    /// [`MetricError`] for missing or bad inputs, parameters out of range for
    /// the given sets, or a numerical failure.
    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError>;

    /// Whether the given sets are large enough for this metric (default:
    /// yes), checked before any work. `--metrics all` leaves out, with the
    /// reason in the report's settings, a metric the data do not admit; a
    /// metric named explicitly fails with this error instead.
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] (or another input error) saying what
    /// the metric needs.
    fn admits(&self, _cx: &Context<'_>) -> Result<(), MetricError> {
        Ok(())
    }
}
