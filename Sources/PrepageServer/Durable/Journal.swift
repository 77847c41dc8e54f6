import PrepageCore
import PrepageSockets
import Synchronization

/// One lifecycle event of a session, as the journal holds it.
enum JournalRecord: Sendable, Hashable {
    /// `PUT /sessions/{id}` with a configuration: a fresh session.
    case create(id: String, config: SessionConfig, createdAt: Int64)
    /// `DELETE`, idle expiry, or a session handed to another instance.
    case delete(id: String)
    /// `POST /sessions/{id}/reset`: the policy starts afresh; the counters continue.
    case reset(id: String, at: Int64, stats: SessionStats)
    /// `PUT /sessions/{id}` with `{"state": …}`: the session is this image.
    case install(SessionImage)

    var id: String {
        switch self {
        case .create(let id, _, _), .delete(let id), .reset(let id, _, _): id
        case .install(let image): image.id
        }
    }

    var type: UInt8 {
        switch self {
        case .create: 1
        case .delete: 2
        case .reset: 3
        case .install: 4
        }
    }

    func encodePayload(into w: inout StateWriter) {
        switch self {
        case .create(let id, let config, let createdAt):
            w.string(id)
            config.encode(into: &w)
            w.int(Int(createdAt))
        case .delete(let id):
            w.string(id)
        case .reset(let id, let at, let stats):
            w.string(id)
            w.int(Int(at))
            stats.encode(into: &w)
        case .install(let image):
            image.encode(into: &w)
        }
    }

    static func decode(type: UInt8, payload: UnsafeRawBufferPointer) throws(StateError) -> JournalRecord {
        var r = StateReader(payload)
        let record: JournalRecord
        switch type {
        case 1:
            let id = try r.string()
            let config = try SessionConfig.decode(from: &r)
            record = .create(id: id, config: config, createdAt: Int64(try r.int()))
        case 2:
            record = .delete(id: try r.string())
        case 3:
            let id = try r.string()
            let at = Int64(try r.int())
            record = .reset(id: id, at: at, stats: try SessionStats.decode(from: &r))
        case 4:
            record = .install(try SessionImage.decode(from: &r))
        default:
            throw StateError(field: "journal", "unknown record type \(type)")
        }
        guard r.isAtEnd else { throw StateError(field: "journal", "\(r.remaining) bytes follow a record") }
        return record
    }
}

/// The journal: session lifecycle records appended to segment files
/// `journal-<first LSN, 16 hex digits>.log` and made durable before they are
/// acknowledged.
///
/// Each record is framed as `magic "PPJ1", u32 length, u32 CRC-32C of the body,
/// body` (little-endian), the body being `u64 LSN, u8 type, payload`. LSNs
/// (log sequence numbers) count records from 1 across segments and restarts.
///
/// Appending only encodes into a buffer under a short lock (the caller holds the
/// lock that orders the change it records: the registry's shard lock or the
/// session's lock, so LSN order is the order of the changes). ``sync(_:)`` then
/// writes and `fdatasync`s: whoever syncs writes every record buffered so far,
/// so concurrent lifecycle requests share one disk flush (group commit).
final class Journal: Sendable {
    static let magic: UInt32 = 0x314A_5050  // "PPJ1"
    static let headerBytes = 12

    let directory: String

    private struct Pending {
        var bytes: [UInt8] = []
        var nextLSN: UInt64
    }

    private struct Writer {
        var fd: Int32
        var spare: [UInt8] = []
        var failure: SocketError?
    }

    private let pending: Mutex<Pending>
    private let writer: Mutex<Writer>
    /// Every record with an LSN at or below this is on disk.
    private let durable: Atomic<UInt64>
    /// Every record with an LSN at or below this is written to the segment: in the page
    /// cache, it outlives the process (a crash, a `kill -9`), not the machine.
    private let written: Atomic<UInt64>
    /// Set once a write or sync failed (read without the writer's lock, which a sync holds while it waits for the disk).
    private let failed = Atomic<Bool>(false)

