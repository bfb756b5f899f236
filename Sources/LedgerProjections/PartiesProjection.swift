public import LedgerCore
import LedgerCrypto

/// The parties-and-keys projection: who holds which key, with what role, valid from which
/// sequence number until which.
public struct PartiesProjection: Projection {
    public init() {}

    public var name: String { "parties-and-keys" }
    public var version: Int { 3 }
    public var summary: String { "every party with its role and keys, valid from which entry until which" }
    public var initialState: State { State() }

    public struct State: Codable, Sendable, Equatable {
        /// Parties by id.
        public var parties: [String: Party] = [:]
        /// Party ids in the order registered.
        public var order: [String] = []
        /// The keys and roles as the key events admitted so far left them: which key events are
        /// admitted (``KeyTable/admits(_:_:)``), so that a forged one lists no key.
        public var keys = KeyTable()

        public init() {}
    }

    /// A registered party.
    public struct Party: Codable, Sendable, Equatable {
        public var party: String
        public var name: String
        /// `admin`, `investigator`, `reviewer` or `subject`.
        public var role: String
        public var registeredAt: UInt64
        /// Who registered it (the genesis admin registers itself).
        public var registeredBy: String
        /// Its keys, in the order added.
        public var keys: [Key] = []

        enum CodingKeys: String, CodingKey {
            case party, name, role, registeredAt = "registered_at", registeredBy = "registered_by", keys
        }

        /// `{"party", "name", "role", "registered_at", "registered_by", "keys": [key…]}`.
        public var json: JSONValue {
            .object([
                "party": .string(party), "name": .string(name), "role": .string(role), "registered_at": .number(registeredAt),
                "registered_by": .string(registeredBy), "keys": .array(keys.map(\.json)),
            ])
        }
    }

    /// One key of a party.
    public struct Key: Codable, Sendable, Equatable {
        /// Lowercase hex SHA-256 of the raw public key (the DSSE keyid).
        public var keyID: String
        /// The raw public key, base64.
        public var publicKey: String
        /// The entry that registered it; it may sign from there on.
        public var validFrom: UInt64
        public var addedBy: String
        public var addedReason: String?
        /// The entry that revoked it; it may not sign after that.
        public var revokedAt: UInt64?
        public var revokedBy: String?
        public var revokedReason: String?

        enum CodingKeys: String, CodingKey {
            case keyID = "key_id", publicKey = "public_key", validFrom = "valid_from", addedBy = "added_by"
            case addedReason = "added_reason", revokedAt = "revoked_at", revokedBy = "revoked_by", revokedReason = "revoked_reason"
        }

        /// `{"key_id", "public_key", "valid_from", "added_by", "added_reason", "revoked_at",
        /// "revoked_by", "revoked_reason"}`; the last four may be null.
        public var json: JSONValue {
            .object([
                "key_id": .string(keyID), "public_key": .string(publicKey), "valid_from": .number(validFrom),
                "added_by": .string(addedBy), "added_reason": .optional(addedReason), "revoked_at": .optional(revokedAt),
                "revoked_by": .optional(revokedBy), "revoked_reason": .optional(revokedReason),
            ])
        }
    }

    public func apply(record: ReplayRecord, event: Event, to state: inout State) {
        let sequence = record.sequence
        guard state.keys.applyIfAdmitted(record, event) else { return }
        func key(_ raw: [UInt8], reason: String?) -> Key {
            Key(keyID: SHA256.hash(raw).hexString, publicKey: Base64.encode(raw), validFrom: sequence, addedBy: event.author, addedReason: reason)
        }
        switch event.body {
        case let .genesis(_, party, name, raws):
            register(Party(party: party, name: name, role: Event.Role.admin.rawValue, registeredAt: sequence, registeredBy: event.author,
                           keys: raws.map { key($0, reason: "genesis") }), in: &state)
        case let .partyRegistered(party, name, role, raws):
            register(Party(party: party, name: name, role: role.rawValue, registeredAt: sequence, registeredBy: event.author,
                           keys: raws.map { key($0, reason: nil) }), in: &state)
        case let .keyAdded(party, raw, reason):
            state.parties[party]?.keys.append(key(raw, reason: reason))
        case let .keyRevoked(party, raw, reason):
            let id = SHA256.hash(raw).hexString
            guard let i = state.parties[party]?.keys.firstIndex(where: { $0.keyID == id && $0.revokedAt == nil }) else { return }
            state.parties[party]?.keys[i].revokedAt = sequence
            state.parties[party]?.keys[i].revokedBy = event.author
            state.parties[party]?.keys[i].revokedReason = reason
        default:
            break
        }
    }

    private func register(_ party: Party, in state: inout State) {
        guard state.parties[party.party] == nil else { return }
        state.parties[party.party] = party
        state.order.append(party.party)
    }

    /// The parties in the order registered.
    public func parties(in state: State) -> [Party] {
        state.order.compactMap { state.parties[$0] }
    }

    public var reportKey: String { "parties" }

    /// Each party in the shape of ``Party/json``, in the order registered.
    public func forEachReportElement(_ state: State, context: ReportContext, _ body: (JSONValue) -> Void) {
        for party in parties(in: state) { body(party.json) }
    }
}
