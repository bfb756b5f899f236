#if canImport(Glibc)
import Glibc
#endif
import LedgerCrypto

/// A JSON value as read by ``JSONParser``: the strict subset a signed payload may use.
///
/// Numbers are integers only, within ±(2^53 − 1), so every JSON reader agrees on their value.
/// Object member order is not kept: writers in this module emit a fixed order of their own.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case integer(Int64)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// The string, if this is a string.
    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    /// The integer, if this is an integer.
    public var integerValue: Int64? {
        if case let .integer(i) = self { return i }
        return nil
    }

    /// The members, if this is an object.
    public var objectValue: [String: JSONValue]? {
        if case let .object(o) = self { return o }
        return nil
    }

    /// The elements, if this is an array.
    public var arrayValue: [JSONValue]? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// A short name of the value's kind, for messages.
    public var kindName: String {
        switch self {
        case .null: JSONToken.Kind.null.name
        case .bool: JSONToken.Kind.bool.name
        case .integer: JSONToken.Kind.integer.name
        case .string: JSONToken.Kind.string.name
        case .array: JSONToken.Kind.array.name
        case .object: JSONToken.Kind.object.name
        }
    }
}

/// Why a text is not acceptable JSON, with the byte offset where reading stopped.
public struct JSONError: Error, Hashable, Sendable, CustomStringConvertible {
    /// Byte offset into the input.
    public var offset: Int
    /// What was wrong there.
    public var reason: String

    public var description: String { "\(reason) at byte \(offset)" }
}

