public import LedgerCore
import LedgerStore
import Dispatch
import FoundationEssentials

/// Whether a fact's claims disagree.
public enum DisputeStatus: String, Sendable, Hashable, CaseIterable, Codable {
    /// No claim was made about it (or only claims excluded for their signatures or keys).
    case unclaimed
    /// Active claims exist, but not both one that affirms and one that denies.
    case uncontested
    /// Active claims both affirm and deny it (stances after amendments).
    case disputed
    /// Claims were made, and every one was retracted.
    case withdrawn
}

/// An evidence item's standing in a fact's argumentation framework.
public enum EvidenceStatus: String, Sendable, Hashable, CaseIterable, Codable {
    case accepted, rejected, undecided
    /// Its integrity fails (blob missing, unreadable or mismatched, its attachment's signature
    /// or key is bad, or its author's role may not attach evidence): it is not an argument and
    /// attacks nothing.
    case excluded
    /// It bears on no active claim of the fact (its claims were retracted, or only a finding
    /// relies on it): it is not an argument.
    case inactive
}

/// Everything about one fact as of a replay position, with its three statuses computed.
///
/// ## The attack graph (one per fact)
///
/// Arguments are the fact's active (unretracted) claims, and the evidence items that support or
/// contradict one of them and whose integrity holds. Attacks:
/// 1. a counterclaim attacks the claim it counters (if both are active);
/// 2. an active claim that `affirms` and one that `denies` attack each other (`qualifies`
///    attacks nothing by stance);
/// 3. evidence attacks each active claim it contradicts;
/// 4. **countered evidence**: two evidence items attack each other when one supports an
///    active claim of the fact that the other contradicts; an item that both supports and
///    contradicts one claim attacks itself. So evidence is countered by conflicting evidence,
///    and supporting evidence defends its claim against contradicting evidence.
///
/// Evidence whose integrity fails (its blob missing, unreadable or mismatched, or a bad signature
/// or key on `evidence.attached`, or an author whose role may not attach evidence) is ``EvidenceStatus/excluded``: it attacks nothing, until a
/// blob that matches is stored. So is a claim whose own statement (`claim.asserted` or
/// `claim.countered`) has a bad signature or key: it is no argument and counts for no stance
/// (``ClaimView/excluded``). Statuses are Dung's grounded labelling of this graph.
public struct FactView: Sendable {
    /// The fact as recorded.
    public var fact: DisputedFactsProjection.Fact
    public var disputeStatus: DisputeStatus
    /// Precise integrity codes, sorted; empty when nothing was found. Codes:
    /// `blob-missing:E`, `blob-mismatch:E`, `blob-unreadable:E`, `custody-gap:E`, `bad-signature:ID`,
    /// `key-invalid:ID` (not the author's key, or revoked before that position),
    /// `role-not-allowed:ID` (its author's role may not sign its type), `not-the-author:ID` (a
    /// change to another party's claim), `key-revoked-later:ID` (a signing key was revoked after
    /// that statement), where ID is the event id of the statement concerned.
    public var integrity: [String]
    /// Active claims, in the order asserted, with argument status.
    public var claims: [ClaimView]
    /// Retracted claims, in the order asserted.
    public var retractedClaims: [ClaimView]
    /// Evidence that bears on the fact, in the order attached.
    public var evidence: [EvidenceView]
    /// The latest finding that takes effect, if any: valid signatures and key, by a reviewer
    /// (another shows only as its integrity code, and among ``DisputedFactsProjection/Fact/findings``).
    public var latestFinding: DisputedFactsProjection.Finding? { fact.findings.last { $0.signing.problem == nil } }

    /// A claim with its argument status.
    public struct ClaimView: Sendable {
        public var claim: DisputedFactsProjection.Claim
        /// `nil` for a retracted claim, and for an excluded one.
        public var status: ArgumentLabel?
        /// Whether its statement's signature or key is not valid: it is not an argument, attacks
        /// nothing and counts for no stance, as evidence whose attachment fails is excluded.
        public var excluded = false
        /// One line: why it has that status.
        public var reason: String
        /// The current stance as a value.
        public var stance: Event.Stance? { Event.Stance(rawValue: claim.stance) }
    }

    /// An evidence item with its standing in this fact's framework.
    public struct EvidenceView: Sendable {
        public var item: EvidenceItem
        public var blob: BlobState
        /// The item's own integrity codes, sorted.
        public var integrity: [String]
        public var status: EvidenceStatus
        public var reason: String
    }

