//! The float32 passes with their blocks multiplied by a registered
//! [`GramDevice`] give the answers of the CPU path bit for bit.
//!
//! The exactness rule covers a dot product summed in any order in float32,
//! so devices that sum in other orders than `faer` (reversed, in four
//! interleaved partial sums, with fused multiply–adds) must change nothing;
//! a device that fails or returns a non-finite value is replaced by the CPU
//! for that block and counted. One test, because the device is
//! process-wide: this file is its own test process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::KeptSets;
use gen_metrics_linalg::LinalgError;
use gen_metrics_linalg::pairwise::{
    Boundary, CrossRequest, DistancePower, GramDevice, ResidentGram, count_within_radii,
    cross_pass, gram_device, gram_device_fallbacks, kth_neighbour_radii_multi, nearest_neighbours,
    self_nearest_neighbours, set_gram_device,
};
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a mock device sums each dot product.
#[derive(Clone, Copy, Debug)]
enum Order {
    /// `k = d − 1, …, 0`, one float32 accumulator, fused multiply–adds.
    Reversed,
    /// Four interleaved float32 partial sums, added pairwise at the end.
    Interleaved,
    /// Fails every call.
    Fails,
    /// Returns NaN in every block.
    Garbage,
    /// Inputs rounded to bfloat16 first (a tensor-core mode the rule does
    /// not cover): the negative control.
    Bf16,
}

fn bf16(v: f32) -> f32 {
    // Round to nearest even on the upper 16 bits.
    let b = v.to_bits();
    f32::from_bits((b + 0x7fff + ((b >> 16) & 1)) & 0xffff_0000)
}

struct Mock {
    order: Order,
    /// Keeps each pass's sets ([`GramDevice::resident`]).
    keeps_sets: bool,
    calls: AtomicUsize,
    resident_calls: Arc<AtomicUsize>,
}

impl Mock {
    fn new(order: Order, keeps_sets: bool) -> Self {
        Mock {
            order,
            keeps_sets,
            calls: AtomicUsize::new(0),
            resident_calls: Arc::new(AtomicUsize::new(0)),
        }
    }
}

/// A mock device's copy of one pass's sets.
struct Kept {
    order: Order,
    sets: KeptSets,
    calls: Arc<AtomicUsize>,
}

impl ResidentGram for Kept {
    fn gram(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f32],
    ) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        let (a, b) = self.sets.block(rows, cols)?;
        products(self.order, a, b, self.sets.d(), out)
    }

    fn gram64(&self, _: (usize, usize), _: (usize, usize), _: &mut [f64]) -> Result<(), String> {
        Err("float32 only".into())
    }
}

/// `out = A Bᵀ` summed as `order` says.
fn products(order: Order, a: &[f32], b: &[f32], d: usize, out: &mut [f32]) -> Result<(), String> {
    let nj = b.len() / d;
    for (i, ra) in a.chunks_exact(d).enumerate() {
        for (j, rb) in b.chunks_exact(d).enumerate() {
            out[i * nj + j] = match order {
                Order::Reversed => (0..d).rev().fold(0.0f32, |s, k| ra[k].mul_add(rb[k], s)),
                Order::Interleaved => {
                    let mut p = [0.0f32; 4];
                    for k in 0..d {
                        p[k % 4] += ra[k] * rb[k];
                    }
                    (p[0] + p[1]) + (p[2] + p[3])
                }
                Order::Fails => return Err("the mock device is down".into()),
                Order::Garbage => f32::NAN,
                Order::Bf16 => (0..d).fold(0.0f32, |s, k| bf16(ra[k]).mul_add(bf16(rb[k]), s)),
            };
        }
    }
    Ok(())
}

impl GramDevice for Mock {
    fn label(&self) -> String {
        format!("mock {:?}", self.order)
    }

    fn gram(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f32]) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        products(self.order, a, b, d, out)
    }

    fn resident(&self, a: &[f32], b: Option<&[f32]>, d: usize) -> Option<Box<dyn ResidentGram>> {
        self.keeps_sets.then(|| {
            Box::new(Kept {
                order: self.order,
                sets: KeptSets::new(a, b, d),
                calls: Arc::clone(&self.resident_calls),
            }) as Box<dyn ResidentGram>
        })
    }
}

/// Every float32 question the engine answers, on `x` and `y`.
#[derive(Debug, PartialEq)]
struct Answers {
    radii: Vec<Array1<f64>>,
    self_nn: (Array2<usize>, Array2<f64>),
    nn: (Array2<usize>, Array2<f64>),
    counts: Array1<usize>,
    cross: Vec<gen_metrics_linalg::pairwise::CrossAnswer>,
}

fn answers(x: &Array2<f32>, y: &Array2<f32>) -> Result<Answers, LinalgError> {
    let radii = kth_neighbour_radii_multi(x.view(), &[1, 3, 5])?;
    let weights = Array1::from_shape_fn(x.nrows(), |i| 1.0 + (i % 3) as f64);
    let cross = cross_pass(
        x.view(),
        y.view(),
        &[
            CrossRequest::Balls {
                radii_a: radii[1].view(),
                radii_b: radii[2].view().slice_move(ndarray::s![..y.nrows()]),
                boundary: Boundary::Closed,
            },
            CrossRequest::MaxWeightOverDistance {
                weights_a: weights.view(),
                power: DistancePower::Distance,
                eps: 1e-5,
            },
        ],
    )?;
    Ok(Answers {
        self_nn: self_nearest_neighbours(x.view(), 4)?,
        nn: nearest_neighbours(y.view(), x.view(), 3)?,
        counts: count_within_radii(y.view(), x.view(), radii[0].view(), Boundary::Open)?,
        radii,
        cross,
    })
}

