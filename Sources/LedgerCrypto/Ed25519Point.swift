internal import COpenSSL

/// Checks of an Ed25519 public key's encoding that OpenSSL does not make. OpenSSL takes any 32
/// bytes as a public key and verifies with the cofactorless equation [S]B = R + [k]A, which for
/// a point A of small order holds for signatures made without any private key: with A the
/// identity, R the identity and S = 0 sign every message. So such keys are refused wherever a
/// key is read, before any signature is checked with one.
extension PublicKey {
    /// p = 2^255 − 19, big-endian.
    private static let primeBytes: [UInt8] = [0x7F] + [UInt8](repeating: 0xFF, count: 30) + [0xED]

    /// The y-coordinates of the eight points of small order (RFC 8032's curve has cofactor 8),
    /// little-endian: 0 (order 4), 1 (the identity), p − 1 (order 2), and the two of order 8.
    /// Each is refused with either sign of x; with y < p required, these are all their encodings.
    private static let smallOrderYs: [[UInt8]] = [
        [UInt8](repeating: 0, count: 32),
        [1] + [UInt8](repeating: 0, count: 31),
        [0xEC] + [UInt8](repeating: 0xFF, count: 30) + [0x7F],
        [
            0x26, 0xE8, 0x95, 0x8F, 0xC2, 0xB2, 0x27, 0xB0, 0x45, 0xC3, 0xF4, 0x89, 0xF2, 0xEF, 0x98, 0xF0,
            0xD5, 0xDF, 0xAC, 0x05, 0xD3, 0xC6, 0x33, 0x39, 0xB1, 0x38, 0x02, 0x88, 0x6D, 0x53, 0xFC, 0x05,
        ],
        [
            0xC7, 0x17, 0x6A, 0x70, 0x3D, 0x4D, 0xD8, 0x4F, 0xBA, 0x3C, 0x0B, 0x76, 0x0D, 0x10, 0x67, 0x0F,
            0x2A, 0x20, 0x53, 0xFA, 0x2C, 0x39, 0xCC, 0xC6, 0x4E, 0xC7, 0xFD, 0x77, 0x92, 0xAC, 0x03, 0x7A,
        ],
    ]

    /// Refuses a point of small order, and a y-coordinate not reduced modulo p (a second
    /// encoding of a point whose y is below 19, which other implementations refuse: RFC 8032
    /// §5.1.3 step 1). Byte comparisons only, so every parse of a key makes them.
    static func refuseWeakEncoding(_ raw: [UInt8]) throws(CryptoError) {
        var y = raw
        y[31] &= 0x7F
        if y.reversed().lexicographicallyPrecedes(primeBytes) == false {
            throw .unusableKey("its y-coordinate is not reduced modulo 2^255 − 19, so it is a second encoding of another key (RFC 8032 §5.1.3)")
        }
        if smallOrderYs.contains(y) {
            throw .unusableKey("it is a point of small order, for which signatures that verify can be made without any private key")
        }
    }

    /// Checks that the key's encoding decodes to a point of the curve, as RFC 8032 §5.1.3 decodes
    /// it: x² = (y² − 1) / (d·y² + 1) must have a square root modulo p, and x = 0 must come with
    /// a sign bit of 0. OpenSSL takes any 32 bytes as a key and refuses every signature under one
    /// that is no point; this says so where the key is registered instead. A modular square root
    /// costs tens of microseconds, so it is for registering keys, not for every parse.
    /// - Throws: ``CryptoError/unusableKey(_:)`` if it is no point, or an OpenSSL error.
    public func checkIsPoint() throws(CryptoError) {
        guard let ctx = BN_CTX_new() else { throw .failed("BN_CTX_new") }
        defer { BN_CTX_free(ctx) }
        BN_CTX_start(ctx)
        defer { BN_CTX_end(ctx) }
        guard let p = BN_CTX_get(ctx), let d = BN_CTX_get(ctx), let t = BN_CTX_get(ctx), let y = BN_CTX_get(ctx),
            let u = BN_CTX_get(ctx), let v = BN_CTX_get(ctx)
        else { throw .failed("BN_CTX_get") }
        var yBytes = rawRepresentation
        let sign = yBytes[31] >> 7
        yBytes[31] &= 0x7F
        // d = −121665 / 121666 mod p.
        guard BN_bin2bn(Self.primeBytes, 32, p) != nil, BN_lebin2bn(yBytes, 32, y) != nil,
            BN_set_word(t, 121_666) == 1, BN_mod_inverse(d, t, p, ctx) != nil,
            BN_set_word(t, 121_665) == 1, BN_sub(t, p, t) == 1, BN_mod_mul(d, d, t, p, ctx) == 1,
            // u = y² − 1, v = d·y² + 1, t = u / v.
            BN_mod_sqr(t, y, p, ctx) == 1, BN_copy(u, t) != nil, BN_sub_word(u, 1) == 1, BN_nnmod(u, u, p, ctx) == 1,
            BN_mod_mul(v, d, t, p, ctx) == 1, BN_add_word(v, 1) == 1, BN_nnmod(v, v, p, ctx) == 1,
            BN_mod_inverse(v, v, p, ctx) != nil, BN_mod_mul(t, u, v, p, ctx) == 1
        else {
            throw .failed("BN arithmetic")
        }
        if BN_is_zero(t) == 1 {
            // x = 0: only the sign bit 0 encodes it.
            if sign == 1 { throw .unusableKey("it encodes x = 0 with the sign bit set, which no point has (RFC 8032 §5.1.3)") }
            return
        }
        // BN_mod_sqrt checks its answer: it fails for a number with no square root, saying so.
        guard BN_mod_sqrt(u, t, p, ctx) != nil else {
            let notASquare = ledger_ossl_last_error_is_not_a_square() != 0
            let queue = drainOpenSSLErrors()
            guard notASquare else { throw .openSSL(function: "BN_mod_sqrt", queue: queue) }
            throw .unusableKey("its bytes are not a point of the curve: no x has the y-coordinate they encode (RFC 8032 §5.1.3)")
        }
    }
}
