//! Gram blocks on ONNX Runtime: the device side of the distance engine
//! (`gen_metrics_linalg::pairwise`, "Float32 blocks on another device").
//!
//! [`OrtGram`] runs the models of
//! [`gen_metrics_convert::gram::gram_block_model`], `G = A Bᵀ`, in sessions
//! on the CUDA execution provider (TF32 off: the products must be float32)
//! or on the CPU one. Registered with `gen_metrics_linalg::set_gram_device`,
//! the k-NN passes (precision/recall, prdc, realism, …) multiply their
//! float32 blocks there, and the passes with a kernel tap (exact KID, and
//! the k-NN metrics that share its pass) their float64 blocks (the float32
//! rows cast to float64 on the device). The exactness rule stays on the
//! host: every decision is taken on the products' error interval, and
//! near-ties are recomputed in float64 from the raw rows, so the distance
//! answers are those of the CPU path bit for bit; KID's sums agree with the
//! CPU's to the float64 rounding of the products (the device's summation
//! order).
//!
//! What this module does not do: choose blocks, bound errors, recheck ties
//! (the engine does), or read images (the extractor does).

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use gen_metrics_convert::gram::{
    GRAM_A, GRAM_A_END, GRAM_A_START, GRAM_B, GRAM_B_END, GRAM_B_START, GRAM_G, GramPrecision,
    gram_block_model,
};
use gen_metrics_linalg::{GramDevice, ResidentGram};
use ndarray::{Array2, ArrayView2};
use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::Session;
use ort::value::{PrimitiveTensorElementType, Tensor, TensorRef};

use crate::error::{FeatureError, Result};
use crate::extractor::{Device, ModelSource, RuntimeOptions, open_session};

/// A session shared by [`OrtGram`] and the resident sets it hands out;
/// `Session::run` needs `&mut`, so blocks from several threads take turns
/// (one device, one stream).
type Shared = Arc<Mutex<Session>>;

/// `G = A Bᵀ` for float32 row blocks on ONNX Runtime, in float32 or float64
/// (module documentation).
pub struct OrtGram {
    session: Shared,
    /// The float64 model's session, on the same device; `None` when it could
    /// not be created there (then `float64_unavailable` says why).
    session64: Option<Shared>,
    float64_unavailable: Option<String>,
    device: Device,
    fallback: Option<String>,
    /// Why the device could not keep a pass's sets, once it could not.
    not_resident: OnceLock<String>,
}

impl std::fmt::Debug for OrtGram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtGram")
            .field("device", &self.device)
            .field("fallback", &self.fallback)
            .field("float64_unavailable", &self.float64_unavailable)
            .field("not_resident", &self.not_resident.get())
            .finish_non_exhaustive()
    }
}

