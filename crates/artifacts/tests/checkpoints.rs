//! Official checkpoints: the table, a checkpoint the user brings
//! (`--checkpoint FILE`) converted once and cached, pinned and recorded
//! digests enforced, and an address that cannot be reached explained.
//!
//! Offline: the checkpoint is the small random DINOv2 of
//! `crates/features/tests/fixtures/dinov2/mlp.pth` (made by
//! `tools/make_vit_fixtures.py` with facebookresearch/dinov2's code; its
//! conversion is compared with PyTorch in `crates/features/tests/dinov2_convert.rs`),
//! under a test entry whose address is unroutable (`127.0.0.1` port 9) or a
//! `file://` mirror.

use std::path::{Path, PathBuf};

use gen_metrics_artifacts::{
    ArtifactError, CHECKPOINTS, Checkpoint, CheckpointKind, Provisioner, checkpoint, sha256_file,
};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/dinov2/mlp.pth")
}

/// The fixture's architecture: D 24, 2 heads, depth 2, MLP FFN.
fn test_entry(sha256: Option<&'static str>, output_dim: usize) -> Checkpoint {
    Checkpoint {
        id: "dinov2-test",
        preset: "dinov2-test",
        url: "http://127.0.0.1:9/dinov2/dinov2_test/mlp.pth",
        sha256,
        kind: CheckpointKind::Dinov2StateDict,
        num_heads: 2,
        output_dim,
        image_size: 224,
        description: "test",
    }
}

fn provisioner(home: &Path) -> Provisioner {
    Provisioner::new(home).quiet(true)
}

#[test]
fn the_table_pins_the_official_checkpoints() {
    let ids: Vec<&str> = CHECKPOINTS.iter().map(|c| c.id).collect();
    assert_eq!(
        ids,
        [
            "dinov2-vits14",
            "dinov2-vitb14",
            "dinov2-vitl14",
            "clip-vit-b-32",
            "clip-vit-b-16",
            "clip-vit-l-14",
            "clip-vit-l-14-336"
        ]
    );
    for c in CHECKPOINTS {
        match c.kind {
            CheckpointKind::Dinov2StateDict => {
                // Meta publishes no digest: recorded on first download.
                assert_eq!(c.sha256, None, "{}", c.id);
                assert!(c.file_name().ends_with("_pretrain.pth"), "{}", c.id);
                assert_eq!(c.image_size, 224);
            }
            CheckpointKind::ClipTorchScript => {
                // openai/CLIP's `_download` checks `url.split("/")[-2]`.
                let segments: Vec<&str> = c.url.rsplit('/').collect();
                assert_eq!(c.sha256, Some(segments[1]), "{}", c.id);
                assert_eq!(segments[1].len(), 64);
                assert!(c.file_name().ends_with(".pt"), "{}", c.id);
            }
        }
    }
    let l = checkpoint("dinov2-vitl14").expect("dinov2-vitl14");
    assert_eq!(checkpoint("dinov2-vit-l14"), Some(l));
    assert_eq!(
        l.url,
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth"
    );
    assert_eq!((l.output_dim, l.num_heads), (1024, 16));
    let c = checkpoint("clip-vit-l-14-336").expect("clip 336");
    assert_eq!((c.output_dim, c.image_size, c.num_heads), (768, 336, 16));
    assert_eq!(c.file_name(), "ViT-L-14-336px.pt");
}

#[test]
fn a_brought_checkpoint_is_recorded_converted_once_and_cached() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Offline: nothing may be downloaded on this path.
    let p = provisioner(tmp.path()).offline(true);
    let c = test_entry(None, 24);
    let want_sha = sha256_file(&fixture()).expect("hash");
    let (path, sha) = p.install_checkpoint(&c, &fixture()).expect("install");
    assert_eq!(sha, want_sha);
    assert_eq!(path, tmp.path().join("checkpoints/mlp.pth"));
    let record: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("checkpoints/mlp.pth.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(record["sha256"], want_sha.as_str());

    let (onnx, model_sha) = p.checkpoint_onnx(&c).expect("convert");
    assert_eq!(onnx, tmp.path().join("models/dinov2-test.onnx"));
    assert_eq!(sha256_file(&onnx).unwrap(), model_sha);
    let info = gen_metrics_convert::inspect_onnx(&std::fs::read(&onnx).unwrap()).unwrap();
    assert_eq!(info.outputs[0].name, "features");
    assert_eq!(
        info.outputs[0].shape.last(),
        Some(&gen_metrics_convert::onnx::OnnxDim::Value(24))
    );
    let side: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tmp.path().join("models/dinov2-test.onnx.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(side["source_sha256"], want_sha.as_str());
    assert_eq!(side["converter"], gen_metrics_convert::converter_version());

    // Cached: used as it is, also once the checkpoint is gone, and without
    // any download by the encoders' path.
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        p.cached_checkpoint_onnx(&c).unwrap(),
        (onnx.clone(), model_sha.clone())
    );
    assert_eq!(p.checkpoint_onnx(&c).unwrap().1, model_sha);
    // A damaged model is never used: with no checkpoint left, the error says
    // how to get one.
    std::fs::write(&onnx, b"damaged").unwrap();
    let err = p.cached_checkpoint_onnx(&c).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ArtifactError::ArtifactUnavailable { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("gen-metrics models fetch dinov2-test"),
        "{msg}"
    );
    assert!(msg.contains("--checkpoint FILE"), "{msg}");
    // Brought again: converted again, the same bytes.
    p.install_checkpoint(&c, &fixture()).unwrap();
    assert_eq!(p.cached_checkpoint_onnx(&c).unwrap().1, model_sha);
}

