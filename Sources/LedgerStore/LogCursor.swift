import LedgerCore

/// Reads the log's lines in order from a byte offset, in large chunks: one `pread` per megabyte,
/// not per record, and memory bounded by the longest record.
struct LogCursor {
    private let file: FileDescriptor
    private let end: UInt64
    private var buffer: [UInt8] = []
    private var bufferStart = 0
    private var fileOffset: UInt64
    private static let chunk = 1 << 20

    /// The offset of the next line to be returned.
    private(set) var offset: UInt64

    init(file: FileDescriptor, from offset: UInt64, end: UInt64) {
        self.file = file
        self.offset = offset
        self.fileOffset = offset
        self.end = end
    }

    /// The next line, without its newline, and whether it was complete (ended by a newline before
    /// `end`); `nil` at `end`.
    mutating func next() throws(LedgerError) -> (bytes: [UInt8], offset: UInt64, complete: Bool)? {
        while true {
            if let newline = buffer[bufferStart...].firstIndex(of: 0x0a) {
                let line = Array(buffer[bufferStart..<newline])
                let start = offset
                offset += UInt64(line.count + 1)
                bufferStart = newline + 1
                return (line, start, true)
            }
            if fileOffset >= end {
                guard bufferStart < buffer.count else { return nil }
                let line = Array(buffer[bufferStart...])
                let start = offset
                offset += UInt64(line.count)
                bufferStart = buffer.count
                return (line, start, false)
            }
            // Compact, then read the next chunk after what is left.
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
    }
}