    /// Counts of active claims by argument status.
    public var statusCounts: (accepted: Int, rejected: Int, undecided: Int) {
        (claims.count { $0.status == .accepted }, claims.count { $0.status == .rejected }, claims.count { $0.status == .undecided })
    }
}

extension DisputedFactsProjection {
    /// Every fact in `state`, in the order opened, with statuses computed now from its records
    /// read back from `context`'s ledger.
    /// - Throws: ``LedgerError`` if a record cannot be read back.
    public func facts(in state: State, context: ReportContext) throws(LedgerError) -> [FactView] {
        var out: [FactView] = []
        try forEachFact(in: state, context: context) { out.append($0) }
        return out
    }

    /// Calls `body` with each fact in `state`, in the order opened: what a large ledger's report
    /// uses, so that it never holds every fact's texts at once. Facts are built a few at a time on
    /// every core, each core reading the same open log through a reader of its own.
    /// - Throws: ``LedgerError`` if a record cannot be read back, and what `body` throws (no
    ///   later fact is then handed to it).
    public func forEachFact(in state: State, context: ReportContext, _ body: (FactView) throws(LedgerError) -> Void) throws(LedgerError) {
        try forEachFact(in: state, context: context, { $0 }, body)
    }

    /// As ``forEachFact(in:context:_:)``, with `transform` applied to each fact on the core
    /// that built it (rendering it for output, say) and `body` called with the results in order.
    public func forEachFact<T: Sendable>(
        in state: State, context: ReportContext, _ transform: @Sendable (FactView) -> T, _ body: (T) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        let state = finished(state)
        try forEachNode(state.factOrder.elements, in: state, context: context, { node, context, blobs throws(LedgerError) in
            transform(try view(of: node, in: state, context: context, blobs: blobs))
        }, body)
    }

    /// Calls `build` with each of `nodes` of `state` on every core (with a context reading the
    /// log on that core, and a blob cache of its own), and `body` with the results in order.
    func forEachNode<T: Sendable>(
        _ nodes: [Int32], in state: State, context: ReportContext, _ build: @Sendable (Int32, ReportContext, BlobCache) throws(LedgerError) -> T,
        _ body: (T) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        let workers = min(ProcessInfo.processInfo.activeProcessorCount, max(1, nodes.count / Self.factsPerTask))
        var own = [context]
        for _ in 1..<workers {
            var next = context
            next.ledger = context.ledger.readerForAnotherThread()
            own.append(next)
        }
        let contexts = own
        // One blob cache a core, kept for the whole query: a blob is hashed once per core (again
        // only if its cache filled up and started over in between).
        let caches = contexts.map { BlobCache(store: $0) }
        let batch = Self.factsPerTask * contexts.count
        for start in stride(from: 0, to: nodes.count, by: batch) {
            let slice = Array(nodes[start..<min(nodes.count, start + batch)])
            // Core w builds facts w, w + cores, w + 2 × cores, … of the batch.
            let built = concurrently(contexts.count) { w in
                stride(from: w, to: slice.count, by: contexts.count).map { i in
                    Result { () throws(LedgerError) in try build(slice[i], contexts[w], caches[w]) }
                }
            }
            for i in slice.indices { try body(try built[i % contexts.count][i / contexts.count].get()) }
        }
    }

    /// How many facts (or, for the timeline and evidence-index reports, which build theirs the
    /// same way, nodes) one core builds before the batch is handed over in order. A batch is held
    /// whole until its last fact is built, and the largest facts take megabytes each: at a million
    /// entries, 16 a core took `ledger facts` to 137–141 MiB and 4 to 93–95 MiB, in the same time
    /// within the machine's noise (17.5–24 s either way).
    static let factsPerTask = 4

    /// One fact, with statuses computed now; `nil` if no such fact is open in `state`.
    /// - Throws: ``LedgerError`` if a record cannot be read back.
    public func fact(_ id: String, in state: State, context: ReportContext) throws(LedgerError) -> FactView? {
        try fact(id, in: state, context: context) { _, _ in }
    }

    /// As ``fact(_:in:context:)``, handing each record read back to `alongside` too.
    func fact(_ id: String, in state: State, context: ReportContext, alongside: (ReplayRecord, Event) -> Void) throws(LedgerError) -> FactView? {
        guard let node = state.node(.fact, id) else {
            try state.checkIntact()
            return nil
        }
        return try view(of: node, in: finished(state), context: context, blobs: BlobCache(store: context), alongside: alongside)
    }

