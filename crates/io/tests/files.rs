//! Reading and writing feature and statistics files, and every way a file can
//! be malformed.

use std::io::Write;

use gen_metrics_io::{
    IoError, StatsFormat, read_features, read_statistics, write_features, write_statistics,
};
use ndarray::{Array1, Array2, ShapeBuilder, array};
use ndarray_npy::{NpzWriter, WriteNpyExt};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn npy_bytes<T: WriteNpyExt>(a: &T) -> Vec<u8> {
    let mut v = Vec::new();
    a.write_npy(&mut v).expect("write npy");
    v
}

#[test]
fn conformance_features_read_as_float32() {
    let case = gen_metrics_testkit::Case::load("gauss_shift");
    let x = read_features(case.dir.join("real.npy")).expect("reads");
    assert_eq!(x.dim(), (2000, 64));
    let reference: Array2<f32> = case.array2("real.npy");
    assert_eq!(x, reference);
}

#[test]
fn float64_and_fortran_order_are_read() {
    let d = tmp();
    let a = array![[1.0f64, 2.0, 3.0], [4.0, 5.0, 6.0]];
    let p = d.path().join("f64.npy");
    std::fs::write(&p, npy_bytes(&a)).unwrap();
    assert_eq!(read_features(&p).unwrap(), a.mapv(|v| v as f32));

    let mut f = Array2::<f32>::zeros((2, 3).f());
    f.assign(&a.mapv(|v| v as f32));
    let p = d.path().join("fortran.npy");
    std::fs::write(&p, npy_bytes(&f)).unwrap();
    assert!(
        String::from_utf8_lossy(&std::fs::read(&p).unwrap()[..80])
            .contains("'fortran_order': True")
    );
    let back = read_features(&p).unwrap();
    assert!(back.is_standard_layout());
    assert_eq!(back, a.mapv(|v| v as f32));
}

/// A version-1.0 `.npy` whose header declares `shape` over only `data`.
fn npy_with_header(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    bytes
}

#[test]
fn malformed_npy_files_are_clear_errors() {
    let d = tmp();
    let good = npy_bytes(&Array2::<f32>::ones((4, 3)));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("not npy", b"hello world, not an array".to_vec()),
        ("truncated", good[..good.len() - 5].to_vec()),
        ("extra", [good.clone(), vec![0u8; 7]].concat()),
        // A header declaring 32 TB over 64 bytes: refused before any
        // allocation (the decoder would otherwise abort the process).
        (
            "huge shape",
            npy_with_header("<f8", "(2000000, 2000000)", &[0u8; 64]),
        ),
        (
            "overflowing shape",
            npy_with_header("<f4", "(18446744073709551615, 3)", &[0u8; 64]),
        ),
        ("int dtype", npy_bytes(&Array2::<i32>::zeros((2, 2)))),
        ("uint8 dtype", npy_bytes(&Array2::<u8>::zeros((2, 2)))),
        ("rank 1", npy_bytes(&Array1::<f32>::zeros(5))),
        (
            "rank 3",
            npy_bytes(&ndarray::Array3::<f32>::zeros((2, 2, 2))),
        ),
        ("nan", npy_bytes(&array![[1.0f32, f32::NAN]])),
        ("inf", npy_bytes(&array![[f32::INFINITY, 1.0f32]])),
    ];
    for (name, bytes) in cases {
        let p = d.path().join(format!("{name}.npy"));
        std::fs::write(&p, &bytes).unwrap();
        let err = read_features(&p).expect_err(name);
        let msg = err.to_string();
        assert!(
            msg.contains(&*p.to_string_lossy()),
            "{name}: message names the file: {msg}"
        );
        match (name, &err) {
            (
                "empty" | "not npy" | "truncated" | "extra" | "huge shape" | "overflowing shape",
                IoError::MalformedNpy { .. },
            )
            | ("int dtype" | "uint8 dtype", IoError::WrongDtype { .. })
            | ("rank 1" | "rank 3", IoError::WrongShape { .. })
            | ("nan" | "inf", IoError::NonFinite { .. }) => {}
            _ => panic!("{name}: unexpected error {err:?}"),
        }
        // The first NaN / infinity by row and column, not by flat index.
        match name {
            "nan" => assert!(
                msg.ends_with("(NaN or infinity) at row 0, column 1"),
                "{msg}"
            ),
            "inf" => assert!(
                msg.ends_with("(NaN or infinity) at row 0, column 0"),
                "{msg}"
            ),
            _ => {}
        }
    }
    let missing = read_features(d.path().join("nope.npy")).unwrap_err();
    assert!(matches!(missing, IoError::Os { .. }));
}

