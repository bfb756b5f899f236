public import LedgerCore
public import LedgerStore
import LedgerCrypto

/// How far to replay.
public enum ReplayTarget: Sendable, Hashable {
    /// Every committed record.
    case end
    /// Records 0 through this sequence number, inclusive (clamped to the last record).
    case sequence(UInt64)
    /// Every record the ledger accepted at or before this time. Acceptance times never go
    /// backwards (the writer refuses it), so this is a prefix of the log.
    case acceptedAt(Timestamp)
}

/// Whether a replay uses and refreshes snapshots.
public enum SnapshotPolicy: Sendable, Hashable {
    /// Replay from genesis; read and write no snapshot.
    case none
    /// Resume from the newest usable snapshot at or before the target; write none.
    case read
    /// Resume like ``read``, and when the replay has read at least `atLeast` records past the
    /// snapshot it resumed from (or from genesis), write one snapshot at its end. One snapshot a
    /// replay, never one every N records: writing the whole state each N records would make a
    /// long replay cost O(n²). A failed write is skipped silently (it is noted in
    /// ``ReplayInfo/notes``): a reader without write permission still gets its answer.
    case refresh(atLeast: UInt64)
}

/// A record a replay skipped instead of applying, and why.
public struct SkippedRecord: Sendable, Hashable, Codable {
    /// Its sequence number.
    public var sequence: UInt64
    /// Its entry id, lowercase hex.
    public var entryID: String
    /// The event type it names, if it could be read that far.
    public var type: String?
    /// Why it was skipped, for people.
    public var reason: String

    enum CodingKeys: String, CodingKey {
        case sequence, entryID = "entry_id", type, reason
    }

    public init(sequence: UInt64, entryID: String, type: String?, reason: String) {
        self.sequence = sequence
        self.entryID = entryID
        self.type = type
        self.reason = reason
    }

    /// `{"sequence", "entry_id", "type": name|null, "reason"}`.
    public var json: JSONValue {
        .object([
            "sequence": .integer(Int64(sequence)), "entry_id": .string(entryID),
            "type": type.map(JSONValue.string) ?? .null, "reason": .string(reason),
        ])
    }

    /// How many skipped records a replay lists; further ones are only counted.
    public static let maximumListed = 256
}

/// What a replay did, besides producing a state.
public struct ReplayInfo: Sendable {
    /// The last record included.
    public var position: ReplayPosition
    /// Skipped records (unknown event types, undecodable events), in order, at most
    /// ``SkippedRecord/maximumListed``; part of the answer, so also kept in snapshots.
    public var skipped: [SkippedRecord] = []
    /// How many records were skipped in all.
    public var skippedCount = 0
    /// The sequence number of the snapshot the replay resumed from, if any.
    public var resumedFrom: UInt64?
    /// How many records this run read from the log (not counting those a snapshot covered).
    public var recordsRead: UInt64 = 0
    /// Snapshot files written during the replay.
    public var snapshotsWritten: [String] = []
    /// Snapshots ignored or not written, and why: for `--verbose`, never part of the answer.
    public var notes: [String] = []
}

/// A projection's state after a replay, with what the replay did.
public struct Replay<State: Sendable>: Sendable {
    public var state: State
    public var info: ReplayInfo
    /// The snapshot the state was resumed from, whose parts it reads when used.
    var resumedFrom: ResumedSnapshot?

    /// The damage met so far in the parts of the snapshot the state was resumed from (by the
    /// replay or by queries since), if any: a query that throws then refuses the snapshot.
    package var snapshotDamage: String? { resumedFrom?.source.damage }

    init(state: State, info: ReplayInfo, resumedFrom: ResumedSnapshot? = nil) {
        self.state = state
        self.info = info
        self.resumedFrom = resumedFrom
    }
}

/// A snapshot file a state was read from, and where the parts it reads when used come from.
typealias ResumedSnapshot = (file: SnapshotFiles.File, source: SnapshotSource)

