//! Accumulator state files: written by one process, read and merged by
//! another, equal to the one-shot statistics; every malformed file a typed
//! error.

use gen_metrics_io::{IoError, read_accumulator, write_accumulator};
use gen_metrics_linalg::{GaussianAccumulator, GaussianStats};
use ndarray::{Array0, Array2, ArrayD, array};
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

/// One member of a hand-made archive, of any dtype the tests need.
enum Member {
    I64(ArrayD<i64>),
    F64(ArrayD<f64>),
    F32(ArrayD<f32>),
}

impl Member {
    fn add(&self, z: &mut NpzWriter<std::fs::File>, name: &str) {
        match self {
            Member::I64(a) => z.add_array(name, a),
            Member::F64(a) => z.add_array(name, a),
            Member::F32(a) => z.add_array(name, a),
        }
        .unwrap();
    }
}

#[test]
fn malformed_accumulator_files_are_clear_errors() {
    use Member::{F32, F64, I64};
    let dir = tempfile::tempdir().unwrap();
    let n = || I64(Array0::from_elem((), 3i64).into_dyn());
    let mean = || F64(array![1.0f64, 2.0].into_dyn());
    let comoment = || array![[2.0f64, 1.0], [1.0, 4.0]];
    let good = || F64(comoment().into_dyn());
    // (case, members of the archive, what the error must say)
    type Case = (&'static str, Vec<(&'static str, Member)>, &'static str);
    let cases: Vec<Case> = vec![
        ("no comoment", vec![("n", n()), ("mean", mean())], "missing"),
        (
            "float32 comoment",
            vec![
                ("n", n()),
                ("mean", mean()),
                ("comoment", F32(comoment().mapv(|v| v as f32).into_dyn())),
            ],
            "dtype <f4",
        ),
        (
            "negative n",
            vec![
                ("n", I64(Array0::from_elem((), -5i64).into_dyn())),
                ("mean", mean()),
                ("comoment", good()),
            ],
            "non-negative row count",
        ),
        (
            "float n",
            vec![
                ("n", F64(Array0::from_elem((), 3.0f64).into_dyn())),
                ("mean", mean()),
                ("comoment", good()),
            ],
            "dtype <f8",
        ),
        (
            "two counts",
            vec![
                ("n", I64(array![3i64, 4].into_dyn())),
                ("mean", mean()),
                ("comoment", good()),
            ],
            "a scalar",
        ),
        (
            "shape mismatch",
            vec![
                ("n", n()),
                ("mean", F64(array![1.0f64, 2.0, 3.0].into_dyn())),
                ("comoment", F64(Array2::<f64>::eye(2).into_dyn())),
            ],
            "to match 'mean' of length 3",
        ),
        (
            "asymmetric",
            vec![
                ("n", n()),
                ("mean", mean()),
                (
                    "comoment",
                    F64(array![[2.0f64, 1.0], [0.0, 4.0]].into_dyn()),
                ),
            ],
            "not symmetric",
        ),
        (
            "nan mean",
            vec![
                ("n", n()),
                ("mean", F64(array![f64::NAN, 0.0].into_dyn())),
                ("comoment", good()),
            ],
            "non-finite",
        ),
        (
            "data with n = 0",
            vec![
                ("n", I64(Array0::from_elem((), 0i64).into_dyn())),
                ("mean", mean()),
                ("comoment", good()),
            ],
            "n = 0",
        ),
    ];
    for (name, members, expected) in cases {
        let p = dir.path().join(format!("{}.npz", name.replace(' ', "_")));
        write_npz(&p, |z| members.iter().for_each(|(m, a)| a.add(z, m)));
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
