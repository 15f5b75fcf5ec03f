//! Property tests (proptest, issue #12 item 4) of the streaming Gaussian
//! accumulator: for any rows and any split of them into consecutive chunks
//! (each pushed to its own accumulator, in batches of any size, its state
//! moved through `to_parts` / `from_parts` as a distributed rank's would be,
//! then merged in order or in reverse), the merged state equals one pass over
//! all rows.
//!
//! Tolerance: Chan et al.'s pairwise update is exact in exact arithmetic; in
//! float64 the order of the additions differs, so the co-moment may differ by
//! a few ulps of the largest term it sums, `Σ_i ‖x_i − μ‖²` (bounded by
//! `γ_{2n} · Σ‖x_i‖²`, here `1e-12` relative with a wide margin). The row
//! count must be exact, and a round trip through parts is bit-exact.

use gen_metrics_linalg::GaussianAccumulator;
use ndarray::{Array2, s};
use proptest::prelude::*;

/// `n × d` rows (1 ≤ d ≤ 5, 2 ≤ n ≤ 40) with a common offset, so the
/// centring in the update matters.
fn rows() -> impl Strategy<Value = Array2<f32>> {
    (1usize..=5, 2usize..=40, -1000.0f32..1000.0).prop_flat_map(|(d, n, offset)| {
        prop::collection::vec(-10.0f32..10.0, n * d).prop_map(move |v| {
            Array2::from_shape_vec((n, d), v.into_iter().map(|x| x + offset).collect())
                .expect("n * d values")
        })
    })
}

/// Rows and sorted cut points in `0..=n` (empty chunks allowed).
fn rows_and_cuts() -> impl Strategy<Value = (Array2<f32>, Vec<usize>)> {
    rows().prop_flat_map(|x| {
        let n = x.nrows();
        (
            Just(x),
            prop::collection::vec(0..=n, 0..5).prop_map(|mut c| {
                c.sort_unstable();
                c
            }),
        )
    })
}

fn one_pass(x: &Array2<f32>) -> GaussianAccumulator {
    let mut acc = GaussianAccumulator::new(x.ncols()).expect("d > 0");
    acc.push(x.view()).expect("finite rows");
    acc
}

fn assert_same_state(got: &GaussianAccumulator, want: &GaussianAccumulator, x: &Array2<f32>) {
    let (g, w) = (got.to_parts(), want.to_parts());
    assert_eq!(g.n, w.n);
    let scale: f64 = x
        .iter()
        .map(|&v| f64::from(v) * f64::from(v))
        .sum::<f64>()
        .max(1.0);
    for (a, b) in g.mean.iter().zip(&w.mean) {
        assert!(
            (a - b).abs() <= 1e-12 * scale.sqrt(),
            "mean {a} vs {b} (scale {scale})"
        );
    }
    for (a, b) in g.comoment.iter().zip(&w.comoment) {
        assert!(
            (a - b).abs() <= 1e-12 * scale,
            "comoment {a} vs {b} (scale {scale})"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn merged_chunks_equal_one_pass(
        (x, cuts) in rows_and_cuts(),
        batch in 1usize..8,
        reverse in any::<bool>(),
    ) {
        let d = x.ncols();
        let mut bounds = vec![0];
        bounds.extend(&cuts);
        bounds.push(x.nrows());
        // One accumulator per chunk, fed in batches of `batch` rows, moved
        // through its parts.
        let mut ranks: Vec<GaussianAccumulator> = bounds
            .windows(2)
            .map(|w| {
                let mut acc = GaussianAccumulator::new(d).expect("d > 0");
                let mut r = w[0];
                while r < w[1] {
                    let e = (r + batch).min(w[1]);
                    acc.push(x.slice(s![r..e, ..])).expect("finite rows");
                    r = e;
                }
                let parts = acc.to_parts();
                let rebuilt = GaussianAccumulator::from_parts(parts.clone()).expect("valid parts");
                assert_eq!(rebuilt.to_parts(), parts, "parts round trip");
                rebuilt
            })
            .collect();
        if reverse {
            ranks.reverse();
        }
        let mut merged = GaussianAccumulator::new(d).expect("d > 0");
        for r in &ranks {
            merged.merge(r).expect("same dimension");
        }
        let want = one_pass(&x);
        assert_same_state(&merged, &want, &x);
        let (a, b) = (merged.finalize(1).expect("n >= 2"), want.finalize(1).expect("n >= 2"));
        prop_assert_eq!(a.n, b.n);
    }
}
