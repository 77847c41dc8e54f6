import PrepageCore

/// The session state document: `GET /sessions/{id}/state` answers it and
/// `PUT /sessions/{id}` with `{"state": <document>}` restores it, so that the
/// session's next decision is the one it would have made where it came from.
///
/// ```json
/// {"format": "prepage-session-state", "version": 1, "id": "vm-1",
///  "config": {…the session document's config…},
///  "created_at_ns": 1764000000000000000, "last_activity_ns": …,
///  "stats": {"faults": …, "first": …, "smaller": …, "larger": …, "reverse": …,
///            "repeat": …, "pages_advised": …, "last_fault_at_ns": …},
///  "learned": {…the policy's whole state…}}
/// ```
///
/// Times are integer nanoseconds (exact), doubles their shortest decimal form
/// that reads back to the same binary64 (bit for bit). `learned` depends on
/// the policy (`docs/server.md`, "Moving a session", lists every field).
/// Reading is strict: every field is required, unknown ones are refused, and
/// the learned state is checked as ``Prepager/init(state:)`` checks it.
enum StateDocument {
    static let format = "prepage-session-state"
    static let version = 1

    // MARK: - Writing

    static func write(_ image: SessionImage, _ w: inout JSONWriter) {
        w.raw("{")
        w.key("format")
        w.string(format)
        w.raw(",")
        w.key("version")
        w.int(version)
        w.raw(",")
        w.key("id")
        w.string(image.id)
        w.raw(",")
        w.key("config")
        Session.writeConfig(image.config, &w)
        w.raw(",")
        w.key("created_at_ns")
        w.int(Int(image.createdAt))
        w.raw(",")
        w.key("last_activity_ns")
        w.int(Int(image.lastActivity))
        w.raw(",")
        let st = image.stats
        w.key("stats")
        w.raw("{")
        w.key("faults")
        w.uint(st.faults)
        w.raw(",")
        w.key("first")
        w.uint(st.first)
        w.raw(",")
        w.key("smaller")
        w.uint(st.smaller)
        w.raw(",")
        w.key("larger")
        w.uint(st.larger)
        w.raw(",")
        w.key("reverse")
        w.uint(st.reverse)
        w.raw(",")
        w.key("repeat")
        w.uint(st.repeats)
        w.raw(",")
        w.key("pages_advised")
        w.uint(st.pagesAdvised)
        w.raw(",")
        w.key("last_fault_at_ns")
        w.int(Int(st.lastFaultAt))
        w.raw("},")
        w.key("learned")
        switch image.learned {
        case .stateless:
            w.raw("{}")
        case .dp(let s):
            w.raw("{")
            w.key("nmin")
            w.int(s.nmin)
            w.raw(",")
            w.key("nmax")
            w.int(s.nmax)
            w.raw(",")
            w.key("min_record")
            ints(s.minRecord, &w)
            w.raw(",")
            w.key("max_record")
            ints(s.maxRecord, &w)
            w.raw(",")
            streams(s.streams, &w)
            w.raw("}")
        case .readahead(let s):
            w.raw("{")
            streams(s, &w)
            w.raw("}")
        case .plus(let s):
            w.raw("{")
            w.key("clock")
            w.int(s.clock)
            w.raw(",")
            w.key("transitions")
            w.raw("[")
            for (i, t) in s.transitions.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{")
                w.key("a")
                w.int(t.a)
                w.raw(",")
                w.key("b")
                w.int(t.b)
                w.raw(",")
                w.key("n")
                w.double(t.n)
                w.raw(",")
                w.key("c")
                w.double(t.c)
                w.raw(",")
                w.key("e")
                w.int(t.e)
                w.raw(",")
                w.key("last")
                w.int(t.last)
                w.raw("}")
            }
            w.raw("],")
            w.key("nodes")
            ints(s.nodes, &w)
            w.raw(",")
            w.key("survival")
            w.raw("[")
            for (i, v) in s.survival.enumerated() {
                if i > 0 { w.raw(",") }
                w.double(v)
            }
            w.raw("],")
            w.key("plan")
            ints(s.plan, &w)
            w.raw(",")
            w.key("dirty")
            w.bool(s.dirty)
            w.raw(",")
            w.key("depth")
            w.int(s.depth)
            w.raw(",")
            w.key("learned_gap")
            w.int(s.learnedGap)
            w.raw(",")
            w.key("near_rate")
            w.double(s.nearRate)
            w.raw(",")
            w.key("direction_bits")
            w.uint(s.directionBits)
            w.raw(",")
            w.key("direction_count")
            w.int(s.directionCount)
            w.raw(",")
            w.key("slots")
            w.raw("[")
            for (i, slot) in s.slots.enumerated() {
                if i > 0 { w.raw(",") }
                w.raw("{")
                w.key("lo")
                w.int(slot.lo)
                w.raw(",")
                w.key("hi")
                w.int(slot.hi)
                w.raw(",")
                w.key("direction")
                w.int(Int(slot.direction))
                w.raw(",")
                w.key("first_direction")
                w.int(Int(slot.firstDirection))
                w.raw(",")
                w.key("passed")
                w.int(slot.passed)
                w.raw(",")
                w.key("covered")
                w.int(slot.covered)
                w.raw(",")
                w.key("stream")
                w.uint(slot.stream)
                w.raw(",")
                w.key("open")
                w.bool(slot.open)
                w.raw(",")
                w.key("newer")
                w.int(slot.newer)
                w.raw(",")
                w.key("plan")
                ints(slot.plan, &w)
                w.raw("}")
            }
            w.raw("],")
            w.key("order")
            ints(s.order, &w)
            w.raw("}")
        }
        w.raw("}")
    }

