public import LedgerCore

/// Where a claim or evidence item comes from, as its author gave it; `published_at` is the
/// source's word, kept apart from the author's `signed_at` and the ledger's `accepted_at`.
public struct SourceInfo: Codable, Sendable, Equatable {
    public var uri: String?
    /// When the source first published it (RFC 3339).
    public var publishedAt: String?
    public var quote: String?

    enum CodingKeys: String, CodingKey {
        case uri, publishedAt = "published_at", quote
    }

    init?(_ source: Event.Source?) {
        guard let source else { return nil }
        uri = source.uri
        publishedAt = source.publishedAt?.rfc3339
        quote = source.quote
    }

    /// `{"uri", "published_at", "quote"}`, each a string or null.
    public var json: JSONValue {
        .object(["uri": .optional(uri), "published_at": .optional(publishedAt), "quote": .optional(quote)])
    }
}

/// An attestation as recorded: who vouched for what, how.
public struct AttestationInfo: Codable, Sendable, Equatable {
    public var attestation: String
    public var author: String
    /// What it targets: an entry id, a claim id or an evidence id, as given.
    public var target: String
    public var kind: String
    public var note: String?
    public var sequence: UInt64
    /// Who signed it; an attestation whose `problem` is set (a bad signature or key) vouches
    /// for nothing, and is listed only so that it is seen as such.
    public var signing: Signing

    /// `{"attestation", "author", "target", "kind", "note", "sequence", "problem"}`, `problem`
    /// null for a valid attestation, else why it is not (`bad-signature`, `key-invalid`, …).
    public var json: JSONValue {
        .object([
            "attestation": .string(attestation), "author": .string(author), "target": .string(target),
            "kind": .string(kind), "note": .optional(note), "sequence": .number(sequence),
            "problem": .optional(signing.problem?.rawValue),
        ])
    }
}
