//! AFL++ target `stats`: [`gen_metrics_fuzz::stats`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::stats(data);
    });
}
