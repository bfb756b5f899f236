import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore
import Testing

/// Removes `keys` from an object at the top level (and in each element of `arrays`), so that
/// two reports can be compared on everything else.
func without(_ value: JSONValue, _ keys: Set<String>) -> JSONValue {
    guard case var .object(members) = value else { return value }
    for key in keys { members[key] = nil }
    return .object(members)
}

func member(_ value: JSONValue, _ key: String) -> JSONValue? { value.objectValue?[key] }

@Suite("Disputed facts")
struct DisputedFactsTests {
    /// Idemia denies the fact; Amnesty counters, affirming it.
    func deploymentCase() throws -> TestLedger {
        let t = try TestLedger()
        try t.openFact("deployed")
        try t.assert("C-idemia", fact: "deployed", by: "idemia", "denies", statement: "never deployed")
        try t.counter("C-amnesty", counters: "C-idemia", fact: "deployed", by: "amnesty", "affirms")
        return t
    }

    @Test("dispute status: unclaimed, uncontested, disputed, withdrawn")
    func disputeStatus() throws {
        let t = try TestLedger()
        try t.openFact("F")
        #expect(try t.fact("F").disputeStatus == .unclaimed)
        try t.assert("C-1", fact: "F", by: "idemia", "denies")
        #expect(try t.fact("F").disputeStatus == .uncontested)
        try t.assert("C-2", fact: "F", by: "amnesty", "qualifies")
        #expect(try t.fact("F").disputeStatus == .uncontested)
        try t.counter("C-3", counters: "C-1", fact: "F", by: "amnesty", "affirms")
        #expect(try t.fact("F").disputeStatus == .disputed)
        try t.retract("C-1", by: "idemia")
        #expect(try t.fact("F").disputeStatus == .uncontested)
        try t.retract("C-2", by: "amnesty")
        try t.retract("C-3", by: "amnesty")
        #expect(try t.fact("F").disputeStatus == .withdrawn)
    }

    @Test("a denial and its affirming counterclaim attack each other and stay undecided")
    func mutualAttack() throws {
        let t = try deploymentCase()
        let fact = try t.fact("deployed")
        #expect(fact.disputeStatus == .disputed)
        #expect(fact.claims.map(\.status) == [.undecided, .undecided])
        #expect(fact.claims[0].reason == "undecided: claim C-amnesty and it attack each other, and nothing else settles either")
    }

    @Test("unattacked evidence against the denial rejects it and reinstates the counterclaim")
    func evidenceDecides() throws {
        let t = try deploymentCase()
        try t.attach("E-3", supports: ["C-amnesty"], contradicts: ["C-idemia"])
        try t.storeBlob(TestLedger.evidenceBytes("E-3"))
        let fact = try t.fact("deployed")
        let idemia = try #require(fact.claims.first { $0.claim.claim == "C-idemia" })
        let amnesty = try #require(fact.claims.first { $0.claim.claim == "C-amnesty" })
        #expect(idemia.status == .rejected)
        #expect(idemia.reason == "rejected: attacked by evidence E-3, which nothing attacks")
        #expect(amnesty.status == .accepted)
        #expect(amnesty.reason == "accepted: every attacker is rejected (claim C-idemia)")
        #expect(idemia.claim.evidenceAgainst == ["E-3"])
        #expect(amnesty.claim.evidenceFor == ["E-3"])
        #expect(fact.evidence.map(\.status) == [.accepted])
        #expect(fact.integrity.isEmpty)
    }

    @Test("evidence whose blob is not stored, or cannot be read, is excluded until a matching blob is stored")
    func unstoredBlobExcluded() throws {
        let t = try deploymentCase()
        try t.attach("E-3", supports: ["C-amnesty"], contradicts: ["C-idemia"])
        var fact = try t.fact("deployed")
        #expect(fact.integrity == ["blob-missing:E-3"])
        #expect(fact.evidence.map(\.status) == [.excluded] && fact.evidence[0].blob == .missing)
        #expect(fact.evidence[0].reason.hasPrefix("excluded: its blob is not stored"), "\(fact.evidence[0].reason)")
        #expect(fact.claims.map(\.status) == [.undecided, .undecided])
        // A directory where the blob belongs: unreadable, still excluded.
        let path = BlobStore(ledgerDirectory: t.directory).path(for: SHA256.hash(TestLedger.evidenceBytes("E-3")))
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        fact = try t.fact("deployed")
        #expect(fact.integrity == ["blob-unreadable:E-3"])
        #expect(fact.evidence.map(\.status) == [.excluded] && fact.claims.map(\.status) == [.undecided, .undecided])
        try FileManager.default.removeItem(atPath: path)
        // The blob arrives: the evidence counts, and decides.
        try t.storeBlob(TestLedger.evidenceBytes("E-3"))
        fact = try t.fact("deployed")
        #expect(fact.integrity.isEmpty && fact.evidence.map(\.status) == [.accepted])
        #expect(fact.claims.map(\.status) == [.rejected, .accepted])
    }

