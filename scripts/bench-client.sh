#!/usr/bin/env bash
# bench-client.sh — `make bench-client`: what libprepage costs per fault.
#
# One client, one connection, 100,000 sequential POST /sessions/{id}/fault
# against a local release prepaged (one event loop, pinned to CPU 0; clients
# pinned to CPU 1), in the same run:
#   libprepage   pp_fault_page(): format into the client's buffer, POST, scan the answer
#   bare curl    the same POST through a bare libcurl easy handle, answer discarded
#                (the two alternate in blocks of 1,000 faults, each on its own connection)
#   wrk -c1      wrk's round trip for the same requests: the floor of the loopback path
# Reports faults/s, p50/p99 round trip, client CPU time per fault, and malloc calls per fault in
# both client modes (an LD_PRELOAD counter: Tests/CAllocationCounter built with -DAC_REPORT_AT_EXIT).
# A benchmark, not a test: it prints numbers and asserts none.
# FAULTS, SEED, WRK_SECONDS, DEADLINE_MS and PREPAGED override.
set -euo pipefail
cd "$(dirname "$0")/.."

FAULTS=${FAULTS:-100000}
SEED=${SEED:-1}
WRK_SECONDS=${WRK_SECONDS:-5}
PREPAGED=${PREPAGED:-.build/release/prepaged}

if [ ! -x "$PREPAGED" ]; then
    echo "building release prepaged…" >&2
    swift build -c release --product prepaged >&2
fi
make -s -f mk/lib.mk lib >&2
work=$(mktemp -d)
server_pid=
cleanup() {
    if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

cc -std=c11 -O2 -Ibuild/include Benchmarks/client-bench/bench_client.c build/lib/libprepage.a \
    $(pkg-config --cflags --libs libcurl jansson) -lpthread -o "$work/bench_client"
cc -shared -fPIC -O2 -DAC_REPORT_AT_EXIT -ITests/CAllocationCounter/include Tests/CAllocationCounter/allocation_counter.c \
    -o "$work/count_alloc.so"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
taskset -c 0 "$PREPAGED" --host 127.0.0.1 --port "$port" --shutdown-delay 0 --threads 1 --log-level error >"$work/prepaged.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 500); do curl -fs "$url/livez" >/dev/null 2>&1 && break; sleep 0.02; done

pin() { taskset -c 1 "$@"; }

echo "# prepaged $(basename "$PREPAGED") on CPU 0 (1 event loop), clients on CPU 1; $FAULTS faults, seed $SEED"
# Both clients in one process, alternating blocks of 1,000 faults: machine noise falls on both alike.
# A 1 s fault deadline: this measures the path to the oracle, and with the default 5 ms a
# scheduling hiccup on a shared machine opens the breaker and turns faults into local fallbacks.
DEADLINE_MS=${DEADLINE_MS:-1000}
pin "$work/bench_client" "$url" --faults "$FAULTS" --seed "$SEED" --mode both --session bench \
    --deadline-ms "$DEADLINE_MS" | tee "$work/both.txt"
grep '^pp ' "$work/both.txt" >"$work/pp.txt"
grep '^curl ' "$work/both.txt" >"$work/curl.txt"

curl -fs -X PUT -H 'Content-Type: application/json' -d '{}' "$url/sessions/bench-wrk" >/dev/null
cat >"$work/fault.lua" <<EOF
math.randomseed($SEED)
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  return wrk.format(nil, "/sessions/bench-wrk/fault", nil,
    string.format('{"page":%d,"stream":0}', math.random(0, 262143)))
end
EOF
pin wrk -t1 -c1 -d"${WRK_SECONDS}s" --latency -s "$work/fault.lua" "$url" >"$work/wrk.txt"
wrk_rps=$(awk '/Requests\/sec/ {print $2}' "$work/wrk.txt")
# wrk prints latencies with units (us, ms); normalise to µs.
to_us() { awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /ms$/) n *= 1000; else if (v ~ /[0-9]s$/ && v !~ /us$/) n *= 1000000; printf "%.1f", n }'; }
wrk_p50=$(to_us "$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")")
wrk_p99=$(to_us "$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")")
printf 'wrk   -t1 -c1 %ss  %.0f req/s  p50 %s us  p99 %s us\n' "$WRK_SECONDS" "$wrk_rps" "$wrk_p50" "$wrk_p99"

pp_p50=$(awk '{for (i = 1; i < NF; i++) if ($i == "p50") print $(i + 1)}' "$work/pp.txt")
curl_p50=$(awk '{for (i = 1; i < NF; i++) if ($i == "p50") print $(i + 1)}' "$work/curl.txt")
# Allocations per fault: (count at 11,000 faults − count at 1,000) / 10,000, both modes.
per_fault() {
    local a b
    a=$(LD_PRELOAD="$work/count_alloc.so" "$work/bench_client" "$url" --faults 1000 --mode "$1" --session "alloc-$1-a" --deadline-ms "$DEADLINE_MS" 2>&1 >/dev/null | awk '/allocations/ {print $2}')
    b=$(LD_PRELOAD="$work/count_alloc.so" "$work/bench_client" "$url" --faults 11000 --mode "$1" --session "alloc-$1-b" --deadline-ms "$DEADLINE_MS" 2>&1 >/dev/null | awk '/allocations/ {print $2}')
    awk -v a="$a" -v b="$b" 'BEGIN { printf "%.2f", (b - a) / 10000 }'
}
echo "allocations per fault: libprepage $(per_fault pp), bare libcurl $(per_fault curl)"
awk -v pp="$pp_p50" -v cu="$curl_p50" -v w="$wrk_p50" 'BEGIN {
    printf "client overhead at p50: libprepage %+.1f us over wrk (target <= 35), bare libcurl %+.1f us, libprepage over bare libcurl %+.1f us\n", pp - w, cu - w, pp - cu }'
