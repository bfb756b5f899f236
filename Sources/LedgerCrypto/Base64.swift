/// Base64 (RFC 4648) with the strictness signed data needs.
public enum Base64 {
    private static let standard = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let decodeTable: [Int8] = {
        var table = [Int8](repeating: -1, count: 256)
        for (i, c) in standard.enumerated() { table[Int(c)] = Int8(i) }
        // The URL-safe alphabet (RFC 4648 §5), which DSSE also allows.
        table[Int(UInt8(ascii: "-"))] = 62
        table[Int(UInt8(ascii: "_"))] = 63
        return table
    }()

    /// Standard base64 with padding.
    public static func encode(_ bytes: some Collection<UInt8>) -> String {
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let b0 = iterator.next() {
            let b1 = iterator.next(), b2 = iterator.next()
            let n = UInt32(b0) << 16 | UInt32(b1 ?? 0) << 8 | UInt32(b2 ?? 0)
            out.append(standard[Int(n >> 18 & 63)])
            out.append(standard[Int(n >> 12 & 63)])
            out.append(b1 == nil ? UInt8(ascii: "=") : standard[Int(n >> 6 & 63)])
            out.append(b2 == nil ? UInt8(ascii: "=") : standard[Int(n & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes standard or URL-safe base64, padded or not (as DSSE allows), refusing any text
    /// with more than one encoding of its bytes: unused bits must be zero, padding must be
    /// complete when present, and the two alphabets may not be mixed.
    /// - Returns: the bytes, or `nil` with no partial result.
    public static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: Array(text.utf8))
    }

    /// Decodes only the one canonical spelling: standard alphabet, padded (RFC 4648 §4). Used
    /// where a format fixes the encoding (signed notes, proofs), so that each byte string has
    /// exactly one accepted text.
    public static func decodeCanonical(_ text: some StringProtocol) -> [UInt8]? {
        guard let bytes = decode(text), encode(bytes) == String(text) else { return nil }
        return bytes
    }

    /// As ``decodeCanonical(_:)``, for text given as UTF-8 bytes.
    public static func decodeCanonical(utf8 text: some Collection<UInt8>) -> [UInt8]? {
        guard let bytes = decode(utf8: text), Array(encode(bytes).utf8).elementsEqual(text) else { return nil }
        return bytes
    }

    /// As ``decode(_:)``, for text given as UTF-8 bytes.
    public static func decode(utf8 text: some Collection<UInt8>) -> [UInt8]? {
        var chars = Array(text)
        var padding = 0
        while chars.last == UInt8(ascii: "=") {
            chars.removeLast()
            padding += 1
        }
        let remainder = chars.count % 4
        guard remainder != 1, padding == 0 || (chars.count + padding) % 4 == 0, padding <= 2 else { return nil }
        let usesStandard = chars.contains { $0 == UInt8(ascii: "+") || $0 == UInt8(ascii: "/") }
        let usesURLSafe = chars.contains { $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }
        guard !(usesStandard && usesURLSafe) else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(chars.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for c in chars {
            let v = decodeTable[Int(c)]
            guard v >= 0 else { return nil }
            accumulator = accumulator << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
                accumulator &= (1 << UInt32(bits)) - 1
            }
        }
        // Leftover bits must be zero, or two texts would decode to the same bytes.
        guard accumulator == 0 else { return nil }
        return out
    }
}

