//! Classification Accuracy Score (Ravuri & Vinyals 2019, "Classification
//! Accuracy Score for Conditional Generative Models", NeurIPS).
//!
//! CAS trains a classifier **only on labelled generated samples** and reports
//! its accuracy on **labelled real test data**. Comparing it with the same
//! classifier trained on real data (the "real baseline") shows how much of the
//! class-conditional distribution the generator failed to capture, and the
//! per-class gap surfaces the classes where it falls short most (the paper's
//! second finding).
//!
//! ```text
//! top-1 = (1/N) Σ_i [ŷ_i = y_i],     top-k = (1/N) Σ_i [y_i ∈ top-k(s_i)]
//! acc_c = (1/N_c) Σ_{i: y_i = c} [ŷ_i = y_i]                 (per class)
//! gap   = accuracy(trained on real) − accuracy(trained on generated)
//! ```
//! Here the classifier is the linear probe of [`crate::logistic`] on feature
//! vectors (the paper trains a ResNet-50 on pixels).

use ndarray::ArrayView2;
use serde::Serialize;

use crate::error::CasError;
use crate::logistic::{LogisticModel, LogisticRegression, check_features, check_labels};

/// Features `[N, D]` with one label in `0..n_classes` per row.
#[derive(Debug, Clone, Copy)]
pub struct LabelledFeatures<'a> {
    /// Feature matrix, rows are samples.
    pub features: ArrayView2<'a, f32>,
    /// Class label of each row.
    pub labels: &'a [usize],
}

impl<'a> LabelledFeatures<'a> {
    /// Pairs features with labels (checked when used).
    pub fn new(features: ArrayView2<'a, f32>, labels: &'a [usize]) -> Self {
        Self { features, labels }
    }
}

/// Configuration of the score.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassificationAccuracyScore {
    /// The classifier (default [`LogisticRegression::default`]).
    pub classifier: LogisticRegression,
    /// `k` of the top-k accuracy (default 5, as the paper; capped at `n_classes`).
    pub top_k: usize,
    /// How many worst classes to name (default 5).
    pub n_worst: usize,
    /// Allow classes that the generated set lacks (default true). Such classes
    /// cannot be learned: the classifier is trained on the classes present,
    /// never predicts the missing ones, so their real test samples are all
    /// misclassified (accuracy 0) — exactly the failure CAS is meant to expose.
    /// With `false` a missing class is [`CasError::EmptyClass`].
    pub allow_missing_generated_classes: bool,
}

impl Default for ClassificationAccuracyScore {
    fn default() -> Self {
        Self {
            classifier: LogisticRegression::default(),
            top_k: 5,
            n_worst: 5,
            allow_missing_generated_classes: true,
        }
    }
}

/// Accuracies of one trained classifier on the real test set.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Accuracy {
    /// Top-1 accuracy.
    pub top1: f64,
    /// Top-k accuracy.
    pub top_k: f64,
    /// Per-class top-1 accuracy (`None`: no test sample of that class).
    pub per_class: Vec<Option<f64>>,
}

/// How the L-BFGS fit ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FitSummary {
    /// Iterations.
    pub iterations: usize,
    /// Whether it converged.
    pub converged: bool,
    /// Final objective.
    pub loss: f64,
    /// Final `‖∇L‖_∞`.
    pub grad_norm: f64,
}

impl From<&LogisticModel> for FitSummary {
    fn from(m: &LogisticModel) -> Self {
        Self {
            iterations: m.iterations,
            converged: m.converged,
            loss: m.loss,
            grad_norm: m.grad_norm,
        }
    }
}

/// A class where the generator falls short.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ClassShortfall {
    /// Class index.
    pub class: usize,
    /// Its accuracy when trained on generated data.
    pub cas_accuracy: f64,
    /// Its accuracy when trained on real data (if a baseline was run).
    pub real_accuracy: Option<f64>,
    /// `real_accuracy − cas_accuracy` (if a baseline was run).
    pub gap: Option<f64>,
    /// Generated training samples of the class.
    pub n_generated: usize,
    /// Real test samples of the class.
    pub n_test: usize,
}

