//! Image files to 8-bit RGB, exactly as Pillow's
//! `Image.open(path).convert('RGB')` does (the first step of clean-fid,
//! pytorch-fid and every torchvision pipeline).
//!
//! The format is detected from the content (magic bytes), never from the
//! file name, as Pillow does. Conversions to RGB, per decoded layout (all
//! verified against Pillow 13 by the tests of this module and
//! `tools/check_resize.py`):
//!
//! | decoded as | Pillow mode | RGB value |
//! | --- | --- | --- |
//! | gray 1/2/4/8-bit | `1` / `L` | `(l, l, l)`, low bit depths scaled to 0..255 (`1` → 255, 2-bit ×85, 4-bit ×17) |
//! | gray + alpha, or gray with `tRNS` | `LA` / `L` | `(l, l, l)`: alpha is dropped, never composited |
//! | palette (with or without `tRNS`) | `P` | the palette entry; alpha dropped; an index past the palette is `(0, 0, 0)` |
//! | RGB / RGBA 8-bit | `RGB` / `RGBA` | the colour samples; alpha dropped, never composited |
//! | RGB / RGBA / gray+alpha 16-bit | `RGB` / `RGBA` | the **high byte** of each sample (`v >> 8`, Pillow's `;16B` unpackers: truncation, not rounding) |
//! | gray 16-bit (PNG, TIFF) | `I;16` | `min(v, 255)` replicated: Pillow's `I;16 → RGB` **clips**, it does not rescale, so most 16-bit gray images become nearly white. This is what the references compute, so it is reproduced. |
//! | JPEG YCbCr / gray / RGB | `RGB` / `L` | libjpeg-turbo's default decode, reproduced bit for bit by this module's own JPEG decoder (`ISLOW` IDCT, fancy upsampling, libjpeg's fixed-point YCbCr→RGB) |
//! | JPEG CMYK / YCCK | `CMYK` | with `(c, m, y, k)` libjpeg-turbo's CMYK output (YCCK converted by `ycck_cmyk_convert`), Pillow reads the Adobe-inverted samples `c' = 255 - c`, …, `k' = 255 - k` (`CMYK;I`) and `cmyk2rgb` gives `r = clip(nk - muldiv255(c', nk))` with `nk = 255 - k'`, `muldiv255(a, b) = (t + (t >> 8)) >> 8`, `t = a * b + 128` (likewise g, b) |
//! | WebP lossy / lossless, with or without alpha | `RGB` / `RGBA` | the `image` crate's WebP decoder, which matches libwebp's output exactly (checked against Pillow on lossy and lossless files); alpha dropped |
//! | BMP (1/4/8-bit palette, 24-bit, 32-bit) | `P` / `L` / `RGB` / `RGBA` | the `image` crate's decoder; alpha dropped |
//!
//! Refused with [`DecodeError::Unsupported`] rather than decoded differently
//! from Pillow: arithmetic-coded, lossless, hierarchical and 12-bit JPEG; a
//! progressive JPEG whose scans leave coefficients incomplete (libjpeg-turbo
//! would smooth blocks); CMYK TIFF (the `image` crate rounds differently from
//! `cmyk2rgb`); floating-point images. A JPEG without its EOI marker is an
//! error, as in Pillow's default (`LOAD_TRUNCATED_IMAGES = False`).
//!
//! EXIF orientation is **not** applied (Pillow's `open` does not apply it;
//! `ImageOps.exif_transpose` would). ICC profiles and gamma are ignored, as
//! Pillow ignores them.
//!
//! **Errors, not panics:** an empty, truncated or corrupt file is a
//! [`DecodeError`] naming the file; a panic inside a third-party decoder is
//! caught and reported the same way.
//!
//! **Size limits, checked before any pixel buffer is allocated.** The header's
//! declared size is checked first, so that a damaged or hostile header (a
//! few hundred bytes claiming 100000 x 100000 pixels) is refused rather than
//! making the process request tens of gigabytes and abort:
//!
//! * at most [`MAX_PIXELS`] pixels (width x height), every format:
//!   [`DecodeError::TooLarge`];
//! * where the format bounds how far its data can be compressed, the file
//!   must be large enough to hold the declared pixels:
//!   [`DecodeError::TooSmallForSize`]. PNG: the zlib stream of the
//!   filtered rows (`height * (1 + ceil(width * bits per pixel / 8))` bytes,
//!   the non-interlaced size, which interlacing only increases) cannot be
//!   smaller than 1/1032 of it (deflate's maximum compression factor, as the
//!   zlib documentation states); uncompressed BMP (`BI_RGB`, `BI_BITFIELDS`):
//!   the rows (`height * 4 * ceil(width * bits / 32)` bytes) must be present
//!   after the pixel-data offset; sequential (baseline) JPEG: every coded
//!   8x8 block takes at least 2 bits (a DC and an end-of-block code), and a
//!   frame codes at least `ceil(width / 8) * ceil(height / 8)` blocks.
//!   Progressive JPEG (end-of-band runs code thousands of blocks in a few
//!   bits), WebP and TIFF (compressions without such a bound) rely on the
//!   pixel limit;
//! * the decoded buffer (up to 8 bytes per pixel for 16-bit RGBA) must fit
//!   the `image` crate's default allocation limit of 512 MiB
//!   ([`DecodeError::Unsupported`] otherwise).
//!
//! **Work limit.** A JPEG's scans may pass over each block at most 32 times
//! on average (each scan is charged its block visits before it is decoded;
//! encoders make a handful of passes per component), so only files repeating
//! scans are refused ([`DecodeError::Unsupported`]). Without it, decoding
//! time grew with the number of scans, not the pixels: a 9.4 kB progressive
//! file repeating one end-of-band refinement scan 60 times over a
//! 2^27-pixel frame took 9.8 s, ten times that file size ten times longer
//! (`docs/fuzzing.md`); it is now refused after 32 passes, in 2.7 s.

