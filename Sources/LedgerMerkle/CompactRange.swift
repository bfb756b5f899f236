public import LedgerCrypto

/// The roots of the perfect subtrees that make up a tree of some size, left to right: enough
/// to extend the tree leaf by leaf and to compute its root, in O(log n) memory.
///
/// A tree of size n is the perfect subtrees of n's binary decomposition (RFC 9162 §2.1.1 splits
/// at the largest power of two below n, recursively); its root folds them from the right.
/// Verification uses this to recompute roots while streaming a log, and to extend a tree
/// trusted at one size with newly read leaves.
public struct CompactRange: Sendable, Hashable {
    /// The subtree roots, largest (leftmost) first, with their heights.
    public private(set) var subtrees: [(height: Int, hash: Digest)] = []
    /// The number of leaves covered.
    public private(set) var size: UInt64 = 0

    /// An empty range.
    public init() {}

    /// The range of the first `size` leaves of a stored tree: O(log n) node reads.
    public init(_ tree: some MerkleNodeReader, size: UInt64) throws(MerkleTreeError) {
        guard size <= tree.size else { throw .sizeBeyondTree(size: size, treeSize: tree.size) }
        var start: UInt64 = 0
        for height in stride(from: 63, through: 0, by: -1) where size >> UInt64(height) & 1 == 1 {
            subtrees.append((height, try tree.hash(level: height, index: start >> UInt64(height))))
            start += 1 << UInt64(height)
        }
        self.size = size
    }

    /// Adds one leaf hash on the right.
    public mutating func append(_ leafHash: Digest) {
        append(leafHash) { _, _, _ in }
    }

    /// Adds one leaf hash on the right and reports every node it completes, leaf first, as
    /// (level, index, hash): the node (level k, index i) roots leaves i·2^k ..< (i+1)·2^k.
    public mutating func append(_ leafHash: Digest, completing: (Int, UInt64, Digest) -> Void) {
        size += 1
        var node = (height: 0, hash: leafHash)
        completing(0, size - 1, leafHash)
        while let last = subtrees.last, last.height == node.height {
            subtrees.removeLast()
            node = (node.height + 1, RFC6962.nodeHash(last.hash, node.hash))
            completing(node.height, (size >> UInt64(node.height)) - 1, node.hash)
        }
        subtrees.append(node)
    }

    /// The RFC 6962 root of the leaves covered (the empty-tree root for none).
    public var root: Digest {
        guard var root = subtrees.last?.hash else { return RFC6962.emptyRoot }
        for subtree in subtrees.dropLast().reversed() {
            root = RFC6962.nodeHash(subtree.hash, root)
        }
        return root
    }

    public static func == (a: CompactRange, b: CompactRange) -> Bool {
        a.size == b.size && a.subtrees.map(\.hash) == b.subtrees.map(\.hash)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(size)
        for subtree in subtrees { hasher.combine(subtree.hash) }
    }
}
