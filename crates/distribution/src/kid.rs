//! Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs").
//!
//! KID is the unbiased estimate of the squared maximum mean discrepancy with
//! the polynomial kernel `k(x, y) = (γ xᵀy + c₀)^p`, `p = 3`, `γ = 1/D`,
//! `c₀ = 1`. For subsets `X` (real) and `Y` (fake) of `m` rows each:
//!
//! ```text
//! MMD²_u = [Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)] / (m(m−1)) − 2 Σ_{i,j} k(x_i, y_j) / m²
//! ```
//!
//! averaged over `n_subsets = 100` subsets of `m = min(1000, N_real, N_fake)`
//! rows drawn without replacement; the spread is the standard deviation over
//! subsets with ddof 0. This is clean-fid's `kernel_distance` (per subset it
//! draws the fake indices first, then the real ones; it returns no std — the
//! corpus derives one with `np.std`) and torch-fidelity's
//! `kid_features_to_metric` (features_1 = fake, features_2 = real; it refuses
//! `N < subset_size`, where this implementation, like clean-fid, shrinks `m`).
//! The estimate is symmetric in the two sets, so which is `X` does not matter.
//! The full-set unbiased value (all rows, `m ≠ n` allowed) is
//! [`Kid::full_unbiased`].
//!
//! Subsets come either from a seeded `ChaCha8Rng` ([`Kid::sample_subsets`]) or
//! are given explicitly ([`Kid::compute_with_subsets`]; the conformance tests
//! replay the index files of clean-fid and torch-fidelity, whose numpy
//! `RandomState` streams are not reproduced here). When both sets have exactly
//! `m` rows every subset is a permutation of the whole set, each per-subset
//! value equals the full-set value, and the std is pure round-off.
//!
//! All kernel sums are in float64 (`f32` features are widened exactly), as the
//! float64 references.

use gen_metrics_linalg::kernels::{mmd2_unbiased_from_sums, subset_sum, subset_sum_off_diagonal};
use gen_metrics_linalg::{Kernel, KernelSums, SubsetKernelSums, kernel_sums_with_subsets};
use ndarray::{Array2, ArrayView2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{
    Context, Direction, Input, KernelNeed, KeySpec, Metric, Outcome, Plan, Set, Spec,
};

const METRIC: &str = "KID";

/// Above this many bytes the per-subset sums are computed from the rows of each
/// subset instead of from precomputed full kernel matrices.
const KERNEL_MATRIX_BUDGET: usize = 512 << 20;

/// Whether the per-subset sums come from the three kernel matrices computed
/// once: they fit [`KERNEL_MATRIX_BUDGET`] and cost less than summing each
/// subset's own rows (precomputing costs ~(N_r + N_f)² D flops once;
/// per-subset sums ~4 m² D flops per subset).
fn precomputes(nr: usize, nf: usize, m: usize, n_subsets: usize) -> bool {
    let matrix_bytes = 8 * (nr * nr + nf * nf + nr * nf);
    matrix_bytes <= KERNEL_MATRIX_BUDGET && (nr + nf).pow(2) <= 4 * m * m * n_subsets
}

/// Explicit KID subsets: row `s` of `real` (of `fake`) holds the real (fake)
/// row indices of subset `s`; both arrays are `[n_subsets, m]`.
#[derive(Debug, Clone, PartialEq)]
pub struct KidSubsets {
    /// Real-set indices, `[n_subsets, m]`.
    pub real: Array2<usize>,
    /// Fake-set indices, `[n_subsets, m]`.
    pub fake: Array2<usize>,
}

/// KID configuration with the paper's (and clean-fid's / torch-fidelity's)
/// defaults: 100 subsets of at most 1000 rows, kernel `(xᵀy/D + 1)³`.
#[derive(Debug, Clone, Copy)]
pub struct Kid {
    n_subsets: usize,
    subset_size: usize,
    degree: u32,
    gamma: Option<f64>,
    coef0: f64,
    seed: u64,
    full_set: bool,
}

impl Default for Kid {
    fn default() -> Self {
        Kid {
            n_subsets: 100,
            subset_size: 1000,
            degree: 3,
            gamma: None,
            coef0: 1.0,
            seed: 0,
            full_set: false,
        }
    }
}

/// KID: the mean and spread over subsets, the per-subset values, and the
/// full-set value when asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KidOutput {
    /// Mean of the per-subset unbiased MMD² values.
    pub mean: f64,
    /// Standard deviation over subsets (ddof 0, `np.std`).
    pub std: f64,
    /// The unbiased MMD² of every subset.
    pub per_subset: Vec<f64>,
    /// The subset size `m`.
    pub subset_size: usize,
    /// The unbiased MMD² on all rows (when [`Kid::full_set`] is on).
    pub full_unbiased: Option<f64>,
}

