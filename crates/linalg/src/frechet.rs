//! The Fréchet distance between two Gaussians, without a matrix square root.
//!
//! # Formula
//!
//! For `N(μ₁, Σ₁)` and `N(μ₂, Σ₂)` (Dowson & Landau 1982; used as FID by
//! Heusel et al. 2017, "GANs trained by a two time-scale update rule converge
//! to a local Nash equilibrium"):
//!
//! ```text
//! d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½
//! ```
//!
//! pytorch-fid (`calculate_frechet_distance`) evaluates the last term as
//! `tr sqrtm(Σ₁ Σ₂)` with `scipy.linalg.sqrtm` (a complex Schur
//! decomposition of a non-symmetric matrix). No matrix square root is needed:
//! for any factorisations `Σ₁ = F₁F₁ᵀ`, `Σ₂ = F₂F₂ᵀ` the eigenvalues of
//! `Σ₁Σ₂` are the squared singular values of `F₁ᵀF₂` and the eigenvalues of the
//! symmetric positive semi-definite `F₁ᵀ Σ₂ F₁`, so
//!
//! ```text
//! tr (Σ₁^½ Σ₂ Σ₁^½)^½ = Σ_k √λ_k(F₁ᵀ Σ₂ F₁) = Σ_k σ_k(F₁ᵀ F₂).
//! ```
//!
//! # Branches ([`FrechetBranch`])
//!
//! * **Cholesky** — `F₁ = L = chol(Σ₁)`; `tr√ = Σ √max(λ, 0)` over the
//!   eigenvalues of `Lᵀ Σ₂ L` (eigenvalues only, by a two-stage
//!   tridiagonalisation whose `O(D³)` work is all matrix–matrix products). The
//!   fast path for full-rank covariances (`N > D`). If `Σ₁` is not numerically
//!   positive definite, `Σ₂` is tried (the trace is symmetric in the two).
//! * **SymmetricEigen** — `Σ₁ = V diag(w) Vᵀ` (eigh), negative `w` clamped to
//!   0, `F₁ = V diag(√w)`; then as above. Works for singular covariances; this is
//!   the route of the conformance key `fd_eigh_f64` (`Σ₁^½ Σ₂ Σ₁^½` has the same
//!   eigenvalues as `F₁ᵀ Σ₂ F₁`).
//! * **GramSvd** — from raw features when both sets have `N ≤ D`:
//!   `F = X_cᵀ/√(N − 1)`, so `tr√ = Σ σ_k(X_c Y_cᵀ) / √((n₁−1)(n₂−1))`, an
//!   `n₁ × n₂` singular value problem (the conformance key `fd_gram_svd_f64`).
//! * **FactorSvd** — one side from raw features with `N ≤ D`, the other from
//!   its covariance: `tr√ = Σ σ_k(X_c F₂) / √(n₁ − 1)` with `F₂` the Cholesky
//!   (or clamped-eigen) factor of `Σ₂`.
//!
//! # What happens when `N < D`
//!
//! A covariance estimated from `N` rows has rank at most `N − 1`; for `N ≤ D`
//! it is singular, `chol` fails (or produces pivots at round-off level) and
//! `Σ₁Σ₂` has at least `D − N + 1` eigenvalues that are exactly zero in exact
//! arithmetic. Every route that decomposes a `D × D` matrix (pytorch-fid's
//! `sqrtm`, eigh, eigvals, and the Cholesky/SymmetricEigen branches here)
//! computes those zeros as `±ε‖Σ‖`, and `√(ε‖Σ‖)` is `O(√ε)`: such values are
//! only accurate to about `1e-8` relative, and the negative ones are clamped to
//! 0 (counted in [`FrechetResult::clamped_negative_eigs`]). The SVD branches
//! never square the small singular values, so they are accurate to about
//! `1e-15` relative; [`FrechetDistance::between_features`] takes them
//! automatically when `N ≤ D`.
//!
//! # Rounding and the sign of the result
//!
//! `d²` is a squared distance, never negative for covariances; the computed
//! value of identical inputs is `0 ± round-off` (−1.5e-11 for 2048-d), and a
//! metric that divides by something small (MiFID) would turn that into a
//! visible negative number. The computed value is therefore compared with a
//! bound `B` on what rounding can do, and:
//!
//! * `d̂² ≥ 0`: returned as is;
//! * `−B ≤ d̂² < 0`: returned as 0 (the raw value is kept in
//!   [`FrechetResult::raw_value`]);
//! * `d̂² < −B`: [`LinalgError::Numerical`]: not rounding, but invalid input
//!   (a covariance that is not positive semi-definite) or a failed
//!   decomposition.
//!
//! With `u = 2⁻⁵³`, `γ_k = k u / (1 − k u)`, `m = ‖μ₁ − μ₂‖²`, `t₁ = tr Σ₁`,
//! `t₂ = tr Σ₂` and `D` the dimension, `B` ([`FrechetResult::rounding_bound`])
//! is the sum of three terms:
//!
//! 1. **The sums.** `m`, `t₁`, `t₂` are sums of at most `D` non-negative terms
//!    (relative error `γ_D`), and the final `m + t₁ + t₂ − 2 tr√` adds three
//!    more roundings of terms at most `m + t₁ + t₂` (as `tr√ ≤ √(t₁t₂) ≤ (t₁ +
//!    t₂)/2`): at most `2 γ_{D+3} (m + t₁ + t₂)`.
//! 2. **The trace of the square root.** Every branch computes `tr√ = Σ_k √λ_k`
//!    from values `λ̂_k` (eigenvalues of `F₁ᵀΣ₂F₁`, or squared singular values)
//!    whose error is at most `η = 16 (D + n) u t₁ t₂` (`n` the rows held by a
//!    side, 0 for covariances): the factorisation's backward error (`γ_{D+1}
//!    ‖Σ‖`), the products' (`γ_{2D} ‖|F|ᵀ|Σ||F|‖₂ ≤ γ_{2D} ‖F‖_F² ‖Σ‖_F ≤
//!    γ_{2D} t₁t₂`) and a backward-stable eigen or singular value solver's (a
//!    small multiple of `(D + n) u ‖M‖₂`, `‖M‖₂ ≤ t₁t₂`), to first order
//!    (Higham, *Accuracy and Stability of Numerical Algorithms*, ch. 3, 10;
//!    Weyl's inequality for the eigenvalues). Since `|√a − √b| ≤ min(√|a −
//!    b|, |a − b| / √a)`, `|tr√̂ − tr√| ≤ Σ_k min(√η, η / √λ̂_k⁺)`, counted twice
//!    in `d²`.
//! 3. **Covariances rounded to float32.** Statistics files often store `Σ` in
//!    float32 (relative error `2⁻²⁴` per entry), which may leave eigenvalues
//!    slightly below 0. Negative parts `N₁`, `N₂` (the sums of the negative
//!    eigenvalues' magnitudes) lower `d²` by at most `N₁ + N₂` (the traces lose
//!    them; the square-root term cannot grow), and for a rounded PSD matrix
//!    `N ≤ ‖E‖_* ≤ √D ‖E‖_F ≤ √D 2⁻²⁴ tr Σ`: at most `√D 2⁻²⁴ (t₁ + t₂)`. (The
//!    float64 rounding of a covariance computed from features is far
//!    smaller.)
//!
//! For 2048-d Inception statistics `B` is a few parts per million of `t₁ +
//! t₂`; a value more negative than that is an error, never clamped.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef, Side};
use ndarray::{Array1, ArrayView1, ArrayView2};

