import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerFuzzing
import LedgerProjections
import LedgerStore
import Testing

@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/fuzz/corpus")

    @Test("every committed fuzz input, including each one that once crashed, runs through the harness, against a base state that holds its whole history")
    func replayCorpus() throws {
        // The harness admits its history with `try?`: a statement it refused would leave every
        // input checked against less than it should be, silently. Its state is private; Mirror
        // reads it without a way in made only for tests.
        let history = FuzzHarness.history(keys: FuzzHarness.keys)
        let base = try #require(Mirror(reflecting: FuzzHarness.shared).descendant("state") as? LedgerState)
        #expect(history.count == 5 && base.count == UInt64(history.count), "\(base.count) of \(history.count) statements admitted")
        #expect(base.origin == "fuzz.test/ledger")
        #expect(base.parties.keys.sorted() == ["admin", "inv", "rev", "sub"] && base.keys.count == 4)
        #expect(base.sequence(of: .fact, "f1") == 4)
        for (sequence, envelope) in history.enumerated() {
            let id = try Event(payload: envelope.payload).id
            #expect(base.sequence(of: .event, id) == UInt64(sequence), "\(id)")
        }
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.corpus.path)
        #expect(files.count >= FuzzHarness.shared.seeds().count, "the seed corpus is committed")
        for file in files {
            FuzzHarness.shared.run([UInt8](try Data(contentsOf: Self.corpus.appendingPathComponent(file))))
        }
    }

    @Test("the seeds are valid envelopes and records, and the committed corpus holds them")
    func seeds() throws {
        let seeds = FuzzHarness.shared.seeds()
        #expect(seeds.count >= 14)
        if let target = ProcessInfo.processInfo.environment["LEDGER_FUZZ_WRITE_SEEDS"] {
            for (n, seed) in seeds.enumerated() {
                try Data(seed).write(to: URL(fileURLWithPath: target).appendingPathComponent(String(format: "seed-%02d", n)))
            }
        }
        for (n, seed) in seeds.enumerated() {
            let stored = try? Data(contentsOf: Self.corpus.appendingPathComponent(String(format: "seed-%02d", n)))
            #expect(stored.map { [UInt8]($0) } == seed, "seed-\(n) is stale: regenerate with LEDGER_FUZZ_WRITE_SEEDS=Tools/fuzz/corpus")
        }
    }

    @Test("the snapshot seed is resumed from and answers as the log, read only and refreshed; a changed byte of its tree is decoded, of its columns refused or set aside, and neither crashes")
    func snapshotSeed() throws {
        let fixture = SnapshotFuzzing.fixture
        let policies: [SnapshotPolicy] = [.read, .refresh(atLeast: 1)]
        try #require(fixture.seed.starts(with: SnapshotBinary.magic) && fixture.seed.count <= 32768, "\(fixture.seed.count) bytes")
        #expect(SnapshotBinary.withTreeChecksumMatching(fixture.seed) == fixture.seed)
        for policy in policies { #expect(SnapshotFuzzing.run(fixture.seed, policy: policy).outcome == .answered) }
        // The committed seed was written by another process, with another key for its tables.
        let path = Self.corpus.appendingPathComponent("snapshot-seed")
        if let target = ProcessInfo.processInfo.environment["LEDGER_FUZZ_WRITE_SEEDS"] {
            try Data(fixture.seed).write(to: URL(fileURLWithPath: target).appendingPathComponent("snapshot-seed"))
        }
        let committed = [UInt8](try Data(contentsOf: path))
        #expect(SnapshotFuzzing.run(committed, policy: .read).outcome == .answered, "snapshot-seed is stale: regenerate with LEDGER_FUZZ_WRITE_SEEDS=Tools/fuzz/corpus")
        // A snapshot that is not this log's (its entry id changed) is set aside, and says why.
        let entryID = try #require(fixture.seed.firstRange(of: Array("entry_id".utf8)))
        var otherLog = fixture.seed
        otherLog[entryID.upperBound + 4] ^= 0x01
        let setAside = SnapshotFuzzing.run(otherLog, policy: .read)
        #expect(setAside.outcome == .notUsed && setAside.notes.contains { $0.contains("is not the one it was taken at") }, "\(setAside)")
        // Every eleventh byte of the tree changed, its checksum remade, replayed each way in turn:
        // each run ends; some are set aside, some still resumed from (those that mislead change
        // the keys' table: a forgery, which only the checksum stands against).
        let treeEnd = try #require(SnapshotBinary.treeEnd(fixture.seed))
        var outcomes: [SnapshotFuzzing.Outcome: Int] = [:]
        for (n, at) in stride(from: SnapshotBinary.magic.count + 8, to: treeEnd, by: 11).enumerated() {
            var changed = fixture.seed
            changed[at] ^= 0x5A
            outcomes[SnapshotFuzzing.run(changed, policy: policies[n % 2]).outcome, default: 0] += 1
        }
        print("snapshot seed, tree bytes changed: \(outcomes)")
        #expect(outcomes[.notUsed, default: 0] > 0 && outcomes[.answered, default: 0] + outcomes[.misled, default: 0] > 0, "\(outcomes)")
        // A changed byte of the columns' data is refused by its block's hash when a query reads
        // it, or set aside when the replay does; either way no answer comes from it.
        for (n, at) in stride(from: treeEnd + 32, to: fixture.seed.count, by: 97).enumerated() {
            var changed = fixture.seed
            changed[at] ^= 0x01
            let outcome = SnapshotFuzzing.run(changed, policy: policies[n % 2]).outcome
            #expect(outcome == .refused || outcome == .notUsed, "a changed data byte at \(at): \(outcome)")
        }
    }

    @Test("the saved-state seed opens, finds the ids it holds and no others, and fits the fuzzer's inputs; its checksums are remade, not trusted")
    func savedStateSeed() throws {
        let seed = try #require(FuzzHarness.shared.seeds().last)
        #expect(seed.starts(with: SavedState.magic) && seed.count <= 32768, "\(seed.count) bytes")
        #expect(SavedState.withChecksumsMatching(seed) == (seed, true))
        let state = try #require(SavedStateFuzzing.withFile(holding: seed) { try? SavedState(path: $0) } ?? nil)
        #expect(state.sequence(of: .fact, "f0") != nil && state.sequence(of: .fact, "f58") != nil && state.sequence(of: .fact, "f1") != nil)
        #expect(state.sequence(of: .fact, "f3") == nil && state.sequence(of: .evidence, "e1") == nil)
        #expect(state.claim("c0") != nil && state.claim("c1") == nil)
        #expect(state.sequence(of: .attestation, "a1") != nil && state.sequence(ofEntry: SavedStateFuzzing.entries[0]) != nil)
        try state.checkWhole()
        // A changed byte of a row (the first id row's sequence number), checksums remade, opens,
        // passes the whole check and answers differently; with the seed's checksums it is refused.
        let firstRow = SavedState.tablesStart(headerEnd: 16 + SavedState.headerLength(seed))
        var changed = seed
        changed[firstRow + 32] ^= 0x01
        let remade = SavedState.withChecksumsMatching(changed)
        #expect(remade.complete && remade.bytes != seed && remade.bytes.count == seed.count)
        FuzzHarness.shared.run(changed)
        let forged = try #require(SavedStateFuzzing.withFile(holding: remade.bytes) { try? SavedState(path: $0) } ?? nil)
        try forged.checkWhole()
        func answers(_ state: SavedState) -> [UInt64?] { SavedStateFuzzing.lookups.compactMap { kind, id in kind.map { state.sequence(of: $0, id) } } }
        #expect(answers(forged) != answers(state))
        let damaged = try #require(SavedStateFuzzing.withFile(holding: changed) { try? SavedState(path: $0) } ?? nil)
        #expect(throws: LedgerError.self) { try damaged.checkWhole() }
    }
}
