public import LedgerCore
import LedgerCrypto

/// The timeline projection: every event that touches a fact, in log order, with its sequence
/// number and entry id and three times kept apart: the author's `signed_at`, the ledger's
/// `accepted_at`, and the source's `published_at` (or, for evidence, `captured_at`).
///
/// An event touches a fact if it opens it, asserts, counters, amends or retracts one of its
/// claims, attaches evidence for or against one of its claims (asserted before it), records
/// custody of such evidence, attests to any of these (by id, or by the entry id of an event that
/// touched the fact when made), or records a finding on it (``Rules``). Evidence a finding on it
/// relies on touches it whole: its attachment, custody and attestations, before the finding as
/// after, so that its chain of custody is shown from its start.
///
/// Each event is checked as the fact's view checks it (its keys at its position, its author's
/// role, a change to a claim by its author and before its retraction; its signatures unless
/// trusted, and past the index whatever the trust): one that fails is listed with its
/// ``Entry/problem``, as it was written, not as a statement of its named author.
///
/// Its state is the disputed-facts index (``DisputedFactsProjection/State``), not the events:
/// a fact's timeline is read back from the log, the rules applied to the records the index
/// lists for the fact, which include every record that touches it or routes one to it. So a
/// replay holds about a hundred bytes a record rather than every fact's events (1.1 GiB at a
/// million entries when it held them), and one fact's timeline costs what its records cost to
/// read.
public struct TimelineProjection: Projection {
    /// Whether each event's signatures are verified; from `verifyingFrom` on they are either way
    /// (as ``DisputedFactsProjection/verifiesSignatures``).
    public var verifiesSignatures: Bool
    public var verifyingFrom: UInt64

    public init(verifiesSignatures: Bool = true, verifyingFrom: UInt64 = .max) {
        self.verifiesSignatures = verifiesSignatures
        self.verifyingFrom = verifyingFrom
    }

    public var name: String { "timeline" }
    public var version: Int { 4 }
    public var summary: String { "every event touching each fact, with sequence, entry id, signed_at, accepted_at and published_at" }

    public typealias State = DisputedFactsProjection.State

    /// The index the state is; a timeline shows no signature checks.
    private var index: DisputedFactsProjection { DisputedFactsProjection(verifiesSignatures: false) }

    /// The index's own snapshots: the state is the same, whichever of them replayed it. (They
    /// were once filed under this projection's name: those copies are removed when it replays.)
    public var snapshotName: String { index.snapshotName }
    public var snapshotVersion: Int { index.snapshotVersion }
    public var retiredSnapshotNames: [String] { [name] }

    public var initialState: State { index.initialState }

    /// One event on a fact's timeline.
    public struct Entry: Codable, Sendable, Equatable {
        public var sequence: UInt64
        public var entryID: String
        public var type: String
        /// The event's id.
        public var event: String
        public var author: String
        /// The author's word (RFC 3339).
        public var signedAt: String
        /// The ledger's word (RFC 3339).
        public var acceptedAt: String
        /// The source's word, for claims and evidence that cite a source.
        public var publishedAt: String?
        /// The capturer's word, for evidence.
        public var capturedAt: String?
        /// The claim, evidence, attestation or finding id the event is about.
        public var subject: String
        /// One line for people.
        public var summary: String
        /// Why the event is not a valid statement of its named author (`bad-signature`,
        /// `key-invalid`, `role-not-allowed`, `not-the-author`), or takes no effect (a change to a
        /// retracted claim: `claim-retracted`); `nil` if it is valid.
        public var problem: String?

        enum CodingKeys: String, CodingKey {
            case sequence, entryID = "entry_id", type, event, author, signedAt = "signed_at", acceptedAt = "accepted_at"
            case publishedAt = "published_at", capturedAt = "captured_at", subject, summary, problem
        }

        /// `{"sequence", "entry_id", "type", "event", "author", "signed_at", "accepted_at",
        /// "published_at", "captured_at", "subject", "summary", "problem"}`; the two source times
        /// may be null, and `problem` is null for a valid statement.
        public var json: JSONValue {
            .object([
                "sequence": .number(sequence), "entry_id": .string(entryID), "type": .string(type), "event": .string(event),
                "author": .string(author), "signed_at": .string(signedAt), "accepted_at": .string(acceptedAt),
                "published_at": .optional(publishedAt), "captured_at": .optional(capturedAt), "subject": .string(subject),
                "summary": .string(summary), "problem": .optional(problem),
            ])
        }
    }

