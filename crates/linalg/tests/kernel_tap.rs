//! The distance passes that also read kernel sums off their float64 blocks
//! (`kth_neighbour_squared_radii_with_kernel`, `cross_pass_with_kernel`,
//! `kernel_sums_with_subsets`): the distance answers must be those of the
//! plain passes bit for bit, the sums must not depend on the distance
//! questions sharing the pass nor on the number of threads (bit for bit), and
//! must equal `KernelSums::with_subsets` and a naive float64 loop up to
//! rounding.

use gen_metrics_linalg::kernels::{CompensatedSum, Kernel, KernelSums};
use gen_metrics_linalg::pairwise::{
    Boundary, CrossRequest, DistancePower, cross_pass, cross_pass_with_kernel,
    kernel_sums_with_subsets, kth_neighbour_squared_radii_multi,
    kth_neighbour_squared_radii_with_kernel, zero_above_percentile,
};
use ndarray::{Array2, ArrayView2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn data(n: usize, d: usize, offset: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| offset + rng.random::<f32>() - 0.5)
}

/// Integer lattice rows with many duplicates (exact ties, zero radii).
fn lattice(n: usize, d: usize, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = Array2::from_shape_fn((n / 3 + 1, d), |_| rng.random_range(0..4u32) as f32);
    Array2::from_shape_fn((n, d), |(i, j)| base[[(i * 7919) % base.nrows(), j]])
}

fn subsets(n_subsets: usize, m: usize, n: usize, seed: u64) -> Array2<usize> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Array2::zeros((n_subsets, m));
    for s in 0..n_subsets {
        for (o, v) in out
            .row_mut(s)
            .iter_mut()
            .zip(rand::seq::index::sample(&mut rng, n, m).iter())
        {
            *o = v;
        }
    }
    out
}

/// `(x, y)` pairs spanning several 512-row blocks, of different sizes.
fn pairs() -> Vec<(&'static str, Array2<f32>, Array2<f32>)> {
    vec![
        ("uniform", data(1100, 24, 0.0, 1), data(700, 24, 0.1, 2)),
        ("offset", data(600, 40, 30.0, 3), data(1030, 40, 30.0, 4)),
        ("lattice", lattice(1050, 5, 5), lattice(530, 5, 6)),
    ]
}

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(f64::MIN_POSITIVE)
}

fn naive(k: Kernel, x: ArrayView2<'_, f32>, y: ArrayView2<'_, f32>, skip_diag: bool) -> f64 {
    let mut s = CompensatedSum::default();
    for i in 0..x.nrows() {
        for j in 0..y.nrows() {
            if skip_diag && i == j {
                continue;
            }
            let dot: f64 = x
                .row(i)
                .iter()
                .zip(y.row(j))
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum();
            let sq =
                |r: ndarray::ArrayView1<'_, f32>| r.iter().map(|&v| f64::from(v).powi(2)).sum();
            s.add(k.eval(dot, sq(x.row(i)), sq(y.row(j))));
        }
    }
    s.value()
}

#[test]
fn radii_read_off_the_float64_blocks_equal_the_plain_pass_bitwise() {
    for (name, x, y) in pairs() {
        let k = Kernel::kid(x.ncols());
        for set in [&x, &y] {
            let sub = subsets(3, 200, set.nrows(), 9);
            let plain = kth_neighbour_squared_radii_multi(set.view(), &[1, 3, 5]).unwrap();
            let fused =
                kth_neighbour_squared_radii_with_kernel(set.view(), &[1, 3, 5], k, sub.view())
                    .unwrap();
            let (within, per, fused) = (fused.within, fused.subset_within, fused.radii);
            assert_eq!(plain.len(), fused.len());
            for (p, f) in plain.iter().zip(&fused) {
                assert!(
                    p.iter().zip(f).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name}: radii differ"
                );
            }
            // The sums do not depend on the radii asked.
            let none =
                kth_neighbour_squared_radii_with_kernel(set.view(), &[], k, sub.view()).unwrap();
            assert!(none.radii.is_empty());
            assert_eq!(within, none.within, "{name}");
            assert_eq!(per, none.subset_within, "{name}");
        }
    }
}

#[test]
fn cross_answers_read_off_the_float64_blocks_equal_cross_pass() {
    for (name, x, y) in pairs() {
        let k = Kernel::kid(x.ncols());
        let rx = kth_neighbour_squared_radii_multi(x.view(), &[3])
            .unwrap()
            .remove(0);
        let ry = kth_neighbour_squared_radii_multi(y.view(), &[3])
            .unwrap()
            .remove(0);
        let (rx_d, ry_d) = (rx.mapv(f64::sqrt), ry.mapv(f64::sqrt));
        let w = zero_above_percentile(rx.view(), 50.0);
        let reqs = [
            CrossRequest::Balls {
                radii_a: rx_d.view(),
                radii_b: ry_d.view(),
                boundary: Boundary::Closed,
            },
            CrossRequest::MaxWeightOverDistance {
                weights_a: w.view(),
                power: DistancePower::Squared,
                eps: 1e-5,
            },
        ];
        let (sx, sy) = (subsets(4, 250, x.nrows(), 1), subsets(4, 250, y.nrows(), 2));
        let plain = cross_pass(x.view(), y.view(), &reqs).unwrap();
        let fused =
            cross_pass_with_kernel(x.view(), y.view(), &reqs, k, sx.view(), sy.view()).unwrap();
        assert_eq!(plain, fused.answers, "{name}: cross answers differ");
        let none =
            cross_pass_with_kernel(x.view(), y.view(), &[], k, sx.view(), sy.view()).unwrap();
        assert!(none.answers.is_empty());
        assert_eq!(fused.between, none.between, "{name}");
        assert_eq!(fused.subset_between, none.subset_between, "{name}");
    }
}

