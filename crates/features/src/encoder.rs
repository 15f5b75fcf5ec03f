//! Encoder presets with their exact preprocessing, and user ONNX encoders
//! described by a small JSON specification.
//!
//! An encoder is an ONNX network plus everything that turns an RGB image into
//! its input ([`EncoderSpec`]): input size, resize mode ([`ResizeMode`]),
//! optional resize-shorter-side + center crop ([`Crop`]), value normalisation
//! ([`NormalizationSpec`]) and which output gives the feature row
//! ([`OutputSelect`]). The presets ([`Preset`]):
//!
//! | id | input | preprocessing | output | follows |
//! |----|-------|---------------|--------|---------|
//! | `inception-v3-fid` | 299×299 | resize to 299×299; `(x−128)/128` (clean, TF) or `2x/255−1` (legacy-pytorch) | pool3, 2048 | clean-fid, pytorch-fid, TTUR |
//! | `clip-vit-b-32` | 224×224 | bicubic shorter side to 224, center crop; CLIP mean/std | image embedding, 512 | OpenAI CLIP `preprocess` |
//! | `clip-vit-b-16` | 224×224 | as above | image embedding, 512 | OpenAI CLIP `preprocess` |
//! | `clip-vit-l-14` | 224×224 | as above | image embedding, 768 | OpenAI CLIP `preprocess` |
//! | `clip-vit-l-14-336` | 336×336 | bicubic shorter side to 336, center crop; CLIP mean/std | image embedding, 768 | CMMD (Jayasumana et al. 2024) |
//! | `dinov2-vit-s14` / `-b14` / `-l14` / `-g14` | 224×224 | bicubic to 224×224; ImageNet mean/std | CLS token, 384 / 768 / 1024 / 1536 | dgm-eval (Stein et al. 2023), `clean_resize=True` |
//! | `vgg16-fc2` | 224×224 | TF1 bilinear to 224×224; ImageNet mean/std | fc2 after ReLU, 4096 | torch-fidelity `vgg16` `fc2_relu` (Kynkäänniemi et al. 2019) |
//!
//! DINOv2 ViT-L/14 is the recommended encoder for FD-DINOv2 (Stein et al.,
//! *Exposing flaws of generative model evaluation metrics*, NeurIPS 2023).
//!
//! The FID Inception weights are provisioned automatically
//! (`gen-metrics-artifacts`). The DINOv2 ViT-S/B/L and CLIP presets use the
//! model converted from the official checkpoint, which `gen-metrics models
//! fetch dinov2-vitl14` (or `clip-vit-b-32`, ...) downloads (or takes from
//! the user: `--checkpoint FILE`) and converts once; an encoder never
//! downloads it itself. The other presets (ViT-g/14, VGG-16) load an ONNX
//! file the user exports once
//! with `tools/export_encoders.py` (PyTorch on a machine that has the
//! weights) and passes as [`EncoderOptions::model`]. An explicit model file
//! always wins.
//!
//! Resizing itself is [`crate::resize`]: `clean` is Pillow's float32 bicubic
//! (exact for clean-fid and dgm-eval's `clean_resize`); CLIP's reference
//! resizes an 8-bit Pillow image, so its inputs differ from ours by the
//! rounding of that image to integers (at most 0.5/255 before normalisation).
//!
//! A user encoder is a JSON file (all fields of [`EncoderSpec`]; `model` is
//! relative to the file):
//!
//! ```json
//! { "id": "my-encoder", "model": "my-encoder.onnx", "input_size": [224, 224],
//!   "resize": "clean", "crop": {"center": {"resize_shorter": 256}},
//!   "normalization": {"mean_std": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}},
//!   "output_dim": 768, "output": {"token": 0} }
//! ```

use std::path::{Path, PathBuf};

use image::RgbImage;
use ndarray::{Array2, Array3, ArrayView3, ArrayView4, ArrayViewMut3, Axis, s};

use crate::error::{FeatureError, Result};
use crate::extractor::{Device, Extractor, OutputSelect, RuntimeOptions};
use crate::resize::{Normalization, ResizeError, ResizeMode, ResizeSpec, ValueRange};
use crate::source::{
    Batch, BatchBuffers, BatchOptions, ErrorPolicy, ImageSource, Preprocess, SkippedItem,
};
use gen_metrics_artifacts::{Provisioner, sha256_file};

/// Features of an [`ImageSource`], with the name of each row.
#[derive(Debug, Clone)]
pub struct SourceFeatures {
    /// `[N, D]`, one row per image in the source's row order (skipped items left out).
    pub features: Array2<f32>,
    /// The name of each row ([`ImageSource::name`]).
    pub names: Vec<String>,
    /// Items left out under [`ErrorPolicy::Skip`].
    pub skipped: Vec<SkippedItem>,
}

