import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore
import Testing

@Suite("A stored or trusted checkpoint that the log does not bear out is found, at the checkpoint's size")
struct CheckpointFindingsTests {
    /// The one finding of `findings`, which must be about the checkpoint of `size` entries, with
    /// `code`, and say `words` (several rules share each code).
    static func expectOnlyFinding(
        _ findings: [VerificationReport.Finding], _ code: LedgerError.Code, aboutCheckpointOf size: UInt64, saying words: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        #expect(findings.count == 1, "\(findings)", sourceLocation: sourceLocation)
        guard let finding = findings.first else { return }
        #expect(finding.code == code && finding.sequence == size && finding.aboutCheckpoint, "\(finding)", sourceLocation: sourceLocation)
        #expect(finding.message.contains(words), "\(finding.message)", sourceLocation: sourceLocation)
    }

    /// A ledger of 10 entries whose checkpoint of 10, which verifies, is renamed for `size`: the
    /// fixture and the file's new path.
    static func checkpointRenamed(to size: Int) throws -> (Fixture, String) {
        let f = try Fixture()
        try f.populate()
        let signed = try f.writer().signCheckpoint(with: Fixture.key(77)).path
        #expect(try Verifier.verify(directory: f.directory).checkpoints == 1)
        let name = URL(fileURLWithPath: signed).lastPathComponent
        #expect(name.hasPrefix(String(format: "%020d-", 10)), "\(name)")
        let renamed = f.directory + "/checkpoints/" + String(format: "%020d", size) + name.dropFirst(20)
        try FileManager.default.moveItem(atPath: signed, toPath: renamed)
        return (f, renamed)
    }

