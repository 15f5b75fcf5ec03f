//! The FID fringe-feature attack (Kynkäänniemi, Karras, Aittala, Aila &
//! Lehtinen 2023, "The Role of ImageNet Classes in Fréchet Inception
//! Distance", ICLR; code: kynkaat/role-of-imagenet-classes-in-fid
//! `resampling/`).
//!
//! FID can be lowered *without improving any image*: generate a candidate set
//! larger than the evaluation set, then choose which candidates to report so
//! that the distribution of "fringe features" — above all the Top-1 class of
//! an ImageNet classifier — matches the real data. This module implements the
//! two attacks of the paper so that a user can measure how much of an FID gap
//! such a selection explains, and checks the result in an independent feature
//! space (the paper uses CLIP), where a selection that only matches fringe
//! features gains much less.
//!
//! # Top-1 histogram matching ([`match_histogram`])
//!
//! With real labels `ℓ(r)` and candidate labels `ℓ(c)` (the argmax of a
//! classifier's logits, [`top1_labels`], or k-means cells of a second feature
//! space when there is no classifier head, [`cluster_labels`]), the target
//! count of class `k` in a subset of size `S` is `t_k = S·h_k/N_real`
//! (largest-remainder rounding, `h_k` the real count). From every class, `min(t_k,
//! available_k)` candidates are drawn uniformly without replacement; slots
//! left over by classes without enough candidates are filled uniformly from
//! the remaining candidates. The match is exact whenever every class has
//! enough candidates.
//!
//! # Weight optimisation ([`WeightOptimisation`])
//!
//! Per-candidate log-weights `θ_i` (start 0), `w_i = e^{θ_i}`, `W = Σ w_i`, and
//! the weighted statistics of the original code (`compute_weighted_mean_and_cov`):
//!
//! ```text
//! μ_w = Σ_i w_i x_i / W,          Σ_w = Σ_i w_i (x_i − μ_w)(x_i − μ_w)ᵀ / (W − 1)
//! FD(θ) = ‖μ_w − μ_r‖² + tr Σ_w + tr Σ_r − 2 tr (A Σ_w A)^½,     A = Σ_r^½
//! ```
//!
//! are driven down by gradient steps on θ. The gradient, derived in closed
//! form (the original uses autograd through `torch.eig(Σ_w Σ_r)`): with
//! `A Σ_w A = V Λ Vᵀ` and `G = ∂FD/∂Σ_w = I − A V (Λ + ε)^{-½} Vᵀ A`
//! (`d tr M^½ = ½ tr(M^{-½} dM)`; ε = 1e-12 as the original's `sqrt(λ + ε)`),
//! `∂μ_w/∂w_i = (x_i − μ_w)/W` and
//! `∂Σ_w/∂w_i = ((x_i − μ_w)(x_i − μ_w)ᵀ − Σ_w)/(W − 1)`:
//!
//! ```text
//! ∂FD/∂θ_i = w_i · [ 2 (μ_w − μ_r)ᵀ(x_i − μ_w)/W + ((x_i − μ_w)ᵀ G (x_i − μ_w) − tr(G Σ_w))/(W − 1) ]
//! ```
//!
//! The original runs plain SGD (lr 10, 200 000 steps on 250 000 candidates);
//! the default here is Adam (lr 0.05, 300 steps), which is insensitive to the
//! 1/N scale of the gradient; SGD is available. The reported subset is then
//! drawn from `p_i = w_i/W` **with replacement**, as the original's
//! `sample_indices_with_weights` (or without, by Efraimidis–Spirakis keys
//! `ln(u_i)/p_i`).
//!
//! # What is reported ([`FringeAttack::run`])
//!
//! `FD_before` is the FD (ddof 1 statistics, [`gen_metrics_linalg::FrechetDistance`])
//! between the real set and a uniformly drawn subset of `S` candidates (the
//! honest evaluation, drawn without replacement as the original); `FD_after`
//! that of the attacked subset; both again in the independent feature space
//! when one is given. All randomness comes from one `ChaCha8Rng` seeded with
//! `seed` (baseline subset first, then the attack's draws).
//!
//! Determinism: the same inputs and seed give the same selection; the weight
//! optimisation uses `gen-metrics-linalg` products whose rounding may depend on the CPU's
//! blocking, so across machines the log-weights agree to round-off only.