/// One value of a checked JSON text, as it lies in the text: ``JSONParser/tokens(_:)`` lists
/// them in document order, each container followed by its contents (an object's members as a
/// name token and a value).
package struct JSONToken: Sendable, Hashable {
    package enum Kind: UInt8, Sendable {
        case null, bool, integer, string, array, object

        /// A short name, for messages.
        package var name: String {
            switch self {
            case .null: "null"
            case .bool: "a boolean"
            case .integer: "a number"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    package var kind: Kind
    /// Strings: whether the text holds backslash escapes, so must be decoded rather than copied.
    package var escaped = false
    /// Strings: whether the text is ASCII without escapes, so that it equals another text exactly
    /// when their bytes are equal. Other texts are compared as Swift strings, which treats
    /// canonically equivalent texts as equal, as the dictionaries of ``JSONValue/object(_:)`` do.
    package var ascii = false
    /// Where the value lies in the text: for strings, between the quotes.
    package var start: Int
    package var end: Int
    /// Integers: the value. Booleans: 1 for true. Arrays and objects: how many elements or members.
    package var number: Int64 = 0
    /// The index of the token after this value and everything inside it.
    package var next: Int
}

/// A strict JSON (RFC 8259) parser for signed data.
///
/// Two readers must never understand one signed payload in two ways, so this parser refuses
/// everything that parsers disagree on: duplicate object keys, invalid UTF-8 (including lone
/// surrogate escapes), bytes after the value, non-integer or out-of-range numbers, and nesting
/// deeper than ``maximumDepth``. It accepts only what RFC 8259 allows besides that.
///
/// The text is checked once into a list of tokens over its bytes (``tokens(_:)``), building no
/// value: ``parse(_:)-([UInt8])`` builds a ``JSONValue`` from them, and event decoding reads its
/// fields from the bytes in place, so that the one check serves both.
public struct JSONParser: ~Copyable {
    /// The deepest nesting of arrays and objects accepted.
    public static let maximumDepth = 32
    /// The largest magnitude of an integer: 2^53 − 1, exact in every JSON implementation.
    public static let maximumInteger: Int64 = (1 << 53) - 1
    /// Objects with more members than this find duplicate names through a set rather than by
    /// comparing each name with those before it, so that no object costs quadratic time.
    private static let membersComparedDirectly = 16

    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var tokens: [JSONToken] = []

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses exactly one JSON value filling all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        JSONDocument(bytes: bytes, tokens: try tokens(bytes)).value(0)
    }

    /// Parses exactly one JSON value filling all of `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        try bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try parse(raw) } }.get()
    }

    /// Checks that `bytes` is exactly one JSON value (surrounding whitespace allowed), as strictly
    /// as ``parse(_:)-([UInt8])``, and answers its tokens, the whole value first.
    package static func tokens(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> [JSONToken] {
        var parser = JSONParser(bytes)
        // Room for an event's tokens up front: growing from empty copies four times.
        parser.tokens.reserveCapacity(48)
        parser.skipWhitespace()
        try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected bytes after the JSON value") }
        return parser.tokens
    }

    private func error(_ reason: String) -> JSONError { JSONError(offset: position, reason: reason) }

    private var current: UInt8? { position < bytes.count ? bytes[position] : nil }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0a, 0x0d: position += 1
            default: return
            }
        }
    }

    private mutating func append(_ kind: JSONToken.Kind, from start: Int, number: Int64 = 0, escaped: Bool = false) {
        tokens.append(JSONToken(kind: kind, escaped: escaped, start: start, end: position, number: number, next: tokens.count + 1))
    }

    private mutating func literal(_ literal: StaticString, _ kind: JSONToken.Kind, _ number: Int64) throws(JSONError) {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] {
            throw error("invalid literal")
        }
        position += count
        append(kind, from: position - count, number: number)
    }

    private mutating func value(depth: Int) throws(JSONError) {
        guard let byte = current else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): try object(depth: depth + 1)
        case UInt8(ascii: "["): try array(depth: depth + 1)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true", .bool, 1)
        case UInt8(ascii: "f"): try literal("false", .bool, 0)
        case UInt8(ascii: "n"): try literal("null", .null, 0)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try integer()
        default: throw error("unexpected character")
        }
    }

    /// Checks a container's contents, then fills in its token's end, count and successor.
    private mutating func container(
        _ kind: JSONToken.Kind, depth: Int, close: UInt8, _ element: (inout JSONParser, Int) throws(JSONError) -> Void
    ) throws(JSONError) {
        guard depth <= Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        let index = tokens.count
        append(kind, from: position)
        position += 1
        skipWhitespace()
        var count = 0
        if current != close {
            while true {
                skipWhitespace()
                try element(&self, count)
                count += 1
                skipWhitespace()
                if current == UInt8(ascii: ",") {
                    position += 1
                } else if current == close {
                    break
                } else {
                    throw error(kind == .object ? "expected ',' or '}' in an object" : "expected ',' or ']' in an array")
                }
            }
        }
        position += 1
        tokens[index].end = position
        tokens[index].number = Int64(count)
        tokens[index].next = tokens.count
    }

    private mutating func array(depth: Int) throws(JSONError) {
        try container(.array, depth: depth, close: UInt8(ascii: "]")) { (parser, _) throws(JSONError) in try parser.value(depth: depth) }
    }

    private mutating func object(depth: Int) throws(JSONError) {
        let index = tokens.count
        // Past `membersComparedDirectly` members, every name so far, decoded.
        var names: Set<String>?
        // While every name is ASCII and follows the one before it in byte order (as this module
        // writes objects), none can repeat an earlier one: the last is the only one to compare.
        var ascending = true
        var previous: Int?
        try container(.object, depth: depth, close: UInt8(ascii: "}")) { (parser, count) throws(JSONError) in
            guard parser.current == UInt8(ascii: "\"") else { throw parser.error("expected a member name in quotes") }
            let nameOffset = parser.position
            let name = parser.tokens.count
            try parser.string()
            parser.skipWhitespace()
            guard parser.current == UInt8(ascii: ":") else { throw parser.error("expected ':' after a member name") }
            parser.position += 1
            parser.skipWhitespace()
            try parser.value(depth: depth)
            if ascending, parser.tokens[name].ascii, previous.map({ parser.asciiPrecedes($0, name) }) ?? true {
                previous = name
                return
            }
            ascending = false
            guard !parser.isDuplicate(name, in: index, count: count, names: &names) else {
                throw JSONError(offset: nameOffset, reason: "duplicate member name \"\(JSONDocument(bytes: parser.bytes, tokens: parser.tokens).string(name))\"")
            }
        }
    }

    /// Whether the ASCII string at token `a` comes before the one at `b` in byte order.
    private func asciiPrecedes(_ a: Int, _ b: Int) -> Bool {
        let (x, y) = (tokens[a], tokens[b])
        guard x.ascii else { return false }
        let (m, n) = (x.end - x.start, y.end - y.start)
        let order = memcmp(bytes.baseAddress! + x.start, bytes.baseAddress! + y.start, min(m, n))
        return order < 0 || (order == 0 && m < n)
    }

    /// Whether the member name at token `name`, the object's member number `count`, repeats an
    /// earlier member's. Past ``membersComparedDirectly`` members, `names` holds every name so far.
    private func isDuplicate(_ name: Int, in object: Int, count: Int, names: inout Set<String>?) -> Bool {
        let document = JSONDocument(bytes: bytes, tokens: tokens)
        guard count >= Self.membersComparedDirectly else {
            var member = object + 1
            for _ in 0..<count {
                if document.sameText(member, name) { return true }
                member = tokens[member + 1].next
            }
            return false
        }
        if names == nil {
            names = Set(document.members(of: object, upTo: count).map { document.string($0.name) })
        }
        return !names!.insert(document.string(name)).inserted
    }

    private mutating func integer() throws(JSONError) {
        let start = position
        var negative = false
        if current == UInt8(ascii: "-") {
            negative = true
            position += 1
        }
        guard let first = current, first >= UInt8(ascii: "0"), first <= UInt8(ascii: "9") else {
            throw error("expected a digit")
        }
        var magnitude: Int64 = 0
        while let digit = current, digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "9") {
            if position > start + (negative ? 1 : 0), magnitude == 0 {
                throw JSONError(offset: start, reason: "number with a leading zero")
            }
            magnitude = magnitude * 10 + Int64(digit - UInt8(ascii: "0"))
            guard magnitude <= Self.maximumInteger else {
                throw JSONError(offset: start, reason: "number out of range (integers are limited to ±2^53−1)")
            }
            position += 1
        }
        if let next = current, next == UInt8(ascii: ".") || next == UInt8(ascii: "e") || next == UInt8(ascii: "E") {
            throw JSONError(offset: start, reason: "only integers are allowed, not fractions or exponents")
        }
        if negative && magnitude == 0 { throw JSONError(offset: start, reason: "negative zero is not allowed") }
        append(.integer, from: start, number: negative ? -magnitude : magnitude)
    }

    private mutating func hexQuad() throws(JSONError) -> UInt32 {
        guard position + 4 <= bytes.count else { throw error("unexpected end of input in \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[position]
            let digit: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
            default: throw error("invalid hex digit in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    /// Checks a string and appends its token.
    private mutating func string() throws(JSONError) {
        position += 1
        let start = position
        // Fast path: no escapes; validate the UTF-8 of the raw span in one go (none needed when
        // every byte is ASCII, as ids, keys and times are).
        var high: UInt8 = 0
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        let highs = JSONWriter.highBits
        while position + 8 <= bytes.count {
            let w = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let special = JSONWriter.special(w)
            if special != 0 {
                // The lowest flagged byte is the first special one (a flag borrows only upward,
                // from a byte that matched): step to it, taking the bytes before it into account.
                let regular = special.trailingZeroBitCount / 8
                if w & highs & ((1 << UInt64(8 * regular)) &- 1) != 0 { high = 0x80 }
                position += regular
                break
            }
            if w & highs != 0 { high = 0x80 }
            position += 8
        }
        while position < bytes.count {
            let c = bytes[position]
            high |= c
            if c == UInt8(ascii: "\"") {
                guard high < 0x80 || UTF8Check.isValid(UnsafeRawBufferPointer(rebasing: bytes[start..<position])) else {
                    throw JSONError(offset: start, reason: "invalid UTF-8 in a string")
                }
                position += 1
                tokens.append(JSONToken(kind: .string, ascii: high < 0x80, start: start, end: position - 1, next: tokens.count + 1))
                return
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in a string (it must be escaped)") }
            position += 1
        }
        position = start
        _ = try unescaped()
        tokens.append(JSONToken(kind: .string, escaped: true, start: start, end: position - 1, next: tokens.count + 1))
    }

    /// Decodes a string's escapes from its first byte after the opening quote, up to and
    /// including the closing quote, checking everything: both to check a string that has them
    /// and to read it.
    private mutating func unescaped() throws(JSONError) -> [UInt8] {
        let start = position
        var out: [UInt8] = []
        while true {
            guard let c = current else { throw error("unterminated string") }
            switch c {
            case UInt8(ascii: "\""):
                position += 1
                guard out.withUnsafeBytes({ UTF8Check.isValid($0) }) else {
                    throw JSONError(offset: start, reason: "invalid UTF-8 in a string")
                }
                return out
            case UInt8(ascii: "\\"):
                position += 1
                guard let escape = current else { throw error("unterminated escape") }
                position += 1
                switch escape {
                case UInt8(ascii: "\""): out.append(0x22)
                case UInt8(ascii: "\\"): out.append(0x5c)
                case UInt8(ascii: "/"): out.append(0x2f)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0c)
                case UInt8(ascii: "n"): out.append(0x0a)
                case UInt8(ascii: "r"): out.append(0x0d)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hexQuad()
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard position + 2 <= bytes.count, bytes[position] == UInt8(ascii: "\\"),
                            bytes[position + 1] == UInt8(ascii: "u")
                        else { throw error("lone high surrogate in \\u escape") }
                        position += 2
                        let low = try hexQuad()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("invalid low surrogate in \\u escape") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        throw error("lone low surrogate in \\u escape")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw error("invalid \\u escape") }
                    out.append(contentsOf: UTF8.encode(unicode)!)
                default: throw error("invalid escape")
                }
            default:
                if c < 0x20 { throw error("control character in a string (it must be escaped)") }
                out.append(c)
                position += 1
            }
        }
    }

    /// The decoded bytes of a string token with escapes, from the text it was checked in.
    fileprivate static func unescaped(_ token: JSONToken, in bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var parser = JSONParser(bytes)
        parser.position = token.start
        do {
            return try parser.unescaped()
        } catch {
            preconditionFailure("a checked JSON string no longer decodes: \(error)")
        }
    }
}

extension JSONParser {
    /// Checks `bytes` as ``tokens(_:)`` does and calls `body` with the outcome: the document to
    /// read in place, or why the text is not acceptable JSON. The document points into `bytes`,
    /// so it must not outlive the call.
    package static func withDocument<R, E: Error>(_ bytes: [UInt8], _ body: (Result<JSONDocument, JSONError>) throws(E) -> R) throws(E) -> R {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(E) -> R in
                try body(Result { () throws(JSONError) in JSONDocument(bytes: raw, tokens: try tokens(raw)) })
            }
        }.get()
    }
}

