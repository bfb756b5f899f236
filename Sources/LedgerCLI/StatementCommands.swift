import ArgumentParser
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore

struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign",
        abstract: "Sign an event as a DSSE envelope, after checking it against the v1 vocabulary.",
        discussion: """
            EVENT.json holds one event object: `type`, `id` and the type's own fields (see the README). \
            `v` is set to 1 and `author` to --author; `signed_at` is set to now unless the event or \
            --signed-at gives it. The payload is the event's compact JSON with members sorted; the \
            envelope is printed on one line, ready for `ledger append`.
            """
    )

    @Option(name: .long, help: ArgumentHelp("The author's private key (PKCS#8 PEM).", valueName: "file"))
    var key: String

    @Option(name: .long, help: ArgumentHelp("The author's party id, as registered in the ledger.", valueName: "party"))
    var author: String

    @Option(name: .customLong("signed-at"), help: ArgumentHelp("The signing time to record (RFC 3339 UTC), for reproducible ledgers; default now.", valueName: "time"))
    var signedAt: String?

    @Argument(help: ArgumentHelp("The event to sign, or - for standard input.", valueName: "event.json"))
    var event: String

    @OptionGroup var common: VerboseOption

    func run() throws {
        guard Event.isValidID(author) else {
            throw LedgerError(.usage, "--author \"\(author)\" is not a party id (1–128 characters from A–Z a–z 0–9 . _ : -, starting with a letter or digit).")
        }
        let signingKey = try Files.signingKey(key)
        let text = try Files.readStatements(event, limit: Envelope.maximumPayloadSize)
        guard case var .object(members) = try parseJSON(text, what: event) else {
            throw LedgerError(.malformedEvent, "\(event) must hold one JSON object (an event).")
        }
        if let v = members["v"], v != .integer(Event.version) {
            throw LedgerError(.malformedEvent, "\(event) has \"v\": \(v.compact); this tool signs v \(Event.version) events only. Write it in the v\(Event.version) vocabulary (README, \"Event vocabulary\") and leave \"v\" out: `ledger sign` sets it.")
        }
        if let given = members["author"], given != .string(author) {
            throw LedgerError(.malformedEvent, "\(event) names author \(given.compact) but --author is \"\(author)\"; they must agree.")
        }
        members["v"] = .integer(Event.version)
        members["author"] = .string(author)
        if let time = try parseTime(signedAt, option: "--signed-at") {
            if let given = members["signed_at"], given != .string(time.rfc3339) {
                throw LedgerError(.malformedEvent, "\(event) gives signed_at \(given.compact) but --signed-at is \(time.rfc3339); they must agree.")
            }
            members["signed_at"] = .string(time.rfc3339)
        } else if members["signed_at"] == nil {
            members["signed_at"] = .string(currentTime().rfc3339)
        }
        do {
            _ = try Event(object: members)
        } catch {
            throw LedgerError(error.code, "\(event): \(error.message) Nothing was signed.")
        }
        var json = JSONWriter()
        json.value(.object(members))
        var envelope = Envelope(payload: json.bytes, signatures: [])
        try envelope.sign(with: signingKey)
        print(String(decoding: envelope.jsonBytes, as: UTF8.self))
    }
}

struct CosignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cosign",
        abstract: "Add a signature to a signed envelope.",
        discussion: "The ledger accepts a statement only if every signature is by a current key of its author, so co-signers are further keys of the same party (for example two officers of one organisation). Prints the envelope with the signature added."
    )

    @Option(name: .long, help: ArgumentHelp("The co-signer's private key (PKCS#8 PEM).", valueName: "file"))
    var key: String

    @Argument(help: ArgumentHelp("The envelope, or - for standard input.", valueName: "envelope.json"))
    var envelope: String

    @OptionGroup var common: VerboseOption

    func run() throws {
        let signingKey = try Files.signingKey(key)
        let bytes = try Files.readStatements(envelope, limit: 2 * Envelope.maximumPayloadSize)
        var signed: Envelope
        do throws(LedgerError) {
            signed = try Envelope(jsonText: bytes)
            _ = try Event(payload: signed.payload)
            try signed.sign(with: signingKey)
        } catch {
            throw LedgerError(error.code, "\(envelope): \(error.message) Nothing was signed.")
        }
        print(String(decoding: signed.jsonBytes, as: UTF8.self))
    }
}

