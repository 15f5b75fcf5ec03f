//! The C_T data-copying test (Meehan, Chaudhuri & Dasgupta 2020, "A
//! non-parametric test to detect data-copying in generative models", AISTATS),
//! as run by dgm-eval (`dgm_eval/metrics/ct.py`, taken from
//! casey-meehan/data-copying `data_copying_tests.py`; Stein et al. 2023).
//!
//! Inputs: training set `T` (size l), held-out test set `P_n` (size n),
//! generated set `Q_m` (size m).
//!
//! 1. **Projection.** If D > 64, fit PCA(64) on `T` and project all three sets
//!    (scikit-learn's `covariance_eigh` path; see [`gen_metrics_linalg::Pca`]).
//! 2. **Cells.** k-means with k = 3, `n_init = 10` on `T`; every sample gets the
//!    label of its nearest centre (`π(x)`). dgm-eval's scikit-learn KMeans is
//!    unseeded; here it is [`gen_metrics_linalg::KMeans`] with a `ChaCha8Rng`
//!    seed, or the labels are given ([`DataCopying::compute_with_cells`]).
//! 3. **Per-cell statistic.** In cell π, `L(x) = min_{t ∈ T_π} ‖x − t‖` (1-NN
//!    distance to the training samples *of the same cell*). With
//!    `U = R_Q − m_π(m_π+1)/2`, `R_Q` the sum of the (tie-averaged) ranks of the
//!    `L(Q_π)` among `L(Q_π) ∪ L(P_π)` (scipy's `mannwhitneyu(L(Q), L(P))`, whose
//!    statistic does not depend on `alternative`):
//!
//!    ```text
//!    Z_U(π) = (U − (n_π m_π / 2 − 0.5)) / √(n_π m_π (n_π + m_π + 1) / 12)
//!    ```
//!
//!    (the 0.5 is dgm-eval's continuity term; no tie correction in the
//!    variance). A cell without generated samples gets `Z_U = 0`.
//! 4. **Aggregate.** `P_n(π) = n_π/n`, `Q_m(π) = m_π/m`, keep the cells
//!    `Π_τ = {π : Q_m(π) > τ}` with `τ = 20/m`, and
//!
//!    ```text
//!    C_T = Σ_{π∈Π_τ} P_n(π) Z_U(π) / Σ_{π∈Π_τ} P_n(π)
//!    ```
//!
//! `C_T ≪ 0` means generated samples are closer to the training set than
//! fresh test samples are (data copying); `C_T ≫ 0` means underfitting.
//!
//! Variants (dgm-eval): [`DataCopying::compute_mem`] (`compute_CTscore_mem`,
//! the roles of train and generated swapped) and
//! [`DataCopying::compute_test_split`] (`compute_CTscore_mode`: the first half
//! of the test set, `np.array_split`, plays the training set).

use gen_metrics_linalg::{KMeans, Pca};
use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::Serialize;

use crate::MemorizationError;
use crate::error::{check_dim, finite, to_f64_checked};
use gen_metrics_metric::{
    Context, Direction, Input, KeySpec, Metric, MetricError, Outcome, Set, Spec,
};

const METRIC: &str = "C_T";

/// The (train, test, gen) sets after the checks and the projection.
type Prepared = (Array2<f64>, Array2<f64>, Array2<f64>);

/// C_T configuration with dgm-eval's defaults: 3 cells, 10 k-means restarts,
/// PCA to 64 dimensions when D > 64, `τ = 20 / N_gen`. See the
/// [module docs](self) for the formulas.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataCopying {
    /// k, the number of k-means cells (dgm-eval: 3).
    pub n_clusters: usize,
    /// k-means restarts (dgm-eval: 10).
    pub n_init: usize,
    /// k-means iteration cap (scikit-learn: 300).
    pub max_iter: usize,
    /// PCA target dimension, applied when D exceeds it (dgm-eval: 64); `None`
    /// disables the projection.
    pub pca_components: Option<usize>,
    /// `τ · N_gen`: a cell is kept when it holds more than
    /// `tau_count / N_gen` of the generated samples (dgm-eval: 20), so at
    /// least `tau_count + 1` generated samples are needed
    /// ([`MemorizationError::TooFewSamples`] otherwise).
    pub tau_count: f64,
    /// Seed of the k-means `ChaCha8Rng`.
    pub seed: u64,
}

