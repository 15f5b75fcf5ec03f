//! Fréchet distance (`gen_metrics_linalg::FrechetDistance`).
//!
//! `cargo bench --bench frechet` runs the criterion benchmarks (D = 512 and
//! 2048 from statistics, the Gram/SVD branch from 1000 × 2048 features).
//!
//! `cargo bench --bench frechet -- --side-by-side [D N_FD N_COV]` (default
//! 2048 4000 50000) times, in one run and on the same data:
//!
//! * the FD between two Gaussians fitted to `N_FD × D` random features (the
//!   statistics are computed once and shared): ours (Cholesky branch) against
//!   pytorch-fid's `scipy.linalg.sqrtm` formula and against numpy Cholesky +
//!   `eigvalsh` (`tools/bench/fd_side_by_side.py`), checking that the three
//!   values agree;
//! * the covariance of `N_COV × D` float32 features: our
//!   `GaussianStats::from_features` against `np.cov(X, rowvar=False)`, checking
//!   that they agree;
//!
//! and prints every time and the ratios. Ours is timed before and after the
//! numpy run, numpy's fast routes before and after its long sqrtm run, and
//! the minima are compared (the load of a shared machine drifts).

use std::hint::black_box;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use criterion::Criterion;
use gen_metrics_linalg::{FrechetDistance, GaussianStats};
use ndarray::Array2;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// `N × D` features: standard normal `z`, column `j` scaled by
/// `0.5 + j/D` and shifted by `shift`, so the covariance is full rank and not
/// a multiple of the identity.
fn features(n: usize, d: usize, seed: u64, scale: f32, shift: f32) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |(_, j)| {
        let z: f32 = StandardNormal.sample(&mut rng);
        scale * (0.5 + j as f32 / d as f32) * z + shift
    })
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("frechet");
    g.sample_size(10);
    for d in [512usize, 2048] {
        let a = GaussianStats::from_features(features(2 * d, d, 1, 1.0, 0.0).view()).unwrap();
        let b = GaussianStats::from_features(features(2 * d, d, 2, 1.2, 0.1).view()).unwrap();
        g.bench_function(format!("stats D={d} (Cholesky)"), |bch| {
            bch.iter(|| {
                FrechetDistance::new()
                    .between_stats(black_box(&a), black_box(&b))
                    .unwrap()
            })
        });
    }
    let x = features(1000, 2048, 3, 1.0, 0.0);
    let y = features(900, 2048, 4, 1.2, 0.1);
    g.bench_function("features 1000/900 x 2048 (Gram/SVD)", |bch| {
        bch.iter(|| {
            FrechetDistance::new()
                .between_features(black_box(x.view()), black_box(y.view()))
                .unwrap()
        })
    });
    g.finish();
}

fn write_f64(path: &Path, v: impl Iterator<Item = f64>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create temp file"));
    for x in v {
        f.write_all(&x.to_le_bytes()).expect("write temp file");
    }
}

fn write_f32(path: &Path, v: impl Iterator<Item = f32>) {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create temp file"));
    for x in v {
        f.write_all(&x.to_le_bytes()).expect("write temp file");
    }
}

fn read_f64(path: &Path) -> Vec<f64> {
    std::fs::read(path)
        .expect("read numpy output")
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// Minimum and median of `repeats` timings of `f`.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeats {
        let t0 = Instant::now();
        last = Some(black_box(f()));
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (
        times[0],
        times[times.len() / 2],
        last.expect("repeats >= 1"),
    )
}

fn json_num(json: &str, key: &str) -> f64 {
    let pat = format!("\"{key}\": ");
    let i = json
        .find(&pat)
        .unwrap_or_else(|| panic!("{key} missing in {json}"))
        + pat.len();
    json[i..]
        .split([',', '}'])
        .next()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} not a number in {json}"))
}

fn json_str<'a>(json: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\": \"");
    let i = json.find(&pat).map(|i| i + pat.len()).unwrap_or(0);
    json[i..].split('"').next().unwrap_or("?")
}

