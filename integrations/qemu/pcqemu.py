#!/usr/bin/env python3
"""pcqemu.py — QEMU post-copy runs with and without prepaged (stdlib only).

  pcqemu.py run     --load fsd --config dp --out DIR     one migration, DIR/run.json
  pcqemu.py results --configs stock,forward:16,forward:64,dp --rounds 3 --out PREFIX
                    every load x config, interleaved in rounds; tables + SVG
  pcqemu.py report  --out PREFIX RUNDIR...                 tables + SVG again from run.json files
  pcqemu.py check   --config dp                            the short check of make test-qemu

A configuration is `stock` (no oracle: the patched QEMU with PREPAGE_URL unset,
exactly stock behaviour), `forward:W` (policy forward, W pages: forward_pages
W-1), or a policy name the server accepts (`dp`, `dp-plus`, `dp-literal`,
`readahead`, `none`), all asked through the oracle. `dp-plus` is given the
link's rtt_us and page_us (--rtt-us/--page-us, or measured by `results`
first, see README.md).

One run: a source QEMU boots the guest (Debian kernel + the initramfs of
guest/), the destination waits with -incoming defer; both get postcopy-ram
postcopy-blocktime and postcopy-preempt (--no-preempt: without) over QMP on unix
sockets; when the guest prints PP READY the source migrates over loopback at
--bandwidth MiB/s (precopy and post-copy alike) and is switched to post-copy
at once; the guest starts its load --delay seconds after READY, by which time
post-copy runs. Then: wait for the source's `completed` and the guest's PP
RESULT; collect the destination's per-vCPU blocktime, the source's post-copy
requests, the post-copy duration (the source's postcopy-active to completed,
polled every 20 ms), the guest's stall and errors, the patch's counters and
the session document.
"""
import argparse, json, os, re, shutil, signal, socket, statistics, subprocess, sys, time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(ROOT, "build", "qemu")
LOADS = {  # guest load -> (vCPUs, kernel command line pp.* options)
    "fsd": (1, "pp.load=fsd"),
    "stream": (1, "pp.load=stream"),
    "mixed": (1, "pp.load=mixed"),
    "smp4": (4, "pp.load=smp4 pp.threads=4"),
}


class QMP:
    """A minimal QMP client over a unix socket."""

    def __init__(self, path, timeout=30):
        deadline = time.time() + timeout
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise RuntimeError("QMP socket %s never came up" % path)
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self.events = []
        self._read()  # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        line = self.f.readline()
        if not line:
            raise RuntimeError("QMP connection closed")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            r = self._read()
            if "event" in r:
                self.events.append(r)
                continue
            if "error" in r:
                raise RuntimeError("QMP %s: %s" % (name, r["error"].get("desc")))
            return r.get("return")

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# The fields a configuration takes after slashes, each set through PREPAGE_<KEY>: key -> (test of
# the value, what it is). Session fields, then the hook's own.
INTEGER = (lambda v: v.isdigit(), "integer")
POSITIVE = (lambda v: v.isdigit() and int(v) > 0, "integer > 0")
NUMBER = (lambda v: re.fullmatch(r"[0-9]+(\.[0-9]+)?", v) is not None, "number")
FIELDS = {
    "max_pages": INTEGER, "gap": INTEGER, "near_window": INTEGER,
    "rtt_us": NUMBER, "page_us": NUMBER, "fault_fee": NUMBER,
    "half_life": POSITIVE,    # dp-plus's half-life of its counts, in cases
    "timeout_ms": POSITIVE,   # the hook's fault deadline (PREPAGE_TIMEOUT_MS) for this configuration
    "carry_pages": INTEGER,   # the hook's reach past a vCPU's last window (PREPAGE_CARRY_PAGES; 0: off)
    "threads": POSITIVE,      # the hook's oracle threads (PREPAGE_THREADS)
    # the session starts from what the same configuration learned in a migration of the same load
    # with guest seed S (PREPAGE_PRIOR; run once per results directory: prior_state())
    "prior": (lambda v: v.isdigit(), "guest seed S of the earlier migration"),
}
DP_PLUS_ONLY = {"rtt_us", "page_us", "fault_fee", "half_life"}


def parse_config(name):
    """-> (policy or None, environment for the destination).

    POLICY/key=value/key=value adds the FIELDS above through PREPAGE_<KEY>,
    e.g. dp-plus/near_window=64/page_us=2."""
    if "/" in name:
        base, extra = name.split("/", 1)
        policy, env = parse_config(base)
        for kv in extra.split("/"):
            k, _, v = kv.partition("=")
            if policy is None:
                raise SystemExit("stock takes no session fields: %r" % name)
            test = FIELDS.get(k)
            if test is None or not test[0](v) or (k in DP_PLUS_ONLY and policy != "dp-plus"):
                raise SystemExit("bad session field %r in %r (%s)" % (kv, name, "; ".join(
                    "%s = %s%s" % (f, t[1], ", dp-plus only" if f in DP_PLUS_ONLY else "")
                    for f, t in FIELDS.items())))
            env["PREPAGE_" + k.upper()] = v
        return policy, env
    if name == "stock":
        return None, {}
    if name.startswith("forward:"):
        w = int(name.split(":", 1)[1])
        if w < 1:
            raise SystemExit("forward:W needs W >= 1, got %r" % name)
        return "forward", {"PREPAGE_POLICY": "forward", "PREPAGE_FORWARD_PAGES": str(w - 1),
                           "PREPAGE_BACKWARD_PAGES": "0"}
    if name in ("dp", "dp-plus", "dp-literal", "readahead", "none"):
        return name, {"PREPAGE_POLICY": name}
    raise SystemExit("unknown configuration %r (stock, forward:W, dp, dp-plus, dp-literal, "
                     "readahead, none)" % name)


