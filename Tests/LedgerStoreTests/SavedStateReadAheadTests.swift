import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
@testable import LedgerStore
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

@Suite("Reading a saved state ahead of the verification that continues it")
struct SavedStateReadAheadTests {
    /// A saved state, as the rules look things up in it: every lookup noted, answered by the state.
    final class Spy: LedgerStateBase, @unchecked Sendable {
        let saved: SavedState
        var lookups: [SavedStateReadAhead.Lookup] = []

        init(_ saved: SavedState) { self.saved = saved }

        var origin: String? { saved.origin }
        var count: UInt64 { saved.count }
        var parties: [String: LedgerState.Party] { saved.parties }
        var keys: [Digest: LedgerState.Key] { saved.keys }
        var readFailure: LedgerError? { saved.readFailure }

        func sequence(of kind: IDKind, _ id: String) -> UInt64? {
            lookups.append(.id(kind, id))
            return saved.sequence(of: kind, id)
        }

        func sequence(ofEntry entryID: Digest) -> UInt64? {
            lookups.append(.entry(entryID))
            return saved.sequence(ofEntry: entryID)
        }

        func claim(_ id: String) -> LedgerState.Claim? {
            lookups.append(.claim(id))
            return saved.claim(id)
        }
    }

    /// Applies `lines` to `state` from sequence `first` on as a verification does (a record refused
    /// counts as absent).
    static func check(_ lines: ArraySlice<[UInt8]>, into state: inout LedgerState, first: Int) throws {
        for (i, line) in zip(first..., lines) {
            let record = try Record(stored: line)
            _ = try? state.admit(
                record.envelope, event: Event(payload: record.envelope.payload), entryID: Record.entryID(of: line), sequence: UInt64(i),
                acceptedAt: record.acceptedAt, signaturesChecked: true)
            if state.count == UInt64(i) { state.skip() }
        }
    }

    @Test("it looks up before the verification nearly every id the verification looks up in the state, no further ahead than its window")
    func looksAhead() throws {
        // Random statements, a quarter of them breaking a rule, many naming what the state holds.
        let f = try RuleStateStorageTests.ledger(seed: 31, count: 3000, breakRules: true)
        let lines = try f.logLines()
        let kept = 2500
        var state = LedgerState()
        try Self.check(lines[..<kept], into: &state, first: 0)
        let path = f.root.appendingPathComponent("ahead.state").path
        try SavedState.write(
            state, root: .zero, lastEntryID: Record.entryID(of: lines[kept - 1]), logBytes: UInt64(lines[..<kept].reduce(0) { $0 + $1.count + 1 }), to: path)
        let saved = try SavedState(path: path)
        let blocksAtOpen = saved.blocksRead

        let spy = Spy(saved)
        var checking = LedgerState(continuing: spy)
        try Self.check(lines[kept...], into: &checking, first: kept)
        let needed = Set(spy.lookups)
        let neededBlocks = saved.blocksRead - blocksAtOpen
        #expect(needed.count > 1000)
        #expect(saved.readFailure == nil)

        let log = try FileDescriptor(path: f.directory + "/log", flags: O_RDONLY)
        let offset = UInt64(lines[..<kept].reduce(0) { $0 + $1.count + 1 })
        let end = try log.size
        func readAhead(_ settings: SavedStateReadAhead.Settings) -> SavedStateReadAhead {
            SavedStateReadAhead(saved: saved, log: log, from: offset, end: end, settings: settings, keepsHistory: true)
        }
        let ahead = readAhead(.init(window: 1 << 20, readers: 1))
        #expect(ahead.settle())
        let all = ahead.counts
        let planned = Set(all.history ?? [])
        // It answers "not found" where the state holds an id: lookups that follow only from a
        // found one are left to the verification.
        let covered = needed.intersection(planned).count
        #expect(Double(covered) >= 0.9 * Double(needed.count), "\(covered) of \(needed.count)")
        #expect(all.plannedTo == UInt64(lines.count))
        #expect(all.noted == all.history?.count && all.made == all.noted && all.dropped == 0, "every lookup handed over was made")
        // Its reader read nearly every block the verification reads (each once: it keeps them).
        #expect(all.blocksRead * 10 >= neededBlocks * 9, "\(all.blocksRead) of \(neededBlocks) blocks")
        ahead.stop()

        // Within a window of 10 records it plans fewer, and the rest once told the verification
        // has passed them; lookups of records the verification has passed are dropped.
        let short = readAhead(.init(window: 10, readers: 1))
        #expect(short.settle())
        let first = short.counts
        #expect(first.noted > 0 && first.noted < all.noted)
        #expect(first.plannedTo == UInt64(kept + 10))
        #expect(Set(first.history ?? []).isSubset(of: planned))
        short.passed(UInt64(lines.count - 5))
        #expect(short.settle())
        short.passed(UInt64(lines.count))
        #expect(short.settle())
        let rest = short.counts
        let same = rest.history == all.history
        #expect(same, "\(rest.noted) lookups planned, \(all.noted) without a window")
        #expect(rest.made + rest.dropped == rest.noted && rest.dropped > 0)
        short.stop()

        // Forgetting what it learnt every 50 records, it still plans nearly every lookup needed,
        // and more: ids it admitted, looked up in the file once forgotten.
        let forgetful = readAhead(.init(window: 1 << 20, readers: 1, forgetAfter: 50))
        #expect(forgetful.settle())
        let forgot = forgetful.counts
        let alsoCovered = needed.intersection(Set(forgot.history ?? [])).count
        #expect(Double(alsoCovered) >= 0.9 * Double(needed.count), "\(alsoCovered) of \(needed.count)")
        #expect(forgot.noted > all.noted)
        forgetful.stop()

        // Stopped while the planner waits for the verification and the readers wait for work, it
        // returns.
        let waiting = readAhead(.init(window: 3, readers: 3))
        #expect(waiting.settle())
        waiting.stop()
    }

