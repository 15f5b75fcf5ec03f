//! Precision and recall for distributions, PRD (Sajjadi et al. 2018,
//! "Assessing Generative Models via Precision and Recall", NeurIPS; reference:
//! msmsajjadi/precision-recall-distributions, `prd_score.py`,
//! `compute_prd_from_embedding(eval_data, ref_data)` and
//! `prd_to_max_f_beta_pair(precision, recall, beta=8)`).
//!
//! The union of the generated (eval) and real (ref) rows is clustered into
//! 20 clusters; the two histograms over the clusters, `p` (generated) and `q`
//! (real), each normalised to 1, define the PRD curve on 1001 equiangular
//! slopes `λ = tan θ`, `θ ∈ [ε, π/2 − ε]`, `ε = 1e-10`:
//!
//! ```text
//! α(λ) = Σ_c min(λ q_c, p_c)         (precision)
//! β(λ) = α(λ) / λ                    (recall)
//! ```
//!
//! both clipped to [0, 1]. The curve is averaged over 10 independent
//! clusterings, and summarised by the largest `F_8` and `F_{1/8}` along it,
//!
//! ```text
//! F_b(α, β) = (1 + b²) α β / (b² α + β + 1e-10),
//! ```
//!
//! `F_8` weighing recall, `F_{1/8}` precision (the reference's
//! `prd_to_max_f_beta_pair` returns `(max F_8, max F_{1/8})`).
//!
//! **Clustering.** The reference uses scikit-learn's `MiniBatchKMeans(20,
//! n_init=10)` with numpy's global random state; this implementation uses
//! `gen_metrics_linalg::KMeans` (k-means++ seeding, full-batch Lloyd, 10
//! restarts), run `r` seeded with the `r`-th `u64` of a `ChaCha8Rng` seeded
//! with the seed. The two give different (equally valid) clusterings, so the
//! end-to-end values agree only to within the spread of the reference across
//! its own random states; the curve and F-scores from given cluster labels
//! ([`Prd::curve_from_labels`]) agree to round-off.
//!
//! **Balance.** The reference refuses sets of different sizes (unbalanced
//! sets bias the clustering towards the larger one). Here the larger set is
//! subsampled without replacement to the size of the smaller one (seeded,
//! drawn before the clusterings), so that `--metrics all` does not fail on
//! unequal sets.
//!
//! **Cost.** 10 runs of a 10-restart k-means of `2 min(N, M)` rows: about six
//! minutes at 2000 × 2048 on two cores, so the registry leaves PRD out of
//! `--metrics all` (`EXCLUDED_FROM_ALL` of `gen-metrics-eval`); name it to run
//! it.

use gen_metrics_linalg::KMeans;
use ndarray::{Array2, ArrayView2, Axis, concatenate};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "prd";
/// The angle margin ε of the reference's `compute_prd`.
const EPSILON: f64 = 1e-10;
/// The F-score denominator guard of the reference's `_prd_to_f_beta`.
const F_EPSILON: f64 = 1e-10;

/// PRD configuration: 20 clusters, 1001 angles, 10 runs, β = 8, seed 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prd {
    num_clusters: usize,
    num_angles: usize,
    num_runs: usize,
    beta: f64,
    seed: u64,
}

impl Default for Prd {
    fn default() -> Self {
        Prd {
            num_clusters: 20,
            num_angles: 1001,
            num_runs: 10,
            beta: 8.0,
            seed: 0,
        }
    }
}

/// The averaged PRD curve and its F-score summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrdOutput {
    /// `max F_β` along the curve (recall-weighted for β = 8).
    pub f_beta: f64,
    /// `max F_{1/β}` along the curve (precision-weighted).
    pub f_beta_inv: f64,
    /// Precision `α(λ)` at each angle.
    pub precision: Vec<f64>,
    /// Recall `β(λ)` at each angle.
    pub recall: Vec<f64>,
}

