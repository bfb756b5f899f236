import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore

/// A small ledger in a temporary directory, built through `LedgerWriter` with deterministic
/// keys and times: one statement per append, acceptance times one minute apart.
final class TestLedger {
    let root: String
    let directory: String
    private(set) var writer: LedgerWriter?
    /// Each party's keys that may still sign, oldest first; statements are signed with the last.
    var keys: [String: [SigningKey]] = [:]
    /// The acceptance time of the next record, in seconds.
    var clock: Int64 = 1_600_646_400  // 2020-09-21T00:00:00Z
    private var counter = 0
    /// The acceptance time of each record, by sequence number.
    private(set) var acceptedTimes: [Timestamp] = []

    static func key(_ n: Int) throws -> SigningKey {
        var seed = [UInt8](repeating: 0, count: 32)
        seed[0] = UInt8(n & 0xff)
        seed[1] = UInt8((n >> 8) & 0xff)
        seed[31] = 0x5a
        return try SigningKey(seed: seed)
    }

    /// A new, empty temporary directory; in memory (`/dev/shm`) where there is one, because
    /// every append and snapshot is fsynced and the property tests make hundreds.
    static func temporaryDirectory() -> String {
        var base = NSTemporaryDirectory()
        if access("/dev/shm", W_OK) == 0 { base = "/dev/shm" }
        let path = base + "/ledger-projections-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Creates a ledger with admin party `admin` and, unless `parties` is false, the parties
    /// `amnesty` (investigator), `idemia` (subject), `axis` (subject), `reviewer` (reviewer).
    init(parties: Bool = true) throws {
        root = Self.temporaryDirectory()
        directory = root + "/ledger"
        let admin = try Self.key(1)
        let time = Timestamp(seconds: clock)
        writer = try LedgerWriter.create(directory: directory, origin: "test.example/ledger", adminKey: admin, signedAt: time, acceptedAt: time)
        acceptedTimes.append(time)
        clock += 60
        keys["admin"] = [admin]
        if parties {
            try register("amnesty", role: "investigator", key: 2)
            try register("idemia", role: "subject", key: 3)
            try register("axis", role: "subject", key: 4)
            try register("reviewer", role: "reviewer", key: 5)
        }
    }

    deinit {
        writer = nil
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Closes the writer (releasing the lock), e.g. before writing records by hand.
    func close() { writer = nil }

    /// A fresh reader.
    func open() throws -> Ledger { try Ledger(directory: directory) }

    var count: UInt64 { writer?.ledger.count ?? 0 }

    func acceptedAt(_ sequence: UInt64) -> Timestamp { acceptedTimes[Int(sequence)] }

    /// Builds a signed envelope for an event by `author`.
    func envelope(_ author: String, _ type: String, id: String? = nil, _ fields: [String: JSONValue], signer: SigningKey? = nil) throws -> Envelope {
        counter += 1
        var members = fields
        members["v"] = .integer(1)
        members["type"] = .string(type)
        members["id"] = .string(id ?? "ev-\(counter)")
        members["author"] = .string(author)
        members["signed_at"] = .string(Timestamp(seconds: clock - 30).rfc3339)
        var json = JSONWriter()
        json.value(.object(members))
        var envelope = Envelope(payload: json.bytes, signatures: [])
        guard let key = signer ?? keys[author]?.last else { throw LedgerError(.usage, "no key for \(author)") }
        try envelope.sign(with: key)
        return envelope
    }

    /// Signs and appends one event; returns its entry.
    @discardableResult
    func append(_ author: String, _ type: String, id: String? = nil, _ fields: [String: JSONValue], signer: SigningKey? = nil) throws -> AppendedEntry {
        guard let writer else { throw LedgerError(.usage, "the test ledger's writer is closed") }
        let envelope = try envelope(author, type, id: id, fields, signer: signer)
        let time = Timestamp(seconds: clock)
        clock += 60
        let entries = try writer.append([envelope], acceptedAt: time)
        acceptedTimes.append(time)
        return entries[0]
    }

    /// Appends a record for `envelope` by writing its bytes to the log directly, bypassing the
    /// append rules (as a newer version of the software, or a forger, might).
    func appendRaw(_ envelope: Envelope) throws {
        try appendRaw([envelope])
    }

    /// Appends one event signed by `author`'s key as ``appendRaw(_:)-(Envelope)`` does, bypassing
    /// the append rules: its sequence number and entry id.
    @discardableResult
    func appendRaw(_ author: String, _ type: String, _ fields: [String: JSONValue]) throws -> (sequence: UInt64, entryID: String) {
        try appendRaw(envelope(author, type, fields))
        let ledger = try open()
        return (ledger.count - 1, try ledger.entryID(at: ledger.count - 1).hexString)
    }

    /// As ``appendRaw(_:)-(Envelope)``, one record for each envelope, in one write.
    func appendRaw(_ envelopes: [Envelope]) throws {
        precondition(writer == nil, "close the writer first")
        let ledger = try open()
        var previous = ledger.lastEntryID
        var bytes: [UInt8] = []
        for (i, envelope) in envelopes.enumerated() {
            let sequence = ledger.count + UInt64(i)
            let time = Timestamp(seconds: clock)
            clock += 60
            let record = Record(sequence: sequence, previous: previous, acceptedAt: time, batchEnd: sequence, envelope: envelope).encoded()
            previous = Record.entryID(of: record)
            bytes += record + [0x0a]
            acceptedTimes.append(time)
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(bytes))
        try handle.close()
    }

    // MARK: The vocabulary

    static func base64(_ key: SigningKey) -> JSONValue { .string(Base64.encode(key.publicKey.rawRepresentation)) }

    func register(_ party: String, role: String, key n: Int) throws {
        let key = try Self.key(n)
        try append("admin", "party.registered", ["party": .string(party), "name": .string(party.capitalized), "role": .string(role), "keys": .array([Self.base64(key)])])
        keys[party] = [key]
    }

    func addKey(_ party: String, key n: Int, by author: String? = nil) throws {
        let key = try Self.key(n)
        try append(author ?? party, "key.added", ["party": .string(party), "key": Self.base64(key)])
        keys[party, default: []].append(key)
    }

    @discardableResult
    func revokeKey(_ party: String, _ key: SigningKey, by author: String? = nil) throws -> AppendedEntry {
        let entry = try append(author ?? party, "key.revoked", ["party": .string(party), "key": Self.base64(key), "reason": .string("lost")])
        keys[party]?.removeAll { $0.publicKey == key.publicKey }
        return entry
    }

    @discardableResult
    func openFact(_ fact: String, by author: String = "amnesty", proposition: String? = nil) throws -> AppendedEntry {
        try append(author, "fact.opened", ["fact": .string(fact), "proposition": .string(proposition ?? "Proposition \(fact)")])
    }

    static func source(_ published: Int64?) -> JSONValue {
        var object: [String: JSONValue] = ["uri": .string("https://example.org/source")]
        if let published { object["published_at"] = .string(Timestamp(seconds: published).rfc3339) }
        return .object(object)
    }

    @discardableResult
    func assert(_ claim: String, fact: String, by author: String, _ stance: String, statement: String? = nil, published: Int64? = nil, id: String? = nil) throws -> AppendedEntry {
        var fields: [String: JSONValue] = ["claim": .string(claim), "fact": .string(fact), "stance": .string(stance), "statement": .string(statement ?? "\(author) says \(stance)")]
        if let published { fields["source"] = Self.source(published) }
        return try append(author, "claim.asserted", id: id, fields)
    }

    @discardableResult
    func counter(_ claim: String, counters: String, fact: String, by author: String, _ stance: String, statement: String? = nil) throws -> AppendedEntry {
        try append(author, "claim.countered", ["claim": .string(claim), "counters": .string(counters), "fact": .string(fact), "stance": .string(stance), "statement": .string(statement ?? "\(author) counters \(counters)")])
    }

    func amend(_ claim: String, by author: String, statement: String? = nil, stance: String? = nil) throws {
        var fields: [String: JSONValue] = ["claim": .string(claim), "reason": .string("correction")]
        if let statement { fields["statement"] = .string(statement) }
        if let stance { fields["stance"] = .string(stance) }
        try append(author, "claim.amended", fields)
    }

    func retract(_ claim: String, by author: String, reason: String = "withdrawn") throws {
        try append(author, "claim.retracted", ["claim": .string(claim), "reason": .string(reason)])
    }

    static func evidenceBytes(_ evidence: String) -> [UInt8] { Array("contents of \(evidence)".utf8) }

    @discardableResult
    func attach(_ evidence: String, by author: String = "amnesty", supports: [String] = [], contradicts: [String] = [], custodian: String? = nil, bytes: [UInt8]? = nil) throws -> AppendedEntry {
        let content = bytes ?? Self.evidenceBytes(evidence)
        var fields: [String: JSONValue] = [
            "evidence": .string(evidence), "sha256": .string(SHA256.hash(content).hexString), "size": .integer(Int64(content.count)),
            "media_type": .string("text/plain"), "title": .string("Document \(evidence)"),
            "captured_at": .string(Timestamp(seconds: 1_600_000_000).rfc3339),
            "supports": .array(supports.map(JSONValue.string)), "contradicts": .array(contradicts.map(JSONValue.string)),
        ]
        if let custodian { fields["custodian"] = .string(custodian) }
        return try append(author, "evidence.attached", fields)
    }

    @discardableResult
    func custody(_ evidence: String, _ action: String, from: String? = nil, to: String? = nil, at: Int64? = nil, by author: String = "amnesty") throws -> AppendedEntry {
        var fields: [String: JSONValue] = ["evidence": .string(evidence), "action": .string(action)]
        if let from { fields["from"] = .string(from) }
        if let to { fields["to"] = .string(to) }
        if let at { fields["at"] = .string(Timestamp(seconds: at).rfc3339) }
        return try append(author, "custody.recorded", fields)
    }

    @discardableResult
    func attest(_ attestation: String, target: String, by author: String = "reviewer", kind: String = "reviewed") throws -> AppendedEntry {
        try append(author, "attestation.made", ["attestation": .string(attestation), "target": .string(target), "kind": .string(kind)])
    }

    @discardableResult
    func finding(_ finding: String, fact: String, _ outcome: String, reliesOn: [String] = [], by author: String = "reviewer") throws -> AppendedEntry {
        try append(author, "finding.recorded", ["finding": .string(finding), "fact": .string(fact), "outcome": .string(outcome), "rationale": .string("because"), "relies_on": .array(reliesOn.map(JSONValue.string))])
    }

    /// Stores an evidence item's blob in the ledger's blob store.
    func storeBlob(_ bytes: [UInt8]) throws {
        let file = root + "/blob-\(counter)"
        counter += 1
        _ = FileManager.default.createFile(atPath: file, contents: Data(bytes))
        _ = try BlobStore(ledgerDirectory: directory).add(file: file)
    }

    /// Copies the ledger's FORMAT and log to a new directory, cutting the log after record `last`.
    func truncatedCopy(through last: UInt64) throws -> String {
        let copy = root + "/copy-\(last)-\(counter)"
        counter += 1
        try FileManager.default.createDirectory(atPath: copy, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: directory + "/FORMAT", toPath: copy + "/FORMAT")
        let log = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/log")))
        var lines = 0
        var end = log.count
        for (i, byte) in log.enumerated() where byte == 0x0a {
            lines += 1
            if lines == Int(last) + 1 {
                end = i + 1
                break
            }
        }
        _ = FileManager.default.createFile(atPath: copy + "/log", contents: Data(log[..<end]))
        return copy
    }
}

/// A state's report as canonical JSON text, for comparisons.
func canonical(_ value: JSONValue) -> String {
    var writer = JSONWriter()
    writer.value(value)
    return String(decoding: writer.bytes, as: UTF8.self)
}

extension TestLedger {
    /// The disputed-facts view of this ledger at `target`, by fact id (no snapshots).
    func facts(to target: ReplayTarget = .end, blobs: Bool = true, verifiesSignatures: Bool = true) throws -> [String: FactView] {
        let ledger = try open()
        let projection = DisputedFactsProjection(verifiesSignatures: verifiesSignatures)
        let replay = try ReplayEngine(withoutSnapshots: ledger).replay(projection, to: target, snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: blobs ? BlobStore(ledgerDirectory: directory) : nil, position: replay.info.position)
        return Dictionary(uniqueKeysWithValues: try projection.facts(in: replay.state, context: context).map { ($0.fact.fact, $0) })
    }

    func fact(_ id: String, to target: ReplayTarget = .end) throws -> FactView {
        guard let fact = try facts(to: target)[id] else { throw LedgerError(.notFound, "no fact \(id)") }
        return fact
    }
}
