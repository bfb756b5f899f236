#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto
import LedgerMerkle

/// A record as stored: its exact bytes (the Merkle leaf) and its entry id.
public struct StoredRecord: Sendable {
    public let sequence: UInt64
    /// The exact stored bytes, without the newline that ends them in the log.
    public let bytes: [UInt8]
    /// SHA-256(0x00 ‖ bytes): the RFC 6962 leaf hash.
    public let entryID: Digest

    /// The record `bytes` stored at `sequence`, its entry id computed from them.
    public init(sequence: UInt64, bytes: [UInt8]) {
        self.init(sequence: sequence, bytes: bytes, entryID: Record.entryID(of: bytes))
    }

    init(sequence: UInt64, bytes: [UInt8], entryID: Digest) {
        self.sequence = sequence
        self.bytes = bytes
        self.entryID = entryID
    }

    /// Decodes the record (canonical form only).
    public func decoded() throws(LedgerError) -> Record {
        try bytes.withUnsafeBytes { bytes in Result { () throws(LedgerError) in try Self.decode(sequence: sequence, bytes: bytes) } }.get()
    }

    /// Decodes the stored bytes of the record at `sequence`, read in place, as ``decoded()`` does.
    public static func decode(sequence: UInt64, bytes: UnsafeRawBufferPointer) throws(LedgerError) -> Record {
        do throws(LedgerError) {
            return try Record(stored: bytes)
        } catch {
            throw LedgerError(error.code, "Entry \(sequence): \(error.message)")
        }
    }
}

/// What opening a ledger found and did about it.
public struct OpenReport: Sendable {
    /// Bytes after the last acknowledged record: an interrupted write. A writer cuts them.
    public var tornBytes: UInt64 = 0
    /// Whole records in the torn tail: written, but their group commit never completed.
    public var tornRecords: Int = 0
    /// The sequence number the torn tail started at.
    public var tornAt: UInt64 = 0
    /// The index did not match the log and was rebuilt from it (it is a cache).
    public var indexRebuilt = false
    /// Whether the torn tail was cut (writers only).
    public var cut = false
    /// Whether the index was written again from the log (writers only; readers read past it).
    public var indexWritten = false
    /// The bytes past the last whole group commit belong to an append another process is still
    /// writing (it holds the writer lock), not to an interrupted one.
    public var appendInProgress = false
    /// The index's last entry, if it points at a whole record of the right sequence number whose
    /// entry id differs from the one it recorded: evidence that the record changed after it was
    /// written.
    public var indexContradictsLogAt: UInt64?
    /// Why the writer's kept rule state could not be read, if it could not: the writer removed
    /// it and rebuilt the state from the log (writers only).
    public var droppedRuleState: String?
    /// Entries in the log that neither the index nor the tree files recorded, which the writer
    /// checked as an append checks a statement, signatures included, before taking them
    /// (writers only).
    public var unrecordedChecked: ClosedRange<UInt64>?

    /// Lines for the user, empty when nothing happened.
    public var messages: [String] {
        var out: [String] = []
        if tornBytes > 0, appendInProgress {
            out.append("An append was in progress (\(tornBytes) bytes past entry \(Int64(tornAt) - 1)); its entries are not shown until it completes.")
        } else if tornBytes > 0 {
            let what = tornRecords > 0 ? "\(tornBytes) bytes (\(tornRecords) whole record(s) of an unfinished group commit and any partial record)" : "\(tornBytes) bytes of a partial record"
            out.append(cut
                ? "Recovered from an interrupted write: cut \(what) at sequence \(tornAt); every acknowledged entry is intact."
                : "The log ends with an interrupted write: \(what) at sequence \(tornAt). The next write command cuts it; acknowledged entries are not affected.")
        }
        if let sequence = indexContradictsLogAt {
            out.append("The index recorded entry \(sequence) as another record (another length or entry id) than the log now holds where it was written: the record may have been changed after it was written. Run `ledger verify`.")
        } else if indexRebuilt {
            out.append(indexWritten
                ? "The index did not match the log and was rebuilt from it."
                : "The index (a cache) does not match the log, so the log was read instead; the next write command rebuilds the index.")
        }
        if let range = unrecordedChecked {
            let entries = range.count == 1 ? "Entry \(range.lowerBound) was" : "Entries \(range.lowerBound)…\(range.upperBound) were"
            out.append("\(entries) recorded in no index or tree file (their writes lost to a power loss or a full disk, or the files removed, or records added to the log by other means), so they were checked as an append checks a statement, signatures included, before this writer took them.")
        }
        if let droppedRuleState {
            out.append("The writer's kept rule state could not be read, so it was removed and the rule state rebuilt from the log, which is not affected: \(droppedRuleState) Damage to a file the ledger wrote can mean a failing disk.")
        }
        return out
    }
}

/// A ledger directory opened for reading: the committed records, by sequence number or in order.
///
/// Opening is O(1) in the log's length: it checks the index's last entry against the log and
/// reads only what lies beyond it. Readers take no lock and see only whole records of completed
/// group commits; what they see is fixed at open.
public final class Ledger: @unchecked Sendable {
    /// The ledger directory.
    public let directory: String
    /// How many committed records there are.
    public internal(set) var count: UInt64 = 0
    /// The entry id of the last committed record, or ``Digest/zero`` for an empty log.
    public internal(set) var lastEntryID = Digest.zero
    /// The acceptance time of the last record.
    public internal(set) var lastAcceptedAt: Timestamp?
    /// What opening found.
    public internal(set) var report = OpenReport()

