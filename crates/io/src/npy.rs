//! Feature matrices as NumPy `.npy` files.
//!
//! A feature file holds one sample per row: a 2-D array `[N, D]` of `float32`
//! (`<f4`, what every encoder here writes), `float64` (`<f8`, read and rounded
//! to `float32`, the precision every metric takes its input in) or `float16`
//! (`<f2`, as features are often stored to halve their size; widened to
//! `float32` exactly), little- or big-endian (`>f4`, ...). C order and Fortran
//! order are both read; the returned array is always in standard (C) layout. Anything else — a truncated file, extra bytes, another
//! dtype, another rank, NaN or infinity — is an [`IoError`] naming the file.

use std::path::Path;

use ndarray::{Array2, ArrayD, ArrayView2, Ix2, ShapeBuilder};
use ndarray_npy::{ReadNpyError, ReadNpyExt, ReadableElement, WriteNpyExt};

use crate::IoError;
use crate::atomic::write_atomic;

/// Reads a `[N, D]` feature matrix (`float32`, `float64` or `float16`, either
/// byte order, C or Fortran order).
///
/// # Errors
/// [`IoError::Os`] if the file cannot be read, [`IoError::MalformedNpy`] for a
/// damaged file, [`IoError::WrongDtype`] / [`IoError::WrongShape`] for another
/// dtype or rank, [`IoError::NonFinite`] for NaN or infinity,
/// [`IoError::OverflowsFloat32`] for a float64 value beyond float32's range.
pub fn read_features(path: impl AsRef<Path>) -> Result<Array2<f32>, IoError> {
    let path = path.as_ref();
    if let Some(matrix) = read_f32_streamed(path)? {
        return Ok(matrix);
    }
    let bytes = read_file(path)?;
    let matrix = features_from_npy_bytes(&bytes, path, None)?;
    Ok(matrix)
}

/// Bytes read per piece by [`FeatureChunks`]: small enough to stay in
/// cache between the read and the conversion, large enough that the system
/// calls do not show.
const PIECE_BYTES: usize = 1 << 20;

/// Longest header [`FeatureChunks::open`] reads (NumPy writes 128 bytes or a
/// few multiples of 64); a longer one goes to the general decoder.
const MAX_STREAMED_HEADER: usize = 1 << 16;

/// The common case of [`read_features`] without a whole-file buffer: a
/// well-formed `<f4` C-order `[N, D]` file whose data is exactly `N·D·4`
/// bytes is read in [`PIECE_BYTES`] pieces straight into the result (one
/// copy instead of three: whole file, decoder, result) and each piece is
/// checked for NaN/Inf while it is in cache. On the two 10,000 × 2048 files of
/// docs/benchmarks.md this cut reading both from 0.16 s to 0.085 s (2-core
/// dev VM, 2026-12-06).
///
/// `Ok(None)` for anything else (see [`FeatureChunks::open`]), which the
/// general path decodes or reports exactly as before, so the errors (and
/// their wording) do not depend on which path ran.
///
/// # Errors
/// As [`FeatureChunks::next_rows`].
fn read_f32_streamed(path: &Path) -> Result<Option<Array2<f32>>, IoError> {
    let Some(mut chunks) = FeatureChunks::open(path)? else {
        return Ok(None);
    };
    let [rows, cols] = chunks.shape();
    // Zeroed by the allocator (fresh pages, not written twice); the file's
    // bytes land in place.
    let mut values = vec![0.0f32; rows * cols];
    chunks.read_into(&mut values)?;
    Array2::from_shape_vec((rows, cols), values)
        .map(Some)
        .map_err(|e| IoError::MalformedNpy {
            path: path.to_owned(),
            member: None,
            detail: e.to_string(),
        })
}

/// A feature file read front to back in row chunks through one reused
/// buffer, for callers that fold the rows into something smaller (Gaussian
/// statistics) and need not hold the file: memory is one chunk, not `N·D`.
/// Only the common case is read this way — a well-formed little-endian
/// `float32`, C-order `[N, D]` file whose data is exactly `N·D·4` bytes;
/// [`FeatureChunks::open`] answers `None` for every other file, which
/// [`read_features`] decodes (or reports) as a whole. Each chunk is checked
/// for NaN and infinity with the error [`read_features`] gives.
pub struct FeatureChunks {
    path: std::path::PathBuf,
    file: std::fs::File,
    rows: usize,
    cols: usize,
    /// Rows handed out so far.
    next: usize,
    buf: Vec<f32>,
}

