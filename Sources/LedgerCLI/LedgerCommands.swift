import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto
import LedgerStore

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create a ledger directory with its genesis record.",
        discussion: "The genesis record names the origin (the log's name, carried by every checkpoint) and the first admin party with its key, and is signed by that key. DIR must not exist or must be empty."
    )

    @Argument(help: ArgumentHelp("The new ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The log's name, e.g. example.org/ledger/case-1 (no spaces, control characters or '+').", valueName: "name"))
    var origin: String

    @Option(name: .customLong("admin-key"), help: ArgumentHelp("The first admin's private key (PKCS#8 PEM).", valueName: "file"))
    var adminKey: String

    @Option(name: .customLong("admin-party"), help: ArgumentHelp("The first admin's party id.", valueName: "party"))
    var adminParty = "admin"

    @Option(name: .customLong("admin-name"), help: ArgumentHelp("The first admin's display name.", valueName: "name"))
    var adminName = "Ledger administrator"

    @Option(name: .customLong("signed-at"), help: ArgumentHelp("Signing time of the genesis statement (RFC 3339 UTC), for reproducible ledgers; default now.", valueName: "time"))
    var signedAt: String?

    @Option(name: .customLong("accepted-at"), help: ArgumentHelp("Acceptance time of the genesis record (RFC 3339 UTC), for reproducible ledgers; default now, and never later.", valueName: "time"))
    var acceptedAt: String?

    @OptionGroup var common: VerboseOption

    func run() throws {
        let key = try Files.signingKey(adminKey)
        let writer = try LedgerWriter.create(
            directory: directory, origin: origin, adminKey: key, adminParty: adminParty, adminName: adminName,
            signedAt: parseTime(signedAt, option: "--signed-at"), acceptedAt: parseAcceptanceTime(acceptedAt))
        Terminal.done = "the ledger \(directory) was created"
        print("created \(directory): origin \(origin), genesis entry \(try writer.ledger.entryID(at: 0).hexString)")
    }
}

struct LogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "log",
        abstract: "List entries: sequence number, entry id, acceptance time, event type, statement id and author.",
        discussion: "With --json, one JSON object per line: {\"seq\", \"entry_id\", \"accepted_at\", \"type\", \"id\", \"author\", \"signed_at\"}."
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The first sequence number to list.", valueName: "n"))
    var from: UInt64 = 0

    @Option(name: .long, help: ArgumentHelp("The most entries to list.", valueName: "m"))
    var limit: UInt64?

    @Flag(name: .long, help: "Print JSON lines instead of a table.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let ledger = try Ledger(directory: directory)
        for message in ledger.report.messages { Terminal.note(message) }
        guard from < ledger.count || ledger.count == 0 else {
            throw LedgerError(.notFound, "--from \(from) is past the end: the ledger has \(ledger.count) entries.")
        }
        let end = limit.map { from.addingReportingOverflow($0).overflow ? UInt64.max : from + $0 } ?? ledger.count
        try ledger.forEachRecord(from: from, to: end) { (stored) throws(LedgerError) -> Bool in
            let record = try stored.decoded()
            let event = try? Event(payload: record.envelope.payload, allowUnknownType: true)
            if json {
                var line = JSONWriter()
                line.object { o in
                    o.integer("seq", Int64(stored.sequence))
                    o.string("entry_id", stored.entryID.hexString)
                    o.string("accepted_at", record.acceptedAt.rfc3339)
                    o.string("type", event?.type ?? "(unreadable)")
                    o.string("id", event?.id ?? "")
                    o.string("author", event?.author ?? "")
                    o.string("signed_at", event?.signedAt.rfc3339 ?? "")
                }
                print(String(decoding: JSONValue.escapingInvisible(line.bytes), as: UTF8.self))
            } else {
                let type = event.map { $0.isKnownType ? $0.type : "\($0.type) (unknown type)" } ?? "(unreadable)"
                print("\(stored.sequence)\t\(stored.entryID.hexString)\t\(record.acceptedAt.rfc3339)\t\(type.printable)\t\(event?.id ?? "-")\t\(event?.author ?? "-")")
            }
            return true
        }
    }
}

