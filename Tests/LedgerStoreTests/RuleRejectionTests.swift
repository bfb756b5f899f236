import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore
import Testing

/// The append rules of keys, parties, genesis, counterclaims, retractions, subjects and findings
/// (LedgerState.checkRules), each broken once: refused with its code and a message naming what
/// broke it, the log unchanged. Where a rule allows the same statement from someone else or in
/// another state, that one goes in, so the refusal is the rule's and not the statement's.
extension RejectionTests {
    static func base64(_ key: SigningKey) -> String { Base64.encode(key.publicKey.rawRepresentation) }

    @Test("a party other than an admin may not add or revoke another party's key; an admin may")
    func keysOfAnotherParty() throws {
        let f = try Fixture()
        let added: [String: Any] = ["type": "key.added", "id": "k-add", "party": "other", "key": Self.base64(Fixture.key(42))]
        let revoked: [String: Any] = ["type": "key.revoked", "id": "k-rev", "party": "other", "key": Self.base64(Fixture.key(5)), "reason": "r"]
        for event in [added, revoked] {
            try expectRejected(f, [f.sign(event, as: "inv")], .roleNotAllowed, message: "Only \"other\" itself or an admin may change its keys, not \"inv\"")
        }
        try f.append(added, as: "admin")
        try f.append(revoked, as: "admin")
    }

    @Test("only an admin may register a party, and a party only once")
    func registrationByNonAdmin() throws {
        let f = try Fixture()
        let registration: [String: Any] = ["type": "party.registered", "id": "reg-x", "party": "x", "name": "X", "role": "admin", "keys": [Self.base64(Fixture.key(42))]]
        try expectRejected(f, [f.sign(registration, as: "inv")], .roleNotAllowed, message: "\"inv\" is registered as investigator; only admin parties may record party.registered")
        try expectRejected(f, [f.sign(registration, as: "rev")], .roleNotAllowed, message: "\"rev\" is registered as reviewer; only admin parties may record party.registered")
        let again: [String: Any] = ["type": "party.registered", "id": "reg-inv-2", "party": "inv", "name": "INV", "role": "admin", "keys": [Self.base64(Fixture.key(43))]]
        try expectRejected(f, [f.sign(again, as: "admin")], .duplicateID, message: "Party \"inv\" is already registered")
        try f.append(registration, as: "admin")
    }

    @Test("a key registered to any party, also a revoked one, cannot be added or registered again")
    func keyReused() throws {
        let f = try Fixture()
        let othersKey = Self.base64(Fixture.key(5))
        let message = "Key \(Fixture.key(5).publicKey.keyID.shortHex()) is already registered to \"other\""
        let added: [String: Any] = ["type": "key.added", "id": "k-add", "party": "inv", "key": othersKey]
        try expectRejected(f, [f.sign(added, as: "inv")], .duplicateID, message: message)
        try expectRejected(f, [f.sign(added, as: "admin")], .duplicateID, message: message)
        let registration: [String: Any] = ["type": "party.registered", "id": "reg-x", "party": "x", "name": "X", "role": "subject", "keys": [Self.base64(Fixture.key(42)), othersKey]]
        try expectRejected(f, [f.sign(registration, as: "admin")], .duplicateID, message: message)
        // A revoked key stays registered to its party: it cannot come back, to it or to another.
        let second = Fixture.key(43)
        try f.append(["type": "key.added", "id": "k-second", "party": "inv", "key": Self.base64(second)], as: "inv")
        try f.append(["type": "key.revoked", "id": "k-rev", "party": "inv", "key": Self.base64(Fixture.key(2)), "reason": "lost"], as: "inv")
        let back: [String: Any] = ["type": "key.added", "id": "k-back", "party": "inv", "key": Self.base64(Fixture.key(2))]
        try expectRejected(f, [f.sign(back, as: "inv", key: second)], .duplicateID, message: "Key \(Fixture.key(2).publicKey.keyID.shortHex()) is already registered to \"inv\"")
        try f.append([f.sign(["type": "key.added", "id": "k-new", "party": "inv", "key": Self.base64(Fixture.key(44))], as: "inv", key: second)])
    }

