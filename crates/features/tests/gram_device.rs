//! `OrtGram`, the Gram-block models on ONNX Runtime's CPU execution provider:
//! its products are float32 (float64) dot products, within the float32
//! (float64) bound of the exact value, and registered as the distance
//! engine's device it gives the k-NN answers of the CPU path bit for bit, in
//! the float32 passes and in those with KID's kernel sums (which agree with
//! the CPU's to rounding). The CUDA path is the same code
//! with another execution provider (`tools/gpu_check.sh` measures it on a GPU).
//! One test for the registration: the device is process-wide.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use gen_metrics_features::{Device, FeatureError, OrtGram, RuntimeOptions};
use gen_metrics_linalg::kernels::Kernel;
use gen_metrics_linalg::pairwise::{
    Boundary, GramDevice, ResidentGram, count_within_radii, gram_device_fallbacks,
    kth_neighbour_radii_multi, kth_neighbour_squared_radii_with_kernel, nearest_neighbours,
    set_gram_device,
};
use ndarray::Array2;

/// Counts the float32 and float64 blocks it sends to the ONNX Runtime
/// sessions, and (when `.3`, keeping sets) the passes whose sets it keeps.
struct Counting(Arc<OrtGram>, AtomicUsize, AtomicUsize, bool, AtomicUsize);

impl GramDevice for Counting {
    fn label(&self) -> String {
        self.0.label()
    }

    fn gram(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f32]) -> Result<(), String> {
        self.1.fetch_add(1, Ordering::Relaxed);
        GramDevice::gram(&*self.0, a, b, d, out)
    }

    fn float64(&self) -> bool {
        self.0.float64()
    }

    fn gram64(&self, a: &[f32], b: &[f32], d: usize, out: &mut [f64]) -> Result<(), String> {
        self.2.fetch_add(1, Ordering::Relaxed);
        GramDevice::gram64(&*self.0, a, b, d, out)
    }

    fn resident(&self, a: &[f32], b: Option<&[f32]>, d: usize) -> Option<Box<dyn ResidentGram>> {
        if !self.3 {
            return None;
        }
        self.4.fetch_add(1, Ordering::Relaxed);
        self.0.resident(a, b, d)
    }
}

fn data(n: usize, d: usize, offset: f32, seed: u32) -> Array2<f32> {
    Array2::from_shape_fn((n, d), |(i, j)| {
        let t = (i as u32).wrapping_mul(2_654_435_761) ^ (j as u32).wrapping_mul(40_503) ^ seed;
        offset + (t % 1000) as f32 / 997.0
    })
}

