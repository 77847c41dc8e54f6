#!/bin/bash
# build-guest.sh — `make qemu-guest`: the guest from Debian packages alone,
# into build/qemu/guest/: vmlinuz from the linux-image-amd64 .deb (extracted
# with dpkg-deb -x, nothing installed) and initramfs.cpio.gz holding busybox
# (busybox-static's .deb, extracted the same way), init and the static
# workload program built here. Idempotent: the .debs are fetched once.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
out=$root/build/qemu/guest
mkdir -p "$out/debs"
cd "$out/debs"
for p in gcc libc6-dev python3; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="${missing:-} $p"
done
if [ -n "${missing:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "missing Debian packages:$missing" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
fi
if ! ls linux-image-*-amd64_*.deb >/dev/null 2>&1 || ! ls busybox-static_*.deb >/dev/null 2>&1; then
  kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1)
  if [ -z "$kpkg" ]; then apt-get update -qq; kpkg=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -n 1); fi
  echo "guest: fetching $kpkg and busybox-static (.deb only, nothing installed)"
  apt-get download -qq "$kpkg" busybox-static 2>&1 | grep -v unsandboxed || true
fi
if [ ! -f "$out/vmlinuz" ] || [ ! -f "$out/busybox" ]; then
  rm -rf "$out/x"; mkdir -p "$out/x"
  dpkg-deb -x linux-image-*-amd64_*.deb "$out/x"
  dpkg-deb -x busybox-static_*.deb "$out/x"
  cp "$out"/x/boot/vmlinuz-* "$out/vmlinuz"
  cp "$out/x/bin/busybox" "$out/busybox"
  rm -rf "$out/x"
fi
cc -O2 -static -pthread -std=gnu11 -Wall -Wextra -o "$out/workload.new" "$here/workload.c"
cmp -s "$out/workload.new" "$out/workload" && rm "$out/workload.new" || mv "$out/workload.new" "$out/workload"
python3 "$here/mkinitramfs.py" "$out/initramfs.cpio.gz.new" init="$here/init" \
  workload="$out/workload" bin/busybox="$out/busybox"
cmp -s "$out/initramfs.cpio.gz.new" "$out/initramfs.cpio.gz" && rm "$out/initramfs.cpio.gz.new" \
  || mv "$out/initramfs.cpio.gz.new" "$out/initramfs.cpio.gz"
echo "guest: $out/vmlinuz ($(ls "$out"/debs/linux-image-*.deb | sed 's#.*/##')), $out/initramfs.cpio.gz"
