//! Running an encoder with ONNX Runtime: batches of `f32` NCHW images in,
//! one feature row per image out.
//!
//! The runtime is loaded **dynamically** from an explicit library path
//! (`ort::init_from`), never from the library search path: the path comes from
//! [`RuntimeOptions::library`], `ORT_DYLIB_PATH`, or the provisioned library
//! (`gen-metrics-artifacts`). One library and one ONNX Runtime environment live
//! per process (ONNX Runtime allows no more); every [`Extractor`] shares them.
//!
//! **Devices.** With the `cuda` cargo feature and [`Device::Cuda`], the CUDA
//! execution provider is registered so that a failure is *reported* (not
//! silently ignored, as ONNX Runtime does by default); the session then falls
//! back to the CPU with a line on standard error saying why, unless
//! [`RuntimeOptions::require_device`] asks for an error instead. Which device
//! actually runs is [`Extractor::device`]. Each batch goes through an IO
//! binding: a batch an image source wrote into one of the extractor's own
//! buffers ([`Extractor::batch_buffers`], [`Extractor::run_batch`]) is bound
//! as it lies; any other is copied into a host buffer reused while the batch
//! shape stays. Both are page-locked with CUDA, so the copy to the GPU is one
//! DMA at the bus's rate with no staging copy inside ONNX Runtime. The
//! features come back into host memory (pinned with CUDA); if the binding
//! fails the
//! extractor says so once and passes batches as plain inputs
//! ([`Extractor::io_binding_unavailable`]). The CUDA build of the library
//! (`onnxruntime-gpu==1.31.1`, provisioned with its two provider libraries
//! beside it) needs CUDA 13 (`libcudart.so.13`, `libcublas.so.13`,
//! `libcublasLt.so.13`, `libcurand.so.10`) and cuDNN 9 where the dynamic
//! loader finds them (e.g. the CUDA lib directory on `LD_LIBRARY_PATH`).
//!
//! **Numbers.** ONNX Runtime with the same model and all graph optimisations
//! (its default, as in its Python API) reproduces the Python features; the FID
//! Inception matches TorchScript to about 1e-5.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ndarray::{Array2, ArrayView4, ArrayViewD, Axis, Ix3};
use ort::environment::Environment;
use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::session::builder::SessionBuilder;
use ort::value::{Tensor, TensorRef};

use crate::error::{FeatureError, Result};
use crate::source::{Batch, BatchBuffers, PixelBuffer};
use gen_metrics_artifacts::Provisioner;

/// Where a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Device {
    /// ONNX Runtime's CPU execution provider.
    #[default]
    Cpu,
    /// NVIDIA GPU through the CUDA execution provider (needs the `cuda` cargo
    /// feature and the `onnxruntime-gpu` library with CUDA 13 / cuDNN 9).
    Cuda {
        /// CUDA device ordinal.
        device_id: i32,
    },
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Device::Cpu => f.write_str("cpu"),
            Device::Cuda { device_id } => write!(f, "cuda:{device_id}"),
        }
    }
}

impl std::str::FromStr for Device {
    type Err = FeatureError;

    /// Parses `cpu`, `cuda` or `cuda:N`.
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda { device_id: 0 }),
            _ => s
                .strip_prefix("cuda:")
                .and_then(|n| n.parse::<i32>().ok())
                .filter(|n| *n >= 0)
                .map(|device_id| Device::Cuda { device_id })
                .ok_or_else(|| {
                    FeatureError::invalid("device", format!("`{s}`: expected cpu, cuda or cuda:N"))
                }),
        }
    }
}

