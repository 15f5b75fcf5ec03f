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
//!    The updates of [`GROUP`] panels are gathered into one rank-`2·GROUP·b`
//!    `faer` GEMM (LAPACK `dlatrd`'s scheme), and `A₂₂ V` is one pass of a
//!    symmetric-times-panel kernel over the stored lower triangle
//!    ([`symm_panel`]: each entry read once, used twice);
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

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::LinalgError;

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

/// Householder reflector `H = I − τ v vᵀ` with `H x = β e₀` (LAPACK `dlarfg`
/// without rescaling): on return `x[0] = β`, `x[1..]` holds `v[1..]`
/// (`v[0] = 1`); returns `τ` (0 when `x[1..]` is already zero).
#[inline(always)]
fn house(x: &mut [f64]) -> f64 {
    if x.len() < 2 {
        return 0.0;
    }
    let alpha = x[0];
    let xnorm = dot(&x[1..], &x[1..]).sqrt();
    if xnorm == 0.0 {
        return 0.0;
    }
    let norm = alpha.hypot(xnorm);
    let beta = if alpha >= 0.0 { -norm } else { norm };
    let tau = (beta - alpha) / beta;
    let scale = 1.0 / (alpha - beta);
    x[1..].iter_mut().for_each(|v| *v *= scale);
    x[0] = beta;
    tau
}

/// `Σ aᵢbᵢ` with eight partial sums (vectorisable without reassociation).
#[inline(always)]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut s = [0.0f64; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            s[l] += x[l] * y[l];
        }
    }
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7])) + tail
}

/// `y += α x`.
#[inline(always)]
fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}

/// Panels of `b` columns whose trailing updates are gathered into one
/// rank-`2·GROUP·b` update (as LAPACK `dlatrd` does for `dsytrd`).
const GROUP: usize = 4;

/// `C ← C + α A Bᵀ` on the lower triangle of `C` (`A`, `B` rectangular).
fn update_lower(
    c: faer::MatMut<'_, f64>,
    a: MatRef<'_, f64>,
    b: MatRef<'_, f64>,
    alpha: f64,
    par: Par,
) {
    matmul(
        c,
        BlockStructure::TriangularLower,
        Accum::Add,
        a,
        BlockStructure::Rectangular,
        b.transpose(),
        BlockStructure::Rectangular,
        alpha,
        par,
    );
}

/// Width of the panels [`symm_panel`] handles.
const SYMM_R: usize = 16;
/// Column tasks of [`symm_panel`] (a fixed split, so the sums do not depend
/// on the thread count).
const SYMM_TASKS: usize = 4;

/// `Y = A V` for the symmetric `m × m` matrix `A = a[p0.., p0..]` whose lower
/// triangle is stored, and `V` given row by row (`m` rows of [`SYMM_R`]);
/// returns `Y` row by row.
///
/// Every stored `A[i, j]` (`i > j`) is read once and used twice,
/// `Y[i] += A[i, j] V[j]` and `Y[j] += A[i, j] V[i]`, four columns at a time;
/// columns are split into [`SYMM_TASKS`] ranges of equal work whose partial
/// `Y` are added in order.
fn symm_panel(a: &Mat<f64>, p0: usize, vt: &[[f64; SYMM_R]], par: Par) -> Vec<[f64; SYMM_R]> {
    let m = vt.len();
    // Column ranges with equal numbers of stored entries (Σ (m − j)).
    let total = m * (m + 1) / 2;
    let mut bounds = vec![0usize];
    let mut acc = 0usize;
    for j in 0..m {
        acc += m - j;
        if acc * SYMM_TASKS >= total * bounds.len() && bounds.len() < SYMM_TASKS {
            bounds.push(j + 1);
        }
    }
    bounds.push(m);
    bounds.dedup();
    let task = |t: usize| -> Vec<[f64; SYMM_R]> {
        pulp::Arch::new().dispatch(SymmColumns {
            a,
            p0,
            vt,
            j0: bounds[t],
            j1: bounds[t + 1],
        })
    };
    let ntasks = bounds.len() - 1;
    let parts: Vec<Vec<[f64; SYMM_R]>> = match par {
        Par::Seq => (0..ntasks).map(task).collect(),
        _ => {
            use rayon::prelude::*;
            (0..ntasks).into_par_iter().map(task).collect()
        }
    };
    let mut y = vec![[0.0f64; SYMM_R]; m];
    for part in &parts {
        for (yi, pi) in y.iter_mut().zip(part) {
            for l in 0..SYMM_R {
                yi[l] += pi[l];
            }
        }
    }
    y
}

