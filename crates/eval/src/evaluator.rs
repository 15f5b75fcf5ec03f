//! The in-process evaluator for training loops, on the metric contract.
//!
//! A training framework creates one [`Evaluator`] with the metrics it wants
//! (any of the registry's, as for [`crate::Evaluation`]), feeds it batches of
//! real and generated features (or images, with an encoder) as they come,
//! and asks for the values every N steps:
//!
//! * [`Evaluator::update_real`] / [`Evaluator::update_fake`] add feature rows
//!   (`update_real_images` / `update_fake_images` encode images first);
//! * [`Evaluator::compute`] evaluates every selected metric now;
//! * [`Evaluator::reset_fake`] starts a new round, keeping the real side
//!   (computed once);
//! * [`Evaluator::merge`] adds another evaluator's [`EvaluatorState`]
//!   (data-parallel ranks; explicit and free of communication).
//!
//! **Memory.** Each side always keeps a streaming [`GaussianAccumulator`]
//! (float64 mean and co-moment, Chan et al. pairwise updates): `O(D²)`
//! whatever the number of rows, which is all FID, FD and MiFID's statistics
//! need (those metrics read the exact statistics of every row, never a
//! sample). Rows are kept only when a selected metric needs them (KID, the
//! k-NN metrics, memorization tests): `4·D` bytes per row per side (8 KiB
//! for 2048-d Inception features: 80 MiB per 10,000 images), and with
//! [`EvaluatorOptions::max_rows`] at most that many per side, as a uniform
//! random sample of all rows seen (reservoir sampling, Vitter's Algorithm R,
//! seeded; merging two reservoirs draws from each in proportion to the rows
//! it has seen, so the merged reservoir is again a uniform sample of the
//! union). IS needs logits, which this evaluator does not take.

use gen_metrics_linalg::{AccumulatorParts, GaussianAccumulator};
use gen_metrics_metric::{Inputs, Metric, Set, SideData};
use ndarray::{Array2, ArrayView2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::EvalError;
use crate::compute::{MetricOutcome, compute_all};
use crate::registry;

/// Evaluator settings.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluatorOptions {
    /// Metric names (as `--metrics`; `all` is not accepted here).
    pub metrics: Vec<String>,
    /// Metric parameters (k, seed, ...).
    pub params: gen_metrics_metric::Params,
    /// At most this many rows kept per side for the metrics that need rows
    /// (`None`: all rows). FID-type metrics are unaffected.
    pub max_rows: Option<usize>,
    /// Seed of the reservoir sampling.
    pub seed: u64,
}

impl Default for EvaluatorOptions {
    fn default() -> Self {
        EvaluatorOptions {
            metrics: vec!["fid".into()],
            params: gen_metrics_metric::Params::default(),
            max_rows: None,
            seed: 0,
        }
    }
}

/// One side: streaming statistics and, when needed, a (reservoir of) rows.
#[derive(Debug, Clone, Default)]
pub struct SideState {
    acc: Option<GaussianAccumulator>,
    rows: Vec<Vec<f32>>,
    dim: usize,
    seen: u64,
}

impl SideState {
    /// Rows seen on this side.
    pub fn count(&self) -> usize {
        self.acc.as_ref().map_or(0, GaussianAccumulator::count)
    }

    /// The accumulator (after the first batch).
    pub fn accumulator(&self) -> Option<&GaussianAccumulator> {
        self.acc.as_ref()
    }

    /// The kept rows `[n, D]` (empty when no selected metric needs rows).
    pub fn rows(&self) -> Array2<f32> {
        let flat: Vec<f32> = self.rows.iter().flatten().copied().collect();
        Array2::from_shape_vec((self.rows.len(), self.dim), flat)
            .unwrap_or_else(|_| Array2::zeros((0, self.dim)))
    }

    /// The state as plain data, to send to another process (a rank of a
    /// distributed training loop) and rebuild there with
    /// [`SideState::from_parts`].
    pub fn to_parts(&self) -> SideParts {
        SideParts {
            accumulator: self.acc.as_ref().map(GaussianAccumulator::to_parts),
            dim: self.dim,
            rows: self.rows(),
            seen: self.seen,
        }
    }

    /// Rebuilds a side from [`SideState::to_parts`].
    ///
    /// # Errors
    /// [`EvalError::Usage`] for an invalid accumulator state or rows of
    /// another dimension.
    pub fn from_parts(parts: SideParts) -> Result<Self, EvalError> {
        let acc = parts
            .accumulator
            .map(GaussianAccumulator::from_parts)
            .transpose()
            .map_err(usage)?;
        let dim = acc.as_ref().map_or(parts.dim, GaussianAccumulator::dim);
        if parts.rows.nrows() > 0 && parts.rows.ncols() != dim {
            return Err(usage(format!(
                "kept rows have {} columns, the statistics {dim}",
                parts.rows.ncols()
            )));
        }
        Ok(SideState {
            acc,
            rows: parts.rows.outer_iter().map(|r| r.to_vec()).collect(),
            dim,
            seen: parts.seen,
        })
    }

