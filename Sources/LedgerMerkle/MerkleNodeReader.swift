public import LedgerCrypto

/// Read access to the stored hashes of complete subtrees of an RFC 6962 tree.
///
/// Node `(level k, index i)` is the root of the complete subtree of `2^k` leaves that starts at
/// leaf `i·2^k`; level 0 holds the leaf hashes. A tree of `size` leaves stores `size >> k` nodes at
/// level `k`. From these alone, the root at any size up to ``size`` and every inclusion and
/// consistency proof take O(log n) node reads, and leaves are never reread: a subtree of a size that
/// is not a power of two is the fold of its complete parts.
public protocol MerkleNodeReader {
    /// The number of leaves.
    var size: UInt64 { get }

    /// The root of the complete subtree of `2^level` leaves starting at leaf `index << level`.
    /// - Throws: ``MerkleTreeError/nodeOutOfRange(level:index:count:)`` unless
    ///   `index < size >> level`; ``MerkleTreeError/io(operation:path:errno:)`` from storage.
    func hash(level: Int, index: UInt64) throws(MerkleTreeError) -> Digest
}

/// A node store that grows leaf by leaf and can be cut back.
public protocol MerkleNodeStore: MerkleNodeReader {
    /// Appends a leaf hash and stores every complete subtree it finishes (on average one node hash
    /// per leaf).
    mutating func append(leafHash: Digest) throws(MerkleTreeError)

    /// Cuts the tree back to its first `newSize` leaves, as when a log's torn tail is cut.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `newSize > size`.
    mutating func truncate(toSize newSize: UInt64) throws(MerkleTreeError)
}

extension MerkleNodeStore {
    /// Appends leaf hashes in order.
    public mutating func append(leafHashes: some Sequence<Digest>) throws(MerkleTreeError) {
        for leafHash in leafHashes {
            try append(leafHash: leafHash)
        }
    }
}

extension MerkleNodeReader {
    /// The leaf hash of leaf `index`.
    /// - Throws: ``MerkleTreeError/indexBeyondTreeSize(index:size:)`` unless `index < size`.
    public func leafHash(at index: UInt64) throws(MerkleTreeError) -> Digest {
        guard index < size else { throw .indexBeyondTreeSize(index: index, size: size) }
        return try hash(level: 0, index: index)
    }

    /// The root hash of the tree of the first `treeSize` leaves (RFC 9162 §2.1.1), from at most 64
    /// node reads. The empty tree has root ``RFC6962/emptyRoot``.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `treeSize > size`.
    public func root(size treeSize: UInt64) throws(MerkleTreeError) -> Digest {
        guard treeSize <= size else { throw .sizeBeyondTree(size: treeSize, treeSize: size) }
        guard treeSize > 0 else { return RFC6962.emptyRoot }
        return try subtreeHash(start: 0, end: treeSize)
    }

    /// The root hash of the whole tree.
    public func root() throws(MerkleTreeError) -> Digest {
        try root(size: size)
    }

    /// The inclusion proof of leaf `index` in the tree of the first `treeSize` leaves: the audit path
    /// `PATH(index, D[treeSize])` of RFC 6962 §2.1.1, with the leaf hash and the root.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `treeSize > size`,
    ///   ``MerkleTreeError/indexBeyondTreeSize(index:size:)`` unless `index < treeSize`.
    public func inclusionProof(index: UInt64, size treeSize: UInt64) throws(MerkleTreeError) -> InclusionProof {
        guard treeSize <= size else { throw .sizeBeyondTree(size: treeSize, treeSize: size) }
        guard index < treeSize else { throw .indexBeyondTreeSize(index: index, size: treeSize) }
        // PATH(m, D[start:end]) for n = end - start > 1 and k the largest power of two below n is
        // PATH(m, D[start:start+k]) : MTH(D[start+k:end]) when m is in the left part, otherwise
        // PATH(m, D[start+k:end]) : MTH(D[start:start+k]). Siblings are collected outermost first.
        var path: [Digest] = []
        var start: UInt64 = 0
        var end = treeSize
        while end - start > 1 {
            let middle = start + largestPowerOfTwo(below: end - start)
            if index < middle {
                path.append(try subtreeHash(start: middle, end: end))
                end = middle
            } else {
                path.append(try subtreeHash(start: start, end: middle))
                start = middle
            }
        }
        return InclusionProof(
            index: index, treeSize: treeSize, leafHash: try hash(level: 0, index: index),
            hashes: path.reversed(), root: try root(size: treeSize))
    }

