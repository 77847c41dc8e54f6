#!/usr/bin/env python3
"""Three prepaged instances behind HAProxy and behind nginx, for real (issue 14).

Usage: deploy/sharding/run.py PREPAGED [--quick | --long] [--balancer haproxy|nginx|both]
                              [--sessions N] [--faults F] [--threads T] [--client-nice N] [--json FILE]

For each balancer, on loopback, with every instance's --state-dir under one
directory (shared storage) and each instance told its peers (--peers,
--peer-state-dirs):

1. spread: N sessions (default 300) created through the balancer live on
   exactly one instance each (the spread is reported), and a fault posted for
   each through the balancer reaches its session's instance;
2. undisturbed: the C load generator (deploy/sharding/loadgen.c, one
   libprepage client per thread, fault deadline 5 ms) faults every session at
   full speed through the balancer;
3. kill: the same load, and one instance killed with SIGKILL a third of the
   way in: only its sessions move (the others stay where they were and are
   never re-created), each is recovered by its client on a survivor (its
   first fault there adopts it with what it learned, from the killed
   instance's state directory: no 404, no re-creation); the first fault
   after the kill is reported by when it was asked (before the signal,
   while the process went away, once it was gone);
4. rolling update: the same load, one instance stopped with SIGTERM (its
   sessions move to the others through the drain, exactly) and started again
   (they come back, with what they learned meanwhile).

Every run's decisions are compared fault by fault with a reference where the
oracle saw every fault (the same fixed page sequences replayed in batches on a
fresh instance): faults that failed, faults that fell back (decided by the
client: the oracle was away or late — a fault the oracle never sees changes
what it learns, so a session's later decisions differ from the reference),
decisions that differed, in all sessions and in sessions that never fell back
(after a SIGTERM those must not differ at all: the move is exact), and the
stall — for each session that moved, the longest wait between two of its
answers after the disruption beyond its usual one, the time to its first
decision by the oracle again, and the time its client went without the oracle.
Checks print "ok - …" / "not ok - …"; figures print as "# …". Exit 1 when a
check fails. A --quick run (deploy/test.sh) is short; --long (make
test-sharding) is longer and repeats each disruption.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
results = {"passed": 0, "failed": 0}


def check(what, ok):
    print(("ok - " if ok else "not ok - ") + what, flush=True)
    results["passed" if ok else "failed"] += 1
    return ok


def note(text):
    print("# " + text, flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def request(port, method, path, body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    headers = {"Content-Type": "application/json"} if body is not None else {}
    c.request(method, path, body=body, headers=headers)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def wait_ready(port, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if request(port, "GET", "/readyz", timeout=1)[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.02)
    return False


class Cluster:
    """Three instances on shared storage and a balancer in front of them."""

    def __init__(self, prepaged, balancer, work, snapshot_interval):
        self.prepaged, self.balancer, self.work = prepaged, balancer, work
        self.snapshot_interval = snapshot_interval
        self.ports = [free_port() for _ in range(3)]
        self.dirs = [os.path.join(work, "shared", "prepaged-%d" % (i + 1)) for i in range(3)]
        self.procs = [None, None, None]
        self.lb_port = free_port()
        self.lb = None
        help_text = subprocess.run([prepaged, "--help"], capture_output=True, text=True).stdout
        self.shutdown_delay = "--shutdown-delay" in help_text
        for i in range(3):
            self.start(i)
        self.start_balancer()

    def start(self, i):
        others = [k for k in range(3) if k != i]
        args = [self.prepaged, "--host", "127.0.0.1", "--port", str(self.ports[i]), "--threads", "1",
                "--state-dir", self.dirs[i], "--snapshot-interval", self.snapshot_interval,
                "--peers", ",".join("http://127.0.0.1:%d" % self.ports[k] for k in others),
                "--peer-state-dirs", ",".join(self.dirs[k] for k in others), "--log-level", "warning"]
        if self.shutdown_delay:
            args += ["--shutdown-delay", "2s"]
        log = open(os.path.join(self.work, "prepaged-%d.log" % (i + 1)), "ab")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log)
        if not wait_ready(self.ports[i]):
            raise SystemExit("prepaged %d did not start" % (i + 1))

    def start_balancer(self):
        backends = ["127.0.0.1:%d" % p for p in self.ports]
        log = open(os.path.join(self.work, "%s.log" % self.balancer), "ab")
        if self.balancer == "haproxy":
            # deploy/haproxy/haproxy.cfg as it is, with a third server line like the others.
            text = open(os.path.join(ROOT, "deploy/haproxy/haproxy.cfg")).read()
            lines = text.splitlines()
            servers = [l for l in lines if re.match(r'\s+server prepaged-\d+ ', l)]
            template = servers[0]
            body = [l for l in lines if l not in servers]
            at = lines.index(servers[0])
            for k in range(3):
                body.insert(at + k, template.replace("prepaged-1", "prepaged-%d" % (k + 1))
                            .replace("PREPAGE_BACKEND_1", "PREPAGE_BACKEND_%d" % (k + 1)))
            path = os.path.join(self.work, "haproxy.cfg")
            open(path, "w").write("\n".join(body) + "\n")
            env = dict(os.environ, PREPAGE_LB_BIND="127.0.0.1:%d" % self.lb_port,
                       **{"PREPAGE_BACKEND_%d" % (k + 1): b for k, b in enumerate(backends)})
            self.lb = subprocess.Popen(["haproxy", "-f", path, "-db"], stdout=log, stderr=log, env=env)
        else:
            conf = open(os.path.join(ROOT, "deploy/nginx/prepage.conf")).read()
            conf = conf.replace("@BIND@", "127.0.0.1:%d" % self.lb_port)
            for k, b in enumerate(backends):
                conf = conf.replace("@BACKEND_%d@" % (k + 1), b)
            d = os.path.join(self.work, "nginx")
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, "prepage.conf"), "w").write(conf)
            open(os.path.join(d, "nginx.conf"), "w").write(
                "daemon off;\nmaster_process off;\nworker_processes 1;\npid %s/nginx.pid;\n"
                "error_log %s/error.log warn;\nevents { worker_connections 4096; }\n"
                "http {\n access_log off;\n client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n"
                " fastcgi_temp_path %s/fcgi;\n uwsgi_temp_path %s/uwsgi;\n scgi_temp_path %s/scgi;\n"
                " include %s/prepage.conf;\n}\n" % ((d,) * 8))
            self.lb = subprocess.Popen(["nginx", "-p", d, "-c", os.path.join(d, "nginx.conf"), "-e",
                                        os.path.join(d, "error.log")], stdout=log, stderr=log)
        if not wait_ready(self.lb_port):
            raise SystemExit("%s did not start" % self.balancer)
        time.sleep(1.2 if self.balancer == "haproxy" else 0.1)  # first health checks

    def sessions(self, i):
        """The ids instance i holds (by its list)."""
        ids, after = [], None
        while True:
            status, body = request(self.ports[i], "GET", "/sessions?limit=1000" + ("&after=" + after if after else ""))
            doc = json.loads(body)
            ids += [s["id"] for s in doc["sessions"]]
            after = doc.get("next")
            if not after:
                return ids

    def faults_of(self, i):
        """Faults decided per session on instance i."""
        out, after = {}, None
        while True:
            status, body = request(self.ports[i], "GET", "/sessions?limit=1000" + ("&after=" + after if after else ""))
            doc = json.loads(body)
            for s in doc["sessions"]:
                out[s["id"]] = s["stats"]["faults"]
            after = doc.get("next")
            if not after:
                return out

    def moved(self, i):
        status, body = request(self.ports[i], "GET", "/metrics")
        m = {}
        for line in body.decode().splitlines():
            g = re.match(r'prepage_sessions_moved_total\{how="(\w+)"\} (\d+)', line)
            if g:
                m[g.group(1)] = int(g.group(2))
        return m

    def stop(self):
        for p in self.procs + [self.lb]:
            if p is not None and p.poll() is None:
                p.terminate()
        for p in self.procs + [self.lb]:
            if p is not None:
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def load(path):
    """{(k, i): (page, start, count, outcome, t_ns, stream, wait_ns)} of a loadgen output."""
    out = {}
    for line in open(path):
        k, i, page, stream, start, count, outcome, t, wait = line.split()
        out[(int(k), int(i))] = (int(page), int(start), int(count), int(outcome), int(t), int(stream), int(wait))
    return out


# A fault the client answers without sending anything (its breaker open) takes microseconds; any answer
# from the oracle, through a balancer, takes more than this.
BREAKER_ANSWER_NS = 100_000

OUTCOMES = {"first": 0, "smaller": 1, "larger": 2, "reverse": 3, "repeat": 4}


def reference(prepaged, work, base):
    """The decisions of the same faults when the oracle sees every one of them: each
    session's pages replayed in one batch on a fresh instance. {(k, i): (start, count, outcome)}"""
    port = free_port()
    log = open(os.path.join(work, "reference.log"), "ab")
    p = subprocess.Popen([prepaged, "--host", "127.0.0.1", "--port", str(port), "--threads", "1",
                          "--log-level", "warning"], stdout=log, stderr=log)
    try:
        wait_ready(port)
        by_session = {}
        for (k, i), v in base.items():
            by_session.setdefault(k, []).append((i, v[0], v[5]))
        ref = {}
        for k, faults in by_session.items():
            faults.sort()
            request(port, "PUT", "/sessions/r%d" % k, "{}")
            body = json.dumps({"pages": [f[1] for f in faults], "streams": [f[2] for f in faults]})
            status, data = request(port, "POST", "/sessions/r%d/faults" % k, body)
            for (i, _, _), d in zip(faults, json.loads(data)["decisions"]):
                ref[(k, i)] = (d["start"], d["count"], OUTCOMES[d["outcome"]])
        return ref
    finally:
        p.terminate()
        p.wait()


