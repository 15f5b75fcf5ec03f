//! Topological precision and recall, TopP&R (Kim et al. 2023, "TopP&R:
//! Robust Support Estimation Approach for Evaluating Fidelity and Diversity in
//! Generative Models", NeurIPS; reference: the `top-pr` package 0.2.1,
//! `top_pr.compute_top_pr(real_features, fake_features)` with its defaults
//! `alpha = 0.1`, `kernel = "cosine"`, `random_proj = True`).
//!
//! Steps, for real rows `X` (N) and generated rows `Y` (M):
//!
//! 1. **Random projection** (only when `D > 32`): `x ↦ W x` with `W` a
//!    `32 × D` matrix of independent `N(0, 2/(D + 32))` entries (torch's
//!    `xavier_normal_` of a bias-free `Linear(D, 32)`), in float32. `d` is the
//!    dimension after it.
//! 2. **Bandwidths** (balloon estimator, `k = 5d`): for each row `i < n − k` of a
//!    set, the k-th smallest distance to the rows after it,
//!    `b_i = sort_{j > i} ‖z_i − z_j‖ [k − 1]`; `h` is the
//!    `(⌊(n − k)/2⌋ − 1)`-th smallest `b_i` (the package's "median").
//! 3. **Kernel density** with the cosine kernel of support `h` at a point `p`
//!    from data `z_1..z_n`:
//!    `p̂(p) = (1/n) (π/(4h))^d Σ_{‖p − z_j‖ ≤ h} cos(π ‖p − z_j‖ / (2h))`.
//! 4. **Confidence band** (bootstrap, 10 resamples with replacement): with
//!    `p̂` at the set's own rows and `p̃_r` the density of the r-th resample at
//!    the same rows, `θ_r = √n max |p̂ − p̃_r|` and `c = q_{0.9}(θ) / √n`
//!    (`np.quantile`, linear interpolation).
//! 5. **Counts**: a real row is significant when `p̂_X(x) > c_X`, and on the
//!    generated support when `p̂_Y(x) > c_Y` (density of `Y` with `h_Y`):
//!
//! ```text
//! TopP = #{y : p̂_Y(y) > c_Y and p̂_X(y) > c_X} / #{y : p̂_Y(y) > c_Y}
//! TopR = #{x : p̂_X(x) > c_X and p̂_Y(x) > c_Y} / #{x : p̂_X(x) > c_X}
//! ```
//!
//! As the package, distances inside the densities are float32 (scikit-learn's
//! `euclidean_distances` of float32 rows: the float64 squared distance rounded
//! to float32, then its float32 square root), bandwidth distances float64
//! (scipy's `cdist`). Sets with `d ≤ 3` (after projection) take a grid and
//! persistent-homology route in the package; it is not implemented here and
//! such sets are refused.
//!
//! **Randomness.** The package seeds torch (42, then 99 for the projection)
//! and numpy's global generator (42) for the bootstrap. Neither stream is
//! reproduced here: [`TopPr::sample_draws`] draws the projection entries and
//! the bootstrap indices from one `ChaCha8Rng` seeded with the seed (the
//! projection first, row-major, from `StandardNormal` scaled by
//! `√(2/(D + 32))`; then the 10 real resamples, then the 10 generated ones, each
//! index `random_range(0..n)`). [`TopPr::compute_with_draws`] replays given
//! draws; the tests replay the package's own.

use gen_metrics_linalg::squared_distances;
use ndarray::{Array2, ArrayView2, Axis, Slice};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Set, Spec};

const METRIC: &str = "top_pr";
/// Dimension of the random projection (and the largest dimension kept as is).
pub const PROJECTION_DIM: usize = 32;
/// Rows per block of the density computations (memory `block × n`).
const BLOCK: usize = 256;

/// TopP&R configuration: `alpha = 0.1`, 10 bootstrap resamples, the random
/// projection on, seed 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TopPr {
    alpha: f64,
    repeats: usize,
    random_projection: bool,
    seed: u64,
}

