//! Image sources: folders, zip archives, `.npy`/`.npz` arrays and in-memory
//! batches, decoded and preprocessed in parallel into batches for inference.
//!
//! **Order.** Files of a folder or zip archive are the rows, in ascending
//! order of their path relative to the root (zip: the entry name), compared
//! as `/`-separated UTF-8 strings byte by byte — the order Python's
//! `sorted()` gives clean-fid's file list. Array sources keep their row
//! order.
//!
//! **Which files.** Extensions `png`, `jpg`, `jpeg`, `bmp`, `webp`, `tif`,
//! `tiff`, case-insensitive; folders are walked recursively (symbolic links
//! followed, each directory once). Names starting with `.` are skipped (files
//! and directories, as Python's `glob`, which clean-fid uses), and so is a
//! zip's `__MACOSX/` metadata folder. The content decides the format
//! ([`crate::decode`]), the extension only selects the file. A zip member
//! whose name leads outside the archive (a `..` component or an absolute
//! path) is a row that fails with [`SourceError::UnsafeMember`] (reported
//! under either error policy, never dropped silently). Errors about a zip
//! member name the archive and the member (`archive.zip: member x.png: ...`).
//!
//! **Arrays.** `.npy` and `.npz` hold `uint8` images `[N, H, W, C]` (NHWC),
//! `C` = 3 (RGB), 1 (gray, replicated) or 4 (RGBA, alpha dropped), or
//! `[N, H, W]` (gray); C order only. In an `.npz` the array `arr_0` is used
//! (ADM's reference batches), or the only array, or the one named. Other
//! dtypes, layouts or shapes are refused with an error saying what was found.
//! The headers are read and checked by the `.npy` codec of `gen-metrics-io`
//! ([`gen_metrics_io::ImageArray`]); the pixels are streamed from there.
//!
//! **Batches.** [`ImageSource::into_batches`] starts a producer thread that
//! decodes and resizes each batch with rayon (in parallel over images) and
//! hands finished batches through a bounded channel, so decoding of the next
//! batches overlaps inference on the current one. With
//! [`ErrorPolicy::Fail`] (the default) the first bad item (in row order) ends
//! the iteration with an error naming it; with [`ErrorPolicy::Skip`] bad
//! items are left out and counted ([`Batch::skipped`], [`Batches::skipped`]).
//!
//! **Batch memory.** By default each batch's pixels are a fresh
//! [`Array4`]. [`ImageSource::into_batches_in`] takes [`BatchBuffers`] instead:
//! a small ring of buffers owned by whoever runs the batches (an
//! [`Extractor`](crate::Extractor) hands out page-locked ones on CUDA,
//! [`Extractor::batch_buffers`](crate::Extractor::batch_buffers)). The
//! producer writes each batch's images straight into a free buffer and a
//! dropped [`Batch`] gives its buffer back, so a full batch reaches the
//! device in one DMA with no copy on the inference thread. When no buffer is
//! free (a consumer holding several batches), the producer uses ordinary
//! memory: the ring never blocks it, it only saves copies.

use std::any::Any;
use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use gen_metrics_io::ImageArray;
use ndarray::{Array3, Array4, ArrayView3, ArrayView4, ArrayViewMut3, Axis};
use rayon::prelude::*;

use crate::decode::{DecodeError, decode_bytes, decode_file};
use crate::resize::{
    ResizeError, ResizeSpec, ValueRange, preprocess, preprocess_f32, preprocess_f32_into,
    preprocess_into,
};

/// File extensions (lower case) a folder or zip source picks up.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "bmp", "webp", "tif", "tiff"];

/// Errors of image sources. Each names the file or item concerned.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// An image file could not be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// A file or folder could not be read.
    #[error("{}: {error}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The underlying error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: std::io::Error,
    },
    /// A zip member whose name leads outside the archive (`../x.png`,
    /// `/x.png`): refused, and reported like any bad item.
    #[error(
        "{}: member {member}: name leads outside the archive (a '..' component or an absolute path); refused",
        archive.display()
    )]
    UnsafeMember {
        /// The archive.
        archive: PathBuf,
        /// The member's name as stored.
        member: String,
    },
    /// A zip archive (or `.npz`) is unreadable.
    #[error("{}: bad zip archive: {message}", path.display())]
    Zip {
        /// The archive.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A `.npy`/`.npz` array is not a `uint8` image array, or is damaged
    /// (the codec of `gen-metrics-io` says why, naming the file and member).
    #[error(transparent)]
    File(#[from] gen_metrics_io::IoError),
    /// An `.npz` archive has no usable array under the name asked for.
    #[error("{}: {message}", path.display())]
    Array {
        /// The file.
        path: PathBuf,
        /// What is wrong (dtype, shape, layout, key).
        message: String,
    },
    /// An in-memory batch has an unusable shape.
    #[error("in-memory batch: {0}")]
    Shape(String),
    /// The path is neither a folder nor a `.zip`, `.npy` or `.npz` file.
    #[error("{}: not a folder, .zip, .npy or .npz", path.display())]
    UnknownKind {
        /// The path.
        path: PathBuf,
    },
    /// An item could not be preprocessed.
    #[error("{name}: {error}")]
    Resize {
        /// The item.
        name: String,
        /// The underlying error (shown in the message, so not also a
        /// `source`: a chain printer would repeat it).
        error: ResizeError,
    },
    /// A batch size of zero was requested.
    #[error("batch size must be at least 1")]
    BatchSize,
    /// The producer thread stopped without a result (it panicked).
    #[error("image producer thread failed: {0}")]
    Producer(String),
}

/// What to do with an item that cannot be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErrorPolicy {
    /// Stop at the first bad item (in row order) with its error.
    #[default]
    Fail,
    /// Leave bad items out, record them and go on.
    Skip,
}

