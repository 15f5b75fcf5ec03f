//! Confidence intervals and pairwise comparisons by random half-splits.
//!
//! Split `s` divides the real rows at random into two disjoint halves and
//! the generated rows likewise (`gen_metrics_ranking::interval::
//! half_split_rows`: the same halves for every generated set of one size, so
//! two sets are compared on the same real halves: a paired comparison, and a
//! set's intervals do not depend on which other sets are evaluated beside
//! it). Every selected metric's interval keys are evaluated on both halves
//! from one metric [`Context`] per half (the shared work is shared there
//! too). The half values give:
//!
//! * an interval per key: `SE² = (1/S) Σ_s (θ̂_A − θ̂_B)²/4`,
//!   `[θ̂ ∓ t_{S−1} SE]` for the metric's value at the given sample sizes
//!   (`Subsampling::interval_from_halves`; the method, the estimand and the
//!   measured coverage are in `docs/intervals.md`);
//! * for every pair of generated sets and every key with a direction, the
//!   share of the `2S` halves in which the first beats the second.
//!
//! Sets given only as statistics cannot be split: their keys get no
//! interval, and the report says so.
//!
//! [`Context`]: gen_metrics_metric::Context

use gen_metrics_metric::{Inputs, Metric, SideData};
use gen_metrics_ranking::interval::{Subsampling, half_split_rows};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;

use crate::EvalError;
use crate::compute::{compute_all, compute_all_optional};

/// How intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntervalOptions {
    /// Number of random half-splits `S` (0: no intervals; at least 2
    /// otherwise). Each split evaluates the metrics twice at half size.
    pub resamples: usize,
    /// Coverage, in (0, 1).
    pub confidence: f64,
    /// Seed of the splits (the same seed, the same intervals).
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

/// The half values of one generated set: `halves[s][j]` is interval key
/// `keys[j]` on halves `(A_s, B_s)` of split `s`.
#[derive(Debug, Clone)]
pub struct Replicates {
    /// The keys, in report order.
    pub keys: Vec<String>,
    /// One entry per split: the values on half A and on half B.
    pub halves: Vec<HalfValues>,
    /// Rows of half A: `(real, fake)`.
    pub sizes: (usize, usize),
    /// Metrics left without intervals because the halves are too small for
    /// them: `(metric, note)`.
    pub too_small: Vec<(String, String)>,
}

impl Replicates {
    /// The `(A, B)` half values of `key`, one pair per split.
    pub fn pairs(&self, key: &str) -> Option<Vec<(f64, f64)>> {
        let j = self.keys.iter().position(|k| k == key)?;
        Some(self.halves.iter().map(|(a, b)| (a[j], b[j])).collect())
    }
}

/// The interval keys on half A and on half B of one split.
pub type HalfValues = (Vec<f64>, Vec<f64>);

fn select(x: ArrayView2<'_, f32>, idx: &[usize]) -> Array2<f32> {
    x.select(Axis(0), idx)
}

