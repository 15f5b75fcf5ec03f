//! The blocked kernels of `pairwise` against brute force over the exact rule.
//!
//! Every kernel promises the answer of exact float64 distances, so the checks
//! here are equalities (bitwise for distances, exact for counts and indices),
//! on data built to stress the GEMM shortcut: large common offsets (heavy
//! cancellation in ‖a‖² + ‖b‖² − 2a·b), integer lattices with duplicated rows
//! (exact ties, zero radii), probes lying exactly on spheres, huge and
//! subnormal values (the float64 fallback), and non-contiguous views.

use gen_metrics_linalg::LinalgError;
use gen_metrics_linalg::pairwise::{
    Boundary, CrossAnswer, CrossRequest, DistancePower, count_within_radii, cross_ball_statistics,
    cross_pass, for_each_distance_block, kth_neighbour_radii, kth_neighbour_radii_multi,
    kth_neighbour_squared_radii, max_abs_cosine_similarity, max_weight_over_distance,
    nearest_neighbours, self_nearest_neighbours, smallest_containing_radius, squared_distance,
    squared_distances,
};
use ndarray::{Array1, Array2, ArrayView2, Axis, s};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn gauss(rng: &mut ChaCha8Rng) -> f32 {
    // Box-Muller; good enough for test data.
    let u1: f64 = rng.random::<f64>().max(1e-300);
    let u2: f64 = rng.random::<f64>();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

fn normal(n: usize, d: usize, offset: f32, scale: f32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, d), |_| offset + scale * gauss(&mut rng))
}

/// Integer lattice {0..levels-1}^d with many duplicated rows.
fn lattice(n: usize, d: usize, levels: u32, seed: u64) -> Array2<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let base = Array2::from_shape_fn((n / 3 + 1, d), |_| rng.random_range(0..levels) as f32);
    Array2::from_shape_fn((n, d), |(i, j)| base[[(i * 7919) % base.nrows(), j]])
}

fn exact(a: ArrayView2<'_, f32>, b: ArrayView2<'_, f32>) -> Array2<f64> {
    Array2::from_shape_fn((a.nrows(), b.nrows()), |(i, j)| {
        squared_distance(a.row(i), b.row(j)).unwrap()
    })
}

fn brute_kth(x: ArrayView2<'_, f32>, k: usize) -> Array1<f64> {
    let d2 = exact(x, x);
    Array1::from_shape_fn(x.nrows(), |i| {
        let mut row: Vec<f64> = (0..x.nrows())
            .filter(|&j| j != i)
            .map(|j| d2[[i, j]])
            .collect();
        row.sort_by(f64::total_cmp);
        row[k - 1].sqrt()
    })
}

fn datasets() -> Vec<(&'static str, Array2<f32>)> {
    vec![
        ("gauss", normal(700, 33, 0.0, 1.0, 1)),
        ("offset", normal(600, 64, 1000.0, 0.05, 2)),
        ("lattice", lattice(650, 6, 4, 3)),
        ("wide", normal(150, 2048, 0.5, 0.3, 4)),
        ("tiny", normal(5, 3, 0.0, 1.0, 5)),
    ]
}

#[test]
fn kth_radii_equal_brute_force_bitwise() {
    for (name, x) in datasets() {
        for k in [1, 3, 4] {
            let got = kth_neighbour_radii(x.view(), k).unwrap();
            let want = brute_kth(x.view(), k);
            for i in 0..x.nrows() {
                assert_eq!(
                    got[i].to_bits(),
                    want[i].to_bits(),
                    "{name} k={k} row {i}: {} vs {}",
                    got[i],
                    want[i]
                );
            }
        }
    }
}

#[test]
fn kth_radii_match_a_naive_float64_loop() {
    // Independent of the library's summation order: agreement to rounding.
    let x = normal(300, 50, 3.0, 1.0, 11);
    let got = kth_neighbour_radii(x.view(), 3).unwrap();
    for i in 0..x.nrows() {
        let mut row: Vec<f64> = (0..x.nrows())
            .filter(|&j| j != i)
            .map(|j| {
                x.row(i)
                    .iter()
                    .zip(x.row(j))
                    .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                    .sum::<f64>()
            })
            .collect();
        row.sort_by(f64::total_cmp);
        let want = row[2].sqrt();
        assert!(
            (got[i] - want).abs() <= 1e-13 * want,
            "row {i}: {} vs {want}",
            got[i]
        );
    }
}