use std::io::Cursor;
use std::path::{Path, PathBuf};

mod jpeg;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, RgbImage};

/// The largest image accepted, in pixels (width x height): 2^27, about 134
/// megapixels (e.g. 16384 x 8192; 402 MB as 8-bit RGB). Checked against the
/// header before any pixel buffer is allocated (module docs); larger images
/// are refused with [`DecodeError::TooLarge`].
pub const MAX_PIXELS: u64 = 1 << 27;

/// Deflate's maximum compression factor (zlib's documentation: "the deflate
/// format's maximum compression factor is 1032:1"): a PNG's zlib stream is at
/// least its decompressed size divided by this.
const DEFLATE_MAX_RATIO: u64 = 1032;

/// Why a file could not be decoded. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The file could not be read.
    #[error("{}: cannot read file: {error}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: std::io::Error,
    },
    /// The file has no bytes.
    #[error("{}: empty file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The content is not PNG, JPEG, BMP, WebP or TIFF.
    #[error("{}: not a supported image (png, jpeg, bmp, webp, tiff)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The content is corrupt or truncated.
    #[error("{}: corrupt or truncated {format} data: {message}", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What the decoder reported.
        message: String,
    },
    /// The header declares more pixels than [`MAX_PIXELS`]; refused before
    /// anything is allocated for them.
    #[error(
        "{}: {format} image of {width} x {height} pixels exceeds the limit of {max} pixels (gen_metrics_features::decode::MAX_PIXELS); a damaged header, or an image to downscale before evaluation",
        path.display(),
        max = MAX_PIXELS
    )]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
    },
    /// The header declares more pixels than the file's size can hold, even at
    /// the format's maximum compression (module docs): a truncated file or a
    /// damaged header; refused before anything is allocated for the pixels.
    #[error(
        "{}: {format} header declares {width} x {height} pixels, which need at least {needed} bytes, but the file has {len}: truncated file or damaged header",
        path.display()
    )]
    TooSmallForSize {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// Declared width.
        width: u64,
        /// Declared height.
        height: u64,
        /// The fewest bytes that can hold the declared pixels.
        needed: u64,
        /// The file's size in bytes.
        len: u64,
    },
    /// A valid file of a kind this crate does not decode the way Pillow
    /// does (and so refuses rather than giving different pixels).
    #[error("{}: unsupported {format} image: {message}", path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The detected format.
        format: &'static str,
        /// What is unsupported.
        message: String,
    },
}

