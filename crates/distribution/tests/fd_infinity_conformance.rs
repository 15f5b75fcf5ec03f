//! FID∞ against `fd_infinity_chong` and `arrays.fd_infinity_points` of every
//! case that has them, replaying the stored row orders (`fdinf_perm.npy`).
//! Tolerances (README): 1e-9 relative where every subset has `N > D` (the
//! replay reproduces ~1e-14), 1e-6 relative where subsets have `N ≤ D`
//! (inception_like: pytorch-fid's sqrtm FD is only ~1e-8 accurate there).

use gen_metrics_distribution::fd_infinity::{FdInfinity, batch_sizes};
use gen_metrics_distribution::{MetricError, TwoSampleMetric};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;

#[test]
fn fd_infinity_replays_every_case() {
    let mut seen = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        let Some(want) = case.value("fd_infinity_chong") else {
            continue;
        };
        if !case.has("fdinf_perm.npy") {
            continue;
        }
        let real: Array2<f32> = case.array2("real.npy");
        let fake: Array2<f32> = case.array2("fake.npy");
        let perm: Array2<usize> = case.array2::<u16>("fdinf_perm.npy").mapv(usize::from);
        let min_fake = case
            .param("/fd_infinity/min_fake")
            .and_then(|v| v.as_u64())
            .unwrap() as usize;
        let num = case
            .param("/fd_infinity/num_points")
            .and_then(|v| v.as_u64())
            .unwrap() as usize;
        let batches: Vec<usize> = case
            .param("/fd_infinity/batches")
            .and_then(|v| v.as_array())
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(
            batch_sizes(min_fake, fake.nrows(), num),
            batches,
            "{name}: linspace"
        );
        let tol = if min_fake > real.ncols() { 1e-9 } else { 1e-6 };
        let out = FdInfinity::new()
            .min_fake(min_fake)
            .num_points(num)
            .compute_with_orders(real.view(), fake.view(), perm.view())
            .unwrap();
        let pts = case
            .arrays("/fd_infinity_points")
            .and_then(|v| v.as_array())
            .unwrap();
        let mut worst: f64 = 0.0;
        for ((n, v), p) in out.points.iter().zip(pts) {
            let pn = p[0].as_u64().unwrap() as usize;
            let pv = p[1].as_f64().unwrap();
            assert_eq!(*n, pn, "{name}");
            let t = if pn > real.ncols() { 1e-9 } else { 1e-6 };
            assert_close(&format!("{name} FD_{pn}"), *v, pv, t, 0.0);
            worst = worst.max((v - pv).abs() / pv.abs());
        }
        assert_close(
            &format!("{name} fd_infinity_chong"),
            out.value,
            want,
            tol,
            0.0,
        );
        if let Some(cf) = case.diagnostic("fd_infinity_ols_closed_form") {
            assert_close(&format!("{name} closed form"), out.value, cf, tol, 0.0);
        }
        eprintln!(
            "{name}: fd_infinity_chong rel err {:.3e}; worst point rel err {worst:.3e}",
            (out.value - want).abs() / want.abs()
        );
        seen += 1;
    }
    assert!(seen >= 3, "only {seen} FD-inf cases");
}

#[test]
fn seeded_mode_is_deterministic() {
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let cfg = FdInfinity::new().min_fake(500).seed(11);
    let a = cfg.compute(real.view(), fake.view()).unwrap();
    let b = cfg.compute(real.view(), fake.view()).unwrap();
    assert_eq!(a, b);
    let c = cfg.seed(12).compute(real.view(), fake.view()).unwrap();
    assert_ne!(a.points, c.points);
    // The last point always uses every row: the same full-set FD.
    assert_close("full-set point", a.points[14].1, c.points[14].1, 1e-12, 0.0);
    assert_close(
        "full-set point vs fd_pytorch_fid",
        a.points[14].1,
        case.value("fd_pytorch_fid").unwrap(),
        1e-9,
        0.0,
    );
    // Extrapolation lands near the replayed value (different shuffles).
    assert!((a.value - case.value("fd_infinity_chong").unwrap()).abs() < 1.0);
}

#[test]
fn fd_infinity_errors() {
    let x = Array2::<f32>::from_shape_fn((20, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    // Default min_fake 5000 > 20 rows.
    assert!(matches!(
        FdInfinity::new().compute(x.view(), x.view()),
        Err(MetricError::TooFewSamples { .. })
    ));
    assert!(
        FdInfinity::new()
            .min_fake(5)
            .num_points(1)
            .compute(x.view(), x.view())
            .is_err()
    );
    let bad_orders = Array2::<usize>::zeros((15, 20));
    assert!(matches!(
        FdInfinity::new()
            .min_fake(5)
            .compute_with_orders(x.view(), x.view(), bad_orders.view()),
        Err(MetricError::InvalidParameter { .. })
    ));
    let y = Array2::<f32>::zeros((20, 4));
    assert!(matches!(
        FdInfinity::new().min_fake(5).compute(x.view(), y.view()),
        Err(MetricError::DimensionMismatch { .. })
    ));
}
