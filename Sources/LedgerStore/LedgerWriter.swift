#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto
public import LedgerMerkle

/// An entry the ledger has made durable.
public struct AppendedEntry: Sendable, Hashable {
    public let sequence: UInt64
    public let entryID: Digest
    public let acceptedAt: Timestamp
}

/// The single writer of a ledger directory.
///
/// Opening takes the directory's writer lock (waiting a bounded time), cuts a torn tail left by
/// an interrupted write and says so, brings the index up to date, and replays the log into the
/// ``LedgerState`` that appends are checked against. Damage in the records it replays stops the
/// open: nothing is written until an operator acts.
///
/// The rule state is kept between opens in `rules.state` (``Ledger/Layout/rulesState``, a
/// ``SavedState``), so that an open replays only the records after it, not the whole log: at a
/// million entries, opening took 15–25 s. It is used only if it is a regular file saved under
/// these append rules (``LedgerState/rules``), the log's entry at its size still has the entry id
/// it recorded, and the stored tree's root there is its root; otherwise the log is replayed from
/// genesis. An open that replayed ``rulesStateRefresh`` records or more writes it again. It is a
/// cache: `ledger repair --rebuild-derived` removes it, and verification never reads it.
///
/// So an open no longer rereads the records before it: damage to one of them, or a tree and a
/// kept state changed together, is for `ledger verify` to find (which recomputes everything from
/// the log), not for the writer. The writer trusts its own directory as far as that: whoever can
/// write to it can rewrite the log itself.
public final class LedgerWriter {
    /// The ledger as committed so far.
    public let ledger: Ledger
    /// What appends are checked against.
    public private(set) var state = LedgerState()
    /// The Merkle tree's compact range over the log as replayed: checkpoints are signed over this
    /// root, never over the tree files' interior nodes (a cache).
    public private(set) var range = CompactRange()
    /// Where the rule state goes as it grows.
    public let ruleState: RuleStateStorage
    /// How many records an open may replay before it writes the kept rule state again.
    public let rulesStateRefresh: UInt64
    /// Where this open began replaying the log: the kept rule state's size, or 0.
    private(set) var replayedFrom: UInt64 = 0
    /// How many records the index or the tree files recorded when this
    /// writer opened (``Ledger/recordedCount(indexed:)``): those a writer checked. A record past
    /// them may have been added by other means, so its signatures are verified as an append
    /// verifies them before this writer takes it.
    private var recordedAtOpen: UInt64 = 0
    /// The size from which moving the rule state to disk is tried again after it failed.
    private var retryMoveOutAt: UInt64 = 0
    private let lock: WriterLock
    /// Why this writer writes no more, once another may have written the log under it
    /// (``requireSoleWriter(logSize:)`` failed after a sync).
    var stopped: LedgerError?
    private let indexFile: FileDescriptor
    /// The stored Merkle tree, kept level with the log; `nil` after a failed tree write, until
    /// the next open rebuilds it (readers then use a tree rebuilt in memory).
    private(set) var tree: MerkleTreeFiles?

    /// How many records an open replays, by default, before it writes the kept rule state again:
    /// writing it costs about as much as replaying 20,000 records at a million entries (it is
    /// merged whole), and an open replays at most this many more.
    public static let defaultRulesStateRefresh: UInt64 = 20_000

    /// What to do about the kept rule state of the ledger in `directory` found damaged while in use.
    static func rulesStateRemedy(_ directory: String) -> String {
        "It is the writer's cache of the rule state: remove it (or run `ledger repair \(directory) --rebuild-derived`), and the next write rebuilds it from the log."
    }

    /// How long a writer waits for another by default, in seconds.
    public static let defaultLockTimeout = 10.0

    /// Refuses a lock timeout that cannot be waited for, before anything else is read or opened.
    /// - Throws: ``LedgerError/Code/usage``.
    public static func check(lockTimeout: Double) throws(LedgerError) {
        try WriterLock.check(timeout: lockTimeout)
    }