/// How a source's images become network inputs `[3, H, W]`, run on the
/// producer thread: a [`ResizeSpec`] (resize to a fixed size), or an
/// encoder's own rule (resize the shorter side, then crop:
/// [`EncoderPreprocess`](crate::encoder::EncoderPreprocess)).
pub trait Preprocess: Send + Sync + 'static {
    /// `(height, width)` of every output.
    fn output_size(&self) -> (usize, usize);
    /// An 8-bit RGB image `[H, W, 3]`.
    ///
    /// # Errors
    /// [`ResizeError`] for an unusable image.
    fn u8_image(&self, image: ArrayView3<'_, u8>) -> Result<Array3<f32>, ResizeError>;
    /// A floating-point image `[3, H, W]` with values in `range`.
    ///
    /// # Errors
    /// [`ResizeError`] for an unusable image (also NaN or infinite values).
    fn f32_image(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
    ) -> Result<Array3<f32>, ResizeError>;
    /// As [`u8_image`](Self::u8_image), written into `out` (`[3, H, W]` of
    /// [`output_size`](Self::output_size): the image's slot in a batch
    /// buffer). The default computes the image and copies it; rules that can
    /// write in place override it.
    ///
    /// # Errors
    /// As [`u8_image`](Self::u8_image); [`ResizeError::OutputSize`] when the
    /// image does not fit `out`.
    fn u8_image_into(
        &self,
        image: ArrayView3<'_, u8>,
        out: ArrayViewMut3<'_, f32>,
    ) -> Result<(), ResizeError> {
        place(self.u8_image(image)?.view(), out)
    }
    /// As [`f32_image`](Self::f32_image), written into `out`.
    ///
    /// # Errors
    /// As [`u8_image_into`](Self::u8_image_into).
    fn f32_image_into(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
        out: ArrayViewMut3<'_, f32>,
    ) -> Result<(), ResizeError> {
        place(self.f32_image(image, range)?.view(), out)
    }
}

impl Preprocess for ResizeSpec {
    fn output_size(&self) -> (usize, usize) {
        (self.height, self.width)
    }
    fn u8_image(&self, image: ArrayView3<'_, u8>) -> Result<Array3<f32>, ResizeError> {
        preprocess(image, self)
    }
    fn f32_image(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
    ) -> Result<Array3<f32>, ResizeError> {
        preprocess_f32(image, range, self)
    }
    fn u8_image_into(
        &self,
        image: ArrayView3<'_, u8>,
        out: ArrayViewMut3<'_, f32>,
    ) -> Result<(), ResizeError> {
        preprocess_into(image, self, out)
    }
    fn f32_image_into(
        &self,
        image: ArrayView3<'_, f32>,
        range: ValueRange,
        out: ArrayViewMut3<'_, f32>,
    ) -> Result<(), ResizeError> {
        preprocess_f32_into(image, range, self, out)
    }
}

/// `image` into `out`, or [`ResizeError::OutputSize`] when the shapes differ.
pub(crate) fn place(
    image: ArrayView3<'_, f32>,
    mut out: ArrayViewMut3<'_, f32>,
) -> Result<(), ResizeError> {
    if image.dim() != out.dim() {
        let (c, h, w) = image.dim();
        let (oc, oh, ow) = out.dim();
        return Err(ResizeError::OutputSize {
            got: [c, h, w],
            want: [oc, oh, ow],
        });
    }
    out.assign(&image);
    Ok(())
}

/// Options of [`ImageSource::into_batches`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchOptions {
    /// Images per batch (the last batch may be smaller). Default 64.
    pub batch_size: usize,
    /// Error policy. Default [`ErrorPolicy::Fail`].
    pub policy: ErrorPolicy,
    /// Finished batches buffered ahead of the consumer. Default 2.
    pub prefetch: usize,
    /// Threads for decoding and resizing; `None` uses rayon's global pool.
    pub threads: Option<usize>,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            batch_size: 64,
            policy: ErrorPolicy::Fail,
            prefetch: 2,
            threads: None,
        }
    }
}

impl BatchOptions {
    /// Sets the batch size.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = n;
        self
    }
    /// Sets the error policy.
    pub fn policy(mut self, p: ErrorPolicy) -> Self {
        self.policy = p;
        self
    }
    /// Sets how many finished batches may wait for the consumer.
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = n;
        self
    }
    /// Uses a dedicated pool of `n` threads.
    pub fn threads(mut self, n: usize) -> Self {
        self.threads = Some(n);
        self
    }
}

/// An item left out under [`ErrorPolicy::Skip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedItem {
    /// Row index in the source.
    pub index: usize,
    /// Its name ([`ImageSource::name`]).
    pub name: String,
    /// The error, as text.
    pub error: String,
}

/// One batch of network inputs.
#[derive(Debug, Clone)]
pub struct Batch {
    /// `[n, 3, height, width]`, preprocessed by the [`ResizeSpec`]
    /// ([`pixels`](Self::pixels)).
    pixels: Pixels,
    /// Source row of each image.
    pub indices: Vec<usize>,
    /// Name of each image ([`ImageSource::name`]).
    pub names: Vec<String>,
    /// Items of this batch's row range left out (skip policy).
    pub skipped: Vec<SkippedItem>,
}

