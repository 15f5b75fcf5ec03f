//! Images -> features for the pipeline: one encoder built on first use and
//! shared by every set, the feature cache (keyed by file stamps, encoder
//! weights and preprocessing; a folder whose files partly changed re-encodes
//! only the changed files), and a progress bar on standard error
//! (`indicatif`; hidden when standard error is not a terminal or when
//! asked).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gen_metrics_features::cache::{CacheKey, FeatureCache, Reusable};
use gen_metrics_features::encoder::{Encoder, EncoderOptions, SourceFeatures};
use gen_metrics_features::provision::Provisioner;
use gen_metrics_features::source::{ErrorPolicy, ImageSource, SkippedItem};
use gen_metrics_features::{Device, OrtGram, ResizeMode, RuntimeOptions};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ndarray::Array2;

use crate::EvalError;
use crate::source::{LoadedSet, SetData, SetKind};

/// Where cached features live.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum CacheChoice {
    /// `$GEN_METRICS_HOME/features`.
    #[default]
    Default,
    /// A folder of the user's.
    Dir(PathBuf),
    /// No cache.
    Off,
}

/// Keeps a GPU Gram device registered with the distance engine
/// ([`Extraction::gram_device`]); dropping it restores the one before and
/// says how many blocks the device failed (multiplied on the CPU instead;
/// the values are the same, the time is not), if any.
#[must_use = "the device is unregistered when the guard is dropped"]
pub struct GramDeviceGuard {
    previous: Option<Option<Arc<dyn gen_metrics_linalg::GramDevice>>>,
    /// `gram_device_fallbacks()` when the device was registered.
    fallbacks_before: usize,
}

impl Drop for GramDeviceGuard {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            let ours = gen_metrics_linalg::set_gram_device(previous);
            let failed = gen_metrics_linalg::pairwise::gram_device_fallbacks()
                .saturating_sub(self.fallbacks_before);
            if let (Some(dev), true) = (ours, failed > 0) {
                eprintln!(
                    "gen-metrics: {failed} distance blocks failed on {} and were multiplied on \
                     the CPU (same values)",
                    dev.label()
                );
            }
        }
    }
}

/// Set to `1`, [`Extraction::gram_device`] registers the Gram sessions on
/// ONNX Runtime's CPU execution provider too (a test hook: `tools/gpu_check.sh
/// --cpu` compares such runs with plain ones, so the GPU wiring runs in CI).
pub const GRAM_ON_CPU_ENV: &str = "GEN_METRICS_GRAM_ON_CPU";

/// Registers `gram` as the distance engine's device, saying where the blocks
/// go (with `progress`) or which stay on the CPU.
fn register(gram: OrtGram, progress: bool) -> GramDeviceGuard {
    let label = gen_metrics_linalg::GramDevice::label(&gram);
    match gram.float64_unavailable() {
        None if progress => {
            eprintln!("gen-metrics: float32 and float64 distance blocks on {label}");
        }
        None => {}
        Some(why) => eprintln!(
            "gen-metrics: float32 distance blocks on {label}; the float64 ones (KID's pass) \
             stay on the CPU: {why}"
        ),
    }
    GramDeviceGuard {
        fallbacks_before: gen_metrics_linalg::pairwise::gram_device_fallbacks(),
        previous: Some(gen_metrics_linalg::set_gram_device(Some(Arc::new(gram)))),
    }
}

