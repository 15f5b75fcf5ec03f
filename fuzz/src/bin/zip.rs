//! AFL++ target `zip`: [`gen_metrics_fuzz::zip`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::zip(data);
    });
}
