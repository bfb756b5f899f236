internal import COpenSSL

/// An Ed25519 public key (RFC 8032), parsed once and reusable across threads.
public struct PublicKey: Hashable, Sendable, CustomStringConvertible {
    /// The 32-byte encoded point.
    public let rawRepresentation: [UInt8]
    /// The key id used in DSSE envelopes: SHA-256 of the 32 raw bytes, computed once (keys are
    /// looked up and sorted by it).
    public let keyID: Digest
    fileprivate let box: PKeyBox

    /// Creates a key from its 32-byte encoding.
    /// - Throws: ``CryptoError/wrongLength(what:got:want:)``; ``CryptoError/unusableKey(_:)`` for
    ///   a point of small order or a second encoding of a point (``refuseWeakEncoding(_:)``).
    ///   Whether the bytes are a point at all is a separate, slower check: ``checkIsPoint()``.
    public init(rawRepresentation bytes: some Collection<UInt8>) throws(CryptoError) {
        let raw = Array(bytes)
        guard raw.count == 32 else { throw .wrongLength(what: "Ed25519 public key", got: raw.count, want: 32) }
        try Self.refuseWeakEncoding(raw)
        let key = raw.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }
        guard let key else { throw .failed("EVP_PKEY_new_raw_public_key") }
        self.rawRepresentation = raw
        self.keyID = SHA256.hash(raw)
        self.box = PKeyBox(takingOwnershipOf: key)
    }

    /// Reads an SPKI public key in PEM (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes.
    /// - Throws: ``CryptoError/invalidPEM(_:)`` or ``CryptoError/notEd25519(_:)``.
    /// - Throws: ``CryptoError/invalidPEM(_:)`` or ``CryptoError/notEd25519(_:)``; also when the
    ///   block is not the key's one DER encoding (bytes after it, or unused bits in its bit
    ///   string, which OpenSSL reads without a word, the latter as another key).
    public init(pemRepresentation text: String) throws(CryptoError) {
        // A passphrase callback that always fails: OpenSSL would otherwise prompt on the terminal
        // when the text holds an encrypted private key.
        let parsed = try withMemoryBIO(text) { PEM_read_bio_PUBKEY($0, nil, { _, _, _, _ in -1 }, nil) }
        guard let parsed else {
            throw .invalidPEM("no PUBLIC KEY block (\(drainOpenSSLErrors()))")
        }
        let box = PKeyBox(takingOwnershipOf: parsed)
        self.rawRepresentation = try Self.rawPublicBytes(of: box.pointer)
        self.keyID = SHA256.hash(rawRepresentation)
        self.box = box
        try Self.refuseWeakEncoding(rawRepresentation)
        guard pemBody(pemRepresentation, label: "PUBLIC KEY") == pemBody(text, label: "PUBLIC KEY") else {
            throw .invalidPEM("the PUBLIC KEY block is not an Ed25519 key's one DER encoding (extra bytes, or unused bits in its bit string)")
        }
    }


    init(box: PKeyBox) throws(CryptoError) {
        self.rawRepresentation = try Self.rawPublicBytes(of: box.pointer)
        self.keyID = SHA256.hash(rawRepresentation)
        self.box = box
    }

    /// The SPKI PEM encoding (`-----BEGIN PUBLIC KEY-----`).
    public var pemRepresentation: String {
        // Writing a valid in-memory key cannot fail short of memory exhaustion.
        (try? pemText { PEM_write_bio_PUBKEY($0, box.pointer) }) ?? ""
    }


    /// Whether `signature` is a valid Ed25519 signature of `message` under this key.
    ///
    /// OpenSSL rejects non-canonical signatures (S ≥ L) and wrong lengths.
    public func isValidSignature(_ signature: [UInt8], for message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == 64, let ctx = EVP_MD_CTX_new() else { return false }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, box.pointer) == 1 else {
            _ = drainOpenSSLErrors()
            return false
        }
        let result = signature.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(ctx, sig.baseAddress, 64, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        if result != 1 { _ = drainOpenSSLErrors() }
        return result == 1
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` under this key.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, for: $0) }
    }

    public static func == (a: PublicKey, b: PublicKey) -> Bool { a.rawRepresentation == b.rawRepresentation }
    public func hash(into hasher: inout Hasher) { hasher.combine(rawRepresentation) }
    public var description: String { "Ed25519 public key \(keyID.shortHex(16))" }

    private static func rawPublicBytes(of key: OpaquePointer) throws(CryptoError) -> [UInt8] {
        guard EVP_PKEY_get_id(key) == EVP_PKEY_ED25519 else {
            throw .notEd25519("the PEM holds a key of another algorithm")
        }
        var raw = [UInt8](repeating: 0, count: 32)
        var length = 32
        guard EVP_PKEY_get_raw_public_key(key, &raw, &length) == 1, length == 32 else {
            throw .failed("EVP_PKEY_get_raw_public_key")
        }
        return raw
    }
}

/// Checks signatures of one key with one OpenSSL context, set up once: setting one up for every
/// signature (``PublicKey/isValidSignature(_:for:)-(_,UnsafeRawBufferPointer)``) costs about
/// 1.4 µs, 1.4% of a verify. As `openssl speed ed25519` does, the context is initialised again
/// with its key (all arguments `NULL`) before each signature, which costs a few tenths of that and
/// clears what OpenSSL 3.2 and later keep after a verification (a context they mark finalised).
/// For one thread at a time.
///
/// A signature the kept context refuses is checked again with a context set up afresh, which
/// then replaces it, and that answer is the one given: the kept context never turns a valid
/// signature into an invalid one, and never keeps a state after a failure.
public final class SignatureVerifier {
    /// The key whose signatures it checks.
    public let key: PublicKey
    private var context: OpaquePointer?

    public init(_ key: PublicKey) {
        self.key = key
        context = Self.context(for: key)
    }

    deinit { EVP_MD_CTX_free(context) }

    private static func context(for key: PublicKey) -> OpaquePointer? {
        guard let ctx = EVP_MD_CTX_new() else { return nil }
        guard EVP_DigestVerifyInit(ctx, nil, nil, nil, key.box.pointer) == 1 else {
            _ = drainOpenSSLErrors()
            EVP_MD_CTX_free(ctx)
            return nil
        }
        return ctx
    }

    private static func verify(_ context: OpaquePointer, _ signature: [UInt8], _ message: UnsafeRawBufferPointer) -> Bool {
        let result = signature.withUnsafeBufferPointer { sig in
            EVP_DigestVerify(context, sig.baseAddress, 64, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        }
        if result != 1 { _ = drainOpenSSLErrors() }
        return result == 1
    }

    /// Whether `signature` is a valid Ed25519 signature of `message` under ``key``: the same
    /// answer as ``PublicKey/isValidSignature(_:for:)-(_,UnsafeRawBufferPointer)``.
    public func isValidSignature(_ signature: [UInt8], for message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == 64 else { return false }
        if let context, EVP_DigestVerifyInit(context, nil, nil, nil, nil) == 1, Self.verify(context, signature, message) { return true }
        _ = drainOpenSSLErrors()
        EVP_MD_CTX_free(context)
        context = Self.context(for: key)
        guard let context else { return key.isValidSignature(signature, for: message) }
        return Self.verify(context, signature, message)
    }

    /// As ``isValidSignature(_:for:)-(_,UnsafeRawBufferPointer)``, for a message in an array.
    public func isValidSignature(_ signature: [UInt8], for message: [UInt8]) -> Bool {
        message.withUnsafeBytes { isValidSignature(signature, for: $0) }
    }
}

/// An Ed25519 private key (RFC 8032). Its `description` shows only the public key's fingerprint.
public struct SigningKey: Sendable, CustomStringConvertible {
    private let box: PKeyBox
    /// The matching public key.
    public let publicKey: PublicKey

    /// Creates a key from its 32-byte seed (RFC 8032 §5.1.5).
    public init(seed bytes: some Collection<UInt8>) throws(CryptoError) {
        let seed = Array(bytes)
        guard seed.count == 32 else { throw .wrongLength(what: "Ed25519 seed", got: seed.count, want: 32) }
        let key = seed.withUnsafeBufferPointer {
            EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32)
        }
        guard let key else { throw .failed("EVP_PKEY_new_raw_private_key") }
        try self.init(box: PKeyBox(takingOwnershipOf: key))
    }

    /// Reads a PKCS#8 private key in PEM (`-----BEGIN PRIVATE KEY-----`), as
    /// `openssl genpkey -algorithm ed25519` writes. Encrypted keys are refused.
    public init(pemRepresentation text: String) throws(CryptoError) {
        // A passphrase callback that always fails: an encrypted key is refused instead of prompting.
        let parsed = try withMemoryBIO(text) { bio in
            PEM_read_bio_PrivateKey(bio, nil, { _, _, _, _ in -1 }, nil)
        }
        guard let parsed else {
            throw .invalidPEM("no unencrypted PRIVATE KEY block (\(drainOpenSSLErrors()))")
        }
        try self.init(box: PKeyBox(takingOwnershipOf: parsed))
        // OpenSSL reads bytes after the key, and lengths in longer forms than DER's, without a
        // word: one key, one spelling, the one it writes, as for public keys.
        guard let written = try? pemRepresentation(), pemBody(written, label: "PRIVATE KEY") == pemBody(text, label: "PRIVATE KEY") else {
            throw .invalidPEM("the PRIVATE KEY block is not the key's DER encoding as OpenSSL writes it (bytes after the key, a length in a longer form, or optional fields); write it again with `openssl pkey -in KEY -out KEY2`")
        }
    }

    private init(box: PKeyBox) throws(CryptoError) {
        self.box = box
        self.publicKey = try PublicKey(box: box)
    }

    /// A new key from OpenSSL's random generator.
    public static func generate() throws(CryptoError) -> SigningKey {
        var seed = try SecureRandom.bytes(32)
        defer { OPENSSL_cleanse(&seed, 32) }
        return try SigningKey(seed: seed)
    }

    /// The PKCS#8 PEM encoding (`-----BEGIN PRIVATE KEY-----`), unencrypted.
    public func pemRepresentation() throws(CryptoError) -> String {
        try pemText { PEM_write_bio_PrivateKey($0, box.pointer, nil, nil, 0, nil, nil) }
    }

    /// The Ed25519 signature of `message` (64 bytes; deterministic).
    public func signature(for message: UnsafeRawBufferPointer) throws(CryptoError) -> [UInt8] {
        guard let ctx = EVP_MD_CTX_new() else { throw .failed("EVP_MD_CTX_new") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestSignInit(ctx, nil, nil, nil, box.pointer) == 1 else { throw .failed("EVP_DigestSignInit") }
        var signature = [UInt8](repeating: 0, count: 64)
        var length = 64
        let ok = EVP_DigestSign(ctx, &signature, &length, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count)
        guard ok == 1, length == 64 else { throw .failed("EVP_DigestSign") }
        return signature
    }

    /// The Ed25519 signature of `message` (64 bytes; deterministic).
    public func signature(for message: [UInt8]) throws(CryptoError) -> [UInt8] {
        try message.withUnsafeBytes { raw in Result { () throws(CryptoError) in try signature(for: raw) } }.get()
    }

    public var description: String { "Ed25519 signing key for \(publicKey.keyID.shortHex(16))" }
}

/// The base64 of the first `label` block of `text` (`-----BEGIN label-----`), without its line
/// breaks.
private func pemBody(_ text: String, label: String) -> Substring? {
    guard let begin = text.firstRange(of: "-----BEGIN \(label)-----"), let end = text[begin.upperBound...].firstRange(of: "-----END \(label)-----")
    else { return nil }
    return Substring(text[begin.upperBound..<end.lowerBound].filter { !$0.isWhitespace })
}