use gen_metrics_linalg::{
    Adam, FrechetDistance, GaussianStats, KMeans, matmul, matmul_nt, matmul_tn, symmetric_eigen,
};
use ndarray::{Array2, ArrayView2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::MetricError;
use crate::validate::{check_pair, check_set};

const METRIC: &str = "fringe attack";

fn invalid(detail: String) -> MetricError {
    MetricError::InvalidParameter {
        metric: METRIC,
        detail,
    }
}

/// Top-1 labels `ℓ_i = argmax_c z_ic` of a logit (or probability) matrix
/// (first index on ties), as the paper's `np.argmax(probs, axis=1)`.
///
/// # Errors
/// [`MetricError::TooFewSamples`] for no row, [`MetricError::NonFinite`],
/// [`MetricError::InvalidParameter`] for zero columns.
pub fn top1_labels(logits: ArrayView2<'_, f32>) -> Result<Vec<usize>, MetricError> {
    check_set(METRIC, "logits", logits, 1)?;
    Ok(logits
        .outer_iter()
        .map(|row| {
            let mut best = 0;
            for (c, &v) in row.iter().enumerate() {
                if v > row[best] {
                    best = c;
                }
            }
            best
        })
        .collect())
}

/// Labels for feature spaces without a classifier head: k-means with `k`
/// cells ([`gen_metrics_linalg::KMeans`], `n_init = 10`, seeded) fitted on
/// `real`, then every real and candidate row gets its nearest centre. Pass the
/// features of a *second* extractor to mimic the paper's classifier labels.
///
/// # Errors
/// As [`check_pair`] (at least `k` real rows), and k-means failures.
pub fn cluster_labels(
    real: ArrayView2<'_, f32>,
    candidates: ArrayView2<'_, f32>,
    k: usize,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>), MetricError> {
    check_pair(METRIC, real, candidates, k.max(1))?;
    let model = KMeans::new(k).seed(seed).fit(real)?;
    let cand = model.predict(candidates)?;
    Ok((model.labels, cand))
}

/// Counts of every label `0..=max` (length `max + 1`).
fn histogram(labels: &[usize], n_classes: usize) -> Vec<usize> {
    let mut h = vec![0; n_classes];
    for &l in labels {
        h[l] += 1;
    }
    h
}

/// `Σ_k |a_k/Σa − b_k/Σb|`, the L1 distance of two normalised histograms
/// (twice the total variation).
pub fn histogram_l1(a: &[usize], b: &[usize]) -> f64 {
    let sa: usize = a.iter().sum();
    let sb: usize = b.iter().sum();
    let n = a.len().max(b.len());
    (0..n)
        .map(|k| {
            let x = a.get(k).copied().unwrap_or(0) as f64 / sa.max(1) as f64;
            let y = b.get(k).copied().unwrap_or(0) as f64 / sb.max(1) as f64;
            (x - y).abs()
        })
        .sum()
}

/// Fisher–Yates shuffle driven by `rng` (portable: `u64` ranges).
fn shuffle(v: &mut [usize], rng: &mut ChaCha8Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.random_range(0..=i as u64) as usize;
        v.swap(i, j);
    }
}

/// `size` distinct indices of `0..n`, uniformly (first `size` of a shuffle).
fn uniform_subset(n: usize, size: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    shuffle(&mut all, rng);
    all.truncate(size);
    all
}

/// Result of [`match_histogram`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramMatch {
    /// The chosen candidate indices (class by class, then the fill).
    pub selected: Vec<usize>,
    /// `t_k`, the target count of every class.
    pub target_counts: Vec<usize>,
    /// The class counts of the selection.
    pub selected_counts: Vec<usize>,
    /// How many slots had to be filled outside their class because a class
    /// had fewer candidates than its target (0: exact match).
    pub shortfall: usize,
}

/// Top-1 histogram matching (see the [module docs](self)): a subset of
/// `size` candidates whose label histogram matches the real one.
///
/// # Errors
/// [`MetricError::TooFewSamples`] when there are no real labels or fewer
/// candidates than `size`, [`MetricError::InvalidParameter`] for `size == 0`.
pub fn match_histogram(
    real_labels: &[usize],
    candidate_labels: &[usize],
    size: usize,
    seed: u64,
) -> Result<HistogramMatch, MetricError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match_histogram_rng(real_labels, candidate_labels, size, &mut rng)
}

