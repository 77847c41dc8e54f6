#!/bin/bash
# mkpatches.sh — for developers of the patch: regenerates patches/*.patch from
# the trees build-qemu.sh left, build/qemu/src.orig (Debian's source as
# fetched) and build/qemu/src (patched, then edited by hand).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(cd "$here/../.." && pwd)/build/qemu
cd "$out"
mk() {  # mk NAME FILE...
  local name=$1; shift
  : > "$here/patches/$name"
  for f in "$@"; do
    diff -uN --label "a/$f" --label "b/$f" "src.orig/$f" "src/$f" >> "$here/patches/$name" || true
  done
  echo "patches/$name: $(grep -c '^+++ ' "$here/patches/$name") files"
}
mk 0001-postcopy-prepage-destination.patch meson.build migration/meson.build \
  migration/migration.h migration/migration.c migration/postcopy-prepage.h \
  migration/postcopy-prepage.c migration/postcopy-ram.c
mk 0002-postcopy-urgent-pages-transport.patch migration/ram.h migration/ram.c migration/savevm.c migration/socket.c