def wait_for(path, needle, timeout, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
            if needle in text:
                return text
        except FileNotFoundError:
            pass
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("QEMU exited (%s) before %r appeared in %s" % (proc.returncode, needle, path))
        time.sleep(0.05)
    raise RuntimeError("timed out after %ds waiting for %r in %s" % (timeout, needle, path))


def guest_lines(text, tag):
    out = []
    for line in text.splitlines():
        i = line.find("PP " + tag)
        if i >= 0:
            kv = {}
            for w in line[i:].split()[2:]:
                if "=" in w:
                    k, v = w.split("=", 1)
                    try:
                        kv[k] = float(v)
                    except ValueError:
                        kv[k] = v
            out.append(kv)
    return out


def http(method, url, token=None, body=None):
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=5) as r:
        data = r.read()
        return r.status, (json.loads(data) if data else None)


def pinned(cpus, cmd):
    """cmd run on the CPUs listed (taskset -c), or as it is when cpus is None."""
    return cmd if not cpus else ["taskset", "-c", cpus] + cmd


def qemu_cmd(a, vcpus, role, d):
    cmd = [a.qemu, "-L", "/usr/share/qemu", "-L", "/usr/share/seabios", "-nodefaults", "-no-user-config",
           "-display", "none", "-machine", "pc,accel=tcg", "-m", str(a.guest_mib), "-smp", str(vcpus),
           "-name", "pp-%s" % role,
           "-kernel", os.path.join(a.guest, "vmlinuz"), "-initrd", os.path.join(a.guest, "initramfs.cpio.gz"),
           "-append", "console=ttyS0 loglevel=3 panic=-1 %s pp.mem=%d pp.seed=%d pp.delay=%g" % (
               LOADS[a.load][1], a.region_mib, a.seed, a.delay),
           "-serial", "file:" + os.path.join(d, role + ".serial"),
           "-qmp", "unix:%s,server=on,wait=off" % os.path.join(d, role + ".qmp")]
    if role == "dst":
        cmd += ["-incoming", "defer"]
    extra = getattr(a, role + "_args", None)
    if extra:
        cmd += extra.split()
    return pinned(getattr(a, role + "_cpus", None), cmd)