    /// A checkpoint's file name gives the size it is checked at, before its note is read: a file
    /// renamed for another size must not be taken for a checkpoint of that size.
    @Test("a checkpoint file renamed for fewer entries than its note says is invalid at the size its name gives, naming both sizes")
    func renamedCheckpoint() throws {
        let (f, renamed) = try Self.checkpointRenamed(to: 7)
        let report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 7, saying: "The stored checkpoint \(renamed) is named for size 7 but says 10.")
        #expect(report.checkpoints == 0 && report.newestCheckpoint == nil)
    }

    /// Size 0 is checked before the genesis is read, which names the origin: a file named for it
    /// must not go unchecked.
    @Test("a checkpoint file renamed for size 0 is invalid at 0, and one that is no note at all too")
    func renamedToZero() throws {
        let (f, renamed) = try Self.checkpointRenamed(to: 0)
        var report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 0, saying: "The stored checkpoint \(renamed) is named for size 0 but says 10.")
        try Data("not a note\n".utf8).write(to: URL(fileURLWithPath: renamed))
        report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 0, saying: "The stored checkpoint \(renamed) does not verify")
    }

    /// Renamed for more entries than the log holds, it is checked after the last record: a file
    /// the log key signed for that size would be evidence that entries are gone, but this one's
    /// note says another size, so it is reported as no checkpoint of that size at all.
    @Test("a checkpoint file renamed for more entries than the log holds is invalid at the size its name gives, not entries gone")
    func renamedPastTheLog() throws {
        let (f, renamed) = try Self.checkpointRenamed(to: 12)
        let report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 12, saying: "The stored checkpoint \(renamed), named for 12 entries (more than the log's 10)")
        #expect(report.findings.first?.message.contains(": it says 10 entries.") == true, "\(report.findings)")
        #expect(report.checkpoints == 0)
    }

    /// A copy of `f`'s ledger with its log cut back to its first `size` entries and only the
    /// checkpoints of at most `size` entries, its derived files rebuilt: the ledger as it was
    /// then, intact on its own.
    static func cutBack(_ f: Fixture, to size: Int, named name: String) throws -> String {
        let copy = f.root.appendingPathComponent(name).path
        try FileManager.default.copyItem(atPath: f.directory, toPath: copy)
        try Data(try f.logLines().prefix(size).flatMap { $0 + [0x0a] }).write(to: URL(fileURLWithPath: copy + "/log"))
        for path in CheckpointStore(ledgerDirectory: copy).files() where (CheckpointStore.size(ofFile: path) ?? 0) > UInt64(size) {
            try FileManager.default.removeItem(atPath: path)
        }
        try Fixture.rebuildDerivedOverForgery(copy)
        let report = try Verifier.verify(directory: copy)
        #expect(report.isIntact && report.records == UInt64(size), "\(report.findings)")
        return copy
    }

    /// A reviewer who trusts a checkpoint of 13 entries is shown the ledger as it was at 10 (an
    /// older copy, or one rolled back), or a fork of it from there that the log key signed at 12:
    /// every stored checkpoint in it verifies, and it is intact on its own, but it is smaller than
    /// what the reviewer already saw.
    @Test("verify --since a checkpoint larger than the ledger's newest is a rollback: equivocation at the trusted size, naming both sizes")
    func rollbackBelowTrusted() throws {
        let f = try Fixture()
        try f.populate()
        _ = try f.writer().signCheckpoint(with: SavedStateTests.logKey)
        for n in 0..<3 { try f.append(["type": "fact.opened", "id": "open-g\(n)", "fact": "g\(n)", "proposition": "P\(n)"], as: "inv") }
        let trusted = Array(try f.writer().signCheckpoint(with: SavedStateTests.logKey).note.encoded.utf8)
        #expect(try Verifier.verify(directory: f.directory, since: trusted, verifier: SavedStateTests.verifier()).report.isIntact)
        for forked in [false, true] {
            let copy = try Self.cutBack(f, to: 10, named: forked ? "forked" : "rolled-back")
            if forked {
                let others = try (0..<2).map { try f.sign(["type": "fact.opened", "id": "fork-\($0)", "fact": "h\($0)", "proposition": "Q\($0)"], as: "inv") }
                try LedgerWriter(directory: copy).append(others, acceptedAt: f.time())
                _ = try LedgerWriter(directory: copy).signCheckpoint(with: SavedStateTests.logKey)
                #expect(try Verifier.verify(directory: copy).isIntact)
            }
            let size = forked ? 12 : 10
            let result = try Verifier.verify(directory: copy, since: trusted, verifier: SavedStateTests.verifier())
            #expect(result.trusted.size == 13 && result.newest.size == UInt64(size), "forked \(forked)")
            Self.expectOnlyFinding(
                result.report.findings, .equivocation, aboutCheckpointOf: 13,
                saying: "The trusted checkpoint has 13 entries; the ledger's newest checkpoint has \(size) and its log \(size). A log never shrinks: this is a rollback or another log.")
            #expect(result.report.checked == 0, "forked \(forked)")
        }
    }

    /// What someone with write access can do without any key: change what no signature covers
    /// (a record's acceptance time), link every later record to it again, and rebuild the index
    /// and tree over the result. Every chain link, signature and rule then holds, and the caches
    /// agree; only the checkpoint the log key signed before the change still tells.
    @Test("an acceptance time changed under a checkpoint, later records re-linked and the derived files rebuilt, is found by the checkpoint's root alone")
    func checkpointRootOnlyEvidence() throws {
        let f = try Fixture()
        try f.populate()
        let (path, note) = try f.writer().signCheckpoint(with: SavedStateTests.logKey)
        let signedRoot = try SavedStateTests.verifier().verify(Array(note.encoded.utf8)).root
        for n in 0..<3 { try f.append(["type": "fact.opened", "id": "open-g\(n)", "fact": "g\(n)", "proposition": "P\(n)"], as: "inv") }
        var lines = try f.logLines()
        var record = try Record(stored: lines[5])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[5] = record.encoded()
        for i in 6..<lines.count {
            var next = try Record(stored: lines[i])
            next.previous = Record.entryID(of: lines[i - 1])
            lines[i] = next.encoded()
        }
        try f.writeLines(lines)
        try Fixture.rebuildDerivedOverForgery(f.directory)
        // The rebuilt files record none of the entries (nothing vouched for them); a writer opened
        // with the log's verifier key moved away, which checks and indexes them all, takes the
        // forgery as it is. The index and tree then cover every forged entry.
        let vkey = CheckpointStore(ledgerDirectory: f.directory).verifierKeyPath
        let kept = f.root.appendingPathComponent("log.vkey").path
        try FileManager.default.moveItem(atPath: vkey, toPath: kept)
        _ = try f.writer()
        try FileManager.default.moveItem(atPath: kept, toPath: vkey)
        // The evidence's blob stored too, so that verify has nothing at all to note.
        let document = f.root.appendingPathComponent("doc")
        try Data("doc".utf8).write(to: document)
        _ = try BlobStore(ledgerDirectory: f.directory).add(file: document.path)
        var forged = CompactRange()
        for line in lines.prefix(10) { forged.append(Record.entryID(of: line)) }
        #expect(forged.root != signedRoot)
        let report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(
            report.findings, .invalidCheckpoint, aboutCheckpointOf: 10,
            saying: "The checkpoint \(path), signed by the log key, commits to root \(signedRoot.hexString) for 10 entries; the log's first 10 entries hash to \(forged.root.hexString). Entries it covers were changed.")
        #expect(report.checkpoints == 0 && report.records == 13 && report.notes.isEmpty, "\(report.notes)")
    }
}
