//! The `gen-metrics` command line: a thin layer of argument parsing over the
//! library crates (as ripgrep is over its crates). Every failure is a clear
//! message and a non-zero exit code, never a panic.
fn main() {}
