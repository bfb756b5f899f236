#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto

/// Evidence files stored by their SHA-256 in `blobs/sha256/<hex>` inside the ledger directory.
///
/// A blob may arrive before or after the `evidence.attached` that names it; a missing blob is
/// reported, never fatal to the chain. Blobs are written once, atomically, read-only.
public struct BlobStore: Sendable {
    /// The state of one evidence item's blob.
    public enum Status: Sendable, Hashable {
        case present
        case missing
        /// The stored file does not hash to the recorded digest, or has another size.
        case mismatched(actual: Digest, size: UInt64)
        /// Something is stored under the digest's name but cannot be read as a file (a directory,
        /// a link, no permission, a read error): what and why, with the path.
        case unreadable(String)
    }

    public let directory: String

    public init(ledgerDirectory: String) {
        directory = ledgerDirectory + "/blobs/sha256"
    }

    /// The path a blob with `digest` is stored at.
    public func path(for digest: Digest) -> String { directory + "/" + digest.hexString }

    /// The stored blobs that no longer matched their hash, set aside by ``add(file:lockTimeout:)``
    /// when the original was added again: the evidence that they were changed. Their names, sorted.
    public func setAside() -> [String] {
        FileSystem.contents(of: directory).filter { $0.contains(".mismatched-") }.sorted()
    }

    /// How long an add waits for another to finish, in seconds: an add copies a whole file,
    /// perhaps gigabytes of video.
    public static let defaultLockTimeout = 600.0

