public import LedgerCore
import LedgerCrypto

extension DisputedFactsProjection {
    /// Everything the log says about a set of facts, in full: texts, claims after amendments,
    /// evidence with its chain of custody, attestations, findings, and who signed each.
    ///
    /// Built at query time by ``record(_:event:into:)`` over the records that an index
    /// (``State``) lists for the facts asked about, read back from the log; never kept for a
    /// whole ledger, whose texts would not fit in memory.
    public struct Detail: Sendable, Equatable {
        /// Facts by id.
        public var facts: [String: Fact] = [:]
        /// Fact ids in the order they were opened.
        public var factOrder: [String] = []
        /// Claims (and counterclaims) by id, retracted ones included.
        public var claims: [String: Claim] = [:]
        /// Evidence items by id.
        public var evidence: [String: EvidenceItem] = [:]
        /// What each entry id names, for attestations that target an entry: `claim:ID`,
        /// `evidence:ID` or `fact:ID`.
        public var entries: [String: String] = [:]
        /// Every key, for signature checks.
        public var keys = KeyTable()
        /// For each evidence item, the facts whose findings rely on it.
        public var reliedOnBy: [String: [String]] = [:]
        /// Signatures verified ahead, during the replay, or `nil` if they are verified when
        /// applied. A record listed has the signatures its bits say verify (``KeyTable/verify(_:parsed:)``);
        /// every other record's signatures verify.
        public var signatureFailures: [UInt64: UInt64]?

        /// An empty detail whose statements are checked against `keys`.
        ///
        /// The key table of the whole replay may stand in for the one at each position: a key
        /// is registered once (the first registration wins) and revoked once, and ``KeyTable``
        /// compares those positions with each statement's own.
        public init(keys: KeyTable = KeyTable()) {
            self.keys = keys
        }
    }

    /// A fact as recorded.
    public struct Fact: Sendable, Equatable {
        public var fact: String
        public var proposition: String
        public var subjects: [String]
        public var tags: [String]
        public var openedAt: UInt64
        public var openedBy: String
        /// Its claims in the order asserted, retracted ones included.
        public var claims: [String] = []
        /// Evidence the fact's findings rely on (evidence for or against its claims is found
        /// through the claims).
        public var reliedOn: [String] = []
        public var findings: [Finding] = []
        /// Attestations whose target is the fact's own entries.
        public var attestations: [AttestationInfo] = []
        /// The sequence number of the last record that touched the fact.
        public var lastChange: UInt64
        /// Who signed `fact.opened`. An opening with a problem (a bad signature or key, or a
        /// role that may not open facts) still lists the fact, as the index does, so that the
        /// claims made about it have a place; its integrity code says the opening is not valid.
        public var signing: Signing
    }

    /// A claim or counterclaim as recorded, with its amendments applied.
    public struct Claim: Sendable, Equatable {
        public var claim: String
        public var fact: String
        public var author: String
        /// The current stance (`affirms`, `denies`, `qualifies`), after amendments.
        public var stance: String
        /// The current statement, after amendments.
        public var statement: String
        public var source: SourceInfo?
        /// The claim it counters, for a counterclaim.
        public var counters: String?
        /// Counterclaims made against it, in order.
        public var counteredBy: [String] = []
        /// Evidence that supports / contradicts it, in order attached.
        public var evidenceFor: [String] = []
        public var evidenceAgainst: [String] = []
        public var attestations: [AttestationInfo] = []
        public var assertedAt: UInt64
        /// The sequence number of its last amendment or retraction (or of its assertion).
        public var lastChange: UInt64
        public var amendments: Int = 0
        public var retractedAt: UInt64?
        public var retractionReason: String?
        /// Who signed the assertion, each amendment and the retraction.
        public var signings: [Signing]

        /// Whether it still stands (not retracted).
        public var isActive: Bool { retractedAt == nil }
    }

    /// A reviewer's finding on a fact.
    public struct Finding: Sendable, Equatable {
        public var finding: String
        public var author: String
        public var outcome: String
        public var rationale: String
        public var reliesOn: [String]
        public var sequence: UInt64
        public var signedAt: String
        public var acceptedAt: String
        /// Who signed it; a finding whose `problem` is set (a bad signature or key, or an author
        /// who is no reviewer) takes no effect.
        public var signing: Signing