/// How to load and run ONNX Runtime.
#[derive(Debug, Clone, Default)]
pub struct RuntimeOptions {
    /// Explicit path of the ONNX Runtime library; wins over `ORT_DYLIB_PATH`
    /// and provisioning.
    pub library: Option<PathBuf>,
    /// The device asked for.
    pub device: Device,
    /// Threads used inside one operator (0: ONNX Runtime's default, one per
    /// core). Capped at [`std::thread::available_parallelism`] when the
    /// session is built ([`RuntimeOptions::effective_intra_threads`]): more
    /// spinning threads than cores only compete for them (256 threads on 2
    /// cores took minutes for 8 images).
    pub intra_threads: usize,
    /// Fail instead of falling back to the CPU when the device cannot be used.
    pub require_device: bool,
}

impl RuntimeOptions {
    /// CPU, default threads, library resolved as described on [`RuntimeOptions::library`].
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the explicit library path.
    #[must_use]
    pub fn library(mut self, path: impl Into<PathBuf>) -> Self {
        self.library = Some(path.into());
        self
    }

    /// Sets the device.
    #[must_use]
    pub fn device(mut self, device: Device) -> Self {
        self.device = device;
        self
    }

    /// Sets the number of intra-operator threads (0: default; capped at the
    /// available parallelism, see [`RuntimeOptions::effective_intra_threads`]).
    #[must_use]
    pub fn intra_threads(mut self, n: usize) -> Self {
        self.intra_threads = n;
        self
    }

    /// The intra-operator thread count the session is built with:
    /// `min(intra_threads, std::thread::available_parallelism())`, or 0
    /// (ONNX Runtime's default, one per core) when `intra_threads` is 0. When
    /// the available parallelism cannot be determined the request is kept.
    pub fn effective_intra_threads(&self) -> usize {
        match std::thread::available_parallelism() {
            Ok(cores) => self.intra_threads.min(cores.get()),
            Err(_) => self.intra_threads,
        }
    }

    /// Error instead of a CPU fallback when the device cannot be used.
    #[must_use]
    pub fn require_device(mut self, yes: bool) -> Self {
        self.require_device = yes;
        self
    }

    /// The library path this configuration resolves to (provisioning it when
    /// needed): explicit, else `ORT_DYLIB_PATH`, else the provisioned CPU or
    /// GPU build according to the device.
    ///
    /// # Errors
    /// As [`resolve_onnxruntime`].
    pub fn resolve_library(&self, provisioner: &Provisioner) -> Result<PathBuf> {
        let gpu = matches!(self.device, Device::Cuda { .. }) && cfg!(feature = "cuda");
        resolve_onnxruntime(self.library.as_deref(), provisioner, gpu)
    }
}

/// The ONNX Runtime library to load: `explicit` (an API argument) first, then
/// `ORT_DYLIB_PATH`, then the provisioned library (`gpu`: the CUDA build).
///
/// # Errors
/// [`FeatureError::RuntimeLoad`] when an explicit path does not exist; as
/// [`Provisioner::ensure`] when provisioning.
pub fn resolve_onnxruntime(
    explicit: Option<&Path>,
    provisioner: &Provisioner,
    gpu: bool,
) -> Result<PathBuf> {
    let given = explicit.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("ORT_DYLIB_PATH")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    if let Some(p) = given {
        if !p.is_file() {
            return Err(FeatureError::RuntimeLoad {
                path: p,
                detail: "no such file (given explicitly or by ORT_DYLIB_PATH)".into(),
            });
        }
        return Ok(p);
    }
    Ok(provisioner.onnxruntime_library(gpu)?)
}

struct Runtime {
    library: PathBuf,
    env: Environment,
}

static RUNTIME: Mutex<Option<Runtime>> = Mutex::new(None);

