//! Nearest-neighbour copy detection: which generated samples sit much closer
//! to one training sample than to any other?
//!
//! For a generated sample `g` with nearest training sample `t₁(g)` and
//! second-nearest `t₂(g)` (Euclidean, float64, first index on ties):
//!
//! ```text
//! d₁(g) = ‖g − t₁(g)‖,   d₂(g) = ‖g − t₂(g)‖
//! ratio(g) = d₁(g) / d₂(g)        (0 when d₂ = 0, i.e. g equals two training rows)
//! g is a suspected copy  ⇔  ratio(g) < threshold,   threshold = 1/3 by default
//! ```
//!
//! The rule and the 1/3 threshold follow Yoon et al. 2023, "Diffusion
//! probabilistic models generalize when they fail to memorize" (ICML workshop
//! SPIGM), and Gu et al. 2023, "On memorization in diffusion models", who use
//! it in pixel space; here it runs on feature vectors. A copy is close to
//! *one* training sample and therefore far from the second one, so the ratio
//! is small; a sample in a dense region has `d₁ ≈ d₂` and a ratio near 1.
//!
//! As a scale-aware companion (the scale of the C_T test of Meehan et al.
//! 2020, which compares generated-to-train with test-to-train 1-NN distances),
//! the output also gives the *memorization ratio*
//! `d₁(g) / median_t r(t)`, where `r(t)` is the distance of training sample `t`
//! to its nearest *other* training sample: values ≪ 1 mean `g` is much closer to
//! the training set than training samples are to each other.

use gen_metrics_linalg::{nearest_neighbours, self_nearest_neighbours};
use ndarray::ArrayView2;
use serde::Serialize;

use crate::MemorizationError;
use crate::error::{check_dim, check_set};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, MetricError, Outcome, Set, Spec,
};

const METRIC: &str = "copy detection";

/// Median of a non-empty slice (mean of the two middle values for even
/// length, as `numpy.median`).
pub(crate) fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// Configuration of nearest-neighbour copy detection (see the
/// [module docs](self)): a generated sample is flagged when
/// `d₁/d₂ < threshold`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyDetection {
    /// The ratio threshold; Yoon et al. 2023 / Gu et al. 2023 use 1/3.
    pub threshold: f64,
    /// Also compute the training set's own nearest-neighbour distances and the
    /// memorization ratio `d₁ / median r` (costs one N_train × N_train
    /// neighbour search). Default true.
    pub with_train_scale: bool,
}

impl Default for CopyDetection {
    fn default() -> Self {
        CopyDetection {
            threshold: 1.0 / 3.0,
            with_train_scale: true,
        }
    }
}

/// Result of [`CopyDetection::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CopyDetectionOutput {
    /// The threshold used.
    pub threshold: f64,
    /// `t₁(g)`: index of the nearest training row, per generated row.
    pub nearest_train: Vec<usize>,
    /// `d₁(g)`.
    pub d1: Vec<f64>,
    /// `d₂(g)`.
    pub d2: Vec<f64>,
    /// `d₁(g)/d₂(g)` (0 when `d₂ = 0`).
    pub ratio: Vec<f64>,
    /// Indices of the suspected copies (`ratio < threshold`), ascending.
    pub copies: Vec<usize>,
    /// `|copies| / N_gen`.
    pub fraction_copied: f64,
    /// `median_t r(t)`, the training set's median self-excluded 1-NN distance
    /// (`None` without `with_train_scale`).
    pub median_train_nn: Option<f64>,
    /// `d₁(g) / median_t r(t)` (`None` without `with_train_scale` or when the
    /// median is 0, i.e. more than half the training rows are duplicated).
    pub memorization_ratio: Option<Vec<f64>>,
}

impl CopyDetection {
    /// Sets the ratio threshold.
    pub fn threshold(mut self, t: f64) -> Self {
        self.threshold = t;
        self
    }
    /// Turns the training-set scale (and the memorization ratio) on or off.
    pub fn with_train_scale(mut self, on: bool) -> Self {
        self.with_train_scale = on;
        self
    }

