//! Multinomial (softmax) logistic regression with L2 penalty, fitted by
//! full-batch L-BFGS on standardized features — the linear classifier used to
//! compute the Classification Accuracy Score on feature vectors.
//!
//! Ravuri & Vinyals (2019) train a ResNet-50 on generated images; on
//! pre-extracted features the analogue is a linear probe, which is what this
//! module fits.
//!
//! ```text
//! x̃ = (x − μ) / σ                     (training-set mean and population std; σ = 0 → 1)
//! s_i = W x̃_i + b,   p_i = softmax(s_i)
//! L(W, b) = (1/N) Σ_i [log Σ_c e^{s_ic} − s_{i,y_i}] + (λ/2) ‖W‖_F²     (b unpenalized)
//! ∇_W L = (1/N) Σ_i (p_i − e_{y_i}) x̃_iᵀ + λ W,   ∇_b L = (1/N) Σ_i (p_i − e_{y_i})
//! ```
//! The objective is the one of scikit-learn's
//! `LogisticRegression(multi_class="multinomial", C = 1/(λN))` on
//! `StandardScaler` features. L-BFGS (Nocedal 1980; Liu & Nocedal 1989):
//! two-loop recursion with `m` pairs, initial scaling `γ = sᵀy / yᵀy`,
//! backtracking Armijo line search (`c₁ = 1e-4`, halving), pairs kept only
//! when `sᵀy > 1e-10 ‖s‖‖y‖`. Stops when `‖∇L‖_∞ ≤ tol` or the relative
//! decrease of `L` falls below `1e-13`.
//!
//! **Determinism.** The start is `W = 0, b = 0` and nothing is random, so no
//! seed is needed. Gradients are summed over a fixed partition of the rows
//! (independent of the number of threads) in a fixed order, so a fit is
//! bit-identical across runs and thread counts on one machine. (Matrix
//! products use `ndarray`'s `matrixmultiply`, whose SIMD kernel is picked for
//! the CPU at run time: another CPU may differ in the last bits.)

use ndarray::{Array1, Array2, ArrayView2, Axis, Slice};
use rayon::prelude::*;
use serde::Serialize;

use crate::error::CasError;

/// Configuration of the classifier (paper-free defaults documented per field).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogisticRegression {
    /// L2 strength `λ` on the weights (per-sample loss scale; default 1e-4,
    /// scikit-learn's `C = 1/(λN)`).
    pub l2: f64,
    /// Maximum L-BFGS iterations (default 1000).
    pub max_iter: usize,
    /// Gradient tolerance `‖∇L‖_∞ ≤ tol` (default 1e-6).
    pub tol: f64,
    /// Number of L-BFGS correction pairs `m` (default 10).
    pub history: usize,
    /// Standardize features with the training mean/std (default true).
    pub standardize: bool,
}

impl Default for LogisticRegression {
    fn default() -> Self {
        Self {
            l2: 1e-4,
            max_iter: 1000,
            tol: 1e-6,
            history: 10,
            standardize: true,
        }
    }
}

/// A fitted classifier (not serialized: reports carry a [`crate::score::FitSummary`]).
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticModel {
    /// Weights `W`, `[C, D]`, acting on standardized features.
    pub weights: Array2<f64>,
    /// Biases `b`, `[C]`.
    pub bias: Array1<f64>,
    /// Feature means `μ` used for standardization (zeros if disabled).
    pub mean: Array1<f64>,
    /// Feature scales `σ` (ones if disabled).
    pub scale: Array1<f64>,
    /// L-BFGS iterations run.
    pub iterations: usize,
    /// Whether a stopping criterion was met before `max_iter`.
    pub converged: bool,
    /// Final objective `L(W, b)`.
    pub loss: f64,
    /// Final `‖∇L‖_∞`.
    pub grad_norm: f64,
}

/// Rows per matrix-product chunk.
const CHUNK: usize = 256;
/// Fixed number of row groups whose partial gradients are summed in order.
const GROUPS: usize = 8;

pub(crate) fn check_features(what: &'static str, x: &ArrayView2<'_, f32>) -> Result<(), CasError> {
    if let Some((index, v)) = x.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(CasError::NonFinite {
            what,
            index,
            value: f64::from(*v),
        });
    }
    Ok(())
}

pub(crate) fn check_labels(
    what: &'static str,
    labels: &[usize],
    n: usize,
    n_classes: usize,
) -> Result<(), CasError> {
    if labels.len() != n {
        return Err(CasError::LengthMismatch {
            what,
            left: n,
            right: labels.len(),
        });
    }
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l >= n_classes) {
        return Err(CasError::LabelOutOfRange {
            what,
            index,
            label,
            n_classes,
        });
    }
    Ok(())
}