    private static func streams(_ s: StreamTableState, _ w: inout JSONWriter) {
        w.key("tick")
        w.uint(s.tick)
        w.raw(",")
        w.key("streams")
        w.raw("[")
        for (i, e) in s.streams.enumerated() {
            if i > 0 { w.raw(",") }
            w.raw("{")
            w.key("stream")
            w.uint(e.stream)
            w.raw(",")
            w.key("lo")
            w.int(e.lo)
            w.raw(",")
            w.key("hi")
            w.int(e.hi)
            w.raw(",")
            w.key("last_used")
            w.uint(e.lastUsed)
            w.raw(",")
            w.key("ntest")
            w.int(e.ntest)
            w.raw(",")
            w.key("case_guess")
            w.int(e.caseGuess)
            w.raw(",")
            w.key("case_faults")
            w.int(e.caseFaults)
            w.raw(",")
            w.key("min_hit")
            w.int(e.minHit)
            w.raw(",")
            w.key("max_hit")
            w.int(e.maxHit)
            w.raw(",")
            w.key("up")
            w.bool(e.up)
            w.raw("}")
        }
        w.raw("]")
    }

    private static func ints(_ values: [Int], _ w: inout JSONWriter) {
        w.raw("[")
        for (i, v) in values.enumerated() {
            if i > 0 { w.raw(",") }
            w.int(v)
        }
        w.raw("]")
    }

    // MARK: - Reading

    /// Reads a state document: `raw` is the whole request body, the scanner is at
    /// the document (the value of `"state"`). `path` prefixes field names in errors.
    static func read(_ s: inout JSONScanner, body raw: UnsafeRawBufferPointer, path: String = "state")
        throws(APIProblem)
        -> SessionImage
    {
        guard s.peekKind() == .object else {
            throw wrongType(path, "an object (the document GET /sessions/{id}/state answers)")
        }
        var fields = Fields(path: path)
        var format: String?
        var version: Int?
        var id: String?
        var config: SessionConfig?
        var createdAt: Int?
        var lastActivity: Int?
        var stats: SessionStats?
        var learnedAt: Int?
        try s.beginObject()
        while let key = try s.nextKey() {
            let name = try fields.take(key)
            switch name {
            case "format": format = try string(&s, fields.path(name))
            case "version": version = try int(&s, fields.path(name))
            case "id": id = try string(&s, fields.path(name))
            case "config":
                guard s.peekKind() == .object else { throw wrongType(fields.path(name), "an object") }
                let start = s.offset
                try s.skipValue()
                let slice = UnsafeRawBufferPointer(rebasing: raw[start..<s.offset])
                do {
                    config = try Inputs.config(json: slice)
                } catch {
                    throw APIProblem(error.kind, "\(path).config: \(error.detail)")
                }
            case "created_at_ns": createdAt = try int(&s, fields.path(name), Int.min...Int.max)
            case "last_activity_ns": lastActivity = try int(&s, fields.path(name), Int.min...Int.max)
            case "stats": stats = try readStats(&s, fields.path(name))
            case "learned":
                guard s.peekKind() == .object else { throw wrongType(fields.path(name), "an object") }
                learnedAt = s.offset
                try s.skipValue()
            default:
                throw unknown(
                    path, name, "format, version, id, config, created_at_ns, last_activity_ns, stats, learned")
            }
        }
        guard format == Self.format else {
            throw APIProblem(.invalidField, "\(path).format must be \"\(Self.format)\"")
        }
        guard version == Self.version else {
            throw APIProblem(
                .invalidField,
                "\(path).version \(version.map(String.init) ?? "missing") is not supported; accepted: \(Self.version)")
        }
        guard let id, let config, let createdAt, let lastActivity, let stats, let learnedAt else {
            throw fields.missing(["id", "config", "created_at_ns", "last_activity_ns", "stats", "learned"])
        }
        var inner = JSONScanner(UnsafeRawBufferPointer(rebasing: raw[learnedAt...]))
        let learned = try readLearned(&inner, policy: config.prepage.policy, "\(path).learned")
        return SessionImage(
            id: id, config: config, createdAt: Int64(createdAt), lastActivity: Int64(lastActivity), stats: stats,
            learned: learned)
    }

