import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore
import Testing

@Suite("Reliability")
struct ReliabilityTests {
    @Test("a torn write cut at every byte offset of the last record recovers to the record before it")
    func tornAtEveryOffset() throws {
        let f = try Fixture()
        try f.populate()
        let full = try f.logBytes()
        let last = try f.logLines().last ?? []
        let lastStart = full.count - last.count - 1
        let expected = try Ledger(directory: f.directory).entryID(at: 8)
        // Every length from one byte of the record up to the whole record without its newline.
        let index = try Data(contentsOf: URL(fileURLWithPath: f.directory + "/index"))
        for cut in 1...last.count {
            try f.simulateCrash(log: Array(full[..<(lastStart + cut)]), committed: 9)
            let writer = try f.writer()
            #expect(writer.ledger.count == 9, "cut at \(cut)")
            #expect(writer.ledger.lastEntryID == expected, "cut at \(cut)")
            #expect(writer.ledger.report.cut && writer.ledger.report.tornBytes == UInt64(cut), "cut at \(cut)")
            #expect(try f.logBytes() == Array(full[..<lastStart]), "cut at \(cut)")
            try f.writeLog(full)
            try index.write(to: URL(fileURLWithPath: f.directory + "/index"))
        }
    }

    @Test("repair --rebuild-derived rewrites the index from the log and never changes the log")
    func repairRebuildsIndex() throws {
        let f = try Fixture()
        try f.populate()
        let index = URL(fileURLWithPath: f.directory + "/index")
        let good = try Data(contentsOf: index)
        let log = try f.logBytes()
        try Data(repeating: 0xee, count: 100).write(to: index)
        let report = try Repair.rebuildDerived(directory: f.directory)
        #expect(report.records == 10 && report.indexChanged)
        #expect(try Data(contentsOf: index) == good)
        #expect(try f.logBytes() == log)
        let level0 = URL(fileURLWithPath: f.directory + "/tree/level-00")
        let goodTree = try Data(contentsOf: level0)
        try Data(repeating: 0, count: goodTree.count).write(to: level0)
        // Snapshots are caches: repair removes every one, of this format or an older one.
        try FileManager.default.createDirectory(atPath: f.directory + "/snapshots", withIntermediateDirectories: true)
        for name in ["disputed-facts-v2-00000000000000000009.snapshot", "disputed-facts-v1-00000000000000000009.json"] {
            try Data("x".utf8).write(to: URL(fileURLWithPath: f.directory + "/snapshots/" + name))
        }
        _ = try Repair.rebuildDerived(directory: f.directory)
        #expect(try Data(contentsOf: level0) == goodTree)
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.directory + "/snapshots").isEmpty)
        // A torn tail is reported and left for the next writer.
        try f.writeLog(log + Array("{\"seq\":10,".utf8))
        let torn = try Repair.rebuildDerived(directory: f.directory)
        // Repair holds the lock itself: the tail is an interrupted write, not an append in progress.
        #expect(torn.messages.count == 1 && torn.messages[0].contains("interrupted write") && torn.messages[0].contains("The next write command cuts it"), "\(torn.messages)")
        #expect(try f.logBytes() == log + Array("{\"seq\":10,".utf8))
        // Damage before the tail: refused, log untouched.
        var lines = try f.logLines()
        lines.swapAt(2, 3)
        try f.writeLines(lines)
        let damaged = try f.logBytes()
        try FileManager.default.removeItem(at: index)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try Repair.rebuildDerived(directory: f.directory) }
        #expect(refusal?.message.contains("a complete record with sequence 3 stands where entry 2 should") == true, "\(refusal?.message ?? "")")
        #expect(try f.logBytes() == damaged)
    }

    @Test("a flipped bit in any file of a ledger directory is reported by verify, or is a cache that changes no answer")
    func bitFlipWalk() throws {
        let f = try Fixture()
        try f.populate()
        let blobs = BlobStore(ledgerDirectory: f.directory)
        let document = f.root.appendingPathComponent("doc")
        try Data("doc".utf8).write(to: document)
        _ = try blobs.add(file: document.path)
        _ = try f.writer().signCheckpoint(with: Fixture.key(77))
        let checkpoint = try #require(FileManager.default.contentsOfDirectory(atPath: f.directory + "/checkpoints").first { $0.hasSuffix(".note") })
        let treeFiles = try FileManager.default.contentsOfDirectory(atPath: f.directory + "/tree").sorted().map { "tree/" + $0 }
        let files = ["log", "index", "FORMAT", "blobs/sha256/" + SHA256.hash(Array("doc".utf8)).hexString, "checkpoints/" + checkpoint, "checkpoints/log.vkey"] + treeFiles
        let reference = try Ledger(directory: f.directory)
        let answers = try (0..<reference.count).map { try reference.record(at: $0).bytes }
        var trials = 0
        for name in files {
            let url = URL(fileURLWithPath: f.directory + "/" + name)
            try? FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: url.path)
            let original = try Data(contentsOf: url)
            for position in stride(from: 0, to: original.count, by: max(1, original.count / 150)) {
                for bit in [0, 5] {
                    var flipped = original
                    flipped[position] ^= UInt8(1 << bit)
                    try flipped.write(to: url)
                    trials += 1
                    let outcome = Result { () throws(LedgerError) in try Verifier.verify(directory: f.directory) }
                    let report = try? outcome.get()
                    if case let .failure(error) = outcome {
                        // Refusing to verify at all is a report too, if it names the file.
                        #expect(name == "FORMAT" || error.message.contains(name), "\(name) byte \(position): \(error.message)")
                    }
                    switch name {
                    case "tree/level-00":
                        // A stored leaf is the entry id as written: a different one is evidence,
                        // but the checkpoint signed over every entry proves the log.
                        #expect(report?.isIntact == true, "\(name) byte \(position)")
                        #expect(report?.notes.contains { $0.hasPrefix("Entry \(position / 32): ") && $0.contains("proves the log there") } == true, "\(name) byte \(position)")
                    case _ where name.hasPrefix("tree/"):
                        // Interior nodes are a cache: verify notes where it differs; the log is intact.
                        #expect(report?.isIntact == true, "\(name) byte \(position)")
                        #expect(report?.notes.contains { $0.contains("Merkle tree") } == true, "\(name) byte \(position) went unnoticed")
                    case "checkpoints/log.vkey":
                        #expect(report == nil || report?.isIntact == false, "\(name) byte \(position) went unnoticed")
                    case "index" where position % 16 >= 12:
                        // The entry id prefix the index recorded when the record was written: a
                        // different one is evidence that the record changed, but the checkpoint
                        // proves the log (uncovered entries: StoreTests, repairKeepsEvidence).
                        #expect(report?.isIntact == true, "\(name) byte \(position)")
                        #expect(report?.notes.contains { $0.hasPrefix("Entry \(position / 16): ") && $0.contains("proves the log there") } == true, "\(name) byte \(position)")
                    case "index":
                        // Offsets and lengths are a cache: verify notes it, and every answer is still the log's.
                        #expect(report?.isIntact == true, "\(name) byte \(position)")
                        let ledger = try Ledger(directory: f.directory)
                        #expect(try (0..<ledger.count).map { try ledger.record(at: $0).bytes } == answers, "\(name) byte \(position)")
                    case "FORMAT":
                        #expect(report == nil, "\(name) byte \(position): not accepted as a ledger")
                    default:
                        #expect(report?.isIntact == false, "\(name) byte \(position) went unnoticed")
                        let first = report?.findings.first
                        if name == "log" {
                            #expect(first?.sequence != nil)
                        } else if name.hasPrefix("checkpoints/") {
                            #expect(first?.code == .invalidCheckpoint && first?.message.contains(checkpoint) == true, "\(name) byte \(position)")
                        } else {
                            #expect(first?.code == .blobMismatch && first?.message.contains(name) == true, "\(name) byte \(position)")
                        }
                    }
                }
            }
            try original.write(to: url)
        }
        #expect(trials > 1000)
        let clean = try Verifier.verify(directory: f.directory)
        #expect(clean.isIntact && clean.checkpoints == 1 && clean.notes.isEmpty, "\(clean.notes)")
    }

    @Test("symbolic links inside the ledger directory are never followed")
    func symlinks() throws {
        let f = try Fixture()
        let outside = f.root.appendingPathComponent("outside")
        try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: f.directory + "/blobs", withDestinationPath: outside.path)
        let document = f.root.appendingPathComponent("doc")
        try Data("doc".utf8).write(to: document)
        #expect(throws: LedgerError(.io, "")) { try BlobStore(ledgerDirectory: f.directory).add(file: document.path) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty)
        // The log itself replaced by a link: refused, not read through.
        let log = f.directory + "/log"
        try FileManager.default.moveItem(atPath: log, toPath: outside.path + "/log")
        try FileManager.default.createSymbolicLink(atPath: log, withDestinationPath: outside.path + "/log")
        let refusal = #expect(throws: LedgerError(.notALedger, "")) { try Ledger(directory: f.directory) }
        #expect(refusal?.message.contains("symbolic link") == true)
        #expect(throws: LedgerError(.notALedger, "")) { try f.writer() }
    }

    /// Two adds at once that each found a changed blob would both set it aside, the second
    /// moving the first's good copy over the changed one: adds take turns under blobs/lock.
    @Test("blob add holds blobs/lock while it decides and stores, and removes what a killed add left, not what a live one writes")
    func blobAddLock() throws {
        let f = try Fixture()
        let document = f.root.appendingPathComponent("doc")
        try Data("doc".utf8).write(to: document)
        let blobs = BlobStore(ledgerDirectory: f.directory)
        _ = try blobs.add(file: document.path)
        let stored = blobs.path(for: SHA256.hash(Array("doc".utf8)))
        // The stored copy changed; another add holds the lock.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: stored)
        try Data("changed".utf8).write(to: URL(fileURLWithPath: stored))
        // Held while a second process waits for it, then let go.
        do {
            let held = try WriterLock(path: f.directory + "/blobs/lock", timeout: 0)
            let refusal = #expect(throws: LedgerError(.lockTimeout, "")) { try blobs.add(file: document.path, lockTimeout: 0) }
            #expect(refusal?.message.contains("blobs/lock") == true, "\(String(describing: refusal))")
            #expect(try Data(contentsOf: URL(fileURLWithPath: stored)) == Data("changed".utf8))
            withExtendedLifetime(held) {}
        }
        // A file a killed add left, and one a live add is writing (it holds a lock on it); then
        // the add goes on, keeps the changed copy aside and removes only the first.
        let leftover = f.directory + "/blobs/sha256/.incoming-1-abc"
        try Data("partial".utf8).write(to: URL(fileURLWithPath: leftover))
        let live = f.directory + "/blobs/sha256/.incoming-2-def"
        try Data("being written".utf8).write(to: URL(fileURLWithPath: live))
        let liveFile = open(live, O_RDONLY)
        defer { close(liveFile) }
        #expect(flock(liveFile, LOCK_EX | LOCK_NB) == 0)
        let added = try blobs.add(file: document.path, lockTimeout: 0)
        let aside = try #require(added.keptAside)
        #expect(try Data(contentsOf: URL(fileURLWithPath: aside.path)) == Data("changed".utf8))
        #expect(try Data(contentsOf: URL(fileURLWithPath: stored)) == Data("doc".utf8))
        #expect(!FileManager.default.fileExists(atPath: leftover))
        #expect(FileManager.default.fileExists(atPath: live))
    }

    @Test("a blob given through a link to the user's file is stored as a regular file")
    func blobSourceLink() throws {
        let f = try Fixture()
        let document = f.root.appendingPathComponent("doc")
        try Data("doc".utf8).write(to: document)
        let link = f.root.appendingPathComponent("link")
        try FileManager.default.createSymbolicLink(at: link, withDestinationURL: document)
        let stored = try BlobStore(ledgerDirectory: f.directory).add(file: link.path)
        #expect(stored.digest == SHA256.hash(Array("doc".utf8)))
    }
}

