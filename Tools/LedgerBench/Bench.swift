import ArgumentParser
import Dispatch
import Foundation
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerProjections
import LedgerStore

/// `ledger-bench`: measures the ledger's hot paths against this machine's own limits.
@main
struct LedgerBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger-bench",
        abstract: "Benchmarks of the ledger's hot paths, as ratios to this machine's limits.",
        discussion: "Build in release mode: swift build -c release --product ledger-bench.",
        subcommands: [Run.self, Generate.self, Figure.self]
    )
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a synthetic ledger of N entries (20 parties, the v1 mix, payloads of about 200–1,070 bytes, 675 on average).")

    @Option(name: .long, help: "How many entries, genesis included: at least 1,021 (the genesis, the parties' registrations, and the 1,000 entries after its first checkpoint).")
    var entries: Int

    @Argument(help: "The new ledger directory.")
    var directory: String

    func validate() throws {
        // Below that, the checkpoint 1,000 entries before the end would fall among the
        // registrations, and the ledger would not have the entries asked for.
        guard entries >= 1021 else { throw ValidationError("--entries \(entries) is too few: give at least 1,021.") }
    }

    func run() throws {
        let start = now()
        _ = try Workload.generate(entries: entries, directory: directory) { written in
            if written % 100_000 < 1000 { FileHandle.standardError.write(Data("generated \(written) entries\n".utf8)) }
        }
        print("wrote \(entries) entries to \(directory) in \(String(format: "%.1f", now() - start)) s")
    }
}

/// One measured figure, printed by a child process as one JSON line.
struct Measurement: Codable {
    var figure: String
    var size: Int
    var value: Double
    var unit: String
    var limit: Double?
    var limitUnit: String?
    var detail: String?
    var peakRSSMiB: Double?
    /// The machine's rates: those the limits figure measured, or those a figure was compared with.
    var rates: Limits.Rates?

    /// Adds `note` after the detail there is, if any.
    mutating func addDetail(_ note: String) {
        detail = detail.map { "\($0); \(note)" } ?? note
    }
}

