//! Inception Score (Salimans et al. 2016, "Improved techniques for training
//! GANs") and IS∞ (Chong & Forsyth 2020).
//!
//! From classifier logits `l_i` (float64 softmax `p_i = softmax(l_i)`,
//! `log p_i = log_softmax(l_i)`), split the rows into `K` (10) splits; for a
//! split `S` with marginal `q = (1/|S|) Σ_{i∈S} p_i`:
//!
//! ```text
//! IS(S) = exp( (1/|S|) Σ_{i∈S} Σ_c p_ic (log p_ic − log q_c) )
//! ```
//!
//! and report the mean and standard deviation of `IS(S)` over the splits.
//! Two split conventions ([`IsConvention`]):
//!
//! * **torch-fidelity** `isc_features_to_metric` (default): split `k` = rows
//!   `[k·N/K, (k+1)·N/K)` (integer division), std with ddof 0;
//! * **torchmetrics** `InceptionScore`: `torch.chunk` — chunks of `⌈N/K⌉` rows
//!   (possibly fewer than `K` chunks), std with ddof 1 (unbiased).
//!
//! Row order ([`IsOrder`]): as given (torch-fidelity `shuffle=False`, the
//! conformance reference), a seeded `ChaCha8Rng` shuffle, or an explicit
//! permutation (torch-fidelity's default shuffle is
//! `np.random.RandomState(2020).permutation(N)`; the corpus stores it).
//!
//! IS∞ ([`IsInfinity`], mchong6/FID_IS_infinity
//! `calculate_IS_infinity_path`): `IS_N` with one split on the first `N_j`
//! rows after cumulative shuffles, `N_j = ⌊linspace(min_fake, N, 15)⌋`, OLS of
//! `IS_N` on `1/N`, intercept — the same extrapolation as FID∞
//! ([`crate::extrapolation::extrapolate_to_infinity`]).

use ndarray::{Array2, ArrayView2};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::MetricError;
use crate::extrapolation::{
    InfinityExtrapolation, batch_sizes, check_orders, cumulative_shuffles, extrapolate_to_infinity,
};
use crate::kid::mean_std_ddof0;
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Spec};

const METRIC: &str = "Inception Score";
const METRIC_INF: &str = "IS-infinity";

/// How the rows are split and how the spread is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsConvention {
    /// torch-fidelity: split `k` = rows `[k·N/K, (k+1)·N/K)`, std ddof 0.
    #[default]
    TorchFidelity,
    /// torchmetrics: `torch.chunk` into `⌈N/K⌉`-row chunks, std ddof 1.
    TorchMetrics,
}

/// The order of the rows before splitting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum IsOrder {
    /// As given (torch-fidelity `samples_shuffle=False`).
    #[default]
    AsGiven,
    /// Shuffled by `ChaCha8Rng::seed_from_u64(seed)`.
    Seeded(u64),
    /// Row `i` of the split input is row `perm[i]` of the logits.
    Permutation(Vec<usize>),
}

/// Inception Score configuration: 10 splits, torch-fidelity convention, rows
/// as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InceptionScore {
    splits: usize,
    convention: IsConvention,
    order: IsOrder,
}

impl Default for InceptionScore {
    fn default() -> Self {
        InceptionScore {
            splits: 10,
            convention: IsConvention::TorchFidelity,
            order: IsOrder::AsGiven,
        }
    }
}

/// The Inception Score over splits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IsOutput {
    /// Mean of the split scores.
    pub mean: f64,
    /// Standard deviation of the split scores (ddof per the convention).
    pub std: f64,
    /// `IS(S)` of every split, in order.
    pub split_scores: Vec<f64>,
}

/// Row-wise float64 softmax and log-softmax of logits (`exp(l − max)/Σ`,
/// `l − max − log Σ exp(l − max)`, as torch).
fn softmax_rows<T: Copy + Into<f64> + Sync>(
    logits: ArrayView2<'_, T>,
) -> (Array2<f64>, Array2<f64>) {
    let (n, c) = logits.dim();
    let mut p = Array2::<f64>::zeros((n, c));
    let mut lp = Array2::<f64>::zeros((n, c));
    p.outer_iter_mut()
        .into_par_iter()
        .zip(lp.outer_iter_mut().into_par_iter())
        .enumerate()
        .for_each(|(i, (mut pr, mut lr))| {
            let row = logits.row(i);
            let max = row
                .iter()
                .map(|v| (*v).into())
                .fold(f64::NEG_INFINITY, f64::max);
            let mut sum = 0.0;
            for (j, v) in row.iter().enumerate() {
                let e = ((*v).into() - max).exp();
                pr[j] = e;
                sum += e;
            }
            let lse = sum.ln();
            for (j, v) in row.iter().enumerate() {
                pr[j] /= sum;
                lr[j] = (*v).into() - max - lse;
            }
        });
    (p, lp)
}

