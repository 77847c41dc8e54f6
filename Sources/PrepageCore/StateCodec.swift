/// The binary form of a ``PrepagerState``: compact, versioned, exact.
///
/// Integers are LEB128 varints (signed ones zigzag-encoded first), doubles
/// their 8 IEEE-754 bytes little-endian (bit for bit), booleans one byte,
/// strings a varint length and their UTF-8. The layout (version 1):
///
/// ```
/// varint   version (1)
/// config   varint n, then n × (string name, byte kind, value):
///          kind 0 = policy (string), 1 = integer (zigzag), 2 = real (f64);
///          fields by the names of PrepageConfig.fields; absent ones take their default
/// byte     policy state: 0 none/forward, 1 dp, 2 readahead, 3 dp-plus
/// dp       zz nmin, zz nmax, ints min_record, ints max_record, streams
/// streams  varint tick, varint n, n × (varint stream, zz lo, zz hi, varint last_used,
///          zz ntest, zz case_guess, zz case_faults, zz min_hit, zz max_hit, byte up)
/// dp-plus  zz clock, varint n, n × (zz a, zz b, f64 n, f64 c, zz e, zz last),
///          ints nodes, f64 × |nodes| survival, ints plan, byte dirty, zz depth,
///          zz learned_gap, f64 near_rate, varint direction_bits, varint direction_count,
///          varint n slots, n × (zz lo, zz hi, byte d, byte w, zz passed, zz covered,
///          varint stream, byte open, zz newer, ints plan), n × varint order
/// ints     varint n, n × zz
/// ```
///
/// Decoding checks the framing only (every length against the bytes left, so
/// a corrupt count cannot make it allocate much); ``Prepager/init(state:)``
/// checks the values.
extension PrepagerState {
    /// Appends the binary form: the version, the configuration, the learned state.
    public func encode(into w: inout StateWriter) {
        w.varint(UInt64(Self.version))
        config.encode(into: &w)
        learned.encode(into: &w)
    }

    /// Reads the binary form from `r`.
    /// - Throws: ``StateError`` for a version this build does not know, a field
    ///   it does not know, or bytes that end early or do not frame.
    public static func decode(from r: inout StateReader) throws(StateError) -> PrepagerState {
        let version = try r.varint()
        guard version == UInt64(Self.version) else {
            throw StateError(field: "version", "\(version) is not known here; accepted: \(Self.version)")
        }
        let config = try PrepageConfig.decode(from: &r)
        return PrepagerState(config: config, learned: try Learned.decode(from: &r))
    }

    /// The binary form as bytes.
    public var encoded: [UInt8] {
        var w = StateWriter()
        encode(into: &w)
        return w.bytes
    }

    /// A state from exactly `bytes` (nothing may follow it).
    public init(encoded bytes: [UInt8]) throws(StateError) {
        let result: Result<PrepagerState, StateError> = bytes.withUnsafeBytes { raw in
            var r = StateReader(raw)
            do throws(StateError) {
                let s = try PrepagerState.decode(from: &r)
                guard r.isAtEnd else { throw StateError(field: "state", "\(r.remaining) bytes follow the state") }
                return .success(s)
            } catch {
                return .failure(error)
            }
        }
        self = try result.get()
    }
}

extension PrepageConfig {
    /// Appends every field of ``fields`` by name (see ``PrepagerState/encode(into:)``).
    public func encode(into w: inout StateWriter) {
        w.varint(UInt64(PrepageConfig.fields.count))
        for field in PrepageConfig.fields {
            w.string(field.name)
            switch field.value(in: self) {
            case .policy(let p):
                w.byte(0)
                w.string(p.rawValue)
            case .integer(let i):
                w.byte(1)
                w.int(i)
            case .real(let d):
                w.byte(2)
                w.double(d)
            }
        }
    }

