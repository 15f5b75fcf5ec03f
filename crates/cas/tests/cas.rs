//! CAS and its classifier: scikit-learn cross-check, separable data, a
//! generator that drops classes, determinism, the conformance case
//! `clusters` (fake lacks 3 modes), and error cases.

use gen_metrics_cas::CasError;
use gen_metrics_cas::logistic::LogisticRegression;
use gen_metrics_cas::score::{ClassificationAccuracyScore, LabelledFeatures};
use gen_metrics_testkit::{Case, assert_close};
use ndarray::Array2;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Python: `X[:, j] = sin(i*(j+1)*0.37)*(1+j) + 0.8*(y == j % 3) + 0.1*j`, `y = i % 3`, float32.
fn sklearn_fixture() -> (Array2<f32>, Vec<usize>) {
    let n = 150;
    let y: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let x = Array2::from_shape_fn((n, 4), |(i, j)| {
        let v = (((i * (j + 1)) as f64) * 0.37).sin() * (1.0 + j as f64)
            + 0.8 * f64::from(u8::from(y[i] == j % 3))
            + 0.1 * j as f64;
        v as f32
    });
    (x, y)
}

#[test]
fn matches_scikit_learn_multinomial() {
    // scikit-learn 1.9.1: LogisticRegression(C=1/(λN), tol=1e-12, max_iter=1e5)
    // on StandardScaler(float64(X)), λ = 1e-2, N = 150. Generator:
    // `tools/references/cas.py` (`--check` compares with these literals).
    let (x, y) = sklearn_fixture();
    let m = LogisticRegression::default()
        .l2(1e-2)
        .tol(1e-10)
        .fit(x.view(), &y, 3)
        .unwrap();
    assert!(
        m.converged,
        "{} iterations, grad {}",
        m.iterations, m.grad_norm
    );
    eprintln!(
        "fit: {} iterations, loss {:.16}, |grad| {:.2e}",
        m.iterations, m.loss, m.grad_norm
    );
    assert_close("loss", m.loss, 0.9297618019899823, 1e-12, 0.0);
    let coef = [
        [
            0.7846817745754747,
            -0.18121529960901933,
            -0.1422625609420272,
            0.15455328251445477,
        ],
        [
            -0.3865833733405406,
            0.36862989740376534,
            -0.1061180654889457,
            -0.09433033677983968,
        ],
        [
            -0.39809840123493445,
            -0.18741459779474579,
            0.24838062643097267,
            -0.060222945734615146,
        ],
    ];
    let intercept = [
        -0.11234602551981451,
        0.04486417910165417,
        0.0674818464181608,
    ];
    for (c, row) in coef.iter().enumerate() {
        for (j, want) in row.iter().enumerate() {
            assert_close("coef", m.weights[[c, j]], *want, 1e-6, 1e-8);
        }
        assert_close("intercept", m.bias[c], intercept[c], 1e-6, 1e-8);
    }
    let p = m.predict_proba(x.view()).unwrap();
    let want = [
        [0.5072609167702831, 0.23578465559001116, 0.25695442763970583],
        [0.2638999420933808, 0.41321960978448713, 0.3228804481221321],
        [0.29945131165044714, 0.37614513801241506, 0.3244035503371378],
        [0.20683865835026433, 0.4666337382944483, 0.3265276033552874],
    ];
    for (r, row) in [0usize, 1, 2, 77].into_iter().zip(want) {
        for c in 0..3 {
            assert_close("proba", p[[r, c]], row[c], 1e-7, 0.0);
        }
    }
    let acc = m
        .predict(x.view())
        .unwrap()
        .iter()
        .zip(&y)
        .filter(|(a, b)| a == b)
        .count();
    assert_eq!(acc, 89); // 0.59333 * 150, as scikit-learn
}

/// `n` points per class around well-separated centres `10·e_c` (D = 8).
fn blobs(n_per: usize, classes: &[usize], seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let d = 8;
    let n = n_per * classes.len();
    let labels: Vec<usize> = (0..n).map(|i| classes[i % classes.len()]).collect();
    let x = Array2::from_shape_fn((n, d), |(i, j)| {
        let u: f64 = 1.0 - rng.random::<f64>();
        let v: f64 = rng.random::<f64>();
        let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
        let centre =
            if labels[i] % d == j { 10.0 } else { 0.0 } + if labels[i] >= d { 10.0 } else { 0.0 };
        (centre + z) as f32
    });
    (x, labels)
}

