#!/usr/bin/env python3
"""Reproductions of issue 12 (hostile clients) against a prepaged binary.

Each case starts its own prepaged on a free loopback port, attacks it as the
issue describes, and prints one line of figures: peak RSS (VmHWM), answers,
lost faults. Run it on an old and a new binary side by side:

    python3 scripts/hostile-repro.py --binary .build/release/prepaged all
    python3 scripts/hostile-repro.py --binary /tmp/prepaged-old chunkext auth

Loopback only; every loop is bounded in count and time.
"""
import argparse, json, os, random, signal, socket, subprocess, sys, tempfile, threading, time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Server:
    def __init__(self, binary, args=(), stderr=None, env=None):
        self.port = free_port()
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(
            [binary, "--port", str(self.port), "--threads", "2", *args],
            stdout=subprocess.DEVNULL, stderr=stderr if stderr is not None else subprocess.DEVNULL, env=e)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if self.p.poll() is not None:
                    raise RuntimeError(f"prepaged exited {self.p.returncode}")
                time.sleep(0.05)
        raise RuntimeError("prepaged did not start")

    def status(self, key):
        try:
            for line in open(f"/proc/{self.p.pid}/status"):
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return None
        return None

    def rss(self):
        return self.status("VmRSS")

    def peak(self):
        return self.status("VmHWM")

    def stop(self, timeout=12):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
                return "did not exit within %ds of SIGTERM (killed)" % timeout
        return "exit %d" % self.p.returncode


def mib(n):
    return "-" if n is None else "%.0f MiB" % (n / 1048576)


def request(port, method, path, body=None, headers=(), timeout=5):
    """One request on a new connection; returns (status, body bytes) or (None, error)."""
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        data = f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        for k, v in headers:
            data += f"{k}: {v}\r\n"
        b = body.encode() if isinstance(body, str) else (body or b"")
        if body is not None:
            data += f"Content-Type: application/json\r\nContent-Length: {len(b)}\r\n"
        s.sendall(data.encode() + b"\r\n" + b)
        out = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
        s.close()
        head, _, rest = out.partition(b"\r\n\r\n")
        return int(head.split()[1]), rest
    except Exception as e:  # noqa
        return None, str(e)


def read_response(s, buf=b""):
    """Reads one response from a socket; returns (status, body, rest) or None on close."""
    while b"\r\n\r\n" not in buf:
        c = s.recv(65536)
        if not c:
            return None
        buf += c
    head, _, rest = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            length = int(v.strip())
    while len(rest) < length:
        c = s.recv(1 << 20)
        if not c:
            return None
        rest += c
    return status, rest[:length], rest[length:]


# ---------------------------------------------------------------- cases

