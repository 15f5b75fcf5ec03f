//! Conformance case `ranking` (../shared/conformance/case_ranking): Kendall
//! tau-b/tau-c values computed by scipy 1.17.1 `scipy.stats.kendalltau`, which
//! the README says must match exactly, and their p-values (diagnostics).

use gen_metrics_ranking::rank_correlation::{KendallTau, PValueMethod, TauVariant};
use gen_metrics_testkit::{Case, assert_close};
use serde_json::Value;

fn vec_of(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

const METRICS: [&str; 9] = [
    "fd_pytorch_fid",
    "fd_eigh_f64",
    "kid_full_unbiased",
    "precision_nvlabs_k3",
    "recall_nvlabs_k3",
    "prdc_k5_precision",
    "prdc_k5_recall",
    "prdc_k5_density",
    "prdc_k5_coverage",
];

#[test]
fn kendall_order_vs_metric_is_bit_exact() {
    let case = Case::load("ranking");
    let order = vec_of(case.arrays("/perturbation_order").expect("order"));
    for m in METRICS {
        let per_model = vec_of(
            case.arrays(&format!("/per_model_{m}"))
                .expect("per-model values"),
        );
        // The per-model arrays are the model{i}_<metric> keys.
        for (i, v) in per_model.iter().enumerate() {
            assert_eq!(
                *v,
                case.value(&format!("model{i}_{m}")).expect("model key"),
                "{m} model {i}"
            );
        }
        let r = KendallTau::default().compute(&order, &per_model).unwrap();
        let want = case.value(&format!("kendall_tau_b_order_vs_{m}")).unwrap();
        assert_eq!(
            r.tau.to_bits(),
            want.to_bits(),
            "{m}: tau {} vs {}",
            r.tau,
            want
        );
        let p_want = case
            .diagnostic(&format!("kendall_pvalue_order_vs_{m}"))
            .unwrap();
        assert_close(&format!("{m} p-value"), r.p_value, p_want, 1e-12, 0.0);
        // Tied metrics (precision = 1 for six models) use the asymptotic
        // p-value, untied ones the exact distribution (scipy's 'auto').
        let tied = r.y_ties > 0;
        let want_method = if tied {
            PValueMethod::Asymptotic
        } else {
            PValueMethod::Exact
        };
        assert_eq!(r.method, want_method, "{m}");
    }
}

#[test]
fn kendall_fd_rank_vs_order() {
    let case = Case::load("ranking");
    let fd_rank = vec_of(case.arrays("/fd_rank").unwrap());
    let order: Vec<f64> = (1..=8).map(f64::from).collect();
    let r = KendallTau::default().compute(&order, &fd_rank).unwrap();
    let want = case.value("kendall_tau_b_fd_rank_vs_order").unwrap();
    assert_eq!(r.tau.to_bits(), want.to_bits(), "{} vs {want}", r.tau);
    // The rank of FD is the rank of the FD values themselves.
    let fd = vec_of(case.arrays("/per_model_fd_pytorch_fid").unwrap());
    let ranks = gen_metrics_ranking::rank_correlation::rank_average(&fd).unwrap();
    assert_eq!(ranks, fd_rank);
}

#[test]
fn kendall_tie_pairs_b_and_c_exact() {
    let case = Case::load("ranking");
    for pair in ["a", "b"] {
        let x = vec_of(case.arrays(&format!("/tie_pair_{pair}/x")).unwrap());
        let y = vec_of(case.arrays(&format!("/tie_pair_{pair}/y")).unwrap());
        let b = KendallTau::default().compute(&x, &y).unwrap();
        let want_b = case
            .value(&format!("kendall_tau_b_tie_pair_{pair}"))
            .unwrap();
        assert_eq!(
            b.tau.to_bits(),
            want_b.to_bits(),
            "tau-b {pair}: {} vs {want_b}",
            b.tau
        );
        let c = KendallTau::default()
            .variant(TauVariant::C)
            .compute(&x, &y)
            .unwrap();
        let want_c = case
            .value(&format!("kendall_tau_c_tie_pair_{pair}"))
            .unwrap();
        assert_eq!(
            c.tau.to_bits(),
            want_c.to_bits(),
            "tau-c {pair}: {} vs {want_c}",
            c.tau
        );
        // Ties: asymptotic p-value with the tie-corrected variance.
        assert_eq!(b.method, PValueMethod::Asymptotic);
        assert_eq!(c.p_value, b.p_value);
        let p_want = case
            .diagnostic(&format!("kendall_pvalue_tie_pair_{pair}"))
            .unwrap();
        assert_close(
            &format!("tie pair {pair} p-value"),
            b.p_value,
            p_want,
            1e-12,
            0.0,
        );
    }
}
