//! # gen-metrics-mpi: evaluation across processes and machines over MPI
//!
//! **Owns:** the process group (MPI through the `mpi` crate, rsmpi, behind
//! the cargo feature `mpi`: [`Group`]); shard assignment ([`shard_range`]:
//! contiguous, batch-aligned ranges of a set's sorted file index); combining
//! per-rank results: feature rows gathered to rank 0 in the original row
//! order (optionally a seeded subset, [`cap_selection`]), Gaussian statistics
//! merged exactly in rank order ([`merge_in_order`], Chan et al.'s pairwise
//! formula, over a binary tree), training-loop evaluator states gathered and
//! merged; and the distributed evaluation ([`evaluate`]) that feeds the
//! gathered rows to the same pipeline a single process runs.
//!
//! **Must not:** compute a metric (rank 0 runs `gen_metrics_eval`'s code on
//! the gathered rows), implement statistics (the merge is
//! `gen_metrics_linalg::GaussianAccumulator::merge`), or read or write a file
//! format (extraction and the cache are `gen_metrics_eval::Extraction`).
//!
//! ## Exactness
//!
//! Each rank encodes a contiguous range of rows whose boundaries are
//! multiples of the encoder batch size, so every inference batch holds the
//! same images as in a single-process run; rows are gathered in rank order,
//! which is the source's row order. Rank 0 then holds the very matrix a
//! single process would have built and runs the same code on it: every
//! number is identical. The statistics-only path (`statistics_only`) never
//! gathers rows: each rank accumulates its rows' mean and co-moment in
//! float64 and the states are merged exactly (pairwise formula) in rank
//! order; FID then differs from the single-process value only by float64
//! rounding (relative 1e-9 is checked in CI).
//!
//! ## Memory
//!
//! Gathering: rank 0 holds `n × d × 4` bytes per set (8 KiB per image for
//! 2048-d Inception features: 800 MiB per 100,000 images), every other rank
//! its shard only. Statistics only: `d² × 8` bytes per rank per set (32 MiB
//! for d = 2048), twice on a rank while it merges.

#![warn(missing_docs)]

use std::ops::Range;

use gen_metrics_linalg::{AccumulatorParts, GaussianAccumulator};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

#[cfg(feature = "mpi")]
mod group;
#[cfg(feature = "mpi")]
mod run;

#[cfg(feature = "mpi")]
pub use group::Group;
#[cfg(feature = "mpi")]
pub use run::{evaluate, gather_evaluator_states};

pub use gen_metrics_eval::EvalError;

/// Errors of a distributed evaluation.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Checking the evaluation failed, identically on every rank (nothing
    /// was communicated yet): rank 0 reports it, every rank exits.
    #[error(transparent)]
    Plan(EvalError),
    /// Loading, encoding or evaluating failed on this rank.
    #[error(transparent)]
    Eval(#[from] EvalError),
    /// The ranks disagree (different file lists, dimensions) or MPI could
    /// not start.
    #[error("{0}")]
    Ranks(String),
}

impl DistError {
    /// The process exit code: 2 for the user's input, 1 otherwise (as the
    /// single-process command line).
    pub fn exit_code(&self) -> i32 {
        match self {
            DistError::Plan(e) | DistError::Eval(e) if e.is_input_error() => 2,
            _ => 1,
        }
    }
}

/// Options of a distributed evaluation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DistOptions {
    /// Gather at most this many rows per set to rank 0: a uniform random
    /// subset of the rows ([`cap_selection`], seeded by `seed`), the same
    /// whatever the number of ranks. `None`: all rows (exact).
    pub gather_cap: Option<usize>,
    /// Seed of the capped subset.
    pub seed: u64,
    /// Merge Gaussian statistics across ranks instead of gathering rows
    /// (FID-type metrics only, no intervals; `d² × 8` bytes per rank).
    pub statistics_only: bool,
}

