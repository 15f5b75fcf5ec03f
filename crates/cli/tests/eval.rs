//! `gen-metrics eval` as a user runs it: three image folders (real, a good
//! and a bad generated set, 500 images each), a small ONNX encoder given as a
//! JSON spec, every report file written and well-formed, values equal to
//! `metrics` on the same features, and the exit codes.

#[path = "../../features/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ndarray::Array2;
use ndarray_npy::write_npy;

const N: usize = 500;

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

/// `n` 8x8 PNGs whose colour is drawn around `centre` with spread `spread`
/// (deterministic, SplitMix64).
fn folder(dir: &Path, seed: u64, centre: [f32; 3], spread: f32) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut s = seed;
    let mut next = move || {
        s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    };
    for i in 0..N {
        let c: Vec<f32> = centre
            .iter()
            .map(|m| m + spread * (next() + next() + next() - 1.5))
            .collect();
        let img = image::RgbImage::from_fn(8, 8, |_, _| {
            let mut px =
                |k: usize| (255.0 * (c[k] + 0.02 * (next() - 0.5))).clamp(0.0, 255.0) as u8;
            image::Rgb([px(0), px(1), px(2)])
        });
        img.save(dir.join(format!("{i:04}.png"))).expect("png");
    }
}

struct Setup {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    lib: PathBuf,
}

impl Setup {
    fn new() -> Option<Self> {
        let lib = common::runtime_library()?;
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().to_path_buf();
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
        folder(&root.join("real"), 1, [0.5, 0.4, 0.3], 0.3);
        folder(&root.join("good"), 2, [0.52, 0.4, 0.3], 0.3);
        folder(&root.join("bad"), 3, [0.7, 0.2, 0.3], 0.15);
        Some(Setup {
            _tmp: tmp,
            root,
            lib,
        })
    }

