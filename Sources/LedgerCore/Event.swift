public import LedgerCrypto

/// A statement of the v1 vocabulary: the common fields and one type's own fields.
///
/// Events are decoded from the exact signed payload bytes by ``init(payload:)``; the ledger
/// never re-encodes a payload. ``Body/unknown`` keeps a record whose type this version does
/// not know readable (projections skip it by name); appending one is refused.
public struct Event: Sendable, Hashable {
    /// The vocabulary version this module writes and accepts.
    public static let version: Int64 = 1

    /// The event's type name, e.g. `claim.asserted`.
    public var type: String
    /// The author-chosen id, unique in the ledger.
    public var id: String
    /// The party id of the author.
    public var author: String
    /// When the author signed: the author's word, never the ledger's.
    public var signedAt: Timestamp
    /// The type's own fields.
    public var body: Body

    public init(type: String, id: String, author: String, signedAt: Timestamp, body: Body) {
        self.type = type
        self.id = id
        self.author = author
        self.signedAt = signedAt
        self.body = body
    }

    /// A party's role, which decides which event types it may sign.
    public enum Role: String, Sendable, Hashable, CaseIterable {
        case admin, investigator, reviewer, subject
    }

    /// A claim's position on a fact's proposition.
    public enum Stance: String, Sendable, Hashable, CaseIterable {
        case affirms, denies, qualifies
    }

    /// A reviewer's conclusion on a fact.
    public enum Outcome: String, Sendable, Hashable, CaseIterable {
        case substantiated, unsubstantiated, inconclusive
    }

    /// Where a claim or piece of evidence comes from. Each part is optional.
    public struct Source: Sendable, Hashable {
        public var uri: String?
        /// When the source first published it: the source's word.
        public var publishedAt: Timestamp?
        public var quote: String?

        public init(uri: String? = nil, publishedAt: Timestamp? = nil, quote: String? = nil) {
            self.uri = uri
            self.publishedAt = publishedAt
            self.quote = quote
        }
    }

    /// The fields of each event type of the v1 vocabulary (DESIGN.md, "Event vocabulary").
    public enum Body: Sendable, Hashable {
        /// Sequence 0: the ledger's origin and its first admin party with its keys.
        case genesis(origin: String, party: String, name: String, keys: [[UInt8]])
        case partyRegistered(party: String, name: String, role: Role, keys: [[UInt8]])
        case keyAdded(party: String, key: [UInt8], reason: String?)
        case keyRevoked(party: String, key: [UInt8], reason: String?)
        case factOpened(fact: String, proposition: String, subjects: [String], tags: [String])
        case claimAsserted(claim: String, fact: String, stance: Stance, statement: String, source: Source?)
        case claimCountered(claim: String, counters: String, fact: String, stance: Stance, statement: String, source: Source?)
        case claimAmended(claim: String, statement: String?, stance: Stance?, reason: String?)
        case claimRetracted(claim: String, reason: String)
        case evidenceAttached(Evidence)
        case custodyRecorded(evidence: String, action: String, from: String?, to: String?, at: Timestamp?, note: String?)
        case attestationMade(attestation: String, target: String, kind: String, note: String?)
        case findingRecorded(finding: String, fact: String, outcome: Outcome, rationale: String, reliesOn: [String])
        /// A type this version does not know.
        case unknown
    }

    /// The fields of `evidence.attached`.
    public struct Evidence: Sendable, Hashable {
        public var evidence: String
        /// SHA-256 of the blob's bytes.
        public var sha256: Digest
        public var size: Int64
        public var mediaType: String
        public var title: String
        public var source: Source?
        /// When the material was captured: the capturer's word.
        public var capturedAt: Timestamp?
        public var custodian: String?
        public var supports: [String]
        public var contradicts: [String]

