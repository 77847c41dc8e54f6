#!/usr/bin/env bash
# test-postcopy.sh — prepage-postcopy against a real prepaged: a short run of
# every workload under every policy the server accepts, and the checks that
# must fail when they should (a corrupted page, no userfaultfd).
#
# Needs userfaultfd (root, or vm.unprivileged_userfaultfd=1), as in CI.
#
# Environment:
#   PREPAGED_URL   use a prepaged already running there (default: start one)
#   PREPAGED       the prepaged binary to start (default: .build/debug/prepaged,
#                  built with `swift build --product prepaged` when missing)
#   POSTCOPY       the prepage-postcopy binary (default: build/bin/prepage-postcopy,
#                  built with `make -f mk/postcopy.mk postcopy` when missing)
#   POLICIES       policies to try (default: none,forward,readahead,dp,dp-literal,dp-plus,
#                  local-none,local-forward:16 — the last two in-process baselines);
#                  one the server rejects with 400 is reported as skipped
#   MEM_MIB        region size (default 4)
#
# Prints one line per check and closes with "N passed, N failed"; exits
# non-zero when any check failed.
set -u
cd "$(dirname "$0")/.."

POLICIES=${POLICIES:-none,forward,readahead,dp,dp-literal,dp-plus,local-none,local-forward:16}
MEM_MIB=${MEM_MIB:-4}
WORKLOADS="fsd stream random phases"
passed=0
failed=0
skipped=0
tmp=$(mktemp -d)
server_pid=

cleanup() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2>/dev/null
        wait "$server_pid" 2>/dev/null
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "ok      $*"; }
fail() { failed=$((failed + 1)); echo "FAILED  $*"; }
skip() { skipped=$((skipped + 1)); echo "skipped $*"; }

# --- binaries -------------------------------------------------------------
POSTCOPY=${POSTCOPY:-build/bin/prepage-postcopy}
if [ ! -x "$POSTCOPY" ]; then
    make -s -f mk/postcopy.mk postcopy >"$tmp/build.log" 2>&1 || {
        cat "$tmp/build.log"
        fail "build prepage-postcopy"
        echo "$passed passed, $failed failed"
        exit 1
    }
fi

# --- a real prepaged on a free port ---------------------------------------
# 200 from /readyz (curl when there is one, else bash's /dev/tcp).
ready() {
    if command -v curl >/dev/null; then
        curl -fs "$1/readyz" >/dev/null 2>&1
    else
        local hostport=${1#http://}
        exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}" 2>/dev/null || return 1
        printf 'GET /readyz HTTP/1.0\r\n\r\n' >&3
        head -1 <&3 | grep -q ' 200 '
        local rc=$?
        exec 3>&-
        return $rc
    fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null \
        || echo $((20000 + RANDOM % 20000))
}

if [ -z "${PREPAGED_URL:-}" ]; then
    PREPAGED=${PREPAGED:-.build/debug/prepaged}
    if [ ! -x "$PREPAGED" ]; then
        swift build --product prepaged >"$tmp/swift.log" 2>&1 || {
            tail -20 "$tmp/swift.log"
            fail "build prepaged"
            echo "$passed passed, $failed failed"
            exit 1
        }
    fi
    port=$(free_port)
    "$PREPAGED" --host 127.0.0.1 --port "$port" --shutdown-delay 0 >"$tmp/prepaged.log" 2>&1 &
    server_pid=$!
    PREPAGED_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        ready "$PREPAGED_URL" && break
        sleep 0.1
    done
    if ! ready "$PREPAGED_URL"; then
        cat "$tmp/prepaged.log"
        fail "prepaged answers /readyz at $PREPAGED_URL"
        echo "$passed passed, $failed failed"
        exit 1
    fi
fi
echo "# prepaged at $PREPAGED_URL, prepage-postcopy at $POSTCOPY"

