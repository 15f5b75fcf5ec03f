//! The registry: every metric of gen-metrics, listed once (ripgrep's `FLAGS`).
//!
//! The command line's `--metrics` values and help text, the README key table
//! (a test diffs it), the JSON key order, interval eligibility and the
//! direction of every key come from [`REGISTRY`]. Adding a metric is its own
//! file (a `Spec` and an `impl Metric`, see `docs/architecture.md`) plus one
//! line here.

use gen_metrics_metric::{KeySpec, Metric, Params, Spec};

use crate::EvalError;

/// Every metric, in report order.
pub static REGISTRY: &[&Spec] = &[
    &gen_metrics_distribution::fid::SPEC,
    &gen_metrics_distribution::fid::SPEC_SFID,
    &gen_metrics_distribution::fd_infinity::SPEC,
    &gen_metrics_distribution::kid::SPEC,
    &gen_metrics_distribution::inception_score::SPEC,
    &gen_metrics_distribution::inception_score::SPEC_INF,
    &gen_metrics_distribution::precision_recall::SPEC,
    &gen_metrics_distribution::prdc::SPEC,
    &gen_metrics_distribution::realism::SPEC,
    &gen_metrics_distribution::rarity::SPEC,
    &gen_metrics_distribution::vendi::SPEC,
    &gen_metrics_distribution::mifid::SPEC,
    &gen_metrics_distribution::cmmd::SPEC,
    &gen_metrics_distribution::fd_eff::SPEC,
    &gen_metrics_distribution::sw_approx::SPEC,
    &gen_metrics_distribution::p_pr::SPEC,
    &gen_metrics_distribution::top_pr::SPEC,
    &gen_metrics_distribution::rke::SPEC,
    &gen_metrics_distribution::prd::SPEC,
    &gen_metrics_ranking::divergence::SPEC_KL,
    &gen_metrics_ranking::divergence::SPEC_RKL,
    &gen_metrics_memorization::authpct::SPEC,
    &gen_metrics_memorization::data_copying::SPEC,
    &gen_metrics_memorization::data_copying::SPEC_MODIFIED,
    &gen_metrics_memorization::copy_detection::SPEC,
    &gen_metrics_memorization::fls::SPEC,
    &gen_metrics_cas::score::SPEC,
];

/// Metrics that `all` leaves out because they cost far more than the rest
/// (PRD: 100 k-means fits of the union, minutes at 2000 × 2048 on two
/// cores); they run when named explicitly (`--metrics all,prd`).
pub static EXCLUDED_FROM_ALL: &[&str] = &["prd"];

/// Metrics computed on the encoder's spatial features (the FID Inception's
/// `spatial` output, `gen_metrics_features::SPATIAL_LAYER`) instead of its
/// pooled ones: [`crate::Evaluation`] encodes image sets a second time for
/// them, and leaves them out of `all` (with the reason) where a set is not
/// images.
pub static SPATIAL: &[&str] = &["sfid"];

/// The spec named `name`.
pub fn find(name: &str) -> Option<&'static Spec> {
    REGISTRY.iter().copied().find(|s| s.name == name)
}

/// Every metric name, in registry order.
pub fn names() -> impl Iterator<Item = &'static str> {
    REGISTRY.iter().map(|s| s.name)
}

/// The metric and key spec that produce report key `key` (fixed keys only).
pub fn key_spec(key: &str) -> Option<(&'static Spec, &'static KeySpec)> {
    REGISTRY.iter().find_map(|s| s.key(key).map(|k| (*s, k)))
}

/// Resolves a user selection: metric names, or `all` (every metric whose
/// inputs are among `available`, see [`Selection`]). Unknown names are an
/// error listing the known ones; duplicates are dropped; registry order is
/// kept.
///
/// # Errors
/// [`EvalError::UnknownMetric`].
pub fn resolve<S: AsRef<str>>(selected: &[S]) -> Result<Selection, EvalError> {
    let mut all = false;
    let mut picked = Vec::new();
    for n in selected {
        let n = n.as_ref().trim();
        if n.is_empty() {
            continue;
        }
        if n == "all" {
            all = true;
            continue;
        }
        match find(n) {
            Some(s) => picked.push(s.name),
            None => {
                return Err(EvalError::UnknownMetric {
                    name: n.to_owned(),
                    known: names().collect::<Vec<_>>().join(", "),
                });
            }
        }
    }
    Ok(Selection {
        all,
        specs: REGISTRY
            .iter()
            .copied()
            .filter(|s| picked.contains(&s.name))
            .collect(),
    })
}