    @Test("a claim is listed as countered by the counterclaims that still attack it, not by one retracted")
    func counteredByActiveOnly() throws {
        let t = try deploymentCase()
        try t.counter("C-second", counters: "C-idemia", fact: "deployed", by: "amnesty", "affirms")
        var idemia = try #require(try t.fact("deployed").claims.first { $0.claim.claim == "C-idemia" })
        #expect(idemia.claim.counteredBy == ["C-amnesty", "C-second"])
        try t.retract("C-amnesty", by: "amnesty")
        let fact = try t.fact("deployed")
        idemia = try #require(fact.claims.first { $0.claim.claim == "C-idemia" })
        #expect(idemia.claim.counteredBy == ["C-second"])
        #expect(fact.retractedClaims.map(\.claim.claim) == ["C-amnesty"])
        // As of before the retraction, both still attacked it.
        let before = try t.fact("deployed", to: .sequence(t.count - 2))
        #expect(before.claims.first { $0.claim.claim == "C-idemia" }?.claim.counteredBy == ["C-amnesty", "C-second"])
    }

    @Test("countered evidence: evidence for the denial conflicts with evidence against it")
    func counteredEvidence() throws {
        let t = try deploymentCase()
        try t.attach("E-1", supports: ["C-amnesty"], contradicts: ["C-idemia"])
        try t.attach("E-2", supports: ["C-idemia"])
        for e in ["E-1", "E-2", "E-4"] { try t.storeBlob(TestLedger.evidenceBytes(e)) }
        let fact = try t.fact("deployed")
        #expect(fact.claims.map(\.status) == [.undecided, .undecided])
        #expect(fact.evidence.map(\.status) == [.undecided, .undecided])
        #expect(fact.evidence[1].reason == "undecided: evidence E-1 and it attack each other, and nothing else settles either")
        // A second item against the denial conflicts with E-2 as well: still nothing is settled.
        try t.attach("E-4", by: "reviewer", contradicts: ["C-idemia"])
        #expect(try t.fact("deployed").claims.map(\.status) == [.undecided, .undecided])
    }

    @Test("evidence whose blob does not match is excluded and attacks nothing")
    func mismatchedBlobExcluded() throws {
        let t = try deploymentCase()
        try t.attach("E-3", supports: ["C-amnesty"], contradicts: ["C-idemia"])
        try t.storeBlob(TestLedger.evidenceBytes("E-3"))
        var fact = try t.fact("deployed")
        #expect(fact.integrity.isEmpty)
        #expect(fact.evidence[0].blob == .present)
        #expect(fact.claims.map(\.status) == [.rejected, .accepted])
        // Overwrite the stored blob with other bytes of the same length.
        let path = BlobStore(ledgerDirectory: t.directory).path(for: SHA256.hash(TestLedger.evidenceBytes("E-3")))
        chmod(path, 0o644)
        var bytes = TestLedger.evidenceBytes("E-3")
        bytes[0] ^= 1
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
        fact = try t.fact("deployed")
        #expect(fact.integrity == ["blob-mismatch:E-3"])
        #expect(fact.evidence[0].status == .excluded)
        #expect(fact.claims.map(\.status) == [.undecided, .undecided])
    }

