//! The provisioner of the conversion test: the same home folder as the
//! end-to-end tests of `gen-metrics-features`, so the archive is fetched once.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gen_metrics_artifacts::{Artifact, ArtifactError, Provisioner};

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// `GEN_METRICS_HOME` when set, else `<repo>/.cache/gen-metrics-home`
/// (git-ignored, kept between runs); wheels already in `<repo>/.cache/wheels`
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

static PROVISIONING: Mutex<()> = Mutex::new(());

/// The folder of a pinned artifact; `None` (after `missing_artifact`, which
/// fails under CI) when it cannot be had here.
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
