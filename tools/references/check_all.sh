#!/usr/bin/env bash
# Runs every reference generator of tools/references/ with --check: each recomputes
# the values that Rust tests hard-code with the canonical Python call and exits 1
# when one is outside the test's tolerance or its literal is gone from the test.
# Usage: PYTHON=/path/to/venv/bin/python bash tools/references/check_all.sh
# (default PYTHON: ../venv-ref/bin/python beside the repository, else python3;
# the venv holds tools/references/requirements.txt).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x "$repo/../venv-ref/bin/python" ]; then py="$repo/../venv-ref/bin/python"; else py=python3; fi
fi
status=0
for script in ranking normality bootstrap divergence cas decode small; do
  "$py" "$here/$script.py" --check || status=1
done
exit $status
