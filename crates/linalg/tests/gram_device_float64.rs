//! The passes with a kernel tap (exact KID, alone or with the k-NN metrics)
//! on a registered [`GramDevice`] that forms float64 blocks: the distance
//! answers are the CPU path's bit for bit, the kernel sums agree with the
//! CPU's to the float64 rounding of the products (not bit for bit: the
//! device sums in its own order), and are the same whatever distance
//! questions share the pass. A device without float64 blocks is never asked
//! for them; one that fails is replaced by the CPU for that block and
//! counted. One test, because the device is process-wide: this file is its
//! own test process.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::KeptSets;
use gen_metrics_linalg::kernels::{CompensatedSum, Kernel, SubsetKernelSums};
use gen_metrics_linalg::pairwise::{
    Boundary, CrossAnswer, CrossRequest, GramDevice, ResidentGram, cross_pass_with_kernel,
    gram_device_fallbacks, kernel_sums_with_subsets, kth_neighbour_squared_radii_with_kernel,
    set_gram_device,
};
use ndarray::{Array1, Array2};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// How a mock device forms its float64 blocks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// `k = d − 1, …, 0` with fused multiply–adds in float64.
    Reversed,
    /// Says it forms no float64 blocks (the trait's default).
    Float32Only,
    /// Fails every float64 call.
    Fails,
}

struct Mock {
    mode: Mode,
    /// Keeps each pass's sets ([`GramDevice::resident`]).
    keeps_sets: bool,
    /// Float64 blocks formed, from sent rows or kept sets.
    calls64: Arc<AtomicUsize>,
    /// Float64 blocks formed from sent rows.
    sent64: AtomicUsize,
}

impl Mock {
    fn new(mode: Mode, keeps_sets: bool) -> Arc<Self> {
        Arc::new(Mock {
            mode,
            keeps_sets,
            calls64: Arc::new(AtomicUsize::new(0)),
            sent64: AtomicUsize::new(0),
        })
    }

    fn calls(&self) -> usize {
        self.calls64.load(Ordering::Relaxed)
    }
}

/// `out = A Bᵀ` in float64, summed from the last term with fused
/// multiply–adds.
fn reversed64(a: &[f32], b: &[f32], d: usize, out: &mut [f64]) {
    let nj = b.len() / d;
    for (i, ra) in a.chunks_exact(d).enumerate() {
        for (j, rb) in b.chunks_exact(d).enumerate() {
            out[i * nj + j] = (0..d)
                .rev()
                .fold(0.0f64, |s, k| f64::from(ra[k]).mul_add(f64::from(rb[k]), s));
        }
    }
}

/// A mock device's copy of one pass's sets.
struct Kept {
    sets: KeptSets,
    calls64: Arc<AtomicUsize>,
}

impl ResidentGram for Kept {
    fn gram(&self, _: (usize, usize), _: (usize, usize), _: &mut [f32]) -> Result<(), String> {
        Err("the float64 passes ask for float64 blocks".into())
    }

    fn gram64(
        &self,
        rows: (usize, usize),
        cols: (usize, usize),
        out: &mut [f64],
    ) -> Result<(), String> {
        self.calls64.fetch_add(1, Ordering::Relaxed);
        let (a, b) = self.sets.block(rows, cols)?;
        reversed64(a, b, self.sets.d(), out);
        Ok(())
    }
}

impl GramDevice for Mock {
    fn label(&self) -> String {
        format!("mock {:?}", self.mode)
    }

    fn gram(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f32]) -> Result<(), String> {
        let nj = b.len() / d;
        for (i, ra) in a.chunks_exact(d).enumerate() {
            for (j, rb) in b.chunks_exact(d).enumerate() {
                out[i * nj + j] = (0..d).rev().fold(0.0f32, |s, k| ra[k].mul_add(rb[k], s));
            }
        }
        Ok(())
    }

    fn float64(&self) -> bool {
        self.mode != Mode::Float32Only
    }

    fn gram64(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f64]) -> Result<(), String> {
        self.calls64.fetch_add(1, Ordering::Relaxed);
        self.sent64.fetch_add(1, Ordering::Relaxed);
        if self.mode == Mode::Fails {
            return Err("the mock device is down".into());
        }
        reversed64(a, b, d, out);
        Ok(())
    }

    fn resident(&self, a: &[f32], b: Option<&[f32]>, d: usize) -> Option<Box<dyn ResidentGram>> {
        (self.keeps_sets && self.mode == Mode::Reversed).then(|| {
            Box::new(Kept {
                sets: KeptSets::new(a, b, d),
                calls64: Arc::clone(&self.calls64),
            }) as Box<dyn ResidentGram>
        })
    }
}

