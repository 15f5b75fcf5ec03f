//! The Vendi score (Friedman & Dieng 2023, "The Vendi Score: A Diversity
//! Evaluation Metric for Machine Learning"; reference: the `vendi-score`
//! package 0.0.3, `vendi.score_X` / `vendi.score_K`).
//!
//! For n samples and a positive semi-definite similarity kernel with
//! `k(x, x) = 1`, let `λ_1..λ_n` be the eigenvalues of `K / n` (they sum to 1).
//! The Vendi score of order q is the exponential of their Rényi entropy:
//!
//! ```text
//! VS_1(X) = exp( −Σ_{λ_i > 0} λ_i ln λ_i )                     (q = 1, the default)
//! VS_q(X) = exp( ln(Σ_{λ_i > 0} λ_i^q) / (1 − q) )              (q ≠ 1)
//! VS_∞(X) = exp( −ln max_i λ_i )
//! ```
//!
//! Only the positive eigenvalues enter (round-off makes some zero eigenvalues
//! slightly negative; vendi-score drops `p ≤ 0` the same way). It is the
//! "effective number of distinct samples": 1 for n copies of one sample, n
//! for n mutually dissimilar ones.
//!
//! Kernels:
//!
//! * [`VendiKernel::Cosine`] (`score_X(X, normalize=True)`): rows scaled to
//!   unit Euclidean norm (rows of zero norm stay zero, as
//!   `sklearn.preprocessing.normalize` leaves them), `K = X̂ X̂ᵀ`. When n > D the
//!   D × D matrix `X̂ᵀ X̂ / n` is decomposed instead: it has the same non-zero
//!   eigenvalues, and costs O(n D² + D³) instead of O(n² D + n³).
//! * [`VendiKernel::Rbf`] (`score_K` with `K_ij = exp(−γ ‖x_i − x_j‖²)`):
//!   exact float64 squared distances, n × n eigenvalues.
//!
//! Everything is float64 (the reference runs scipy's `eigvalsh` in float64).

use gen_metrics_linalg::{matmul_nt, matmul_tn, squared_distances, symmetric_eigenvalues};
use ndarray::ArrayView2;
use serde::Serialize;

use crate::MetricError;
use crate::validate::check_set;

const METRIC: &str = "vendi";

/// The similarity kernel of the Vendi score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VendiKernel {
    /// Cosine similarity `x̂_i · x̂_j` of unit-normalised rows (the package's `score_X` default).
    Cosine,
    /// Gaussian kernel `exp(−γ ‖x_i − x_j‖²)`, `γ > 0`.
    Rbf {
        /// The bandwidth parameter γ.
        gamma: f64,
    },
}

/// Configuration of the Vendi score: the kernel (cosine) and the order q (1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Vendi {
    kernel: VendiKernel,
    q: f64,
}

impl Default for Vendi {
    /// Cosine kernel, q = 1 (vendi-score's `score_X` defaults).
    fn default() -> Self {
        Vendi {
            kernel: VendiKernel::Cosine,
            q: 1.0,
        }
    }
}

/// The Vendi score with what produced it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VendiOutput {
    /// The Vendi score, in [1, n] for q = 1.
    pub score: f64,
    /// `"cosine"` or `"rbf"`.
    pub kernel: &'static str,
    /// The RBF γ (`None` for the cosine kernel).
    pub gamma: Option<f64>,
    /// The order q (`f64::INFINITY` serialises as `null`).
    pub q: f64,
    /// Number of samples.
    pub n: usize,
}

impl Vendi {
    /// Sets the kernel.
    pub fn kernel(mut self, kernel: VendiKernel) -> Self {
        self.kernel = kernel;
        self
    }

    /// Sets the order q (q ≥ 0; `f64::INFINITY` for the min-entropy).
    pub fn order(mut self, q: f64) -> Self {
        self.q = q;
        self
    }

