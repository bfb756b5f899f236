public import LedgerCrypto

/// An inclusion proof: the audit path showing that a leaf is entry `index` of the tree of `treeSize`
/// leaves with root `root` (RFC 9162 §2.1.3).
///
/// Its JSON form is the export format of the ledger (DESIGN.md, wire format 8), with hashes in
/// standard padded base64:
/// `{"index": 5, "tree_size": 8, "leaf_hash": "…", "proof": ["…", …], "root": "…"}`.
///
/// A proof does not bind its tree size: the same hashes can verify against the same root with a
/// neighbouring size. So ``verify(leafHash:treeSize:root:)`` takes the size and root from the caller
/// (from a verified checkpoint), never from the proof.
public struct InclusionProof: Hashable, Sendable, Codable {
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

    enum CodingKeys: String, CodingKey {
        case index
        case treeSize = "tree_size"
        case leafHash = "leaf_hash"
        case hashes = "proof"
        case root
    }

    /// Decodes the JSON form; every hash must be canonical base64 of exactly 32 bytes.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        index = try container.decode(UInt64.self, forKey: .index)
        treeSize = try container.decode(UInt64.self, forKey: .treeSize)
        leafHash = try container.decodeBase64Digest(forKey: .leafHash)
        hashes = try container.decodeBase64Digests(forKey: .hashes)
        root = try container.decodeBase64Digest(forKey: .root)
    }

    /// Encodes the JSON form, hashes in standard padded base64.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(treeSize, forKey: .treeSize)
        try container.encode(Base64.encode(leafHash.rawRepresentation), forKey: .leafHash)
        try container.encode(hashes.map { Base64.encode($0.rawRepresentation) }, forKey: .hashes)
        try container.encode(Base64.encode(root.rawRepresentation), forKey: .root)
    }
}

extension KeyedDecodingContainer {
    /// A digest stored as canonical base64 of exactly 32 bytes.
    func decodeBase64Digest(forKey key: Key) throws -> Digest {
        let text = try decode(String.self, forKey: key)
        return try Self.digest(fromBase64: text, codingPath: codingPath + [key])
    }

    /// An array of digests, each stored as canonical base64 of exactly 32 bytes.
    func decodeBase64Digests(forKey key: Key) throws -> [Digest] {
        let texts = try decode([String].self, forKey: key)
        var digests: [Digest] = []
        digests.reserveCapacity(texts.count)
        for text in texts {
            digests.append(try Self.digest(fromBase64: text, codingPath: codingPath + [key]))
        }
        return digests
    }

    private static func digest(fromBase64 text: String, codingPath: [any CodingKey]) throws -> Digest {
        guard let bytes = Base64.decodeCanonical(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath, debugDescription: "\"\(text)\" is not canonical padded base64"))
        }
        guard bytes.count == 32, let digest = try? Digest(rawRepresentation: bytes) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: codingPath, debugDescription: "a SHA-256 hash has 32 bytes, not \(bytes.count)"))
        }
        return digest
    }
}
