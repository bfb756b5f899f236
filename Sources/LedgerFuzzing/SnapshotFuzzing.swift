import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore

/// A projection snapshot as the fuzzer sees it: an input that starts as a snapshot does
/// (`ELSNAP3`) has the checksum of its tree remade to match
/// (``SnapshotBinary/withTreeChecksumMatching(_:)``), so that changed bytes of the tree reach the
/// decoder, and is put as the one snapshot beside a small ledger of every event type (built once
/// a process). Then the disputed-facts index is replayed from it and all three reports read from
/// the state. Snapshots are caches that anyone who can write the ledger's directory can replace
/// (one whose checksum is not remade under the user's key is not resumed from; this remakes it,
/// as a holder of the key could), so the replay and every query must end without a crash:
///
/// - a snapshot the replay does not resume from (unreadable, or not this log's), or sets aside
///   for damage met while replaying, changes nothing: the reports are the log's;
/// - one it resumes from may mislead (it is trusted to be this log's index, as documented), or a
///   query refuses it as damaged; then the refused file is gone, and the next replay answers as
///   the log does.
///
/// Changed bytes of a column meet its blocks' hashes; forged column values with valid hashes are
/// the subject of a test of their own (`ForgedSnapshotTests`).
enum SnapshotFuzzing {
    /// The ledger, the name a snapshot of it must have, and its reports replayed from genesis.
    struct Fixture: Sendable {
        let ledger: String
        let snapshotName: String
        let expected: [String]
        /// A snapshot taken halfway through the log: the fuzzer's seed.
        let seed: [UInt8]
    }

    static let projection = DisputedFactsProjection(verifiesSignatures: false)

    /// The reports read from one state: disputed facts, timelines, evidence index.
    static func reports(_ state: DisputedFactsProjection.State, ledger: Ledger, position: ReplayPosition) throws(LedgerError) -> [String] {
        let context = ReportContext(ledger: ledger, blobs: nil, position: position)
        func text(_ value: JSONValue) -> String {
            var writer = JSONWriter()
            writer.value(value)
            return String(decoding: writer.bytes, as: UTF8.self)
        }
        return [
            text(try projection.wholeReport(state, context: context)),
            text(try TimelineProjection().wholeReport(state, context: context)),
            text(try EvidenceIndexProjection(verifiesSignatures: false).wholeReport(state, context: context)),
        ]
    }

    /// Where the fixture lies; removed when the process exits normally (a crash leaves it).
    static let directory = NSTemporaryDirectory() + "/ledger-fuzz-snapshots-\(getpid())-\(UUID().uuidString)"

    static let fixture: Fixture = {
        do throws(LedgerError) {
            return try makeFixture()
        } catch {
            preconditionFailure("the snapshot fuzzer's ledger cannot be built: \(error.message)")
        }
    }()