/// Loss and gradient at `(w, b)` on standardized `x` (`[N, D]`).
fn loss_grad(
    x: &Array2<f64>,
    y: &[usize],
    w: &Array2<f64>,
    b: &Array1<f64>,
    l2: f64,
) -> (f64, Array2<f64>, Array1<f64>) {
    let (n, _d) = x.dim();
    let c = w.nrows();
    let per_group = n.div_ceil(GROUPS);
    let parts: Vec<(f64, Array2<f64>, Array1<f64>)> = (0..GROUPS)
        .into_par_iter()
        .map(|g| {
            let (lo, hi) = (g * per_group, ((g + 1) * per_group).min(n));
            let mut loss = 0.0;
            let mut gw = Array2::<f64>::zeros(w.dim());
            let mut gb = Array1::<f64>::zeros(c);
            let mut start = lo;
            while start < hi {
                let end = (start + CHUNK).min(hi);
                let xc = x.slice_axis(Axis(0), Slice::from(start..end));
                let mut sc = xc.dot(&w.t());
                for (r, mut row) in sc.axis_iter_mut(Axis(0)).enumerate() {
                    row += b;
                    let m = row.fold(f64::NEG_INFINITY, |a, &v| a.max(v));
                    let yi = y[start + r];
                    let sy = row[yi] - m;
                    let mut z = 0.0;
                    row.mapv_inplace(|v| {
                        let e = (v - m).exp();
                        z += e;
                        e
                    });
                    // loss_i = log Σ_c e^{s_c} − s_y = log z − (s_y − m), z ≥ 1.
                    loss += z.ln() - sy;
                    row.mapv_inplace(|e| e / z);
                    row[yi] -= 1.0;
                }
                gb += &sc.sum_axis(Axis(0));
                gw += &sc.t().dot(&xc);
                start = end;
            }
            (loss, gw, gb)
        })
        .collect();
    let mut loss = 0.0;
    let mut gw = Array2::<f64>::zeros(w.dim());
    let mut gb = Array1::<f64>::zeros(c);
    for (l, a, bb) in parts {
        loss += l;
        gw += &a;
        gb += &bb;
    }
    let nf = n as f64;
    loss = loss / nf + 0.5 * l2 * w.iter().map(|v| v * v).sum::<f64>();
    gw.mapv_inplace(|v| v / nf);
    gw.scaled_add(l2, w);
    gb.mapv_inplace(|v| v / nf);
    (loss, gw, gb)
}

/// Flattened parameter vector helpers: `[W (row-major), b]`.
fn flatten(w: &Array2<f64>, b: &Array1<f64>) -> Vec<f64> {
    w.iter().chain(b.iter()).copied().collect()
}

