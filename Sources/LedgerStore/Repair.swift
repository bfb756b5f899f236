#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
import LedgerMerkle

/// Rebuilds a ledger's derived files (index, Merkle tree files, projection snapshots, the
/// writer's kept rule state) from its log. The log itself is never touched: damage to it is
/// reported, never repaired automatically.
public enum Repair {
    /// What a rebuild did.
    public struct Report: Sendable {
        /// Records indexed.
        public var records: UInt64
        /// Whether the rebuilt index differs from the one it replaced.
        public var indexChanged: Bool
        /// What opening the log found (for example a torn tail, which the next write cuts).
        public var messages: [String]
    }

    /// Rewrites the index and the Merkle tree files from the log and removes projection snapshots
    /// and the writer's kept rule state, under the writer lock.
    /// - Throws: ``LedgerError/Code/damagedLog`` if the log is damaged before its tail (the
    ///   index cannot be rebuilt past damage; restore the log first).
    public static func rebuildDerived(directory: String, lockTimeout: Double = LedgerWriter.defaultLockTimeout) throws(LedgerError) -> Report {
        let layout = Ledger.Layout(directory: directory)
        try Ledger.checkFormat(layout)
        let lock = try WriterLock(path: layout.lock, timeout: lockTimeout)
        defer { withExtendedLifetime(lock) {} }
        let ledger = try Ledger(directory: directory, writable: false, ignoringIndex: true, holdingLock: true)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ledger.pending.count * Ledger.IndexEntry.size)
        for entry in ledger.pending { bytes += entry.bytes }
        let old = (try? FileDescriptor(path: layout.index, flags: O_RDONLY)).flatMap { file in
            (try? file.size).flatMap { try? file.read(at: 0, count: Int($0)) }
        }
        try FileSystem.writeAtomically(bytes, to: layout.index, directory: directory)
        try rebuildTree(ledger)
        // Projection snapshots are caches too, whatever their format: every file goes, and the
        // next replay writes them again.
        for name in FileSystem.contents(of: directory + "/snapshots") {
            FileSystem.remove(directory + "/snapshots/" + name)
        }
        // So is the writer's kept rule state: the next write replays the log and keeps it again.
        FileSystem.remove(layout.rulesState)
        // The report already says that the next write cuts a torn tail; repair leaves it.
        let messages = ledger.report.messages.filter { !$0.contains("index") }
        return Report(records: ledger.count, indexChanged: old != bytes, messages: messages)
    }

    private static func rebuildTree(_ ledger: Ledger) throws(LedgerError) {
        let directory = ledger.treeDirectory
        let tree: MerkleTreeFiles
        do throws(MerkleTreeError) {
            try MerkleTreeFiles.removeLevelFiles(in: directory)
            tree = try MerkleTreeFiles(directory: directory)
        } catch {
            throw LedgerError(error, in: ledger.directory)
        }
        var failure: MerkleTreeError?
        try ledger.forEachRecord { (stored) throws(LedgerError) -> Bool in
            do throws(MerkleTreeError) {
                try tree.append(leafHash: stored.entryID)
            } catch {
                failure = error
            }
            return failure == nil
        }
        do throws(MerkleTreeError) {
            if let failure { throw failure }
            try tree.sync()
        } catch {
            throw LedgerError(error, in: ledger.directory)
        }
    }
}
