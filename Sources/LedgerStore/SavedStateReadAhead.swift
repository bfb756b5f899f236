import Dispatch
import LedgerCore
import LedgerCrypto

/// Looks up in a saved state, on helper threads and ahead of a verification that continues it,
/// the ids that the new records will look up: so that the blocks of the state's file those
/// lookups read are in the page cache when the verification reads them in order.
///
/// A lookup of an id the state holds reads a few blocks, each found from the one before, at
/// random places in a file that grows with the ledger. Read one at a time, as the rules go,
/// their latency adds up: about 4,000 reads for 1,000 new entries of a million-entry ledger,
/// 0.17 s when the file is not cached. Read by several threads at once, a disk serves them
/// together.
///
/// One thread (the planner) applies the new records to a scratch rule state over the saved one,
/// whose lookups are only noted and answered "not found"; a few threads make the lookups noted,
/// each in a reader of the file of its own that reads blocks and their hashes without checking
/// them.
/// The verification reads and checks every block itself, as before, so reading ahead changes
/// what the kernel caches and nothing else. A lookup answered "not found" here where the state
/// holds the id only leaves the lookups it would have led to for the verification to read. The
/// planner stays at most `window` records ahead of the verification, and all stop when told to.
final class SavedStateReadAhead: @unchecked Sendable {
    /// A lookup in the saved state, as the rules make it.
    enum Lookup: Sendable, Hashable {
        case id(IDKind, String)
        case entry(Digest)
        case claim(String)
    }

    private let condition = Condition()
    // Under the condition's lock:
    /// Lookups handed to the readers, from `taken` on not yet taken.
    private var lookups: [Lookup] = []
    private var taken = 0
    /// The position the verification has passed.
    private var passed: UInt64
    /// Whether the planner waits for the verification to move, or has read every record.
    private var plannerWaits = false
    private var plannerDone = false
    /// How many readers are making a lookup.
    private var busy = 0
    private var stopped = false
    /// Whether ``settle()`` waits.
    private var settling = false
    /// How many lookups were handed over, and made; every lookup handed over, when kept (for
    /// tests).
    private(set) var noted = 0
    private(set) var made = 0
    private(set) var history: [Lookup]?

    /// Lookups the planner noted and has not handed over yet (the planner's own): handed over a
    /// few records' worth at a time, since waking a reader for each would cost more than the
    /// lookup when the file is cached.
    private var planned: [Lookup] = []
    private static let handOverAt = 64
    private let window: UInt64
    /// The log, read by the planner only.
    private let log: FileDescriptor
    private let threads = DispatchGroup()

    /// Starts reading ahead of a verification continuing `saved`, whose records start at byte
    /// `offset` of `log` (up to `end`) with sequence number `saved.count`.
    /// - Parameters:
    ///   - window: how many records the planner may be ahead of the position last ``passed(_:)``.
    ///   - readers: how many threads make lookups: reads waiting on a disk together take little
    ///     longer than one, and more threads than a few cost more than they save when the file
    ///     is cached.
    ///   - keepsHistory: keep every lookup handed over in ``history`` (for tests).
    init(saved: SavedState, log: FileDescriptor, from offset: UInt64, end: UInt64, window: UInt64 = 4096, readers: Int = 4, keepsHistory: Bool = false) {
        self.window = window
        self.log = log
        passed = saved.count
        history = keepsHistory ? [] : nil
        let planner = LedgerState(continuing: Recorder(saved, self))
        startThread(in: threads) { [self] in plan(planner, from: offset, end: end) }
        for _ in 0..<readers {
            guard let reader = saved.cacheWarmer() else { break }
            startThread(in: threads) { [self] in look(in: reader) }
        }
    }

    /// Tells the helpers that the verification has passed `position`: the planner may go on to
    /// `position + window`.
    func passed(_ position: UInt64) {
        condition.lock()
        passed = position
        // It looks again, and says again whether it must wait.
        let wake = plannerWaits
        plannerWaits = false
        condition.unlock()
        if wake { condition.broadcast() }
    }

