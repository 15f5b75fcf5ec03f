//! Streaming Gaussian statistics (`gen_metrics_linalg::GaussianAccumulator`).
//!
//! `cargo bench --bench covariance` times the mean + covariance of float32
//! features (one push, batched pushes, merging two accumulators). The
//! side-by-side comparison with `np.cov` on 50 000 × 2048 features is part of
//! `cargo bench --bench frechet -- --side-by-side`.

use std::hint::black_box;

use criterion::Criterion;
use gen_metrics_linalg::{GaussianAccumulator, GaussianStats};
use ndarray::{Array2, Axis};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

fn features(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| StandardNormal.sample(&mut rng))
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    let mut g = c.benchmark_group("covariance");
    g.sample_size(10);
    for (n, d) in [(10_000usize, 512usize), (10_000, 2048)] {
        let x = features(n, d, 1);
        g.bench_function(format!("from_features {n}x{d}"), |b| {
            b.iter(|| GaussianStats::from_features(black_box(x.view())).unwrap())
        });
        g.bench_function(format!("push batches of 500, {n}x{d}"), |b| {
            b.iter(|| {
                let mut acc = GaussianAccumulator::new(d).unwrap();
                for chunk in x.axis_chunks_iter(Axis(0), 500) {
                    acc.push(black_box(chunk)).unwrap();
                }
                acc.finalize(1).unwrap()
            })
        });
    }
    let d = 2048;
    let mut a = GaussianAccumulator::new(d).unwrap();
    a.push(features(3000, d, 2).view()).unwrap();
    let mut b = GaussianAccumulator::new(d).unwrap();
    b.push(features(3000, d, 3).view()).unwrap();
    g.bench_function("merge D=2048", |bch| {
        bch.iter(|| {
            let mut m = a.clone();
            m.merge(black_box(&b)).unwrap();
            m
        })
    });
    g.finish();
    c.final_summary();
}