mod symeig;

use crate::LinalgError;
use crate::convert::{to_faer, try_faer_view};
use crate::dense::lower_factor;
use crate::stats::{DEFAULT_DDOF, GaussianStats, centered_chunk, column_sums, first_non_finite};

const WHAT: &str = "Frechet distance";

/// Which algorithm evaluates `tr (Σ₁^½ Σ₂ Σ₁^½)^½`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FrechetMethod {
    /// The best-conditioned branch the inputs allow: the SVD branches when raw
    /// features with `N ≤ D` are at hand, else Cholesky, falling back to the
    /// symmetric eigen branch for singular covariances.
    #[default]
    Auto,
    /// Cholesky only; an error if neither covariance is positive definite.
    Cholesky,
    /// Symmetric eigen-decomposition of `Σ₁` (negative eigenvalues clamped).
    SymmetricEigen,
    /// Gram/SVD from the raw features of both sets (both must hold data).
    GramSvd,
}

/// The branch that produced a [`FrechetResult`] (see the [module
/// documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrechetBranch {
    /// `L = chol(Σ)`, eigenvalues of `Lᵀ Σ' L`.
    Cholesky,
    /// `Σ^½` by eigh (negative eigenvalues clamped), eigenvalues of
    /// `Σ^½ Σ' Σ^½`.
    SymmetricEigen,
    /// Singular values of `X_c Y_cᵀ / √((n₁−1)(n₂−1))`.
    GramSvd,
    /// Singular values of `X_c F / √(n−1)` with `F` a factor of the other
    /// covariance.
    FactorSvd,
}

/// The Fréchet distance with the terms it is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct FrechetResult {
    /// `d² = ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr√`, never negative: a computed
    /// value in `[−rounding_bound, 0)` is returned as 0 (see the [module
    /// documentation](self#rounding-and-the-sign-of-the-result)).
    pub value: f64,
    /// The computed value before a negative round-off was set to 0.
    pub raw_value: f64,
    /// The bound `B` on the rounding error of a negative result (module
    /// documentation).
    pub rounding_bound: f64,
    /// The branch taken.
    pub branch: FrechetBranch,
    /// How many negative eigenvalues (round-off of zeros) were clamped to 0.
    pub clamped_negative_eigs: usize,
    /// The most negative eigenvalue clamped (0 when none).
    pub most_negative_eig: f64,
    /// `‖μ₁ − μ₂‖²`.
    pub mean_term: f64,
    /// `tr Σ₁`.
    pub trace_a: f64,
    /// `tr Σ₂`.
    pub trace_b: f64,
    /// `tr (Σ₁^½ Σ₂ Σ₁^½)^½`.
    pub trace_sqrt: f64,
}

/// One Gaussian as the Fréchet distance sees it: its mean and covariance, or —
/// for `N ≤ D` rows — its mean and centred rows (the covariance is then
/// `X_cᵀX_c/(N − ddof)`, formed only if a branch needs it), which enables the
/// well-conditioned SVD branches. Memory is `O(D²)` either way.
///
/// A side made by [`FrechetSide::borrowing`] reads the caller's covariance in
/// place (`'a` is its borrow); every other constructor owns its data
/// (`FrechetSide<'static>`).
#[derive(Debug, Clone)]
pub struct FrechetSide<'a> {
    mean: Array1<f64>,
    trace: f64,
    n: usize,
    repr: Repr<'a>,
}

#[derive(Debug, Clone)]
enum Repr<'a> {
    /// The covariance, owned or borrowed.
    Cov(Covariance<'a>),
    /// Centred rows (n × D) and `n − ddof`.
    Data { centered: Mat<f64>, denom: f64 },
}

/// A covariance held by a side. Not `ndarray::CowArray`: ndarray's arrays
/// are invariant in their lifetime, and an owned side must coerce to a
/// borrowing one (`FrechetSide<'static>` where a `FrechetSide<'a>` is
/// expected).
#[derive(Debug, Clone)]
enum Covariance<'a> {
    Owned(ndarray::Array2<f64>),
    Borrowed(&'a ndarray::Array2<f64>),
}

