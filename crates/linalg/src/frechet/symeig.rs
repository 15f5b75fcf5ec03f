//! Eigenvalues (only) of a real symmetric matrix by two-stage
//! tridiagonalisation, for the `Σ √λ` term of the Fréchet distance.
//!
//! A one-stage Householder tridiagonalisation (LAPACK `dsytrd`, `faer`'s
//! `tridiag_in_place`) reads the whole trailing matrix once per column with a
//! matrix–vector product: half of its `4n³/3` flops are memory bound. The
//! two-stage scheme (Bischof, Lang & Sun 2000, "A framework for symmetric band
//! reduction"; Haidar, Ltaief & Dongarra 2011; LAPACK 3.7 `dsytrd_2stage`)
//! moves all of the `O(n³)` work into matrix–matrix products:
//!
//! 1. **dense → band** (bandwidth `b`): for each panel of `b` columns, a
//!    Householder QR of the block below the band, `Q = I − V T Vᵀ` (compact WY),
//!    and the two-sided update `A₂₂ ← Qᵀ A₂₂ Q` as
//!    `X = A₂₂ V T`, `W = X − ½ V (Tᵀ Vᵀ X)`, `A₂₂ ← A₂₂ − V Wᵀ − W Vᵀ`.
//!    The updates of [`GROUP`](dense_to_band::GROUP) panels are gathered into one rank-`2·GROUP·b`
//!    `faer` GEMM (LAPACK `dlatrd`'s scheme), and `A₂₂ V` is one pass of a
//!    symmetric-times-panel kernel over the stored lower triangle
//!    ([`symm_panel`](dense_to_band::symm_panel): each entry read once, used twice);
//! 2. **band → tridiagonal** by Householder bulge chasing on a compact band
//!    store (`O(n² b)` flops, cache resident): for every column, one reflector
//!    annihilates the column below the subdiagonal; the bulge it creates in the
//!    next block is chased down the band by annihilating its first column;
//! 3. **tridiagonal eigenvalues** by the implicit QL algorithm with Wilkinson
//!    shifts (`tql1`; Bowdler, Martin, Reinsch & Wilkinson 1968).
//!
//! The hand-written loops (stages 2 and the kernel of stage 1) are compiled
//! for the widest vector instructions the CPU has and chosen at run time
//! (`pulp`); they are plain loops (and `mul_add`, which is exactly rounded),
//! so the result does not depend on the CPU.
//!
//! Every transformation is orthogonal, so the eigenvalues carry the usual
//! backward error `O(ε‖A‖)`. Small matrices, and any non-finite or
//! non-converged result, go to `faer::Mat::self_adjoint_eigenvalues`.

use faer::{Mat, MatRef, Par, Side};

use crate::LinalgError;

mod band_to_tridiagonal;
mod dense_to_band;
mod reflector;
mod tridiagonal_ql;

use band_to_tridiagonal::band_to_tridiagonal;
use dense_to_band::dense_to_band;
use tridiagonal_ql::tridiagonal_ql;

/// Below this order `faer`'s one-stage solver is used directly.
const TWO_STAGE_MIN: usize = 256;
/// Bandwidth of the intermediate band matrix.
const BAND: usize = 16;

/// The eigenvalues (unordered) of the symmetric matrix whose lower triangle
/// is `a`, consuming `a` (the two-stage reduction works in place). `None` if
/// the iteration did not converge or the result is not finite; the caller
/// then retries with [`faer_eigenvalues`] on a fresh copy.
pub(crate) fn eigenvalues_consuming(a: Mat<f64>, par: Par) -> Option<Vec<f64>> {
    if a.nrows() < TWO_STAGE_MIN {
        return faer_eigenvalues(a.as_ref()).ok();
    }
    two_stage_in_place(a, BAND, par)
}