#[test]
fn ort_gram_blocks_are_float32_products_and_keep_every_knn_answer() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let ort = Arc::new(OrtGram::open(&lib, &RuntimeOptions::new()).unwrap());
    assert_eq!(ort.device(), Device::Cpu);
    assert!(ort.fallback_reason().is_none());

    // The products: within the float32 dot-product bound γ_D Σ|a_k b_k|.
    let (a, b) = (data(37, 129, 0.0, 1), data(23, 129, -0.5, 2));
    let g = ort.gram(a.view(), b.view()).unwrap();
    assert_eq!(g.shape(), [37, 23]);
    let gamma = 129.0 * 2f64.powi(-24) / (1.0 - 129.0 * 2f64.powi(-24));
    for i in 0..37 {
        for j in 0..23 {
            let (mut exact, mut abs) = (0.0f64, 0.0f64);
            for k in 0..129 {
                let p = f64::from(a[[i, k]]) * f64::from(b[[j, k]]);
                exact += p;
                abs += p.abs();
            }
            let err = (f64::from(g[[i, j]]) - exact).abs();
            assert!(err <= gamma * abs, "({i}, {j}): {} vs {exact}", g[[i, j]]);
        }
    }
    // The float64 products: within γ_D Σ|a_k b_k| at u = 2^-53 of the exact
    // sum (the float32 products a_k b_k are exact in float64; the reference
    // adds them with a compensated sum).
    assert!(ort.float64(), "{:?}", ort.float64_unavailable());
    let g64 = ort.gram64(a.view(), b.view()).unwrap();
    let gamma64 = 129.0 * 2f64.powi(-53) / (1.0 - 129.0 * 2f64.powi(-53));
    let mut inexact = 0;
    for i in 0..37 {
        for j in 0..23 {
            let (mut sum, mut comp, mut abs) = (0.0f64, 0.0f64, 0.0f64);
            for k in 0..129 {
                let p = f64::from(a[[i, k]]) * f64::from(b[[j, k]]);
                let t = sum + p;
                comp += if sum.abs() >= p.abs() {
                    (sum - t) + p
                } else {
                    (p - t) + sum
                };
                sum = t;
                abs += p.abs();
            }
            let exact = sum + comp;
            let err = (g64[[i, j]] - exact).abs();
            assert!(
                err <= gamma64 * abs,
                "({i}, {j}): {} vs {exact}",
                g64[[i, j]]
            );
            // Not the float32 products widened.
            inexact += usize::from(g64[[i, j]] != f64::from(g[[i, j]]));
        }
    }
    assert!(inexact > 0, "the float64 block equals the float32 one");
    // A transposed (non-contiguous) view is multiplied as its values.
    let at = a.t().to_owned();
    assert_eq!(ort.gram(at.t(), b.view()).unwrap(), g);
    // Bad blocks are errors, not panics.
    assert!(matches!(
        ort.gram(a.view(), data(5, 7, 0.0, 3).view()),
        Err(FeatureError::InvalidInput { .. })
    ));
    assert!(ort.gram(a.slice(ndarray::s![..0, ..]), b.view()).is_err());

    // Registered as the engine's device: the same answers, bit for bit, on a
    // large common offset (heavy cancellation, many rechecks) and on rows
    // with exact duplicates.
    let sets = [
        (data(300, 64, 500.0, 4), data(220, 64, 500.0, 5)),
        (
            data(260, 16, 0.0, 6).mapv(|v| (v * 3.0).floor()),
            data(200, 16, 0.0, 7).mapv(|v| (v * 3.0).floor()),
        ),
    ];
    let answers = |x: &Array2<f32>, y: &Array2<f32>| {
        let radii = kth_neighbour_radii_multi(x.view(), &[1, 3, 5]).unwrap();
        let nn = nearest_neighbours(y.view(), x.view(), 3).unwrap();
        let counts =
            count_within_radii(y.view(), x.view(), radii[1].view(), Boundary::Closed).unwrap();
        (radii, nn, counts)
    };
    let cpu: Vec<_> = sets.iter().map(|(x, y)| answers(x, y)).collect();
    // The pass exact KID shares with the k-NN radii: float64 blocks.
    let subsets = |n: usize| Array2::from_shape_fn((2, n / 3), |(s, i)| i * 3 + s);
    let with_kernel = |x: &Array2<f32>| {
        let kernel = Kernel::kid(x.ncols());
        kth_neighbour_squared_radii_with_kernel(
            x.view(),
            &[1, 3],
            kernel,
            subsets(x.nrows()).view(),
        )
        .unwrap()
    };
    let cpu_kid: Vec<_> = sets.iter().map(|(x, _)| with_kernel(x)).collect();
    // Each block's rows sent, then each pass's sets kept on the device.
    for keeps_sets in [false, true] {
        let counting = Arc::new(Counting(
            Arc::clone(&ort),
            AtomicUsize::new(0),
            AtomicUsize::new(0),
            keeps_sets,
            AtomicUsize::new(0),
        ));
        set_gram_device(Some(counting.clone()));
        for ((x, y), want) in sets.iter().zip(&cpu) {
            assert_eq!(&answers(x, y), want, "sets kept: {keeps_sets}");
        }
        for ((x, _), want) in sets.iter().zip(&cpu_kid) {
            let got = with_kernel(x);
            assert_eq!(got.radii, want.radii);
            let sums = |r: &gen_metrics_linalg::pairwise::RadiiAndSums| {
                let mut v = vec![r.within.off_diagonal.value(), r.within.diagonal.value()];
                v.extend(r.subset_within.iter().map(|c| c.value()));
                v
            };
            for (p, q) in sums(&got).into_iter().zip(sums(want)) {
                assert!((p - q).abs() <= 1e-13 * q.abs(), "kernel sum {p} vs {q}");
            }
        }
        set_gram_device(None);
        let (sent32, sent64, kept) = (
            counting.1.load(Ordering::Relaxed),
            counting.2.load(Ordering::Relaxed),
            counting.4.load(Ordering::Relaxed),
        );
        if keeps_sets {
            assert!(
                kept > 0 && sent32 == 0 && sent64 == 0,
                "{sent32} {sent64} {kept}"
            );
            assert!(ort.not_resident().is_none(), "{:?}", ort.not_resident());
        } else {
            assert!(sent32 > 0, "the session multiplied no block");
            assert!(sent64 > 0, "the float64 session multiplied no block");
        }
        assert_eq!(gram_device_fallbacks(), 0);
        assert_eq!(counting.label(), "onnxruntime-cpu");
    }

    // Kept sets serve any block by row range, as the sent rows do; bad
    // ranges are errors.
    let (x, y) = &sets[0];
    let kept = ort.keep(x.view(), Some(y.view())).unwrap();
    let mut g = vec![0.0f32; 7 * 5];
    ResidentGram::gram(&kept, (10, 7), (200, 5), &mut g).unwrap();
    let want = ort
        .gram(
            x.slice(ndarray::s![10..17, ..]),
            y.slice(ndarray::s![200..205, ..]),
        )
        .unwrap();
    assert_eq!(g, want.as_slice().unwrap());
    let mut g64 = vec![0.0f64; 7 * 5];
    ResidentGram::gram64(&kept, (10, 7), (200, 5), &mut g64).unwrap();
    let want64 = ort
        .gram64(
            x.slice(ndarray::s![10..17, ..]),
            y.slice(ndarray::s![200..205, ..]),
        )
        .unwrap();
    assert_eq!(g64, want64.as_slice().unwrap());
    assert!(ResidentGram::gram(&kept, (295, 7), (0, 5), &mut g).is_err());
    assert!(ResidentGram::gram(&kept, (0, 7), (0, 6), &mut g).is_err());
    let itself = ort.keep(x.view(), None).unwrap();
    ResidentGram::gram(&itself, (10, 7), (20, 5), &mut g).unwrap();
    let want = ort
        .gram(
            x.slice(ndarray::s![10..17, ..]),
            x.slice(ndarray::s![20..25, ..]),
        )
        .unwrap();
    assert_eq!(g, want.as_slice().unwrap());
    assert!(ort.keep(x.view(), Some(data(5, 7, 0.0, 3).view())).is_err());
}

#[test]
fn asking_for_cuda_without_it_falls_back_or_fails_as_asked() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let cuda = RuntimeOptions::new().device(Device::Cuda { device_id: 0 });
    // This machine's library is the CPU one: a build without the `cuda`
    // feature, or no GPU, falls back to the CPU with the reason...
    let g = OrtGram::open(&lib, &cuda).unwrap();
    assert_eq!(g.device(), Device::Cpu);
    assert!(g.fallback_reason().is_some());
    // ...or fails when the device is required.
    let mut required = cuda.clone();
    required.require_device = true;
    assert!(OrtGram::open(&lib, &required).is_err());
}
