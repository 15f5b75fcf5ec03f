//! Image sources: file selection and order, zip/npy/npz/in-memory agreement,
//! error policies and batching.
use std::io::Write;
use std::path::Path;

use gen_metrics_features::resize::{
    Normalization, ResizeError, ResizeMode, ResizeSpec, ValueRange, preprocess,
};
use gen_metrics_features::source::{
    BatchBuffers, BatchOptions, ErrorPolicy, ImageSource, PixelBuffer, Preprocess, SourceError,
};
use ndarray::{Array3, Array4, Axis};

fn pattern(i: usize, h: usize, w: usize) -> Array3<u8> {
    Array3::from_shape_fn((h, w, 3), |(y, x, c)| {
        ((i * 37 + y * 11 + x * 3 + c * 80) % 256) as u8
    })
}

fn save_png(path: &Path, a: &Array3<u8>) {
    let (h, w, _) = a.dim();
    let img = image::RgbImage::from_raw(w as u32, h as u32, a.iter().copied().collect()).unwrap();
    img.save_with_format(path, image::ImageFormat::Png).unwrap();
}

fn spec() -> ResizeSpec {
    ResizeSpec::new(ResizeMode::Clean, (8, 6), Normalization::Centered128)
}

/// (relative name, image) in the order the source must give them.
fn make_folder(root: &Path) -> Vec<(String, Array3<u8>)> {
    std::fs::create_dir_all(root.join("b/sub")).unwrap();
    std::fs::create_dir_all(root.join(".hidden")).unwrap();
    let names = ["a.png", "b/sub/z.PNG", "b/x.png", "b.png", "c.Png"];
    let mut out = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let a = pattern(i, 5 + i, 7);
        save_png(&root.join(n), &a);
        out.push((n.to_string(), a));
    }
    // Not picked up: hidden file, hidden folder, other extension.
    save_png(&root.join(".skip.png"), &pattern(9, 4, 4));
    save_png(&root.join(".hidden/in.png"), &pattern(9, 4, 4));
    std::fs::write(root.join("notes.txt"), b"hello").unwrap();
    // Byte order of '/'-joined relative paths: "a.png" < "b.png" < "b/sub/z.PNG" < "b/x.png" < "c.Png".
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn collect(src: ImageSource, opts: BatchOptions) -> (Vec<String>, Array4<f32>) {
    let mut names = Vec::new();
    let mut parts = Vec::new();
    for b in src.into_batches(spec(), opts).unwrap() {
        let b = b.unwrap();
        names.extend(b.names.iter().cloned());
        parts.push(b.into_pixels());
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    (names, ndarray::concatenate(Axis(0), &views).unwrap())
}

#[test]
fn folder_order_selection_and_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let want = make_folder(dir.path());
    let src = ImageSource::open(dir.path()).unwrap();
    let names: Vec<String> = want.iter().map(|w| w.0.clone()).collect();
    assert_eq!(src.names(), names);
    assert_eq!(names, ["a.png", "b.png", "b/sub/z.PNG", "b/x.png", "c.Png"]);
    for (i, (_, a)) in want.iter().enumerate() {
        assert_eq!(&src.load_u8(i).unwrap(), a);
    }
    let (got_names, px) = collect(src, BatchOptions::default().batch_size(2));
    assert_eq!(got_names, names);
    for (i, (_, a)) in want.iter().enumerate() {
        assert_eq!(
            px.index_axis(Axis(0), i),
            preprocess(a.view(), &spec()).unwrap()
        );
    }
}

