@testable import LedgerCLI
import LedgerCore
import LedgerStore
import Testing

@Suite("Tables")
struct TableTests {
    /// `rows` printed by a table that keeps `keptInMemory` bytes of cells in memory.
    func printed(_ rows: [[String]], keptInMemory: Int, colour: Bool = false) throws -> [String] {
        var table = Table(header: ["ID", "STATUS", "TEXT"])
        table.keptInMemory = keptInMemory
        table.paint[1] = { "<\($0)>" }
        for row in rows { try table.append(row) }
        #expect(table.count == rows.count)
        var lines: [String] = []
        try table.print(style: Style(enabled: colour)) { lines.append($0) }
        return lines
    }

    @Test("a table printed from its temporary file is line for line the one kept in memory, whatever the cells")
    func spooledSameAsInMemory() throws {
        var random = SplitMix64(seed: 3)
        let alphabet = Array("abc é€😀\t\"\\") + ["\u{0}"]
        var rows = (0..<8000).map { i -> [String] in
            let length = Int(random.next() % (i % 10 == 0 ? 3000 : 40))
            let text = String((0..<length).map { _ in alphabet[Int(random.next() % UInt64(alphabet.count))] })
            return ["fact-\(i)", i % 3 == 0 ? "" : "disputed", text]
        }
        // A cell longer than the megabyte the file is read back by, and megabytes in all.
        rows[4321][2] = String(repeating: "€", count: 600_000)
        #expect(rows.reduce(0) { $0 + $1.reduce(0) { $0 + $1.utf8.count } } > 3 << 20)
        let inMemory = try printed(rows, keptInMemory: .max)
        #expect(inMemory.count == rows.count + 1)
        // Spilled from the first row on, part way, and never: the same lines.
        #expect(try printed(rows, keptInMemory: 0) == inMemory)
        #expect(try printed(rows, keptInMemory: 50_000) == inMemory)
        // Widths cover the longest cell of each column, wherever it was kept.
        let widest = rows.map { $0[0].count }.max()!
        #expect(inMemory.allSatisfy { $0.count > widest })
        #expect(inMemory[1].hasPrefix("fact-0" + String(repeating: " ", count: widest - 6) + "  "))
        #expect(try printed(rows, keptInMemory: 0, colour: true) == (try printed(rows, keptInMemory: .max, colour: true)))
        // Rows with more cells than the header (not padded), and none at all.
        let odd = [["a", "b", "c", "d", "e"], [], ["x"]]
        #expect(try printed(odd, keptInMemory: 0) == (try printed(odd, keptInMemory: .max)))
        #expect(try printed(odd, keptInMemory: 0)[1] == "a   <b>       c     d  e")
    }

    @Test("a long table with no temporary directory to spill to says where it tried and what to do")
    func noTemporaryDirectory() throws {
        var table = Table(header: ["A"])
        table.keptInMemory = 40
        table.temporaryDirectory = "/nonexistent/ledger-test"
        try table.append(["short"])
        do {
            try table.append(["a cell long enough to spill"])
            Issue.record("a table that could not spill its rows took another")
        } catch {
            #expect(error.code == .io)
            #expect(error.message.contains("/nonexistent/ledger-test") && error.message.contains("TMPDIR") && error.message.contains("--json"))
        }
    }
}