/// An uncompressed `.npz` at `dir/name` holding each `(member, .npy bytes)`.
fn write_npz(dir: &std::path::Path, name: &str, members: &[(&str, Vec<u8>)]) -> std::path::PathBuf {
    let p = dir.join(name);
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    for (m, bytes) in members {
        z.start_file(format!("{m}.npy"), zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(bytes).unwrap();
    }
    z.finish().unwrap();
    p
}

/// A version-1.0 `.npy` like [`npy_with_header`], in Fortran order.
fn npy_with_fortran_header(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let c = npy_with_header(descr, shape, data);
    let header_len = usize::from(u16::from_le_bytes([c[8], c[9]]));
    let header = String::from_utf8(c[10..10 + header_len].to_vec()).unwrap();
    let header = header.replace("'fortran_order': False,", "'fortran_order': True, ");
    let mut bytes = c[..10].to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    assert_eq!(bytes.len(), c.len());
    bytes
}

/// float16 feature files (how features are often stored, at half the size)
/// read widened exactly to float32, in either byte order and either memory
/// order; big-endian float32 and float64 read too. The bits: 1.0 = 0x3C00,
/// −2.0 = 0xC000, 0.5 = 0x3800, 65504 (the largest float16) = 0x7BFF,
/// 2⁻²⁴ (the smallest subnormal) = 0x0001, −0.0 = 0x8000.
#[test]
fn float16_and_big_endian_feature_files_read_exactly() {
    let d = tmp();
    let bits: [u16; 6] = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x8000];
    let want = array![[1.0f32, -2.0, 0.5], [65504.0, 2f32.powi(-24), -0.0]];
    let le: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
    let be: Vec<u8> = bits.iter().flat_map(|b| b.to_be_bytes()).collect();
    // Fortran order: column by column.
    let col: Vec<u8> = [0, 3, 1, 4, 2, 5]
        .iter()
        .flat_map(|&i| bits[i].to_le_bytes())
        .collect();
    let cases = [
        ("le", npy_with_header("<f2", "(2, 3)", &le)),
        ("be", npy_with_header(">f2", "(2, 3)", &be)),
        ("fortran", npy_with_fortran_header("<f2", "(2, 3)", &col)),
    ];
    for (name, bytes) in cases {
        let p = d.path().join(format!("{name}.npy"));
        std::fs::write(&p, bytes).unwrap();
        let got = read_features(&p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got.dim(), (2, 3), "{name}");
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(g.to_bits(), w.to_bits(), "{name}");
        }
    }
    let f32_be: Vec<u8> = want.iter().flat_map(|v| v.to_be_bytes()).collect();
    let f64_be: Vec<u8> = want
        .iter()
        .flat_map(|v| f64::from(*v).to_be_bytes())
        .collect();
    for (name, bytes) in [
        ("be4", npy_with_header(">f4", "(2, 3)", &f32_be)),
        ("be8", npy_with_header(">f8", "(2, 3)", &f64_be)),
    ] {
        let p = d.path().join(format!("{name}.npy"));
        std::fs::write(&p, bytes).unwrap();
        assert_eq!(read_features(&p).expect(name), want, "{name}");
    }
    // The same errors as the other dtypes: truncated, bytes after the data,
    // another rank, infinity (0x7C00) and NaN (0x7E00).
    let bad = [
        ("short", npy_with_header("<f2", "(2, 3)", &le[..11])),
        (
            "extra",
            npy_with_header("<f2", "(2, 3)", &[le.clone(), vec![0; 3]].concat()),
        ),
        ("rank 3", npy_with_header("<f2", "(1, 2, 3)", &le)),
        (
            "inf",
            npy_with_header("<f2", "(1, 2)", &[0x00, 0x3C, 0x00, 0x7C]),
        ),
        (
            "nan",
            npy_with_header("<f2", "(1, 2)", &[0x00, 0x7E, 0x00, 0x3C]),
        ),
    ];
    for (name, bytes) in bad {
        let p = d.path().join(format!("{name}.npy"));
        std::fs::write(&p, bytes).unwrap();
        let err = read_features(&p).expect_err(name);
        assert!(
            err.to_string().contains(&*p.to_string_lossy()),
            "{name}: {err}"
        );
        match (name, &err) {
            ("short" | "extra", IoError::MalformedNpy { .. })
            | ("rank 3", IoError::WrongShape { .. })
            | ("inf" | "nan", IoError::NonFinite { .. }) => {}
            _ => panic!("{name}: unexpected error {err:?}"),
        }
    }
}

