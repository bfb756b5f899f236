#if canImport(Glibc)
import Glibc
#endif
import LedgerCrypto
import LedgerStore
import Synchronization

/// An array of fixed-width integers that a snapshot leaves on disk until it is read.
///
/// A state read from a snapshot is as large as the ledger it indexes, but a replay of the
/// records after the snapshot, or a query about one fact, reads a few places of it. So a
/// column decoded from a snapshot reads nothing at first: each block of ``blockBytes`` is read
/// and checked against its SHA-256 (kept in the snapshot's checksummed part) the first time
/// one of its elements is read or written. Reading a snapshot thus costs what is read of it,
/// not its size.
///
/// A block that cannot be read or does not match its hash reads as zeros, and the problem is
/// kept by the snapshot's ``SnapshotSource``: whoever reads the state checks it before
/// answering (the replay engine replays again without the snapshot; a query throws).
///
/// Columns are values: a copy shares its elements until either is changed. Reading a block in
/// does not change the value, so it happens in place for every copy, under a lock, and reads
/// may come from several threads at once.
struct Column<T: FixedWidthInteger & Sendable & Codable>: Sendable {
    /// The size of the blocks a snapshot hashes and reads one at a time.
    static var blockBytes: Int { 1024 }

    private var storage: ColumnStorage<T>

    /// An empty column.
    init() {
        storage = ColumnStorage(capacity: 0)
    }

    /// `count` copies of `value`.
    init(repeating value: T, count: Int) {
        storage = ColumnStorage(capacity: count)
        storage.base.initialize(repeating: value, count: count)
        storage.count = count
    }

    init(_ elements: some Collection<T>) {
        storage = ColumnStorage(capacity: elements.count)
        _ = UnsafeMutableBufferPointer(start: storage.base, count: elements.count).initialize(from: elements)
        storage.count = elements.count
    }

    /// A column of `count` elements stored in `source` at byte `offset`, `hashes` holding the
    /// SHA-256 of each block; read a block at a time when used. Room is left for an eighth
    /// more, which costs nothing until written: a state read from a snapshot grows by the
    /// records after it.
    init(count: Int, source: SnapshotSource, offset: UInt64, hashes: [UInt8]) {
        storage = ColumnStorage(capacity: count + count / 8)
        storage.count = count
        storage.attach(source: source, offset: offset, hashes: hashes)
    }

    var count: Int {
        @inline(__always) get { storage.count }
    }

    subscript(i: Int) -> T {
        @inline(__always) get {
            precondition(i >= 0 && i < storage.count, "column index out of range")
            return storage.element(i)
        }
        @inline(__always) set {
            precondition(i >= 0 && i < storage.count, "column index out of range")
            makeUnique()
            storage.setElement(i, newValue)
        }
    }

    @inline(__always) mutating func append(_ value: T) {
        reserve(1)
        storage.base[storage.count] = value
        storage.count += 1
    }

    mutating func append(contentsOf elements: UnsafeBufferPointer<T>) {
        reserve(elements.count)
        if let start = elements.baseAddress { (storage.base + storage.count).update(from: start, count: elements.count) }
        storage.count += elements.count
    }

    /// Makes the storage this column's own, with room for `extra` more elements.
    @inline(__always) private mutating func reserve(_ extra: Int) {
        makeUnique()
        if storage.count + extra > storage.capacity { storage.grow(to: Swift.max(16, storage.capacity * 2, storage.count + extra)) }
    }

    /// Calls `body` with `range` of the elements, contiguous, read in first.
    func withElements<R>(in range: Range<Int>, _ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
        precondition(range.lowerBound >= 0 && range.upperBound <= storage.count, "column range out of bounds")
        return try storage.withElements(in: range, body)
    }

    /// Every element, read in.
    var elements: [T] { withElements(in: 0..<count) { Array($0) } }

    /// How many blocks have been read from the snapshot so far.
    var blocksRead: Int { storage.blocksRead }

    @inline(__always) private mutating func makeUnique() {
        if !isKnownUniquelyReferenced(&storage) { storage = storage.copy(capacity: storage.capacity) }
    }
}

extension Column: RandomAccessCollection {
    var startIndex: Int { 0 }
    var endIndex: Int { count }
}