impl Default for DataCopying {
    fn default() -> Self {
        DataCopying {
            n_clusters: 3,
            n_init: 10,
            max_iter: 300,
            pca_components: Some(64),
            tau_count: 20.0,
            seed: 0,
        }
    }
}

/// Cell labels `π(x)` of every train, test and generated row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CellLabels {
    /// Labels of the training rows.
    pub train: Vec<usize>,
    /// Labels of the test rows.
    pub test: Vec<usize>,
    /// Labels of the generated rows.
    pub gen_cells: Vec<usize>,
}

/// Result of a C_T test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CtOutput {
    /// `C_T`.
    pub c_t: f64,
    /// `Z_U(π)` per cell (0 for a cell without generated samples).
    pub zu_per_cell: Vec<f64>,
    /// `U(π)` per cell (Mann-Whitney statistic of the generated distances).
    pub u_per_cell: Vec<f64>,
    /// `P_n(π)`, the test share of every cell.
    pub test_share: Vec<f64>,
    /// `Q_m(π)`, the generated share of every cell.
    pub gen_share: Vec<f64>,
    /// `π ∈ Π_τ`: was the cell kept?
    pub kept: Vec<bool>,
    /// `τ`.
    pub tau: f64,
    /// The dimension the test ran in (64 after PCA, else D).
    pub dim: usize,
    /// The cells used.
    pub cells: CellLabels,
}

/// The Mann-Whitney statistic of `x` against `y`: `U = R_x − |x|(|x|+1)/2` with
/// `R_x` the sum of the ranks of `x` in `x ∪ y`, ties given their average rank
/// (scipy `mannwhitneyu(x, y).statistic`).
pub fn mann_whitney_u(x: &[f64], y: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = x
        .iter()
        .map(|&v| (v, true))
        .chain(y.iter().map(|&v| (v, false)))
        .collect();
    all.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut r_x = 0.0;
    let mut i = 0;
    while i < all.len() {
        let mut j = i + 1;
        while j < all.len() && all[j].0 == all[i].0 {
            j += 1;
        }
        // Ranks i+1 ..= j share their average (i + 1 + j) / 2.
        let avg = (i + 1 + j) as f64 / 2.0;
        let in_x = all[i..j].iter().filter(|e| e.1).count();
        r_x += avg * in_x as f64;
        i = j;
    }
    let m = x.len() as f64;
    r_x - m * (m + 1.0) / 2.0
}

/// dgm-eval's z-score of `U` for `m` generated and `n` test samples:
/// `Z_U = (U − (nm/2 − 0.5)) / √(nm(n+m+1)/12)`.
pub fn z_u(u: f64, m: usize, n: usize) -> f64 {
    let mean = (n * m) as f64 / 2.0 - 0.5;
    let std = ((n * m * (n + m + 1)) as f64 / 12.0).sqrt();
    (u - mean) / std
}

/// `L(q) = min_t ‖q − t‖` for every row of `query` (exact float64: the sum of
/// squared differences in index order, then one square root).
///
/// The sets here are PCA projections in float64; the f32 kernels of
/// `gen_metrics_linalg::pairwise` would first round them to f32, which moves
/// the distances by ~1e-7 and flips Mann-Whitney ranks (the corpus records
/// that value separately as `ct_score_float32_inputs`). The work is one
/// cell's `|Q_π| × |T_π|` scan, so a plain parallel loop suffices.
fn nn1_distances(query: &Array2<f64>, reference: &Array2<f64>) -> Vec<f64> {
    query
        .outer_iter()
        .into_par_iter()
        .map(|q| {
            reference
                .outer_iter()
                .map(|r| {
                    q.iter()
                        .zip(r.iter())
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f64>()
                })
                .fold(f64::INFINITY, f64::min)
                .sqrt()
        })
        .collect()
}

fn select_rows(x: &Array2<f64>, labels: &[usize], cell: usize) -> Array2<f64> {
    let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == cell).collect();
    x.select(Axis(0), &idx)
}

