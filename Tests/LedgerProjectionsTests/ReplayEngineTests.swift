import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore
import Testing

/// A projection defined outside the module: counts records by event type. Registering it
/// needs no change to the engine.
struct TypeCountProjection: Projection {
    var version: Int = 1
    var name: String { "type-count" }
    var initialState: [String: Int] { [:] }

    func apply(record: ReplayRecord, event: Event, to state: inout [String: Int]) {
        state[event.type, default: 0] += 1
    }
}

@Suite("Replay engine")
struct ReplayEngineTests {
    func sample() throws -> TestLedger {
        let t = try TestLedger()
        try t.openFact("F")
        try t.assert("C-1", fact: "F", by: "idemia", "denies")
        try t.counter("C-2", counters: "C-1", fact: "F", by: "amnesty", "affirms")
        try t.attach("E-1", supports: ["C-2"], contradicts: ["C-1"])
        return t
    }

    @Test("a record of an unknown event type is reported by name and skipped; replay goes on")
    func unknownType() throws {
        let t = try sample()
        t.close()
        let forged = try t.envelope("amnesty", "claim.endorsed", ["claim": .string("C-2")])
        try t.appendRaw(forged)
        let retraction = try t.envelope("idemia", "claim.retracted", ["claim": .string("C-1"), "reason": .string("withdrawn")])
        try t.appendRaw(retraction)
        let ledger = try t.open()
        #expect(ledger.count == 11)
        let projection = DisputedFactsProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        #expect(replay.info.skipped.map(\.type) == ["claim.endorsed"])
        #expect(replay.info.skipped.map(\.sequence) == [9])
        #expect(replay.info.skipped[0].reason.contains("\"claim.endorsed\" is not known"))
        #expect(replay.info.skippedCount == 1)
        // The record after it was applied.
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        #expect(try projection.facts(in: replay.state, context: context).flatMap(\.retractedClaims).map(\.claim.retractedAt) == [10])
        for p in ProjectionRegistry.builtIn.projections {
            let answer = try p.answer(using: ReplayEngine(withoutSnapshots: ledger), snapshots: .none, blobs: nil)
            #expect(answer.info.skipped.map(\.type) == ["claim.endorsed"], "\(p.name)")
        }
    }

    @Test("a record whose event does not decode is reported and skipped")
    func undecodableEvent() throws {
        let t = try sample()
        t.close()
        var json = JSONWriter()
        json.value(.object(["v": .integer(2), "type": .string("claim.asserted"), "id": .string("x"), "author": .string("amnesty"), "signed_at": .string("2020-09-22T00:00:00Z")]))
        var envelope = Envelope(payload: json.bytes, signatures: [])
        try envelope.sign(with: try TestLedger.key(2))
        try t.appendRaw(envelope)
        let replay = try ReplayEngine(withoutSnapshots: try t.open()).replay(DisputedFactsProjection(), snapshots: .none)
        #expect(replay.info.skipped.count == 1)
        #expect(replay.info.skipped[0].type == nil)
        #expect(replay.info.skipped[0].reason.contains("malformed-event"))
    }

    @Test("as of a sequence number includes that record; as of a time includes records accepted then")
    func asOf() throws {
        let t = try sample()
        let ledger = try t.open()
        let engine = ReplayEngine(withoutSnapshots: ledger)
        #expect(try engine.lastSequence(for: .sequence(6)) == 6)
        #expect(try engine.lastSequence(for: .sequence(999)) == 8)
        #expect(try engine.lastSequence(for: .end) == 8)
        for n in UInt64(0)...8 {
            let at = t.acceptedAt(n)
            #expect(try engine.lastSequence(for: .acceptedAt(at)) == n)
            #expect(try engine.lastSequence(for: .acceptedAt(Timestamp(seconds: at.seconds + 30))) == n)
        }
        #expect(try engine.lastSequence(for: .acceptedAt(Timestamp(seconds: t.acceptedAt(0).seconds - 1))) == nil)
        let before = try engine.replay(DisputedFactsProjection(), to: .acceptedAt(Timestamp(seconds: 0)), snapshots: .none)
        #expect(before.state == DisputedFactsProjection().initialState)
        #expect(before.info.position.sequence == nil)
        // Before the counterclaim the fact is uncontested; after it, disputed.
        let counter = try t.facts(to: .sequence(6))
        #expect(counter["F"]?.disputeStatus == .uncontested)
        #expect(try t.facts(to: .acceptedAt(t.acceptedAt(7)))["F"]?.disputeStatus == .disputed)
    }