    /// Reads what ``encode(into:)`` wrote; fields not given take their default.
    /// Not validated: ``Prepager/init(state:)`` validates.
    public static func decode(from r: inout StateReader) throws(StateError) -> PrepageConfig {
        var config = PrepageConfig()
        let fields = PrepageConfig.fields
        let n = try r.count()
        for i in 0..<n {
            let name = try r.string()
            // Written in the table's order: the field at the same place, unless the writer's table
            // differs (another version): then looked up by name.
            let field = i < fields.count && fields[i].name == name ? fields[i] : PrepageConfig.field(named: name)
            guard let field else {
                throw StateError(field: "config", "unknown field \"\(name)\"")
            }
            let value: ConfigValue
            switch try r.byte() {
            case 0:
                let p = try r.string()
                guard let policy = PolicyName(rawValue: p) else {
                    throw StateError(
                        field: "config.policy", "unknown policy \"\(p)\"; accepted: \(PolicyName.accepted)")
                }
                value = .policy(policy)
            case 1: value = .integer(try r.int())
            case 2: value = .real(try r.double())
            case let k: throw StateError(field: "config.\(name)", "unknown value kind \(k)")
            }
            guard field.set(value, in: &config) else {
                throw StateError(field: "config.\(name)", "a value of the wrong kind")
            }
        }
        return config
    }
}

extension PrepagerState.Learned {
    /// Appends the learned state (see ``PrepagerState/encode(into:)``).
    public func encode(into w: inout StateWriter) {
        switch self {
        case .stateless:
            w.byte(0)
        case .dp(let s):
            w.byte(1)
            w.int(s.nmin)
            w.int(s.nmax)
            w.ints(s.minRecord)
            w.ints(s.maxRecord)
            Self.encodeStreams(s.streams, into: &w)
        case .readahead(let s):
            w.byte(2)
            Self.encodeStreams(s, into: &w)
        case .plus(let s):
            w.byte(3)
            w.int(s.clock)
            w.varint(UInt64(s.transitions.count))
            for t in s.transitions {
                w.int(t.a)
                w.int(t.b)
                w.double(t.n)
                w.double(t.c)
                w.int(t.e)
                w.int(t.last)
            }
            w.ints(s.nodes)
            for v in s.survival { w.double(v) }
            w.ints(s.plan)
            w.bool(s.dirty)
            w.int(s.depth)
            w.int(s.learnedGap)
            w.double(s.nearRate)
            w.varint(UInt64(s.directionBits))
            w.int(s.directionCount)
            w.varint(UInt64(s.slots.count))
            for slot in s.slots {
                w.int(slot.lo)
                w.int(slot.hi)
                w.byte(UInt8(bitPattern: slot.direction))
                w.byte(UInt8(bitPattern: slot.firstDirection))
                w.int(slot.passed)
                w.int(slot.covered)
                w.varint(UInt64(slot.stream))
                w.bool(slot.open)
                w.int(slot.newer)
                w.ints(slot.plan)
            }
            for i in s.order { w.varint(UInt64(i)) }
        }
    }

    private static func encodeStreams(_ s: StreamTableState, into w: inout StateWriter) {
        w.varint(s.tick)
        w.varint(UInt64(s.streams.count))
        for e in s.streams {
            w.varint(UInt64(e.stream))
            w.int(e.lo)
            w.int(e.hi)
            w.varint(e.lastUsed)
            w.int(e.ntest)
            w.int(e.caseGuess)
            w.int(e.caseFaults)
            w.int(e.minHit)
            w.int(e.maxHit)
            w.bool(e.up)
        }
    }

