public import LedgerCrypto

/// A Merkle tree whose complete-subtree hashes live in memory, one array per level.
///
/// For tests, for verifiers that rebuild a tree from exported leaves, and for small logs. A tree of
/// n leaves holds about 2n hashes (64 bytes per leaf).
public struct InMemoryMerkleTree: MerkleNodeStore, Hashable, Sendable {
    /// `levels[k][i]` is the root of the complete subtree of `2^k` leaves starting at leaf `i·2^k`.
    private var levels: [[Digest]] = [[]]

    /// An empty tree.
    public init() {}

    /// A tree of the given leaf hashes, in order.
    public init(leafHashes: some Sequence<Digest>) {
        for leafHash in leafHashes {
            appendLeafHash(leafHash)
        }
    }

    /// The number of leaves.
    public var size: UInt64 { UInt64(levels[0].count) }

    /// The root of the complete subtree of `2^level` leaves starting at leaf `index << level`.
    /// - Throws: ``MerkleTreeError/nodeOutOfRange(level:index:count:)`` unless `index < size >> level`.
    public func hash(level: Int, index: UInt64) throws(MerkleTreeError) -> Digest {
        let count = level >= 0 && level < levels.count ? UInt64(levels[level].count) : 0
        guard index < count else { throw .nodeOutOfRange(level: level, index: index, count: count) }
        return levels[level][Int(index)]
    }

    /// Appends a leaf hash and the hashes of the complete subtrees it finishes. Never throws.
    public mutating func append(leafHash: Digest) {
        appendLeafHash(leafHash)
    }

    /// Cuts the tree back to its first `newSize` leaves.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `newSize > size`.
    public mutating func truncate(toSize newSize: UInt64) throws(MerkleTreeError) {
        guard newSize <= size else { throw .sizeBeyondTree(size: newSize, treeSize: size) }
        for level in levels.indices {
            let keep = Int(newSize >> UInt64(level))
            levels[level].removeLast(levels[level].count - keep)
        }
        while levels.count > 1 && levels[levels.count - 1].isEmpty {
            levels.removeLast()
        }
    }

    private mutating func appendLeafHash(_ leafHash: Digest) {
        var node = leafHash
        var level = 0
        levels[0].append(node)
        // A level whose count became even has just completed a pair: their parent is complete too.
        while levels[level].count % 2 == 0 {
            node = RFC6962.nodeHash(levels[level][levels[level].count - 2], node)
            level += 1
            if level == levels.count {
                levels.append([])
            }
            levels[level].append(node)
        }
    }
}