/// [`symm_columns`] compiled for the widest vector instructions the CPU has
/// (`pulp` runtime dispatch; the loops are plain, so the result is the same
/// on every CPU).
struct SymmColumns<'a> {
    a: &'a Mat<f64>,
    p0: usize,
    vt: &'a [[f64; SYMM_R]],
    j0: usize,
    j1: usize,
}

impl pulp::WithSimd for SymmColumns<'_> {
    type Output = Vec<[f64; SYMM_R]>;

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        symm_columns(self.a, self.p0, self.vt, self.j0, self.j1)
    }
}

/// The contribution of the stored columns `[j0, j1)` to `Y = A V` (see
/// [`symm_panel`]).
#[inline(always)]
fn symm_columns(
    a: &Mat<f64>,
    p0: usize,
    vt: &[[f64; SYMM_R]],
    j0: usize,
    j1: usize,
) -> Vec<[f64; SYMM_R]> {
    let m = vt.len();
    /// Columns per pass (their partial sums stay in registers).
    const COLS: usize = 4;
    let mut y = vec![[0.0f64; SYMM_R]; m];
    let col = |j: usize| &a.col_as_slice(p0 + j)[p0..p0 + m];
    let mut j = j0;
    while j < j1 {
        let w = COLS.min(j1 - j);
        // The w × w diagonal block (lower part), entry by entry.
        for c in 0..w {
            let cj = col(j + c);
            for i in j + c..j + w {
                let aij = cj[i];
                for l in 0..SYMM_R {
                    y[i][l] += aij * vt[j + c][l];
                }
                if i > j + c {
                    for l in 0..SYMM_R {
                        y[j + c][l] += aij * vt[i][l];
                    }
                }
            }
        }
        if w == COLS {
            let cs: [&[f64]; COLS] = std::array::from_fn(|c| col(j + c));
            let vs: [[f64; SYMM_R]; COLS] = std::array::from_fn(|c| vt[j + c]);
            let mut sums = [[0.0f64; SYMM_R]; COLS];
            for i in j + COLS..m {
                let ai: [f64; COLS] = std::array::from_fn(|c| cs[c][i]);
                let vi = &vt[i];
                let yi = &mut y[i];
                let mut acc = *yi;
                for c in 0..COLS {
                    for l in 0..SYMM_R {
                        acc[l] = ai[c].mul_add(vs[c][l], acc[l]);
                        sums[c][l] = ai[c].mul_add(vi[l], sums[c][l]);
                    }
                }
                *yi = acc;
            }
            for c in 0..COLS {
                for l in 0..SYMM_R {
                    y[j + c][l] += sums[c][l];
                }
            }
        } else {
            for c in 0..w {
                let cj = col(j + c);
                let vj = vt[j + c];
                let mut s = [0.0f64; SYMM_R];
                for i in j + w..m {
                    let aij = cj[i];
                    for l in 0..SYMM_R {
                        y[i][l] += aij * vj[l];
                        s[l] += aij * vt[i][l];
                    }
                }
                for l in 0..SYMM_R {
                    y[j + c][l] += s[l];
                }
            }
        }
        j += w;
    }
    y
}

