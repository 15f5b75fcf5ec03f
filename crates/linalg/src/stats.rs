//! Streaming, mergeable Gaussian statistics: the mean and covariance of a set
//! of feature vectors, accumulated batch by batch in float64.
//!
//! # Algorithm
//!
//! For a batch `B` of `b` rows the accumulator forms the batch mean
//! `m_B = (1/b) Σ x_i` and the batch co-moment `M_B = X_cᵀ X_c` of the centred
//! rows `X_c = X − 1 m_Bᵀ` (one `faer` GEMM, lower triangle only, parallel).
//! It then combines them with the running state `(n_A, m_A, M_A)` by the
//! pairwise update of Chan, Golub & LeVeque (1979, "Updating formulae and a
//! pairwise algorithm for computing sample variances"):
//!
//! ```text
//! n  = n_A + n_B,      δ = m_B − m_A
//! m  = m_A + δ · n_B / n
//! M  = M_A + M_B + δ δᵀ · n_A n_B / n
//! ```
//!
//! The same formula merges two accumulators ([`GaussianAccumulator::merge`]),
//! so sharded or streamed statistics equal the one-shot ones up to float64
//! round-off. The covariance is `Σ = M / (n − ddof)`; `ddof = 1` (the unbiased
//! estimate, `np.cov`'s default, used by pytorch-fid, clean-fid and
//! torch-fidelity) is the default, `ddof = 0` (maximum likelihood) is
//! available.
//!
//! A batch is read twice: once for its mean (which also reveals NaN/Inf),
//! once to widen and centre it chunk by chunk; every chunk's Gram matrix goes
//! straight into `M`, so the `δδᵀ` term is applied once per batch. Memory is
//! `O(D²)` for the state plus one bounded chunk of rows (`O(chunk · D)`, about
//! 8 MiB of float64, so it stays in cache), independent of `N`. The chunk is
//! written column-major, the layout faer's GEMM multiplies at full rate for
//! `X_cᵀ X_c` (`add_gram_lower` says why).
//!
//! # What this module does not do
//!
//! It does not decide how the two sets of an evaluation are scheduled: the
//! side-by-side formation of two covariances lives with the Fréchet distance
//! (`FrechetSide::from_features_pair`), which calls in here with sequential
//! products.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatMut, MatRef, Par};
use ndarray::{Array1, Array2, ArrayView2};
use rayon::prelude::*;

use crate::LinalgError;

/// The relative tolerance of [`check_positive_semidefinite`] for a `D × D`
/// covariance: `D · 2⁻²³` (`D · f32::EPSILON`; 2.4e-4 for `D = 2048`).
///
/// Why this much: covariance files are often stored in float32, which rounds
/// each entry by at most `u = 2⁻²⁴` relative, a perturbation `E` with
/// `‖E‖₂ ≤ ‖E‖_F ≤ u ‖Σ‖_F ≤ u √D λ_max`; by Weyl's inequality no eigenvalue
/// moves by more than that, so a PSD matrix rounded to float32 has
/// `λ_min ≥ −u √D λ_max`, a factor `2√D` inside the tolerance. The float64
/// rounding of the covariance itself and of the eigensolver (`O(D ε₆₄
/// λ_max)`) is smaller still. A matrix that fails is not a covariance that
/// rounding touched: it is damaged, or not a covariance.
pub fn psd_tolerance(d: usize) -> f64 {
    d.max(1) as f64 * f64::from(f32::EPSILON)
}

/// Checks that the symmetric `cov` is positive semi-definite up to rounding:
/// `λ_min(Σ) ≥ −psd_tolerance(D) · λ_max(Σ)` (see [`psd_tolerance`]). Only the
/// lower triangle is read.
///
/// Fast path: a Cholesky factorisation of `Σ + δI` with
/// `δ = psd_tolerance(D) · max_i Σ_ii` (`max_i Σ_ii ≤ λ_max`) succeeds only
/// when `λ_min > −δ`, which passes the check; otherwise the eigenvalues decide
/// (and are reported).
///
/// # Errors
/// [`LinalgError::NotPositiveSemidefinite`] naming `what`;
/// [`LinalgError::DimensionMismatch`] if `cov` is not square;
/// [`LinalgError::NonFinite`]; [`LinalgError::Numerical`] if the eigensolver
/// fails.
pub fn check_positive_semidefinite(
    what: &'static str,
    cov: ArrayView2<'_, f64>,
) -> Result<(), LinalgError> {
    let d = cov.nrows();
    if cov.ncols() != d {
        return Err(LinalgError::DimensionMismatch {
            what,
            left: d,
            right: cov.ncols(),
        });
    }
    if d == 0 {
        return Ok(());
    }
    if let Some(((row, col), _)) = cov.indexed_iter().find(|(_, v)| !v.is_finite()) {
        return Err(LinalgError::NonFinite { what, row, col });
    }
    let tolerance = psd_tolerance(d);
    let max_diag = cov.diag().iter().fold(0.0_f64, |m, &v| m.max(v));
    let shift = tolerance * max_diag;
    let mut shifted = Mat::<f64>::from_fn(d, d, |i, j| if i >= j { cov[[i, j]] } else { 0.0 });
    for i in 0..d {
        shifted[(i, i)] += shift;
    }
    // Factored in place (`shifted` is already a copy; `llt` would copy it
    // again), with the parallelism `llt` uses.
    if max_diag > 0.0
        && crate::dense::llt_in_place(shifted.as_mut(), faer::get_global_parallelism()).is_ok()
    {
        return Ok(());
    }
    let lower = Mat::<f64>::from_fn(d, d, |i, j| cov[[i.max(j), i.min(j)]]);
    let eigs = lower
        .as_ref()
        .self_adjoint_eigenvalues(faer::Side::Lower)
        .map_err(|e| LinalgError::Numerical {
            what,
            detail: format!("eigenvalues: {e:?}"),
        })?;
    let min = eigs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = eigs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if min >= -tolerance * max.max(0.0) {
        return Ok(());
    }
    Err(LinalgError::NotPositiveSemidefinite {
        what,
        min_eigenvalue: min,
        max_eigenvalue: max,
        tolerance,
    })
}

