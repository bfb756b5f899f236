import Foundation
import LedgerCore
import LedgerCrypto
import Testing

@Suite("Strict JSON")
struct JSONTests {
    func parse(_ text: String) throws(JSONError) -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test("accepts RFC 8259 values, escapes and surrogate pairs")
    func accepts() throws {
        #expect(try parse(#" {"a": [1, -2, true, false, null, "x"]} "#) == .object(["a": .array([.integer(1), .integer(-2), .bool(true), .bool(false), .null, .string("x")])]))
        #expect(try parse(#""\u00e9\ud83d\ude00\n\"\\\/""#) == .string("é😀\n\"\\/"))
        #expect(try parse("9007199254740991") == .integer(9_007_199_254_740_991))
        #expect(try parse("\"é😀\"") == .string("é😀"))
    }

    /// The member names of the object `text`, in the order its tokens list them.
    func memberNames(_ text: String) throws(JSONError) -> [String] {
        try JSONParser.withDocument(Array(text.utf8)) { (parsed) throws(JSONError) -> [String] in
            let document = try parsed.get()
            return document.members(of: 0).map { document.string($0.name) }
        }
    }

    @Test("members come in the order written, and agree with the parsed object; duplicates are refused however many members")
    func members() throws {
        var random = SplitMix64(seed: 103)
        for count in [0, 1, 5, 15, 16, 17, 40, 200] {
            let names = (0..<count).map { "k\($0)" }.shuffled(using: &random)
            let text = "{" + names.enumerated().map { "\"\($1)\":\($0)" }.joined(separator: ",") + "}"
            #expect(try memberNames(text) == names)
            #expect(try parse(text) == .object(Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, .integer(Int64($0))) })))
            guard count > 0 else { continue }
            // The same name again as the last member, spelled as written, with an escape, and in
            // another Unicode normal form: refused wherever the first one is.
            let name = names[count / 2]
            // U+212A KELVIN SIGN is canonically equivalent to "K".
            for (first, again) in [(name, name), (name, "\\u006b" + name.dropFirst()), (name + "é", name + "e\u{301}"), (name + "K", name + "\u{212A}")] {
                let duplicate = "{" + names.map { "\"\($0 == name ? first : $0)\":0" }.joined(separator: ",") + ",\"\(again)\":1}"
                let refused = #expect(throws: JSONError.self) { try parse(duplicate) }
                #expect(refused?.reason.hasPrefix("duplicate member name") == true, "\(count) members, \(again)")
            }
        }
        // Names in ascending order (as this module writes them) are compared with the one before
        // only while the order holds: a repeat of any earlier one after that is still refused.
        for count in [2, 5, 16, 17, 40] {
            let names = (0..<count).map { String(format: "k%03d", $0) }
            let text = "{" + names.map { "\"\($0)\":0" }.joined(separator: ",")
            #expect(try memberNames(text + "}") == names)
            for again in [names[0], names[count / 2], names[count - 1]] {
                #expect(throws: JSONError.self, "\(count) members, \(again) again") { try parse(text + ",\"\(again)\":1}") }
                #expect(throws: JSONError.self, "\(count) members, \(again) again after one out of order") {
                    try parse(text + ",\"a\":1,\"\(again)\":1}")
                }
            }
        }
        #expect(try memberNames("{\"\\u0061\":1,\"b\":2}") == ["a", "b"])
        #expect(throws: JSONError.self) { try memberNames("{\"a\":1} x") }
    }

    @Test("a non-ASCII byte in the same eight bytes as the closing quote still counts: UTF-8 is checked and names compare as strings")
    func nonASCIIBeforeQuote() throws {
        #expect(throws: JSONError.self) { try JSONParser.parse([0x22, 0xff, 0x22] + [UInt8](repeating: 0x20, count: 7)) }
        #expect(try JSONParser.parse(Array("\"é\"       ".utf8)) == .string("é"))
        let refused = #expect(throws: JSONError.self) { try parse("{\"é\":0,\"e\u{301}\":1}") }
        #expect(refused?.reason.hasPrefix("duplicate member name") == true)
    }

    @Test("UTF-8 is checked as the standard library checks it, for every short byte sequence tried")
    func utf8() {
        var random = SplitMix64(seed: 7)
        let interesting: [UInt8] = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xff]
        for _ in 0..<200_000 {
            let length = Int(random.next() % 7)
            let text = (0..<length).map { _ in interesting[Int(random.next() % UInt64(interesting.count))] }
            let json = [0x22] + text + [0x22]
            let expected = text.contains(where: { $0 < 0x20 }) ? nil : String(validating: text, as: UTF8.self)
            let parsed = try? JSONParser.parse(json)
            #expect(parsed == expected.map(JSONValue.string), "\(text)")
        }
    }

    @Test("refuses what parsers disagree on", arguments: [
        (#"{"a":1,"a":2}"#, "duplicate member name"),
        (#"{"a":1} x"#, "unexpected bytes after"),
        (#"{"a":1}{"#, "unexpected bytes after"),
        ("9007199254740992", "out of range"),
        ("123456789012345678901234567890", "out of range"),
        ("1.5", "only integers"),
        ("1e3", "only integers"),
        ("01", "leading zero"),
        ("-0", "negative zero"),
        (#""\ud800""#, "lone high surrogate"),
        (#""\udc00""#, "lone low surrogate"),
        ("\"a\u{01}b\"", "control character"),
        (#""\x""#, "invalid escape"),
        ("[1,]", "unexpected character"),
        ("{\"a\" 1}", "expected ':'"),
        ("tru", "unexpected end"),
        ("", "unexpected end"),
    ])
    func refuses(_ text: String, _ reason: String) {
        do {
            _ = try parse(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.reason.contains(reason), "\(text): \(error.reason)")
        }
    }

    @Test("refuses invalid UTF-8, overlong encodings and encoded surrogates")
    func invalidUTF8() {
        for bytes: [UInt8] in [[0x22, 0xff, 0x22], [0x22, 0xc0, 0xaf, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xe2, 0x82, 0x22]] {
            #expect(throws: JSONError.self) { try JSONParser.parse(bytes) }
        }
    }

    @Test("strings are read the same whether a byte falls in the eight-byte fast scan or after it")
    func stringScanPositions() throws {
        let inserts: [(bytes: [UInt8], valid: Bool)] = [
            ([0x01], false), ([0x1f], false), ([0x7f], true), ([0xff], false), ([0xc3, 0xa9], true), ([0xe2, 0x82], false),
            ([0xf0, 0x9f, 0x98, 0x80], true), ([0xed, 0xa0, 0x80], false), ([0x5c, 0x6e], true), ([0x5c, 0x75, 0x30, 0x30, 0x34, 0x31], true),
        ]
        for (insert, valid) in inserts {
            for before in 0..<20 {
                let content = Array(repeating: UInt8(ascii: "a"), count: before) + insert + Array(repeating: UInt8(ascii: "b"), count: 19 - before)
                let parsed = try? JSONParser.parse([0x22] + content + [0x22])
                #expect((parsed != nil) == valid, "\(insert) after \(before) bytes")
                if valid, insert.first != 0x5c {
                    #expect(parsed == .string(String(decoding: content, as: UTF8.self)))
                }
            }
        }
        #expect(try JSONParser.parse(Array(#""aaaaaaaaaaa\nbbbbbbbbbbbbbb""#.utf8)) == .string("aaaaaaaaaaa\nbbbbbbbbbbbbbb"))
    }

    @Test("strings are written the same whether a byte to escape falls in the eight-byte fast scan or after it")
    func stringWritePositions() throws {
        let escapes: [(byte: UInt8, escaped: String)] = [(0x22, #"\""#), (0x5c, #"\\"#), (0x0a, #"\n"#), (0x01, #"\u0001"#), (0x1f, #"\u001f"#)]
        for (byte, escaped) in escapes {
            for before in 0..<20 {
                let a = String(repeating: "a", count: before), b = String(repeating: "é", count: (19 - before) / 2)
                var writer = JSONWriter()
                writer.string(a + String(decoding: [byte], as: UTF8.self) + b)
                #expect(String(decoding: writer.bytes, as: UTF8.self) == "\"" + a + escaped + b + "\"", "\(byte) after \(before) bytes")
                #expect(try JSONParser.parse(writer.bytes) == .string(a + String(decoding: [byte], as: UTF8.self) + b))
            }
        }
        // Bytes that only look special to a word-wide test (0xa2, 0xdc: a quote and a backslash
        // with the high bit set; 0x7f) are copied as they are.
        var writer = JSONWriter()
        writer.string("¢ܢ\u{7f}abcdefgh")
        #expect(String(decoding: writer.bytes, as: UTF8.self) == "\"¢ܢ\u{7f}abcdefgh\"")
    }

    @Test("refuses nesting deeper than the limit, accepts it at the limit")
    func depth() throws {
        let limit = JSONParser.maximumDepth
        #expect(throws: JSONError.self) { try parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1)) }
        _ = try parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
        #expect(throws: JSONError.self) { try parse(String(repeating: "[", count: 100_000)) }
    }

    @Test("writing then parsing gives the same value, and writing is deterministic")
    func roundTrip() throws {
        let value = JSONValue.object(["b": .array([.string("é\n\"\u{01}"), .integer(-5)]), "a": .object(["z": .null, "y": .bool(true)])])
        var writer = JSONWriter()
        writer.value(value)
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #"{"a":{"y":true,"z":null},"b":["é\n\"\u0001",-5]}"#)
        #expect(try JSONParser.parse(writer.bytes) == value)
    }
}

@Suite("Base64")
struct Base64Tests {
    @Test("RFC 4648 §10 test vectors encode and decode")
    func vectors() {
        // RFC 4648 §10.
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            // Appended in place, after what is there, as a record's envelope is written.
            var appended = Array("x".utf8)
            Array(plain.utf8).withUnsafeBufferPointer { Base64.encode($0, appendingTo: &appended) }
            #expect(appended == Array(("x" + encoded).utf8), "appended \(encoded)")
            var json = JSONWriter()
            json.base64String(Array(plain.utf8))
            #expect(json.bytes == Array("\"\(encoded)\"".utf8))
            #expect(Base64.decode(encoded) == Array(plain.utf8))
            #expect(Base64.decode(encoded.replacingOccurrences(of: "=", with: "")) == Array(plain.utf8), "unpadded \(encoded)")
        }
        #expect(Base64.decode("-_8=") == [0xfb, 0xff], "URL-safe alphabet")
        #expect(Base64.decode("+/8=") == [0xfb, 0xff])
    }

    @Test("every length decodes in each accepted spelling; mixing alphabets anywhere is refused")
    func spellings() {
        var random = SplitMix64(seed: 104)
        for length in 0..<80 {
            let input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let standard = Base64.encode(input)
            let url = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            for text in [standard, url, standard.replacingOccurrences(of: "=", with: ""), url.replacingOccurrences(of: "=", with: "")] {
                #expect(Base64.decode(text) == input, "\(text)")
            }
            #expect(Base64.decodeCanonical(url) == (url == standard ? input : nil), "\(url)")
        }
        // One character of the standard alphabet at any position of a URL-safe text ("_____…").
        for length in 6..<80 {
            var characters = Array(Base64.encode([UInt8](repeating: 0xFF, count: length)).replacingOccurrences(of: "/", with: "_").utf8)
            #expect(Base64.decode(utf8: characters) == [UInt8](repeating: 0xFF, count: length))
            for position in characters.indices where characters[position] == UInt8(ascii: "_") {
                characters[position] = UInt8(ascii: "+")
                #expect(Base64.decode(utf8: characters) == nil, "length \(length) at \(position)")
                characters[position] = UInt8(ascii: "_")
            }
        }
    }

    @Test("every byte outside the alphabet and padding, at every position of a 24-character text (both decoding loops), is refused")
    func everyStrayByte() {
        let text = Array(Base64.encode(Array(0..<18 as Range<UInt8>)).utf8)
        // "=" is left out: at the end it is padding, and may make another canonical text.
        let standard = Set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=".utf8)
        #expect(text.count == 24 && Base64.decodeCanonical(utf8: text) == Array(0..<18))
        for position in text.indices {
            var changed = text
            for byte in 0...255 as ClosedRange<UInt8> where !standard.contains(byte) {
                changed[position] = byte
                #expect(Base64.decodeCanonical(utf8: changed) == nil, "byte \(byte) at \(position)")
                if byte != UInt8(ascii: "-") && byte != UInt8(ascii: "_") {
                    #expect(Base64.decode(utf8: changed) == nil, "byte \(byte) at \(position)")
                }
            }
        }
    }

    @Test("refuses non-zero unused bits, broken padding, mixed alphabets and stray characters")
    func refuses() {
        for text in ["Zh==", "Zm9=", "Zg=", "Zg===", "Z", "Zg==Zg==", "+_8=", "Zm 9v", "Zm9v\n", "Zm9v!"] {
            #expect(Base64.decode(text) == nil, "\(text)")
        }
    }
}

@Suite("DSSE")
struct DSSETests {
    @Test("PAE matches the DSSE v1 specification's example")
    func paeKnownAnswer() {
        // DSSE protocol.md, "Pre-Authentication Encoding" example.
        let pae = Envelope.pae(payloadType: "http://example.com/HelloWorld", payload: Array("hello world".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    }

    @Test("PAE lengths count bytes, not characters")
    func paeBytes() {
        let pae = Envelope.pae(payloadType: "t", payload: Array("é".utf8))
        #expect(String(decoding: pae, as: UTF8.self) == "DSSEv1 1 t 2 é")
    }

    @Test("a signature's keyid is SHA-256 of the raw 32-byte public key, in lowercase hex")
    func keyIDKnownAnswer() throws {
        // RFC 8032 §7.1 TEST 1: secret key 9d61…7f60, public key d75a…511a. The keyid reproduces with
        // `printf d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a | xxd -r -p | sha256sum`.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
        let keyID = "21fe31dfa154a261626bf854046fd2271b7bed4b6abe45aa58877ef47f9721b9"
        let digits = Array(seed)
        let key = try SigningKey(seed: stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...($0 + 1)]), radix: 16) ?? 0 })
        #expect(Base64.encode(key.publicKey.rawRepresentation) == "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
        #expect(key.publicKey.keyID.hexString == keyID)
        var envelope = Envelope(payload: Array("{}".utf8), signatures: [])
        try envelope.sign(with: key)
        #expect(envelope.signatures.map(\.keyID.hexString) == [keyID])
        let text = String(decoding: envelope.jsonBytes, as: UTF8.self)
        #expect(text.contains("\"keyid\":\"\(keyID)\""), "\(text)")
        #expect(try Envelope(jsonText: envelope.jsonBytes).signatures.first?.keyID.hexString == keyID)
    }
}

@Suite("RFC 3339 times")
struct TimestampTests {
    @Test("parses and formats UTC times, with and without fractions")
    func roundTrip() throws {
        let t = try #require(Timestamp(rfc3339: "2020-09-21T08:00:00Z"))
        #expect(t.seconds == 1_600_675_200)
        #expect(t.rfc3339 == "2020-09-21T08:00:00Z")
        #expect(Timestamp(rfc3339: "2020-09-21T08:00:00.250Z")?.rfc3339 == "2020-09-21T08:00:00.25Z")
        #expect(Timestamp(rfc3339: "2000-02-29T23:59:59Z")?.rfc3339 == "2000-02-29T23:59:59Z")
        #expect(Timestamp(rfc3339: "1969-12-31T23:59:59Z")?.seconds == -1)
        var generator = SplitMix64(seed: 105)
        for _ in 0..<1000 {
            let random = Timestamp(seconds: Int64.random(in: -62_000_000_000...250_000_000_000, using: &generator), nanoseconds: Int32.random(in: 0..<1_000_000_000, using: &generator))
            #expect(Timestamp(rfc3339: random.rfc3339) == random, "\(random.seconds)")
        }
    }

    @Test("only the spelling the ledger writes is canonical")
    func canonicalSpelling() {
        func canonical(_ text: String) -> Timestamp? {
            Array(text.utf8).withUnsafeBufferPointer { Timestamp(canonicalRFC3339Bytes: $0) }
        }
        var generator = SplitMix64(seed: 106)
        for _ in 0..<2000 {
            // Whole seconds, and fractions of one to nine digits.
            let nanoseconds = [0, 100_000_000, 120_000_000, 123_456_789, 5, 500][Int.random(in: 0..<6, using: &generator)]
            let time = Timestamp(seconds: Int64.random(in: -62_000_000_000...250_000_000_000, using: &generator), nanoseconds: Int32(nanoseconds))
            let text = time.rfc3339
            #expect(canonical(text) == time, "\(text)")
            // Every other spelling of the same time is read by the lenient parser and refused here.
            var others = [text.replacingOccurrences(of: "T", with: "t"), text.replacingOccurrences(of: "Z", with: "z")]
            others.append(nanoseconds == 0 ? text.replacingOccurrences(of: "Z", with: ".0Z") : text.replacingOccurrences(of: "Z", with: "0Z"))
            for other in others where other.count <= 30 && Timestamp(rfc3339: other) == time {
                #expect(canonical(other) == nil, "\(other)")
            }
        }
        #expect(canonical("2020-09-21T08:00:00.000000000Z") == nil)
        #expect(canonical("2020-09-21T08:00:00.5Z") == Timestamp(rfc3339: "2020-09-21T08:00:00.5Z"))
        #expect(canonical("2020-09-21T08:00:00+00:00") == nil)
    }

    @Test("refuses offsets other than Z, impossible dates and loose formats", arguments: [
        "2020-09-21T08:00:00+02:00", "2020-02-30T00:00:00Z", "2021-02-29T00:00:00Z", "2020-13-01T00:00:00Z",
        "2020-09-21T24:00:00Z", "2020-09-21T08:00:60Z", "2020-09-21 08:00:00Z", "2020-09-21", "2020-09-21T08:00:00.Z",
        "2020-09-21T08:00:00.1234567890Z", "20-09-21T08:00:00Z",
    ])
    func refuses(_ text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }
}