/// Replays projections over a ledger: streams the log from genesis or from the newest usable
/// snapshot, up to a sequence number or an acceptance time, and persists snapshots.
///
/// Memory does not grow with the log beyond the projection's own state: the log is read in
/// stretches of consecutive records, each read and decoded on one core while other cores take
/// others, and dropped once applied.
///
/// A snapshot is trusted only if the name and version of its state match and the entry id it
/// recorded equals the log's entry id at its sequence number; otherwise it is ignored (noted)
/// and the state is rebuilt from an older snapshot or from genesis. A state reads parts of its
/// snapshot only as it uses them (see ``DisputedFactsProjection``); if the replay meets damage
/// there, the snapshot is removed and the replay runs again without it. Snapshots are caches:
/// deleting them never changes an answer.
public struct ReplayEngine: Sendable {
    /// The ledger, as opened.
    public let ledger: Ledger
    /// Where snapshots are read and written, or `nil` for none.
    public let snapshotDirectory: String?
    /// How many snapshot files of one state's version to keep; older ones are deleted when a new
    /// one is written, and so are snapshots of other versions.
    public var retainedSnapshots = 8
    /// Records in a stretch of the log decoded on one core: enough that handing it over costs
    /// little, few enough that a few stretches in flight stay small. (Any size gives the same
    /// answer; tests replay in stretches of a few records.)
    package var stretchRecords: UInt64 = 512

    /// Creates an engine over `ledger`.
    /// - Parameter snapshotDirectory: defaults to `snapshots` inside the ledger directory.
    public init(ledger: Ledger, snapshotDirectory: String? = nil) {
        self.ledger = ledger
        self.snapshotDirectory = snapshotDirectory ?? ledger.directory + "/snapshots"
    }

    /// Creates an engine that neither reads nor writes snapshots.
    public init(withoutSnapshots ledger: Ledger) {
        self.ledger = ledger
        self.snapshotDirectory = nil
    }

    /// The sequence number of the last record `target` includes, or `nil` if it includes none
    /// (an empty ledger, or a time before the genesis record was accepted).
    /// - Throws: ``LedgerError`` if a record read for the time search cannot be decoded.
    public func lastSequence(for target: ReplayTarget) throws(LedgerError) -> UInt64? {
        guard ledger.count > 0 else { return nil }
        switch target {
        case .end:
            return ledger.count - 1
        case let .sequence(n):
            return min(n, ledger.count - 1)
        case let .acceptedAt(time):
            // Binary search for the last record accepted at or before `time`: acceptance times
            // never decrease along the log.
            var low: UInt64 = 0
            var high = ledger.count
            while low < high {
                let middle = low + (high - low) / 2
                if try ledger.record(at: middle).decoded().acceptedAt <= time {
                    low = middle + 1
                } else {
                    high = middle
                }
            }
            return low == 0 ? nil : low - 1
        }
    }

    /// Replays `projection` up to `target`, as ``replay(_:to:snapshots:)`` does, and readies the
    /// state for the queries that follow (``Projection/prepareForQueries(_:)``): for a caller that
    /// only queries what it replays, never resumes or snapshots it.
    /// - Throws: as ``replay(_:to:snapshots:)``.
    public func replayForQueries<P: Projection>(
        _ projection: P, to target: ReplayTarget = .end, snapshots policy: SnapshotPolicy = .read
    ) throws(LedgerError) -> Replay<P.State> {
        var replay = try replay(projection, to: target, snapshots: policy)
        projection.prepareForQueries(&replay.state)
        return replay
    }

    /// Replays `projection` up to `target`.
    /// - Throws: ``LedgerError`` for a log that cannot be read, and
    ///   ``LedgerError/Code/damagedLog`` for a record whose link does not name the record before
    ///   it (one of them was changed after it was written). Records that cannot be decoded
    ///   or name an unknown event type are skipped and reported in ``ReplayInfo/skipped``, never
    ///   thrown.
    public func replay<P: Projection>(
        _ projection: P, to target: ReplayTarget = .end, snapshots policy: SnapshotPolicy = .read
    ) throws(LedgerError) -> Replay<P.State> {
        var notes: [String] = []
        var excluded: Set<String> = []
        while true {
            var replay = try replay(projection, to: target, snapshots: policy, excluding: excluded)
            replay.info.notes = notes + replay.info.notes.filter { !notes.contains($0) }
            guard let resumedFrom = replay.resumedFrom, let damage = resumedFrom.source.damage else { return replay }
            // The snapshot's state read damaged parts: this state may be wrong. Never answer it;
            // replay again without that snapshot (its source has removed it).
            let removed = resumedFrom.source.removed ? " and removed" : ""
            notes = replay.info.notes + ["snapshot \(resumedFrom.file.name) ignored\(removed): \(damage); replayed again without it"]
            excluded.insert(resumedFrom.file.path)
        }
    }

