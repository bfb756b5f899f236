import LedgerCrypto
import Testing

@Suite("SHA-256")
struct SHA256Tests {
    // FIPS 180-4 examples, as published in NIST's "Cryptographic Standards and Guidelines:
    // Examples with Intermediate Values" (SHA256.pdf, SHA2_Additional.pdf).
    static let vectors: [(name: String, input: [UInt8], hex: String)] = [
        ("empty", [], "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", Array("abc".utf8), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        (
            "448-bit", Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        ),
        ("one million a", [UInt8](repeating: 0x61, count: 1_000_000), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ]

    @Test("NIST example digests", arguments: 0..<4)
    func nistVector(_ i: Int) {
        let vector = Self.vectors[i]
        #expect(SHA256.hash(vector.input).hexString == vector.hex, "vector \(vector.name)")
    }

    @Test("incremental hashing equals one-shot hashing at every split point")
    func incremental() {
        let input = Array("The quick brown fox jumps over the lazy dog".utf8)
        for split in 0...input.count {
            var hasher = SHA256.Hasher()
            hasher.update(Array(input[..<split]))
            hasher.update(Array(input[split...]))
            #expect(hasher.finalize() == SHA256.hash(input), "split at \(split)")
        }
    }

    @Test("prefix hashing equals hashing the prefix byte and the data together")
    func prefixed() {
        let data = Array("leaf".utf8)
        let viaPrefix = data.withUnsafeBytes { SHA256.hash(prefix: 0, $0) }
        #expect(viaPrefix == SHA256.hash([0] + data))
    }

    @Test("digests round-trip through hex and raw bytes, and compare by value")
    func digestConversions() throws {
        let digest = SHA256.hash(Array("abc".utf8))
        #expect(Digest(hexString: digest.hexString) == digest)
        #expect(Digest(hexString: digest.hexString.uppercased()) == digest)
        #expect(try Digest(rawRepresentation: digest.rawRepresentation) == digest)
        #expect(Digest(hexString: String(digest.hexString.dropLast())) == nil)
        #expect(Digest(hexString: String(digest.hexString.dropLast()) + "g") == nil)
        // Every byte value at the first, a middle and the last digit: accepted exactly when it is
        // a hex digit of either case (of lowercase only, for the lowercase reading), and then read
        // as that digit.
        let hexDigits = Array("0123456789abcdefABCDEF".utf8)
        for position in [0, 17, 63] {
            for byte in UInt8.min...UInt8.max {
                var text = Array(digest.hexString.utf8)
                text[position] = byte
                let parsed = text.withUnsafeBufferPointer { Digest(hexBytes: $0) }
                let lowercaseOnly = text.withUnsafeBufferPointer { Digest(lowercaseHexBytes: $0) }
                if hexDigits.contains(byte) {
                    let lower = Array(String(decoding: text, as: UTF8.self).lowercased().utf8)
                    #expect(parsed?.hexString == String(decoding: lower, as: UTF8.self), "\(byte) at \(position)")
                } else {
                    #expect(parsed == nil, "\(byte) at \(position)")
                }
                // The lowercase-only reading: the same where the text is lowercase, else nil.
                #expect(lowercaseOnly == (hexDigits.prefix(16).contains(byte) ? parsed : nil), "lowercase only: \(byte) at \(position)")
            }
        }
        #expect(throws: CryptoError.wrongLength(what: "digest", got: 31, want: 32)) {
            try Digest(rawRepresentation: [UInt8](repeating: 0, count: 31))
        }
        var flipped = digest.rawRepresentation
        flipped[31] ^= 1
        #expect(try Digest(rawRepresentation: flipped) != digest)
        #expect(Digest.zero.rawRepresentation == [UInt8](repeating: 0, count: 32))
    }

    @Test("HMAC-SHA256: RFC 4231 test cases 1, 2 and 6 (a key longer than a block), whole and in pieces")
    func hmacKnownAnswers() {
        let cases: [([UInt8], String, String)] = [
            ([UInt8](repeating: 0x0B, count: 20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (Array("Jefe".utf8), "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ([UInt8](repeating: 0xAA, count: 131), "Test Using Larger Than Block-Size Key - Hash Key First", "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ]
        for (key, message, expected) in cases {
            let bytes = Array(message.utf8)
            #expect(bytes.withUnsafeBytes { HMACSHA256.mac(key: key, $0) }.hexString == expected, "\(message)")
            var pieces = HMACSHA256(key: key)
            bytes.withUnsafeBytes { raw in
                pieces.update(UnsafeRawBufferPointer(rebasing: raw[..<3]))
                pieces.update(UnsafeRawBufferPointer(rebasing: raw[3...]))
            }
            #expect(pieces.finalize().hexString == expected, "\(message), in pieces")
        }
        // Another key, or one byte of the message changed, gives another MAC.
        #expect(Array("Hi There".utf8).withUnsafeBytes { HMACSHA256.mac(key: [UInt8](repeating: 0x0C, count: 20), $0) }.hexString != cases[0].2)
        #expect(Array("Hi Therf".utf8).withUnsafeBytes { HMACSHA256.mac(key: cases[0].0, $0) }.hexString != cases[0].2)
    }
}
