#!/usr/bin/env bash
# make bench-server: prepaged against nginx on loopback, in the same run.
#
# A benchmark, not a test: it prints figures and never fails on them.
# prepaged is pinned to CPU 0 and wrk to CPU 1 (taskset). Both servers answer
# POST /sessions/{id}/fault; nginx returns a fixed 60-byte JSON (the ceiling of
# what the kernel and loopback allow), prepaged decides for real, with JSON
# bodies {"page": N, "stream": S} spread over 64 sessions.
#
# Reports, at 1 and 64 connections: requests/s, p50/p99 latency, the server's
# CPU time per request (user + system from /proc/PID/stat over the run,
# divided by the requests). Then the peak RSS of both (VmHWM), the resident
# memory of idle sessions (VmRSS delta / sessions), and batch throughput
# through /faults with 65,536 pages per request (decisions/s).
#
# Environment:
#   PREPAGED         the prepaged binary (default: swift build -c release --product prepaged)
#   BENCH_DURATION   seconds per wrk run (default 10)
#   IDLE_SESSIONS    idle sessions created for the memory figure (default 1000000; 0 skips)
#   BATCH_PAGES      pages per /faults request (default 65536; 0 skips)
#   SERVER_CPU, CLIENT_CPU   CPUs to pin to (default 0 and 1)
#   KEEP_TMP=1       keep the temporary directory (configs, logs, scripts)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
duration="${BENCH_DURATION:-10}"
idle_sessions="${IDLE_SESSIONS:-1000000}"
batch_pages="${BATCH_PAGES:-65536}"
server_cpu="${SERVER_CPU:-0}"
client_cpu="${CLIENT_CPU:-1}"
sessions=64
nginx_body='{"start":4096,"count":16,"outcome":"larger","ntest":8,"n":1}'

say() { echo "bench-server: $*" >&2; }
die() { say "$*"; exit 1; }

for tool in wrk nginx taskset curl python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is missing (apt-get install wrk nginx-light util-linux curl python3)"
done
[[ "$duration" =~ ^[1-9][0-9]*$ ]] || die "BENCH_DURATION must be a positive integer"
[[ "$idle_sessions" =~ ^[0-9]+$ ]] || die "IDLE_SESSIONS must be a non-negative integer"
[[ "$batch_pages" =~ ^[0-9]+$ && "$batch_pages" -le 65536 ]] || die "BATCH_PAGES must be 0 … 65536"
[[ ${#nginx_body} -eq 60 ]] || die "the nginx body must be 60 bytes, is ${#nginx_body}"

tmp="$(mktemp -d -t prepage-bench.XXXXXX)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ "${KEEP_TMP:-0}" == 1 ]]; then say "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT

# --- build -------------------------------------------------------------------
if [[ -z "${PREPAGED:-}" ]]; then
    say "building prepaged (release)"
    (cd "$root" && swift build -c release --product prepaged >&2)
    PREPAGED="$(cd "$root" && swift build -c release --show-bin-path)/prepaged"
fi
[[ -x "$PREPAGED" ]] || die "no prepaged executable at $PREPAGED"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

wait_http() {  # URL: wait up to 10 s for a 200
    for _ in $(seq 1 100); do
        curl -fs -o /dev/null --max-time 1 "$1" && return 0
        sleep 0.1
    done
    die "nothing answers $1"
}

# utime + stime of a process (all its threads), in clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"
}
status_kib() {  # PID FIELD: a /proc/PID/status field in KiB
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}
ticks_per_second="$(getconf CLK_TCK)"

# --- servers -----------------------------------------------------------------
prepaged_port="$(free_port)"
say "starting prepaged on 127.0.0.1:$prepaged_port, pinned to CPU $server_cpu"
taskset -c "$server_cpu" "$PREPAGED" --host 127.0.0.1 --port "$prepaged_port" --shutdown-delay 0 --threads 1 \
    --max-sessions $((idle_sessions + sessions + 16)) --log-level error \
    >"$tmp/prepaged.log" 2>&1 &
prepaged_pid=$!
pids+=("$prepaged_pid")

nginx_port="$(free_port)"
mkdir -p "$tmp/nginx"
cat >"$tmp/nginx/nginx.conf" <<EOF
# One process, no daemon, everything in the temporary directory: runs without root.
daemon off;
master_process off;
worker_processes 1;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    client_body_temp_path $tmp/nginx/body;
    proxy_temp_path $tmp/nginx/proxy;
    fastcgi_temp_path $tmp/nginx/fastcgi;
    uwsgi_temp_path $tmp/nginx/uwsgi;
    scgi_temp_path $tmp/nginx/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        location ~ ^/sessions/[^/]+/fault\$ {
            default_type application/json;
            return 200 '$nginx_body';
        }
        location = /livez {
            default_type application/json;
            return 200 '{"status":"ok"}';
        }
    }
}
EOF
say "starting nginx on 127.0.0.1:$nginx_port, pinned to CPU $server_cpu"
taskset -c "$server_cpu" nginx -p "$tmp/nginx" -c "$tmp/nginx/nginx.conf" -e "$tmp/nginx/error.log" \
    >"$tmp/nginx/stdout.log" 2>&1 &