/// CLIP's image normalisation (OpenAI CLIP `_transform`).
pub const CLIP_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// CLIP's image normalisation standard deviations (0.26862954, 0.26130258,
/// 0.27577711 as published, written at f32 precision).
pub const CLIP_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];
/// torchvision's ImageNet means.
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// torchvision's ImageNet standard deviations.
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The built-in encoders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Preset {
    /// The FID Inception-V3 (pool3, 2048), weights provisioned automatically.
    InceptionV3Fid,
    /// CLIP ViT-B/32 image embedding (512).
    ClipVitB32,
    /// CLIP ViT-B/16 image embedding (512).
    ClipVitB16,
    /// CLIP ViT-L/14 image embedding (768).
    ClipVitL14,
    /// CLIP ViT-L/14@336px image embedding (768), the CMMD encoder.
    ClipVitL14At336,
    /// DINOv2 ViT-S/14 CLS token (384).
    Dinov2VitS14,
    /// DINOv2 ViT-B/14 CLS token (768).
    Dinov2VitB14,
    /// DINOv2 ViT-L/14 CLS token (1024), the recommended FD-DINOv2 encoder.
    Dinov2VitL14,
    /// DINOv2 ViT-g/14 CLS token (1536).
    Dinov2VitG14,
    /// VGG-16 fc2 after ReLU (4096), for precision / recall.
    Vgg16Fc2,
}

impl Preset {
    /// Every preset, in documentation order.
    pub const ALL: [Preset; 10] = [
        Preset::InceptionV3Fid,
        Preset::ClipVitB32,
        Preset::ClipVitB16,
        Preset::ClipVitL14,
        Preset::ClipVitL14At336,
        Preset::Dinov2VitS14,
        Preset::Dinov2VitB14,
        Preset::Dinov2VitL14,
        Preset::Dinov2VitG14,
        Preset::Vgg16Fc2,
    ];

    /// The preset's id (`inception-v3-fid`, `clip-vit-b-32`, ...).
    pub fn id(self) -> &'static str {
        match self {
            Preset::InceptionV3Fid => "inception-v3-fid",
            Preset::ClipVitB32 => "clip-vit-b-32",
            Preset::ClipVitB16 => "clip-vit-b-16",
            Preset::ClipVitL14 => "clip-vit-l-14",
            Preset::ClipVitL14At336 => "clip-vit-l-14-336",
            Preset::Dinov2VitS14 => "dinov2-vit-s14",
            Preset::Dinov2VitB14 => "dinov2-vit-b14",
            Preset::Dinov2VitL14 => "dinov2-vit-l14",
            Preset::Dinov2VitG14 => "dinov2-vit-g14",
            Preset::Vgg16Fc2 => "vgg16-fc2",
        }
    }

    /// Looks a preset up by id (also accepts `inception`, `dinov2` for ViT-L/14,
    /// `clip` for ViT-B/32, `vgg16`).
    pub fn from_id(id: &str) -> Option<Preset> {
        let id = id.to_ascii_lowercase().replace('_', "-");
        Preset::ALL
            .into_iter()
            .find(|p| p.id() == id)
            .or(match id.as_str() {
                "inception" | "inception-v3" | "fid" => Some(Preset::InceptionV3Fid),
                "clip" => Some(Preset::ClipVitB32),
                "dinov2" => Some(Preset::Dinov2VitL14),
                "vgg16" => Some(Preset::Vgg16Fc2),
                _ => None,
            })
    }

    /// The preset's specification (no model path: see [`EncoderOptions::model`]).
    pub fn spec(self) -> EncoderSpec {
        let clip = NormalizationSpec::MeanStd {
            mean: CLIP_MEAN,
            std: CLIP_STD,
        };
        let imagenet = NormalizationSpec::MeanStd {
            mean: IMAGENET_MEAN,
            std: IMAGENET_STD,
        };
        let base = |size: usize, resize: &str, crop, normalization, dim| EncoderSpec {
            id: self.id().to_owned(),
            model: None,
            input_size: [size, size],
            resize: resize.to_owned(),
            crop,
            normalization,
            input_name: None,
            output_name: None,
            output_dim: dim,
            output: OutputSelect::Flatten,
            logits_output: None,
        };
        let center = Crop::Center {
            resize_shorter: 224,
        };
        match self {
            Preset::InceptionV3Fid => base(
                299,
                "clean",
                Crop::None,
                NormalizationSpec::InceptionReference,
                2048,
            ),
            Preset::ClipVitB32 => base(224, "clean", center, clip, 512),
            Preset::ClipVitB16 => base(224, "clean", center, clip, 512),
            Preset::ClipVitL14 => base(224, "clean", center, clip, 768),
            Preset::ClipVitL14At336 => base(
                336,
                "clean",
                Crop::Center {
                    resize_shorter: 336,
                },
                clip,
                768,
            ),
            Preset::Dinov2VitS14 => base(224, "clean", Crop::None, imagenet, 384),
            Preset::Dinov2VitB14 => base(224, "clean", Crop::None, imagenet, 768),
            Preset::Dinov2VitL14 => base(224, "clean", Crop::None, imagenet, 1024),
            Preset::Dinov2VitG14 => base(224, "clean", Crop::None, imagenet, 1536),
            Preset::Vgg16Fc2 => base(224, "legacy-tensorflow", Crop::None, imagenet, 4096),
        }
    }
}

/// Optional resize-shorter-side + center crop before the network input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Crop {
    /// Resize straight to the input size (aspect ratio not kept).
    #[default]
    None,
    /// torchvision `Resize(resize_shorter)` (shorter side to `resize_shorter`,
    /// longer side `int(resize_shorter * long / short)`) then
    /// `CenterCrop(input_size)` (offset `round((in - out) / 2)`, ties to even).
    Center {
        /// Target of the shorter side before cropping (>= the input size).
        resize_shorter: usize,
    },
}

