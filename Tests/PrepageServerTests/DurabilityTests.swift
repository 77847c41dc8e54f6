import Foundation
import PrepageCore
import PrepageSockets
import PrepageTestSupport
import Testing

@testable import PrepageServer

/// `--state-dir`: what a server acknowledged is there after a restart, damaged
/// files are reported and skipped, never a crash and never a wrong session.
/// (The kill -9 of a real process under load is in `CrashTests`.)
@Suite struct DurabilityTests {
    /// A fresh directory for one test.
    static func directory(_ name: String = #function) -> String {
        let path = NSTemporaryDirectory() + "prepage-durable-\(name.filter(\.isLetter))-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.removeItem(atPath: path)
        return path
    }

    /// A copy of `directory` as a crash would leave it: what is on disk now.
    static func crashImage(of directory: String) throws -> String {
        let copy = directory + "-crash-\(UUID().uuidString.prefix(6))"
        try FileManager.default.copyItem(atPath: directory, toPath: copy)
        return copy
    }

    static func files(_ directory: String, suffix: String) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(suffix) }.sorted()
            .map { directory + "/" + $0 }
    }

    static func states(_ c: RawClient, _ ids: [String]) throws -> [String: String] {
        var out: [String: String] = [:]
        for id in ids {
            let r = try c.request("GET", "/sessions/\(id)/state")
            if r.status == 200 { out[id] = r.text }
        }
        return out
    }

    /// Faults a session with `n` pages of a seeded FSD-like load.
    static func fault(_ c: RawClient, _ id: String, _ n: Int, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var page = 0
        for _ in 0..<n {
            page = Int.random(in: 0..<4, using: &rng) == 0 ? Int.random(in: 0..<1 << 30, using: &rng) : page + 1
            let r = try c.request("POST", "/sessions/\(id)/fault", body: "{\"page\":\(page)}")
            try #require(r.status == 200)
        }
    }

    @Test func aRestartRestoresEverySessionAsItWas() throws {
        let dir = Self.directory()
        let ids = (0..<20).map { "vm-\($0)" }
        let before: [String: String]
        do {
            let s = try TestServer(stateDirectory: dir)
            let c = try s.client()
            for (i, id) in ids.enumerated() {
                let config = i % 2 == 0 ? "{}" : #"{"policy":"dp","max_pages":64}"#
                #expect(try c.request("PUT", "/sessions/\(id)", body: config).status == 201)
                try Self.fault(c, id, 50 + i * 5, seed: UInt64(i))
            }
            #expect(try c.request("DELETE", "/sessions/vm-3").status == 200)
            #expect(try c.request("POST", "/sessions/vm-4/reset").status == 200)
            before = try Self.states(c, ids)
            s.stop()  // drains: the last snapshot
        }
        #expect(before.count == 19)
        let s = try TestServer(stateDirectory: dir)
        let after = try Self.states(try s.client(), ids)
        #expect(after == before)
    }

    /// Without any snapshot (a crash right after the answers): the journal alone gives
    /// every acknowledged session, with the state its record gives: fresh, or reset
    /// with its counters, or the imported image.
    @Test func theJournalAloneRestoresEveryAcknowledgedLifecycle() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/a", body: #"{"max_pages":32,"labels":{"k":"v"}}"#).status == 201)
        #expect(try c.request("PUT", "/sessions/b", body: "{}").status == 201)
        #expect(try c.request("PUT", "/sessions/c", body: "{}").status == 201)
        try Self.fault(c, "b", 40, seed: 1)
        try Self.fault(c, "c", 40, seed: 2)
        let learned = try c.request("GET", "/sessions/c/state").text
        #expect(try c.request("POST", "/sessions/b/reset").status == 200)
        #expect(try c.request("DELETE", "/sessions/c").status == 200)
        #expect(try c.request("PUT", "/sessions/d", body: "{\"state\":\(learned)}").status == 201)
        let expected = try Self.states(c, ["a", "b", "d"])
        let crashed = try Self.crashImage(of: dir)
        s.stop()
        let t = try TestServer(stateDirectory: crashed)
        let got = try Self.states(try t.client(), ["a", "b", "c", "d"])
        #expect(got.keys.sorted() == ["a", "b", "d"])
        #expect(got["a"] == expected["a"])
        #expect(got["d"] == expected["d"])
        // b was reset: fresh learning, its counters continued (the journal record carries them).
        let b = try JSONSerialization.jsonObject(with: Data(got["b"]!.utf8)) as! [String: Any]
        #expect((b["stats"] as! [String: Any])["faults"] as? Int == 40)
        #expect(got["b"] == expected["b"])
    }

    /// A journal cut anywhere (a torn last write): every record before the cut is
    /// restored, the torn one is reported, nothing crashes.
    @Test func aTruncatedJournalRestoresEveryWholeRecord() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
        let c = try s.client()
        // Ids of one length: every record has the same size.
        let ids = (0..<12).map { "s\($0 < 10 ? "0" : "")\($0)" }
        for id in ids { #expect(try c.request("PUT", "/sessions/\(id)", body: "{}").status == 201) }
        let crashed = try Self.crashImage(of: dir)
        s.stop()
        let journal = try #require(try Self.files(crashed, suffix: ".log").last)
        let size = try #require(FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int)
        let recordSize = size / 12
        var rng = SplitMix64(seed: 9)
        for _ in 0..<6 {
            let cut = Int.random(in: 1..<size, using: &rng)
            let copy = try Self.crashImage(of: crashed)
            let copyJournal = copy + "/" + (journal as NSString).lastPathComponent
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: copyJournal))
            try handle.truncate(atOffset: UInt64(cut))
            try handle.close()
            let t = try TestServer(stateDirectory: copy)
            let present = try Self.states(try t.client(), ids).count
            // The records are of equal size: the whole ones before the cut survive, no other.
            #expect(present == cut / recordSize, "cut at \(cut) of \(size)")
            t.stop()
        }
    }

    /// A damaged full snapshot is refused whole (checksum) and the previous one, with
    /// the journal after it, restores every session; a damaged delta costs only the
    /// learning it held.
    @Test func aCorruptedSnapshotFallsBackToTheOneBefore() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
        let c = try s.client()
        for i in 0..<5 {
            #expect(try c.request("PUT", "/sessions/s\(i)", body: "{}").status == 201)
            try Self.fault(c, "s\(i)", 30, seed: UInt64(i))
        }
        try s.server.snapshotNow(full: true)
        let early = try Self.states(c, (0..<8).map { "s\($0)" })
        for i in 5..<8 { #expect(try c.request("PUT", "/sessions/s\(i)", body: "{}").status == 201) }
        try Self.fault(c, "s0", 30, seed: 100)
        try s.server.snapshotNow(full: true)
        try Self.fault(c, "s1", 30, seed: 101)
        try s.server.snapshotNow()  // a delta holding s1's newest learning
        let late = try Self.states(c, (0..<8).map { "s\($0)" })
        s.stop()

        let fulls = try Self.files(dir, suffix: ".full")
        try #require(fulls.count == 2)
        // Flip one byte in the middle of the newest full snapshot.
        let broken = try Self.crashImage(of: dir)
        let newest = broken + "/" + (fulls[1] as NSString).lastPathComponent
        var bytes = try Data(contentsOf: URL(fileURLWithPath: newest))
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: URL(fileURLWithPath: newest))
        do {
            let t = try TestServer(stateDirectory: broken)
            let got = try Self.states(try t.client(), (0..<8).map { "s\($0)" })
            // Every session is there: s5…s7 from the journal after the older snapshot.
            #expect(got.keys.sorted() == late.keys.sorted())
            // s0 learned after the older snapshot only in the broken one: it has what the older one saved.
            #expect(got["s0"] == early["s0"])
            // s1's learning after both was in the delta, which the older base still reaches.
            #expect(got["s1"] == late["s1"])
            #expect(got["s2"] == late["s2"])
        }
        // A damaged delta: s1 keeps what the newest full snapshot saved, everything else as it was.
        let broken2 = try Self.crashImage(of: dir)
        let delta = try #require(try Self.files(broken2, suffix: ".delta").last)
        var d = try Data(contentsOf: URL(fileURLWithPath: delta))
        d[d.count - 10] ^= 0x01
        try d.write(to: URL(fileURLWithPath: delta))
        let t = try TestServer(stateDirectory: broken2)
        let got = try Self.states(try t.client(), (0..<8).map { "s\($0)" })
        #expect(got.keys.sorted() == late.keys.sorted())
        #expect(got["s1"] != late["s1"])
        #expect(got["s0"] == late["s0"])
    }

    /// A restored session keeps its learned state in its binary form until used: a
    /// snapshot taken before any use writes it as it was restored, and the next
    /// restart restores the same sessions; the first use then decides from it.
    @Test func aRestoredSessionNotUsedSinceIsSavedAsRestored() throws {
        let dir = Self.directory()
        let ids = (0..<6).map { "u\($0)" }
        let before: [String: String]
        do {
            let s = try TestServer(stateDirectory: dir)
            let c = try s.client()
            for (i, id) in ids.enumerated() {
                #expect(
                    try c.request("PUT", "/sessions/\(id)", body: i % 2 == 0 ? "{}" : #"{"policy":"dp"}"#).status == 201
                )
                try Self.fault(c, id, 60, seed: UInt64(i))
            }
            before = try Self.states(c, ids)
            s.stop()
        }
        do {
            let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
            try s.server.snapshotNow(full: true)  // nothing used: every session as restored
            s.stop()
        }
        let s = try TestServer(stateDirectory: dir)
        let c = try s.client()
        #expect(try Self.states(c, ids) == before)
        let metrics = try c.request("GET", "/metrics").text
        #expect(metrics.contains("prepage_state_problems_total 0"))
    }

    /// A file that is not what its name says, a half-written temporary, garbage:
    /// reported, skipped, the rest restored.
    @Test func garbageInTheDirectoryIsSkipped() throws {
        let dir = Self.directory()
        do {
            let s = try TestServer(stateDirectory: dir)
            #expect(try s.client().request("PUT", "/sessions/kept", body: "{}").status == 201)
            s.stop()
        }
        try Data("not a snapshot".utf8).write(to: URL(fileURLWithPath: dir + "/snapshot-00000000000000ff.full"))
        try Data(repeating: 7, count: 3).write(to: URL(fileURLWithPath: dir + "/snapshot-00000000000000fe.delta"))
        try Data(repeating: 0, count: 100).write(to: URL(fileURLWithPath: dir + "/snapshot-0000000000000100.full.tmp"))
        try Data(repeating: 0x50, count: 64).write(to: URL(fileURLWithPath: dir + "/journal-ffffffffffffff00.log"))
        let s = try TestServer(stateDirectory: dir)
        #expect(try s.client().request("GET", "/sessions/kept").status == 200)
        #expect(!FileManager.default.fileExists(atPath: dir + "/snapshot-0000000000000100.full.tmp"))
        let metrics = try s.client().request("GET", "/metrics").text
        #expect(
            metrics.contains("prepage_state_problems_total 3"),
            "\(metrics.split(separator: "\n").filter { $0.contains("problems") })")
    }

    @Test func twoServersCannotShareAStateDirectory() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir)
        #expect(throws: (any Error).self) { _ = try TestServer(stateDirectory: dir) }
        s.stop()
        _ = try TestServer(stateDirectory: dir)
    }

    /// Snapshots keep the directory bounded: two full snapshots, the deltas after the
    /// older one, the journal segments the older one needs.
    @Test func oldFilesAreRemovedAfterEachFullSnapshot() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
        let c = try s.client()
        for round in 0..<6 {
            #expect(try c.request("PUT", "/sessions/r\(round)", body: "{}").status == 201)
            try Self.fault(c, "r\(round)", 10, seed: UInt64(round))
            try s.server.snapshotNow()
            try s.server.snapshotNow(full: true)
        }
        #expect(try Self.files(dir, suffix: ".full").count == 2)
        #expect(try Self.files(dir, suffix: ".delta").count <= 1)
        #expect(try Self.files(dir, suffix: ".log").count <= 3)
        s.stop()
        let t = try TestServer(stateDirectory: dir)
        #expect(try Self.states(try t.client(), (0..<6).map { "r\($0)" }).count == 6)
    }

    /// The fault path is the same with a state directory: no allocation, no journal.
    @Test func faultsWriteNothingToTheJournal() throws {
        let dir = Self.directory()
        let s = try TestServer(stateDirectory: dir, snapshotInterval: .seconds(3_600))
        let c = try s.client()
        #expect(try c.request("PUT", "/sessions/f", body: "{}").status == 201)
        let journal = try #require(try Self.files(dir, suffix: ".log").last)
        let size = try FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int
        try Self.fault(c, "f", 200, seed: 3)
        #expect(try FileManager.default.attributesOfItem(atPath: journal)[.size] as? Int == size)
    }

    /// What a fault that moves its session relies on to answer before the disk syncs: a
    /// record appended is in memory only; written, it is in its segment (what a crash of
    /// the process leaves) at once; a sync after that keeps it and adds the later ones.
    @Test func aJournalRecordWrittenWithoutASyncIsInItsSegmentAtOnce() throws {
        let dir = Self.directory()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let journal = try Journal(directory: dir, nextLSN: 1)
        defer { journal.close() }
        func onDisk() throws -> [UInt64] {
            let bytes = try Files.read(Journal.segmentPath(dir, 1))
            return Journal.read(bytes, name: "segment").records.map(\.0)
        }
        let first = journal.append(.delete(id: "a"))
        #expect(try onDisk().isEmpty)
        try journal.write(first)
        #expect(try onDisk() == [first])
        let second = journal.append(.delete(id: "b"))
        try journal.write(first)  // covered: writes nothing more
        #expect(try onDisk() == [first])
        try journal.sync(second)
        #expect(try onDisk() == [first, second])
    }
}
