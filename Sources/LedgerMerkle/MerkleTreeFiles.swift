public import LedgerCrypto

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A Merkle tree whose complete-subtree hashes are persisted in a directory, one file per level.
///
/// File `level-NN` (two decimal digits, from `level-00`) is the array of the 32-byte hashes of
/// level `NN`: node `i` at byte offset `32·i`. Level 0 holds the leaf hashes, so the leaf count is the
/// length of `level-00` divided by 32, and level `k` holds exactly `size >> k` nodes. The files are a
/// cache of the log's leaves: if they are lost or damaged, they are rebuilt from the log.
///
/// Appends are buffered in memory and written in large chunks, with no system call per leaf. Nodes
/// still in the buffers are read from memory, so answers never depend on whether they were written.
/// ``flush()`` writes the buffers; ``sync()`` writes them and makes them durable with `fsync`. The
/// buffers are also flushed when full and when the value is released.
///
/// Opening checks that the lengths of the level files fit one leaf count; if not, it throws
/// ``MerkleTreeError/inconsistentLevelFile(path:length:expected:)`` naming the file, and the caller
/// rebuilds (``removeLevelFiles(in:)`` then append every leaf hash again).
///
/// Not thread-safe: one owner at a time (the store's single writer).
public final class MerkleTreeFiles: MerkleNodeStore {
    /// The directory holding the level files.
    public let directory: String
    /// The number of leaves, including those still buffered.
    public private(set) var size: UInt64

    private var levels: [LevelFile] = []
    /// `frontier[k]` is the last node of level `k` while that level has an odd count: the left sibling
    /// waiting for its right. A compact range of the whole tree, so appends never read the files.
    private var frontier = [Digest](repeating: .zero, count: 64)
    private let leafBufferCapacity: Int
    private var directoryNeedsSync = false

    private struct LevelFile {
        let path: String
        var descriptor: Int32
        /// Nodes written to the file.
        var written: UInt64
        /// Nodes appended after those, still in `buffer`.
        var buffered: Int
        let buffer: UnsafeMutableRawBufferPointer
        /// Written or truncated since the last `fsync`.
        var needsSync: Bool
    }

    /// Opens the tree in `directory`, creating the directory (one level) and `level-00` if missing.
    ///
    /// - Parameters:
    ///   - directory: where the level files are.
    ///   - bufferedLeaves: how many leaf hashes to keep in memory before writing; higher levels get
    ///     proportionally smaller buffers. The default, 32 768, is 1 MiB for level 0.
    /// - Throws: ``MerkleTreeError/inconsistentLevelFile(path:length:expected:)`` if the level files do
    ///   not fit together, ``MerkleTreeError/io(operation:path:errno:)`` if the directory or a file
    ///   cannot be created, opened or read.
    public init(directory: String, bufferedLeaves: Int = 32_768) throws(MerkleTreeError) {
        precondition(bufferedLeaves > 0, "bufferedLeaves must be positive")
        self.directory = directory
        self.leafBufferCapacity = bufferedLeaves
        self.size = 0

        if mkdir(directory, 0o755) == 0 {
            directoryNeedsSync = true
        } else if errno != EEXIST {
            throw .io(operation: "mkdir", path: directory, errno: errno)
        }

        // Open every level file that exists, and check all their lengths before using any.
        var descriptors = [Int32](repeating: -1, count: 64)
        var lengths = [Int64](repeating: 0, count: 64)
        defer {
            // On a throw, close whatever was opened; on success the descriptors were moved into `levels`.
            for descriptor in descriptors where descriptor >= 0 {
                _ = close(descriptor)
            }
        }
        for level in 0..<64 {
            let path = Self.path(directory: directory, level: level)
            // Never through a symbolic link: the tree lives inside the ledger directory.
            let flags = O_RDWR | O_CLOEXEC | O_NOFOLLOW | (level == 0 ? O_CREAT : 0)
            let descriptor = open(path, flags, 0o644)
            if descriptor < 0 {
                if errno == ENOENT && level > 0 { continue }
                throw .io(operation: "open", path: path, errno: errno)
            }
            descriptors[level] = descriptor
            lengths[level] = try Self.length(of: descriptor, path: path)
        }
        let leafBytes = lengths[0]
        guard leafBytes % 32 == 0 else {
            throw .inconsistentLevelFile(
                path: Self.path(directory: directory, level: 0), length: leafBytes, expected: leafBytes - leafBytes % 32)
        }
        let size = UInt64(leafBytes / 32)
        for level in 1..<64 {
            let expected = Int64(size >> UInt64(level)) * 32
            guard lengths[level] == expected else {
                throw .inconsistentLevelFile(
                    path: Self.path(directory: directory, level: level), length: lengths[level], expected: expected)
            }
        }

        self.size = size
        let levelCount = 64 - size.leadingZeroBitCount
        for level in 0..<max(levelCount, 1) {
            let file = makeLevel(level)
            levels.append(
                LevelFile(path: file.path, descriptor: descriptors[level], written: size >> UInt64(level),
                          buffered: 0, buffer: file.buffer, needsSync: false))
            descriptors[level] = -1
        }
        try loadFrontier()
    }