#[test]
fn kernel_sums_equal_kernel_sums_with_subsets_and_a_naive_loop() {
    for (name, x, y) in pairs() {
        for k in [Kernel::kid(x.ncols()), Kernel::Rbf { gamma: 0.05 }] {
            let (sx, sy) = (subsets(3, 150, x.nrows(), 3), subsets(3, 150, y.nrows(), 4));
            let got =
                kernel_sums_with_subsets(x.view(), y.view(), k, sx.view(), sy.view()).unwrap();
            let want = KernelSums::new(k)
                .with_subsets(x.view(), y.view(), sx.view(), sy.view())
                .unwrap();
            let pairs = [
                (got.within_x.off_diagonal, want.within_x.off_diagonal),
                (got.within_x.diagonal, want.within_x.diagonal),
                (got.within_y.off_diagonal, want.within_y.off_diagonal),
                (got.between, want.between),
            ];
            for (g, w) in pairs {
                assert!(
                    rel(g.value(), w.value()) < 1e-14,
                    "{name} {k:?}: {g:?} vs {w:?}"
                );
            }
            for s in 0..3 {
                assert!(
                    rel(
                        got.subset_within_x[s].value(),
                        want.subset_within_x[s].value()
                    ) < 1e-14
                );
                assert!(
                    rel(
                        got.subset_within_y[s].value(),
                        want.subset_within_y[s].value()
                    ) < 1e-14
                );
                assert!(
                    rel(
                        got.subset_between[s].value(),
                        want.subset_between[s].value()
                    ) < 1e-14
                );
            }
            // Against the definition, on the smaller set.
            let n = naive(k, y.view(), y.view(), true);
            assert!(
                rel(got.within_y.off_diagonal.value(), n) < 1e-13,
                "{name} {k:?}"
            );
            let n = naive(k, x.view(), y.view(), false);
            assert!(rel(got.between.value(), n) < 1e-13, "{name} {k:?}");
        }
    }
}

#[test]
fn kernel_sums_do_not_depend_on_the_threads() {
    let (x, y) = (data(1300, 16, 0.2, 7), data(900, 16, 0.0, 8));
    let (sx, sy) = (subsets(5, 300, 1300, 5), subsets(5, 300, 900, 6));
    let k = Kernel::kid(16);
    let run = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| kernel_sums_with_subsets(x.view(), y.view(), k, sx.view(), sy.view()))
            .unwrap()
    };
    let one = run(1);
    assert_eq!(one, run(3));
    assert_eq!(one, run(8));
}

#[test]
fn bad_subsets_and_kernels_are_errors() {
    let (x, y) = (data(50, 4, 0.0, 1), data(40, 4, 0.0, 2));
    let k = Kernel::kid(4);
    let mut out_of_range = subsets(2, 10, 40, 1);
    out_of_range[[0, 0]] = 40;
    assert!(
        kth_neighbour_squared_radii_with_kernel(y.view(), &[3], k, out_of_range.view()).is_err()
    );
    let mut repeated = subsets(2, 10, 50, 1);
    repeated[[1, 1]] = repeated[[1, 0]];
    assert!(kth_neighbour_squared_radii_with_kernel(x.view(), &[], k, repeated.view()).is_err());
    let (sx, sy) = (subsets(2, 10, 50, 1), subsets(3, 10, 40, 1));
    assert!(cross_pass_with_kernel(x.view(), y.view(), &[], k, sx.view(), sy.view()).is_err());
    let bad = Kernel::Rbf { gamma: -1.0 };
    let none = Array2::<usize>::zeros((0, 0));
    assert!(kernel_sums_with_subsets(x.view(), y.view(), bad, none.view(), none.view()).is_err());
    // No subsets at all is allowed: only the totals.
    let s = kernel_sums_with_subsets(x.view(), y.view(), k, none.view(), none.view()).unwrap();
    assert!(s.subset_between.is_empty() && s.between.value() > 0.0);
}

/// Very wide rows (raw pixels, say) get blocks of fewer rows, so two widened
/// row blocks stay within the kernel passes' memory budget; answers and sums
/// are unchanged by it.
#[test]
fn wide_rows_use_smaller_blocks_with_the_same_answers() {
    let d = 40_000;
    assert!(gen_metrics_linalg::kernels::block_rows_for_dim(d) < 300);
    let (x, y) = (data(300, d, 0.0, 11), data(260, d, 0.05, 12));
    let k = Kernel::kid(d);
    let (sx, sy) = (subsets(2, 40, 300, 1), subsets(2, 40, 260, 2));
    let plain = kth_neighbour_squared_radii_multi(x.view(), &[3]).unwrap();
    let fused = kth_neighbour_squared_radii_with_kernel(x.view(), &[3], k, sx.view()).unwrap();
    assert_eq!(plain, fused.radii);
    let got = kernel_sums_with_subsets(x.view(), y.view(), k, sx.view(), sy.view()).unwrap();
    let want = KernelSums::new(k)
        .with_subsets(x.view(), y.view(), sx.view(), sy.view())
        .unwrap();
    assert!(
        rel(
            got.within_x.off_diagonal.value(),
            want.within_x.off_diagonal.value()
        ) < 1e-14
    );
    assert!(rel(got.between.value(), want.between.value()) < 1e-14);
    assert!(
        rel(
            got.subset_between[1].value(),
            want.subset_between[1].value()
        ) < 1e-14
    );
}
