//! The one atomic file writer of gen-metrics.
//!
//! Every file the project writes — feature matrices, statistics, cache
//! entries, provisioned artifacts, converted models — goes through
//! [`write_atomic`]: readers see the old file or the new one, never a part,
//! and a crash leaves no half file under a final name.

use std::io::Write;
use std::path::Path;

use crate::IoError;

/// Writes `path` atomically: `fill` writes the content into a temporary file
/// in the same folder (named `.<name>.tmp-XXXXXX`, so a rename is atomic),
/// which is flushed, synced to disk and then renamed over `path`. If `fill`
/// fails, the temporary file is removed and `path` is left as it was.
///
/// With `overwrite == false` an existing `path` is refused
/// ([`IoError::WouldOverwrite`]) and left untouched, also when it appears
/// while the content is being written. The parent folder must exist.
///
/// # Errors
/// [`IoError::WouldOverwrite`]; [`IoError::Os`] naming `path` for any
/// operating-system error or an error returned by `fill`.
pub fn write_atomic(
    path: &Path,
    overwrite: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), IoError> {
    let os = |source| IoError::Os {
        path: path.to_owned(),
        error: source,
    };
    if !overwrite && path.exists() {
        return Err(IoError::WouldOverwrite {
            path: path.to_owned(),
        });
    }
    refuse_unwritable(path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned());
    let prefix = format!(".{name}.tmp-");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix);
    // The temporary file is created 0600; the file it becomes gets what any
    // program's new file gets (0666 less the umask, applied at creation),
    // or keeps the permissions of the file it replaces.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).map_or(0o666, |m| m.permissions().mode() & 0o7777);
        builder.permissions(std::fs::Permissions::from_mode(mode));
    }
    let mut tmp = builder.tempfile_in(dir).map_err(os)?;
    {
        let mut w = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file_mut());
        fill(&mut w).map_err(os)?;
        w.flush().map_err(os)?;
    }
    tmp.as_file().sync_all().map_err(os)?;
    if overwrite {
        tmp.persist(path).map_err(|e| os(e.error))?;
    } else {
        tmp.persist_noclobber(path).map_err(|e| os(e.error))?;
    }
    Ok(())
}

/// Refuses a destination that exists and is not writable: read-only
/// permissions (no write bit for anyone: what `chmod a-w` leaves, refused even
/// for a superuser, whom the shell's `>` would let through), or a regular
/// file this process cannot open for writing. The rename of an atomic write
/// needs only the folder to be writable, so without this check a protected
/// file would be replaced silently. Nothing is modified: the file is opened
/// without truncation and closed.
///
/// # Errors
/// [`IoError::NotWritable`].
pub(crate) fn refuse_unwritable(path: &Path) -> Result<(), IoError> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // absent (or unreadable metadata: the write reports it)
    };
    let denied = meta.permissions().readonly()
        || (meta.is_file()
            && matches!(
                std::fs::OpenOptions::new().write(true).open(path),
                Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied
            ));
    if denied {
        return Err(IoError::NotWritable {
            path: path.to_owned(),
        });
    }
    Ok(())
}