    /// Runs the detection of `gen` against `train` (rows are samples).
    ///
    /// # Errors
    /// [`MemorizationError::TooFewSamples`] for fewer than 2 training rows or
    /// no generated row, [`MemorizationError::DimensionMismatch`],
    /// [`MemorizationError::NonFinite`], and
    /// [`MemorizationError::InvalidParameter`] for a threshold outside (0, 1].
    pub fn compute(
        &self,
        train: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<CopyDetectionOutput, MemorizationError> {
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(MemorizationError::InvalidParameter {
                metric: METRIC,
                detail: format!("threshold must be in (0, 1], got {}", self.threshold),
            });
        }
        check_set(METRIC, "train", train, 2)?;
        check_set(METRIC, "gen", gen_feats, 1)?;
        check_dim(METRIC, "gen", train.ncols(), gen_feats.ncols())?;
        // Exact float64 distances, ties to the smaller index.
        let (ind, dis) = nearest_neighbours(gen_feats, train, 2)?;
        let n = gen_feats.nrows();
        let nearest_train: Vec<usize> = (0..n).map(|i| ind[[i, 0]]).collect();
        let d1: Vec<f64> = (0..n).map(|i| dis[[i, 0]]).collect();
        let d2: Vec<f64> = (0..n).map(|i| dis[[i, 1]]).collect();
        let ratio: Vec<f64> = d1
            .iter()
            .zip(&d2)
            .map(|(&a, &b)| if b > 0.0 { a / b } else { 0.0 })
            .collect();
        let copies: Vec<usize> = (0..n).filter(|&i| ratio[i] < self.threshold).collect();
        let fraction_copied = copies.len() as f64 / n as f64;
        let (median_train_nn, memorization_ratio) = if self.with_train_scale {
            let (_, r) = self_nearest_neighbours(train, 1)?;
            let med = median(&r.column(0).to_vec());
            let mr = (med > 0.0).then(|| d1.iter().map(|&a| a / med).collect());
            (Some(med), mr)
        } else {
            (None, None)
        };
        Ok(CopyDetectionOutput {
            threshold: self.threshold,
            nearest_train,
            d1,
            d2,
            ratio,
            copies,
            fraction_copied,
            median_train_nn,
            memorization_ratio,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of nearest-neighbour copy detection (d1/d2 < 1/3).
pub static SPEC: Spec = Spec {
    name: "copy_ratio",
    about: "share of generated samples flagged as copies of a training sample",
    reference: "nearest-neighbour ratio test d1/d2 < 1/3 to the two nearest training samples (Lowe-style, as in the memorization literature)",
    inputs: &[Input::Train, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "copy_ratio",
        Direction::LowerIsBetter,
        "share of generated y with d(y, NN1) / d(y, NN2) < 1/3",
    )],
    dynamic_keys: None,
    make: |_| Ok(Box::new(CopyDetection::default())),
};

impl Metric for CopyDetection {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let train = cx.rows(&SPEC, Set::Train)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("copy_ratio", self.compute(train, fake)?.fraction_copied))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn median_as_numpy() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn exact_and_near_copies_are_flagged() {
        let train = array![[0.0f32, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]];
        let gen_feats = array![[0.1f32, 0.0], [5.0, 5.0], [10.0, 10.0]];
        let out = CopyDetection::default()
            .compute(train.view(), gen_feats.view())
            .unwrap();
        assert_eq!(out.copies, vec![0, 2]);
        assert_eq!(out.ratio[2], 0.0);
        assert!((out.ratio[1] - 1.0).abs() < 1e-12);
        assert_eq!(out.median_train_nn, Some(10.0));
        assert!(
            CopyDetection::default()
                .threshold(0.0)
                .compute(train.view(), gen_feats.view())
                .is_err()
        );
        let bad = array![[0.1f32, 0.0, 1.0]];
        assert!(
            CopyDetection::default()
                .compute(train.view(), bad.view())
                .is_err()
        );
    }
}
