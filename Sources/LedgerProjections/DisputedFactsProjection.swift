public import LedgerCore
import LedgerCrypto
import LedgerStore

/// The disputed-facts projection: every fact with its claims, evidence, attestations and
/// findings, from which ``DisputedFactsProjection/facts(in:context:)`` derives at query time
/// the three statuses of DESIGN.md (integrity, dispute and argument status, finding).
///
/// The replayed ``State`` is an index of the log, not a copy of it: for each fact, claim and
/// evidence item, the sequence numbers of the records about it and its links to the others.
/// A query reads those records back from the log and applies them in full
/// (``record(_:event:into:)``) to build the fact's ``Detail``, then its ``FactView``. So a
/// replay's memory grows with the number of things in the ledger, not with their texts, and a
/// snapshot is small enough to load at once. Signatures are verified during the replay, and
/// only their failures kept.
///
/// The index may list more records than a fact's view uses (an amendment of a retracted
/// claim, say): applying them in full decides, with the same rules as for the whole log. It
/// must never list fewer; see ``State`` for why it does not.
///
/// A state resumed from a snapshot reads its columns from the snapshot as they are used (see
/// ``Column``), so a replay from a snapshot costs what the records after it touch. Nothing in
/// it is trusted to be in range: a node, link or name out of bounds, a list that does not run
/// forwards or does not end at its node's tail, or a table with no free slot is taken as damage
/// of the snapshot (kept by its ``SnapshotSource``, which removes the file), like a block that
/// does not match its checksum; the engine then replays without the snapshot, and a query
/// throws rather than answer.
public struct DisputedFactsProjection: Projection {
    /// Whether replay verifies each statement's Ed25519 signatures (a batch at a time, on every
    /// core), keeping the failures in the state for queries to report. Without it, keys, roles
    /// and blobs are still checked, and signatures are left to `ledger verify` (they were
    /// verified at append).
    public var verifiesSignatures: Bool
    /// Where signatures are verified even without ``verifiesSignatures``, as the facts' records
    /// are read back: the log's entries past its index (`Ledger.indexCount`), which no writer
    /// may have checked. `UInt64.max` for none.
    public var verifyingFrom: UInt64

    public init(verifiesSignatures: Bool = true, verifyingFrom: UInt64 = .max) {
        self.verifiesSignatures = verifiesSignatures
        self.verifyingFrom = verifyingFrom
    }

    /// The state records which signatures failed only when they are verified.
    public var snapshotName: String { verifiesSignatures ? name : name + "+unverified-signatures" }

    public var name: String { "disputed-facts" }
    public var version: Int { 8 }
    public var summary: String { "every fact: proposition, claims with argument status, evidence, findings, integrity" }
    public var initialState: State { State() }

