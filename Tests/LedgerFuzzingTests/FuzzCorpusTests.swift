import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerFuzzing
import LedgerStore
import Testing

@Suite("Fuzz corpus")
struct FuzzCorpusTests {
    static let corpus = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/fuzz/corpus")

    @Test("every committed fuzz input, including each one that once crashed, runs through the harness")
    func replayCorpus() throws {
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
