//! # gen-metrics-memorization: does the model copy its training set?
//!
//! **Owns:** tests that tell copying from generalisation on feature vectors:
//! AuthPct (Alaa et al. 2022), the C_T data-copying test (Meehan et al. 2020)
//! with dgm-eval's modified and test-split variants, nearest-neighbour copy
//! detection (distance ratios to the nearest training samples), and FLS
//! (feature likelihood score).
//!
//! **Must not:** decode images or read files; PCA, k-means and pairwise
//! distances come from `gen-metrics-linalg`.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod authpct;
pub mod copy_detection;
pub mod data_copying;
pub mod error;
pub mod fls;

pub use error::MemorizationError;