impl Covariance<'_> {
    fn view(&self) -> ArrayView2<'_, f64> {
        match self {
            Covariance::Owned(c) => c.view(),
            Covariance::Borrowed(c) => c.view(),
        }
    }
}

/// A borrowed view of one side: what the branches read.
#[derive(Clone, Copy)]
struct SideRef<'a> {
    mean: ArrayView1<'a, f64>,
    trace: f64,
    n: usize,
    repr: ReprRef<'a>,
}

#[derive(Clone, Copy)]
enum ReprRef<'a> {
    Cov(ArrayView2<'a, f64>),
    Data {
        centered: MatRef<'a, f64>,
        denom: f64,
    },
}

/// A covariance as `faer` sees it: a view of the caller's array when its
/// layout allows, else a copy.
enum CovMat<'a> {
    View(MatRef<'a, f64>),
    Owned(Mat<f64>),
}

impl CovMat<'_> {
    fn view(&self) -> MatRef<'_, f64> {
        match self {
            CovMat::View(v) => *v,
            CovMat::Owned(m) => m.as_ref(),
        }
    }
}

impl<'a> SideRef<'a> {
    fn from_stats(stats: &'a GaussianStats) -> Self {
        SideRef {
            mean: stats.mean.view(),
            trace: stats.trace(),
            n: stats.n,
            repr: ReprRef::Cov(stats.cov.view()),
        }
    }

    fn dim(&self) -> usize {
        self.mean.len()
    }

    fn holds_data(&self) -> bool {
        matches!(self.repr, ReprRef::Data { .. })
    }

    /// The covariance (symmetric; a view when possible, formed from the rows
    /// otherwise).
    fn cov(&self) -> CovMat<'a> {
        match self.repr {
            ReprRef::Cov(c) => match try_faer_view(&c) {
                // A row-major view of a symmetric matrix is the matrix itself.
                Some(v) => CovMat::View(v),
                None => CovMat::Owned(to_faer(c)),
            },
            ReprRef::Data { centered, denom } => {
                let d = self.dim();
                let mut m = Mat::<f64>::zeros(d, d);
                matmul(
                    m.as_mut(),
                    BlockStructure::TriangularLower,
                    Accum::Replace,
                    centered.transpose(),
                    BlockStructure::Rectangular,
                    centered,
                    BlockStructure::Rectangular,
                    1.0 / denom,
                    faer::get_global_parallelism(),
                );
                symmetrize_from_lower(&mut m);
                CovMat::Owned(m)
            }
        }
    }
}

impl<'a> FrechetSide<'a> {
    /// A side that reads `stats` in place: no copy of the `D × D` covariance
    /// (32 MiB at `D = 2048`, which a fresh copy also has the kernel zero
    /// page by page), for a caller that keeps the statistics alive while
    /// the side is used.
    ///
    /// # Errors
    /// As [`FrechetSide::from_stats`].
    pub fn borrowing(stats: &'a GaussianStats) -> Result<Self, LinalgError> {
        stats.validate(WHAT)?;
        Ok(FrechetSide {
            mean: stats.mean.clone(),
            trace: stats.trace(),
            n: stats.n,
            repr: Repr::Cov(Covariance::Borrowed(&stats.cov)),
        })
    }
}

impl FrechetSide<'static> {
    /// A side from precomputed statistics (copied; see
    /// [`FrechetSide::borrowing`] for one that is not).
    ///
    /// # Errors
    /// [`LinalgError`] if the statistics have inconsistent shapes or
    /// non-finite values.
    pub fn from_stats(stats: &GaussianStats) -> Result<Self, LinalgError> {
        stats.validate(WHAT)?;
        Ok(FrechetSide {
            mean: stats.mean.clone(),
            trace: stats.trace(),
            n: stats.n,
            repr: Repr::Cov(Covariance::Owned(stats.cov.clone())),
        })
    }

    /// A side from raw features (`ddof = 1`, as `np.cov`): keeps the centred
    /// rows when `N ≤ D`, else accumulates the covariance.
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] for `N < 2`, [`LinalgError::NonFinite`],
    /// [`LinalgError::InvalidParameter`] for zero columns.
    pub fn from_features<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
    ) -> Result<Self, LinalgError> {
        Self::from_features_ddof(x, DEFAULT_DDOF)
    }

    /// As [`FrechetSide::from_features`] with `Σ = M / (N − ddof)`.
    ///
    /// # Errors
    /// As [`FrechetSide::from_features`]; needs `N > ddof`.
    pub fn from_features_ddof<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
        ddof: usize,
    ) -> Result<Self, LinalgError> {
        Self::from_features_par(x, ddof, faer::get_global_parallelism())
    }

    /// The sides of two sets (`ddof = 1`), as [`FrechetSide::from_features`]
    /// of each, bit for bit; faster when both need a covariance.
    ///
    /// Why: a covariance update `M += X_cᵀ X_c` split across the threads
    /// runs at about 1.5× one thread's rate on 2 cores, while two updates
    /// side by side, one sequential product per thread, run at 2×
    /// (docs/benchmarks.md, whole-process FID). So when both sets have
    /// `N > D` and sizes within a factor 1.75 of each other (beyond that the
    /// larger set alone would outlast the split run), the two covariances are
    /// formed concurrently, each with sequential products; otherwise one
    /// after the other, each split across the threads. faer's products are
    /// bitwise the same either way, so the values do not depend on the choice.
    ///
    /// # Errors
    /// Each side's as [`FrechetSide::from_features`].
    pub fn from_features_pair<T: Copy + Into<f64> + Send + Sync>(
        a: ArrayView2<'_, T>,
        b: ArrayView2<'_, T>,
    ) -> (Result<Self, LinalgError>, Result<Self, LinalgError>) {
        let (na, nb) = (a.nrows(), b.nrows());
        let (small, large) = (na.min(nb) as f64, na.max(nb) as f64);
        let both_cov = na > a.ncols() && nb > b.ncols();
        if both_cov && rayon::current_num_threads() >= 2 && large <= 1.75 * small {
            rayon::join(
                || Self::from_features_par(a, DEFAULT_DDOF, faer::Par::Seq),
                || Self::from_features_par(b, DEFAULT_DDOF, faer::Par::Seq),
            )
        } else {
            (Self::from_features(a), Self::from_features(b))
        }
    }

    fn from_features_par<T: Copy + Into<f64> + Send + Sync>(
        x: ArrayView2<'_, T>,
        ddof: usize,
        par: faer::Par,
    ) -> Result<Self, LinalgError> {
        let (n, d) = x.dim();
        if d == 0 {
            return Err(LinalgError::InvalidParameter(format!(
                "{WHAT}: zero feature dimensions"
            )));
        }
        if n <= ddof || n < 2 {
            return Err(LinalgError::TooFewRows {
                what: WHAT,
                needed: (ddof + 1).max(2),
                got: n,
            });
        }
        if n > d {
            let s = GaussianStats::from_features_par(x, ddof, par)?;
            return Ok(FrechetSide {
                trace: s.trace(),
                mean: s.mean,
                n,
                repr: Repr::Cov(Covariance::Owned(s.cov)),
            });
        }
        if let Some((row, col)) = first_non_finite(x) {
            return Err(LinalgError::NonFinite {
                what: WHAT,
                row,
                col,
            });
        }
        let mut buf = Vec::new();
        let mean = centered_chunk(x, 0, n, &mut buf);
        let denom = (n - ddof) as f64;
        let trace = column_sums(&buf, d, |v| v * v).iter().sum::<f64>() / denom;
        let centered = MatRef::from_row_major_slice(&buf, n, d).to_owned();
        Ok(FrechetSide {
            mean: Array1::from_vec(mean),
            trace,
            n,
            repr: Repr::Data { centered, denom },
        })
    }
}

