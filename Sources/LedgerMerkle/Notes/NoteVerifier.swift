public import LedgerCrypto

/// A public key that verifies note signatures, with its name and key hash (C2SP `signed-note`).
///
/// Its text form is the verifier key `<name>+<8 lowercase hex key hash>+<base64(type ‖ public key)>`,
/// as Go's `golang.org/x/mod/sumdb/note` reads it. The key hash is the first 4 bytes (big-endian) of
/// `SHA-256(name ‖ "\n" ‖ type ‖ public key)`.
public struct NoteVerifier: Hashable, Sendable, CustomStringConvertible {
    /// The signature type: which algorithm and which signed message.
    public enum Algorithm: UInt8, Hashable, Sendable {
        /// Ed25519 over the note text (signature type `0x01`): a log's checkpoint signature.
        case ed25519 = 0x01
        /// A timestamped Ed25519 witness cosignature, C2SP `tlog-cosignature` (signature type `0x04`).
        case cosignatureV1 = 0x04
    }

    /// The key name: non-empty, no Unicode spaces, no `+`.
    public let name: String
    /// The key hash that signature lines carry.
    public let keyHash: UInt32
    /// The signature type.
    public let algorithm: Algorithm
    /// The Ed25519 public key.
    public let publicKey: PublicKey

    /// A verifier for `publicKey` under `name`.
    /// - Throws: ``NoteError/invalidKeyName(_:)``.
    public init(name: String, publicKey: PublicKey, algorithm: Algorithm = .ed25519) throws(NoteError) {
        guard isValidKeyName(name) else { throw .invalidKeyName(name) }
        self.name = name
        self.algorithm = algorithm
        self.publicKey = publicKey
        self.keyHash = Self.keyHash(name: name, algorithm: algorithm, publicKey: publicKey)
    }

    /// Parses a verifier key `<name>+<hash>+<base64 key>`, strictly: a valid name, exactly 8 lowercase
    /// hex digits, canonical padded base64 of a type byte (`0x01` or `0x04`) and 32 key bytes, and a
    /// hash that matches the name and key.
    /// - Throws: ``NoteError/invalidVerifierKey(_:)`` or ``NoteError/invalidKeyName(_:)``.
    public init(verifierKey: String) throws(NoteError) {
        let utf8 = verifierKey.utf8
        guard let firstPlus = utf8.firstIndex(of: UInt8(ascii: "+")) else {
            throw .invalidVerifierKey("no '+' after the name")
        }
        let afterName = utf8.index(after: firstPlus)
        guard let secondPlus = utf8[afterName...].firstIndex(of: UInt8(ascii: "+")) else {
            throw .invalidVerifierKey("no '+' after the key hash")
        }
        let name = String(verifierKey[..<firstPlus])
        let hashText = Array(utf8[afterName..<secondPlus])
        let keyText = utf8[utf8.index(after: secondPlus)...]
        guard isValidKeyName(name) else { throw .invalidKeyName(name) }
        guard hashText.count == 8, let hash = parseLowercaseHex(hashText) else {
            throw .invalidVerifierKey("the key hash must be 8 lowercase hex digits")
        }
        guard let keyBytes = Base64.decodeCanonical(utf8: keyText), let type = keyBytes.first else {
            throw .invalidVerifierKey("the key is not canonical padded base64")
        }
        guard let algorithm = Algorithm(rawValue: type) else {
            throw .invalidVerifierKey("unknown signature type \(type)")
        }
        guard keyBytes.count == 33 else {
            throw .invalidVerifierKey("an Ed25519 key has 32 bytes, not \(keyBytes.count - 1)")
        }
        let publicKey: PublicKey
        do {
            publicKey = try PublicKey(rawRepresentation: keyBytes.dropFirst())
        } catch {
            throw .invalidVerifierKey("not an Ed25519 public key: \(error)")
        }
        try self.init(name: name, publicKey: publicKey, algorithm: algorithm)
        guard keyHash == hash else {
            throw .invalidVerifierKey("key hash \(hex8(hash)) does not match the name and key (\(hex8(keyHash)))")
        }
    }

    /// The verifier key string, `<name>+<hash>+<base64(type ‖ public key)>`.
    public var verifierKey: String {
        "\(name)+\(hex8(keyHash))+\(Base64.encode([algorithm.rawValue] + publicKey.rawRepresentation))"
    }

    public var description: String { verifierKey }

    /// `SHA-256(name ‖ "\n" ‖ type ‖ public key)[:4]` as a big-endian integer.
    static func keyHash(name: String, algorithm: Algorithm, publicKey: PublicKey) -> UInt32 {
        let digest = SHA256.hash(Array(name.utf8) + [0x0A, algorithm.rawValue] + publicKey.rawRepresentation)
        return digest.rawRepresentation.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Whether `signature` (the bytes after the key hash) is this key's valid signature of `text`.
    ///
    /// Ed25519: a 64-byte signature of the text. Cosignature/v1: an 8-byte big-endian timestamp
    /// `t ≤ 2^63 − 1` and a 64-byte signature of `"cosignature/v1\ntime <t>\n" ‖ text`.
    func isValidSignature(_ signature: [UInt8], forText text: [UInt8]) -> Bool {
        switch algorithm {
        case .ed25519:
            return publicKey.isValidSignature(signature, for: text)
        case .cosignatureV1:
            guard let timestamp = cosignatureTimestamp(signature) else { return false }
            return publicKey.isValidSignature(
                Array(signature.dropFirst(8)), for: cosignedMessage(timestamp: timestamp, text: text))
        }
    }
}

/// The timestamp of a cosignature/v1 signature (the bytes after the key hash): `nil` unless it is
/// 8 + 64 bytes with a timestamp of at most 2^63 − 1.
func cosignatureTimestamp(_ signature: [UInt8]) -> UInt64? {
    guard signature.count == 72 else { return nil }
    let timestamp = signature.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return timestamp <= UInt64(Int64.max) ? timestamp : nil
}

/// The message a cosignature/v1 signs (C2SP `tlog-cosignature`, "Ed25519 signed message"): the header
/// line, the timestamp line, then the whole checkpoint body with its final newline.
func cosignedMessage(timestamp: UInt64, text: [UInt8]) -> [UInt8] {
    Array("cosignature/v1\ntime \(timestamp)\n".utf8) + text
}

/// A note key name: non-empty, no Unicode space (White_Space, as Go's `unicode.IsSpace`), no `+`, and
/// (stricter than Go, since a note cannot carry them anyway) no ASCII control character.
public func isValidKeyName(_ name: String) -> Bool {
    !name.isEmpty && !name.unicodeScalars.contains { $0.properties.isWhitespace || $0 == "+" || $0.value < 0x20 }
}

private func parseLowercaseHex(_ digits: [UInt8]) -> UInt32? {
    var value: UInt32 = 0
    for digit in digits {
        switch digit {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): value = value << 4 | UInt32(digit - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): value = value << 4 | UInt32(digit - UInt8(ascii: "a") + 10)
        default: return nil
        }
    }
    return value
}
