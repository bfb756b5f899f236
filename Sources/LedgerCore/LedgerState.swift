public import LedgerCrypto

/// What the ledger must know to decide whether a statement may be appended at the next position:
/// parties, keys and their validity, and every id in use. It is a fold over the log in sequence
/// order; appending and full verification use the same rules through ``admit(_:event:entryID:sequence:acceptedAt:signaturesChecked:)``.
public struct LedgerState: Sendable {
    /// Names the append rules: the vocabulary's version and types, and a revision raised whenever
    /// a rule changes. A rule state saved under other rules is not used (it may hold what these
    /// rules would have refused, or miss what they would have kept).
    public static let rules = "revision 4; v\(Event.version): " + Event.knownTypes.sorted().joined(separator: ",")

    /// A registered party.
    public struct Party: Sendable, Hashable {
        public var id: String
        public var name: String
        public var role: Event.Role
        /// The sequence number of the record that registered it.
        public var registeredAt: UInt64

        public init(id: String, name: String, role: Event.Role, registeredAt: UInt64) {
            self.id = id
            self.name = name
            self.role = role
            self.registeredAt = registeredAt
        }
    }

    /// A registered key.
    public struct Key: Sendable, Hashable {
        public var publicKey: PublicKey
        public var party: String
        /// The sequence number from which the key may sign.
        public var validFrom: UInt64
        /// The sequence number of the revocation; the key may not sign after it.
        public var revokedAt: UInt64?

        public init(publicKey: PublicKey, party: String, validFrom: UInt64, revokedAt: UInt64? = nil) {
            self.publicKey = publicKey
            self.party = party
            self.validFrom = validFrom
            self.revokedAt = revokedAt
        }
    }

    /// What the rules need to know of a claim.
    public struct Claim: Sendable, Hashable {
        public var fact: String
        public var author: String
        public var retractedAt: UInt64?

        public init(fact: String, author: String, retractedAt: UInt64? = nil) {
            self.fact = fact
            self.author = author
            self.retractedAt = retractedAt
        }
    }

    /// The ledger's origin, from the genesis record.
    public private(set) var origin: String?
    /// How many records have been admitted.
    public private(set) var count: UInt64 = 0
    public private(set) var parties: [String: Party] = [:]
    public private(set) var keys: [Digest: Key] = [:]
    public private(set) var claims: [String: Claim] = [:]
    public private(set) var facts: [String: UInt64] = [:]
    public private(set) var evidence: [String: UInt64] = [:]
    public private(set) var attestations: [String: UInt64] = [:]
    public private(set) var findings: [String: UInt64] = [:]
    /// Every event id, with the sequence number of its record.
    public private(set) var eventIDs: [String: UInt64] = [:]
    /// Every entry id, with its sequence number.
    public private(set) var entries: [Digest: UInt64] = [:]
    /// The state at an earlier size, looked up where the tables above (then only what was
    /// admitted since) do not hold an id: a reviewer's saved state, so that checking new entries
    /// does not need the whole log again; or this state's own earlier tables, moved out of memory
    /// as it grew (see ``rebase(onto:)``).
    public private(set) var base: (any LedgerStateBase)?

    public init() {
        base = nil
    }

    /// A state that continues `base`: its origin, size, parties and keys are taken over; its
    /// ids are looked up in it.
    public init(continuing base: any LedgerStateBase) {
        self.base = base
        origin = base.origin
        count = base.count
        parties = base.parties
        keys = base.keys
    }

