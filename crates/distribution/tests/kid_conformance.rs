//! KID against every case of the conformance corpus: `kid_full_unbiased`
//! (also the ranking case's per-model values), clean-fid's subsets
//! (`kid_cleanfid_idx_{real,fake}.npy`, mean, derived std, per-subset values)
//! and torch-fidelity's (`kid_tfid_idx_{fake,real}.npy`, features_1 = fake).
//! Tolerances (README: float64 values agree to ~1e-14, ~2e-13 on
//! inception_like): 1e-12 relative for values; 1e-10 relative for the stds;
//! a std whose subsets are all permutations is pure round-off: 1e-10 absolute.
//!
//! One measured exception: the per-subset clean-fid values of
//! `inception_like` (MMD² ≈ 4e-4 from kernel means ≈ 1.12, a 2800-fold
//! cancellation). Recomputed in 80-bit long double from the stored indices,
//! the reference values deviate by up to 1.21e-12 relative (mean 4.4e-13): the
//! float64 rounding of clean-fid's own final combination. Ours (compensated
//! sums, double-double means) deviate from the long-double values by at most
//! 2.1e-15, so those 100 values are compared at 3e-12 relative; their mean
//! (errors average out) stays at 1e-12.

use gen_metrics_distribution::kid::{Kid, KidSubsets};
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

const REL: f64 = 1e-12;
const REL_STD: f64 = 1e-10;
const ABS_ROUNDOFF_STD: f64 = 1e-10;
/// Per-subset tolerance where the reference itself carries ~1.2e-12 (see top).
const REL_CANCELLING_SUBSET: f64 = 3e-12;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs()
}

fn idx(case: &Case, file: &str) -> Array2<usize> {
    case.array2::<u16>(file).mapv(usize::from)
}

fn per_subset(case: &Case, key: &str) -> Option<Vec<f64>> {
    case.arrays(&format!("/{key}"))
        .and_then(|v| v.as_array())
        .map(|a| a.iter().map(|x| x.as_f64().unwrap()).collect())
}

#[test]
fn kid_full_unbiased_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let mut pairs = Vec::new();
        if let Some(w) = case.value("kid_full_unbiased") {
            pairs.push((name.clone(), "fake.npy".to_string(), w));
        }
        for i in 0.. {
            let Some(w) = case.value(&format!("model{i}_kid_full_unbiased")) else {
                break;
            };
            pairs.push((format!("{name}/model{i}"), format!("fake_{i}.npy"), w));
        }
        for (label, file, want) in pairs {
            let real: Array2<f32> = case.array2("real.npy");
            let fake: Array2<f32> = case.array2(&file);
            let got = Kid::new().full_unbiased(real.view(), fake.view()).unwrap();
            assert_close(&format!("{label} kid_full_unbiased"), got, want, REL, 0.0);
            eprintln!("{label}: kid_full_unbiased rel err {:.3e}", rel(got, want));
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} KID cases");
}