/// Half values for every generated set. `base` holds the inputs other than
/// the real and generated rows (training set, labels, ...), which are not
/// split.
///
/// # Errors
/// Fewer than 2 splits or 4 rows in a set; a metric failing on a half
/// (named, with the split index).
pub fn replicate(
    metrics: &[&dyn Metric],
    real: ArrayView2<'_, f32>,
    fakes: &[ArrayView2<'_, f32>],
    base: &Inputs<'_>,
    options: &IntervalOptions,
) -> Result<Vec<Replicates>, EvalError> {
    if options.resamples < 2 {
        return Err(EvalError::Usage(format!(
            "intervals need at least 2 half-splits, got {}",
            options.resamples
        )));
    }
    for (what, n) in std::iter::once(("real", real.nrows()))
        .chain(fakes.iter().map(|f| ("generated", f.nrows())))
    {
        if n < 4 {
            return Err(EvalError::Usage(format!(
                "intervals split each set in halves: the {what} set needs at least 4 rows, got {n}"
            )));
        }
    }
    let picked: Vec<&dyn Metric> = metrics
        .iter()
        .copied()
        .filter(|m| m.spec().keys.iter().any(|k| k.interval))
        .collect();
    // Halves hold half the rows: a metric they are too small for (k-NN
    // neighbourhoods, ...) gets no interval, with the reason, instead of
    // failing the evaluation. Every split has the same half sizes, so the
    // first one decides.
    let mut too_small: Vec<(String, String)> = Vec::new();
    for f in fakes {
        let ((ra, _), (fa, _)) = half_split_rows(options.seed, 0, real.nrows(), f.nrows());
        let (r, f) = (select(real, &ra), select(*f, &fa));
        let inputs = base.with_sides(
            Some(SideData::Rows(r.view())),
            Some(SideData::Rows(f.view())),
        );
        let still: Vec<&dyn Metric> = picked
            .iter()
            .copied()
            .filter(|m| !too_small.iter().any(|(n, _)| n == m.spec().name))
            .collect();
        let (_, dropped) = compute_all_optional(&still, inputs, true, &|_| true)
            .map_err(|e| EvalError::Interval(format!("half-split 0: {e}")))?;
        too_small.extend(dropped.into_iter().map(|(n, e)| {
            (
                n.to_owned(),
                format!("no interval: halves of the sets are too small ({e})"),
            )
        }));
    }
    let picked: Vec<&dyn Metric> = picked
        .into_iter()
        .filter(|m| !too_small.iter().any(|(n, _)| n == m.spec().name))
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
    let eval_half = |r: &Array2<f32>, f: &Array2<f32>, s: usize| -> Result<Vec<f64>, EvalError> {
        let inputs = base.with_sides(
            Some(SideData::Rows(r.view())),
            Some(SideData::Rows(f.view())),
        );
        let outs = compute_all(&picked, inputs, true)
            .map_err(|e| EvalError::Interval(format!("half-split {s}: {e}")))?;
        keys.iter()
            .map(|k| {
                outs.iter()
                    .find_map(|o| o.outcome.get(k))
                    .ok_or_else(|| EvalError::Interval(format!("half-split {s}: no value for {k}")))
            })
            .collect()
    };
    let per_split: Vec<Result<Vec<HalfValues>, EvalError>> = (0..options.resamples)
        .into_par_iter()
        .map(|s| {
            fakes
                .iter()
                .map(|f| {
                    let ((ra, rb), (fa, fb)) =
                        half_split_rows(options.seed, s, real.nrows(), f.nrows());
                    let a = eval_half(&select(real, &ra), &select(*f, &fa), s)?;
                    let b = eval_half(&select(real, &rb), &select(*f, &fb), s)?;
                    Ok((a, b))
                })
                .collect()
        })
        .collect();
    let mut out: Vec<Replicates> = fakes
        .iter()
        .map(|f| Replicates {
            keys: keys.clone(),
            halves: Vec::with_capacity(options.resamples),
            sizes: (real.nrows() / 2, f.nrows() / 2),
            too_small: too_small.clone(),
        })
        .collect();
    for r in per_split {
        for (j, pair) in r?.into_iter().enumerate() {
            out[j].halves.push(pair);
        }
    }
    Ok(out)
}

/// The interval of `key` from its half values.
///
/// # Errors
/// Non-finite half values (reported by the ranking crate).
pub fn interval(
    estimate: f64,
    rep: &Replicates,
    key: &str,
    options: &IntervalOptions,
) -> Option<Result<gen_metrics_ranking::Interval, EvalError>> {
    let pairs = rep.pairs(key)?;
    Some(
        Subsampling::default()
            .confidence(options.confidence)
            .seed(options.seed)
            .interval_from_halves(estimate, &pairs, rep.sizes)
            .map_err(|e| EvalError::Interval(format!("{key}: {e}"))),
    )
}