impl OrtGram {
    /// Sessions of the two Gram models on `options.device`, with the ONNX
    /// Runtime library at `library`; like the extractor, the float32 one falls
    /// back to the CPU (with a message) when CUDA cannot be used, unless
    /// `options.require_device`. The float64 session is opened on the device
    /// the float32 one got; if that fails, the float64 blocks stay on the CPU
    /// ([`OrtGram::float64_unavailable`] says why).
    ///
    /// # Errors
    /// [`FeatureError::Runtime`] when the library cannot be loaded or the
    /// float32 session cannot be created.
    pub fn open(library: &Path, options: &RuntimeOptions) -> Result<Self> {
        let model = gram_block_model(GramPrecision::Float32);
        let (session, device, fallback) =
            open_session(&ModelSource::Memory(&model), "gram block", library, options)?;
        let same_device = RuntimeOptions {
            device,
            require_device: true,
            ..options.clone()
        };
        let model64 = gram_block_model(GramPrecision::Float64);
        let (session64, float64_unavailable) = match open_session(
            &ModelSource::Memory(&model64),
            "float64 gram block",
            library,
            &same_device,
        ) {
            Ok((s, _, _)) => (Some(Arc::new(Mutex::new(s))), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(OrtGram {
            session: Arc::new(Mutex::new(session)),
            session64,
            float64_unavailable,
            device,
            fallback,
            not_resident: OnceLock::new(),
        })
    }

    /// The device the sessions run on (CPU after a fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Why the sessions fell back to the CPU, if they did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// Why the float64 session could not be created on [`OrtGram::device`],
    /// if it could not (the float64 blocks then stay on the CPU).
    pub fn float64_unavailable(&self) -> Option<&str> {
        self.float64_unavailable.as_deref()
    }

    /// Why the device could not keep a pass's sets, if it could not (each
    /// block's rows are then sent).
    pub fn not_resident(&self) -> Option<&str> {
        self.not_resident.get().map(String::as_str)
    }

    /// `G = A Bᵀ`, `G[i, j] = Σ_k A[i, k] B[j, k]`, in float32.
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] when the widths differ or a block is
    /// empty; [`FeatureError::Runtime`] when ONNX Runtime fails;
    /// [`FeatureError::Model`] for an output of the wrong shape.
    pub fn gram(&self, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        gram_array(&self.session, a, b)
    }

    /// `G = A Bᵀ` with the float32 rows widened to float64 and the products
    /// and sums in float64 (every product is within `γ_D Σ_k |a_k b_k|` of the
    /// exact value, `γ_D = D·2⁻⁵³ / (1 − D·2⁻⁵³)`).
    ///
    /// # Errors
    /// As [`OrtGram::gram`]; [`FeatureError::Runtime`] when the float64
    /// session is unavailable ([`OrtGram::float64_unavailable`]).
    pub fn gram64(&self, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<Array2<f64>> {
        gram_array(self.float64_session()?, a, b)
    }

    /// Sets `a` (and `b`, else `a` with itself) kept on the device, for
    /// blocks by row range ([`ResidentGram`]).
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] for rows of different widths or an
    /// empty set; [`FeatureError::Runtime`] when ONNX Runtime cannot copy the
    /// sets to the device or run a first block there.
    pub fn keep(
        &self,
        a: ArrayView2<'_, f32>,
        b: Option<ArrayView2<'_, f32>>,
    ) -> Result<OrtResident> {
        let d = a.ncols();
        if a.nrows() == 0 || d == 0 || b.is_some_and(|b| b.ncols() != d || b.nrows() == 0) {
            return Err(FeatureError::invalid(
                "gram sets",
                format!("{:?} and {:?}", a.shape(), b.map(|b| b.shape().to_vec())),
            ));
        }
        let (target, id) = match self.device {
            Device::Cpu => (AllocationDevice::CPU, 0),
            Device::Cuda { device_id } => (AllocationDevice::CUDA, device_id),
        };
        // From an owned host tensor: `Tensor::to` on a borrowed one binds a
        // clone made by `to` itself, inside the lock `to` holds (ort
        // 2.0.0-rc.15 then waits on itself).
        let upload = |x: ArrayView2<'_, f32>| -> Result<Tensor<f32>> {
            Tensor::from_array(x.to_owned())
                .and_then(|t| t.to(target.clone(), id))
                .map_err(|e| FeatureError::runtime("copying a set to the device", e))
        };
        let mut sets = Sets {
            rows_a: a.nrows(),
            rows_b: b.map_or(a.nrows(), |b| b.nrows()),
            a: upload(a)?,
            b: b.map(upload).transpose()?,
        };
        // Products into pinned host memory on CUDA (the copy back runs at
        // the bus's rate), else into ordinary host memory.
        let mut outputs = Vec::new();
        if let Device::Cuda { device_id } = self.device {
            outputs.push(MemoryInfo::new(
                AllocationDevice::CUDA_PINNED,
                device_id,
                AllocatorType::Device,
                MemoryType::CPUOutput,
            ));
        }
        outputs.push(MemoryInfo::new(
            AllocationDevice::CPU,
            0,
            AllocatorType::Device,
            MemoryType::Default,
        ));
        let mut last = String::from("no output memory");
        for output in outputs {
            let output = output.map_err(|e| FeatureError::runtime("output memory", e))?;
            let kept = OrtResident {
                session: Arc::clone(&self.session),
                session64: self.session64.clone(),
                sets,
                output,
            };
            // One product proves the binding before the pass relies on it.
            let mut probe = [0.0f32];
            match kept.run(&kept.session, (0, 1), (0, 1), &mut probe) {
                Ok(()) => return Ok(kept),
                Err(e) => {
                    last = e.to_string();
                    sets = kept.sets;
                }
            }
        }
        Err(FeatureError::runtime(
            "keeping the sets on the device",
            last,
        ))
    }

