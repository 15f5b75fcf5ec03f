//! Principal component analysis by eigen-decomposition of the sample
//! covariance (scikit-learn's `PCA(svd_solver="covariance_eigh")` path, which
//! its `"auto"` solver picks when D is small relative to N).
//!
//! For `X` with rows `x_i ∈ ℝ^D`, `i = 1..N`:
//!
//! ```text
//! μ = (1/N) Σ_i x_i
//! C = (1/(N−1)) Σ_i (x_i − μ)(x_i − μ)ᵀ          (D × D, ddof 1 as np.cov)
//! C = V Λ Vᵀ,   λ_1 ≥ λ_2 ≥ … ≥ λ_D ≥ 0          (negative round-off clamped to 0)
//! components = the first k columns of V, as rows (k × D)
//! transform(y) = (y − μ) · componentsᵀ            (M × k)
//! ```
//!
//! Signs follow scikit-learn's `svd_flip(u_based_decision=False)`: in every
//! component the entry of largest magnitude is positive, so the output is
//! deterministic. (Metrics that only use distances after the projection do
//! not depend on the signs.)

use faer::{Accum, Mat, Par, Side};
use ndarray::{Array1, Array2, ArrayView2, Axis};

use crate::LinalgError;

/// A fitted PCA: the training mean and the leading eigenvectors of the
/// training covariance (see the [module docs](self) for the formulas;
/// scikit-learn `sklearn.decomposition.PCA`, `covariance_eigh` solver).
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// `μ`, the column mean of the fitted data, length D.
    pub mean: Array1<f64>,
    /// The principal axes as rows (k × D), sorted by decreasing variance;
    /// each row has unit norm and its largest-magnitude entry positive.
    pub components: Array2<f64>,
    /// `λ_1 ≥ … ≥ λ_k`: the variance along each component (ddof 1).
    pub explained_variance: Array1<f64>,
    /// `λ_j / Σ_{i=1..D} λ_i` (0 when the data have zero total variance).
    pub explained_variance_ratio: Array1<f64>,
    /// `Σ_{i=1..D} λ_i = tr C`, the total variance of the fitted data.
    pub total_variance: f64,
}

/// Checks every value of `x` is finite.
fn check_finite<A: Copy + Into<f64>>(
    what: &'static str,
    x: &ArrayView2<'_, A>,
) -> Result<(), LinalgError> {
    for ((row, col), v) in x.indexed_iter() {
        if !(*v).into().is_finite() {
            return Err(LinalgError::NonFinite { what, row, col });
        }
    }
    Ok(())
}

