//! The ONNX models of one Gram block, `G = A_I B_Jᵀ`: what the distance
//! engine asks a device for (`gen_metrics_linalg::pairwise::GramDevice`), run
//! by ONNX Runtime on a GPU (or its CPU execution provider in tests).
//!
//! Inputs [`GRAM_A`] float32 `[N, D]` and [`GRAM_B`] float32 `[M, D]` (the
//! rows as the features are stored) and the row ranges `I = a_start..a_end`,
//! `J = b_start..b_end` ([`GRAM_A_START`], …: int64 `[1]` each); output
//! [`GRAM_G`] `[|I|, |J|]`, `G[i, j] = Σ_k A[a_start + i, k] B[b_start + j, k]`.
//! All sizes are symbolic, so one session serves every block, and the ranges
//! let a device keep whole sets resident and receive only four integers per
//! block (or take one block's rows with the full ranges):
//! - [`GramPrecision::Float32`]: `Slice` each input to its range, one `Gemm`
//!   (`transB = 1`, no bias), float32 output (the k-NN passes);
//! - [`GramPrecision::Float64`]: `Slice`, then `Cast` to float64 (exact), one
//!   float64 `Gemm`, float64 output (the passes with a kernel tap, exact
//!   KID); the rows stay float32 on the device, half the bytes of widened
//!   rows.
//!
//! Written with this crate's ONNX writer ([`crate::onnx::proto`]), ONNX IR
//! [`IR_VERSION`], opset [`OPSET`].
//!
//! What the models do not promise: the summation order and whether a device
//! rounds the inputs below float32 (TF32 tensor cores). The engine's exactness
//! rule needs true float32 (float64) arithmetic in any order; the session that
//! runs a model must switch reduced-precision modes off.

use crate::onnx::{
    DOUBLE, DimProto, FLOAT, INT64, attr_int, model_proto, proto, tensor_value_info,
};
#[cfg(doc)]
use crate::onnx::{IR_VERSION, OPSET};

/// Input `A`, float32 `[N, D]`.
pub const GRAM_A: &str = "a";
/// Input `B`, float32 `[M, D]`.
pub const GRAM_B: &str = "b";
/// First row of `A` in the block, int64 `[1]`.
pub const GRAM_A_START: &str = "a_start";
/// One past the last row of `A` in the block, int64 `[1]`.
pub const GRAM_A_END: &str = "a_end";
/// First row of `B` in the block, int64 `[1]`.
pub const GRAM_B_START: &str = "b_start";
/// One past the last row of `B` in the block, int64 `[1]`.
pub const GRAM_B_END: &str = "b_end";
/// Output `G = A_I B_Jᵀ`, `[|I|, |J|]`, float32 or float64 ([`GramPrecision`]).
pub const GRAM_G: &str = "g";

/// The arithmetic of a Gram-block model (module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GramPrecision {
    /// Float32 products and sums, float32 output.
    Float32,
    /// Inputs widened to float64, float64 products and sums and output.
    Float64,
}

