//! Official model checkpoints fetched from their publishers' addresses, and
//! their ONNX conversions.
//!
//! No package on the registries ships the DINOv2 or CLIP weights (every
//! package downloads them at run time), so these are the one kind of
//! artifact fetched from an address rather than by package name. The table
//! [`CHECKPOINTS`] pins each address; where the publisher publishes a
//! SHA-256 (OpenAI CLIP puts it in the path: `clip/clip.py` `_MODELS`,
//! openai/CLIP at `d05afc436d78f1c48dc0dbf8e5980a9d471f35f6`) it is pinned
//! and enforced. Meta does not publish digests of the DINOv2 checkpoints:
//! their entries pin `None`, the digest of the first file downloaded or
//! brought is recorded in the checkpoint's sidecar (`<file>.json`), printed,
//! and every later use is checked against that record.
//!
//! The download runs `curl` (`--fail --location`; `GEN_METRICS_CURL` names
//! another binary); no TLS stack is linked into gen-metrics.
//! `GEN_METRICS_CHECKPOINT_MIRROR=URL` fetches `URL/<file name>` instead of
//! the official address (a local mirror; the digests are checked the same).
//! Where no address can be reached the error names the address and the
//! alternative: download the file elsewhere and bring it,
//! `gen-metrics models fetch <id> --checkpoint FILE`
//! ([`Provisioner::install_checkpoint`]).
//!
//! **Layout** under the home folder: `checkpoints/<file name>` (+ `.json`
//! sidecar: its SHA-256 and where it came from) and `models/<id>.onnx` (+
//! `.json` sidecar: the model's SHA-256, the checkpoint's SHA-256 and the
//! converter version, as for the Inception). A model made by another
//! converter version, or from a checkpoint other than the pinned one, is
//! converted again from the cached checkpoint, never used.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::{
    ArtifactError, ModelRecord, Provisioner, Result, TempDir, create_parent, hex, sha256_file,
    sidecar, write_file,
};

/// How a checkpoint is stored and which converter reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointKind {
    /// `torch.save(model.state_dict())` of a facebookresearch/dinov2
    /// `DinoVisionTransformer` (converted by `gen_metrics_convert::vit`).
    Dinov2StateDict,
    /// A TorchScript archive of a whole OpenAI CLIP model (`torch.jit.save`,
    /// float16 weights); only the image encoder is converted
    /// (`gen_metrics_convert::clip`).
    ClipTorchScript,
}

/// One official checkpoint: where it is published, its digest when the
/// publisher gives one, and the architecture the conversion must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    /// Identifier given to `gen-metrics models fetch` (`dinov2-vitl14`).
    pub id: &'static str,
    /// The encoder preset that uses the converted model (`dinov2-vit-l14`).
    pub preset: &'static str,
    /// The official address.
    pub url: &'static str,
    /// Lower-case hex SHA-256 of the file, where the publisher gives one;
    /// `None`: recorded on first download (see the module documentation).
    pub sha256: Option<&'static str>,
    /// Format and converter.
    pub kind: CheckpointKind,
    /// Attention heads (not stored in a state dict): width / 64 for every model here.
    pub num_heads: usize,
    /// Width of the converted model's output (the feature dimension).
    pub output_dim: usize,
    /// Input side the model is converted for.
    pub image_size: usize,
    /// One line saying what it is.
    pub description: &'static str,
}

impl Checkpoint {
    /// The file name: the last segment of the address.
    pub fn file_name(&self) -> &'static str {
        self.url.rsplit('/').next().unwrap_or(self.url)
    }
}

const fn dinov2(
    id: &'static str,
    preset: &'static str,
    url: &'static str,
    dim: usize,
    description: &'static str,
) -> Checkpoint {
    Checkpoint {
        id,
        preset,
        url,
        sha256: None,
        kind: CheckpointKind::Dinov2StateDict,
        num_heads: dim / 64,
        output_dim: dim,
        image_size: 224,
        description,
    }
}

const fn clip(
    id: &'static str,
    preset: &'static str,
    url: &'static str,
    sha256: &'static str,
    (width, output_dim, image_size): (usize, usize, usize),
    description: &'static str,
) -> Checkpoint {
    Checkpoint {
        id,
        preset,
        url,
        sha256: Some(sha256),
        kind: CheckpointKind::ClipTorchScript,
        num_heads: width / 64,
        output_dim,
        image_size,
        description,
    }
}

