public import LedgerCrypto

extension RFC6962 {
    /// The root that an inclusion proof leads to from `leafHash` at `index` in a tree of `size`
    /// leaves, by the algorithm of RFC 9162 §2.1.3.2.
    ///
    /// The caller must compare the result with a trusted root of a trusted size; the proof alone
    /// does not bind the size (see ``verifyInclusion(_:index:size:leafHash:root:)``).
    /// - Throws: ``ProofError/indexBeyondTreeSize(index:size:)`` or ``ProofError/wrongProofLength(got:want:)``.
    public static func root(fromInclusionProof path: [Digest], index: UInt64, size: UInt64, leafHash: Digest)
        throws(ProofError) -> Digest
    {
        // 1. Compare leaf_index against tree_size. If leaf_index is greater than or equal to
        //    tree_size, then fail the proof verification.
        guard index < size else { throw .indexBeyondTreeSize(index: index, size: size) }
        // The steps below reject a path of the wrong length too, but only as a generic failure;
        // checking it first names the problem.
        let want = inclusionPathLength(index: index, size: size)
        guard path.count == want else { throw .wrongProofLength(got: path.count, want: want) }
        // 2. Set fn to leaf_index and sn to tree_size - 1.
        var fn = index
        var sn = size - 1
        // 3. Set r to hash.
        var r = leafHash
        // 4. For each value p in the inclusion_path array:
        for p in path {
            // a. If sn is 0, then stop the iteration and fail the proof verification.
            guard sn != 0 else { throw .wrongProofLength(got: path.count, want: want) }
            // b. If LSB(fn) is set, or if fn is equal to sn, then:
            if fn & 1 == 1 || fn == sn {
                // i. Set r to HASH(0x01 || p || r).
                r = nodeHash(p, r)
                // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
                //     LSB(fn) is set or fn is 0.
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                // Otherwise: i. Set r to HASH(0x01 || r || p).
                r = nodeHash(r, p)
            }
            // c. Finally, right-shift both fn and sn one time.
            fn >>= 1
            sn >>= 1
        }
        // 5. Compare sn to 0 (the caller compares r against the root hash).
        guard sn == 0 else { throw .wrongProofLength(got: path.count, want: want) }
        return r
    }

    /// Checks an inclusion proof: `path` leads from `leafHash` at `index` to `root` in a tree of `size`
    /// leaves (RFC 9162 §2.1.3.2).
    ///
    /// Take `size` and `root` from a verified checkpoint, never from the proof or the request: the
    /// same path often also verifies against the same root with a neighbouring size.
    /// - Throws: ``ProofError/indexBeyondTreeSize(index:size:)``, ``ProofError/wrongProofLength(got:want:)``
    ///   or ``ProofError/rootMismatch(expected:calculated:)``.
    public static func verifyInclusion(_ path: [Digest], index: UInt64, size: UInt64, leafHash: Digest, root: Digest)
        throws(ProofError)
    {
        let calculated = try self.root(fromInclusionProof: path, index: index, size: size, leafHash: leafHash)
        // 5. (continued) If r and the root_hash are equal, the log has proven the inclusion of hash.
        guard calculated == root else { throw .rootMismatch(expected: root, calculated: calculated) }
    }

