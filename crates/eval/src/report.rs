//! The report of an evaluation: every value with its direction, interval and
//! note, per generated set; the ranking of the sets and the pairwise
//! comparisons; rendered as JSON (serde) and Markdown, and plotted as SVG
//! ([`crate::plots`]).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use gen_metrics_metric::{Curve, Direction, PerSample};
use serde::Serialize;

use crate::EvalError;
use crate::source::SetKind;

/// A set as the report describes it.
#[derive(Debug, Clone, Serialize)]
pub struct SetInfo {
    /// The name shown in tables (a generated set's name, `real`, `train`).
    pub name: String,
    /// Where it came from.
    pub source: String,
    /// What it was.
    pub kind: SetKind,
    /// Number of samples.
    pub n: usize,
    /// Images left out (`--skip-bad`): `(name, reason)`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<(String, String)>,
}

/// A confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// One value of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Value {
    /// The metric (`--metrics` name).
    pub metric: &'static str,
    /// The key.
    pub key: String,
    /// The value.
    pub value: f64,
    /// Which way it improves.
    pub direction: Direction,
    /// Its interval, when asked for and possible.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    /// What the reader should know about this value (a negative estimator,
    /// an interval that excludes a biased estimate, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Everything computed for one generated set.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// The set.
    pub set: SetInfo,
    /// Its values, in registry order.
    pub values: Vec<Value>,
    /// Per-sample series (realism scores, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_sample: Vec<PerSample>,
    /// Curves (FID against 1/N, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub curves: Vec<Curve>,
}

impl SetReport {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|v| v.key == key)
    }
}

/// For one key and two generated sets, the share of resamples in which the
/// first is better.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The key.
    pub key: String,
    /// First set.
    pub a: String,
    /// Second set.
    pub b: String,
    /// Share of resamples in which `a` is better than `b` (ties count half).
    pub a_better: f64,
}

/// The ranking of several generated sets.
#[derive(Debug, Clone, Serialize)]
pub struct Ranking {
    /// The key the sets are ordered by (the first selected key with a direction).
    pub key: String,
    /// Set names, best first.
    pub order: Vec<String>,
    /// Pairwise comparisons for every key with an interval (needs resamples).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub comparisons: Vec<Comparison>,
}

/// How the report was made.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// gen-metrics version.
    pub version: &'static str,
    /// The selected metrics.
    pub metrics: Vec<&'static str>,
    /// The encoder, when images were encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encoder: Option<String>,
    /// Seed of every randomized metric and of the resampling.
    pub seed: u64,
    /// Neighbourhood size override.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Resamples for intervals (0: none).
    pub resamples: usize,
    /// Interval coverage.
    pub confidence: f64,
    /// The interval method.
    pub interval_method: &'static str,
    /// Metrics `all` left out because the sets do not admit them, with the
    /// reason (`top_pr: needs at least 162 rows ...`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<String>,
}

/// The report of an evaluation.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// How it was made.
    pub settings: Settings,
    /// The real set (absent for generated-only metrics such as IS).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub real: Option<SetInfo>,
    /// The training set, when given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<SetInfo>,
    /// One entry per generated set, in the order given.
    pub sets: Vec<SetReport>,
    /// With several generated sets: their ranking.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranking: Option<Ranking>,
}

/// Formats a value for tables: 6 significant decimals, no `-0`.
pub fn fmt_value(v: f64) -> String {
    let v = if v == 0.0 { 0.0 } else { v };
    if v != 0.0 && (v.abs() >= 1e6 || v.abs() < 1e-4) {
        format!("{v:.4e}")
    } else {
        format!("{v:.6}")
    }
}

impl Report {
    /// The value of `key` for the first generated set (the common
    /// one-set case).
    pub fn value(&self, key: &str) -> Option<f64> {
        self.sets.first()?.get(key).map(|v| v.value)
    }

    /// The set report named `name`.
    pub fn set(&self, name: &str) -> Option<&SetReport> {
        self.sets.iter().find(|s| s.set.name == name)
    }

    /// The report as pretty JSON.
    ///
    /// # Errors
    /// Serialization failure (not expected: every value is finite).
    pub fn to_json(&self) -> Result<String, EvalError> {
        serde_json::to_string_pretty(self).map_err(|e| EvalError::Usage(e.to_string()))
    }

    /// The flat object `metrics --json` prints for set `index`: every key,
    /// and `<key>_ci_low` / `<key>_ci_high` where an interval exists; keys
    /// sorted.
    pub fn flat(&self, index: usize) -> std::collections::BTreeMap<String, f64> {
        let mut out = std::collections::BTreeMap::new();
        if let Some(s) = self.sets.get(index) {
            for v in &s.values {
                out.insert(v.key.clone(), v.value);
                if let Some(i) = v.interval {
                    out.insert(format!("{}_ci_low", v.key), i.low);
                    out.insert(format!("{}_ci_high", v.key), i.high);
                }
            }
        }
        out
    }