/// `faer`'s one-stage solver (the fallback).
///
/// # Errors
/// [`LinalgError::Numerical`] if it does not converge.
pub(crate) fn faer_eigenvalues(a: MatRef<'_, f64>) -> Result<Vec<f64>, LinalgError> {
    a.self_adjoint_eigenvalues(Side::Lower)
        .map_err(|e| LinalgError::Numerical {
            what: "symmetric eigenvalues",
            detail: format!("{e:?}"),
        })
}

/// Two-stage solver on a copy of the lower triangle of `a`.
#[cfg(test)]
fn two_stage(a: MatRef<'_, f64>, b: usize, par: Par) -> Option<Vec<f64>> {
    two_stage_in_place(a.to_owned(), b, par)
}

/// Two-stage solver in place (reads and overwrites the lower triangle of `w`).
fn two_stage_in_place(mut w: Mat<f64>, b: usize, par: Par) -> Option<Vec<f64>> {
    let b = b.max(2);
    dense_to_band(&mut w, b, par);
    let (mut d, mut e) = band_to_tridiagonal(&w, b);
    drop(w);
    if !tridiagonal_ql(&mut d, &mut e) || d.iter().any(|v| !v.is_finite()) {
        return None;
    }
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::dense_to_band::{SYMM_R, SymmScratch, symm_panel};
    use super::tridiagonal_ql::tridiagonal_tql1;
    use super::*;
    use rand::{RngExt, SeedableRng};

    fn sorted(mut v: Vec<f64>) -> Vec<f64> {
        v.sort_by(f64::total_cmp);
        v
    }

    fn check(a: &Mat<f64>, b: usize, label: &str) {
        let want = sorted(a.self_adjoint_eigenvalues(Side::Lower).unwrap());
        let got = sorted(two_stage(a.as_ref(), b, Par::rayon(0)).expect(label));
        let scale = want.iter().fold(f64::MIN_POSITIVE, |m, v| m.max(v.abs()));
        let n = a.nrows() as f64;
        for (g, w) in got.iter().zip(&want) {
            assert!(
                (g - w).abs() <= 50.0 * n * f64::EPSILON * scale,
                "{label}: {g} vs {w}"
            );
        }
    }

    fn random_sym(n: usize, seed: u64, psd: bool) -> Mat<f64> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        if psd {
            let x = Mat::<f64>::from_fn(n + 3, n, |_, j| {
                (rng.random::<f64>() - 0.5) * (1.0 + j as f64 / n as f64)
            });
            x.transpose() * &x
        } else {
            let x = Mat::<f64>::from_fn(n, n, |_, _| rng.random::<f64>() - 0.5);
            &x + x.transpose()
        }
    }

    #[test]
    fn matches_faer_on_random_matrices() {
        for (n, b) in [
            (3, 2),
            (5, 2),
            (17, 4),
            (40, 16),
            (64, 7),
            (100, 16),
            (129, 32),
            (300, 16),
            (301, 24),
        ] {
            check(
                &random_sym(n, n as u64, true),
                b,
                &format!("psd n={n} b={b}"),
            );
            check(
                &random_sym(n, 1000 + n as u64, false),
                b,
                &format!("indefinite n={n} b={b}"),
            );
        }
    }

    #[test]
    fn symm_panel_is_a_v() {
        for (n, p0) in [(40usize, 3usize), (9, 0), (130, 17)] {
            let full = random_sym(n, 5, false);
            // garbage in the upper triangle: never read
            let mut a = full.clone();
            for j in 0..n {
                for i in 0..j {
                    a[(i, j)] = f64::NAN;
                }
            }
            let m = n - p0;
            let v = Mat::<f64>::from_fn(m, SYMM_R, |i, l| ((i * 7 + l * 3) % 11) as f64 - 5.0);
            let vt: Vec<[f64; SYMM_R]> =
                (0..m).map(|i| std::array::from_fn(|l| v[(i, l)])).collect();
            let mut scratch = SymmScratch::default();
            let y = symm_panel(&a, p0, &vt, Par::rayon(0), &mut scratch);
            let want = full.as_ref().submatrix(p0, p0, m, m) * &v;
            for i in 0..m {
                for l in 0..SYMM_R {
                    assert!(
                        (y[i][l] - want[(i, l)]).abs() < 1e-9,
                        "n {n} p0 {p0} ({i},{l}): {} vs {}",
                        y[i][l],
                        want[(i, l)]
                    );
                }
            }
        }
    }

    #[test]
    fn structured_matrices() {
        // diagonal (already tridiagonal), zero, repeated eigenvalues, low rank
        let n = 70;
        let diag = Mat::<f64>::from_fn(n, n, |i, j| if i == j { (i % 5) as f64 } else { 0.0 });
        check(&diag, 16, "diagonal");
        check(&Mat::<f64>::zeros(n, n), 16, "zero");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let u = Mat::<f64>::from_fn(n, 3, |_, _| rng.random::<f64>() - 0.5);
        let low = &u * u.transpose();
        check(&low, 16, "rank 3");
        let ident = Mat::<f64>::from_fn(n, n, |i, j| if i == j { 2.0 } else { 0.0 });
        check(&ident, 8, "2 I");
    }

    #[test]
    fn public_entry_uses_both_paths() {
        for n in [10, 260] {
            let a = random_sym(n, 77, true);
            let got = sorted(eigenvalues_consuming(a.clone(), Par::Seq).unwrap());
            let want = sorted(a.self_adjoint_eigenvalues(Side::Lower).unwrap());
            let scale = want[n - 1];
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-12 * scale);
            }
        }
    }

    #[test]
    fn root_free_ql_matches_tql1() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        for (n, scale) in [
            (1usize, 1.0),
            (2, 1.0),
            (3, 1e-120),
            (600, 1.0),
            (600, 1e160),
            (257, 1e-3),
        ] {
            let d0: Vec<f64> = (0..n)
                .map(|_| scale * (rng.random::<f64>() - 0.3))
                .collect();
            let e0: Vec<f64> = (0..n)
                .map(|_| scale * (rng.random::<f64>() - 0.5))
                .collect();
            let (mut d1, mut e1) = (d0.clone(), e0.clone());
            let (mut d2, mut e2) = (d0.clone(), e0.clone());
            let t0 = std::time::Instant::now();
            assert!(tridiagonal_ql(&mut d1, &mut e1));
            let t1 = t0.elapsed();
            assert!(tridiagonal_tql1(&mut d2, &mut e2));
            let t2 = t0.elapsed() - t1;
            eprintln!("n {n}: root-free {t1:?}, tql1 {t2:?}");
            let (g, w) = (sorted(d1), sorted(d2));
            let norm = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            for (a, b) in g.iter().zip(&w) {
                assert!(
                    (a - b).abs() <= 20.0 * n as f64 * f64::EPSILON * norm,
                    "n {n}: {a} vs {b}"
                );
            }
        }
        // zero / diagonal / NaN
        let (mut d, mut e) = (vec![0.0; 5], vec![0.0; 5]);
        assert!(tridiagonal_ql(&mut d, &mut e));
        assert_eq!(d, vec![0.0; 5]);
        let (mut d, mut e) = (vec![1.0, f64::NAN], vec![0.5, 0.0]);
        assert!(!tridiagonal_ql(&mut d, &mut e));
    }

    #[test]
    fn ql_on_known_tridiagonal() {
        // T = tridiag(-1, 2, -1) of order n: λ_k = 2 − 2 cos(kπ/(n+1)).
        let n = 50;
        let mut d = vec![2.0; n];
        let mut e = vec![-1.0; n];
        assert!(tridiagonal_ql(&mut d, &mut e));
        let got = sorted(d);
        for (k, g) in got.iter().enumerate() {
            let want = 2.0 - 2.0 * (((k + 1) as f64) * std::f64::consts::PI / (n + 1) as f64).cos();
            assert!((g - want).abs() < 1e-13, "{k}: {g} vs {want}");
        }
    }
}