        /// `{"finding", "author", "outcome", "rationale", "relies_on", "sequence", "signed_at",
        /// "accepted_at", "problem"}`, `problem` null for a finding that takes effect, else why
        /// it does not (`bad-signature`, `key-invalid`, `role-not-allowed`).
        public var json: JSONValue {
            .object([
                "finding": .string(finding), "author": .string(author), "outcome": .string(outcome), "rationale": .string(rationale),
                "relies_on": .strings(reliesOn), "sequence": .number(sequence), "signed_at": .string(signedAt),
                "accepted_at": .string(acceptedAt), "problem": .optional(signing.problem?.rawValue),
            ])
        }
    }

    /// Applies one record to `state` in full: the rules of the disputed-facts projection. Applied
    /// to every record of the log, in order, it gives every fact's detail; applied to the records
    /// the index lists for one fact (``DisputedFactsProjection/State``), that fact's. Key events
    /// update the key table.
    public func record(_ record: ReplayRecord, event: Event, into state: inout Detail) {
        let sequence = record.sequence
        // Spelled out only for the events that record it (key events and ignored ones do not).
        lazy var entry = record.entryID.hexString
        func signing() -> Signing {
            // The replay's answers when it verified; past `verifyingFrom` without that, verified here.
            let verified = verifiesSignatures ? state.signatureFailures.map { $0[sequence] ?? .max } : nil
            return state.keys.signing(of: record, event, verifying: verifiesSignatures || sequence >= verifyingFrom, verified: verified)
        }
        func touch(fact: String) { state.facts[fact]?.lastChange = sequence }
        // The signing of a change to a claim of `author`'s, with its first problem: another
        // author's is not the author's to make.
        func change(by author: String) -> Signing {
            var signed = signing()
            if signed.problem == nil, event.author != author { signed.problem = .notTheAuthor }
            return signed
        }

        switch event.body {
        case .genesis, .partyRegistered, .keyAdded, .keyRevoked:
            state.keys.applyIfAdmitted(record, event)

        case let .factOpened(fact, proposition, subjects, tags):
            guard state.facts[fact] == nil else { return }
            state.facts[fact] = Fact(
                fact: fact, proposition: proposition, subjects: subjects, tags: tags, openedAt: sequence, openedBy: event.author,
                lastChange: sequence, signing: signing())
            state.factOrder.append(fact)
            state.entries[entry] = "fact:" + fact

        case let .claimAsserted(claim, fact, stance, statement, source):
            addClaim(claim, fact: fact, stance: stance, statement: statement, source: source, counters: nil, event, record, entry, signing(), &state)

        case let .claimCountered(claim, counters, fact, stance, statement, source):
            addClaim(claim, fact: fact, stance: stance, statement: statement, source: source, counters: counters, event, record, entry, signing(), &state)

        case let .claimAmended(claim, statement, stance, _):
            guard var c = state.claims[claim], c.isActive else { return }
            // A change takes effect only as the append rules let it: by the claim's author, with
            // valid signatures. Otherwise it is kept only for its integrity code.
            let signed = change(by: c.author)
            if signed.problem == nil {
                if let statement { c.statement = statement }
                if let stance { c.stance = stance.rawValue }
                c.amendments += 1
                c.lastChange = sequence
                touch(fact: c.fact)
            }
            c.signings.append(signed)
            state.claims[claim] = c
            state.entries[entry] = "claim:" + claim

        case let .claimRetracted(claim, reason):
            guard var c = state.claims[claim], c.isActive else { return }
            let signed = change(by: c.author)
            if signed.problem == nil {
                c.retractedAt = sequence
                c.retractionReason = reason
                c.lastChange = sequence
                touch(fact: c.fact)
            }
            c.signings.append(signed)
            state.claims[claim] = c
            state.entries[entry] = "claim:" + claim

        case let .evidenceAttached(e):
            guard state.evidence[e.evidence] == nil else { return }
            state.evidence[e.evidence] = EvidenceItem(e, event: event, record: record, signing: signing())
            state.entries[entry] = "evidence:" + e.evidence
            for claim in e.supports where state.claims[claim] != nil {
                state.claims[claim]?.evidenceFor.append(e.evidence)
                if let fact = state.claims[claim]?.fact { touch(fact: fact) }
            }
            for claim in e.contradicts where state.claims[claim] != nil {
                state.claims[claim]?.evidenceAgainst.append(e.evidence)
                if let fact = state.claims[claim]?.fact { touch(fact: fact) }
            }

        case let .custodyRecorded(item, action, from, to, at, note):
            guard state.evidence[item] != nil else { return }
            state.entries[entry] = "evidence:" + item
            // A step takes effect only with valid signatures, by a role that may record custody;
            // otherwise it is kept only for its integrity code, as a change to a claim is.
            let signed = signing()
            guard signed.problem == nil else {
                state.evidence[item]?.ineffectiveCustody.append(signed)
                return
            }
            state.evidence[item]?.recordCustody(action: action, from: from, to: to, at: at, note: note, event: event, record: record, signing: signed)
            for fact in facts(of: item, in: state) { touch(fact: fact) }

        case let .attestationMade(attestation, target, kind, note):
            let info = AttestationInfo(
                attestation: attestation, author: event.author, target: target, kind: kind, note: note, sequence: sequence, signing: signing())
            let resolved: String? = switch AttestationTarget(target) {
            case let .entry(entryID): state.entries[entryID.hexString]
            case let .id(id): state.claims[id] != nil ? "claim:" + id : state.evidence[id] != nil ? "evidence:" + id : nil
            }
            guard let resolved else { return }
            let id = String(resolved.drop { $0 != ":" }.dropFirst())
            if resolved.hasPrefix("claim:") {
                state.claims[id]?.attestations.append(info)
                if let fact = state.claims[id]?.fact { touch(fact: fact) }
            } else if resolved.hasPrefix("evidence:") {
                state.evidence[id]?.attestations.append(info)
                for fact in facts(of: id, in: state) { touch(fact: fact) }
            } else if resolved.hasPrefix("fact:") {
                state.facts[id]?.attestations.append(info)
                touch(fact: id)
            }

        case let .findingRecorded(finding, fact, outcome, rationale, reliesOn):
            guard state.facts[fact] != nil else { return }
            // Only a reviewer records findings (``signing()``); another's is kept for its integrity code.
            let signed = signing()
            state.facts[fact]?.findings.append(
                Finding(
                    finding: finding, author: event.author, outcome: outcome.rawValue, rationale: rationale, reliesOn: reliesOn,
                    sequence: sequence, signedAt: event.signedAt.rfc3339, acceptedAt: record.acceptedAt.rfc3339, signing: signed))
            state.entries[entry] = "fact:" + fact
            guard signed.problem == nil else { return }
            for item in reliesOn where state.evidence[item] != nil && !(state.facts[fact]?.reliedOn.contains(item) ?? true) {
                state.facts[fact]?.reliedOn.append(item)
                state.reliedOnBy[item, default: []].append(fact)
            }
            touch(fact: fact)

        case .unknown:
            break
        }
    }