    fn float64_session(&self) -> Result<&Shared> {
        self.session64.as_ref().ok_or_else(|| {
            FeatureError::runtime(
                "the float64 gram block",
                self.float64_unavailable.as_deref().unwrap_or("no session"),
            )
        })
    }
}

/// The two sets of a pass on the device.
struct Sets {
    a: Tensor<f32>,
    /// `None`: `a` with itself.
    b: Option<Tensor<f32>>,
    rows_a: usize,
    rows_b: usize,
}

/// A pass's sets kept on [`OrtGram`]'s device ([`OrtGram::keep`]): each
/// block binds them with its row ranges and reads the products back.
pub struct OrtResident {
    session: Shared,
    session64: Option<Shared>,
    sets: Sets,
    /// Where the products land on the host.
    output: MemoryInfo<'static>,
}

impl std::fmt::Debug for OrtResident {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtResident")
            .field("rows_a", &self.sets.rows_a)
            .field("rows_b", &self.sets.rows_b)
            .finish_non_exhaustive()
    }
}

impl OrtResident {
    /// The block of rows `i0..i0 + ni` and `j0..j0 + nj` from `session`,
    /// row-major into `out`.
    fn run<T: PrimitiveTensorElementType + Copy>(
        &self,
        session: &Shared,
        (i0, ni): (usize, usize),
        (j0, nj): (usize, usize),
        out: &mut [T],
    ) -> Result<()> {
        let s = &self.sets;
        if ni == 0 || nj == 0 || i0 + ni > s.rows_a || j0 + nj > s.rows_b || out.len() != ni * nj {
            return Err(FeatureError::invalid(
                "gram block",
                format!(
                    "rows {i0}+{ni} of {}, columns {j0}+{nj} of {}, into {} values",
                    s.rows_a,
                    s.rows_b,
                    out.len()
                ),
            ));
        }
        let rt = |e: ort::Error| FeatureError::runtime("running the gram block", e);
        let mut session = session.lock().unwrap_or_else(PoisonError::into_inner);
        let mut binding = session.create_binding().map_err(rt)?;
        binding.bind_input(GRAM_A, &s.a).map_err(rt)?;
        binding
            .bind_input(GRAM_B, s.b.as_ref().unwrap_or(&s.a))
            .map_err(rt)?;
        for (name, v) in [
            (GRAM_A_START, i0),
            (GRAM_A_END, i0 + ni),
            (GRAM_B_START, j0),
            (GRAM_B_END, j0 + nj),
        ] {
            binding.bind_input(name, &row_index(v)?).map_err(rt)?;
        }
        binding
            .bind_output_to_device(GRAM_G, &self.output)
            .map_err(rt)?;
        let outputs = session.run_binding(&binding).map_err(rt)?;
        copy_block(&outputs[GRAM_G], (ni, nj), out)
    }
}

impl ResidentGram for OrtResident {
    fn gram(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        self.run(&self.session, rows, cols, out)
            .map_err(|e| e.to_string())
    }

    fn gram64(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f64],
    ) -> std::result::Result<(), String> {
        let session = self
            .session64
            .as_ref()
            .ok_or("no float64 session on this device")?;
        self.run(session, rows, cols, out)
            .map_err(|e| e.to_string())
    }
}

/// `session`'s Gram block of `a` and `b` as a new array.
fn gram_array<T: PrimitiveTensorElementType + Copy + Default>(
    session: &Shared,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
) -> Result<Array2<T>> {
    let mut g = Array2::from_elem((a.nrows(), b.nrows()), T::default());
    // A fresh standard-layout array is contiguous.
    let out = g
        .as_slice_mut()
        .ok_or_else(|| FeatureError::invalid("gram block", "output not contiguous"))?;
    gram_into(session, a, b, out)?;
    Ok(g)
}