def run_load(loadgen, port, args, out, prefix):
    return subprocess.Popen([loadgen, "http://127.0.0.1:%d" % port, str(args.sessions), str(args.threads),
                             str(args.faults), "1", out, prefix, str(args.deadline_ms)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=(lambda: os.nice(args.client_nice)) if args.client_nice else None)


def differences(name, ref, run, moved_sessions):
    """Oracle decisions of a run that differ from the reference (every fault seen by the oracle)."""
    decided = [key for key, v in run.items() if 0 <= v[3] <= 4]
    differed = [key for key in decided if run[key][1:4] != ref[key]]
    with_fallback = {k for (k, i), v in run.items() if v[3] == 5 or v[3] < 0}
    clean_differed = [key for key in differed if key[0] not in with_fallback]
    note("%s: %d of %d oracle decisions differed from a run where the oracle saw every fault (%d in sessions that "
         "moved; %d in sessions that never fell back, %d of them in sessions that moved)"
         % (name, len(differed), len(decided), sum(1 for key in differed if key[0] in moved_sessions),
            len(clean_differed), sum(1 for key in clean_differed if key[0] in moved_sessions)))
    # A session that neither moved nor fell back is untouched by anything: its decisions are the reference's.
    untouched = [key for key in clean_differed if key[0] not in moved_sessions]
    check("%s: sessions that neither moved nor fell back decided exactly as the reference (%d differed)"
          % (name, len(untouched)), not untouched)
    return differed, clean_differed


def compare(name, ref, run, moved_sessions, t_disrupt, t_gone, prefix, exact):
    """Checks and figures of a disturbed run (disrupted at t_disrupt; the stopped process reaped at t_gone)."""
    total = len(run)
    failed = sum(1 for v in run.values() if v[3] < 0)
    fallback = sum(1 for v in run.values() if v[3] == 5)
    note("%s: %d faults, %d failed, %d fell back" % (name, total, failed, fallback))
    differed, clean_differed = differences(name, ref, run, moved_sessions)
    check("%s: no fault failed (%d)" % (name, failed), failed == 0)
    if exact:
        # A move through the drain is exact: a session whose client never fell back (the oracle saw
        # all its faults) decides exactly as if nothing had happened.
        check("%s: every session that never fell back decided exactly as undisturbed (%d decisions differed)"
              % (name, len(clean_differed)), not clean_differed)
    # The stall: per moved session, from the disruption to its first oracle decision after it;
    # the longest wait between two of its answers after the disruption beyond its usual wait
    # (the median, which is one turn of its thread's round of sessions); and the time its
    # faults went without the oracle (fallbacks).
    recover, without, added, waited, first_wait = [], [], [], [], []
    clean = 0
    usual = statistics.median(v[6] for v in run.values()) / 1e6
    # Each session's faults in order, grouped once (the run has sessions x faults entries).
    by_session = {}
    for (k, i), v in sorted(run.items()):
        by_session.setdefault(k, []).append((i, v))
    for k in moved_sessions:
        seq = by_session.get(k, [])
        after = [(i, v) for i, v in seq if v[4] >= t_disrupt]
        first = next((v for i, v in after if 0 <= v[3] <= 4), None)
        if first is not None:
            recover.append((first[4] - t_disrupt) / 1e6)
        gaps = [(w[4] - v[4]) / 1e6 for (i, v), (j, w) in zip(seq, seq[1:])]
        late = [(w[4] - v[4]) / 1e6 for (i, v), (j, w) in zip(seq, seq[1:]) if w[4] >= t_disrupt]
        if gaps and late:
            added.append(max(0.0, max(late) - statistics.median(gaps)))
        without.append(sum(g for g, (j, w) in zip(gaps, seq[1:]) if w[3] == 5 or w[3] < 0))
        # What the session's vCPU waited for its faults after the disruption beyond the usual fault,
        # and for the first fault that met the move (its adoption from the killed instance's directory; after
        # a drain, the 404, the re-creation and the retry — or the deadline).
        waited.append(sum(max(0.0, v[6] / 1e6 - usual) for i, v in after))
        meets = [v for i, v in after if v[6] / 1e6 > 2 * usual + 1.0]
        if meets:
            first_wait.append(meets[0][6] / 1e6)
        if not any(v[3] == 5 or v[3] < 0 for i, v in after):
            clean += 1
    unmoved_fallbacks = sum(1 for (k, i), v in run.items() if k not in moved_sessions and v[3] == 5 and v[4] >= t_disrupt)
    # The move apart from the load: each session's first fault answered after the disruption (for a moved
    # session, the one that met the move: it reached the stopped instance, or its successor), oracle or
    # fallback, moved sessions beside the others; and the share of faults after it that fell back, each
    # group (the load's own fallbacks, on a machine where the clients share two cores with the servers).
    # A fault its client answered at once (its breaker open after an earlier miss: nothing sent) meets
    # nothing: the first fault the client sent after the disruption is the one counted.
    first_after = {True: [], False: []}
    breaker_first = {True: 0, False: 0}
    later = {True: [0, 0], False: [0, 0]}
    for k, seq in by_session.items():
        after = [(i, v) for i, v in seq if v[4] >= t_disrupt]
        moved = k in moved_sessions
        held = 0
        while held < len(after) and after[held][1][3] == 5 and after[held][1][6] < BREAKER_ANSWER_NS:
            held += 1
        breaker_first[moved] += 1 if held else 0
        after = after[held:]
        if not after:
            continue
        first_after[moved].append(after[0][1])
        later[moved][0] += sum(1 for i, v in after[1:] if v[3] == 5)
        later[moved][1] += len(after) - 1
    def pct(xs, q):
        return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] if xs else 0.0
    meeting = {}
    for moved in (True, False):
        waits = [v[6] / 1e6 for v in first_after[moved]]
        # When each was asked: before the signal (in flight when it was sent), while the stopped process
        # went away (its sockets still open), or once it was reaped; and how many of each the oracle decided.
        when = {"before": [0, 0], "dying": [0, 0], "gone": [0, 0]}
        for v in first_after[moved]:
            asked = v[4] - v[6]
            slot = when["before" if asked < t_disrupt else "dying" if asked < t_gone else "gone"]
            slot[0] += 1
            slot[1] += 1 if 0 <= v[3] <= 4 else 0
        meeting[moved] = {"sessions": len(waits), "by_oracle": sum(1 for v in first_after[moved] if 0 <= v[3] <= 4),
                          "wait_ms_median": statistics.median(waits) if waits else None,
                          "wait_ms_p90": pct(waits, 0.9), "wait_ms_max": max(waits) if waits else None,
                          "asked": {k: {"sessions": a, "by_oracle": b} for k, (a, b) in when.items()},
                          "breaker_open_first": breaker_first[moved],
                          "later_fell_back": later[moved][0], "later_faults": later[moved][1]}
    m, u = meeting[True], meeting[False]
    if m["sessions"] and u["sessions"]:
        note("%s: the first fault after the disruption was decided by the oracle in %d of %d moved sessions "
             "(waited median %.2f, p90 %.2f, max %.2f ms) and in %d of %d that did not move (median %.2f, p90 %.2f, "
             "max %.2f ms); later faults that fell back: %d of %d in moved sessions, %d of %d in the others"
             % (name, m["by_oracle"], m["sessions"], m["wait_ms_median"], m["wait_ms_p90"], m["wait_ms_max"],
                u["by_oracle"], u["sessions"], u["wait_ms_median"], u["wait_ms_p90"], u["wait_ms_max"],
                m["later_fell_back"], m["later_faults"], u["later_fell_back"], u["later_faults"]))
        a = m["asked"]
        note("%s: moved sessions' first faults by when they were asked — before the signal: decided by the oracle "
             "%d of %d; while the stopped process went away (%.1f ms): %d of %d; after: %d of %d (first faults "
             "answered at once by the client's open breaker, not counted: %d in moved sessions, %d in the others)"
             % (name, a["before"]["by_oracle"], a["before"]["sessions"], (t_gone - t_disrupt) / 1e6,
                a["dying"]["by_oracle"], a["dying"]["sessions"], a["gone"]["by_oracle"], a["gone"]["sessions"],
                m["breaker_open_first"], u["breaker_open_first"]))
    if recover:
        note("%s: %d sessions moved, %d of them recovered by their client without a fallback (within the fault "
             "deadline); the fault that met the move waited median %.2f ms, max %.2f ms; the stall the "
             "disruption added to a session's faults (their waits after the disruption beyond the usual fault's "
             "%.3f ms, all together): median %.2f ms, max %.2f ms; its longest gap between answers beyond its usual "
             "one (its thread serves its sessions in turn): median %.1f ms, max %.1f ms; first oracle decision after "
             "the disruption: median %.1f ms, max %.1f ms; time without the oracle: median %.1f ms, max %.1f ms; "
             "fallbacks after the disruption in sessions that did not move: %d"
             % (name, len(moved_sessions), clean, statistics.median(first_wait) if first_wait else 0,
                max(first_wait) if first_wait else 0, usual, statistics.median(waited), max(waited),
                statistics.median(added), max(added),
                statistics.median(recover), max(recover), statistics.median(without), max(without),
                unmoved_fallbacks))
    check("%s: every session that moved is decided by the oracle again (%d of %d)"
          % (name, len(recover), len(moved_sessions)), len(recover) == len(moved_sessions))
    return {"faults": total, "failed": failed, "fell_back": fallback,
            "differed": len(differed), "differed_without_fallback": len(clean_differed),
            "differed_in_moved": sum(1 for key in differed if key[0] in moved_sessions),
            "moved": len(moved_sessions),
            "moved_without_fallback": clean,
            "usual_fault_ms": usual,
            "move_wait_ms_median": statistics.median(first_wait) if first_wait else None,
            "move_wait_ms_max": max(first_wait) if first_wait else None,
            "stall_ms_median": statistics.median(waited) if waited else None,
            "stall_ms_max": max(waited) if waited else None,
            "added_stall_ms_median": statistics.median(added) if added else None,
            "added_stall_ms_max": max(added) if added else None,
            "recover_ms_median": statistics.median(recover) if recover else None,
            "recover_ms_max": max(recover) if recover else None,
            "without_oracle_ms_median": statistics.median(without) if without else None,
            "without_oracle_ms_max": max(without) if without else None,
            "unmoved_fallbacks": unmoved_fallbacks,
            "first_fault_after": {"moved": meeting[True], "unmoved": meeting[False]}}