impl FeatureChunks {
    /// Opens `path` and reads its header; `Ok(None)` when the file is not
    /// the common case above (another dtype or order, a header this crate's
    /// parser and `ndarray-npy`'s read differently, a header longer than
    /// 64 KiB, a data length that is not exact): read it with
    /// [`read_features`].
    ///
    /// # Errors
    /// [`IoError::Os`] if the file cannot be opened or its header read.
    pub fn open(path: impl AsRef<Path>) -> Result<Option<FeatureChunks>, IoError> {
        use std::io::Read;
        let path = path.as_ref();
        let os = |error: std::io::Error| IoError::Os {
            path: path.to_owned(),
            error,
        };
        let mut file = std::fs::File::open(path).map_err(os)?;
        let file_len = file.metadata().map_err(os)?.len();
        let mut head = vec![0u8; 12];
        if file_len < 12 {
            return Ok(None);
        }
        file.read_exact(&mut head).map_err(os)?;
        let header_end = match head[6] {
            1 => 10 + usize::from(u16::from_le_bytes([head[8], head[9]])),
            2 | 3 => 12 + u32::from_le_bytes([head[8], head[9], head[10], head[11]]) as usize,
            _ => return Ok(None),
        };
        if header_end > MAX_STREAMED_HEADER || header_end as u64 > file_len {
            return Ok(None);
        }
        if header_end > head.len() {
            let at = head.len();
            head.resize(header_end, 0);
            file.read_exact(&mut head[at..]).map_err(os)?;
        }
        head.truncate(header_end);
        // Both readings of the header must say "<f4, C order, 2-D, this shape".
        let Ok(ours) = NpyHeader::parse(&head, path, None) else {
            return Ok(None);
        };
        let Ok(theirs) = ndarray_npy::npy::header::Header::from_reader(&mut head.as_slice()) else {
            return Ok(None);
        };
        let (Some(shape), "<f4", false) = (ours.shape, ours.descr.as_str(), ours.fortran_order)
        else {
            return Ok(None);
        };
        let agrees = theirs.shape == shape
            && !theirs.layout.is_fortran()
            && theirs.type_descriptor.to_string() == "'<f4'"
            && ours.data_offset == header_end;
        let [rows, cols] = shape[..] else {
            return Ok(None);
        };
        let exact = rows
            .checked_mul(cols)
            .and_then(|c| c.checked_mul(4))
            .is_some_and(|bytes| bytes as u64 == file_len - header_end as u64);
        if !(agrees && exact) {
            return Ok(None);
        }
        Ok(Some(FeatureChunks {
            path: path.to_owned(),
            file,
            rows,
            cols,
            next: 0,
            buf: Vec::new(),
        }))
    }

    /// `[N, D]` as the header gives it.
    pub fn shape(&self) -> [usize; 2] {
        [self.rows, self.cols]
    }

    /// The next (up to) `max_rows` rows, or `None` after the last; the view
    /// borrows the reader's buffer until the next call.
    ///
    /// # Errors
    /// [`IoError::Os`] if the file cannot be read (or shrinks while it is
    /// read), [`IoError::NonFinite`] at the first NaN or infinity (its index
    /// in the whole file, as [`read_features`] reports it).
    pub fn next_rows(&mut self, max_rows: usize) -> Result<Option<ArrayView2<'_, f32>>, IoError> {
        let take = max_rows.max(1).min(self.rows - self.next);
        if take == 0 || self.cols == 0 {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(take * self.cols, 0.0);
        let read = self.read_into(&mut buf);
        self.buf = buf;
        read?;
        ArrayView2::from_shape((take, self.cols), &self.buf[..take * self.cols])
            .map(Some)
            .map_err(|e| IoError::MalformedNpy {
                path: self.path.clone(),
                member: None,
                detail: e.to_string(),
            })
    }

