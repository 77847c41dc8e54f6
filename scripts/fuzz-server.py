#!/usr/bin/env python3
"""A seeded mutation fuzzer over raw sockets against a live prepaged.

Each case takes a valid request (or a pipelined pair) from a corpus, mutates
its bytes, sends them on a new connection, half-closes, and reads the answer
to the end. It checks that every answer is well framed HTTP/1.1 (status line,
headers, exactly Content-Length bytes), that no answer is a 500, and then
sends a sentinel request (GET /livez on a kept-alive connection) that must be
answered 200: the server is alive and its loops are not stuck. A failing case
is written to a file with its seed and index, so it can be replayed.

    python3 scripts/fuzz-server.py --serve .build/debug/prepaged --cases 20000 --seed 1
    python3 scripts/fuzz-server.py --url 127.0.0.1:7070 --token T --cases 100000

Loopback only; bounded by --cases and --seconds. Prints 'N passed, N failed'.
"""
import argparse, os, random, signal, socket, subprocess, sys, tempfile, time

TOKEN = "fuzz-token"


def corpus(token):
    auth = f"Authorization: Bearer {token}\r\n"
    def req(method, path, body=None, extra="", ctype="application/json", authz=True):
        h = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n" + (auth if authz else "") + extra
        if body is not None:
            b = body.encode()
            h += (f"Content-Type: {ctype}\r\n" if ctype else "") + f"Content-Length: {len(b)}\r\n"
            return h.encode() + b"\r\n" + b
        return h.encode() + b"\r\n"

    def chunked(method, path, parts, trailer=""):
        h = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\n{auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        body = "".join(f"{len(p):x};ext=v\r\n{p}\r\n" for p in parts) + "0\r\n" + trailer + "\r\n"
        return (h + body).encode()

    items = [
        req("GET", "/livez", authz=False),
        req("GET", "/readyz", authz=False),
        req("GET", "/version"),
        req("GET", "/metrics"),
        req("GET", "/sessions?limit=5&after=a"),
        req("PUT", "/sessions/fz1", '{"policy":"dp","max_pages":64,"k":5,"labels":{"a":"b"}}'),
        req("PUT", "/sessions/fz2", '{"policy":"forward","forward_pages":8,"page_size":4096}'),
        req("PUT", "/sessions/fz3", '{"policy":"readahead","ra_initial":4,"ra_max":64,"max_streams":4}'),
        req("POST", "/sessions/fz1/fault", '{"page":4096,"stream":1}'),
        req("POST", "/sessions/fz1/fault", '{"addr":"0x7f0000001000"}'),
        req("POST", "/sessions/fz1/fault", "page=17&stream=2", ctype="application/x-www-form-urlencoded"),
        req("POST", "/sessions/fz1/fault?page=99"),
        req("POST", "/sessions/fz1/faults", '{"pages":[1,2,3,100,101],"streams":[0,0,1,1,2]}'),
        req("POST", "/sessions/fz2/faults", '{"addrs":[4096,"0x2000",1e3]}'),
        req("POST", "/sessions/fz1/reset"),
        req("GET", "/sessions/fz1"),
        req("HEAD", "/sessions/fz1"),
        req("DELETE", "/sessions/fz3"),
        req("OPTIONS", "*"),
        req("PUT", "/sessions/fz4", '{}', extra="Expect: 100-continue\r\n"),
        chunked("POST", "/sessions/fz1/faults", ['{"pages":', "[5,6,", "7]}"], trailer="X-T: 1\r\n"),
        chunked("PUT", "/sessions/fz5", ["{", '"k":3', "}"]),
        req("GET", "/livez", authz=False) + req("POST", "/sessions/fz1/fault", '{"page":1}'),
        b"GET http://localhost/version HTTP/1.1\r\nHost: x\r\n" + auth.encode() + b"\r\n",
        b"GET /livez HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ]
    return items


TOKENS = [b"\r\n", b"\r\n\r\n", b"\n", b"\r", b" ", b"\t", b":", b";", b",", b"=", b"\x00", b"\xff", b"0x",
          b"Content-Length: 99999999999999999999\r\n", b"Content-Length: 0\r\n", b"Content-Length: -1\r\n",
          b"Transfer-Encoding: chunked\r\n", b"Transfer-Encoding: gzip, chunked\r\n",
          b"Expect: 100-continue\r\n", b"Connection: close\r\n", b"Host: a\r\n",
          b"ffffffffffffffffffff", b"18446744073709551616", b"9223372036854775807", b"-9223372036854775808",
          b'"\\u0000"', b'"\\ud800"', b"[[[[[[[[[[", b"{{{{", b"null", b"1e999", b"HTTP/1.0", b"HTTP/2.0",
          b"%00", b"%zz", b"/../", b"?limit=0", b"Authorization: Bearer x\r\n"]


def mutate(data, rng):
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 3, 5, 8))):
        op = rng.randrange(8)
        at = rng.randrange(len(b) + 1)
        if op == 0 and b:  # flip a bit
            i = rng.randrange(len(b))
            b[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # insert a random byte
            b[at:at] = bytes([rng.randrange(256)])
        elif op == 2 and b:  # delete a run
            del b[at:at + rng.randrange(1, 8)]
        elif op == 3:  # splice an interesting token
            b[at:at] = rng.choice(TOKENS)
        elif op == 4 and b:  # duplicate a region
            i = rng.randrange(len(b))
            b[at:at] = b[i:i + rng.randrange(1, 64)]
        elif op == 5 and b:  # replace a digit run's digit
            digits = [i for i, c in enumerate(b) if 0x30 <= c <= 0x39]
            if digits:
                b[rng.choice(digits)] = rng.choice(b"0123456789abcdefF")
        elif op == 6:  # truncate
            del b[at:]
        else:  # swap a letter's case
            letters = [i for i, c in enumerate(b) if 0x41 <= (c & 0xDF) <= 0x5A]
            if letters:
                b[rng.choice(letters)] ^= 0x20
    return bytes(b)


def check_answers(data, head_request):
    """Every answer in `data` is a well-framed HTTP/1.1 response; returns an error or None."""
    i = 0
    while i < len(data):
        end = data.find(b"\r\n\r\n", i)
        if end < 0:
            return f"unterminated head at byte {i}"
        head = data[i:end].split(b"\r\n")
        parts = head[0].split(b" ", 2)
        if len(parts) < 2 or parts[0] != b"HTTP/1.1" or not parts[1].isdigit():
            return f"bad status line {head[0][:80]!r}"
        status = int(parts[1])
        if status == 500 or not (100 <= status <= 599):
            return f"status {status}"
        length = None
        for line in head[1:]:
            k, _, v = line.partition(b":")
            if k.strip().lower() == b"content-length":
                length = int(v.strip())
        i = end + 4
        if 100 <= status < 200:
            continue
        if length is None:
            return "answer without Content-Length"
        if head_request and (i == len(data) or data.startswith(b"HTTP/1.1 ", i)):
            continue  # the answer to a HEAD carries no body (an error answer to a bad one does)
        if len(data) - i < length:
            return f"answer body short: {len(data) - i} of {length}"
        i += length
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve", help="start this prepaged binary (with a token) on a free port")
    ap.add_argument("--url", help="host:port of a running prepaged")
    ap.add_argument("--token", default=TOKEN)
    ap.add_argument("--cases", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=60, help="stop after this long, whatever the count")
    ap.add_argument("--out", default=tempfile.gettempdir(), help="where a failing case is written")
    a = ap.parse_args()

    proc = None
    if a.serve:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        tf = tempfile.NamedTemporaryFile("w", delete=False, prefix="fuzz-token-")
        tf.write(a.token + "\n")
        tf.close()
        proc = subprocess.Popen([a.serve, "--port", str(port), "--threads", "2", "--shutdown-delay", "0", "--token-file", tf.name,
                                 "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host = "127.0.0.1"
        for _ in range(200):
            try:
                socket.create_connection((host, port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
    else:
        host, port = a.url.rsplit(":", 1)
        port = int(port)

    rng = random.Random(a.seed)
    items = corpus(a.token)
    sentinel = socket.create_connection((host, port), timeout=5)
    ping = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    passed = failed = 0
    start = time.time()
    statuses = {}

    def fail(i, case, why):
        path = os.path.join(a.out, f"prepage-fuzz-seed{a.seed}-case{i}.bin")
        with open(path, "wb") as f:
            f.write(case)
        print(f"case {i} (seed {a.seed}): {why}; input in {path}", file=sys.stderr)

    try:
        for i in range(a.cases):
            if time.time() - start > a.seconds:
                print(f"stopped after {a.seconds:.0f} s at case {i}", file=sys.stderr)
                break
            case = mutate(rng.choice(items), rng)
            ok = True
            try:
                c = socket.create_connection((host, port), timeout=5)
                c.sendall(case)
                c.shutdown(socket.SHUT_WR)
                data = b""
                while True:
                    got = c.recv(65536)
                    if not got:
                        break
                    data += got
                c.close()
                why = check_answers(data, case.startswith(b"HEAD"))
                if why:
                    ok = False
                    fail(i, case, why)
                elif data:
                    st = data[9:12].decode(errors="replace")
                    statuses[st] = statuses.get(st, 0) + 1
            except (ConnectionResetError, BrokenPipeError):
                pass  # a refused request may be answered with a reset after the answer: fine
            except OSError as e:
                ok = False
                fail(i, case, f"{e.__class__.__name__}: {e}")
            try:
                sentinel.sendall(ping)
                head = b""
                while b"\r\n\r\n" not in head:
                    got = sentinel.recv(4096)
                    if not got:
                        raise OSError("sentinel connection closed")
                    head += got
                head_l = head.lower()
                n = int(head_l.split(b"content-length:")[1].split(b"\r\n")[0])
                rest = head.split(b"\r\n\r\n", 1)[1]
                while len(rest) < n:
                    rest += sentinel.recv(4096)
                if not head.startswith(b"HTTP/1.1 200"):
                    raise OSError(f"sentinel answered {head[:12]!r}")
            except OSError as e:
                ok = False
                fail(i, case, f"sentinel failed after this case: {e}")
                if proc is not None and proc.poll() is not None:
                    print(f"prepaged exited {proc.returncode}", file=sys.stderr)
                    failed += 1
                    break
                sentinel = socket.create_connection((host, port), timeout=5)
            if ok:
                passed += 1
            else:
                failed += 1
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                failed += 1
                print("prepaged did not exit on SIGTERM", file=sys.stderr)
            os.unlink(tf.name)
    elapsed = time.time() - start
    top = ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items()))
    print(f"fuzz-server: seed {a.seed}, {passed + failed} cases in {elapsed:.1f} s; answers {top}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed or passed + failed < min(a.cases, 1) else 0)


if __name__ == "__main__":
    main()
