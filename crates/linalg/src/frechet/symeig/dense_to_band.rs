//! Stage 1: dense symmetric → band (bandwidth `b`) by blocked Householder
//! panels; see the [parent module](super) for the scheme.

use faer::linalg::matmul::triangular::{BlockStructure, matmul};
use faer::{Accum, Mat, MatRef, Par};

use super::reflector::{axpy, dot, house};

/// Panels of `b` columns whose trailing updates are gathered into one
/// rank-`2·GROUP·b` update (as LAPACK `dlatrd` does for `dsytrd`).
pub(super) const GROUP: usize = 4;

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
pub(super) const SYMM_R: usize = 16;
/// Column tasks of [`symm_panel`] (a fixed split, so the sums do not depend
/// on the thread count).
const SYMM_TASKS: usize = 4;

/// Buffers [`symm_panel`] reuses from panel to panel: one partial `Y` per
/// column task and their sum. A fresh buffer per panel is memory the kernel
/// zeroes page by page when the allocator has returned it in between (15 %
/// of this stage's time on the 2-core VM with mimalloc).
#[derive(Default)]
pub(super) struct SymmScratch {
    parts: Vec<Vec<[f64; SYMM_R]>>,
    y: Vec<[f64; SYMM_R]>,
}

/// `Y = A V` for the symmetric `m × m` matrix `A = a[p0.., p0..]` whose lower
/// triangle is stored, and `V` given row by row (`m` rows of [`SYMM_R`]);
/// returns `Y` row by row (in `scratch`).
///
/// Every stored `A[i, j]` (`i > j`) is read once and used twice,
/// `Y[i] += A[i, j] V[j]` and `Y[j] += A[i, j] V[i]`, four columns at a time;
/// columns are split into [`SYMM_TASKS`] ranges of equal work whose partial
/// `Y` are added in order.
pub(super) fn symm_panel<'s>(
    a: &Mat<f64>,
    p0: usize,
    vt: &[[f64; SYMM_R]],
    par: Par,
    scratch: &'s mut SymmScratch,
) -> &'s [[f64; SYMM_R]] {
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
    let ntasks = bounds.len() - 1;
    scratch
        .parts
        .resize_with(ntasks.max(scratch.parts.len()), Vec::new);
    let task = |t: usize, y: &mut Vec<[f64; SYMM_R]>| {
        y.clear();
        y.resize(m, [0.0; SYMM_R]);
        pulp::Arch::new().dispatch(SymmColumns {
            a,
            p0,
            vt,
            j0: bounds[t],
            j1: bounds[t + 1],
            y,
        });
    };
    let parts = &mut scratch.parts[..ntasks];
    match par {
        Par::Seq => parts.iter_mut().enumerate().for_each(|(t, y)| task(t, y)),
        _ => {
            use rayon::prelude::*;
            parts
                .par_iter_mut()
                .enumerate()
                .for_each(|(t, y)| task(t, y));
        }
    }
    let y = &mut scratch.y;
    y.clear();
    y.resize(m, [0.0; SYMM_R]);
    for part in parts.iter() {
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
    /// `m` zeros in, the columns' contribution out.
    y: &'a mut [[f64; SYMM_R]],
}

impl pulp::WithSimd for SymmColumns<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _simd: S) -> Self::Output {
        symm_columns(self.a, self.p0, self.vt, self.j0, self.j1, self.y)
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
    y: &mut [[f64; SYMM_R]],
) {
    let m = vt.len();
    /// Columns per pass (their partial sums stay in registers).
    const COLS: usize = 4;
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
pub(super) fn dense_to_band(a: &mut Mat<f64>, b: usize, par: Par) {
    let n = a.nrows();
    let nb = GROUP * b;
    // Buffers reused by every group and panel (see `SymmScratch`).
    let mut vacc_all = Mat::<f64>::zeros(n.saturating_sub(b), nb);
    let mut wacc_all = Mat::<f64>::zeros(n.saturating_sub(b), nb);
    let mut symm = SymmScratch::default();
    let mut vt: Vec<[f64; SYMM_R]> = Vec::new();
    // A panel's V, Y and X (m × r): m only decreases from panel to panel, so
    // each is cut down in place (faer keeps the column stride).
    let (mut v, mut y, mut x) = (
        Mat::<f64>::zeros(n, b),
        Mat::<f64>::zeros(n, b),
        Mat::<f64>::zeros(n, b),
    );
    let mut k = 0;
    while k + b + 1 < n {
        // The group's V and W live in rows [base, n) of the accumulators.
        let base = k + b;
        let mtot = n - base;
        let mut vacc = vacc_all.as_mut().subrows_mut(0, mtot);
        let mut wacc = wacc_all.as_mut().subrows_mut(0, mtot);
        vacc.fill(0.0);
        wacc.fill(0.0);
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
            v.truncate(m, r);
            v.as_mut().fill(0.0);
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
            y.truncate(m, r);
            if r == SYMM_R {
                vt.clear();
                vt.extend((0..m).map(|i| std::array::from_fn(|l| v[(i, l)])));
                let yt = symm_panel(a, p0, &vt, par, &mut symm);
                for l in 0..r {
                    for (dst, row) in y.col_as_slice_mut(l).iter_mut().zip(yt) {
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
            x.truncate(m, r);
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
