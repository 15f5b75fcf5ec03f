//! The feature cache end to end, as a user meets it: extract a folder, edit
//! one image in place (same size, same modification time, other pixels),
//! extract again. The edited image's row is recomputed (and equals an
//! extraction without the cache), every other row comes from the cache, and
//! the run says so.

#[path = "../../features/tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Output};

const N: usize = 20;
const EDITED: usize = 7;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gen-metrics"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An 8x8 BMP (uncompressed: the file size does not depend on the pixels).
fn bmp(path: &Path, colour: [u8; 3]) {
    let img = image::RgbImage::from_fn(8, 8, |x, y| {
        image::Rgb([
            colour[0].wrapping_add((x * 3) as u8),
            colour[1].wrapping_add((y * 5) as u8),
            colour[2],
        ])
    });
    img.save_with_format(path, image::ImageFormat::Bmp)
        .expect("bmp");
}

fn features(root: &Path, lib: &Path, out: &str, cache: bool) -> Output {
    let mut cmd = bin();
    cmd.arg("features")
        .arg(root.join("images"))
        .arg("-o")
        .arg(root.join(out))
        .arg("--encoder")
        .arg(root.join("encoder.json"))
        .arg("--ort-lib")
        .arg(lib)
        .arg("--threads")
        .arg("1");
    if cache {
        cmd.arg("--cache-dir").arg(root.join("cache"));
    } else {
        cmd.arg("--no-cache");
    }
    cmd.output().expect("run gen-metrics")
}

#[test]
fn an_edited_image_is_recomputed_and_the_rest_come_from_the_cache() {
    let Some(lib) = common::runtime_library() else {
        return;
    };
    let tmp = tempfile::tempdir().expect("tempdir");
    let root = tmp.path();
    std::fs::write(
        root.join("mean.onnx"),
        common::tiny_onnx::channel_mean_identity(8, 8),
    )
    .expect("model");
    std::fs::write(
        root.join("encoder.json"),
        r#"{ "id": "channel-mean", "model": "mean.onnx", "input_size": [8, 8],
             "resize": "clean", "normalization": "unit", "output_dim": 3 }"#,
    )
    .expect("spec");
    let images = root.join("images");
    std::fs::create_dir_all(&images).expect("dir");
    for i in 0..N {
        let v = (i * 11) as u8;
        bmp(&images.join(format!("{i:03}.bmp")), [v, 100, 255 - v]);
    }

    let first = features(root, &lib, "a.npy", true);
    assert!(first.status.success(), "{}", text(&first));
    let a = common::read_npy(&root.join("a.npy"));
    assert_eq!(a.dim(), (N, 3));

    // Edit one image in place: same size, same modification time.
    let edited = images.join(format!("{EDITED:03}.bmp"));
    let before = std::fs::metadata(&edited).expect("metadata");
    let scratch = root.join("scratch.bmp");
    bmp(&scratch, [250, 10, 60]);
    std::fs::write(&edited, std::fs::read(&scratch).expect("read")).expect("edit");
    let file = std::fs::File::options()
        .write(true)
        .open(&edited)
        .expect("open");
    file.set_modified(before.modified().expect("mtime"))
        .expect("set mtime");
    drop(file);
    let after = std::fs::metadata(&edited).expect("metadata");
    assert_eq!(after.len(), before.len(), "the edit keeps the size");
    assert_eq!(
        after.modified().expect("mtime"),
        before.modified().expect("mtime"),
        "the edit keeps the modification time"
    );

    let second = features(root, &lib, "b.npy", true);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        text(&second).contains(&format!("{} from the cache, 1 encoded", N - 1)),
        "{}",
        text(&second)
    );
    let b = common::read_npy(&root.join("b.npy"));
    let fresh = features(root, &lib, "c.npy", false);
    assert!(fresh.status.success(), "{}", text(&fresh));
    let c = common::read_npy(&root.join("c.npy"));

    assert_eq!(b, c, "the cached extraction equals one without the cache");
    for i in 0..N {
        if i == EDITED {
            assert_ne!(a.row(i), b.row(i), "the edited image's row is recomputed");
        } else {
            assert_eq!(a.row(i), b.row(i), "row {i} is unchanged");
        }
    }

    // A third run with nothing changed is a whole-set hit.
    let third = features(root, &lib, "d.npy", true);
    assert!(third.status.success(), "{}", text(&third));
    assert!(
        text(&third).contains("features from the cache"),
        "{}",
        text(&third)
    );
    assert_eq!(common::read_npy(&root.join("d.npy")), b);
}