impl FrechetSide<'_> {
    /// The mean `μ`.
    pub fn mean(&self) -> ArrayView1<'_, f64> {
        self.mean.view()
    }

    /// `tr Σ`.
    pub fn trace(&self) -> f64 {
        self.trace
    }

    /// Number of rows behind the statistics (0 if unknown).
    pub fn count(&self) -> usize {
        self.n
    }

    /// The feature dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// True when the centred rows are held (the SVD branches are available).
    pub fn holds_data(&self) -> bool {
        matches!(self.repr, Repr::Data { .. })
    }

    /// The Gaussian statistics (forms the covariance from the rows if needed).
    pub fn stats(&self) -> GaussianStats {
        GaussianStats {
            mean: self.mean.clone(),
            cov: crate::convert::to_ndarray(self.side().cov().view()),
            n: self.n,
        }
    }

    fn side(&self) -> SideRef<'_> {
        SideRef {
            mean: self.mean.view(),
            trace: self.trace,
            n: self.n,
            repr: match &self.repr {
                Repr::Cov(c) => ReprRef::Cov(c.view()),
                Repr::Data { centered, denom } => ReprRef::Data {
                    centered: centered.as_ref(),
                    denom: *denom,
                },
            },
        }
    }
}

/// Copies the strict lower triangle onto the upper one.
fn symmetrize_from_lower(m: &mut Mat<f64>) {
    let d = m.nrows();
    for j in 0..d {
        for i in (j + 1)..d {
            m[(j, i)] = m[(i, j)];
        }
    }
}

/// The Fréchet distance between two Gaussians (see the [module
/// documentation](self) for the formula and the branches).
///
/// ```
/// # use gen_metrics_linalg::{FrechetDistance, GaussianStats};
/// # use ndarray::array;
/// let a = GaussianStats::new(array![0.0, 0.0], array![[1.0, 0.0], [0.0, 4.0]], 10).unwrap();
/// let b = GaussianStats::new(array![1.0, 0.0], array![[4.0, 0.0], [0.0, 1.0]], 10).unwrap();
/// // 1 + (1 + 4) + (4 + 1) - 2 (2 + 2) = 3
/// let r = FrechetDistance::new().between_stats(&a, &b).unwrap();
/// assert!((r.value - 3.0).abs() < 1e-12);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct FrechetDistance {
    method: FrechetMethod,
}

impl FrechetDistance {
    /// The default configuration ([`FrechetMethod::Auto`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the algorithm.
    pub fn method(mut self, method: FrechetMethod) -> Self {
        self.method = method;
        self
    }

