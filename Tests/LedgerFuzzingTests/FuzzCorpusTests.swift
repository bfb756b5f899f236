import Foundation
import LedgerFuzzing
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
}
