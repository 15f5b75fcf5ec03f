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
#      rechecked in float64 on the host); the two reports must be identical;
#   3. the default selection's distance work, `--metrics kid,pr,prdc`, on the
#      first K rows of the same sets: KID's exact pass forms float64 blocks,
#      which the k-NN metrics share (on the GPU: the rows cast to float64 on
#      the device, one double GEMM per block). pr/prdc must be identical; KID
#      agrees to float64 rounding in the device's summation order (relative
#      1e-9 allowed: the sums cancel in the MMD), and the largest relative
#      difference is printed.
#
# Usage: tools/gpu_check.sh [--cpu] [--images N] [--knn M] [--kid K] [--wheel FILE] [--bin-dir DIR]
#   defaults: --images 5000 --knn 50000 --kid 20000 (the issue's sizes; K
#   smaller so the float64 CPU reference fits the GPU lease). `--cpu` runs the
#   same steps on the CPU execution provider without the `cuda` feature: CI
#   runs it at tiny sizes (`--cpu --images 16 --knn 400 --kid 300`) so the
#   script stays working. `--bin-dir DIR` uses DIR/gen-metrics and
#   DIR/synth_data instead of building (a GPU machine without a Rust
#   toolchain or network: `tools/gpu_stage.sh` prepares both, the runtime and
#   the model, and prints the calls). With CUDA, the CUDA 13 / cuDNN 9
#   libraries of Python's `nvidia-*` packages, where python3 has them, are put
#   on LD_LIBRARY_PATH.
#
# Prints, one per line, JSON objects:
#   {"step":"extract","device":"cuda","images":5000,"seconds":...,"images_per_s":...}
#   {"step":"knn","device":"cpu","rows":50000,"dim":2048,"metrics":"pr,prdc","seconds":...}
#   {"step":"knn","device":"cuda",...}   (GPU runs only; exits 1 if the values differ)
#   {"step":"knn+kid","device":"cpu","rows":20000,...,"metrics":"kid,pr,prdc","seconds":...}
#   {"step":"knn+kid","device":"cuda",...,"kid_max_rel_diff":...}   (GPU runs only)
# With `--cpu` the second run of each k-NN step is "ort-cpu": the same wiring
# (Gram sessions, kept sets, float64 blocks) on ONNX Runtime's CPU provider
# (`GEN_METRICS_GRAM_ON_CPU=1`), compared the same way, so CI runs it.
# A line carries "messages" when the run reported on its device path (an
# extraction IO binding that failed, or page-locked batch buffers that could
# not be allocated so batches were copied; for k-NN lines:
# distance blocks that failed on the GPU and were multiplied on the CPU, sets
# the GPU could not keep, no float64 session): the values stay right, the
# time does not measure the GPU path then.
# and exits non-zero when a step fails (with `--device cuda --require-device`
# a missing GPU or CUDA library is a failure, never a silent CPU run).
set -euo pipefail
cd "$(dirname "$0")/.."

device=cuda images=5000 knn=50000 kid=20000 wheel="" bin_dir=""
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) device=cpu ;;
    --images) images="$2"; shift ;;
    --knn) knn="$2"; shift ;;
    --kid) kid="$2"; shift ;;
    --wheel) wheel="$2"; shift ;;
    --bin-dir) bin_dir="$2"; shift ;;
    *) echo "gpu_check: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

if [ -n "$bin_dir" ]; then
  bin=$bin_dir/gen-metrics
  synth=$bin_dir/synth_data
else
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
fi

if [ "$device" = cuda ]; then
  # CUDA 13 and cuDNN 9 from Python's nvidia-* packages, where installed.
  nv_libs=$(python3 - <<'PY' 2>/dev/null || true
import os
try:
    import nvidia
except ImportError:
    raise SystemExit
dirs = set()
for root in nvidia.__path__:
    for d, _, files in os.walk(root):
        if any(f.startswith("lib") and ".so" in f for f in files):
            dirs.add(d)
print(":".join(sorted(dirs)))
PY
)
  [ -n "$nv_libs" ] && export LD_LIBRARY_PATH="$nv_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if [ -n "$wheel" ]; then
    "$bin" models fetch onnxruntime-gpu --wheel "$wheel"
  else
    "$bin" models fetch onnxruntime-gpu
  fi
  if command -v nvidia-smi > /dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  fi
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
  --batch-size 128 --no-cache --quiet 2> "$work/extract.err" || { cat "$work/extract.err" >&2; exit 1; }
