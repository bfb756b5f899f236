#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
import LedgerCrypto
import LedgerMerkle

/// Rebuilds a ledger's derived files (index, Merkle tree files, projection snapshots, the
/// writer's kept rule state) from its log. The log itself is never touched: damage to it is
/// reported, never repaired automatically.
public enum Repair {
    /// What a rebuild did.
    public struct Report: Sendable {
        /// Records indexed: the log's, up to those the old index or tree files recorded
        /// (``unrecorded`` are left to the next writer, which checks them).
        public var records: UInt64
        /// The log's entries that neither recorded, left out of the rebuilt files: the next
        /// writer checks them as an append does before taking them.
        public var unrecorded: Range<UInt64>
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
        layout.removeWriterLeftovers()
        let ledger = try Ledger(directory: directory, writable: false, ignoringIndex: true, holdingLock: true)
        // Their files are removed below: a link in place of either would empty another directory.
        for derived in [ledger.treeDirectory, directory + "/snapshots"] { try FileSystem.requireDirectory(derived) }
        // The new tree is built beside the old one, in the pass over the log that compares the old
        // files with it, and takes its place only if they hold no evidence.
        let building = ledger.treeDirectory + ".rebuilding-\(getpid())"
        FileSystem.removeTree(building)
        defer { FileSystem.removeTree(building) }
        // Only what the old index or tree recorded is indexed: a record past them may have been
        // added by other means, and indexed here the next writer would take it unchecked.
        let indexed = ledger.recordedCount(indexed: try ledger.recordedIndexEntries())
        let indexChanged = try compareAndBuildTree(ledger, upTo: indexed, in: building)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(Int(indexed) * Ledger.IndexEntry.size)
        for entry in ledger.pending.prefix(Int(indexed)) { bytes += entry.bytes }
        try FileSystem.writeAtomically(bytes, to: layout.index, directory: directory)
        do throws(MerkleTreeError) {
            try MerkleTreeFiles.removeLevelFiles(in: ledger.treeDirectory)
        } catch {
            throw LedgerError(error, in: directory)
        }
        try FileSystem.makeDirectory(ledger.treeDirectory)
        for name in FileSystem.contents(of: building) {
            try FileSystem.rename(building + "/" + name, ledger.treeDirectory + "/" + name)
        }
        try FileSystem.syncDirectory(ledger.treeDirectory)
        // Projection snapshots are caches too, whatever their format: every file goes, and the
        // next replay writes them again.
        for name in FileSystem.contents(of: directory + "/snapshots") {
            FileSystem.remove(directory + "/snapshots/" + name)
        }
        // So is the writer's kept rule state: the next write replays the log and keeps it again.
        FileSystem.remove(layout.rulesState)
        // The report already says that the next write cuts a torn tail; repair leaves it.
        let messages = ledger.report.messages.filter { !$0.contains("index") }
        return Report(records: indexed, unrecorded: indexed..<ledger.count, indexChanged: indexChanged, messages: messages)
    }

    /// What to do about a derived file that records entries the log no longer holds as they were.
    /// - Parameter file: `index` or `tree`, in the ledger `directory`.
    static func evidenceRemedy(_ directory: String, _ file: String) -> String {
        "If the log is wrong, restore it from a trusted copy. If you have established that the log is right and \(file == "index" ? "the index is" : "the tree files are") what is damaged, move \(directory)/\(file) out of the ledger directory (keep it: it records what was acknowledged) and run `ledger repair \(directory) --rebuild-derived`."
    }