/// The default delta degrees of freedom: `Σ = M / (n − 1)`, as `np.cov`.
pub const DEFAULT_DDOF: usize = 1;

/// Bytes of float64 workspace one chunk of rows may take.
const CHUNK_BYTES: usize = 8 << 20;

/// Rows per chunk for dimension `d`: about [`CHUNK_BYTES`] of float64, at
/// least 64 and at most 8192 rows.
fn chunk_rows(d: usize) -> usize {
    (CHUNK_BYTES / (8 * d.max(1))).clamp(64, 8192)
}

/// Returns the (row, column) of the first non-finite value of `x`, if any.
pub(crate) fn first_non_finite<T: Copy + Into<f64> + Sync>(
    x: ArrayView2<'_, T>,
) -> Option<(usize, usize)> {
    // Parallel scan over rows; `find_first` keeps the answer deterministic.
    (0..x.nrows())
        .into_par_iter()
        .find_first(|&i| x.row(i).iter().any(|v| !(*v).into().is_finite()))
        .map(|i| {
            // The row was found because it has a non-finite value, so
            // `position` is `Some`; 0 is never used.
            let j = x
                .row(i)
                .iter()
                .position(|v| !(*v).into().is_finite())
                .unwrap_or(0);
            (i, j)
        })
}

/// Columns per task when summing columns (a fixed split: every column is
/// summed in row order, so the result does not depend on the thread count).
const COLS_PER_TASK: usize = 256;

/// Column means, in float64, of rows `[r0, r0 + b)` of `x` (`b ≥ 1`). Each
/// column is summed in row order (parallel over column blocks, deterministic).
///
/// A NaN/Inf value makes its column mean non-finite, so callers detect bad
/// input from the means and only then look for its position with
/// [`first_non_finite`]. (Finite float32 values cannot overflow a float64
/// sum; finite float64 values near `f64::MAX` can, and callers report that.)
pub(crate) fn column_means<T: Copy + Into<f64> + Sync>(
    x: ArrayView2<'_, T>,
    r0: usize,
    b: usize,
) -> Vec<f64> {
    let d = x.ncols();
    let rows = x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(r0..r0 + b));
    let mut sums = vec![0.0f64; d];
    match rows.as_slice() {
        // Row-major: each task walks every row over its block of columns.
        Some(data) => sums
            .par_chunks_mut(COLS_PER_TASK)
            .enumerate()
            .for_each(|(blk, acc)| {
                let c0 = blk * COLS_PER_TASK;
                let len = acc.len();
                for row in data.chunks_exact(d) {
                    for (a, v) in acc.iter_mut().zip(&row[c0..c0 + len]) {
                        *a += (*v).into();
                    }
                }
            }),
        // Any other layout: one column at a time, in row order.
        None => sums.par_iter_mut().enumerate().for_each(|(j, a)| {
            *a = rows.column(j).iter().fold(0.0, |s, v| s + (*v).into());
        }),
    }
    let inv = 1.0 / b as f64;
    sums.iter_mut().for_each(|m| *m *= inv);
    sums
}

/// Rows `[r0, r0 + b)` of `x` widened to float64 and centred by `mean`, in one
/// pass, written row-major into `buf` (resized, so one allocation serves every
/// chunk).
pub(crate) fn convert_centered<T: Copy + Into<f64> + Sync>(
    x: ArrayView2<'_, T>,
    r0: usize,
    b: usize,
    mean: &[f64],
    buf: &mut Vec<f64>,
) {
    let d = x.ncols();
    buf.resize(b * d, 0.0);
    let data = x.as_slice();
    buf[..b * d]
        .par_chunks_mut(d * ROWS_PER_TASK)
        .enumerate()
        .for_each(|(t, out)| {
            for (k, orow) in out.chunks_exact_mut(d).enumerate() {
                let i = r0 + t * ROWS_PER_TASK + k;
                match data {
                    Some(data) => {
                        for ((o, v), m) in orow.iter_mut().zip(&data[i * d..(i + 1) * d]).zip(mean)
                        {
                            *o = (*v).into() - m;
                        }
                    }
                    None => {
                        for ((o, v), m) in orow.iter_mut().zip(x.row(i).iter()).zip(mean) {
                            *o = (*v).into() - m;
                        }
                    }
                }
            }
        });
}

/// Rows per task when converting a chunk.
const ROWS_PER_TASK: usize = 64;

/// Rows `[r0, r0 + b)` of `x` widened to float64 and centred by their column
/// means (see [`column_means`], [`convert_centered`]), written row-major into
/// `buf`; returns the column means.
pub(crate) fn centered_chunk<T: Copy + Into<f64> + Sync>(
    x: ArrayView2<'_, T>,
    r0: usize,
    b: usize,
    buf: &mut Vec<f64>,
) -> Vec<f64> {
    let mean = column_means(x, r0, b);
    convert_centered(x, r0, b, &mean, buf);
    mean
}

