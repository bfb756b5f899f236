import LedgerCrypto
import LedgerMerkle
import Testing

/// Each error says what happened with its numbers, and what to do next.
@Suite("Error messages")
struct ErrorMessageTests {
    static let a = digest(String(repeating: "ab", count: 32))
    static let b = digest(String(repeating: "cd", count: 32))

    @Test("proof errors carry their numbers and hashes")
    func proofErrors() {
        let cases: [(ProofError, [String])] = [
            (.indexBeyondTreeSize(index: 12, size: 7), ["12", "7", "newer checkpoint"]),
            (.oldSizeBeyondNewSize(old: 9, new: 4), ["9", "4"]),
            (.wrongProofLength(got: 3, want: 5), ["3", "5"]),
            (.rootMismatch(expected: Self.a, calculated: Self.b), ["ababab", "cdcdcd", "tampered"]),
            (.oldRootMismatch(expected: Self.a, calculated: Self.b), ["ababab", "cdcdcd", "rewritten"]),
            (.treeSizeMismatch(proof: 8, trusted: 9), ["8", "9", "verified checkpoint"]),
            (.leafHashMismatch(proof: Self.a, expected: Self.b), ["ababab", "cdcdcd"]),
        ]
        for (error, parts) in cases {
            for part in parts {
                #expect(error.description.contains(part), "\(error) should mention \(part)")
            }
        }
    }

    @Test("tree errors carry their numbers and paths")
    func treeErrors() {
        let cases: [(MerkleTreeError, [String])] = [
            (.sizeBeyondTree(size: 11, treeSize: 10), ["11", "10"]),
            (.indexBeyondTreeSize(index: 4, size: 3), ["4", "3"]),
            (.oldSizeBeyondNewSize(old: 6, new: 5), ["6", "5"]),
            (.nodeOutOfRange(level: 2, index: 9, count: 3), ["2", "9", "3"]),
            (.inconsistentLevelFile(path: "/l/level-01", length: 64, expected: 96), ["/l/level-01", "64", "96", "rebuild"]),
            (.io(operation: "fsync", path: "/l/level-00", errno: 28), ["fsync", "/l/level-00", "space"]),
        ]
        for (error, parts) in cases {
            for part in parts {
                #expect(error.description.contains(part), "\(error) should mention \(part)")
            }
        }
    }

    @Test("note errors name the key, the numbers or the reason")
    func noteErrors() {
        let cases: [(NoteError, [String])] = [
            (.malformedNote("no blank line"), ["no blank line"]),
            (.invalidKeyName("a b"), ["a b"]),
            (.invalidVerifierKey("bad hash"), ["bad hash"]),
            (.duplicateVerifier(name: "log", keyHash: 0xc74f_20a3), ["log+c74f20a3"]),
            (.invalidSignature(name: "log", keyHash: 0x0000_00ff), ["log+000000ff", "Do not trust"]),
            (.noVerifiedSignature, ["verifier keys"]),
            (.missingLogSignature(name: "log", keyHash: 1), ["log+00000001"]),
            (.notEnoughWitnesses(got: 1, want: 2), ["1", "2"]),
            (.malformedCheckpoint("line 2"), ["line 2"]),
            (.originMismatch(expected: "x.example/a", found: "y.example/b"), ["x.example/a", "y.example/b"]),
            (.invalidConfiguration("two logs"), ["two logs"]),
            (.invalidTimestamp(UInt64.max), [String(UInt64.max)]),
        ]
        for (error, parts) in cases {
            for part in parts {
                #expect(error.description.contains(part), "\(error) should mention \(part)")
            }
        }
    }
}
