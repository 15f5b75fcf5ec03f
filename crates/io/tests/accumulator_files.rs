//! Accumulator state files: written by one process, read and merged by
//! another, equal to the one-shot statistics; every malformed file a typed
//! error.

use gen_metrics_io::{IoError, read_accumulator, write_accumulator};
use gen_metrics_linalg::{GaussianAccumulator, GaussianStats};
use ndarray::{Array0, Array2, array};
use ndarray_npy::NpzWriter;

/// Deterministic, correlated, offset rows (no RNG needed).
fn rows(n: usize, d: usize, offset: usize) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| {
        let t = (i + offset) as f32;
        100.0 + (t * 0.37 + j as f32).sin() * (1.0 + j as f32) + 0.01 * t
    })
}

fn write_npz(path: &std::path::Path, fill: impl FnOnce(&mut NpzWriter<std::fs::File>)) {
    let mut npz = NpzWriter::new(std::fs::File::create(path).unwrap());
    fill(&mut npz);
    npz.finish().unwrap();
}

#[test]
fn shards_written_and_merged_equal_the_one_shot_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let (d, n1, n2) = (7, 300, 450);
    let all = ndarray::concatenate![ndarray::Axis(0), rows(n1, d, 0), rows(n2, d, n1)];

    let mut first = GaussianAccumulator::new(d).unwrap();
    first.push(all.slice(ndarray::s![..n1, ..])).unwrap();
    let mut second = GaussianAccumulator::new(d).unwrap();
    second.push(all.slice(ndarray::s![n1.., ..])).unwrap();
    let (p1, p2) = (dir.path().join("rank0.npz"), dir.path().join("rank1.npz"));
    write_accumulator(&p1, &first, false).unwrap();
    write_accumulator(&p2, &second, false).unwrap();

    let mut merged = read_accumulator(&p1).unwrap();
    assert_eq!(merged.to_parts(), first.to_parts(), "bit-exact round trip");
    merged.merge(&read_accumulator(&p2).unwrap()).unwrap();
    assert_eq!(merged.count(), n1 + n2);
    let got = merged.finalize(1).unwrap();
    let want = GaussianStats::from_features(all.view()).unwrap();
    let scale = want.cov.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let cov_err = (&got.cov - &want.cov)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    let mean_err = (&got.mean - &want.mean)
        .iter()
        .fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(cov_err <= 1e-12 * scale, "cov error {cov_err}");
    assert!(mean_err <= 1e-12 * 100.0, "mean error {mean_err}");

    // Never clobbered unasked; overwriting when asked.
    let err = write_accumulator(&p1, &second, false).unwrap_err();
    assert!(matches!(err, IoError::WouldOverwrite { .. }), "{err}");
    assert_eq!(read_accumulator(&p1).unwrap().count(), n1);
    write_accumulator(&p1, &second, true).unwrap();
    assert_eq!(read_accumulator(&p1).unwrap().count(), n2);

    // An empty accumulator is a valid state too.
    let p0 = dir.path().join("empty.npz");
    write_accumulator(&p0, &GaussianAccumulator::new(d).unwrap(), false).unwrap();
    assert_eq!(read_accumulator(&p0).unwrap().count(), 0);
}

#[test]
fn numpy_written_files_are_read() {
    // As `np.savez(p, n=np.array([3], dtype=np.uint64), mean=..., comoment=...)`.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("numpy.npz");
    write_npz(&p, |npz| {
        npz.add_array("n", &array![3u64]).unwrap();
        npz.add_array("mean", &array![1.0f64, 2.0]).unwrap();
        npz.add_array("comoment", &array![[2.0f64, 1.0], [1.0, 4.0]])
            .unwrap();
    });
    let acc = read_accumulator(&p).unwrap();
    assert_eq!(acc.count(), 3);
    let s = acc.finalize(1).unwrap();
    assert_eq!(s.cov, array![[1.0, 0.5], [0.5, 2.0]]);
}

#[test]
fn malformed_accumulator_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mean = array![1.0f64, 2.0];
    let comoment = array![[2.0f64, 1.0], [1.0, 4.0]];
    let n = Array0::from_elem((), 3i64);
    type Fill = Box<dyn FnOnce(&mut NpzWriter<std::fs::File>)>;
    let cases: Vec<(&str, Fill, &str)> = vec![
        (
            "no comoment",
            Box::new({
                let (n, mean) = (n.clone(), mean.clone());
                move |z| {
                    z.add_array("n", &n).unwrap();
                    z.add_array("mean", &mean).unwrap();
                }
            }),
            "missing",
        ),
        (
            "float32 comoment",
            Box::new({
                let (n, mean, c) = (n.clone(), mean.clone(), comoment.mapv(|v| v as f32));
                move |z| {
                    z.add_array("n", &n).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "dtype <f4",
        ),
        (
            "negative n",
            Box::new({
                let (mean, c) = (mean.clone(), comoment.clone());
                move |z| {
                    z.add_array("n", &Array0::from_elem((), -5i64)).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "non-negative row count",
        ),
        (
            "float n",
            Box::new({
                let (mean, c) = (mean.clone(), comoment.clone());
                move |z| {
                    z.add_array("n", &Array0::from_elem((), 3.0f64)).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "dtype <f8",
        ),
        (
            "two counts",
            Box::new({
                let (mean, c) = (mean.clone(), comoment.clone());
                move |z| {
                    z.add_array("n", &array![3i64, 4]).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "a scalar",
        ),
        (
            "shape mismatch",
            Box::new({
                let n = n.clone();
                move |z| {
                    z.add_array("n", &n).unwrap();
                    z.add_array("mean", &array![1.0f64, 2.0, 3.0]).unwrap();
                    z.add_array("comoment", &Array2::<f64>::eye(2)).unwrap();
                }
            }),
            "to match 'mean' of length 3",
        ),
        (
            "asymmetric",
            Box::new({
                let (n, mean) = (n.clone(), mean.clone());
                move |z| {
                    z.add_array("n", &n).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &array![[2.0f64, 1.0], [0.0, 4.0]])
                        .unwrap();
                }
            }),
            "not symmetric",
        ),
        (
            "nan mean",
            Box::new({
                let (n, c) = (n.clone(), comoment.clone());
                move |z| {
                    z.add_array("n", &n).unwrap();
                    z.add_array("mean", &array![f64::NAN, 0.0]).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "non-finite",
        ),
        (
            "data with n = 0",
            Box::new({
                let (mean, c) = (mean.clone(), comoment.clone());
                move |z| {
                    z.add_array("n", &Array0::from_elem((), 0i64)).unwrap();
                    z.add_array("mean", &mean).unwrap();
                    z.add_array("comoment", &c).unwrap();
                }
            }),
            "n = 0",
        ),
    ];
    for (name, fill, expected) in cases {
        let p = dir.path().join(format!("{}.npz", name.replace(' ', "_")));
        write_npz(&p, fill);
        let err = read_accumulator(&p).expect_err(name).to_string();
        assert!(
            err.contains(&*p.to_string_lossy()),
            "{name}: names the file: {err}"
        );
        assert!(err.contains(expected), "{name}: {err}");
    }

    let p = dir.path().join("not_a_zip.npz");
    std::fs::write(&p, b"definitely not a zip archive").unwrap();
    assert!(matches!(
        read_accumulator(&p),
        Err(IoError::MalformedNpz { .. })
    ));
}