fn match_histogram_rng(
    real_labels: &[usize],
    candidate_labels: &[usize],
    size: usize,
    rng: &mut ChaCha8Rng,
) -> Result<HistogramMatch, MetricError> {
    if real_labels.is_empty() {
        return Err(MetricError::TooFewSamples {
            metric: METRIC,
            set: "real labels",
            needed: 1,
            got: 0,
        });
    }
    if size == 0 {
        return Err(invalid("subset size must be >= 1".into()));
    }
    if candidate_labels.len() < size {
        return Err(MetricError::TooFewSamples {
            metric: METRIC,
            set: "candidate",
            needed: size,
            got: candidate_labels.len(),
        });
    }
    let n_classes = real_labels
        .iter()
        .chain(candidate_labels)
        .copied()
        .max()
        .map_or(0, |m| m + 1);
    let h_real = histogram(real_labels, n_classes);
    let n_real = real_labels.len();
    // Largest-remainder apportionment of `size` slots to the real shares.
    let mut target: Vec<usize> = h_real.iter().map(|&h| h * size / n_real).collect();
    let mut rest: Vec<(usize, usize)> = h_real
        .iter()
        .enumerate()
        .map(|(k, &h)| ((h * size) % n_real, k))
        .collect();
    rest.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let assigned: usize = target.iter().sum();
    for &(_, k) in rest.iter().take(size - assigned) {
        target[k] += 1;
    }
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); n_classes];
    for (i, &l) in candidate_labels.iter().enumerate() {
        by_class[l].push(i);
    }
    let mut selected = Vec::with_capacity(size);
    let mut leftovers = Vec::new();
    for (k, members) in by_class.iter_mut().enumerate() {
        shuffle(members, rng);
        let take = target[k].min(members.len());
        selected.extend_from_slice(&members[..take]);
        leftovers.extend_from_slice(&members[take..]);
    }
    let shortfall = size - selected.len();
    if shortfall > 0 {
        leftovers.sort_unstable();
        shuffle(&mut leftovers, rng);
        selected.extend_from_slice(&leftovers[..shortfall]);
    }
    let selected_counts = histogram(
        &selected
            .iter()
            .map(|&i| candidate_labels[i])
            .collect::<Vec<_>>(),
        n_classes,
    );
    Ok(HistogramMatch {
        selected,
        target_counts: target,
        selected_counts,
        shortfall,
    })
}

/// The gradient method of [`WeightOptimisation`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub enum Optimizer {
    /// Adam (β = 0.9/0.999, ε = 1e-8, PyTorch's update).
    Adam,
    /// Plain gradient descent, as the original (which uses lr 10).
    Sgd,
}

/// FD minimisation over per-candidate log-weights (see the
/// [module docs](self) for the objective and its gradient).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightOptimisation {
    /// Gradient steps (default 300).
    pub steps: usize,
    /// Learning rate (default 0.05 for Adam).
    pub lr: f64,
    /// Adam (default) or SGD.
    pub optimizer: Optimizer,
    /// ε in `(λ + ε)^{-½}` (default 1e-12, the original's `sqrt(λ + eps)`).
    pub eps: f64,
}

impl Default for WeightOptimisation {
    fn default() -> Self {
        WeightOptimisation {
            steps: 300,
            lr: 0.05,
            optimizer: Optimizer::Adam,
            eps: 1e-12,
        }
    }
}

/// Result of [`WeightOptimisation::fit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightFit {
    /// The log-weights θ with the lowest weighted FD seen.
    pub log_weights: Vec<f64>,
    /// FD of the unweighted candidate statistics (θ = 0).
    pub fd_initial: f64,
    /// FD of the weighted statistics at `log_weights`.
    pub fd_best: f64,
    /// The weighted FD before every step, then after the last.
    pub fd_trace: Vec<f64>,
}

/// The symmetric square root `A = Σ^½ = U diag(√max(λ, 0)) Uᵀ` of the
/// symmetrised `Σ` (negative eigenvalues clamped to 0).
fn sym_sqrt(s: &Array2<f64>) -> Result<Array2<f64>, MetricError> {
    let d = s.nrows();
    let m = Array2::<f64>::from_shape_fn((d, d), |(i, j)| 0.5 * (s[[i, j]] + s[[j, i]]));
    let evd = symmetric_eigen(m.view()).map_err(|e| MetricError::Numerical {
        metric: METRIC,
        detail: format!("eigen-decomposition of the real covariance: {e}"),
    })?;
    let (u, l) = (&evd.vectors, &evd.values);
    let b = Array2::<f64>::from_shape_fn((d, d), |(i, k)| u[[i, k]] * l[k].max(0.0).sqrt());
    Ok(matmul_nt(b.view(), u.view(), 1.0, false)?)
}

