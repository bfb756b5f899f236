import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore
import Testing

@Suite("Appending")
struct AppendTests {
    @Test("appends assign sequence numbers, chain entry ids and survive reopening")
    func appendAndReopen() throws {
        let f = try Fixture()
        try f.populate()
        let ledger = try Ledger(directory: f.directory)
        #expect(ledger.count == 10)
        var previous = Digest.zero
        for n in 0..<ledger.count {
            let stored = try ledger.record(at: n)
            let record = try stored.decoded()
            #expect(record.sequence == n)
            #expect(record.previous == previous)
            #expect(stored.entryID == SHA256.hash([0] + stored.bytes))
            previous = stored.entryID
        }
        #expect(ledger.lastEntryID == previous)
        #expect(try Verifier.verify(directory: f.directory).isIntact)
    }

    @Test("a group commit shares one acceptance time and batch end, and is all or nothing")
    func groupCommit() throws {
        let f = try Fixture()
        let good = try (1...3).map { try f.sign(["type": "fact.opened", "id": "o\($0)", "fact": "f\($0)", "proposition": "P\($0)"], as: "inv") }
        let before = try f.logBytes()
        let bad = try f.sign(["type": "finding.recorded", "id": "x", "finding": "x", "fact": "f1", "outcome": "inconclusive", "rationale": "r"], as: "sub")
        #expect(throws: LedgerError(.roleNotAllowed, "")) { try f.append(good + [bad]) }
        #expect(try f.logBytes() == before)
        let entries = try f.append(good)
        #expect(entries.map(\.sequence) == [5, 6, 7])
        let ledger = try Ledger(directory: f.directory)
        let records = try (5...7).map { try ledger.record(at: UInt64($0)).decoded() }
        #expect(records.allSatisfy { $0.batchEnd == 7 && $0.acceptedAt == records[0].acceptedAt })
    }

    @Test("a second writer waits for the lock, then fails with lock-timeout")
    func writerLock() throws {
        let f = try Fixture()
        let first = try f.writer()
        #expect(throws: LedgerError(.lockTimeout, "")) { try LedgerWriter(directory: f.directory, lockTimeout: 0.2) }
        _ = first
    }

    @Test("a writer whose lock file was deleted while it held it appends nothing, and the writer that took the new lock file keeps its entries")
    func deletedLockFile() throws {
        let f = try Fixture()
        let first = try f.writer()
        try FileManager.default.removeItem(atPath: f.directory + "/lock")
        let second = try LedgerWriter(directory: f.directory, lockTimeout: 0)
        try second.append([f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv")], acceptedAt: f.time())
        let log = try f.logBytes()
        let refusal = #expect(throws: LedgerError(.lockTimeout, "")) {
            try first.append([f.sign(["type": "fact.opened", "id": "o2", "fact": "f2", "proposition": "P"], as: "inv")], acceptedAt: f.time())
        }
        #expect(refusal?.message.contains("was deleted or replaced while this writer held it") == true, "\(String(describing: refusal))")
        #expect(try f.logBytes() == log)
        #expect(try Verifier.verify(directory: f.directory).isIntact)
    }

    @Test("a writer finding the log longer than it left it appends nothing and cuts nothing")
    func logWrittenByAnother() throws {
        let f = try Fixture()
        let writer = try f.writer()
        try f.writeLog(try f.logBytes() + Array("{\"seq\":".utf8))
        let log = try f.logBytes()
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) {
            try writer.append([f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv")], acceptedAt: f.time())
        }
        #expect(refusal?.message.contains("Something else wrote to it while this writer held the lock") == true, "\(String(describing: refusal))")
        #expect(try f.logBytes() == log)
    }

    @Test("an origin no checkpoint could carry is refused at creation, and nothing is created")
    func unusableOrigin() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-origin-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        for origin in ["", "a b", "a+b", "ex\u{1}ample.org/x", "ex\u{1B}[31mample", "a\u{2003}b", String(repeating: "x", count: 257)] {
            let refusal = #expect(throws: LedgerError(.usage, "")) {
                try LedgerWriter.create(directory: parent + "/l", origin: origin, adminKey: Fixture.key(1))
            }
            #expect(refusal?.message.contains("is not usable") == true, "\(String(describing: refusal))")
            #expect(!FileManager.default.fileExists(atPath: parent + "/l"))
        }
        // The longest and a non-ASCII one are fine, and the checkpoint can be signed.
        for origin in [String(repeating: "x", count: 256), "example.org/ledger-\u{E9}"] {
            try? FileManager.default.removeItem(atPath: parent + "/l")
            let writer = try LedgerWriter.create(directory: parent + "/l", origin: origin, adminKey: Fixture.key(1))
            let signed = try writer.signCheckpoint(with: Fixture.key(50))
            #expect(signed.note.text.hasPrefix(origin + "\n"), "\(signed.note.text)")
        }
    }