    /// Hands this state's ids and claims over to `base`, which must hold every one of them and
    /// everything the current base holds, at this state's size: the tables in memory are emptied,
    /// and lookups go to `base` from now on. Parties and keys (few) stay in memory. Not for use
    /// between an ``admit(_:event:entryID:sequence:acceptedAt:signaturesChecked:)`` and an
    /// ``undo(_:)`` of its changes.
    public mutating func rebase(onto base: any LedgerStateBase) {
        precondition(base.count == count, "a new base must hold the state at its own size")
        self.base = base
        // Emptied but kept as large: they fill to the same size again before the next move
        // (their memory is held anyway until then), and growing them again rehashed every id.
        claims.removeAll(keepingCapacity: true)
        facts.removeAll(keepingCapacity: true)
        evidence.removeAll(keepingCapacity: true)
        attestations.removeAll(keepingCapacity: true)
        findings.removeAll(keepingCapacity: true)
        eventIDs.removeAll(keepingCapacity: true)
        entries.removeAll(keepingCapacity: true)
    }

    /// The sequence number of the record that introduced `id` as a `kind`, if any.
    public func sequence(of kind: IDKind, _ id: String) -> UInt64? {
        let table: [String: UInt64]
        switch kind {
        case .event: table = eventIDs
        case .fact: table = facts
        case .evidence: table = evidence
        case .attestation: table = attestations
        case .finding: table = findings
        }
        return table[id] ?? base?.sequence(of: kind, id)
    }

    /// The sequence number of the record with entry id `entryID`, if any.
    public func sequence(ofEntry entryID: Digest) -> UInt64? {
        entries[entryID] ?? base?.sequence(ofEntry: entryID)
    }

    /// What the rules know of claim `id`, if it exists.
    public func claim(_ id: String) -> Claim? {
        claims[id] ?? base?.claim(id)
    }

    /// How far, in seconds, an author's `signed_at` may lie after the ledger's acceptance time,
    /// to allow for clocks that are slightly off.
    public static let allowedClockSkew: Int64 = 300

    /// A change made by ``admit(_:event:entryID:sequence:acceptedAt:signaturesChecked:)``, kept so that a
    /// group commit that fails part-way can be undone without copying the whole state.
    public struct Undo: Sendable {
        fileprivate var action: Action
        fileprivate enum Action: Sendable {
            case removeEvent(String, Digest)
            case removeParty(String, [Digest])
            case removeKey(Digest)
            case unrevoke(Digest)
            case removeFact(String)
            case removeClaim(String)
            case unretract(String)
            case removeEvidence(String)
            case removeAttestation(String)
            case removeFinding(String)
            case resetOrigin
        }
    }

    /// Moves past a record that cannot be admitted (damaged, or breaking a rule), as if it were
    /// absent: verification goes on checking later records at their own positions.
    public mutating func skip() {
        count += 1
    }

    /// Reverts the changes of admitted records, newest first.
    public mutating func undo(_ changes: [Undo]) {
        for change in changes.reversed() {
            switch change.action {
            case let .removeEvent(id, entry):
                eventIDs[id] = nil
                entries[entry] = nil
                count -= 1
            case let .removeParty(id, keyIDs):
                parties[id] = nil
                for k in keyIDs { keys[k] = nil }
            case let .removeKey(k): keys[k] = nil
            case let .unrevoke(k): keys[k]?.revokedAt = nil
            case let .removeFact(id): facts[id] = nil
            case let .removeClaim(id): claims[id] = nil
            case let .unretract(id): claims[id]?.retractedAt = nil
            case let .removeEvidence(id): evidence[id] = nil
            case let .removeAttestation(id): attestations[id] = nil
            case let .removeFinding(id): findings[id] = nil
            case .resetOrigin: origin = nil
            }
        }
    }