/// The output of [`ClassificationAccuracyScore::compute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CasReport {
    /// Number of classes.
    pub n_classes: usize,
    /// The `k` of the top-k accuracies.
    pub k: usize,
    /// The CAS: classifier trained on generated data, tested on real data.
    pub cas: Accuracy,
    /// The same classifier trained on the real training split (if given).
    pub real_baseline: Option<Accuracy>,
    /// `real top-1 − CAS top-1`.
    pub top1_gap: Option<f64>,
    /// `real top-k − CAS top-k`.
    pub top_k_gap: Option<f64>,
    /// Per-class `real − CAS` accuracy.
    pub per_class_gap: Option<Vec<Option<f64>>>,
    /// Classes with no generated sample.
    pub missing_generated_classes: Vec<usize>,
    /// Generated samples per class.
    pub n_generated_per_class: Vec<usize>,
    /// Real test samples per class.
    pub n_test_per_class: Vec<usize>,
    /// The `n_worst` classes where the generator falls short most: largest gap
    /// when a baseline is given, otherwise lowest CAS accuracy (ties: lower
    /// class index first); classes without test samples are skipped.
    pub worst_classes: Vec<ClassShortfall>,
    /// The fit on generated data.
    pub fit: FitSummary,
    /// The fit on real data.
    pub baseline_fit: Option<FitSummary>,
}

/// Top-k among finite scores (unlearnable classes have `−∞` and are never
/// predicted), best first, ties by class index.
fn top_k_finite(scores: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..scores.len())
        .filter(|&c| scores[c].is_finite())
        .collect();
    idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    idx.truncate(k);
    idx
}

/// Accuracies from full-width scores `[N, C]`.
fn accuracy(
    scores: &ndarray::Array2<f64>,
    labels: &[usize],
    n_classes: usize,
    k: usize,
) -> Accuracy {
    let n = labels.len();
    let (mut c1, mut ck) = (0usize, 0usize);
    let mut correct = vec![0usize; n_classes];
    let mut total = vec![0usize; n_classes];
    for (row, &y) in scores.rows().into_iter().zip(labels) {
        let s: Vec<f64> = row.to_vec();
        let top = top_k_finite(&s, k);
        total[y] += 1;
        if top.first() == Some(&y) {
            c1 += 1;
            correct[y] += 1;
        }
        if top.contains(&y) {
            ck += 1;
        }
    }
    Accuracy {
        top1: c1 as f64 / n as f64,
        top_k: ck as f64 / n as f64,
        per_class: (0..n_classes)
            .map(|c| (total[c] > 0).then(|| correct[c] as f64 / total[c] as f64))
            .collect(),
    }
}

fn validate(
    what: &'static str,
    set: &LabelledFeatures<'_>,
    n_classes: usize,
    d: usize,
) -> Result<(), CasError> {
    if set.features.nrows() == 0 {
        return Err(CasError::TooFewSamples {
            what,
            min: 1,
            got: 0,
        });
    }
    if set.features.ncols() != d {
        return Err(CasError::DimensionMismatch {
            what,
            left: set.features.ncols(),
            right: d,
        });
    }
    check_labels(what, set.labels, set.features.nrows(), n_classes)?;
    check_features(what, &set.features)
}

impl ClassificationAccuracyScore {
    /// Sets the classifier.
    pub fn classifier(mut self, classifier: LogisticRegression) -> Self {
        self.classifier = classifier;
        self
    }

    /// Sets `k`.
    pub fn top_k(mut self, k: usize) -> Self {
        self.top_k = k;
        self
    }

    /// Sets how many worst classes are named.
    pub fn n_worst(mut self, n: usize) -> Self {
        self.n_worst = n;
        self
    }

    /// Allows or forbids classes missing from the generated set.
    pub fn allow_missing_generated_classes(mut self, allow: bool) -> Self {
        self.allow_missing_generated_classes = allow;
        self
    }

