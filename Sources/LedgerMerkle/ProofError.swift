public import LedgerCrypto

/// Why an inclusion or consistency proof was rejected: a small closed set, each case with the numbers
/// that explain it.
///
/// Tests match on the case, never on the wording of ``description``.
public enum ProofError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The leaf index is not below the tree size (RFC 9162 §2.1.3.2 step 1).
    case indexBeyondTreeSize(index: UInt64, size: UInt64)
    /// The old tree size of a consistency proof is larger than the new one.
    case oldSizeBeyondNewSize(old: UInt64, new: UInt64)
    /// The proof has the wrong number of hashes for its index and tree size (or its two sizes).
    case wrongProofLength(got: Int, want: Int)
    /// The root computed from the proof (or recorded in it) is not the trusted root.
    case rootMismatch(expected: Digest, calculated: Digest)
    /// The old root computed from a consistency proof (or recorded in it) is not the trusted old root.
    case oldRootMismatch(expected: Digest, calculated: Digest)
    /// The tree size recorded in a proof is not the size of the trusted checkpoint it is checked against.
    case treeSizeMismatch(proof: UInt64, trusted: UInt64)
    /// The leaf hash recorded in an inclusion proof is not the leaf hash of the entry being checked.
    case leafHashMismatch(proof: Digest, expected: Digest)

    public var description: String {
        switch self {
        case let .indexBeyondTreeSize(index, size):
            return "The proof is for entry \(index), but the tree has only \(size) entries, so it cannot contain it. "
                + "Fetch a proof against a newer checkpoint."
        case let .oldSizeBeyondNewSize(old, new):
            return "The consistency proof goes from size \(old) back to the smaller size \(new); a log only grows. "
                + "Swap the checkpoints, or fetch a proof from the older one to the newer one."
        case let .wrongProofLength(got, want):
            return "The proof has \(got) hashes; a proof for these sizes has exactly \(want). "
                + "It was made for another index or tree size, or it was truncated or padded."
        case let .rootMismatch(expected, calculated):
            return "The proof leads to root \(calculated.shortHex()), not the trusted root \(expected.shortHex()), so it does not "
                + "show what it claims: either the proof is wrong (damaged, or made for another entry or tree) or the log differs "
                + "from what the checkpoint commits to. Fetch the proof again from the log (`ledger prove`); a log that cannot give "
                + "a valid one for an entry it holds was tampered with."
        case let .oldRootMismatch(expected, calculated):
            return "The consistency proof leads to old root \(calculated.shortHex()), not the trusted old root "
                + "\(expected.shortHex()), so it does not show that the new tree extends the old one: either the proof is wrong "
                + "(damaged, or made for other sizes) or the log was rewritten. Fetch the proof again from the log (`ledger prove "
                + "consistency`); a log that cannot give a valid one between two checkpoints it signed was rewritten."
        case let .treeSizeMismatch(proof, trusted):
            return "The proof is for tree size \(proof), but the trusted checkpoint has size \(trusted). "
                + "Take the size from the verified checkpoint, and fetch a proof for that size."
        case let .leafHashMismatch(proof, expected):
            return "The proof is for leaf \(proof.shortHex()), not for the entry being checked "
                + "(\(expected.shortHex())). Fetch the proof for this entry."
        }
    }
}
