//! Blocked kernel sums for the maximum mean discrepancy (MMD).
//!
//! # Kernels
//!
//! * polynomial `k(x, y) = (γ xᵀy + c₀)^p` — KID uses `p = 3`, `γ = 1/D`,
//!   `c₀ = 1` (Bińkowski et al. 2018, "Demystifying MMD GANs"; clean-fid
//!   `kernel_distance`, torch-fidelity `metric_kid`),
//! * RBF `k(x, y) = exp(−γ ‖x − y‖²)`.
//!
//! # Sums
//!
//! For rows `x_1..x_m` and `y_1..y_n` ([`KernelSums`]):
//!
//! ```text
//! within(X)     = Σ_{i≠j} k(x_i, x_j)        (and the diagonal Σ_i k(x_i, x_i))
//! between(X, Y) = Σ_{i,j} k(x_i, y_j)
//! MMD²_u(X, Y)  = within(X)/(m(m−1)) + within(Y)/(n(n−1)) − 2 between(X, Y)/(mn)
//! MMD²_b(X, Y)  = (within(X) + diag(X))/m² + (within(Y) + diag(Y))/n² − 2 between(X, Y)/(mn)
//! ```
//!
//! (`MMD²_b` is the biased, minimum-variance estimate of Gretton et al. 2012,
//! "A Kernel Two-Sample Test", Eq. 5: the V-statistic over all pairs,
//! diagonal included.)
//!
//! The inner products come from `faer` GEMMs on row blocks converted to
//! float64 (the references compute in float64; `f32` features are widened
//! exactly), so memory is `8 (2·block·D + block²)` bytes whatever `m` and `n`
//! are, with `block` chosen from `D` to fit [`BLOCK_MEMORY_BUDGET`] (64 MiB;
//! 1024 rows for every `D ≤ 3584`). Each block's kernel values are summed row
//! by row with compensated summation (eight vectorized `Sum2` lanes per row,
//! [`CompensatedSum::add_slice`]) and the row sums are added in a fixed order
//! with Neumaier's compensated sum, so the result does not depend on the
//! number of threads, the CPU's vector width or the memory free at run time.
//!
//! For `f32` features the same sums also come from the distance engine's
//! passes (`pairwise::kernel_sums_with_subsets` and the two passes it is
//! made of), which read them off the float64 products the k-NN radii and
//! cross answers are formed from: KID in an evaluation uses that route, so
//! its products are shared with precision/recall, prdc and realism. Each
//! block becomes sums through the same code here (`pair_part`); only the
//! walk over the blocks (equal blocks of at least 512 rows there) differs, so the two routes
//! agree to rounding, and each is deterministic on its own.

use faer::{Accum, MatMut, MatRef, Par};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::LinalgError;
use crate::stats::first_non_finite;

/// The most rows per block: a 1024 × 1024 float64 block is 8 MiB.
pub const DEFAULT_BLOCK_ROWS: usize = 1024;

/// Working memory one kernel pass may hold at a time, in bytes (64 MiB).
///
/// A pass holds two row blocks widened to float64 and one block of kernel
/// values: `8 (2 r D + r²)` bytes for `r` rows per block in `D` dimensions
/// ([`block_memory_bytes`]). With the default of [`DEFAULT_BLOCK_ROWS`] rows
/// that is 40 MiB at `D = 2048` but 4.4 GB for raw 299 × 299 × 3 pixels, so
/// the rows per block come from this budget ([`block_rows_for_dim`]).
///
/// The budget is a constant rather than a share of the memory free at run
/// time on purpose: the block size fixes the order of the compensated
/// summation, so a size that followed free memory would let the last bits of
/// KID, CMMD or RKE change from one run to the next on the same data.
pub const BLOCK_MEMORY_BUDGET: usize = 64 << 20;

/// The fewest rows per block the budget rule picks (below this the GEMMs are
/// too thin to be efficient; memory is then `8 (32 D + 256)` bytes).
pub const MIN_BLOCK_ROWS: usize = 16;

/// Bytes a kernel pass holds at once with `rows` rows per block in `dim`
/// dimensions: `8 (2 · rows · dim + rows²)` (two widened row blocks and one
/// kernel block; the squared norms, `16 · rows`, are left out).
pub fn block_memory_bytes(rows: usize, dim: usize) -> usize {
    8usize.saturating_mul(
        (2usize.saturating_mul(rows).saturating_mul(dim)).saturating_add(rows.saturating_mul(rows)),
    )
}

/// Rows per block for `dim` dimensions: the largest multiple of
/// [`MIN_BLOCK_ROWS`] up to [`DEFAULT_BLOCK_ROWS`] whose
/// [`block_memory_bytes`] fit [`BLOCK_MEMORY_BUDGET`], and never fewer than
/// [`MIN_BLOCK_ROWS`]. Every encoder of the registry (`D ≤ 2048`) gets the
/// full 1024 rows; 299 × 299 × 3 pixels get 16 (about 69 MB).
pub fn block_rows_for_dim(dim: usize) -> usize {
    let mut rows = DEFAULT_BLOCK_ROWS;
    while rows > MIN_BLOCK_ROWS && block_memory_bytes(rows, dim) > BLOCK_MEMORY_BUDGET {
        rows -= MIN_BLOCK_ROWS;
    }
    rows
}

/// A positive-definite kernel on feature vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kernel {
    /// `k(x, y) = (γ xᵀy + c₀)^degree`.
    Polynomial {
        /// `γ` (KID: `1/D`).
        gamma: f64,
        /// `c₀` (KID: 1).
        coef0: f64,
        /// The degree (KID: 3).
        degree: u32,
    },
    /// `k(x, y) = exp(−γ ‖x − y‖²)`, with `‖x − y‖² = ‖x‖² + ‖y‖² − 2xᵀy`
    /// clamped at 0.
    Rbf {
        /// `γ > 0`.
        gamma: f64,
    },
}

impl Kernel {
    /// The KID kernel for `dim`-dimensional features: `(xᵀy/D + 1)³`.
    pub fn kid(dim: usize) -> Self {
        Kernel::Polynomial {
            gamma: 1.0 / dim as f64,
            coef0: 1.0,
            degree: 3,
        }
    }

    /// `k` from the inner product and the squared norms of the two vectors.
    #[inline]
    pub fn eval(&self, dot: f64, sq_x: f64, sq_y: f64) -> f64 {
        match *self {
            Kernel::Polynomial {
                gamma,
                coef0,
                degree,
            } => powu(gamma * dot + coef0, degree),
            Kernel::Rbf { gamma } => (-gamma * (sq_x + sq_y - 2.0 * dot).max(0.0)).exp(),
        }
    }

    pub(crate) fn needs_norms(&self) -> bool {
        matches!(self, Kernel::Rbf { .. })
    }