    /// Fills `dst` (a whole number of rows) with the next rows, in
    /// [`PIECE_BYTES`] pieces reinterpreted little-endian and checked finite
    /// while in cache.
    fn read_into(&mut self, dst: &mut [f32]) -> Result<(), IoError> {
        use std::io::Read;
        let first = self.next * self.cols;
        for (p, piece) in dst.chunks_mut(PIECE_BYTES / 4).enumerate() {
            self.file
                .read_exact(bytemuck::cast_slice_mut(piece))
                .map_err(|error| IoError::Os {
                    path: self.path.clone(),
                    error,
                })?;
            for v in piece.iter_mut() {
                *v = f32::from_bits(u32::from_le(v.to_bits()));
            }
            if let Some(i) = piece.iter().position(|v| !v.is_finite()) {
                return Err(IoError::NonFinite {
                    path: self.path.clone(),
                    member: None,
                    index: first + p * (PIECE_BYTES / 4) + i,
                    columns: self.cols,
                });
            }
        }
        self.next += dst.len() / self.cols.max(1);
        Ok(())
    }
}

/// The member names an `.npz` feature file may keep its matrix under, in the
/// order they are looked for: `reps` (dgm-eval's `save_outputs`:
/// `np.savez(path, model=..., reps=..., hparams=...)`), then `features`.
/// An archive with a single member (`np.savez(path, x)` stores `arr_0`) is
/// read from that member whatever its name.
pub const NPZ_FEATURE_MEMBERS: [&str; 2] = ["reps", "features"];

/// Reads a feature matrix stored in an `.npz` archive: the member named in
/// [`NPZ_FEATURE_MEMBERS`], or the only member; the same dtypes, orders and
/// checks as [`read_features`]. Returns the matrix and the member's name.
/// Other members (dgm-eval's pickled `hparams`) are not read.
///
/// # Errors
/// [`IoError::MissingMember`] when the archive has several members and none
/// of those names (another kind of `.npz`: statistics, an accumulator);
/// otherwise as [`read_features`], naming the member. A uint8 image array
/// (`arr_0` of `[N, H, W, C]`) is [`IoError::WrongDtype`], so a caller can
/// try it as images.
pub fn read_npz_features(path: impl AsRef<Path>) -> Result<(Array2<f32>, String), IoError> {
    let path = path.as_ref();
    let mut archive = crate::npz::NpzArchive::open(path)?;
    let members = archive.names();
    let name = match NPZ_FEATURE_MEMBERS.iter().find(|m| archive.has(m)) {
        Some(m) => (*m).to_owned(),
        None if members.len() == 1 => members[0].clone(),
        None => {
            return Err(IoError::MissingMember {
                path: path.to_owned(),
                member: NPZ_FEATURE_MEMBERS.join("' or '"),
                found: archive.found(),
            });
        }
    };
    let bytes = archive.required(&name)?;
    let features = features_from_npy_bytes(&bytes, path, Some(&name))?;
    Ok((features, name))
}

/// Decodes `.npy` bytes (a file, or an `.npz` member named `member`) into a
/// finite `[N, D]` `f32` matrix. `path` and `member` only label errors.
///
/// # Errors
/// As [`read_features`].
pub fn features_from_npy_bytes(
    bytes: &[u8],
    path: &Path,
    member: Option<&str>,
) -> Result<Array2<f32>, IoError> {
    let header = NpyHeader::parse(bytes, path, member)?;
    let matrix: Array2<f32> = match header.descr.as_str() {
        "<f4" | ">f4" => decode::<f32>(bytes, path, member)?,
        "<f2" | ">f2" => decode_f16(bytes, &header, path, member)?,
        "<f8" | ">f8" => {
            let wide = decode::<f64>(bytes, path, member)?;
            // A finite value beyond float32's range would become infinity and
            // be reported as non-finite, which it is not: say what it is.
            let too_big = wide
                .iter()
                .enumerate()
                .find(|(_, v)| v.is_finite() && v.abs() > f64::from(f32::MAX));
            if let Some((index, &value)) = too_big {
                return Err(IoError::OverflowsFloat32 {
                    path: path.to_owned(),
                    member: member.map(str::to_owned),
                    index,
                    columns: wide.ncols(),
                    value,
                });
            }
            wide.mapv(|v| v as f32)
        }
        other => {
            return Err(IoError::WrongDtype {
                path: path.to_owned(),
                member: member.map(str::to_owned),
                found: other.to_owned(),
                expected: "<f4 (float32), <f8 (float64) or <f2 (float16)",
            });
        }
    };
    if let Some(index) = matrix.iter().position(|v| !v.is_finite()) {
        return Err(IoError::NonFinite {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            index,
            columns: matrix.ncols(),
        });
    }
    Ok(matrix)
}