extension Column: Equatable {
    static func == (a: Column, b: Column) -> Bool {
        a.count == b.count && a.withElements(in: 0..<a.count) { x in b.withElements(in: 0..<b.count) { y in x.elementsEqual(y) } }
    }
}

/// A column's elements: a buffer with room for `capacity`, of which `count` are in use, and
/// the blocks of them not yet read from a snapshot.
///
/// While some are unread, the blocks read so far are packed one after another in arenas of
/// their own rather than at their places in the buffer: a replay touches blocks all over a
/// large column, and placing each in the buffer would cost the system a fresh page (and its
/// zeroing) for every block. The buffer holds only the elements appended since; once every
/// block is read, or a caller needs the elements contiguous, they move to the buffer.
final class ColumnStorage<T: FixedWidthInteger & Sendable & Codable>: @unchecked Sendable {
    // Safe to share: `base`, `count` and `capacity` change only while the storage is uniquely
    // referenced (the column's copy on write), and blocks are read in under `pending`'s lock.
    private(set) var base: UnsafeMutablePointer<T>
    private(set) var capacity: Int
    var count = 0
    /// Whether every element is in the buffer: read on every access, so an atomic, not the lock.
    private let complete = Atomic<Bool>(true)
    /// The elements the snapshot holds, which are in blocks until complete (set before the
    /// storage is shared).
    private var stored = 0
    private let pending = Mutex<PendingBlocks?>(nil)
    /// How many blocks have been read from the snapshot (under `pending`'s lock).
    private var blocksReadCount = 0

    var blocksRead: Int { pending.withLock { _ in blocksReadCount } }

    /// The blocks of a column still in the snapshot file, and those read so far.
    private struct PendingBlocks {
        let source: SnapshotSource
        let offset: UInt64
        let hashes: [UInt8]
        /// Each block's place among those read, or -1 if it is unread.
        var places: [Int32]
        var arenas: [UnsafeMutableRawPointer] = []
        var read = 0

        static var arenaBlocks: Int { 64 }

        func address(of place: Int32) -> UnsafeMutableRawPointer {
            arenas[Int(place) / Self.arenaBlocks] + Int(place) % Self.arenaBlocks * Column<T>.blockBytes
        }
    }

    private static var perBlock: Int { Column<T>.blockBytes / MemoryLayout<T>.size }

    init(capacity: Int) {
        // Large buffers come straight from the system, zero pages untouched until written: the
        // part of a column still in its snapshot costs no memory.
        self.capacity = capacity
        base = Self.reallocate(nil, capacity)
    }

    /// Room for `capacity` elements, keeping those at `old` (moved by the system, not copied,
    /// for the large buffers it maps: growing a column of a million entries would otherwise hold
    /// it twice for a moment).
    private static func reallocate(_ old: UnsafeMutablePointer<T>?, _ capacity: Int) -> UnsafeMutablePointer<T> {
        guard let memory = realloc(old, max(capacity, 1) * MemoryLayout<T>.stride) else {
            fatalError("out of memory for a column of \(capacity) elements")
        }
        return memory.bindMemory(to: T.self, capacity: max(capacity, 1))
    }

    /// Makes room for `capacity` elements; only while uniquely referenced.
    func grow(to capacity: Int) {
        base = Self.reallocate(base, capacity)
        self.capacity = capacity
    }

    deinit {
        free(base)
        pending.withLock { $0?.arenas.forEach { $0.deallocate() } }
    }

    /// Leaves the first `count` elements in `source` at `offset`, to be read a block at a time.
    func attach(source: SnapshotSource, offset: UInt64, hashes: [UInt8]) {
        let blocks = (count + Self.perBlock - 1) / Self.perBlock
        guard blocks > 0 else { return }
        stored = count
        pending.withLock { $0 = PendingBlocks(source: source, offset: offset, hashes: hashes, places: [Int32](repeating: -1, count: blocks)) }
        complete.store(false, ordering: .releasing)
    }

    @inline(__always) private func inBuffer(_ i: Int) -> Bool { i >= stored || complete.load(ordering: .acquiring) }

    @inline(__always) func element(_ i: Int) -> T {
        inBuffer(i) ? base[i] : inBlock(i, setting: nil)
    }