    /// Reads what ``encode(into:)`` wrote.
    public static func decode(from r: inout StateReader) throws(StateError) -> PrepagerState.Learned {
        switch try r.byte() {
        case 0:
            return .stateless
        case 1:
            let nmin = try r.int()
            let nmax = try r.int()
            let minRecord = try r.ints()
            let maxRecord = try r.ints()
            return .dp(
                DPState(
                    nmin: nmin, nmax: nmax, minRecord: minRecord, maxRecord: maxRecord, streams: try decodeStreams(&r)))
        case 2:
            return .readahead(try decodeStreams(&r))
        case 3:
            let clock = try r.int()
            let nt = try r.count(atLeast: 20)
            var transitions: [DPPlusState.Transition] = []
            transitions.reserveCapacity(nt)
            for _ in 0..<nt {
                let a = try r.int()
                let b = try r.int()
                let n = try r.double()
                let c = try r.double()
                let e = try r.int()
                transitions.append(.init(a: a, b: b, n: n, c: c, e: e, last: try r.int()))
            }
            let nodes = try r.ints()
            var survival: [Double] = []
            survival.reserveCapacity(nodes.count)
            for _ in nodes.indices { survival.append(try r.double()) }
            let plan = try r.ints()
            let dirty = try r.bool()
            let depth = try r.int()
            let learnedGap = try r.int()
            let nearRate = try r.double()
            let bits = try r.varint()
            guard bits <= UInt64(UInt32.max) else {
                throw StateError(field: "learned.direction_bits", "beyond 32 bits")
            }
            let directionCount = try r.int()
            let ns = try r.count(atLeast: 10)
            var slots: [DPPlusState.Slot] = []
            slots.reserveCapacity(ns)
            for _ in 0..<ns {
                let lo = try r.int()
                let hi = try r.int()
                let d = Int8(bitPattern: try r.byte())
                let w = Int8(bitPattern: try r.byte())
                let passed = try r.int()
                let covered = try r.int()
                let stream = try r.varint()
                guard stream <= UInt64(UInt32.max) else {
                    throw StateError(field: "learned.slots", "stream beyond 32 bits")
                }
                let open = try r.bool()
                let newer = try r.int()
                slots.append(
                    .init(
                        lo: lo, hi: hi, direction: d, firstDirection: w, passed: passed, covered: covered,
                        stream: UInt32(stream), open: open, newer: newer, plan: try r.ints()))
            }
            var order: [Int] = []
            order.reserveCapacity(ns)
            for _ in 0..<ns { order.append(Int(clamping: try r.varint())) }
            return .plus(
                DPPlusState(
                    clock: clock, transitions: transitions, nodes: nodes, survival: survival, plan: plan, dirty: dirty,
                    depth: depth, learnedGap: learnedGap, nearRate: nearRate, directionBits: UInt32(bits),
                    directionCount: directionCount, slots: slots, order: order))
        case let k:
            throw StateError(field: "learned", "unknown policy state kind \(k)")
        }
    }

    private static func decodeStreams(_ r: inout StateReader) throws(StateError) -> StreamTableState {
        let tick = try r.varint()
        let n = try r.count(atLeast: 10)
        var entries: [StreamTableState.Entry] = []
        entries.reserveCapacity(n)
        for _ in 0..<n {
            let stream = try r.varint()
            guard stream <= UInt64(UInt32.max) else {
                throw StateError(field: "learned.streams", "stream beyond 32 bits")
            }
            let lo = try r.int()
            let hi = try r.int()
            let lastUsed = try r.varint()
            let ntest = try r.int()
            let caseGuess = try r.int()
            let caseFaults = try r.int()
            let minHit = try r.int()
            let maxHit = try r.int()
            entries.append(
                .init(
                    stream: UInt32(stream), lo: lo, hi: hi, lastUsed: lastUsed, ntest: ntest, caseGuess: caseGuess,
                    caseFaults: caseFaults, minHit: minHit, maxHit: maxHit, up: try r.bool()))
        }
        return StreamTableState(tick: tick, streams: entries)
    }
}

/// Appends varints, doubles and strings to a byte buffer.
public struct StateWriter: Sendable {
    public var bytes: [UInt8]

    public init(reusing bytes: [UInt8] = []) {
        self.bytes = bytes
    }

    @inline(__always)
    public mutating func byte(_ b: UInt8) { bytes.append(b) }

