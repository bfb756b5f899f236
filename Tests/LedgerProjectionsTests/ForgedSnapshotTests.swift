import Foundation
import LedgerCore
@testable import LedgerProjections
import LedgerStore
import Testing

/// Snapshots are caches anyone who can write the ledger directory can replace, checksums and
/// all. A forged index may mislead, but a replay or a query from it must end, without a crash,
/// and what it meets out of range must refuse the answer.
@Suite("Forged snapshots")
struct ForgedSnapshotTests {
    /// A number to forge into a column of `count` elements: the edges of its range and of the
    /// type's, or any.
    static func nasty(_ count: Int, _ random: inout SplitMix64) -> Int64 {
        let edges: [Int64] = [-2, -1, 0, 1, Int64(count) - 1, Int64(count), Int64(count) + 1, Int64(Int32.max), Int64(Int32.min)]
        return random.next() % 3 == 0 ? Int64(bitPattern: random.next()) : edges[Int(random.next() % UInt64(edges.count))]
    }

    /// Changes one number somewhere in `state`'s index.
    static func forge(_ state: inout DisputedFactsProjection.State, _ random: inout SplitMix64) -> String {
        func pick(_ count: Int) -> Int { Int(random.next() % UInt64(max(count, 1))) }
        let nodes = state.parent.count
        let links = state.linkValue.count
        /// A number within the edges of `range` into one element of `column`.
        func number(_ column: WritableKeyPath<DisputedFactsProjection.State, Column<Int32>>, _ name: String, around range: Int) -> String {
            let i = pick(state[keyPath: column].count)
            state[keyPath: column][i] = Int32(truncatingIfNeeded: nasty(range, &random))
            return "\(name)[\(i)]"
        }
        switch random.next() % 11 {
        case 0: return number(\.parent, "parent", around: nodes)
        case 1: return number(\.head, "head", around: links)
        case 2: return number(\.tail, "tail", around: links)
        case 3: return number(\.linkNext, "linkNext", around: links)
        case 4:
            let i = pick(links)
            let tag = DisputedFactsProjection.Link.Tag(rawValue: random.next() % 4)!
            state.linkValue[i] = DisputedFactsProjection.Link(tag, UInt64(truncatingIfNeeded: nasty(nodes, &random)) & (1 << 62 - 1)).value
            return "linkValue[\(i)]"
        case 5: return number(\.factOrder, "factOrder", around: nodes)
        case 10: return number(\.linkOwner, "linkOwner", around: nodes)
        case 6:
            let i = pick(nodes)
            state.names.ends[i] = UInt64(bitPattern: nasty(state.names.bytes.count, &random))
            return "names.ends[\(i)]"
        case 7:
            var slots = state.claims.slots
            let i = pick(slots.count)
            slots[i] = (slots[pick(slots.count)] >> 32) << 32 | UInt64(UInt32(truncatingIfNeeded: nasty(nodes, &random)))
            state.claims = NameTable(stored: slots, count: state.claims.count)!
            return "claims.slots[\(i)]"
        case 8:
            var slots = state.facts.slots
            for i in slots.indices where random.next() % 2 == 0 { slots[i] = slots[pick(slots.count)] | 1 }
            state.facts = NameTable(stored: slots, count: state.facts.count)!
            return "facts.slots, half of them"
        default:
            var nodeColumn = state.entries.nodes
            let i = pick(nodeColumn.count)
            nodeColumn[i] = Int32(truncatingIfNeeded: nasty(nodes, &random))
            state.entries = EntryTable(hasher: state.hasher, words: state.entries.words, nodes: nodeColumn, count: state.entries.count, collided: state.entries.collided)!
            return "entries.nodes[\(i)]"
        }
    }