    pub(crate) fn validate(&self) -> Result<(), LinalgError> {
        let ok = match *self {
            Kernel::Polynomial { gamma, coef0, .. } => gamma.is_finite() && coef0.is_finite(),
            Kernel::Rbf { gamma } => gamma.is_finite() && gamma > 0.0,
        };
        if ok {
            Ok(())
        } else {
            Err(LinalgError::InvalidParameter(format!(
                "kernel parameters out of range: {self:?}"
            )))
        }
    }
}

/// `x^p` by repeated squaring (`x³ = x·x·x` exactly as written for p = 3).
#[inline]
fn powu(x: f64, p: u32) -> f64 {
    match p {
        0 => 1.0,
        1 => x,
        2 => x * x,
        3 => x * x * x,
        _ => x.powi(p as i32),
    }
}

/// Lanes of [`CompensatedSum::add_slice`].
const SUM_LANES: usize = 8;

/// `Sum2` in [`SUM_LANES`] interleaved lanes over `xs` (a whole number of
/// lane groups): each lane's running sum and accumulated `TwoSum` errors.
#[inline(always)]
fn sum2_lanes(xs: &[f64]) -> ([f64; SUM_LANES], [f64; SUM_LANES]) {
    let mut s = [0.0f64; SUM_LANES];
    let mut c = [0.0f64; SUM_LANES];
    for chunk in xs.chunks_exact(SUM_LANES) {
        for l in 0..SUM_LANES {
            let x = chunk[l];
            let t = s[l] + x;
            let z = t - s[l];
            c[l] += (s[l] - (t - z)) + (x - z);
            s[l] = t;
        }
    }
    (s, c)
}

/// Neumaier's compensated sum (Neumaier 1974, an improved Kahan–Babuška
/// summation): the error of the total is about one rounding of the result,
/// independent of the number of terms. Kernel sums for MMD² are large and
/// cancel (`within + within − 2·between`), so their rounding errors are
/// amplified by `Σ|k| / |MMD²|`; compensated sums keep that product small.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CompensatedSum {
    sum: f64,
    c: f64,
}

impl CompensatedSum {
    /// Adds one term.
    #[inline]
    pub fn add(&mut self, x: f64) {
        let t = self.sum + x;
        if self.sum.abs() >= x.abs() {
            self.c += (self.sum - t) + x;
        } else {
            self.c += (x - t) + self.sum;
        }
        self.sum = t;
    }

    /// Adds the terms of `xs`, in eight interleaved lanes that each run
    /// Ogita, Rump and Oishi's `Sum2` (*Accurate sum and dot product*, SIAM
    /// J. Sci. Comput. 26(6), 2005): per term Knuth's error-free `TwoSum`
    ///
    /// ```text
    /// t = s + x,  z = t − s,  e = (s − (t − z)) + (x − z)   (s + x = t + e exactly)
    /// s ← t,      c ← c + e
    /// ```
    ///
    /// Lane `l` takes the terms `x_{8q+l}`; the lanes' sums, then their
    /// corrections, are added to `self` in lane order, the tail term by term.
    /// Each lane's error is below `u·|s_l| + γ²_{n−1}·Σ|x|` (ibid., Prop. 4.5), the
    /// same quality as [`CompensatedSum::add`] term by term, but with no
    /// branch and eight independent chains the loop vectorizes (KID's sums
    /// went from ≈ 9 % to ≈ 1.2 % of a pass's cycles). The operations are fixed,
    /// so the result is the same bits whatever vector width runs them.
    pub fn add_slice(&mut self, xs: &[f64]) {
        struct Lanes<'a>(&'a [f64]);
        impl pulp::WithSimd for Lanes<'_> {
            type Output = ([f64; SUM_LANES], [f64; SUM_LANES]);
            #[inline(always)]
            fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
                sum2_lanes(self.0)
            }
        }
        let whole = xs.len() - xs.len() % SUM_LANES;
        // Compiled for the widest vector instructions the CPU has (`pulp`
        // runtime dispatch); the loop is plain, so the bits do not depend on it.
        let (s, c) = pulp::Arch::new().dispatch(Lanes(&xs[..whole]));
        for v in s {
            self.add(v);
        }
        for v in c {
            self.add(v);
        }
        for &x in &xs[whole..] {
            self.add(x);
        }
    }

    /// Adds another compensated sum (its total and its correction).
    #[inline]
    pub fn merge(&mut self, other: CompensatedSum) {
        self.add(other.sum);
        self.add(other.c);
    }

    /// The compensated total, rounded to one float64.
    #[inline]
    pub fn value(&self) -> f64 {
        self.sum + self.c
    }

    /// `(total / n)` as an unevaluated pair `hi + lo` (double-double): the
    /// remainder of the division is recovered exactly with a fused
    /// multiply-add, so the pair keeps about 100 bits of the quotient.
    #[inline]
    pub fn div_pair(&self, n: f64) -> (f64, f64) {
        let hi = self.sum / n;
        let r = (-hi).mul_add(n, self.sum); // exact: self.sum − hi·n
        (hi, (r + self.c) / n)
    }
}

/// The unbiased MMD² from compensated kernel sums of sets of `m` and `n` rows:
///
/// ```text
/// MMD²_u = Kxx/(m(m−1)) + Kyy/(n(n−1)) − 2 Kxy/(mn)
/// ```
///
/// with `Kxx = Σ_{i≠j} k(x_i, x_j)`, `Kyy = Σ_{i≠j} k(y_i, y_j)`,
/// `Kxy = Σ_{i,j} k(x_i, y_j)`. The three means are of order `k` while their
/// combination is often thousands of times smaller, so each mean is carried
/// as a double-double ([`CompensatedSum::div_pair`]) and the combination is
/// summed with compensation: the result is not limited by the float64
/// rounding of the means.
pub fn mmd2_unbiased_from_sums(
    kxx: CompensatedSum,
    kyy: CompensatedSum,
    kxy: CompensatedSum,
    m: usize,
    n: usize,
) -> f64 {
    let (mf, nf) = (m as f64, n as f64);
    let (a_hi, a_lo) = kxx.div_pair(mf * (mf - 1.0));
    let (b_hi, b_lo) = kyy.div_pair(nf * (nf - 1.0));
    let (c_hi, c_lo) = kxy.div_pair(mf * nf);
    let mut s = CompensatedSum::default();
    for v in [a_hi, b_hi, -2.0 * c_hi, a_lo, b_lo, -2.0 * c_lo] {
        s.add(v);
    }
    s.value()
}