    /// Which records bear on which fact, claim and evidence item.
    ///
    /// Facts, claims and evidence items are nodes; each node has a list of links, in log order:
    /// the records about it (the one that made it first), and the nodes it leads to — a fact
    /// to its claims and to the evidence its findings rely on, a claim to the evidence that
    /// supports or contradicts it and to the counterclaims against it. A fact's records are
    /// its own, its claims' and their evidence's (see ``records(of:)``).
    ///
    /// Every test the full rules make on the way to a fact's view is on a record so reached:
    /// a claim joins a fact only if asserted with it; evidence bears on a claim only if it
    /// names it (linked when the claim is asserted, if the evidence came first); custody steps
    /// and attestations are listed under what they name; a counterclaim contributes its
    /// assertion and its own fact's opening, which is all the countered claim shows of it.
    ///
    /// The same holds for a fact's timeline (``TimelineProjection``) and for an evidence item
    /// (``EvidenceIndexProjection``), which are read back through these lists too: each record
    /// that touches a fact is among ``records(of:)`` (on the list of the fact, of one of its
    /// claims, or of evidence they lead to), and so is each record that routes later ones to it
    /// (a claim's assertion, an evidence item's attachment, a finding relying on evidence). An
    /// attestation's entry names the node it is listed under, so that an attestation of it is
    /// listed there too.
    public struct State: Sendable, Equatable {
        /// Keys the tables' hashes: drawn at random for each new state, kept in its snapshots.
        var hasher: IDHasher
        /// Each node's id.
        var names = NodeNames()
        /// Nodes by kind and id.
        var facts = NameTable()
        var claims = NameTable()
        var evidence = NameTable()
        /// Fact nodes in the order opened.
        var factOrder = Column<Int32>()
        /// Per node: its fact for a claim (-1 otherwise), and its first and last link.
        var parent = Column<Int32>()
        var head = Column<Int32>()
        var tail = Column<Int32>()
        /// The links: a tagged value (``Link``), the next link of the same node (-1 at the end),
        /// and that node (so that a walk of a damaged index never strays into another's list).
        var linkValue = Column<UInt64>()
        var linkNext = Column<Int32>()
        var linkOwner = Column<Int32>()
        /// The node each entry id names (an attestation's: the node it is listed under), for
        /// attestations that target an entry.
        var entries: EntryTable
        /// Evidence naming a claim not yet asserted (only in logs that broke the append rules).
        var waiting: [String: [Int32]] = [:]
        /// Every key, for signature checks at query time.
        public var keys = KeyTable()
        /// Records whose signatures do not all verify, with a bit set for each that does (only
        /// when the projection verifies signatures; they are verified in batches as replay goes).
        var signatureFailures: [UInt64: UInt64] = [:]
        /// Records applied but not yet verified; empty once a replay is finished.
        var pending = PendingSignatures()
        /// The snapshot this state was read from, if any: where its columns are read from, and
        /// where damage met in them is kept.
        var source: SnapshotSource?
        /// Whether the entry table was freed (``DisputedFactsProjection/prepareForQueries(_:)``):
        /// the state then answers queries, but is never replayed onto nor snapshotted.
        private(set) var queriesOnly = false

        public init() {
            self.init(hasher: .random())
        }

        init(hasher: IDHasher) {
            self.hasher = hasher
            entries = EntryTable(hasher: hasher)
        }

        /// How many facts are opened.
        public var factCount: Int { factOrder.count }

        /// The fact ids, in the order opened, the first `limit` of them.
        /// - Throws: ``LedgerError`` if the snapshot the state was read from is damaged there.
        public func factIDs(limit: Int = .max) throws(LedgerError) -> [String] {
            let ids = factOrder.prefix(limit).compactMap(name(of:))
            try checkIntact()
            return ids
        }

        /// Notes damage met in a state read from a snapshot. A state built by replay has none:
        /// there it is a defect.
        func damaged(_ what: String) { Self.damaged(what, in: source) }

        static func damaged(_ what: String, in source: SnapshotSource?) {
            if let source { source.fail("its index is inconsistent: \(what)") } else { assertionFailure(what) }
        }

        /// Throws if the snapshot this state was read from turned out damaged where it was read:
        /// an answer read from it may be wrong.
        func checkIntact() throws(LedgerError) {
            if let refusal = source?.refusal { throw LedgerError(.io, refusal) }
        }

        /// What the log and a state read from a snapshot disagree on is taken as the snapshot's
        /// damage (the replay without it then decides, and finds the log's if it is the log's):
        /// throws if the state was read from one.
        func suspect(_ what: String) throws(LedgerError) {
            guard source != nil else { return }
            damaged(what)
            try checkIntact()
        }

        /// Whether `node` is one of the state's nodes; notes damage if not.
        func isNode(_ node: Int32) -> Bool {
            guard node >= 0, Int(node) < head.count else {
                damaged("node \(node) out of range")
                return false
            }
            return true
        }

        /// `node`'s id, or `nil` (noting damage) if it cannot be read.
        func name(of node: Int32) -> String? {
            guard let name = names.name(of: node) else {
                damaged("node \(node) has no name")
                return nil
            }
            return name
        }

        /// The kinds of node, each with its own ids.
        enum Kind { case fact, claim, evidence }

        private func table(_ kind: Kind) -> NameTable {
            switch kind {
            case .fact: facts
            case .claim: claims
            case .evidence: evidence
            }
        }

        /// The node of kind `kind` named `id`, if any, and the id's hash (to add it with).
        func lookUp(_ kind: Kind, _ id: String) -> (node: Int32?, hash: UInt64) {
            var id = id
            return id.withUTF8 { utf8 in
                let bytes = UnsafeRawBufferPointer(utf8)
                let hash = hasher.hash(bytes)
                do throws(TableExhausted) {
                    return (try table(kind).find(hash) { names.hasName($0, bytes) }, hash)
                } catch {
                    damaged("the \(kind) table has no free slot")
                    return (nil, hash)
                }
            }
        }

