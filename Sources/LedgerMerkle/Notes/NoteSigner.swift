public import LedgerCrypto

/// Signs notes with an Ed25519 key under a name (C2SP `signed-note`, signature type `0x01`): how a log
/// signs its checkpoints. Produces the same signatures as Go's `note.Sign` for the same key.
public struct NoteSigner: Sendable {
    /// The verifier for this signer's key: publish ``NoteVerifier/verifierKey``.
    public let verifier: NoteVerifier
    private let key: SigningKey

    /// A signer for `key` under `name` (for a log, its origin).
    /// - Throws: ``NoteError/invalidKeyName(_:)``.
    public init(name: String, key: SigningKey) throws(NoteError) {
        self.verifier = try NoteVerifier(name: name, publicKey: key.publicKey, algorithm: .ed25519)
        self.key = key
    }

    /// The signature line for `text`, the note text including its final newline.
    /// - Throws: ``NoteError/signingFailed(_:)``.
    public func signature(for text: String) throws(NoteError) -> NoteSignature {
        let signature: [UInt8]
        do {
            signature = try key.signature(for: Array(text.utf8))
        } catch {
            throw .signingFailed(error)
        }
        return try NoteSignature(name: verifier.name, keyHash: verifier.keyHash, signature: signature)
    }
}

/// Cosigns checkpoints as a witness (C2SP `tlog-cosignature`, Ed25519, signature type `0x04`).
///
/// The signature is the 8-byte big-endian timestamp followed by the Ed25519 signature of
/// `"cosignature/v1\ntime <timestamp>\n"` and the whole checkpoint body. That message does not name
/// the witness, so one key must serve one witness name only.
public struct WitnessSigner: Sendable {
    /// The verifier for this witness's key: publish ``NoteVerifier/verifierKey``.
    public let verifier: NoteVerifier
    private let key: SigningKey

    /// A witness signer for `key` under `name`.
    /// - Throws: ``NoteError/invalidKeyName(_:)``.
    public init(name: String, key: SigningKey) throws(NoteError) {
        self.verifier = try NoteVerifier(name: name, publicKey: key.publicKey, algorithm: .cosignatureV1)
        self.key = key
    }

    /// The cosignature line for the checkpoint body `text` at `timestamp` (POSIX seconds).
    ///
    /// A witness must first verify the log's signature and that the checkpoint is consistent with the
    /// largest one it has seen; this only signs.
    /// - Throws: ``NoteError/invalidTimestamp(_:)`` above 2^63 − 1, ``NoteError/signingFailed(_:)``.
    public func cosignature(for text: String, timestamp: UInt64) throws(NoteError) -> NoteSignature {
        guard timestamp <= UInt64(Int64.max) else { throw .invalidTimestamp(timestamp) }
        let signature: [UInt8]
        do {
            signature = try key.signature(for: cosignedMessage(timestamp: timestamp, text: Array(text.utf8)))
        } catch {
            throw .signingFailed(error)
        }
        let timestampBytes = (0..<8).map { UInt8(truncatingIfNeeded: timestamp >> (56 - 8 * $0)) }
        return try NoteSignature(name: verifier.name, keyHash: verifier.keyHash, signature: timestampBytes + signature)
    }
}