/// FD of the weighted statistics and its gradient in θ.
struct Objective {
    x: Array2<f64>,
    mu_r: Vec<f64>,
    tr_r: f64,
    a: Array2<f64>,
    eps: f64,
}

impl Objective {
    fn eval(&self, theta: &[f64]) -> Result<(f64, Vec<f64>), MetricError> {
        let (m, d) = self.x.dim();
        // The true weights w = e^θ, not normalised: the objective depends on
        // the total W through W − 1, so it is not scale free.
        let w: Vec<f64> = theta.iter().map(|&t| t.exp()).collect();
        let big_w: f64 = w.iter().sum();
        if big_w.is_nan() || big_w <= 1.0 || !big_w.is_finite() {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("total weight W = {big_w} must be finite and > 1"),
            });
        }
        let mut mu = vec![0.0; d];
        for (i, &wi) in w.iter().enumerate() {
            for (k, mk) in mu.iter_mut().enumerate() {
                *mk += wi * self.x[[i, k]];
            }
        }
        mu.iter_mut().for_each(|v| *v /= big_w);
        let xc = Array2::<f64>::from_shape_fn((m, d), |(i, k)| self.x[[i, k]] - mu[k]);
        let xw = Array2::<f64>::from_shape_fn((m, d), |(i, k)| xc[[i, k]] * w[i].sqrt());
        // Σ_w = X_wᵀ X_w / (W − 1).
        let cov = matmul_tn(xw.view(), xw.view(), 1.0 / (big_w - 1.0), true)?;
        // A Σ_w A, symmetrised.
        let t = matmul(self.a.view(), cov.view(), 1.0, true)?;
        let mm = matmul(t.view(), self.a.view(), 1.0, true)?;
        let mm = Array2::<f64>::from_shape_fn((d, d), |(i, j)| 0.5 * (mm[[i, j]] + mm[[j, i]]));
        let evd = symmetric_eigen(mm.view()).map_err(|e| MetricError::Numerical {
            metric: METRIC,
            detail: format!("eigen-decomposition of A Σ_w A: {e}"),
        })?;
        let (v, lam) = (&evd.vectors, &evd.values);
        let tr_sqrt: f64 = (0..d).map(|k| lam[k].max(0.0).sqrt()).sum();
        let tr_w: f64 = (0..d).map(|k| cov[[k, k]]).sum();
        let mean_term: f64 = mu
            .iter()
            .zip(&self.mu_r)
            .map(|(a, b)| (a - b) * (a - b))
            .sum();
        let fd = mean_term + tr_w + self.tr_r - 2.0 * tr_sqrt;
        // G = I − B diag((λ+ε)^{-½}) Bᵀ with B = A V.
        let b = matmul(self.a.view(), v.view(), 1.0, true)?;
        let bs = Array2::<f64>::from_shape_fn((d, d), |(i, k)| {
            b[[i, k]] / (lam[k].max(0.0) + self.eps).sqrt()
        });
        let mut g = matmul_nt(bs.view(), b.view(), -1.0, true)?;
        for k in 0..d {
            g[[k, k]] += 1.0;
        }
        let tr_g_sigma: f64 = (0..d)
            .flat_map(|i| (0..d).map(move |j| (i, j)))
            .map(|(i, j)| g[[i, j]] * cov[[i, j]])
            .sum();
        let y = matmul(xc.view(), g.view(), 1.0, true)?;
        let dmu: Vec<f64> = mu
            .iter()
            .zip(&self.mu_r)
            .map(|(a, b)| 2.0 * (a - b))
            .collect();
        let grad: Vec<f64> = (0..m)
            .map(|i| {
                let mut lin = 0.0;
                let mut quad = 0.0;
                for k in 0..d {
                    lin += dmu[k] * xc[[i, k]];
                    quad += y[[i, k]] * xc[[i, k]];
                }
                w[i] * (lin / big_w + (quad - tr_g_sigma) / (big_w - 1.0))
            })
            .collect();
        if !fd.is_finite() || grad.iter().any(|g| !g.is_finite()) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: "non-finite weighted FD or gradient".into(),
            });
        }
        Ok((fd, grad))
    }
}

