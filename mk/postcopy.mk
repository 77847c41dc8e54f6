# mk/postcopy.mk — prepage-postcopy built standalone with cc (included by the Makefile).
#   make postcopy   ->  build/bin/prepage-postcopy
POSTCOPY_CC      ?= cc
POSTCOPY_SRCS    := $(wildcard Sources/prepage-postcopy/*.c) $(wildcard Sources/CPrepageClient/*.c)
POSTCOPY_HDRS    := $(wildcard Sources/prepage-postcopy/*.h) $(wildcard Sources/CPrepageClient/include/*.h)
POSTCOPY_PKG      = $(shell pkg-config --cflags --libs libcurl jansson 2>/dev/null)
POSTCOPY_CFLAGS  ?= -O2 -g -Wall -Wextra -std=gnu11
POSTCOPY_BIN     := build/bin/prepage-postcopy

.PHONY: postcopy
postcopy: $(POSTCOPY_BIN)

$(POSTCOPY_BIN): $(POSTCOPY_SRCS) $(POSTCOPY_HDRS) mk/postcopy.mk | $(PP_FIRST)
	@mkdir -p $(dir $@)
	$(POSTCOPY_CC) $(POSTCOPY_CFLAGS) -ISources/CPrepageClient/include -ISources/prepage-postcopy \
		-o $@ $(POSTCOPY_SRCS) $(POSTCOPY_PKG) -pthread

# Against a real prepaged (started by the scripts unless PREPAGED_URL is set); need userfaultfd.
.PHONY: postcopy-test postcopy-results
postcopy-test: $(POSTCOPY_BIN)
	POSTCOPY=$(POSTCOPY_BIN) scripts/test-postcopy.sh

postcopy-results: $(POSTCOPY_BIN)
	POSTCOPY=$(POSTCOPY_BIN) scripts/postcopy-results.sh
