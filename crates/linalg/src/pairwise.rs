//! # Blocked pairwise Euclidean distances and k-nearest neighbours
//!
//! Every kernel here answers a question about the Euclidean distances
//!
//! ```text
//! d(a, b) = sqrt( Σ_k (a_k − b_k)² )
//! ```
//!
//! between the rows of two `f32` feature matrices (or of one matrix with
//! itself), **with the answer exact float64 arithmetic gives**. That is the
//! convention of the Python references these kernels serve (the NVlabs /
//! kynkaat precision–recall and realism ports, prdc's exact-distance rules,
//! dgm-eval), where decisions such as "is this probe inside that k-NN ball"
//! must come out identical, not merely close.
//!
//! ## The exact rule
//!
//! The *exact* squared distance of two `f32` rows is
//! `s(a, b) = Σ_k (f64(a_k) − f64(b_k))²`, accumulated in float64 in a fixed
//! order (eight interleaved partial sums, combined pairwise; see
//! [`squared_distance`]). It is symmetric and bitwise reproducible, so a row
//! and its bitwise copy have exactly the same distances to everything, and
//! duplicated rows are at distance exactly `0`. Its relative error against the
//! real-number value is at most `γ_{D+3}(2^-53)` (about `2.3e-13` for
//! `D = 2048`), far below every decision margin of the conformance corpus
//! (the smallest is `1e-7`).
//!
//! ## How it is fast
//!
//! The O(N·M·D) work is a blocked `f32` GEMM (`faer`), through the expansion
//!
//! ```text
//! s̃(a, b) = (‖a‖² + ‖b‖²) − 2·fl32(a·b),     ‖·‖² in float64
//! ```
//!
//! whose error against the exact rule is rigorously bounded by
//!
//! ```text
//! |s̃(a, b) − s(a, b)| ≤ e(a) + e(b),
//! e(x) = c·‖x‖² + η,
//! c = 1.001·( γ_D(u) + 3·γ_{D+3}(2^-53) + 16·2^-53 ),   γ_n(u) = n·u / (1 − n·u),
//! η = (D + 2)·2^-125                                      (f32 underflow)
//! ```
//!
//! with `u = 2^-24` (the standard bound for a dot product summed in any order,
//! `|fl(a·b) − a·b| ≤ γ_D Σ|a_k b_k| ≤ γ_D (‖a‖² + ‖b‖²)/2`). Every decision is
//! first taken on the interval `[s̃ − e(a) − e(b), s̃ + e(a) + e(b)]`; only the
//! pairs whose interval straddles the decision threshold (a radius, the
//! current k-th smallest distance, the current best score) are recomputed with
//! the exact rule from the raw rows. The answers are therefore those of the
//! exact rule, and the recomputations are few (a relative window of about
//! `γ_D ≈ 1.2e-4` around each threshold for `D = 2048`).
//!
//! Inputs whose squared norms exceed `2^120` (the `f32` GEMM could overflow),
//! that contain subnormal values (a GEMM may flush them to zero), or whose
//! dimension makes `D·2^-24 > 0.01` use a float64 GEMM with `u = 2^-53`
//! instead; the answers are the same, only slower.
//!
//! ## Memory
//!
//! The distance matrix is never materialised: the kernels walk it in blocks of
//! of 512 to 1023 rows a side (one `f32` and one `f64` block buffer per thread:
//! 3.2 MiB at 10 000 rows, at most 12 MiB),
//! and keep O(k) candidates per row, so 50 000 × 50 000 × 2048 needs the inputs
//! plus a few tens of MiB. Self-distances (`kth_neighbour_radii`) visit each
//! unordered block pair once (half the GEMM work). The block pairs of a pass
//! form one list the threads take from as they come free; a block is
//! multiplied with no lock held, and only its scan locks the row groups it
//! updates (both directions of a pair). A pass with a kernel tap (below) also holds, per thread, the
//! block's rows and columns widened to float64 and their float64 products:
//! `8 (2·r·D + r²)` bytes for blocks of `r` rows, 19 MiB at `D = 2048` and
//! 10 000 rows (`r = 527`), never
//! more than the kernel passes' 64 MiB budget (`r` shrinks for wide rows).
//! Buffers are pooled per pass, allocated once per thread.
//!
//! ## One pass for many questions
//!
//! [`cross_pass`] answers several questions about the same pair of sets
//! (ball counts for several radius sets, nearest distances both ways,
//! max-weight-over-distance scores) from one walk over the blocks: each block
//! is computed once and every request reads it, with the same bounds and
//! exact rechecks as the single-question kernels, so the answers are
//! identical to theirs.
//!
//! ## Kernel sums from the same blocks
//!
//! Exact KID needs every inner product `x_iᵀy_j` in float64 (the references
//! compute in float64), and those are the products the distances are made
//! of. [`kth_neighbour_squared_radii_with_kernel`] and
//! [`cross_pass_with_kernel`] run the engine on the raw rows widened to
//! float64 block by block (`u = 2^-53` in the bound above, so almost no exact
//! rechecks) and hand each block's products `G = A_I B_Jᵀ` to a kernel *tap*
//! before they become `s̃ = ‖a‖² + ‖b‖² − 2G`: the tap turns them into kernel
//! values `k(a_i, b_j)` and their compensated sums (full set and per subset;
//! the code of `kernels::KernelSums`). So precision/recall, prdc, realism and
//! KID together form each product once, not once in float32 and again in
//! float64. The tap keeps each block's sums by block position and merges
//! them in that order, with a block edge fixed by the set's size and the
//! dimension alone (equal blocks of at least 512 rows, under 1024; fewer where two widened
//! row blocks would pass the kernel passes' 64 MiB budget,
//! `kernels::block_rows_for_dim`), so the sums are
//! the same bits on any number of threads and whatever distance questions
//! shared the pass ([`kernel_sums_with_subsets`] is the pass with none).
//!
//! ## Float32 blocks on another device
//!
//! The float32 products can come from elsewhere: [`set_gram_device`]
//! registers a [`GramDevice`] (an accelerator through ONNX Runtime, say) that
//! the float32 passes then ask for each block `G = A_I B_Jᵀ`. The exactness
//! rule does not change: the bound above holds for a dot product summed in
//! **any** order with every operation rounded to float32 (fused
//! multiply–adds only round less), so the device's `fl32(a·b)` take the same
//! interval test and the same float64 recheck of near-ties on the host, and
//! the answers are those of the exact rule, bit for bit, whatever the device
//! does inside those limits. What the bound does not cover is arithmetic
//! below float32: inputs rounded to TF32 or bfloat16 (a tensor-core default
//! on some GPUs) must be switched off by the device. A device error, or a
//! block with a non-finite value, is multiplied again on the CPU and counted
//! ([`gram_device_fallbacks`]). With a device the blocks are larger (up to
//! 2048 rows, `DEVICE_BLOCK`), since every block's rows travel to it, unless
//! the device keeps the pass's GEMM inputs ([`GramDevice::resident`]: copied
//! once when the pass starts, freed when it ends; each block then sends its
//! two row ranges, [`ResidentGram`], and only the products come back).
//!
//! A device that also forms float64 blocks ([`GramDevice::float64`]: the
//! float32 rows widened exactly, products and sums in float64, any order)
//! takes the passes with a kernel tap too (exact KID, alone or sharing its
//! pass with the k-NN metrics), in blocks of up to 1024 rows
//! (`DEVICE_BLOCK_64`, still capped by the kernel memory budget). Their
//! distance answers stay those of the exact rule bit for bit (the bound at
//! `u = 2^-53` holds for any summation order); the **kernel sums** follow the
//! device's summation order in their last bits: each product is within
//! `γ_D Σ_k |a_k b_k|` of the exact value on either side, so KID agrees with
//! the CPU's to about `1e-15` relative on well-scaled features, not bit for
//! bit. They are still the same on any number of threads and whatever distance
//! questions share the pass, on one device (the block edge depends on `n`,
//! `D` and whether a device is registered). Inputs that need the float64 GEMM
//! (rows a float32 GEMM cannot multiply) stay on the CPU.
//!
//! ## What this module does not decide
//!
//! Whether a metric uses `<` or `≤` ([`Boundary`]), which k, or how radii are
//! clamped is the caller's choice: the metric crates pass it in.

use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2, Axis};
use rayon::prelude::*;

use crate::LinalgError;
use crate::kernels::{
    CompensatedSum, Kernel, PairPart, SubsetKernelSums, WithinSum, block_rows_for_dim, finite,
    merge_parts, pair_part, sorted_subset_pairs, sorted_subsets,
};

/// Unit round-off of `f32` (`2^-24`).
const U32: f64 = 5.960_464_477_539_063e-8;
/// Unit round-off of `f64` (`2^-53`).
const U64: f64 = 1.110_223_024_625_156_5e-16;
/// The block edge the kernels aim for: blocks have at least this many rows
/// (fewer only when the set has fewer), and under twice as many
/// ([`blocks_of_at_least`]).
const MAX_BLOCK: usize = 512;

/// Most rows per block when a [`GramDevice`] multiplies the float32 blocks.
/// Unless the device keeps the pass's sets ([`GramDevice::resident`]), each
/// block's rows travel to it, so a pass over `n` rows on both sides moves
/// `8·n²·D / e` bytes for blocks of `e` rows (80 GB at 50 000 × 2048 with
/// 512-row blocks, 20 GB with 2048); the `4·n²` bytes of products come back
/// either way (10 GB), in fewer, larger calls with larger blocks. The host
/// holds `12·e²` bytes of block buffers per thread (48 MiB at 2048).
const DEVICE_BLOCK: usize = 2048;

/// Most rows per block when a [`GramDevice`] forms the float64 blocks of a
/// pass with a kernel tap: the host holds `16·e²` bytes per thread (the
/// products and `s̃`, 16 MiB at 1024), and the block edge stays a function of
/// `n`, `D` and whether a device is registered, so the kernel sums do not
/// follow the threads.
const DEVICE_BLOCK_64: usize = 1024;

/// `γ_n(u) = n·u / (1 − n·u)`, the classic bound on the relative error of a
/// sum of `n` rounded terms (Higham, *Accuracy and Stability of Numerical
/// Algorithms*, §3.1).
fn gamma(n: usize, u: f64) -> f64 {
    let nu = n as f64 * u;
    nu / (1.0 - nu)
}

/// Whether a point at distance `d` from a centre is inside the ball of radius
/// `r` around it.
///
/// The metrics of the field disagree here and the difference is visible
/// (duplicated rows make radii exactly `0`): NVlabs / kynkaat precision and
/// recall use the closed ball (`d ≤ r`), prdc (Naeem et al. 2020) the open one
/// (`d < r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Boundary {
    /// `d ≤ r` (NVlabs, kynkaat). A point at distance 0 is inside a ball of
    /// radius 0.
    Closed,
    /// `d < r` (prdc). Nothing is inside a ball of radius 0.
    Open,
}

impl Boundary {
    /// `d ≤ r` for [`Boundary::Closed`], `d < r` for [`Boundary::Open`].
    #[inline]
    pub fn contains(self, d: f64, r: f64) -> bool {
        match self {
            Boundary::Closed => d <= r,
            Boundary::Open => d < r,
        }
    }
}

/// Which power of the distance a proximity score divides by (see
/// [`max_weight_over_distance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DistancePower {
    /// `d` (dgm-eval's realism variant).
    Distance,
    /// `d²` (kynkaat's realism score).
    Squared,
}

// ---------------------------------------------------------------------------
// The exact rule
// ---------------------------------------------------------------------------

/// The exact rule on raw slices (equal lengths are the caller's invariant).
#[inline]
fn exact_sq(a: &[f32], b: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            let t = f64::from(x[l]) - f64::from(y[l]);
            acc[l] += t * t;
        }
    }
    let mut tail = 0.0f64;
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        let t = f64::from(*x) - f64::from(*y);
        tail += t * t;
    }
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail
}

/// `Σ_k x_k²` in float64, in the order of [`exact_sq`].
#[inline]
fn sq_norm(x: &[f32]) -> f64 {
    let mut acc = [0.0f64; 8];
    let mut c = x.chunks_exact(8);
    for v in &mut c {
        for l in 0..8 {
            let t = f64::from(v[l]);
            acc[l] += t * t;
        }
    }
    let mut tail = 0.0f64;
    for v in c.remainder() {
        let t = f64::from(*v);
        tail += t * t;
    }
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))) + tail
}

/// The exact squared Euclidean distance of two `f32` vectors:
/// `s(a, b) = Σ_k (f64(a_k) − f64(b_k))²`, summed in float64 in a fixed order
/// (eight interleaved partial sums, combined pairwise, then the tail).
///
/// Symmetric (`s(a, b) == s(b, a)` bitwise) and `0` exactly for equal vectors.
/// This is the rule every kernel of this module reproduces.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] if the lengths differ.
pub fn squared_distance(
    a: ArrayView1<'_, f32>,
    b: ArrayView1<'_, f32>,
) -> Result<f64, LinalgError> {
    if a.len() != b.len() {
        return Err(LinalgError::DimensionMismatch {
            what: "squared_distance",
            left: a.len(),
            right: b.len(),
        });
    }
    let a: Vec<f32> = a.iter().copied().collect();
    let b: Vec<f32> = b.iter().copied().collect();
    Ok(exact_sq(&a, &b))
}

// ---------------------------------------------------------------------------
// Validated input sets and the GEMM engine
// ---------------------------------------------------------------------------

/// A validated feature matrix: contiguous row-major data and exact squared norms.
struct Set<'a> {
    x: Cow<'a, [f32]>,
    n: usize,
    d: usize,
    sq: Vec<f64>,
}

