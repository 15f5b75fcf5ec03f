//! A feature cache keyed by everything that changes the result.
//!
//! Extracting features is the slow step of every metric; the cache stores the
//! feature matrix of a set of images as a `.npy` file and hands it back only
//! when **nothing that could change a number has changed**. The key is the
//! SHA-256 of a canonical JSON document ([`CacheKey::material`]) holding:
//!
//! * the source: its canonical path and kind, and for every file the relative
//!   name, size, modification time (ns) and — on Unix — status-change time
//!   (ns) and inode (a file replaced with its old modification time restored
//!   still changes its status-change time); for a single-file source (zip,
//!   `.npy`, `.npz`) the same for that file plus the entry names;
//! * the encoder ([`EncoderIdentity`]): id, SHA-256 of the ONNX weights,
//!   input size, resize mode, crop, normalisation, output selection, dtype;
//! * anything else the caller adds ([`CacheKey::with`]: error policy, ...);
//! * the cache format version ([`CACHE_FORMAT`]).
//!
//! Entries are `<dir>/<key>.npy` (float32 `[N, D]`, C order) and
//! `<dir>/<key>.json` (the key material, the row names, the skipped items and
//! the `.npy`'s SHA-256), both written atomically, the `.npy` first, so an
//! entry is complete when its `.json` exists. A lookup recomputes the key from
//! the current files, then checks the stored material is identical, the
//! `.npy`'s SHA-256 and shape match: anything else is a miss, so a stale or
//! damaged entry is never reused.
//!
//! **Folders change a file at a time.** Each store of a folder source also
//! names its entry as the newest for that folder, encoder and settings
//! (`<dir>/set-<digest>.latest`, the digest of the key material without the
//! per-file stamps). After a miss, [`FeatureCache::reusable`] hands back the
//! rows of that entry whose files still carry the same stamp, so adding or
//! editing a few images re-encodes only those. Single-file sources (zip,
//! arrays) change as a whole and are all-or-nothing.

use std::path::{Path, PathBuf};

use gen_metrics_io::write_atomic;
use ndarray::{Array2, ArrayView2};
use serde_json::{Value, json};

use crate::encoder::EncoderIdentity;
use crate::error::{FeatureError, Result};
use crate::source::SkippedItem;
use gen_metrics_artifacts::{home_dir, sha256_bytes, sha256_file};

/// Version of the cache format; part of every key.
pub const CACHE_FORMAT: u32 = 1;

/// The identity of one file: name, size and times.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStamp {
    /// Name relative to the source root (or the file name).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, ns since the Unix epoch (0 when unknown).
    pub mtime_ns: i128,
    /// Status-change time, ns since the epoch (Unix only; 0 elsewhere).
    pub ctime_ns: i128,
    /// Inode number (Unix only; 0 elsewhere).
    pub inode: u64,
}

impl FileStamp {
    /// Stamps the file at `path`, recorded under `name`.
    ///
    /// # Errors
    /// [`FeatureError::Io`] when the file's metadata cannot be read.
    pub fn of(path: &Path, name: &str) -> Result<Self> {
        let md = std::fs::metadata(path).map_err(|e| FeatureError::io(path, e))?;
        let mtime_ns = md
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos() as i128);
        #[cfg(unix)]
        let (ctime_ns, inode) = {
            use std::os::unix::fs::MetadataExt;
            (
                i128::from(md.ctime()) * 1_000_000_000 + i128::from(md.ctime_nsec()),
                md.ino(),
            )
        };
        #[cfg(not(unix))]
        let (ctime_ns, inode) = (0, 0);
        Ok(FileStamp {
            name: name.to_owned(),
            size: md.len(),
            mtime_ns,
            ctime_ns,
            inode,
        })
    }
}

/// The key of one cache entry: the digest and the material it is the digest of.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheKey {
    material: serde_json::Map<String, Value>,
}