impl Prd {
    /// Sets the number of clusters (default 20).
    pub fn num_clusters(mut self, k: usize) -> Self {
        self.num_clusters = k;
        self
    }

    /// Sets the number of clusterings averaged (default 10).
    pub fn num_runs(mut self, n: usize) -> Self {
        self.num_runs = n;
        self
    }

    /// Sets the seed (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    fn check(&self) -> Result<(), MetricError> {
        if self.num_clusters == 0
            || self.num_runs == 0
            || !(3..=1_000_000).contains(&self.num_angles)
            || !(self.beta.is_finite() && self.beta > 0.0)
        {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "need clusters >= 1, runs >= 1, angles in [3, 1e6], beta > 0; got {self:?}"
                ),
            });
        }
        Ok(())
    }

    /// The PRD curve of one pair of histograms (the reference's `compute_prd`):
    /// `eval_dist` = generated, `ref_dist` = real, each summing to 1.
    ///
    /// # Errors
    /// [`MetricError::Numerical`] when a value exceeds 1.001 (histograms that
    /// do not sum to 1).
    pub fn curve(
        &self,
        eval_dist: &[f64],
        ref_dist: &[f64],
    ) -> Result<(Vec<f64>, Vec<f64>), MetricError> {
        let n = self.num_angles;
        let (start, stop) = (EPSILON, std::f64::consts::FRAC_PI_2 - EPSILON);
        let step = (stop - start) / (n - 1) as f64;
        let mut precision = Vec::with_capacity(n);
        let mut recall = Vec::with_capacity(n);
        for i in 0..n {
            // np.linspace: i·step + start, the last point exactly `stop`
            let angle = if i == n - 1 {
                stop
            } else {
                i as f64 * step + start
            };
            let slope = angle.tan();
            let p: f64 = ref_dist
                .iter()
                .zip(eval_dist)
                .map(|(&r, &e)| (r * slope).min(e))
                .sum();
            precision.push(p);
            recall.push(p / slope);
        }
        let max = precision
            .iter()
            .chain(&recall)
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        if max > 1.001 {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("a precision or recall value is {max} > 1.001"),
            });
        }
        let clip = |v: &mut Vec<f64>| v.iter_mut().for_each(|x| *x = x.clamp(0.0, 1.0));
        clip(&mut precision);
        clip(&mut recall);
        Ok((precision, recall))
    }

    /// The averaged curve and F-scores from given cluster labels: each entry
    /// of `runs` labels the `n_eval` generated rows first, then the real rows
    /// (the order of the reference's `np.vstack([eval_data, ref_data])`).
    ///
    /// # Errors
    /// No runs, `n_eval` of 0 or not below a run's length, a label `≥
    /// num_clusters`, runs of different lengths, as [`Prd::curve`].
    pub fn curve_from_labels(
        &self,
        runs: &[Vec<usize>],
        n_eval: usize,
    ) -> Result<PrdOutput, MetricError> {
        self.check()?;
        let bad = |detail: String| MetricError::InvalidParameter {
            metric: METRIC,
            detail,
        };
        let len = runs.first().map_or(0, Vec::len);
        if runs.is_empty() || n_eval == 0 || n_eval >= len || runs.iter().any(|r| r.len() != len) {
            return Err(bad(format!(
                "need runs of equal length > n_eval = {n_eval} > 0 (got {} runs)",
                runs.len()
            )));
        }
        let k = self.num_clusters;
        let hist = |labels: &[usize]| -> Result<Vec<f64>, MetricError> {
            let mut c = vec![0.0f64; k];
            for &l in labels {
                *c.get_mut(l)
                    .ok_or_else(|| bad(format!("label {l} >= {k} clusters")))? += 1.0;
            }
            let total = labels.len() as f64;
            Ok(c.into_iter().map(|v| v / total).collect())
        };
        let mut precision = vec![0.0f64; self.num_angles];
        let mut recall = vec![0.0f64; self.num_angles];
        for labels in runs {
            let (p, r) = self.curve(&hist(&labels[..n_eval])?, &hist(&labels[n_eval..])?)?;
            precision.iter_mut().zip(&p).for_each(|(a, b)| *a += b);
            recall.iter_mut().zip(&r).for_each(|(a, b)| *a += b);
        }
        let nr = runs.len() as f64;
        precision.iter_mut().for_each(|v| *v /= nr);
        recall.iter_mut().for_each(|v| *v /= nr);
        let f = |b: f64| {
            let b2 = b * b;
            precision
                .iter()
                .zip(&recall)
                .map(|(&p, &r)| (1.0 + b2) * (p * r) / ((b2 * p) + r + F_EPSILON))
                .fold(f64::NEG_INFINITY, f64::max)
        };
        Ok(PrdOutput {
            f_beta: f(self.beta),
            f_beta_inv: f(1.0 / self.beta),
            precision,
            recall,
        })
    }
}