/// The biased (V-statistic) MMD² from compensated kernel sums of sets of `m`
/// and `n` rows (Gretton et al. 2012, Eq. 5):
///
/// ```text
/// MMD²_b = (Kxx + Dx)/m² + (Kyy + Dy)/n² − 2 Kxy/(mn)
/// ```
///
/// with `Kxx = Σ_{i≠j} k(x_i, x_j)`, `Dx = Σ_i k(x_i, x_i)` (likewise for `y`)
/// and `Kxy = Σ_{i,j} k(x_i, y_j)`; the means are combined as in
/// [`mmd2_unbiased_from_sums`] (double-double, compensated).
pub fn mmd2_biased_from_sums(
    x: WithinSum,
    y: WithinSum,
    kxy: CompensatedSum,
    m: usize,
    n: usize,
) -> f64 {
    let (mf, nf) = (m as f64, n as f64);
    let mut kxx = x.off_diagonal;
    kxx.merge(x.diagonal);
    let mut kyy = y.off_diagonal;
    kyy.merge(y.diagonal);
    let (a_hi, a_lo) = kxx.div_pair(mf * mf);
    let (b_hi, b_lo) = kyy.div_pair(nf * nf);
    let (c_hi, c_lo) = kxy.div_pair(mf * nf);
    let mut s = CompensatedSum::default();
    for v in [a_hi, b_hi, -2.0 * c_hi, a_lo, b_lo, -2.0 * c_lo] {
        s.add(v);
    }
    s.value()
}

/// `Σ_{a≠b} K[idx_a, idx_b]` over the positions of a subset of a square kernel
/// matrix (the within-set sum of that subset; indices are assumed distinct),
/// compensated.
pub fn subset_sum_off_diagonal(k: ArrayView2<'_, f64>, idx: &[usize]) -> CompensatedSum {
    let mut total = CompensatedSum::default();
    for (a, &i) in idx.iter().enumerate() {
        let row = k.row(i);
        let mut s = CompensatedSum::default();
        for (b, &j) in idx.iter().enumerate() {
            if a != b {
                s.add(row[j]);
            }
        }
        total.merge(s);
    }
    total
}

/// `Σ_{a,b} K[rows_a, cols_b]` (the between-set sum of two subsets),
/// compensated.
pub fn subset_sum(k: ArrayView2<'_, f64>, rows: &[usize], cols: &[usize]) -> CompensatedSum {
    let mut total = CompensatedSum::default();
    for &i in rows {
        let row = k.row(i);
        let mut s = CompensatedSum::default();
        for &j in cols {
            s.add(row[j]);
        }
        total.merge(s);
    }
    total
}

/// `Σ_{i≠j} k(x_i, x_j)` and `Σ_i k(x_i, x_i)` of one set.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WithinSum {
    /// `Σ_{i≠j} k(x_i, x_j)` (both orders, i.e. twice the upper triangle).
    pub off_diagonal: CompensatedSum,
    /// `Σ_i k(x_i, x_i)`.
    pub diagonal: CompensatedSum,
}

/// Blocked kernel sums with bounded memory (see the [module
/// documentation](self)).
///
/// ```
/// # use gen_metrics_linalg::kernels::{Kernel, KernelSums};
/// # use ndarray::array;
/// let x = array![[1.0f32, 0.0], [0.0, 1.0]];
/// let sums = KernelSums::new(Kernel::kid(2));
/// // k(x0, x1) = (0/2 + 1)^3 = 1, counted in both orders
/// assert_eq!(sums.within(x.view()).unwrap().off_diagonal.value(), 2.0);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KernelSums {
    kernel: Kernel,
    /// Rows per block; `None`: [`block_rows_for_dim`] of the data.
    block_rows: Option<usize>,
}

/// One block of rows widened to float64, with squared norms if needed.
#[derive(Default)]
struct Block {
    x: Vec<f64>,
    rows: usize,
    sq: Vec<f64>,
}

/// The buffers one worker reuses from block pair to block pair: two widened
/// row blocks and one kernel block (`8 (2 r D + r²)` bytes,
/// [`block_memory_bytes`]).
#[derive(Default)]
struct PassScratch {
    a: Block,
    b: Block,
    g: Vec<f64>,
}

/// What one block pair `(I, J)` adds to a pass, merged by the caller in
/// block-pair order (so the totals do not depend on which worker ran it).
pub(crate) struct PairPart {
    /// Sum of the block's kernel values (the diagonal left out on a diagonal
    /// block of a within-set pass).
    off: CompensatedSum,
    /// The diagonal's sum, on a diagonal block of a within-set pass.
    diag: Option<CompensatedSum>,
    /// Whether the block stands for itself and its mirror `(J, I)` (an
    /// off-diagonal block of a within-set pass): merged twice.
    twice: bool,
    /// Per subset, the block's entries inside it (`None`: none).
    per: Vec<Option<CompensatedSum>>,
}

impl KernelSums {
    /// Sums of `kernel`, with the rows per block chosen from the data's
    /// dimension so one pass stays within [`BLOCK_MEMORY_BUDGET`]
    /// ([`block_rows_for_dim`]).
    pub fn new(kernel: Kernel) -> Self {
        KernelSums {
            kernel,
            block_rows: None,
        }
    }

    /// Fixed rows per block (memory [`block_memory_bytes`]); 0 restores the
    /// choice from the dimension.
    pub fn block_rows(mut self, rows: usize) -> Self {
        self.block_rows = (rows != 0).then_some(rows);
        self
    }

