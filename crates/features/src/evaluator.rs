//! The in-process evaluator for training loops.
//!
//! Feed it batches of images as they come (8-bit NHWC, or float NCHW in a
//! stated [`ValueRange`]); it encodes them and accumulates the **real** and
//! the **generated** statistics separately, streaming, in float64
//! ([`GaussianAccumulator`], Chan et al. pairwise updates), so memory is
//! `O(D²)` whatever the number of images. Raw features are kept only when a
//! metric needs them ([`EvaluatorOptions::keep_features`]: KID,
//! precision/recall, ... in `gen-metrics-distribution`).
//!
//! * [`Evaluator::fid`] computes on demand the Fréchet distance
//!   `‖μ_r − μ_g‖² + tr Σ_r + tr Σ_g − 2 tr (Σ_r^½ Σ_g Σ_r^½)^½` between the
//!   two Gaussians (covariances with `ddof = 1`, as pytorch-fid and
//!   clean-fid), by [`FrechetDistance`];
//! * [`Evaluator::reset_generated`] starts a new evaluation round while the
//!   real side (computed once) is kept;
//! * [`Evaluator::merge`] adds another evaluator's state (data-parallel
//!   ranks: every rank encodes its shard, then one merges the states).
//!
//! The features of a batch are exactly those of [`Encoder`] on the same
//! images, so a round of the evaluator gives the same FID as the command line
//! on the same images written to PNG (up to the 8-bit rounding of PNG when
//! floats are given).

use ndarray::{Array2, ArrayView2, ArrayView4, Axis, concatenate};

use gen_metrics_linalg::{FrechetBranch, FrechetDistance, GaussianAccumulator, GaussianStats};

use crate::encoder::{Encoder, EncoderIdentity};
use crate::error::{FeatureError, Result};
use crate::resize::ValueRange;

/// A batch of images for the evaluator.
#[derive(Debug, Clone, Copy)]
pub enum ImageBatch<'a> {
    /// 8-bit RGB `[N, H, W, 3]`.
    U8Nhwc(ArrayView4<'a, u8>),
    /// Floating-point RGB `[N, 3, H, W]` with values in the given range.
    F32Nchw(ArrayView4<'a, f32>, ValueRange),
}

/// Evaluator settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct EvaluatorOptions {
    /// Keep every feature row (for metrics that need raw features), not only
    /// the streaming statistics.
    pub keep_features: bool,
}

/// One side (real or generated): streaming statistics and, optionally, rows.
#[derive(Debug, Clone, Default)]
pub struct SideState {
    acc: Option<GaussianAccumulator>,
    features: Vec<Array2<f32>>,
}

impl SideState {
    /// Number of images accumulated.
    pub fn count(&self) -> usize {
        self.acc.as_ref().map_or(0, GaussianAccumulator::count)
    }

    /// The accumulator (after the first batch).
    pub fn accumulator(&self) -> Option<&GaussianAccumulator> {
        self.acc.as_ref()
    }

    fn push(&mut self, rows: ArrayView2<'_, f32>, keep: bool) -> Result<()> {
        if rows.nrows() == 0 {
            return Ok(());
        }
        let acc = match &mut self.acc {
            Some(a) => a,
            None => self.acc.insert(GaussianAccumulator::new(rows.ncols())?),
        };
        acc.push(rows)?;
        if keep {
            self.features.push(rows.to_owned());
        }
        Ok(())
    }

    fn merge(&mut self, other: &SideState) -> Result<()> {
        if let Some(o) = &other.acc {
            match &mut self.acc {
                Some(a) => a.merge(o)?,
                None => self.acc = Some(o.clone()),
            }
        }
        self.features.extend(other.features.iter().cloned());
        Ok(())
    }

    fn stats(&self, what: &'static str) -> Result<GaussianStats> {
        let acc = self.acc.as_ref().ok_or_else(|| {
            FeatureError::invalid("evaluator", format!("no {what} images accumulated"))
        })?;
        Ok(acc.finalize(1)?)
    }