impl<'a> Set<'a> {
    fn new(
        what: &'static str,
        x: ArrayView2<'a, f32>,
        min_rows: usize,
    ) -> Result<Self, LinalgError> {
        let (n, d) = x.dim();
        if n < min_rows.max(1) {
            return Err(LinalgError::TooFewRows {
                what,
                needed: min_rows.max(1),
                got: n,
            });
        }
        if d == 0 {
            return Err(LinalgError::InvalidParameter(format!(
                "{what}: the feature matrix has zero columns"
            )));
        }
        for (row, r) in x.outer_iter().enumerate() {
            if let Some(col) = r.iter().position(|v| !v.is_finite()) {
                return Err(LinalgError::NonFinite { what, row, col });
            }
        }
        let x: Cow<'a, [f32]> = match x.to_slice() {
            Some(s) => Cow::Borrowed(s),
            None => Cow::Owned(x.iter().copied().collect()),
        };
        let sq = x.par_chunks(d).map(sq_norm).collect();
        Ok(Set { x, n, d, sq })
    }

    #[inline]
    fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.d..(i + 1) * self.d]
    }

    fn needs_f64_gemm(&self) -> bool {
        let max_sq = self.sq.iter().copied().fold(0.0f64, f64::max);
        max_sq > 2f64.powi(120) || self.x.par_iter().any(|v| v.is_subnormal())
    }
}

/// Per-thread block buffers.
#[derive(Default)]
struct Scratch {
    g32: Vec<f32>,
    s: Vec<f64>,
    /// Rows and columns of the block widened to float64, and their products
    /// ([`Gin::W64`]).
    wa: Vec<f64>,
    wb: Vec<f64>,
    /// The rows (`start`, `count`) `wa` and `wb` hold, so a run of pairs
    /// with the same row block widens it once.
    wa_rows: Option<(usize, usize)>,
    wb_rows: Option<(usize, usize)>,
    g64: Vec<f64>,
}

/// Block buffers shared by the workers of one engine: a worker takes one
/// for a run of blocks and gives it back when done ([`Pooled`]), so the
/// buffers (up to ~20 MiB each with [`Gin::W64`]) are allocated once per
/// thread, not once per rayon job (fresh pages were zeroed by the kernel on
/// first touch: 3–4% of a 10k × 10k pass).
#[derive(Default)]
struct ScratchPool(Mutex<Vec<Scratch>>);

/// A [`Scratch`] taken from a [`ScratchPool`], returned to it on drop.
struct Pooled<'p> {
    pool: &'p ScratchPool,
    scr: Scratch,
}

impl ScratchPool {
    fn take(&self) -> Pooled<'_> {
        let scr = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default();
        Pooled { pool: self, scr }
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let scr = std::mem::take(&mut self.scr);
        self.pool
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(scr);
    }
}

/// One block of approximate squared distances `s̃`, row-major `ni × nj`, for
/// rows `i0..i0+ni` of the first set and `j0..j0+nj` of the second.
struct Blk<'s> {
    i0: usize,
    ni: usize,
    j0: usize,
    nj: usize,
    s: &'s [f64],
}

impl Blk<'_> {
    #[inline]
    fn row(&self, ii: usize) -> &[f64] {
        &self.s[ii * self.nj..(ii + 1) * self.nj]
    }
}

/// The GEMM input of one side.
enum Gin {
    /// The raw `f32` rows of the set.
    Raw,
    /// Centred rows rounded to `f32`: `fl32(x − μ)`.
    C32(Vec<f32>),
    /// Rows (centred or not) in float64, for the fallback GEMM.
    C64(Vec<f64>),
    /// The raw rows widened to float64 block by block (nothing held for the
    /// whole set): the GEMM of a pass with a [`KernelTap`], whose kernel
    /// needs the raw inner products `a·b` in float64.
    W64,
}

/// One side of the engine: its GEMM input, the float64 squared norms of that
/// input, and the per-row error terms `e(x)`.
struct Side {
    gin: Gin,
    norms: Vec<f64>,
    err: Vec<f64>,
}

/// The blocked distance engine for a pair of sets (or one set with itself).
///
/// Distances are translation invariant, so the GEMM runs on rows centred on
/// the mean `μ` of both sets whenever that shrinks the squared norms by more
/// than half (features with a large common offset, such as non-negative CNN
/// activations): the error bound scales with `‖x − μ‖²`, so fewer pairs need
/// an exact recomputation. Centring rounds `x − μ` to `f32`, which moves a
/// squared distance by at most `(2 + u')·u'·(‖a_c‖ + ‖b_c‖)² ≤
/// 4.01·u'·(‖a'‖² + ‖b'‖²)` with `u' = 2^-24 + 2^-53 + 2^-77`; that term is
/// added to `c`.
struct Engine<'a> {
    a: Set<'a>,
    /// `None`: distances of `a` with itself.
    b: Option<Set<'a>>,
    sa: Side,
    sb: Option<Side>,
    /// Where the blocks are multiplied when not by `faer`
    /// ([`set_gram_device`]): the float32 blocks, or with a tap the float64
    /// ones when the device forms them; `None` for the other float64 engines.
    device: Option<Arc<dyn GramDevice>>,
    /// The pass's GEMM inputs on the device, when it keeps them
    /// ([`GramDevice::resident`]).
    resident: Option<Box<dyn ResidentGram>>,
    /// Kernel sums read off the float64 products of every block.
    tap: Option<KernelTap<'a>>,
    /// Whether the blocks' squared distances are read (`false`: a pass for
    /// the tap alone, which skips forming `s̃`).
    distances: bool,
    pool: ScratchPool,
}

/// Kernel sums read off the blocks of a distance pass (see
/// [`kernel_sums_with_subsets`]): every block's float64 Gram block
/// `G = A_I B_Jᵀ` becomes its kernel values and their sums
/// (`kernels::pair_part`, the code of `KernelSums`), kept by block position
/// and merged in that order when the pass ends, so the totals depend neither
/// on the threads nor on which distance questions shared the pass.
struct KernelTap<'t> {
    kernel: Kernel,
    /// Sorted subsets of the first set (rows of the blocks).
    rows: &'t [Vec<usize>],
    /// Sorted subsets of the second set (columns; the first set's own in a
    /// within-set pass).
    cols: &'t [Vec<usize>],
    parts: Mutex<Vec<((usize, usize), PairPart)>>,
}

impl<'t> KernelTap<'t> {
    fn new(kernel: Kernel, rows: &'t [Vec<usize>], cols: &'t [Vec<usize>]) -> Self {
        KernelTap {
            kernel,
            rows,
            cols,
            parts: Mutex::new(Vec::new()),
        }
    }

    /// The pass's totals, merged in block order: kernel sum, diagonal
    /// (within-set passes) and per-subset sums; an error if the engine lost
    /// its tap or a total is not finite.
    #[allow(clippy::type_complexity)]
    fn finish(
        what: &'static str,
        tap: Option<Self>,
    ) -> Result<(CompensatedSum, CompensatedSum, Vec<CompensatedSum>), LinalgError> {
        let tap = tap.ok_or_else(|| LinalgError::Numerical {
            what,
            detail: "the kernel tap is missing (internal invariant broken)".into(),
        })?;
        let mut parts = tap
            .parts
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        parts.sort_unstable_by_key(|(at, _)| *at);
        let (off, diag, per) = merge_parts(parts.into_iter().map(|(_, p)| p), tap.rows.len());
        finite(what, off.value())?;
        finite(what, diag.value())?;
        Ok((off, diag, per))
    }
}

/// The common dimension of the engine's sets.
fn same_dim(a: &Set<'_>, b: Option<&Set<'_>>) -> Result<usize, LinalgError> {
    match b {
        Some(b) if b.d != a.d => Err(LinalgError::DimensionMismatch {
            what: "pairwise distances",
            left: a.d,
            right: b.d,
        }),
        _ => Ok(a.d),
    }
}

