//! # gen-metrics-distribution: how far apart two feature distributions are
//!
//! **Owns:** the sample-based metrics that compare a set of real features with
//! a set of generated features (or score generated logits alone): FID and
//! FD-inf, KID, IS and IS-inf, precision/recall in both k-NN conventions, the
//! realism score, density/coverage, rarity, Vendi, MiFID, the FID
//! fringe-feature attack, CMMD, dgm-eval's efficient FD and approximate sliced
//! Wasserstein distance, probabilistic precision/recall, TopP&R, the Rényi
//! kernel entropy scores (RKE, RRKE) and PRD. Each metric is a small configuration struct with the
//! paper's defaults and one `compute` method (the [`TwoSampleMetric`] shape),
//! documented with its formula and its paper, and checked against the
//! canonical Python implementation in the conformance tests.
//!
//! **Must not:** decode images, run encoders or read files (that is
//! `gen-metrics-features` / `gen-metrics-io`), or re-implement linear algebra
//! that belongs in `gen-metrics-linalg`. Every randomized metric takes a seed
//! and is deterministic under it.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use gen_metrics_metric::error;
pub mod cmmd;
pub mod extrapolation;
pub mod fd_eff;
pub mod fd_infinity;
pub mod fid;
pub mod fringe;
pub mod inception_score;
pub mod kid;
pub mod mifid;
pub mod p_pr;
pub mod prd;
pub mod prdc;
pub mod precision_recall;
pub mod rarity;
pub mod realism;
pub mod rke;
pub mod sw_approx;
pub mod top_pr;
pub use gen_metrics_metric::validate;
pub mod vendi;

pub use cmmd::{Cmmd, CmmdOutput};
pub use extrapolation::InfinityExtrapolation;
pub use fd_eff::FdEff;
pub use fd_infinity::{FdInfinity, FdInfinityOutput};
pub use fid::{Fid, FidOutput};
pub use gen_metrics_metric::{Metric, MetricError};
pub use inception_score::{
    InceptionScore, IsConvention, IsInfinity, IsInfinityOutput, IsOrder, IsOutput,
};
pub use kid::{Kid, KidOutput, KidSubsets};
pub use mifid::{Mifid, MifidConvention, MifidOutput};
pub use p_pr::{ProbabilisticPr, ProbabilisticPrOutput};
pub use prd::{Prd, PrdOutput};
pub use prdc::{Prdc, PrdcOutput};
pub use precision_recall::{PrecisionRecall, PrecisionRecallOutput};
pub use rarity::{Rarity, RarityOutput};
pub use realism::{
    Realism, RealismDgmEval, RealismDgmEvalOutput, RealismOutput, realism_dgm_eval_k5_mean,
};
pub use rke::{Rke, RkeOutput};
pub use sw_approx::SwApprox;
pub use top_pr::{TopPr, TopPrDraws, TopPrOutput};
pub use vendi::{Vendi, VendiKernel, VendiOutput};

use ndarray::ArrayView2;

/// The one shape every two-sample metric has (as `linfa`'s `Fit`): a
/// configuration value that is computed on `(real, fake)` feature matrices,
/// rows are samples, columns are feature dimensions.
pub trait TwoSampleMetric {
    /// What the metric returns (a number, or a struct with the value and its
    /// diagnostics).
    type Output;

    /// Computes the metric of `fake` against `real`.
    ///
    /// # Errors
    /// [`MetricError`] for empty or too-small sets, mismatched dimensions,
    /// non-finite values or parameters out of range.
    fn compute(
        &self,
        real: ArrayView2<'_, f32>,
        fake: ArrayView2<'_, f32>,
    ) -> Result<Self::Output, MetricError>;
}