impl Batch {
    /// The pixels, `[n, 3, height, width]`, preprocessed by the
    /// [`ResizeSpec`].
    pub fn pixels(&self) -> ArrayView4<'_, f32> {
        match &self.pixels {
            Pixels::Owned(a) => a.view(),
            Pixels::Buffer(r) => r.view(),
        }
    }

    /// The pixels as an owned array (a copy when they sit in a
    /// [`BatchBuffers`] buffer, which goes back to its ring).
    pub fn into_pixels(self) -> Array4<f32> {
        match self.pixels {
            Pixels::Owned(a) => a,
            Pixels::Buffer(r) => r.view().to_owned(),
        }
    }

    /// A batch of the images of `rows`, each `[3, H, W]` of `size`, written
    /// by `fill(state, row, slot)` straight into its slot of a free buffer of
    /// `ring` (else of a new array), in parallel over images (`init` makes
    /// each worker's `state`). Images whose `fill` failed are left out, the
    /// later ones moved down, and returned with their errors in row order.
    /// No names, nothing recorded as skipped.
    pub(crate) fn fill<S, E: Send>(
        rows: std::ops::Range<usize>,
        size: (usize, usize),
        ring: Option<&BatchBuffers>,
        init: impl Fn() -> S + Sync + Send,
        fill: impl Fn(&mut S, usize, ArrayViewMut3<'_, f32>) -> Result<(), E> + Sync + Send,
    ) -> (Batch, Vec<(usize, E)>) {
        let image = [3, size.0, size.1];
        let per = image.iter().product::<usize>();
        let n = rows.len();
        let (mut buf, capacity) = match ring.and_then(|r| {
            let b = (n <= r.capacity)
                .then(|| r.take(r.capacity * per))
                .flatten()?;
            Some((b, r))
        }) {
            Some((b, r)) => (Memory::Ring(b, Arc::clone(&r.free)), r.capacity),
            None => (Memory::Own(vec![0f32; n * per]), n),
        };
        let slots = &mut buf.as_mut_slice()[..n * per];
        let results: Vec<Result<(), E>> = slots
            .par_chunks_mut(per)
            .enumerate()
            .map_init(&init, |state, (j, slot)| {
                match ArrayViewMut3::from_shape((image[0], image[1], image[2]), slot) {
                    Ok(view) => fill(state, rows.start + j, view),
                    Err(_) => unreachable!("a slot holds 3 × H × W floats"),
                }
            })
            .collect();
        let mut kept = Vec::with_capacity(n);
        let mut failed = Vec::new();
        for (j, r) in results.into_iter().enumerate() {
            match r {
                Ok(()) => {
                    if kept.len() != j {
                        slots.copy_within(j * per..(j + 1) * per, kept.len() * per);
                    }
                    kept.push(rows.start + j);
                }
                Err(e) => failed.push((rows.start + j, e)),
            }
        }
        let images = kept.len();
        let pixels = match buf {
            Memory::Ring(b, home) => Pixels::Buffer(Recycled {
                buf: Some(b),
                home,
                images,
                capacity,
                image,
            }),
            Memory::Own(mut v) => {
                v.truncate(images * per);
                match Array4::from_shape_vec((images, image[0], image[1], image[2]), v) {
                    Ok(a) => Pixels::Owned(a),
                    Err(_) => unreachable!("the vector holds n × 3 × H × W floats"),
                }
            }
        };
        let batch = Batch {
            pixels,
            indices: kept,
            names: Vec::new(),
            skipped: Vec::new(),
        };
        (batch, failed)
    }

    /// The [`BatchBuffers`] buffer holding the pixels when the batch fills it
    /// (`n` equals the buffer's capacity), so that it can be handed to the
    /// device as it is; `None` for ordinary memory or a partly filled buffer.
    pub fn full_buffer(&self) -> Option<&dyn PixelBuffer> {
        match &self.pixels {
            Pixels::Buffer(r) if r.images == r.capacity => r.buf.as_deref(),
            _ => None,
        }
    }
}

/// Where a batch's pixels live.
#[derive(Debug)]
enum Pixels {
    Owned(Array4<f32>),
    Buffer(Recycled),
}

impl Clone for Pixels {
    /// A clone owns a copy of the images in ordinary memory: a ring buffer
    /// has one holder.
    fn clone(&self) -> Self {
        match self {
            Pixels::Owned(a) => Pixels::Owned(a.clone()),
            Pixels::Buffer(r) => Pixels::Owned(r.view().to_owned()),
        }
    }
}

/// Host memory the producer writes a batch's pixels into:
/// `capacity × 3 × height × width` floats in C order (`[N, C, H, W]`), of
/// which the first `n` images are the batch. Implemented by the owner of the
/// memory (an [`Extractor`](crate::Extractor)'s ONNX Runtime tensors, or a
/// `Vec` in tests); [`as_any`](Self::as_any) lets the owner recognise its own
/// buffers when a batch comes back.
pub trait PixelBuffer: Send + 'static {
    /// The buffer's floats.
    fn as_slice(&self) -> &[f32];
    /// The buffer's floats, to write into.
    fn as_mut_slice(&mut self) -> &mut [f32];
    /// The buffer as [`Any`], for a downcast by its owner.
    fn as_any(&self) -> &dyn Any;
}

impl PixelBuffer for Vec<f32> {
    fn as_slice(&self) -> &[f32] {
        self
    }
    fn as_mut_slice(&mut self) -> &mut [f32] {
        self
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// A ring of [`PixelBuffer`]s for [`ImageSource::into_batches_in`], each
/// holding `capacity` images of one size: the producer takes a free one per
/// batch, and a [`Batch`] returns its buffer when dropped. A clone is a
/// handle to the same ring.
#[derive(Clone)]
pub struct BatchBuffers {
    capacity: usize,
    free: Ring,
}

/// The free buffers of a [`BatchBuffers`], shared with the batches in flight.
type Ring = Arc<Mutex<Vec<Box<dyn PixelBuffer>>>>;

fn lock_ring(ring: &Ring) -> std::sync::MutexGuard<'_, Vec<Box<dyn PixelBuffer>>> {
    // A panic while holding the lock leaves the vector intact.
    ring.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl std::fmt::Debug for BatchBuffers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchBuffers")
            .field("capacity", &self.capacity)
            .field("available", &self.available())
            .finish()
    }
}

impl BatchBuffers {
    /// A ring of `buffers`, each meant for `capacity` images (a buffer whose
    /// length does not fit the batches' image size is not used).
    pub fn new(buffers: Vec<Box<dyn PixelBuffer>>, capacity: usize) -> Self {
        BatchBuffers {
            capacity,
            free: Arc::new(Mutex::new(buffers)),
        }
    }

    /// Images each buffer holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Buffers free now (not held by a batch in flight).
    pub fn available(&self) -> usize {
        lock_ring(&self.free).len()
    }

    /// A free buffer of exactly `len` floats, without waiting.
    fn take(&self, len: usize) -> Option<Box<dyn PixelBuffer>> {
        let mut free = lock_ring(&self.free);
        let i = free.iter().position(|b| b.as_slice().len() == len)?;
        Some(free.swap_remove(i))
    }
}

/// A batch's pixels in a ring buffer; dropping it gives the buffer back.
struct Recycled {
    buf: Option<Box<dyn PixelBuffer>>,
    home: Ring,
    images: usize,
    capacity: usize,
    /// `[3, height, width]` of one image.
    image: [usize; 3],
}

