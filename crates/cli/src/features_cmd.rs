//! `gen-metrics features`: images (folder, zip, `.npy`/`.npz` arrays) to a
//! feature matrix `.npy` `[N, D]`, rows in sorted file order, cached.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use gen_metrics_artifacts::Provisioner;
use gen_metrics_features::cache::{CacheKey, FeatureCache};
use gen_metrics_features::encoder::{Encoder, EncoderOptions, SourceFeatures};
use gen_metrics_features::extractor::{Device, RuntimeOptions};
use gen_metrics_features::resize::ResizeMode;
use gen_metrics_features::source::{ErrorPolicy, ImageSource};

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
    /// The provisioner these options ask for.
    ///
    /// # Errors
    /// When no home folder can be determined.
    pub fn provisioner(&self) -> Result<Provisioner> {
        let p = Provisioner::from_env()?;
        Ok(if self.offline { p.offline(true) } else { p })
    }

    /// Builds the encoder (provisioning the runtime and weights as needed).
    ///
    /// # Errors
    /// Provisioning, model and runtime errors.
    pub fn encoder(&self) -> Result<Encoder> {
        let mut runtime = RuntimeOptions::new()
            .device(self.device)
            .intra_threads(self.threads)
            .require_device(self.require_device);
        runtime.library = self.ort_lib.clone();
        let options = EncoderOptions {
            runtime,
            model: self.model.clone(),
            resize: self.resize,
            batch_size: self.batch_size,
            provisioner: Some(self.provisioner()?),
        };
        let enc = Encoder::from_name(&self.encoder, &options)
            .with_context(|| format!("setting up encoder `{}`", self.encoder))?;
        if !self.quiet {
            eprintln!(
                "gen-metrics: encoder {} ({} resize, {} features, {})",
                enc.id(),
                enc.resize_mode().name(),
                enc.output_dim(),
                enc.device()
            );
        }
        Ok(enc)
    }

    fn cache(&self) -> Result<Option<FeatureCache>> {
        if self.no_cache {
            return Ok(None);
        }
        Ok(Some(match &self.cache_dir {
            Some(d) => FeatureCache::new(d),
            None => FeatureCache::default_location()?,
        }))
    }

    fn policy(&self) -> ErrorPolicy {
        if self.skip_bad {
            ErrorPolicy::Skip
        } else {
            ErrorPolicy::Fail
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

/// Features of every image of `source`, from the cache when the same images
/// were encoded with the same encoder before.
///
/// # Errors
/// Source, encoder, runtime and cache errors.
pub fn extract(source: &Path, args: &EncoderArgs, encoder: &mut Encoder) -> Result<SourceFeatures> {
    if !source.exists() {
        bail!("{}: no such file or folder", source.display());
    }
    let src = ImageSource::open(source).with_context(|| format!("opening {}", source.display()))?;
    let names = src.names();
    if names.is_empty() {
        bail!("{}: no images found", source.display());
    }
    let policy = args.policy();
    let cache = args.cache()?;
    let key = match &cache {
        Some(_) => Some(
            CacheKey::for_source(source, &names, &encoder.identity())?
                .with("error_policy", format!("{policy:?}")),
        ),
        None => None,
    };
    if let (Some(c), Some(k)) = (&cache, &key)
        && let Some(hit) = c.load(k)?
    {
        if !args.quiet {
            eprintln!(
                "gen-metrics: {} images of {}: features from the cache",
                hit.names.len(),
                source.display()
            );
            for s in &hit.skipped {
                eprintln!("gen-metrics: skipped {}: {}", s.name, s.error);
            }
        }
        return Ok(SourceFeatures {
            features: hit.features,
            names: hit.names,
            skipped: hit.skipped,
        });
    }
    let total = names.len();
    let show = !args.quiet && std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let label = source.display().to_string();
    let out = encoder.encode_source(src, policy, |done, total| {
        if show {
            let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
            eprint!("\rgen-metrics: {label}: {done}/{total} images ({rate:.1} img/s)   ");
        }
    })?;
    if show {
        eprintln!();
    }
    if !args.quiet {
        eprintln!(
            "gen-metrics: {} of {total} images of {} encoded in {:.1} s",
            out.names.len(),
            source.display(),
            started.elapsed().as_secs_f64()
        );
        for s in &out.skipped {
            eprintln!("gen-metrics: skipped {}: {}", s.name, s.error);
        }
    }
    if let (Some(c), Some(k)) = (&cache, &key)
        && let Err(e) = c.store(k, out.features.view(), &out.names, &out.skipped)
    {
        eprintln!("gen-metrics: warning: could not write the feature cache: {e}");
    }
    Ok(out)
}

/// Runs `gen-metrics features`.
///
/// # Errors
/// Any failure, with the file or artifact it concerns.
pub fn run(args: &FeaturesArgs) -> Result<()> {
    let mut encoder = args.encoder.encoder()?;
    let out = extract(&args.source, &args.encoder, &mut encoder)?;
    gen_metrics_io::write_features(&args.output, out.features.view(), true)
        .with_context(|| format!("writing {}", args.output.display()))?;
    if let Some(names) = &args.names {
        let mut text = out.names.join("\n");
        text.push('\n');
        gen_metrics_io::write_atomic(names, true, |w| {
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