        public init(
            evidence: String, sha256: Digest, size: Int64, mediaType: String, title: String, source: Source? = nil,
            capturedAt: Timestamp? = nil, custodian: String? = nil, supports: [String] = [], contradicts: [String] = []
        ) {
            self.evidence = evidence
            self.sha256 = sha256
            self.size = size
            self.mediaType = mediaType
            self.title = title
            self.source = source
            self.capturedAt = capturedAt
            self.custodian = custodian
            self.supports = supports
            self.contradicts = contradicts
        }
    }

    /// The type names of the v1 vocabulary.
    public static let knownTypes: Set<String> = [
        "ledger.genesis", "party.registered", "key.added", "key.revoked", "fact.opened", "claim.asserted",
        "claim.countered", "claim.amended", "claim.retracted", "evidence.attached", "custody.recorded",
        "attestation.made", "finding.recorded",
    ]

    /// Whether this version knows the event's type.
    public var isKnownType: Bool { Self.knownTypes.contains(type) }
}

extension Event.Body {
    /// The roles whose parties may sign an event of this type (DESIGN.md, "who may sign"), or
    /// `nil` where the rule is not a role: any registered party asserts, counters and attests; a
    /// claim's author amends and retracts it; a party or an admin changes the party's keys; the
    /// genesis is the first record.
    ///
    /// The one table of these roles: the append rules (``LedgerState``) and the projections,
    /// which apply them again to records no append rule checked, both read it.
    public var rolesAllowed: Set<Event.Role>? {
        switch self {
        case .partyRegistered: [.admin]
        case .factOpened: [.investigator, .reviewer, .admin]
        case .evidenceAttached, .custodyRecorded: [.investigator, .reviewer]
        case .findingRecorded: [.reviewer]
        case .genesis, .keyAdded, .keyRevoked, .claimAsserted, .claimCountered, .claimAmended, .claimRetracted, .attestationMade, .unknown: nil
        }
    }
}

extension Event {
    /// The longest free-text field accepted, in bytes.
    public static let maximumTextLength = 16 * 1024
    /// The most elements a list field may have.
    public static let maximumListLength = 256

    /// Whether `id` is an acceptable id: 1–128 characters from `A–Z a–z 0–9 . _ : -`, starting
    /// with a letter or digit. Ids never contain `/`, so they can never name a path.
    public static func isValidID(_ id: String) -> Bool {
        var id = id
        // In place: copying each id into an array cost more than checking it.
        return id.withUTF8(isValidID(utf8:))
    }

    /// As ``isValidID(_:)``, for the id's UTF-8 bytes.
    public static func isValidID(utf8: UnsafeBufferPointer<UInt8>) -> Bool {
        guard (1...128).contains(utf8.count) else { return false }
        for (i, c) in utf8.enumerated() {
            let alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
            if i == 0 { guard alnum else { return false } }
            guard alnum || c == UInt8(ascii: ".") || c == UInt8(ascii: "_") || c == UInt8(ascii: ":") || c == UInt8(ascii: "-") else {
                return false
            }
        }
        return true
    }

    /// Decodes and checks an event from the exact payload bytes of an envelope.
    ///
    /// - Parameter allowUnknownType: accept a type this version does not know as
    ///   ``Body/unknown`` (for reading records written by a newer version); appends never do.
    /// - Throws: ``LedgerError/Code/malformedEvent`` naming the field at fault, or
    ///   ``LedgerError/Code/unknownEventType``.
    public init(payload: [UInt8], allowUnknownType: Bool = false) throws(LedgerError) {
        try self.init(json: payload, allowUnknownType: allowUnknownType) { "The event payload is not valid JSON: \($0)." }
    }

    /// Decodes and checks an event from a parsed JSON object (see ``init(payload:allowUnknownType:)``):
    /// the object is written as JSON and read as a payload would be, so it is refused for what a
    /// payload is refused for, including values signed JSON cannot carry (an integer past
    /// ±(2^53 − 1), nesting deeper than ``JSONParser/maximumDepth``).
    public init(object: [String: JSONValue], allowUnknownType: Bool = false) throws(LedgerError) {
        var json = JSONWriter()
        json.value(.object(object))
        // Without the byte offset: it would point into a text the caller never wrote.
        try self.init(json: json.bytes, allowUnknownType: allowUnknownType) { "The event holds a value that signed JSON cannot carry: \($0.reason)." }
    }