# One run; expects exit 0 and a verified JSON report.
check_run() {
    local name=$1
    shift
    local out="$tmp/out.json" err="$tmp/err.txt"
    "$POSTCOPY" --server "$PREPAGED_URL" --mem-mib "$MEM_MIB" --json "$@" >"$out" 2>"$err"
    local rc=$?
    if [ $rc -eq 3 ] && [[ "$name" == *"policy=dp "* || "$name" == *"policy=dp-plus "* ]]; then
        fail "$name: the server rejects ${name#*policy=}, which every prepaged has"
    elif [ $rc -eq 3 ]; then
        skip "$name (the server rejects the policy: $(grep -o 'HTTP [0-9]*' "$err" | head -1))"
    elif [ $rc -eq 2 ]; then
        fail "$name: no userfaultfd here: $(cat "$err")"
    elif [ $rc -ne 0 ]; then
        fail "$name: exit $rc: $(tail -3 "$err" | tr '\n' ' ')"
    elif ! grep -q '"status": "ok"' "$out" || ! grep -q '"pages_bad": 0,' "$out"; then
        fail "$name: the report does not say every page was verified: $(head -c 400 "$out")"
    else
        pass "$name"
    fi
}

# --- every workload under every policy, 1 and 2 threads ----------------------
IFS=, read -r -a policy_list <<<"$POLICIES"
for wl in $WORKLOADS; do
    for p in "${policy_list[@]}"; do
        for t in 1 2; do
            check_run "$wl policy=$p threads=$t" --workload "$wl" --policy "$p" --threads "$t" --seed 7
        done
    done
done

# --- the options that change how faults are resolved -----------------------
check_run "fsd dp threads=4 --no-streams" --workload fsd --policy dp --threads 4 --no-streams
check_run "fsd dp --overlap-oracle" --workload fsd --policy dp --overlap-oracle
check_run "stream dp threads=2 --overlap-oracle" --workload stream --policy dp --threads 2 --overlap-oracle

# --- dp-plus sessions get the link's measured figures ------------------------
"$POSTCOPY" --server "$PREPAGED_URL" --mem-mib "$MEM_MIB" --json --workload fsd --policy dp-plus \
    >"$tmp/plus.json" 2>"$tmp/plus.err"
rc=$?
if ! grep -Eq 'dp-plus sessions get rtt_us [0-9.]+, page_us [0-9.]+ \(measured\)' "$tmp/plus.err"; then
    fail "dp-plus: the link's measured rtt_us and page_us are not reported: $(tail -2 "$tmp/plus.err" | tr '\n' ' ')"
elif [ $rc -eq 0 ] && grep -Eq '"session_link": \{"rtt_us": [0-9.]+, "page_us": [0-9.]+\}' "$tmp/plus.json"; then
    pass "dp-plus session created with the link's measured rtt_us and page_us"
else
    fail "dp-plus session with the link's figures: exit $rc: $(tail -2 "$tmp/plus.err" | tr '\n' ' ')"
fi