impl WeightOptimisation {
    /// Sets the number of steps.
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = n;
        self
    }
    /// Sets the learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Sets the optimizer.
    pub fn optimizer(mut self, o: Optimizer) -> Self {
        self.optimizer = o;
        self
    }

    /// Minimises the weighted FD of `candidates` against `real` over the
    /// log-weights (see the [module docs](self)). Cost per step: O(M·D²) for
    /// M candidates plus two D × D eigen-decompositions.
    ///
    /// # Errors
    /// As [`check_pair`] (2 rows each), [`MetricError::InvalidParameter`] for a
    /// non-positive learning rate or ε, [`MetricError::Numerical`] when the
    /// objective becomes non-finite.
    pub fn fit(
        &self,
        real: ArrayView2<'_, f32>,
        candidates: ArrayView2<'_, f32>,
    ) -> Result<WeightFit, MetricError> {
        check_pair(METRIC, real, candidates, 2)?;
        if !(self.lr.is_finite() && self.lr > 0.0 && self.eps.is_finite() && self.eps >= 0.0) {
            return Err(invalid(format!(
                "lr ({}) must be > 0 and eps ({}) >= 0",
                self.lr, self.eps
            )));
        }
        let stats = GaussianStats::from_features(real)?;
        let a = sym_sqrt(&stats.cov)?;
        let m = candidates.nrows();
        let obj = Objective {
            x: candidates.mapv(f64::from),
            mu_r: stats.mean.to_vec(),
            tr_r: stats.trace(),
            a,
            eps: self.eps,
        };
        let mut theta = vec![0.0; m];
        let mut adam = Adam::new(m);
        let mut trace = Vec::with_capacity(self.steps + 1);
        let mut best = (f64::INFINITY, theta.clone());
        for step in 0..=self.steps {
            let (fd, g) = obj.eval(&theta)?;
            trace.push(fd);
            if fd < best.0 {
                best = (fd, theta.clone());
            }
            if step == self.steps {
                break;
            }
            match self.optimizer {
                Optimizer::Sgd => theta
                    .iter_mut()
                    .zip(&g)
                    .for_each(|(t, g)| *t -= self.lr * g),
                Optimizer::Adam => adam.step(&mut theta, &g, self.lr),
            }
        }
        Ok(WeightFit {
            log_weights: best.1,
            fd_initial: trace[0],
            fd_best: best.0,
            fd_trace: trace,
        })
    }
}

/// Draws `size` indices with probabilities `p_i = e^{θ_i}/Σ_j e^{θ_j}`: with
/// replacement (inverse-CDF draws, as the original's `np.random.choice(...,
/// replace=True, p)`), or without (the `size` largest Efraimidis–Spirakis keys
/// `ln(u_i)/p_i`).
///
/// # Errors
/// [`MetricError::InvalidParameter`] for empty or non-finite weights, or
/// `size` larger than the number of weights without replacement.
pub fn resample(
    log_weights: &[f64],
    size: usize,
    replacement: bool,
    seed: u64,
) -> Result<Vec<usize>, MetricError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    resample_rng(log_weights, size, replacement, &mut rng)
}

fn resample_rng(
    log_weights: &[f64],
    size: usize,
    replacement: bool,
    rng: &mut ChaCha8Rng,
) -> Result<Vec<usize>, MetricError> {
    let m = log_weights.len();
    if m == 0 || log_weights.iter().any(|t| !t.is_finite()) {
        return Err(invalid("log-weights must be non-empty and finite".into()));
    }
    if !replacement && size > m {
        return Err(invalid(format!(
            "cannot draw {size} of {m} without replacement"
        )));
    }
    let mx = log_weights
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_weights.iter().map(|&t| (t - mx).exp()).collect();
    let total: f64 = w.iter().sum();
    if replacement {
        let mut cdf = Vec::with_capacity(m);
        let mut acc = 0.0;
        for &v in &w {
            acc += v / total;
            cdf.push(acc);
        }
        Ok((0..size)
            .map(|_| {
                let u: f64 = rng.random::<f64>() * acc;
                cdf.partition_point(|&c| c <= u).min(m - 1)
            })
            .collect())
    } else {
        let mut keys: Vec<(f64, usize)> = w
            .iter()
            .enumerate()
            .map(|(i, &wi)| {
                let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
                let key = if wi > 0.0 {
                    u.ln() / (wi / total)
                } else {
                    f64::NEG_INFINITY
                };
                (key, i)
            })
            .collect();
        keys.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        Ok(keys.into_iter().take(size).map(|(_, i)| i).collect())
    }
}

