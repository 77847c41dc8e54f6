import PrepageCore

/// Everything a session is — id, configuration, counters, times and the
/// policy's whole state — as one value: what `GET /sessions/{id}/state`
/// answers and `PUT /sessions/{id}` with `{"state": …}` restores, and what the
/// snapshot files and the journal hold.
public struct SessionImage: Sendable, Hashable {
    var id: String
    var config: SessionConfig
    /// Wall-clock nanoseconds since the epoch.
    var createdAt: Int64
    var lastActivity: Int64
    var stats: SessionStats
    /// The state of `config.prepage.policy`.
    var learned: PrepagerState.Learned

    /// The policy state, with its configuration.
    var prepagerState: PrepagerState { PrepagerState(config: config.prepage, learned: learned) }

    /// The session this image describes.
    /// - Throws: ``StateError`` when the learned state cannot be restored under the configuration.
    func session(incarnation: UInt64) throws(StateError) -> Session {
        Session(image: self, prepager: try Prepager(state: prepagerState), incarnation: incarnation)
    }
}

// MARK: - Binary form

/// The binary forms of the server's values, for the journal and the snapshot
/// files (`docs/server.md`, "Durable sessions"). Built on PrepageCore's
/// ``StateWriter``: varints, zigzag, doubles bit for bit.
extension SessionConfig {
    /// The policy configuration (every field by name), the page size, the labels sorted by key.
    func encode(into w: inout StateWriter) {
        prepage.encode(into: &w)
        w.int(pageSize)
        w.varint(UInt64(labels.count))
        for key in labels.keys.sorted() {
            w.string(key)
            w.string(labels[key]!)
        }
    }

    /// Reads what ``encode(into:)`` wrote and validates it as `PUT` would.
    static func decode(from r: inout StateReader) throws(StateError) -> SessionConfig {
        let prepage = try PrepageConfig.decode(from: &r)
        let pageSize = try r.int()
        let n = try r.count(atLeast: 2)
        guard n <= SessionFields.maxLabels else {
            throw StateError(field: "config.labels", "\(n) labels; at most \(SessionFields.maxLabels)")
        }
        var labels: [String: String] = [:]
        for _ in 0..<n {
            let key = try r.string()
            labels[key] = try r.string()
        }
        let validated: PrepageConfig
        do {
            validated = try prepage.validated()
        } catch {
            throw StateError(field: "config", error.description)
        }
        guard SessionFields.isPageSize(pageSize) else {
            throw StateError(field: "config.page_size", "\(pageSize); accepted: a power of two from 512 to 1073741824")
        }
        return SessionConfig(prepage: validated, pageSize: pageSize, labels: labels)
    }
}

extension SessionStats {
    func encode(into w: inout StateWriter) {
        w.varint(faults)
        w.varint(first)
        w.varint(smaller)
        w.varint(larger)
        w.varint(reverse)
        w.varint(repeats)
        w.varint(pagesAdvised)
        w.int(Int(lastFaultAt))
    }

    static func decode(from r: inout StateReader) throws(StateError) -> SessionStats {
        var s = SessionStats()
        s.faults = try r.varint()
        s.first = try r.varint()
        s.smaller = try r.varint()
        s.larger = try r.varint()
        s.reverse = try r.varint()
        s.repeats = try r.varint()
        s.pagesAdvised = try r.varint()
        s.lastFaultAt = Int64(try r.int())
        return s
    }
}

extension SessionImage {
    /// The version of the image's binary layout: 1.
    static let version = 1

    /// `varint version, string id, config, zz created_at, zz last_activity, stats, learned`.
    func encode(into w: inout StateWriter) {
        w.varint(UInt64(Self.version))
        w.string(id)
        config.encode(into: &w)
        w.int(Int(createdAt))
        w.int(Int(lastActivity))
        stats.encode(into: &w)
        learned.encode(into: &w)
    }

    static func decode(from r: inout StateReader) throws(StateError) -> SessionImage {
        let version = try r.varint()
        guard version == UInt64(Self.version) else {
            throw StateError(
                field: "version", "session image version \(version) is not known here; accepted: \(Self.version)")
        }
        let id = try r.string()
        let config = try SessionConfig.decode(from: &r)
        let createdAt = Int64(try r.int())
        let lastActivity = Int64(try r.int())
        let stats = try SessionStats.decode(from: &r)
        return SessionImage(
            id: id, config: config, createdAt: createdAt, lastActivity: lastActivity, stats: stats,
            learned: try PrepagerState.Learned.decode(from: &r))
    }
}