    /// The error that stopped the journal, or `nil` while it works.
    var failure: SocketError? {
        guard failed.load(ordering: .acquiring) else { return nil }
        return writer.withLock { $0.failure }
    }

    /// Opens a new segment starting at `nextLSN`.
    init(directory: String, nextLSN: UInt64) throws(SocketError) {
        self.directory = directory
        let fd = try Files.openAppend(Self.segmentPath(directory, nextLSN))
        do {
            try Files.syncDirectory(directory)
        } catch {
            Files.close(fd)
            throw error
        }
        pending = Mutex(Pending(nextLSN: nextLSN))
        writer = Mutex(Writer(fd: fd))
        durable = Atomic(nextLSN - 1)
        written = Atomic(nextLSN - 1)
    }

    static func segmentPath(_ directory: String, _ start: UInt64) -> String {
        directory + "/journal-" + hex16(start) + ".log"
    }

    /// The LSN the next record will get.
    var nextLSN: UInt64 { pending.withLock { $0.nextLSN } }

    /// Appends a record to the buffer (not yet durable); returns its LSN.
    /// `payload` is ``JournalRecord/encodePayload(into:)``'s, encoded before the caller's lock.
    func append(type: UInt8, payload: [UInt8]) -> UInt64 {
        pending.withLock { p in
            let lsn = p.nextLSN
            p.nextLSN += 1
            Self.frame(lsn: lsn, type: type, payload: payload, into: &p.bytes)
            return lsn
        }
    }

    func append(_ record: JournalRecord) -> UInt64 {
        append(type: record.type, payload: Self.payload(record))
    }

    static func payload(_ record: JournalRecord) -> [UInt8] {
        var w = StateWriter()
        record.encodePayload(into: &w)
        return w.bytes
    }

    static func frame(lsn: UInt64, type: UInt8, payload: [UInt8], into out: inout [UInt8]) {
        var body = StateWriter()
        body.bytes.reserveCapacity(9 + payload.count)
        body.fixed64(lsn)
        body.byte(type)
        body.bytes.append(contentsOf: payload)
        var head = StateWriter()
        head.fixed32(magic)
        head.fixed32(UInt32(body.bytes.count))
        head.fixed32(CRC32C.checksum(body.bytes))
        out.append(contentsOf: head.bytes)
        out.append(contentsOf: body.bytes)
    }

    /// Makes every record up to `lsn` durable: writes what is buffered and `fdatasync`s,
    /// unless another caller's flush already covered it.
    /// - Throws: the write or sync error (then, and for every later call: the journal
    ///   cannot promise anything any more).
    func sync(_ lsn: UInt64) throws(SocketError) {
        try flush(lsn, durably: true)
    }

    /// Writes every record up to `lsn` to the segment without waiting for the disk: it
    /// survives a crash of the process from then on; ``sync(_:)`` makes it durable.
    func write(_ lsn: UInt64) throws(SocketError) {
        try flush(lsn, durably: false)
    }

    private func flush(_ lsn: UInt64, durably: Bool) throws(SocketError) {
        func covered() -> Bool {
            (durably ? durable.load(ordering: .acquiring) : written.load(ordering: .acquiring)) >= lsn
        }
        if covered() { return }
        let result: SocketError? = writer.withLock { w in
            if let failure = w.failure { return failure }
            if covered() { return nil }
            var batch = w.spare
            let last = pending.withLock { p in
                swap(&batch, &p.bytes)
                return p.nextLSN - 1
            }
            do throws(SocketError) {
                try Files.writeAll(w.fd, batch, what: "write(journal)")
                if durably { try Files.syncData(w.fd) }
            } catch {
                w.failure = error
                failed.store(true, ordering: .releasing)
                return error
            }
            batch.removeAll(keepingCapacity: true)
            w.spare = batch
            written.store(last, ordering: .releasing)
            if durably { durable.store(last, ordering: .releasing) }
            return nil
        }
        if let result { throw result }
    }

    /// Makes everything appended so far durable.
    func syncAll() throws(SocketError) {
        try sync(pending.withLock { $0.nextLSN } - 1)
    }

