//! FLS, the feature likelihood score (Jiralerspong et al. 2023, "Feature
//! likelihood score: evaluating the generalization of generative models using
//! samples", NeurIPS), as in dgm-eval's `dgm_eval/metrics/fls.py` (from
//! marcojira/fls), on the CPU in float64.
//!
//! **Model.** A Gaussian kernel density (an equal-weight mixture of isotropic
//! Gaussians) centred at the M kernel points `y_j` (the generated samples, or
//! the baseline samples), each with its own log-variance `s_j`:
//!
//! ```text
//! log p(x) = logsumexp_j [ −‖x − y_j‖² / (2 e^{s_j}) − (D/2) s_j − ln M ]   (− (D/2) ln 2π, dropped)
//! NLL(X) = −(1/|X|) Σ_{x∈X} log p(x)
//! ```
//!
//! **Fit.** The `s_j` start at 0 and minimise `NLL(train)` with Adam
//! (lr 0.5, betas 0.9/0.999, eps 1e-8, PyTorch's update), lr × 0.1 after 50
//! steps (`MultiStepLR([50], 0.1)`), 100 steps, each followed by clamping
//! `s_j` to [−100, 20]. The gradient is exact:
//! `∂NLL/∂s_j = −(1/N) Σ_i w_ij (‖x_i − y_j‖² e^{−s_j}/2 − D/2)`, with
//! `w_ij` the softmax over j of the bracket above.
//!
//! **Score.** All four sets are first standardised with the mean and the
//! (ddof 1) standard deviation of their union (a zero-variance column is left
//! unscaled: it is constant, so it adds nothing to any distance). Then
//!
//! ```text
//! FLS = 100 · exp(−2 (NLL_gen(test) − NLL_baseline(test)) / D)
//! ```
//!
//! where `NLL_gen(test)` is the test NLL of the density on the generated
//! samples and `NLL_baseline(test)` that of the density on held-out training
//! samples (the baseline). A model that copies its training set fits `train`
//! well but generalises badly, so its test NLL rises and FLS falls; FLS ≈ 100
//! means the generated density explains the test set as well as held-out
//! training data does.
//!
//! **Overfitting score** (`compute_fls_overfit`): with the kernels fitted on
//! `train`, `Δ_j = logsumexp_i ℓ_ij(train) − logsumexp_i ℓ_ij(test)` over the
//! first `min(|train|, |test|)` rows of each, and
//! `score = 100 · #{j : Δ_j > 0}/M − 50` (≈ 0 for a model that does not copy,
//! up to 50 when every kernel is closer to training than to test data).
//!
//! The original runs float32 on CUDA, so its numbers depend on the optimiser
//! path; this port is deterministic (fixed summation order, independent of the
//! thread count) and not bit-compatible with it. The conformance corpus has no
//! FLS reference for that reason.

use gen_metrics_linalg::Adam;
use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::MemorizationError;
use crate::error::{check_dim, finite, to_f64_checked};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, MetricError, Outcome, Set, Spec,
};

const METRIC: &str = "FLS";
/// Rows per block of the deterministic gradient reduction.
const BLOCK: usize = 256;

/// FLS configuration with dgm-eval's defaults (see the [module docs](self)).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fls {
    /// Adam steps (100).
    pub steps: usize,
    /// Initial learning rate (0.5).
    pub lr: f64,
    /// Step after which the learning rate is multiplied by `lr_gamma` (50).
    pub lr_milestone: usize,
    /// Learning-rate factor at the milestone (0.1).
    pub lr_gamma: f64,
    /// Initial log-variance of every kernel (0).
    pub init_log_sigma: f64,
    /// Standardise the features with the union's mean and std (true).
    pub normalize: bool,
    /// Seed for [`Fls::compute_split`]'s subsampling.
    pub seed: u64,
}

impl Default for Fls {
    fn default() -> Self {
        Fls {
            steps: 100,
            lr: 0.5,
            lr_milestone: 50,
            lr_gamma: 0.1,
            init_log_sigma: 0.0,
            normalize: true,
            seed: 0,
        }
    }
}

/// Result of [`Fls::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlsOutput {
    /// `FLS = 100 · exp(−2 (NLL_gen − NLL_baseline)/D)`.
    pub fls: f64,
    /// `NLL_gen(test)`, test NLL under the generated-sample density.
    pub gen_nll: f64,
    /// `NLL_baseline(test)`, test NLL under the baseline density.
    pub baseline_nll: f64,
    /// Final train NLL of the generated-sample density (the fit's loss).
    pub gen_train_nll: f64,
    /// Fitted log-variances of the generated kernels.
    pub gen_log_sigmas: Vec<f64>,
    /// Fitted log-variances of the baseline kernels.
    pub baseline_log_sigmas: Vec<f64>,
}

