#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto
import LedgerStore

/// The key under which this user's snapshots are authenticated: 32 random bytes in a file of
/// the user's own, outside every ledger directory (`$XDG_STATE_HOME/evidence-ledger/snapshot-key`,
/// or `~/.local/state/evidence-ledger/snapshot-key`), made at first use.
///
/// A snapshot's tree, which holds the hashes of its columns' blocks, ends with its HMAC under
/// this key (``SnapshotBinary``). Snapshots lie in the ledger directory, which others may write:
/// one replaced there, its checksums remade, would change the answers resumed from it, and
/// `ledger verify` does not read snapshots. Under a key only its user holds, such a snapshot is
/// not used. Nor is one another user wrote under their own key: each user's commands rebuild
/// their own.
enum SnapshotKey {
    /// The key, or why there is none; without one no snapshot is read or written.
    static let current: Result<[UInt8], LedgerError> = Result { () throws(LedgerError) in try load() }

    /// Where the key is kept.
    static var path: String? {
        func variable(_ name: String) -> String? {
            guard let value = getenv(name) else { return nil }
            let text = String(cString: value)
            return text.hasPrefix("/") ? text : nil
        }
        if let state = variable("XDG_STATE_HOME") { return state + "/evidence-ledger/snapshot-key" }
        // The account's home directory where HOME is not set (a service, say).
        let home = variable("HOME") ?? getpwuid(getuid()).flatMap { $0.pointee.pw_dir }.map { String(cString: $0) }.flatMap { $0.hasPrefix("/") ? $0 : nil }
        return home.map { $0 + "/.local/state/evidence-ledger/snapshot-key" }
    }

    private static func load() throws(LedgerError) -> [UInt8] {
        guard let path else {
            throw LedgerError(.io, "No snapshot is read or written: there is no home directory (HOME, or XDG_STATE_HOME) to keep the key that authenticates your snapshots in.")
        }
        let directory = FileSystem.parent(of: path)
        var made = ""
        for part in directory.split(separator: "/") {
            made += "/" + part
            guard mkdir(made, 0o700) == 0 || errno == EEXIST else {
                throw LedgerError(.io, "No snapshot is read or written: the directory \(made) for the key that authenticates your snapshots cannot be made (\(String(cString: strerror(errno)))).")
            }
        }
        // Whoever could replace the key, or read it, could forge snapshots its user resumes from.
        var info = stat()
        guard stat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR, info.st_uid == geteuid(), info.st_mode & 0o022 == 0 else {
            let owner = info.st_uid == geteuid() ? "" : " It belongs to user id \(info.st_uid), not to you (\(geteuid())): have it removed, or set XDG_STATE_HOME to a directory of your own."
            throw LedgerError(.io, "No snapshot is read or written: \(directory), which keeps the key that authenticates your snapshots, must be a directory of your own that no one else may write (chmod 700 \(directory)).\(owner)")
        }
        if let key = try read(path) { return key }
        // Made at first use, never over another: commands that start at once all take the key
        // the first of them linked into place.
        let key: [UInt8]
        do throws(CryptoError) {
            key = try SecureRandom.bytes(32)
        } catch {
            throw LedgerError(.crypto, "No snapshot is read or written: no random key could be made for them (\(error)).")
        }
        // A name no other process uses, even one with the same process id in another container.
        let temporary = path + ".tmp-\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        let file = try FileDescriptor(path: temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o600)
        defer { unlink(temporary) }
        try file.write(key, at: 0)
        guard fsync(file.fd) == 0, link(temporary, path) == 0 || errno == EEXIST else {
            throw LedgerError(.io, "No snapshot is read or written: the key that authenticates them cannot be written to \(path) (\(String(cString: strerror(errno)))).")
        }
        guard let kept = try read(path) else { throw LedgerError(.io, "The snapshot key \(path) was written but cannot be found.") }
        return kept
    }

    /// The key at `path`, `nil` if there is no file there.
    private static func read(_ path: String) throws(LedgerError) -> [UInt8]? {
        var info = stat()
        guard lstat(path, &info) == 0 || errno != ENOENT else { return nil }
        let unusable = LedgerError(.io, "\(path) is not a snapshot key: one is a regular file of 32 bytes, yours, that no one else may read or write. Remove it: the next command makes a new key, and your snapshots are rebuilt under it.")
        // Without blocking: a FIFO there would wait for a writer. A link is followed (the
        // user's own state directory), and what it leads to is checked as the key itself.
        guard let file = try? FileDescriptor(path: path, flags: O_RDONLY | O_NONBLOCK, followLinks: true) else { throw unusable }
        guard fstat(file.fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(), info.st_mode & 0o077 == 0,
            info.st_size == 32, case let key = try file.read(at: 0, count: 32), key.count == 32
        else { throw unusable }
        return key
    }
}
