#!/usr/bin/env bash
# Runs schemathesis (PyPI) against prepaged, bounded and seeded, with every
# check. Installs schemathesis quietly if it is missing.
#
# Usage: scripts/schemathesis.sh BASE_URL [TOKEN] [-- EXTRA_SCHEMATHESIS_ARGS...]
#        scripts/schemathesis.sh --serve [PREPAGED] [-- EXTRA_SCHEMATHESIS_ARGS...]
#   BASE_URL  a running prepaged, e.g. http://127.0.0.1:7070 (loopback only)
#   TOKEN     the server's bearer token. Start prepaged with --token-file for a
#             full run: openapi.yaml declares bearer auth, so a server without a
#             token fails the auth checks (ignored_auth, missing Authorization).
#   --serve   start PREPAGED (default: swift build -c release --product prepaged)
#             on a free loopback port with a fresh token, run, then stop it
#             (what `make schemathesis` and CI do).
# Environment:
#   SCHEMATHESIS_MAX_EXAMPLES  test cases per operation (default 50)
#   SCHEMATHESIS_SEED          random seed (default 1)
#   OPENAPI                    the spec (default: openapi.yaml at the repository root)
#   SCHEMATHESIS_REPORT_DIR    where the JUnit report goes (default .build/schemathesis-report)
# Exit status: 0 when every check passes, 1 when one fails, 2 on bad usage.
set -euo pipefail

usage() {
    sed -n '2,/^set /p' "$0" | sed -n 's/^# \{0,1\}//p' >&2
    exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
[[ $# -ge 1 ]] || usage
case "$1" in -h|--help) usage ;; esac
serve=0
binary=""
url=""
token=""
if [[ "$1" == "--serve" ]]; then
    serve=1
    shift
    if [[ $# -ge 1 && "$1" != "--" ]]; then
        binary="$1"
        shift
    fi
else
    url="${1%/}"
    shift
    if [[ $# -ge 1 && "$1" != "--" ]]; then
        token="$1"
        shift
    fi
fi
if [[ $# -ge 1 ]]; then
    [[ "$1" == "--" ]] || { echo "schemathesis.sh: unexpected argument '$1'" >&2; usage; }
    shift
fi
extra=("$@")

if [[ $serve == 1 ]]; then
    if [[ -z "$binary" ]]; then
        (cd "$root" && swift build -c release --product prepaged >&2)
        binary="$(cd "$root" && swift build -c release --show-bin-path)/prepaged"
    fi
    [[ -x "$binary" ]] || { echo "schemathesis.sh: no prepaged executable at $binary" >&2; exit 2; }
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    workdir="$(mktemp -d -t prepage-schemathesis.XXXXXX)"
    token="schemathesis-$port"
    printf '%s\n' "$token" >"$workdir/token"
    # Run from the repository so that the server serves this openapi.yaml.
    (cd "$root" && exec "$binary" --host 127.0.0.1 --port "$port" --shutdown-delay 0 --token-file "$workdir/token" --log-level warning) \
        >"$workdir/prepaged.log" 2>&1 &
    server_pid=$!
    stop_server() {
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        rm -rf "$workdir"
    }
    trap stop_server EXIT
    url="http://127.0.0.1:$port"
fi

if [[ ! "$url" =~ ^http://(127\.[0-9]+\.[0-9]+\.[0-9]+|localhost|\[::1\]):[0-9]{1,5}$ ]]; then
    echo "schemathesis.sh: BASE_URL must be http://127.0.0.1:PORT (loopback, with a port); got '$url'" >&2
    exit 2
fi
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-50}"
seed="${SCHEMATHESIS_SEED:-1}"
spec="${OPENAPI:-$root/openapi.yaml}"
[[ "$max_examples" =~ ^[1-9][0-9]*$ ]] || { echo "schemathesis.sh: SCHEMATHESIS_MAX_EXAMPLES must be a positive integer" >&2; exit 2; }
[[ "$seed" =~ ^[0-9]+$ ]] || { echo "schemathesis.sh: SCHEMATHESIS_SEED must be a non-negative integer" >&2; exit 2; }
[[ -f "$spec" ]] || { echo "schemathesis.sh: no spec at $spec" >&2; exit 2; }

if ! command -v schemathesis >/dev/null 2>&1; then
    echo "schemathesis.sh: installing schemathesis (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check schemathesis \
        || python3 -m pip install --quiet --disable-pip-version-check --break-system-packages schemathesis
fi

# The server must be up before fuzzing starts.
for _ in $(seq 1 50); do
    if curl -fs -o /dev/null --max-time 1 "$url/livez"; then break; fi
    sleep 0.1
done
curl -fsS -o /dev/null --max-time 1 "$url/livez" || {
    echo "schemathesis.sh: no prepaged answering $url/livez" >&2
    exit 1
}

report="${SCHEMATHESIS_REPORT_DIR:-$root/.build/schemathesis-report}"
mkdir -p "$report"
auth=()
[[ -n "$token" ]] && auth=(-H "Authorization: Bearer $token")

# Flags differ between major versions: 4.x has --url/--max-examples/--seed,
# 3.x had --base-url/--hypothesis-max-examples/--hypothesis-seed.
if schemathesis run --help 2>/dev/null | grep -q -- '--max-examples'; then
    config=(--config-file "$root/scripts/schemathesis.toml")
    args=(run "$spec" --url "$url" --checks all --max-examples "$max_examples" --seed "$seed"
          --workers 1 --generation-database none --request-timeout 5
          --report junit --report-dir "$report" --no-color)
else
    config=()
    args=(run "$spec" --base-url "$url" --checks all --hypothesis-max-examples "$max_examples"
          --hypothesis-seed "$seed" --hypothesis-derandomize --workers 1 --request-timeout 5000)
fi
version="$(schemathesis --version 2>/dev/null || true)"
echo "schemathesis.sh: $version against $url (max examples $max_examples, seed $seed)" >&2
[[ -n "$token" ]] || echo "schemathesis.sh: warning: no TOKEN given; the auth checks fail unless the server requires one" >&2
status=0
(cd "$report" && schemathesis ${config[@]+"${config[@]}"} "${args[@]}" ${auth[@]+"${auth[@]}"} ${extra[@]+"${extra[@]}"}) || status=$?
[[ $status -eq 0 ]] || exit 1