    /// Opens the ledger in `directory` for writing.
    /// - Throws: ``LedgerError/Code/lockTimeout``, ``LedgerError/Code/damagedLog``,
    ///   ``LedgerError/Code/notALedger`` or ``LedgerError/Code/io``.
    /// - Parameter rulesStateRefresh: how many records an open may replay before it writes the
    ///   kept rule state again (``defaultRulesStateRefresh``).
    public init(
        directory: String, lockTimeout: Double = LedgerWriter.defaultLockTimeout, ruleState: RuleStateStorage = RuleStateStorage(),
        rulesStateRefresh: UInt64 = LedgerWriter.defaultRulesStateRefresh
    ) throws(LedgerError) {
        self.ruleState = ruleState
        self.rulesStateRefresh = rulesStateRefresh
        let layout = Ledger.Layout(directory: directory)
        try Ledger.checkFormat(layout)
        lock = try WriterLock(path: layout.lock, timeout: lockTimeout)
        layout.removeWriterLeftovers()
        ledger = try Ledger(directory: directory, writable: true)
        indexFile = try FileDescriptor(path: layout.index, flags: O_RDWR | O_CREAT)
        if let sequence = ledger.report.indexContradictsLogAt {
            throw LedgerError(.damagedLog, "The index of \(directory) recorded entry \(sequence) as another record (another length or entry id) than the log now holds where it was written: the record was changed after it was written, or the index is damaged. The ledger refuses to write until an operator acts: run `ledger verify \(directory)`. \(Repair.evidenceRemedy(directory, "index"))")
        }
        recordedAtOpen = ledger.recordedCount(indexed: ledger.indexRecorded)
        // Every check that can refuse the open (the chain, the tree's record of the last entry)
        // comes before the torn tail is cut and the index rewritten: a refused open changes
        // neither, and the index may be the evidence an operator needs.
        try replay()
        tree = try Self.openTree(for: ledger, range: range)
        try recover()
    }