    private static func readStats(_ s: inout JSONScanner, _ path: String) throws(APIProblem) -> SessionStats {
        guard s.peekKind() == .object else { throw wrongType(path, "an object") }
        var fields = Fields(path: path)
        var st = SessionStats()
        try s.beginObject()
        while let key = try s.nextKey() {
            let name = try fields.take(key)
            switch name {
            case "faults": st.faults = try uint64(&s, fields.path(name))
            case "first": st.first = try uint64(&s, fields.path(name))
            case "smaller": st.smaller = try uint64(&s, fields.path(name))
            case "larger": st.larger = try uint64(&s, fields.path(name))
            case "reverse": st.reverse = try uint64(&s, fields.path(name))
            case "repeat": st.repeats = try uint64(&s, fields.path(name))
            case "pages_advised": st.pagesAdvised = try uint64(&s, fields.path(name))
            case "last_fault_at_ns": st.lastFaultAt = Int64(try int(&s, fields.path(name), Int.min...Int.max))
            default:
                throw unknown(
                    path, name, "faults, first, smaller, larger, reverse, repeat, pages_advised, last_fault_at_ns")
            }
        }
        try fields.require([
            "faults", "first", "smaller", "larger", "reverse", "repeat", "pages_advised", "last_fault_at_ns",
        ])
        return st
    }

