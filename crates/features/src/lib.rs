//! # gen-metrics-features: images in, feature vectors out
//!
//! **Owns:** everything between pixels and embeddings, in the order the data
//! flows: reading images from folders, zip archives, `.npy`/`.npz` arrays or
//! in-memory batches ([`source`]); converting them to RGB as PIL does
//! ([`decode`]); resizing exactly as the reference implementations do
//! ([`resize`]); encoder presets with their preprocessing ([`encoder`]);
//! running them with ONNX Runtime on CUDA or CPU ([`extractor`]); a feature
//! cache keyed by everything that changes the result ([`cache`]). The
//! in-process evaluator for training loops, which computes metrics, lives in
//! `gen-metrics-eval`.
//!
//! The ONNX Runtime shared library and the FID Inception-V3 weights are
//! provisioned by `gen-metrics-artifacts` (re-exported as [`provision`]),
//! which has `gen-metrics-convert` rebuild the TorchScript weights as an ONNX
//! graph; feature files and image arrays are read and written by the codec of
//! `gen-metrics-io`.
//!
//! **Must not:** compute metrics (features go to `gen-metrics-distribution`),
//! fetch or verify artifacts itself (that is `gen-metrics-artifacts`), parse
//! checkpoints (`gen-metrics-convert`) or file formats (`gen-metrics-io`), or
//! reach any address.

pub mod cache;
pub mod decode;
pub mod encoder;
pub mod error;
pub mod extractor;
pub mod gram;
pub mod resize;
pub mod source;

pub use cache::{CacheKey, FeatureCache};
pub use decode::{DecodeError, decode_bytes, decode_file};
pub use encoder::{Encoder, EncoderOptions, EncoderPreprocess, EncoderSpec, Preset};
pub use error::FeatureError;
pub use extractor::{Device, Extractor, RuntimeOptions};
/// Provisioning, re-exported from `gen-metrics-artifacts` so that
/// `gen_metrics_features::provision::Provisioner` keeps working.
pub use gen_metrics_artifacts as provision;
pub use gen_metrics_artifacts::Provisioner;
pub use gram::{OrtGram, OrtResident};
pub use resize::{
    Normalization, ResizeError, ResizeMode, ResizeSpec, ValueRange, preprocess, preprocess_batch,
    preprocess_batch_f32, preprocess_f32, preprocess_f32_into, preprocess_into, resize_plane,
};
pub use source::{
    Batch, BatchBuffers, BatchOptions, Batches, ErrorPolicy, ImageSource, PixelBuffer, Preprocess,
    SkippedItem, SourceError,
};
