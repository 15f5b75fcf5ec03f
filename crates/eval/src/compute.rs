//! One evaluation of the selected metrics on one (real, generated) pair:
//! inputs checked for every metric before any work, the shared work of all
//! of them planned and computed once, then each metric read from the same
//! [`Context`].

use gen_metrics_metric::{Context, Inputs, Metric, MetricError, Outcome, Plan, Spec};

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
        cx.require(m.spec()).map_err(|error| EvalError::Metric {
            name: m.spec().name,
            error,
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
    let (outs, _) = compute_all_optional(metrics, inputs, resample, &|_| false)?;
    Ok(outs)
}

/// [`compute_all`], where a metric for which `optional` holds (one `all`
/// added rather than one the user named) and whose sets are too small for
/// it ([`MetricError::TooFewSamples`]) is left out and returned with its
/// error instead of failing the whole evaluation.
///
/// # Errors
/// As [`compute_all`], for the metrics that are not optional or fail
/// otherwise.
#[allow(clippy::type_complexity)]
pub fn compute_all_optional(
    metrics: &[&dyn Metric],
    inputs: Inputs<'_>,
    resample: bool,
    optional: &dyn Fn(&Spec) -> bool,
) -> Result<(Vec<MetricOutcome>, Vec<(&'static str, MetricError)>), EvalError> {
    check_inputs(metrics, &inputs)?;
    let cx = Context::new(inputs).resampling(resample);
    let mut plan = Plan::for_context(&cx);
    for m in metrics {
        m.plan(&mut plan);
    }
    cx.prepare(&plan);
    let mut outs = Vec::with_capacity(metrics.len());
    let mut left_out = Vec::new();
    for m in metrics {
        let spec = m.spec();
        let outcome = match m.evaluate(&cx) {
            Ok(o) => o,
            Err(source @ MetricError::TooFewSamples { .. }) if optional(spec) => {
                left_out.push((spec.name, source));
                continue;
            }
            Err(source) => {
                return Err(EvalError::Metric {
                    name: spec.name,
                    error: source,
                });
            }
        };
        if let Some((key, value)) = outcome.values.iter().find(|(_, v)| !v.is_finite()) {
            return Err(EvalError::NonFinite {
                name: spec.name,
                key: key.clone(),
                value: *value,
            });
        }
        outs.push(MetricOutcome { spec, outcome });
    }
    Ok((outs, left_out))
}
