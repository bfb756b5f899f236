#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto
public import LedgerMerkle

/// The stored Merkle tree's level files, read-only and memory-mapped: a node is a memory read,
/// so a proof's O(log n) node reads cost no system calls. Readers never create or change a file.
final class StoredTreeReader: MerkleNodeReader {
    let directory: String
    let size: UInt64
    private var maps: [Int: UnsafeRawBufferPointer] = [:]
    /// Every level file, opened at once: a writer that replaces the files later does not change
    /// what this reader reads (it keeps the old ones), so a map never outgrows its file.
    private let descriptors: [Int32]

    /// Opens the level files if they are regular files whose lengths are consistent with each
    /// other; `nil` otherwise (a FIFO in a level's place is never waited on).
    init?(directory: String) {
        self.directory = directory
        var fds: [Int32] = []
        func close(all fds: [Int32]) { for fd in fds { Glibc.close(fd) } }
        var info = stat()
        let first = open(Self.path(directory, 0), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
        guard first >= 0 else { return nil }
        fds.append(first)
        guard fstat(first, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_size % 32 == 0 else {
            close(all: fds)
            return nil
        }
        let size = UInt64(info.st_size / 32)
        for level in 1..<64 {
            let expected = Int64(size >> UInt64(level)) * 32
            guard expected > 0 else { break }
            let fd = open(Self.path(directory, level), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK)
            guard fd >= 0, fstat(fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, Int64(info.st_size) == expected else {
                if fd >= 0 { Glibc.close(fd) }
                close(all: fds)
                return nil
            }
            fds.append(fd)
        }
        self.size = size
        self.descriptors = fds
    }

    deinit {
        for map in maps.values { munmap(UnsafeMutableRawPointer(mutating: map.baseAddress), map.count) }
        for fd in descriptors { close(fd) }
    }

    static func path(_ directory: String, _ level: Int) -> String {
        directory + "/level-" + (level < 10 ? "0" : "") + String(level)
    }

    /// The first `count` nodes of a level file, mapped.
    private func map(level: Int, count: UInt64) throws(MerkleTreeError) -> UnsafeRawBufferPointer {
        if let map = maps[level] { return map }
        let path = Self.path(directory, level)
        let length = Int(count) * 32
        var info = stat()
        guard level < descriptors.count, fstat(descriptors[level], &info) == 0, Int(info.st_size) >= length else {
            throw .io(operation: "map", path: path, errno: EIO)
        }
        // Upper levels are small and every proof touches each of them: read them in at once
        // rather than taking a page fault per level per proof.
        let flags = MAP_SHARED | (length <= 1 << 20 ? MAP_POPULATE : 0)
        guard let base = mmap(nil, length, PROT_READ, flags, descriptors[level], 0), base != MAP_FAILED else {
            throw .io(operation: "mmap", path: path, errno: errno)
        }
        let map = UnsafeRawBufferPointer(start: base, count: length)
        maps[level] = map
        return map
    }

    func hash(level: Int, index: UInt64) throws(MerkleTreeError) -> Digest {
        let count = level >= 0 && level < 64 ? size >> UInt64(level) : 0
        guard index < count else { throw .nodeOutOfRange(level: level, index: index, count: count) }
        return Digest(loadingFrom: try map(level: level, count: count), at: Int(index) * 32)
    }

    /// `count` nodes of `level` from `index` on, read (not mapped), as bytes; `nil` if they cannot
    /// all be read.
    fileprivate func read(level: Int, from index: UInt64, count: Int) -> [UInt8]? {
        guard level >= 0, level < descriptors.count else { return nil }
        var bytes = [UInt8](repeating: 0, count: count * 32)
        let got = bytes.withUnsafeMutableBytes { FileDescriptor.read(descriptors[level], into: $0, at: index * 32) }
        return got == bytes.count ? bytes : nil
    }
}

/// The stored tree's nodes read front to back, 4,096 nodes at a time per level: for a
/// verification, which compares each node once, in order. Mapping the files instead would keep
/// every page touched resident, 64 MB at a million entries.
struct SequentialTreeReader {
    let tree: StoredTreeReader
    private var levels = [ReadAhead](repeating: ReadAhead(itemSize: 32), count: 64)

    init(_ tree: StoredTreeReader) {
        self.tree = tree
    }

    var size: UInt64 { tree.size }

    /// The node at `index` of `level`; `nil` outside the tree or if it cannot be read.
    mutating func hash(level: Int, index: UInt64) -> Digest? {
        guard level >= 0 && level < 64 else { return nil }
        let tree = tree
        return levels[level].item(index, of: tree.size >> UInt64(level), read: { tree.read(level: level, from: $0, count: $1) }) {
            Digest(loadingFrom: $0)
        }
    }
}

extension Ledger {
    /// The directory of the stored Merkle tree's level files.
    public var treeDirectory: String { layout.tree }

    /// The RFC 6962 tree over the committed records' entry ids.
    ///
    /// Served from the stored level files when they cover the log and their last leaf is the log's
    /// last entry id (O(1) to check, O(log n) node reads per root or proof); otherwise, since the
    /// tree is a cache, rebuilt in memory from the log (one pass) and served from that.
    /// - Parameter fromLog: rebuild from the log even when the stored files look usable.
    public func merkleTree(fromLog: Bool = false) throws(LedgerError) -> any MerkleNodeReader {
        if !fromLog, let stored = StoredTreeReader(directory: treeDirectory), stored.size >= count,
            count == 0 || (try? stored.leafHash(at: count - 1)) == lastEntryID
        {
            return stored
        }
        if let treeFromLog, treeFromLog.size == count { return treeFromLog }
        var tree = InMemoryMerkleTree()
        try forEachRecord { (stored) throws(LedgerError) -> Bool in
            tree.append(leafHash: stored.entryID)
            return true
        }
        // Kept: a proof checked against several roots would otherwise read the log once for each.
        treeFromLog = tree
        return tree
    }

    /// An inclusion proof of entry `index` (whose entry id is `leafHash`) in the tree of `size`
    /// entries, by ``answer(from:_:holds:)``: it must lead from that leaf to the root of the first
    /// `size` entries as ``knownRoot(size:in:)`` establishes it. A log that cannot give that root
    /// contradicts its own signed checkpoints (`damaged-log`).
    public func inclusionProof(index: UInt64, leafHash: Digest, size: UInt64) throws(LedgerError) -> InclusionProof {
        let tree = try merkleTree()
        let expected = try knownRoot(size: size, in: tree)
        return try proof(from: tree, { (tree) throws(MerkleTreeError) in try tree.inclusionProof(index: index, size: size) }) { proof in
            (try? proof.verify(leafHash: leafHash, treeSize: size, root: expected)) != nil
        }
    }

    /// A consistency proof from `old` to `new` entries made from `tree` (by default
    /// ``merkleTree(fromLog:)``), by ``answer(from:_:holds:)``. Its path must lead from its old
    /// root to its new root, and those must be `oldRoot` and `newRoot` where either is given (the
    /// caller judges a proof that does not reach them: it is evidence against the log, or of
    /// another log); given neither, the roots ``knownRoot(size:in:)`` establishes, which a log
    /// that cannot give them contradicts (`damaged-log`).
    public func consistencyProof(
        from old: UInt64, to new: UInt64, oldRoot: Digest? = nil, newRoot: Digest? = nil, in tree: (any MerkleNodeReader)? = nil
    ) throws(LedgerError) -> ConsistencyProof {
        let source: any MerkleNodeReader = if let tree { tree } else { try merkleTree() }
        let make = { (tree: any MerkleNodeReader) throws(MerkleTreeError) in try tree.consistencyProof(from: old, to: new) }
        guard oldRoot == nil && newRoot == nil else {
            return try answer(from: source, make) { proof in
                (try? proof.verify(oldSize: old, oldRoot: oldRoot ?? proof.oldRoot, newSize: new, newRoot: newRoot ?? proof.newRoot)) != nil
            }.answer
        }
        let expected = (try knownRoot(size: old, in: source), try knownRoot(size: new, in: source))
        return try proof(from: source, make) { proof in
            (try? proof.verify(oldSize: old, oldRoot: expected.0, newSize: new, newRoot: expected.1)) != nil
        }
    }

    /// The compact range of the first `size` leaves of `tree`, by ``answer(from:_:holds:)``, whose
    /// root should be `root`. If the log's own leaves do not fold to `root` either, the range
    /// returned is the log's, and the caller decides what that means (the log was rewritten, or it
    /// is another log).
    public func compactRange(size: UInt64, root: Digest, in tree: any MerkleNodeReader) throws(LedgerError) -> CompactRange {
        try answer(from: tree, { (tree) throws(MerkleTreeError) in try CompactRange(tree, size: size) }) { $0.root == root }.answer
    }

    /// The root of the log's first `size` entries, found without relying on the stored tree's
    /// nodes (a cache, which a damaged node can leave giving other roots with nothing to tell):
    /// - the root of the log's own stored checkpoint of that size;
    /// - else the root `tree` gives if its consistency proof leads to the smallest larger one's
    ///   root (or the log's tree's, if that one's does);
    /// - else the root the log's own entries fold to, from the largest smaller checkpoint's
    ///   compact range (or from the first entry), each record checked to link to the one before
    ///   and the last by the record after it.
    ///
    /// Checkpoints count only if their signatures verify with the recorded log key. Throws
    /// `damaged-log` if the log's entries do not lead to the largest smaller checkpoint's root.
    public func knownRoot(size: UInt64, in tree: any MerkleNodeReader) throws(LedgerError) -> Digest {
        guard size > 0 else { return RFC6962.emptyRoot }
        if let exact = try verifiedCheckpoint({ $0 == size }) { return exact.root }
        // Given a larger checkpoint, the root at `size` of a tree whose consistency proof reaches
        // its root: the tree given, the stored tree files (which may hold the signed history where
        // the log no longer ends as they do), or the log's own. None reaching it means the log
        // contradicts it, and where is not known: entries before `size` may be among those changed.
        if let above = try verifiedCheckpoint({ $0 > size }) {
            func reaching(_ tree: any MerkleNodeReader) -> Digest? {
                guard let root = try? tree.root(size: size), let proof = try? tree.consistencyProof(from: size, to: above.size),
                    (try? proof.verify(oldSize: size, oldRoot: root, newSize: above.size, newRoot: above.root)) != nil
                else { return nil }
                return root
            }
            if let root = reaching(tree) { return root }
            // `tree` is either the stored one or the log's (``merkleTree(fromLog:)``): the other is tried.
            if tree is StoredTreeReader {
                if let root = reaching(try merkleTree(fromLog: true)) { return root }
            } else if let stored = StoredTreeReader(directory: treeDirectory), stored.size >= above.size, let root = reaching(stored) {
                return root
            }
            throw contradicted(size: above.size)
        }
        let below = try verifiedCheckpoint({ $0 < size }, descending: true)
        var range = CompactRange()
        if let below {
            range = try compactRange(size: below.size, root: below.root, in: tree)
            guard range.root == below.root else { throw contradicted(size: below.size) }
        }
        // One record further, if there is one: its link checks the last of them.
        try forEachRecord(from: below?.size ?? 0, to: size + 1, checkingLinks: true) { (stored) throws(LedgerError) -> Bool in
            if stored.sequence < size { range.append(stored.entryID) }
            return true
        }
        return range.root
    }

    /// The first of the log's own stored checkpoints whose file names' sizes are `included`, by
    /// size (largest first if `descending`), that is signed by the recorded log key and of its
    /// name's size.
    /// - Throws: ``LedgerError/Code/io`` if the key or a checkpoint cannot be read: never taken
    ///   for none, which would let a proof stand without the checkpoint it should answer to.
    private func verifiedCheckpoint(_ included: (UInt64) -> Bool, descending: Bool = false) throws(LedgerError) -> Checkpoint? {
        let store = CheckpointStore(ledgerDirectory: directory)
        guard let key = try store.recordedKey() else { return nil }
        return try store.signed(by: key, sizes: included, largestFirst: descending, firstOnly: true).first
    }

    /// The log's entries do not lead to the root of its own checkpoint of `size` entries (or, for
    /// `nil`, to the roots its checkpoints record).
    private func contradicted(size: UInt64?) -> LedgerError {
        let which = size.map { "the root of its own signed checkpoint of \($0) entries" } ?? "the roots its own signed checkpoints record"
        return LedgerError(.damagedLog, "The log of \(directory) does not lead to \(which): entries were changed, removed or inserted after it was signed, so no proof can be made from it. Run `ledger verify \(directory)` to find where, and restore the log from a trusted copy.")
    }

    /// What `make` answers from `tree`, or (if it does not hold) from the log, as a proof: one that
    /// does not hold from the log either means the log contradicts its checkpoints.
    private func proof<T>(
        from tree: any MerkleNodeReader, _ make: (any MerkleNodeReader) throws(MerkleTreeError) -> T, holds: (T) -> Bool
    ) throws(LedgerError) -> T {
        let (proof, held) = try answer(from: tree, make, holds: holds)
        guard held else { throw contradicted(size: nil) }
        return proof
    }

    /// What `make` answers from `tree`; if `tree` is the stored one and the answer does not hold,
    /// what it answers from the tree rebuilt from the log; and whether that answer holds. The
    /// stored tree is a cache, and a damaged node can leave some of its roots right: only the log
    /// may count against the log.
    private func answer<T>(
        from tree: any MerkleNodeReader, _ make: (any MerkleNodeReader) throws(MerkleTreeError) -> T, holds: (T) -> Bool
    ) throws(LedgerError) -> (answer: T, holds: Bool) {
        func made(_ tree: any MerkleNodeReader) throws(LedgerError) -> T {
            do throws(MerkleTreeError) {
                return try make(tree)
            } catch {
                throw LedgerError(error, in: directory)
            }
        }
        let answer = try made(tree)
        if holds(answer) { return (answer, true) }
        guard tree is StoredTreeReader else { return (answer, false) }
        let fromLog = try made(merkleTree(fromLog: true))
        return (fromLog, holds(fromLog))
    }

    /// The origin named by the genesis record: the first line of every checkpoint.
    public func origin() throws(LedgerError) -> String {
        let genesis = try record(at: 0).decoded()
        guard case let .genesis(origin, _, _, _) = try Event(payload: genesis.envelope.payload).body else {
            throw LedgerError(.damagedLog, "Entry 0 of \(directory) is not a ledger.genesis record.")
        }
        return origin
    }
}

extension LedgerError {
    /// A tree error as a ledger error; `directory` is the ledger's, which its remedy names.
    package init(_ error: MerkleTreeError, in directory: String) {
        switch error {
        case .io, .inconsistentLevelFile:
            self.init(.io, "The Merkle tree files of \(directory) cannot be used: \(error). They are a cache: `ledger repair \(directory) --rebuild-derived` rewrites them from the log.")
        default:
            self.init(.usage, "\(error)")
        }
    }
}

extension LedgerWriter {
    /// Opens the stored tree and brings it level with the log: extended with entries it has not
    /// seen, or rebuilt when its files are inconsistent, its last leaf is an unwritten (zero)
    /// block, or its interior nodes do not give the log's root. A last leaf that holds another
    /// entry id than the log's record is evidence that the record changed: the open is refused.
    static func openTree(for ledger: Ledger, range: CompactRange) throws(LedgerError) -> MerkleTreeFiles {
        let directory = ledger.treeDirectory
        try FileSystem.makeDirectory(directory)
        func cache(_ body: () throws(MerkleTreeError) -> MerkleTreeFiles) throws(LedgerError) -> MerkleTreeFiles {
            do throws(MerkleTreeError) { return try body() } catch { throw LedgerError(error, in: ledger.directory) }
        }
        var tree = try cache { () throws(MerkleTreeError) in
            do throws(MerkleTreeError) { return try MerkleTreeFiles(directory: directory) } catch { return try rebuilt(directory) }
        }
        if tree.size > 0, let actual = try? ledger.entryID(at: tree.size - 1), let stored = try? tree.leafHash(at: tree.size - 1),
            stored != actual
        {
            guard stored == .zero else {
                throw LedgerError(.damagedLog, "The Merkle tree of \(ledger.directory) recorded another entry id for entry \(tree.size - 1) than its record in the log now has: the record was changed after it was written, or the tree file is damaged. The ledger refuses to write until an operator acts: run `ledger verify \(ledger.directory)`. \(Repair.evidenceRemedy(ledger.directory, "tree"))")
            }
            // An unwritten (zero) block left by a power loss: a cache to rebuild.
            tree = try cache { () throws(MerkleTreeError) in try rebuilt(directory) }
        }
        // A record that cannot be read now stops the open: a tree left shorter than the log
        // would take the next append's leaves at the wrong positions.
        var missing: [Digest] = []
        if tree.size < ledger.count {
            try ledger.forEachRecord(from: tree.size) { (stored) throws(LedgerError) -> Bool in
                missing.append(stored.entryID)
                return true
            }
        }
        tree = try cache { () throws(MerkleTreeError) in
            try tree.append(leafHashes: missing)
            try tree.flush()
            return tree
        }
        guard tree.size != ledger.count || (try? tree.root(size: ledger.count)) != range.root else { return tree }
        // Interior nodes are a cache: rebuild them from the log's entry ids.
        var all: [Digest] = []
        try ledger.forEachRecord { (stored) throws(LedgerError) -> Bool in
            all.append(stored.entryID)
            return true
        }
        return try cache { () throws(MerkleTreeError) in
            let fresh = try rebuilt(directory)
            try fresh.append(leafHashes: all)
            try fresh.flush()
            return fresh
        }
    }

    /// Empty level files, replacing the old ones by new files rather than truncating them in
    /// place, so that a reader that has mapped the old ones keeps reading them safely.
    private static func rebuilt(_ directory: String) throws(MerkleTreeError) -> MerkleTreeFiles {
        try MerkleTreeFiles.removeLevelFiles(in: directory)
        return try MerkleTreeFiles(directory: directory)
    }
}
