public import LedgerCrypto

/// A DSSE v1 envelope: a payload, its type, and one or more Ed25519 signatures over
/// PAE(payloadType, payload).
///
/// Identity is by decoded bytes, never by envelope text: the ledger stores envelopes in the
/// canonical form ``jsonBytes`` whatever JSON spacing, member order or base64 alphabet they
/// arrived in, and signatures are always checked over the exact decoded payload bytes.
public struct Envelope: Sendable, Hashable {
    /// The only payload type the ledger accepts.
    public static let eventPayloadType = "application/vnd.evidence-ledger.event+json"
    /// The most signatures one envelope may carry.
    public static let maximumSignatures = 16
    /// What envelope base64 accepts, for error messages.
    static let base64Accepted = "base64 (standard or URL-safe alphabet, not mixed; complete padding if any; unused bits zero)"

    /// The largest payload accepted, in bytes.
    public static let maximumPayloadSize = 64 * 1024

    /// One signature of an envelope.
    public struct Signature: Sendable, Hashable {
        /// SHA-256 of the signer's raw Ed25519 public key.
        public var keyID: Digest
        /// The 64-byte Ed25519 signature over PAE.
        public var signature: [UInt8]

        public init(keyID: Digest, signature: [UInt8]) {
            self.keyID = keyID
            self.signature = signature
        }
    }

    /// The payload's media type.
    public var payloadType: String
    /// The exact signed payload bytes.
    public var payload: [UInt8]
    /// The signatures, in envelope order.
    public var signatures: [Signature]

    public init(payloadType: String = Envelope.eventPayloadType, payload: [UInt8], signatures: [Signature]) {
        self.payloadType = payloadType
        self.payload = payload
        self.signatures = signatures
    }

    /// DSSE's pre-authentication encoding: `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`,
    /// lengths as ASCII decimal counts of bytes.
    public static func pae(payloadType: String, payload: [UInt8]) -> [UInt8] {
        let type = payloadType.utf8
        // Built in one buffer of its final size: every signature check builds one.
        var out: [UInt8] = []
        out.reserveCapacity(32 + type.count + payload.count)
        out += "DSSEv1 ".utf8
        out += String(type.count).utf8
        out.append(0x20)
        out += type
        out.append(0x20)
        out += String(payload.count).utf8
        out.append(0x20)
        out += payload
        return out
    }

    /// The bytes every signature covers.
    public var signedBytes: [UInt8] { Self.pae(payloadType: payloadType, payload: payload) }