    private static func makeFixture() throws(LedgerError) -> Fixture {
        atexit { try? FileManager.default.removeItem(atPath: SnapshotFuzzing.directory) }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = directory + "/ledger"
        let time = Timestamp(seconds: 1_600_675_200)
        let keys = FuzzHarness.keys
        guard let admin = keys["admin"] else { preconditionFailure("the fuzzer's admin key") }
        let writer = try LedgerWriter.create(directory: path, origin: "fuzz.test/ledger", adminKey: admin, signedAt: time, acceptedAt: time)
        // The harness's history after its genesis (which `create` wrote), then the statements.
        let history = FuzzHarness.history(keys: keys).dropFirst()
        let statements = Self.statements.compactMap { FuzzHarness.sign($0.1, as: $0.0, keys: keys) }
        _ = try writer.append(Array(history) + statements, acceptedAt: time)
        // An attestation of an entry: its id names a record, not a node.
        let target = try writer.ledger.entryID(at: 7).hexString
        let attestation = FuzzHarness.sign(["type": "attestation.made", "id": "s-entry", "attestation": "a-entry", "target": .string(target), "kind": "reviewed"], as: "rev", keys: keys)
        _ = try writer.append(attestation.map { [$0] } ?? [], acceptedAt: time)

        let ledger = try Ledger(directory: path)
        let whole = try ReplayEngine(withoutSnapshots: ledger).replay(projection, snapshots: .none)
        let expected = try reports(whole.state, ledger: ledger, position: whole.info.position)
        let snapshots = directory + "/seed"
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: snapshots)
        let half = try engine.replay(projection, to: .sequence(ledger.count / 2), snapshots: .none)
        let written = try engine.writeSnapshot(projection, of: half)
        guard let seed = FileManager.default.contents(atPath: written) else { preconditionFailure("the seed snapshot cannot be read back") }
        try? FileManager.default.removeItem(atPath: snapshots)
        return Fixture(ledger: path, snapshotName: (written as NSString).lastPathComponent, expected: expected, seed: [UInt8](seed))
    }

    /// Facts with claims, counterclaims, evidence both ways, custody, attestations, findings,
    /// amendments and retractions, signed by the harness's parties.
    static var statements: [(String, [String: JSONValue])] {
        (0..<8).flatMap { i -> [(String, [String: JSONValue])] in
            func id(_ kind: String) -> JSONValue { .string("s-\(kind)\(i)") }
            var out: [(String, [String: JSONValue])] = [
                ("inv", ["type": "fact.opened", "id": id("f"), "fact": .string("f-\(i)"), "proposition": .string("P\(i)"), "subjects": ["sub"]]),
                ("sub", ["type": "claim.asserted", "id": id("c"), "claim": .string("c-\(i)"), "fact": .string("f-\(i)"), "stance": "denies", "statement": "No."]),
                ("inv", [
                    "type": "claim.countered", "id": id("k"), "claim": .string("k-\(i)"), "counters": .string("c-\(i)"), "fact": .string("f-\(i)"),
                    "stance": "affirms", "statement": "Yes.",
                ]),
                ("inv", [
                    "type": "evidence.attached", "id": id("e"), "evidence": .string("e-\(i)"), "sha256": .string(Digest.zero.hexString), "size": 1,
                    "media_type": "text/plain", "title": "T", "supports": .array([.string("k-\(i)")]), "contradicts": .array([.string("c-\(i)")]),
                ]),
                ("rev", ["type": "attestation.made", "id": id("a"), "attestation": .string("a-\(i)"), "target": .string("e-\(i)"), "kind": "reviewed"]),
            ]
            if i % 2 == 0 {
                out.append(("inv", ["type": "custody.recorded", "id": id("u"), "evidence": .string("e-\(i)"), "action": "copied", "from": "a", "to": "b"]))
            }
            if i % 3 == 0 {
                out.append(("rev", [
                    "type": "finding.recorded", "id": id("d"), "finding": .string("d-\(i)"), "fact": .string("f-\(i)"), "outcome": "inconclusive",
                    "rationale": "R", "relies_on": .array([.string("e-\(i)")]),
                ]))
            }
            if i % 4 == 1 { out.append(("sub", ["type": "claim.amended", "id": id("m"), "claim": .string("c-\(i)"), "statement": "Not quite."])) }
            if i % 4 == 3 { out.append(("sub", ["type": "claim.retracted", "id": id("r"), "claim": .string("c-\(i)"), "reason": "R"])) }
            return out
        }
    }

    /// What one replay from the snapshot `bytes` came to.
    enum Outcome: Equatable {
        /// The snapshot was not resumed from, or was set aside for damage the replay met; the
        /// reports are the log's.
        case notUsed
        /// Resumed from, and the reports are the log's.
        case answered
        /// Resumed from, and the reports differ from the log's (a forged index misleads).
        case misled
        /// A query refused the snapshot's state as damaged.
        case refused
    }

    /// Runs one input, replayed as queries run (read only) or as commands do (a new snapshot
    /// written where they stop), by the parity of its length.
    static func run(_ bytes: [UInt8]) {
        run(bytes, policy: bytes.count % 2 == 0 ? .read : .refresh(atLeast: 1))
    }

    /// Runs one input with `policy`; also answers the replay's notes.
    @discardableResult
    static func run(_ bytes: [UInt8], policy: SnapshotPolicy) -> (outcome: Outcome, notes: [String]) {
        let fixture = fixture
        let snapshots = directory + "/run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: snapshots) }
        let input = SnapshotBinary.withTreeChecksumMatching(bytes)
        guard (try? FileManager.default.createDirectory(atPath: snapshots, withIntermediateDirectories: false)) != nil,
            FileManager.default.createFile(atPath: snapshots + "/" + fixture.snapshotName, contents: Data(input))
        else { preconditionFailure("the snapshot fuzzer cannot write its snapshot in \(snapshots)") }
        guard let ledger = try? Ledger(directory: fixture.ledger) else { preconditionFailure("the snapshot fuzzer cannot open its ledger \(fixture.ledger)") }
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: snapshots)
        let replay: Replay<DisputedFactsProjection.State>
        do {
            replay = try engine.replay(projection, snapshots: policy)
        } catch {
            preconditionFailure("snapshot: the replay failed instead of setting the snapshot aside: \(error.message)")
        }
        let answer: [String]
        do {
            answer = try reports(replay.state, ledger: ledger, position: replay.info.position)
        } catch {
            precondition(replay.info.resumedFrom != nil, "snapshot: a replay from genesis failed a query: \(error.message)")
            precondition(error.code == .io && replay.snapshotDamage != nil, "snapshot: a query failed with something else than the snapshot's damage: \(error.message)")
            // The refused snapshot, and any written from it, are gone: the next replay answers
            // as the log does.
            let again = try? engine.replay(projection, snapshots: .read)
            precondition(again?.info.resumedFrom == nil, "snapshot: a refused snapshot was resumed from again")
            let answerAgain = again.flatMap { try? reports($0.state, ledger: ledger, position: $0.info.position) }
            precondition(answerAgain == fixture.expected, "snapshot: the replay after a refusal does not answer as the log")
            return (.refused, replay.info.notes)
        }
        guard replay.info.resumedFrom != nil else {
            precondition(answer == fixture.expected, "snapshot: a replay that set the snapshot aside does not answer as the log")
            return (.notUsed, replay.info.notes)
        }
        return (answer == fixture.expected ? .answered : .misled, replay.info.notes)
    }
}