    /// The Vendi score of one set of samples (rows).
    ///
    /// # Errors
    /// An empty set, zero columns, non-finite values, γ not finite and > 0,
    /// q negative or NaN, or an eigen-decomposition failure.
    pub fn compute(&self, samples: ArrayView2<'_, f32>) -> Result<VendiOutput, MetricError> {
        if self.q.is_nan() || self.q < 0.0 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!("the order q must be >= 0, got {}", self.q),
            });
        }
        check_set(METRIC, "samples", samples, 1)?;
        let (n, d) = samples.dim();
        let k = match self.kernel {
            VendiKernel::Cosine => {
                let mut x = samples.mapv(f64::from);
                for mut row in x.rows_mut() {
                    let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
                    if norm > 0.0 {
                        row.mapv_inplace(|v| v / norm);
                    }
                }
                let alpha = 1.0 / n as f64;
                if n > d {
                    matmul_tn(x.view(), x.view(), alpha, true)?
                } else {
                    matmul_nt(x.view(), x.view(), alpha, true)?
                }
            }
            VendiKernel::Rbf { gamma } => {
                if !(gamma.is_finite() && gamma > 0.0) {
                    return Err(MetricError::InvalidParameter {
                        metric: METRIC,
                        detail: format!("the RBF gamma must be finite and > 0, got {gamma}"),
                    });
                }
                let s = squared_distances(samples, samples)?;
                s.mapv(|v| (-gamma * v).exp() / n as f64)
            }
        };
        let eig = symmetric_eigenvalues(k.view()).map_err(|e| MetricError::Numerical {
            metric: METRIC,
            detail: format!("eigenvalues did not converge: {e}"),
        })?;
        let score = vendi_from_eigenvalues(&eig, self.q);
        if !score.is_finite() {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("the score is {score}"),
            });
        }
        let (kernel, gamma) = match self.kernel {
            VendiKernel::Cosine => ("cosine", None),
            VendiKernel::Rbf { gamma } => ("rbf", Some(gamma)),
        };
        Ok(VendiOutput {
            score,
            kernel,
            gamma,
            q: self.q,
            n,
        })
    }
}

/// `exp` of the order-q Rényi entropy of the positive eigenvalues (see the module docs).
fn vendi_from_eigenvalues(eig: &[f64], q: f64) -> f64 {
    let p: Vec<f64> = eig.iter().copied().filter(|&v| v > 0.0).collect();
    let entropy = if q == 1.0 {
        -p.iter().map(|&v| v * v.ln()).sum::<f64>()
    } else if q.is_infinite() {
        -p.iter().copied().fold(f64::NEG_INFINITY, f64::max).ln()
    } else {
        p.iter().map(|&v| v.powf(q)).sum::<f64>().ln() / (1.0 - q)
    };
    entropy.exp()
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of the Vendi score of the generated set (q = 1, cosine
/// kernel).
pub static SPEC: gen_metrics_metric::Spec = gen_metrics_metric::Spec {
    name: "vendi",
    about: "Vendi score: effective number of distinct generated samples",
    reference: "Friedman & Dieng 2023, The Vendi Score: A Diversity Evaluation Metric for Machine Learning; vertaix/Vendi-Score",
    inputs: &[gen_metrics_metric::Input::Fake],
    accepts_statistics: false,
    keys: &[gen_metrics_metric::KeySpec::new(
        "vendi",
        gen_metrics_metric::Direction::HigherIsBetter,
        "exp of the Shannon entropy of the eigenvalues of K/n, cosine kernel",
    )],
    dynamic_keys: None,
    make: |_| Ok(Box::new(Vendi::default())),
};

impl gen_metrics_metric::Metric for Vendi {
    fn spec(&self) -> &'static gen_metrics_metric::Spec {
        &SPEC
    }

    fn evaluate(
        &self,
        cx: &gen_metrics_metric::Context<'_>,
    ) -> Result<gen_metrics_metric::Outcome, MetricError> {
        let fake = cx.rows(&SPEC, gen_metrics_metric::Set::Fake)?;
        Ok(gen_metrics_metric::Outcome::new().value("vendi", self.compute(fake)?.score))
    }
}
