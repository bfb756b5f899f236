internal import COpenSSL

/// Bytes from OpenSSL's random generator, for keys.
public enum SecureRandom {
    /// `count` random bytes.
    /// - Throws: ``CryptoError`` if the generator fails.
    public static func bytes(_ count: Int) throws(CryptoError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        guard RAND_bytes(&out, Int32(count)) == 1 else { throw .failed("RAND_bytes") }
        return out
    }
}