/// Decodes `.npy` bytes of a known element type into a 2-D array in standard
/// layout.
pub(crate) fn decode<T: ReadableElement + Clone>(
    bytes: &[u8],
    path: &Path,
    member: Option<&str>,
) -> Result<Array2<T>, IoError> {
    let any = decode_dyn::<T>(bytes, path, member)?;
    let shape = any.shape().to_vec();
    let matrix = any
        .into_dimensionality::<Ix2>()
        .map_err(|_| IoError::WrongShape {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            found: shape,
            expected: "a 2-D array [N, D] (one sample per row)".into(),
        })?;
    Ok(to_standard(matrix))
}

/// Decodes a `float16` (`<f2` / `>f2`) `[N, D]` array, widened to `float32`
/// (exactly: every `float16` value is a `float32` value, subnormals and
/// infinities included). `ndarray-npy` reads no `float16`, so the data bytes
/// are read here, after the same checks: a damaged header, a truncated file,
/// bytes after the data and another rank are the errors [`decode`] gives.
fn decode_f16(
    bytes: &[u8],
    header: &NpyHeader,
    path: &Path,
    member: Option<&str>,
) -> Result<Array2<f32>, IoError> {
    header.check_data_length(bytes.len(), path, member)?;
    let malformed = |detail: String| IoError::MalformedNpy {
        path: path.to_owned(),
        member: member.map(str::to_owned),
        detail,
    };
    let shape = header.declared_shape(path, member)?;
    let [n, d] = shape[..] else {
        return Err(IoError::WrongShape {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            found: shape,
            expected: "a 2-D array [N, D] (one sample per row)".into(),
        });
    };
    // `check_data_length` has checked that `2·n·d` bytes are present.
    let data = &bytes[header.data_offset..];
    let extra = data.len() - 2 * n * d;
    if extra > 0 {
        return Err(malformed(format!(
            "{extra} unexpected bytes after the data"
        )));
    }
    let big_endian = header.descr.starts_with('>');
    let values: Vec<f32> = data
        .chunks_exact(2)
        .map(|b| {
            let bits = if big_endian {
                u16::from_be_bytes([b[0], b[1]])
            } else {
                u16::from_le_bytes([b[0], b[1]])
            };
            half::f16::from_bits(bits).to_f32()
        })
        .collect();
    let matrix = if header.fortran_order {
        Array2::from_shape_vec((n, d).f(), values)
    } else {
        Array2::from_shape_vec((n, d), values)
    }
    .map_err(|e| malformed(e.to_string()))?;
    Ok(to_standard(matrix))
}

/// Decodes `.npy` bytes of a known element type into an array of any rank.
pub(crate) fn decode_dyn<T: ReadableElement>(
    bytes: &[u8],
    path: &Path,
    member: Option<&str>,
) -> Result<ArrayD<T>, IoError> {
    NpyHeader::parse(bytes, path, member)?.check_data_length(bytes.len(), path, member)?;
    check_decoder_allocation::<T>(bytes, path, member)?;
    ArrayD::<T>::read_npy(bytes).map_err(|e| npy_error(e, path, member))
}

