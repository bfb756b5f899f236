import Foundation
@testable import LedgerCrypto
@testable import LedgerMerkle

/// Bytes from hex digits; test data only.
func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var iterator = hex.utf8.makeIterator()
    while let hi = iterator.next(), let lo = iterator.next() {
        out.append(UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16) ?? 0)
    }
    return out
}

/// A digest from 64 hex digits; traps on bad test data.
func digest(_ hex: String) -> Digest {
    guard let digest = Digest(hexString: hex) else { preconditionFailure("bad digest literal \(hex)") }
    return digest
}

/// A digest from base64 test data; traps on bad test data.
func digest(base64: String) -> Digest {
    guard let raw = Base64.decodeCanonical(base64), let digest = try? Digest(rawRepresentation: raw) else {
        preconditionFailure("bad base64 digest literal \(base64)")
    }
    return digest
}

/// The leaf hashes of leaves "leaf 0", "leaf 1", …: distinct, reproducible.
func sampleLeafHashes(_ count: Int) -> [Digest] {
    (0..<count).map { RFC6962.leafHash(Array("leaf \($0)".utf8)) }
}

/// The digest with bit `bit` (0 = most significant bit of byte 0) flipped. The words are the bytes
/// in big-endian order, so bit `b` is bit `63 - b % 64` of word `b / 64`; XOR on the words keeps the
/// millions of flips in the tamper tests cheap.
func flipping(_ digest: Digest, bit: Int) -> Digest {
    var flipped = digest
    let mask = UInt64(1) << UInt64(63 - bit % 64)
    switch bit / 64 {
    case 0: flipped.w0 ^= mask
    case 1: flipped.w1 ^= mask
    case 2: flipped.w2 ^= mask
    default: flipped.w3 ^= mask
    }
    return flipped
}

/// A fresh temporary directory, removed by `cleanup()`.
struct TemporaryDirectory {
    let path: String
    init() throws {
        path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ledger-merkle-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func cleanup() { try? FileManager.default.removeItem(atPath: path) }
}

/// A node reader that counts reads per level, to check that answers need O(log n) of them.
final class CountingReader: MerkleNodeReader {
    let base: InMemoryMerkleTree
    private(set) var reads: [Int: Int] = [:]
    init(_ base: InMemoryMerkleTree) { self.base = base }
    var size: UInt64 { base.size }
    var totalReads: Int { reads.values.reduce(0, +) }
    func reset() { reads = [:] }
    func hash(level: Int, index: UInt64) throws(MerkleTreeError) -> Digest {
        reads[level, default: 0] += 1
        return try base.hash(level: level, index: index)
    }
}