    fn rows(&self) -> Option<Array2<f32>> {
        if self.features.is_empty() {
            return None;
        }
        let views: Vec<_> = self.features.iter().map(|a| a.view()).collect();
        concatenate(Axis(0), &views).ok()
    }
}

/// Everything an evaluator has accumulated: what [`Evaluator::merge`] combines.
#[derive(Debug, Clone)]
pub struct EvaluatorState {
    /// The encoder the features came from (merging needs the same one).
    pub encoder: EncoderIdentity,
    /// The real side.
    pub real: SideState,
    /// The generated side.
    pub generated: SideState,
}

/// The FID of one evaluation round.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FidReport {
    /// The Fréchet distance `d²` (not clamped).
    pub fid: f64,
    /// Real images used.
    pub n_real: usize,
    /// Generated images used.
    pub n_generated: usize,
    /// `‖μ_r − μ_g‖²`.
    pub mean_term: f64,
    /// `tr Σ_r + tr Σ_g − 2 tr√`.
    pub trace_term: f64,
    /// Which algorithm evaluated `tr√` (debug name of [`FrechetBranch`]).
    pub branch: String,
}

/// Encodes image batches and accumulates real and generated statistics.
#[derive(Debug)]
pub struct Evaluator {
    encoder: Encoder,
    options: EvaluatorOptions,
    state: EvaluatorState,
}

impl Evaluator {
    /// An evaluator around `encoder`.
    pub fn new(encoder: Encoder, options: EvaluatorOptions) -> Self {
        let state = EvaluatorState {
            encoder: encoder.identity(),
            real: SideState::default(),
            generated: SideState::default(),
        };
        Evaluator {
            encoder,
            options,
            state,
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// The accumulated state (to send to another rank).
    pub fn state(&self) -> &EvaluatorState {
        &self.state
    }

    fn encode(&mut self, batch: ImageBatch<'_>) -> Result<Array2<f32>> {
        match batch {
            ImageBatch::U8Nhwc(b) => self.encoder.encode_u8_nhwc(b),
            ImageBatch::F32Nchw(b, range) => self.encoder.encode_f32_nchw(b, range),
        }
    }

    /// Encodes a batch of real images and adds it to the real side.
    /// Returns the number of images added.
    ///
    /// # Errors
    /// Encoder errors (shape, preprocessing, runtime); on error nothing is added.
    pub fn add_real(&mut self, batch: ImageBatch<'_>) -> Result<usize> {
        let rows = self.encode(batch)?;
        self.add_real_features(rows.view())?;
        Ok(rows.nrows())
    }

    /// Encodes a batch of generated images and adds it to the generated side.
    ///
    /// # Errors
    /// As [`add_real`](Self::add_real).
    pub fn add_generated(&mut self, batch: ImageBatch<'_>) -> Result<usize> {
        let rows = self.encode(batch)?;
        self.add_generated_features(rows.view())?;
        Ok(rows.nrows())
    }

    fn check_dim(&self, rows: ArrayView2<'_, f32>) -> Result<()> {
        let want = self.encoder.output_dim();
        if want > 0 && rows.ncols() != want {
            return Err(FeatureError::invalid(
                "evaluator",
                format!("{} feature columns, the encoder gives {want}", rows.ncols()),
            ));
        }
        Ok(())
    }

    /// Adds precomputed real features `[N, D]` (e.g. a cached reference set).
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] for another dimension;
    /// [`FeatureError::Linalg`] for NaN or infinite values (nothing is added).
    pub fn add_real_features(&mut self, rows: ArrayView2<'_, f32>) -> Result<()> {
        self.check_dim(rows)?;
        self.state.real.push(rows, self.options.keep_features)
    }

    /// Adds precomputed generated features `[N, D]`.
    ///
    /// # Errors
    /// As [`add_real_features`](Self::add_real_features).
    pub fn add_generated_features(&mut self, rows: ArrayView2<'_, f32>) -> Result<()> {
        self.check_dim(rows)?;
        self.state.generated.push(rows, self.options.keep_features)
    }

    /// Real images accumulated.
    pub fn real_count(&self) -> usize {
        self.state.real.count()
    }

    /// Generated images accumulated.
    pub fn generated_count(&self) -> usize {
        self.state.generated.count()
    }

    /// Mean and covariance (`ddof = 1`) of the real features.
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] before any real batch;
    /// [`FeatureError::Linalg`] for fewer than 2 images.
    pub fn real_stats(&self) -> Result<GaussianStats> {
        self.state.real.stats("real")
    }

