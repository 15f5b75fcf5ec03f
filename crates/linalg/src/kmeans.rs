//! k-means clustering: greedy k-means++ seeding, Lloyd iterations and
//! `n_init` restarts, as scikit-learn's `KMeans(init="k-means++",
//! algorithm="lloyd")`, but driven by a seeded `ChaCha8Rng` (so it is
//! deterministic on every machine, and not bit-compatible with numpy's RNG).
//!
//! Objective (inertia) for centres `c_1..c_k` and labels `ℓ(i)`:
//!
//! ```text
//! J = Σ_i ‖x_i − c_ℓ(i)‖²,     ℓ(i) = argmin_j ‖x_i − c_j‖²  (first index on ties)
//! ```
//!
//! * **Seeding** (Arthur & Vassilvitskii 2007, greedy variant of scikit-learn):
//!   the first centre is a uniformly drawn row; every further centre is the best
//!   (lowest resulting potential `Σ_i min_j ‖x_i − c_j‖²`) of
//!   `2 + ⌊ln k⌋` candidates drawn with probability `D(x)² / Σ D²`.
//! * **Lloyd**: assign, then move each centre to the mean of its rows; a centre
//!   left without rows is moved to the row farthest from its own centre.
//!   Stops when the labels no longer change, or when
//!   `Σ_j ‖c_j^new − c_j^old‖² ≤ tol · mean_d Var(x_·d)` (scikit-learn's scaled
//!   tolerance), or after `max_iter` iterations.
//! * **Restarts**: `n_init` independent seedings from one seeded stream; the run
//!   with the strictly smallest inertia wins (first on ties).

use ndarray::{Array2, ArrayView1, ArrayView2, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::LinalgError;

/// k-means configuration (defaults: `n_clusters = 8`, `n_init = 10`,
/// `max_iter = 300`, `tol = 1e-4`, `seed = 0`, as scikit-learn's `KMeans`
/// with `n_init=10`). See the [module docs](self) for the algorithm.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeans {
    /// k, the number of clusters.
    pub n_clusters: usize,
    /// Number of k-means++ seedings; the best run (lowest inertia) is kept.
    pub n_init: usize,
    /// Maximum Lloyd iterations per run.
    pub max_iter: usize,
    /// Relative tolerance on the centre shift (scaled by the mean per-column
    /// variance of the data).
    pub tol: f64,
    /// Seed of the `ChaCha8Rng` that drives every seeding.
    pub seed: u64,
}

impl Default for KMeans {
    fn default() -> Self {
        KMeans {
            n_clusters: 8,
            n_init: 10,
            max_iter: 300,
            tol: 1e-4,
            seed: 0,
        }
    }
}

/// A fitted k-means model.
#[derive(Debug, Clone, PartialEq)]
pub struct KMeansModel {
    /// The centres (k × D).
    pub centers: Array2<f64>,
    /// The label of every fitted row, `argmin_j ‖x_i − c_j‖²`.
    pub labels: Vec<usize>,
    /// `J = Σ_i ‖x_i − c_ℓ(i)‖²` of the kept run.
    pub inertia: f64,
    /// Lloyd iterations of the kept run.
    pub n_iter: usize,
}