    /// Creates a new ledger directory holding only its genesis record, signed by `adminKey`.
    ///
    /// - Parameters:
    ///   - origin: the log's name, carried by every checkpoint (e.g. `example.org/ledger/case-1`).
    ///   - adminParty: the party id of the first admin.
    ///   - signedAt / acceptedAt: fixed times for reproducible ledgers; the clock otherwise.
    /// - Throws: ``LedgerError/Code/alreadyExists`` if `directory` exists and is not empty.
    public static func create(
        directory: String, origin: String, adminKey: SigningKey, adminParty: String = "admin", adminName: String = "Ledger administrator",
        signedAt: Timestamp? = nil, acceptedAt: Timestamp? = nil
    ) throws(LedgerError) -> LedgerWriter {
        // It becomes the checkpoints' first line and their note key name, fixed by the genesis
        // record: one no checkpoint can carry would leave a ledger that can never be checkpointed.
        guard origin.utf8.count <= 256, isValidKeyName(origin) else {
            throw LedgerError(.usage, "The origin \(origin.debugDescription) is not usable: it must be 1–256 bytes with no spaces, control characters or '+' (it becomes the checkpoint's first line and the note key name), e.g. example.org/ledger/case-1. Nothing was created.")
        }
        // A ledger made with a fixed acceptance time is signed at that time unless told otherwise.
        let signedAt = signedAt ?? acceptedAt
        if let signedAt, signedAt.seconds > (acceptedAt ?? currentTime()).seconds + LedgerState.allowedClockSkew {
            let accepted = acceptedAt.map { "--accepted-at \($0.rfc3339)" } ?? "now"
            throw LedgerError(.usage, "--signed-at \(signedAt.rfc3339) is after \(accepted): the genesis cannot be signed after the ledger accepts it. Give times in that order.")
        }
        guard !adminName.isEmpty, adminName.utf8.count <= Event.maximumTextLength else {
            throw LedgerError(.usage, "The admin name must be 1–\(Event.maximumTextLength) bytes; give it with --admin-name.")
        }
        guard Event.isValidID(adminParty) else {
            throw LedgerError(.usage, "The admin party id \"\(adminParty)\" is not a valid id (1–128 characters from A–Z a–z 0–9 . _ : -).")
        }
        // `dir/` (as shells complete it) names the same place; the ledger is built beside it.
        var directory = directory
        while directory.count > 1, directory.hasSuffix("/") { directory.removeLast() }
        if FileSystem.isSymbolicLink(directory) {
            throw LedgerError(.usage, "\(directory) is a symbolic link; a ledger's files are never reached through links. Give the directory itself.")
        }
        let existsEmpty = FileSystem.exists(directory)
        if existsEmpty {
            guard FileSystem.isDirectory(directory), FileSystem.contents(of: directory).isEmpty else {
                throw LedgerError(.alreadyExists, "\(directory) already exists and is not an empty directory. Choose a new path; a ledger is never created over existing files.")
            }
        }
        // Built beside its final place and renamed into it, so that a failure leaves nothing that
        // looks like a ledger.
        let building = directory + ".creating-\(getpid())"
        FileSystem.removeTree(building)
        do throws(LedgerError) {
            try FileSystem.makeDirectory(building)
            let layout = Ledger.Layout(directory: building)
            let log = try FileDescriptor(path: layout.log, flags: O_WRONLY | O_CREAT | O_EXCL)
            try log.sync()
            try FileSystem.writeAtomically(Array(Ledger.formatText.utf8), to: layout.format, directory: building)
            let writer = try LedgerWriter(directory: building)
            let time = signedAt ?? currentTime()
            let payload = JSONValue.object([
                "v": .integer(Event.version), "type": .string("ledger.genesis"), "id": .string("genesis"),
                "author": .string(adminParty), "signed_at": .string(time.rfc3339), "origin": .string(origin),
                "party": .string(adminParty), "name": .string(adminName),
                "keys": .array([.string(Base64.encode(adminKey.publicKey.rawRepresentation))]),
            ])
            var json = JSONWriter()
            json.value(payload)
            var envelope = Envelope(payload: json.bytes, signatures: [])
            try envelope.sign(with: adminKey)
            _ = try writer.append([envelope], acceptedAt: acceptedAt)
            if existsEmpty { FileSystem.removeEmptyDirectory(directory) }
            do throws(LedgerError) {
                try FileSystem.rename(building, directory)
            } catch where FileSystem.exists(directory) {
                // Another `init` of the same path, or anything else that put files there meanwhile.
                throw LedgerError(.alreadyExists, "\(directory) was made by something else while the ledger was being built. Choose a new path; a ledger is never created over existing files.")
            }
        } catch {
            FileSystem.removeTree(building)
            // Named by the directory asked for, not by the temporary one a user never named.
            var named = LedgerError(error.code, error.message.replacing(building, with: directory) + " Nothing was created.")
            (named.cause, named.site) = (error.cause, error.site)
            throw named
        }
        // In place from here on: a failure now must not say that nothing was created.
        do throws(LedgerError) {
            try FileSystem.syncDirectory(FileSystem.parent(of: directory))
        } catch {
            throw LedgerError(error.code, "\(error.message) The ledger \(directory) was created, but may not survive a power loss: run `sync` (it flushes every file system) before relying on it.")
        }
        do throws(LedgerError) {
            return try LedgerWriter(directory: directory)
        } catch {
            throw LedgerError(error.code, "The ledger \(directory) was created (its genesis entry is written and synced), but opening it again failed: \(error.message)")
        }
    }

    /// Cuts a torn tail and brings the index up to date with the committed log.
    private func recover() throws(LedgerError) {
        if ledger.report.tornBytes > 0 {
            // Only what the scan found: a log that grew since was written by another writer (one
            // let in by a deleted lock file), whose batch this cut would take.
            try requireSoleWriter(logSize: ledger.committedEnd + ledger.report.tornBytes)
            try ledger.logFile.truncate(to: ledger.committedEnd)
            try ledger.logFile.sync()
            ledger.report.cut = true
        }
        if ledger.report.indexRebuilt {
            // Past the entries the open found consistent (none, or those before a zero-filled
            // tail): the rest is written again from the log.
            try indexFile.truncate(to: ledger.indexCount * UInt64(Ledger.IndexEntry.size))
            ledger.report.indexWritten = true
        }
        // The index is a cache: one that cannot be written now (a full disk) is written by a
        // later append or writer, and readers find the records past it meanwhile.
        try? flushPendingIndex()
        ledger.indexFile = indexFile
    }

