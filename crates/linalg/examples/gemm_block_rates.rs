//! The rate of `faer`'s GEMM on the block shapes the distance engine uses:
//! `A Bᵀ` with `A`, `B` row-major `m × D`, one thread, float64 and float32.
//!
//! The engine's block edge (`pairwise::full_blocks`, 512 rows) comes from
//! this table: on a 2 MiB-L2 AVX-512 host, products whose both sides were
//! under 512 rows ran unpacked at ~60 % of the packed rate
//! (docs/benchmarks.md, "Blocks of 512 rows"). Rerun it on a new kind of
//! host before changing the edge. The last column runs the float64 product
//! on two threads at once, each on its own operands, as the engine's two
//! workers do, and prints their summed rate: about twice the one-thread rate
//! means the threads do not compete for cache or memory bandwidth at that
//! edge (2026-12-07, Intel host: 34 alone, 70 for two at 527 rows), so a
//! pass slower than that loses its time outside the GEMM:
//!
//! ```sh
//! cargo run --release -p gen-metrics-linalg --example gemm_block_rates [D] [REPEATS] [EDGES...]
//! ```

use faer::{Accum, MatMut, MatRef, Par};
use std::time::Instant;

/// Best seconds of `repeats` products `C = A Bᵀ` of `m × d` operands.
fn best_seconds<T>(m: usize, d: usize, repeats: usize) -> f64
where
    T: faer::traits::ComplexField + Copy + From<f32>,
{
    let a: Vec<T> = (0..m * d)
        .map(|i| T::from(((i * 7919) % 1000) as f32 / 1000.0))
        .collect();
    let b: Vec<T> = (0..m * d)
        .map(|i| T::from(((i * 104_729) % 1000) as f32 / 1000.0))
        .collect();
    let mut c = vec![T::from(0.0); m * m];
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        let t = Instant::now();
        let lhs = MatRef::from_row_major_slice(&a, m, d);
        let rhs = MatRef::from_row_major_slice(&b, m, d).transpose();
        let dst = MatMut::from_row_major_slice_mut(&mut c, m, m);
        faer::linalg::matmul::matmul(dst, Accum::Replace, lhs, rhs, T::from(1.0), Par::Seq);
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

fn main() {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let d = args.next().flatten().unwrap_or(2048);
    let repeats = args.next().flatten().unwrap_or(7).max(1);
    println!("A Bᵀ, m × {d} row-major operands, one thread, best of {repeats} (GFMA/s)");
    println!(
        "{:>6} {:>9} {:>9} {:>16}",
        "m = n", "float64", "float32", "float64 2 thr."
    );
    let asked: Vec<usize> = args.flatten().collect();
    let edges = if asked.is_empty() {
        vec![256, 384, 448, 500, 511, 512, 527, 576, 768, 1000, 1024]
    } else {
        asked
    };
    for m in edges {
        let fma = (m * m * d) as f64 / 1e9;
        let r64 = fma / best_seconds::<f64>(m, d, repeats);
        let r32 = fma / best_seconds::<f32>(m, d, repeats);
        // Two threads, each its own operands: the sum of their best rates.
        let both: f64 = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| s.spawn(move || fma / best_seconds::<f64>(m, d, repeats)))
                .collect();
            workers
                .into_iter()
                .map(|w| w.join().unwrap_or(f64::NAN))
                .sum()
        });
        println!("{m:>6} {r64:>9.1} {r32:>9.1} {both:>16.1}");
    }
}