fn sq_dist(a: ArrayView1<'_, f64>, b: ArrayView1<'_, f64>) -> f64 {
    a.iter().zip(b.iter()).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Nearest centre (first on ties) and its squared distance, for every row.
fn assign(x: &Array2<f64>, centers: &Array2<f64>) -> Vec<(usize, f64)> {
    x.axis_iter(Axis(0))
        .into_par_iter()
        .map(|row| {
            let mut best = (0usize, f64::INFINITY);
            for (j, c) in centers.outer_iter().enumerate() {
                let d = sq_dist(row, c);
                if d < best.1 {
                    best = (j, d);
                }
            }
            best
        })
        .collect()
}

impl KMeans {
    /// A configuration with `n_clusters` clusters and the other defaults.
    pub fn new(n_clusters: usize) -> Self {
        KMeans {
            n_clusters,
            ..Default::default()
        }
    }
    /// Sets k.
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.n_clusters = k;
        self
    }
    /// Sets the number of restarts.
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }
    /// Sets the iteration cap per run.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Sets the relative tolerance.
    pub fn tol(mut self, tol: f64) -> Self {
        self.tol = tol;
        self
    }
    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Clusters the rows of `x` (float64 arithmetic whatever the input type).
    ///
    /// # Errors
    /// [`LinalgError::TooFewRows`] when N < k, [`LinalgError::InvalidParameter`]
    /// for `k == 0`, `n_init == 0`, `max_iter == 0`, a negative/NaN `tol` or
    /// zero columns, [`LinalgError::NonFinite`] for NaN/Inf input.
    pub fn fit<A: Copy + Into<f64>>(
        &self,
        x: ArrayView2<'_, A>,
    ) -> Result<KMeansModel, LinalgError> {
        let (n, d) = x.dim();
        let k = self.n_clusters;
        if k == 0
            || self.n_init == 0
            || self.max_iter == 0
            || self.tol.is_nan()
            || self.tol < 0.0
            || d == 0
        {
            return Err(LinalgError::InvalidParameter(format!(
                "k-means: need n_clusters, n_init, max_iter >= 1, tol >= 0 and D >= 1 (got k = {k}, n_init = {}, max_iter = {}, tol = {}, D = {d})",
                self.n_init, self.max_iter, self.tol
            )));
        }
        if n < k {
            return Err(LinalgError::TooFewRows {
                what: "k-means",
                needed: k,
                got: n,
            });
        }
        let mut xf = Array2::<f64>::zeros((n, d));
        for ((i, j), v) in x.indexed_iter() {
            let v: f64 = (*v).into();
            if !v.is_finite() {
                return Err(LinalgError::NonFinite {
                    what: "k-means",
                    row: i,
                    col: j,
                });
            }
            xf[[i, j]] = v;
        }
        let mean_var = xf.var_axis(Axis(0), 0.0).mean().unwrap_or(0.0);
        let tol = self.tol * mean_var;
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut best: Option<KMeansModel> = None;
        for _ in 0..self.n_init {
            let centers = kmeans_plus_plus(&xf, k, &mut rng);
            let run = lloyd(&xf, centers, self.max_iter, tol);
            if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
                best = Some(run);
            }
        }
        // n_init >= 1 was checked above, so `best` is set.
        best.ok_or_else(|| LinalgError::InvalidParameter("k-means: n_init must be >= 1".into()))
    }
}

/// Greedy k-means++ seeding (scikit-learn's `_kmeans_plusplus`).
fn kmeans_plus_plus(x: &Array2<f64>, k: usize, rng: &mut ChaCha8Rng) -> Array2<f64> {
    let (n, d) = x.dim();
    let n_trials = 2 + (k as f64).ln().floor() as usize;
    let mut centers = Array2::<f64>::zeros((k, d));
    let first = rng.random_range(0..n as u64) as usize;
    centers.row_mut(0).assign(&x.row(first));
    let mut closest: Vec<f64> = x
        .axis_iter(Axis(0))
        .into_par_iter()
        .map(|r| sq_dist(r, x.row(first)))
        .collect();
    let mut pot: f64 = closest.iter().sum();
    for c in 1..k {
        let chosen = if pot > 0.0 {
            let mut cumsum = Vec::with_capacity(n);
            let mut acc = 0.0;
            for &v in &closest {
                acc += v;
                cumsum.push(acc);
            }
            let mut best: Option<(usize, f64, Vec<f64>)> = None;
            for _ in 0..n_trials {
                let r = rng.random::<f64>() * pot;
                // searchsorted(cumsum, r, side="left"), clipped to n - 1.
                let cand = cumsum.partition_point(|&v| v < r).min(n - 1);
                let dist: Vec<f64> = x
                    .axis_iter(Axis(0))
                    .into_par_iter()
                    .zip(closest.par_iter())
                    .map(|(row, &cl)| sq_dist(row, x.row(cand)).min(cl))
                    .collect();
                let cand_pot: f64 = dist.iter().sum();
                if best.as_ref().is_none_or(|b| cand_pot < b.1) {
                    best = Some((cand, cand_pot, dist));
                }
            }
            match best {
                Some((cand, cand_pot, dist)) => {
                    pot = cand_pot;
                    closest = dist;
                    cand
                }
                // n_trials >= 2, so a candidate always exists.
                None => rng.random_range(0..n as u64) as usize,
            }
        } else {
            // Every row already coincides with a centre: any row will do; Lloyd
            // then relocates the duplicate centres.
            rng.random_range(0..n as u64) as usize
        };
        centers.row_mut(c).assign(&x.row(chosen));
    }
    centers
}