/// A file whose name is not UTF-8 (a Latin-1 `é`, byte 0xE9, as older
/// tools write names) is listed, ordered by its bytes, shown with U+FFFD,
/// and opened under its real name: the folder source kept only the lossy
/// name and failed the whole run with "No such file or directory".
#[cfg(unix)]
#[test]
fn a_file_name_that_is_not_utf8_opens() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    std::fs::create_dir_all(dir.path().join("sub")).unwrap();
    save_png(&dir.path().join("sub").join(odd), &pattern(1, 5, 6));
    save_png(&dir.path().join("a.png"), &pattern(2, 4, 4));
    let src = ImageSource::open(dir.path()).unwrap();
    assert_eq!(src.names(), ["a.png", "sub/caf\u{FFFD}.png"]);
    assert_eq!(
        src.relative_paths(),
        [Path::new("a.png").to_path_buf(), Path::new("sub").join(odd)]
    );
    assert_eq!(src.load_u8(1).unwrap(), pattern(1, 5, 6));
    let (names, px) = collect(src, BatchOptions::default());
    assert_eq!(names.len(), 2);
    assert_eq!(
        px.index_axis(Axis(0), 1),
        preprocess(pattern(1, 5, 6).view(), &spec()).unwrap()
    );
}

#[test]
fn zip_matches_folder_and_skips_macos_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let want = make_folder(&dir.path().join("imgs"));
    let zpath = dir.path().join("imgs.zip");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    // Written in reverse to check that the order comes from the names.
    for (n, _) in want.iter().rev() {
        zw.start_file(n.as_str(), opts).unwrap();
        zw.write_all(&std::fs::read(dir.path().join("imgs").join(n)).unwrap())
            .unwrap();
    }
    zw.start_file("__MACOSX/._a.png", opts).unwrap();
    zw.write_all(b"junk").unwrap();
    zw.add_directory("empty/", opts).unwrap();
    zw.finish().unwrap();
    let src = ImageSource::open(&zpath).unwrap();
    assert_eq!(
        src.names(),
        want.iter().map(|w| w.0.clone()).collect::<Vec<_>>()
    );
    let (_, from_zip) = collect(src, BatchOptions::default().batch_size(3).threads(2));
    let (_, from_dir) = collect(
        ImageSource::folder(&dir.path().join("imgs")).unwrap(),
        BatchOptions::default(),
    );
    assert_eq!(from_zip, from_dir);
}

#[test]
fn npy_npz_and_memory_agree() {
    let dir = tempfile::tempdir().unwrap();
    let imgs = Array4::from_shape_fn((7, 9, 10, 3), |(n, y, x, c)| {
        ((n * 53 + y * 7 + x * 13 + c * 70) % 256) as u8
    });
    let npy = dir.path().join("a.npy");
    ndarray_npy::write_npy(&npy, &imgs).unwrap();
    let npz = dir.path().join("b.npz");
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&npz).unwrap());
    w.add_array("arr_0", &imgs).unwrap();
    w.add_array("labels", &ndarray::Array1::<i64>::zeros(7))
        .unwrap();
    w.finish().unwrap();
    let npzc = dir.path().join("c.npz");
    let mut w = ndarray_npy::NpzWriter::new_compressed(std::fs::File::create(&npzc).unwrap());
    w.add_array("images", &imgs).unwrap();
    w.finish().unwrap();

    let reference = collect(
        ImageSource::from_u8_nhwc(imgs.clone()).unwrap(),
        BatchOptions::default(),
    )
    .1;
    for src in [
        ImageSource::open(&npy).unwrap(),
        ImageSource::open(&npz).unwrap(),
        ImageSource::open(&npzc).unwrap(),
    ] {
        assert_eq!(src.len(), 7);
        assert_eq!(src.load_u8(4).unwrap(), imgs.index_axis(Axis(0), 4));
        let (_, px) = collect(src, BatchOptions::default().batch_size(3));
        assert_eq!(px, reference);
    }
    // The float path on the same pixels gives the same input.
    let f = imgs
        .mapv(f32::from)
        .permuted_axes([0, 3, 1, 2])
        .as_standard_layout()
        .to_owned();
    let (_, px) = collect(
        ImageSource::from_f32_nchw(f, ValueRange::Byte).unwrap(),
        BatchOptions::default(),
    );
    assert_eq!(px, reference);
}

