//! Dense float64 products and decompositions for the metric crates.
//!
//! The metric crates never call `faer` themselves: the products, symmetric
//! eigen-decompositions, Cholesky factors and triangular solves they need are
//! here, on `ndarray` arrays. Each function copies its operands into `faer`
//! matrices (column-major, as `faer::Mat::from_fn` lays them out), runs one
//! `faer` routine and copies the result back, so a caller gets exactly the
//! numbers `faer` gives for those operands.
//!
//! `parallel` selects `faer`'s rayon parallelism (all threads of the current
//! pool) or a sequential product; pass `false` inside an outer parallel loop.

use faer::linalg::cholesky::llt::factor::LltError;
use faer::linalg::matmul::matmul as faer_matmul;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Accum, Mat, MatRef, Par, Side};
use ndarray::{Array1, Array2, ArrayView2};

use crate::LinalgError;

fn to_mat(a: ArrayView2<'_, f64>) -> Mat<f64> {
    Mat::<f64>::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

fn to_array(m: MatRef<'_, f64>) -> Array2<f64> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

fn par(parallel: bool) -> Par {
    if parallel { Par::rayon(0) } else { Par::Seq }
}

fn check_inner(what: &'static str, left: usize, right: usize) -> Result<(), LinalgError> {
    if left == right {
        Ok(())
    } else {
        Err(LinalgError::DimensionMismatch { what, left, right })
    }
}

fn check_square(what: &'static str, m: ArrayView2<'_, f64>) -> Result<(), LinalgError> {
    check_inner(what, m.nrows(), m.ncols())
}

/// `C = α A B` for `A` `[m, k]` and `B` `[k, n]`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] when the inner dimensions differ.
pub fn matmul(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    alpha: f64,
    parallel: bool,
) -> Result<Array2<f64>, LinalgError> {
    check_inner("matmul (A B)", a.ncols(), b.nrows())?;
    let (a, b) = (to_mat(a), to_mat(b));
    let mut c = Mat::<f64>::zeros(a.nrows(), b.ncols());
    faer_matmul(
        c.as_mut(),
        Accum::Replace,
        a.as_ref(),
        b.as_ref(),
        alpha,
        par(parallel),
    );
    Ok(to_array(c.as_ref()))
}

/// `C = α Aᵀ B` for `A` `[k, m]` and `B` `[k, n]` (a Gram matrix `α XᵀX`
/// when both are `X`), without forming `Aᵀ`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] when the row counts differ.
pub fn matmul_tn(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    alpha: f64,
    parallel: bool,
) -> Result<Array2<f64>, LinalgError> {
    check_inner("matmul (Aᵀ B)", a.nrows(), b.nrows())?;
    let (a, b) = (to_mat(a), to_mat(b));
    let mut c = Mat::<f64>::zeros(a.ncols(), b.ncols());
    faer_matmul(
        c.as_mut(),
        Accum::Replace,
        a.transpose(),
        b.as_ref(),
        alpha,
        par(parallel),
    );
    Ok(to_array(c.as_ref()))
}

/// `C = α A Bᵀ` for `A` `[m, k]` and `B` `[n, k]` (a Gram matrix `α X Xᵀ`
/// when both are `X`), without forming `Bᵀ`.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] when the column counts differ.
pub fn matmul_nt(
    a: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    alpha: f64,
    parallel: bool,
) -> Result<Array2<f64>, LinalgError> {
    check_inner("matmul (A Bᵀ)", a.ncols(), b.ncols())?;
    let (a, b) = (to_mat(a), to_mat(b));
    let mut c = Mat::<f64>::zeros(a.nrows(), b.nrows());
    faer_matmul(
        c.as_mut(),
        Accum::Replace,
        a.as_ref(),
        b.transpose(),
        alpha,
        par(parallel),
    );
    Ok(to_array(c.as_ref()))
}

/// The eigen-decomposition `S = V diag(λ) Vᵀ` of a symmetric matrix.
#[derive(Debug, Clone, PartialEq)]
pub struct SymmetricEigen {
    /// The eigenvalues `λ`, in ascending order.
    pub values: Array1<f64>,
    /// The orthonormal eigenvectors `V`, one per column, in the order of `values`.
    pub vectors: Array2<f64>,
}

/// `S = V diag(λ) Vᵀ` of the symmetric matrix `s`, read from its lower
/// triangle (`faer`'s `self_adjoint_eigen`, `Side::Lower`).
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] for a non-square matrix,
/// [`LinalgError::Numerical`] when the decomposition does not converge.
pub fn symmetric_eigen(s: ArrayView2<'_, f64>) -> Result<SymmetricEigen, LinalgError> {
    check_square("symmetric eigen-decomposition", s)?;
    let evd = to_mat(s)
        .self_adjoint_eigen(Side::Lower)
        .map_err(|e| LinalgError::Numerical {
            what: "symmetric eigen-decomposition",
            detail: format!("{e:?}"),
        })?;
    let lam = evd.S().column_vector();
    Ok(SymmetricEigen {
        values: Array1::from_shape_fn(lam.nrows(), |k| lam[k]),
        vectors: to_array(evd.U()),
    })
}

/// The eigenvalues `λ` (ascending) of the symmetric matrix `s`, read from its
/// lower triangle (`faer`'s `self_adjoint_eigenvalues`, `Side::Lower`).
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] for a non-square matrix,
/// [`LinalgError::Numerical`] when the decomposition does not converge.
pub fn symmetric_eigenvalues(s: ArrayView2<'_, f64>) -> Result<Vec<f64>, LinalgError> {
    check_square("symmetric eigenvalues", s)?;
    to_mat(s)
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| LinalgError::Numerical {
            what: "symmetric eigenvalues",
            detail: format!("{e:?}"),
        })
}