impl<'a> Engine<'a> {
    fn new(a: Set<'a>, b: Option<Set<'a>>) -> Result<Self, LinalgError> {
        let d = same_dim(&a, b.as_ref())?;
        let use_f64 = (d as f64) * U32 > 1e-2
            || a.needs_f64_gemm()
            || b.as_ref().is_some_and(Set::needs_f64_gemm);

        // The common mean and whether centring pays.
        let sets: Vec<&Set<'_>> = std::iter::once(&a).chain(b.as_ref()).collect();
        let total: usize = sets.iter().map(|s| s.n).sum();
        let mut mu = vec![0.0f64; d];
        for s in &sets {
            let part =
                s.x.par_chunks(d)
                    .fold(
                        || vec![0.0f64; d],
                        |mut acc, row| {
                            for (m, &v) in acc.iter_mut().zip(row) {
                                *m += f64::from(v);
                            }
                            acc
                        },
                    )
                    .reduce(
                        || vec![0.0f64; d],
                        |mut x, y| {
                            for (p, q) in x.iter_mut().zip(&y) {
                                *p += q;
                            }
                            x
                        },
                    );
            for (m, p) in mu.iter_mut().zip(&part) {
                *m += p;
            }
        }
        for m in &mut mu {
            *m /= total as f64;
        }
        let mean_sq: f64 = sets.iter().flat_map(|s| s.sq.iter()).sum::<f64>() / total as f64;
        let mu_sq: f64 = mu.iter().map(|m| m * m).sum();
        let centre = mean_sq > 0.0 && (mean_sq - mu_sq) < 0.5 * mean_sq;

        let u = if use_f64 { U64 } else { U32 };
        let u_c = if use_f64 { U64 } else { U32 + U64 + U32 * U64 };
        let c = 1.001
            * (gamma(d, u)
                + 3.0 * gamma(d + 3, U64)
                + 16.0 * U64
                + if centre { 4.01 * u_c } else { 0.0 });
        let eta = (d as f64 + 2.0) * 2f64.powi(-125);
        let side = |s: &Set<'_>, centre: bool| -> Option<Side> {
            let gin = match (use_f64, centre) {
                (false, false) => Gin::Raw,
                (false, true) => {
                    let xc: Vec<f32> =
                        s.x.par_chunks(d)
                            .flat_map_iter(|row| {
                                row.iter()
                                    .zip(&mu)
                                    .map(|(&v, &m)| (f64::from(v) - m) as f32)
                            })
                            .collect();
                    if xc.par_iter().any(|v| v.is_subnormal()) {
                        return None;
                    }
                    Gin::C32(xc)
                }
                (true, _) => Gin::C64(
                    s.x.par_chunks(d)
                        .flat_map_iter(|row| {
                            row.iter().zip(&mu).map(move |(&v, &m)| {
                                if centre {
                                    f64::from(v) - m
                                } else {
                                    f64::from(v)
                                }
                            })
                        })
                        .collect(),
                ),
            };
            let norms: Vec<f64> = match &gin {
                Gin::Raw => s.sq.clone(),
                Gin::C32(x) => x.par_chunks(d).map(sq_norm).collect(),
                Gin::C64(x) => x
                    .par_chunks(d)
                    .map(|r| r.iter().map(|v| v * v).sum())
                    .collect(),
                // Only `Engine::with_tap` builds this input.
                Gin::W64 => s.sq.clone(),
            };
            let err = norms.iter().map(|&q| c * q + eta).collect();
            Some(Side { gin, norms, err })
        };
        let make = |centre: bool| -> Option<(Side, Option<Side>)> {
            let sa = side(&a, centre)?;
            let sb = match &b {
                Some(b) => Some(side(b, centre)?),
                None => None,
            };
            Some((sa, sb))
        };
        let (sa, sb) = match make(centre) {
            Some(v) => v,
            // Centring produced subnormal values: run on the raw rows (the
            // raw rows have none, or `use_f64` would be set and centring
            // could not fail).
            None => make(false).ok_or_else(|| LinalgError::Numerical {
                what: "pairwise distances",
                detail: "no GEMM input could be prepared".into(),
            })?,
        };
        let device = if use_f64 { None } else { gram_device() };
        let resident = device.as_ref().and_then(|dev| {
            let rows_b = match (&b, &sb) {
                (Some(b), Some(sb)) => Some(f32_rows(sb, b)?),
                _ => None,
            };
            dev.resident(f32_rows(&sa, &a)?, rows_b, a.d)
        });
        Ok(Engine {
            a,
            b,
            sa,
            sb,
            device,
            resident,
            tap: None,
            distances: true,
            pool: ScratchPool::default(),
        })
    }

    /// An engine whose passes also feed `tap`: the GEMM runs on the raw rows
    /// widened to float64 block by block ([`Gin::W64`], no centring: the
    /// kernel needs the raw products), so `u = 2^-53` in the error bound, and
    /// the block edge is fixed ([`Engine::edge`]) so the kernel sums are the
    /// same on any number of threads.
    /// `distances: false` for a pass that feeds the tap alone.
    fn with_tap(
        a: Set<'a>,
        b: Option<Set<'a>>,
        tap: KernelTap<'a>,
        distances: bool,
    ) -> Result<Self, LinalgError> {
        let d = same_dim(&a, b.as_ref())?;
        let c = 1.001 * (gamma(d, U64) + 3.0 * gamma(d + 3, U64) + 16.0 * U64);
        let eta = (d as f64 + 2.0) * 2f64.powi(-125);
        let side = |s: &Set<'_>| -> Side {
            let norms: Vec<f64> =
                s.x.par_chunks(d)
                    .map(|r| r.iter().map(|&v| f64::from(v) * f64::from(v)).sum())
                    .collect();
            let err = norms.iter().map(|&q| c * q + eta).collect();
            Side {
                gin: Gin::W64,
                norms,
                err,
            }
        };
        let sa = side(&a);
        let sb = b.as_ref().map(side);
        let device = gram_device().filter(|dev| dev.float64());
        let resident = device
            .as_ref()
            .and_then(|dev| dev.resident(&a.x, b.as_ref().map(|b| &b.x[..]), d));
        Ok(Engine {
            a,
            b,
            sa,
            sb,
            device,
            resident,
            tap: Some(tap),
            distances,
            pool: ScratchPool::default(),
        })
    }

    /// Block edge for a set of `n` rows: [`block_for`], or with a tap a
    /// size fixed by `n` and the dimension alone (the kernel sums' order must
    /// not follow the threads): [`blocks_of_at_least`] [`MAX_BLOCK`] rows,
    /// never more than two widened row blocks fit in the kernel passes'
    /// memory budget (`kernels::block_rows_for_dim`: 1024 rows at
    /// `D = 2048`, 16 for raw 299 × 299 × 3 pixels).
    ///
    /// With a [`GramDevice`]: [`balanced`] blocks of at most [`DEVICE_BLOCK`]
    /// rows, whatever the threads ([`DEVICE_BLOCK_64`] with a tap, still
    /// capped by the memory budget).
    fn edge(&self, n: usize) -> usize {
        if self.tap.is_some() {
            let budget = block_rows_for_dim(self.d());
            if self.device.is_some() {
                balanced(n, DEVICE_BLOCK_64.min(budget))
            } else {
                blocks_of_at_least(n, MAX_BLOCK.min(budget), budget)
            }
        } else if self.device.is_some() {
            balanced(n, DEVICE_BLOCK)
        } else {
            block_for(n)
        }
    }

    #[inline]
    fn b(&self) -> &Set<'a> {
        self.b.as_ref().unwrap_or(&self.a)
    }

    #[inline]
    fn side_b(&self) -> &Side {
        self.sb.as_ref().unwrap_or(&self.sa)
    }

    #[inline]
    fn ea(&self) -> &[f64] {
        &self.sa.err
    }

    #[inline]
    fn eb(&self) -> &[f64] {
        &self.side_b().err
    }

    #[inline]
    fn d(&self) -> usize {
        self.a.d
    }

    /// Exact squared distance of row `i` of the first set and row `j` of the second.
    #[inline]
    fn exact(&self, i: usize, j: usize) -> f64 {
        exact_sq(self.a.row(i), self.b().row(j))
    }

    /// Fills `scr.s` with the `ni × nj` block of `s̃` (unclamped).
    fn block(&self, i0: usize, ni: usize, j0: usize, nj: usize, scr: &mut Scratch, par: Par) {
        let d = self.d();
        let (sa, sb) = (&self.sa, self.side_b());
        scr.s.resize(ni * nj, 0.0);
        match (&sa.gin, &sb.gin) {
            (Gin::W64, _) | (_, Gin::W64) => self.block_w64(i0, ni, j0, nj, scr, par),
            (Gin::C64(xa), Gin::C64(xb)) => {
                let lhs = MatRef::from_row_major_slice(&xa[i0 * d..(i0 + ni) * d], ni, d);
                let rhs =
                    MatRef::from_row_major_slice(&xb[j0 * d..(j0 + nj) * d], nj, d).transpose();
                let dst = MatMut::from_row_major_slice_mut(&mut scr.s[..ni * nj], ni, nj);
                matmul(dst, Accum::Replace, lhs, rhs, 1.0f64, par);
                let nb = &sb.norms[j0..j0 + nj];
                for ii in 0..ni {
                    let nai = sa.norms[i0 + ii];
                    let s = &mut scr.s[ii * nj..(ii + 1) * nj];
                    for jj in 0..nj {
                        s[jj] = (nai + nb[jj]) - 2.0 * s[jj];
                    }
                }
            }
            _ => {
                // Float64 inputs are matched above; the raw rows otherwise.
                let xa = f32_rows(sa, &self.a).unwrap_or(&self.a.x);
                let xb = f32_rows(sb, self.b()).unwrap_or(&self.b().x);
                scr.g32.resize(ni * nj, 0.0);
                let (ra, rb) = (&xa[i0 * d..(i0 + ni) * d], &xb[j0 * d..(j0 + nj) * d]);
                if !self.device_block((i0, ni), (j0, nj), (ra, rb), &mut scr.g32[..ni * nj]) {
                    let lhs = MatRef::from_row_major_slice(ra, ni, d);
                    let rhs = MatRef::from_row_major_slice(rb, nj, d).transpose();
                    let dst = MatMut::from_row_major_slice_mut(&mut scr.g32[..ni * nj], ni, nj);
                    matmul(dst, Accum::Replace, lhs, rhs, 1.0f32, par);
                }
                let nb = &sb.norms[j0..j0 + nj];
                for ii in 0..ni {
                    let nai = sa.norms[i0 + ii];
                    let g = &scr.g32[ii * nj..(ii + 1) * nj];
                    let s = &mut scr.s[ii * nj..(ii + 1) * nj];
                    for jj in 0..nj {
                        s[jj] = (nai + nb[jj]) - 2.0 * f64::from(g[jj]);
                    }
                }
            }
        }
    }

    /// The float32 block `out = A Bᵀ` from the registered [`GramDevice`]:
    /// `false` (the caller multiplies on the CPU) without one, on its error,
    /// or when it returned a non-finite value (which the bound does not
    /// cover; counted in [`gram_device_fallbacks`]).
    /// With the pass's sets resident on the device only the ranges `rows`
    /// and `cols` travel, else the block's rows `a` and `b`.
    fn device_block(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        (a, b): (&[f32], &[f32]),
        out: &mut [f32],
    ) -> bool {
        let d = self.d();
        let call = |dev: &dyn GramDevice, o: &mut [f32]| match &self.resident {
            Some(r) => r.gram(rows, cols, o),
            None => dev.gram(a, b, d, o),
        };
        self.on_device(out, call, f32::is_finite)
    }

    /// [`Engine::device_block`] for the float64 products ([`GramDevice::gram64`]).
    fn device_block64(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        (a, b): (&[f32], &[f32]),
        out: &mut [f64],
    ) -> bool {
        let d = self.d();
        let call = |dev: &dyn GramDevice, o: &mut [f64]| match &self.resident {
            Some(r) => r.gram64(rows, cols, o),
            None => dev.gram64(a, b, d, o),
        };
        self.on_device(out, call, f64::is_finite)
    }

    /// Runs `call` on the registered device, writing `out`: `true` when it
    /// succeeded and every value is `finite`; a failure is counted.
    fn on_device<T: Copy>(
        &self,
        out: &mut [T],
        call: impl FnOnce(&dyn GramDevice, &mut [T]) -> Result<(), String>,
        finite: fn(T) -> bool,
    ) -> bool {
        let Some(dev) = &self.device else {
            return false;
        };
        if call(dev.as_ref(), out).is_ok() && out.iter().all(|&v| finite(v)) {
            true
        } else {
            DEVICE_FALLBACKS.fetch_add(1, Ordering::Relaxed);
            false
        }
    }

    /// [`Engine::block`] for [`Gin::W64`]: the float64 products of the
    /// block's rows and columns (from the registered device when it forms
    /// float64 blocks, else widened and multiplied here), then `s̃`, then the
    /// products handed to the tap (which turns them into kernel values in
    /// place).
    fn block_w64(&self, i0: usize, ni: usize, j0: usize, nj: usize, scr: &mut Scratch, par: Par) {
        let d = self.d();
        let (ra, rb) = (
            &self.a.x[i0 * d..(i0 + ni) * d],
            &self.b().x[j0 * d..(j0 + nj) * d],
        );
        scr.g64.resize(ni * nj, 0.0);
        if !self.device_block64((i0, ni), (j0, nj), (ra, rb), &mut scr.g64[..ni * nj]) {
            let widen = |x: &[f32], out: &mut Vec<f64>, held: &mut Option<_>, rows| {
                if *held != Some(rows) {
                    out.clear();
                    out.extend(x.iter().map(|&v| f64::from(v)));
                    *held = Some(rows);
                }
            };
            widen(ra, &mut scr.wa, &mut scr.wa_rows, (i0, ni));
            let same = self.b.is_none() && i0 == j0;
            if !same {
                widen(rb, &mut scr.wb, &mut scr.wb_rows, (j0, nj));
            }
            let xb: &[f64] = if same { &scr.wa } else { &scr.wb };
            let lhs = MatRef::from_row_major_slice(&scr.wa[..ni * d], ni, d);
            let rhs = MatRef::from_row_major_slice(&xb[..nj * d], nj, d).transpose();
            let dst = MatMut::from_row_major_slice_mut(&mut scr.g64[..ni * nj], ni, nj);
            matmul(dst, Accum::Replace, lhs, rhs, 1.0f64, par);
        }
        let (sa, sb) = (&self.sa, self.side_b());
        let nb = &sb.norms[j0..j0 + nj];
        if self.distances {
            for ii in 0..ni {
                let nai = sa.norms[i0 + ii];
                let g = &scr.g64[ii * nj..(ii + 1) * nj];
                let s = &mut scr.s[ii * nj..(ii + 1) * nj];
                for jj in 0..nj {
                    s[jj] = (nai + nb[jj]) - 2.0 * g[jj];
                }
            }
        }
        if let Some(tap) = &self.tap {
            let (qa, qb): (&[f64], &[f64]) = if tap.kernel.needs_norms() {
                (&sa.norms[i0..i0 + ni], nb)
            } else {
                (&[], &[])
            };
            let part = pair_part(
                tap.kernel,
                (qa, qb),
                &mut scr.g64,
                (i0, ni),
                (j0, nj),
                self.b.is_none(),
                (tap.rows, tap.cols),
            );
            tap.parts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(((i0, j0), part));
        }
    }

    /// Walks the blocks row-block by row-block; row blocks run in parallel and
    /// each owns the states of its rows.
    fn drive_rows<S: Send>(&self, states: &mut [S], f: impl Fn(&Blk<'_>, &mut [S]) + Sync) {
        // A tap counts each block once; a within-set walk by rows would
        // visit both halves.
        debug_assert!(self.tap.is_none(), "drive_rows does not feed a kernel tap");
        let (na, nb) = (self.a.n, self.b().n);
        let rb = self.edge(na);
        let cb = if self.device.is_some() {
            DEVICE_BLOCK
        } else {
            MAX_BLOCK
        }
        .min(nb);
        let par = self.gemm_par(na.div_ceil(rb));
        states.par_chunks_mut(rb).enumerate().for_each_init(
            || self.pool.take(),
            |pooled, (bi, st)| {
                let scr = &mut pooled.scr;
                let (i0, ni) = (bi * rb, st.len());
                let mut j0 = 0;
                while j0 < nb {
                    let nj = cb.min(nb - j0);
                    self.block(i0, ni, j0, nj, scr, par);
                    f(
                        &Blk {
                            i0,
                            ni,
                            j0,
                            nj,
                            s: &scr.s,
                        },
                        st,
                    );
                    j0 += nj;
                }
            },
        );
    }

    /// Walks every block pair `(I, J)` once and lets `f` update both sides'
    /// states. The pairs are one list handed to the threads as they come free
    /// (no round waits for its slowest pair): each block is multiplied with
    /// no lock held, and only its scan locks the two row groups it updates
    /// (always the first set's group first, so two scans never wait on each
    /// other in a cycle). The order in which pairs reach a row does not change
    /// any answer (the scans keep exact k-th distances, integer counts and
    /// maxima), and a tap's sums are merged by block position.
    fn drive_both<SA: Send, SB: Send>(
        &self,
        sa: &mut [SA],
        sb: &mut [SB],
        f: impl Fn(&Blk<'_>, &mut [SA], &mut [SB]) + Sync,
    ) {
        let (na, nb) = (self.a.n, self.b().n);
        let (rb, cb) = (self.edge(na), self.edge(nb));
        let ga: Vec<Mutex<&mut [SA]>> = sa.chunks_mut(rb).map(Mutex::new).collect();
        let gb: Vec<Mutex<&mut [SB]>> = sb.chunks_mut(cb).map(Mutex::new).collect();
        let (ma, mb) = (ga.len(), gb.len());
        let pairs = cross_pairs(ma, mb);
        self.each_pair(&pairs, (rb, na), (cb, nb), |blk, bi, bj| {
            let mut lock_a = ga[bi].lock().unwrap_or_else(PoisonError::into_inner);
            let mut lock_b = gb[bj].lock().unwrap_or_else(PoisonError::into_inner);
            f(blk, &mut lock_a, &mut lock_b);
        });
    }

    /// For a set with itself: walks the diagonal blocks and every unordered
    /// off-diagonal block pair once, as one list handed to the threads as
    /// they come free, as [`Engine::drive_both`] does ([`self_pairs`]; a scan
    /// locks the lower-numbered group first).
    fn drive_self<S: Send>(
        &self,
        states: &mut [S],
        diag: impl Fn(&Blk<'_>, &mut [S]) + Sync,
        off: impl Fn(&Blk<'_>, &mut [S], &mut [S]) + Sync,
    ) {
        let n = self.a.n;
        let bs = self.edge(n);
        let groups: Vec<Mutex<&mut [S]>> = states.chunks_mut(bs).map(Mutex::new).collect();
        let nbk = groups.len();
        let pairs = self_pairs(nbk);
        self.each_pair(&pairs, (bs, n), (bs, n), |blk, bi, bj| {
            if bi == bj {
                let mut g = groups[bi].lock().unwrap_or_else(PoisonError::into_inner);
                diag(blk, &mut g);
            } else {
                // bi < bj: the lower group is locked first.
                let mut gi = groups[bi].lock().unwrap_or_else(PoisonError::into_inner);
                let mut gj = groups[bj].lock().unwrap_or_else(PoisonError::into_inner);
                off(blk, &mut gi, &mut gj);
            }
        });
    }

    /// Multiplies the block of each pair `(I, J)` of `pairs` (row block `I`
    /// of edge `re` out of `na` rows, column block `J` of edge `ce` out of
    /// `nb`) on whichever thread is free, with no lock held, and hands it to
    /// `scan(block, I, J)`, which locks what it updates.
    fn each_pair(
        &self,
        pairs: &[(usize, usize)],
        (re, na): (usize, usize),
        (ce, nb): (usize, usize),
        scan: impl Fn(&Blk<'_>, usize, usize) + Sync,
    ) {
        let par = self.gemm_par(pairs.len());
        pairs.par_iter().for_each_init(
            || self.pool.take(),
            |pooled, &(bi, bj)| {
                let scr = &mut pooled.scr;
                let (i0, j0) = (bi * re, bj * ce);
                let (ni, nj) = (re.min(na - i0), ce.min(nb - j0));
                self.block(i0, ni, j0, nj, scr, par);
                let blk = Blk {
                    i0,
                    ni,
                    j0,
                    nj,
                    s: &scr.s,
                };
                scan(&blk, bi, bj);
            },
        );
    }

    /// How each block's GEMM runs: on its own thread when there are at least
    /// as many parallel tasks (block pairs, row blocks) as threads, else split
    /// across the threads.
    fn gemm_par(&self, tasks: usize) -> Par {
        if tasks >= rayon::current_num_threads() {
            Par::Seq
        } else {
            Par::rayon(0)
        }
    }
}

/// The float32 GEMM input of a side: its centred copy or the set's raw rows
/// (`None` for the float64 inputs).
fn f32_rows<'x>(side: &'x Side, set: &'x Set<'_>) -> Option<&'x [f32]> {
    match &side.gin {
        Gin::C32(x) => Some(x),
        Gin::Raw => Some(&set.x),
        Gin::C64(_) | Gin::W64 => None,
    }
}

/// Block edge for `n` rows: [`blocks_of_at_least`] 512 rows, or fewer where
/// that leaves about two blocks per thread when `n` allows it.
fn block_for(n: usize) -> usize {
    let t = rayon::current_num_threads().max(1);
    blocks_of_at_least(n, n.div_ceil(2 * t).clamp(32, MAX_BLOCK), 2 * MAX_BLOCK)
}

/// The edge of equal blocks of **at least** `e` rows covering `n` rows
/// (`⌈n / ⌊n / e⌋⌉`, so under `2e`), never more than `cap`; one block of
/// `n` rows when `n ≤ e`. 10 000 rows, `e = 512`: 19 blocks (18 of 527, one
/// of 514); 50 000: 97 (96 of 516, one of 464).
///
/// At least `e` rows because of how `faer`'s x86 GEMM (`private-gemm-x86`)
/// picks its strategy: when **both** sides of a product are shorter than a
/// threshold derived from the L2 cache (`L2 / 4 KiB` rows in float64 at
/// depth ≥ 512: 512 rows with a 2 MiB L2), it multiplies without packing the
/// right-hand block, and on an AVX-512 core that ran at ~60 % of the packed
/// route (500 × 500 × 2048 float64: 20–24 against 31–38 GFMA/s on one
/// thread; 2026-12-07, docs/benchmarks.md, `--example gemm_block_rates`).
/// Equal (rather than `e` rows and a short last block) so the threads'
/// shares come out even where there are few blocks. Depends on `n`, `e` and
/// `cap` alone, so a pass's sums stay thread-independent.
fn blocks_of_at_least(n: usize, e: usize, cap: usize) -> usize {
    let e = e.max(1);
    if n == 0 {
        return e;
    }
    if n <= e {
        return n;
    }
    n.div_ceil(n / e).min(cap.max(e))
}

/// The edge of equal blocks no longer than `e` covering `n` rows:
/// `⌈n / ⌈n / e⌉⌉` (10 000 rows: 20 blocks of 500, not 19 of 512 and one of
/// 272), for blocks multiplied on a [`GramDevice`], where the host's GEMM
/// strategy does not apply and even shares keep both threads busy with the
/// scans. Depends on `n` and `e` alone.
fn balanced(n: usize, e: usize) -> usize {
    let e = e.max(1);
    if n == 0 {
        return e;
    }
    n.div_ceil(n.div_ceil(e))
}

/// Every block pair `(I, J)` of an `ma × mb` grid once, in runs along the
/// longer side: row block `I` meets every column block, starting at the
/// `I`-th (or column block `J` every row block, when there are more row
/// blocks). The threads take the list in stretches (rayon splits it into
/// contiguous ranges), so a thread's consecutive pairs share a block, which
/// a float64 pass widens once for the run (~7 % of a 10k pass was the
/// widening); the rotated starts keep two threads' runs on different
/// blocks of the other side most of the time, so their scans seldom wait on
/// one lock.
fn cross_pairs(ma: usize, mb: usize) -> Vec<(usize, usize)> {
    if ma <= mb {
        (0..ma)
            .flat_map(|i| (0..mb).map(move |r| (i, (i + r) % mb)))
            .collect()
    } else {
        (0..mb)
            .flat_map(|j| (0..ma).map(move |r| ((j + r) % ma, j)))
            .collect()
    }
}

/// Every unordered pair `I ≤ J` of `m` blocks once, diagonal included, in
/// runs of equal `I` (`(0, 0), (0, 1), …, (0, m − 1), (1, 1), …`), for the
/// same reason as [`cross_pairs`].
fn self_pairs(m: usize) -> Vec<(usize, usize)> {
    (0..m).flat_map(|i| (i..m).map(move |j| (i, j))).collect()
}

// ---------------------------------------------------------------------------
// Selection of the k smallest keys per row, exact
// ---------------------------------------------------------------------------

/// A per-candidate key: a function of the exact squared distance `s` to
/// candidate `j` that is **non-decreasing in `s`**, so that bounds on `s`
/// give bounds on the key. `+inf` means "never select".
trait Key: Sync {
    /// True when `key` is cheap and free of data-dependent branches: the
    /// scans then test a whole tile of candidates at once with
    /// [`any_candidate`] before the per-candidate loop (once the thresholds
    /// are tight, most tiles hold none).
    const TILE_TEST: bool = false;
    fn key(&self, j: usize, s: f64) -> f64;
}

/// Lanes in one [`any_candidate`] test, and columns per tile of the scans.
const LANES: usize = 16;

/// The column tiles `c0..c1` of [`LANES`] columns (the last one shorter)
/// covering `0..n`.
fn tiles(n: usize) -> impl Iterator<Item = std::ops::Range<usize>> {
    (0..n).step_by(LANES).map(move |c0| c0..(c0 + LANES).min(n))
}

/// Whether any lane `t` has `key(t, max(s[t] − (ei + eb[t]), 0)) ≤ thr(t)`:
/// the scans' own test `lo ≤ thresh`, evaluated with the same operations in
/// the same order (so it is true exactly when the per-candidate loop would
/// offer some candidate), without branches so that it vectorizes.
#[inline(always)]
fn any_candidate(
    s: &[f64],
    ei: f64,
    eb: &[f64],
    key: impl Fn(usize, f64) -> f64,
    thr: impl Fn(usize) -> f64,
) -> bool {
    let mut hit = false;
    for (t, (&s, &e)) in s.iter().zip(eb).enumerate() {
        hit |= key(t, (s - (ei + e)).max(0.0)) <= thr(t);
    }
    hit
}

/// The squared distance itself (k-NN).
struct SqKey;

impl Key for SqKey {
    const TILE_TEST: bool = true;
    #[inline(always)]
    fn key(&self, _j: usize, s: f64) -> f64 {
        s
    }
}

#[derive(Clone, Copy)]
struct Cand {
    lo: f64,
    hi: f64,
    j: usize,
    /// `lo == hi` is the exact key.
    exact: bool,
}

/// The candidates of one row for the k smallest keys in the order
/// `(key, index)`.
///
/// `(thresh, thresh_j)` is the k-th smallest `(hi, j)` seen so far: k
/// candidates are known to come at or before it in the `(key, j)` order, so a
/// candidate whose `(lo, j)` comes after it can never be among the k smallest
/// and is dropped (or never admitted). When bounds cannot separate the
/// candidates (exact duplicates, heavy cancellation), the list is resolved
/// with exact keys, which leaves exactly k: memory stays O(k) per row on any
/// input.
struct Sel {
    cand: Vec<Cand>,
    thresh: f64,
    thresh_j: usize,
    cap: usize,
}

impl Sel {
    fn new(k: usize) -> Self {
        Sel {
            cand: Vec::new(),
            thresh: f64::INFINITY,
            thresh_j: usize::MAX,
            cap: (4 * k).max(32),
        }
    }

    /// Admits candidate `j` with key bounds `lo ≤ key ≤ hi` if it can still
    /// be among the k smallest; `exact(j)` gives its exact key when needed.
    #[inline(always)]
    fn offer(&mut self, k: usize, lo: f64, hi: f64, j: usize, exact: &dyn Fn(usize) -> f64) {
        if lo < f64::INFINITY && (lo < self.thresh || (lo == self.thresh && j < self.thresh_j)) {
            self.cand.push(Cand {
                lo,
                hi,
                j,
                exact: false,
            });
            if self.cand.len() >= self.cap {
                self.prune(k, exact);
            }
        }
    }

    /// Lowers `(thresh, thresh_j)` to the k-th smallest `(hi, j)` and drops the
    /// candidates that come after it.
    fn tighten(&mut self, k: usize) {
        if self.cand.len() < k {
            return;
        }
        let mut keys: Vec<(f64, usize)> = self.cand.iter().map(|c| (c.hi, c.j)).collect();
        let (_, kth, _) =
            keys.select_nth_unstable_by(k - 1, |x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        let (h, hj) = *kth;
        if h < self.thresh || (h == self.thresh && hj < self.thresh_j) {
            self.thresh = h;
            self.thresh_j = hj;
        }
        let (t, tj) = (self.thresh, self.thresh_j);
        self.cand.retain(|c| c.lo < t || (c.lo == t && c.j <= tj));
    }

    fn prune(&mut self, k: usize, exact: &dyn Fn(usize) -> f64) {
        self.tighten(k);
        if 2 * self.cand.len() > self.cap {
            // The bounds do not separate the candidates: resolve them exactly.
            for c in self.cand.iter_mut().filter(|c| !c.exact) {
                let v = exact(c.j);
                (c.lo, c.hi, c.exact) = (v, v, true);
            }
            self.cand.retain(|c| c.lo < f64::INFINITY);
            self.tighten(k);
            if 2 * self.cand.len() > self.cap {
                // Unreachable after exact resolution (at most k remain); kept
                // so that a broken invariant costs memory, not correctness.
                self.cap *= 2;
            }
        }
    }

    /// The k smallest exact keys (finite ones only), ascending, ties by index.
    fn finish(mut self, k: usize, exact: &dyn Fn(usize) -> f64) -> Vec<(f64, usize)> {
        self.tighten(k);
        let mut out: Vec<(f64, usize)> = self
            .cand
            .iter()
            .map(|c| (if c.exact { c.lo } else { exact(c.j) }, c.j))
            .filter(|(v, _)| *v < f64::INFINITY)
            .collect();
        out.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)));
        out.truncate(k);
        out
    }
}