    @Test("a key cannot be revoked twice, nor revoked as a key of a party it is not registered to")
    func revokedTwice() throws {
        let f = try Fixture()
        let second = Fixture.key(42)
        try f.append(["type": "key.added", "id": "k-add", "party": "inv", "key": Self.base64(second)], as: "inv")
        let revocation = try f.append(["type": "key.revoked", "id": "k-rev", "party": "inv", "key": Self.base64(Fixture.key(2)), "reason": "lost"], as: "inv")
        let again: [String: Any] = ["type": "key.revoked", "id": "k-rev-2", "party": "inv", "key": Self.base64(Fixture.key(2)), "reason": "lost again"]
        let message = "Key \(Fixture.key(2).publicKey.keyID.shortHex()) of \"inv\" was already revoked at entry \(revocation.sequence)."
        try expectRejected(f, [f.sign(again, as: "inv", key: second)], .invalidEvent, message: message)
        try expectRejected(f, [f.sign(again, as: "admin")], .invalidEvent, message: message)
        // Another party's key, named as one's own.
        let notOwn: [String: Any] = ["type": "key.revoked", "id": "k-rev-3", "party": "inv", "key": Self.base64(Fixture.key(5)), "reason": "r"]
        try expectRejected(f, [f.sign(notOwn, as: "inv", key: second)], .unknownReference, message: "is not registered to \"inv\"; nothing to revoke")
    }

    @Test("a second ledger.genesis is refused")
    func secondGenesis() throws {
        let f = try Fixture()
        let genesis: [String: Any] = [
            "type": "ledger.genesis", "id": "genesis-2", "origin": "test.example/other", "party": "admin", "name": "ADMIN", "keys": [Self.base64(Fixture.key(1))],
        ]
        try expectRejected(f, [f.sign(genesis, as: "admin")], .invalidEvent, message: "ledger.genesis may only be the first record; this ledger already has 5 records")
        #expect(try Ledger(directory: f.directory).count == 5)
    }

    @Test("a counterclaim must be about the fact of the claim it counters, and that claim must not be retracted")
    func counterclaims() throws {
        let f = try Fixture()
        try f.populate()
        try f.append(["type": "fact.opened", "id": "open-f2", "fact": "f2", "proposition": "Another"], as: "inv")
        func counter(_ id: String, _ counters: String, fact: String) throws -> Envelope {
            try f.sign(["type": "claim.countered", "id": id, "claim": id, "counters": counters, "fact": fact, "stance": "affirms", "statement": "s"], as: "inv")
        }
        try expectRejected(f, [counter("c9", "c1", fact: "f2")], .invalidEvent, message: "Claim \"c9\" is about fact \"f2\" but counters claim \"c1\", which is about fact \"f1\"")
        let retraction = try f.append(["type": "claim.retracted", "id": "r1", "claim": "c1", "reason": "withdrawn"], as: "sub")
        try expectRejected(f, [counter("c9", "c1", fact: "f1")], .invalidEvent, message: "Claim \"c1\" was retracted at entry \(retraction.sequence); there is nothing left to counter")
        // The other claim of f1 still stands, and may be countered on f1.
        try f.append([counter("c9", "c2", fact: "f1")])
    }

    @Test("a retracted claim cannot be retracted again, nor amended")
    func retractedTwice() throws {
        let f = try Fixture()
        try f.populate()
        let retraction = try f.append(["type": "claim.retracted", "id": "r1", "claim": "c1", "reason": "withdrawn"], as: "sub")
        let message = "Claim \"c1\" was already retracted at entry \(retraction.sequence)."
        try expectRejected(f, [f.sign(["type": "claim.retracted", "id": "r2", "claim": "c1", "reason": "again"], as: "sub")], .invalidEvent, message: message)
        try expectRejected(f, [f.sign(["type": "claim.amended", "id": "m1", "claim": "c1", "statement": "after all"], as: "sub")], .invalidEvent, message: message)
    }

