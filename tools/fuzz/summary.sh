#!/usr/bin/env bash
# Prints one Markdown table row per fuzzed target from fuzz/out/TARGET/default/fuzzer_stats
# (the table of docs/fuzzing.md): run time, executions, executions/s, queue, crashes, hangs.
# Numbers are those of the last afl-fuzz session of each target (AFL_AUTORESUME keeps the
# queue, not the counters: add the sessions up by hand).
set -euo pipefail
cd "$(dirname "$0")/../../fuzz"
echo "| target | run time (s) | executions | exec/s | queue | crashes | hangs (timeouts) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for s in out/*/default/fuzzer_stats; do
    [ -f "$s" ] || continue
    t="${s#out/}"; t="${t%%/*}"
    get() { grep -E "^$1 " "$s" | sed 's/.*: //'; }
    echo "| $t | $(get run_time) | $(get execs_done) | $(get execs_per_sec) | $(get corpus_count) | $(get saved_crashes) | $(get saved_hangs) |"
done
