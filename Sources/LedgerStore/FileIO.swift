#if canImport(Glibc)
package import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
package import LedgerCore

/// One open file descriptor, closed on release. Every failure becomes a ``LedgerError`` with
/// code ``LedgerError/Code/io`` naming the file and the system's reason.
package final class FileDescriptor {
    package let fd: Int32
    package let path: String

    /// Opens `path` with `flags`. `O_NOFOLLOW` is added unless `followLinks` is set: nothing
    /// inside a ledger directory is read or written through a symbolic link, while the user's own
    /// input files may be links.
    package init(path: String, flags: Int32, mode: mode_t = 0o644, followLinks: Bool = false) throws(LedgerError) {
        let fd = open(path, flags | O_CLOEXEC | (followLinks ? 0 : O_NOFOLLOW), mode)
        guard fd >= 0 else { throw ioError("open", path) }
        self.fd = fd
        self.path = path
    }

    /// Opens `path` for reading if a regular file is there: `nil` if none is (nothing, or a
    /// directory, link or FIFO, which records nothing and is never waited on). A failure to open
    /// one that is there, one that may pass (EIO, EMFILE) included, is an error, never taken for
    /// absence, since what the file shows could then be overwritten.
    package static func openIfPresent(_ path: String) throws(LedgerError) -> FileDescriptor? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return nil }
            throw ioError("look at", path)
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else { return nil }
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard fd >= 0 else { throw ioError("open", path) }
        return FileDescriptor(adopting: fd, path: path)
    }

    /// Takes over an open descriptor.
    private init(adopting fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// A new, empty file in `directory` with no name: created and unlinked at once, so that
    /// nothing is left behind however the process ends. `path` keeps the name it had, for
    /// messages.
    package static func anonymous(in directory: String, prefix: String) throws(LedgerError) -> FileDescriptor {
        var template = Array((directory + "/" + prefix + "-XXXXXX").utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw ioError("create a temporary file in", directory) }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        unlink(path)
        return FileDescriptor(adopting: fd, path: path)
    }

    deinit { close(fd) }

    package var size: UInt64 {
        get throws(LedgerError) {
            var info = stat()
            guard fstat(fd, &info) == 0 else { throw ioError("stat", path) }
            return UInt64(info.st_size)
        }
    }

    /// Reads exactly `count` bytes at `offset`, or fewer only at the end of the file.
    package func read(at offset: UInt64, count: Int) throws(LedgerError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let got = try out.withUnsafeMutableBytes { buffer in
            Result { () throws(LedgerError) in try read(into: buffer, at: offset) }
        }.get()
        if got < count { out.removeLast(count - got) }
        return out
    }

    /// Reads `count` bytes from `offset` in order, handing them to `body` a chunk at a time (at
    /// most `chunk` bytes, through one buffer): one pass over part of a file without holding it.
    /// - Throws: ``LedgerError/Code/io`` naming the file if it cannot be read or ends before
    ///   `offset + count` (something cut or changed it while in use), and what `body` throws.
    package func forEachChunk(
        from offset: Int, count: Int, chunk: Int = 1 << 20, _ body: (UnsafeRawBufferPointer) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        var buffer = [UInt8](repeating: 0, count: max(0, min(chunk, count)))
        var at = 0
        while at < count {
            let want = min(chunk, count - at)
            try buffer.withUnsafeMutableBytes { raw in
                Result { () throws(LedgerError) in
                    let window = UnsafeMutableRawBufferPointer(rebasing: raw[..<want])
                    let got = try read(into: window, at: UInt64(offset + at))
                    guard got == want else {
                        throw LedgerError(.io, "\(path) ends at byte \(offset + at + got), before byte \(offset + count) that was to be read: something cut or changed it while it was in use. Run the command again, with nothing else writing the file.")
                    }
                    try body(UnsafeRawBufferPointer(window))
                }
            }.get()
            at += want
        }
    }

    /// Fills `buffer` from `offset`; returns the bytes read (short only at the end of the file).
    package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws(LedgerError) -> Int {
        guard let done = Self.read(fd, into: buffer, at: offset) else { throw ioError("read", path) }
        return done
    }

    /// Fills `buffer` from `offset` of the open file `fd`, reading again after an interrupted or
    /// short read; the bytes read (short only at the end of the file), or `nil` with `errno` set.
    package static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> Int? {
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress.map { $0 + done }, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { break }
            done += n
        }
        return done
    }

    /// Writes all of `bytes` at `offset`.
    package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws(LedgerError) {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress.map { $0 + done }, bytes.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw ioError("write", path)
            }
            done += n
        }
    }

    package func write(_ bytes: [UInt8], at offset: UInt64) throws(LedgerError) {
        try bytes.withUnsafeBytes { raw in Result { () throws(LedgerError) in try write(raw, at: offset) } }.get()
    }

    /// Flushes the file's data to stable storage.
    func sync() throws(LedgerError) {
        guard fdatasync(fd) == 0 else { throw ioError("fdatasync", path) }
    }

    func truncate(to size: UInt64) throws(LedgerError) {
        guard ftruncate(fd, off_t(size)) == 0 else { throw ioError("truncate", path) }
    }
}

