//! Where a set comes from, and loading it: feature matrices and statistics
//! through `gen-metrics-io` (the one codec), images through
//! `gen-metrics-features` ([`crate::extract`]).
//!
//! A path is classified by what it is: a folder or `.zip` of images; a `.npy`
//! feature matrix (float `[N, D]`) or uint8 image array (`[N, H, W(, C)]`); a
//! `.npz` of statistics (`mu`, `sigma`: pytorch-fid / clean-fid, ADM
//! reference batches), of a streaming accumulator's state (`n`, `mean`,
//! `comoment`), of a feature matrix (dgm-eval's `reps`, `features`, or the
//! only member, as `np.savez(path, x)` writes it), or of a uint8 image array
//! (`arr_0`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use gen_metrics_io::IoError;
use gen_metrics_linalg::{GaussianAccumulator, GaussianStats};
use gen_metrics_metric::SideData;
use ndarray::Array2;
use serde::Serialize;

use crate::EvalError;

/// A set as the user gives it.
#[derive(Debug, Clone)]
pub enum SetSource {
    /// A folder, `.zip`, `.npy` or `.npz` (classified when loaded).
    Path(PathBuf),
    /// Feature rows `[N, D]` in memory.
    Features(Array2<f32>),
    /// Gaussian statistics in memory (FID-type metrics only).
    Statistics(GaussianStats),
}

impl From<&str> for SetSource {
    fn from(p: &str) -> Self {
        SetSource::Path(PathBuf::from(p))
    }
}
impl From<&Path> for SetSource {
    fn from(p: &Path) -> Self {
        SetSource::Path(p.to_path_buf())
    }
}
impl From<PathBuf> for SetSource {
    fn from(p: PathBuf) -> Self {
        SetSource::Path(p)
    }
}
impl From<&PathBuf> for SetSource {
    fn from(p: &PathBuf) -> Self {
        SetSource::Path(p.clone())
    }
}
impl From<Array2<f32>> for SetSource {
    fn from(a: Array2<f32>) -> Self {
        SetSource::Features(a)
    }
}
impl From<GaussianStats> for SetSource {
    fn from(s: GaussianStats) -> Self {
        SetSource::Statistics(s)
    }
}

impl SetSource {
    /// A display name: the path, or `<memory>`.
    pub fn label(&self) -> String {
        match self {
            SetSource::Path(p) => p.display().to_string(),
            SetSource::Features(_) => "<features in memory>".into(),
            SetSource::Statistics(_) => "<statistics in memory>".into(),
        }
    }

    /// Whether loading it needs the encoder (a folder, `.zip`, or an image
    /// array is only known as such once read; this says "certainly").
    pub fn is_image_collection(&self) -> bool {
        matches!(self, SetSource::Path(p) if is_image_collection(p))
    }
}

/// What a loaded set was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetKind {
    /// Images encoded (or read from the feature cache).
    Images,
    /// A feature matrix.
    Features,
    /// Gaussian statistics only.
    Statistics,
}

/// A loaded set: rows or statistics.
#[derive(Debug, Clone)]
pub enum SetData {
    /// Feature rows.
    Rows(Array2<f32>),
    /// Statistics.
    Stats(GaussianStats),
}

/// A set ready for the metrics.
#[derive(Debug, Clone)]
pub struct LoadedSet {
    /// Where it came from.
    pub label: String,
    /// What it was.
    pub kind: SetKind,
    /// Rows or statistics.
    pub data: SetData,
    /// Images left out (`--skip-bad`), `(name, reason)`.
    pub skipped: Vec<(String, String)>,
}

impl LoadedSet {
    /// A feature file's rows, labelled by its path (as [`load`] labels it).
    pub(crate) fn features(path: &Path, rows: Array2<f32>) -> LoadedSet {
        LoadedSet::feature_file(path, SetData::Rows(rows))
    }

    /// A feature file, as its rows or (streamed) as its statistics.
    fn feature_file(path: &Path, data: SetData) -> LoadedSet {
        LoadedSet {
            label: path.display().to_string(),
            kind: SetKind::Features,
            data,
            skipped: Vec::new(),
        }
    }