#[test]
fn multi_k_equals_single_k() {
    let x = normal(400, 20, 0.0, 1.0, 7);
    let multi = kth_neighbour_radii_multi(x.view(), &[5, 3, 1]).unwrap();
    for (m, k) in [5, 3, 1].into_iter().enumerate() {
        assert_eq!(multi[m], kth_neighbour_radii(x.view(), k).unwrap());
    }
    let sq = kth_neighbour_squared_radii(x.view(), 3).unwrap();
    let d2 = exact(x.view(), x.view());
    for i in 0..x.nrows() {
        let mut row: Vec<f64> = (0..x.nrows())
            .filter(|&j| j != i)
            .map(|j| d2[[i, j]])
            .collect();
        row.sort_by(f64::total_cmp);
        assert_eq!(sq[i].to_bits(), row[2].to_bits());
    }
}

#[test]
fn duplicates_give_zero_radii() {
    // Row 0 has 3 exact copies: its 1st..3rd neighbours are at 0, its 4th is not.
    let mut x = normal(50, 8, 0.0, 1.0, 9);
    for c in 1..4 {
        let r = x.row(0).to_owned();
        x.row_mut(c).assign(&r);
    }
    assert_eq!(kth_neighbour_radii(x.view(), 3).unwrap()[0], 0.0);
    assert!(kth_neighbour_radii(x.view(), 4).unwrap()[0] > 0.0);
}

#[test]
fn self_nearest_neighbours_exclude_self_and_break_ties_by_index() {
    for (name, x) in datasets() {
        let k = 3.min(x.nrows() - 1);
        let (idx, dist) = self_nearest_neighbours(x.view(), k).unwrap();
        let d2 = exact(x.view(), x.view());
        for i in 0..x.nrows() {
            let mut order: Vec<usize> = (0..x.nrows()).filter(|&j| j != i).collect();
            order.sort_by(|&p, &q| d2[[i, p]].total_cmp(&d2[[i, q]]).then(p.cmp(&q)));
            for m in 0..k {
                assert_eq!(idx[[i, m]], order[m], "{name} row {i} neighbour {m}");
                assert_eq!(dist[[i, m]], d2[[i, order[m]]].sqrt());
            }
        }
    }
}

#[test]
fn nearest_neighbours_equal_brute_force() {
    let cases = [
        (normal(333, 40, 0.0, 1.0, 21), normal(517, 40, 0.2, 1.1, 22)),
        (
            normal(200, 64, 500.0, 0.1, 23),
            normal(260, 64, 500.0, 0.1, 24),
        ),
        (lattice(300, 5, 3, 25), lattice(400, 5, 3, 26)),
    ];
    for (q, r) in cases {
        for k in [1, 4] {
            let (idx, dist) = nearest_neighbours(q.view(), r.view(), k).unwrap();
            let d2 = exact(q.view(), r.view());
            for i in 0..q.nrows() {
                let mut order: Vec<usize> = (0..r.nrows()).collect();
                order.sort_by(|&p, &o| d2[[i, p]].total_cmp(&d2[[i, o]]).then(p.cmp(&o)));
                for m in 0..k {
                    assert_eq!(idx[[i, m]], order[m]);
                    assert_eq!(dist[[i, m]].to_bits(), d2[[i, order[m]]].sqrt().to_bits());
                }
            }
        }
    }
    // k equal to the whole reference set is allowed.
    let q = normal(3, 4, 0.0, 1.0, 1);
    let r = normal(5, 4, 0.0, 1.0, 2);
    let (idx, _) = nearest_neighbours(q.view(), r.view(), 5).unwrap();
    assert_eq!(idx.ncols(), 5);
}

fn brute_counts(
    p: ArrayView2<'_, f32>,
    c: ArrayView2<'_, f32>,
    r: &Array1<f64>,
    b: Boundary,
) -> Vec<usize> {
    let d2 = exact(p, c);
    (0..p.nrows())
        .map(|i| {
            (0..c.nrows())
                .filter(|&j| b.contains(d2[[i, j]].sqrt(), r[j]))
                .count()
        })
        .collect()
}