    private static func readLearned(_ s: inout JSONScanner, policy: PolicyName, _ path: String) throws(APIProblem)
        -> PrepagerState.Learned
    {
        var fields = Fields(path: path)
        try s.beginObject()
        switch policy {
        case .none, .forward:
            if let key = try s.nextKey() {
                throw unknown(path, key.decoded, "nothing (policy \(policy.rawValue) learns nothing)")
            }
            return .stateless
        case .readahead:
            var tick: UInt64 = 0
            var streams: [StreamTableState.Entry] = []
            while let key = try s.nextKey() {
                let name = try fields.take(key)
                switch name {
                case "tick": tick = try uint64(&s, fields.path(name))
                case "streams": streams = try readStreams(&s, fields.path(name))
                default: throw unknown(path, name, "tick, streams")
                }
            }
            try fields.require(["tick", "streams"])
            return .readahead(StreamTableState(tick: tick, streams: streams))
        case .dp, .dpLiteral:
            var d = DPState(
                nmin: 0, nmax: 0, minRecord: [], maxRecord: [], streams: StreamTableState(tick: 0, streams: []))
            while let key = try s.nextKey() {
                let name = try fields.take(key)
                switch name {
                case "nmin": d.nmin = try int(&s, fields.path(name))
                case "nmax": d.nmax = try int(&s, fields.path(name))
                case "min_record": d.minRecord = try ints(&s, fields.path(name))
                case "max_record": d.maxRecord = try ints(&s, fields.path(name))
                case "tick": d.streams.tick = try uint64(&s, fields.path(name))
                case "streams": d.streams.streams = try readStreams(&s, fields.path(name))
                default: throw unknown(path, name, "nmin, nmax, min_record, max_record, tick, streams")
                }
            }
            try fields.require(["nmin", "nmax", "min_record", "max_record", "tick", "streams"])
            return .dp(d)
        case .dpPlus:
            var p = DPPlusState(
                clock: 0, transitions: [], nodes: [], survival: [], plan: [], dirty: true, depth: 1, learnedGap: 0,
                nearRate: 0, directionBits: 0, directionCount: 0, slots: [], order: [])
            while let key = try s.nextKey() {
                let name = try fields.take(key)
                let at = fields.path(name)
                switch name {
                case "clock": p.clock = try int(&s, at)
                case "transitions":
                    p.transitions = try array(&s, at) { s, at throws(APIProblem) in
                        var f = Fields(path: at())
                        var t = DPPlusState.Transition(a: 0, b: 0, n: 0, c: 0, e: 0, last: 0)
                        try s.beginObject()
                        while let key = try s.nextKey() {
                            let name = try f.take(key)
                            switch name {
                            case "a": t.a = try int(&s, f.path(name))
                            case "b": t.b = try int(&s, f.path(name))
                            case "n": t.n = try double(&s, f.path(name))
                            case "c": t.c = try double(&s, f.path(name))
                            case "e": t.e = try int(&s, f.path(name))
                            case "last": t.last = try int(&s, f.path(name))
                            default: throw unknown(at(), name, "a, b, n, c, e, last")
                            }
                        }
                        try f.require(["a", "b", "n", "c", "e", "last"])
                        return t
                    }
                case "nodes": p.nodes = try ints(&s, at)
                case "survival": p.survival = try array(&s, at) { s, at throws(APIProblem) in try double(&s, at()) }
                case "plan": p.plan = try ints(&s, at)
                case "dirty": p.dirty = try bool(&s, at)
                case "depth": p.depth = try int(&s, at)
                case "learned_gap": p.learnedGap = try int(&s, at)
                case "near_rate": p.nearRate = try double(&s, at)
                case "direction_bits": p.directionBits = UInt32(try int(&s, at, 0...Int(UInt32.max)))
                case "direction_count": p.directionCount = try int(&s, at)
                case "slots":
                    p.slots = try array(&s, at) { s, at throws(APIProblem) in
                        var f = Fields(path: at())
                        var slot = DPPlusState.Slot(
                            lo: 0, hi: 0, direction: 0, firstDirection: 0, passed: 0, covered: 0, stream: 0,
                            open: false,
                            newer: 0, plan: [])
                        try s.beginObject()
                        while let key = try s.nextKey() {
                            let name = try f.take(key)
                            switch name {
                            case "lo": slot.lo = try int(&s, f.path(name))
                            case "hi": slot.hi = try int(&s, f.path(name))
                            case "direction": slot.direction = Int8(try int(&s, f.path(name), -1...1))
                            case "first_direction": slot.firstDirection = Int8(try int(&s, f.path(name), -1...1))
                            case "passed": slot.passed = try int(&s, f.path(name))
                            case "covered": slot.covered = try int(&s, f.path(name))
                            case "stream": slot.stream = UInt32(try int(&s, f.path(name), 0...Int(UInt32.max)))
                            case "open": slot.open = try bool(&s, f.path(name))
                            case "newer": slot.newer = try int(&s, f.path(name))
                            case "plan": slot.plan = try ints(&s, f.path(name))
                            default:
                                throw unknown(
                                    at(), name,
                                    "lo, hi, direction, first_direction, passed, covered, stream, open, newer, plan")
                            }
                        }
                        try f.require([
                            "lo", "hi", "direction", "first_direction", "passed", "covered", "stream", "open", "newer",
                            "plan",
                        ])
                        return slot
                    }
                case "order": p.order = try ints(&s, at)
                default:
                    throw unknown(
                        path, name,
                        "clock, transitions, nodes, survival, plan, dirty, depth, learned_gap, near_rate, direction_bits, direction_count, slots, order"
                    )
                }
            }
            try fields.require([
                "clock", "transitions", "nodes", "survival", "plan", "dirty", "depth", "learned_gap", "near_rate",
                "direction_bits", "direction_count", "slots", "order",
            ])
            return .plus(p)
        }
    }

    private static func readStreams(_ s: inout JSONScanner, _ path: String) throws(APIProblem) -> [StreamTableState
        .Entry]
    {
        try array(&s, path) { s, at throws(APIProblem) in
            var f = Fields(path: at())
            var e = StreamTableState.Entry(
                stream: 0, lo: 0, hi: 0, lastUsed: 0, ntest: 0, caseGuess: 0, caseFaults: 0, minHit: 0, maxHit: 0,
                up: true)
            try s.beginObject()
            while let key = try s.nextKey() {
                let name = try f.take(key)
                switch name {
                case "stream": e.stream = UInt32(try int(&s, f.path(name), 0...Int(UInt32.max)))
                case "lo": e.lo = try int(&s, f.path(name))
                case "hi": e.hi = try int(&s, f.path(name))
                case "last_used": e.lastUsed = try uint64(&s, f.path(name))
                case "ntest": e.ntest = try int(&s, f.path(name))
                case "case_guess": e.caseGuess = try int(&s, f.path(name))
                case "case_faults": e.caseFaults = try int(&s, f.path(name))
                case "min_hit": e.minHit = try int(&s, f.path(name))
                case "max_hit": e.maxHit = try int(&s, f.path(name))
                case "up": e.up = try bool(&s, f.path(name))
                default:
                    throw unknown(
                        at(), name, "stream, lo, hi, last_used, ntest, case_guess, case_faults, min_hit, max_hit, up")
                }
            }
            try f.require([
                "stream", "lo", "hi", "last_used", "ntest", "case_guess", "case_faults", "min_hit", "max_hit", "up",
            ])
            return e
        }
    }

