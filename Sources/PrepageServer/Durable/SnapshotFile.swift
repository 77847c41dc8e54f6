import PrepageCore
import PrepageSockets

/// A snapshot file: `snapshot-<seq, 16 hex digits>.full` (every session: a
/// checkpoint) or `.delta` (the sessions changed since the previous snapshot).
///
/// ```
/// header   "PPSNAP01" (8 bytes), u8 kind (1 full, 2 delta), u64 seq,
///          u64 covers (the first LSN the journal must replay after a full one),
///          i64 taken at (wall ns)                          — little-endian
/// entries  per session: u8 1, varint length, then
///          string id, varint incarnation (LSN), varint config (0: inline, next;
///          k ≥ 1: the k-th inline config of this file), [config], zz created_at,
///          zz last_activity, stats, learned state (PrepagerState.Learned)
/// end      u8 0, varint entry count, u32 CRC-32C of every byte before it
/// ```
///
/// Written to `<name>.tmp`, `fsync`ed, renamed over `<name>`, then the
/// directory is `fsync`ed: a file either is whole or does not exist.
struct SnapshotWriter: ~Copyable {
    static let magic: UInt64 = 0x3130_5041_4E53_5050  // "PPSNAP01"
    static let headerBytes = 8 + 1 + 8 + 8 + 8

    enum Kind: UInt8 {
        case full = 1
        case delta = 2

        var suffix: String { self == .full ? "full" : "delta" }
    }

    let path: String
    private let temporary: String
    private let directory: String
    private var fd: Int32
    private var buffer = StateWriter()
    private var crc: UInt32 = 0
    private(set) var count = 0
    private(set) var bytesWritten = 0
    private var configs: [SessionConfig: Int] = [:]
    private var failure: SocketError?

    static func name(seq: UInt64, kind: Kind) -> String { "snapshot-\(hex16(seq)).\(kind.suffix)" }

    init(directory: String, seq: UInt64, kind: Kind, covers: UInt64, takenAt: Int64) throws(SocketError) {
        self.directory = directory
        path = directory + "/" + Self.name(seq: seq, kind: kind)
        temporary = path + ".tmp"
        fd = try Files.create(temporary)
        buffer.bytes.reserveCapacity(1 << 20)
        buffer.fixed64(Self.magic)
        buffer.byte(kind.rawValue)
        buffer.fixed64(seq)
        buffer.fixed64(covers)
        buffer.fixed64(UInt64(bitPattern: takenAt))
    }

    /// Adds one session.
    mutating func add(_ image: SessionImage, incarnation: UInt64) {
        var e = head(
            id: image.id, config: image.config, createdAt: image.createdAt, lastActivity: image.lastActivity,
            stats: image.stats, incarnation: incarnation)
        image.learned.encode(into: &e)
        append(e)
    }

    /// Adds one session whose learned state is already in its binary form (restored, unused since).
    mutating func add(
        id: String, config: SessionConfig, createdAt: Int64, lastActivity: Int64, stats: SessionStats,
        learned: ArraySlice<UInt8>, incarnation: UInt64
    ) {
        var e = head(
            id: id, config: config, createdAt: createdAt, lastActivity: lastActivity, stats: stats,
            incarnation: incarnation)
        e.bytes.append(contentsOf: learned)
        append(e)
    }

    private mutating func head(
        id: String, config: SessionConfig, createdAt: Int64, lastActivity: Int64, stats: SessionStats,
        incarnation: UInt64
    ) -> StateWriter {
        var e = StateWriter()
        e.string(id)
        e.varint(incarnation)
        if let k = configs[config] {
            e.varint(UInt64(k))
        } else {
            e.varint(0)
            config.encode(into: &e)
            configs[config] = configs.count + 1
        }
        e.int(Int(createdAt))
        e.int(Int(lastActivity))
        stats.encode(into: &e)
        return e
    }

    private mutating func append(_ e: StateWriter) {
        buffer.byte(1)
        buffer.varint(UInt64(e.bytes.count))
        buffer.bytes.append(contentsOf: e.bytes)
        count += 1
        if buffer.bytes.count >= 1 << 20 { flush() }
    }