/// How images become features.
#[derive(Debug, Clone)]
pub struct ExtractOptions {
    /// Encoder preset name (`inception-v3-fid`, ...) or a JSON spec file.
    pub encoder: String,
    /// An ONNX model file (wins over provisioning).
    pub model: Option<PathBuf>,
    /// The model output to read instead of the encoder's own (`spatial`:
    /// the FID Inception's sFID features; see `EncoderOptions::layer`).
    pub layer: Option<String>,
    /// Resize mode (default: the encoder's own).
    pub resize: Option<ResizeMode>,
    /// ONNX Runtime library, device and threads.
    pub runtime: RuntimeOptions,
    /// Images per inference run.
    pub batch_size: usize,
    /// Never run the package client; cached artifacts only.
    pub offline: bool,
    /// Leave out undecodable images (reported) instead of failing.
    pub skip_bad: bool,
    /// The feature cache.
    pub cache: CacheChoice,
    /// Progress and status lines on standard error.
    pub progress: bool,
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            encoder: "inception-v3-fid".into(),
            model: None,
            layer: None,
            resize: None,
            runtime: RuntimeOptions::new().device(Device::Cpu),
            batch_size: 32,
            offline: false,
            skip_bad: false,
            cache: CacheChoice::Default,
            progress: true,
        }
    }
}

/// The pipeline's extractor: builds the encoder once, on the first image set.
#[derive(Debug)]
pub struct Extraction {
    options: ExtractOptions,
    encoder: Option<Encoder>,
}

