#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerStore

/// The files of a snapshot directory: named `<projection>-v<version>-<sequence>.snapshot`, the
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
        return "\(projection)-v\(version)-" + String(repeating: "0", count: max(0, 20 - digits.count)) + digits + ".snapshot"
    }

    /// The snapshot files of `projection` (every version), sorted by version, then sequence.
    func files(of projection: String) -> [File] {
        let prefix = projection + "-v"
        var out: [File] = []
        for entry in FileSystem.contents(of: directory) where entry.hasPrefix(prefix) && entry.hasSuffix(".snapshot") {
            let middle = entry.dropFirst(prefix.count).dropLast(".snapshot".count)
            let parts = middle.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let version = Int(parts[0]), parts[1].count == 20, let sequence = UInt64(parts[1]),
                parts[0].allSatisfy(\.isASCII), parts[1].allSatisfy(\.isASCII)
            else { continue }
            out.append(File(name: entry, version: version, sequence: sequence, path: directory + "/" + entry))
        }
        return out.sorted { ($0.version, $0.sequence) < ($1.version, $1.sequence) }
    }

    /// Reads a whole file; `nil` if it cannot be read, is empty or is larger than `limit`.
    func read(_ path: String, limit: Int = 1 << 30) -> SnapshotBuffer? {
        SnapshotBuffer(path: path, limit: limit)
    }

    /// Writes what `write` puts in a new file as `name` atomically, through the store's one
    /// mechanism (temporary file, fsync, rename, directory fsync), in a directory that must not
    /// be a symbolic link.
    func writeAtomically(as name: String, _ write: (FileDescriptor) throws(LedgerError) -> Void) throws(LedgerError) -> String {
        let path = directory + "/" + name
        do throws(LedgerError) {
            try FileSystem.makeDirectory(directory)
            try FileSystem.writeAtomically(to: path, directory: directory, write)
        } catch {
            throw LedgerError(.io, "\(error.message) Snapshots are only a cache: answers stay correct without them.")
        }
        return path
    }

    func remove(_ path: String) {
        FileSystem.remove(path)
    }

}

/// A snapshot file's bytes, read into memory of this process's own (not a mapping of the file,
/// which another process could change or cut under it, between the checksum and the decoding).
/// Each blob is given back to the system once decoded and copied, so that a large snapshot is
/// not held whole beside the state it builds; a blob given back reads as zeros, so decoding it
/// again is refused rather than answered from them.
final class SnapshotBuffer {
    let bytes: UnsafeRawBufferPointer
    private var released: [Range<Int>] = []

    /// `nil` if the file cannot be read whole, is empty, or is larger than `limit`.
    init?(path: String, limit: Int) {
        // Populated when mapped: the kernel allocates the pages in one pass instead of one fault
        // each as they are read into (20,000 of them for the 82 MB snapshot of 1M entries).
        guard let file = try? FileDescriptor(path: path, flags: O_RDONLY), let size = try? file.size, size > 0, size <= UInt64(limit),
            let base = mmap(nil, Int(size), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0), base != MAP_FAILED
        else { return nil }
        let buffer = UnsafeMutableRawBufferPointer(start: base, count: Int(size))
        var at = 0
        while at < buffer.count {
            let window = UnsafeMutableRawBufferPointer(rebasing: buffer[at..<min(buffer.count, at + (8 << 20))])
            guard let got = try? file.read(into: window, at: UInt64(at)), got == window.count else {
                munmap(base, buffer.count)
                return nil
            }
            at += got
        }
        bytes = UnsafeRawBufferPointer(buffer)
    }

    deinit { munmap(UnsafeMutableRawPointer(mutating: bytes.baseAddress), bytes.count) }

    /// Gives back the whole pages inside `range`, which must not be read again.
    func release(_ range: Range<Int>) {
        released.append(range)
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = (range.lowerBound + page - 1) / page * page
        let end = min(range.upperBound, bytes.count) / page * page
        guard start < end, let base = bytes.baseAddress else { return }
        madvise(UnsafeMutableRawPointer(mutating: base + start), end - start, MADV_DONTNEED)
    }

    /// Whether any of `range` was given back.
    func wasReleased(_ range: Range<Int>) -> Bool {
        released.contains { $0.overlaps(range) }
    }
}
