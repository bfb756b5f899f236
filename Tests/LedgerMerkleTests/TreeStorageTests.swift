import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerMerkle
import Testing

@Suite("Merkle node storage")
struct TreeStorageTests {
    // Leaf hashes read: a proof's own leaf, its sibling, and the last leaf of an odd-sized range for
    // the root, the top right subtree and (consistency) the old root and the old tree's last part.
    @Test("roots and proofs read O(log n) stored nodes and a constant number of leaf hashes")
    func logarithmicReads() throws {
        let tree = InMemoryMerkleTree(leafHashes: sampleLeafHashes(100_000))
        let reader = CountingReader(tree)
        var random = SplitMix64(seed: 42)
        for size in [UInt64(1), 2, 3, 65_535, 65_536, 65_537, 99_999, 100_000] {
            let bound = 2 * (64 - size.leadingZeroBitCount) + 2
            reader.reset()
            _ = try reader.root(size: size)
            #expect(reader.totalReads <= 64 - size.leadingZeroBitCount, "root of \(size)")
            #expect(reader.reads[0, default: 0] <= 1)
            for _ in 0..<20 {
                let index = UInt64.random(in: 0..<size, using: &random)
                reader.reset()
                let proof = try reader.inclusionProof(index: index, size: size)
                #expect(proof == (try tree.inclusionProof(index: index, size: size)))
                // The audit path, plus the root and leaf hash carried with it.
                #expect(reader.totalReads <= 2 * bound, "inclusion \(index) of \(size): \(reader.reads)")
                #expect(reader.reads[0, default: 0] <= 4, "inclusion \(index) of \(size) reread leaves: \(reader.reads)")
                let old = UInt64.random(in: 0...size, using: &random)
                reader.reset()
                _ = try reader.consistencyProof(from: old, to: size)
                #expect(reader.totalReads <= 3 * bound, "consistency \(old) to \(size): \(reader.reads)")
                #expect(reader.reads[0, default: 0] <= 5, "consistency \(old) to \(size) reread leaves: \(reader.reads)")
            }
        }
    }

    @Test("an in-memory tree cut back equals one built to that size")
    func inMemoryTruncate() throws {
        let leaves = sampleLeafHashes(200)
        for size in [0, 1, 2, 3, 64, 65, 127, 128, 199, 200] {
            var tree = InMemoryMerkleTree(leafHashes: leaves)
            try tree.truncate(toSize: UInt64(size))
            #expect(tree == InMemoryMerkleTree(leafHashes: leaves.prefix(size)), "size \(size)")
            try tree.append(leafHashes: leaves[size...])
            #expect(tree == InMemoryMerkleTree(leafHashes: leaves))
        }
        var tree = InMemoryMerkleTree(leafHashes: leaves)
        #expect(throws: MerkleTreeError.sizeBeyondTree(size: 201, treeSize: 200)) { try tree.truncate(toSize: 201) }
    }