impl Kid {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of subsets (default 100).
    pub fn n_subsets(mut self, n: usize) -> Self {
        self.n_subsets = n;
        self
    }

    /// Largest subset size (default 1000); the size used is
    /// `min(subset_size, N_real, N_fake)`.
    pub fn subset_size(mut self, m: usize) -> Self {
        self.subset_size = m;
        self
    }

    /// Polynomial degree (default 3).
    pub fn degree(mut self, p: u32) -> Self {
        self.degree = p;
        self
    }

    /// Kernel scale `γ` (default `1/D`).
    pub fn gamma(mut self, gamma: f64) -> Self {
        self.gamma = Some(gamma);
        self
    }

    /// Kernel offset `c₀` (default 1).
    pub fn coef0(mut self, c: f64) -> Self {
        self.coef0 = c;
        self
    }

    /// Seed of the subset sampler (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Also compute the full-set unbiased MMD² (cost `O((N_r + N_f)² D)`).
    pub fn full_set(mut self, on: bool) -> Self {
        self.full_set = on;
        self
    }

    /// The kernel for `dim`-dimensional features.
    pub fn kernel(&self, dim: usize) -> Kernel {
        Kernel::Polynomial {
            gamma: self.gamma.unwrap_or(1.0 / dim as f64),
            coef0: self.coef0,
            degree: self.degree,
        }
    }

    /// The subset size used for these set sizes.
    pub fn effective_subset_size(&self, n_real: usize, n_fake: usize) -> usize {
        self.subset_size.min(n_real).min(n_fake)
    }

    /// Seeded subsets without replacement: `ChaCha8Rng::seed_from_u64(seed)`;
    /// per subset the fake indices are drawn first, then the real ones
    /// (clean-fid's order), each with `rand::seq::index::sample`.
    pub fn sample_subsets(&self, n_real: usize, n_fake: usize) -> KidSubsets {
        let m = self.effective_subset_size(n_real, n_fake);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        let mut real = Array2::<usize>::zeros((self.n_subsets, m));
        let mut fake = Array2::<usize>::zeros((self.n_subsets, m));
        for s in 0..self.n_subsets {
            let f = rand::seq::index::sample(&mut rng, n_fake, m);
            let r = rand::seq::index::sample(&mut rng, n_real, m);
            fake.row_mut(s)
                .iter_mut()
                .zip(f.iter())
                .for_each(|(o, v)| *o = v);
            real.row_mut(s)
                .iter_mut()
                .zip(r.iter())
                .for_each(|(o, v)| *o = v);
        }
        KidSubsets { real, fake }
    }

