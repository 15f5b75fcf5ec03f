//! Float32 Gram blocks on ONNX Runtime: the device side of the distance
//! engine (`gen_metrics_linalg::pairwise`, "Float32 blocks on another
//! device").
//!
//! [`OrtGram`] runs the one-node model of
//! [`gen_metrics_convert::gram::gram_block_model`], `G = A Bᵀ`, in a session on
//! the CUDA execution provider (TF32 off: the products must be float32) or on
//! the CPU one; registered with `gen_metrics_linalg::set_gram_device`, the
//! k-NN passes (precision/recall, prdc, realism, …) multiply their blocks
//! there and keep the exactness rule on the host: every decision is taken on
//! the float32 products' error interval, and near-ties are recomputed in
//! float64 from the raw rows, so the answers are those of the CPU path bit for
//! bit. The float64 passes (exact KID) stay on the CPU.
//!
//! What this module does not do: choose blocks, bound errors, recheck ties
//! (the engine does), or read images (the extractor does).

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use gen_metrics_convert::gram::{GRAM_A, GRAM_B, GRAM_G, gram_block_model};
use ndarray::{Array2, ArrayView2};
use ort::session::Session;
use ort::value::TensorRef;

use crate::error::{FeatureError, Result};
use crate::extractor::{Device, ModelSource, RuntimeOptions, open_session};

/// `G = A Bᵀ` for float32 row blocks on ONNX Runtime (module documentation).
pub struct OrtGram {
    /// `Session::run` needs `&mut`; blocks from several threads take turns
    /// (one device, one stream).
    session: Mutex<Session>,
    device: Device,
    fallback: Option<String>,
}

impl std::fmt::Debug for OrtGram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtGram")
            .field("device", &self.device)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl OrtGram {
    /// A session of the Gram model on `options.device`, with the ONNX Runtime
    /// library at `library`; like the extractor, it falls back to the CPU
    /// (with a message) when CUDA cannot be used, unless
    /// `options.require_device`.
    ///
    /// # Errors
    /// [`FeatureError::Runtime`] when the library cannot be loaded or the
    /// session cannot be created.
    pub fn open(library: &Path, options: &RuntimeOptions) -> Result<Self> {
        let model = gram_block_model();
        let (session, device, fallback) =
            open_session(&ModelSource::Memory(&model), "gram block", library, options)?;
        Ok(OrtGram {
            session: Mutex::new(session),
            device,
            fallback,
        })
    }

    /// The device the session runs on (CPU after a fallback).
    pub fn device(&self) -> Device {
        self.device
    }

    /// Why the session fell back to the CPU, if it did.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback.as_deref()
    }

    /// `G = A Bᵀ`, `G[i, j] = Σ_k A[i, k] B[j, k]`, in float32.
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] when the widths differ or a block is
    /// empty; [`FeatureError::Runtime`] when ONNX Runtime fails;
    /// [`FeatureError::Model`] for an output of the wrong shape.
    pub fn gram(&self, a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Result<Array2<f32>> {
        let mut g = Array2::zeros((a.nrows(), b.nrows()));
        // A fresh standard-layout array is contiguous.
        let out = g
            .as_slice_mut()
            .ok_or_else(|| FeatureError::invalid("gram block", "output not contiguous"))?;
        self.gram_into(a, b, out)?;
        Ok(g)
    }

    /// [`OrtGram::gram`] written row-major into `out` (`A.nrows() × B.nrows()`
    /// values), copied once from ONNX Runtime's output.
    fn gram_into(
        &self,
        a: ArrayView2<'_, f32>,
        b: ArrayView2<'_, f32>,
        out: &mut [f32],
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
        let mut session = self.session.lock().unwrap_or_else(PoisonError::into_inner);
        let outputs = session
            .run(ort::inputs![GRAM_A => ta, GRAM_B => tb])
            .map_err(|e| FeatureError::runtime("running the gram block", e))?;
        let g = outputs[GRAM_G]
            .try_extract_array::<f32>()
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
        let shape = |x: &[f32]| (x.len() / d.max(1), d);
        let va = ArrayView2::from_shape(shape(a), a).map_err(|e| e.to_string())?;
        let vb = ArrayView2::from_shape(shape(b), b).map_err(|e| e.to_string())?;
        self.gram_into(va, vb, out).map_err(|e| e.to_string())
    }
}