#[test]
fn counts_within_radii_equal_brute_force_with_spheres_hit_exactly() {
    // Probes include exact copies of centres, so probes lie exactly on the
    // spheres (the copy of a centre's k-th neighbour is at distance = radius).
    let sets = [
        normal(500, 24, 0.0, 1.0, 31),
        normal(400, 64, 1e3, 0.02, 32),
        lattice(500, 6, 4, 33),
    ];
    for c in sets {
        let mut p = c.slice(s![..250, ..]).to_owned();
        let extra = c.slice(s![250..350, ..]).mapv(|v| v + 0.25); // off-lattice probes
        p.append(Axis(0), extra.view()).unwrap();
        let r = kth_neighbour_radii(c.view(), 3).unwrap();
        for b in [Boundary::Closed, Boundary::Open] {
            let got = count_within_radii(p.view(), c.view(), r.view(), b).unwrap();
            assert_eq!(
                got.to_vec(),
                brute_counts(p.view(), c.view(), &r, b),
                "{b:?}"
            );
        }
    }
}

#[test]
fn zero_radius_semantics() {
    let c = ndarray::array![[0.0f32, 0.0], [1.0, 0.0]];
    let p = ndarray::array![[0.0f32, 0.0], [0.5, 0.0]];
    let r = ndarray::array![0.0, 0.5];
    let closed = count_within_radii(p.view(), c.view(), r.view(), Boundary::Closed).unwrap();
    let open = count_within_radii(p.view(), c.view(), r.view(), Boundary::Open).unwrap();
    assert_eq!(closed.to_vec(), vec![1, 1]); // on the radius-0 centre; on the 0.5 sphere
    assert_eq!(open.to_vec(), vec![0, 0]);
    let inf = ndarray::array![f64::INFINITY, 0.0];
    assert_eq!(
        count_within_radii(p.view(), c.view(), inf.view(), Boundary::Open)
            .unwrap()
            .to_vec(),
        vec![1, 1]
    );
}

#[test]
fn smallest_containing_radius_equals_brute_force() {
    let c = normal(400, 16, 0.0, 1.0, 41);
    let p = normal(300, 16, 0.1, 1.2, 42);
    let r = kth_neighbour_radii(c.view(), 5).unwrap();
    for b in [Boundary::Closed, Boundary::Open] {
        let got = smallest_containing_radius(p.view(), c.view(), r.view(), b).unwrap();
        let d2 = exact(p.view(), c.view());
        let mut none = 0;
        for i in 0..p.nrows() {
            let want = (0..c.nrows())
                .filter(|&j| b.contains(d2[[i, j]].sqrt(), r[j]))
                .min_by(|&x, &y| r[x].total_cmp(&r[y]).then(x.cmp(&y)))
                .map(|j| (j, r[j]));
            none += usize::from(want.is_none());
            assert_eq!(got[i], want, "row {i}");
        }
        assert!(
            none > 0 && none < p.nrows(),
            "test data should have both kinds"
        );
    }
}

#[test]
fn max_weight_over_distance_equals_brute_force() {
    let c = normal(350, 12, 0.0, 1.0, 51);
    let mut p = normal(200, 12, 0.0, 1.1, 52);
    p.row_mut(0).assign(&c.row(7)); // coincides with a centre
    let r = kth_neighbour_radii(c.view(), 3).unwrap();
    let mut sorted = r.to_vec();
    sorted.sort_by(f64::total_cmp);
    let med = sorted[sorted.len() / 2];
    let w2: Array1<f64> = r.mapv(|v| if v > med { 0.0 } else { v * v });
    let got = max_weight_over_distance(p.view(), c.view(), w2.view(), DistancePower::Squared, 1e-5)
        .unwrap();
    let d2 = exact(p.view(), c.view());
    for i in 0..p.nrows() {
        let want = (0..c.nrows())
            .map(|j| w2[j] / (d2[[i, j]] + 1e-5))
            .fold(0.0, f64::max);
        assert_eq!(got[i].to_bits(), want.to_bits(), "row {i}");
    }
    // Distance power, eps = 0: the coinciding probe is +inf iff its centre has weight > 0.
    let w1: Array1<f64> = r.mapv(|v| if v < med { v } else { 0.0 });
    let got = max_weight_over_distance(p.view(), c.view(), w1.view(), DistancePower::Distance, 0.0)
        .unwrap();
    for i in 1..p.nrows() {
        let want = (0..c.nrows())
            .filter(|&j| w1[j] > 0.0)
            .map(|j| w1[j] / d2[[i, j]].sqrt())
            .fold(0.0, f64::max);
        assert_eq!(got[i].to_bits(), want.to_bits(), "row {i}");
    }
    assert_eq!(got[0] == f64::INFINITY, w1[7] > 0.0);
    // All weights zero: score 0.
    let zero = Array1::<f64>::zeros(c.nrows());
    let got = max_weight_over_distance(
        p.view(),
        c.view(),
        zero.view(),
        DistancePower::Squared,
        1e-5,
    )
    .unwrap();
    assert!(got.iter().all(|&v| v == 0.0));
}

