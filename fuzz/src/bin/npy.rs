//! AFL++ target `npy`: [`gen_metrics_fuzz::npy`] on every input.
fn main() {
    afl::fuzz!(|data: &[u8]| {
        gen_metrics_fuzz::npy(data);
    });
}
