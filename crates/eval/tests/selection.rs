//! The pipeline on the conformance corpus: each key is identical computed
//! alone or in any selection (shared work keyed by parameters, never by
//! value), the values are the metric types' own, and intervals hold.

use gen_metrics_distribution::TwoSampleMetric;
use gen_metrics_eval::{Evaluation, SetSource};
use gen_metrics_testkit::Case;
use ndarray::Array2;

const SELECTION: [&str; 11] = [
    "fid",
    "fd_inf",
    "kid",
    "pr",
    "prdc",
    "realism",
    "rarity",
    "vendi",
    "mifid",
    "authpct",
    "copy_ratio",
];

fn run(case: &Case, metrics: &[&str], k: Option<usize>) -> gen_metrics_eval::Report {
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let mut ev = Evaluation::between(SetSource::Features(real), SetSource::Features(fake))
        .metrics(metrics.iter().copied())
        .params(gen_metrics_eval::Params {
            k,
            seed: 3,
            ..Default::default()
        });
    if case.has("train.npy") {
        ev = ev.train(SetSource::Features(case.array2::<f32>("train.npy")));
    }
    ev.run().expect("evaluation")
}

#[test]
fn every_key_is_the_same_alone_and_together() {
    let case = Case::load("memorization");
    for k in [None, Some(4)] {
        let together = run(&case, &SELECTION, k);
        for name in SELECTION {
            let alone = run(&case, &[name], k);
            for v in &alone.sets[0].values {
                let t = together.sets[0].get(&v.key).expect("key present together");
                assert_eq!(
                    v.value.to_bits(),
                    t.value.to_bits(),
                    "{} (k = {k:?}): alone {} vs together {}",
                    v.key,
                    v.value,
                    t.value
                );
            }
        }
    }
}

#[test]
fn pipeline_values_are_the_metric_types_values() {
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let report = run(&case, &["fid", "pr", "prdc", "realism"], None);
    let fid = gen_metrics_distribution::Fid::new()
        .compute(real.view(), fake.view())
        .expect("fid");
    assert_eq!(report.value("fid"), Some(fid.value));
    let pr = gen_metrics_distribution::PrecisionRecall::nvlabs()
        .compute(real.view(), fake.view())
        .expect("pr");
    assert_eq!(report.value("precision"), Some(pr.precision));
    assert_eq!(report.value("recall"), Some(pr.recall));
    let prdc = gen_metrics_distribution::Prdc::default()
        .compute(real.view(), fake.view())
        .expect("prdc");
    assert_eq!(report.value("density"), Some(prdc.density));
    assert_eq!(report.value("coverage"), Some(prdc.coverage));
    let realism = gen_metrics_distribution::Realism::default()
        .compute(real.view(), fake.view())
        .expect("realism");
    assert_eq!(report.value("realism_mean"), Some(realism.mean));
}

#[test]
fn missing_inputs_and_unknown_metrics_fail_before_any_work() {
    let a = Array2::<f32>::zeros((10, 3));
    let err = Evaluation::between(
        SetSource::Features(a.clone()),
        SetSource::Features(a.clone()),
    )
    .metrics(["authpct"])
    .run()
    .expect_err("needs train");
    assert!(err.is_input_error());
    assert!(err.to_string().contains("training features"), "{err}");
    let err = Evaluation::between(SetSource::Features(a.clone()), SetSource::Features(a))
        .metrics(["fid", "nope"])
        .run()
        .expect_err("unknown");
    assert!(err.to_string().contains("nope"), "{err}");
}

#[test]
fn intervals_are_deterministic_and_rank_two_sets() {
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let run = || {
        Evaluation::new()
            .real(SetSource::Features(real.clone()))
            .fake_named("near", SetSource::Features(real.mapv(|v| v + 0.01)))
            .fake_named("far", SetSource::Features(fake.clone()))
            .metrics(["fid", "pr"])
            .intervals(8)
            .seed(1)
            .run()
            .expect("evaluation")
    };
    let (a, b) = (run(), run());
    let ja = a.to_json().expect("json");
    assert_eq!(ja, b.to_json().expect("json"), "same seed, same report");
    let ranking = a.ranking.as_ref().expect("ranking");
    assert_eq!(ranking.order, ["near", "far"]);
    let fid = a.sets[0].get("fid").expect("fid");
    let i = fid.interval.expect("interval");
    assert!(i.low <= i.high);
    let cmp = ranking
        .comparisons
        .iter()
        .find(|c| c.key == "fid")
        .expect("fid comparison");
    assert_eq!(cmp.a_better, 1.0);
}

