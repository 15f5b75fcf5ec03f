//! AFL++ target `jpeg`: [`gen_metrics_fuzz::jpeg`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::jpeg(data);
    });
}
