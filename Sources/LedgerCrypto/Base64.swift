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
        if let text = bytes.withContiguousStorageIfAvailable({ encode(buffer: $0) }) { return text }
        return Array(bytes).withUnsafeBufferPointer { encode(buffer: $0) }
    }

    private static func encode(buffer input: UnsafeBufferPointer<UInt8>) -> String {
        let count = (input.count + 2) / 3 * 4
        return standard.withUnsafeBufferPointer { alphabet in
            String(unsafeUninitializedCapacity: count) { out in
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
    }

    /// Decodes standard or URL-safe base64, padded or not (as DSSE allows). Within those four
    /// spellings it is strict: unused bits must be zero, padding must be complete when present,
    /// and the two alphabets may not be mixed. Identity never rests on the text: callers compare
    /// decoded bytes, and ``decodeCanonical(_:)`` accepts only the one standard, padded spelling.
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
        if let bytes = text.withContiguousStorageIfAvailable({ decode(buffer: $0) }) { return bytes }
        return Array(text).withUnsafeBufferPointer { decode(buffer: $0) }
    }

    private static func decode(buffer input: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        var length = input.count
        var padding = 0
        while length > 0, input[length - 1] == UInt8(ascii: "=") {
            length -= 1
            padding += 1
        }
        guard length % 4 != 1, padding == 0 || (length + padding) % 4 == 0, padding <= 2 else { return nil }
        let capacity = length * 3 / 4
        var alphabets: UInt8 = 0  // bit 0: '+' or '/' seen; bit 1: '-' or '_' seen
        var valid = true
        let out = decodeTable.withUnsafeBufferPointer { table in
            [UInt8](unsafeUninitializedCapacity: capacity) { out, written in
                var accumulator: UInt32 = 0
                var bits: UInt32 = 0
                var o = 0
                for i in 0..<length {
                    let c = input[i]
                    let v = table[Int(c)]
                    guard v >= 0 else {
                        valid = false
                        break
                    }
                    if v >= 62 { alphabets |= c == UInt8(ascii: "+") || c == UInt8(ascii: "/") ? 1 : 2 }
                    accumulator = accumulator << 6 | UInt32(v)
                    bits += 6
                    if bits >= 8 {
                        bits -= 8
                        out[o] = UInt8(truncatingIfNeeded: accumulator >> bits)
                        o += 1
                        accumulator &= (1 << bits) - 1
                    }
                }
                // Leftover bits must be zero, or two texts would decode to the same bytes.
                if accumulator != 0 { valid = false }
                written = o
            }
        }
        // The two alphabets may not be mixed in one text.
        guard valid, alphabets != 3 else { return nil }
        return out
    }
}