/// Refuses what the decoder itself would allocate beyond the file: `ndarray-npy`
/// parses the header with its own Python-literal parser and allocates
/// `prod(shape) * size_of::<T>()` bytes before reading the data. Its reading can
/// differ from [`NpyHeader::parse`]'s on a damaged header (a key given twice:
/// the decoder keeps the last `'shape'`, so `{'shape': (3, 2), 'shape': (3,
/// 2222222222)}` over 48 bytes of data once asked for 53 GB and aborted; found
/// by fuzzing, docs/fuzzing.md). A header the decoder cannot parse allocates
/// nothing and is reported by the decoder.
///
/// # Errors
/// [`IoError::MalformedNpy`] naming the declared and the present sizes.
fn check_decoder_allocation<T>(
    bytes: &[u8],
    path: &Path,
    member: Option<&str>,
) -> Result<(), IoError> {
    let mut rest = bytes;
    let Ok(header) = ndarray_npy::npy::header::Header::from_reader(&mut rest) else {
        return Ok(());
    };
    let present = rest.len();
    let declared = header
        .shape
        .iter()
        .try_fold(std::mem::size_of::<T>(), |acc, &d| acc.checked_mul(d));
    match declared {
        Some(n) if n <= present => Ok(()),
        _ => Err(IoError::MalformedNpy {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            detail: format!(
                "the file is truncated or its header is inconsistent: the header declares shape {:?} ({} bytes of data) but the file holds {present}",
                header.shape,
                declared.map_or_else(|| "more than 2^64".to_owned(), |b| b.to_string()),
            ),
        }),
    }
}

fn to_standard<T: Clone>(a: Array2<T>) -> Array2<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

fn npy_error(e: ReadNpyError, path: &Path, member: Option<&str>) -> IoError {
    let detail = match &e {
        ReadNpyError::MissingData => {
            "the file is truncated: it holds fewer values than its header says".to_owned()
        }
        ReadNpyError::ExtraBytes(n) => format!("{n} unexpected bytes after the data"),
        _ => e.to_string(),
    };
    IoError::MalformedNpy {
        path: path.to_owned(),
        member: member.map(str::to_owned),
        detail,
    }
}

/// The parts of an `.npy` header this crate checks before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NpyHeader {
    /// The dtype descriptor, e.g. `<f4`.
    pub descr: String,
    /// Whether the data is in Fortran (column-major) order.
    pub fortran_order: bool,
    /// The shape the header declares (empty for a scalar); `None` when the
    /// header's `shape` is missing or not a tuple of integers (the decoder
    /// then reports it).
    pub shape: Option<Vec<usize>>,
    /// Offset of the first data byte.
    pub data_offset: usize,
}

impl NpyHeader {
    /// The shape the header declares; [`IoError::MalformedNpy`] when it has
    /// none (missing, or not a tuple of integers).
    ///
    /// # Errors
    /// [`IoError::MalformedNpy`] naming `path` and `member`.
    pub fn declared_shape(&self, path: &Path, member: Option<&str>) -> Result<Vec<usize>, IoError> {
        self.shape.clone().ok_or_else(|| IoError::MalformedNpy {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            detail: "the header has no valid 'shape'".to_owned(),
        })
    }

    /// Parses the magic string and the header dictionary of `.npy` bytes.
    ///
    /// # Errors
    /// [`IoError::MalformedNpy`] if the bytes do not start with a valid header.
    pub fn parse(bytes: &[u8], path: &Path, member: Option<&str>) -> Result<NpyHeader, IoError> {
        let bad = |detail: &str| IoError::MalformedNpy {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            detail: detail.to_owned(),
        };
        if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
            return Err(bad(
                "missing the \\x93NUMPY magic string (empty or not an .npy file)",
            ));
        }
        let (len, start): (usize, usize) = match bytes[6] {
            1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
            2 | 3 if bytes.len() >= 12 => (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            ),
            v => return Err(bad(&format!("unsupported .npy format version {v}"))),
        };
        let header = bytes
            .get(start..start.saturating_add(len))
            .ok_or_else(|| bad("the header is truncated"))?;
        let header = String::from_utf8_lossy(header);
        let depth = bracket_depth(&header);
        if depth > MAX_HEADER_NESTING {
            return Err(bad(&format!(
                "the header nests brackets {depth} deep (a NumPy header nests at most {MAX_HEADER_NESTING})"
            )));
        }
        let descr = dict_value(&header, "descr").ok_or_else(|| bad("the header has no 'descr'"))?;
        let descr = descr.trim_matches(|c| c == '\'' || c == '"').to_owned();
        let fortran_order = dict_value(&header, "fortran_order").is_some_and(|v| v == "True");
        Ok(NpyHeader {
            descr,
            fortran_order,
            shape: shape_value(&header),
            data_offset: start + len,
        })
    }

    /// Refuses a file whose header declares more data than the file holds,
    /// before anything is allocated for it: a damaged or hostile header
    /// (shape `(2000000, 2000000)` over a few bytes) would otherwise ask the
    /// decoder for terabytes and abort the process.
    ///
    /// The element size is read from `descr` (`<f4` -> 4 bytes); for a
    /// descriptor without one the decoder's own checks apply.
    ///
    /// # Errors
    /// [`IoError::MalformedNpy`] naming the declared and the present sizes.
    pub fn check_data_length(
        &self,
        file_len: usize,
        path: &Path,
        member: Option<&str>,
    ) -> Result<(), IoError> {
        let (Some(shape), Some(item)) = (&self.shape, item_size(&self.descr)) else {
            return Ok(());
        };
        let present = file_len.saturating_sub(self.data_offset);
        let declared = shape.iter().try_fold(item, |acc, &d| acc.checked_mul(d));
        match declared {
            Some(bytes) if bytes <= present => Ok(()),
            _ => Err(IoError::MalformedNpy {
                path: path.to_owned(),
                member: member.map(str::to_owned),
                detail: format!(
                    "the file is truncated: its header declares shape {shape:?} of {} ({} bytes of data) but it holds {present}",
                    self.descr,
                    declared.map_or_else(|| "more than 2^64".to_owned(), |b| b.to_string()),
                ),
            }),
        }
    }
}