struct ShowCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "show",
        abstract: "Show one entry with its decoded event.",
        discussion: "With --json: {\"seq\", \"entry_id\", \"prev\", \"accepted_at\", \"batch_end\", \"signatures\": [{\"keyid\", \"sig\"}], \"event\": {…the signed payload…}}."
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Argument(help: ArgumentHelp("A sequence number, or an entry id (64 hex digits).", valueName: "seq|entry-id"))
    var entry: String

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let ledger = try Ledger(directory: directory)
        let stored = try findEntry(entry, in: ledger)
        if let recorded = ledger.indexRecordsOtherID(for: stored) {
            Terminal.note("note: the index recorded entry id \(recorded) for entry \(stored.sequence) when it was written; its record now hashes to \(stored.entryID.shortHex()): the record was changed after it was written, or the index is damaged. It is shown as stored; run `ledger verify \(directory)` for every finding.")
        }
        let record = try stored.decoded()
        let event = try JSONParser.parse(record.envelope.payload)
        if json {
            var out = JSONWriter()
            out.object { o in
                o.integer("seq", Int64(record.sequence))
                o.string("entry_id", stored.entryID.hexString)
                o.string("prev", record.previous.hexString)
                o.string("accepted_at", record.acceptedAt.rfc3339)
                o.integer("batch_end", Int64(record.batchEnd))
                o.value("signatures", .array(record.envelope.signatures.map {
                    .object(["keyid": .string($0.keyID.hexString), "sig": .string(Base64.encode($0.signature))])
                }))
                o.value("event", event)
            }
            print(String(decoding: JSONValue.escapingInvisible(out.bytes), as: UTF8.self))
            return
        }
        print("entry \(record.sequence)")
        print("entry id:    \(stored.entryID.hexString)")
        print("previous:    \(record.previous.hexString)")
        print("accepted at: \(record.acceptedAt.rfc3339)  (the ledger's time)")
        if let decoded = try? Event(payload: record.envelope.payload, allowUnknownType: true) {
            print("signed at:   \(decoded.signedAt.rfc3339)  (the author's time)")
            print("type:        \(decoded.type.printable)\(decoded.isKnownType ? "" : " (not known to this version)")")
            print("statement:   \(decoded.id) by \(decoded.author)")
        }
        for signature in record.envelope.signatures { print("signed by key \(signature.keyID.hexString)") }
        print("event:")
        print(event.pretty())
    }
}

/// Finds an entry by sequence number or entry id.
func findEntry(_ text: String, in ledger: Ledger) throws(LedgerError) -> StoredRecord {
    // 64 hex digits are an entry id even when every one is a digit.
    if text.count != 64, let sequence = UInt64(text) {
        do throws(LedgerError) {
            return try ledger.record(at: sequence)
        } catch where error.code == .damagedLog && sequence < ledger.count {
            // The index disagreed with the log there, and rebuilding it stopped at damage. Shown
            // as stored, as `log` lists it and as its entry id finds it: the chain is `verify`'s.
            var stored: StoredRecord?
            try ledger.forEachRecord(to: sequence + 1) { (record) throws(LedgerError) -> Bool in
                if record.sequence == sequence { stored = record }
                return true
            }
            guard let stored else { throw error }
            // Its first sentence says what was found; the rest speaks to a writer.
            let found = error.message.split(separator: ". ", maxSplits: 1).first.map { $0.hasSuffix(".") ? String($0) : $0 + "." } ?? error.message
            Terminal.note("note: \(found) Entry \(sequence) is shown as stored in the log; run `ledger verify \(ledger.directory)` for every finding.")
            return stored
        }
    }
    guard let id = Digest(hexString: text) else {
        throw LedgerError(.usage, "\"\(text)\" is neither a sequence number nor an entry id (64 hex digits).")
    }
    var found: StoredRecord?
    try ledger.forEachRecord { (stored) throws(LedgerError) -> Bool in
        if stored.entryID == id { found = stored }
        return found == nil
    }
    guard let found else { throw LedgerError(.notFound, "No entry has id \(id.hexString) in \(ledger.directory).") }
    return found
}