/// `exp(mean_i Σ_c p_ic (log p_ic − log q_c))` over the given rows.
fn split_score(p: &Array2<f64>, lp: &Array2<f64>, rows: &[usize]) -> f64 {
    let c = p.ncols();
    let mut q = vec![0.0f64; c];
    for &i in rows {
        for (qj, v) in q.iter_mut().zip(p.row(i)) {
            *qj += v;
        }
    }
    let inv = 1.0 / rows.len() as f64;
    let log_q: Vec<f64> = q.iter().map(|v| (v * inv).ln()).collect();
    let kl_sum: f64 = rows
        .iter()
        .map(|&i| {
            p.row(i)
                .iter()
                .zip(lp.row(i))
                .zip(&log_q)
                .map(|((pv, lv), lq)| if *pv == 0.0 { 0.0 } else { pv * (lv - lq) })
                .sum::<f64>()
        })
        .sum();
    (kl_sum * inv).exp()
}

fn check_logits<T: Copy + Into<f64> + Sync>(
    metric: &'static str,
    logits: ArrayView2<'_, T>,
    needed: usize,
) -> Result<(), MetricError> {
    if logits.nrows() < needed {
        return Err(MetricError::TooFewSamples {
            metric,
            set: "logits",
            needed,
            got: logits.nrows(),
        });
    }
    if logits.ncols() == 0 {
        return Err(MetricError::InvalidParameter {
            metric,
            detail: "logits have zero classes".into(),
        });
    }
    for (row, r) in logits.outer_iter().enumerate() {
        if let Some(col) = r.iter().position(|v| !(*v).into().is_finite()) {
            return Err(MetricError::NonFinite {
                metric,
                set: "logits",
                row,
                col,
            });
        }
    }
    Ok(())
}

/// Checks that `perm` is a permutation of `0..n`.
fn check_permutation(perm: &[usize], n: usize) -> Result<(), MetricError> {
    let mut seen = vec![false; n];
    if perm.len() != n {
        return Err(MetricError::InvalidParameter {
            metric: METRIC,
            detail: format!("permutation has {} entries for {n} rows", perm.len()),
        });
    }
    for &i in perm {
        if i >= n || seen[i] {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!("not a permutation of 0..{n} (entry {i})"),
            });
        }
        seen[i] = true;
    }
    Ok(())
}

impl InceptionScore {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of splits (default 10).
    pub fn splits(mut self, k: usize) -> Self {
        self.splits = k;
        self
    }

    /// The split/std convention (default torch-fidelity).
    pub fn convention(mut self, c: IsConvention) -> Self {
        self.convention = c;
        self
    }

    /// The row order (default as given).
    pub fn order(mut self, order: IsOrder) -> Self {
        self.order = order;
        self
    }

    /// The Inception Score of `logits` (`[N, C]`, `f32` or `f64`).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer rows than splits (torchmetrics:
    /// fewer than 2 chunks), [`MetricError::NonFinite`],
    /// [`MetricError::InvalidParameter`] for zero splits, zero classes or a bad
    /// permutation, [`MetricError::Numerical`] for a non-finite score.
    pub fn compute<T: Copy + Into<f64> + Sync>(
        &self,
        logits: ArrayView2<'_, T>,
    ) -> Result<IsOutput, MetricError> {
        if self.splits == 0 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: "zero splits".into(),
            });
        }
        check_logits(METRIC, logits, self.splits)?;
        let n = logits.nrows();
        let order: Vec<usize> = match &self.order {
            IsOrder::AsGiven => (0..n).collect(),
            IsOrder::Seeded(seed) => {
                let mut v: Vec<usize> = (0..n).collect();
                v.shuffle(&mut ChaCha8Rng::seed_from_u64(*seed));
                v
            }
            IsOrder::Permutation(p) => {
                check_permutation(p, n)?;
                p.clone()
            }
        };
        let ranges: Vec<(usize, usize)> = match self.convention {
            IsConvention::TorchFidelity => (0..self.splits)
                .map(|k| (k * n / self.splits, (k + 1) * n / self.splits))
                .collect(),
            IsConvention::TorchMetrics => {
                let c = n.div_ceil(self.splits);
                (0..n.div_ceil(c))
                    .map(|k| (k * c, ((k + 1) * c).min(n)))
                    .collect()
            }
        };
        if self.convention == IsConvention::TorchMetrics && ranges.len() < 2 {
            return Err(MetricError::TooFewSamples {
                metric: METRIC,
                set: "logits",
                needed: 2,
                got: n,
            });
        }
        let (p, lp) = softmax_rows(logits);
        let split_scores: Vec<f64> = ranges
            .par_iter()
            .map(|&(a, b)| split_score(&p, &lp, &order[a..b]))
            .collect();
        let (mean, std_pop) = mean_std_ddof0(&split_scores);
        let std = match self.convention {
            IsConvention::TorchFidelity => std_pop,
            IsConvention::TorchMetrics => {
                let k = split_scores.len() as f64;
                (std_pop * std_pop * k / (k - 1.0)).sqrt()
            }
        };
        if !(mean.is_finite() && std.is_finite()) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("non-finite score (mean {mean}, std {std})"),
            });
        }
        Ok(IsOutput {
            mean,
            std,
            split_scores,
        })
    }
}