/// `session`'s Gram block of all of `a` and `b` (sent with the call) written
/// row-major into `out` (`A.nrows() × B.nrows()` values).
fn gram_into<T: PrimitiveTensorElementType + Copy>(
    session: &Shared,
    a: ArrayView2<'_, f32>,
    b: ArrayView2<'_, f32>,
    out: &mut [T],
) -> Result<()> {
    let (n, m) = (a.nrows(), b.nrows());
    if a.ncols() != b.ncols() || n == 0 || m == 0 || a.ncols() == 0 || out.len() != n * m {
        return Err(FeatureError::invalid(
            "gram block",
            format!(
                "blocks {:?} and {:?} into {} values",
                a.shape(),
                b.shape(),
                out.len()
            ),
        ));
    }
    let (a, b) = (a.as_standard_layout(), b.as_standard_layout());
    let ta = TensorRef::from_array_view(a.view())
        .map_err(|e| FeatureError::runtime("wrapping block A", e))?;
    let tb = TensorRef::from_array_view(b.view())
        .map_err(|e| FeatureError::runtime("wrapping block B", e))?;
    let mut session = session.lock().unwrap_or_else(PoisonError::into_inner);
    let outputs = session
        .run(ort::inputs![
            GRAM_A => ta,
            GRAM_B => tb,
            GRAM_A_START => row_index(0)?,
            GRAM_A_END => row_index(n)?,
            GRAM_B_START => row_index(0)?,
            GRAM_B_END => row_index(m)?,
        ])
        .map_err(|e| FeatureError::runtime("running the gram block", e))?;
    copy_block(&outputs[GRAM_G], (n, m), out)
}

/// A row index as the models' int64 `[1]` range inputs take it.
fn row_index(v: usize) -> Result<Tensor<i64>> {
    Tensor::from_array(([1usize], vec![v as i64]))
        .map_err(|e| FeatureError::runtime("a block's row range", e))
}

/// Copies a `[n, m]` output row-major into `out` (one copy, whatever the
/// output's strides), checking its shape.
fn copy_block<T: PrimitiveTensorElementType + Copy>(
    value: &ort::value::DynValue,
    (n, m): (usize, usize),
    out: &mut [T],
) -> Result<()> {
    let g = value
        .try_extract_array::<T>()
        .map_err(|e| FeatureError::runtime("reading the gram block", e))?;
    if g.shape() != [n, m] {
        return Err(FeatureError::Model {
            model: "gram block".into(),
            detail: format!("output shape {:?}, expected [{n}, {m}]", g.shape()),
        });
    }
    for (o, v) in out.iter_mut().zip(g.iter()) {
        *o = *v;
    }
    Ok(())
}

/// Row-major `(rows, d)` views of the engine's flat blocks.
fn views<'x>(
    a: &'x [f32],
    b: &'x [f32],
    d: usize,
) -> std::result::Result<(ArrayView2<'x, f32>, ArrayView2<'x, f32>), String> {
    let view = |x: &'x [f32]| {
        ArrayView2::from_shape((x.len() / d.max(1), d), x).map_err(|e| e.to_string())
    };
    Ok((view(a)?, view(b)?))
}

impl GramDevice for OrtGram {
    fn label(&self) -> String {
        format!("onnxruntime-{}", self.device)
    }

    fn gram(
        &self,
        a: &[f32],
        b: &[f32],
        d: usize,
        out: &mut [f32],
    ) -> std::result::Result<(), String> {
        let (va, vb) = views(a, b, d)?;
        gram_into(&self.session, va, vb, out).map_err(|e| e.to_string())
    }

    fn float64(&self) -> bool {
        self.session64.is_some()
    }

    fn gram64(
        &self,
        a: &[f32],
        b: &[f32],
        d: usize,
        out: &mut [f64],
    ) -> std::result::Result<(), String> {
        let (va, vb) = views(a, b, d)?;
        let session = self.float64_session().map_err(|e| e.to_string())?;
        gram_into(session, va, vb, out).map_err(|e| e.to_string())
    }

    fn resident(&self, a: &[f32], b: Option<&[f32]>, d: usize) -> Option<Box<dyn ResidentGram>> {
        if self.not_resident.get().is_some() {
            return None;
        }
        let kept = views(a, b.unwrap_or(a), d)
            .map_err(|e| FeatureError::invalid("gram sets", e))
            .and_then(|(va, vb)| self.keep(va, b.map(|_| vb)));
        match kept {
            Ok(k) => Some(Box::new(k)),
            Err(e) => {
                let why = e.to_string();
                eprintln!(
                    "gen-metrics: {} cannot keep the sets on the device ({why}); \
                     sending each block's rows instead",
                    self.label()
                );
                let _ = self.not_resident.set(why);
                None
            }
        }
    }
}
