#if canImport(Glibc)
import Glibc
#endif
public import LedgerCrypto

/// One entry of the log: an accepted envelope wrapped with its position, the entry id of the
/// record before it, and when the ledger accepted it.
///
/// The record's stored bytes are canonical JSON (``encoded()``) and are the Merkle leaf:
/// the entry id is the RFC 6962 leaf hash SHA-256(0x00 ‖ bytes), which is also the next
/// record's `prev`, so one hash is both the chain link and the leaf.
public struct Record: Sendable, Hashable {
    /// The largest stored record accepted, in bytes.
    public static let maximumSize = 256 * 1024

    /// The sequence number, from 0 (the genesis record).
    public var sequence: UInt64
    /// The entry id of the record before, or ``Digest/zero`` for the genesis record.
    public var previous: Digest
    /// When the ledger accepted the record: the ledger's word.
    public var acceptedAt: Timestamp
    /// The sequence number of the last record of the group commit this record belongs to. A
    /// group whose last record is missing was never acknowledged and is cut on recovery.
    public var batchEnd: UInt64
    /// The signed statement.
    public var envelope: Envelope

    public init(sequence: UInt64, previous: Digest, acceptedAt: Timestamp, batchEnd: UInt64, envelope: Envelope) {
        self.sequence = sequence
        self.previous = previous
        self.acceptedAt = acceptedAt
        self.batchEnd = batchEnd
        self.envelope = envelope
    }

    /// The RFC 6962 leaf hash of stored record bytes: the entry id.
    public static func entryID(of bytes: UnsafeRawBufferPointer) -> Digest {
        SHA256.hash(prefix: 0x00, bytes)
    }

    /// The RFC 6962 leaf hash of stored record bytes: the entry id.
    public static func entryID(of bytes: [UInt8]) -> Digest {
        bytes.withUnsafeBytes { entryID(of: $0) }
    }

    /// The canonical stored bytes (no trailing newline).
    public func encoded() -> [UInt8] {
        // Room for it all at once: grown as it went, the buffer was copied several times a record.
        var json = JSONWriter(reservingCapacity: envelope.encodedSizeEstimate + 200)
        json.object { o in
            o.integer("seq", Int64(sequence))
            o.string("prev", previous.hexString)
            o.string("accepted_at", acceptedAt.rfc3339)
            o.integer("batch_end", Int64(batchEnd))
            o.member("envelope") { envelope.write(to: &$0) }
        }
        return json.bytes
    }

    /// Reads a record from its stored bytes, accepting only the canonical encoding, so that
    /// one record can never be read two ways.
    /// - Throws: ``LedgerError/Code/malformedRecord`` saying what is wrong.
    public init(stored bytes: [UInt8]) throws(LedgerError) {
        // Nearly every stored record is canonical: read those in one pass; anything else goes
        // through the general parser, which accepts exactly the same records and says what is wrong.
        if let record = bytes.withUnsafeBufferPointer(Self.canonical) {
            self = record
            return
        }
        self = try Self.general(bytes)
    }

    /// As ``init(stored:)-([UInt8])``, for bytes read in place.
    public init(stored bytes: UnsafeRawBufferPointer) throws(LedgerError) {
        if let record = bytes.withMemoryRebound(to: UInt8.self, Self.canonical) {
            self = record
            return
        }
        self = try Self.general(Array(bytes))
    }

