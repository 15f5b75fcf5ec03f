//! `gen-metrics metrics --json` as a user runs it, on the conformance corpus
//! (`../shared/conformance`): every metric name, every JSON key.
//!
//! Keys with a canonical reference are compared with it at the corpus
//! README's tolerances (the same ones the library tests use):
//!
//! | JSON key | reference key | tolerance |
//! |---|---|---|
//! | `fid` | `fd_pytorch_fid` | 1e-9 rel; `rank_deficient`, `inception_like` 1e-6 rel (sqrtm routes scatter); `identical` 1e-9 abs |
//! | `kid_full` | `kid_full_unbiased` | 1e-12 rel (1e-12 abs on `identical`) |
//! | `precision`, `recall` | `{precision,recall}_nvlabs_k3` | exact (ratios of counts) |
//! | `prdc_*` | `prdc_k5_*`, with `--k 3` `prdc_k3_*` | exact |
//! | `realism_mean`, `realism_median` | `realism_nvlabs_{mean,median}` | 1e-12 rel |
//! | `vendi` | `vendi_cosine_fake` | 1e-10 rel (eigvalsh of an N x N kernel) |
//! | `authpct` | `diagnostics.authpct*_exact_f64_port` exact; `authpct*` (dgm-eval's float32 division) 1e-6 rel |
//! | `ct`, `ct_modified` | `ct_score`, `ct_score_mem` | 1e-12 rel (seed 0's k-means finds the reference's cells) |
//! | `is_mean`, `is_std` | `is_torch_fidelity_noshuffle_{mean,std}` | 1e-12 rel |
//!
//! Keys without a reference value in the corpus are randomized with our own
//! generator (`kid_mean`, `kid_std`, `fd_inf`, `is_inf`, the intervals) or
//! have no canonical implementation run there (`rarity_*`, `mifid`,
//! `copy_ratio`, `fls`, `cas_*`, `kl`, `rkl`): for those the binary must
//! print exactly what the library's `Evaluation` returns for the same
//! inputs and seed (the binary is a shell over it; the library's own tests
//! check those values against their references), and the same seed must give
//! the same numbers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use gen_metrics::Evaluation;
use gen_metrics::eval::{Extras, IntervalOptions, Params};
use gen_metrics_testkit::{Case, assert_close, shared_dir};
use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, write_npy};

/// Runs `gen-metrics metrics --json ARGS` and parses the flat JSON object.
fn metrics(args: &[&str]) -> BTreeMap<String, f64> {
    let out = Command::new(env!("CARGO_BIN_EXE_gen-metrics"))
        .arg("metrics")
        .args(args)
        .arg("--json")
        .output()
        .expect("run gen-metrics");
    assert!(
        out.status.success(),
        "gen-metrics metrics {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one flat JSON object of numbers")
}

fn case_file(case: &str, file: &str) -> String {
    shared_dir()
        .join("conformance")
        .join(format!("case_{case}"))
        .join(file)
        .to_string_lossy()
        .into_owned()
}

fn key(got: &BTreeMap<String, f64>, k: &str) -> f64 {
    *got.get(k)
        .unwrap_or_else(|| panic!("JSON has no key `{k}`: {got:?}"))
}

fn fid_tolerance(case: &str) -> (f64, f64) {
    match case {
        "identical" => (0.0, 1e-9),
        "rank_deficient" | "inception_like" => (1e-6, 0.0),
        _ => (1e-9, 0.0),
    }
}