    /// Checks a statement against every rule of "Validation at append" for the next position and,
    /// if it passes, records its effects.
    ///
    /// - Parameters:
    ///   - envelope: the signed statement.
    ///   - event: the event decoded from `envelope.payload`.
    ///   - entryID: the entry id of the record that holds it.
    ///   - sequence: its sequence number, which must equal ``count``.
    ///   - acceptedAt: the record's acceptance time; `signed_at` may not be later (beyond
    ///     ``allowedClockSkew``).
    ///   - signaturesChecked: `true` when the caller has already verified every signature
    ///     against the keys ``signingKeys(for:event:)`` returned (verification in parallel).
    /// - Returns: the changes made, for ``undo(_:)``.
    /// - Throws: a ``LedgerError`` whose code names the rule broken; the state is then unchanged.
    @discardableResult
    public mutating func admit(
        _ envelope: Envelope, event: Event, entryID: Digest, sequence: UInt64, acceptedAt: Timestamp? = nil,
        signaturesChecked: Bool = false
    ) throws(LedgerError) -> [Undo] {
        precondition(sequence == count, "records must be admitted in sequence order")
        try authenticate(envelope, event: event, acceptedAt: acceptedAt, signaturesChecked: signaturesChecked)
        try checkRules(event, sequence: sequence)
        return apply(event, entryID: entryID, sequence: sequence)
    }

    /// The checks of ``admit(_:event:entryID:sequence:acceptedAt:signaturesChecked:)`` that do not
    /// depend on what the event says, and so hold for an event of a type this version does not
    /// know too: the signing time against `acceptedAt`, each signature's key (the author's, valid
    /// at the next position) and, unless `signaturesChecked`, the signatures themselves.
    public func authenticate(_ envelope: Envelope, event: Event, acceptedAt: Timestamp?, signaturesChecked: Bool) throws(LedgerError) {
        if let acceptedAt, event.signedAt.seconds > acceptedAt.seconds + Self.allowedClockSkew {
            throw LedgerError(.invalidEvent, "Statement \"\(event.id)\" says it was signed at \(event.signedAt), after the ledger accepted it (\(acceptedAt)); a signature cannot come from the future (clocks may differ by up to \(Self.allowedClockSkew) seconds). Check the signer's clock and sign again.")
        }
        let keys = try signingKeys(for: envelope, event: event)
        if !signaturesChecked {
            let message = envelope.signedBytes
            for (i, key) in keys.enumerated() where !key.isValidSignature(envelope.signatures[i].signature, for: message) {
                throw LedgerError(.badSignature, "Signature \(i) (key \(key.keyID.shortHex())) does not verify over the statement \"\(event.id)\". The envelope was changed after signing, or signed with another key: a statement to append must be signed again (`ledger sign`); one in the log is evidence that it changed.")
            }
        }
    }

    /// Resolves the key of each signature of `envelope`, in order, checking that it belongs to
    /// the author and is valid at the next position. Does not verify the signatures.
    public func signingKeys(for envelope: Envelope, event: Event) throws(LedgerError) -> [PublicKey] {
        let id = event.id
        if count == 0 {
            guard case let .genesis(_, party, _, genesisKeys) = event.body else {
                throw LedgerError(.invalidEvent, "The first record of a ledger must be ledger.genesis; found \(event.type) \"\(id)\". Create the ledger with `ledger init`.")
            }
            guard party == event.author else {
                throw LedgerError(.invalidEvent, "The genesis record names admin party \"\(party)\" but is authored by \"\(event.author)\"; they must be the same.")
            }
            var out: [PublicKey] = []
            for (i, signature) in envelope.signatures.enumerated() {
                guard let raw = genesisKeys.first(where: { SHA256.hash($0) == signature.keyID }) else {
                    throw LedgerError(.unknownKey, "Signature \(i) of the genesis record is by key \(signature.keyID.shortHex()), which the genesis record does not list.")
                }
                do {
                    out.append(try PublicKey(rawRepresentation: raw))
                } catch {
                    throw LedgerError(.malformedEvent, "The genesis record lists a key that is not a valid Ed25519 point: \(error).")
                }
            }
            return out
        }
        var out: [PublicKey] = []
        for (i, signature) in envelope.signatures.enumerated() {
            guard let key = keys[signature.keyID] else {
                throw LedgerError(.unknownKey, "Statement \"\(id)\": signature \(i) is by key \(signature.keyID.shortHex()), which is not registered in this ledger. Register it first (party.registered or key.added), or sign with a registered key.")
            }
            guard key.party == event.author else {
                let unregistered = parties[event.author] == nil ? ", which is not a registered party," : ""
                throw LedgerError(.keyOfAnotherParty, "Statement \"\(id)\" is authored by \"\(event.author)\"\(unregistered) but signature \(i) is by key \(signature.keyID.shortHex()), registered to \"\(key.party)\". Each signature must be by a key of the author: sign it again with the author's key, or as \"\(key.party)\" (--author) if that party made the statement.")
            }
            if let revoked = key.revokedAt {
                throw LedgerError(.revokedKey, "Statement \"\(id)\": signature \(i) is by key \(signature.keyID.shortHex()) of \"\(key.party)\", revoked at entry \(revoked). Sign with a current key of the party.")
            }
            out.append(key.publicKey)
        }
        return out
    }

