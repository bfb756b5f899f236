/// A SHA-256 digest: exactly 32 bytes, compared in constant time.
///
/// Stored as four 64-bit words so that digests are cheap to copy, compare and hash; the bytes
/// are the words in big-endian order.
public struct Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
    @usableFromInline var w0, w1, w2, w3: UInt64

    /// The first eight bytes as a big-endian word, for tables keyed by digests (they are as good
    /// as random).
    @inlinable public var leadingWord: UInt64 { w0 }

    /// The next eight bytes as a big-endian word: with ``leadingWord``, two independent hashes
    /// for Bloom filters keyed by digests.
    @inlinable public var secondWord: UInt64 { w1 }

    /// The third eight bytes as a big-endian word: a third independent hash.
    @inlinable public var thirdWord: UInt64 { w2 }

    /// The digest of 32 zero bytes, the "previous entry" of the genesis record.
    public static let zero = Digest(w0: 0, w1: 0, w2: 0, w3: 0)

    @usableFromInline init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        self.w0 = w0
        self.w1 = w1
        self.w2 = w2
        self.w3 = w3
    }

    /// Creates a digest from exactly 32 bytes.
    /// - Throws: ``CryptoError/wrongLength(what:got:want:)`` for any other count.
    public init(rawRepresentation bytes: some Collection<UInt8>) throws(CryptoError) {
        guard bytes.count == 32 else { throw .wrongLength(what: "digest", got: bytes.count, want: 32) }
        var words: [UInt64] = [0, 0, 0, 0]
        for (i, byte) in bytes.enumerated() {
            words[i / 8] = words[i / 8] << 8 | UInt64(byte)
        }
        self.init(w0: words[0], w1: words[1], w2: words[2], w3: words[3])
    }

    /// Creates a digest from 64 hexadecimal digits (either case); `nil` for anything else.
    public init?(hexString: some StringProtocol) {
        var text = String(hexString)
        guard let digest = text.withUTF8({ Digest(hexBytes: $0) }) else { return nil }
        self = digest
    }

    /// As ``init(hexString:)``, from the UTF-8 bytes of the text.
    public init?(hexBytes utf8: UnsafeBufferPointer<UInt8>) {
        self.init(utf8, digits: Self.nibbles)
    }

    /// From exactly 64 lowercase hexadecimal digits, as UTF-8 bytes (the one spelling canonical
    /// records use); `nil` for anything else, capitals included.
    public init?(lowercaseHexBytes utf8: UnsafeBufferPointer<UInt8>) {
        self.init(utf8, digits: Self.lowercaseNibbles)
    }

    private init?(_ utf8: UnsafeBufferPointer<UInt8>, digits: [UInt8]) {
        guard utf8.count == 64 else { return nil }
        // A table and an OR of everything seen, judged once: no branch per digit.
        let words = digits.withUnsafeBufferPointer { table -> (UInt64, UInt64, UInt64, UInt64)? in
            var invalid: UInt8 = 0
            func word(_ w: Int) -> UInt64 {
                var word: UInt64 = 0
                for i in (16 * w)..<(16 * w + 16) {
                    let nibble = table[Int(utf8[i])]
                    invalid |= nibble
                    word = word << 4 | UInt64(nibble & 0x0F)
                }
                return word
            }
            let words = (word(0), word(1), word(2), word(3))
            return invalid & 0xF0 == 0 ? words : nil
        }
        guard let words else { return nil }
        self.init(w0: words.0, w1: words.1, w2: words.2, w3: words.3)
    }

    /// The value of each hex digit (either case); 0xFF for any other byte.
    private static let nibbles: [UInt8] = (0...255).map { nibble(UInt8($0)) ?? 0xFF }

    /// As ``nibbles``, with capitals refused.
    private static let lowercaseNibbles: [UInt8] = (0...255).map { $0 >= 0x41 && $0 <= 0x46 ? 0xFF : nibble(UInt8($0)) ?? 0xFF }

    /// Reads a digest from `buffer` at `offset`; requires 32 readable bytes there.
    @inlinable
    public init(loadingFrom buffer: UnsafeRawBufferPointer, at offset: Int = 0) {
        precondition(offset >= 0 && offset + 32 <= buffer.count, "digest read out of bounds")
        func word(_ i: Int) -> UInt64 { UInt64(bigEndian: buffer.loadUnaligned(fromByteOffset: offset + 8 * i, as: UInt64.self)) }
        self.init(w0: word(0), w1: word(1), w2: word(2), w3: word(3))
    }

    /// The 32 bytes of the digest.
    public var rawRepresentation: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { store(into: $0) }
        return out
    }

    /// Writes the 32 bytes into `buffer` at `offset`; requires 32 writable bytes there.
    @inlinable
    public func store(into buffer: UnsafeMutableRawBufferPointer, at offset: Int = 0) {
        precondition(offset >= 0 && offset + 32 <= buffer.count, "digest write out of bounds")
        buffer.storeBytes(of: w0.bigEndian, toByteOffset: offset, as: UInt64.self)
        buffer.storeBytes(of: w1.bigEndian, toByteOffset: offset + 8, as: UInt64.self)
        buffer.storeBytes(of: w2.bigEndian, toByteOffset: offset + 16, as: UInt64.self)
        buffer.storeBytes(of: w3.bigEndian, toByteOffset: offset + 24, as: UInt64.self)
    }

    /// Lowercase hexadecimal, 64 digits.
    public var hexString: String {
        String(unsafeUninitializedCapacity: 64) { out in
            func put(_ word: UInt64, at start: Int) {
                for i in 0..<16 {
                    let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * i) & 0xf)
                    out[start + i] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
                }
            }
            put(w0, at: 0)
            put(w1, at: 16)
            put(w2, at: 32)
            put(w3, at: 48)
            return 64
        }
    }

    /// The first `count` hex digits followed by an ellipsis, for messages.
    public func shortHex(_ count: Int = 12) -> String { String(hexString.prefix(count)) + "…" }

    public var description: String { hexString }

    // Constant time: every word is always compared, whatever the first difference.
    @inlinable
    public static func == (a: Digest, b: Digest) -> Bool {
        ((a.w0 ^ b.w0) | (a.w1 ^ b.w1) | (a.w2 ^ b.w2) | (a.w3 ^ b.w3)) == 0
    }

    public static func < (a: Digest, b: Digest) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
        hasher.combine(w1)
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