fn unflatten(v: &[f64], c: usize, d: usize) -> (Array2<f64>, Array1<f64>) {
    let w = Array2::from_shape_vec((c, d), v[..c * d].to_vec())
        .unwrap_or_else(|_| unreachable!("length c*d by construction"));
    let b = Array1::from(v[c * d..].to_vec());
    (w, b)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl LogisticRegression {
    /// Sets `λ`.
    pub fn l2(mut self, l2: f64) -> Self {
        self.l2 = l2;
        self
    }

    /// Sets the iteration cap.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }

    /// Sets the gradient tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }

    /// Sets the number of L-BFGS pairs.
    pub fn history(mut self, m: usize) -> Self {
        self.history = m;
        self
    }

    /// Enables or disables standardization.
    pub fn standardize(mut self, on: bool) -> Self {
        self.standardize = on;
        self
    }

    fn check(&self) -> Result<(), CasError> {
        if !(self.l2 > 0.0 && self.l2.is_finite()) {
            return Err(CasError::InvalidParameter {
                name: "l2",
                reason: format!("must be positive and finite, got {}", self.l2),
            });
        }
        if !(self.tol > 0.0 && self.tol.is_finite()) {
            return Err(CasError::InvalidParameter {
                name: "tol",
                reason: format!("must be positive, got {}", self.tol),
            });
        }
        if self.max_iter == 0 || self.history == 0 {
            return Err(CasError::InvalidParameter {
                name: "max_iter/history",
                reason: "must be at least 1".into(),
            });
        }
        Ok(())
    }

    /// Fits the model on features `x` (`[N, D]`) with labels `y ∈ 0..n_classes`.
    ///
    /// # Errors
    /// `n_classes < 2`, `N < 2`, `D = 0`, length mismatch, a label out of
    /// range, a class without samples ([`CasError::EmptyClass`]), non-finite
    /// features, bad parameters, or a non-finite loss.
    pub fn fit(
        &self,
        x: ArrayView2<'_, f32>,
        y: &[usize],
        n_classes: usize,
    ) -> Result<LogisticModel, CasError> {
        self.check()?;
        let (n, d) = x.dim();
        if n_classes < 2 {
            return Err(CasError::TooFewSamples {
                what: "classes",
                min: 2,
                got: n_classes,
            });
        }
        if n < 2 {
            return Err(CasError::TooFewSamples {
                what: "training samples",
                min: 2,
                got: n,
            });
        }
        if d == 0 {
            return Err(CasError::TooFewSamples {
                what: "feature dimension",
                min: 1,
                got: 0,
            });
        }
        check_labels("training labels", y, n, n_classes)?;
        check_features("training features", &x)?;
        let mut counts = vec![0usize; n_classes];
        for &l in y {
            counts[l] += 1;
        }
        if let Some(class) = counts.iter().position(|&c| c == 0) {
            return Err(CasError::EmptyClass {
                what: "training set",
                class,
            });
        }

        // Standardization statistics (f64, population std as StandardScaler).
        let nf = n as f64;
        let (mean, scale) = if self.standardize {
            let mut mean = Array1::<f64>::zeros(d);
            for row in x.rows() {
                for (m, &v) in mean.iter_mut().zip(row) {
                    *m += f64::from(v);
                }
            }
            mean.mapv_inplace(|v| v / nf);
            let mut var = Array1::<f64>::zeros(d);
            for row in x.rows() {
                for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                    let t = f64::from(v) - m;
                    *s += t * t;
                }
            }
            let scale = var.mapv(|v| {
                let sd = (v / nf).sqrt();
                if sd > 0.0 { sd } else { 1.0 }
            });
            (mean, scale)
        } else {
            (Array1::zeros(d), Array1::ones(d))
        };
        let xs =
            Array2::from_shape_fn((n, d), |(i, j)| (f64::from(x[[i, j]]) - mean[j]) / scale[j]);

        let c = n_classes;
        let mut w = Array2::<f64>::zeros((c, d));
        let mut b = Array1::<f64>::zeros(c);
        let (mut f, gw, gb) = loss_grad(&xs, y, &w, &b, self.l2);
        let mut g = flatten(&gw, &gb);
        let mut params = flatten(&w, &b);
        let mut s_hist: Vec<Vec<f64>> = Vec::new();
        let mut y_hist: Vec<Vec<f64>> = Vec::new();
        let mut converged = false;
        let mut iterations = 0;
        let inf_norm = |v: &[f64]| v.iter().fold(0.0f64, |a, t| a.max(t.abs()));
        for it in 0..self.max_iter {
            if inf_norm(&g) <= self.tol {
                converged = true;
                break;
            }
            iterations = it + 1;
            // Two-loop recursion: dir = −H g.
            let mut q = g.clone();
            let k = s_hist.len();
            let mut alpha = vec![0.0; k];
            for i in (0..k).rev() {
                let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
                alpha[i] = rho * dot(&s_hist[i], &q);
                for (qj, yj) in q.iter_mut().zip(&y_hist[i]) {
                    *qj -= alpha[i] * yj;
                }
            }
            let gamma = if k > 0 {
                dot(&s_hist[k - 1], &y_hist[k - 1]) / dot(&y_hist[k - 1], &y_hist[k - 1])
            } else {
                // First step: unit-length steepest descent.
                1.0 / dot(&g, &g).sqrt().max(1.0)
            };
            q.iter_mut().for_each(|v| *v *= gamma);
            for i in 0..k {
                let rho = 1.0 / dot(&y_hist[i], &s_hist[i]);
                let beta = rho * dot(&y_hist[i], &q);
                for (qj, sj) in q.iter_mut().zip(&s_hist[i]) {
                    *qj += (alpha[i] - beta) * sj;
                }
            }
            let mut dir: Vec<f64> = q.iter().map(|v| -v).collect();
            let mut slope = dot(&g, &dir);
            if slope >= 0.0 {
                // Not a descent direction (should not happen for a convex
                // objective): restart from steepest descent.
                s_hist.clear();
                y_hist.clear();
                dir = g.iter().map(|v| -v).collect();
                slope = -dot(&g, &g);
            }
            // Backtracking Armijo line search.
            let mut t = 1.0;
            let mut accepted = None;
            for _ in 0..60 {
                let trial: Vec<f64> = params.iter().zip(&dir).map(|(p, d)| p + t * d).collect();
                let (tw, tb) = unflatten(&trial, c, d);
                let (tf, tgw, tgb) = loss_grad(&xs, y, &tw, &tb, self.l2);
                if tf.is_finite() && tf <= f + 1e-4 * t * slope {
                    accepted = Some((trial, tf, flatten(&tgw, &tgb)));
                    break;
                }
                t *= 0.5;
            }
            let Some((new_params, new_f, new_g)) = accepted else {
                // No decrease possible at machine precision: we are at the optimum
                // to within round-off.
                converged = inf_norm(&g) <= self.tol.sqrt();
                break;
            };
            let sv: Vec<f64> = new_params.iter().zip(&params).map(|(a, b)| a - b).collect();
            let yv: Vec<f64> = new_g.iter().zip(&g).map(|(a, b)| a - b).collect();
            let sy = dot(&sv, &yv);
            if sy > 1e-10 * dot(&sv, &sv).sqrt() * dot(&yv, &yv).sqrt() {
                if s_hist.len() == self.history {
                    s_hist.remove(0);
                    y_hist.remove(0);
                }
                s_hist.push(sv);
                y_hist.push(yv);
            }
            let rel = (f - new_f) / f.abs().max(new_f.abs()).max(1e-300);
            params = new_params;
            g = new_g;
            f = new_f;
            if rel.abs() < 1e-13 {
                converged = true;
                break;
            }
        }
        (w, b) = unflatten(&params, c, d);
        let grad_norm = inf_norm(&g);
        if !f.is_finite() || !grad_norm.is_finite() {
            return Err(CasError::Numerical {
                what: "logistic regression fit",
                reason: format!("loss {f}, gradient norm {grad_norm}"),
            });
        }
        Ok(LogisticModel {
            weights: w,
            bias: b,
            mean,
            scale,
            iterations,
            converged,
            loss: f,
            grad_norm,
        })
    }
}

