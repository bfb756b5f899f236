import LedgerCrypto
@testable import LedgerMerkle
import Testing

// Known answers from transparency-dev/merkle (Apache-2.0), the vectors it shares with
// certificate-transparency-go: the 8-leaf reference tree of testonly/constants.go (LeafInputs,
// NodeHashes, RootHashes), the hasher vectors of rfc6962/rfc6962_test.go, and the proofs of
// proof/verify_test.go (inclusionProofs, consistencyProofs).
enum ReferenceVectors {
    // testonly/constants.go, LeafInputs().
    static let leafInputs: [[UInt8]] = [
        bytes(hex: ""), bytes(hex: "00"), bytes(hex: "10"), bytes(hex: "2021"), bytes(hex: "3031"),
        bytes(hex: "40414243"), bytes(hex: "5051525354555657"), bytes(hex: "606162636465666768696a6b6c6d6e6f"),
    ]

    // testonly/constants.go, NodeHashes(): [level][index] for all complete subtrees.
    static let nodeHashes: [[Digest]] = [
        [
            digest("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            digest("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            digest("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
            digest("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
            digest("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            digest("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
            digest("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            digest("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
        ],
        [
            digest("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
            digest("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            digest("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            digest("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
        ],
        [
            digest("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
            digest("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
        [digest("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
    ]

    // testonly/constants.go, RootHashes(): index = tree size, 0…8.
    static let roots: [Digest] = [
        digest("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        digest("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        digest("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        digest("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
        digest("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        digest("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
        digest("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
        digest("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
        digest("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ]

    // proof/verify_test.go, inclusionProofs; the Go table counts leaves from 1, here from 0.
    static let inclusionProofs: [(index: UInt64, size: UInt64, path: [Digest])] = [
        (0, 8, [
            digest("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            digest("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            digest("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ]),
        (5, 8, [
            digest("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            digest("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            digest("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]),
        (2, 3, [digest("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
        (1, 5, [
            digest("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            digest("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            digest("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ]),
        (0, 1, []),
    ]

    // proof/verify_test.go, consistencyProofs.
    static let consistencyProofs: [(old: UInt64, new: UInt64, path: [Digest])] = [
        (1, 1, []),
        (1, 8, [
            digest("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            digest("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            digest("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ]),
        (6, 8, [
            digest("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            digest("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            digest("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]),
        (2, 5, [
            digest("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            digest("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ]),
        (6, 7, [
            digest("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            digest("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            digest("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ]),
    ]

    static var tree: InMemoryMerkleTree {
        InMemoryMerkleTree(leafHashes: leafInputs.map { RFC6962.leafHash($0) })
    }
}

@Suite("RFC 6962 known answers")
struct RFC6962KnownAnswerTests {
    // transparency-dev/merkle rfc6962/rfc6962_test.go, TestRFC6962Hasher; each value reproducible with
    // the shell command in its comment there.
    @Test("hasher vectors: empty root, empty leaf, leaf, node")
    func hasherVectors() {
        // echo -n | sha256sum
        #expect(RFC6962.emptyRoot == digest("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"))
        // echo -n 00 | xxd -r -p | sha256sum
        #expect(RFC6962.leafHash([UInt8]()) == digest("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"))
        // echo -n 004C313233343536 | xxd -r -p | sha256sum
        #expect(RFC6962.leafHash(Array("L123456".utf8))
            == digest("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"))
        // echo -n 014E3132334E343536 | xxd -r -p | sha256sum
        #expect(RFC6962.nodeHash(leftBytes: Array("N123".utf8), rightBytes: Array("N456".utf8))
            == digest("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"))
    }

    @Test("the fast node hash equals SHA-256(0x01 ‖ left ‖ right)")
    func nodeHashMatchesDefinition() {
        let left = RFC6962.leafHash(Array("Hello".utf8))
        let right = RFC6962.leafHash(Array("World".utf8))
        #expect(RFC6962.nodeHash(left, right) == SHA256.hash([0x01] + left.rawRepresentation + right.rawRepresentation))
        #expect(RFC6962.nodeHash(left, right) != RFC6962.nodeHash(right, left))
        // A node is not the leaf of its children's concatenation (rfc6962_test.go, TestRFC6962HasherCollisions).
        #expect(RFC6962.nodeHash(left, right) != RFC6962.leafHash(left.rawRepresentation + right.rawRepresentation))
    }

    @Test("the stored complete subtrees of the 8-leaf tree are testonly's NodeHashes")
    func storedNodes() throws {
        let tree = ReferenceVectors.tree
        for (level, nodes) in ReferenceVectors.nodeHashes.enumerated() {
            for (index, node) in nodes.enumerated() {
                #expect(try tree.hash(level: level, index: UInt64(index)) == node, "level \(level) index \(index)")
            }
        }
        #expect(throws: MerkleTreeError.nodeOutOfRange(level: 1, index: 4, count: 4)) {
            try tree.hash(level: 1, index: 4)
        }
    }

    @Test("roots of sizes 0 to 8 are testonly's RootHashes", arguments: 0...8)
    func roots(size: Int) throws {
        #expect(try ReferenceVectors.tree.root(size: UInt64(size)) == ReferenceVectors.roots[size])
    }

    @Test("inclusion proofs equal verify_test.go's and verify", arguments: 0..<5)
    func inclusion(vector: Int) throws {
        let (index, size, path) = ReferenceVectors.inclusionProofs[vector]
        let proof = try ReferenceVectors.tree.inclusionProof(index: index, size: size)
        #expect(proof.hashes == path, "vector \(vector)")
        #expect(proof.root == ReferenceVectors.roots[Int(size)])
        let leafHash = RFC6962.leafHash(ReferenceVectors.leafInputs[Int(index)])
        #expect(proof.leafHash == leafHash)
        try RFC6962.verifyInclusion(path, index: index, size: size, leafHash: leafHash, root: ReferenceVectors.roots[Int(size)])
        try proof.verify(leafHash: leafHash, treeSize: size, root: ReferenceVectors.roots[Int(size)])
    }

    @Test("consistency proofs equal verify_test.go's and verify", arguments: 0..<5)
    func consistency(vector: Int) throws {
        let (old, new, path) = ReferenceVectors.consistencyProofs[vector]
        let proof = try ReferenceVectors.tree.consistencyProof(from: old, to: new)
        #expect(proof.hashes == path, "vector \(vector)")
        try RFC6962.verifyConsistency(
            path, from: old, to: new, oldRoot: ReferenceVectors.roots[Int(old)], newRoot: ReferenceVectors.roots[Int(new)])
    }

    // proof/verify_test.go, TestVerifyConsistency: sizes that need no proof, time travel, and
    // empty or superfluous proofs. One deliberate difference: Go accepts any old root for old size 0;
    // we require the empty-tree root, the only root a tree of size 0 has.
    @Test("consistency edge cases of verify_test.go")
    func consistencyEdgeCases() {
        let empty = RFC6962.emptyRoot
        let root1 = digest(String(repeating: "11", count: 32))
        let root2 = digest(String(repeating: "22", count: 32))
        func check(_ old: UInt64, _ new: UInt64, _ oldRoot: Digest, _ newRoot: Digest, _ path: [Digest]) -> ProofError? {
            do {
                try RFC6962.verifyConsistency(path, from: old, to: new, oldRoot: oldRoot, newRoot: newRoot)
                return nil
            } catch {
                return error
            }
        }
        #expect(check(0, 0, root1, root2, []) == .rootMismatch(expected: root1, calculated: root2))
        #expect(check(1, 1, root1, root2, []) == .rootMismatch(expected: root1, calculated: root2))
        #expect(check(0, 0, root1, root1, []) == nil)
        #expect(check(0, 1, empty, root2, []) == nil)
        #expect(check(0, 1, root1, root2, []) == .oldRootMismatch(expected: empty, calculated: root1))
        #expect(check(1, 1, root2, root2, []) == nil)
        #expect(check(1, 0, root1, root2, []) == .oldSizeBeyondNewSize(old: 1, new: 0))
        #expect(check(2, 1, root1, root2, []) == .oldSizeBeyondNewSize(old: 2, new: 1))
        #expect(check(1, 2, root1, root2, []) == .wrongProofLength(got: 0, want: 1))
        #expect(check(0, 0, empty, root2, []) == .rootMismatch(expected: empty, calculated: root2))
        #expect(check(1, 1, empty, root2, []) == .rootMismatch(expected: empty, calculated: root2))
        #expect(check(0, 0, empty, empty, [empty]) == .wrongProofLength(got: 1, want: 0))
        #expect(check(0, 1, empty, empty, [empty]) == .wrongProofLength(got: 1, want: 0))
        #expect(check(1, 1, empty, empty, [empty]) == .wrongProofLength(got: 1, want: 0))
    }

    // proof/verify_test.go, TestVerifyInclusion and TestVerifyInclusionSingleEntry.
    @Test("inclusion edge cases of verify_test.go")
    func inclusionEdgeCases() throws {
        let someHash = digest("abacaba000000000000000000000000000000000000000000060061e00123456")
        let empty = RFC6962.emptyRoot
        for (index, size) in [(UInt64(0), UInt64(0)), (0, 1), (1, 0), (2, 1)] {
            #expect(throws: ProofError.self) {
                try RFC6962.verifyInclusion([], index: index, size: size, leafHash: someHash, root: empty)
            }
        }
        #expect(throws: ProofError.indexBeyondTreeSize(index: 0, size: 0)) {
            try RFC6962.verifyInclusion([], index: 0, size: 0, leafHash: someHash, root: empty)
        }
        // A one-leaf tree: the root is the leaf hash and the proof is empty.
        let leaf = RFC6962.leafHash(Array("data".utf8))
        try RFC6962.verifyInclusion([], index: 0, size: 1, leafHash: leaf, root: leaf)
        #expect(throws: ProofError.rootMismatch(expected: empty, calculated: leaf)) {
            try RFC6962.verifyInclusion([], index: 0, size: 1, leafHash: leaf, root: empty)
        }
    }
}