    private mutating func flush() {
        guard failure == nil else {
            buffer.bytes.removeAll(keepingCapacity: true)
            return
        }
        crc = buffer.bytes.withUnsafeBytes { CRC32C.update(crc, $0) }
        do {
            try Files.writeAll(fd, buffer.bytes, what: "write(\(temporary))")
            bytesWritten += buffer.bytes.count
        } catch {
            failure = error
        }
        buffer.bytes.removeAll(keepingCapacity: true)
    }

    /// Ends the file, makes it durable and gives it its name.
    /// - Returns: its size in bytes.
    consuming func finish() throws(SocketError) -> Int {
        buffer.byte(0)
        buffer.varint(UInt64(count))
        flush()
        var tail = StateWriter()
        tail.fixed32(crc)
        let fd = self.fd
        let failure = self.failure
        let temporary = self.temporary
        let path = self.path
        let directory = self.directory
        let size = bytesWritten + 4
        do throws(SocketError) {
            if let failure { throw failure }
            try Files.writeAll(fd, tail.bytes, what: "write(\(temporary))")
            try Files.syncData(fd)
            Files.close(fd)
            try Files.rename(temporary, path)
            try Files.syncDirectory(directory)
        } catch {
            Files.close(fd)
            try? Files.remove(temporary)
            throw error
        }
        return size
    }

    /// Gives up: the temporary file is removed.
    consuming func abandon() {
        Files.close(fd)
        try? Files.remove(temporary)
    }
}

/// A snapshot file read back and checked (its checksum first: a torn or damaged
/// file is refused whole). Entries are indexed; their learned state is decoded
/// only when asked for.
struct SnapshotFile: Sendable {
    var kind: SnapshotWriter.Kind
    var seq: UInt64
    var covers: UInt64
    var takenAt: Int64
    let bytes: [UInt8]
    var configs: [SessionConfig] = []
    var entries: [Entry] = []

    struct Entry: Sendable {
        var id: String
        var incarnation: UInt64
        var config: Int
        /// Where created_at starts and the entry ends.
        var rest: Range<Int>
    }

    /// Why a file was refused.
    struct Refusal: Error, CustomStringConvertible {
        var description: String
    }