/// Loads the ONNX Runtime library at `library` (once per process) and returns
/// the process-wide environment. A second call with the same file returns the
/// same environment; with another file it is an error (a process can hold only
/// one ONNX Runtime).
///
/// # Errors
/// [`FeatureError::RuntimeLoad`] when the library cannot be loaded or is
/// older than 1.31; [`FeatureError::Runtime`] when the environment cannot be made.
pub fn init_runtime(library: &Path) -> Result<Environment> {
    let mut guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(rt) = guard.as_ref() {
        if same_file(&rt.library, library) {
            return Ok(rt.env.clone());
        }
        return Err(FeatureError::RuntimeLoad {
            path: library.to_owned(),
            detail: format!(
                "this process already loaded ONNX Runtime from {}; one library per process",
                rt.library.display()
            ),
        });
    }
    if !library.is_file() {
        return Err(FeatureError::RuntimeLoad {
            path: library.to_owned(),
            detail: "no such file".into(),
        });
    }
    let builder = ort::init_from(library).map_err(|e| FeatureError::RuntimeLoad {
        path: library.to_owned(),
        detail: e.to_string(),
    })?;
    let env = builder
        .with_name("gen-metrics")
        .with_telemetry(false)
        .build()
        .map_err(|e| FeatureError::runtime("creating the environment", e))?;
    *guard = Some(Runtime {
        library: library.to_owned(),
        env: env.clone(),
    });
    Ok(env)
}

/// The library this process loaded, if any.
pub fn loaded_runtime() -> Option<PathBuf> {
    let guard = RUNTIME.lock().unwrap_or_else(|p| p.into_inner());
    guard.as_ref().map(|rt| rt.library.clone())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// How the model's output becomes one row per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputSelect {
    /// `[N, ...]` flattened to `[N, D]` (pooled features, embeddings).
    #[default]
    Flatten,
    /// Token `i` of a `[N, T, D]` output (`0`: the CLS token of a ViT).
    Token(usize),
}

/// An ONNX model in an ONNX Runtime session, ready to turn NCHW batches into features.
pub struct Extractor {
    session: Session,
    label: String,
    input_name: String,
    output_name: String,
    input_shape: Vec<i64>,
    select: OutputSelect,
    device: Device,
    fallback: Option<String>,
    /// The batch's host buffer for the IO binding, reused while the batch
    /// shape stays ([`Extractor::run`]).
    staging: Option<Staging>,
    /// Why the IO binding failed once and plain runs are used, if it did.
    unbound: Option<String>,
    /// Batches bound from this extractor's batch buffers without a copy.
    in_place: usize,
}

/// One of an [`Extractor`]'s batch buffers ([`Extractor::batch_buffers`]):
/// an ONNX Runtime host tensor `[images, C, H, W]` in the memory the
/// extractor's device reads fastest (CUDA pinned on CUDA), and the device it
/// was made for.
struct HostBatch {
    tensor: Tensor<f32>,
    device: Device,
}