# --- the oracle away: libprepage's fallbacks keep the run going ----------------
# An oracle that creates and deletes sessions but never answers a fault: every fault
# waits one deadline (5 ms) at most — most not at all, the breaker being open — and
# is served the faulting page alone; the run completes, verifies, and counts them.
hang_port=$(free_port)
python3 - "$hang_port" >"$tmp/hang-server.log" 2>&1 <<'PY' &
import http.server, json, sys, time
class Oracle(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def answer(self, status):
        sid = self.path.split("/")[2]
        body = json.dumps({"id": sid, "config": {"policy": "dp"}, "state": {},
                           "stats": {"faults": 0}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(201)
    def do_DELETE(self):
        self.answer(200)
    def do_POST(self):
        time.sleep(3600)  # a fault: never answered
http.server.ThreadingHTTPServer.daemon_threads = True
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Oracle).serve_forever()
PY
hang_pid=$!
for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$hang_port") 2>/dev/null && break; sleep 0.1; done
"$POSTCOPY" --server "http://127.0.0.1:$hang_port" --mem-mib "$MEM_MIB" --json --workload fsd --policy dp \
    >"$tmp/hang.json" 2>"$tmp/hang.err"
rc=$?
kill "$hang_pid" 2>/dev/null
wait "$hang_pid" 2>/dev/null
faults=$(sed -n 's/.*"faults": \([0-9]*\), "faults_already_present": \([0-9]*\).*/\1 \2/p' "$tmp/hang.json")
fallbacks=$(sed -n 's/.*"oracle_fallbacks": \([0-9]*\).*/\1/p' "$tmp/hang.json")
read -r nf np <<<"$faults"
if [ $rc -eq 0 ] && grep -q '"pages_bad": 0,' "$tmp/hang.json" && [ -n "$fallbacks" ] \
        && [ "$fallbacks" -gt 0 ] && [ "$fallbacks" -eq $((nf - np)) ]; then
    pass "an oracle that never answers faults: every fault a fallback ($fallbacks), the run verified"
else
    fail "oracle that never answers: exit $rc, fallbacks '${fallbacks}' of faults '${faults}': $(tail -2 "$tmp/hang.err" | tr '\n' ' ')"
fi

# --- the source in its own process (--source-only), the destination with --source
sport=$(free_port)
"$POSTCOPY" --source-only --port "$sport" --mem-mib "$MEM_MIB" --seed 9 >"$tmp/source.log" 2>&1 &
source_pid=$!
for _ in $(seq 1 50); do grep -q "source on" "$tmp/source.log" 2>/dev/null && break; sleep 0.1; done
check_run "fsd dp, source in another process" --workload fsd --policy dp --seed 9 --source "127.0.0.1:$sport"
kill "$source_pid" 2>/dev/null
wait "$source_pid" 2>/dev/null

# --- compare writes its table, CSV and SVG ----------------------------------
if "$POSTCOPY" compare --server "$PREPAGED_URL" --mem-mib "$MEM_MIB" --policies "$POLICIES" \
        --csv "$tmp/c.csv" --svg "$tmp/c.svg" >"$tmp/table.txt" 2>"$tmp/err.txt" \
        && [ "$(wc -l <"$tmp/c.csv")" -ge 2 ] && grep -q '</svg>' "$tmp/c.svg" && grep -q '^dp ' "$tmp/table.txt"; then
    pass "compare: table, CSV, SVG"
else
    fail "compare: $(tail -3 "$tmp/err.txt" | tr '\n' ' ')"
fi

# --- verification must catch a corrupted page --------------------------------
"$POSTCOPY" --server "$PREPAGED_URL" --mem-mib "$MEM_MIB" --policy dp --inject-corruption \
    >"$tmp/out.txt" 2>"$tmp/err.txt"
rc=$?
if [ $rc -eq 1 ] && grep -q 'differs from the source' "$tmp/err.txt"; then
    pass "a corrupted page fails the run (exit 1)"
else
    fail "a corrupted page was not caught (exit $rc)"
fi

# --- without userfaultfd: exit 2 and say what is needed ----------------------
if [ "$(id -u)" = 0 ] && [ "$(cat /proc/sys/vm/unprivileged_userfaultfd 2>/dev/null)" = 0 ] \
        && command -v setpriv >/dev/null; then
    setpriv --reuid=65534 --regid=65534 --clear-groups "$POSTCOPY" --server "$PREPAGED_URL" \
        --mem-mib 1 >"$tmp/out.txt" 2>"$tmp/err.txt"
    rc=$?
    if [ $rc -eq 2 ] && grep -q 'needs root or vm.unprivileged_userfaultfd=1' "$tmp/err.txt"; then
        pass "unprivileged without vm.unprivileged_userfaultfd: exit 2 with the reason"
    else
        fail "unprivileged run: exit $rc: $(cat "$tmp/err.txt")"
    fi
else
    skip "unprivileged check (needs root, setpriv and vm.unprivileged_userfaultfd=0)"
fi

echo "# $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