    /// Stops the helpers and waits for them to return.
    func stop() {
        condition.lock()
        stopped = true
        condition.unlock()
        condition.broadcast()
        threads.wait()
    }

    /// Waits until the planner has gone as far as it may and the readers have made every lookup
    /// handed to them, for at most a minute (for tests): whether they did.
    func settle() -> Bool {
        let deadline = Condition.deadline(in: 60)
        condition.lock()
        defer { condition.unlock() }
        settling = true
        defer { settling = false }
        while !((plannerWaits || plannerDone) && taken == lookups.count && busy == 0) {
            guard condition.wait(until: deadline) else { return false }
        }
        return true
    }

    /// Applies the records to `state` (whose lookups in the saved state are noted, see
    /// ``Recorder``), as the verification will, but for signatures and findings.
    private func plan(_ state: LedgerState, from offset: UInt64, end: UInt64) {
        var state = state
        var cursor = LogCursor(file: log, from: offset, end: end)
        var position = state.count
        defer {
            condition.lock()
            handOver()
            plannerDone = true
            condition.unlock()
            condition.broadcast()
        }
        while let line = try? cursor.next(), line.complete, !line.tooLong {
            condition.lock()
            if position >= passed + window {
                handOver()
                while !stopped, position >= passed + window {
                    plannerWaits = true
                    condition.broadcast()  // the readers, and a test that settles
                    condition.wait()
                }
                plannerWaits = false
            }
            let stop = stopped
            if planned.count >= Self.handOverAt {
                handOver()
                condition.broadcast()
            }
            condition.unlock()
            if stop { return }
            if let record = try? Record(stored: line.bytes), let event = try? Event(payload: record.envelope.payload) {
                _ = try? state.admit(
                    record.envelope, event: event, entryID: Record.entryID(of: line.bytes), sequence: position, acceptedAt: record.acceptedAt,
                    signaturesChecked: true)
            }
            if state.count == position { state.skip() }
            position += 1
        }
    }

    fileprivate func note(_ lookup: Lookup) {
        planned.append(lookup)
    }

    /// Hands the lookups noted to the readers (the lock held; the caller wakes them).
    private func handOver() {
        lookups += planned
        noted += planned.count
        history? += planned
        planned.removeAll(keepingCapacity: true)
    }

    /// Makes the lookups handed over, in `reader`, until stopped.
    private func look(in reader: SavedState) {
        condition.lock()
        while !stopped {
            guard taken < lookups.count else {
                condition.wait()
                continue
            }
            let lookup = lookups[taken]
            taken += 1
            if taken == lookups.count {
                lookups.removeAll(keepingCapacity: true)
                taken = 0
            }
            busy += 1
            condition.unlock()
            switch lookup {
            case let .id(kind, id): _ = reader.sequence(of: kind, id)
            case let .entry(entryID): _ = reader.sequence(ofEntry: entryID)
            case let .claim(id): _ = reader.claim(id)
            }
            condition.lock()
            busy -= 1
            made += 1
            if settling, busy == 0, taken == lookups.count { condition.broadcast() }
        }
        condition.unlock()
    }
}

/// A saved state as the read-ahead's planner sees it: its parties and keys, and no ids; each
/// lookup is noted for the readers.
private final class Recorder: LedgerStateBase, @unchecked Sendable {
    let saved: SavedState
    unowned let readAhead: SavedStateReadAhead

    init(_ saved: SavedState, _ readAhead: SavedStateReadAhead) {
        self.saved = saved
        self.readAhead = readAhead
    }

    var origin: String? { saved.origin }
    var count: UInt64 { saved.count }
    var parties: [String: LedgerState.Party] { saved.parties }
    var keys: [Digest: LedgerState.Key] { saved.keys }
    var readFailure: LedgerError? { nil }

    func sequence(of kind: IDKind, _ id: String) -> UInt64? {
        readAhead.note(.id(kind, id))
        return nil
    }

    func sequence(ofEntry entryID: Digest) -> UInt64? {
        readAhead.note(.entry(entryID))
        return nil
    }

    func claim(_ id: String) -> LedgerState.Claim? {
        readAhead.note(.claim(id))
        return nil
    }
}