    let logFile: FileDescriptor
    /// Opened by a writer (which holds the lock itself).
    let writable: Bool
    /// Opened by a reader that holds the writer lock (a repair).
    let holdingLock: Bool
    /// How many entries the index records (found consistent with the log when it was opened):
    /// those a writer checked and acknowledged. Entries past it are read from the log.
    public internal(set) var indexCount: UInt64 = 0
    /// The entries up to the last one the index's file holds that the open found consistent
    /// with the log, even when an unwritten entry before it has the index written again (it is
    /// not ``indexCount`` then): what a writer checked.
    private(set) var indexRecorded: UInt64 = 0
    var pending: [IndexEntry] = []
    /// The end of the last committed record in the log.
    var committedEnd: UInt64 = 0
    /// Set once the index was found to disagree with the log and was replaced in memory.
    private var indexDistrusted = false
    /// The Merkle tree rebuilt from the log, once one was (``merkleTree(fromLog:)``).
    var treeFromLog: InMemoryMerkleTree?

    struct IndexEntry: Equatable {
        var offset: UInt64
        var length: UInt32
        var idPrefix: UInt32

        static let size = 16

        init(offset: UInt64, length: UInt32, entryID: Digest) {
            self.offset = offset
            self.length = length
            // The first four bytes, read from the digest's leading word without copying it out.
            self.idPrefix = UInt32(truncatingIfNeeded: entryID.leadingWord >> 32)
        }

        init(_ raw: UnsafeRawBufferPointer) {
            offset = UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self))
            length = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            idPrefix = UInt32(bigEndian: raw.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        }

        /// The entry id prefix as people read it: 8 hex digits and "…".
        var idPrefixText: String {
            let hex = String(idPrefix, radix: 16)
            return String(repeating: "0", count: 8 - hex.count) + hex + "…"
        }

        /// An entry never written: zeros, as an unsynced block of the index reads after a power
        /// loss. A cache to rebuild, never evidence.
        var isUnwritten: Bool { length == 0 }