    fn push(
        &mut self,
        rows: ArrayView2<'_, f32>,
        keep: bool,
        cap: Option<usize>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), EvalError> {
        if rows.nrows() == 0 {
            return Ok(());
        }
        let mut acc = match &self.acc {
            Some(a) => a.clone(),
            None => GaussianAccumulator::new(rows.ncols()).map_err(usage)?,
        };
        // Validated (dimension, finiteness) before anything changes.
        acc.push(rows).map_err(usage)?;
        self.acc = Some(acc);
        self.dim = rows.ncols();
        if keep {
            for r in rows.outer_iter() {
                self.seen += 1;
                match cap {
                    Some(c) if self.rows.len() >= c => {
                        // Algorithm R: keep row t with probability c/t.
                        let j = rng.random_range(0..self.seen);
                        if (j as usize) < c {
                            self.rows[j as usize] = r.to_vec();
                        }
                    }
                    _ => self.rows.push(r.to_vec()),
                }
            }
        }
        Ok(())
    }

    fn merge(
        &mut self,
        other: &SideState,
        cap: Option<usize>,
        rng: &mut ChaCha8Rng,
    ) -> Result<(), EvalError> {
        if let Some(o) = &other.acc {
            match &mut self.acc {
                Some(a) => a.merge(o).map_err(usage)?,
                None => self.acc = Some(o.clone()),
            }
            self.dim = o.dim();
        }
        let (na, nb) = (self.seen, other.seen);
        let mut a = std::mem::take(&mut self.rows);
        let mut b = other.rows.clone();
        self.seen = na + nb;
        match cap {
            Some(c) if a.len() + b.len() > c => {
                // Each slot comes from A with probability (rows A has seen
                // and not yet given) / (rows both have seen and not given).
                let (mut ra, mut rb) = (na, nb);
                let mut out = Vec::with_capacity(c);
                while out.len() < c && (!a.is_empty() || !b.is_empty()) {
                    let from_a = if a.is_empty() {
                        false
                    } else if b.is_empty() {
                        true
                    } else {
                        rng.random_range(0..(ra + rb)) < ra
                    };
                    let (src, seen) = if from_a {
                        (&mut a, &mut ra)
                    } else {
                        (&mut b, &mut rb)
                    };
                    let i = rng.random_range(0..src.len());
                    out.push(src.swap_remove(i));
                    *seen = seen.saturating_sub(1);
                }
                self.rows = out;
            }
            _ => {
                a.append(&mut b);
                self.rows = a;
            }
        }
        Ok(())
    }
}

/// A [`SideState`] as plain data ([`SideState::to_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SideParts {
    /// The streaming statistics (`None` before the first batch).
    pub accumulator: Option<AccumulatorParts>,
    /// Feature dimension (0 before the first batch).
    pub dim: usize,
    /// The kept rows `[n, D]` (empty when no selected metric needs rows).
    pub rows: Array2<f32>,
    /// Rows seen (the reservoir's denominator).
    pub seen: u64,
}

fn usage(e: impl std::fmt::Display) -> EvalError {
    EvalError::Usage(format!("evaluator: {e}"))
}

/// Everything an evaluator has accumulated: what [`Evaluator::merge`] combines.
#[derive(Debug, Clone, Default)]
pub struct EvaluatorState {
    /// The encoder the features came from, when images were encoded (merging
    /// needs the same one).
    pub encoder: Option<String>,
    /// The real side.
    pub real: SideState,
    /// The generated side.
    pub fake: SideState,
}

/// Streams real and generated features and evaluates the selected metrics
/// on demand.
#[derive(Debug)]
pub struct Evaluator {
    options: EvaluatorOptions,
    metrics: Vec<Box<dyn Metric>>,
    keep_rows: bool,
    rng: ChaCha8Rng,
    state: EvaluatorState,
    #[cfg(feature = "images")]
    encoder: Option<gen_metrics_features::Encoder>,
}

/// A batch of images for [`Evaluator::update_real_images`] /
/// [`Evaluator::update_fake_images`].
#[cfg(feature = "images")]
#[derive(Debug, Clone, Copy)]
pub enum ImageBatch<'a> {
    /// 8-bit RGB `[N, H, W, 3]`.
    U8Nhwc(ndarray::ArrayView4<'a, u8>),
    /// Floating-point RGB `[N, 3, H, W]` with values in the given range.
    F32Nchw(
        ndarray::ArrayView4<'a, f32>,
        gen_metrics_features::ValueRange,
    ),
}

