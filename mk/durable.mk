# Durable sessions (--state-dir) and sharding over several instances (included by the Makefile's `-include mk/*.mk`).
#
#   make bench-durable    scripts/bench-durable.sh: the fault path with --state-dir on and off, interleaved
#   make bench-restore    scripts/bench-restore.py: a restart of 100,000 sessions, exec to /readyz 200;
#                         a survivor's first fault for a stopped peer's session (its directory read)
#   make test-sharding    deploy/test.sh --long: three instances behind HAProxy and nginx, kills and rolling updates
#   make bench-kill       deploy/sharding/kill-latency.c: how long a SIGKILLed process keeps its connections open,
#                         idle and with 6 busy processes on the cores (what a fault in flight to it waits)

.PHONY: bench-durable bench-restore test-sharding bench-kill

## bench-durable: what --state-dir costs a fault (wrk, taskset): req/s, p50/p99, CPU per request, on vs off.
bench-durable: deps
	$(RELEASE) --product prepaged
	PREPAGED=.build/release/prepaged bash scripts/bench-durable.sh

## bench-restore: 100,000 sessions with learned state, restarted: time from exec to /readyz 200; and the
##   first faults of a survivor that takes them from the stopped instance's directory.
bench-restore: deps
	$(RELEASE) --product prepaged
	python3 scripts/bench-restore.py .build/release/prepaged

## test-sharding: three release instances behind HAProxy and behind nginx, 300 sessions, the C load
##   generator at full speed with the 5 ms fault deadline; SIGKILL and SIGTERM-with-restart, three rounds each.
test-sharding: deps lib
	$(RELEASE) --product prepaged
	@command -v haproxy >/dev/null && command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx >/dev/null; } || { echo "install haproxy and nginx (sudo apt-get install -y haproxy nginx)"; exit 1; }
	python3 deploy/sharding/run.py .build/release/prepaged --long --json .build/sharding.json

## bench-kill: SIGKILL to the end of a connection to the killed process (14 idle threads, 20 MiB touched), on an
##   idle host and with 6 busy processes: the wait of a fault in flight to an instance that is killed.
bench-kill:
	@mkdir -p build/bin
	cc -std=gnu11 -O2 -Wall -Wextra -pthread -o build/bin/kill-latency deploy/sharding/kill-latency.c
	build/bin/kill-latency 14 40 0
	build/bin/kill-latency 14 40 6
	build/bin/kill-latency 14 40 0
	build/bin/kill-latency 14 40 6
