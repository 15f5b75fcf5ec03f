//! AFL++ target `onnx`: [`gen_metrics_fuzz::onnx`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::onnx(data);
    });
}
