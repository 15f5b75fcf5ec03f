//! The fuzz smoke of every CI run (docs/fuzzing.md): replays the committed
//! fuzz corpus (`fuzz/corpus/TARGET/*`) and the inputs that once crashed a
//! reader (`fuzz/regressions/TARGET/*`) through the very harness functions
//! the AFL++ targets call (`fuzz/src/lib.rs`, included here), in seconds and
//! without an AFL build. A panic fails the test; an abort ends it.

#[path = "../../../fuzz/src/lib.rs"]
mod harness;

use std::path::{Path, PathBuf};

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
