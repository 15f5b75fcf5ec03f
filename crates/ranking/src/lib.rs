//! # gen-metrics-ranking: divergences, rank correlations, rank stability, normality
//!
//! **Owns:** KL(p_data ‖ p_model) and reverse KL from log-likelihoods
//! ([`divergence`]), Kendall's tau-b/tau-c and Spearman with p-values
//! ([`rank_correlation`]), bootstrap confidence intervals and the stability of
//! a ranking of models under resampling ([`bootstrap`]), subsampling
//! intervals with verified coverage for k-NN and biased metrics
//! ([`interval`]), and tests of how close
//! features are to Gaussian ([`normality`]).
//!
//! **Must not:** compute distribution metrics itself (it takes them as
//! closures or values from `gen-metrics-distribution`), or read files.
//!
//! ```
//! use gen_metrics_ranking::KendallTau;
//! // conformance case `ranking`, arrays.tie_pair_a: scipy.stats.kendalltau(x, y)
//! let x = [1., 2., 2., 3., 4., 4., 4., 5., 6., 6.];
//! let y = [1., 3., 2., 2., 5., 4., 6., 4., 6., 7.];
//! let r = KendallTau::default().compute(&x, &y)?;
//! assert_eq!(r.tau, 0.7563225565351132);
//! # Ok::<(), gen_metrics_ranking::RankingError>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bootstrap;
pub mod divergence;
pub mod error;
pub mod interval;
pub mod normality;
pub mod rank_correlation;
mod stats;

pub use bootstrap::{
    Better, Bootstrap, BootstrapInterval, CiMethod, RankStability, RankStabilityReport,
    RankedMetric,
};
pub use divergence::{Divergence, KlMetric, LikelihoodDivergences, LogLikelihoods};
pub use error::RankingError;
pub use interval::{Design, Estimand, Interval, Subsampling};
pub use normality::{NormalityReport, NormalitySummary, NormalityTest};
pub use rank_correlation::{KendallTau, KendallTauResult, Spearman, SpearmanResult};