def run_one(a):
    """One migration; returns the run's record (also written to OUT/run.json)."""
    d = os.path.abspath(a.out)
    if os.path.exists(d):
        shutil.rmtree(d)
    os.makedirs(d)
    vcpus = LOADS[a.load][0]
    policy, penv = parse_config(a.config)
    rec = {"load": a.load, "config": a.config, "bandwidth_mib_s": a.bandwidth, "preempt": a.preempt,
           "guest_mib": a.guest_mib, "region_mib": a.region_mib, "seed": a.seed, "vcpus": vcpus,
           "ok": False}
    env_dst = dict(os.environ)
    for k in list(env_dst):
        if k.startswith("PREPAGE_"):
            del env_dst[k]
    session = "qemu-%s-%s-%d" % (a.load, re.sub(r"[:/=,]", "-", a.config), int(time.time() * 1000) % 10**9)
    if policy is not None:
        env_dst.update(penv)
        env_dst.update({"PREPAGE_URL": a.oracle, "PREPAGE_SESSION": session, "PREPAGE_KEEP_SESSION": "1",
                        "PREPAGE_STATS": os.path.join(d, "prepage-stats.json"),
                        "PREPAGE_TRACE": os.path.join(d, "prepage-trace.txt"),
                        "PREPAGE_TIMEOUT_MS": str(a.timeout_ms)})
        if a.token:
            env_dst["PREPAGE_TOKEN"] = a.token
        if a.max_pages:
            env_dst["PREPAGE_MAX_PAGES"] = str(a.max_pages)
        if policy == "dp-plus":
            # sent by the patch in the session's config (libprepage >= 1.0)
            if a.rtt_us is not None:
                env_dst["PREPAGE_RTT_US"] = "%g" % a.rtt_us
            if a.page_us is not None:
                env_dst["PREPAGE_PAGE_US"] = "%g" % a.page_us
            env_dst.update({k: v for k, v in penv.items() if k in ("PREPAGE_RTT_US", "PREPAGE_PAGE_US")})
        if "PREPAGE_TIMEOUT_MS" in penv:
            env_dst["PREPAGE_TIMEOUT_MS"] = penv["PREPAGE_TIMEOUT_MS"]
        if "PREPAGE_PRIOR" in penv:
            env_dst["PREPAGE_PRIOR"] = prior_state(a, int(penv["PREPAGE_PRIOR"]))
        rec["session"] = session
        rec["env"] = {k: v for k, v in env_dst.items() if k.startswith("PREPAGE_") and k != "PREPAGE_TOKEN"}
    env_src = dict(env_dst)
    for k in list(env_src):
        if k.startswith("PREPAGE_"):
            del env_src[k]
    if a.stock_source:
        env_src["QEMU_POSTCOPY_URGENT"] = "0"
        rec["source_urgent_patch"] = False
    else:
        rec["source_urgent_patch"] = True
    procs = []
    qs = []
    t_begin = time.time()
    try:
        src = subprocess.Popen(qemu_cmd(a, vcpus, "src", d), env=env_src, stdin=subprocess.DEVNULL,
                               stdout=open(os.path.join(d, "src.out"), "w"), stderr=subprocess.STDOUT)
        procs.append(src)
        dst = subprocess.Popen(qemu_cmd(a, vcpus, "dst", d), env=env_dst, stdin=subprocess.DEVNULL,
                               stdout=open(os.path.join(d, "dst.out"), "w"), stderr=subprocess.STDOUT)
        procs.append(dst)
        qsrc = QMP(os.path.join(d, "src.qmp"))
        qdst = QMP(os.path.join(d, "dst.qmp"))
        qs += [qsrc, qdst]
        caps = [{"capability": "postcopy-ram", "state": True},
                {"capability": "postcopy-blocktime", "state": True}]
        if a.preempt:
            caps.append({"capability": "postcopy-preempt", "state": True})
        qsrc.cmd("migrate-set-capabilities", capabilities=caps)
        qdst.cmd("migrate-set-capabilities", capabilities=caps)
        bw = int(a.bandwidth * 1024 * 1024)
        qsrc.cmd("migrate-set-parameters", **{"max-bandwidth": bw, "max-postcopy-bandwidth": bw})
        port = free_port()
        uri = "tcp:127.0.0.1:%d" % port
        qdst.cmd("migrate-incoming", uri=uri)
        text = wait_for(os.path.join(d, "src.serial"), "PP READY", a.boot_timeout, src)
        rec["boot_s"] = round(time.time() - t_begin, 2)
        ready = guest_lines(text, "READY")[-1]
        rec["guest_ready"] = ready
        t_mig = time.time()
        qsrc.cmd("migrate", uri=uri)
        time.sleep(a.precopy_s)
        qsrc.cmd("migrate-start-postcopy")
        t_pc = t_done = None
        last = None
        deadline = time.time() + a.timeout
        while time.time() < deadline:
            info = qsrc.cmd("query-migrate")
            st = info.get("status")
            if st == "postcopy-active" and t_pc is None:
                t_pc = time.time()
            if st in ("completed", "failed", "cancelled", "postcopy-paused"):
                t_done = time.time()
                last = info
                break
            last = info
            time.sleep(0.02)
        rec["source_status"] = last.get("status") if last else None
        if rec["source_status"] != "completed":
            raise RuntimeError("source migration status %s" % rec["source_status"])
        rec["switch_s"] = round(t_pc - t_mig, 3) if t_pc else None
        rec["postcopy_s"] = round(t_done - t_pc, 3) if t_pc else None
        ram = last.get("ram", {})
        rec["postcopy_requests"] = ram.get("postcopy-requests")
        rec["source_total_ms"] = last.get("total-time")
        rec["downtime_ms"] = last.get("downtime")
        rec["ram_transferred"] = ram.get("transferred")
        text = wait_for(os.path.join(d, "dst.serial"), "PP RESULT", a.timeout, dst)
        done = guest_lines(text, "DONE")
        result = guest_lines(text, "RESULT")
        work = guest_lines(text, "WORK")
        rec["guest"] = done[-1] if done else None
        rec["guest_work_s"] = work[-1].get("work_s") if work else None
        rec["guest_result"] = "ok" if "PP RESULT ok" in text else "fail"
        rec["guest_errors"] = int(result[-1].get("errors", -1)) if result else -1
        rec["guest_stats_per_s"] = guest_lines(text, "STAT")
        # the destination's figures: it has completed once the source has
        for _ in range(200):
            dinfo = qdst.cmd("query-migrate")
            if dinfo.get("status") == "completed":
                break
            time.sleep(0.05)
        rec["dest_status"] = dinfo.get("status")
        rec["blocktime_ms"] = dinfo.get("postcopy-blocktime")
        rec["vcpu_blocktime_ms"] = dinfo.get("postcopy-vcpu-blocktime")
        if policy is not None:
            sp = os.path.join(d, "prepage-stats.json")
            for _ in range(100):
                if os.path.exists(sp):
                    break
                time.sleep(0.05)
            if os.path.exists(sp):
                with open(sp) as f:
                    rec["prepage"] = json.load(f)
            try:
                _, doc = http("GET", "%s/sessions/%s" % (a.oracle, session), a.token)
                with open(os.path.join(d, "session.json"), "w") as f:
                    json.dump(doc, f, indent=1)
                rec["session_stats"] = doc.get("stats")
                rec["session_nmin_nmax"] = [doc.get("nmin"), doc.get("nmax")]
                _, state = http("GET", "%s/sessions/%s/state" % (a.oracle, session), a.token)
                with open(os.path.join(d, "state.json"), "w") as f:
                    json.dump(state, f)
            except Exception as e:  # the run stands; say what is missing
                rec["session_error"] = str(e)
            try:
                http("DELETE", "%s/sessions/%s" % (a.oracle, session), a.token)
            except Exception as e:
                rec.setdefault("session_error", str(e))
        rec["ok"] = rec["guest_result"] == "ok" and rec["dest_status"] == "completed"
    except Exception as e:
        rec["error"] = str(e)
    finally:
        for q in qs:
            try:
                q.cmd("quit")
            except Exception:
                pass
            q.close()
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        rec["wall_s"] = round(time.time() - t_begin, 1)
        with open(os.path.join(d, "run.json"), "w") as f:
            json.dump(rec, f, indent=1)
    return rec