/// Which attack [`FringeAttack::run`] performs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum FringeMethod {
    /// Top-1 histogram matching ([`match_histogram`]); needs labels.
    Top1Histogram,
    /// FD minimisation over log-weights, then resampling by the weights.
    Weights(WeightOptimisation),
}

/// The fringe-feature attack (see the [module docs](self)). Defaults: Top-1
/// histogram matching, subset size = number of real rows, weighted draws with
/// replacement (as the original), seed 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FringeAttack {
    /// The attack.
    pub method: FringeMethod,
    /// Size S of the reported subset (`None`: N_real, as the paper).
    pub subset_size: Option<usize>,
    /// Draw the weighted subset with replacement (the original) or without.
    pub replacement: bool,
    /// Seed of the `ChaCha8Rng` behind every draw.
    pub seed: u64,
}

impl Default for FringeAttack {
    fn default() -> Self {
        FringeAttack {
            method: FringeMethod::Top1Histogram,
            subset_size: None,
            replacement: true,
            seed: 0,
        }
    }
}

/// The inputs of [`FringeAttack::run`]: the attacked feature space, labels for
/// histogram matching, and optionally an independent feature space of the same
/// rows (the paper's CLIP check).
#[derive(Debug, Clone, Copy)]
pub struct FringeData<'a> {
    /// Real features in the attacked space (N_real × D).
    pub real: ArrayView2<'a, f32>,
    /// Candidate features in the attacked space (M × D), M ≥ S.
    pub candidates: ArrayView2<'a, f32>,
    /// Top-1 labels of the real rows (needed by [`FringeMethod::Top1Histogram`]).
    pub real_labels: Option<&'a [usize]>,
    /// Top-1 labels of the candidate rows.
    pub candidate_labels: Option<&'a [usize]>,
    /// The same real rows in an independent feature space (N_real × D').
    pub real_independent: Option<ArrayView2<'a, f32>>,
    /// The same candidate rows in the independent space (M × D').
    pub candidates_independent: Option<ArrayView2<'a, f32>>,
}

impl<'a> FringeData<'a> {
    /// Real and candidate features only.
    pub fn new(real: ArrayView2<'a, f32>, candidates: ArrayView2<'a, f32>) -> Self {
        FringeData {
            real,
            candidates,
            real_labels: None,
            candidate_labels: None,
            real_independent: None,
            candidates_independent: None,
        }
    }
    /// Adds the Top-1 labels.
    pub fn labels(mut self, real: &'a [usize], candidates: &'a [usize]) -> Self {
        self.real_labels = Some(real);
        self.candidate_labels = Some(candidates);
        self
    }
    /// Adds the independent feature space.
    pub fn independent(
        mut self,
        real: ArrayView2<'a, f32>,
        candidates: ArrayView2<'a, f32>,
    ) -> Self {
        self.real_independent = Some(real);
        self.candidates_independent = Some(candidates);
        self
    }
}

/// Result of [`FringeAttack::run`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FringeOutput {
    /// The attacked subset (candidate indices; repeats possible with replacement).
    pub selected: Vec<usize>,
    /// The uniformly drawn honest subset.
    pub baseline: Vec<usize>,
    /// FD(real, baseline subset) in the attacked space.
    pub fd_before: f64,
    /// FD(real, attacked subset) in the attacked space.
    pub fd_after: f64,
    /// FD(real, baseline subset) in the independent space.
    pub fd_independent_before: Option<f64>,
    /// FD(real, attacked subset) in the independent space.
    pub fd_independent_after: Option<f64>,
    /// L1 distance of the normalised label histograms, baseline vs real.
    pub histogram_l1_before: Option<f64>,
    /// L1 distance of the normalised label histograms, attacked vs real.
    pub histogram_l1_after: Option<f64>,
    /// Slots filled outside their class (histogram matching only).
    pub shortfall: Option<usize>,
    /// The weight fit (weight optimisation only).
    pub weight_fit: Option<WeightFit>,
}

fn fd_of_subset(
    real: ArrayView2<'_, f32>,
    cand: ArrayView2<'_, f32>,
    idx: &[usize],
) -> Result<f64, MetricError> {
    let sub: Array2<f32> = cand.select(Axis(0), idx);
    let r = FrechetDistance::new().between_features(real, sub.view())?;
    if r.value.is_finite() {
        Ok(r.value)
    } else {
        Err(MetricError::Numerical {
            metric: METRIC,
            detail: "non-finite Fréchet distance".into(),
        })
    }
}

