import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore
import Testing

/// Envelopes with two signatures, the first always good: only a check of every signature, not
/// just the first, refuses them, at append and in verification.
@Suite("Every signature of an envelope is checked, not only the first")
struct SeveralSignaturesTests {
    /// The ways a second signature can be wrong, each with the code it must give.
    enum SecondSignature: String, CaseIterable, CustomStringConvertible {
        case spoiled, byAnotherParty, byRevokedKey
        var description: String { rawValue }

        var code: LedgerError.Code {
            switch self {
            case .spoiled: .badSignature
            case .byAnotherParty: .keyOfAnotherParty
            case .byRevokedKey: .revokedKey
            }
        }
    }

    static let second = Fixture.key(42)

    /// A ledger where "inv" has a second key, revoked (at entry 6) for `.byRevokedKey`.
    static func fixture(_ kind: SecondSignature) throws -> Fixture {
        let f = try Fixture()
        try f.append(["type": "key.added", "id": "k-add", "party": "inv", "key": Base64.encode(second.publicKey.rawRepresentation)], as: "inv")
        if kind == .byRevokedKey {
            try f.append(["type": "key.revoked", "id": "k-rev", "party": "inv", "key": Base64.encode(second.publicKey.rawRepresentation), "reason": "r"], as: "inv")
        }
        return f
    }

    /// A statement by "inv" signed by its first key, then wrong in the second signature as `kind` says.
    static func envelope(_ f: Fixture, _ kind: SecondSignature) throws -> Envelope {
        var envelope = try f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv")
        try envelope.sign(with: kind == .byAnotherParty ? Fixture.key(5) : second)  // 5: "other"
        if kind == .spoiled { envelope.signatures[1].signature[10] ^= 1 }
        return envelope
    }

    /// What the message says of the second signature.
    static func message(_ kind: SecondSignature) -> String {
        let id = { (key: SigningKey) in key.publicKey.keyID.shortHex() }
        switch kind {
        case .spoiled: return "Signature 1 (key \(id(second))) does not verify over the statement \"o1\""
        case .byAnotherParty: return "signature 1 is by key \(id(Fixture.key(5))), registered to \"other\""
        case .byRevokedKey: return "signature 1 is by key \(id(second)) of \"inv\", revoked at entry 6"
        }
    }

    @Test("an envelope signed by two of the author's keys goes in, and both signatures are kept")
    func twoGoodSignatures() throws {
        let f = try Self.fixture(.spoiled)
        var envelope = try f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv")
        try envelope.sign(with: Self.second)
        let entry = try f.append([envelope])[0]
        #expect(try Ledger(directory: f.directory).record(at: entry.sequence).decoded().envelope.signatures.count == 2)
        let report = try Verifier.verify(directory: f.directory)
        #expect(report.isIntact && report.signatures == 8, "\(report.findings), \(report.signatures) signatures")
    }

    @Test("at append, a wrong second signature refuses the statement; without it, the statement goes in", arguments: SecondSignature.allCases)
    func atAppend(_ kind: SecondSignature) throws {
        let f = try Self.fixture(kind)
        var envelope = try Self.envelope(f, kind)
        try RejectionTests().expectRejected(f, [envelope], kind.code, message: Self.message(kind))
        envelope.signatures.removeLast()
        try f.append([envelope])
    }

    @Test("a bad signature by a key the same batch added is named, whatever the batch refuses after it")
    func keyAddedInTheBatch() throws {
        let f = try Fixture()
        let add = try f.sign(["type": "key.added", "id": "k-add", "party": "inv", "key": Base64.encode(Self.second.publicKey.rawRepresentation)], as: "inv")
        var spoiled = try f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv", key: Self.second)
        spoiled.signatures[0].signature[10] ^= 1
        let named = "Signature 0 (key \(Self.second.publicKey.keyID.shortHex())) does not verify over the statement \"o1\""
        // Alone after the key's addition, and with a statement after it that breaks a rule (the
        // key added again): both times the statement with the bad signature, named as such.
        try RejectionTests().expectRejected(f, [add, spoiled], .badSignature, message: "Statement 2 of 2 was refused, so none of the batch was appended. " + named)
        try RejectionTests().expectRejected(f, [add, spoiled, add], .badSignature, message: "Statement 2 of 3 was refused, so none of the batch was appended. " + named)
    }

    @Test("written into the log, a wrong second signature is a finding at its entry", arguments: SecondSignature.allCases)
    func inVerification(_ kind: SecondSignature) throws {
        let f = try Self.fixture(kind)
        let sequences = try f.appendRaw([Self.envelope(f, kind)])
        let found = try Verifier.verify(directory: f.directory).findings
        #expect(found.map(\.code) == [kind.code] && found.map(\.sequence) == sequences, "\(found)")
        #expect(found.first?.message.contains(kind == .spoiled ? "Signature 1 (key \(Self.second.publicKey.keyID.shortHex())) does not verify" : Self.message(kind)) == true, "\(found)")
    }
}
