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

    /// The snapshot files of `projection` (every version), sorted by version, then sequence; none
    /// in a directory that is a symbolic link, where nothing is read (or, so, removed): it could
    /// lead anywhere outside the ledger.
    func files(of projection: String) -> [File] {
        guard !FileSystem.isSymbolicLink(directory) else { return [] }
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