/// Found by fuzzing (docs/fuzzing.md, target `npy`): a header that gives
/// `'shape'` twice. The length check read the first shape, `(3, 2)`, which
/// the 48 data bytes hold; the decoder keeps the last one, `(3, 2222222222)`,
/// and asked for 53 GB (`memory allocation ... failed`, abort). The check now
/// also uses the decoder's own reading of the header. Labels and statistics
/// members go through the same decoder.
#[test]
fn a_header_repeating_shape_is_refused_before_the_decoder_allocates() {
    let d = tmp();
    let mut header =
        "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), 'shape': (3, 2222222222), }"
            .to_owned();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 48]);
    let p = d.path().join("twice.npy");
    std::fs::write(&p, &bytes).unwrap();
    let err = read_features(&p).expect_err("inconsistent header");
    assert!(
        matches!(err, IoError::MalformedNpy { .. }),
        "unexpected error {err:?}"
    );
    assert!(err.to_string().contains("2222222222"), "{err}");
    assert!(gen_metrics_io::read_log_likelihoods(&p).is_err());
}

/// Found by fuzzing (docs/fuzzing.md, target `npy`): the decoder's header
/// parser backtracks exponentially in unclosed brackets; a 160-byte file
/// opening its header with 19 `{` did not finish in 60 s. Refused at once by
/// the nesting limit (a NumPy header nests at most 4 deep).
#[test]
fn a_header_of_nested_brackets_is_refused_at_once() {
    let d = tmp();
    let mut header =
        "{{{{{{{{{{{{{{{{{{{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".to_owned();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    bytes.extend(header.as_bytes());
    bytes.extend([0u8; 24]);
    let p = d.path().join("nested.npy");
    std::fs::write(&p, &bytes).unwrap();
    let started = std::time::Instant::now();
    let err = read_features(&p).expect_err("nested header");
    assert!(err.to_string().contains("nests brackets 20 deep"), "{err}");
    assert!(gen_metrics_io::read_labels(&p).is_err());
    assert!(gen_metrics_io::read_log_likelihoods(&p).is_err());
    // Not a timing assertion of the fix's speed: without it this took minutes.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn writes_are_atomic_and_never_clobber_unasked() {
    let d = tmp();
    let p = d.path().join("out.npy");
    let a = array![[1.0f32, 2.0], [3.0, 4.0]];
    write_features(&p, a.view(), false).unwrap();
    assert_eq!(read_features(&p).unwrap(), a);
    let b = array![[9.0f32, 9.0]];
    let err = write_features(&p, b.view(), false).unwrap_err();
    assert!(matches!(err, IoError::WouldOverwrite { .. }));
    assert_eq!(
        read_features(&p).unwrap(),
        a,
        "the existing file is untouched"
    );
    write_features(&p, b.view(), true).unwrap();
    assert_eq!(read_features(&p).unwrap(), b);
    let leftovers: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left behind");
}

