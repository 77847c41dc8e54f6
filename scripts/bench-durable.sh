#!/usr/bin/env bash
# make bench-durable: what --state-dir costs the fault path, measured side by side.
#
# A benchmark, not a test: it prints figures and never fails on them.
# Two release prepaged, one with --state-dir (snapshot interval 1 s, the
# default) and one without, both pinned to CPU 0 with one event loop; wrk
# pinned to CPU 1 posts faults (JSON, spread over 64 sessions, the workload of
# make bench-server) to one and then the other, in interleaved rounds, at 1
# and at 64 connections. Reports per server and per connection count the
# median (and range) over the rounds of requests/s, p50 and p99 latency and
# the server's CPU time per request (user + system of the whole process over
# the run — the snapshot thread included — divided by the requests), then the
# cost of --state-dir as the ratio of the medians.
#
# Environment:
#   PREPAGED        the prepaged binary (default: swift build -c release --product prepaged)
#   BENCH_DURATION  seconds per wrk run (default 5)
#   BENCH_ROUNDS    rounds; each runs both servers at both connection counts (default 5)
#   SERVER_CPU, CLIENT_CPU   CPUs to pin to (default 0 and 1)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${BENCH_DURATION:-5}"
rounds="${BENCH_ROUNDS:-5}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
sessions=64

say() { echo "bench-durable: $*" >&2; }
die() { say "$*"; exit 1; }
for tool in wrk taskset curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install wrk util-linux curl python3)"
done

tmp="$(mktemp -d -t prepage-bench-durable.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$tmp"
}
trap cleanup EXIT

if [[ -z "${PREPAGED:-}" ]]; then
    say "building prepaged (release)"
    (cd "$root" && swift build -c release --product prepaged >&2)
    PREPAGED="$(cd "$root" && swift build -c release --show-bin-path)/prepaged"
fi
[[ -x "$PREPAGED" ]] || die "no prepaged executable at $PREPAGED"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'; }
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
ticks_per_second="$(getconf CLK_TCK)"

declare -A port pid
for name in off on; do
    port[$name]="$(free_port)"
    extra=()
    [[ $name == on ]] && extra=(--state-dir "$tmp/state")
    taskset -c "$server_cpu" "$PREPAGED" --host 127.0.0.1 --port "${port[$name]}" --threads 1 --log-level error \
        "${extra[@]}" >"$tmp/prepaged-$name.log" 2>&1 &
    pid[$name]=$!
    pids+=("${pid[$name]}")
done
for name in off on; do
    for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:${port[$name]}/readyz" && break; sleep 0.1; done
    for i in $(seq 0 $((sessions - 1))); do
        curl -fs -o /dev/null -X PUT -H 'Content-Type: application/json' --data '{}' \
            "http://127.0.0.1:${port[$name]}/sessions/bench-$i" || die "cannot create sessions on $name"
    done
done

cat >"$tmp/post.lua" <<EOF
local sessions = $sessions
local counter = 0
local headers = { ["Content-Type"] = "application/json" }
request = function()
    counter = counter + 1
    local s = counter % sessions
    local n = math.floor(counter / sessions)
    local page = (math.floor(n / 32) * 7919 + (n % 32) * 3) % 1000000
    local body = string.format('{"page": %d, "stream": %d}', page, n % 4)
    return wrk.format("POST", "/sessions/bench-" .. s .. "/fault", headers, body)
end
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f non2xx=%d errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

results="$tmp/results.txt"
: >"$results"
run() {  # NAME CONNS SECONDS [record]
    local name="$1" conns="$2" seconds="$3" before after out
    before="$(cpu_ticks "${pid[$name]}")"
    out="$(taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$tmp/post.lua" "http://127.0.0.1:${port[$name]}")"
    after="$(cpu_ticks "${pid[$name]}")"
    [[ "${4:-}" == record ]] || return 0
    echo "$name $conns $(grep '^RESULT' <<<"$out") cpu_ticks=$((after - before))" >>"$results"
}

say "warm-up"
for name in off on; do for conns in 1 $sessions; do run "$name" "$conns" 1; done; done
for r in $(seq 1 "$rounds"); do
    for conns in 1 $sessions; do
        # Alternate which goes first, so that drift of the machine does not favour one.
        if (( r % 2 )); then order="off on"; else order="on off"; fi
        for name in $order; do
            say "round $r/$rounds: --state-dir $name, $conns connection(s), ${duration} s"
            run "$name" "$conns" "$duration" record
        done
    done
done
snapshots="$(curl -fs "http://127.0.0.1:${port[on]}/metrics" | awk '/^prepage_state_snapshots_total/ { n += $2 } END { print n + 0 }')"

python3 - "$results" "$ticks_per_second" "$snapshots" "$duration" "$rounds" <<'PY'
import statistics, sys
path, hz, snapshots, duration, rounds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
rows = {}
for line in open(path):
    parts = line.split()
    name, conns = parts[0], int(parts[1])
    f = dict(kv.split("=") for kv in parts[3:])
    req = int(f["requests"]); sec = int(f["duration_us"]) / 1e6
    rows.setdefault((name, conns), []).append({
        "rps": req / sec, "p50": float(f["p50_us"]), "p99": float(f["p99_us"]),
        "cpu": int(f["cpu_ticks"]) / hz / max(req, 1) * 1e6, "bad": int(f["non2xx"]) + int(f["errors"])})
def med(xs): return statistics.median(xs)
print(f"--state-dir on vs off: {rounds} interleaved rounds of {duration} s per server and connection count; medians (range)")
print("| connections | --state-dir | req/s | p50 µs | p99 µs | CPU µs/request |")
print("|---|---|---|---|---|---|")
for conns in sorted({c for _, c in rows}):
    for name in ("off", "on"):
        rs = rows[(name, conns)]
        cell = lambda k, fmt: f"{fmt.format(med([r[k] for r in rs]))} ({fmt.format(min(r[k] for r in rs))}–{fmt.format(max(r[k] for r in rs))})"
        print(f"| {conns} | {name} | {cell('rps', '{:.0f}')} | {cell('p50', '{:.1f}')} | {cell('p99', '{:.1f}')} | {cell('cpu', '{:.2f}')} |")
        bad = sum(r["bad"] for r in rs)
        if bad: print(f"warning: {name} c={conns}: {bad} non-2xx answers or socket errors")
for conns in sorted({c for _, c in rows}):
    off, on = rows[("off", conns)], rows[("on", conns)]
    ratio = lambda k: med([r[k] for r in on]) / med([r[k] for r in off])
    print(f"cost of --state-dir at {conns} connection(s): CPU per request x{ratio('cpu'):.3f}, p50 x{ratio('p50'):.3f}, "
          f"p99 x{ratio('p99'):.3f}, req/s x{ratio('rps'):.3f}")
print(f"snapshots written by the --state-dir server meanwhile: {snapshots}")
PY