    /// Reads an event from JSON text; `invalid` says why text that is not acceptable JSON is refused.
    private init(json: [UInt8], allowUnknownType: Bool, invalid: (JSONError) -> String) throws(LedgerError) {
        self = try JSONParser.withDocument(json) { (parsed) throws(LedgerError) -> Event in
            let document: JSONDocument
            switch parsed {
            case let .success(checked): document = checked
            case let .failure(error): throw LedgerError(.malformedEvent, invalid(error))
            }
            guard document.tokens[0].kind == .object else {
                throw LedgerError(.malformedEvent, "The event payload is \(document.tokens[0].kind.name), not a JSON object.")
            }
            var fields = FieldReader(document, object: 0, context: "the event")
            return try Event(fields: &fields, allowUnknownType: allowUnknownType)
        }
    }

    private init(fields f: inout FieldReader, allowUnknownType: Bool) throws(LedgerError) {
        let version = try f.integer("v")
        guard version == Self.version else {
            throw LedgerError(.malformedEvent, "The event has v \(version); this version of the ledger reads v \(Self.version) only.")
        }
        let type = try f.string("type")
        f.context = type
        let id = try f.id("id")
        let author = try f.id("author")
        let signedAt = try f.time("signed_at")
        let body: Body
        switch type {
        case "ledger.genesis":
            body = .genesis(origin: try f.text("origin", maximum: 256), party: try f.id("party"), name: try f.text("name"), keys: try f.keys("keys"))
        case "party.registered":
            body = .partyRegistered(party: try f.id("party"), name: try f.text("name"), role: try f.choice("role"), keys: try f.keys("keys"))
        case "key.added":
            body = .keyAdded(party: try f.id("party"), key: try f.key("key"), reason: try f.optionalText("reason"))
        case "key.revoked":
            body = .keyRevoked(party: try f.id("party"), key: try f.key("key"), reason: try f.optionalText("reason"))
        case "fact.opened":
            body = .factOpened(fact: try f.id("fact"), proposition: try f.text("proposition"), subjects: try f.ids("subjects", optional: true), tags: try f.texts("tags"))
        case "claim.asserted":
            body = .claimAsserted(claim: try f.id("claim"), fact: try f.id("fact"), stance: try f.choice("stance"), statement: try f.text("statement"), source: try f.source("source"))
        case "claim.countered":
            body = .claimCountered(
                claim: try f.id("claim"), counters: try f.id("counters"), fact: try f.id("fact"), stance: try f.choice("stance"),
                statement: try f.text("statement"), source: try f.source("source"))
        case "claim.amended":
            let claim = try f.id("claim")
            let statement = try f.optionalText("statement")
            let stance: Stance? = try f.optionalChoice("stance")
            guard statement != nil || stance != nil else {
                throw LedgerError(.malformedEvent, "claim.amended needs a new \"statement\", a new \"stance\", or both.")
            }
            body = .claimAmended(claim: claim, statement: statement, stance: stance, reason: try f.optionalText("reason"))
        case "claim.retracted":
            body = .claimRetracted(claim: try f.id("claim"), reason: try f.text("reason"))
        case "evidence.attached":
            body = .evidenceAttached(
                Evidence(
                    evidence: try f.id("evidence"), sha256: try f.digest("sha256"), size: try f.integer("size", minimum: 0),
                    mediaType: try f.text("media_type", maximum: 255), title: try f.text("title"), source: try f.source("source"),
                    capturedAt: try f.optionalTime("captured_at"), custodian: try f.optionalText("custodian", maximum: 256),
                    supports: try f.ids("supports", optional: true), contradicts: try f.ids("contradicts", optional: true)))
        case "custody.recorded":
            body = .custodyRecorded(
                evidence: try f.id("evidence"), action: try f.text("action", maximum: 64), from: try f.optionalText("from"),
                to: try f.optionalText("to"), at: try f.optionalTime("at"), note: try f.optionalText("note"))
        case "attestation.made":
            body = .attestationMade(
                attestation: try f.id("attestation"), target: try f.target("target"), kind: try f.text("kind", maximum: 64),
                note: try f.optionalText("note"))
        case "finding.recorded":
            body = .findingRecorded(
                finding: try f.id("finding"), fact: try f.id("fact"), outcome: try f.choice("outcome"), rationale: try f.text("rationale"),
                reliesOn: try f.ids("relies_on", optional: true))
        default:
            guard allowUnknownType else {
                throw LedgerError(.unknownEventType, "The event type \"\(type)\" is not in the v1 vocabulary (\(Self.knownTypes.sorted().joined(separator: ", "))).")
            }
            self.init(type: type, id: id, author: author, signedAt: signedAt, body: .unknown)
            return
        }
        try f.rejectUnusedFields()
        self.init(type: type, id: id, author: author, signedAt: signedAt, body: body)
    }
}

