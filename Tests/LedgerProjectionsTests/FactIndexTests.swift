import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerProjections
import LedgerStore
import Testing

/// The disputed-facts state is an index of the log; a fact's view is built by reading its
/// records back and applying them in full. These tests hold it to the reference: the full
/// rules applied to every record of the log, with keys as they stood at each position.
@Suite("Disputed facts read back through the index")
struct FactIndexTests {
    /// The full rules applied to records 0…last, and a blob cache as of `last`.
    func fullDetail(_ ledger: Ledger, through last: UInt64) throws -> (DisputedFactsProjection.Detail, BlobCache) {
        let projection = DisputedFactsProjection()
        var detail = DisputedFactsProjection.Detail()
        try ledger.forEachRecord(from: 0, to: last + 1) { (stored) throws(LedgerError) -> Bool in
            if case let .apply(record, event) = ReplayDecoding.decode(stored) { projection.record(record, event: event, into: &detail) }
            return true
        }
        return (detail, BlobCache(store: ReportContext(ledger: ledger, blobs: nil, position: ReplayPosition(sequence: last, entryID: nil, acceptedAt: nil, ledgerCount: ledger.count))))
    }

    /// Every fact's JSON at `last`, from the full rules applied to records 0…last.
    func reference(_ ledger: Ledger, through last: UInt64) throws -> [String] {
        let (detail, blobs) = try fullDetail(ledger, through: last)
        return detail.factOrder.map { canonical(DisputedFactsProjection().view(of: detail.facts[$0]!, in: detail, blobs: blobs).json) }
    }

    /// Every fact's JSON at `last`, through the index, readied for queries as the commands ready
    /// it (as are the timelines' and evidence items' below); each fact read with its timeline
    /// (`ledger fact`) must give the same view, and the same timeline as read alone.
    func indexed(_ ledger: Ledger, through last: UInt64) throws -> [String] {
        let projection = DisputedFactsProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replayForQueries(projection, to: .sequence(last), snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let views = try projection.facts(in: replay.state, context: context).map { canonical($0.json) }
        for (id, view) in zip(try replay.state.factIDs(), views) {
            let both = try #require(try projection.factAndTimeline(id, in: replay.state, context: context))
            #expect(canonical(both.view.json) == view)
            #expect(both.timeline == (try TimelineProjection().timeline(of: id, in: replay.state, context: context)))
        }
        return views
    }

    /// Every evidence item's report element at `last`, from the full rules applied to records
    /// 0…last, in the order attached.
    func referenceEvidence(_ ledger: Ledger, through last: UInt64) throws -> [String] {
        let (detail, blobs) = try fullDetail(ledger, through: last)
        return detail.evidence.values.sorted { $0.attachedAt < $1.attachedAt }.map { item in
            var facts: [String] = []
            for claim in item.supports + item.contradicts {
                if let fact = detail.claims[claim]?.fact, !facts.contains(fact) { facts.append(fact) }
            }
            return canonical(EvidenceIndexProjection.entry(item, facts: facts, keys: detail.keys, blobs: blobs).json)
        }
    }

    /// Every evidence item's report element at `last`, read back through the index.
    func indexedEvidence(_ ledger: Ledger, through last: UInt64) throws -> [String] {
        let projection = EvidenceIndexProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replayForQueries(projection, to: .sequence(last), snapshots: .none)
        var out: [String] = []
        try projection.forEachReportElement(replay.state, context: ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)) { out.append(canonical($0)) }
        return out
    }

    /// Every fact's timeline at `last`, from the timeline's rules applied to records 0…last.
    func referenceTimelines(_ ledger: Ledger, through last: UInt64) throws -> [String: [TimelineProjection.Entry]] {
        // The keys as of `last`, which say of each event whether it was valid at its position.
        let keys = try ReplayEngine(withoutSnapshots: ledger).replay(DisputedFactsProjection(), to: .sequence(last), snapshots: .none).state.keys
        var rules = TimelineProjection.Rules(keys: keys, verifiesSignatures: true, verifyingFrom: .max)
        try ledger.forEachRecord(from: 0, to: last + 1) { (stored) throws(LedgerError) -> Bool in
            if case let .apply(record, event) = ReplayDecoding.decode(stored) { rules.apply(record: record, event: event) }
            return true
        }
        return rules.facts
    }