#[test]
fn separable_data_gives_accuracy_one() {
    let all: Vec<usize> = (0..6).collect();
    let (gen_x, gen_y) = blobs(100, &all, 1);
    let (test_x, test_y) = blobs(100, &all, 2);
    let (train_x, train_y) = blobs(100, &all, 3);
    let r = ClassificationAccuracyScore::default()
        .compute(
            LabelledFeatures::new(gen_x.view(), &gen_y),
            LabelledFeatures::new(test_x.view(), &test_y),
            Some(LabelledFeatures::new(train_x.view(), &train_y)),
            6,
        )
        .unwrap();
    eprintln!(
        "separable: CAS top-1 {}, top-5 {}, gap {:?}",
        r.cas.top1, r.cas.top_k, r.top1_gap
    );
    assert_eq!(r.cas.top1, 1.0);
    assert_eq!(r.cas.top_k, 1.0);
    assert_eq!(r.top1_gap, Some(0.0));
    assert!(r.missing_generated_classes.is_empty());
    assert_eq!(r.k, 5);
    assert!(r.fit.converged);
}

#[test]
fn dropped_classes_score_zero_and_are_named_worst() {
    let all: Vec<usize> = (0..10).collect();
    let kept: Vec<usize> = (0..7).collect();
    let (gen_x, gen_y) = blobs(60, &kept, 4);
    let (test_x, test_y) = blobs(50, &all, 5);
    let (train_x, train_y) = blobs(60, &all, 6);
    let cas = ClassificationAccuracyScore::default().n_worst(4);
    let r = cas
        .compute(
            LabelledFeatures::new(gen_x.view(), &gen_y),
            LabelledFeatures::new(test_x.view(), &test_y),
            Some(LabelledFeatures::new(train_x.view(), &train_y)),
            10,
        )
        .unwrap();
    eprintln!(
        "dropped: CAS top-1 {:.3} (real {:.3}), top-5 {:.3} (real {:.3}), worst {:?}",
        r.cas.top1,
        r.real_baseline.as_ref().unwrap().top1,
        r.cas.top_k,
        r.real_baseline.as_ref().unwrap().top_k,
        r.worst_classes.iter().map(|w| w.class).collect::<Vec<_>>()
    );
    assert_eq!(r.missing_generated_classes, vec![7, 8, 9]);
    for c in 7..10 {
        assert_eq!(r.cas.per_class[c], Some(0.0));
    }
    for c in 0..7 {
        assert_eq!(r.cas.per_class[c], Some(1.0));
    }
    assert_close("top-1", r.cas.top1, 0.7, 1e-12, 0.0);
    assert_close("top-1 gap", r.top1_gap.unwrap(), 0.3, 1e-12, 0.0);
    let worst: Vec<usize> = r.worst_classes.iter().map(|w| w.class).collect();
    assert_eq!(&worst[..3], &[7, 8, 9]);
    assert_eq!(r.worst_classes[0].gap, Some(1.0));
    assert_eq!(r.worst_classes[0].n_generated, 0);
    // Without a baseline the worst classes are the lowest CAS accuracies.
    let r2 = cas
        .compute(
            LabelledFeatures::new(gen_x.view(), &gen_y),
            LabelledFeatures::new(test_x.view(), &test_y),
            None,
            10,
        )
        .unwrap();
    assert_eq!(
        r2.worst_classes
            .iter()
            .map(|w| w.class)
            .take(3)
            .collect::<Vec<_>>(),
        vec![7, 8, 9]
    );
    assert!(r2.top1_gap.is_none());
    // Forbidding missing classes makes them an error.
    assert!(matches!(
        cas.allow_missing_generated_classes(false).compute(
            LabelledFeatures::new(gen_x.view(), &gen_y),
            LabelledFeatures::new(test_x.view(), &test_y),
            None,
            10
        ),
        Err(CasError::EmptyClass { class: 7, .. })
    ));
}

#[test]
fn deterministic_across_runs_and_thread_counts() {
    let all: Vec<usize> = (0..5).collect();
    let (x, y) = blobs(80, &all, 9);
    let fit = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| LogisticRegression::default().fit(x.view(), &y, 5).unwrap())
    };
    let a = fit(1);
    let b = fit(3);
    assert_eq!(a, b);
    assert_eq!(a, fit(1));
}