    /// The kernel.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    fn check<T: Copy + Into<f64> + Sync>(
        &self,
        what: &'static str,
        x: ArrayView2<'_, T>,
        min_rows: usize,
    ) -> Result<(), LinalgError> {
        self.kernel.validate()?;
        if x.nrows() < min_rows {
            return Err(LinalgError::TooFewRows {
                what,
                needed: min_rows,
                got: x.nrows(),
            });
        }
        if x.ncols() == 0 {
            return Err(LinalgError::InvalidParameter(format!(
                "{what}: zero feature dimensions"
            )));
        }
        if let Some((row, col)) = first_non_finite(x) {
            return Err(LinalgError::NonFinite { what, row, col });
        }
        Ok(())
    }

    /// Rows per block for `d` dimensions: the fixed size, or
    /// [`block_rows_for_dim`].
    fn rows_for(&self, d: usize) -> usize {
        self.block_rows.unwrap_or_else(|| block_rows_for_dim(d))
    }

    fn block<T: Copy + Into<f64> + Sync>(&self, x: ArrayView2<'_, T>, r0: usize) -> Block {
        let mut b = Block::default();
        self.block_into(x, r0, &mut b);
        b
    }

    /// Widens the block of rows starting at `r0` into `out`, reusing its
    /// buffers.
    fn block_into<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        r0: usize,
        out: &mut Block,
    ) {
        let d = x.ncols();
        let rows = self.rows_for(d).min(x.nrows() - r0);
        out.rows = rows;
        out.x.resize(rows * d, 0.0);
        out.x.par_chunks_mut(d).enumerate().for_each(|(i, o)| {
            for (o, v) in o.iter_mut().zip(x.row(r0 + i).iter()) {
                *o = (*v).into();
            }
        });
        out.sq.clear();
        if self.kernel.needs_norms() {
            out.sq.par_extend(
                out.x
                    .par_chunks(d)
                    .map(|r| r.iter().map(|v| v * v).sum::<f64>()),
            );
        }
    }

    /// Gram block `G = A Bᵀ` (row-major `a.rows × b.rows`) into `g`.
    fn gram(&self, a: &Block, b: &Block, d: usize, g: &mut Vec<f64>, par: Par) {
        g.resize(a.rows * b.rows, 0.0);
        let lhs = MatRef::from_row_major_slice(&a.x, a.rows, d);
        let rhs = MatRef::from_row_major_slice(&b.x, b.rows, d).transpose();
        let dst = MatMut::from_row_major_slice_mut(&mut g[..], a.rows, b.rows);
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, 1.0, par);
    }

    /// `Σ_{i≠j} k(x_i, x_j)` and `Σ_i k(x_i, x_i)` over the rows of `x`
    /// (blocks `J ≥ I` only; off-diagonal blocks count twice).
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] for an empty set, [`LinalgError::NonFinite`],
    /// [`LinalgError::InvalidParameter`] for zero columns or bad kernel
    /// parameters, [`LinalgError::Numerical`] for a non-finite sum.
    pub fn within<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
    ) -> Result<WithinSum, LinalgError> {
        const WHAT: &str = "kernel sum (within)";
        self.check(WHAT, x, 1)?;
        Ok(self.within_pass(WHAT, x, &[])?.0)
    }

    /// The within-set pass: the total ([`KernelSums::within`]) and, for each
    /// sorted index list in `subsets`, `Σ_{i≠j ∈ S} k(x_i, x_j)` from the same
    /// kernel blocks (each block's kernel values are formed once and read by
    /// the total and by every subset).
    fn within_pass<T: Copy + Into<f64> + Sync>(
        &self,
        what: &'static str,
        x: ArrayView2<'_, T>,
        subsets: &[Vec<usize>],
    ) -> Result<(WithinSum, Vec<CompensatedSum>), LinalgError> {
        let (off, diag, per) =
            merge_parts(self.pairs_pass(x, None, subsets, subsets), subsets.len());
        finite(what, off.value())?;
        finite(what, diag.value())?;
        Ok((
            WithinSum {
                off_diagonal: off,
                diagonal: diag,
            },
            per,
        ))
    }

    /// The block pairs of one pass and what each adds, in block-pair order:
    /// `(I, J ≥ I)` of `x` with itself when `y` is `None`, every `(I, J)` of
    /// `x` and `y` otherwise. Block pairs run in parallel, one per worker with
    /// a sequential GEMM each (on 2 cores about 1.3× the rate of one GEMM
    /// split across the threads, docs/benchmarks.md), unless there are too
    /// few pairs to keep every thread busy; faer's products are bitwise the
    /// same either way, and the caller merges the parts in order, so the sums
    /// do not depend on the number of threads. Memory: one [`PassScratch`]
    /// per worker.
    fn pairs_pass<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: Option<ArrayView2<'_, T>>,
        sx: &[Vec<usize>],
        sy: &[Vec<usize>],
    ) -> Vec<PairPart> {
        let d = x.ncols();
        let rows = self.rows_for(d);
        let starts = |n: usize| (0..n).step_by(rows).collect::<Vec<usize>>();
        let si = starts(x.nrows());
        let pairs: Vec<(usize, usize)> = match y {
            None => si
                .iter()
                .enumerate()
                .flat_map(|(k, &i)| si[k..].iter().map(move |&j| (i, j)))
                .collect(),
            Some(y) => {
                let sj = starts(y.nrows());
                si.iter()
                    .flat_map(|&i| sj.iter().map(move |&j| (i, j)))
                    .collect()
            }
        };
        let threads = rayon::current_num_threads();
        let par = if pairs.len() >= 2 * threads {
            Par::Seq
        } else {
            faer::get_global_parallelism()
        };
        pairs
            .par_iter()
            .map_init(PassScratch::default, |scr, &(i0, j0)| {
                let PassScratch { a, b: other, g } = scr;
                self.block_into(x, i0, a);
                let a: &Block = a;
                let within = y.is_none();
                let diagonal = within && i0 == j0;
                let b: &Block = if diagonal {
                    a
                } else {
                    self.block_into(y.unwrap_or(x), j0, other);
                    other
                };
                self.gram(a, b, d, g, par);
                pair_part(
                    self.kernel,
                    (&a.sq, &b.sq),
                    g,
                    (i0, a.rows),
                    (j0, b.rows),
                    within,
                    (sx, sy),
                )
            })
            .collect()
    }

    /// `Σ_{i,j} k(x_i, y_j)`.
    ///
    /// # Errors
    /// As [`KernelSums::within`], plus [`LinalgError::DimensionMismatch`].
    pub fn between<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<CompensatedSum, LinalgError> {
        const WHAT: &str = "kernel sum (between)";
        self.check_pair(WHAT, x, y, 1)?;
        Ok(self.between_pass(WHAT, x, y, &[], &[])?.0)
    }

    fn check_pair<T: Copy + Into<f64> + Sync>(
        &self,
        what: &'static str,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        min_rows: usize,
    ) -> Result<(), LinalgError> {
        self.check(what, x, min_rows)?;
        self.check(what, y, min_rows)?;
        if x.ncols() != y.ncols() {
            return Err(LinalgError::DimensionMismatch {
                what,
                left: x.ncols(),
                right: y.ncols(),
            });
        }
        Ok(())
    }

    /// The between-set pass: the total ([`KernelSums::between`]) and, for
    /// each pair of sorted index lists `(sx[s], sy[s])`, `Σ_{i ∈ Sx, j ∈ Sy}
    /// k(x_i, y_j)` from the same kernel blocks.
    fn between_pass<T: Copy + Into<f64> + Sync>(
        &self,
        what: &'static str,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        sx: &[Vec<usize>],
        sy: &[Vec<usize>],
    ) -> Result<(CompensatedSum, Vec<CompensatedSum>), LinalgError> {
        let (total, _, per) = merge_parts(self.pairs_pass(x, Some(y), sx, sy), sx.len());
        finite(what, total.value())?;
        Ok((total, per))
    }

    /// The full-set sums of `x` and `y` and the sums of every subset pair in
    /// **one** pass over the kernel blocks: row `s` of `subsets_x` (of
    /// `subsets_y`) holds the row indices of subset `s` of `x` (of `y`), all
    /// subsets of a side of the same size. Each kernel block `k(X_I, X_J)`
    /// (`J ≥ I`), `k(Y_I, Y_J)` and `k(X_I, Y_J)` is formed once and feeds
    /// the totals and, for every subset, the entries whose row and column
    /// both belong to it:
    ///
    /// ```text
    /// Kxx_s = Σ_{i≠j ∈ Sx_s} k(x_i, x_j),  Kyy_s = Σ_{i≠j ∈ Sy_s} k(y_i, y_j),
    /// Kxy_s = Σ_{i ∈ Sx_s, j ∈ Sy_s} k(x_i, y_j)
    /// ```
    ///
    /// This is what KID needs when it reports both the subset mean (100
    /// subsets of 1000 rows, Bińkowski et al. 2018; clean-fid
    /// `kernel_distance`) and the full-set value: the subsets then cost no
    /// GEMM of their own. The totals are bit-identical to
    /// [`KernelSums::within`] / [`KernelSums::between`]; the subset sums are
    /// compensated like them (summation order differs from summing the
    /// subset's own rows, by rounding only).
    ///
    /// # Errors
    /// As [`KernelSums::between`]; [`LinalgError::InvalidParameter`] for an
    /// index out of range or repeated within a subset, or subset arrays with
    /// different numbers of rows.
    pub fn with_subsets<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
        subsets_x: ArrayView2<'_, usize>,
        subsets_y: ArrayView2<'_, usize>,
    ) -> Result<SubsetKernelSums, LinalgError> {
        const WHAT: &str = "kernel sums (full set and subsets)";
        self.check_pair(WHAT, x, y, 1)?;
        let (sx, sy) = sorted_subset_pairs(WHAT, (subsets_x, x.nrows()), (subsets_y, y.nrows()))?;
        let (within_x, subset_within_x) = self.within_pass(WHAT, x, &sx)?;
        let (within_y, subset_within_y) = self.within_pass(WHAT, y, &sy)?;
        let (between, subset_between) = self.between_pass(WHAT, x, y, &sx, &sy)?;
        Ok(SubsetKernelSums {
            within_x,
            within_y,
            between,
            subset_within_x,
            subset_within_y,
            subset_between,
        })
    }

    /// The full kernel matrix `K_ij = k(x_i, y_j)` (`m × n` float64: memory
    /// `8mn` bytes, for callers that reuse it, e.g. many KID subsets).
    ///
    /// # Errors
    /// As [`KernelSums::between`].
    pub fn matrix<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<Array2<f64>, LinalgError> {
        const WHAT: &str = "kernel matrix";
        self.check(WHAT, x, 1)?;
        self.check(WHAT, y, 1)?;
        if x.ncols() != y.ncols() {
            return Err(LinalgError::DimensionMismatch {
                what: WHAT,
                left: x.ncols(),
                right: y.ncols(),
            });
        }
        let (m, n, d) = (x.nrows(), y.nrows(), x.ncols());
        let mut out = Array2::<f64>::zeros((m, n));
        let mut g = Vec::new();
        let mut i0 = 0;
        while i0 < m {
            let a = self.block(x, i0);
            let mut j0 = 0;
            while j0 < n {
                let b = self.block(y, j0);
                self.gram(&a, &b, d, &mut g, faer::get_global_parallelism());
                eval_kernel_block(self.kernel, &a.sq, &b.sq, &mut g, b.rows);
                let mut dst =
                    out.slice_axis_mut(ndarray::Axis(0), ndarray::Slice::from(i0..i0 + a.rows));
                dst.axis_iter_mut(ndarray::Axis(0))
                    .into_par_iter()
                    .enumerate()
                    .for_each(|(i, mut row)| {
                        for (jj, &v) in g[i * b.rows..(i + 1) * b.rows].iter().enumerate() {
                            row[j0 + jj] = v;
                        }
                    });
                j0 += b.rows;
            }
            i0 += a.rows;
        }
        if out.iter().any(|v| !v.is_finite()) {
            return Err(LinalgError::Numerical {
                what: WHAT,
                detail: "non-finite kernel value".into(),
            });
        }
        Ok(out)
    }

    /// The unbiased MMD² estimate
    /// `within(X)/(m(m−1)) + within(Y)/(n(n−1)) − 2 between(X, Y)/(mn)`.
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] unless both sets have 2 rows; as
    /// [`KernelSums::between`].
    pub fn mmd2_unbiased<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<f64, LinalgError> {
        const WHAT: &str = "unbiased MMD^2";
        self.check(WHAT, x, 2)?;
        self.check(WHAT, y, 2)?;
        let kxy = self.between(x, y)?;
        let kxx = self.within(x)?.off_diagonal;
        let kyy = self.within(y)?.off_diagonal;
        let v = mmd2_unbiased_from_sums(kxx, kyy, kxy, x.nrows(), y.nrows());
        finite(WHAT, v)?;
        Ok(v)
    }
}

