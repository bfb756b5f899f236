import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore

/// Feeds arbitrary bytes through every decoder of untrusted input and through the append
/// checks, asserting the round-trip invariants that keep one input from being read two ways. An
/// input that starts like a saved state goes to ``SavedStateFuzzing`` instead, and one that starts
/// like a projection snapshot goes to ``SnapshotFuzzing``.
///
/// Used by the libFuzzer target in `Tools/fuzz` and by a regression test that replays the
/// committed corpus, so every input that ever crashed stays a test.
public final class FuzzHarness: Sendable {
    /// One harness, built once per process.
    public static let shared = FuzzHarness()

    private let state: LedgerState
    private static let acceptedAt = Timestamp(seconds: 1_600_675_200)

    /// The parties' keys. Fixed seeds: the committed corpus carries signatures by these keys.
    static let keys: [String: SigningKey] = {
        var keys: [String: SigningKey] = [:]
        for (n, party) in ["admin", "inv", "rev", "sub"].enumerated() {
            keys[party] = try? SigningKey(seed: [UInt8](repeating: UInt8(n + 1), count: 32))
        }
        return keys
    }()

    private init() {
        var state = LedgerState()
        for (sequence, envelope) in Self.history(keys: Self.keys).enumerated() {
            guard let event = try? Event(payload: envelope.payload) else { continue }
            _ = try? state.admit(envelope, event: event, entryID: SHA256.hash(envelope.payload), sequence: UInt64(sequence), acceptedAt: Self.acceptedAt)
        }
        self.state = state
    }

    /// Runs one input through the decoders and the append checks.
    public func run(_ input: UnsafeRawBufferPointer) {
        let bytes = Array(input)
        if bytes.starts(with: SavedState.magic) {
            SavedStateFuzzing.run(bytes)
            return
        }
        if bytes.starts(with: SnapshotBinary.magic) {
            SnapshotFuzzing.run(bytes)
            return
        }
        // The strict base64 decoder must accept exactly the texts that `encode` writes.
        let canonical = Base64.decodeCanonical(utf8: bytes)
        let reencoded = Base64.decode(utf8: bytes).flatMap { Array(Base64.encode($0).utf8) == bytes ? $0 : nil }
        precondition(canonical == reencoded, "base64: the canonical decoder and decode-then-encode disagree")
        // A time read from bytes is written back the same way, and only its own spelling is canonical.
        if let time = input.withMemoryRebound(to: UInt8.self, { Timestamp(rfc3339Bytes: $0) }) {
            precondition(Timestamp(rfc3339: time.rfc3339) == time, "a time changed through its text")
            let exact = Array(time.rfc3339.utf8) == bytes
            let canonical = input.withMemoryRebound(to: UInt8.self) { Timestamp(canonicalRFC3339Bytes: $0) }
            precondition((canonical != nil) == exact && (canonical == nil || canonical == time), "canonical time text misjudged")
        }
        if let value = try? JSONParser.parse(bytes) {
            var writer = JSONWriter()
            writer.value(value)
            precondition((try? JSONParser.parse(writer.bytes)) == value, "JSON value changed through write and parse")
        }
        let record = try? Record(stored: bytes)
        if let record {
            precondition(record.encoded() == bytes, "a record was accepted in a non-canonical form")
        }
        precondition((try? Record(stored: input)) == record, "a record read in place differs from one read from an array")
        guard let envelope = try? Envelope(jsonText: bytes) else { return }
        precondition((try? Envelope(jsonText: envelope.jsonBytes)) == envelope, "an envelope changed through its canonical form")
        guard let event = try? Event(payload: envelope.payload, allowUnknownType: true) else { return }
        var checked = state
        _ = try? checked.admit(envelope, event: event, entryID: SHA256.hash(bytes), sequence: checked.count, acceptedAt: Self.acceptedAt)
        var trusted = state
        _ = try? trusted.admit(envelope, event: event, entryID: SHA256.hash(bytes), sequence: trusted.count, acceptedAt: Self.acceptedAt, signaturesChecked: true)
    }

    /// Runs one input.
    public func run(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { run($0) }
    }

