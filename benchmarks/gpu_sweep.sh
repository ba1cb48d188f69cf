#!/usr/bin/env bash
# The GPU reference sweep (issue #12): `neurn bench --preset reference-gpu` on one CUDA GPU.
#
#   benchmarks/gpu_sweep.sh [extra neurn bench options, e.g. --workers 12]
#
# Records go to $OUT/ref-gpu-i10000 when $OUT is set (the device machine's return folder), else to
# results/ref-gpu-i10000. It is resumable across calls: every record is written as its run ends, a rerun
# skips the recorded runs, and an interrupted run resumes from its checkpoint (<out>/.ckpt, every 500
# iterations). When $OUT is set, the records (and checkpoints) already in results/ref-gpu-i10000 are
# copied there first, so a fresh machine that got this working tree continues where the last call stopped;
# copy $OUT/ref-gpu-i10000 back into results/ref-gpu-i10000 after each call.
set -euo pipefail
cd "$(dirname "$0")/.."

REPO_OUT=results/ref-gpu-i10000
if [[ -n "${OUT:-}" ]]; then
    DEST="$OUT/ref-gpu-i10000"
    mkdir -p "$DEST"
    if [[ -d "$REPO_OUT" ]]; then
        cp -a "$REPO_OUT"/. "$DEST"/
    fi
else
    DEST="$REPO_OUT"
fi

PY=python
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
# Deterministic cuBLAS (the runs call torch.use_deterministic_algorithms) without a warning per process.
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"

status=0
"$PY" -m neurn.cli bench --preset reference-gpu --out "$DEST" "$@" || status=$?
runs=$(find "$DEST" -maxdepth 1 -name '*-s[0-9]*.json' | wc -l)
if (( runs > 0 )) && table=$("$PY" -m neurn.cli table "$DEST"); then
    printf '%s\n' "$table" > "$DEST/table.md"
    echo "$runs run(s) recorded in $DEST; table: $DEST/table.md"
fi
exit "$status"
