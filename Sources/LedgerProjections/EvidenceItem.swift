public import LedgerCore
public import LedgerStore
import LedgerCrypto

/// One evidence item as recorded by `evidence.attached`, with its chain of custody and
/// attestations; shared by the disputed-facts and evidence-index projections.
public struct EvidenceItem: Codable, Sendable, Equatable {
    public var evidence: String
    public var author: String
    /// SHA-256 of the blob, lowercase hex.
    public var sha256: String
    public var size: Int64
    public var mediaType: String
    public var title: String
    public var source: SourceInfo?
    /// When the material was captured: the capturer's word (RFC 3339).
    public var capturedAt: String?
    public var custodian: String?
    /// The claims it supports and contradicts, as attached.
    public var supports: [String]
    public var contradicts: [String]
    /// The sequence number of `evidence.attached`.
    public var attachedAt: UInt64
    /// The chain of custody, in log order.
    public var custody: [CustodyStep] = []
    /// Who signed each `custody.recorded` that took no effect: its signature or key is not
    /// valid, or its author's role may not record custody. Not a step of the chain; kept for
    /// its integrity code.
    public var ineffectiveCustody: [Signing] = []
    /// Who holds it after the last custody step, as far as the chain says.
    public var holder: String?
    public var attestations: [AttestationInfo] = []
    /// Who signed `evidence.attached`.
    public var signing: Signing

    enum CodingKeys: String, CodingKey {
        case evidence, author, sha256, size, mediaType = "media_type", title, source, capturedAt = "captured_at", custodian
        case supports, contradicts, attachedAt = "attached_at", custody, ineffectiveCustody = "ineffective_custody", holder, attestations, signing
    }

    init(_ e: Event.Evidence, event: Event, record: ReplayRecord, signing: Signing) {
        evidence = e.evidence
        author = event.author
        sha256 = e.sha256.hexString
        size = e.size
        mediaType = e.mediaType
        title = e.title
        source = SourceInfo(e.source)
        capturedAt = e.capturedAt?.rfc3339
        custodian = e.custodian
        supports = e.supports
        contradicts = e.contradicts
        attachedAt = record.sequence
        holder = e.custodian
        self.signing = signing
    }

    /// Appends a `custody.recorded` step, flagging a gap in the chain.
    ///
    /// A gap is any of: a chain that does not start with `collected` although the evidence
    /// names no custodian; a `transferred` step with no `from` or `to`, or whose `from` is not
    /// the current holder; any other step naming a `from` that is not the current holder; a
    /// step whose time `at` is before an earlier step's. `collected` and `transferred` make
    /// `to` (or, for `collected` without `to`, the author) the holder; other actions (`copied`,
    /// `working-copy-deleted`, …) leave the holder unchanged.
    mutating func recordCustody(
        action: String, from: String?, to: String?, at: Timestamp?, note: String?, event: Event, record: ReplayRecord, signing: Signing
    ) {
        var gaps: [String] = []
        if custody.isEmpty && holder == nil && action != "collected" {
            gaps.append("the chain does not start with \"collected\" and the evidence names no custodian")
        }
        switch action {
        case "collected":
            if let from, let holder, from != holder, !custody.isEmpty {
                gaps.append("collected from \"\(from)\", but the holder was \"\(holder)\"")
            }
            holder = to ?? event.author
        case "transferred":
            if from == nil { gaps.append("the transfer does not say from whom") }
            if to == nil { gaps.append("the transfer does not say to whom") }
            if let from, let holder, from != holder { gaps.append("transferred from \"\(from)\", but the holder was \"\(holder)\"") }
            if let from, holder == nil, !custody.isEmpty { gaps.append("transferred from \"\(from)\", but no holder was known") }
            holder = to
        default:
            if let from, let holder, from != holder { gaps.append("\(action) from \"\(from)\", but the holder was \"\(holder)\"") }
        }
        // Against every dated step before it, not only the last: an undated step in between
        // (a copy, say) hid a transfer dated before the collection. Taken from the steps kept,
        // which a snapshot holds too (custody chains are short).
        if let at, let latest = custody.compactMap({ $0.at.flatMap(Timestamp.init(rfc3339:)) }).max(), at < latest {
            gaps.append("it happened (\(at.rfc3339)) before an earlier step (\(latest.rfc3339))")
        }
        custody.append(
            CustodyStep(
                sequence: record.sequence, entryID: record.entryID.hexString, action: action, from: from, to: to, at: at?.rfc3339,
                note: note, author: event.author, signedAt: event.signedAt.rfc3339, gap: gaps.isEmpty ? nil : gaps.joined(separator: "; "),
                signing: signing))
    }