/// A resolved selection of metrics.
#[derive(Debug, Clone)]
pub struct Selection {
    /// `all` was asked: every metric whose inputs are given (but those of
    /// [`EXCLUDED_FROM_ALL`]) is added when the inputs are known.
    pub all: bool,
    /// The metrics named explicitly, in registry order.
    pub specs: Vec<&'static Spec>,
}

impl Selection {
    /// The metrics to run given which inputs are present: the named ones, and
    /// with `all` every other metric whose inputs are all present, except
    /// those of [`EXCLUDED_FROM_ALL`].
    pub fn specs_for(&self, has: impl Fn(gen_metrics_metric::Input) -> bool) -> Vec<&'static Spec> {
        REGISTRY
            .iter()
            .copied()
            .filter(|s| {
                self.specs.iter().any(|p| p.name == s.name)
                    || (self.all
                        && !EXCLUDED_FROM_ALL.contains(&s.name)
                        && s.inputs.iter().all(|&i| has(i)))
            })
            .collect()
    }
}

/// Builds the metrics of `specs`, validating `params` for each before any
/// feature is read.
///
/// # Errors
/// [`EvalError::Metric`] naming the metric whose parameters are invalid.
pub fn build(specs: &[&'static Spec], params: &Params) -> Result<Vec<Box<dyn Metric>>, EvalError> {
    specs
        .iter()
        .map(|s| {
            (s.make)(params).map_err(|error| EvalError::Metric {
                name: s.name,
                error,
            })
        })
        .collect()
}

/// The README's key table (`| --metrics name | keys | meaning (reference) |`),
/// generated from the registry; a test checks the README holds exactly this.
pub fn markdown_key_table() -> String {
    let mut out =
        String::from("| `--metrics` name | keys | meaning (reference) |\n|---|---|---|\n");
    for s in REGISTRY {
        let mut keys: Vec<String> = s.keys.iter().map(|k| format!("`{}`", k.key)).collect();
        if let Some(d) = s.dynamic_keys {
            let pattern = d.split(':').next().unwrap_or(d).trim();
            keys.push(format!("`{pattern}`"));
        }
        out.push_str(&format!(
            "| `{}` | {} | {} ({}) |\n",
            s.name,
            keys.join(", "),
            s.about,
            s.reference
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_and_keys_are_unique() {
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for s in REGISTRY {
            assert!(names.insert(s.name), "metric {} twice", s.name);
            for k in s.keys {
                assert!(keys.insert(k.key), "key {} twice", k.key);
            }
        }
    }

    #[test]
    fn every_spec_builds_with_defaults_and_names_itself() {
        for s in REGISTRY {
            let m = (s.make)(&Params::default()).expect(s.name);
            assert_eq!(m.spec().name, s.name);
        }
    }

    #[test]
    fn all_leaves_out_the_costly_metrics_unless_named() {
        let every = |_| true;
        let names = |s: &Selection| {
            s.specs_for(every)
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
        };
        let all = resolve(&["all"]).unwrap();
        assert!(names(&all).contains(&"cmmd") && !names(&all).contains(&"prd"));
        let named = resolve(&["all", "prd"]).unwrap();
        assert!(names(&named).contains(&"prd"));
        for n in EXCLUDED_FROM_ALL {
            assert!(find(n).is_some(), "{n} is not a metric");
        }
    }

    #[test]
    fn unknown_names_are_refused_with_the_list() {
        let e = resolve(&["fid", "nope"]).unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("prdc"), "{e}");
        let s = resolve(&["prdc", "fid", "fid"]).unwrap();
        assert_eq!(
            s.specs.iter().map(|s| s.name).collect::<Vec<_>>(),
            ["fid", "prdc"]
        );
    }
}
