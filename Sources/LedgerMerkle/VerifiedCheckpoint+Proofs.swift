public import LedgerCrypto

extension InclusionProof {
    /// Checks that this proof shows `leafHash` in the tree committed to by `checkpoint`, taking the
    /// tree size and root from the checkpoint.
    /// - Throws: as ``verify(leafHash:treeSize:root:)``.
    public func verify(leafHash expectedLeaf: Digest, in checkpoint: VerifiedCheckpoint) throws(ProofError) {
        try verify(leafHash: expectedLeaf, treeSize: checkpoint.size, root: checkpoint.root)
    }
}

extension ConsistencyProof {
    /// Checks that this proof shows the tree of checkpoint `new` extends that of checkpoint `old`,
    /// taking sizes and roots from the checkpoints.
    /// - Throws: as ``verify(oldSize:oldRoot:newSize:newRoot:)``.
    public func verify(from old: VerifiedCheckpoint, to new: VerifiedCheckpoint) throws(ProofError) {
        try verify(oldSize: old.size, oldRoot: old.root, newSize: new.size, newRoot: new.root)
    }
}

extension ConsistencyProof {
    /// What this proof shows about two checkpoints signed by the same log key, `new` the larger:
    /// `true` if the tree of `new` extends that of `old`; `false` if the tree of `new` had another
    /// root than `old`'s at `old`'s size, so that the log signed two histories (this proof and the
    /// two checkpoints are the evidence: the path leads from the proof's own old root to `new`'s
    /// root, which a different tree could only match through a SHA-256 collision).
    ///
    /// A proof whose path does not lead to `new`'s root, or whose sizes are not the checkpoints',
    /// shows nothing either way, whoever made it, and throws.
    /// - Throws: as ``verify(oldSize:oldRoot:newSize:newRoot:)``.
    public func shows(extending old: VerifiedCheckpoint, to new: VerifiedCheckpoint) throws(ProofError) -> Bool {
        try verify(oldSize: old.size, oldRoot: oldRoot, newSize: new.size, newRoot: new.root)
        return oldRoot == old.root
    }
}