    @Test("verify --since reading ahead of a window finds exactly what it finds without reading ahead")
    func verifierReadsAhead() throws {
        let (f, path, trusted) = try RuleStateStorageTests.ledgerWithSavedState(seed: 43, count: 150)
        // New records, a quarter of them breaking a rule (written as a dishonest operator could),
        // naming ids and entries before the saved state and after it.
        var statements = RuleStateStorageTests.Statements(seed: 44, breakRules: true)
        var lines = try f.logLines()
        var entries = lines.map { Record.entryID(of: $0) }
        for _ in 0..<250 {
            let (event, author) = statements.next(entries: entries)
            let sequence = UInt64(lines.count)
            let record = Record(sequence: sequence, previous: entries.last!, acceptedAt: f.time(), batchEnd: sequence, envelope: try f.sign(event, as: author))
            lines.append(record.encoded())
            entries.append(Record.entryID(of: lines.last!))
        }
        try f.writeLines(lines)
        _ = try Repair.rebuildDerived(directory: f.directory)
        try RuleStateStorageTests.signCheckpoint(f)
        let verifier = try CheckpointVerifier(
            origin: "test.example/ledger", log: NoteVerifier(name: "test.example/ledger", publicKey: RuleStateStorageTests.logKey.publicKey))

        let without = try Verifier.verify(
            directory: f.directory, since: trusted, verifier: verifier, state: SavedState(path: path), saveState: nil, ruleState: RuleStateStorage(),
            readAhead: nil)
        #expect(without.report.checked == 250 && without.report.findings.count > 20, "\(without.report.findings.count) findings")
        let seen = Mutex<[(settled: Bool, counts: SavedStateReadAhead.Counts)]>([])
        let settings = SavedStateReadAhead.Settings(window: 16, readers: 2) { ahead in
            // Told that the verification has passed every record, it plans to the end.
            let settled = ahead.settle()
            seen.withLock { $0.append((settled, ahead.counts)) }
        }
        let state = try SavedState(path: path)
        let with = try Verifier.verify(
            directory: f.directory, since: trusted, verifier: verifier, state: state, saveState: nil, ruleState: RuleStateStorage(), readAhead: settings)
        #expect(with.report.findings == without.report.findings)
        #expect(with.report.checked == without.report.checked && with.report.records == without.report.records)
        #expect(with.report.root == without.report.root && with.report.lastEntryID == without.report.lastEntryID)
        // It went on past its window as the verification passed records, and was stopped once the
        // verification's lookups had the state checked whole (this small state's few blocks are
        // soon read often enough), a window at most after that record: nothing was left to bring
        // into the page cache.
        #expect(state.isCheckedWhole)
        let runs = seen.withLock { $0 }
        #expect(runs.count == 1)
        let run = try #require(runs.first)
        #expect(run.settled && run.counts.noted > 50, "\(run)")
        #expect(run.counts.plannedTo > state.count + 16 && run.counts.plannedTo < with.report.records, "\(run)")
        // Every lookup handed over was made, or dropped once the verification had passed its record
        // (how many of each depends on how the threads were scheduled).
        #expect(run.counts.made + run.counts.dropped == run.counts.noted, "\(run)")
    }
}