/// Stage 1: reduces the lower triangle of `a` to a band of width `b`
/// (entries `(i, j)` with `i − j > b` become 0; the upper triangle is not read
/// or maintained).
///
/// Panels of `b` columns are reduced one after the other, but their two-sided
/// updates `A ← A − V Wᵀ − W Vᵀ` are gathered over [`GROUP`] panels: within a
/// group the stored matrix is the one at the start of the group, and what a
/// panel needs of the current matrix is formed from it and the gathered
/// `V_acc`, `W_acc`:
///
/// * the panel's columns are brought up to date before its QR:
///   `A[:, P] −= V_acc W_acc[P]ᵀ + W_acc V_acc[P]ᵀ`;
/// * `Y = A_cur V = A V − V_acc (W_accᵀ V) − W_acc (V_accᵀ V)`;
///
/// and one rank-`2·GROUP·b` update per group brings the rest up to date.
fn dense_to_band(a: &mut Mat<f64>, b: usize, par: Par) {
    let n = a.nrows();
    let nb = GROUP * b;
    let mut k = 0;
    while k + b + 1 < n {
        // The group's V and W live in rows [base, n) of the accumulators.
        let base = k + b;
        let mtot = n - base;
        let mut vacc = Mat::<f64>::zeros(mtot, nb);
        let mut wacc = Mat::<f64>::zeros(mtot, nb);
        let mut used = 0;
        let mut kp = k;
        while kp < k + nb && kp + b + 1 < n {
            let p0 = kp + b;
            let m = n - p0;
            let r = b.min(m - 1);
            // Bring the panel's columns (rows kp..) up to date.
            if used > 0 {
                let off = kp - base;
                let (va, wa) = (
                    vacc.as_ref().submatrix(off, 0, n - kp, used),
                    wacc.as_ref().submatrix(off, 0, n - kp, used),
                );
                let mut pan = a.as_mut().submatrix_mut(kp, kp, n - kp, b);
                faer::linalg::matmul::matmul(
                    pan.as_mut(),
                    Accum::Add,
                    va,
                    wa.subrows(0, b).transpose(),
                    -1.0,
                    par,
                );
                faer::linalg::matmul::matmul(
                    pan.as_mut(),
                    Accum::Add,
                    wa,
                    va.subrows(0, b).transpose(),
                    -1.0,
                    par,
                );
            }
            // Householder QR of the panel A[p0.., kp..kp+b]; V is unit lower
            // trapezoidal (m × r).
            let mut v = Mat::<f64>::zeros(m, r);
            let mut taus = vec![0.0f64; r];
            for c in 0..r {
                let col = a.col_as_slice_mut(kp + c);
                let tau = house(&mut col[p0 + c..n]);
                taus[c] = tau;
                let vc = v.col_as_slice_mut(c);
                vc[c] = 1.0;
                vc[c + 1..m].copy_from_slice(&col[p0 + c + 1..n]);
                col[p0 + c + 1..n].iter_mut().for_each(|x| *x = 0.0);
                if tau != 0.0 {
                    let vseg = &v.col_as_slice(c)[c..m];
                    for jj in c + 1..b {
                        let seg = &mut a.col_as_slice_mut(kp + jj)[p0 + c..n];
                        let s = dot(vseg, seg);
                        axpy(seg, -tau * s, vseg);
                    }
                }
            }
            // T (r × r, upper): T[c,c] = τ_c, T[..c, c] = −τ_c T[..c, ..c] V[:, ..c]ᵀ v_c.
            let mut t = Mat::<f64>::zeros(r, r);
            for c in 0..r {
                t[(c, c)] = taus[c];
                if c > 0 && taus[c] != 0.0 {
                    let vc = &v.col_as_slice(c)[c..m];
                    let z: Vec<f64> = (0..c).map(|i| dot(&v.col_as_slice(i)[c..m], vc)).collect();
                    for i in 0..c {
                        let s: f64 = (i..c).map(|l| t[(i, l)] * z[l]).sum();
                        t[(i, c)] = -taus[c] * s;
                    }
                }
            }
            // Y = A₂₂ V from the stored lower triangle: tril(A₂₂) V + stril(A₂₂)ᵀ V,
            // then the gathered corrections.
            let mut y = Mat::<f64>::zeros(m, r);
            if r == SYMM_R {
                let vt: Vec<[f64; SYMM_R]> =
                    (0..m).map(|i| std::array::from_fn(|l| v[(i, l)])).collect();
                let yt = symm_panel(a, p0, &vt, par);
                for l in 0..r {
                    for (dst, row) in y.col_as_slice_mut(l).iter_mut().zip(&yt) {
                        *dst = row[l];
                    }
                }
            } else {
                {
                    let a22 = a.as_ref().submatrix(p0, p0, m, m);
                    matmul(
                        y.as_mut(),
                        BlockStructure::Rectangular,
                        Accum::Replace,
                        a22,
                        BlockStructure::TriangularLower,
                        v.as_ref(),
                        BlockStructure::Rectangular,
                        1.0,
                        par,
                    );
                    matmul(
                        y.as_mut(),
                        BlockStructure::Rectangular,
                        Accum::Add,
                        a22.transpose(),
                        BlockStructure::StrictTriangularUpper,
                        v.as_ref(),
                        BlockStructure::Rectangular,
                        1.0,
                        par,
                    );
                }
            }
            let off = p0 - base;
            if used > 0 {
                let (va, wa) = (
                    vacc.as_ref().submatrix(off, 0, m, used),
                    wacc.as_ref().submatrix(off, 0, m, used),
                );
                let mut z = Mat::<f64>::zeros(used, r);
                faer::linalg::matmul::matmul(
                    z.as_mut(),
                    Accum::Replace,
                    wa.transpose(),
                    v.as_ref(),
                    1.0,
                    par,
                );
                faer::linalg::matmul::matmul(y.as_mut(), Accum::Add, va, z.as_ref(), -1.0, par);
                faer::linalg::matmul::matmul(
                    z.as_mut(),
                    Accum::Replace,
                    va.transpose(),
                    v.as_ref(),
                    1.0,
                    par,
                );
                faer::linalg::matmul::matmul(y.as_mut(), Accum::Add, wa, z.as_ref(), -1.0, par);
            }
            // X = Y T;  W = X − ½ V (Tᵀ (Vᵀ X)).
            let mut x = Mat::<f64>::zeros(m, r);
            faer::linalg::matmul::matmul(
                x.as_mut(),
                Accum::Replace,
                y.as_ref(),
                t.as_ref(),
                1.0,
                par,
            );
            let mut vtx = Mat::<f64>::zeros(r, r);
            faer::linalg::matmul::matmul(
                vtx.as_mut(),
                Accum::Replace,
                v.transpose(),
                x.as_ref(),
                1.0,
                par,
            );
            let mut s = Mat::<f64>::zeros(r, r);
            faer::linalg::matmul::matmul(
                s.as_mut(),
                Accum::Replace,
                t.transpose(),
                vtx.as_ref(),
                1.0,
                par,
            );
            faer::linalg::matmul::matmul(x.as_mut(), Accum::Add, v.as_ref(), s.as_ref(), -0.5, par);
            // Gather V and W (rows above `off` stay zero).
            vacc.as_mut()
                .submatrix_mut(off, used, m, r)
                .copy_from(v.as_ref());
            wacc.as_mut()
                .submatrix_mut(off, used, m, r)
                .copy_from(x.as_ref());
            used += r;
            kp += b;
        }
        // The rest of the matrix, rows and columns kp.., in one update:
        // A −= V_acc W_accᵀ + W_acc V_accᵀ (lower triangle).
        if kp < n {
            let off = kp - base;
            let (va, wa) = (
                vacc.as_ref().submatrix(off, 0, n - kp, used),
                wacc.as_ref().submatrix(off, 0, n - kp, used),
            );
            let mut a22 = a.as_mut().submatrix_mut(kp, kp, n - kp, n - kp);
            update_lower(a22.as_mut(), va, wa, -1.0, par);
            update_lower(a22.as_mut(), wa, va, -1.0, par);
        }
        k = kp;
    }
}

