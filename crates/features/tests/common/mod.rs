//! Shared helpers of the provisioning and end-to-end tests.
#![allow(dead_code)]

pub mod tiny_onnx;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gen_metrics_artifacts::{Artifact, ArtifactError, Provisioner};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The provisioner the end-to-end tests use: `GEN_METRICS_HOME` when set,
/// else `<repo>/.cache/gen-metrics-home` (git-ignored, kept between runs so
/// the artifacts are fetched once); wheels already in `<repo>/.cache/wheels`
/// are used before the package client.
pub fn test_provisioner() -> Provisioner {
    let home = std::env::var_os("GEN_METRICS_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".cache/gen-metrics-home"));
    let mut p = Provisioner::new(home).quiet(false);
    let wheels = repo_root().join(".cache/wheels");
    if wheels.is_dir() {
        p = p.wheel_dir(wheels);
    }
    p
}

/// Serialises provisioning between the tests of one binary, so that a fresh
/// cache is filled once instead of once per test thread.
static PROVISIONING: Mutex<()> = Mutex::new(());

/// The folder of a pinned artifact, provisioned by [`test_provisioner`];
/// `None` (after `missing_artifact`, which fails under CI) when it cannot be
/// had here.
pub fn provisioned(artifact: &Artifact) -> Option<PathBuf> {
    let _guard = PROVISIONING.lock().unwrap_or_else(|e| e.into_inner());
    match test_provisioner().ensure(artifact) {
        Ok(dir) => Some(dir),
        Err(e @ ArtifactError::ArtifactUnavailable { .. }) => {
            gen_metrics_testkit::missing_artifact(&format!("{}: {e}", artifact.requirement()));
            None
        }
        Err(e) => panic!("provisioning {}: {e}", artifact.requirement()),
    }
}

/// Provisions the CPU runtime and the FID Inception ONNX model; `None` (after
/// `missing_artifact`, which fails under CI) when they cannot be had here.
pub fn provision_inception() -> Option<(Provisioner, PathBuf, PathBuf)> {
    let _guard = PROVISIONING.lock().unwrap_or_else(|e| e.into_inner());
    let p = test_provisioner();
    let lib = match p.onnxruntime_library(false) {
        Ok(l) => l,
        Err(e @ ArtifactError::ArtifactUnavailable { .. }) => {
            gen_metrics_testkit::missing_artifact(&format!("ONNX Runtime CPU library: {e}"));
            return None;
        }
        Err(e) => panic!("provisioning ONNX Runtime: {e}"),
    };
    let model = match p.fid_inception_onnx() {
        Ok(m) => m,
        Err(e @ ArtifactError::ArtifactUnavailable { .. }) => {
            gen_metrics_testkit::missing_artifact(&format!("FID Inception weights: {e}"));
            return None;
        }
        Err(e) => panic!("provisioning the FID Inception: {e}"),
    };
    Some((p, lib, model))
}

/// The provisioned CPU ONNX Runtime library; `None` (after
/// `missing_artifact`, which fails under CI) when it cannot be had here.
pub fn runtime_library() -> Option<PathBuf> {
    let _guard = PROVISIONING.lock().unwrap_or_else(|e| e.into_inner());
    match test_provisioner().onnxruntime_library(false) {
        Ok(l) => Some(l),
        Err(e @ ArtifactError::ArtifactUnavailable { .. }) => {
            gen_metrics_testkit::missing_artifact(&format!("ONNX Runtime CPU library: {e}"));
            None
        }
        Err(e) => panic!("provisioning ONNX Runtime: {e}"),
    }
}

/// Reads a float32 `.npy` reference.
pub fn read_npy(path: &Path) -> ndarray::Array2<f32> {
    use ndarray_npy::ReadNpyExt;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ndarray::Array2::<f32>::read_npy(f).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Largest absolute difference and where it is.
pub fn max_abs_diff(a: &ndarray::Array2<f32>, b: &ndarray::Array2<f32>) -> (f32, (usize, usize)) {
    assert_eq!(a.dim(), b.dim(), "shapes differ");
    let mut best = (0.0f32, (0, 0));
    for ((i, j), x) in a.indexed_iter() {
        let d = (x - b[[i, j]]).abs();
        if d > best.0 || d.is_nan() {
            best = (d, (i, j));
        }
    }
    best
}