/// The official checkpoints: DINOv2 ViT-S/B/L/14 (Oquab et al. 2023; the
/// addresses of `dinov2/hub/backbones.py`) and OpenAI CLIP ViT-B/32, B/16,
/// L/14, L/14@336 (Radford et al. 2021; `clip/clip.py` `_MODELS`, whose
/// paths carry each file's SHA-256).
pub const CHECKPOINTS: &[Checkpoint] = &[
    dinov2(
        "dinov2-vits14",
        "dinov2-vit-s14",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vits14/dinov2_vits14_pretrain.pth",
        384,
        "DINOv2 ViT-S/14 (state dict, 88 MB), CLS token 384",
    ),
    dinov2(
        "dinov2-vitb14",
        "dinov2-vit-b14",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitb14/dinov2_vitb14_pretrain.pth",
        768,
        "DINOv2 ViT-B/14 (state dict, 346 MB), CLS token 768",
    ),
    dinov2(
        "dinov2-vitl14",
        "dinov2-vit-l14",
        "https://dl.fbaipublicfiles.com/dinov2/dinov2_vitl14/dinov2_vitl14_pretrain.pth",
        1024,
        "DINOv2 ViT-L/14 (state dict, 1.2 GB), CLS token 1024: the FD-DINOv2 encoder",
    ),
    clip(
        "clip-vit-b-32",
        "clip-vit-b-32",
        "https://openaipublic.azureedge.net/clip/models/40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af/ViT-B-32.pt",
        "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af",
        (768, 512, 224),
        "OpenAI CLIP ViT-B/32 (TorchScript, 338 MB), image embedding 512",
    ),
    clip(
        "clip-vit-b-16",
        "clip-vit-b-16",
        "https://openaipublic.azureedge.net/clip/models/5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f/ViT-B-16.pt",
        "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f",
        (768, 512, 224),
        "OpenAI CLIP ViT-B/16 (TorchScript, 335 MB), image embedding 512",
    ),
    clip(
        "clip-vit-l-14",
        "clip-vit-l-14",
        "https://openaipublic.azureedge.net/clip/models/b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836/ViT-L-14.pt",
        "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836",
        (1024, 768, 224),
        "OpenAI CLIP ViT-L/14 (TorchScript, 890 MB), image embedding 768",
    ),
    clip(
        "clip-vit-l-14-336",
        "clip-vit-l-14-336",
        "https://openaipublic.azureedge.net/clip/models/3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02/ViT-L-14-336px.pt",
        "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02",
        (1024, 768, 336),
        "OpenAI CLIP ViT-L/14@336px (TorchScript, 891 MB), image embedding 768: the CMMD encoder",
    ),
];

/// Looks a checkpoint up by its id (`dinov2-vitl14`) or by the id of the
/// encoder preset that uses it (`dinov2-vit-l14`).
pub fn checkpoint(name: &str) -> Option<&'static Checkpoint> {
    CHECKPOINTS
        .iter()
        .find(|c| c.id == name || c.preset == name)
}

/// True when this version of gen-metrics converts the checkpoint's format
/// (both kinds: DINOv2 state dicts, CLIP archives' image encoders).
pub fn is_convertible(c: &Checkpoint) -> bool {
    matches!(
        c.kind,
        CheckpointKind::Dinov2StateDict | CheckpointKind::ClipTorchScript
    )
}

/// What the sidecar of a cached checkpoint records.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct CheckpointRecord {
    sha256: String,
    /// The address it was downloaded from, or the file it was copied from.
    source: String,
}

fn bring_help(c: &Checkpoint) -> String {
    format!(
        "download {} on a machine that can reach it and bring the file: `gen-metrics models fetch {} --checkpoint FILE`",
        c.url, c.id
    )
}

impl Provisioner {
    /// Where a checkpoint is cached: `<home>/checkpoints/<file name>`.
    pub fn checkpoint_path(&self, c: &Checkpoint) -> PathBuf {
        self.home.join("checkpoints").join(c.file_name())
    }

    /// Where a checkpoint's conversion is cached: `<home>/models/<id>.onnx`.
    pub fn checkpoint_onnx_path(&self, c: &Checkpoint) -> PathBuf {
        self.home.join("models").join(format!("{}.onnx", c.id))
    }

    /// The address a checkpoint is downloaded from: the official one, or
    /// `<mirror>/<file name>` with a mirror set.
    pub fn checkpoint_address(&self, c: &Checkpoint) -> String {
        match &self.checkpoint_mirror {
            Some(m) => format!("{}/{}", m.trim_end_matches('/'), c.file_name()),
            None => c.url.to_owned(),
        }
    }