        /// The node `entryID` names, if any.
        func node(for entryID: Digest) -> Int32? {
            do throws(TableExhausted) {
                return try entries.node(for: entryID)
            } catch {
                damaged("the entry table has no free slot")
                return nil
            }
        }

        /// The node of kind `kind` named `id`, if any.
        func node(_ kind: Kind, _ id: String) -> Int32? { lookUp(kind, id).node }

        /// Makes a node of kind `kind` for `id`, which has no node of that kind yet.
        mutating func addNode(_ kind: Kind, _ id: String, hash: UInt64, parent: Int32, record sequence: UInt64) -> Int32 {
            let node = Int32(head.count)
            names.append(id)
            switch kind {
            case .fact: facts.insert(hash, node)
            case .claim: claims.insert(hash, node)
            case .evidence: evidence.insert(hash, node)
            }
            self.parent.append(parent)
            head.append(-1)
            tail.append(-1)
            link(node, .record(sequence))
            return node
        }

        /// States are equal when they index the same records the same way: their tables' slots
        /// lie where their random keys put them.
        public static func == (a: State, b: State) -> Bool {
            func same(_ x: NameTable, _ y: NameTable) -> Bool { x.count == y.count && Set(x.nodes) == Set(y.nodes) }
            func pairs(_ table: EntryTable) -> [UInt64: Int32] {
                Dictionary(table.contents.map { ($0.word, $0.node) }, uniquingKeysWith: { first, _ in first })
            }
            return a.names == b.names && same(a.facts, b.facts) && same(a.claims, b.claims) && same(a.evidence, b.evidence)
                && a.factOrder == b.factOrder && a.parent == b.parent && a.head == b.head && a.tail == b.tail
                && a.linkValue == b.linkValue && a.linkNext == b.linkNext && a.linkOwner == b.linkOwner
                && a.entries.count == b.entries.count && pairs(a.entries) == pairs(b.entries) && a.entries.collided == b.entries.collided
                && a.waiting == b.waiting && a.keys == b.keys && a.signatureFailures == b.signatureFailures && a.pending == b.pending
                && a.queriesOnly == b.queriesOnly
        }

        /// Frees the entry table, which only replay uses (to list an attestation of an entry under
        /// that entry's node): a quarter of a million-entry index, held for nothing while its
        /// facts are built.
        mutating func releaseEntryTable() {
            entries = EntryTable(hasher: hasher)
            queriesOnly = true
        }

        mutating func link(_ node: Int32, _ link: Link) {
            guard isNode(node) else { return }
            let n = Int(node)
            let last = tail[n]
            guard last >= -1, last < Int32(linkNext.count) else { return damaged("node \(node)'s last link \(last) is out of range") }
            let index = Int32(linkValue.count)
            linkValue.append(link.value)
            linkNext.append(-1)
            linkOwner.append(node)
            if last < 0 { head[n] = index } else { linkNext[Int(last)] = index }
            tail[n] = index
        }

        /// The links of `node`, in order. Each leads forwards, so a list ends; one that does not,
        /// or strays into another node's links, or ends elsewhere than the node's tail, is cut
        /// there, as damage.
        func links(of node: Int32) -> some Sequence<Link> {
            var (first, last): (Int32, Int32) = (-1, -1)
            if isNode(node) {
                (first, last) = (head[Int(node)], tail[Int(node)])
                // Every node is made with its first record.
                if first == -1 { damaged("node \(node) has no links") }
            }
            // Only the node's own links are walked (each keeps its node), so walks of many nodes
            // along one long list cannot cost their product.
            return sequence(first: first) { [linkNext, source] in
                let next = linkNext[Int($0)]
                guard next == -1 ? $0 == last : next > $0 && next < Int32(linkNext.count) && $0 != last else {
                    Self.damaged("node \(node)'s list runs from link \($0) to \(next), past its last link \(last)", in: source)
                    return -1
                }
                return next
            }
            .lazy.prefix { [linkNext, linkOwner, source] in
                guard $0 >= 0, $0 < Int32(linkNext.count) else {
                    if $0 != -1 { Self.damaged("a list starts at link \($0)", in: source) }
                    return false
                }
                guard linkOwner[Int($0)] == node else {
                    Self.damaged("link \($0), on node \(node)'s list, is node \(linkOwner[Int($0)])'s", in: source)
                    return false
                }
                return true
            }
            .map { [linkValue] in Link(value: linkValue[Int($0)]) }
        }

