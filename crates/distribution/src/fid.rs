//! Fréchet Inception Distance (Heusel et al. 2017, "GANs trained by a two
//! time-scale update rule converge to a local Nash equilibrium").
//!
//! ```text
//! FID = ‖μ_r − μ_f‖² + tr Σ_r + tr Σ_f − 2 tr (Σ_r^½ Σ_f Σ_r^½)^½
//! ```
//!
//! with `μ = mean(X)` and `Σ = np.cov(X, rowvar=False)` (ddof 1) in float64, as
//! pytorch-fid's `calculate_frechet_distance` (the conformance key
//! `fd_pytorch_fid`), clean-fid and torch-fidelity. The distance itself is
//! [`gen_metrics_linalg::FrechetDistance`]: no `sqrtm`, the branch taken is
//! reported. From raw features, a set with `N ≤ D` rows (e.g. FID of 1000
//! samples of 2048-d Inception features) is handled by the well-conditioned
//! Gram/SVD branch, which is accurate to ~1e-15 where every `D × D` square root
//! route (pytorch-fid included) is only good to ~1e-8 relative.

use gen_metrics_linalg::{
    FrechetBranch, FrechetDistance, FrechetMethod, FrechetResult, FrechetSide, GaussianStats,
};
use ndarray::ArrayView2;
use serde::Serialize;

use crate::validate::check_pair;
use crate::{MetricError, TwoSampleMetric};
use gen_metrics_metric::{Context, Direction, Input, KeySpec, Metric, Outcome, Plan, Set, Spec};

const METRIC: &str = "FID";

/// FID configuration: which algorithm evaluates the trace term (default
/// [`FrechetMethod::Auto`]).
///
/// ```
/// # use gen_metrics_distribution::{fid::Fid, TwoSampleMetric};
/// # use ndarray::array;
/// let real = array![[0.0f32, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]];
/// let fake = real.mapv(|v| v + 1.0);
/// let out = Fid::default().compute(real.view(), fake.view()).unwrap();
/// assert!((out.value - 2.0).abs() < 1e-12); // identical covariances, ‖Δμ‖² = 2
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Fid {
    method: FrechetMethod,
}

/// The FID with the terms it is made of.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FidOutput {
    /// The distance, never negative: a computed value between 0 and minus
    /// the rounding bound of [`gen_metrics_linalg::frechet`] ("Rounding and
    /// the sign of the result", e.g. −1.5e-11 for identical 2048-d sets) is
    /// 0; a more negative one is an error ([`MetricError::Linalg`]), never
    /// clamped.
    pub value: f64,
    /// The branch that evaluated `tr√` (`"Cholesky"`, `"SymmetricEigen"`,
    /// `"GramSvd"`, `"FactorSvd"`).
    #[serde(serialize_with = "ser_branch")]
    pub branch: FrechetBranch,
    /// Negative round-off eigenvalues clamped to 0.
    pub clamped_negative_eigs: usize,
    /// `‖μ_r − μ_f‖²`.
    pub mean_term: f64,
    /// `tr Σ_r`.
    pub trace_real: f64,
    /// `tr Σ_f`.
    pub trace_fake: f64,
    /// `tr (Σ_r^½ Σ_f Σ_r^½)^½`.
    pub trace_sqrt: f64,
    /// Rows behind the real statistics (0 if unknown).
    pub n_real: usize,
    /// Rows behind the fake statistics (0 if unknown).
    pub n_fake: usize,
}

fn ser_branch<S: serde::Serializer>(b: &FrechetBranch, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{b:?}"))
}

impl Fid {
    /// The default configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Chooses the algorithm for the trace term.
    pub fn method(mut self, method: FrechetMethod) -> Self {
        self.method = method;
        self
    }

    /// FID from precomputed statistics (e.g. a reference-statistics file).
    ///
    /// # Errors
    /// [`MetricError::Linalg`] for inconsistent statistics or a failed
    /// decomposition; [`MetricError::DimensionMismatch`].
    pub fn compute_from_stats(
        &self,
        real: &GaussianStats,
        fake: &GaussianStats,
    ) -> Result<FidOutput, MetricError> {
        if real.dim() != fake.dim() {
            return Err(MetricError::DimensionMismatch {
                metric: METRIC,
                real: real.dim(),
                fake: fake.dim(),
            });
        }
        let r = FrechetDistance::new()
            .method(self.method)
            .between_stats(real, fake)?;
        Ok(output(r, real.n, fake.n))
    }