    deinit {
        // Best effort: a failure here leaves the files short, which the next open detects.
        try? flush()
        for level in levels {
            if level.descriptor >= 0 { _ = close(level.descriptor) }
            level.buffer.deallocate()
        }
    }

    /// The root of the complete subtree of `2^level` leaves starting at leaf `index << level`: from
    /// memory if still buffered, otherwise one `pread`.
    /// - Throws: ``MerkleTreeError/nodeOutOfRange(level:index:count:)`` unless `index < size >> level`,
    ///   ``MerkleTreeError/io(operation:path:errno:)`` if the read fails,
    ///   ``MerkleTreeError/inconsistentLevelFile(path:length:expected:)`` if the file was cut short.
    public func hash(level: Int, index: UInt64) throws(MerkleTreeError) -> Digest {
        let count = level >= 0 && level < 64 ? size >> UInt64(level) : 0
        guard index < count else { throw .nodeOutOfRange(level: level, index: index, count: count) }
        let file = levels[level]
        if index >= file.written {
            return Digest(loadingFrom: UnsafeRawBufferPointer(file.buffer), at: Int(index - file.written) * 32)
        }
        return try withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) {
            (node) throws(MerkleTreeError) -> Digest in
            guard let base = node.baseAddress else { return .zero }
            var done = 0
            while done < 32 {
                let n = pread(file.descriptor, base + done, 32 - done, off_t(index * 32) + off_t(done))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw .io(operation: "read", path: file.path, errno: errno)
                }
                if n == 0 {
                    let length = (try? Self.length(of: file.descriptor, path: file.path)) ?? 0
                    throw .inconsistentLevelFile(path: file.path, length: length, expected: Int64(count) * 32)
                }
                done += n
            }
            return Digest(loadingFrom: UnsafeRawBufferPointer(node))
        }
    }

    /// Appends a leaf hash and the hashes of the complete subtrees it finishes (on average one node
    /// hash per leaf), in memory; writes the buffers first if they are full.
    /// - Throws: ``MerkleTreeError/io(operation:path:errno:)`` if writing full buffers fails; the tree is
    ///   then unchanged.
    public func append(leafHash: Digest) throws(MerkleTreeError) {
        if levels[0].buffered == leafBufferCapacity {
            try flush()
        }
        var node = leafHash
        var level = 0
        var index = size
        bufferNode(node, level: 0)
        // An odd index is a right child: with its waiting left sibling it completes the parent.
        while index & 1 == 1 {
            node = RFC6962.nodeHash(frontier[level], node)
            level += 1
            index >>= 1
            bufferNode(node, level: level)
        }
        frontier[level] = node
        size += 1
    }

    /// Appends leaf hashes in order, as ``append(leafHash:)`` does one by one.
    /// - Throws: ``MerkleTreeError/io(operation:path:errno:)``; the hashes before the failing write are
    ///   appended.
    public func append(leafHashes: some Sequence<Digest>) throws(MerkleTreeError) {
        for leafHash in leafHashes {
            try append(leafHash: leafHash)
        }
    }

    /// Writes all buffered nodes to their level files (not yet durable: see ``sync()``).
    /// - Throws: ``MerkleTreeError/io(operation:path:errno:)``.
    public func flush() throws(MerkleTreeError) {
        for level in levels.indices where levels[level].buffered > 0 {
            try openIfNeeded(level)
            let file = levels[level]
            try Self.writeAll(
                descriptor: file.descriptor, bytes: UnsafeRawBufferPointer(rebasing: file.buffer[..<(file.buffered * 32)]),
                offset: off_t(file.written * 32), path: file.path)
            levels[level].written += UInt64(file.buffered)
            levels[level].buffered = 0
            levels[level].needsSync = true
        }
    }

    /// Writes all buffered nodes and makes every level file, and new directory entries, durable.
    /// - Throws: ``MerkleTreeError/io(operation:path:errno:)``.
    public func sync() throws(MerkleTreeError) {
        try flush()
        for level in levels.indices where levels[level].needsSync {
            guard fsync(levels[level].descriptor) == 0 else {
                throw .io(operation: "fsync", path: levels[level].path, errno: errno)
            }
            levels[level].needsSync = false
        }
        if directoryNeedsSync {
            let descriptor = open(directory, O_RDONLY | O_CLOEXEC | O_DIRECTORY | O_NOFOLLOW)
            guard descriptor >= 0 else { throw .io(operation: "open", path: directory, errno: errno) }
            defer { _ = close(descriptor) }
            guard fsync(descriptor) == 0 else { throw .io(operation: "fsync", path: directory, errno: errno) }
            directoryNeedsSync = false
        }
    }

    /// Cuts the tree back to its first `newSize` leaves: drops buffered nodes beyond it and truncates
    /// the level files. Durable after the next ``sync()``.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `newSize > size`,
    ///   ``MerkleTreeError/io(operation:path:errno:)`` if truncating or reading fails.
    public func truncate(toSize newSize: UInt64) throws(MerkleTreeError) {
        guard newSize <= size else { throw .sizeBeyondTree(size: newSize, treeSize: size) }
        for level in levels.indices {
            let keep = newSize >> UInt64(level)
            if keep >= levels[level].written {
                levels[level].buffered = Int(keep - levels[level].written)
            } else {
                let file = levels[level]
                guard ftruncate(file.descriptor, off_t(keep * 32)) == 0 else {
                    throw .io(operation: "ftruncate", path: file.path, errno: errno)
                }
                levels[level].written = keep
                levels[level].buffered = 0
                levels[level].needsSync = true
            }
        }
        size = newSize
        try loadFrontier()
    }

    /// Removes the level files from `directory` (not the directory), so that the tree can be rebuilt
    /// from the log's leaves. Missing files are fine.
    /// - Throws: ``MerkleTreeError/io(operation:path:errno:)``.
    public static func removeLevelFiles(in directory: String) throws(MerkleTreeError) {
        for level in 0..<64 {
            let path = path(directory: directory, level: level)
            if unlink(path) != 0 && errno != ENOENT {
                throw .io(operation: "unlink", path: path, errno: errno)
            }
        }
    }

    // MARK: - Internals

    /// The file of `level` in a tree directory (`level-00` holds the leaves).
    public static func path(directory: String, level: Int) -> String {
        directory + (level < 10 ? "/level-0" : "/level-") + String(level)
    }

    /// A level's file path and buffer: `bufferedLeaves >> level` nodes plus 2. Between two flushes
    /// level 0 gets at most `bufferedLeaves` nodes, so level `k` gets at most `(bufferedLeaves >> k) + 1`.
    private func makeLevel(_ level: Int) -> (path: String, buffer: UnsafeMutableRawBufferPointer) {
        let nodes = (leafBufferCapacity >> level) + 2
        return (
            Self.path(directory: directory, level: level),
            UnsafeMutableRawBufferPointer.allocate(byteCount: nodes * 32, alignment: 8)
        )
    }

    @inline(__always)
    private func bufferNode(_ node: Digest, level: Int) {
        if level == levels.count {
            let file = makeLevel(level)
            levels.append(
                LevelFile(path: file.path, descriptor: -1, written: 0, buffered: 0, buffer: file.buffer,
                          needsSync: false))
        }
        let offset = levels[level].buffered * 32
        precondition(offset + 32 <= levels[level].buffer.count, "level buffer overflow")
        node.store(into: levels[level].buffer, at: offset)
        levels[level].buffered += 1
    }

    private func openIfNeeded(_ level: Int) throws(MerkleTreeError) {
        guard levels[level].descriptor < 0 else { return }
        let descriptor = open(levels[level].path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
        guard descriptor >= 0 else { throw .io(operation: "open", path: levels[level].path, errno: errno) }
        levels[level].descriptor = descriptor
        directoryNeedsSync = true
    }

    private func loadFrontier() throws(MerkleTreeError) {
        for level in 0..<64 where (size >> UInt64(level)) & 1 == 1 {
            frontier[level] = try hash(level: level, index: (size >> UInt64(level)) - 1)
        }
    }

    private static func length(of descriptor: Int32, path: String) throws(MerkleTreeError) -> Int64 {
        var status = stat()
        guard fstat(descriptor, &status) == 0 else { throw .io(operation: "fstat", path: path, errno: errno) }
        return Int64(status.st_size)
    }

    private static func writeAll(descriptor: Int32, bytes: UnsafeRawBufferPointer, offset: off_t, path: String)
        throws(MerkleTreeError)
    {
        guard let base = bytes.baseAddress else { return }
        var done = 0
        while done < bytes.count {
            let n = pwrite(descriptor, base + done, bytes.count - done, offset + off_t(done))
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(operation: "write", path: path, errno: errno)
            }
            done += n
        }
    }
}