    private func role(of party: String) throws(LedgerError) -> Event.Role {
        guard let p = parties[party] else {
            throw LedgerError(.unknownReference, "Party \"\(party)\" is not registered in this ledger. Check the name, or have an admin register it first (party.registered).")
        }
        return p.role
    }

    private func require(_ event: Event, roles: Set<Event.Role>) throws(LedgerError) {
        let role = try role(of: event.author)
        guard roles.contains(role) else {
            let allowed = roles.map(\.rawValue).sorted().joined(separator: " or ")
            throw LedgerError(.roleNotAllowed, "\"\(event.author)\" is registered as \(role.rawValue); only \(allowed) parties may record \(event.type) (statement \"\(event.id)\"). Have a party of that role make the statement.")
        }
    }

    private func requireNew(_ id: String, _ kind: IDKind) throws(LedgerError) {
        if let at = sequence(of: kind, id) {
            throw LedgerError(.duplicateID, "The \(kind.name) id \"\(id)\" is already used by entry \(at). Choose another id.")
        }
    }

    private func requireExisting(_ id: String, _ kind: IDKind, by event: Event) throws(LedgerError) {
        guard sequence(of: kind, id) != nil else {
            throw LedgerError(.unknownReference, "Statement \"\(event.id)\" refers to \(kind.name) \"\(id)\", which is not in this ledger. Check the id, or append the statement that introduces it first.")
        }
    }

    private func existingClaim(_ id: String, by event: Event) throws(LedgerError) -> Claim {
        guard let claim = claim(id) else {
            throw LedgerError(.unknownReference, "Statement \"\(event.id)\" refers to claim \"\(id)\", which is not in this ledger. Check the id, or append the claim first.")
        }
        return claim
    }

