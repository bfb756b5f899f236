import FoundationEssentials
public import LedgerCore
public import LedgerCrypto
public import LedgerStore

/// A view of the ledger built by folding its records in sequence order: a name, a version, an
/// initial state and a deterministic ``apply(record:event:to:)``.
///
/// A projection is a pure fold. Given the same records it must produce the same state once
/// ``finish(_:)`` has run, whether it runs from genesis or resumes from a snapshot, so `apply`
/// and `finish` may read only their arguments: no clock, no files, no randomness. Checks that
/// depend on the world outside the log (is an evidence blob present today?) belong in
/// ``forEachReportElement(_:context:_:)``, which runs at query time and may also read back from
/// the log the records a state only points to.
///
/// The ``version`` names the meaning of ``State``: change it whenever `apply` or `State`
/// changes, and old snapshots are ignored and rebuilt, never migrated. A projection that shares
/// another's snapshots (``snapshotName``, ``snapshotVersion``) must stop sharing them if its
/// state ever stops being that one's.
///
/// Register a projection in a ``ProjectionRegistry`` to make it available to the replay
/// engine's callers and to `ledger replay`; the engine itself needs no change.
public protocol Projection: Sendable {
    /// The state folded over the records; written in binary form (``SnapshotBinary``) in snapshots.
    associatedtype State: Codable & Sendable & Equatable

    /// A stable name of lowercase letters, digits and `-`, e.g. `disputed-facts`. It names the
    /// projection on the command line and in snapshot file names.
    var name: String { get }
    /// The version of ``State`` and of `apply`'s rules; starts at 1.
    var version: Int { get }
    /// A one-line description for help text.
    var summary: String { get }
    /// The state before any record.
    var initialState: State { get }

    /// Applies one record whose event decoded, in sequence order. Records whose type this
    /// version does not know, or whose event does not decode, never reach `apply`: the engine
    /// reports and skips them.
    func apply(record: ReplayRecord, event: Event, to state: inout State)

    /// Completes what `apply` left for later (work it batches, say) once a replay has applied
    /// its last record, before the state is answered or snapshotted. The default does nothing.
    func finish(_ state: inout State)

    /// Readies a replayed state that will from now on only be queried (``ProjectionAnswer``,
    /// `ledger facts`): it may free what only `apply` uses. Such a state is never replayed onto
    /// nor snapshotted. The default does nothing.
    func prepareForQueries(_ state: inout State)

    /// The member of the report that lists its elements: `facts`, say. The default is `state`.
    var reportKey: String { get }

    /// The projection's answer for `state`, `{reportKey: [element…]}` in a documented, stable
    /// shape, handed over an element at a time, in order, each as soon as it is built: a report
    /// is never held whole (the report of a million entries, built whole, takes gigabytes). Runs
    /// any query-time checks and reads back from the log what the state only points to. The
    /// default hands over ``State`` itself, encoded, as the one element.
    /// - Throws: ``LedgerError`` if the log cannot be read back.
    func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) throws(LedgerError)

    /// The name its snapshots are filed under: ``name``, unless a variant of the projection
    /// computes a different state (then its snapshots must never be mixed with the others), or
    /// it computes the very state of another projection (then it shares that one's snapshots).
    var snapshotName: String { get }

    /// The version of the state its snapshots hold: ``version``, unless it shares another
    /// projection's snapshots (then that one's). A snapshot of another version is never read.
    var snapshotVersion: Int { get }

    /// Names its snapshots were filed under before (none by default): never read again, and
    /// removed when a replay of it looks for snapshots.
    var retiredSnapshotNames: [String] { get }
}

extension Projection {
    public var summary: String { "" }

    public func finish(_ state: inout State) {}

    public func prepareForQueries(_ state: inout State) {}

    public var snapshotName: String { name }

    public var snapshotVersion: Int { version }

    public var retiredSnapshotNames: [String] { [] }

    public var reportKey: String { "state" }

    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) {
        body(SnapshotCoding.jsonValue(of: state))
    }

    /// The whole report, `{reportKey: [element…]}`, built: for small ledgers and tests. Print
    /// large ones with ``forEachReportElement(_:context:_:)``. (Not a customisation point:
    /// a projection's report is what its ``forEachReportElement(_:context:_:)`` hands over.)
    public func wholeReport(_ state: State, context: ReportContext) throws(LedgerError) -> JSONValue {
        try collectReport(reportKey) { (body) throws(LedgerError) in try forEachReportElement(state, context: context, body) }
    }
}

/// `{key: [element…]}`, with the elements `forEachElement` hands over.
private func collectReport(
    _ key: String, _ forEachElement: ((JSONValue) -> Void) throws(LedgerError) -> Void
) throws(LedgerError) -> JSONValue {
    var elements: [JSONValue] = []
    try forEachElement { elements.append($0) }
    return .object([key: .array(elements)])
}

/// The position and signatures of the record being applied.
public struct ReplayRecord: Sendable {
    /// The record's sequence number.
    public let sequence: UInt64
    /// The record's entry id (its RFC 6962 leaf hash).
    public let entryID: Digest
    /// When the ledger accepted the record: the ledger's word.
    public let acceptedAt: Timestamp
    /// The signed statement, for projections that check signatures.
    public let envelope: Envelope

    public init(sequence: UInt64, entryID: Digest, acceptedAt: Timestamp, envelope: Envelope) {
        self.sequence = sequence
        self.entryID = entryID
        self.acceptedAt = acceptedAt
        self.envelope = envelope
    }
}