def prior_state(a, seed):
    """The state document a run's session starts from with prior=SEED: that of a migration of
    the same load and configuration (without prior) on guest seed SEED, run once next to the
    run's directory. The cases it had open (`slots`, at that guest's addresses) are left out:
    what is kept is what it learned."""
    base = re.sub(r"/prior=[0-9]+", "", a.config)
    name = "%s-%s-s%d" % (a.load, re.sub(r"[:/=,]", "-", base), seed)
    path = os.path.join(os.path.dirname(os.path.abspath(a.out)), "priors", name + ".json")
    if not os.path.exists(path):
        b = argparse.Namespace(**vars(a))
        b.config, b.seed, b.out = base, seed, os.path.join(os.path.dirname(path), name)
        r = run_one(b)
        sp = os.path.join(b.out, "state.json")
        if not r.get("ok") or not os.path.exists(sp):
            raise RuntimeError("the prior's run failed (see %s)" % b.out)
        with open(sp) as f:
            doc = json.load(f)
        doc["learned"]["slots"], doc["learned"]["order"] = [], []
        with open(path, "w") as f:
            json.dump(doc, f)
    return path


# ---- the link, as dp-plus models it ----

LINK_TRACE = ("-msg timestamp=on -trace postcopy_ram_fault_thread_request "
              "-trace postcopy_page_req_add -trace postcopy_place_page")


def link_from_trace(path):
    """(rtt_us, page_us, n_faults, n_gaps) from a destination traced with LINK_TRACE.

    rtt_us: median time from the fault thread reading a fault to the page being
    placed, over faults whose page it requested itself with no other request
    outstanding (one page's round trip: request, source, preempt channel, place).
    page_us: median time between consecutive placements by the preempt thread
    within one burst of requested pages (the marginal cost of one more page of a
    window)."""
    evs = []
    for line in open(path, errors="replace"):
        m = re.match(r"(\d+)@([\d.]+):(\w+) (.*)", line)
        if m:
            evs.append((int(m.group(1)), float(m.group(2)), m.group(3), m.group(4)))
    # the thread that places requested pages: the preempt channel's
    added, by_tid = set(), {}
    for tid, t, ev, rest in evs:
        if ev == "postcopy_page_req_add":
            added.add(int(re.search(r"req (0x[0-9a-f]+)", rest).group(1), 16))
        elif ev == "postcopy_place_page":
            h = int(re.search(r"host=(0x[0-9a-f]+)", rest).group(1), 16)
            if h in added:
                by_tid[tid] = by_tid.get(tid, 0) + 1
    urgent_tid = max(by_tid, key=by_tid.get) if by_tid else None
    pending, outstanding, rtts, gaps = {}, 0, [], []
    last_place = {}
    for i, (tid, t, ev, rest) in enumerate(evs):
        if ev == "postcopy_page_req_add":
            m = re.search(r"total (\d+)", rest)
            outstanding = int(m.group(1)) if m else outstanding
        if ev == "postcopy_ram_fault_thread_request":
            h = int(re.search(r"HVA=(0x[0-9a-f]+)", rest).group(1), 16) & ~0xFFF
            nxt = evs[i + 1] if i + 1 < len(evs) else None
            alone = nxt and nxt[2] == "postcopy_page_req_add" and nxt[3].endswith("total 1")
            if alone:
                pending[h] = t
        elif ev == "postcopy_place_page":
            h = int(re.search(r"host=(0x[0-9a-f]+)", rest).group(1), 16)
            if h in pending:
                rtts.append((t - pending.pop(h)) * 1e6)
            prev = last_place.get(tid)
            if prev is not None and tid == urgent_tid and h == prev[1] + 4096 and t - prev[0] < 0.002:
                gaps.append((t - prev[0]) * 1e6)
            last_place[tid] = (t, h)
    if not rtts or not gaps:
        return None
    return statistics.median(rtts), statistics.median(gaps), len(rtts), len(gaps)


def answer_from_trace(path):
    """(answer_us, calls): the median time from the fault thread handing a new case's fault
    to the hook's oracle thread until the oracle's answer is back (queue_us + call_us of the
    hook's trace, `first` outcomes only): how long the rest of a case waits to be requested."""
    waits = []
    for line in open(path, errors="replace"):
        f = line.split()
        if len(f) >= 9 and f[4] == "first":
            waits.append(int(f[7]) + int(f[8]))
    return (statistics.median(waits), len(waits)) if waits else None