/// IS∞ configuration (Chong & Forsyth: `min_fake = 5000`, 15 points).
#[derive(Debug, Clone, Copy)]
pub struct IsInfinity {
    min_fake: usize,
    num_points: usize,
    seed: u64,
}

impl Default for IsInfinity {
    fn default() -> Self {
        IsInfinity {
            min_fake: 5000,
            num_points: 15,
            seed: 0,
        }
    }
}

/// IS∞ with the points it was extrapolated from (`points` are
/// `(N_j, IS_{N_j})`, one split each).
pub type IsInfinityOutput = InfinityExtrapolation;

impl IsInfinity {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// The smallest subset size (default 5000; at least 1).
    pub fn min_fake(mut self, n: usize) -> Self {
        self.min_fake = n;
        self
    }

    /// The number of subset sizes (default 15; at least 2).
    pub fn num_points(mut self, k: usize) -> Self {
        self.num_points = k;
        self
    }

    /// The seed of the cumulative shuffles.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn sizes(&self, n: usize) -> Result<Vec<usize>, MetricError> {
        if self.num_points < 2 || self.min_fake == 0 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC_INF,
                detail: format!(
                    "need num_points >= 2 and min_fake >= 1, got {} and {}",
                    self.num_points, self.min_fake
                ),
            });
        }
        if self.min_fake > n {
            return Err(MetricError::TooFewSamples {
                metric: METRIC_INF,
                set: "logits",
                needed: self.min_fake,
                got: n,
            });
        }
        Ok(batch_sizes(self.min_fake, n, self.num_points))
    }

    /// IS∞ with seeded cumulative shuffles.
    ///
    /// # Errors
    /// As [`IsInfinity::compute_with_orders`].
    pub fn compute<T: Copy + Into<f64> + Sync>(
        &self,
        logits: ArrayView2<'_, T>,
    ) -> Result<IsInfinityOutput, MetricError> {
        check_logits(METRIC_INF, logits, 1)?;
        self.sizes(logits.nrows())?;
        let orders = cumulative_shuffles(logits.nrows(), self.num_points, self.seed);
        self.compute_with_orders(logits, orders.view())
    }

    /// IS∞ replaying row orders: point `j` scores rows `orders[j, ..N_j]` (the
    /// corpus' `isinf_perm.npy`).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than `min_fake` rows,
    /// [`MetricError::NonFinite`], [`MetricError::InvalidParameter`] for bad
    /// orders or parameters, [`MetricError::Numerical`].
    pub fn compute_with_orders<T: Copy + Into<f64> + Sync>(
        &self,
        logits: ArrayView2<'_, T>,
        orders: ArrayView2<'_, usize>,
    ) -> Result<IsInfinityOutput, MetricError> {
        check_logits(METRIC_INF, logits, 1)?;
        let sizes = self.sizes(logits.nrows())?;
        check_orders(METRIC_INF, orders, logits.nrows(), &sizes)?;
        let (p, lp) = softmax_rows(logits);
        let points: Vec<(usize, f64)> = orders
            .outer_iter()
            .zip(&sizes)
            .map(|(row, &nj)| {
                let idx: Vec<usize> = row.iter().take(nj).copied().collect();
                (nj, split_score(&p, &lp, &idx))
            })
            .collect();
        let (value, slope) = extrapolate_to_infinity(METRIC_INF, &points)?;
        Ok(InfinityExtrapolation {
            value,
            slope,
            points,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of the Inception Score (torch-fidelity's convention, 10
/// splits in the given order) from generated logits.
pub static SPEC: Spec = Spec {
    name: "is",
    about: "Inception Score of the generated samples from classifier logits",
    reference: "Salimans et al. 2016, Improved Techniques for Training GANs; torch-fidelity",
    inputs: &[Input::Logits],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "is_mean",
            Direction::HigherIsBetter,
            "mean over 10 splits of exp E_x KL(p(y|x) ‖ p(y))",
        ),
        KeySpec::new(
            "is_std",
            Direction::NotAScore,
            "standard deviation over splits",
        ),
    ],
    dynamic_keys: None,
    make: |_| Ok(Box::new(InceptionScore::new())),
};

impl Metric for InceptionScore {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let logits = cx.inputs().logits.ok_or(MetricError::MissingInput {
            metric: SPEC.name,
            input: Input::Logits,
        })?;
        let out = self.compute(logits)?;
        Ok(Outcome::new()
            .value("is_mean", out.mean)
            .value("is_std", out.std))
    }
}

/// IS-inf as the registry builds it: the first batch size follows the number
/// of logits (`fd_infinity::infinity_start`).
#[derive(Debug, Clone, Copy)]
pub struct IsInfinityMetric {
    /// Seed of the cumulative shuffles.
    pub seed: u64,
}

/// Registry entry of IS-inf.
pub static SPEC_INF: Spec = Spec {
    name: "is_inf",
    about: "Inception Score extrapolated to infinitely many samples",
    reference: "Chong & Forsyth 2020, Effectively Unbiased FID and Inception Score and where to find them",
    inputs: &[Input::Logits],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "is_inf",
        Direction::HigherIsBetter,
        "intercept of IS_N = IS_∞ + b/N fitted over 15 subset sizes",
    )],
    dynamic_keys: None,
    make: |p| Ok(Box::new(IsInfinityMetric { seed: p.seed })),
};

