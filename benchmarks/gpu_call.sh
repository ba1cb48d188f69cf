#!/usr/bin/env bash
# The whole GPU device call of issue #12 in one command: measure, then sweep, within one budget.
#
#   CALL_BUDGET_S=540 bash benchmarks/gpu_call.sh        (on the device machine, with `.whl` carried)
#
# 1. Installs the carried wheels (.whl/, made here by `bash benchmarks/gpu_wheels.sh`) into /tmp/site, when
#    there are any, and points PYTHONPATH and the caches there.
# 2. benchmarks/bench_train.py --device cuda --group 6 (fp32) on BENCH_ARCHS (default digitnet,resnet18,mnasnet1_0,
#    vit_p4), erm, within BENCH_BUDGET_S (default 150): per-iteration GPU time per arch, the harness against a
#    bare loop, the channels_last / bf16 / cuda_graph variants and a group of 6 against one run. JSON and
#    table in $OUT/bench_gpu.json and $OUT/bench_gpu.md (with its log).
# 3. benchmarks/gpu_sweep.sh (the reference-gpu preset, --group 6) with the rest of CALL_BUDGET_S: records
#    packed into $OUT/ref-gpu-i10000.tar.gz, table.md and sweep.log beside it.
# Five files come back, within the device's eight. GPU_CALL_DEVICE=cpu runs the same on CPU (the test does;
# BENCH_ITERS, BENCH_WARMUP, MIN_SWEEP_S, the least time worth starting the sweep for, and SWEEP_BUDGET_S, a cap
# on the sweep's share, shrink it).
set -uo pipefail
cd "$(dirname "$0")/.."
source benchmarks/budget.sh

CALL_BUDGET="${CALL_BUDGET_S:-540}"
BENCH_BUDGET="${BENCH_BUDGET_S:-150}"
DEVICE="${GPU_CALL_DEVICE:-cuda}"
ARCHS="${BENCH_ARCHS:-digitnet,resnet18,mnasnet1_0,vit_p4}"
OUT="${OUT:-$PWD/gpu-call-out}"
mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"
export OUT
start=$(date +%s)

if compgen -G ".whl/*.whl" > /dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl \
        || { echo "gpu_call: installing the carried wheels failed" >&2; exit 1; }
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
    export NEURN_CACHE="${NEURN_CACHE:-/tmp/neurn-cache}" ARCHSIM_CACHE="${ARCHSIM_CACHE:-/tmp/archsim-cache}"
fi
PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
PY="${SWEEP_PYTHON:-$PY}"
export SWEEP_PYTHON="$PY" CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"

# fp32, as the grouped sweep trains (groups refuse AMP); the bf16 variant still shows what autocast would give.
run_within "$BENCH_BUDGET" "$OUT/bench_gpu.log" "$PY" benchmarks/bench_train.py --device "$DEVICE" \
    --archs "$ARCHS" --methods erm --threads 1 --iters "${BENCH_ITERS:-100}" --warmup "${BENCH_WARMUP:-10}" --repeats 1 --group 6 \
    --json "$OUT/bench_gpu.json"
echo "gpu_call: bench_train exit status $? after $(( $(date +%s) - start )) s"
# The table is the log's stdout; the log also holds any error. One file back instead of two.
mv "$OUT/bench_gpu.log" "$OUT/bench_gpu.md"

left=$(( CALL_BUDGET - ($(date +%s) - start) ))
if (( left < ${MIN_SWEEP_S:-60} )); then
    echo "gpu_call: ${left} s left of ${CALL_BUDGET} s; no time for the sweep" >&2
    exit 124
fi
sweep=$(( left - ${SWEEP_GRACE_S:-15} - 20 ))  # 20 s to write the table and pack the archive
if [[ -n "${SWEEP_BUDGET_S:-}" ]] && (( SWEEP_BUDGET_S < sweep )); then sweep=$SWEEP_BUDGET_S; fi
SWEEP_BUDGET_S=$sweep bash benchmarks/gpu_sweep.sh --device "$DEVICE" "$@"