    /// Builds the log's Merkle tree in `building` and compares the old index and tree files with
    /// the log, in one pass over it; returns whether the index differs from the one the log gives.
    ///
    /// Throws if the index or the tree files record entries the log does not hold: more of them
    /// (as ``Ledger/Acknowledged/beyond(_:committedEnd:)`` counts them), or another record (the
    /// index: another length or entry id for one found where it was written; the tree: another
    /// entry id in a leaf that is not an unwritten, zero block) that no checkpoint signed by the log key proves. They are written
    /// only after the log is synced, so what they record was acknowledged; only an operator can
    /// tell whether the log or they are wrong, and rebuilding them from the log would destroy the
    /// evidence. Signed checkpoints are never rewritten, so they need no check here.
    private static func compareAndBuildTree(_ ledger: Ledger, upTo indexed: UInt64, in building: String) throws(LedgerError) -> Bool {
        let directory = ledger.directory
        func refuse(_ what: String, _ file: String) -> LedgerError {
            LedgerError(.damagedLog, "\(what) Nothing was changed: rebuilding \(file == "index" ? "the index" : "the tree files") from the log would destroy this record of what was acknowledged. Run `ledger verify \(directory)`. \(evidenceRemedy(directory, file))")
        }
        let acknowledged = try Ledger.acknowledged(Ledger.Layout(directory: directory))
        // (Signed checkpoints past the log stopped the open already.)
        if let lost = try acknowledged.beyond(ledger.count, committedEnd: ledger.committedEnd) {
            throw refuse(lost.message(ledger.count), lost.source.file)
        }
        // The checkpoints the log key signed, to tell which evidence the log's own roots answer.
        let roots = try CheckpointStore(ledgerDirectory: directory).signedRoots()
        // Index entries that find their record where it was written, with another id.
        var indexEvidence = Ledger.CacheEvidence(from: .index, checkpointSizes: Array(roots.keys))
        let size = Ledger.IndexEntry.size
        var indexChanged = true
        if let index = try FileDescriptor.openIfPresent(ledger.layout.index) {
            let bytes = try index.size
            indexChanged = bytes != indexed * UInt64(size)
            var sequence = 0
            var comparison = Ledger.IndexComparison()
            try index.forEachChunk(from: 0, count: Int(min(bytes / UInt64(size), ledger.count)) * size) { (chunk) throws(LedgerError) in
                for at in stride(from: 0, to: chunk.count, by: size) {
                    let stored = Ledger.IndexEntry(UnsafeRawBufferPointer(rebasing: chunk[at..<(at + size)]))
                    let actual = ledger.pending[sequence]
                    if stored != actual { indexChanged = true }
                    if comparison.compare(stored, with: actual) == .changed {
                        indexEvidence.add(UInt64(sequence), recorded: String(stored.idPrefix, radix: 16) + "…", now: String(actual.idPrefix, radix: 16) + "…")
                    }
                    sequence += 1
                }
            }
        }
        // One pass over the log: the new tree built, the old tree's leaves compared as the records
        // are read (a chunk at a time: neither is held whole), and the signed checkpoints' roots
        // checked.
        let tree: MerkleTreeFiles
        do throws(MerkleTreeError) {
            tree = try MerkleTreeFiles(directory: building)
        } catch {
            throw LedgerError(error, in: directory)
        }
        let leaves = try FileDescriptor.openIfPresent(MerkleTreeFiles.path(directory: ledger.treeDirectory, level: 0))
        let recorded = min(acknowledged.treeLeaves, ledger.count)
        var treeEvidence = Ledger.CacheEvidence(from: .tree, checkpointSizes: Array(roots.keys))
        var proven: UInt64 = 0
        var range = CompactRange()
        var chunk: [UInt8] = []
        let perChunk: UInt64 = 1 << 15
        try ledger.forEachRecord { (stored) throws(LedgerError) -> Bool in
            if let leaves, stored.sequence < recorded {
                let at = stored.sequence % perChunk
                if at == 0 { chunk = try leaves.read(at: stored.sequence * 32, count: Int(min(perChunk, recorded - stored.sequence)) * 32) }
                if chunk.count >= Int(at + 1) * 32 {
                    let leaf = chunk.withUnsafeBytes { Digest(loadingFrom: $0, at: Int(at) * 32) }
                    if leaf != stored.entryID, leaf != .zero { treeEvidence.add(stored.sequence, recorded: leaf.hexString, now: stored.entryID.hexString) }
                }
            }
            range.append(stored.entryID)
            if roots[range.size] == range.root { proven = range.size }
            guard stored.sequence < indexed else { return true }
            do throws(MerkleTreeError) {
                try tree.append(leafHash: stored.entryID)
            } catch {
                throw LedgerError(error, in: directory)
            }
            return true
        }
        do throws(MerkleTreeError) {
            try tree.sync()
        } catch {
            throw LedgerError(error, in: directory)
        }
        // Where a checkpoint the log key signed proves the log, the cache is what is damaged.
        for evidence in [indexEvidence, treeEvidence] {
            if let uncovered = evidence.split(at: proven).uncovered { throw refuse(uncovered.message, evidence.source.file) }
        }
        return indexChanged
    }
}
