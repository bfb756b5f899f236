#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto
public import LedgerMerkle

/// The result of a verification: every finding, not just the first.
public struct VerificationReport: Sendable {
    /// One problem found, at a position in the log.
    public struct Finding: Sendable, Hashable, CustomStringConvertible {
        /// The position in the log (the n-th line, from 0) where it was found; for a checkpoint,
        /// its tree size.
        public var sequence: UInt64
        public var code: LedgerError.Code
        /// Whether it is about the stored checkpoint of `sequence` entries rather than an entry.
        public var aboutCheckpoint = false
        public var message: String

        /// Where it was found, for people: "entry N", or "checkpoint of N entries".
        public var location: String { aboutCheckpoint ? "checkpoint of \(sequence) entries" : "entry \(sequence)" }

        public var description: String { "\(location): [\(code.name)] \(message)" }

        public init(sequence: UInt64, code: LedgerError.Code, aboutCheckpoint: Bool = false, message: String) {
            self.sequence = sequence
            self.code = code
            self.aboutCheckpoint = aboutCheckpoint
            self.message = message.singleFullStops
        }
    }

    /// Records read.
    public var records: UInt64 = 0
    /// Records fully checked (signatures and rules); in an incremental verification, the new ones.
    public var checked: UInt64 = 0
    /// Signatures verified.
    public var signatures: Int = 0
    /// Stored checkpoints whose signature and root were verified.
    public var checkpoints: Int = 0
    /// Damage and broken rules, in log order.
    public var findings: [Finding] = []
    /// Problems in derived files (caches), which the next write rebuilds; not damage.
    public var notes: [String] = []
    /// The entry id of the last record.
    public var lastEntryID = Digest.zero
    /// The RFC 6962 root over every record read.
    public var root = RFC6962.emptyRoot
    /// The size at which the rule state was saved (`saveState`), if it was.
    public var savedStateSize: UInt64?
    /// The newest stored checkpoint verified against the log (its signature and root), with the
    /// file it is in; cosignatures of the witnesses required of it are checked, others are left
    /// as unknown signatures.
    public var newestCheckpoint: (path: String, checkpoint: VerifiedCheckpoint)?

    /// Whether the log is intact: no findings.
    public var isIntact: Bool { findings.isEmpty }

    /// Whether a finding is of damage: not only of event types this version does not know (their
    /// rules cannot be checked) or of requirements not met (the log is not as asked for).
    public var foundDamage: Bool { findings.contains { $0.code != .unknownEventType && $0.code != .requirementNotMet } }
}

/// Verification of a ledger directory, trusting nothing stored but the bytes of the log and the
/// keys given: every record's framing, sequence number and chain link, every entry id, every
/// signature, every append rule (key registered to the author and valid at that position, roles,
/// references, unique ids), every stored evidence blob, and the root and signature of every
/// stored checkpoint. It never writes.
public enum Verifier {
    /// Verifies the whole ledger in `directory`, from genesis.
    /// - Parameters:
    ///   - checkpoints: how to check stored checkpoints; by default with the log key recorded in
    ///     `checkpoints/log.vkey` (pass your own trusted key to rely on nothing in the directory).
    ///   - progress: called now and then with (records read, bytes read, total bytes).
    /// - Throws: only when the directory cannot be read at all; damage is reported, not thrown.
    ///   - saveState: where to save the rule state at a stored checkpoint, for later incremental
    ///     verifications (see ``SavedState``); saved only if the ledger is intact. Refused before
    ///     any work if it lies in the ledger directory or names a file that is not a saved state
    ///     (``SavedState/checkTarget(_:ledger:)``).
    ///   - saveAt: the size of the stored checkpoint to save the state at; by default the newest.
    ///   - ruleState: where the rule state goes as it grows.
    ///   - requirements: what a reviewer requires of the log besides its integrity.
    public static func verify(
        directory: String, logKey: NoteVerifier? = nil, requirements: Requirements? = nil, saveState: String? = nil, saveAt: UInt64? = nil,
        ruleState: RuleStateStorage = RuleStateStorage(), progress: ((UInt64, UInt64, UInt64) -> Void)? = nil
    ) throws(LedgerError) -> VerificationReport {
        if let saveState { try SavedState.checkTarget(saveState, ledger: directory) }
        var report = try verify(
            directory: directory, logKey: logKey, requirements: requirements, saveState: saveState, saveAt: saveAt, ruleState: ruleState,
            parallel: true, progress: progress)
        if report.findings.contains(where: { $0.code == .badSignature }) {
            report = try verify(
                directory: directory, logKey: logKey, requirements: requirements, saveState: saveState, saveAt: saveAt, ruleState: ruleState,
                parallel: false, progress: progress)
        }
        return report
    }

    /// What a reviewer may require of a log besides its integrity; an unmet one is a
    /// ``LedgerError/Code/requirementNotMet`` finding.
    public struct Requirements: Sendable {
        /// The origin the log must be of (its genesis record names it).
        public var origin: String?
        /// Witnesses, `requiredWitnesses` of which must have cosigned the newest checkpoint the
        /// log key signed.
        public var witnesses: [NoteVerifier]
        public var requiredWitnesses: Int

        public init(origin: String? = nil, witnesses: [NoteVerifier] = [], requiredWitnesses: Int = 0) {
            self.origin = origin
            self.witnesses = witnesses
            self.requiredWitnesses = requiredWitnesses
        }
    }