/// Per-column sums of `f(x)` over the rows of a row-major buffer with `d`
/// columns (parallel over column blocks; each column summed in row order, so
/// the error grows with the number of rows only, not with `rows × d`).
pub(crate) fn column_sums(buf: &[f64], d: usize, f: impl Fn(f64) -> f64 + Sync) -> Vec<f64> {
    let mut sums = vec![0.0f64; d];
    const COLS: usize = 256;
    sums.par_chunks_mut(COLS).enumerate().for_each(|(blk, m)| {
        let c0 = blk * COLS;
        let len = m.len();
        for row in buf.chunks_exact(d) {
            for (acc, v) in m.iter_mut().zip(&row[c0..c0 + len]) {
                *acc += f(*v);
            }
        }
    });
    sums
}

/// The column stride of a column-major chunk of `b` rows: `b` rounded up to
/// whole 64-byte lines, plus one line. Without the extra line a chunk of 512
/// rows has columns exactly 4 KiB apart, and the transposing write of
/// [`convert_centered_columns`] (one value into each of 32 columns per row)
/// sends all 32 stores to the same L1 set and 4 KiB-aliases them: 82–88 ms
/// per 10,000 × 2048 rows on one core against 33–35 ms with the line of
/// padding (the 2-core AVX-512 dev VM, 2026-12-08; docs/benchmarks.md).
pub(crate) fn chunk_column_stride(b: usize) -> usize {
    b.next_multiple_of(8) + 8
}

/// `dst_lower += Xᵀ X` for a **column-major** `b × d` buffer `X` (column `j`,
/// the `b` centred values of feature `j`, at `x[j·ld..j·ld + b]` with
/// `ld = chunk_column_stride(b)`), lower triangle (including the diagonal)
/// only.
///
/// Why column-major: faer's GEMM runs near the machine's peak when both
/// operands are contiguous along the inner (summed) dimension, here the
/// rows of the chunk. With a row-major chunk, `Xᵀ` has that layout but `X`
/// does not, and the product ran at 38–45 GFLOP/s per core against ~107 for
/// the same flops laid out along the sum (2-core AVX-512 dev VM, 2026-12-06,
/// docs/benchmarks.md): writing the chunk transposed while it is widened and
/// centred costs nothing extra, since it is copied anyway.
pub(crate) fn add_gram_lower(dst: MatMut<'_, f64>, xc: &[f64], b: usize, d: usize, par: Par) {
    let x = MatRef::from_column_major_slice_with_stride(xc, b, d, chunk_column_stride(b));
    matmul(
        dst,
        BlockStructure::TriangularLower,
        Accum::Add,
        x.transpose(),
        BlockStructure::Rectangular,
        x,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
}

/// Rows `[r0, r0 + b)` of `x` widened to float64 and centred by `mean`,
/// written **column-major** into `buf` (`buf[j·ld + i] = x[r0 + i, j] − mean[j]`
/// with `ld = chunk_column_stride(b)`; resized, so one allocation serves every
/// chunk): the layout
/// [`add_gram_lower`] multiplies fastest. Parallel over blocks of columns;
/// each value is computed exactly as [`convert_centered`] computes it.
pub(crate) fn convert_centered_columns<T: Copy + Into<f64> + Sync>(
    x: ArrayView2<'_, T>,
    r0: usize,
    b: usize,
    mean: &[f64],
    buf: &mut Vec<f64>,
) {
    const COLS: usize = 32;
    let d = x.ncols();
    let ld = chunk_column_stride(b);
    buf.resize(ld * d, 0.0);
    let data = x.as_slice();
    buf[..ld * d]
        .par_chunks_mut(ld * COLS)
        .enumerate()
        .for_each(|(t, out)| {
            let c0 = t * COLS;
            let nc = out.len() / ld;
            let m = &mean[c0..c0 + nc];
            for i in 0..b {
                let r = r0 + i;
                match data {
                    Some(data) => {
                        let row = &data[r * d + c0..r * d + c0 + nc];
                        for (jj, (v, mj)) in row.iter().zip(m).enumerate() {
                            out[jj * ld + i] = (*v).into() - mj;
                        }
                    }
                    None => {
                        for (jj, mj) in m.iter().enumerate() {
                            out[jj * ld + i] = x[[r, c0 + jj]].into() - mj;
                        }
                    }
                }
            }
        });
}

/// Copies the lower triangle of the column-major `d × d` matrix `m` onto
/// its upper triangle (`m[j·d + i] = m[i·d + j]` for `i < j`), in square
/// tiles so that the strided reads stay in cache.
fn mirror_lower(m: &mut [f64], d: usize) {
    const TILE: usize = 64;
    for jb in (0..d).step_by(TILE) {
        let je = (jb + TILE).min(d);
        for ib in (0..je).step_by(TILE) {
            let ie = (ib + TILE).min(d);
            for j in jb..je {
                for i in ib..ie.min(j) {
                    m[j * d + i] = m[i * d + j];
                }
            }
        }
    }
}

/// Mean and covariance of a set of feature vectors, in float64.
///
/// `cov = M / (n − ddof)` with `M = Σ (x_i − μ)(x_i − μ)ᵀ`, as
/// `np.cov(X, rowvar=False, ddof=ddof)`; produced by
/// [`GaussianAccumulator::finalize`] or [`GaussianStats::from_features`].
/// `cov` is symmetric (both triangles are filled).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussianStats {
    /// The sample mean `μ = (1/n) Σ x_i`, length `D`.
    pub mean: Array1<f64>,
    /// The sample covariance, `D × D`, symmetric.
    pub cov: Array2<f64>,
    /// The number of rows the statistics were computed from.
    pub n: usize,
}