    @Test("files: every root and node equals the in-memory tree, before and after reopening")
    func filesMatchMemory() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let leaves = sampleLeafHashes(1000)
        let memory = InMemoryMerkleTree(leafHashes: leaves)
        do {
            // A small buffer, so that many flushes happen between appends.
            let files = try MerkleTreeFiles(directory: directory.path, bufferedLeaves: 7)
            for (count, leaf) in leaves.enumerated() {
                try files.append(leafHash: leaf)
                if count % 97 == 0 {
                    #expect(try files.root() == memory.root(size: UInt64(count + 1)))
                }
            }
            try compare(files, memory)
            try files.sync()
        }
        let reopened = try MerkleTreeFiles(directory: directory.path)
        #expect(reopened.size == 1000)
        try compare(reopened, memory)
        for level in 0..<10 {
            let attributes = try FileManager.default.attributesOfItem(atPath: levelPath(directory, level))
            #expect((attributes[.size] as? NSNumber)?.intValue == (1000 >> level) * 32, "level \(level)")
        }
    }

    @Test("files: appends after reopening continue the same tree; release flushes the buffers")
    func filesReopenAndContinue() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let leaves = sampleLeafHashes(700)
        for chunk in stride(from: 0, to: 700, by: 100) {
            let files = try MerkleTreeFiles(directory: directory.path, bufferedLeaves: 64)
            #expect(files.size == UInt64(chunk))
            try files.append(leafHashes: leaves[chunk..<(chunk + 100)])
            // No sync: releasing the value writes the buffers.
        }
        let files = try MerkleTreeFiles(directory: directory.path)
        try compare(files, InMemoryMerkleTree(leafHashes: leaves))
    }

    @Test("files: truncation cuts back, appends continue, and the cut survives reopening",
          arguments: [0, 1, 2, 5, 63, 64, 65, 300, 511, 512, 999])
    func filesTruncate(size: Int) throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let leaves = sampleLeafHashes(1000)
        let other = (0..<1000).map { RFC6962.leafHash(Array("other \($0)".utf8)) }
        do {
            let files = try MerkleTreeFiles(directory: directory.path, bufferedLeaves: 50)
            try files.append(leafHashes: leaves.prefix(600))
            try files.sync()
            try files.append(leafHashes: leaves[600...])  // partly still buffered
            try files.truncate(toSize: UInt64(size))
            try compare(files, InMemoryMerkleTree(leafHashes: leaves.prefix(size)))
            try files.append(leafHashes: other[size...])
            try compare(files, InMemoryMerkleTree(leafHashes: leaves.prefix(size) + other[size...]))
            #expect(throws: MerkleTreeError.sizeBeyondTree(size: 1001, treeSize: 1000)) {
                try files.truncate(toSize: 1001)
            }
            try files.truncate(toSize: UInt64(size))
            try files.sync()
        }
        let reopened = try MerkleTreeFiles(directory: directory.path)
        try compare(reopened, InMemoryMerkleTree(leafHashes: leaves.prefix(size)))
    }

    @Test("files: a level file of the wrong length is detected on open, naming the file")
    func filesDetectDamage() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        do {
            let files = try MerkleTreeFiles(directory: directory.path)
            try files.append(leafHashes: sampleLeafHashes(100))
            try files.sync()
        }
        // Level 1 one node short: 50 nodes expected.
        let level1 = levelPath(directory, 1)
        try truncateFile(level1, to: 49 * 32)
        #expect(throws: MerkleTreeError.inconsistentLevelFile(path: level1, length: 49 * 32, expected: 50 * 32)) {
            _ = try MerkleTreeFiles(directory: directory.path)
        }
        try truncateFile(level1, to: 50 * 32)
        _ = try MerkleTreeFiles(directory: directory.path)

        // A torn leaf hash at the end of level 0.
        let level0 = levelPath(directory, 0)
        try appendBytes(level0, [1, 2, 3, 4, 5])
        #expect(throws: MerkleTreeError.inconsistentLevelFile(path: level0, length: 100 * 32 + 5, expected: 100 * 32)) {
            _ = try MerkleTreeFiles(directory: directory.path)
        }
        try truncateFile(level0, to: 100 * 32)

        // A node at a level the tree has not reached.
        let level9 = levelPath(directory, 9)
        try appendBytes(level9, [UInt8](repeating: 0, count: 32))
        #expect(throws: MerkleTreeError.inconsistentLevelFile(path: level9, length: 32, expected: 0)) {
            _ = try MerkleTreeFiles(directory: directory.path)
        }
        try FileManager.default.removeItem(atPath: level9)

        // A missing level file.
        let level3 = levelPath(directory, 3)
        try FileManager.default.removeItem(atPath: level3)
        do {
            _ = try MerkleTreeFiles(directory: directory.path)
            Issue.record("a missing level file was not detected")
        } catch {
            #expect(error == .inconsistentLevelFile(path: level3, length: 0, expected: 12 * 32))
            #expect(error.description.contains(level3))
            #expect(error.description.contains("rebuild"))
        }

        // The way out: remove the level files and rebuild from the leaves.
        try MerkleTreeFiles.removeLevelFiles(in: directory.path)
        let rebuilt = try MerkleTreeFiles(directory: directory.path)
        #expect(rebuilt.size == 0)
        try rebuilt.append(leafHashes: sampleLeafHashes(100))
        try compare(rebuilt, InMemoryMerkleTree(leafHashes: sampleLeafHashes(100)))
    }

    @Test("files: an unusable directory is an I/O error naming it")
    func filesIOError() throws {
        let directory = try TemporaryDirectory()
        defer { directory.cleanup() }
        let path = directory.path + "/missing/parent"
        do {
            _ = try MerkleTreeFiles(directory: path)
            Issue.record("opening under a missing parent succeeded")
        } catch {
            guard case let .io(operation, failedPath, _) = error else {
                Issue.record("unexpected \(error)")
                return
            }
            #expect(operation == "mkdir" && failedPath == path)
        }
    }

    private func compare(_ files: MerkleTreeFiles, _ memory: InMemoryMerkleTree) throws {
        #expect(files.size == memory.size)
        for size in 0...memory.size {
            #expect(try files.root(size: size) == memory.root(size: size), "size \(size)")
        }
        for level in 0..<64 {
            let count = memory.size >> UInt64(level)
            if count == 0 { break }
            for index in 0..<count {
                #expect(try files.hash(level: level, index: index) == memory.hash(level: level, index: index))
            }
            #expect(throws: MerkleTreeError.self) { try files.hash(level: level, index: count) }
        }
        if memory.size > 0 {
            let index = memory.size / 3
            #expect(try files.inclusionProof(index: index, size: memory.size)
                == memory.inclusionProof(index: index, size: memory.size))
            #expect(try files.consistencyProof(from: index, to: memory.size)
                == memory.consistencyProof(from: index, to: memory.size))
        }
    }
}

private func levelPath(_ directory: TemporaryDirectory, _ level: Int) -> String {
    directory.path + (level < 10 ? "/level-0\(level)" : "/level-\(level)")
}

private func truncateFile(_ path: String, to length: UInt64) throws {
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.truncate(atOffset: length)
    try handle.close()
}

private func appendBytes(_ path: String, _ bytes: [UInt8]) throws {
    if !FileManager.default.fileExists(atPath: path) {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
    }
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    try handle.seekToEnd()
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
}