impl Recycled {
    fn view(&self) -> ArrayView4<'_, f32> {
        let [c, h, w] = self.image;
        let per = c * h * w;
        let data = self.buf.as_deref().map_or(&[][..], PixelBuffer::as_slice);
        let data = data.get(..self.images * per).unwrap_or(&[]);
        // The producer checked the buffer's length against capacity × per.
        match ArrayView4::from_shape((self.images, c, h, w), data) {
            Ok(v) => v,
            Err(_) => unreachable!("a ring buffer holds capacity × C × H × W floats"),
        }
    }
}

impl std::fmt::Debug for Recycled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recycled")
            .field("images", &self.images)
            .field("capacity", &self.capacity)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// The memory a batch is filled in: a ring buffer (with its ring) or a new
/// vector.
enum Memory {
    Ring(Box<dyn PixelBuffer>, Ring),
    Own(Vec<f32>),
}

impl Memory {
    fn as_mut_slice(&mut self) -> &mut [f32] {
        match self {
            Memory::Ring(b, _) => b.as_mut_slice(),
            Memory::Own(v) => v,
        }
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        if let Some(b) = self.buf.take() {
            // When the ring itself is gone this is the last holder, and the
            // buffer is freed with it.
            lock_ring(&self.home).push(b);
        }
    }
}

/// A set of images, addressed by row `0..len()`.
pub struct ImageSource {
    kind: Kind,
}

impl std::fmt::Debug for ImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.kind {
            Kind::Folder { root, .. } => format!("folder {}", root.display()),
            Kind::Zip { path, .. } => format!("zip {}", path.display()),
            Kind::Array(a) => format!("array {}", a.path.display()),
            Kind::MemoryU8(a) => format!("in-memory u8 {:?}", a.shape()),
            Kind::MemoryF32(a, r) => format!("in-memory f32 {:?} {r:?}", a.shape()),
        };
        f.debug_struct("ImageSource")
            .field("kind", &kind)
            .field("len", &self.len())
            .finish()
    }
}

/// An image file below a folder source's root.
#[derive(Clone)]
struct FolderFile {
    /// The relative path as shown and used as the item's name (`/`
    /// separated; a file name that is not UTF-8 shows U+FFFD in it).
    name: String,
    /// The relative path as the file system has it (what is opened).
    rel: PathBuf,
}

enum Kind {
    Folder {
        root: PathBuf,
        files: Vec<FolderFile>,
    },
    Zip {
        path: PathBuf,
        archive: zip::ZipArchive<SharedFile>,
        entries: Vec<(usize, String)>,
    },
    Array(NpyArray),
    MemoryU8(Array4<u8>),
    MemoryF32(Array4<f32>, ValueRange),
}