    /// `state` with its waiting signatures verified: a replay finishes its state, but a caller
    /// who applied records itself may not have.
    private func finished(_ state: State) -> State {
        guard !state.pending.records.isEmpty else { return state }
        var state = state
        finish(&state)
        return state
    }

    private func view(
        of node: Int32, in state: State, context: ReportContext, blobs: BlobCache, alongside: (ReplayRecord, Event) -> Void = { _, _ in }
    ) throws(LedgerError) -> FactView {
        let detail = try detail(of: node, in: state, context: context, alongside: alongside)
        // The fact's own opening is its node's first record, so the detail holds it.
        guard let name = state.name(of: node), let fact = detail.facts[name] else {
            try state.suspect("node \(node) is not a fact its first record opens")
            let entry = state.firstRecord(of: node).map { "Entry \($0)" } ?? "An entry"
            throw LedgerError(.damagedLog, "\(entry) of \(context.ledger.directory) no longer opens the fact the replay found there. Run `ledger verify \(context.ledger.directory)`.")
        }
        try state.checkIntact()
        return view(of: fact, in: detail, blobs: blobs)
    }

    /// The argumentation framework of `fact` (see ``FactView``), given which evidence is
    /// excluded for failed integrity.
    public func framework(of fact: Fact, in state: Detail, excluded: Set<String>, excludedClaims: Set<String> = []) -> ArgumentationFramework<FactArgument> {
        let active = fact.claims.compactMap { state.claims[$0] }.filter { $0.isActive && !excludedClaims.contains($0.claim) }
        let activeIDs = Set(active.map(\.claim))
        var evidenceIDs: [String] = []
        for claim in active {
            for e in claim.evidenceFor + claim.evidenceAgainst where !excluded.contains(e) && !evidenceIDs.contains(e) {
                evidenceIDs.append(e)
            }
        }
        evidenceIDs.sort { (state.evidence[$0]?.attachedAt ?? 0, $0) < (state.evidence[$1]?.attachedAt ?? 0, $1) }
        var framework = ArgumentationFramework<FactArgument>(
            arguments: active.map { .claim($0.claim) } + evidenceIDs.map { .evidence($0) })
        // 1. A counterclaim attacks the claim it counters.
        for claim in active {
            if let target = claim.counters, activeIDs.contains(target) {
                framework.addAttack(from: .claim(claim.claim), on: .claim(target))
            }
        }
        // 2. Claims of opposite stance attack each other.
        for a in active where a.stance == Event.Stance.affirms.rawValue {
            for d in active where d.stance == Event.Stance.denies.rawValue {
                framework.addAttack(from: .claim(a.claim), on: .claim(d.claim))
                framework.addAttack(from: .claim(d.claim), on: .claim(a.claim))
            }
        }
        // 3. Evidence attacks the claims it contradicts.
        for e in evidenceIDs {
            for claim in state.evidence[e]?.contradicts ?? [] where activeIDs.contains(claim) {
                framework.addAttack(from: .evidence(e), on: .claim(claim))
            }
        }
        // 4. Conflicting evidence: one supports an active claim the other contradicts.
        for e1 in evidenceIDs {
            let supports = Set((state.evidence[e1]?.supports ?? []).filter { activeIDs.contains($0) })
            for e2 in evidenceIDs where !supports.isDisjoint(with: state.evidence[e2]?.contradicts ?? []) {
                framework.addAttack(from: .evidence(e1), on: .evidence(e2))
                framework.addAttack(from: .evidence(e2), on: .evidence(e1))
            }
        }
        return framework
    }