/// Fixed-size items of a file read in order, a window of many at a time: one read per window,
/// not one per item, and never the whole file in memory.
struct ReadAhead {
    let itemSize: Int
    let window: UInt64
    private var first: UInt64 = 0
    private var bytes: [UInt8] = []

    init(itemSize: Int, window: UInt64 = 4096) {
        self.itemSize = itemSize
        self.window = window
    }

    /// Item `index` of the `count` the file holds, handed to `body` as its bytes. A window that
    /// does not hold it is read with `read(first, n)`, the bytes of `n` items from item `first`.
    /// `nil` past `count`, or when that read fails or comes up short.
    mutating func item<T>(_ index: UInt64, of count: UInt64, read: (UInt64, Int) -> [UInt8]?, _ body: (UnsafeRawBufferPointer) -> T) -> T? {
        guard index < count else { return nil }
        if index < first || index >= first + UInt64(bytes.count / itemSize) {
            let n = Int(min(window, count - index))
            guard let fresh = read(index, n), fresh.count == n * itemSize else {
                bytes = []
                return nil
            }
            bytes = fresh
            first = index
        }
        let at = Int(index - first) * itemSize
        return bytes.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[at..<(at + itemSize)])) }
    }
}

/// An I/O error naming the operation, the path and `errno`'s meaning.
func ioError(_ operation: String, _ path: String, code: Int32 = errno) -> LedgerError {
    let reason = String(cString: strerror(code))
    let directory = FileSystem.parent(of: path)
    var advice = "Check that \(directory) exists and that you may read and write there."
    if code == ENOSPC || code == EDQUOT || code == EFBIG {
        advice = "The disk is full or a file-size limit was reached: free space and retry; what was there was left as it was."
    }
    if code == ELOOP { advice = "It is a symbolic link; the ledger never follows links inside its directory." }
    if code == EACCES || code == EPERM { advice = "Check the ownership and mode of \(path) and of \(directory)." }
    return LedgerError(.io, "Could not \(operation) \(path): \(reason). \(advice)")
}

