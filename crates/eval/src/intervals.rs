//! Confidence intervals and pairwise comparisons by resampling.
//!
//! Every resample draws the real rows once and the generated rows from one
//! stream shared by all generated sets (so two generated sets are compared
//! on the same real resample: a paired comparison), builds one metric [`Context`] per
//! generated set and evaluates every selected metric's interval keys from it,
//! so the shared work (Gaussian fits, k-NN radii) is shared inside a
//! resample too. The replicate values give:
//!
//! * an interval per key, by the method of `gen_metrics_ranking::interval`
//!   (see `docs/intervals.md` for why this method and its measured coverage);
//! * for every pair of generated sets and every key with a direction, the
//!   share of resamples in which the first beats the second.
//!
//! Sets given only as statistics cannot be resampled: their keys get no
//! interval, and the report says so.
//!
//! [`Context`]: gen_metrics_metric::Context

use gen_metrics_metric::{Inputs, Metric, SideData};
use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::EvalError;
use crate::compute::compute_all;

/// Rows drawn per resample from a set of `n`: `⌊n/2⌋` (at least 2, at most n).
pub fn subsample_size(n: usize) -> usize {
    (n / 2).max(2).min(n)
}

/// How intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalOptions {
    /// Number of resamples (0: no intervals).
    pub resamples: usize,
    /// Coverage, in (0, 1).
    pub confidence: f64,
    /// Seed of the resampling (the same seed, the same intervals).
    pub seed: u64,
}

impl Default for IntervalOptions {
    fn default() -> Self {
        IntervalOptions {
            resamples: 0,
            confidence: 0.95,
            seed: 0,
        }
    }
}

/// The replicate values of one generated set: `values[b][j]` is interval key
/// `keys[j]` on resample `b`.
#[derive(Debug, Clone)]
pub struct Replicates {
    /// The keys, in report order.
    pub keys: Vec<String>,
    /// One row per resample.
    pub values: Vec<Vec<f64>>,
    /// Rows of each side in a resample: `(real, fake)`.
    pub sizes: (usize, usize),
}

impl Replicates {
    /// The replicate values of `key`.
    pub fn column(&self, key: &str) -> Option<Vec<f64>> {
        let j = self.keys.iter().position(|k| k == key)?;
        Some(self.values.iter().map(|r| r[j]).collect())
    }
}

/// One resample's row choice for a set of `n` rows: `m = subsample_size(n)`
/// distinct rows (no duplicates: duplicated rows have zero distance to a
/// neighbour and collapse k-NN radii).
fn draw(n: usize, seed: u64, resample: usize, stream: u64) -> Vec<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(stream.wrapping_mul(1 << 32).wrapping_add(resample as u64));
    let mut idx = rand::seq::index::sample(&mut rng, n, subsample_size(n)).into_vec();
    idx.sort_unstable();
    idx
}

fn select(x: ArrayView2<'_, f32>, idx: &[usize]) -> Array2<f32> {
    x.select(Axis(0), idx)
}

/// Replicates for every generated set. `base` holds the inputs other than
/// the real and generated rows (training set, labels, ...), which are not
/// resampled.
///
/// # Errors
/// A metric failing on a resample (named, with the resample index).
pub fn replicate(
    metrics: &[&dyn Metric],
    real: ArrayView2<'_, f32>,
    fakes: &[ArrayView2<'_, f32>],
    base: &Inputs<'_>,
    options: &IntervalOptions,
) -> Result<Vec<Replicates>, EvalError> {
    let picked: Vec<&dyn Metric> = metrics
        .iter()
        .copied()
        .filter(|m| m.spec().keys.iter().any(|k| k.interval))
        .collect();
    let keys: Vec<String> = picked
        .iter()
        .flat_map(|m| {
            m.spec()
                .keys
                .iter()
                .filter(|k| k.interval)
                .map(|k| k.key.to_owned())
        })
        .collect();
    let per_resample: Vec<Result<Vec<Vec<f64>>, EvalError>> = (0..options.resamples)
        .into_par_iter()
        .map(|b| {
            let ri = draw(real.nrows(), options.seed, b, 0);
            let r = select(real, &ri);
            fakes
                .iter()
                .enumerate()
                .map(|(_, f)| {
                    // Every generated set draws from the same stream: sets of
                    // one size get the same row choice (common random
                    // numbers), and a set's intervals do not depend on which
                    // other sets are evaluated beside it.
                    let fi = draw(f.nrows(), options.seed, b, 1);
                    let fr = select(*f, &fi);
                    let inputs = base.with_sides(
                        Some(SideData::Rows(r.view())),
                        Some(SideData::Rows(fr.view())),
                    );
                    let outs = compute_all(&picked, inputs, true)
                        .map_err(|e| EvalError::Interval(format!("resample {b}: {e}")))?;
                    keys.iter()
                        .map(|k| {
                            outs.iter().find_map(|o| o.outcome.get(k)).ok_or_else(|| {
                                EvalError::Interval(format!("resample {b}: no value for {k}"))
                            })
                        })
                        .collect()
                })
                .collect()
        })
        .collect();
    let mut out: Vec<Replicates> = fakes
        .iter()
        .map(|f| Replicates {
            keys: keys.clone(),
            values: Vec::with_capacity(options.resamples),
            sizes: (subsample_size(real.nrows()), subsample_size(f.nrows())),
        })
        .collect();
    for r in per_resample {
        for (j, row) in r?.into_iter().enumerate() {
            out[j].values.push(row);
        }
    }
    Ok(out)
}

/// An interval from half-sample replicates: the basic (reflected) interval
/// with the finite-population scale `√(m/(n − m))`,
///
/// ```text
/// low  = θ̂ − s · (q_{1−α/2}(t) − θ̂),   high = θ̂ − s · (q_{α/2}(t) − θ̂),
/// ```
///
/// where `t_b` are the statistic on `m`-of-`n` subsamples drawn without
/// replacement. For a statistic with a `c/N` bias and variance `σ²/N`,
/// `E t − θ̂ ≈ c(1/m − 1/n)` and `Var(t − θ̂) ≈ σ²(1/m − 1/n)`; at `m = n/2`
/// both equal the estimate's own bias and variance, so the reflected
/// interval is centred on the bias-corrected value `θ̂ − bias` with the
/// estimate's spread (half-sampling; Politis, Romano & Wolf 1999,
/// *Subsampling*, ch. 2, with the finite-population correction). The
/// interval may therefore exclude a strongly biased point estimate: the
/// report says so when it happens.
///
/// Quantiles are numpy's default linear interpolation.
pub fn interval_from_replicates(
    estimate: f64,
    replicates: &[f64],
    confidence: f64,
    m: usize,
    n: usize,
) -> Option<(f64, f64)> {
    if replicates.is_empty() || m >= n || replicates.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut t = replicates.to_vec();
    t.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    let q = |p: f64| {
        let v = p * (t.len() - 1) as f64;
        let lo = v.floor() as usize;
        let hi = (lo + 1).min(t.len() - 1);
        t[lo] + (t[hi] - t[lo]) * (v - lo as f64)
    };
    let s = (m as f64 / (n - m) as f64).sqrt();
    let (q_lo, q_hi) = (q(alpha / 2.0), q(1.0 - alpha / 2.0));
    Some((
        estimate - s * (q_hi - estimate),
        estimate - s * (q_lo - estimate),
    ))
}
