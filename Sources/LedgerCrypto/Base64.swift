/// Base64 (RFC 4648) with the strictness signed data needs.
public enum Base64 {
    private static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// Each byte's 6-bit value, or 0xFF for a byte outside both alphabets.
    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in standard.enumerated() { table[Int(c)] = UInt8(i) }
        // The URL-safe alphabet (RFC 4648 §5), which DSSE also allows.
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()

    /// As ``decodeTable``, for the standard alphabet only.
    private static let standardTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in standard.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// A decoding table spread over the four places of a group, the one the decoder uses: entry
    /// `256 × p + c` is byte c's value shifted to place p of a 24-bit group, or bit 31 for a byte
    /// outside the alphabet. Four lookups ORed together decode a group with no chain of shifts
    /// between characters.
    private static func spread(_ table: [UInt8]) -> [UInt32] {
        var out = [UInt32](repeating: 0, count: 1024)
        for place in 0..<4 {
            for c in 0..<256 {
                out[place * 256 + c] = table[c] == 0xFF ? 0x8000_0000 : UInt32(table[c]) << UInt32(18 - 6 * place)
            }
        }
        return out
    }

    private static let decodeSpread = spread(decodeTable)
    private static let standardSpread = spread(standardTable)

    /// Which alphabet a byte belongs to only: 1 for `+` `/`, 2 for `-` `_`, 0 otherwise.
    private static let alphabetTable: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        for c in "+/".utf8 { table[Int(c)] = 1 }
        for c in "-_".utf8 { table[Int(c)] = 2 }
        return table
    }()

    /// Standard base64 with padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        if let text = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return text }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0) }
    }

    /// Appends the standard padded base64 of `bytes` to `out`, as ASCII: what ``encode(_:)``
    /// returns, without making a `String` (whose UTF-8 is checked again when it is made).
    public static func encode(_ bytes: UnsafeBufferPointer<UInt8>, appendingTo out: inout [UInt8]) {
        let count = (bytes.count + 2) / 3 * 4
        let start = out.count
        out.append(contentsOf: repeatElement(0, count: count))
        out.withUnsafeMutableBufferPointer { encode(buffer: bytes, into: UnsafeMutableBufferPointer(rebasing: $0[start...])) }
    }

    private static func encode(buffer input: UnsafeBufferPointer<UInt8>) -> String {
        String(unsafeUninitializedCapacity: (input.count + 2) / 3 * 4) { encode(buffer: input, into: $0) }
    }

    /// Writes the base64 of `input` into `out`, which has room for exactly it; returns its length.
    private static func encode(buffer input: UnsafeBufferPointer<UInt8>, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        standard.withUnsafeBufferPointer { alphabet in
            var i = 0, o = 0
            while i + 3 <= input.count {
                let n = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                out[o + 2] = alphabet[Int(n >> 6 & 63)]
                out[o + 3] = alphabet[Int(n & 63)]
                i += 3
                o += 4
            }
            if i < input.count {
                let b1 = i + 1 < input.count ? UInt32(input[i + 1]) : 0
                let n = UInt32(input[i]) << 16 | b1 << 8
                out[o] = alphabet[Int(n >> 18 & 63)]
                out[o + 1] = alphabet[Int(n >> 12 & 63)]
                out[o + 2] = i + 1 < input.count ? alphabet[Int(n >> 6 & 63)] : UInt8(ascii: "=")
                out[o + 3] = UInt8(ascii: "=")
                o += 4
            }
            return o
        }
    }

    /// Decodes standard or URL-safe base64, padded or not (as DSSE allows). Within those four
    /// spellings it is strict: unused bits must be zero, padding must be complete when present,
    /// and the two alphabets may not be mixed. Identity never rests on the text: callers compare
    /// decoded bytes, and ``decodeCanonical(_:)`` accepts only the one standard, padded spelling.
    /// - Returns: the bytes, or `nil` with no partial result.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: text.utf8)
    }

    /// Decodes only the one canonical spelling: standard alphabet, padded (RFC 4648 §4). Used
    /// where a format fixes the encoding (signed notes, proofs), so that each byte string has
    /// exactly one accepted text.
    public static func decodeCanonical(_ text: some StringProtocol) -> [UInt8]? {
        decodeCanonical(utf8: text.utf8)
    }

    /// As ``decodeCanonical(_:)``, for text given as UTF-8 bytes.
    public static func decodeCanonical(utf8 text: some Collection<UInt8>) -> [UInt8]? {
        decode(text, canonical: true)?.bytes
    }

    /// As ``decode(_:)``, for text given as UTF-8 bytes.
    public static func decode(utf8 text: some Collection<UInt8>) -> [UInt8]? {
        decode(text, canonical: false)?.bytes
    }

    /// Decodes the standard alphabet, padded, as Go's `base64.StdEncoding` does: unused bits that
    /// are not zero are ignored. Says too whether they were zero, that is whether the text is the
    /// canonical spelling. For where a reader must take what Go takes, from others (a signed
    /// note's lines of keys it does not know).
    public static func decodeIgnoringUnusedBits(utf8 text: some Collection<UInt8>) -> (bytes: [UInt8], canonical: Bool)? {
        decode(text, canonical: true, allowingUnusedBits: true).map { ($0.bytes, $0.unusedBitsZero) }
    }

    private static func decode(
        _ text: some Collection<UInt8>, canonical: Bool, allowingUnusedBits: Bool = false
    ) -> (bytes: [UInt8], unusedBitsZero: Bool)? {
        if let result = text.withContiguousStorageIfAvailable({ decode(buffer: $0, canonical: canonical, allowingUnusedBits: allowingUnusedBits) }) {
            return result
        }
        return Array(text).withUnsafeBufferPointer { decode(buffer: $0, canonical: canonical, allowingUnusedBits: allowingUnusedBits) }
    }

    /// Decodes any of the four accepted spellings, or with `canonical` only the standard alphabet
    /// fully padded: with unused bits required to be zero (unless `allowingUnusedBits`), that is
    /// the one text `encode` writes.
    private static func decode(
        buffer input: UnsafeBufferPointer<UInt8>, canonical: Bool, allowingUnusedBits: Bool
    ) -> (bytes: [UInt8], unusedBitsZero: Bool)? {
        var length = input.count
        var padding = 0
        while length > 0, input[length - 1] == UInt8(ascii: "=") {
            length -= 1
            padding += 1
        }
        guard length % 4 != 1, padding == 0 || (length + padding) % 4 == 0, padding <= 2 else { return nil }
        if canonical, input.count % 4 != 0 { return nil }
        let capacity = length * 3 / 4
        // Four characters make three bytes; validity and alphabets are gathered with ORs and
        // judged once at the end, so the loops have no branch per character.
        var outside: UInt32 = 0
        var alphabets: UInt8 = 0
        var leftover: UInt32 = 0
        let out = (canonical ? standardSpread : decodeSpread).withUnsafeBufferPointer { spread in
            alphabetTable.withUnsafeBufferPointer { kinds in
                [UInt8](unsafeUninitializedCapacity: capacity) { out, written in
                    /// Characters `i..<i + count` as the leading places of a 24-bit group.
                    func group(_ i: Int, _ count: Int) -> UInt32 {
                        var n: UInt32 = 0
                        if count == 4 {
                            n = spread[Int(input[i])] | spread[256 + Int(input[i + 1])] | spread[512 + Int(input[i + 2])]
                                | spread[768 + Int(input[i + 3])]
                        } else {
                            for place in 0..<count { n |= spread[256 * place + Int(input[i + place])] }
                        }
                        // The standard table alone already refuses the other alphabet.
                        if !canonical {
                            for place in 0..<count { alphabets |= kinds[Int(input[i + place])] }
                        }
                        outside |= n
                        return n
                    }
                    var i = 0
                    var o = 0
                    let whole = length / 4 * 4
                    // Two groups at a time into one word stored as eight bytes of which six are
                    // kept (the next round overwrites the other two), while two spare bytes remain
                    // in the output.
                    if let base = out.baseAddress {
                        while i + 8 <= whole, o + 8 <= capacity {
                            let n = UInt64(group(i, 4) & 0xFF_FFFF) << 24 | UInt64(group(i + 4, 4) & 0xFF_FFFF)
                            UnsafeMutableRawPointer(base + o).storeBytes(of: (n << 16).bigEndian, as: UInt64.self)
                            i += 8
                            o += 6
                        }
                    }
                    while i < whole {
                        let n = group(i, 4)
                        out[o] = UInt8(truncatingIfNeeded: n >> 16)
                        out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                        out[o + 2] = UInt8(truncatingIfNeeded: n)
                        i += 4
                        o += 3
                    }
                    // A last group of two or three characters: one or two bytes, and unused bits.
                    let n = group(whole, length - whole)
                    switch length - whole {
                    case 2:
                        out[o] = UInt8(truncatingIfNeeded: n >> 16)
                        leftover = n >> 12 & 0xF
                        o += 1
                    case 3:
                        out[o] = UInt8(truncatingIfNeeded: n >> 16)
                        out[o + 1] = UInt8(truncatingIfNeeded: n >> 8)
                        leftover = n >> 6 & 0x3
                        o += 2
                    default:
                        break
                    }
                    written = o
                }
            }
        }
        // Bit 31 marks a byte of neither alphabet. Leftover bits must be zero, or two texts would
        // decode to the same bytes.
        let valid = outside & 0x8000_0000 == 0 && (leftover == 0 || allowingUnusedBits)
        // The two alphabets may not be mixed in one text.
        guard valid, alphabets != 3 else { return nil }
        return (out, leftover == 0)
    }
}