nginx_pid=$!
pids+=("$nginx_pid")

wait_http "http://127.0.0.1:$prepaged_port/livez"
wait_http "http://127.0.0.1:$nginx_port/livez"

say "creating $sessions sessions"
for i in $(seq 0 $((sessions - 1))); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H 'Content-Type: application/json' \
        --data '{}' "http://127.0.0.1:$prepaged_port/sessions/bench-$i")"
    [[ "$code" == 201 || "$code" == 200 ]] || die "PUT /sessions/bench-$i answered $code"
done
check="$(curl -s -X POST -H 'Content-Type: application/json' --data '{"page": 1, "stream": 0}' \
    "http://127.0.0.1:$prepaged_port/sessions/bench-0/fault")"
[[ "$check" == *'"outcome"'* ]] || die "POST /sessions/bench-0/fault answered: $check"

# --- wrk scripts -------------------------------------------------------------
# Every run prints one RESULT line from done(): exact counts and percentiles.
cat >"$tmp/result.lua" <<'EOF'
done = function(summary, latency, requests)
    local e = summary.errors
    io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%.1f p99_us=%.1f non2xx=%d errors=%d\n",
        summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
        e.status, e.connect + e.read + e.write + e.timeout))
end
EOF

# Faults spread over the 64 sessions: each session sees runs of sequential
# pages with jumps, on 4 streams. Deterministic (a counter, no randomness).
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
EOF
cat "$tmp/result.lua" >>"$tmp/post.lua"

run_wrk() {  # NAME URL CONNECTIONS SCRIPT SECONDS PID  → "req/s p50 p99 cpu_us_per_req requests non2xx errors"
    local name="$1" url="$2" conns="$3" script="$4" seconds="$5" pid="$6"
    local before after out result
    before="$(cpu_ticks "$pid")"
    out="$(taskset -c "$client_cpu" wrk -t1 -c"$conns" -d"${seconds}s" --latency -s "$script" "$url")"
    after="$(cpu_ticks "$pid")"
    echo "$out" >"$tmp/wrk-$name-c$conns.txt"
    result="$(grep '^RESULT' <<<"$out")" || die "wrk printed no RESULT for $name:\n$out"
    python3 - "$result" "$before" "$after" "$ticks_per_second" <<'PY'
import sys
fields = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
requests = int(fields["requests"])
seconds = int(fields["duration_us"]) / 1e6
cpu_seconds = (int(sys.argv[3]) - int(sys.argv[2])) / int(sys.argv[4])
print(f'{requests / seconds:.0f} {float(fields["p50_us"]):.1f} {float(fields["p99_us"]):.1f} '
      f'{cpu_seconds / max(requests, 1) * 1e6:.2f} {requests} {fields["non2xx"]} {fields["errors"]}')
PY
}

declare -A R
for conns in 1 $sessions; do
    for target in prepaged nginx; do
        if [[ $target == prepaged ]]; then port=$prepaged_port pid=$prepaged_pid; else port=$nginx_port pid=$nginx_pid; fi
        say "$target, $conns connection(s): warm-up 1 s, then ${duration} s"
        run_wrk "$target-warmup" "http://127.0.0.1:$port" "$conns" "$tmp/post.lua" 1 "$pid" >/dev/null
        R[$target,$conns]="$(run_wrk "$target" "http://127.0.0.1:$port" "$conns" "$tmp/post.lua" "$duration" "$pid")"
        read -r _ _ _ _ _ non2xx errors <<<"${R[$target,$conns]}"
        [[ "$non2xx" == 0 && "$errors" == 0 ]] || say "warning: $target c=$conns had $non2xx non-2xx answers and $errors socket errors"
    done
done
prepaged_hwm="$(status_kib "$prepaged_pid" VmHWM)"
nginx_hwm="$(status_kib "$nginx_pid" VmHWM)"

# --- batch -------------------------------------------------------------------
batch=""
if [[ "$batch_pages" -gt 0 ]]; then
    python3 - "$batch_pages" "$tmp/batch.json" <<'PY'
import random, sys
n, path = int(sys.argv[1]), sys.argv[2]
rng = random.Random(1)  # seeded: the same body every run
pages, page = [], 0
while len(pages) < n:
    if rng.random() < 0.05:
        page = rng.randrange(0, 4_000_000)  # a jump
    else:
        page += rng.choice((1, 1, 1, 2, 3))  # mostly sequential
    pages.append(page)
streams = [i % 8 for i in range(n)]
with open(path, "w") as f:
    f.write('{"pages": [' + ",".join(map(str, pages)) + '], "streams": [' + ",".join(map(str, streams)) + "]}")
PY
    cat >"$tmp/batch.lua" <<EOF
