//! One evaluation of the selected metrics on one (real, generated) pair:
//! inputs checked for every metric before any work, the shared work of all
//! of them planned and computed once, then each metric read from the same
//! [`Context`].

use gen_metrics_metric::{Context, Inputs, Metric, Outcome, Plan, Spec};

use crate::EvalError;

/// The outcome of one metric.
#[derive(Debug, Clone)]
pub struct MetricOutcome {
    /// The metric.
    pub spec: &'static Spec,
    /// Its values, per-sample series and curves.
    pub outcome: Outcome,
}

/// Checks that every metric's inputs are present in `inputs` (and that sets
/// given as statistics are accepted), before anything is computed.
///
/// # Errors
/// [`EvalError::Metric`] with `MissingInput` / `NeedsRows`.
pub fn check_inputs(metrics: &[&dyn Metric], inputs: &Inputs<'_>) -> Result<(), EvalError> {
    let cx = Context::new(*inputs);
    for m in metrics {
        cx.require(m.spec()).map_err(|source| EvalError::Metric {
            name: m.spec().name,
            source,
        })?;
    }
    Ok(())
}

/// Computes every metric on `inputs`, sharing the work they declare.
/// `resample` marks the context as an interval resample (metrics may skip
/// keys that get no interval).
///
/// Every value is checked finite: a non-finite one is an error naming the
/// metric and the key, never a result.
///
/// # Errors
/// The first metric that fails, by name.
pub fn compute_all(
    metrics: &[&dyn Metric],
    inputs: Inputs<'_>,
    resample: bool,
) -> Result<Vec<MetricOutcome>, EvalError> {
    check_inputs(metrics, &inputs)?;
    let cx = Context::new(inputs).resampling(resample);
    let mut plan = Plan::new();
    for m in metrics {
        m.plan(&mut plan);
    }
    cx.prepare(&plan);
    metrics
        .iter()
        .map(|m| {
            let spec = m.spec();
            let outcome = m.evaluate(&cx).map_err(|source| EvalError::Metric {
                name: spec.name,
                source,
            })?;
            if let Some((key, value)) = outcome.values.iter().find(|(_, v)| !v.is_finite()) {
                return Err(EvalError::NonFinite {
                    name: spec.name,
                    key: key.clone(),
                    value: *value,
                });
            }
            Ok(MetricOutcome { spec, outcome })
        })
        .collect()
}
