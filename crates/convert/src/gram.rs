//! The ONNX model of one float32 Gram block, `G = A Bᵀ`: what the distance
//! engine asks a device for (`gen_metrics_linalg::pairwise::GramDevice`),
//! run by ONNX Runtime on a GPU (or its CPU execution provider in tests).
//!
//! One `Gemm` node (`transB = 1`, no bias): inputs [`GRAM_A`] float32
//! `[N, D]` and [`GRAM_B`] float32 `[M, D]`, output [`GRAM_G`] float32
//! `[N, M]`, `G[i, j] = Σ_k A[i, k] B[j, k]`, all sizes symbolic, so one
//! session serves every block. Written with this crate's ONNX writer
//! ([`crate::onnx::proto`]), ONNX IR [`IR_VERSION`], opset [`OPSET`].
//!
//! What the model does not promise: the summation order and whether a device
//! rounds the inputs below float32 (TF32 tensor cores). The engine's exactness
//! rule needs true float32 arithmetic in any order; the session that runs
//! this model must switch reduced-precision modes off.

use crate::onnx::{DimProto, attr_int, float_value_info, model_proto, proto};
#[cfg(doc)]
use crate::onnx::{IR_VERSION, OPSET};

/// Input `A`, float32 `[N, D]`.
pub const GRAM_A: &str = "a";
/// Input `B`, float32 `[M, D]`.
pub const GRAM_B: &str = "b";
/// Output `G = A Bᵀ`, float32 `[N, M]`.
pub const GRAM_G: &str = "g";

/// The serialized `ModelProto` of `G = A Bᵀ` (module documentation).
pub fn gram_block_model() -> Vec<u8> {
    let mut graph = Vec::new();
    proto::message(&mut graph, 1, |n| {
        proto::string(n, 1, GRAM_A);
        proto::string(n, 1, GRAM_B);
        proto::string(n, 2, GRAM_G);
        proto::string(n, 3, "gram/Gemm");
        proto::string(n, 4, "Gemm");
        attr_int(n, "transB", 1);
    });
    proto::string(&mut graph, 2, "gram_block");
    let io = [
        (11, GRAM_A, ["N", "D"]),
        (11, GRAM_B, ["M", "D"]),
        (12, GRAM_G, ["N", "M"]),
    ];
    for (field, name, dims) in io {
        let dims = dims.map(DimProto::Param);
        float_value_info(&mut graph, field, name, &dims);
    }
    model_proto(&graph, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{FLOAT, IR_VERSION, OPSET, OnnxDim, inspect};

    #[test]
    fn one_gemm_with_symbolic_sizes() {
        let s = inspect(&gram_block_model()).unwrap();
        assert_eq!((s.ir_version, s.opset), (IR_VERSION, OPSET));
        assert_eq!(s.nodes.len(), 1);
        let node = &s.nodes[0];
        assert_eq!(node.op_type, "Gemm");
        assert_eq!(node.inputs, [GRAM_A, GRAM_B]);
        assert_eq!(node.outputs, [GRAM_G]);
        assert_eq!(node.int_attrs.get("transB"), Some(&vec![1]));
        assert!(s.initializers.is_empty());
        let dims = |v: &crate::onnx::OnnxValue| -> Vec<OnnxDim> { v.shape.clone() };
        let p = |n: &str| OnnxDim::Param(n.into());
        assert_eq!(s.inputs.len(), 2);
        assert_eq!(s.inputs[0].name, GRAM_A);
        assert_eq!(dims(&s.inputs[0]), [p("N"), p("D")]);
        assert_eq!(dims(&s.inputs[1]), [p("M"), p("D")]);
        assert_eq!(s.outputs[0].name, GRAM_G);
        assert_eq!(dims(&s.outputs[0]), [p("N"), p("M")]);
        assert!(
            s.inputs
                .iter()
                .chain(&s.outputs)
                .all(|v| v.elem_type == FLOAT)
        );
    }
}