impl PixelBuffer for HostBatch {
    fn as_slice(&self) -> &[f32] {
        // A host tensor of float32 always extracts; an empty slice (never
        // seen) would make the producer pass this buffer over.
        self.tensor.try_extract_tensor().map_or(&[], |(_, d)| d)
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self.tensor
            .try_extract_tensor_mut()
            .map_or(&mut [], |(_, d)| d)
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// A reusable host tensor the batch is copied into before each run: CUDA
/// pinned (page-locked) memory on CUDA, so the copy to the device is one DMA
/// at the bus's rate and ONNX Runtime stages nothing; ordinary memory on the
/// CPU.
struct Staging {
    shape: Vec<usize>,
    input: Tensor<f32>,
}

impl std::fmt::Debug for Extractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Extractor")
            .field("model", &self.label)
            .field("input", &self.input_name)
            .field("input_shape", &self.input_shape)
            .field("output", &self.output_name)
            .field("select", &self.select)
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

/// Why CUDA cannot be used by a build without the `cuda` cargo feature.
pub const NO_CUDA_SUPPORT: &str =
    "this build of gen-metrics has no CUDA support (cargo feature `cuda`)";

pub(crate) enum ModelSource<'a> {
    File(&'a Path),
    Memory(&'a [u8]),
}

/// A session for `source` on the device `options` ask for, and the device it
/// got: the CPU, with the reason, when CUDA cannot be registered or the CUDA
/// session cannot be created (missing cuDNN, out of memory: some failures
/// show only at commit time), unless `options.require_device`.
pub(crate) fn open_session(
    source: &ModelSource<'_>,
    label: &str,
    library: &Path,
    options: &RuntimeOptions,
) -> Result<(Session, Device, Option<String>)> {
    let env = init_runtime(library)?;
    let (builder, device, fallback) = configure(&env, options)?;
    match (commit(builder, source, label), device) {
        (Ok(s), d) => Ok((s, d, fallback)),
        (Err(e), Device::Cuda { .. }) if !options.require_device => {
            let reason = format!("creating the CUDA session failed: {e}");
            eprintln!("gen-metrics: {reason}; falling back to the CPU");
            let cpu = RuntimeOptions {
                device: Device::Cpu,
                ..options.clone()
            };
            let (b, _, _) = configure(&env, &cpu)?;
            Ok((commit(b, source, label)?, Device::Cpu, Some(reason)))
        }
        (Err(e), _) => Err(e),
    }
}

impl Extractor {
    /// Opens the ONNX model at `model` with an already resolved library.
    /// The first input and the first output are used (see
    /// [`with_output`](Self::with_output) to pick another output).
    ///
    /// # Errors
    /// [`FeatureError::RuntimeLoad`], [`FeatureError::Runtime`] (an unreadable
    /// or invalid model; a device that cannot be used with `require_device`),
    /// [`FeatureError::Model`] (no float input of rank 4).
    pub fn from_file(model: &Path, library: &Path, options: &RuntimeOptions) -> Result<Self> {
        if !model.is_file() {
            return Err(FeatureError::io(
                model,
                std::io::Error::new(std::io::ErrorKind::NotFound, "model file not found"),
            ));
        }
        Self::open(
            ModelSource::File(model),
            model.display().to_string(),
            library,
            options,
        )
    }

    /// Opens an ONNX model held in memory (`label` names it in errors).
    ///
    /// # Errors
    /// As [`from_file`](Self::from_file).
    pub fn from_memory(
        bytes: &[u8],
        label: &str,
        library: &Path,
        options: &RuntimeOptions,
    ) -> Result<Self> {
        Self::open(
            ModelSource::Memory(bytes),
            label.to_owned(),
            library,
            options,
        )
    }

    fn open(
        source: ModelSource<'_>,
        label: String,
        library: &Path,
        options: &RuntimeOptions,
    ) -> Result<Self> {
        let (session, device, fallback) = open_session(&source, &label, library, options)?;
        let input = session
            .inputs()
            .first()
            .ok_or_else(|| FeatureError::Model {
                model: label.clone(),
                detail: "has no inputs".into(),
            })?;
        let input_name = input.name().to_owned();
        let input_shape: Vec<i64> = match input.dtype().tensor_shape() {
            Some(s) => s.to_vec(),
            None => {
                return Err(FeatureError::Model {
                    model: label,
                    detail: format!("input `{input_name}` is not a tensor"),
                });
            }
        };
        if input.dtype().tensor_type() != Some(ort::value::TensorElementType::Float32)
            || input_shape.len() != 4
        {
            return Err(FeatureError::Model {
                model: label,
                detail: format!(
                    "input `{input_name}` must be a float32 tensor [N, C, H, W], found {:?} {:?}",
                    input.dtype().tensor_type(),
                    input_shape
                ),
            });
        }
        let output_name = session
            .outputs()
            .first()
            .map(|o| o.name().to_owned())
            .ok_or_else(|| FeatureError::Model {
                model: label.clone(),
                detail: "has no outputs".into(),
            })?;
        Ok(Extractor {
            session,
            label,
            input_name,
            output_name,
            input_shape,
            select: OutputSelect::Flatten,
            device,
            fallback,
            staging: None,
            unbound: None,
            in_place: 0,
        })
    }

    /// Uses the output named `name` instead of the first one.
    ///
    /// # Errors
    /// [`FeatureError::Model`] when the model has no such output.
    pub fn with_output(mut self, name: &str) -> Result<Self> {
        if !self.session.outputs().iter().any(|o| o.name() == name) {
            let names: Vec<&str> = self.session.outputs().iter().map(|o| o.name()).collect();
            return Err(FeatureError::Model {
                model: self.label,
                detail: format!("no output named `{name}` (outputs: {names:?})"),
            });
        }
        self.output_name = name.to_owned();
        Ok(self)
    }

    /// Sets how the output becomes one row per image.
    #[must_use]
    pub fn with_select(mut self, select: OutputSelect) -> Self {
        self.select = select;
        self
    }

    /// The name of the model input that receives the batch.
    pub fn input_name(&self) -> &str {
        &self.input_name
    }

    /// The name of the output that is read.
    pub fn output_name(&self) -> &str {
        &self.output_name
    }

    /// Names of every output of the model.
    pub fn output_names(&self) -> Vec<String> {
        self.session
            .outputs()
            .iter()
            .map(|o| o.name().to_owned())
            .collect()
    }

    /// The model's input shape `[N, C, H, W]` (`-1`: any size).
    pub fn input_shape(&self) -> &[i64] {
        &self.input_shape
    }

    /// The device the session runs on (CPU after a fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Why the session fell back to the CPU, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Why the IO binding (the batch copied into a reused host buffer,
    /// pinned on CUDA) failed and runs go without it, if it did.
    pub fn io_binding_unavailable(&self) -> Option<&str> {
        self.unbound.as_deref()
    }

    /// Runs one batch `[N, C, H, W]` and returns `[N, D]` features.
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] for an empty batch or one whose channel
    /// or spatial size differs from the model's fixed input size;
    /// [`FeatureError::Runtime`] when ONNX Runtime fails;
    /// [`FeatureError::Model`] when the output has an unexpected shape;
    /// [`FeatureError::NonFinite`] for a NaN or infinite feature.
    pub fn run(&mut self, batch: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        self.run_input(batch, None)
    }

    /// Runs one batch of an image source ([`ImageSource::into_batches_in`]):
    /// a batch that fills one of this extractor's
    /// [`batch_buffers`](Self::batch_buffers) is bound as it lies (page-locked
    /// on CUDA: one DMA, no copy on this thread); any other batch as
    /// [`run`](Self::run).
    ///
    /// [`ImageSource::into_batches_in`]: crate::ImageSource::into_batches_in
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_batch(&mut self, batch: &Batch) -> Result<Array2<f32>> {
        let own = batch
            .full_buffer()
            .and_then(|b| b.as_any().downcast_ref::<HostBatch>())
            .filter(|h| h.device == self.device)
            .map(|h| &h.tensor);
        self.run_input(batch.pixels(), own)
    }

    /// A ring of `count` host buffers of `images` images of the model's input
    /// size for [`ImageSource::into_batches_in`], allocated as this
    /// extractor's IO binding wants its input: page-locked (CUDA pinned)
    /// memory on CUDA, ordinary memory on the CPU. Batches that fill one go
    /// to [`run_batch`](Self::run_batch) without a copy. `None` when they
    /// would not be used: the model's input size is not fixed, or the IO
    /// binding failed earlier ([`io_binding_unavailable`](Self::io_binding_unavailable)).
    ///
    /// [`ImageSource::into_batches_in`]: crate::ImageSource::into_batches_in
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] for `images == 0`;
    /// [`FeatureError::Runtime`] when the memory cannot be allocated.
    pub fn batch_buffers(&self, images: usize, count: usize) -> Result<Option<BatchBuffers>> {
        if images == 0 {
            return Err(FeatureError::invalid(
                "extractor",
                "batch buffers need room for at least one image",
            ));
        }
        let chw = &self.input_shape[1..];
        if self.unbound.is_some() || chw.iter().any(|&d| d <= 0) {
            return Ok(None);
        }
        let mut shape = vec![images];
        shape.extend(chw.iter().map(|&d| d as usize));
        let buffers = (0..count)
            .map(|_| {
                let tensor = self.host_tensor(&shape)?;
                Ok(Box::new(HostBatch {
                    tensor,
                    device: self.device,
                }) as Box<dyn PixelBuffer>)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(BatchBuffers::new(buffers, images)))
    }

    /// Runs `batch`; `ready`, when given, is a host tensor already holding
    /// it, bound instead of the staging copy.
    fn run_input(
        &mut self,
        batch: ArrayView4<'_, f32>,
        ready: Option<&Tensor<f32>>,
    ) -> Result<Array2<f32>> {
        let n = batch.shape()[0];
        if n == 0 {
            return Err(FeatureError::invalid("extractor", "empty batch"));
        }
        for (axis, (&want, &got)) in self.input_shape.iter().zip(batch.shape()).enumerate() {
            if want > 0 && want as usize != got {
                return Err(FeatureError::invalid(
                    "extractor",
                    format!(
                        "batch shape {:?} does not fit the model input {:?} (axis {axis})",
                        batch.shape(),
                        self.input_shape
                    ),
                ));
            }
        }
        let rows = if self.unbound.is_none() {
            match self.run_bound(batch, ready) {
                Ok(rows) => {
                    if ready.is_some() {
                        self.in_place += 1;
                    }
                    rows
                }
                // The plain run repeats a genuine error (a bad model output);
                // when it succeeds, the binding is what failed: say so once
                // and stop using it.
                Err(bound) => {
                    let rows = self.run_plain(batch)?;
                    eprintln!(
                        "gen-metrics: {}: IO binding failed ({bound}); running without it",
                        self.label
                    );
                    self.unbound = Some(bound.to_string());
                    self.staging = None;
                    rows
                }
            }
        } else {
            self.run_plain(batch)?
        };
        if let Some(idx) = rows.iter().position(|v| !v.is_finite()) {
            let d = rows.ncols().max(1);
            return Err(FeatureError::NonFinite {
                what: self.label.clone(),
                row: idx / d,
                col: idx % d,
            });
        }
        Ok(rows)
    }

    /// Batches run from one of this extractor's
    /// [`batch_buffers`](Self::batch_buffers) without a copy (for tests and
    /// diagnostics).
    pub fn batches_bound_in_place(&self) -> usize {
        self.in_place
    }

    /// A host tensor of `shape` as the IO binding wants its input: CUDA
    /// pinned memory on CUDA, ordinary memory on the CPU.
    fn host_tensor(&self, shape: &[usize]) -> Result<Tensor<f32>> {
        let rt = |what: &str, e: ort::Error| FeatureError::runtime(what.to_owned(), e);
        match self.device {
            Device::Cuda { device_id } => {
                let info = MemoryInfo::new(
                    AllocationDevice::CUDA_PINNED,
                    device_id,
                    AllocatorType::Device,
                    MemoryType::CPUInput,
                )
                .map_err(|e| rt("pinned memory", e))?;
                let alloc =
                    Allocator::new(&self.session, info).map_err(|e| rt("a pinned allocator", e))?;
                Tensor::<f32>::new(&alloc, shape.to_vec())
            }
            Device::Cpu => Tensor::<f32>::new(&Allocator::default(), shape.to_vec()),
        }
        .map_err(|e| rt("a batch buffer", e))
    }

    /// One batch through an IO binding: `ready` when given, else the batch
    /// copied into the [`Staging`] buffer (allocated for a new batch shape);
    /// the output bound to host memory (pinned on CUDA), the selected rows
    /// read back.
    fn run_bound(
        &mut self,
        batch: ArrayView4<'_, f32>,
        ready: Option<&Tensor<f32>>,
    ) -> Result<Array2<f32>> {
        let rt = |what: &str, e: ort::Error| FeatureError::runtime(what.to_owned(), e);
        let host = match self.device {
            Device::Cpu => MemoryInfo::new(
                AllocationDevice::CPU,
                0,
                AllocatorType::Device,
                MemoryType::Default,
            ),
            Device::Cuda { device_id } => MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                device_id,
                AllocatorType::Device,
                MemoryType::CPUOutput,
            ),
        }
        .map_err(|e| rt("host memory", e))?;
        let input = match ready {
            Some(t) => t,
            None => {
                let shape = batch.shape().to_vec();
                if self.staging.as_ref().is_none_or(|st| st.shape != shape) {
                    self.staging = None;
                    let input = self.host_tensor(&shape)?;
                    self.staging = Some(Staging { shape, input });
                }
                let staging = self
                    .staging
                    .as_mut()
                    .ok_or_else(|| FeatureError::invalid("extractor", "no batch buffer"))?;
                staging
                    .input
                    .try_extract_array_mut()
                    .map_err(|e| rt("writing the batch buffer", e))?
                    .assign(&batch);
                &staging.input
            }
        };
        let mut binding = self
            .session
            .create_binding()
            .map_err(|e| rt("creating the IO binding", e))?;
        binding
            .bind_input(self.input_name.as_str(), input)
            .map_err(|e| rt("binding the batch", e))?;
        binding
            .bind_output_to_device(self.output_name.as_str(), &host)
            .map_err(|e| rt("binding the output", e))?;
        let outputs = self
            .session
            .run_binding(&binding)
            .map_err(|e| FeatureError::runtime(format!("running {}", self.label), e))?;
        rows_of(
            &outputs,
            &self.output_name,
            self.select,
            &self.label,
            batch.shape()[0],
        )
    }

    /// One batch passed as a borrowed tensor (ONNX Runtime copies it where it
    /// needs it).
    fn run_plain(&mut self, batch: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let contiguous = batch.as_standard_layout();
        let tensor = TensorRef::from_array_view(contiguous.view())
            .map_err(|e| FeatureError::runtime("wrapping the batch", e))?;
        let outputs = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| FeatureError::runtime(format!("running {}", self.label), e))?;
        rows_of(
            &outputs,
            &self.output_name,
            self.select,
            &self.label,
            batch.shape()[0],
        )
    }

