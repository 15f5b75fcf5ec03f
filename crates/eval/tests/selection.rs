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