impl Metric for IsInfinityMetric {
    fn spec(&self) -> &'static Spec {
        &SPEC_INF
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let logits = cx.inputs().logits.ok_or(MetricError::MissingInput {
            metric: SPEC_INF.name,
            input: Input::Logits,
        })?;
        let out = IsInfinity::new()
            .min_fake(crate::fd_infinity::infinity_start(logits.nrows()))
            .seed(self.seed)
            .compute(logits)?;
        Ok(Outcome::new().value("is_inf", out.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn uniform_predictions_score_one() {
        let l = Array2::<f32>::zeros((20, 5));
        let o = InceptionScore::new().compute(l.view()).unwrap();
        assert!((o.mean - 1.0).abs() < 1e-12 && o.std.abs() < 1e-12);
    }

    #[test]
    fn confident_distinct_classes_score_c() {
        // one-hot-ish logits over 4 classes, each class equally often: IS -> 4
        let l = Array2::from_shape_fn((40, 4), |(i, j)| if i % 4 == j { 60.0f64 } else { 0.0 });
        let o = InceptionScore::new().splits(1).compute(l.view()).unwrap();
        assert!((o.mean - 4.0).abs() < 1e-9, "{}", o.mean);
    }

    #[test]
    fn conventions_and_errors() {
        let l = array![[1.0f32, 2.0], [0.5, 0.1], [3.0, -1.0]];
        assert!(InceptionScore::new().compute(l.view()).is_err()); // 3 rows < 10 splits
        assert!(InceptionScore::new().splits(0).compute(l.view()).is_err());
        let tm = InceptionScore::new()
            .splits(2)
            .convention(IsConvention::TorchMetrics)
            .compute(l.view())
            .unwrap();
        assert_eq!(tm.split_scores.len(), 2); // chunks of 2 and 1 rows
        let bad = InceptionScore::new()
            .splits(1)
            .order(IsOrder::Permutation(vec![0, 0, 1]));
        assert!(bad.compute(l.view()).is_err());
        let mut nan = l.clone();
        nan[[1, 1]] = f32::NAN;
        assert!(matches!(
            InceptionScore::new().splits(1).compute(nan.view()),
            Err(MetricError::NonFinite { row: 1, col: 1, .. })
        ));
    }
}