/// A checked JSON text and its tokens (``JSONParser/tokens(_:)``), read in place: strings are
/// copied out only when asked for, and compared without being copied. Made only over the
/// tokens of the same bytes, and only for the time those bytes are borrowed
/// (``JSONParser/withDocument(_:_:)``).
package struct JSONDocument {
    package let bytes: UnsafeRawBufferPointer
    package let tokens: [JSONToken]

    fileprivate init(bytes: UnsafeRawBufferPointer, tokens: [JSONToken]) {
        self.bytes = bytes
        self.tokens = tokens
    }

    /// Calls `body` with a string token's decoded UTF-8: the text in place, unless it has escapes.
    package func withText<R>(_ index: Int, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        let token = tokens[index]
        if token.escaped {
            return JSONParser.unescaped(token, in: bytes).withUnsafeBufferPointer(body)
        }
        return UnsafeRawBufferPointer(rebasing: bytes[token.start..<token.end]).withMemoryRebound(to: UInt8.self, body)
    }

    /// A string token's value.
    package func string(_ index: Int) -> String { withText(index) { String(decoding: $0, as: UTF8.self) } }

    /// Whether two string tokens hold the same text, as Swift strings.
    package func sameText(_ a: Int, _ b: Int) -> Bool {
        let (x, y) = (tokens[a], tokens[b])
        if x.ascii, y.ascii {
            return x.end - x.start == y.end - y.start
                && memcmp(bytes.baseAddress! + x.start, bytes.baseAddress! + y.start, x.end - x.start) == 0
        }
        return string(a) == string(b)
    }

    /// Whether a string token holds exactly the bytes of `literal` once decoded.
    package func textEquals(_ index: Int, _ literal: StaticString) -> Bool {
        let token = tokens[index]
        let count = literal.utf8CodeUnitCount
        if !token.escaped {
            return token.end - token.start == count && memcmp(bytes.baseAddress! + token.start, literal.utf8Start, count) == 0
        }
        return withText(index) { $0.elementsEqual(UnsafeBufferPointer(start: literal.utf8Start, count: count)) }
    }

    /// The first `count` members of the object at `index`: each name's token and value's token.
    package func members(of index: Int, upTo count: Int? = nil) -> [(name: Int, value: Int)] {
        var out: [(name: Int, value: Int)] = []
        var member = index + 1
        for _ in 0..<(count ?? Int(tokens[index].number)) {
            out.append((member, member + 1))
            member = tokens[member + 1].next
        }
        return out
    }

    /// The elements of the array at `index`: their tokens.
    package func elements(of index: Int) -> [Int] {
        var out: [Int] = []
        var element = index + 1
        for _ in 0..<tokens[index].number {
            out.append(element)
            element = tokens[element].next
        }
        return out
    }

    /// The value of the token at `index`, built.
    package func value(_ index: Int) -> JSONValue {
        let token = tokens[index]
        switch token.kind {
        case .null: return .null
        case .bool: return .bool(token.number != 0)
        case .integer: return .integer(token.number)
        case .string: return .string(string(index))
        case .array: return .array(elements(of: index).map(value))
        case .object:
            var object = [String: JSONValue](minimumCapacity: Int(token.number))
            for member in members(of: index) { object[string(member.name)] = value(member.value) }
            return .object(object)
        }
    }
}

