//! Reading members of an `.npz` (zip of `.npy`) archive and writing one
//! atomically: the plumbing shared by every `.npz` format of this crate.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use ndarray_npy::NpzWriter;

use crate::IoError;
use crate::atomic::write_atomic;
use crate::npy::read_file;

/// An `.npz` archive read into memory, with the names of its members.
pub(crate) struct NpzArchive {
    path: PathBuf,
    archive: zip::ZipArchive<Cursor<Vec<u8>>>,
    /// Member file names as stored (`"mu.npy"`, ...).
    names: Vec<String>,
}

impl NpzArchive {
    /// Reads and indexes the archive at `path`.
    pub(crate) fn open(path: &Path) -> Result<Self, IoError> {
        let malformed = |e: zip::result::ZipError| IoError::MalformedNpz {
            path: path.to_owned(),
            detail: e.to_string(),
        };
        let archive = zip::ZipArchive::new(Cursor::new(read_file(path)?)).map_err(malformed)?;
        let names = archive
            .file_names()
            .collect::<Result<Vec<_>, _>>()
            .map_err(malformed)?
            .into_iter()
            .map(|n| n.into_owned())
            .collect();
        Ok(NpzArchive {
            path: path.to_owned(),
            archive,
            names,
        })
    }

    /// Whether member `name` (without `.npy`) is present.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == &format!("{name}.npy"))
    }

    /// The `.npy` bytes of member `name` (without `.npy`), or `None` if absent.
    pub(crate) fn member(&mut self, name: &str) -> Result<Option<Vec<u8>>, IoError> {
        if !self.has(name) {
            return Ok(None);
        }
        let path = &self.path;
        let damaged = |e: &dyn std::fmt::Display| IoError::MalformedNpz {
            path: path.clone(),
            detail: format!("member '{name}': {e}"),
        };
        let mut entry = self
            .archive
            .by_name(&format!("{name}.npy"))
            .map_err(|e| damaged(&e))?;
        let mut out = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 30));
        entry.read_to_end(&mut out).map_err(|e| damaged(&e))?;
        Ok(Some(out))
    }

    /// The `.npy` bytes of member `name`, which must be present.
    pub(crate) fn required(&mut self, name: &str) -> Result<Vec<u8>, IoError> {
        self.member(name)?.ok_or_else(|| IoError::MissingMember {
            path: self.path.clone(),
            member: name.to_owned(),
            found: self
                .names
                .iter()
                .map(|n| n.trim_end_matches(".npy"))
                .collect::<Vec<_>>()
                .join(", "),
        })
    }
}

/// Builds an uncompressed `.npz` in memory with `fill` and writes it to
/// `path` atomically (see [`write_atomic`]).
pub(crate) fn write_npz(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut NpzWriter<&mut Cursor<Vec<u8>>>) -> Result<(), ndarray_npy::WriteNpzError>,
) -> Result<(), IoError> {
    let mut buffer = Cursor::new(Vec::new());
    {
        let mut npz = NpzWriter::new(&mut buffer);
        fill(&mut npz)
            .and_then(|()| npz.finish().map(|_| ()))
            .map_err(|e| IoError::Os {
                path: path.to_owned(),
                error: std::io::Error::other(e.to_string()),
            })?;
    }
    let bytes = buffer.into_inner();
    write_atomic(path, overwrite, |w| std::io::Write::write_all(w, &bytes))
}
