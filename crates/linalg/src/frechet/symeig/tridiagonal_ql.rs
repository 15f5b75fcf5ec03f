//! Stage 3: eigenvalues of a symmetric tridiagonal matrix by implicit QL.

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
pub(super) fn tridiagonal_ql(d: &mut [f64], e: &mut [f64]) -> bool {
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
pub(super) fn tridiagonal_tql1(d: &mut [f64], e: &mut [f64]) -> bool {
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