@Suite("Recovery edge cases")
struct RecoveryEdgeCaseTests {
    @Test("a crash that wrote a later page of a record but not an earlier one (zeros, then the rest and its newline) is a torn tail")
    func outOfOrderPages() throws {
        let f = try Fixture()
        try f.populate()
        let committed = try f.logBytes()
        let extra = try f.sign(["type": "fact.opened", "id": "late", "fact": "late", "proposition": "P"], as: "inv")
        let record = Record(sequence: 10, previous: try Ledger(directory: f.directory).lastEntryID, acceptedAt: f.time(), batchEnd: 10, envelope: extra).encoded()
        var torn = record
        for i in 0..<min(64, torn.count) { torn[i] = 0 }
        try f.writeLog(committed + torn + [0x0a])
        let writer = try f.writer()
        #expect(writer.ledger.report.cut)
        #expect(writer.ledger.count == 10)
        #expect(try f.logBytes() == committed)
    }

    /// A group commit of three records written in one `pwrite`, its sync never returned: a power
    /// loss kept the page that holds its closing record but not an earlier one.
    @Test("a crash that kept the closing record of an unsynced group commit but not a block before it is a torn tail, unless a derived file records the entries")
    func closingRecordAfterZeros() throws {
        func statements(_ f: Fixture) throws -> [Envelope] {
            try ["z1", "z2", "z3"].map { id in try f.sign(["type": "fact.opened", "id": id, "fact": id, "proposition": "P"], as: "inv") }
        }
        let f = try Fixture()
        try f.populate()
        let committed = try f.logBytes()
        var previous = try Ledger(directory: f.directory).lastEntryID
        var batch: [UInt8] = []
        let time = f.time()
        for (i, envelope) in try statements(f).enumerated() {
            let record = Record(sequence: UInt64(10 + i), previous: previous, acceptedAt: time, batchEnd: 12, envelope: envelope).encoded()
            previous = Record.entryID(of: record)
            batch += record + [0x0a]
        }
        // Zeros from inside the first record to inside the second; the third, closing, is whole.
        var torn = batch
        for i in 100..<(torn.firstIndex(of: 0x0a)! + 200) { torn[i] = 0 }
        try f.simulateCrash(log: committed + torn, committed: 10)
        let writer = try f.writer()
        #expect(writer.ledger.report.cut && writer.ledger.count == 10)
        #expect(try f.logBytes() == committed)
        #expect(try Verifier.verify(directory: f.directory).isIntact)

        // The same bytes where the index records the three entries (the sync returned, and the
        // index was written): an acknowledged entry is damaged, and nothing is cut.
        let g = try Fixture()
        try g.populate()
        let whole = try g.logBytes()
        try g.append(statements(g))
        var after = try g.logBytes()
        for i in (whole.count + 100)..<(whole.count + 900) { after[i] = 0 }
        try g.writeLog(after)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try g.writer() }
        #expect(refusal?.message.contains("Entry 10 of") == true && refusal?.message.contains("restore the log from a trusted copy") == true, "\(refusal?.message ?? "")")
        #expect(try g.logBytes() == after)
    }

    /// The last record is acknowledged but its index entry and tree leaf are not synced: after a
    /// power loss they may be gone. A byte of it changed since is then no interrupted write, and
    /// the record must not be cut as one.
    @Test("a whole last line that is no record and has no zeros in it is damage, not a torn tail: writers and readers refuse and change nothing")
    func changedLastLineIsNotCut() throws {
        let f = try Fixture()
        try f.populate()
        let lines = try f.logLines()
        var changed = lines
        let last = changed.count - 1
        changed[last][changed[last].count - 30] = 0x01
        try f.writeLines(changed)
        try? FileManager.default.removeItem(atPath: f.directory + "/index")
        try? FileManager.default.removeItem(atPath: f.directory + "/tree")
        let before = try NothingChangedTests.contents(f, ["log"])
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        #expect(refusal?.message.contains("damaged at byte \(lines.dropLast().reduce(0) { $0 + $1.count + 1 })") == true, "\(String(describing: refusal))")
        #expect(refusal?.message.contains("where entry \(last) or a later one should stand, is not a record") == true, "\(String(describing: refusal))")
        #expect(throws: LedgerError(.damagedLog, "")) { try Ledger(directory: f.directory) }
        #expect(try NothingChangedTests.contents(f, ["log"]) == before)
        // Whoever holds the lock, a line that stays as it is is damage: a writer writing over a
        // torn tail changes it within milliseconds.
        let held = try WriterLock(path: f.directory + "/lock", timeout: 0)
        #expect(throws: LedgerError(.damagedLog, "")) { try Ledger(directory: f.directory) }
        withExtendedLifetime(held) {}
        // verify names the entry.
        let findings = try Verifier.verify(directory: f.directory).findings
        #expect(findings.map(\.sequence) == [UInt64(last)], "\(findings)")
    }

    @Test("an index or tree file longer than the log stops writers and repair only where the extra entries are what a writer leaves")
    func derivedLongerThanLog() throws {
        let f = try Fixture()
        try f.populate()
        let log = try f.logBytes()
        // Zeros past the end are not records a writer could have left: a damaged cache.
        for file in ["index", "tree/level-00"] {
            let url = URL(fileURLWithPath: f.directory + "/" + file)
            let good = try Data(contentsOf: url)
            try (good + Data(repeating: 0, count: file == "index" ? 16 : 32)).write(to: url)
            let report = try Verifier.verify(directory: f.directory)
            #expect(report.isIntact && report.notes.contains { $0.contains("damaged cache") }, "\(file): \(report.findings) \(report.notes)")
            #expect(try Repair.rebuildDerived(directory: f.directory).records == 10, "\(file)")
            #expect(try Data(contentsOf: url) == good, "\(file)")
            _ = try f.writer()
            #expect(try f.logBytes() == log)
        }
        // An index entry that begins where the log ends: the entry a cut of the log removed.
        let url = URL(fileURLWithPath: f.directory + "/index")
        let good = try Data(contentsOf: url)
        // 16 bytes: offset, length and the entry id's first four bytes, big-endian.
        var lost = withUnsafeBytes(of: UInt64(log.count).bigEndian) { Data($0) }
        lost += withUnsafeBytes(of: UInt32(300).bigEndian) { Data($0) } + Data([0xab, 0xcd, 0xef, 0x01])
        let longer = good + lost
        try longer.write(to: url)
        let writer = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        #expect(writer?.message.contains("were acknowledged and are gone") == true, "\(writer?.message ?? "")")
        #expect(try Verifier.verify(directory: f.directory).findings.contains { $0.message.contains("were acknowledged and are gone") })
        let refusal = #expect(throws: LedgerError.self) { try Repair.rebuildDerived(directory: f.directory) }
        #expect(refusal?.code == .damagedLog && refusal?.message.contains("records 11 entries, but the log holds only 10 of them") == true, "\(String(describing: refusal))")
        #expect(try Data(contentsOf: url) == longer)
        try FileManager.default.removeItem(at: url)
        #expect(try Repair.rebuildDerived(directory: f.directory).records == 10)
        #expect(try Data(contentsOf: url) == good)
    }

    /// Damage to the index or tree alone, where a checkpoint signed by the log key proves the log,
    /// is a damaged cache: verify notes it and repair rebuilds it.
    @Test("an entry id the index or tree recorded differently is a note, not damage, where a signed checkpoint proves the log")
    func cacheDamageUnderCheckpoint() throws {
        let f = try Fixture()
        try f.populate()
        _ = try f.writer().signCheckpoint(with: Fixture.key(77))
        for (file, at) in [("index", 5 * 16 + 12), ("tree/level-00", 5 * 32 + 3)] {
            let url = URL(fileURLWithPath: f.directory + "/" + file)
            let good = try Data(contentsOf: url)
            var flipped = good
            flipped[at] ^= 1
            try flipped.write(to: url)
            let report = try Verifier.verify(directory: f.directory)
            #expect(report.isIntact && report.notes.contains { $0.hasPrefix("Entry 5: ") && $0.contains("proves the log there") }, "\(file): \(report.findings) \(report.notes)")
            #expect(try Repair.rebuildDerived(directory: f.directory).records == 10, "\(file)")
            #expect(try Data(contentsOf: url) == good, "\(file)")
        }
    }

    /// Without a checkpoint over it, the same flipped entry id is evidence that the record
    /// changed: the note about the file must not call it a cache for repair to rewrite.
    @Test("an index or tree that is evidence of a changed record is not called a cache to rewrite")
    func evidenceIsNotCalledCache() throws {
        for (file, at) in [("index", 5 * 16 + 12), ("tree/level-00", 5 * 32 + 3)] {
            let f = try Fixture()
            try f.populate()
            let url = URL(fileURLWithPath: f.directory + "/" + file)
            var flipped = try Data(contentsOf: url)
            flipped[at] ^= 1
            try flipped.write(to: url)
            let report = try Verifier.verify(directory: f.directory)
            #expect(report.findings.map(\.sequence) == [5] && report.findings.map(\.code) == [.damagedLog], "\(file): \(report.findings)")
            #expect(!report.notes.contains { $0.contains("rewrites it") }, "\(file): \(report.notes)")
            if file.hasPrefix("tree") {
                // The mismatch of its nodes above the leaf is noted, as evidence.
                #expect(report.notes.contains { $0.contains("evidence that entry 5 changed") && $0.contains("refuses to rewrite it") }, "\(file): \(report.notes)")
            }
            #expect(throws: LedgerError(.damagedLog, ""), "\(file)") { try Repair.rebuildDerived(directory: f.directory) }
        }
    }

    @Test("verify says an index behind the log is behind, and never calls a cut of acknowledged entries harmless")
    func messagesAboutCutsAndLag() throws {
        let f = try Fixture()
        try f.populate()
        let index = URL(fileURLWithPath: f.directory + "/index")
        let full = try Data(contentsOf: index)
        try full.prefix(full.count - 16).write(to: index)
        let behind = try Verifier.verify(directory: f.directory)
        #expect(behind.isIntact && behind.notes.contains { $0.contains("The index lists 9 records; the log has 10") }, "\(behind.notes)")
        #expect(!behind.notes.contains { $0.contains("disagrees") }, "\(behind.notes)")
        try full.write(to: index)
        // Cut inside the acknowledged last record: the index still records it.
        let log = try f.logBytes()
        try f.writeLog(Array(log.dropLast(20)))
        let cut = try Verifier.verify(directory: f.directory)
        #expect(cut.findings.contains { $0.message.contains("were acknowledged and are gone") }, "\(cut.findings)")
        #expect(!cut.findings.contains { $0.message.contains("no acknowledged entry is affected") }, "\(cut.findings)")
    }

    /// Evidence at an entry a checkpoint covers is cache damage; it must not hide evidence past the
    /// checkpoint, in verify (full or since the checkpoint) or in repair.
    @Test("cache damage a checkpoint covers hides no later evidence of a changed record, in verify, verify --since and repair")
    func coveredDamageHidesNothing() throws {
        let f = try Fixture()
        try f.populate()
        let trusted = try f.writer().signCheckpoint(with: SavedStateTests.logKey).note.encoded
        for n in 0..<3 { try f.append(["type": "claim.asserted", "id": "late-\(n)", "claim": "late-\(n)", "fact": "f1", "stance": "affirms", "statement": "Late."], as: "inv") }
        var lines = try f.logLines()
        var record = try Record(stored: lines[12])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[12] = record.encoded()
        try f.writeLines(lines)
        for (file, at) in [("index", 5 * 16 + 15), ("tree/level-00", 5 * 32 + 31)] {
            let url = URL(fileURLWithPath: f.directory + "/" + file)
            var bytes = try Data(contentsOf: url)
            bytes[at] ^= 1
            try bytes.write(to: url)
        }
        let full = try Verifier.verify(directory: f.directory, logKey: SavedStateTests.verifier().log)
        #expect(full.findings.map(\.sequence) == [12, 12] && full.findings.allSatisfy { $0.code == .damagedLog }, "\(full.findings)")
        #expect(full.notes.filter { $0.hasPrefix("Entry 5: ") && $0.contains("proves the log there") }.count == 2, "\(full.notes)")
        let since = try Verifier.verify(directory: f.directory, since: Array(trusted.utf8), verifier: SavedStateTests.verifier())
        #expect(since.report.findings.map(\.sequence) == [12, 12], "\(since.report.findings)")
        let refusal = #expect(throws: LedgerError.self) { try Repair.rebuildDerived(directory: f.directory) }
        #expect(refusal?.code == .damagedLog && refusal?.message.contains("for entry 12 when it was written") == true, "\(String(describing: refusal))")
    }

    /// The reviewed case: an acknowledged last entry cut from the log, or changed in place. The
    /// index and tree are then the only record of it; repair must not rebuild them from the log
    /// (the next append would take the lost entry's sequence number and everything would verify).
    @Test("repair refuses, changing nothing, where the index and tree record an entry the log lost or changed")
    func repairKeepsEvidence() throws {
        for change in ["cut", "changed"] {
            let f = try Fixture()
            try f.populate()
            var lines = try f.logLines()
            if change == "cut" {
                lines.removeLast()
            } else {
                var record = try Record(stored: lines[9])
                record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
                lines[9] = record.encoded()
            }
            try f.writeLines(lines)
            let files = ["index", "tree/level-00"].map { URL(fileURLWithPath: f.directory + "/" + $0) }
            let before = try files.map { try Data(contentsOf: $0) }
            let refusal = #expect(throws: LedgerError.self, "\(change)") { try Repair.rebuildDerived(directory: f.directory) }
            let expected = change == "cut" ? "entries 9…9 were acknowledged and are gone" : "for entry 9 when it was written"
            #expect(refusal?.code == .damagedLog && refusal?.message.contains(expected) == true, "\(String(describing: refusal))")
            #expect(try files.map { try Data(contentsOf: $0) } == before, "\(change)")
            #expect(throws: LedgerError(.damagedLog, ""), "\(change)") { try f.writer() }
            // With the index moved aside, the tree still records the entry as it was.
            try FileManager.default.moveItem(atPath: f.directory + "/index", toPath: f.root.appendingPathComponent("index.kept").path)
            #expect(throws: LedgerError(.damagedLog, ""), "\(change)") { try Repair.rebuildDerived(directory: f.directory) }
        }
    }
}

