public import LedgerCore
public import LedgerCrypto

/// Every key registered in the ledger, with its party and validity, folded from the log, so
/// that projections can say whether a statement was signed by a key valid at its position.
public struct KeyTable: Codable, Sendable, Equatable {
    /// One registered key.
    public struct Key: Codable, Sendable, Equatable {
        /// The party it belongs to.
        public var party: String
        /// The raw 32-byte Ed25519 public key, base64.
        public var publicKey: String
        /// The sequence number from which it may sign.
        public var validFrom: UInt64
        /// The sequence number of its revocation; it may not sign after that.
        public var revokedAt: UInt64?

        enum CodingKeys: String, CodingKey {
            case party, publicKey = "public_key", validFrom = "valid_from", revokedAt = "revoked_at"
        }
    }

    /// The keys by key id (lowercase hex SHA-256 of the raw public key).
    public var keys: [String: Key] = [:]
    /// The parties registered, with their roles: who may register parties and others' keys.
    public var roles: [String: String] = [:]

    public init() {}

    enum CodingKeys: String, CodingKey {
        case keys, roles
    }

    /// Reads a table, as a snapshot holds it, refusing one that lists a key under another id than
    /// the hash of its bytes: that key's signatures would read as by an unknown key.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        keys = try c.decode([String: Key].self, forKey: .keys)
        roles = try c.decode([String: String].self, forKey: .roles)
        for (id, key) in keys {
            guard let raw = Base64.decodeCanonical(key.publicKey), raw.count == 32, Self.id(of: raw) == id else {
                throw DecodingError.dataCorruptedError(forKey: .keys, in: c, debugDescription: "key \(id) is not listed under the hash of its public key")
            }
        }
    }

    /// Whether key event `event`, of `record`, may change the table, as the append rules let it:
    /// its signatures are its author's valid keys and verify (always, whatever the replay's
    /// trust: key events are few, and a forged one would make every statement of its key look
    /// sound), and its author may make it (an admin registers parties and others' keys; a party
    /// its own keys). The genesis only as the first record. A log that passed `ledger verify`
    /// has no other; one that did not must not have its key table rewritten by a forgery.
    public func admits(_ record: ReplayRecord, _ event: Event) -> Bool {
        let admin = roles[event.author] == Event.Role.admin.rawValue
        switch event.body {
        case let .genesis(_, _, _, raws): return record.sequence == 0 && keys.isEmpty && raws.allSatisfy(Self.isRegistrable)
        case let .partyRegistered(party, _, _, raws):
            guard authorMaySign(event), roles[party] == nil, raws.allSatisfy({ keys[Self.id(of: $0)] == nil && Self.isRegistrable($0) }) else { return false }
        case let .keyAdded(party, raw, _):
            guard admin || event.author == party, roles[party] != nil, keys[Self.id(of: raw)] == nil, Self.isRegistrable(raw) else { return false }
        case let .keyRevoked(party, raw, _):
            // A key of that party, not yet revoked, and never the last unrevoked key of an admin party.
            let id = Self.id(of: raw)
            guard admin || event.author == party, let key = keys[id], key.party == party, key.revokedAt == nil else { return false }
            if roles[party] == Event.Role.admin.rawValue,
                !keys.contains(where: { $0.key != id && $0.value.revokedAt == nil && roles[$0.value.party] == Event.Role.admin.rawValue })
            {
                return false
            }
        default: return false
        }
        return check(record, author: event.author, event: event.id).problem == nil
    }

    /// Whether `event`'s author is registered with a role that may sign its type, as the append
    /// rules require (``LedgerCore/Event/Body/rolesAllowed``); always, for a type no role is
    /// required for. A party's role is the one it was first registered with, and never changes,
    /// so a later table answers as the one at the event's position for a statement signed by a
    /// key valid there (the key's party was registered by then).
    public func authorMaySign(_ event: Event) -> Bool {
        guard let allowed = event.body.rolesAllowed else { return true }
        return roles[event.author].flatMap(Event.Role.init(rawValue:)).map(allowed.contains) ?? false
    }

    /// Applies `event` if it ``admits(_:_:)`` it; whether it did.
    @discardableResult
    public mutating func applyIfAdmitted(_ record: ReplayRecord, _ event: Event) -> Bool {
        guard admits(record, event) else { return false }
        // The genesis registers the key that signs it: checked once it is registered.
        if case .genesis = event.body {
            var registered = self
            registered.apply(event, at: record.sequence)
            guard registered.check(record, author: event.author, event: event.id).problem == nil else { return false }
            self = registered
            return true
        }
        apply(event, at: record.sequence)
        return true
    }

    /// Records the keys that `event` registers or revokes, and the roles of the parties it
    /// registers; other events change nothing.
    public mutating func apply(_ event: Event, at sequence: UInt64) {
        switch event.body {
        case let .genesis(_, party, _, raws):
            if roles[party] == nil { roles[party] = Event.Role.admin.rawValue }
            for raw in raws { register(raw, party: party, at: sequence) }
        case let .partyRegistered(party, _, role, raws):
            if roles[party] == nil { roles[party] = role.rawValue }
            for raw in raws { register(raw, party: party, at: sequence) }
        case let .keyAdded(party, raw, _):
            register(raw, party: party, at: sequence)
        case let .keyRevoked(_, raw, _):
            let id = Self.id(of: raw)
            if keys[id]?.revokedAt == nil { keys[id]?.revokedAt = sequence }
        default:
            break
        }
    }

    /// Whether the append rules let `raw` be registered: a point of the curve, not of small
    /// order (for which signatures verify without a private key), in its one encoding. Checked
    /// whatever the replay's trust, as key events are: a log written before the rules said so, or
    /// by other means, may hold one.
    static func isRegistrable(_ raw: [UInt8]) -> Bool {
        do throws(CryptoError) {
            try PublicKey(rawRepresentation: raw).checkIsPoint()
            return true
        } catch {
            // OpenSSL out of memory: a good key taken for a bad one would be a wrong answer, kept
            // in snapshots.
            precondition(error.isAboutTheInput, "checking a key: \(error)")
            return false
        }
    }

    /// The id a key is listed under: the lowercase hex SHA-256 of its raw bytes.
    static func id(of raw: [UInt8]) -> String { SHA256.hash(raw).hexString }

    private mutating func register(_ raw: [UInt8], party: String, at sequence: UInt64) {
        let id = Self.id(of: raw)
        if keys[id] == nil { keys[id] = Key(party: party, publicKey: Base64.encode(raw), validFrom: sequence) }
    }

    /// Checks every signature of `record` against `author`'s keys at the record's position and,
    /// if `verifying`, verifies it (Ed25519 over DSSE's PAE), or takes the answer from
    /// `verified` (bit i for signature i, as ``verify(_:parsed:)`` gives it) when the caller verified
    /// ahead, on other threads.
    /// - Returns: who signed and the first problem found, if any.
    public func check(_ record: ReplayRecord, author: String, event: String, verifying: Bool = true, verified: UInt64? = nil) -> Signing {
        var signing = Signing(event: event, sequence: record.sequence, keys: [], problem: nil)
        // Built only when signatures are checked: most replays trust the append-time check.
        lazy var message = record.envelope.signedBytes
        for (index, signature) in record.envelope.signatures.enumerated() {
            let id = signature.keyID.hexString
            signing.keys.append(id)
            guard signing.problem == nil else { continue }
            guard let key = keys[id], key.party == author, key.validFrom <= record.sequence else {
                signing.problem = .keyInvalid
                continue
            }
            if let revoked = key.revokedAt, revoked < record.sequence {
                signing.problem = .keyInvalid
                continue
            }
            guard verifying else { continue }
            let valid = if let verified, index < 64 { verified & (1 << UInt64(index)) != 0 } else { isValid(signature, message) }
            if !valid { signing.problem = .badSignature }
        }
        return signing
    }

    /// ``check(_:author:event:verifying:verified:)`` with the append rules' role check: how a
    /// projection judges a statement, since a record no writer checked (past the index, or
    /// written by other means) may break either.
    public func signing(of record: ReplayRecord, _ event: Event, verifying: Bool, verified: UInt64? = nil) -> Signing {
        var signed = check(record, author: event.author, event: event.id, verifying: verifying, verified: verified)
        if signed.problem == nil, !authorMaySign(event) { signed.problem = .roleNotAllowed }
        return signed
    }

    /// Which signatures of `record` verify (bit i for signature i; the first 64), for
    /// ``check(_:author:event:verifying:verified:)``. A signature whose key was not registered at
    /// the record's position gets its bit set: `check` refuses it for that before it looks at
    /// the bit, so the answer is the same whatever key table, of that position or any later one,
    /// is asked.
    /// - Parameter parsed: the keys as ``parsedKeys(signing:)`` gives them, set up once for many
    ///   records.
    public func verify(_ record: ReplayRecord, parsed: [String: PublicKey]) -> UInt64 {
        let message = record.envelope.signedBytes
        var valid: UInt64 = 0
        for (i, signature) in record.envelope.signatures.prefix(64).enumerated() {
            let id = signature.keyID.hexString
            let registered = keys[id].map { $0.validFrom <= record.sequence } ?? false
            if !registered || parsed[id]?.isValidSignature(signature.signature, for: message) == true { valid |= 1 << UInt64(i) }
        }
        return valid
    }

    /// The keys that sign `records` and parse as Ed25519 public keys, by key id.
    public func parsedKeys(signing records: [ReplayRecord]) -> [String: PublicKey] {
        var out: [String: PublicKey] = [:]
        for record in records {
            for signature in record.envelope.signatures {
                let id = signature.keyID.hexString
                guard out[id] == nil, let parsed = publicKey(id) else { continue }
                out[id] = parsed
            }
        }
        return out
    }

    private func isValid(_ signature: Envelope.Signature, _ message: [UInt8]) -> Bool {
        publicKey(signature.keyID.hexString)?.isValidSignature(signature.signature, for: message) ?? false
    }

    /// The key registered as `id`, parsed; `nil` if none is, or it is not an Ed25519 key.
    private func publicKey(_ id: String) -> PublicKey? {
        keys[id].flatMap { Base64.decode($0.publicKey) }.flatMap { try? PublicKey(rawRepresentation: $0) }
    }

    /// The integrity codes of `signing` as of now: its problem at signing time, and
    /// `key-revoked-later:<event>` if a key that signed it was revoked after it.
    public func codes(for signing: Signing) -> [String] {
        var out: [String] = []
        if let problem = signing.problem { out.append("\(problem.rawValue):\(signing.event)") }
        if signing.keys.contains(where: { (keys[$0]?.revokedAt).map { $0 > signing.sequence } ?? false }) {
            out.append("key-revoked-later:\(signing.event)")
        }
        return out
    }
}

/// Who signed one statement, and what was wrong with it at its position.
public struct Signing: Codable, Sendable, Equatable {
    /// What can be wrong with a statement's signatures.
    public enum Problem: String, Codable, Sendable {
        /// A signature does not verify.
        case badSignature = "bad-signature"
        /// A key is not registered to the author, not yet valid, or was revoked before this position.
        case keyInvalid = "key-invalid"
        /// A change to a claim by another party than its author: it takes no effect.
        case notTheAuthor = "not-the-author"
        /// A statement of a type its author's role may not make (DESIGN.md's "who may sign": a
        /// finding by a party that is no reviewer, evidence or custody by a subject, say): it
        /// takes no effect, as a statement whose signature or key fails takes none.
        case roleNotAllowed = "role-not-allowed"
        /// A change to a claim already retracted (written past the append rules, which refuse
        /// it): it takes no effect. Said by the timeline; a fact's view leaves such a change out.
        case claimRetracted = "claim-retracted"
    }

    /// The statement's event id.
    public var event: String
    /// Its sequence number.
    public var sequence: UInt64
    /// The key ids that signed it.
    public var keys: [String]
    /// The first problem found, if any.
    public var problem: Problem?
}
