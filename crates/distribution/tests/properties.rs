//! Property tests (proptest) of metric invariants, issue #12 item 4: on any
//! small feature sets (including duplicated rows, constant columns and rank-
//! deficient covariances, which the quantised strategy below makes common):
//!
//! * FID ≥ 0 and MiFID ≥ 0; FID of a set with itself is within the rounding
//!   bound `B` of `gen_metrics_linalg::frechet` ("Rounding and the sign of the
//!   result") of 0;
//! * symmetry of the symmetric metrics: FID, KID (same subsets swapped, and the
//!   full-set unbiased MMD²);
//! * invariance under a permutation of the rows: FID, KID (full set; subsets
//!   mapped through the permutation), precision/recall (both conventions),
//!   density and coverage;
//! * precision, recall and coverage in [0, 1], density in [0, 1/k · … ] i.e.
//!   ≥ 0 and ≤ N_real / k;
//! * the same seed gives the same numbers (KID's subsets).
//!
//! KID's estimate being unbiased (its expectation is 0 on two samples of one
//! distribution) is a statistical property, checked once with fixed seeds on
//! many independent draws (`kid_averages_zero_on_one_distribution`).
//!
//! Tolerances: FID is computed in float64 from float32 rows, and a permutation
//! or a swap changes the order of the sums, so those comparisons allow the
//! same rounding bound `B` the library uses for the sign of the result; the
//! k-NN metrics count comparisons of exactly computed distances (the
//! quantised values make every distance exact in float32), so they must be
//! identical.

use gen_metrics_distribution::kid::{Kid, KidSubsets};
use gen_metrics_distribution::mifid::{Mifid, MifidConvention};
use gen_metrics_distribution::prdc::Prdc;
use gen_metrics_distribution::precision_recall::PrecisionRecall;
use gen_metrics_distribution::{TwoSampleMetric, fid::Fid};
use gen_metrics_linalg::FrechetDistance;
use ndarray::{Array2, Axis};
use proptest::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

/// A `rows × cols` matrix of multiples of 1/4 in [-4, 4]: exact in float32,
/// with ties, duplicated rows and constant columns common.
fn quantised(rows: std::ops::Range<usize>, cols: usize) -> impl Strategy<Value = Array2<f32>> {
    rows.prop_flat_map(move |n| {
        prop::collection::vec(-16i8..=16, n * cols).prop_map(move |v| {
            Array2::from_shape_vec(
                (n, cols),
                v.into_iter().map(|x| f32::from(x) / 4.0).collect(),
            )
            .expect("n * cols values")
        })
    })
}

/// Two sets of the same dimension (1 to 4), 8 to 24 rows each.
fn pair() -> impl Strategy<Value = (Array2<f32>, Array2<f32>)> {
    (1usize..=4).prop_flat_map(|d| (quantised(8..24, d), quantised(8..24, d)))
}

/// A set and a permutation of its rows.
fn with_permutation(x: Array2<f32>) -> impl Strategy<Value = (Array2<f32>, Vec<usize>)> {
    let n = x.nrows();
    (Just(x), Just((0..n).collect::<Vec<_>>()).prop_shuffle())
}

fn permute(x: &Array2<f32>, p: &[usize]) -> Array2<f32> {
    x.select(Axis(0), p)
}