impl Default for TopPr {
    fn default() -> Self {
        TopPr {
            alpha: 0.1,
            repeats: 10,
            random_projection: true,
            seed: 0,
        }
    }
}

/// The random draws of one TopP&R evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct TopPrDraws {
    /// The projection `W` (`32 × D`), `None` when no projection is applied.
    pub projection: Option<Array2<f32>>,
    /// Bootstrap resamples of the real rows (each `N` indices).
    pub bootstrap_real: Vec<Vec<usize>>,
    /// Bootstrap resamples of the generated rows (each `M` indices).
    pub bootstrap_fake: Vec<Vec<usize>>,
}

/// TopP and TopR with the quantities they come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopPrOutput {
    /// Topological precision (fidelity), in [0, 1].
    pub precision: f64,
    /// Topological recall (diversity), in [0, 1].
    pub recall: f64,
    /// Bandwidth `h_X` of the real set.
    pub bandwidth_real: f64,
    /// Bandwidth `h_Y` of the generated set.
    pub bandwidth_fake: f64,
    /// Confidence band `c_X`.
    pub band_real: f64,
    /// Confidence band `c_Y`.
    pub band_fake: f64,
    /// Significant real rows `#{x : p̂_X(x) > c_X}`.
    pub significant_real: usize,
    /// Significant generated rows `#{y : p̂_Y(y) > c_Y}`.
    pub significant_fake: usize,
}

impl TopPr {
    /// Sets the significance level alpha of the confidence band (default 0.1).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// Sets the seed of the projection and bootstrap draws (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Turns the random projection to 32 dimensions (for `D > 32`) on or off.
    pub fn random_projection(mut self, on: bool) -> Self {
        self.random_projection = on;
        self
    }

    /// Seeded draws for sets of `n_real` and `n_fake` rows of dimension `dim`
    /// (see the module docs for the order).
    pub fn sample_draws(&self, n_real: usize, n_fake: usize, dim: usize) -> TopPrDraws {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let projection = (self.random_projection && dim > PROJECTION_DIM).then(|| {
            let std = (2.0 / (dim + PROJECTION_DIM) as f64).sqrt();
            Array2::from_shape_fn((PROJECTION_DIM, dim), |_| {
                let z: f64 = StandardNormal.sample(&mut rng);
                (std * z) as f32
            })
        });
        let mut draw = |n: usize| -> Vec<Vec<usize>> {
            (0..self.repeats)
                .map(|_| {
                    (0..n)
                        .map(|_| rng.random_range(0..n as u64) as usize)
                        .collect()
                })
                .collect()
        };
        let bootstrap_real = draw(n_real);
        let bootstrap_fake = draw(n_fake);
        TopPrDraws {
            projection,
            bootstrap_real,
            bootstrap_fake,
        }
    }

    /// Rows each set needs for features of `dim` columns: `5d + 2`, `d` the
    /// dimension after the projection (the balloon bandwidth's `k = 5d`
    /// neighbours plus the row itself and one more).
    pub fn min_rows(&self, dim: usize) -> usize {
        let d = if self.random_projection && dim > PROJECTION_DIM {
            PROJECTION_DIM
        } else {
            dim
        };
        5 * d + 2
    }