#[test]
fn kid_cleanfid_subsets_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let Some(want_mean) = case.value("kid_cleanfid_mean") else {
            continue;
        };
        let real: Array2<f32> = case.array2("real.npy");
        let fake: Array2<f32> = case.array2("fake.npy");
        let m_used = case
            .param("/kid_cleanfid/subset_size_used")
            .and_then(|v| v.as_u64())
            .unwrap() as usize;
        let kid = Kid::new();
        assert_eq!(
            kid.effective_subset_size(real.nrows(), fake.nrows()),
            m_used,
            "{name}"
        );
        let want_std = case.value("kid_cleanfid_std_derived").unwrap();
        let permutations = real.nrows() == m_used && fake.nrows() == m_used;
        let out = if case.has("kid_cleanfid_idx_real.npy") {
            let subsets = KidSubsets {
                real: idx(&case, "kid_cleanfid_idx_real.npy"),
                fake: idx(&case, "kid_cleanfid_idx_fake.npy"),
            };
            kid.compute_with_subsets(real.view(), fake.view(), &subsets)
                .unwrap()
        } else {
            // Both sets have exactly m rows: every subset is a permutation, so
            // any subsets (here our own seeded ones) reproduce clean-fid.
            assert!(
                permutations,
                "{name}: no clean-fid indices stored but subsets are not permutations"
            );
            kid.full_set(true)
                .compute(real.view(), fake.view())
                .unwrap()
        };
        assert_eq!(out.per_subset.len(), 100);
        assert_close(
            &format!("{name} kid_cleanfid_mean"),
            out.mean,
            want_mean,
            REL,
            0.0,
        );
        if permutations {
            assert_close(
                &format!("{name} kid_cleanfid_std_derived"),
                out.std,
                want_std,
                0.0,
                ABS_ROUNDOFF_STD,
            );
            let full = out.full_unbiased.unwrap_or(out.mean);
            assert_close(
                &format!("{name} full == subsets"),
                full,
                case.value("kid_full_unbiased").unwrap(),
                REL,
                0.0,
            );
        } else {
            assert_close(
                &format!("{name} kid_cleanfid_std_derived"),
                out.std,
                want_std,
                REL_STD,
                0.0,
            );
        }
        let mut worst: f64 = 0.0;
        if let Some(ps) = per_subset(&case, "kid_cleanfid_per_subset") {
            assert_eq!(ps.len(), out.per_subset.len());
            for (s, (g, w)) in out.per_subset.iter().zip(&ps).enumerate() {
                let tol = if name == "inception_like" {
                    REL_CANCELLING_SUBSET
                } else {
                    REL
                };
                assert_close(&format!("{name} clean-fid subset {s}"), *g, *w, tol, 0.0);
                worst = worst.max(rel(*g, *w));
            }
        }
        eprintln!(
            "{name}: kid_cleanfid_mean rel err {:.3e}; std {} err {:.3e}; worst subset rel err {worst:.3e}",
            rel(out.mean, want_mean),
            if permutations { "abs" } else { "rel" },
            if permutations {
                (out.std - want_std).abs()
            } else {
                rel(out.std, want_std)
            }
        );
        seen += 1;
    }
    assert!(seen >= 7, "only {seen} clean-fid KID cases");
}

#[test]
fn kid_torch_fidelity_subsets_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let Some(want_mean) = case.value("kid_torch_fidelity_mean") else {
            continue;
        };
        let want_std = case.value("kid_torch_fidelity_std").unwrap();
        let real: Array2<f32> = case.array2("real.npy");
        let fake: Array2<f32> = case.array2("fake.npy");
        // torch-fidelity: features_1 = fake, features_2 = real.
        let subsets = KidSubsets {
            real: idx(&case, "kid_tfid_idx_real.npy"),
            fake: idx(&case, "kid_tfid_idx_fake.npy"),
        };
        let out = Kid::new()
            .compute_with_subsets(real.view(), fake.view(), &subsets)
            .unwrap();
        assert_eq!(out.subset_size, 1000);
        assert_close(
            &format!("{name} kid_torch_fidelity_mean"),
            out.mean,
            want_mean,
            REL,
            0.0,
        );
        let permutations = real.nrows() == 1000 && fake.nrows() == 1000;
        if permutations {
            assert_close(
                &format!("{name} kid_torch_fidelity_std"),
                out.std,
                want_std,
                0.0,
                ABS_ROUNDOFF_STD,
            );
        } else {
            assert_close(
                &format!("{name} kid_torch_fidelity_std"),
                out.std,
                want_std,
                REL_STD,
                0.0,
            );
        }
        let mut worst: f64 = 0.0;
        if let Some(ps) = per_subset(&case, "kid_torch_fidelity_per_subset") {
            for (s, (g, w)) in out.per_subset.iter().zip(&ps).enumerate() {
                assert_close(
                    &format!("{name} torch-fidelity subset {s}"),
                    *g,
                    *w,
                    REL,
                    0.0,
                );
                worst = worst.max(rel(*g, *w));
            }
        }
        eprintln!(
            "{name}: kid_torch_fidelity_mean rel err {:.3e}; std err {:.3e}; worst subset rel err {worst:.3e}",
            rel(out.mean, want_mean),
            if permutations {
                (out.std - want_std).abs()
            } else {
                rel(out.std, want_std)
            }
        );
        seen += 1;
    }
    assert!(seen >= 4, "only {seen} torch-fidelity KID cases");
}