def calls_of_run(d, bin_ms=100):
    """What a run's decision log says (the hook's prepage-trace.txt: one line per oracle call,
    `ms vcpu page asked outcome start count call_us queue_us`; session.json: the session as
    GET /sessions/{id} gave it at the end): lines of text."""
    rows = [f for f in (line.split() for line in open(os.path.join(d, "prepage-trace.txt"), errors="replace"))
            if len(f) >= 9]
    out = ["%s: %d oracle calls" % (d, len(rows))]
    if not rows:
        return out
    def q(xs, p):
        return sorted(xs)[min(len(xs) - 1, int(p * len(xs)))]
    by = {}
    for f in rows:
        by.setdefault(f[4], []).append(int(f[6]))
    for outcome, counts in sorted(by.items(), key=lambda kv: -len(kv[1])):
        out.append("  %-8s %5d calls, window median %g pages (p10 %d, p90 %d)"
                   % (outcome, len(counts), statistics.median(counts), q(counts, 0.1), q(counts, 0.9)))
    t0 = float(rows[0][0])
    bins = {}
    for f in rows:
        bins.setdefault(int((float(f[0]) - t0) // bin_ms), {}).setdefault(f[4], []).append(int(f[6]))
    out.append("  calls per %d ms from the first: outcome calls (window median)" % bin_ms)
    for k, v in sorted(bins.items()):
        out.append("  %7d ms  %s" % (k * bin_ms, "  ".join("%s %d (%g)" % (o, len(w), statistics.median(w))
                                                          for o, w in sorted(v.items()))))
    call = [int(f[7]) for f in rows]
    wait = [int(f[8]) for f in rows]
    out.append("  oracle call median %d us (p90 %d), queued before it median %d us (p90 %d)"
               % (statistics.median(call), q(call, 0.9), statistics.median(wait), q(wait, 0.9)))
    sj = os.path.join(d, "session.json")
    if os.path.exists(sj):
        with open(sj) as f:
            state = json.load(f).get("state", {})
        plan = [p.get("threshold") for p in state.get("plan", [])]
        if plan:
            out.append("  plan at the end %s, cases %s, range [%s, %s]"
                       % (plan, state.get("cases"), state.get("nmin"), state.get("nmax")))
    return out


def measure_link(a, out, n):
    """Medians over n traced fsd runs through forward:64 (see link_from_trace, answer_from_trace).

    dp-plus is given the link's round trip as rtt_us. A case that faults waits for the round
    trip plus the oracle's answer (the faulting page is requested at once, the rest of its case
    once the oracle has answered); priced at that sum, dp-plus did not stall less (README.md,
    "Results"), so the answer is reported, not given."""
    res = []
    for i in range(n):
        b = argparse.Namespace(**vars(a))
        b.load, b.config, b.out = "fsd", "forward:64", os.path.join(out, "r%d" % i)
        b.dst_args = ((a.dst_args or "") + " " + LINK_TRACE).strip()
        r = run_one(b)
        m = link_from_trace(os.path.join(b.out, "dst.out")) if r.get("ok") else None
        t = os.path.join(b.out, "prepage-trace.txt")
        w = answer_from_trace(t) if m and os.path.exists(t) else None
        if m and w:
            res.append(m + w)
    if not res:
        raise SystemExit("could not measure the link (see %s)" % out)
    rtt, answer = statistics.median(x[0] for x in res), statistics.median(x[4] for x in res)
    link = {"rtt_us": rtt, "answer_us": answer, "page_us": statistics.median(x[1] for x in res),
            "runs": len(res), "per_run": [{"rtt_us": round(x[0], 1), "page_us": round(x[1], 2), "faults": x[2],
                                           "page_gaps": x[3], "answer_us": x[4], "answers": x[5]} for x in res],
            "bandwidth_page_us": 4096 / (a.bandwidth * 1048576) * 1e6}
    with open(os.path.join(out, "link.json"), "w") as f:
        json.dump(link, f, indent=1)
    return link


# ---- the oracle ----

def start_oracle(a, logdir):
    """Starts prepaged on port 0 unless --oracle is given; returns (url, proc)."""
    if a.oracle:
        return a.oracle, None
    logpath = os.path.join(logdir, "prepaged.log")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREPAGE_")}
    port = free_port()
    # --log-level warning: info logs one line per request (tens of thousands per run)
    p = subprocess.Popen(pinned(a.oracle_cpus, [a.prepaged, "--port", str(port), "--threads", "1",
                                                "--log-level", "warning"]),
                         env=env, stdout=open(logpath, "w"), stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while True:
        try:
            if http("GET", "http://127.0.0.1:%d/readyz" % port)[0] == 200:
                break
        except Exception:
            pass
        if p.poll() is not None or time.time() > deadline:
            p.kill()
            raise SystemExit("prepaged did not come up on port %d (see %s)" % (port, logpath))
        time.sleep(0.05)
    return "http://127.0.0.1:%d" % port, p


# ---- results ----

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def vcpu_bt(r):
    v = r.get("vcpu_blocktime_ms")
    return sum(v) if v else None


def metrics(r):
    g = r.get("guest") or {}
    return {
        "stall_ms": g.get("stall_ms"),
        "vcpu_blocktime_ms": vcpu_bt(r),
        "work_s": r.get("guest_work_s"),
        "postcopy_s": r.get("postcopy_s"),
        "requests": r.get("postcopy_requests"),
        "slow": g.get("slow"),
        "max_case_ms": g.get("max_case_ms"),
        "errors": r.get("guest_errors"),
    }


def fmt(x, nd=0):
    if x is None:
        return "—"
    if nd == 0:
        return "{:,.0f}".format(x)
    return "{:,.{}f}".format(x, nd)


def report(runs, prefix, configs=None, note=""):
    loads = [l for l in LOADS if any(r["load"] == l for r in runs)]
    if configs is None:
        configs = []
        for r in runs:
            if r["config"] not in configs:
                configs.append(r["config"])
    rows = []
    for l in loads:
        for c in configs:
            rs = [r for r in runs if r["load"] == l and r["config"] == c]
            if not rs:
                continue
            ms = [metrics(r) for r in rs]
            row = {"load": l, "config": c, "runs": len(rs), "failed": sum(1 for r in rs if not r.get("ok"))}
            for k in ms[0]:
                vals = [m[k] for m in ms]
                row[k] = med(vals)
                row[k + "_min"], row[k + "_max"] = spread(vals)
            row["errors_total"] = sum((m["errors"] if m["errors"] is not None and m["errors"] >= 0 else 1) for m in ms)
            outs = {}
            for r in rs:
                for k, v in ((r.get("prepage") or {}).get("outcomes") or {}).items():
                    outs.setdefault(k, []).append(v)
            row["outcomes"] = {k: med(v) for k, v in outs.items()}
            rows.append(row)
    # csv
    keys = ["load", "config", "runs", "failed", "stall_ms", "stall_ms_min", "stall_ms_max", "vcpu_blocktime_ms",
            "vcpu_blocktime_ms_min", "vcpu_blocktime_ms_max", "work_s", "postcopy_s", "requests", "slow",
            "max_case_ms", "errors_total"]
    with open(prefix + ".csv", "w") as f:
        f.write(",".join(keys) + "\n")
        for row in rows:
            f.write(",".join("" if row.get(k) is None else str(row.get(k)) for k in keys) + "\n")
    # markdown
    out = []
    out.append("| load | config | guest stall ms (min–max) | vs stock | vCPU blocktime ms (min–max) | vs stock | "
               "work s | post-copy s | source requests | slow touches | errors |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        st = next((x for x in rows if x["load"] == row["load"] and x["config"] == "stock"), None)

        def ratio(k):
            if not st or not st.get(k) or row.get(k) is None:
                return "—"
            return "%.2f ×" % (row[k] / st[k])
        out.append("| %s | %s | %s (%s–%s) | %s | %s (%s–%s) | %s | %s | %s | %s | %s | %d%s |" % (
            row["load"], row["config"], fmt(row["stall_ms"]), fmt(row["stall_ms_min"]), fmt(row["stall_ms_max"]),
            ratio("stall_ms"), fmt(row["vcpu_blocktime_ms"]), fmt(row["vcpu_blocktime_ms_min"]),
            fmt(row["vcpu_blocktime_ms_max"]), ratio("vcpu_blocktime_ms"), fmt(row["work_s"], 2),
            fmt(row["postcopy_s"], 2), fmt(row["requests"]), fmt(row["slow"]), row["errors_total"],
            "" if not row["failed"] else " (%d runs failed)" % row["failed"]))
    out.append("")
    out.append("Oracle outcomes (median per run): " + "; ".join(
        "%s/%s: %s" % (r["load"], r["config"], ", ".join("%s %s" % (k, fmt(v)) for k, v in r["outcomes"].items() if v))
        for r in rows if r["outcomes"]))
    table = "\n".join(out) + "\n"
    with open(prefix + ".md", "w") as f:
        f.write(note + table)
    svg(rows, loads, configs, prefix + ".svg")
    return table


def svg(rows, loads, configs, path):
    """Grouped bars: guest stall and vCPU blocktime per load, relative to stock (=1)."""
    colors = ["#888888", "#4c78a8", "#72b7b2", "#f58518", "#e45756", "#54a24b", "#b279a2"]
    W, H, left, top, bottom = 900, 420, 60, 40, 70
    ph = H - top - bottom
    groups = [(l, m) for l in loads for m in ("stall_ms", "vcpu_blocktime_ms")]
    gw = (W - left - 20) / max(1, len(groups))
    bw = gw * 0.8 / max(1, len(configs))
    vals = []
    for l, m in groups:
        st = next((r for r in rows if r["load"] == l and r["config"] == "stock"), None)
        for c in configs:
            r = next((x for x in rows if x["load"] == l and x["config"] == c), None)
            if r and st and st.get(m) and r.get(m) is not None:
                vals.append(r[m] / st[m])
    ymax = max([1.2] + vals) * 1.05
    s = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">' % (W, H),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="%d" y="18" font-size="13">QEMU 7.2 post-copy, TCG guest: guest stall (S) and summed vCPU blocktime (B), '
         'median of runs, relative to stock QEMU (lower is better)</text>' % left]
    for t in (0, 0.25, 0.5, 0.67, 1.0, 1.5, 2, 3, 4, 6, 8):
        if t <= ymax:
            y = top + ph - t / ymax * ph
            s.append('<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="%s"/>' % (
                left, W - 20, y, y, "#000" if t in (0, 1.0) else ("#c00" if t == 0.67 else "#ddd")))
            s.append('<text x="%d" y="%.1f" text-anchor="end">%g</text>' % (left - 4, y + 4, t))
    for gi, (l, m) in enumerate(groups):
        x0 = left + gi * gw + gw * 0.1
        st = next((r for r in rows if r["load"] == l and r["config"] == "stock"), None)
        for ci, c in enumerate(configs):
            r = next((x for x in rows if x["load"] == l and x["config"] == c), None)
            if not (r and st and st.get(m) and r.get(m) is not None):
                continue
            v = r[m] / st[m]
            h = v / ymax * ph
            s.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s %s %s: %.2f</title></rect>' % (
                x0 + ci * bw, top + ph - h, bw * 0.9, h, colors[ci % len(colors)], l, c, m, v))
        s.append('<text x="%.1f" y="%d" text-anchor="middle">%s %s</text>' % (
            left + gi * gw + gw / 2, top + ph + 16, l, "S" if m == "stall_ms" else "B"))
    for ci, c in enumerate(configs):
        x = left + ci * 120
        s.append('<rect x="%d" y="%d" width="12" height="12" fill="%s"/>' % (x, H - 28, colors[ci % len(colors)]))
        s.append('<text x="%d" y="%d">%s</text>' % (x + 16, H - 18, c))
    s.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(s) + "\n")