/// The value normalisation after resizing (see [`Normalization`] for formulas).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NormalizationSpec {
    /// The FID Inception convention of the chosen resize mode:
    /// `(x − 128) / 128` for `clean` and `legacy-tensorflow`, `2x/255 − 1`
    /// for `legacy-pytorch` (pytorch-fid).
    InceptionReference,
    /// `(x − 128) / 128`.
    Centered128,
    /// `2x/255 − 1`.
    SymmetricUnit,
    /// `x / 255`.
    Unit,
    /// `x` in `[0, 255]`.
    Raw255,
    /// `(x/255 − mean[c]) / std[c]`.
    MeanStd {
        /// Per-channel mean, RGB.
        mean: [f32; 3],
        /// Per-channel standard deviation, RGB.
        std: [f32; 3],
    },
}

impl NormalizationSpec {
    /// The concrete [`Normalization`] for resize mode `mode`.
    pub fn resolve(self, mode: ResizeMode) -> Normalization {
        match self {
            NormalizationSpec::InceptionReference => match mode {
                ResizeMode::LegacyPytorch => Normalization::SymmetricUnit,
                ResizeMode::Clean | ResizeMode::LegacyTensorflow => Normalization::Centered128,
            },
            NormalizationSpec::Centered128 => Normalization::Centered128,
            NormalizationSpec::SymmetricUnit => Normalization::SymmetricUnit,
            NormalizationSpec::Unit => Normalization::Unit,
            NormalizationSpec::Raw255 => Normalization::Raw255,
            NormalizationSpec::MeanStd { mean, std } => Normalization::MeanStd { mean, std },
        }
    }
}

/// Everything that defines an encoder's input and output.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderSpec {
    /// Identifier (used in cache keys and reports).
    pub id: String,
    /// The ONNX model (in a spec file: relative to the file). `None` for a
    /// preset whose model is provisioned or passed in [`EncoderOptions::model`].
    #[serde(default)]
    pub model: Option<PathBuf>,
    /// Network input `[height, width]`.
    pub input_size: [usize; 2],
    /// Default resize mode name (`clean`, `legacy-pytorch`, `legacy-tensorflow`).
    #[serde(default = "default_resize")]
    pub resize: String,
    /// Optional resize-shorter-side + center crop.
    #[serde(default)]
    pub crop: Crop,
    /// Value normalisation.
    pub normalization: NormalizationSpec,
    /// Model input name (default: the first input).
    #[serde(default)]
    pub input_name: Option<String>,
    /// Model output name (default: the first output).
    #[serde(default)]
    pub output_name: Option<String>,
    /// Feature dimension (checked on every batch; 0: not checked).
    pub output_dim: usize,
    /// How the output becomes one row per image.
    #[serde(default)]
    pub output: OutputSelect,
    /// A model output holding classifier logits (`[N, C]`), if the model has
    /// a classifier head: `eval` then computes IS / IS-inf from the images
    /// (a second pass reading that output). None of the presets has one
    /// (the FID Inception archive has no 1008-way head).
    #[serde(default)]
    pub logits_output: Option<String>,
}

fn default_resize() -> String {
    "clean".into()
}