    public mutating func bool(_ b: Bool) { bytes.append(b ? 1 : 0) }

    /// LEB128: 7 bits a byte, low first, high bit set on all but the last.
    @inline(__always)
    public mutating func varint(_ v: UInt64) {
        var v = v
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(v))
    }

    /// A signed integer, zigzag-encoded (0, −1, 1, −2 … → 0, 1, 2, 3 …) then as a varint.
    @inline(__always)
    public mutating func int(_ v: Int) {
        varint(UInt64(bitPattern: Int64((v << 1) ^ (v >> 63))))
    }

    /// The 8 bytes of the IEEE-754 binary64, little-endian: exact.
    public mutating func double(_ d: Double) {
        fixed64(d.bitPattern)
    }

    public mutating func fixed64(_ v: UInt64) {
        for k in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
    }

    public mutating func fixed32(_ v: UInt32) {
        for k in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * k))) }
    }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            varint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    public mutating func ints(_ values: [Int]) {
        varint(UInt64(values.count))
        for v in values { int(v) }
    }
}

/// Reads what ``StateWriter`` wrote, checking every length against the bytes left.
public struct StateReader: ~Copyable {
    private let bytes: UnsafeRawBufferPointer
    public private(set) var offset = 0

    public init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    public var remaining: Int { bytes.count - offset }
    public var isAtEnd: Bool { offset == bytes.count }

    private func short(_ what: String) -> StateError {
        StateError(field: "state", "the bytes end inside \(what) (at byte \(offset) of \(bytes.count))")
    }

    public mutating func byte() throws(StateError) -> UInt8 {
        guard offset < bytes.count else { throw short("a byte") }
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func bool() throws(StateError) -> Bool {
        let b = try byte()
        guard b <= 1 else { throw StateError(field: "state", "a boolean of \(b) at byte \(offset - 1)") }
        return b == 1
    }

    public mutating func varint() throws(StateError) -> UInt64 {
        var v: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < bytes.count else { throw short("an integer") }
            let b = bytes[offset]
            offset += 1
            guard shift < 64, shift < 63 || b <= 1 else {
                throw StateError(field: "state", "an integer beyond 64 bits at byte \(offset - 1)")
            }
            v |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return v }
            shift += 7
        }
    }

    public mutating func int() throws(StateError) -> Int {
        let z = try varint()
        return Int(Int64(bitPattern: (z >> 1) ^ (0 &- (z & 1))))
    }

    public mutating func fixed64() throws(StateError) -> UInt64 {
        guard remaining >= 8 else { throw short("8 bytes") }
        var v: UInt64 = 0
        for k in 0..<8 { v |= UInt64(bytes[offset + k]) << (8 * UInt64(k)) }
        offset += 8
        return v
    }

    public mutating func fixed32() throws(StateError) -> UInt32 {
        guard remaining >= 4 else { throw short("4 bytes") }
        var v: UInt32 = 0
        for k in 0..<4 { v |= UInt32(bytes[offset + k]) << (8 * UInt32(k)) }
        offset += 4
        return v
    }

    public mutating func double() throws(StateError) -> Double {
        Double(bitPattern: try fixed64())
    }

    /// A count of items each at least `atLeast` bytes long: never more than the bytes left allow.
    public mutating func count(atLeast: Int = 1) throws(StateError) -> Int {
        let n = try varint()
        guard n <= UInt64(remaining / max(1, atLeast)) else {
            throw StateError(
                field: "state", "a count of \(n) at byte \(offset) exceeds what the \(remaining) bytes left hold")
        }
        return Int(n)
    }

    public mutating func string() throws(StateError) -> String {
        let n = try count()
        defer { offset += n }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]), as: UTF8.self)
    }

    /// `n` raw bytes.
    public mutating func bytes(_ n: Int) throws(StateError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else { throw short("\(n) bytes") }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    public mutating func ints() throws(StateError) -> [Int] {
        let n = try count()
        var out: [Int] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try int()) }
        return out
    }
}