@Suite("Readers beside a writer")
struct ReaderBesideWriterTests {
    @Test("a reader that finds bytes past the last group commit while a writer holds the lock says an append is in progress")
    func appendInProgress() throws {
        let f = try Fixture()
        try f.populate()
        let committed = try f.logBytes()
        let writer = try f.writer()
        // The writer's next group commit, half written.
        try f.writeLog(committed + Array("{\"seq\":10,\"prev\":".utf8))
        let reader = try Ledger(directory: f.directory)
        #expect(reader.count == 10)
        #expect(reader.report.appendInProgress)
        #expect(reader.report.messages.first?.contains("An append was in progress") == true)
        withExtendedLifetime(writer) {}
        try f.writeLog(committed)
    }
}

@Suite("What a refused or mistaken command leaves on disk")
struct NothingChangedTests {
    /// The bytes of the files a refusal must leave as they were.
    static func contents(_ f: Fixture, _ names: [String] = ["log", "index", "tree/level-00"]) throws -> [Data] {
        try names.map { try Data(contentsOf: URL(fileURLWithPath: f.directory + "/" + $0)) }
    }

    @Test("a writer's open refused for a broken chain cuts no torn tail and rewrites no index")
    func refusedOpenChangesNothing() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        var record = try Record(stored: lines[5])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[5] = record.encoded()
        try f.writeLines(lines)
        try f.writeLog(try f.logBytes() + Array("{\"seq\":10,\"prev\":\"c5".utf8))
        let before = try Self.contents(f)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        #expect(refusal?.message.contains("Entry 6") == true, "\(String(describing: refusal))")
        #expect(try Self.contents(f) == before)
    }

    @Test("a last record changed to another length is what the index contradicts: readers say so, the writer and repair refuse and change nothing")
    func lastRecordChangedLength() throws {
        let f = try Fixture()
        try f.populate()
        var lines = try f.logLines()
        let last = lines.count - 1
        var record = try Record(stored: lines[last])
        // Half a second later: the time gains a fraction, and the record bytes.
        record.acceptedAt = try #require(Timestamp(rfc3339: "2020-09-21T09:30:00.5Z"))
        let changed = record.encoded()
        #expect(changed.count != lines[last].count)
        lines[last] = changed
        try f.writeLines(lines)
        let reader = try Ledger(directory: f.directory)
        #expect(reader.report.indexContradictsLogAt == UInt64(last))
        #expect(reader.report.messages.contains { $0.contains("may have been changed") })
        let before = try Self.contents(f)
        #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        // With the tree moved aside, the index alone is evidence enough for repair.
        try FileManager.default.moveItem(atPath: f.directory + "/tree", toPath: f.root.appendingPathComponent("tree.kept").path)
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try Repair.rebuildDerived(directory: f.directory) }
        #expect(refusal?.message.contains("entry \(last)") == true, "\(String(describing: refusal))")
        #expect(try Self.contents(f, ["log", "index"]) == Array(before.prefix(2)))
    }

    @Test("verify --save-state refuses, before any work, a path in the ledger directory and an existing file that is not a saved state")
    func saveStateTarget() throws {
        let f = try Fixture()
        try f.populate()
        let before = try Self.contents(f)
        for path in [f.directory + "/log", f.directory + "/index", f.directory + "/../ledger/new.state", f.directory + "/tree/new.state"] {
            let refusal = #expect(throws: LedgerError(.usage, ""), "\(path)") { try Verifier.verify(directory: f.directory, saveState: path) }
            #expect(refusal?.message.contains("ledger directory") == true, "\(String(describing: refusal))")
        }
        #expect(!FileManager.default.fileExists(atPath: f.directory + "/new.state"))
        let notes = f.root.appendingPathComponent("notes.txt")
        try Data("my notes".utf8).write(to: notes)
        let refusal = #expect(throws: LedgerError(.usage, "")) { try Verifier.verify(directory: f.directory, saveState: notes.path) }
        #expect(refusal?.message.contains("not a saved state") == true)
        #expect(try Data(contentsOf: notes) == Data("my notes".utf8))
        #expect(try Self.contents(f) == before)
        // A new file, or a saved state from before, is no mistake: (without a checkpoint to save
        // at) the verification runs.
        #expect(try Verifier.verify(directory: f.directory, saveState: f.root.appendingPathComponent("new.state").path).isIntact)
        try Data("ELSTATE2 an older one".utf8).write(to: notes)
        #expect(try Verifier.verify(directory: f.directory, saveState: notes.path).isIntact)
        // A link, even to a saved state: saving would replace the link.
        let link = f.root.appendingPathComponent("link.state").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: notes.path)
        let linked = #expect(throws: LedgerError(.usage, "")) { try Verifier.verify(directory: f.directory, saveState: link) }
        #expect(linked?.message.contains("symbolic link") == true)
    }

    @Test("an index entry never written (zeros, as after a power loss) is a cache to rebuild, not evidence, for readers, the writer, verify and repair")
    func unwrittenIndexEntry() throws {
        for parties in [false, true] {
            let f = try Fixture(parties: parties)
            if parties { try f.populate() }
            let url = URL(fileURLWithPath: f.directory + "/index")
            var index = try Data(contentsOf: url)
            index.replaceSubrange((index.count - 16)..<index.count, with: Data(count: 16))
            try index.write(to: url)
            let reader = try Ledger(directory: f.directory)
            #expect(reader.report.indexContradictsLogAt == nil && reader.report.indexRebuilt, "\(reader.report.messages)")
            // The entries before the zeros still count as the index's.
            #expect(reader.indexCount == reader.count - 1)
            #expect(try Verifier.verify(directory: f.directory).isIntact)
            #expect(try f.writer().ledger.report.unrecordedChecked == nil)
            #expect(try Ledger(directory: f.directory).report.messages.isEmpty)
            #expect(try Data(contentsOf: url) != index)
            index = try Data(contentsOf: url)
            index.replaceSubrange((index.count - 16)..<index.count, with: Data(count: 16))
            try index.write(to: url)
            #expect(try Repair.rebuildDerived(directory: f.directory).records == (parties ? 10 : 1))
        }
    }

    @Test("verify finds a record changed to another length from the index alone, as the writer and repair do, and compares the entries after it where they moved")
    func indexEvidenceOfAnotherLength() throws {
        for at in [5, 9] {
            let f = try Fixture()
            try f.populate()
            var lines = try f.logLines()
            var record = try Record(stored: lines[at])
            record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds, nanoseconds: 500_000_000)
            lines[at] = record.encoded()
            try f.writeLines(lines)
            try FileManager.default.removeItem(atPath: f.directory + "/tree")
            let report = try Verifier.verify(directory: f.directory)
            #expect(report.findings.first.map { $0.sequence == UInt64(at) && $0.code == .damagedLog && $0.message.contains("index") } == true, "\(at): \(report.findings)")
            #expect(!report.notes.contains { $0.contains("The index disagrees") }, "\(at): \(report.notes)")
            #expect(throws: LedgerError(.damagedLog, ""), "\(at)") { try Repair.rebuildDerived(directory: f.directory) }
        }
    }

    @Test("repair refuses a link in place of the snapshots or tree directory before removing or rewriting anything")
    func repairThroughLinks() throws {
        for name in ["snapshots", "tree"] {
            let f = try Fixture()
            try f.populate()
            let outside = f.root.appendingPathComponent("outside")
            try FileManager.default.createDirectory(at: outside, withIntermediateDirectories: true)
            try Data("keep".utf8).write(to: outside.appendingPathComponent("thesis.docx"))
            if name == "tree" {
                for file in try FileManager.default.contentsOfDirectory(atPath: f.directory + "/tree") {
                    try FileManager.default.moveItem(atPath: f.directory + "/tree/" + file, toPath: outside.path + "/" + file)
                }
                try FileManager.default.removeItem(atPath: f.directory + "/tree")
            }
            try FileManager.default.createSymbolicLink(atPath: f.directory + "/" + name, withDestinationPath: outside.path)
            let files = try FileManager.default.contentsOfDirectory(atPath: outside.path).sorted()
            let before = try Self.contents(f, ["log", "index"])
            let refusal = #expect(throws: LedgerError(.io, ""), "\(name)") { try Repair.rebuildDerived(directory: f.directory) }
            #expect(refusal?.message.contains("through links") == true, "\(String(describing: refusal))")
            #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).sorted() == files, "\(name)")
            #expect(try Self.contents(f, ["log", "index"]) == before, "\(name)")
        }
    }
}