/// The deepest bracket nesting (`{`, `[`, `(`) an `.npy` header may have: a
/// dict holding a list of tuples holding a shape tuple (a structured dtype)
/// is 4 deep; the plain headers this crate reads are 2 deep. The decoder's
/// header parser (`ndarray-npy` through `py_literal`) backtracks
/// exponentially in the nesting of unclosed brackets (about 3^depth steps: 10
/// unclosed `{` took 10 s, 12 took 90 s; found by fuzzing, docs/fuzzing.md),
/// so deeper headers are refused before it sees them.
const MAX_HEADER_NESTING: usize = 4;

/// The deepest nesting of `{`, `[` and `(` in `s` (quotes are not special:
/// brackets inside a string count too, which only makes the check stricter).
fn bracket_depth(s: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in s.chars() {
        match c {
            '{' | '[' | '(' => {
                depth += 1;
                max = max.max(depth);
            }
            '}' | ']' | ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Bytes per element of a numeric dtype descriptor (`<f4`, `|u1`, `<i8`, ...).
fn item_size(descr: &str) -> Option<usize> {
    let body = descr.trim_start_matches(['<', '>', '|', '=']);
    let (kind, size) = body.split_at_checked(1)?;
    matches!(kind, "f" | "i" | "u" | "b" | "c")
        .then(|| size.parse().ok())
        .flatten()
}

/// The `'shape'` tuple of a header dict: `()`, `(5,)`, `(3, 4)`.
fn shape_value(dict: &str) -> Option<Vec<usize>> {
    let at = dict.find("'shape'")? + "'shape'".len();
    let rest = dict[at..].trim_start().strip_prefix(':')?.trim_start();
    let inner = rest.strip_prefix('(')?;
    let inner = &inner[..inner.find(')')?];
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().ok())
        .collect()
}

/// The raw text of `key`'s value in a Python dict literal of scalars.
fn dict_value<'a>(dict: &'a str, key: &str) -> Option<&'a str> {
    let at = dict.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = dict[at..].trim_start().strip_prefix(':')?.trim_start();
    let end = match rest.strip_prefix('\'') {
        Some(quoted) => quoted.find('\'')? + 2,
        None => rest.find([',', '}']).unwrap_or(rest.len()),
    };
    Some(rest[..end].trim())
}

/// Writes a `[N, D]` `f32` feature matrix as `.npy` (`<f4`, C order),
/// atomically: the data goes to a temporary file in the same folder, which is
/// renamed over `path` only when complete. With `overwrite == false` an
/// existing file is an error and is left untouched; a read-only (not
/// writable) existing file is never replaced.
///
/// # Errors
/// [`IoError::WouldOverwrite`], [`IoError::NotWritable`] or [`IoError::Os`].
pub fn write_features(
    path: impl AsRef<Path>,
    features: ArrayView2<'_, f32>,
    overwrite: bool,
) -> Result<(), IoError> {
    let path = path.as_ref();
    write_atomic(path, overwrite, |w| {
        features
            .write_npy(w)
            .map_err(|e| std::io::Error::other(e.to_string()))
    })
}