/// What a projection's ``Projection/forEachReportElement(_:context:_:)`` may consult at query time.
public struct ReportContext: Sendable {
    /// The ledger the state was replayed from, to read records back.
    public var ledger: Ledger
    /// The ledger's evidence blobs, or `nil` to skip blob checks (blob states are then
    /// reported as `unchecked`).
    public var blobs: BlobStore?
    /// The position the state was replayed to.
    public var position: ReplayPosition

    public init(ledger: Ledger, blobs: BlobStore?, position: ReplayPosition) {
        self.ledger = ledger
        self.blobs = blobs
        self.position = position
    }
}

/// Where a replay stopped: the last record applied.
public struct ReplayPosition: Sendable, Hashable, Codable {
    /// The sequence number of the last record included, or `nil` if none was.
    public var sequence: UInt64?
    /// The entry id at ``sequence``.
    public var entryID: String?
    /// The acceptance time of that record (RFC 3339).
    public var acceptedAt: String?
    /// How many records the ledger held when it was opened.
    public var ledgerCount: UInt64

    public init(sequence: UInt64?, entryID: String?, acceptedAt: String?, ledgerCount: UInt64) {
        self.sequence = sequence
        self.entryID = entryID
        self.acceptedAt = acceptedAt
        self.ledgerCount = ledgerCount
    }

    /// The shape used by every command's `--json`:
    /// `{"sequence": n|null, "entry_id": hex|null, "accepted_at": time|null, "ledger_entries": n}`.
    public var json: JSONValue {
        .object([
            "sequence": sequence.map { .integer(Int64($0)) } ?? .null,
            "entry_id": entryID.map(JSONValue.string) ?? .null,
            "accepted_at": acceptedAt.map(JSONValue.string) ?? .null,
            "ledger_entries": .integer(Int64(ledgerCount)),
        ])
    }
}

/// JSON with sorted keys for default reports, so the same state always gives the same bytes.
enum SnapshotCoding {
    /// A state as a ``JSONValue``; `null` if it cannot be represented (a fraction, say).
    static func jsonValue(of value: some Encodable) -> JSONValue {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard let bytes = try? encoder.encode(value), let parsed = try? JSONParser.parse([UInt8](bytes)) else { return .null }
        return parsed
    }
}

/// A replayed projection, ready to report: what `ledger replay` prints.
///
/// Each report call runs the projection's query-time checks anew, through the ledger reader the
/// answer was made with: use an answer on one thread, as that reader.
public struct ProjectionAnswer {
    /// The projection's name and version.
    public var name: String
    public var version: Int
    /// What the replay did.
    public var info: ReplayInfo
    /// ``Projection/reportKey`` of the projection.
    public var reportKey: String
    private let elements: ((JSONValue) -> Void) throws(LedgerError) -> Void

    fileprivate init<P: Projection>(_ projection: P, replay: Replay<P.State>, context: ReportContext) {
        name = projection.name
        version = projection.version
        info = replay.info
        reportKey = projection.reportKey
        let state = replay.state
        elements = { (body) throws(LedgerError) in try projection.forEachReportElement(state, context: context, body) }
    }

    /// Hands over the report's elements in order, each as soon as it is built
    /// (``Projection/forEachReportElement(_:context:_:)``).
    /// - Throws: ``LedgerError`` if the log cannot be read back.
    public func forEachReportElement(_ body: (JSONValue) -> Void) throws(LedgerError) {
        try elements(body)
    }

    /// The whole report, `{reportKey: [element…]}`, built: for small ledgers and tests.
    /// - Throws: ``LedgerError`` if the log cannot be read back.
    public func report() throws(LedgerError) -> JSONValue {
        try collectReport(reportKey, elements)
    }
}

extension Projection {
    /// Replays this projection with `engine`, ready to report on the result; usable on an
    /// `any Projection` taken from a ``ProjectionRegistry``.
    public func answer(
        using engine: ReplayEngine, to target: ReplayTarget = .end, snapshots: SnapshotPolicy = .read, blobs: BlobStore?
    ) throws(LedgerError) -> ProjectionAnswer {
        let replay = try engine.replayForQueries(self, to: target, snapshots: snapshots)
        return ProjectionAnswer(self, replay: replay, context: ReportContext(ledger: engine.ledger, blobs: blobs, position: replay.info.position))
    }

    /// Replays this projection to the end and writes a snapshot there.
    /// - Returns: the snapshot's path, or `nil` if the ledger is empty.
    /// - Throws: ``LedgerError/Code/io`` if the snapshot cannot be written.
    public func writeSnapshot(using engine: ReplayEngine) throws(LedgerError) -> String? {
        let replay = try engine.replay(self, to: .end, snapshots: .read)
        guard replay.info.position.sequence != nil else { return nil }
        return try engine.writeSnapshot(self, of: replay)
    }
}

/// Small builders for the JSON reports.
extension JSONValue {
    static func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
    static func optional(_ n: UInt64?) -> JSONValue { n.map { .integer(Int64($0)) } ?? .null }
    static func number(_ n: UInt64) -> JSONValue { .integer(Int64(n)) }
    static func number(_ n: Int) -> JSONValue { .integer(Int64(n)) }
    static func strings(_ list: [String]) -> JSONValue { .array(list.map(JSONValue.string)) }
}
