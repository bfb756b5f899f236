import LedgerCrypto
import LedgerMerkle
import Testing

@Suite("Compact ranges")
struct CompactRangeTests {
    @Test("appending leaves one by one gives the reference root at every size 0…300")
    func rootsMatchReference() throws {
        let leaves = sampleLeafHashes(300)
        let reference = ReferenceTree(leafHashes: leaves)
        var range = CompactRange()
        #expect(range.root == RFC6962.emptyRoot)
        for n in 1...300 {
            range.append(leaves[n - 1])
            #expect(range.root == reference.mth(0..<n), "size \(n)")
            #expect(range.size == UInt64(n))
        }
    }

    @Test("a range read from a stored tree at any size extends to the same roots as one built leaf by leaf")
    func loadedFromTree() throws {
        let leaves = sampleLeafHashes(130)
        let tree = InMemoryMerkleTree(leafHashes: leaves)
        for m in [0, 1, 2, 3, 7, 8, 64, 65, 100, 129] {
            var loaded = try CompactRange(tree, size: UInt64(m))
            #expect(loaded.root == (try tree.root(size: UInt64(m))), "size \(m)")
            for n in m..<130 { loaded.append(leaves[n]) }
            #expect(loaded.root == (try tree.root()), "from \(m)")
        }
        #expect(throws: MerkleTreeError.self) { try CompactRange(tree, size: 131) }
    }
}
