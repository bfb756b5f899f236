import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore
import Testing

@Suite("Incremental verification from a saved rule state")
struct SavedStateTests {
    static let logKey = Fixture.key(77)

    static func verifier() throws -> CheckpointVerifier {
        try CheckpointVerifier(origin: "test.example/ledger", log: NoteVerifier(name: "test.example/ledger", publicKey: logKey.publicKey))
    }

    /// A ledger with a retracted claim and a revoked key before its first checkpoint (returned),
    /// valid entries that use the old ids after it, and a second checkpoint.
    static func ledger() throws -> (fixture: Fixture, trusted: [UInt8], newest: [UInt8]) {
        let f = try Fixture()
        try f.populate()
        try f.append(["type": "claim.asserted", "id": "c3", "claim": "c3", "fact": "f1", "stance": "qualifies", "statement": "Partly."], as: "inv")
        try f.append(["type": "claim.retracted", "id": "r3", "claim": "c3", "reason": "Mistaken."], as: "inv")
        let spare = Fixture.key(6)
        try f.append(["type": "key.added", "id": "k6", "party": "inv", "key": Base64.encode(spare.publicKey.rawRepresentation)], as: "inv")
        try f.append(["type": "key.revoked", "id": "k6-off", "party": "inv", "key": Base64.encode(spare.publicKey.rawRepresentation)], as: "inv")
        let trusted = try f.writer().signCheckpoint(with: logKey).note.encoded
        let oldEntry = try Ledger(directory: f.directory).entryID(at: 6).hexString
        try f.append(["type": "claim.countered", "id": "c4", "claim": "c4", "counters": "c2", "fact": "f1", "stance": "denies", "statement": "Not so."], as: "sub")
        try f.append(["type": "claim.amended", "id": "c1-a", "claim": "c1", "statement": "It was never deployed there."], as: "sub")
        try f.append(["type": "attestation.made", "id": "a2", "attestation": "a2", "target": oldEntry, "kind": "reviewed"], as: "rev")
        try f.append(["type": "finding.recorded", "id": "fd1", "finding": "fd1", "fact": "f1", "outcome": "inconclusive", "rationale": "Open.", "relies_on": ["e1"]], as: "rev")
        let newest = try f.writer().signCheckpoint(with: logKey).note.encoded
        return (f, Array(trusted.utf8), Array(newest.utf8))
    }

    /// Appends records that break the rules against entries before the trusted checkpoint,
    /// bypassing the writer (as a dishonest operator could).
    static func appendRuleBreakers(_ f: Fixture) throws {
        let bad = [
            try f.sign(["type": "fact.opened", "id": "c1", "fact": "f9", "proposition": "P"], as: "inv"),  // statement id of entry 6
            try f.sign(["type": "fact.opened", "id": "o2", "fact": "f1", "proposition": "P"], as: "inv"),  // fact id in use
            try f.sign(["type": "claim.amended", "id": "x1", "claim": "c1", "statement": "Mine now."], as: "inv"),  // not the author
            try f.sign(["type": "claim.countered", "id": "x2", "claim": "c5", "counters": "c3", "fact": "f1", "stance": "denies", "statement": "S"], as: "sub"),  // retracted
            try f.sign(["type": "claim.asserted", "id": "x3", "claim": "c2", "fact": "f1", "stance": "denies", "statement": "S"], as: "sub"),  // claim id in use
            try f.sign(["type": "custody.recorded", "id": "x4", "evidence": "e9", "action": "moved"], as: "inv"),  // no such evidence
            try f.sign(["type": "attestation.made", "id": "x5", "attestation": "a1", "target": "e1", "kind": "reviewed"], as: "rev"),  // attestation id in use
            try f.sign(["type": "fact.opened", "id": "x6", "fact": "f8", "proposition": "P"], as: "inv", key: Fixture.key(6)),  // revoked key
            try f.sign(["type": "attestation.made", "id": "x7", "attestation": "a7", "target": String(repeating: "ab", count: 32), "kind": "reviewed"], as: "rev"),  // no such entry
            try f.sign(["type": "finding.recorded", "id": "x8", "finding": "fd1", "fact": "f1", "outcome": "inconclusive", "rationale": "R"], as: "rev"),  // finding id in use
            try f.sign(["type": "claim.asserted", "id": "x9", "claim": "c9", "fact": "f1", "stance": "affirms", "statement": "Valid."], as: "inv"),
        ]
        var lines = try f.logLines()
        for envelope in bad {
            let previous = try Record(stored: lines.last!)
            let sequence = previous.sequence + 1
            let record = Record(sequence: sequence, previous: Record.entryID(of: lines.last!), acceptedAt: f.time(), batchEnd: sequence, envelope: envelope)
            lines.append(record.encoded())
        }
        try f.writeLines(lines)
    }

