#if canImport(Glibc)
import Glibc
#endif
import LedgerCore

/// Reads the log's lines in order from a byte offset, in large chunks: one `pread` per megabyte,
/// not per record, and memory bounded by the longest record allowed.
struct LogCursor {
    /// One line of the log.
    struct Line {
        /// The line's bytes without its newline; for a line longer than any record, only its start.
        var bytes: [UInt8]
        /// Where the line starts in the log.
        var offset: UInt64
        /// Whether a newline ended it before the end of what is read.
        var complete: Bool
        /// Whether it is longer than any record may be (its bytes are cut short).
        var tooLong = false
        /// Its real length in bytes, without the newline.
        var length: UInt64 { tooLong ? realLength : UInt64(bytes.count) }
        var realLength: UInt64 = 0
    }

    private let file: FileDescriptor
    private var end: UInt64
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    /// How far past `bufferStart` the buffer is known to hold no newline.
    private var scanned = 0
    private var fileOffset: UInt64
    private static let chunk = 1 << 20
    private static let longest = Record.maximumSize + 1

    /// The offset of the next line to be returned.
    private(set) var offset: UInt64

    init(file: FileDescriptor, from offset: UInt64, end: UInt64) {
        self.file = file
        self.offset = offset
        self.fileOffset = offset
        self.end = end
    }

    /// The next line; `nil` at `end`.
    mutating func next() throws(LedgerError) -> Line? {
        try withNextLine { line, bytes in
            var line = line
            line.bytes = Array(bytes)
            return line
        }
    }

    /// Calls `body` with the next line (its ``Line/bytes`` left empty) and its bytes read in
    /// place, valid only during the call; `nil` at `end`. For a line longer than any record,
    /// the bytes are its start.
    mutating func withNextLine<R>(_ body: (Line, UnsafeRawBufferPointer) throws(LedgerError) -> R) throws(LedgerError) -> R? {
        while true {
            if let newline = Self.newline(in: buffer, from: bufferStart + scanned) {
                return try take(bufferStart..<newline, complete: true, body)
            }
            scanned = buffer.count - bufferStart
            if scanned > Self.longest {
                // Longer than any record: keep its start, skip to its end without holding it.
                var line = try skipLongLine()
                let head = line.bytes
                line.bytes = []
                return try Self.borrow(head, head.indices) { (bytes) throws(LedgerError) in try body(line, bytes) }
            }
            if fileOffset >= end {
                guard bufferStart < buffer.count else { return nil }
                return try take(bufferStart..<buffer.count, complete: false, body)
            }
            try refill()
        }
    }

    /// Hands the line in `range` of the buffer to `body`, and moves past it (and its newline, if
    /// `complete`).
    private mutating func take<R>(
        _ range: Range<Int>, complete: Bool, _ body: (Line, UnsafeRawBufferPointer) throws(LedgerError) -> R
    ) throws(LedgerError) -> R {
        let line = Line(bytes: [], offset: offset, complete: complete)
        let ending = complete ? 1 : 0
        offset += UInt64(range.count + ending)
        bufferStart = range.upperBound + ending
        scanned = 0
        return try Self.borrow(buffer, range) { (bytes) throws(LedgerError) in try body(line, bytes) }
    }

    /// Starts again at `offset`, reading up to `end`, keeping the buffer's memory.
    mutating func restart(from offset: UInt64, end: UInt64) {
        self.offset = offset
        fileOffset = offset
        self.end = end
        buffer.removeAll(keepingCapacity: true)
        bufferStart = 0
        scanned = 0
    }

    /// Calls `body` with `range` of `bytes`, in place.
    private static func borrow<R>(
        _ bytes: [UInt8], _ range: Range<Int>, _ body: (UnsafeRawBufferPointer) throws(LedgerError) -> R
    ) throws(LedgerError) -> R {
        try bytes.withUnsafeBytes { raw in
            Result { () throws(LedgerError) in try body(UnsafeRawBufferPointer(rebasing: raw[range])) }
        }.get()
    }

    /// The index of the first newline at or after `start`: memchr, not a byte-at-a-time loop.
    private static func newline(in buffer: [UInt8], from start: Int) -> Int? {
        guard start < buffer.count else { return nil }
        return buffer.withUnsafeBytes { raw -> Int? in
            guard let found = memchr(raw.baseAddress! + start, 0x0a, raw.count - start) else { return nil }
            return raw.baseAddress!.distance(to: UnsafeRawPointer(found))
        }
    }

    private mutating func refill() throws(LedgerError) {
        if bufferStart > 0 {
            buffer.removeFirst(bufferStart)
            bufferStart = 0
        }
        let want = Int(min(UInt64(Self.chunk), end - fileOffset))
        let old = buffer.count
        buffer.append(contentsOf: repeatElement(0, count: want))
        let got = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(LedgerError) in
                try file.read(into: UnsafeMutableRawBufferPointer(rebasing: raw[old...]), at: fileOffset)
            }
        }.get()
        buffer.removeLast(want - got)
        fileOffset += UInt64(got)
        if got == 0 { fileOffset = end }
    }

    private mutating func skipLongLine() throws(LedgerError) -> Line {
        let start = offset
        let head = Array(buffer[bufferStart..<(bufferStart + Self.longest)])
        var length = UInt64(buffer.count - bufferStart)
        buffer.removeAll(keepingCapacity: true)
        bufferStart = 0
        scanned = 0
        while true {
            if let newline = Self.newline(in: buffer, from: 0) {
                length += UInt64(newline)
                bufferStart = newline + 1
                offset = start + length + 1
                return Line(bytes: head, offset: start, complete: true, tooLong: true, realLength: length)
            }
            length += UInt64(buffer.count)
            buffer.removeAll(keepingCapacity: true)
            guard fileOffset < end else {
                offset = start + length
                return Line(bytes: head, offset: start, complete: false, tooLong: true, realLength: length)
            }
            try refill()
        }
    }
}
