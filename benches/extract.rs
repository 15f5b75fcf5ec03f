//! Feature extraction throughput (images per second) with the FID
//! Inception-V3 on ONNX Runtime (CPU):
//!
//! * `end_to_end/*`: a folder of PNGs to features (decode, Pillow-exact RGB,
//!   resize, normalise, inference), as `gen-metrics features` does;
//! * `preprocess_only/*`: the same folder decoded, converted, resized and
//!   normalised into batches, no inference: how fast this machine's cores
//!   can feed a device (rayon's threads, all cores);
//! * `inference/*`: the network alone on a preprocessed batch.
//!
//! Folders: the shared 299x299 synthetic PNGs (no resize) and the shared
//! photos (clean resize to 299; the four, eight times over in a temporary
//! folder, so an iteration is 32 images and not the set-up of a batch of
//! four). `preprocess_only` writes into a reused ring of batch buffers, as
//! the encoder does. `GEN_METRICS_BENCH_THREADS` sets the ONNX
//! Runtime threads (default 2), `GEN_METRICS_BENCH_DIR` adds a folder of your
//! own. The runtime and the weights are provisioned as for the command line
//! (`GEN_METRICS_HOME`); when they cannot be had, the bench says so and
//! measures nothing. The Python side of the comparison is
//! `tools/bench/extract_side_by_side.py`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gen_metrics_features::encoder::{Encoder, EncoderOptions, Preset};
use gen_metrics_features::extractor::RuntimeOptions;
use gen_metrics_features::resize::ResizeMode;
use gen_metrics_features::source::{
    BatchBuffers, BatchOptions, ErrorPolicy, ImageSource, PixelBuffer,
};
use ndarray::Array4;

fn shared_models() -> PathBuf {
    std::env::var_os("GEN_METRICS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("models")
}

fn threads() -> usize {
    std::env::var("GEN_METRICS_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2)
}

fn encoder(resize: ResizeMode) -> Option<Encoder> {
    let options = EncoderOptions {
        runtime: RuntimeOptions::new().intra_threads(threads()),
        resize: Some(resize),
        batch_size: 16,
        ..EncoderOptions::default()
    };
    match Encoder::preset(Preset::InceptionV3Fid, &options) {
        Ok(e) => Some(e),
        Err(e) => {
            eprintln!("extract bench skipped: {e}");
            None
        }
    }
}

/// The shared photos, `copies` times each, in a temporary folder (kept
/// while the returned guard lives); `None` when they are not there.
fn repeated_photos(copies: usize) -> Option<(tempfile::TempDir, PathBuf)> {
    let src = shared_models().join("images");
    let dir = tempfile::tempdir().ok()?;
    for entry in std::fs::read_dir(&src).ok()?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !(name.ends_with(".png") || name.ends_with(".jpg")) {
            continue;
        }
        for k in 0..copies {
            std::fs::copy(entry.path(), dir.path().join(format!("{k}_{name}"))).ok()?;
        }
    }
    let path = dir.path().to_path_buf();
    Some((dir, path))
}

fn folders(photos: Option<&Path>) -> Vec<(String, PathBuf)> {
    let m = shared_models();
    let mut v = vec![("synthetic_299".to_owned(), m.join("synthetic"))];
    if let Some(p) = photos {
        v.push(("photos_clean".to_owned(), p.to_path_buf()));
    }
    if let Some(d) = std::env::var_os("GEN_METRICS_BENCH_DIR") {
        v.push(("user_dir".to_owned(), PathBuf::from(d)));
    }
    v.into_iter().filter(|(_, p)| p.is_dir()).collect()
}

fn bench(c: &mut Criterion) {
    let Some(mut enc) = encoder(ResizeMode::Clean) else {
        return;
    };
    let mut group = c.benchmark_group("extract");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(3));
    let photos = repeated_photos(8);
    let ring = BatchBuffers::new(
        (0..4)
            .map(|_| Box::new(vec![0.0f32; 16 * 3 * 299 * 299]) as Box<dyn PixelBuffer>)
            .collect(),
        16,
    );
    for (name, dir) in folders(photos.as_ref().map(|(_, p)| p.as_path())) {
        let n = match ImageSource::open(&dir) {
            Ok(s) => s.len(),
            Err(e) => {
                eprintln!("{name}: {e}");
                continue;
            }
        };
        group.throughput(Throughput::Elements(n as u64));
        let pre = enc.preprocessing();
        group.bench_function(format!("preprocess_only/{name}/{n}_images"), |b| {
            b.iter(|| {
                let src = ImageSource::open(&dir).expect("source");
                let ring = Some(ring.clone());
                src.into_batches_in(pre, BatchOptions::default().batch_size(16), ring)
                    .expect("batches")
                    .map(|b| b.expect("batch").pixels().len())
                    .sum::<usize>()
            })
        });
        group.bench_function(format!("end_to_end/{name}/{n}_images"), |b| {
            b.iter(|| {
                let src = ImageSource::open(&dir).expect("source");
                enc.encode_source(src, ErrorPolicy::Fail, |_, _| {})
                    .expect("features")
            })
        });
    }
    let batch = Array4::<f32>::from_shape_fn((16, 3, 299, 299), |(n, c, y, x)| {
        (((n * 31 + c * 7 + y * 3 + x) % 255) as f32 - 128.0) / 128.0
    });
    group.throughput(Throughput::Elements(16));
    group.bench_function("inference/batch_16", |b| {
        b.iter(|| enc.encode_preprocessed(batch.view()).expect("features"))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