    func view(of fact: Fact, in state: Detail, blobs: BlobCache) -> FactView {
        let keys = state.keys
        let claims = fact.claims.compactMap { state.claims[$0] }
        // The evidence that bears on the fact, in the order attached.
        var evidenceIDs: [String] = []
        for claim in claims {
            for e in claim.evidenceFor + claim.evidenceAgainst where !evidenceIDs.contains(e) { evidenceIDs.append(e) }
        }
        for e in fact.reliedOn where !evidenceIDs.contains(e) { evidenceIDs.append(e) }
        evidenceIDs = evidenceIDs.filter { state.evidence[$0] != nil }
        evidenceIDs.sort { (state.evidence[$0]?.attachedAt ?? 0, $0) < (state.evidence[$1]?.attachedAt ?? 0, $1) }

        var excluded = Set<String>()
        var evidenceCodes: [String: [String]] = [:]
        var blobStates: [String: BlobState] = [:]
        for id in evidenceIDs {
            guard let item = state.evidence[id] else { continue }
            let blob = blobs.state(of: item)
            blobStates[id] = blob
            var codes = item.recordCodes(keys: keys)
            for a in item.attestations { codes += keys.codes(for: a.signing) }
            if let code = blob.code(for: id) { codes.append(code) }
            evidenceCodes[id] = Array(Set(codes)).sorted()
            if blob.failsIntegrity || item.signing.problem != nil { excluded.insert(id) }
        }

        // A claim whose own statement's signature or key fails is no argument.
        let excludedClaims = Set(claims.filter { $0.signings.first?.problem != nil }.map(\.claim))
        let framework = framework(of: fact, in: state, excluded: excluded, excludedClaims: excludedClaims)
        let labelling = framework.groundedLabelling()
        let describe: (FactArgument) -> String = { $0.description }

        var integrity = keys.codes(for: fact.signing)
        for finding in fact.findings { integrity += keys.codes(for: finding.signing) }
        for a in fact.attestations { integrity += keys.codes(for: a.signing) }
        var active: [FactView.ClaimView] = []
        var retracted: [FactView.ClaimView] = []
        for claim in claims {
            for s in claim.signings { integrity += keys.codes(for: s) }
            for a in claim.attestations { integrity += keys.codes(for: a.signing) }
            if let at = claim.retractedAt {
                retracted.append(FactView.ClaimView(claim: claim, status: nil, reason: "retracted at entry \(at): \(claim.retractionReason ?? "")"))
            } else {
                // Only the counterclaims that attack it in the framework (a retracted or excluded
                // one is listed as such among the fact's claims).
                var shown = claim
                shown.counteredBy = claim.counteredBy.filter { framework.attacks(.claim($0), .claim(claim.claim)) }
                if excludedClaims.contains(claim.claim) {
                    let problem = claim.signings.first?.problem?.rawValue ?? ""
                    active.append(FactView.ClaimView(claim: shown, status: nil, excluded: true, reason: "excluded: its statement's signature or key is not valid (\(problem))"))
                } else {
                    let argument = FactArgument.claim(claim.claim)
                    active.append(FactView.ClaimView(claim: shown, status: labelling.label(of: argument), reason: labelling.reason(for: argument, describe: describe)))
                }
            }
        }
        var evidence: [FactView.EvidenceView] = []
        for id in evidenceIDs {
            guard let item = state.evidence[id] else { continue }
            integrity += evidenceCodes[id] ?? []
            let status: EvidenceStatus
            let reason: String
            let argument = FactArgument.evidence(id)
            if excluded.contains(id) {
                status = .excluded
                reason =
                    switch blobStates[id] {
                    case .mismatched:
                        "excluded: its stored blob does not match the SHA-256 and size the statement records (a changed file, or a wrong size in the statement: `ledger blob check` says which)"
                    case .missing: "excluded: its blob is not stored, so its content cannot be checked (`ledger blob add` stores it)"
                    case .unreadable: "excluded: what is stored under its blob's name cannot be read, so its content cannot be checked (`ledger blob check` says what is there)"
                    default:
                        item.signing.problem == .roleNotAllowed
                            ? "excluded: its author's role may not attach evidence (role-not-allowed: \"\(item.author)\" is registered as \(keys.roles[item.author] ?? "no role"))"
                            : "excluded: its attachment's signature or key is not valid (\(item.signing.problem?.rawValue ?? ""))"
                    }
            } else if framework.arguments.contains(argument) {
                status = EvidenceStatus(rawValue: labelling.label(of: argument).rawValue) ?? .undecided
                reason = labelling.reason(for: argument, describe: describe)
            } else {
                status = .inactive
                reason = "inactive: it bears on no active claim of this fact"
            }
            evidence.append(FactView.EvidenceView(item: item, blob: blobStates[id] ?? .unchecked, integrity: evidenceCodes[id] ?? [], status: status, reason: reason))
        }

        // Excluded claims count as none made.
        let standing = active.filter { !$0.excluded }
        let stances = Set(standing.map(\.claim.stance))
        let dispute: DisputeStatus
        if claims.allSatisfy({ excludedClaims.contains($0.claim) }) {
            dispute = .unclaimed
        } else if standing.isEmpty {
            dispute = .withdrawn
        } else if stances.contains(Event.Stance.affirms.rawValue) && stances.contains(Event.Stance.denies.rawValue) {
            dispute = .disputed
        } else {
            dispute = .uncontested
        }
        return FactView(
            fact: fact, disputeStatus: dispute, integrity: Array(Set(integrity)).sorted(), claims: active, retractedClaims: retracted,
            evidence: evidence)
    }
}

