//! Small numerical helpers shared by the modules (normal quantiles and tails,
//! numpy-style percentiles). Private to the crate.

use statrs::distribution::{ContinuousCDF, Normal};

fn std_normal() -> Normal {
    // Normal::new only fails for a non-finite mean or a non-positive std;
    // (0, 1) is valid, so the fallback is unreachable.
    Normal::new(0.0, 1.0).unwrap_or_else(|_| unreachable!("N(0,1) is a valid normal"))
}

/// Standard normal quantile `Φ⁻¹(p)`, `p ∈ (0, 1)`; `±∞` at 0 and 1.
pub(crate) fn norm_ppf(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    std_normal().inverse_cdf(p)
}

/// Standard normal CDF `Φ(x) = ½ erfc(−x/√2)` (libm's `erfc`, accurate to
/// about 1 ulp; statrs' `erfc` is off by ~1e-11 relative in the tails, which
/// would not match scipy's p-values).
pub(crate) fn norm_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x * std::f64::consts::FRAC_1_SQRT_2)
}

/// Standard normal survival function `1 − Φ(x) = ½ erfc(x/√2)`.
pub(crate) fn norm_sf(x: f64) -> f64 {
    0.5 * libm::erfc(x * std::f64::consts::FRAC_1_SQRT_2)
}

/// numpy's default (`method="linear"`) percentile of `sorted` (ascending,
/// non-empty) at `q ∈ [0, 100]`: position `h = (n−1)·q/100`,
/// `v = a[⌊h⌋] + (h − ⌊h⌋)(a[⌊h⌋+1] − a[⌊h⌋])`.
pub(crate) fn percentile_sorted(sorted: &[f64], q: f64) -> f64 {
    let n = sorted.len();
    if n == 1 {
        return sorted[0];
    }
    let h = (n - 1) as f64 * (q / 100.0);
    let lo = (h.floor() as usize).min(n - 1);
    let hi = (lo + 1).min(n - 1);
    let frac = h - lo as f64;
    sorted[lo] + frac * (sorted[hi] - sorted[lo])
}

/// Mean and sample standard deviation (ddof 1; 0 for a single value).
pub(crate) fn mean_std(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, 0.0);
    }
    let var = xs.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}