impl DecodeError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            DecodeError::Io { path, .. }
            | DecodeError::Empty { path }
            | DecodeError::UnknownFormat { path }
            | DecodeError::Malformed { path, .. }
            | DecodeError::TooLarge { path, .. }
            | DecodeError::TooSmallForSize { path, .. }
            | DecodeError::Unsupported { path, .. } => path,
        }
    }
}

/// Reads `path` and converts it to RGB as Pillow's
/// `Image.open(path).convert('RGB')` (module docs for the exact rules).
///
/// # Errors
/// [`DecodeError`] naming `path` for an unreadable, empty, unrecognised,
/// corrupt or truncated file.
pub fn decode_file(path: &Path) -> Result<RgbImage, DecodeError> {
    let bytes = std::fs::read(path).map_err(|error| DecodeError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    decode_bytes(&bytes, path)
}

/// Gives a decoded image's buffer back for the next decode on this thread
/// (the JPEG decoder's buffer pool): what a loop that decodes, uses and
/// drops one image after another calls instead of dropping it, so that a
/// photo's megabytes are not fresh kernel pages each time.
pub(crate) fn recycle(img: RgbImage) {
    jpeg::recycle_bytes(img.into_raw());
}

/// Decodes an in-memory file (e.g. a zip member); `name` is used in errors
/// only. Same rules as [`decode_file`].
///
/// # Errors
/// As [`decode_file`].
pub fn decode_bytes(bytes: &[u8], name: &Path) -> Result<RgbImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            path: name.to_path_buf(),
        });
    }
    let format = match image::guess_format(bytes) {
        Ok(
            f @ (ImageFormat::Png
            | ImageFormat::Jpeg
            | ImageFormat::Bmp
            | ImageFormat::WebP
            | ImageFormat::Tiff),
        ) => f,
        _ => {
            return Err(DecodeError::UnknownFormat {
                path: name.to_path_buf(),
            });
        }
    };
    let fname = format_name(format);
    // Third-party decoders are not supposed to panic on bad input, but a
    // panic must never take the evaluation down: report it as corrupt data.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        decode_with_format(bytes, format)
    }));
    match result {
        Ok(Ok(img)) => Ok(img),
        Ok(Err(Failure::Malformed(message))) => Err(DecodeError::Malformed {
            path: name.to_path_buf(),
            format: fname,
            message,
        }),
        Ok(Err(Failure::Unsupported(message))) => Err(DecodeError::Unsupported {
            path: name.to_path_buf(),
            format: fname,
            message,
        }),
        Ok(Err(Failure::TooLarge { width, height })) => Err(DecodeError::TooLarge {
            path: name.to_path_buf(),
            format: fname,
            width,
            height,
        }),
        Ok(Err(Failure::TooSmall {
            width,
            height,
            needed,
        })) => Err(DecodeError::TooSmallForSize {
            path: name.to_path_buf(),
            format: fname,
            width,
            height,
            needed,
            len: bytes.len() as u64,
        }),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "decoder panicked".to_owned());
            Err(DecodeError::Malformed {
                path: name.to_path_buf(),
                format: fname,
                message: format!("decoder panicked: {message}"),
            })
        }
    }
}

fn format_name(f: ImageFormat) -> &'static str {
    match f {
        ImageFormat::Png => "png",
        ImageFormat::Jpeg => "jpeg",
        ImageFormat::Bmp => "bmp",
        ImageFormat::WebP => "webp",
        ImageFormat::Tiff => "tiff",
        _ => "image",
    }
}

/// Internal error without the path (added by the caller).
pub(crate) enum Failure {
    Malformed(String),
    Unsupported(String),
    /// More than [`MAX_PIXELS`] declared.
    TooLarge {
        width: u64,
        height: u64,
    },
    /// The file cannot hold the declared pixels (`needed` bytes at least).
    TooSmall {
        width: u64,
        height: u64,
        needed: u64,
    },
}

/// Checks a declared size against [`MAX_PIXELS`] and, when the format bounds
/// its compression, the fewest bytes (`needed`) that can hold it against the
/// file's length (module docs).
pub(crate) fn check_declared_size(
    width: u64,
    height: u64,
    needed: Option<u64>,
    file_len: usize,
) -> Result<(), Failure> {
    if width.saturating_mul(height) > MAX_PIXELS {
        return Err(Failure::TooLarge { width, height });
    }
    match needed {
        Some(needed) if needed > file_len as u64 => Err(Failure::TooSmall {
            width,
            height,
            needed,
        }),
        _ => Ok(()),
    }
}