local f = assert(io.open("$tmp/batch.json", "rb"))
local body = f:read("*a")
f:close()
local counter = 0
local headers = { ["Content-Type"] = "application/json" }
request = function()
    counter = counter + 1
    return wrk.format("POST", "/sessions/bench-" .. (counter % $sessions) .. "/faults", headers, body)
end
EOF
    cat "$tmp/result.lua" >>"$tmp/batch.lua"
    say "batch: $batch_pages pages per POST /faults, 1 connection, ${duration} s"
    batch="$(run_wrk batch "http://127.0.0.1:$prepaged_port" 1 "$tmp/batch.lua" "$duration" "$prepaged_pid")"
fi

# --- idle sessions -----------------------------------------------------------
idle=""
if [[ "$idle_sessions" -gt 0 ]]; then
    rss_before="$(status_kib "$prepaged_pid" VmRSS)"
    say "creating $idle_sessions idle sessions"
    read -r _ idle_created idle_refused idle_rate < <(python3 "$root/scripts/bench-idle-sessions.py" "$prepaged_port" "$idle_sessions")
    sleep 1
    rss_after="$(status_kib "$prepaged_pid" VmRSS)"
    live="$(curl -s "http://127.0.0.1:$prepaged_port/metrics" | awk '$1 == "prepage_sessions_live" { print $2 }')"
    idle="$rss_before $rss_after $idle_created $idle_refused $idle_rate ${live:-?}"
fi

# --- report ------------------------------------------------------------------
python3 - "$duration" "$prepaged_hwm" "$nginx_hwm" "$batch_pages" "$idle_sessions" \
    "${R[prepaged,1]}" "${R[nginx,1]}" "${R[prepaged,$sessions]}" "${R[nginx,$sessions]}" \
    "$batch" "$idle" <<'PY'
import sys
duration, p_hwm, n_hwm, batch_pages, idle_n = sys.argv[1:6]
runs = {k: v.split() for k, v in zip(("p1", "n1", "p64", "n64"), sys.argv[6:10])}
batch, idle = sys.argv[10], sys.argv[11]
print()
print(f"prepaged vs nginx (fixed 60-byte JSON), POST /sessions/{{id}}/fault, wrk -t1, {duration} s per run")
print(f"{'server':<10}{'conns':>6}{'req/s':>11}{'p50 µs':>9}{'p99 µs':>9}{'CPU µs/req':>12}")
for key, name, conns in (("p1", "prepaged", 1), ("n1", "nginx", 1), ("p64", "prepaged", 64), ("n64", "nginx", 64)):
    rps, p50, p99, cpu = (float(x) for x in runs[key][:4])
    print(f"{name:<10}{conns:>6}{rps:>11,.0f}{p50:>9.1f}{p99:>9.1f}{cpu:>12.2f}")
def ratio(a, b):
    return a / b if b else float("nan")
f = lambda key, i: float(runs[key][i])
r64 = ratio(f("p64", 0), f("n64", 0))
cpu64 = ratio(f("p64", 3), f("n64", 3))
p50_1 = ratio(f("p1", 1), f("n1", 1))
print()
print("ratios to nginx (target):")
print(f"  64 connections, req/s        {r64:6.2f}  (≥ 0.9)  {'met' if r64 >= 0.9 else 'MISSED'}")
print(f"  64 connections, CPU per req  {cpu64:6.2f}  (≤ 1.2)  {'met' if cpu64 <= 1.2 else 'MISSED'}")
print(f"  1 connection, p50            {p50_1:6.2f}  (≤ 1.2)  {'met' if p50_1 <= 1.2 else 'MISSED'}")
print(f"  1 connection, req/s          {ratio(f('p1', 0), f('n1', 0)):6.2f}")
print()
print(f"peak RSS (VmHWM): prepaged {int(p_hwm) / 1024:.1f} MiB, nginx {int(n_hwm) / 1024:.1f} MiB")
if batch:
    rps, p50, p99, cpu = (float(x) for x in batch.split()[:4])
    decisions = rps * int(batch_pages)
    print(f"batch: {batch_pages} pages per POST /faults, 1 connection: {rps:,.1f} req/s, p50 {p50 / 1000:.1f} ms, "
          f"{decisions:,.0f} decisions/s (target ≥ 2,000,000: {'met' if decisions >= 2e6 else 'MISSED'}), "
          f"CPU {cpu / int(batch_pages) * 1000:.1f} ns/decision")
if idle:
    before, after, created, refused, rate, live = idle.split()
    per = (int(after) - int(before)) * 1024 / int(idle_n)
    print(f"idle sessions: {int(created):,} created ({refused} refused, {int(rate):,}/s; live per /metrics: {live}), "
          f"RSS {int(before) / 1024:.1f} → {int(after) / 1024:.1f} MiB: {per:,.0f} bytes per session "
          f"(target ≤ 1,024: {'met' if per <= 1024 else 'MISSED'})")
PY