    /// Valid inputs to start fuzzing from: an envelope of every event type, signed by the
    /// harness's keys, and a record wrapping one.
    public func seeds() -> [[UInt8]] {
        let keys = Self.keys
        var out = Self.history(keys: keys).map(\.jsonBytes)
        let extra: [(String, [String: JSONValue])] = [
            ("sub", ["type": "claim.asserted", "id": "c1", "claim": "c1", "fact": "f1", "stance": "denies", "statement": "Never."]),
            ("inv", ["type": "claim.countered", "id": "c2", "claim": "c2", "counters": "c1", "fact": "f1", "stance": "affirms", "statement": "It was.", "source": .object(["uri": "https://example.org", "published_at": "2020-09-21T00:00:00Z", "quote": "q"])]),
            ("inv", ["type": "evidence.attached", "id": "e1", "evidence": "e1", "sha256": .string(Digest.zero.hexString), "size": 3, "media_type": "text/plain", "title": "T", "supports": ["c2"], "contradicts": ["c1"]]),
            ("inv", ["type": "custody.recorded", "id": "cu", "evidence": "e1", "action": "copied", "from": "a", "to": "b"]),
            ("rev", ["type": "attestation.made", "id": "a1", "attestation": "a1", "target": "e1", "kind": "reviewed"]),
            ("rev", ["type": "finding.recorded", "id": "fd", "finding": "fd", "fact": "f1", "outcome": "inconclusive", "rationale": "R", "relies_on": ["e1"]]),
            ("sub", ["type": "claim.amended", "id": "m1", "claim": "c1", "statement": "Not really."]),
            ("sub", ["type": "claim.retracted", "id": "r1", "claim": "c1", "reason": "R"]),
            ("inv", ["type": "key.revoked", "id": "kr", "party": "inv", "key": .string(Base64.encode(keys["inv"]?.publicKey.rawRepresentation ?? []))]),
        ]
        for (party, fields) in extra {
            if let envelope = Self.sign(fields, as: party, keys: keys) { out.append(envelope.jsonBytes) }
        }
        if let first = Self.history(keys: keys).first {
            out.append(Record(sequence: 0, previous: .zero, acceptedAt: Self.acceptedAt, batchEnd: 0, envelope: first).encoded())
        }
        if let state = SavedStateFuzzing.seed(state, sign: { Self.sign($0, as: $1, keys: keys) }) { out.append(state) }
        return out
    }

    static func sign(_ fields: [String: JSONValue], as party: String, keys: [String: SigningKey]) -> Envelope? {
        var members = fields
        members["v"] = .integer(1)
        members["author"] = .string(party)
        members["signed_at"] = .string("2020-09-21T08:00:00Z")
        var writer = JSONWriter()
        writer.value(.object(members))
        var envelope = Envelope(payload: writer.bytes, signatures: [])
        guard let key = keys[party], (try? envelope.sign(with: key)) != nil else { return nil }
        return envelope
    }

    /// Genesis, the parties, and a fact: the state every input is checked against.
    static func history(keys: [String: SigningKey]) -> [Envelope] {
        func raw(_ party: String) -> JSONValue { .string(Base64.encode(keys[party]?.publicKey.rawRepresentation ?? [])) }
        let steps: [(String, [String: JSONValue])] = [
            ("admin", ["type": "ledger.genesis", "id": "genesis", "origin": "fuzz.test/ledger", "party": "admin", "name": "Admin", "keys": .array([raw("admin")])]),
            ("admin", ["type": "party.registered", "id": "reg-inv", "party": "inv", "name": "Inv", "role": "investigator", "keys": .array([raw("inv")])]),
            ("admin", ["type": "party.registered", "id": "reg-rev", "party": "rev", "name": "Rev", "role": "reviewer", "keys": .array([raw("rev")])]),
            ("admin", ["type": "party.registered", "id": "reg-sub", "party": "sub", "name": "Sub", "role": "subject", "keys": .array([raw("sub")])]),
            ("inv", ["type": "fact.opened", "id": "open-f1", "fact": "f1", "proposition": "P", "subjects": ["sub"]]),
        ]
        return steps.compactMap { sign($0.1, as: $0.0, keys: keys) }
    }
}