    /// The consistency proof from the tree of the first `oldSize` leaves to that of the first
    /// `newSize`: `PROOF(oldSize, D[newSize])` of RFC 6962 §2.1.2, with both roots.
    ///
    /// Empty when `oldSize` is 0 or equals `newSize`: there is nothing to prove.
    /// - Throws: ``MerkleTreeError/sizeBeyondTree(size:treeSize:)`` if `newSize > size`,
    ///   ``MerkleTreeError/oldSizeBeyondNewSize(old:new:)`` if `oldSize > newSize`.
    public func consistencyProof(from oldSize: UInt64, to newSize: UInt64) throws(MerkleTreeError)
        -> ConsistencyProof
    {
        guard newSize <= size else { throw .sizeBeyondTree(size: newSize, treeSize: size) }
        guard oldSize <= newSize else { throw .oldSizeBeyondNewSize(old: oldSize, new: newSize) }
        var path: [Digest] = []
        if oldSize > 0 && oldSize < newSize {
            // SUBPROOF(m, D[start:end], b): when m reaches end, it is {} if b, else {MTH(D[start:end])}.
            // Otherwise with k the largest power of two below end - start: if m <= start + k it is
            // SUBPROOF(m, D[start:start+k], b) : MTH(D[start+k:end]), else
            // SUBPROOF(m, D[start+k:end], false) : MTH(D[start:start+k]).
            var start: UInt64 = 0
            var end = newSize
            var wholeOldTree = true
            while oldSize < end {
                let middle = start + largestPowerOfTwo(below: end - start)
                if oldSize <= middle {
                    path.append(try subtreeHash(start: middle, end: end))
                    end = middle
                } else {
                    path.append(try subtreeHash(start: start, end: middle))
                    start = middle
                    wholeOldTree = false
                }
            }
            if !wholeOldTree {
                path.append(try subtreeHash(start: start, end: end))
            }
            path.reverse()
        }
        return ConsistencyProof(
            oldSize: oldSize, newSize: newSize, oldRoot: try root(size: oldSize), newRoot: try root(size: newSize),
            hashes: path)
    }

    /// `MTH(D[start:end])` for a subtree of the RFC 6962 recursion, where `start` is a multiple of
    /// the smallest power of two not below `end - start`. Its complete parts follow the binary digits
    /// of `end - start`, largest first; they are folded from the right, one read per part.
    func subtreeHash(start: UInt64, end: UInt64) throws(MerkleTreeError) -> Digest {
        precondition(start < end, "empty subtree")
        var remaining = end - start
        var accumulated: Digest?
        while remaining != 0 {
            let level = remaining.trailingZeroBitCount
            remaining &= remaining - 1
            // The part for this binary digit starts after the parts of all higher digits.
            let part = try hash(level: level, index: (start + remaining) >> UInt64(level))
            accumulated = accumulated.map { RFC6962.nodeHash(part, $0) } ?? part
        }
        // `remaining` started non-zero, so the loop ran at least once.
        return accumulated ?? RFC6962.emptyRoot
    }
}

/// The largest power of two strictly below `n`; requires `n > 1`.
@inline(__always)
func largestPowerOfTwo(below n: UInt64) -> UInt64 {
    UInt64(1) << UInt64(63 - (n - 1).leadingZeroBitCount)
}