    fn p(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn encoder_args(&self) -> Vec<String> {
        vec![
            "--encoder".into(),
            self.p("encoder.json"),
            "--ort-lib".into(),
            self.lib.display().to_string(),
            "--cache-dir".into(),
            self.p("cache"),
            "--threads".into(),
            "1".into(),
            "--quiet".into(),
        ]
    }

    fn run(&self, args: &[&str]) -> Output {
        bin()
            .args(args)
            .args(self.encoder_args())
            .output()
            .expect("run gen-metrics")
    }
}

const METRICS: &str = "fid,fd_inf,kid,pr,prdc,realism,rarity,vendi,mifid";

#[test]
fn eval_writes_the_report_and_agrees_with_metrics() {
    let Some(s) = Setup::new() else {
        return;
    };
    let out = s.root.join("report");
    let o = s.run(&[
        "eval",
        "--real",
        &s.p("real"),
        "--fake",
        &s.p("good"),
        "--fake",
        &s.p("bad"),
        "--metrics",
        METRICS,
        "--kid-subset-size",
        "100",
        "--bootstrap",
        "12",
        "--seed",
        "5",
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let md = String::from_utf8_lossy(&o.stdout);
    assert!(md.contains("## Ranking by `fid`"), "{md}");

    // report.json: every selected metric's keys, intervals on interval keys,
    // the ranking good before bad, pairwise comparisons.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).expect("json"))
            .expect("valid json");
    let sets = report["sets"].as_array().expect("sets");
    assert_eq!(sets.len(), 2);
    assert_eq!(sets[0]["set"]["name"], "good");
    assert_eq!(sets[0]["set"]["n"], N);
    for set in sets {
        let values = set["values"].as_array().expect("values");
        let keys: Vec<&str> = values.iter().filter_map(|v| v["key"].as_str()).collect();
        for m in METRICS.split(',') {
            let spec = gen_metrics::eval::registry::find(m).expect("registered");
            for k in spec.keys {
                if k.key == "rarity_mean" && !keys.contains(&"rarity_mean") {
                    continue; // absent when no sample is in the manifold
                }
                assert!(keys.contains(&k.key), "{} missing in {keys:?}", k.key);
                let v = values.iter().find(|v| v["key"] == k.key).expect("key");
                assert_eq!(
                    v["interval"].is_object(),
                    k.interval,
                    "interval presence of {}",
                    k.key
                );
            }
        }
    }
    assert_eq!(
        report["ranking"]["order"],
        serde_json::json!(["good", "bad"])
    );
    let comps = report["ranking"]["comparisons"]
        .as_array()
        .expect("comparisons");
    let fid_cmp = comps
        .iter()
        .find(|c| c["key"] == "fid")
        .expect("fid comparison");
    assert!(
        fid_cmp["a_better"].as_f64().expect("share") > 0.9,
        "{fid_cmp}"
    );

    // Markdown and SVG plots, each well-formed with one series per set.
    assert!(
        std::fs::read_to_string(out.join("report.md"))
            .expect("md")
            .contains("| `fid` |")
    );
    for svg in [
        "metric_fid.svg",
        "metric_precision.svg",
        "metric_kid_mean.svg",
        "pr_plane.svg",
        "dc_plane.svg",
        "realism_hist.svg",
        "fd_inf.svg",
    ] {
        let text = std::fs::read_to_string(out.join(svg)).unwrap_or_else(|e| panic!("{svg}: {e}"));
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{svg}: {e}"));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{svg}");
        let labels: Vec<&str> = doc
            .descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .collect();
        for name in ["good", "bad"] {
            assert!(
                labels.iter().any(|l| l.trim() == name),
                "{svg}: no series named {name} in {labels:?}"
            );
        }
    }

    // The same numbers from `features` + `metrics` on the bad set alone.
    for set in ["real", "bad"] {
        let o = s.run(&["features", &s.p(set), "-o", &s.p(&format!("{set}.npy"))]);
        assert!(o.status.success(), "{}", text(&o));
    }
    let o = s.run(&[
        "metrics",
        "--real",
        &s.p("real.npy"),
        "--fake",
        &s.p("bad.npy"),
        "--metrics",
        METRICS,
        "--bootstrap",
        "12",
        "--seed",
        "5",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let flat: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let bad = &sets[1]["values"];
    for v in bad.as_array().expect("values") {
        let key = v["key"].as_str().expect("key");
        if key.starts_with("kid") {
            continue; // eval ran KID on subsets of 100, metrics on min(1000, N)
        }
        assert_eq!(flat[key], v["value"], "{key}");
        if let Some(i) = v["interval"].as_object() {
            assert_eq!(flat[format!("{key}_ci_low")], i["low"], "{key} low");
            assert_eq!(flat[format!("{key}_ci_high")], i["high"], "{key} high");
        }
    }
}

#[test]
fn exit_codes_and_closed_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let pa = tmp.path().join("a.npy");
    write_npy(&pa, &a).expect("write");
    let pa = pa.to_str().expect("utf-8");
    let run = |args: &[&str]| bin().args(args).output().expect("run");

    // Bad input and usage: 2.
    let o = run(&["metrics", "--real", pa, "--fake", pa, "--metrics", "nope"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&["metrics", "--real", pa, "--fake", "/nonexistent.npy"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(&[
        "metrics",
        "--real",
        pa,
        "--fake",
        pa,
        "--metrics",
        "authpct",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--train"), "{}", text(&o));
    let o = run(&["metrics", "--metrics", "is"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--logits"), "{}", text(&o));

    // Runtime failure (the ONNX Runtime library cannot be loaded): 1.
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(&imgs).expect("dir");
    image::RgbImage::new(4, 4)
        .save(imgs.join("a.png"))
        .expect("png");
    let o = run(&[
        "features",
        imgs.to_str().expect("utf-8"),
        "-o",
        tmp.path().join("f.npy").to_str().expect("utf-8"),
        "--ort-lib",
        "/nonexistent/libonnxruntime.so",
        "--offline",
        "--quiet",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));

    // A full output device: 1 with a message; a closed pipe: 0, quietly.
    if let Ok(full) = std::fs::File::create("/dev/full") {
        let o = bin()
            .args([
                "metrics",
                "--real",
                pa,
                "--fake",
                pa,
                "--metrics",
                "fid",
                "--json",
            ])
            .stdout(Stdio::from(full))
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("standard output"), "{}", text(&o));
    }
    let mut child = bin()
        .args([
            "metrics",
            "--real",
            pa,
            "--fake",
            pa,
            "--metrics",
            "fid,kid,pr",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let o = child.wait_with_output().expect("wait");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(!text(&o).contains("panicked"), "{}", text(&o));
}

/// Each error is said once: a wrapper that shows its cause in its message
/// does not also hand it on as a `source` (the command line prints the
/// chain, which repeated it: "computing 'fid': fid: the fake set needs at
/// least 2 samples, got 1: fid: the fake set needs ..."), and a file is named
/// once ("i32.npy: i32.npy: dtype ..."). A 2-D array of another dtype is told
/// what feature files may hold, not how to make a uint8 image array.
#[test]
fn error_messages_say_each_thing_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let pa = tmp.path().join("a.npy");
    write_npy(&pa, &a).expect("write");
    let one = tmp.path().join("one.npy");
    write_npy(&one, &a.slice(ndarray::s![..1, ..]).to_owned()).expect("write");
    let ints = tmp.path().join("ints.npy");
    write_npy(&ints, &a.mapv(|v| v as i32)).expect("write");
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let run = |fake: &Path| {
        bin()
            .args([
                "metrics",
                "--real",
                &s(&pa),
                "--fake",
                &s(fake),
                "--metrics",
                "fid",
            ])
            .output()
            .expect("run")
    };
    let o = run(&one);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("needs at least 2 samples").count(), 1, "{t}");
    assert!(
        t.starts_with("gen-metrics: error: computing 'fid': "),
        "{t}"
    );
    let o = run(&ints);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert_eq!(t.matches("ints.npy").count(), 1, "{t}");
    assert!(
        t.contains("dtype <i4") && t.contains("float16 (<f2)"),
        "{t}"
    );
    assert!(!t.contains("(x * 255)"), "{t}");
}

/// `features -o` never replaces an input: an image inside the source
/// folder (`-o imgs/a.png` wrote the features over that image), the source
/// itself (an image array), or the same through `..`; refused with exit 2
/// before anything is read, and the input is left as it was.
#[test]
fn features_output_never_replaces_an_input() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let imgs = tmp.path().join("imgs");
    std::fs::create_dir_all(&imgs).expect("dir");
    image::RgbImage::new(4, 4)
        .save(imgs.join("a.png"))
        .expect("png");
    let before = std::fs::read(imgs.join("a.png")).expect("read");
    let array = tmp.path().join("arr.npy");
    write_npy(&array, &ndarray::Array4::<u8>::zeros((2, 4, 4, 3))).expect("write");
    let s = |p: &Path| p.to_str().expect("utf-8").to_owned();
    let cases = [
        (s(&imgs), s(&imgs.join("a.png"))),
        (s(&imgs), s(&imgs.join("new.PNG"))),
        (s(&imgs), format!("{}/../imgs/a.png", s(&imgs))),
        (s(&array), s(&array)),
    ];
    for (source, out) in cases {
        let o = bin()
            .args(["features", &source, "-o", &out, "--offline", "--quiet"])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{out}: {}", text(&o));
        assert!(
            text(&o).contains("an output never replaces an input"),
            "{}",
            text(&o)
        );
        let o = bin()
            .args([
                "features",
                &source,
                "-o",
                &s(&tmp.path().join("f.npy")),
                "--names",
                &out,
            ])
            .args(["--offline", "--quiet"])
            .output()
            .expect("run");
        assert_eq!(o.status.code(), Some(2), "{out}: {}", text(&o));
    }
    assert_eq!(std::fs::read(imgs.join("a.png")).expect("read"), before);
    assert!(!imgs.join("new.PNG").exists());
    // `--names` naming the features file: the names would replace them.
    let out = s(&tmp.path().join("f.npy"));
    let o = bin()
        .args(["features", &s(&imgs), "-o", &out, "--names", &out])
        .args(["--offline", "--quiet"])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--names and -o name the same file"),
        "{}",
        text(&o)
    );
}

/// A feature matrix in an `.npz` (dgm-eval's `reps` beside other members,
/// or `np.savez`'s single `arr_0`) gives the same metrics as the `.npy`.
#[test]
fn npz_feature_files_give_the_npy_values() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Array2::from_shape_fn((60, 4), |(i, j)| ((i * 7 + j * 3) % 11) as f32 * 0.5);
    let b = Array2::from_shape_fn((60, 4), |(i, j)| ((i * 5 + j * 2) % 13) as f32 * 0.4);
    let pa = tmp.path().join("a.npy");
    let pb = tmp.path().join("b.npy");
    write_npy(&pa, &a).expect("write");
    write_npy(&pb, &b).expect("write");
    let npz = |name: &str, members: &[(&str, Array2<f64>)]| {
        let p = tmp.path().join(name);
        let mut w = ndarray_npy::NpzWriter::new(std::fs::File::create(&p).expect("create"));
        for (m, x) in members {
            w.add_array(*m, x).expect("member");
        }
        w.finish().expect("finish");
        p
    };
    let wide = b.mapv(f64::from);
    let reps = npz(
        "reps.npz",
        &[("model", Array2::zeros((1, 1))), ("reps", wide.clone())],
    );
    let single = npz("single.npz", &[("arr_0", wide)]);
    let run = |fake: &Path| {
        let o = bin()
            .args([
                "metrics",
                "--real",
                pa.to_str().expect("utf-8"),
                "--fake",
                fake.to_str().expect("utf-8"),
                "--metrics",
                "fid,kid,pr,prdc",
                "--json",
            ])
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).expect("utf-8")
    };
    let want = run(&pb);
    assert_eq!(run(&reps), want);
    assert_eq!(run(&single), want);
}

#[test]
fn metrics_reads_statistics_and_logits_alone() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let a = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let b = a.mapv(|v| v + 1.0);
    let (pa, pb) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    write_npy(&pa, &a).expect("write");
    write_npy(&pb, &b).expect("write");
    let stats = tmp.path().join("a_stats.npz");
    let g = gen_metrics_linalg::GaussianStats::from_features(a.view()).expect("stats");
    gen_metrics_io::write_statistics(&stats, g.mean.view(), g.cov.view(), false)
        .expect("write stats");
    let o = bin()
        .args([
            "metrics",
            "--real",
            stats.to_str().expect("utf-8"),
            "--fake",
            pb.to_str().expect("utf-8"),
            "--metrics",
            "fid",
            "--json",
        ])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!((v["fid"].as_f64().expect("fid") - 3.0).abs() < 1e-9, "{v}");

    // Statistics cannot stand in for rows.
    let o = bin()
        .args([
            "metrics",
            "--real",
            stats.to_str().expect("utf-8"),
            "--fake",
            pb.to_str().expect("utf-8"),
            "--metrics",
            "pr",
        ])
        .output()
        .expect("run");
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("only statistics"), "{}", text(&o));

    // IS from logits, without --real.
    let logits = Array2::from_shape_fn((50, 10), |(i, j)| ((i * 3 + j * 5) % 7) as f32 * 0.3);
    let pl = tmp.path().join("logits.npy");
    write_npy(&pl, &logits).expect("write");
    let o = bin()
        .args([
            "metrics",
            "--metrics",
            "is",
            "--logits",
            pl.to_str().expect("utf-8"),
            "--json",
        ])
        .output()
        .expect("run");
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!(v["is_mean"].as_f64().expect("is") > 1.0, "{v}");
}

/// `gen-metrics fid` gives the same number from every route to the same
/// images: a folder, a `.zip` of it, a uint8 image array `[N, H, W, 3]` and
/// the features `.npy` that `gen-metrics features` writes (same pixels, same
/// encoder: the same features, so the same FID bit for bit).
#[test]
fn fid_is_the_same_from_every_route() {
    use std::io::Write;
    let Some(s) = Setup::new() else {
        return;
    };
    let fid = |a: &str, b: &str| -> f64 {
        let o = s.run(&["fid", a, b, "--json"]);
        assert!(o.status.success(), "fid {a} {b}: {}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["fid"].as_f64().expect("fid")
    };
    let want = fid(&s.p("real"), &s.p("bad"));
    assert!(want > 0.0 && want.is_finite(), "{want}");

    // The bad set as a .zip (deflated, in reverse order: order comes from names).
    let mut names: Vec<_> = std::fs::read_dir(s.root.join("bad"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut zw = zip::ZipWriter::new(std::fs::File::create(s.root.join("bad.zip")).expect("zip"));
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for n in names.iter().rev() {
        zw.start_file(n.as_str(), opts).expect("member");
        zw.write_all(&std::fs::read(s.root.join("bad").join(n)).expect("png"))
            .expect("write");
    }
    zw.finish().expect("finish");

    // The bad set as a uint8 image array, in sorted file order.
    let mut arr = ndarray::Array4::<u8>::zeros((names.len(), 8, 8, 3));
    for (i, n) in names.iter().enumerate() {
        let img = image::open(s.root.join("bad").join(n))
            .expect("png")
            .to_rgb8();
        for (x, y, px) in img.enumerate_pixels() {
            for c in 0..3 {
                arr[[i, y as usize, x as usize, c]] = px[c];
            }
        }
    }
    write_npy(s.root.join("bad_images.npy"), &arr).expect("npy");

    // The bad set's features, as `features` writes them.
    let o = s.run(&["features", &s.p("bad"), "-o", &s.p("bad_features.npy")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = s.run(&["features", &s.p("real"), "-o", &s.p("real_features.npy")]);
    assert!(o.status.success(), "{}", text(&o));

    for (what, a, b) in [
        ("zip", s.p("real"), s.p("bad.zip")),
        ("uint8 array", s.p("real"), s.p("bad_images.npy")),
        ("features", s.p("real"), s.p("bad_features.npy")),
        (
            "features both",
            s.p("real_features.npy"),
            s.p("bad_features.npy"),
        ),
    ] {
        assert_eq!(fid(&a, &b), want, "{what}");
    }
}

/// IS from images (#14): an encoder spec that names a `logits_output` makes
/// `eval` compute IS / IS-inf per generated set from that output, the same
/// numbers as `metrics --logits` on `features --layer logits`.
#[test]
fn eval_computes_is_from_an_encoder_logits_output() {
    let Some(s) = Setup::new() else {
        return;
    };
    std::fs::write(
        s.root.join("logits.onnx"),
        common::tiny_onnx::channel_mean_with_logits(8, 8),
    )
    .expect("model");
    let spec = s.p("with_logits.json");
    std::fs::write(
        &spec,
        r#"{ "id": "channel-mean-logits", "model": "logits.onnx", "input_size": [8, 8],
             "resize": "clean", "normalization": "unit", "output_dim": 3,
             "logits_output": "logits" }"#,
    )
    .expect("spec");
    let run = |args: &[&str]| -> Output {
        bin()
            .args(args)
            .args([
                "--encoder",
                spec.as_str(),
                "--ort-lib",
                s.lib.to_str().expect("utf-8"),
                "--cache-dir",
                &s.p("cache"),
                "--threads",
                "1",
                "--quiet",
            ])
            .output()
            .expect("run gen-metrics")
    };
    let o = run(&[
        "eval",
        "--real",
        &s.p("real"),
        "--fake",
        &s.p("good"),
        "--fake",
        &s.p("bad"),
        "--metrics",
        "fid,is",
        "--out",
        &s.p("is_report"),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    for (i, set) in ["good", "bad"].into_iter().enumerate() {
        let o = run(&[
            "features",
            "--layer",
            "logits",
            &s.p(set),
            "-o",
            &s.p(&format!("{set}_logits.npy")),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let o = bin()
            .args([
                "metrics",
                "--logits",
                &s.p(&format!("{set}_logits.npy")),
                "--metrics",
                "is",
                "--json",
            ])
            .output()
            .expect("run");
        assert!(o.status.success(), "{}", text(&o));
        let want: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let values = r["sets"][i]["values"].as_array().expect("values");
        let got = values
            .iter()
            .find(|v| v["key"] == "is_mean")
            .and_then(|v| v["value"].as_f64());
        assert_eq!(got, want["is_mean"].as_f64(), "{set}: {want}");
        assert!(got.is_some_and(|v| v > 1.0), "{set}: {got:?}");
    }
    // Features given as .npy have no logits: `is` named is refused.
    let o = run(&["features", &s.p("good"), "-o", &s.p("good_features.npy")]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run(&[
        "eval",
        "--real",
        &s.p("real"),
        "--fake",
        &s.p("good_features.npy"),
        "--metrics",
        "is",
        "--out",
        &s.p("is_report2"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("logits"), "{}", text(&o));
}