    /// Writes index entries for committed records the index does not cover yet. The index is a
    /// cache, so it is not synced: after a power loss, the next open rebuilds what is missing.
    private func flushPendingIndex() throws(LedgerError) {
        guard !ledger.pending.isEmpty else { return }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(ledger.pending.count * Ledger.IndexEntry.size)
        for entry in ledger.pending { bytes += entry.bytes }
        let offset = ledger.indexCount * UInt64(Ledger.IndexEntry.size)
        try indexFile.write(bytes, at: offset)
        try indexFile.truncate(to: offset + UInt64(bytes.count))
        ledger.indexCount += UInt64(ledger.pending.count)
        ledger.pending = []
    }

    /// Rebuilds the rule state from the log, checking every chain link on the way: from the kept
    /// rule state if there is a usable one, else from genesis.
    private func replay() throws(LedgerError) {
        if let kept = keptRuleState() {
            do throws(LedgerError) {
                return try rebuild(from: kept)
            } catch where state.base?.readFailure != nil {
                // Damaged where the replay, or the merge that keeps it again, read it: a cache,
                // rebuilt from the log.
                dropKeptRuleState()
            }
        }
        try rebuild(from: nil)
    }

    /// Removes the kept rule state if it is what could not be read where a rule looked, saying
    /// so in the open report (damage to a file the ledger wrote can mean a failing disk). A
    /// failure of this process's own temporary tables says nothing about it: it stays.
    private func dropKeptRuleState() {
        // The kept state's table is the one read from a saved state, block by block.
        let tables = (state.base as? any RuleTableBacked)?.tables ?? []
        guard let failure = tables.first(where: { $0.blocksRead != nil && $0.readFailure != nil })?.readFailure else { return }
        // Without its remedy, which says to remove it: done.
        ledger.report.droppedRuleState = failure.message.replacing(" " + Self.rulesStateRemedy(ledger.directory), with: "")
        FileSystem.remove(ledger.layout.rulesState)
    }

    /// Replays the records after `kept` (all of them without it), and keeps the rule state again
    /// if that was ``rulesStateRefresh`` records or more.
    private func rebuild(from kept: (state: SavedState, range: CompactRange)?) throws(LedgerError) {
        state = kept.map { LedgerState(continuing: $0.state) } ?? LedgerState()
        range = kept?.range ?? CompactRange()
        replayedFrom = kept?.state.count ?? 0
        try replayRecords(from: replayedFrom, previous: kept?.state.lastEntryID ?? .zero)
        guard ledger.count - replayedFrom >= rulesStateRefresh else { return }
        do throws(LedgerError) {
            try SavedState.write(
                state, root: range.root, lastEntryID: ledger.lastEntryID, logBytes: ledger.committedEnd, to: ledger.layout.rulesState, storage: ruleState)
        } catch where state.base?.readFailure == nil {
            // A cache: if it cannot be written, the next open replays more.
        }
    }

