public import LedgerCrypto

/// An inclusion proof: the audit path showing that a leaf is entry `index` of the tree of `treeSize`
/// leaves with root `root` (RFC 9162 §2.1.3).
///
/// Its JSON form (LedgerStore's `jsonText` and `init(json:source:)`) is the export format of the
/// ledger (DESIGN.md, wire format 8), with hashes in standard padded base64:
/// `{"index": 5, "tree_size": 8, "leaf_hash": "…", "proof": ["…", …], "root": "…"}`.
///
/// A proof does not bind its tree size: the same hashes can verify against the same root with a
/// neighbouring size. So ``verify(leafHash:treeSize:root:)`` takes the size and root from the caller
/// (from a verified checkpoint), never from the proof.
public struct InclusionProof: Hashable, Sendable {
    /// The index of the leaf, counted from 0.
    public var index: UInt64
    /// The number of leaves in the tree the proof is for.
    public var treeSize: UInt64
    /// The leaf hash of the entry, `SHA-256(0x00 ‖ leaf bytes)`.
    public var leafHash: Digest
    /// The audit path, from the leaf's sibling up to the root's child.
    public var hashes: [Digest]
    /// The root of the tree the proof is for, as claimed by whoever made the proof.
    public var root: Digest

    /// Creates a proof from its parts; nothing is checked.
    public init(index: UInt64, treeSize: UInt64, leafHash: Digest, hashes: [Digest], root: Digest) {
        self.index = index
        self.treeSize = treeSize
        self.leafHash = leafHash
        self.hashes = hashes
        self.root = root
    }

    /// Checks that this proof shows `leafHash` at ``index`` in the tree of the trusted `treeSize` and
    /// `root`.
    ///
    /// The recorded ``leafHash``, ``treeSize`` and ``root`` must equal the trusted values, then the audit
    /// path must lead from the leaf hash to the root (RFC 9162 §2.1.3.2).
    /// - Throws: ``ProofError/leafHashMismatch(proof:expected:)``,
    ///   ``ProofError/treeSizeMismatch(proof:trusted:)``, ``ProofError/rootMismatch(expected:calculated:)``,
    ///   ``ProofError/indexBeyondTreeSize(index:size:)`` or ``ProofError/wrongProofLength(got:want:)``.
    public func verify(leafHash expectedLeaf: Digest, treeSize trustedSize: UInt64, root trustedRoot: Digest)
        throws(ProofError)
    {
        guard leafHash == expectedLeaf else { throw .leafHashMismatch(proof: leafHash, expected: expectedLeaf) }
        guard treeSize == trustedSize else { throw .treeSizeMismatch(proof: treeSize, trusted: trustedSize) }
        guard root == trustedRoot else { throw .rootMismatch(expected: trustedRoot, calculated: root) }
        try RFC6962.verifyInclusion(hashes, index: index, size: trustedSize, leafHash: expectedLeaf, root: trustedRoot)
    }
}