#[test]
fn per_subset_paths_agree() {
    // Large subset_size budget forces the per-subset (gathered rows) path for
    // few subsets; it must equal the precomputed kernel-matrix path.
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let subsets = KidSubsets {
        real: idx(&case, "kid_cleanfid_idx_real.npy"),
        fake: idx(&case, "kid_cleanfid_idx_fake.npy"),
    };
    let few = KidSubsets {
        real: subsets
            .real
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..2))
            .to_owned(),
        fake: subsets
            .fake
            .slice_axis(ndarray::Axis(0), ndarray::Slice::from(0..2))
            .to_owned(),
    };
    let a = Kid::new()
        .compute_with_subsets(real.view(), fake.view(), &few)
        .unwrap();
    let ps = per_subset(&case, "kid_cleanfid_per_subset").unwrap();
    for (s, (got, want)) in a.per_subset.iter().zip(&ps).enumerate() {
        assert_close(&format!("gathered path, subset {s}"), *got, *want, REL, 0.0);
    }
}

#[test]
fn seeded_sampler_is_deterministic() {
    let case = Case::load("clusters");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let kid = Kid::new().n_subsets(10).subset_size(200).seed(5);
    let s1 = kid.sample_subsets(real.nrows(), fake.nrows());
    assert_eq!(s1, kid.sample_subsets(real.nrows(), fake.nrows()));
    assert_ne!(s1, kid.seed(6).sample_subsets(real.nrows(), fake.nrows()));
    let a = kid.compute(real.view(), fake.view()).unwrap();
    let b = kid.compute(real.view(), fake.view()).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.subset_size, 200);
    assert!(a.std > 0.0);
}

#[test]
fn kid_errors() {
    let x = Array2::<f32>::from_shape_fn((10, 4), |(i, j)| ((i * 3 + j) % 5) as f32);
    let kid = Kid::new();
    let empty = Array2::<f32>::zeros((0, 4));
    let one = Array2::<f32>::zeros((1, 4));
    assert!(matches!(
        kid.compute(empty.view(), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(matches!(
        kid.compute(x.view(), one.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    let y = Array2::<f32>::zeros((10, 5));
    assert!(matches!(
        kid.compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    let mut nan = x.clone();
    nan[[4, 0]] = f32::NAN;
    assert!(matches!(
        kid.compute(x.view(), nan.view()),
        Err(MetricError::NonFinite { row: 4, col: 0, .. })
    ));
    assert!(kid.n_subsets(0).compute(x.view(), x.view()).is_err());
    let repeated = KidSubsets {
        real: Array2::from_shape_vec((1, 3), vec![0, 1, 1]).unwrap(),
        fake: Array2::from_shape_vec((1, 3), vec![0, 1, 2]).unwrap(),
    };
    assert!(matches!(
        kid.compute_with_subsets(x.view(), x.view(), &repeated),
        Err(MetricError::InvalidParameter { .. })
    ));
    let out_of_range = KidSubsets {
        real: Array2::from_shape_vec((1, 2), vec![0, 10]).unwrap(),
        fake: Array2::from_shape_vec((1, 2), vec![0, 1]).unwrap(),
    };
    assert!(
        kid.compute_with_subsets(x.view(), x.view(), &out_of_range)
            .is_err()
    );
}
