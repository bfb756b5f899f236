/// Standard, padded base64 (RFC 4648 §4), decoded strictly.
///
/// Decoding accepts only the canonical encoding: no whitespace, padding exactly as needed, and zero
/// unused bits in the last character. A lenient decoder maps several texts to the same bytes, so a
/// flipped bit in a signature line could go unnoticed; identity goes by bytes, and each byte string
/// has exactly one accepted text here.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    private static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in alphabet.enumerated() {
            table[Int(character)] = UInt8(value)
        }
        return table
    }()

    /// The padded base64 text of `bytes`.
    static func encode(_ bytes: some Collection<UInt8>) -> String {
        let input = Array(bytes)
        var out = [UInt8]()
        out.reserveCapacity((input.count + 2) / 3 * 4)
        var i = 0
        while i + 3 <= input.count {
            let chunk = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8 | UInt32(input[i + 2])
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(alphabet[Int(chunk >> 6 & 63)])
            out.append(alphabet[Int(chunk & 63)])
            i += 3
        }
        switch input.count - i {
        case 1:
            let chunk = UInt32(input[i]) << 16
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(UInt8(ascii: "="))
            out.append(UInt8(ascii: "="))
        case 2:
            let chunk = UInt32(input[i]) << 16 | UInt32(input[i + 1]) << 8
            out.append(alphabet[Int(chunk >> 18 & 63)])
            out.append(alphabet[Int(chunk >> 12 & 63)])
            out.append(alphabet[Int(chunk >> 6 & 63)])
            out.append(UInt8(ascii: "="))
        default:
            break
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The bytes of canonical padded base64 text; `nil` for anything else.
    static func decode(_ text: some StringProtocol) -> [UInt8]? {
        decode(utf8: Array(text.utf8))
    }

    /// The bytes of canonical padded base64 text given as UTF-8; `nil` for anything else.
    static func decode(utf8 text: some Collection<UInt8>) -> [UInt8]? {
        let input = Array(text)
        guard input.count % 4 == 0 else { return nil }
        var out = [UInt8]()
        out.reserveCapacity(input.count / 4 * 3)
        var i = 0
        while i < input.count {
            let isLast = i + 4 == input.count
            let padding: Int
            if isLast && input[i + 3] == UInt8(ascii: "=") {
                padding = input[i + 2] == UInt8(ascii: "=") ? 2 : 1
            } else {
                padding = 0
            }
            var chunk: UInt32 = 0
            for j in 0..<(4 - padding) {
                let value = values[Int(input[i + j])]
                guard value != 0xFF else { return nil }
                chunk = chunk << 6 | UInt32(value)
            }
            switch padding {
            case 0:
                out.append(UInt8(chunk >> 16 & 0xFF))
                out.append(UInt8(chunk >> 8 & 0xFF))
                out.append(UInt8(chunk & 0xFF))
            case 1:
                // 18 bits carry 2 bytes; the low 2 bits must be zero.
                guard chunk & 0x3 == 0 else { return nil }
                out.append(UInt8(chunk >> 10 & 0xFF))
                out.append(UInt8(chunk >> 2 & 0xFF))
            default:
                // 12 bits carry 1 byte; the low 4 bits must be zero.
                guard chunk & 0xF == 0 else { return nil }
                out.append(UInt8(chunk >> 4 & 0xFF))
            }
            i += 4
        }
        return out
    }
}