/// The serialized `ModelProto` of `G = A_I B_Jᵀ` in `precision` (module
/// documentation).
pub fn gram_block_model(precision: GramPrecision) -> Vec<u8> {
    let mut graph = Vec::new();
    let sides = [
        (GRAM_A, GRAM_A_START, GRAM_A_END),
        (GRAM_B, GRAM_B_START, GRAM_B_END),
    ];
    let mut operands = Vec::new();
    for (input, start, end) in sides {
        let rows = format!("{input}_rows");
        proto::message(&mut graph, 1, |n| {
            proto::string(n, 1, input);
            proto::string(n, 1, start);
            proto::string(n, 1, end);
            proto::string(n, 2, &rows);
            proto::string(n, 3, &format!("gram/Slice_{input}"));
            proto::string(n, 4, "Slice");
        });
        let operand = match precision {
            GramPrecision::Float32 => rows,
            GramPrecision::Float64 => {
                let wide = format!("{input}_rows64");
                proto::message(&mut graph, 1, |n| {
                    proto::string(n, 1, &rows);
                    proto::string(n, 2, &wide);
                    proto::string(n, 3, &format!("gram/Cast_{input}"));
                    proto::string(n, 4, "Cast");
                    attr_int(n, "to", DOUBLE);
                });
                wide
            }
        };
        operands.push(operand);
    }
    proto::message(&mut graph, 1, |n| {
        for operand in &operands {
            proto::string(n, 1, operand);
        }
        proto::string(n, 2, GRAM_G);
        proto::string(n, 3, "gram/Gemm");
        proto::string(n, 4, "Gemm");
        attr_int(n, "transB", 1);
    });
    proto::string(&mut graph, 2, "gram_block");
    let out_type = match precision {
        GramPrecision::Float32 => FLOAT,
        GramPrecision::Float64 => DOUBLE,
    };
    let (p, one) = (DimProto::Param, DimProto::Size);
    let io = [
        (11, GRAM_A, FLOAT, vec![p("N"), p("D")]),
        (11, GRAM_B, FLOAT, vec![p("M"), p("D")]),
        (11, GRAM_A_START, INT64, vec![one(1)]),
        (11, GRAM_A_END, INT64, vec![one(1)]),
        (11, GRAM_B_START, INT64, vec![one(1)]),
        (11, GRAM_B_END, INT64, vec![one(1)]),
        (12, GRAM_G, out_type, vec![p("I"), p("J")]),
    ];
    for (field, name, elem_type, dims) in io {
        tensor_value_info(&mut graph, field, name, elem_type, &dims);
    }
    model_proto(&graph, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::onnx::{IR_VERSION, OPSET, OnnxDim, inspect};

    fn check(precision: GramPrecision, ops: &[&str], out_type: i64) {
        let s = inspect(&gram_block_model(precision)).unwrap();
        assert_eq!((s.ir_version, s.opset), (IR_VERSION, OPSET));
        let got: Vec<&str> = s.nodes.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(got, ops);
        assert!(s.initializers.is_empty());
        let slices: Vec<_> = s.nodes.iter().filter(|n| n.op_type == "Slice").collect();
        assert_eq!(slices[0].inputs, [GRAM_A, GRAM_A_START, GRAM_A_END]);
        assert_eq!(slices[1].inputs, [GRAM_B, GRAM_B_START, GRAM_B_END]);
        for cast in s.nodes.iter().filter(|n| n.op_type == "Cast") {
            assert_eq!(cast.int_attrs.get("to"), Some(&vec![DOUBLE]));
        }
        let gemm = s.nodes.last().unwrap();
        assert_eq!(gemm.op_type, "Gemm");
        assert_eq!(gemm.outputs, [GRAM_G]);
        assert_eq!(gemm.int_attrs.get("transB"), Some(&vec![1]));
        let p = |n: &str| OnnxDim::Param(n.into());
        let names: Vec<&str> = s.inputs.iter().map(|v| v.name.as_str()).collect();
        assert_eq!(
            names,
            [
                GRAM_A,
                GRAM_B,
                GRAM_A_START,
                GRAM_A_END,
                GRAM_B_START,
                GRAM_B_END
            ]
        );
        assert_eq!(s.inputs[0].shape, [p("N"), p("D")]);
        assert_eq!(s.inputs[1].shape, [p("M"), p("D")]);
        assert!(s.inputs[..2].iter().all(|v| v.elem_type == FLOAT));
        for v in &s.inputs[2..] {
            assert_eq!(
                (v.elem_type, &v.shape[..]),
                (INT64, &[OnnxDim::Value(1)][..])
            );
        }
        assert_eq!(s.outputs.len(), 1);
        assert_eq!(s.outputs[0].name, GRAM_G);
        assert_eq!(s.outputs[0].shape, [p("I"), p("J")]);
        assert_eq!(s.outputs[0].elem_type, out_type);
    }

    #[test]
    fn float32_model_slices_then_one_gemm() {
        check(GramPrecision::Float32, &["Slice", "Slice", "Gemm"], FLOAT);
    }

    #[test]
    fn float64_model_slices_casts_then_one_double_gemm() {
        check(
            GramPrecision::Float64,
            &["Slice", "Cast", "Slice", "Cast", "Gemm"],
            DOUBLE,
        );
    }
}
