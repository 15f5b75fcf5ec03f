//! Synthetic inputs for timing runs (`tools/gpu_check.sh`), made offline and
//! seeded, so a machine without network can measure the pipeline.
//!
//! ```sh
//! cargo run --release --example synth_data -- images DIR N [SIZE] [SEED] # N PNGs, SIZE x SIZE (256), seed (1)
//! cargo run --release --example synth_data -- features DIR N D         # DIR/a.npy, DIR/b.npy [N, D]
//! ```
//!
//! Images: per-image colour gradients, a disk and noise (so PNG decoding and
//! resizing do real work). Features: `a` ~ |N(0, 1)|, `b` the same shifted by
//! 0.1 (non-negative like Inception pool3 features), float32.

use std::path::Path;

use anyhow::{Context, Result, bail};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn images(dir: &Path, n: usize, size: u32, seed: u64) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for i in 0..n {
        let base: [f32; 3] = [rng.random(), rng.random(), rng.random()];
        let (cx, cy, r) = (
            rng.random_range(0.2..0.8) * size as f32,
            rng.random_range(0.2..0.8) * size as f32,
            rng.random_range(0.1..0.3) * size as f32,
        );
        let mut noise = ChaCha8Rng::seed_from_u64(
            (1000 + i as u64).wrapping_add(seed.wrapping_sub(1).wrapping_mul(1_000_000)),
        );
        let img = image::RgbImage::from_fn(size, size, |x, y| {
            let inside = ((x as f32 - cx).powi(2) + (y as f32 - cy).powi(2)) < r * r;
            let t = (x + y) as f32 / (2 * size) as f32;
            let mut px = [0u8; 3];
            for (c, p) in px.iter_mut().enumerate() {
                let v = if inside {
                    1.0 - base[c]
                } else {
                    base[c] * (0.5 + t)
                };
                let v = v + noise.random_range(-0.05f32..0.05);
                *p = (v.clamp(0.0, 1.0) * 255.0) as u8;
            }
            image::Rgb(px)
        });
        let path = dir.join(format!("{i:06}.png"));
        img.save(&path)
            .with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn features(dir: &Path, n: usize, d: usize) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (name, seed, shift) in [("a.npy", 2u64, 0.0f32), ("b.npy", 3, 0.1)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let a = Array2::from_shape_simple_fn((n, d), || {
            // Box-Muller: |N(0, 1)| + shift.
            let (u, v): (f32, f32) = (rng.random_range(f32::EPSILON..1.0), rng.random());
            ((-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()).abs() + shift
        });
        let path = dir.join(name);
        ndarray_npy::write_npy(&path, &a).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, what: &str| -> Result<usize> {
        args.get(i)
            .with_context(|| format!("missing {what}"))?
            .parse()
            .with_context(|| format!("{what} must be a number"))
    };
    match args.first().map(String::as_str) {
        Some("images") => {
            let size = if args.len() > 3 { num(3, "SIZE")? } else { 256 };
            let seed = if args.len() > 4 { num(4, "SEED")? } else { 1 };
            images(Path::new(&args[1]), num(2, "N")?, size as u32, seed as u64)
        }
        Some("features") => features(Path::new(&args[1]), num(2, "N")?, num(3, "D")?),
        _ => bail!("usage: synth_data images DIR N [SIZE] [SEED] | synth_data features DIR N D"),
    }
}