impl LogisticModel {
    /// Number of classes `C`.
    pub fn n_classes(&self) -> usize {
        self.bias.len()
    }

    /// Feature dimension `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Scores `s = W (x − μ)/σ + b`, `[N, C]`.
    ///
    /// # Errors
    /// Dimension mismatch or non-finite features.
    pub fn decision_function(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f64>, CasError> {
        if x.ncols() != self.dim() {
            return Err(CasError::DimensionMismatch {
                what: "features vs model",
                left: x.ncols(),
                right: self.dim(),
            });
        }
        check_features("features", &x)?;
        let xs = Array2::from_shape_fn(x.dim(), |(i, j)| {
            (f64::from(x[[i, j]]) - self.mean[j]) / self.scale[j]
        });
        let mut sc = xs.dot(&self.weights.t());
        for mut row in sc.axis_iter_mut(Axis(0)) {
            row += &self.bias;
        }
        Ok(sc)
    }

    /// Class probabilities `softmax(s)`, `[N, C]`.
    ///
    /// # Errors
    /// As [`LogisticModel::decision_function`].
    pub fn predict_proba(&self, x: ArrayView2<'_, f32>) -> Result<Array2<f64>, CasError> {
        let mut sc = self.decision_function(x)?;
        for mut row in sc.axis_iter_mut(Axis(0)) {
            let m = row.fold(f64::NEG_INFINITY, |a, &v| a.max(v));
            row.mapv_inplace(|v| (v - m).exp());
            let z = row.sum();
            row.mapv_inplace(|v| v / z);
        }
        Ok(sc)
    }

    /// The `k` highest-scoring classes of every row, best first (ties: lower
    /// class index first).
    ///
    /// # Errors
    /// `k = 0` or `k > C`, or as [`LogisticModel::decision_function`].
    pub fn top_k(&self, x: ArrayView2<'_, f32>, k: usize) -> Result<Vec<Vec<usize>>, CasError> {
        if k == 0 || k > self.n_classes() {
            return Err(CasError::InvalidParameter {
                name: "k",
                reason: format!("must be in 1..={}, got {k}", self.n_classes()),
            });
        }
        let sc = self.decision_function(x)?;
        Ok(sc
            .rows()
            .into_iter()
            .map(|row| top_k_of(&row.to_vec(), k))
            .collect())
    }

    /// The highest-scoring class of every row.
    ///
    /// # Errors
    /// As [`LogisticModel::decision_function`].
    pub fn predict(&self, x: ArrayView2<'_, f32>) -> Result<Vec<usize>, CasError> {
        Ok(self.top_k(x, 1)?.into_iter().map(|v| v[0]).collect())
    }
}

/// Indices of the `k` largest scores, best first, ties by index.
pub(crate) fn top_k_of(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len()).collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}