/// The C_T statistic of projected float64 samples with given cell labels and
/// threshold `tau` (steps 3 and 4 of the [module docs](self)); the number of
/// cells is `1 + max(train labels)`.
///
/// # Errors
/// [`MemorizationError::LengthMismatch`] for label vectors of the wrong length,
/// [`MemorizationError::DimensionMismatch`], [`MemorizationError::EmptyCell`]
/// when a cell has no training or no test sample (or a test/generated label is
/// not a training cell), [`MemorizationError::Numerical`] when no cell is
/// kept, [`MemorizationError::InvalidParameter`] for `tau` outside [0, 1).
pub fn c_t_statistic(
    train: &Array2<f64>,
    test: &Array2<f64>,
    gen_feats: &Array2<f64>,
    cells: &CellLabels,
    tau: f64,
) -> Result<CtOutput, MemorizationError> {
    for (what, len, want) in [
        ("train cell labels", cells.train.len(), train.nrows()),
        ("test cell labels", cells.test.len(), test.nrows()),
        ("gen cell labels", cells.gen_cells.len(), gen_feats.nrows()),
    ] {
        if len != want {
            return Err(MemorizationError::LengthMismatch {
                metric: METRIC,
                what,
                expected: want,
                got: len,
            });
        }
    }
    if !(0.0..1.0).contains(&tau) {
        return Err(MemorizationError::InvalidParameter {
            metric: METRIC,
            detail: format!("tau must be in [0, 1), got {tau}"),
        });
    }
    if train.nrows() == 0 {
        return Err(MemorizationError::TooFewSamples {
            metric: METRIC,
            set: "train",
            needed: 1,
            got: 0,
        });
    }
    if test.nrows() == 0 {
        return Err(MemorizationError::TooFewSamples {
            metric: METRIC,
            set: "test",
            needed: 1,
            got: 0,
        });
    }
    if gen_feats.nrows() == 0 {
        return Err(MemorizationError::TooFewSamples {
            metric: METRIC,
            set: "gen",
            needed: 1,
            got: 0,
        });
    }
    check_dim(METRIC, "test", train.ncols(), test.ncols())?;
    check_dim(METRIC, "gen", train.ncols(), gen_feats.ncols())?;
    let k = cells.train.iter().copied().max().map_or(0, |v| v + 1);
    // A test or generated label beyond the training cells names a cell
    // without training samples.
    if let Some(&bad) = cells.test.iter().chain(&cells.gen_cells).find(|&&l| l >= k) {
        return Err(MemorizationError::EmptyCell {
            metric: METRIC,
            cell: bad,
            set: "train",
        });
    }
    let (n, m) = (test.nrows(), gen_feats.nrows());
    let count = |labels: &[usize], c: usize| labels.iter().filter(|&&l| l == c).count();
    let test_share: Vec<f64> = (0..k)
        .map(|c| count(&cells.test, c) as f64 / n as f64)
        .collect();
    let gen_share: Vec<f64> = (0..k)
        .map(|c| count(&cells.gen_cells, c) as f64 / m as f64)
        .collect();
    let kept: Vec<bool> = gen_share.iter().map(|&q| q > tau).collect();
    let mut zu_per_cell = vec![0.0; k];
    let mut u_per_cell = vec![0.0; k];
    for c in 0..k {
        let t_c = select_rows(train, &cells.train, c);
        let p_c = select_rows(test, &cells.test, c);
        if t_c.nrows() == 0 {
            return Err(MemorizationError::EmptyCell {
                metric: METRIC,
                cell: c,
                set: "train",
            });
        }
        if p_c.nrows() == 0 {
            return Err(MemorizationError::EmptyCell {
                metric: METRIC,
                cell: c,
                set: "test",
            });
        }
        let q_c = select_rows(gen_feats, &cells.gen_cells, c);
        if q_c.nrows() == 0 {
            continue;
        }
        let lq = nn1_distances(&q_c, &t_c);
        let lp = nn1_distances(&p_c, &t_c);
        let u = mann_whitney_u(&lq, &lp);
        u_per_cell[c] = u;
        zu_per_cell[c] = finite(METRIC, "Z_U", z_u(u, lq.len(), lp.len()))?;
    }
    let num: f64 = (0..k)
        .filter(|&c| kept[c])
        .map(|c| test_share[c] * zu_per_cell[c])
        .sum();
    let den: f64 = (0..k).filter(|&c| kept[c]).map(|c| test_share[c]).sum();
    if den <= 0.0 {
        return Err(MemorizationError::Numerical {
            metric: METRIC,
            detail: format!("no cell holds more than tau = {tau} of the generated samples"),
        });
    }
    let c_t = finite(METRIC, "C_T", num / den)?;
    Ok(CtOutput {
        c_t,
        zu_per_cell,
        u_per_cell,
        test_share,
        gen_share,
        kept,
        tau,
        dim: train.ncols(),
        cells: cells.clone(),
    })
}

