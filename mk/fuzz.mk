# mk/fuzz.mk — fuzzing prepaged (included by the Makefile's `-include mk/*.mk`).
#
#   make test-fuzz-server   seeded mutation fuzzer over raw sockets against a live debug prepaged:
#                           20,000 cases (FUZZ_CASES), a sentinel request after each, at most a
#                           minute; part of `make test`. Replays exactly with FUZZ_SEED.
#   make fuzz               coverage-guided fuzzers (libFuzzer from the Swift toolchain) of the HTTP
#                           parser and of the JSON scanner with the readers on it, each for
#                           FUZZ_SECONDS (default 60); corpora kept in build/fuzz/.

FUZZ_CASES   ?= 20000
FUZZ_SEED    ?= 1
FUZZ_SECONDS ?= 60
FUZZ_DIR     := build/fuzz
FUZZ_SWIFT   := $(SWIFT) build -c release --package-path Fuzz -j 2 \
                -Xswiftc -sanitize=fuzzer -Xswiftc -parse-as-library -Xswiftc -enable-testing

.PHONY: test-fuzz-server fuzz fuzz-build

test-fuzz-server:
	python3 scripts/fuzz-server.py --serve .build/debug/prepaged --cases $(FUZZ_CASES) --seed $(FUZZ_SEED) --seconds 60

fuzz-build:
	$(FUZZ_SWIFT)

## fuzz: FUZZ_SECONDS per fuzzer; a crash leaves its input in build/fuzz/ (crash-*) and fails.
fuzz: fuzz-build
	@mkdir -p $(FUZZ_DIR)/corpus-http $(FUZZ_DIR)/corpus-json
	@cp -n Fuzz/seeds/http/* $(FUZZ_DIR)/corpus-http/ 2>/dev/null || true
	@cp -n Fuzz/seeds/json/* $(FUZZ_DIR)/corpus-json/ 2>/dev/null || true
	Fuzz/.build/release/fuzz-http -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=4096 \
	    -artifact_prefix=$(FUZZ_DIR)/http- $(FUZZ_DIR)/corpus-http
	Fuzz/.build/release/fuzz-json -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 -max_len=4096 \
	    -artifact_prefix=$(FUZZ_DIR)/json- $(FUZZ_DIR)/corpus-json