/// Lower band storage with room for the bulge: element `(i, j)`,
/// `0 ≤ i − j < ld`, at `ab[j·ld + (i − j)]`, so a column's band is contiguous.
struct Band {
    ab: Vec<f64>,
    ld: usize,
}

impl Band {
    /// Column `c`, rows `[r, r + len)` (`c ≤ r`, `r + len − c ≤ ld`).
    #[inline(always)]
    fn seg(&self, c: usize, r: usize, len: usize) -> &[f64] {
        let o = c * self.ld + (r - c);
        &self.ab[o..o + len]
    }

    #[inline(always)]
    fn seg_mut(&mut self, c: usize, r: usize, len: usize) -> &mut [f64] {
        let o = c * self.ld + (r - c);
        &mut self.ab[o..o + len]
    }
}

/// `D ← H D H` for the symmetric diagonal block `D = A[r0.., r0..]` (order
/// `v.len()`, lower storage) and `H = I − τ v vᵀ`:
/// `p = τ D v`, `w = p − ½τ (pᵀv) v`, `D ← D − v wᵀ − w vᵀ`.
#[inline(always)]
fn two_sided(a: &mut Band, r0: usize, v: &[f64], tau: f64, p: &mut Vec<f64>) {
    let l = v.len();
    p.clear();
    p.resize(l, 0.0);
    for c in 0..l {
        let col = a.seg(r0 + c, r0 + c, l - c);
        axpy(&mut p[c..l], v[c], col);
        p[c] += dot(&col[1..], &v[c + 1..l]);
    }
    p.iter_mut().for_each(|x| *x *= tau);
    let k = 0.5 * tau * dot(p, v);
    for (pi, vi) in p.iter_mut().zip(v) {
        *pi -= k * vi;
    }
    for c in 0..l {
        let (vc, wc) = (v[c], p[c]);
        let col = a.seg_mut(r0 + c, r0 + c, l - c);
        for ((x, vr), pr) in col.iter_mut().zip(&v[c..]).zip(&p[c..]) {
            *x -= vr * wc + pr * vc;
        }
    }
}