struct BlobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blob",
        abstract: "Store evidence files by SHA-256 and check them against the ledger.",
        subcommands: [Add.self, Check.self]
    )

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Store a file in the ledger directory, content-addressed by SHA-256; print its hash and size.",
            discussion: "Use the printed hash and size in an evidence.attached event. Storing the same file twice is harmless."
        )

        @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
        var directory: String

        @Argument(help: ArgumentHelp("The evidence file.", valueName: "file"))
        var file: String

        @Option(name: .customLong("lock-timeout"), help: ArgumentHelp("Seconds to wait for another blob add deciding what is stored (default: 600; deciding may hash a large stored blob).", valueName: "seconds"))
        var lockTimeout: Double = BlobStore.defaultLockTimeout

        @OptionGroup var common: VerboseOption

        func run() throws {
            try LedgerWriter.check(lockTimeout: lockTimeout)
            _ = try Ledger(directory: directory)
            let stored = try BlobStore(ledgerDirectory: directory).add(file: file, lockTimeout: lockTimeout)
            Terminal.done = "the blob was stored as \(stored.digest.hexString)"
            if let aside = stored.keptAside {
                Terminal.note("note: the file stored under this hash had been changed (it hashes to \(aside.actual.hexString), \(aside.size) bytes); it was kept as \(aside.path), as evidence, and this file, which matches, stored in its place.")
            }
            print("\(stored.digest.hexString) \(stored.size)\(stored.existed ? " (already stored)" : "")")
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the blob of every evidence.attached: present and matching, missing, mismatched, or unreadable.",
            discussion: "Exit 1 if any stored blob does not match its recorded hash and size; a missing blob is reported but is not damage (it may arrive later; until then its evidence is excluded from the disputed facts' attack graph, as is a mismatched or unreadable one's). Exit 3 if none is mismatched but one cannot be read (a directory or a link in its place, no permission, a read error)."
        )

        @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
        var directory: String

        @OptionGroup var common: VerboseOption

        func run() throws {
            // As a replay reads them: an answer from a changed record is refused, or (the index's
            // evidence) given with status 1.
            let ledger = try openLedger(directory)
            let blobs = BlobStore(ledgerDirectory: directory)
            var counts = (present: 0, missing: 0, mismatched: 0, unreadable: 0)
            try ledger.forEachRecord(checkingLinks: true) { (stored) throws(LedgerError) -> Bool in
                let record = try stored.decoded()
                guard let event = try? Event(payload: record.envelope.payload), case let .evidenceAttached(e) = event.body else { return true }
                switch blobs.status(of: e.sha256, size: UInt64(e.size)) {
                case .present:
                    counts.present += 1
                    print("present     \(e.evidence) (entry \(stored.sequence)) sha256 \(e.sha256.hexString)")
                case .missing:
                    counts.missing += 1
                    print("missing     \(e.evidence) (entry \(stored.sequence)) sha256 \(e.sha256.hexString): add it with `ledger blob add`")
                case let .unreadable(what):
                    counts.unreadable += 1
                    print("UNREADABLE  \(e.evidence) (entry \(stored.sequence)) sha256 \(e.sha256.hexString): \(what); make it the readable file `ledger blob add` stores")
                case let .mismatched(actual, size) where actual == e.sha256:
                    counts.mismatched += 1
                    print("MISMATCHED  \(e.evidence) (entry \(stored.sequence)) the stored blob matches sha256 \(e.sha256.hexString) but has \(size) bytes; the event records \(e.size): the event's size is wrong")
                case let .mismatched(actual, size):
                    counts.mismatched += 1
                    print("MISMATCHED  \(e.evidence) (entry \(stored.sequence)) expected sha256 \(e.sha256.hexString), \(e.size) bytes; found \(actual.hexString), \(size) bytes: the stored file was changed or replaced")
                }
                return true
            }
            // Not damage now, but the record that a stored blob was once changed.
            for name in blobs.setAside() {
                print("set aside   \(blobs.directory)/\(name): a stored blob that no longer matched its hash, kept by `ledger blob add` when the original was added again")
            }
            print("\(counts.present) present, \(counts.missing) missing, \(counts.mismatched) mismatched" + (counts.unreadable > 0 ? ", \(counts.unreadable) unreadable" : ""))
            if counts.mismatched > 0 { throw ExitCode(1) }
            if counts.unreadable > 0 { throw ExitCode(3) }
        }
    }
}

/// A monotonic clock, for progress lines.
enum Clock {
    static func seconds() -> Double {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
    }
}

struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "repair",
        abstract: "Rebuild a ledger's derived files (index, Merkle tree files, snapshots, the writer's rule state) from its log.",
        discussion: "Rewrites the index and the Merkle tree's level files from the log and removes projection snapshots (the next replay writes them again) and the writer's kept rule state, rules.state (the next write replays the log and keeps it again). Never changes the log: damage to the log is reported by `ledger verify` and must be fixed by restoring it from a trusted copy. Exit 1, changing nothing, if the log is damaged before its end (nothing can be rebuilt past the damage), or if the index or tree files record entries the log no longer holds as they were: they are the record of what was acknowledged, and are rebuilt only once an operator has restored the log or moved them aside."
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Flag(name: .customLong("rebuild-derived"), help: "Rewrite the index and the tree files from the log; remove the snapshots and the writer's kept rule state.")
    var rebuildDerived = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        guard rebuildDerived else {
            throw ValidationError("Say what to repair: --rebuild-derived is the only repair; the log itself is never repaired automatically.")
        }
        let report = try Repair.rebuildDerived(directory: directory)
        for message in report.messages { Terminal.note(message) }
        if let last = report.unrecorded.last {
            let entries = report.unrecorded.count == 1 ? "Entry \(last) of the log was" : "Entries \(report.unrecorded.lowerBound)…\(last) of the log were"
            Terminal.note("\(entries) recorded in no index or tree file (their writes lost to a power loss or a full disk, or the files removed, or records added by other means), so they were not indexed: the next write command checks them as an append checks a statement, signatures included, then indexes them; `ledger verify \(directory)` checks them now. Until then readers read them from the log.")
        }
        let of = report.unrecorded.isEmpty ? "" : " of the log's \(report.unrecorded.upperBound)"
        print("rebuilt the index and the Merkle tree of \(directory) from \(report.records) entries\(of)\(report.indexChanged ? "" : " (the index was already correct)"); removed projection snapshots and the writer's kept rule state")
    }
}
