//! MiFID (Bai et al. 2021): the corpus has no MiFID values, so these are
//! analytic checks of each factor: the FID part is the library's Fréchet
//! distance, the memorization distance is `mean min (1 − |cos|)` (absolute
//! cosine, rows summing to 0 left out), the threshold and the final ratio
//! follow the Kaggle formula; the torchmetrics convention reverses the
//! direction of the mean and zeroes tiny FIDs.

use gen_metrics_distribution::mifid::{Mifid, MifidConvention};
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_linalg::FrechetDistance;
use gen_metrics_testkit::{Case, assert_close};
use ndarray::{Array2, Axis, array, concatenate, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| rng.random::<f32>() * 2.0 - 1.0)
}

#[test]
fn far_from_memorization_mifid_is_fid_over_one() {
    let case = Case::load("gauss_shift");
    let real = case.array2::<f32>("real.npy");
    let fake = case.array2::<f32>("fake.npy");
    let out = Mifid::default().compute(real.view(), fake.view()).unwrap();
    let fid = FrechetDistance::new()
        .between_features(real.view(), fake.view())
        .unwrap()
        .value;
    assert_eq!(out.fid, fid);
    assert_close(
        "fid vs pytorch-fid",
        out.fid,
        case.value("fd_pytorch_fid").unwrap(),
        1e-9,
        0.0,
    );
    assert!(
        out.memorization_distance >= 0.1,
        "d = {}",
        out.memorization_distance
    );
    assert_eq!(out.thresholded_distance, 1.0);
    assert_eq!(out.mifid, fid / (1.0 + 1e-14));
}

#[test]
fn memorized_samples_divide_by_a_small_distance() {
    // Fake = real rows scaled by 2 or negated (|cos| = 1): d = 0 up to
    // round-off, below eps, so MiFID = FID / (d + 1e-14).
    let real = random(200, 16, 1);
    let mut fake = &real * 2.0;
    fake.slice_mut(s![..100, ..]).mapv_inplace(|v| -v);
    let out = Mifid::default().compute(real.view(), fake.view()).unwrap();
    assert!(
        out.memorization_distance < 1e-15,
        "d = {}",
        out.memorization_distance
    );
    assert_eq!(out.thresholded_distance, out.memorization_distance);
    assert_eq!(out.mifid, out.fid / (out.memorization_distance + 1e-14));
    assert!(out.mifid > 1e10 * out.fid);
}

#[test]
fn memorization_distance_in_two_dimensions() {
    // Real: the x axis. Fake at angles 0.1 and 0.2 rad: d = mean(1 − cos θ).
    let real = array![[1.0f32, 0.0], [2.0, 0.0], [-3.0, 0.0]];
    let (a, b) = (0.1f32, 0.2f32);
    let fake = array![
        [a.cos(), a.sin()],
        [b.cos(), b.sin()],
        [-(a.cos()), -(a.sin())]
    ];
    let want: f64 = [a, b, a]
        .iter()
        .map(|&t| 1.0 - f64::from(t.cos()) / f64::from(t.cos()).hypot(f64::from(t.sin())))
        .sum::<f64>()
        / 3.0;
    let out = Mifid::default().compute(real.view(), fake.view()).unwrap();
    assert_close("d", out.memorization_distance, want, 1e-12, 0.0);
    assert_eq!(out.thresholded_distance, out.memorization_distance);
    // With eps below d the distance is thresholded to 1.
    let out = Mifid::default()
        .eps(want / 2.0)
        .compute(real.view(), fake.view())
        .unwrap();
    assert_eq!(out.thresholded_distance, 1.0);
}

#[test]
fn rows_summing_to_zero_are_left_out_of_the_distance() {
    let real = random(50, 8, 2);
    let fake = random(40, 8, 3);
    let base = Mifid::default().compute(real.view(), fake.view()).unwrap();
    let mut zero_sum = Array2::<f32>::zeros((5, 8));
    zero_sum.slice_mut(s![.., 0]).fill(1.0);
    zero_sum.slice_mut(s![.., 1]).fill(-1.0); // sum 0, norm > 0
    let padded = concatenate(Axis(0), &[fake.view(), zero_sum.view()]).unwrap();
    let out = Mifid::default()
        .compute(real.view(), padded.view())
        .unwrap();
    assert_eq!(out.memorization_distance, base.memorization_distance);
    assert_ne!(out.fid, base.fid); // the FID still sees every row
}

#[test]
fn torchmetrics_convention_averages_over_real() {
    // Real: 3 points on the x axis and one on y. Fake: all on x.
    // Kaggle (mean over fake of min over real) = 0; torchmetrics (mean over
    // real of min over fake) = 1/4 (the y point is orthogonal to every fake).
    let real = array![[1.0f32, 0.0], [2.0, 0.0], [3.0, 0.0], [0.0, 1.0]];
    let fake = array![[1.5f32, 0.0], [2.5, 0.0], [0.5, 0.0]];
    let k = Mifid::default().compute(real.view(), fake.view()).unwrap();
    let t = Mifid::default()
        .convention(MifidConvention::Torchmetrics)
        .compute(real.view(), fake.view())
        .unwrap();
    assert_eq!(k.memorization_distance, 0.0);
    assert_close("torchmetrics d", t.memorization_distance, 0.25, 1e-15, 0.0);
    // torchmetrics returns 0 for FID <= 1e-8.
    let same = random(30, 4, 4);
    let t = Mifid::default()
        .convention(MifidConvention::Torchmetrics)
        .compute(same.view(), same.view())
        .unwrap();
    assert_eq!(t.mifid, 0.0);
}

#[test]
fn errors_not_panics() {
    let x = random(10, 4, 5);
    for eps in [0.0, -0.1, 1.5, f64::NAN] {
        assert!(matches!(
            Mifid::default().eps(eps).compute(x.view(), x.view()),
            Err(MetricError::InvalidParameter { .. })
        ));
    }
    let zeros = Array2::<f32>::zeros((10, 4));
    assert!(matches!(
        Mifid::default().compute(x.view(), zeros.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    let y = random(10, 3, 6);
    assert!(matches!(
        Mifid::default().compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        Mifid::default().compute(x.slice(s![..1, ..]), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    let mut inf = x.clone();
    inf[[3, 3]] = f32::NEG_INFINITY;
    assert!(matches!(
        Mifid::default().compute(inf.view(), x.view()),
        Err(MetricError::NonFinite { .. })
    ));
}

/// Regression (issue #12): on identical feature sets the FID is −round-off
/// and MiFID, dividing it by a memorization distance of ~1e-14, was −4.23.
/// FID and MiFID are never negative.
#[test]
fn identical_sets_give_zero_not_negative() {
    use gen_metrics_distribution::fid::Fid;
    for (n, d, seed) in [(300, 128, 11u64), (90, 128, 12), (600, 256, 13)] {
        let x = random(n, d, seed);
        let fid = Fid::default().compute(x.view(), x.view()).unwrap();
        assert!(fid.value >= 0.0, "{n}x{d}: FID {}", fid.value);
        let out = Mifid::default().compute(x.view(), x.view()).unwrap();
        assert!(out.fid >= 0.0 && out.mifid >= 0.0, "{n}x{d}: {out:?}");
        if out.fid == 0.0 {
            assert_eq!(out.mifid, 0.0);
        }
    }
}