/// Every (real, fake) case: fid, kid, pr, prdc (k = 5 and k = 3), realism,
/// vendi and authpct (train = real, as the corpus computes it).
#[test]
fn distribution_metrics_match_the_references_in_every_case() {
    let mut checked = 0;
    for name in Case::all_names() {
        let case = Case::load(&name);
        if !case.has("real.npy") || !case.has("fake.npy") || case.has("train.npy") {
            continue;
        }
        let (real, fake) = (case_file(&name, "real.npy"), case_file(&name, "fake.npy"));
        let mut names = vec!["fid", "kid", "pr", "prdc", "realism"];
        if case.value("vendi_cosine_fake").is_some() {
            names.push("vendi");
        }
        if case.value("authpct").is_some() {
            names.push("authpct");
        }
        let list = names.join(",");
        let got = metrics(&[
            "--real",
            &real,
            "--fake",
            &fake,
            "--train",
            &real,
            "--metrics",
            &list,
        ]);
        let label = |k: &str| format!("{name}: {k}");

        let (rel, abs) = fid_tolerance(&name);
        let want = case.value("fd_pytorch_fid").expect("fd_pytorch_fid");
        assert_close(&label("fid"), key(&got, "fid"), want, rel, abs);
        let want = case.value("kid_full_unbiased").expect("kid_full_unbiased");
        assert_close(
            &label("kid_full"),
            key(&got, "kid_full"),
            want,
            1e-12,
            1e-12,
        );
        for (ours, theirs) in [
            ("precision", "precision_nvlabs_k3"),
            ("recall", "recall_nvlabs_k3"),
            ("prdc_precision", "prdc_k5_precision"),
            ("prdc_recall", "prdc_k5_recall"),
            ("density", "prdc_k5_density"),
            ("coverage", "prdc_k5_coverage"),
        ] {
            let want = case.value(theirs).expect(theirs);
            assert_eq!(key(&got, ours), want, "{}", label(ours));
        }
        for (ours, theirs) in [
            ("realism_mean", "realism_nvlabs_mean"),
            ("realism_median", "realism_nvlabs_median"),
        ] {
            let want = case.value(theirs).expect(theirs);
            assert_close(&label(ours), key(&got, ours), want, 1e-12, 0.0);
        }
        if let Some(want) = case.value("vendi_cosine_fake") {
            assert_close(&label("vendi"), key(&got, "vendi"), want, 1e-10, 0.0);
        }
        if let Some(want) = case.value("authpct") {
            let exact = case
                .diagnostic("authpct_exact_f64_port")
                .expect("authpct_exact_f64_port");
            assert_eq!(key(&got, "authpct"), exact, "{}", label("authpct"));
            assert_close(&label("authpct f32"), key(&got, "authpct"), want, 1e-6, 0.0);
        }

        // prdc with --k 3 against the package's k = 3 values.
        let k3 = metrics(&[
            "--real",
            &real,
            "--fake",
            &fake,
            "--metrics",
            "prdc",
            "--k",
            "3",
        ]);
        for (ours, theirs) in [
            ("prdc_precision", "prdc_k3_precision"),
            ("prdc_recall", "prdc_k3_recall"),
            ("density", "prdc_k3_density"),
            ("coverage", "prdc_k3_coverage"),
        ] {
            let want = case.value(theirs).expect(theirs);
            assert_eq!(key(&k3, ours), want, "{} (k = 3)", label(ours));
        }
        checked += 1;
    }
    assert!(checked >= 6, "only {checked} cases checked");
}

/// The memorization case: train, held-out test (`--real`) and generated.
#[test]
fn memorization_metrics_match_the_references() {
    let case = Case::load("memorization");
    let (train, test, fake) = (
        case_file("memorization", "train.npy"),
        case_file("memorization", "real.npy"),
        case_file("memorization", "fake.npy"),
    );
    let got = metrics(&[
        "--real",
        &test,
        "--fake",
        &fake,
        "--train",
        &train,
        "--metrics",
        "authpct,ct,ct_modified",
    ]);
    let exact = case
        .diagnostic("authpct_train_exact_f64_port")
        .expect("port");
    assert_eq!(key(&got, "authpct"), exact, "authpct");
    let want = case.value("authpct_train").expect("authpct_train");
    assert_close("authpct f32", key(&got, "authpct"), want, 1e-6, 0.0);
    let want = case.value("ct_score").expect("ct_score");
    assert_close("ct", key(&got, "ct"), want, 1e-12, 0.0);
    let want = case.value("ct_score_mem").expect("ct_score_mem");
    assert_close("ct_modified", key(&got, "ct_modified"), want, 1e-12, 0.0);
}

/// IS from the logits case (torch-fidelity, 10 splits, no shuffle).
#[test]
fn inception_score_matches_torch_fidelity() {
    let case = Case::load("is_logits");
    let logits = case_file("is_logits", "logits.npy");
    let got = metrics(&["--fake", &logits, "--logits", &logits, "--metrics", "is"]);
    for (ours, theirs) in [
        ("is_mean", "is_torch_fidelity_noshuffle_mean"),
        ("is_std", "is_torch_fidelity_noshuffle_std"),
    ] {
        let want = case.value(theirs).expect(theirs);
        assert_close(ours, key(&got, ours), want, 1e-12, 0.0);
    }
}

/// A scratch folder removed on drop.
struct Scratch(tempfile::TempDir);

