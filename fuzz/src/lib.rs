//! Fuzz harnesses: one function per reader of user bytes. Each calls the
//! public reader on the bytes exactly as the library's users reach it (by
//! path where the reader takes a path) and ignores the result: an error is
//! the right answer to most inputs; a panic, an abort (e.g. a failed
//! allocation) or a hang is a bug.
//!
//! The same functions run under AFL++ (`src/bin/*.rs`, `tools/fuzz/run.sh`)
//! and in the normal test suite, which replays the committed corpus and the
//! crash inputs (`crates/features/tests/fuzz_replay.rs` includes this file).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use gen_metrics_convert::torchscript::pickle::{self, Flavor};
use gen_metrics_convert::{StateDict, TorchScriptArchive, onnx};
use gen_metrics_features::{ImageSource, decode_bytes};
use gen_metrics_io::npy::features_from_npy_bytes;

/// A harness: runs one reader on the bytes.
pub type Harness = fn(&[u8]);

/// The targets, by name (the directory names under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Harness)] = &[
    ("jpeg", jpeg),
    ("image", image),
    ("npy", npy),
    ("npz", npz),
    ("zip", zip),
    ("stats", stats),
    ("torchscript", torchscript),
    ("onnx", onnx),
    ("checkpoint", checkpoint),
];

/// At most this many rows of an image source are decoded per input.
const ROWS: usize = 4;

/// The own JPEG decoder (baseline and progressive), reached through the
/// crate's decode entry with a `.jpg` name: `decode_bytes`.
pub fn jpeg(data: &[u8]) {
    let _ = decode_bytes(data, Path::new("fuzz.jpg"));
}

/// Every other format of the decode entry (PNG, BMP, WebP, TIFF through
/// `image`), with the pixel and compression-ratio limits.
pub fn image(data: &[u8]) {
    let _ = decode_bytes(data, Path::new("fuzz.png"));
}

/// `.npy` files: features (`read_features`, `<f4`/`<f8`), labels and
/// log-likelihood vectors, uint8 image arrays (`ImageSource::npy`, rows
/// decoded).
pub fn npy(data: &[u8]) {
    let _ = features_from_npy_bytes(data, Path::new("fuzz.npy"), None);
    with_file(data, "npy", |p| {
        let _ = gen_metrics_io::read_features(p);
        let _ = gen_metrics_io::read_labels(p);
        let _ = gen_metrics_io::read_log_likelihoods(p);
        if let Ok(src) = ImageSource::npy(p) {
            load_rows(&src);
        }
    });
}

/// `.npz` archives of image arrays (`ImageSource::npz`, rows decoded) and
/// the member listing.
pub fn npz(data: &[u8]) {
    with_file(data, "npz", |p| {
        let _ = gen_metrics_io::npz_members(p);
        if let Ok(src) = ImageSource::npz(p, None) {
            load_rows(&src);
        }
    });
}

/// `.zip` image sources (member listing, then members decoded).
pub fn zip(data: &[u8]) {
    with_file(data, "zip", |p| {
        if let Ok(src) = ImageSource::zip(p) {
            load_rows(&src);
        }
    });
}

/// Statistics files (`mu`/`sigma`, ADM reference batches), accumulator
/// files (`n`/`mean`/`comoment`) and feature matrices in `.npz` (`reps`,
/// `features`, a single member).
pub fn stats(data: &[u8]) {
    with_file(data, "npz", |p| {
        let _ = gen_metrics_io::read_statistics(p);
        let _ = gen_metrics_io::read_accumulator(p);
        let _ = gen_metrics_io::read_npz_features(p);
    });
}

/// TorchScript archives (`torch.jit.save` zip: pickles, code, storages) and
/// the whitelisting pickle reader on its own, in both flavours.
pub fn torchscript(data: &[u8]) {
    let _ = TorchScriptArchive::from_bytes(data);
    let _ = pickle::read_flavor(data, Flavor::TorchScript);
    let _ = pickle::read_flavor(data, Flavor::TorchSave);
}

/// The ONNX protobuf reader (`onnx::inspect`).
pub fn onnx(data: &[u8]) {
    let _ = onnx::inspect(data);
}

/// `torch.save` checkpoints (`StateDict::from_bytes`: zip with `data.pkl`
/// and storages).
pub fn checkpoint(data: &[u8]) {
    let _ = StateDict::from_bytes(data);
}

fn load_rows(src: &ImageSource) {
    for i in 0..src.len().min(ROWS) {
        let _ = src.name(i);
        let _ = src.load_u8(i);
    }
}

/// Writes `data` to a fresh file with extension `ext` under the temporary
/// directory (`TMPDIR`; the run script points it at memory), runs `f` on its
/// path and removes it. Unique per process, thread and call, so the test
/// suite's threads never share a file.
fn with_file(data: &[u8], ext: &str, f: impl FnOnce(&Path)) {
    static CALLS: AtomicU64 = AtomicU64::new(0);
    let n = CALLS.fetch_add(1, Ordering::Relaxed);
    let path: PathBuf =
        std::env::temp_dir().join(format!("gen-metrics-fuzz-{}-{n}.{ext}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        f(&path);
    }
    let _ = std::fs::remove_file(&path);
}