struct Figure: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Measure one figure (used by `run`, one child process per figure so that each has its own peak memory).", shouldDisplay: false)

    @Argument var name: String
    @Option var directory: String
    @Option var size: Int
    @Option var limit: Double = 0
    @Option(help: "How many records write-snapshot leaves after the snapshot it writes.") var after: Int = 1000
    @Option(help: "The benchmark ledger the append figures copy to --directory and append to.") var source: String?
    @Option(help: "How many statements append-batch appends a run (default: the size, at most 20,000): a writer that goes on longer checks its kept rule state whole once and reads it faster from then on.")
    var appends: Int?

    func run() throws {
        let m: Measurement
        switch name {
        case "limits": m = try Limits.measure()
        case "disk-sync": m = try Limits.diskSync(in: directory)
        case "verify": m = try measureVerify()
        case "append-batch": m = try measureBatchAppend()
        case "append-single": m = try measureSingleAppend()
        case "verify-since": m = try measureVerifySince()
        case "save-state": m = try saveTrustedState()
        case "merkle-append": m = try measureMerkleAppend()
        case "replay": m = try measureReplay(fromSnapshot: false)
        case "write-snapshot": m = try writeSnapshot()
        case "replay-snapshot": m = try measureReplay(fromSnapshot: true)
        case "fact-views": m = try measureFactViews()
        case "all-facts": m = try measureAllFacts()
        case "proofs": m = try measureProofs()
        default: throw ValidationError("unknown figure \(name)")
        }
        var measured = m
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        // ru_maxrss is in KiB on Linux: this process's peak resident memory, whole run included.
        measured.peakRSSMiB = Double(usage.ru_maxrss) / 1024
        let data = try JSONEncoder().encode(measured)
        print(String(decoding: data, as: UTF8.self))
    }

    /// Runs `body` (run number in, one run's rate or time out) again and again until `seconds`
    /// have passed, at least once, and answers the median, with the number of runs and the first
    /// run's value (written with `format`): a figure of a fraction of a second is otherwise one
    /// sample of a machine whose speed changes from moment to moment. The first run also pays for
    /// what later runs in the process find ready (threads started, memory faulted in, blocks
    /// read), which the detail shows.
    func median(over seconds: Double = 2, format: String = "%.0f", _ body: (Int) throws -> Double) rethrows -> (value: Double, detail: String?) {
        var values: [Double] = []
        let start = now()
        repeat {
            values.append(try body(values.count))
        } while now() - start < seconds
        guard values.count > 1 else { return (values[0], nil) }
        let first = values[0]
        values.sort()
        let median = values.count % 2 == 1 ? values[values.count / 2] : (values[values.count / 2 - 1] + values[values.count / 2]) / 2
        return (median, String(format: "median of %d runs; the first " + format, values.count, first))
    }

    func measureVerify() throws -> Measurement {
        let (rate, runs) = try median { _ in
            let start = now()
            let report = try Verifier.verify(directory: directory)
            let elapsed = now() - start
            guard report.isIntact else { throw ValidationError("the benchmark ledger does not verify: \(report.findings.first?.description ?? "")") }
            return Double(report.records) / elapsed
        }
        return Measurement(figure: "full verify", size: size, value: rate, unit: "entries/s", limit: limit, limitUnit: "verifies/s × cores", detail: runs)
    }

    /// The checkpoint 1,000 entries before the end, and where the reviewer's state at it is kept.
    func trustedCheckpoint() throws -> (path: String, size: UInt64, state: String) {
        let files = CheckpointStore(ledgerDirectory: directory).files()
        guard files.count >= 2, let size = CheckpointStore.size(ofFile: files[files.count - 2]) else {
            throw ValidationError("the benchmark ledger has no checkpoints")
        }
        return (files[files.count - 2], size, directory + ".state-\(size)")
    }

    /// A reviewer's full verification that saved the rule state at the trusted checkpoint (kept
    /// beside the benchmark ledger and reused; not a figure).
    func saveTrustedState() throws -> Measurement {
        let trusted = try trustedCheckpoint()
        // Kept from an earlier run only if it still opens (the format may have changed since).
        if (try? SavedState(path: trusted.state)) == nil {
            let report = try Verifier.verify(directory: directory, saveState: trusted.state, saveAt: trusted.size)
            guard report.savedStateSize == trusted.size else { throw ValidationError("the state was not saved: \(report.notes)") }
        }
        return Measurement(figure: "save-state", size: size, value: 0, unit: "")
    }

    /// Incremental verification from the checkpoint 1,000 entries before the end, with the state
    /// saved there: loading the state, the consistency proof, and the 1,000 new entries.
    func measureVerifySince() throws -> Measurement {
        let trusted = try trustedCheckpoint()
        let text = try [UInt8](Data(contentsOf: URL(fileURLWithPath: trusted.path)))
        let key = try NoteVerifier(name: Workload.origin, publicKey: Workload.logKey.publicKey)
        var checked: UInt64 = 0
        let (elapsed, runs) = try median(format: "%.3f s") { _ in
            let start = now()
            let result = try Verifier.verify(
                directory: directory, since: text, verifier: CheckpointVerifier(origin: Workload.origin, log: key), state: SavedState(path: trusted.state))
            let elapsed = now() - start
            guard result.report.isIntact else { throw ValidationError("verify --since failed: \(result.report.findings.first?.description ?? "")") }
            checked = result.report.checked
            return elapsed
        }
        return Measurement(figure: "verify --since (\(checked) new)", size: size, value: elapsed, unit: "s", limit: 0.3, limitUnit: "s (target)", detail: runs)
    }

    /// Appending `size` leaf hashes to the stored tree files, persisted (flushed and synced). Up
    /// to 100,000 leaves a run takes milliseconds, where one slow `fsync` on this machine moves
    /// the figure by half: the median of five runs, each into new files.
    func measureMerkleAppend() throws -> Measurement {
        var leaves: [Digest] = []
        leaves.reserveCapacity(size)
        var random = SplitMix64(seed: 1)
        for _ in 0..<size {
            var bytes = [UInt8](repeating: 0, count: 32)
            for i in stride(from: 0, to: 32, by: 8) { withUnsafeBytes(of: random.next()) { bytes.replaceSubrange(i..<(i + 8), with: $0) } }
            leaves.append(try Digest(rawRepresentation: bytes))
        }
        var times: [Double] = []
        for _ in 0..<(size <= 100_000 ? 5 : 1) {
            try? FileManager.default.removeItem(atPath: directory)
            let tree = try MerkleTreeFiles(directory: directory)
            let start = now()
            for chunk in stride(from: 0, to: size, by: 1000) { try tree.append(leafHashes: leaves[chunk..<min(size, chunk + 1000)]) }
            try tree.sync()
            times.append(now() - start)
        }
        let elapsed = times.sorted()[times.count / 2]
        return Measurement(figure: "Merkle tree append (persisted)", size: size, value: Double(size) / elapsed, unit: "leaves/s", limit: 850_000, limitUnit: "leaves/s (target)", detail: limit > 0 ? String(format: "%.2f of the SHA-256 65-byte rate", Double(size) / elapsed / limit) : nil)
    }

    /// Where the snapshot `after` entries before the end is kept, beside the benchmark ledger.
    var snapshotDirectory: String { directory + ".snapshots" }

    /// Writes the disputed-facts snapshot `after` entries before the end (not a figure: its own
    /// process, so that the figures after it count only their own memory).
    func writeSnapshot() throws -> Measurement {
        let ledger = try Ledger(directory: directory)
        guard after >= 0, ledger.count > after + 1 else { throw ValidationError("the snapshot figures need a ledger of more than \(after + 1) entries") }
        let projection = DisputedFactsProjection(verifiesSignatures: false)
        try? FileManager.default.removeItem(atPath: snapshotDirectory)
        let engine = ReplayEngine(ledger: ledger, snapshotDirectory: snapshotDirectory)
        let base = try engine.replay(projection, to: .sequence(ledger.count - UInt64(after) - 1), snapshots: .none)
        _ = try engine.writeSnapshot(projection, of: base)
        return Measurement(figure: "write-snapshot", size: size, value: 0, unit: "")
    }

    /// Replaying the disputed-facts projection, signatures not rechecked: from genesis, or from
    /// the snapshot `write-snapshot` wrote (1,000 entries before the end in `run`).
    func measureReplay(fromSnapshot: Bool) throws -> Measurement {
        let ledger = try Ledger(directory: directory)
        let projection = DisputedFactsProjection(verifiesSignatures: false)
        let engine = fromSnapshot ? ReplayEngine(ledger: ledger, snapshotDirectory: snapshotDirectory) : ReplayEngine(withoutSnapshots: ledger)
        if fromSnapshot {
            let start = now()
            let result = try engine.replay(projection, to: .end, snapshots: .read)
            let elapsed = now() - start
            guard result.info.resumedFrom != nil else { throw ValidationError("no snapshot in \(snapshotDirectory): run the write-snapshot step first") }
            return Measurement(figure: "replay disputed-facts from a snapshot", size: size, value: elapsed, unit: "s", limit: nil, limitUnit: nil, detail: "\(result.info.recordsRead) records after the snapshot")
        }
        let (rate, runs) = try median { _ in
            let start = now()
            let result = try engine.replay(projection, to: .end, snapshots: .none)
            return Double(result.info.recordsRead) / (now() - start)
        }
        return Measurement(figure: "replay disputed-facts from genesis", size: size, value: rate, unit: "entries/s", limit: 300_000, limitUnit: "entries/s (target)", detail: runs)
    }

    /// What `ledger facts --json --no-snapshots --trust-signatures` does, printing aside: the
    /// index replayed from genesis, readied for queries, then every fact's view built on every
    /// core and rendered as JSON. Its peak memory is the replay's and the facts' in flight.
    func measureAllFacts() throws -> Measurement {
        let start = now()
        let ledger = try Ledger(directory: directory)
        let projection = DisputedFactsProjection(verifiesSignatures: false)
        let replay = try ReplayEngine(withoutSnapshots: ledger).replayForQueries(projection, snapshots: .none)
        let replayed = now() - start
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        var facts = 0
        var bytes = 0
        try projection.forEachFact(in: replay.state, context: context, { fact in
            var writer = JSONWriter()
            writer.value(fact.json)
            return writer.bytes.count
        }) { count in
            facts += 1
            bytes += count
        }
        return Measurement(
            figure: "every fact's view from genesis (ledger facts)", size: size, value: now() - start, unit: "s",
            detail: String(format: "%d facts, %.1f MB of JSON; the replay %.2f s of it", facts, Double(bytes) / 1e6, replayed))
    }

    /// The query-time cost of the disputed-facts index: one fact's view (its records read back
    /// from the log and applied in full, statuses computed), for 1,000 facts chosen at random.
    func measureFactViews() throws -> Measurement {
        let ledger = try Ledger(directory: directory)
        let projection = DisputedFactsProjection(verifiesSignatures: false)
        let replay = try ReplayEngine(ledger: ledger, snapshotDirectory: snapshotDirectory).replay(projection, snapshots: .read)
        let context = ReportContext(ledger: ledger, blobs: nil, position: replay.info.position)
        let ids = try replay.state.factIDs()
        guard !ids.isEmpty else { throw ValidationError("the benchmark ledger has no facts") }
        var random = SplitMix64(seed: 5)
        let rounds = 1000
        var claims = 0
        let start = now()
        for _ in 0..<rounds {
            guard let view = try projection.fact(ids[Int(random.next() % UInt64(ids.count))], in: replay.state, context: context) else {
                throw ValidationError("a listed fact has no view")
            }
            claims += view.claims.count + view.retractedClaims.count
        }
        let elapsed = now() - start
        // Each fact's timeline too, read back the same way (what `ledger fact` shows with the view).
        let timelines = TimelineProjection()
        var events = 0
        let timelineStart = now()
        for _ in 0..<rounds {
            guard let timeline = try timelines.timeline(of: ids[Int(random.next() % UInt64(ids.count))], in: replay.state, context: context) else {
                throw ValidationError("a listed fact has no timeline")
            }
            events += timeline.count
        }
        let timelineElapsed = now() - timelineStart
        return Measurement(
            figure: "one fact's view (read back from the log)", size: size, value: elapsed / Double(rounds) * 1e3, unit: "ms",
            detail: String(
                format: "%.1f claims a fact; its timeline %.3f ms, %.1f events", Double(claims) / Double(rounds), timelineElapsed / Double(rounds) * 1e3,
                Double(events) / Double(rounds)))
    }

    /// Inclusion and consistency proofs from the ledger on disk, generated and verified.
    func measureProofs() throws -> Measurement {
        let ledger = try Ledger(directory: directory)
        let tree = try ledger.merkleTree()
        let n = ledger.count
        let root = try tree.root(size: n)
        var random = SplitMix64(seed: 3)
        // Enough rounds that the first reads of the tree files (from disk, or the page cache)
        // are a share of the figure, as in a server answering many, not all of it.
        let rounds = 20_000
        let mappedBefore = residentFileKiB()
        var start = now()
        for _ in 0..<rounds {
            let index = random.next() % n
            let proof = try tree.inclusionProof(index: index, size: n)
            try proof.verify(leafHash: proof.leafHash, treeSize: n, root: root)
        }
        let inclusion = (now() - start) / Double(rounds) * 1e6
        start = now()
        for _ in 0..<rounds {
            let m = 1 + random.next() % (n - 1)
            let proof = try tree.consistencyProof(from: m, to: n)
            try proof.verify(oldSize: m, oldRoot: proof.oldRoot, newSize: n, newRoot: root)
        }
        let consistency = (now() - start) / Double(rounds) * 1e6
        var detail = String(format: "consistency %.1f µs", consistency)
        // The level files are mapped, so the pages the proofs touched count in this process's
        // peak: page cache the kernel can take back, not memory the proofs hold.
        if let before = mappedBefore, let after = residentFileKiB() {
            detail += String(format: "; of its peak, %.0f MiB are the tree's files, mapped", Double(after - before) / 1024)
        }
        return Measurement(figure: "inclusion proof (generate + verify)", size: size, value: inclusion, unit: "µs", limit: 20, limitUnit: "µs (target)", detail: detail)
    }

    /// `RssFile` of `/proc/self/status` (resident pages of mapped files), in KiB; `nil` where
    /// there is none.
    private func residentFileKiB() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("RssFile:") })
        else { return nil }
        return Int(line.dropFirst("RssFile:".count).split(whereSeparator: \.isWhitespace).first ?? "")
    }

    /// The ledger the append figures append to, open for writing, and the workload that continues
    /// its statements: a copy of the benchmark ledger of `size` entries (`source`) in `directory`,
    /// made unless an earlier figure left a copy of that same ledger there, so that appends are
    /// timed on a ledger of that size, not on an empty one or another. Copying and opening (from
    /// the writer's kept rule state, as usual) are not timed.
    func appendTarget() throws -> (writer: LedgerWriter, workload: Workload) {
        guard let source else { throw ValidationError("the append figures need --source, the benchmark ledger to append to") }
        if FileManager.default.fileExists(atPath: directory + "/FORMAT"), !(try Self.continues(directory, source)) {
            FileHandle.standardError.write(Data("\(directory) does not continue \(source): copying it again\n".utf8))
            try FileManager.default.removeItem(atPath: directory)
        }
        if !FileManager.default.fileExists(atPath: directory + "/FORMAT") {
            try? FileManager.default.removeItem(atPath: directory)
            try FileManager.default.copyItem(atPath: source, toPath: directory)
            try? FileManager.default.removeItem(atPath: directory + "/snapshots")
            // The first open replays the whole log and keeps the rule state: a writer is opened
            // from it from then on, as this one is.
            _ = try LedgerWriter(directory: directory)
            // The copy is gigabytes of dirty pages at 1M: written back during the timed appends,
            // they would slow every fsync.
            sync()
        }
        let writer = try LedgerWriter(directory: directory)
        return (writer, Workload.continuing(entries: Int(writer.ledger.count)))
    }

    /// Whether the ledger in `copy` holds the ledger in `source` (the same last entry id at its
    /// end), and so may have been made from it by an earlier append figure.
    static func continues(_ copy: String, _ source: String) throws -> Bool {
        let original = try Ledger(directory: source)
        guard original.count > 0, let made = try? Ledger(directory: copy), made.count >= original.count else { return false }
        return try made.entryID(at: original.count - 1) == original.entryID(at: original.count - 1)
    }

    /// Statements appended 1,000 a group commit onto the `size`-entry ledger, `min(size, 20,000)`
    /// a run.
    func measureBatchAppend() throws -> Measurement {
        let (writer, continuing) = try appendTarget()
        let first = writer.ledger.count
        var workload = continuing
        let time = Workload.appendTime
        let count = appends ?? min(size, 20_000)
        let (rate, runs) = try median { _ in
            // Each batch is signed just before it is appended, and only appending is timed: signing
            // them all first held every statement in memory, which the peak then counted.
            var elapsed = 0.0
            var remaining = count
            while remaining > 0 {
                let n = min(1000, remaining)
                let batch = workload.sign((0..<n).map { _ in workload.next() }, at: time)
                let start = now()
                try writer.append(batch, acceptedAt: time)
                elapsed += now() - start
                remaining -= n
            }
            return Double(count) / elapsed
        }
        // The copy keeps what earlier runs and figures appended: its size is said as it was.
        let onto = "\(count) a run, onto a copy of the \(size)-entry ledger holding \(first)…\(writer.ledger.count) entries"
        return Measurement(figure: "batched append (1,000 a commit)", size: size, value: rate, unit: "entries/s", limit: limit, limitUnit: "verifies/s × cores", detail: runs.map { "\(onto); \($0)" } ?? onto)
    }

    /// 2,000 single-statement appends onto the `size`-entry ledger, each durable before it
    /// returns: latency percentiles.
    func measureSingleAppend() throws -> Measurement {
        let (writer, continuing) = try appendTarget()
        let first = writer.ledger.count
        var workload = continuing
        let time = Workload.appendTime
        let statements = workload.sign((0..<2000).map { _ in workload.next() }, at: time)
        var latencies: [Double] = []
        for envelope in statements {
            let start = now()
            try writer.append([envelope], acceptedAt: time)
            latencies.append(now() - start)
        }
        let (p50, p99) = Limits.percentiles(latencies)
        return Measurement(figure: "single append p99", size: size, value: p99, unit: "ms", limit: 2, limitUnit: "ms (target)", detail: String(format: "p50 %.3f ms; 2000 onto a copy of the %d-entry ledger holding %llu entries", p50, size, first))
    }
}