/// Offers every pair of block row `ii` (first set) to `st`, keyed on the
/// second set's index `j`; `skip` is an index never offered (the row itself).
#[inline]
fn scan_row_select<K: Key>(
    eng: &Engine<'_>,
    blk: &Blk<'_>,
    ii: usize,
    st: &mut Sel,
    k: usize,
    key: &K,
    skip: Option<usize>,
) {
    let i = blk.i0 + ii;
    let ei = eng.ea()[i];
    let exact = |j: usize| key.key(j, eng.exact(i, j));
    let row = blk.row(ii);
    let ebj = &eng.eb()[blk.j0..blk.j0 + blk.nj];
    for tile in tiles(blk.nj) {
        let (c0, th) = (tile.start, st.thresh);
        if K::TILE_TEST
            && !any_candidate(
                &row[tile.clone()],
                ei,
                &ebj[tile.clone()],
                |t, x| key.key(blk.j0 + c0 + t, x),
                |_| th,
            )
        {
            continue;
        }
        for jj in tile {
            let s = row[jj];
            let e = ei + ebj[jj];
            let j = blk.j0 + jj;
            let lo = key.key(j, (s - e).max(0.0));
            if lo <= st.thresh && skip != Some(j) {
                st.offer(k, lo, key.key(j, s + e), j, &exact);
            }
        }
    }
}

