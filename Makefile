# prepage — the two commands a newcomer needs:
#   make run    install what is missing, build, and run the main job
#   make test   install what is missing, build, and run every test
# Benchmarks (not tests) print figures: make bench-core | bench-server | bench-client

SWIFT       ?= swift
SWIFT_FLAGS ?=
RELEASE     := $(SWIFT) build -c release $(SWIFT_FLAGS)
# Debian packages the build needs (C client: libcurl + jansson, found by pkg-config).
DEB_PACKAGES := libcurl4-openssl-dev libjansson-dev pkg-config curl

.PHONY: all deps build run demo test test-swift test-deploy test-schemathesis test-python-client bench-core check-imports results clean help

all: build

help:
	@sed -n '1,4p' Makefile

## deps: install the Debian packages the build needs, when missing (root), or say which.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || exit 1; \
	  else \
	    echo "missing Debian packages:$$missing"; \
	    echo "install them with: sudo apt-get install -y$$missing"; exit 1; \
	  fi; \
	fi

build: deps
	$(SWIFT) build $(SWIFT_FLAGS)

## run: the main job: build prepaged (release) and serve on 127.0.0.1:7070; Ctrl-C drains and exits.
##      Flags after ARGS=, e.g. make run ARGS="--threads 2 --log-format json" (or PREPAGE_<NAME> variables).
run: deps
	$(RELEASE) --product prepaged
	.build/release/prepaged $(ARGS)

demo: deps
	$(RELEASE) --product prepage-sim
	@echo "== DP on a clean fixed-size load (clean.json vector), first 12 decisions =="
	@python3 -c 'import json;v=json.load(open("Tests/Vectors/clean.json"));print("\n".join(map(str,v["faults"][:12])))' \
	  | .build/release/prepage-sim decide --config '{"policy":"dp","max_pages":64}'

## test: every test the project has, in the order CI runs them: formatting (make lint), layering, the Swift
## tests (core, HTTP, server, client, simulator), a mutation fuzzer against the live
## server (mk/fuzz.mk), openapi.yaml, schemathesis against a live server, the generated
## Python client against a live server, the C library under ASan, the deployment files,
## the post-copy run on userfaultfd, and the QEMU 7.2 patches applied to Debian's source
## and compiled (make test-qemu migrates a real guest; it needs a full QEMU build, see mk/qemu.mk).
test: deps lint check-imports test-swift test-fuzz-server check-openapi test-schemathesis test-python-client test-c test-deploy postcopy-test qemu-check

test-swift:
	$(SWIFT) build --build-tests $(SWIFT_FLAGS)
	$(SWIFT) test --skip-build $(SWIFT_FLAGS)

## test-deploy: deploy/ (systemd, Kubernetes, container recipe, HAProxy sharding over two live instances).
test-deploy: deps
	@command -v haproxy >/dev/null && command -v nginx >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy nginx >/dev/null; } || { echo "install haproxy and nginx to test deploy/ (sudo apt-get install -y haproxy nginx)"; exit 1; }
	$(MAKE) -s lib
	bash deploy/test.sh .build/debug/prepaged

## test-schemathesis: schemathesis (every check, 50 examples, seed 1) against a live prepaged.
test-schemathesis:
	bash scripts/schemathesis.sh --serve .build/debug/prepaged

## test-python-client: the Python client generated from openapi.yaml (openapi-python-client) drives a live prepaged.
test-python-client:
	bash scripts/test-python-client.sh .build/debug/prepaged

## check-imports: PrepageCore imports nothing; libraries below the server know no sessions;
## no file points outside the repository (scripts/check-standalone.sh).
check-imports:
	@bash scripts/check-imports.sh
	@bash scripts/check-standalone.sh

## bench-core: DP decisions per second on a precomputed 10-million-fault FSD trace.
bench-core: deps
	$(RELEASE) --product prepage-bench
	.build/release/prepage-bench core

## results: regenerate the simulator's tables and plots in docs/results/.
RESULTS := docs/results
results: deps
	$(RELEASE) --product prepage-sim
	mkdir -p $(RESULTS)
	.build/release/prepage-sim fig3 --csv $(RESULTS)/fig3-around.csv --svg $(RESULTS)/fig3-around.svg | tee $(RESULTS)/fig3-around.txt
	.build/release/prepage-sim fig3 --shape below --csv $(RESULTS)/fig3-below.csv --svg $(RESULTS)/fig3-below.svg | tee $(RESULTS)/fig3-below.txt
	.build/release/prepage-sim fig3 --shape above --csv $(RESULTS)/fig3-above.csv --svg $(RESULTS)/fig3-above.svg | tee $(RESULTS)/fig3-above.txt
	.build/release/prepage-sim compare --seeds 10 --csv $(RESULTS)/compare.csv --svg $(RESULTS)/compare.svg | tee $(RESULTS)/compare.txt

clean:
	rm -rf .build build

# Fragments for the C library, the post-copy program and other parts.
# The C code (mk/lib.mk, mk/postcopy.mk) is compiled once the Debian packages are in.
PP_FIRST := deps
-include mk/*.mk