/// The fewest bytes a PNG of `width x height` can occupy: its zlib stream
/// holds `height * (1 + ceil(width * bits / 8))` bytes of filtered rows (the
/// non-interlaced size; Adam7 only adds filter bytes) compressed at most
/// 1032:1. `None` when the header is not the expected `IHDR`.
fn png_min_len(bytes: &[u8], width: u64, height: u64) -> Option<u64> {
    let (depth, color) = png_ihdr(bytes)?;
    let channels = match color {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        6 => 4,
        _ => return None,
    };
    let bits = u64::from(depth) * channels;
    let row = 1 + (width * bits).div_ceil(8);
    Some(row.saturating_mul(height) / DEFLATE_MAX_RATIO)
}

/// The bytes an uncompressed BMP (`BI_RGB` or `BI_BITFIELDS`) must hold: the
/// pixel-data offset plus `height` rows of `4 * ceil(width * bits / 32)`
/// bytes. `None` for a compressed BMP (RLE, JPEG, PNG) or a short header.
fn bmp_min_len(bytes: &[u8], width: u64, height: u64) -> Option<u64> {
    let u32_at = |o: usize| {
        bytes
            .get(o..o + 4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let offset = u64::from(u32_at(10)?);
    let header_size = u32_at(14)?;
    if header_size < 40 {
        return None; // OS/2 core header: no compression field to read
    }
    let bits = u64::from(u16::from_le_bytes([*bytes.get(28)?, *bytes.get(29)?]));
    let compression = u32_at(30)?;
    if !matches!(compression, 0 | 3 | 6) || bits == 0 {
        return None;
    }
    let row = 4 * (width * bits).div_ceil(32);
    Some(offset.saturating_add(row.saturating_mul(height)))
}

fn from_image_error(e: image::ImageError) -> Failure {
    match e {
        image::ImageError::Unsupported(u) => Failure::Unsupported(u.to_string()),
        image::ImageError::Limits(l) => Failure::Unsupported(l.to_string()),
        other => Failure::Malformed(other.to_string()),
    }
}

fn decode_with_format(bytes: &[u8], format: ImageFormat) -> Result<RgbImage, Failure> {
    if format == ImageFormat::Jpeg {
        return jpeg_to_rgb(jpeg::decode(bytes)?);
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    reader.limits(limits.clone());
    let decoder = reader.into_decoder().map_err(from_image_error)?;
    // The header is parsed, nothing is allocated for the pixels yet: check
    // the declared size (module docs). `DynamicImage::from_decoder` sizes its
    // buffer from the header without consulting the limits, so the decoded
    // size is also reserved against the 512 MiB allocation limit here.
    let (width, height) = decoder.dimensions();
    let (width, height) = (u64::from(width), u64::from(height));
    let needed = match format {
        ImageFormat::Png => png_min_len(bytes, width, height),
        ImageFormat::Bmp => bmp_min_len(bytes, width, height),
        _ => None,
    };
    check_declared_size(width, height, needed, bytes.len())?;
    limits
        .reserve(decoder.total_bytes())
        .map_err(from_image_error)?;
    let original = image::ImageDecoder::original_color_type(&decoder);
    if format == ImageFormat::Tiff
        && matches!(
            original,
            image::ExtendedColorType::Cmyk8 | image::ExtendedColorType::Cmyk16
        )
    {
        // The image crate converts CMYK with its own rounding, which differs
        // from Pillow's `cmyk2rgb`; refuse rather than give other pixels.
        return Err(Failure::Unsupported("CMYK TIFF".to_owned()));
    }
    // Pillow opens every 16-bit grayscale PNG as `I;16` (clipped by
    // `convert('RGB')`), even when a `tRNS` chunk makes the image crate
    // expand it to gray+alpha: read the header's own bit depth and color type.
    let gray16 = format == ImageFormat::Png && png_ihdr(bytes) == Some((16, 0));
    let img = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    to_rgb_like_pillow(img, gray16)
}

/// `(bit depth, color type)` from a PNG's `IHDR`, which the PNG
/// specification requires to be the first chunk.
fn png_ihdr(bytes: &[u8]) -> Option<(u8, u8)> {
    if bytes.len() >= 26 && &bytes[12..16] == b"IHDR" {
        Some((bytes[24], bytes[25]))
    } else {
        None
    }
}

/// Pillow's `convert('RGB')` of libjpeg-turbo's output: `L` replicated,
/// `RGB` as is, `CMYK` read with the Adobe inversion (`CMYK;I`: `255 - v`)
/// and converted by `cmyk2rgb`.
fn jpeg_to_rgb(img: jpeg::JpegImage) -> Result<RgbImage, Failure> {
    let (w, h) = (img.width, img.height);
    let buf = match img.pixels {
        jpeg::JpegPixels::Rgb(v) => v,
        jpeg::JpegPixels::Gray(v) => {
            // Every sample is written below.
            let mut rgb = jpeg::take_bytes(3 * v.len());
            for (px, l) in rgb.chunks_exact_mut(3).zip(&v) {
                px.fill(*l);
            }
            jpeg::recycle_bytes(v);
            rgb
        }
        jpeg::JpegPixels::Cmyk(v) => {
            let mut rgb = jpeg::take_bytes(3 * (v.len() / 4));
            for (px, p) in rgb.chunks_exact_mut(3).zip(v.chunks_exact(4)) {
                let inv = [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[3]];
                let nk = 255 - i32::from(inv[3]);
                let f = |c: u8| {
                    let t = i32::from(c) * nk + 128;
                    let muldiv = ((t >> 8) + t) >> 8;
                    (nk - muldiv).clamp(0, 255) as u8
                };
                px.copy_from_slice(&[f(inv[0]), f(inv[1]), f(inv[2])]);
            }
            jpeg::recycle_bytes(v);
            rgb
        }
    };
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| Failure::Unsupported("image too wide".to_owned()))?,
        u32::try_from(h).map_err(|_| Failure::Unsupported("image too tall".to_owned()))?,
    );
    RgbImage::from_raw(w32, h32, buf)
        .ok_or_else(|| Failure::Malformed("decoded buffer has the wrong size".to_owned()))
}

/// Converts the decoded layout to RGB with Pillow's rules (module docs).
fn to_rgb_like_pillow(img: DynamicImage, gray16: bool) -> Result<RgbImage, Failure> {
    let (w, h) = (img.width(), img.height());
    let buf: Vec<u8> = match img {
        // 16-bit gray PNG with `tRNS`: still `I;16` for Pillow (clip).
        DynamicImage::ImageLumaA16(i) if gray16 => i
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| {
                let l = p[0].min(255) as u8;
                [l, l, l]
            })
            .collect(),
        DynamicImage::ImageRgb8(i) => return Ok(i),
        DynamicImage::ImageLuma8(i) => i.into_raw().into_iter().flat_map(|l| [l, l, l]).collect(),
        DynamicImage::ImageLumaA8(i) => i
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0]])
            .collect(),
        DynamicImage::ImageRgba8(i) => i
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        // Pillow opens 16-bit gray as `I;16`; `convert('RGB')` clips to 255.
        DynamicImage::ImageLuma16(i) => i
            .into_raw()
            .into_iter()
            .flat_map(|v| {
                let l = v.min(255) as u8;
                [l, l, l]
            })
            .collect(),
        // 16-bit gray+alpha, RGB, RGBA: Pillow keeps the high byte.
        DynamicImage::ImageLumaA16(i) => i
            .into_raw()
            .chunks_exact(2)
            .flat_map(|p| {
                let l = (p[0] >> 8) as u8;
                [l, l, l]
            })
            .collect(),
        DynamicImage::ImageRgb16(i) => i.into_raw().into_iter().map(|v| (v >> 8) as u8).collect(),
        DynamicImage::ImageRgba16(i) => i
            .into_raw()
            .chunks_exact(4)
            .flat_map(|p| [(p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8])
            .collect(),
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) => {
            return Err(Failure::Unsupported("floating-point samples".to_owned()));
        }
        other => {
            return Err(Failure::Unsupported(format!(
                "color type {:?}",
                other.color()
            )));
        }
    };
    RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| Failure::Malformed("decoded buffer has the wrong size".to_owned()))
}