#[test]
fn cross_ball_statistics_equal_the_separate_kernels() {
    for (a, b) in [
        (normal(450, 20, 0.0, 1.0, 61), normal(380, 20, 0.3, 1.0, 62)),
        (lattice(300, 6, 4, 63), lattice(250, 6, 4, 64)),
        (normal(40, 7, 0.0, 1.0, 65), normal(1200, 7, 0.0, 1.0, 66)),
    ] {
        let ra = kth_neighbour_radii(a.view(), 3).unwrap();
        let rb = kth_neighbour_radii(b.view(), 3).unwrap();
        for bd in [Boundary::Closed, Boundary::Open] {
            let st = cross_ball_statistics(a.view(), b.view(), ra.view(), rb.view(), bd).unwrap();
            assert_eq!(
                st.a_in_b_balls.to_vec(),
                brute_counts(a.view(), b.view(), &rb, bd)
            );
            assert_eq!(
                st.b_in_a_balls.to_vec(),
                brute_counts(b.view(), a.view(), &ra, bd)
            );
            let (_, nab) = nearest_neighbours(a.view(), b.view(), 1).unwrap();
            let (_, nba) = nearest_neighbours(b.view(), a.view(), 1).unwrap();
            assert_eq!(st.a_nearest_b, nab.column(0));
            assert_eq!(st.b_nearest_a, nba.column(0));
        }
    }
}

#[test]
fn one_cross_pass_answers_every_request_as_the_single_kernels_do() {
    // pr (k = 3, closed), prdc (k = 5, open) and the realism score (weights
    // on `a`, probes `b`) in one pass, against each kernel alone, bitwise.
    for (a, b) in [
        (normal(450, 20, 0.0, 1.0, 71), normal(380, 20, 0.3, 1.0, 72)),
        (lattice(300, 6, 4, 73), lattice(250, 6, 4, 74)),
    ] {
        let (ra3, rb3) = (
            kth_neighbour_radii(a.view(), 3).unwrap(),
            kth_neighbour_radii(b.view(), 3).unwrap(),
        );
        let (ra5, rb5) = (
            kth_neighbour_radii(a.view(), 5).unwrap(),
            kth_neighbour_radii(b.view(), 5).unwrap(),
        );
        let w = gen_metrics_linalg::zero_above_percentile(ra3.mapv(|r| r * r).view(), 50.0);
        let reqs = [
            CrossRequest::Balls {
                radii_a: ra3.view(),
                radii_b: rb3.view(),
                boundary: Boundary::Closed,
            },
            CrossRequest::MaxWeightOverDistance {
                weights_a: w.view(),
                power: DistancePower::Squared,
                eps: 1e-5,
            },
            CrossRequest::Balls {
                radii_a: ra5.view(),
                radii_b: rb5.view(),
                boundary: Boundary::Open,
            },
        ];
        let got = cross_pass(a.view(), b.view(), &reqs).unwrap();
        assert_eq!(got.len(), 3);
        let want3 =
            cross_ball_statistics(a.view(), b.view(), ra3.view(), rb3.view(), Boundary::Closed)
                .unwrap();
        let want5 =
            cross_ball_statistics(a.view(), b.view(), ra5.view(), rb5.view(), Boundary::Open)
                .unwrap();
        let want_w =
            max_weight_over_distance(b.view(), a.view(), w.view(), DistancePower::Squared, 1e-5)
                .unwrap();
        assert_eq!(got[0], CrossAnswer::Balls(want3));
        assert_eq!(got[2], CrossAnswer::Balls(want5));
        match &got[1] {
            CrossAnswer::MaxWeight(v) => {
                for (x, y) in v.iter().zip(want_w.iter()) {
                    assert_eq!(x.to_bits(), y.to_bits());
                }
            }
            CrossAnswer::Balls(_) => panic!("wrong answer kind"),
        }
    }
}

