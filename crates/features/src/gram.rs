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
use std::sync::{Mutex, PoisonError};

use gen_metrics_convert::gram::{GRAM_A, GRAM_B, GRAM_G, GramPrecision, gram_block_model};
use ndarray::{Array2, ArrayView2};
use ort::session::Session;
use ort::value::{PrimitiveTensorElementType, TensorRef};

use crate::error::{FeatureError, Result};
use crate::extractor::{Device, ModelSource, RuntimeOptions, open_session};

/// `G = A Bᵀ` for float32 row blocks on ONNX Runtime, in float32 or float64
/// (module documentation).
pub struct OrtGram {
    /// `Session::run` needs `&mut`; blocks from several threads take turns
    /// (one device, one stream).
    session: Mutex<Session>,
    /// The float64 model's session, on the same device; `None` when it could
    /// not be created there (then `float64_unavailable` says why).
    session64: Option<Mutex<Session>>,
    float64_unavailable: Option<String>,
    device: Device,
    fallback: Option<String>,
}

impl std::fmt::Debug for OrtGram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtGram")
            .field("device", &self.device)
            .field("fallback", &self.fallback)
            .field("float64_unavailable", &self.float64_unavailable)
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
            Ok((s, _, _)) => (Some(Mutex::new(s)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        Ok(OrtGram {
            session: Mutex::new(session),
            session64,
            float64_unavailable,
            device,
            fallback,
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

    fn float64_session(&self) -> Result<&Mutex<Session>> {
        self.session64.as_ref().ok_or_else(|| {
            FeatureError::runtime(
                "the float64 gram block",
                self.float64_unavailable.as_deref().unwrap_or("no session"),
            )
        })
    }
}

/// `session`'s Gram block of `a` and `b` as a new array.
fn gram_array<T: PrimitiveTensorElementType + Copy + Default>(
    session: &Mutex<Session>,
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

/// `session`'s Gram block written row-major into `out` (`A.nrows() ×
/// B.nrows()` values), copied once from ONNX Runtime's output.
fn gram_into<T: PrimitiveTensorElementType + Copy>(
    session: &Mutex<Session>,
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
        .run(ort::inputs![GRAM_A => ta, GRAM_B => tb])
        .map_err(|e| FeatureError::runtime("running the gram block", e))?;
    let g = outputs[GRAM_G]
        .try_extract_array::<T>()
        .map_err(|e| FeatureError::runtime("reading the gram block", e))?;
    if g.shape() != [n, m] {
        return Err(FeatureError::Model {
            model: "gram block".into(),
            detail: format!("output shape {:?}, expected [{n}, {m}]", g.shape()),
        });
    }
    // Row-major order whatever the output's strides.
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

impl gen_metrics_linalg::GramDevice for OrtGram {
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
}