    /// The unbiased MMD² on all rows:
    /// `Σ_{i≠j}k(x_i,x_j)/(m(m−1)) + Σ_{i≠j}k(y_i,y_j)/(n(n−1)) − 2Σk(x_i,y_j)/(mn)`
    /// with `x` = real, `y` = fake (the corpus' `kid_full_unbiased`).
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`].
    pub fn full_unbiased(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<f64, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        Ok(KernelSums::new(self.kernel(real.ncols())).mmd2_unbiased(real, fake)?)
    }

    /// KID on the given subsets (replaying a reference's draws).
    ///
    /// # Errors
    /// As [`TwoSampleMetric::compute`], plus [`MetricError::InvalidParameter`]
    /// for subsets of mismatched shapes, with fewer than 2 rows, out-of-range
    /// or repeated indices, or no subsets at all.
    pub fn compute_with_subsets(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        subsets: &KidSubsets,
    ) -> Result<KidOutput, MetricError> {
        self.compute_from(real, fake, subsets, None)
    }

    /// Whether the subset values are read off the passes over all pairs
    /// (the full-set value is asked for and precomputing the three kernel
    /// matrices does not pay): those passes can then be shared with the k-NN
    /// metrics ([`Metric::plan`]).
    fn reads_full_pass(&self, nr: usize, nf: usize, m: usize, n_subsets: usize) -> bool {
        self.full_set && !precomputes(nr, nf, m, n_subsets)
    }

    /// [`Kid::compute_with_subsets`], with the kernel sums of the full pass
    /// when they were already read off shared passes (`pre`, from
    /// [`Context::kernel_sums`]; the same bits as computing them here).
    fn compute_from(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
        subsets: &KidSubsets,
        pre: Option<&SubsetKernelSums>,
    ) -> Result<KidOutput, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        check_subsets(subsets, real.nrows(), fake.nrows())?;
        let m = subsets.real.ncols();
        let kernel = self.kernel(real.ncols());
        let (nr, nf) = (real.nrows(), fake.nrows());
        let precompute = precomputes(nr, nf, m, subsets.real.nrows());
        // With the full-set value asked for, the subset sums are read off the
        // same kernel blocks (one pass, no GEMM of their own): the distance
        // engine's float64 passes (`kernel_sums_with_subsets`), which the
        // k-NN metrics can share.
        let mut full_unbiased = None;
        let per_subset: Vec<f64> = if self.reads_full_pass(nr, nf, m, subsets.real.nrows()) {
            let computed;
            let sums = match pre {
                Some(s) => s,
                None => {
                    computed = kernel_sums_with_subsets(
                        real,
                        fake,
                        kernel,
                        subsets.real.view(),
                        subsets.fake.view(),
                    )?;
                    &computed
                }
            };
            full_unbiased = Some(mmd2_unbiased_from_sums(
                sums.within_x.off_diagonal,
                sums.within_y.off_diagonal,
                sums.between,
                nr,
                nf,
            ));
            (0..subsets.real.nrows())
                .map(|s| {
                    mmd2_unbiased_from_sums(
                        sums.subset_within_x[s],
                        sums.subset_within_y[s],
                        sums.subset_between[s],
                        m,
                        m,
                    )
                })
                .collect()
        } else if precompute {
            let sums = KernelSums::new(kernel);
            let krr = sums.matrix(real, real)?;
            let kff = sums.matrix(fake, fake)?;
            let krf = sums.matrix(real, fake)?;
            (0..subsets.real.nrows())
                .into_par_iter()
                .map(|s| {
                    let ir: Vec<usize> = subsets.real.row(s).to_vec();
                    let jf: Vec<usize> = subsets.fake.row(s).to_vec();
                    let kxx = subset_sum_off_diagonal(krr.view(), &ir);
                    let kyy = subset_sum_off_diagonal(kff.view(), &jf);
                    let kxy = subset_sum(krf.view(), &ir, &jf);
                    mmd2_unbiased_from_sums(kxx, kyy, kxy, m, m)
                })
                .collect()
        } else {
            let sums = KernelSums::new(kernel);
            let mut out = Vec::with_capacity(subsets.real.nrows());
            for s in 0..subsets.real.nrows() {
                let x = real.select(Axis(0), &subsets.real.row(s).to_vec());
                let y = fake.select(Axis(0), &subsets.fake.row(s).to_vec());
                let kxx = sums.within(x.view())?.off_diagonal;
                let kyy = sums.within(y.view())?.off_diagonal;
                let kxy = sums.between(x.view(), y.view())?;
                out.push(mmd2_unbiased_from_sums(kxx, kyy, kxy, m, m));
            }
            out
        };
        if let Some(v) = per_subset.iter().find(|v| !v.is_finite()) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("non-finite subset value {v}"),
            });
        }
        let (mean, std) = mean_std_ddof0(&per_subset);
        if self.full_set && full_unbiased.is_none() {
            full_unbiased = Some(self.full_unbiased(real, fake)?);
        }
        if let Some(v) = full_unbiased.filter(|v| !v.is_finite()) {
            return Err(MetricError::Numerical {
                metric: METRIC,
                detail: format!("non-finite full-set value {v}"),
            });
        }
        Ok(KidOutput {
            mean,
            std,
            per_subset,
            subset_size: m,
            full_unbiased,
        })
    }
}

/// Mean and ddof-0 standard deviation (`np.mean`, `np.std`).
pub(crate) fn mean_std_ddof0(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
    (mean, var.sqrt())
}

fn check_subsets(s: &KidSubsets, n_real: usize, n_fake: usize) -> Result<(), MetricError> {
    let bad = |detail: String| MetricError::InvalidParameter {
        metric: METRIC,
        detail,
    };
    if s.real.dim() != s.fake.dim() {
        return Err(bad(format!(
            "real subsets {:?} and fake subsets {:?} differ in shape",
            s.real.dim(),
            s.fake.dim()
        )));
    }
    if s.real.nrows() == 0 {
        return Err(bad("no subsets".into()));
    }
    if s.real.ncols() < 2 {
        return Err(bad(format!(
            "subsets need at least 2 rows, got {}",
            s.real.ncols()
        )));
    }
    for (set, idx, n) in [("real", &s.real, n_real), ("fake", &s.fake, n_fake)] {
        let mut seen = vec![usize::MAX; n];
        for (r, row) in idx.outer_iter().enumerate() {
            for &i in row {
                if i >= n {
                    return Err(bad(format!("{set} subset {r} has index {i} >= {n}")));
                }
                if seen[i] == r {
                    return Err(bad(format!("{set} subset {r} repeats index {i}")));
                }
                seen[i] = r;
            }
        }
    }
    Ok(())
}

impl TwoSampleMetric for Kid {
    type Output = KidOutput;

    /// KID on seeded subsets ([`Kid::sample_subsets`]).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than 2 rows in a set,
    /// [`MetricError::DimensionMismatch`], [`MetricError::NonFinite`],
    /// [`MetricError::InvalidParameter`] for `n_subsets = 0` or
    /// `subset_size < 2`, [`MetricError::Linalg`] / [`MetricError::Numerical`]
    /// for a non-finite kernel sum.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<KidOutput, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        if self.n_subsets == 0 || self.subset_size < 2 {
            return Err(MetricError::InvalidParameter {
                metric: METRIC,
                detail: format!(
                    "need n_subsets >= 1 and subset_size >= 2, got {} and {}",
                    self.n_subsets, self.subset_size
                ),
            });
        }
        let subsets = self.sample_subsets(real.nrows(), fake.nrows());
        self.compute_with_subsets(real, fake, &subsets)
    }
}

impl Kid {
    /// [`TwoSampleMetric::compute`] inside an evaluation: the kernel sums of
    /// the full pass are taken from `cx` when [`Context::prepare`] read them
    /// off the passes it shared with the k-NN metrics (the same bits).
    fn compute_in(
        &self,
        cx: &Context<'_>,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<KidOutput, MetricError> {
        if self.n_subsets == 0 || self.subset_size < 2 {
            // Reports the bad parameters.
            return self.compute(real, fake);
        }
        let need = self.kernel_need(real.nrows(), fake.nrows(), real.ncols());
        let pre = cx.kernel_sums(&need);
        let subsets = KidSubsets {
            real: need.subsets_real,
            fake: need.subsets_fake,
        };
        self.compute_from(real, fake, &subsets, pre.as_deref())
    }

    /// The kernel and this configuration's subsets for these set sizes, as
    /// declared in [`Metric::plan`] and looked up in [`Kid::compute_in`].
    fn kernel_need(&self, n_real: usize, n_fake: usize, dim: usize) -> KernelNeed {
        let subsets = self.sample_subsets(n_real, n_fake);
        KernelNeed {
            kernel: self.kernel(dim),
            subsets_real: subsets.real,
            subsets_fake: subsets.fake,
        }
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of KID: 100 subsets of min(1000, N, M) rows (or the
/// `kid_subsets` / `kid_subset_size` parameters), plus the unbiased MMD² over
/// all rows (`kid_full`, skipped on resamples).
pub static SPEC: Spec = Spec {
    name: "kid",
    about: "kernel inception distance: unbiased MMD² with the cubic polynomial kernel",
    reference: "Bińkowski et al. 2018, Demystifying MMD GANs; clean-fid / torch-fidelity subsets",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: false,
    keys: &[
        KeySpec::new(
            "kid_mean",
            Direction::LowerIsBetter,
            "mean over subsets of the unbiased MMD², k(x, y) = (xᵀy/D + 1)³",
        )
        .with_interval()
        .signed_estimator(),
        KeySpec::new(
            "kid_std",
            Direction::NotAScore,
            "standard deviation over subsets",
        ),
        KeySpec::new(
            "kid_full",
            Direction::LowerIsBetter,
            "unbiased MMD² over all rows",
        )
        .signed_estimator(),
    ],
    dynamic_keys: None,
    make: |p| {
        let mut m = Kid::new().seed(p.seed).full_set(true);
        if let Some(n) = p.kid_subsets {
            if n == 0 {
                return Err(MetricError::InvalidParameter {
                    metric: METRIC,
                    detail: "the number of subsets must be at least 1".into(),
                });
            }
            m = m.n_subsets(n);
        }
        if let Some(s) = p.kid_subset_size {
            if s < 2 {
                return Err(MetricError::InvalidParameter {
                    metric: METRIC,
                    detail: format!("the subset size must be at least 2, got {s}"),
                });
            }
            m = m.subset_size(s);
        }
        Ok(Box::new(m))
    },
};

impl Metric for Kid {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// Declares the kernel sums of the full pass when KID will read them
    /// (not on resamples, which skip the full-set value): the k-NN metrics'
    /// passes over the same rows then form each inner product once for both.
    fn plan(&self, plan: &mut Plan) {
        if plan.is_resample() || self.n_subsets == 0 || self.subset_size < 2 {
            return;
        }
        let (Some(nr), Some(nf), Some(d)) =
            (plan.rows(Set::Real), plan.rows(Set::Fake), plan.dim())
        else {
            return;
        };
        let m = self.effective_subset_size(nr, nf);
        if m < 2 || !self.reads_full_pass(nr, nf, m, self.n_subsets) {
            return;
        }
        plan.kernel_sums(self.kernel_need(nr, nf, d));
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let m = if cx.is_resample() {
            self.full_set(false)
        } else {
            *self
        };
        let out = m.compute_in(cx, real, fake)?;
        let mut o = Outcome::new()
            .value("kid_mean", out.mean)
            .value("kid_std", out.std);
        if let Some(full) = out.full_unbiased {
            o = o.value("kid_full", full);
        }
        Ok(o)
    }
}