impl DataCopying {
    /// Sets the number of cells.
    pub fn n_clusters(mut self, k: usize) -> Self {
        self.n_clusters = k;
        self
    }
    /// Sets the k-means restarts.
    pub fn n_init(mut self, n: usize) -> Self {
        self.n_init = n;
        self
    }
    /// Sets the k-means iteration cap.
    pub fn max_iter(mut self, n: usize) -> Self {
        self.max_iter = n;
        self
    }
    /// Sets (or disables) the PCA target dimension.
    pub fn pca_components(mut self, c: Option<usize>) -> Self {
        self.pca_components = c;
        self
    }
    /// Sets `τ · N_gen`.
    pub fn tau_count(mut self, t: f64) -> Self {
        self.tau_count = t;
        self
    }
    /// Sets the k-means seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Checks and widens the three sets, then projects them with PCA fitted on
    /// `train` when D exceeds `pca_components` (dgm-eval's `preprcoess_ct`).
    fn prepare(
        &self,
        train: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<Prepared, MemorizationError> {
        let t = to_f64_checked(METRIC, "train", train, self.n_clusters.max(2))?;
        let p = to_f64_checked(METRIC, "test", test, 1)?;
        let q = to_f64_checked(METRIC, "gen", gen_feats, 1)?;
        check_dim(METRIC, "test", t.ncols(), p.ncols())?;
        check_dim(METRIC, "gen", t.ncols(), q.ncols())?;
        if self.tau_count.is_nan() || self.tau_count < 0.0 {
            return Err(MemorizationError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "the cell threshold tau_count must be >= 0, got {}",
                    self.tau_count
                ),
            });
        }
        if self.tau_count >= q.nrows() as f64 {
            // `tau_count` is not something a command-line user can set: say
            // what they can do (evaluate more generated samples). A cell
            // counts only when it holds more than `tau_count` of them.
            return Err(MemorizationError::TooFewSamples {
                metric: METRIC,
                set: "generated",
                needed: self.tau_count.floor() as usize + 1,
                got: q.nrows(),
            });
        }
        match self.pca_components {
            Some(c) if t.ncols() > c => {
                let pca = Pca::fit(t.view(), c)?;
                Ok((
                    pca.transform(t.view())?,
                    pca.transform(p.view())?,
                    pca.transform(q.view())?,
                ))
            }
            _ => Ok((t, p, q)),
        }
    }

    /// Runs the whole test: PCA (if D > `pca_components`), seeded k-means cells
    /// on `train`, C_T of `gen_feats` against `test`.
    ///
    /// # Errors
    /// Bad input ([`MemorizationError::TooFewSamples`],
    /// [`MemorizationError::DimensionMismatch`], [`MemorizationError::NonFinite`]),
    /// bad parameters, PCA/k-means failures ([`MemorizationError::Linalg`]) and
    /// the errors of [`c_t_statistic`].
    pub fn compute(
        &self,
        train: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<CtOutput, MemorizationError> {
        let (t, p, q) = self.prepare(train, test, gen_feats)?;
        let km = KMeans::new(self.n_clusters)
            .n_init(self.n_init)
            .max_iter(self.max_iter)
            .seed(self.seed)
            .fit(t.view())?;
        let cells = CellLabels {
            train: km.labels.clone(),
            test: km.predict(p.view())?,
            gen_cells: km.predict(q.view())?,
        };
        c_t_statistic(&t, &p, &q, &cells, self.tau_count / q.nrows() as f64)
    }

    /// As [`DataCopying::compute`] with the cell labels given (for instance the
    /// stored labels of a reference run): PCA as usual, no k-means.
    ///
    /// # Errors
    /// As [`DataCopying::compute`].
    pub fn compute_with_cells(
        &self,
        train: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
        cells: &CellLabels,
    ) -> Result<CtOutput, MemorizationError> {
        let (t, p, q) = self.prepare(train, test, gen_feats)?;
        c_t_statistic(&t, &p, &q, cells, self.tau_count / q.nrows() as f64)
    }

    /// dgm-eval's `compute_CTscore_mem(train, test, gen)` =
    /// `compute_CTscore(gen, test, train)`: the generated set plays the
    /// training set (PCA and cells are fitted on it) and the training set
    /// plays the generated one (`τ = 20/N_train`). In the output, `cells.train`
    /// holds the labels of the *generated* rows and `cells.gen_cells` those of
    /// the training rows.
    ///
    /// # Errors
    /// As [`DataCopying::compute`].
    pub fn compute_mem(
        &self,
        train: ArrayView2<'_, f32>,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<CtOutput, MemorizationError> {
        self.compute(gen_feats, test, train)
    }

    /// dgm-eval's `compute_CTscore_mode(train, test, gen)`: the test set is cut
    /// in two (`np.array_split`: the first part has `⌈n/2⌉` rows) and
    /// `compute_CTscore(test₁, test₂, gen)` is run, so no training set is
    /// needed.
    ///
    /// # Errors
    /// As [`DataCopying::compute`].
    pub fn compute_test_split(
        &self,
        test: ArrayView2<'_, f32>,
        gen_feats: ArrayView2<'_, f32>,
    ) -> Result<CtOutput, MemorizationError> {
        let half = test.nrows().div_ceil(2);
        let (first, second) = test.split_at(Axis(0), half);
        self.compute(first, second, gen_feats)
    }
}

