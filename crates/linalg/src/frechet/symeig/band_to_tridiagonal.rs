//! Stage 2: band → tridiagonal by Householder bulge chasing on a compact
//! band store; see the [parent module](super).

use faer::Mat;

use super::reflector::{axpy, dot, house};

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
pub(super) fn band_to_tridiagonal(w: &Mat<f64>, b: usize) -> (Vec<f64>, Vec<f64>) {
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