    /// Whether any custody step is flagged as a gap.
    public var hasCustodyGap: Bool { custody.contains { $0.gap != nil } }

    /// The integrity codes of the item's records as of now (signatures, keys and roles of the
    /// attachment and of each custody record, custody gaps), not counting the blob.
    func recordCodes(keys: KeyTable) -> [String] {
        var out = keys.codes(for: signing)
        for step in custody { out += keys.codes(for: step.signing) }
        for signed in ineffectiveCustody { out += keys.codes(for: signed) }
        if hasCustodyGap { out.append("custody-gap:\(evidence)") }
        return out
    }
}

/// One `custody.recorded` step.
public struct CustodyStep: Codable, Sendable, Equatable {
    public var sequence: UInt64
    public var entryID: String
    public var action: String
    public var from: String?
    public var to: String?
    /// When it happened, as the recorder says (RFC 3339).
    public var at: String?
    public var note: String?
    public var author: String
    public var signedAt: String
    /// Why this step is a gap in the chain, if it is one.
    public var gap: String?
    public var signing: Signing

    enum CodingKeys: String, CodingKey {
        case sequence, entryID = "entry_id", action, from, to, at, note, author, signedAt = "signed_at", gap, signing
    }

    /// `{"sequence", "entry_id", "action", "from", "to", "at", "note", "author", "signed_at", "gap": reason|null}`.
    public var json: JSONValue {
        .object([
            "sequence": .number(sequence), "entry_id": .string(entryID), "action": .string(action), "from": .optional(from),
            "to": .optional(to), "at": .optional(at), "note": .optional(note), "author": .string(author),
            "signed_at": .string(signedAt), "gap": .optional(gap),
        ])
    }
}

/// The state of an evidence item's blob, checked at query time.
public enum BlobState: String, Sendable, Hashable, Codable {
    /// Stored and matching the recorded hash and size.
    case present
    /// Not stored (yet): its integrity is not established, so it is excluded until it is stored.
    case missing
    /// Stored, but its hash or size differs from the record: integrity fails.
    case mismatched
    /// Something is stored under its name that cannot be read as a file: like a missing blob, it
    /// could not be checked.
    case unreadable
    /// Not checked (no blob store given).
    case unchecked

    /// Checks `item`'s blob in `blobs` (`unchecked` without a store).
    public init(of item: EvidenceItem, in blobs: BlobStore?) {
        guard let blobs else {
            self = .unchecked
            return
        }
        guard let digest = Digest(hexString: item.sha256) else {
            self = .mismatched
            return
        }
        switch blobs.status(of: digest, size: UInt64(max(item.size, 0))) {
        case .present: self = .present
        case .missing: self = .missing
        case .mismatched: self = .mismatched
        case .unreadable: self = .unreadable
        }
    }

    /// Whether the item's integrity fails for its blob, which must be present and match its
    /// hash (DESIGN: integrity covers "evidence blobs present and matching their hashes"): a blob
    /// not stored, or not readable, could not be checked, and evidence no one can check decides
    /// nothing until it can. Not for `unchecked`, where the caller asked for no blob checks.
    var failsIntegrity: Bool {
        switch self {
        case .present, .unchecked: false
        case .missing, .mismatched, .unreadable: true
        }
    }

    /// The integrity code for `evidence` in this state, if any.
    func code(for evidence: String) -> String? {
        switch self {
        case .present, .unchecked: nil
        case .missing: "blob-missing:\(evidence)"
        case .mismatched: "blob-mismatch:\(evidence)"
        case .unreadable: "blob-unreadable:\(evidence)"
        }
    }
}