impl CacheKey {
    /// A key for the images at `source` (a folder: `files` are its image files
    /// relative to it, in row order; a single file — zip, `.npy`, `.npz` —:
    /// `files` are its entry names) encoded by `encoder`.
    ///
    /// # Errors
    /// [`FeatureError::Io`] when a file cannot be stamped.
    pub fn for_source(source: &Path, files: &[String], encoder: &EncoderIdentity) -> Result<Self> {
        let paths: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        Self::for_source_paths(source, files, &paths, encoder)
    }

    /// [`CacheKey::for_source`] for a folder whose files are opened at
    /// `paths` (relative to it, as the file system names them:
    /// `ImageSource::relative_paths`) but recorded under `files` (their
    /// shown names, lossy where a name is not UTF-8). `paths` is ignored for
    /// a single-file source; for a folder it has one path per name.
    ///
    /// # Errors
    /// As [`CacheKey::for_source`]; [`FeatureError::InvalidInput`] when a
    /// folder's `paths` and `files` differ in length.
    pub fn for_source_paths(
        source: &Path,
        files: &[String],
        paths: &[PathBuf],
        encoder: &EncoderIdentity,
    ) -> Result<Self> {
        let canonical = source
            .canonicalize()
            .map_err(|e| FeatureError::io(source, e))?;
        let (kind, stamps) = if canonical.is_dir() {
            if paths.len() != files.len() {
                return Err(FeatureError::InvalidInput {
                    what: "cache key",
                    detail: format!("{} paths for {} files", paths.len(), files.len()),
                });
            }
            let stamps = files
                .iter()
                .zip(paths)
                .map(|(f, p)| FileStamp::of(&canonical.join(p), f))
                .collect::<Result<Vec<_>>>()?;
            ("folder", json!(stamps))
        } else {
            let name = canonical
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let stamp = FileStamp::of(&canonical, &name)?;
            ("file", json!({ "file": stamp, "entries": files }))
        };
        let mut material = serde_json::Map::new();
        material.insert("format".into(), json!(CACHE_FORMAT));
        material.insert(
            "source".into(),
            json!({ "path": canonical.to_string_lossy(), "kind": kind, "files": stamps }),
        );
        material.insert(
            "encoder".into(),
            serde_json::to_value(encoder).map_err(|e| FeatureError::Json {
                path: source.to_owned(),
                error: e,
            })?,
        );
        Ok(CacheKey { material })
    }

    /// Adds another input of the result (e.g. `"error_policy": "skip"`).
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.material.insert(format!("extra.{name}"), value.into());
        self
    }

    /// The canonical JSON the key is the digest of (keys sorted).
    pub fn material(&self) -> Value {
        // serde_json's default map is ordered (BTreeMap): serialisation is canonical.
        Value::Object(self.material.clone())
    }

    /// Lower-case hex SHA-256 of the canonical material.
    pub fn digest(&self) -> String {
        sha256_bytes(self.material().to_string().as_bytes())
    }

    /// The material without the per-file stamps of a folder source: what two
    /// runs over the same folder with the same encoder and settings share
    /// while files are added, removed or edited. `None` for single-file
    /// sources (a zip or array file changes as a whole).
    fn set_material(&self) -> Option<Value> {
        let mut m = self.material.clone();
        let source = m.get_mut("source")?.as_object_mut()?;
        if source.get("kind")?.as_str()? != "folder" {
            return None;
        }
        source.remove("files");
        Some(Value::Object(m))
    }

    /// Digest of [`set_material`](Self::set_material).
    fn set_digest(&self) -> Option<String> {
        self.set_material()
            .map(|m| sha256_bytes(format!("set:{m}").as_bytes()))
    }

    /// The stamp of every file of a folder source, by name.
    fn stamps(&self) -> std::collections::HashMap<String, FileStamp> {
        stamps_of(&Value::Object(self.material.clone()))
    }
}

