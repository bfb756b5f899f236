import LedgerCore
import LedgerCrypto
@testable import LedgerMerkle
import Testing

/// The fast tree against the literal RFC 6962 recursion, and proofs against tampering.
@Suite("Merkle tree against the RFC 6962 reference")
struct ReferenceComparisonTests {
    static let maximumSize = 300
    static let leafHashes = sampleLeafHashes(maximumSize)

    @Test("roots of every size 0…300 equal the reference, from one tree")
    func roots() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let reference = ReferenceTree(leafHashes: Self.leafHashes)
        for size in 0...Self.maximumSize {
            #expect(try tree.root(size: UInt64(size)) == reference.mth(0..<size), "size \(size)")
        }
        #expect(throws: MerkleTreeError.sizeBeyondTree(size: 301, treeSize: 300)) { try tree.root(size: 301) }
    }

    @Test("every inclusion proof for sizes 1…300 equals the reference and verifies; tampered ones fail")
    func inclusionProofs() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let reference = ReferenceTree(leafHashes: Self.leafHashes)
        for size in 1...Self.maximumSize {
            let root = reference.mth(0..<size)
            for index in 0..<size {
                let proof = try tree.inclusionProof(index: UInt64(index), size: UInt64(size))
                let matches = proof.hashes == reference.path(index, 0..<size) && proof.root == root
                    && proof.leafHash == Self.leafHashes[index]
                    && RFC6962.inclusionPathLength(index: UInt64(index), size: UInt64(size)) == proof.hashes.count
                #expect(matches, "index \(index) size \(size)")
                try proof.verify(leafHash: Self.leafHashes[index], treeSize: UInt64(size), root: root)
                // Every index up to size 128, then every 7th and the last.
                if size <= 128 || index % 7 == 0 || index == size - 1 {
                    try checkStructuralTampering(proof, root: root)
                }
            }
        }
    }

    @Test("every consistency proof m ≤ n ≤ 100, and sampled ones up to 300, equal the reference and verify")
    func consistencyProofs() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let reference = ReferenceTree(leafHashes: Self.leafHashes)
        var pairs: [(Int, Int)] = []
        for new in 0...100 {
            for old in 0...new { pairs.append((old, new)) }
        }
        let seed: UInt64 = 0x5EED_C0DE
        var random = SplitMix64(seed: seed)
        for _ in 0..<3000 {
            let new = Int.random(in: 101...Self.maximumSize, using: &random)
            pairs.append((Int.random(in: 0...new, using: &random), new))
        }
        for (old, new) in pairs {
            let proof = try tree.consistencyProof(from: UInt64(old), to: UInt64(new))
            let want = old == 0 || old == new ? [] : reference.proof(old, new)
            #expect(proof.hashes == want, "old \(old) new \(new) (seed \(seed))")
            #expect(proof.oldRoot == reference.mth(0..<old) && proof.newRoot == reference.mth(0..<new))
            try proof.verify(oldSize: UInt64(old), oldRoot: proof.oldRoot, newSize: UInt64(new), newRoot: proof.newRoot)
            try checkStructuralTampering(proof)
        }
        #expect(throws: MerkleTreeError.oldSizeBeyondNewSize(old: 5, new: 4)) { try tree.consistencyProof(from: 5, to: 4) }
        #expect(throws: MerkleTreeError.sizeBeyondTree(size: 301, treeSize: 300)) {
            try tree.consistencyProof(from: 5, to: 301)
        }
    }

    /// Every (index, size) with size ≤ 16, and 150 sampled from sizes 17…300.
    static func sampledInclusionCases(seed: UInt64) -> [(index: Int, size: Int)] {
        var cases = (1...16).flatMap { size in (0..<size).map { (index: $0, size: size) } }
        var random = SplitMix64(seed: seed)
        for _ in 0..<150 {
            let size = Int.random(in: 17...maximumSize, using: &random)
            cases.append((Int.random(in: 0..<size, using: &random), size))
        }
        return cases
    }

    @Test("flipping any bit of an inclusion proof hash, the leaf or the root fails (all up to size 16, 150 sampled)")
    func inclusionBitFlips() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let seed: UInt64 = 0xF11B
        for (index, size) in Self.sampledInclusionCases(seed: seed) {
            do {
                let root = try tree.root(size: UInt64(size))
                let proof = try tree.inclusionProof(index: UInt64(index), size: UInt64(size))
                var accepted: [String] = []
                for element in proof.hashes.indices {
                    for bit in 0..<256 {
                        var bad = proof.hashes
                        bad[element] = flipping(bad[element], bit: bit)
                        if isAccepted({ () throws(ProofError) in
                            try RFC6962.verifyInclusion(
                                bad, index: UInt64(index), size: UInt64(size), leafHash: proof.leafHash, root: root)
                        }) { accepted.append("element \(element) bit \(bit)") }
                    }
                }
                for bit in 0..<256 {
                    if isAccepted({ () throws(ProofError) in
                        try RFC6962.verifyInclusion(proof.hashes, index: UInt64(index), size: UInt64(size),
                                                    leafHash: proof.leafHash, root: flipping(root, bit: bit))
                    }) { accepted.append("root bit \(bit)") }
                    if isAccepted({ () throws(ProofError) in
                        try RFC6962.verifyInclusion(proof.hashes, index: UInt64(index), size: UInt64(size),
                                                    leafHash: flipping(proof.leafHash, bit: bit), root: root)
                    }) { accepted.append("leaf bit \(bit)") }
                }
                #expect(accepted.isEmpty, "index \(index) size \(size) (seed \(seed)) accepted: \(accepted.prefix(10))")
            }
        }
    }

    @Test("flipping any bit of a consistency proof hash or either root fails (all pairs up to 16, 80 sampled)")
    func consistencyBitFlips() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let seed: UInt64 = 0xC0517
        var pairs = (2...16).flatMap { new in (1..<new).map { (old: $0, new: new) } }
        var random = SplitMix64(seed: seed)
        for _ in 0..<80 {
            let new = Int.random(in: 17...Self.maximumSize, using: &random)
            pairs.append((Int.random(in: 1..<new, using: &random), new))
        }
        for (old, new) in pairs {
            do {
                let proof = try tree.consistencyProof(from: UInt64(old), to: UInt64(new))
                var accepted: [String] = []
                for element in proof.hashes.indices {
                    for bit in 0..<256 {
                        var bad = proof.hashes
                        bad[element] = flipping(bad[element], bit: bit)
                        if isAccepted({ () throws(ProofError) in
                            try RFC6962.verifyConsistency(
                                bad, from: UInt64(old), to: UInt64(new), oldRoot: proof.oldRoot, newRoot: proof.newRoot)
                        }) { accepted.append("element \(element) bit \(bit)") }
                    }
                }
                for bit in 0..<256 {
                    if isAccepted({ () throws(ProofError) in
                        try RFC6962.verifyConsistency(proof.hashes, from: UInt64(old), to: UInt64(new),
                                                      oldRoot: flipping(proof.oldRoot, bit: bit), newRoot: proof.newRoot)
                    }) { accepted.append("old root bit \(bit)") }
                    if isAccepted({ () throws(ProofError) in
                        try RFC6962.verifyConsistency(proof.hashes, from: UInt64(old), to: UInt64(new),
                                                      oldRoot: proof.oldRoot, newRoot: flipping(proof.newRoot, bit: bit))
                    }) { accepted.append("new root bit \(bit)") }
                }
                #expect(accepted.isEmpty, "old \(old) new \(new) (seed \(seed)) accepted: \(accepted.prefix(10))")
            }
        }
    }

    // DESIGN.md, "pitfalls": an RFC 6962 proof does not bind the tree size. Leaf 0 of a 3-leaf tree
    // and leaf 0 of a 4-leaf tree fold the same hashes in the same order, so the raw algorithm,
    // given the wrong size, still arrives at the root. Only a size taken from a verified checkpoint
    // catches it, which is why proof objects are checked against trusted values.
    @Test("the raw algorithm does not bind the size; the proof object check does")
    func sizeIsNotBound() throws {
        let tree = InMemoryMerkleTree(leafHashes: Self.leafHashes)
        let proof = try tree.inclusionProof(index: 0, size: 3)
        try RFC6962.verifyInclusion(proof.hashes, index: 0, size: 4, leafHash: proof.leafHash, root: proof.root)
        var lying = proof
        lying.treeSize = 4
        #expect(throws: ProofError.treeSizeMismatch(proof: 4, trusted: 3)) {
            try lying.verify(leafHash: proof.leafHash, treeSize: 3, root: proof.root)
        }
        // The same holds for consistency proofs: 1 → 3 also passes as 1 → 4 with the same roots.
        let consistency = try tree.consistencyProof(from: 1, to: 3)
        try RFC6962.verifyConsistency(
            consistency.hashes, from: 1, to: 4, oldRoot: consistency.oldRoot, newRoot: consistency.newRoot)
    }

    /// Index ±1 and XOR 2, size ±1, ×2 and ÷2 in the proof object, an element removed or inserted,
    /// the wrong leaf: all rejected against the trusted size and root.
    private func checkStructuralTampering(_ proof: InclusionProof, root: Digest) throws {
        let size = proof.treeSize
        let leaf = proof.leafHash
        var accepted: [String] = []
        defer { #expect(accepted.isEmpty, "index \(proof.index) size \(size) accepted: \(accepted)") }
        func rejects(_ change: String, _ body: () throws(ProofError) -> Void) {
            if isAccepted(body) { accepted.append(change) }
        }
        for index in [proof.index &+ 1, proof.index &- 1, proof.index ^ 2] where index != proof.index {
            var bad = proof
            bad.index = index
            rejects("index \(index)") { () throws(ProofError) in try bad.verify(leafHash: leaf, treeSize: size, root: root) }
            rejects("raw index \(index)") { () throws(ProofError) in
                try RFC6962.verifyInclusion(proof.hashes, index: index, size: size, leafHash: leaf, root: root)
            }
        }
        for badSize in [size + 1, size - 1, size * 2, size / 2] where badSize != size {
            var bad = proof
            bad.treeSize = badSize
            rejects("size \(badSize)") { () throws(ProofError) in try bad.verify(leafHash: leaf, treeSize: size, root: root) }
        }
        if !proof.hashes.isEmpty {
            for removed in proof.hashes.indices {
                var bad = proof
                bad.hashes.remove(at: removed)
                rejects("removed \(removed)") { () throws(ProofError) in
                    try bad.verify(leafHash: leaf, treeSize: size, root: root)
                }
            }
        }
        for position in 0...proof.hashes.count {
            var bad = proof
            bad.hashes.insert(root, at: position)
            rejects("inserted at \(position)") { () throws(ProofError) in
                try bad.verify(leafHash: leaf, treeSize: size, root: root)
            }
        }
        rejects("wrong leaf") { () throws(ProofError) in
            try proof.verify(leafHash: RFC6962.leafHash(Array("WrongLeaf".utf8)), treeSize: size, root: root)
        }
        var badLeaf = proof
        badLeaf.leafHash = RFC6962.leafHash(Array("WrongLeaf".utf8))
        rejects("wrong recorded leaf") { () throws(ProofError) in
            try badLeaf.verify(leafHash: badLeaf.leafHash, treeSize: size, root: root)
        }
        rejects("empty root") { () throws(ProofError) in
            try proof.verify(leafHash: leaf, treeSize: size, root: RFC6962.emptyRoot)
        }
    }

    /// Sizes ±1, swapped roots, an element removed, inserted or repeated: all rejected.
    private func checkStructuralTampering(_ proof: ConsistencyProof) throws {
        let (old, new) = (proof.oldSize, proof.newSize)
        var accepted: [String] = []
        defer { #expect(accepted.isEmpty, "old \(old) new \(new) accepted: \(accepted)") }
        func rejects(_ change: String, _ body: () throws(ProofError) -> Void) {
            if isAccepted(body) { accepted.append(change) }
        }
        func raw(_ hashes: [Digest], _ oldSize: UInt64, _ newSize: UInt64, _ oldRoot: Digest, _ newRoot: Digest)
            throws(ProofError)
        {
            try RFC6962.verifyConsistency(hashes, from: oldSize, to: newSize, oldRoot: oldRoot, newRoot: newRoot)
        }
        // Like inclusion proofs, consistency proofs do not bind the new size (the proof from 1 to 3
        // also verifies from 1 to 4 with the same roots), so sizes come from trusted checkpoints and
        // the proof object's recorded sizes must match them.
        if old < new {
            for badOld in [old &- 1, old + 1, old ^ 2] where badOld != old && badOld <= new && badOld > 0 {
                rejects("old size \(badOld)") { () throws(ProofError) in
                    try raw(proof.hashes, badOld, new, proof.oldRoot, proof.newRoot)
                }
            }
            rejects("swapped roots") { () throws(ProofError) in
                try raw(proof.hashes, old, new, proof.newRoot, proof.oldRoot)
            }
        }
        for badNew in [new + 1, new &- 1, new * 2, new / 2] where badNew != new {
            var lying = proof
            lying.newSize = badNew
            rejects("recorded new size \(badNew)") { () throws(ProofError) in
                try lying.verify(oldSize: old, oldRoot: proof.oldRoot, newSize: new, newRoot: proof.newRoot)
            }
        }
        for badOld in [old + 1, old &- 1] where badOld != old {
            var lying = proof
            lying.oldSize = badOld
            rejects("recorded old size \(badOld)") { () throws(ProofError) in
                try lying.verify(oldSize: old, oldRoot: proof.oldRoot, newSize: new, newRoot: proof.newRoot)
            }
        }
        if old > 0 && old < new {
            rejects("empty proof") { () throws(ProofError) in try raw([], old, new, proof.oldRoot, proof.newRoot) }
            for removed in proof.hashes.indices {
                var bad = proof.hashes
                bad.remove(at: removed)
                rejects("removed \(removed)") { () throws(ProofError) in try raw(bad, old, new, proof.oldRoot, proof.newRoot) }
            }
            rejects("repeated first") { () throws(ProofError) in
                try raw([proof.hashes[0]] + proof.hashes, old, new, proof.oldRoot, proof.newRoot)
            }
        }
        for position in 0...proof.hashes.count {
            var bad = proof.hashes
            bad.insert(proof.oldRoot, at: position)
            rejects("inserted at \(position)") { () throws(ProofError) in try raw(bad, old, new, proof.oldRoot, proof.newRoot) }
        }
    }
}

/// Whether `body` runs without throwing: for tamper loops, where one `#expect` per case is too slow.
private func isAccepted(_ body: () throws(ProofError) -> Void) -> Bool {
    do {
        try body()
        return true
    } catch {
        return false
    }
}