    /// Replays the records from `start` into the rule state, checking each chain link from
    /// `previous`, the entry id before it.
    private func replayRecords(from start: UInt64, previous: Digest) throws(LedgerError) {
        var previous = previous
        let directory = ledger.directory
        let signatures = SignatureChecks(batchSize: 16, queued: 64)
        defer { signatures.cancel() }
        var unrecorded: ClosedRange<UInt64>?
        // The roots the log key signed past what the index or tree recorded: a log that no
        // longer has one would be checkpointed again in contradiction of it.
        let above = max(start, recordedAtOpen)
        let signedRoots = ledger.count <= above ? [:] : try CheckpointStore(ledgerDirectory: directory).signedRoots(above: above)
        try ledger.forEachRecord(from: start) { (stored) throws(LedgerError) -> Bool in
            func damaged(_ what: String) -> LedgerError {
                LedgerError(.damagedLog, "Entry \(stored.sequence) of \(directory) \(what). The ledger refuses to write until an operator acts: run `ledger verify \(directory)` for all findings and restore the log from a trusted copy.")
            }
            let record: Record
            do throws(LedgerError) {
                record = try stored.decoded()
            } catch {
                throw damaged("cannot be read: \(error.message)")
            }
            guard record.sequence == stored.sequence else { throw damaged("says it is sequence \(record.sequence)") }
            guard record.previous == previous else {
                throw damaged("links previous entry \(record.previous.shortHex()), but the entry before it is \(previous.shortHex())")
            }
            let event: Event
            do throws(LedgerError) {
                event = try Event(payload: record.envelope.payload, allowUnknownType: true)
            } catch {
                throw damaged("holds an unreadable statement: \(error.message)")
            }
            guard event.isKnownType else {
                throw LedgerError(.unknownEventType, "Entry \(stored.sequence) has event type \"\(event.type)\", which this version does not know; appending could break rules it cannot check. Use a newer version of `ledger` to write to this ledger.")
            }
            do throws(LedgerError) {
                // Signatures were verified when each record was appended (`ledger verify` rechecks
                // them), but for records nothing recorded: they are verified now.
                if stored.sequence >= recordedAtOpen {
                    signatures.add(record.envelope, keys: try state.signingKeys(for: record.envelope, event: event), position: stored.sequence)
                    unrecorded = (unrecorded?.lowerBound ?? stored.sequence)...stored.sequence
                }
                try state.admit(
                    record.envelope, event: event, entryID: stored.entryID, sequence: stored.sequence, acceptedAt: record.acceptedAt,
                    signaturesChecked: true)
            } catch where error.code == .io {
                throw error
            } catch {
                // A rule state that could not be read answered "not found": that is the cause.
                throw state.base?.readFailure ?? damaged("breaks a rule: \(error.message)")
            }
            if let failure = state.base?.readFailure { throw failure }
            previous = stored.entryID
            range.append(stored.entryID)
            if let signed = signedRoots[range.size], signed != range.root {
                throw LedgerError(.damagedLog, "The log's first \(range.size) entries hash to root \(range.root.shortHex()), but the checkpoint of \(range.size) entries the log key signed commits to \(signed.shortHex()): a record up to entry \(range.size - 1) changed after it was checkpointed. The ledger refuses to write (a checkpoint signed now would contradict that one) until an operator acts: run `ledger verify \(directory)` for all findings and restore the log from a trusted copy.")
            }
            try ruleState.moveOutIfDue(&state)
            return true
        }
        guard let unrecorded else { return }
        if let bad = signatures.finish().first {
            throw LedgerError(.damagedLog, "Entry \(bad) of \(directory) has a signature that does not verify, and neither the index nor the tree files record it (an append checks every signature before it writes, so it was changed since, or added by other means). The ledger refuses to write until an operator acts: run `ledger verify \(directory)` for all findings and restore the log from a trusted copy.")
        }
        ledger.report.unrecordedChecked = unrecorded
    }

    /// The kept rule state and the tree's compact range at its size, if it opens and belongs to
    /// this log: the entry at its size has its last entry id and ends where the state says the
    /// log did, and the stored tree (without reading the log) has its root there. `nil` for
    /// anything else: the log is replayed instead.
    private func keptRuleState() -> (state: SavedState, range: CompactRange)? {
        let layout = ledger.layout
        // A regular file only: nothing in a ledger directory is read through a link, and a FIFO
        // would block the open.
        guard FileSystem.isRegularFile(layout.rulesState),
            let kept = try? SavedState(path: layout.rulesState, remedy: Self.rulesStateRemedy(ledger.directory), followLinks: false), kept.count > 0,
            kept.count <= ledger.count,
            let last = try? ledger.record(at: kept.count - 1), last.entryID == kept.lastEntryID,
            let offset = try? ledger.offset(of: last), offset + UInt64(last.bytes.count) + 1 == kept.logBytes,
            let tree = StoredTreeReader(directory: ledger.treeDirectory), tree.size >= kept.count,
            let range = try? CompactRange(tree, size: kept.count), range.root == kept.root
        else { return nil }
        return (kept, range)
    }

