//! The `gen-metrics` command line (thin: parsing, then library calls).
fn main() {}