    @Test("a claim whose own statement's signature or key fails is excluded, as such evidence is: no argument, no stance")
    func excludedClaim() throws {
        let t = try deploymentCase()
        try t.openFact("other")
        try t.assert("C-other", fact: "other", by: "axis", "affirms")
        t.close()
        var forged = try t.envelope("idemia", "claim.asserted", id: "C-forged", ["claim": "C-forged", "fact": "other", "stance": "denies", "statement": "Forged."])
        forged.signatures[0].signature[9] ^= 1
        try t.appendRaw(forged)
        let fact = try #require(try t.facts()["other"])
        #expect(fact.disputeStatus == .uncontested)
        #expect(fact.integrity.contains("bad-signature:C-forged"))
        #expect(fact.claims.map(\.claim.claim) == ["C-other", "C-forged"])
        #expect(fact.claims[0].status == .accepted && fact.claims[1].status == nil && fact.claims[1].excluded)
        #expect(fact.claims[1].reason.hasPrefix("excluded:") && fact.claims[1].json.objectValue?["status"] == JSONValue.string("excluded"))
        // A fact whose only claims are excluded has none.
        t.close()
        let u = try deploymentCase()
        try u.openFact("lonely")
        u.close()
        var lone = try u.envelope("idemia", "claim.asserted", id: "C-lone", ["claim": "C-lone", "fact": "lonely", "stance": "denies", "statement": "Forged."])
        lone.signatures[0].signature[9] ^= 1
        try u.appendRaw(lone)
        #expect(try #require(try u.facts()["lonely"]).disputeStatus == .unclaimed)
    }

    /// With a point of small order as its key, R = identity and S = 0 sign every statement, and
    /// OpenSSL verifies them. A log written before the append rules refused such a key, or by
    /// other means, may hold one: the key table never registers it, so what it "signs" is by an
    /// invalid key, whether signatures are verified or trusted.
    @Test("a small-order key registered past the rules is never taken: its statements are by an invalid key, verified or trusted")
    func smallOrderKey() throws {
        let t = try deploymentCase()
        t.close()
        let identity = [UInt8(1)] + [UInt8](repeating: 0, count: 31)
        try t.appendRaw(try t.envelope("idemia", "key.added", id: "k-weak", ["party": "idemia", "key": .string(Base64.encode(identity))]))
        var forged = try t.envelope("idemia", "claim.asserted", id: "C-forged", ["claim": "C-forged", "fact": "deployed", "stance": "affirms", "statement": "Not said by idemia."])
        forged = Envelope(payload: forged.payload, signatures: [.init(keyID: SHA256.hash(identity), signature: identity + [UInt8](repeating: 0, count: 32))])
        try t.appendRaw(forged)
        for verifying in [true, false] {
            let fact = try #require(try t.facts(verifiesSignatures: verifying)["deployed"])
            #expect(fact.integrity.contains("key-invalid:C-forged"), "verifying \(verifying): \(fact.integrity)")
            let claim = try #require(fact.claims.first { $0.claim.claim == "C-forged" })
            #expect(claim.excluded && claim.status == nil, "verifying \(verifying)")
        }
    }

    @Test("a change to a claim takes effect only by its author and with valid signatures: otherwise it is only an integrity code")
    func changesByTheRules() throws {
        for change in ["spoiled amendment", "amendment by another", "spoiled retraction", "retraction by another"] {
            let t = try deploymentCase()
            t.close()
            let author = change.hasSuffix("by another") ? "amnesty" : "idemia"
            var envelope = change.contains("amendment")
                ? try t.envelope(author, "claim.amended", id: "changed", ["claim": "C-idemia", "stance": "affirms", "statement": "Changed."])
                : try t.envelope(author, "claim.retracted", id: "changed", ["claim": "C-idemia", "reason": "withdrawn"])
            if change.hasPrefix("spoiled") { envelope.signatures[0].signature[9] ^= 1 }
            try t.appendRaw(envelope)
            let fact = try #require(try t.facts()["deployed"])
            #expect(fact.disputeStatus == .disputed, "\(change)")
            let claim = try #require(fact.claims.first { $0.claim.claim == "C-idemia" }, "\(change)")
            #expect(claim.claim.stance == "denies" && claim.claim.amendments == 0 && claim.claim.retractedAt == nil, "\(change)")
            let code = change.hasPrefix("spoiled") ? "bad-signature:changed" : "not-the-author:changed"
            #expect(fact.integrity.contains(code), "\(change): \(fact.integrity)")
        }
    }