/// The machine's own limits, measured through the same primitives in tight loops: each the best
/// of a few short windows, since a shared machine is slowed from time to time and the limit is
/// what it can do when it is not.
enum Limits {
    /// The rates measured, for `run` to compare figures with.
    struct Rates: Codable {
        var cores: Int
        var verifiesPerCore: Double
        var signsPerCore: Double
        var sha256Per65Bytes: Double
        /// The same verify loop on every core at once: what the cores give together, which on a
        /// shared machine is less than one core's rate times their number.
        var verifiesAllCores: Double

        /// How much of its cores the machine gave the loop on all of them at once: 0.97–1.00 when
        /// it is quiet. Another tenant can take most of a core for minutes, and a figure measured
        /// then says more of the tenant than of the code.
        var coresGiven: Double { verifiesAllCores / (verifiesPerCore * Double(cores)) }
    }

    /// The best rate of `windows` runs of `body` (which does `batch` operations) for `seconds` each.
    static func best(_ windows: Int, seconds: Double, batch: Int, _ body: () throws -> Void) rethrows -> Double {
        var rates: [Double] = []
        for _ in 0..<windows {
            var n = 0
            let start = now()
            while now() - start < seconds {
                try body()
                n += batch
            }
            rates.append(Double(n) / (now() - start))
        }
        return rates.max() ?? 0
    }