#[test]
fn distance_blocks_cover_every_pair_once_and_bound_the_exact_rule() {
    let a = normal(130, 300, 10.0, 0.5, 71);
    let b = normal(77, 300, 10.0, 0.5, 72);
    let want = exact(a.view(), b.view());
    let mut seen = Array2::<u32>::zeros((130, 77));
    for_each_distance_block(a.view(), b.view(), 50, |blk| {
        let approx = blk.approx_squared();
        assert_eq!(approx.dim(), (blk.nrows(), blk.ncols()));
        for ii in 0..blk.nrows() {
            for jj in 0..blk.ncols() {
                let (i, j) = (blk.row0() + ii, blk.col0() + jj);
                seen[[i, j]] += 1;
                let (lo, hi) = blk.squared_bounds(ii, jj);
                let e = want[[i, j]];
                assert!(lo <= e && e <= hi && approx[[ii, jj]] >= 0.0);
                assert_eq!(blk.exact_squared(ii, jj), e);
            }
        }
    })
    .unwrap();
    assert!(seen.iter().all(|&c| c == 1));
}

#[test]
fn squared_distances_exact_and_symmetric() {
    let a = normal(60, 9, 0.0, 1.0, 81);
    let b = normal(45, 9, 0.0, 1.0, 82);
    assert_eq!(
        squared_distances(a.view(), b.view()).unwrap(),
        exact(a.view(), b.view())
    );
    let s = squared_distances(a.view(), a.view()).unwrap();
    assert_eq!(s, exact(a.view(), a.view()));
    assert!((0..60).all(|i| s[[i, i]] == 0.0));
}

#[test]
fn float64_fallback_for_huge_and_subnormal_values() {
    // Squared norms above 2^120 would overflow an f32 GEMM.
    let huge = normal(200, 16, 0.0, 3e37, 91);
    assert_eq!(
        kth_neighbour_radii(huge.view(), 3).unwrap(),
        brute_kth(huge.view(), 3)
    );
    // Subnormal features (a GEMM may flush them to zero).
    let sub = normal(200, 16, 0.0, 1e-39, 92);
    let got = kth_neighbour_radii(sub.view(), 2).unwrap();
    assert_eq!(got, brute_kth(sub.view(), 2));
    assert!(got.iter().all(|&r| r > 0.0));
}

#[test]
fn non_contiguous_views_are_handled() {
    let big = normal(300, 40, 0.0, 1.0, 101);
    let view = big.slice(s![..;2, 3..33]);
    let owned = view.to_owned();
    assert_eq!(
        kth_neighbour_radii(view, 3).unwrap(),
        kth_neighbour_radii(owned.view(), 3).unwrap()
    );
    let t = normal(20, 150, 0.0, 1.0, 102).reversed_axes(); // Fortran order, 150 x 20
    assert_eq!(
        kth_neighbour_radii(t.view(), 2).unwrap(),
        brute_kth(t.view(), 2)
    );
}

#[test]
fn max_abs_cosine_similarity_equals_brute_force() {
    let q = normal(120, 30, 0.1, 1.0, 111);
    let mut r = normal(90, 30, 0.0, 1.0, 112);
    r.row_mut(3).assign(&(&q.row(5) * -2.0)); // anti-parallel: |cos| = 1
    let got = max_abs_cosine_similarity(q.view(), r.view()).unwrap();
    for i in 0..q.nrows() {
        let qi: Vec<f64> = q.row(i).iter().map(|&v| f64::from(v)).collect();
        let nq = qi.iter().map(|v| v * v).sum::<f64>().sqrt();
        let want = (0..r.nrows())
            .map(|j| {
                let rj: Vec<f64> = r.row(j).iter().map(|&v| f64::from(v)).collect();
                let nr = rj.iter().map(|v| v * v).sum::<f64>().sqrt();
                (qi.iter().zip(&rj).map(|(a, b)| a * b).sum::<f64>() / (nq * nr)).abs()
            })
            .fold(0.0, f64::max);
        assert!(
            (got[i] - want).abs() < 1e-14,
            "row {i}: {} vs {want}",
            got[i]
        );
    }
    assert!((got[5] - 1.0).abs() < 1e-15);
    let zero = Array2::<f32>::zeros((2, 30));
    assert!(max_abs_cosine_similarity(zero.view(), r.view()).is_err());
}

