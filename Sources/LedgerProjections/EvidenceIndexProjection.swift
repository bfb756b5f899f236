public import LedgerCore
import LedgerCrypto

/// The evidence-index projection: every evidence item, the claims it supports or contradicts,
/// its blob's state (checked at query time) and its chain of custody, gaps flagged (see
/// ``EvidenceItem`` for what a gap is).
public struct EvidenceIndexProjection: Projection {
    /// Whether replay re-verifies each statement's Ed25519 signatures. Without it, keys, roles
    /// and blobs are still checked, and signatures are left to `ledger verify` (they were
    /// verified at append).
    public var verifiesSignatures: Bool

    public init(verifiesSignatures: Bool = true) {
        self.verifiesSignatures = verifiesSignatures
    }

    public var snapshotName: String { verifiesSignatures ? name : name + "+unverified-signatures" }

    public var name: String { "evidence-index" }
    public var version: Int { 1 }
    public var summary: String { "every evidence item: claims supported and contradicted, blob state, chain of custody with gaps" }
    public var initialState: State { State() }

    public struct State: Codable, Sendable, Equatable {
        /// Evidence items by id.
        public var items: [String: EvidenceItem] = [:]
        /// Evidence ids in the order attached.
        public var order: [String] = []
        /// The fact of every claim, to say which facts an item bears on.
        public var claimFacts: [String: String] = [:]
        /// The evidence item each entry id of an `evidence.attached` or `custody.recorded`
        /// names, for attestations that target an entry.
        public var entries: [String: String] = [:]
        public var keys = KeyTable()

        enum CodingKeys: String, CodingKey {
            case items, order, claimFacts = "claim_facts", entries, keys
        }

        public init() {}
    }

    /// An evidence item with its blob state, as of a query.
    public struct Entry: Sendable {
        public var item: EvidenceItem
        /// The facts of the claims it supports or contradicts.
        public var facts: [String]
        public var blob: BlobState
        /// Its integrity codes, sorted (as in ``FactView/integrity``).
        public var integrity: [String]

        /// `{"evidence", "title", "author", "media_type", "sha256", "size", "captured_at",
        /// "custodian", "source", "supports", "contradicts", "facts", "attached_at", "blob",
        /// "integrity", "holder", "custody": [step…], "custody_gaps", "attestations"}`.
        public var json: JSONValue {
            .object([
                "evidence": .string(item.evidence), "title": .string(item.title), "author": .string(item.author),
                "media_type": .string(item.mediaType), "sha256": .string(item.sha256), "size": .integer(item.size),
                "captured_at": .optional(item.capturedAt), "custodian": .optional(item.custodian), "source": item.source?.json ?? .null,
                "supports": .strings(item.supports), "contradicts": .strings(item.contradicts), "facts": .strings(facts),
                "attached_at": .number(item.attachedAt), "blob": .string(blob.rawValue), "integrity": .strings(integrity),
                "holder": .optional(item.holder), "custody": .array(item.custody.map(\.json)),
                "custody_gaps": .number(item.custody.count { $0.gap != nil }), "attestations": .array(item.attestations.map(\.json)),
            ])
        }
    }

    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
        func signing() -> Signing { state.keys.check(record, author: event.author, event: event.id, verifying: verifiesSignatures) }
        switch event.body {
        case .genesis, .partyRegistered, .keyAdded, .keyRevoked:
            state.keys.apply(event, at: record.sequence)
        case let .claimAsserted(claim, fact, _, _, _), let .claimCountered(claim, _, fact, _, _, _):
            state.claimFacts[claim] = fact
        case let .evidenceAttached(e):
            guard state.items[e.evidence] == nil else { return }
            state.items[e.evidence] = EvidenceItem(e, event: event, record: record, signing: signing())
            state.order.append(e.evidence)
            state.entries[record.entryID.hexString] = e.evidence
        case let .custodyRecorded(item, action, from, to, at, note):
            guard state.items[item] != nil else { return }
            state.items[item]?.recordCustody(action: action, from: from, to: to, at: at, note: note, event: event, record: record, signing: signing())
            state.entries[record.entryID.hexString] = item
        case let .attestationMade(attestation, target, kind, note):
            let item: String? = switch AttestationTarget(target) {
            case let .entry(entryID): state.entries[entryID.hexString]
            case let .id(id): state.items[id] != nil ? id : nil
            }
            guard let item else { return }
            state.items[item]?.attestations.append(
                AttestationInfo(attestation: attestation, author: event.author, target: target, kind: kind, note: note, sequence: record.sequence, signing: signing()))
        default:
            break
        }
    }

    /// Every evidence item in the order attached, with blob states checked now, each handed to
    /// `body` as soon as it is built.
    public func forEachEntry(in state: State, context: ReportContext, _ body: (Entry) -> Void) {
        let blobs = BlobCache(store: context)
        for id in state.order {
            guard let item = state.items[id] else { continue }
            var facts: [String] = []
            for claim in item.supports + item.contradicts {
                if let fact = state.claimFacts[claim], !facts.contains(fact) { facts.append(fact) }
            }
            let blob = blobs.state(of: item)
            var codes = item.recordCodes(keys: state.keys)
            for a in item.attestations { codes += state.keys.codes(for: a.signing) }
            if let code = blob.code(for: id) { codes.append(code) }
            body(Entry(item: item, facts: facts, blob: blob, integrity: Array(Set(codes)).sorted()))
        }
    }

    public var reportKey: String { "evidence" }

    /// Each evidence item in the shape of ``Entry/json``, in the order attached.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) {
        forEachEntry(in: state, context: context) { body($0.json) }
    }
}
