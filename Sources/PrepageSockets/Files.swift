import Glibc

/// The file calls durable state needs: open, append, sync, rename, list, lock.
///
/// Errors are ``SocketError`` (the module's one error: the call and its `errno`).
public enum Files {
    /// Opens `path` for appending, creating it (mode 0600) when `create`.
    public static func openAppend(_ path: String, create: Bool = true) throws(SocketError) -> Int32 {
        let flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create ? O_CREAT : 0)
        let fd = retryingEINTR { open(path, flags, 0o600) }
        guard fd >= 0 else { throw .last("open(\(path))") }
        return fd
    }

    /// Creates (or truncates) `path` for writing, mode 0600.
    public static func create(_ path: String) throws(SocketError) -> Int32 {
        let fd = retryingEINTR { open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw .last("open(\(path))") }
        return fd
    }

    /// Writes all of `bytes`.
    public static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, what: String = "write")
        throws(SocketError)
    {
        var offset = 0
        while offset < bytes.count {
            let n = retryingEINTR { Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset) }
            guard n > 0 else { throw n == 0 ? SocketError(call: what, errno: EIO) : .last(what) }
            offset += n
        }
    }

    public static func writeAll(_ fd: Int32, _ bytes: [UInt8], what: String = "write") throws(SocketError) {
        let result: Result<Void, SocketError> = bytes.withUnsafeBytes { raw in
            do throws(SocketError) {
                try writeAll(fd, raw, what: what)
                return .success(())
            } catch {
                return .failure(error)
            }
        }
        try result.get()
    }

    /// `fdatasync`: the data and what is needed to read it back are on disk.
    public static func syncData(_ fd: Int32) throws(SocketError) {
        guard retryingEINTR({ fdatasync(fd) }) == 0 else { throw .last("fdatasync") }
    }

    /// `fsync` of a file or a directory.
    public static func sync(_ fd: Int32) throws(SocketError) {
        guard retryingEINTR({ fsync(fd) }) == 0 else { throw .last("fsync") }
    }

    /// `fsync` of a directory: its entries (a rename, a new file) are on disk.
    public static func syncDirectory(_ path: String) throws(SocketError) {
        let fd = retryingEINTR { open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC) }
        guard fd >= 0 else { throw .last("open(\(path))") }
        defer { Glibc.close(fd) }
        try sync(fd)
    }

    public static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    /// Atomically replaces `to` by `from`.
    public static func rename(_ from: String, _ to: String) throws(SocketError) {
        guard Glibc.rename(from, to) == 0 else { throw .last("rename(\(from), \(to))") }
    }

    /// Removes a file; a missing file is not an error.
    public static func remove(_ path: String) throws(SocketError) {
        guard unlink(path) == 0 || Glibc.errno == ENOENT else { throw .last("unlink(\(path))") }
    }

    /// Creates a directory (mode 0700) and its missing parents.
    public static func makeDirectories(_ path: String) throws(SocketError) {
        var prefix = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            prefix += "/" + part
            if mkdir(prefix, 0o700) != 0 && Glibc.errno != EEXIST { throw .last("mkdir(\(prefix))") }
        }
        guard isDirectory(path) else { throw SocketError(call: "mkdir(\(path))", errno: ENOTDIR) }
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// The names in a directory (not `.` or `..`).
    public static func list(_ path: String) throws(SocketError) -> [String] {
        guard let dir = opendir(path) else { throw .last("opendir(\(path))") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// The size of a file, or `nil` when it cannot be read.
    public static func size(_ path: String) -> Int? {
        var st = stat()
        return stat(path, &st) == 0 ? Int(st.st_size) : nil
    }

    /// Reads a whole file, or its first `limit` bytes.
    public static func read(_ path: String, limit: Int = Int.max) throws(SocketError) -> [UInt8] {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { throw .last("open(\(path))") }
        defer { Glibc.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .last("fstat(\(path))") }
        let expected = min(limit, Int(st.st_size))
        var bytes = [UInt8](repeating: 0, count: expected)
        var offset = 0
        let failed: Int32 = bytes.withUnsafeMutableBytes { raw in
            while offset < raw.count {
                let n = retryingEINTR { Glibc.read(fd, raw.baseAddress! + offset, raw.count - offset) }
                if n < 0 { return Glibc.errno }
                if n == 0 { break }
                offset += n
            }
            return 0
        }
        guard failed == 0 else { throw SocketError(call: "read(\(path))", errno: failed) }
        if offset < expected { bytes.removeLast(expected - offset) }
        return bytes
    }

    /// Takes an exclusive `flock` on `path` (created if missing) without waiting.
    /// - Returns: the descriptor holding the lock (keep it open), or `nil` when
    ///   another process holds it.
    public static func tryLock(_ path: String) throws(SocketError) -> Int32? {
        try tryFlock(path, LOCK_EX)
    }

    /// Takes a shared `flock` on `path` (created if missing) without waiting: it keeps
    /// out an exclusive holder (and is kept out by one), not other shared holders.
    /// - Returns: the descriptor holding the lock (keep it open), or `nil` when
    ///   another process holds it exclusively.
    public static func tryLockShared(_ path: String) throws(SocketError) -> Int32? {
        try tryFlock(path, LOCK_SH)
    }

    /// Opens `path` (created if missing) and takes `flock(operation | LOCK_NB)` on it:
    /// the descriptor, or `nil` when another process's lock is in the way.
    private static func tryFlock(_ path: String, _ operation: Int32) throws(SocketError) -> Int32? {
        let fd = retryingEINTR { open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600) }
        guard fd >= 0 else { throw .last("open(\(path))") }
        if retryingEINTR({ flock(fd, operation | LOCK_NB) }) == 0 { return fd }
        let e = Glibc.errno
        Glibc.close(fd)
        if e == EWOULDBLOCK { return nil }
        throw SocketError(call: "flock(\(path))", errno: e)
    }

    /// Whether another process holds an exclusive `flock` on `path` (probed with a
    /// shared lock, taken and dropped at once; a missing file is not locked).
    public static func isLocked(_ path: String) -> Bool {
        let fd = retryingEINTR { open(path, O_RDONLY | O_CLOEXEC) }
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        if retryingEINTR({ flock(fd, LOCK_SH | LOCK_NB) }) == 0 {
            _ = flock(fd, LOCK_UN)
            return false
        }
        return Glibc.errno == EWOULDBLOCK
    }

    /// Truncates a file to `length` bytes.
    public static func truncate(_ path: String, to length: Int) throws(SocketError) {
        guard Glibc.truncate(path, off_t(length)) == 0 else { throw .last("truncate(\(path))") }
    }
}
