import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore
import Testing

/// Builds a random valid ledger: every statement obeys the append rules, chosen by a seeded
/// generator so that a failure can be replayed from its printed seed.
struct RandomCase {
    var random: SplitMix64
    let ledger: TestLedger
    var facts: [String] = []
    var claims: [(id: String, fact: String, author: String, active: Bool)] = []
    var evidence: [String] = []
    /// Entry ids of the statements about facts, claims and evidence, attestations among them.
    var entries: [String] = []
    var attestations: [String] = []
    var nextID = 0
    var nextKey = 100

    static let writers = ["amnesty", "reviewer", "inv2"]
    static let everyone = ["admin", "amnesty", "idemia", "axis", "reviewer", "inv2"]

    init(seed: UInt64, statements: Int) throws {
        random = SplitMix64(seed: seed)
        ledger = try TestLedger()
        try ledger.register("inv2", role: "investigator", key: 6)
        for _ in 0..<statements { try step() }
    }

    mutating func id(_ prefix: String) -> String {
        nextID += 1
        return "\(prefix)-\(nextID)"
    }

    mutating func pick<T>(_ list: [T]) -> T? {
        list.isEmpty ? nil : list[Int.random(in: 0..<list.count, using: &random)]
    }

    mutating func subset(_ list: [String], chance: Int) -> [String] {
        list.filter { _ in Int.random(in: 0..<100, using: &random) < chance }
    }

    mutating func step() throws {
        let choice = Int.random(in: 0..<100, using: &random)
        let active = claims.filter(\.active)
        switch choice {
        case 0..<10 where true, _ where facts.isEmpty:
            let fact = id("F")
            let entry = try ledger.openFact(fact, by: pick(["amnesty", "reviewer", "admin", "inv2"]) ?? "amnesty")
            facts.append(fact)
            entries.append(entry.entryID.hexString)
        case 10..<30:
            let claim = id("C")
            let fact = pick(facts) ?? ""
            let author = pick(Self.everyone) ?? "admin"
            let entry = try ledger.assert(claim, fact: fact, by: author, pick(["affirms", "denies", "qualifies"]) ?? "affirms", published: Bool.random(using: &random) ? 1_600_000_000 : nil)
            claims.append((claim, fact, author, true))
            entries.append(entry.entryID.hexString)
        case 30..<45 where !active.isEmpty:
            let target = pick(active)!
            let claim = id("C")
            let author = pick(Self.everyone) ?? "admin"
            let entry = try ledger.counter(claim, counters: target.id, fact: target.fact, by: author, pick(["affirms", "denies", "qualifies"]) ?? "denies")
            claims.append((claim, target.fact, author, true))
            entries.append(entry.entryID.hexString)
        case 45..<52 where !active.isEmpty:
            let target = pick(active)!
            let statement: String? = Bool.random(using: &random) ? "amended \(nextID)" : nil
            try ledger.amend(target.id, by: target.author, statement: statement, stance: statement == nil ? pick(["affirms", "denies", "qualifies"]) : nil)
        case 52..<57 where !active.isEmpty:
            let target = pick(active)!
            try ledger.retract(target.id, by: target.author)
            if let i = claims.firstIndex(where: { $0.id == target.id }) { claims[i].active = false }
        case 57..<72 where !active.isEmpty:
            let item = id("E")
            // Evidence may only support or contradict active claims.
            let ids = active.map(\.id)
            let entry = try ledger.attach(item, by: pick(Self.writers) ?? "amnesty", supports: subset(ids, chance: 25), contradicts: subset(ids, chance: 25), custodian: Bool.random(using: &random) ? "lab" : nil)
            evidence.append(item)
            entries.append(entry.entryID.hexString)
        case 72..<80 where !evidence.isEmpty:
            let holders = ["lab", "court", "archive"]
            let entry = try ledger.custody(pick(evidence)!, pick(["collected", "transferred", "copied", "working-copy-deleted"])!, from: pick(holders + ["x"]), to: pick(holders), by: pick(Self.writers)!)
            entries.append(entry.entryID.hexString)
        case 80..<87 where !(claims.isEmpty && evidence.isEmpty):
            // Often an earlier attestation, so that chains of them are common.
            let chained = Int.random(in: 0..<100, using: &random) < 30 ? pick(attestations) : nil
            let target = chained ?? pick(claims.map(\.id) + evidence + entries)!
            let entry = try ledger.attest(id("A"), target: target, by: pick(Self.everyone)!, kind: pick(["witnessed", "reviewed", "verified-copy"])!)
            entries.append(entry.entryID.hexString)
            attestations.append(entry.entryID.hexString)
        case 87..<93:
            let entry = try ledger.finding(id("FD"), fact: pick(facts)!, pick(["substantiated", "unsubstantiated", "inconclusive"])!, reliesOn: subset(evidence, chance: 30))
            entries.append(entry.entryID.hexString)
        case 93..<97:
            nextKey += 1
            let party = pick(["amnesty", "idemia", "inv2"])!
            try ledger.addKey(party, key: nextKey, by: Bool.random(using: &random) ? "admin" : party)
        default:
            let party = pick(["amnesty", "idemia", "inv2"])!
            if let keys = ledger.keys[party], keys.count >= 2 {
                try ledger.revokeKey(party, keys[0], by: Bool.random(using: &random) ? "admin" : party)
            } else {
                nextKey += 1
                try ledger.addKey(party, key: nextKey)
            }
        }
    }
}

