import Foundation
import LedgerCore
@testable import LedgerStore
import Testing

@Suite("Reading the log in stretches on several threads")
struct StretchTests {
    /// A ledger of 40 records, and each record's sequence number and bytes as read in order.
    static func ledger() throws -> (Fixture, Ledger, [(UInt64, [UInt8])]) {
        let f = try Fixture()
        for i in 0..<7 { try f.append(["type": "fact.opened", "id": "open-f\(i)", "fact": "f\(i)", "proposition": String(repeating: "p", count: (i + 1) * 90)], as: "inv") }
        try f.append((0..<28).map { i in
            try f.sign(["type": "claim.asserted", "id": "c\(i)", "claim": "c\(i)", "fact": "f\(i % 7)", "stance": "affirms", "statement": "s\(i)"], as: "inv")
        })
        let ledger = try Ledger(directory: f.directory)
        var records: [(UInt64, [UInt8])] = []
        try ledger.forEachRecord { stored in
            records.append((stored.sequence, stored.bytes))
            return true
        }
        #expect(records.count == 40)
        return (f, ledger, records)
    }

    @Test("stretches of any size cover exactly the records asked for, in order, with their bytes")
    func cover() throws {
        let (_, ledger, records) = try Self.ledger()
        var reader = StretchReader(ledger: ledger)
        for (start, stop, size) in [(0, 40, 1), (0, 40, 7), (5, 40, 64), (13, 14, 3), (39, 40, 2), (3, 30, 9)] as [(UInt64, UInt64, UInt64)] {
            let stretches = try ledger.stretches(from: start, to: stop, records: size)
            #expect(stretches.first?.first == start && stretches.allSatisfy { $0.count <= size && $0.count > 0 })
            #expect(zip(stretches, stretches.dropFirst()).allSatisfy { $0.end == $1.offset && $0.first + $0.count == $1.first })
            var seen: [(UInt64, [UInt8])] = []
            for stretch in stretches {
                try reader.forEachRecord(in: stretch) { sequence, bytes in seen.append((sequence, Array(bytes))) }
            }
            let expected = records[Int(start)..<Int(stop)]
            #expect(seen.map(\.0) == expected.map(\.0) && seen.map(\.1) == expected.map(\.1), "\(start)..<\(stop) by \(size)")
        }
        #expect(try ledger.stretches(from: 40, to: 50, records: 4).isEmpty)
    }

    @Test("a stretch that does not hold exactly its records is refused, naming where")
    func wrongStretches() throws {
        let (_, ledger, records) = try Self.ledger()
        var reader = StretchReader(ledger: ledger)
        let stretch = try #require(try ledger.stretches(from: 10, to: 20, records: 10).first)
        let second = UInt64(records[10].1.count + 1)
        let forged: [(LogStretch, String)] = [
            // One record fewer than its bytes hold.
            (LogStretch(first: 10, count: 9, offset: stretch.offset, end: stretch.end), "The log holds more than entries 10 to 18 before byte \(stretch.end)"),
            // One record more than its bytes hold.
            (LogStretch(first: 10, count: 11, offset: stretch.offset, end: stretch.end), "The log does not hold entry 20 where it should (byte \(stretch.end))"),
            // Starting one record late, under the first one's number.
            (LogStretch(first: 10, count: 9, offset: stretch.offset + second, end: stretch.end), "The log does not hold entry 10 where it should (byte \(stretch.offset + second))"),
            // Starting inside a record.
            (LogStretch(first: 10, count: 10, offset: stretch.offset + 1, end: stretch.end), "The log does not hold entry 10 where it should"),
            // Ending inside a record.
            (LogStretch(first: 10, count: 10, offset: stretch.offset, end: stretch.end - 2), "The log does not hold entry 19 where it should"),
        ]
        for (bad, message) in forged {
            var delivered = 0
            let error = #expect(throws: LedgerError(.damagedLog, "")) { try reader.forEachRecord(in: bad) { _, _ in delivered += 1 } }
            #expect(error?.message.hasPrefix(message) == true, "\(error?.message ?? "")")
            #expect(delivered <= 10)
        }
        // The reader still reads a good stretch after refusing bad ones.
        var count = 0
        try reader.forEachRecord(in: stretch) { _, _ in count += 1 }
        #expect(count == 10)
    }

