/// HMAC-SHA256 (RFC 2104), built on ``SHA256/Hasher``: `H((K ⊕ opad) ‖ H((K ⊕ ipad) ‖ m))`,
/// computed as the message is given, so that a large message is never held whole.
public struct HMACSHA256: ~Copyable {
    private var inner = SHA256.Hasher()
    /// The key, padded to SHA-256's 64-byte block, XORed with opad.
    private let outerKey: [UInt8]

    /// Starts a MAC under `key` (hashed first if longer than a block).
    public init(key: [UInt8]) {
        var block = key.count > 64 ? SHA256.hash(key).rawRepresentation : key
        block += [UInt8](repeating: 0, count: 64 - block.count)
        inner.update(block.map { $0 ^ 0x36 })
        outerKey = block.map { $0 ^ 0x5C }
    }

    /// Adds `bytes` to the message.
    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        inner.update(bytes)
    }

    /// Finishes the MAC.
    public consuming func finalize() -> Digest {
        var outer = SHA256.Hasher()
        outer.update(outerKey)
        outer.update(inner.finalize().rawRepresentation)
        return outer.finalize()
    }

    /// The MAC of `bytes` under `key`.
    public static func mac(key: [UInt8], _ bytes: UnsafeRawBufferPointer) -> Digest {
        var mac = HMACSHA256(key: key)
        mac.update(bytes)
        return mac.finalize()
    }
}
