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

    /// A checkpoint's file name gives the size it is checked at, before its note is read: a file
    /// renamed for another size must not be taken for a checkpoint of that size.
    @Test("a checkpoint file renamed for fewer entries than its note says is invalid at the size its name gives, naming both sizes")
    func renamedCheckpoint() throws {
        let f = try Fixture()
        try f.populate()
        let signed = try f.writer().signCheckpoint(with: Fixture.key(77)).path
        #expect(try Verifier.verify(directory: f.directory).checkpoints == 1)
        let name = URL(fileURLWithPath: signed).lastPathComponent
        #expect(name.hasPrefix(String(format: "%020d-", 10)), "\(name)")
        let renamed = f.directory + "/checkpoints/" + String(format: "%020d", 7) + name.dropFirst(20)
        try FileManager.default.moveItem(atPath: signed, toPath: renamed)
        let report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 7, saying: "The stored checkpoint \(renamed) is named for size 7 but says 10.")
        #expect(report.checkpoints == 0 && report.newestCheckpoint == nil)
    }

    /// Renamed for more entries than the log holds, it is checked after the last record: a file
    /// the log key signed for that size would be evidence that entries are gone, but this one's
    /// note says another size, so it is reported as no checkpoint of that size at all.
    @Test("a checkpoint file renamed for more entries than the log holds is invalid at the size its name gives, not entries gone")
    func renamedPastTheLog() throws {
        let f = try Fixture()
        try f.populate()
        let signed = try f.writer().signCheckpoint(with: Fixture.key(77)).path
        let name = URL(fileURLWithPath: signed).lastPathComponent
        let renamed = f.directory + "/checkpoints/" + String(format: "%020d", 12) + name.dropFirst(20)
        try FileManager.default.moveItem(atPath: signed, toPath: renamed)
        let report = try Verifier.verify(directory: f.directory)
        Self.expectOnlyFinding(report.findings, .invalidCheckpoint, aboutCheckpointOf: 12, saying: "The stored checkpoint \(renamed), named for 12 entries (more than the log's 10)")
        #expect(report.findings.first?.message.contains(": it says 10 entries.") == true, "\(report.findings)")
        #expect(report.checkpoints == 0)
    }
}
