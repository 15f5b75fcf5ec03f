//! `gen-metrics features`, `fid` and `models` as a user runs them.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ndarray::Array2;
use ndarray_npy::{ReadNpyExt, write_npy};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gen-metrics"));
    // The artifacts cache the features tests fill (git-ignored), unless the
    // caller points elsewhere.
    if std::env::var_os("GEN_METRICS_HOME").is_none() {
        c.env(
            "GEN_METRICS_HOME",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.cache/gen-metrics-home"),
        );
    }
    c
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run gen-metrics")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A fresh folder under the system temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "gen-metrics-cli-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&p).expect("temp dir");
        TempDir(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(path: &Path) -> Array2<f32> {
    Array2::<f32>::read_npy(std::fs::File::open(path).expect("open")).expect("npy")
}

#[test]
fn models_list_names_every_artifact() {
    let o = run(&["models", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let ids: Vec<&str> = v
        .as_array()
        .expect("array")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(
        ids,
        [
            "onnxruntime-cpu",
            "onnxruntime-gpu",
            "fid-inception-pt",
            "inception-v3-fid",
            "dinov2-vits14",
            "dinov2-vitb14",
            "dinov2-vitl14",
            "clip-vit-b-32",
            "clip-vit-b-16",
            "clip-vit-l-14",
            "clip-vit-l-14-336"
        ]
    );
    let o = run(&["models", "path", "no-such-thing"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("unknown artifact"), "{}", text(&o));
}

/// `models fetch dinov2-vitl14` where the address cannot be reached (a
/// mirror on an unroutable address: no test ever downloads the real file)
/// says so and explains `--checkpoint FILE`; a checkpoint brought with
/// `--checkpoint` is checked against the architecture (the small random
/// DINOv2 fixture is not a ViT-L/14) and never left half-converted.
#[test]
fn models_fetch_checkpoint_unreachable_and_brought() {
    let home = TempDir::new("ckpt");
    let o = bin()
        .env("GEN_METRICS_HOME", home.path())
        .env("GEN_METRICS_CHECKPOINT_MIRROR", "http://127.0.0.1:9/mirror")
        .args(["models", "fetch", "dinov2-vitl14"])
        .output()
        .expect("run");
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("http://127.0.0.1:9/mirror/dinov2_vitl14_pretrain.pth"),
        "{t}"
    );
    assert!(
        t.contains("gen-metrics models fetch dinov2-vitl14 --checkpoint FILE"),
        "{t}"
    );
    let o = bin()
        .env("GEN_METRICS_HOME", home.path())
        .args(["models", "fetch", "dinov2-vitl14", "--offline"])
        .output()
        .expect("run");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(
        t.contains("dinov2_vitl14/dinov2_vitl14_pretrain.pth"),
        "{t}"
    );
    assert!(t.contains("--checkpoint FILE"), "{t}");

    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tests/fixtures/dinov2/mlp.pth");
    let o = bin()
        .env("GEN_METRICS_HOME", home.path())
        .args(["models", "fetch", "dinov2-vitl14", "--checkpoint"])
        .arg(&fixture)
        .output()
        .expect("run");
    let t = text(&o);
    assert!(!o.status.success(), "{t}");
    assert!(t.contains("is not a dinov2-vitl14 checkpoint"), "{t}");
    assert!(t.contains("width 24") && t.contains("width 1024"), "{t}");
    assert!(!home.path().join("models/dinov2-vitl14.onnx").exists());
    assert!(
        !home
            .path()
            .join("checkpoints/dinov2_vitl14_pretrain.pth")
            .exists()
    );
    let o = bin()
        .env("GEN_METRICS_HOME", home.path())
        .args(["models", "path", "dinov2-vitl14"])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(text(&o).contains("is not converted"), "{}", text(&o));
    // --checkpoint names one checkpoint.
    let o = run(&[
        "models",
        "fetch",
        "onnxruntime-cpu",
        "--checkpoint",
        "x.pth",
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn fid_of_feature_files_and_statistics() {
    let tmp = TempDir::new("fid");
    let a = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let b = a.mapv(|v| v + 1.0);
    let pa = tmp.path().join("a.npy");
    let pb = tmp.path().join("b.npy");
    write_npy(&pa, &a).expect("write");
    write_npy(&pb, &b).expect("write");
    let fid_json = |a: &Path, b: &Path| -> f64 {
        let o = run(&[
            "fid",
            a.to_str().expect("utf-8"),
            b.to_str().expect("utf-8"),
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        v["fid"].as_f64().expect("fid")
    };
    // Same covariance, means 1 apart in each of 3 dimensions.
    let fid = fid_json(&pa, &pb);
    assert!((fid - 3.0).abs() < 1e-9, "{fid}");

    // The second side as an accumulator state merged from two "ranks".
    let mut acc = gen_metrics_linalg::GaussianAccumulator::new(3).expect("acc");
    acc.push(b.slice(ndarray::s![..15, ..])).expect("push");
    let mut rank1 = gen_metrics_linalg::GaussianAccumulator::new(3).expect("acc");
    rank1.push(b.slice(ndarray::s![15.., ..])).expect("push");
    acc.merge(&rank1).expect("merge");
    let pacc = tmp.path().join("b_acc.npz");
    gen_metrics_io::write_accumulator(&pacc, &acc, false).expect("write");
    let fid = fid_json(&pa, &pacc);
    assert!((fid - 3.0).abs() < 1e-9, "{fid}");

    let o = run(&["fid", pa.to_str().expect("utf-8"), "/nonexistent/x.npz"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("no such file"), "{}", text(&o));
}

#[test]
fn features_of_the_synthetic_images_match_the_reference() {
    let models = gen_metrics_testkit::shared_dir().join("models");
    let tmp = TempDir::new("features");
    let out: PathBuf = tmp.path().join("f.npy");
    let names = tmp.path().join("names.txt");
    let o = bin()
        .args(["features", "--threads", "2", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .arg(models.join("synthetic"))
        .arg("-o")
        .arg(&out)
        .arg("--names")
        .arg(&names)
        .output()
        .expect("run");
    if !o.status.success() {
        let t = text(&o);
        if t.contains("is not available") {
            gen_metrics_testkit::missing_artifact(&t);
            return;
        }
        panic!("{t}");
    }
    let got = read(&out);
    let want = read(&models.join("synthetic/features.npy"));
    let d = (&got - &want).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(d <= 1e-4, "max abs diff {d}");
    let listed = std::fs::read_to_string(&names).expect("names");
    let first: Vec<&str> = listed.lines().take(2).collect();
    assert_eq!(first, ["img_00.png", "img_01.png"]);
    // Second run: from the feature cache, same bytes.
    let out2 = tmp.path().join("f2.npy");
    let o = bin()
        .args(["features", "--cache-dir"])
        .arg(tmp.path().join("cache"))
        .arg(models.join("synthetic"))
        .arg("-o")
        .arg(&out2)
        .output()
        .expect("run");
    assert!(text(&o).contains("from the cache"), "{}", text(&o));
    assert_eq!(
        std::fs::read(&out).expect("read"),
        std::fs::read(&out2).expect("read")
    );
}

/// Reference statistics as numpy writes them (`np.savez` and
/// `np.savez_compressed`, whose members carry zip64 extra fields), made by
/// `tools/make_cli_fixtures.py` from the same a / b as above: FID 3.
#[test]
fn fid_of_numpy_written_statistics() {
    let tmp = TempDir::new("npz");
    let a = Array2::from_shape_fn((40, 3), |(i, j)| ((i * 7 + j * 3) % 11) as f32);
    let pa = tmp.path().join("a.npy");
    write_npy(&pa, &a).expect("write");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let sa = fixtures.join("stats_a_savez.npz");
    let sb = fixtures.join("stats_b_savez_compressed.npz");
    for (x, y) in [(&pa, &sb), (&sa, &sb), (&sb, &sa)] {
        let o = run(&[
            "fid",
            x.to_str().expect("utf-8"),
            y.to_str().expect("utf-8"),
            "--json",
        ]);
        assert!(o.status.success(), "{}", text(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
        let fid = v["fid"].as_f64().expect("fid");
        assert!((fid - 3.0).abs() < 1e-9, "{x:?} vs {y:?}: {fid}");
    }
    // `metrics --real stats.npz` (statistics on the real side) for fid.
    let o = run(&[
        "metrics",
        "--real",
        sb.to_str().expect("utf-8"),
        "--fake",
        pa.to_str().expect("utf-8"),
        "--metrics",
        "fid",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert!((v["fid"].as_f64().expect("fid") - 3.0).abs() < 1e-9, "{v}");
}

/// `eval` reports sFID with FID (#14): the Fréchet distance of the two
/// folders' `--layer spatial` features, as `metrics --metrics fid` computes
/// it from those files; a set given as pooled features cannot have sFID:
/// named, it is an error; under `all`, it is left out with the reason.
#[test]
fn eval_reports_sfid_equal_to_fid_of_spatial_features() {
    let models = gen_metrics_testkit::shared_dir().join("models");
    let (real, fake) = (models.join("synthetic"), models.join("images"));
    let tmp = TempDir::new("sfid");
    let cache = tmp.path().join("cache");
    let run_in = |args: &[&std::ffi::OsStr]| -> Output {
        bin()
            .args(args)
            .args(["--threads", "2", "--cache-dir"])
            .arg(&cache)
            .output()
            .expect("run")
    };
    let os = std::ffi::OsStr::new;
    let o = run_in(&[
        os("eval"),
        os("--real"),
        real.as_os_str(),
        os("--fake"),
        fake.as_os_str(),
        os("--metrics"),
        os("fid,sfid"),
        os("--out"),
        tmp.path().join("r1").as_os_str(),
        os("--json"),
    ]);
    if !o.status.success() {
        let t = text(&o);
        if t.contains("is not available") {
            gen_metrics_testkit::missing_artifact(&t);
            return;
        }
        panic!("{t}");
    }
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let values = &report["sets"][0]["values"];
    let get = |k: &str| -> f64 {
        values
            .as_array()
            .and_then(|a| a.iter().find(|v| v["key"] == k))
            .and_then(|v| v["value"].as_f64())
            .unwrap_or_else(|| panic!("no {k} in {values}"))
    };
    let (fid, sfid) = (get("fid"), get("sfid"));
    assert!(
        fid > 0.0 && sfid > 0.0 && sfid != fid,
        "fid {fid} sfid {sfid}"
    );

    // The same from `--layer spatial` features and `metrics --metrics fid`.
    let (sr, sf) = (tmp.path().join("sr.npy"), tmp.path().join("sf.npy"));
    for (dir, out) in [(&real, &sr), (&fake, &sf)] {
        let o = run_in(&[
            os("features"),
            os("--layer"),
            os("spatial"),
            dir.as_os_str(),
            os("-o"),
            out.as_os_str(),
        ]);
        assert!(o.status.success(), "{}", text(&o));
        assert_eq!(read(out).ncols(), 2023);
    }
    let o = run(&[
        "metrics",
        "--real",
        &sr.display().to_string(),
        "--fake",
        &sf.display().to_string(),
        "--metrics",
        "fid",
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["fid"].as_f64(), Some(sfid), "{v}");

    // Pooled features cannot give sFID.
    let pr = tmp.path().join("pr.npy");
    let o = run_in(&[os("features"), real.as_os_str(), os("-o"), pr.as_os_str()]);
    assert!(o.status.success(), "{}", text(&o));
    let o = run_in(&[
        os("eval"),
        os("--real"),
        pr.as_os_str(),
        os("--fake"),
        fake.as_os_str(),
        os("--metrics"),
        os("sfid"),
        os("--out"),
        tmp.path().join("r2").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--layer spatial"), "{}", text(&o));
    let o = run_in(&[
        os("eval"),
        os("--real"),
        pr.as_os_str(),
        os("--fake"),
        fake.as_os_str(),
        os("--metrics"),
        os("all"),
        os("--out"),
        tmp.path().join("r3").as_os_str(),
        os("--json"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    // ... and so is what 4 images are too few for (prdc's k + 1 = 6), with
    // the reason, instead of failing the evaluation.
    let left_out = r["settings"]["left_out"].to_string();
    assert!(
        left_out.contains("sfid") && left_out.contains("prdc") && left_out.contains("at least"),
        "{}",
        r["settings"]
    );
}

/// `--device cuda` puts the k-NN metrics' float32 blocks on the GPU through
/// ONNX Runtime (the engine rechecks near-ties on the host, so the values
/// are the CPU's); where CUDA cannot be used (this build, no GPU) the run
/// stays on the CPU with a message, or fails with `--require-device`
/// (exit 1, naming CUDA). `tools/gpu_check.sh` compares the two on a GPU.
#[test]
fn knn_metrics_with_device_cuda_equal_the_cpu_or_fail_when_required() {
    let tmp = TempDir::new("knn-device");
    let (a, b) = (tmp.path().join("a.npy"), tmp.path().join("b.npy"));
    let rows = |n: usize, seed: usize| {
        Array2::from_shape_fn((n, 48), |(i, j)| {
            (((i * 2_654_435_761 + j * 40_503 + seed) % 1009) as f32) / 1009.0 + 100.0
        })
    };
    write_npy(&a, &rows(260, 1)).expect("write");
    write_npy(&b, &rows(230, 2)).expect("write");
    let (sa, sb) = (a.to_str().expect("utf-8"), b.to_str().expect("utf-8"));
    let args = [
        "metrics",
        "--real",
        sa,
        "--fake",
        sb,
        "--metrics",
        "pr,prdc,realism",
        "--json",
    ];
    let cpu = run(&[&args[..], &["--device", "cpu"]].concat());
    assert!(cpu.status.success(), "{}", text(&cpu));
    let cuda = run(&[&args[..], &["--device", "cuda"]].concat());
    assert!(cuda.status.success(), "{}", text(&cuda));
    assert_eq!(cuda.stdout, cpu.stdout, "{}", text(&cuda));
    let required = run(&[&args[..], &["--device", "cuda", "--require-device"]].concat());
    if required.status.success() {
        // A machine with a GPU and a `cuda` build: the same values.
        assert_eq!(required.stdout, cpu.stdout);
    } else {
        assert_eq!(required.status.code(), Some(1), "{}", text(&required));
        assert!(text(&required).contains("CUDA"), "{}", text(&required));
    }
}
