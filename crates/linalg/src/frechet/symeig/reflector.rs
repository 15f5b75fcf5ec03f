//! Householder reflectors and the short vector loops the reduction stages
//! share (plain loops: vectorised by the compiler inside `pulp` dispatch).

/// Householder reflector `H = I − τ v vᵀ` with `H x = β e₀` (LAPACK `dlarfg`
/// without rescaling): on return `x[0] = β`, `x[1..]` holds `v[1..]`
/// (`v[0] = 1`); returns `τ` (0 when `x[1..]` is already zero).
#[inline(always)]
pub(super) fn house(x: &mut [f64]) -> f64 {
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
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
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
pub(super) fn axpy(y: &mut [f64], alpha: f64, x: &[f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * xi;
    }
}
