//! k-NN kernels of `gen_metrics_linalg::pairwise`.
//!
//! `cargo bench --bench knn` runs the criterion benchmarks (small shapes, so
//! they finish in minutes on 2 cores).
//!
//! `cargo bench --bench knn -- --side-by-side [N D K]` (default 10000 2048 3)
//! times, in one run, the k-th neighbour radii of an N × D random `f32` matrix
//! with our blocked kernel and with numpy (`tools/bench/knn_side_by_side.py`,
//! a blocked float32 GEMM + `np.partition`, as a numpy user writes it), on the
//! same data, and prints both times and the ratio. It also checks our radii
//! against brute-force exact float64 on a sample of rows.

use std::hint::black_box;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use criterion::Criterion;
use gen_metrics_linalg::pairwise::{
    Boundary, cross_ball_statistics, kth_neighbour_radii, nearest_neighbours, squared_distance,
};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn uniform(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.random::<f32>())
}

fn criterion_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("knn");
    g.sample_size(10);
    let x = uniform(2000, 512, 1);
    let y = uniform(2000, 512, 2);
    g.bench_function("kth_neighbour_radii 2000x512 k=3", |b| {
        b.iter(|| kth_neighbour_radii(black_box(x.view()), 3).unwrap())
    });
    g.bench_function("nearest_neighbours 2000x2000x512 k=5", |b| {
        b.iter(|| nearest_neighbours(black_box(x.view()), black_box(y.view()), 5).unwrap())
    });
    let rx = kth_neighbour_radii(x.view(), 5).unwrap();
    let ry = kth_neighbour_radii(y.view(), 5).unwrap();
    g.bench_function("cross_ball_statistics 2000x2000x512", |b| {
        b.iter(|| {
            cross_ball_statistics(x.view(), y.view(), rx.view(), ry.view(), Boundary::Open).unwrap()
        })
    });
    let w = uniform(1000, 2048, 3);
    g.bench_function("kth_neighbour_radii 1000x2048 k=3", |b| {
        b.iter(|| kth_neighbour_radii(black_box(w.view()), 3).unwrap())
    });
    g.finish();
}

fn side_by_side(args: &[String]) {
    let num =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (n, d, k) = (num(0, 10_000), num(1, 2048), num(2, 3));
    let repeats = 3;
    println!(
        "k-NN radii side by side: N = {n}, D = {d}, k = {k}, random uniform f32, {repeats} timed runs each"
    );
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let load = || {
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    println!(
        "cpu: {cpu}, {} rayon threads; load average before: {}",
        rayon_threads(),
        load()
    );
    let x = uniform(n, d, 20261123);

    let dir = std::env::temp_dir().join(format!("gm_knn_side_by_side_{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let data = dir.join("x.f32");
    let out = dir.join("radii_numpy.f64");
    let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(&data, bytes).expect("write data");

    // numpy and ours, interleaved run by run so that both see the same load
    // on a shared machine.
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tools/bench/knn_side_by_side.py");
    let numpy_run = || -> (f64, String) {
        let py = Command::new("python3")
            .arg(&script)
            .args([
                "--n",
                &n.to_string(),
                "--d",
                &d.to_string(),
                "--k",
                &k.to_string(),
            ])
            .args(["--repeats", "1"])
            .arg("--data")
            .arg(&data)
            .arg("--out")
            .arg(&out)
            .output()
            .expect("running python3");
        if !py.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&py.stderr));
            panic!("numpy side failed");
        }
        let line = String::from_utf8_lossy(&py.stdout)
            .lines()
            .last()
            .unwrap_or_default()
            .to_owned();
        let at = line
            .find("\"min_s\": ")
            .unwrap_or_else(|| panic!("min_s missing in {line}"))
            + 9;
        let rest = &line[at..];
        let t = rest[..rest.find([',', '}']).unwrap_or(rest.len())]
            .trim()
            .parse()
            .expect("number");
        (t, line)
    };
    let _ = kth_neighbour_radii(x.slice(ndarray::s![..1024.min(n), ..]), k).unwrap(); // warm-up
    let (mut np_times, mut times) = (Vec::new(), Vec::new());
    let mut radii = None;
    let mut line = String::new();
    for _ in 0..repeats {
        let (t, l) = numpy_run();
        np_times.push(t);
        line = l;
        let t0 = Instant::now();
        let r = kth_neighbour_radii(black_box(x.view()), k).unwrap();
        times.push(t0.elapsed().as_secs_f64());
        radii = Some(r);
    }
    let radii = radii.expect("at least one run");
    times.sort_by(f64::total_cmp);
    np_times.sort_by(f64::total_cmp);
    let (ours_min, ours_median) = (times[0], times[times.len() / 2]);
    let (np_min, np_median) = (np_times[0], np_times[np_times.len() / 2]);

    // Correctness: brute-force exact float64 on a sample of rows, and the
    // float32 numpy radii for comparison.
    let mut max_exact_diff = 0.0f64;
    for i in (0..n).step_by((n / 16).max(1)) {
        let mut row: Vec<f64> = (0..n)
            .filter(|&j| j != i)
            .map(|j| squared_distance(x.row(i), x.row(j)).unwrap())
            .collect();
        row.select_nth_unstable_by(k - 1, f64::total_cmp);
        max_exact_diff = max_exact_diff.max((row[k - 1].sqrt() - radii[i]).abs());
    }
    let np_bytes = std::fs::read(&out).expect("numpy radii");
    let max_np_rel = np_bytes
        .chunks_exact(8)
        .zip(radii.iter())
        .map(|(b, &r)| {
            let v = f64::from_le_bytes(b.try_into().expect("8 bytes"));
            (v - r).abs() / r
        })
        .fold(0.0f64, f64::max);
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "runs   numpy {np_times:.3?} s, ours {times:.3?} s; load average after: {}",
        load()
    );

    println!(
        "numpy  ({}) : min {np_min:.3} s, median {np_median:.3} s",
        {
            let at = line.find("\"blas\": \"").map(|p| p + 9).unwrap_or(0);
            &line[at..at + line[at..].find('"').unwrap_or(0)]
        }
    );
    println!(
        "ours   (gen-metrics, faer f32 GEMM + exact f64 recheck): min {ours_min:.3} s, median {ours_median:.3} s"
    );
    println!(
        "ratio  numpy / ours: {:.2}x (min), {:.2}x (median)",
        np_min / ours_min,
        np_median / ours_median
    );
    println!(
        "check  ours vs brute-force exact f64 (sampled rows): max |diff| = {max_exact_diff:e}"
    );
    println!("check  numpy float32 radii vs ours: max relative diff = {max_np_rel:.2e}");
}

fn rayon_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let Some(pos) = args.iter().position(|a| a == "--side-by-side") {
        side_by_side(&args[pos + 1..]);
        return;
    }
    let mut c = Criterion::default().configure_from_args();
    criterion_benches(&mut c);
    c.final_summary();
}