    @Test("acceptance times never go backwards: a usage error that says nothing was appended")
    func monotonicTime() throws {
        let f = try Fixture()
        let envelope = try f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv")
        let writer = try f.writer()
        let count = writer.ledger.count
        let error = #expect(throws: LedgerError(.timeWentBackwards, "")) {
            try writer.append([envelope], acceptedAt: Timestamp(seconds: 0))
        }
        #expect(error?.code.category == .usage)
        #expect(error?.message.contains("Nothing was appended") == true, "\(String(describing: error))")
        #expect(writer.ledger.count == count)
    }

    @Test("the index is rebuilt from the log when it is deleted or damaged")
    func indexRebuild() throws {
        let f = try Fixture()
        try f.populate()
        let index = f.directory + "/index"
        let original = try Data(contentsOf: URL(fileURLWithPath: index))
        try FileManager.default.removeItem(atPath: index)
        #expect(try Ledger(directory: f.directory).report.indexRebuilt)
        #expect(try Ledger(directory: f.directory).count == 10)
        _ = try f.writer()
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == original)
        // A damaged offset: a cache fault, rebuilt by the next writer.
        var damaged = original
        damaged[damaged.count - 16 + 7] ^= 0xff
        try damaged.write(to: URL(fileURLWithPath: index))
        _ = try f.writer()
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == original)
        // A different entry id for a record found where it was written: evidence, not a cache
        // fault. Writers refuse, and repair will not rebuild over it, until an operator decides
        // the index is what is wrong and moves it aside.
        damaged = original
        damaged[damaged.count - 1] ^= 0xff
        try damaged.write(to: URL(fileURLWithPath: index))
        let writerRefusal = #expect(throws: LedgerError.self) { try f.writer() }
        #expect(writerRefusal?.code == .damagedLog && writerRefusal?.message.contains("recorded entry 9 as another record") == true, "\(String(describing: writerRefusal))")
        let refusal = #expect(throws: LedgerError.self) { try Repair.rebuildDerived(directory: f.directory) }
        #expect(refusal?.code == .damagedLog && refusal?.message.contains("for entry 9 when it was written") == true, "\(String(describing: refusal))")
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == damaged)
        try FileManager.default.moveItem(atPath: index, toPath: f.root.appendingPathComponent("index.kept").path)
        _ = try Repair.rebuildDerived(directory: f.directory)
        #expect(try Data(contentsOf: URL(fileURLWithPath: index)) == original)
    }
}

@Suite("Rejections leave the log byte-identical")
struct RejectionTests {
    /// Appends `envelope`, expects `code` (and a message containing `message`, if given), and
    /// checks the log is unchanged.
    func expectRejected(
        _ f: Fixture, _ envelopes: [Envelope], _ code: LedgerError.Code, message: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let before = try f.logBytes()
        do {
            try f.append(envelopes)
            Issue.record("expected \(code.name), but the append succeeded", sourceLocation: sourceLocation)
        } catch let error as LedgerError {
            #expect(error.code == code, "got \(error.code.name): \(error.message)", sourceLocation: sourceLocation)
            #expect(!error.message.isEmpty, sourceLocation: sourceLocation)
            if let message {
                #expect(error.message.contains(message), "\(error.message)", sourceLocation: sourceLocation)
            }
        }
        #expect(try f.logBytes() == before, "the log changed", sourceLocation: sourceLocation)
        #expect(try Verifier.verify(directory: f.directory).isIntact, sourceLocation: sourceLocation)
    }