    /// The general reader: strict JSON, every member checked, then the canonical form required.
    static func general(_ bytes: [UInt8]) throws(LedgerError) -> Record {
        func fail(_ what: String) -> LedgerError {
            LedgerError(.malformedRecord, "The stored record \(what).")
        }
        guard bytes.count <= Self.maximumSize else { throw fail("is \(bytes.count) bytes, over the limit of \(Self.maximumSize)") }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw fail("is not valid JSON (\(error))")
        }
        guard let object = value.objectValue, object.count == 5 else { throw fail("does not have exactly the five record members") }
        guard let seq = object["seq"]?.integerValue, seq >= 0 else { throw fail("has no valid seq") }
        guard let prevText = object["prev"]?.stringValue, let prev = Digest(hexString: prevText) else {
            throw fail("has no valid prev entry id")
        }
        guard let timeText = object["accepted_at"]?.stringValue, let accepted = Timestamp(rfc3339: timeText) else {
            throw fail("has no valid accepted_at time")
        }
        guard let batchEnd = object["batch_end"]?.integerValue, batchEnd >= seq else { throw fail("has no valid batch_end") }
        guard let envelopeValue = object["envelope"] else { throw fail("has no envelope") }
        let envelope = try Envelope(json: envelopeValue)
        let record = Record(sequence: UInt64(seq), previous: prev, acceptedAt: accepted, batchEnd: UInt64(batchEnd), envelope: envelope)
        guard record.encoded() == bytes else { throw fail("is not in canonical form (spacing, member order or encoding differs)") }
        return record
    }

    private static let envelopeHead = Array((",\"envelope\":{\"payloadType\":\"" + Envelope.eventPayloadType + "\",\"payload\":\"").utf8)

    /// Reads a record laid out exactly as ``encoded()`` writes it, checking everything the general
    /// path checks; `nil` for any deviation (the general path then decides and explains).
    static func canonical(_ buffer: UnsafeBufferPointer<UInt8>) -> Record? {
        guard buffer.count <= maximumSize else { return nil }
        var scanner = CanonicalScanner(buffer)
        guard scanner.literal("{\"seq\":"), let seq = scanner.integer(),
            scanner.literal(",\"prev\":\""), let prev = scanner.lowercaseDigest(), scanner.literal("\",\"accepted_at\":\""),
            let acceptedText = scanner.until(0x22), let accepted = Timestamp(canonicalRFC3339Bytes: acceptedText),
            scanner.literal(",\"batch_end\":"), let batchEnd = scanner.integer(), batchEnd >= seq,
            scanner.literal(bytes: envelopeHead),
            let payload = scanner.canonicalBase64(), payload.count <= Envelope.maximumPayloadSize,
            scanner.literal("\",\"signatures\":[")
        else { return nil }
        var signatures: [Envelope.Signature] = []
        repeat {
            guard signatures.count < Envelope.maximumSignatures, scanner.literal("{\"keyid\":\""), let keyID = scanner.lowercaseDigest(),
                scanner.literal("\",\"sig\":\""), let sig = scanner.canonicalBase64(), sig.count == 64, scanner.literal("\"}"),
                !signatures.contains(where: { $0.keyID == keyID })
            else { return nil }
            signatures.append(Envelope.Signature(keyID: keyID, signature: sig))
        } while scanner.literal(",")
        guard scanner.literal("]}}"), scanner.atEnd else { return nil }
        let envelope = Envelope(payload: payload, signatures: signatures)
        return Record(sequence: UInt64(seq), previous: prev, acceptedAt: accepted, batchEnd: UInt64(batchEnd), envelope: envelope)
    }
}

/// A forward-only reader of canonical record bytes.
private struct CanonicalScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    var position = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
    }

    var atEnd: Bool { position == bytes.count }

    mutating func literal(_ text: StaticString) -> Bool {
        literal(UnsafeBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func literal(bytes text: [UInt8]) -> Bool {
        text.withUnsafeBufferPointer { literal($0) }
    }

    private mutating func literal(_ expected: UnsafeBufferPointer<UInt8>) -> Bool {
        guard position + expected.count <= bytes.count else { return false }
        guard expected.isEmpty || memcmp(bytes.baseAddress! + position, expected.baseAddress!, expected.count) == 0 else { return false }
        position += expected.count
        return true
    }

    /// A non-negative decimal integer without leading zeros, at most 2^53 − 1.
    mutating func integer() -> Int64? {
        let start = position
        var value: Int64 = 0
        while position < bytes.count, bytes[position] >= 0x30, bytes[position] <= 0x39 {
            value = value * 10 + Int64(bytes[position] - 0x30)
            guard value <= JSONParser.maximumInteger else { return nil }
            position += 1
        }
        let digits = position - start
        guard digits > 0, digits == 1 || bytes[start] != 0x30 else { return nil }
        return value
    }

    /// 64 lowercase hex digits.
    mutating func lowercaseDigest() -> Digest? {
        guard position + 64 <= bytes.count,
            let digest = Digest(lowercaseHexBytes: UnsafeBufferPointer(rebasing: bytes[position..<(position + 64)]))
        else { return nil }
        position += 64
        return digest
    }

    /// Printable ASCII up to (not including) `terminator`, which is consumed.
    mutating func until(_ terminator: UInt8) -> UnsafeBufferPointer<UInt8>? {
        let start = position
        while position < bytes.count, bytes[position] != terminator {
            guard bytes[position] >= 0x20, bytes[position] < 0x7f, bytes[position] != 0x5c else { return nil }
            position += 1
        }
        guard position < bytes.count else { return nil }
        let text = UnsafeBufferPointer(rebasing: bytes[start..<position])
        position += 1
        return text
    }

    /// Standard, padded base64 up to the closing quote (left unconsumed), in its one canonical spelling.
    mutating func canonicalBase64() -> [UInt8]? {
        let start = position
        guard let rest = bytes.baseAddress.map({ $0 + start }), start < bytes.count,
            let quote = memchr(rest, 0x22, bytes.count - start)
        else { return nil }
        position = start + UnsafeRawPointer(rest).distance(to: UnsafeRawPointer(quote))
        return Base64.decodeCanonical(utf8: UnsafeBufferPointer(rebasing: bytes[start..<position]))
    }
}