    /// Every fact's timeline at `last`, read back through the index (one fact at a time, and
    /// the projection's report, which must agree).
    func indexedTimelines(_ ledger: Ledger, through last: UInt64) throws -> [String: [TimelineProjection.Entry]] {
        let projection = TimelineProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replayForQueries(projection, to: .sequence(last), snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        var out: [String: [TimelineProjection.Entry]] = [:]
        for fact in try replay.state.factIDs() { out[fact] = try projection.timeline(of: fact, in: replay.state, context: context) }
        var report: [JSONValue] = []
        try projection.forEachReportElement(replay.state, context: context) { report.append($0) }
        #expect(report == (try replay.state.factIDs()).map { JSONValue.object(["fact": .string($0), "events": .array(out[$0]!.map(\.json))]) })
        return out
    }

    @Test("views, timelines and evidence items through the index equal the full rules over every record, at every position", arguments: PropertyTests.seeds)
    func randomLedgers(seed: UInt64) throws {
        print("fact index property test seed \(String(seed, radix: 16))")
        let random = try RandomCase(seed: seed, statements: 90)
        let ledger = try random.ledger.open()
        var (facts, events, items) = (0, 0, 0)
        for last in 0..<ledger.count {
            let expected = try reference(ledger, through: last)
            #expect(try indexed(ledger, through: last) == expected, "seed \(String(seed, radix: 16)) as of \(last)")
            let timelines = try referenceTimelines(ledger, through: last)
            #expect(try indexedTimelines(ledger, through: last) == timelines, "seed \(String(seed, radix: 16)) as of \(last)")
            let evidence = try referenceEvidence(ledger, through: last)
            #expect(try indexedEvidence(ledger, through: last) == evidence, "seed \(String(seed, radix: 16)) as of \(last)")
            facts += expected.count
            events += timelines.values.map(\.count).reduce(0, +)
            items += evidence.count
        }
        // The comparison covered real facts, items and events of every kind, not only empty answers.
        #expect(facts > 100 && events > 500 && items > 100, "seed \(String(seed, radix: 16))")
        let types = Set(try referenceTimelines(ledger, through: ledger.count - 1).values.joined().map(\.type))
        #expect(types.isSuperset(of: ["fact.opened", "claim.asserted", "evidence.attached", "custody.recorded", "attestation.made", "finding.recorded"]), "\(types)")
    }

    @Test("a state readied for queries frees its entry table, answers as before, and is never snapshotted")
    func readiedForQueries() throws {
        let random = try RandomCase(seed: 0x51ed, statements: 90)
        let ledger = try random.ledger.open()
        let projection = DisputedFactsProjection()
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: random.ledger.directory + "/snapshots")
        let replay = try engine.replay(projection, snapshots: .none)
        let readied = try engine.replayForQueries(projection, snapshots: .none)
        #expect(replay.state.entries.count > 50)
        #expect(readied.state.entries.count == 0 && readied.state.entries.collided.isEmpty)
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let before = try projection.facts(in: replay.state, context: context).map { canonical($0.json) }
        #expect(!before.isEmpty)
        #expect(try projection.facts(in: readied.state, context: context).map { canonical($0.json) } == before)
        // A snapshot of it would resume replays that list no attestation of an earlier entry.
        #expect { try engine.writeSnapshot(projection, of: readied) } throws: { ($0 as? LedgerError)?.message.contains("readied for queries") == true }
        #expect(SnapshotFiles(directory: random.ledger.directory + "/snapshots").files(of: projection.snapshotName).isEmpty)
        // The same state, not readied, is.
        _ = try engine.writeSnapshot(projection, of: replay)
        #expect(SnapshotFiles(directory: random.ledger.directory + "/snapshots").files(of: projection.snapshotName).count == 1)
    }