    // MARK: - Values

    /// The keys of one object: each at most once.
    private struct Fields {
        private let base: () -> String
        var seen: [String] = []

        init(path: @escaping () -> String) { base = path }
        init(path: String) { base = { path } }

        var path: String { base() }

        mutating func take(_ key: JSONKey) throws(APIProblem) -> String {
            let name = key.decoded
            guard !seen.contains(name) else {
                throw APIProblem(
                    .invalidField, "duplicate field \(Inputs.quoted("\(path).\(name)")); give each field once")
            }
            seen.append(name)
            return name
        }

        func path(_ name: String) -> String { "\(base()).\(name)" }

        func require(_ names: [String]) throws(APIProblem) {
            let absent = names.filter { !seen.contains($0) }
            guard absent.isEmpty else { throw missing(absent) }
        }

        func missing(_ names: [String]) -> APIProblem {
            let absent = names.filter { !seen.contains($0) }
            return APIProblem(
                .invalidField,
                "\(path) lacks \(absent.map { "\(path).\($0)" }.joined(separator: ", ")); every field is required")
        }
    }

    /// At most this many elements in any array of the document (the largest table is 1,024 slots).
    static let maxElements = 65_536

    /// An array; `element` reads one, its path built only for an error message.
    private static func array<T>(
        _ s: inout JSONScanner, _ path: @autoclosure () -> String,
        _ element: (inout JSONScanner, () -> String) throws(APIProblem) -> T
    ) throws(APIProblem) -> [T] {
        let base = path()
        guard s.peekKind() == .array else { throw wrongType(base, "an array") }
        var out: [T] = []
        try s.beginArray()
        while try s.nextElement() {
            guard out.count < maxElements else {
                throw APIProblem(.invalidField, "\(base): at most \(maxElements) elements")
            }
            let k = out.count
            out.append(try element(&s, { "\(base)[\(k)]" }))
        }
        return out
    }

    private static func ints(_ s: inout JSONScanner, _ path: @autoclosure () -> String) throws(APIProblem) -> [Int] {
        try array(&s, path()) { s, at throws(APIProblem) in try int(&s, at()) }
    }

    private static func int(
        _ s: inout JSONScanner, _ path: @autoclosure () -> String, _ range: ClosedRange<Int> = 0...StateError.maxValue
    ) throws(APIProblem) -> Int {
        switch try s.integer() {
        case .success(let v):
            guard let value = v.value(in: range) else {
                throw APIProblem(
                    .invalidField,
                    "\(path()) = \(v.negative ? "-" : "")\(v.magnitude) is out of range; accepted: \(range.lowerBound) … \(range.upperBound)"
                )
            }
            return value
        case .failure:
            throw wrongType(path(), "an integer")
        }
    }

    private static func uint64(_ s: inout JSONScanner, _ path: @autoclosure () -> String) throws(APIProblem) -> UInt64 {
        switch try s.integer() {
        case .success(let v) where !v.negative: return v.magnitude
        default: throw wrongType(path(), "an integer 0 … \(UInt64.max)")
        }
    }

    private static func double(_ s: inout JSONScanner, _ path: @autoclosure () -> String) throws(APIProblem) -> Double {
        switch try s.real() {
        case .success(let v): return v
        case .failure: throw wrongType(path(), "a finite JSON number")
        }
    }

    private static func bool(_ s: inout JSONScanner, _ path: @autoclosure () -> String) throws(APIProblem) -> Bool {
        switch try s.boolean() {
        case .success(let b): return b
        case .failure: throw wrongType(path(), "true or false")
        }
    }

    private static func string(_ s: inout JSONScanner, _ path: @autoclosure () -> String) throws(APIProblem) -> String {
        switch try s.string() {
        case .success(let v): return v
        case .failure: throw wrongType(path(), "a string")
        }
    }

    private static func wrongType(_ path: String, _ accepted: String) -> APIProblem {
        APIProblem(.invalidField, "\(path) must be \(accepted)")
    }

    private static func unknown(_ path: String, _ name: String, _ accepted: String) -> APIProblem {
        APIProblem(.invalidField, "unknown field \(Inputs.quoted("\(path).\(name)")); accepted: \(accepted)")
    }
}
