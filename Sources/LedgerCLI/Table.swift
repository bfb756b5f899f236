import LedgerCore
import LedgerStore

/// A plain table: columns padded to their widest cell; colours applied after padding.
///
/// The widths are known only once every row is in, so the rows are kept until the table is
/// printed: in memory up to ``keptInMemory`` bytes of cells, and past that in an unnamed
/// temporary file (in `TMPDIR`), so that a table of every fact of a large ledger is not held in
/// memory whole. Rows are added through one variable: copies of a table share its file.
struct Table {
    let header: [String]
    /// Per column: how to colour a padded cell.
    var paint: [Int: (String) -> String] = [:]
    /// How many bytes of rows are kept in memory (their cells' text, and about 32 bytes a cell
    /// besides) before they go to a temporary file, and where that file is made.
    var keptInMemory = 4 << 20
    var temporaryDirectory = RuleStateStorage.temporaryDirectory
    private var rows: [[String]] = []
    private var bytesInMemory = 0
    private var spool: Spool?
    private var widths: [Int]
    private(set) var count = 0

    init(header: [String]) {
        self.header = header
        widths = header.map(\.count)
    }

    /// Adds a row.
    /// - Throws: ``LedgerError/Code/io`` if the rows go to a temporary file and it cannot be
    ///   written.
    mutating func append(_ row: [String]) throws(LedgerError) {
        // Cells hold a ledger's texts, shown on one line as written (see `printable`).
        let row = row.map(\.printable)
        for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        count += 1
        if let spool {
            try spool.add(row)
            return
        }
        rows.append(row)
        bytesInMemory += row.reduce(0) { $0 + $1.utf8.count + 32 }
        guard bytesInMemory > keptInMemory else { return }
        let spool = try Spool(in: temporaryDirectory)
        for row in rows { try spool.add(row) }
        rows = []
        self.spool = spool
    }

    /// Prints the table a line at a time through `out`: a table of many rows is never held as
    /// one text.
    /// - Throws: ``LedgerError/Code/io`` if its temporary file cannot be read back.
    func print(style: Style, to out: (String) -> Void = { Swift.print($0) }) throws(LedgerError) {
        func line(_ cells: [String], header: Bool) -> String {
            var out: [String] = []
            for (i, cell) in cells.enumerated() {
                // The last cell, and any beyond the header's, are not padded.
                let padded = i == cells.count - 1 || i >= widths.count ? cell : cell + String(repeating: " ", count: widths[i] - cell.count)
                if header {
                    out.append(style.bold(padded))
                } else if let paint = paint[i], !cell.isEmpty {
                    // Colour the text only, not the padding.
                    out.append(paint(cell) + String(repeating: " ", count: padded.count - cell.count))
                } else {
                    out.append(padded)
                }
            }
            return out.joined(separator: "  ")
        }
        out(line(header, header: true))
        if let spool {
            try spool.forEachRow { out(line($0, header: false)) }
        } else {
            for row in rows { out(line(row, header: false)) }
        }
    }
}

/// A table's rows in an unnamed temporary file, written a megabyte at a time and read back in
/// order: per row its number of cells, then each cell's length and UTF-8 bytes (lengths as
/// 4-byte little-endian integers).
private final class Spool {
    private let file: FileDescriptor
    private var pending: [UInt8] = []
    private var end: UInt64 = 0

    private let directory: String

    init(in directory: String) throws(LedgerError) {
        self.directory = directory
        do throws(LedgerError) {
            file = try FileDescriptor.anonymous(in: directory, prefix: "ledger-table")
        } catch {
            throw Self.failed("none can be made in \(directory)", error)
        }
    }

    private static func failed(_ what: String, _ error: LedgerError) -> LedgerError {
        LedgerError(
            .io, "A table this long is kept in a temporary file until it is printed, and \(what) (\(error.message)). Set TMPDIR to a writable directory with room, or use --json, which is printed as it is made.",
            cause: error)
    }

    func add(_ row: [String]) throws(LedgerError) {
        append(row.count)
        for cell in row {
            var cell = cell
            cell.withUTF8 { utf8 in
                append(utf8.count)
                pending.append(contentsOf: utf8)
            }
        }
        if pending.count >= 1 << 20 { try flush() }
    }

    private func append(_ length: Int) {
        withUnsafeBytes(of: UInt32(length).littleEndian) { pending.append(contentsOf: $0) }
    }

    private func flush() throws(LedgerError) {
        do throws(LedgerError) {
            try file.write(pending, at: end)
        } catch {
            throw Self.failed("the one in \(directory) cannot be written", error)
        }
        end += UInt64(pending.count)
        pending.removeAll(keepingCapacity: true)
    }

    /// Calls `body` with each row, in the order added.
    func forEachRow(_ body: ([String]) -> Void) throws(LedgerError) {
        try flush()
        var buffer: [UInt8] = []
        var position = 0
        var read: UInt64 = 0
        /// The next `count` bytes, read on from the file as needed.
        func take(_ count: Int) throws(LedgerError) -> ArraySlice<UInt8> {
            if position + count > buffer.count {
                buffer.removeFirst(position)
                position = 0
                let more = try file.read(at: read, count: max(count - buffer.count, 1 << 20))
                read += UInt64(more.count)
                buffer += more
                guard count <= buffer.count else {
                    throw LedgerError(.io, "The temporary file \(file.path) that held the table's rows ended early: something changed it. Run the command again.")
                }
            }
            defer { position += count }
            return buffer[position..<(position + count)]
        }
        func length() throws(LedgerError) -> Int {
            Int(try take(4).withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(as: UInt32.self)) })
        }
        while read < end || position < buffer.count {
            var row: [String] = []
            for _ in 0..<(try length()) { row.append(String(decoding: try take(try length()), as: UTF8.self)) }
            body(row)
        }
    }
}