impl KernelSums {
    /// The biased (V-statistic) MMD² estimate over all pairs, diagonal
    /// included: `(within(X) + diag(X))/m² + (within(Y) + diag(Y))/n² −
    /// 2 between(X, Y)/(mn)` ([`mmd2_biased_from_sums`]).
    ///
    /// # Errors
    /// As [`KernelSums::between`].
    pub fn mmd2_biased<T: Copy + Into<f64> + Sync>(
        &self,
        x: ArrayView2<'_, T>,
        y: ArrayView2<'_, T>,
    ) -> Result<f64, LinalgError> {
        const WHAT: &str = "biased MMD^2";
        let kxy = self.between(x, y)?;
        let wx = self.within(x)?;
        let wy = self.within(y)?;
        let v = mmd2_biased_from_sums(wx, wy, kxy, x.nrows(), y.nrows());
        finite(WHAT, v)?;
        Ok(v)
    }
}

/// The kernel sums of [`KernelSums::with_subsets`]: full sets and, per
/// subset `s`, `Kxx_s`, `Kyy_s`, `Kxy_s`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetKernelSums {
    /// Within-set sums of all of `x`.
    pub within_x: WithinSum,
    /// Within-set sums of all of `y`.
    pub within_y: WithinSum,
    /// `Σ_{i,j} k(x_i, y_j)` over all rows.
    pub between: CompensatedSum,
    /// `Kxx_s = Σ_{i≠j ∈ Sx_s} k(x_i, x_j)` per subset.
    pub subset_within_x: Vec<CompensatedSum>,
    /// `Kyy_s = Σ_{i≠j ∈ Sy_s} k(y_i, y_j)` per subset.
    pub subset_within_y: Vec<CompensatedSum>,
    /// `Kxy_s = Σ_{i ∈ Sx_s, j ∈ Sy_s} k(x_i, y_j)` per subset.
    pub subset_between: Vec<CompensatedSum>,
}

