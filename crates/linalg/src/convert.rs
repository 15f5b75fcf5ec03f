//! Conversions between the public array type (`ndarray`) and the type the
//! heavy kernels run on (`faer`), plus — behind the `nalgebra` cargo feature —
//! `nalgebra::DMatrix`.
//!
//! Zero-copy views are offered where the memory layout allows it without
//! `unsafe` (a C- or Fortran-contiguous `ndarray` view maps onto a row- or
//! column-major `faer::MatRef`); everything else copies. Element type
//! conversion (`f32` features to `f64` arithmetic) always copies, because the
//! references (numpy, scipy) compute in float64 and so do we.

use faer::{Mat, MatRef};
use ndarray::{Array1, Array2, ArrayView1, ArrayView2};

/// A zero-copy `faer` view of a contiguous `ndarray` matrix, or `None` when
/// the view is neither C- nor Fortran-contiguous (then use [`to_faer`]).
///
/// A C-order `[n, d]` array becomes a row-major `MatRef` (row stride `d`, column
/// stride 1); a Fortran-order one a column-major `MatRef`.
pub fn try_faer_view<'a, T>(a: &ArrayView2<'a, T>) -> Option<MatRef<'a, T>> {
    let (n, d) = a.dim();
    if let Some(s) = a.to_slice() {
        return Some(MatRef::from_row_major_slice(s, n, d));
    }
    let t = (*a).reversed_axes();
    t.to_slice()
        .map(|s| MatRef::from_column_major_slice(s, n, d))
}

/// Copies an `ndarray` matrix of any layout into an owned `faer::Mat`,
/// converting each element to `f64` (exactly, for `f32` input).
pub fn to_faer_f64<T: Copy + Into<f64>>(a: ArrayView2<'_, T>) -> Mat<f64> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]].into())
}

/// Copies an `ndarray` matrix of any layout into an owned `faer::Mat` of the
/// same element type.
pub fn to_faer<T: Copy>(a: ArrayView2<'_, T>) -> Mat<T> {
    Mat::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
}

/// Copies a `faer` matrix into an owned, C-order `ndarray::Array2`.
pub fn to_ndarray<T: Copy>(m: MatRef<'_, T>) -> Array2<T> {
    Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
}

/// Copies a `faer` column vector into an `ndarray::Array1`.
pub fn col_to_ndarray<T: Copy>(c: faer::ColRef<'_, T>) -> Array1<T> {
    Array1::from_shape_fn(c.nrows(), |i| c[i])
}

/// Copies an `ndarray` vector into an owned `faer::Col<f64>`.
pub fn to_faer_col_f64<T: Copy + Into<f64>>(v: ArrayView1<'_, T>) -> faer::Col<f64> {
    faer::Col::from_fn(v.len(), |i| v[i].into())
}

#[cfg(feature = "nalgebra")]
mod nalgebra_conv {
    use nalgebra::DMatrix;
    use ndarray::{Array2, ArrayView2};

    /// Copies an `ndarray` matrix into a `nalgebra::DMatrix` (column-major).
    pub fn ndarray_to_nalgebra<T: nalgebra::Scalar + Copy>(a: ArrayView2<'_, T>) -> DMatrix<T> {
        DMatrix::from_fn(a.nrows(), a.ncols(), |i, j| a[[i, j]])
    }

    /// Copies a `nalgebra::DMatrix` into a C-order `ndarray::Array2`.
    pub fn nalgebra_to_ndarray<T: nalgebra::Scalar + Copy>(m: &DMatrix<T>) -> Array2<T> {
        Array2::from_shape_fn((m.nrows(), m.ncols()), |(i, j)| m[(i, j)])
    }

    /// A zero-copy `faer` view of a `nalgebra::DMatrix` (column-major storage).
    pub fn nalgebra_faer_view<T>(m: &DMatrix<T>) -> faer::MatRef<'_, T> {
        faer::MatRef::from_column_major_slice(m.as_slice(), m.nrows(), m.ncols())
    }

    /// Copies a `faer` matrix into a `nalgebra::DMatrix`.
    pub fn faer_to_nalgebra<T: nalgebra::Scalar + Copy>(m: faer::MatRef<'_, T>) -> DMatrix<T> {
        DMatrix::from_fn(m.nrows(), m.ncols(), |i, j| m[(i, j)])
    }
}

#[cfg(feature = "nalgebra")]
pub use nalgebra_conv::{
    faer_to_nalgebra, nalgebra_faer_view, nalgebra_to_ndarray, ndarray_to_nalgebra,
};

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{ShapeBuilder, array};

    #[test]
    fn views_follow_layout() {
        let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let v = a.view();
        let m = try_faer_view(&v).expect("C order is viewable");
        assert_eq!((m.nrows(), m.ncols()), (2, 3));
        assert_eq!(m[(1, 2)], 6.0);
        let f = Array2::from_shape_vec((2, 3).f(), vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]).unwrap();
        let fv = f.view();
        let mf = try_faer_view(&fv).expect("F order is viewable");
        assert_eq!(mf[(1, 2)], 6.0);
        assert_eq!(mf[(0, 1)], 2.0);
        let s = a.slice_axis(ndarray::Axis(1), ndarray::Slice::new(0, None, 2));
        assert!(try_faer_view(&s).is_none());
        let c = to_faer_f64(s);
        assert_eq!(c[(1, 1)], 6.0);
        assert_eq!(to_ndarray(c.as_ref()), array![[1.0, 3.0], [4.0, 6.0]]);
    }

    #[cfg(feature = "nalgebra")]
    #[test]
    fn nalgebra_round_trip() {
        let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
        let m = ndarray_to_nalgebra(a.view());
        assert_eq!(m[(1, 2)], 6.0);
        assert_eq!(nalgebra_to_ndarray(&m), a);
        let v = nalgebra_faer_view(&m);
        assert_eq!(v[(0, 1)], 2.0);
        assert_eq!(faer_to_nalgebra(v), m);
    }
}
