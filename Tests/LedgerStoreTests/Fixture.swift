import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore

/// A ledger in a temporary directory with an admin, an investigator, a reviewer and a subject,
/// each with a key from a fixed seed, and helpers to sign events as any of them.
final class Fixture {
    let root: URL
    let directory: String
    var keys: [String: SigningKey] = [:]
    private var clock = 0

    static func key(_ n: UInt8) -> SigningKey {
        // Fixed seeds keep every test run byte-identical.
        (try? SigningKey(seed: [UInt8](repeating: n, count: 32)))!
    }

    init(parties: Bool = true) throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        directory = root.appendingPathComponent("ledger").path
        keys["admin"] = Self.key(1)
        let writer = try LedgerWriter.create(
            directory: directory, origin: "test.example/ledger", adminKey: Self.key(1), adminParty: "admin",
            signedAt: time(), acceptedAt: time())
        if parties {
            let registrations = try [("inv", "investigator", 2), ("rev", "reviewer", 3), ("sub", "subject", 4), ("other", "investigator", 5)].map {
                (party, role, seed) -> Envelope in
                keys[party] = Self.key(UInt8(seed))
                return try sign([
                    "type": "party.registered", "id": "reg-\(party)", "party": party, "name": party.uppercased(), "role": role,
                    "keys": [Base64.encode(Self.key(UInt8(seed)).publicKey.rawRepresentation)],
                ], as: "admin")
            }
            try writer.append(registrations, acceptedAt: time())
        }
    }

    deinit { try? FileManager.default.removeItem(at: root) }

    /// A fresh, increasing time, one minute apart.
    func time() -> Timestamp {
        clock += 1
        return Timestamp(seconds: 1_600_675_200 + Int64(clock) * 60)
    }

    /// Signs `event` (a dictionary of JSON-like values) as `party` with its key (or `key`).
    func sign(_ event: [String: Any], as party: String, key: SigningKey? = nil, time: Timestamp? = nil) throws -> Envelope {
        var members = event.mapValues(Self.json)
        members["v"] = .integer(1)
        members["author"] = .string(party)
        members["signed_at"] = members["signed_at"] ?? .string((time ?? self.time()).rfc3339)
        var writer = JSONWriter()
        writer.value(.object(members))
        var envelope = Envelope(payload: writer.bytes, signatures: [])
        guard let signingKey = key ?? keys[party] else { throw LedgerError(.usage, "no key for \(party)") }
        try envelope.sign(with: signingKey)
        return envelope
    }

    static func json(_ value: Any) -> JSONValue {
        switch value {
        case let s as String: return .string(s)
        case let i as Int: return .integer(Int64(i))
        case let a as [Any]: return .array(a.map(json))
        case let d as [String: Any]: return .object(d.mapValues(json))
        default: return .null
        }
    }

    func writer() throws -> LedgerWriter { try LedgerWriter(directory: directory) }

    @discardableResult
    func append(_ envelopes: [Envelope]) throws -> [AppendedEntry] {
        try writer().append(envelopes, acceptedAt: time())
    }

    @discardableResult
    func append(_ event: [String: Any], as party: String) throws -> AppendedEntry {
        try append([sign(event, as: party)])[0]
    }

    var logPath: String { directory + "/log" }

    /// Leaves the ledger as a crash in the middle of appending after entry `count - 1` would:
    /// the log holds `log` (committed records, then whatever reached the disk), and the derived
    /// files, written only after the log is synced, cover just the first `count` entries.
    func simulateCrash(log: [UInt8], committed count: Int) throws {
        try writeLog(log)
        let index = URL(fileURLWithPath: directory + "/index")
        try Data(try Data(contentsOf: index).prefix(count * 16)).write(to: index)
        try? FileManager.default.removeItem(atPath: directory + "/tree")
    }

    /// What a forger who rewrote the log does next: removes the derived files that record what
    /// was acknowledged (repair refuses to rebuild over them) and rebuilds them from the log.
    static func rebuildDerivedOverForgery(_ directory: String) throws {
        try? FileManager.default.removeItem(atPath: directory + "/index")
        try? FileManager.default.removeItem(atPath: directory + "/tree")
        _ = try Repair.rebuildDerived(directory: directory)
    }

    /// Writes `envelopes` into the log after its last record, one record each and unchecked, as
    /// someone with write access to the files could, then rebuilds the derived files over them
    /// (``rebuildDerivedOverForgery(_:)``), so that only verification's own checks can tell.
    /// - Returns: the records' sequence numbers.
    @discardableResult
    func appendRaw(_ envelopes: [Envelope]) throws -> [UInt64] {
        var lines = try logLines()
        guard let lastLine = lines.last else { throw LedgerError(.usage, "the log is empty") }
        var sequence = try Record(stored: lastLine).sequence
        var previous = Record.entryID(of: lastLine)
        var sequences: [UInt64] = []
        for envelope in envelopes {
            sequence += 1
            // Accepted after it was signed (``time()`` only goes forwards), in a batch of its own.
            let bytes = Record(sequence: sequence, previous: previous, acceptedAt: time(), batchEnd: sequence, envelope: envelope).encoded()
            lines.append(bytes)
            previous = Record.entryID(of: bytes)
            sequences.append(sequence)
        }
        try writeLines(lines)
        try Self.rebuildDerivedOverForgery(directory)
        return sequences
    }

    func logBytes() throws -> [UInt8] { [UInt8](try Data(contentsOf: URL(fileURLWithPath: logPath))) }

    func writeLog(_ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: logPath)) }

    /// The log's lines (records), without newlines.
    func logLines() throws -> [[UInt8]] {
        try logBytes().split(separator: 0x0a, omittingEmptySubsequences: false).dropLast().map(Array.init)
    }

    func writeLines(_ lines: [[UInt8]]) throws {
        try writeLog(lines.flatMap { $0 + [0x0a] })
    }

    /// A small case: a fact, a claim and a counterclaim, evidence, an attestation.
    func populate() throws {
        try append(["type": "fact.opened", "id": "open-f1", "fact": "f1", "proposition": "The system was deployed", "subjects": ["sub"]], as: "inv")
        try append(["type": "claim.asserted", "id": "c1", "claim": "c1", "fact": "f1", "stance": "denies", "statement": "It was never deployed."], as: "sub")
        try append(["type": "claim.countered", "id": "c2", "claim": "c2", "counters": "c1", "fact": "f1", "stance": "affirms", "statement": "It was deployed."], as: "inv")
        try append([
            "type": "evidence.attached", "id": "e1", "evidence": "e1", "sha256": SHA256.hash(Array("doc".utf8)).hexString, "size": 3,
            "media_type": "text/plain", "title": "A document", "supports": ["c2"], "contradicts": ["c1"],
        ], as: "inv")
        try append(["type": "attestation.made", "id": "a1", "attestation": "a1", "target": "e1", "kind": "reviewed"], as: "rev")
    }
}