#[test]
fn statistics_round_trip_and_formats() {
    let d = tmp();
    let mu = array![1.0, 2.0, 3.0];
    let sigma = array![[2.0, 0.5, 0.0], [0.5, 1.0, 0.1], [0.0, 0.1, 3.0]];
    let p = d.path().join("stats.npz");
    write_statistics(&p, mu.view(), sigma.view(), false).unwrap();
    let s = read_statistics(&p).unwrap();
    assert_eq!(
        (s.mu.clone(), s.sigma.clone(), s.format),
        (mu.clone(), sigma.clone(), StatsFormat::MuSigma)
    );
    assert!(write_statistics(&p, mu.view(), sigma.view(), false).is_err());

    // ADM reference batch: float32 members, images and spatial statistics.
    let p = d.path().join("adm.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("arr_0", &ndarray::Array4::<u8>::zeros((2, 4, 4, 3)))
        .unwrap();
    npz.add_array("mu", &mu.mapv(|v| v as f32)).unwrap();
    npz.add_array("sigma", &sigma.mapv(|v| v as f32)).unwrap();
    npz.add_array("mu_s", &array![0.5f64, 0.5]).unwrap();
    npz.add_array("sigma_s", &array![[1.0f64, 0.0], [0.0, 1.0]])
        .unwrap();
    npz.finish().unwrap();
    let s = read_statistics(&p).unwrap();
    assert_eq!(s.format, StatsFormat::AdmReferenceBatch);
    assert_eq!(s.mu, mu);
    assert_eq!(s.spatial.unwrap().0, array![0.5, 0.5]);
}

/// Feature matrices in `.npz` archives: dgm-eval's `save_outputs` file
/// (`np.savez(path, model='dinov2', reps=float64 [N, D], hparams={...})`,
/// whose `model` is a 0-d unicode array and `hparams` a pickled object that
/// is never read), a `features` member, and `np.savez(path, x)`'s single
/// `arr_0`; an archive of several other members is
/// [`IoError::MissingMember`], a uint8 image array [`IoError::WrongDtype`].
#[test]
fn npz_feature_files_read_their_matrix_member() {
    use gen_metrics_io::read_npz_features;
    let d = tmp();
    let write = |name: &str, members: &[(&str, Vec<u8>)]| write_npz(d.path(), name, members);
    let x = array![[1.0f32, -2.5, 3.0], [0.25, 5.0, -6.0]];
    let model = npy_with_header(
        "<U6",
        "()",
        &"dinov2"
            .chars()
            .flat_map(|c| (c as u32).to_le_bytes())
            .collect::<Vec<_>>(),
    );
    // A pickle protocol-2 dict as numpy writes an object array; its bytes
    // are never parsed.
    let hparams = npy_with_header("|O", "()", b"\x80\x02}q\x00.");
    let dgm = write(
        "dgm.npz",
        &[
            ("model", model),
            ("reps", npy_bytes(&x.mapv(f64::from))),
            ("hparams", hparams),
        ],
    );
    let named = write(
        "named.npz",
        &[
            ("labels", npy_bytes(&array![0i64, 1])),
            ("features", npy_bytes(&x)),
        ],
    );
    let single = write("single.npz", &[("arr_0", npy_bytes(&x))]);
    for (p, member) in [(&dgm, "reps"), (&named, "features"), (&single, "arr_0")] {
        let (got, name) = read_npz_features(p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((got, name.as_str()), (x.clone(), member));
    }
    let other = write("other.npz", &[("a", npy_bytes(&x)), ("b", npy_bytes(&x))]);
    let err = read_npz_features(&other).unwrap_err();
    assert!(matches!(err, IoError::MissingMember { .. }), "{err:?}");
    let images = write(
        "images.npz",
        &[(
            "arr_0",
            npy_bytes(&ndarray::Array4::<u8>::zeros((2, 4, 4, 3))),
        )],
    );
    let err = read_npz_features(&images).unwrap_err();
    assert!(matches!(err, IoError::WrongDtype { .. }), "{err:?}");
    let bad = write(
        "nan.npz",
        &[("reps", npy_bytes(&array![[1.0f32, f32::NAN]]))],
    );
    let err = read_npz_features(&bad).unwrap_err().to_string();
    assert!(
        err.ends_with(
            "nan.npz (member 'reps'): non-finite value (NaN or infinity) at row 0, column 1"
        ),
        "{err}"
    );
}

#[test]
fn malformed_statistics_are_clear_errors() {
    let d = tmp();
    let write = |name: &str, members: &[(&str, Vec<u8>)]| write_npz(d.path(), name, members);
    let mu = npy_bytes(&array![1.0f64, 2.0]);
    let sigma = npy_bytes(&array![[1.0f64, 0.0], [0.0, 1.0]]);
    // Regression (issue #12): `mu` without `sigma` is a damaged statistics
    // file, told apart from a file that is not statistics at all (which a
    // caller may hand to another reader): the CLI took it for an image array
    // and said "expected a uint8 image array ... convert with (x * 255)".
    let p = write("no_sigma.npz", &[("mu", mu.clone())]);
    let err = read_statistics(&p).unwrap_err();
    assert!(
        matches!(&err, IoError::IncompleteFile { member, .. } if member == "sigma"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: statistics file (mu, sigma) is missing member 'sigma' (found: mu); it needs mu and sigma",
            p.display()
        )
    );
    let p = write("other.npz", &[("arr_0", mu.clone())]);
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::MissingMember { .. }
    ));
    let p = write(
        "bad_shape.npz",
        &[
            ("mu", npy_bytes(&array![1.0f64, 2.0, 3.0])),
            ("sigma", sigma.clone()),
        ],
    );
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::WrongShape { .. }
    ));
    let p = write(
        "asym.npz",
        &[
            ("mu", mu.clone()),
            ("sigma", npy_bytes(&array![[1.0f64, 0.3], [0.0, 1.0]])),
        ],
    );
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::WrongShape { .. }
    ));
    let p = write(
        "nan.npz",
        &[
            ("mu", npy_bytes(&array![1.0f64, f64::NAN])),
            ("sigma", sigma.clone()),
        ],
    );
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::NonFinite { .. }
    ));
    let p = write(
        "int.npz",
        &[("mu", npy_bytes(&array![1i64, 2])), ("sigma", sigma)],
    );
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::WrongDtype { .. }
    ));
    // A member whose header declares far more data than it holds.
    let p = write(
        "huge_sigma.npz",
        &[
            ("mu", mu.clone()),
            (
                "sigma",
                npy_with_header("<f8", "(3000000, 3000000)", &[0u8; 32]),
            ),
        ],
    );
    let err = read_statistics(&p).unwrap_err();
    assert!(
        matches!(&err, IoError::MalformedNpy { member: Some(m), .. } if m == "sigma"),
        "{err:?}"
    );
    assert!(err.to_string().contains("declares shape"), "{err}");
    let p = d.path().join("not_zip.npz");
    std::fs::write(&p, b"garbage").unwrap();
    assert!(matches!(
        read_statistics(&p).unwrap_err(),
        IoError::MalformedNpz { .. }
    ));
}