    @Test("in a group commit of 300, checked in order: the first refusal is the reason, a bad signature or a broken rule", arguments: [(200, 250), (250, 200), (5, 290), (290, 5)])
    func firstRefusalInOrder(badSignature: Int, brokenRule: Int) throws {
        let f = try Fixture()
        var envelopes = try (0..<300).map { try fact(f, id: "g\($0)") }
        envelopes[badSignature].signatures[0].signature[3] ^= 1
        envelopes[brokenRule] = try fact(f, id: "g\(brokenRule - 1)")  // reuses the fact id just before it
        let before = try f.logBytes()
        do {
            try f.append(envelopes)
            Issue.record("the batch was appended")
        } catch let error as LedgerError {
            let first = min(badSignature, brokenRule)
            #expect(error.code == (first == badSignature ? .badSignature : .duplicateID), "\(error.code.name): \(error.message)")
            #expect(error.message.hasPrefix("Statement \(first + 1) of 300 was refused"), "\(error.message)")
        }
        #expect(try f.logBytes() == before)
        // Without either, the same statements go in.
        envelopes[badSignature] = try fact(f, id: "g\(badSignature)")
        envelopes[brokenRule] = try fact(f, id: "g\(brokenRule)")
        #expect(try f.append(envelopes).count == 300)
    }

    func fact(_ f: Fixture, id: String = "o1", as party: String = "inv", key: SigningKey? = nil) throws -> Envelope {
        try f.sign(["type": "fact.opened", "id": id, "fact": "fact-\(id)", "proposition": "P"], as: party, key: key)
    }

    @Test("a signature that does not verify")
    func badSignature() throws {
        let f = try Fixture()
        var envelope = try fact(f)
        envelope.signatures[0].signature[10] ^= 1
        try expectRejected(f, [envelope], .badSignature)
        // A payload changed after signing that is still a valid event ("P" becomes "Q").
        var payloadChanged = try fact(f)
        let at = try #require(payloadChanged.payload.firstRange(of: Array("\"P\"".utf8))).lowerBound + 1
        payloadChanged.payload[at] = UInt8(ascii: "Q")
        try expectRejected(f, [payloadChanged], .badSignature)
    }