        /// The sequence number of the record that made `node`, if its first link is one.
        func firstRecord(of node: Int32) -> UInt64? {
            guard let first = links(of: node).first(where: { _ in true }), first.tag == .record else {
                damaged("node \(node) does not start with its record")
                return nil
            }
            return first.payload
        }

        /// `node`'s fact, if it is a claim; `nil` (noting damage) if it has none.
        func fact(of node: Int32) -> Int32? {
            guard isNode(node), isNode(parent[Int(node)]) else { return nil }
            return parent[Int(node)]
        }

        /// The sequence numbers of every record that bears on `fact`, ascending, each once.
        func records(of fact: Int32) -> [UInt64] {
            var out: [UInt64] = []
            // Each node's records once, however many links lead to it (evidence several claims
            // of the fact rest on, say): the work is bounded by the links of the fact's nodes.
            var seen: Set<Int32> = []
            func own(_ node: Int32) {
                guard isNode(node), seen.insert(node).inserted else { return }
                out += ownRecords(of: node)
            }
            for link in links(of: fact) {
                // Damage met: the answer is refused, so walking on is wasted.
                if source?.damage != nil { return [] }
                switch link.tag {
                case .record: out.append(link.payload)
                case .evidence: own(link.node)
                case .counterclaim: break
                case .claim:
                    guard isNode(link.node), seen.insert(link.node).inserted else { continue }
                    for inner in links(of: link.node) {
                        switch inner.tag {
                        case .record: out.append(inner.payload)
                        case .evidence: own(inner.node)
                        case .claim: break
                        case .counterclaim:
                            let counterclaim = inner.node
                            if let record = firstRecord(of: counterclaim) { out.append(record) }
                            if let fact = self.fact(of: counterclaim), let record = firstRecord(of: fact) { out.append(record) }
                        }
                    }
                }
            }
            out.sort()
            var unique: [UInt64] = []
            unique.reserveCapacity(out.count)
            for sequence in out where sequence != unique.last { unique.append(sequence) }
            return unique
        }

        /// The sequence numbers of the records about `node` itself, ascending.
        func ownRecords(of node: Int32) -> [UInt64] {
            links(of: node).filter { $0.tag == .record }.map(\.payload)
        }

        /// The evidence nodes, in the order attached.
        func evidenceNodes() -> [Int32] {
            (0..<Int32(parent.count)).filter { node in
                parent[Int(node)] == -1 && name(of: node).map { self.node(.evidence, $0) == node } == true
            }
        }
    }

    /// Records waiting for their signatures to be verified, a batch at a time. States compare by
    /// the positions waiting.
    struct PendingSignatures: Sendable, Equatable {
        static let batch = 1024
        var records: [ReplayRecord] = []

        static func == (a: Self, b: Self) -> Bool { a.records.map(\.sequence) == b.records.map(\.sequence) }
    }

    /// One link of a node: a record's sequence number or another node, tagged in the top bits.
    struct Link {
        enum Tag: UInt64 { case record = 0, claim = 1, evidence = 2, counterclaim = 3 }
        let value: UInt64
        init(value: UInt64) { self.value = value }
        init(_ tag: Tag, _ payload: UInt64) { value = tag.rawValue << 62 | payload }
        static func record(_ sequence: UInt64) -> Link { Link(.record, sequence) }
        var tag: Tag { Tag(rawValue: value >> 62)! }
        var payload: UInt64 { value & (1 << 62 - 1) }
        /// The node a link to a node leads to (-1, no node, if out of any state's range).
        var node: Int32 { payload <= UInt64(Int32.max) ? Int32(payload) : -1 }
    }