    /// `d²` between two sets of statistics.
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`], [`LinalgError::NonFinite`] for bad
    /// statistics; [`LinalgError::InvalidParameter`] for
    /// [`FrechetMethod::GramSvd`] (needs raw features);
    /// [`LinalgError::Numerical`] if a decomposition fails or the result is not
    /// finite.
    pub fn between_stats(
        &self,
        a: &GaussianStats,
        b: &GaussianStats,
    ) -> Result<FrechetResult, LinalgError> {
        a.validate(WHAT)?;
        b.validate(WHAT)?;
        distance(self.method, SideRef::from_stats(a), SideRef::from_stats(b))
    }

    /// `d²` between the Gaussians fitted to two feature sets (`ddof = 1`):
    /// with [`FrechetMethod::Auto`] the SVD branches are used for a set with
    /// `N ≤ D` rows.
    ///
    /// # Errors
    /// As [`FrechetSide::from_features`] and [`FrechetDistance::between_sides`].
    pub fn between_features<T: Copy + Into<f64> + Send + Sync>(
        &self,
        a: ArrayView2<'_, T>,
        b: ArrayView2<'_, T>,
    ) -> Result<FrechetResult, LinalgError> {
        if a.ncols() != b.ncols() {
            return Err(LinalgError::DimensionMismatch {
                what: WHAT,
                left: a.ncols(),
                right: b.ncols(),
            });
        }
        self.between_sides(
            &FrechetSide::from_features(a)?,
            &FrechetSide::from_features(b)?,
        )
    }

    /// `d²` between two prepared sides (statistics or centred rows).
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`]; [`LinalgError::InvalidParameter`]
    /// when [`FrechetMethod::GramSvd`] is asked for a side without rows;
    /// [`LinalgError::Numerical`] if a decomposition fails (or, for
    /// [`FrechetMethod::Cholesky`], neither covariance is positive definite) or
    /// the result is not finite.
    pub fn between_sides(
        &self,
        a: &FrechetSide,
        b: &FrechetSide,
    ) -> Result<FrechetResult, LinalgError> {
        distance(self.method, a.side(), b.side())
    }
}

/// The distance between two borrowed sides (every public entry lands here).
fn distance(
    method: FrechetMethod,
    a: SideRef<'_>,
    b: SideRef<'_>,
) -> Result<FrechetResult, LinalgError> {
    let d = a.dim();
    if b.dim() != d {
        return Err(LinalgError::DimensionMismatch {
            what: WHAT,
            left: d,
            right: b.dim(),
        });
    }
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(b.mean.iter())
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let ts = match method {
        FrechetMethod::Auto => match (&a.repr, &b.repr) {
            (ReprRef::Data { .. }, ReprRef::Data { .. }) => gram_svd(a, b)?,
            (ReprRef::Data { .. }, ReprRef::Cov(_)) => factor_svd(a, b)?,
            (ReprRef::Cov(_), ReprRef::Data { .. }) => factor_svd(b, a)?,
            (ReprRef::Cov(_), ReprRef::Cov(_)) => auto_cov(a, b)?,
        },
        FrechetMethod::Cholesky => {
            let (ca, cb) = (a.cov(), b.cov());
            match cholesky_route(ca.view(), cb.view())? {
                Some(t) => t,
                None => match cholesky_route(cb.view(), ca.view())? {
                    Some(t) => t,
                    None => {
                        return Err(LinalgError::Numerical {
                                what: WHAT,
                                detail: "neither covariance is positive definite (Cholesky failed); use Auto or SymmetricEigen".into(),
                            });
                    }
                },
            }
        }
        FrechetMethod::SymmetricEigen => eigen_route(a.cov().view(), b.cov().view())?,
        FrechetMethod::GramSvd => {
            if !(a.holds_data() && b.holds_data()) {
                return Err(LinalgError::InvalidParameter(
                        "Frechet distance: the Gram/SVD branch needs the raw features of both sets with N <= D".into(),
                    ));
            }
            gram_svd(a, b)?
        }
    };
    let raw_value = mean_term + a.trace + b.trace - 2.0 * ts.trace_sqrt;
    if !raw_value.is_finite() {
        return Err(LinalgError::Numerical {
            what: WHAT,
            detail: format!("non-finite result {raw_value}"),
        });
    }
    let rows = match (a.repr, b.repr) {
        (ReprRef::Data { centered: x, .. }, ReprRef::Data { centered: y, .. }) => {
            x.nrows().max(y.nrows())
        }
        (ReprRef::Data { centered: x, .. }, _) | (_, ReprRef::Data { centered: x, .. }) => {
            x.nrows()
        }
        _ => 0,
    };
    let rounding_bound = rounding_bound(d, rows, mean_term, a.trace, b.trace, &ts.lambdas);
    let value = if raw_value >= 0.0 {
        raw_value
    } else if raw_value >= -rounding_bound {
        0.0
    } else {
        return Err(LinalgError::Numerical {
            what: WHAT,
            detail: format!(
                "the distance came out as {raw_value:e}, more negative than rounding can make it (bound {rounding_bound:e}): a covariance is not positive semi-definite, or a decomposition failed"
            ),
        });
    };
    Ok(FrechetResult {
        value,
        raw_value,
        rounding_bound,
        branch: ts.branch,
        clamped_negative_eigs: ts.clamped,
        most_negative_eig: ts.most_negative,
        mean_term,
        trace_a: a.trace,
        trace_b: b.trace,
        trace_sqrt: ts.trace_sqrt,
    })
}

/// The `tr√` term with its diagnostics.
struct TraceSqrt {
    trace_sqrt: f64,
    branch: FrechetBranch,
    clamped: usize,
    most_negative: f64,
    /// The values `λ̂_k` whose square roots were summed (eigenvalues, or
    /// squared singular values), for the rounding bound.
    lambdas: Vec<f64>,
}

/// The bound `B` of the module documentation ("Rounding and the sign of
/// the result") for dimension `d`, `rows` rows held by a side (0 for
/// covariances), the terms `m`, `t₁`, `t₂` and the values `λ̂_k` behind `tr√`.
fn rounding_bound(d: usize, rows: usize, m: f64, t1: f64, t2: f64, lambdas: &[f64]) -> f64 {
    let u = f64::EPSILON / 2.0;
    let gamma = |k: usize| {
        let ku = k as f64 * u;
        ku / (1.0 - ku)
    };
    let (t1, t2) = (t1.max(0.0), t2.max(0.0));
    let sums = 2.0 * gamma(d + 3) * (m + t1 + t2);
    let eta = 16.0 * (d + rows) as f64 * u * t1 * t2;
    let sqrt_eta = eta.sqrt();
    let trace_sqrt: f64 = lambdas
        .iter()
        .map(|&l| {
            if l > 0.0 {
                sqrt_eta.min(eta / l.sqrt())
            } else {
                sqrt_eta
            }
        })
        .sum();
    let float32_inputs = (d as f64).sqrt() * f64::from(f32::EPSILON) / 2.0 * (t1 + t2);
    sums + 2.0 * trace_sqrt + float32_inputs
}