/// What an `attestation.made` target names: 64 hex digits name an entry by its entry id;
/// anything else names a claim or an evidence item by its id. The one reading of a target, for
/// the append rules and for every projection (the append rules also refuse capitals, so that an
/// entry has one spelling; a projection reads either case).
public enum AttestationTarget: Sendable, Hashable {
    case entry(Digest)
    case id(String)

    public init(_ target: String) {
        if target.utf8.count == 64, let entryID = Digest(hexString: target) {
            self = .entry(entryID)
        } else {
            self = .id(target)
        }
    }
}

/// Reads typed fields from an event object in place, naming the event type and field in every
/// error, and remembers which members were read so that unknown members can be refused.
struct FieldReader {
    private let document: JSONDocument
    private let object: Int
    var context: String
    /// Which members were read: bit i for member i, and past the 64th (only in objects that will
    /// be refused for their unknown members) a list. Events have a dozen members, so names are
    /// found by comparison, without hashing.
    private var read: UInt64 = 0
    private var readBeyond: [Int] = []

    /// Reads the object at token `object` of `document`.
    init(_ document: JSONDocument, object: Int, context: String) {
        self.document = document
        self.object = object
        self.context = context
    }

    private func fail(_ field: StaticString, _ problem: String) -> LedgerError {
        LedgerError(.malformedEvent, "Field \"\(field)\" of \(context) \(problem).")
    }

    private func wasRead(_ i: Int) -> Bool { i < 64 ? read & (1 << UInt64(i)) != 0 : readBeyond.contains(i) }

    private func kind(_ token: Int) -> JSONToken.Kind { document.tokens[token].kind }

    /// The token of the member's value, or `nil` if the member is missing or null.
    private mutating func raw(_ field: StaticString) -> Int? {
        // Lengths first, straight from the tokens: they settle nearly every mismatch.
        let length = field.utf8CodeUnitCount
        let found = document.tokens.withUnsafeBufferPointer { tokens -> (index: Int, member: Int)? in
            var member = object + 1
            for i in 0..<Int(tokens[object].number) {
                let name = tokens[member]
                if name.escaped || name.end - name.start == length, document.textEquals(member, field) { return (i, member) }
                member = tokens[member + 1].next
            }
            return nil
        }
        guard let (i, member) = found else { return nil }
        if i < 64 {
            read |= 1 << UInt64(i)
        } else if !readBeyond.contains(i) {
            readBeyond.append(i)
        }
        return kind(member + 1) == .null ? nil : member + 1
    }

    /// The member's value, which must be a string; `nil` if missing or null.
    private mutating func optionalString(_ field: StaticString, _ expected: String = "a string") throws(LedgerError) -> Int? {
        guard let value = raw(field) else { return nil }
        guard kind(value) == .string else { throw fail(field, "must be \(expected), not \(kind(value).name)") }
        return value
    }