impl GaussianStats {
    /// Mean and unbiased covariance (`ddof = 1`, as `np.cov`) of the rows of `x`
    /// (rows are samples, columns are feature dimensions; `f32` or `f64`).
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] for fewer than 2 rows,
    /// [`LinalgError::NonFinite`] for a NaN/Inf value,
    /// [`LinalgError::InvalidParameter`] for zero columns.
    pub fn from_features<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
    ) -> Result<Self, LinalgError> {
        Self::from_features_ddof(x, DEFAULT_DDOF)
    }

    /// As [`GaussianStats::from_features`] with `cov = M / (n − ddof)`.
    ///
    /// # Errors
    /// As [`GaussianStats::from_features`]; needs `n > ddof` rows.
    pub fn from_features_ddof<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
        ddof: usize,
    ) -> Result<Self, LinalgError> {
        Self::from_features_par(x, ddof, faer::get_global_parallelism())
    }

    /// As [`GaussianStats::from_features_ddof`], the co-moment products run
    /// with `par` (faer's products are bitwise the same for any `par`).
    pub(crate) fn from_features_par<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
        ddof: usize,
        par: Par,
    ) -> Result<Self, LinalgError> {
        let mut acc = GaussianAccumulator::new(x.ncols())?;
        acc.push_par(x, par)?;
        acc.into_stats(ddof)
    }

    /// Builds statistics from a given mean and covariance (e.g. loaded from a
    /// reference-statistics file), checking shapes and values.
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if `cov` is not `D × D` for
    /// `D = mean.len()`; [`LinalgError::NonFinite`] for a NaN/Inf entry;
    /// [`LinalgError::InvalidParameter`] for `D = 0`.
    pub fn new(mean: Array1<f64>, cov: Array2<f64>, n: usize) -> Result<Self, LinalgError> {
        let s = GaussianStats { mean, cov, n };
        s.validate("GaussianStats::new")?;
        Ok(s)
    }

    /// The feature dimension `D`.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// `tr Σ`.
    pub fn trace(&self) -> f64 {
        self.cov.diag().sum()
    }

    /// Checks the shapes and values of a (possibly hand-built) value.
    pub(crate) fn validate(&self, what: &'static str) -> Result<(), LinalgError> {
        let d = self.mean.len();
        if d == 0 {
            return Err(LinalgError::InvalidParameter(format!(
                "{what}: zero feature dimensions"
            )));
        }
        if self.cov.nrows() != d {
            return Err(LinalgError::DimensionMismatch {
                what,
                left: d,
                right: self.cov.nrows(),
            });
        }
        if self.cov.ncols() != d {
            return Err(LinalgError::DimensionMismatch {
                what,
                left: d,
                right: self.cov.ncols(),
            });
        }
        if let Some(col) = self.mean.iter().position(|v| !v.is_finite()) {
            return Err(LinalgError::NonFinite { what, row: 0, col });
        }
        // Fast check over memory; the position is looked up only on error.
        let bad = match self.cov.as_slice_memory_order() {
            Some(v) => v.iter().any(|x| !x.is_finite()),
            None => self.cov.iter().any(|x| !x.is_finite()),
        };
        if bad && let Some(((row, col), _)) = self.cov.indexed_iter().find(|(_, v)| !v.is_finite())
        {
            return Err(LinalgError::NonFinite { what, row, col });
        }
        Ok(())
    }
}

/// The state of a [`GaussianAccumulator`]: everything needed to rebuild it
/// elsewhere ([`GaussianAccumulator::to_parts`] /
/// [`GaussianAccumulator::from_parts`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AccumulatorParts {
    /// Rows accumulated.
    pub n: usize,
    /// Their mean `μ`, length `D`.
    pub mean: Array1<f64>,
    /// The co-moment `M = Σ (x_i − μ)(x_i − μ)ᵀ`, `D × D`, symmetric
    /// (`Σ = M / (n − ddof)`).
    pub comoment: Array2<f64>,
}

/// Streaming accumulator of the mean and co-moment matrix of `D`-dimensional
/// rows, in float64, with the batch-then-pairwise update of Chan et al. (see the
/// [module documentation](self)).
///
/// ```
/// # use gen_metrics_linalg::GaussianAccumulator;
/// # use ndarray::array;
/// let mut acc = GaussianAccumulator::new(2).unwrap();
/// acc.push(array![[1.0f32, 2.0], [3.0, 5.0]].view()).unwrap();
/// acc.push(array![[5.0f32, 11.0]].view()).unwrap();
/// let s = acc.finalize(1).unwrap();
/// assert_eq!(s.mean[1], 6.0);
/// assert!((s.cov[[0, 1]] - 9.0).abs() < 1e-12);
/// ```
pub struct GaussianAccumulator {
    dim: usize,
    n: usize,
    mean: Vec<f64>,
    /// Co-moment `M = Σ (x_i − μ)(x_i − μ)ᵀ`, column-major `D × D`
    /// (`(i, j)` at `j·D + i`); only the lower triangle (including the
    /// diagonal) is maintained. A plain vector so that
    /// [`GaussianAccumulator::into_stats`] can turn it into the covariance in
    /// place.
    comoment: Vec<f64>,
    /// The widened, centred chunk of [`GaussianAccumulator::push`], kept
    /// from batch to batch (8 MiB at `D = 2048`): allocated afresh per batch,
    /// the allocator can hand its pages back in between and the kernel then
    /// zeroes them again page by page. Not part of the statistics.
    chunk: Vec<f64>,
}

