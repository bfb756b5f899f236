import Foundation
import LedgerCore
import LedgerCrypto
import Testing

@Suite("Events and records")
struct EventTests {
    func event(_ json: String) throws(LedgerError) -> Event { try Event(payload: Array(json.utf8)) }

    /// Expects each payload refused with a message that contains its text.
    func expectRefused(_ cases: [(json: String, message: String)]) {
        for (json, expected) in cases {
            do {
                _ = try event(json)
                Issue.record("accepted: \(json.prefix(120))")
            } catch {
                #expect(error.message.contains(expected), "\(error.message)")
            }
        }
    }

    let common = #""v":1,"author":"amnesty","signed_at":"2020-09-21T08:00:00Z""#

    @Test("every v1 type decodes with its fields")
    func everyType() throws {
        let key = Base64.encode([UInt8](repeating: 7, count: 32))
        let hash = SHA256.hash([1, 2, 3]).hexString
        let events = [
            #"{\#(common),"type":"ledger.genesis","id":"g","origin":"o","party":"amnesty","name":"A","keys":["\#(key)"]}"#,
            #"{\#(common),"type":"party.registered","id":"p","party":"x","name":"X","role":"subject","keys":["\#(key)"]}"#,
            #"{\#(common),"type":"key.added","id":"k","party":"x","key":"\#(key)"}"#,
            #"{\#(common),"type":"key.revoked","id":"k2","party":"x","key":"\#(key)","reason":"lost"}"#,
            #"{\#(common),"type":"fact.opened","id":"f","fact":"f","proposition":"P","subjects":["x"],"tags":["t"]}"#,
            #"{\#(common),"type":"claim.asserted","id":"c","claim":"c","fact":"f","stance":"affirms","statement":"S","source":{"uri":"https://example.org","published_at":"2020-09-21T00:00:00Z","quote":"q"}}"#,
            #"{\#(common),"type":"claim.countered","id":"c2","claim":"c2","counters":"c","fact":"f","stance":"denies","statement":"S"}"#,
            #"{\#(common),"type":"claim.amended","id":"m","claim":"c","stance":"qualifies"}"#,
            #"{\#(common),"type":"claim.retracted","id":"r","claim":"c","reason":"R"}"#,
            #"{\#(common),"type":"evidence.attached","id":"e","evidence":"e","sha256":"\#(hash)","size":3,"media_type":"text/plain","title":"T","captured_at":"2020-09-22T00:00:00Z","custodian":"Jane","supports":["c"],"contradicts":["c2"]}"#,
            #"{\#(common),"type":"custody.recorded","id":"cu","evidence":"e","action":"transferred","from":"a","to":"b","at":"2020-09-22T00:00:00Z","note":"n"}"#,
            #"{\#(common),"type":"attestation.made","id":"a","attestation":"a","target":"e","kind":"reviewed","note":"n"}"#,
            #"{\#(common),"type":"finding.recorded","id":"fd","finding":"fd","fact":"f","outcome":"inconclusive","rationale":"R","relies_on":["e"]}"#,
        ]
        var types: Set<String> = []
        for json in events {
            let e = try event(json)
            types.insert(e.type)
            #expect(e.author == "amnesty")
            #expect(e.signedAt.rfc3339 == "2020-09-21T08:00:00Z")
            #expect(e.body != .unknown)
        }
        #expect(types == Event.knownTypes)
        if case let .claimAsserted(_, _, stance, _, source) = try event(events[5]).body {
            #expect(stance == .affirms)
            #expect(source?.publishedAt?.rfc3339 == "2020-09-21T00:00:00Z")
        } else {
            Issue.record("claim.asserted decoded to another body")
        }
    }