    @Test("a fact may only name registered parties as its subjects")
    func unregisteredSubject() throws {
        let f = try Fixture()
        let fact: [String: Any] = ["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P", "subjects": ["sub", "nobody"]]
        try expectRejected(f, [f.sign(fact, as: "inv")], .unknownReference, message: "Fact \"f1\" names subject \"nobody\", which is not a registered party")
        try f.append(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P", "subjects": ["sub", "other"]], as: "inv")
    }

    @Test("a finding may rely only on evidence in the ledger")
    func findingOnUnknownEvidence() throws {
        let f = try Fixture()
        try f.populate()
        let finding: [String: Any] = ["type": "finding.recorded", "id": "fd1", "finding": "fd1", "fact": "f1", "outcome": "substantiated", "rationale": "r", "relies_on": ["e1", "nope"]]
        try expectRejected(f, [f.sign(finding, as: "rev")], .unknownReference, message: "Statement \"fd1\" refers to evidence \"nope\", which is not in this ledger")
        try f.append(["type": "finding.recorded", "id": "fd1", "finding": "fd1", "fact": "f1", "outcome": "substantiated", "rationale": "r", "relies_on": ["e1"]], as: "rev")
    }

    /// With a point of small order as its key, R = identity and S = 0 sign every statement, and
    /// OpenSSL verifies them: a party that registered one could deny its own statements, and
    /// anyone could make statements in its name.
    @Test("a small-order key is refused at append; written raw, verify finds it at its entry and refuses what it 'signs'")
    func smallOrderKey() throws {
        let f = try Fixture()
        try f.populate()
        let identity = [UInt8(1)] + [UInt8](repeating: 0, count: 31)
        let keyID = SHA256.hash(identity)
        let added: [String: Any] = ["type": "key.added", "id": "k-weak", "party": "inv", "key": Base64.encode(identity)]
        try expectRejected(f, [f.sign(added, as: "inv")], .malformedEvent, message: "Key \(keyID.shortHex()) is not a valid Ed25519 public key: it is a point of small order")
        let registration: [String: Any] = ["type": "party.registered", "id": "reg-w", "party": "w", "name": "W", "role": "investigator", "keys": [Base64.encode(identity)]]
        try expectRejected(f, [f.sign(registration, as: "admin")], .malformedEvent, message: "it is a point of small order")
        // Bytes that are no point at all (y = 2): refused too, as no signature could verify.
        let notPoint = [UInt8(2)] + [UInt8](repeating: 0, count: 31)
        let bad: [String: Any] = ["type": "key.added", "id": "k-bad", "party": "inv", "key": Base64.encode(notPoint)]
        try expectRejected(f, [f.sign(bad, as: "inv")], .malformedEvent, message: "its bytes are not a point of the curve")

        // Written raw: the registration and two statements "signed" without any private key.
        func forged(_ event: [String: Any]) throws -> Envelope {
            var envelope = try f.sign(event, as: "inv")
            envelope = Envelope(payload: envelope.payload, signatures: [.init(keyID: keyID, signature: identity + [UInt8](repeating: 0, count: 32))])
            return envelope
        }
        let claims = try ["c8", "c9"].map { id in
            try forged(["type": "claim.asserted", "id": id, "claim": id, "fact": "f1", "stance": "affirms", "statement": "Not said by inv."])
        }
        let sequences = try f.appendRaw([f.sign(added, as: "inv")] + claims)
        let found = try Verifier.verify(directory: f.directory).findings
        #expect(found.map(\.code) == [.malformedEvent, .unknownKey, .unknownKey], "\(found)")
        #expect(found.map(\.sequence) == sequences, "\(found)")
        #expect(found.first?.message.contains("is not a valid Ed25519 public key: it is a point of small order") == true, "\(found)")
    }

    @Test("a claim id of 64 hex digits is attested through the entry id of its statement; by the id itself, the refusal says why")
    func hexClaimID() throws {
        let f = try Fixture()
        try f.populate()
        let id = String(repeating: "ab", count: 32)
        let asserted = try f.append(["type": "claim.asserted", "id": "hc", "claim": id, "fact": "f1", "stance": "affirms", "statement": "s"], as: "inv")
        let byID: [String: Any] = ["type": "attestation.made", "id": "a9", "attestation": "a9", "target": id, "kind": "reviewed"]
        try expectRejected(f, [f.sign(byID, as: "rev")], .unknownReference, message: "is the id of a claim or evidence item, but a target of 64 hex digits names an entry")
        try f.append(["type": "attestation.made", "id": "a2", "attestation": "a2", "target": asserted.entryID.hexString, "kind": "reviewed"], as: "rev")
    }
}
