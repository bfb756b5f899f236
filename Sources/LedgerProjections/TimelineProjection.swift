public import LedgerCore
import LedgerCrypto

/// The timeline projection: every event that touches a fact, in log order, with its sequence
/// number and entry id and three times kept apart: the author's `signed_at`, the ledger's
/// `accepted_at`, and the source's `published_at` (or, for evidence, `captured_at`).
///
/// An event touches a fact if it opens it, asserts, counters, amends or retracts one of its
/// claims, attaches evidence for or against one of its claims, records custody of such
/// evidence or of evidence a finding on it relies on, attests to any of these (by id or entry
/// id), or records a finding on it.
///
/// Ids are read as the disputed-facts projection reads them, so that one fact's timeline can
/// be read back through its index (``DisputedFactsProjection/timeline(of:in:context:)``): the
/// first claim or evidence item of an id is the one it names (a claim about a fact not yet
/// opened is none), and an attestation of an id that names both a claim and an evidence item
/// is the claim's.
public struct TimelineProjection: Projection {
    public init() {}

    public var name: String { "timeline" }
    public var version: Int { 2 }
    public var summary: String { "every event touching each fact, with sequence, entry id, signed_at, accepted_at and published_at" }
    public var initialState: State { State() }

    public struct State: Codable, Sendable, Equatable {
        /// Each fact's events, in log order.
        public var facts: [String: [Entry]] = [:]
        /// Fact ids in the order opened.
        public var factOrder: [String] = []
        /// Routing: the fact of each claim, the facts of each evidence item and of each entry.
        public var claimFacts: [String: String] = [:]
        public var evidenceFacts: [String: [String]] = [:]
        public var entryFacts: [String: [String]] = [:]

        enum CodingKeys: String, CodingKey {
            case facts, factOrder = "fact_order", claimFacts = "claim_facts", evidenceFacts = "evidence_facts"
            case entryFacts = "entry_facts"
        }

        public init() {}
    }

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

        enum CodingKeys: String, CodingKey {
            case sequence, entryID = "entry_id", type, event, author, signedAt = "signed_at", acceptedAt = "accepted_at"
            case publishedAt = "published_at", capturedAt = "captured_at", subject, summary
        }