impl Scratch {
    fn new() -> Self {
        Scratch(tempfile::tempdir().expect("tempdir"))
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
}

fn labels(path: &str) -> Vec<usize> {
    let a = Array1::<i32>::read_npy(std::fs::File::open(path).expect("labels")).expect("int32");
    a.iter()
        .map(|&v| usize::try_from(v).expect("label"))
        .collect()
}

fn read(path: &str) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(path).expect("open")).expect("npy")
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Every other metric name (and the intervals): the binary prints exactly
/// what the library computes, and the same seed gives the same numbers.
#[test]
fn every_other_metric_equals_the_library() {
    let dir = Scratch::new();
    // The first 600 rows of the clusters case (its 10 labelled modes, for
    // cas): small enough that every metric runs in seconds.
    const ROWS: usize = 600;
    let head = |file: &str, out: &str| -> String {
        let a = read(&case_file("clusters", file));
        let p = dir.path(out);
        write_npy(&p, &a.slice(ndarray::s![..ROWS, ..]).to_owned()).expect("write");
        s(&p)
    };
    let head_labels = |file: &str, out: &str| -> String {
        let a = labels(&case_file("clusters", file));
        let p = dir.path(out);
        let v: Array1<i32> = a[..ROWS].iter().map(|&l| l as i32).collect();
        write_npy(&p, &v).expect("write");
        s(&p)
    };
    let (real, fake) = (head("real.npy", "real.npy"), head("fake.npy", "fake.npy"));
    let (lr, lf) = (
        head_labels("labels_real.npy", "labels_real.npy"),
        head_labels("labels_fake.npy", "labels_fake.npy"),
    );
    let logits = case_file("is_logits", "logits.npy");
    // Smooth log-likelihoods of a known pair of densities for kl / rkl.
    let ll = |n: usize, a: f64, b: f64| Array1::from_iter((0..n).map(|i| a + b * (i as f64).sin()));
    let (lpr, lqr, lpf, lqf) = (
        ll(3000, -1.0, 0.3),
        ll(3000, -1.4, 0.2),
        ll(2000, -1.2, 0.1),
        ll(2000, -0.9, 0.25),
    );
    for (f, a) in [
        ("lpr.npy", &lpr),
        ("lqr.npy", &lqr),
        ("lpf.npy", &lpf),
        ("lqf.npy", &lqf),
    ] {
        write_npy(dir.path(f), a).expect("write");
    }

    // Every features metric without a reference value, against the library.
    let features_names = "fid,fd_inf,kid,rarity,mifid,copy_ratio,fls,cas";
    let got = metrics(&[
        "--real",
        &real,
        "--fake",
        &fake,
        "--train",
        &real,
        "--labels-real",
        &lr,
        "--labels-fake",
        &lf,
        "--metrics",
        features_names,
        "--seed",
        "5",
    ]);
    let report = Evaluation::new()
        .real(read(&real))
        .fake(read(&fake))
        .train(read(&real))
        .extras(Extras {
            labels_real: Some(labels(&lr)),
            labels_fake: Some(labels(&lf)),
            ..Extras::default()
        })
        .metrics(features_names.split(','))
        .params(Params {
            seed: 5,
            ..Params::default()
        })
        .run()
        .expect("library evaluation");
    assert_eq!(got, report.flat(0), "binary and library agree key by key");
    for k in [
        "fid",
        "fd_inf",
        "kid_mean",
        "kid_std",
        "rarity_mean",
        "mifid",
        "copy_ratio",
        "fls",
        "cas_top1",
    ] {
        assert!(got.contains_key(k), "missing {k}: {got:?}");
    }

    // The seed: the same one gives the same numbers, another one other draws.
    // (FD-inf draws subsets of the generated set; KID's subsets here are the
    // whole 600-row sets, which no seed changes.)
    let fd_inf = |seed: &str| {
        metrics(&[
            "--real",
            &real,
            "--fake",
            &fake,
            "--metrics",
            "fd_inf",
            "--seed",
            seed,
        ])
    };
    assert_eq!(
        fd_inf("5")["fd_inf"],
        got["fd_inf"],
        "same seed, same FD-inf"
    );
    assert_ne!(
        fd_inf("6")["fd_inf"],
        got["fd_inf"],
        "the seed reaches FD-inf"
    );

    // Intervals (`--bootstrap`): the library's, each containing its estimate.
    let names = "fid,kid,pr,prdc";
    let got = metrics(&[
        "--real",
        &real,
        "--fake",
        &fake,
        "--metrics",
        names,
        "--bootstrap",
        "6",
        "--seed",
        "3",
    ]);
    let report = Evaluation::new()
        .real(read(&real))
        .fake(read(&fake))
        .metrics(names.split(','))
        .params(Params {
            seed: 3,
            ..Params::default()
        })
        .interval_options(IntervalOptions {
            resamples: 6,
            confidence: 0.95,
            seed: 3,
        })
        .run()
        .expect("library evaluation");
    assert_eq!(got, report.flat(0), "binary and library agree key by key");
    let mut intervals = 0;
    for (k, v) in &got {
        if let Some(base) = k.strip_suffix("_ci_low") {
            let (lo, hi, est) = (*v, got[&format!("{base}_ci_high")], got[base]);
            assert!(lo <= est && est <= hi, "{base}: {est} outside [{lo}, {hi}]");
            intervals += 1;
        }
    }
    assert!(intervals >= 7, "{got:?}");

    // Logits and log-likelihood metrics.
    let ll_args = [
        "--fake".to_string(),
        logits.clone(),
        "--logits".to_string(),
        logits.clone(),
        "--logp-real".to_string(),
        s(&dir.path("lpr.npy")),
        "--logq-real".to_string(),
        s(&dir.path("lqr.npy")),
        "--logp-fake".to_string(),
        s(&dir.path("lpf.npy")),
        "--logq-fake".to_string(),
        s(&dir.path("lqf.npy")),
        "--metrics".to_string(),
        "is,is_inf,kl,rkl".to_string(),
    ];
    let got = metrics(&ll_args.iter().map(String::as_str).collect::<Vec<_>>());
    let report = Evaluation::new()
        .fake(read(&logits))
        .extras(Extras {
            logits: Some(read(&logits)),
            log_likelihoods_real: Some((lpr, lqr)),
            log_likelihoods_fake: Some((lpf, lqf)),
            ..Extras::default()
        })
        .metrics(["is", "is_inf", "kl", "rkl"])
        .run()
        .expect("library evaluation");
    assert_eq!(got, report.flat(0), "binary and library agree key by key");
    for k in ["is_mean", "is_inf", "kl", "rkl"] {
        assert!(got.contains_key(k), "missing {k}: {got:?}");
    }
}

