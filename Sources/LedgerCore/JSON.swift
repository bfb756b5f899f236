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
        case .null: "null"
        case .bool: "a boolean"
        case .integer: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

/// One member of a JSON object, as written.
public struct JSONMember: Sendable, Hashable {
    public var name: String
    public var value: JSONValue

    public init(name: String, value: JSONValue) {
        self.name = name
        self.value = value
    }

    /// The members of a parsed object (in no particular order: a dictionary keeps none).
    public static func members(of object: [String: JSONValue]) -> [JSONMember] {
        object.map { JSONMember(name: $0.key, value: $0.value) }
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

/// A strict JSON (RFC 8259) parser for signed data.
///
/// Two readers must never understand one signed payload in two ways, so this parser refuses
/// everything that parsers disagree on: duplicate object keys, invalid UTF-8 (including lone
/// surrogate escapes), bytes after the value, non-integer or out-of-range numbers, and nesting
/// deeper than ``maximumDepth``. It accepts only what RFC 8259 allows besides that.
public struct JSONParser: ~Copyable {
    /// The deepest nesting of arrays and objects accepted.
    public static let maximumDepth = 32
    /// The largest magnitude of an integer: 2^53 − 1, exact in every JSON implementation.
    public static let maximumInteger: Int64 = (1 << 53) - 1

    private let bytes: UnsafeRawBufferPointer
    private var position = 0

    private init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
    }

    /// Parses exactly one JSON value filling all of `bytes` (surrounding whitespace allowed).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONError) -> JSONValue {
        var parser = JSONParser(bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected bytes after the JSON value") }
        return value
    }

    /// Parses exactly one JSON value filling all of `bytes`.
    public static func parse(_ bytes: [UInt8]) throws(JSONError) -> JSONValue {
        try bytes.withUnsafeBytes { raw in Result { () throws(JSONError) in try parse(raw) } }.get()
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

    private mutating func expect(_ literal: StaticString, _ value: JSONValue) throws(JSONError) -> JSONValue {
        let count = literal.utf8CodeUnitCount
        guard position + count <= bytes.count else { throw error("unexpected end of input") }
        for i in 0..<count where bytes[position + i] != literal.utf8Start[i] {
            throw error("invalid literal")
        }
        position += count
        return value
    }

    private mutating func value(depth: Int) throws(JSONError) -> JSONValue {
        guard let byte = current else { throw error("unexpected end of input") }
        switch byte {
        case UInt8(ascii: "{"): return try object(depth: depth + 1)
        case UInt8(ascii: "["): return try array(depth: depth + 1)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try expect("true", .bool(true))
        case UInt8(ascii: "f"): return try expect("false", .bool(false))
        case UInt8(ascii: "n"): return try expect("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .integer(try integer())
        default: throw error("unexpected character")
        }
    }

    private mutating func object(depth: Int) throws(JSONError) -> JSONValue {
        // Room for a typical event's members up front: growing from empty rehashes three times.
        var members = [String: JSONValue](minimumCapacity: 12)
        try self.members(depth: depth) { name, value in members.updateValue(value, forKey: name) == nil }
        return .object(members)
    }

    /// Reads an object's members in order, handing each to `add`, which answers `false` for a
    /// name it already holds (a duplicate, refused).
    private mutating func members(depth: Int, _ add: (String, JSONValue) -> Bool) throws(JSONError) {
        guard depth <= Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        position += 1
        skipWhitespace()
        if current == UInt8(ascii: "}") {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard current == UInt8(ascii: "\"") else { throw error("expected a member name in quotes") }
            let keyOffset = position
            let key = try string()
            skipWhitespace()
            guard current == UInt8(ascii: ":") else { throw error("expected ':' after a member name") }
            position += 1
            skipWhitespace()
            let member = try value(depth: depth)
            guard add(key, member) else {
                throw JSONError(offset: keyOffset, reason: "duplicate member name \"\(key)\"")
            }
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "}"):
                position += 1
                return
            default: throw error("expected ',' or '}' in an object")
            }
        }
    }

    /// Parses exactly one JSON value filling all of `bytes`, as ``parse(_:)-([UInt8])``; if it is
    /// an object, answers its members in the order written, without building a dictionary (what
    /// decoding an event needs); `nil` for any other value.
    public static func parseMembers(_ bytes: [UInt8]) throws(JSONError) -> [JSONMember]? {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(JSONError) -> [JSONMember]? in
                var parser = JSONParser(raw)
                parser.skipWhitespace()
                guard parser.current == UInt8(ascii: "{") else {
                    _ = try parse(raw)
                    return nil
                }
                var members: [JSONMember] = []
                members.reserveCapacity(16)
                // Duplicates are found by comparing names while there are few, as in an event;
                // through a set once there are many, so that no object costs quadratic time.
                var names: Set<String>?
                try parser.members(depth: 1) { name, value in
                    if names == nil, members.count >= 16 { names = Set(members.map(\.name)) }
                    if names != nil {
                        guard names!.insert(name).inserted else { return false }
                    } else if members.contains(where: { $0.name == name }) {
                        return false
                    }
                    members.append(JSONMember(name: name, value: value))
                    return true
                }
                parser.skipWhitespace()
                guard parser.position == raw.count else { throw parser.error("unexpected bytes after the JSON value") }
                return members
            }
        }.get()
    }

    private mutating func array(depth: Int) throws(JSONError) -> JSONValue {
        guard depth <= Self.maximumDepth else { throw error("nesting deeper than \(Self.maximumDepth) levels") }
        position += 1
        var elements: [JSONValue] = []
        skipWhitespace()
        if current == UInt8(ascii: "]") {
            position += 1
            return .array(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try value(depth: depth))
            skipWhitespace()
            switch current {
            case UInt8(ascii: ","): position += 1
            case UInt8(ascii: "]"):
                position += 1
                return .array(elements)
            default: throw error("expected ',' or ']' in an array")
            }
        }
    }

    private mutating func integer() throws(JSONError) -> Int64 {
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
        return negative ? -magnitude : magnitude
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

    private mutating func string() throws(JSONError) -> String {
        position += 1
        let start = position
        // Fast path: no escapes; validate the UTF-8 of the raw span in one go (none needed when
        // every byte is ASCII, as ids, keys and times are).
        var high: UInt8 = 0
        // Eight bytes at a time while none is a quote, a backslash or a control character.
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        while position + 8 <= bytes.count {
            let w = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let quote = w ^ (ones &* 0x22)
            let backslash = w ^ (ones &* 0x5c)
            let special = ((quote &- ones) & ~quote) | ((backslash &- ones) & ~backslash) | ((w &- ones &* 0x20) & ~w)
            if special & highs != 0 { break }
            if w & highs != 0 { high = 0x80 }
            position += 8
        }
        while position < bytes.count {
            let c = bytes[position]
            high |= c
            if c == UInt8(ascii: "\"") {
                let span = UnsafeRawBufferPointer(rebasing: bytes[start..<position])
                position += 1
                if high < 0x80 { return String(decoding: span, as: UTF8.self) }
                guard let text = String(validating: span, as: UTF8.self) else {
                    throw JSONError(offset: start, reason: "invalid UTF-8 in a string")
                }
                return text
            }
            if c == UInt8(ascii: "\\") { break }
            if c < 0x20 { throw error("control character in a string (it must be escaped)") }
            position += 1
        }
        var out = Array(UnsafeRawBufferPointer(rebasing: bytes[start..<position]))
        while true {
            guard let c = current else { throw error("unterminated string") }
            switch c {
            case UInt8(ascii: "\""):
                position += 1
                guard let text = String(validating: out, as: UTF8.self) else {
                    throw JSONError(offset: start, reason: "invalid UTF-8 in a string")
                }
                return text
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
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw error("invalid escape")
                }
            default:
                if c < 0x20 { throw error("control character in a string (it must be escaped)") }
                out.append(c)
                position += 1
            }
        }
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

    /// Writes a string value.
    public mutating func string(_ text: String) {
        bytes.append(0x22)
        var text = text
        text.withUTF8 { utf8 in
            // Copy runs that need no escaping in one go; escape the rest byte by byte.
            var start = 0
            for i in 0..<utf8.count {
                let byte = utf8[i]
                guard byte < 0x20 || byte == 0x22 || byte == 0x5c else { continue }
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
                start = i + 1
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[start..<utf8.count]))
        }
        bytes.append(0x22)
    }

    /// Writes an integer value.
    public mutating func integer(_ value: Int64) {
        bytes.append(contentsOf: Array(String(value).utf8))
    }

    /// Writes raw, already-encoded JSON.
    public mutating func raw(_ json: [UInt8]) {
        bytes.append(contentsOf: json)
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
