//! # gen-metrics-linalg: the numerical kernels every metric stands on
//!
//! **Owns:** dense linear algebra on feature matrices — streaming, mergeable
//! Gaussian statistics ([`GaussianAccumulator`]), the Fréchet distance between
//! two Gaussians without a matrix square root ([`FrechetDistance`]), blocked
//! pairwise distances and k-nearest-neighbour radii with bounded memory
//! ([`pairwise`]), blocked kernel sums for MMD ([`kernels`]), PCA ([`pca`]) and
//! k-means ([`kmeans`]), the dense products and decompositions the metric
//! crates need ([`dense`]) and the Adam optimiser ([`optim`]). `faer` does the
//! heavy lifting and this is the only crate that calls it; `ndarray` is the
//! public array type. The few hand-written hot loops (the eigensolver's reduction
//! stages in [`frechet`]) are plain safe Rust compiled for the CPU's widest
//! vector instructions through `pulp`'s runtime dispatch; there is no
//! `unsafe` in this crate.
//!
//! **Must not:** know about images, encoders, files or metric conventions of a
//! particular paper (thresholds, `<` vs `<=`, subset protocols). Those live in
//! the metric crates that call these kernels. Nothing here reads or writes files.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod convert;
pub mod dense;
pub mod error;
pub mod frechet;
pub mod kernels;
pub mod kmeans;
pub mod optim;
pub mod pairwise;
pub mod pca;
pub mod stats;

pub use dense::{
    SymmetricEigen, cholesky_lower, matmul, matmul_nt, matmul_tn, singular_values,
    solve_lower_triangular, symmetric_eigen, symmetric_eigenvalues,
};
pub use error::LinalgError;
pub use frechet::{FrechetBranch, FrechetDistance, FrechetMethod, FrechetResult, FrechetSide};
pub use kernels::{CompensatedSum, Kernel, KernelSums, SubsetKernelSums, WithinSum};
pub use kmeans::{KMeans, KMeansModel};
pub use optim::Adam;
pub use pairwise::{
    Boundary, CrossAndSums, CrossAnswer, CrossBallStats, CrossRequest, DistanceBlock,
    DistancePower, GramDevice, RadiiAndSums, ResidentGram, count_within_radii,
    cross_ball_statistics, cross_pass, cross_pass_with_kernel, for_each_distance_block,
    gram_device, gram_device_fallbacks, kernel_sums_with_subsets, kth_neighbour_radii,
    kth_neighbour_radii_multi, kth_neighbour_squared_radii, kth_neighbour_squared_radii_multi,
    kth_neighbour_squared_radii_with_kernel, max_abs_cosine_similarity, max_weight_over_distance,
    nearest_neighbours, percentile_linear, self_nearest_neighbours, set_gram_device,
    smallest_containing_radius, squared_distance, squared_distances, zero_above_percentile,
};
pub use pca::Pca;
pub use stats::{
    AccumulatorParts, GaussianAccumulator, GaussianStats, check_positive_semidefinite,
    psd_tolerance,
};
