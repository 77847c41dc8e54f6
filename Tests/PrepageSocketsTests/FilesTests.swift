import Foundation
import PrepageSockets
import Testing

/// The file calls of durable state, in a temporary directory of each test's own.
@Suite struct FilesTests {
    /// A fresh directory under the system's temporary directory, removed by `body`'s end.
    static func inTemporaryDirectory(_ body: (String) throws -> Void) throws {
        let dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("prepage-sockets-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try body(dir)
    }

    @Test func aFileWrittenSyncedAndRenamedReplacesTheOldOneWhole() throws {
        try Self.inTemporaryDirectory { dir in
            try Files.makeDirectories(dir + "/a/b")
            #expect(Files.isDirectory(dir + "/a/b"))
            let target = dir + "/a/b/state"
            let old = try Files.create(target)
            try Files.writeAll(old, Array("old".utf8))
            Files.close(old)

            // The write-to-temporary, sync, rename, sync-the-directory sequence of a snapshot.
            let fd = try Files.create(target + ".tmp")
            try Files.writeAll(fd, Array("new contents".utf8))
            try Files.syncData(fd)
            try Files.sync(fd)
            Files.close(fd)
            try Files.rename(target + ".tmp", target)
            try Files.syncDirectory(dir + "/a/b")

            #expect(try Files.read(target) == Array("new contents".utf8))
            #expect(try Files.read(target, limit: 3) == Array("new".utf8))
            #expect(Files.size(target) == 12)
            #expect(try Files.list(dir + "/a/b") == ["state"])
            // Created private to the user.
            let mode = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
            #expect(mode == 0o600)
        }
    }

    @Test func appendingAddsAtTheEndAndTruncateCutsBack() throws {
        try Self.inTemporaryDirectory { dir in
            try Files.makeDirectories(dir)
            let path = dir + "/journal"
            let missing = #expect(throws: SocketError.self) { _ = try Files.openAppend(path, create: false) }
            #expect(missing?.errno == ENOENT)
            for chunk in ["one,", "two,"] {
                let fd = try Files.openAppend(path)
                try Array(chunk.utf8).withUnsafeBytes { try Files.writeAll(fd, $0) }
                Files.close(fd)
            }
            #expect(try Files.read(path) == Array("one,two,".utf8))
            try Files.truncate(path, to: 4)
            #expect(try Files.read(path) == Array("one,".utf8))
            try Files.remove(path)
            #expect(Files.size(path) == nil)
            // Removing what is not there is not an error.
            try Files.remove(path)
        }
    }

    @Test func aFailedCallNamesTheCallThePathAndTheReason() throws {
        try Self.inTemporaryDirectory { dir in
            let error = #expect(throws: SocketError.self) { _ = try Files.read(dir + "/nothing") }
            #expect(error == SocketError(call: "open(\(dir)/nothing)", errno: ENOENT))
            #expect(error?.description == "open(\(dir)/nothing) failed: No such file or directory (errno \(ENOENT))")
            #expect(throws: SocketError.self) { _ = try Files.list(dir + "/nothing") }
            // A directory where a file is in the way.
            try Files.makeDirectories(dir)
            let fd = try Files.create(dir + "/file")
            Files.close(fd)
            #expect(throws: SocketError.self) { try Files.makeDirectories(dir + "/file/below") }
        }
    }

    @Test func aLockIsExclusiveUntilItsDescriptorCloses() throws {
        try Self.inTemporaryDirectory { dir in
            try Files.makeDirectories(dir)
            let path = dir + "/lock"
            #expect(!Files.isLocked(path))  // missing: not locked
            let held = try #require(try Files.tryLock(path))
            #expect(Files.isLocked(path))
            // flock locks belong to the open file: a second open, even in this process, is refused.
            #expect(try Files.tryLock(path) == nil)
            Files.close(held)
            #expect(!Files.isLocked(path))
            let again = try #require(try Files.tryLock(path))
            Files.close(again)
        }
    }

    /// A peer taking sessions from a stopped instance's directory holds its lock shared:
    /// the instance cannot start meanwhile, other takers share it, and none of them looks
    /// like the running instance to the others (`isLocked` asks for an exclusive holder).
    @Test func aSharedLockKeepsTheExclusiveHolderOutAndIsNotSeenAsIt() throws {
        try Self.inTemporaryDirectory { dir in
            try Files.makeDirectories(dir)
            let path = dir + "/LOCK"
            let first = try #require(try Files.tryLockShared(path))
            let second = try #require(try Files.tryLockShared(path))
            #expect(!Files.isLocked(path))
            #expect(try Files.tryLock(path) == nil)
            Files.close(first)
            #expect(try Files.tryLock(path) == nil)
            Files.close(second)
            let owner = try #require(try Files.tryLock(path))
            #expect(Files.isLocked(path))
            #expect(try Files.tryLockShared(path) == nil)
            Files.close(owner)
        }
    }
}

/// What the process reads about itself from `/proc/self` and the system.
@Suite struct ProcessTests {
    @Test func processStatsDescribeThisProcess() throws {
        let stats = ProcessStats.current()
        #expect(stats.residentBytes > 0)
        #expect(stats.virtualBytes >= stats.residentBytes)
        // stdin, stdout and stderr at least, and never beyond the limit.
        #expect(stats.openFDs >= 3)
        #expect(stats.openFDs <= stats.maxFDs)
        var limit = rlimit()
        #expect(getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0)
        #expect(stats.maxFDs == Int(clamping: limit.rlim_cur))
        // This test process started within the last day, and not in the future.
        let now = Date().timeIntervalSince1970
        #expect(stats.startTimeSeconds <= now + 1)
        #expect(stats.startTimeSeconds > now - 86_400)
        #expect(stats.cpuSeconds > 0)
    }

    @Test func systemCallsAnswerForThisProcess() throws {
        let exe = try #require(System.executablePath())
        #expect(exe.hasPrefix("/"))
        #expect(FileManager.default.isExecutableFile(atPath: exe))
        #expect(System.currentDirectory() == FileManager.default.currentDirectoryPath)
        #expect(System.environment("PATH") == ProcessInfo.processInfo.environment["PATH"])
        #expect(System.environment("PREPAGE_SOCKETS_TESTS_UNSET") == nil)
        #expect(System.processorCount >= 1)
        let before = System.monotonicNanoseconds()
        #expect(System.monotonicNanoseconds() >= before)
        #expect(System.readFile("/proc/self/stat").map { !$0.isEmpty } == true)
        #expect(System.readFile("/proc/self/nothing-here") == nil)
    }
}