def explain_moves(cluster, before, after, survivors):
    """Says, when sessions that should have stayed did not, where each instance's went: how many it
    held before and after, whether it still runs (and if not, its exit status and its log's end)."""
    for i in survivors:
        code = cluster.procs[i].poll()
        note("  prepaged-%d: held %d before, %d after, %d of them gone; %s" % (
            i + 1, len(before[i]), len(after[i]), len(before[i] - after[i]),
            "running" if code is None else "exited with status %s" % code))
        if code is not None:
            with open(os.path.join(cluster.work, "prepaged-%d.log" % (i + 1)), errors="replace") as f:
                for line in f.readlines()[-10:]:
                    note("    " + line.rstrip())
    twice = {s for s in set().union(*before) if sum(s in b for b in before) > 1}
    if twice:
        note("  %d sessions were listed by more than one instance before the disruption, e.g. %s"
             % (len(twice), " ".join(sorted(twice)[:5])))


def scenario(prepaged, balancer, work, loadgen, args, kind, ref):
    """One run: undisturbed, kill (SIGKILL) or term (SIGTERM then restart)."""
    d = os.path.join(work, "%s-%s" % (balancer, kind))
    os.makedirs(d)
    cluster = Cluster(prepaged, balancer, d, args.snapshot_interval)
    prefix = "s"
    out = os.path.join(d, "faults.txt")
    try:
        lg = run_load(loadgen, cluster.lb_port, args, out, prefix)
        if kind == "undisturbed":
            err = lg.communicate()[1]
            note("%s undisturbed: %s" % (balancer, err.strip()))
            run = load(out)
            if ref is None:
                ref = reference(prepaged, d, run)
            fallback = sum(1 for v in run.values() if v[3] == 5)
            differed, clean = differences("%s undisturbed" % balancer, ref, run, set())
            return ref, {"faults": len(run), "fell_back": fallback, "differed": len(differed),
                         "differed_without_fallback": len(clean)}
        # A third of the way in: the load generator says when (a fixed sleep, on a machine whose speed
        # swings by 2 x, sometimes landed after the load had ended).
        if lg.stdout.readline().strip() != "a third done":
            check("%s %s: the load generator reached a third of its faults" % (balancer, kind), False)
            note(lg.communicate()[1].strip())
            return ref, None
        victim = 1
        before = [set(cluster.sessions(i)) for i in range(3)]
        faults_before = [cluster.faults_of(i) for i in range(3)]
        moved_sessions = {int(s[len(prefix):]) for s in before[victim]}
        t0 = time.monotonic_ns()
        if kind == "kill":
            cluster.procs[victim].send_signal(signal.SIGKILL)
            cluster.procs[victim].wait()
            t_gone = time.monotonic_ns()
        else:
            cluster.procs[victim].send_signal(signal.SIGTERM)
            cluster.procs[victim].wait(timeout=30)
            t_gone = time.monotonic_ns()
            time.sleep(0.5)
            cluster.start(victim)  # the rolling update's new instance
        err = lg.communicate()[1]
        name = "%s %s" % (balancer, "SIGKILL" if kind == "kill" else "SIGTERM + restart")
        note("%s: %s" % (name, err.strip()))
        after = [set(cluster.sessions(i)) if cluster.procs[i].poll() is None else set() for i in range(3)]
        survivors = [i for i in range(3) if i != victim]
        check("%s: the instances not stopped still run" % name,
              all(cluster.procs[i].poll() is None for i in survivors))
        stayed = all(before[i] <= after[i] for i in survivors)
        if not check("%s: only the stopped instance's sessions moved (the others' %d sessions stayed where they were)"
                     % (name, sum(len(before[i]) for i in survivors)), stayed):
            explain_moves(cluster, before, after, survivors)
        # Never re-created: a session that stayed kept counting from where it was.
        faults_after = [cluster.faults_of(i) if cluster.procs[i].poll() is None else {} for i in range(3)]
        kept = all(faults_after[i].get(s, 0) >= faults_before[i][s] for i in survivors for s in before[i])
        check("%s: the sessions that stayed kept their counters (not re-created)" % name, kept)
        everywhere = set().union(*after)
        twice = sorted(s for s in everywhere if sum(s in a for a in after) > 1)
        check("%s: every session is on exactly one instance afterwards (%d found, %d on two: %s)"
              % (name, len(everywhere), len(twice), " ".join(twice[:5])),
              len(everywhere) == args.sessions and not twice)
        moved_counts = [cluster.moved(i) for i in range(3) if cluster.procs[i].poll() is None]
        note("%s: sessions moved per instance (pulled from a peer / adopted from a peer's directory / released): %s"
             % (name, ", ".join("%d/%d/%d" % (m.get("pulled", 0), m.get("adopted", 0), m.get("released", 0))
                                for m in moved_counts)))
        return out, compare(name, ref, load(out), moved_sessions, t0, t_gone, prefix, exact=kind == "term")
    finally:
        cluster.stop()


