//! AFL++ target `image`: [`gen_metrics_fuzz::image`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::image(data);
    });
}