    @Test("snapshots are used, and a snapshot whose entry id no longer matches the log is ignored")
    func snapshotEntryMismatch() throws {
        let a = try sample()
        let b = try TestLedger()
        try b.openFact("G")
        try b.assert("C-9", fact: "G", by: "axis", "affirms")
        try b.assert("C-8", fact: "G", by: "axis", "affirms")
        try b.assert("C-7", fact: "G", by: "axis", "affirms")
        let projection = DisputedFactsProjection()
        let engineA = ReplayEngine(ledger: try a.open())
        let written = try #require(try projection.writeSnapshot(using: engineA))
        #expect(written.hasSuffix("/snapshots/disputed-facts-v\(projection.version)-00000000000000000008.snapshot"))
        let resumed = try engineA.replay(projection, snapshots: .read)
        #expect(resumed.info.resumedFrom == 8)
        #expect(resumed.info.recordsRead == 0)
        // Put A's snapshot into B, whose entry 8 differs.
        try FileManager.default.createDirectory(atPath: b.directory + "/snapshots", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: written, toPath: b.directory + "/snapshots/disputed-facts-v\(projection.version)-00000000000000000008.snapshot")
        let engineB = ReplayEngine(ledger: try b.open())
        let replay = try engineB.replay(projection, snapshots: .read)
        #expect(replay.info.resumedFrom == nil)
        #expect(replay.info.notes.contains { $0.contains("is not the one it was taken at") })
        #expect(replay.state == (try ReplayEngine(withoutSnapshots: try b.open()).replay(projection, snapshots: .none)).state)
        #expect(try replay.state.factIDs().contains("G") && !replay.state.factIDs().contains("F"))
    }

