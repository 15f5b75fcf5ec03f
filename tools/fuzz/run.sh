#!/usr/bin/env bash
# Fuzzes one reader with AFL++ (docs/fuzzing.md).
#
#   bash tools/fuzz/run.sh TARGET SECONDS      e.g. bash tools/fuzz/run.sh jpeg 3600
#   MINIMISE=1 bash tools/fuzz/run.sh TARGET 0  only folds the queue into fuzz/corpus/TARGET
#                                              (afl-cmin, then capped: see below)
#
# Targets: jpeg image npy npz zip stats torchscript onnx checkpoint (fuzz/src/lib.rs).
# Needs tools/fuzz/install.sh once. Runs at nice 19 with one fuzzer process; the state is
# kept in fuzz/out/TARGET (ignored by git) and resumed by the next run. Crashes land in
# fuzz/out/TARGET/default/crashes: turn each into a regression test in the reader's crate
# and copy the (small) input to fuzz/regressions/TARGET/ so CI replays it.
# Environment: MEM_MB (afl-fuzz -m, default 4096: a reader must refuse what would need
# more), TIMEOUT_MS (afl-fuzz -t, default 2000), CARGO_TARGET_DIR (default fuzz/target),
# BUILD=0 (use the binary already built).
set -euo pipefail
target="${1:?usage: run.sh TARGET SECONDS}"
seconds="${2:?usage: run.sh TARGET SECONDS}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root/fuzz"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/fuzz/target}"
[ -d "corpus/$target" ] || { echo "no corpus/$target (targets: $(ls corpus | tr '\n' ' '))" >&2; exit 2; }

if [ "${BUILD:-1}" = 1 ]; then
    nice -n 19 cargo afl build --release --locked -j 2 --bin "$target"
fi
bin="$CARGO_TARGET_DIR/release/$target"

# Readers that take a path get a file written under TMPDIR for every input: keep it in memory.
export TMPDIR="${FUZZ_TMPDIR:-/dev/shm}"
export AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 AFL_AUTORESUME=1 AFL_NO_UI=1
export AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
mkdir -p out
if [ "$seconds" -gt 0 ]; then
    nice -n 19 cargo afl fuzz -V "$seconds" -m "${MEM_MB:-4096}" -t "${TIMEOUT_MS:-2000}" \
        -i "corpus/$target" -o "out/$target" -- "$bin" || true
fi

stats="out/$target/default/fuzzer_stats"
if [ -f "$stats" ]; then
    grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|stability|bitmap_cvg) ' "$stats"
fi
# Minimising: afl-cmin (the bash variant; the python one records no tuples from afl.rs
# targets) keeps one input per edge, then the corpus is capped at CORPUS_BYTES (default
# 12000) per target, smallest inputs first, on top of the seeds (make_corpus.py), so the
# committed corpus stays small; the full queue stays in fuzz/out/TARGET.
if [ "${MINIMISE:-0}" = 1 ] && [ -d "out/$target/default/queue" ]; then
    afl_bin="$(ls -d "${XDG_DATA_HOME:-$HOME/.local/share}"/afl.rs/rustc-*/afl.rs-*/afl/bin | head -1)"
    rm -rf "out/$target.cmin"
    AFL_PATH="$afl_bin" nice -n 19 "$afl_bin/afl-cmin.bash" -m "${MEM_MB:-4096}" -t "${TIMEOUT_MS:-2000}" \
        -i "out/$target/default/queue" -o "out/$target.cmin" -- "$bin" > "out/$target.cmin.log" 2>&1
    budget="${CORPUS_BYTES:-12000}"
    used=0
    rm -f corpus/"$target"/id_*
    for f in $(ls -Sr "out/$target.cmin"); do
        case "$f" in *orig:*) continue ;; esac # the seeds are in corpus/ already
        size=$(stat -c %s "out/$target.cmin/$f")
        [ $((used + size)) -le "$budget" ] || break
        cp "out/$target.cmin/$f" "corpus/$target/id_${f:3:6}"
        used=$((used + size))
    done
    echo "corpus/$target: $(ls "corpus/$target" | wc -l) files, $(du -cb corpus/"$target"/* | tail -1 | cut -f1) bytes ($(ls "out/$target.cmin" | wc -l) after afl-cmin)"
fi