/// `all` leaves out a metric the sets are too small for (TopP&R needs
/// `5d + 2` rows per set, d = 32 after its projection: 162), says why in the
/// report, and still runs the others; named explicitly, it fails clearly.
#[test]
fn all_leaves_out_what_the_sets_are_too_small_for() {
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let small = |a: &Array2<f32>| a.slice(ndarray::s![..100, ..]).to_owned();
    let report = Evaluation::between(
        SetSource::Features(small(&real)),
        SetSource::Features(small(&fake)),
    )
    .metrics(["all"])
    .run()
    .expect("all on 100 rows");
    assert!(!report.settings.metrics.contains(&"top_pr"));
    assert!(report.settings.metrics.contains(&"fid"));
    assert!(
        report
            .settings
            .left_out
            .iter()
            .any(|r| r.starts_with("top_pr:") && r.contains("162")),
        "{:?}",
        report.settings.left_out
    );
    assert!(report.to_markdown().contains("left out of `all`: top_pr"));
    let err = Evaluation::between(
        SetSource::Features(small(&real)),
        SetSource::Features(small(&fake)),
    )
    .metrics(["top_pr"])
    .run()
    .expect_err("top_pr on 100 rows");
    assert!(err.to_string().contains("162"), "{err}");
}

/// KID's subset values read off the passes over all pairs (few small subsets:
/// precomputing the kernel matrices does not pay), which the k-NN metrics'
/// passes then share: KID is bit-identical alone, together, and computed by
/// the library type, and the shared passes really served it.
#[test]
fn kid_read_off_the_shared_passes_is_the_same_alone_and_together() {
    use gen_metrics_distribution::Kid;
    use gen_metrics_metric::{Context, Inputs, KernelNeed, Metric, Plan, SideData};
    let case = Case::load("memorization");
    let real: Array2<f32> = case.array2("real.npy");
    let fake: Array2<f32> = case.array2("fake.npy");
    let go = |metrics: &[&str]| {
        Evaluation::between(
            SetSource::Features(real.clone()),
            SetSource::Features(fake.clone()),
        )
        .metrics(metrics.iter().copied())
        .params(gen_metrics_eval::Params {
            seed: 3,
            kid_subsets: Some(3),
            kid_subset_size: Some(8),
            ..Default::default()
        })
        .run()
        .expect("evaluation")
    };
    let alone = go(&["kid"]);
    let together = go(&["kid", "pr", "prdc", "realism", "fid"]);
    let kid = Kid::new()
        .seed(3)
        .n_subsets(3)
        .subset_size(8)
        .full_set(true);
    let direct = kid.compute(real.view(), fake.view()).expect("kid");
    for (key, want) in [
        ("kid_mean", direct.mean),
        ("kid_std", direct.std),
        ("kid_full", direct.full_unbiased.expect("full")),
    ] {
        assert_eq!(
            alone.value(key).map(f64::to_bits),
            Some(want.to_bits()),
            "{key}"
        );
        assert_eq!(
            together.value(key).map(f64::to_bits),
            Some(want.to_bits()),
            "{key}"
        );
    }
    for key in ["precision", "recall", "density", "coverage", "realism_mean"] {
        let single = go(&[key_metric(key)]);
        assert_eq!(
            single.value(key).map(f64::to_bits),
            together.value(key).map(f64::to_bits),
            "{key}"
        );
    }
    // The context answers KID's request from its own passes.
    let cx = Context::new(Inputs {
        real: Some(SideData::Rows(real.view())),
        fake: Some(SideData::Rows(fake.view())),
        ..Default::default()
    });
    let mut plan = Plan::for_context(&cx);
    Metric::plan(&kid, &mut plan);
    cx.prepare(&plan);
    let subsets = kid.sample_subsets(real.nrows(), fake.nrows());
    let need = KernelNeed {
        kernel: kid.kernel(real.ncols()),
        subsets_real: subsets.real,
        subsets_fake: subsets.fake,
    };
    assert!(
        cx.kernel_sums(&need).is_some(),
        "prepare read the kernel sums"
    );
}

fn key_metric(key: &str) -> &'static str {
    match key {
        "precision" | "recall" => "pr",
        "density" | "coverage" => "prdc",
        _ => "realism",
    }
}

/// An unbiased estimate below zero is kept as the references compute it and
/// carries the report's note; a value at or above zero carries none. KID's
/// full-set estimate of a set against itself is `2 (S − m·D) / (m²(m − 1))`
/// (`S` the kernel matrix's sum, `D` its trace), never above zero for a
/// positive semi-definite kernel (`1ᵀK1 ≤ m·λ_max ≤ m·tr K`).
#[test]
fn estimates_below_zero_are_kept_with_a_note() {
    let case = Case::load("gauss_shift");
    let real: Array2<f32> = case.array2("real.npy");
    let report = Evaluation::between(SetSource::Features(real.clone()), SetSource::Features(real))
        .metrics(["kid", "fid"])
        .run()
        .expect("evaluation");
    let kid = report.sets[0].get("kid_full").expect("kid_full");
    assert!(kid.value < 0.0, "{}", kid.value);
    let note = kid.note.as_deref().expect("a note");
    assert!(note.starts_with("below zero: an unbiased"), "{note}");
    let fid = report.sets[0].get("fid").expect("fid");
    assert_eq!(fid.value, 0.0);
    assert!(fid.note.is_none(), "{:?}", fid.note);
}