impl Extraction {
    /// An extractor with `options` (nothing is loaded yet).
    pub fn new(options: ExtractOptions) -> Self {
        Extraction {
            options,
            encoder: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &ExtractOptions {
        &self.options
    }

    /// A description of the encoder, once built (`inception-v3-fid (clean
    /// resize, 2048 features, cpu)`).
    pub fn encoder_description(&self) -> Option<String> {
        self.encoder.as_ref().map(|e| {
            format!(
                "{} ({} resize, {} features, {})",
                e.id(),
                e.resize_mode().name(),
                e.output_dim(),
                e.device()
            )
        })
    }

    /// The encoder, built on first use (provisioning runtime and weights).
    ///
    /// # Errors
    /// Provisioning, model and runtime errors.
    pub fn encoder(&mut self) -> Result<&mut Encoder, EvalError> {
        if self.encoder.is_none() {
            let o = &self.options;
            let provisioner = Provisioner::from_env()
                .map_err(gen_metrics_features::FeatureError::from)?
                .offline(o.offline);
            let options = EncoderOptions {
                runtime: o.runtime.clone(),
                model: o.model.clone(),
                resize: o.resize,
                batch_size: o.batch_size,
                provisioner: Some(provisioner),
                layer: o.layer.clone(),
            };
            let enc = Encoder::from_name(&o.encoder, &options)?;
            if o.progress {
                eprintln!(
                    "gen-metrics: encoder {} ({} resize, {} features, {})",
                    enc.id(),
                    enc.resize_mode().name(),
                    enc.output_dim(),
                    enc.device()
                );
            }
            self.encoder = Some(enc);
        }
        self.encoder
            .as_mut()
            .ok_or_else(|| EvalError::Usage("no encoder".into()))
    }

    /// Puts the distance engine's blocks on the GPU for as long as the
    /// returned guard lives, when the runtime asks for CUDA: [`OrtGram`]
    /// sessions on the same device, registered with
    /// `gen_metrics_linalg::set_gram_device`: the float32 blocks of the k-NN
    /// metrics and the float64 blocks of the passes with KID's kernel sums
    /// (distance answers unchanged: the engine rechecks near-ties in float64
    /// on the host; KID's sums agree with the CPU's to float64 rounding, in
    /// the device's summation order). Nothing is registered for
    /// the CPU, or when the session fell back to it (`faer` multiplies
    /// faster there), unless the environment sets [`GRAM_ON_CPU_ENV`] (a
    /// test hook: the same wiring on ONNX Runtime's CPU execution provider);
    /// a CUDA failure is an error only with `require_device`.
    ///
    /// # Errors
    /// Provisioning and runtime errors with `require_device` (or with the
    /// test hook).
    pub fn gram_device(&self) -> Result<GramDeviceGuard, EvalError> {
        let none = GramDeviceGuard {
            previous: None,
            fallbacks_before: 0,
        };
        let o = &self.options;
        if std::env::var_os(GRAM_ON_CPU_ENV).is_some_and(|v| v == "1")
            && o.runtime.device == Device::Cpu
        {
            let gram = Provisioner::from_env()
                .map_err(gen_metrics_features::FeatureError::from)
                .and_then(|p| o.runtime.resolve_library(&p.offline(o.offline)))
                .and_then(|lib| OrtGram::open(&lib, &o.runtime))?;
            return Ok(register(gram, o.progress));
        }
        if !matches!(o.runtime.device, Device::Cuda { .. }) {
            return Ok(none);
        }
        // Without CUDA support compiled in, say so (an error only when the
        // device is required) without provisioning a runtime for nothing.
        if !cfg!(feature = "cuda") {
            let reason = gen_metrics_features::extractor::NO_CUDA_SUPPORT;
            if o.runtime.require_device {
                return Err(gen_metrics_features::FeatureError::runtime(
                    "registering CUDA",
                    reason,
                )
                .into());
            }
            eprintln!("gen-metrics: distance blocks stay on the CPU: {reason}");
            return Ok(none);
        }
        let opened = Provisioner::from_env()
            .map_err(gen_metrics_features::FeatureError::from)
            .and_then(|p| o.runtime.resolve_library(&p.offline(o.offline)))
            .and_then(|lib| OrtGram::open(&lib, &o.runtime));
        let gram = match opened {
            Ok(g) if g.device() != Device::Cpu => g,
            Ok(_) => return Ok(none),
            Err(e) if o.runtime.require_device => return Err(e.into()),
            Err(e) => {
                eprintln!("gen-metrics: distance blocks stay on the CPU: {e}");
                return Ok(none);
            }
        };
        Ok(register(gram, o.progress))
    }

    fn cache(&self) -> Result<Option<FeatureCache>, EvalError> {
        Ok(match &self.options.cache {
            CacheChoice::Off => None,
            CacheChoice::Dir(d) => Some(FeatureCache::new(d)),
            CacheChoice::Default => Some(FeatureCache::default_location()?),
        })
    }

    fn policy(&self) -> ErrorPolicy {
        if self.options.skip_bad {
            ErrorPolicy::Skip
        } else {
            ErrorPolicy::Fail
        }
    }

    /// Features of every image of `source` (folder, `.zip`, uint8 `.npy` /
    /// `.npz` array), from the cache when the same images were encoded with
    /// the same encoder before.
    ///
    /// # Errors
    /// Source, encoder, runtime and cache errors.
    pub fn extract(&mut self, source: &Path) -> Result<SourceFeatures, EvalError> {
        self.extract_subset(source, None)
    }

    /// Number of images of `source` (folder, `.zip`, uint8 array), without
    /// decoding any.
    ///
    /// # Errors
    /// [`EvalError::Source`] when it cannot be opened.
    pub fn image_count(source: &Path) -> Result<usize, EvalError> {
        let src = ImageSource::open(source).map_err(|e| EvalError::Source {
            path: source.to_path_buf(),
            detail: e.to_string(),
        })?;
        Ok(src.len())
    }

    /// Features of the images in `rows` (a contiguous range of the source's
    /// row order: sorted relative paths of a folder, sorted entry names of a
    /// `.zip`), with the cache (keyed by those files and the range). This is
    /// one rank's shard of a distributed evaluation; the skipped items carry
    /// their index in the whole source. An empty range gives zero rows.
    ///
    /// # Errors
    /// As [`Extraction::extract`]; [`EvalError::Source`] for a range past
    /// the end or an image array source (its rows cannot be subset).
    pub fn extract_rows(
        &mut self,
        source: &Path,
        rows: std::ops::Range<usize>,
    ) -> Result<SourceFeatures, EvalError> {
        if rows.is_empty() {
            let dim = self.encoder()?.output_dim();
            return Ok(SourceFeatures {
                features: Array2::zeros((0, dim)),
                names: Vec::new(),
                skipped: Vec::new(),
            });
        }
        let start = rows.start;
        let mut out = self.extract_subset(source, Some(rows))?;
        for s in &mut out.skipped {
            s.index += start;
        }
        Ok(out)
    }

    fn extract_subset(
        &mut self,
        source: &Path,
        rows: Option<std::ops::Range<usize>>,
    ) -> Result<SourceFeatures, EvalError> {
        if !source.exists() {
            return Err(EvalError::Source {
                path: source.to_path_buf(),
                detail: "no such file or folder".into(),
            });
        }
        let src = ImageSource::open(source).map_err(|e| EvalError::Source {
            path: source.to_path_buf(),
            detail: e.to_string(),
        })?;
        let total = src.len();
        let src = match &rows {
            None => src,
            Some(r) if r.end <= total => {
                src.only(&r.clone().collect::<Vec<_>>())
                    .map_err(|e| EvalError::Source {
                        path: source.to_path_buf(),
                        detail: e.to_string(),
                    })?
            }
            Some(r) => {
                return Err(EvalError::Source {
                    path: source.to_path_buf(),
                    detail: format!("rows {}..{} of {total} images", r.start, r.end),
                });
            }
        };
        let names = src.names();
        if names.is_empty() {
            return Err(EvalError::Source {
                path: source.to_path_buf(),
                detail: "no images found".into(),
            });
        }
        let policy = self.policy();
        let cache = self.cache()?;
        let quiet = !self.options.progress;
        let identity = self.encoder()?.identity();
        let key = match &cache {
            Some(_) => Some(
                CacheKey::for_source_paths(source, &names, &src.relative_paths(), &identity)?
                    .with("error_policy", format!("{policy:?}")),
            )
            // A shard's entry is its own (the whole set's key is unchanged).
            .map(|k| match &rows {
                Some(r) => k.with("rows", format!("{}..{} of {total}", r.start, r.end)),
                None => k,
            }),
            None => None,
        };
        if let (Some(c), Some(k)) = (&cache, &key)
            && let Some(hit) = c.load(k)?
        {
            if !quiet {
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
        // A folder whose files partly changed: encode only the changed ones.
        let reuse = match (&cache, &key) {
            (Some(c), Some(k)) => c.reusable(k)?.filter(|r| !r.is_empty()),
            _ => None,
        };
        let out = match reuse {
            Some(reuse) => {
                match self.extract_changed(source, src, &names, reuse, policy, quiet) {
                    Ok(out) => out,
                    // Under `--skip-bad` every changed image may fail alone
                    // ("all N images were skipped"): encode the whole set.
                    Err(_) if policy == ErrorPolicy::Skip => {
                        let src = ImageSource::open(source)
                            .and_then(|s| match &rows {
                                Some(r) => s.only(&r.clone().collect::<Vec<_>>()),
                                None => Ok(s),
                            })
                            .map_err(|e| EvalError::Source {
                                path: source.to_path_buf(),
                                detail: e.to_string(),
                            })?;
                        self.encode_all(source, src, names.len(), policy, quiet)?
                    }
                    Err(e) => return Err(e),
                }
            }
            None => self.encode_all(source, src, names.len(), policy, quiet)?,
        };
        if let (Some(c), Some(k)) = (&cache, &key)
            && let Err(e) = c.store(k, out.features.view(), &out.names, &out.skipped)
        {
            eprintln!("gen-metrics: warning: could not write the feature cache: {e}");
        }
        Ok(out)
    }

    /// Encodes every image of `src`, with a progress bar.
    fn encode_all(
        &mut self,
        source: &Path,
        src: ImageSource,
        total: usize,
        policy: ErrorPolicy,
        quiet: bool,
    ) -> Result<SourceFeatures, EvalError> {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let b = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "gen-metrics: {prefix} {bar:30} {pos}/{len} images ({per_sec}, eta {eta})",
            ) {
                b.set_style(style);
            }
            b.set_prefix(source.display().to_string());
            b
        };
        let started = std::time::Instant::now();
        let out = self
            .encoder()?
            .encode_source(src, policy, |done, _| bar.set_position(done as u64))?;
        bar.finish_and_clear();
        if !quiet {
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
        Ok(out)
    }

    /// The rows of `names` (the source's rows, in order): unchanged files'
    /// rows from `reuse`, the others encoded now.
    fn extract_changed(
        &mut self,
        source: &Path,
        src: ImageSource,
        names: &[String],
        reuse: Reusable,
        policy: ErrorPolicy,
        quiet: bool,
    ) -> Result<SourceFeatures, EvalError> {
        let todo: Vec<usize> = (0..names.len())
            .filter(|&i| {
                !reuse.rows.contains_key(&names[i]) && !reuse.skipped.contains_key(&names[i])
            })
            .collect();
        let fresh = if todo.is_empty() {
            None
        } else {
            let subset = src.only(&todo).map_err(|e| EvalError::Source {
                path: source.to_path_buf(),
                detail: e.to_string(),
            })?;
            Some(self.encode_all(source, subset, todo.len(), policy, true)?)
        };
        let mut new_rows: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        let mut new_skips: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        if let Some(f) = &fresh {
            for (r, n) in f.names.iter().enumerate() {
                new_rows.insert(n.as_str(), r);
            }
            for s in &f.skipped {
                new_skips.insert(s.name.as_str(), s.error.as_str());
            }
        }
        let dim = match (&fresh, reuse.rows.values().next()) {
            (Some(f), _) => f.features.ncols(),
            (None, Some(row)) => row.len(),
            (None, None) => 0,
        };
        let mut data: Vec<f32> = Vec::with_capacity(names.len() * dim);
        let mut kept = Vec::with_capacity(names.len());
        let mut skipped = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let row: Option<Vec<f32>> = match (new_rows.get(name.as_str()), &fresh) {
                (Some(&r), Some(f)) => Some(f.features.row(r).to_vec()),
                _ => reuse.rows.get(name).cloned(),
            };
            match row {
                Some(row) if row.len() == dim => {
                    data.extend_from_slice(&row);
                    kept.push(name.clone());
                }
                Some(row) => {
                    return Err(EvalError::Source {
                        path: source.to_path_buf(),
                        detail: format!(
                            "cached features have {} columns, new ones {dim}: clear the cache",
                            row.len()
                        ),
                    });
                }
                None => {
                    let error = new_skips
                        .get(name.as_str())
                        .map(|e| (*e).to_owned())
                        .or_else(|| reuse.skipped.get(name).cloned())
                        .unwrap_or_else(|| "not encoded".to_owned());
                    skipped.push(SkippedItem {
                        index: i,
                        name: name.clone(),
                        error,
                    });
                }
            }
        }
        if kept.is_empty() {
            return Err(EvalError::Source {
                path: source.to_path_buf(),
                detail: "no image could be decoded".into(),
            });
        }
        let features =
            Array2::from_shape_vec((kept.len(), dim), data).map_err(|e| EvalError::Source {
                path: source.to_path_buf(),
                detail: e.to_string(),
            })?;
        if !quiet {
            eprintln!(
                "gen-metrics: {} images of {}: {} from the cache, {} encoded",
                names.len(),
                source.display(),
                names.len() - todo.len(),
                todo.len()
            );
            for s in &skipped {
                eprintln!("gen-metrics: skipped {}: {}", s.name, s.error);
            }
        }
        Ok(SourceFeatures {
            features,
            names: kept,
            skipped,
        })
    }

    /// [`Extraction::extract`] as a loaded set.
    ///
    /// # Errors
    /// As [`Extraction::extract`].
    pub fn load(&mut self, source: &Path) -> Result<LoadedSet, EvalError> {
        let out = self.extract(source)?;
        Ok(LoadedSet {
            label: source.display().to_string(),
            kind: SetKind::Images,
            data: SetData::Rows(out.features),
            skipped: out.skipped.into_iter().map(|s| (s.name, s.error)).collect(),
        })
    }
}