    /// The timeline's rules over records in log order: which facts each event touches, given the
    /// routing the records before it set up (the fact of each claim, the facts of each evidence
    /// item and of each entry).
    ///
    /// Ids are read as the disputed-facts index reads them, so that the rules applied to the
    /// records the index lists for a fact give what they give over the whole log: the first
    /// claim or evidence item of an id is the one it names (a claim about a fact not yet opened
    /// is none), and an attestation of an id that names both a claim and an evidence item (only in
    /// a log that broke the append rules, which refuse such an id) is the claim's.
    struct Rules {
        /// The keys each event is checked against (valid by position), and whether its
        /// signatures are verified (from `verifyingFrom` on, either way).
        let keys: KeyTable
        let verifiesSignatures: Bool
        let verifyingFrom: UInt64
        /// Each fact's events, in log order.
        var facts: [String: [Entry]] = [:]
        /// Fact ids in the order opened.
        var factOrder: [String] = []
        var claimFacts: [String: String] = [:]
        var evidenceFacts: [String: [String]] = [:]
        var entryFacts: [String: [String]] = [:]
        /// Each claim's author, whose alone a change to it is.
        var claimAuthors: [String: String] = [:]
        /// Each evidence item's own events (attachment, custody, attestations), for the facts
        /// whose findings rely on it later; and the item each of those entries is of.
        var evidenceEntries: [String: [Entry]] = [:]
        var entryEvidence: [String: String] = [:]
        /// Claims retracted by a valid retraction: a change after it takes no effect.
        var retracted: Set<String> = []

        init(keys: KeyTable, verifiesSignatures: Bool, verifyingFrom: UInt64) {
            (self.keys, self.verifiesSignatures, self.verifyingFrom) = (keys, verifiesSignatures, verifyingFrom)
        }