/// The random CLIP archive of `crates/features/tests/fixtures/clip` (made
/// by `tools/make_clip_fixtures.py` with openai/CLIP's code; its conversion
/// is compared with PyTorch in `crates/features/tests/clip_convert.rs`),
/// brought for a CLIP entry with its pinned digest.
#[test]
fn a_clip_archive_is_verified_and_converted() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = provisioner(tmp.path()).offline(true);
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/clip/vit_tiny.pt");
    let sha: &'static str = Box::leak(sha256_file(&file).unwrap().into_boxed_str());
    let official = *checkpoint("clip-vit-b-32").expect("entry");
    // The fixture: width 32 with 2 heads, 112x112 inputs, embedding 16.
    let c = Checkpoint {
        id: "clip-test",
        url: "http://127.0.0.1:9/clip/vit_tiny.pt",
        sha256: Some(sha),
        num_heads: 2,
        output_dim: 16,
        image_size: 112,
        ..official
    };
    p.install_checkpoint(&c, &file).expect("install");
    let (onnx, _) = p.checkpoint_onnx(&c).expect("convert");
    let info = gen_metrics_convert::inspect_onnx(&std::fs::read(&onnx).unwrap()).unwrap();
    assert_eq!(
        info.outputs[0].shape.last(),
        Some(&gen_metrics_convert::onnx::OnnxDim::Value(16))
    );
    // Another resolution than the entry's: refused; a pinned file is kept.
    let other = Checkpoint {
        id: "clip-test-336",
        image_size: 336,
        ..c
    };
    p.install_checkpoint(&other, &file).unwrap();
    let msg = p.checkpoint_onnx(&other).unwrap_err().to_string();
    assert!(msg.contains("is not a clip-test-336 checkpoint"), "{msg}");
}

#[test]
fn digests_are_enforced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = provisioner(tmp.path()).offline(true);
    // A pinned digest that differs: refused, nothing written.
    let pinned = test_entry(
        Some("0000000000000000000000000000000000000000000000000000000000000000"),
        24,
    );
    let err = p.install_checkpoint(&pinned, &fixture()).unwrap_err();
    assert!(
        matches!(err, ArtifactError::ChecksumMismatch { .. }),
        "{err}"
    );
    assert!(!tmp.path().join("checkpoints/mlp.pth").exists());
    // The pinned digest that matches.
    let sha: &'static str = Box::leak(sha256_file(&fixture()).unwrap().into_boxed_str());
    let ok = test_entry(Some(sha), 24);
    assert_eq!(p.install_checkpoint(&ok, &fixture()).unwrap().1, sha);
    // Unpinned: a cached file that no longer matches the recorded digest is
    // removed, never converted.
    let c = test_entry(None, 24);
    let (path, _) = p.install_checkpoint(&c, &fixture()).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(p.cached_checkpoint(&c).unwrap().is_none());
    assert!(!path.exists());
}

#[test]
fn another_architecture_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let p = provisioner(tmp.path()).offline(true);
    let c = test_entry(None, 1024);
    p.install_checkpoint(&c, &fixture()).unwrap();
    let err = p.checkpoint_onnx(&c).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, ArtifactError::WrongCheckpoint { .. }),
        "{msg}"
    );
    assert!(
        msg.contains("width 24") && msg.contains("width 1024"),
        "{msg}"
    );
    assert!(!tmp.path().join("models/dinov2-test.onnx").exists());
    // Unpinned: the wrong file and its recorded digest are not kept.
    assert!(!tmp.path().join("checkpoints/mlp.pth").exists());
    assert!(!tmp.path().join("checkpoints/mlp.pth.json").exists());
}

#[test]
fn an_unreachable_address_says_so_and_explains_checkpoint_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let c = test_entry(None, 24);
    for p in [
        provisioner(tmp.path()),
        provisioner(tmp.path()).offline(true),
    ] {
        let err = p.checkpoint_onnx(&c).unwrap_err();
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            matches!(err, ArtifactError::ArtifactUnavailable { .. }),
            "{msg}"
        );
        assert!(msg.contains(c.url), "{msg}");
        assert!(
            msg.contains("gen-metrics models fetch dinov2-test --checkpoint FILE"),
            "{msg}"
        );
    }
    // No curl at all: also explained.
    let p = provisioner(tmp.path()).curl("/nonexistent/curl");
    let msg = p.fetch_checkpoint(&c).unwrap_err().to_string();
    assert!(
        msg.contains("was not found") && msg.contains("--checkpoint FILE"),
        "{msg}"
    );
    assert!(!tmp.path().join("checkpoints/mlp.pth").exists());
}

#[test]
fn a_mirror_is_downloaded_from_and_its_digest_recorded() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mirror = tmp.path().join("mirror");
    std::fs::create_dir_all(&mirror).unwrap();
    std::fs::copy(fixture(), mirror.join("mlp.pth")).unwrap();
    let home = tmp.path().join("home");
    let p = provisioner(&home).checkpoint_mirror(format!("file://{}", mirror.display()));
    let c = test_entry(None, 24);
    assert_eq!(
        p.checkpoint_address(&c),
        format!("file://{}/mlp.pth", mirror.display())
    );
    let (path, sha) = match p.fetch_checkpoint(&c) {
        Ok(found) => found,
        Err(e) if e.to_string().contains("was not found") => {
            eprintln!("skipped: no curl on this machine ({e})");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert_eq!(sha, sha256_file(&fixture()).unwrap());
    assert_eq!(path, home.join("checkpoints/mlp.pth"));
    assert!(home.join("checkpoints/mlp.pth.json").is_file());
    // No partial download is left behind.
    let left: Vec<_> = std::fs::read_dir(home.join("downloads")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(p.checkpoint_onnx(&c).is_ok());
}