struct AppendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "append",
        abstract: "Append signed statements to a ledger as one group commit.",
        discussion: """
            Each ENVELOPE.json file holds one envelope; with no files, standard input holds one \
            envelope per line. All statements of one call are checked first and then written and \
            synced together: either all are appended, or none is and the reason is printed. Prints \
            one line per accepted entry: its sequence number, entry id and statement id.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Argument(help: ArgumentHelp("Envelope files; standard input when none is given.", valueName: "envelope.json"))
    var envelopes: [String] = []

    @Option(name: .customLong("accepted-at"), help: ArgumentHelp("The acceptance time to stamp (RFC 3339 UTC), for reproducible ledgers; default now. Never earlier than the last entry's, nor later than now.", valueName: "time"))
    var acceptedAt: String?

    @Option(name: .customLong("lock-timeout"), help: ArgumentHelp("Seconds to wait for another writer.", valueName: "seconds"))
    var lockTimeout: Double = LedgerWriter.defaultLockTimeout

    @Option(name: .long, help: ArgumentHelp("The log's private key: sign a checkpoint after the batch (stored in the ledger's checkpoints; its path is said on standard error).", valueName: "log-key.pem"))
    var checkpoint: String?

    @OptionGroup var common: VerboseOption

    func run() throws {
        try LedgerWriter.check(lockTimeout: lockTimeout)
        var inputs: [(name: String, bytes: [UInt8])] = []
        if envelopes.isEmpty {
            let all = try Files.readStatements("-", limit: 1 << 30)
            for (n, line) in all.split(separator: 0x0a, omittingEmptySubsequences: false).enumerated() where !line.allSatisfy({ $0 == 0x20 || $0 == 0x0d }) {
                inputs.append(("standard input line \(n + 1)", Array(line)))
            }
        } else {
            for file in envelopes { inputs.append((file, try Files.readStatements(file, limit: 2 * Envelope.maximumPayloadSize))) }
        }
        guard !inputs.isEmpty else { throw LedgerError(.usage, "No envelopes given: name files, or pipe envelopes on standard input, one per line.") }
        var parsed: [Envelope] = []
        for input in inputs {
            do {
                parsed.append(try Envelope(jsonText: input.bytes))
            } catch {
                throw LedgerError(error.code, "\(input.name): \(error.message) Nothing was appended.")
            }
        }
        let time = try parseAcceptanceTime(acceptedAt)
        let logKey = try checkpoint.map { (path) throws(LedgerError) -> SigningKey in try Files.signingKey(path) }
        // Before a writer is opened: a wrong key changes nothing.
        if let logKey { try CheckpointStore(ledgerDirectory: directory).requireSigner(logKey.publicKey) }
        let writer = try openWriter(directory, lockTimeout: lockTimeout)
        let opened = writer.ledger.report.messages
        // What the writer found while appending (a kept rule state it had to drop), refused or not.
        defer { for message in writer.ledger.report.messages where !opened.contains(message) { Terminal.note(message) } }
        let appended: [AppendedEntry]
        do throws(LedgerError) {
            appended = try writer.append(parsed, acceptedAt: time, checkpointKey: logKey)
        } catch {
            // Said with what was refused: the --accepted-at time (only a given time can go
            // backwards), or where the refused statement came from: a file, or a line of standard input.
            let name: String
            if error.code == .timeWentBackwards {
                name = "--accepted-at"
            } else if let at = error.statement, inputs.indices.contains(at) {
                name = inputs[at].name
            } else {
                throw error
            }
            var named = LedgerError(error.code, "\(name): \(error.message)")
            (named.cause, named.site) = (error.cause, error.site)
            throw named
        }
        if let first = appended.first, let last = appended.last {
            Terminal.done = "the statements were appended as entries \(first.sequence)…\(last.sequence) (see `ledger log \(directory) --from \(first.sequence)`)"
        }
        for (entry, envelope) in zip(appended, parsed) {
            let id = (try? Event(payload: envelope.payload).id) ?? "-"
            print("\(entry.sequence) \(entry.entryID.hexString) \(id)")
        }
        if let logKey {
            do throws(LedgerError) {
                let signed = try signCheckpointSayingWhatItRecords(writer, logKey)
                Terminal.note("checkpoint of \(writer.ledger.count) entries stored in \(signed.path)")
            } catch {
                throw LedgerError(error.code, "The statements above were appended; only the checkpoint failed: \(error.message) Sign one with `ledger checkpoint \(directory) --key KEY`.")
            }
        }
    }
}

/// Signs a checkpoint with `key`; the first one also records its key as the log key for good,
/// which is said.
func signCheckpointSayingWhatItRecords(_ writer: LedgerWriter, _ key: SigningKey) throws(LedgerError) -> (path: String, note: SignedNote) {
    let store = CheckpointStore(ledgerDirectory: writer.ledger.directory)
    let first = try store.verifierKey() == nil
    let signed = try writer.signCheckpoint(with: key)
    if first {
        Terminal.note("this ledger's first checkpoint: its key is recorded as the log key in \(store.verifierKeyPath), and every later checkpoint must be signed with it")
    }
    return signed
}

/// Opens the ledger in `directory` for writing and says what the open found and did (a torn
/// tail cut, the index rewritten, a kept rule state dropped): no command repairs silently.
func openWriter(_ directory: String, lockTimeout: Double = LedgerWriter.defaultLockTimeout) throws(LedgerError) -> LedgerWriter {
    let writer = try LedgerWriter(directory: directory, lockTimeout: lockTimeout)
    for message in writer.ledger.report.messages { Terminal.note(message) }
    return writer
}

func parseJSON(_ bytes: [UInt8], what: String) throws(LedgerError) -> JSONValue {
    do {
        return try JSONParser.parse(bytes)
    } catch {
        throw LedgerError(.malformedEvent, "\(what) is not valid JSON: \(error).")
    }
}
