//! Tiny ONNX models written in the test (no binary fixtures), with the
//! protobuf helpers of `gen_metrics_convert::onnx::proto`.
//!
//! Field numbers from `onnx/onnx.proto`: ModelProto (ir_version 1,
//! producer_name 2, graph 7, opset_import 8), GraphProto (node 1, name 2,
//! initializer 5, input 11, output 12), NodeProto (input 1, output 2, name 3,
//! op_type 4, attribute 5), AttributeProto (name 1, i 3, ints 8, type 20),
//! TensorProto (dims 1, data_type 2, name 8, raw_data 9), ValueInfoProto
//! (name 1, type 2), TypeProto (tensor_type 1), TypeProto.Tensor (elem_type
//! 1, shape 2), TensorShapeProto (dim 1), Dimension (dim_value 1, dim_param 2).
#![allow(dead_code)]

use gen_metrics_convert::onnx::proto::{bytes, int, message, string};

const FLOAT: i64 = 1;
const INT64: i64 = 7;
const ATTR_INT: i64 = 2;
const ATTR_INTS: i64 = 7;

/// A dimension: `Some(n)` fixed, `None` the symbolic batch `N`.
type Dim = Option<i64>;

fn value_info(buf: &mut Vec<u8>, field: u32, name: &str, dims: &[Dim]) {
    message(buf, field, |v| {
        string(v, 1, name);
        message(v, 2, |t| {
            message(t, 1, |tt| {
                int(tt, 1, FLOAT);
                message(tt, 2, |shape| {
                    for d in dims {
                        message(shape, 1, |dim| match d {
                            Some(n) => int(dim, 1, *n),
                            None => string(dim, 2, "N"),
                        });
                    }
                });
            });
        });
    });
}

/// A node attribute.
pub enum Attr<'a> {
    /// An integer.
    Int(&'a str, i64),
    /// A list of integers.
    Ints(&'a str, &'a [i64]),
}

/// One node.
pub struct Node<'a> {
    /// Operator.
    pub op: &'a str,
    /// Input names.
    pub inputs: &'a [&'a str],
    /// Output name.
    pub output: &'a str,
    /// Attributes.
    pub attrs: Vec<Attr<'a>>,
}