    /// CAS of `generated` (training data) on `real_test`, and, if
    /// `real_train` is given, the gap to the classifier trained on it.
    ///
    /// # Errors
    /// `n_classes < 2`, `top_k = 0`, empty sets, mismatched dimensions or
    /// lengths, labels out of range, non-finite features; a class missing from
    /// `real_train`, or from `generated` when
    /// `allow_missing_generated_classes` is false ([`CasError::EmptyClass`]);
    /// fewer than 2 classes present in `generated`; a failed fit.
    pub fn compute(
        &self,
        generated: LabelledFeatures<'_>,
        real_test: LabelledFeatures<'_>,
        real_train: Option<LabelledFeatures<'_>>,
        n_classes: usize,
    ) -> Result<CasReport, CasError> {
        if n_classes < 2 {
            return Err(CasError::TooFewSamples {
                what: "classes",
                min: 2,
                got: n_classes,
            });
        }
        if self.top_k == 0 {
            return Err(CasError::InvalidParameter {
                name: "top_k",
                reason: "must be at least 1".into(),
            });
        }
        let d = generated.features.ncols();
        validate("generated set", &generated, n_classes, d)?;
        validate("real test set", &real_test, n_classes, d)?;
        if let Some(rt) = &real_train {
            validate("real training set", rt, n_classes, d)?;
        }
        let k = self.top_k.min(n_classes);

        let mut n_generated_per_class = vec![0usize; n_classes];
        for &l in generated.labels {
            n_generated_per_class[l] += 1;
        }
        let missing: Vec<usize> = (0..n_classes)
            .filter(|&c| n_generated_per_class[c] == 0)
            .collect();
        if let (Some(&class), false) = (missing.first(), self.allow_missing_generated_classes) {
            return Err(CasError::EmptyClass {
                what: "generated set",
                class,
            });
        }
        let present: Vec<usize> = (0..n_classes)
            .filter(|&c| n_generated_per_class[c] > 0)
            .collect();
        if present.len() < 2 {
            return Err(CasError::TooFewSamples {
                what: "classes present in the generated set",
                min: 2,
                got: present.len(),
            });
        }
        let mut remap = vec![usize::MAX; n_classes];
        for (i, &c) in present.iter().enumerate() {
            remap[c] = i;
        }
        let y_gen: Vec<usize> = generated.labels.iter().map(|&l| remap[l]).collect();
        let model = self
            .classifier
            .fit(generated.features, &y_gen, present.len())?;
        let sub = model.decision_function(real_test.features)?;
        let mut scores =
            ndarray::Array2::from_elem((real_test.labels.len(), n_classes), f64::NEG_INFINITY);
        for (j, &c) in present.iter().enumerate() {
            scores.column_mut(c).assign(&sub.column(j));
        }
        let cas = accuracy(&scores, real_test.labels, n_classes, k);

        let mut n_test_per_class = vec![0usize; n_classes];
        for &l in real_test.labels {
            n_test_per_class[l] += 1;
        }

        let (real_baseline, baseline_fit) = match &real_train {
            Some(rt) => {
                let counts = rt
                    .labels
                    .iter()
                    .fold(vec![0usize; n_classes], |mut acc, &l| {
                        acc[l] += 1;
                        acc
                    });
                if let Some(class) = counts.iter().position(|&c| c == 0) {
                    return Err(CasError::EmptyClass {
                        what: "real training set",
                        class,
                    });
                }
                let m = self.classifier.fit(rt.features, rt.labels, n_classes)?;
                let sc = m.decision_function(real_test.features)?;
                (
                    Some(accuracy(&sc, real_test.labels, n_classes, k)),
                    Some(FitSummary::from(&m)),
                )
            }
            None => (None, None),
        };
        let per_class_gap = real_baseline.as_ref().map(|rb| {
            (0..n_classes)
                .map(|c| match (rb.per_class[c], cas.per_class[c]) {
                    (Some(r), Some(g)) => Some(r - g),
                    _ => None,
                })
                .collect::<Vec<_>>()
        });
        let mut worst: Vec<ClassShortfall> = (0..n_classes)
            .filter_map(|c| {
                let cas_accuracy = cas.per_class[c]?;
                let real_accuracy = real_baseline.as_ref().and_then(|rb| rb.per_class[c]);
                Some(ClassShortfall {
                    class: c,
                    cas_accuracy,
                    real_accuracy,
                    gap: real_accuracy.map(|r| r - cas_accuracy),
                    n_generated: n_generated_per_class[c],
                    n_test: n_test_per_class[c],
                })
            })
            .collect();
        worst.sort_by(|a, b| {
            let key = |s: &ClassShortfall| match s.gap {
                Some(g) => -g,
                None => s.cas_accuracy,
            };
            key(a).total_cmp(&key(b)).then(a.class.cmp(&b.class))
        });
        worst.truncate(self.n_worst);

        Ok(CasReport {
            n_classes,
            k,
            top1_gap: real_baseline.as_ref().map(|rb| rb.top1 - cas.top1),
            top_k_gap: real_baseline.as_ref().map(|rb| rb.top_k - cas.top_k),
            cas,
            real_baseline,
            per_class_gap,
            missing_generated_classes: missing,
            n_generated_per_class,
            n_test_per_class,
            worst_classes: worst,
            fit: FitSummary::from(&model),
            baseline_fit,
        })
    }
}

