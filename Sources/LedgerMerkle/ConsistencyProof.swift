public import LedgerCrypto

/// A consistency proof: the hashes showing that the tree of `newSize` leaves with root `newRoot`
/// extends the tree of `oldSize` leaves with root `oldRoot` (RFC 9162 §2.1.4).
///
/// Its JSON form (LedgerStore's `jsonText` and `init(json:source:)`) is the export format of the
/// ledger (DESIGN.md, wire format 8), with hashes in standard padded base64:
/// `{"old_size": 4, "new_size": 8, "old_root": "…", "new_root": "…", "proof": ["…", …]}`.
public struct ConsistencyProof: Hashable, Sendable {
    /// The size of the older tree.
    public var oldSize: UInt64
    /// The size of the newer tree.
    public var newSize: UInt64
    /// The root of the older tree, as claimed by whoever made the proof.
    public var oldRoot: Digest
    /// The root of the newer tree, as claimed by whoever made the proof.
    public var newRoot: Digest
    /// The consistency path of RFC 9162 §2.1.4.1; empty when `oldSize` is 0 or equals `newSize`.
    public var hashes: [Digest]

    /// Creates a proof from its parts; nothing is checked.
    public init(oldSize: UInt64, newSize: UInt64, oldRoot: Digest, newRoot: Digest, hashes: [Digest]) {
        self.oldSize = oldSize
        self.newSize = newSize
        self.oldRoot = oldRoot
        self.newRoot = newRoot
        self.hashes = hashes
    }

    /// Checks that this proof shows the trusted new tree extends the trusted old tree.
    ///
    /// The recorded sizes and roots must equal the trusted ones, then the path must lead to both roots
    /// (RFC 9162 §2.1.4.2).
    /// - Throws: ``ProofError/treeSizeMismatch(proof:trusted:)``, ``ProofError/oldRootMismatch(expected:calculated:)``,
    ///   ``ProofError/rootMismatch(expected:calculated:)``, ``ProofError/oldSizeBeyondNewSize(old:new:)`` or
    ///   ``ProofError/wrongProofLength(got:want:)``.
    public func verify(oldSize trustedOldSize: UInt64, oldRoot trustedOldRoot: Digest,
                       newSize trustedNewSize: UInt64, newRoot trustedNewRoot: Digest) throws(ProofError) {
        guard oldSize == trustedOldSize else { throw .treeSizeMismatch(proof: oldSize, trusted: trustedOldSize) }
        guard newSize == trustedNewSize else { throw .treeSizeMismatch(proof: newSize, trusted: trustedNewSize) }
        guard oldRoot == trustedOldRoot else { throw .oldRootMismatch(expected: trustedOldRoot, calculated: oldRoot) }
        guard newRoot == trustedNewRoot else { throw .rootMismatch(expected: trustedNewRoot, calculated: newRoot) }
        try RFC6962.verifyConsistency(
            hashes, from: trustedOldSize, to: trustedNewSize, oldRoot: trustedOldRoot, newRoot: trustedNewRoot)
    }
}