def add_run_args(p):
    p.add_argument("--qemu", default=os.path.join(BUILD, "bin", "qemu-system-x86_64"))
    p.add_argument("--guest", default=os.path.join(BUILD, "guest"))
    p.add_argument("--prepaged", default=os.path.join(ROOT, ".build", "release", "prepaged"))
    p.add_argument("--oracle", help="prepaged's URL (default: start one on port 0)")
    p.add_argument("--token")
    p.add_argument("--bandwidth", type=float, default=32, help="MiB/s, precopy and post-copy (default 32)")
    p.add_argument("--no-preempt", dest="preempt", action="store_false",
                   help="without postcopy-preempt (on by default, both sides)")
    p.add_argument("--stock-source", action="store_true",
                   help="the source as stock 7.2 (QEMU_POSTCOPY_URGENT=0: urgent pages wait for the rate limit)")
    p.add_argument("--guest-mib", type=int, default=384)
    p.add_argument("--region-mib", type=int, default=192)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--delay", type=float, default=2.0, help="guest: seconds from READY to the start of its load")
    p.add_argument("--precopy-s", type=float, default=0.3, help="seconds of precopy before migrate-start-postcopy")
    p.add_argument("--max-pages", type=int)
    p.add_argument("--timeout-ms", type=int, default=5, help="one oracle call's deadline (PREPAGE_TIMEOUT_MS)")
    p.add_argument("--rtt-us", type=float)
    p.add_argument("--page-us", type=float)
    p.add_argument("--src-args", help="more QEMU arguments for the source (e.g. -trace ...)")
    p.add_argument("--dst-args", help="more QEMU arguments for the destination")
    p.add_argument("--src-cpus", help="CPUs of the source QEMU (taskset -c LIST; default: any)")
    p.add_argument("--dst-cpus", help="CPUs of the destination QEMU (taskset -c LIST; default: any)")
    p.add_argument("--oracle-cpus", help="CPUs of the prepaged started here (taskset -c LIST; default: any)")
    p.add_argument("--boot-timeout", type=int, default=120)
    p.add_argument("--timeout", type=int, default=300)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    add_run_args(p)
    p.add_argument("--load", default="fsd", choices=list(LOADS))
    p.add_argument("--config", default="stock")
    p.add_argument("--out", required=True)
    p = sub.add_parser("results")
    add_run_args(p)
    p.add_argument("--configs", default="stock,forward:16,forward:64,dp")
    p.add_argument("--loads", default=",".join(LOADS))
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=os.path.join(ROOT, "docs", "results", "qemu"))
    p.add_argument("--runs-dir", default=os.path.join(BUILD, "runs"))
    p.add_argument("--link-runs", type=int, default=3,
                   help="traced runs to measure rtt_us/page_us when dp-plus is listed without them")
    p = sub.add_parser("link", help="measure rtt_us and page_us, and the oracle's answer (one traced fsd run through forward:64)")
    add_run_args(p)
    p.add_argument("--out", default=os.path.join(BUILD, "link"))
    p = sub.add_parser("report")
    p.add_argument("--out", required=True)
    p.add_argument("--configs")
    p.add_argument("--note", default="", help="markdown put before the table")
    p.add_argument("rundirs", nargs="+")
    p = sub.add_parser("calls", help="a run's decision log summed up: oracle calls per outcome, their windows, "
                                     "calls and their windows over time, the plan at the end")
    p.add_argument("--bin-ms", type=int, default=100)
    p.add_argument("rundirs", nargs="+")
    p = sub.add_parser("check")
    add_run_args(p)
    p.add_argument("--config", default="dp-plus")
    p.add_argument("--out", default=os.path.join(BUILD, "check"))
    a = ap.parse_args()

    if a.cmd == "calls":
        for d in a.rundirs:
            if not os.path.exists(os.path.join(d, "prepage-trace.txt")):
                raise SystemExit("%s: no prepage-trace.txt (a run through the oracle keeps one)" % d)
            print("\n".join(calls_of_run(d, a.bin_ms)))
        return 0
    if a.cmd == "report":
        runs = []
        for rd in a.rundirs:
            for dp, _, fs in os.walk(rd):
                if "run.json" in fs and os.sep + "link" + os.sep not in dp + os.sep:  # not the traced link runs
                    with open(os.path.join(dp, "run.json")) as f:
                        runs.append(json.load(f))
        note = a.note + "\n\n" if a.note else ""
        print(report(runs, a.out, a.configs.split(",") if a.configs else None, note))
        return 0

    for c in ([a.config] if a.cmd in ("run", "check") else [] if a.cmd == "link" else a.configs.split(",")):
        parse_config(c)
    if not os.access(a.qemu, os.X_OK):
        raise SystemExit("no QEMU at %s: make qemu" % a.qemu)
    for f in ("vmlinuz", "initramfs.cpio.gz"):
        if not os.path.exists(os.path.join(a.guest, f)):
            raise SystemExit("no guest %s in %s: make qemu-guest" % (f, a.guest))
    logdir = os.path.join(BUILD, "logs")
    os.makedirs(logdir, exist_ok=True)
    oracle_proc = None
    try:
        if a.cmd == "link":
            a.oracle, oracle_proc = start_oracle(a, logdir)
            print(json.dumps(measure_link(a, a.out, 1)))
            return 0
        if a.cmd in ("run", "check"):
            if a.cmd == "check" or parse_config(a.config)[0] is not None:
                a.oracle, oracle_proc = start_oracle(a, logdir)
            if a.cmd == "check":
                a.load = "fsd"
            r = run_one(a)
            print(json.dumps({k: r.get(k) for k in ("load", "config", "ok", "error", "guest_result", "guest_errors",
                                                    "postcopy_s", "postcopy_requests", "vcpu_blocktime_ms",
                                                    "guest", "wall_s")}, indent=1))
            if a.cmd == "check":
                pre = r.get("prepage") or {}
                # The FSD load's cases run on past pages the source pushed unasked: some faults must be
                # reported as their case's continuation (the hook's carry; README, "Cases the source cuts").
                okc = (r.get("ok") and pre.get("calls_ok", 0) > 0 and pre.get("requested_pages", 0) > 0
                       and pre.get("carried", 0) > 0)
                print("check: guest %s, %s data errors, %d oracle calls, %d pages prepaged, %d faults carried "
                      "past pages the source pushed" % (
                          r.get("guest_result"), r.get("guest_errors"), pre.get("calls_ok", 0),
                          pre.get("requested_pages", 0), pre.get("carried", 0)))
                print("%d passed, %d failed" % ((1, 0) if okc else (0, 1)))
                return 0 if okc else 1
            return 0 if r.get("ok") else 1
        # results
        configs = a.configs.split(",")
        loads = a.loads.split(",")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        rdir = os.path.join(a.runs_dir, stamp)
        os.makedirs(rdir)
        a.oracle, oracle_proc = start_oracle(a, rdir)
        link = None
        if "dp-plus" in configs and (a.rtt_us is None or a.page_us is None):
            link = measure_link(a, os.path.join(rdir, "link"), a.link_runs)
            print("link: %s" % json.dumps(link), flush=True)
            if a.rtt_us is None:
                a.rtt_us = round(link["rtt_us"], 1)
            if a.page_us is None:
                a.page_us = round(link["page_us"], 2)
        runs = []
        for rnd in range(a.rounds):
            for li, load in enumerate(loads):
                order = configs[rnd % len(configs):] + configs[:rnd % len(configs)]
                for c in order:
                    b = argparse.Namespace(**vars(a))
                    b.load, b.config = load, c
                    b.out = os.path.join(rdir, "%s-%s-r%d" % (load, re.sub(r"[:/=,]", "-", c), rnd))
                    t0 = time.time()
                    r = run_one(b)
                    r["round"] = rnd
                    with open(os.path.join(b.out, "run.json"), "w") as f:
                        json.dump(r, f, indent=1)
                    runs.append(r)
                    m = metrics(r)
                    print("round %d %-6s %-11s ok=%s stall=%s ms blocktime=%s ms work=%s s postcopy=%s s req=%s "
                          "errors=%s (%.0f s)%s" % (rnd, load, c, r.get("ok"), fmt(m["stall_ms"]),
                                                    fmt(m["vcpu_blocktime_ms"]), m["work_s"], m["postcopy_s"],
                                                    m["requests"], m["errors"], time.time() - t0,
                                                    " ERROR " + r["error"] if r.get("error") else ""), flush=True)
        os.makedirs(os.path.dirname(a.out), exist_ok=True)
        note = ("<!-- %s; runs in %s -->\n" % (" ".join(sys.argv), os.path.relpath(rdir, ROOT)))
        if "dp-plus" in configs:
            note += "dp-plus sessions: rtt_us %s, page_us %s%s.\n\n" % (
                a.rtt_us, a.page_us, "" if link is None else
                " (measured, pcqemu.py link: the link's round trip %.1f µs, one page %.2f µs; the oracle's "
                "answer %.1f µs besides)" % (link["rtt_us"], link["page_us"], link["answer_us"]))
        print(report(runs, a.out, configs, note))
        return 0 if all(r.get("ok") for r in runs) else 1
    finally:
        if oracle_proc is not None:
            oracle_proc.send_signal(signal.SIGINT)
            try:
                oracle_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                oracle_proc.kill()


if __name__ == "__main__":
    sys.exit(main())
