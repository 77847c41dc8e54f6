#!/usr/bin/env bash
# postcopy-results.sh — regenerates docs/results/postcopy-*.{csv,svg,txt}:
# prepage-postcopy compare on real faults (userfaultfd) for the issue's
# targets (fsd N = 64, 20 % noise, 256 MiB, 1 and 4 threads, with and without
# stream ids) and for stream; each comparison runs REPEAT interleaved rounds.
# A benchmark, not a test: it prints numbers and asserts nothing.
#
# Environment: PREPAGED_URL (default: start .build/release/prepaged),
# PREPAGED, POSTCOPY (as in test-postcopy.sh), POLICIES (default: every
# policy the issue names, plus the in-process baselines and forward windows
# for the best-in-hindsight comparison), SEED (default 1), REPEAT (runs per
# policy, the median kept; default 3), OUT (docs/results), ONLY (a regular
# expression: run only the comparisons whose name matches, and no replay),
# FAULT_DEADLINE_MS (default 1000: these figures compare the oracle's policies,
# and on a shared machine a scheduling hiccup past libprepage's default 5 ms
# would open its breaker and turn faults into fallbacks; each run reports its
# fallbacks either way).
set -eu
cd "$(dirname "$0")/.."

OUT=${OUT:-docs/results}
SEED=${SEED:-1}
POLICIES=${POLICIES:-none,forward,readahead,dp,dp-literal,dp-plus,forward:16,forward:32,forward:64,forward:96,forward:128,local-forward:64}
POSTCOPY=${POSTCOPY:-build/bin/prepage-postcopy}
[ -x "$POSTCOPY" ] || make -s -f mk/postcopy.mk postcopy
mkdir -p "$OUT"

server_pid=
trap '[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null; wait 2>/dev/null; true' EXIT
if [ -z "${PREPAGED_URL:-}" ]; then
    PREPAGED=${PREPAGED:-.build/release/prepaged}
    [ -x "$PREPAGED" ] || swift build -c release --product prepaged
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$PREPAGED" --host 127.0.0.1 --port "$port" --shutdown-delay 0 --log-level warning >/dev/null 2>&1 &
    server_pid=$!
    PREPAGED_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do curl -fs "$PREPAGED_URL/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
fi

run() {
    local name=$1
    shift
    if [ -n "${ONLY:-}" ] && ! [[ $name =~ $ONLY ]]; then return 0; fi
    echo "== $name: $POSTCOPY compare --server URL --seed $SEED --policies $POLICIES --repeat ${REPEAT:-3} --fault-deadline-ms ${FAULT_DEADLINE_MS:-1000} $*"
    "$POSTCOPY" compare --server "$PREPAGED_URL" --seed "$SEED" --policies "$POLICIES" --repeat "${REPEAT:-3}" \
        --fault-deadline-ms "${FAULT_DEADLINE_MS:-1000}" \
        --csv "$OUT/postcopy-$name.csv" --svg "$OUT/postcopy-$name.svg" "$@" | tee "$OUT/postcopy-$name.txt"
}

# The targets: FSD N = 64 with 20 % noise on a 256 MiB region (about 400 cases),
# 1 and 4 threads, every policy against the best fixed window in hindsight;
# then the loads where DP loses: no stream ids, STREAM with a stream per thread.
TARGET=${POLICIES_TARGET:-none,dp,dp-plus,forward:32,forward:64,forward:96}
POLICIES=$TARGET run fsd-t1-256m --workload fsd --n 64 --noise 0.2 --threads 1 --mem-mib 256
POLICIES=$TARGET run fsd-t4-256m --workload fsd --n 64 --noise 0.2 --threads 4 --mem-mib 256
POLICIES=$TARGET run fsd-t4-256m-nostreams --workload fsd --n 64 --noise 0.2 --threads 4 --mem-mib 256 --no-streams
POLICIES=$TARGET run stream-t4 --workload stream --threads 4 --mem-mib 64
# STREAM again with a stream per thread and 2 MiB zone (one DP case per array).
POLICIES=$TARGET run stream-t4-zones --workload stream --threads 4 --mem-mib 64 --stream-zone-mib 2
# A short migration (64 MiB, about 100 cases), every policy: learning is a large share.
run fsd-t1 --workload fsd --n 64 --noise 0.2 --threads 1 --mem-mib 64
run fsd-t4 --workload fsd --n 64 --noise 0.2 --threads 4 --mem-mib 64
# The oracle's round trip overlapped with the faulting page's fetch, both modes side by side.
POLICIES=none,dp,dp-plus,forward:64 run fsd-t1-overlap --workload fsd --n 64 --noise 0.2 --threads 1 --mem-mib 64 --overlap-oracle
POLICIES=none,dp,dp-plus,forward:64 run fsd-t4-overlap --workload fsd --n 64 --noise 0.2 --threads 4 --mem-mib 64 --overlap-oracle

# The same workloads' page touches replayed through the simulator (prepage-sim
# replay, its link model: rtt + count x page / bandwidth per fault, no queueing),
# beside the real runs above.
[ -n "${ONLY:-}" ] && exit 0
SIM=${SIM:-.build/release/prepage-sim}
[ -x "$SIM" ] || swift build -c release --product prepage-sim
trace_dir=$(mktemp -d)
{
    echo "# prepage-sim replay of the workloads' touch traces (prepage-postcopy --trace), seed $SEED"
    printf '%-10s %-10s %8s %8s %12s\n' workload policy faults wasted sim_stall_ms
    for spec in "fsd-t1:--workload fsd --threads 1 --mem-mib 64" "fsd-t4:--workload fsd --threads 4 --mem-mib 64" \
                "stream-t4:--workload stream --threads 4 --mem-mib 32"; do
        name=${spec%%:*}
        # shellcheck disable=SC2086
        "$POSTCOPY" --local-window 1 --seed "$SEED" ${spec#*:} --trace "$trace_dir/$name" >/dev/null 2>&1
        for p in none forward readahead dp dp-literal dp-plus; do
            "$SIM" replay --trace "$trace_dir/$name" --policy "$p" >"$trace_dir/out" 2>&1
            printf '%-10s %-10s %8s %8s %12s\n' "$name" "$p" \
                "$(awk '$1=="faults"{print $2}' "$trace_dir/out")" \
                "$(awk '$1=="pages_wasted"{print $2}' "$trace_dir/out")" \
                "$(awk '$1=="stall_ms"{print $2}' "$trace_dir/out")"
        done
    done
} | tee "$OUT/postcopy-replay.txt"
rm -rf "$trace_dir"