/// Result of [`Fls::compute_overfit`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlsOverfitOutput {
    /// `100 · #{j : Δ_j > 0}/M − 50`.
    pub score: f64,
    /// `Δ_j` per generated kernel.
    pub ll_diff: Vec<f64>,
}

/// Squared distances `‖x_i − y_j‖²` (N × M).
fn sq_dists(x: &Array2<f64>, y: &Array2<f64>) -> Array2<f64> {
    let rows: Vec<Vec<f64>> = x
        .outer_iter()
        .into_par_iter()
        .map(|xi| {
            y.outer_iter()
                .map(|yj| {
                    xi.iter()
                        .zip(yj.iter())
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum()
                })
                .collect()
        })
        .collect();
    let (n, m) = (x.nrows(), y.nrows());
    let mut out = Array2::zeros((n, m));
    for (i, r) in rows.into_iter().enumerate() {
        out.row_mut(i).assign(&Array1::from_vec(r));
    }
    out
}

/// `ℓ_ij = −d_ij/(2e^{s_j}) − (D/2)s_j − ln M` for one row.
fn row_terms(d: ndarray::ArrayView1<'_, f64>, s: &[f64], dim: f64) -> Vec<f64> {
    let ln_m = (s.len() as f64).ln();
    d.iter()
        .zip(s)
        .map(|(&dij, &sj)| -0.5 * dij * (-sj).exp() - 0.5 * dim * sj - ln_m)
        .collect()
}

fn logsumexp(v: &[f64]) -> f64 {
    let mx = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !mx.is_finite() {
        return mx;
    }
    mx + v.iter().map(|&t| (t - mx).exp()).sum::<f64>().ln()
}

/// NLL of the rows of `dists` and, if asked, its gradient in `s`; per-block
/// partial sums are added in block order, so the result does not depend on
/// the number of threads.
fn nll_and_grad(dists: &Array2<f64>, s: &[f64], dim: f64, grad: bool) -> (f64, Vec<f64>) {
    let n = dists.nrows();
    let m = s.len();
    let inv_sigma: Vec<f64> = s.iter().map(|&sj| (-sj).exp()).collect();
    let partial: Vec<(f64, Vec<f64>)> = (0..n.div_ceil(BLOCK))
        .into_par_iter()
        .map(|b| {
            let mut nll = 0.0;
            let mut g = if grad { vec![0.0; m] } else { Vec::new() };
            for i in b * BLOCK..((b + 1) * BLOCK).min(n) {
                let d = dists.row(i);
                let t = row_terms(d, s, dim);
                let lse = logsumexp(&t);
                nll -= lse;
                if grad {
                    for j in 0..m {
                        let w = (t[j] - lse).exp();
                        g[j] -= w * (0.5 * d[j] * inv_sigma[j] - 0.5 * dim);
                    }
                }
            }
            (nll, g)
        })
        .collect();
    let mut nll = 0.0;
    let mut g = vec![0.0; if grad { m } else { 0 }];
    for (pn, pg) in partial {
        nll += pn;
        for (a, b) in g.iter_mut().zip(pg) {
            *a += b;
        }
    }
    let nf = n as f64;
    (nll / nf, g.into_iter().map(|v| v / nf).collect())
}