    private func addClaim(
        _ claim: String, fact: String, stance: Event.Stance, statement: String, source: Event.Source?, counters: String?,
        _ event: Event, _ record: ReplayRecord, _ entry: String, _ signing: Signing, _ state: inout Detail
    ) {
        guard state.claims[claim] == nil, state.facts[fact] != nil else { return }
        state.claims[claim] = Claim(
            claim: claim, fact: fact, author: event.author, stance: stance.rawValue, statement: statement, source: SourceInfo(source),
            counters: counters, assertedAt: record.sequence, lastChange: record.sequence, signings: [signing])
        if let counters { state.claims[counters]?.counteredBy.append(claim) }
        state.facts[fact]?.claims.append(claim)
        state.facts[fact]?.lastChange = record.sequence
        state.entries[entry] = "claim:" + claim
    }

    /// The facts an evidence item bears on: those of the claims it supports or contradicts,
    /// and those whose findings rely on it.
    func facts(of evidence: String, in state: Detail) -> [String] {
        guard let item = state.evidence[evidence] else { return [] }
        var out: [String] = []
        for claim in item.supports + item.contradicts {
            if let fact = state.claims[claim]?.fact, !out.contains(fact) { out.append(fact) }
        }
        // Facts whose findings rely on it, from the reverse index: scanning every fact here made
        // replay quadratic in the number of facts.
        for fact in state.reliedOnBy[evidence] ?? [] where !out.contains(fact) {
            out.append(fact)
        }
        return out
    }
}