impl Evaluator {
    /// An evaluator for `options.metrics` on features.
    ///
    /// # Errors
    /// Unknown metric names, `all`, invalid parameters, a metric whose inputs
    /// the evaluator cannot give (logits, labels, log-likelihoods, a training
    /// set), or `max_rows` below 2.
    pub fn new(options: EvaluatorOptions) -> Result<Self, EvalError> {
        let selection = registry::resolve(&options.metrics)?;
        if selection.all {
            return Err(EvalError::Usage(
                "evaluator: name the metrics; `all` is for evaluations of files".into(),
            ));
        }
        for s in &selection.specs {
            if let Some(&input) = s.inputs.iter().find(|i| {
                !matches!(
                    i,
                    gen_metrics_metric::Input::Real | gen_metrics_metric::Input::Fake
                )
            }) {
                return Err(EvalError::MissingInput {
                    metric: s.name,
                    input,
                    hint: " (the training-loop evaluator takes real and generated features only)"
                        .into(),
                });
            }
        }
        if options.max_rows.is_some_and(|c| c < 2) {
            return Err(EvalError::Usage(
                "evaluator: max_rows must be at least 2".into(),
            ));
        }
        let metrics = registry::build(&selection.specs, &options.params)?;
        let keep_rows = selection.specs.iter().any(|s| !s.accepts_statistics);
        Ok(Evaluator {
            rng: ChaCha8Rng::seed_from_u64(options.seed),
            options,
            metrics,
            keep_rows,
            state: EvaluatorState::default(),
            #[cfg(feature = "images")]
            encoder: None,
        })
    }

    /// An evaluator that encodes images with `encoder`.
    ///
    /// # Errors
    /// As [`Evaluator::new`].
    #[cfg(feature = "images")]
    pub fn with_encoder(
        encoder: gen_metrics_features::Encoder,
        options: EvaluatorOptions,
    ) -> Result<Self, EvalError> {
        let mut ev = Evaluator::new(options)?;
        let id = encoder.identity();
        ev.state.encoder = Some(format!(
            "{} (weights {}, resize {})",
            id.encoder, id.weights_sha256, id.resize
        ));
        ev.encoder = Some(encoder);
        Ok(ev)
    }

    /// Whether rows are kept (some selected metric needs them).
    pub fn keeps_rows(&self) -> bool {
        self.keep_rows
    }

    /// The accumulated state (to send to another rank).
    pub fn state(&self) -> &EvaluatorState {
        &self.state
    }

    /// The feature width every batch must have: the encoder's, else that of
    /// the rows seen so far.
    fn expected_dim(&self) -> Option<usize> {
        #[cfg(feature = "images")]
        if let Some(e) = &self.encoder
            && e.output_dim() > 0
        {
            return Some(e.output_dim());
        }
        [&self.state.real, &self.state.fake]
            .iter()
            .find(|s| s.count() > 0)
            .map(|s| s.dim)
    }

    fn check_dim(&self, rows: ArrayView2<'_, f32>) -> Result<(), EvalError> {
        match self.expected_dim() {
            Some(d) if d != rows.ncols() => Err(EvalError::Usage(format!(
                "evaluator: a batch of {} feature columns, expected {d}",
                rows.ncols()
            ))),
            _ => Ok(()),
        }
    }

    /// Real rows seen.
    pub fn real_count(&self) -> usize {
        self.state.real.count()
    }

    /// Generated rows seen.
    pub fn fake_count(&self) -> usize {
        self.state.fake.count()
    }

    /// Adds real feature rows `[N, D]`. Nothing is added on error.
    ///
    /// # Errors
    /// Another dimension than earlier rows, non-finite values.
    pub fn update_real(&mut self, rows: ArrayView2<'_, f32>) -> Result<(), EvalError> {
        self.check_dim(rows)?;
        let cap = self.options.max_rows;
        self.state
            .real
            .push(rows, self.keep_rows, cap, &mut self.rng)
    }

    /// Adds generated feature rows `[N, D]`. Nothing is added on error.
    ///
    /// # Errors
    /// As [`Evaluator::update_real`].
    pub fn update_fake(&mut self, rows: ArrayView2<'_, f32>) -> Result<(), EvalError> {
        self.check_dim(rows)?;
        let cap = self.options.max_rows;
        self.state
            .fake
            .push(rows, self.keep_rows, cap, &mut self.rng)
    }