/// The bytes of an `.npy` file holding `features` as little-endian `float32`
/// (`<f4`), C order: what [`write_features`] writes, for a caller that also
/// needs the bytes (to hash them, say).
pub fn npy_bytes_f32(features: ArrayView2<'_, f32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + features.len() * 4);
    // Writing to a Vec cannot fail, and a 2-D f32 view always has a valid
    // header; the standard-layout copy makes the data contiguous.
    if features.as_standard_layout().write_npy(&mut out).is_err() {
        unreachable!("writing an f32 matrix to memory cannot fail");
    }
    out
}

/// Reads a whole file, labelling errors with its path.
pub(crate) fn read_file(path: &Path) -> Result<Vec<u8>, IoError> {
    std::fs::read(path).map_err(|source| IoError::Os {
        path: path.to_owned(),
        error: source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder};

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn npy<T: ndarray_npy::WritableElement>(a: &Array2<T>) -> Vec<u8> {
        let mut out = Vec::new();
        a.write_npy(&mut out).unwrap();
        out
    }

    /// The streamed path takes the common file and returns what the general
    /// decoder returns, bit for bit (sizes around the piece boundary).
    #[test]
    fn streamed_read_is_the_decoder_bit_for_bit() {
        let dir = tempfile::tempdir().unwrap();
        for (rows, cols) in [(0, 3), (1, 1), (7, 5), (PIECE_BYTES / 4 / 64 + 3, 64)] {
            let a = Array2::from_shape_fn((rows, cols), |(i, j)| {
                ((i * 31 + j * 7) as f32).sin() * 1e3 + f32::MIN_POSITIVE * (j as f32)
            });
            let bytes = npy(&a);
            let p = write(dir.path(), "a.npy", &bytes);
            let streamed = read_f32_streamed(&p)
                .unwrap()
                .expect("common case is streamed");
            let general = features_from_npy_bytes(&bytes, &p, None).unwrap();
            assert_eq!(streamed.dim(), (rows, cols));
            assert!(
                streamed
                    .iter()
                    .zip(&general)
                    .all(|(x, y)| x.to_bits() == y.to_bits())
            );
        }
    }

    /// Everything else goes to the general path (which reports or decodes it).
    #[test]
    fn uncommon_files_are_left_to_the_decoder() {
        let dir = tempfile::tempdir().unwrap();
        let a = Array2::<f32>::ones((4, 3));
        let mut extra = npy(&a);
        extra.push(0);
        let mut short = npy(&a);
        short.pop();
        let fortran = npy(&Array2::<f32>::ones((4, 3).f()));
        let wide = npy(&a.mapv(f64::from));
        let rank1 = {
            let mut out = Vec::new();
            ndarray::Array1::<f32>::ones(5).write_npy(&mut out).unwrap();
            out
        };
        for (name, bytes) in [
            ("extra", extra),
            ("short", short),
            ("fortran", fortran),
            ("f8", wide),
            ("rank1", rank1),
            ("tiny", b"\x93NUMPY".to_vec()),
            ("empty", Vec::new()),
        ] {
            let p = write(dir.path(), name, &bytes);
            assert!(read_f32_streamed(&p).unwrap().is_none(), "{name}");
            assert!(
                read_features(&p).is_ok() == matches!(name, "fortran" | "f8"),
                "{name}"
            );
        }
    }

    /// NaN and infinity are found at the index the general path names.
    #[test]
    fn streamed_non_finite_index_matches() {
        let dir = tempfile::tempdir().unwrap();
        let n = PIECE_BYTES / 4 + 10;
        for at in [0, 5, PIECE_BYTES / 4 - 1, PIECE_BYTES / 4, n - 1] {
            for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
                let mut a = Array2::<f32>::zeros((n, 1));
                a[[at, 0]] = bad;
                let bytes = npy(&a);
                let p = write(dir.path(), "bad.npy", &bytes);
                let streamed = read_f32_streamed(&p).unwrap_err();
                let general = features_from_npy_bytes(&bytes, &p, None).unwrap_err();
                assert!(matches!(streamed, IoError::NonFinite { index, .. } if index == at));
                assert_eq!(streamed.to_string(), general.to_string());
            }
        }
    }
}