    /// Appends `envelopes` as one group commit: every statement is checked, then all are written
    /// and made durable with one `fdatasync`, and only then acknowledged. If any statement is
    /// refused, or the write fails, nothing is appended and the log is exactly as before.
    ///
    /// - Parameters:
    ///   - acceptedAt: the acceptance time to stamp (for reproducible ledgers); the clock
    ///     otherwise. Acceptance times never go backwards: one before the last entry's is
    ///     refused with ``LedgerError/Code/timeWentBackwards``, a usage error.
    ///   - checkpointKey: the key of a checkpoint to be signed after the batch: the batch is
    ///     refused if that key could not sign it, with the batch's own statements counted (one
    ///     may register it as a party's key), so that the checkpoint does not fail after the append.
    /// - Returns: the entries, in order.
    /// - Throws: the first refusal, naming the statement's position in the batch and its id.
    @discardableResult
    public func append(_ envelopes: [Envelope], acceptedAt: Timestamp? = nil, checkpointKey: SigningKey? = nil) throws(LedgerError) -> [AppendedEntry] {
        do throws(LedgerError) {
            return try appendChecked(envelopes, acceptedAt: acceptedAt, checkpointKey: checkpointKey)
        } catch where state.base?.readFailure != nil {
            // The rule state on disk (the kept one, or the runs it grew into: caches) could not be
            // read where a rule looked, so nothing was appended. As an open does when it meets
            // damage there, the kept state is dropped and the state rebuilt from the log; then the
            // batch is checked again, once.
            dropKeptRuleState()
            try rebuild(from: nil)
            return try appendChecked(envelopes, acceptedAt: acceptedAt, checkpointKey: checkpointKey)
        }
    }