    @inline(__always) func setElement(_ i: Int, _ value: T) {
        if inBuffer(i) { base[i] = value } else { _ = inBlock(i, setting: value) }
    }

    /// Element `i` where it is, in its block (read in if need be), set to `value` if given.
    @inline(never) private func inBlock(_ i: Int, setting value: T?) -> T {
        pending.withLock { pending in
            var at = base + i
            // Completed since checked, the element is in the buffer.
            if pending != nil {
                let block = i / Self.perBlock
                if pending!.places[block] < 0 { read(block, &pending!) }
                at = pending!.address(of: pending!.places[block]).assumingMemoryBound(to: T.self) + i % Self.perBlock
            }
            if let value { at.pointee = value }
            return at.pointee
        }
    }

    /// Calls `body` with `range` of the elements, contiguous: a short range is gathered from
    /// its blocks; a longer one moves every element to the buffer first.
    func withElements<R>(in range: Range<Int>, _ body: (UnsafeBufferPointer<T>) throws -> R) rethrows -> R {
        if !range.isEmpty, !inBuffer(range.lowerBound) {
            guard range.count > 4 * Self.perBlock else { return try range.map(element).withUnsafeBufferPointer(body) }
            completeAll()
        }
        return try body(UnsafeBufferPointer(start: base + range.lowerBound, count: range.count))
    }

    /// Moves every element to the buffer, reading the blocks still unread (runs of them a
    /// megabyte at a time).
    func completeAll() {
        guard !complete.load(ordering: .acquiring) else { return }
        pending.withLock { pending in
            guard let blocks = pending else { return }
            var block = 0
            while block < blocks.places.count {
                var end = block + 1
                if blocks.places[block] >= 0 {
                    bytes(of: block..<end).copyMemory(from: UnsafeRawBufferPointer(start: blocks.address(of: blocks.places[block]), count: bytes(of: block..<end).count))
                } else {
                    while end < blocks.places.count, blocks.places[end] < 0, (end - block) * Column<T>.blockBytes < 1 << 20 { end += 1 }
                    read(block..<end, of: blocks, into: bytes(of: block..<end))
                }
                block = end
            }
            blocks.arenas.forEach { $0.deallocate() }
            pending = nil
            complete.store(true, ordering: .releasing)
        }
    }

    /// Where `blocks` go in the buffer.
    private func bytes(of blocks: Range<Int>) -> UnsafeMutableRawBufferPointer {
        let first = blocks.lowerBound * Self.perBlock
        return UnsafeMutableRawBufferPointer(start: base + first, count: (min(blocks.upperBound * Self.perBlock, stored) - first) * MemoryLayout<T>.size)
    }

    /// Reads `block` into the next place of the arenas.
    private func read(_ block: Int, _ pending: inout PendingBlocks) {
        if pending.read % PendingBlocks.arenaBlocks == 0 {
            pending.arenas.append(.allocate(byteCount: PendingBlocks.arenaBlocks * Column<T>.blockBytes, alignment: 64))
        }
        let place = Int32(pending.read)
        pending.read += 1
        pending.places[block] = place
        read(block..<(block + 1), of: pending, into: UnsafeMutableRawBufferPointer(start: pending.address(of: place), count: bytes(of: block..<(block + 1)).count))
    }

    /// Reads `blocks` into `bytes` and checks each against its hash: a block that cannot be read
    /// or does not match reads as zeros, and the problem is kept by the source.
    private func read(_ blocks: Range<Int>, of pending: PendingBlocks, into bytes: UnsafeMutableRawBufferPointer) {
        blocksReadCount += blocks.count
        let at = pending.offset + UInt64(blocks.lowerBound * Column<T>.blockBytes)
        if let problem = pending.source.read(into: bytes, at: at) {
            bytes.initializeMemory(as: UInt8.self, repeating: 0)
            pending.source.fail(problem)
            return
        }
        for block in blocks {
            let start = (block - blocks.lowerBound) * Column<T>.blockBytes
            let piece = UnsafeMutableRawBufferPointer(rebasing: bytes[start..<min(bytes.count, start + Column<T>.blockBytes)])
            let expected = pending.hashes.withUnsafeBytes { Digest(loadingFrom: $0, at: block * 32) }
            guard SHA256.hash(UnsafeRawBufferPointer(piece)) != expected else { continue }
            piece.initializeMemory(as: UInt8.self, repeating: 0)
            pending.source.fail("its bytes \(at + UInt64(start))..<\(at + UInt64(start + piece.count)) do not match their checksum")
        }
    }

