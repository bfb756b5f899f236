#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto

/// The result of a full verification: every finding, not just the first.
public struct VerificationReport: Sendable {
    /// One problem found, at a position in the log.
    public struct Finding: Sendable, Hashable, CustomStringConvertible {
        /// The position in the log (the n-th line, from 0) where it was found.
        public var sequence: UInt64
        public var code: LedgerError.Code
        public var message: String

        public var description: String { "entry \(sequence): [\(code.name)] \(message)" }
    }

    /// Records read.
    public var records: UInt64 = 0
    /// Signatures verified.
    public var signatures: Int = 0
    /// Records of event types this version does not know (skipped by the rule checks).
    public var unknownTypes: [UInt64: String] = [:]
    /// Damage and broken rules, in log order.
    public var findings: [Finding] = []
    /// Problems in derived files (caches), which the next write rebuilds; not damage.
    public var notes: [String] = []
    /// The entry id of the last record.
    public var lastEntryID = Digest.zero

    /// Whether the log is intact: no findings.
    public var isIntact: Bool { findings.isEmpty }
}

/// Full verification of a ledger directory, from genesis, trusting nothing stored but the bytes
/// of the log: every record's framing, sequence number and chain link, every entry id, every
/// signature, and every append rule (key registered to the author and valid at that position,
/// roles, references, unique ids), and every stored evidence blob against its recorded hash. It
/// never writes.
public enum Verifier {
    /// Verifies the ledger in `directory`.
    /// - Parameter progress: called now and then with (records read, bytes read, total bytes).
    /// - Throws: only when the directory cannot be read at all; damage is reported, not thrown.
    public static func verify(
        directory: String, progress: ((UInt64, UInt64, UInt64) -> Void)? = nil
    ) throws(LedgerError) -> VerificationReport {
        let layout = Ledger.Layout(directory: directory)
        try Ledger.checkFormat(layout)
        let log = try FileDescriptor(path: layout.log, flags: O_RDONLY)
        let size = try log.size
        var cursor = LogCursor(file: log, from: 0, end: size)
        var report = VerificationReport()
        var state = LedgerState()
        var previous = Digest.zero
        var previousTime: Timestamp?
        var position: UInt64 = 0
        var offsets: [Ledger.IndexEntry] = []
        var openBatchEnd: UInt64?
        let blobs = BlobStore(ledgerDirectory: directory)
        func finding(_ code: LedgerError.Code, _ message: String) {
            report.findings.append(.init(sequence: position, code: code, message: message))
        }
        while let line = try cursor.next() {
            defer { position += 1 }
            if position % 65_536 == 0 { progress?(position, line.offset, size) }
            guard line.complete else {
                if appendInProgress(log: log, sizeAtStart: size, layout: layout) {
                    report.notes.append("An append was in progress while verifying; its records were not checked.")
                } else {
                    finding(.damagedLog, "The log ends with \(line.bytes.count) bytes of an incomplete record: a write was interrupted. The next write command cuts it; no acknowledged entry is affected.")
                }
                openBatchEnd = nil
                break
            }
            let entryID = Record.entryID(of: line.bytes)
            offsets.append(Ledger.IndexEntry(offset: line.offset, length: UInt32(clamping: line.bytes.count), entryID: entryID))
            report.records += 1
            defer {
                previous = entryID
                report.lastEntryID = entryID
            }
            let record: Record
            do throws(LedgerError) {
                record = try Record(stored: line.bytes)
            } catch {
                finding(.malformedRecord, "\(error.message) Its bytes were changed outside `ledger`; restore the log from a trusted copy.")
                continue
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
            if record.batchEnd != record.sequence { openBatchEnd = record.batchEnd } else { openBatchEnd = nil }
            let event: Event
            do throws(LedgerError) {
                event = try Event(payload: record.envelope.payload, allowUnknownType: true)
            } catch {
                finding(error.code, error.message)
                continue
            }
            guard event.isKnownType else {
                report.unknownTypes[position] = event.type
                continue
            }
            guard state.count == position else {
                // Rule state can only follow the log in order; after a missing record, rules are
                // checked against the state as it stands, which the findings above explain.
                finding(.damagedLog, "Rules not checked: an earlier record could not be admitted.")
                continue
            }
            do throws(LedgerError) {
                try state.admit(record.envelope, event: event, entryID: entryID, sequence: position, acceptedAt: record.acceptedAt)
                report.signatures += record.envelope.signatures.count
            } catch {
                finding(error.code, error.message)
            }
            if case let .evidenceAttached(e) = event.body {
                switch blobs.status(of: e.sha256, size: UInt64(e.size)) {
                case .present: break
                case .missing:
                    report.notes.append("Entry \(position): the blob of evidence \"\(e.evidence)\" (sha256 \(e.sha256.hexString)) is not stored; add it with `ledger blob add`.")
                case let .mismatched(actual, size):
                    finding(.blobMismatch, "The stored blob of evidence \"\(e.evidence)\" (\(blobs.path(for: e.sha256))) hashes to \(actual.hexString) with \(size) bytes; the entry records \(e.sha256.hexString) with \(e.size) bytes. The file was changed after it was stored: restore it from the original.")
                }
            }
        }
        if let openBatchEnd, appendInProgress(log: log, sizeAtStart: size, layout: layout) {
            report.notes.append("An append was in progress while verifying (group commit ending at sequence \(openBatchEnd)); it was checked as far as it was written.")
        } else if let openBatchEnd {
            report.findings.append(.init(sequence: position, code: .damagedLog, message: "The last group commit (ending at sequence \(openBatchEnd)) is incomplete: it was never acknowledged, and the next write command cuts it."))
        }
        progress?(position, size, size)
        report.notes += checkIndex(layout: layout, against: offsets)
        return report
    }

    /// Whether an unfinished record or group commit at the end of the log belongs to an append that
    /// is still running (a writer holds the lock, or the log has grown since verification began),
    /// rather than to an interrupted one.
    private static func appendInProgress(log: FileDescriptor, sizeAtStart: UInt64, layout: Ledger.Layout) -> Bool {
        if let size = try? log.size, size != sizeAtStart { return true }
        // Opened read-only: verification never creates or changes a file, not even the lock.
        let fd = open(layout.lock, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else { return true }
        flock(fd, LOCK_UN)
        if let size = try? log.size, size != sizeAtStart { return true }
        return false
    }

    /// Compares the index, a cache, with the offsets the log actually has.
    private static func checkIndex(layout: Ledger.Layout, against offsets: [Ledger.IndexEntry]) -> [String] {
        guard let index = try? FileDescriptor(path: layout.index, flags: O_RDONLY), let size = try? index.size else {
            return offsets.isEmpty ? [] : ["The index is missing; the next write rebuilds it from the log."]
        }
        let entries = Int(size / UInt64(Ledger.IndexEntry.size))
        guard let raw = try? index.read(at: 0, count: entries * Ledger.IndexEntry.size) else { return ["The index cannot be read."] }
        var notes: [String] = []
        if entries != offsets.count {
            notes.append("The index lists \(entries) records; the log has \(offsets.count). The next write rebuilds what is missing.")
        }
        raw.withUnsafeBytes { buffer in
            for i in 0..<min(entries, offsets.count) {
                let stored = Ledger.IndexEntry(UnsafeRawBufferPointer(rebasing: buffer[(i * 16)..<(i * 16 + 16)]))
                if stored != offsets[i] {
                    notes.append("Index entry \(i) does not match the log (a cache; `ledger repair --rebuild-derived` rewrites it).")
                    break
                }
            }
        }
        return notes
    }
}
