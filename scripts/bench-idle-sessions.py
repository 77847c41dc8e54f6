#!/usr/bin/env python3
"""Creates idle sessions idle-0 … idle-(N-1) on a prepaged, fast.

Usage: bench-idle-sessions.py PORT COUNT

PUTs are pipelined on one loopback connection in batches of 256 (wrk cannot
stop after a given number of requests). Prints "COUNT CREATED REFUSED RATE":
sessions asked for, 201 answers, other answers, and sessions per second.
Used by scripts/bench-server.sh for the memory-per-idle-session figure.
"""
import socket
import sys
import time

BATCH = 256


def read_responses(sock, buf, n, statuses):
    """Reads `n` responses (status line, headers, Content-Length body)."""
    answered = 0
    while answered < n:
        end = buf.find(b"\r\n\r\n")
        length = 0
        if end >= 0:
            head = buf[:end]
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
        if end < 0 or len(buf) < end + 4 + length:
            chunk = sock.recv(1 << 20)
            if not chunk:
                sys.exit("bench-idle-sessions: the server closed the connection")
            buf += chunk
            continue
        status = int(head[9:12])
        statuses[status] = statuses.get(status, 0) + 1
        buf = buf[end + 4 + length:]
        answered += 1
    return buf


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    port, total = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    statuses = {}
    buf = b""
    start = time.monotonic()
    done = 0
    while done < total:
        n = min(BATCH, total - done)
        sock.sendall(b"".join(
            b"PUT /sessions/idle-%d HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}" % (done + k)
            for k in range(n)))
        buf = read_responses(sock, buf, n, statuses)
        done += n
    elapsed = time.monotonic() - start
    created = statuses.get(201, 0)
    print(total, created, total - created, f"{total / max(elapsed, 1e-9):.0f}")


if __name__ == "__main__":
    main()