    /// Flushes, closes the segment and starts a new one at the next LSN.
    /// - Returns: the new segment's first LSN: every record before it is in older segments.
    func rotate() throws(SocketError) -> UInt64 {
        try writer.withLock { w throws(SocketError) -> UInt64 in
            if let failure = w.failure { throw failure }
            // The boundary: what is buffered now goes to the old segment; records appended
            // from here on (LSN ≥ start) are written by a later sync, into the new one.
            // No disk I/O under the pending lock: appenders hold the registry's locks.
            var batch = w.spare
            let start = pending.withLock { p in
                swap(&batch, &p.bytes)
                return p.nextLSN
            }
            do throws(SocketError) {
                try Files.writeAll(w.fd, batch, what: "write(journal)")
                try Files.syncData(w.fd)
                let fd = try Files.openAppend(Self.segmentPath(directory, start))
                try Files.syncDirectory(directory)
                Files.close(w.fd)
                w.fd = fd
            } catch {
                w.failure = error
                failed.store(true, ordering: .releasing)
                throw error
            }
            batch.removeAll(keepingCapacity: true)
            w.spare = batch
            written.store(start - 1, ordering: .releasing)
            durable.store(start - 1, ordering: .releasing)
            return start
        }
    }

    /// Flushes and closes (at the end of a drain).
    func close() {
        try? syncAll()
        writer.withLock { w in
            Files.close(w.fd)
            w.fd = -1
            if w.failure == nil { w.failure = SocketError(call: "journal closed", errno: 9) }
        }
    }

    // MARK: - Reading

    /// What reading a segment found.
    struct Contents {
        var records: [(lsn: UInt64, record: JournalRecord)] = []
        /// Corrupt or torn stretches, for the log: where, how long, why.
        var problems: [String] = []
    }

    /// Reads every intact record of a segment. A record that fails its checksum or
    /// does not frame is skipped: the reader looks for the next record header
    /// whose checksum holds (a torn tail just ends the segment).
    static func read(_ bytes: [UInt8], name: String) -> Contents {
        var out = Contents()
        bytes.withUnsafeBytes { raw in
            var at = 0
            var skippedFrom: Int?
            func note(_ end: Int) {
                if let start = skippedFrom {
                    let tail = end == raw.count
                    out.problems.append(
                        "\(name): \(end - start) bytes at offset \(start) are \(tail ? "a torn tail" : "corrupt"); skipped"
                    )
                    skippedFrom = nil
                }
            }
            while at < raw.count {
                if let (record, lsn, next) = frame(raw, at) {
                    note(at)
                    if let record {
                        out.records.append((lsn, record))
                    } else {
                        out.problems.append(
                            "\(name): the record at offset \(at) (LSN \(lsn)) holds values this build refuses; skipped")
                    }
                    at = next
                } else {
                    if skippedFrom == nil { skippedFrom = at }
                    at += 1
                }
            }
            note(raw.count)
        }
        return out
    }

    /// The record framed at `at`, if its header and checksum hold: the decoded record
    /// (`nil` when the payload does not decode), its LSN and where the next one starts.
    private static func frame(_ raw: UnsafeRawBufferPointer, _ at: Int) -> (JournalRecord?, UInt64, Int)? {
        guard raw.count - at >= headerBytes + 9 else { return nil }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        guard u32(at) == magic else { return nil }
        let length = Int(u32(at + 4))
        guard length >= 9, length <= raw.count - at - headerBytes else { return nil }
        let body = UnsafeRawBufferPointer(rebasing: raw[(at + headerBytes)..<(at + headerBytes + length)])
        guard CRC32C.checksum(body) == u32(at + 8) else { return nil }
        let lsn = UInt64(littleEndian: body.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
        let type = body[8]
        let record = try? JournalRecord.decode(type: type, payload: UnsafeRawBufferPointer(rebasing: body[9...]))
        return (record, lsn, at + headerBytes + length)
    }
}

/// `n` as 16 lowercase hex digits (file names sort by number).
func hex16(_ n: UInt64) -> String {
    let digits = String(n, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