#[test]
fn array_dtype_and_shape_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("f.npy");
    ndarray_npy::write_npy(&p, &Array4::<f32>::zeros((2, 4, 4, 3))).unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("uint8") && e.contains("<f4") && e.contains("f.npy"),
        "{e}"
    );
    let p = dir.path().join("nchw.npy");
    ndarray_npy::write_npy(&p, &Array4::<u8>::zeros((2, 3, 8, 8))).unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(e.contains("NCHW"), "{e}");
    let p = dir.path().join("two.npz");
    let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).unwrap());
    w.add_array("x", &Array4::<u8>::zeros((1, 2, 2, 3)))
        .unwrap();
    w.add_array("y", &Array4::<u8>::zeros((1, 2, 2, 3)))
        .unwrap();
    w.finish().unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(e.contains("arr_0") && e.contains("x.npy"), "{e}");
    assert_eq!(ImageSource::npz(&p, Some("y")).unwrap().len(), 1);
    assert!(ImageSource::from_u8_nhwc(Array4::zeros((1, 3, 4, 4))).is_err());

    // A header declaring far more pixels than the file holds (here a
    // truncated copy of a good array, and a 3 TB claim over 96 bytes) is
    // refused when the source is opened, before any buffer is sized from it.
    let good = dir.path().join("good.npy");
    ndarray_npy::write_npy(&good, &Array4::<u8>::zeros((2, 4, 4, 3))).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let p = dir.path().join("cut.npy");
    std::fs::write(&p, &bytes[..bytes.len() - 1]).unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(e.contains("truncated") && e.contains("cut.npy"), "{e}");
    let header_end = bytes.len() - 2 * 4 * 4 * 3;
    let header = String::from_utf8_lossy(&bytes[10..header_end])
        .replace("(2, 4, 4, 3)", "(1000, 1000000, 1000, 3)");
    let mut huge = bytes[..8].to_vec();
    huge.extend(u16::try_from(header.len()).unwrap().to_le_bytes());
    huge.extend(header.as_bytes());
    huge.extend([0u8; 96]);
    let p = dir.path().join("huge.npy");
    std::fs::write(&p, &huge).unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(
        e.contains("truncated") && e.contains("3000000000000"),
        "{e}"
    );
    let p = dir.path().join("huge.npz");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&p).unwrap());
    z.start_file("arr_0.npy", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut z, &huge).unwrap();
    z.finish().unwrap();
    let e = ImageSource::open(&p).unwrap_err().to_string();
    assert!(e.contains("arr_0.npy") && e.contains("truncated"), "{e}");
}

#[test]
fn bad_files_fail_by_default_and_are_counted_when_skipping() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..5 {
        save_png(&dir.path().join(format!("{i}.png")), &pattern(i, 6, 6));
    }
    // Truncated PNG and an empty file.
    let good = std::fs::read(dir.path().join("1.png")).unwrap();
    std::fs::write(dir.path().join("1.png"), &good[..good.len() / 2]).unwrap();
    std::fs::write(dir.path().join("3.png"), b"").unwrap();

    let mut it = ImageSource::folder(dir.path())
        .unwrap()
        .into_batches(spec(), BatchOptions::default().batch_size(2))
        .unwrap();
    let first = it.next().unwrap();
    let err = first.unwrap_err();
    assert!(matches!(err, SourceError::Decode(_)));
    assert!(err.to_string().contains("1.png"), "{err}");
    assert!(it.next().is_none());

    let mut it = ImageSource::folder(dir.path())
        .unwrap()
        .into_batches(
            spec(),
            BatchOptions::default()
                .batch_size(2)
                .policy(ErrorPolicy::Skip),
        )
        .unwrap();
    let mut indices = Vec::new();
    for b in &mut it {
        indices.extend(b.unwrap().indices);
    }
    assert_eq!(indices, [0, 2, 4]);
    let skipped = it.skipped();
    assert_eq!(
        skipped.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["1.png", "3.png"]
    );
    assert!(skipped[1].error.contains("empty"), "{}", skipped[1].error);
}