    @Test("a signature copied from another entry, and one with a non-canonical S (S + L)")
    func copiedAndMalleableSignatures() throws {
        let f = try Fixture()
        let first = try fact(f, id: "o1")
        try f.append([first])
        var copied = try fact(f, id: "o2")
        copied.signatures[0].signature = first.signatures[0].signature
        try expectRejected(f, [copied], .badSignature)
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
        let order: [UInt8] = [0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14] + [UInt8](repeating: 0, count: 15) + [0x10]
        var malleable = try fact(f, id: "o3")
        var carry = 0
        for i in 0..<32 {
            let sum = Int(malleable.signatures[0].signature[32 + i]) + Int(order[i]) + carry
            malleable.signatures[0].signature[32 + i] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        try expectRejected(f, [malleable], .badSignature)
    }

    @Test("keys of the wrong length in a registration")
    func wrongKeyLength() throws {
        let f = try Fixture()
        for length in [31, 33, 0] {
            let event: [String: Any] = ["type": "party.registered", "id": "reg-x\(length)", "party": "x\(length)", "name": "X", "role": "subject", "keys": [Base64.encode([UInt8](repeating: 1, count: length))]]
            try expectRejected(f, [f.sign(event, as: "admin")], .malformedEvent)
        }
    }

    @Test("a key the ledger does not know")
    func unknownKey() throws {
        let f = try Fixture()
        try expectRejected(f, [fact(f, key: Fixture.key(99))], .unknownKey)
    }

    @Test("a key registered to another party")
    func keyOfAnotherParty() throws {
        let f = try Fixture()
        try expectRejected(f, [fact(f, as: "inv", key: f.keys["other"])], .keyOfAnotherParty)
    }

    @Test("a revoked key is refused after its revocation; earlier entries it signed stay valid, and one sent again is a duplicate statement")
    func revokedKey() throws {
        let f = try Fixture()
        let before = try fact(f, id: "before")
        try f.append([before])
        let newKey = Fixture.key(42)
        try f.append(["type": "key.added", "id": "k-add", "party": "inv", "key": Base64.encode(newKey.publicKey.rawRepresentation)], as: "inv")
        try f.append(["type": "key.revoked", "id": "k-rev", "party": "inv", "key": Base64.encode(Fixture.key(2).publicKey.rawRepresentation), "reason": "laptop lost"], as: "inv")
        try expectRejected(f, [fact(f, id: "after")], .revokedKey)
        // Sent again after its key was revoked, a statement already in the ledger is said to be.
        try expectRejected(f, [before], .duplicateStatement)
        try f.append([fact(f, id: "after", key: newKey)])
        #expect(try Verifier.verify(directory: f.directory).isIntact)
    }

    @Test("the last unrevoked key of an admin party cannot be revoked; once another admin key exists, it can")
    func lastAdminKey() throws {
        let f = try Fixture()
        let adminKey = Base64.encode(Fixture.key(1).publicKey.rawRepresentation)
        let revoke = try f.sign(["type": "key.revoked", "id": "admin-off", "party": "admin", "key": adminKey, "reason": "rotated"], as: "admin")
        let refusal = #expect(throws: LedgerError(.invalidEvent, "")) { try f.append([revoke]) }
        #expect(refusal?.message.contains("last unrevoked key of an admin party") == true, "\(String(describing: refusal))")
        let second = Fixture.key(43)
        try f.append(["type": "key.added", "id": "admin-new", "party": "admin", "key": Base64.encode(second.publicKey.rawRepresentation)], as: "admin")
        try f.append([revoke])
        #expect(try Verifier.verify(directory: f.directory).isIntact)
    }

    @Test("a role that may not emit the type: a subject recording a finding")
    func wrongRole() throws {
        let f = try Fixture()
        try f.populate()
        let finding = try f.sign(["type": "finding.recorded", "id": "fd1", "finding": "fd1", "fact": "f1", "outcome": "substantiated", "rationale": "r"], as: "sub")
        try expectRejected(f, [finding], .roleNotAllowed)
        let evidence = try f.sign(["type": "evidence.attached", "id": "e9", "evidence": "e9", "sha256": Digest.zero.hexString, "size": 1, "media_type": "x/y", "title": "t"], as: "sub")
        try expectRejected(f, [evidence], .roleNotAllowed)
    }

    @Test("only a claim's author may amend or retract it")
    func notTheAuthor() throws {
        let f = try Fixture()
        try f.populate()
        try expectRejected(f, [f.sign(["type": "claim.retracted", "id": "r1", "claim": "c1", "reason": "x"], as: "inv")], .notTheAuthor)
        try expectRejected(f, [f.sign(["type": "claim.amended", "id": "m1", "claim": "c1", "statement": "x"], as: "rev")], .notTheAuthor)
    }

    @Test("references to an unknown fact, claim or evidence")
    func unknownReferences() throws {
        let f = try Fixture()
        try f.populate()
        try expectRejected(f, [f.sign(["type": "claim.asserted", "id": "c9", "claim": "c9", "fact": "nope", "stance": "affirms", "statement": "s"], as: "inv")], .unknownReference)
        try expectRejected(f, [f.sign(["type": "claim.countered", "id": "c9", "claim": "c9", "counters": "nope", "fact": "f1", "stance": "affirms", "statement": "s"], as: "inv")], .unknownReference)
        try expectRejected(f, [f.sign(["type": "custody.recorded", "id": "cu", "evidence": "nope", "action": "copied"], as: "inv")], .unknownReference)
        try expectRejected(f, [f.sign(["type": "attestation.made", "id": "a9", "attestation": "a9", "target": Digest.zero.hexString, "kind": "reviewed"], as: "rev")], .unknownReference)
    }

    @Test("duplicate ids: statement id, fact id, claim id, a claim id that is an evidence id and the reverse")
    func duplicateIDs() throws {
        let f = try Fixture()
        try f.populate()
        try expectRejected(f, [f.sign(["type": "fact.opened", "id": "open-f1", "fact": "f-new", "proposition": "P"], as: "rev")], .duplicateID)
        try expectRejected(f, [f.sign(["type": "fact.opened", "id": "new", "fact": "f1", "proposition": "P"], as: "rev")], .duplicateID)
        try expectRejected(
            f, [f.sign(["type": "claim.asserted", "id": "new", "claim": "c1", "fact": "f1", "stance": "affirms", "statement": "s"], as: "rev")], .duplicateID,
            message: "The claim id \"c1\" is already used, by a claim of \"sub\" on fact \"f1\"")
        // Claim and evidence ids share one space: an attestation names either by its id alone.
        try expectRejected(f, [f.sign(["type": "claim.asserted", "id": "new", "claim": "e1", "fact": "f1", "stance": "affirms", "statement": "s"], as: "rev")], .duplicateID)
        try expectRejected(f, [f.sign(["type": "claim.countered", "id": "new", "claim": "e1", "counters": "c1", "fact": "f1", "stance": "denies", "statement": "s"], as: "rev")], .duplicateID)
        try expectRejected(f, [f.sign(["type": "evidence.attached", "id": "new", "evidence": "c1", "sha256": SHA256.hash(Array("x".utf8)).hexString, "size": 1, "media_type": "text/plain", "title": "T"], as: "inv")], .duplicateID)
    }

    @Test("the same envelope twice, also re-encoded: other whitespace, member order, URL-safe unpadded base64")
    func sameEnvelopeTwice() throws {
        let f = try Fixture()
        let envelope = try fact(f)
        try f.append([envelope])
        try expectRejected(f, [envelope], .duplicateStatement)
        let payload = Base64.encode(envelope.payload)
        let urlSafe = payload.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        let sig = Base64.encode(envelope.signatures[0].signature)
        let reencoded = """
            {
              "signatures" : [ { "sig" : "\(sig)", "keyid" : "\(envelope.signatures[0].keyID.hexString)" } ],
              "payload" : "\(urlSafe)",
              "payloadType" : "\(Envelope.eventPayloadType)"
            }
            """
        let parsed = try Envelope(jsonText: Array(reencoded.utf8))
        #expect(parsed == envelope)
        try expectRejected(f, [parsed], .duplicateStatement)
        // Twice within one batch.
        let other = try fact(f, id: "o2")
        try expectRejected(f, [other, other], .duplicateStatement)
    }

    @Test("base64 with non-zero unused bits is refused, not silently accepted as another text for the same bytes")
    func malleableBase64() throws {
        let f = try Fixture()
        let envelope = try fact(f)
        let sig = Base64.encode(envelope.signatures[0].signature)
        // 64 bytes encode to 86 characters and "=="; the last character carries 4 unused bits.
        var chars = Array(sig)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let value = alphabet.firstIndex(of: chars[85]) ?? 0
        chars[85] = alphabet[value | 1]
        let text = String(decoding: envelope.jsonBytes, as: UTF8.self).replacingOccurrences(of: sig, with: String(chars))
        #expect(throws: LedgerError(.malformedEnvelope, "")) { try Envelope(jsonText: Array(text.utf8)) }
    }

    @Test("malformed envelopes: JSON, base64, UTF-8, payload type, signature length, a key's signature twice")
    func malformedEnvelopes() throws {
        let f = try Fixture()
        let envelope = try fact(f)
        let text = String(decoding: envelope.jsonBytes, as: UTF8.self)
        let cases: [(String, [UInt8])] = [
            ("truncated JSON", Array(text.utf8.dropLast())),
            ("trailing garbage", Array((text + "x").utf8)),
            ("invalid UTF-8", Array(text.utf8.dropLast(2)) + [0xff, 0x22, 0x7d]),
            ("bad base64", Array(text.replacingOccurrences(of: "\"payload\":\"", with: "\"payload\":\"*").utf8)),
            ("other payload type", Array(text.replacingOccurrences(of: Envelope.eventPayloadType, with: "application/json").utf8)),
            ("duplicate key", Array(text.replacingOccurrences(of: "{\"payloadType\"", with: "{\"payload\":\"\",\"payloadType\"").utf8)),
            ("short signature", Array(text.replacingOccurrences(of: Base64.encode(envelope.signatures[0].signature), with: Base64.encode(envelope.signatures[0].signature.prefix(63))).utf8)),
            ("one key's signature twice", Array(Envelope(payload: envelope.payload, signatures: envelope.signatures + envelope.signatures).jsonBytes)),
        ]
        for (name, bytes) in cases {
            #expect(throws: LedgerError(.malformedEnvelope, ""), "\(name)") { try Envelope(jsonText: bytes) }
        }
        // A payload that is not valid event JSON, correctly signed, is refused at append.
        for payload in ["{\"a\":1,\"a\":2}", "{\"v\":1} x", "\u{7b}\"v\":1,\"type\":\"fact.opened\",\"id\":\"\u{00e9}\"}"] {
            var bad = Envelope(payload: Array(payload.utf8), signatures: [])
            try bad.sign(with: f.keys["inv"]!)
            try expectRejected(f, [bad], .malformedEvent)
        }
        var nonUTF8 = Envelope(payload: [0x7b, 0x22, 0xc3, 0x28, 0x22, 0x3a, 0x31, 0x7d], signatures: [])
        try nonUTF8.sign(with: f.keys["inv"]!)
        try expectRejected(f, [nonUTF8], .malformedEvent)
    }

    @Test("an oversized payload")
    func oversized() throws {
        let f = try Fixture()
        let big = try f.sign(["type": "fact.opened", "id": "big", "fact": "big", "proposition": String(repeating: "x", count: 70_000)], as: "inv")
        #expect(throws: LedgerError(.tooLarge, "")) { try Envelope(jsonText: big.jsonBytes) }
        let long = try f.sign(["type": "fact.opened", "id": "long", "fact": "long", "proposition": String(repeating: "x", count: 20_000)], as: "inv")
        try expectRejected(f, [long], .malformedEvent)
    }

    @Test("an event type outside the vocabulary, and ids that look like paths")
    func vocabulary() throws {
        let f = try Fixture()
        try expectRejected(f, [f.sign(["type": "claim.deleted", "id": "d1"], as: "inv")], .unknownEventType)
        try expectRejected(f, [f.sign(["type": "fact.opened", "id": "../x", "fact": "f", "proposition": "P"], as: "inv")], .malformedEvent)
        try expectRejected(f, [f.sign(["type": "fact.opened", "id": "x", "fact": "a/b", "proposition": "P"], as: "inv")], .malformedEvent)
        try expectRejected(f, [f.sign(["type": "fact.opened", "id": "x", "fact": "f", "proposition": "P", "extra": "field"], as: "inv")], .malformedEvent)
    }
}

@Suite("Rules that depend on time and state")
struct TimeAndStateRuleTests {
    @Test("a statement signed after the ledger accepted it (beyond the allowed skew) is refused")
    func signedInTheFuture() throws {
        let f = try Fixture()
        let accepted = f.time()
        let late = Timestamp(seconds: accepted.seconds + LedgerState.allowedClockSkew + 1)
        let envelope = try f.sign(["type": "fact.opened", "id": "o1", "fact": "f1", "proposition": "P"], as: "inv", time: late)
        let before = try f.logBytes()
        let refusal = #expect(throws: LedgerError(.invalidEvent, "")) { try f.writer().append([envelope], acceptedAt: accepted) }
        #expect(refusal?.message.contains("after the ledger accepted it") == true, "\(refusal?.message ?? "")")
        #expect(try f.logBytes() == before)
        let withinSkew = try f.sign(["type": "fact.opened", "id": "o2", "fact": "f2", "proposition": "P"], as: "inv", time: Timestamp(seconds: accepted.seconds + 60))
        try f.writer().append([withinSkew], acceptedAt: accepted)
    }