impl ImageSource {
    /// Opens `path` by what it is: a folder, a `.zip`, a `.npy` or a `.npz`
    /// (extension compared case-insensitively).
    ///
    /// # Errors
    /// [`SourceError::UnknownKind`] or the errors of the specific opener.
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if path.is_dir() {
            return Self::folder(path);
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("zip") => Self::zip(path),
            Some("npy") => Self::npy(path),
            Some("npz") => Self::npz(path, None),
            _ => {
                if !path.exists() {
                    return Err(SourceError::Io {
                        path: path.to_path_buf(),
                        error: std::io::Error::from(std::io::ErrorKind::NotFound),
                    });
                }
                Err(SourceError::UnknownKind {
                    path: path.to_path_buf(),
                })
            }
        }
    }

    /// All image files below `root` (module docs for the rules and order).
    ///
    /// # Errors
    /// [`SourceError::Io`] if a directory cannot be listed.
    pub fn folder(root: &Path) -> Result<Self, SourceError> {
        let mut files = Vec::new();
        let mut seen = HashSet::new();
        walk(root, "", Path::new(""), &mut files, &mut seen)?;
        // By the relative path's bytes: for UTF-8 names the order of the
        // names as strings.
        files.sort_unstable_by(|a, b| a.rel.as_os_str().cmp(b.rel.as_os_str()));
        Ok(ImageSource {
            kind: Kind::Folder {
                root: root.to_path_buf(),
                files,
            },
        })
    }

    /// All image entries of the zip archive `path` (module docs).
    ///
    /// # Errors
    /// [`SourceError::Io`] / [`SourceError::Zip`].
    pub fn zip(path: &Path) -> Result<Self, SourceError> {
        let archive = open_zip(path)?;
        let mut entries = Vec::new();
        for i in 0..archive.len() {
            let Some(name) = archive.name_for_index(i) else {
                continue;
            };
            let name = name.map_err(|e| zip_err(path, e))?.into_owned();
            // `.` and `..` are not hidden names: `..` makes the member unsafe,
            // which is reported when the row is read, never dropped silently.
            if is_image_name(&name)
                && !name
                    .split('/')
                    .any(|c| c == "__MACOSX" || (c.starts_with('.') && c != "." && c != ".."))
            {
                entries.push((i, name));
            }
        }
        entries.sort_unstable_by(|a, b| a.1.cmp(&b.1));
        Ok(ImageSource {
            kind: Kind::Zip {
                path: path.to_path_buf(),
                archive,
                entries,
            },
        })
    }

    /// A `.npy` file of `uint8` images (module docs).
    ///
    /// # Errors
    /// [`SourceError::Array`] for another dtype, Fortran order or a shape
    /// that is not `[N, H, W, C]` / `[N, H, W]`.
    pub fn npy(path: &Path) -> Result<Self, SourceError> {
        let mut f = File::open(path).map_err(|e| io_err(path, e))?;
        let file_len = f.metadata().map_err(|e| io_err(path, e))?.len();
        let layout = ImageArray::read_header(&mut f, file_len, path, None)?;
        Ok(ImageSource {
            kind: Kind::Array(NpyArray {
                path: path.to_path_buf(),
                member: None,
                layout,
            }),
        })
    }

    /// A `.npz` file: the array `key`, else `arr_0`, else the only array.
    ///
    /// # Errors
    /// As [`ImageSource::npy`], plus [`SourceError::Array`] when the key is
    /// missing or ambiguous (the message lists the arrays).
    pub fn npz(path: &Path, key: Option<&str>) -> Result<Self, SourceError> {
        let mut archive = open_zip(path)?;
        let names: Vec<String> = archive
            .file_names()
            .filter_map(|n| n.ok().map(|n| n.into_owned()))
            .filter(|n| n.ends_with(".npy"))
            .collect();
        let want = match key {
            Some(k) => format!("{}.npy", k.trim_end_matches(".npy")),
            None if names.iter().any(|n| n == "arr_0.npy") => "arr_0.npy".to_owned(),
            None if names.len() == 1 => names[0].clone(),
            None => {
                return Err(arr_err(
                    path,
                    format!("no array `arr_0` and not exactly one array; arrays: {names:?}"),
                ));
            }
        };
        let index = archive.index_for_name(&want).ok_or_else(|| {
            arr_err(
                path,
                format!(
                    "no array `{}`; arrays: {names:?}",
                    want.trim_end_matches(".npy")
                ),
            )
        })?;
        let mut entry = archive.by_index(index).map_err(|e| zip_err(path, e))?;
        let size = entry.size();
        let layout = ImageArray::read_header(&mut entry, size, path, Some(&want))?;
        drop(entry);
        Ok(ImageSource {
            kind: Kind::Array(NpyArray {
                path: path.to_path_buf(),
                member: Some((archive, index)),
                layout,
            }),
        })
    }

    /// An in-memory batch of 8-bit RGB images `[N, H, W, 3]` (NHWC).
    ///
    /// # Errors
    /// [`SourceError::Shape`] unless the last axis has 3 channels and the
    /// images are not empty.
    pub fn from_u8_nhwc(images: Array4<u8>) -> Result<Self, SourceError> {
        let (_, h, w, c) = images.dim();
        if c != 3 || h == 0 || w == 0 {
            return Err(SourceError::Shape(format!(
                "expected [N, H, W, 3] uint8 with H, W > 0, got {:?}",
                images.shape()
            )));
        }
        Ok(ImageSource {
            kind: Kind::MemoryU8(images),
        })
    }

    /// An in-memory batch of float images `[N, 3, H, W]` (NCHW) with values
    /// in `range` (resized as floats, never quantised: see [`ValueRange`]).
    ///
    /// # Errors
    /// [`SourceError::Shape`] unless the channel axis has 3 channels and the
    /// images are not empty.
    pub fn from_f32_nchw(images: Array4<f32>, range: ValueRange) -> Result<Self, SourceError> {
        let (_, c, h, w) = images.dim();
        if c != 3 || h == 0 || w == 0 {
            return Err(SourceError::Shape(format!(
                "expected [N, 3, H, W] float32 with H, W > 0, got {:?}",
                images.shape()
            )));
        }
        Ok(ImageSource {
            kind: Kind::MemoryF32(images, range),
        })
    }

    /// The same source restricted to `rows` (row indices of `self`, in the
    /// order given): row `j` of the result is row `rows[j]` of `self`, with
    /// the same name. Used to encode only the images a feature cache cannot
    /// supply.
    ///
    /// Folder and zip sources only: an array's row names carry the row index,
    /// so a subset of one would rename its rows.
    ///
    /// # Errors
    /// [`SourceError::Shape`] for an index out of range or an array source.
    pub fn only(self, rows: &[usize]) -> Result<Self, SourceError> {
        let len = self.len();
        if let Some(&bad) = rows.iter().find(|&&r| r >= len) {
            return Err(SourceError::Shape(format!(
                "row {bad} out of range (len {len})"
            )));
        }
        let kind = match self.kind {
            Kind::Folder { root, files } => Kind::Folder {
                root,
                files: rows.iter().map(|&r| files[r].clone()).collect(),
            },
            Kind::Zip {
                path,
                archive,
                entries,
            } => Kind::Zip {
                path,
                archive,
                entries: rows.iter().map(|&r| entries[r].clone()).collect(),
            },
            Kind::Array(_) | Kind::MemoryU8(_) | Kind::MemoryF32(..) => {
                return Err(SourceError::Shape(
                    "a subset of an image array would rename its rows".into(),
                ));
            }
        };
        Ok(ImageSource { kind })
    }

    /// Number of images (rows).
    pub fn len(&self) -> usize {
        match &self.kind {
            Kind::Folder { files, .. } => files.len(),
            Kind::Zip { entries, .. } => entries.len(),
            Kind::Array(a) => a.layout.len,
            Kind::MemoryU8(a) => a.len_of(Axis(0)),
            Kind::MemoryF32(a, _) => a.len_of(Axis(0)),
        }
    }

    /// True when there are no images.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Name of row `i`: the relative path (folder), the entry name (zip), or
    /// `FILE[i]` (arrays, `[i]` for in-memory batches).
    pub fn name(&self, i: usize) -> String {
        match &self.kind {
            Kind::Folder { files, .. } => files.get(i).map(|f| f.name.clone()).unwrap_or_default(),
            Kind::Zip { entries, .. } => entries.get(i).map(|e| e.1.clone()).unwrap_or_default(),
            Kind::Array(a) => format!("{}[{i}]", a.path.display()),
            Kind::MemoryU8(_) | Kind::MemoryF32(..) => format!("[{i}]"),
        }
    }

    /// Names of all rows, in row order.
    pub fn names(&self) -> Vec<String> {
        (0..self.len()).map(|i| self.name(i)).collect()
    }

    /// For a folder, each row's file relative to the folder as the file
    /// system names it (a [`name`](Self::name) shows a name that is not
    /// UTF-8 with U+FFFD, which opens nothing); empty for other sources.
    pub fn relative_paths(&self) -> Vec<PathBuf> {
        match &self.kind {
            Kind::Folder { files, .. } => files.iter().map(|f| f.rel.clone()).collect(),
            _ => Vec::new(),
        }
    }

    /// The 8-bit RGB pixels `[H, W, 3]` of row `i` (decoded as Pillow's
    /// `convert('RGB')`). For a float in-memory source this is an error:
    /// its pixels are not 8-bit.
    ///
    /// # Errors
    /// Decode or read errors naming the item; [`SourceError::Shape`] for an
    /// index out of range or a float source.
    pub fn load_u8(&self, i: usize) -> Result<Array3<u8>, SourceError> {
        if i >= self.len() {
            return Err(SourceError::Shape(format!(
                "row {i} out of range (len {})",
                self.len()
            )));
        }
        match &self.kind {
            Kind::Folder { root, files } => rgb_to_array(decode_file(&root.join(&files[i].rel))?),
            Kind::Zip {
                path,
                archive,
                entries,
            } => {
                let bytes = read_zip_entry(path, &mut archive.clone(), &entries[i])?;
                rgb_to_array(decode_bytes(&bytes, &member_label(path, &entries[i].1))?)
            }
            Kind::Array(a) => {
                let item = a.layout.item_bytes();
                a.with_stream(|stream| {
                    skip_bytes(stream, (i * item) as u64)?;
                    let mut buf = vec![0u8; item];
                    stream.read_exact(&mut buf)?;
                    Ok(rgb_item(&a.layout, &buf))
                })?
                .map_err(|e| io_err(&a.path, e))
            }
            Kind::MemoryU8(a) => Ok(a.index_axis(Axis(0), i).to_owned()),
            Kind::MemoryF32(..) => Err(SourceError::Shape(
                "float images have no 8-bit pixels".to_owned(),
            )),
        }
    }

    /// Starts decoding and preprocessing into batches on a producer thread
    /// (module docs); iterate the returned [`Batches`].
    ///
    /// # Errors
    /// [`SourceError::BatchSize`] for a zero batch size.
    pub fn into_batches(
        self,
        spec: ResizeSpec,
        options: BatchOptions,
    ) -> Result<Batches, SourceError> {
        self.into_batches_in(spec, options, None)
    }

    /// As [`into_batches`](Self::into_batches), with any [`Preprocess`]
    /// rule, the pixels written into the ring `buffers` when one is free
    /// (module docs, *Batch memory*).
    ///
    /// # Errors
    /// [`SourceError::BatchSize`] for a zero batch size.
    pub fn into_batches_in(
        self,
        spec: impl Preprocess,
        options: BatchOptions,
        buffers: Option<BatchBuffers>,
    ) -> Result<Batches, SourceError> {
        if options.batch_size == 0 {
            return Err(SourceError::BatchSize);
        }
        let source = Arc::new(self);
        let (tx, rx) = sync_channel(options.prefetch.max(1));
        let skipped = Arc::new(Mutex::new(Vec::new()));
        let skipped_producer = Arc::clone(&skipped);
        let handle = std::thread::Builder::new()
            .name("gen-metrics-images".to_owned())
            .spawn(move || {
                let out = Output {
                    tx: &tx,
                    skipped: &skipped_producer,
                    buffers: buffers.as_ref(),
                };
                produce(&source, &spec, options, &out);
            })
            .map_err(|e| SourceError::Producer(e.to_string()))?;
        Ok(Batches {
            rx: Some(rx),
            handle: Some(handle),
            skipped,
            done: false,
        })
    }

    /// Preprocesses every image into one array `[N, 3, H, W]` (convenience
    /// for small sets; large sets should stream with [`into_batches`]).
    ///
    /// [`into_batches`]: ImageSource::into_batches
    ///
    /// # Errors
    /// As [`into_batches`](ImageSource::into_batches) and its items.
    pub fn preprocess_all(
        self,
        spec: ResizeSpec,
        options: BatchOptions,
    ) -> Result<(Array4<f32>, Vec<SkippedItem>), SourceError> {
        let mut parts = Vec::new();
        let mut batches = self.into_batches(spec, options)?;
        for b in &mut batches {
            parts.push(b?.into_pixels());
        }
        let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
        let all = if views.is_empty() {
            Array4::zeros((0, 3, spec.height, spec.width))
        } else {
            ndarray::concatenate(Axis(0), &views).map_err(|e| SourceError::Shape(e.to_string()))?
        };
        Ok((all, batches.skipped()))
    }
}