    /// Checks a consistency proof: the tree of `newSize` leaves with root `newRoot` extends the tree of
    /// `oldSize` leaves with root `oldRoot` (RFC 9162 §2.1.4.2).
    ///
    /// Cases the RFC algorithm leaves out: equal sizes need an empty path and equal roots; old size 0
    /// needs an empty path and the empty-tree root as `oldRoot` (an empty tree is a prefix of every tree).
    /// - Throws: ``ProofError/oldSizeBeyondNewSize(old:new:)``, ``ProofError/wrongProofLength(got:want:)``,
    ///   ``ProofError/oldRootMismatch(expected:calculated:)`` or ``ProofError/rootMismatch(expected:calculated:)``.
    public static func verifyConsistency(_ path: [Digest], from oldSize: UInt64, to newSize: UInt64,
                                         oldRoot: Digest, newRoot: Digest) throws(ProofError) {
        guard oldSize <= newSize else { throw .oldSizeBeyondNewSize(old: oldSize, new: newSize) }
        if oldSize == newSize {
            guard path.isEmpty else { throw .wrongProofLength(got: path.count, want: 0) }
            guard oldRoot == newRoot else { throw .rootMismatch(expected: oldRoot, calculated: newRoot) }
            return
        }
        if oldSize == 0 {
            guard path.isEmpty else { throw .wrongProofLength(got: path.count, want: 0) }
            guard oldRoot == emptyRoot else { throw .oldRootMismatch(expected: emptyRoot, calculated: oldRoot) }
            return
        }
        // From here 0 < first < second, as the RFC algorithm assumes.
        let want = consistencyPathLength(from: oldSize, to: newSize)
        // 1. If consistency_path is an empty array, stop and fail the proof verification.
        //    (And, to name the problem, any other wrong length.)
        guard !path.isEmpty, path.count == want else { throw .wrongProofLength(got: path.count, want: want) }
        // 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
        let consistencyPath = oldSize & (oldSize - 1) == 0 ? [oldRoot] + path : path
        // 3. Set fn to first - 1 and sn to second - 1.
        var fn = oldSize - 1
        var sn = newSize - 1
        // 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
        while fn & 1 == 1 {
            fn >>= 1
            sn >>= 1
        }
        // 5. Set both fr and sr to the first value in the consistency_path array.
        var fr = consistencyPath[0]
        var sr = consistencyPath[0]
        // 6. For each subsequent value c in the consistency_path array:
        for c in consistencyPath.dropFirst() {
            // a. If sn is 0, then stop the iteration and fail the proof verification.
            guard sn != 0 else { throw .wrongProofLength(got: path.count, want: want) }
            // b. If LSB(fn) is set, or if fn is equal to sn, then:
            if fn & 1 == 1 || fn == sn {
                // i. Set fr to HASH(0x01 || c || fr). Set sr to HASH(0x01 || c || sr).
                fr = nodeHash(c, fr)
                sr = nodeHash(c, sr)
                // ii. If LSB(fn) is not set, then right-shift both fn and sn equally until either
                //     LSB(fn) is set or fn is 0.
                while fn & 1 == 0 && fn != 0 {
                    fn >>= 1
                    sn >>= 1
                }
            } else {
                // Otherwise: i. Set sr to HASH(0x01 || sr || c).
                sr = nodeHash(sr, c)
            }
            // c. Finally, right-shift both fn and sn one time.
            fn >>= 1
            sn >>= 1
        }
        // 7. Verify that fr equals first_hash, that sr equals second_hash, and that sn is 0.
        guard sn == 0 else { throw .wrongProofLength(got: path.count, want: want) }
        guard fr == oldRoot else { throw .oldRootMismatch(expected: oldRoot, calculated: fr) }
        guard sr == newRoot else { throw .rootMismatch(expected: newRoot, calculated: sr) }
    }

    /// The number of hashes in `PATH(index, D[size])` (RFC 6962 §2.1.1); requires `index < size`.
    static func inclusionPathLength(index: UInt64, size: UInt64) -> Int {
        var count = 0
        var start: UInt64 = 0
        var end = size
        while end - start > 1 {
            let middle = start + largestPowerOfTwo(below: end - start)
            if index < middle { end = middle } else { start = middle }
            count += 1
        }
        return count
    }

    /// The number of hashes in `PROOF(oldSize, D[newSize])` (RFC 6962 §2.1.2); requires
    /// `0 < oldSize < newSize`.
    static func consistencyPathLength(from oldSize: UInt64, to newSize: UInt64) -> Int {
        var count = 0
        var start: UInt64 = 0
        var end = newSize
        var wholeOldTree = true
        while oldSize < end {
            let middle = start + largestPowerOfTwo(below: end - start)
            if oldSize <= middle {
                end = middle
            } else {
                start = middle
                wholeOldTree = false
            }
            count += 1
        }
        return wholeOldTree ? count : count + 1
    }
}