    @Test("an attestation naming an entry id in capitals is refused; in lowercase it is accepted")
    func entryIDSpelling() throws {
        let f = try Fixture()
        let entry = try Ledger(directory: f.directory).entryID(at: 1).hexString
        let refusal = #expect(throws: LedgerError(.malformedEvent, "")) {
            try f.append(["type": "attestation.made", "id": "a1", "attestation": "a1", "target": entry.uppercased(), "kind": "reviewed"], as: "rev")
        }
        #expect(refusal?.message.contains("in capitals") == true, "\(refusal?.message ?? "")")
        try f.append(["type": "attestation.made", "id": "a1", "attestation": "a1", "target": entry, "kind": "reviewed"], as: "rev")
    }

    @Test("evidence may not support or contradict a retracted claim")
    func evidenceOnRetractedClaim() throws {
        let f = try Fixture()
        try f.populate()
        try f.append(["type": "claim.retracted", "id": "r1", "claim": "c1", "reason": "withdrawn"], as: "sub")
        let refusal = #expect(throws: LedgerError(.invalidEvent, "")) {
            try f.append(["type": "evidence.attached", "id": "e2", "evidence": "e2", "sha256": Digest.zero.hexString, "size": 1, "media_type": "x/y", "title": "t", "contradicts": ["c1"]], as: "inv")
        }
        #expect(refusal?.message.contains("refers to claim \"c1\", retracted at entry") == true, "\(refusal?.message ?? "")")
    }
}