    @Test("the timeline and evidence-index projections share the unverified disputed-facts index's snapshots, and answer from them as from genesis; the verified index's are its own")
    func sharedIndexSnapshots() throws {
        let t = try sample()
        try t.assert("C-3", fact: "F", by: "idemia", "denies")
        let ledger = try t.open()
        let engine = ReplayEngine(ledger: ledger)
        let index = DisputedFactsProjection(verifiesSignatures: false)
        let timeline = TimelineProjection()
        let evidence = EvidenceIndexProjection()
        #expect(timeline.snapshotName == index.snapshotName && evidence.snapshotName == index.snapshotName)
        #expect(timeline.snapshotVersion == index.version && evidence.snapshotVersion == index.version)
        #expect(DisputedFactsProjection().snapshotName != index.snapshotName)
        func report<P: Projection>(_ projection: P, _ replay: Replay<P.State>) throws -> String {
            canonical(try projection.wholeReport(replay.state, context: ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)))
        }
        // Each replays the very state the index does.
        let indexFromGenesis = try engine.replay(index, snapshots: .none)
        let timelineReplay = try engine.replay(timeline, snapshots: .none)
        let evidenceReplay = try engine.replay(evidence, snapshots: .none)
        #expect(timelineReplay.state == indexFromGenesis.state && evidenceReplay.state == indexFromGenesis.state)
        let timelineFromGenesis = try report(timeline, timelineReplay)
        let evidenceFromGenesis = try report(evidence, evidenceReplay)
        // A snapshot the index wrote halfway is the one the other two resume from.
        let written = try engine.writeSnapshot(index, of: try engine.replay(index, to: .sequence(ledger.count / 2), snapshots: .none))
        let half = String(ledger.count / 2)
        #expect(written.hasSuffix("/disputed-facts+unverified-signatures-v\(index.version)-" + String(repeating: "0", count: 20 - half.count) + half + ".snapshot"))
        let fromTimeline = try engine.replay(timeline, snapshots: .read)
        let fromEvidence = try engine.replay(evidence, snapshots: .read)
        #expect(fromTimeline.info.resumedFrom == ledger.count / 2 && fromEvidence.info.resumedFrom == ledger.count / 2)
        #expect(try report(timeline, fromTimeline) == timelineFromGenesis)
        #expect(try report(evidence, fromEvidence) == evidenceFromGenesis)
        // The verified index does not resume from it: its state also holds signature failures.
        #expect(try engine.replay(DisputedFactsProjection(), snapshots: .read).info.resumedFrom == nil)
        // Snapshots the timeline and evidence index filed under their own names are removed when
        // they replay, even read only; one the timeline writes is the index's too.
        for retired in ["timeline-v3", "evidence-index-v2"] {
            #expect(FileManager.default.createFile(atPath: t.directory + "/snapshots/\(retired)-00000000000000000004.snapshot", contents: Data("x".utf8)))
        }
        _ = try engine.replay(timeline, snapshots: .read)
        _ = try engine.replay(evidence, snapshots: .read)
        #expect(try FileManager.default.contentsOfDirectory(atPath: t.directory + "/snapshots").count == 1)
        _ = try timeline.writeSnapshot(using: engine)
        #expect(try engine.replay(index, snapshots: .read).info.resumedFrom == ledger.count - 1)
        let names = try FileManager.default.contentsOfDirectory(atPath: t.directory + "/snapshots")
        #expect(names.allSatisfy { $0.hasPrefix(index.snapshotName + "-v") }, "\(names)")
    }

    @Test("key events the append rules would refuse change no key table, trusted signatures or not: statements of a forged key show key-invalid, and the parties list no forged key")
    func forgedKeyEvents() throws {
        let t = try sample()
        t.close()
        let forger = try TestLedger.key(90)
        let forgerID = SHA256.hash(forger.publicKey.rawRepresentation).hexString
        // Amnesty's key added for amnesty: signed by the new key itself; by amnesty's own key
        // with the signature spoiled; and by idemia, which is no admin, for amnesty.
        let selfSigned = try t.envelope("amnesty", "key.added", id: "k-self", ["party": "amnesty", "key": TestLedger.base64(forger)], signer: forger)
        var spoiled = try t.envelope("amnesty", "key.added", id: "k-spoiled", ["party": "amnesty", "key": TestLedger.base64(forger)])
        spoiled.signatures[0].signature[7] ^= 1
        let byOther = try t.envelope("idemia", "key.added", id: "k-other", ["party": "amnesty", "key": TestLedger.base64(forger)])
        let registration = try t.envelope("idemia", "party.registered", id: "reg-x", ["party": "x", "name": "X", "role": "admin", "keys": [TestLedger.base64(forger)]])
        // Validly signed by their authors, but not theirs to make: amnesty revoking the admin's
        // key (so that the admin could add no more), and amnesty adding a key for no party.
        let adminKey = try TestLedger.key(1)
        let revokesAdmin = try t.envelope("amnesty", "key.revoked", id: "k-rev-admin", ["party": "amnesty", "key": TestLedger.base64(adminKey)])
        let forNoParty = try t.envelope("amnesty", "key.added", id: "k-nobody", ["party": "nobody", "key": TestLedger.base64(forger)])
        for forged in [selfSigned, spoiled, byOther, registration, forNoParty] {
            let u = try sample()
            u.close()
            try u.appendRaw(forged)
            let claim = try u.envelope("amnesty", "claim.asserted", id: "C-9", ["claim": "C-9", "fact": "F", "stance": "affirms", "statement": "Forged."], signer: forger)
            try u.appendRaw(claim)
            let ledger = try u.open()
            for verifies in [true, false] {
                let projection = DisputedFactsProjection(verifiesSignatures: verifies)
                let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
                #expect(replay.state.keys.keys[forgerID] == nil, "\(forged) verifies \(verifies)")
                let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
                let fact = try #require(try projection.facts(in: replay.state, context: context).first)
                #expect(fact.integrity.contains("key-invalid:C-9"), "verifies \(verifies): \(fact.integrity)")
            }
            let parties = try ReplayEngine(withoutSnapshots: ledger).replay(PartiesProjection(), snapshots: .none).state
            #expect(parties.parties["x"] == nil && parties.parties["amnesty"]?.keys.contains { $0.keyID == forgerID } == false)
        }
        let u = try sample()
        u.close()
        try u.appendRaw(revokesAdmin)
        let replay = try ReplayEngine(withoutSnapshots: try u.open()).replay(DisputedFactsProjection(), snapshots: .none)
        // The key must still be there: a missing key would make `?.revokedAt == nil` hold too.
        let admin = try #require(replay.state.keys.keys[SHA256.hash(adminKey.publicKey.rawRepresentation).hexString])
        #expect(admin.revokedAt == nil)
    }

    @Test("a signature that does not verify is reported unless the registry is built to trust signatures")
    func forgedSignatureAndTrust() throws {
        let t = try sample()
        t.close()
        // A valid statement by amnesty whose signature is then damaged: only re-verification sees it.
        var forged = try t.envelope("amnesty", "claim.amended", ["claim": .string("C-2"), "statement": .string("changed")])
        forged.signatures[0].signature[5] ^= 0x01
        try t.appendRaw(forged)
        let ledger = try t.open()
        for verifies in [true, false] {
            let registry = ProjectionRegistry.builtIn(verifiesSignatures: verifies)
            let answer = try #require(registry.projection(named: "disputed-facts")).answer(
                using: ReplayEngine(withoutSnapshots: ledger), snapshots: .none, blobs: nil)
            var json = JSONWriter()
            json.value(try answer.report())
            let text = String(decoding: json.bytes, as: UTF8.self)
            #expect(text.contains("bad-signature:") == verifies, "verifies \(verifies): \(text.prefix(400))")
        }
    }

    @Test("a snapshot with any bit flipped is refused by its checksums, or found damaged where read and never answered from: the replay goes again without it, a query throws")
    func flippedSnapshotBits() throws {
        let t = try sample()
        let ledger = try t.open()
        let engine = ReplayEngine(ledger: ledger)
        let projection = DisputedFactsProjection()
        // Three records after the snapshot, whose replay reads some of its columns.
        let path = try engine.writeSnapshot(projection, of: engine.replay(projection, to: .sequence(5), snapshots: .none))
        let original = try #require(FileManager.default.contents(atPath: path))
        let fresh = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: fresh.info.position)
        let expected = try projection.facts(in: fresh.state, context: context).map { canonical($0.json) }
        #expect(try engine.replay(projection, snapshots: .read).info.resumedFrom == 5)
        var (refused, replayedAgain, queryRefused, answered) = (0, 0, 0, 0)
        for offset in stride(from: 0, to: original.count, by: max(1, original.count / 400)) {
            var damaged = original
            damaged[offset] ^= 0x10
            try damaged.write(to: URL(fileURLWithPath: path))
            let replay = try engine.replay(projection, snapshots: .read)
            guard replay.info.resumedFrom != nil else {
                #expect(replay.state == fresh.state, "flip at \(offset)")
                if replay.info.notes.contains(where: { $0.contains("ignored and removed") }) {
                    replayedAgain += 1
                    #expect(!FileManager.default.fileExists(atPath: path), "flip at \(offset): the damaged snapshot is removed")
                } else {
                    refused += 1
                }
                continue
            }
            do {
                #expect(try projection.facts(in: replay.state, context: context).map { canonical($0.json) } == expected, "flip at \(offset)")
                answered += 1
            } catch {
                #expect(error.code == .io && error.message.contains("is damaged"), "flip at \(offset): \(error.message)")
                #expect(!FileManager.default.fileExists(atPath: path), "flip at \(offset): the damaged snapshot is removed")
                queryRefused += 1
            }
        }
        // Each way is taken: the tree's checksum, a block read by the replay, a block read by the
        // query. (A column block neither reads is answered from: here every block is read.)
        #expect(refused > 0 && replayedAgain > 0 && queryRefused > 0, "\(refused) \(replayedAgain) \(queryRefused) \(answered)")
        try original.dropLast(1).write(to: URL(fileURLWithPath: path))
        #expect(try engine.replay(projection, snapshots: .read).info.resumedFrom == nil)
    }

    @Test("a state whose coding the snapshot form does not support is not snapshotted, and still answers")
    func unsupportedStateCoding() throws {
        struct Nested: Codable, Sendable, Equatable {
            var count = 0
            func encode(to encoder: any Encoder) throws {
                var outer = encoder.container(keyedBy: Keys.self)
                var inner = outer.nestedUnkeyedContainer(forKey: .count)
                try inner.encode(count)
            }
            init() {}
            init(from decoder: any Decoder) throws {
                var inner = try decoder.container(keyedBy: Keys.self).nestedUnkeyedContainer(forKey: .count)
                count = try inner.decode(Int.self)
            }
            enum Keys: CodingKey { case count }
        }
        struct Counting: Projection {
            var name: String { "nested-count" }
            var version: Int { 1 }
            var initialState: Nested { Nested() }
            func apply(record: ReplayRecord, event: Event, to state: inout Nested) { state.count += 1 }
        }
        let t = try sample()
        let replay = try ReplayEngine(ledger: try t.open()).replay(Counting(), snapshots: .refresh(atLeast: 1))
        #expect(replay.state.count == 9)
        #expect(replay.info.snapshotsWritten.isEmpty)
        #expect(replay.info.notes.count == 1 && replay.info.notes[0].contains("nested containers"))
    }

    @Test("a snapshot of another projection version, or an unreadable one, is ignored")
    func snapshotVersionAndGarbage() throws {
        let t = try sample()
        let engine = ReplayEngine(ledger: try t.open())
        let v1 = TypeCountProjection(version: 1)
        let v2 = TypeCountProjection(version: 2)
        _ = try v1.writeSnapshot(using: engine)
        #expect(try engine.replay(v1, snapshots: .read).info.resumedFrom == 8)
        let replay = try engine.replay(v2, snapshots: .read)
        #expect(replay.info.resumedFrom == nil)
        #expect(replay.state["claim.asserted"] == 1)
        // Writing a v2 snapshot removes the v1 one.
        _ = try v2.writeSnapshot(using: engine)
        let names = try FileManager.default.contentsOfDirectory(atPath: t.directory + "/snapshots").sorted()
        #expect(names == ["type-count-v2-00000000000000000008.snapshot"])
        // A corrupted snapshot is ignored.
        _ = FileManager.default.createFile(atPath: t.directory + "/snapshots/" + names[0], contents: Data("{\"state\":".utf8))
        let again = try engine.replay(v2, snapshots: .read)
        #expect(again.info.resumedFrom == nil)
        #expect(again.info.notes == ["snapshot type-count-v2-00000000000000000008.snapshot ignored: it cannot be read or decoded (damaged, or not written under your snapshot key: by another user, or changed since)"])
        #expect(again.state == replay.state)
    }

    @Test("refreshing writes one snapshot where a long enough replay stops, and a failed write is silently skipped")
    func refresh() throws {
        let t = try sample()
        let ledger = try t.open()
        let projection = DisputedFactsProjection()
        let early = try ReplayEngine(ledger: ledger).replay(projection, to: .sequence(5), snapshots: .refresh(atLeast: 4))
        #expect(early.info.snapshotsWritten.map { String($0.suffix(11)) } == ["05.snapshot"])
        // Three records past the snapshot at 5: fewer than 4, so none is written.
        let short = try ReplayEngine(ledger: ledger).replay(projection, snapshots: .refresh(atLeast: 4))
        #expect(short.info.resumedFrom == 5)
        #expect(short.info.recordsRead == 3)
        #expect(short.info.snapshotsWritten.isEmpty)
        let replay = try ReplayEngine(ledger: ledger).replay(projection, snapshots: .refresh(atLeast: 2))
        #expect(replay.info.snapshotsWritten.map { String($0.suffix(11)) } == ["08.snapshot"])
        let resumed = try ReplayEngine(ledger: ledger).replay(projection, snapshots: .refresh(atLeast: 2))
        #expect(resumed.info.resumedFrom == 8)
        #expect(resumed.info.recordsRead == 0)
        #expect(resumed.state == replay.state)
        #expect(resumed.state == short.state)
        // A snapshot directory that cannot be created (its parent is a file): answers still come.
        let blocked = ReplayEngine(ledger: ledger, snapshotDirectory: t.directory + "/log/snapshots")
        let unwritable = try blocked.replay(projection, snapshots: .refresh(atLeast: 2))
        #expect(unwritable.state == replay.state)
        #expect(unwritable.info.snapshotsWritten.isEmpty)
        #expect(unwritable.info.notes.count == 1)
        #expect(throws: LedgerError(.io, "")) { try projection.writeSnapshot(using: blocked) }
    }

    @Test("the registry refuses duplicate and unusable names and accepts new projections")
    func registry() throws {
        var registry = ProjectionRegistry.builtIn
        #expect(registry.names == ["parties-and-keys", "disputed-facts", "evidence-index", "timeline"])
        #expect(throws: LedgerError(.usage, "")) { try registry.register(DisputedFactsProjection()) }
        try registry.register(TypeCountProjection())
        let t = try sample()
        let projection = try #require(registry.projection(named: "type-count"))
        let answer = try projection.answer(using: ReplayEngine(ledger: try t.open()), snapshots: .none, blobs: nil)
        // The default report: the state itself, encoded, as the one element of "state".
        #expect(answer.reportKey == "state")
        #expect(try member(answer.report(), "state")?.arrayValue?.first.flatMap { member($0, "fact.opened") } == .integer(1))
        #expect(answer.info.position.sequence == 8)
        struct BadName: Projection {
            var name: String { "Bad Name" }
            var version: Int { 1 }
            var initialState: Int { 0 }
            func apply(record: ReplayRecord, event: Event, to state: inout Int) {}
        }
        #expect(throws: LedgerError(.usage, "")) { try registry.register(BadName()) }
    }
}
