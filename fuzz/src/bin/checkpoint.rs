//! AFL++ target `checkpoint`: [`gen_metrics_fuzz::checkpoint`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::checkpoint(data);
    });
}
