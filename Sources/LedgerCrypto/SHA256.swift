internal import COpenSSL

/// SHA-256 (FIPS 180-4) through OpenSSL.
public enum SHA256 {
    /// The digest of `bytes`.
    public static func hash(_ bytes: UnsafeRawBufferPointer) -> Digest {
        var hasher = Hasher()
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The digest of `bytes`.
    public static func hash(_ bytes: some Sequence<UInt8>) -> Digest {
        if let digest = bytes.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) {
            return digest
        }
        return Array(bytes).withUnsafeBytes { hash($0) }
    }

    /// The digest of `prefix` followed by `bytes`, without copying them together: RFC 6962 leaf
    /// and node hashes are of this shape.
    public static func hash(prefix: UInt8, _ bytes: UnsafeRawBufferPointer) -> Digest {
        var hasher = Hasher()
        withUnsafeBytes(of: prefix) { hasher.update($0) }
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// An incremental SHA-256 computation.
    ///
    /// The state is a plain C struct held inline, so hashing allocates nothing; OpenSSL's
    /// one-shot EVP calls allocate and free a context per digest, which dominates the cost of
    /// hashing the 65-byte nodes of a Merkle tree.
    public struct Hasher: ~Copyable {
        private var context = ledger_ossl_sha256_ctx()

        /// Starts a new digest.
        public init() {
            ledger_ossl_sha256_init(&context)
        }

        /// Adds `bytes` to the digest.
        public mutating func update(_ bytes: UnsafeRawBufferPointer) {
            guard let base = bytes.baseAddress, bytes.count > 0 else { return }
            ledger_ossl_sha256_update(&context, base, bytes.count)
        }

        /// Adds `bytes` to the digest.
        public mutating func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { update($0) }
        }

        /// Finishes the digest.
        public consuming func finalize() -> Digest {
            var out: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
            withUnsafeMutableBytes(of: &out) { raw in
                guard let base = raw.baseAddress else { return }
                ledger_ossl_sha256_final(&context, base.assumingMemoryBound(to: UInt8.self))
            }
            return withUnsafeBytes(of: &out) { Digest(loadingFrom: $0) }
        }
    }
}
