public import LedgerCrypto

/// The hashes of an RFC 6962 Merkle tree (RFC 9162 §2.1.1), with SHA-256.
///
/// Leaves and interior nodes are hashed with distinct one-byte prefixes, so a leaf can never be
/// passed off as a node (second-preimage resistance):
///
/// - leaf hash: `SHA-256(0x00 ‖ leaf bytes)`
/// - node hash: `SHA-256(0x01 ‖ left ‖ right)`
/// - root of the empty tree: `SHA-256("")`
///
/// The proof verifiers of RFC 9162 §2.1.3.2 and §2.1.4.2 are in `RFC6962+Verification.swift`.
public enum RFC6962 {
    /// The root of the empty tree, `SHA-256("")` (RFC 9162 §2.1.1).
    public static let emptyRoot: Digest = SHA256.hash([UInt8]())

    /// The leaf hash of `bytes`: `SHA-256(0x00 ‖ bytes)`. In EvidenceLedger this is also the entry id.
    public static func leafHash(_ bytes: UnsafeRawBufferPointer) -> Digest {
        SHA256.hash(prefix: 0x00, bytes)
    }

    /// The leaf hash of `bytes`: `SHA-256(0x00 ‖ bytes)`.
    public static func leafHash(_ bytes: some Sequence<UInt8>) -> Digest {
        if let digest = bytes.withContiguousStorageIfAvailable({ leafHash(UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(bytes).withUnsafeBytes { leafHash($0) }
    }

    /// The hash of an interior node: `SHA-256(0x01 ‖ left ‖ right)`.
    ///
    /// Allocates nothing: the 65 hashed bytes are assembled in a stack buffer.
    @inlinable
    public static func nodeHash(_ left: Digest, _ right: Digest) -> Digest {
        withUnsafeTemporaryAllocation(byteCount: 65, alignment: 8) { buffer in
            buffer[0] = 0x01
            left.store(into: buffer, at: 1)
            right.store(into: buffer, at: 33)
            return SHA256.hash(UnsafeRawBufferPointer(buffer))
        }
    }

    /// `SHA-256(0x01 ‖ left ‖ right)` for children of any length; only for known-answer tests whose
    /// published vectors hash short strings rather than digests.
    static func nodeHash(leftBytes: [UInt8], rightBytes: [UInt8]) -> Digest {
        SHA256.hash([0x01] + leftBytes + rightBytes)
    }
}
