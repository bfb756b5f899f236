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
        var json = JSONWriter()
        json.object { o in
            o.integer("seq", Int64(sequence))
            o.string("prev", previous.hexString)
            o.string("accepted_at", acceptedAt.rfc3339)
            o.integer("batch_end", Int64(batchEnd))
            o.raw("envelope", envelope.jsonBytes)
        }
        return json.bytes
    }

    /// Reads a record from its stored bytes, accepting only the canonical encoding, so that
    /// one record can never be read two ways.
    /// - Throws: ``LedgerError/Code/malformedRecord`` saying what is wrong.
    public init(stored bytes: [UInt8]) throws(LedgerError) {
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
        self.init(sequence: UInt64(seq), previous: prev, acceptedAt: accepted, batchEnd: UInt64(batchEnd), envelope: envelope)
        guard encoded() == bytes else { throw fail("is not in canonical form (spacing, member order or encoding differs)") }
    }
}
