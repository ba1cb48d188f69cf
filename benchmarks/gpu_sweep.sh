#!/usr/bin/env bash
# The GPU reference sweep (issue #12): `neurn bench --preset reference-gpu` on one CUDA GPU, within a budget.
#
#   SWEEP_BUDGET_S=480 benchmarks/gpu_sweep.sh [extra neurn bench options, e.g. --workers 12]
#   (SWEEP_WORK: the results folder; SWEEP_GRACE_S: seconds from SIGTERM to SIGKILL, 15; SWEEP_PYTHON: the
#   interpreter, .venv/bin/python when there is one)
#
# The sweep runs in results/ref-gpu-i10000 of this working tree (records + .ckpt checkpoints). It is
# resumable: every record is written as its run ends and a rerun skips the recorded runs.
#
# On the device machine ($OUT set), the small JSON records, config.json, table.md and the log are packed into
# ONE archive, $OUT/ref-gpu-i10000.tar.gz (the device returns at most 8 files: copied one by one, the first
# call lost a record to that limit), with table.md and sweep.log beside it to read at once. Never the
# checkpoints (tens of MB per run, they made the return folder unreadable once). Unpack the archive into
# results/ref-gpu-i10000 (`tar -xzf .../ref-gpu-i10000.tar.gz -C results/ref-gpu-i10000`) and commit.
#
# The budget: benchmarks/budget.sh (the sweep in its own process session, the whole group killed when the
# budget runs out); the copy to $OUT always runs.
set -uo pipefail
cd "$(dirname "$0")/.."
source benchmarks/budget.sh

WORK="${SWEEP_WORK:-results/ref-gpu-i10000}"
BUDGET="${SWEEP_BUDGET_S:-480}"
GRACE="${SWEEP_GRACE_S:-15}"  # seconds between SIGTERM and SIGKILL
mkdir -p "$WORK"
LOG="$WORK/sweep.log"

PY=python
[[ -x .venv/bin/python ]] && PY=.venv/bin/python
PY="${SWEEP_PYTHON:-$PY}"
# Deterministic cuBLAS (the runs call torch.use_deterministic_algorithms) without a warning per process.
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"

start=$(date +%s)
GRACE_S="$GRACE" run_within "$BUDGET" "$LOG" "$PY" -m neurn.cli bench --preset reference-gpu --out "$WORK" "$@"
status=$?
tail -n 20 "$LOG" | tr '\r' '\n' | tail -n 8 >&2

runs=$(find "$WORK" -maxdepth 1 -name '*-s[0-9]*.json' | wc -l)
if (( runs > 0 )) && table=$("$PY" -m neurn.cli table "$WORK" 2>/dev/null); then
    # Per-arch gains, then the per-family verdict with each arch's ERM plateau from the learning curves.
    verdict=$("$PY" -m neurn.cli table "$WORK" --by-family 2>/dev/null)
    printf '%s\n\n%s\n' "$table" "$verdict" > "$WORK/table.md"
fi
echo "gpu_sweep: $runs run(s) recorded in $WORK after $(( $(date +%s) - start )) s (status $status)"
if [[ -n "${OUT:-}" ]]; then
    mkdir -p "$OUT" && OUT="$(cd "$OUT" && pwd)"  # absolute: the archive is written from inside $WORK
    # README.md stays out: it travelled from the checkout, and unpacking must not overwrite local edits.
    (cd "$WORK" && find . -maxdepth 1 -type f \( -name '*.json' -o -name 'table.md' -o -name 'sweep.log' \) \
        -print0 | tar --null -czf "$OUT/ref-gpu-i10000.tar.gz" -T -)
    for f in table.md sweep.log; do [[ -f "$WORK/$f" ]] && cp "$WORK/$f" "$OUT/"; done
    echo "gpu_sweep: packed $runs record(s) into \$OUT/ref-gpu-i10000.tar.gz"
fi
exit "$status"