/// The first `m` rows of a seeded permutation of `x`'s rows (in drawn order).
fn subsample(x: ArrayView2<'_, f32>, m: usize, rng: &mut ChaCha8Rng) -> Array2<f32> {
    let idx = rand::seq::index::sample(rng, x.nrows(), m).into_vec();
    x.select(Axis(0), &idx)
}

impl TwoSampleMetric for Prd {
    type Output = PrdOutput;

    /// PRD of `fake` (eval) against `real` (ref), seeded k-means.
    ///
    /// # Errors
    /// Bad parameters, fewer rows in a set than clusters, mismatched
    /// dimensions, non-finite values.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<PrdOutput, MetricError> {
        self.check()?;
        check_pair(METRIC, real, fake, self.num_clusters)?;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let m = real.nrows().min(fake.nrows());
        let (fake_b, real_b) = if real.nrows() == fake.nrows() {
            (fake.to_owned(), real.to_owned())
        } else if fake.nrows() > m {
            (subsample(fake, m, &mut rng), real.to_owned())
        } else {
            (fake.to_owned(), subsample(real, m, &mut rng))
        };
        let union = concatenate(Axis(0), &[fake_b.view(), real_b.view()]).map_err(|e| {
            MetricError::Numerical {
                metric: METRIC,
                detail: format!("stacking the sets: {e}"),
            }
        })?;
        let runs = (0..self.num_runs)
            .map(|_| {
                let seed = rng.next_u64();
                KMeans::new(self.num_clusters)
                    .n_init(10)
                    .seed(seed)
                    .fit(union.view())
                    .map(|model| model.labels)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.curve_from_labels(&runs, m)
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of PRD (20 clusters, 10 runs, 1001 angles, F_8 and F_1/8).
pub static SPEC: Spec = Spec {
    name: "prd",
    about: "precision and recall for distributions: max F_8 (recall) and F_1/8 (precision) of the PRD curve of k-means histograms; not in `all` (100 k-means fits: name it)",
    reference: "Sajjadi et al. 2018, Assessing Generative Models via Precision and Recall; msmsajjadi/precision-recall-distributions",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "prd_f8",
            Direction::HigherIsBetter,
            "max F_8 along the PRD curve (recall-weighted), 20 clusters, mean of 10 clusterings",
        )
        .with_interval()
        .share(),
        KeySpec::new(
            "prd_f1_8",
            Direction::HigherIsBetter,
            "max F_1/8 along the PRD curve (precision-weighted)",
        )
        .with_interval()
        .share(),
    ],
    dynamic_keys: None,
    make: |p| Ok(Box::new(Prd::default().seed(p.seed))),
};

impl Metric for Prd {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let out = self.compute(real, fake)?;
        Ok(Outcome::new()
            .value("prd_f8", out.f_beta)
            .value("prd_f1_8", out.f_beta_inv))
    }
}
