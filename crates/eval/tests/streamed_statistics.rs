//! FID-type evaluations of feature files stream each file into its Gaussian
//! statistics (`source::stream_statistics`) instead of holding the rows: the
//! values must be those of the rows, the errors those of the whole read, and
//! everything that needs the rows (intervals, other metrics) must still get them.

use gen_metrics_eval::{Evaluation, SetKind, SetSource};
use ndarray::Array2;

fn features(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut s = seed;
    Array2::from_shape_fn((n, d), |(_, j)| {
        s = s
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let u = ((s >> 40) as f32) / (1u64 << 24) as f32;
        // Non-negative, with column-dependent means and scales (pool3-like).
        (u * (1.0 + (j % 7) as f32)).max(0.0) + (j % 5) as f32 * 0.1
    })
}

fn write(dir: &std::path::Path, name: &str, a: &Array2<f32>) -> std::path::PathBuf {
    let p = dir.join(name);
    gen_metrics_io::write_features(&p, a.view(), false).unwrap();
    p
}

fn close(a: f64, b: f64, rel: f64) {
    assert!((a - b).abs() <= rel * b.abs(), "{a} vs {b}");
}

#[test]
fn streamed_fid_equals_the_rows_fid_and_needs_of_rows_still_get_rows() {
    let dir = tempfile::tempdir().unwrap();
    // N > D (streamed, chunks of 512 rows: a partial last chunk) on one side,
    // and N > D on the other with another size.
    let (x, y) = (features(1300, 48, 1), features(900, 48, 2));
    let (px, py) = (
        write(dir.path(), "x.npy", &x),
        write(dir.path(), "y.npy", &y),
    );
    let from_files = Evaluation::between(&px, &py)
        .metrics(["fid", "fd_eff"])
        .run()
        .unwrap();
    let in_memory = Evaluation::between(
        SetSource::Features(x.clone()),
        SetSource::Features(y.clone()),
    )
    .metrics(["fid", "fd_eff"])
    .run()
    .unwrap();
    for key in ["fid", "fd_eff"] {
        close(
            from_files.value(key).unwrap(),
            in_memory.value(key).unwrap(),
            1e-12,
        );
    }
    // Still reported as feature files, with their row counts.
    let real = from_files.real.as_ref().unwrap();
    assert_eq!((real.kind, real.n), (SetKind::Features, 1300));
    assert_eq!(from_files.sets[0].set.n, 900);

    // Intervals resample the rows: the files are read whole, as before.
    let with_ci = Evaluation::between(&px, &py)
        .metrics(["fid"])
        .intervals(8)
        .run()
        .unwrap();
    close(
        with_ci.value("fid").unwrap(),
        in_memory.value("fid").unwrap(),
        1e-12,
    );
    assert!(with_ci.sets[0].get("fid").unwrap().interval.is_some());
    // A metric that needs rows beside FID: rows.
    let with_kid = Evaluation::between(&px, &py)
        .metrics(["fid", "kid"])
        .run()
        .unwrap();
    assert!(with_kid.value("kid_full").is_some());
    close(
        with_kid.value("fid").unwrap(),
        in_memory.value("fid").unwrap(),
        1e-12,
    );

    // N ≤ D keeps the centred rows (not streamed): same value either way.
    let (s, t) = (features(40, 48, 3), features(30, 48, 4));
    let (ps, pt) = (
        write(dir.path(), "s.npy", &s),
        write(dir.path(), "t.npy", &t),
    );
    let small_files = Evaluation::between(&ps, &pt)
        .metrics(["fid"])
        .run()
        .unwrap();
    let small_memory = Evaluation::between(SetSource::Features(s), SetSource::Features(t))
        .metrics(["fid"])
        .run()
        .unwrap();
    assert_eq!(small_files.value("fid"), small_memory.value("fid"));
}

#[test]
fn a_damaged_feature_file_is_reported_as_by_the_whole_read() {
    let dir = tempfile::tempdir().unwrap();
    let x = features(1300, 48, 1);
    let mut y = features(900, 48, 2);
    y[[850, 3]] = f32::INFINITY;
    let (px, py) = (write(dir.path(), "x.npy", &x), dir.path().join("y.npy"));
    // write_features refuses non-finite values; write the file directly.
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&y, &mut bytes).unwrap();
    std::fs::write(&py, bytes).unwrap();
    let err = Evaluation::between(&px, &py)
        .metrics(["fid"])
        .run()
        .unwrap_err();
    let whole = gen_metrics_io::read_features(&py).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("y.npy") && msg.contains(&whole.to_string()),
        "{msg}"
    );
}
