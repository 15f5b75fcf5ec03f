//! FID against the conformance corpus (`fd_pytorch_fid` of every case that has
//! it, the ranking case's per-model values), with the README's tolerances:
//! 1e-9 relative where both sets have `N > D`, 1e-9 absolute on `identical`,
//! 1e-6 relative where `N ≤ D` (pytorch-fid's sqrtm is only ~1e-8 accurate
//! there), and 1e-12 relative of the Gram/SVD branch against the exact
//! `fd_mp40_exact_data` / `fd_gram_svd_f64`. Plus the error contract.

use gen_metrics_distribution::fid::Fid;
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_linalg::{FrechetBranch, FrechetMethod, GaussianStats};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

#[test]
fn fid_matches_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let mut pairs: Vec<(String, String, Option<f64>)> = Vec::new();
        if case.has("fake.npy") && case.value("fd_pytorch_fid").is_some() {
            pairs.push((
                name.clone(),
                "fake.npy".into(),
                case.value("fd_pytorch_fid"),
            ));
        }
        for i in 0.. {
            let Some(v) = case.value(&format!("model{i}_fd_pytorch_fid")) else {
                break;
            };
            pairs.push((format!("{name}/model{i}"), format!("fake_{i}.npy"), Some(v)));
        }
        for (label, fake_file, want) in pairs {
            let want = want.unwrap();
            let real: Array2<f32> = case.array2("real.npy");
            let fake: Array2<f32> = case.array2(&fake_file);
            let d = real.ncols();
            let full_rank = real.nrows() > d && fake.nrows() > d;
            let out = Fid::default().compute(real.view(), fake.view()).unwrap();
            let stats = Fid::default()
                .compute_from_stats(
                    &GaussianStats::from_features(real.view()).unwrap(),
                    &GaussianStats::from_features(fake.view()).unwrap(),
                )
                .unwrap();
            assert_eq!((out.n_real, out.n_fake), (real.nrows(), fake.nrows()));
            if want.abs() < 1e-9 {
                assert_close(&label, out.value, want, 0.0, 1e-9);
                assert_close(&label, stats.value, want, 0.0, 1e-9);
                eprintln!(
                    "{label}: fd_pytorch_fid abs err {:.3e}",
                    (out.value - want).abs()
                );
            } else if full_rank {
                assert_eq!(out.branch, FrechetBranch::Cholesky, "{label}");
                assert_close(&label, out.value, want, 1e-9, 0.0);
                assert_close(&label, stats.value, want, 1e-9, 0.0);
                eprintln!(
                    "{label}: fd_pytorch_fid rel err {:.3e}",
                    rel(out.value, want)
                );
            } else {
                assert_eq!(out.branch, FrechetBranch::GramSvd, "{label}");
                assert_eq!(stats.branch, FrechetBranch::SymmetricEigen, "{label}");
                assert_close(&label, out.value, want, 1e-6, 0.0);
                assert_close(&label, stats.value, want, 1e-6, 0.0);
                eprintln!(
                    "{label}: fd_pytorch_fid rel err gram {:.3e} eigh {:.3e}",
                    rel(out.value, want),
                    rel(stats.value, want)
                );
                for key in ["fd_mp40_exact_data", "fd_gram_svd_f64"] {
                    if let Some(w) = case.value(key) {
                        assert_close(&format!("{label} {key}"), out.value, w, 1e-12, 0.0);
                        eprintln!("{label}: {key} rel err {:.3e}", rel(out.value, w));
                    }
                }
            }
            seen += 1;
        }
    }
    assert!(seen >= 14, "only {seen} FID cases found");
}

#[test]
fn forced_eigen_method_on_singular_case() {
    let case = Case::load("rank_deficient");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let out = Fid::new()
        .method(FrechetMethod::SymmetricEigen)
        .compute(real.view(), fake.view())
        .unwrap();
    assert_eq!(out.branch, FrechetBranch::SymmetricEigen);
    assert!(out.clamped_negative_eigs > 0);
    assert_close(
        "rank_deficient eigh",
        out.value,
        case.value("fd_eigh_f64").unwrap(),
        1e-6,
        0.0,
    );
    // The output serializes with the branch name.
    let json = format!("{:?}", out.branch);
    assert_eq!(json, "SymmetricEigen");
}

#[test]
fn fid_errors() {
    let x = Array2::<f32>::from_shape_fn((10, 4), |(i, j)| (i * 4 + j) as f32 * 0.1);
    let empty = Array2::<f32>::zeros((0, 4));
    let one = Array2::<f32>::zeros((1, 4));
    let other_d = Array2::<f32>::zeros((10, 3));
    let fid = Fid::default();
    assert!(matches!(
        fid.compute(empty.view(), x.view()),
        Err(MetricError::TooFewSamples { set: "real", .. })
    ));
    assert!(matches!(
        fid.compute(x.view(), one.view()),
        Err(MetricError::TooFewSamples { set: "fake", .. })
    ));
    assert!(matches!(
        fid.compute(x.view(), other_d.view()),
        Err(MetricError::DimensionMismatch {
            real: 4,
            fake: 3,
            ..
        })
    ));
    let mut nan = x.clone();
    nan[[3, 2]] = f32::NAN;
    assert!(matches!(
        fid.compute(x.view(), nan.view()),
        Err(MetricError::NonFinite {
            set: "fake",
            row: 3,
            col: 2,
            ..
        })
    ));
    let mut inf = x.clone();
    inf[[0, 0]] = f32::INFINITY;
    assert!(matches!(
        fid.compute(inf.view(), x.view()),
        Err(MetricError::NonFinite {
            set: "real",
            row: 0,
            col: 0,
            ..
        })
    ));
    let a = GaussianStats::from_features(x.view()).unwrap();
    let b = GaussianStats::from_features(other_d.view()).unwrap();
    assert!(matches!(
        fid.compute_from_stats(&a, &b),
        Err(MetricError::DimensionMismatch { .. })
    ));
    // Hand-built statistics with a NaN are rejected, not propagated.
    let mut bad = a.clone();
    bad.cov[[1, 1]] = f64::NAN;
    assert!(matches!(
        fid.compute_from_stats(&a, &bad),
        Err(MetricError::Linalg(_))
    ));
}