/// The radii, cross answers and kernel sums of one evaluation.
#[derive(Debug, PartialEq)]
struct Run {
    radii_x: Vec<Array1<f64>>,
    radii_y: Vec<Array1<f64>>,
    cross: Vec<CrossAnswer>,
    sums: SubsetKernelSums,
}

fn subsets(n: usize) -> Array2<usize> {
    // Three subsets of a quarter of the rows each, strided.
    Array2::from_shape_fn((3, n / 4), |(s, i)| (i * 4 + s) % n)
}

fn run(x: &Array2<f32>, y: &Array2<f32>) -> Run {
    let kernel = Kernel::kid(x.ncols());
    let (sx, sy) = (subsets(x.nrows()), subsets(y.nrows()));
    let rx = kth_neighbour_squared_radii_with_kernel(x.view(), &[1, 3], kernel, sx.view()).unwrap();
    let ry = kth_neighbour_squared_radii_with_kernel(y.view(), &[3], kernel, sy.view()).unwrap();
    let radii_a = rx.radii[1].mapv(f64::sqrt);
    let radii_b = ry.radii[0].mapv(f64::sqrt);
    let xy = cross_pass_with_kernel(
        x.view(),
        y.view(),
        &[CrossRequest::Balls {
            radii_a: radii_a.view(),
            radii_b: radii_b.view(),
            boundary: Boundary::Closed,
        }],
        kernel,
        sx.view(),
        sy.view(),
    )
    .unwrap();
    let cross = xy.answers.clone();
    Run {
        radii_x: rx.radii.clone(),
        radii_y: ry.radii.clone(),
        cross,
        sums: SubsetKernelSums::from_passes(rx, ry, xy),
    }
}

/// Every sum of `s`, in one order.
fn all_sums(s: &SubsetKernelSums) -> Vec<f64> {
    let v = |c: &CompensatedSum| c.value();
    [
        s.within_x.off_diagonal,
        s.within_x.diagonal,
        s.within_y.off_diagonal,
        s.within_y.diagonal,
        s.between,
    ]
    .iter()
    .chain(&s.subset_within_x)
    .chain(&s.subset_within_y)
    .chain(&s.subset_between)
    .map(v)
    .collect()
}

/// Largest relative difference of two runs' sums.
fn sums_gap(a: &SubsetKernelSums, b: &SubsetKernelSums) -> f64 {
    all_sums(a)
        .iter()
        .zip(all_sums(b))
        .map(|(p, q)| (p - q).abs() / q.abs())
        .fold(0.0, f64::max)
}

fn datasets() -> Vec<(&'static str, Array2<f32>, Array2<f32>)> {
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    // Non-negative activations of several binades, as CNN features are (data
    // on one coarse grid would make every float64 sum exact, whatever the
    // order).
    let act = |r: f32| 0.3 + 3.0 * r * r * r;
    let feats = Array2::from_shape_fn((300, 48), |_| act(rng.random::<f32>()));
    let feats_y = Array2::from_shape_fn((260, 48), |_| 1.1 * act(rng.random::<f32>()));
    // Integer rows with duplicates: exact ties and zero radii.
    let base = Array2::from_shape_fn((80, 20), |_| rng.random_range(0..3u32) as f32);
    let lattice = Array2::from_shape_fn((240, 20), |(i, j)| base[[(i * 7919) % 80, j]]);
    let lattice_y = Array2::from_shape_fn((200, 20), |(i, j)| base[[(i * 31) % 80, j]]);
    // More rows than one float64 device block (1024): diagonal and
    // off-diagonal device blocks.
    let many = Array2::from_shape_fn((1100, 8), |_| 0.1 + 0.77 * rng.random::<f32>());
    let many_y = Array2::from_shape_fn((1050, 8), |_| 0.1 + 0.93 * rng.random::<f32>());
    vec![
        ("features", feats, feats_y),
        ("lattice", lattice, lattice_y),
        ("two device blocks", many, many_y),
    ]
}