    @Test("a finding by a party that is no reviewer takes no effect: not the latest finding, only its integrity code")
    func findingByAnotherRole() throws {
        let t = try deploymentCase()
        t.close()
        try t.appendRaw(try t.envelope("amnesty", "finding.recorded", id: "self-finding", ["finding": "self-finding", "fact": "deployed", "outcome": "substantiated", "rationale": "We say so."]))
        let fact = try #require(try t.facts()["deployed"])
        #expect(fact.latestFinding == nil && fact.integrity.contains("role-not-allowed:self-finding"), "\(fact.integrity)")
    }

    @Test("evidence, custody and a fact's opening by a role that may not sign them (written past the append rules) take no effect: evidence is excluded, the rest only their integrity code")
    func statementsByAnotherRole() throws {
        let t = try deploymentCase()
        try t.attach("E-1", supports: ["C-idemia"], custodian: "amnesty-lab")
        t.close()
        let blob: [String: JSONValue] = ["sha256": .string(SHA256.hash([1]).hexString), "size": 1, "media_type": "text/plain", "title": "t"]
        // Idemia, a subject, with its own valid key: evidence against Amnesty's counterclaim, a
        // transfer of Amnesty's evidence to itself, and a fact of its own.
        try t.appendRaw(try t.envelope("idemia", "evidence.attached", id: "E-subject", blob.merging(["evidence": "E-subject", "contradicts": ["C-amnesty"]]) { $1 }))
        try t.appendRaw(try t.envelope("idemia", "custody.recorded", id: "cu-subject", ["evidence": "E-1", "action": "transferred", "from": "amnesty-lab", "to": "idemia"]))
        try t.appendRaw(try t.envelope("idemia", "fact.opened", id: "open-subject", ["fact": "F-subject", "proposition": "p"]))
        // A transfer by Amnesty from the holder its evidence still has: no gap.
        try t.appendRaw(try t.envelope("amnesty", "custody.recorded", id: "cu-amnesty", ["evidence": "E-1", "action": "transferred", "from": "amnesty-lab", "to": "court"]))
        let facts = try t.facts(blobs: false)
        let fact = try #require(facts["deployed"])
        #expect(fact.integrity == ["role-not-allowed:E-subject", "role-not-allowed:cu-subject"])
        #expect(fact.evidence.map(\.item.evidence) == ["E-1", "E-subject"])
        #expect(fact.evidence.map(\.status) == [.accepted, .excluded])
        #expect(fact.evidence[1].reason == "excluded: its author's role may not attach evidence (role-not-allowed: \"idemia\" is registered as subject)")
        // The subject's evidence attacks nothing: the claims stand as without it (it would
        // reject Amnesty's, and so reinstate Idemia's).
        #expect(fact.claims.map(\.status) == [.undecided, .undecided])
        let custody = fact.evidence[0].item.custody
        #expect(custody.map(\.signing.event) == ["cu-amnesty"] && custody[0].gap == nil && fact.evidence[0].item.holder == "court")
        #expect(fact.evidence[0].integrity == ["role-not-allowed:cu-subject"])
        let opened = try #require(facts["F-subject"])
        #expect(opened.integrity == ["role-not-allowed:open-subject"] && opened.fact.openedBy == "idemia")
    }

    @Test("a retraction removes exactly the claim and the attacks it took part in")
    func retraction() throws {
        let t = try deploymentCase()
        try t.openFact("other")
        try t.assert("C-other", fact: "other", by: "axis", "affirms")
        let before = try t.facts()
        try t.retract("C-idemia", by: "idemia", reason: "we were wrong")
        let after = try t.facts()
        let sequence = t.count - 1
        // The other fact is untouched.
        #expect(canonical(try #require(before["other"]).json) == canonical(try #require(after["other"]).json))
        let fact = try #require(after["deployed"])
        #expect(fact.disputeStatus == .uncontested)
        #expect(fact.claims.map(\.claim.claim) == ["C-amnesty"])
        #expect(fact.claims[0].status == .accepted)
        #expect(fact.claims[0].reason == "accepted: nothing attacks it")
        #expect(fact.retractedClaims.map(\.claim.claim) == ["C-idemia"])
        #expect(fact.retractedClaims[0].reason == "retracted at entry \(sequence): we were wrong")
        #expect(fact.retractedClaims[0].claim.lastChange == sequence)
        // Everything else about the counterclaim is as before.
        let oldAmnesty = try #require(before["deployed"]?.claims.first { $0.claim.claim == "C-amnesty" })
        #expect(canonical(without(oldAmnesty.json, ["status", "reason"])) == canonical(without(fact.claims[0].json, ["status", "reason"])))
    }