    @Test("each field error names the field and the event type")
    func fieldErrors() {
        let cases: [(String, String)] = [
            (#"{\#(common),"type":"claim.asserted","id":"c","claim":"c","fact":"f","stance":"maybe","statement":"S"}"#, "\"stance\" of claim.asserted must be one of affirms, denies, qualifies"),
            (#"{\#(common),"type":"claim.asserted","id":"c","fact":"f","stance":"affirms","statement":"S"}"#, "\"claim\" of claim.asserted is missing"),
            (#"{\#(common),"type":"evidence.attached","id":"e","evidence":"e","sha256":"abc","size":3,"media_type":"m","title":"T"}"#, "\"sha256\" of evidence.attached must be 64 lowercase hex digits"),
            (#"{\#(common),"type":"evidence.attached","id":"e","evidence":"e","sha256":"\#(Digest.zero.hexString)","size":-1,"media_type":"m","title":"T"}"#, "\"size\" of evidence.attached must be at least 0"),
            (#"{"v":2,"type":"fact.opened","id":"f","author":"a","signed_at":"2020-09-21T08:00:00Z"}"#, "v 2"),
            (#"{\#(common),"type":"fact.opened","id":"f","fact":"f","proposition":"P","signed":"x"}"#, "\"signed\" is not part of fact.opened"),
            (#"{\#(common),"type":"fact.opened","id":"f","fact":"..","proposition":"P"}"#, "\"fact\" of fact.opened is not a valid id"),
            (#"{"v":1,"author":"a","signed_at":"yesterday","type":"fact.opened","id":"f","fact":"f","proposition":"P"}"#, "\"signed_at\" of fact.opened must be an RFC 3339 time"),
        ]
        expectRefused(cases)
    }

    @Test("texts are measured in the bytes they decode to, escapes or not")
    func textLengths() throws {
        func claim(_ statement: String) -> String {
            #"{\#(common),"type":"claim.asserted","id":"c","claim":"c","fact":"f","stance":"affirms","statement":"\#(statement)"}"#
        }
        func fact(_ tag: String) -> String {
            #"{\#(common),"type":"fact.opened","id":"f","fact":"f","proposition":"P","tags":["\#(tag)"]}"#
        }
        func statement(of json: String) throws -> String? {
            if case let .claimAsserted(_, _, _, text, _) = try event(json).body { return text }
            return nil
        }
        // "é" is written with an escape of six bytes, and decodes to two.
        let escaped = String(repeating: #"\u00e9"#, count: Event.maximumTextLength / 2)
        #expect(try statement(of: claim(escaped)) == String(repeating: "é", count: Event.maximumTextLength / 2))
        #expect(try statement(of: claim(String(repeating: "é", count: Event.maximumTextLength / 2))) != nil)
        let refusals: [(String, String)] = [
            (claim(escaped + "a"), "\"statement\" of claim.asserted is \(Event.maximumTextLength + 1) bytes; the limit is \(Event.maximumTextLength)"),
            (claim(String(repeating: "é", count: Event.maximumTextLength / 2) + "a"), "is \(Event.maximumTextLength + 1) bytes"),
            (claim(""), "\"statement\" of claim.asserted is empty"),
            (fact(""), "\"tags\" of fact.opened element 0 must be a non-empty string of at most 256 bytes"),
            (fact(String(repeating: #"\u00e9"#, count: 128) + "a"), "element 0 must be a non-empty string of at most 256 bytes"),
        ]
        expectRefused(refusals)
        // 128 escaped "é" are 256 bytes: a tag may be that long.
        if case let .factOpened(_, _, _, tags) = try event(fact(String(repeating: #"\u00e9"#, count: 128))).body {
            #expect(tags == [String(repeating: "é", count: 128)])
        } else {
            Issue.record("fact.opened decoded to another body")
        }
    }

    @Test("an event given as an object is refused for what its payload would be refused for, naming the value, not a byte offset")
    func objectBeyondSignedJSON() throws {
        let base: [String: JSONValue] = [
            "v": 1, "author": "amnesty", "signed_at": "2020-09-21T08:00:00Z", "type": "evidence.attached", "id": "e", "evidence": "e",
            "sha256": .string(SHA256.hash([1]).hexString), "size": 3, "media_type": "text/plain", "title": "T",
        ]
        #expect(try Event(object: base).id == "e")
        var huge = base
        huge["size"] = .integer(1 << 60)
        let refused = #expect(throws: LedgerError(.malformedEvent, "")) { try Event(object: huge) }
        #expect(refused?.message == "The event holds a value that signed JSON cannot carry: number out of range (integers are limited to ±2^53−1).")
    }

    @Test("a member name written with escapes is read as the name it spells")
    func escapedNames() throws {
        let e = try event(#"{\#(common),"type":"claim.retracted","\u0069d":"r","cl\u0061im":"c","reason":"R"}"#)
        #expect(e.id == "r")
        #expect(e.body == .claimRetracted(claim: "c", reason: "R"))
    }

    @Test("an event of many members names its first unknown member, whatever the position of the known ones")
    func manyMembers() {
        let unknown = (0..<70).map { String(format: "\"x%02d\":1", $0) }.joined(separator: ",")
        let rest = #",\#(common),"type":"fact.opened","id":"f","fact":"f","proposition":"P"}"#
        let refused = #expect(throws: LedgerError(.malformedEvent, "")) { try event("{" + unknown + rest) }
        #expect(refused?.message.contains("\"x00\" is not part of fact.opened") == true, "\(refused?.message ?? "")")
        // The known members, all past the 64th here, are read like any other: only unknown ones
        // are named (tags, a known member, takes x00's place).
        let known = "{" + unknown.replacingOccurrences(of: "\"x00\":1", with: "\"tags\":[\"t\"]") + rest
        let named = #expect(throws: LedgerError(.malformedEvent, "")) { try event(known) }
        #expect(named?.message.contains("\"x01\" is not part of fact.opened") == true, "\(named?.message ?? "")")
    }

    @Test("unknown types are refused unless reading old records, where they decode as unknown")
    func unknownType() throws {
        let json = #"{\#(common),"type":"claim.upvoted","id":"u","claim":"c"}"#
        #expect(throws: LedgerError(.unknownEventType, "")) { try event(json) }
        let e = try Event(payload: Array(json.utf8), allowUnknownType: true)
        #expect(e.body == .unknown)
        #expect(!e.isKnownType)
    }

    @Test("ids: letters, digits and . _ : - only, never a path")
    func ids() {
        for good in ["a", "claim-1", "E.3", "x_y:z", String(repeating: "a", count: 128)] { #expect(Event.isValidID(good), "\(good)") }
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", "é", String(repeating: "a", count: 129), "a\u{0}"] {
            #expect(!Event.isValidID(bad), "\(bad)")
        }
    }

    @Test("signing refuses to add a signature beyond the most an envelope may carry, and changes nothing")
    func signatureLimit() throws {
        let keys = try (1...Envelope.maximumSignatures + 1).map { try SigningKey(seed: [UInt8](repeating: UInt8($0), count: 32)) }
        var envelope = Envelope(payload: Array("{}".utf8), signatures: [])
        for key in keys.dropLast() { try envelope.sign(with: key) }
        let full = envelope
        #expect(throws: LedgerError(.tooLarge, "")) { try envelope.sign(with: keys.last!) }
        #expect(envelope.signatures.count == Envelope.maximumSignatures)
        // What sign(with:) makes, every reader takes.
        #expect(try Envelope(jsonText: full.jsonBytes) == full)
    }

    @Test("records round-trip through their canonical bytes; other encodings of the same record are refused")
    func records() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 9, count: 32))
        var envelope = Envelope(payload: Array("{}".utf8), signatures: [])
        try envelope.sign(with: key)
        let record = Record(sequence: 4, previous: SHA256.hash([1]), acceptedAt: Timestamp(seconds: 1_600_675_200), batchEnd: 5, envelope: envelope)
        let bytes = record.encoded()
        #expect(try Record(stored: bytes) == record)
        let text = String(decoding: bytes, as: UTF8.self)
        for variant in [text.replacingOccurrences(of: ",", with: ", "), text.replacingOccurrences(of: "\"seq\":4", with: "\"seq\":4.0"),
                        text.replacingOccurrences(of: "{\"seq\":4,", with: "{") + "", text.replacingOccurrences(of: "\"batch_end\":5", with: "\"batch_end\":3")] {
            #expect(throws: LedgerError.self, "\(variant.prefix(60))") { try Record(stored: Array(variant.utf8)) }
        }
        #expect(Record.entryID(of: bytes) == SHA256.hash([0] + bytes))
    }
}
