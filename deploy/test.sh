#!/usr/bin/env bash
# Tests every deployment artifact in deploy/: the systemd unit (systemd-analyze),
# the Kubernetes manifests (parsed and cross-checked), the container recipe
# (checked against the package), and the HAProxy consistent-hash configuration
# for real: two prepaged instances behind HAProxy on loopback.
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

# --- systemd ---------------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
  sed "s|/usr/local/bin/prepaged|$bin|" deploy/systemd/prepaged.service > "$tmp/prepaged.service"
  check "systemd unit verifies" bash -c "systemd-analyze verify '$tmp/prepaged.service' 2>&1 | tee '$tmp/verify.log' | grep -v -e 'Failed to open' -e 'credential' -e '^$' | (! grep -q .)"
else
  echo "# systemd-analyze missing: unit not verified"
fi
check "env file names only PREPAGE_ variables" bash -c "! grep -vE '^(#.*|PREPAGE_[A-Z_]+=.*|)$' deploy/systemd/prepaged.env"

# --- Kubernetes --------------------------------------------------------------
check "kubernetes manifests parse and agree" python3 - <<'PY'
import yaml, sys
docs = [d for d in yaml.safe_load_all(open("deploy/kubernetes/prepaged.yaml")) if d]
kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
need = {("StatefulSet", "prepaged"), ("Service", "prepaged"), ("ConfigMap", "prepage-lb"), ("Deployment", "prepage-lb"), ("Service", "prepage")}
assert need <= kinds, need - kinds
sts = next(d for d in docs if d["kind"] == "StatefulSet")
c = sts["spec"]["template"]["spec"]["containers"][0]
assert c["livenessProbe"]["httpGet"]["path"] == "/livez"
assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
env = {e["name"]: e["value"] for e in c["env"]}
assert env["PREPAGE_PORT"] == str(c["ports"][0]["containerPort"])
assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 10  # drain takes up to 10 s
# --state-dir on a volume of each pod's own, mounted where PREPAGE_STATE_DIR points.
claims = {t["metadata"]["name"] for t in sts["spec"].get("volumeClaimTemplates", [])}
mounts = {m["name"]: m["mountPath"] for m in c["volumeMounts"]}
assert "state" in claims and mounts.get("state") and env["PREPAGE_STATE_DIR"].startswith(mounts["state"] + "/"), "state dir not on the claim"
# The peers are the StatefulSet's pods, by their stable names.
peers = env["PREPAGE_PEERS"].split(",")
assert len(peers) == sts["spec"]["replicas"] and all(p == f"http://prepaged-{i}.prepaged:{env['PREPAGE_PORT']}" for i, p in enumerate(peers)), peers
# The grace period holds the preStop pause, the shutdown delay, the 8 s drain and the last snapshot.
pause = int(c["lifecycle"]["preStop"]["exec"]["command"][-1])
delay = int(env["PREPAGE_SHUTDOWN_DELAY"].rstrip("s"))
assert sts["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= pause + delay + 8 + 5
for d in docs:
    if d["kind"] in ("StatefulSet", "Deployment"):
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
PY
python3 -c "import yaml; print([d for d in yaml.safe_load_all(open('deploy/kubernetes/prepaged.yaml')) if d and d['kind']=='ConfigMap'][0]['data']['haproxy.cfg'])" > "$tmp/k8s-haproxy.cfg"
check "kubernetes load-balancer config passes haproxy -c" haproxy -c -q -f "$tmp/k8s-haproxy.cfg"

# --- container recipe --------------------------------------------------------
check "Containerfile builds the prepaged product" grep -q -- "--product prepaged" deploy/container/Containerfile
check "Containerfile's product exists in Package.swift" grep -q '.executable(name: "prepaged"' Package.swift
check "Containerfile pins its base images (a version tag, never latest)" bash -c "grep -E '^FROM ' deploy/container/Containerfile | awk '{print \$2}' | (! grep -vE ':[A-Za-z0-9][^ ]*$' ) && ! grep -qE '^FROM [^ ]+:latest' deploy/container/Containerfile"
check "Containerfile runs as a non-root user" grep -qE '^USER [1-9]' deploy/container/Containerfile

# --- HAProxy: consistent hash over two live instances ------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
p1=$(free_port); p2=$(free_port); lb=$(free_port)
"$bin" --port "$p1" --threads 1 --log-level error >"$tmp/b1.log" 2>&1 & pids+=($!)
"$bin" --port "$p2" --threads 1 --log-level error >"$tmp/b2.log" 2>&1 & pids+=($!)
PREPAGE_LB_BIND=127.0.0.1:$lb PREPAGE_BACKEND_1=127.0.0.1:$p1 PREPAGE_BACKEND_2=127.0.0.1:$p2 \
  haproxy -f deploy/haproxy/haproxy.cfg -db >"$tmp/lb.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$lb/readyz" >/dev/null 2>&1 && curl -fs "http://127.0.0.1:$p2/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
sleep 2.5  # first health checks
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

# --- Three instances behind HAProxy and nginx (issue 14) -----------------------
# Spread, SIGKILL and SIGTERM-with-restart under the C load generator, sessions
# moving with what they learned (deploy/sharding/run.py; make test-sharding runs it longer).
if command -v nginx >/dev/null && command -v cc >/dev/null; then
  if python3 deploy/sharding/run.py "$bin" --quick > "$tmp/sharding.log" 2>&1; then
    ok "three instances behind HAProxy and nginx: $(grep -c '^ok' "$tmp/sharding.log") checks (deploy/sharding/run.py --quick)"
  else
    not_ok "three instances behind HAProxy and nginx (deploy/sharding/run.py --quick)"
  fi
  grep -E '^(not ok|#)' "$tmp/sharding.log" | sed 's/^/    /'
else
  echo "# nginx or cc missing: the three-instance sharding test did not run"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