    #[cfg(feature = "images")]
    fn encode(&mut self, batch: ImageBatch<'_>) -> Result<Array2<f32>, EvalError> {
        let enc = self.encoder.as_mut().ok_or_else(|| {
            EvalError::Usage("evaluator: built without an encoder (use with_encoder)".into())
        })?;
        Ok(match batch {
            ImageBatch::U8Nhwc(b) => enc.encode_u8_nhwc(b)?,
            ImageBatch::F32Nchw(b, range) => enc.encode_f32_nchw(b, range)?,
        })
    }

    /// Encodes real images and adds their features; returns how many. Any
    /// number of images per call: the encoder runs them a batch at a time
    /// (its batch size), preprocessing the next batch while one runs, so
    /// memory does not grow with the call.
    ///
    /// # Errors
    /// Encoder errors; as [`Evaluator::update_real`].
    #[cfg(feature = "images")]
    pub fn update_real_images(&mut self, batch: ImageBatch<'_>) -> Result<usize, EvalError> {
        let rows = self.encode(batch)?;
        self.update_real(rows.view())?;
        Ok(rows.nrows())
    }

    /// Encodes generated images and adds their features; returns how many.
    ///
    /// # Errors
    /// As [`Evaluator::update_real_images`].
    #[cfg(feature = "images")]
    pub fn update_fake_images(&mut self, batch: ImageBatch<'_>) -> Result<usize, EvalError> {
        let rows = self.encode(batch)?;
        self.update_fake(rows.view())?;
        Ok(rows.nrows())
    }

    /// Evaluates every selected metric on what has been accumulated:
    /// FID-type metrics on the exact statistics of all rows, the others on
    /// the kept rows.
    ///
    /// # Errors
    /// A side without rows yet, too few rows for a metric, metric failures.
    pub fn compute(&self) -> Result<Vec<MetricOutcome>, EvalError> {
        let stats = |s: &SideState, set: Set| {
            s.acc
                .as_ref()
                .ok_or_else(|| {
                    EvalError::Usage(format!("evaluator: no {} rows accumulated", set.name()))
                })
                .and_then(|a| a.finalize(1).map_err(usage))
        };
        let (rs, fs) = (
            stats(&self.state.real, Set::Real)?,
            stats(&self.state.fake, Set::Fake)?,
        );
        let (rr, fr) = (self.state.real.rows(), self.state.fake.rows());
        let mut out = Vec::with_capacity(self.metrics.len());
        for m in &self.metrics {
            let inputs = if m.spec().accepts_statistics {
                Inputs {
                    real: Some(SideData::Stats(&rs)),
                    fake: Some(SideData::Stats(&fs)),
                    ..Inputs::default()
                }
            } else {
                Inputs {
                    real: Some(SideData::Rows(rr.view())),
                    fake: Some(SideData::Rows(fr.view())),
                    ..Inputs::default()
                }
            };
            out.extend(compute_all(&[m.as_ref()], inputs, false)?);
        }
        Ok(out)
    }

    /// The value of `key` from [`Evaluator::compute`].
    ///
    /// # Errors
    /// As [`Evaluator::compute`]; a key no selected metric gives.
    pub fn value(&self, key: &str) -> Result<f64, EvalError> {
        self.compute()?
            .iter()
            .find_map(|o| o.outcome.get(key))
            .ok_or_else(|| EvalError::Usage(format!("evaluator: no selected metric gives '{key}'")))
    }

    /// Forgets the generated side (a new round); the real side is kept.
    pub fn reset_fake(&mut self) {
        self.state.fake = SideState::default();
    }

    /// Forgets both sides.
    pub fn reset(&mut self) {
        self.state.real = SideState::default();
        self.state.fake = SideState::default();
    }

    /// Adds another evaluator's state (another data-parallel rank): real to
    /// real, generated to generated. The statistics are those of all rows;
    /// kept rows are concatenated (or, with `max_rows`, merged as
    /// reservoirs). A failure leaves this evaluator unchanged.
    ///
    /// # Errors
    /// States from different encoders, or of another dimension.
    pub fn merge(&mut self, other: &EvaluatorState) -> Result<(), EvalError> {
        if other.encoder != self.state.encoder {
            return Err(EvalError::Usage(format!(
                "evaluator: cannot merge a state from encoder {:?} into one from {:?}",
                other.encoder, self.state.encoder
            )));
        }
        let cap = self.options.max_rows;
        let mut real = self.state.real.clone();
        real.merge(&other.real, cap, &mut self.rng)?;
        let mut fake = self.state.fake.clone();
        fake.merge(&other.fake, cap, &mut self.rng)?;
        self.state.real = real;
        self.state.fake = fake;
        Ok(())
    }

    /// The real rows kept (for inspection).
    pub fn real_rows(&self) -> Array2<f32> {
        self.state.real.rows()
    }

    /// The generated rows kept.
    pub fn fake_rows(&self) -> Array2<f32> {
        self.state.fake.rows()
    }
}
