//! The ONNX models of one Gram block, `G = A Bᵀ`: what the distance engine
//! asks a device for (`gen_metrics_linalg::pairwise::GramDevice`), run by
//! ONNX Runtime on a GPU (or its CPU execution provider in tests).
//!
//! Inputs [`GRAM_A`] float32 `[N, D]` and [`GRAM_B`] float32 `[M, D]` (the
//! rows as the features are stored), output [`GRAM_G`] `[N, M]`,
//! `G[i, j] = Σ_k A[i, k] B[j, k]`, all sizes symbolic, so one session serves
//! every block:
//! - [`GramPrecision::Float32`]: one `Gemm` node (`transB = 1`, no bias),
//!   float32 output (the k-NN passes);
//! - [`GramPrecision::Float64`]: both inputs `Cast` to float64 (exact), one
//!   float64 `Gemm`, float64 output (the passes with a kernel tap, exact KID);
//!   the inputs travel as float32, half the bytes of widened rows.
//!
//! Written with this crate's ONNX writer ([`crate::onnx::proto`]), ONNX IR
//! [`IR_VERSION`], opset [`OPSET`].
//!
//! What the models do not promise: the summation order and whether a device
//! rounds the inputs below float32 (TF32 tensor cores). The engine's exactness
//! rule needs true float32 (float64) arithmetic in any order; the session that
//! runs a model must switch reduced-precision modes off.

use crate::onnx::{DOUBLE, DimProto, FLOAT, attr_int, model_proto, proto, tensor_value_info};
#[cfg(doc)]
use crate::onnx::{IR_VERSION, OPSET};

/// Input `A`, float32 `[N, D]`.
pub const GRAM_A: &str = "a";
/// Input `B`, float32 `[M, D]`.
pub const GRAM_B: &str = "b";
/// Output `G = A Bᵀ`, `[N, M]`, float32 or float64 ([`GramPrecision`]).
pub const GRAM_G: &str = "g";

/// The arithmetic of a Gram-block model (module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GramPrecision {
    /// Float32 products and sums, float32 output.
    Float32,
    /// Inputs widened to float64, float64 products and sums and output.
    Float64,
}

/// The serialized `ModelProto` of `G = A Bᵀ` in `precision` (module
/// documentation).
pub fn gram_block_model(precision: GramPrecision) -> Vec<u8> {
    let mut graph = Vec::new();
    let (gemm_a, gemm_b, out_type) = match precision {
        GramPrecision::Float32 => (GRAM_A, GRAM_B, FLOAT),
        GramPrecision::Float64 => {
            for (input, wide) in [(GRAM_A, "a64"), (GRAM_B, "b64")] {
                proto::message(&mut graph, 1, |n| {
                    proto::string(n, 1, input);
                    proto::string(n, 2, wide);
                    proto::string(n, 3, &format!("gram/Cast_{input}"));
                    proto::string(n, 4, "Cast");
                    attr_int(n, "to", DOUBLE);
                });
            }
            ("a64", "b64", DOUBLE)
        }
    };
    proto::message(&mut graph, 1, |n| {
        proto::string(n, 1, gemm_a);
        proto::string(n, 1, gemm_b);
        proto::string(n, 2, GRAM_G);
        proto::string(n, 3, "gram/Gemm");
        proto::string(n, 4, "Gemm");
        attr_int(n, "transB", 1);
    });
    proto::string(&mut graph, 2, "gram_block");
    let io = [
        (11, GRAM_A, FLOAT, ["N", "D"]),
        (11, GRAM_B, FLOAT, ["M", "D"]),
        (12, GRAM_G, out_type, ["N", "M"]),
    ];
    for (field, name, elem_type, dims) in io {
        let dims = dims.map(DimProto::Param);
        tensor_value_info(&mut graph, field, name, elem_type, &dims);
    }
    model_proto(&graph, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{IR_VERSION, OPSET, OnnxDim, inspect};

    #[test]
    fn one_gemm_with_symbolic_sizes() {
        let s = inspect(&gram_block_model(GramPrecision::Float32)).unwrap();
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

    #[test]
    fn float64_model_casts_float32_inputs_then_one_gemm() {
        let s = inspect(&gram_block_model(GramPrecision::Float64)).unwrap();
        assert_eq!((s.ir_version, s.opset), (IR_VERSION, OPSET));
        let ops: Vec<&str> = s.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(ops, ["Cast", "Cast", "Gemm"]);
        for (cast, input) in s.nodes[..2].iter().zip([GRAM_A, GRAM_B]) {
            assert_eq!(cast.inputs, [input]);
            assert_eq!(cast.int_attrs.get("to"), Some(&vec![DOUBLE]));
        }
        let gemm = &s.nodes[2];
        let casts: Vec<String> = s.nodes[..2].iter().map(|n| n.outputs[0].clone()).collect();
        assert_eq!(gemm.inputs, casts);
        assert_eq!(gemm.outputs, [GRAM_G]);
        assert_eq!(gemm.int_attrs.get("transB"), Some(&vec![1]));
        assert!(s.inputs.iter().all(|v| v.elem_type == FLOAT));
        assert_eq!(s.outputs.len(), 1);
        assert_eq!(s.outputs[0].elem_type, DOUBLE);
    }
}