    /// Runs `input` in batches of at most `batch_size` images and stacks the rows.
    ///
    /// # Errors
    /// As [`run`](Self::run); [`FeatureError::InvalidInput`] for `batch_size == 0`.
    pub fn run_batched(
        &mut self,
        input: ArrayView4<'_, f32>,
        batch_size: usize,
    ) -> Result<Array2<f32>> {
        if batch_size == 0 {
            return Err(FeatureError::invalid("extractor", "batch size must be > 0"));
        }
        let n = input.shape()[0];
        if n == 0 {
            return Err(FeatureError::invalid("extractor", "no images"));
        }
        let mut out: Option<Array2<f32>> = None;
        let mut start = 0;
        while start < n {
            let end = (start + batch_size).min(n);
            let rows = self.run(input.slice_axis(Axis(0), (start..end).into()))?;
            let all = out.get_or_insert_with(|| Array2::zeros((n, rows.ncols())));
            all.slice_axis_mut(Axis(0), (start..end).into())
                .assign(&rows);
            start = end;
        }
        // `n > 0`, so the loop ran at least once.
        out.ok_or_else(|| FeatureError::invalid("extractor", "no images"))
    }
}

/// The selected `[n, D]` rows of a run's output `output_name`.
fn rows_of(
    outputs: &ort::session::SessionOutputs<'_>,
    output_name: &str,
    select: OutputSelect,
    label: &str,
    n: usize,
) -> Result<Array2<f32>> {
    let value = outputs
        .get(output_name)
        .ok_or_else(|| FeatureError::Model {
            model: label.to_owned(),
            detail: format!("output `{output_name}` missing from the run"),
        })?;
    let array = value
        .try_extract_array::<f32>()
        .map_err(|e| FeatureError::runtime(format!("reading output `{output_name}`"), e))?;
    select_rows(array, select, n, label)
}