#[test]
fn batch_sizes_and_early_drop() {
    let imgs = Array4::from_shape_fn((7, 4, 4, 3), |(n, ..)| n as u8);
    let sizes: Vec<usize> = ImageSource::from_u8_nhwc(imgs.clone())
        .unwrap()
        .into_batches(spec(), BatchOptions::default().batch_size(3))
        .unwrap()
        .map(|b| b.unwrap().pixels().len_of(Axis(0)))
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
    // Dropping the iterator early stops the producer without hanging.
    let mut it = ImageSource::from_u8_nhwc(imgs)
        .unwrap()
        .into_batches(spec(), BatchOptions::default().batch_size(1).prefetch(1))
        .unwrap();
    assert!(it.next().unwrap().is_ok());
    drop(it);
    assert!(matches!(
        ImageSource::from_u8_nhwc(Array4::zeros((1, 2, 2, 3)))
            .unwrap()
            .into_batches(spec(), BatchOptions::default().batch_size(0)),
        Err(SourceError::BatchSize)
    ));
}

/// A ring of `count` `Vec` buffers for batches of `images` images of
/// `spec()`'s size (3 × 8 × 6).
fn vec_ring(images: usize, count: usize) -> BatchBuffers {
    let buffers = (0..count)
        .map(|_| Box::new(vec![f32::NAN; images * 3 * 8 * 6]) as Box<dyn PixelBuffer>)
        .collect();
    BatchBuffers::new(buffers, images)
}

#[test]
fn ring_buffers_hold_the_same_pixels_and_come_back() {
    let imgs = Array4::from_shape_fn((7, 5, 9, 3), |(n, y, x, c)| {
        ((n * 31 + y * 7 + x * 5 + c * 60) % 256) as u8
    });
    let opts = BatchOptions::default().batch_size(3).prefetch(1);
    let (_, want) = collect(ImageSource::from_u8_nhwc(imgs.clone()).unwrap(), opts);
    let ring = vec_ring(3, 3);
    let mut it = ImageSource::from_u8_nhwc(imgs.clone())
        .unwrap()
        .into_batches_in(spec(), opts, Some(ring))
        .unwrap();
    let mut parts = Vec::new();
    let mut full = Vec::new();
    for b in &mut it {
        let b = b.unwrap();
        // Each batch is dropped before the next is asked for, so every one
        // finds a free buffer; the last (1 image) only partly fills it.
        full.push(b.full_buffer().map(|buf| buf.as_slice().len()));
        parts.push(b.pixels().to_owned());
        // A clone owns a copy, in ordinary memory.
        assert!(b.clone().full_buffer().is_none());
        assert_eq!(b.clone().into_pixels(), b.pixels());
    }
    assert_eq!(full, [Some(3 * 3 * 8 * 6), Some(3 * 3 * 8 * 6), None]);
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    assert_eq!(ndarray::concatenate(Axis(0), &views).unwrap(), want);
}

#[test]
fn a_consumer_holding_every_batch_gets_ordinary_memory_not_a_hang() {
    let imgs = Array4::from_shape_fn((9, 4, 4, 3), |(n, ..)| (n * 20) as u8);
    let opts = BatchOptions::default().batch_size(2).prefetch(1);
    let (_, want) = collect(ImageSource::from_u8_nhwc(imgs.clone()).unwrap(), opts);
    let ring = vec_ring(2, 2);
    // All five batches held at once: two fit the ring, the rest are arrays.
    let held: Vec<_> = ImageSource::from_u8_nhwc(imgs)
        .unwrap()
        .into_batches_in(spec(), opts, Some(ring))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let in_ring = held.iter().filter(|b| b.full_buffer().is_some()).count();
    assert!((1..=2).contains(&in_ring), "{in_ring}");
    let views: Vec<_> = held.iter().map(|b| b.pixels()).collect();
    assert_eq!(ndarray::concatenate(Axis(0), &views).unwrap(), want);
}