/// `gen-metrics fringe` on feature files: histogram matching on k-means
/// cells of the real set brings the candidates' cell histogram to the real
/// one, the check space (here the same features) reports the same FDs, and
/// the numbers are the library's.
#[test]
fn fringe_attack_from_files_equals_the_library() {
    use gen_metrics::distribution::fringe::FringeAttack;
    use gen_metrics::eval::fringe::{FringeCheck, FringeEvaluation, FringeLabels};
    let (real, fake) = (
        case_file("gauss_shift", "real.npy"),
        case_file("gauss_shift", "fake.npy"),
    );
    let out = Command::new(env!("CARGO_BIN_EXE_gen-metrics"))
        .args([
            "fringe",
            "--real",
            &real,
            "--candidates",
            &fake,
            "--n",
            "500",
            "--cells",
            "16",
            "--check-real",
            &real,
            "--check-candidates",
            &fake,
            "--seed",
            "4",
            "--json",
        ])
        .output()
        .expect("run gen-metrics");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let lib = FringeEvaluation {
        real: PathBuf::from(&real).into(),
        candidates: PathBuf::from(&fake).into(),
        extract: Default::default(),
        labels: FringeLabels::KMeans { k: 16 },
        check: FringeCheck::Features {
            real: PathBuf::from(&real).into(),
            candidates: PathBuf::from(&fake).into(),
        },
        attack: FringeAttack::default().seed(4).subset_size(500),
    }
    .run()
    .expect("library");
    assert_eq!(got["n"], 500);
    assert_eq!(got["shortfall"], 0);
    assert_eq!(got["fd_before"].as_f64(), Some(lib.fd_before));
    assert_eq!(got["fd_after"].as_f64(), Some(lib.fd_after));
    assert_eq!(got["fd_check_before"], got["fd_before"]);
    assert_eq!(got["fd_check_after"], got["fd_after"]);
    let (before, after) = (
        got["histogram_l1_before"].as_f64().expect("l1"),
        got["histogram_l1_after"].as_f64().expect("l1"),
    );
    assert!(after < before / 5.0, "histogram L1 {before} -> {after}");
}
