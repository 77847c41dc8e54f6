# Formatting: one style for the Swift (.swift-format) and one for the C (.clang-format),
# applied by `make format` and checked by `make lint`, which `make test` runs first.

.PHONY: format lint lint-tools

# Every file the project owns (git's list, so build trees and vendored sources stay out).
SWIFT_SOURCES = $(shell git ls-files '*.swift')
# config_fields.h is generated (by a Swift test, from PrepageCore's field table) and kept as written.
C_SOURCES     = $(filter-out Tests/CClientTests/config_fields.h,$(shell git ls-files '*.c' '*.h'))

## lint-tools: install clang-format (Debian's, 14) when missing (root), or say how.
lint-tools:
	@command -v clang-format >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-format >/dev/null; } || \
	  { echo "install clang-format to check the C style (sudo apt-get install -y clang-format)"; exit 1; }

## format: rewrite every Swift and C file in the committed styles.
format: lint-tools
	@$(SWIFT) format format --in-place --parallel $(SWIFT_SOURCES)
	@clang-format -i $(C_SOURCES)
	@echo "format: $(words $(SWIFT_SOURCES)) Swift and $(words $(C_SOURCES)) C files"

## lint: fail on any file that `make format` would change (swift format lint --strict, clang-format --Werror).
lint: lint-tools
	@$(SWIFT) format lint --strict --parallel $(SWIFT_SOURCES)
	@clang-format --dry-run --Werror $(C_SOURCES)
	@echo "lint: $(words $(SWIFT_SOURCES)) Swift and $(words $(C_SOURCES)) C files in style"