/// `|a − b| ≤ B` with `B` the library's rounding bound of the larger of the
/// two results (it grows with the traces and the mean term).
fn within_rounding(
    a: &gen_metrics_linalg::FrechetResult,
    b: &gen_metrics_linalg::FrechetResult,
) -> bool {
    (a.raw_value - b.raw_value).abs() <= a.rounding_bound.max(b.rounding_bound)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn fid_and_mifid_are_never_negative((real, fake) in pair()) {
        let fid = Fid::default().compute(real.view(), fake.view()).expect("valid sets");
        prop_assert!(fid.value >= 0.0, "FID {}", fid.value);
        for convention in [MifidConvention::Kaggle, MifidConvention::Torchmetrics] {
            // MiFID refuses sets whose rows all sum to 0 (memorization distance undefined).
            if let Ok(m) = Mifid::default().convention(convention).compute(real.view(), fake.view()) {
                prop_assert!(m.mifid >= 0.0, "MiFID {} ({convention:?})", m.mifid);
                prop_assert!(m.fid >= 0.0);
                prop_assert!(m.memorization_distance >= 0.0);
            }
        }
    }

    #[test]
    fn fid_of_a_set_with_itself_is_zero_within_the_bound((x, _) in pair()) {
        let r = FrechetDistance::new().between_features(x.view(), x.view()).expect("valid set");
        prop_assert!(r.value >= 0.0);
        prop_assert!(r.raw_value.abs() <= r.rounding_bound,
            "FID(X, X) = {} beyond the rounding bound {}", r.raw_value, r.rounding_bound);
        let fid = Fid::default().compute(x.view(), x.view()).expect("valid set");
        prop_assert!(fid.value <= r.rounding_bound);
    }

    #[test]
    fn fid_is_symmetric((real, fake) in pair()) {
        let ab = FrechetDistance::new().between_features(real.view(), fake.view()).expect("valid");
        let ba = FrechetDistance::new().between_features(fake.view(), real.view()).expect("valid");
        prop_assert!(within_rounding(&ab, &ba), "{} vs {}", ab.raw_value, ba.raw_value);
    }

    #[test]
    fn fid_ignores_row_order(
        ((real, p), fake) in pair().prop_flat_map(|(r, f)| (with_permutation(r), Just(f)))
    ) {
        let a = FrechetDistance::new().between_features(real.view(), fake.view()).expect("valid");
        let b = FrechetDistance::new()
            .between_features(permute(&real, &p).view(), fake.view())
            .expect("valid");
        prop_assert!(within_rounding(&a, &b), "{} vs {}", a.raw_value, b.raw_value);
    }

    #[test]
    fn kid_is_symmetric_and_ignores_row_order(
        ((real, p), fake, seed) in pair().prop_flat_map(|(r, f)| (with_permutation(r), Just(f), any::<u64>()))
    ) {
        let kid = Kid::default().n_subsets(5).subset_size(6).seed(seed);
        let full = |a: &Array2<f32>, b: &Array2<f32>| kid.full_unbiased(a.view(), b.view()).expect("valid");
        let ab = full(&real, &fake);
        let tol = 1e-9 * (1.0 + ab.abs());
        prop_assert!((ab - full(&fake, &real)).abs() <= tol);
        prop_assert!((ab - full(&permute(&real, &p), &fake)).abs() <= tol);

        // Subset KID: swapping the sets with their subsets, or renumbering the
        // rows through the permutation, gives the same per-subset values.
        let subsets = kid.sample_subsets(real.nrows(), fake.nrows());
        let out = kid.compute_with_subsets(real.view(), fake.view(), &subsets).expect("valid");
        let swapped = KidSubsets { real: subsets.fake.clone(), fake: subsets.real.clone() };
        let out_swapped = kid.compute_with_subsets(fake.view(), real.view(), &swapped).expect("valid");
        // Row i of the permuted set is row p[i] of the original: original
        // row j sits at inv[j].
        let mut inv = vec![0usize; p.len()];
        for (i, &j) in p.iter().enumerate() {
            inv[j] = i;
        }
        let renumbered = KidSubsets { real: subsets.real.mapv(|j| inv[j]), fake: subsets.fake.clone() };
        let out_perm = kid
            .compute_with_subsets(permute(&real, &p).view(), fake.view(), &renumbered)
            .expect("valid");
        for ((a, b), c) in out.per_subset.iter().zip(&out_swapped.per_subset).zip(&out_perm.per_subset) {
            let tol = 1e-9 * (1.0 + a.abs());
            prop_assert!((a - b).abs() <= tol, "swap: {a} vs {b}");
            prop_assert!((a - c).abs() <= tol, "permutation: {a} vs {c}");
        }
    }

    #[test]
    fn kid_same_seed_same_numbers((real, fake) in pair(), seed in any::<u64>()) {
        let kid = Kid::default().n_subsets(4).subset_size(5).seed(seed);
        let a = kid.compute(real.view(), fake.view()).expect("valid");
        let b = kid.compute(real.view(), fake.view()).expect("valid");
        prop_assert_eq!(a.mean.to_bits(), b.mean.to_bits());
        prop_assert_eq!(a.per_subset, b.per_subset);
        prop_assert_eq!(kid.sample_subsets(20, 30), kid.sample_subsets(20, 30));
    }

    #[test]
    fn precision_recall_density_coverage_in_range_and_ignore_row_order(
        ((real, p), (fake, q), k) in pair().prop_flat_map(|(r, f)| (with_permutation(r), with_permutation(f), 1usize..=4))
    ) {
        for pr in [PrecisionRecall::nvlabs().k(k), PrecisionRecall::prdc().k(k)] {
            let a = pr.compute(real.view(), fake.view()).expect("valid");
            prop_assert!((0.0..=1.0).contains(&a.precision), "precision {}", a.precision);
            prop_assert!((0.0..=1.0).contains(&a.recall), "recall {}", a.recall);
            let b = pr.compute(permute(&real, &p).view(), permute(&fake, &q).view()).expect("valid");
            prop_assert_eq!(a, b);
        }
        let prdc = Prdc::default().k(k);
        let a = prdc.compute(real.view(), fake.view()).expect("valid");
        prop_assert!((0.0..=1.0).contains(&a.precision));
        prop_assert!((0.0..=1.0).contains(&a.recall));
        prop_assert!((0.0..=1.0).contains(&a.coverage), "coverage {}", a.coverage);
        // Each fake sample lies in at most N_real balls: density ≤ N_real / k.
        prop_assert!(a.density >= 0.0 && a.density <= real.nrows() as f64 / k as f64);
        let b = prdc.compute(permute(&real, &p).view(), permute(&fake, &q).view()).expect("valid");
        prop_assert_eq!(a, b);
    }
}

/// KID's per-subset value is the unbiased MMD², so over many independent
/// draws of two samples of one distribution its mean is 0 up to the Monte
/// Carlo error: |mean| ≤ 4 standard errors (fixed seeds: deterministic).
#[test]
fn kid_averages_zero_on_one_distribution() {
    let (draws, n, d) = (300usize, 40usize, 4usize);
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let mut sample = |rows: usize| {
        Array2::from_shape_fn((rows, d), |_| {
            let z: f64 = StandardNormal.sample(&mut rng);
            z as f32
        })
    };
    let values: Vec<f64> = (0..draws)
        .map(|i| {
            let (x, y) = (sample(n), sample(n));
            Kid::default()
                .n_subsets(10)
                .subset_size(20)
                .seed(i as u64)
                .compute(x.view(), y.view())
                .expect("valid")
                .mean
        })
        .collect();
    let mean = values.iter().sum::<f64>() / draws as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
    let se = (var / draws as f64).sqrt();
    assert!(
        mean.abs() <= 4.0 * se,
        "mean KID {mean:.3e} over {draws} draws, standard error {se:.3e}"
    );
    // Not trivially zero: single draws do fall below and above 0.
    assert!(values.iter().any(|v| *v < 0.0) && values.iter().any(|v| *v > 0.0));
}