    @Test("a record changed after the stretches were cut is refused where it is met")
    func changedLog() throws {
        let (f, ledger, records) = try Self.ledger()
        let stretches = try ledger.stretches(from: 0, to: 40, records: 8)
        // Entry 20's sequence number, rewritten as 21 in place.
        try Self.overwrite(entry: 20, at: "{\"seq\":2".utf8.count, with: "1", in: f, records)
        var reader = StretchReader(ledger: ledger)
        var read: [UInt64] = []
        let error = #expect(throws: LedgerError(.damagedLog, "")) {
            for stretch in stretches { try reader.forEachRecord(in: stretch) { sequence, _ in read.append(sequence) } }
        }
        #expect(error?.message.hasPrefix("The log does not hold entry 20 where it should") == true, "\(error?.message ?? "")")
        #expect(read == Array(0..<20))
    }

    /// Writes `text` over the log's bytes at byte `at` of entry `n`'s line.
    static func overwrite(entry n: Int, at: Int, with text: String, in f: Fixture, _ records: [(UInt64, [UInt8])]) throws {
        let offset = records[..<n].reduce(0) { $0 + $1.1.count + 1 } + at
        let log = try #require(FileHandle(forUpdatingAtPath: f.directory + "/log"))
        try log.seek(toOffset: UInt64(offset))
        log.write(Data(text.utf8))
        try log.close()
    }

    /// Changes one character of entry `n`'s signature in place: the same length, still a record,
    /// but another entry id, which breaks the chain at the entry after it.
    static func changeSignature(of n: Int, in f: Fixture, _ records: [(UInt64, [UInt8])]) throws {
        let text = String(decoding: records[n].1, as: UTF8.self)
        let at = try #require(text.range(of: "\"sig\":\"")).upperBound.utf16Offset(in: text)
        try overwrite(entry: n, at: at, with: records[n].1[at] == UInt8(ascii: "A") ? "B" : "A", in: f, records)
    }

    @Test("a record changed in place is read the same wherever the stretches are cut, as a sequential read reads it")
    func changedInPlace() throws {
        let (f, _, records) = try Self.ledger()
        try Self.changeSignature(of: 20, in: f, records)
        let ledger = try Ledger(directory: f.directory)
        var sequential: [[UInt8]] = []
        try ledger.forEachRecord { stored in
            sequential.append(stored.bytes)
            return true
        }
        #expect(sequential[20] != records[20].1)
        var reader = StretchReader(ledger: ledger)
        for size in [1, 2, 3, 4, 5, 10, 20, 40] as [UInt64] {
            for (start, stop) in [(0, 40), (21, 40), (0, 21), (19, 21)] as [(UInt64, UInt64)] {
                var read: [[UInt8]] = []
                for stretch in try ledger.stretches(from: start, to: stop, records: size) {
                    try reader.forEachRecord(in: stretch) { _, bytes in read.append(Array(bytes)) }
                }
                #expect(read == Array(sequential[Int(start)..<Int(stop)]), "\(start)..<\(stop) by \(size)")
            }
        }
        #expect(!ledger.report.indexRebuilt)
        // Starting at the changed record itself reads it through the index, which no longer
        // matches it: refused, as a sequential read starting there refuses it.
        #expect(throws: LedgerError(.damagedLog, "")) { try ledger.forEachRecord(from: 20) { _ in true } }
        #expect(throws: LedgerError(.damagedLog, "")) { try ledger.stretches(from: 20, to: 40, records: 4) }
    }

    @Test("a reader whose index cannot be rebuilt from a damaged log stays usable, and says so again")
    func failedRebuild() throws {
        let (f, _, records) = try Self.ledger()
        try Self.changeSignature(of: 8, in: f, records)
        let ledger = try Ledger(directory: f.directory)
        // Entry 8's id no longer matches the index: the index is rebuilt, which finds the chain broken.
        let first = #expect(throws: LedgerError(.damagedLog, "")) { try ledger.record(at: 8) }
        #expect(first?.message.contains("entry 9 links previous entry") == true && first?.message.contains("but entry 8 is") == true, "\(first?.message ?? "")")
        #expect(ledger.count == 40)
        #expect(try ledger.record(at: 0).bytes == records[0].1)
        #expect(try ledger.record(at: 39).bytes == records[39].1)
        #expect(throws: LedgerError(.damagedLog, "")) { try ledger.record(at: 8) }
    }
}