    private func appendChecked(_ envelopes: [Envelope], acceptedAt: Timestamp?, checkpointKey: SigningKey?) throws(LedgerError) -> [AppendedEntry] {
        if let stopped { throw stopped }
        guard !envelopes.isEmpty else { return [] }
        let time: Timestamp
        if let acceptedAt {
            if let last = ledger.lastAcceptedAt, acceptedAt < last {
                throw LedgerError(.timeWentBackwards, "The acceptance time \(acceptedAt) is before the last entry's (\(last)); acceptance times never go backwards. Nothing was appended. Give a time at or after \(last), or none to take the clock's.")
            }
            time = acceptedAt
        } else {
            time = max(currentTime(), ledger.lastAcceptedAt ?? Timestamp(seconds: 0))
        }
        let first = ledger.count
        let batchEnd = first + UInt64(envelopes.count) - 1
        var previous = ledger.lastEntryID
        var undo: [LedgerState.Undo] = []
        var lines: [UInt8] = []
        // Room for the batch's records at once (base64 takes 4 bytes for 3; a signature and the
        // record's own fields about 200 each): growing it by doubling copied it over and over.
        lines.reserveCapacity(envelopes.reduce(0) { $0 + $1.payload.count / 3 * 4 + 200 * ($1.signatures.count + 1) })
        var entries: [AppendedEntry] = []
        var index: [Ledger.IndexEntry] = []
        var offset = ledger.committedEnd
        // Every rule is checked in order; the signatures are checked 16 at a time on the other
        // cores while the rules go on, then on every core, and all before anything is written.
        // Small batches, so that the cores finish the last of them at nearly the same time.
        let signatures = SignatureChecks(batchSize: 16, queued: 64)
        // Its helpers return once it is finished or cancelled, whatever way this returns.
        defer { signatures.cancel() }
        var failedPositions: [UInt64]?
        /// `reason`, said of statement `at` of the batch when there are several (none is
        /// appended), and marked as the refusal of that statement.
        func refusal(_ reason: LedgerError, at: Int) -> LedgerError {
            var refused = reason
            if envelopes.count > 1 {
                refused = LedgerError(reason.code, "Statement \(at + 1) of \(envelopes.count) was refused, so none of the batch was appended. \(reason.message)")
            }
            refused.statement = at
            return refused
        }
        func firstBadSignature() -> LedgerError? {
            if failedPositions == nil { failedPositions = signatures.finish() }
            guard let position = failedPositions?.first else { return nil }
            let i = Int(position - first)
            let event = try? Event(payload: envelopes[i].payload)
            // Its signatures checked again one at a time, to say which failed, as the rules would
            // have (the keys resolved as they stand now, as the batch's later statements left them).
            if let event {
                do throws(LedgerError) {
                    try state.authenticate(envelopes[i], event: event, acceptedAt: nil, signaturesChecked: false)
                } catch where error.code == .badSignature {
                    return error
                } catch {}
            }
            return LedgerError(.badSignature, "A signature does not verify over the statement \"\(event?.id ?? "?")\". The envelope was changed after signing, or signed with another key. Sign it again with `ledger sign`.")
        }
        for (i, envelope) in envelopes.enumerated() {
            let sequence = first + UInt64(i)
            do throws(LedgerError) {
                let event = try Event(payload: envelope.payload)
                let bytes = Record(sequence: sequence, previous: previous, acceptedAt: time, batchEnd: batchEnd, envelope: envelope).encoded()
                guard bytes.count <= Record.maximumSize else {
                    throw LedgerError(.tooLarge, "The record would be \(bytes.count) bytes; the limit is \(Record.maximumSize).")
                }
                let entryID = Record.entryID(of: bytes)
                do throws(LedgerError) {
                    signatures.add(envelope, keys: try state.signingKeys(for: envelope, event: event), position: sequence)
                    undo += try state.admit(envelope, event: event, entryID: entryID, sequence: sequence, acceptedAt: time, signaturesChecked: true)
                    // A rule state that could not be read answered "not found": nothing checked holds.
                    if let failure = state.base?.readFailure { throw failure }
                } catch where (error.code == .duplicateID || error.code == .revokedKey) && state.base?.readFailure == nil {
                    // A statement sent again is said as such, even when its key has been revoked
                    // since: "sign with a current key" would only lead to a duplicate id.
                    throw duplicateStatement(event, envelope, batch: Array(envelopes[..<i])) ?? error
                }
                lines += bytes
                lines.append(0x0a)
                index.append(Ledger.IndexEntry(offset: offset, length: UInt32(bytes.count), entryID: entryID))
                offset += UInt64(bytes.count + 1)
                entries.append(AppendedEntry(sequence: sequence, entryID: entryID, acceptedAt: time))
                previous = entryID
            } catch {
                // A bad signature earlier in the batch is the first reason, as if checked in order;
                // a rule state that could not be read comes before both. The signature checks are
                // waited for either way: none runs on after the append has returned. Before the
                // undo, so that the keys the batch registered still resolve for the message.
                let badSignature = firstBadSignature()
                state.undo(undo)
                let reason = state.base?.readFailure ?? badSignature ?? error
                throw refusal(reason, at: failedPositions?.first.map { Int($0 - first) } ?? i)
            }
        }
        if let reason = firstBadSignature() {
            state.undo(undo)
            throw refusal(reason, at: Int((failedPositions?.first ?? first) - first))
        }
        if let checkpointKey {
            do throws(LedgerError) {
                try checkCheckpointKey(checkpointKey)
            } catch {
                state.undo(undo)
                throw LedgerError(error.code, "\(error.message) Nothing was appended either: the checkpoint was to follow the statements.")
            }
        }
        // Only this writer may have written since it opened the log, and only while its lock file
        // is still the one at the lock's path: one deleted or replaced lets another writer in,
        // and a log of another size was written by something else, whose bytes a write here (or
        // the cut after a failed one) would destroy.
        do throws(LedgerError) {
            try requireSoleWriter(logSize: ledger.committedEnd)
        } catch {
            state.undo(undo)
            throw error
        }
        do throws(LedgerError) {
            try ledger.logFile.write(lines, at: ledger.committedEnd)
            try ledger.logFile.sync()
        } catch {
            // Put the log back exactly as it was; the records were never acknowledged. If that
            // fails too, they may be in the log, where the next writer would take them for a
            // complete group commit: said so, and this writer writes no more.
            state.undo(undo)
            do throws(LedgerError) {
                try ledger.logFile.truncate(to: ledger.committedEnd)
                try ledger.logFile.sync()
            } catch let cut {
                let kept = LedgerError(error.code, "\(error.message) Entries \(first)…\(batchEnd) were not acknowledged, but they could not be cut from the log either (\(cut.message)), so they may be there: see whether they are with `ledger log \(ledger.directory) --from \(first)` before sending them again. This writer appends nothing more.")
                stopped = kept
                throw kept
            }
            throw error
        }
        // Checked again once synced: another writer let in meanwhile may have cut what this one
        // wrote as a torn tail. Then nothing is acknowledged, and this writer writes no more.
        do throws(LedgerError) {
            try requireSoleWriter(logSize: offset)
        } catch {
            state.undo(undo)
            let lost = LedgerError(error.code, "\(error.message) Entries \(first)…\(batchEnd) were written, but another writer may have cut them: they are not acknowledged. See whether they are there with `ledger log \(ledger.directory) --from \(first)`; this writer appends nothing more.")
            stopped = lost
            throw lost
        }
        ledger.committedEnd = offset
        ledger.count = batchEnd + 1
        ledger.lastEntryID = previous
        ledger.lastAcceptedAt = time
        ledger.pending += index
        for entry in entries { range.append(entry.entryID) }
        // Kept in memory if it cannot go to disk now (tried again after as many records more): the
        // append is durable and acknowledged. A state that cannot be read refuses the next append.
        if state.count >= retryMoveOutAt {
            do throws(LedgerError) {
                try ruleState.moveOutIfDue(&state)
            } catch {
                retryMoveOutAt = state.count + ruleState.recordsInMemory
            }
        }
        // The entries are durable and acknowledged from here on. The index is a cache: if it
        // cannot be written now (a full disk), readers find the records past it and the next
        // writer indexes them, so the failure must not turn a durable append into an error.
        try? flushPendingIndex()
        // The tree is a cache too: a failed write drops it until the next open rebuilds it.
        // Only onto a tree level with the log before the batch: leaves elsewhere would be at the
        // wrong positions.
        if let level = tree, level.size == first {
            do throws(MerkleTreeError) {
                try level.append(leafHashes: entries.map(\.entryID))
                try level.flush()
            } catch {
                tree = nil
            }
        } else {
            tree = nil
        }
        return entries
    }