/// Offers every pair of the block to the states of its columns (second set),
/// keyed on the first set's index `i`; walks in column tiles to stay in cache.
#[inline]
fn scan_cols_select<K: Key, S>(
    eng: &Engine<'_>,
    blk: &Blk<'_>,
    states: &mut [S],
    sel: impl Fn(&mut S) -> &mut Sel,
    k: usize,
    key: &K,
) {
    let (ea, eb) = (eng.ea(), eng.eb());
    // The tile's current thresholds, kept equal to its states' (refreshed
    // after every offer), for the whole-tile test of `K::TILE_TEST` keys.
    let mut thr = [0.0f64; LANES];
    for tile in tiles(blk.nj) {
        let (c0, c1) = (tile.start, tile.end);
        let ebt = &eb[blk.j0 + c0..blk.j0 + c1];
        if K::TILE_TEST {
            for (t, st) in thr.iter_mut().zip(&mut states[tile.clone()]) {
                *t = sel(st).thresh;
            }
        }
        for ii in 0..blk.ni {
            let i = blk.i0 + ii;
            let ei = ea[i];
            let row = blk.row(ii);
            if K::TILE_TEST
                && !any_candidate(&row[c0..c1], ei, ebt, |_, x| key.key(i, x), |t| thr[t])
            {
                continue;
            }
            for jj in c0..c1 {
                let st = sel(&mut states[jj]);
                let s = row[jj];
                let e = ei + eb[blk.j0 + jj];
                let lo = key.key(i, (s - e).max(0.0));
                if lo <= st.thresh {
                    let jg = blk.j0 + jj;
                    st.offer(k, lo, key.key(i, s + e), i, &|c: usize| {
                        key.key(c, eng.exact(c, jg))
                    });
                    thr[jj - c0] = st.thresh;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Ball membership, exact
// ---------------------------------------------------------------------------

/// Radii with precomputed safe squared thresholds: `s < lo2` proves the point
/// strictly inside (so inside for either boundary), `s > hi2` proves it
/// strictly outside; in between, the exact rule decides.
struct Balls {
    r: Vec<f64>,
    lo2: Vec<f64>,
    hi2: Vec<f64>,
    boundary: Boundary,
}

impl Balls {
    fn new(
        what: &'static str,
        radii: ArrayView1<'_, f64>,
        n: usize,
        boundary: Boundary,
    ) -> Result<Self, LinalgError> {
        if radii.len() != n {
            return Err(LinalgError::DimensionMismatch {
                what,
                left: n,
                right: radii.len(),
            });
        }
        if let Some((i, r)) = radii
            .iter()
            .enumerate()
            .find(|(_, r)| r.is_nan() || **r < 0.0)
        {
            return Err(LinalgError::InvalidParameter(format!(
                "{what}: radius {i} is {r}; radii must be non-negative (or +inf)"
            )));
        }
        let r: Vec<f64> = radii.to_vec();
        // sqrt is correctly rounded and monotone, so s < r²(1 − 1e-12) gives
        // fl(sqrt(s)) < r and s > r²(1 + 1e-12) gives fl(sqrt(s)) > r.
        let lo2 = r.iter().map(|&x| x * x * (1.0 - 1e-12)).collect();
        let hi2 = r.iter().map(|&x| x * x * (1.0 + 1e-12)).collect();
        Ok(Balls {
            r,
            lo2,
            hi2,
            boundary,
        })
    }

    /// The exact decision for an exact squared distance `s` to centre `j`.
    #[inline]
    fn contains(&self, j: usize, s: f64) -> bool {
        if s < self.lo2[j] {
            true
        } else if s > self.hi2[j] {
            false
        } else {
            self.boundary.contains(s.sqrt(), self.r[j])
        }
    }
}

/// The smallest radius of a ball containing the point (`+inf`: none).
struct RadiusKey<'b>(&'b Balls);

impl Key for RadiusKey<'_> {
    #[inline]
    fn key(&self, j: usize, s: f64) -> f64 {
        if self.0.contains(j, s) {
            self.0.r[j]
        } else {
            f64::INFINITY
        }
    }
}

/// `−w_j / (d^p + eps)` for positive weights (`+inf`, i.e. ignored, for zero ones).
struct RatioKey<'w> {
    w: &'w [f64],
    power: DistancePower,
    eps: f64,
}

impl Key for RatioKey<'_> {
    #[inline]
    fn key(&self, j: usize, s: f64) -> f64 {
        let w = self.w[j];
        if w > 0.0 {
            let dp = match self.power {
                DistancePower::Squared => s,
                DistancePower::Distance => s.sqrt(),
            };
            -(w / (dp + self.eps))
        } else {
            f64::INFINITY
        }
    }
}

impl<'a> Engine<'a> {
    /// The k smallest exact keys for every row of the first set.
    fn select_rows<K: Key>(&self, k: usize, key: &K) -> Vec<Vec<(f64, usize)>> {
        let mut states: Vec<Sel> = (0..self.a.n).map(|_| Sel::new(k)).collect();
        self.drive_rows(&mut states, |blk, st| {
            for (ii, sti) in st.iter_mut().enumerate() {
                scan_row_select(self, blk, ii, sti, k, key, None);
            }
        });
        states
            .into_par_iter()
            .enumerate()
            .map(|(i, st)| st.finish(k, &|j| key.key(j, self.exact(i, j))))
            .collect()
    }

    /// The k nearest other rows (exact squared distances) of a set with itself.
    fn select_self(&self, k: usize) -> Vec<Vec<(f64, usize)>> {
        let mut states: Vec<Sel> = (0..self.a.n).map(|_| Sel::new(k)).collect();
        self.drive_self(
            &mut states,
            |blk, st| {
                for (ii, sti) in st.iter_mut().enumerate() {
                    let i = blk.i0 + ii;
                    scan_row_select(self, blk, ii, sti, k, &SqKey, Some(i));
                }
            },
            |blk, si, sj| {
                for (ii, sti) in si.iter_mut().enumerate() {
                    scan_row_select(self, blk, ii, sti, k, &SqKey, None);
                }
                scan_cols_select(self, blk, sj, |s| s, k, &SqKey);
            },
        );
        states
            .into_par_iter()
            .enumerate()
            .map(|(i, st)| st.finish(k, &|j| self.exact(i, j)))
            .collect()
    }

    /// For every row of the first set, how many balls around rows of the second contain it.
    fn count_rows(&self, balls: &Balls) -> Vec<usize> {
        let mut counts = vec![0usize; self.a.n];
        let eb = self.eb();
        self.drive_rows(&mut counts, |blk, c| {
            for (ii, ci) in c.iter_mut().enumerate() {
                *ci += count_row(self, blk, ii, self.ea()[blk.i0 + ii], eb, balls);
            }
        });
        counts
    }
}

/// The bound tests of a pair against a ball, without branches:
/// `(surely inside, straddles)`; a pair that is neither is surely outside.
/// `s` is the block's squared distance, `e` its error bound, `lo2`/`hi2` the
/// ball's safe thresholds. Written so that a loop over a tile vectorizes.
#[inline(always)]
fn bound_tests(s: f64, e: f64, lo2: f64, hi2: f64) -> (bool, bool) {
    let inside = s + e < lo2;
    let outside = s - e > hi2;
    (inside, !inside & !outside)
}

/// Balls around the second set's rows that contain row `ii` of the block.
///
/// Tiles of [`LANES`] columns are decided by their bounds in one
/// vectorized pass; only a tile with a pair that straddles a sphere goes
/// back over its pairs for the exact rule, so the count is the same as
/// the bounds then [`Balls::contains`] pair by pair.
#[inline]
fn count_row(
    eng: &Engine<'_>,
    blk: &Blk<'_>,
    ii: usize,
    ei: f64,
    eb: &[f64],
    balls: &Balls,
) -> usize {
    let i = blk.i0 + ii;
    let row = blk.row(ii);
    let span = blk.j0..blk.j0 + blk.nj;
    let (ebs, lo2, hi2) = (
        &eb[span.clone()],
        &balls.lo2[span.clone()],
        &balls.hi2[span],
    );
    let mut c = 0usize;
    for tile in tiles(blk.nj) {
        let mut straddle = false;
        for t in tile.clone() {
            let (inside, between) = bound_tests(row[t], ei + ebs[t], lo2[t], hi2[t]);
            c += usize::from(inside);
            straddle |= between;
        }
        if straddle {
            for t in tile {
                if bound_tests(row[t], ei + ebs[t], lo2[t], hi2[t]).1 {
                    let j = blk.j0 + t;
                    c += usize::from(balls.contains(j, eng.exact(i, j)));
                }
            }
        }
    }
    c
}

/// Balls around the first set's rows that contain each column row of the block.
///
/// Counted tile by tile of [`LANES`] columns into local counters (so the
/// bound tests of a row vectorize), with the exact rule for the pairs that
/// straddle a sphere, as [`count_row`].
#[inline]
fn count_cols<S>(
    eng: &Engine<'_>,
    blk: &Blk<'_>,
    ea: &[f64],
    eb: &[f64],
    balls: &Balls,
    states: &mut [S],
    count: impl Fn(&mut S) -> &mut usize,
) {
    for tile in tiles(blk.nj) {
        let c0 = tile.start;
        let ebt = &eb[blk.j0 + c0..blk.j0 + tile.end];
        let mut acc = [0usize; LANES];
        for ii in 0..blk.ni {
            let i = blk.i0 + ii;
            let ei = ea[i];
            let row = &blk.row(ii)[tile.clone()];
            let (lo2, hi2) = (balls.lo2[i], balls.hi2[i]);
            let mut straddle = false;
            for ((a, &s), &e) in acc.iter_mut().zip(row).zip(ebt) {
                let (inside, between) = bound_tests(s, ei + e, lo2, hi2);
                *a += usize::from(inside);
                straddle |= between;
            }
            if straddle {
                for (t, (a, (&s, &e))) in acc.iter_mut().zip(row.iter().zip(ebt)).enumerate() {
                    if bound_tests(s, ei + e, lo2, hi2).1 {
                        *a += usize::from(balls.contains(i, eng.exact(i, blk.j0 + c0 + t)));
                    }
                }
            }
        }
        for (st, a) in states[tile].iter_mut().zip(acc) {
            *count(st) += a;
        }
    }
}

// ---------------------------------------------------------------------------
// Public kernels
// ---------------------------------------------------------------------------

/// A device that multiplies float32 row blocks for the distance engine (see
/// the [module documentation](self), "Float32 blocks on another device").
pub trait GramDevice: Send + Sync {
    /// A short name for messages, such as `onnxruntime-cuda:0`.
    fn label(&self) -> String;

    /// `out[i·nj + j] = Σ_k a[i·d + k]·b[j·d + k]` for the `ni = a.len() / d`
    /// rows of `a` and the `nj = b.len() / d` rows of `b` (row-major), with
    /// every product and sum rounded to float32 (any order; fused
    /// multiply–adds allowed; no inputs rounded below float32, so TF32 and
    /// bfloat16 tensor-core modes must be off).
    ///
    /// # Errors
    /// A message when the device cannot multiply the block; the engine then
    /// multiplies it on the CPU.
    fn gram(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f32]) -> Result<(), String>;

    /// Whether the device also forms float64 blocks ([`GramDevice::gram64`]);
    /// `false` (the default) keeps the float64 passes on the CPU.
    fn float64(&self) -> bool {
        false
    }

    /// `out[i·nj + j] = Σ_k a[i·d + k]·b[j·d + k]` with the float32 inputs
    /// widened to float64 (exactly) and every product and sum rounded to
    /// float64 (any order; fused multiply–adds allowed): the products of the
    /// float64 passes, such as KID's kernel tap. Called only when
    /// [`GramDevice::float64`] is `true`.
    ///
    /// # Errors
    /// A message when the device cannot multiply the block (the default: it
    /// has no float64 products); the engine then multiplies it on the CPU.
    fn gram64(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f64]) -> Result<(), String> {
        let _ = (a, b, d, out);
        Err(format!("{} forms no float64 blocks", self.label()))
    }

    /// A copy of a pass's GEMM inputs kept on the device for the pass
    /// (`a`: `na × d` row-major; `b`: the second set, `None` within one
    /// set), so each block sends only its row ranges instead of its rows:
    /// `None` (the default) when the device keeps nothing, or cannot now
    /// (the engine then sends each block's rows, [`GramDevice::gram`]).
    fn resident(&self, a: &[f32], b: Option<&[f32]>, d: usize) -> Option<Box<dyn ResidentGram>> {
        let _ = (a, b, d);
        None
    }
}

/// A pass's sets kept on a [`GramDevice`] ([`GramDevice::resident`]), freed
/// when dropped at the end of the pass.
pub trait ResidentGram: Send + Sync {
    /// [`GramDevice::gram`] of rows `i0..i0 + ni` of the first set and
    /// `j0..j0 + nj` of the second (the first within one set): `out` holds
    /// `ni × nj` values, row-major.
    ///
    /// # Errors
    /// As [`GramDevice::gram`].
    fn gram(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f32],
    ) -> Result<(), String>;

    /// [`GramDevice::gram64`] of the same ranges, called only when the
    /// device's [`GramDevice::float64`] is `true`.
    ///
    /// # Errors
    /// As [`GramDevice::gram64`].
    fn gram64(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f64],
    ) -> Result<(), String>;
}

static GRAM_DEVICE: RwLock<Option<Arc<dyn GramDevice>>> = RwLock::new(None);
static DEVICE_FALLBACKS: AtomicUsize = AtomicUsize::new(0);

/// Registers the device every float32 pass started afterwards multiplies its
/// blocks on (`None`: `faer` on the CPU, the default), and, when it forms
/// float64 blocks ([`GramDevice::float64`]), every pass with kernel sums;
/// process-wide as `faer::set_global_parallelism` is; returns the one it
/// replaces. Distance answers do not depend on the choice; kernel sums may
/// differ in their last bits (module documentation).
pub fn set_gram_device(device: Option<Arc<dyn GramDevice>>) -> Option<Arc<dyn GramDevice>> {
    let mut slot = GRAM_DEVICE.write().unwrap_or_else(PoisonError::into_inner);
    std::mem::replace(&mut *slot, device)
}

/// The device registered by [`set_gram_device`], if any.
pub fn gram_device() -> Option<Arc<dyn GramDevice>> {
    GRAM_DEVICE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// How many blocks the registered device failed (an error, or a non-finite
/// value) and the CPU multiplied instead, since the process started.
pub fn gram_device_fallbacks() -> usize {
    DEVICE_FALLBACKS.load(Ordering::Relaxed)
}

fn check_k(what: &'static str, k: usize, available: usize) -> Result<(), LinalgError> {
    if k == 0 {
        return Err(LinalgError::InvalidParameter(format!(
            "{what}: k must be at least 1"
        )));
    }
    if k > available {
        return Err(LinalgError::InvalidParameter(format!(
            "{what}: k = {k} but only {available} neighbours are available"
        )));
    }
    Ok(())
}

/// Exact squared Euclidean distances between every row of `a` and every row
/// of `b`: `out[i, j] = Σ_k (a_ik − b_jk)²` by the exact rule of
/// [`squared_distance`]. O(N·M·D) scalar work and an N × M result: meant for
/// small sets (kernel matrices of a few thousand rows). When `a` and `b` are
/// the same view, only one triangle is computed and the result is exactly
/// symmetric with a zero diagonal.
///
/// # Errors
/// Empty sets, zero columns, non-finite values, mismatched dimensions.
pub fn squared_distances(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
) -> Result<Array2<f64>, LinalgError> {
    let same = a.as_ptr() == b.as_ptr() && a.dim() == b.dim() && a.strides() == b.strides();
    let sa = Set::new("squared_distances", a, 1)?;
    let sb = Set::new("squared_distances", b, 1)?;
    if sa.d != sb.d {
        return Err(LinalgError::DimensionMismatch {
            what: "squared_distances",
            left: sa.d,
            right: sb.d,
        });
    }
    let mut out = Array2::<f64>::zeros((sa.n, sb.n));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut row)| {
            let start = if same { i + 1 } else { 0 };
            for j in start..sb.n {
                row[j] = exact_sq(sa.row(i), sb.row(j));
            }
        });
    if same {
        for i in 0..sa.n {
            for j in 0..i {
                out[[i, j]] = out[[j, i]];
            }
        }
    }
    Ok(out)
}

/// Distance from each row of `x` to its k-th nearest **other** row:
///
/// ```text
/// r_k(x_i) = k-th smallest of { d(x_i, x_j) : j ≠ i }
/// ```
///
/// Only the row itself is excluded; duplicated rows count as neighbours at
/// distance exactly 0, so a row with k or more copies has radius 0. This is
/// torch's `kthvalue(k + 1)` over a distance row that includes the 0
/// self-distance (NVlabs/stylegan2-ada `compute_pr`), prdc's
/// `compute_nearest_neighbour_distances(X, k)` and kynkaat's
/// `np.partition(D, k)[:, k]`, with exact float64 distances.
///
/// # Errors
/// `k = 0`, `k ≥ N`, empty input, zero columns, non-finite values.
pub fn kth_neighbour_radii(x: ArrayView2<'_, f32>, k: usize) -> Result<Array1<f64>, LinalgError> {
    let mut all = kth_neighbour_radii_multi(x, &[k])?;
    all.pop().ok_or_else(|| LinalgError::Numerical {
        what: "kth_neighbour_radii",
        detail: "no result".into(),
    })
}