    private func checkRules(_ event: Event, sequence: UInt64) throws(LedgerError) {
        if let at = self.sequence(of: .event, event.id) {
            throw LedgerError(.duplicateID, "The statement id \"\(event.id)\" is already used by entry \(at). If this is the same statement sent again, it is already in the ledger; otherwise choose another id.")
        }
        if sequence > 0 { _ = try role(of: event.author) }
        if let roles = event.body.rolesAllowed { try require(event, roles: roles) }
        switch event.body {
        case let .genesis(_, _, _, genesisKeys):
            guard sequence == 0 else {
                throw LedgerError(.invalidEvent, "ledger.genesis may only be the first record; this ledger already has \(sequence) records.")
            }
            for raw in genesisKeys { try requireUnregistered(raw) }
        case let .partyRegistered(party, _, _, newKeys):
            if parties[party] != nil {
                throw LedgerError(.duplicateID, "Party \"\(party)\" is already registered. Use key.added to give it another key.")
            }
            for raw in newKeys { try requireUnregistered(raw) }
        case let .keyAdded(party, raw, _):
            try requireSelfOrAdmin(event, party: party)
            try requireUnregistered(raw)
        case let .keyRevoked(party, raw, _):
            try requireSelfOrAdmin(event, party: party)
            let keyID = SHA256.hash(raw)
            guard let key = keys[keyID], key.party == party else {
                throw LedgerError(.unknownReference, "Key \(keyID.shortHex()) is not registered to \"\(party)\"; nothing to revoke.")
            }
            if let at = key.revokedAt {
                throw LedgerError(.invalidEvent, "Key \(keyID.shortHex()) of \"\(party)\" was already revoked at entry \(at).")
            }
            // No one could register a party or a key again, for good.
            if parties[party]?.role == .admin,
                !keys.contains(where: { $0.key != keyID && $0.value.revokedAt == nil && parties[$0.value.party]?.role == .admin })
            {
                throw LedgerError(.invalidEvent, "Key \(keyID.shortHex()) is the last unrevoked key of an admin party: revoked, it would leave no one able to register parties or keys, for good. Add another admin key first (key.added, or a new admin party), then revoke this one.")
            }
        case let .factOpened(fact, _, subjects, _):
            try requireNew(fact, .fact)
            for subject in subjects where parties[subject] == nil {
                throw LedgerError(.unknownReference, "Fact \"\(fact)\" names subject \"\(subject)\", which is not a registered party. Register the party first.")
            }
        case let .claimAsserted(claim, fact, _, _, _):
            try requireNewClaim(claim)
            try requireExisting(fact, .fact, by: event)
        case let .claimCountered(claim, counters, fact, _, _, _):
            try requireNewClaim(claim)
            try requireExisting(fact, .fact, by: event)
            let target = try existingClaim(counters, by: event)
            guard target.fact == fact else {
                throw LedgerError(.invalidEvent, "Claim \"\(claim)\" is about fact \"\(fact)\" but counters claim \"\(counters)\", which is about fact \"\(target.fact)\". A counterclaim must be about the same fact.")
            }
            if let at = target.retractedAt {
                throw LedgerError(.invalidEvent, "Claim \"\(counters)\" was retracted at entry \(at); there is nothing left to counter.")
            }
        case let .claimAmended(claim, _, _, _), let .claimRetracted(claim, _):
            let target = try existingClaim(claim, by: event)
            guard target.author == event.author else {
                throw LedgerError(.notTheAuthor, "Claim \"\(claim)\" was made by \"\(target.author)\"; only its author may amend or retract it, not \"\(event.author)\". Counter it with claim.countered instead.")
            }
            if let at = target.retractedAt {
                throw LedgerError(.invalidEvent, "Claim \"\(claim)\" was already retracted at entry \(at).")
            }
        case let .evidenceAttached(e):
            try requireNew(e.evidence, .evidence)
            if self.claim(e.evidence) != nil { throw Self.sharedID("The evidence id \"\(e.evidence)\" is already a claim's id") }
            for claim in e.supports + e.contradicts {
                if let at = try existingClaim(claim, by: event).retractedAt {
                    throw LedgerError(.invalidEvent, "Evidence \"\(e.evidence)\" refers to claim \"\(claim)\", retracted at entry \(at); evidence can only support or contradict active claims.")
                }
            }
        case let .custodyRecorded(item, _, _, _, _, _):
            try requireExisting(item, .evidence, by: event)
        case let .attestationMade(attestation, target, _, _):
            try requireNew(attestation, .attestation)
            switch AttestationTarget(target) {
            case let .entry(entry):
                guard target == entry.hexString else {
                    throw LedgerError(.malformedEvent, "Attestation \"\(attestation)\" targets entry id \(target) in capitals; entry ids are written in lowercase hex, so that one entry has one spelling.")
                }
                guard self.sequence(ofEntry: entry) != nil else {
                    // 64 hex digits always name an entry: a claim or evidence id of that form is
                    // attested through the entry id of a statement about it.
                    if isClaimOrEvidence(target) {
                        throw LedgerError(.unknownReference, "Attestation \"\(attestation)\" targets \(target), which is the id of a claim or evidence item, but a target of 64 hex digits names an entry, and no entry has that id. Target the entry id of the statement that introduced it instead (`ledger log` lists entry ids).")
                    }
                    throw LedgerError(.unknownReference, "Attestation \"\(attestation)\" targets entry \(entry.shortHex()), which is not in this ledger.")
                }
            case let .id(id):
                guard isClaimOrEvidence(id) else {
                    throw LedgerError(.unknownReference, "Attestation \"\(attestation)\" targets \"\(id)\", which is neither an entry id nor a claim or evidence id in this ledger.")
                }
            }
        case let .findingRecorded(finding, fact, _, _, reliesOn):
            try requireNew(finding, .finding)
            try requireExisting(fact, .fact, by: event)
            for item in reliesOn { try requireExisting(item, .evidence, by: event) }
        case .unknown:
            throw LedgerError(.unknownEventType, "The event type \"\(event.type)\" is not in the v1 vocabulary.")
        }
    }

