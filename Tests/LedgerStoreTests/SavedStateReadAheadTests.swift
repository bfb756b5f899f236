import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerStore
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
        let f = try RuleStateStorageTests.ledger(seed: 31, count: 700, breakRules: true)
        let lines = try f.logLines()
        let kept = 400
        var state = LedgerState()
        try Self.check(lines[..<kept], into: &state, first: 0)
        let path = f.root.appendingPathComponent("ahead.state").path
        try SavedState.write(state, root: .zero, lastEntryID: Record.entryID(of: lines[kept - 1]), to: path)
        let saved = try SavedState(path: path)

        let spy = Spy(saved)
        var checking = LedgerState(continuing: spy)
        try Self.check(lines[kept...], into: &checking, first: kept)
        let needed = Set(spy.lookups)
        #expect(needed.count > 300)
        #expect(saved.readFailure == nil)

        let log = try FileDescriptor(path: f.directory + "/log", flags: O_RDONLY)
        let offset = UInt64(lines[..<kept].reduce(0) { $0 + $1.count + 1 })
        let end = try log.size
        let ahead = SavedStateReadAhead(saved: saved, log: log, from: offset, end: end, window: 1 << 20, readers: 2, keepsHistory: true)
        #expect(ahead.settle())
        let planned = Set(ahead.history ?? [])
        // It answers "not found" where the state holds an id: lookups that follow only from a
        // found one are left to the verification.
        let covered = needed.intersection(planned).count
        #expect(Double(covered) >= 0.9 * Double(needed.count), "\(covered) of \(needed.count)")
        // (In this ledger 666 of 683; 15 of the 681 it plans are lookups the verification does
        // not make.)
        #expect(ahead.noted == ahead.history?.count && ahead.made == ahead.noted, "every lookup handed over was made")
        ahead.stop()

        // Within a window of 10 records it plans fewer, and the rest once told the verification
        // has passed them.
        let short = SavedStateReadAhead(saved: saved, log: log, from: offset, end: end, window: 10, readers: 1, keepsHistory: true)
        #expect(short.settle())
        #expect(short.noted > 0 && short.noted < ahead.noted)
        #expect(Set(short.history ?? []).isSubset(of: planned))
        short.passed(UInt64(lines.count))
        #expect(short.settle())
        let same = short.history == ahead.history
        #expect(same, "\(short.noted) lookups planned, \(ahead.noted) without a window")
        short.stop()

        // Stopped while it waits for the verification, it returns.
        let stopped = SavedStateReadAhead(saved: saved, log: log, from: offset, end: end, window: 1, readers: 3)
        stopped.stop()
    }
}