    @Test("an amendment changes the statement, the change count and the last change, nothing else")
    func amendment() throws {
        let t = try deploymentCase()
        let before = try t.fact("deployed")
        try t.amend("C-idemia", by: "idemia", statement: "never deployed in real time")
        let after = try t.fact("deployed")
        let sequence = t.count - 1
        let old = before.claims[0].json
        let new = after.claims[0].json
        #expect(member(new, "statement") == .string("never deployed in real time"))
        #expect(member(new, "amendments") == .integer(1))
        #expect(member(new, "last_change") == .integer(Int64(sequence)))
        #expect(canonical(without(old, ["statement", "amendments", "last_change"])) == canonical(without(new, ["statement", "amendments", "last_change"])))
        #expect(canonical(without(before.json, ["claims", "last_change"])) == canonical(without(after.json, ["claims", "last_change"])))
        #expect(canonical(before.claims[1].json) == canonical(after.claims[1].json))
    }

    @Test("amending the stance to qualifies ends the dispute and the stance attacks")
    func stanceAmendment() throws {
        let t = try deploymentCase()
        try t.amend("C-idemia", by: "idemia", stance: "qualifies")
        let fact = try t.fact("deployed")
        #expect(fact.disputeStatus == .uncontested)
        #expect(fact.claims[0].claim.stance == "qualifies")
        // The counterclaim still attacks the claim it counters; nothing attacks it back.
        #expect(fact.claims.map(\.status) == [.rejected, .accepted])
        #expect(fact.claims[0].reason == "rejected: attacked by claim C-amnesty, which nothing attacks")
    }

    @Test("a key revocation adds key-revoked-later to the facts its key signed, nothing else")
    func revocation() throws {
        let t = try TestLedger()
        try t.addKey("amnesty", key: 20)
        let oldKey = try #require(t.keys["amnesty"]?.first)
        try t.openFact("deployed")
        try t.assert("C-idemia", fact: "deployed", by: "idemia", "denies")
        let counter = try t.append("amnesty", "claim.countered", id: "counter-1", ["claim": .string("C-amnesty"), "counters": .string("C-idemia"), "fact": .string("deployed"), "stance": .string("affirms"), "statement": .string("deployed")], signer: oldKey)
        let before = try t.fact("deployed")
        #expect(before.integrity.isEmpty)
        let revocation = try t.revokeKey("amnesty", oldKey)
        let after = try t.fact("deployed")
        // fact.opened was signed with the newer key, so only the counterclaim is affected.
        #expect(after.integrity == ["key-revoked-later:counter-1"])
        #expect(canonical(without(before.json, ["integrity"])) == canonical(without(after.json, ["integrity"])))
        // The parties projection shows the revocation.
        let ledger = try t.open()
        let parties = try ReplayEngine(withoutSnapshots: ledger).replay(PartiesProjection(), snapshots: .none).state
        let key = try #require(parties.parties["amnesty"]?.keys.first { $0.keyID == oldKey.publicKey.keyID.hexString })
        #expect(key.revokedAt == revocation.sequence)
        #expect(key.validFrom == 1)
        #expect(counter.sequence < revocation.sequence)
    }

    @Test("a finding changes the latest finding and nothing else")
    func finding() throws {
        let t = try deploymentCase()
        try t.attach("E-3", supports: ["C-amnesty"], contradicts: ["C-idemia"])
        let before = try t.fact("deployed")
        try t.finding("F-1", fact: "deployed", "substantiated", reliesOn: ["E-3"])
        let after = try t.fact("deployed")
        #expect(member(after.json, "finding").flatMap { member($0, "outcome") } == .string("substantiated"))
        #expect(after.fact.findings.count == 1)
        #expect(canonical(without(before.json, ["finding", "findings", "last_change"])) == canonical(without(after.json, ["finding", "findings", "last_change"])))
        try t.finding("F-2", fact: "deployed", "inconclusive")
        #expect(try t.fact("deployed").latestFinding?.finding == "F-2")
    }