/// An initializer.
pub enum Init<'a> {
    /// float32 tensor.
    F32(&'a str, &'a [i64], &'a [f32]),
    /// int64 tensor.
    I64(&'a str, &'a [i64], &'a [i64]),
}

/// A model: one input `input` of `in_dims`, one output `out` of `out_dims`.
pub fn model(in_dims: &[Dim], out_dims: &[Dim], nodes: &[Node<'_>], inits: &[Init<'_>]) -> Vec<u8> {
    model_outputs(in_dims, &[("out", out_dims)], nodes, inits)
}

/// A model with one input `input` of `in_dims` and the named outputs.
pub fn model_outputs(
    in_dims: &[Dim],
    outputs: &[(&str, &[Dim])],
    nodes: &[Node<'_>],
    inits: &[Init<'_>],
) -> Vec<u8> {
    let mut m = Vec::new();
    int(&mut m, 1, 8); // ir_version
    string(&mut m, 2, "gen-metrics-tests");
    message(&mut m, 7, |g| {
        for (k, n) in nodes.iter().enumerate() {
            message(g, 1, |nb| {
                for i in n.inputs {
                    string(nb, 1, i);
                }
                string(nb, 2, n.output);
                string(nb, 3, &format!("n{k}"));
                string(nb, 4, n.op);
                for a in &n.attrs {
                    message(nb, 5, |ab| match a {
                        Attr::Int(name, v) => {
                            string(ab, 1, name);
                            int(ab, 3, *v);
                            int(ab, 20, ATTR_INT);
                        }
                        Attr::Ints(name, vs) => {
                            string(ab, 1, name);
                            for v in *vs {
                                int(ab, 8, *v);
                            }
                            int(ab, 20, ATTR_INTS);
                        }
                    });
                }
            });
        }
        string(g, 2, "tiny");
        for init in inits {
            message(g, 5, |t| match init {
                Init::F32(name, dims, data) => {
                    for d in *dims {
                        int(t, 1, *d);
                    }
                    int(t, 2, FLOAT);
                    string(t, 8, name);
                    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                    bytes(t, 9, &raw);
                }
                Init::I64(name, dims, data) => {
                    for d in *dims {
                        int(t, 1, *d);
                    }
                    int(t, 2, INT64);
                    string(t, 8, name);
                    let raw: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
                    bytes(t, 9, &raw);
                }
            });
        }
        value_info(g, 11, "input", in_dims);
        for (name, dims) in outputs {
            value_info(g, 12, name, dims);
        }
    });
    message(&mut m, 8, |o| {
        string(o, 1, "");
        int(o, 2, 17);
    });
    m
}

/// `out[n, :] = mean_{y,x}(input[n, :, y, x]) @ w` with `w` `[3, d]`
/// (row-major): channel means, mixed. Input `[N, 3, h, w]`.
pub fn channel_mean(h: i64, w: i64, weights: &[f32], d: i64) -> Vec<u8> {
    model(
        &[None, Some(3), Some(h), Some(w)],
        &[None, Some(d)],
        &[
            Node {
                op: "ReduceMean",
                inputs: &["input"],
                output: "m",
                attrs: vec![Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
            },
            Node {
                op: "MatMul",
                inputs: &["m", "w"],
                output: "out",
                attrs: vec![],
            },
        ],
        &[Init::F32("w", &[3, d], weights)],
    )
}

/// Identity on channel means: `out = mean_{y,x} input`, `[N, 3]`.
pub fn channel_mean_identity(h: i64, w: i64) -> Vec<u8> {
    channel_mean(h, w, &[1., 0., 0., 0., 1., 0., 0., 0., 1.], 3)
}

/// Tokens: `out[n, y * w + x, c] = input[n, c, y, x]`, `[N, h*w, 3]` (a ViT-like
/// token output; token 0 is the top-left pixel).
pub fn pixel_tokens(h: i64, w: i64) -> Vec<u8> {
    model(
        &[None, Some(3), Some(h), Some(w)],
        &[None, Some(h * w), Some(3)],
        &[
            Node {
                op: "Reshape",
                inputs: &["input", "shape"],
                output: "r",
                attrs: vec![],
            },
            Node {
                op: "Transpose",
                inputs: &["r"],
                output: "out",
                attrs: vec![Attr::Ints("perm", &[0, 2, 1])],
            },
        ],
        &[Init::I64("shape", &[3], &[0, 3, -1])],
    )
}

/// `out = mean(log(input))`: NaN for negative inputs.
pub fn log_mean(h: i64, w: i64) -> Vec<u8> {
    model(
        &[None, Some(3), Some(h), Some(w)],
        &[None, Some(3)],
        &[
            Node {
                op: "Log",
                inputs: &["input"],
                output: "l",
                attrs: vec![],
            },
            Node {
                op: "ReduceMean",
                inputs: &["l"],
                output: "out",
                attrs: vec![Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
            },
        ],
        &[],
    )
}

/// [`channel_mean_identity`] with a second output `logits` `[N, 4]`:
/// `logits = means @ w` for a fixed `w` `[3, 4]` (a stand-in classifier
/// head, for IS from images).
pub fn channel_mean_with_logits(h: i64, w: i64) -> Vec<u8> {
    model_outputs(
        &[None, Some(3), Some(h), Some(w)],
        &[("out", &[None, Some(3)]), ("logits", &[None, Some(4)])],
        &[
            Node {
                op: "ReduceMean",
                inputs: &["input"],
                output: "m",
                attrs: vec![Attr::Ints("axes", &[2, 3]), Attr::Int("keepdims", 0)],
            },
            Node {
                op: "MatMul",
                inputs: &["m", "eye"],
                output: "out",
                attrs: vec![],
            },
            Node {
                op: "MatMul",
                inputs: &["m", "head"],
                output: "logits",
                attrs: vec![],
            },
        ],
        &[
            Init::F32("eye", &[3, 3], &[1., 0., 0., 0., 1., 0., 0., 0., 1.]),
            Init::F32(
                "head",
                &[3, 4],
                &[4., -2., 0., 1., -3., 5., 1., 0., 0., 1., -4., 2.],
            ),
        ],
    )
}
