#!/usr/bin/env bash
# The GPU device check (issue 13), for when a GPU machine is lent: bench:ttft at 4K / 16K / 32K
# prompt tokens (16 / 64 / 127 blocks of 256 tokens plus a 50-token question) on the WebGPU provider,
# and on CUDA where onnxruntime-node's CUDA libraries are present, block vs full mode (and block
# prefill one per run vs batched); then what `--provider auto` picks on that machine and why; then
# WebGPU decode with the KV kept on the device vs copied each step. Results under $OUT (default
# bench-output/device): machine.txt, ttft-<provider>.json / .md / .log, device-kv.*, summary.txt.
#
#   bash bench/device-check.sh [--smoke]
#     --smoke: the tiny generated model at 2 and 4 blocks, on CPU, WebGPU and auto: the same steps
#              end to end in about a minute on any machine (lavapipe is enough), to try the script.
#
# On a GPU machine without Node.js or a registry (../shared/device/README.md): on the development
# machine `bash ../shared/device/pack.sh`, copy the tree, then on the GPU machine
#   bash .device/on-device.sh bash bench/device-check.sh
# The bench model (Qwen2.5-0.5B's shape, 1.5 GB) is generated there, not copied. TypeScript runs on
# Node 22's own type transform, so tsx (a dev dependency, not packed) is not needed. The figures go
# to docs/BENCHMARKS.md with the GPU's name from machine.txt.
set -uo pipefail # not -e: one provider failing must not lose the others' results
cd "$(dirname "$0")/.."
out=${OUT:-bench-output/device}
mkdir -p "$out"

if [ "${1:-}" = --smoke ]; then
  shape=tiny blocks=2,4 chunk=512 providers=(cpu webgpu auto)
  export BENCH_RUNS=${BENCH_RUNS:-2}
else
  # full mode above 1024 tokens runs in causal chunks of 1024: one forward's attention scores
  # (14 heads x n x n floats: 15 GB at 16K) outgrow a GPU buffer; each chunk's stay under 2 GB at 32K
  shape=bench blocks=16,64,127 chunk=1024 providers=(webgpu cuda auto)
fi
limit=${DEVICE_CHECK_TIMEOUT:-400} # seconds per provider: the device lease is short

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  uname -srm
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo 'nvidia-smi: none'
  vulkaninfo --summary 2>/dev/null | sed -n '/^Devices:/,$p' || true
  echo "node $(node --version)"
} >"$out/machine.txt" 2>&1

cuda_libraries() {
  node -e "
    const path = require('node:path'), fs = require('node:fs');
    const bin = path.join(path.dirname(require.resolve('onnxruntime-node')), '..', 'bin', 'napi-v6', process.platform, process.arch);
    process.exit(fs.existsSync(path.join(bin, 'libonnxruntime_providers_cuda.so')) ? 0 : 1);"
}

: >"$out/summary.txt"
for provider in "${providers[@]}"; do
  if [ "$provider" = cuda ] && ! cuda_libraries; then
    echo "cuda: skipped (onnxruntime-node's CUDA libraries are not installed)" | tee -a "$out/summary.txt"
    continue
  fi
  echo "== $provider" >&2
  # auto: the first context only, enough to record its decision (and time whatever it chose)
  contexts=$blocks
  [ "$provider" = auto ] && contexts=${blocks%%,*}
  timeout "$limit" node --experimental-transform-types --no-warnings bench/ttft.ts \
    --provider "$provider" --shape "$shape" --blocks "$contexts" --full-chunk "$chunk" --no-transformers-js \
    --out "$out/ttft-$provider.json" >"$out/ttft-$provider.md" 2>"$out/ttft-$provider.log"
  rc=$?
  echo "$provider: exit $rc$( [ $rc = 124 ] && echo " (over ${limit} s)"), $(grep -m1 '^provider:' "$out/ttft-$provider.log" || echo 'no provider line')" | tee -a "$out/summary.txt"
  cat "$out/ttft-$provider.md"
done
# KV kept on the WebGPU device between decode steps vs copied each step (bench/device-kv.ts)
pasts=1024,4096
[ "${1:-}" = --smoke ] && pasts=256
timeout "$limit" node --experimental-transform-types --no-warnings bench/device-kv.ts --shape "$shape" --past "$pasts" --tokens 16 \
  --out "$out/device-kv.json" >"$out/device-kv.md" 2>"$out/device-kv.log"
echo "device-kv: exit $?" | tee -a "$out/summary.txt"
cat "$out/device-kv.md"
echo "results in $out" >&2