    mutating func integer(_ field: StaticString, minimum: Int64 = Int64.min) throws(LedgerError) -> Int64 {
        guard let value = raw(field) else { throw fail(field, "is missing") }
        guard kind(value) == .integer else { throw fail(field, "must be an integer, not \(kind(value).name)") }
        let i = document.tokens[value].number
        guard i >= minimum else { throw fail(field, "must be at least \(minimum); found \(i)") }
        return i
    }

    mutating func string(_ field: StaticString) throws(LedgerError) -> String {
        guard let value = try optionalString(field) else { throw fail(field, "is missing") }
        return document.string(value)
    }

    mutating func text(_ field: StaticString, maximum: Int = Event.maximumTextLength) throws(LedgerError) -> String {
        guard let s = try optionalText(field, maximum: maximum) else { throw fail(field, "is missing") }
        return s
    }

    mutating func optionalText(_ field: StaticString, maximum: Int = Event.maximumTextLength) throws(LedgerError) -> String? {
        guard let value = try optionalString(field) else { return nil }
        // Decoded once, then measured: measuring a text with escapes decoded it too.
        let text = document.string(value)
        let length = text.utf8.count
        guard length > 0 else { throw fail(field, "is empty") }
        guard length <= maximum else { throw fail(field, "is \(length) bytes; the limit is \(maximum)") }
        return text
    }

    mutating func id(_ field: StaticString) throws(LedgerError) -> String {
        guard let s = try optionalID(field) else { throw fail(field, "is missing") }
        return s
    }

    mutating func optionalID(_ field: StaticString) throws(LedgerError) -> String? {
        guard let value = try optionalString(field, "a string id") else { return nil }
        guard document.withText(value, Event.isValidID(utf8:)) else {
            throw fail(field, "is not a valid id: use 1–128 characters from A–Z a–z 0–9 . _ : - starting with a letter or digit (found \"\(document.string(value).prefix(40))\")")
        }
        return document.string(value)
    }

    /// An attestation target: an entry id (64 hex digits) or a claim or evidence id.
    mutating func target(_ field: StaticString) throws(LedgerError) -> String {
        try id(field)
    }

    /// The elements of an array member of at most ``Event/maximumListLength`` elements; `nil` if
    /// missing or null.
    private mutating func optionalList(_ field: StaticString, of what: String) throws(LedgerError) -> [Int]? {
        guard let value = raw(field) else { return nil }
        guard kind(value) == .array else { throw fail(field, "must be an array of \(what), not \(kind(value).name)") }
        let count = document.tokens[value].number
        guard count <= Event.maximumListLength else { throw fail(field, "has \(count) elements; the limit is \(Event.maximumListLength)") }
        return document.elements(of: value)
    }

    mutating func ids(_ field: StaticString, optional: Bool) throws(LedgerError) -> [String] {
        guard let list = try optionalList(field, of: "ids") else {
            if optional { return [] }
            throw fail(field, "is missing")
        }
        var out: [String] = []
        for (i, element) in list.enumerated() {
            guard kind(element) == .string, document.withText(element, Event.isValidID(utf8:)) else { throw fail(field, "element \(i) is not a valid id") }
            let s = document.string(element)
            guard !out.contains(s) else { throw fail(field, "lists \"\(s)\" twice") }
            out.append(s)
        }
        return out
    }

    mutating func texts(_ field: StaticString) throws(LedgerError) -> [String] {
        guard let list = try optionalList(field, of: "strings") else { return [] }
        var out: [String] = []
        for (i, element) in list.enumerated() {
            let text = kind(element) == .string ? document.string(element) : nil
            guard let text, (1...256).contains(text.utf8.count) else {
                throw fail(field, "element \(i) must be a non-empty string of at most 256 bytes")
            }
            out.append(text)
        }
        return out
    }