impl EncoderSpec {
    /// The specification of a preset by id, or of a JSON file when `name`
    /// is a path to one (nothing is loaded but that file).
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`] for an unknown name; as [`EncoderSpec::from_file`].
    pub fn from_name(name: &str) -> Result<Self> {
        if let Some(p) = Preset::from_id(name) {
            return Ok(p.spec());
        }
        let path = Path::new(name);
        if path.is_file() {
            return EncoderSpec::from_file(path);
        }
        let ids: Vec<&str> = Preset::ALL.iter().map(|p| p.id()).collect();
        Err(FeatureError::EncoderSpec(format!(
            "unknown encoder `{name}`: use one of {ids:?} or the path of a JSON specification"
        )))
    }

    /// Reads a JSON specification; a relative `model` is resolved against
    /// the file's folder.
    ///
    /// # Errors
    /// [`FeatureError::Io`], [`FeatureError::Json`], [`FeatureError::EncoderSpec`].
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| FeatureError::io(path, e))?;
        let mut spec: EncoderSpec =
            serde_json::from_slice(&text).map_err(|e| FeatureError::Json {
                path: path.to_owned(),
                error: e,
            })?;
        if let Some(m) = spec.model.as_mut()
            && m.is_relative()
        {
            *m = path.parent().unwrap_or(Path::new(".")).join(&*m);
        }
        spec.validate()?;
        Ok(spec)
    }

    /// The default resize mode.
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`] for an unknown name.
    pub fn resize_mode(&self) -> Result<ResizeMode> {
        ResizeMode::from_name(&self.resize).ok_or_else(|| {
            FeatureError::EncoderSpec(format!(
                "{}: unknown resize mode `{}` (clean, legacy-pytorch, legacy-tensorflow)",
                self.id, self.resize
            ))
        })
    }

    /// Checks sizes, crop and normalisation.
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`] naming the problem.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(FeatureError::EncoderSpec(format!("{}: {m}", self.id)));
        if self.id.is_empty() {
            return Err(FeatureError::EncoderSpec("empty id".into()));
        }
        let [h, w] = self.input_size;
        if h == 0 || w == 0 {
            return bad(format!("input size {h}x{w} must be positive"));
        }
        self.resize_mode()?;
        if let Crop::Center { resize_shorter } = self.crop
            && resize_shorter < h.max(w)
        {
            return bad(format!(
                "resize_shorter {resize_shorter} is smaller than the crop {h}x{w}"
            ));
        }
        if let NormalizationSpec::MeanStd { mean, std } = self.normalization
            && (mean.iter().any(|m| !m.is_finite())
                || std.iter().any(|s| !(s.is_finite() && *s > 0.0)))
        {
            return bad(format!(
                "normalization mean {mean:?} / std {std:?} (std must be > 0)"
            ));
        }
        if self.logits_output.as_deref() == Some("") {
            return bad("logits_output is empty (name the model's logits output)".into());
        }
        Ok(())
    }
}

/// How to build an [`Encoder`].
#[derive(Debug, Clone)]
pub struct EncoderOptions {
    /// ONNX Runtime library, device and threads.
    pub runtime: RuntimeOptions,
    /// An explicit ONNX model; wins over the spec's model and provisioning.
    pub model: Option<PathBuf>,
    /// Resize mode overriding the spec's default.
    pub resize: Option<ResizeMode>,
    /// Images per ONNX Runtime run (default 32).
    pub batch_size: usize,
    /// Where artifacts are provisioned (default: [`Provisioner::from_env`]).
    pub provisioner: Option<Provisioner>,
    /// The model output to read instead of the specification's (`None`: the
    /// spec's). [`SPATIAL_LAYER`] on `inception-v3-fid` gives the sFID
    /// features (2023 per image) from the same model as the pool3 features.
    pub layer: Option<String>,
}

/// The FID Inception's second output: block `mixed_6`'s `conv` branch, first
/// 7 channels, 17 x 17 positions in TensorFlow's NHWC order (2023 values per
/// image), the features of sFID (Nash et al. 2021) as ADM's evaluator takes
/// them (`gen_metrics_convert::add_fid_spatial_output` builds it).
pub const SPATIAL_LAYER: &str = "spatial";

impl Default for EncoderOptions {
    fn default() -> Self {
        EncoderOptions {
            runtime: RuntimeOptions::default(),
            model: None,
            resize: None,
            batch_size: 32,
            provisioner: None,
            layer: None,
        }
    }
}

/// What identifies an encoder's numbers: everything that changes a feature
/// (the feature cache keys on it).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncoderIdentity {
    /// Encoder id.
    pub encoder: String,
    /// SHA-256 of the ONNX model.
    pub weights_sha256: String,
    /// Network input `[height, width]`.
    pub input_size: [usize; 2],
    /// Resize mode name.
    pub resize: String,
    /// Crop.
    pub crop: Crop,
    /// Normalisation, resolved for the resize mode.
    pub normalization: String,
    /// Output selection.
    pub output: OutputSelect,
    /// Output name used.
    pub output_name: String,
    /// Feature element type.
    pub dtype: String,
}

/// An encoder ready to run: specification, resize mode and ONNX Runtime session.
#[derive(Debug)]
pub struct Encoder {
    spec: EncoderSpec,
    mode: ResizeMode,
    normalization: Normalization,
    extractor: Extractor,
    model_path: PathBuf,
    weights_sha256: String,
    batch_size: usize,
    /// Host buffers batches are written into for the extractor
    /// ([`Extractor::batch_buffers`]), made on first use and kept: `None`
    /// before, `Some(None)` where the extractor has none to give.
    ring: Option<Option<BatchBuffers>>,
}

/// Buffers in an encoder's ring: the batches queued (the sources' default
/// prefetch of 2), the one being filled and the one being run.
const RING_BUFFERS: usize = 4;

/// An encoder's preprocessing ([`Encoder::preprocessing`]): resize with the
/// encoder's [`ResizeMode`] either straight to the input size or, with
/// [`Crop::Center`], the shorter side to `resize_shorter` (torchvision
/// `Resize(int)`), then `CenterCrop(input_size)`; then the normalisation.
/// The same arithmetic as [`Encoder::preprocess`], which calls it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderPreprocess {
    mode: ResizeMode,
    normalization: Normalization,
    input_size: [usize; 2],
    crop: Crop,
}

impl EncoderPreprocess {
    /// The size an `(h, w)` image is resized to before cropping.
    fn resize_spec(&self, h: usize, w: usize) -> ResizeSpec {
        let size = match self.crop {
            Crop::None => (self.input_size[0], self.input_size[1]),
            Crop::Center { resize_shorter } => shorter_side_size(h, w, resize_shorter),
        };
        ResizeSpec::new(self.mode, size, self.normalization)
    }

    /// The centre `input_size` window of a resized image (the whole image
    /// without a crop). [`EncoderSpec`] validation keeps `resize_shorter` at
    /// least the input size, so the window fits; were it not, the window is
    /// cut short and the size check where it goes reports it.
    fn window<'a>(&self, resized: &'a Array3<f32>) -> ArrayView3<'a, f32> {
        match self.crop {
            Crop::None => resized.view(),
            Crop::Center { .. } => {
                let [th, tw] = self.input_size;
                let (_, h, w) = resized.dim();
                let top = center_offset(h, th);
                let left = center_offset(w, tw);
                resized.slice(s![.., top..(top + th).min(h), left..(left + tw).min(w)])
            }
        }
    }

    fn crop(&self, resized: Array3<f32>) -> Array3<f32> {
        match self.crop {
            Crop::None => resized,
            Crop::Center { .. } => self.window(&resized).to_owned(),
        }
    }
}

impl Preprocess for EncoderPreprocess {
    fn output_size(&self) -> (usize, usize) {
        (self.input_size[0], self.input_size[1])
    }
    fn u8_image(&self, image: ArrayView3<'_, u8>) -> std::result::Result<Array3<f32>, ResizeError> {
        let (h, w, _) = image.dim();
        Ok(self.crop(crate::resize::preprocess(image, &self.resize_spec(h, w))?))
    }
    fn f32_image(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
    ) -> std::result::Result<Array3<f32>, ResizeError> {
        let (_, h, w) = image.dim();
        Ok(self.crop(crate::resize::preprocess_f32(
            image,
            range,
            &self.resize_spec(h, w),
        )?))
    }
    fn u8_image_into(
        &self,
        image: ArrayView3<'_, u8>,
        out: ArrayViewMut3<'_, f32>,
    ) -> std::result::Result<(), ResizeError> {
        let (h, w, _) = image.dim();
        match self.crop {
            Crop::None => crate::resize::preprocess_into(image, &self.resize_spec(h, w), out),
            Crop::Center { .. } => {
                let resized = crate::resize::preprocess(image, &self.resize_spec(h, w))?;
                crate::source::place(self.window(&resized), out)
            }
        }
    }
    fn f32_image_into(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
        out: ArrayViewMut3<'_, f32>,
    ) -> std::result::Result<(), ResizeError> {
        let (_, h, w) = image.dim();
        match self.crop {
            Crop::None => {
                crate::resize::preprocess_f32_into(image, range, &self.resize_spec(h, w), out)
            }
            Crop::Center { .. } => {
                let resized = crate::resize::preprocess_f32(image, range, &self.resize_spec(h, w))?;
                crate::source::place(self.window(&resized), out)
            }
        }
    }
}

impl Encoder {
    /// A preset encoder. The Inception weights and the runtime library are
    /// provisioned as needed; other presets need [`EncoderOptions::model`].
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`] when a preset's model is not given (the
    /// message says how to export it); provisioning and runtime errors.
    pub fn preset(preset: Preset, options: &EncoderOptions) -> Result<Self> {
        Self::new(preset.spec(), options)
    }

    /// A preset by id, or a JSON specification file when `name` is a path to one.
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`] for an unknown name; as [`Encoder::new`].
    pub fn from_name(name: &str, options: &EncoderOptions) -> Result<Self> {
        Self::new(EncoderSpec::from_name(name)?, options)
    }

    /// An encoder from a specification.
    ///
    /// # Errors
    /// [`FeatureError::EncoderSpec`], provisioning errors, [`FeatureError::RuntimeLoad`],
    /// [`FeatureError::Runtime`], [`FeatureError::Model`].
    pub fn new(mut spec: EncoderSpec, options: &EncoderOptions) -> Result<Self> {
        spec.validate()?;
        if let Some(layer) = &options.layer
            && spec.output_name.as_deref() != Some(layer.as_str())
        {
            // Another output of the same model: its width is checked when it
            // is known (the Inception's spatial output), taken as it comes
            // otherwise; the cache keys on the output name.
            spec.output_dim = if spec.id == Preset::InceptionV3Fid.id() && layer == SPATIAL_LAYER {
                17 * 17 * 7
            } else {
                0
            };
            spec.output_name = Some(layer.clone());
        }
        if options.batch_size == 0 {
            return Err(FeatureError::invalid("encoder", "batch size must be > 0"));
        }
        let mode = match options.resize {
            Some(m) => m,
            None => spec.resize_mode()?,
        };
        let provisioner = match &options.provisioner {
            Some(p) => p.clone(),
            None => Provisioner::from_env()?,
        };
        let explicit = options.model.clone().or_else(|| spec.model.clone());
        let (model_path, weights_sha256) = match explicit {
            Some(p) => {
                let sha = sha256_file(&p)?;
                (p, sha)
            }
            None if spec.id == Preset::InceptionV3Fid.id() => {
                provisioner.fid_inception_onnx_verified()?
            }
            // A preset with an official checkpoint that gen-metrics converts:
            // the cached conversion (never a download here: `models fetch`
            // downloads, or takes the checkpoint the user brings).
            None if let Some(c) = gen_metrics_artifacts::checkpoint(&spec.id)
                .filter(|c| c.preset == spec.id && gen_metrics_artifacts::is_convertible(c)) =>
            {
                match provisioner.cached_checkpoint_onnx(c) {
                    Ok(found) => found,
                    Err(gen_metrics_artifacts::ArtifactError::ArtifactUnavailable { .. }) => {
                        return Err(FeatureError::EncoderSpec(format!(
                            "{id}: no converted model in {home}. Fetch it once: `gen-metrics models fetch {cid}` (downloads {url} and converts it to ONNX), or bring the checkpoint: `gen-metrics models fetch {cid} --checkpoint FILE`; or pass an ONNX export (--model FILE.onnx)",
                            id = spec.id,
                            home = provisioner.home().display(),
                            cid = c.id,
                            url = provisioner.checkpoint_address(c),
                        )));
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            None => {
                return Err(FeatureError::EncoderSpec(format!(
                    "{id}: no model file. Export it once with `python3 tools/export_encoders.py {id} -o {id}.onnx` (PyTorch, on a machine with the weights) and pass it (--model {id}.onnx)",
                    id = spec.id
                )));
            }
        };
        let library = options.runtime.resolve_library(&provisioner)?;
        let mut extractor = Extractor::from_file(&model_path, &library, &options.runtime)?;
        if let Some(name) = &spec.output_name {
            extractor = extractor.with_output(name)?;
        }
        if let Some(name) = &spec.input_name
            && extractor.input_name() != name
        {
            return Err(FeatureError::Model {
                model: model_path.display().to_string(),
                detail: format!(
                    "first input is `{}`, the specification names `{name}`",
                    extractor.input_name()
                ),
            });
        }
        let shape = extractor.input_shape().to_vec();
        let [h, w] = spec.input_size;
        if shape[1] > 0 && shape[1] != 3
            || shape[2] > 0 && shape[2] as usize != h
            || shape[3] > 0 && shape[3] as usize != w
        {
            return Err(FeatureError::Model {
                model: model_path.display().to_string(),
                detail: format!("input shape {shape:?} does not take [N, 3, {h}, {w}]"),
            });
        }
        extractor = extractor.with_select(spec.output);
        let normalization = spec.normalization.resolve(mode);
        Ok(Encoder {
            spec,
            mode,
            normalization,
            extractor,
            model_path,
            weights_sha256,
            batch_size: options.batch_size,
            ring: None,
        })
    }

    /// The encoder's ring of batch buffers (module docs of `source`), made
    /// on first use: [`RING_BUFFERS`] buffers of a batch each, page-locked on
    /// CUDA. `None` when the extractor has none to give (a failed allocation
    /// says so once; batches are then copied, which is correct and slower).
    fn ring(&mut self) -> Option<BatchBuffers> {
        if self.ring.is_none() {
            let made = match self
                .extractor
                .batch_buffers(self.batch_size.max(1), RING_BUFFERS)
            {
                Ok(ring) => ring,
                Err(e) => {
                    eprintln!(
                        "gen-metrics: no batch buffers for the device ({e}); batches are copied"
                    );
                    None
                }
            };
            self.ring = Some(made);
        }
        self.ring.clone().flatten()
    }

    /// The specification.
    pub fn spec(&self) -> &EncoderSpec {
        &self.spec
    }

    /// The encoder id.
    pub fn id(&self) -> &str {
        &self.spec.id
    }

    /// The resize mode in use.
    pub fn resize_mode(&self) -> ResizeMode {
        self.mode
    }

    /// The normalisation in use.
    pub fn normalization(&self) -> Normalization {
        self.normalization
    }

    /// The ONNX model file.
    pub fn model_path(&self) -> &Path {
        &self.model_path
    }

    /// SHA-256 of the ONNX model.
    pub fn weights_sha256(&self) -> &str {
        &self.weights_sha256
    }

    /// Images per ONNX Runtime run.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The feature dimension (from the specification).
    pub fn output_dim(&self) -> usize {
        self.spec.output_dim
    }

    /// The device the session runs on.
    pub fn device(&self) -> Device {
        self.extractor.device()
    }

    /// The underlying session.
    pub fn extractor_mut(&mut self) -> &mut Extractor {
        &mut self.extractor
    }

    /// Everything that identifies this encoder's numbers.
    pub fn identity(&self) -> EncoderIdentity {
        EncoderIdentity {
            encoder: self.spec.id.clone(),
            weights_sha256: self.weights_sha256.clone(),
            input_size: self.spec.input_size,
            resize: self.mode.name().to_owned(),
            crop: self.spec.crop,
            normalization: format!("{:?}", self.normalization),
            output: self.spec.output,
            output_name: self.extractor.output_name().to_owned(),
            dtype: "float32".into(),
        }
    }

    /// This encoder's preprocessing as a value, for image sources to run on
    /// their producer thread ([`ImageSource::into_batches_in`]).
    pub fn preprocessing(&self) -> EncoderPreprocess {
        EncoderPreprocess {
            mode: self.mode,
            normalization: self.normalization,
            input_size: self.spec.input_size,
            crop: self.spec.crop,
        }
    }

    /// Preprocesses one 8-bit RGB image `image[[y, x, c]]` into the network
    /// input `[3, H, W]`.
    ///
    /// # Errors
    /// [`FeatureError::Resize`] for an empty image or one without 3 channels.
    pub fn preprocess(&self, image: ArrayView3<'_, u8>) -> Result<Array3<f32>> {
        Ok(self.preprocessing().u8_image(image)?)
    }

    /// Preprocesses one floating-point image `image[[c, y, x]]` with values in `range`.
    ///
    /// # Errors
    /// [`FeatureError::Resize`] (also for NaN or infinite values).
    pub fn preprocess_f32(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
    ) -> Result<Array3<f32>> {
        Ok(self.preprocessing().f32_image(image, range)?)
    }

    /// Features of already preprocessed inputs `[N, 3, H, W]`, in batches.
    ///
    /// # Errors
    /// As [`Extractor::run`]; [`FeatureError::Model`] when the feature
    /// dimension differs from the specification.
    pub fn encode_preprocessed(&mut self, batch: ArrayView4<'_, f32>) -> Result<Array2<f32>> {
        let out = self.extractor.run_batched(batch, self.batch_size)?;
        self.check_dim(&out)?;
        Ok(out)
    }

    fn check_dim(&self, out: &Array2<f32>) -> Result<()> {
        check_dim(&self.spec, &self.model_path, out)
    }

    /// Features of `n` images, `prep(i, slot)` writing image `i`'s network
    /// input `[3, H, W]` into its slot of the batch: batches of [`batch_size`](Self::batch_size) are
    /// preprocessed in parallel on a scoped producer thread while the
    /// previous batch runs, so decoding overlaps inference and memory holds
    /// at most three batches however large `n` is (in the encoder's ring of
    /// host buffers when it has one: no copy on the inference thread). `on_batch(done)` after
    /// each batch. The batches are those of [`encode_preprocessed`]
    /// (same boundaries, same rows).
    ///
    /// [`encode_preprocessed`]: Self::encode_preprocessed
    fn encode_stream(
        &mut self,
        n: usize,
        prep: impl Fn(usize, ArrayViewMut3<'_, f32>) -> Result<()> + Sync,
        mut on_batch: impl FnMut(usize),
    ) -> Result<Array2<f32>> {
        if n == 0 {
            return Err(FeatureError::invalid("extractor", "no images"));
        }
        let bs = self.batch_size.max(1);
        let [h, w] = self.spec.input_size;
        let ring = self.ring();
        let (spec, model_path, extractor) = (&self.spec, &self.model_path, &mut self.extractor);
        let prep = &prep;
        std::thread::scope(|scope| {
            // One finished batch waits while the next is prepared.
            let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Batch>>(1);
            scope.spawn(move || {
                for start in (0..n).step_by(bs) {
                    let end = (start + bs).min(n);
                    let (batch, failed) = Batch::fill(
                        start..end,
                        (h, w),
                        ring.as_ref(),
                        || (),
                        |(), i, slot| prep(i, slot),
                    );
                    // The first failure in row order ends the call.
                    let batch = match failed.into_iter().next() {
                        Some((_, e)) => Err(e),
                        None => Ok(batch),
                    };
                    let failed = batch.is_err();
                    // A closed channel: the consumer stopped (an error).
                    if tx.send(batch).is_err() || failed {
                        return;
                    }
                }
            });
            let mut out: Option<Array2<f32>> = None;
            let mut done = 0;
            // Returning early drops `rx`, which stops the producer before the
            // scope joins it.
            for batch in &rx {
                let batch = batch?;
                let rows = extractor.run_batch(&batch)?;
                check_dim(spec, model_path, &rows)?;
                let all = out.get_or_insert_with(|| Array2::zeros((n, rows.ncols())));
                all.slice_mut(s![done..done + rows.nrows(), ..])
                    .assign(&rows);
                done += rows.nrows();
                on_batch(done);
            }
            out.filter(|_| done == n)
                .ok_or_else(|| FeatureError::invalid("encoder", "the image producer stopped early"))
        })
    }

    /// Features of 8-bit RGB images `batch[[n, y, x, c]]` (NHWC, any size),
    /// any number of them: run a batch at a time with the next batch
    /// preprocessed meanwhile, so memory holds at most three batches.
    ///
    /// # Errors
    /// As [`preprocess`](Self::preprocess) and [`encode_preprocessed`](Self::encode_preprocessed).
    pub fn encode_u8_nhwc(&mut self, batch: ArrayView4<'_, u8>) -> Result<Array2<f32>> {
        let pre = self.preprocessing();
        let image = |i: usize, slot: ArrayViewMut3<'_, f32>| {
            Ok(pre.u8_image_into(batch.index_axis(Axis(0), i), slot)?)
        };
        self.encode_stream(batch.len_of(Axis(0)), image, |_| {})
    }

    /// Features of floating-point images `batch[[n, c, y, x]]` (NCHW) with
    /// values in `range` (no quantisation to 8 bits, as clean-fid does for
    /// generator outputs).
    ///
    /// # Errors
    /// As [`preprocess_f32`](Self::preprocess_f32) and [`encode_preprocessed`](Self::encode_preprocessed).
    pub fn encode_f32_nchw(
        &mut self,
        batch: ArrayView4<'_, f32>,
        range: ValueRange,
    ) -> Result<Array2<f32>> {
        let pre = self.preprocessing();
        let image = |i: usize, slot: ArrayViewMut3<'_, f32>| {
            Ok(pre.f32_image_into(batch.index_axis(Axis(0), i), range, slot)?)
        };
        self.encode_stream(batch.len_of(Axis(0)), image, |_| {})
    }

    /// Features of decoded RGB images.
    ///
    /// # Errors
    /// As [`encode_u8_nhwc`](Self::encode_u8_nhwc).
    pub fn encode_images(&mut self, images: &[RgbImage]) -> Result<Array2<f32>> {
        let pre = self.preprocessing();
        let image = |i: usize, slot: ArrayViewMut3<'_, f32>| {
            Ok(pre.u8_image_into(rgb_view(&images[i])?, slot)?)
        };
        self.encode_stream(images.len(), image, |_| {})
    }

    /// Features of image files, one row per path in the order given. Files
    /// are decoded ([`crate::decode::decode_file`], Pillow's RGB conversion)
    /// and preprocessed in parallel a batch ahead of inference; `on_batch` is called
    /// with the number of images done after each batch (for progress bars).
    ///
    /// # Errors
    /// [`FeatureError::Decode`] naming the first file that cannot be read;
    /// as [`encode_preprocessed`](Self::encode_preprocessed).
    pub fn encode_files(
        &mut self,
        paths: &[PathBuf],
        on_batch: impl FnMut(usize),
    ) -> Result<Array2<f32>> {
        if paths.is_empty() {
            return Err(FeatureError::invalid("encoder", "no image files"));
        }
        let pre = self.preprocessing();
        let image = |i: usize, slot: ArrayViewMut3<'_, f32>| {
            let img = crate::decode::decode_file(&paths[i])?;
            let done = pre.u8_image_into(rgb_view(&img)?, slot);
            crate::decode::recycle(img);
            Ok(done?)
        };
        self.encode_stream(paths.len(), image, on_batch)
    }
}

impl Encoder {
    /// Features of every image of `source` (folder, zip, `.npy`/`.npz`, memory),
    /// rows in the source's order. Decoding, resizing and cropping
    /// ([`Encoder::preprocessing`]) of the next batches overlap inference
    /// ([`ImageSource::into_batches_in`]), written straight into the
    /// extractor's host buffers ([`Extractor::batch_buffers`]: page-locked on
    /// CUDA). `on_batch(done, total)` is called after each batch.
    ///
    /// # Errors
    /// [`FeatureError::Source`] / [`FeatureError::Decode`] for the first bad
    /// item under [`ErrorPolicy::Fail`]; [`FeatureError::InvalidInput`] when
    /// no image is left; as [`encode_preprocessed`](Self::encode_preprocessed).
    pub fn encode_source(
        &mut self,
        source: ImageSource,
        policy: ErrorPolicy,
        mut on_batch: impl FnMut(usize, usize),
    ) -> Result<SourceFeatures> {
        let total = source.len();
        if total == 0 {
            return Err(FeatureError::invalid(
                "encoder",
                "the source holds no images",
            ));
        }
        let mut parts: Vec<Array2<f32>> = Vec::new();
        let mut names: Vec<String> = Vec::with_capacity(total);
        let mut done = 0;
        let options = BatchOptions::default()
            .batch_size(self.batch_size)
            .policy(policy);
        let ring = self.ring();
        let mut batches = source.into_batches_in(self.preprocessing(), options, ring)?;
        for batch in &mut batches {
            let batch = batch?;
            done += batch.indices.len() + batch.skipped.len();
            if !batch.indices.is_empty() {
                let rows = self.extractor.run_batch(&batch)?;
                self.check_dim(&rows)?;
                parts.push(rows);
                names.extend(batch.names.iter().cloned());
            }
            on_batch(done, total);
        }
        let skipped = batches.skipped();
        if parts.is_empty() {
            return Err(FeatureError::invalid(
                "encoder",
                format!("all {total} images were skipped"),
            ));
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let features = ndarray::concatenate(Axis(0), &views)
            .map_err(|e| FeatureError::invalid("encoder", e.to_string()))?;
        Ok(SourceFeatures {
            features,
            names,
            skipped,
        })
    }
}

/// [`FeatureError::Model`] when `out` has another feature dimension than
/// `spec` fixes (none when `output_dim` is 0).
fn check_dim(spec: &EncoderSpec, model_path: &Path, out: &Array2<f32>) -> Result<()> {
    if spec.output_dim > 0 && out.ncols() != spec.output_dim {
        return Err(FeatureError::Model {
            model: model_path.display().to_string(),
            detail: format!(
                "gives {} features per image, the encoder `{}` expects {}",
                out.ncols(),
                spec.id,
                spec.output_dim
            ),
        });
    }
    Ok(())
}

/// A view `[[y, x, c]]` of an RGB image's pixels.
///
/// # Errors
/// [`FeatureError::InvalidInput`] if the buffer does not hold `h * w * 3` bytes
/// (impossible for a well-formed `RgbImage`).
pub fn rgb_view(img: &RgbImage) -> Result<ArrayView3<'_, u8>> {
    let (w, h) = img.dimensions();
    ArrayView3::from_shape((h as usize, w as usize, 3), img.as_raw().as_slice())
        .map_err(|e| FeatureError::invalid("image", format!("RGB buffer of {w}x{h}: {e}")))
}

/// torchvision `Resize(size)` with an int: the shorter side becomes `size`,
/// the longer `int(size * long / short)` (truncated). Returns `(h, w)`.
pub fn shorter_side_size(h: usize, w: usize, size: usize) -> (usize, usize) {
    if h == 0 || w == 0 {
        return (size, size);
    }
    if w <= h {
        let long = (size as f64 * h as f64 / w as f64) as usize;
        (long, size)
    } else {
        let long = (size as f64 * w as f64 / h as f64) as usize;
        (size, long)
    }
}

/// torchvision `CenterCrop` offset: `int(round((len - crop) / 2.0))`, Python's
/// round (ties to even).
pub fn center_offset(len: usize, crop: usize) -> usize {
    if len <= crop {
        return 0;
    }
    ((len - crop) as f64 / 2.0).round_ties_even() as usize
}