/// Replays `projection` and returns its state and its report as canonical JSON.
func answer<P: Projection>(_ projection: P, _ engine: ReplayEngine, to target: ReplayTarget = .end, snapshots: SnapshotPolicy = .none) throws -> (state: P.State, report: String, info: ReplayInfo) {
    let replay = try engine.replay(projection, to: target, snapshots: snapshots)
    let report = try projection.wholeReport(replay.state, context: ReportContext(ledger: engine.ledger, blobs: nil, position: replay.info.position))
    return (replay.state, canonical(report), replay.info)
}

@Suite("Replay properties over random valid ledgers")
struct PropertyTests {
    static let seeds: [UInt64] = [0x5eed_0001, 0x5eed_0002, 0x5eed_0003, 0xdead_beef]

    /// Runs `check` with every built-in projection over a random ledger of `statements`
    /// statements made from `seed`.
    func eachProjection(seed: UInt64, statements: Int, _ what: String, _ check: (any Projection, Ledger) throws -> Void) throws {
        print("projection property test seed \(String(seed, radix: 16)) (\(what))")
        let random = try RandomCase(seed: seed, statements: statements)
        let ledger = try random.ledger.open()
        for projection in ProjectionRegistry.builtIn.projections { try check(projection, ledger) }
    }

    @Test("replay from any snapshot point equals replay from genesis", arguments: seeds)
    func snapshotPoints(seed: UInt64) throws {
        try eachProjection(seed: seed, statements: 30, "snapshot points") { try checkSnapshotPoints($0, ledger: $1, seed: seed) }
    }

    func checkSnapshotPoints<P: Projection>(_ projection: P, ledger: Ledger, seed: UInt64) throws {
        let genesis = try answer(projection, ReplayEngine(withoutSnapshots: ledger))
        let directory = TestLedger.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var engine = ReplayEngine(ledger: ledger, snapshotDirectory: directory)
        engine.retainedSnapshots = 1
        for k in 0..<ledger.count {
            let partial = try engine.replay(projection, to: .sequence(k), snapshots: .none)
            try engine.writeSnapshot(projection, of: partial)
            let resumed = try answer(projection, engine, snapshots: .read)
            #expect(resumed.info.resumedFrom == k, "seed \(seed) \(projection.name) k \(k)")
            #expect(resumed.state == genesis.state, "seed \(seed) \(projection.name) resumed from \(k)")
            #expect(resumed.report == genesis.report, "seed \(seed) \(projection.name) resumed from \(k)")
        }
    }