    /// Reads an envelope from JSON text.
    /// - Throws: ``LedgerError/Code/malformedEnvelope`` naming the field at fault, or
    ///   ``LedgerError/Code/tooLarge``.
    public init(jsonText bytes: [UInt8]) throws(LedgerError) {
        guard bytes.count <= 2 * Self.maximumPayloadSize else {
            throw LedgerError(.tooLarge, "The envelope is \(bytes.count) bytes; the limit is \(2 * Self.maximumPayloadSize). Split the evidence: attach large documents as blobs by hash.")
        }
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            throw LedgerError(.malformedEnvelope, "The envelope is not valid JSON: \(error). Re-create it with `ledger sign`.")
        }
        try self.init(json: value)
    }

    /// Reads an envelope from a parsed JSON value.
    public init(json value: JSONValue) throws(LedgerError) {
        func fail(_ what: String) -> LedgerError {
            LedgerError(.malformedEnvelope, "The envelope's \(what). Re-create it with `ledger sign`.")
        }
        guard let object = value.objectValue else { throw fail("top level is \(value.kindName), not an object") }
        for key in object.keys where !["payloadType", "payload", "signatures"].contains(key) {
            throw fail("member \"\(key)\" is not part of a DSSE envelope")
        }
        guard let type = object["payloadType"]?.stringValue else { throw fail("payloadType is missing or not a string") }
        guard type == Self.eventPayloadType else {
            throw LedgerError(.malformedEnvelope, "The envelope's payloadType is \"\(type)\"; the ledger accepts only \"\(Self.eventPayloadType)\". A changed payload type invalidates every signature.")
        }
        guard let encoded = object["payload"]?.stringValue else { throw fail("payload is missing or not a string") }
        guard let payload = Base64.decode(encoded) else {
            throw fail("payload is not " + Self.base64Accepted)
        }
        guard payload.count <= Self.maximumPayloadSize else {
            throw LedgerError(.tooLarge, "The payload is \(payload.count) bytes; the limit is \(Self.maximumPayloadSize). Attach large documents as blobs by hash instead.")
        }
        guard let list = object["signatures"]?.arrayValue else { throw fail("signatures member is missing or not an array") }
        guard !list.isEmpty else { throw fail("signatures array is empty: a statement needs at least one signature") }
        guard list.count <= Self.maximumSignatures else { throw fail("signatures array has \(list.count) entries; at most \(Self.maximumSignatures) are allowed") }
        var signatures: [Signature] = []
        for (i, element) in list.enumerated() {
            guard let entry = element.objectValue else { throw fail("signature \(i) is not an object") }
            for key in entry.keys where key != "keyid" && key != "sig" {
                throw fail("signature \(i) has an unknown member \"\(key)\"")
            }
            guard let keyid = entry["keyid"]?.stringValue, keyid.utf8.count == 64,
                keyid == keyid.lowercased(), let keyID = Digest(hexString: keyid)
            else { throw fail("signature \(i) keyid is not 64 lowercase hex digits (SHA-256 of the raw public key)") }
            guard let sigText = entry["sig"]?.stringValue, let sig = Base64.decode(sigText) else {
                throw fail("signature \(i) sig is missing or not " + Self.base64Accepted)
            }
            guard sig.count == 64 else { throw fail("signature \(i) has \(sig.count) bytes; Ed25519 signatures have 64") }
            // A key signs once: twice would read as two signers where there is one.
            if let first = signatures.firstIndex(where: { $0.keyID == keyID }) {
                throw fail("signatures \(first) and \(i) are by the same key \(keyid.prefix(16))…; a key signs a statement once")
            }
            signatures.append(Signature(keyID: keyID, signature: sig))
        }
        self.init(payloadType: type, payload: payload, signatures: signatures)
    }

    /// The canonical JSON form: members in DSSE order, standard padded base64, no spaces.
    public var jsonBytes: [UInt8] {
        var json = JSONWriter(reservingCapacity: encodedSizeEstimate)
        write(to: &json)
        return json.bytes
    }

    /// About how many bytes ``jsonBytes`` takes (a little more), for a writer to reserve.
    var encodedSizeEstimate: Int { payloadType.utf8.count + (payload.count + 2) / 3 * 4 + signatures.count * 200 + 64 }

    /// Writes ``jsonBytes`` into `json`, as one value.
    public func write(to json: inout JSONWriter) {
        json.object { o in
            o.string("payloadType", payloadType)
            o.base64("payload", payload)
            o.member("signatures") { list in
                list.raw([UInt8(ascii: "[")])
                for (i, s) in signatures.enumerated() {
                    if i > 0 { list.raw([UInt8(ascii: ",")]) }
                    list.object { e in
                        e.string("keyid", s.keyID.hexString)
                        e.base64("sig", s.signature)
                    }
                }
                list.raw([UInt8(ascii: "]")])
            }
        }
    }

    /// Adds a signature by `key` over this envelope's PAE.
    /// - Throws: ``LedgerError/Code/duplicateStatement`` if the key has signed already;
    ///   ``LedgerError/Code/tooLarge`` if the envelope holds ``maximumSignatures`` already.
    public mutating func sign(with key: SigningKey) throws(LedgerError) {
        let keyID = key.publicKey.keyID
        guard !signatures.contains(where: { $0.keyID == keyID }) else {
            throw LedgerError(.duplicateStatement, "Key \(keyID.shortHex()) has already signed this envelope; nothing to add.")
        }
        // One more would be written, and then refused as malformed by every reader.
        guard signatures.count < Self.maximumSignatures else {
            throw LedgerError(.tooLarge, "The envelope already holds \(signatures.count) signatures, the most a ledger accepts; another would make every command refuse it. Append it as it is, or sign the event again with at most \(Self.maximumSignatures) keys of its author.")
        }
        do {
            signatures.append(Signature(keyID: keyID, signature: try key.signature(for: signedBytes)))
        } catch {
            throw LedgerError(.crypto, "Signing failed: \(error).", cause: error)
        }
    }
}
