//! Printing results: one JSON object (`--json`) or an aligned table.

use std::collections::BTreeMap;

use anyhow::{Result, bail};

/// Named metric values in the order they were computed.
#[derive(Debug, Default)]
pub struct Report {
    entries: Vec<(String, f64)>,
}

impl Report {
    /// Adds `key = value`; a non-finite value is an error, never printed.
    pub fn push(&mut self, key: impl Into<String>, value: f64) -> Result<()> {
        let key = key.into();
        if !value.is_finite() {
            bail!(
                "metric '{key}' came out non-finite ({value}); this is a bug or degenerate input, not a result"
            );
        }
        self.entries.push((key, value));
        Ok(())
    }

    /// One JSON object, keys sorted, numbers as JSON numbers.
    pub fn to_json(&self) -> Result<String> {
        let map: BTreeMap<&str, f64> = self.entries.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        Ok(serde_json::to_string_pretty(&map)?)
    }

    /// An aligned two-column table in computation order.
    pub fn to_table(&self) -> String {
        let width = self.entries.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        self.entries
            .iter()
            .map(|(k, v)| format!("{k:<width$}  {v:.6}\n"))
            .collect()
    }
}