t1=$(now)
cat "$work/extract.err" >&2
python3 - "$device" "$images" "$t0" "$t1" "$work/extract.err" <<'PY'
import json, sys
d, n, t0, t1 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
line = {"step": "extract", "device": d, "images": n, "seconds": round(t1 - t0, 3),
        "images_per_s": round(n / (t1 - t0), 1)}
said = [l.strip() for l in open(sys.argv[5]) if l.startswith("gen-metrics:")]
if said:  # e.g. the IO binding failed and plain runs took over
    line["messages"] = said
print(json.dumps(line))
PY

# k-NN metrics on the CPU, then (with a GPU) with their blocks on the GPU
# (`--device cuda`: ONNX Runtime Gram sessions; near-ties rechecked in float64
# on the host). knn_run STEP METRICS REAL FAKE ROWS DEVICE writes
# $work/STEP_DEVICE.json and prints the step's line.
knn_run() {
  local step=$1 metrics=$2 real=$3 fake=$4 rows=$5 dev=$6 t0 t1
  local flags=(--device "$dev") hook=()
  [ "$dev" = cuda ] && flags+=(--require-device)
  # ort-cpu: the GPU's wiring (Gram sessions registered with the distance
  # engine, kept sets, float64 blocks) on ONNX Runtime's CPU provider.
  [ "$dev" = ort-cpu ] && flags=(--device cpu) hook=(GEN_METRICS_GRAM_ON_CPU=1)
  t0=$(now)
  env "${hook[@]}" "$bin" metrics --real "$real" --fake "$fake" --metrics "$metrics" --json \
    "${flags[@]}" > "$work/${step}_$dev.json" 2> "$work/${step}_$dev.err" \
    || { cat "$work/${step}_$dev.err" >&2; return 1; }
  t1=$(now)
  cat "$work/${step}_$dev.err" >&2
  python3 - "$step" "$metrics" "$rows" "$dev" "$t0" "$t1" "$work" <<'PY'
import json, sys
step, metrics, m, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
t0, t1, work = float(sys.argv[5]), float(sys.argv[6]), sys.argv[7]
line = {"step": step, "device": d, "rows": m, "dim": 2048, "metrics": metrics,
        "seconds": round(t1 - t0, 3)}
# What the run said about its device path: blocks that fell back to the CPU,
# sets the GPU could not keep, a float64 session it could not open.
said = [l.strip() for l in open(f"{work}/{step}_{d}.err") if l.startswith("gen-metrics:")]
if said:
    line["messages"] = said
if d != "cpu":
    cpu = json.load(open(f"{work}/{step}_cpu.json"))
    gpu = json.load(open(f"{work}/{step}_{d}.json"))
    bad = sorted(k for k in cpu if not k.startswith("kid") and cpu[k] != gpu.get(k))
    rel = [abs(gpu[k] - cpu[k]) / max(abs(cpu[k]), 1e-12)
           for k in cpu if k.startswith("kid") and k in gpu]
    if rel:
        line["kid_max_rel_diff"] = max(rel)
    if bad or set(cpu) != set(gpu) or any(r > 1e-9 for r in rel):
        print(json.dumps(line))
        sys.exit(f"gpu_check: {step}: the {d} report differs from the CPU's: "
                 f"{bad or 'KID beyond 1e-9 relative'}\ncpu: {cpu}\ngpu: {gpu}")
print(json.dumps(line))
PY
}

devices=(cpu)
if [ "$device" = cuda ]; then devices+=(cuda); else devices+=(ort-cpu); fi
for dev in "${devices[@]}"; do
  knn_run knn pr,prdc "$work/feats/a.npy" "$work/feats/b.npy" "$knn" "$dev"
done
# Two sets of K x 2048 for the default selection's float64 pass.
"$synth" features "$work/kid" "$kid" 2048
for dev in "${devices[@]}"; do
  knn_run knn+kid kid,pr,prdc "$work/kid/a.npy" "$work/kid/b.npy" "$kid" "$dev"
done