def spread(prepaged, balancer, work, args):
    d = os.path.join(work, "%s-spread" % balancer)
    os.makedirs(d)
    cluster = Cluster(prepaged, balancer, d, args.snapshot_interval)
    try:
        ids = ["vm-%d" % n for n in range(args.sessions)]
        created = sum(1 for s in ids if request(cluster.lb_port, "PUT", "/sessions/" + s, "{}")[0] == 201)
        held = [set(cluster.sessions(i)) for i in range(3)]
        where = {s: [i for i in range(3) if s in held[i]] for s in ids}
        once = sum(1 for s in ids if len(where[s]) == 1)
        note("%s: %d sessions spread over three instances: %s" % (balancer, args.sessions,
                                                                   " / ".join(str(len(h)) for h in held)))
        check("%s: %d sessions created through the balancer, each on exactly one instance (%d)"
              % (balancer, created, once), created == args.sessions and once == args.sessions)
        check("%s: every instance holds sessions" % balancer, all(len(h) > 0 for h in held))
        ok = sum(1 for s in ids if request(cluster.lb_port, "POST", "/sessions/%s/fault" % s,
                                           '{"page": 4096, "stream": 1}')[0] == 200)
        counted = {}
        for i in range(3):
            counted.update(cluster.faults_of(i))
        reached = sum(1 for s in ids if counted.get(s) == 1)
        check("%s: every fault through the balancer reached its session's instance (%d answered, %d counted there)"
              % (balancer, ok, reached), ok == args.sessions and reached == args.sessions)
        return [len(h) for h in held]
    finally:
        cluster.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("prepaged")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true")
    mode.add_argument("--long", action="store_true")
    ap.add_argument("--balancer", default="both", choices=["haproxy", "nginx", "both"])
    ap.add_argument("--sessions", type=int, default=300)
    ap.add_argument("--faults", type=int)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--client-nice", type=int, default=0,
                    help="run the load generator at this nice value (its clients stand for agents on other "
                         "hosts; here they share the cores with the servers and the balancer)")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--snapshot-interval", default="200ms")
    ap.add_argument("--deadline-ms", type=int,
                    help="the clients' fault deadline (default 5, libprepage's; 50 with --quick, for a debug build)")
    ap.add_argument("--json")
    args = ap.parse_args()
    args.faults = args.faults or (800 if args.long else 120)
    args.rounds = args.rounds or (3 if args.long else 1)
    args.deadline_ms = args.deadline_ms or (5 if args.long else 50)
    prepaged = os.path.abspath(args.prepaged)
    work = tempfile.mkdtemp(prefix="prepage-sharding-")
    report = {}
    try:
        lib = os.path.join(ROOT, "build", "lib")
        if not os.path.exists(os.path.join(lib, "libprepage.so")):
            subprocess.run(["make", "-s", "-C", ROOT, "lib"], check=True, stdout=subprocess.DEVNULL)
        loadgen = os.path.join(work, "loadgen")
        subprocess.run(["cc", "-O2", "-o", loadgen, os.path.join(ROOT, "deploy/sharding/loadgen.c"),
                        "-I", os.path.join(ROOT, "build", "include"), "-L", lib, "-lprepage", "-lpthread",
                        "-Wl,-rpath," + lib], check=True)
        balancers = ["haproxy", "nginx"] if args.balancer == "both" else [args.balancer]
        ref_all = None
        for balancer in balancers:
            if shutil.which(balancer) is None:
                check("%s is installed" % balancer, False)
                continue
            r = report.setdefault(balancer, {})
            r["spread"] = spread(prepaged, balancer, work, args)
            ref, r["undisturbed"] = scenario(prepaged, balancer, work, loadgen, args, "undisturbed", ref_all)
            ref_all = ref
            for kind in ("kill", "term"):
                for n in range(args.rounds):
                    sub = os.path.join(work, "round-%d" % n)
                    os.makedirs(sub, exist_ok=True)
                    _, figures = scenario(prepaged, balancer, sub, loadgen, args, kind, ref)
                    r.setdefault(kind, []).append(figures)
    finally:
        if os.environ.get("KEEP_TMP") == "1":
            note("kept " + work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        json.dump(report, open(args.json, "w"), indent=1)
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    sys.exit(1 if results["failed"] else 0)


if __name__ == "__main__":
    main()