def case_chunkext(binary, seconds=8):
    """Item 1: 1-byte chunks with ~1 KiB extensions on one unauthenticated connection."""
    srv = Server(binary)
    base = srv.rss()
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.sendall(b"POST /sessions/x/faults HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    ext = b";" + b"e" * 500 + b"=" + b"v" * 500
    chunk = (b"1" + ext + b"\r\na\r\n") * 64
    sent = 0
    status = None
    end = time.time() + seconds
    s.settimeout(0.001)
    try:
        while time.time() < end:
            try:
                s.sendall(chunk)
                sent += len(chunk)
            except socket.timeout:
                pass
            try:
                got = s.recv(4096)
                if got:
                    status = int(got.split()[1])
                    break
                else:
                    break
            except socket.timeout:
                pass
    except OSError as e:
        status = status or f"closed ({e.__class__.__name__})"
    peak = srv.peak()
    srv.stop()
    print(f"chunkext: RSS {mib(base)} -> peak {mib(peak)} after {sent / 1048576:.0f} MiB sent in "
          f"<= {seconds}s; answer {status}")


def case_auth(binary, conns=200):
    """Item 2: unauthenticated 4 MiB bodies, and Expect: 100-continue, with --token-file."""
    tf = tempfile.NamedTemporaryFile("w", delete=False)
    tf.write("secret-token\n")
    tf.close()
    srv = Server(binary, ["--token-file", tf.name])
    base = srv.rss()
    # Expect: 100-continue without a token: what comes back first?
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
    s.sendall(b"POST /sessions/a/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
              b"Content-Length: 4194304\r\nExpect: 100-continue\r\n\r\n")
    try:
        first = s.recv(4096).split(b"\r\n")[0].decode()
    except socket.timeout:
        first = "nothing within 3 s"
    s.close()
    body = b"x" * (4194304 - 1)
    socks = []
    statuses = {}

    def one():
        try:
            c = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
            c.sendall(b"PUT /sessions/a HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 4194304\r\n\r\n")
            c.sendall(body)  # all but the last byte: the request stays open
            socks.append(c)
        except OSError as e:
            statuses[e.__class__.__name__] = statuses.get(e.__class__.__name__, 0) + 1

    threads = [threading.Thread(target=one) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    time.sleep(0.5)
    peak = srv.peak()
    for c in socks:
        c.settimeout(2)
        try:
            r = c.recv(4096)
            st = r.split()[1].decode() if r else "closed"
        except (socket.timeout, OSError):
            st = "no answer"
        statuses[st] = statuses.get(st, 0) + 1
        c.close()
    srv.stop()
    os.unlink(tf.name)
    print(f"auth: Expect: 100-continue without token answered {first!r}; {conns} unauthenticated 4 MiB "
          f"bodies: RSS {mib(base)} -> peak {mib(peak)}; answers {statuses}")


def case_overflow(binary):
    """Item 3: --max-body-bytes at the extremes, then a chunked or huge-length request."""
    out = []
    for flag, req in [
        ("9223372036854775807", b"POST /sessions/a/faults HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ("1000000000000000000", b"POST /sessions/a/faults HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n"),
    ]:
        try:
            srv = Server(binary, ["--max-body-bytes", flag])
        except RuntimeError as e:
            out.append(f"--max-body-bytes {flag}: refused at start ({e})")
            continue
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=3)
        s.sendall(req)
        try:
            r = s.recv(4096)
            ans = r.split(b"\r\n")[0].decode() if r else "closed"
        except OSError as e:
            ans = f"{e.__class__.__name__}"
        time.sleep(0.3)
        alive = srv.p.poll() is None
        out.append(f"--max-body-bytes {flag}: answer {ans!r}, server {'alive' if alive else 'died (exit %s)' % srv.p.returncode}")
        srv.stop()
    for flag in ["--max-body-bytes 9223372036854775807", "--max-sessions 9223372036854775807",
                 "--session-idle-timeout 9223372036854775807", "--threads 0", "--port 70000"]:
        try:
            p = subprocess.Popen([binary, *flag.split()] + ([] if "--port" in flag else ["--port", "0"]),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            o, _ = p.communicate(timeout=1.5)
            out.append(f"{flag}: exit {p.returncode}: {o.decode().strip().splitlines()[0] if o else ''}")
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGTERM)
            p.communicate()
            out.append(f"{flag}: accepted (server started)")
    print("overflow:\n  " + "\n  ".join(out))


def case_stderr(binary, n=10000):
    """Item 4: stderr into a pipe nobody reads; n requests; then /livez and SIGTERM."""
    r, w = os.pipe()  # never read
    srv = Server(binary, stderr=w)
    answered = 0
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=2)
    buf = b""
    try:
        for i in range(n):
            s.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            got = read_response(s, buf)
            if got is None:
                break
            buf = got[2]
            answered += 1
    except OSError:
        pass
    live, _ = request(srv.port, "GET", "/livez", timeout=2)
    t = time.time()
    how = srv.stop(timeout=12)
    print(f"stderr: {answered} of {n} requests answered; fresh /livez {live}; SIGTERM: {how} "
          f"after {time.time() - t:.1f}s")
    os.close(r)
    os.close(w)


def case_idle(binary, conns=10500):
    """Item 5: conns connections that never send a byte, then /livez every second."""
    srv = Server(binary)
    socks = []
    for _ in range(conns):
        try:
            socks.append(socket.create_connection(("127.0.0.1", srv.port), timeout=2))
        except OSError:
            break
    t0 = time.time()
    first_ok = None
    tries = []
    while time.time() - t0 < 70:
        st, why = request(srv.port, "GET", "/livez", timeout=1)
        tries.append(st if st else why)
        if st == 200:
            first_ok = time.time() - t0
            break
        time.sleep(0.5)
    for s in socks:
        s.close()
    srv.stop()
    print(f"idle: {len(socks)} silent connections; /livez first answered 200 after "
          f"{'never' if first_ok is None else '%.1f s' % first_ok} ({len(tries) - (1 if first_ok is not None else 0)} failed tries: {sorted(set(map(str, tries[:-1])))[:3]})")


def put(port, sid, body):
    return request(port, "PUT", f"/sessions/{sid}", body)


def case_memory(binary, n=2000):
    """Item 6: bytes per session (plain, 16 largest labels, 1,024 streams) and a big listing."""
    res = []
    for name in ["plain", "labels", "streams"]:
        srv = Server(binary)
        s = socket.create_connection(("127.0.0.1", srv.port))
        buf = b""

        def send(method, path, body):
            nonlocal buf
            b = body.encode()
            s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      f"Content-Length: {len(b)}\r\n\r\n".encode() + b)
            st, bd, buf = read_response(s, buf)
            return st, bd

        def create_all(count, first=0):
            for i in range(first, first + count):
                cfg = {}
                if name == "labels":
                    cfg = {"labels": {("k%02d" % j) + "x" * 125: "v" * 1024 for j in range(16)}}
                if name == "streams":
                    cfg = {"max_streams": 1024}
                st, bd = send("PUT", "/sessions/s%06d" % i, json.dumps(cfg))
                if st not in (200, 201):
                    return i, st, bd
                if name == "streams":
                    pages = [j * 100000 for j in range(1024)]
                    st, bd = send("POST", "/sessions/s%06d/faults" % i,
                                  json.dumps({"pages": pages, "streams": list(range(1024))}))
                    if st != 200:
                        return i, st, bd
            return first + count, None, None

        count = n if name != "streams" else n // 4
        warm = 200 if name != "streams" else 50
        def accounted():
            st, bd = send("GET", "/metrics", "")
            for line in bd.decode().splitlines():
                if line.startswith("prepage_session_memory_bytes "):
                    return int(line.split()[1])
            return None

        create_all(warm)  # allocator warm-up
        base = srv.rss()
        acc0 = accounted()
        made, st, bd = create_all(count, first=warm)
        made -= warm
        rss = srv.rss()
        acc1 = accounted()
        per = (rss - base) / max(1, made)
        acc = "" if acc0 is None else f" ({(acc1 - acc0) / max(1, made):,.0f} B accounted)"
        extra = ""
        if name == "labels":
            t = time.time()
            st2, bd2 = send("GET", "/sessions?limit=1000", "")
            extra = f"; GET /sessions?limit=1000: {st2}, {len(bd2) / 1048576:.1f} MiB answer"
            extra += f", RSS after {mib(srv.rss())}"
        srv.stop()
        res.append(f"{name}: {made} sessions, {per:,.0f} B/session by RSS{acc}{extra}"
                   + (f" (stopped: {st} {bd[:120]!r})" if st else ""))
    print("memory:\n  " + "\n  ".join(res))