impl Clone for GaussianAccumulator {
    /// The statistics; not the chunk buffer.
    fn clone(&self) -> Self {
        GaussianAccumulator {
            dim: self.dim,
            n: self.n,
            mean: self.mean.clone(),
            comoment: self.comoment.clone(),
            chunk: Vec::new(),
        }
    }
}

impl std::fmt::Debug for GaussianAccumulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaussianAccumulator")
            .field("dim", &self.dim)
            .field("n", &self.n)
            .field("mean", &self.mean)
            .field("comoment", &self.comoment)
            .finish_non_exhaustive()
    }
}

impl GaussianAccumulator {
    /// An empty accumulator for `dim`-dimensional rows (allocates `dim²`
    /// float64 values).
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for `dim = 0`.
    pub fn new(dim: usize) -> Result<Self, LinalgError> {
        if dim == 0 {
            return Err(LinalgError::InvalidParameter(
                "GaussianAccumulator: zero feature dimensions".into(),
            ));
        }
        Ok(GaussianAccumulator {
            dim,
            n: 0,
            mean: vec![0.0; dim],
            comoment: vec![0.0; dim * dim],
            chunk: Vec::new(),
        })
    }

    /// The feature dimension `D`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number of rows accumulated so far.
    pub fn count(&self) -> usize {
        self.n
    }

    /// The running mean (all zeros while empty).
    pub fn mean(&self) -> Array1<f64> {
        Array1::from_vec(self.mean.clone())
    }

    /// Adds the rows of `batch` (`f32` or `f64`, any memory layout). An empty
    /// batch is a no-op. The batch is processed in chunks of rows of bounded
    /// size, every chunk centred by the batch mean; the batch co-moment is
    /// then merged with the Chan et al. update.
    ///
    /// The whole batch is checked before anything is added: on error the
    /// accumulator is unchanged.
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if `batch.ncols() != D`;
    /// [`LinalgError::NonFinite`] (row index within `batch`) for a NaN/Inf.
    pub fn push<T: Copy + Into<f64> + Send + Sync>(
        &mut self,
        batch: ArrayView2<'_, T>,
    ) -> Result<(), LinalgError> {
        self.push_par(batch, faer::get_global_parallelism())
    }

    /// [`GaussianAccumulator::push`] with the co-moment products on the
    /// calling thread: for callers that already run one accumulator per
    /// thread (two feature files streamed side by side), where splitting each
    /// product across the threads as well only adds synchronisation.
    ///
    /// # Errors
    /// As [`GaussianAccumulator::push`].
    pub fn push_sequential<T: Copy + Into<f64> + Send + Sync>(
        &mut self,
        batch: ArrayView2<'_, T>,
    ) -> Result<(), LinalgError> {
        self.push_par(batch, Par::Seq)
    }

    /// [`GaussianAccumulator::push`] with the co-moment products run with
    /// `par`.
    pub(crate) fn push_par<T: Copy + Into<f64> + Send + Sync>(
        &mut self,
        batch: ArrayView2<'_, T>,
        par: Par,
    ) -> Result<(), LinalgError> {
        const WHAT: &str = "GaussianAccumulator::push";
        if batch.ncols() != self.dim {
            return Err(LinalgError::DimensionMismatch {
                what: WHAT,
                left: self.dim,
                right: batch.ncols(),
            });
        }
        let nb = batch.nrows();
        if nb == 0 {
            return Ok(());
        }
        // The batch mean (one pass; a non-finite mean means a NaN/Inf value).
        let mean_b = column_means(batch, 0, nb);
        if mean_b.iter().any(|m| !m.is_finite())
            && let Some((row, col)) = first_non_finite(batch)
        {
            return Err(LinalgError::NonFinite {
                what: WHAT,
                row,
                col,
            });
        }
        // A float64 overflow of a finite column: the sums are unusable.
        if mean_b.iter().any(|m| !m.is_finite()) {
            return Err(LinalgError::Numerical {
                what: WHAT,
                detail: "a column sum overflows float64".into(),
            });
        }
        // M_B = Σ_chunks X_cᵀ X_c with every chunk centred by the batch mean
        // (so no per-chunk correction is needed), added straight into M; then
        // the δδᵀ term of the Chan update, once per batch.
        let d = self.dim;
        let step = chunk_rows(d);
        let mut r0 = 0;
        let mut buf = std::mem::take(&mut self.chunk);
        while r0 < nb {
            let b = step.min(nb - r0);
            convert_centered_columns(batch, r0, b, &mean_b, &mut buf);
            add_gram_lower(self.comoment_mut(), &buf, b, d, par);
            r0 += b;
        }
        self.chunk = buf;
        self.combine(nb, &mean_b, None);
        Ok(())
    }

    /// Merges `other` into `self` exactly (Chan et al. pairwise formula):
    /// afterwards `self` holds the statistics of the union of both row sets.
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if the dimensions differ.
    pub fn merge(&mut self, other: &GaussianAccumulator) -> Result<(), LinalgError> {
        if other.dim != self.dim {
            return Err(LinalgError::DimensionMismatch {
                what: "GaussianAccumulator::merge",
                left: self.dim,
                right: other.dim,
            });
        }
        if other.n == 0 {
            return Ok(());
        }
        if self.n == 0 {
            self.clone_from(other);
            return Ok(());
        }
        self.combine(other.n, &other.mean, Some(other.comoment_ref()));
        Ok(())
    }

