//! The feature cache: hits only when nothing that changes a number changed.

use std::path::Path;

use gen_metrics_features::cache::{CacheKey, FeatureCache};
use gen_metrics_features::encoder::{Crop, EncoderIdentity};
use gen_metrics_features::extractor::OutputSelect;
use gen_metrics_features::source::SkippedItem;
use ndarray::{Array2, array};

fn identity() -> EncoderIdentity {
    EncoderIdentity {
        encoder: "inception-v3-fid".into(),
        weights_sha256: "ab".repeat(32),
        input_size: [299, 299],
        resize: "clean".into(),
        crop: Crop::None,
        normalization: "Centered128".into(),
        output: OutputSelect::Flatten,
        output_name: "features".into(),
        dtype: "float32".into(),
    }
}

fn folder(dir: &Path) -> Vec<String> {
    let names = vec!["a.png".to_owned(), "b.png".to_owned()];
    for n in &names {
        std::fs::write(dir.join(n), format!("pixels of {n}")).expect("write");
    }
    names
}

fn feats() -> Array2<f32> {
    array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.5]]
}

#[test]
fn hit_after_store_and_misses_for_every_change() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).expect("mkdir");
    let names = folder(&imgs);
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let key = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    assert!(cache.load(&key).expect("load").is_none());
    let skipped = [SkippedItem {
        index: 2,
        name: "c.png".into(),
        error: "corrupt".into(),
    }];
    let npy = cache
        .store(&key, feats().view(), &names, &skipped)
        .expect("store");
    let hit = cache.load(&key).expect("load").expect("hit");
    assert_eq!(hit.features, feats());
    assert_eq!(hit.names, names);
    assert_eq!(hit.skipped, skipped);
    assert_eq!(hit.path, npy);
    // Recomputing the key from unchanged files hits again.
    let again = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    assert_eq!(again.digest(), key.digest());

    // Each input of the result changes the key.
    let mut changed = Vec::new();
    let mut id = identity();
    id.weights_sha256 = "cd".repeat(32);
    changed.push((
        "weights",
        CacheKey::for_source(&imgs, &names, &id).expect("key"),
    ));
    let mut id = identity();
    id.resize = "legacy-pytorch".into();
    changed.push((
        "resize",
        CacheKey::for_source(&imgs, &names, &id).expect("key"),
    ));
    let mut id = identity();
    id.crop = Crop::Center {
        resize_shorter: 320,
    };
    changed.push((
        "crop",
        CacheKey::for_source(&imgs, &names, &id).expect("key"),
    ));
    let mut id = identity();
    id.dtype = "float16".into();
    changed.push((
        "dtype",
        CacheKey::for_source(&imgs, &names, &id).expect("key"),
    ));
    let mut id = identity();
    id.encoder = "dinov2-vit-l14".into();
    changed.push((
        "encoder",
        CacheKey::for_source(&imgs, &names, &id).expect("key"),
    ));
    changed.push((
        "file list",
        CacheKey::for_source(&imgs, &names[..1], &identity()).expect("key"),
    ));
    changed.push((
        "extra",
        CacheKey::for_source(&imgs, &names, &identity())
            .expect("key")
            .with("error_policy", "skip"),
    ));
    for (what, k) in &changed {
        assert_ne!(k.digest(), key.digest(), "{what}");
        assert!(
            cache.load(k).expect("load").is_none(),
            "{what} reused a stale entry"
        );
    }
}

#[test]
fn a_modified_file_makes_the_entry_stale() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).expect("mkdir");
    let names = folder(&imgs);
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let key = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    cache
        .store(&key, feats().view(), &names, &[])
        .expect("store");

    // Same size, modification time put back: still a different file
    // (status-change time on Unix).
    let path = imgs.join("a.png");
    let mtime = std::fs::metadata(&path)
        .expect("md")
        .modified()
        .expect("mtime");
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&path, "pixels of A.png").expect("rewrite");
    let f = std::fs::File::options()
        .write(true)
        .open(&path)
        .expect("open");
    f.set_modified(mtime).expect("set mtime");
    drop(f);
    let now = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    if cfg!(unix) {
        assert_ne!(now.digest(), key.digest());
        assert!(cache.load(&now).expect("load").is_none());
    }

    // A plain rewrite with a new size always misses.
    std::fs::write(&path, "other pixels, longer").expect("rewrite");
    let now = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    assert_ne!(now.digest(), key.digest());
    assert!(cache.load(&now).expect("load").is_none());
}