/// Makes a reflector from the column segment (annihilating all but its first
/// entry), copies `v` into `out`, zeroes the annihilated entries; returns `τ`.
#[inline(always)]
fn reflect_segment(seg: &mut [f64], out: &mut Vec<f64>) -> f64 {
    let tau = house(seg);
    out.clear();
    out.push(1.0);
    out.extend_from_slice(&seg[1..]);
    seg[1..].iter_mut().for_each(|x| *x = 0.0);
    tau
}

/// Stage 2: the band matrix (lower triangle of `w`, bandwidth `b`) to
/// tridiagonal form by Householder bulge chasing; returns the diagonal and the
/// subdiagonal (`e[i] = T[i+1, i]`, `e[n−1] = 0`).
///
/// Runs with the widest vector instructions the CPU has (`pulp` runtime
/// dispatch; plain loops, so the result is the same on every CPU).
fn band_to_tridiagonal(w: &Mat<f64>, b: usize) -> (Vec<f64>, Vec<f64>) {
    struct Op<'a>(&'a Mat<f64>, usize);
    impl pulp::WithSimd for Op<'_> {
        type Output = (Vec<f64>, Vec<f64>);
        #[inline(always)]
        fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
            band_to_tridiagonal_impl(self.0, self.1)
        }
    }
    pulp::Arch::new().dispatch(Op(w, b))
}

#[inline(always)]
fn band_to_tridiagonal_impl(w: &Mat<f64>, b: usize) -> (Vec<f64>, Vec<f64>) {
    let n = w.nrows();
    // The bulge of a chase step reaches 2b − 1 rows below the diagonal.
    let ld = 2 * b + 1;
    let mut a = Band {
        ab: vec![0.0; ld * n],
        ld,
    };
    for c in 0..n {
        let len = (b + 1).min(n - c);
        a.seg_mut(c, c, len)
            .copy_from_slice(&w.col_as_slice(c)[c..c + len]);
    }
    let mut v = Vec::with_capacity(b);
    let mut v2 = Vec::with_capacity(b);
    let mut p = Vec::with_capacity(b);
    let mut y = vec![0.0f64; b];
    for j in 0..n.saturating_sub(2) {
        // Annihilate column j below the subdiagonal.
        let mut r0 = j + 1;
        let mut len = b.min(n - r0);
        if len < 2 {
            continue;
        }
        let mut tau = reflect_segment(a.seg_mut(j, r0, len), &mut v);
        if tau != 0.0 {
            two_sided(&mut a, r0, &v, tau, &mut p);
        }
        // Chase the bulge: B = A[rb.., r0..r0+len] ← H₂ B H, H₂ from B's first column.
        loop {
            let rb = r0 + len;
            if rb >= n {
                break;
            }
            let lenb = b.min(n - rb);
            let y = &mut y[..lenb];
            if tau != 0.0 {
                // y = −τ B v (B before the update).
                y.iter_mut().for_each(|x| *x = 0.0);
                for (c, &vc) in v.iter().enumerate().take(len) {
                    axpy(y, vc, a.seg(r0 + c, rb, lenb));
                }
                y.iter_mut().for_each(|x| *x *= -tau);
                axpy(a.seg_mut(r0, rb, lenb), v[0], y);
            }
            if lenb < 2 {
                if tau != 0.0 {
                    for (c, &vc) in v.iter().enumerate().take(len).skip(1) {
                        axpy(a.seg_mut(r0 + c, rb, lenb), vc, y);
                    }
                }
                break;
            }
            let tau2 = reflect_segment(a.seg_mut(r0, rb, lenb), &mut v2);
            for (c, &vc) in v.iter().enumerate().take(len).skip(1) {
                let col = a.seg_mut(r0 + c, rb, lenb);
                if tau != 0.0 {
                    axpy(col, vc, y);
                }
                if tau2 != 0.0 {
                    let s = dot(&v2, col);
                    axpy(col, -tau2 * s, &v2);
                }
            }
            if tau2 != 0.0 {
                two_sided(&mut a, rb, &v2, tau2, &mut p);
            }
            r0 = rb;
            len = lenb;
            std::mem::swap(&mut v, &mut v2);
            tau = tau2;
        }
    }
    let d = (0..n).map(|i| a.ab[i * ld]).collect();
    let e = (0..n)
        .map(|i| if i + 1 < n { a.ab[i * ld + 1] } else { 0.0 })
        .collect();
    (d, e)
}

