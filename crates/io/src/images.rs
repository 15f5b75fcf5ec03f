//! Image arrays as NumPy `.npy` data: `uint8` `[N, H, W, C]` (NHWC, `C` in
//! 1, 3, 4) or `[N, H, W]` (grey), C order — what `np.save` writes for a
//! batch of 8-bit images, alone or as a member of an `.npz`.
//!
//! Only the header is read here ([`ImageArray::read_header`]): the pixels of
//! a large array are streamed by the caller from
//! [`ImageArray::data_offset`] on, one item of [`ImageArray::item_bytes`]
//! bytes per image, never loaded whole. A header that declares more pixels
//! than the file holds is refused before anything is sized from it.

use std::io::Read;
use std::path::Path;

use crate::IoError;
use crate::npy::NpyHeader;

/// Largest `.npy` header accepted from a stream (NumPy writes < 100 bytes).
const MAX_HEADER_BYTES: usize = 1 << 20;

/// The validated header of a `uint8` image array.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageArray {
    /// Number of images `N`.
    pub len: usize,
    /// Height `H` in pixels (> 0).
    pub height: usize,
    /// Width `W` in pixels (> 0).
    pub width: usize,
    /// Channels `C` per pixel: 1 (grey, also for a rank-3 array), 3 (RGB) or 4 (RGBA).
    pub channels: usize,
    /// Offset of the first pixel byte from the start of the `.npy` data.
    pub data_offset: u64,
}

impl ImageArray {
    /// Reads the header of a `.npy` stream of `total_len` bytes (a file, or
    /// an `.npz` member's uncompressed size), leaving `r` at the first pixel
    /// byte, and checks it describes `uint8` images in C order whose pixels
    /// the stream holds. `path` and `member` only label errors.
    ///
    /// # Errors
    /// [`IoError::MalformedNpy`] for a bad header, Fortran order or a header
    /// declaring more pixels than `total_len` holds;
    /// [`IoError::WrongDtype`] for anything but `uint8`;
    /// [`IoError::WrongShape`] for another rank, `C` not in 1, 3, 4 (with a
    /// hint when the array looks NCHW) or empty images.
    pub fn read_header(
        r: &mut impl Read,
        total_len: u64,
        path: &Path,
        member: Option<&str>,
    ) -> Result<ImageArray, IoError> {
        let header = read_npy_header(r, path, member)?;
        Self::from_header(&header, total_len, path, member)
    }

    /// Checks a parsed header (see [`read_header`](Self::read_header)).
    ///
    /// # Errors
    /// As [`read_header`](Self::read_header).
    pub fn from_header(
        header: &NpyHeader,
        total_len: u64,
        path: &Path,
        member: Option<&str>,
    ) -> Result<ImageArray, IoError> {
        let malformed = |detail: String| IoError::MalformedNpy {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            detail,
        };
        let shape = header.declared_shape(path, member)?;
        if !matches!(
            header.descr.as_str(),
            "|u1" | "<u1" | ">u1" | "u1" | "=u1" | "B"
        ) {
            // A 2-D array is a feature matrix that failed for its dtype
            // (callers try features first): say what features may be.
            let expected = if shape.len() == 2 {
                "a feature matrix [N, D] of float32 (<f4), float64 (<f8) or float16 (<f2), or a uint8 image array [N, H, W] / [N, H, W, C]"
            } else {
                "a uint8 image array, dtype '|u1'; convert floats in [0, 1] with (x * 255).round().clip(0, 255).astype(np.uint8)"
            };
            return Err(IoError::WrongDtype {
                path: path.to_owned(),
                member: member.map(str::to_owned),
                found: format!("{} (shape {shape:?})", header.descr),
                expected,
            });
        }
        if header.fortran_order {
            return Err(malformed(format!(
                "Fortran-ordered array (shape {shape:?}): save it in C order"
            )));
        }
        let wrong_shape = |expected: String| IoError::WrongShape {
            path: path.to_owned(),
            member: member.map(str::to_owned),
            found: shape.clone(),
            expected,
        };
        let (len, height, width, channels) = match shape[..] {
            [n, h, w, c] => (n, h, w, c),
            [n, h, w] => (n, h, w, 1),
            _ => {
                return Err(wrong_shape("images [N, H, W, C] or [N, H, W]".to_owned()));
            }
        };
        if !matches!(channels, 1 | 3 | 4) {
            let hint = if shape.len() == 4 && matches!(shape[1], 1 | 3 | 4) {
                " (this looks like NCHW: transpose to NHWC with x.transpose(0, 2, 3, 1))"
            } else {
                ""
            };
            return Err(wrong_shape(format!("NHWC with C in 1, 3, 4{hint}")));
        }
        if height == 0 || width == 0 {
            return Err(wrong_shape("non-empty images (H, W > 0)".to_owned()));
        }
        // Every accepted descriptor is one byte per element: check the declared
        // size against the bytes present as `|u1`.
        let as_bytes = NpyHeader {
            descr: "|u1".to_owned(),
            ..header.clone()
        };
        let total = usize::try_from(total_len).unwrap_or(usize::MAX);
        as_bytes.check_data_length(total, path, member)?;
        Ok(ImageArray {
            len,
            height,
            width,
            channels,
            data_offset: header.data_offset as u64,
        })
    }

    /// Bytes per image: `H · W · C`.
    pub fn item_bytes(&self) -> usize {
        self.height * self.width * self.channels
    }
}

/// Reads the magic string, the header length and the header dictionary of a
/// `.npy` stream (format versions 1.0, 2.0, 3.0), leaving `r` at the first
/// data byte, and parses it with [`NpyHeader::parse`].
fn read_npy_header(
    r: &mut impl Read,
    path: &Path,
    member: Option<&str>,
) -> Result<NpyHeader, IoError> {
    let bad = |detail: String| IoError::MalformedNpy {
        path: path.to_owned(),
        member: member.map(str::to_owned),
        detail,
    };
    let mut bytes = vec![0u8; 10];
    r.read_exact(&mut bytes)
        .map_err(|e| bad(format!("not a .npy file ({e})")))?;
    let len = match bytes[6] {
        1 => usize::from(u16::from_le_bytes([bytes[8], bytes[9]])),
        2 | 3 => {
            let mut more = [0u8; 2];
            r.read_exact(&mut more)
                .map_err(|e| bad(format!("the header is truncated ({e})")))?;
            bytes.extend_from_slice(&more);
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
        }
        // The magic is checked by `NpyHeader::parse` below; a bad version
        // with a good magic is reported there too.
        _ => 0,
    };
    if len > MAX_HEADER_BYTES {
        return Err(bad(format!("implausible header length {len}")));
    }
    let start = bytes.len();
    bytes.resize(start + len, 0);
    r.read_exact(&mut bytes[start..])
        .map_err(|e| bad(format!("the header is truncated ({e})")))?;
    NpyHeader::parse(&bytes, path, member)
}
