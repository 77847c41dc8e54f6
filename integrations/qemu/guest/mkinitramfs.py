#!/usr/bin/env python3
"""mkinitramfs.py OUT.cpio.gz NAME=SRC ... — a gzipped newc cpio archive.

Each NAME=SRC puts the file SRC at /NAME (mode kept); directories named in
NAME are created. Also creates /dev/console (c 5 1), /proc, /sys, /dev, /tmp
and busybox applet links in /bin for the few commands the init calls by name.
Deterministic: every mtime is 0, entries in a fixed order.
"""
import gzip, os, stat, sys

def main():
    out, items = sys.argv[1], [a.split("=", 1) for a in sys.argv[2:]]
    entries, ino = [], [1]

    def add(name, mode, data=b"", rdev=(0, 0)):
        entries.append((name, mode, data, rdev))

    dirs = {"dev", "proc", "sys", "tmp", "bin"}
    for name, _ in items:
        parts = name.split("/")[:-1]
        for i in range(len(parts)):
            dirs.add("/".join(parts[: i + 1]))
    for d in sorted(dirs):
        add(d, stat.S_IFDIR | 0o755)
    add("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1))
    for name, src in items:
        with open(src, "rb") as f:
            add(name, stat.S_IFREG | (os.stat(src).st_mode & 0o777), f.read())
    for applet in ("sh", "sleep", "cat", "mount", "mkdir", "grep"):
        if applet != "busybox":
            add("bin/" + applet, stat.S_IFLNK | 0o777, b"busybox")

    def hdr(name, mode, size, rdev):
        nb = name.encode() + b"\0"
        h = "070701" + "".join("%08X" % v for v in (
            ino[0], mode, 0, 0, 1, 0, size, 0, 0, rdev[0], rdev[1], len(nb), 0))
        ino[0] += 1
        b = h.encode() + nb
        return b + b"\0" * (-len(b) % 4)

    blob = bytearray()
    for name, mode, data, rdev in entries:
        blob += hdr(name, mode, len(data), rdev) + data + b"\0" * (-len(data) % 4)
    blob += hdr("TRAILER!!!", 0, 0, (0, 0))
    with gzip.GzipFile(out, "wb", mtime=0) as f:
        f.write(bytes(blob))

main()