    private func replay<P: Projection>(
        _ projection: P, to target: ReplayTarget, snapshots policy: SnapshotPolicy, excluding excluded: Set<String>
    ) throws(LedgerError) -> Replay<P.State> {
        let last = try lastSequence(for: target)
        var state = projection.initialState
        var info = ReplayInfo(position: ReplayPosition(sequence: nil, entryID: nil, acceptedAt: nil, ledgerCount: ledger.count))
        guard let last else { return Replay(state: state, info: info) }

        var start: UInt64 = 0
        var resumedFrom: ResumedSnapshot?
        if policy != .none, let snapshot = newestUsableSnapshot(of: projection, atMost: last, excluding: excluded, notes: &info.notes) {
            resumedFrom = snapshot.resumed
            let snapshot = snapshot.snapshot
            state = snapshot.state
            start = snapshot.sequence + 1
            info.resumedFrom = snapshot.sequence
            info.skipped = snapshot.skipped
            info.skippedCount = snapshot.skippedCount
            info.position.sequence = snapshot.sequence
            info.position.entryID = snapshot.entryID
            info.position.acceptedAt = snapshot.acceptedAt
        }
        // Decoding (record JSON, base64, event JSON, entry ids) is most of a replay's cost and
        // needs no state, so stretches of the log are read and decoded on every core, this
        // thread included, while this thread applies them in order.
        var lastRead: (sequence: UInt64, entryID: Digest, acceptedAt: Timestamp?)?
        // Each record's link must name the record before it, as verification and the writer's
        // checks do: an answer never rests on a record changed after the next one was written. (A
        // full check of everything is `ledger verify`'s.)
        var previous = start == 0 ? Digest.zero : try ledger.entryID(at: start - 1)
        let stretches = try ledger.stretches(from: start, to: last + 1, records: stretchRecords)
        let readers = PerWorker { StretchReader(ledger: ledger) }
        // Once the state has met damage in its snapshot, the rest is not applied: it would not
        // be answered (and a damaged index can make applying slow).
        var abandoned = false
        do throws(LedgerError) {
            try inOrder(stretches.count, window: 2 * workerCount + 2) { index, worker in
                DecodedStretch(stretches[index], reader: readers, worker: worker)
            } consume: { (stretch: inout DecodedStretch) throws(LedgerError) in
                if resumedFrom?.source.damage != nil {
                    abandoned = true
                    throw LedgerError(.io, "The snapshot's state is damaged.")
                }
                try stretch.records.withUnsafeMutableBufferPointer { (records) throws(LedgerError) in
                    for at in records.indices {
                        // Moved out, matched as an owned value and moved back: matching it in
                        // place (or borrowed) copied the whole record, retaining and releasing
                        // each of its strings and arrays, 5% of a replay's CPU time. Put back, it
                        // is freed by the helper that decoded it.
                        let decoded = (records.baseAddress! + at).move()
                        let (sequence, entryID, acceptedAt) = (decoded.sequence, decoded.entryID, decoded.acceptedAt)
                        if let link = decoded.previous, link != previous {
                            (records.baseAddress! + at).initialize(to: decoded)
                            throw ledger.brokenLink(at: sequence, link: link, previous: previous)
                        }
                        previous = entryID
                        lastRead = (sequence, entryID, acceptedAt)
                        info.recordsRead += 1
                        let outcome = (consume decoded).outcome
                        let back: ReplayDecoding.Outcome
                        switch consume outcome {
                        case let .apply(record, event):
                            projection.apply(record: record, event: event, to: &state)
                            back = .apply(record, event)
                        case let .skip(type, reason):
                            info.skippedCount += 1
                            if info.skipped.count < SkippedRecord.maximumListed {
                                info.skipped.append(SkippedRecord(sequence: sequence, entryID: entryID.hexString, type: type, reason: reason))
                            }
                            back = .skip(type: type, reason: reason)
                        }
                        (records.baseAddress! + at).initialize(to: DecodedStretch.Record(sequence: sequence, entryID: entryID, acceptedAt: acceptedAt, previous: nil, outcome: back))
                    }
                }
                // A stretch the log did not hold as the index said fails the replay where it is met.
                if let error = stretch.error { throw error }
            }
        } catch {
            guard abandoned else { throw error }
            return Replay(state: state, info: info, resumedFrom: resumedFrom)
        }
        projection.finish(&state)
        // The position is spelled out once, after the loop: hex and RFC 3339 per record would cost
        // more than applying many of them.
        if let lastRead {
            info.position.sequence = lastRead.sequence
            info.position.entryID = lastRead.entryID.hexString
            info.position.acceptedAt = lastRead.acceptedAt?.rfc3339
        }
        if resumedFrom?.source.damage != nil {
            // Not answered, nor written as a new snapshot: see the caller.
            return Replay(state: state, info: info, resumedFrom: resumedFrom)
        }
        if case let .refresh(atLeast) = policy, info.recordsRead >= max(atLeast, 1) {
            do throws(LedgerError) {
                info.snapshotsWritten.append(try writeSnapshot(projection, state: state, info: info, from: resumedFrom?.source))
            } catch {
                info.notes.append("snapshot not written: \(error.message)")
            }
        }
        return Replay(state: state, info: info, resumedFrom: resumedFrom)
    }