    /// The metric contract's view of it.
    pub fn side(&self) -> SideData<'_> {
        match &self.data {
            SetData::Rows(r) => SideData::Rows(r.view()),
            SetData::Stats(s) => SideData::Stats(s),
        }
    }

    /// Number of samples.
    pub fn count(&self) -> usize {
        self.side().count()
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.side().dim()
    }

    /// The rows, if the set has them.
    pub fn rows(&self) -> Option<&Array2<f32>> {
        match &self.data {
            SetData::Rows(r) => Some(r),
            SetData::Stats(_) => None,
        }
    }
}

fn ext_is(path: &Path, ext: &str) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case(ext))
}

fn is_image_collection(path: &Path) -> bool {
    path.is_dir() || ext_is(path, "zip")
}

/// Loads `source`; image collections go through `extract` (which builds the
/// encoder on first use, so feature-only evaluations never load a runtime).
///
/// # Errors
/// [`EvalError::Source`] for a missing path or an unknown kind; the
/// format's own errors.
pub fn load(
    source: &SetSource,
    extract: &mut dyn FnMut(&Path) -> Result<LoadedSet, EvalError>,
) -> Result<LoadedSet, EvalError> {
    let path = match source {
        SetSource::Features(a) => {
            return Ok(LoadedSet {
                label: source.label(),
                kind: SetKind::Features,
                data: SetData::Rows(a.clone()),
                skipped: Vec::new(),
            });
        }
        SetSource::Statistics(s) => {
            return Ok(LoadedSet {
                label: source.label(),
                kind: SetKind::Statistics,
                data: SetData::Stats(s.clone()),
                skipped: Vec::new(),
            });
        }
        SetSource::Path(p) => p,
    };
    if !path.exists() {
        return Err(EvalError::Source {
            path: path.clone(),
            detail: "no such file or folder".into(),
        });
    }
    let loaded = |kind, data| LoadedSet {
        label: path.display().to_string(),
        kind,
        data,
        skipped: Vec::new(),
    };
    if ext_is(path, "npz") {
        match gen_metrics_io::read_statistics(path) {
            Ok(s) => return Ok(loaded(SetKind::Statistics, SetData::Stats(s.gaussian()))),
            // Not statistics: an accumulator state, then an image array.
            Err(IoError::MissingMember { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        match gen_metrics_io::read_accumulator(path) {
            Ok(acc) => {
                let stats = acc.into_stats_unbiased().map_err(|e| EvalError::Source {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                return Ok(loaded(SetKind::Statistics, SetData::Stats(stats)));
            }
            Err(IoError::MissingMember { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        // A feature matrix (dgm-eval's `reps`, `features`, or the only
        // member), then a uint8 image array.
        match gen_metrics_io::read_npz_features(path) {
            Ok((features, _)) => return Ok(LoadedSet::features(path, features)),
            Err(IoError::MissingMember { .. }) => {}
            Err(IoError::WrongDtype { .. } | IoError::WrongShape { .. })
                if has_npz_member(path, "arr_0") => {}
            Err(e) => return Err(e.into()),
        }
        if !has_npz_member(path, "arr_0") {
            return Err(EvalError::Source {
                path: path.clone(),
                detail: "a .npz must hold statistics (mu, sigma), an accumulator state (n, mean, comoment), a feature matrix [N, D] (member reps or features, or a single member) or a uint8 image array (arr_0); this one has none of them".into(),
            });
        }
    } else if ext_is(path, "npy") {
        match gen_metrics_io::read_features(path) {
            Ok(f) => return Ok(LoadedSet::features(path, f)),
            // uint8 images [N, H, W, C] or [N, H, W] are tried below.
            Err(IoError::WrongDtype { .. } | IoError::WrongShape { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    } else if !is_image_collection(path) {
        return Err(EvalError::Source {
            path: path.clone(),
            detail: "expected a folder, .zip, .npz (statistics, accumulator or images) or .npy (features or images)".into(),
        });
    }
    extract(path)
}

/// Rows read per chunk by [`stream_statistics`]: 4 MiB of float32 at
/// `D = 2048`, one accumulator batch (its mean, then its centred co-moment in
/// cache-sized pieces, then one Chan update).
const STREAM_ROWS: usize = 512;

/// The Gaussian statistics (ddof 1) of the feature file at `path`, streamed
/// chunk by chunk through [`gen_metrics_io::FeatureChunks`] into a
/// [`GaussianAccumulator`] without holding the rows; labelled and kinded as
/// [`load`] labels a feature file.
///
/// `streams` counts the files being streamed side by side, this one
/// included: while another is still running, the co-moment products run on
/// the calling thread (one accumulator per thread; splitting each product
/// as well only adds synchronisation); once this is the last, they are split
/// across the threads, so the file that finishes last does not leave a core
/// idle. faer's products are the same bit for bit either way.
///
/// `None` — the caller then reads the rows as usual, which reports any error
/// in its own words — for a file that is not the common `<f4` C-order case,
/// that cannot be read, holds NaN or infinity, or has no more rows than
/// columns (there the Fréchet distance keeps the centred rows, which a
/// `D × D` covariance would only make slower).
pub(crate) fn stream_statistics(path: &Path, streams: &AtomicUsize) -> Option<LoadedSet> {
    /// Takes this stream off the count however it ends.
    struct Done<'a>(&'a AtomicUsize);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _done = Done(streams);
    let mut chunks = gen_metrics_io::FeatureChunks::open(path).ok()??;
    let [n, d] = chunks.shape();
    if n <= d || d == 0 {
        return None;
    }
    let mut acc = GaussianAccumulator::new(d).ok()?;
    while let Some(rows) = chunks.next_rows(STREAM_ROWS).ok()? {
        if streams.load(Ordering::Acquire) > 1 {
            acc.push_sequential(rows).ok()?;
        } else {
            acc.push(rows).ok()?;
        }
    }
    let stats = acc.into_stats_unbiased().ok()?;
    Some(LoadedSet::feature_file(path, SetData::Stats(stats)))
}

fn has_npz_member(path: &Path, member: &str) -> bool {
    gen_metrics_io::npz_members(path).is_ok_and(|m| m.iter().any(|n| n == member))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_files_with_more_rows_than_columns_stream_into_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, n: usize, d: usize| {
            let a = Array2::from_shape_fn((n, d), |(i, j)| ((i * d + j) as f32 * 0.7).sin());
            let p = dir.path().join(name);
            gen_metrics_io::write_features(&p, a.view(), false).unwrap();
            (p, a)
        };
        let (p, a) = write("tall.npy", 1300, 24);
        for streams in [2, 1] {
            let set = stream_statistics(&p, &AtomicUsize::new(streams)).expect("streamed");
            assert_eq!(set.kind, SetKind::Features);
            let SetData::Stats(s) = &set.data else {
                panic!("statistics expected");
            };
            let direct = GaussianStats::from_features(a.view()).unwrap();
            assert_eq!(s.n, 1300);
            for (x, y) in s.cov.iter().zip(&direct.cov) {
                assert!((x - y).abs() <= 1e-13 * (1.0 + y.abs()), "{x} vs {y}");
            }
            for (x, y) in s.mean.iter().zip(&direct.mean) {
                assert!((x - y).abs() <= 1e-14 * (1.0 + y.abs()), "{x} vs {y}");
            }
        }
        // N ≤ D, a missing file: the rows path decides.
        let (wide, _) = write("wide.npy", 20, 24);
        let streams = AtomicUsize::new(2);
        assert!(stream_statistics(&wide, &streams).is_none());
        assert!(stream_statistics(&dir.path().join("missing.npy"), &streams).is_none());
        assert_eq!(
            streams.load(Ordering::Acquire),
            0,
            "each stream leaves the count"
        );
    }
}