fn configure(
    env: &Environment,
    options: &RuntimeOptions,
) -> Result<(SessionBuilder, Device, Option<String>)> {
    let mut builder = Session::builder(env)
        .map_err(|e| FeatureError::runtime("creating a session builder", e))?;
    let threads = options.effective_intra_threads();
    if threads > 0 {
        builder = builder
            .with_intra_threads(threads)
            .map_err(|e| FeatureError::runtime("setting intra-op threads", e))?;
    }
    match options.device {
        Device::Cpu => Ok((builder, Device::Cpu, None)),
        Device::Cuda { device_id } => register_cuda(builder, device_id, options.require_device),
    }
}

#[cfg(feature = "cuda")]
fn register_cuda(
    builder: SessionBuilder,
    device_id: i32,
    require: bool,
) -> Result<(SessionBuilder, Device, Option<String>)> {
    // TF32 off (ONNX Runtime's default, stated): the float32 products must
    // be float32, for the Inception's agreement with TorchScript and for the
    // distance engine's error bound (`gram::OrtGram`).
    let cuda = ort::ep::CUDA::default()
        .with_device_id(device_id)
        .with_tf32(false)
        .build()
        .error_on_failure();
    match builder.with_execution_providers([cuda]) {
        Ok(b) => Ok((b, Device::Cuda { device_id }, None)),
        Err(e) => {
            let reason = format!("the CUDA execution provider could not be registered: {e}");
            if require {
                return Err(FeatureError::runtime("registering CUDA", reason));
            }
            eprintln!("gen-metrics: {reason}; falling back to the CPU");
            Ok((e.recover(), Device::Cpu, Some(reason)))
        }
    }
}

