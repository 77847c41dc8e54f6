#!/usr/bin/env bash
# Fails when a module imports what its layer must not (STYLE.md, "Layout").
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
forbid() {  # forbid DIR REGEX WHY
  local hits
  hits=$(grep -rnE "^\s*(@_implementationOnly |internal |public |package )?import $2\b" "$1" --include='*.swift' || true)
  if [ -n "$hits" ]; then
    echo "forbidden import in $1 ($3):"; echo "$hits"; status=1
  fi
}
# PrepageCore: the Swift standard library only.
hits=$(grep -rnE '^\s*(@_implementationOnly |internal |public |package )?import ' Sources/PrepageCore --include='*.swift' || true)
[ -z "$hits" ] || { echo "PrepageCore must import nothing:"; echo "$hits"; status=1; }
forbid Sources/PrepageHTTP '(PrepageSockets|PrepageServer|PrepageCore|Glibc)' "HTTP knows bytes, not sockets or sessions"
forbid Sources/PrepageSockets '(PrepageHTTP|PrepageServer|PrepageCore)' "sockets know no HTTP or sessions"
forbid Sources/PrepageSimulator '(PrepageServer|PrepageHTTP|PrepageSockets)' "the simulator drives the core in-process"
[ $status = 0 ] && echo "imports: layering holds"
exit $status