/// [`kth_neighbour_radii`] for several `k` at once, from one pass over the
/// distances (the cost is that of the largest k). `out[m][i]` is the
/// `ks[m]`-th neighbour distance of row `i`.
///
/// # Errors
/// As [`kth_neighbour_radii`], for every k; also an empty `ks`.
pub fn kth_neighbour_radii_multi(
    x: ArrayView2<'_, f32>,
    ks: &[usize],
) -> Result<Vec<Array1<f64>>, LinalgError> {
    Ok(kth_squared_multi(x, ks)?
        .into_iter()
        .map(|r| r.mapv(f64::sqrt))
        .collect())
}

/// The **squared** k-th neighbour distance of every row, `r_k(x_i)²`, exactly
/// as the exact rule gives it (no square root taken and squared back). This
/// is what kynkaat's `ManifoldEstimator` stores (it works on squared
/// distances), so percentiles of it match that reference bit for bit.
///
/// # Errors
/// As [`kth_neighbour_radii`].
pub fn kth_neighbour_squared_radii(
    x: ArrayView2<'_, f32>,
    k: usize,
) -> Result<Array1<f64>, LinalgError> {
    let mut all = kth_squared_multi(x, &[k])?;
    all.pop().ok_or_else(|| LinalgError::Numerical {
        what: "kth_neighbour_squared_radii",
        detail: "no result".into(),
    })
}

/// [`kth_neighbour_squared_radii`] for several `k` at once, from one pass over
/// the distances (the cost is that of the largest k): `out[m][i]` is
/// `r_{ks[m]}(x_i)²`. The metric contract's shared work calls this once per
/// set for every k its selected metrics need.
///
/// # Errors
/// As [`kth_neighbour_radii`], for every k; also an empty `ks`.
pub fn kth_neighbour_squared_radii_multi(
    x: ArrayView2<'_, f32>,
    ks: &[usize],
) -> Result<Vec<Array1<f64>>, LinalgError> {
    kth_squared_multi(x, ks)
}

fn kth_squared_multi(
    x: ArrayView2<'_, f32>,
    ks: &[usize],
) -> Result<Vec<Array1<f64>>, LinalgError> {
    const WHAT: &str = "kth_neighbour_radii";
    if ks.is_empty() {
        return Err(LinalgError::InvalidParameter(format!("{WHAT}: no k given")));
    }
    let set = Set::new(WHAT, x, 2)?;
    for &k in ks {
        check_k(WHAT, k, set.n - 1)?;
    }
    radii_of(&Engine::new(set, None)?, ks)
}

/// The squared k-th neighbour radii of the engine's set for every k of `ks`
/// (validated by the caller) from one self pass (none for an empty `ks`).
fn radii_of(eng: &Engine<'_>, ks: &[usize]) -> Result<Vec<Array1<f64>>, LinalgError> {
    const WHAT: &str = "kth_neighbour_radii";
    let Some(&kmax) = ks.iter().max() else {
        let mut none: Vec<()> = vec![(); eng.a.n];
        eng.drive_self(&mut none, |_, _| {}, |_, _, _| {});
        return Ok(Vec::new());
    };
    let sel = eng.select_self(kmax);
    ks.iter()
        .map(|&k| {
            sel.iter()
                .map(|row| {
                    row.get(k - 1)
                        .map(|&(s, _)| s)
                        .ok_or_else(|| LinalgError::Numerical {
                            what: WHAT,
                            detail: "fewer candidates than k (internal invariant broken)".into(),
                        })
                })
                .collect::<Result<Array1<f64>, _>>()
        })
        .collect()
}

/// Squared k-th neighbour radii of `x` for every k of `ks` (as
/// [`kth_neighbour_squared_radii_multi`]; `ks` may be empty) **and** the
/// within-set kernel sums of `x` from the same pass:
///
/// ```text
/// Σ_{i≠j} k(x_i, x_j),   Σ_i k(x_i, x_i),   Kxx_s = Σ_{i≠j ∈ S_s} k(x_i, x_j) per subset
/// ```
///
/// Each distance block comes from a float64 GEMM of the raw rows (the
/// kernel needs `x_iᵀx_j`), which the radii read as `s̃ = ‖x_i‖² + ‖x_j‖² −
/// 2 x_iᵀx_j` with the bound of the module documentation at `u = 2^-53`, and
/// the kernel sums read as `k(x_i, x_j)`: the products exact KID needs are
/// formed once for both. The radii are those of
/// [`kth_neighbour_squared_radii_multi`] (exact rule, bit for bit); the sums
/// are those of [`kernel_sums_with_subsets`] (bit for bit, whatever `ks`).
///
/// # Errors
/// As [`kth_neighbour_squared_radii_multi`] for the radii; bad kernel
/// parameters, subsets with an index out of range or repeated, a non-finite
/// sum.
pub fn kth_neighbour_squared_radii_with_kernel(
    x: ArrayView2<'_, f32>,
    ks: &[usize],
    kernel: Kernel,
    subsets: ArrayView2<'_, usize>,
) -> Result<RadiiAndSums, LinalgError> {
    const WHAT: &str = "kth_neighbour_radii with kernel sums";
    kernel.validate()?;
    let set = Set::new(WHAT, x, if ks.is_empty() { 1 } else { 2 })?;
    for &k in ks {
        check_k(WHAT, k, set.n - 1)?;
    }
    let sorted = sorted_subsets(WHAT, subsets, set.n)?;
    let tap = KernelTap::new(kernel, &sorted, &sorted);
    let mut eng = Engine::with_tap(set, None, tap, !ks.is_empty())?;
    let radii = radii_of(&eng, ks)?;
    let (off, diag, per) = KernelTap::finish(WHAT, eng.tap.take())?;
    Ok(RadiiAndSums {
        radii,
        within: WithinSum {
            off_diagonal: off,
            diagonal: diag,
        },
        subset_within: per,
    })
}

/// The answer of [`kth_neighbour_squared_radii_with_kernel`].
#[derive(Debug, Clone, PartialEq)]
pub struct RadiiAndSums {
    /// Squared k-th neighbour radii, one array per k asked, in order.
    pub radii: Vec<Array1<f64>>,
    /// `Σ_{i≠j} k(x_i, x_j)` and `Σ_i k(x_i, x_i)`.
    pub within: WithinSum,
    /// `Kxx_s = Σ_{i≠j ∈ S_s} k(x_i, x_j)` per subset.
    pub subset_within: Vec<CompensatedSum>,
}

/// The answer of [`cross_pass_with_kernel`].
#[derive(Debug, Clone, PartialEq)]
pub struct CrossAndSums {
    /// The answers of [`cross_pass`], in request order.
    pub answers: Vec<CrossAnswer>,
    /// `Σ_{i,j} k(a_i, b_j)`.
    pub between: CompensatedSum,
    /// `Kab_s = Σ_{i ∈ Sa_s, j ∈ Sb_s} k(a_i, b_j)` per subset pair.
    pub subset_between: Vec<CompensatedSum>,
}

/// The kernel sums of two sets and of subset pairs, as
/// `KernelSums::with_subsets` defines them (`within_x`, `within_y`,
/// `between`, and per subset `Kxx_s`, `Kyy_s`, `Kxy_s`), computed by the
/// distance engine's passes with nothing but the sums asked
/// ([`kth_neighbour_squared_radii_with_kernel`] on each set, then
/// [`cross_pass_with_kernel`]). Because a pass's sums do not depend on the
/// distance questions it also answers, KID computed alone and KID computed in
/// the same passes as precision/recall, prdc and realism are bit-identical.
/// The values equal `KernelSums::with_subsets` up to rounding (equal blocks
/// of at least 512 rows here, or of at most 1024 on a registered float64
/// device, so another summation order).
///
/// # Errors
/// As `KernelSums::with_subsets`.
pub fn kernel_sums_with_subsets(
    x: ArrayView2<'_, f32>,
    y: ArrayView2<'_, f32>,
    kernel: Kernel,
    subsets_x: ArrayView2<'_, usize>,
    subsets_y: ArrayView2<'_, usize>,
) -> Result<SubsetKernelSums, LinalgError> {
    Ok(SubsetKernelSums::from_passes(
        kth_neighbour_squared_radii_with_kernel(x, &[], kernel, subsets_x)?,
        kth_neighbour_squared_radii_with_kernel(y, &[], kernel, subsets_y)?,
        cross_pass_with_kernel(x, y, &[], kernel, subsets_x, subsets_y)?,
    ))
}

impl SubsetKernelSums {
    /// The sums of the three passes over `x` with itself, `y` with itself and
    /// `x` with `y` (their radii and cross answers are dropped): what
    /// [`kernel_sums_with_subsets`] returns, for callers that ran the passes
    /// themselves with distance questions of their own.
    pub fn from_passes(x: RadiiAndSums, y: RadiiAndSums, xy: CrossAndSums) -> Self {
        SubsetKernelSums {
            within_x: x.within,
            within_y: y.within,
            between: xy.between,
            subset_within_x: x.subset_within,
            subset_within_y: y.subset_within,
            subset_between: xy.subset_between,
        }
    }
}

/// Packs per-row selections of exactly `k` entries into index/distance arrays.
fn pack(
    sel: &[Vec<(f64, usize)>],
    k: usize,
    what: &'static str,
) -> Result<(Array2<usize>, Array2<f64>), LinalgError> {
    let n = sel.len();
    let mut idx = Array2::<usize>::zeros((n, k));
    let mut dist = Array2::<f64>::zeros((n, k));
    for (i, row) in sel.iter().enumerate() {
        if row.len() != k {
            return Err(LinalgError::Numerical {
                what,
                detail: "fewer candidates than k (internal invariant broken)".into(),
            });
        }
        for (m, &(s, j)) in row.iter().enumerate() {
            idx[[i, m]] = j;
            dist[[i, m]] = s.sqrt();
        }
    }
    Ok((idx, dist))
}

/// The k nearest **other** rows of every row of `x` (self excluded,
/// duplicates included at distance 0): indices and exact distances, ascending,
/// ties broken by the smaller index.
///
/// # Errors
/// As [`kth_neighbour_radii`].
pub fn self_nearest_neighbours(
    x: ArrayView2<'_, f32>,
    k: usize,
) -> Result<(Array2<usize>, Array2<f64>), LinalgError> {
    const WHAT: &str = "self_nearest_neighbours";
    let set = Set::new(WHAT, x, 2)?;
    check_k(WHAT, k, set.n - 1)?;
    let eng = Engine::new(set, None)?;
    pack(&eng.select_self(k), k, WHAT)
}

/// The k nearest rows of `reference` for every row of `query`: indices and
/// exact distances `d(q_i, r_j)`, ascending, ties broken by the smaller index.
///
/// # Errors
/// `k = 0`, `k > N_reference`, empty sets, zero columns, non-finite values,
/// mismatched dimensions.
pub fn nearest_neighbours(
    query: ArrayView2<'_, f32>,
    reference: ArrayView2<'_, f32>,
    k: usize,
) -> Result<(Array2<usize>, Array2<f64>), LinalgError> {
    const WHAT: &str = "nearest_neighbours";
    let q = Set::new(WHAT, query, 1)?;
    let r = Set::new(WHAT, reference, 1)?;
    check_k(WHAT, k, r.n)?;
    let eng = Engine::new(q, Some(r))?;
    pack(&eng.select_rows(k, &SqKey), k, WHAT)
}

/// For every probe row, the number of balls `B(c_j, r_j)` around the rows of
/// `centres` that contain it:
///
/// ```text
/// count_i = #{ j : d(p_i, c_j) ≤ r_j }   (Boundary::Closed)
/// count_i = #{ j : d(p_i, c_j) < r_j }   (Boundary::Open)
/// ```
///
/// with exact float64 distances. `count_i > 0` is k-NN precision/recall
/// membership (Kynkäänniemi et al. 2019); `Σ count_i / k` is prdc's density
/// numerator (Naeem et al. 2020).
///
/// # Errors
/// Empty sets, non-finite values, mismatched dimensions, `radii.len() ≠ N_centres`,
/// negative or NaN radii (`+inf` is allowed).
pub fn count_within_radii(
    probe: ArrayView2<'_, f32>,
    centres: ArrayView2<'_, f32>,
    radii: ArrayView1<'_, f64>,
    boundary: Boundary,
) -> Result<Array1<usize>, LinalgError> {
    const WHAT: &str = "count_within_radii";
    let p = Set::new(WHAT, probe, 1)?;
    let c = Set::new(WHAT, centres, 1)?;
    let balls = Balls::new(WHAT, radii, c.n, boundary)?;
    let eng = Engine::new(p, Some(c))?;
    Ok(Array1::from(eng.count_rows(&balls)))
}

/// For every probe row, the ball of smallest radius among the balls
/// `B(c_j, r_j)` containing it: `Some((j, r_j))` with
/// `r_j = min{ r_l : d(p_i, c_l) ≤ r_l }` (or `<` for [`Boundary::Open`]),
/// ties broken by the smaller index; `None` when no ball contains it. This is
/// the rarity score of Han et al. 2022 when the radii are the real k-NN radii.
///
/// # Errors
/// As [`count_within_radii`].
pub fn smallest_containing_radius(
    probe: ArrayView2<'_, f32>,
    centres: ArrayView2<'_, f32>,
    radii: ArrayView1<'_, f64>,
    boundary: Boundary,
) -> Result<Vec<Option<(usize, f64)>>, LinalgError> {
    const WHAT: &str = "smallest_containing_radius";
    let p = Set::new(WHAT, probe, 1)?;
    let c = Set::new(WHAT, centres, 1)?;
    let balls = Balls::new(WHAT, radii, c.n, boundary)?;
    let eng = Engine::new(p, Some(c))?;
    let sel = eng.select_rows(1, &RadiusKey(&balls));
    Ok(sel
        .iter()
        .map(|row| row.first().map(|&(r, j)| (j, r)))
        .collect())
}

