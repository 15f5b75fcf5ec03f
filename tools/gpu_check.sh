#!/usr/bin/env bash
# The GPU numbers in one command (gen-metrics issue 10): on a machine with an
# NVIDIA GPU, builds gen-metrics with the `cuda` feature, provisions
# `onnxruntime-gpu==1.31.1` (pip, by package name; or `--wheel FILE` for a
# wheel you already have, on machines without network), then measures
#   1. extraction end to end: `gen-metrics features` on a generated folder of
#      N 256x256 PNGs (decode, clean resize to 299, FID Inception-V3), batch
#      128, no cache, `--device cuda --require-device`: images per second;
#   2. k-NN metrics: `gen-metrics metrics --metrics pr,prdc` on two generated
#      feature sets of M x 2048: seconds on the CPU, then with `--device cuda`
#      (the float32 Gram blocks on the GPU through ONNX Runtime, near-ties
#      rechecked in float64 on the host); the two reports must be identical.
#
# Usage: tools/gpu_check.sh [--cpu] [--images N] [--knn M] [--wheel FILE]
#   defaults: --images 5000 --knn 50000 (the issue's sizes). `--cpu` runs the
#   same steps on the CPU execution provider without the `cuda` feature: CI
#   runs it at tiny sizes (`--cpu --images 16 --knn 400`) so the script stays
#   working.
#
# Prints, one per line, JSON objects:
#   {"step":"extract","device":"cuda","images":5000,"seconds":...,"images_per_s":...}
#   {"step":"knn","device":"cpu","rows":50000,"dim":2048,"metrics":"pr,prdc","seconds":...}
#   {"step":"knn","device":"cuda",...}   (GPU runs only; exits 1 if the values differ)
# and exits non-zero when a step fails (with `--device cuda --require-device`
# a missing GPU or CUDA library is a failure, never a silent CPU run).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda images=5000 knn=50000 wheel=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) device=cpu ;;
    --images) images="$2"; shift ;;
    --knn) knn="$2"; shift ;;
    --wheel) wheel="$2"; shift ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

features=()
[ "$device" = cuda ] && features=(--features cuda)
# GEN_METRICS_PROFILE: cargo profile (default release; CI passes `test`).
profile=${GEN_METRICS_PROFILE:-release}
case "$profile" in
  dev | test) out="${CARGO_TARGET_DIR:-target}/debug" ;;
  *) out="${CARGO_TARGET_DIR:-target}/$profile" ;;
esac
cargo build --profile "$profile" --locked -p gen-metrics-cli "${features[@]}"
cargo build --profile "$profile" --locked --example synth_data
bin=$out/gen-metrics
synth=$out/examples/synth_data

if [ "$device" = cuda ]; then
  if [ -n "$wheel" ]; then
    "$bin" models fetch onnxruntime-gpu --wheel "$wheel"
  else
    "$bin" models fetch onnxruntime-gpu
  fi
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi

# Everything provisioned before the clock starts (runtime, weights, the
# converted model), so the timing is the pipeline's alone.
if [ "$device" = cuda ]; then "$bin" models fetch inception-v3-fid; else "$bin" models fetch; fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$synth" images "$work/images" "$images"
"$synth" features "$work/feats" "$knn" 2048

now() { date +%s.%N; }
t0=$(now)
"$bin" features "$work/images" -o "$work/f.npy" --device "$device" --require-device \
  --batch-size 128 --no-cache --quiet
t1=$(now)
python3 - "$device" "$images" "$t0" "$t1" <<'PY'
import json, sys
d, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
print(json.dumps({"step": "extract", "device": d, "images": n, "seconds": round(t1 - t0, 3),
                  "images_per_s": round(n / (t1 - t0), 1)}))
PY

# k-NN metrics on the CPU, then (with a GPU) with their float32 blocks on the
# GPU (`--device cuda`: an ONNX Runtime Gram session; near-ties rechecked in
# float64 on the host), and the two reports must be identical.
knn_run() {
  local dev=$1 t0 t1
  local require=()
  [ "$dev" = cuda ] && require=(--require-device)
  t0=$(now)
  "$bin" metrics --real "$work/feats/a.npy" --fake "$work/feats/b.npy" --metrics pr,prdc --json \
    --device "$dev" "${require[@]}" > "$work/knn_$dev.json"
  t1=$(now)
  python3 - "$knn" "$dev" "$t0" "$t1" <<'PY'
import json, sys
m, d, t0, t1 = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
print(json.dumps({"step": "knn", "device": d, "rows": m, "dim": 2048, "metrics": "pr,prdc",
                  "seconds": round(t1 - t0, 3)}))
PY
}
knn_run cpu
if [ "$device" = cuda ]; then
  knn_run cuda
  if ! cmp -s "$work/knn_cpu.json" "$work/knn_cuda.json"; then
    echo "gpu_check: pr,prdc differ between the CPU and the GPU blocks:" >&2
    diff "$work/knn_cpu.json" "$work/knn_cuda.json" >&2 || true
    exit 1
  fi
fi