/// UTF-8 validity (Unicode 15, table 3-7): no overlong forms, surrogates or values past U+10FFFF.
enum UTF8Check {
    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var i = 0
        let n = bytes.count
        while i < n {
            let lead = bytes[i]
            if lead < 0x80 {
                i += 1
                continue
            }
            func continuation(_ k: Int, _ low: UInt8 = 0x80, _ high: UInt8 = 0xBF) -> Bool {
                i + k < n && bytes[i + k] >= low && bytes[i + k] <= high
            }
            switch lead {
            case 0xC2...0xDF:
                guard continuation(1) else { return false }
                i += 2
            case 0xE0...0xEF:
                let low: UInt8 = lead == 0xE0 ? 0xA0 : 0x80
                let high: UInt8 = lead == 0xED ? 0x9F : 0xBF
                guard continuation(1, low, high), continuation(2) else { return false }
                i += 3
            case 0xF0...0xF4:
                let low: UInt8 = lead == 0xF0 ? 0x90 : 0x80
                let high: UInt8 = lead == 0xF4 ? 0x8F : 0xBF
                guard continuation(1, low, high), continuation(2), continuation(3) else { return false }
                i += 4
            default:
                return false
            }
        }
        return true
    }
}

/// Writes compact JSON with members in the order the caller gives.
///
/// Strings are escaped minimally (quote, backslash, control characters), so the same value
/// always gives the same bytes.
public struct JSONWriter: Sendable {
    /// The bytes written so far.
    public private(set) var bytes: [UInt8] = []