    /// Copies the file at `source` into the store, hashing it on the way. Adds copy at once, but
    /// decide what is stored one at a time, under `blobs/lock`: two that each found a changed
    /// file under a hash would both set it aside, the second moving the first's good copy over
    /// it, and the evidence of the change would be lost. Each holds a lock on its own copy while
    /// it is made (`.incoming-*`), so that an add removes only the copies of adds that were
    /// killed.
    /// - Returns: its SHA-256, its size, whether an identical blob was already stored, and, if a
    ///   file stored under that hash had been changed (it no longer matches its name), where it was
    ///   kept, with its hash and size: it is evidence of that change, so it is set aside, never
    ///   overwritten.
    public func add(file source: String, lockTimeout: Double = BlobStore.defaultLockTimeout) throws(LedgerError) -> (
        digest: Digest, size: UInt64, existed: Bool, keptAside: (path: String, actual: Digest, size: UInt64)?
    ) {
        // A file name that names nothing is the caller's mistake, as for every other input file.
        guard access(source, F_OK) == 0 || errno != ENOENT else {
            throw LedgerError(.notFound, "There is no file \(source) to store. Check the path of the evidence file.")
        }
        // Without blocking: opening a FIFO for reading would wait for a writer before the check
        // below could refuse it (on a regular file the flag changes nothing).
        let input = try FileDescriptor(path: source, flags: O_RDONLY | O_NONBLOCK, followLinks: true)
        var info = stat()
        guard fstat(input.fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else {
            throw LedgerError(.usage, "\(source) is not a regular file: only a file is stored as evidence. Give the evidence file itself (to store a directory's files, add each).")
        }
        let blobs = String(directory.dropLast("/sha256".count))
        try FileSystem.makeDirectory(blobs)
        try FileSystem.makeDirectory(directory)
        // A name no other add uses, even one with the same process id (in another container
        // sharing the volume), created only if it is new, and locked until the add ends.
        let temporary = directory + "/.incoming-\(getpid())-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
        // Named by the store's directory in messages, not by a temporary file a user never named.
        func named(_ error: LedgerError) -> LedgerError {
            var named = LedgerError(error.code, error.message.replacing(temporary, with: directory + "/.incoming-…") + " Nothing was stored.")
            (named.cause, named.site) = (error.cause, error.site)
            return named
        }
        // Made and locked under blobs/lock, which an add removing copies of killed adds holds
        // too: between making it and locking it, that add would take it for a killed add's.
        let output: FileDescriptor
        do throws(LedgerError) {
            let lock = try WriterLock(path: blobs + "/lock", timeout: lockTimeout)
            output = try FileDescriptor(path: temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: 0o444)
            guard flock(output.fd, LOCK_EX | LOCK_NB) == 0 else {
                FileSystem.remove(temporary)
                throw LedgerError(.io, "The copy \(temporary) could not be locked (\(String(cString: strerror(errno)))); the file system may not support locks. Store blobs on a local disk.")
            }
            withExtendedLifetime(lock) {}
        } catch {
            throw named(error)
        }
        defer { withExtendedLifetime(output) {} }
        var hasher = SHA256.Hasher()
        var size: UInt64 = 0
        do throws(LedgerError) {
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            while true {
                let got = try buffer.withUnsafeMutableBytes { raw in
                    Result { () throws(LedgerError) in try input.read(into: raw, at: size) }
                }.get()
                if got == 0 { break }
                try buffer.withUnsafeBytes { raw in
                    Result { () throws(LedgerError) in
                        try output.write(UnsafeRawBufferPointer(rebasing: raw[..<got]), at: size)
                    }
                }.get()
                buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<got])) }
                size += UInt64(got)
            }
            guard fsync(output.fd) == 0 else { throw ioError("fsync", temporary) }
            // A file written to while it was copied (a download still running, an editor) would
            // be stored as bytes it never held at once: refused, to be added once it is still.
            var after = stat()
            guard fstat(input.fd, &after) == 0, after.st_size == info.st_size, UInt64(after.st_size) == size,
                after.st_mtim.tv_sec == info.st_mtim.tv_sec, after.st_mtim.tv_nsec == info.st_mtim.tv_nsec,
                after.st_ctim.tv_sec == info.st_ctim.tv_sec, after.st_ctim.tv_nsec == info.st_ctim.tv_nsec
            else {
                throw LedgerError(.io, "\(source) changed while it was being stored (its size or modification time is not what it was when the copy began). Add it again once nothing is writing it.")
            }
        } catch {
            FileSystem.remove(temporary)
            throw named(error)
        }
        let digest = hasher.finalize()
        let target = path(for: digest)
        var keptAside: (path: String, actual: Digest, size: UInt64)?
        let lock: WriterLock
        do throws(LedgerError) {
            lock = try WriterLock(path: blobs + "/lock", timeout: lockTimeout)
        } catch {
            FileSystem.remove(temporary)
            throw named(error)
        }
        defer { withExtendedLifetime(lock) {} }
        removeLeftovers()
        do throws(LedgerError) {
            switch status(of: digest, size: size) {
            case .present:
                FileSystem.remove(temporary)
                return (digest, size, true, nil)
            case let .mismatched(actual, actualSize):
                // Named so that ``setAside()`` finds it.
                let aside = target + ".mismatched-" + actual.hexString.prefix(16)
                try FileSystem.rename(target, aside)
                keptAside = (aside, actual, actualSize)
            case .missing:
                break
            case let .unreadable(what):
                throw LedgerError(.io, "The blob cannot be stored: \(what). Move that aside or make it a readable file, then add the evidence again.")
            }
            try FileSystem.rename(temporary, target)
        } catch {
            FileSystem.remove(temporary)
            var failed = named(error)
            if let keptAside {
                failed = LedgerError(failed.code, failed.message + " The file that was stored under that hash, changed since, was kept as \(keptAside.path).")
            }
            throw failed
        }
        try FileSystem.syncDirectory(directory)
        return (digest, size, false, keptAside)
    }

    /// Removes the copies of adds that were killed: those no add holds a lock on.
    private func removeLeftovers() {
        for name in FileSystem.contents(of: directory) where name.hasPrefix(".incoming-") {
            let path = directory + "/" + name
            let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            if flock(fd, LOCK_EX | LOCK_NB) == 0 { FileSystem.remove(path) }
        }
    }

    /// Checks the stored blob for `digest` against the digest and the recorded `size`.
    public func status(of digest: Digest, size: UInt64) -> Status {
        let file = path(for: digest)
        var info = stat()
        guard lstat(file, &info) == 0 else {
            return errno == ENOENT ? .missing : .unreadable("\(file) cannot be examined (\(String(cString: strerror(errno))))")
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            let kind = switch info.st_mode & S_IFMT {
            case S_IFDIR: "a directory"
            case S_IFLNK: "a symbolic link"
            default: "not a regular file"
            }
            return .unreadable("\(file) is \(kind), where only the blob's own file belongs")
        }
        let input: FileDescriptor
        do throws(LedgerError) {
            input = try FileDescriptor(path: file, flags: O_RDONLY)
        } catch {
            return .unreadable(error.message)
        }
        var hasher = SHA256.Hasher()
        var offset: UInt64 = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got: Int
            do throws(LedgerError) {
                got = try buffer.withUnsafeMutableBytes { raw in
                    Result { () throws(LedgerError) in try input.read(into: raw, at: offset) }
                }.get()
            } catch {
                return .unreadable(error.message)
            }
            if got == 0 { break }
            buffer.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<got])) }
            offset += UInt64(got)
        }
        let actual = hasher.finalize()
        return actual == digest && offset == size ? .present : .mismatched(actual: actual, size: offset)
    }
}