/// Lloyd iterations from `centers`.
fn lloyd(x: &Array2<f64>, mut centers: Array2<f64>, max_iter: usize, tol: f64) -> KMeansModel {
    let (n, d) = x.dim();
    let k = centers.nrows();
    let mut labels: Vec<usize> = vec![usize::MAX; n];
    let mut n_iter = 0;
    for it in 0..max_iter {
        n_iter = it + 1;
        let asg = assign(x, &centers);
        let mut sums = Array2::<f64>::zeros((k, d));
        let mut counts = vec![0usize; k];
        for (i, &(l, _)) in asg.iter().enumerate() {
            counts[l] += 1;
            let mut s = sums.row_mut(l);
            s += &x.row(i);
        }
        let mut new_centers = centers.clone();
        for (j, &cnt) in counts.iter().enumerate() {
            if cnt > 0 {
                let row = sums.row(j).mapv(|v| v / cnt as f64);
                new_centers.row_mut(j).assign(&row);
            }
        }
        // Relocate empty clusters to the rows farthest from their centres.
        let empty: Vec<usize> = (0..k).filter(|&j| counts[j] == 0).collect();
        if !empty.is_empty() {
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| asg[b].1.total_cmp(&asg[a].1).then(a.cmp(&b)));
            for (e, &j) in empty.iter().enumerate() {
                if let Some(&far) = order.get(e) {
                    new_centers.row_mut(j).assign(&x.row(far));
                }
            }
        }
        let new_labels: Vec<usize> = asg.iter().map(|&(l, _)| l).collect();
        let shift: f64 = (0..k)
            .map(|j| sq_dist(new_centers.row(j), centers.row(j)))
            .sum();
        centers = new_centers;
        if new_labels == labels {
            break;
        }
        labels = new_labels;
        if shift <= tol {
            break;
        }
    }
    // Labels and inertia consistent with the final centres.
    let asg = assign(x, &centers);
    let labels: Vec<usize> = asg.iter().map(|&(l, _)| l).collect();
    let inertia: f64 = asg.iter().map(|&(_, dd)| dd).sum();
    KMeansModel {
        centers,
        labels,
        inertia,
        n_iter,
    }
}

impl KMeansModel {
    /// The number of clusters k.
    pub fn n_clusters(&self) -> usize {
        self.centers.nrows()
    }

    /// `argmin_j ‖y_i − c_j‖²` (first index on ties) for every row of `y`.
    ///
    /// # Errors
    /// [`LinalgError::DimensionMismatch`] if `y` does not have D columns,
    /// [`LinalgError::NonFinite`] for NaN/Inf input.
    pub fn predict<A: Copy + Into<f64>>(
        &self,
        y: ArrayView2<'_, A>,
    ) -> Result<Vec<usize>, LinalgError> {
        let d = self.centers.ncols();
        if y.ncols() != d {
            return Err(LinalgError::DimensionMismatch {
                what: "k-means predict",
                left: d,
                right: y.ncols(),
            });
        }
        let mut yf = Array2::<f64>::zeros(y.dim());
        for ((i, j), v) in y.indexed_iter() {
            let v: f64 = (*v).into();
            if !v.is_finite() {
                return Err(LinalgError::NonFinite {
                    what: "k-means predict",
                    row: i,
                    col: j,
                });
            }
            yf[[i, j]] = v;
        }
        Ok(assign(&yf, &self.centers)
            .into_iter()
            .map(|(l, _)| l)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs(seed: u64) -> (Array2<f64>, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let centres = [[0.0, 0.0], [20.0, 0.0], [0.0, 20.0]];
        let mut x = Array2::zeros((300, 2));
        let mut truth = Vec::new();
        for i in 0..300 {
            let c = i % 3;
            truth.push(c);
            for j in 0..2 {
                let z: f64 = rng.random::<f64>() * 4.0 - 2.0;
                x[[i, j]] = centres[c][j] + z;
            }
        }
        (x, truth)
    }

    #[test]
    fn separated_blobs_are_recovered_and_runs_repeat() {
        let (x, truth) = blobs(7);
        let km = KMeans::new(3).seed(42);
        let a = km.fit(x.view()).unwrap();
        let b = km.fit(x.view()).unwrap();
        assert_eq!(a, b, "same seed, same result");
        // Every true blob maps onto one cluster.
        for c in 0..3 {
            let ls: Vec<usize> = (0..300)
                .filter(|&i| truth[i] == c)
                .map(|i| a.labels[i])
                .collect();
            assert!(ls.iter().all(|&l| l == ls[0]));
        }
        assert_eq!(a.predict(x.view()).unwrap(), a.labels);
    }

    #[test]
    fn degenerate_and_bad_input() {
        // Fewer distinct points than clusters: still finishes, inertia 0.
        let x = Array2::from_shape_vec((4, 1), vec![1.0, 1.0, 2.0, 2.0]).unwrap();
        let m = KMeans::new(3).fit(x.view()).unwrap();
        assert_eq!(m.inertia, 0.0);
        assert!(KMeans::new(5).fit(x.view()).is_err());
        assert!(KMeans::new(0).fit(x.view()).is_err());
        let y = Array2::from_shape_vec((2, 1), vec![f64::NAN, 1.0]).unwrap();
        assert!(KMeans::new(1).fit(y.view()).is_err());
    }
}