/// The rows of `n` that rank `rank` of `ranks` encodes: contiguous, in rank
/// order, covering `0..n` exactly once, with every boundary a multiple of
/// `align` (the encoder batch size, so that each inference batch holds the
/// same images as in one process). The `⌈n / align⌉` blocks are split as
/// evenly as possible: rank `r` takes blocks `⌊r·B/R⌋ .. ⌊(r+1)·B/R⌋`.
///
/// ```
/// # use gen_metrics_mpi::shard_range;
/// assert_eq!(shard_range(100, 3, 0, 32), 0..32);
/// assert_eq!(shard_range(100, 3, 1, 32), 32..64);
/// assert_eq!(shard_range(100, 3, 2, 32), 64..100);
/// ```
pub fn shard_range(n: usize, ranks: usize, rank: usize, align: usize) -> Range<usize> {
    let ranks = ranks.max(1);
    let align = align.max(1);
    if rank >= ranks {
        return n..n;
    }
    let blocks = n.div_ceil(align);
    let first = rank * blocks / ranks;
    let last = (rank + 1) * blocks / ranks;
    (first * align).min(n)..(last * align).min(n)
}

/// The rows kept when at most `cap` of `total` rows may be gathered: `None`
/// when all fit, else `cap` distinct indices drawn uniformly without
/// replacement (ChaCha8 seeded with `seed`), sorted. Depends only on
/// `(total, cap, seed)`, not on the number of ranks.
pub fn cap_selection(total: usize, cap: Option<usize>, seed: u64) -> Option<Vec<usize>> {
    let cap = cap?;
    if total <= cap {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut idx = rand::seq::index::sample(&mut rng, total, cap).into_vec();
    idx.sort_unstable();
    Some(idx)
}

/// Merges per-rank accumulator states in the given (rank) order with the
/// exact pairwise formula: the statistics of all rows.
///
/// # Errors
/// [`DistError::Ranks`] for no state, an invalid state or mismatched
/// dimensions.
pub fn merge_in_order(parts: Vec<AccumulatorParts>) -> Result<GaussianAccumulator, DistError> {
    let mut it = parts.into_iter();
    let first = it
        .next()
        .ok_or_else(|| DistError::Ranks("no accumulator state to merge".into()))?;
    let mut acc = GaussianAccumulator::from_parts(first).map_err(ranks)?;
    for p in it {
        let other = GaussianAccumulator::from_parts(p).map_err(ranks)?;
        acc.merge(&other).map_err(ranks)?;
    }
    Ok(acc)
}

fn ranks(e: impl std::fmt::Display) -> DistError {
    DistError::Ranks(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn shards_cover_every_row_once_in_order() {
        for n in [0usize, 1, 5, 31, 32, 33, 100, 257] {
            for ranks in 1..6 {
                for align in [1usize, 7, 32] {
                    let mut next = 0;
                    for r in 0..ranks {
                        let s = shard_range(n, ranks, r, align);
                        assert_eq!(s.start, next, "n {n} ranks {ranks} align {align}");
                        assert!(s.start.is_multiple_of(align) || s.start == n);
                        next = s.end;
                    }
                    assert_eq!(next, n);
                }
            }
        }
    }

    #[test]
    fn cap_is_seeded_sorted_and_distinct() {
        assert_eq!(cap_selection(10, None, 0), None);
        assert_eq!(cap_selection(10, Some(10), 0), None);
        let a = cap_selection(1000, Some(100), 7).unwrap_or_default();
        assert_eq!(a, cap_selection(1000, Some(100), 7).unwrap_or_default());
        assert_eq!(a.len(), 100);
        assert!(a.windows(2).all(|w| w[0] < w[1]) && a[99] < 1000);
        assert_ne!(a, cap_selection(1000, Some(100), 8).unwrap_or_default());
    }

    #[test]
    fn merging_shards_in_order_equals_one_pass() {
        let x = Array2::from_shape_fn((103, 5), |(i, j)| {
            ((i * 31 + j * 17) % 23) as f32 * 0.37 - (j as f32)
        });
        let mut whole = GaussianAccumulator::new(5).unwrap();
        whole.push(x.view()).unwrap();
        let want = whole.finalize_unbiased().unwrap();
        let parts: Vec<_> = (0..4)
            .map(|r| {
                let s = shard_range(103, 4, r, 8);
                let mut a = GaussianAccumulator::new(5).unwrap();
                a.push(x.slice(ndarray::s![s, ..])).unwrap();
                a.to_parts()
            })
            .collect();
        let got = merge_in_order(parts).unwrap().finalize_unbiased().unwrap();
        assert_eq!(got.n, want.n);
        for (a, b) in got.cov.iter().zip(want.cov.iter()) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0), "{a} vs {b}");
        }
        for (a, b) in got.mean.iter().zip(want.mean.iter()) {
            assert!((a - b).abs() <= 1e-12 * b.abs().max(1.0));
        }
    }
}