/// File system helpers used by the store.
package enum FileSystem {
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    static func isRegularFile(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG
    }

    /// Creates a directory inside a ledger, or accepts an existing one; a symbolic link in its
    /// place is refused, so nothing is ever written outside the ledger directory. A new directory
    /// is made durable in its parent, as a new file is: the files synced into it would otherwise
    /// go with it after a power loss.
    package static func makeDirectory(_ path: String) throws(LedgerError) {
        let made = mkdir(path, 0o755) == 0
        guard made || errno == EEXIST else { throw ioError("create directory", path) }
        try requireDirectory(path)
        if made { try syncDirectory(parent(of: path)) }
    }

    /// Refuses a symbolic link or a file where a ledger keeps a directory, before anything is
    /// written or removed there; nothing there (or nothing at all) passes.
    package static func requireDirectory(_ path: String) throws(LedgerError) {
        var info = stat()
        guard lstat(path, &info) != 0 || (info.st_mode & S_IFMT) == S_IFDIR else {
            throw LedgerError(.io, "\(path) exists and is not a directory (a symbolic link or a file). The ledger never writes or removes anything through links; move it away.")
        }
    }

    /// The absolute path of `path` with every link resolved, if it exists.
    static func resolved(_ path: String) -> String? {
        guard let real = realpath(path, nil) else { return nil }
        defer { free(real) }
        return String(cString: real)
    }

    /// Makes a rename or file creation in `directory` durable.
    package static func syncDirectory(_ directory: String) throws(LedgerError) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ioError("open directory", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ioError("fsync directory", directory) }
    }

    static func rename(_ from: String, _ to: String) throws(LedgerError) {
        guard Glibc.rename(from, to) == 0 else { throw ioError("move a new file into place at", to) }
    }

    package static func remove(_ path: String) {
        unlink(path)
    }

    static func removeEmptyDirectory(_ path: String) {
        rmdir(path)
    }

    /// Removes a directory this process built, and everything in it (never following links).
    static func removeTree(_ path: String) {
        guard isDirectory(path), !isSymbolicLink(path) else { return }
        for name in contents(of: path) {
            let child = path + "/" + name
            if isDirectory(child) && !isSymbolicLink(child) { removeTree(child) } else { unlink(child) }
        }
        rmdir(path)
    }

    package static func isSymbolicLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
    }

    /// The directory holding `path` ("." for a bare name).
    package static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Writes `bytes` to `path` atomically: a temporary file, fsync, rename, directory fsync.
    package static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644, directory: String) throws(LedgerError) {
        try writeAtomically(to: path, mode: mode, directory: directory) { (file) throws(LedgerError) in try file.write(bytes, at: 0) }
    }

    /// Writes what `write` puts in a new file to `path` atomically: a temporary file, fsync,
    /// rename, directory fsync.
    package static func writeAtomically(
        to path: String, mode: mode_t = 0o644, directory: String, _ write: (FileDescriptor) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        let temporary = path + ".tmp-\(getpid())"
        do throws(LedgerError) {
            // Readable too, so that `write` may read back what it wrote (to hash it, say).
            let file = try FileDescriptor(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC, mode: mode)
            try write(file)
            guard fsync(file.fd) == 0 else { throw ioError("fsync", temporary) }
            try rename(temporary, path)
        } catch {
            remove(temporary)
            // Named by the file asked for, not by the temporary one a user never named.
            var named = LedgerError(error.code, error.message.replacing(temporary, with: path))
            (named.cause, named.site) = (error.cause, error.site)
            throw named
        }
        // In place from here on: a failure now must not say that nothing was written.
        do throws(LedgerError) {
            try syncDirectory(directory)
        } catch {
            throw LedgerError(error.code, "\(error.message) \(path) was written, but may not survive a power loss: run `sync` (it flushes every file system) before relying on it.")
        }
    }

    package static func contents(of directory: String) -> [String] {
        guard let dir = opendir(directory) else { return [] }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// An exclusive advisory lock on a file, held until released: one writer at a time across
/// processes. `flock` locks are released by the kernel when the process dies, so a crashed
/// writer never leaves a stale lock behind.
package final class WriterLock {
    private let file: FileDescriptor
    private let path: String

    /// Takes the lock, waiting up to `timeout` seconds for another writer to finish.
    /// - Throws: ``LedgerError/Code/lockTimeout`` when the wait runs out.
    package init(path: String, timeout: Double) throws(LedgerError) {
        try Self.check(timeout: timeout)
        self.path = path
        var waited = 0.0
        var replaced = false
        while true {
            let file = try FileDescriptor(path: path, flags: O_RDWR | O_CREAT, mode: 0o644)
            if flock(file.fd, LOCK_EX | LOCK_NB) == 0 {
                // The lock is on the file, not on its name: one deleted or replaced while another
                // writer held it would let two writers in. Locked, it must still be the file the
                // name leads to; if not, the one that is is locked next.
                if Self.isSameFile(file.fd, path) {
                    self.file = file
                    return
                }
                replaced = true
            } else {
                guard errno == EWOULDBLOCK || errno == EINTR else { throw ioError("lock", path) }
            }
            guard waited < timeout else {
                throw LedgerError(
                    .lockTimeout,
                    replaced
                        ? "The lock file \(path) was replaced each time it was locked, for \(timeout.formatted) s: something keeps deleting or replacing it. Stop it, then retry."
                        : "Another process has held the lock \(path) for \(timeout.formatted) s: it is writing there. Wait for it to finish and retry; if no ledger command is running, check for a hung process with `fuser \(path)`. Do not delete the lock file: a process holding it keeps writing.")
            }
            usleep(10_000)
            waited += 0.01
        }
    }

    /// Whether the lock file is still the one locked: one deleted or replaced since lets another
    /// writer take a lock of its own, so a writer checks before each write.
    var isHeld: Bool { Self.isSameFile(file.fd, path) }

    private static func isSameFile(_ fd: Int32, _ path: String) -> Bool {
        var held = stat()
        var named = stat()
        return fstat(fd, &held) == 0 && lstat(path, &named) == 0 && held.st_dev == named.st_dev && held.st_ino == named.st_ino
    }

    deinit { flock(file.fd, LOCK_UN) }

    /// Refuses a timeout that cannot be waited for (not a number, or negative): a usage mistake.
    static func check(timeout: Double) throws(LedgerError) {
        guard timeout.isFinite, timeout >= 0 else {
            throw LedgerError(.usage, "A lock timeout of \(timeout) s cannot be waited for: give a number of seconds, 0 or more.")
        }
    }
}

extension Double {
    /// Seconds as a person would write them: `10`, `0.3`.
    fileprivate var formatted: String { self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self) }
}

/// The current time from the system clock.
package func currentTime() -> Timestamp {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    // Microseconds are enough and keep acceptance times short.
    return Timestamp(seconds: Int64(now.tv_sec), nanoseconds: Int32(now.tv_nsec / 1000 * 1000))
}