/// The iterator of batches; dropping it stops the producer.
#[derive(Debug)]
pub struct Batches {
    rx: Option<Receiver<Result<Batch, SourceError>>>,
    handle: Option<JoinHandle<()>>,
    skipped: Arc<Mutex<Vec<SkippedItem>>>,
    done: bool,
}

impl Batches {
    /// Items left out so far (skip policy), in row order.
    pub fn skipped(&self) -> Vec<SkippedItem> {
        match self.skipped.lock() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn finish(&mut self) -> Option<SourceError> {
        self.done = true;
        self.rx = None;
        if let Some(h) = self.handle.take()
            && let Err(panic) = h.join()
        {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".to_owned());
            return Some(SourceError::Producer(msg));
        }
        None
    }
}

impl Iterator for Batches {
    type Item = Result<Batch, SourceError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let received = self.rx.as_ref().and_then(|rx| rx.recv().ok());
        match received {
            Some(Ok(b)) => Some(Ok(b)),
            Some(Err(e)) => {
                let _ = self.finish();
                Some(Err(e))
            }
            None => self.finish().map(Err),
        }
    }
}

impl Drop for Batches {
    fn drop(&mut self) {
        // Closing the receiver makes the producer's next send fail, so it
        // stops after at most the batch it is working on.
        self.rx = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

// ---------------------------------------------------------------------------
// Producer
// ---------------------------------------------------------------------------

/// Where the producer's results go: the batch channel, the shared list of
/// skipped items, and the ring of batch buffers, if any.
struct Output<'a> {
    tx: &'a SyncSender<Result<Batch, SourceError>>,
    skipped: &'a Mutex<Vec<SkippedItem>>,
    buffers: Option<&'a BatchBuffers>,
}

fn produce(source: &ImageSource, spec: &dyn Preprocess, options: BatchOptions, out: &Output<'_>) {
    let pool = match options.threads {
        Some(n) => match rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
        {
            Ok(p) => Some(p),
            Err(e) => {
                let _ = out.tx.send(Err(SourceError::Producer(e.to_string())));
                return;
            }
        },
        None => None,
    };
    let run = || produce_in_pool(source, spec, options, out);
    match pool {
        Some(p) => p.install(run),
        None => run(),
    }
}

fn produce_in_pool(
    source: &ImageSource,
    spec: &dyn Preprocess,
    options: BatchOptions,
    out: &Output<'_>,
) {
    // Array sources are read as one sequential stream (a deflated .npz
    // member cannot be addressed otherwise); other kinds address items.
    let outcome = match &source.kind {
        Kind::Array(a) => a.with_stream(|s| produce_loop(source, spec, options, out, Some(s))),
        _ => {
            produce_loop(source, spec, options, out, None);
            Ok(())
        }
    };
    if let Err(e) = outcome {
        let _ = out.tx.send(Err(e));
    }
}

fn produce_loop(
    source: &ImageSource,
    spec: &dyn Preprocess,
    options: BatchOptions,
    out: &Output<'_>,
    mut stream: Option<&mut dyn Read>,
) {
    let n = source.len();
    let bs = options.batch_size;
    let size = spec.output_size();
    let mut start = 0;
    while start < n {
        let end = (start + bs).min(n);
        let (mut batch, failed) = match (&source.kind, stream.as_mut()) {
            (Kind::Array(a), Some(s)) => {
                let item = a.layout.item_bytes();
                let mut buf = vec![0u8; item * (end - start)];
                if let Err(e) = s.read_exact(&mut buf) {
                    let _ = out.tx.send(Err(io_err(&a.path, e)));
                    return;
                }
                Batch::fill(
                    start..end,
                    size,
                    out.buffers,
                    || (),
                    |(), i, slot| {
                        let bytes = &buf[(i - start) * item..(i - start + 1) * item];
                        let rgb = rgb_item(&a.layout, bytes);
                        spec.u8_image_into(rgb.view(), slot)
                            .map_err(|e| SourceError::Resize {
                                name: source.name(i),
                                error: e,
                            })
                    },
                )
            }
            _ => Batch::fill(
                start..end,
                size,
                out.buffers,
                || match &source.kind {
                    Kind::Zip { archive, .. } => Some(archive.clone()),
                    _ => None,
                },
                |zip, i, slot| load_into(source, zip.as_mut(), i, spec, slot),
            ),
        };
        let mut batch_skipped = Vec::new();
        for (i, e) in failed {
            if options.policy != ErrorPolicy::Skip {
                let _ = out.tx.send(Err(e));
                return;
            }
            batch_skipped.push(SkippedItem {
                index: i,
                name: source.name(i),
                error: e.to_string(),
            });
        }
        if !batch_skipped.is_empty() {
            match out.skipped.lock() {
                Ok(mut g) => g.extend(batch_skipped.iter().cloned()),
                Err(poisoned) => poisoned.into_inner().extend(batch_skipped.iter().cloned()),
            }
        }
        start = end;
        if batch.indices.is_empty() {
            continue;
        }
        batch.names = batch.indices.iter().map(|&i| source.name(i)).collect();
        batch.skipped = batch_skipped;
        if out.tx.send(Ok(batch)).is_err() {
            return; // consumer gone
        }
    }
}

/// Item `i` of `source`, decoded and preprocessed into `out`.
fn load_into(
    source: &ImageSource,
    zip: Option<&mut zip::ZipArchive<SharedFile>>,
    i: usize,
    spec: &dyn Preprocess,
    out: ArrayViewMut3<'_, f32>,
) -> Result<(), SourceError> {
    let resize_err = |e| SourceError::Resize {
        name: source.name(i),
        error: e,
    };
    match &source.kind {
        Kind::Folder { root, files } => {
            let img = decode_file(&root.join(&files[i].rel))?;
            let done = spec.u8_image_into(rgb_view(&img), out).map_err(resize_err);
            crate::decode::recycle(img);
            done
        }
        Kind::Zip {
            path,
            entries,
            archive,
        } => {
            let mut own;
            let ar = match zip {
                Some(z) => z,
                None => {
                    own = archive.clone();
                    &mut own
                }
            };
            let bytes = read_zip_entry(path, ar, &entries[i])?;
            let img = decode_bytes(&bytes, &member_label(path, &entries[i].1))?;
            let done = spec
                .u8_image_into(rgb_view(&img), out)
                .map_err(|e| SourceError::Resize {
                    name: member_label(path, &entries[i].1).display().to_string(),
                    error: e,
                });
            crate::decode::recycle(img);
            done
        }
        Kind::MemoryU8(a) => spec
            .u8_image_into(a.index_axis(Axis(0), i), out)
            .map_err(resize_err),
        Kind::MemoryF32(a, range) => spec
            .f32_image_into(a.index_axis(Axis(0), i), *range, out)
            .map_err(resize_err),
        Kind::Array(_) => {
            let x = source.load_u8(i)?;
            spec.u8_image_into(x.view(), out).map_err(resize_err)
        }
    }
}

fn rgb_view(img: &image::RgbImage) -> ArrayView3<'_, u8> {
    let (w, h) = img.dimensions();
    // An RgbImage holds exactly h * w * 3 samples, so the shape always fits.
    match ArrayView3::from_shape((h as usize, w as usize, 3), img.as_raw().as_slice()) {
        Ok(v) => v,
        Err(_) => unreachable!("RgbImage buffer is h*w*3"),
    }
}