@Suite("Verification notes")
struct VerificationNoteTests {
    @Test("missing evidence blobs: the first ten are named, the rest counted in one note")
    func missingBlobs() throws {
        let f = try Fixture()
        try f.populate()
        try f.append((2...13).map { i in
            try f.sign([
                "type": "evidence.attached", "id": "e\(i)", "evidence": "e\(i)", "sha256": SHA256.hash(Array("doc \(i)".utf8)).hexString,
                "size": 5, "media_type": "text/plain", "title": "Document \(i)", "supports": ["c2"],
            ], as: "inv")
        })
        let notes = try Verifier.verify(directory: f.directory).notes.filter { $0.contains("not stored") }
        #expect(notes.count == 11, "\(notes)")
        #expect(notes.prefix(10).allSatisfy { $0.hasPrefix("Entry ") && $0.contains("ledger blob add") })
        #expect(notes.last == "3 more evidence blobs are not stored (13 in all); `ledger blob check \(f.directory)` lists every one.")
    }
}

@Suite("Reading a file in chunks")
struct ChunkedReadTests {
    @Test("chunks cover exactly the range asked for, whatever the chunk size; a file that ends first is named with where it ends")
    func chunks() throws {
        let file = try FileDescriptor.anonymous(in: FileManager.default.temporaryDirectory.path, prefix: "ledger-chunk-test")
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try file.write(bytes, at: 0)
        for (offset, count, chunk) in [(0, 1000, 1 << 20), (3, 997, 40), (100, 0, 8), (999, 1, 1), (1, 998, 997)] {
            var seen: [UInt8] = []
            var sizes: [Int] = []
            try file.forEachChunk(from: offset, count: count, chunk: chunk) { (raw) throws(LedgerError) in
                seen += raw
                sizes.append(raw.count)
            }
            #expect(seen == Array(bytes[offset..<(offset + count)]), "\(offset) \(count) \(chunk)")
            #expect(sizes.dropLast().allSatisfy { $0 == chunk } && sizes.allSatisfy { $0 > 0 }, "\(sizes)")
        }
        let cut = #expect(throws: LedgerError(.io, "")) { try file.forEachChunk(from: 990, count: 20, chunk: 4) { _ in } }
        #expect(cut?.message.hasPrefix("\(file.path) ends at byte 1000, before byte 1010") == true, "\(cut?.message ?? "")")
    }
}
