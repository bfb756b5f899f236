import Dispatch
import LedgerCore
import LedgerCrypto
import LedgerStore

/// A synthetic investigation: 20 signing parties and a realistic mix of the v1 vocabulary, with
/// payloads of 300–1,000 bytes. Deterministic for a given seed.
struct Workload {
    struct Party {
        var id: String
        var role: Event.Role
        var key: SigningKey
    }

    struct Claim {
        var id: String
        var fact: String
        var author: Int
    }

    static let origin = "bench.example/ledger"
    static let start = Timestamp(seconds: 1_600_675_200)

    var random: SplitMix64
    let parties: [Party]
    var facts: [String] = []
    var claims: [Claim] = []
    var evidence: [String] = []
    var counter = 0
    private static let words = "the system was deployed in the region according to documents obtained by investigators who reviewed procurement records export licences and statements made by the company during the period under review".split(separator: " ").map(String.init)

    init(seed: UInt64 = 2020) {
        random = SplitMix64(seed: seed)
        var parties: [Party] = []
        let roles: [(String, Event.Role, Int)] = [("admin", .admin, 1), ("inv", .investigator, 8), ("rev", .reviewer, 5), ("sub", .subject, 6)]
        var seed: UInt8 = 1
        for (prefix, role, count) in roles {
            for n in 1...count {
                let id = count == 1 ? prefix : "\(prefix)-\(n)"
                // Fixed seeds: the same ledger on every run.
                parties.append(Party(id: id, role: role, key: (try? SigningKey(seed: [UInt8](repeating: seed, count: 32)))!))
                seed += 1
            }
        }
        self.parties = parties
    }

    var admin: Party { parties[0] }

    mutating func text(_ length: Int) -> String {
        var out = ""
        while out.utf8.count < length {
            out += Self.words[Int(random.next() % UInt64(Self.words.count))] + " "
        }
        return out
    }

    mutating func pick(_ roles: Set<Event.Role>) -> Int {
        while true {
            let i = Int(random.next() % UInt64(parties.count - 1)) + 1
            if roles.contains(parties[i].role) { return i }
        }
    }

    mutating func nextID(_ prefix: String) -> String {
        counter += 1
        return "\(prefix)-\(counter)"
    }

    /// The registrations of every party but the admin, signed by the admin.
    func registrations(at time: Timestamp) -> [(fields: [String: JSONValue], signer: Int)] {
        parties.dropFirst().map { party in
            (["type": "party.registered", "id": .string("reg-\(party.id)"), "party": .string(party.id), "name": .string(party.id.uppercased()),
              "role": .string(party.role.rawValue), "keys": [.string(Base64.encode(party.key.publicKey.rawRepresentation))]], 0)
        }
    }

    /// The next statement of the mix, valid against everything generated before it.
    mutating func next() -> (fields: [String: JSONValue], signer: Int) {
        let roll = random.next() % 100
        let length = 150 + Int(random.next() % 650)
        if facts.isEmpty || roll < 6 {
            let author = pick([.investigator, .reviewer])
            let fact = nextID("fact")
            facts.append(fact)
            return (["type": "fact.opened", "id": .string("open-" + fact), "fact": .string(fact), "proposition": .string(text(length)), "tags": ["bench"]], author)
        }
        if claims.isEmpty || roll < 40 {
            let author = pick([.investigator, .reviewer, .subject])
            let claim = Claim(id: nextID("claim"), fact: facts[Int(random.next() % UInt64(facts.count))], author: author)
            claims.append(claim)
            let stance = ["affirms", "denies", "qualifies"][Int(random.next() % 3)]
            return (["type": "claim.asserted", "id": .string(claim.id), "claim": .string(claim.id), "fact": .string(claim.fact), "stance": .string(stance),
                     "statement": .string(text(length)), "source": ["uri": "https://example.org/report", "published_at": "2020-09-21T00:00:00Z"]], author)
        }
        let target = Int(random.next() % UInt64(claims.count))
        if roll < 54 {
            let author = pick([.investigator, .reviewer, .subject])
            let claim = Claim(id: nextID("claim"), fact: claims[target].fact, author: author)
            claims.append(claim)
            return (["type": "claim.countered", "id": .string(claim.id), "claim": .string(claim.id), "counters": .string(claims[target].id),
                     "fact": .string(claim.fact), "stance": "denies", "statement": .string(text(length))], author)
        }
        if evidence.isEmpty || roll < 68 {
            let author = pick([.investigator, .reviewer])
            let item = nextID("evidence")
            evidence.append(item)
            let other = claims[Int(random.next() % UInt64(claims.count))].id
            let contradicts: JSONValue = other == claims[target].id ? [] : [.string(other)]
            return (["type": "evidence.attached", "id": .string(item), "evidence": .string(item), "sha256": .string(SHA256.hash(Array(item.utf8)).hexString),
                     "size": .integer(Int64(1000 + random.next() % 100_000)), "media_type": "application/pdf", "title": .string(text(length / 2)),
                     "supports": [.string(claims[target].id)], "contradicts": contradicts, "custodian": "Evidence desk"], author)
        }
        let item = evidence[Int(random.next() % UInt64(evidence.count))]
        if roll < 78 {
            return (["type": "custody.recorded", "id": .string(nextID("custody")), "evidence": .string(item), "action": "copied",
                     "from": "field team", "to": "evidence desk", "note": .string(text(length))], pick([.investigator, .reviewer]))
        }
        if roll < 90 {
            let attestation = nextID("attestation")
            return (["type": "attestation.made", "id": .string(attestation), "attestation": .string(attestation), "target": .string(random.next() % 2 == 0 ? item : claims[target].id),
                     "kind": "reviewed", "note": .string(text(length))], pick([.investigator, .reviewer, .subject]))
        }
        if roll < 96 {
            return (["type": "claim.amended", "id": .string(nextID("amend")), "claim": .string(claims[target].id), "statement": .string(text(length))], claims[target].author)
        }
        if roll < 97, claims.count > 10 {
            let claim = claims.remove(at: target)
            return (["type": "claim.retracted", "id": .string(nextID("retract")), "claim": .string(claim.id), "reason": .string(text(length))], claim.author)
        }
        let finding = nextID("finding")
        return (["type": "finding.recorded", "id": .string(finding), "finding": .string(finding), "fact": .string(claims[target].fact), "outcome": "inconclusive",
                 "rationale": .string(text(length)), "relies_on": [.string(item)]], pick([.reviewer]))
    }

