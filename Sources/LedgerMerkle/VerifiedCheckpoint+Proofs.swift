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
