import LedgerCrypto

/// A slow Merkle tree that follows the text of RFC 6962 §2.1 literally, recursively, over the leaf
/// hashes; the fast implementation must agree with it. It shares no code with LedgerMerkle: its
/// node hash concatenates bytes and hashes them with SHA-256 directly.
///
/// `MTH(D[start:end])` is memoised by range, which changes nothing but the running time.
final class ReferenceTree {
    let leafHashes: [Digest]
    private var memo: [Range<Int>: Digest] = [:]

    init(leafHashes: [Digest]) { self.leafHashes = leafHashes }

    /// SHA-256(0x01 ‖ left ‖ right), written out.
    static func node(_ left: Digest, _ right: Digest) -> Digest {
        SHA256.hash([0x01] + left.rawRepresentation + right.rawRepresentation)
    }

    /// The largest power of two smaller than n (k < n <= 2k), by counting up.
    static func split(_ n: Int) -> Int {
        var k = 1
        while k * 2 < n { k *= 2 }
        return k
    }

    /// MTH(D[range]) of RFC 6962 §2.1: empty → SHA-256(""), one leaf → its leaf hash, otherwise
    /// SHA-256(0x01 ‖ MTH(D[0:k]) ‖ MTH(D[k:n])).
    func mth(_ range: Range<Int>) -> Digest {
        if range.isEmpty { return SHA256.hash([UInt8]()) }
        if range.count == 1 { return leafHashes[range.lowerBound] }
        if let known = memo[range] { return known }
        let k = Self.split(range.count)
        let value = Self.node(mth(range.lowerBound..<(range.lowerBound + k)), mth((range.lowerBound + k)..<range.upperBound))
        memo[range] = value
        return value
    }

    /// PATH(m, D[range]) of RFC 6962 §2.1.1, m relative to the range.
    func path(_ m: Int, _ range: Range<Int>) -> [Digest] {
        if range.count <= 1 { return [] }
        let k = Self.split(range.count)
        let left = range.lowerBound..<(range.lowerBound + k)
        let right = (range.lowerBound + k)..<range.upperBound
        if m < k {
            return path(m, left) + [mth(right)]
        } else {
            return path(m - k, right) + [mth(left)]
        }
    }

    /// PROOF(m, D[n]) = SUBPROOF(m, D[n], true) of RFC 6962 §2.1.2, for 0 < m < n.
    func proof(_ m: Int, _ n: Int) -> [Digest] {
        subproof(m, 0..<n, true)
    }

    private func subproof(_ m: Int, _ range: Range<Int>, _ b: Bool) -> [Digest] {
        if m == range.count { return b ? [] : [mth(range)] }
        let k = Self.split(range.count)
        let left = range.lowerBound..<(range.lowerBound + k)
        let right = (range.lowerBound + k)..<range.upperBound
        if m <= k {
            return subproof(m, left, b) + [mth(right)]
        } else {
            return subproof(m - k, right, false) + [mth(left)]
        }
    }
}