    public init() {}

    /// A writer with room for `capacity` bytes before it grows.
    public init(reservingCapacity capacity: Int) {
        bytes.reserveCapacity(capacity)
    }

    /// Writes a string value.
    public mutating func string(_ text: String) {
        bytes.append(0x22)
        var text = text
        text.withUTF8 { utf8 in
            // Copy runs that need no escaping in one go, passing over eight bytes at a time while
            // none needs it; escape the rest byte by byte.
            var start = 0
            var i = 0
            while i < utf8.count {
                if i + 8 <= utf8.count {
                    let special = Self.special(UInt64(littleEndian: UnsafeRawBufferPointer(utf8).loadUnaligned(fromByteOffset: i, as: UInt64.self)))
                    guard special != 0 else {
                        i += 8
                        continue
                    }
                    // To the first byte to escape: those before it need nothing.
                    i += special.trailingZeroBitCount / 8
                }
                let byte = utf8[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5c else {
                    i += 1
                    continue
                }
                bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<i]))
                switch byte {
                case 0x22: bytes.append(contentsOf: [0x5c, 0x22])
                case 0x5c: bytes.append(contentsOf: [0x5c, 0x5c])
                case 0x0a: bytes.append(contentsOf: [0x5c, 0x6e])
                case 0x0d: bytes.append(contentsOf: [0x5c, 0x72])
                case 0x09: bytes.append(contentsOf: [0x5c, 0x74])
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    bytes.append(contentsOf: [0x5c, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xf)]])
                }
                i += 1
                start = i
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        bytes.append(0x22)
    }

    static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// Of eight bytes read little-endian, the high bit of each that is a quote, a backslash or a
    /// control character (the bytes a JSON string must escape), and possibly of bytes above one
    /// that is: zero if and only if there is none. A flag borrows only upward, from a byte that
    /// matched, so the lowest one flagged is the first to escape.
    @inline(__always) static func special(_ w: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let quote = w ^ (ones &* 0x22)
        let backslash = w ^ (ones &* 0x5c)
        return (((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((w &- ones &* 0x20) & ~w)) & highBits
    }

    /// Writes an integer value.
    public mutating func integer(_ value: Int64) {
        bytes.append(contentsOf: Array(String(value).utf8))
    }

    /// Writes raw, already-encoded JSON.
    public mutating func raw(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
    }

    /// Writes a string value holding the standard padded base64 of `data`: the bytes of
    /// `string(Base64.encode(data))`, written straight in (base64 needs no escaping).
    public mutating func base64String(_ data: [UInt8]) {
        bytes.append(0x22)
        data.withUnsafeBufferPointer { Base64.encode($0, appendingTo: &bytes) }
        bytes.append(0x22)
    }

    /// Writes any ``JSONValue``, with object members sorted by their UTF-8 bytes.
    public mutating func value(_ value: JSONValue) {
        switch value {
        case .null: bytes.append(contentsOf: Array("null".utf8))
        case let .bool(b): bytes.append(contentsOf: Array((b ? "true" : "false").utf8))
        case let .integer(i): integer(i)
        case let .string(s): string(s)
        case let .array(elements):
            bytes.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                self.value(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case let .object(members):
            bytes.append(UInt8(ascii: "{"))
            for (i, key) in members.keys.sorted(by: { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }).enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                string(key)
                bytes.append(UInt8(ascii: ":"))
                // The key came from `members`, so the lookup always succeeds.
                self.value(members[key] ?? .null)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    /// Writes an object whose members `body` adds, in its order, through ``ObjectWriter``.
    public mutating func object(_ body: (inout ObjectWriter) -> Void) {
        var writer = ObjectWriter(json: self)
        bytes = []
        writer.json.bytes.append(UInt8(ascii: "{"))
        body(&writer)
        writer.json.bytes.append(UInt8(ascii: "}"))
        self = writer.json
    }

    /// Adds members to an object in a fixed order.
    public struct ObjectWriter {
        fileprivate var json: JSONWriter
        private var first = true

        fileprivate init(json: JSONWriter) {
            self.json = json
        }

        private mutating func key(_ name: String) {
            if !first { json.bytes.append(UInt8(ascii: ",")) }
            first = false
            json.string(name)
            json.bytes.append(UInt8(ascii: ":"))
        }

        /// Adds a string member.
        public mutating func string(_ name: String, _ value: String) {
            key(name)
            json.string(value)
        }

        /// Adds a string member holding the base64 of `data` (see ``JSONWriter/base64String(_:)``).
        public mutating func base64(_ name: String, _ data: [UInt8]) {
            key(name)
            json.base64String(data)
        }

        /// Adds an integer member.
        public mutating func integer(_ name: String, _ value: Int64) {
            key(name)
            json.integer(value)
        }

        /// Adds a member of already-encoded JSON.
        public mutating func raw(_ name: String, _ value: [UInt8]) {
            key(name)
            json.raw(value)
        }

        /// Adds a member whose value `write` writes in place (one value).
        public mutating func member(_ name: String, _ write: (inout JSONWriter) -> Void) {
            key(name)
            write(&json)
        }

        /// Adds a member holding any ``JSONValue``.
        public mutating func value(_ name: String, _ value: JSONValue) {
            key(name)
            json.value(value)
        }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByBooleanLiteral,
    ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