// --- the metric contract ----------------------------------------------------

/// C_T as the registry builds it: dgm-eval's defaults with the user's seed;
/// `modified` selects dgm-eval's `compute_CTscore_mem` variant.
#[derive(Debug, Clone, PartialEq)]
pub struct DataCopyingMetric {
    /// The configuration.
    pub config: DataCopying,
    /// The modified (memorization) variant.
    pub modified: bool,
}

/// Registry entry of C_T (the real set is the held-out test set).
pub static SPEC: Spec = Spec {
    name: "ct",
    about: "C_T data-copying statistic (negative: generated samples closer to training data than held-out data is)",
    reference: "Meehan et al. 2020, A Non-Parametric Test to Detect Data-Copying in Generative Models; dgm-eval compute_CTscore",
    inputs: &[Input::Train, Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "ct",
        Direction::CloserToZero,
        "mean over kept cells of the Mann-Whitney Z of d(gen, train) vs d(test, train)",
    )],
    dynamic_keys: None,
    make: |p| {
        Ok(Box::new(DataCopyingMetric {
            config: DataCopying::default().seed(p.seed),
            modified: false,
        }))
    },
};

/// Registry entry of dgm-eval's modified C_T (generated set plays the
/// training set).
pub static SPEC_MODIFIED: Spec = Spec {
    name: "ct_modified",
    about: "dgm-eval's modified C_T: the generated set plays the training set",
    reference: "Stein et al. 2023, Exposing flaws of generative model evaluation metrics; dgm-eval compute_CTscore_mem",
    inputs: &[Input::Train, Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[KeySpec::new(
        "ct_modified",
        Direction::CloserToZero,
        "C_T with the roles of the training and generated sets swapped",
    )],
    dynamic_keys: None,
    make: |p| {
        Ok(Box::new(DataCopyingMetric {
            config: DataCopying::default().seed(p.seed),
            modified: true,
        }))
    },
};

impl Metric for DataCopyingMetric {
    fn spec(&self) -> &'static Spec {
        if self.modified { &SPEC_MODIFIED } else { &SPEC }
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let spec = self.spec();
        let train = cx.rows(spec, Set::Train)?;
        let test = cx.rows(spec, Set::Real)?;
        let fake = cx.rows(spec, Set::Fake)?;
        let out = if self.modified {
            self.config.compute_mem(train, test, fake)?
        } else {
            self.config.compute(train, test, fake)?
        };
        Ok(Outcome::new().value(spec.name, out.c_t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn u_statistic_matches_hand_counts() {
        // U counts pairs (x, y) with x > y, ties counting 1/2.
        let x = [1.0, 4.0, 4.0];
        let y = [2.0, 4.0, 5.0, 0.5];
        let brute: f64 = x
            .iter()
            .flat_map(|a| {
                y.iter().map(move |b| {
                    if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    }
                })
            })
            .sum();
        assert_eq!(mann_whitney_u(&x, &y), brute);
        assert_eq!(mann_whitney_u(&[], &y), 0.0);
        // Z of the null mean is the continuity offset over the std.
        let z = z_u(6.0 - 0.5, 3, 4);
        assert!(z.abs() < 1e-15);
    }
}
