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
//! | `eval` | [`eval`], [`metric`] | the pipeline: sets in, every metric with intervals out, as a [`Report`]; the training-loop [`Evaluator`] |
//! | `features` | [`features`] | images -> embeddings with ONNX Runtime (image folders in [`Evaluation`]) |
//! | `cuda` | — | the CUDA execution provider for `features` |
//!
//! Default: everything but `cuda` and `nalgebra`.
//!
//! ## FID of two folders, in three lines
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let Some((real_dir, fake_dir)) = gen_metrics::doc_support::two_folders()? else { return Ok(()) };
//! # let (real_dir, fake_dir) = (real_dir.path(), fake_dir.path());
//! use gen_metrics::Evaluation;
//! let report = Evaluation::between(real_dir, fake_dir).metrics(["fid"]).run()?;
//! println!("FID {:.3}", report.value("fid").unwrap_or(f64::NAN));
//! # assert!(report.value("fid").is_some_and(|v| v > 0.0));
//! # Ok(()) }
//! ```
//!
//! ## Every metric with 95% intervals, in five
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let Some((real_dir, fake_dir)) = gen_metrics::doc_support::two_folders()? else { return Ok(()) };
//! # let (real_dir, fake_dir) = (real_dir.path(), fake_dir.path());
//! # let out = tempfile::tempdir()?;
//! use gen_metrics::Evaluation;
//! let report = Evaluation::between(real_dir, fake_dir)
//!     .metrics(["fid", "kid", "pr", "prdc", "realism", "vendi"])
//!     .intervals(10)
//!     .run()?;
//! report.write_dir(out.path())?; // report.json, report.md, SVG plots
//! # assert!(out.path().join("report.json").exists());
//! # assert!(report.sets[0].get("precision").is_some_and(|v| v.interval.is_some()));
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]

pub use gen_metrics_linalg as linalg;

#[cfg(feature = "cas")]
pub use gen_metrics_cas as cas;
#[cfg(feature = "distribution")]
pub use gen_metrics_distribution as distribution;
#[cfg(feature = "eval")]
pub use gen_metrics_eval as eval;
#[cfg(feature = "eval")]
pub use gen_metrics_eval::{EvalError, Evaluation, Evaluator, Report};
#[cfg(feature = "features")]
pub use gen_metrics_features as features;
#[cfg(feature = "io")]
pub use gen_metrics_io as io;
#[cfg(feature = "memorization")]
pub use gen_metrics_memorization as memorization;
#[cfg(feature = "eval")]
pub use gen_metrics_metric as metric;
#[cfg(feature = "mpi")]
pub use gen_metrics_mpi as mpi;
#[cfg(feature = "ranking")]
pub use gen_metrics_ranking as ranking;

/// Support for the crate's documentation examples (not part of the API).
#[cfg(all(feature = "eval", feature = "features"))]
#[doc(hidden)]
pub mod doc_support;
