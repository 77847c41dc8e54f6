#!/usr/bin/env python3
"""Restart of prepaged with --state-dir holding many sessions: how long until /readyz is 200.

Usage: scripts/bench-restore.py PREPAGED [--sessions N] [--faults F] [--rounds R] [--policy P]
                                [--adopt-rounds A]

Creates N sessions (default 100,000) on a release prepaged with a fresh state
directory, gives each F faults (default 64: a few cases of an FSD load, so each
session holds learned state: dp-plus's transition table, estimate, plan and
slots), stops it with SIGTERM (the drain writes the last snapshot), then starts
it again R times (default 3) on the same directory and measures, each time,
from exec to the first 200 of /readyz (polled every 2 ms), and the restore
time the server logs. Then, A times (default 3), the directory as a stopped
peer's: a second instance with --peers and --peer-state-dirs on a fresh copy
of it, and the time of its first three faults for sessions there (each moves
the session; the first reads the stopped peer's directory). Prints the sizes
on disk and every figure. Asserts nothing: a benchmark.
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(binary, port, state_dir, log):
    return subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port), "--threads", "2", "--state-dir", state_dir,
         "--session-idle-timeout", "0", "--max-sessions", "2000000"],
        stdout=subprocess.DEVNULL, stderr=log)


def wait_ready(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return time.monotonic()
        except OSError:
            pass
        time.sleep(0.002)
    raise SystemExit("prepaged did not become ready")


def populate(port, ids, faults, policy, seed):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    rng = random.Random(seed)
    config = json.dumps({"policy": policy} if policy else {})
    for sid in ids:
        c.request("PUT", "/sessions/" + sid, body=config, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 201, r.status
        pages = []
        page = rng.randrange(1 << 30)
        for _ in range(faults):
            # FSD-like: cases of about 64 pages, 20 % of other sizes.
            if rng.random() < 1 / 48:
                page = rng.randrange(1 << 30)
            else:
                page += 1
            pages.append(page)
        c.request("POST", "/sessions/%s/faults" % sid, body=json.dumps({"pages": pages}),
                  headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        assert r.status == 200, r.status


def adopt(binary, state, work, log, ids, r):
    """A survivor of the instance that left `state`: its first three faults for sessions there (ms)."""
    copy = os.path.join(work, "peer-%d" % r)
    shutil.copytree(state, copy)
    port = free_port()
    p = subprocess.Popen(
        [binary, "--host", "127.0.0.1", "--port", str(port), "--threads", "2",
         "--state-dir", os.path.join(work, "survivor-%d" % r),
         "--peers", "http://127.0.0.1:%d" % free_port(), "--peer-state-dirs", copy],
        stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_ready(port)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        times = []
        for k in range(3):
            sid = ids[(len(ids) // 3) * k + r]
            t0 = time.monotonic()
            c.request("POST", "/sessions/%s/fault" % sid, body='{"page": 5}',
                      headers={"Content-Type": "application/json"})
            answer = c.getresponse()
            answer.read()
            times.append((time.monotonic() - t0) * 1000)
            assert answer.status == 200, answer.status
        return times
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=120)
        shutil.rmtree(copy, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prepaged")
    ap.add_argument("--sessions", type=int, default=100_000)
    ap.add_argument("--faults", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--policy", default="")
    ap.add_argument("--adopt-rounds", type=int, default=3)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="prepage-bench-restore-")
    state = os.path.join(work, "state")
    log_path = os.path.join(work, "prepaged.log")
    port = free_port()
    try:
        with open(log_path, "ab") as log:
            p = start(args.prepaged, port, state, log)
            wait_ready(port)
            t0 = time.monotonic()
            ids = ["vm-%06d" % i for i in range(args.sessions)]
            workers = 4
            threads = [threading.Thread(target=populate, args=(port, ids[w::workers], args.faults, args.policy, w))
                       for w in range(workers)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            print("populated %d sessions x %d faults in %.1f s" % (args.sessions, args.faults, time.monotonic() - t0))
            t0 = time.monotonic()
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=120)
            print("drain (last snapshot) and exit: %.2f s" % (time.monotonic() - t0))
            files = sorted(os.listdir(state))
            total = 0
            for name in files:
                size = os.path.getsize(os.path.join(state, name))
                total += size
                print("  %-36s %12d bytes" % (name, size))
            print("state directory: %d bytes, %.0f bytes per session" % (total, total / args.sessions))
            figures = []
            for r in range(args.rounds):
                before = os.path.getsize(log_path)
                t0 = time.monotonic()
                p = start(args.prepaged, port, state, log)
                ready = wait_ready(port)
                elapsed = (ready - t0) * 1000
                with open(log_path, "rb") as f:
                    f.seek(before)
                    text = f.read().decode(errors="replace")
                m = re.search(r"restored sessions .*?ms=([0-9.]+).*?sessions=(\d+)", text)
                restored_ms = float(m.group(1)) if m else float("nan")
                count = int(m.group(2)) if m else -1
                rss = 0
                with open("/proc/%d/status" % p.pid) as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            rss = int(line.split()[1]) * 1024
                figures.append(elapsed)
                print("restart %d: %d sessions restored in %.0f ms (server's count), exec to /readyz 200: %.0f ms, RSS %.0f MiB"
                      % (r + 1, count, restored_ms, elapsed, rss / 2**20))
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=120)
            figures.sort()
            print("exec to ready, median of %d: %.0f ms (min %.0f, max %.0f)"
                  % (len(figures), figures[len(figures) // 2], figures[0], figures[-1]))
            firsts = []
            for r in range(args.adopt_rounds):
                firsts.append(adopt(args.prepaged, state, work, log, ids, r))
                print("adopt %d: a survivor's first faults for a stopped peer's sessions: %s ms"
                      % (r + 1, ", ".join("%.2f" % t for t in firsts[-1])))
            if firsts:
                firsts.sort()
                print("first fault that moves a session, median of %d: %.1f ms (min %.1f, max %.1f)"
                      % (len(firsts), firsts[len(firsts) // 2][0], firsts[0][0], firsts[-1][0]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
