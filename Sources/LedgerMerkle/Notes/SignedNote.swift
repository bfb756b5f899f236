import LedgerCrypto

/// One signature line of a signed note: `— <name> <base64(key hash ‖ signature)>`.
public struct NoteSignature: Hashable, Sendable, CustomStringConvertible {
    /// The key name.
    public let name: String
    /// The key hash, the first 4 bytes of the base64 payload (big-endian).
    public let keyHash: UInt32
    /// The signature bytes after the key hash.
    public let signature: [UInt8]

    /// A signature line's parts.
    /// - Throws: ``NoteError/invalidKeyName(_:)`` or ``NoteError/malformedNote(_:)`` for an empty signature.
    public init(name: String, keyHash: UInt32, signature: [UInt8]) throws(NoteError) {
        guard isValidKeyName(name) else { throw .invalidKeyName(name) }
        guard !signature.isEmpty else { throw .malformedNote("an empty signature for \(name)") }
        self.name = name
        self.keyHash = keyHash
        self.signature = signature
    }

    /// The key as verifier keys name it: `<name>+<8 hex digits of the key hash>`.
    public var keyName: String { "\(name)+\(hex8(keyHash))" }

    /// The line without its newline: U+2014 em dash, space, name, space, base64(key hash ‖ signature).
    public var line: String {
        let hashBytes: [UInt8] = [UInt8(keyHash >> 24), UInt8(keyHash >> 16 & 0xFF), UInt8(keyHash >> 8 & 0xFF),
                                  UInt8(keyHash & 0xFF)]
        return "\u{2014} \(name) \(Base64.encode(hashBytes + signature))"
    }

    public var description: String { line }
}

/// The result of checking a note's signatures: those of known keys (all verified) and those of
/// unknown keys (not checked, reported).
public struct NoteVerification: Hashable, Sendable {
    /// Signature lines of known keys; every one verified.
    public let verified: [NoteSignature]
    /// Signature lines whose name and key hash match no known key; ignored, but reported.
    public let unknown: [NoteSignature]
}

/// A signed note (C2SP `signed-note`): a text ending in a newline, a blank line, and one or more
/// signature lines.
///
/// Parsing checks only the shape; ``verify(with:)`` checks the signatures. Verify, then parse the text.
public struct SignedNote: Hashable, Sendable {
    /// At most this many signature lines are accepted (C2SP asks verifiers for a limit of at least 16;
    /// Go's `note.Open` stops at 100).
    public static let maximumSignatures = 100

    /// The note text: what is signed, including its final newline.
    public let text: String
    /// The signature lines, in order.
    public let signatures: [NoteSignature]
    /// The positions in ``signatures`` of lines parsed from base64 that is not the canonical
    /// spelling: refused for a known key, ignored with the line for an unknown one.
    private var nonCanonical: Set<Int> = []

