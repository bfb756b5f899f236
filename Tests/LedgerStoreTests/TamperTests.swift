import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore
import Testing

@Suite("Tampering is found at the right sequence number")
struct TamperTests {
    func findings(_ f: Fixture) throws -> [VerificationReport.Finding] {
        let report = try Verifier.verify(directory: f.directory)
        #expect(!report.isIntact)
        return report.findings
    }

    /// Record `sequence` of `lines` with one letter of its statement changed, so that it is still
    /// a valid event of the same length whose signature no longer verifies.
    func changingOneLetter(of lines: [[UInt8]], at sequence: Int) throws -> [UInt8] {
        let record = try Record(stored: lines[sequence])
        var envelope = record.envelope
        let at = try #require(envelope.payload.firstRange(of: Array("\"statement\":\"It".utf8))).upperBound - 2
        envelope.payload[at] = UInt8(ascii: "A")
        _ = try Event(payload: envelope.payload)
        return Record(sequence: record.sequence, previous: record.previous, acceptedAt: record.acceptedAt, batchEnd: record.batchEnd, envelope: envelope).encoded()
    }

    @Test("a changed letter in the statement of a middle record is a bad signature at that record")
    func changedPayload() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        lines[6] = try changingOneLetter(of: lines, at: 6)
        try f.writeLines(lines)
        let found = try findings(f)
        #expect(found.first?.sequence == 6)
        #expect(found.contains { $0.sequence == 6 && $0.code == .badSignature }, "\(found)")
        #expect(found.contains { $0.sequence == 7 && $0.message.contains("Expected previous entry id") })
    }

    /// A record of an event type this version does not know: its rules cannot be checked, so the
    /// ledger is never intact; its signature can, so a forged one is found as for any statement.
    @Test("a record of an unknown event type is a finding, and its signature is checked all the same")
    func unknownEventType() throws {
        for forged in [false, true] {
            let f = try Fixture()
            try f.populate()
            var lines = try f.logLines()
            var envelope = try f.sign(["type": "claim.withdrawn", "id": "x1", "claim": "c1", "statement": "Withdrawn."], as: "inv")
            if forged { envelope.signatures[0].signature = [UInt8](repeating: 0, count: 64) }
            let previous = try Record(stored: lines[lines.count - 1])
            let sequence = previous.sequence + 1
            lines.append(
                Record(sequence: sequence, previous: Record.entryID(of: lines[lines.count - 1]), acceptedAt: previous.acceptedAt, batchEnd: sequence, envelope: envelope)
                    .encoded())
            try f.writeLines(lines)
            try Fixture.rebuildDerivedOverForgery(f.directory)
            let found = try findings(f)
            #expect(found.map(\.code) == (forged ? [.unknownEventType, .badSignature] : [.unknownEventType]), "forged \(forged): \(found)")
            #expect(found.allSatisfy { $0.sequence == sequence })
        }
    }

    /// What the rules refuse at append, written straight into the log: the ledger's own key
    /// checks must find it, and must not honour the key it adds.
    @Test("a key.added by an investigator for another party is role-not-allowed at its entry, and what the key then signs is by an unknown key")
    func forgedKeyRecord() throws {
        let f = try Fixture()
        try f.populate()
        let forger = Fixture.key(42)
        let forged = try f.sign(["type": "key.added", "id": "k-forged", "party": "other", "key": Base64.encode(forger.publicKey.rawRepresentation)], as: "inv")
        let claim = try f.sign(["type": "claim.asserted", "id": "c9", "claim": "c9", "fact": "f1", "stance": "affirms", "statement": "Forged."], as: "other", key: forger)
        let sequences = try f.appendRaw([forged, claim])
        let found = try findings(f)
        #expect(found.map(\.code) == [.roleNotAllowed, .unknownKey], "\(found)")
        #expect(found.map(\.sequence) == sequences, "\(found)")
        #expect(found.first?.message.contains("Only \"other\" itself or an admin may change its keys, not \"inv\"") == true, "\(found)")
        #expect(found.last?.message.contains("signature 0 is by key \(forger.publicKey.keyID.shortHex()), which is not registered") == true, "\(found)")
    }

    /// The index and the tree rebuilt from the forged log agree with it, and so does every link:
    /// only the signature check can tell.
    @Test("a changed statement in the last record, its derived files rebuilt, is found by its signature alone")
    func changedPayloadDerivedFilesRebuilt() throws {
        let f = try Fixture()
        try f.populate()
        try f.append(["type": "claim.asserted", "id": "c3", "claim": "c3", "fact": "f1", "stance": "qualifies", "statement": "It was deployed once."], as: "sub")
        var lines = try f.logLines()
        let last = lines.count - 1
        lines[last] = try changingOneLetter(of: lines, at: last)
        try f.writeLines(lines)
        try Fixture.rebuildDerivedOverForgery(f.directory)
        let found = try findings(f)
        #expect(found.map(\.code) == [.badSignature], "\(found)")
        #expect(found.first?.sequence == UInt64(last))
    }

    @Test("a flipped byte anywhere in a middle record's bytes is reported at that record or the next link")
    func flipAnyByte() throws {
        let f = try Fixture()
        try f.populate()
        let original = try f.logLines()
        for position in stride(from: 0, to: original[6].count, by: 7) {
            var lines = original
            lines[6][position] ^= 0x04
            if lines[6][position] == 0x0a { continue }
            try f.writeLines(lines)
            let found = try findings(f)
            #expect(found.first?.sequence == 6, "byte \(position): \(found)")
            #expect(found.contains { $0.sequence == 7 }, "byte \(position): the next record's link must break")
        }
    }

    @Test("a deleted record")
    func deleteRecord() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        lines.remove(at: 5)
        try f.writeLines(lines)
        let found = try findings(f)
        #expect(found.first?.sequence == 5)
        #expect(found.first?.message.contains("Expected sequence 5, found 6") == true)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try LedgerWriter(directory: f.directory) }
        #expect(refusal?.message.contains("a complete record with sequence 6 stands where entry 5 should") == true, "\(refusal?.message ?? "")")
    }

    @Test("two records swapped")
    func swapRecords() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        lines.swapAt(6, 7)
        try f.writeLines(lines)
        let found = try findings(f)
        #expect(found.first?.sequence == 6)
        #expect(found.contains { $0.sequence == 6 && $0.message.contains("Expected sequence 6, found 7") })
        #expect(found.contains { $0.sequence == 7 && $0.message.contains("Expected sequence 7, found 6") })
    }

    @Test("a copy of an earlier record appended at the end is found, and blocks appends")
    func appendedCopy() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        lines.append(lines[3])
        try f.writeLines(lines)
        let found = try findings(f)
        #expect(found.first?.sequence == 10)
        #expect(found.first?.message.contains("Expected sequence 10, found 3") == true)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try LedgerWriter(directory: f.directory) }
        #expect(refusal?.message.contains("a complete record with sequence 3 stands where entry 10 should") == true, "\(refusal?.message ?? "")")
        let reader = #expect(throws: LedgerError(.damagedLog, "")) { try Ledger(directory: f.directory) }
        #expect(reader?.message.contains("a complete record with sequence 3 stands where entry 10 should") == true, "\(reader?.message ?? "")")
    }

    @Test("an acknowledged record cut mid-way is damage: verify reports it, writers refuse and change nothing")
    func truncatedAcknowledgedRecord() throws {
        let f = try Fixture()
        try f.populate()
        let full = try f.logBytes()
        let lines = try f.logLines()
        let lastStart = full.count - lines[9].count - 1
        for cut in [1, lines[9].count / 2, lines[9].count] {
            try f.writeLog(Array(full[..<(lastStart + cut)]))
            let found = try findings(f)
            #expect(found.first?.sequence == 9, "cut \(cut)")
            #expect(found.contains { $0.message.contains("were acknowledged and are gone") }, "cut \(cut)")
            let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
            #expect(refusal?.message.contains("entries 9…9 were acknowledged and are gone") == true, "cut \(cut): \(refusal?.message ?? "")")
            #expect(try f.logBytes() == Array(full[..<(lastStart + cut)]), "a refused writer changed the log")
            try f.writeLog(full)
        }
    }

    @Test("a record torn by a crash (never acknowledged) is a torn tail: verify reports it, the next writer cuts it and says so")
    func tornTail() throws {
        let f = try Fixture()
        try f.populate()
        let full = try f.logBytes()
        let index = try Data(contentsOf: URL(fileURLWithPath: f.directory + "/index"))
        let lines = try f.logLines()
        let lastStart = full.count - lines[9].count - 1
        for cut in [1, lines[9].count / 2, lines[9].count] {
            try f.simulateCrash(log: Array(full[..<(lastStart + cut)]), committed: 9)
            let found = try findings(f)
            #expect(found.count == 1 && found[0].sequence == 9, "cut \(cut)")
            let reader = try Ledger(directory: f.directory)
            #expect(reader.count == 9)
            #expect(reader.report.tornBytes == UInt64(cut))
            let writer = try f.writer()
            #expect(writer.ledger.report.cut)
            #expect(writer.ledger.report.messages.first?.contains("Recovered from an interrupted write") == true)
            #expect(try f.logBytes() == Array(full[..<lastStart]))
            #expect(try Verifier.verify(directory: f.directory).isIntact)
            try f.writeLog(full)
            try index.write(to: URL(fileURLWithPath: f.directory + "/index"))
        }
    }

    @Test("the last record changed in place (its acceptance time, which no signature covers) is caught by the index and tree")
    func lastRecordRewritten() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        let text = String(decoding: lines[9], as: UTF8.self)
        let time = try #require(text.range(of: "\"accepted_at\":\"")).upperBound
        var changed = text
        changed.replaceSubrange(time..<changed.index(time, offsetBy: 4), with: "2030")
        lines[9] = Array(changed.utf8)
        try f.writeLines(lines)
        let found = try findings(f)
        #expect(found.contains { $0.sequence == 9 && $0.message.contains("changed after it was written") })
        let before = try f.logBytes()
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        #expect(refusal?.message.contains("recorded entry 9 as another record") == true, "\(refusal?.message ?? "")")
        #expect(try f.logBytes() == before)
    }

    @Test("a record changed in place past the first few thousand is caught by the index as well")
    func laterRecordRewritten() throws {
        let f = try Fixture()
        try f.populate()
        for batch in 0..<5 {
            try f.append(try (0..<1000).map { try f.sign(["type": "fact.opened", "id": "o\(batch)-\($0)", "fact": "f\(batch)-\($0)", "proposition": "P"], as: "inv") })
        }
        var lines = try f.logLines()
        let last = lines.count - 1
        let text = String(decoding: lines[last], as: UTF8.self)
        let time = try #require(text.range(of: "\"accepted_at\":\"")).upperBound
        var changed = text
        changed.replaceSubrange(time..<changed.index(time, offsetBy: 4), with: "2030")
        lines[last] = Array(changed.utf8)
        try f.writeLines(lines)
        let found = try findings(f)
        // Both caches tell: the index (read ahead many entries at a time) and the tree.
        #expect(found.contains { $0.sequence == UInt64(last) && $0.message.hasPrefix("The index recorded entry id") }, "\(found)")
        #expect(found.contains { $0.sequence == UInt64(last) && $0.message.hasPrefix("The Merkle tree recorded entry id") }, "\(found)")
    }

    @Test("an unfinished group commit is cut back to its start")
    func unfinishedBatch() throws {
        let f = try Fixture()
        let before = try f.logBytes()
        try f.append(try (1...3).map { try f.sign(["type": "fact.opened", "id": "o\($0)", "fact": "f\($0)", "proposition": "P"], as: "inv") })
        let lines = try f.logLines()
        // Two whole records of the three-record group commit reached the disk; it never
        // completed, so nothing derived was written for it.
        try f.simulateCrash(log: lines.dropLast().flatMap { $0 + [0x0a] }, committed: 5)
        let writer = try f.writer()
        #expect(writer.ledger.report.tornRecords == 2)
        #expect(try f.logBytes() == before)
    }
}