#[test]
fn conformance_clusters_fake_lacks_three_modes() {
    let case = Case::load("clusters");
    let real = case.array2::<f32>("real.npy");
    let fake = case.array2::<f32>("fake.npy");
    let lr: Vec<usize> = case
        .array1::<i32>("labels_real.npy")
        .iter()
        .map(|&v| v as usize)
        .collect();
    let lf: Vec<usize> = case
        .array1::<i32>("labels_fake.npy")
        .iter()
        .map(|&v| v as usize)
        .collect();
    // Real rows split by parity: even rows train the baseline, odd rows test.
    let even: Vec<usize> = (0..real.nrows()).step_by(2).collect();
    let odd: Vec<usize> = (1..real.nrows()).step_by(2).collect();
    let train_x = real.select(ndarray::Axis(0), &even);
    let test_x = real.select(ndarray::Axis(0), &odd);
    let train_y: Vec<usize> = even.iter().map(|&i| lr[i]).collect();
    let test_y: Vec<usize> = odd.iter().map(|&i| lr[i]).collect();
    let r = ClassificationAccuracyScore::default()
        .n_worst(3)
        .compute(
            LabelledFeatures::new(fake.view(), &lf),
            LabelledFeatures::new(test_x.view(), &test_y),
            Some(LabelledFeatures::new(train_x.view(), &train_y)),
            10,
        )
        .unwrap();
    let rb = r.real_baseline.as_ref().unwrap();
    eprintln!(
        "clusters: CAS top-1 {:.4} top-5 {:.4}; real top-1 {:.4} top-5 {:.4}; gaps {:.4} / {:.4}",
        r.cas.top1,
        r.cas.top_k,
        rb.top1,
        rb.top_k,
        r.top1_gap.unwrap(),
        r.top_k_gap.unwrap()
    );
    eprintln!("per-class CAS {:?}", r.cas.per_class);
    eprintln!("fit {:?}, baseline {:?}", r.fit, r.baseline_fit);
    assert_eq!(r.missing_generated_classes, vec![7, 8, 9]);
    let mut worst: Vec<usize> = r.worst_classes.iter().map(|w| w.class).collect();
    worst.sort_unstable();
    assert_eq!(worst, vec![7, 8, 9]);
    for c in 7..10 {
        assert_eq!(r.cas.per_class[c], Some(0.0));
    }
    // The modes are well separated: present classes are recognised.
    for c in 0..7 {
        assert!(
            r.cas.per_class[c].unwrap() > 0.97,
            "class {c}: {:?}",
            r.cas.per_class[c]
        );
    }
    assert!(rb.top1 > 0.98);
    // CAS top-1 is bounded by the share of test rows from present classes.
    let present_share = test_y.iter().filter(|&&c| c < 7).count() as f64 / test_y.len() as f64;
    assert!(r.cas.top1 <= present_share && r.cas.top1 > present_share - 0.02);
}

#[test]
fn errors() {
    let all: Vec<usize> = (0..3).collect();
    let (x, y) = blobs(10, &all, 1);
    let lr = LogisticRegression::default();
    let err = lr.fit(x.view(), &y[..29], 3).unwrap_err();
    assert!(
        matches!(
            err,
            CasError::LengthMismatch {
                left: 30,
                right: 29,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("30 feature rows but 29 labels (one label per row)"),
        "{err}"
    );
    let mut bad = y.clone();
    bad[4] = 3;
    assert!(matches!(
        lr.fit(x.view(), &bad, 3),
        Err(CasError::LabelOutOfRange {
            index: 4,
            label: 3,
            ..
        })
    ));
    assert!(matches!(
        lr.fit(x.view(), &y, 4),
        Err(CasError::EmptyClass { class: 3, .. })
    ));
    assert!(matches!(
        lr.fit(x.view(), &y, 1),
        Err(CasError::TooFewSamples { .. })
    ));
    let mut xn = x.clone();
    xn[[2, 1]] = f32::NAN;
    assert!(matches!(
        lr.fit(xn.view(), &y, 3),
        Err(CasError::NonFinite { index: 17, .. })
    ));
    assert!(matches!(
        lr.l2(0.0).fit(x.view(), &y, 3),
        Err(CasError::InvalidParameter { .. })
    ));

    let cas = ClassificationAccuracyScore::default();
    let gen_ = LabelledFeatures::new(x.view(), &y);
    let narrow = x
        .slice_axis(ndarray::Axis(1), ndarray::Slice::from(0..4))
        .to_owned();
    assert!(matches!(
        cas.compute(gen_, LabelledFeatures::new(narrow.view(), &y), None, 3),
        Err(CasError::DimensionMismatch { .. })
    ));
    // The real training split must contain every class.
    let only01: Vec<usize> = y.iter().map(|&c| c.min(1)).collect();
    assert!(matches!(
        cas.compute(
            gen_,
            gen_,
            Some(LabelledFeatures::new(x.view(), &only01)),
            3
        ),
        Err(CasError::EmptyClass { class: 2, .. })
    ));
    // A generated set with a single class cannot train a classifier.
    let zeros = vec![0usize; 30];
    assert!(matches!(
        cas.compute(LabelledFeatures::new(x.view(), &zeros), gen_, None, 3),
        Err(CasError::TooFewSamples { .. })
    ));
    assert!(matches!(
        cas.top_k(0).compute(gen_, gen_, None, 3),
        Err(CasError::InvalidParameter { .. })
    ));
    let m = lr.fit(x.view(), &y, 3).unwrap();
    assert!(matches!(
        m.top_k(x.view(), 4),
        Err(CasError::InvalidParameter { .. })
    ));
}
