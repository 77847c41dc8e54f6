#!/usr/bin/env bash
# Fails when a committed file points outside the repository (../shared, the
# maintainers' spec and paper directories): a clone has none of them, so the
# project's own docs (docs/dp.md, docs/dp-plus.md, docs/api.md) must say it all.
# The one exception is Tests/PrepageCoreTests/VectorTests.swift, which compares
# Tests/Vectors with an upstream copy only when one happens to be beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
pattern='\.\./shared|shared/(spec|paper|vectors)'
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  hits=$(git grep -nE "$pattern" -- . ':!Tests/PrepageCoreTests/VectorTests.swift' ':!scripts/check-standalone.sh' || true)
else
  hits=$(grep -rnE "$pattern" . --exclude-dir=.build --exclude-dir=build --exclude-dir=.git \
    --exclude=VectorTests.swift --exclude=check-standalone.sh || true)
fi
if [ -n "$hits" ]; then
  echo "files point outside the repository (use docs/dp.md, docs/dp-plus.md, docs/api.md):"
  echo "$hits"
  exit 1
fi
echo "standalone: no file points outside the repository"
