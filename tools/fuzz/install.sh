#!/usr/bin/env bash
# Installs the fuzzing tools used by fuzz/ (docs/fuzzing.md): cargo-afl (afl.rs, which
# bundles AFL++) on the toolchain pinned in rust-toolchain.toml, then builds AFL++ itself
# (`cargo afl config --build`: the AFL++ runtime and afl-fuzz, into afl.rs's data directory).
# No nightly toolchain and no LLVM plugins are needed: instrumentation is rustc's own
# SanitizerCoverage pass, which cargo-afl turns on.
#
# Usage: bash tools/fuzz/install.sh        (idempotent; set AFL_VERSION to override)
set -euo pipefail
AFL_VERSION="${AFL_VERSION:-0.18.2}"
cd "$(dirname "$0")/../.."

if ! cargo afl --version 2>/dev/null | grep -q "$AFL_VERSION"; then
    cargo install cargo-afl --version "$AFL_VERSION" --locked
fi
# Builds AFL++ (a C build with make and cc) once; `--force` rebuilds.
if ! cargo afl config --help >/dev/null 2>&1; then
    echo "cargo afl config is unavailable: cargo-afl $AFL_VERSION is too old" >&2
    exit 1
fi
if ! ls "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin/afl-fuzz >/dev/null 2>&1; then
    cargo afl config --build
fi
cargo afl --version