/// `√(a² + b²)` without overflow for large arguments.
#[cfg(test)]
#[inline]
fn pythag(a: f64, b: f64) -> f64 {
    let (a, b) = (a.abs(), b.abs());
    if a < 1e150 && b < 1e150 {
        (a * a + b * b).sqrt()
    } else {
        a.hypot(b)
    }
}

/// Eigenvalues of the symmetric tridiagonal matrix (`d` diagonal, `e[i]` the
/// subdiagonal `T[i+1, i]`) by the root-free implicit QL algorithm of Pal,
/// Walker & Kahan (as LAPACK `dsterf`): the iteration runs on the squares
/// `e_i²`, so its inner loop has no square root. Wilkinson shifts; 2 × 2
/// blocks are solved directly. `d` is overwritten with the eigenvalues, `e`
/// with garbage; `false` if an eigenvalue needed more than 60 iterations or
/// the input is not finite.
///
/// The matrix is scaled to norm 1 when its norm is far from 1 (so the squares
/// neither overflow nor underflow). A subdiagonal entry is negligible when
/// `|e_m| ≤ ε · max(|d_m| + |d_{m+1}|, t)` with `t` the running
/// `max_{i ≤ l} |d_i| + |e_i|` (EISPACK's test): a perturbation of `ε‖T‖`,
/// within the backward error of the reduction, which also lets blocks of
/// round-off-sized entries (low-rank input) deflate at once.
fn tridiagonal_ql(d: &mut [f64], e: &mut [f64]) -> bool {
    let n = d.len();
    if n == 0 {
        return true;
    }
    e[n - 1] = 0.0;
    if d.iter().chain(e.iter()).any(|v| !v.is_finite()) {
        return false;
    }
    let anorm = d.iter().chain(e.iter()).fold(0.0f64, |m, v| m.max(v.abs()));
    if anorm == 0.0 {
        return true;
    }
    let scale = if !(1e-100..=1e100).contains(&anorm) {
        1.0 / anorm
    } else {
        1.0
    };
    if scale != 1.0 {
        d.iter_mut().chain(e.iter_mut()).for_each(|v| *v *= scale);
    }
    // Running norm for the deflation test, then e ← e².
    let mut tst: Vec<f64> = Vec::with_capacity(n);
    let mut t = 0.0f64;
    for i in 0..n {
        t = t.max(d[i].abs() + e[i].abs());
        tst.push(t);
    }
    e.iter_mut().for_each(|v| *v *= *v);
    let eps = f64::EPSILON;
    let mut l = 0;
    while l < n {
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let bound = eps * (d[m].abs() + d[m + 1].abs()).max(tst[l]);
                if e[m] <= bound * bound {
                    break;
                }
                m += 1;
            }
            if m + 1 < n {
                e[m] = 0.0;
            }
            if m == l {
                break;
            }
            if m == l + 1 {
                let (rt1, rt2) = eig2x2(d[l], e[l].sqrt(), d[l + 1]);
                d[l] = rt1;
                d[l + 1] = rt2;
                e[l] = 0.0;
                break;
            }
            iter += 1;
            if iter > 60 {
                return false;
            }
            // Wilkinson shift from the leading 2 × 2 block.
            let p = d[l];
            let rte = e[l].sqrt();
            let g = (d[l + 1] - p) / (2.0 * rte);
            let r = g.hypot(1.0);
            let sigma = p - rte / (g + r.copysign(g));
            let (mut c, mut s) = (1.0f64, 0.0f64);
            let mut gamma = d[m] - sigma;
            let mut pp = gamma * gamma;
            for i in (l..m).rev() {
                let bb = e[i];
                let r = pp + bb;
                if i + 1 != m {
                    e[i + 1] = s * r;
                }
                let oldc = c;
                c = pp / r;
                s = bb / r;
                let oldgam = gamma;
                let alpha = d[i];
                gamma = c * (alpha - sigma) - s * oldgam;
                d[i + 1] = oldgam + (alpha - gamma);
                pp = if c != 0.0 {
                    (gamma * gamma) / c
                } else {
                    oldc * bb
                };
            }
            e[l] = s * pp;
            d[l] = sigma + gamma;
        }
        l += 1;
    }
    if scale != 1.0 {
        d.iter_mut().for_each(|v| *v /= scale);
    }
    d.iter().all(|v| v.is_finite())
}