    /// Refuses unless this writer's lock file is still the one at the lock's path, and the log is
    /// `logSize` bytes, as this writer left it: a lock file deleted or replaced lets another
    /// writer in, and a log of another size was written by something else, whose bytes a write
    /// here (or the cut after a failed one) would destroy.
    private func requireSoleWriter(logSize: UInt64) throws(LedgerError) {
        guard lock.isHeld else {
            throw LedgerError(.lockTimeout, "The lock file \(ledger.layout.lock) was deleted or replaced while this writer held it, so another writer may be appending. Never delete the lock file; run the command again.")
        }
        let size = try ledger.logFile.size
        guard size == logSize else {
            throw LedgerError(.damagedLog, "The log \(ledger.layout.log) is \(size) bytes; this writer found or left it at \(logSize). Something else wrote to it while this writer held the lock. Nothing was cut or appended. Stop every other writer, then run `ledger verify \(ledger.directory)`.")
        }
    }

    /// If `event` repeats a statement already in the ledger (or earlier in the batch) with the
    /// same payload bytes, the error that says so.
    private func duplicateStatement(_ event: Event, _ envelope: Envelope, batch: [Envelope]) -> LedgerError? {
        if let existing = state.sequence(of: .event, event.id), existing < ledger.count,
            let stored = try? ledger.record(at: existing).decoded(), stored.envelope.payload == envelope.payload
        {
            return LedgerError(.duplicateStatement, "This exact statement (\"\(event.id)\", identical payload) is already entry \(existing). Nothing needs doing.")
        }
        if batch.contains(where: { $0.payload == envelope.payload }) {
            return LedgerError(.duplicateStatement, "This exact statement (\"\(event.id)\") appears twice in the batch.")
        }
        return nil
    }
}

extension Ledger.Layout {
    /// Removes what writers stopped mid-write (killed, or the machine stopped) left: the index or
    /// kept rule state being replaced, a tree being rebuilt by repair, a checkpoint or the log's
    /// verifier key being stored. Each can be as large as the ledger's index or tree, and nothing
    /// else would ever remove it. Only under the writer lock, so none is in use. Nothing is
    /// removed through a `checkpoints` that is a link.
    func removeWriterLeftovers() {
        for name in FileSystem.contents(of: directory) {
            let path = directory + "/" + name
            if path.hasPrefix(index + ".tmp-") || path.hasPrefix(rulesState + ".tmp-") {
                FileSystem.remove(path)
            } else if path.hasPrefix(tree + ".rebuilding-") {
                if FileSystem.isSymbolicLink(path) { FileSystem.remove(path) } else { FileSystem.removeTree(path) }
            }
        }
        guard !FileSystem.isSymbolicLink(checkpoints) else { return }
        for name in FileSystem.contents(of: checkpoints) where name.contains(".tmp-") {
            FileSystem.remove(checkpoints + "/" + name)
        }
    }
}
