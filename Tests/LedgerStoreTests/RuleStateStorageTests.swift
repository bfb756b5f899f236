import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
@testable import LedgerStore
import Testing

@Suite("The rule state kept on disk as it grows")
struct RuleStateStorageTests {
    /// Random statements over a small world of facts, claims and evidence. With `breakRules`, about
    /// one in four reuses an id, names something that does not exist, retracts another's claim,
    /// counters across facts or is signed by a party of the wrong role; without, only statements
    /// the rules admit are kept (checked against a ``LedgerState`` in memory).
    struct Statements {
        var random: SplitMix64
        let breakRules: Bool
        var facts: [String] = []
        var claims: [(id: String, author: String, fact: String)] = []
        var evidence: [String] = []
        var statementIDs: [String] = []
        var n = 0

        init(seed: UInt64, breakRules: Bool) {
            random = SplitMix64(seed: seed)
            self.breakRules = breakRules
        }

        private mutating func chance(_ oneIn: UInt64) -> Bool { breakRules && random.next() % oneIn == 0 }

        private mutating func pick(_ list: [String], missing: String) -> String {
            list.isEmpty || chance(10) ? missing : list.randomElement(using: &random)!
        }

        private mutating func newID(_ prefix: String, reusing used: [String]) -> String {
            !used.isEmpty && chance(10) ? used.randomElement(using: &random)! : "\(prefix)\(n)"
        }

        private mutating func author(_ allowed: [String]) -> String {
            chance(10) ? ["inv", "rev", "sub", "other", "admin"].randomElement(using: &random)! : allowed.randomElement(using: &random)!
        }

        /// The next statement's event and author; `entries` are the entry ids so far.
        mutating func next(entries: [Digest]) -> (event: [String: Any], author: String) {
            n += 1
            let id = newID("s", reusing: statementIDs)
            statementIDs.append(id)
            var event: [String: Any]
            var by: String
            switch random.next() % 9 {
            case 0:
                by = author(["inv", "rev", "admin"])
                let fact = newID("f", reusing: facts)
                facts.append(fact)
                event = ["type": "fact.opened", "fact": fact, "proposition": "Proposition \(n)"]
            case 1, 2:
                by = author(["inv", "sub", "other", "rev"])
                let claim = newID("c", reusing: claims.map(\.id))
                let fact = pick(facts, missing: "no-fact-\(n)")
                if let target = claims.isEmpty ? nil : claims.randomElement(using: &random), random.next() % 2 == 0 {
                    let about = chance(5) ? pick(facts, missing: "no-fact-\(n)") : target.fact
                    event = ["type": "claim.countered", "claim": claim, "counters": target.id, "fact": about, "stance": "denies", "statement": "Not so (\(n))."]
                    claims.append((claim, by, about))
                } else {
                    event = ["type": "claim.asserted", "claim": claim, "fact": fact, "stance": "affirms", "statement": "So (\(n))."]
                    claims.append((claim, by, fact))
                }
            case 3:
                let target = claims.randomElement(using: &random) ?? ("no-claim", "inv", "")
                by = chance(3) ? author(["inv", "sub", "other", "rev"]) : target.author
                event = random.next() % 2 == 0
                    ? ["type": "claim.retracted", "claim": target.id, "reason": "Mistaken (\(n))."]
                    : ["type": "claim.amended", "claim": target.id, "statement": "Amended (\(n))."]
            case 4, 5:
                by = author(["inv", "rev"])
                let item = newID("e", reusing: evidence)
                evidence.append(item)
                event = [
                    "type": "evidence.attached", "evidence": item, "sha256": SHA256.hash(Array("doc \(n)".utf8)).hexString, "size": 5,
                    "media_type": "text/plain", "title": "Document \(n)", "supports": [pick(claims.map(\.id), missing: "no-claim-\(n)")],
                    "contradicts": random.next() % 3 == 0 ? [pick(claims.map(\.id), missing: "no-claim-\(n)")] : [],
                ]
            case 6:
                by = author(["inv", "rev"])
                event = ["type": "custody.recorded", "evidence": pick(evidence, missing: "no-evidence-\(n)"), "action": "moved"]
            case 7:
                by = author(["rev", "inv", "sub"])
                let target: String
                switch random.next() % 3 {
                case 0: target = chance(5) ? String(repeating: "ab", count: 32) : entries.randomElement(using: &random)!.hexString
                case 1: target = pick(claims.map(\.id), missing: "no-claim-\(n)")
                default: target = pick(evidence, missing: "no-evidence-\(n)")
                }
                event = ["type": "attestation.made", "attestation": newID("a", reusing: []), "target": target, "kind": "reviewed"]
            default:
                by = author(["rev"])
                event = [
                    "type": "finding.recorded", "finding": newID("fd", reusing: []), "fact": pick(facts, missing: "no-fact-\(n)"),
                    "outcome": "inconclusive", "rationale": "Open (\(n)).", "relies_on": [pick(evidence, missing: "no-evidence-\(n)")],
                ]
            }
            event["id"] = id
            return (event, by)
        }
    }

    static let logKey = Fixture.key(77)

