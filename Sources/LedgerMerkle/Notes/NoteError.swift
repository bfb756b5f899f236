public import LedgerCrypto

/// Why a signed note, a note key or a checkpoint was rejected: a small closed set, each case with
/// what is needed to find the problem.
///
/// Tests match on the case, never on the wording of ``description``.
public enum NoteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The note does not have the signed-note shape (C2SP `signed-note`): the reason says where.
    case malformedNote(String)
    /// A key name is empty, or has a Unicode space or a plus sign.
    case invalidKeyName(String)
    /// A verifier key string (`<name>+<hash>+<key>`) could not be parsed, or its hash does not fit.
    case invalidVerifierKey(String)
    /// Two different keys were configured with the same name and key hash.
    case duplicateVerifier(name: String, keyHash: UInt32)
    /// A signature line of a known key does not verify.
    case invalidSignature(name: String, keyHash: UInt32)
    /// No signature line of a known key is in the note.
    case noVerifiedSignature
    /// The checkpoint has no signature from the log's key.
    case missingLogSignature(name: String, keyHash: UInt32)
    /// Fewer distinct witnesses cosigned than required.
    case notEnoughWitnesses(got: Int, want: Int)
    /// The note text is not a C2SP `tlog-checkpoint` body: the reason says which line.
    case malformedCheckpoint(String)
    /// The checkpoint is from another log.
    case originMismatch(expected: String, found: String)
    /// The verifiers given cannot work together (the reason says why).
    case invalidConfiguration(String)
    /// A cosignature timestamp above 2^63 − 1, which C2SP `tlog-cosignature` forbids.
    case invalidTimestamp(UInt64)
    /// The signing key failed to sign.
    case signingFailed(CryptoError)

    public var description: String {
        switch self {
        case let .malformedNote(reason):
            return "Not a well-formed signed note: \(reason). It was damaged or is not a signed note; "
                + "fetch the checkpoint again."
        case let .invalidKeyName(name):
            return "\"\(name)\" is not a valid note key name: it must be non-empty, without spaces or '+'."
        case let .invalidVerifierKey(reason):
            return "Not a valid verifier key (<name>+<8 hex digits>+<base64 key>): \(reason). "
                + "Copy the key again from where the log publishes it."
        case let .duplicateVerifier(name, keyHash):
            return "Two different keys are configured as \(name)+\(hex8(keyHash)); remove the wrong one."
        case let .invalidSignature(name, keyHash):
            return "The signature by \(name)+\(hex8(keyHash)) does not verify: the note was changed after "
                + "signing, or was not signed by that key. Do not trust it."
        case .noVerifiedSignature:
            return "The note has no signature from any known key. Check that the right verifier keys are configured."
        case let .missingLogSignature(name, keyHash):
            return "The checkpoint is not signed by the log key \(name)+\(hex8(keyHash)). "
                + "Check the log's verifier key, or fetch the checkpoint from the log itself."
        case let .notEnoughWitnesses(got, want):
            return "Only \(got) of the required \(want) witnesses cosigned this checkpoint. "
                + "Wait for more cosignatures, or fetch the checkpoint from a witness."
        case let .malformedCheckpoint(reason):
            return "The signed text is not a checkpoint: \(reason)."
        case let .originMismatch(expected, found):
            return "The checkpoint is for log \"\(found)\", not \"\(expected)\". Check which log you fetched it from."
        case let .invalidConfiguration(reason):
            return "Invalid checkpoint verifier: \(reason)."
        case let .invalidTimestamp(timestamp):
            return "Cosignature timestamp \(timestamp) is above 2^63 - 1."
        case let .signingFailed(cause):
            return "Signing failed: \(cause)"
        }
    }
}

/// Eight lowercase hex digits, as key hashes are written in verifier keys.
func hex8(_ value: UInt32) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 8 - digits.count) + digits
}