#[test]
fn damaged_or_foreign_entries_are_misses() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir(&imgs).expect("mkdir");
    let names = folder(&imgs);
    let cache = FeatureCache::new(tmp.path().join("cache"));
    let key = CacheKey::for_source(&imgs, &names, &identity()).expect("key");
    let (npy, json) = cache.entry_paths(&key);
    cache
        .store(&key, feats().view(), &names, &[])
        .expect("store");
    // Damaged matrix.
    let mut bytes = std::fs::read(&npy).expect("read");
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&npy, &bytes).expect("damage");
    assert!(cache.load(&key).expect("load").is_none());
    // Metadata that belongs to another key under this name.
    cache
        .store(&key, feats().view(), &names, &[])
        .expect("store");
    let other = key.clone().with("x", 1);
    let other_meta = {
        let c2 = FeatureCache::new(tmp.path().join("cache2"));
        c2.store(&other, feats().view(), &names, &[])
            .expect("store");
        std::fs::read(c2.entry_paths(&other).1).expect("read")
    };
    std::fs::write(&json, other_meta).expect("swap meta");
    assert!(cache.load(&key).expect("load").is_none());
    // Garbage metadata.
    std::fs::write(&json, b"{not json").expect("garbage");
    assert!(cache.load(&key).expect("load").is_none());
    // No temporary files are left behind by the stores.
    let leftovers: Vec<_> = std::fs::read_dir(cache.dir())
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty());
    // Names must match rows.
    assert!(cache.store(&key, feats().view(), &names[..1], &[]).is_err());
}

#[test]
fn single_file_sources_are_keyed_by_the_file_and_entries() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let zip = tmp.path().join("imgs.zip");
    std::fs::write(&zip, b"zip bytes").expect("write");
    let entries = vec!["x.png".to_owned(), "y.png".to_owned()];
    let k1 = CacheKey::for_source(&zip, &entries, &identity()).expect("key");
    let k2 = CacheKey::for_source(&zip, &entries[..1], &identity()).expect("key");
    assert_ne!(k1.digest(), k2.digest());
    std::fs::write(&zip, b"zip bytes, changed").expect("write");
    let k3 = CacheKey::for_source(&zip, &entries, &identity()).expect("key");
    assert_ne!(k1.digest(), k3.digest());
    assert!(CacheKey::for_source(&tmp.path().join("missing"), &entries, &identity()).is_err());
}

/// A folder file whose name is not UTF-8 is stamped at its real path
/// (`for_source_paths`) and recorded under its shown, lossy name; the lossy
/// name alone opens nothing. Paths and names must pair up.
#[cfg(unix)]
#[test]
fn files_named_outside_utf8_are_stamped_at_their_real_paths() {
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().expect("tempdir");
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9.png");
    std::fs::write(tmp.path().join(odd), b"pixels").expect("write");
    let shown = vec![odd.to_string_lossy().into_owned()];
    let real = vec![std::path::PathBuf::from(odd)];
    let key = CacheKey::for_source_paths(tmp.path(), &shown, &real, &identity()).expect("key");
    let again = CacheKey::for_source_paths(tmp.path(), &shown, &real, &identity()).expect("key");
    assert_eq!(key.digest(), again.digest());
    assert!(CacheKey::for_source(tmp.path(), &shown, &identity()).is_err());
    assert!(CacheKey::for_source_paths(tmp.path(), &shown, &[], &identity()).is_err());
}