    /// A ledger of `count` random statements after the fixture's own, appended record by record
    /// as a dishonest operator could (the writer would refuse those that break a rule), its
    /// derived files rebuilt, and a checkpoint signed with ``logKey`` at the end if it is valid.
    static func ledger(seed: UInt64, count: Int, breakRules: Bool) throws -> Fixture {
        let f = try Fixture()
        var statements = Statements(seed: seed, breakRules: breakRules)
        var lines = try f.logLines()
        var state = LedgerState()
        for (i, line) in lines.enumerated() {
            let record = try Record(stored: line)
            try state.admit(record.envelope, event: Event(payload: record.envelope.payload), entryID: Record.entryID(of: line), sequence: UInt64(i))
        }
        var entries = lines.map { Record.entryID(of: $0) }
        while entries.count < count + 2 {
            let (event, author) = statements.next(entries: entries)
            let envelope = try f.sign(event, as: author)
            let sequence = UInt64(lines.count)
            let record = Record(sequence: sequence, previous: entries.last!, acceptedAt: f.time(), batchEnd: sequence, envelope: envelope)
            let bytes = record.encoded()
            do {
                try state.admit(envelope, event: Event(payload: envelope.payload), entryID: Record.entryID(of: bytes), sequence: sequence)
            } catch {
                guard breakRules else { continue }
                state.skip()
            }
            lines.append(bytes)
            entries.append(Record.entryID(of: bytes))
        }
        try f.writeLines(lines)
        _ = try Repair.rebuildDerived(directory: f.directory)
        if !breakRules { _ = try f.writer().signCheckpoint(with: logKey) }
        return f
    }

    @Test("verification gives the same report whether the rule state is moved to disk every record, every few, or never", arguments: [1 as UInt64, 2, 3])
    func sameReport(seed: UInt64) throws {
        let f = try Self.ledger(seed: seed, count: 400, breakRules: true)
        let reference = try Verifier.verify(directory: f.directory, ruleState: RuleStateStorage(recordsInMemory: .max))
        #expect(reference.findings.count > 40, "the random ledger breaks rules often: \(reference.findings.count) findings")
        #expect(Set(reference.findings.map(\.code)).isSuperset(of: [.duplicateID, .unknownReference, .notTheAuthor, .roleNotAllowed, .invalidEvent]))
        for every: UInt64 in [1, 2, 3, 7, 64] {
            let report = try Verifier.verify(directory: f.directory, ruleState: RuleStateStorage(recordsInMemory: every))
            #expect(report.findings == reference.findings, "every \(every)")
            #expect(report.records == reference.records && report.root == reference.root && report.checked == reference.checked)
        }
    }

    @Test("a saved state is byte for byte the same however often the state went to disk, and serves verify --since the same")
    func savedStateBytes() throws {
        let f = try Self.ledger(seed: 11, count: 300, breakRules: false)
        let reference = f.root.appendingPathComponent("reference.state").path
        let report = try Verifier.verify(directory: f.directory, saveState: reference, ruleState: RuleStateStorage(recordsInMemory: .max))
        #expect(report.isIntact, "\(report.findings)")
        #expect(report.savedStateSize == report.records)
        let expected = try Data(contentsOf: URL(fileURLWithPath: reference))
        for every: UInt64 in [1, 5, 64] {
            let path = f.root.appendingPathComponent("every-\(every).state").path
            _ = try Verifier.verify(directory: f.directory, saveState: path, ruleState: RuleStateStorage(recordsInMemory: every))
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == expected, "every \(every)")
        }