    mutating func time(_ field: StaticString) throws(LedgerError) -> Timestamp {
        guard let t = try optionalTime(field) else { throw fail(field, "is missing") }
        return t
    }

    mutating func optionalTime(_ field: StaticString) throws(LedgerError) -> Timestamp? {
        guard let value = raw(field) else { return nil }
        guard kind(value) == .string, let t = document.withText(value, { Timestamp(rfc3339Bytes: $0) }) else {
            throw fail(field, "must be an RFC 3339 time in UTC such as 2020-09-21T08:00:00Z")
        }
        return t
    }

    mutating func choice<T: RawRepresentable & CaseIterable>(_ field: StaticString) throws(LedgerError) -> T where T.RawValue == String {
        guard let v: T = try optionalChoice(field) else { throw fail(field, "is missing") }
        return v
    }

    mutating func optionalChoice<T: RawRepresentable & CaseIterable>(_ field: StaticString) throws(LedgerError) -> T? where T.RawValue == String {
        guard let value = raw(field) else { return nil }
        guard kind(value) == .string, let v = T(rawValue: document.string(value)) else {
            let allowed = T.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail(field, "must be one of \(allowed)")
        }
        return v
    }

    mutating func digest(_ field: StaticString) throws(LedgerError) -> Digest {
        guard let value = try optionalString(field) else { throw fail(field, "is missing") }
        guard let d = document.withText(value, { Digest(lowercaseHexBytes: $0) }) else {
            throw fail(field, "must be 64 lowercase hex digits")
        }
        return d
    }

    /// A 32-byte Ed25519 public key from the base64 text at token `value`, if it is one.
    private func publicKey(_ value: Int) -> [UInt8]? {
        guard kind(value) == .string, let raw = document.withText(value, { Base64.decode(utf8: $0) }), raw.count == 32 else { return nil }
        return raw
    }

    mutating func key(_ field: StaticString) throws(LedgerError) -> [UInt8] {
        guard let value = try optionalString(field) else { throw fail(field, "is missing") }
        guard let raw = publicKey(value) else {
            throw fail(field, "must be the base64 of a 32-byte Ed25519 public key")
        }
        return raw
    }

    mutating func keys(_ field: StaticString) throws(LedgerError) -> [[UInt8]] {
        guard let value = raw(field), kind(value) == .array, (1...16).contains(document.tokens[value].number) else {
            throw fail(field, "must be an array of 1 to 16 base64 Ed25519 public keys")
        }
        var out: [[UInt8]] = []
        for (i, element) in document.elements(of: value).enumerated() {
            guard let raw = publicKey(element) else {
                throw fail(field, "element \(i) is not the base64 of a 32-byte Ed25519 public key")
            }
            guard !out.contains(raw) else { throw fail(field, "lists the same key twice") }
            out.append(raw)
        }
        return out
    }

    mutating func source(_ field: StaticString) throws(LedgerError) -> Event.Source? {
        guard let value = raw(field) else { return nil }
        guard kind(value) == .object else { throw fail(field, "must be an object with uri, published_at and quote") }
        var inner = FieldReader(document, object: value, context: "\(context) \(field)")
        let source = Event.Source(
            uri: try inner.optionalText("uri", maximum: 2048), publishedAt: try inner.optionalTime("published_at"),
            quote: try inner.optionalText("quote"))
        try inner.rejectUnusedFields()
        return source
    }

    func rejectUnusedFields() throws(LedgerError) {
        let count = Int(document.tokens[object].number)
        if count < 64, read == (1 << UInt64(count)) - 1 { return }
        let members = document.members(of: object)
        let unread = members.indices.filter { !wasRead($0) }.map { document.string(members[$0].name) }
        if let extra = unread.sorted().first {
            throw LedgerError(.malformedEvent, "Field \"\(extra)\" is not part of \(context) in the v1 vocabulary. Remove it, or check its spelling.")
        }
    }
}
