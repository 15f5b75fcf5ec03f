//! The study's generative models: densities on feature vectors that can be
//! sampled *and* report their exact log-density, so that KL(p_data ‖ p_model)
//! can be estimated without approximation on the model side.
//!
//! ```text
//! Gaussian       log N(x; μ, Σ) = −½ [D ln 2π + ln det Σ + ‖L⁻¹(x − μ)‖²],   Σ = L Lᵀ
//! mixture        log q(x) = logsumexp_c [ln w_c + log N(x; μ_c, Σ_c)]
//! Gaussian KDE   log q(x) = logsumexp_j [−‖x − t_j‖² / (2h²)] − ln N − (D/2) ln(2π h²)
//! ```
//!
//! Sampling: `μ + L z` with `z ~ N(0, I)`; a mixture first draws its component
//! with probability `w_c`; a KDE draws a centre `t_j` uniformly, then adds
//! `h z`. Every sample carries a class label: the component's class for a
//! mixture, the label of the kernel centre for a KDE.

use anyhow::{Result, bail};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `log Σ_i e^{v_i}` without overflow (`−∞` for an empty slice).
pub fn logsumexp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// A full-covariance Gaussian with its lower Cholesky factor.
#[derive(Debug, Clone)]
pub struct Gaussian {
    mean: Array1<f64>,
    chol: Array2<f64>,
    log_det: f64,
}

impl Gaussian {
    /// The maximum-likelihood fit to the rows of `x` (ddof 1 covariance) with
    /// a ridge of `1e-6 · tr Σ / D` on the diagonal so that few rows still give
    /// a positive-definite covariance.
    pub fn fit(x: ArrayView2<'_, f64>) -> Result<Self> {
        let n = x.nrows();
        if n < 2 {
            bail!("a Gaussian needs at least 2 rows, got {n}");
        }
        let mean = x.mean_axis(Axis(0)).expect("n >= 2 rows");
        let c = &x - &mean;
        let mut cov = c.t().dot(&c) / (n as f64 - 1.0);
        let d = cov.nrows();
        let ridge = 1e-6 * cov.diag().sum() / d as f64;
        for i in 0..d {
            cov[[i, i]] += ridge;
        }
        Self::new(mean, cov.view())
    }

    /// `N(mean, cov)`.
    pub fn new(mean: Array1<f64>, cov: ArrayView2<'_, f64>) -> Result<Self> {
        let chol = cholesky(cov)?;
        let log_det = 2.0 * chol.diag().iter().map(|v| v.ln()).sum::<f64>();
        Ok(Gaussian {
            mean,
            chol,
            log_det,
        })
    }

    /// The dimension D.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `log N(x; μ, Σ)` of one point.
    pub fn log_pdf(&self, x: ArrayView1<'_, f64>) -> f64 {
        let d = self.dim();
        // Forward substitution L y = x − μ; the quadratic form is ‖y‖².
        let mut y = vec![0.0; d];
        let mut q = 0.0;
        for i in 0..d {
            let mut s = x[i] - self.mean[i];
            for (k, yk) in y.iter().enumerate().take(i) {
                s -= self.chol[[i, k]] * yk;
            }
            y[i] = s / self.chol[[i, i]];
            q += y[i] * y[i];
        }
        -0.5 * (d as f64 * LN_2PI + self.log_det + q)
    }

    /// One draw `μ + L z`.
    pub fn sample(&self, rng: &mut ChaCha8Rng) -> Array1<f64> {
        let d = self.dim();
        let z: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
        let mut x = self.mean.clone();
        for i in 0..d {
            x[i] += (0..=i).map(|k| self.chol[[i, k]] * z[k]).sum::<f64>();
        }
        x
    }
}

/// Lower Cholesky factor of a symmetric positive-definite matrix.
fn cholesky(a: ArrayView2<'_, f64>) -> Result<Array2<f64>> {
    let d = a.nrows();
    let mut l = Array2::<f64>::zeros((d, d));
    for i in 0..d {
        for j in 0..=i {
            let s: f64 = a[[i, j]] - (0..j).map(|k| l[[i, k]] * l[[j, k]]).sum::<f64>();
            if i == j {
                if s.is_nan() || s <= 0.0 {
                    bail!("covariance is not positive definite (pivot {i}: {s})");
                }
                l[[i, i]] = s.sqrt();
            } else {
                l[[i, j]] = s / l[[j, j]];
            }
        }
    }
    Ok(l)
}