    init(bytes: [UInt8], name: String) throws(Refusal) {
        self.bytes = bytes
        let minimum = SnapshotWriter.headerBytes + 2 + 4
        guard bytes.count >= minimum else {
            throw Refusal(description: "\(name): \(bytes.count) bytes, shorter than any snapshot (\(minimum)); torn")
        }
        let stored = bytes.withUnsafeBytes {
            UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: bytes.count - 4, as: UInt32.self))
        }
        let computed = bytes.withUnsafeBytes {
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[..<(bytes.count - 4)]))
        }
        guard stored == computed else {
            throw Refusal(
                description:
                    "\(name): checksum mismatch (stored \(hex8(stored)), computed \(hex8(computed))); torn or corrupt")
        }
        let parsed: Result<(SnapshotWriter.Kind, UInt64, UInt64, Int64, [SessionConfig], [Entry]), StateError> =
            bytes.withUnsafeBytes { raw in
                var r = StateReader(UnsafeRawBufferPointer(rebasing: raw[..<(bytes.count - 4)]))
                do throws(StateError) {
                    guard try r.fixed64() == SnapshotWriter.magic else {
                        throw StateError(field: "header", "not a prepage snapshot (magic)")
                    }
                    guard let kind = SnapshotWriter.Kind(rawValue: try r.byte()) else {
                        throw StateError(field: "header", "unknown kind")
                    }
                    let seq = try r.fixed64()
                    let covers = try r.fixed64()
                    let takenAt = Int64(bitPattern: try r.fixed64())
                    var configs: [SessionConfig] = []
                    var entries: [Entry] = []
                    while try r.byte() == 1 {
                        let length = try r.count()
                        let end = r.offset + length
                        let id = try r.string()
                        let incarnation = try r.varint()
                        let ref = try r.varint()
                        let config: Int
                        if ref == 0 {
                            configs.append(try SessionConfig.decode(from: &r))
                            config = configs.count - 1
                        } else {
                            guard ref <= UInt64(configs.count) else {
                                throw StateError(field: "entry \(entries.count)", "config #\(ref) not defined before")
                            }
                            config = Int(ref) - 1
                        }
                        guard r.offset <= end else {
                            throw StateError(field: "entry \(entries.count)", "longer than its length")
                        }
                        entries.append(Entry(id: id, incarnation: incarnation, config: config, rest: r.offset..<end))
                        _ = try r.bytes(end - r.offset)
                    }
                    let count = try r.varint()
                    guard count == UInt64(entries.count), r.isAtEnd else {
                        throw StateError(field: "end", "\(entries.count) entries found, \(count) announced")
                    }
                    return .success((kind, seq, covers, takenAt, configs, entries))
                } catch {
                    return .failure(error)
                }
            }
        switch parsed {
        case .success(let (kind, seq, covers, takenAt, configs, entries)):
            self.kind = kind
            self.seq = seq
            self.covers = covers
            self.takenAt = takenAt
            self.configs = configs
            self.entries = entries
        case .failure(let e):
            throw Refusal(description: "\(name): does not frame (\(e)); refused")
        }
    }

    /// The `covers` LSN of a snapshot's header (its first bytes), or `nil` when they are not one.
    static func covers(header: [UInt8]) -> UInt64? {
        guard header.count >= SnapshotWriter.headerBytes else { return nil }
        return header.withUnsafeBytes { raw -> UInt64? in
            guard UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)) == SnapshotWriter.magic
            else {
                return nil
            }
            return UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 17, as: UInt64.self))
        }
    }

    /// Entry `i` without its learned state decoded: times, counters, and the learned
    /// state's bytes (checked to decode whole when `check`).
    func header(_ i: Int, check: Bool) throws(StateError) -> (
        createdAt: Int64, lastActivity: Int64, stats: SessionStats, learned: ArraySlice<UInt8>
    ) {
        let e = entries[i]
        let result: Result<(Int64, Int64, SessionStats, Range<Int>), StateError> = bytes.withUnsafeBytes { raw in
            var r = StateReader(UnsafeRawBufferPointer(rebasing: raw[e.rest]))
            do throws(StateError) {
                let createdAt = Int64(try r.int())
                let lastActivity = Int64(try r.int())
                let stats = try SessionStats.decode(from: &r)
                let start = e.rest.lowerBound + r.offset
                if check {
                    _ = try PrepagerState.Learned.decode(from: &r)
                    guard r.isAtEnd else { throw StateError(field: "entry", "\(r.remaining) bytes follow the state") }
                }
                return .success((createdAt, lastActivity, stats, start..<e.rest.upperBound))
            } catch {
                return .failure(error)
            }
        }
        let (createdAt, lastActivity, stats, range) = try result.get()
        return (createdAt, lastActivity, stats, bytes[range])
    }

    /// The whole image of entry `i`.
    func image(_ i: Int) throws(StateError) -> SessionImage {
        let e = entries[i]
        let result: Result<SessionImage, StateError> = bytes.withUnsafeBytes { raw in
            var r = StateReader(UnsafeRawBufferPointer(rebasing: raw[e.rest]))
            do throws(StateError) {
                let createdAt = Int64(try r.int())
                let lastActivity = Int64(try r.int())
                let stats = try SessionStats.decode(from: &r)
                let learned = try PrepagerState.Learned.decode(from: &r)
                guard r.isAtEnd else { throw StateError(field: "entry", "\(r.remaining) bytes follow the state") }
                return .success(
                    SessionImage(
                        id: e.id, config: configs[e.config], createdAt: createdAt, lastActivity: lastActivity,
                        stats: stats, learned: learned))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}

func hex8(_ n: UInt32) -> String {
    let digits = String(n, radix: 16)
    return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
}