        /// `{"sequence", "entry_id", "type", "event", "author", "signed_at", "accepted_at",
        /// "published_at", "captured_at", "subject", "summary"}`; the two source times may be null.
        public var json: JSONValue {
            .object([
                "sequence": .number(sequence), "entry_id": .string(entryID), "type": .string(type), "event": .string(event),
                "author": .string(author), "signed_at": .string(signedAt), "accepted_at": .string(acceptedAt),
                "published_at": .optional(publishedAt), "captured_at": .optional(capturedAt), "subject": .string(subject),
                "summary": .string(summary),
            ])
        }
    }

    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
        var facts: [String] = []
        var subject = event.id
        var summary = event.type
        var published: String?
        var captured: String?
        func add(_ fact: String?) {
            if let fact, !facts.contains(fact) { facts.append(fact) }
        }
        switch event.body {
        case let .factOpened(fact, proposition, _, _):
            guard state.facts[fact] == nil else { return }
            state.facts[fact] = []
            state.factOrder.append(fact)
            add(fact)
            subject = fact
            summary = "fact \(fact) opened: \(proposition)"
        case let .claimAsserted(claim, fact, stance, _, source):
            guard state.claimFacts[claim] == nil, state.facts[fact] != nil else { return }
            state.claimFacts[claim] = fact
            add(fact)
            subject = claim
            published = source?.publishedAt?.rfc3339
            summary = "claim \(claim) asserted: \(stance.rawValue)"
        case let .claimCountered(claim, counters, fact, stance, _, source):
            guard state.claimFacts[claim] == nil, state.facts[fact] != nil else { return }
            state.claimFacts[claim] = fact
            add(fact)
            subject = claim
            published = source?.publishedAt?.rfc3339
            summary = "claim \(claim) counters \(counters): \(stance.rawValue)"
        case let .claimAmended(claim, statement, stance, _):
            add(state.claimFacts[claim])
            subject = claim
            let what = [statement.map { _ in "statement" }, stance.map { "stance → \($0.rawValue)" }].compactMap { $0 }
            summary = "claim \(claim) amended: " + what.joined(separator: ", ")
        case let .claimRetracted(claim, reason):
            add(state.claimFacts[claim])
            subject = claim
            summary = "claim \(claim) retracted: \(reason)"
        case let .evidenceAttached(e):
            guard state.evidenceFacts[e.evidence] == nil else { return }
            for claim in e.supports + e.contradicts { add(state.claimFacts[claim]) }
            state.evidenceFacts[e.evidence] = facts
            subject = e.evidence
            published = e.source?.publishedAt?.rfc3339
            captured = e.capturedAt?.rfc3339
            var parts: [String] = []
            if !e.supports.isEmpty { parts.append("supports " + e.supports.joined(separator: ", ")) }
            if !e.contradicts.isEmpty { parts.append("contradicts " + e.contradicts.joined(separator: ", ")) }
            summary = "evidence \(e.evidence) attached: \(e.title)" + (parts.isEmpty ? "" : " (" + parts.joined(separator: "; ") + ")")
        case let .custodyRecorded(item, action, from, to, _, _):
            for fact in state.evidenceFacts[item] ?? [] { add(fact) }
            subject = item
            summary = "custody of \(item): \(action)" + (from.map { " from \($0)" } ?? "") + (to.map { " to \($0)" } ?? "")
        case let .attestationMade(attestation, target, kind, _):
            switch AttestationTarget(target) {
            case let .entry(entryID):
                for fact in state.entryFacts[entryID.hexString] ?? [] { add(fact) }
            case let .id(id):
                if let fact = state.claimFacts[id] {
                    add(fact)
                } else {
                    for fact in state.evidenceFacts[id] ?? [] { add(fact) }
                }
            }
            subject = attestation
            summary = "attestation \(attestation) (\(kind)) on \(target)"
        case let .findingRecorded(finding, fact, outcome, _, reliesOn):
            guard state.facts[fact] != nil else { return }
            add(fact)
            for item in reliesOn where !(state.evidenceFacts[item]?.contains(fact) ?? true) {
                state.evidenceFacts[item]?.append(fact)
            }
            subject = finding
            summary = "finding \(finding): \(outcome.rawValue)"
        case .genesis, .partyRegistered, .keyAdded, .keyRevoked, .unknown:
            return
        }
        facts = facts.filter { state.facts[$0] != nil }
        guard !facts.isEmpty else { return }
        state.entryFacts[record.entryID.hexString] = facts
        let entry = Entry(
            sequence: record.sequence, entryID: record.entryID.hexString, type: event.type, event: event.id, author: event.author,
            signedAt: event.signedAt.rfc3339, acceptedAt: record.acceptedAt.rfc3339, publishedAt: published, capturedAt: captured,
            subject: subject, summary: summary)
        for fact in facts { state.facts[fact]?.append(entry) }
    }

    /// The events on `fact`'s timeline, in log order; empty if there is no such fact.
    public func timeline(of fact: String, in state: State) -> [Entry] {
        state.facts[fact] ?? []
    }

    public var reportKey: String { "facts" }

    /// `{"fact", "events": [entry…]}` for each fact, in the order opened.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) {
        for fact in state.factOrder {
            body(.object(["fact": .string(fact), "events": .array((state.facts[fact] ?? []).map(\.json))]))
        }
    }
}

extension DisputedFactsProjection {
    /// The events on `fact`'s timeline, in log order, as ``TimelineProjection`` gives them, read
    /// back through the disputed-facts index: the timeline's rules applied to the records the
    /// index lists for the fact, which include every record that touches it or routes one to it
    /// (see ``State``), so the answer is the whole log's. It costs what the fact's records cost
    /// to read, where replaying the timeline projection costs the whole log and holds every
    /// fact's events. `nil` if no such fact is open in `state`.
    /// - Throws: ``LedgerError`` if a record cannot be read back (as ``fact(_:in:context:)``).
    public func timeline(of fact: String, in state: State, context: ReportContext) throws(LedgerError) -> [TimelineProjection.Entry]? {
        guard let node = state.node(.fact, fact) else {
            try state.checkIntact()
            return nil
        }
        let timeline = TimelineProjection()
        var routed = timeline.initialState
        try forEachRecord(of: node, in: state, context: context) { timeline.apply(record: $0, event: $1, to: &routed) }
        return timeline.timeline(of: fact, in: routed)
    }
}