    /// Whether `id` is a claim's or an evidence item's, the ids an attestation names by id alone.
    private func isClaimOrEvidence(_ id: String) -> Bool { claim(id) != nil || sequence(of: .evidence, id) != nil }

    /// Claim and evidence ids share one space: an attestation targets either by its id alone.
    private func requireNewClaim(_ claim: String) throws(LedgerError) {
        if let existing = self.claim(claim) {
            throw LedgerError(.duplicateID, "The claim id \"\(claim)\" is already used, by a claim of \"\(existing.author)\" on fact \"\(existing.fact)\". Choose another id, or amend the existing claim (claim.amended).")
        }
        if let at = sequence(of: .evidence, claim) {
            throw Self.sharedID("The claim id \"\(claim)\" is already the id of evidence attached at entry \(at)")
        }
    }

    /// A claim and an evidence item given one id: `what` is which and where.
    private static func sharedID(_ what: String) -> LedgerError {
        LedgerError(.duplicateID, "\(what), so an attestation naming it could not tell them apart; a statement giving it is refused (choose another id). Versions of ledger before append rules revision 2 accepted such an id.")
    }

    private func requireSelfOrAdmin(_ event: Event, party: String) throws(LedgerError) {
        guard parties[party] != nil else {
            throw LedgerError(.unknownReference, "Party \"\(party)\" is not registered in this ledger. Check the name, or register the party (party.registered) instead of changing its keys.")
        }
        let authorRole = try role(of: event.author)
        guard event.author == party || authorRole == .admin else {
            throw LedgerError(.roleNotAllowed, "Only \"\(party)\" itself or an admin may change its keys, not \"\(event.author)\". Have one of them sign the statement.")
        }
    }

    private func requireUnregistered(_ raw: [UInt8]) throws(LedgerError) {
        let keyID = SHA256.hash(raw)
        if let key = keys[keyID] {
            throw LedgerError(.duplicateID, "Key \(keyID.shortHex()) is already registered to \"\(key.party)\". Generate a new key with `ledger key generate`.")
        }
        do throws(CryptoError) {
            try PublicKey(rawRepresentation: raw).checkIsPoint()
        } catch where error.isAboutTheInput {
            throw LedgerError(.malformedEvent, "Key \(keyID.shortHex()) is not a valid Ed25519 public key: \(error). Register a key made with `ledger key generate`.")
        } catch {
            // Not the key's fault (OpenSSL out of memory): no verdict on it.
            throw LedgerError(.io, "Key \(keyID.shortHex()) could not be checked: \(error). Run the command again.")
        }
    }

    private mutating func registerKeys(_ raws: [[UInt8]], party: String, at sequence: UInt64) -> [Digest] {
        var ids: [Digest] = []
        for raw in raws {
            // Keys were checked to parse in checkRules (or, for genesis, in signingKeys).
            guard let key = try? PublicKey(rawRepresentation: raw) else { continue }
            keys[key.keyID] = Key(publicKey: key, party: party, validFrom: sequence)
            ids.append(key.keyID)
        }
        return ids
    }

