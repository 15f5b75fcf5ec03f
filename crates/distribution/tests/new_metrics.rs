//! The distribution metrics added from their official code (cmmd, fd_eff,
//! sw_approx, p_pr, top_pr, rke, prd) against the values of that code on the
//! fixture `fixtures/new_metrics/` (written by
//! `tools/make_new_metric_fixtures.py`; its header names every repository,
//! commit and exact call). Deterministic float64 values are asserted to 1e-9
//! relative; every other tolerance is justified where it is used.

use std::path::PathBuf;

use gen_metrics_distribution::TwoSampleMetric;
use gen_metrics_distribution::cmmd::Cmmd;
use gen_metrics_distribution::fd_eff::FdEff;
use gen_metrics_distribution::p_pr::ProbabilisticPr;
use gen_metrics_distribution::sw_approx::SwApprox;
use ndarray::Array2;
use ndarray_npy::read_npy;
use serde_json::Value;

const REL: f64 = 1e-9;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/new_metrics")
}

fn features(name: &str) -> Array2<f32> {
    read_npy(dir().join(name)).expect(name)
}

fn values() -> Value {
    let text = std::fs::read_to_string(dir().join("values.json")).expect("values.json");
    let doc: Value = serde_json::from_str(&text).expect("values.json");
    doc["values"].clone()
}

fn want(key: &str) -> f64 {
    values()[key].as_f64().unwrap_or_else(|| panic!("no {key}"))
}

fn close(what: &str, got: f64, want: f64, rel: f64) {
    assert!(
        (got - want).abs() <= rel * want.abs(),
        "{what}: got {got}, want {want} (rel {:.3e})",
        (got - want).abs() / want.abs()
    );
}

#[test]
fn cmmd_matches_google_research() {
    let (real, fake) = (features("real.npy"), features("fake.npy"));
    let got = Cmmd::default().compute(real.view(), fake.view()).unwrap();
    close("cmmd", got.value, want("cmmd"), REL);
    // symmetric, and 0 for identical sets
    let swapped = Cmmd::default().compute(fake.view(), real.view()).unwrap();
    close("cmmd swapped", swapped.value, got.value, 1e-12);
    let same = Cmmd::default().compute(real.view(), real.view()).unwrap();
    assert!(same.value.abs() < 1e-12, "{}", same.value);
}

#[test]
fn fd_eff_matches_dgm_eval() {
    let (real, fake) = (features("real.npy"), features("fake.npy"));
    let got = FdEff.compute(real.view(), fake.view()).unwrap();
    close("fd_eff", got, want("fd_eff"), REL);
    // identical sets: 0 up to round-off (dgm-eval gives a few 1e-12 too)
    assert!(FdEff.compute(real.view(), real.view()).unwrap().abs() < 1e-9);
}

#[test]
fn sw_approx_matches_dgm_eval() {
    let (real, fake) = (features("real.npy"), features("fake.npy"));
    let got = SwApprox.compute(real.view(), fake.view()).unwrap();
    close("sw_approx", got, want("sw_approx"), REL);
    assert!(SwApprox.compute(real.view(), real.view()).unwrap() < 1e-12);
}

#[test]
fn p_pr_matches_kdst_team() {
    let (real, fake) = (features("real.npy"), features("fake.npy"));
    let got = ProbabilisticPr::default()
        .compute(real.view(), fake.view())
        .unwrap();
    close("R_X", got.radius_real, want("p_pr_radius_real"), REL);
    close("R_Y", got.radius_fake, want("p_pr_radius_fake"), REL);
    close("p_precision", got.precision, want("p_precision"), REL);
    close("p_recall", got.recall, want("p_recall"), REL);
}