// --- the metric contract ----------------------------------------------------

/// Registry entry of the Classification Accuracy Score: trained on the
/// generated features and labels, tested on the real ones; with training
/// features and labels, also the gap to a classifier trained on real data.
pub static SPEC: gen_metrics_metric::Spec = gen_metrics_metric::Spec {
    name: "cas",
    about: "classification accuracy score: train on generated, test on real",
    reference: "Ravuri & Vinyals 2019, Classification Accuracy Score for Conditional Generative Models",
    inputs: &[
        gen_metrics_metric::Input::Real,
        gen_metrics_metric::Input::Fake,
        gen_metrics_metric::Input::LabelsReal,
        gen_metrics_metric::Input::LabelsFake,
    ],
    accepts_statistics: false,
    keys: &[
        gen_metrics_metric::KeySpec::new(
            "cas_top1",
            gen_metrics_metric::Direction::HigherIsBetter,
            "top-1 accuracy on real test samples",
        ),
        gen_metrics_metric::KeySpec::new(
            "cas_top5",
            gen_metrics_metric::Direction::HigherIsBetter,
            "top-5 accuracy on real test samples",
        ),
        gen_metrics_metric::KeySpec::new(
            "cas_top1_gap",
            gen_metrics_metric::Direction::LowerIsBetter,
            "top-1 accuracy of the real-trained classifier minus CAS top-1 (needs training features and labels)",
        ),
    ],
    dynamic_keys: Some("cas_class_<c>: top-1 accuracy on real samples of class c"),
    make: |_| Ok(Box::new(ClassificationAccuracyScore::default())),
};

impl gen_metrics_metric::Metric for ClassificationAccuracyScore {
    fn spec(&self) -> &'static gen_metrics_metric::Spec {
        &SPEC
    }

    fn evaluate(
        &self,
        cx: &gen_metrics_metric::Context<'_>,
    ) -> Result<gen_metrics_metric::Outcome, gen_metrics_metric::MetricError> {
        use gen_metrics_metric::{Input, MetricError, Set};
        let missing = |input| MetricError::MissingInput {
            metric: SPEC.name,
            input,
        };
        let real = cx.rows(&SPEC, Set::Real)?;
        let fake = cx.rows(&SPEC, Set::Fake)?;
        let inputs = cx.inputs();
        let labels_real = inputs.labels_real.ok_or(missing(Input::LabelsReal))?;
        let labels_fake = inputs.labels_fake.ok_or(missing(Input::LabelsFake))?;
        let train = match (inputs.labels_train, inputs.train) {
            (Some(l), Some(t)) => Some(LabelledFeatures::new(t, l)),
            _ => None,
        };
        let n_classes = labels_fake
            .iter()
            .chain(labels_real)
            .chain(inputs.labels_train.into_iter().flatten())
            .max()
            .map_or(0, |m| m + 1);
        let out = self
            .compute(
                LabelledFeatures::new(fake, labels_fake),
                LabelledFeatures::new(real, labels_real),
                train,
                n_classes,
            )
            .map_err(|e| MetricError::Failed {
                metric: SPEC.name,
                detail: e.to_string(),
            })?;
        let mut o = gen_metrics_metric::Outcome::new()
            .value("cas_top1", out.cas.top1)
            .value("cas_top5", out.cas.top_k);
        if let Some(gap) = out.top1_gap {
            o = o.value("cas_top1_gap", gap);
        }
        for (c, acc) in out.cas.per_class.iter().enumerate() {
            if let Some(acc) = acc {
                o = o.value(format!("cas_class_{c}"), *acc);
            }
        }
        Ok(o)
    }
}