#[test]
fn labels_and_log_likelihoods() {
    use gen_metrics_io::{read_labels, read_log_likelihoods};
    let d = tmp();
    let p = d.path().join("l.npy");
    std::fs::write(&p, npy_bytes(&array![3u8, 0, 9])).unwrap();
    assert_eq!(read_labels(&p).unwrap(), vec![3, 0, 9]);
    std::fs::write(&p, npy_bytes(&array![3i64, 1])).unwrap();
    assert_eq!(read_labels(&p).unwrap(), vec![3, 1]);
    std::fs::write(&p, npy_bytes(&array![3i32, -1])).unwrap();
    let err = read_labels(&p).unwrap_err();
    assert!(
        matches!(err, IoError::InvalidValue { index: 1, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("l.npy: negative class label -1 (labels are 0, 1, 2, ...) at index 1"),
        "{err}"
    );
    std::fs::write(&p, npy_bytes(&array![1.0f32])).unwrap();
    assert!(matches!(
        read_labels(&p).unwrap_err(),
        IoError::WrongDtype { .. }
    ));
    let t = d.path().join("l.txt");
    std::fs::write(&t, "1\n2\n\n7\n").unwrap();
    assert_eq!(read_labels(&t).unwrap(), vec![1, 2, 7]);
    std::fs::write(&t, "1\nseven\n").unwrap();
    assert!(read_labels(&t).unwrap_err().to_string().contains("line 2"));

    let p = d.path().join("ll.npy");
    std::fs::write(&p, npy_bytes(&array![-1.5f64, f64::NEG_INFINITY])).unwrap();
    assert_eq!(read_log_likelihoods(&p).unwrap()[1], f64::NEG_INFINITY);
    std::fs::write(&p, npy_bytes(&array![f64::NAN])).unwrap();
    assert!(matches!(
        read_log_likelihoods(&p).unwrap_err(),
        IoError::NonFinite { .. }
    ));
    std::fs::write(&p, npy_bytes(&array![[1.0f64]])).unwrap();
    assert!(matches!(
        read_log_likelihoods(&p).unwrap_err(),
        IoError::WrongShape { .. }
    ));
}

/// Regression (issue #12): a statistics file whose `sigma` is symmetric but
/// not positive semi-definite was accepted and gave negative "distances".
/// Rounding-level negative eigenvalues (a rank-deficient covariance stored in
/// float32) are still accepted.
#[test]
fn statistics_with_an_invalid_covariance_are_refused() {
    let d = tmp();
    let p = d.path().join("indefinite.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("mu", &array![0.0f64, 0.0]).unwrap();
    npz.add_array("sigma", &array![[1.0f64, 2.0], [2.0, 1.0]])
        .unwrap();
    npz.finish().unwrap();
    let err = read_statistics(&p).unwrap_err();
    assert!(matches!(err, IoError::InvalidContent { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: sigma: not a valid covariance", p.display())),
        "{text}"
    );
    assert!(text.contains("-1e0"), "{text}");

    // Rank 3 in 40 dimensions, rounded to float32: eigenvalues of round-off
    // size on both sides of 0, accepted.
    let n = 4;
    let x = Array2::from_shape_fn((n, 40), |(i, j)| ((i * 7 + j * 3) % 11) as f64 / 3.0 - 1.2);
    let xc = &x - &x.mean_axis(ndarray::Axis(0)).unwrap();
    let cov = xc.t().dot(&xc) / (n - 1) as f64;
    let p = d.path().join("rank_deficient.npz");
    let mut npz = NpzWriter::new(std::fs::File::create(&p).unwrap());
    npz.add_array("mu", &Array1::<f32>::zeros(40)).unwrap();
    npz.add_array("sigma", &cov.mapv(|v| v as f32)).unwrap();
    npz.finish().unwrap();
    let s = read_statistics(&p).unwrap();
    assert_eq!(s.sigma.dim(), (40, 40));
}

/// Regression (issue #12): a float64 feature file with finite values near
/// 1e200 was reported as "non-finite value at flat index 0".
#[test]
fn float64_values_beyond_float32_are_reported_as_overflow() {
    let d = tmp();
    let p = d.path().join("big.npy");
    std::fs::write(&p, npy_bytes(&array![[1.0f64, 2.0], [3.0, 1e200]])).unwrap();
    let err = read_features(&p).unwrap_err();
    assert!(
        matches!(err, IoError::OverflowsFloat32 { index: 3, columns: 2, value, .. } if value == 1e200),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("1e200 at row 1, column 1") && text.contains("overflows float32"),
        "{text}"
    );
    assert!(!text.contains("non-finite"), "{text}");
    // Infinity itself is still non-finite.
    std::fs::write(&p, npy_bytes(&array![[1.0f64, f64::INFINITY]])).unwrap();
    assert!(matches!(
        read_features(&p).unwrap_err(),
        IoError::NonFinite { index: 1, .. }
    ));
}

/// Regression (issue #12): the atomic writers replaced a read-only file the
/// user owned (the rename needs only the folder to be writable), even with
/// `overwrite`; the shell's `>` refuses. Now refused, the file untouched.
#[test]
fn read_only_destinations_are_never_replaced() {
    let d = tmp();
    let p = d.path().join("out.npy");
    std::fs::write(&p, b"precious").unwrap();
    let mut perms = std::fs::metadata(&p).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&p, perms.clone()).unwrap();
    let x = Array2::<f32>::ones((2, 2));
    let err = write_features(&p, x.view(), true).unwrap_err();
    assert!(matches!(err, IoError::NotWritable { .. }), "{err:?}");
    assert!(err.to_string().contains("not writable"), "{err}");
    let mu = array![0.0, 0.0];
    let sigma = Array2::<f64>::eye(2);
    assert!(matches!(
        write_statistics(&p, mu.view(), sigma.view(), true).unwrap_err(),
        IoError::NotWritable { .. }
    ));
    assert_eq!(std::fs::read(&p).unwrap(), b"precious");
    assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&p, perms).unwrap();
    write_features(&p, x.view(), true).unwrap();
    assert_eq!(read_features(&p).unwrap(), x);
}
#[test]
fn atomic_write_replaces_whole_files_only() {
    let d = tmp();
    let path = d.path().join("file.bin");
    gen_metrics_io::write_atomic(&path, false, |w| w.write_all(b"first")).expect("write");
    assert_eq!(std::fs::read(&path).expect("read"), b"first");
    let refused = gen_metrics_io::write_atomic(&path, false, |w| w.write_all(b"other"));
    assert!(matches!(refused, Err(IoError::WouldOverwrite { .. })));
    gen_metrics_io::write_atomic(&path, true, |w| w.write_all(b"second version"))
        .expect("overwrite");
    assert_eq!(std::fs::read(&path).expect("read"), b"second version");
    // A writer that fails half way leaves the old file and no temporary.
    let err = gen_metrics_io::write_atomic(&path, true, |w| {
        w.write_all(b"partial")?;
        Err(std::io::Error::other("disk full"))
    })
    .expect_err("must fail");
    assert!(err.to_string().contains("disk full"), "{err}");
    assert_eq!(std::fs::read(&path).expect("read"), b"second version");
    let names: Vec<String> = std::fs::read_dir(d.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["file.bin"]);
}

#[test]
fn written_features_are_standard_npy_and_round_trip() {
    use ndarray_npy::ReadNpyExt;
    let d = tmp();
    let path = d.path().join("f.npy");
    let a = Array2::from_shape_fn((5, 7), |(i, j)| (i * 7 + j) as f32 * 0.5 - 3.0);
    write_features(&path, a.view(), false).expect("write");
    let back =
        Array2::<f32>::read_npy(std::fs::File::open(&path).expect("open")).expect("numpy format");
    assert_eq!(back, a);
    assert_eq!(read_features(&path).expect("read"), a);
    let bytes = gen_metrics_io::npy::npy_bytes_f32(a.view());
    assert_eq!(std::fs::read(&path).expect("read"), bytes);
    let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
    assert_eq!((10 + header_len) % 64, 0, "header aligned to 64 bytes");
    // A transposed (non-standard) view is written in C order.
    let t = gen_metrics_io::npy::npy_bytes_f32(a.t());
    std::fs::write(&path, &t).expect("write");
    assert_eq!(read_features(&path).expect("read"), a.t());
    // A truncated file is an error.
    std::fs::write(&path, &bytes[..bytes.len() - 4]).expect("truncate");
    assert!(matches!(
        read_features(&path),
        Err(IoError::MalformedNpy { .. })
    ));
}

#[test]
fn uint8_image_array_headers_are_checked_before_any_pixel_is_read() {
    use gen_metrics_io::ImageArray;
    use ndarray::{Array3, Array4};
    let here = std::path::Path::new("images.npy");
    let read =
        |bytes: &[u8]| ImageArray::read_header(&mut &bytes[..], bytes.len() as u64, here, None);
    let nhwc = npy_bytes(&Array4::<u8>::zeros((2, 4, 5, 3)));
    let a = read(&nhwc).expect("NHWC");
    assert_eq!((a.len, a.height, a.width, a.channels), (2, 4, 5, 3));
    assert_eq!(a.item_bytes(), 60);
    assert_eq!(a.data_offset as usize, nhwc.len() - 2 * 60);
    // The reader is left at the first pixel byte.
    let mut stream = &nhwc[..];
    ImageArray::read_header(&mut stream, nhwc.len() as u64, here, None).expect("NHWC");
    assert_eq!(stream.len(), 2 * 60);
    let gray = read(&npy_bytes(&Array3::<u8>::zeros((3, 2, 2)))).expect("NHW");
    assert_eq!((gray.len, gray.channels), (3, 1));

    let e = read(&npy_bytes(&Array4::<f32>::zeros((1, 2, 2, 3)))).expect_err("f32");
    assert!(matches!(e, IoError::WrongDtype { .. }), "{e}");
    let e = read(&npy_bytes(&Array4::<u8>::zeros((2, 3, 8, 8)))).expect_err("NCHW");
    assert!(e.to_string().contains("NCHW"), "{e}");
    let e = read(&npy_bytes(&Array2::<u8>::zeros((2, 3)))).expect_err("rank 2");
    assert!(matches!(e, IoError::WrongShape { .. }), "{e}");
    // A header declaring more pixels than the stream holds, labelled with
    // the member it came from.
    let e = ImageArray::read_header(
        &mut &nhwc[..],
        nhwc.len() as u64 - 1,
        here,
        Some("arr_0.npy"),
    )
    .expect_err("truncated");
    assert!(
        e.to_string().contains("truncated") && e.to_string().contains("arr_0.npy"),
        "{e}"
    );
    assert!(read(b"\x93NUMPY").is_err());
    assert!(read(b"not an npy file at all").is_err());
}

#[test]
fn feature_files_stream_in_row_chunks_with_the_whole_read_s_values_and_errors() {
    use gen_metrics_io::FeatureChunks;
    let d = tmp();
    // 700 × 600 float32: pieces of 1 MiB straddle rows and chunks.
    let a = Array2::from_shape_fn((700, 600), |(i, j)| {
        ((i * 600 + j) as f32 * 0.37).sin() * 1e3
    });
    let p = d.path().join("a.npy");
    std::fs::write(&p, npy_bytes(&a)).unwrap();
    let whole = read_features(&p).unwrap();
    assert_eq!(whole, a);
    let mut chunks = FeatureChunks::open(&p)
        .unwrap()
        .expect("the common case streams");
    assert_eq!(chunks.shape(), [700, 600]);
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while let Some(rows) = chunks.next_rows(256).unwrap() {
        sizes.push(rows.nrows());
        got.extend(rows.iter().copied());
    }
    assert_eq!(sizes, [256, 256, 188]);
    assert_eq!(Array2::from_shape_vec((700, 600), got).unwrap(), a);

    // A NaN deep in the file: the same error, at the same index, as the whole read.
    let mut bad = a.clone();
    bad[[650, 17]] = f32::NAN;
    let pb = d.path().join("bad.npy");
    std::fs::write(&pb, npy_bytes(&bad)).unwrap();
    let whole_err = read_features(&pb).unwrap_err();
    assert!(matches!(whole_err, IoError::NonFinite { index, .. } if index == 650 * 600 + 17));
    let mut chunks = FeatureChunks::open(&pb).unwrap().unwrap();
    let err = loop {
        match chunks.next_rows(300) {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the NaN was not reported"),
            Err(e) => break e,
        }
    };
    assert_eq!(err.to_string(), whole_err.to_string());
    assert!(err.to_string().contains("bad.npy"), "{err}");

    // Float64, Fortran order, damaged files: not streamed (read_features
    // decodes or reports them); a missing file is an error naming it.
    let f64_file = d.path().join("f64.npy");
    std::fs::write(&f64_file, npy_bytes(&Array2::<f64>::ones((3, 2)))).unwrap();
    let fortran = d.path().join("fortran.npy");
    std::fs::write(&fortran, npy_bytes(&Array2::<f32>::ones((3, 2).f()))).unwrap();
    let truncated = d.path().join("truncated.npy");
    let good = npy_bytes(&Array2::<f32>::ones((4, 3)));
    std::fs::write(&truncated, &good[..good.len() - 4]).unwrap();
    for path in [&f64_file, &fortran, &truncated] {
        assert!(
            FeatureChunks::open(path).unwrap().is_none(),
            "{}",
            path.display()
        );
    }
    let missing = FeatureChunks::open(d.path().join("missing.npy"))
        .err()
        .unwrap();
    assert!(missing.to_string().contains("missing.npy"), "{missing}");
}

/// A written file gets the permissions any new file gets (0666 less the
/// umask: the mode `File::create` gives in the same folder), not the
/// temporary file's 0600; a replaced file keeps its own.
#[cfg(unix)]
#[test]
fn atomic_writes_give_ordinary_permissions_and_keep_existing_ones() {
    use gen_metrics_io::write_atomic;
    use std::os::unix::fs::PermissionsExt;
    let d = tmp();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    let plain = d.path().join("plain");
    std::fs::File::create(&plain).unwrap();
    let new = d.path().join("new.npy");
    write_atomic(&new, false, |w| w.write_all(b"x")).unwrap();
    assert_eq!(mode(&new), mode(&plain));
    let kept = d.path().join("kept.npy");
    std::fs::write(&kept, b"old").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o640)).unwrap();
    write_atomic(&kept, true, |w| w.write_all(b"new")).unwrap();
    assert_eq!(std::fs::read(&kept).unwrap(), b"new");
    assert_eq!(mode(&kept), 0o640);
}