    @Test("custody gaps are flagged: a transfer whose from is not the holder")
    func custodyGap() throws {
        let t = try deploymentCase()
        try t.attach("E-1", supports: ["C-amnesty"], custodian: "amnesty-lab")
        try t.custody("E-1", "copied", from: "amnesty-lab", to: "working-copy")
        try t.custody("E-1", "transferred", from: "amnesty-lab", to: "court")
        #expect(!(try t.fact("deployed").integrity.contains("custody-gap:E-1")))
        try t.custody("E-1", "transferred", from: "amnesty-lab", to: "archive")
        let fact = try t.fact("deployed")
        #expect(fact.integrity.contains("custody-gap:E-1"))
        let ledger = try t.open()
        let projection = EvidenceIndexProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        var entries: [EvidenceIndexProjection.Entry] = []
        try projection.forEachEntry(in: replay.state, context: ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)) { entries.append($0) }
        let entry = try #require(entries.first)
        #expect(entry.item.custody.map { $0.gap != nil } == [false, false, true])
        #expect(entry.item.custody[2].gap == "transferred from \"amnesty-lab\", but the holder was \"court\"")
        #expect(entry.item.holder == "archive")
        #expect(entry.facts == ["deployed"])
        #expect(entry.blob == .unchecked)
    }

    @Test("a custody step dated before an earlier dated step is a gap, an undated step between them or not")
    func custodyOutOfOrder() throws {
        let t = try deploymentCase()
        try t.attach("E-1", supports: ["C-amnesty"])
        try t.custody("E-1", "collected", to: "amnesty-lab", at: 1_590_969_600)  // 2020-06-01
        try t.custody("E-1", "copied", from: "amnesty-lab")
        try t.custody("E-1", "transferred", from: "amnesty-lab", to: "court", at: 1_588_291_200)  // 2020-05-01
        let fact = try #require(try t.facts(blobs: false)["deployed"])
        #expect(fact.integrity == ["custody-gap:E-1"])
        #expect(fact.evidence[0].item.custody.map(\.gap) == [nil, nil, "it happened (2020-05-01T00:00:00Z) before an earlier step (2020-06-01T00:00:00Z)"])
    }

    @Test("attestations by claim id and by entry id are listed on the claim")
    func attestations() throws {
        let t = try deploymentCase()
        let entry = try t.counter("C-2", counters: "C-idemia", fact: "deployed", by: "axis", "qualifies")
        try t.attest("A-1", target: "C-amnesty")
        try t.attest("A-2", target: entry.entryID.hexString, kind: "witnessed")
        let fact = try t.fact("deployed")
        #expect(fact.claims.first { $0.claim.claim == "C-amnesty" }?.claim.attestations.map(\.attestation) == ["A-1"])
        #expect(fact.claims.first { $0.claim.claim == "C-2" }?.claim.attestations.map(\.kind) == ["witnessed"])
    }

    @Test("the timeline keeps signed_at, accepted_at and the source's published_at apart")
    func timeline() throws {
        let t = try TestLedger()
        try t.openFact("deployed")
        let claim = try t.assert("C-1", fact: "deployed", by: "idemia", "denies", published: 1_600_300_000, id: "idemia-statement")
        try t.attach("E-1", supports: [], contradicts: ["C-1"])
        try t.custody("E-1", "collected", to: "amnesty")
        try t.openFact("unrelated")
        let ledger = try t.open()
        let projection = TimelineProjection()
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let events = try #require(try projection.timeline(of: "deployed", in: replay.state, context: context))
        #expect(events.map(\.type) == ["fact.opened", "claim.asserted", "evidence.attached", "custody.recorded"])
        let asserted = events[1]
        #expect(asserted.sequence == claim.sequence)
        #expect(asserted.entryID == claim.entryID.hexString)
        #expect(asserted.event == "idemia-statement")
        #expect(asserted.acceptedAt == claim.acceptedAt.rfc3339)
        #expect(asserted.signedAt == Timestamp(seconds: claim.acceptedAt.seconds - 30).rfc3339)
        #expect(asserted.publishedAt == Timestamp(seconds: 1_600_300_000).rfc3339)
        #expect(events[2].capturedAt == Timestamp(seconds: 1_600_000_000).rfc3339)
        #expect(try projection.timeline(of: "unrelated", in: replay.state, context: context)?.count == 1)
    }
}
