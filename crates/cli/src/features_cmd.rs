//! `gen-metrics features`: images (folder, zip, `.npy`/`.npz` arrays) to a
//! feature matrix `.npy` `[N, D]`, rows in sorted file order, cached; and
//! the encoder options shared by every command that reads images.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use gen_metrics::eval::{CacheChoice, ExtractOptions, Extraction};
use gen_metrics::features::extractor::{Device, RuntimeOptions};
use gen_metrics::features::resize::ResizeMode;

use crate::Usage;

/// Encoder and runtime options shared by `features` and `fid`.
#[derive(Debug, Clone, Args)]
pub struct EncoderArgs {
    /// Encoder: a preset (inception-v3-fid, clip-vit-b-32, clip-vit-l-14,
    /// dinov2-vit-s14/b14/l14/g14, vgg16-fc2) or a JSON specification file.
    #[arg(
        long,
        default_value = "inception-v3-fid",
        value_name = "NAME|SPEC.json"
    )]
    pub encoder: String,
    /// Resize mode: clean (clean-fid), legacy-pytorch (pytorch-fid),
    /// legacy-tensorflow (TTUR). Default: the encoder's own.
    #[arg(long, value_parser = parse_resize, value_name = "MODE")]
    pub resize: Option<ResizeMode>,
    /// ONNX model file of the encoder (wins over provisioning; required for
    /// presets other than inception-v3-fid: see tools/export_encoders.py).
    #[arg(long, value_name = "MODEL.onnx")]
    pub model: Option<PathBuf>,
    /// Model output to use as features instead of the encoder's own:
    /// `spatial` on inception-v3-fid gives the sFID features (mixed_6/conv,
    /// 7 channels x 17 x 17 = 2023 per image; FID on them is sFID).
    #[arg(long, value_name = "OUTPUT")]
    pub layer: Option<String>,
    /// Device: cpu, cuda or cuda:N (CUDA needs a build with the `cuda` feature).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: Device,
    /// Fail instead of falling back to the CPU when the device cannot be used.
    #[arg(long)]
    pub require_device: bool,
    /// ONNX Runtime intra-op threads (0: one per core).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub threads: usize,
    /// Images per inference run.
    #[arg(long, default_value_t = 32, value_name = "N")]
    pub batch_size: usize,
    /// ONNX Runtime library (wins over ORT_DYLIB_PATH and provisioning).
    #[arg(long, value_name = "libonnxruntime.so")]
    pub ort_lib: Option<PathBuf>,
    /// Never run the package client; use cached artifacts only.
    #[arg(long)]
    pub offline: bool,
    /// Leave out images that cannot be decoded (listed on stderr) instead of failing.
    #[arg(long)]
    pub skip_bad: bool,
    /// Do not read or write the feature cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Feature cache folder (default: $GEN_METRICS_HOME/features).
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

fn parse_resize(s: &str) -> Result<ResizeMode, String> {
    ResizeMode::from_name(s).ok_or_else(|| {
        format!("unknown resize mode `{s}` (clean, legacy-pytorch, legacy-tensorflow)")
    })
}

fn parse_device(s: &str) -> Result<Device, String> {
    s.parse::<Device>().map_err(|e| e.to_string())
}

impl EncoderArgs {
    /// The pipeline's extraction options from these arguments.
    pub fn extract_options(&self) -> ExtractOptions {
        let mut runtime = RuntimeOptions::new()
            .device(self.device)
            .intra_threads(self.threads)
            .require_device(self.require_device);
        runtime.library = self.ort_lib.clone();
        ExtractOptions {
            encoder: self.encoder.clone(),
            model: self.model.clone(),
            layer: self.layer.clone(),
            resize: self.resize,
            runtime,
            batch_size: self.batch_size,
            offline: self.offline,
            skip_bad: self.skip_bad,
            cache: if self.no_cache {
                CacheChoice::Off
            } else if let Some(d) = &self.cache_dir {
                CacheChoice::Dir(d.clone())
            } else {
                CacheChoice::Default
            },
            progress: !self.quiet,
        }
    }
}

/// Arguments of `gen-metrics features`.
#[derive(Debug, Args)]
pub struct FeaturesArgs {
    /// Images: a folder (searched recursively), a .zip, or a .npy/.npz uint8 array [N, H, W, C].
    #[arg(value_name = "SOURCE")]
    pub source: PathBuf,
    /// Output feature matrix (.npy float32 [N, D], rows in sorted file order).
    #[arg(short, long, value_name = "OUT.npy")]
    pub output: PathBuf,
    /// Also write the name of each row, one per line.
    #[arg(long, value_name = "NAMES.txt")]
    pub names: Option<PathBuf>,
    /// Encoder and runtime options.
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// Runs `gen-metrics features`.
///
/// # Errors
/// Any failure, with the file or artifact it concerns.
pub fn run(args: &FeaturesArgs) -> Result<()> {
    if let Some(names) = &args.names
        && same_file(names, &args.output)
    {
        return Err(Usage(format!(
            "--names and -o name the same file ({}): the names would replace the features",
            names.display()
        ))
        .into());
    }
    refuse_replacing_input(&args.output, &args.source, "-o")?;
    if let Some(names) = &args.names {
        refuse_replacing_input(names, &args.source, "--names")?;
    }
    let mut extraction = Extraction::new(args.encoder.extract_options());
    let out = extraction.extract(&args.source)?;
    gen_metrics::io::write_features(&args.output, out.features.view(), true)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(names) = &args.names {
        let mut text = out.names.join("\n");
        text.push('\n');
        gen_metrics::io::write_atomic(names, true, |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
        .with_context(|| format!("writing {}", names.display()))?;
    }
    if !args.encoder.quiet {
        eprintln!(
            "gen-metrics: wrote {} [{} x {}]",
            args.output.display(),
            out.features.nrows(),
            out.features.ncols()
        );
    }
    Ok(())
}

/// An output never replaces an input: refuses `output` when it is the source
/// itself (an image array, a `.zip`) or a file inside a source folder with
/// the extension of the images it reads (`-o imgs/a.png` replaced that image
/// with the features, and the next run read it as a damaged image).
fn refuse_replacing_input(
    output: &std::path::Path,
    source: &std::path::Path,
    flag: &str,
) -> Result<()> {
    let inside_folder = || {
        let is_image = output
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .is_some_and(|e| gen_metrics::features::source::IMAGE_EXTENSIONS.contains(&e.as_str()));
        let (Ok(dir), Some(parent)) = (source.canonicalize(), output.parent()) else {
            return false;
        };
        let parent = if parent.as_os_str().is_empty() {
            std::path::Path::new(".")
        } else {
            parent
        };
        is_image && source.is_dir() && parent.canonicalize().is_ok_and(|p| p.starts_with(&dir))
    };
    if source.exists() && (same_file(output, source) || inside_folder()) {
        return Err(Usage(format!(
            "{flag} {} is the input {} or one of its images: write it elsewhere (an output never replaces an input)",
            output.display(),
            source.display()
        ))
        .into());
    }
    Ok(())
}

/// Whether two paths name the same file (also through links or `..`).
fn same_file(a: &std::path::Path, b: &std::path::Path) -> bool {
    if a == b {
        return true;
    }
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => {
            let norm = |p: &std::path::Path| {
                p.parent()
                    .and_then(|d| d.canonicalize().ok())
                    .map(|d| d.join(p.file_name().unwrap_or_default()))
            };
            norm(a).is_some() && norm(a) == norm(b)
        }
    }
}