@Suite("Records nothing recorded")
struct UnrecordedRecordTests {
    /// A populated fixture whose log, and nothing else, holds one more record (`at`): a new claim
    /// linked to its last entry, as a crash after the log was synced leaves one, or as anyone who
    /// can write the directory can; its signature spoiled if `spoiled`.
    static func unrecorded(spoiled: Bool) throws -> (f: Fixture, at: UInt64) {
        let f = try Fixture()
        try f.populate()
        let ledger = try Ledger(directory: f.directory)
        var envelope = try f.sign(["type": "claim.asserted", "id": "c-late", "claim": "c-late", "fact": "f1", "stance": "affirms", "statement": "Added."], as: "inv")
        if spoiled { envelope.signatures[0].signature[5] ^= 1 }
        let record = Record(sequence: ledger.count, previous: ledger.lastEntryID, acceptedAt: f.time(), batchEnd: ledger.count, envelope: envelope)
        try f.writeLog(try f.logBytes() + record.encoded() + [0x0a])
        return (f, ledger.count)
    }

    @Test("a writer verifies the signatures of records that neither the index nor the tree files record before it takes them, and says it did")
    func writerChecksUnrecorded() throws {
        for spoiled in [true, false] {
            let (f, at) = try Self.unrecorded(spoiled: spoiled)
            let before = try NothingChangedTests.contents(f)
            if spoiled {
                let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
                #expect(refusal?.message.contains("Entry \(at) of") == true && refusal?.message.contains("does not verify") == true, "\(String(describing: refusal))")
                #expect(try NothingChangedTests.contents(f) == before)
            } else {
                let writer = try f.writer()
                #expect(writer.ledger.report.unrecordedChecked == at...at)
                #expect(writer.ledger.report.messages.contains { $0.contains("Entry \(at) was recorded in no index") })
            }
        }
    }