/// The kinds of model in the ladder.
#[derive(Debug, Clone)]
pub enum Density {
    /// A mixture of Gaussians, one per class `classes[c]`, with weights `w_c`.
    Mixture {
        /// Components.
        components: Vec<Gaussian>,
        /// Their class labels.
        classes: Vec<u8>,
        /// Their weights (sum to 1).
        weights: Vec<f64>,
    },
    /// A Gaussian KDE on `centres` with isotropic bandwidth `h`.
    Kde {
        /// The kernel centres (the training features).
        centres: Array2<f64>,
        /// Their labels.
        labels: Vec<u8>,
        /// The bandwidth h (per-coordinate standard deviation).
        h: f64,
    },
}

/// A named model of the ladder.
#[derive(Debug, Clone)]
pub struct Model {
    /// Short name used in tables.
    pub name: String,
    /// One line on what it is.
    pub description: String,
    /// The density.
    pub density: Density,
}

/// Samples drawn from a model: features and labels.
#[derive(Debug, Clone)]
pub struct Samples {
    /// `[n, D]` features.
    pub x: Array2<f64>,
    /// Class label of every row.
    pub labels: Vec<u8>,
}

impl Model {
    /// A single Gaussian on all training rows.
    pub fn gaussian(train: ArrayView2<'_, f64>) -> Result<Self> {
        Ok(Model {
            name: "gauss".into(),
            description: "one Gaussian fitted to all training features (unconditional)".into(),
            density: Density::Mixture {
                components: vec![Gaussian::fit(train)?],
                classes: vec![u8::MAX],
                weights: vec![1.0],
            },
        })
    }

    /// One Gaussian per class, weighted by the training class frequencies,
    /// leaving out the classes in `drop`.
    pub fn class_conditional(
        train: ArrayView2<'_, f64>,
        labels: &[u8],
        drop: &[u8],
    ) -> Result<Self> {
        let mut components = Vec::new();
        let mut classes = Vec::new();
        let mut weights = Vec::new();
        for c in 0..10u8 {
            if drop.contains(&c) {
                continue;
            }
            let rows: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == c).collect();
            if rows.len() < 2 {
                bail!("class {c} has {} training rows", rows.len());
            }
            components.push(Gaussian::fit(train.select(Axis(0), &rows).view())?);
            classes.push(c);
            weights.push(rows.len() as f64);
        }
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        let (name, description) = if drop.is_empty() {
            (
                "class-gauss".to_string(),
                "one Gaussian per digit class, class frequencies of the training set".to_string(),
            )
        } else {
            let d: Vec<String> = drop.iter().map(u8::to_string).collect();
            (
                format!("drop-{}", d.join("")),
                format!(
                    "class-conditional Gaussians without digits {} (weights renormalised)",
                    d.join(", ")
                ),
            )
        };
        Ok(Model {
            name,
            description,
            density: Density::Mixture {
                components,
                classes,
                weights,
            },
        })
    }

    /// A Gaussian KDE on the training rows with bandwidth `h`.
    pub fn kde(
        train: ArrayView2<'_, f64>,
        labels: &[u8],
        h: f64,
        name: String,
        description: String,
    ) -> Self {
        Model {
            name,
            description,
            density: Density::Kde {
                centres: train.to_owned(),
                labels: labels.to_vec(),
                h,
            },
        }
    }

    /// `n` seeded draws.
    pub fn sample(&self, n: usize, seed: u64) -> Samples {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        match &self.density {
            Density::Mixture {
                components,
                classes,
                weights,
            } => {
                let d = components[0].dim();
                let mut x = Array2::zeros((n, d));
                let mut lab = Vec::with_capacity(n);
                for mut row in x.outer_iter_mut() {
                    let u: f64 = rng.random();
                    let mut acc = 0.0;
                    let mut c = weights.len() - 1;
                    for (k, w) in weights.iter().enumerate() {
                        acc += w;
                        if u < acc {
                            c = k;
                            break;
                        }
                    }
                    row.assign(&components[c].sample(&mut rng));
                    lab.push(classes[c]);
                }
                Samples { x, labels: lab }
            }
            Density::Kde { centres, labels, h } => {
                let (m, d) = centres.dim();
                let mut x = Array2::zeros((n, d));
                let mut lab = Vec::with_capacity(n);
                for mut row in x.outer_iter_mut() {
                    let j = rng.random_range(0..m);
                    for (k, v) in row.iter_mut().enumerate() {
                        let z: f64 = rng.sample(StandardNormal);
                        *v = centres[[j, k]] + h * z;
                    }
                    lab.push(labels[j]);
                }
                Samples { x, labels: lab }
            }
        }
    }

    /// Exact `log q(x)` of every row of `x` (nats).
    pub fn log_density(&self, x: ArrayView2<'_, f64>) -> Array1<f64> {
        match &self.density {
            Density::Mixture {
                components,
                weights,
                ..
            } => {
                let mut out = Array1::zeros(x.nrows());
                ndarray::Zip::from(&mut out)
                    .and(x.rows())
                    .par_for_each(|o, row| {
                        let terms: Vec<f64> = components
                            .iter()
                            .zip(weights)
                            .map(|(g, w)| w.ln() + g.log_pdf(row))
                            .collect();
                        *o = logsumexp(&terms);
                    });
                out
            }
            Density::Kde { centres, h, .. } => kde_log_density(centres.view(), *h, x),
        }
    }
}