    /// Records the fact, claim or evidence item `record` is about; see ``State``.
    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
        precondition(!state.queriesOnly, "a state readied for queries was replayed onto")
        index(record, event, &state)
        // Queued after the record's own key event is applied, so that a batch is verified with
        // every key registered at the positions of its records.
        if verifiesSignatures {
            state.pending.records.append(record)
            if state.pending.records.count >= PendingSignatures.batch { verifyPending(&state) }
        }
    }

    private func index(_ record: ReplayRecord, _ event: Event, _ state: inout State) {
        let sequence = record.sequence
        switch event.body {
        case .genesis, .partyRegistered, .keyAdded, .keyRevoked:
            state.keys.applyIfAdmitted(record, event)

        case let .factOpened(fact, _, _, _):
            let (existing, hash) = state.lookUp(.fact, fact)
            guard existing == nil else { return }
            let node = state.addNode(.fact, fact, hash: hash, parent: -1, record: sequence)
            state.factOrder.append(node)
            state.entries.insert(record.entryID, node)

        case let .claimAsserted(claim, fact, _, _, _):
            addClaim(claim, fact: fact, counters: nil, record, &state)

        case let .claimCountered(claim, counters, fact, _, _, _):
            addClaim(claim, fact: fact, counters: counters, record, &state)

        case let .claimAmended(claim, _, _, _), let .claimRetracted(claim, _):
            guard let node = state.node(.claim, claim) else { return }
            state.link(node, .record(sequence))
            state.entries.insert(record.entryID, node)

        case let .evidenceAttached(e):
            let (existing, hash) = state.lookUp(.evidence, e.evidence)
            guard existing == nil else { return }
            let node = state.addNode(.evidence, e.evidence, hash: hash, parent: -1, record: sequence)
            state.entries.insert(record.entryID, node)
            func bearsOn(_ claim: String) {
                if let target = state.node(.claim, claim) {
                    state.link(target, Link(.evidence, UInt64(node)))
                } else {
                    state.waiting[claim, default: []].append(node)
                }
            }
            // Two loops, not one over a concatenation built for every attachment.
            for claim in e.supports { bearsOn(claim) }
            for claim in e.contradicts { bearsOn(claim) }

        case let .custodyRecorded(item, _, _, _, _, _):
            guard let node = state.node(.evidence, item) else { return }
            state.link(node, .record(sequence))
            state.entries.insert(record.entryID, node)

        case let .attestationMade(_, target, _, _):
            let node: Int32? = switch AttestationTarget(target) {
            case let .entry(entryID): state.node(for: entryID)
            case let .id(id): state.node(.claim, id) ?? state.node(.evidence, id)
            }
            guard let node else { return }
            state.link(node, .record(sequence))
            // An attestation of this attestation's entry is then listed on the same node, so a
            // timeline read back finds it and counts it for the facts this one touched when made.
            // (A fact's view ignores it.)
            state.entries.insert(record.entryID, node)

        case let .findingRecorded(_, fact, _, _, reliesOn):
            guard let node = state.node(.fact, fact) else { return }
            state.link(node, .record(sequence))
            state.entries.insert(record.entryID, node)
            for item in reliesOn {
                if let evidence = state.node(.evidence, item) { state.link(node, Link(.evidence, UInt64(evidence))) }
            }

        case .unknown:
            break
        }
    }

    private func addClaim(_ claim: String, fact: String, counters: String?, _ record: ReplayRecord, _ state: inout State) {
        let (existing, hash) = state.lookUp(.claim, claim)
        guard existing == nil, let factNode = state.node(.fact, fact) else { return }
        let node = state.addNode(.claim, claim, hash: hash, parent: factNode, record: record.sequence)
        state.link(factNode, Link(.claim, UInt64(node)))
        if let counters, let target = state.node(.claim, counters) {
            state.link(target, Link(.counterclaim, UInt64(node)))
        }
        state.entries.insert(record.entryID, node)
        for evidence in state.waiting.removeValue(forKey: claim) ?? [] {
            state.link(node, Link(.evidence, UInt64(evidence)))
        }
    }

    /// The full detail of `fact`: its records read back from the log and applied in full, each
    /// also handed to `alongside`.
    /// - Throws: ``LedgerError`` if a record cannot be read, or no longer decodes although the
    ///   replay applied it (the log changed underneath: run `ledger verify`).
    func detail(of fact: Int32, in state: State, context: ReportContext, alongside: (ReplayRecord, Event) -> Void) throws(LedgerError) -> Detail {
        var detail = Detail(keys: state.keys)
        // The replay verified every signature (when this projection verifies them at all).
        detail.signatureFailures = state.signatureFailures
        try forEachRecord(state.records(of: fact), in: state, context: context) {
            self.record($0, event: $1, into: &detail)
            alongside($0, $1)
        }
        return detail
    }

    /// Calls `body` with each of `sequences` (ascending, from `state`), read back from the log
    /// and decoded as the replay decoded it.
    /// - Throws: ``LedgerError`` as ``detail(of:in:context:)``.
    func forEachRecord(_ sequences: [UInt64], in state: State, context: ReportContext, _ body: (ReplayRecord, Event) -> Void) throws(LedgerError) {
        for sequence in sequences {
            guard sequence < context.ledger.count else {
                state.damaged("record \(sequence) is past the log's end")
                break
            }
            let stored = try context.ledger.record(at: sequence)
            guard case let .apply(record, event) = ReplayDecoding.decode(stored) else {
                try state.suspect("record \(sequence) is one the replay skipped")
                throw LedgerError(
                    .damagedLog,
                    "Entry \(sequence) of \(context.ledger.directory) no longer decodes as the event the replay applied. Run `ledger verify \(context.ledger.directory)`.")
            }
            body(record, event)
        }
        try state.checkIntact()
    }

    /// Verifies the signatures of the records waiting for it, on every core, and keeps the
    /// failures. The key table of a later position answers as the one at each record would:
    /// ``KeyTable/verify(_:parsed:)`` looks a key up by its id, which names one key, registered once;
    /// whether it was the author's and valid there is decided when the fact is read.
    private func verifyPending(_ state: inout State) {
        let records = state.pending.records
        guard !records.isEmpty else { return }
        state.pending.records = []
        let keys = state.keys
        let parsed = keys.parsedKeys(signing: records)
        let valid = concurrently((records.count + 63) / 64) { task in
            records[(task * 64)..<min(records.count, (task + 1) * 64)].map { keys.verify($0, parsed: parsed) }
        }.joined()
        for (record, mask) in zip(records, valid) {
            let all: UInt64 = record.envelope.signatures.count >= 64 ? .max : (1 << UInt64(record.envelope.signatures.count)) - 1
            if mask & all != all { state.signatureFailures[record.sequence] = mask }
        }
    }

    public func finish(_ state: inout State) {
        verifyPending(&state)
    }

    public func prepareForQueries(_ state: inout State) {
        state.releaseEntryTable()
    }
}