    @Test("zeros at the end of the index or the tree's leaves (a power loss leaves them) record no entry: the record after them is checked all the same")
    func zeroPaddingRecordsNothing() throws {
        for file in ["index", "tree/level-00"] {
            let (f, _) = try Self.unrecorded(spoiled: true)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: f.directory + "/" + file))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(count: file == "index" ? 16 : 32))
            try handle.close()
            let refusal = #expect(throws: LedgerError(.damagedLog, ""), "\(file)") { try f.writer() }
            #expect(refusal?.message.contains("does not verify") == true, "\(file): \(String(describing: refusal))")
            let report = try Repair.rebuildDerived(directory: f.directory)
            #expect(report.unrecorded == 10..<11, "\(file): \(report)")
        }
    }

    /// Under a signed checkpoint of all 10 entries, entry 9 changed by `change`, then the index
    /// and tree files removed (as one who can write the directory can): the next writer's open
    /// must refuse, naming the checkpoint its root at that size contradicts.
    static func expectRefusedUnderCheckpoint(_ change: (Fixture, inout Record) throws -> Void) throws {
        let f = try Fixture()
        try f.populate()
        _ = try f.writer().signCheckpoint(with: Fixture.key(77))
        var lines = try f.logLines()
        var record = try Record(stored: lines[9])
        try change(f, &record)
        lines[9] = record.encoded()
        try f.writeLines(lines)
        try FileManager.default.removeItem(atPath: f.directory + "/index")
        try FileManager.default.removeItem(atPath: f.directory + "/tree")
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
        #expect(refusal?.message.contains("the checkpoint of 10 entries the log key signed") == true, "\(String(describing: refusal))")
    }

    @Test("a signed checkpoint's size is not taken for what a writer checked: with the index and tree gone, a changed record under it is checked, and refused")
    func checkpointSizeNotRecorded() throws {
        // Its root at the checkpoint's size is found wrong first; its signature would be next.
        try Self.expectRefusedUnderCheckpoint { _, record in record.envelope.signatures[0].signature[4] ^= 1 }
    }

    @Test("a writer refuses a log whose root at a signed checkpoint's size is not the checkpoint's, even with every signature valid: it would sign a contradicting checkpoint")
    func checkpointRootChecked() throws {
        // The last statement signed again, by its author, with another text.
        try Self.expectRefusedUnderCheckpoint { f, record in
            record.envelope = try f.sign(["type": "attestation.made", "id": "a1", "attestation": "a1", "target": "e1", "kind": "disputed"], as: "rev", time: record.acceptedAt)
        }
    }

    @Test("no checkpoint is signed that the newest one the log key signed contradicts, however the log got past the open")
    func noContradictingCheckpoint() throws {
        let f = try Fixture()
        try f.populate()
        _ = try f.writer().signCheckpoint(with: Fixture.key(77))
        // Entry 9's acceptance time (no signature covers it) changed, and the derived files and
        // the log's verifier key moved away, so that an open takes the log as it is.
        var lines = try f.logLines()
        var record = try Record(stored: lines[9])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[9] = record.encoded()
        try f.writeLines(lines)
        for name in ["index", "tree"] { try FileManager.default.removeItem(atPath: f.directory + "/" + name) }
        let vkey = f.directory + "/checkpoints/log.vkey"
        try FileManager.default.moveItem(atPath: vkey, toPath: f.root.appendingPathComponent("log.vkey").path)
        _ = try f.writer()
        try FileManager.default.moveItem(atPath: f.root.appendingPathComponent("log.vkey").path, toPath: vkey)
        let before = try FileManager.default.contentsOfDirectory(atPath: f.directory + "/checkpoints").sorted()
        let refusal = #expect(throws: LedgerError(.damagedLog, "")) { try f.writer().signCheckpoint(with: Fixture.key(77)) }
        #expect(refusal?.message.contains("would contradict") == true, "\(String(describing: refusal))")
        #expect(try FileManager.default.contentsOfDirectory(atPath: f.directory + "/checkpoints").sorted() == before)
    }

    @Test("a checkpoint is still signed when the tree files (a cache) give a wrong root at the newest checkpoint's size: the log decides")
    func damagedTreeNodeStillSigns() throws {
        let f = try Fixture()
        try f.populate()
        _ = try f.writer().signCheckpoint(with: Fixture.key(77))
        for i in 0..<3 { try f.append(["type": "fact.opened", "id": "open-g\(i)", "fact": "g\(i)", "proposition": "P\(i)"], as: "inv") }
        // Node 4 of level 1 (leaves 8 and 9): on the path of the root at 10 entries, not at 13.
        let url = URL(fileURLWithPath: f.directory + "/tree/level-01")
        var level = try Data(contentsOf: url)
        level.replaceSubrange(128..<160, with: Data(count: 32))
        try level.write(to: url)
        #expect(try Verifier.verify(directory: f.directory).isIntact)
        #expect(try f.writer().signCheckpoint(with: Fixture.key(77)).path.hasSuffix(".note"))
    }

    @Test("zeros in the middle of the index before a zero-filled tail have the whole index written again")
    func holesInTheIndex() throws {
        let f = try Fixture()
        try f.populate()
        let url = URL(fileURLWithPath: f.directory + "/index")
        let good = try Data(contentsOf: url)
        var holed = good
        for at in [3 * 16, 9 * 16] { holed.replaceSubrange(at..<(at + 16), with: Data(count: 16)) }
        try holed.write(to: url)
        #expect(try Ledger(directory: f.directory).indexCount == 0)
        // What the index did record still counts as checked: nothing is verified again.
        #expect(try f.writer().ledger.report.unrecordedChecked == nil)
        #expect(try Data(contentsOf: url) == good)
    }

    @Test("repair indexes only what a writer acknowledged: a record nothing recorded is left to the next writer, which checks it")
    func repairLeavesUnrecorded() throws {
        for spoiled in [true, false] {
            let (f, at) = try Self.unrecorded(spoiled: spoiled)
            let report = try Repair.rebuildDerived(directory: f.directory)
            #expect(report.records == at && report.unrecorded == at..<(at + 1), "\(report)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: f.directory + "/index")).count == Int(at) * 16)
            if spoiled {
                #expect(throws: LedgerError(.damagedLog, "")) { try f.writer() }
            } else {
                #expect(try f.writer().ledger.report.unrecordedChecked == at...at)
            }
        }
    }
}
