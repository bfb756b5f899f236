/// An instant in UTC, written as RFC 3339 with a `Z` suffix (`2020-09-21T08:00:00Z`).
///
/// Three times are kept apart in the ledger: when a source published something, when an author
/// signed, and when the ledger accepted a record. All three use this type; none is ever
/// substituted for another.
public struct Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Seconds since 1970-01-01T00:00:00Z.
    public var seconds: Int64
    /// Nanoseconds within the second, 0..<1_000_000_000.
    public var nanoseconds: Int32

    /// Creates a timestamp; `nanoseconds` must be within a second.
    public init(seconds: Int64, nanoseconds: Int32 = 0) {
        precondition((0..<1_000_000_000).contains(nanoseconds), "nanoseconds out of range")
        self.seconds = seconds
        self.nanoseconds = nanoseconds
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z` (RFC 3339, UTC only, up to 9 fraction digits,
    /// years 0001–9999); `nil` for anything else, including impossible dates and leap seconds.
    public init?(rfc3339 text: some StringProtocol) {
        var text = String(text)
        guard let time = text.withUTF8({ Timestamp(rfc3339Bytes: $0) }) else { return nil }
        self = time
    }

    /// As ``init(rfc3339:)``, from the UTF-8 bytes of the text.
    public init?(rfc3339Bytes c: UnsafeBufferPointer<UInt8>) {
        guard c.count >= 20, c[c.count - 1] == UInt8(ascii: "Z") || c[c.count - 1] == UInt8(ascii: "z") else { return nil }
        func digits(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard c[i] >= UInt8(ascii: "0"), c[i] <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int(c[i] - UInt8(ascii: "0"))
            }
            return value
        }
        guard c[4] == UInt8(ascii: "-"), c[7] == UInt8(ascii: "-"), c[10] == UInt8(ascii: "T") || c[10] == UInt8(ascii: "t"),
            c[13] == UInt8(ascii: ":"), c[16] == UInt8(ascii: ":"),
            let year = digits(0..<4), let month = digits(5..<7), let day = digits(8..<10),
            let hour = digits(11..<13), let minute = digits(14..<16), let second = digits(17..<19),
            year >= 1, (1...12).contains(month), hour < 24, minute < 60, second < 60,
            (1...Self.daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var nanos = 0
        if c.count > 20 {
            let fraction = 20..<(c.count - 1)
            guard c[19] == UInt8(ascii: "."), (1...9).contains(fraction.count), let value = digits(fraction) else { return nil }
            nanos = value
            for _ in fraction.count..<9 { nanos *= 10 }
        } else if c.count != 20 {
            return nil
        }
        let days = Self.daysFromCivil(year: year, month: month, day: day)
        self.init(seconds: Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second), nanoseconds: Int32(nanos))
    }

    /// RFC 3339 in UTC; fraction digits only when the time has them, trailing zeros trimmed.
    public var rfc3339: String {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumTextLength) { buffer in
            String(decoding: buffer[..<write(into: buffer)], as: UTF8.self)
        }
    }

    /// As ``init(rfc3339Bytes:)``, accepting only the one spelling ``rfc3339`` writes: `T` and `Z`
    /// in capitals, and fraction digits only when the time has them, without trailing zeros.
    public init?(canonicalRFC3339Bytes c: UnsafeBufferPointer<UInt8>) {
        // Read once and judged by its shape: writing the time back to compare cost more than reading it.
        guard let time = Timestamp(rfc3339Bytes: c), c[10] == UInt8(ascii: "T"), c[c.count - 1] == UInt8(ascii: "Z"),
            c.count == 20 || c[c.count - 2] != UInt8(ascii: "0")
        else { return nil }
        self = time
    }

    /// The longest ``rfc3339`` text: a year of up to 19 digits and a sign, and nine fraction digits.
    private static let maximumTextLength = 48

    /// Writes ``rfc3339`` into `out` without building strings on the way; returns its length.
    private func write(into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let days = Int(seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400)
        let secondOfDay = Int(seconds - Int64(days) * 86_400)
        let (year, month, day) = Self.civilFromDays(days)
        var n = 0
        func put(_ byte: UInt8) {
            out[n] = byte
            n += 1
        }
        func number(_ value: Int, width: Int) {
            // Zero-padded to `width`; wider when it must be (years past 9999).
            var digits = 1
            var rest = value / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            let count = max(digits, width)
            var v = value
            for i in stride(from: n + count - 1, through: n, by: -1) {
                out[i] = UInt8(ascii: "0") + UInt8(v % 10)
                v /= 10
            }
            n += count
        }
        if year < 0 { put(UInt8(ascii: "-")) }
        number(abs(year), width: 4)
        put(UInt8(ascii: "-"))
        number(month, width: 2)
        put(UInt8(ascii: "-"))
        number(day, width: 2)
        put(UInt8(ascii: "T"))
        number(secondOfDay / 3600, width: 2)
        put(UInt8(ascii: ":"))
        number(secondOfDay / 60 % 60, width: 2)
        put(UInt8(ascii: ":"))
        number(secondOfDay % 60, width: 2)
        if nanoseconds > 0 {
            var fraction = Int(nanoseconds)
            var width = 9
            while fraction % 10 == 0 {
                fraction /= 10
                width -= 1
            }
            put(UInt8(ascii: "."))
            number(fraction, width: width)
        }
        put(UInt8(ascii: "Z"))
        return n
    }

    public var description: String { rfc3339 }

    public static func < (a: Timestamp, b: Timestamp) -> Bool {
        (a.seconds, a.nanoseconds) < (b.seconds, b.nanoseconds)
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian calendar).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    private static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yoe + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}
