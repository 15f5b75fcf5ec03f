//! The distance engine's float64 passes with a kernel tap (exact KID's
//! products, shared with the k-NN metrics), timed on synthetic rows:
//! the within-set pass (each unordered block pair once, `n²·D/2`
//! multiply–adds) and the cross pass (`n²·D`). Prints seconds and GFMA/s
//! per pass, to compare a change with its predecessor in interleaved runs
//! (docs/benchmarks.md, "Blocks of 512 rows").
//!
//! ```sh
//! cargo run --release -p gen-metrics-linalg --example kernel_pass_rates [N] [D]
//! ```

use gen_metrics_linalg::kernels::Kernel;
use gen_metrics_linalg::pairwise::{
    cross_pass_with_kernel, kth_neighbour_squared_radii_with_kernel,
};
use ndarray::Array2;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|s| s.parse::<usize>().ok());
    let n = args.next().flatten().unwrap_or(10_000);
    let d = args.next().flatten().unwrap_or(2048);
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        ((i * 7919 + j * 31) % 1000) as f32 / 1000.0
    });
    let y = Array2::from_shape_fn((n, d), |(i, j)| {
        ((i * 104_729 + j * 17) % 1000) as f32 / 1000.0
    });
    let no_subsets = Array2::<usize>::zeros((0, 0));
    let kernel = Kernel::kid(d);
    let half = (n * n * d) as f64 / 2.0;

    let t = Instant::now();
    kth_neighbour_squared_radii_with_kernel(x.view(), &[], kernel, no_subsets.view())?;
    let within = t.elapsed().as_secs_f64();
    println!(
        "within: {within:.3} s, {:.1} GFMA/s (half the products)",
        half / within / 1e9
    );

    let t = Instant::now();
    cross_pass_with_kernel(
        x.view(),
        y.view(),
        &[],
        kernel,
        no_subsets.view(),
        no_subsets.view(),
    )?;
    let cross = t.elapsed().as_secs_f64();
    println!(
        "cross: {cross:.3} s, {:.1} GFMA/s",
        2.0 * half / cross / 1e9
    );
    Ok(())
}
