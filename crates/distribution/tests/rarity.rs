//! Rarity score (Han et al. 2022): no reference values exist in the corpus
//! (rarity is not part of dgm-eval), so these are analytic and property
//! checks: hand-computed 1-D cases (including the strict boundary), brute
//! force over exact distances, exact scale equivariance, permutation
//! equivariance, and the identical case of the corpus.

use gen_metrics_distribution::rarity::Rarity;
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_linalg::{kth_neighbour_radii, squared_distance};
use gen_metrics_testkit::Case;
use ndarray::{Array2, Axis, array, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, d: usize, shift: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| shift + rng.random::<f32>() * 2.0 - 1.0)
}

#[test]
fn hand_computed_line() {
    // Real 0, 1, 2, 3, 10, 20 with k = 1: radii 1, 1, 1, 1, 7, 10.
    let real = array![[0.0f32], [1.0], [2.0], [3.0], [10.0], [20.0]];
    let fake = array![[1.5f32], [12.0], [100.0], [4.0], [0.0], [13.0]];
    let out = Rarity::default()
        .k(1)
        .compute(real.view(), fake.view())
        .unwrap();
    // 1.5: balls of 1 and 2 (radius 1). 12: balls of 10 (7) and 20 (10) -> 7.
    // 100: nothing. 4: d(3) = 1 is not < 1 (strict), d(10) = 6 < 7 -> 7.
    // 0: its own ball (d = 0 < 1). 13: d(10) = 3 < 7, d(20) = 7 < 10 -> 7.
    assert_eq!(
        out.scores,
        vec![Some(1.0), Some(7.0), None, Some(7.0), Some(1.0), Some(7.0)]
    );
    assert_eq!(
        out.ball,
        vec![Some(1), Some(4), None, Some(4), Some(0), Some(4)]
    );
    assert_eq!((out.in_manifold, out.out_of_manifold), (5, 1));
    assert_eq!(out.rarest_first, vec![1, 3, 5, 0, 4]);
    assert_eq!(
        out.mean_in_manifold,
        Some((1.0 + 7.0 + 7.0 + 1.0 + 7.0) / 5.0)
    );
}

#[test]
fn equals_brute_force_over_exact_distances() {
    let real = random(300, 12, 0.0, 1);
    let fake = random(200, 12, 0.3, 2);
    for k in [1, 3, 7] {
        let out = Rarity::default()
            .k(k)
            .compute(real.view(), fake.view())
            .unwrap();
        let r = kth_neighbour_radii(real.view(), k).unwrap();
        for (i, got) in out.scores.iter().enumerate() {
            let want = (0..real.nrows())
                .filter(|&j| squared_distance(fake.row(i), real.row(j)).unwrap().sqrt() < r[j])
                .map(|j| r[j])
                .min_by(f64::total_cmp);
            assert_eq!(*got, want, "k={k} sample {i}");
        }
        assert!(out.out_of_manifold > 0 && out.in_manifold > 0);
        // Rarest first: scores non-increasing.
        let ordered: Vec<f64> = out
            .rarest_first
            .iter()
            .map(|&i| out.scores[i].unwrap())
            .collect();
        assert!(ordered.windows(2).all(|w| w[0] >= w[1]));
    }
}

#[test]
fn scale_equivariance_is_exact_for_powers_of_two() {
    let real = random(150, 8, 0.0, 3);
    let fake = random(100, 8, 0.1, 4);
    let a = Rarity::default().compute(real.view(), fake.view()).unwrap();
    let b = Rarity::default()
        .compute((&real * 4.0).view(), (&fake * 4.0).view())
        .unwrap();
    let scaled: Vec<Option<f64>> = a.scores.iter().map(|s| s.map(|v| 4.0 * v)).collect();
    assert_eq!(b.scores, scaled);
    assert_eq!(a.ball, b.ball);
}

#[test]
fn fake_order_does_not_matter() {
    let real = random(120, 5, 0.0, 5);
    let fake = random(60, 5, 0.2, 6);
    let perm: Vec<usize> = (0..60).rev().collect();
    let a = Rarity::default().compute(real.view(), fake.view()).unwrap();
    let b = Rarity::default()
        .compute(real.view(), fake.select(Axis(0), &perm).view())
        .unwrap();
    for (i, &p) in perm.iter().enumerate() {
        assert_eq!(b.scores[i], a.scores[p]);
    }
}

#[test]
fn copies_of_real_samples_are_in_their_own_ball() {
    // In `identical` no row is duplicated, so every radius is positive and
    // every fake (a copy of a real) is at distance 0 from its twin.
    let case = Case::load("identical");
    let real = case.array2::<f32>("real.npy");
    let out = Rarity::default()
        .compute(real.view(), case.array2::<f32>("fake.npy").view())
        .unwrap();
    assert_eq!(out.out_of_manifold, 0);
    let r = kth_neighbour_radii(real.view(), 3).unwrap();
    for (i, s) in out.scores.iter().enumerate() {
        assert!(s.unwrap() <= r[i]);
    }
}

#[test]
fn errors_not_panics() {
    let x = random(4, 3, 0.0, 7);
    let r = Rarity::default();
    assert!(matches!(
        r.compute(x.slice(s![..3, ..]), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(r.compute(x.view(), x.slice(s![..1, ..])).is_ok());
    assert!(matches!(
        r.compute(x.view(), x.slice(s![..0, ..])),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(matches!(
        r.k(0).compute(x.view(), x.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    assert!(matches!(
        r.k(4).compute(x.view(), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    let y = random(4, 2, 0.0, 8);
    assert!(matches!(
        r.compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    let mut nan = x.clone();
    nan[[0, 0]] = f32::NAN;
    assert!(matches!(
        r.compute(x.view(), nan.view()),
        Err(MetricError::NonFinite { .. })
    ));
}