    /// The median and 99th percentile of `latencies` (seconds), in milliseconds.
    static func percentiles(_ latencies: [Double]) -> (p50: Double, p99: Double) {
        let sorted = latencies.sorted()
        return (sorted[sorted.count / 2] * 1e3, sorted[sorted.count * 99 / 100] * 1e3)
    }

    /// This disk's own latency for what makes a single append durable: a record's worth of bytes
    /// (1,300, the benchmark ledgers' mean record) written at the end of a file in `directory`,
    /// then `fdatasync`, 1,000 times. An append waits for the same, so these percentiles show
    /// what the disk alone took at about the time of the single-append figure (not a bound: the
    /// disk's latency changes from minute to minute).
    static func diskSync(in directory: String) throws -> Measurement {
        let path = directory + "/disk-sync-\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw ValidationError("cannot create \(path): \(String(cString: strerror(errno)))") }
        defer {
            close(fd)
            unlink(path)
        }
        let record = [UInt8](repeating: 0x61, count: 1300)
        var latencies: [Double] = []
        for i in 0..<1000 {
            let start = now()
            guard pwrite(fd, record, record.count, off_t(i * record.count)) == record.count, fdatasync(fd) == 0 else {
                throw ValidationError("cannot write and sync \(path): \(String(cString: strerror(errno)))")
            }
            latencies.append(now() - start)
        }
        let (p50, p99) = percentiles(latencies)
        return Measurement(
            figure: "disk write + fdatasync p99", size: 0, value: p99, unit: "ms",
            detail: String(format: "p50 %.3f ms; 1,000 writes of 1,300 bytes at the end of a file", p50))
    }

