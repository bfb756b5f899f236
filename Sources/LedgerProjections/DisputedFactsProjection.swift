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
public struct DisputedFactsProjection: Projection {
    /// Whether replay verifies each statement's Ed25519 signatures (a batch at a time, on every
    /// core), keeping the failures in the state for queries to report. Without it, keys, roles
    /// and blobs are still checked, and signatures are left to `ledger verify` (they were
    /// verified at append).
    public var verifiesSignatures: Bool

    public init(verifiesSignatures: Bool = true) {
        self.verifiesSignatures = verifiesSignatures
    }

    /// The state records which signatures failed only when they are verified.
    public var snapshotName: String { verifiesSignatures ? name : name + "+unverified-signatures" }

    public var name: String { "disputed-facts" }
    public var version: Int { 4 }
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
        var factOrder: [Int32] = []
        /// Per node: its fact for a claim (-1 otherwise), and its first and last link.
        var parent: [Int32] = []
        var head: [Int32] = []
        var tail: [Int32] = []
        /// The links: a tagged value (``Link``) and the next link of the same node (-1 at the end).
        var linkValue: [UInt64] = []
        var linkNext: [Int32] = []
        /// The node each entry id names, for attestations that target an entry.
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

        public init() {
            self.init(hasher: .random())
        }

        init(hasher: IDHasher) {
            self.hasher = hasher
            entries = EntryTable(hasher: hasher)
        }