        // Statements appended after the checkpoint, valid and not, checked from the saved state
        // with the state moved to disk every record (enough of them that the saved state's table
        // is merged into the runs).
        let trusted = try Array(CheckpointStore(ledgerDirectory: f.directory).newest()!.text)
        var statements = Statements(seed: 12, breakRules: true)
        var lines = try f.logLines()
        for _ in 0..<300 {
            let (event, author) = statements.next(entries: lines.map { Record.entryID(of: $0) })
            let sequence = UInt64(lines.count)
            let record = Record(
                sequence: sequence, previous: Record.entryID(of: lines.last!), acceptedAt: f.time(), batchEnd: sequence, envelope: try f.sign(event, as: author))
            lines.append(record.encoded())
        }
        try f.writeLines(lines)
        _ = try Repair.rebuildDerived(directory: f.directory)
        let verifier = try CheckpointVerifier(origin: "test.example/ledger", log: NoteVerifier(name: "test.example/ledger", publicKey: Self.logKey.publicKey))
        // A checkpoint at the end, signed over the log as it is: the new entries are checked in full.
        try Self.signCheckpoint(f)
        let fromGenesis = try Verifier.verify(directory: f.directory, since: trusted, verifier: verifier, ruleState: RuleStateStorage(recordsInMemory: .max))
        #expect(fromGenesis.report.findings.count > 5)
        for every: UInt64 in [1, 4, .max] {
            let result = try Verifier.verify(
                directory: f.directory, since: trusted, verifier: verifier, state: SavedState(path: reference), ruleState: RuleStateStorage(recordsInMemory: every))
            #expect(result.report.findings == fromGenesis.report.findings, "every \(every)")
            #expect(result.report.checked == 300)
        }
    }

    /// Signs a checkpoint of the whole log as it is, rules broken or not (the writer would refuse
    /// to open it).
    static func signCheckpoint(_ f: Fixture) throws {
        let ledger = try Ledger(directory: f.directory)
        let range = try CompactRange(ledger.merkleTree(), size: ledger.count)
        let signer = try NoteSigner(name: "test.example/ledger", key: logKey)
        let note = try Checkpoint(origin: "test.example/ledger", size: ledger.count, root: range.root).signed(by: signer)
        _ = try CheckpointStore(ledgerDirectory: f.directory).save(note, size: ledger.count, signer: signer.verifier)
    }

    /// Appends the same random group commits of one to three statements, rule breakers among
    /// them, through writers `a` and `b`, statements signed by `f`, and expects the same answer
    /// from each every time; returns how many were refused.
    @discardableResult
    static func sameAnswers(_ f: Fixture, _ a: LedgerWriter, _ b: LedgerWriter, seed: UInt64, rounds: Int) throws -> Int {
        var statements = Statements(seed: seed, breakRules: true)
        var refused = 0
        for round in 0..<rounds {
            // A refusal part-way through a group commit undoes the others.
            let entries = try (0..<a.ledger.count).map { try a.ledger.entryID(at: $0) }
            let envelopes = try (0...(round % 3)).map { _ in
                let (event, author) = statements.next(entries: entries)
                return try f.sign(event, as: author)
            }
            let time = f.time()
            let x = Result { try a.append(envelopes, acceptedAt: time) }
            let y = Result { try b.append(envelopes, acceptedAt: time) }
            switch (x, y) {
            case let (.success(x), .success(y)): #expect(x == y)
            case let (.failure(x), .failure(y)):
                #expect(x as? LedgerError == y as? LedgerError && (x as? LedgerError)?.message == (y as? LedgerError)?.message)
                refused += 1
            default: Issue.record("round \(round): \(x) from one writer, \(y) from the other")
            }
        }
        return refused
    }

    @Test("a writer that keeps its state on disk accepts and refuses exactly what one in memory does")
    func writerSameAnswers() throws {
        let disk = try Fixture()
        let memory = try Fixture()
        let count = try { () throws -> UInt64 in
            let onDisk = try LedgerWriter(directory: disk.directory, ruleState: RuleStateStorage(recordsInMemory: 2))
            let inMemory = try LedgerWriter(directory: memory.directory, ruleState: RuleStateStorage(recordsInMemory: .max))
            let refused = try Self.sameAnswers(disk, onDisk, inMemory, seed: 21, rounds: 200)
            #expect(refused > 30 && refused < 190, "\(refused) of 200 group commits refused")
            return inMemory.state.count
        }()
        #expect(try disk.logBytes() == memory.logBytes())
        // Reopened, the writer rebuilds its state through the disk again.
        let reopened = try LedgerWriter(directory: disk.directory, ruleState: RuleStateStorage(recordsInMemory: 3))
        #expect(reopened.state.count == count)
    }

    @Test("a table finds every key it holds and no other, at every size around its runs of 16 rows in memory and 64 stored")
    func tableLookups() throws {
        var random = SplitMix64(seed: 5)
        func key() -> Digest { try! Digest(rawRepresentation: (0..<4).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }) }
        for size in [0, 1, 2, 15, 16, 17, 33, 63, 64, 65, 127, 128, 129, 1000] {
            let (table, ids, claims) = try Self.randomTable(ids: size, claims: size, seed: UInt64(size))
            for row in ids { #expect(table.sequence(row.key) == row.sequence, "size \(size)") }
            for row in claims {
                let claim = table.claim(row.key)
                #expect(claim?.fact == String(decoding: row.fact, as: UTF8.self) && claim?.author == String(decoding: row.author, as: UTF8.self))
                #expect(claim?.retractedAt == (row.retracted == .max ? nil : row.retracted))
            }
            // Absent keys, including ones just beside present keys (same leading word).
            for row in ids.prefix(50) {
                #expect(table.sequence(key()) == nil && table.claim(row.key) == nil)
                var bytes = row.key.rawRepresentation
                bytes[31] ^= 1
                #expect(table.sequence(try Digest(rawRepresentation: bytes)) == nil)
            }
            #expect(table.readFailure == nil)
        }
    }

    /// A table of `ids` id rows and `claims` claim rows with random keys, and the rows.
    static func randomTable(ids count: Int, claims claimCount: Int, seed: UInt64) throws -> (
        table: RuleTable, ids: [(key: Digest, sequence: UInt64)], claims: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])]
    ) {
        var random = SplitMix64(seed: seed)
        func key() -> Digest { try! Digest(rawRepresentation: (0..<4).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }) }
        let ids = (0..<count).map { i in (key: key(), sequence: UInt64(i)) }.sorted { $0.key < $1.key }
        var claims: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])] = []
        for i in 0..<claimCount {
            let retracted: UInt64 = i % 3 == 0 ? UInt64(i) : .max
            claims.append((key(), retracted, Array("fact-\(i)".utf8), Array("party-\(i % 7)".utf8)))
        }
        claims.sort { $0.key < $1.key }
        return (try RuleTable.write(ids: ids, claims: claims, in: RuleStateStorage.temporaryDirectory), ids, claims)
    }

    /// `table` as a saved state holds it, 8 bytes into a file of its own, opened again from there.
    static func stored(_ table: RuleTable, damagedAt damage: Int? = nil) throws -> (file: FileDescriptor, open: () throws -> RuleTable) {
        let file = try FileDescriptor.anonymous(in: RuleStateStorage.temporaryDirectory, prefix: "ledger-test-stored")
        try file.write([UInt8](repeating: 0xee, count: 8), at: 0)
        try table.store(in: file, at: 8)
        if let damage {
            let byte = try file.read(at: UInt64(8 + damage), count: 1)
            try file.write([byte[0] ^ 0x10], at: UInt64(8 + damage))
        }
        return (file, {
            try RuleTable.open(file: file, name: "the test table", remedy: "", start: 8, layout: table.storedLayout, digest: table.digest)
        })
    }

    @Test("a saved state's table, fence levels, Bloom filters and block hashes in its file, finds every key it holds and no other, opened and looked up in O(log n) block reads")
    func storedTableLookups() throws {
        // Sizes around the 64-row runs and the 64-key fence runs: one, two and three levels.
        for size in [0, 1, 64, 65, 1000, 4096, 4097, 4160, 262_145] {
            let (table, ids, claims) = try Self.randomTable(ids: size, claims: min(size, 3000), seed: UInt64(size))
            let (_, open) = try Self.stored(table)
            let stored = try open()
            let levels = StoredTables.levelCounts(rows: size).count
            #expect(levels == (size == 0 ? 0 : size <= 4096 ? 1 : size <= 262_144 ? 2 : 3))
            // Opening reads the top fence levels only: at most 2 KiB each.
            #expect(stored.blocksRead! <= 4, "size \(size): \(stored.blocksRead!) blocks read to open")
            var random = SplitMix64(seed: 1)
            let sample = size <= 5000 ? Array(ids.indices) : (0..<2000).map { _ in Int(random.next() % UInt64(size)) }
            for i in sample { #expect(stored.sequence(ids[i].key) == ids[i].sequence, "size \(size)") }
            for row in claims {
                let claim = stored.claim(row.key)
                #expect(claim?.fact == String(decoding: row.fact, as: UTF8.self) && claim?.author == String(decoding: row.author, as: UTF8.self))
                #expect(claim?.retractedAt == (row.retracted == .max ? nil : row.retracted))
            }
            for row in ids.prefix(50) {
                var bytes = row.key.rawRepresentation
                bytes[31] ^= 1
                #expect(stored.sequence(try Digest(rawRepresentation: bytes)) == nil && stored.claim(row.key) == nil)
            }
            #expect(stored.readFailure == nil)
            // A lookup in a table just opened reads a block of its Bloom filter, a run of 64 keys
            // of each level below the top and a run of 64 rows, each run across at most two
            // 4 KiB blocks: O(log n), whatever the size. An absent key's stops at the filter but
            // for about 1% of them.
            if let row = ids.last {
                let fresh = try open()
                let before = fresh.blocksRead!
                #expect(fresh.sequence(row.key) == row.sequence)
                #expect(fresh.blocksRead! - before <= 2 * levels + 1, "size \(size): \(fresh.blocksRead! - before) blocks for one lookup")
                let absent = try open()
                let opened = absent.blocksRead!
                for i in 0..<min(200, ids.count) { #expect(absent.sequence(SHA256.hash(Array("absent \(i)".utf8))) == nil) }
                let lookups = min(200, ids.count)
                // Its filter's blocks, once each, and for the few it lets through, fences and rows.
                let bound = table.storedLayout.idFilter.blocks + 2 * levels + lookups / 20 * (2 * levels + 2)
                #expect(absent.blocksRead! - opened <= bound, "size \(size): \(absent.blocksRead! - opened) blocks for \(lookups) absent keys")
            }
            try stored.checkWhole()
        }
    }

    @Test("a lookup reads a run of rows only as far as its key can lie: the first row of a run costs one block of rows, its last the blocks the run spans")
    func rowsReadAsFarAsTheKey() throws {
        // 4,096 id rows: the fence level is the top, read when the table is opened, so a lookup
        // of a present key reads one block of the Bloom filter and then rows.
        let (table, ids, _) = try Self.randomTable(ids: 4096, claims: 0, seed: 11)
        let (_, open) = try Self.stored(table)
        func blocks(_ from: Int, _ to: Int) -> Int { (to - 1) / StoredTables.blockBytes - from / StoredTables.blockBytes + 1 }
        var spanning = 0
        for run in stride(from: 0, to: ids.count, by: RowIndex.storedFenceRows) {
            let start = run * RuleTable.idRow, end = (run + RowIndex.storedFenceRows) * RuleTable.idRow
            for (row, rowBlocks) in [(run, blocks(start, start + RuleTable.idRow)), (run + RowIndex.storedFenceRows - 1, blocks(start, end))] {
                let fresh = try open()
                let before = fresh.blocksRead!
                #expect(fresh.sequence(ids[row].key) == ids[row].sequence)
                #expect(fresh.blocksRead! - before == 1 + rowBlocks, "row \(row)")
            }
            if blocks(start, end) > 1 { spanning += 1 }
        }
        // Half the runs of 40-byte rows span two blocks: there, reading whole runs read both.
        #expect(spanning * 2 >= ids.count / RowIndex.storedFenceRows)
    }

    @Test("fence levels below the top forged with their checksums remade: every lookup ends, never answers another key's row, and the read-ahead's unchecking reader answers the same")
    func forgedFenceLevels() throws {
        // Two levels: 79 keys at level 1, read by lookups; the fuzzer's inputs are too small to hold one.
        let (table, ids, _) = try Self.randomTable(ids: 5000, claims: 10, seed: 5)
        let layout = table.storedLayout
        let level = try #require(layout.idLevels.first)
        #expect(layout.idLevels.count == 2)
        var random = SplitMix64(seed: 6)
        var misled = 0
        for trial in 0..<24 {
            let (file, open) = try Self.stored(table)
            var bytes = try file.read(at: 8, count: layout.covered)
            for _ in 0...(trial % 4) {
                let at = level.offset + Int(random.next() % UInt64(level.count * 32))
                bytes[at] ^= UInt8(1) << UInt8(random.next() % 8)
            }
            var hashes = StoredTables.BlockHasher(salt: table.digest)
            bytes.withUnsafeBytes { hashes.add($0) }
            try file.write(bytes, at: 8)
            try file.write(hashes.finish(), at: UInt64(8 + layout.covered))
            var wrong = 0
            // A few lookups a reader, so that each is read block by block (many more and it would
            // be checked whole and read as a table written here: ``storedTableCheckedWhole``).
            for start in stride(from: 0, to: ids.count, by: 16) {
                let checked = try open()
                let unchecked = try #require(checked.cacheWarmer())
                for row in ids[start..<min(start + 16, ids.count)] {
                    let answer = checked.sequence(row.key)
                    if answer != unchecked.sequence(row.key) || (answer != nil && answer != row.sequence) { wrong += 1 }
                    if answer == nil { misled += 1 }
                }
                #expect(!checked.isCheckedWhole && !unchecked.isCheckedWhole)
                #expect((checked.readFailure == nil) == (unchecked.readFailure == nil), "trial \(trial)")
            }
            #expect(wrong == 0, "trial \(trial)")
            try open().checkWhole()
        }
        // The forged keys led lookups astray (to another run of rows, or to a refusal).
        #expect(misled > 0)
    }

    @Test("a damaged byte anywhere in a saved state's table is refused when its block is read, and by a whole check; never read as an absent id")
    func storedTableDamage() throws {
        let (table, ids, claims) = try Self.randomTable(ids: 5000, claims: 300, seed: 3)
        let size = Int(try Self.stored(table).file.size) - 8
        let covered = table.storedLayout.covered
        // Rows, strings, every fence level, the filters and the hashes, and every byte of one block's hash.
        let offsets = Array(stride(from: 0, to: size, by: 997)) + [table.byteCount - 1, table.byteCount, covered - 1] + Array(covered..<(covered + 32))
        for offset in offsets {
            let (_, open) = try Self.stored(table, damagedAt: offset)
            let damaged: RuleTable
            do {
                damaged = try open()
            } catch let error as LedgerError {
                #expect(error.code == .usage && error.message.contains("checksum"), "byte \(offset): \(error.message)")
                continue
            }
            // Every answer is right until a read fails; then lookups stop counting.
            for row in ids where damaged.readFailure == nil {
                let answer = damaged.sequence(row.key)
                #expect(answer == row.sequence || damaged.readFailure != nil, "byte \(offset)")
            }
            for row in claims where damaged.readFailure == nil {
                let claim = damaged.claim(row.key)
                #expect(claim?.fact == String(decoding: row.fact, as: UTF8.self) || damaged.readFailure != nil, "byte \(offset)")
            }
            // Every key looked up reads every block: the damage was found.
            #expect(damaged.readFailure?.code == .usage, "byte \(offset)")
            #expect(throws: LedgerError(.usage, ""), "byte \(offset)") { try open().checkWhole() }
        }
    }

    @Test("a saved state's table whose lookups have read rows twice as often as it has blocks is checked whole, then reads its rows against digests taken then; damage its lookups never reached is found then, and a change since when a lookup or a merge reads it")
    func storedTableCheckedWhole() throws {
        // Neither a multiple of 16: each region ends with a short run.
        let (table, ids, claims) = try Self.randomTable(ids: 20_003, claims: 2005, seed: 12)
        let blocks = table.storedLayout.covered / StoredTables.blockBytes
        var random = SplitMix64(seed: 13)
        let order = ids.indices.shuffled(using: &random)
        let stored = try Self.stored(table).open()
        var looked = 0
        while !stored.isCheckedWhole, looked < order.count {
            #expect(stored.sequence(ids[order[looked]].key) == ids[order[looked]].sequence)
            looked += 1
            // Checked whole at the lookup of rows that made twice as many as the tables' blocks,
            // not before.
            #expect(stored.isCheckedWhole == (looked >= 2 * blocks), "lookup \(looked) of rows, \(blocks) blocks")
        }
        #expect(stored.isCheckedWhole && looked < order.count, "\(looked) lookups, \(stored.blocksRead!) of \(blocks) blocks read")
        // Rows are read without their blocks from then on; a claim's strings still a checked block
        // at a time.
        let read = stored.blocksRead!
        for row in ids { #expect(stored.sequence(row.key) == row.sequence) }
        for i in 0..<2000 { #expect(stored.sequence(SHA256.hash(Array("absent \(i)".utf8))) == nil) }
        #expect(stored.blocksRead! == read)
        for row in claims {
            let claim = stored.claim(row.key)
            #expect(claim?.fact == String(decoding: row.fact, as: UTF8.self) && claim?.author == String(decoding: row.author, as: UTF8.self))
            #expect(claim?.retractedAt == (row.retracted == .max ? nil : row.retracted))
        }
        #expect(stored.blocksRead! > read && stored.readFailure == nil)
        // The readers that read ahead and check nothing never switch.
        let warmer = try #require(stored.cacheWarmer())
        for i in order { _ = warmer.sequence(ids[i].key) }
        #expect(!warmer.isCheckedWhole)

        // A row changed in the file after the whole check: the lookup of a row of its run is
        // refused, as a damaged block was, and so is a whole check.
        let (changingFile, openChanging) = try Self.stored(table)
        let changing = try openChanging()
        for i in order where !changing.isCheckedWhole { _ = changing.sequence(ids[i].key) }
        let row = 5000
        let at = UInt64(8 + row * RuleTable.idRow + 32)
        let sequence = try changingFile.read(at: at, count: 1)
        try changingFile.write([sequence[0] ^ 0x01], at: at)
        #expect(changing.sequence(ids[row / 16 * 16 + 3].key) == nil)
        let changed = try #require(changing.readFailure)
        #expect(changed.message.contains("rows 4992–5007 of its ids are not what they were when it was checked whole"), "\(changed.message)")
        #expect(throws: LedgerError(.usage, "")) { try changing.checkWhole() }
        // A merge checks each block it copies as it reads it, whether or not the table was checked
        // whole for its lookups: the changed row is not copied into a new table.
        for checkedWhole in [false, true] {
            let (mergedFile, openMerged) = try Self.stored(table)
            let source = try openMerged()
            if checkedWhole { for i in order where !source.isCheckedWhole { _ = source.sequence(ids[i].key) } }
            #expect(source.isCheckedWhole == checkedWhole)
            let byte = try mergedFile.read(at: at, count: 1)
            try mergedFile.write([byte[0] ^ 0x01], at: at)
            let (other, _, _) = try Self.randomTable(ids: 100, claims: 10, seed: 14)
            let refusal = #expect(throws: LedgerError(.usage, "")) { _ = try RuleTable.merge([source, other], in: RuleStateStorage.temporaryDirectory) }
            #expect(refusal?.message.contains("does not match its checksum") == true, "\(refusal?.message ?? "")")
            #expect(source.readFailure != nil)
        }

        // A byte in the middle of the claim rows, whose blocks id lookups never read: found by the
        // whole check, which then leaves the table as it was, its failure kept.
        let (_, open) = try Self.stored(table, damagedAt: ids.count * RuleTable.idRow + claims.count / 2 * RuleTable.claimRow)
        let damaged = try open()
        for i in order where !damaged.isCheckedWhole && damaged.readFailure == nil {
            #expect(damaged.sequence(ids[i].key) == ids[i].sequence)
        }
        #expect(!damaged.isCheckedWhole)
        let failure = try #require(damaged.readFailure)
        #expect(failure.code == .usage && failure.message.contains("does not match its checksum"), "\(failure.message)")

        // Two id rows swapped, their checksums made to match: refused when checked whole, since a
        // lookup from memory relies on the order.
        let (file, reopen) = try Self.stored(table)
        let layout = table.storedLayout
        var bytes = try file.read(at: 8, count: layout.covered)
        let (a, b) = (15_000 * RuleTable.idRow, 15_001 * RuleTable.idRow)
        let first = Array(bytes[a..<(a + RuleTable.idRow)])
        bytes.replaceSubrange(a..<(a + RuleTable.idRow), with: bytes[b..<(b + RuleTable.idRow)])
        bytes.replaceSubrange(b..<(b + RuleTable.idRow), with: first)
        var hashes = StoredTables.BlockHasher(salt: table.digest)
        bytes.withUnsafeBytes { hashes.add($0) }
        try file.write(bytes, at: 8)
        try file.write(hashes.finish(), at: UInt64(8 + layout.covered))
        let forged = try reopen()
        for i in order.prefix(2 * blocks) where forged.readFailure == nil { _ = forged.sequence(ids[i].key) }
        #expect(!forged.isCheckedWhole)
        let refusal = try #require(forged.readFailure)
        #expect(refusal.code == .usage && refusal.message.contains("its rows are out of order at row 15001"), "\(refusal.message)")
    }

    @Test("a merge refuses a saved state's rows out of order, or a claim whose strings lie outside its string area, though their checksums were made to match: nothing forged is saved again with checksums of its own")
    func mergeRefusesForgedTables() throws {
        let (table, ids, _) = try Self.randomTable(ids: 3000, claims: 300, seed: 15)
        let layout = table.storedLayout
        /// `table` stored with `change` made to its bytes and every block's checksum remade.
        func forged(_ change: (inout [UInt8]) -> Void) throws -> RuleTable {
            let (file, open) = try Self.stored(table)
            var bytes = try file.read(at: 8, count: layout.covered)
            change(&bytes)
            var hashes = StoredTables.BlockHasher(salt: table.digest)
            bytes.withUnsafeBytes { hashes.add($0) }
            try file.write(bytes, at: 8)
            try file.write(hashes.finish(), at: UInt64(8 + layout.covered))
            return try open()
        }
        let swapped = try forged { bytes in
            let (a, b) = (1000 * RuleTable.idRow, 1001 * RuleTable.idRow)
            let first = Array(bytes[a..<(a + RuleTable.idRow)])
            bytes.replaceSubrange(a..<(a + RuleTable.idRow), with: bytes[b..<(b + RuleTable.idRow)])
            bytes.replaceSubrange(b..<(b + RuleTable.idRow), with: first)
        }
        let claimOffset = ids.count * RuleTable.idRow + 100 * RuleTable.claimRow + 40
        let outside = try forged { bytes in
            bytes.replaceSubrange(claimOffset..<(claimOffset + 4), with: [0x00, 0xff, 0xff, 0xff])
        }
        let (other, _, _) = try Self.randomTable(ids: 50, claims: 5, seed: 16)
        for (source, words) in [(swapped, "its rows are out of order at row 1001"), (outside, "a claim's strings lie outside its string area")] {
            let refusal = #expect(throws: LedgerError(.usage, "")) { _ = try RuleTable.merge([source, other], in: RuleStateStorage.temporaryDirectory) }
            #expect(refusal?.message.contains(words) == true, "\(refusal?.message ?? "")")
            #expect(source.readFailure?.message.contains(words) == true, "\(String(describing: source.readFailure))")
        }
    }

    @Test("the Bloom filter lets about 1% of absent keys through, never a present one")
    func bloomFilter() throws {
        var random = SplitMix64(seed: 9)
        func key() -> Digest { try! Digest(rawRepresentation: (0..<4).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }) }
        var index = RowIndex(filterCapacity: 20_000)
        let present = (0..<20_000).map { _ in key() }.sorted()
        for k in present { index.add(k) }
        #expect(present.allSatisfy { index.mayContain($0) })
        let passed = (0..<20_000).filter { _ in index.mayContain(key()) }.count
        #expect(passed < 400, "\(passed) of 20,000 absent keys passed")
    }

    @Test("a merge keeps every row once and, for a key in several tables, the newest table's row")
    func mergeNewestWins() throws {
        let directory = RuleStateStorage.temporaryDirectory
        let shared = RuleTable.key(RuleTable.claimKind, "c1")
        let asserted = (key: shared, retracted: UInt64.max, fact: Array("f1".utf8), author: Array("inv".utf8))
        let retracted = (key: shared, retracted: UInt64(9), fact: Array("f1".utf8), author: Array("inv".utf8))
        let older = try RuleTable.write(ids: [(RuleTable.key(IDKind.event.rawValue, "s1"), 1)], claims: [asserted], in: directory)
        let newer = try RuleTable.write(ids: [(RuleTable.key(IDKind.event.rawValue, "s2"), 9)], claims: [retracted], in: directory)
        let merged = try RuleTable.merge([older, newer], in: directory)
        #expect(merged.claims.rows == 1 && merged.ids.rows == 2)
        #expect(merged.claim(shared)?.retractedAt == 9)
        #expect(merged.sequence(RuleTable.key(IDKind.event.rawValue, "s1")) == 1 && merged.sequence(RuleTable.key(IDKind.event.rawValue, "s2")) == 9)
        // The claim must be there: a missing claim would make `?.retractedAt == nil` hold too.
        let olderWins = try #require(try RuleTable.merge([newer, older], in: directory).claim(shared))
        #expect(olderWins.retractedAt == nil && olderWins.fact == "f1" && olderWins.author == "inv")
    }

    @Test("a temporary directory that cannot be written stops verification with a message naming it and TMPDIR")
    func unwritableDirectory() throws {
        let f = try Fixture()
        try f.populate()
        let storage = RuleStateStorage(directory: f.root.appendingPathComponent("missing").path, recordsInMemory: 2)
        #expect(throws: LedgerError(.io, "")) { try Verifier.verify(directory: f.directory, ruleState: storage) }
        do {
            _ = try Verifier.verify(directory: f.directory, ruleState: storage)
        } catch {
            #expect(error.message.contains("missing") && error.message.contains("TMPDIR"), "\(error.message)")
        }
        // Opening a writer, which must rebuild the state, says why it cannot, and writes nothing.
        let before = try f.logBytes()
        #expect(throws: LedgerError(.io, "")) { try LedgerWriter(directory: f.directory, ruleState: storage) }
        #expect(try f.logBytes() == before)
    }

    /// Cuts every table of `state`'s base to nothing, as a disk that lost them would; returns
    /// what puts them back, as a disk whose error passed would.
    @discardableResult
    static func cutTables(of state: LedgerState) throws -> () throws -> Void {
        let tables = try #require((state.base as? RuleRuns)?.tables)
        #expect(!tables.isEmpty)
        let contents = try tables.map { try $0.file.read(at: 0, count: $0.byteCount) }
        for table in tables { #expect(ftruncate(table.file.fd, 0) == 0) }
        return {
            for (table, bytes) in zip(tables, contents) {
                #expect(bytes.withUnsafeBytes { pwrite(table.file.fd, $0.baseAddress, $0.count, 0) } == bytes.count)
            }
        }
    }

    @Test("a writer whose rule state on disk cannot be read rebuilds it from the log and checks the batch again")
    func writerReadFailure() throws {
        let f = try Fixture()
        try f.populate()
        let writer = try LedgerWriter(directory: f.directory, ruleState: RuleStateStorage(recordsInMemory: 2))
        try Self.cutTables(of: writer.state)
        // Claim c9 on fact f1: the fact is in a table that can no longer be read, so the first
        // check would answer "no such fact". Rebuilt from the log, the state knows it.
        let claim = try f.sign(["type": "claim.asserted", "id": "c9", "claim": "c9", "fact": "f1", "stance": "affirms", "statement": "S"], as: "inv")
        #expect(try writer.append([claim]).map(\.sequence) == [10])
        // Its own temporary tables failed, not a kept state: nothing is said to be dropped.
        #expect(writer.ledger.report.droppedRuleState == nil)
        // A repeated id is still refused after the rebuild: the rules hold over the whole log.
        let again = try f.sign(["type": "claim.asserted", "id": "c9", "claim": "c9", "fact": "f1", "stance": "denies", "statement": "T"], as: "inv")
        #expect(throws: LedgerError(.duplicateID, "")) { try writer.append([again]) }
        #expect(try Verifier.verify(directory: f.directory).isIntact)
    }

    @Test("a table that fails a lookup stops the next move to disk, instead of being merged away with its failure")
    func failureNotMergedAway() throws {
        let f = try Self.ledger(seed: 31, count: 60, breakRules: false)
        let storage = RuleStateStorage(recordsInMemory: 4)
        var state = LedgerState()
        let lines = try f.logLines()
        var facts: [String] = []
        for (i, line) in lines.enumerated() {
            let record = try Record(stored: line)
            let event = try Event(payload: record.envelope.payload)
            if case let .factOpened(fact, _, _, _) = event.body { facts.append(fact) }
            try state.admit(record.envelope, event: event, entryID: Record.entryID(of: line), sequence: UInt64(i), signaturesChecked: true)
            if i < 50 { try storage.moveOutIfDue(&state) }
        }
        #expect(state.sequence(of: .fact, facts[0]) != nil)
        let restore = try Self.cutTables(of: state)
        #expect(state.sequence(of: .fact, facts[0]) == nil)
        #expect(state.base?.readFailure?.code == .io)
        // The disk recovers: the tables read again, and a merge would succeed and drop the
        // table that failed.
        try restore()
        #expect(state.sequence(of: .fact, facts[0]) != nil)
        #expect(throws: LedgerError(.io, "")) { try storage.moveOutIfDue(&state) }
    }

    /// A valid random ledger (``ledger(seed:count:breakRules:)``), the rule state saved by its full
    /// verification at its checkpoint, and that checkpoint's text.
    static func ledgerWithSavedState(seed: UInt64, count: Int) throws -> (fixture: Fixture, state: String, trusted: [UInt8]) {
        let f = try Self.ledger(seed: seed, count: count, breakRules: false)
        let path = f.root.appendingPathComponent("saved.state").path
        _ = try Verifier.verify(directory: f.directory, saveState: path)
        return (f, path, try Array(CheckpointStore(ledgerDirectory: f.directory).newest()!.text))
    }

    @Test("verify --since with a saved state cut short after it was opened fails, whether or not its table was merged")
    func savedStateCutShort() throws {
        let (f, path, trusted) = try Self.ledgerWithSavedState(seed: 41, count: 120)
        var statements = Statements(seed: 42, breakRules: false)
        // Statements the rules refuse are skipped; enough must land for the state to be behind.
        var appended = 0
        for _ in 0..<30 {
            let (event, author) = statements.next(entries: [])
            if (try? f.append(event, as: author)) != nil { appended += 1 }
        }
        #expect(appended >= 10)
        try Self.signCheckpoint(f)
        let verifier = try CheckpointVerifier(origin: "test.example/ledger", log: NoteVerifier(name: "test.example/ledger", publicKey: Self.logKey.publicKey))
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        for every: UInt64 in [.max, 1] {
            try whole.write(to: URL(fileURLWithPath: path))
            let saved = try SavedState(path: path)
            #expect(truncate(path, 200) == 0)
            #expect(throws: LedgerError(.io, ""), "every \(every)") {
                try Verifier.verify(directory: f.directory, since: trusted, verifier: verifier, state: saved, ruleState: RuleStateStorage(recordsInMemory: every))
            }
        }
    }

    @Test("tables of tens of thousands of rows, written and merged in many buffers, answer every lookup")
    func largeTables() throws {
        var random = SplitMix64(seed: 13)
        func key() -> Digest { try! Digest(rawRepresentation: (0..<4).flatMap { _ in withUnsafeBytes(of: random.next()) { Array($0) } }) }
        let directory = RuleStateStorage.temporaryDirectory
        var tables: [RuleTable] = []
        var ids: [(key: Digest, sequence: UInt64)] = []
        var claims: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])] = []
        for t in 0..<2 {
            let tableIDs = (0..<30_000).map { i in (key: key(), sequence: UInt64(t * 100_000 + i)) }.sorted { $0.key < $1.key }
            var tableClaims: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])] = []
            for i in 0..<30_000 {
                tableClaims.append((key(), .max, Array("fact-\(t)-\(i)-".utf8) + [UInt8](repeating: 0x61, count: 90), Array("party-\(i % 20)".utf8)))
            }
            tableClaims.sort { $0.key < $1.key }
            tables.append(try RuleTable.write(ids: tableIDs, claims: tableClaims, in: directory))
            ids += tableIDs
            claims += tableClaims
        }
        let merged = try RuleTable.merge(tables, in: directory)
        #expect(merged.ids.rows == 60_000 && merged.claims.rows == 60_000 && merged.byteCount > 9_000_000)
        for row in ids where row.sequence % 7 == 0 { #expect(merged.sequence(row.key) == row.sequence) }
        for row in claims.prefix(5_000) { #expect(merged.claim(row.key)?.fact == String(decoding: row.fact, as: UTF8.self)) }
        #expect(merged.readFailure == nil)
    }
}
