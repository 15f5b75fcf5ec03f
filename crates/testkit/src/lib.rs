//! # gen-metrics-testkit: shared test support (never a runtime dependency)
//!
//! **Owns:** finding the shared reference material (`../shared` beside the
//! repository, or `GEN_METRICS_SHARED`), loading a conformance case (its
//! arrays and `expected.json`), comparing numbers with a stated tolerance, and
//! the one rule for artifacts that may be missing: a test may skip itself only
//! outside CI; with `CI=true` a missing artifact is a failure.
//!
//! **Must not:** be a dependency of any library crate (dev-dependencies only).
#![allow(clippy::missing_panics_doc)] // test support: panicking is how a test fails

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2};
use ndarray_npy::{ReadNpyExt, ReadableElement};
use serde_json::Value;

/// The folder holding `conformance/`, `models/` and `seeds/`.
pub fn shared_dir() -> PathBuf {
    if let Some(p) = std::env::var_os("GEN_METRICS_SHARED") {
        return PathBuf::from(p);
    }
    // crates/testkit -> repository root -> its parent
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// True when running under CI (`CI=true` or `CI=1`).
pub fn in_ci() -> bool {
    matches!(std::env::var("CI").as_deref(), Ok("true") | Ok("1"))
}

/// Call when a test needs an artifact that is missing: under CI this fails the
/// test; elsewhere it prints why and returns, and the caller returns early.
pub fn missing_artifact(what: &str) {
    if in_ci() {
        panic!("required artifact missing under CI: {what}");
    }
    eprintln!("SKIP (outside CI only): {what}");
}

/// One conformance case: `shared/conformance/case_<name>/`.
pub struct Case {
    /// The case folder.
    pub dir: PathBuf,
    /// The parsed `expected.json`.
    pub expected: Value,
}

impl Case {
    /// Loads the case named `name` (without the `case_` prefix).
    pub fn load(name: &str) -> Case {
        let dir = shared_dir()
            .join("conformance")
            .join(format!("case_{name}"));
        let text = std::fs::read_to_string(dir.join("expected.json"))
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.join("expected.json").display()));
        let expected = serde_json::from_str(&text).expect("expected.json is strict JSON");
        Case { dir, expected }
    }

    /// Names of every case in the corpus, sorted.
    pub fn all_names() -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(shared_dir().join("conformance"))
            .expect("conformance corpus present")
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|s| s.strip_prefix("case_"))
                    .map(str::to_owned)
            })
            .collect();
        names.sort();
        names
    }

    /// True if the case has the file `file`.
    pub fn has(&self, file: &str) -> bool {
        self.dir.join(file).exists()
    }

    /// Reads a 2-D array (`real.npy`, `fake.npy`, index files, ...).
    pub fn array2<T: ReadableElement>(&self, file: &str) -> Array2<T> {
        let f = std::fs::File::open(self.dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        Array2::<T>::read_npy(f).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// Reads a 1-D array.
    pub fn array1<T: ReadableElement>(&self, file: &str) -> Array1<T> {
        let f = std::fs::File::open(self.dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        Array1::<T>::read_npy(f).unwrap_or_else(|e| panic!("{file}: {e}"))
    }

    /// A top-level metric value, if the case has it.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.expected.get(key).and_then(Value::as_f64)
    }

    /// A parameter by JSON pointer below `params` (e.g. `"/kid/degree"`).
    pub fn param(&self, pointer: &str) -> Option<&Value> {
        self.expected.get("params").and_then(|p| p.pointer(pointer))
    }

    /// An entry of `arrays` by JSON pointer (e.g. `"/kid_cleanfid_per_subset"`).
    pub fn arrays(&self, pointer: &str) -> Option<&Value> {
        self.expected.get("arrays").and_then(|p| p.pointer(pointer))
    }

    /// An entry of `diagnostics` by key.
    pub fn diagnostic(&self, key: &str) -> Option<f64> {
        self.expected
            .get("diagnostics")
            .and_then(|d| d.get(key))
            .and_then(Value::as_f64)
    }
}

/// Asserts `|got - want| <= rel * |want|` (or `<= abs` when `rel * |want|` is smaller).
pub fn assert_close(what: &str, got: f64, want: f64, rel: f64, abs: f64) {
    let tol = (rel * want.abs()).max(abs);
    assert!(
        got.is_finite() && (got - want).abs() <= tol,
        "{what}: got {got:.17e}, want {want:.17e} (|diff| {:.3e} > tol {tol:.3e})",
        (got - want).abs()
    );
}