    @Test("a snapshot whose key table lists a key under another id than the hash of its bytes, checksums valid, is not resumed from: the replay answers as the log")
    func keyListedElsewhere() throws {
        let random = try RandomCase(seed: PropertyTests.seeds[0], statements: 60)
        let ledger = try random.ledger.open()
        let projection = DisputedFactsProjection()
        let fresh = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: fresh.info.position)
        let expected = try projection.facts(in: fresh.state, context: context).map { canonical($0.json) }
        let directory = TestLedger.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: directory)
        let base = try engine.replay(projection, to: .sequence(ledger.count / 2), snapshots: .none)
        // As written, the snapshot is resumed from.
        try engine.writeSnapshot(projection, of: base)
        #expect(try engine.replay(projection, snapshots: .read).info.resumedFrom != nil)
        #expect(base.state.keys.keys.count >= 4)
        for (id, key) in base.state.keys.keys {
            try? FileManager.default.removeItem(atPath: directory)
            var state = base.state
            state.keys.keys[id] = nil
            state.keys.keys[String(id.dropLast()) + (id.last == "0" ? "1" : "0")] = key
            let path = try engine.writeSnapshot(projection, of: Replay(state: state, info: base.info))
            #expect(throws: (any Error).self, "key \(id)") {
                do {
                    _ = try SnapshotBinary.decode(Snapshot<DisputedFactsProjection.State>.self, fromFile: path)
                } catch {
                    #expect(String(describing: error).contains("is not listed under the hash of its public key"), "\(error)")
                    throw error
                }
            }
            let replay = try engine.replay(projection, snapshots: .read)
            #expect(replay.info.resumedFrom == nil && replay.info.notes.contains { $0.contains("cannot be read or decoded") }, "key \(id): \(replay.info.notes)")
            #expect(try projection.facts(in: replay.state, context: context).map { canonical($0.json) } == expected, "key \(id)")
        }
    }

    @Test("a snapshot with numbers forged into its index and valid checksums ends every replay and query without a crash: it answers, refuses, or misleads as a forger meant", arguments: PropertyTests.seeds)
    func randomForgeries(seed: UInt64) throws {
        let random = try RandomCase(seed: seed, statements: 60)
        let ledger = try random.ledger.open()
        let projection = DisputedFactsProjection()
        let fresh = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let context = ReportContext(ledger: ledger, blobs: nil, position: fresh.info.position)
        let expected = try projection.facts(in: fresh.state, context: context).map { canonical($0.json) }
        let factIDs = try fresh.state.factIDs()
        let directory = TestLedger.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: directory)
        // Half the log after the snapshot: its records are applied to the forged index.
        let base = try engine.replay(projection, to: .sequence(ledger.count / 2), snapshots: .none)
        var generator = SplitMix64(seed: seed ^ 0xF0F0)
        var (answered, replayedAgain, refused, misled) = (0, 0, 0, 0)
        for trial in 0..<150 {
            try? FileManager.default.removeItem(atPath: directory)
            var state = base.state
            let forged = (0...(generator.next() % 3)).map { _ in Self.forge(&state, &generator) }
            try engine.writeSnapshot(projection, of: Replay(state: state, info: base.info))
            // Half the trials as commands run: a new snapshot is written where the replay stops.
            let policy: SnapshotPolicy = trial % 2 == 0 ? .read : .refresh(atLeast: 1)
            let replay = try engine.replay(projection, snapshots: policy)
            let what = "seed \(String(seed, radix: 16)) trial \(trial), forged \(forged)"
            do {
                let answer = try projection.facts(in: replay.state, context: context).map { canonical($0.json) }
                _ = try projection.fact(factIDs[trial % factIDs.count], in: replay.state, context: context)
                if replay.info.resumedFrom == nil {
                    #expect(answer == expected, "\(what): replayed again without the snapshot")
                    replayedAgain += 1
                } else if answer == expected {
                    answered += 1
                } else {
                    misled += 1
                }
            } catch {
                #expect(error.code == .io && error.message.contains("is damaged"), "\(what): \(error.message)")
                refused += 1
                // The snapshot refused, and any written from it, are gone: the next run answers
                // as the log does.
                let again = try engine.replay(projection, snapshots: .read)
                #expect(try projection.facts(in: again.state, context: context).map { canonical($0.json) } == expected, "\(what): run again")
            }
        }
        print("forged snapshots, seed \(String(seed, radix: 16)): \(answered) answered as the log, \(replayedAgain) replayed again, \(refused) refused, \(misled) misled")
        // Damage is met both ways: in the replay (which goes again without it) and in queries.
        // A number out of range is read as "none" where it is used (never past an array's end), so
        // a forged snapshot may mislead: checksums cannot stand against a forger, and `--no-snapshots`
        // answers from the log alone.
        #expect(replayedAgain > 0 && refused > 0)
    }
}