    /// Writes a snapshot of `replay`'s state at its position, atomically, and prunes old ones.
    /// - Returns: the snapshot file's path.
    /// - Throws: ``LedgerError/Code/io`` if it cannot be written (including when this engine has
    ///   no snapshot directory, or the replay included no record).
    @discardableResult
    public func writeSnapshot<P: Projection>(_ projection: P, of replay: Replay<P.State>) throws(LedgerError) -> String {
        try writeSnapshot(projection, state: replay.state, info: replay.info, from: replay.resumedFrom?.source)
    }

    /// Writes the snapshot; `source` is the one `state` was read from, which the new snapshot
    /// then carries the damage of, if any is met later.
    private func writeSnapshot<P: Projection>(_ projection: P, state: P.State, info: ReplayInfo, from source: SnapshotSource?) throws(LedgerError) -> String {
        guard let snapshotDirectory else {
            throw LedgerError(.io, "This replay engine has no snapshot directory.")
        }
        guard let sequence = info.position.sequence, let entryID = info.position.entryID else {
            throw LedgerError(.io, "There is nothing to snapshot: the replay included no record.")
        }
        let snapshot = Snapshot(
            projection: projection.snapshotName, version: projection.snapshotVersion, sequence: sequence, entryID: entryID,
            acceptedAt: info.position.acceptedAt, skipped: info.skipped, skippedCount: info.skippedCount, state: state)
        let files = SnapshotFiles(directory: snapshotDirectory)
        let name = SnapshotFiles.fileName(projection: projection.snapshotName, version: projection.snapshotVersion, sequence: sequence)
        let path = try files.writeAtomically(as: name) { (file) throws(LedgerError) in
            do {
                try SnapshotBinary.encode(snapshot, to: file)
            } catch let error as LedgerError {
                throw error
            } catch {
                throw LedgerError(
                    .io, "The \(projection.name) state at entry \(sequence) cannot be written as a snapshot (\(error)), so none was written.", cause: error)
            }
        }
        source?.derive(path)
        // Prune: other versions are never used again; of this version keep the newest few.
        let existing = files.files(of: projection.snapshotName)
        for file in existing where file.version != projection.snapshotVersion { files.remove(file.path) }
        let current = existing.filter { $0.version == projection.snapshotVersion }
        for file in current.dropLast(max(retainedSnapshots, 1)) { files.remove(file.path) }
        return path
    }

    /// The newest snapshot of `projection` at or before `last` that matches the log.
    private func newestUsableSnapshot<P: Projection>(
        of projection: P, atMost last: UInt64, excluding excluded: Set<String>, notes: inout [String]
    ) -> (snapshot: Snapshot<P.State>, resumed: ResumedSnapshot)? {
        guard let snapshotDirectory else { return nil }
        if case let .failure(error) = SnapshotKey.current {
            notes.append("no snapshot is read: \(error.message)")
            return nil
        }
        let files = SnapshotFiles(directory: snapshotDirectory)
        // Files under names it no longer uses are never read again (a read-only directory keeps them).
        for file in projection.retiredSnapshotNames.flatMap(files.files(of:)) { files.remove(file.path) }
        let candidates = files.files(of: projection.snapshotName)
            .filter { $0.version == projection.snapshotVersion && $0.sequence <= last && !excluded.contains($0.path) }
        for file in candidates.reversed() {
            guard let (snapshot, source) = try? SnapshotBinary.decode(Snapshot<P.State>.self, fromFile: file.path) else {
                notes.append("snapshot \(file.name) ignored: it cannot be read or decoded (damaged, or not written under your snapshot key: by another user, or changed since)")
                continue
            }
            guard snapshot.projection == projection.snapshotName, snapshot.version == projection.snapshotVersion, snapshot.sequence == file.sequence else {
                notes.append("snapshot \(file.name) ignored: its contents do not match its name")
                continue
            }
            guard let entryID = try? ledger.entryID(at: snapshot.sequence), entryID.hexString == snapshot.entryID else {
                notes.append("snapshot \(file.name) ignored: the log's entry at \(snapshot.sequence) is not the one it was taken at (the log was replaced); rebuilding")
                continue
            }
            return (snapshot, (file, source))
        }
        return nil
    }
}