        mutating func apply(record: ReplayRecord, event: Event) {
            var touched: [String] = []
            /// The evidence item the event is of, if any.
            var item: String?
            var subject = event.id
            var summary = event.type
            var published: String?
            var captured: String?
            func add(_ fact: String?) {
                if let fact, !touched.contains(fact) { touched.append(fact) }
            }
            // As the fact's view checks a statement (``DisputedFactsProjection``'s rules); only
            // for an event that is shown or routes others, since it may verify signatures.
            lazy var problem: Signing.Problem? = {
                var signed = keys.signing(of: record, event, verifying: verifiesSignatures || record.sequence >= verifyingFrom)
                switch event.body {
                case let .claimAmended(claim, _, _, _), let .claimRetracted(claim, _):
                    if signed.problem == nil, let author = claimAuthors[claim], author != event.author { signed.problem = .notTheAuthor }
                    if signed.problem == nil, retracted.contains(claim) { signed.problem = .claimRetracted }
                default: break
                }
                return signed.problem
            }()
            switch event.body {
            case let .factOpened(fact, proposition, _, _):
                guard facts[fact] == nil else { return }
                facts[fact] = []
                factOrder.append(fact)
                add(fact)
                subject = fact
                summary = "fact \(fact) opened: \(proposition)"
            case let .claimAsserted(claim, fact, stance, _, source), let .claimCountered(claim, _, fact, stance, _, source):
                guard claimFacts[claim] == nil, facts[fact] != nil else { return }
                claimFacts[claim] = fact
                claimAuthors[claim] = event.author
                add(fact)
                subject = claim
                published = source?.publishedAt?.rfc3339
                if case let .claimCountered(_, counters, _, _, _, _) = event.body {
                    summary = "claim \(claim) counters \(counters): \(stance.rawValue)"
                } else {
                    summary = "claim \(claim) asserted: \(stance.rawValue)"
                }
            case let .claimAmended(claim, statement, stance, _):
                add(claimFacts[claim])
                subject = claim
                let what = [statement.map { _ in "statement" }, stance.map { "stance → \($0.rawValue)" }].compactMap { $0 }
                summary = "claim \(claim) amended: " + what.joined(separator: ", ")
            case let .claimRetracted(claim, reason):
                add(claimFacts[claim])
                if claimFacts[claim] != nil, problem == nil { retracted.insert(claim) }
                subject = claim
                summary = "claim \(claim) retracted: \(reason)"
            case let .evidenceAttached(e):
                guard evidenceFacts[e.evidence] == nil else { return }
                for claim in e.supports + e.contradicts { add(claimFacts[claim]) }
                evidenceFacts[e.evidence] = touched
                item = e.evidence
                subject = e.evidence
                published = e.source?.publishedAt?.rfc3339
                captured = e.capturedAt?.rfc3339
                var parts: [String] = []
                if !e.supports.isEmpty { parts.append("supports " + e.supports.joined(separator: ", ")) }
                if !e.contradicts.isEmpty { parts.append("contradicts " + e.contradicts.joined(separator: ", ")) }
                summary = "evidence \(e.evidence) attached: \(e.title)" + (parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")")
            case let .custodyRecorded(evidence, action, from, to, _, _):
                for fact in evidenceFacts[evidence] ?? [] { add(fact) }
                if evidenceFacts[evidence] != nil { item = evidence }
                subject = evidence
                summary = "custody of \(evidence): \(action)" + (from.map { " from \($0)" } ?? "") + (to.map { " to \($0)" } ?? "")
            case let .attestationMade(attestation, target, kind, _):
                switch AttestationTarget(target) {
                case let .entry(entryID):
                    for fact in entryFacts[entryID.hexString] ?? [] { add(fact) }
                    // An evidence item's event touches the facts the item touches now.
                    item = entryEvidence[entryID.hexString]
                    for fact in item.flatMap({ evidenceFacts[$0] }) ?? [] { add(fact) }
                case let .id(id):
                    if let fact = claimFacts[id] {
                        add(fact)
                    } else if let facts = evidenceFacts[id] {
                        for fact in facts { add(fact) }
                        item = id
                    }
                }
                subject = attestation
                summary = "attestation \(attestation) (\(kind)) on \(target)"
            case let .findingRecorded(finding, fact, outcome, _, reliesOn):
                guard facts[fact] != nil else { return }
                add(fact)
                // Only a finding that takes effect joins evidence to the fact, as in its view.
                for relied in reliesOn where problem == nil && !(evidenceFacts[relied]?.contains(fact) ?? true) {
                    evidenceFacts[relied]?.append(fact)
                    // Its events so far join the fact's timeline, in log order.
                    let shown = Set(facts[fact]?.map(\.sequence) ?? [])
                    let earlier = (evidenceEntries[relied] ?? []).filter { !shown.contains($0.sequence) }
                    if !earlier.isEmpty { facts[fact] = ((facts[fact] ?? []) + earlier).sorted { $0.sequence < $1.sequence } }
                }
                subject = finding
                summary = "finding \(finding): \(outcome.rawValue)"
            case .genesis, .partyRegistered, .keyAdded, .keyRevoked, .unknown:
                return
            }
            touched = touched.filter { facts[$0] != nil }
            guard !touched.isEmpty || item != nil else { return }
            // A change to a retracted claim takes no effect, and the fact's view knows no entry of
            // it: an attestation of it routes nowhere.
            if !touched.isEmpty, problem != .claimRetracted { entryFacts[record.entryID.hexString] = touched }
            let entry = Entry(
                sequence: record.sequence, entryID: record.entryID.hexString, type: event.type, event: event.id, author: event.author,
                signedAt: event.signedAt.rfc3339, acceptedAt: record.acceptedAt.rfc3339, publishedAt: published, capturedAt: captured,
                subject: subject, summary: summary, problem: problem?.rawValue)
            for fact in touched { facts[fact]?.append(entry) }
            if let item {
                evidenceEntries[item, default: []].append(entry)
                entryEvidence[record.entryID.hexString] = item
            }
        }
    }

    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
        index.apply(record: record, event: event, to: &state)
    }

    public func prepareForQueries(_ state: inout State) {
        index.prepareForQueries(&state)
    }

    /// The events on `fact`'s timeline, in log order; `nil` if no such fact is open in `state`
    /// (a disputed-facts state will do: it is the same index).
    /// - Throws: ``LedgerError`` if a record cannot be read back, or the snapshot the state was
    ///   read from is damaged where read.
    public func timeline(of fact: String, in state: State, context: ReportContext) throws(LedgerError) -> [Entry]? {
        guard let node = state.node(.fact, fact) else {
            try state.checkIntact()
            return nil
        }
        return try timeline(of: node, named: fact, in: state, context: context)
    }

    private func timeline(of node: Int32, named fact: String, in state: State, context: ReportContext) throws(LedgerError) -> [Entry] {
        var rules = Rules(keys: state.keys, verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom)
        try index.forEachRecord(state.records(of: node), in: state, context: context) { rules.apply(record: $0, event: $1) }
        return rules.facts[fact] ?? []
    }

    public var reportKey: String { "facts" }

    /// `{"fact", "events": [entry…]}` for each fact, in the order opened, read back on every core.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) throws(LedgerError) {
        try index.forEachNode(state.factOrder.elements, in: state, context: context, { node, context, _ throws(LedgerError) in
            guard let fact = state.name(of: node) else {
                // Noted as the snapshot's damage, and refused.
                try state.checkIntact()
                return JSONValue.null
            }
            return .object(["fact": .string(fact), "events": .array(try timeline(of: node, named: fact, in: state, context: context).map(\.json))])
        }, body)
    }
}

extension DisputedFactsProjection {
    /// `id`'s view (``fact(_:in:context:)``) and its timeline
    /// (``TimelineProjection/timeline(of:in:context:)``) from one reading of its records: what
    /// `ledger fact` shows. `nil` if no such fact is open in `state`.
    /// - Throws: ``LedgerError`` as ``fact(_:in:context:)``.
    public func factAndTimeline(_ id: String, in state: State, context: ReportContext) throws(LedgerError) -> (view: FactView, timeline: [TimelineProjection.Entry])? {
        var rules = TimelineProjection.Rules(keys: state.keys, verifiesSignatures: verifiesSignatures, verifyingFrom: verifyingFrom)
        guard let view = try fact(id, in: state, context: context, alongside: { rules.apply(record: $0, event: $1) }) else { return nil }
        return (view, rules.facts[id] ?? [])
    }
}