    static func measure() throws -> Measurement {
        let key = try SigningKey(seed: [UInt8](repeating: 3, count: 32))
        let message = [UInt8](repeating: 0x61, count: 700)
        let signature = try key.signature(for: message)
        // As `openssl speed ed25519` and the verification of a batch do: one context for many
        // signatures of a key (here a new one for each fifty, each thread its own).
        let verifyFifty: @Sendable () -> Void = {
            let verifier = SignatureVerifier(key.publicKey)
            for _ in 0..<50 { precondition(verifier.isValidSignature(signature, for: message)) }
        }
        let verifies = best(5, seconds: 0.4, batch: 50, verifyFifty)
        let signs = try best(3, seconds: 0.3, batch: 50) {
            for _ in 0..<50 { _ = try key.signature(for: message) }
        }
        var node = [UInt8](repeating: 1, count: 65)
        let hashes = best(3, seconds: 0.3, batch: 10_000) {
            for _ in 0..<10_000 {
                let d = node.withUnsafeBytes { SHA256.hash($0) }
                node.withUnsafeMutableBytes { d.store(into: $0, at: 1) }
            }
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let counts = UnsafeMutableBufferPointerBox(UnsafeMutableBufferPointer<Double>.allocate(capacity: cores))
        defer { counts.buffer.deallocate() }
        var together = 0.0
        for _ in 0..<3 {
            DispatchQueue.concurrentPerform(iterations: cores) { c in
                counts.buffer[c] = best(1, seconds: 0.6, batch: 50, verifyFifty)
            }
            together = max(together, counts.buffer.reduce(0, +))
        }
        var m = Measurement(
            figure: "limits", size: 0, value: verifies, unit: "verifies/s",
            detail: "\(Int(signs)) signs/s \(Int(hashes)) sha256-65B/s \(Int(together)) verifies/s-on-all-cores-at-once")
        m.rates = Rates(cores: cores, verifiesPerCore: verifies, signsPerCore: signs, sha256Per65Bytes: hashes, verifiesAllCores: together)
        return m
    }
}

/// Builds the benchmark ledgers and prints the table.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Build the benchmark ledgers and print the table of figures.")