impl Pca {
    /// Fits a PCA with `n_components` axes on `x` (rows are samples), in
    /// float64 whatever the input type.
    ///
    /// `C = (X − 1μᵀ)ᵀ(X − 1μᵀ)/(N−1)` is formed with one `faer` product and
    /// decomposed with `faer`'s `self_adjoint_eigen`; eigenpairs are sorted by
    /// decreasing eigenvalue (scikit-learn's `covariance_eigh` path).
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] for N < 2, [`LinalgError::InvalidParameter`]
    /// for `n_components == 0` or `> min(N, D)`, [`LinalgError::NonFinite`]
    /// for NaN/Inf input, [`LinalgError::Numerical`] if the eigensolver fails.
    pub fn fit<A: Copy + Into<f64>>(
        x: ArrayView2<'_, A>,
        n_components: usize,
    ) -> Result<Pca, LinalgError> {
        let (n, d) = x.dim();
        if n < 2 {
            return Err(LinalgError::TooFewRows {
                what: "PCA fit",
                needed: 2,
                got: n,
            });
        }
        if n_components == 0 || n_components > n.min(d) {
            return Err(LinalgError::InvalidParameter(format!(
                "PCA: n_components = {n_components} must be in 1..={} (min(N = {n}, D = {d}))",
                n.min(d)
            )));
        }
        check_finite("PCA fit", &x)?;
        let xf = x.mapv(|v| v.into());
        let mean = xf.mean_axis(Axis(0)).ok_or(LinalgError::TooFewRows {
            what: "PCA fit",
            needed: 2,
            got: n,
        })?;
        let xc = Mat::<f64>::from_fn(n, d, |i, j| xf[[i, j]] - mean[j]);
        let mut cov = Mat::<f64>::zeros(d, d);
        faer::linalg::matmul::matmul(
            cov.as_mut(),
            Accum::Replace,
            xc.transpose(),
            xc.as_ref(),
            1.0 / (n as f64 - 1.0),
            Par::Seq,
        );
        // Symmetrise exactly (the product is symmetric up to round-off only).
        for j in 0..d {
            for i in (j + 1)..d {
                let s = 0.5 * (cov[(i, j)] + cov[(j, i)]);
                cov[(i, j)] = s;
                cov[(j, i)] = s;
            }
        }
        let evd = cov
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| LinalgError::Numerical {
                what: "PCA eigen-decomposition",
                detail: format!("{e:?}"),
            })?;
        let s = evd.S().column_vector();
        let u = evd.U();
        // faer sorts eigenvalues in nondecreasing order; take them from the end.
        let mut lambdas: Vec<f64> = (0..d).map(|i| s[d - 1 - i].max(0.0)).collect();
        if lambdas.iter().any(|l| !l.is_finite()) {
            return Err(LinalgError::Numerical {
                what: "PCA eigen-decomposition",
                detail: "non-finite eigenvalue".into(),
            });
        }
        let total_variance: f64 = lambdas.iter().sum();
        lambdas.truncate(n_components);
        let mut components = Array2::<f64>::zeros((n_components, d));
        for (c, mut row) in components.outer_iter_mut().enumerate() {
            let col = d - 1 - c;
            // svd_flip(u_based_decision=False): largest |entry| (first on ties) positive.
            let mut arg = 0;
            for j in 1..d {
                if u[(j, col)].abs() > u[(arg, col)].abs() {
                    arg = j;
                }
            }
            let sign = if u[(arg, col)] < 0.0 { -1.0 } else { 1.0 };
            for j in 0..d {
                row[j] = sign * u[(j, col)];
            }
        }
        let explained_variance = Array1::from_vec(lambdas);
        let explained_variance_ratio = if total_variance > 0.0 {
            explained_variance.mapv(|l| l / total_variance)
        } else {
            Array1::zeros(n_components)
        };
        Ok(Pca {
            mean,
            components,
            explained_variance,
            explained_variance_ratio,
            total_variance,
        })
    }

    /// The number of components k.
    pub fn n_components(&self) -> usize {
        self.components.nrows()
    }

    /// The input dimension D.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Projects `y` (M × D) onto the components: `(y − 1μᵀ) · componentsᵀ`
    /// (M × k, float64).
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if `y` does not have D columns,
    /// [`LinalgError::NonFinite`] for NaN/Inf input.
    pub fn transform<A: Copy + Into<f64>>(
        &self,
        y: ArrayView2<'_, A>,
    ) -> Result<Array2<f64>, LinalgError> {
        let (m, d) = y.dim();
        if d != self.dim() {
            return Err(LinalgError::DimensionMismatch {
                what: "PCA transform",
                left: self.dim(),
                right: d,
            });
        }
        check_finite("PCA transform", &y)?;
        let yc = Mat::<f64>::from_fn(m, d, |i, j| y[[i, j]].into() - self.mean[j]);
        let k = self.n_components();
        let comps = Mat::<f64>::from_fn(d, k, |j, c| self.components[[c, j]]);
        let mut out = Mat::<f64>::zeros(m, k);
        faer::linalg::matmul::matmul(
            out.as_mut(),
            Accum::Replace,
            yc.as_ref(),
            comps.as_ref(),
            1.0,
            Par::Seq,
        );
        Ok(Array2::from_shape_fn((m, k), |(i, c)| out[(i, c)]))
    }

    /// `fit(x, n_components)` followed by `transform(x)`.
    ///
    /// # Errors
    /// As [`Pca::fit`].
    pub fn fit_transform<A: Copy + Into<f64>>(
        x: ArrayView2<'_, A>,
        n_components: usize,
    ) -> Result<(Pca, Array2<f64>), LinalgError> {
        let pca = Pca::fit(x, n_components)?;
        let z = pca.transform(x)?;
        Ok((pca, z))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn axis_aligned_variances_are_recovered_in_order() {
        // Column 1 has the largest spread, column 0 the smallest.
        let x = array![
            [0.0, 0.0, 1.0],
            [1.0, 10.0, -1.0],
            [0.0, -10.0, 2.0],
            [-1.0, 0.0, -2.0]
        ];
        let pca = Pca::fit(x.view(), 3).unwrap();
        assert!(pca.explained_variance[0] >= pca.explained_variance[1]);
        assert!(pca.explained_variance[1] >= pca.explained_variance[2]);
        let total: f64 = pca.explained_variance.sum();
        // tr C equals the sum of the per-column variances.
        let col_var: f64 = (0..3).map(|j| x.column(j).var(1.0)).sum();
        assert!((total - col_var).abs() < 1e-12 * col_var);
        // Components are orthonormal.
        let g = pca.components.dot(&pca.components.t());
        for i in 0..3 {
            for j in 0..3 {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((g[[i, j]] - want).abs() < 1e-12);
            }
        }
        // A full-rank projection preserves pairwise distances.
        let z = pca.transform(x.view()).unwrap();
        let d_x = (&x.row(1) - &x.row(2)).mapv(|v| v * v).sum();
        let d_z = (&z.row(1) - &z.row(2)).mapv(|v| v * v).sum();
        assert!((d_x - d_z).abs() < 1e-10 * d_x);
    }

    #[test]
    fn bad_input_is_an_error() {
        let x = array![[0.0f32, 1.0], [1.0, f32::NAN], [2.0, 0.0]];
        assert!(matches!(
            Pca::fit(x.view(), 1),
            Err(LinalgError::NonFinite { row: 1, col: 1, .. })
        ));
        let x = array![[0.0f32, 1.0], [1.0, 2.0]];
        assert!(Pca::fit(x.view(), 3).is_err());
        assert!(Pca::fit(x.view(), 0).is_err());
        let pca = Pca::fit(x.view(), 1).unwrap();
        let y = array![[0.0f32, 1.0, 2.0]];
        assert!(matches!(
            pca.transform(y.view()),
            Err(LinalgError::DimensionMismatch { .. })
        ));
    }
}