        var bytes: [UInt8] {
            var out = [UInt8](repeating: 0, count: 16)
            out.withUnsafeMutableBytes {
                $0.storeBytes(of: offset.bigEndian, toByteOffset: 0, as: UInt64.self)
                $0.storeBytes(of: length.bigEndian, toByteOffset: 8, as: UInt32.self)
                $0.storeBytes(of: idPrefix.bigEndian, toByteOffset: 12, as: UInt32.self)
            }
            return out
        }
    }

    /// Compares an index's entries, in order, with where the log's records really are. An entry
    /// that finds a record where it says, but another one (another length or entry id), is
    /// evidence that the record changed after it was written; the entries after one of another
    /// length are looked for that much further on, so that each changed record is found.
    /// Anything else (an unwritten entry, one pointing elsewhere) is a damaged cache.
    struct IndexComparison {
        enum Outcome { case same, changed, elsewhere }
        private var shift: Int64 = 0

        mutating func compare(_ stored: IndexEntry, with actual: IndexEntry) -> Outcome {
            guard !stored.isUnwritten, stored.offset < UInt64(Int64.max), stored.offset &+ UInt64(bitPattern: shift) == actual.offset else { return .elsewhere }
            guard stored.length != actual.length || stored.idPrefix != actual.idPrefix else { return .same }
            shift += Int64(actual.length) - Int64(stored.length)
            return .changed
        }
    }

    /// The paths inside a ledger directory.
    public struct Layout: Sendable {
        public let directory: String
        public var log: String { directory + "/log" }
        public var index: String { directory + "/index" }
        public var lock: String { directory + "/lock" }
        public var format: String { directory + "/FORMAT" }
        public var blobs: String { directory + "/blobs" }
        /// The writer's rule state, kept between opens (a cache: see ``LedgerWriter``).
        public var rulesState: String { directory + "/rules.state" }
        /// The stored Merkle tree's level files.
        public var tree: String { directory + "/tree" }
        /// Signed checkpoints and the log's verifier key.
        public var checkpoints: String { directory + "/checkpoints" }

        public init(directory: String) {
            self.directory = directory
        }
    }

    /// The text of the `FORMAT` file that marks a ledger directory.
    static let formatText = "evidence-ledger log v1\n"

    public var layout: Layout { Layout(directory: directory) }

    /// Opens the ledger in `directory` for reading.
    /// - Throws: ``LedgerError/Code/notALedger`` if it is not a ledger directory,
    ///   ``LedgerError/Code/damagedLog`` for damage that is not an interrupted write.
    public convenience init(directory: String) throws(LedgerError) {
        try self.init(directory: directory, writable: false)
    }

    /// A reader for another thread, of this very log: it reads through the same open files, so it
    /// sees the log this one opened even if another file has since been moved into its place, and
    /// it is fixed at the same size. Readers are meant for one thread each; this is how work on
    /// one opened ledger is shared between threads.
    public func readerForAnotherThread() -> Ledger {
        Ledger(sharing: self)
    }

    private init(sharing other: Ledger) {
        directory = other.directory
        writable = false
        holdingLock = other.holdingLock
        logFile = other.logFile
        count = other.count
        lastEntryID = other.lastEntryID
        lastAcceptedAt = other.lastAcceptedAt
        report = other.report
        indexCount = other.indexCount
        pending = other.pending
        committedEnd = other.committedEnd
        indexDistrusted = other.indexDistrusted
        indexFile = other.indexFile
    }

    /// - Parameter holdingLock: the caller holds the writer lock (a repair): a torn tail is then
    ///   an interrupted write, never another process's append in progress.
    init(directory: String, writable: Bool, ignoringIndex: Bool = false, holdingLock: Bool = false) throws(LedgerError) {
        self.directory = directory
        self.writable = writable
        self.holdingLock = holdingLock
        let layout = Layout(directory: directory)
        guard FileSystem.isDirectory(directory) else {
            throw LedgerError(.notALedger, FileSystem.exists(directory)
                ? "\(directory) is a file, not a ledger directory. Give the ledger's directory (the one holding its log), before any file arguments."
                : "\(directory) does not exist. Give the ledger's directory, or create a ledger with `ledger init \(directory) --origin NAME --admin-key KEY`.")
        }
        try Self.checkFormat(layout)
        logFile = try FileDescriptor(path: layout.log, flags: writable ? O_RDWR : O_RDONLY)
        try load(ignoringIndex: ignoringIndex)
    }

    /// Checks that `layout` is a ledger directory this version can read: a `FORMAT` file with the
    /// expected text and a `log` file.
    static func checkFormat(_ layout: Layout) throws(LedgerError) {
        for path in [layout.format, layout.log] where FileSystem.isSymbolicLink(path) {
            throw LedgerError(.notALedger, "\(path) is a symbolic link; a ledger's files are never read or written through links. Put the file itself in its place.")
        }
        guard FileSystem.isRegularFile(layout.format), FileSystem.isRegularFile(layout.log) else {
            throw LedgerError(.notALedger, "\(layout.directory) is not a ledger directory (no FORMAT and log files). Create one with `ledger init`.")
        }
        let format = try FileDescriptor(path: layout.format, flags: O_RDONLY).read(at: 0, count: 64)
        guard format == Array(formatText.utf8) else {
            throw LedgerError(.notALedger, "\(layout.format) does not say \"\(formatText.dropLast())\"; this is not a ledger this version can read.")
        }
    }

    /// What the derived files record as acknowledged, read before the log's size: the index, the
    /// tree and the checkpoints are written only after the log is synced, so none of them can
    /// cover an entry the log lost in a crash.
    struct Acknowledged {
        let layout: Layout
        /// The index's entries and the tree's leaves, as their sizes give them.
        var indexEntries: UInt64
        var treeLeaves: UInt64
        /// The largest size a stored checkpoint signed by the log key commits to
        /// (``CheckpointStore/acknowledgedSize(key:)``).
        let checkpointed: UInt64
        /// Whether that size is a file name's, there being no log key to check signatures by.
        let checkpointedByName: Bool

        /// Which derived file shows entries past the log's end.
        enum Source: Equatable {
            case checkpoint(byName: Bool), index, tree

            /// The file to move aside once an operator has established that the log is right.
            var file: String {
                switch self {
                case .index: "index"
                case .tree: "tree"
                case .checkpoint: "checkpoints"
                }
            }

            var description: String {
                switch self {
                case .checkpoint(byName: false): "A stored checkpoint"
                case .checkpoint(byName: true): "A stored checkpoint's file name (its signature cannot be checked: checkpoints/log.vkey is missing or unreadable)"
                case .index: "The index"
                case .tree: "The Merkle tree's leaf file"
                }
            }
        }

        /// Entries a derived file shows acknowledged past the log's end.
        struct Lost {
            let count: UInt64
            let source: Source

            /// What it says about a log of `count` entries.
            func message(_ count: UInt64) -> String {
                "\(source.description) records \(self.count) entries, but the log holds only \(count) of them: entries \(count)…\(self.count - 1) were acknowledged and are gone, or no longer stand as whole records of a completed group commit."
            }
        }

        /// Which of them shows acknowledged entries past the log's `count` committed ones (ending
        /// at byte `committedEnd`), and how many it records; `nil` if none does. Only what a writer
        /// could have left counts: a checkpoint the log key signed, an index entry that begins
        /// where the log's committed records end, a tree leaf that is not zero (an unwritten
        /// block). Anything else past the log's end is a damaged cache, not a lost entry.
        /// - Throws: ``LedgerError/Code/io`` if the index or the tree's leaves cannot be read: what
        ///   they would show is never taken for nothing (a repair would overwrite it).
        func beyond(_ count: UInt64, committedEnd: UInt64) throws(LedgerError) -> Lost? {
            var best: Lost?
            func consider(_ recorded: UInt64, _ source: Source) {
                if recorded > best?.count ?? count { best = Lost(count: recorded, source: source) }
            }
            if checkpointed > count { consider(checkpointed, .checkpoint(byName: checkpointedByName)) }
            if indexEntries > count, let index = try FileDescriptor.openIfPresent(layout.index) {
                let raw = try index.read(at: count * UInt64(IndexEntry.size), count: IndexEntry.size)
                if raw.count == IndexEntry.size, raw.withUnsafeBytes({ IndexEntry($0) }).offset == committedEnd { consider(indexEntries, .index) }
            }
            // Leaves past the log are written ones from its first: a megabyte of zeros there is
            // no cut of the log but a file extended and never written (read no further).
            if treeLeaves > count, let leaves = try FileDescriptor.openIfPresent(MerkleTreeFiles.path(directory: layout.tree, level: 0)) {
                let past = try leaves.read(at: count * 32, count: Int(min(treeLeaves - count, 1 << 15)) * 32)
                if past.contains(where: { $0 != 0 }) { consider(treeLeaves, .tree) }
            }
            return best
        }
    }

    /// What the derived files of the ledger at `layout` record, read now; checkpoints are checked
    /// with `logKey` (by default the one recorded in the directory).
    /// - Throws: ``LedgerError/Code/io`` if the index or the tree's leaves are there but cannot be
    ///   read.
    static func acknowledged(_ layout: Layout, logKey: NoteVerifier? = nil) throws(LedgerError) -> Acknowledged {
        let treeLeaves = try FileDescriptor.openIfPresent(MerkleTreeFiles.path(directory: layout.tree, level: 0))?.size ?? 0
        let indexEntries = try FileDescriptor.openIfPresent(layout.index)?.size ?? 0
        let checkpointed = try CheckpointStore(ledgerDirectory: layout.directory).acknowledgedSize(key: logKey)
        return Acknowledged(
            layout: layout, indexEntries: indexEntries / UInt64(IndexEntry.size), treeLeaves: treeLeaves / 32, checkpointed: checkpointed.size,
            checkpointedByName: checkpointed.byName)
    }

    /// How many of its records this ledger's own files show a writer took: the index's entries
    /// that the open found consistent with the log (`indexed`), and the tree's leaves up to the
    /// last one written (a power loss leaves zeros after it) if that is the log's entry id there.
    /// File sizes alone count for nothing. A checkpoint's size does not count either: only its
    /// root would say the log's records are still those it signed.
    func recordedCount(indexed: UInt64) -> UInt64 {
        var recorded = indexed
        if let tree = StoredTreeReader(directory: treeDirectory) {
            var leaves = min(tree.size, count)
            // Over at most a few blocks of zeros.
            while leaves > 0, tree.size - leaves < 4096, (try? tree.hash(level: 0, index: leaves - 1)) == Digest.zero { leaves -= 1 }
            if leaves > 0, let leaf = try? tree.hash(level: 0, index: leaves - 1), leaf == (try? entryID(at: leaves - 1)) {
                recorded = max(recorded, leaves)
            }
        }
        return min(recorded, count)
    }

    /// Evidence from the index or the tree files that a record changed (they recorded another
    /// entry id for it when it was written), the first found after each stored checkpoint's
    /// size: enough to tell, once it is known up to which checkpoint the log is proven, the first
    /// evidence that no checkpoint covers, in memory bounded by the number of checkpoints, however
    /// many records disagree.
    struct CacheEvidence {
        /// The file the evidence is from: ``Acknowledged/Source/index`` or ``Acknowledged/Source/tree``.
        let source: Acknowledged.Source
        private let bounds: [UInt64]
        private var first: [Int: (sequence: UInt64, message: String)] = [:]

        init(from source: Acknowledged.Source, checkpointSizes: [UInt64]) {
            self.source = source
            bounds = checkpointSizes.sorted()
        }

        /// What the file's damage is said as: "the index is", "the tree files are".
        var damaged: String { source == .index ? "the index is" : "the tree files are" }

        /// Keeps that the file recorded entry id `recorded` for the record at `sequence`, which
        /// now hashes to `now` (both as written for people), if it is the first after its
        /// checkpoint; the texts are made only then.
        mutating func add(_ sequence: UInt64, recorded: @autoclosure () -> String, now: @autoclosure () -> String) {
            let stretch = bounds.firstIndex { $0 > sequence } ?? bounds.count
            guard first[stretch] == nil else { return }
            let name = source == .index ? "The index" : "The Merkle tree"
            first[stretch] = (sequence, "\(name) recorded entry id \(recorded()) for entry \(sequence) when it was written; its record now hashes to \(now()): the record was changed after it was written, or \(damaged) damaged.")
        }

        /// The first evidence before `proven` (covered by a checkpoint that proves the log) and
        /// the first at or after it, if any.
        func split(at proven: UInt64) -> (covered: (sequence: UInt64, message: String)?, uncovered: (sequence: UInt64, message: String)?) {
            let all = first.values.sorted { $0.sequence < $1.sequence }
            return (all.first { $0.sequence < proven }, all.first { $0.sequence >= proven })
        }
    }

    /// What the index in `index` records that the log bears out: its `entries`, the entries up to
    /// the last one written (`written`: a power loss can leave a few blocks of zeros after it),
    /// and that last one's record as the log holds it where the index says (where the log
    /// continues, its entry id and acceptance time), if it is the one the index recorded. If a
    /// record of its sequence number is there but another one (another length or entry id), the
    /// record was changed after it was committed, or the index rotted: `contradictsAt`.
    private func indexPrefix(_ index: FileDescriptor, logSize: UInt64) throws(LedgerError) -> (
        entries: UInt64, written: UInt64, last: (next: UInt64, entryID: Digest, acceptedAt: Timestamp)?, contradictsAt: UInt64?
    ) {
        let entries = try index.size / UInt64(IndexEntry.size)
        var written = entries
        while written > 0, entries - written < 4096, (try? readIndexEntry(written - 1, from: index))?.isUnwritten == true { written -= 1 }
        guard written > 0, let last = try? readIndexEntry(written - 1, from: index), !last.isUnwritten, last.offset < logSize,
            let line = try line(at: last.offset, length: last.length, logSize: logSize), let record = try? Record(stored: line),
            record.sequence == written - 1
        else { return (entries, written, nil, nil) }
        let entryID = Record.entryID(of: line)
        guard IndexEntry(offset: last.offset, length: UInt32(line.count), entryID: entryID) == last else { return (entries, written, nil, written - 1) }
        return (entries, written, (last.offset + UInt64(line.count) + 1, entryID, record.acceptedAt), nil)
    }

    /// The entries up to the last one the index file holds, if the log bears that one out (see
    /// ``indexPrefix(_:logSize:)``), whether or not this reader used the index: what a writer
    /// checked, for a repair that rebuilds the index.
    func recordedIndexEntries() throws(LedgerError) -> UInt64 {
        guard let index = try FileDescriptor.openIfPresent(layout.index) else { return 0 }
        let found = try indexPrefix(index, logSize: try logFile.size)
        return found.last == nil ? 0 : min(found.written, count)
    }

    /// Whether any of the first `count` entries of `index` is unwritten (zeros).
    private static func hasUnwrittenEntry(_ index: FileDescriptor, before count: UInt64) throws(LedgerError) -> Bool {
        var found = false
        try index.forEachChunk(from: 0, count: Int(count) * IndexEntry.size, chunk: 1 << 20) { (chunk) throws(LedgerError) in
            var at = 0
            while !found, at < chunk.count {
                found = IndexEntry(UnsafeRawBufferPointer(rebasing: chunk[at..<(at + IndexEntry.size)])).isUnwritten
                at += IndexEntry.size
            }
        }
        return found
    }

    /// The log's line (without its newline) that begins at `offset`, if a whole one does: read as
    /// `length` bytes, the index's record of it, and only if it is not that long, to its end.
    private func line(at offset: UInt64, length: UInt32, logSize: UInt64) throws(LedgerError) -> [UInt8]? {
        guard offset < logSize else { return nil }
        if length <= Record.maximumSize, UInt64(length) < logSize - offset {
            let bytes = try logFile.read(at: offset, count: Int(length) + 1)
            if bytes.last == 0x0a, !bytes.dropLast().contains(0x0a) { return Array(bytes.dropLast()) }
        }
        if offset > 0 { guard try logFile.read(at: offset - 1, count: 1) == [0x0a] else { return nil } }
        let bytes = try logFile.read(at: offset, count: Int(min(UInt64(Record.maximumSize) + 1, logSize - offset)))
        return bytes.firstIndex(of: 0x0a).map { Array(bytes[..<$0]) }
    }

    /// Reads the index and scans the log past it.
    /// - Parameter ignoringIndex: rebuild the index from the log; then only signed checkpoints
    ///   (not the index or tree files being replaced) bound what the log must hold.
    func load(ignoringIndex: Bool = false) throws(LedgerError) {
        // Derived files first, then the log's size: whatever they record is already in the log.
        var acknowledged = try Self.acknowledged(layout)
        // A rebuild of the index (a repair) takes only what signed checkpoints record; the repair
        // itself checks what the files being replaced record.
        if ignoringIndex { (acknowledged.indexEntries, acknowledged.treeLeaves) = (0, 0) }
        let logSize = try logFile.size
        var start: (offset: UInt64, sequence: UInt64, previous: Digest) = (0, 0, .zero)
        indexCount = 0
        indexRecorded = 0
        pending = []
        report.indexRebuilt = false
        if !ignoringIndex, let index = try FileDescriptor.openIfPresent(layout.index) {
            let found = try indexPrefix(index, logSize: logSize)
            report.indexContradictsLogAt = found.contradictsAt
            if let last = found.last {
                indexRecorded = found.written
                // Kept before a zero-filled tail only if no entry before it is unwritten either.
                var holes = false
                if found.written < found.entries { holes = try Self.hasUnwrittenEntry(index, before: found.written) }
                if !holes {
                    indexCount = found.written
                    start = (last.next, found.written, last.entryID)
                    lastAcceptedAt = last.acceptedAt
                }
            }
            if indexCount != found.entries { report.indexRebuilt = true }
        } else if logSize > 0 {
            report.indexRebuilt = true
        }
        try scanTail(from: start.offset, sequence: start.sequence, previous: start.previous, logSize: logSize)
        if let lost = try acknowledged.beyond(count, committedEnd: committedEnd) {
            throw LedgerError(.damagedLog, "\(directory): \(lost.message(count))\(report.tornBytes > 0 ? " (The log then holds \(report.tornBytes) bytes that are not a whole group commit.)" : "") A crash cannot do that. Nothing was changed. Run `ledger verify \(directory)` and restore the log from a trusted copy; the ledger refuses to write until then.")
        }
    }

    /// Reads records after the index: whole, chained records of completed group commits are
    /// committed; anything after the last completed group commit is a torn tail, unless a
    /// complete group commit follows damage, which is reported as damage.
    private func scanTail(from offset: UInt64, sequence: UInt64, previous: Digest, logSize: UInt64) throws(LedgerError) {
        var cursor = LogCursor(file: logFile, from: offset, end: logSize)
        var expected = (sequence: sequence, previous: previous)
        var candidates: [IndexEntry] = []
        var committed = (count: 0, end: offset)
        var lastTime = lastAcceptedAt
        var committedTime = lastAcceptedAt
        var broken = false
        while let line = try cursor.next() {
            var record: Record?
            if line.complete {
                do throws(LedgerError) {
                    record = try Record(stored: line.bytes)
                } catch where !line.bytes.contains(0) && !mayBeBeingWritten(line) {
                    // The log is only ever appended to, so what a crash leaves in a whole line is
                    // a block that never reached the disk, read as zeros. A whole line without one
                    // that is no record was changed after it was written: perhaps an acknowledged
                    // entry whose index entry and tree leaf were not yet on disk, which must not
                    // be cut as an interrupted write. (A reader may read a line while a writer
                    // cuts a torn tail and writes over it: ``mayBeBeingWritten(_:)``.)
                    throw LedgerError(.damagedLog, "The log is damaged at byte \(line.offset): the whole line there, where entry \(expected.sequence) or a later one should stand, is not a record (\(error.message)). An interrupted write leaves zeros where a block did not reach the disk, not such a line (unless the disk or file system ignored the order of writes). Nothing was changed. Run `ledger verify \(directory)` for the exact findings, then restore the log from a trusted copy; the ledger refuses to write until then.")
                } catch {}
            }
            if !broken, let record, record.sequence == expected.sequence, record.previous == expected.previous {
                let entryID = Record.entryID(of: line.bytes)
                candidates.append(IndexEntry(offset: line.offset, length: UInt32(line.bytes.count), entryID: entryID))
                expected = (expected.sequence + 1, entryID)
                lastTime = record.acceptedAt
                if record.batchEnd == record.sequence {
                    committed = (candidates.count, line.offset + UInt64(line.bytes.count) + 1)
                    committedTime = lastTime
                }
                continue
            }
            // An interrupted write leaves a partial line, or lines of an unfinished group commit
            // after one. A whole record that does not continue the chain means acknowledged data
            // is out of place: damage. A line with zeros in it is what a crash leaves where a
            // block of an unsynced write never reached the disk, and pages can reach it out of
            // order, so whole records, even one closing a group commit, may follow it: they are
            // of the same unsynced write, never acknowledged (its sync did not return). Whether
            // acknowledged entries are missing is decided after the scan, against what the
            // index, tree and checkpoints recorded.
            let misplaced = !broken && record != nil
            broken = true
            if let record, misplaced {
                // Which of two records that no longer link changed cannot be told from here.
                let what = record.sequence == expected.sequence && record.sequence > 0
                    ? "entry \(record.sequence) links previous entry \(record.previous.shortHex()), but entry \(record.sequence - 1) is \(expected.previous.shortHex()): one of the two was changed"
                    : "a complete record with sequence \(record.sequence) stands where entry \(expected.sequence) should, and does not continue the chain"
                throw LedgerError(.damagedLog, "The log is damaged at byte \(line.offset): \(what). Nothing was changed. Run `ledger verify \(directory)` for the exact findings, then restore the log from a trusted copy; the ledger refuses to write until then.")
            }
        }
        pending = Array(candidates.prefix(committed.count))
        count = indexCount + UInt64(pending.count)
        committedEnd = committed.end
        lastAcceptedAt = committedTime
        if committed.count > 0 {
            lastEntryID = try entryID(at: count - 1)
        } else if indexCount > 0 {
            lastEntryID = previous
        }
        report.tornBytes = logSize - committed.end
        report.tornRecords = candidates.count - committed.count
        report.tornAt = count
        // Readers take no lock, so they may see an append another process is writing; the lock
        // tells it apart from an interrupted write (probed, never held, and never created).
        if report.tornBytes > 0, !writable, !holdingLock { report.appendInProgress = Self.writerHoldsLock(layout) }
    }

    private func readIndexEntry(_ n: UInt64, from index: FileDescriptor) throws(LedgerError) -> IndexEntry {
        let raw = try index.read(at: n * UInt64(IndexEntry.size), count: IndexEntry.size)
        guard raw.count == IndexEntry.size else {
            throw LedgerError(.io, "The index ends before entry \(n). Run `ledger verify \(directory)`.")
        }
        return raw.withUnsafeBytes { IndexEntry($0) }
    }

    lazy var indexFile: FileDescriptor? = try? FileDescriptor(path: layout.index, flags: O_RDONLY | O_NONBLOCK)

    func indexEntry(_ sequence: UInt64) throws(LedgerError) -> IndexEntry {
        precondition(sequence < count, "index entry out of range")
        if sequence >= indexCount { return pending[Int(sequence - indexCount)] }
        guard let indexFile else { throw ioError("open", layout.index) }
        return try readIndexEntry(sequence, from: indexFile)
    }

    /// The record at `sequence`, read in O(1) through the index.
    /// - Throws: ``LedgerError/Code/notFound`` past the end; ``LedgerError/Code/damagedLog`` if the
    ///   stored bytes do not match the index.
    public func record(at sequence: UInt64) throws(LedgerError) -> StoredRecord {
        guard sequence < count else {
            throw LedgerError(.notFound, "There is no entry \(sequence): the ledger has \(count) entries (0 to \(Int64(count) - 1)).")
        }
        let entry: IndexEntry
        do throws(LedgerError) {
            entry = try indexEntry(sequence)
        } catch {
            return try rebuildIndexAndRead(sequence, because: error)
        }
        // An index entry pointing outside the committed log is a damaged cache, not a read to try.
        guard entry.length <= Record.maximumSize, case let (end, overflow) = entry.offset.addingReportingOverflow(UInt64(entry.length) + 1),
            !overflow, end <= committedEnd
        else {
            return try rebuildIndexAndRead(sequence, because: nil)
        }
        let bytes = try logFile.read(at: entry.offset, count: Int(entry.length) + 1)
        let record = Array(bytes.dropLast())
        let entryID = Record.entryID(of: record)
        guard bytes.last == 0x0a, IndexEntry(offset: entry.offset, length: entry.length, entryID: entryID) == entry,
            Self.sequencePrefix(record) == sequence
        else {
            return try rebuildIndexAndRead(sequence, because: nil)
        }
        return StoredRecord(sequence: sequence, bytes: record, entryID: entryID)
    }

    /// The index is a cache: when it disagrees with the log or cannot be read, it is rebuilt from
    /// the log in memory (one pass) and the answer comes from that; the log decides.
    private func rebuildIndexAndRead(_ sequence: UInt64, because error: LedgerError?) throws(LedgerError) -> StoredRecord {
        guard !indexDistrusted else {
            throw error ?? LedgerError(.damagedLog, "Entry \(sequence) cannot be read from the log. Run `ledger verify \(directory)` to find the damage.")
        }
        indexDistrusted = true
        // A log that cannot be read whole again leaves this reader as it was (every read through
        // the index is still checked against the log), not half-loaded.
        let before = (indexCount, pending, count, committedEnd, lastEntryID, lastAcceptedAt, report)
        do throws(LedgerError) {
            try load(ignoringIndex: true)
        } catch {
            (indexCount, pending, count, committedEnd, lastEntryID, lastAcceptedAt, report) = before
            throw error
        }
        report.indexRebuilt = true
        return try record(at: sequence)
    }

    /// Where `record`, as ``record(at:)`` read and checked it, begins in the log (without
    /// reading and hashing it again).
    func offset(of record: StoredRecord) throws(LedgerError) -> UInt64 {
        try indexEntry(record.sequence).offset
    }

    /// The first four bytes of the entry id the index recorded for `record` when it was
    /// written (as hex, "1a2b3c4d…"), if they are not its own: evidence that the record changed
    /// since, or that the index is damaged. `nil` when they agree, or the index holds no entry for it.
    public func indexRecordsOtherID(for record: StoredRecord) -> String? {
        guard let indexFile, let size = try? indexFile.size, size / UInt64(IndexEntry.size) > record.sequence,
            let entry = try? readIndexEntry(record.sequence, from: indexFile), !entry.isUnwritten
        else { return nil }
        let own = IndexEntry(offset: 0, length: 0, entryID: record.entryID).idPrefix
        return entry.idPrefix == own ? nil : entry.idPrefixText
    }

    /// The entry id at `sequence`.
    public func entryID(at sequence: UInt64) throws(LedgerError) -> Digest {
        try record(at: sequence).entryID
    }

    /// Calls `body` with each committed record from `start` up to (not including) `end`, in
    /// order, streaming the log in large reads. Stops early when `body` returns `false`.
    /// - Parameter checkingLinks: whether each record must link to the one before, as a replay
    ///   checks: a command that answers from the records does not answer from a changed one.
    public func forEachRecord(
        from start: UInt64 = 0, to end: UInt64? = nil, checkingLinks: Bool = false, _ body: (StoredRecord) throws(LedgerError) -> Bool
    ) throws(LedgerError) {
        let stop = min(end ?? count, count)
        guard start < stop else { return }
        // The first record's offset comes from the index (a cache), so it is read and checked
        // first; after that the log is read in order and each line must carry its sequence number.
        let first = try record(at: start)
        var cursor = LogCursor(file: logFile, from: try offset(of: first), end: committedEnd)
        var sequence = start
        var previous = checkingLinks ? (start == 0 ? Digest.zero : try entryID(at: start - 1)) : nil
        while sequence < stop, let line = try cursor.next() {
            guard sequence == start ? line.bytes == first.bytes : Self.sequencePrefix(line.bytes) == sequence else {
                throw LedgerError(.damagedLog, "The log does not hold entry \(sequence) where it should (byte \(line.offset)). Run `ledger verify \(directory)` for the findings.")
            }
            let stored = sequence == start ? first : StoredRecord(sequence: sequence, bytes: line.bytes)
            if let expected = previous {
                let link = try stored.decoded().previous
                guard link == expected else { throw brokenLink(at: sequence, link: link, previous: expected) }
                previous = stored.entryID
            }
            guard try body(stored) else { return }
            sequence += 1
        }
        // The last record given is checked by the link of the one after it, if there is one.
        if let last = previous, sequence == stop, stop < count, let line = try cursor.next() {
            let link = try StoredRecord(sequence: stop, bytes: line.bytes).decoded().previous
            guard link == last else { throw brokenLink(at: stop, link: link, previous: last) }
        }
    }

    /// Record `sequence` links to `link`, but the record before it has entry id `previous`.
    public func brokenLink(at sequence: UInt64, link: Digest, previous: Digest) -> LedgerError {
        let before = sequence == 0 ? "the first entry must link to none (zeros)" : "entry \(sequence - 1) has id \(previous.shortHex())"
        return LedgerError(.damagedLog, "The log is damaged at entry \(sequence): its link names entry id \(link.shortHex()), but \(before); a record was changed after it was written. No answer is given from it. Run `ledger verify \(directory)` for the findings, then restore the log from a trusted copy.")
    }

    /// Whether another process holds the writer lock now.
    static func writerHoldsLock(_ layout: Layout) -> Bool {
        let fd = open(layout.lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        // Shared: readers probing at once do not take each other for a writer.
        guard flock(fd, LOCK_SH | LOCK_NB) == 0 else { return true }
        flock(fd, LOCK_UN)
        return false
    }

    /// Whether a whole line that is no record, met by a reader, may be one a writer is writing:
    /// one holds the lock, and the line changes (or goes) within 150 ms. A writer cuts a torn tail
    /// and writes its batch over it in milliseconds, so a reader may read pieces of both; damage
    /// stays as it is, and is reported as damage whoever holds the lock.
    private func mayBeBeingWritten(_ line: LogCursor.Line) -> Bool {
        guard !writable, !holdingLock, Self.writerHoldsLock(layout) else { return false }
        // With the newline before it: a line read in two pieces, the first before a writer cut
        // the tail and the second after, can be new bytes throughout that start where no line
        // starts now.
        let from = line.offset > 0 ? line.offset - 1 : 0
        let read = (line.offset > 0 ? [0x0a] : []) + line.bytes + (line.tooLong ? [] : [0x0a])
        for _ in 0..<3 {
            usleep(50_000)
            guard let now = try? logFile.read(at: from, count: read.count), now == read else { return true }
        }
        return false
    }

    private static let recordStart = Array("{\"seq\":".utf8)

    /// The sequence number a canonical record starts with (`{"seq":N,`), or `nil`.
    static func sequencePrefix(_ bytes: [UInt8]) -> UInt64? {
        bytes.withUnsafeBytes { sequencePrefix($0) }
    }

    static func sequencePrefix(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        let prefix = recordStart
        guard bytes.count > prefix.count, bytes.starts(with: prefix) else { return nil }
        var value: UInt64 = 0
        for byte in bytes[prefix.count...] {
            if byte == UInt8(ascii: ",") { return value }
            guard byte >= 0x30, byte <= 0x39, value < UInt64(JSONParser.maximumInteger) else { return nil }
            value = value * 10 + UInt64(byte - 0x30)
        }
        return nil
    }

    /// Cuts records `start..<stop` into stretches of at most `records` consecutive records, each
    /// to be read on its own (``StretchReader``), several at once on different threads. The first
    /// record is read through the index as ``record(at:)`` reads it, as a sequential read starts;
    /// where each later stretch begins, the index says, checked only to begin a line of the record
    /// it names (an index that says otherwise is rebuilt, as for any read through it). Reading the
    /// stretches then checks that each holds exactly its records, in order: together they are the
    /// log read in order, each record checked as a sequential read checks it.
    package func stretches(from start: UInt64, to stop: UInt64, records: UInt64) throws(LedgerError) -> [LogStretch] {
        let stop = min(stop, count)
        guard start < stop, records > 0 else { return [] }
        var out: [LogStretch] = []
        var first = start
        var offset = try offset(of: record(at: start))
        while first < stop {
            let next = first + min(records, stop - first)
            let end = try next < stop ? self.offset(ofLineOf: next) : self.offset(ofLineOf: stop - 1, end: true)
            guard end > offset else {
                throw LedgerError(.damagedLog, "The log's entries \(first) to \(next - 1) do not lie where the index puts them (bytes \(offset) to \(end)). Run `ledger verify \(directory)` for the findings.")
            }
            out.append(LogStretch(first: first, count: next - first, offset: offset, end: end))
            (first, offset) = (next, end)
        }
        return out
    }

    /// Where the line of record `sequence` begins (or with `end`, where it ends, after its
    /// newline), as the index says if the log agrees that a line of that record begins there, else
    /// as ``record(at:)`` finds it.
    private func offset(ofLineOf sequence: UInt64, end: Bool = false) throws(LedgerError) -> UInt64 {
        if let entry = try? indexEntry(sequence), entry.length <= Record.maximumSize,
            case let (lineEnd, overflow) = entry.offset.addingReportingOverflow(UInt64(entry.length) + 1), !overflow, lineEnd <= committedEnd,
            try recordLine(of: sequence, beginsAt: entry.offset, length: entry.length)
        {
            return end ? lineEnd : entry.offset
        }
        let stored = try record(at: sequence)
        let offset = try self.offset(of: stored)
        return end ? offset + UInt64(stored.bytes.count) + 1 : offset
    }

    /// Whether a line of record `sequence`, `length` bytes long, begins at `offset`: the byte
    /// before it ends a line, it starts with the record's sequence number, and a newline ends it.
    private func recordLine(of sequence: UInt64, beginsAt offset: UInt64, length: UInt32) throws(LedgerError) -> Bool {
        let head = Array("{\"seq\":\(sequence),".utf8)
        guard UInt64(length) >= UInt64(head.count) else { return false }
        // The newline before it and its start in one read, the newline after it in another.
        let expected = (offset == 0 ? [] : [0x0a]) + head
        let start = try logFile.read(at: offset - UInt64(expected.count - head.count), count: expected.count)
        let after = try logFile.read(at: offset + UInt64(length), count: 1)
        return start == expected && after == [0x0a]
    }
}

