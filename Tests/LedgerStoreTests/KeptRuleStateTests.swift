import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
@testable import LedgerStore
import Testing

@Suite("The writer's rule state kept between opens")
struct KeptRuleStateTests {
    typealias Statements = RuleStateStorageTests.Statements

    /// A ledger of `count` valid random statements, and a copy of it beside it.
    static func twoLedgers(seed: UInt64, count: Int) throws -> (kept: Fixture, genesis: String) {
        let f = try RuleStateStorageTests.ledger(seed: seed, count: count, breakRules: false)
        let copy = f.root.appendingPathComponent("copy").path
        try FileManager.default.copyItem(atPath: f.directory, toPath: copy)
        return (f, copy)
    }

    /// Two ledgers as ``twoLedgers(seed:count:)``, the first with its rule state kept, and then
    /// `more` appended to both by writers that do not keep it again (`a` the first's, `b` the copy's).
    static func keptThenMore(
        seed: UInt64, count: Int, _ more: (_ f: Fixture, _ a: LedgerWriter, _ b: LedgerWriter) throws -> Void
    ) throws -> (kept: Fixture, genesis: String, path: String) {
        let (f, copy) = try twoLedgers(seed: seed, count: count)
        _ = try LedgerWriter(directory: f.directory, rulesStateRefresh: 10)
        try more(f, try LedgerWriter(directory: f.directory, rulesStateRefresh: .max), try LedgerWriter(directory: copy, rulesStateRefresh: .max))
        return (f, copy, Ledger.Layout(directory: f.directory).rulesState)
    }

    /// Where a saved state's tables begin in `bytes`, after its header and the header's checksum.
    static func tablesStart(_ bytes: Data) -> Int { SavedState.tablesStart(headerEnd: 16 + SavedState.headerLength(bytes)) }