    private static func verify(
        directory: String, logKey: NoteVerifier?, requirements: Requirements?, saveState: String?, saveAt: UInt64?, ruleState: RuleStateStorage,
        parallel: Bool, progress: ((UInt64, UInt64, UInt64) -> Void)?
    ) throws(LedgerError) -> VerificationReport {
        let stored = CheckpointStore(ledgerDirectory: directory)
        var key = logKey
        if key == nil { key = try stored.verifierKey() }
        // Each stored checkpoint with its size, worked out once rather than after every record, and
        // listed before the log's size is read: one signed meanwhile is of records past that size.
        var pending = stored.files().compactMap { path in CheckpointStore.size(ofFile: path).map { (path: path, size: $0) } }
        var checker = try RecordChecker(directory: directory, ruleState: ruleState, logKey: key)
        checker.parallel = parallel
        for stray in stored.strayFiles() {
            checker.report.notes.append("\(stray) is not a checkpoint file name (<20-digit size>-<8 hex>.note); it was not checked.")
        }
        if key == nil && !pending.isEmpty {
            checker.report.notes.append("The checkpoints are not checked: there is no log key (checkpoints/log.vkey is missing); pass --vkey.")
            pending = []
        }
        checker.keepEvidence(between: pending.map(\.size))
        if let requirements, !requirements.witnesses.isEmpty {
            guard let key else { throw LedgerError(.usage, "Witnesses are given, but there is no log key to tell the log's checkpoints by: give --vkey.") }
            do throws(NoteError) {
                _ = try CheckpointVerifier(origin: key.name, log: key, witnesses: requirements.witnesses, requiredWitnesses: requirements.requiredWitnesses)
            } catch {
                throw LedgerError(.usage, "The checkpoint keys cannot be used together: \(error).")
            }
            checker.witnesses = requirements.witnesses
        }
        // The state is saved at the newest checkpoint, the size a reviewer will hold a checkpoint of.
        let saveAt = saveState == nil ? nil : saveAt ?? pending.last?.size
        var next = 0
        try checker.run(fullChecksFrom: 0, progress: progress) { (checker) throws(LedgerError) in
            // After each record: check the stored checkpoints of exactly this size.
            while next < pending.count, pending[next].size <= checker.position {
                let (path, size) = pending[next]
                next += 1
                guard let key else { continue }
                let verified = checker.report.checkpoints
                try checker.checkStoredCheckpoint(path: path, size: size, key: key)
                if size == saveAt, checker.report.checkpoints > verified { checker.captureState() }
            }
        }
        for (path, size) in pending[next...] {
            // Only a checkpoint the log key signed is evidence that entries are gone.
            if let key, let origin = checker.state.origin {
                let problem: String?
                do throws(NoteError) {
                    let checkpoint = try CheckpointVerifier(origin: origin, log: key).verify((try? CheckpointStore.read(path)) ?? [])
                    problem = checkpoint.size == size ? nil : "it says \(checkpoint.size) entries"
                } catch {
                    problem = "\(error)"
                }
                if let problem {
                    checker.report.findings.append(.init(sequence: size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The stored checkpoint \(path), named for \(size) entries (more than the log's \(checker.report.records)), is not one the log key signed for that size: \(problem). Remove it if it is not the log's own."))
                    continue
                }
            }
            checker.report.findings.append(.init(sequence: size, code: .damagedLog, aboutCheckpoint: true, message: "The stored checkpoint \(path) commits to \(size) entries, but the log has only \(checker.report.records): entries it covered are gone."))
        }
        checker.checkIndexAndTree()
        if let requirements { checker.apply(requirements) }
        if let saveState { try checker.saveCapturedState(to: saveState) }
        return checker.report
    }

    /// Incremental verification from a checkpoint the reviewer trusts: the trusted checkpoint and
    /// the newest stored one are verified with `verifier`; the log's first entries must still have
    /// the trusted root (nothing rewritten), a consistency proof from the trusted checkpoint to the
    /// newest must verify, and only the entries after the trusted checkpoint are checked in full.
    ///
    /// Without a saved state the rule state is rebuilt from the entries before the trusted
    /// checkpoint (O(n), their signatures unchecked); with the state the reviewer saved at that
    /// checkpoint, only the new entries are read: O(new entries + log n).
    ///
    /// - Parameters:
    ///   - state: the rule state the reviewer saved at the trusted checkpoint (its size and root
    ///     must be the checkpoint's).
    ///   - saveState: where to save the rule state at the newest checkpoint, if the ledger is intact.
    ///   - ruleState: where the rule state goes as it grows.
    /// - Returns: the report; findings say what does not hold.
    /// - Throws: ``LedgerError/Code/invalidCheckpoint`` if the trusted checkpoint does not verify;
    ///   ``LedgerError/Code/usage`` if `state` is not the state at the trusted checkpoint, or was
    ///   read from the ledger directory.
    public static func verify(
        directory: String, since trustedText: [UInt8], verifier: CheckpointVerifier, state: SavedState? = nil,
        saveState: String? = nil, ruleState: RuleStateStorage = RuleStateStorage(), progress: ((UInt64, UInt64, UInt64) -> Void)? = nil
    ) throws(LedgerError) -> (report: VerificationReport, trusted: VerifiedCheckpoint, newest: VerifiedCheckpoint) {
        try verify(
            directory: directory, since: trustedText, verifier: verifier, state: state, saveState: saveState, ruleState: ruleState,
            readAhead: SavedStateReadAhead.Settings(), progress: progress)
    }

    /// As the public function; `readAhead` says how the lookups in `state` are read ahead
    /// (``SavedStateReadAhead``), or `nil` for not at all (for tests).
    static func verify(
        directory: String, since trustedText: [UInt8], verifier: CheckpointVerifier, state: SavedState?, saveState: String?,
        ruleState: RuleStateStorage, readAhead: SavedStateReadAhead.Settings?, progress: ((UInt64, UInt64, UInt64) -> Void)? = nil
    ) throws(LedgerError) -> (report: VerificationReport, trusted: VerifiedCheckpoint, newest: VerifiedCheckpoint) {
        if let state { try SavedState.checkSource(state.path, ledger: directory) }
        if let saveState { try SavedState.checkTarget(saveState, ledger: directory) }
        let result = try verify(
            directory: directory, since: trustedText, verifier: verifier, state: state, saveState: saveState, ruleState: ruleState, parallel: true,
            readAhead: readAhead, progress: progress)
        guard result.report.findings.contains(where: { $0.code == .badSignature }) else { return result }
        return try verify(
            directory: directory, since: trustedText, verifier: verifier, state: state, saveState: saveState, ruleState: ruleState, parallel: false,
            readAhead: readAhead, progress: progress)
    }

    private static func verify(
        directory: String, since trustedText: [UInt8], verifier: CheckpointVerifier, state saved: SavedState?, saveState: String?,
        ruleState: RuleStateStorage, parallel: Bool, readAhead settings: SavedStateReadAhead.Settings?, progress: ((UInt64, UInt64, UInt64) -> Void)?
    ) throws(LedgerError) -> (report: VerificationReport, trusted: VerifiedCheckpoint, newest: VerifiedCheckpoint) {
        let trusted: VerifiedCheckpoint
        do throws(NoteError) {
            trusted = try verifier.logOnly.verify(trustedText)
        } catch {
            throw LedgerError(.invalidCheckpoint, "The trusted checkpoint does not verify with the key given: \(error).")
        }
        if let saved, saved.count != trusted.size || saved.root != trusted.root {
            throw LedgerError(.usage, "The saved state \(saved.path) is for \(saved.count) entries with root \(saved.root.shortHex()); the trusted checkpoint is for \(trusted.size) entries with root \(trusted.root.shortHex()). Use the state saved with that checkpoint, or verify without --state.")
        }
        // The newest checkpoint first, then the log: one signed meanwhile would be of records the
        // log, opened before it, does not show, and look like a rollback.
        guard let newestFile = try CheckpointStore(ledgerDirectory: directory).newest() else {
            throw LedgerError(.invalidCheckpoint, "\(directory) has no stored checkpoint to verify against. Ask the operator to run `ledger checkpoint`.")
        }
        let ledger = try Ledger(directory: directory)
        let newest: VerifiedCheckpoint
        do throws(NoteError) {
            newest = try verifier.verify(newestFile.text)
        } catch {
            throw LedgerError(.invalidCheckpoint, "The ledger's newest checkpoint (\(newestFile.path)) does not verify with the key given: \(error).")
        }
        // Which checkpoints lie between the trusted one and the newest is read off their names.
        if let named = CheckpointStore.size(ofFile: newestFile.path), named != newest.size {
            throw LedgerError(.invalidCheckpoint, "The ledger's newest checkpoint (\(newestFile.path)) is named for size \(named) but says \(newest.size): a checkpoint was copied or renamed into its place. Run a full `ledger verify \(directory)` for every finding.")
        }
        var checker = try RecordChecker(directory: directory, ruleState: ruleState, logKey: verifier.log)
        checker.parallel = parallel
        // The stored checkpoints from the trusted size to the newest are checked as the entries
        // pass their sizes, as a full verification checks every one: one the log key signed that
        // the log contradicts shows the key signed two histories. Those before the trusted size
        // are, as the old entries are, a full verification's to check.
        let between = CheckpointStore(ledgerDirectory: directory).files().compactMap { path in
            CheckpointStore.size(ofFile: path).flatMap { trusted.size <= $0 && $0 <= newest.size && path != newestFile.path ? (path: path, size: $0) : nil }
        }
        var next = 0
        checker.keepEvidence(between: Array(Set([trusted.size, newest.size] + between.map(\.size))).sorted())
        guard trusted.size <= newest.size, newest.size <= ledger.count else {
            checker.report.findings.append(.init(sequence: trusted.size, code: .equivocation, aboutCheckpoint: true, message: "The trusted checkpoint has \(trusted.size) entries; the ledger's newest checkpoint has \(newest.size) and its log \(ledger.count). A log never shrinks: this is a rollback or another log."))
            return (checker.report, trusted, newest)
        }
        // 1. The stored tree's first `trusted.size` leaves must still fold to the trusted root,
        //    and a consistency proof must lead from it to the newest checkpoint.
        //    Both are made from the log instead where the stored tree (a cache) disagrees.
        let tree = try ledger.merkleTree()
        var trustedRange: CompactRange?
        let range = try ledger.compactRange(size: trusted.size, root: trusted.root, in: tree)
        if range.root != trusted.root {
            checker.report.findings.append(.init(sequence: trusted.size, code: .equivocation, aboutCheckpoint: true, message: "The ledger's first \(trusted.size) entries no longer have the trusted root \(trusted.root.shortHex()): the log was rewritten, or this is another log."))
        } else {
            trustedRange = range
            // Without a saved state the log's own first entries are read, and they prove it, or
            // not, as they pass the trusted size; with one, the tree stands for them.
            if saved != nil { checker.provenSize = trusted.size }
        }
        let proof = try ledger.consistencyProof(from: trusted.size, to: newest.size, oldRoot: trusted.root, newRoot: newest.root, in: tree)
        do throws(ProofError) {
            try proof.verify(from: trusted, to: newest)
        } catch {
            checker.report.findings.append(.init(sequence: newest.size, code: .invalidProof, aboutCheckpoint: true, message: "No valid consistency proof from the trusted checkpoint (\(trusted.size)) to the newest (\(newest.size)): \(error)."))
        }
        // 2. With a saved state, reading starts at the trusted size, from the tree's range there
        //    (which folds to the trusted root) and the saved last entry id; without one, entries
        //    before the trusted checkpoint only rebuild the rule state. The new entries are checked
        //    in full, and their leaves must extend the trusted root to the newest root.
        var startOffset: UInt64 = 0
        if let saved {
            guard let trustedRange else { return (checker.report, trusted, newest) }
            if trusted.size > 0 {
                let last = try ledger.record(at: trusted.size - 1)
                guard last.entryID == saved.lastEntryID else {
                    checker.report.findings.append(.init(sequence: trusted.size - 1, code: .equivocation, message: "Entry \(trusted.size - 1) has entry id \(last.entryID.shortHex()); the saved state recorded \(saved.lastEntryID.shortHex()) when this checkpoint was verified: the log was rewritten."))
                    return (checker.report, trusted, newest)
                }
                checker.previousTime = try last.decoded().acceptedAt
                // Just after the last trusted record: whatever was appended since the ledger was
                // opened is read too.
                startOffset = try ledger.offset(of: last) + UInt64(last.bytes.count) + 1
            }
            // Found through the index: lines put in or taken out before it move it, which the old
            // entries, not read again, would not show.
            guard startOffset == saved.logBytes else {
                checker.report.findings.append(.init(sequence: trusted.size, code: .damagedLog, message: "The log's first \(trusted.size) entries take \(startOffset) bytes; they took \(saved.logBytes) when this checkpoint was verified (the saved state's record): a line before entry \(trusted.size) was changed, put in or taken out. Run a full `ledger verify \(directory)` to find where."))
                return (checker.report, trusted, newest)
            }
            checker.resume(at: trusted.size, state: LedgerState(continuing: saved), range: trustedRange, previous: saved.lastEntryID)
        }
        var readAhead: SavedStateReadAhead?
        if let saved, let settings {
            readAhead = SavedStateReadAhead(saved: saved, log: checker.log, from: startOffset, end: checker.size, settings: settings)
        }
        func stopReadingAhead() {
            guard let ahead = readAhead else { return }
            settings?.finished?(ahead)
            ahead.stop()
            readAhead = nil
        }
        defer { stopReadingAhead() }
        try checker.run(fullChecksFrom: trusted.size, fromOffset: startOffset, progress: progress) { (checker) throws(LedgerError) in
            readAhead?.passed(checker.position)
            // Once the state is checked whole its file is in the page cache, and the read-ahead's
            // threads would only take the cores from the signature checks.
            if readAhead != nil, saved?.isCheckedWhole == true { stopReadingAhead() }
            if saved == nil, trustedRange != nil, checker.position == trusted.size {
                if checker.range.root == trusted.root {
                    checker.provenSize = max(checker.provenSize, trusted.size)
                } else {
                    checker.report.findings.append(.init(sequence: trusted.size, code: .equivocation, aboutCheckpoint: true, message: "The log's first \(trusted.size) entries hash to root \(checker.range.root.shortHex()), not the trusted root \(trusted.root.shortHex()), which the tree files still fold to: entries it covers were changed since."))
                }
            }
            while next < between.count, between[next].size <= checker.position {
                try checker.checkStoredCheckpoint(path: between[next].path, size: between[next].size, key: verifier.log)
                next += 1
            }
            if checker.position == newest.size {
                if checker.range.root != newest.root {
                    checker.report.findings.append(.init(sequence: newest.size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The entries up to \(newest.size) hash to root \(checker.range.root.shortHex()), not the newest checkpoint's \(newest.root.shortHex())."))
                } else {
                    checker.provenSize = max(checker.provenSize, newest.size)
                    if saveState != nil { checker.captureState() }
                }
            }
        }
        checker.resolveCacheEvidence()
        checker.report.newestCheckpoint = (newestFile.path, newest)
        if let saveState { try checker.saveCapturedState(to: saveState) }
        return (checker.report, trusted, newest)
    }

    /// Whether an unfinished record or group commit at the end of the log belongs to an append that
    /// is still running (a writer holds the lock, or the log has grown since verification began),
    /// rather than to an interrupted one.
    static func appendInProgress(log: FileDescriptor, sizeAtStart: UInt64, layout: Ledger.Layout) -> Bool {
        if let size = try? log.size, size != sizeAtStart { return true }
        if Ledger.writerHoldsLock(layout) { return true }
        if let size = try? log.size, size != sizeAtStart { return true }
        return false
    }
}

/// Reads the log line by line and checks each record, keeping the rule state (bounded in memory,
/// see ``RuleStateStorage``), the chain and a compact range of the Merkle tree.
struct RecordChecker {
    let directory: String
    let ruleState: RuleStateStorage
    let layout: Ledger.Layout
    let log: FileDescriptor
    let size: UInt64
    let blobs: BlobStore
    var report = VerificationReport()
    var state = LedgerState()
    var range = CompactRange()
    var previous = Digest.zero
    var previousTime: Timestamp?
    /// Records read so far.
    var position: UInt64 = 0
    /// Whether signatures are checked in batches on every core, while the next records are read.
    /// When any fails, the verification is run again in order so that every finding after it is
    /// exactly what an in-order check reports.
    var parallel = true
    private var captured: (state: LedgerState, root: Digest, last: Digest, logBytes: UInt64)?
    /// Signatures checked on the other cores while the next records are read, 256 at a time; this
    /// thread checks some too whenever 16 batches wait.
    private let signatures = SignatureChecks(batchSize: 256, queued: 16)
    private var index: (file: FileDescriptor, entries: UInt64)?
    private var indexMismatch: UInt64?
    private var indexComparison = Ledger.IndexComparison()
    /// Index entries read ahead, many at a time, not one read per record.
    private var indexAhead = ReadAhead(itemSize: Ledger.IndexEntry.size)
    private var storedTree: SequentialTreeReader?
    /// What the derived files recorded before the log's size was read (they are written after
    /// the log is synced, so an append running meanwhile cannot make them exceed it).
    private let acknowledged: Ledger.Acknowledged
    /// Where the last whole record read ends: where the next acknowledged one would begin.
    private var wholeEnd: UInt64 = 0
    /// Evidence from the index and tree files that a record changed, kept until the checkpoints
    /// are checked: where one signed by the log key proves the log, the cache is what is damaged
    /// (see ``resolveCacheEvidence()``). Each holds the first after each checkpoint's size.
    private var indexEvidence = Ledger.CacheEvidence(from: .index, checkpointSizes: [])
    private var treeEvidence = Ledger.CacheEvidence(from: .tree, checkpointSizes: [])
    /// The largest checkpoint verified against the log: the log key signed its first entries.
    var provenSize: UInt64 = 0
    /// Witnesses whose cosignatures on stored checkpoints are checked (those a reviewer gave).
    var witnesses: [NoteVerifier] = []
    /// Entries the derived files show acknowledged past the log's end, once it is read.
    private var lostEntries: Ledger.Acknowledged.Lost?
    private var treeMismatch: (level: Int, index: UInt64)?
    /// Evidence blobs found missing; the first few are named in notes, the rest counted (a ledger
    /// kept without its blobs would otherwise hold a note per evidence item in memory).
    private var missingBlobs = 0
    private static let missingBlobsNamed = 10

    /// - Parameter logKey: the key stored checkpoints are checked by; by default the one recorded
    ///   in the directory.
    init(directory: String, ruleState: RuleStateStorage, logKey: NoteVerifier? = nil) throws(LedgerError) {
        self.directory = directory
        self.ruleState = ruleState
        layout = Ledger.Layout(directory: directory)
        try Ledger.checkFormat(layout)
        acknowledged = try Ledger.acknowledged(layout, logKey: logKey)
        log = try FileDescriptor(path: layout.log, flags: O_RDONLY)
        size = try log.size
        blobs = BlobStore(ledgerDirectory: directory)
        storedTree = StoredTreeReader(directory: Ledger.Layout(directory: directory).tree).map(SequentialTreeReader.init)
        do throws(LedgerError) {
            let file = try FileDescriptor(path: layout.index, flags: O_RDONLY | O_NONBLOCK)
            index = (file, try file.size / UInt64(Ledger.IndexEntry.size))
        } catch {
            if FileSystem.exists(layout.index) { indexUnreadable = error.message }
        }
    }

    /// Why the index is there but cannot be read, if so: not the same as missing.
    private var indexUnreadable: String?

    private mutating func finding(_ code: LedgerError.Code, _ message: String) {
        report.findings.append(.init(sequence: position, code: code, message: message))
    }

    /// Reads every record; records from `fullChecksFrom` on get every check, earlier ones only
    /// rebuild the rule state. `afterRecord` runs after each record.
    mutating func run(
        fullChecksFrom start: UInt64, fromOffset offset: UInt64 = 0, progress: ((UInt64, UInt64, UInt64) -> Void)?,
        afterRecord: (inout RecordChecker) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        var cursor = LogCursor(file: log, from: offset, end: size)
        wholeEnd = offset
        var openBatchEnd: UInt64?
        var tornBytes: UInt64?
        // Where the group commit of the record being read began; and, if the log ends inside one
        // that no append is finishing, where that one began: the next write cuts from there.
        var batchStart = (sequence: position, offset: offset)
        var unfinished: (sequence: UInt64, offset: UInt64)?
        // Stopped early by an error, the checks still waiting are dropped.
        defer { signatures.cancel() }
        try afterRecord(&self)
        while let line = try cursor.next() {
            if position % 65_536 == 0 { progress?(position, line.offset, size) }
            if openBatchEnd == nil { batchStart = (position, line.offset) }
            guard line.complete else {
                if Verifier.appendInProgress(log: log, sizeAtStart: size, layout: layout) {
                    report.notes.append("An append was in progress while verifying; its records were not checked.")
                } else {
                    tornBytes = line.length
                    unfinished = batchStart
                }
                openBatchEnd = nil
                break
            }
            if line.tooLong {
                finding(.malformedRecord, "A line of \(line.length) bytes at byte \(line.offset) is longer than any record may be (\(Record.maximumSize) bytes): it was changed outside `ledger`.")
            }
            openBatchEnd = check(line.bytes, offset: line.offset, full: position >= start)
            if let cannotCheck { throw cannotCheck }
            position += 1
            wholeEnd = line.offset + UInt64(line.bytes.count) + 1
            try ruleState.moveOutIfDue(&state)
            try afterRecord(&self)
        }
        for position in signatures.finish() {
            report.findings.append(.init(sequence: position, code: .badSignature, message: "A signature does not verify over the statement at this entry: it was changed after signing."))
        }
        var unfinishedEnd: UInt64?
        if let openBatchEnd {
            if Verifier.appendInProgress(log: log, sizeAtStart: size, layout: layout) {
                report.notes.append("An append was in progress while verifying (group commit ending at sequence \(openBatchEnd)); it was checked as far as it was written.")
            } else {
                unfinished = batchStart
                unfinishedEnd = openBatchEnd
            }
        }
        progress?(position, size, size)
        if missingBlobs > Self.missingBlobsNamed {
            report.notes.append("\(missingBlobs - Self.missingBlobsNamed) more evidence blobs are not stored (\(missingBlobs) in all); `ledger blob check \(directory)` lists every one.")
        }
        // A lookup that could not read the tables on disk answered "not found": nothing here holds.
        if let failure = state.base?.readFailure { throw failure }
        report.root = range.root
        // What the next write keeps: the log up to the group commit it would cut, as an open counts.
        let kept = unfinished?.sequence ?? report.records
        lostEntries = try acknowledged.beyond(kept, committedEnd: unfinished?.offset ?? wholeEnd)
        // Harmless unless the derived files show acknowledged entries gone (a finding of its own).
        let consequence: String
        if lostEntries != nil {
            consequence = "The next write command would cut it, but entries it would cut were acknowledged, so the writer refuses"
        } else if let unfinished, unfinished.sequence < position {
            consequence = "The next write command cuts it, with the unfinished group commit from sequence \(unfinished.sequence); no acknowledged entry is affected"
        } else {
            consequence = "The next write command cuts it; no acknowledged entry is affected"
        }
        if let tornBytes {
            finding(.damagedLog, "The log ends with \(tornBytes) bytes of an incomplete record: a write was interrupted. \(consequence).")
        } else if let unfinishedEnd {
            finding(.damagedLog, "The last group commit (ending at sequence \(unfinishedEnd)) is incomplete: a write was interrupted. \(consequence).")
        }
        if let lost = lostEntries {
            let unfinishedNote = kept < report.records ? " (Entries \(kept)…\(report.records - 1) are in the log, but their group commit is not whole.)" : ""
            report.findings.append(.init(sequence: kept, code: .damagedLog, message: "\(lost.message(kept))\(unfinishedNote) A crash cannot do that; restore the log from a trusted copy."))
        }
    }

    /// Continues from a verified position instead of genesis: `state`, `range` and `previous`
    /// are those after the first `sequence` records.
    mutating func resume(at sequence: UInt64, state: LedgerState, range: CompactRange, previous: Digest) {
        position = sequence
        report.records = sequence
        report.lastEntryID = previous
        self.state = state
        self.range = range
        self.previous = previous
    }

    /// Keeps the rule state as it is now, to save once the verification has finished intact.
    mutating func captureState() {
        captured = (state, range.root, previous, wholeEnd)
    }

    /// Checks `requirements`: the log's origin, and the witnesses that must have cosigned the
    /// newest stored checkpoint verified against the log.
    mutating func apply(_ requirements: Verifier.Requirements) {
        guard requirements.origin != nil || requirements.requiredWitnesses > 0 else { return }
        guard let origin = state.origin else {
            report.notes.append("The requirements given (--origin, --witnesses-required) were not checked: the log's genesis record, which names its origin, could not be read.")
            return
        }
        // As bytes, as checkpoints' origins are compared.
        if let expected = requirements.origin, !expected.utf8.elementsEqual(origin.utf8) {
            report.findings.append(.init(sequence: 0, code: .requirementNotMet, message: "This is the log of origin \"\(origin)\" (its genesis record), not of \"\(expected)\" as --origin expects: it is not the log you meant to check."))
        }
        let required = requirements.requiredWitnesses
        guard required > 0 else { return }
        guard let newest = report.newestCheckpoint else {
            report.findings.append(.init(sequence: report.records, code: .requirementNotMet, message: "No checkpoint the log key signed is stored, so none is cosigned by the \(required) witness(es) required. Ask the operator to run `ledger checkpoint` and to have it cosigned."))
            return
        }
        let cosigners = newest.checkpoint.witnesses.map(\.name)
        if cosigners.count < required {
            let by = cosigners.isEmpty ? "none of them" : "only " + cosigners.joined(separator: ", ")
            report.findings.append(.init(sequence: newest.checkpoint.size, code: .requirementNotMet, aboutCheckpoint: true, message: "The newest checkpoint the log key signed (\(newest.path)) is cosigned by \(by), where \(required) of the witnesses given are required. Ask the operator to have it cosigned, or check the --witness keys given."))
        }
    }

    /// Saves the captured state to `path` if nothing was found; ``VerificationReport/savedStateSize``
    /// stays `nil` otherwise (with a note when findings prevented it; without a verified
    /// checkpoint there is nothing to save it at, which the caller tells from that `nil`).
    mutating func saveCapturedState(to path: String) throws(LedgerError) {
        guard report.isIntact else {
            report.notes.append("The rule state was not saved: the ledger is \(report.foundDamage ? "not intact" : "not verified (see the verdict)").")
            return
        }
        guard let captured else { return }
        if let failure = captured.state.base?.readFailure { throw failure }
        try SavedState.write(captured.state, root: captured.root, lastEntryID: captured.last, logBytes: captured.logBytes, to: path, storage: ruleState)
        report.savedStateSize = captured.state.count
    }

    /// Why a record could not be checked at all, if so: the verification stops with it.
    private var cannotCheck: LedgerError?

    /// Checks one record; returns the end of its group commit if the group is still open.
    private mutating func check(_ bytes: [UInt8], offset: UInt64, full: Bool) -> UInt64? {
        let entryID = Record.entryID(of: bytes)
        defer {
            // A record that could not be admitted counts as absent for the rules that follow.
            if state.count == position { state.skip() }
            previous = entryID
            report.lastEntryID = entryID
            // Moved out while it grows, so that the callback may read and write the checker.
            var growing = CompactRange()
            swap(&growing, &range)
            defer { swap(&growing, &range) }
            growing.append(entryID) { level, index, hash in
                // Every node of the stored tree (a cache) is compared as the range completes it,
                // interior ones up to the first that differs. Every leaf is: it is the entry id as
                // written, and another, non-zero one is evidence that the record changed.
                guard level == 0 || treeMismatch == nil, let size = storedTree?.size, index < size >> UInt64(level),
                    let stored = storedTree?.hash(level: level, index: index), stored != hash
                else { return }
                if treeMismatch == nil { treeMismatch = (level, index) }
                if level == 0, stored != .zero {
                    treeEvidence.add(index, recorded: stored.hexString, now: hash.hexString)
                }
            }
            report.records += 1
        }
        compareWithIndex(Ledger.IndexEntry(offset: offset, length: UInt32(clamping: bytes.count), entryID: entryID))
        let record: Record
        do throws(LedgerError) {
            record = try Record(stored: bytes)
        } catch {
            finding(.malformedRecord, "\(error.message) Its bytes were changed outside `ledger`; restore the log from a trusted copy.")
            return nil
        }
        if record.sequence != position {
            finding(.damagedLog, "Expected sequence \(position), found \(record.sequence): a record was removed, inserted, duplicated or moved here.")
        }
        if record.previous != previous {
            let before = position == 0 ? "the genesis record links 32 zero bytes" : "entry \(position - 1) has entry id \(previous.hexString)"
            finding(.damagedLog, "Expected previous entry id \(previous.hexString) (\(before)), found \(record.previous.hexString): the chain is broken between entries \(Int64(position) - 1) and \(position).")
        }
        if let previousTime, record.acceptedAt < previousTime {
            finding(.damagedLog, "Accepted at \(record.acceptedAt), before the entry before it (\(previousTime)): acceptance times never go backwards.")
        }
        previousTime = record.acceptedAt
        let open = record.batchEnd != record.sequence ? record.batchEnd : nil
        let event: Event
        do throws(LedgerError) {
            event = try Event(payload: record.envelope.payload, allowUnknownType: true)
        } catch {
            finding(error.code, error.message)
            return open
        }
        do throws(LedgerError) {
            if full && parallel {
                signatures.add(record.envelope, keys: try state.signingKeys(for: record.envelope, event: event), position: position)
            }
            if event.isKnownType {
                try state.admit(
                    record.envelope, event: event, entryID: entryID, sequence: position, acceptedAt: record.acceptedAt,
                    signaturesChecked: !full || parallel)
            } else {
                // Who signed it is checked as for any statement; what it does cannot be, nor the
                // rules of later entries that may depend on it: the ledger is not called intact.
                finding(.unknownEventType, "Its event type \"\(event.type)\" is not known to this version of ledger: its signatures are checked, but not the rules for it or for the entries after it that may depend on it. Verify with a version that knows the type.")
                try state.authenticate(record.envelope, event: event, acceptedAt: record.acceptedAt, signaturesChecked: !full || parallel)
            }
        } catch where error.code == .io {
            // The rules could not be applied (OpenSSL out of memory checking a key): no finding
            // about the record, and no verdict on the ledger.
            cannotCheck = LedgerError(.io, "Entry \(position): \(error.message)")
        } catch {
            finding(error.code, error.message)
        }
        guard full else { return open }
        report.checked += 1
        report.signatures += record.envelope.signatures.count
        if case let .evidenceAttached(e) = event.body {
            switch blobs.status(of: e.sha256, size: UInt64(e.size)) {
            case .present: break
            case .missing:
                missingBlobs += 1
                if missingBlobs <= Self.missingBlobsNamed {
                    report.notes.append("Entry \(position): the blob of evidence \"\(e.evidence)\" (sha256 \(e.sha256.hexString)) is not stored; add it with `ledger blob add`.")
                }
            case let .unreadable(what):
                report.notes.append("Entry \(position): the blob of evidence \"\(e.evidence)\" (sha256 \(e.sha256.hexString)) could not be checked: \(what). Make it the readable file `ledger blob add` stores, then verify again.")
            case let .mismatched(actual, size):
                finding(.blobMismatch, "The stored blob of evidence \"\(e.evidence)\" (\(blobs.path(for: e.sha256))) hashes to \(actual.hexString) with \(size) bytes; the entry records \(e.sha256.hexString) with \(e.size) bytes. The file was changed after it was stored: restore it from the original.")
            }
        }
        return open
    }

    /// Compares the index (a cache) with where the record really is, one entry at a time
    /// (``Ledger/IndexComparison``). An entry that found a record where it is but recorded
    /// another one is evidence that the record changed after it was written (and the entries
    /// after it are compared still). Anything else is a damaged cache, compared no further.
    private mutating func compareWithIndex(_ actual: Ledger.IndexEntry) {
        // Past its end the index is only behind, which checkIndexAndTree notes as such.
        guard indexMismatch == nil, let index, position < index.entries else { return }
        let size = Ledger.IndexEntry.size
        guard
            let stored = indexAhead.item(
                position, of: index.entries, read: { try? index.file.read(at: $0 * UInt64(size), count: $1 * size) }, Ledger.IndexEntry.init)
        else {
            indexMismatch = position
            return
        }
        switch indexComparison.compare(stored, with: actual) {
        case .same: return
        case .elsewhere:
            indexMismatch = position
            return
        case .changed: break
        }
        indexEvidence.add(position, recorded: stored.idPrefixText, now: actual.idPrefixText)
    }

    /// Checks a stored checkpoint of `size` entries, just read up to: signature and root.
    /// - Throws: ``LedgerError/Code/io`` if it cannot be read: no finding about the log.
    mutating func checkStoredCheckpoint(path: String, size: UInt64, key: NoteVerifier) throws(LedgerError) {
        // A file named for size 0 is checked before the genesis names the origin: the log key's
        // name is the origin a checkpoint it signs must state.
        let origin = state.origin ?? key.name
        let text: [UInt8]
        do throws(LedgerError) {
            text = try CheckpointStore.read(path)
        } catch where error.code != .io {
            report.findings.append(.init(sequence: size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The stored checkpoint \(path) cannot be read: \(error.message)"))
            return
        }
        do throws(NoteError) {
            let checkpoint = try CheckpointVerifier(origin: origin, log: key, witnesses: witnesses).verify(text)
            guard checkpoint.size == size else {
                report.findings.append(.init(sequence: size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The stored checkpoint \(path) is named for size \(size) but says \(checkpoint.size)."))
                return
            }
            guard checkpoint.root == range.root else {
                report.findings.append(.init(sequence: size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The checkpoint \(path), signed by the log key, commits to root \(checkpoint.root.hexString) for \(size) entries; the log's first \(size) entries hash to \(range.root.hexString). Entries it covers were changed."))
                return
            }
            report.checkpoints += 1
            provenSize = max(provenSize, size)
            // Checked in order of size: the last is the newest.
            report.newestCheckpoint = (path, checkpoint)
        } catch {
            report.findings.append(.init(sequence: size, code: .invalidCheckpoint, aboutCheckpoint: true, message: "The stored checkpoint \(path) does not verify (log key \(key.verifierKey)): \(error)."))
        }
    }

    /// The checkpoints whose sizes bound the stretches evidence is kept for: those that may prove
    /// the log (before reading).
    mutating func keepEvidence(between checkpointSizes: [UInt64]) {
        indexEvidence = Ledger.CacheEvidence(from: .index, checkpointSizes: checkpointSizes)
        treeEvidence = Ledger.CacheEvidence(from: .tree, checkpointSizes: checkpointSizes)
    }

    /// The first entry at which the index, and the tree files, are evidence of a changed record
    /// (a finding, ``resolveCacheEvidence()``): such a file is not a cache to rewrite.
    private var evidenceAt: (index: UInt64?, tree: UInt64?) = (nil, nil)

    /// Reports the first evidence from each of the index and the tree that no checkpoint proving
    /// the log covers as a finding, and the first that one covers as a note; then puts the
    /// findings in log order (stably: findings at one entry stay in the order found).
    mutating func resolveCacheEvidence() {
        for evidence in [indexEvidence, treeEvidence] {
            let (covered, uncovered) = evidence.split(at: provenSize)
            if let covered {
                report.notes.append("Entry \(covered.sequence): \(covered.message) The checkpoint of \(provenSize) entries, signed by the log key, proves the log there: \(evidence.damaged) damaged, not the log.")
            }
            if let uncovered {
                report.findings.append(.init(sequence: uncovered.sequence, code: .damagedLog, message: uncovered.message))
                if evidence.source == .index { evidenceAt.index = uncovered.sequence } else { evidenceAt.tree = uncovered.sequence }
            }
        }
        report.findings = report.findings.enumerated().sorted { ($0.element.sequence, $0.offset) < ($1.element.sequence, $1.offset) }.map(\.element)
    }

    /// What a file that disagrees with the log is: a cache to rewrite, or, where it records
    /// another entry id for a record than the log now has (a finding at entry `at`), evidence
    /// that `repair` keeps.
    private static func cacheOrEvidence(_ at: UInt64?, _ directory: String) -> String {
        guard let at else { return "(a cache; `ledger repair \(directory) --rebuild-derived` rewrites it)" }
        return "(what it records is evidence that entry \(at) changed, see the findings: `ledger repair` refuses to rewrite it; restore the log from a trusted copy)"
    }

    /// Notes (not findings: both are caches) where the index or the tree files disagree with the log;
    /// findings where they record another entry id for a record than it has, unless a checkpoint
    /// the log key signed proves the log there.
    mutating func checkIndexAndTree() {
        resolveCacheEvidence()
        if let index {
            if let at = indexMismatch {
                report.notes.append("The index disagrees with the log from entry \(at) on \(Self.cacheOrEvidence(evidenceAt.index, directory)).")
            } else if index.entries < report.records {
                report.notes.append("The index lists \(index.entries) records; the log has \(report.records). The next write brings it up to date.")
            } else if index.entries > report.records, lostEntries == nil {
                report.notes.append("The index lists \(index.entries) records, more than the log's \(report.records), but the ones past the log are not where its next records would be: a damaged cache (`ledger repair \(directory) --rebuild-derived` rewrites it).")
            }
        } else if let indexUnreadable {
            report.notes.append("The index cannot be read (\(indexUnreadable)), so it was not compared with the log. Make it readable, then verify again.")
        } else if report.records > 0 {
            report.notes.append("The index is missing; the next write rebuilds it from the log.")
        }
        if let tree = storedTree {
            if let (level, index) = treeMismatch {
                report.notes.append("The stored Merkle tree's node \(index) of level \(level) does not match the log \(Self.cacheOrEvidence(evidenceAt.tree, directory)).")
            } else if tree.size < report.records {
                report.notes.append("The stored Merkle tree covers \(tree.size) entries; the log has \(report.records) (a cache; the next write brings it level).")
            } else if tree.size > report.records, lostEntries == nil {
                report.notes.append("The stored Merkle tree has \(tree.size) leaves, more than the log's \(report.records) entries, those past the log never written (zero): a damaged cache (`ledger repair \(directory) --rebuild-derived` rewrites it).")
            }
        } else if report.records > 0 {
            report.notes.append("The stored Merkle tree is missing or inconsistent (a cache; the next write rebuilds it).")
        }
    }
}