    /// FID between prepared sides (statistics or centred rows), e.g. reference
    /// statistics against a small generated set kept as rows.
    ///
    /// # Errors
    /// As [`Fid::compute_from_stats`].
    pub fn compute_from_sides(
        &self,
        real: &FrechetSide,
        fake: &FrechetSide,
    ) -> Result<FidOutput, MetricError> {
        if real.dim() != fake.dim() {
            return Err(MetricError::DimensionMismatch {
                metric: METRIC,
                real: real.dim(),
                fake: fake.dim(),
            });
        }
        let r = FrechetDistance::new()
            .method(self.method)
            .between_sides(real, fake)?;
        Ok(output(r, real.count(), fake.count()))
    }
}

fn output(r: FrechetResult, n_real: usize, n_fake: usize) -> FidOutput {
    FidOutput {
        value: r.value,
        branch: r.branch,
        clamped_negative_eigs: r.clamped_negative_eigs,
        mean_term: r.mean_term,
        trace_real: r.trace_a,
        trace_fake: r.trace_b,
        trace_sqrt: r.trace_sqrt,
        n_real,
        n_fake,
    }
}

impl TwoSampleMetric for Fid {
    type Output = FidOutput;

    /// FID of the Gaussians fitted to `real` and `fake` (ddof 1).
    ///
    /// # Errors
    /// [`MetricError::TooFewSamples`] for fewer than 2 rows in a set,
    /// [`MetricError::DimensionMismatch`], [`MetricError::NonFinite`],
    /// [`MetricError::Linalg`] for a failed decomposition.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<FidOutput, MetricError> {
        check_pair(METRIC, real, fake, 2)?;
        let (a, b) = FrechetSide::from_features_pair(real, fake);
        self.compute_from_sides(&a?, &b?)
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of FID: reads the shared Gaussian fit of each set, so a
/// statistics file can stand for either side.
pub static SPEC: Spec = Spec {
    name: "fid",
    about: "Fréchet distance between Gaussian fits of real and generated features",
    reference: "Heusel et al. 2017, GANs Trained by a Two Time-Scale Update Rule; pytorch-fid's value",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: true,
    keys: &[KeySpec::new(
        "fid",
        Direction::LowerIsBetter,
        "‖μ_r − μ_g‖² + tr(Σ_r + Σ_g − 2(Σ_r^½ Σ_g Σ_r^½)^½)",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(Fid::new())),
};

impl Metric for Fid {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    fn plan(&self, plan: &mut Plan) {
        plan.gaussian(Set::Real);
        plan.gaussian(Set::Fake);
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        self.evaluate_as(&SPEC, cx)
    }
}

impl Fid {
    /// The Fréchet distance of the context's two sides under `spec`'s name
    /// and first key (FID, sFID: one computation, several feature spaces).
    fn evaluate_as(&self, spec: &'static Spec, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        let real = cx.frechet_side(spec, Set::Real)?;
        let fake = cx.frechet_side(spec, Set::Fake)?;
        let out = self.compute_from_sides(&real, &fake)?;
        let key = spec.keys.first().map_or(spec.name, |k| k.key);
        Ok(Outcome::new().value(key, out.value))
    }
}

/// sFID (Nash et al. 2021, "Generating Images with Sparse Representations";
/// computed as openai/guided-diffusion's `evaluations/evaluator.py`, the ADM
/// evaluator): the Fréchet distance above, on the FID Inception's spatial
/// features, `mixed_6/conv`'s first 7 channels, 17 × 17 × 7 = 2023 values
/// per image in NHWC order (the encoder's `spatial` output). The metric
/// itself is FID's; the evaluation pipeline hands it the spatial features
/// of each set (gen-metrics-eval's `registry::SPATIAL`).
pub static SPEC_SFID: Spec = Spec {
    name: "sfid",
    about: "Fréchet distance between Gaussian fits of the FID Inception's spatial features (mixed_6/conv, first 7 channels)",
    reference: "Nash et al. 2021, Generating Images with Sparse Representations; openai/guided-diffusion evaluator's sFID",
    inputs: &[Input::Real, Input::Fake],
    accepts_statistics: true,
    keys: &[KeySpec::new(
        "sfid",
        Direction::LowerIsBetter,
        "FID's formula on the 2023 spatial features (17 × 17 × 7, NHWC) of each image",
    )
    .with_interval()
    .non_negative()],
    dynamic_keys: None,
    make: |_| Ok(Box::new(Sfid(Fid::new()))),
};

/// sFID on the metric contract: [`Fid`] under [`SPEC_SFID`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Sfid(pub Fid);

impl Metric for Sfid {
    fn spec(&self) -> &'static Spec {
        &SPEC_SFID
    }

    fn plan(&self, plan: &mut Plan) {
        plan.gaussian(Set::Real);
        plan.gaussian(Set::Fake);
    }

    fn evaluate(&self, cx: &Context<'_>) -> Result<Outcome, MetricError> {
        self.0.evaluate_as(&SPEC_SFID, cx)
    }
}