    @Option(name: .long, help: "Ledger sizes, comma-separated.")
    var sizes: String = "10000,100000,1000000"

    @Option(name: .long, help: "Where to build the benchmark ledgers (reused when already there).")
    var workdir: String = "/tmp/ledger-bench"

    func run() throws {
        let sizes = sizes.split(separator: ",").compactMap { Int($0) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 1021 }) else {
            throw ValidationError("--sizes \(self.sizes): give sizes of at least 1,021 entries, comma-separated.")
        }
        try FileManager.default.createDirectory(atPath: workdir, withIntermediateDirectories: true)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let limits = try child(["limits", "--directory", workdir, "--size", "0"])
        guard let machine = limits.rates else { throw ValidationError("the limits figure gave no rates") }
        print("machine: \(cores) cores; Ed25519 \(Int(machine.verifiesPerCore)) verifies/s per core, \(limits.detail ?? "")")
        // Signature-bound figures are compared with the mean of limits measured just before and
        // just after them: the machine's speed drifts, over a run of several minutes and over a
        // figure of up to a minute and a half.
        func rates() throws -> Limits.Rates {
            guard let rates = try child(["limits", "--directory", workdir, "--size", "0"]).rates else {
                throw ValidationError("the limits figure gave no rates")
            }
            return rates
        }
        /// One attempt at a figure, with the limits measured around it.
        struct Attempt {
            var figure: Measurement
            var before: Limits.Rates
            var after: Limits.Rates
            /// How far the further share of its cores the machine gave lies from 1: above 1, one
            /// core's rate was measured while the machine withheld part of it, so the limit itself
            /// is low.
            var disturbance: Double { max(abs(before.coresGiven - 1), abs(after.coresGiven - 1)) }
            var steady: Bool { disturbance <= Self.steadyWithin }
            static let steadyWithin = 0.1
            var sharesText: String { String(format: "%.2f and %.2f", before.coresGiven, after.coresGiven) }
        }
        /// Runs a figure that keeps every core busy between two measurements of the limits, again
        /// (at most twice more, each after `prepare`) while either measurement found the cores
        /// together more than a tenth off one core's rate times their number. The attempt
        /// reported is the first found steady, or else the least disturbed; the row lists the
        /// others' values and shares. A figure bound by signature checks (`signatureBound`) is
        /// compared with the mean of the limits around it; another keeps its own target.
        func onSteadyCores(_ arguments: [String], signatureBound: Bool = true, prepare: () -> Void = {}) throws -> Measurement {
            var attempts: [Attempt] = []
            repeat {
                prepare()
                let before = try rates()
                let figure = try child(arguments)
                attempts.append(Attempt(figure: figure, before: before, after: try rates()))
                if let last = attempts.last, !last.steady, attempts.count < 3 {
                    FileHandle.standardError.write(Data("\(arguments[0]): the machine gave \(last.sharesText) of its cores before and after; measuring again\n".utf8))
                }
            } while !attempts.last!.steady && attempts.count < 3
            let chosen = attempts.indices.min { attempts[$0].disturbance < attempts[$1].disturbance }!
            let (before, after) = (attempts[chosen].before, attempts[chosen].after)
            var m = attempts[chosen].figure
            if signatureBound {
                func mean(_ rate: KeyPath<Limits.Rates, Double>) -> Double { (before[keyPath: rate] + after[keyPath: rate]) / 2 }
                m.rates = Limits.Rates(
                    cores: cores, verifiesPerCore: mean(\.verifiesPerCore), signsPerCore: mean(\.signsPerCore),
                    sha256Per65Bytes: mean(\.sha256Per65Bytes), verifiesAllCores: mean(\.verifiesAllCores))
                // Never below what the cores were just measured doing together (a core measured
                // alone while the machine withheld part of it gives a low rate).
                m.limit = max(mean(\.verifiesPerCore) * Double(cores), mean(\.verifiesAllCores))
                m.limitUnit = String(
                    format: "verifies/s × cores (%.0f before, %.0f after; all cores at once %.0f and %.0f)", before.verifiesPerCore * Double(cores),
                    after.verifiesPerCore * Double(cores), before.verifiesAllCores, after.verifiesAllCores)
            }
            var note = "the machine gave \(attempts[chosen].sharesText) of its cores before and after"
            if !attempts[chosen].steady { note += ", more than \(Attempt.steadyWithin) off 1 in every attempt" }
            let others = attempts.indices.filter { $0 != chosen }.map { i in
                String(format: "attempt %d: %.0f %@ with %@", i + 1, attempts[i].figure.value, attempts[i].figure.unit, attempts[i].sharesText)
            }
            if !others.isEmpty { note += " (attempt \(chosen + 1) of \(attempts.count); " + others.joined(separator: "; ") + ")" }
            m.addDetail(note)
            return m
        }
        var rows: [Measurement] = []
        for size in sizes {
            let ledger = "\(workdir)/ledger-\(size)"
            if !FileManager.default.fileExists(atPath: ledger + "/FORMAT") {
                FileHandle.standardError.write(Data("generating \(size) entries in \(ledger)…\n".utf8))
                _ = try Workload.generate(entries: size, directory: ledger)
            }
            rows.append(try onSteadyCores(["verify", "--directory", ledger, "--size", String(size)]))
            _ = try child(["save-state", "--directory", ledger, "--size", String(size)])
            rows.append(try child(["verify-since", "--directory", ledger, "--size", String(size)]))
            // Replay decodes on every core too: a spell of the machine's noise moves it as much.
            rows.append(try onSteadyCores(["replay", "--directory", ledger, "--size", String(size)], signatureBound: false))
            _ = try child(["write-snapshot", "--directory", ledger, "--size", String(size)])
            rows.append(try child(["replay-snapshot", "--directory", ledger, "--size", String(size)]))
            rows.append(try child(["fact-views", "--directory", ledger, "--size", String(size)]))
            rows.append(try child(["all-facts", "--directory", ledger, "--size", String(size)]))
            rows.append(try child(["proofs", "--directory", ledger, "--size", String(size)]))
            rows.append(try child(["merkle-append", "--directory", "\(workdir)/tree-\(size)", "--size", String(size), "--limit", String(machine.sha256Per65Bytes)]))
            // Both append figures append to one copy of the benchmark ledger, made by the first.
            let scratch = "\(workdir)/scratch-\(size)"
            // Each attempt appends onto a fresh copy: one made again would otherwise be larger.
            rows.append(
                try onSteadyCores(["append-batch", "--directory", scratch, "--source", ledger, "--size", String(size)]) {
                    try? FileManager.default.removeItem(atPath: scratch)
                })
            // A single append waits for one fdatasync: what the disk alone took just before. (The
            // row stands without it if it fails.)
            var disk: Measurement?
            do {
                disk = try child(["disk-sync", "--directory", workdir, "--size", "0"])
            } catch {
                FileHandle.standardError.write(Data("the disk's own write + fdatasync latency is left out of the single-append row: \(error)\n".utf8))
            }
            var single = try child(["append-single", "--directory", scratch, "--source", ledger, "--size", String(size)])
            if let disk {
                single.addDetail(String(format: "this disk's write + fdatasync just before: p99 %.3f ms, %@", disk.value, disk.detail ?? ""))
            }
            rows.append(single)
            try? FileManager.default.removeItem(atPath: scratch)
        }
        print("ratio: value ÷ limit for rates, limit ÷ value for times (≥ 1 meets a target)")
        print("| figure | entries | value | limit | ratio | peak RSS |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for var m in rows {
            // Signature-bound figures also against what the cores verify together.
            if let together = m.rates?.verifiesAllCores, together > 0 {
                let share = String(format: "%.2f of %.0f verifies/s on all cores at once", m.value / together, together)
                m.addDetail(share)
            }
            let lowerIsBetter = ["ms", "s", "µs"].contains(m.unit)
            let ratio = m.limit.map { $0 > 0 ? String(format: "%.2f", lowerIsBetter ? $0 / m.value : m.value / $0) : "" } ?? ""
            let limit = m.limit.map { String(format: $0 < 10 ? "%.1f %@" : "%.0f %@", $0, m.limitUnit ?? "") } ?? ""
            let value = String(format: lowerIsBetter ? "%.3f %@" : "%.0f %@", m.value, m.unit) + (m.detail.map { " (\($0))" } ?? "")
            print("| \(m.figure) | \(m.size) | \(value) | \(limit) | \(ratio) | \(String(format: "%.0f MiB", m.peakRSSMiB ?? 0)) |")
        }
    }

    /// Runs one figure in a child process and returns it with the child's peak resident memory.
    func child(_ arguments: [String]) throws -> Measurement {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
        process.arguments = ["figure"] + arguments
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0, let m = try? JSONDecoder().decode(Measurement.self, from: data) else {
            throw ValidationError("figure \(arguments[0]) failed: \(String(decoding: data, as: UTF8.self))")
        }
        return m
    }
}