/// Data that makes the interval test straddle: a large common offset (heavy
/// cancellation), integer rows with duplicates (exact ties, zero radii), and
/// rows one float32 step away from others.
fn datasets() -> Vec<(&'static str, Array2<f32>, Array2<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let offset = Array2::from_shape_fn((260, 40), |_| 300.0 + rng.random::<f32>());
    let offset_y = Array2::from_shape_fn((230, 40), |_| 300.0 + rng.random::<f32>());
    let base = Array2::from_shape_fn((90, 24), |_| rng.random_range(0..3u32) as f32);
    let lattice = Array2::from_shape_fn((270, 24), |(i, j)| base[[(i * 7919) % 90, j]]);
    let lattice_y = Array2::from_shape_fn((200, 24), |(i, j)| base[[(i * 31) % 90, j]]);
    let mut nudged = Array2::from_shape_fn((240, 33), |_| rng.random::<f32>());
    for i in (1..240).step_by(2) {
        for j in 0..33 {
            let v = nudged[[i - 1, j]];
            nudged[[i, j]] = if j % 5 == 0 {
                f32::from_bits(v.to_bits() + 1)
            } else {
                v
            };
        }
    }
    let nudged_y = nudged.slice(ndarray::s![..200, ..]).to_owned();
    // More rows than one device block (2048): diagonal and off-diagonal
    // blocks, row-driven passes over several column blocks.
    let base = Array2::from_shape_fn((700, 8), |_| rng.random_range(0..4u32) as f32);
    let many = Array2::from_shape_fn((2600, 8), |(i, j)| base[[(i * 7919) % 700, j]] + 50.0);
    let many_y = Array2::from_shape_fn((2100, 8), |(i, j)| base[[(i * 31) % 700, j]] + 50.0);
    vec![
        ("offset", offset, offset_y),
        ("lattice", lattice, lattice_y),
        ("one ulp apart", nudged, nudged_y),
        ("two device blocks", many, many_y),
    ]
}

#[test]
fn a_device_summing_in_any_float32_order_changes_no_answer() {
    assert!(gram_device().is_none(), "no device by default");
    let data = datasets();
    let cpu: Vec<Answers> = data
        .iter()
        .map(|(_, x, y)| answers(x, y).unwrap())
        .collect();
    // The mock orders really differ from a forward float32 sum on this data.
    let (_, x, _) = &data[0];
    let forward = |r: usize, c: usize| -> f32 {
        (0..x.ncols()).fold(0.0f32, |s, k| s + x[[r, k]] * x[[c, k]])
    };
    let rows = x.slice(ndarray::s![..40, ..]).to_owned();
    let flat = rows.as_slice().unwrap();
    for order in [Order::Reversed, Order::Interleaved] {
        let mut g = vec![0.0f32; 40 * 40];
        let m = Mock::new(order, false);
        m.gram(flat, flat, x.ncols(), &mut g).unwrap();
        let differ = (0..40 * 40)
            .filter(|&t| g[t] != forward(t / 40, t % 40))
            .count();
        assert!(
            differ > 100,
            "{order:?}: only {differ} of 1600 products differ"
        );
    }
    // Each order with the blocks' rows sent, and with the pass's sets kept
    // on the device (only row ranges sent).
    for order in [Order::Reversed, Order::Interleaved] {
        for keeps_sets in [false, true] {
            let mock = Arc::new(Mock::new(order, keeps_sets));
            set_gram_device(Some(mock.clone()));
            for ((name, x, y), want) in data.iter().zip(&cpu) {
                assert_eq!(
                    &answers(x, y).unwrap(),
                    want,
                    "{order:?} (sets kept: {keeps_sets}) on {name}"
                );
            }
            let (sent, kept) = (
                mock.calls.load(Ordering::Relaxed),
                mock.resident_calls.load(Ordering::Relaxed),
            );
            if keeps_sets {
                assert!(
                    sent == 0 && kept > 0,
                    "{order:?}: {sent} blocks sent, {kept} kept"
                );
            } else {
                assert!(
                    sent > 0 && kept == 0,
                    "{order:?}: {sent} blocks sent, {kept} kept"
                );
            }
            assert_eq!(gram_device_fallbacks(), 0);
        }
    }
    // A failing device, and one returning NaN: the CPU takes over each
    // block, the answers stay, the fallbacks are counted.
    for order in [Order::Fails, Order::Garbage] {
        let mock = Arc::new(Mock::new(order, false));
        set_gram_device(Some(mock.clone()));
        let fallbacks = gram_device_fallbacks();
        for ((name, x, y), want) in data.iter().zip(&cpu) {
            assert_eq!(&answers(x, y).unwrap(), want, "{order:?} on {name}");
        }
        let calls = mock.calls.load(Ordering::Relaxed);
        assert!(calls > 0);
        assert_eq!(gram_device_fallbacks() - fallbacks, calls, "{order:?}");
    }
    // The negative control: a device below float32 (bfloat16 inputs) breaks
    // the bound, and the test sees it (a wrong answer, or the engine's own
    // invariant check failing).
    set_gram_device(Some(Arc::new(Mock::new(Order::Bf16, true))));
    let broken = data
        .iter()
        .zip(&cpu)
        .filter(|((_, x, y), want)| answers(x, y).map_or(true, |a| a != **want))
        .count();
    assert!(
        broken > 0,
        "bfloat16 inputs changed no answer: the test is blind"
    );
    let last = set_gram_device(None);
    assert_eq!(last.map(|d| d.label()), Some("mock Bf16".to_string()));
    assert!(gram_device().is_none());
}
