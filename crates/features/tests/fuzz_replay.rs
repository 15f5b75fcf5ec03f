//! The fuzz smoke of every CI run (docs/fuzzing.md): replays the committed
//! fuzz corpus (`fuzz/corpus/TARGET/*`) and the inputs that once crashed a
//! reader (`fuzz/regressions/TARGET/*`) through the very harness functions
//! the AFL++ targets call (`fuzz/src/lib.rs`, included here), in seconds and
//! without an AFL build, then runs a few seconds of seeded havoc mutations of
//! that corpus per target (the CI fuzz smoke). A panic fails the test; an
//! abort ends it.

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};
use std::time::Instant;

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

#[test]
fn corpus_and_regressions_replay_without_panic() {
    let mut total = 0;
    for (name, target) in harness::TARGETS {
        let corpus = inputs(&root().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "no corpus for fuzz target {name} under fuzz/corpus/{name}"
        );
        let regressions = inputs(&root().join("regressions").join(name));
        for file in corpus.iter().chain(&regressions) {
            let data = std::fs::read(file).expect("corpus file readable");
            target(&data);
            total += 1;
        }
    }
    assert!(total >= harness::TARGETS.len());
}

/// Seconds of mutation per target (`GEN_METRICS_FUZZ_SMOKE_SECONDS`, default 4).
fn smoke_seconds() -> f64 {
    std::env::var("GEN_METRICS_FUZZ_SMOKE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0)
}

/// One mutation of `input` in the manner of AFL's havoc stage: bit flips,
/// random bytes, interesting values (0, 0xFF, 0x7F, 0x80) at random offsets,
/// a truncation, a duplicated or deleted chunk, or a splice with another
/// corpus file. Stacks 1 to 8 of them. Written here rather than taken from a
/// crate: the fuzzing crates (afl, libfuzzer-sys, bolero) mutate inside their
/// own instrumented runtimes, which is what this smoke avoids.
fn mutate(rng: &mut ChaCha8Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..rng.random_range(1..=8u32) {
        if b.is_empty() {
            b.push(rng.random());
            continue;
        }
        let at = rng.random_range(0..b.len());
        match rng.random_range(0..7u32) {
            0 => b[at] ^= 1 << rng.random_range(0..8u32),
            1 => b[at] = rng.random(),
            2 => b[at] = [0x00, 0xFF, 0x7F, 0x80][rng.random_range(0..4usize)],
            3 => b.truncate(at),
            4 => {
                let end = (at + rng.random_range(1..=64usize)).min(b.len());
                let chunk = b[at..end].to_vec();
                let to = rng.random_range(0..=b.len());
                b.splice(to..to, chunk);
            }
            5 => {
                let end = (at + rng.random_range(1..=64usize)).min(b.len());
                b.drain(at..end);
            }
            _ => {
                if !other.is_empty() {
                    let from = rng.random_range(0..other.len());
                    b.truncate(at);
                    b.extend_from_slice(&other[from..]);
                }
            }
        }
    }
    b
}

/// The CI fuzz smoke (issue #12): a few seconds per target of seeded,
/// uninstrumented havoc mutations of the committed corpus through the same
/// harness functions as AFL++. It finds only shallow bugs (no coverage
/// feedback; the hours of guided fuzzing are in docs/fuzzing.md), but it runs
/// every target on new inputs in every CI run without an AFL build. A panic
/// fails the test with the input written to the target directory; an input
/// taking over 20 s fails it too.
#[test]
fn mutated_corpus_smoke() {
    let seconds = smoke_seconds();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR"));
    for (t, (name, target)) in harness::TARGETS.iter().enumerate() {
        let corpus: Vec<Vec<u8>> = inputs(&root().join("corpus").join(name))
            .iter()
            .filter_map(|p| std::fs::read(p).ok())
            .collect();
        assert!(!corpus.is_empty(), "no corpus for fuzz target {name}");
        let mut rng = ChaCha8Rng::seed_from_u64(0x5EED_0000 + t as u64);
        let start = Instant::now();
        let mut runs = 0u64;
        while start.elapsed().as_secs_f64() < seconds {
            let a = &corpus[rng.random_range(0..corpus.len())];
            let b = &corpus[rng.random_range(0..corpus.len())];
            let input = mutate(&mut rng, a, b);
            let one = Instant::now();
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| target(&input)));
            let slow = one.elapsed().as_secs_f64() > 20.0;
            if outcome.is_err() || slow {
                let saved = out.join(format!("fuzz-smoke-{name}-{runs}.bin"));
                let _ = std::fs::write(&saved, &input);
                panic!(
                    "fuzz target {name}: input {runs} {} (saved to {})",
                    if slow { "took over 20 s" } else { "panicked" },
                    saved.display()
                );
            }
            runs += 1;
        }
        eprintln!("fuzz smoke {name}: {runs} mutated inputs in {seconds} s");
        assert!(runs > 0);
    }
}