impl Fls {
    /// Sets the number of Adam steps.
    pub fn steps(mut self, n: usize) -> Self {
        self.steps = n;
        self
    }
    /// Sets the initial learning rate.
    pub fn lr(mut self, lr: f64) -> Self {
        self.lr = lr;
        self
    }
    /// Turns the standardisation on or off.
    pub fn normalize(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }
    /// Sets the subsampling seed of [`Fls::compute_split`].
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Fits the log-variances of kernels at `kernel` to `data` (Adam, see the
    /// [module docs](self)); returns them and the final loss.
    fn fit_log_sigmas(
        &self,
        data: &Array2<f64>,
        kernel: &Array2<f64>,
    ) -> Result<(Vec<f64>, f64), MemorizationError> {
        let dim = data.ncols() as f64;
        let dists = sq_dists(data, kernel);
        let m = kernel.nrows();
        let mut s = vec![self.init_log_sigma; m];
        let mut adam = Adam::new(m);
        for step in 0..self.steps {
            let (_, g) = nll_and_grad(&dists, &s, dim, true);
            let lr = if step >= self.lr_milestone {
                self.lr * self.lr_gamma
            } else {
                self.lr
            };
            adam.step(&mut s, &g, lr);
            for sj in &mut s {
                *sj = sj.clamp(-100.0, 20.0);
            }
        }
        let (loss, _) = nll_and_grad(&dists, &s, dim, false);
        Ok((s, finite(METRIC, "train NLL", loss)?))
    }

    fn check_params(&self) -> Result<(), MemorizationError> {
        let ok = self.lr.is_finite()
            && self.lr > 0.0
            && self.lr_gamma.is_finite()
            && self.lr_gamma > 0.0
            && self.init_log_sigma.is_finite();
        if !ok {
            return Err(MemorizationError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "lr ({}) and lr_gamma ({}) must be > 0 and init_log_sigma ({}) finite",
                    self.lr, self.lr_gamma, self.init_log_sigma
                ),
            });
        }
        Ok(())
    }

    /// Checks, widens and (optionally) standardises the sets together.
    fn prepare(
        &self,
        sets: [(&'static str, ArrayView2<'_, f32>); 4],
    ) -> Result<Vec<Array2<f64>>, MemorizationError> {
        self.check_params()?;
        let mut out = Vec::with_capacity(4);
        for (name, x) in sets {
            let a = to_f64_checked(METRIC, name, x, 2)?;
            if let Some(first) = out.first() {
                let first: &Array2<f64> = first;
                check_dim(METRIC, name, first.ncols(), a.ncols())?;
            }
            out.push(a);
        }
        if self.normalize {
            let views: Vec<ArrayView2<'_, f64>> = out.iter().map(|a| a.view()).collect();
            let all = ndarray::concatenate(Axis(0), &views).map_err(|e| {
                MemorizationError::Numerical {
                    metric: METRIC,
                    detail: format!("concatenating the sets: {e}"),
                }
            })?;
            let n = all.nrows() as f64;
            let mean = all.sum_axis(Axis(0)) / n;
            let std = all
                .var_axis(Axis(0), 1.0)
                .mapv(|v| if v > 0.0 { v.sqrt() } else { 1.0 });
            for a in &mut out {
                for mut row in a.outer_iter_mut() {
                    row -= &mean;
                    row /= &std;
                }
            }
        }
        Ok(out)
    }

    /// FLS of `gen_feats` given the training set (to fit the bandwidths), a
    /// baseline set of held-out training samples (the reference density) and a
    /// test set (to evaluate), as dgm-eval's `compute_fls(train, baseline,
    /// test, gen)`.
    ///
    /// Memory: the `|train| × |gen|` and `|train| × |baseline|` squared-distance
    /// matrices are held in float64.
    ///
    /// # Errors
    /// [`MemorizationError::TooFewSamples`] for a set with fewer than 2 rows,
    /// [`MemorizationError::DimensionMismatch`], [`MemorizationError::NonFinite`],
    /// [`MemorizationError::InvalidParameter`], [`MemorizationError::Numerical`]
    /// for a non-finite likelihood.
    pub fn compute(
        &self,
        train: ArrayView2<'_, f32>,
        baseline: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<FlsOutput, MemorizationError> {
        let sets = self.prepare([
            ("train", train),
            ("baseline", baseline),
            ("test", test),
            ("gen", gen_feats),
        ])?;
        let (tr, base, te, ge) = (&sets[0], &sets[1], &sets[2], &sets[3]);
        let dim = tr.ncols() as f64;
        let (gen_s, gen_train_nll) = self.fit_log_sigmas(tr, ge)?;
        let (gen_nll, _) = nll_and_grad(&sq_dists(te, ge), &gen_s, dim, false);
        let (base_s, _) = self.fit_log_sigmas(tr, base)?;
        let (baseline_nll, _) = nll_and_grad(&sq_dists(te, base), &base_s, dim, false);
        let gen_nll = finite(METRIC, "generated test NLL", gen_nll)?;
        let baseline_nll = finite(METRIC, "baseline test NLL", baseline_nll)?;
        let fls = finite(
            METRIC,
            "FLS",
            100.0 * (-2.0 * (gen_nll - baseline_nll) / dim).exp(),
        )?;
        Ok(FlsOutput {
            fls,
            gen_nll,
            baseline_nll,
            gen_train_nll,
            gen_log_sigmas: gen_s,
            baseline_log_sigmas: base_s,
        })
    }

    /// dgm-eval's protocol around [`Fls::compute`]: `r = min(⌊|train|/2⌋,
    /// |test|, |gen|)`; `r` test rows, `r` generated rows and `2r` training rows
    /// are drawn without replacement (seeded `ChaCha8Rng`, in that order); the
    /// first `r` training rows fit the bandwidths, the other `r` are the
    /// baseline.
    ///
    /// # Errors
    /// As [`Fls::compute`] (`r ≥ 2` is needed).
    pub fn compute_split(
        &self,
        train: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<FlsOutput, MemorizationError> {
        let r = (train.nrows() / 2).min(test.nrows()).min(gen_feats.nrows());
        if r < 2 {
            return Err(MemorizationError::TooFewSamples {
                metric: METRIC,
                set: "min(train/2, test, gen)",
                needed: 2,
                got: r,
            });
        }
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let te_idx = rand::seq::index::sample(&mut rng, test.nrows(), r).into_vec();
        let ge_idx = rand::seq::index::sample(&mut rng, gen_feats.nrows(), r).into_vec();
        let tr_idx = rand::seq::index::sample(&mut rng, train.nrows(), 2 * r).into_vec();
        let te = test.select(Axis(0), &te_idx);
        let ge = gen_feats.select(Axis(0), &ge_idx);
        let tr = train.select(Axis(0), &tr_idx);
        let (fit, base) = tr.view().split_at(Axis(0), r);
        self.compute(fit, base, te.view(), ge.view())
    }

    /// dgm-eval's `compute_fls_overfit(train, baseline, test, gen)` (the
    /// baseline only enters the standardisation): see the
    /// [module docs](self).
    ///
    /// # Errors
    /// As [`Fls::compute`].
    pub fn compute_overfit(
        &self,
        train: ArrayView2<'_, f32>,
        baseline: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<FlsOverfitOutput, MemorizationError> {
        let sets = self.prepare([
            ("train", train),
            ("baseline", baseline),
            ("test", test),
            ("gen", gen_feats),
        ])?;
        let (tr, te, ge) = (&sets[0], &sets[2], &sets[3]);
        let dim = tr.ncols() as f64;
        let (gen_s, _) = self.fit_log_sigmas(tr, ge)?;
        let size = tr.nrows().min(te.nrows());
        // logsumexp over the data rows, per kernel column.
        let col_lse = |x: &Array2<f64>| -> Vec<f64> {
            let d = sq_dists(&x.slice_axis(Axis(0), Slice::from(..size)).to_owned(), ge);
            let terms: Vec<Vec<f64>> = d
                .outer_iter()
                .map(|row| row_terms(row, &gen_s, dim))
                .collect();
            (0..ge.nrows())
                .map(|j| logsumexp(&terms.iter().map(|t| t[j]).collect::<Vec<_>>()))
                .collect()
        };
        let a = col_lse(tr);
        let b = col_lse(te);
        let ll_diff: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x - y).collect();
        if ll_diff.iter().any(|v| !v.is_finite()) {
            return Err(MemorizationError::Numerical {
                metric: METRIC,
                detail: "non-finite log-likelihood difference".into(),
            });
        }
        let pos = ll_diff.iter().filter(|&&v| v > 0.0).count();
        let score = 100.0 * pos as f64 / ll_diff.len() as f64 - 50.0;
        Ok(FlsOverfitOutput { score, ll_diff })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of FLS (CPU; the real set is the held-out test set).
pub static SPEC: Spec = Spec {
    name: "fls",
    about: "feature likelihood score: test likelihood under a KDE on generated samples, against a training baseline",
    reference: "Jiralerspong et al. 2023, Feature Likelihood Divergence / Score; dgm-eval compute_fls",
    inputs: &[Input::Train, Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "fls",
        Direction::HigherIsBetter,
        "100 · exp(−2 (NLL_gen − NLL_baseline) / D)",
    )],
    dynamic_keys: None,
    make: |p| Ok(Box::new(Fls::default().seed(p.seed))),
};

impl Metric for Fls {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let train = cx.rows(&SPEC, Set::Train)?;
        let test = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        Ok(Outcome::new().value("fls", self.compute_split(train, test, fake)?.fls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let x = Array2::from_shape_fn((7, 3), |(i, j)| ((i * 3 + j) as f64 * 0.37).sin());
        let y = Array2::from_shape_fn((4, 3), |(i, j)| ((i * 5 + j) as f64 * 0.71).cos());
        let d = sq_dists(&x, &y);
        let s = vec![0.1, -0.3, 0.5, 0.0];
        let (_, g) = nll_and_grad(&d, &s, 3.0, true);
        for j in 0..4 {
            let h = 1e-6;
            let mut sp = s.clone();
            sp[j] += h;
            let mut sm = s.clone();
            sm[j] -= h;
            let fd = (nll_and_grad(&d, &sp, 3.0, false).0 - nll_and_grad(&d, &sm, 3.0, false).0)
                / (2.0 * h);
            assert!((fd - g[j]).abs() < 1e-7, "j={j}: {fd} vs {}", g[j]);
        }
    }
}