    @Test("replaying onto a state readied for queries stops the program: the attestations of entries it routes would be lost")
    func replayOntoReadied() async {
        await #expect(processExitsWith: .failure) {
            let projection = DisputedFactsProjection(verifiesSignatures: false)
            var state = projection.initialState
            projection.prepareForQueries(&state)
            let event = Event(
                type: "fact.opened", id: "open:f", author: "a", signedAt: Timestamp(seconds: 0),
                body: .factOpened(fact: "f", proposition: "p", subjects: [], tags: []))
            let record = ReplayRecord(
                sequence: 1, entryID: SHA256.hash([UInt8]()), acceptedAt: Timestamp(seconds: 0), envelope: Envelope(payload: [], signatures: []))
            projection.apply(record: record, event: event, to: &state)
        }
    }

    @Test("an attestation of an attestation, of a claim's id and of an evidence item's entry touch the facts the timeline projection says")
    func timelineAttestations() throws {
        let t = try TestLedger()
        try t.openFact("F1")
        try t.openFact("F2")
        try t.assert("C1", fact: "F1", by: "amnesty", "affirms")
        try t.assert("C2", fact: "F2", by: "idemia", "denies")
        // Evidence bearing on F2's claim.
        let shared = try t.attach("E1", supports: ["C2"])
        let first = try t.attest("A1", target: "C2")
        let second = try t.attest("A2", target: first.entryID.hexString)
        let third = try t.attest("A3", target: second.entryID.hexString)
        let ambiguous = try t.attest("A4", target: "C1")
        try t.custody("E1", "copied")
        let onShared = try t.attest("A5", target: shared.entryID.hexString)
        let ledger = try t.open()
        let timelines = try indexedTimelines(ledger, through: ledger.count - 1)
        #expect(timelines == (try referenceTimelines(ledger, through: ledger.count - 1)))
        func sequences(_ fact: String) -> [UInt64] { timelines[fact]?.filter { $0.type == "attestation.made" }.map(\.sequence) ?? [] }
        // A chain of attestations of F2's claim stays on F2; the claim's id goes to F1.
        #expect(sequences("F2") == [first.sequence, second.sequence, third.sequence, onShared.sequence])
        #expect(sequences("F1") == [ambiguous.sequence])
        let projection = TimelineProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, to: .end, snapshots: .none)
        #expect(try projection.timeline(of: "F3", in: replay.state, context: ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)) == nil)
    }

    /// A log of `seed`'s records that break the append rules at random, appended raw: ids used
    /// twice and shared between kinds, claims about facts not opened or opened later, evidence
    /// naming claims asserted later, custody and findings naming unknown items, attestations of
    /// ids, of any entry (keys and attestations among them) and of made-up entry ids sharing an
    /// entry's first bytes, and events of unknown type.
    func ruleBreakingLog(seed: UInt64) throws -> Ledger {
        var random = SplitMix64(seed: seed)
        func pick<T>(_ list: [T]) -> T { list[Int.random(in: 0..<list.count, using: &random)] }
        func chance(_ n: Int) -> Bool { Int.random(in: 0..<n, using: &random) == 0 }
        let t = try TestLedger()
        t.close()
        let facts = ["F1", "F2", "F3"]
        let claims = ["C1", "C2", "C3", "X"]
        let ids = ["C1", "C2", "X", "E1", "E2", "F1"]
        let opened = try t.open()
        var entries = try (0..<opened.count).map { try opened.entryID(at: $0).hexString }
        for _ in 0..<(20 + Int(seed % 40)) {
            let (type, fields): (String, [String: JSONValue]) = switch Int.random(in: 0..<100, using: &random) {
            case 0..<12: ("fact.opened", ["fact": .string(pick(facts)), "proposition": "p"])
            case 12..<27: ("claim.asserted", ["claim": .string(pick(claims)), "fact": .string(pick(facts)), "stance": .string(pick(["affirms", "denies"])), "statement": "s"])
            case 27..<35:
                ("claim.countered", ["claim": .string(pick(claims)), "counters": .string(pick(claims)), "fact": .string(pick(facts)), "stance": "affirms", "statement": "s"])
            case 35..<40: ("claim.amended", ["claim": .string(pick(claims)), "statement": "t"])
            case 40..<43: ("claim.retracted", ["claim": .string(pick(claims)), "reason": "r"])
            case 43..<55:
                ("evidence.attached", [
                    "evidence": .string(pick(ids)), "sha256": .string(SHA256.hash([1]).hexString), "size": 1, "media_type": "text/plain", "title": "t",
                    "supports": .array(claims.filter { _ in chance(3) }.map(JSONValue.string)), "contradicts": .array(claims.filter { _ in chance(5) }.map(JSONValue.string)),
                ])
            case 55..<63: ("custody.recorded", ["evidence": .string(pick(ids)), "action": "copied"])
            case 63..<88:
                ("attestation.made", [
                    "attestation": .string("A\(Int.random(in: 0..<5, using: &random))"), "kind": "reviewed",
                    "target": .string(chance(4) ? pick(ids) : chance(3) ? String(pick(entries).prefix(16)) + String(repeating: "a", count: 48) : pick(entries)),
                ])
            case 88..<96:
                ("finding.recorded", ["finding": "FD", "fact": .string(pick(facts)), "outcome": "inconclusive", "rationale": "r", "relies_on": .array(ids.filter { _ in chance(3) }.map(JSONValue.string))])
            default: ("thing.unknown", ["x": 1])
            }
            // Mostly the investigator; the subject and the reviewer too, whose roles may not sign
            // some types (and who are not the authors of the investigator's claims).
            entries.append(try t.appendRaw(pick(["amnesty", "amnesty", "idemia", "reviewer"]), type, fields).entryID)
        }
        return try t.open()
    }

    @Test("views, timelines and evidence items through the index equal the full rules on random logs that break the append rules", arguments: Array(UInt64(1)...24))
    func randomRuleBreakers(seed: UInt64) throws {
        let ledger = try ruleBreakingLog(seed: seed)
        for last in 0..<ledger.count {
            #expect(try indexed(ledger, through: last) == (try reference(ledger, through: last)), "seed \(seed) as of \(last)")
            #expect(try indexedTimelines(ledger, through: last) == (try referenceTimelines(ledger, through: last)), "seed \(seed) as of \(last)")
            #expect(try indexedEvidence(ledger, through: last) == (try referenceEvidence(ledger, through: last)), "seed \(seed) as of \(last)")
        }
    }

    @Test("a claim about a fact opened only later, and an evidence id attached twice, route nothing to a timeline")
    func timelineIDRules() throws {
        let t = try TestLedger()
        try t.openFact("F1")
        try t.assert("C1", fact: "F1", by: "amnesty", "affirms")
        t.close()
        func raw(_ type: String, _ fields: [String: JSONValue]) throws { try t.appendRaw("amnesty", type, fields) }
        try raw("claim.asserted", ["claim": "C-early", "fact": "F9", "stance": "affirms", "statement": "early"])
        try raw("fact.opened", ["fact": "F9", "proposition": "p"])
        try raw("claim.amended", ["claim": "C-early", "statement": "changed"])
        let blob: [String: JSONValue] = ["sha256": .string(SHA256.hash([1]).hexString), "size": 1, "media_type": "text/plain", "title": "t"]
        try raw("evidence.attached", blob.merging(["evidence": "E1", "supports": []]) { $1 })
        try raw("evidence.attached", blob.merging(["evidence": "E1", "supports": ["C1"]]) { $1 })
        try raw("custody.recorded", ["evidence": "E1", "action": "copied"])
        let ledger = try t.open()
        for last in 0..<ledger.count {
            #expect(try indexedTimelines(ledger, through: last) == (try referenceTimelines(ledger, through: last)), "as of \(last)")
        }
        let timelines = try referenceTimelines(ledger, through: ledger.count - 1)
        #expect(timelines["F9"]?.map(\.type) == ["fact.opened"])
        #expect(!(timelines["F1"] ?? []).contains { $0.type == "custody.recorded" || $0.type == "evidence.attached" })
    }

    @Test("records the append rules refuse still give the full rules' answer")
    func ruleBreakers() throws {
        let t = try TestLedger()
        try t.openFact("F1")
        try t.openFact("F2")
        try t.assert("C1", fact: "F1", by: "idemia", "denies")
        t.close()
        // Evidence naming a claim that is asserted only later, in another fact; then its custody.
        try t.appendRaw("amnesty", "evidence.attached", [
            "evidence": "E-early", "sha256": .string(SHA256.hash([1]).hexString), "size": 1, "media_type": "text/plain", "title": "early",
            "supports": ["C-later"], "contradicts": ["C1"],
        ])
        try t.appendRaw("amnesty", "claim.asserted", ["claim": "C-later", "fact": "F2", "stance": "affirms", "statement": "later"])
        let custody = try t.appendRaw("amnesty", "custody.recorded", ["evidence": "E-early", "action": "copied"]).sequence
        // A counterclaim about another fact than the claim it counters.
        try t.appendRaw("amnesty", "claim.countered", ["claim": "C-x", "counters": "C1", "fact": "F2", "stance": "affirms", "statement": "x"])
        // An amendment by another author, a retraction, an amendment after it, and an
        // attestation of that ignored amendment's entry.
        try t.appendRaw("axis", "claim.amended", ["claim": "C1", "statement": "changed by axis"])
        try t.appendRaw("idemia", "claim.retracted", ["claim": "C1", "reason": "gone"])
        let ignored = try t.appendRaw("idemia", "claim.amended", ["claim": "C1", "statement": "after the retraction"]).entryID
        try t.appendRaw("reviewer", "attestation.made", ["attestation": "A-1", "target": .string(ignored), "kind": "reviewed"])
        try t.appendRaw("reviewer", "attestation.made", ["attestation": "A-2", "target": .string(String(repeating: "0", count: 64)), "kind": "reviewed"])
        try t.appendRaw("reviewer", "attestation.made", ["attestation": "A-3", "target": "C-later", "kind": "reviewed"])
        // Ids used twice.
        try t.appendRaw("amnesty", "fact.opened", ["fact": "F1", "proposition": "a second opening"])
        try t.appendRaw("amnesty", "claim.asserted", ["claim": "C1", "fact": "F2", "stance": "affirms", "statement": "reused id"])
        try t.appendRaw("reviewer", "finding.recorded", ["finding": "FD", "fact": "F1", "outcome": "inconclusive", "rationale": "r", "relies_on": ["E-early", "E-none"]])
        try appendBadSignatures(t, fact: "F2")
        let ledger = try t.open()
        for last in 0..<ledger.count {
            #expect(try indexed(ledger, through: last) == (try reference(ledger, through: last)), "as of \(last)")
            #expect(try indexedTimelines(ledger, through: last) == (try referenceTimelines(ledger, through: last)), "as of \(last)")
            #expect(try indexedEvidence(ledger, through: last) == (try referenceEvidence(ledger, through: last)), "as of \(last)")
        }
        let integrity = try #require(try t.facts(blobs: false)["F2"]).integrity
        #expect(integrity.contains { $0.hasPrefix("bad-signature:") } && integrity.contains { $0.hasPrefix("key-invalid:") }, "\(integrity)")
        // The custody step reached F2 only through the claim asserted after the evidence.
        #expect(try t.facts(to: .sequence(custody), blobs: false)["F2"]?.fact.lastChange == custody)
        try expectSameFromEverySnapshot(ledger)
    }

    /// Appends, bypassing the append rules, a claim about `fact` whose signature is damaged
    /// (C-damaged), one signed by a key registered only after it (C-early), and that key.
    func appendBadSignatures(_ t: TestLedger, fact: String) throws {
        var damaged = try t.envelope("amnesty", "claim.asserted", ["claim": "C-damaged", "fact": .string(fact), "stance": "denies", "statement": "d"])
        damaged.signatures[0].signature[5] ^= 1
        let late = try TestLedger.key(9)
        try t.appendRaw([
            damaged,
            try t.envelope("amnesty", "claim.asserted", ["claim": "C-early", "fact": .string(fact), "stance": "affirms", "statement": "e"], signer: late),
            try t.envelope("admin", "key.added", ["party": "amnesty", "key": TestLedger.base64(late)]),
        ])
    }

    /// Resuming from a snapshot at any position gives the state of a replay from genesis, and
    /// the views of the full rules.
    func expectSameFromEverySnapshot(_ ledger: Ledger, at points: [UInt64]? = nil) throws {
        let projection = DisputedFactsProjection()
        let genesis = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none).state
        let expected = try reference(ledger, through: ledger.count - 1)
        let directory = TestLedger.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var engine = ReplayEngine(ledger: ledger, snapshotDirectory: directory)
        engine.retainedSnapshots = 1
        for k in points ?? Array(0..<(ledger.count - 1)) {
            try engine.writeSnapshot(projection, of: engine.replay(projection, to: .sequence(k), snapshots: .none))
            let resumed = try engine.replay(projection, snapshots: .read)
            #expect(resumed.info.resumedFrom == k)
            #expect(resumed.state == genesis, "resumed from \(k)")
            let context = ReportContext(ledger: ledger, blobs: nil, position: resumed.info.position)
            #expect(try projection.facts(in: resumed.state, context: context).map { canonical($0.json) } == expected, "resumed from \(k)")
        }
    }

    @Test("signatures failing in a batch verified mid-replay, and one by a key registered later, read the same from genesis and from any snapshot")
    func batches() throws {
        let t = try TestLedger()
        try t.openFact("F")
        t.close()
        try appendBadSignatures(t, fact: "F")
        // Past one batch, with another failure in the second.
        try t.appendRaw((0..<(DisputedFactsProjection.PendingSignatures.batch + 20)).map { i in
            try t.envelope("amnesty", "fact.opened", ["fact": .string("F-\(i)"), "proposition": "p"])
        })
        var second = try t.envelope("amnesty", "claim.amended", ["claim": "C-early", "statement": "changed"])
        second.signatures[0].signature[0] ^= 1
        try t.appendRaw(second)
        let ledger = try t.open()
        let fact = try #require(try t.facts(blobs: false)["F"])
        #expect(Set(fact.integrity.filter { $0.hasPrefix("bad-signature:") || $0.hasPrefix("key-invalid:") }).count == 3, "\(fact.integrity)")
        let count = ledger.count
        try expectSameFromEverySnapshot(ledger, at: [0, 4, 5, 6, 7, 500, 1028, 1029, 1030, count - 3, count - 2])
    }

    @Test("facts are read on every core from the log the replay read, even if another was moved into its place since")
    func replacedLog() throws {
        func build(_ tag: String) throws -> TestLedger {
            let t = try TestLedger()
            for i in 0..<(DisputedFactsProjection.factsPerTask * 3) { try t.openFact("F-\(i)", proposition: "\(tag) \(i)") }
            return t
        }
        let a = try build("A")
        let b = try build("B")
        let ledger = try a.open()
        let projection = DisputedFactsProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        for name in ["log", "index"] { #expect(rename(b.directory + "/" + name, a.directory + "/" + name) == 0) }
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let propositions = try projection.facts(in: replay.state, context: context).map(\.fact.proposition)
        #expect(propositions == (0..<(DisputedFactsProjection.factsPerTask * 3)).map { "A \($0)" })
    }

    @Test("entry ids sharing their first eight bytes are told apart")
    func entryTable() throws {
        func digest(_ tail: UInt8, prefix: UInt8 = 7) throws -> Digest {
            try Digest(rawRepresentation: [UInt8](repeating: prefix, count: 8) + [UInt8](repeating: tail, count: 24))
        }
        var table = EntryTable(hasher: .random())
        table.insert(try digest(1), 10)
        table.insert(try digest(2), 20)
        table.insert(try digest(3, prefix: 8), 30)
        let (one, two, three) = (try digest(1), try digest(2), try digest(3, prefix: 8))
        #expect(try table.node(for: one) == 10 && table.node(for: two) == 20 && table.node(for: three) == 30)
        #expect(table.collided.count == 1)
        // An id never inserted answers at most another's node, which the full rules then ignore.
        let absent = try digest(9, prefix: 1)
        #expect(try table.node(for: absent) == nil)
        let sharingAPrefix = try digest(9)
        #expect(try table.node(for: sharingAPrefix) == 10)
    }

    @Test("the id and entry tables answer as dictionaries do, through growth and a snapshot's round trip")
    func tablesAgainstDictionaries() throws {
        var random = SplitMix64(seed: 11)
        for round in 0..<4 {
            let hasher = IDHasher.random()
            var names = NodeNames()
            var table = NameTable()
            var entries = EntryTable(hasher: hasher)
            var byName: [String: Int32] = [:]
            var byEntry: [Digest: Int32] = [:]
            // Short ids, some sharing long prefixes, and entry ids some of which share a first word.
            for node in Int32(0)..<Int32(3000 * (round + 1)) {
                let id = random.next() % 3 == 0 ? "claim-\(node)" : String(repeating: "x", count: Int(random.next() % 40)) + "-\(node)"
                table.insert(hasher.hash(id), node)
                names.append(id)
                byName[id] = node
                let word = random.next() % 8 == 0 ? UInt64(node / 2) : random.next()
                let entry = try Digest(rawRepresentation: withUnsafeBytes(of: word.bigEndian) { Array($0) } + (0..<24).map { _ in UInt8(truncatingIfNeeded: random.next()) })
                entries.insert(entry, node)
                byEntry[entry] = node
            }
            let stored = try #require(NameTable(stored: table.slots, count: table.count))
            let storedEntries = try #require(EntryTable(hasher: hasher, words: entries.words, nodes: entries.nodes, count: entries.count, collided: entries.collided))
            for candidate in [table, stored] {
                #expect(candidate.count == byName.count)
                for (id, node) in byName {
                    var utf8 = id
                    let found = try utf8.withUTF8 { bytes in try candidate.find(hasher.hash(id)) { names.hasName($0, UnsafeRawBufferPointer(bytes)) } }
                    #expect(found == node, "\(id)")
                }
                var absent = "absent"
                #expect(try absent.withUTF8 { bytes in try candidate.find(hasher.hash("absent")) { names.hasName($0, UnsafeRawBufferPointer(bytes)) } } == nil)
            }
            for candidate in [entries, storedEntries] {
                for (entry, node) in byEntry { #expect(try candidate.node(for: entry) == node) }
            }
        }
    }

    @Test("stored tables of any contents answer: full ones end their probes, and grow when added to")
    func storedTables() throws {
        let occupied: UInt64 = 1 << 32 | 1
        #expect(NameTable(stored: Column(repeating: 0, count: 12), count: 0) == nil, "not a power of two")
        #expect(NameTable(stored: Column(repeating: 0, count: 16), count: 17) == nil, "more than it has room for")
        // Every slot taken, though the count says one: a lookup of anything else ends, and an
        // insertion grows the table instead of probing forever.
        var full = try #require(NameTable(stored: Column(repeating: occupied, count: 16), count: 1))
        #expect(throws: TableExhausted.self) { try full.find(5 << 32) { _ in true } }
        full.insert(5 << 32, 1)
        #expect(full.slots.count == 32)
        #expect(try full.find(5 << 32) { $0 == 1 } == 1)
        let hasher = IDHasher.random()
        var entries = try #require(EntryTable(hasher: hasher, words: Column(repeating: 7, count: 16), nodes: Column(repeating: 0, count: 16), count: 0, collided: [:]))
        let id = try Digest(rawRepresentation: [UInt8](repeating: 3, count: 32))
        #expect(throws: TableExhausted.self, "every slot taken, none by the id") { try entries.node(for: id) }
        entries.insert(id, 2)
        #expect(try entries.node(for: id) == 2)
        #expect(EntryTable(hasher: hasher, words: Column(repeating: 0, count: 16), nodes: Column(repeating: -1, count: 32), count: 0, collided: [:]) == nil)
    }

    @Test("a snapshot whose index points outside itself or in circles, with valid checksums, is never followed there: it is noted as damaged and not answered")
    func forgedIndex() throws {
        let random = try RandomCase(seed: 7, statements: 40)
        let ledger = try random.ledger.open()
        let projection = DisputedFactsProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let state = replay.state
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let expected = try projection.facts(in: state, context: context).map { canonical($0.json) }
        let decoded = try SnapshotBinary.decode(DisputedFactsProjection.State.self, from: SnapshotBinary.encode(state))
        #expect(decoded == state)
        #expect(try projection.facts(in: decoded, context: context).map { canonical($0.json) } == expected)
        let firstClaim = try #require(state.parent.firstIndex { $0 >= 0 })
        let forgeries: [(String, (inout DisputedFactsProjection.State) -> Void)] = [
            ("a link leading back to itself", { $0.linkNext[0] = 0 }),
            ("a list leading back to its start", { $0.linkNext[Int($0.tail[Int($0.factOrder[0])])] = $0.head[Int($0.factOrder[0])] }),
            ("a link past the links", { $0.linkNext[0] = Int32($0.linkNext.count) }),
            ("a head past the links", { $0.head[0] = Int32($0.linkValue.count) }),
            ("a node without its first record", { $0.head[0] = -1 }),
            ("a link to a node that does not exist", { $0.linkValue[Int($0.tail[0])] = DisputedFactsProjection.Link(.claim, UInt64($0.parent.count)).value }),
            ("a link to a node past any number", { $0.linkValue[Int($0.tail[0])] = DisputedFactsProjection.Link(.claim, 1 << 40).value }),
            ("a fact's name past the names' bytes", { $0.names.ends[0] = UInt64($0.names.bytes.count + 1) }),
            ("a fact order naming a node that does not exist", { $0.factOrder[0] = Int32($0.parent.count) }),
            ("a counterclaim of a claim without a fact", { state in
                let counterclaim = Int32(state.parent.count - 1)
                state.parent[Int(counterclaim)] = -1
                state.link(Int32(firstClaim), DisputedFactsProjection.Link(.counterclaim, UInt64(counterclaim)))
            }),
            ("a record past the log's end", { $0.link($0.factOrder[0], .record(1 << 40)) }),
            ("a claim's list running into its fact's", { $0.head[firstClaim] = $0.head[Int($0.parent[firstClaim])] }),
            ("a claim's list running into its fact's, ending at the fact's tail", { state in
                let fact = Int(state.parent[firstClaim])
                state.linkNext[Int(state.tail[firstClaim])] = state.tail[fact]
                state.tail[firstClaim] = state.tail[fact]
            }),
            ("a fact order naming a claim", { $0.factOrder[0] = Int32(firstClaim) }),
        ]
        for (what, forge) in forgeries {
            var forged = state
            forge(&forged)
            let read = try SnapshotBinary.decode(DisputedFactsProjection.State.self, from: SnapshotBinary.encode(forged))
            let refused = #expect(throws: LedgerError.self, "\(what)") { try projection.facts(in: read, context: context) }
            #expect(refused?.code == .io && refused?.message.contains("is damaged (its index is inconsistent:") == true, "\(what): \(refused?.message ?? "")")
        }
        // A table whose slots name nodes past the last number, or that has no free slot: a
        // lookup ends, and notes the damage.
        let id = try #require(state.factIDs().first)
        let tag = (state.hasher.hash(id) >> 32) << 32
        for slot in [tag | 0x8000_0000, tag | 0xFFFF_FFFF, tag] {
            var forged = state
            forged.facts = try #require(NameTable(stored: Column(repeating: slot, count: 16), count: 1))
            let read = try SnapshotBinary.decode(DisputedFactsProjection.State.self, from: SnapshotBinary.encode(forged))
            let refused = #expect(throws: LedgerError.self, "slot \(slot)") { try projection.fact(id, in: read, context: context) }
            #expect(refused?.message.contains("has no free slot") == true, "\(refused?.message ?? "")")
        }
        // Columns of different lengths are refused when read.
        var forged = state
        forged.tail = Column(forged.tail.elements.dropLast())
        #expect(throws: DecodingError.self) { try SnapshotBinary.decode(DisputedFactsProjection.State.self, from: SnapshotBinary.encode(forged)) }
    }
}

@Suite("Snapshot files written and read a piece at a time")
struct SnapshotFileTests {
    struct Big: Codable, Equatable {
        var name: String
        var numbers: Column<UInt64>
        var parts: [Part]
        var after: [String: Int]
    }

    struct Part: Codable, Equatable {
        var label: String
        var bytes: Column<UInt8>
    }

    static func big(seed: UInt64) -> Big {
        var random = SplitMix64(seed: seed)
        // Six parts of 1.5 MB: the writer flushes inside the array, so the array's and the
        // root's lengths are filled in after their placeholders went to the file.
        return Big(
            name: "state", numbers: Column((0..<(20 << 17)).map { _ in random.next() }),
            parts: (0..<6).map { Part(label: "part \($0)", bytes: Column((0..<(3 << 19)).map { _ in UInt8(truncatingIfNeeded: random.next()) })) },
            after: ["a": 1, "b": 2])
    }

    @Test("a snapshot of 29 MB written to a file a megabyte at a time is byte for byte the one built in memory, and reads back a block at a time: a block changed on disk is noted when read, and read as zeros")
    func roundTrip() throws {
        let value = Self.big(seed: 17)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("snapshot-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let bytes = try SnapshotBinary.encode(value)
        let written = try FileDescriptor(path: path, flags: O_RDWR | O_CREAT | O_TRUNC)
        try SnapshotBinary.encode(value, to: written)
        #expect(try Array(Data(contentsOf: URL(fileURLWithPath: path))) == bytes)

        let (read, source) = try SnapshotBinary.decode(Big.self, fromFile: path)
        #expect(read.numbers[5] == value.numbers[5])
        // Change a byte of the last block of the first column, and of the first block of the
        // second: the first column's blocks are read when used, the second's was never.
        let dataStart = bytes.count - (20 << 20) - 6 * (3 << 19)
        let changed = try FileDescriptor(path: path, flags: O_RDWR)
        for offset in [dataStart + (20 << 20) - 1, dataStart + (20 << 20)] {
            try changed.write([bytes[offset] ^ 1], at: UInt64(offset))
        }
        #expect(source.damage == nil)
        #expect(read.parts[1..<6] == value.parts[1..<6])
        #expect(source.damage == nil)
        #expect(read.numbers.last == 0, "a block that does not match its checksum reads as zeros")
        #expect(source.damage?.contains("do not match their checksum") == true)
        #expect(!FileManager.default.fileExists(atPath: path) && source.removed, "a damaged snapshot file is removed")
        #expect(read.parts[0].bytes[0] == 0)
        #expect(read.numbers[5] == value.numbers[5], "a block read before the change stays as read")
        // Read whole, the column is the blocks read so far and the rest read a run at a time.
        var numbers = value.numbers.elements
        let perBlock = Column<UInt64>.blockBytes / 8
        for i in (numbers.count - 1) / perBlock * perBlock..<numbers.count { numbers[i] = 0 }
        #expect(read.numbers.elements == numbers)

        // In the tree, a change is refused at once.
        var tree = bytes
        tree[40] ^= 1
        #expect(throws: DecodingError.self) { try SnapshotBinary.decode(Big.self, from: tree) }
        #expect(throws: DecodingError.self, "cut inside the tree") { try SnapshotBinary.decode(Big.self, from: Array(bytes[..<30])) }
        try SnapshotBinary.encode(value, to: FileDescriptor(path: path, flags: O_RDWR | O_CREAT | O_TRUNC))
        #expect(try SnapshotBinary.decode(Big.self, fromFile: path).value.name == "state")
        #expect(throws: DecodingError.self, "over the limit") { try SnapshotBinary.decode(Big.self, fromFile: path, limit: 10) }
        // Cut inside the columns: the tree reads, a column past the end does not.
        #expect(throws: DecodingError.self) { try SnapshotBinary.decode(Big.self, from: Array(bytes.dropLast(1))) }
    }
}

extension IDHasher {
    /// The hash of an id's UTF-8 bytes, as the tables place it.
    func hash(_ id: String) -> UInt64 {
        var id = id
        return id.withUTF8 { hash(UnsafeRawBufferPointer($0)) }
    }
}