        /// The fact ids, in the order opened.
        public var factIDs: [String] { factOrder.map(names.name(of:)) }

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
                return (table(kind).find(hash) { names.hasName($0, bytes) }, hash)
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
                && a.linkValue == b.linkValue && a.linkNext == b.linkNext
                && a.entries.count == b.entries.count && pairs(a.entries) == pairs(b.entries) && a.entries.collided == b.entries.collided
                && a.waiting == b.waiting && a.keys == b.keys && a.signatureFailures == b.signatureFailures && a.pending == b.pending
        }

        mutating func link(_ node: Int32, _ link: Link) {
            let index = Int32(linkValue.count)
            linkValue.append(link.value)
            linkNext.append(-1)
            let n = Int(node)
            if tail[n] < 0 { head[n] = index } else { linkNext[Int(tail[n])] = index }
            tail[n] = index
        }

        /// The links of `node`, in order.
        func links(of node: Int32) -> some Sequence<Link> {
            sequence(first: head[Int(node)]) { [linkNext] in linkNext[Int($0)] }
                .lazy.prefix { $0 >= 0 }.map { [linkValue] in Link(value: linkValue[Int($0)]) }
        }

        /// The sequence number of the record that made `node`.
        func firstRecord(of node: Int32) -> UInt64 { Link(value: linkValue[Int(head[Int(node)])]).payload }

        /// The sequence numbers of every record that bears on `fact`, ascending, each once.
        func records(of fact: Int32) -> [UInt64] {
            var out: [UInt64] = []
            // Each node's records once, however many links lead to it (evidence several claims
            // of the fact rest on, say): the work is bounded by the links of the fact's nodes.
            var seen: Set<Int32> = []
            func own(_ node: Int32) {
                guard seen.insert(node).inserted else { return }
                for link in links(of: node) where link.tag == .record { out.append(link.payload) }
            }
            for link in links(of: fact) {
                switch link.tag {
                case .record: out.append(link.payload)
                case .evidence: own(Int32(link.payload))
                case .counterclaim: break
                case .claim:
                    guard seen.insert(Int32(link.payload)).inserted else { continue }
                    for inner in links(of: Int32(link.payload)) {
                        switch inner.tag {
                        case .record: out.append(inner.payload)
                        case .evidence: own(Int32(inner.payload))
                        case .claim: break
                        case .counterclaim:
                            let counterclaim = Int32(inner.payload)
                            out.append(firstRecord(of: counterclaim))
                            out.append(firstRecord(of: parent[Int(counterclaim)]))
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
    }

    /// Records the fact, claim or evidence item `record` is about; see ``State``.
    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
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
            state.keys.apply(event, at: sequence)

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
            case let .entry(entryID): state.entries[entryID]
            case let .id(id): state.node(.claim, id) ?? state.node(.evidence, id)
            }
            if let node { state.link(node, .record(sequence)) }

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

    /// The full detail of `fact`: its records read back from the log and applied in full.
    /// - Throws: ``LedgerError`` if a record cannot be read, or no longer decodes although the
    ///   replay applied it (the log changed underneath: run `ledger verify`).
    func detail(of fact: Int32, in state: State, context: ReportContext) throws(LedgerError) -> Detail {
        var detail = Detail(keys: state.keys)
        // The replay verified every signature (when this projection verifies them at all).
        detail.signatureFailures = state.signatureFailures
        for sequence in state.records(of: fact) {
            let stored = try context.ledger.record(at: sequence)
            guard case let .apply(record, event) = ReplayDecoding.decode(stored) else {
                throw LedgerError(
                    .damagedLog,
                    "Entry \(sequence) of \(context.ledger.directory) no longer decodes as the event the replay applied. Run `ledger verify \(context.ledger.directory)`.")
            }
            self.record(record, event: event, into: &detail)
        }
        return detail
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
}

/// Snapshots write the index as packed arrays, its tables slot by slot with their hash key, and
/// check on reading that every link and node number points inside them, every list runs
/// forwards and every table can be searched, so a damaged or forged snapshot is refused (and the
/// state rebuilt) rather than read out of bounds or followed in circles.
extension DisputedFactsProjection.State: Codable {
    enum CodingKeys: String, CodingKey {
        case hashKey = "hash_key", names, nameEnds = "name_ends"
        case factSlots = "fact_slots", claimSlots = "claim_slots", evidenceSlots = "evidence_slots"
        case factOrder = "fact_order", parent, head, tail, linkValue = "link_value", linkNext = "link_next"
        case entryWords = "entry_words", entryNodes = "entry_nodes", collidedIDs = "collided_ids", collidedNodes = "collided_nodes"
        case waiting, keys, failedSequences = "signature_failed_sequences", failedMasks = "signature_failed_masks"
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(PackedArray([hasher.k0, hasher.k1]), forKey: .hashKey)
        try c.encode(SnapshotBlob(names.bytes), forKey: .names)
        try c.encode(PackedArray(names.ends), forKey: .nameEnds)
        try c.encode(PackedArray(facts.slots), forKey: .factSlots)
        try c.encode(PackedArray(claims.slots), forKey: .claimSlots)
        try c.encode(PackedArray(evidence.slots), forKey: .evidenceSlots)
        try c.encode(PackedArray(factOrder), forKey: .factOrder)
        try c.encode(PackedArray(parent), forKey: .parent)
        try c.encode(PackedArray(head), forKey: .head)
        try c.encode(PackedArray(tail), forKey: .tail)
        try c.encode(PackedArray(linkValue), forKey: .linkValue)
        try c.encode(PackedArray(linkNext), forKey: .linkNext)
        try c.encode(PackedArray(entries.words), forKey: .entryWords)
        try c.encode(PackedArray(entries.nodes), forKey: .entryNodes)
        try c.encode(SnapshotBlob(entries.collided.keys.flatMap(\.rawRepresentation)), forKey: .collidedIDs)
        try c.encode(PackedArray(Array(entries.collided.values)), forKey: .collidedNodes)
        try c.encode(waiting, forKey: .waiting)
        try c.encode(keys, forKey: .keys)
        guard pending.records.isEmpty else {
            throw EncodingError.invalidValue(self, .init(codingPath: encoder.codingPath, debugDescription: "signatures still waiting to be verified"))
        }
        try c.encode(PackedArray(Array(signatureFailures.keys)), forKey: .failedSequences)
        try c.encode(PackedArray(Array(signatureFailures.values)), forKey: .failedMasks)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func corrupted(_ what: String) -> DecodingError {
            .dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "disputed-facts index: \(what)"))
        }
        func unpack<T: FixedWidthInteger>(_ key: CodingKeys, as type: T.Type = T.self) throws -> [T] {
            try c.decode(PackedArray<T>.self, forKey: key).values
        }
        func table<Key: Hashable, Value>(_ keys: [Key], _ values: [Value]) throws -> [Key: Value] {
            guard keys.count == values.count else { throw corrupted("a table's keys and values differ in number") }
            var out: [Key: Value] = [:]
            out.reserveCapacity(keys.count)
            for (key, value) in zip(keys, values) where out.updateValue(value, forKey: key) != nil { throw corrupted("a key appears twice") }
            return out
        }
        let key: [UInt64] = try unpack(.hashKey)
        guard key.count == 2 else { throw corrupted("the hash key is not two words") }
        self.init(hasher: IDHasher(k0: key[0], k1: key[1]))
        names = NodeNames(bytes: try c.decode(SnapshotBlob.self, forKey: .names).bytes, ends: try unpack(.nameEnds))
        facts = NameTable(stored: try unpack(.factSlots))
        claims = NameTable(stored: try unpack(.claimSlots))
        evidence = NameTable(stored: try unpack(.evidenceSlots))
        factOrder = try unpack(.factOrder)
        parent = try unpack(.parent)
        head = try unpack(.head)
        tail = try unpack(.tail)
        linkValue = try unpack(.linkValue)
        linkNext = try unpack(.linkNext)
        let ids = try c.decode(SnapshotBlob.self, forKey: .collidedIDs).bytes
        guard ids.count % 32 == 0 else { throw corrupted("a partial entry id") }
        let digests = stride(from: 0, to: ids.count, by: 32).compactMap { try? Digest(rawRepresentation: ids[$0..<$0 + 32]) }
        entries = EntryTable(hasher: hasher, words: try unpack(.entryWords), nodes: try unpack(.entryNodes), collided: try table(digests, unpack(.collidedNodes)))
        waiting = try c.decode([String: [Int32]].self, forKey: .waiting)
        keys = try c.decode(KeyTable.self, forKey: .keys)
        signatureFailures = try table(unpack(.failedSequences, as: UInt64.self), unpack(.failedMasks, as: UInt64.self))
        if let problem = inconsistency { throw corrupted(problem) }
    }

    /// What makes the index unusable, if anything: a number pointing outside its arrays, a
    /// list that does not run forwards or shares links with another, a node without its first
    /// record, a table that cannot be searched or does not list each node once under its kind,
    /// facts in an order that does not list each fact once.
    var inconsistency: String? {
        let nodes = Int32(parent.count)
        let links = Int32(linkValue.count)
        guard head.count == parent.count, tail.count == parent.count, linkNext.count == linkValue.count else {
            return "its arrays differ in length"
        }
        if let problem = names.inconsistency(nodes: Int(nodes)) { return problem }
        for table in [facts, claims, evidence] {
            if let problem = table.problem(nodes: Int(nodes)) { return problem.description }
        }
        if let problem = entries.problem(nodes: Int(nodes)) { return problem.description }
        let isNode = { (n: Int32) in n >= 0 && n < nodes }
        guard factOrder.allSatisfy(isNode), waiting.values.joined().allSatisfy(isNode) else { return "a node number out of range" }
        // Every node under exactly one kind: a fact and an evidence item have no fact, a claim has one.
        enum Kind: UInt8 { case none, fact, claim, evidence }
        var kinds = [Kind](repeating: .none, count: Int(nodes))
        for (kind, table) in [(Kind.fact, facts), (.claim, claims), (.evidence, evidence)] {
            for node in table.nodes {
                guard kinds[Int(node)] == .none else { return "node \(node) is listed twice in the tables" }
                kinds[Int(node)] = kind
            }
        }
        for n in 0..<Int(nodes) {
            let hasFact = parent[n] != -1
            guard kinds[n] != .none, hasFact == (kinds[n] == .claim), !hasFact || isNode(parent[n]) && kinds[Int(parent[n])] == .fact else {
                return "node \(n) is not a fact, claim or evidence item as the tables say"
            }
        }
        for (i, next) in linkNext.enumerated() where next != -1 && !(next > Int32(i) && next < links) {
            return "link \(i) does not lead forwards"
        }
        for n in 0..<Int(nodes) {
            guard head[n] >= 0, head[n] < links, tail[n] >= head[n], tail[n] < links,
                DisputedFactsProjection.Link(value: linkValue[Int(head[n])]).tag == .record
            else { return "node \(n) is malformed" }
        }
        // Each link on at most one list, each list ending at its node's tail. Links lead forwards,
        // so one pass in link order hands each link's list on to the next (following every list
        // instead would jump about the arrays, several times slower).
        var owner = [Int32](repeating: -1, count: Int(links))
        for n in 0..<Int(nodes) {
            guard owner[Int(head[n])] == -1 else { return "link \(head[n]) is on two lists" }
            owner[Int(head[n])] = Int32(n)
        }
        for (i, next) in linkNext.enumerated() where next != -1 && owner[i] != -1 {
            guard owner[Int(next)] == -1 else { return "link \(next) is on two lists" }
            owner[Int(next)] = owner[i]
        }
        for n in 0..<Int(nodes) where owner[Int(tail[n])] != Int32(n) || linkNext[Int(tail[n])] != -1 {
            return "node \(n)'s list does not end at its tail"
        }
        var listed = [Bool](repeating: false, count: Int(nodes))
        for node in factOrder {
            guard kinds[Int(node)] == .fact, !listed[Int(node)] else { return "the facts' order does not list each fact once" }
            listed[Int(node)] = true
        }
        guard factOrder.count == facts.count else { return "the facts' order does not list each fact once" }
        for value in linkValue {
            let link = DisputedFactsProjection.Link(value: value)
            guard link.tag == .record || link.payload < UInt64(nodes) else { return "a link to a node out of range" }
            if link.tag == .counterclaim, parent[Int(link.payload)] < 0 { return "a counterclaim without a fact" }
        }
        return nil
    }
}