    /// Mean and covariance (`ddof = 1`) of the generated features.
    ///
    /// # Errors
    /// As [`real_stats`](Self::real_stats).
    pub fn generated_stats(&self) -> Result<GaussianStats> {
        self.state.generated.stats("generated")
    }

    /// The kept real feature rows (with [`EvaluatorOptions::keep_features`]).
    pub fn real_features(&self) -> Option<Array2<f32>> {
        self.state.real.rows()
    }

    /// The kept generated feature rows (with [`EvaluatorOptions::keep_features`]).
    pub fn generated_features(&self) -> Option<Array2<f32>> {
        self.state.generated.rows()
    }

    /// The FID between the real and generated sides, computed now.
    ///
    /// # Errors
    /// As [`real_stats`](Self::real_stats); [`FeatureError::Linalg`] when the
    /// distance cannot be evaluated (non-finite result).
    pub fn fid(&self) -> Result<FidReport> {
        let r = self.real_stats()?;
        let g = self.generated_stats()?;
        let res = FrechetDistance::new().between_stats(&r, &g)?;
        Ok(FidReport {
            fid: res.value,
            n_real: r.n,
            n_generated: g.n,
            mean_term: res.mean_term,
            trace_term: res.trace_a + res.trace_b - 2.0 * res.trace_sqrt,
            branch: branch_name(res.branch).to_owned(),
        })
    }

    /// Forgets the generated side (a new round); the real side is kept.
    pub fn reset_generated(&mut self) {
        self.state.generated = SideState::default();
    }

    /// Forgets both sides.
    pub fn reset(&mut self) {
        self.state.real = SideState::default();
        self.state.generated = SideState::default();
    }

    /// Adds another evaluator's state (another data-parallel rank): real to
    /// real, generated to generated. The result is the same as if this
    /// evaluator had seen all the batches (up to float64 rounding).
    ///
    /// # Errors
    /// [`FeatureError::Merge`] when the states come from different encoders
    /// (weights, resize, ...); [`FeatureError::Linalg`] for a dimension mismatch.
    pub fn merge(&mut self, other: &EvaluatorState) -> Result<()> {
        if other.encoder != self.state.encoder {
            return Err(FeatureError::Merge(format!(
                "the other state comes from encoder {:?} (weights {}, resize {}), this one from {:?} (weights {}, resize {})",
                other.encoder.encoder,
                other.encoder.weights_sha256,
                other.encoder.resize,
                self.state.encoder.encoder,
                self.state.encoder.weights_sha256,
                self.state.encoder.resize
            )));
        }
        // Merge into copies first so that a failure leaves `self` unchanged.
        let mut real = self.state.real.clone();
        real.merge(&other.real)?;
        let mut generated = self.state.generated.clone();
        generated.merge(&other.generated)?;
        self.state.real = real;
        self.state.generated = generated;
        Ok(())
    }
}

fn branch_name(b: FrechetBranch) -> &'static str {
    match b {
        FrechetBranch::Cholesky => "cholesky",
        FrechetBranch::SymmetricEigen => "symmetric-eigen",
        FrechetBranch::GramSvd => "gram-svd",
        FrechetBranch::FactorSvd => "factor-svd",
    }
}
