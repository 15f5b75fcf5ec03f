//! # gen-metrics-io: the file formats of the field
//!
//! **Owns:** every file format of the project, with the one `.npy`/`.npz`
//! codec: reading and writing feature matrices (`.npy`), the headers of
//! `uint8` image arrays ([`images`]), and Gaussian
//! statistics files: pytorch-fid / clean-fid `.npz` (`mu`, `sigma`), ADM
//! reference batches (`arr_0`, `mu`, `sigma`, `mu_s`, `sigma_s`), and the
//! mergeable state of a streaming accumulator (`n`, `mean`, `comoment`). Every
//! malformed file (truncated, wrong dtype, wrong shape, Fortran order) is a
//! clear [`IoError`] naming the file. Every file of the project is written by
//! the one atomic writer, [`write_atomic`] (temporary file, then rename); it
//! never replaces a file the caller did not name.
//!
//! **Must not:** compute metrics or statistics beyond validating what it reads;
//! no other crate parses or writes the `.npy` format.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod accumulator_file;
pub mod atomic;
pub mod error;
pub mod images;
pub mod npy;
mod npz;
pub mod stats_file;
pub mod vectors;

pub use accumulator_file::{read_accumulator, write_accumulator};
pub use atomic::write_atomic;
pub use error::IoError;
pub use images::ImageArray;
pub use npy::{
    FeatureChunks, NPZ_FEATURE_MEMBERS, read_features, read_npz_features, write_features,
};
pub use npz::npz_members;
pub use stats_file::{StatisticsFile, StatsFormat, read_statistics, write_statistics};
pub use vectors::{read_labels, read_log_likelihoods};
