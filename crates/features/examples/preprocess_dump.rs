//! Dumps decoded or preprocessed pixels as `.npy`, for `tools/check_resize.py`.
//!
//! ```text
//! preprocess_dump decode INPUT OUT.npy            # u8 [H, W, 3] as Pillow's convert('RGB')
//! preprocess_dump preprocess INPUT MODE H W OUT.npy  # f32 [3, H, W], normalization Raw255 (clean,
//!                                                    # legacy-tensorflow) or Unit (legacy-pytorch)
//! preprocess_dump throughput SOURCE MODE [BATCH]     # decode + preprocess a folder/zip/npy to 299x299
//!                                                    # into a ring of 4 batch buffers, print images/s
//! ```
//! `INPUT` is an image file, or a `.npy` holding u8 `[H, W, 3]` (pixels decoded elsewhere).
use std::path::Path;

use gen_metrics_features::decode::decode_file;
use gen_metrics_features::resize::{Normalization, ResizeMode, ResizeSpec, preprocess};
use gen_metrics_features::source::{BatchBuffers, BatchOptions, ImageSource, PixelBuffer};
use ndarray::Array3;
use ndarray_npy::{read_npy, write_npy};

fn load(input: &str) -> Result<Array3<u8>, Box<dyn std::error::Error>> {
    if input.ends_with(".npy") {
        return Ok(read_npy(input)?);
    }
    let img = decode_file(Path::new(input))?;
    let (w, h) = img.dimensions();
    Ok(Array3::from_shape_vec(
        (h as usize, w as usize, 3),
        img.into_raw(),
    )?)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("decode") if args.len() == 3 => {
            write_npy(&args[2], &load(&args[1])?)?;
        }
        Some("preprocess") if args.len() == 6 => {
            let img = load(&args[1])?;
            let mode = ResizeMode::from_name(&args[2]).ok_or("unknown mode")?;
            let norm = if mode == ResizeMode::LegacyPytorch {
                Normalization::Unit
            } else {
                Normalization::Raw255
            };
            let spec = ResizeSpec::new(mode, (args[3].parse()?, args[4].parse()?), norm);
            write_npy(&args[5], &preprocess(img.view(), &spec)?)?;
        }
        Some("throughput") if args.len() >= 3 => {
            let mode = ResizeMode::from_name(&args[2]).ok_or("unknown mode")?;
            let batch = args.get(3).map(|b| b.parse()).transpose()?.unwrap_or(64);
            let source = ImageSource::open(Path::new(&args[1]))?;
            let n = source.len();
            let spec = ResizeSpec::new(mode, (299, 299), Normalization::Centered128);
            // A ring of reused batch buffers, as the encoder keeps: fresh
            // buffers would measure the kernel's page zeroing.
            let ring = BatchBuffers::new(
                (0..4)
                    .map(|_| Box::new(vec![0.0f32; batch * 3 * 299 * 299]) as Box<dyn PixelBuffer>)
                    .collect(),
                batch,
            );
            let t = std::time::Instant::now();
            let mut done = 0;
            let options = BatchOptions::default().batch_size(batch);
            for b in source.into_batches_in(spec, options, Some(ring))? {
                done += b?.indices.len();
            }
            let s = t.elapsed().as_secs_f64();
            println!(
                "{done} of {n} images in {s:.2} s: {:.1} images/s ({} rayon threads)",
                done as f64 / s,
                rayon::current_num_threads()
            );
        }
        _ => {
            return Err(
                "usage: preprocess_dump decode IN OUT.npy | preprocess IN MODE H W OUT.npy | throughput SOURCE MODE [BATCH]".into(),
            );
        }
    }
    Ok(())
}
