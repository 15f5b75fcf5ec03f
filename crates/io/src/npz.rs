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
            found: self.found(),
        })
    }

    /// The member names present, without their `.npy` suffix.
    pub(crate) fn names(&self) -> Vec<String> {
        self.names
            .iter()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n).to_owned())
            .collect()
    }

    /// The member names present (without `.npy`), comma separated.
    pub(crate) fn found(&self) -> String {
        self.names
            .iter()
            .map(|n| n.trim_end_matches(".npy"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Checks that a file of `kind` which has at least one of the `required`
/// members has all of them: [`IoError::IncompleteFile`] for the first
/// missing one. A file with none of them is left to the readers, whose
/// [`IoError::MissingMember`] tells a caller that it is another kind.
pub(crate) fn check_complete(
    npz: &NpzArchive,
    kind: &'static str,
    required: &[&str],
    needs: &'static str,
) -> Result<(), IoError> {
    if !required.iter().any(|m| npz.has(m)) {
        return Ok(());
    }
    match required.iter().find(|m| !npz.has(m)) {
        Some(missing) => Err(IoError::IncompleteFile {
            path: npz.path.clone(),
            kind,
            member: (*missing).to_owned(),
            found: npz.found(),
            needs,
        }),
        None => Ok(()),
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

/// The member names of the `.npz` at `path`, without their `.npy` suffix
/// (`["mu", "sigma"]`), so a caller can tell what kind of file it is before
/// choosing a reader.
///
/// # Errors
/// [`IoError::Os`] when unreadable, [`IoError::MalformedNpz`] when not a zip.
pub fn npz_members(path: impl AsRef<Path>) -> Result<Vec<String>, IoError> {
    Ok(NpzArchive::open(path.as_ref())?.names())
}