#[test]
fn ring_buffers_return_when_batches_drop_and_wrong_sizes_are_passed_over() {
    let imgs = Array4::from_shape_fn((4, 4, 4, 3), |(n, ..)| (n * 50) as u8);
    let opts = BatchOptions::default().batch_size(2).prefetch(1);
    // One buffer of the wrong length (another image size) and one right.
    let buffers: Vec<Box<dyn PixelBuffer>> = vec![
        Box::new(vec![0f32; 2 * 3 * 5 * 5]),
        Box::new(vec![0f32; 2 * 3 * 8 * 6]),
    ];
    let ring = BatchBuffers::new(buffers, 2);
    assert_eq!((ring.capacity(), ring.available()), (2, 2));
    let mut it = ImageSource::from_u8_nhwc(imgs)
        .unwrap()
        .into_batches_in(spec(), opts, Some(ring.clone()))
        .unwrap();
    let first = it.next().unwrap().unwrap();
    // The one buffer that fits holds the first batch.
    assert!(first.full_buffer().is_some());
    assert!(ring.available() <= 1);
    drop(first);
    let rest: Vec<_> = it.by_ref().map(Result::unwrap).collect();
    assert_eq!(rest.len(), 1);
    drop(rest);
    drop(it);
    // Every buffer is back, the wrong-sized one never taken.
    assert_eq!(ring.available(), 2);
}

/// A [`Preprocess`] rule that breaks its promised size is an error naming
/// the item, never a batch with a wrong or partial image.
#[test]
fn a_rule_giving_the_wrong_size_is_an_error_naming_the_item() {
    struct Liar;
    impl Preprocess for Liar {
        fn output_size(&self) -> (usize, usize) {
            (4, 4)
        }
        fn u8_image(&self, image: ndarray::ArrayView3<'_, u8>) -> Result<Array3<f32>, ResizeError> {
            let (h, w, _) = image.dim();
            Ok(Array3::zeros((3, h, w)))
        }
        fn f32_image(
            &self,
            image: ndarray::ArrayView3<'_, f32>,
            _: ValueRange,
        ) -> Result<Array3<f32>, ResizeError> {
            Ok(image.to_owned())
        }
    }
    let imgs = Array4::from_shape_fn((2, 4, 5, 3), |(n, ..)| n as u8);
    let err = ImageSource::from_u8_nhwc(imgs)
        .unwrap()
        .into_batches_in(Liar, BatchOptions::default(), None)
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SourceError::Resize {
                error: ResizeError::OutputSize {
                    got: [3, 4, 5],
                    want: [3, 4, 4]
                },
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("expected [3, 4, 4]"), "{err}");
}

/// Under the skip policy a bad item inside a batch is left out and the
/// items after it move down in the batch's memory (array or ring buffer):
/// every kept image is exactly its own preprocessing.
#[test]
fn skipped_items_leave_no_hole_in_the_batch() {
    let dir = tempfile::tempdir().unwrap();
    let imgs: Vec<Array3<u8>> = (0..6).map(|i| pattern(i, 5 + i, 7)).collect();
    for (i, a) in imgs.iter().enumerate() {
        save_png(&dir.path().join(format!("{i}.png")), a);
    }
    // Rows 0 and 3 are bad: each starts a batch of 3 with good rows after it.
    std::fs::write(dir.path().join("0.png"), b"not a png").unwrap();
    std::fs::write(dir.path().join("3.png"), b"").unwrap();
    let opts = BatchOptions::default()
        .batch_size(3)
        .policy(ErrorPolicy::Skip)
        .prefetch(1);
    for ring in [None, Some(vec_ring(3, 3))] {
        let with_ring = ring.is_some();
        let mut it = ImageSource::folder(dir.path())
            .unwrap()
            .into_batches_in(spec(), opts, ring)
            .unwrap();
        let mut rows = Vec::new();
        for b in &mut it {
            let b = b.unwrap();
            // Two of three kept: never a full buffer.
            assert!(b.full_buffer().is_none());
            for (&i, px) in b.indices.iter().zip(b.pixels().outer_iter()) {
                assert_eq!(px, preprocess(imgs[i].view(), &spec()).unwrap(), "row {i}");
                rows.push(i);
            }
        }
        assert_eq!(rows, [1, 2, 4, 5], "ring: {with_ring}");
        assert_eq!(it.skipped().len(), 2);
    }
}

