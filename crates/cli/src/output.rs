//! Standard output: written through one locked handle; a closed pipe
//! (`| head`, `| true`) ends the program quietly with success, a full
//! device is an error (exit 1), never a panic.

use std::io::Write;

/// The reader of standard output went away: the program stops quietly.
#[derive(Debug)]
pub struct BrokenPipe;

impl std::fmt::Display for BrokenPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for BrokenPipe {}

/// Writing standard output failed for another reason (a full device, ...).
#[derive(Debug)]
pub struct StdoutError(pub std::io::Error);

impl std::fmt::Display for StdoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "writing to standard output: {}", self.0)
    }
}

impl std::error::Error for StdoutError {}

/// Writes `text` to standard output and flushes.
///
/// # Errors
/// [`BrokenPipe`] when the reader is gone, [`StdoutError`] otherwise.
pub fn print(text: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                anyhow::Error::new(BrokenPipe)
            } else {
                anyhow::Error::new(StdoutError(e))
            }
        })
}

/// [`print`] with a newline.
///
/// # Errors
/// As [`print`].
pub fn println(text: &str) -> anyhow::Result<()> {
    print(&format!("{text}\n"))
}