def case_race(binary, total=100000, threads=4):
    """Item 7: faults from `threads` threads while another deletes and re-creates the session."""
    srv = Server(binary)
    put(srv.port, "r", "{}")
    counted = [0]
    answered = [0] * threads
    stop = threading.Event()
    lock = threading.Lock()

    def fault(k):
        s = socket.create_connection(("127.0.0.1", srv.port))
        buf = b""
        req = b'POST /sessions/r/fault HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"page": 77}'
        per = total // threads
        done = 0
        while done < per:
            batch = min(50, per - done)
            s.sendall(req * batch)
            for _ in range(batch):
                st, _, buf = read_response(s, buf)
                if st == 200:
                    answered[k] += 1
            done += batch
        s.close()

    def churn():
        s = socket.create_connection(("127.0.0.1", srv.port))
        buf = b""
        while not stop.is_set():
            s.sendall(b"DELETE /sessions/r HTTP/1.1\r\nHost: x\r\n\r\n")
            st, body, buf = read_response(s, buf)
            if st == 200:
                with lock:
                    counted[0] += json.loads(body)["stats"]["faults"]
            s.sendall(b"PUT /sessions/r HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
            _, _, buf = read_response(s, buf)
            time.sleep(0.001)
        s.close()

    ts = [threading.Thread(target=fault, args=(k,)) for k in range(threads)]
    c = threading.Thread(target=churn)
    c.start()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    stop.set()
    c.join()
    st, body = request(srv.port, "DELETE", "/sessions/r")
    if st == 200:
        counted[0] += json.loads(body)["stats"]["faults"]
    srv.stop()
    ok = sum(answered)
    print(f"race: {ok} faults answered 200, {counted[0]} counted in DELETE documents: {ok - counted[0]} lost")


def case_drain(binary):
    """Item 8: three large batches pipelined on one connection, then SIGTERM."""
    srv = Server(binary)
    put(srv.port, "d", json.dumps({"max_streams": 1}))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)  # answers back up in the server
    s.connect(("127.0.0.1", srv.port))
    body = json.dumps({"pages": list(range(0, 65536 * 1000, 1000))}).encode()
    one = (b"POST /sessions/d/faults HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\n\r\n" % len(body)) + body
    s.sendall(one * 3)
    time.sleep(0.5)  # the first answer fills the socket; the rest wait in the server
    srv.p.send_signal(signal.SIGTERM)
    s.settimeout(10)
    got = 0
    buf = b""
    try:
        while got < 3:
            r = read_response(s, buf)
            if r is None:
                break
            buf = r[2]
            got += r[0] == 200
    except OSError:
        pass
    srv.p.wait(12)
    print(f"drain: {got} of 3 pipelined batches answered after SIGTERM")


def case_token(binary):
    """Item 9: a token file with an internal newline."""
    tf = tempfile.NamedTemporaryFile("w", delete=False)
    tf.write("abc\ndef\n")
    tf.close()
    p = subprocess.Popen([binary, "--port", "0", "--token-file", tf.name], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        o, _ = p.communicate(timeout=1.5)
        print(f"token: exit {p.returncode}: {o.decode().strip().splitlines()[-1]}")
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGTERM)
        p.communicate()
        print("token: a token file 'abc\\ndef\\n' was accepted (the server started)")
    os.unlink(tf.name)


CASES = {
    "chunkext": case_chunkext, "auth": case_auth, "overflow": case_overflow, "stderr": case_stderr,
    "idle": case_idle, "memory": case_memory, "race": case_race, "drain": case_drain, "token": case_token,
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True)
    ap.add_argument("cases", nargs="+", choices=[*CASES, "all"])
    a = ap.parse_args()
    for c in (CASES if "all" in a.cases else a.cases):
        CASES[c](a.binary)
        sys.stdout.flush()