    /// The Chan et al. update with a non-empty set `B` of `n_b` rows, mean
    /// `mean_b` and co-moment `M_B` (lower triangle; `None` when it has already
    /// been added to `M`): `M ← M + M_B + δδᵀ n_A n_B / n`,
    /// `m ← m + δ n_B / n`, `δ = m_B − m_A`.
    /// The co-moment as `faer` sees it.
    fn comoment_ref(&self) -> MatRef<'_, f64> {
        MatRef::from_column_major_slice(&self.comoment, self.dim, self.dim)
    }

    /// The co-moment as `faer` sees it, writable.
    fn comoment_mut(&mut self) -> MatMut<'_, f64> {
        MatMut::from_column_major_slice_mut(&mut self.comoment, self.dim, self.dim)
    }

    fn combine(&mut self, n_b: usize, mean_b: &[f64], m_b: Option<MatRef<'_, f64>>) {
        let delta: Vec<f64> = mean_b
            .iter()
            .zip(&self.mean)
            .map(|(mb, ma)| mb - ma)
            .collect();
        let (na, nb) = (self.n as f64, n_b as f64);
        let n = na + nb;
        let w = na * nb / n;
        let d = self.dim;
        // Lower triangles only; columns in parallel.
        self.comoment_mut()
            .par_col_iter_mut()
            .enumerate()
            .for_each(|(j, mut col)| {
                let a = w * delta[j];
                match m_b {
                    Some(src) => {
                        for i in j..d {
                            col[i] += src[(i, j)] + a * delta[i];
                        }
                    }
                    None if w != 0.0 => {
                        for i in j..d {
                            col[i] += a * delta[i];
                        }
                    }
                    None => {}
                }
            });
        for (m, dl) in self.mean.iter_mut().zip(&delta) {
            *m += dl * (nb / n);
        }
        self.n += n_b;
    }

    /// The statistics: `μ` and `Σ = M / (n − ddof)` (`ddof = 1`:
    /// `np.cov`'s unbiased default; `ddof = 0`: maximum likelihood). The
    /// accumulator is left unchanged, so more rows may be pushed afterwards.
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] unless `n > ddof` (`n ≥ 2` for `ddof = 1`,
    /// `n ≥ 1` for `ddof = 0`); [`LinalgError::Numerical`] if the covariance
    /// overflowed.
    pub fn finalize(&self, ddof: usize) -> Result<GaussianStats, LinalgError> {
        self.clone().into_stats(ddof)
    }

    /// [`GaussianAccumulator::finalize`], consuming the accumulator: the
    /// covariance is formed in the co-moment's own memory (mirrored to the
    /// upper triangle, then scaled), so no second `D × D` buffer is
    /// allocated — 32 MiB less at `D = 2048`, and on a fresh process 32 MiB
    /// fewer pages to fault in. Same values, bit for bit.
    ///
    /// # Errors
    /// As [`GaussianAccumulator::finalize`].
    pub fn into_stats(self, ddof: usize) -> Result<GaussianStats, LinalgError> {
        const WHAT: &str = "GaussianAccumulator::finalize";
        if self.n <= ddof {
            return Err(LinalgError::TooFewRows {
                what: WHAT,
                needed: ddof + 1,
                got: self.n,
            });
        }
        let d = self.dim;
        let scale = 1.0 / (self.n - ddof) as f64;
        let mut m = self.comoment;
        mirror_lower(&mut m, d);
        m.par_chunks_mut(d).for_each(|col| {
            for v in col {
                *v *= scale;
            }
        });
        if m.iter().any(|v| !v.is_finite()) {
            return Err(LinalgError::Numerical {
                what: WHAT,
                detail: "covariance overflowed float64".into(),
            });
        }
        // Symmetric: its column-major storage is also its row-major one.
        let cov = Array2::from_shape_vec((d, d), m).map_err(|e| LinalgError::Numerical {
            what: WHAT,
            detail: e.to_string(),
        })?;
        Ok(GaussianStats {
            mean: Array1::from_vec(self.mean),
            cov,
            n: self.n,
        })
    }

    /// The whole state, to move an accumulator to another process (one rank
    /// of a distributed evaluation, a checkpoint) and rebuild it there with
    /// [`GaussianAccumulator::from_parts`]; merging the rebuilt accumulators
    /// gives the statistics of all rows.
    pub fn to_parts(&self) -> AccumulatorParts {
        let d = self.dim;
        let m = self.comoment_ref();
        let comoment =
            Array2::from_shape_fn((d, d), |(i, j)| if i >= j { m[(i, j)] } else { m[(j, i)] });
        AccumulatorParts {
            n: self.n,
            mean: Array1::from_vec(self.mean.clone()),
            comoment,
        }
    }

    /// Rebuilds an accumulator from [`GaussianAccumulator::to_parts`]. The
    /// lower triangle of `comoment` is used (the state keeps only that); the
    /// upper one must mirror it.
    ///
    /// # Errors
    /// [`LinalgError::InvalidParameter`] for `D = 0`, an asymmetric or
    /// negative-diagonal co-moment, or a non-zero state with `n = 0`;
    /// [`LinalgError::DimensionMismatch`] if `comoment` is not `D × D`;
    /// [`LinalgError::NonFinite`] for a NaN/Inf value.
    pub fn from_parts(parts: AccumulatorParts) -> Result<Self, LinalgError> {
        const WHAT: &str = "GaussianAccumulator::from_parts";
        let AccumulatorParts { n, mean, comoment } = parts;
        let d = mean.len();
        let mut acc = GaussianAccumulator::new(d)?;
        if comoment.dim() != (d, d) {
            let right = if comoment.nrows() != d {
                comoment.nrows()
            } else {
                comoment.ncols()
            };
            return Err(LinalgError::DimensionMismatch {
                what: WHAT,
                left: d,
                right,
            });
        }
        if let Some(col) = mean.iter().position(|v| !v.is_finite()) {
            return Err(LinalgError::NonFinite {
                what: WHAT,
                row: 0,
                col,
            });
        }
        if let Some(((row, col), _)) = comoment.indexed_iter().find(|(_, v)| !v.is_finite()) {
            return Err(LinalgError::NonFinite {
                what: WHAT,
                row,
                col,
            });
        }
        if n == 0 && (mean.iter().any(|v| *v != 0.0) || comoment.iter().any(|v| *v != 0.0)) {
            return Err(LinalgError::InvalidParameter(format!(
                "{WHAT}: a non-zero mean or co-moment with n = 0"
            )));
        }
        for i in 0..d {
            if comoment[(i, i)] < 0.0 {
                return Err(LinalgError::InvalidParameter(format!(
                    "{WHAT}: negative co-moment diagonal at {i}"
                )));
            }
            for j in 0..i {
                let (l, u) = (comoment[(i, j)], comoment[(j, i)]);
                if (l - u).abs() > 1e-12 * (l.abs().max(u.abs()).max(f64::MIN_POSITIVE)) {
                    return Err(LinalgError::InvalidParameter(format!(
                        "{WHAT}: the co-moment is not symmetric at ({i}, {j}): {l} vs {u}"
                    )));
                }
            }
        }
        acc.n = n;
        acc.mean = mean.to_vec();
        for j in 0..d {
            for i in j..d {
                acc.comoment[j * d + i] = comoment[(i, j)];
            }
        }
        Ok(acc)
    }

    /// [`GaussianAccumulator::finalize`] with the default `ddof = 1`.
    ///
    /// # Errors
    /// As [`GaussianAccumulator::finalize`].
    pub fn finalize_unbiased(&self) -> Result<GaussianStats, LinalgError> {
        self.finalize(DEFAULT_DDOF)
    }

    /// [`GaussianAccumulator::into_stats`] with the default `ddof = 1`.
    ///
    /// # Errors
    /// As [`GaussianAccumulator::finalize`].
    pub fn into_stats_unbiased(self) -> Result<GaussianStats, LinalgError> {
        self.into_stats(DEFAULT_DDOF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn gram_lower_tiny() {
        // Columns [1, 3] and [2, 4] (one padded stride apart; the padding
        // is never read) are X = [[1, 2], [3, 4]]: XᵀX = [[10, 14], [14, 20]],
        // lower triangle.
        let ld = chunk_column_stride(2);
        let mut x = vec![f64::NAN; 2 * ld];
        x[..2].copy_from_slice(&[1.0, 3.0]);
        x[ld..ld + 2].copy_from_slice(&[2.0, 4.0]);
        let mut m = Mat::<f64>::zeros(2, 2);
        add_gram_lower(m.as_mut(), &x, 2, 2, Par::Seq);
        assert_eq!(m[(0, 0)], 10.0);
        assert_eq!(m[(1, 0)], 14.0);
        assert_eq!(m[(1, 1)], 20.0);
    }

    #[test]
    fn column_major_chunk_is_the_transpose_of_the_row_major_one() {
        // 70 columns (two full blocks of 32 and a partial one), a row offset,
        // and a non-contiguous view (every other column of a wider array).
        let wide = Array2::from_shape_fn((9, 140), |(i, j)| (i * 131 + j * 17) as f32 / 7.0);
        let strided = wide.slice_axis(ndarray::Axis(1), ndarray::Slice::new(0, None, 2));
        let contiguous = strided.to_owned();
        for x in [contiguous.view(), strided] {
            let mean: Vec<f64> = (0..70).map(|j| j as f64 * 0.25).collect();
            let (mut rm, mut cm) = (Vec::new(), Vec::new());
            convert_centered(x, 2, 6, &mean, &mut rm);
            convert_centered_columns(x, 2, 6, &mean, &mut cm);
            for i in 0..6 {
                for j in 0..70 {
                    let ld = chunk_column_stride(6);
                    assert_eq!(rm[i * 70 + j].to_bits(), cm[j * ld + i].to_bits());
                }
            }
        }
    }

    #[test]
    fn into_stats_is_finalize_bit_for_bit() {
        // Odd dimension (the mirror's tiles do not divide it) and several
        // batches, so the co-moment has a Chan update in it.
        let d = 131;
        let x = Array2::from_shape_fn((400, d), |(i, j)| {
            ((i * 31 + j * 7) as f64 * 0.013).sin() * (1.0 + j as f64)
        });
        let mut acc = GaussianAccumulator::new(d).unwrap();
        for rows in x.axis_chunks_iter(ndarray::Axis(0), 150) {
            acc.push(rows).unwrap();
        }
        for ddof in [0, 1] {
            let want = acc.finalize(ddof).unwrap();
            let got = acc.clone().into_stats(ddof).unwrap();
            assert_eq!(got, want);
            for i in 0..d {
                for j in 0..d {
                    assert_eq!(got.cov[[i, j]].to_bits(), got.cov[[j, i]].to_bits());
                }
            }
        }
        assert_eq!(
            acc.clone().into_stats_unbiased().unwrap(),
            acc.finalize_unbiased().unwrap()
        );
        let direct = GaussianStats::from_features(x.view()).unwrap();
        for (a, b) in direct.cov.iter().zip(&acc.finalize(1).unwrap().cov) {
            assert!((a - b).abs() <= 1e-12 * (1.0 + b.abs()));
        }
        // Too few rows: the same error either way.
        let mut one = GaussianAccumulator::new(3).unwrap();
        one.push(array![[1.0f32, 2.0, 3.0]].view()).unwrap();
        assert_eq!(
            one.clone().into_stats(1).unwrap_err().to_string(),
            one.finalize(1).unwrap_err().to_string()
        );
    }

    #[test]
    fn push_is_atomic_on_error() {
        let mut acc = GaussianAccumulator::new(2).unwrap();
        acc.push(array![[1.0f64, 2.0], [3.0, 4.0]].view()).unwrap();
        let before = acc.finalize(1).unwrap();
        assert!(
            acc.push(array![[1.0f64, 2.0], [f64::NAN, 4.0]].view())
                .is_err()
        );
        assert_eq!(acc.finalize(1).unwrap(), before);
    }

    #[test]
    fn parts_round_trip_and_merge_like_one_process() {
        let x = Array2::from_shape_fn((50, 3), |(i, j)| {
            ((i * 7 + j * 3) % 11) as f64 + 0.5 * j as f64
        });
        let whole = GaussianStats::from_features(x.view()).unwrap();
        // two "ranks", each serialises its state
        let mut a = GaussianAccumulator::new(3).unwrap();
        a.push(x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..20)))
            .unwrap();
        let mut b = GaussianAccumulator::new(3).unwrap();
        b.push(x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(20..50)))
            .unwrap();
        let mut a2 = GaussianAccumulator::from_parts(a.to_parts()).unwrap();
        let b2 = GaussianAccumulator::from_parts(b.to_parts()).unwrap();
        assert_eq!(a2.to_parts(), a.to_parts());
        a2.merge(&b2).unwrap();
        let merged = a2.finalize(1).unwrap();
        for (g, w) in merged.cov.iter().zip(whole.cov.iter()) {
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
        assert_eq!(merged.n, 50);
        // empty round trip
        let e = GaussianAccumulator::new(2).unwrap();
        assert_eq!(
            GaussianAccumulator::from_parts(e.to_parts())
                .unwrap()
                .count(),
            0
        );
    }

    #[test]
    fn bad_parts_are_errors() {
        let good = {
            let mut a = GaussianAccumulator::new(2).unwrap();
            a.push(array![[1.0f64, 2.0], [3.0, 5.0], [0.0, 1.0]].view())
                .unwrap();
            a.to_parts()
        };
        let mut p = good.clone();
        p.comoment[(0, 1)] += 1.0;
        assert!(GaussianAccumulator::from_parts(p).is_err(), "asymmetric");
        let mut p = good.clone();
        p.comoment[(1, 1)] = -1.0;
        assert!(
            GaussianAccumulator::from_parts(p).is_err(),
            "negative diagonal"
        );
        let mut p = good.clone();
        p.mean[1] = f64::NAN;
        assert!(GaussianAccumulator::from_parts(p).is_err(), "NaN");
        let mut p = good.clone();
        p.comoment = Array2::zeros((2, 3));
        assert!(GaussianAccumulator::from_parts(p).is_err(), "shape");
        let mut p = good.clone();
        p.n = 0;
        assert!(
            GaussianAccumulator::from_parts(p).is_err(),
            "n = 0 with data"
        );
        let p = AccumulatorParts {
            n: 0,
            mean: Array1::zeros(0),
            comoment: Array2::zeros((0, 0)),
        };
        assert!(GaussianAccumulator::from_parts(p).is_err(), "D = 0");
    }

    #[test]
    fn overflowing_column_sum_is_an_error_not_inf() {
        let mut acc = GaussianAccumulator::new(2).unwrap();
        let big = f64::MAX / 2.0;
        let e = acc
            .push(array![[big, 1.0], [big, 2.0], [big, 3.0]].view())
            .unwrap_err();
        assert!(matches!(e, LinalgError::Numerical { .. }), "{e:?}");
        assert_eq!(acc.count(), 0);
    }

    #[test]
    fn inf_is_located() {
        let mut acc = GaussianAccumulator::new(3).unwrap();
        let e = acc
            .push(array![[1.0f32, 2.0, 3.0], [1.0, 2.0, f32::INFINITY]].view())
            .unwrap_err();
        assert!(
            matches!(e, LinalgError::NonFinite { row: 1, col: 2, .. }),
            "{e:?}"
        );
    }
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    #[test]
    fn centred_chunk_any_layout() {
        // 150 rows: more than one conversion task, with a partial last task.
        let c = Array2::from_shape_fn((150, 40), |(i, j)| (i * 40 + j) as f32);
        let f = {
            let mut f = Array2::<f32>::zeros((150, 40).f());
            f.assign(&c);
            f
        };
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ma = centered_chunk(c.view(), 1, 3, &mut a);
        let mb = centered_chunk(f.view(), 1, 3, &mut b);
        assert_eq!(a, b);
        assert_eq!(ma, mb);
        // column 7 of rows 1..4 is 47, 87, 127: mean 87, centred -40, 0, 40
        assert_eq!(ma[7], 87.0);
        assert_eq!([a[7], a[40 + 7], a[80 + 7]], [-40.0, 0.0, 40.0]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let ma = centered_chunk(c.view(), 5, 140, &mut a);
        let mb = centered_chunk(f.view(), 5, 140, &mut b);
        assert_eq!((a, ma.clone()), (b, mb));
        // column 0 of rows 5..145: 40·(5..145) -> mean 40·74.5
        assert_eq!(ma[0], 40.0 * 74.5);
    }
}