fn rgb_to_array(img: image::RgbImage) -> Result<Array3<u8>, SourceError> {
    let (w, h) = img.dimensions();
    Array3::from_shape_vec((h as usize, w as usize, 3), img.into_raw())
        .map_err(|e| SourceError::Shape(e.to_string()))
}

// ---------------------------------------------------------------------------
// Folders
// ---------------------------------------------------------------------------

fn is_image_name(name: &str) -> bool {
    let Some((_, ext)) = name.rsplit_once('.') else {
        return false;
    };
    let ext = ext.to_ascii_lowercase();
    !name.ends_with('/') && IMAGE_EXTENSIONS.contains(&ext.as_str())
}

fn walk(
    dir: &Path,
    rel: &str,
    rel_path: &Path,
    out: &mut Vec<FolderFile>,
    seen: &mut HashSet<PathBuf>,
) -> Result<(), SourceError> {
    let canonical = std::fs::canonicalize(dir).map_err(|e| io_err(dir, e))?;
    if !seen.insert(canonical) {
        return Ok(()); // a symbolic-link loop or a directory linked twice
    }
    let entries = std::fs::read_dir(dir).map_err(|e| io_err(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io_err(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let path = entry.path();
        let child_rel = if rel.is_empty() {
            name.clone()
        } else {
            format!("{rel}/{name}")
        };
        // The file system's own name, not the lossy one: a name that is not
        // UTF-8 must still open.
        let child_path = rel_path.join(entry.file_name());
        // `metadata` follows symbolic links; a dangling link is skipped.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            walk(&path, &child_rel, &child_path, out, seen)?;
        } else if meta.is_file() && is_image_name(&name) {
            out.push(FolderFile {
                name: child_rel,
                rel: child_path,
            });
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Zip archives
// ---------------------------------------------------------------------------

/// A file handle that reads at its own position (`pread`), so clones can be
/// used from several threads at once without sharing a seek offset.
#[derive(Debug, Clone)]
struct SharedFile {
    file: Arc<File>,
    pos: u64,
    len: u64,
}

impl SharedFile {
    fn open(path: &Path) -> std::io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(SharedFile {
            file: Arc::new(file),
            pos: 0,
            len,
        })
    }
}

impl Read for SharedFile {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        #[cfg(unix)]
        let n = std::os::unix::fs::FileExt::read_at(&*self.file, buf, self.pos)?;
        #[cfg(windows)]
        let n = std::os::windows::fs::FileExt::seek_read(&*self.file, buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for SharedFile {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before start",
            )),
        }
    }
}

fn open_zip(path: &Path) -> Result<zip::ZipArchive<SharedFile>, SourceError> {
    let f = SharedFile::open(path).map_err(|e| io_err(path, e))?;
    zip::ZipArchive::new(f).map_err(|e| zip_err(path, e))
}

/// How errors name a zip member: `archive.zip: member x.png` (passed to
/// the decoder as the name it reports).
fn member_label(archive: &Path, member: &str) -> PathBuf {
    PathBuf::from(format!("{}: member {member}", archive.display()))
}

/// A member name that leads outside the archive: a `..` component or an
/// absolute path (`/x.png`, `C:/x.png`, `\\x.png`).
fn unsafe_member_name(name: &str) -> bool {
    let b = name.as_bytes();
    let drive =
        b.len() > 2 && b[0].is_ascii_alphabetic() && b[1] == b':' && matches!(b[2], b'/' | b'\\');
    name.starts_with(['/', '\\']) || drive || name.split(['/', '\\']).any(|c| c == "..")
}

/// The bytes of the zip member `(index, name)`; an unsafe name is refused.
fn read_zip_entry(
    path: &Path,
    archive: &mut zip::ZipArchive<SharedFile>,
    (index, name): &(usize, String),
) -> Result<Vec<u8>, SourceError> {
    if unsafe_member_name(name) {
        return Err(SourceError::UnsafeMember {
            archive: path.to_path_buf(),
            member: name.clone(),
        });
    }
    let member = |e: &dyn std::fmt::Display| zip_err(path, format!("member {name}: {e}"));
    let mut entry = archive.by_index(*index).map_err(|e| member(&e))?;
    let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0).min(1 << 28));
    entry.read_to_end(&mut bytes).map_err(|e| member(&e))?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// .npy / .npz
