//! AFL++ target `npz`: [`gen_metrics_fuzz::npz`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::npz(data);
    });
}