    @Test("replay in stretches of any size, decoded on every core, equals replay in one stretch", arguments: seeds)
    func stretches(seed: UInt64) throws {
        try eachProjection(seed: seed, statements: 60, "stretches") { try checkStretches($0, ledger: $1, seed: seed) }
    }

    func checkStretches<P: Projection>(_ projection: P, ledger: Ledger, seed: UInt64) throws {
        for target in [ReplayTarget.end, .sequence(ledger.count / 2)] {
            let one = try answer(projection, ReplayEngine(withoutSnapshots: ledger), to: target)
            #expect(ledger.count < 512, "seed \(seed): the default stretch holds the whole ledger")
            for size in [1, 2, 5, 17] as [UInt64] {
                var engine = ReplayEngine(withoutSnapshots: ledger)
                engine.stretchRecords = size
                let cut = try answer(projection, engine, to: target)
                #expect(cut.state == one.state, "seed \(seed) \(projection.name) by \(size) to \(target)")
                #expect(cut.report == one.report, "seed \(seed) \(projection.name) by \(size) to \(target)")
                #expect(cut.info.position == one.info.position && cut.info.recordsRead == one.info.recordsRead)
                #expect(cut.info.skipped == one.info.skipped && cut.info.skippedCount == one.info.skippedCount)
            }
        }
    }

    @Test("replaying twice gives identical output", arguments: seeds)
    func deterministic(seed: UInt64) throws {
        print("projection property test seed \(String(seed, radix: 16)) (determinism)")
        let random = try RandomCase(seed: seed, statements: 60)
        for projection in ProjectionRegistry.builtIn.projections {
            let first = try projection.answer(using: ReplayEngine(withoutSnapshots: try random.ledger.open()), snapshots: .none, blobs: nil)
            let second = try projection.answer(using: ReplayEngine(withoutSnapshots: try random.ledger.open()), snapshots: .none, blobs: nil)
            #expect(canonical(try first.report()) == canonical(try second.report()), "seed \(seed) \(projection.name)")
        }
        // The facts view is non-trivial for these seeds.
        let facts = try random.ledger.facts(blobs: false)
        #expect(!facts.isEmpty, "seed \(seed)")
    }

    @Test("as of N equals replaying a copy of the log truncated after N", arguments: seeds)
    func truncation(seed: UInt64) throws {
        print("projection property test seed \(String(seed, radix: 16)) (truncation)")
        var random = try RandomCase(seed: seed, statements: 40)
        let ledger = try random.ledger.open()
        // Snapshots in the original ledger must not leak into earlier answers.
        for projection in ProjectionRegistry.builtIn.projections { _ = try projection.writeSnapshot(using: ReplayEngine(ledger: ledger)) }
        var points: [UInt64] = [0, ledger.count / 2, ledger.count - 1]
        for _ in 0..<5 { points.append(UInt64.random(in: 0..<ledger.count, using: &random.random)) }
        for n in points {
            let copy = try Ledger(directory: try random.ledger.truncatedCopy(through: n))
            #expect(copy.count == n + 1)
            for projection in ProjectionRegistry.builtIn.projections {
                try checkTruncation(projection, original: ledger, copy: copy, n: n, time: random.ledger.acceptedAt(n), seed: seed)
            }
        }
    }

    func checkTruncation<P: Projection>(_ projection: P, original: Ledger, copy: Ledger, n: UInt64, time: Timestamp, seed: UInt64) throws {
        let truncated = try answer(projection, ReplayEngine(withoutSnapshots: copy))
        let bySequence = try answer(projection, ReplayEngine(ledger: original), to: .sequence(n), snapshots: .read)
        let byTime = try answer(projection, ReplayEngine(ledger: original), to: .acceptedAt(time), snapshots: .read)
        #expect(bySequence.state == truncated.state, "seed \(seed) \(projection.name) as of \(n)")
        #expect(bySequence.report == truncated.report, "seed \(seed) \(projection.name) as of \(n)")
        #expect(byTime.report == truncated.report, "seed \(seed) \(projection.name) as of time of \(n)")
        #expect(bySequence.info.position.sequence == n)
    }
}