// ---------------------------------------------------------------------------

/// One item's bytes to RGB `[H, W, 3]`: gray replicated, alpha dropped
/// (Pillow's `convert('RGB')` of `L` / `RGBA`).
fn rgb_item(layout: &ImageArray, bytes: &[u8]) -> Array3<u8> {
    let c = layout.channels;
    Array3::from_shape_fn((layout.height, layout.width, 3), |(y, x, ch)| {
        let p = (y * layout.width + x) * c;
        if c == 1 { bytes[p] } else { bytes[p + ch] }
    })
}

#[derive(Debug)]
struct NpyArray {
    path: PathBuf,
    /// For `.npz`: the archive and the member's index.
    member: Option<(zip::ZipArchive<SharedFile>, usize)>,
    layout: ImageArray,
}

impl NpyArray {
    /// Runs `f` with a reader positioned at the first data byte (a `.npz`
    /// member is streamed through its decompressor, never loaded whole).
    fn with_stream<T>(&self, f: impl FnOnce(&mut dyn Read) -> T) -> Result<T, SourceError> {
        match &self.member {
            None => {
                let mut file = SharedFile::open(&self.path).map_err(|e| io_err(&self.path, e))?;
                file.seek(SeekFrom::Start(self.layout.data_offset))
                    .map_err(|e| io_err(&self.path, e))?;
                let mut r = std::io::BufReader::with_capacity(1 << 20, file);
                Ok(f(&mut r))
            }
            Some((archive, index)) => {
                let mut archive = archive.clone();
                let entry = archive
                    .by_index(*index)
                    .map_err(|e| zip_err(&self.path, e))?;
                let mut r = std::io::BufReader::with_capacity(1 << 20, entry);
                skip_bytes(&mut r, self.layout.data_offset).map_err(|e| io_err(&self.path, e))?;
                Ok(f(&mut r))
            }
        }
    }
}

fn skip_bytes(r: &mut (impl Read + ?Sized), n: u64) -> std::io::Result<()> {
    let copied = std::io::copy(&mut r.take(n), &mut std::io::sink())?;
    if copied != n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "array data is truncated",
        ));
    }
    Ok(())
}

fn io_err(path: &Path, error: std::io::Error) -> SourceError {
    SourceError::Io {
        path: path.to_path_buf(),
        error,
    }
}

fn zip_err(path: &Path, e: impl std::fmt::Display) -> SourceError {
    SourceError::Zip {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn arr_err(path: &Path, message: String) -> SourceError {
    SourceError::Array {
        path: path.to_path_buf(),
        message,
    }
}