    /// A note of `text` with the given signatures.
    /// - Throws: ``NoteError/malformedNote(_:)`` unless `text` ends in a newline and has no ASCII control
    ///   character other than newline, or if there are more than ``maximumSignatures`` signatures.
    public init(text: String, signatures: [NoteSignature] = []) throws(NoteError) {
        let bytes = Array(text.utf8)
        guard bytes.last == 0x0A else { throw .malformedNote("the text does not end with a newline") }
        if let offset = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x0A }) {
            throw .malformedNote("control character 0x\(String(bytes[offset], radix: 16)) at byte \(offset)")
        }
        guard signatures.count <= Self.maximumSignatures else {
            throw .malformedNote("more than \(Self.maximumSignatures) signatures")
        }
        self.text = text
        self.signatures = signatures
    }

    /// Parses a signed note, strictly.
    ///
    /// The note must be valid UTF-8 without ASCII control characters other than newline; the text is
    /// everything up to and including the newline before the last blank line; after it come 1 to
    /// ``maximumSignatures`` lines `— <name> <base64>`, each ending in a newline, with a valid key name
    /// and base64 of at least 5 bytes (canonical, padded base64 for a line that ``verify(with:)``
    /// finds of a known key).
    /// - Throws: ``NoteError/malformedNote(_:)`` naming the first problem.
    public init(parsing note: some Collection<UInt8>) throws(NoteError) {
        let bytes = Array(note)
        guard String(validating: bytes, as: UTF8.self) != nil else { throw .malformedNote("not valid UTF-8") }
        if let offset = bytes.firstIndex(where: { $0 < 0x20 && $0 != 0x0A }) {
            throw .malformedNote("control character 0x\(String(bytes[offset], radix: 16)) at byte \(offset)")
        }
        // The text ends at the last blank line, i.e. the last "\n\n".
        guard bytes.count >= 2,
              let split = (0..<(bytes.count - 1)).last(where: { bytes[$0] == 0x0A && bytes[$0 + 1] == 0x0A })
        else {
            throw .malformedNote("no blank line between the text and the signatures")
        }
        let block = bytes[(split + 2)...]
        guard !block.isEmpty else { throw .malformedNote("no signature lines after the blank line") }
        guard block.last == 0x0A else { throw .malformedNote("the last signature line does not end with a newline") }
        let lines = block.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
        guard lines.count <= Self.maximumSignatures else {
            throw .malformedNote("more than \(Self.maximumSignatures) signature lines")
        }
        var signatures: [NoteSignature] = []
        for (number, line) in lines.enumerated() {
            let (signature, canonical) = try Self.parseSignatureLine(Array(line), number: number + 1)
            if !canonical { nonCanonical.insert(signatures.count) }
            signatures.append(signature)
        }
        self.text = String(decoding: bytes[...split], as: UTF8.self)
        self.signatures = signatures
    }

    /// Parses a signed note given as text.
    /// - Throws: as ``init(parsing:)``.
    public init(parsing note: String) throws(NoteError) {
        try self.init(parsing: Array(note.utf8))
    }

    /// The note as text: the text, a blank line, then each signature line with its newline.
    public var encoded: String {
        text + "\n" + signatures.map { $0.line + "\n" }.joined()
    }

    /// This note with `signature` added at the end; a line of the same name and key hash is replaced.
    /// - Throws: ``NoteError/malformedNote(_:)`` if that makes more than ``maximumSignatures``.
    public func adding(_ signature: NoteSignature) throws(NoteError) -> SignedNote {
        let others = signatures.filter { $0.id != signature.id }
        return try SignedNote(text: text, signatures: others + [signature])
    }

    /// Checks the signatures against `verifiers`.
    ///
    /// Every line whose name and key hash match a verifier must verify: unlike Go's `note.Open`,
    /// which checks only the first line of each key, a second, bad line of a known key is rejected
    /// (C2SP: "If the key name and ID match a known key, verifiers MUST verify the signature").
    /// Lines of unknown keys are ignored and returned in ``NoteVerification/unknown``.
    /// - Throws: ``NoteError/invalidSignature(name:keyHash:)`` for the first failing line,
    ///   ``NoteError/noVerifiedSignature`` if no line is from a known key,
    ///   ``NoteError/duplicateVerifier(name:keyHash:)`` if two different verifiers share a name and hash.
    public func verify(with verifiers: [NoteVerifier]) throws(NoteError) -> NoteVerification {
        let result = try checkSignatures(with: verifiers)
        guard !result.verified.isEmpty else { throw .noVerifiedSignature }
        return result
    }

    /// ``verify(with:)`` without the requirement that something verified.
    func checkSignatures(with verifiers: [NoteVerifier]) throws(NoteError) -> NoteVerification {
        let known = try noteVerifierIndex(verifiers)
        let message = Array(text.utf8)
        var verified: [NoteSignature] = []
        var unknown: [NoteSignature] = []
        for (position, signature) in signatures.enumerated() {
            guard let verifier = known[signature.id] else {
                unknown.append(signature)
                continue
            }
            guard !nonCanonical.contains(position) else {
                throw .malformedNote("signature line \(position + 1), of \(signature.name), is not canonical base64")
            }
            guard verifier.isValidSignature(signature.signature, forText: message) else {
                throw .invalidSignature(name: signature.name, keyHash: signature.keyHash)
            }
            verified.append(signature)
        }
        return NoteVerification(verified: verified, unknown: unknown)
    }

    private static let linePrefix: [UInt8] = Array("\u{2014} ".utf8)

    /// A signature line's parts, and whether its base64 is the canonical spelling. Other spellings
    /// are read so that a line of an unknown key can be ignored, as C2SP requires, rather than
    /// refuse the note (Go's `note.Open` likewise takes non-zero padding bits).
    private static func parseSignatureLine(_ line: [UInt8], number: Int) throws(NoteError) -> (NoteSignature, canonical: Bool) {
        guard line.starts(with: linePrefix) else {
            throw .malformedNote("signature line \(number) does not start with an em dash and a space")
        }
        let rest = line.dropFirst(linePrefix.count)
        guard let space = rest.firstIndex(of: UInt8(ascii: " ")) else {
            throw .malformedNote("signature line \(number) has no space between name and signature")
        }
        let name = String(decoding: rest[..<space], as: UTF8.self)
        guard isValidKeyName(name) else { throw .malformedNote("signature line \(number) has an invalid key name") }
        guard let (payload, canonical) = Base64.decodeIgnoringUnusedBits(utf8: rest[(space + 1)...]), payload.count >= 5 else {
            throw .malformedNote("signature line \(number) is not base64 of a key hash and a signature")
        }
        let keyHash = payload.prefix(4).reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return (try NoteSignature(name: name, keyHash: keyHash, signature: Array(payload.dropFirst(4))), canonical)
    }
}

/// A key's identity in signature lines: name and key hash together. The name is compared as
/// bytes, as C2SP and Go's note package compare it: Swift's `==` on strings takes canonically
/// equivalent text as equal (U+212A KELVIN SIGN equals "K"), which would let a line under
/// another name stand for a known key's.
struct NoteKeyID: Hashable {
    let name: [UInt8]
    let keyHash: UInt32

    init(name: String, keyHash: UInt32) {
        self.name = Array(name.utf8)
        self.keyHash = keyHash
    }
}

extension NoteSignature {
    /// The key it names (``NoteKeyID``).
    var id: NoteKeyID { NoteKeyID(name: name, keyHash: keyHash) }
}

extension NoteVerifier {
    /// The key it is (``NoteKeyID``).
    var id: NoteKeyID { NoteKeyID(name: name, keyHash: keyHash) }
}

extension WitnessCosignature {
    /// The witness key it is by (``NoteKeyID``).
    var id: NoteKeyID { NoteKeyID(name: name, keyHash: keyHash) }
}

/// `verifiers` by name and key hash; the same verifier may be listed twice, different ones may not
/// share an identity.
func noteVerifierIndex(_ verifiers: [NoteVerifier]) throws(NoteError) -> [NoteKeyID: NoteVerifier] {
    var index: [NoteKeyID: NoteVerifier] = [:]
    for verifier in verifiers {
        if let other = index[verifier.id], other != verifier {
            throw .duplicateVerifier(name: verifier.name, keyHash: verifier.keyHash)
        }
        index[verifier.id] = verifier
    }
    return index
}