    /// A copy of the elements, all in its buffer, with room for `capacity`.
    func copy(capacity: Int) -> ColumnStorage {
        completeAll()
        let copy = ColumnStorage(capacity: capacity)
        copy.base.update(from: base, count: count)
        copy.count = count
        return copy
    }
}

/// Where a snapshot's columns wait to be read (the file, or its bytes in memory), and the first
/// problem met reading them or following what they hold: a state read from a damaged snapshot
/// must not answer. A snapshot file found damaged is removed at once (it is only a cache), so
/// that no later command reads it again.
final class SnapshotSource: @unchecked Sendable {
    // Safe to share: `pread` on one descriptor from several threads, and the problem under a lock.
    private let file: FileDescriptor?
    private let bytes: [UInt8]
    /// The snapshot file's path (or a description of the bytes), for messages.
    let name: String
    /// Its size in bytes, when opened.
    let size: UInt64
    private let problem = Mutex<(what: String, removed: Bool)?>(nil)
    /// Snapshots written from states read from this one: they carry its damage.
    private let derived = Mutex<[String]>([])

    init(file: FileDescriptor) {
        self.file = file
        bytes = []
        name = file.path
        size = (try? file.size) ?? 0
    }

    init(bytes: [UInt8], name: String) {
        file = nil
        self.bytes = bytes
        self.name = name
        size = UInt64(bytes.count)
    }

    /// Fills `buffer` from byte `offset`; what went wrong, or `nil`.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) -> String? {
        if let file {
            guard let got = FileDescriptor.read(file.fd, into: buffer, at: offset) else { return "it cannot be read at byte \(offset) (\(String(cString: strerror(errno))))" }
            return got == buffer.count ? nil : "it ends at byte \(offset + UInt64(got)), before the end of a column"
        }
        guard offset <= UInt64(bytes.count), UInt64(buffer.count) <= UInt64(bytes.count) - offset else { return "it ends before the end of a column" }
        bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(offset)..<(Int(offset) + buffer.count)])) }
        return nil
    }

    /// Keeps `what` as the snapshot's problem, unless one is kept already, and removes the file
    /// and the snapshots written from it.
    func fail(_ what: String) {
        problem.withLock {
            guard $0 == nil else { return }
            $0 = (what, removeFile())
            for path in derived.withLock({ $0 }) { FileSystem.remove(path) }
        }
    }

    /// Notes that the snapshot at `path` was written from a state read from this one: damage
    /// met later removes it too, and if damage was met already, it is removed now.
    func derive(_ path: String) {
        derived.withLock { $0.append(path) }
        if damage != nil { FileSystem.remove(path) }
    }

    /// Removes the file if its path still names it (not a newer snapshot written in its place);
    /// whether the path no longer names it.
    private func removeFile() -> Bool {
        guard let file else { return false }
        var opened = stat()
        var named = stat()
        guard fstat(file.fd, &opened) == 0 else { return false }
        guard stat(file.path, &named) == 0 else { return errno == ENOENT }
        guard opened.st_dev == named.st_dev, opened.st_ino == named.st_ino else { return true }
        return unlink(file.path) == 0
    }

    /// The first problem met, if any.
    var damage: String? { problem.withLock { $0?.what } }

    /// Whether the damaged file is gone from its path.
    var removed: Bool { problem.withLock { $0?.removed ?? false } }

    /// What to tell whoever asked for an answer from a damaged snapshot, if it is damaged.
    var refusal: String? {
        problem.withLock { problem in
            problem.map {
                "The snapshot \(name) is damaged (\($0.what)), so no answer is given from it. "
                    + ($0.removed ? "It has been removed: run the command again" : "Delete it and run the command again, or run it with --no-snapshots")
                    + "; snapshots are only a cache, and the answer is then replayed from the log. Damage to a file the ledger wrote can mean a failing disk."
            }
        }
    }
}
