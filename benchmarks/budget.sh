# Sourced by gpu_sweep.sh and gpu_call.sh: run a command within a time budget, killing all its processes after.
#
#   run_within SECONDS LOG command [args...]   -> the command's exit status, or 124 when the budget ran out
#
# Why not `timeout`: the command spawns worker processes; a plain `timeout` once left workers alive holding the
# output pipe, the device call ran into its hard limit and nothing came back. So the command runs in its own
# session (setsid) with its output in LOG, and after SECONDS the whole process group gets SIGTERM, then SIGKILL
# GRACE_S seconds later (default 15).
run_within() {
    local budget="$1" log="$2" start leader status=0
    shift 2
    start=$(date +%s)
    setsid "$@" >"$log" 2>&1 < /dev/null &
    leader=$!
    while kill -0 "$leader" 2>/dev/null; do
        if (( $(date +%s) - start >= budget )); then
            echo "budget of ${budget} s reached; stopping $1 (what it finished is kept)" >&2
            kill -TERM -- "-$leader" 2>/dev/null
            sleep "${GRACE_S:-15}"
            kill -KILL -- "-$leader" 2>/dev/null
            wait "$leader" 2>/dev/null
            return 124
        fi
        sleep 1
    done
    wait "$leader"; status=$?
    return "$status"
}