fn side_by_side(args: &[String]) {
    let num =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (d, n_fd, n_cov) = (num(0, 2048), num(1, 4000), num(2, 50_000));
    let dir = std::env::temp_dir().join(format!("gen-metrics-fd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bench/fd_side_by_side.py");

    // --- FD: statistics shared by every route --------------------------------
    let a = GaussianStats::from_features(features(n_fd, d, 1, 1.0, 0.0).view()).unwrap();
    let b = GaussianStats::from_features(features(n_fd, d, 2, 1.2, 0.1).view()).unwrap();
    for (name, s) in [("mu1", &a), ("mu2", &b)] {
        write_f64(&dir.join(name), s.mean.iter().copied());
    }
    for (name, s) in [("s1", &a), ("s2", &b)] {
        write_f64(&dir.join(name), s.cov.iter().copied());
    }
    FrechetDistance::new().between_stats(&a, &b).unwrap(); // warm-up
    let fd1 = time(3, || FrechetDistance::new().between_stats(&a, &b).unwrap());

    // --- covariance ----------------------------------------------------------
    let x = features(n_cov, d, 3, 1.0, 0.25);
    write_f32(&dir.join("x"), x.iter().copied());
    let cov1 = time(2, || GaussianStats::from_features(x.view()).unwrap());
    write_f64(&dir.join("cov_ours"), cov1.2.cov.iter().copied());

    eprintln!("running numpy/scipy (the sqrtm route takes a while) ...");
    let out = Command::new("python3")
        .arg(&script)
        .args(["--dir", dir.to_str().expect("utf-8 temp path")])
        .args(["--d", &d.to_string(), "--n-cov", &n_cov.to_string()])
        .output()
        .expect("python3 runs");
    if !out.status.success() {
        panic!("{}", String::from_utf8_lossy(&out.stderr));
    }
    // The load of a shared machine drifts: ours is timed again after numpy
    // (which times its fast routes before and after sqrtm); minima are compared.
    let fd2 = time(3, || FrechetDistance::new().between_stats(&a, &b).unwrap());
    let cov2 = time(2, || GaussianStats::from_features(x.view()).unwrap());
    drop(x);
    let (fd_min, fd_med, ours) = (fd1.0.min(fd2.0), fd1.1.min(fd2.1), fd2.2);
    let (cov_min, cov_med) = (cov1.0.min(cov2.0), cov1.1.min(cov2.1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = stdout.lines().last().unwrap_or("").to_string();
    let cov_np_dev = read_f64(&dir.join("cov_dev"))[0];
    let _ = std::fs::remove_dir_all(&dir);

    let (sq_min, ch_min, npcov_min) = (
        json_num(&json, "sqrtm_min_s"),
        json_num(&json, "chol_min_s"),
        json_num(&json, "cov_min_s"),
    );
    let (fd_sq, fd_ch) = (json_num(&json, "fd_sqrtm"), json_num(&json, "fd_chol"));
    println!(
        "machine: {} threads, numpy {} ({}), scipy {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        json_str(&json, "numpy"),
        json_str(&json, "blas"),
        json_str(&json, "scipy")
    );
    println!("FD from statistics, D = {d} (statistics of {n_fd} rows each)");
    println!(
        "  ours (branch {:?})          min {fd_min:8.3} s  run median {fd_med:8.3} s  value {:.15e}",
        ours.branch, ours.value
    );
    println!(
        "  scipy sqrtm (pytorch-fid)   min {sq_min:8.3} s  run median {:8.3} s  value {fd_sq:.15e}",
        json_num(&json, "sqrtm_median_s")
    );
    println!(
        "  numpy cholesky + eigvalsh   min {ch_min:8.3} s  run median {:8.3} s  value {fd_ch:.15e}",
        json_num(&json, "chol_median_s")
    );
    println!(
        "  rel. difference to sqrtm {:.2e}, to numpy Cholesky {:.2e}",
        (ours.value - fd_sq).abs() / fd_sq.abs(),
        (ours.value - fd_ch).abs() / fd_ch.abs()
    );
    println!(
        "  speed-up vs sqrtm route      {:8.1}x (target >= 15x)",
        sq_min / fd_min
    );
    println!(
        "  speed-up vs numpy Cholesky   {:8.2}x (target >= 1x)",
        ch_min / fd_min
    );
    println!("covariance of {n_cov} x {d} float32 rows (float64 result)");
    println!("  ours GaussianStats           min {cov_min:8.3} s  run median {cov_med:8.3} s");
    println!(
        "  numpy np.cov(rowvar=False)   min {npcov_min:8.3} s  run median {:8.3} s",
        json_num(&json, "cov_median_s")
    );
    println!("  max |ours - np.cov| / max |np.cov| = {cov_np_dev:.2e}");
    println!(
        "  speed-up vs np.cov           {:8.2}x (target >= 1x)",
        npcov_min / cov_min
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(i) = args.iter().position(|a| a == "--side-by-side") {
        side_by_side(&args[i + 1..]);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