/// For every probe row, the largest weighted inverse distance to a centre:
///
/// ```text
/// score_i = max( 0, max_{j : w_j > 0}  w_j / (d(p_i, c_j)^p + eps) ),   p ∈ {1, 2}
/// ```
///
/// Centres with weight 0 contribute 0. With `w_j = r_j²` (squared k-NN radii,
/// those above the median set to 0), `p = 2`, `eps = 1e-5` this is kynkaat's
/// realism score; with `w_j = r_j` (radii below the median), `p = 1`,
/// `eps = 0` it is dgm-eval's variant. The maximising distance is recomputed
/// exactly, so the score is that of exact float64 distances.
///
/// With `eps = 0` a probe that coincides with a positive-weight centre scores
/// `+inf`; that is the only way a non-finite value comes out, and callers
/// must turn it into their own report.
///
/// # Errors
/// As [`count_within_radii`] (with `weights` in place of radii); `eps`
/// negative or not finite.
pub fn max_weight_over_distance(
    probe: ArrayView2<'_, f32>,
    centres: ArrayView2<'_, f32>,
    weights: ArrayView1<'_, f64>,
    power: DistancePower,
    eps: f64,
) -> Result<Array1<f64>, LinalgError> {
    const WHAT: &str = "max_weight_over_distance";
    if !(eps.is_finite() && eps >= 0.0) {
        return Err(LinalgError::InvalidParameter(format!(
            "{WHAT}: eps must be finite and >= 0, got {eps}"
        )));
    }
    let p = Set::new(WHAT, probe, 1)?;
    let c = Set::new(WHAT, centres, 1)?;
    if weights.len() != c.n {
        return Err(LinalgError::DimensionMismatch {
            what: WHAT,
            left: c.n,
            right: weights.len(),
        });
    }
    if let Some((j, w)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(LinalgError::InvalidParameter(format!(
            "{WHAT}: weight {j} is {w}; weights must be finite and >= 0"
        )));
    }
    let w: Vec<f64> = weights.to_vec();
    let eng = Engine::new(p, Some(c))?;
    let sel = eng.select_rows(1, &RatioKey { w: &w, power, eps });
    Ok(sel
        .iter()
        .map(|row| row.first().map_or(0.0, |&(key, _)| (-key).max(0.0)))
        .collect())
}

/// What [`cross_ball_statistics`] returns: both directions of ball membership
/// and both nearest-neighbour distances between two sets, from one pass.
#[derive(Debug, Clone, PartialEq)]
pub struct CrossBallStats {
    /// For each row of `a`: the number of balls `B(b_j, radii_b[j])` containing it.
    pub a_in_b_balls: Array1<usize>,
    /// For each row of `b`: the number of balls `B(a_i, radii_a[i])` containing it.
    pub b_in_a_balls: Array1<usize>,
    /// For each row of `a`: the exact distance to its nearest row of `b`.
    pub a_nearest_b: Array1<f64>,
    /// For each row of `b`: the exact distance to its nearest row of `a`.
    pub b_nearest_a: Array1<f64>,
}

/// Ball membership in both directions and nearest-neighbour distances in both
/// directions between `a` and `b`, from a single blocked pass over the
/// `N_a × N_b` distances (the cost of one GEMM instead of four):
///
/// ```text
/// a_in_b_balls[i] = #{ j : d(a_i, b_j) ⋚ radii_b[j] }
/// b_in_a_balls[j] = #{ i : d(a_i, b_j) ⋚ radii_a[i] }
/// a_nearest_b[i]  = min_j d(a_i, b_j),   b_nearest_a[j] = min_i d(a_i, b_j)
/// ```
///
/// (`⋚` is `≤` or `<` by `boundary`), all with exact float64 distances. With
/// `a` = real, `b` = fake and k-NN radii this is everything precision, recall,
/// density and coverage need (Kynkäänniemi et al. 2019; Naeem et al. 2020).
///
/// # Errors
/// As [`count_within_radii`] for both sets.
pub fn cross_ball_statistics(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    radii_a: ArrayView1<'_, f64>,
    radii_b: ArrayView1<'_, f64>,
    boundary: Boundary,
) -> Result<CrossBallStats, LinalgError> {
    let req = [CrossRequest::Balls {
        radii_a,
        radii_b,
        boundary,
    }];
    match cross_pass(a, b, &req)?.pop() {
        Some(CrossAnswer::Balls(st)) => Ok(st),
        _ => Err(LinalgError::Numerical {
            what: "cross_ball_statistics",
            detail: "no answer (internal invariant broken)".into(),
        }),
    }
}

