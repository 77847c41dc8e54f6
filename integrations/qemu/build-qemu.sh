#!/bin/bash
# build-qemu.sh — `make qemu`: QEMU 7.2 as Debian bookworm ships it, with
# patches/*.patch, built for x86_64 TCG into build/qemu/bin/qemu-system-x86_64.
#
#   build-qemu.sh            install what is missing (root), fetch, patch, configure, build
#   build-qemu.sh --check    fetch and patch, then compile only the patched files
#                            (the CI-sized check: the patches apply and compile)
#
# Idempotent: a second run changes nothing and rebuilds nothing; after editing
# a patch, only the files it touches are replaced (so only they recompile).
# Layout under build/qemu/ (or $QEMU_BUILD_DIR): dl/ (Debian's source package), src.orig/ (as
# fetched), src/ (patched), obj/ (the meson build), bin/.
# Needs libprepage (make lib) for the oracle; without it QEMU builds stock
# (meson's dependency('prepage') is optional).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${QEMU_BUILD_DIR:-$root/build/qemu}
jobs=${QEMU_JOBS:-2}
check=0
[ "${1:-}" = "--check" ] && check=1

log() { echo "qemu: $*"; }

# 1. Debian packages
debs="ninja-build meson libglib2.0-dev libpixman-1-dev libfdt-dev dpkg-dev pkg-config gcc make python3 qemu-system-data seabios"
missing=""
for p in $debs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing Debian packages:$missing (sudo apt-get install -y$missing)" >&2; exit 1
  fi
  log "installing:$missing"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi

# 2. the source package (a deb-src entry beside the deb one, when there is none)
mkdir -p "$out/dl"
dsc=$(ls "$out"/dl/qemu_*.dsc 2>/dev/null | head -n 1 || true)
if [ -z "$dsc" ]; then
  if ! apt-get source --print-uris qemu >/dev/null 2>&1; then
    [ "$(id -u)" = 0 ] || { echo "no deb-src entry for qemu; add one (Types: deb-src) as root" >&2; exit 1; }
    src=/etc/apt/sources.list.d/debian.sources
    [ -f "$src" ] || { echo "no $src to copy a deb-src entry from" >&2; exit 1; }
    log "adding /etc/apt/sources.list.d/prepage-deb-src.sources (deb-src of $src)"
    sed 's/^Types: deb$/Types: deb-src/' "$src" > /etc/apt/sources.list.d/prepage-deb-src.sources
    apt-get update -qq
  fi
  log "fetching Debian's qemu source package"
  (cd "$out/dl" && apt-get source --download-only -qq qemu 2>&1 | grep -v "unsandboxed" || true)
  dsc=$(ls "$out"/dl/qemu_*.dsc | head -n 1)
fi
if [ ! -f "$out/src.orig/VERSION" ]; then
  log "unpacking $(basename "$dsc") (Debian's patches applied)"
  rm -rf "$out/src.orig" "$out/src"
  dpkg-source -x "$dsc" "$out/src.orig" >/dev/null
fi
[ -d "$out/src" ] || cp -a "$out/src.orig" "$out/src"

# 3. the patches: every file they touch is made pristine + patches, in a
# scratch copy first; a file is replaced only when its content changes.
scratch=$out/patch-scratch
rm -rf "$scratch"; mkdir -p "$scratch"
files=$(sed -n 's#^+++ b/\([^[:space:]]*\).*#\1#p' "$here"/patches/*.patch | sort -u)
prev=$(cat "$out/src/.prepage-patched-files" 2>/dev/null || true)
for f in $(printf '%s\n' $files $prev | sort -u); do
  mkdir -p "$scratch/$(dirname "$f")"
  [ -f "$out/src.orig/$f" ] && cp -p "$out/src.orig/$f" "$scratch/$f"
done
for p in "$here"/patches/*.patch; do
  patch -s -p1 -d "$scratch" --no-backup-if-mismatch < "$p" || { echo "qemu: $p does not apply to $(basename "$dsc")" >&2; exit 1; }
done
changed=0
for f in $(printf '%s\n' $files $prev | sort -u); do
  if [ -f "$scratch/$f" ]; then
    if ! cmp -s "$scratch/$f" "$out/src/$f"; then
      mkdir -p "$out/src/$(dirname "$f")"; cp "$scratch/$f" "$out/src/$f"; changed=$((changed + 1))
    fi
  elif [ -e "$out/src/$f" ]; then
    rm -f "$out/src/$f"; changed=$((changed + 1))
  fi
done
printf '%s\n' $files > "$out/src/.prepage-patched-files"
rm -rf "$scratch"
log "patches applied to $(basename "$dsc" .dsc) ($changed files changed)"

# 4. configure (once), with libprepage's pkg-config file when it is built
pcdir=$root/build/lib/pkgconfig
if [ ! -f "$out/obj/build.ninja" ]; then
  rm -rf "$out/obj"; mkdir -p "$out/obj"
  log "configuring (prepage: $( [ -f "$pcdir/prepage.pc" ] && echo "$pcdir" || echo 'not built: make lib' ))"
  (cd "$out/obj" && PKG_CONFIG_PATH=$pcdir ../src/configure --target-list=x86_64-softmmu \
      --without-default-features --enable-tcg --meson=meson >configure.log 2>&1) \
    || { tail -20 "$out/obj/configure.log"; exit 1; }
  meson configure -Dpkg_config_path="$pcdir" "$out/obj" >/dev/null
fi

# 5. build
if [ $check = 1 ]; then
  # the objects of the patched C files only (meson regenerates what it must)
  targets=$(cd "$out/obj" && ninja -t targets all | sed -n 's#^\([^:]*migration_\(postcopy-ram\|postcopy-prepage\|migration\|savevm\|ram\)\.c\.o\):.*#\1#p')
  [ -n "$targets" ] || { echo "qemu: no object targets for the patched files" >&2; exit 1; }
  log "compiling the patched files: $(echo $targets | wc -w) objects"
  ninja -C "$out/obj" -j "$jobs" $targets >"$out/obj/check.log" 2>&1 || { tail -30 "$out/obj/check.log"; exit 1; }
  grep -q "^#define CONFIG_PREPAGE$" "$out/obj/config-host.h" && log "check: patched files compile (with libprepage)" \
    || log "check: patched files compile (without libprepage: make lib for the oracle)"
  exit 0
fi
log "building qemu-system-x86_64 (-j$jobs)"
ninja -C "$out/obj" -j "$jobs" qemu-system-x86_64 >"$out/obj/ninja.log" 2>&1 || { tail -30 "$out/obj/ninja.log"; exit 1; }
mkdir -p "$out/bin"
cmp -s "$out/obj/qemu-system-x86_64" "$out/bin/qemu-system-x86_64" || { cp "$out/obj/qemu-system-x86_64" "$out/bin/.qemu-system-x86_64.new" && mv -f "$out/bin/.qemu-system-x86_64.new" "$out/bin/qemu-system-x86_64"; }
if grep -q "^#define CONFIG_PREPAGE$" "$out/obj/config-host.h"; then
  log "built $out/bin/qemu-system-x86_64 (oracle: libprepage linked; on with PREPAGE_URL)"
else
  log "built $out/bin/qemu-system-x86_64 WITHOUT the oracle (libprepage not found: make lib, then rm -rf $out/obj)"
fi
