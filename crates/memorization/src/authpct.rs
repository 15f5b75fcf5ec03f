//! AuthPct: the percentage of generated samples that are *authentic*, i.e. not
//! closer to their nearest training sample than that training sample is to the
//! rest of the training set.
//!
//! Alaa et al. 2022, "How faithful is your synthetic data? Sample-level metrics
//! for evaluating and auditing generative models" (ICML), authenticity; the
//! exact rule is dgm-eval's `compute_authpct` (`dgm_eval/metrics/authpct.py`,
//! from marcojira/fls `metrics/AuthPct.py`), Stein et al. 2023:
//!
//! ```text
//! j(g)  = argmin_j ‖t_j − g‖                         (first index on ties)
//! d₁(g) = ‖t_{j(g)} − g‖
//! d₂(g) = min_{i ≠ j(g)} ‖t_i − t_{j(g)}‖             (self excluded)
//! g authentic  ⇔  d₂(g) < d₁(g)                      (strict)
//! AuthPct = 100 · #{g authentic} / N_gen
//! ```
//!
//! Distances are exact float64 here; dgm-eval uses float32 `torch.cdist` and
//! does the final division in float32, which [`AuthPctOutput::authpct_f32`]
//! reproduces bit for bit from the (identical) count.

use ndarray::ArrayView2;
use serde::Serialize;

use gen_metrics_linalg::{nearest_neighbours, self_nearest_neighbours};

use crate::MemorizationError;
use crate::error::{check_dim, check_set};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, MetricError, Outcome, Set, Spec,
};

const METRIC: &str = "AuthPct";

/// AuthPct configuration (no parameters: the rule has none). See the
/// [module docs](self) for the formula.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AuthPct;

/// Result of [`AuthPct::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuthPctOutput {
    /// `100 · n_authentic / n_gen`, in float64.
    pub authpct: f64,
    /// dgm-eval's float32 value, `f32(100 · n_authentic) / f32(n_gen)`
    /// widened to f64 (e.g. 563 of 1000 gives 56.29999923706055).
    pub authpct_f32: f64,
    /// Number of authentic generated samples.
    pub n_authentic: usize,
    /// Number of generated samples.
    pub n_gen: usize,
    /// Per generated sample: is it authentic (`d₂ < d₁`)?
    pub authentic: Vec<bool>,
    /// `j(g)`, the nearest training sample of each generated sample.
    pub nearest_train: Vec<usize>,
    /// `d₁(g)`.
    pub gen_nn_distance: Vec<f64>,
    /// `d₂(g)`, the self-excluded 1-NN distance of `t_{j(g)}`.
    pub train_nn_distance: Vec<f64>,
}

impl AuthPct {
    /// Computes AuthPct of `gen_feats` against `train` (rows are samples).
    ///
    /// # Errors
    /// [`MemorizationError::TooFewSamples`] for fewer than 2 training rows or
    /// no generated row, [`MemorizationError::DimensionMismatch`],
    /// [`MemorizationError::NonFinite`].
    pub fn compute(
        &self,
        train: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<AuthPctOutput, MemorizationError> {
        check_set(METRIC, "train", train, 2)?;
        check_set(METRIC, "gen", gen_feats, 1)?;
        check_dim(METRIC, "gen", train.ncols(), gen_feats.ncols())?;
        // Exact float64 distances (gen_metrics_linalg::pairwise); ties go to
        // the smaller index, as torch.min.
        let (_, train_nn) = self_nearest_neighbours(train, 1)?;
        let (ind, dis) = nearest_neighbours(gen_feats, train, 1)?;
        let n_gen = gen_feats.nrows();
        let nearest_train: Vec<usize> = (0..n_gen).map(|i| ind[[i, 0]]).collect();
        let gen_nn_distance: Vec<f64> = (0..n_gen).map(|i| dis[[i, 0]]).collect();
        let train_nn_distance: Vec<f64> = nearest_train.iter().map(|&j| train_nn[[j, 0]]).collect();
        let authentic: Vec<bool> = train_nn_distance
            .iter()
            .zip(&gen_nn_distance)
            .map(|(&d2, &d1)| d2 < d1)
            .collect();
        let n_authentic = authentic.iter().filter(|&&a| a).count();
        let authpct = 100.0 * n_authentic as f64 / n_gen as f64;
        let authpct_f32 = f64::from((100.0 * n_authentic as f64) as f32 / n_gen as f32);
        Ok(AuthPctOutput {
            authpct,
            authpct_f32,
            n_authentic,
            n_gen,
            authentic,
            nearest_train,
            gen_nn_distance,
            train_nn_distance,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of AuthPct.
pub static SPEC: Spec = Spec {
    name: "authpct",
    about: "percent of authentic generated samples (not closer to a training sample than its own nearest neighbour)",
    reference: "Alaa et al. 2022, How Faithful is your Synthetic Data?; dgm-eval compute_authpct",
    inputs: &[Input::Train, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "authpct",
        Direction::HigherIsBetter,
        "100 · share of generated y with d(y, NN_train(y)) > d(NN_train(y), its own NN)",
    )],
    dynamic_keys: None,
    make: |_| Ok(Box::new(AuthPct)),
};

impl Metric for AuthPct {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let train = cx.rows(&SPEC, Set::Train)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("authpct", self.compute(train, fake)?.authpct))
    }
}