/// numpy's `np.percentile(v, q)` with the default linear method, on a sorted
/// non-empty slice: virtual index `q/100·(n−1)`, then numpy's `_lerp` (which
/// computes `b − (b − a)(1 − t)` when `t ≥ 0.5`, `a + (b − a)t` otherwise).
/// An empty slice gives NaN.
pub fn percentile_linear(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let virt = q / 100.0 * (n - 1) as f64;
    let lo = (virt.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let t = virt - lo as f64;
    let (a, b) = (sorted[lo], sorted[hi]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

/// `v` with every value above its `q`-th percentile ([`percentile_linear`])
/// set to 0: kynkaat's realism score keeps only the k-NN balls up to the
/// median radius (`clamp_to_percentile=50`, Kynkäänniemi et al. 2019).
pub fn zero_above_percentile(v: ArrayView1<'_, f64>, q: f64) -> Array1<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let m = percentile_linear(&s, q);
    v.mapv(|x| if x > m { 0.0 } else { x })
}

/// One question [`cross_pass`] answers about the distances between the rows
/// of `a` and the rows of `b`.
#[derive(Debug, Clone, Copy)]
pub enum CrossRequest<'r> {
    /// Ball membership both ways and nearest distances both ways, as
    /// [`cross_ball_statistics`] with these radii.
    Balls {
        /// Radius of the ball around each row of `a`.
        radii_a: ArrayView1<'r, f64>,
        /// Radius of the ball around each row of `b`.
        radii_b: ArrayView1<'r, f64>,
        /// `d ≤ r` or `d < r`.
        boundary: Boundary,
    },
    /// For each row of `b`: `max_i w_i / (d(a_i, b_j)^p + eps)`, as
    /// [`max_weight_over_distance`] with `probe = b`, `centres = a`.
    MaxWeightOverDistance {
        /// `w_i ≥ 0` for each row of `a` (zero weights are ignored).
        weights_a: ArrayView1<'r, f64>,
        /// `p`: distance or squared distance.
        power: DistancePower,
        /// `eps ≥ 0`.
        eps: f64,
    },
}

/// The answer to one [`CrossRequest`], in request order.
#[derive(Debug, Clone, PartialEq)]
pub enum CrossAnswer {
    /// For [`CrossRequest::Balls`].
    Balls(CrossBallStats),
    /// For [`CrossRequest::MaxWeightOverDistance`]: one score per row of `b`.
    MaxWeight(Array1<f64>),
}

/// State of one row of `a` in [`cross_pass`]: a ball count per `Balls`
/// request and the nearest row of `b`.
struct RowA {
    counts: Vec<usize>,
    near: Sel,
}

/// State of one row of `b` in [`cross_pass`]: a ball count per `Balls`
/// request, a best score per `MaxWeightOverDistance` request, the nearest row
/// of `a`.
struct RowB {
    counts: Vec<usize>,
    best: Vec<Sel>,
    near: Sel,
}

/// Every request about the `N_a × N_b` distances between `a` and `b` from
/// **one** blocked pass: each distance block (a blocked `f32` GEMM, see the
/// [module documentation](self)) is computed once and feeds every request —
/// the ball counts of several radius sets (precision/recall with k = 3,
/// prdc with k = 5, Kynkäänniemi et al. 2019; Naeem et al. 2020), the
/// nearest distances both ways, and max-weight-over-distance scores (the
/// realism score). Every answer is that of exact float64 distances, exactly
/// as the single-request kernels give it (same bounds, same exact rechecks
/// near a decision), so a request answered alone or together is identical.
///
/// Memory: the engine's blocks (under 1024 × 1024 per thread, see the
/// module documentation) plus O(requests) counters per row.
///
/// # Errors
/// As [`cross_ball_statistics`] and [`max_weight_over_distance`] for each
/// request.
pub fn cross_pass(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    requests: &[CrossRequest<'_>],
) -> Result<Vec<CrossAnswer>, LinalgError> {
    let (answers, _) = cross_pass_impl(a, b, requests, None)?;
    Ok(answers)
}

/// [`cross_pass`] **and** the between-set kernel sums of `a` and `b` from the
/// same pass (`requests` may be empty):
///
/// ```text
/// Σ_{i,j} k(a_i, b_j),   Kab_s = Σ_{i ∈ Sa_s, j ∈ Sb_s} k(a_i, b_j) per subset pair
/// ```
///
/// Each block's products come from a float64 GEMM of the raw rows and feed
/// both (see [`kth_neighbour_squared_radii_with_kernel`]): the answers are
/// those of [`cross_pass`] bit for bit, the sums those of
/// [`kernel_sums_with_subsets`].
///
/// # Errors
/// As [`cross_pass`]; bad kernel parameters; subsets out of range, repeated
/// within a subset, or `subsets_a` and `subsets_b` with different numbers of
/// rows; a non-finite sum.
pub fn cross_pass_with_kernel(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    requests: &[CrossRequest<'_>],
    kernel: Kernel,
    subsets_a: ArrayView2<'_, usize>,
    subsets_b: ArrayView2<'_, usize>,
) -> Result<CrossAndSums, LinalgError> {
    const WHAT: &str = "cross_pass with kernel sums";
    kernel.validate()?;
    let (ra, rb) = sorted_subset_pairs(WHAT, (subsets_a, a.nrows()), (subsets_b, b.nrows()))?;
    let tap = KernelTap::new(kernel, &ra, &rb);
    let (answers, tap) = cross_pass_impl(a, b, requests, Some(tap))?;
    let (total, _, per) = KernelTap::finish(WHAT, tap)?;
    Ok(CrossAndSums {
        answers,
        between: total,
        subset_between: per,
    })
}

/// The pass of [`cross_pass`], with an optional kernel tap handed back
/// filled.
fn cross_pass_impl<'a>(
    a: ArrayView2<'a, f32>,
    b: ArrayView2<'a, f32>,
    requests: &[CrossRequest<'_>],
    tap: Option<KernelTap<'a>>,
) -> Result<(Vec<CrossAnswer>, Option<KernelTap<'a>>), LinalgError> {
    const WHAT: &str = "cross_pass";
    let sa = Set::new(WHAT, a, 1)?;
    let sb = Set::new(WHAT, b, 1)?;
    // Validated per request: balls for Balls, weights for MaxWeight.
    #[allow(clippy::large_enum_variant)]
    enum Prep {
        Balls(Balls, Balls),
        Weight(Vec<f64>, DistancePower, f64),
    }
    let mut prep = Vec::with_capacity(requests.len());
    for r in requests {
        prep.push(match *r {
            CrossRequest::Balls {
                radii_a,
                radii_b,
                boundary,
            } => Prep::Balls(
                Balls::new(WHAT, radii_a, sa.n, boundary)?,
                Balls::new(WHAT, radii_b, sb.n, boundary)?,
            ),
            CrossRequest::MaxWeightOverDistance {
                weights_a,
                power,
                eps,
            } => {
                if !(eps.is_finite() && eps >= 0.0) {
                    return Err(LinalgError::InvalidParameter(format!(
                        "{WHAT}: eps must be finite and >= 0, got {eps}"
                    )));
                }
                if weights_a.len() != sa.n {
                    return Err(LinalgError::DimensionMismatch {
                        what: WHAT,
                        left: sa.n,
                        right: weights_a.len(),
                    });
                }
                if let Some((j, w)) = weights_a
                    .iter()
                    .enumerate()
                    .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
                {
                    return Err(LinalgError::InvalidParameter(format!(
                        "{WHAT}: weight {j} is {w}; weights must be finite and >= 0"
                    )));
                }
                Prep::Weight(weights_a.to_vec(), power, eps)
            }
        });
    }
    let keys: Vec<Option<RatioKey<'_>>> = prep
        .iter()
        .map(|p| match p {
            Prep::Weight(w, power, eps) => Some(RatioKey {
                w,
                power: *power,
                eps: *eps,
            }),
            Prep::Balls(..) => None,
        })
        .collect();
    let mut eng = match tap {
        Some(tap) => Engine::with_tap(sa, Some(sb), tap, !requests.is_empty())?,
        None => Engine::new(sa, Some(sb))?,
    };
    let (na, nb) = (eng.a.n, eng.b().n);
    let n_balls = prep.iter().filter(|p| matches!(p, Prep::Balls(..))).count();
    let n_best = prep.len() - n_balls;
    let mut st_a: Vec<RowA> = (0..na)
        .map(|_| RowA {
            counts: vec![0; n_balls],
            near: Sel::new(1),
        })
        .collect();
    let mut st_b: Vec<RowB> = (0..nb)
        .map(|_| RowB {
            counts: vec![0; n_balls],
            best: (0..n_best).map(|_| Sel::new(1)).collect(),
            near: Sel::new(1),
        })
        .collect();
    let (ea, eb) = (eng.ea(), eng.eb());
    eng.drive_both(&mut st_a, &mut st_b, |blk, sa, sb| {
        let (mut c, mut w) = (0, 0);
        for (p, key) in prep.iter().zip(&keys) {
            match (p, key) {
                (Prep::Balls(balls_a, balls_b), _) => {
                    for (ii, s) in sa.iter_mut().enumerate() {
                        s.counts[c] += count_row(&eng, blk, ii, ea[blk.i0 + ii], eb, balls_b);
                    }
                    count_cols(&eng, blk, ea, eb, balls_a, sb, |s| &mut s.counts[c]);
                    c += 1;
                }
                (Prep::Weight(..), Some(key)) => {
                    scan_cols_select(&eng, blk, sb, |s| &mut s.best[w], 1, key);
                    w += 1;
                }
                (Prep::Weight(..), None) => w += 1,
            }
        }
        if n_balls > 0 {
            for (ii, s) in sa.iter_mut().enumerate() {
                scan_row_select(&eng, blk, ii, &mut s.near, 1, &SqKey, None);
            }
            scan_cols_select(&eng, blk, sb, |s| &mut s.near, 1, &SqKey);
        }
    });
    let near = |sel: Sel, f: &dyn Fn(usize) -> f64| -> Result<f64, LinalgError> {
        sel.finish(1, f)
            .first()
            .map(|&(s, _)| s.sqrt())
            .ok_or_else(|| LinalgError::Numerical {
                what: WHAT,
                detail: "no nearest neighbour (internal invariant broken)".into(),
            })
    };
    let mut counts_a: Vec<Vec<usize>> = vec![Vec::with_capacity(na); n_balls];
    let mut sel_a = Vec::with_capacity(na);
    for r in st_a {
        for (q, v) in r.counts.into_iter().enumerate() {
            counts_a[q].push(v);
        }
        sel_a.push(r.near);
    }
    let mut counts_b: Vec<Vec<usize>> = vec![Vec::with_capacity(nb); n_balls];
    let mut best_b: Vec<Vec<Sel>> = (0..n_best).map(|_| Vec::with_capacity(nb)).collect();
    let mut sel_b = Vec::with_capacity(nb);
    for r in st_b {
        for (q, v) in r.counts.into_iter().enumerate() {
            counts_b[q].push(v);
        }
        for (q, v) in r.best.into_iter().enumerate() {
            best_b[q].push(v);
        }
        sel_b.push(r.near);
    }
    let (a_nearest_b, b_nearest_a) = if n_balls > 0 {
        let anb = sel_a
            .into_par_iter()
            .enumerate()
            .map(|(i, s)| near(s, &|j| eng.exact(i, j)))
            .collect::<Result<Vec<f64>, _>>()?;
        let bna = sel_b
            .into_par_iter()
            .enumerate()
            .map(|(j, s)| near(s, &|i| eng.exact(i, j)))
            .collect::<Result<Vec<f64>, _>>()?;
        (Array1::from(anb), Array1::from(bna))
    } else {
        (Array1::zeros(0), Array1::zeros(0))
    };
    let mut counts_a = counts_a.into_iter();
    let mut counts_b = counts_b.into_iter();
    let mut best_b = best_b.into_iter();
    let mut out = Vec::with_capacity(prep.len());
    for key in &keys {
        match key {
            None => out.push(CrossAnswer::Balls(CrossBallStats {
                a_in_b_balls: Array1::from(counts_a.next().unwrap_or_default()),
                b_in_a_balls: Array1::from(counts_b.next().unwrap_or_default()),
                a_nearest_b: a_nearest_b.clone(),
                b_nearest_a: b_nearest_a.clone(),
            })),
            Some(key) => {
                let scores: Vec<f64> = best_b
                    .next()
                    .unwrap_or_default()
                    .into_par_iter()
                    .enumerate()
                    .map(|(j, sel)| {
                        sel.finish(1, &|i| key.key(i, eng.exact(i, j)))
                            .first()
                            .map_or(0.0, |&(k, _)| (-k).max(0.0))
                    })
                    .collect();
                out.push(CrossAnswer::MaxWeight(Array1::from(scores)));
            }
        }
    }
    let tap = eng.tap.take();
    Ok((out, tap))
}

/// One block of the distance matrix handed to [`for_each_distance_block`]:
/// rows `row0()..row0()+nrows()` of `a` against rows `col0()..col0()+ncols()`
/// of `b`.
///
/// [`approx_squared`](Self::approx_squared) gives the GEMM-based squared
/// distances (clamped at 0). They are within
/// [`squared_bounds`](Self::squared_bounds) of the exact rule; when a
/// decision depends on a value inside those bounds, ask
/// [`exact_squared`](Self::exact_squared), which recomputes the pair from the
/// raw rows.
pub struct DistanceBlock<'e> {
    row0: usize,
    col0: usize,
    approx: ArrayView2<'e, f64>,
    ea: &'e [f64],
    eb: &'e [f64],
    eng: &'e Engine<'e>,
}

impl DistanceBlock<'_> {
    /// Index in `a` of the block's first row.
    pub fn row0(&self) -> usize {
        self.row0
    }

    /// Index in `b` of the block's first column.
    pub fn col0(&self) -> usize {
        self.col0
    }

    /// Rows in the block.
    pub fn nrows(&self) -> usize {
        self.approx.nrows()
    }

    /// Columns in the block.
    pub fn ncols(&self) -> usize {
        self.approx.ncols()
    }

    /// `max(0, ‖a_i‖² + ‖b_j‖² − 2·fl32(a_i·b_j))` for the block (local indices).
    pub fn approx_squared(&self) -> ArrayView2<'_, f64> {
        self.approx.view()
    }

    /// Bounds `(lo, hi)` with `lo ≤ s_exact ≤ hi` for the local pair `(ii, jj)`.
    pub fn squared_bounds(&self, ii: usize, jj: usize) -> (f64, f64) {
        let s = self.approx[[ii, jj]];
        let e = self.ea[self.row0 + ii] + self.eb[self.col0 + jj];
        ((s - e).max(0.0), s + e)
    }

    /// The exact squared distance of the local pair `(ii, jj)` (see [`squared_distance`]).
    pub fn exact_squared(&self, ii: usize, jj: usize) -> f64 {
        self.eng.exact(self.row0 + ii, self.col0 + jj)
    }
}

/// Visits the `N_a × N_b` squared-distance matrix of `a` and `b` in blocks of
/// at most `block_rows × block_rows` (`0`: the default, 512), in row-major
/// block order, calling `f` with each [`DistanceBlock`]. Memory is O(block²);
/// the GEMM of each block runs on all threads, `f` runs on the caller's
/// thread. For custom reductions (counts within radii, histograms); the
/// ready-made kernels of this module run the reductions in parallel and are
/// faster for what they cover.
///
/// # Errors
/// Empty sets, zero columns, non-finite values, mismatched dimensions.
pub fn for_each_distance_block<F>(
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    block_rows: usize,
    mut f: F,
) -> Result<(), LinalgError>
where
    F: FnMut(&DistanceBlock<'_>),
{
    const WHAT: &str = "for_each_distance_block";
    let bs = if block_rows == 0 {
        MAX_BLOCK
    } else {
        block_rows
    };
    let eng = Engine::new(Set::new(WHAT, a, 1)?, Some(Set::new(WHAT, b, 1)?))?;
    let (na, nb) = (eng.a.n, eng.b().n);
    let mut scr = Scratch::default();
    let mut i0 = 0;
    while i0 < na {
        let ni = bs.min(na - i0);
        let mut j0 = 0;
        while j0 < nb {
            let nj = bs.min(nb - j0);
            eng.block(i0, ni, j0, nj, &mut scr, Par::rayon(0));
            for v in scr.s.iter_mut() {
                *v = v.max(0.0);
            }
            let approx = ArrayView2::from_shape((ni, nj), &scr.s[..ni * nj]).map_err(|e| {
                LinalgError::Numerical {
                    what: WHAT,
                    detail: e.to_string(),
                }
            })?;
            let blk = DistanceBlock {
                row0: i0,
                col0: j0,
                approx,
                ea: eng.ea(),
                eb: eng.eb(),
                eng: &eng,
            };
            f(&blk);
            j0 += nj;
        }
        i0 += ni;
    }
    Ok(())
}

/// For every row `q_i` of `query`, the largest absolute cosine similarity to a
/// row of `reference`:
///
/// ```text
/// m_i = max_j | q_i·r_j | / (‖q_i‖ ‖r_j‖)
/// ```
///
/// Rows are normalised in float64 and the products are a blocked float64
/// GEMM (error ≤ `γ_D(2^-53)`, about `2e-13` for `D = 2048`). `1 − m_i` is the
/// memorization distance of MiFID (Bai et al. 2021).
///
/// # Errors
/// Empty sets, non-finite values, mismatched dimensions, and rows of zero
/// norm (their cosine is undefined; filter them first).
pub fn max_abs_cosine_similarity(
    query: ArrayView2<'_, f32>,
    reference: ArrayView2<'_, f32>,
) -> Result<Array1<f64>, LinalgError> {
    const WHAT: &str = "max_abs_cosine_similarity";
    let q = Set::new(WHAT, query, 1)?;
    let r = Set::new(WHAT, reference, 1)?;
    if q.d != r.d {
        return Err(LinalgError::DimensionMismatch {
            what: WHAT,
            left: q.d,
            right: r.d,
        });
    }
    let d = q.d;
    let normalise = |s: &Set<'_>| -> Result<Vec<f64>, LinalgError> {
        if let Some(i) = s.sq.iter().position(|&v| v == 0.0) {
            return Err(LinalgError::InvalidParameter(format!(
                "{WHAT}: row {i} has zero norm"
            )));
        }
        Ok(s.x
            .par_chunks(d)
            .zip(s.sq.par_iter())
            .flat_map_iter(|(row, &sq)| {
                let norm = sq.sqrt();
                row.iter().map(move |&v| f64::from(v) / norm)
            })
            .collect())
    };
    let (qn, rn) = (normalise(&q)?, normalise(&r)?);
    let rb = block_for(q.n);
    let par = if q.n.div_ceil(rb) >= rayon::current_num_threads() {
        Par::Seq
    } else {
        Par::rayon(0)
    };
    let mut out = vec![0.0f64; q.n];
    out.par_chunks_mut(rb)
        .enumerate()
        .for_each_init(Vec::<f64>::new, |buf, (bi, o)| {
            let (i0, ni) = (bi * rb, o.len());
            let mut j0 = 0;
            while j0 < r.n {
                let nj = MAX_BLOCK.min(r.n - j0);
                buf.resize(ni * nj, 0.0);
                let lhs = MatRef::from_row_major_slice(&qn[i0 * d..(i0 + ni) * d], ni, d);
                let rhs =
                    MatRef::from_row_major_slice(&rn[j0 * d..(j0 + nj) * d], nj, d).transpose();
                matmul(
                    MatMut::from_row_major_slice_mut(&mut buf[..ni * nj], ni, nj),
                    Accum::Replace,
                    lhs,
                    rhs,
                    1.0,
                    par,
                );
                for (ii, m) in o.iter_mut().enumerate() {
                    for &g in &buf[ii * nj..(ii + 1) * nj] {
                        *m = m.max(g.abs());
                    }
                }
                j0 += nj;
            }
        });
    Ok(out.into_iter().map(|m| m.min(1.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_lists_cover_every_pair_once_in_runs() {
        for ma in 0..9 {
            for mb in 0..9 {
                let pairs = cross_pairs(ma, mb);
                let set: std::collections::HashSet<_> = pairs.iter().copied().collect();
                assert_eq!((pairs.len(), set.len()), (ma * mb, ma * mb), "{ma} x {mb}");
                assert!(pairs.iter().all(|&(i, j)| i < ma && j < mb));
                // Runs of max(ma, mb) pairs share the block of the shorter side.
                let run = ma.max(mb);
                for chunk in pairs.chunks(run.max(1)) {
                    let key = |&(i, j): &(usize, usize)| if ma <= mb { i } else { j };
                    assert!(chunk.iter().all(|p| key(p) == key(&chunk[0])));
                }
            }
            let pairs = self_pairs(ma);
            let set: std::collections::HashSet<_> = pairs.iter().copied().collect();
            assert_eq!(pairs.len(), ma * (ma + 1) / 2);
            assert_eq!(set.len(), pairs.len());
            assert!(pairs.iter().all(|&(i, j)| i <= j && j < ma));
            assert!(pairs.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }

    #[test]
    fn blocks_are_at_least_the_edge_and_equal() {
        assert_eq!(blocks_of_at_least(10_000, 512, 1024), 527);
        assert_eq!(blocks_of_at_least(50_000, 512, 1024), 516);
        assert_eq!(blocks_of_at_least(512, 512, 1024), 512);
        assert_eq!(blocks_of_at_least(1023, 512, 1024), 1023);
        assert_eq!(blocks_of_at_least(1024, 512, 1024), 512);
        assert_eq!(blocks_of_at_least(7, 512, 1024), 7);
        assert_eq!(blocks_of_at_least(0, 512, 1024), 512);
        assert_eq!(blocks_of_at_least(1000, 16, 16), 16);
        for n in 1..3000 {
            for (e, cap) in [(1, 1), (16, 16), (16, 40), (100, 200), (512, 1024)] {
                let b = blocks_of_at_least(n, e, cap);
                assert!(b <= cap.max(e), "n {n} e {e}: edge {b} over the cap");
                assert!(b >= e.min(n), "n {n} e {e}: edge {b} under e");
                let blocks = n.div_ceil(b);
                if b < cap {
                    assert!(b < 2 * e, "n {n} e {e}: edge {b} not under 2e");
                    assert!(
                        blocks <= n / e.min(n),
                        "n {n} e {e}: more than ⌊n/e⌋ blocks"
                    );
                    let last = n - (blocks - 1) * b;
                    assert!(b - last < blocks, "n {n} e {e}: last block {last} of {b}");
                }
            }
        }
    }

    #[test]
    fn balanced_blocks_are_equal_and_no_longer_than_asked() {
        assert_eq!(balanced(10_000, 512), 500);
        assert_eq!(balanced(2600, 2048), 1300);
        assert_eq!(balanced(0, 512), 512);
        for n in 1..3000 {
            for e in [1, 16, 100, 512] {
                let b = balanced(n, e);
                let blocks = n.div_ceil(b);
                assert!(b <= e, "n {n} e {e}: edge {b}");
                assert_eq!(blocks, n.div_ceil(e), "n {n} e {e}: as many blocks");
                let last = n - (blocks - 1) * b;
                assert!(b - last < blocks, "n {n} e {e}: last block {last} of {b}");
            }
        }
    }

    #[test]
    fn exact_rule_is_symmetric() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos() * 1e3).collect();
        assert_eq!(exact_sq(&a, &b).to_bits(), exact_sq(&b, &a).to_bits());
        assert_eq!(exact_sq(&a, &a), 0.0);
    }
}
