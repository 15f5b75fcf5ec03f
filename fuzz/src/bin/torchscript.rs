//! AFL++ target `torchscript`: [`gen_metrics_fuzz::torchscript`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::torchscript(data);
    });
}
