public import LedgerCrypto

/// A checkpoint: a log's signed statement of its tree size and root (C2SP `tlog-checkpoint`).
///
/// The body is the origin line, the tree size in decimal, the base64 root, then any extension
/// lines, each ending in a newline:
///
/// ```
/// example.com/ledger
/// 20852163
/// CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=
/// ```
///
/// Do not trust a `Checkpoint` parsed on its own; get one from ``CheckpointVerifier`` as a
/// ``VerifiedCheckpoint``.
public struct Checkpoint: Hashable, Sendable {
    /// The log's identity; C2SP recommends a schema-less URL such as `example.com/ledger`.
    public let origin: String
    /// The number of leaves.
    public let size: UInt64
    /// The RFC 6962 root of the tree of `size` leaves.
    public let root: Digest
    /// Extension lines, opaque; not recommended, as monitors cannot audit them.
    public let extensions: [String]

    /// A checkpoint of these parts.
    /// - Throws: ``NoteError/malformedCheckpoint(_:)`` if the origin or an extension line is empty or has
    ///   a newline or another ASCII control character.
    public init(origin: String, size: UInt64, root: Digest, extensions: [String] = []) throws(NoteError) {
        for (what, line) in [("origin", origin)] + extensions.map({ ("extension line", $0) }) {
            guard !line.isEmpty else { throw .malformedCheckpoint("the \(what) is empty") }
            guard !line.utf8.contains(where: { $0 < 0x20 }) else {
                throw .malformedCheckpoint("the \(what) has a newline or control character")
            }
        }
        self.origin = origin
        self.size = size
        self.root = root
        self.extensions = extensions
    }

    /// Parses a checkpoint body, strictly: at least three lines, each ending in a newline; a
    /// non-empty origin; the size in decimal without leading zeros; the root as canonical base64 of
    /// 32 bytes; non-empty extension lines.
    /// - Throws: ``NoteError/malformedCheckpoint(_:)`` naming the line.
    public init(body: String) throws(NoteError) {
        guard body.utf8.last == 0x0A else { throw .malformedCheckpoint("the body does not end with a newline") }
        let lines = body.utf8.dropLast().split(separator: 0x0A, omittingEmptySubsequences: false)
            .map { String(decoding: $0, as: UTF8.self) }
        guard lines.count >= 3 else { throw .malformedCheckpoint("fewer than three lines") }
        guard let size = parseDecimal(lines[1]) else {
            throw .malformedCheckpoint("line 2, the tree size, is not a decimal number without leading zeros")
        }
        guard let rootBytes = Base64.decodeCanonical(lines[2]), rootBytes.count == 32,
              let root = try? Digest(rawRepresentation: rootBytes)
        else {
            throw .malformedCheckpoint("line 3, the root, is not canonical base64 of 32 bytes")
        }
        try self.init(origin: lines[0], size: size, root: root, extensions: Array(lines[3...]))
    }

    /// The note text: origin, size, base64 root and extension lines, each followed by a newline.
    public var body: String {
        ([origin, String(size), Base64.encode(root.rawRepresentation)] + extensions).map { $0 + "\n" }.joined()
    }

    /// This checkpoint as a signed note, signed with the log's key.
    /// - Throws: ``NoteError/signingFailed(_:)``.
    public func signed(by signer: NoteSigner) throws(NoteError) -> SignedNote {
        try SignedNote(text: body, signatures: [signer.signature(for: body)])
    }
}

extension SignedNote {
    /// This note with `witness`'s cosignature at `timestamp` added (replacing an earlier one by the
    /// same key). The note text must be a checkpoint body.
    /// - Throws: ``NoteError/malformedCheckpoint(_:)`` if the text is not a checkpoint,
    ///   ``NoteError/invalidTimestamp(_:)`` or ``NoteError/signingFailed(_:)``.
    public func cosigned(by witness: WitnessSigner, timestamp: UInt64) throws(NoteError) -> SignedNote {
        _ = try Checkpoint(body: text)
        return try adding(witness.cosignature(for: text, timestamp: timestamp))
    }
}

/// A decimal number of ASCII digits without leading zeros (but "0" itself) that fits in 64 bits.
private func parseDecimal(_ text: String) -> UInt64? {
    let digits = Array(text.utf8)
    guard !digits.isEmpty, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
          digits.count == 1 || digits[0] != UInt8(ascii: "0")
    else { return nil }
    return UInt64(text)
}