    /// Signs statements in parallel (signing is deterministic, so the order of work does not matter).
    func sign(_ statements: [(fields: [String: JSONValue], signer: Int)], at time: Timestamp) -> [Envelope] {
        var out = [Envelope?](repeating: nil, count: statements.count)
        let chunk = 64
        out.withUnsafeMutableBufferPointer { buffer in
            let base = UnsafeMutableBufferPointerBox(buffer)
            DispatchQueue.concurrentPerform(iterations: (statements.count + chunk - 1) / chunk) { c in
                for i in (c * chunk)..<min(statements.count, (c + 1) * chunk) {
                    var fields = statements[i].fields
                    let party = parties[statements[i].signer]
                    fields["v"] = 1
                    fields["author"] = .string(party.id)
                    fields["signed_at"] = .string(time.rfc3339)
                    var writer = JSONWriter()
                    writer.value(.object(fields))
                    var envelope = Envelope(payload: writer.bytes, signatures: [])
                    try? envelope.sign(with: party.key)
                    base.buffer[i] = envelope
                }
            }
        }
        return out.compactMap { $0 }
    }

    /// The log key that signs the benchmark ledgers' checkpoints.
    static let logKey = (try? SigningKey(seed: [UInt8](repeating: 0xEE, count: 32)))!

    /// The workload as it stands after writing a ledger of `entries` entries (``generate``, and
    /// any statements appended after it by this workload): its next statements continue it.
    static func continuing(entries: Int) -> Workload {
        var workload = Workload()
        for _ in 0..<max(0, entries - 1 - workload.registrations(at: start).count) { _ = workload.next() }
        return workload
    }

    /// When statements appended to a generated ledger are signed and accepted: after all of its own.
    static let appendTime = Timestamp(seconds: start.seconds + 86_400)

    /// Writes a ledger of `entries` records into `directory`, in group commits of 1,000, with
    /// a signed checkpoint 1,000 entries before the end and one at the end.
    static func generate(entries: Int, directory: String, progress: (Int) -> Void = { _ in }) throws -> Workload {
        var workload = Workload()
        var time = start
        let writer = try LedgerWriter.create(directory: directory, origin: origin, adminKey: workload.admin.key, adminParty: "admin", signedAt: time, acceptedAt: time)
        var written = 1
        var pending = workload.registrations(at: time)
        while written < entries {
            let checkpointAt = entries - 1000
            let limit = written < checkpointAt ? checkpointAt - written : entries - written
            while pending.count < min(1000, limit) { pending.append(workload.next()) }
            time = Timestamp(seconds: time.seconds + 1)
            try writer.append(workload.sign(pending, at: time), acceptedAt: time)
            written += pending.count
            pending = []
            if written == checkpointAt || written == entries { _ = try writer.signCheckpoint(with: logKey) }
            progress(written)
        }
        return workload
    }
}

/// Lets concurrent iterations write distinct elements of one buffer.
struct UnsafeMutableBufferPointerBox<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T>
    init(_ buffer: UnsafeMutableBufferPointer<T>) { self.buffer = buffer }
}