/// Sums `√max(λ, 0)`, counting the clamped negative values.
fn sum_sqrt_clamped(eigs: &[f64], clamped: &mut usize, most_negative: &mut f64) -> f64 {
    let mut s = 0.0;
    for &l in eigs {
        if l < 0.0 {
            *clamped += 1;
            *most_negative = most_negative.min(l);
        } else {
            s += l.sqrt();
        }
    }
    s
}

fn numerical(detail: String) -> LinalgError {
    LinalgError::Numerical { what: WHAT, detail }
}

/// Both sides are covariances: Cholesky of the first that may be full rank,
/// else the symmetric eigen branch.
fn auto_cov(a: SideRef<'_>, b: SideRef<'_>) -> Result<TraceSqrt, LinalgError> {
    let d = a.dim();
    // n == 0 means "unknown": try the factorisation.
    let may_be_full_rank = |s: &SideRef<'_>| s.n == 0 || s.n > d;
    let (ca, cb) = (a.cov(), b.cov());
    if may_be_full_rank(&a)
        && let Some(t) = cholesky_route(ca.view(), cb.view())?
    {
        return Ok(t);
    }
    if may_be_full_rank(&b)
        && let Some(t) = cholesky_route(cb.view(), ca.view())?
    {
        return Ok(t);
    }
    eigen_route(ca.view(), cb.view())
}