/// Snapshots write the index as columns, its tables slot by slot with their hash key, read as
/// they are used; on reading, only what costs nothing is checked (columns of one length, tables
/// of a size they can be), and everything else where it is used (see ``State``).
extension DisputedFactsProjection.State: Codable {
    enum CodingKeys: String, CodingKey {
        case hashKey = "hash_key", names, nameEnds = "name_ends"
        case factSlots = "fact_slots", claimSlots = "claim_slots", evidenceSlots = "evidence_slots"
        case factCount = "fact_count", claimCount = "claim_count", evidenceCount = "evidence_count"
        case factOrder = "fact_order", parent, head, tail, linkValue = "link_value", linkNext = "link_next", linkOwner = "link_owner"
        case entryWords = "entry_words", entryNodes = "entry_nodes", entryCount = "entry_count"
        case collidedIDs = "collided_ids", collidedNodes = "collided_nodes"
        case waiting, keys, failedSequences = "signature_failed_sequences", failedMasks = "signature_failed_masks"
    }

    public func encode(to encoder: any Encoder) throws {
        guard pending.records.isEmpty else {
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "signatures still waiting to be verified"))
        }
        guard !queriesOnly else {
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "it was readied for queries, its entry table freed: snapshot the state a replay returns, before ReplayEngine.replayForQueries or Projection.prepareForQueries"))
        }
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Column([hasher.k0, hasher.k1]), forKey: .hashKey)
        try c.encode(names.bytes, forKey: .names)
        try c.encode(names.ends, forKey: .nameEnds)
        try c.encode(facts.slots, forKey: .factSlots)
        try c.encode(claims.slots, forKey: .claimSlots)
        try c.encode(evidence.slots, forKey: .evidenceSlots)
        try c.encode(facts.count, forKey: .factCount)
        try c.encode(claims.count, forKey: .claimCount)
        try c.encode(evidence.count, forKey: .evidenceCount)
        try c.encode(factOrder, forKey: .factOrder)
        try c.encode(parent, forKey: .parent)
        try c.encode(head, forKey: .head)
        try c.encode(tail, forKey: .tail)
        try c.encode(linkValue, forKey: .linkValue)
        try c.encode(linkNext, forKey: .linkNext)
        try c.encode(linkOwner, forKey: .linkOwner)
        try c.encode(entries.words, forKey: .entryWords)
        try c.encode(entries.nodes, forKey: .entryNodes)
        try c.encode(entries.count, forKey: .entryCount)
        try c.encode(Column(entries.collided.keys.flatMap(\.rawRepresentation)), forKey: .collidedIDs)
        try c.encode(Column(Array(entries.collided.values)), forKey: .collidedNodes)
        try c.encode(waiting, forKey: .waiting)
        try c.encode(keys, forKey: .keys)
        try c.encode(Column(Array(signatureFailures.keys)), forKey: .failedSequences)
        try c.encode(Column(Array(signatureFailures.values)), forKey: .failedMasks)
        // Encoding read every column: a state resumed from a damaged snapshot is not written.
        if let damage = source?.damage {
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "the snapshot it was read from is damaged: \(damage)"))
        }
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func corrupted(_ what: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "disputed-facts index: \(what)"))
        }
        func column<T>(_ key: CodingKeys, as type: T.Type = T.self) throws -> Column<T> { try c.decode(Column<T>.self, forKey: key) }
        func table<Key: Hashable, Value>(_ keys: [Key], _ values: [Value]) throws -> [Key: Value] {
            guard keys.count == values.count else { throw corrupted("a table's keys and values differ in number") }
            var out: [Key: Value] = [:]
            out.reserveCapacity(keys.count)
            for (key, value) in zip(keys, values) where out.updateValue(value, forKey: key) != nil { throw corrupted("a key appears twice") }
            return out
        }
        func nameTable(_ slots: CodingKeys, _ count: CodingKeys) throws -> NameTable {
            guard let table = NameTable(stored: try column(slots), count: try c.decode(Int.self, forKey: count)) else {
                throw corrupted("a table's size is not a power of two, or it holds more than it has room for")
            }
            return table
        }
        let key: [UInt64] = try column(.hashKey).elements
        guard key.count == 2 else { throw corrupted("the hash key is not two words") }
        self.init(hasher: IDHasher(k0: key[0], k1: key[1]))
        names = NodeNames(bytes: try column(.names), ends: try column(.nameEnds))
        facts = try nameTable(.factSlots, .factCount)
        claims = try nameTable(.claimSlots, .claimCount)
        evidence = try nameTable(.evidenceSlots, .evidenceCount)
        factOrder = try column(.factOrder)
        parent = try column(.parent)
        head = try column(.head)
        tail = try column(.tail)
        linkValue = try column(.linkValue)
        linkNext = try column(.linkNext)
        linkOwner = try column(.linkOwner)
        guard names.count == parent.count, head.count == parent.count, tail.count == parent.count, linkNext.count == linkValue.count, linkOwner.count == linkValue.count,
            parent.count < Int(Int32.max), linkValue.count < Int(Int32.max)
        else { throw corrupted("its columns differ in length") }
        let ids = try column(.collidedIDs, as: UInt8.self).elements
        guard ids.count % 32 == 0 else { throw corrupted("a partial entry id") }
        let digests = stride(from: 0, to: ids.count, by: 32).compactMap { try? Digest(rawRepresentation: ids[$0..<$0 + 32]) }
        guard let entries = EntryTable(
            hasher: hasher, words: try column(.entryWords), nodes: try column(.entryNodes), count: try c.decode(Int.self, forKey: .entryCount),
            collided: try table(digests, column(.collidedNodes).elements))
        else { throw corrupted("the entry table's columns differ in size, or its size is not a power of two") }
        self.entries = entries
        waiting = try c.decode([String: [Int32]].self, forKey: .waiting)
        keys = try c.decode(KeyTable.self, forKey: .keys)
        signatureFailures = try table(column(.failedSequences, as: UInt64.self).elements, column(.failedMasks, as: UInt64.self).elements)
        source = (decoder as? SlotDecoder)?.reader.source
        let nodes = Int32(parent.count)
        guard waiting.values.joined().allSatisfy({ $0 >= 0 && $0 < nodes }) else { throw corrupted("a node number out of range") }
        if let damage = source?.damage { throw corrupted(damage) }
    }
}