/// Blob states checked once per query (per core, when a query runs on several: each core has
/// its own, so it is used by one thread at a time). Evidence is nearly always about the claims
/// of one fact, so the cache only needs to span a few facts: it holds at most
/// ``capacity`` states and starts again empty when full, rather than one state for every blob
/// of a large ledger (tens of MB at a million entries).
final class BlobCache: @unchecked Sendable {
    static let capacity = 4096
    let blobs: BlobStore?
    private var states: [String: BlobState] = [:]

    init(store context: ReportContext) {
        self.blobs = context.blobs
    }

    func state(of item: EvidenceItem) -> BlobState {
        let key = item.sha256 + "/" + String(item.size)
        if let known = states[key] { return known }
        let state = BlobState(of: item, in: blobs)
        if states.count >= Self.capacity { states.removeAll(keepingCapacity: true) }
        states[key] = state
        return state
    }
}

extension FactView {
    /// The documented JSON shape of a fact (see `ledger facts --help`).
    public var json: JSONValue {
        .object([
            "fact": .string(fact.fact), "proposition": .string(fact.proposition), "subjects": .strings(fact.subjects),
            "tags": .strings(fact.tags), "opened_at": .number(fact.openedAt), "opened_by": .string(fact.openedBy),
            "last_change": .number(fact.lastChange), "dispute_status": .string(disputeStatus.rawValue),
            "integrity": .strings(integrity), "claims": .array(claims.map(\.json)),
            "retracted_claims": .array(retractedClaims.map(\.json)), "evidence": .array(evidence.map(\.json)),
            "attestations": .array(fact.attestations.map(\.json)), "findings": .array(fact.findings.map(\.json)),
            "finding": latestFinding?.json ?? .null,
        ])
    }
}

extension FactView.ClaimView {
    /// `{"claim", "author", "stance", "statement", "source", "counters", "countered_by",
    /// "evidence_for", "evidence_against", "attestations", "asserted_at", "last_change",
    /// "amendments", "status", "reason", "retracted_at", "retraction_reason"}`.
    public var json: JSONValue {
        .object([
            "claim": .string(claim.claim), "author": .string(claim.author), "stance": .string(claim.stance),
            "statement": .string(claim.statement), "source": claim.source?.json ?? .null, "counters": .optional(claim.counters),
            "countered_by": .strings(claim.counteredBy), "evidence_for": .strings(claim.evidenceFor),
            "evidence_against": .strings(claim.evidenceAgainst), "attestations": .array(claim.attestations.map(\.json)),
            "asserted_at": .number(claim.assertedAt), "last_change": .number(claim.lastChange), "amendments": .number(claim.amendments),
            "status": .optional(excluded ? "excluded" : status?.rawValue), "reason": .string(reason), "retracted_at": .optional(claim.retractedAt),
            "retraction_reason": .optional(claim.retractionReason),
        ])
    }
}

extension FactView.EvidenceView {
    /// `{"evidence", "title", "author", "media_type", "sha256", "size", "captured_at", "source",
    /// "supports", "contradicts", "attached_at", "blob", "integrity", "status", "reason",
    /// "custody_steps", "custody_gaps", "attestations"}`.
    public var json: JSONValue {
        .object([
            "evidence": .string(item.evidence), "title": .string(item.title), "author": .string(item.author),
            "media_type": .string(item.mediaType), "sha256": .string(item.sha256), "size": .integer(item.size),
            "captured_at": .optional(item.capturedAt), "source": item.source?.json ?? .null, "supports": .strings(item.supports),
            "contradicts": .strings(item.contradicts), "attached_at": .number(item.attachedAt), "blob": .string(blob.rawValue),
            "integrity": .strings(integrity), "status": .string(status.rawValue), "reason": .string(reason),
            "custody_steps": .number(item.custody.count), "custody_gaps": .number(item.custody.count { $0.gap != nil }),
            "attestations": .array(item.attestations.map(\.json)),
        ])
    }
}

extension DisputedFactsProjection {
    public var reportKey: String { "facts" }

    /// Each fact in the shape of ``FactView/json``, built on every core.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) throws(LedgerError) {
        try forEachFact(in: state, context: context, { $0.json }, body)
    }
}