    @Test("a writer opened from its kept rule state replays only the records after it, and accepts and refuses exactly what one replaying the whole log does")
    func sameAnswersFromKeptState() throws {
        let (f, copy) = try Self.twoLedgers(seed: 31, count: 150)
        let keptPath = Ledger.Layout(directory: f.directory).rulesState
        let size = try Ledger(directory: f.directory).count
        // The first open replays everything and keeps the state; the second starts from it.
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: 10).replayedFrom == 0)
        #expect(FileManager.default.fileExists(atPath: keptPath))
        // No kept state below the refresh: small ledgers replay from genesis each time.
        #expect(try LedgerWriter(directory: copy, rulesStateRefresh: .max).replayedFrom == 0)
        #expect(!FileManager.default.fileExists(atPath: Ledger.Layout(directory: copy).rulesState))
        for round in 0..<3 {
            let fromKept = try LedgerWriter(directory: f.directory, ruleState: RuleStateStorage(recordsInMemory: 7), rulesStateRefresh: 10)
            let fromGenesis = try LedgerWriter(directory: copy, rulesStateRefresh: .max)
            #expect(fromKept.replayedFrom > 0 && fromKept.replayedFrom >= size, "round \(round)")
            #expect(fromGenesis.replayedFrom == 0)
            #expect(fromKept.state.count == fromGenesis.state.count && fromKept.range.root == fromGenesis.range.root)
            try RuleStateStorageTests.sameAnswers(f, fromKept, fromGenesis, seed: 40 + UInt64(round), rounds: 40)
        }
        #expect(try f.logBytes() == [UInt8](Data(contentsOf: URL(fileURLWithPath: copy + "/log"))))
    }

    @Test("a kept rule state of another log, of a log rewritten before its size, unreadable or damaged, is not relied on: the writer answers as from genesis")
    func keptStateNotRelied() throws {
        let (f, copy) = try Self.twoLedgers(seed: 32, count: 120)
        let keptPath = Ledger.Layout(directory: f.directory).rulesState
        _ = try LedgerWriter(directory: f.directory, rulesStateRefresh: 10)
        let good = try Data(contentsOf: URL(fileURLWithPath: keptPath))

        // Another ledger's: its last entry id is not this log's.
        let other = try RuleStateStorageTests.ledger(seed: 33, count: 120, breakRules: false)
        _ = try LedgerWriter(directory: other.directory, rulesStateRefresh: 10)
        try FileManager.default.removeItem(atPath: keptPath)
        try FileManager.default.copyItem(atPath: Ledger.Layout(directory: other.directory).rulesState, toPath: keptPath)
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == 0)
        // Cut short, or not a state at all.
        for bytes in [good.prefix(100), Data("not a state".utf8)] {
            try bytes.write(to: URL(fileURLWithPath: keptPath))
            #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == 0)
        }
        // A stored tree with another root at its size (as if the log had been rewritten before
        // it): not this log's state any more (and the tree, a cache, is rebuilt from the log).
        try good.write(to: URL(fileURLWithPath: keptPath))
        for level in try FileManager.default.contentsOfDirectory(atPath: f.directory + "/tree") where level != "level-00" {
            let path = f.directory + "/tree/" + level
            var nodes = try Data(contentsOf: URL(fileURLWithPath: path))
            nodes[0] ^= 1
            try nodes.write(to: URL(fileURLWithPath: path))
        }
        let state = try SavedState(path: keptPath)
        #expect(try CompactRange(StoredTreeReader(directory: f.directory + "/tree")!, size: state.count).root != state.root)
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == 0)
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == state.count)

        // A damaged byte anywhere in its tables: either the open finds it and replays from
        // genesis, or it goes unread; the writer's answers stay those of a replay from genesis,
        // or an append is refused naming the kept state, with nothing written.
        let headerEnd = 16 + Int(good[8]) + Int(good[9]) << 8 + 32
        var refusals = 0
        var fellBack = 0
        for (n, offset) in stride(from: headerEnd + 8, to: good.count, by: max(1, (good.count - headerEnd) / 12)).enumerated() {
            var flipped = good
            flipped[offset] ^= 0x04
            try flipped.write(to: URL(fileURLWithPath: keptPath))
            let fromKept = try LedgerWriter(directory: f.directory, rulesStateRefresh: .max)
            let fromGenesis = try LedgerWriter(directory: copy, rulesStateRefresh: .max)
            if fromKept.replayedFrom == 0 { fellBack += 1 }
            var statements = Statements(seed: 50 + UInt64(n), breakRules: true)
            let entries = try (0..<fromKept.ledger.count).map { try fromKept.ledger.entryID(at: $0) }
            let envelopes = try (0..<20).map { _ in
                let (event, author) = statements.next(entries: entries)
                return try f.sign(event, as: author)
            }
            for envelope in envelopes {
                let time = f.time()
                let before = try f.logBytes()
                let x = Result { try fromKept.append([envelope], acceptedAt: time) }
                if case let .failure(error as LedgerError) = x, error.code == .usage {
                    #expect(error.message.contains("rules.state") && error.message.contains("checksum"), "\(error.message)")
                    #expect(try f.logBytes() == before)
                    refusals += 1
                    break
                }
                let y = Result { try fromGenesis.append([envelope], acceptedAt: time) }
                switch (x, y) {
                case let (.success(x), .success(y)): #expect(x == y, "byte \(offset)")
                case let (.failure(x), .failure(y)): #expect((x as? LedgerError)?.message == (y as? LedgerError)?.message, "byte \(offset)")
                default: Issue.record("byte \(offset): \(x) from the kept state, \(y) from genesis")
                }
            }
            // Start the next case level again.
            try FileManager.default.removeItem(atPath: copy)
            try FileManager.default.copyItem(atPath: f.directory, toPath: copy)
            try? FileManager.default.removeItem(atPath: Ledger.Layout(directory: copy).rulesState)
        }
        #expect(fellBack > 0 && refusals < 12)
    }

    @Test("a kept rule state damaged where the records after it look ids up is dropped: the open replays the log from genesis instead")
    func damagedUnderTheReplay() throws {
        let (f, copy, keptPath) = try Self.keptThenMore(seed: 35, count: 150) { f, a, b in
            try RuleStateStorageTests.sameAnswers(f, a, b, seed: 60, rounds: 30)
        }
        // A byte of every 4 KiB block that holds only rows and strings, and of every block of
        // the Bloom filters: the top fence level, read when it is opened, lies between them, so
        // the open reads it and the replay meets the damage.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: keptPath))
        let table = try SavedState(path: keptPath).tables[0]
        let tables = Self.tablesStart(bytes)
        let blockBytes = StoredTables.blockBytes
        let wholeBlocks = table.byteCount / blockBytes * blockBytes
        #expect(wholeBlocks >= 2 * blockBytes)
        let layout = table.storedLayout
        for offset in Array(stride(from: 100, to: wholeBlocks, by: blockBytes)) + Array(stride(from: layout.idFilter.offset + 100, to: layout.covered, by: blockBytes)) {
            bytes[tables + offset] ^= 0x20
        }
        try bytes.write(to: URL(fileURLWithPath: keptPath))
        try Self.expectFellBack(f, copy, keptPath, ruleState: RuleStateStorage(), refresh: .max, seed: 61)
    }

    /// The open reads only the kept state's header and top fence levels; an append's rules read
    /// the rest. Damage met there was an error (usage) on every append until the file was removed.
    @Test("a kept rule state damaged where an append's rules look ids up is dropped: the batch is checked again against the log, and answered as from genesis")
    func damagedUnderAnAppend() throws {
        let (f, copy, keptPath) = try Self.keptThenMore(seed: 36, count: 150) { _, _, _ in }
        var bytes = try Data(contentsOf: URL(fileURLWithPath: keptPath))
        let table = try SavedState(path: keptPath).tables[0]
        let tables = Self.tablesStart(bytes)
        let blockBytes = StoredTables.blockBytes
        let layout = table.storedLayout
        for offset in Array(stride(from: 100, to: table.byteCount / blockBytes * blockBytes, by: blockBytes))
            + Array(stride(from: layout.idFilter.offset + 100, to: layout.covered, by: blockBytes))
        {
            bytes[tables + offset] ^= 0x20
        }
        try bytes.write(to: URL(fileURLWithPath: keptPath))
        let writer = try LedgerWriter(directory: f.directory, rulesStateRefresh: .max)
        #expect(writer.replayedFrom > 0, "opened from the kept state, whose damage the open does not read")
        let refused = try RuleStateStorageTests.sameAnswers(f, writer, try LedgerWriter(directory: copy, rulesStateRefresh: .max), seed: 62, rounds: 30)
        #expect(refused < 30)
        #expect(!FileManager.default.fileExists(atPath: keptPath))
        #expect(writer.ledger.report.messages.contains { $0.contains("kept rule state could not be read") && $0.contains("checksum") })
    }

    /// Opens `f`'s writer, whose kept state at `keptPath` is damaged, and expects it to have been
    /// dropped and the log replayed from genesis (and kept again if `refresh` says so): the writer
    /// answers as the copy's does.
    static func expectFellBack(_ f: Fixture, _ copy: String, _ keptPath: String, ruleState: RuleStateStorage, refresh: UInt64, seed: UInt64) throws {
        let fromKept = try LedgerWriter(directory: f.directory, ruleState: ruleState, rulesStateRefresh: refresh)
        #expect(fromKept.replayedFrom == 0)
        // Said, not silent: damage to a file the ledger wrote can mean a failing disk.
        #expect(fromKept.ledger.report.droppedRuleState != nil)
        if refresh == .max {
            #expect(!FileManager.default.fileExists(atPath: keptPath))
        } else {
            let again = try SavedState(path: keptPath)
            #expect(again.count == fromKept.ledger.count)
            try again.tables[0].checkWhole()
        }
        try RuleStateStorageTests.sameAnswers(f, fromKept, try LedgerWriter(directory: copy, rulesStateRefresh: .max), seed: seed, rounds: 20)
    }

    @Test(
        "a kept rule state whose damage a merge finds, of the replay's tables or to keep it again, is dropped too: the open replays the log from genesis",
        arguments: [false, true])
    func damageFoundByMerge(keepingAgain: Bool) throws {
        // After it only new facts: the replay's lookups are of new ids, answered by the filters
        // (but for about 1%), and its own tables grow past the kept one and are merged with it.
        let (f, copy, keptPath) = try Self.keptThenMore(seed: 38, count: 100) { f, a, b in
            for i in 0..<300 {
                let envelope = try f.sign(["type": "fact.opened", "id": "open-new-\(i)", "fact": "new-\(i)", "proposition": "P\(i)"], as: "inv")
                let time = f.time()
                #expect(try a.append([envelope], acceptedAt: time) == b.append([envelope], acceptedAt: time))
            }
        }
        // A byte of its first block of rows, which the open does not read (the top fence levels
        // lie after the rows), but a merge does, reading it whole: one that moves the replay's
        // state to disk every 4 records, or the one that keeps it again after 10 or more.
        var bytes = try Data(contentsOf: URL(fileURLWithPath: keptPath))
        #expect(try SavedState(path: keptPath).tables[0].byteCount >= 2 * StoredTables.blockBytes)
        bytes[Self.tablesStart(bytes) + 100] ^= 0x20
        try bytes.write(to: URL(fileURLWithPath: keptPath))
        try Self.expectFellBack(
            f, copy, keptPath, ruleState: keepingAgain ? RuleStateStorage() : RuleStateStorage(recordsInMemory: 4), refresh: keepingAgain ? 10 : .max,
            seed: 64)
    }

    @Test("a kept rule state is not used once the log's entry at its size has changed, even with the tree and the log's end as they were")
    func entryAtItsSizeChanged() throws {
        let (f, _, path) = try Self.keptThenMore(seed: 36, count: 120) { f, a, b in
            try RuleStateStorageTests.sameAnswers(f, a, b, seed: 62, rounds: 10)
        }
        let kept = try SavedState(path: path)
        // The record at its size, accepted a second later: its entry id changes, the chain after
        // it breaks, and the index and tree still agree with the log's last entry.
        var lines = try f.logLines()
        let at = Int(kept.count) - 1
        var record = try Record(stored: lines[at])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[at] = record.encoded()
        try f.writeLines(lines)
        #expect(throws: LedgerError(.damagedLog, "")) { try LedgerWriter(directory: f.directory, rulesStateRefresh: .max) }
    }

    @Test("a kept rule state is not used once a line was put into the log before its size, the index pointing past it")
    func linePutInBeforeItsSize() throws {
        let (f, _, path) = try Self.keptThenMore(seed: 38, count: 120) { f, a, b in
            try RuleStateStorageTests.sameAnswers(f, a, b, seed: 63, rounds: 10)
        }
        let kept = try SavedState(path: path)
        let log = f.directory + "/log"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: log))
        let lines = try f.logLines()
        let at = lines.prefix(Int(kept.count) - 1).reduce(0) { $0 + $1.count + 1 }
        let junk = Data(#"{"not":"a record"}"#.utf8 + [0x0a])
        try (bytes.prefix(at) + junk + bytes.dropFirst(at)).write(to: URL(fileURLWithPath: log))
        var index = [UInt8](try Data(contentsOf: URL(fileURLWithPath: f.directory + "/index")))
        for entry in (Int(kept.count) - 1)..<(index.count / 16) {
            let offset = index[(16 * entry)..<(16 * entry + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } + UInt64(junk.count)
            for byte in 0..<8 { index[16 * entry + byte] = UInt8(truncatingIfNeeded: offset >> (56 - 8 * UInt64(byte))) }
        }
        try Data(index).write(to: URL(fileURLWithPath: f.directory + "/index"))
        // The kept state's last record reads as before, through the index, as does every one
        // after it; the log from genesis holds a line that is no record.
        #expect(try Ledger(directory: f.directory).record(at: kept.count - 1).bytes == lines[Int(kept.count) - 1])
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try LedgerWriter(directory: f.directory, rulesStateRefresh: .max) }
        #expect(refusal?.message.contains("byte \(at)") == true, "\(String(describing: refusal))")
    }

    @Test("a rule state saved under other append rules is refused when opened (as verify --state opens it) and not used by the writer")
    func otherRules() throws {
        let f = try RuleStateStorageTests.ledger(seed: 37, count: 40, breakRules: false)
        let path = Ledger.Layout(directory: f.directory).rulesState
        _ = try LedgerWriter(directory: f.directory, rulesStateRefresh: 10)
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = 16 + SavedState.headerLength(bytes)
        let header = String(decoding: bytes[16..<headerEnd], as: UTF8.self)
        #expect(header.contains(LedgerState.rules))
        // The same rules but for their revision, with the header's checksum made again.
        let revision = String(LedgerState.rules.prefix { $0 != ";" })
        let other = Array(header.replacingOccurrences(of: revision + ";", with: revision.dropLast() + (revision.last == "0" ? "9" : "0") + ";").utf8)
        #expect(other.count == headerEnd - 16 && other != Array(header.utf8))
        bytes.replaceSubrange(16..<headerEnd, with: other)
        bytes.replaceSubrange(headerEnd..<(headerEnd + 32), with: SHA256.hash(bytes[..<headerEnd]).rawRepresentation)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect {
            try SavedState(path: path)
        } throws: { error in
            (error as? LedgerError)?.code == .usage && (error as? LedgerError)?.message.contains("other append rules") == true
        }
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == 0)
    }

    @Test("repair removes the kept rule state, and an open removes what an interrupted write of it left")
    func repairAndLeftovers() throws {
        let f = try RuleStateStorageTests.ledger(seed: 34, count: 40, breakRules: false)
        let layout = Ledger.Layout(directory: f.directory)
        _ = try LedgerWriter(directory: f.directory, rulesStateRefresh: 10)
        #expect(FileManager.default.fileExists(atPath: layout.rulesState))
        let leftover = layout.rulesState + ".tmp-12345"
        try Data("partial".utf8).write(to: URL(fileURLWithPath: leftover))
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: 10).replayedFrom > 0)
        #expect(!FileManager.default.fileExists(atPath: leftover))
        _ = try Repair.rebuildDerived(directory: f.directory)
        #expect(!FileManager.default.fileExists(atPath: layout.rulesState))
        #expect(try LedgerWriter(directory: f.directory, rulesStateRefresh: .max).replayedFrom == 0)
    }
}