/// Consecutive records of the log and the bytes they lie in: a piece of a log to read on one
/// thread while others read other pieces.
package struct LogStretch: Sendable, Hashable {
    /// The first record's sequence number, and how many records.
    package let first: UInt64
    package let count: UInt64
    /// Where the first record begins, and where the line of the last ends (after its newline).
    package let offset: UInt64
    package let end: UInt64
}

/// Reads stretches of one ledger's log, one at a time, keeping its buffer from one to the next:
/// one reader for each thread.
package struct StretchReader {
    private var cursor: LogCursor
    private let directory: String

    package init(ledger: Ledger) {
        cursor = LogCursor(file: ledger.logFile, from: 0, end: 0)
        directory = ledger.directory
    }

    /// Calls `body` with each record of `stretch`, in order: its sequence number and its stored
    /// bytes, read in place (valid only during the call).
    /// - Throws: ``LedgerError/Code/damagedLog`` if the stretch does not hold exactly its records,
    ///   each line carrying its sequence number (the log changed, or was damaged, since the
    ///   stretch was cut); what `body` throws.
    package mutating func forEachRecord(
        in stretch: LogStretch, _ body: (UInt64, UnsafeRawBufferPointer) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        cursor.restart(from: stretch.offset, end: stretch.end)
        for sequence in stretch.first..<(stretch.first + stretch.count) {
            let at = cursor.offset
            let found = try cursor.withNextLine { (line, bytes) throws(LedgerError) -> Bool in
                guard line.complete, Ledger.sequencePrefix(bytes) == sequence else { return false }
                guard !line.tooLong else {
                    throw LedgerError(.damagedLog, "The line of entry \(sequence) at byte \(at) of the log is \(line.length) bytes, longer than any record may be (\(Record.maximumSize)): it was changed outside `ledger`. Run `ledger verify \(directory)` for the findings.")
                }
                try body(sequence, bytes)
                return true
            }
            guard found == true else {
                throw LedgerError(.damagedLog, "The log does not hold entry \(sequence) where it should (byte \(at)). Run `ledger verify \(directory)` for the findings.")
            }
        }
        guard cursor.offset == stretch.end else {
            throw LedgerError(.damagedLog, "The log holds more than entries \(stretch.first) to \(stretch.first + stretch.count - 1) before byte \(stretch.end), where the next entry should begin. Run `ledger verify \(directory)` for the findings.")
        }
    }
}