    @Test("with the saved state, verify --since finds exactly what it finds rebuilding the state from genesis")
    func sameFindings() throws {
        let (f, trusted, _) = try Self.ledger()
        let path = f.root.appendingPathComponent("rules.state").path
        let trustedSize = try Self.verifier().verify(trusted).size
        try Self.saveAtTrusted(f, trusted: trusted, to: path)
        let saved = try SavedState(path: path)
        #expect(saved.count == trustedSize)

        let clean = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: saved)
        #expect(clean.report.isIntact, "\(clean.report.findings)")
        #expect(clean.report.checked == 4)
        let count = try Ledger(directory: f.directory).count
        #expect(clean.report.records == count)

        try Self.appendRuleBreakers(f)
        let fromGenesis = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier())
        let fromState = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: saved)
        #expect(fromState.report.findings == fromGenesis.report.findings)
        #expect(fromState.report.records == fromGenesis.report.records)
        #expect(fromState.report.lastEntryID == fromGenesis.report.lastEntryID)
        let codes = fromState.report.findings.map(\.code)
        #expect(codes == [.duplicateID, .duplicateID, .notTheAuthor, .invalidEvent, .duplicateID, .unknownReference, .duplicateID, .revokedKey, .unknownReference, .duplicateID], "\(fromState.report.findings)")
    }

    /// Saves the state at the trusted checkpoint: a copy of the ledger cut back to it, verified in full.
    static func saveAtTrusted(_ f: Fixture, trusted: [UInt8], to path: String) throws {
        let size = Int(try verifier().verify(trusted).size)
        let copy = f.root.appendingPathComponent("at-trusted").path
        try? FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: f.directory, toPath: copy)
        let lines = try f.logLines().prefix(size)
        try Data(lines.flatMap { $0 + [0x0a] }).write(to: URL(fileURLWithPath: copy + "/log"))
        for file in try FileManager.default.contentsOfDirectory(atPath: copy + "/checkpoints") where !file.hasPrefix(String(format: "%020d", size)) && file.hasSuffix(".note") {
            try FileManager.default.removeItem(atPath: copy + "/checkpoints/" + file)
        }
        try Fixture.rebuildDerivedOverForgery(copy)
        let report = try Verifier.verify(directory: copy, saveState: path)
        #expect(report.isIntact, "\(report.findings)")
        #expect(report.savedStateSize == UInt64(size))
    }

    @Test("a state rolled forward by verify --since is byte for byte the state a full verification saves there")
    func rollForward() throws {
        let (f, trusted, newest) = try Self.ledger()
        let first = f.root.appendingPathComponent("first.state").path
        try Self.saveAtTrusted(f, trusted: trusted, to: first)
        let rolled = f.root.appendingPathComponent("rolled.state").path
        let result = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: SavedState(path: first), saveState: rolled)
        #expect(result.report.isIntact)
        #expect(result.report.savedStateSize == result.newest.size)
        let full = f.root.appendingPathComponent("full.state").path
        let report = try Verifier.verify(directory: f.directory, saveState: full)
        #expect(report.savedStateSize == result.newest.size)
        #expect(try Data(contentsOf: URL(fileURLWithPath: rolled)) == Data(contentsOf: URL(fileURLWithPath: full)))
        // And it serves the next incremental verification.
        let next = try Verifier.verify(directory: f.directory, since: newest, verifier: Self.verifier(), state: SavedState(path: rolled))
        #expect(next.report.isIntact && next.report.checked == 0)
    }

    /// Expects `body` to refuse with a usage error whose message contains `reason`: every refusal of
    /// a saved state is a usage error, so the code alone does not say which check refused it.
    static func expectRefused(_ reason: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws -> Void) {
        do {
            try body()
            Issue.record("accepted; expected a refusal saying \"\(reason)\"", sourceLocation: sourceLocation)
        } catch let error as LedgerError {
            #expect(error.code == .usage && error.message.contains(reason), "\(error.message)", sourceLocation: sourceLocation)
        } catch {
            Issue.record("\(error)", sourceLocation: sourceLocation)
        }
    }

    @Test("a saved state of another checkpoint, a damaged one, or a log rewritten before it is refused or reported")
    func mismatches() throws {
        let (f, trusted, newest) = try Self.ledger()
        let path = f.root.appendingPathComponent("rules.state").path
        try Self.saveAtTrusted(f, trusted: trusted, to: path)
        let trustedSize = try Self.verifier().verify(trusted).size
        Self.expectRefused("is for \(trustedSize) entries") {
            _ = try Verifier.verify(directory: f.directory, since: newest, verifier: Self.verifier(), state: SavedState(path: path))
        }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[20] ^= 0x01
        let damaged = f.root.appendingPathComponent("damaged.state").path
        try bytes.write(to: URL(fileURLWithPath: damaged))
        Self.expectRefused("its header is damaged (checksum)") { _ = try SavedState(path: damaged) }
        try Data(bytes.prefix(40)).write(to: URL(fileURLWithPath: damaged))
        Self.expectRefused("it is too short") { _ = try SavedState(path: damaged) }
        // Every byte of the header and its checksum is covered; a length past the file is refused.
        let original = try Data(contentsOf: URL(fileURLWithPath: path))
        let headerEnd = 16 + Int(original[8]) + Int(original[9]) << 8 + 32
        for offset in 0..<headerEnd {
            var flipped = original
            flipped[offset] ^= 0x40
            try flipped.write(to: URL(fileURLWithPath: damaged))
            #expect(throws: LedgerError(.usage, ""), "byte \(offset)") { try SavedState(path: damaged) }
        }
        // A byte of the tables (ids, claims, strings, fence levels, block hashes) is covered too,
        // checked when its block is read: a verification from the state stops on it, or reads only
        // intact blocks and finds what the intact state finds; a damaged row is never read as an
        // absent id or an active claim. Rolling the state forward reads it whole, and refuses it.
        let intact = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: SavedState(path: path))
        #expect(intact.report.isIntact)
        let rolled = f.root.appendingPathComponent("rolled.state").path
        for offset in stride(from: headerEnd + 8, to: original.count, by: max(1, (original.count - headerEnd) / 50)) {
            var flipped = original
            flipped[offset] ^= 0x01
            try flipped.write(to: URL(fileURLWithPath: damaged))
            do {
                let result = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: SavedState(path: damaged))
                #expect(result.report.findings == intact.report.findings && result.report.checked == intact.report.checked, "table byte \(offset)")
            } catch let error as LedgerError {
                #expect(error.code == .usage && error.message.contains("checksum"), "table byte \(offset): \(error.message)")
            }
            #expect(throws: LedgerError(.usage, ""), "table byte \(offset)") {
                try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: SavedState(path: damaged), saveState: rolled)
            }
            #expect(!FileManager.default.fileExists(atPath: rolled))
        }
        // A state in the format of an earlier version is refused as one.
        var old = original
        old.replaceSubrange(0..<8, with: Array("ELSTATE1".utf8))
        try old.write(to: URL(fileURLWithPath: damaged))
        Self.expectRefused("saved by an earlier version of ledger") { _ = try SavedState(path: damaged) }
        for length: UInt64 in [.max, .max >> 1, UInt64(original.count)] {
            var long = original
            long.replaceSubrange(8..<16, with: withUnsafeBytes(of: length.littleEndian) { Data($0) })
            try long.write(to: URL(fileURLWithPath: damaged))
            Self.expectRefused("its header is longer than the file") { _ = try SavedState(path: damaged) }
        }

        // The entry just before the trusted checkpoint is rewritten (canonically, one second
        // later): with the old tree files it is not the entry the state recorded; with the tree
        // rebuilt from the log, the log no longer has the trusted root. Either way: equivocation.
        let size = Int(try Self.verifier().verify(trusted).size)
        var lines = try f.logLines()
        var record = try Record(stored: lines[size - 1])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[size - 1] = record.encoded()
        for i in size..<lines.count {  // re-linked after it: a whole other history
            var next = try Record(stored: lines[i])
            next.previous = Record.entryID(of: lines[i - 1])
            lines[i] = next.encoded()
        }
        try f.writeLines(lines)
        for rebuild in [false, true] {
            if rebuild { try Fixture.rebuildDerivedOverForgery(f.directory) }
            let result = try Verifier.verify(directory: f.directory, since: trusted, verifier: Self.verifier(), state: SavedState(path: path))
            #expect(result.report.findings.first?.code == .equivocation, "rebuilt \(rebuild): \(result.report.findings)")
        }
    }
}