#[test]
fn errors_not_panics() {
    let x = normal(10, 4, 0.0, 1.0, 1);
    let y = normal(10, 5, 0.0, 1.0, 2);
    let empty = Array2::<f32>::zeros((0, 4));
    assert!(matches!(
        kth_neighbour_radii(x.view(), 0),
        Err(LinalgError::InvalidParameter(_))
    ));
    assert!(matches!(
        kth_neighbour_radii(x.view(), 10),
        Err(LinalgError::InvalidParameter(_))
    ));
    assert!(kth_neighbour_radii(x.view(), 9).is_ok());
    assert!(matches!(
        kth_neighbour_radii(empty.view(), 1),
        Err(LinalgError::TooFewRows { .. })
    ));
    assert!(matches!(
        kth_neighbour_radii(x.slice(s![..1, ..]), 1),
        Err(LinalgError::TooFewRows { .. })
    ));
    assert!(matches!(
        kth_neighbour_radii_multi(x.view(), &[]),
        Err(LinalgError::InvalidParameter(_))
    ));
    let mut nan = x.clone();
    nan[[3, 2]] = f32::NAN;
    assert!(matches!(
        kth_neighbour_radii(nan.view(), 1),
        Err(LinalgError::NonFinite { row: 3, col: 2, .. })
    ));
    nan[[3, 2]] = f32::INFINITY;
    assert!(matches!(
        nearest_neighbours(x.view(), nan.view(), 1),
        Err(LinalgError::NonFinite { .. })
    ));
    assert!(matches!(
        nearest_neighbours(x.view(), y.view(), 1),
        Err(LinalgError::DimensionMismatch { .. })
    ));
    assert!(matches!(
        nearest_neighbours(x.view(), x.view(), 11),
        Err(LinalgError::InvalidParameter(_))
    ));
    assert!(matches!(
        nearest_neighbours(empty.view(), x.view(), 1),
        Err(LinalgError::TooFewRows { .. })
    ));
    let r = Array1::from_elem(10, 1.0);
    let bad = Array1::from_elem(9, 1.0);
    assert!(count_within_radii(x.view(), x.view(), bad.view(), Boundary::Open).is_err());
    let mut neg = r.clone();
    neg[2] = -1.0;
    assert!(count_within_radii(x.view(), x.view(), neg.view(), Boundary::Open).is_err());
    neg[2] = f64::NAN;
    assert!(smallest_containing_radius(x.view(), x.view(), neg.view(), Boundary::Open).is_err());
    assert!(
        max_weight_over_distance(x.view(), x.view(), r.view(), DistancePower::Squared, -1.0)
            .is_err()
    );
    assert!(
        max_weight_over_distance(x.view(), x.view(), neg.view(), DistancePower::Squared, 0.0)
            .is_err()
    );
    assert!(cross_ball_statistics(x.view(), y.view(), r.view(), r.view(), Boundary::Open).is_err());
    assert!(squared_distances(x.view(), y.view()).is_err());
    assert!(squared_distance(x.row(0), y.row(0)).is_err());
    let no_cols = Array2::<f32>::zeros((5, 0));
    assert!(kth_neighbour_radii(no_cols.view(), 1).is_err());
    assert!(for_each_distance_block(x.view(), y.view(), 4, |_| {}).is_err());
}

#[test]
fn massively_duplicated_rows_resolve_ties_by_index() {
    // 1500 copies of one row: every distance is exactly 0, no bound can
    // separate the candidates, and the k nearest are the k smallest indices.
    let row = normal(1, 40, 5.0, 1.0, 121);
    let x = Array2::from_shape_fn((1500, 40), |(_, j)| row[[0, j]]);
    let (idx, dist) = self_nearest_neighbours(x.view(), 4).unwrap();
    for i in [0, 1, 2, 3, 4, 700, 1499] {
        let want: Vec<usize> = (0..1500).filter(|&j| j != i).take(4).collect();
        assert_eq!(idx.row(i).to_vec(), want, "row {i}");
        assert!(dist.row(i).iter().all(|&d| d == 0.0));
    }
    assert!(
        kth_neighbour_radii(x.view(), 5)
            .unwrap()
            .iter()
            .all(|&r| r == 0.0)
    );
    let q = normal(3, 40, 5.0, 1.0, 122);
    let (idx, _) = nearest_neighbours(q.view(), x.view(), 3).unwrap();
    assert!(idx.rows().into_iter().all(|r| r.to_vec() == vec![0, 1, 2]));
    // All-zero rows (a broken encoder) and two distinct groups of copies.
    let z = Array2::from_shape_fn(
        (900, 16),
        |(i, j)| if i % 3 == 0 { 0.0 } else { (j % 4) as f32 },
    );
    let r = kth_neighbour_radii(z.view(), 3).unwrap();
    assert!(r.iter().all(|&v| v == 0.0));
    let r = kth_neighbour_radii(z.slice(s![..6, ..]), 3).unwrap();
    assert_eq!(r, brute_kth(z.slice(s![..6, ..]), 3));
}
