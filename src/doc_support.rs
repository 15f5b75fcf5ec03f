//! Two small image folders for the documentation examples: written to a
//! fresh temporary folder each, removed when dropped.

use std::path::{Path, PathBuf};

/// A temporary folder removed on drop.
#[derive(Debug)]
pub struct TempFolder(PathBuf);

impl TempFolder {
    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn folder(tag: &str, n: usize, shift: f32) -> std::io::Result<TempFolder> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let dir = std::env::temp_dir().join(format!(
        "gen-metrics-doc-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir)?;
    let guard = TempFolder(dir);
    // Deterministic pseudo-random colour fields (SplitMix64).
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ (shift.to_bits() as u64);
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    };
    for i in 0..n {
        let base = [next(), next(), next()];
        let img = image::RgbImage::from_fn(32, 32, |x, y| {
            let mut px = |c: usize| {
                let v = 255.0
                    * (0.5 * base[c] + 0.3 * (x as f32 + y as f32) / 64.0 * shift + 0.2 * next());
                v.clamp(0.0, 255.0) as u8
            };
            image::Rgb([px(0), px(1), px(2)])
        });
        img.save(guard.path().join(format!("{i:03}.png")))
            .map_err(std::io::Error::other)?;
    }
    Ok(guard)
}

/// Two folders of 32 small PNG images each, a "real" and a "generated"
/// one with different colour statistics.
///
/// # Errors
/// When the temporary folders cannot be written.
pub fn two_folders() -> std::io::Result<Option<(TempFolder, TempFolder)>> {
    Ok(Some((folder("real", 32, 0.2)?, folder("fake", 32, 1.0)?)))
}