/// A projection's state at sequence N, with the entry id at N: the file format of snapshots.
struct Snapshot<State: Codable>: Codable {
    var projection: String
    var version: Int
    var sequence: UInt64
    var entryID: String
    var acceptedAt: String?
    var skipped: [SkippedRecord]
    var skippedCount: Int
    var state: State

    enum CodingKeys: String, CodingKey {
        case projection, version, sequence, entryID = "entry_id", acceptedAt = "accepted_at", skipped
        case skippedCount = "skipped_count", state
    }
}

/// A stretch of the log, read and decoded: the event to apply of each record, or why it is
/// skipped, as far as the stretch could be read.
private struct DecodedStretch: Sendable {
    /// One record, decoded.
    struct Record: Sendable {
        var sequence: UInt64
        var entryID: Digest
        var acceptedAt: Timestamp?
        /// Its link, the entry id of the record before (`nil` if it does not decode).
        var previous: Digest?
        var outcome: ReplayDecoding.Outcome
    }

    var records: [Record] = []
    /// Why the stretch could not be read to its end.
    var error: LedgerError?

    init(_ stretch: LogStretch, reader: PerWorker<StretchReader>, worker: Int) {
        records.reserveCapacity(Int(stretch.count))
        do throws(LedgerError) {
            try reader.with(worker) { (reader) throws(LedgerError) in
                try reader.forEachRecord(in: stretch) { sequence, bytes in
                    let entryID = LedgerCore.Record.entryID(of: bytes)
                    let (acceptedAt, previous, outcome) = ReplayDecoding.decodeWithTime(sequence: sequence, bytes: bytes, entryID: entryID)
                    records.append(Record(sequence: sequence, entryID: entryID, acceptedAt: acceptedAt, previous: previous, outcome: outcome))
                }
            }
        } catch {
            self.error = error
        }
    }
}

/// How a replay reads one stored record: the event to apply, or why it is skipped. Queries that
/// read records back use the same, so they see exactly what the replay applied.
enum ReplayDecoding {
    enum Outcome: Sendable {
        case apply(ReplayRecord, Event)
        case skip(type: String?, reason: String)
    }

    static func decode(_ stored: StoredRecord) -> Outcome {
        stored.bytes.withUnsafeBytes { decodeWithTime(sequence: stored.sequence, bytes: $0, entryID: stored.entryID).outcome }
    }

    /// The outcome, and the record's acceptance time and link if the record decodes, from the
    /// record's stored bytes read in place.
    static func decodeWithTime(sequence: UInt64, bytes: UnsafeRawBufferPointer, entryID: Digest) -> (acceptedAt: Timestamp?, previous: Digest?, outcome: Outcome) {
        let record: Record
        do throws(LedgerError) {
            record = try StoredRecord.decode(sequence: sequence, bytes: bytes)
        } catch {
            return (nil, nil, .skip(type: nil, reason: "the record does not decode (\(error.code.name)): \(error.message) Run `ledger verify`."))
        }
        do throws(LedgerError) {
            let event = try Event(payload: record.envelope.payload, allowUnknownType: true)
            guard event.isKnownType else {
                return (record.acceptedAt, record.previous, .skip(type: event.type, reason: "event type \"\(event.type)\" is not known to this version; skipped"))
            }
            let replayed = ReplayRecord(sequence: sequence, entryID: entryID, acceptedAt: record.acceptedAt, envelope: record.envelope)
            return (record.acceptedAt, record.previous, .apply(replayed, event))
        } catch {
            return (record.acceptedAt, record.previous, .skip(type: nil, reason: "the event does not decode (\(error.code.name)): \(error.message)"))
        }
    }
}