/// The folder stamps recorded in a key's material, by name (empty for other
/// sources or foreign material).
fn stamps_of(material: &Value) -> std::collections::HashMap<String, FileStamp> {
    material
        .pointer("/source/files")
        .and_then(|f| serde_json::from_value::<Vec<FileStamp>>(f.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect()
}

/// What an earlier entry for the same folder can still supply after some of
/// its files changed ([`FeatureCache::reusable`]).
#[derive(Debug, Clone, Default)]
pub struct Reusable {
    /// Feature row of every unchanged file that was encoded, by name.
    pub rows: std::collections::HashMap<String, Vec<f32>>,
    /// The error of every unchanged file that was left out, by name.
    pub skipped: std::collections::HashMap<String, String>,
}

impl Reusable {
    /// Number of files the entry supplies (rows and skips).
    pub fn len(&self) -> usize {
        self.rows.len() + self.skipped.len()
    }

    /// True when nothing can be reused.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A cache hit.
#[derive(Debug, Clone)]
pub struct CachedFeatures {
    /// The features `[N, D]`, one row per image in row order.
    pub features: Array2<f32>,
    /// The name of each row.
    pub names: Vec<String>,
    /// Items left out when the features were made.
    pub skipped: Vec<SkippedItem>,
    /// The `.npy` file of the entry.
    pub path: PathBuf,
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct EntryMeta {
    key: Value,
    npy_sha256: String,
    rows: usize,
    cols: usize,
    names: Vec<String>,
    /// (row index in the source, name, error) of each item left out.
    skipped: Vec<(usize, String, String)>,
}

/// A folder of cached feature matrices.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
}

impl FeatureCache {
    /// A cache in `dir` (created on the first store).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        FeatureCache { dir: dir.into() }
    }

    /// The default cache: `<home>/features` ([`home_dir`]).
    ///
    /// # Errors
    /// As [`home_dir`].
    pub fn default_location() -> Result<Self> {
        Ok(Self::new(home_dir()?.join("features")))
    }

    /// The cache folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Paths of the entry for `key`: (`.npy`, `.json`).
    pub fn entry_paths(&self, key: &CacheKey) -> (PathBuf, PathBuf) {
        let d = key.digest();
        (
            self.dir.join(format!("{d}.npy")),
            self.dir.join(format!("{d}.json")),
        )
    }

    /// The entry for `key` when it exists and is intact; `None` otherwise
    /// (missing, other material, damaged `.npy`): a stale entry is never returned.
    ///
    /// # Errors
    /// [`FeatureError::Io`] only for an entry that exists but cannot be read.
    pub fn load(&self, key: &CacheKey) -> Result<Option<CachedFeatures>> {
        let (npy, meta_path) = self.entry_paths(key);
        let Some((meta, features)) = Self::read_entry(&npy, &meta_path)? else {
            return Ok(None);
        };
        if meta.key != key.material() {
            return Ok(None);
        }
        Ok(Some(CachedFeatures {
            features,
            names: meta.names,
            skipped: meta
                .skipped
                .into_iter()
                .map(|(index, name, error)| SkippedItem { index, name, error })
                .collect(),
            path: npy,
        }))
    }

    /// An intact entry's metadata and features; `None` when missing or
    /// damaged (checksum, shape, names).
    fn read_entry(npy: &Path, meta_path: &Path) -> Result<Option<(EntryMeta, Array2<f32>)>> {
        let meta_bytes = match std::fs::read(meta_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FeatureError::io(meta_path, e)),
        };
        let Ok(meta) = serde_json::from_slice::<EntryMeta>(&meta_bytes) else {
            return Ok(None);
        };
        if !npy.is_file() || sha256_file(npy)? != meta.npy_sha256 {
            return Ok(None);
        }
        let Ok(features) = gen_metrics_io::read_features(npy) else {
            return Ok(None);
        };
        if features.dim() != (meta.rows, meta.cols) || meta.names.len() != meta.rows {
            return Ok(None);
        }
        Ok(Some((meta, features)))
    }

    /// Path of the file naming the newest entry of a folder set.
    fn latest_path(&self, set_digest: &str) -> PathBuf {
        self.dir.join(format!("set-{set_digest}.latest"))
    }

    /// After a miss on `key` (a folder source): the rows of the newest entry
    /// for the same folder, encoder and settings whose files are unchanged —
    /// same name, size, modification and status-change times and inode — so
    /// that only added or edited files need encoding. `None` for other
    /// sources or when there is no intact earlier entry.
    ///
    /// # Errors
    /// [`FeatureError::Io`] only for an entry that exists but cannot be read.
    pub fn reusable(&self, key: &CacheKey) -> Result<Option<Reusable>> {
        let (Some(set_digest), Some(set_material)) = (key.set_digest(), key.set_material()) else {
            return Ok(None);
        };
        let latest = match std::fs::read_to_string(self.latest_path(&set_digest)) {
            Ok(s) => s.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(FeatureError::io(self.latest_path(&set_digest), e)),
        };
        if latest.len() != 64 || !latest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let npy = self.dir.join(format!("{latest}.npy"));
        let meta_path = self.dir.join(format!("{latest}.json"));
        let Some((meta, features)) = Self::read_entry(&npy, &meta_path)? else {
            return Ok(None);
        };
        let old_key = CacheKey {
            material: match meta.key {
                Value::Object(ref m) => m.clone(),
                _ => return Ok(None),
            },
        };
        if old_key.set_material().as_ref() != Some(&set_material) {
            return Ok(None);
        }
        let now = key.stamps();
        let then = old_key.stamps();
        let unchanged =
            |name: &str| matches!((now.get(name), then.get(name)), (Some(a), Some(b)) if a == b);
        let mut out = Reusable::default();
        for (name, row) in meta.names.iter().zip(features.outer_iter()) {
            if unchanged(name) {
                out.rows.insert(name.clone(), row.to_vec());
            }
        }
        for (_, name, error) in meta.skipped {
            if unchanged(&name) {
                out.skipped.insert(name, error);
            }
        }
        Ok(Some(out))
    }

    /// Stores `features` (row `i` named `names[i]`; `skipped` the items left
    /// out) under `key`, atomically.
    /// Returns the `.npy` path.
    ///
    /// # Errors
    /// [`FeatureError::InvalidInput`] when `names` and rows differ;
    /// [`FeatureError::Io`] when writing fails.
    pub fn store(
        &self,
        key: &CacheKey,
        features: ArrayView2<'_, f32>,
        names: &[String],
        skipped: &[SkippedItem],
    ) -> Result<PathBuf> {
        if names.len() != features.nrows() {
            return Err(FeatureError::invalid(
                "feature cache",
                format!("{} names for {} rows", names.len(), features.nrows()),
            ));
        }
        let (npy, meta_path) = self.entry_paths(key);
        let bytes = gen_metrics_io::npy::npy_bytes_f32(features);
        std::fs::create_dir_all(&self.dir).map_err(|e| FeatureError::io(&self.dir, e))?;
        write_atomic(&npy, true, |w| w.write_all(&bytes))?;
        let meta = EntryMeta {
            key: key.material(),
            npy_sha256: sha256_bytes(&bytes),
            rows: features.nrows(),
            cols: features.ncols(),
            names: names.to_vec(),
            skipped: skipped
                .iter()
                .map(|s| (s.index, s.name.clone(), s.error.clone()))
                .collect(),
        };
        let json = serde_json::to_vec(&meta).map_err(|e| FeatureError::Json {
            path: meta_path.clone(),
            error: e,
        })?;
        write_atomic(&meta_path, true, |w| w.write_all(&json))?;
        if let Some(set_digest) = key.set_digest() {
            let digest = key.digest();
            write_atomic(&self.latest_path(&set_digest), true, |w| {
                w.write_all(digest.as_bytes())
            })?;
        }
        Ok(npy)
    }
}