    private mutating func apply(_ event: Event, entryID: Digest, sequence: UInt64) -> [Undo] {
        var undo: [Undo] = [Undo(action: .removeEvent(event.id, entryID))]
        eventIDs[event.id] = sequence
        entries[entryID] = sequence
        count += 1
        switch event.body {
        case let .genesis(origin, party, name, raws):
            self.origin = origin
            parties[party] = Party(id: party, name: name, role: .admin, registeredAt: sequence)
            undo.append(Undo(action: .resetOrigin))
            undo.append(Undo(action: .removeParty(party, registerKeys(raws, party: party, at: sequence))))
        case let .partyRegistered(party, name, role, raws):
            parties[party] = Party(id: party, name: name, role: role, registeredAt: sequence)
            undo.append(Undo(action: .removeParty(party, registerKeys(raws, party: party, at: sequence))))
        case let .keyAdded(party, raw, _):
            for id in registerKeys([raw], party: party, at: sequence) { undo.append(Undo(action: .removeKey(id))) }
        case let .keyRevoked(_, raw, _):
            let id = SHA256.hash(raw)
            keys[id]?.revokedAt = sequence
            undo.append(Undo(action: .unrevoke(id)))
        case let .factOpened(fact, _, _, _):
            facts[fact] = sequence
            undo.append(Undo(action: .removeFact(fact)))
        case let .claimAsserted(claim, fact, _, _, _), let .claimCountered(claim, _, fact, _, _, _):
            claims[claim] = Claim(fact: fact, author: event.author)
            undo.append(Undo(action: .removeClaim(claim)))
        case .claimAmended:
            break
        case let .claimRetracted(claim, _):
            // A claim of the base is copied here to record its retraction.
            claims[claim] = self.claim(claim)
            claims[claim]?.retractedAt = sequence
            undo.append(Undo(action: .unretract(claim)))
        case let .evidenceAttached(e):
            evidence[e.evidence] = sequence
            undo.append(Undo(action: .removeEvidence(e.evidence)))
        case .custodyRecorded:
            break
        case let .attestationMade(attestation, _, _, _):
            attestations[attestation] = sequence
            undo.append(Undo(action: .removeAttestation(attestation)))
        case let .findingRecorded(finding, _, _, _, _):
            findings[finding] = sequence
            undo.append(Undo(action: .removeFinding(finding)))
        case .unknown:
            break
        }
        return undo
    }
}

/// The kinds of ids the append rules keep, each its own namespace (claims are kept with more).
public enum IDKind: UInt8, Sendable, CaseIterable {
    case event = 0x65, fact = 0x66, evidence = 0x76, attestation = 0x61, finding = 0x6e

    /// For messages: "fact", "evidence", ….
    public var name: String {
        switch self {
        case .event: "statement"
        case .fact: "fact"
        case .evidence: "evidence"
        case .attestation: "attestation"
        case .finding: "finding"
        }
    }
}

/// The rule state at an earlier size, kept outside memory, which a ``LedgerState`` continues:
/// only looked up, never changed.
public protocol LedgerStateBase: Sendable {
    var origin: String? { get }
    /// How many records it covers.
    var count: UInt64 { get }
    var parties: [String: LedgerState.Party] { get }
    var keys: [Digest: LedgerState.Key] { get }
    /// The sequence number of the record that introduced `id` as a `kind`, if any.
    func sequence(of kind: IDKind, _ id: String) -> UInt64?
    /// The sequence number of the record with entry id `entryID`, if any.
    func sequence(ofEntry entryID: Digest) -> UInt64?
    /// What the rules know of claim `id`, if it exists.
    func claim(_ id: String) -> LedgerState.Claim?
    /// The first lookup that could not be answered because a read failed (it then answered "not
    /// found"), if any: whoever relied on lookups must check it before trusting them.
    var readFailure: LedgerError? { get }
}