/// `M = Fᵀ S F` for a rectangular `F` (lower triangle only; the eigen solvers
/// read the lower triangle).
fn form_m(f: MatRef<'_, f64>, s: MatRef<'_, f64>, par: faer::Par) -> Mat<f64> {
    let d = s.nrows();
    // T = S F
    let mut t = Mat::<f64>::zeros(d, f.ncols());
    matmul(
        t.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        s,
        BlockStructure::Rectangular,
        f,
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    // M = Fᵀ T (lower triangle)
    let mut m = Mat::<f64>::zeros(f.ncols(), f.ncols());
    matmul(
        m.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        f.transpose(),
        BlockStructure::Rectangular,
        t.as_ref(),
        BlockStructure::Rectangular,
        1.0,
        par,
    );
    m
}

/// Columns per panel of [`congruence_in_place`].
const CONGRUENCE_PANEL: usize = 256;

/// Overwrites the lower triangle of `w`, which holds a lower-triangular `L`
/// (strict upper triangle 0), with that of `M = Lᵀ S L` (`S` symmetric, both
/// triangles stored).
///
/// Column panel `P = [j₀, j₁)` of the lower triangle of `M` reads only the
/// trailing blocks: `M[i, j] = Σ_{k ≥ i, l ≥ j} L[k, i] S[k, l] L[l, j]` with
/// `i ≥ j ≥ j₀`, so
///
/// ```text
/// T_P = S[j₀.., j₀..] · L[j₀.., P]        (r × w, r = D − j₀)
/// M[j₀.., P] = L[j₀.., j₀..]ᵀ · T_P        (upper-triangular left factor)
/// ```
///
/// and once the panel is formed, columns `P` of `L` are never read again:
/// the panel is written over them. `D³/3 + D³/6 = D³/2` multiply–adds in
/// all (the products `T = S L` into a full `D × D` buffer and the lower
/// triangle of `M = Lᵀ T` take `D³/2 + D³/6`: `T` has rows the panels never
/// need), and one `D × D` buffer instead of three (`L`, `T`, `M`): fresh
/// memory is what the kernel zeroes page by page.
fn congruence_in_place(w: &mut Mat<f64>, s: MatRef<'_, f64>, par: faer::Par) {
    let n = w.nrows();
    let width = CONGRUENCE_PANEL.min(n);
    let mut t = Mat::<f64>::zeros(n, width);
    let mut m = Mat::<f64>::zeros(n, width);
    let mut j0 = 0;
    while j0 < n {
        let (r, pw) = (n - j0, width.min(n - j0));
        let mut tp = t.as_mut().submatrix_mut(0, 0, r, pw);
        matmul(
            tp.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            s.submatrix(j0, j0, r, r),
            BlockStructure::Rectangular,
            w.as_ref().submatrix(j0, j0, r, pw),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        let mut mp = m.as_mut().submatrix_mut(0, 0, r, pw);
        matmul(
            mp.as_mut(),
            BlockStructure::Rectangular,
            Accum::Replace,
            w.as_ref().submatrix(j0, j0, r, r).transpose(),
            BlockStructure::TriangularUpper,
            tp.as_ref(),
            BlockStructure::Rectangular,
            1.0,
            par,
        );
        w.as_mut()
            .submatrix_mut(j0, j0, r, pw)
            .copy_from(mp.as_ref());
        j0 += pw;
    }
}

/// `Σ_k √λ_k` of a symmetric `M` (lower triangle), consumed, and the `λ_k`;
/// `retry` forms `M` again for `faer`'s one-stage solver on the rare failure
/// of the two-stage one.
fn eig_trace(
    m: Mat<f64>,
    retry: impl FnOnce() -> Result<Mat<f64>, LinalgError>,
    clamped: &mut usize,
    most_negative: &mut f64,
) -> Result<(f64, Vec<f64>), LinalgError> {
    let par = faer::get_global_parallelism();
    let eigs = match symeig::eigenvalues_consuming(m, par) {
        Some(e) => e,
        None => symeig::faer_eigenvalues(retry()?.as_ref())?,
    };
    Ok((sum_sqrt_clamped(&eigs, clamped, most_negative), eigs))
}

/// `Some` when `chol(sa)` exists: `Σ √λ(Lᵀ sb L)`.
fn cholesky_route(
    sa: MatRef<'_, f64>,
    sb: MatRef<'_, f64>,
) -> Result<Option<TraceSqrt>, LinalgError> {
    let par = faer::get_global_parallelism();
    let form = || {
        lower_factor(sa, par).ok().map(|mut w| {
            congruence_in_place(&mut w, sb, par);
            w
        })
    };
    let Some(m) = form() else {
        return Ok(None);
    };
    let (mut clamped, mut most_negative) = (0, 0.0);
    let (trace_sqrt, lambdas) = eig_trace(
        m,
        || form().ok_or_else(|| numerical("Cholesky factor vanished on retry".into())),
        &mut clamped,
        &mut most_negative,
    )?;
    Ok(Some(TraceSqrt {
        trace_sqrt,
        branch: FrechetBranch::Cholesky,
        clamped,
        most_negative,
        lambdas,
    }))
}

/// `F = V diag(√max(w, 0))` with `S = V diag(w) Vᵀ`; counts clamped `w`.
fn eigen_factor(
    s: MatRef<'_, f64>,
    clamped: &mut usize,
    most_negative: &mut f64,
) -> Result<Mat<f64>, LinalgError> {
    let evd = s
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| numerical(format!("eigendecomposition: {e:?}")))?;
    let w = evd.S().column_vector();
    let mut f = evd.U().to_owned();
    for j in 0..f.ncols() {
        let l = w[j];
        let r = if l < 0.0 {
            *clamped += 1;
            *most_negative = most_negative.min(l);
            0.0
        } else {
            l.sqrt()
        };
        f.col_mut(j).iter_mut().for_each(|v| *v *= r);
    }
    Ok(f)
}

/// The symmetric eigen branch: `Σ √λ(F₁ᵀ Σ₂ F₁)` with `F₁ = V diag(√w)`.
fn eigen_route(sa: MatRef<'_, f64>, sb: MatRef<'_, f64>) -> Result<TraceSqrt, LinalgError> {
    let (mut clamped, mut most_negative) = (0, 0.0);
    let f = eigen_factor(sa, &mut clamped, &mut most_negative)?;
    let par = faer::get_global_parallelism();
    let (trace_sqrt, lambdas) = eig_trace(
        form_m(f.as_ref(), sb, par),
        || Ok(form_m(f.as_ref(), sb, par)),
        &mut clamped,
        &mut most_negative,
    )?;
    Ok(TraceSqrt {
        trace_sqrt,
        branch: FrechetBranch::SymmetricEigen,
        clamped,
        most_negative,
        lambdas,
    })
}

/// `Σ σ_k(m)` and the `σ_k²`.
fn svd_sum(m: MatRef<'_, f64>) -> Result<(f64, Vec<f64>), LinalgError> {
    let sv = m
        .singular_values()
        .map_err(|e| numerical(format!("singular values: {e:?}")))?;
    Ok((sv.iter().sum(), sv.iter().map(|v| v * v).collect()))
}

/// Both sides hold centred rows: `Σ σ(X_c Y_cᵀ) / √(den_a den_b)`.
fn gram_svd(a: SideRef<'_>, b: SideRef<'_>) -> Result<TraceSqrt, LinalgError> {
    let (
        ReprRef::Data {
            centered: xa,
            denom: da,
        },
        ReprRef::Data {
            centered: xb,
            denom: db,
        },
    ) = (a.repr, b.repr)
    else {
        return Err(numerical("Gram/SVD branch without data (internal)".into()));
    };
    let mut g = Mat::<f64>::zeros(xa.nrows(), xb.nrows());
    faer::linalg::matmul::matmul(
        g.as_mut(),
        Accum::Replace,
        xa,
        xb.transpose(),
        1.0 / (da * db).sqrt(),
        faer::get_global_parallelism(),
    );
    let (trace_sqrt, lambdas) = svd_sum(g.as_ref())?;
    Ok(TraceSqrt {
        trace_sqrt,
        branch: FrechetBranch::GramSvd,
        clamped: 0,
        most_negative: 0.0,
        lambdas,
    })
}

/// `a` holds centred rows, `b` a covariance: `Σ σ(X_c F_b) / √den_a` with
/// `F_b = chol(Σ_b)`, or the clamped eigen factor when `Σ_b` is singular.
fn factor_svd(a: SideRef<'_>, b: SideRef<'_>) -> Result<TraceSqrt, LinalgError> {
    let ReprRef::Data {
        centered: xa,
        denom: da,
    } = a.repr
    else {
        return Err(numerical(
            "factor/SVD branch without data (internal)".into(),
        ));
    };
    let cb = b.cov();
    let cb = cb.view();
    let (mut clamped, mut most_negative) = (0, 0.0);
    let full_rank = b.n == 0 || b.n > b.dim();
    let chol = full_rank
        .then(|| lower_factor(cb, faer::get_global_parallelism()).ok())
        .flatten();
    let (f, lower) = match chol {
        Some(l) => (l, true),
        _ => (eigen_factor(cb, &mut clamped, &mut most_negative)?, false),
    };
    let mut g = Mat::<f64>::zeros(xa.nrows(), f.ncols());
    matmul(
        g.as_mut(),
        BlockStructure::Rectangular,
        Accum::Replace,
        xa,
        BlockStructure::Rectangular,
        f.as_ref(),
        if lower {
            BlockStructure::TriangularLower
        } else {
            BlockStructure::Rectangular
        },
        1.0 / da.sqrt(),
        faer::get_global_parallelism(),
    );
    let (trace_sqrt, lambdas) = svd_sum(g.as_ref())?;
    Ok(TraceSqrt {
        trace_sqrt,
        branch: FrechetBranch::FactorSvd,
        clamped,
        most_negative,
        lambdas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    /// The pair constructor gives every side bit for bit what the single
    /// one gives: sizes within the factor (formed side by side, sequential
    /// products), sizes beyond it, and a side with `N ≤ D` (centred rows).
    /// Deterministic float32 features, `n × d`, varied by `seed`.
    fn data(n: usize, d: usize, seed: usize) -> ndarray::Array2<f32> {
        ndarray::Array2::from_shape_fn((n, d), |(i, j)| {
            (((i * 7919 + j * 104_729 + seed * 31) % 1009) as f32 / 97.0).sin() + 0.3
        })
    }

    #[test]
    fn sides_formed_as_a_pair_are_the_single_sides_bit_for_bit() {
        let bits = |s: &FrechetSide| -> Vec<u64> {
            let st = s.stats();
            st.mean
                .iter()
                .chain(st.cov.iter())
                .map(|v| v.to_bits())
                .collect()
        };
        for (na, nb, d) in [(700, 600, 40), (700, 90, 40), (30, 600, 40)] {
            let (a, b) = (data(na, d, 1), data(nb, d, 2));
            let (pa, pb) = FrechetSide::from_features_pair(a.view(), b.view());
            let (pa, pb) = (pa.unwrap(), pb.unwrap());
            let (sa, sb) = (
                FrechetSide::from_features(a.view()).unwrap(),
                FrechetSide::from_features(b.view()).unwrap(),
            );
            assert_eq!(bits(&pa), bits(&sa), "{na} x {d}");
            assert_eq!(bits(&pb), bits(&sb), "{nb} x {d}");
            assert_eq!(pa.trace().to_bits(), sa.trace().to_bits());
        }
    }

    /// A random symmetric positive definite `n × n` matrix (`G Gᵀ / n + I`).
    fn spd(n: usize, seed: u64) -> Mat<f64> {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let g = Mat::<f64>::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
        let mut s = &g * g.transpose() * (1.0 / n as f64);
        for i in 0..n {
            s[(i, i)] += 1.0;
        }
        s
    }

    /// `lower_factor` is `faer`'s `Llt` factor bit for bit, and the panel
    /// congruence gives the lower triangle of `Lᵀ S L` formed by two full
    /// products, to rounding: one panel, several, and a ragged last panel.
    #[test]
    fn panel_congruence_is_the_full_product() {
        for n in [5, CONGRUENCE_PANEL, 2 * CONGRUENCE_PANEL + 37] {
            let (a, b) = (spd(n, 1), spd(n, 2));
            let l = lower_factor(a.as_ref(), faer::Par::Seq).unwrap();
            let want_l = a.llt(Side::Lower).unwrap();
            for j in 0..n {
                for i in 0..n {
                    assert_eq!(
                        l[(i, j)].to_bits(),
                        want_l.L()[(i, j)].to_bits(),
                        "{n}: L[{i},{j}]"
                    );
                }
            }
            let full = l.transpose() * &b * &l;
            let mut w = l.clone();
            congruence_in_place(&mut w, b.as_ref(), faer::Par::rayon(0));
            let scale = full.norm_max();
            for j in 0..n {
                for i in j..n {
                    let (got, want) = (w[(i, j)], full[(i, j)]);
                    assert!(
                        (got - want).abs() <= 1e-13 * scale,
                        "{n}: M[{i},{j}] {got} vs {want}"
                    );
                }
            }
        }
        let mut not_pd = spd(40, 3);
        not_pd[(7, 7)] = -1.0;
        assert!(lower_factor(not_pd.as_ref(), faer::Par::Seq).is_err());
    }

    /// A borrowing side is the copying one: same fields, same distance bit
    /// for bit.
    #[test]
    fn borrowed_statistics_give_the_copied_ones_distance() {
        let (a, b) = (
            GaussianStats::from_features(data(400, 30, 1).view()).unwrap(),
            GaussianStats::from_features(data(300, 30, 2).view()).unwrap(),
        );
        let fd = FrechetDistance::new();
        let copied = fd
            .between_sides(
                &FrechetSide::from_stats(&a).unwrap(),
                &FrechetSide::from_stats(&b).unwrap(),
            )
            .unwrap();
        let (ba, bb) = (
            FrechetSide::borrowing(&a).unwrap(),
            FrechetSide::borrowing(&b).unwrap(),
        );
        let borrowed = fd.between_sides(&ba, &bb).unwrap();
        assert_eq!(copied.value.to_bits(), borrowed.value.to_bits());
        assert_eq!(ba.stats(), a);
        assert_eq!((ba.count(), ba.dim(), ba.holds_data()), (400, 30, false));
        let mut bad = b.clone();
        bad.cov[[0, 0]] = f64::NAN;
        assert!(FrechetSide::borrowing(&bad).is_err());
    }

    #[test]
    fn diagonal_closed_form_all_branches() {
        let a = GaussianStats::new(array![0.0, 0.0], array![[1.0, 0.0], [0.0, 4.0]], 10).unwrap();
        let b = GaussianStats::new(array![1.0, 0.0], array![[4.0, 0.0], [0.0, 1.0]], 10).unwrap();
        for m in [
            FrechetMethod::Auto,
            FrechetMethod::Cholesky,
            FrechetMethod::SymmetricEigen,
        ] {
            let r = FrechetDistance::new()
                .method(m)
                .between_stats(&a, &b)
                .unwrap();
            assert!((r.value - 3.0).abs() < 1e-12, "{m:?}: {}", r.value);
        }
        assert!(
            FrechetDistance::new()
                .method(FrechetMethod::GramSvd)
                .between_stats(&a, &b)
                .is_err()
        );
    }
}