impl FringeAttack {
    /// Sets the attack.
    pub fn method(mut self, m: FringeMethod) -> Self {
        self.method = m;
        self
    }
    /// Sets the subset size.
    pub fn subset_size(mut self, s: usize) -> Self {
        self.subset_size = Some(s);
        self
    }
    /// With or without replacement for the weighted draws.
    pub fn replacement(mut self, on: bool) -> Self {
        self.replacement = on;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Runs the attack and reports FD before/after in both spaces.
    ///
    /// # Errors
    /// As [`check_pair`] (both spaces; at least 2 rows), mismatched row counts
    /// between the spaces or of the labels, missing labels for
    /// [`FringeMethod::Top1Histogram`], fewer candidates than S
    /// ([`MetricError::TooFewSamples`]), and the errors of the FD and of the
    /// weight fit.
    pub fn run(&self, data: &FringeData<'_>) -> Result<FringeOutput, MetricError> {
        check_pair(METRIC, data.real, data.candidates, 2)?;
        let (n_real, m) = (data.real.nrows(), data.candidates.nrows());
        let size = self.subset_size.unwrap_or(n_real);
        if size < 2 {
            return Err(invalid(format!("subset size must be >= 2, got {size}")));
        }
        if m < size {
            return Err(MetricError::TooFewSamples {
                metric: METRIC,
                set: "candidate",
                needed: size,
                got: m,
            });
        }
        let independent = match (data.real_independent, data.candidates_independent) {
            (Some(r), Some(c)) => {
                check_pair(METRIC, r, c, 2)?;
                if r.nrows() != n_real || c.nrows() != m {
                    return Err(invalid(format!(
                        "independent features have {} real / {} candidate rows, expected {n_real} / {m}",
                        r.nrows(),
                        c.nrows()
                    )));
                }
                Some((r, c))
            }
            (None, None) => None,
            _ => {
                return Err(invalid(
                    "give both independent feature sets or neither".into(),
                ));
            }
        };
        let labels = match (data.real_labels, data.candidate_labels) {
            (Some(r), Some(c)) => {
                if r.len() != n_real || c.len() != m {
                    return Err(invalid(format!(
                        "{} real / {} candidate labels for {n_real} / {m} rows",
                        r.len(),
                        c.len()
                    )));
                }
                Some((r, c))
            }
            (None, None) => None,
            _ => return Err(invalid("give both label vectors or neither".into())),
        };
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let baseline = uniform_subset(m, size, &mut rng);
        let (selected, shortfall, weight_fit) = match &self.method {
            FringeMethod::Top1Histogram => {
                let (rl, cl) = labels
                    .ok_or_else(|| invalid("Top-1 histogram matching needs labels".into()))?;
                let hm = match_histogram_rng(rl, cl, size, &mut rng)?;
                (hm.selected, Some(hm.shortfall), None)
            }
            FringeMethod::Weights(opt) => {
                let fit = opt.fit(data.real, data.candidates)?;
                let idx = resample_rng(&fit.log_weights, size, self.replacement, &mut rng)?;
                (idx, None, Some(fit))
            }
        };
        let fd_before = fd_of_subset(data.real, data.candidates, &baseline)?;
        let fd_after = fd_of_subset(data.real, data.candidates, &selected)?;
        let (fd_independent_before, fd_independent_after) = match independent {
            Some((r, c)) => (
                Some(fd_of_subset(r, c, &baseline)?),
                Some(fd_of_subset(r, c, &selected)?),
            ),
            None => (None, None),
        };
        let (histogram_l1_before, histogram_l1_after) = match labels {
            Some((rl, cl)) => {
                let n_classes = rl.iter().chain(cl).copied().max().map_or(0, |v| v + 1);
                let hr = histogram(rl, n_classes);
                let hb = histogram(
                    &baseline.iter().map(|&i| cl[i]).collect::<Vec<_>>(),
                    n_classes,
                );
                let ha = histogram(
                    &selected.iter().map(|&i| cl[i]).collect::<Vec<_>>(),
                    n_classes,
                );
                (Some(histogram_l1(&hr, &hb)), Some(histogram_l1(&hr, &ha)))
            }
            None => (None, None),
        };
        Ok(FringeOutput {
            selected,
            baseline,
            fd_before,
            fd_after,
            fd_independent_before,
            fd_independent_after,
            histogram_l1_before,
            histogram_l1_after,
            shortfall,
            weight_fit,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::ShapeBuilder;

    #[test]
    fn weighted_fd_gradient_matches_finite_differences() {
        let (m, d) = (9, 3);
        // Generic (full-rank) data from a seeded stream.
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        // Drawn column by column (the order of the original `faer::Mat::from_fn`).
        let cols: Vec<f64> = (0..d)
            .flat_map(|k| (0..m).map(move |_| k))
            .map(|k| rng.random::<f64>() * (1.0 + k as f64))
            .collect();
        let x = Array2::from_shape_vec((m, d).f(), cols).unwrap();
        let real = Array2::<f64>::from_shape_fn((12, d), |_| rng.random::<f64>() * 1.5 + 0.2);
        let stats = GaussianStats::from_features(real.view()).unwrap();
        let obj = Objective {
            x,
            mu_r: stats.mean.to_vec(),
            tr_r: stats.trace(),
            a: sym_sqrt(&stats.cov).unwrap(),
            eps: 0.0,
        };
        let theta: Vec<f64> = (0..m).map(|i| 0.1 * (i as f64 - 4.0)).collect();
        let (_, g) = obj.eval(&theta).unwrap();
        for i in 0..m {
            let h = 1e-6;
            let mut tp = theta.clone();
            tp[i] += h;
            let mut tm = theta.clone();
            tm[i] -= h;
            let fd = (obj.eval(&tp).unwrap().0 - obj.eval(&tm).unwrap().0) / (2.0 * h);
            assert!(
                (fd - g[i]).abs() < 1e-6 * (1.0 + fd.abs()),
                "i={i}: {fd} vs {}",
                g[i]
            );
        }
        // At θ = 0 the weighted statistics are the ddof-1 statistics, so the
        // weighted FD equals the FD of the whole candidate set.
        let xa = obj.x.clone();
        let want = FrechetDistance::new()
            .between_features(real.view(), xa.view())
            .unwrap()
            .value;
        let (got, _) = obj.eval(&vec![0.0; m]).unwrap();
        assert!(
            (got - want).abs() < 1e-10 * want.abs().max(1.0),
            "{got} vs {want}"
        );
    }

    #[test]
    fn histogram_matching_is_exact_when_classes_suffice() {
        let real = [0, 0, 1, 2, 2, 2];
        let cand = [2, 1, 0, 0, 0, 1, 2, 2, 2, 2, 1, 0];
        let hm = match_histogram(&real, &cand, 6, 1).unwrap();
        assert_eq!(hm.target_counts, vec![2, 1, 3]);
        assert_eq!(hm.selected_counts, vec![2, 1, 3]);
        assert_eq!(hm.shortfall, 0);
        let mut s = hm.selected.clone();
        s.sort_unstable();
        s.dedup();
        assert_eq!(s.len(), 6, "no candidate twice");
        // Scaled target with rounding: 4 slots for shares 2/6, 1/6, 3/6.
        let hm = match_histogram(&real, &cand, 4, 1).unwrap();
        assert_eq!(hm.target_counts.iter().sum::<usize>(), 4);
        assert_eq!(hm.target_counts, vec![1, 1, 2]);
        // A class with too few candidates: shortfall filled elsewhere.
        let hm = match_histogram(&[3, 3, 3, 0], &[0, 0, 0, 3, 1, 1], 4, 2).unwrap();
        assert_eq!(hm.shortfall, 2);
        assert_eq!(hm.selected.len(), 4);
    }

    #[test]
    fn resampling_follows_the_weights() {
        let lw = [0.0, f64::ln(3.0), -50.0];
        let idx = resample(&lw, 4000, true, 5).unwrap();
        let c1 = idx.iter().filter(|&&i| i == 1).count() as f64 / 4000.0;
        assert!((c1 - 0.75).abs() < 0.03, "{c1}");
        let idx = resample(&lw, 2, false, 5).unwrap();
        let mut s = idx.clone();
        s.sort_unstable();
        assert_eq!(s, vec![0, 1]);
        assert!(resample(&lw, 4, false, 5).is_err());
        assert_eq!(
            top1_labels(ndarray::array![[0.0f32, 2.0, 2.0], [5.0, 1.0, 0.0]].view()).unwrap(),
            vec![1, 0]
        );
    }
}
