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
/// them. The verification reads and checks every block itself, as before, so reading ahead never
/// changes an answer: it costs threads and CPU (the records are decoded and the lookups made
/// twice) for what it brings into the page cache. A lookup answered "not found" here where the
/// state holds the id only leaves the lookups it would have led to for the verification to read.
///
/// Memory stays bounded: the planner stays at most `window` records ahead of the verification,
/// forgets what its scratch state learnt every few thousand records (ids it admitted are then
/// looked up in the file again, which costs a Bloom filter block each), and lookups of records
/// the verification has passed are dropped, not made.
final class SavedStateReadAhead: @unchecked Sendable {
    /// A lookup in the saved state, as the rules make it.
    enum Lookup: Sendable, Hashable {
        case id(IDKind, String)
        case entry(Digest)
        case claim(String)
    }

    /// How far it reads ahead, and with how many threads.
    struct Settings: Sendable {
        /// How many records the planner may be ahead of the position last ``passed(_:)``.
        var window: UInt64 = 4096
        /// How many threads make lookups: reads waiting on a disk together take little longer
        /// than one, and more threads than a few cost more than they save when the file is cached.
        var readers = 4
        /// How many records the planner's scratch state learns before it is emptied.
        var forgetAfter: UInt64 = 16_384
        /// Called with the read-ahead when the verification has read its last record, or the
        /// saved state has been checked whole, before the read-ahead is stopped (for tests).
        var finished: (@Sendable (SavedStateReadAhead) -> Void)?
    }

    private let condition = Condition()
    // Under the condition's lock:
    /// Lookups handed to the readers, with the record each is for; from `taken` on not yet taken.
    private var lookups: [(position: UInt64, lookup: Lookup)] = []
    private var taken = 0
    /// The position the verification has passed: records before it are checked.
    private var passed: UInt64
    /// The position the planner waits for the verification to pass, if it waits.
    private var plannerWaitsFor: UInt64?
    /// The records the planner has handed the lookups of over.
    private var plannedTo: UInt64
    private var plannerDone = false
    /// How many readers are making a lookup.
    private var busy = 0
    private var stopped = false
    /// Whether ``settle()`` waits.
    private var settling = false
    /// How many lookups were handed over; made; dropped because the verification had passed their
    /// record; and how many blocks the readers read. Every lookup handed over, when kept.
    private var noted = 0
    private var made = 0
    private var dropped = 0
    private var blocksRead = 0
    private var history: [Lookup]?

    /// What it has done so far (for tests).
    struct Counts: Sendable {
        var noted: Int
        var made: Int
        var dropped: Int
        var blocksRead: Int
        var plannedTo: UInt64
        var history: [Lookup]?
    }

    var counts: Counts {
        condition.lock()
        defer { condition.unlock() }
        return Counts(noted: noted, made: made, dropped: dropped, blocksRead: blocksRead, plannedTo: plannedTo, history: history)
    }

    /// Lookups the planner noted for the record it applies and has not handed over yet (the
    /// planner's own): handed over a few records' worth at a time, since waking a reader for each
    /// would cost more than the lookup when the file is cached.
    private var planned: [(position: UInt64, lookup: Lookup)] = []
    private var planning: UInt64
    private static let handOverAt = 64
    private let window: UInt64
    private let forgetAfter: UInt64
    /// The log, read by the planner only.
    private let log: FileDescriptor
    private let threads = DispatchGroup()

    /// Starts reading ahead of a verification continuing `saved`, whose records start at byte
    /// `offset` of `log` (up to `end`) with sequence number `saved.count`. Reads nothing ahead if
    /// no reader of the file can be made.
    /// - Parameter keepsHistory: keep every lookup handed over in ``history`` (for tests).
    init(saved: SavedState, log: FileDescriptor, from offset: UInt64, end: UInt64, settings: Settings = Settings(), keepsHistory: Bool = false) {
        window = max(settings.window, 1)
        forgetAfter = max(settings.forgetAfter, 1)
        self.log = log
        passed = saved.count
        plannedTo = saved.count
        planning = saved.count
        history = keepsHistory ? [] : nil
        let readers = (0..<settings.readers).compactMap { _ in saved.cacheWarmer() }
        guard !readers.isEmpty else {
            plannerDone = true
            return
        }
        let scratch = LedgerState(continuing: Recorder(LedgerState(continuing: saved), self))
        startThread(in: threads) { [self] in plan(scratch, from: offset, end: end) }
        for reader in readers {
            startThread(in: threads) { [self] in look(in: reader) }
        }
    }

