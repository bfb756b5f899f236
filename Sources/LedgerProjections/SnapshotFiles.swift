#if canImport(Glibc)
import Glibc
#endif
import LedgerCore

/// The files of a snapshot directory: named `<projection>-v<version>-<sequence>.json`, the
/// sequence zero-padded to 20 digits so that names sort by position.
struct SnapshotFiles {
    let directory: String

    /// One snapshot file, by what its name says.
    struct File: Hashable {
        var name: String
        var version: Int
        var sequence: UInt64
        var path: String
    }

    static func fileName(projection: String, version: Int, sequence: UInt64) -> String {
        let digits = String(sequence)
        return "\(projection)-v\(version)-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".json"
    }

    /// The snapshot files of `projection` (every version), sorted by version, then sequence.
    func files(of projection: String) -> [File] {
        let prefix = projection + "-v"
        var out: [File] = []
        for entry in Self.contents(of: directory) where entry.hasPrefix(prefix) && entry.hasSuffix(".json") {
            let middle = entry.dropFirst(prefix.count).dropLast(".json".count)
            let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let version = Int(parts[0]), parts[1].count == 20, let sequence = UInt64(parts[1]),
                parts[0].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isASCII)
            else { continue }
            out.append(File(name: entry, version: version, sequence: sequence, path: directory + "/" + entry))
        }
        return out.sorted { ($0.version, $0.sequence) < ($1.version, $1.sequence) }
    }

    /// Reads a whole file; `nil` if it cannot be read or is larger than `limit`.
    func read(_ path: String, limit: Int = 1 << 30) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if n == 0 { return out }
            out += buffer[..<n]
            if out.count > limit { return nil }
        }
    }

    /// Writes `bytes` as `name` atomically: a temporary file in the same directory, fsync,
    /// rename over the target, fsync of the directory. A reader sees the old file or the whole
    /// new one, never a part; a crash leaves at worst a stray temporary file.
    func writeAtomically(_ bytes: [UInt8], as name: String) throws(LedgerError) -> String {
        if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw failure("create directory", directory) }
        // A symbolic link in place of the snapshot directory is refused: nothing is written outside the ledger.
        var info = stat()
        guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else { throw failure("use (not a directory, or a symbolic link)", directory, code: ENOTDIR) }
        let path = directory + "/" + name
        let temporary = directory + "/." + name + ".tmp-\(getpid())"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard fd >= 0 else { throw failure("create", temporary) }
        var ok = true
        var done = 0
        while ok && done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + done }, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { ok = false } else { done += n }
        }
        if ok && fsync(fd) != 0 { ok = false }
        let code = errno
        close(fd)
        guard ok else {
            unlink(temporary)
            throw failure("write", temporary, code: code)
        }
        guard rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw failure("rename to \(path)", temporary, code: code)
        }
        let dir = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dir >= 0 {
            // The rename is durable once the directory is synced; failing that, the snapshot is
            // merely not durable, which a cache may be.
            _ = fsync(dir)
            close(dir)
        }
        return path
    }

    func remove(_ path: String) {
        unlink(path)
    }

    private func failure(_ operation: String, _ path: String, code: Int32 = errno) -> LedgerError {
        LedgerError(.io, "Could not \(operation) \(path): \(String(cString: strerror(code))). Snapshots are only a cache: answers stay correct without them, but check the permissions of \(directory) if you want them.")
    }

    static func contents(of directory: String) -> [String] {
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