/// Replaces the Gram block `g` (row-major, `sq_a.len()`-independent: `nb`
/// columns) by the kernel values `k(a_i, b_j)`; `sq_a` / `sq_b` are the
/// squared norms of the block's rows and columns (empty when the kernel does
/// not use them).
fn eval_kernel_block(kernel: Kernel, sq_a: &[f64], sq_b: &[f64], g: &mut [f64], nb: usize) {
    // KID's cubic kernel as a straight loop that vectorizes: the same
    // operations as `Kernel::eval` (`x = γ·dot + c₀`, `x·x·x`), so the same bits.
    if let Kernel::Polynomial {
        gamma,
        coef0,
        degree: 3,
    } = kernel
    {
        g.par_chunks_mut(nb).for_each(|row| {
            for v in row {
                let x = gamma * *v + coef0;
                *v = x * x * x;
            }
        });
        return;
    }
    let sq = |v: &[f64], i: usize| v.get(i).copied().unwrap_or(0.0);
    g.par_chunks_mut(nb).enumerate().for_each(|(i, row)| {
        let sa = sq(sq_a, i);
        for (j, v) in row.iter_mut().enumerate() {
            *v = kernel.eval(*v, sa, sq(sq_b, j));
        }
    });
}

/// Sum of a block of kernel values `kv` (`nb` columns), row sums
/// ([`CompensatedSum::add_slice`]) added in row order. The diagonal of a
/// within-set diagonal block has been taken out by [`take_diagonal`].
fn block_sum(nb: usize, kv: &[f64]) -> CompensatedSum {
    let rows: Vec<CompensatedSum> = kv
        .par_chunks(nb)
        .map(|row| {
            let mut s = CompensatedSum::default();
            s.add_slice(row);
            s
        })
        .collect();
    let mut off = CompensatedSum::default();
    for rs in rows {
        off.merge(rs);
    }
    off
}

/// The diagonal `k(x_i, x_i)` of a square kernel block (`nb` columns), summed
/// in row order, and set to zero in the block: the sums over `i ≠ j` then add
/// the whole block (adding `0.0` leaves a compensated sum unchanged).
fn take_diagonal(nb: usize, kv: &mut [f64]) -> CompensatedSum {
    let mut diag = CompensatedSum::default();
    for (i, row) in kv.chunks_mut(nb).enumerate() {
        diag.add(row[i]);
        row[i] = 0.0;
    }
    diag
}

/// What the Gram block `g = A_I B_Jᵀ` (rows `[i0, i0 + ni)`, columns
/// `[j0, j0 + nj)`, row-major; overwritten by the kernel values) adds to a
/// pass: its kernel sum, its diagonal on a diagonal block of a within-set
/// pass (`within` and `i0 == j0`), and per subset pair `(rows[s], cols[s])`
/// the entries inside it. The one place a kernel block becomes sums, for
/// [`KernelSums`]' own passes and for the distance engine's kernel tap
/// (`pairwise::kernel_sums_with_subsets`).
pub(crate) fn pair_part(
    kernel: Kernel,
    (sq_a, sq_b): (&[f64], &[f64]),
    g: &mut [f64],
    (i0, ni): (usize, usize),
    (j0, nj): (usize, usize),
    within: bool,
    (rows, cols): (&[Vec<usize>], &[Vec<usize>]),
) -> PairPart {
    let diagonal = within && i0 == j0;
    let kv = &mut g[..ni * nj];
    eval_kernel_block(kernel, sq_a, sq_b, kv, nj);
    let diag = diagonal.then(|| take_diagonal(nj, kv));
    PairPart {
        off: block_sum(nj, kv),
        diag,
        twice: within && !diagonal,
        per: subset_block_sums(rows, cols, (i0, ni), (j0, nj), kv),
    }
}

/// The totals of one pass from its parts in block-pair order: the kernel
/// sum, the diagonal (within-set passes) and the per-subset sums.
pub(crate) fn merge_parts(
    parts: impl IntoIterator<Item = PairPart>,
    n_subsets: usize,
) -> (CompensatedSum, CompensatedSum, Vec<CompensatedSum>) {
    let mut off = CompensatedSum::default();
    let mut diag = CompensatedSum::default();
    let mut per = vec![CompensatedSum::default(); n_subsets];
    for part in parts {
        merge_part(&part, &mut off, &mut per);
        if let Some(dg) = part.diag {
            diag.merge(dg);
        }
    }
    (off, diag, per)
}