#[cfg(not(feature = "cuda"))]
fn register_cuda(
    builder: SessionBuilder,
    _device_id: i32,
    require: bool,
) -> Result<(SessionBuilder, Device, Option<String>)> {
    let reason = NO_CUDA_SUPPORT.to_owned();
    if require {
        return Err(FeatureError::runtime("registering CUDA", reason));
    }
    eprintln!("gen-metrics: {reason}; falling back to the CPU");
    Ok((builder, Device::Cpu, Some(reason)))
}

fn commit(mut builder: SessionBuilder, source: &ModelSource<'_>, label: &str) -> Result<Session> {
    match source {
        ModelSource::File(p) => builder.commit_from_file(p),
        ModelSource::Memory(b) => builder.commit_from_memory(b),
    }
    .map_err(|e| FeatureError::runtime(format!("loading model {label}"), e))
}

fn select_rows(
    array: ArrayViewD<'_, f32>,
    select: OutputSelect,
    n: usize,
    label: &str,
) -> Result<Array2<f32>> {
    let shape = array.shape().to_vec();
    if shape.first() != Some(&n) {
        return Err(FeatureError::Model {
            model: label.to_owned(),
            detail: format!("output shape {shape:?} does not start with the batch size {n}"),
        });
    }
    match select {
        OutputSelect::Flatten => {
            let d: usize = shape[1..].iter().product();
            let owned = array.as_standard_layout().into_owned();
            owned
                .into_shape_with_order((n, d))
                .map_err(|e| FeatureError::Model {
                    model: label.to_owned(),
                    detail: format!("cannot flatten output {shape:?}: {e}"),
                })
        }
        OutputSelect::Token(t) => {
            let a3 = array
                .into_dimensionality::<Ix3>()
                .map_err(|_| FeatureError::Model {
                    model: label.to_owned(),
                    detail: format!("token selection needs an output [N, T, D], found {shape:?}"),
                })?;
            if t >= a3.shape()[1] {
                return Err(FeatureError::Model {
                    model: label.to_owned(),
                    detail: format!("token {t} out of range for output {shape:?}"),
                });
            }
            Ok(a3.index_axis(Axis(1), t).to_owned())
        }
    }
}