/// The singular values `σ_1 ≥ … ≥ σ_min(m,n)` of a general matrix (`faer`'s
/// `singular_values`: bidiagonalisation and a divide-and-conquer SVD, backward
/// stable, so small singular values are not squared as through `AᵀA`).
///
/// ```
/// # use gen_metrics_linalg::singular_values;
/// # use ndarray::array;
/// let s = singular_values(array![[3.0, 0.0], [0.0, -2.0], [0.0, 0.0]].view()).unwrap();
/// assert!((s[0] - 3.0).abs() < 1e-14 && (s[1] - 2.0).abs() < 1e-14);
/// ```
///
/// # Errors
/// [`LinalgError::Numerical`] when the decomposition does not converge.
pub fn singular_values(m: ArrayView2<'_, f64>) -> Result<Vec<f64>, LinalgError> {
    to_mat(m)
        .singular_values()
        .map_err(|e| LinalgError::Numerical {
            what: "singular values",
            detail: format!("{e:?}"),
        })
}

/// The lower Cholesky factor `L` of a symmetric positive-definite matrix,
/// `S = L Lᵀ`, read from the lower triangle of `s` (`faer`'s `llt`). The
/// strict upper triangle of the result is zero.
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] for a non-square matrix,
/// [`LinalgError::Numerical`] when `s` is not positive definite (the detail
/// is `faer`'s error).
pub fn cholesky_lower(s: ArrayView2<'_, f64>) -> Result<Array2<f64>, LinalgError> {
    check_square("Cholesky factorisation", s)?;
    let mut l = to_mat(s);
    llt_in_place(l.as_mut(), faer::get_global_parallelism()).map_err(|e| {
        LinalgError::Numerical {
            what: "Cholesky factorisation",
            detail: format!("{e:?}"),
        }
    })?;
    Ok(Array2::from_shape_fn((l.nrows(), l.ncols()), |(i, j)| {
        if j > i { 0.0 } else { l[(i, j)] }
    }))
}

/// `L = chol(S)` as an owned `faer` matrix (read from the lower triangle of
/// `s`; the strict upper triangle of `L` is 0), or `faer`'s error when `S` is
/// not numerically positive definite. The same factor, bit for bit, as
/// `faer`'s `Llt::new(S, Side::Lower)`, but owned: `Llt` lends `L` only by
/// reference, and the Fréchet route writes `Lᵀ S₂ L` over it.
pub(crate) fn lower_factor(s: MatRef<'_, f64>, par: Par) -> Result<Mat<f64>, LltError> {
    let n = s.nrows();
    let mut l = Mat::<f64>::zeros(n, n);
    l.copy_from_triangular_lower(s);
    llt_in_place(l.as_mut(), par)?;
    // The factorisation leaves work values above the diagonal.
    for j in 1..n {
        l.col_mut(j).subrows_mut(0, j).fill(0.0);
    }
    Ok(l)
}

/// Overwrites the lower triangle of the square `a` with its Cholesky factor
/// `L` (`A = L Lᵀ`, `faer`'s `cholesky_in_place` with default parameters,
/// the calls `Llt::new` makes, so the same factor bit for bit), or returns
/// `faer`'s error when `A` is not numerically positive definite. No copy of
/// `a` is made: for `D = 2048` that is a 32 MB allocation, zeroed page by
/// page, which was a tenth of reading a statistics file. The strict upper
/// triangle is left with work values; callers that keep `L` clear it. The
/// one place the crate calls `faer`'s Cholesky factorisation.
pub(crate) fn llt_in_place(a: faer::MatMut<'_, f64>, par: Par) -> Result<(), LltError> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let n = a.nrows();
    let mut mem = MemBuffer::new(cholesky_in_place_scratch::<f64>(n, par, Default::default()));
    cholesky_in_place(
        a,
        Default::default(),
        par,
        MemStack::new(&mut mem),
        Default::default(),
    )
    .map(|_| ())
}

/// `X = L⁻¹ B` for a lower-triangular `L` `[d, d]` and `B` `[d, n]`
/// (forward substitution; only the lower triangle of `l` is read).
///
/// # Errors
/// [`LinalgError::DimensionMismatch`] for a non-square `l` or a `b` with
/// other than `d` rows.
pub fn solve_lower_triangular(
    l: ArrayView2<'_, f64>,
    b: ArrayView2<'_, f64>,
    parallel: bool,
) -> Result<Array2<f64>, LinalgError> {
    check_square("triangular solve (L)", l)?;
    check_inner("triangular solve (L X = B)", l.nrows(), b.nrows())?;
    let l = to_mat(l);
    let mut x = to_mat(b);
    solve_lower_triangular_in_place(l.as_ref(), x.as_mut(), par(parallel));
    Ok(to_array(x.as_ref()))
}