/// Subset pairs `(subsets_x[s], subsets_y[s])` over sets of `nx` and `ny`
/// rows, each row sorted ([`sorted_subsets`]); both arrays must have the same
/// number of subsets.
#[allow(clippy::type_complexity)]
pub(crate) fn sorted_subset_pairs(
    what: &'static str,
    (subsets_x, nx): (ArrayView2<'_, usize>, usize),
    (subsets_y, ny): (ArrayView2<'_, usize>, usize),
) -> Result<(Vec<Vec<usize>>, Vec<Vec<usize>>), LinalgError> {
    if subsets_x.nrows() != subsets_y.nrows() {
        return Err(LinalgError::InvalidParameter(format!(
            "{what}: {} subsets of the first set but {} of the second",
            subsets_x.nrows(),
            subsets_y.nrows()
        )));
    }
    Ok((
        sorted_subsets(what, subsets_x, nx)?,
        sorted_subsets(what, subsets_y, ny)?,
    ))
}

/// Each row of `subsets` sorted, checked in range and free of repeats.
pub(crate) fn sorted_subsets(
    what: &'static str,
    subsets: ArrayView2<'_, usize>,
    n: usize,
) -> Result<Vec<Vec<usize>>, LinalgError> {
    subsets
        .outer_iter()
        .map(|row| {
            let mut v: Vec<usize> = row.to_vec();
            v.sort_unstable();
            if v.last().is_some_and(|&i| i >= n) {
                return Err(LinalgError::InvalidParameter(format!(
                    "{what}: subset index out of range for {n} rows"
                )));
            }
            if v.windows(2).any(|w| w[0] == w[1]) {
                return Err(LinalgError::InvalidParameter(format!(
                    "{what}: an index repeats within a subset"
                )));
            }
            Ok(v)
        })
        .collect()
}

/// The part of a sorted index list inside `[start, start + len)`.
fn in_range(list: &[usize], (start, len): (usize, usize)) -> &[usize] {
    let lo = list.partition_point(|&i| i < start);
    let hi = list.partition_point(|&i| i < start + len);
    &list[lo..hi]
}

/// Merges one block pair's part into a pass's total and subset sums (twice
/// for a block that also stands for its mirror; doubling by two merges keeps
/// the order the sequential pass had).
fn merge_part(part: &PairPart, total: &mut CompensatedSum, per: &mut [CompensatedSum]) {
    let times = if part.twice { 2 } else { 1 };
    for _ in 0..times {
        total.merge(part.off);
    }
    for (acc, s) in per.iter_mut().zip(&part.per) {
        if let Some(s) = s {
            for _ in 0..times {
                acc.merge(*s);
            }
        }
    }
}

/// For each subset `s`, the sum of the entries of the kernel block `kv` (rows
/// `[i0, i0 + ni)`, columns `[j0, j0 + nj)`, row-major) whose row is in
/// `rows[s]` and column in `cols[s]` (`None` when no entry is); a within-set
/// diagonal block's diagonal is already zero ([`take_diagonal`]). Each row's
/// entries are gathered into a buffer and added with
/// [`CompensatedSum::add_slice`], rows in order; subsets in parallel.
fn subset_block_sums(
    rows: &[Vec<usize>],
    cols: &[Vec<usize>],
    (i0, ni): (usize, usize),
    (j0, nj): (usize, usize),
    kv: &[f64],
) -> Vec<Option<CompensatedSum>> {
    rows.par_iter()
        .zip(cols.par_iter())
        .map_init(Vec::new, |buf: &mut Vec<f64>, (r, c)| {
            let (r, c) = (in_range(r, (i0, ni)), in_range(c, (j0, nj)));
            if r.is_empty() || c.is_empty() {
                return None;
            }
            let mut s = CompensatedSum::default();
            for &i in r {
                let row = &kv[(i - i0) * nj..(i - i0 + 1) * nj];
                buf.clear();
                buf.extend(c.iter().map(|&j| row[j - j0]));
                s.add_slice(buf);
            }
            Some(s)
        })
        .collect()
}

pub(crate) fn finite(what: &'static str, v: f64) -> Result<(), LinalgError> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(LinalgError::Numerical {
            what,
            detail: format!("non-finite kernel sum {v}"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    fn data(n: usize, d: usize, seed: u64) -> Array2<f32> {
        // Small deterministic pseudo-random values.
        let mut s = seed;
        Array2::from_shape_fn((n, d), |_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        })
    }

    fn naive(k: Kernel, x: &Array2<f32>, y: &Array2<f32>, skip_diag: bool) -> f64 {
        let mut s = 0.0;
        for (i, a) in x.outer_iter().enumerate() {
            for (j, b) in y.outer_iter().enumerate() {
                if skip_diag && i == j {
                    continue;
                }
                let dot: f64 = a
                    .iter()
                    .zip(b.iter())
                    .map(|(p, q)| f64::from(*p) * f64::from(*q))
                    .sum();
                let sa: f64 = a.iter().map(|p| f64::from(*p).powi(2)).sum();
                let sb: f64 = b.iter().map(|p| f64::from(*p).powi(2)).sum();
                s += k.eval(dot, sa, sb);
            }
        }
        s
    }

    #[test]
    fn blocked_equals_naive_for_odd_block_sizes() {
        let x = data(37, 5, 1);
        let y = data(23, 5, 2);
        for k in [
            Kernel::kid(5),
            Kernel::Rbf { gamma: 0.7 },
            Kernel::Polynomial {
                gamma: 0.3,
                coef0: 0.5,
                degree: 4,
            },
        ] {
            for bs in [1, 4, 7, 100] {
                let s = KernelSums::new(k).block_rows(bs);
                let w = s.within(x.view()).unwrap().off_diagonal.value();
                let want = naive(k, &x, &x, true);
                assert!((w - want).abs() <= 1e-12 * want.abs(), "{k:?} {bs}");
                let b = s.between(x.view(), y.view()).unwrap().value();
                let want = naive(k, &x, &y, false);
                assert!((b - want).abs() <= 1e-12 * want.abs(), "{k:?} {bs}");
                let m = s.matrix(x.view(), y.view()).unwrap();
                assert!((m.sum() - want).abs() <= 1e-12 * want.abs());
            }
        }
    }

    #[test]
    fn block_rows_keep_a_pass_within_the_memory_budget() {
        // Every registry encoder keeps the full block (and so its numbers).
        for d in [512, 768, 1024, 2023, 2048, 3584] {
            assert_eq!(block_rows_for_dim(d), DEFAULT_BLOCK_ROWS, "{d}");
        }
        assert!(block_rows_for_dim(3585) < DEFAULT_BLOCK_ROWS);
        for d in [1, 100, 3585, 4096, 16_384, 65_536, 268_203] {
            let r = block_rows_for_dim(d);
            assert!(
                r >= MIN_BLOCK_ROWS && r.is_multiple_of(MIN_BLOCK_ROWS),
                "{d}: {r}"
            );
            // Within the budget, unless even the floor exceeds it.
            assert!(
                block_memory_bytes(r, d) <= BLOCK_MEMORY_BUDGET || r == MIN_BLOCK_ROWS,
                "{d}: {r}"
            );
            // The largest such size.
            if r < DEFAULT_BLOCK_ROWS {
                assert!(block_memory_bytes(r + MIN_BLOCK_ROWS, d) > BLOCK_MEMORY_BUDGET);
            }
        }
        // Raw 299 × 299 × 3 pixels: the floor, about 69 MB instead of 4.4 GB.
        assert_eq!(block_rows_for_dim(268_203), MIN_BLOCK_ROWS);
        assert!(block_memory_bytes(DEFAULT_BLOCK_ROWS, 268_203) > 4_000_000_000);
        assert!(block_memory_bytes(MIN_BLOCK_ROWS, 268_203) < 70_000_000);
    }

    #[test]
    fn the_default_block_size_follows_the_dimension() {
        // 100 + 60 rows in 70,000 dimensions: 48 rows per block (budget
        // rule), so several blocks; the sums equal an explicit 48-row
        // blocking exactly and the naive sums to rounding.
        let d = 70_000;
        assert_eq!(block_rows_for_dim(d), 48);
        let x = data(100, d, 3);
        let y = data(60, d, 4);
        let k = Kernel::kid(d);
        let auto = KernelSums::new(k);
        let fixed = KernelSums::new(k).block_rows(48);
        let w = auto.within(x.view()).unwrap().off_diagonal.value();
        assert_eq!(w, fixed.within(x.view()).unwrap().off_diagonal.value());
        let want = naive(k, &x, &x, true);
        assert!((w - want).abs() <= 1e-12 * want.abs(), "{w} {want}");
        let b = auto.between(x.view(), y.view()).unwrap().value();
        assert_eq!(b, fixed.between(x.view(), y.view()).unwrap().value());
        let want = naive(k, &x, &y, false);
        assert!((b - want).abs() <= 1e-12 * want.abs(), "{b} {want}");
    }

    #[test]
    fn biased_mmd_equals_naive() {
        let x = data(13, 4, 7);
        let y = data(9, 4, 8);
        let k = Kernel::Rbf { gamma: 0.3 };
        let s = KernelSums::new(k).block_rows(5);
        let (m, n) = (13.0, 9.0);
        let want = naive(k, &x, &x, false) / (m * m) + naive(k, &y, &y, false) / (n * n)
            - 2.0 * naive(k, &x, &y, false) / (m * n);
        let got = s.mmd2_biased(x.view(), y.view()).unwrap();
        assert!(
            (got - want).abs() <= 1e-13 * want.abs().max(1e-3),
            "{got} {want}"
        );
    }

    #[test]
    fn errors() {
        let s = KernelSums::new(Kernel::kid(3));
        let e = Array2::<f32>::zeros((0, 3));
        assert!(matches!(
            s.within(e.view()),
            Err(LinalgError::TooFewRows { .. })
        ));
        let x = data(4, 3, 3);
        let y = data(4, 2, 4);
        assert!(matches!(
            s.between(x.view(), y.view()),
            Err(LinalgError::DimensionMismatch { .. })
        ));
        let mut z = data(4, 3, 5);
        z[[2, 1]] = f32::NAN;
        assert!(matches!(
            s.within(z.view()),
            Err(LinalgError::NonFinite { row: 2, col: 1, .. })
        ));
        assert!(
            KernelSums::new(Kernel::Rbf { gamma: -1.0 })
                .within(x.view())
                .is_err()
        );
        assert!(matches!(
            s.mmd2_unbiased(
                x.view(),
                x.slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..1))
            ),
            Err(LinalgError::TooFewRows { .. })
        ));
    }

    #[test]
    fn subset_sums_from_the_full_pass_equal_the_subsets_own_sums() {
        // Blocks of 7 rows: subsets straddle block edges, off-diagonal
        // blocks are mirrored.
        let x = data(23, 5, 1);
        let y = data(19, 5, 2);
        let sums = KernelSums::new(Kernel::kid(5)).block_rows(7);
        let sx = ndarray::array![[0usize, 22, 7, 8, 3], [21, 1, 14, 15, 6]];
        let sy = ndarray::array![[18usize, 0, 6, 7, 13], [2, 3, 4, 17, 9]];
        let got = sums
            .with_subsets(x.view(), y.view(), sx.view(), sy.view())
            .unwrap();
        assert_eq!(got.within_x, sums.within(x.view()).unwrap());
        assert_eq!(got.within_y, sums.within(y.view()).unwrap());
        assert_eq!(got.between, sums.between(x.view(), y.view()).unwrap());
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-13 * b.abs(), "{a} vs {b}");
        for s in 0..2 {
            let xs = x.select(ndarray::Axis(0), &sx.row(s).to_vec());
            let ys = y.select(ndarray::Axis(0), &sy.row(s).to_vec());
            close(
                got.subset_within_x[s].value(),
                sums.within(xs.view()).unwrap().off_diagonal.value(),
            );
            close(
                got.subset_within_y[s].value(),
                sums.within(ys.view()).unwrap().off_diagonal.value(),
            );
            close(
                got.subset_between[s].value(),
                sums.between(xs.view(), ys.view()).unwrap().value(),
            );
        }
        let bad = ndarray::array![[0usize, 0, 1, 2, 3], [4, 5, 6, 7, 8]];
        assert!(matches!(
            sums.with_subsets(x.view(), y.view(), bad.view(), sy.view()),
            Err(LinalgError::InvalidParameter(_))
        ));
    }

    /// Terms `m·2^e` with `|m| < 2^20`, `e ∈ [-40, 40]`: their exact sum is an
    /// integer multiple of `2^-40`, kept in an `i128`.
    fn exact_sum(xs: &[f64]) -> f64 {
        let total: i128 = xs.iter().map(|&x| (x * 2f64.powi(40)) as i128).sum();
        total as f64 / 2f64.powi(40)
    }

    #[test]
    fn lane_sums_are_exact_to_one_rounding_where_plain_sums_fail() {
        // Large terms that cancel in other lanes, small ones in between: a
        // plain float64 sum loses the small terms entirely.
        let mut xs = Vec::new();
        for k in 0..203 {
            let big = 2f64.powi(40) * if k % 3 == 0 { 1.0 } else { -0.5 };
            xs.extend_from_slice(&[big, 2f64.powi(-40) * f64::from(k), 3.0, -big]);
        }
        let exact = exact_sum(&xs);
        let plain: f64 = xs.iter().sum();
        assert_ne!(plain, exact);
        let mut s = CompensatedSum::default();
        s.add_slice(&xs);
        assert_eq!(s.value(), exact);
        // The tail (len % 8 terms) and an existing total are included.
        let mut t = CompensatedSum::default();
        t.add(0.25);
        t.add_slice(&xs[..xs.len() - 5]);
        assert_eq!(t.value(), exact_sum(&xs[..xs.len() - 5]) + 0.25);
    }

    proptest::proptest! {
        #[test]
        fn lane_sums_agree_with_the_exact_sum(
            terms in proptest::collection::vec((-(1i32 << 20)..(1i32 << 20), -40i32..=40), 0..300)
        ) {
            let xs: Vec<f64> = terms.iter().map(|&(m, e)| f64::from(m) * 2f64.powi(e)).collect();
            let exact = exact_sum(&xs);
            let mut s = CompensatedSum::default();
            s.add_slice(&xs);
            let mut one_by_one = CompensatedSum::default();
            xs.iter().for_each(|&x| one_by_one.add(x));
            // Sum2's bound: u·|S| + γ²_{n−1}·Σ|x| (Ogita, Rump, Oishi 2005, Prop. 4.5).
            let u = f64::EPSILON / 2.0;
            let abs: f64 = xs.iter().map(|x| x.abs()).sum();
            let n = xs.len() as f64;
            let bound = u * exact.abs() + (n * u) * (n * u) * abs * 4.0;
            proptest::prop_assert!((s.value() - exact).abs() <= bound, "{} vs {exact}", s.value());
            proptest::prop_assert!((one_by_one.value() - exact).abs() <= bound);
            // The dispatched (widest vector unit) lanes give the bits of the
            // same loop compiled for the baseline CPU.
            let whole = xs.len() - xs.len() % SUM_LANES;
            let (ls, lc) = sum2_lanes(&xs[..whole]);
            let mut baseline = CompensatedSum::default();
            ls.iter().chain(&lc).chain(&xs[whole..]).for_each(|&x| baseline.add(x));
            proptest::prop_assert_eq!(s, baseline);
        }
    }
}