    /// TopP&R with the given draws (replaying a reference's projection and
    /// bootstrap indices).
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`], plus [`MetricError::InvalidParameter`]
    /// for a projection of the wrong shape or bootstrap indices out of range
    /// or of the wrong length.
    pub fn compute_with_draws(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        draws: &TopPrDraws,
    ) -> Result<TopPrOutput, MetricError> {
        check_pair(METRIC, real, fake, 1)?;
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(bad(format!("alpha must be in (0, 1), got {}", self.alpha)));
        }
        let (x, y) = match &draws.projection {
            Some(w) => {
                if w.ncols() != real.ncols() || w.nrows() == 0 {
                    return Err(bad(format!(
                        "the projection is {:?}, the features have {} columns",
                        w.dim(),
                        real.ncols()
                    )));
                }
                (project(real, w.view()), project(fake, w.view()))
            }
            None => (real.to_owned(), fake.to_owned()),
        };
        let d = x.ncols();
        if d <= 3 {
            return Err(bad(format!(
                "TopP&R needs more than 3 feature dimensions (the package's grid route for d <= 3 is not implemented), got {d}"
            )));
        }
        let k = 5 * d;
        for (set, n) in [("real", x.nrows()), ("fake", y.nrows())] {
            if n < k + 2 {
                return Err(MetricError::TooFewSamples {
                    metric: METRIC,
                    set,
                    needed: k + 2,
                    got: n,
                });
            }
        }
        for (what, b, n) in [
            ("real", &draws.bootstrap_real, x.nrows()),
            ("fake", &draws.bootstrap_fake, y.nrows()),
        ] {
            if b.is_empty() || b.iter().any(|r| r.len() != n || r.iter().any(|&i| i >= n)) {
                return Err(bad(format!(
                    "the {what} bootstrap needs at least one resample of {n} indices below {n}"
                )));
            }
        }
        let h_x = balloon_bandwidth(x.view(), k)?;
        let h_y = balloon_bandwidth(y.view(), k)?;
        let (c_x, p_xx) = confidence_band(x.view(), h_x, self.alpha, &draws.bootstrap_real)?;
        let (c_y, p_yy) = confidence_band(y.view(), h_y, self.alpha, &draws.bootstrap_fake)?;
        // density of Y at the real rows (h_Y), of X at the generated rows (h_X)
        let p_yx = densities(y.view(), x.view(), h_y, &[])?.remove(0);
        let p_xy = densities(x.view(), y.view(), h_x, &[])?.remove(0);
        let sig_x: Vec<bool> = p_xx.iter().map(|&p| p > c_x).collect();
        let sig_y: Vec<bool> = p_yy.iter().map(|&p| p > c_y).collect();
        let num_real = sig_x.iter().filter(|&&s| s).count();
        let num_fake = sig_y.iter().filter(|&&s| s).count();
        let inter_r = sig_x
            .iter()
            .zip(&p_yx)
            .filter(|(s, p)| **s && **p > c_y)
            .count();
        let inter_g = sig_y
            .iter()
            .zip(&p_xy)
            .filter(|(s, p)| **s && **p > c_x)
            .count();
        if num_real == 0 || num_fake == 0 {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!(
                    "no significant rows (real {num_real}, fake {num_fake}): TopP&R is undefined"
                ),
            });
        }
        Ok(TopPrOutput {
            precision: inter_g as f64 / num_fake as f64,
            recall: inter_r as f64 / num_real as f64,
            bandwidth_real: h_x,
            bandwidth_fake: h_y,
            band_real: c_x,
            band_fake: c_y,
            significant_real: num_real,
            significant_fake: num_fake,
        })
    }
}

fn bad(detail: String) -> MetricError {
    MetricError::InvalidParameter {
        metric: METRIC,
        detail,
    }
}

/// `x Wᵀ` rounded to float32 (the float32 `Linear` layer of the package).
fn project(x: ArrayView2<'_, f32>, w: ArrayView2<'_, f32>) -> Array2<f32> {
    let mut out = Array2::<f32>::zeros((x.nrows(), w.nrows()));
    out.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each(|(mut o, row)| {
            for (r, wr) in w.outer_iter().enumerate() {
                let v: f64 = row
                    .iter()
                    .zip(wr.iter())
                    .map(|(&a, &b)| f64::from(a) * f64::from(b))
                    .sum();
                o[r] = v as f32;
            }
        });
    out
}

/// The package's balloon bandwidth: `k`-th smallest distance of row `i` to the
/// rows after it, for `i < n − k`; the `(⌊(n − k)/2⌋ − 1)`-th smallest of those.
fn balloon_bandwidth(z: ArrayView2<'_, f32>, k: usize) -> Result<f64, MetricError> {
    let n = z.nrows();
    let rows = n - k;
    let mut balloon: Vec<f64> = Vec::with_capacity(rows);
    let mut i0 = 0;
    while i0 < rows {
        let i1 = (i0 + BLOCK).min(rows);
        let d2 = squared_distances(z.slice_axis(Axis(0), Slice::from(i0..i1)), z)?;
        let part: Vec<f64> = d2
            .axis_iter(Axis(0))
            .into_par_iter()
            .enumerate()
            .map(|(ii, row)| {
                let i = i0 + ii;
                let mut later: Vec<f64> = row.iter().skip(i + 1).copied().collect();
                let (_, kth, _) = later.select_nth_unstable_by(k - 1, f64::total_cmp);
                kth.sqrt()
            })
            .collect();
        balloon.extend(part);
        i0 = i1;
    }
    balloon.sort_by(f64::total_cmp);
    // rows >= 2 (checked by the caller), so the index is >= 0
    let h = balloon[rows / 2 - 1];
    if !(h > 0.0 && h.is_finite()) {
        return Err(MetricError::Numerical {
            metric: METRIC,
            detail: format!("the bandwidth is {h} (duplicate rows?)"),
        });
    }
    Ok(h)
}

/// Cosine-kernel densities of `data` (and of each bootstrap resample of it,
/// given as row indices into `data`) at every row of `at`, bandwidth `h`:
/// `(1/n) (π/(4h))^d Σ_{‖p − z‖ ≤ h} cos(π ‖p − z‖ / (2h))`, distances in
/// float32 as scikit-learn's `euclidean_distances` of float32 rows. Returns
/// the density of `data` first, then one per resample.
fn densities(
    data: ArrayView2<'_, f32>,
    at: ArrayView2<'_, f32>,
    h: f64,
    resamples: &[Vec<usize>],
) -> Result<Vec<Vec<f64>>, MetricError> {
    let n = data.nrows();
    let d = data.ncols() as f64;
    let pre = (1.0 / n as f64) * (std::f64::consts::PI / (4.0 * h)).powf(d);
    if !(pre.is_finite() && pre > 0.0) {
        return Err(MetricError::Numerical {
            metric: METRIC,
            detail: format!("the kernel constant (π/(4h))^d is {pre} for h = {h}, d = {d}"),
        });
    }
    let h2 = h * h;
    // multiplicity of every data row in each resample
    let counts: Vec<Vec<f64>> = resamples
        .iter()
        .map(|r| {
            let mut c = vec![0.0f64; n];
            for &i in r {
                c[i] += 1.0;
            }
            c
        })
        .collect();
    let mut out = vec![Vec::with_capacity(at.nrows()); 1 + resamples.len()];
    let mut p0 = 0;
    while p0 < at.nrows() {
        let p1 = (p0 + BLOCK).min(at.nrows());
        let d2 = squared_distances(at.slice_axis(Axis(0), Slice::from(p0..p1)), data)?;
        let rows: Vec<Vec<f64>> = d2
            .axis_iter(Axis(0))
            .into_par_iter()
            .map(|row| {
                let mut sums = vec![0.0f64; 1 + counts.len()];
                for (j, &s2) in row.iter().enumerate() {
                    let dist = (s2 as f32).sqrt();
                    if f64::from(dist * dist) <= h2 {
                        let w = (std::f64::consts::FRAC_PI_2 * (f64::from(dist) / h)).cos();
                        sums[0] += w;
                        for (s, c) in sums[1..].iter_mut().zip(&counts) {
                            *s += c[j] * w;
                        }
                    }
                }
                sums.iter().map(|s| pre * s).collect()
            })
            .collect();
        for r in rows {
            for (o, v) in out.iter_mut().zip(r) {
                o.push(v);
            }
        }
        p0 = p1;
    }
    Ok(out)
}

/// The bootstrap confidence band `c = q_{1−α}(θ)/√n`,
/// `θ_r = √n max |p̂ − p̃_r|`, and the density `p̂` of the set at its rows.
fn confidence_band(
    z: ArrayView2<'_, f32>,
    h: f64,
    alpha: f64,
    resamples: &[Vec<usize>],
) -> Result<(f64, Vec<f64>), MetricError> {
    let n = z.nrows() as f64;
    let mut all = densities(z, z, h, resamples)?;
    let p_hat = all.remove(0);
    let mut theta: Vec<f64> = all
        .iter()
        .map(|p| {
            n.sqrt()
                * p_hat
                    .iter()
                    .zip(p)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0f64, f64::max)
        })
        .collect();
    theta.sort_by(f64::total_cmp);
    Ok((quantile_linear(&theta, 1.0 - alpha) / n.sqrt(), p_hat))
}

/// `np.quantile(v, q)` (method "linear") of sorted `v`, with numpy's
/// interpolation `a + t (b − a)` for `t < 0.5` and `b − (1 − t)(b − a)` else.
fn quantile_linear(sorted: &[f64], q: f64) -> f64 {
    let vi = q * (sorted.len() - 1) as f64;
    let lo = vi.floor();
    let t = vi - lo;
    let i = lo as usize;
    if i + 1 >= sorted.len() {
        return sorted[sorted.len() - 1];
    }
    let (a, b) = (sorted[i], sorted[i + 1]);
    let diff = b - a;
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

impl TwoSampleMetric for TopPr {
    type Output = TopPrOutput;

    /// TopP&R with seeded draws ([`TopPr::sample_draws`]).
    ///
    /// # Errors
    /// Mismatched dimensions, non-finite values, `d ≤ 3` after projection,
    /// fewer than `5d + 2` rows in a set, alpha outside (0, 1), no
    /// significant rows.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<TopPrOutput, MetricError> {
        check_pair(METRIC, real, fake, 1)?;
        let draws = self.sample_draws(real.nrows(), fake.nrows(), real.ncols());
        self.compute_with_draws(real, fake, &draws)
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of TopP&R (the package's defaults, seeded draws). Its keys
/// get no interval: the balloon bandwidth uses a fixed `k = 5d` neighbours
/// (160 after projection), so a half-size resample changes the estimator
/// itself (and needs `5d + 2` rows per half).
pub static SPEC: Spec = Spec {
    name: "top_pr",
    about: "TopP&R: precision and recall on KDE supports kept by a bootstrap confidence band (random projection to 32-d)",
    reference: "Kim et al. 2023, TopP&R: Robust Support Estimation Approach for Evaluating Fidelity and Diversity in Generative Models; top-pr 0.2.1",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "top_p",
            Direction::HigherIsBetter,
            "share of significant generated samples inside the significant real support",
        )
        .share(),
        KeySpec::new(
            "top_r",
            Direction::HigherIsBetter,
            "share of significant real samples inside the significant generated support",
        )
        .share(),
    ],
    dynamic_keys: None,
    make: |p| Ok(Box::new(TopPr::default().seed(p.seed))),
};

impl Metric for TopPr {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn admits(&self, cx: &Context<'_>) -> Result<(), MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let needed = self.min_rows(real.ncols());
        for (set, got) in [("real", real.nrows()), ("fake", fake.nrows())] {
            if got < needed {
                return Err(MetricError::TooFewSamples {
                    metric: METRIC,
                    set,
                    needed,
                    got,
                });
            }
        }
        Ok(())
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let out = self.compute(real, fake)?;
        Ok(Outcome::new()
            .value("top_p", out.precision)
            .value("top_r", out.recall))
    }
}