/// Eigenvalues `(rt1, rt2)`, `|rt1| ≥ |rt2|`, of `[[a, b], [b, c]]` (LAPACK
/// `dlae2`: no overflow for finite input, small eigenvalue by the product
/// formula).
fn eig2x2(a: f64, b: f64, c: f64) -> (f64, f64) {
    let sm = a + c;
    let df = a - c;
    let adf = df.abs();
    let tb = b + b;
    let ab = tb.abs();
    let (acmx, acmn) = if a.abs() > c.abs() { (a, c) } else { (c, a) };
    let rt = if adf > ab {
        adf * (1.0 + (ab / adf).powi(2)).sqrt()
    } else if adf < ab {
        ab * (1.0 + (adf / ab).powi(2)).sqrt()
    } else {
        ab * std::f64::consts::SQRT_2
    };
    if sm < 0.0 {
        let rt1 = 0.5 * (sm - rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else if sm > 0.0 {
        let rt1 = 0.5 * (sm + rt);
        (rt1, (acmx / rt1) * acmn - (b / rt1) * b)
    } else {
        (0.5 * rt, -0.5 * rt)
    }
}

/// The previous QL (`tql1`, with square roots), kept for comparison.
#[cfg(test)]
/// Eigenvalues of the symmetric tridiagonal matrix (`d` diagonal, `e[i]` the
/// subdiagonal `T[i+1, i]`) by the implicit QL algorithm with Wilkinson shifts
/// (`tql1`). `d` is overwritten with the eigenvalues; `false` if an eigenvalue
/// needed more than 60 iterations.
///
/// A subdiagonal entry is negligible when `|e_m| ≤ ε · max(|d_m| + |d_{m+1}|,
/// t)` with `t` the running `max_{i ≤ l} |d_i| + |e_i|` (EISPACK's test): a
/// perturbation of `ε‖T‖`, within the backward error of the reduction, and it
/// lets blocks of round-off-sized entries (low-rank input) deflate at once.
fn tridiagonal_tql1(d: &mut [f64], e: &mut [f64]) -> bool {
    let n = d.len();
    if n == 0 {
        return true;
    }
    e[n - 1] = 0.0;
    let mut tst1 = 0.0f64;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut iter = 0;
        loop {
            let mut m = l;
            while m + 1 < n {
                let dd = d[m].abs() + d[m + 1].abs();
                if e[m].abs() <= f64::EPSILON * dd.max(tst1) {
                    break;
                }
                m += 1;
            }
            if m == l {
                break;
            }
            iter += 1;
            if iter > 60 {
                return false;
            }
            let mut g = (d[l + 1] - d[l]) / (2.0 * e[l]);
            let mut r = pythag(g, 1.0);
            g = d[m] - d[l] + e[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0, 1.0, 0.0);
            let mut deflated = false;
            let mut i = m;
            while i > l {
                i -= 1;
                let f = s * e[i];
                let bb = c * e[i];
                r = pythag(f, g);
                e[i + 1] = r;
                if r == 0.0 {
                    d[i + 1] -= p;
                    e[m] = 0.0;
                    deflated = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = d[i + 1] - p;
                r = (d[i] - g) * s + 2.0 * c * bb;
                p = s * r;
                d[i + 1] = g + p;
                g = c * r - bb;
            }
            if deflated {
                continue;
            }
            d[l] -= p;
            e[l] = g;
            e[m] = 0.0;
        }
    }
    true
}

#[cfg(test)]
mod tests {
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
            let y = symm_panel(&a, p0, &vt, Par::rayon(0));
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