/// Squared Euclidean distances `‖a_i − b_j‖²` as `‖a‖² + ‖b‖² − 2 a·b`
/// (one matrix product; clamped at 0). The cancellation error,
/// ~1e-16·‖x‖², is far below every distance the study looks at.
pub fn sq_dists(a: ArrayView2<'_, f64>, b: ArrayView2<'_, f64>) -> Array2<f64> {
    let na: Array1<f64> = a.rows().into_iter().map(|r| r.dot(&r)).collect();
    let nb: Array1<f64> = b.rows().into_iter().map(|r| r.dot(&r)).collect();
    let mut d = a.dot(&b.t());
    ndarray::Zip::indexed(&mut d).par_for_each(|(i, j), v| {
        *v = (na[i] + nb[j] - 2.0 * *v).max(0.0);
    });
    d
}

/// Log-density of a Gaussian KDE in `dim` dimensions with bandwidth `h`,
/// from the squared distances `d2[i, j]` of query `i` to centre `j`:
/// `logsumexp_j(−d2_ij / 2h²) − ln N − (dim/2) ln(2π h²)`. With
/// `leave_out_diagonal`, query `i` is centre `i` and its own kernel is left
/// out (leave-one-out likelihood, over N − 1 kernels).
pub fn kde_log_density_sq(
    d2: ArrayView2<'_, f64>,
    h: f64,
    dim: usize,
    leave_out_diagonal: bool,
) -> Array1<f64> {
    let m = d2.ncols();
    let n_kernels = if leave_out_diagonal { m - 1 } else { m };
    let norm = -(n_kernels as f64).ln() - 0.5 * dim as f64 * (LN_2PI + 2.0 * h.ln());
    let inv = 1.0 / (2.0 * h * h);
    let mut out = Array1::zeros(d2.nrows());
    ndarray::Zip::indexed(&mut out)
        .and(d2.rows())
        .par_for_each(|i, o, row| {
            let keep = |j: usize| !(leave_out_diagonal && j == i);
            let min = row
                .iter()
                .enumerate()
                .filter(|(j, _)| keep(*j))
                .fold(f64::INFINITY, |a, (_, &v)| a.min(v));
            let sum: f64 = row
                .iter()
                .enumerate()
                .filter(|(j, _)| keep(*j))
                .map(|(_, &v)| (-(v - min) * inv).exp())
                .sum();
            *o = -min * inv + sum.ln() + norm;
        });
    out
}

/// Log-density at the rows of `x` of the Gaussian KDE on `centres`.
pub fn kde_log_density(
    centres: ArrayView2<'_, f64>,
    h: f64,
    x: ArrayView2<'_, f64>,
) -> Array1<f64> {
    kde_log_density_sq(sq_dists(x, centres).view(), h, centres.ncols(), false)
}

/// The bandwidth from `grid` with the highest mean leave-one-out
/// log-likelihood of the rows of `x` under the KDE on `x` itself, and that
/// likelihood.
pub fn loo_bandwidth(x: ArrayView2<'_, f64>, grid: &[f64]) -> (f64, f64) {
    let d2 = sq_dists(x, x);
    grid.iter()
        .map(|&h| {
            let ll = kde_log_density_sq(d2.view(), h, x.ncols(), true);
            (h, ll.mean().unwrap_or(f64::NEG_INFINITY))
        })
        .fold((f64::NAN, f64::NEG_INFINITY), |best, cur| {
            if cur.1 > best.1 { cur } else { best }
        })
}