    /// The cached checkpoint and its SHA-256 when it matches the pin (or,
    /// unpinned, the digest recorded when it was stored); `None` otherwise. A
    /// file that does not match is removed (it is never used).
    ///
    /// # Errors
    /// [`ArtifactError::Io`] when the file cannot be read or removed.
    pub fn cached_checkpoint(&self, c: &Checkpoint) -> Result<Option<(PathBuf, String)>> {
        let path = self.checkpoint_path(c);
        if !path.is_file() {
            return Ok(None);
        }
        let recorded = fs::read(sidecar(&path))
            .ok()
            .and_then(|t| serde_json::from_slice::<CheckpointRecord>(&t).ok())
            .map(|r| r.sha256);
        let Some(expected) = c.sha256.map(str::to_owned).or(recorded) else {
            self.note(&format!(
                "{} has no record of its sha256; ignoring it",
                path.display()
            ));
            return Ok(None);
        };
        let actual = sha256_file(&path)?;
        if actual != expected {
            self.note(&format!(
                "cached {} does not match its sha256 {expected}; removing it",
                path.display()
            ));
            fs::remove_file(&path).map_err(|e| ArtifactError::io(&path, e))?;
            return Ok(None);
        }
        Ok(Some((path, actual)))
    }

    /// Stores a checkpoint file the user brings (`--checkpoint FILE`): it is
    /// hashed while copied into the cache and refused (nothing written) when
    /// a digest is pinned and differs; an unpinned digest is recorded and
    /// printed. Returns the cached path and the SHA-256.
    ///
    /// # Errors
    /// [`ArtifactError::ChecksumMismatch`], [`ArtifactError::Io`], [`ArtifactError::File`].
    pub fn install_checkpoint(&self, c: &Checkpoint, file: &Path) -> Result<(PathBuf, String)> {
        let mut src = fs::File::open(file).map_err(|e| ArtifactError::io(file, e))?;
        let dest = self.checkpoint_path(c);
        create_parent(&dest)?;
        let mut refused: Option<ArtifactError> = None;
        let mut digest = String::new();
        let written = gen_metrics_io::write_atomic(&dest, true, |out| {
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match src.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) => {
                        refused = Some(ArtifactError::io(file, e));
                        return Err(std::io::Error::other("reading the checkpoint failed"));
                    }
                };
                if n == 0 {
                    break;
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])?;
            }
            digest = hex(&hasher.finalize());
            if let Some(pin) = c.sha256
                && pin != digest
            {
                refused = Some(ArtifactError::ChecksumMismatch {
                    what: format!("checkpoint {}", c.id),
                    path: file.to_owned(),
                    expected: pin.into(),
                    actual: digest.clone(),
                });
                return Err(std::io::Error::other("checksum mismatch"));
            }
            Ok(())
        });
        match (refused, written) {
            (Some(e), _) => return Err(e),
            (None, r) => r?,
        }
        self.record_checkpoint(c, &dest, &digest, &file.display().to_string())?;
        Ok((dest, digest))
    }

    fn record_checkpoint(
        &self,
        c: &Checkpoint,
        path: &Path,
        sha: &str,
        source: &str,
    ) -> Result<()> {
        let record = CheckpointRecord {
            sha256: sha.to_owned(),
            source: source.to_owned(),
        };
        let side = sidecar(path);
        let json = serde_json::to_vec_pretty(&record).map_err(|e| ArtifactError::Json {
            path: side.clone(),
            error: e,
        })?;
        write_file(&side, &json)?;
        if c.sha256.is_none() {
            // Printed whatever `quiet` says: the first digest seen is the
            // one every later use is checked against.
            eprintln!(
                "gen-metrics: {} sha256 {sha} (no digest is published for it; recorded in {})",
                c.id,
                side.display()
            );
        }
        Ok(())
    }

    /// The checkpoint file, from the cache or downloaded from its address
    /// ([`checkpoint_address`](Self::checkpoint_address)) with `curl`, then
    /// checked: a pinned digest must match; an unpinned one is recorded.
    ///
    /// # Errors
    /// [`ArtifactError::ArtifactUnavailable`] offline, without `curl`, or
    /// when the address cannot be reached (the message names the address and
    /// `--checkpoint FILE`); [`ArtifactError::ChecksumMismatch`];
    /// [`ArtifactError::Io`].
    pub fn fetch_checkpoint(&self, c: &Checkpoint) -> Result<(PathBuf, String)> {
        if let Some(found) = self.cached_checkpoint(c)? {
            return Ok(found);
        }
        let address = self.checkpoint_address(c);
        if self.offline {
            return Err(ArtifactError::ArtifactUnavailable {
                artifact: c.id.into(),
                help: format!(
                    "offline and not cached in {}; run `gen-metrics models fetch {}` with network access (it downloads {address}), or {}",
                    self.home.display(),
                    c.id,
                    bring_help(c)
                ),
            });
        }
        let downloads = self.home.join("downloads");
        fs::create_dir_all(&downloads).map_err(|e| ArtifactError::io(&downloads, e))?;
        let tmp = TempDir::new(&downloads)?;
        let part = tmp.path.join(c.file_name());
        self.note(&format!("downloading {address}"));
        let output = Command::new(&self.curl)
            .args([
                "--fail",
                "--location",
                "--silent",
                "--show-error",
                "--connect-timeout",
                "30",
                "--retry",
                "2",
                "--output",
            ])
            .arg(&part)
            .arg(&address)
            .output();
        let output = match output {
            Ok(o) => o,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ArtifactError::ArtifactUnavailable {
                    artifact: c.id.into(),
                    help: format!(
                        "`{}` was not found: it downloads {address} (install curl or set GEN_METRICS_CURL), or {}",
                        self.curl.to_string_lossy(),
                        bring_help(c)
                    ),
                });
            }
            Err(e) => return Err(ArtifactError::io(PathBuf::from(&self.curl), e)),
        };
        if !output.status.success() || !part.is_file() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let detail = stderr.trim();
            let detail: String = detail.chars().take(500).collect();
            return Err(ArtifactError::ArtifactUnavailable {
                artifact: c.id.into(),
                help: format!(
                    "could not download {address} ({}{}{detail}); if this machine cannot reach that address, {}",
                    output.status,
                    if detail.is_empty() { "" } else { ": " },
                    bring_help(c)
                ),
            });
        }
        let actual = sha256_file(&part)?;
        if let Some(pin) = c.sha256
            && pin != actual
        {
            return Err(ArtifactError::ChecksumMismatch {
                what: format!("checkpoint {} downloaded from {address}", c.id),
                path: part,
                expected: pin.into(),
                actual,
            });
        }
        let dest = self.checkpoint_path(c);
        create_parent(&dest)?;
        fs::rename(&part, &dest).map_err(|e| ArtifactError::io(&dest, e))?;
        self.record_checkpoint(c, &dest, &actual, &address)?;
        Ok((dest, actual))
    }

    /// The checkpoint's ONNX conversion and its SHA-256: from the cache when
    /// it matches its sidecar, the converter version and the checkpoint;
    /// else converted from the checkpoint ([`fetch_checkpoint`](Self::fetch_checkpoint):
    /// cached, or downloaded unless offline) and cached.
    ///
    /// # Errors
    /// As [`fetch_checkpoint`](Self::fetch_checkpoint), plus
    /// [`ArtifactError::WrongCheckpoint`] and conversion errors.
    pub fn checkpoint_onnx(&self, c: &Checkpoint) -> Result<(PathBuf, String)> {
        self.checkpoint_onnx_inner(c, true)
    }

    /// As [`checkpoint_onnx`](Self::checkpoint_onnx), but never downloads:
    /// a model is converted only from a checkpoint already in the cache.
    ///
    /// # Errors
    /// [`ArtifactError::ArtifactUnavailable`] when neither the model nor the
    /// checkpoint is cached (the message says how to fetch or bring it); as
    /// [`checkpoint_onnx`](Self::checkpoint_onnx).
    pub fn cached_checkpoint_onnx(&self, c: &Checkpoint) -> Result<(PathBuf, String)> {
        self.checkpoint_onnx_inner(c, false)
    }

    /// The checkpoint's model when it is cached and valid (nothing converted).
    ///
    /// # Errors
    /// [`ArtifactError::Io`] when a cached file cannot be read.
    pub fn checkpoint_onnx_cached(&self, c: &Checkpoint) -> Result<Option<(PathBuf, String)>> {
        let path = self.checkpoint_onnx_path(c);
        Ok(self.cached_model(&path, c.sha256)?.map(|sha| (path, sha)))
    }

    fn checkpoint_onnx_inner(&self, c: &Checkpoint, download: bool) -> Result<(PathBuf, String)> {
        if let Some(found) = self.checkpoint_onnx_cached(c)? {
            return Ok(found);
        }
        if !is_convertible(c) {
            return Err(ArtifactError::ArtifactUnavailable {
                artifact: c.id.into(),
                help: format!(
                    "this version of gen-metrics does not convert {:?} checkpoints yet; export the encoder with `python3 tools/export_encoders.py {} -o {}.onnx` and pass it (--model FILE.onnx)",
                    c.kind, c.preset, c.preset
                ),
            });
        }
        let (ckpt, sha) = match self.cached_checkpoint(c)? {
            Some(found) => found,
            None if download => self.fetch_checkpoint(c)?,
            None => {
                return Err(ArtifactError::ArtifactUnavailable {
                    artifact: c.id.into(),
                    help: format!(
                        "no converted model in {}; fetch it once with `gen-metrics models fetch {}` (downloads {} and converts it to ONNX), or {}",
                        self.home.display(),
                        c.id,
                        self.checkpoint_address(c),
                        bring_help(c)
                    ),
                });
            }
        };
        self.note(&format!("converting {} to ONNX (once)", ckpt.display()));
        let bytes = match convert_checkpoint(c, &ckpt, &sha) {
            Ok(b) => b,
            Err(e) => {
                if c.sha256.is_none() {
                    // Unpinned: the digest recorded for this file must not
                    // become the one later files are checked against.
                    self.note(&format!("removing {}", ckpt.display()));
                    for f in [sidecar(&ckpt), ckpt] {
                        fs::remove_file(&f).map_err(|e| ArtifactError::io(&f, e))?;
                    }
                }
                return Err(e);
            }
        };
        let path = self.checkpoint_onnx_path(c);
        let record = ModelRecord {
            sha256: crate::sha256_bytes(&bytes),
            source_sha256: sha,
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
}

/// Converts a checkpoint to ONNX bytes, refusing one whose architecture is
/// not the entry's (width, heads implied by the width).
fn convert_checkpoint(c: &Checkpoint, path: &Path, sha: &str) -> Result<Vec<u8>> {
    use gen_metrics_convert::vit::{VitConfig, convert_dinov2};
    let wrong = |detail: String| ArtifactError::WrongCheckpoint {
        id: c.id.into(),
        path: path.to_owned(),
        detail,
    };
    match c.kind {
        CheckpointKind::Dinov2StateDict => {
            let sd = gen_metrics_convert::StateDict::from_file(path)?;
            // The width first (heads are not stored: they follow from it).
            let found = VitConfig::from_state_dict(&sd, None, c.image_size)
                .map_err(|e| wrong(e.to_string()))?;
            if found.embed_dim != c.output_dim {
                return Err(wrong(format!(
                    "a ViT of width {} (depth {}), {} has width {}",
                    found.embed_dim, found.depth, c.id, c.output_dim
                )));
            }
            let cfg = VitConfig::from_state_dict(&sd, Some(c.num_heads), c.image_size)
                .map_err(|e| wrong(e.to_string()))?;
            let meta = [
                ("source".to_string(), c.id.to_string()),
                ("source_sha256".to_string(), sha.to_string()),
                (
                    "converter".to_string(),
                    gen_metrics_convert::converter_version(),
                ),
            ];
            Ok(convert_dinov2(&sd, &cfg, &meta)?)
        }
        CheckpointKind::ClipTorchScript => {
            use gen_metrics_convert::clip::{ClipVisionConfig, convert_clip_visual};
            let sd = gen_metrics_convert::StateDict::from_torchscript_file(path)?;
            let cfg = ClipVisionConfig::from_state_dict(&sd, Some(c.num_heads))
                .map_err(|e| wrong(e.to_string()))?;
            if (cfg.output_dim, cfg.image_size) != (c.output_dim, c.image_size) {
                return Err(wrong(format!(
                    "a CLIP image encoder of embedding {} for {}x{} inputs, {} has embedding {} for {}x{}",
                    cfg.output_dim,
                    cfg.image_size,
                    cfg.image_size,
                    c.id,
                    c.output_dim,
                    c.image_size,
                    c.image_size
                )));
            }
            let meta = [
                ("source".to_string(), c.id.to_string()),
                ("source_sha256".to_string(), sha.to_string()),
                (
                    "converter".to_string(),
                    gen_metrics_convert::converter_version(),
                ),
            ];
            Ok(convert_clip_visual(&sd, &cfg, &meta)?)
        }
    }
}
