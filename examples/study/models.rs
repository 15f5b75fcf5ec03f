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
use gen_metrics::linalg::{GaussianStats, squared_distances};
use gen_metrics::ranking::divergence::Gaussian;
use ndarray::{Array1, Array2, ArrayView2, Axis};
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

/// The maximum-likelihood Gaussian of the rows of `x` (mean and ddof-1
/// covariance by `gen_metrics::linalg::GaussianStats`) with a ridge of
/// `1e-6 · tr Σ / D` on the diagonal so that few rows still give a
/// positive-definite covariance; density and sampling by
/// `gen_metrics::ranking::divergence::Gaussian`.
pub fn fit_gaussian(x: ArrayView2<'_, f32>) -> Result<Gaussian> {
    let stats = GaussianStats::from_features(x)?;
    let mut cov = stats.cov;
    let d = cov.nrows();
    let ridge = 1e-6 * cov.diag().sum() / d as f64;
    for i in 0..d {
        cov[[i, i]] += ridge;
    }
    Ok(Gaussian::new(stats.mean.view(), cov.view())?)
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
        centres: Array2<f32>,
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
    /// `[n, D]` features, rounded to f32 (the points every metric and every
    /// log-density sees).
    pub x: Array2<f32>,
    /// Class label of every row.
    pub labels: Vec<u8>,
}

impl Model {
    /// A single Gaussian on all training rows.
    pub fn gaussian(train: ArrayView2<'_, f32>) -> Result<Self> {
        Ok(Model {
            name: "gauss".into(),
            description: "one Gaussian fitted to all training features (unconditional)".into(),
            density: Density::Mixture {
                components: vec![fit_gaussian(train)?],
                classes: vec![u8::MAX],
                weights: vec![1.0],
            },
        })
    }

    /// One Gaussian per class, weighted by the training class frequencies,
    /// leaving out the classes in `drop`.
    pub fn class_conditional(
        train: ArrayView2<'_, f32>,
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
            components.push(fit_gaussian(train.select(Axis(0), &rows).view())?);
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
        train: ArrayView2<'_, f32>,
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

    /// `n` seeded draws, rounded to f32.
    ///
    /// # Errors
    /// None in practice (the standard-normal draws are finite).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Samples> {
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
                    let z: Array1<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
                    let y = components[c].from_standard_normal(z.view())?;
                    row.assign(&y.mapv(|v| v as f32));
                    lab.push(classes[c]);
                }
                Ok(Samples { x, labels: lab })
            }
            Density::Kde { centres, labels, h } => {
                let (m, d) = centres.dim();
                let mut x = Array2::zeros((n, d));
                let mut lab = Vec::with_capacity(n);
                for mut row in x.outer_iter_mut() {
                    let j = rng.random_range(0..m);
                    for (k, v) in row.iter_mut().enumerate() {
                        let z: f64 = rng.sample(StandardNormal);
                        *v = (f64::from(centres[[j, k]]) + h * z) as f32;
                    }
                    lab.push(labels[j]);
                }
                Ok(Samples { x, labels: lab })
            }
        }
    }

    /// Exact `log q(x)` of every row of `x` (nats).
    ///
    /// # Errors
    /// Non-finite features, or a dimension other than the model's.
    pub fn log_density(&self, x: ArrayView2<'_, f32>) -> Result<Array1<f64>> {
        match &self.density {
            Density::Mixture {
                components,
                weights,
                ..
            } => {
                let x64 = x.mapv(f64::from);
                let per_component = components
                    .iter()
                    .zip(weights)
                    .map(|(g, w)| Ok(g.log_pdf_rows(x64.view())? + w.ln()))
                    .collect::<Result<Vec<Array1<f64>>>>()?;
                Ok((0..x.nrows())
                    .map(|i| logsumexp(&per_component.iter().map(|l| l[i]).collect::<Vec<_>>()))
                    .collect())
            }
            Density::Kde { centres, h, .. } => kde_log_density(centres.view(), *h, x),
        }
    }
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

/// Log-density at the rows of `x` of the Gaussian KDE on `centres`
/// (squared distances by `gen_metrics::linalg::squared_distances`).
///
/// # Errors
/// Empty or non-finite sets, mismatched dimensions.
pub fn kde_log_density(
    centres: ArrayView2<'_, f32>,
    h: f64,
    x: ArrayView2<'_, f32>,
) -> Result<Array1<f64>> {
    let d2 = squared_distances(x, centres)?;
    Ok(kde_log_density_sq(d2.view(), h, centres.ncols(), false))
}

/// The bandwidth from `grid` with the highest mean leave-one-out
/// log-likelihood of the rows of `x` under the KDE on `x` itself, that
/// likelihood, and the leave-one-out log-densities of the rows at it.
///
/// # Errors
/// Empty or non-finite `x`, an empty `grid`.
pub fn loo_bandwidth(x: ArrayView2<'_, f32>, grid: &[f64]) -> Result<(f64, f64, Array1<f64>)> {
    let d2 = squared_distances(x, x)?;
    let mut best: Option<(f64, f64, Array1<f64>)> = None;
    for &h in grid {
        let ll = kde_log_density_sq(d2.view(), h, x.ncols(), true);
        let mean = ll.mean().unwrap_or(f64::NEG_INFINITY);
        if best.as_ref().is_none_or(|b| mean > b.1) {
            best = Some((h, mean, ll));
        }
    }
    best.ok_or_else(|| anyhow::anyhow!("empty bandwidth grid"))
}
