//! # gen-metrics
//!
//! Metrics for generative image models with the numbers of the Python
//! references (pytorch-fid, clean-fid, torch-fidelity, prdc, dgm-eval) and
//! error bars. This facade re-exports the focused crates behind cargo
//! features, so a project depends only on what it uses:
//!
//! | feature | crate | what |
//! |---|---|---|
//! | (always) | [`linalg`] | Gaussian statistics, Fréchet distance, k-NN, kernels |
//! | `io` | [`io`] | `.npy` features, pytorch-fid/clean-fid/ADM statistics files |
//! | `distribution` | [`distribution`] | FID, FD-inf, KID, IS, P/R, density/coverage, Vendi, ... |
//! | `ranking` | [`ranking`] | KL/RKL, Kendall tau, bootstrap rank stability, normality |
//! | `memorization` | [`memorization`] | AuthPct, C_T, copy detection, FLS |
//! | `cas` | [`cas`] | Classification Accuracy Score |
//! | `features` | [`features`] | images -> embeddings with ONNX Runtime |
//! | `cuda` | — | the CUDA execution provider for `features` |
#![forbid(unsafe_code)]

pub use gen_metrics_linalg as linalg;

#[cfg(feature = "cas")]
pub use gen_metrics_cas as cas;
#[cfg(feature = "distribution")]
pub use gen_metrics_distribution as distribution;
#[cfg(feature = "features")]
pub use gen_metrics_features as features;
#[cfg(feature = "io")]
pub use gen_metrics_io as io;
#[cfg(feature = "memorization")]
pub use gen_metrics_memorization as memorization;
#[cfg(feature = "ranking")]
pub use gen_metrics_ranking as ranking;