    /// An aligned text table of set `index` (key, value, interval).
    pub fn to_table(&self, index: usize) -> String {
        let Some(s) = self.sets.get(index) else {
            return String::new();
        };
        let width = s.values.iter().map(|v| v.key.len()).max().unwrap_or(0);
        let mut out = String::new();
        for v in &s.values {
            let _ = write!(out, "{:<width$}  {}", v.key, fmt_value(v.value));
            if let Some(i) = v.interval {
                let _ = write!(out, "  [{}, {}]", fmt_value(i.low), fmt_value(i.high));
            }
            out.push('\n');
        }
        out
    }

    /// The report as Markdown: settings, sets, one table with a column per
    /// generated set (value and interval), the ranking and the pairwise
    /// comparisons, and the notes.
    pub fn to_markdown(&self) -> String {
        let mut md = String::from("# gen-metrics report\n\n");
        let st = &self.settings;
        let _ = writeln!(md, "- gen-metrics {}", st.version);
        let _ = writeln!(md, "- metrics: {}", st.metrics.join(", "));
        if let Some(e) = &st.encoder {
            let _ = writeln!(md, "- encoder: {e}");
        }
        let _ = writeln!(md, "- seed: {}", st.seed);
        for reason in &st.left_out {
            let _ = writeln!(md, "- left out of `all`: {reason}");
        }
        if st.resamples > 0 {
            let _ = writeln!(
                md,
                "- intervals: {:.0}% over {} resamples ({})",
                st.confidence * 100.0,
                st.resamples,
                st.interval_method
            );
        }
        md.push_str("\n## Sets\n\n| set | role | source | kind | n |\n|---|---|---|---|---|\n");
        let mut row = |info: &SetInfo, role: &str| {
            let _ = writeln!(
                md,
                "| {} | {role} | `{}` | {:?} | {} |",
                info.name, info.source, info.kind, info.n
            );
        };
        if let Some(r) = &self.real {
            row(r, "real");
        }
        if let Some(t) = &self.train {
            row(t, "train");
        }
        for s in &self.sets {
            row(&s.set, "generated");
        }
        md.push_str("\n## Metrics\n\n| key | better |");
        for s in &self.sets {
            let _ = write!(md, " {} |", s.set.name);
        }
        md.push_str("\n|---|---|");
        for _ in &self.sets {
            md.push_str("---|");
        }
        md.push('\n');
        let mut keys: Vec<(&str, Direction)> = Vec::new();
        for s in &self.sets {
            for v in &s.values {
                if !keys.iter().any(|(k, _)| *k == v.key) {
                    keys.push((&v.key, v.direction));
                }
            }
        }
        for (key, dir) in &keys {
            let _ = write!(md, "| `{key}` | {} |", dir.arrow());
            for s in &self.sets {
                match s.get(key) {
                    Some(v) => match v.interval {
                        Some(i) => {
                            let _ = write!(
                                md,
                                " {} [{}, {}] |",
                                fmt_value(v.value),
                                fmt_value(i.low),
                                fmt_value(i.high)
                            );
                        }
                        None => {
                            let _ = write!(md, " {} |", fmt_value(v.value));
                        }
                    },
                    None => md.push_str(" — |"),
                }
            }
            md.push('\n');
        }
        if let Some(r) = &self.ranking {
            let _ = writeln!(md, "\n## Ranking by `{}`\n", r.key);
            for (i, name) in r.order.iter().enumerate() {
                let _ = writeln!(md, "{}. {name}", i + 1);
            }
            if !r.comparisons.is_empty() {
                md.push_str(
                    "\n### Pairwise: share of resamples in which A beats B\n\n| key | A | B | A better |\n|---|---|---|---|\n",
                );
                for c in &r.comparisons {
                    let _ = writeln!(
                        md,
                        "| `{}` | {} | {} | {:.3} |",
                        c.key, c.a, c.b, c.a_better
                    );
                }
            }
        }
        let notes: Vec<String> = self
            .sets
            .iter()
            .flat_map(|s| {
                s.values.iter().filter_map(move |v| {
                    v.note
                        .as_ref()
                        .map(|n| format!("- {} `{}`: {n}", s.set.name, v.key))
                })
            })
            .collect();
        if !notes.is_empty() {
            md.push_str("\n## Notes\n\n");
            for n in notes {
                md.push_str(&n);
                md.push('\n');
            }
        }
        md
    }

    /// Writes `report.json`, `report.md` and the SVG plots into `dir`
    /// (created if needed; only these files are written, each atomically).
    /// Returns the paths written.
    ///
    /// # Errors
    /// [`EvalError::Write`] / [`EvalError::Plot`].
    pub fn write_dir(&self, dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
        std::fs::create_dir_all(dir).map_err(|error| EvalError::Write {
            path: dir.to_path_buf(),
            error,
        })?;
        let mut written = Vec::new();
        let mut put = |name: &str, text: &str| -> Result<(), EvalError> {
            let path = dir.join(name);
            write_text(&path, text)?;
            written.push(path);
            Ok(())
        };
        put("report.json", &self.to_json()?)?;
        put("report.md", &self.to_markdown())?;
        for (name, svg) in crate::plots::render_all(self)? {
            put(&name, &svg)?;
        }
        Ok(written)
    }
}

fn write_text(path: &Path, text: &str) -> Result<(), EvalError> {
    gen_metrics_io::write_atomic(path, true, |w| w.write_all(text.as_bytes()))?;
    Ok(())
}