    /// Tells the helpers that the verification has passed `position`: the planner may go on to
    /// `position + window` (it is woken a quarter of a window at a time), and lookups of records
    /// before it are dropped.
    func passed(_ position: UInt64) {
        condition.lock()
        passed = position
        let wake = plannerWaitsFor.map { position >= $0 } ?? false
        if wake { plannerWaitsFor = nil }
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
        while !((plannerWaitsFor != nil || plannerDone) && taken == lookups.count && busy == 0) {
            guard condition.wait(until: deadline) else { return false }
        }
        return true
    }

    /// Applies the records to `state` (whose lookups in the saved state are noted, see
    /// ``Recorder``), as the verification will, but for signatures and findings.
    private func plan(_ state: LedgerState, from offset: UInt64, end: UInt64) {
        var state = state
        var cursor = LogCursor(file: log, from: offset, end: end)
        var learnt: UInt64 = 0
        defer {
            condition.lock()
            handOver()
            plannerDone = true
            condition.unlock()
            condition.broadcast()
        }
        while let line = try? cursor.next(), line.complete {
            condition.lock()
            if planning >= passed, planning - passed >= window {
                handOver()
                // Woken once the verification has passed a quarter of the window more.
                let resume = planning + max(window / 4, 1) - window
                while !stopped, passed < resume {
                    plannerWaitsFor = resume
                    condition.broadcast()  // the readers, and a test that settles
                    condition.wait()
                }
                plannerWaitsFor = nil
            }
            let stop = stopped
            if planned.count >= Self.handOverAt {
                handOver()
                condition.broadcast()
            }
            condition.unlock()
            if stop { return }
            if !line.tooLong, let record = try? Record(stored: line.bytes), let event = try? Event(payload: record.envelope.payload) {
                _ = try? state.admit(
                    record.envelope, event: event, entryID: Record.entryID(of: line.bytes), sequence: planning, acceptedAt: record.acceptedAt,
                    signaturesChecked: true)
            }
            if state.count == planning { state.skip() }
            planning += 1
            learnt += 1
            if learnt == forgetAfter {
                state = LedgerState(continuing: Recorder(state, self))
                learnt = 0
            }
        }
    }

    fileprivate func note(_ lookup: Lookup) {
        planned.append((planning, lookup))
    }

    /// Hands the lookups noted to the readers (the lock held; the caller wakes them).
    private func handOver() {
        lookups += planned
        noted += planned.count
        history? += planned.map(\.lookup)
        planned.removeAll(keepingCapacity: true)
        plannedTo = planning
    }

    /// Makes the lookups handed over, in `reader`, until stopped; drops those of records the
    /// verification has passed.
    private func look(in reader: SavedState) {
        condition.lock()
        while !stopped {
            guard taken < lookups.count else {
                condition.wait()
                continue
            }
            let (position, lookup) = lookups[taken]
            taken += 1
            // Those taken go once they are half the queue: readers behind a planner a window
            // ahead never see it empty.
            if taken == lookups.count {
                lookups.removeAll(keepingCapacity: true)
                taken = 0
            } else if taken >= 1024, 2 * taken >= lookups.count {
                lookups.removeFirst(taken)
                taken = 0
            }
            if position < passed {
                dropped += 1
            } else {
                busy += 1
                condition.unlock()
                let before = reader.blocksRead
                switch lookup {
                case let .id(kind, id): _ = reader.sequence(of: kind, id)
                case let .entry(entryID): _ = reader.sequence(ofEntry: entryID)
                case let .claim(id): _ = reader.claim(id)
                }
                let read = reader.blocksRead - before
                condition.lock()
                busy -= 1
                made += 1
                blocksRead += read
            }
            if settling, busy == 0, taken == lookups.count { condition.broadcast() }
        }
        condition.unlock()
    }
}

/// A rule state as the read-ahead's planner sees it: parties and keys, and no ids; each lookup is
/// noted for the readers.
private final class Recorder: LedgerStateBase, @unchecked Sendable {
    let origin: String?
    let count: UInt64
    let parties: [String: LedgerState.Party]
    let keys: [Digest: LedgerState.Key]
    unowned let readAhead: SavedStateReadAhead

    /// `state`'s size, parties and keys, its ids forgotten.
    init(_ state: LedgerState, _ readAhead: SavedStateReadAhead) {
        (origin, count, parties, keys) = (state.origin, state.count, state.parties, state.keys)
        self.readAhead = readAhead
    }

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
