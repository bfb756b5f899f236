public import LedgerCore
import LedgerCrypto
import LedgerStore

/// The evidence-index projection: every evidence item, the claims it supports or contradicts,
/// its blob's state (checked at query time) and its chain of custody, gaps flagged (see
/// ``EvidenceItem`` for what a gap is).
///
/// Its state is the disputed-facts index (``DisputedFactsProjection/State``): an item is read
/// back from the log, the disputed-facts rules applied to the records listed under it (its
/// attachment, custody steps and attestations), and the facts it bears on are those of the
/// claims it names. So the item is what a fact's view shows of it, and a replay holds about a
/// hundred bytes a record, not every item's custody chain (467 MiB at a million entries when it
/// did).
public struct EvidenceIndexProjection: Projection {
    /// Whether the report re-verifies the Ed25519 signatures of each item's records as it reads
    /// them back (the index itself holds none: only these records need them). Without it, keys,
    /// roles and blobs are still checked, and signatures are left to `ledger verify` (they were
    /// verified at append).
    public var verifiesSignatures: Bool
    /// As ``DisputedFactsProjection/verifyingFrom``.
    public var verifyingFrom: UInt64

    public init(verifiesSignatures: Bool = true, verifyingFrom: UInt64 = .max) {
        self.verifiesSignatures = verifiesSignatures
        self.verifyingFrom = verifyingFrom
    }

    public var name: String { "evidence-index" }
    public var version: Int { 4 }
    public var summary: String { "every evidence item: claims supported and contradicted, blob state, chain of custody with gaps" }

    public typealias State = DisputedFactsProjection.State

    /// The index the state is, the same whether signatures are verified or not.
    private var index: DisputedFactsProjection { DisputedFactsProjection(verifiesSignatures: false) }

    /// The index's own snapshots: the state is the same, whichever of them replayed it. (They
    /// were once filed under this projection's name: those copies are removed when it replays.)
    public var snapshotName: String { index.snapshotName }
    public var snapshotVersion: Int { index.snapshotVersion }
    public var retiredSnapshotNames: [String] { [name] }

    /// The rules an item's records are read back with, verifying their signatures if asked.
    private var rules: DisputedFactsProjection { DisputedFactsProjection(verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom) }

    public var initialState: State { index.initialState }

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
        index.apply(record: record, event: event, to: &state)
    }

    public func prepareForQueries(_ state: inout State) {
        index.prepareForQueries(&state)
    }

    /// Every evidence item in the order attached, with blob states checked now, read back on
    /// every core and each handed to `body` as soon as it is built.
    /// - Throws: ``LedgerError`` if a record cannot be read back (as ``DisputedFactsProjection/fact(_:in:context:)``).
    public func forEachEntry(in state: State, context: ReportContext, _ body: (Entry) -> Void) throws(LedgerError) {
        try index.forEachNode(state.evidenceNodes(), in: state, context: context, { node, context, blobs throws(LedgerError) in
            try entry(of: node, in: state, context: context, blobs: blobs)
        }, body)
        try state.checkIntact()
    }

    private func entry(of node: Int32, in state: State, context: ReportContext, blobs: BlobCache) throws(LedgerError) -> Entry {
        // No signature failures kept: each signature is verified as its record is applied.
        var detail = DisputedFactsProjection.Detail(keys: state.keys)
        try index.forEachRecord(state.ownRecords(of: node), in: state, context: context) { rules.record($0, event: $1, into: &detail) }
        // The node's first record made it: its attachment.
        guard let id = state.name(of: node), let item = detail.evidence[id] else {
            try state.suspect("evidence node \(node) does not start with its attachment")
            let entry = state.firstRecord(of: node).map { "Entry \($0)" } ?? "An entry"
            throw LedgerError(
                .damagedLog,
                "\(entry) of \(context.ledger.directory) no longer attaches the evidence item the replay found there. Run `ledger verify \(context.ledger.directory)`.")
        }
        var facts: [String] = []
        for claim in item.supports + item.contradicts {
            if let node = state.node(.claim, claim), let fact = state.fact(of: node).flatMap(state.name(of:)), !facts.contains(fact) { facts.append(fact) }
        }
        return Self.entry(item, facts: facts, keys: state.keys, blobs: blobs)
    }

    /// `item` with `facts`, its blob's state checked now, and its integrity codes.
    static func entry(_ item: EvidenceItem, facts: [String], keys: KeyTable, blobs: BlobCache) -> Entry {
        let blob = blobs.state(of: item)
        var codes = item.recordCodes(keys: keys)
        for a in item.attestations { codes += keys.codes(for: a.signing) }
        if let code = blob.code(for: item.evidence) { codes.append(code) }
        return Entry(item: item, facts: facts, blob: blob, integrity: Array(Set(codes)).sorted())
    }

    public var reportKey: String { "evidence" }

    /// Each evidence item in the shape of ``Entry/json``, in the order attached.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) throws(LedgerError) {
        try forEachEntry(in: state, context: context) { body($0.json) }
    }
}