#[test]
fn a_float64_device_keeps_every_distance_answer_and_the_kernel_sums_to_rounding() {
    let data = datasets();
    let cpu: Vec<Run> = data.iter().map(|(_, x, y)| run(x, y)).collect();

    // A device without float64 blocks: the tap passes stay on the CPU, bit
    // for bit.
    let f32_only = Mock::new(Mode::Float32Only, true);
    set_gram_device(Some(f32_only.clone()));
    for ((name, x, y), want) in data.iter().zip(&cpu) {
        assert_eq!(&run(x, y), want, "float32-only device on {name}");
    }
    assert_eq!(f32_only.calls(), 0, "gram64 asked of a float32-only device");

    // A float64 device, sent each block's rows or keeping the pass's sets
    // (only row ranges sent): the same sums either way.
    let mut first: Vec<SubsetKernelSums> = Vec::new();
    for keeps_sets in [false, true] {
        let dev = Mock::new(Mode::Reversed, keeps_sets);
        set_gram_device(Some(dev.clone()));
        let fallbacks = gram_device_fallbacks();
        for (t, ((name, x, y), want)) in data.iter().zip(&cpu).enumerate() {
            let got = run(x, y);
            assert_eq!(got.radii_x, want.radii_x, "{name}: radii of x");
            assert_eq!(got.radii_y, want.radii_y, "{name}: radii of y");
            assert_eq!(got.cross, want.cross, "{name}: cross answers");
            // Each kernel value moves by at most a few ulps of its terms
            // here (non-negative or integer rows: no cancellation in the
            // products).
            let gap = sums_gap(&got.sums, &want.sums);
            assert!(gap < 1e-13, "{name}: kernel sums differ by {gap:e}");
            // The same device gives the same sums again, and the sums do not
            // depend on the distance questions sharing the pass.
            assert_eq!(run(x, y).sums, got.sums, "{name}: rerun");
            let kernel = Kernel::kid(x.ncols());
            let (sx, sy) = (subsets(x.nrows()), subsets(y.nrows()));
            let alone =
                kernel_sums_with_subsets(x.view(), y.view(), kernel, sx.view(), sy.view()).unwrap();
            assert_eq!(alone, got.sums, "{name}: sums alone");
            if keeps_sets {
                assert_eq!(got.sums, first[t], "{name}: kept sets");
            } else {
                first.push(got.sums);
            }
        }
        assert!(dev.calls() > 0, "the float64 device formed no block");
        let sent = dev.sent64.load(Ordering::Relaxed);
        assert_eq!(sent == 0, keeps_sets, "{sent} blocks' rows sent");
        assert_eq!(gram_device_fallbacks(), fallbacks);
    }
    let dev = Mock::new(Mode::Reversed, false);

    // The device's products really differ from a forward float64 sum on
    // this data (else the test would not show that the answers survive
    // another order; the sums of ~10⁵ kernel values hide a last-bit change
    // of a few terms, so this is checked on the products).
    let (_, x, _) = &data[0];
    let rows = x.slice(ndarray::s![..60, ..]).to_owned();
    let flat = rows.as_slice().unwrap();
    let d = x.ncols();
    let mut g = vec![0.0f64; 60 * 60];
    dev.gram64(flat, flat, d, &mut g).unwrap();
    let forward = |r: usize, c: usize| -> f64 {
        (0..d).fold(0.0f64, |s, k| {
            s + f64::from(x[[r, k]]) * f64::from(x[[c, k]])
        })
    };
    let differ = (0..60 * 60)
        .filter(|&t| g[t] != forward(t / 60, t % 60))
        .count();
    assert!(differ > 100, "only {differ} of 3600 products differ");

    // A failing float64 device: every block is multiplied again on the
    // CPU, counted, with the same answers.
    let down = Mock::new(Mode::Fails, false);
    set_gram_device(Some(down.clone()));
    let fallbacks = gram_device_fallbacks();
    for ((name, x, y), want) in data.iter().zip(&cpu) {
        let got = run(x, y);
        assert_eq!(
            (&got.radii_x, &got.radii_y, &got.cross),
            (&want.radii_x, &want.radii_y, &want.cross),
            "failing device on {name}"
        );
        assert!(sums_gap(&got.sums, &want.sums) < 1e-13, "{name}");
    }
    assert!(down.calls() > 0);
    assert_eq!(gram_device_fallbacks() - fallbacks, down.calls());
    set_gram_device(None);
}