/// CRC-32 (IEEE) as PNG chunks use it.
fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A well-formed PNG header claiming 100000 x 100000 RGB pixels, a few
/// dozen bytes long.
fn huge_png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend(data);
        out.extend(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    chunk(b"IHDR", &ihdr);
    chunk(
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(b"IEND", &[]);
    out
}

/// Regression (issue #12): inside a .zip, a PNG header claiming 100000 x
/// 100000 pixels aborted the process (also with the skip policy); errors
/// about members did not name the archive; a member named `../x.png` was
/// dropped without a word.
#[test]
fn zip_members_are_checked_named_and_never_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.png");
    save_png(&good, &pattern(0, 6, 6));
    let zpath = dir.path().join("set.zip");
    let mut zw = zip::ZipWriter::new(std::fs::File::create(&zpath).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    for (name, bytes) in [
        ("a.png", std::fs::read(&good).unwrap()),
        ("b_huge.png", huge_png()),
        ("../c.png", std::fs::read(&good).unwrap()),
        ("d.png", std::fs::read(&good).unwrap()),
    ] {
        zw.start_file(name, opts).unwrap();
        zw.write_all(&bytes).unwrap();
    }
    zw.finish().unwrap();

    let src = ImageSource::open(&zpath).unwrap();
    assert_eq!(src.names(), ["../c.png", "a.png", "b_huge.png", "d.png"]);
    let archive = zpath.display().to_string();
    // Fail policy: the first bad row (the unsafe name) stops with an error
    // naming the archive and the member.
    let err = src
        .into_batches(spec(), BatchOptions::default())
        .unwrap()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, SourceError::UnsafeMember { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with(&format!("{archive}: member ../c.png: name leads outside")),
        "{err}"
    );
    // Skip policy: both bad members are reported with their reason, the
    // good ones are decoded.
    let mut it = ImageSource::open(&zpath)
        .unwrap()
        .into_batches(spec(), BatchOptions::default().policy(ErrorPolicy::Skip))
        .unwrap();
    let mut names = Vec::new();
    for b in &mut it {
        names.extend(b.unwrap().names);
    }
    assert_eq!(names, ["a.png", "d.png"]);
    let skipped = it.skipped();
    assert_eq!(
        skipped.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["../c.png", "b_huge.png"]
    );
    assert!(
        skipped[0].error.contains("leads outside"),
        "{}",
        skipped[0].error
    );
    assert!(
        skipped[1].error.starts_with(&format!(
            "{archive}: member b_huge.png: png image of 100000 x 100000"
        )),
        "{}",
        skipped[1].error
    );
    // load_u8 names the archive too.
    let src = ImageSource::open(&zpath).unwrap();
    let e = src.load_u8(2).unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{archive}: member b_huge.png:")),
        "{e}"
    );
}

/// Regression (issue #12): an operating-system error was both shown in the
/// message and exposed as the `source`, so a chain printer (anyhow's `{:#}`)
/// said "x: Permission denied (os error 13): Permission denied (os error 13)".
#[test]
fn os_errors_are_reported_once_in_the_error_chain() {
    fn chain(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut cur = e.source();
        while let Some(c) = cur {
            s.push_str(": ");
            s.push_str(&c.to_string());
            cur = c.source();
        }
        s
    }
    let dir = tempfile::tempdir().unwrap();
    let os = std::io::Error::from(std::io::ErrorKind::PermissionDenied).to_string();
    let errors: Vec<Box<dyn std::error::Error>> = vec![
        Box::new(gen_metrics_features::FeatureError::io(
            dir.path().join("x.npy"),
            std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        )),
        Box::new(gen_metrics_convert::TorchScriptError::Io {
            path: dir.path().join("m.pt"),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }),
        Box::new(SourceError::Io {
            path: dir.path().join("d"),
            error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        }),
        Box::new(gen_metrics_features::FeatureError::from(
            SourceError::Decode(gen_metrics_features::DecodeError::Io {
                path: dir.path().join("a.png"),
                error: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            }),
        )),
    ];
    for e in errors {
        let text = chain(e.as_ref());
        assert_eq!(text.matches(&os).count(), 1, "{text}");
    }
    // A real one: a folder read as an image file.
    let e = gen_metrics_features::decode::decode_file(dir.path()).unwrap_err();
    let text = chain(&e);
    assert!(text.contains(&dir.path().display().to_string()), "{text}");
    let reason = text.rsplit(": ").next().unwrap().to_owned();
    assert_eq!(text.matches(&reason).count(), 1, "{text}");
}
