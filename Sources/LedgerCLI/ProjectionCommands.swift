import ArgumentParser
import LedgerCore
import LedgerProjections
import LedgerStore

/// How many records a command must replay past the newest snapshot for it to write a new one
/// at the end of its replay.
let snapshotInterval: UInt64 = 256

/// `--as-of` and `--no-snapshots`, shared by the commands that replay projections.
struct ReplayOptions: ParsableArguments {
    @Option(
        name: .customLong("as-of"),
        help: ArgumentHelp(
            "Show the ledger as it stood at a sequence number (that entry included), an RFC 3339 UTC time (entries accepted at or before it), or a date YYYY-MM-DD (the end of that day, UTC).",
            valueName: "seq|time"))
    var asOf: String?

    @Flag(name: .customLong("no-snapshots"), help: "Replay from genesis, reading and writing no snapshot: the answer from the log alone. Snapshots (DIR/snapshots) are caches, each authenticated under its writer's own key ($XDG_STATE_HOME or ~/.local/state, then evidence-ledger/snapshot-key) and checked against the log's entry at its position; `ledger verify` does not read them.")
    var noSnapshots = false

    @Flag(name: .customLong("trust-signatures"), help: "Do not re-verify each statement's signatures while replaying (they were verified at append; `ledger verify` checks them). Keys (valid for each statement's author at its position) and blobs are still checked; the other append rules are `ledger verify`'s. Much faster on large ledgers. Entries past the index, which no writer may have checked, are verified all the same.")
    var trustSignatures = false

    /// Whether the replay verifies signatures, and from which entry on it does regardless:
    /// unless --trust-signatures, all; with it, those past the index (said in a note), for the
    /// index records only what a writer checked, and an entry past it may not have been.
    func signatureChecks(in ledger: Ledger) -> (verifies: Bool, from: UInt64) {
        guard trustSignatures else { return (true, .max) }
        guard ledger.indexCount < ledger.count else { return (false, .max) }
        let entries = ledger.count - ledger.indexCount == 1 ? "Entry \(ledger.indexCount) is" : "Entries \(ledger.indexCount)…\(ledger.count - 1) are"
        Terminal.note("\(entries) past the index (its writes lost, or the entries added by other means), so where statements' signatures are checked, theirs are verified despite --trust-signatures.")
        return (false, ledger.indexCount)
    }

    /// The disputed-facts projection, with the signature checks these options ask for on `ledger`.
    func disputedFacts(in ledger: Ledger) -> DisputedFactsProjection {
        let checks = signatureChecks(in: ledger)
        return DisputedFactsProjection(verifiesSignatures: checks.verifies, verifyingFrom: checks.from)
    }

    /// The replay target `--as-of` names in `ledger`.
    /// - Throws: ``LedgerError/Code/usage`` for a sequence number past its last entry: an answer
    ///   "as of" it would be today's, and `20200922` is a date written without its dashes.
    func target(in ledger: Ledger) throws(LedgerError) -> ReplayTarget {
        guard let asOf else { return .end }
        if !asOf.isEmpty, asOf.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) {
            guard let n = UInt64(asOf), n < ledger.count else {
                throw LedgerError(.usage, "--as-of \(asOf) is past the ledger's last entry (\(Int64(ledger.count) - 1)). Give a sequence number up to that, or a date as YYYY-MM-DD.")
            }
            return .sequence(n)
        }
        if asOf.utf8.count == 10, let day = Timestamp(rfc3339: asOf + "T23:59:59.999999999Z") {
            return .acceptedAt(day)
        }
        guard let time = Timestamp(rfc3339: asOf) else {
            throw LedgerError(.usage, "--as-of \"\(asOf)\" is neither a sequence number, an RFC 3339 UTC time such as 2020-09-22T12:00:00Z, nor a date such as 2020-09-22.")
        }
        return .acceptedAt(time)
    }

    /// Commands refresh snapshots as they go; a failed write is skipped (snapshots are a cache,
    /// and a reader may have no write permission).
    var policy: SnapshotPolicy { noSnapshots ? .none : .refresh(atLeast: snapshotInterval) }

    func engine(for ledger: Ledger) -> ReplayEngine {
        noSnapshots ? ReplayEngine(withoutSnapshots: ledger) : ReplayEngine(ledger: ledger)
    }

    /// Replays `projection` to this command's target, with its snapshot policy, readied for the
    /// queries that follow: a command only queries what it replays.
    func replayForQueries<P: Projection>(_ projection: P, in ledger: Ledger) throws(LedgerError) -> Replay<P.State> {
        try engine(for: ledger).replayForQueries(projection, to: target(in: ledger), snapshots: policy)
    }
}

/// Opens a ledger for reading, passing on what opening found. For a command `answering` from
/// it, evidence that a record changed after it was written (the index's record of it) makes
/// the command end with status 1 once it has answered: the answer may rest on that record.
func openLedger(_ directory: String, answering: Bool = true) throws(LedgerError) -> Ledger {
    let ledger = try Ledger(directory: directory)
    for message in ledger.report.messages { Terminal.note(message) }
    if answering, let at = ledger.report.indexContradictsLogAt {
        Terminal.caveat = (at, LedgerError(.damagedLog, "The answer above was read from a log whose entry \(at) is not the record the index recorded for it when it was written: the record may have been changed since. Run `ledger verify \(directory)` before relying on the answer."))
    }
    return ledger
}

/// Reports skipped records on standard error, and with `--verbose` what the replay did.
func reportReplay(_ info: ReplayInfo, name: String, verbose: Bool) {
    // An answer as of a position before the changed record does not rest on it.
    if let entry = Terminal.caveat?.entry, info.position.sequence.map({ $0 < entry }) ?? true { Terminal.caveat = nil }
    for skipped in info.skipped {
        Terminal.note("note: entry \(skipped.sequence) skipped\(skipped.type.map { " (type \"\($0)\")" } ?? ""): \(skipped.reason)")
    }
    if info.skippedCount > info.skipped.count {
        Terminal.note("note: \(info.skippedCount - info.skipped.count) more entries skipped.")
    }
    guard verbose else { return }
    let start = info.resumedFrom.map { "resumed from the snapshot at entry \($0)" } ?? "replayed from genesis"
    Terminal.note("\(name): \(start), read \(info.recordsRead) entries")
    for path in info.snapshotsWritten { Terminal.note("\(name): wrote snapshot \(path)") }
    for note in info.notes { Terminal.note("\(name): \(note)") }
}

/// "as of entry 41 (accepted 2020-09-22T10:00:00Z)".
func describe(_ position: ReplayPosition) -> String {
    guard let sequence = position.sequence else { return "before the first entry" }
    let of = sequence + 1 == position.ledgerCount ? "" : " of \(position.ledgerCount)"
    return "as of entry \(sequence)\(of) (accepted \(position.acceptedAt ?? "?"))"
}

/// Colours for a terminal; plain text otherwise.
struct Style {
    let enabled: Bool

    static var stdout: Style { Style(enabled: Terminal.stdoutIsTerminal) }

    func paint(_ text: String, _ code: String) -> String { enabled ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text }
    func bold(_ text: String) -> String { paint(text, "1") }

    func status(_ status: DisputeStatus) -> String {
        switch status {
        case .disputed: paint(status.rawValue, "33")
        case .uncontested: paint(status.rawValue, "32")
        case .unclaimed: paint(status.rawValue, "2")
        case .withdrawn: paint(status.rawValue, "90")
        }
    }

    func label(_ label: String) -> String {
        switch label {
        case "accepted": paint(label, "32")
        case "rejected": paint(label, "31")
        case "excluded": paint(label, "31")
        default: paint(label, "33")
        }
    }
}

func shorten(_ text: String, _ limit: Int) -> String {
    let flat = text.printable
    return flat.count <= limit ? flat : String(flat.prefix(limit - 1)) + "…"
}

extension Unicode.Scalar {
    /// Whether a terminal obeys or hides it rather than showing it: DEL and the C1 controls
    /// (U+009B starts an escape sequence), the line and paragraph separators, and the
    /// bidirectional formatting characters, which reorder the text shown around them (a
    /// statement could make "exe.gnp" read as "png.exe"). ASCII controls are the caller's.
    var isHiddenFromReaders: Bool {
        switch value {
        case 0x7F...0x9F, 0x61C, 0x200E, 0x200F, 0x2028...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    /// `\u` and four lowercase hex digits: how JSON, and these escapes, write it.
    var jsonEscape: String {
        let hex = String(value, radix: 16)
        return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    }
}

extension String {
    /// The text as one line that a terminal shows as written: line breaks become spaces, and
    /// other control characters and those ``Unicode/Scalar/isHiddenFromReaders`` become
    /// `\u001b`-style escapes. A ledger's texts are anyone's
    /// who can sign: an escape sequence in a statement could erase lines on a reader's terminal,
    /// or paint a false status.
    var printable: String { escapingControls(keepingLineFeeds: false) }

    /// As ``printable``, but line feeds are kept: for messages of several lines.
    var printableLines: String { escapingControls(keepingLineFeeds: true) }

    private func escapingControls(keepingLineFeeds: Bool) -> String {
        var out = ""
        out.unicodeScalars.reserveCapacity(unicodeScalars.count)
        for scalar in unicodeScalars {
            if keepingLineFeeds && scalar == "\n" {
                out.unicodeScalars.append(scalar)
            } else if !keepingLineFeeds && (scalar == "\n" || scalar == "\r" || scalar == "\u{2028}" || scalar == "\u{2029}" || scalar == "\u{85}") {
                out.unicodeScalars.append(" ")
            } else if scalar.value < 0x20 || scalar.isHiddenFromReaders {
                out += scalar.jsonEscape
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}

// MARK: - ledger facts

enum StatusFilter: String, ExpressibleByArgument, CaseIterable {
    case disputed, uncontested, unclaimed, withdrawn
}

struct FactsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "facts",
        abstract: "Show every disputed fact: dispute status, claims' argument status, finding, integrity.",
        discussion: """
            Replays the disputed-facts projection, resuming from the newest snapshot and, when it \
            replayed at least \(snapshotInterval) entries past it, writing a new one where it stopped \
            (skipped silently when the ledger directory is read-only). Blob checks run now, whatever --as-of says. \
            Each fact's statements are read back from the log as it is shown, and --json prints \
            each fact as it is built: if the log cannot be read part-way, the output stops \
            there, incomplete, and the exit status says why.

            STATUSES. Dispute status: unclaimed (no claim, or only excluded ones), uncontested (active claims, not both \
            affirming and denying), disputed (active claims affirm and deny), withdrawn (every \
            claim retracted). Argument status of each active claim and evidence item: accepted, \
            rejected or undecided under Dung's grounded semantics, where a counterclaim attacks \
            the claim it counters; affirming and denying claims attack each other; evidence \
            attacks each claim it contradicts; two evidence items attack each other when one \
            supports a claim the other contradicts; evidence whose blob is missing, unreadable or \
            mismatched, or whose signature or key is bad, or whose author's role may not attach \
            evidence, is excluded, and so is a claim whose own statement's signature or key is \
            bad (no argument, no stance). Integrity codes: blob-missing:E, blob-mismatch:E, \
            blob-unreadable:E, custody-gap:E, bad-signature:ID, key-invalid:ID, \
            role-not-allowed:ID (its author's role may not sign its type: it takes no effect), \
            not-the-author:ID, key-revoked-later:ID.

            JSON (--json), stable; members may be added, never renamed or removed:
              {"as_of": {"sequence", "entry_id", "accepted_at", "ledger_entries"},
               "facts": [FACT...],
               "skipped": [{"sequence", "entry_id", "type", "reason"}]}
            FACT = {"fact", "proposition", "subjects", "tags", "opened_at",
              "opened_by", "last_change", "dispute_status",
              "integrity": [code...], "claims": [CLAIM...] (active only),
              "retracted_claims": [CLAIM...], "evidence": [EVIDENCE...],
              "attestations": [ATTESTATION...] (on the fact's own entries),
              "findings": [FINDING...], "finding": FINDING|null (the latest)}
            CLAIM = {"claim", "author", "stance", "statement",
              "source": {"uri", "published_at", "quote"}|null,
              "counters": id|null, "countered_by", "evidence_for",
              "evidence_against", "attestations", "asserted_at",
              "last_change", "amendments",
              "status": "accepted"|"rejected"|"undecided"|"excluded"|null (retracted),
              "reason", "retracted_at": seq|null, "retraction_reason"}
            EVIDENCE = {"evidence", "title", "author", "media_type", "sha256",
              "size", "captured_at", "source", "supports", "contradicts",
              "attached_at", "blob": "present"|"missing"|"mismatched"|"unreadable"|"unchecked",
              "integrity", "status": "accepted"|"rejected"|"undecided"|
              "excluded"|"inactive", "reason", "custody_steps", "custody_gaps",
              "attestations"}
            ATTESTATION = {"attestation", "author", "target", "kind", "note",
              "sequence", "problem": code|null}
            FINDING = {"finding", "author", "outcome", "rationale", "relies_on",
              "sequence", "signed_at", "accepted_at", "problem": code|null}
            An attestation or finding whose "problem" is not null (bad-signature, \
            key-invalid, role-not-allowed) takes no effect: it is listed so that it is \
            seen, and its code is among the integrity codes. "finding" is the latest \
            that takes effect.
            Sequence numbers are integers; times are RFC 3339 UTC strings.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @OptionGroup var replay: ReplayOptions

    @Option(name: .long, help: ArgumentHelp("Show only facts with this dispute status.", valueName: "status"))
    var status: StatusFilter?

    @Flag(name: .long, help: "Print JSON (shape above) instead of a table.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let ledger = try openLedger(directory)
        let projection = replay.disputedFacts(in: ledger)
        let result = try replay.replayForQueries(projection, in: ledger)
        reportReplay(result.info, name: projection.name, verbose: common.verbose)
        let context = ReportContext(ledger: ledger, blobs: BlobStore(ledgerDirectory: directory), position: result.info.position)
        let wanted: @Sendable (FactView) -> Bool = { [status] fact in status == nil || fact.disputeStatus.rawValue == status?.rawValue }
        if json {
            let members: [String: JSONValue] = ["as_of": result.info.position.json, "skipped": .array(result.info.skipped.map(\.json))]
            // Each fact rendered on the core that built it; printed in order here.
            try JSONValue.printPretty(members, streaming: ["facts"]) { (emit) throws(LedgerError) in
                try projection.forEachFact(in: result.state, context: context, { wanted($0) ? $0.json.prettyElement(streamedAt: ["facts"]) : nil }) { text in
                    if let text { emit(text) }
                }
            }
            return
        }
        let style = Style.stdout
        // Rows only: each fact's view is dropped once its row is made.
        var table = Table(header: ["FACT", "DISPUTE", "CLAIMS", "ACCEPTED", "REJECTED", "UNDECIDED", "FINDING", "INTEGRITY", "PROPOSITION"])
        table.paint[1] = { text in DisputeStatus(rawValue: text).map(style.status) ?? text }
        table.paint[7] = { text in text == "ok" ? text : style.paint(text, "31") }
        var total = 0
        try projection.forEachFact(in: result.state, context: context) { (fact) throws(LedgerError) in
            total += 1
            guard wanted(fact) else { return }
            let counts = fact.statusCounts
            // Codes, not failures: key-revoked-later is worth knowing, not a fault (`ledger fact` lists them).
            let integrity = fact.integrity.isEmpty ? "ok" : fact.integrity.count == 1 ? fact.integrity[0] : "\(fact.integrity.count) codes"
            try table.append([
                fact.fact.fact, fact.disputeStatus.rawValue, String(fact.claims.count), String(counts.accepted), String(counts.rejected),
                String(counts.undecided), fact.latestFinding?.outcome ?? "-", integrity,
                style.enabled ? shorten(fact.fact.proposition, 70) : fact.fact.proposition.printable,
            ])
        }
        let filter = status.map { ", \($0.rawValue) only" } ?? ""
        print("\(directory): \(table.count) of \(total) facts\(filter), \(describe(result.info.position))")
        guard table.count > 0 else { return }
        print("")
        try table.print(style: style)
    }
}

// MARK: - ledger fact

struct FactCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fact",
        abstract: "Show everything about one fact: statuses with reasons, claims by side, evidence, finding, timeline.",
        discussion: """
            Replays the disputed-facts projection (using and refreshing snapshots like `ledger \
            facts`) and reads the fact's records back from the log. The timeline lists every \
            event touching the fact, as the timeline projection does (`ledger replay \
            --projection timeline`), with its sequence number, entry id (its first 16 hex \
            digits in text, whole in JSON), the author's signed_at, the ledger's accepted_at \
            and the source's published_at, kept apart. An event that is no valid statement of \
            its named author (its key not the author's at its position, its signature, the \
            author's role, a change to another's claim or to a retracted one) is listed as \
            written, with why \
            ("— not valid: key-invalid").

            JSON (--json), stable; FACT as in `ledger facts --help`:
              {"as_of": {...}, "fact": FACT, "timeline": [EVENT...], "skipped": [...]}
            EVENT = {"sequence", "entry_id", "type", "event", "author",
              "signed_at", "accepted_at", "published_at": time|null,
              "captured_at": time|null, "subject", "summary",
              "problem": null|"bad-signature"|"key-invalid"|"role-not-allowed"|"not-the-author"|
                "claim-retracted"}
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Argument(help: ArgumentHelp("The fact's id.", valueName: "fact-id"))
    var factID: String

    @OptionGroup var replay: ReplayOptions

    @Flag(name: .long, help: "Print JSON instead of text.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let ledger = try openLedger(directory)
        let projection = replay.disputedFacts(in: ledger)
        let result = try replay.replayForQueries(projection, in: ledger)
        reportReplay(result.info, name: projection.name, verbose: common.verbose)
        let context = ReportContext(ledger: ledger, blobs: BlobStore(ledgerDirectory: directory), position: result.info.position)
        guard let (fact, timeline) = try projection.factAndTimeline(factID, in: result.state, context: context) else {
            let shown = try result.state.factIDs(limit: 20)
            let more = result.state.factCount - shown.count
            let known = shown.joined(separator: ", ") + (more > 0 ? " and \(more) more" : "")
            throw LedgerError(.notFound, "There is no fact \"\(factID)\" in \(directory) \(describe(result.info.position)). Facts: \(shown.isEmpty ? "none" : known). Run `ledger facts \(directory)` to list them.")
        }
        if json {
            let out: JSONValue = .object([
                "as_of": result.info.position.json, "fact": fact.json, "timeline": .array(timeline.map(\.json)),
                "skipped": .array(result.info.skipped.map(\.json)),
            ])
            print(out.pretty())
            return
        }
        try printFact(fact, timeline: timeline, position: result.info.position, style: Style.stdout)
    }

    func printFact(_ fact: FactView, timeline: [TimelineProjection.Entry], position: ReplayPosition, style: Style) throws(LedgerError) {
        let f = fact.fact
        print(style.bold("Fact \(f.fact)") + ", \(describe(position))")
        print("Proposition:    \(f.proposition.printable)")
        var opened = "Opened:         entry \(f.openedAt) by \(f.openedBy)"
        if !f.subjects.isEmpty { opened += "; subjects: " + f.subjects.joined(separator: ", ").printable }
        if !f.tags.isEmpty { opened += "; tags: " + f.tags.joined(separator: ", ").printable }
        print(opened)
        print("Dispute status: \(style.status(fact.disputeStatus))")
        print("Integrity:      " + (fact.integrity.isEmpty ? "no problems found" : style.paint(fact.integrity.joined(separator: ", "), "31")))
        if let finding = fact.latestFinding {
            print("Finding:        \(finding.outcome.printable) (\(finding.finding) by \(finding.author), entry \(finding.sequence)): \(finding.rationale.printable)")
            if !finding.reliesOn.isEmpty { print("                relies on " + finding.reliesOn.joined(separator: ", ")) }
            // Only those that took effect: the others show as their integrity codes.
            let earlier = fact.fact.findings.count { $0.signing.problem == nil && $0.sequence < finding.sequence }
            if earlier > 0 { print("                (\(earlier) earlier finding(s); see --json)") }
        } else {
            print("Finding:        none")
        }
        for (stance, heading) in [(Event.Stance.affirms, "affirming"), (.denies, "denying"), (.qualifies, "qualifying")] {
            let side = fact.claims.filter { $0.claim.stance == stance.rawValue }
            print("")
            print(style.bold("Claims \(heading) (\(side.count))"))
            for claim in side { printClaim(claim, style: style) }
        }
        if !fact.retractedClaims.isEmpty {
            print("")
            print(style.bold("Retracted claims (\(fact.retractedClaims.count))"))
            for claim in fact.retractedClaims {
                print("  \(claim.claim.claim) by \(claim.claim.author), \(claim.claim.stance): \(claim.reason.printable)")
            }
        }
        print("")
        print(style.bold("Evidence (\(fact.evidence.count))"))
        for e in fact.evidence {
            let item = e.item
            print("  \(item.evidence) [\(style.label(e.status.rawValue))] \"\(item.title.printable)\" by \(item.author), entry \(item.attachedAt); blob \(e.blob.rawValue)")
            var relations: [String] = []
            if !item.supports.isEmpty { relations.append("supports " + item.supports.joined(separator: ", ")) }
            if !item.contradicts.isEmpty { relations.append("contradicts " + item.contradicts.joined(separator: ", ")) }
            let gaps = item.custody.count { $0.gap != nil }
            relations.append("custody: \(item.custody.count) step(s)" + (gaps > 0 ? ", \(gaps) gap(s)" : ""))
            print("    " + relations.joined(separator: "; "))
            print("    \(e.reason)")
            for a in item.attestations { print("    attested: " + attestationLine(a)) }
        }
        if !fact.fact.attestations.isEmpty {
            print("")
            print(style.bold("Attestations on the fact's entries"))
            for a in fact.fact.attestations { print("  " + attestationLine(a, on: a.target)) }
        }
        print("")
        print(style.bold("Timeline (\(timeline.count) events)"))
        var table = Table(header: ["SEQ", "ENTRY", "ACCEPTED_AT", "SIGNED_AT", "PUBLISHED_AT", "AUTHOR", "EVENT"])
        for event in timeline {
            // The entry id's first 16 hex digits, as `parties` shows key ids; --json has it whole.
            try table.append([
                String(event.sequence), String(event.entryID.prefix(16)), event.acceptedAt, event.signedAt, event.publishedAt ?? event.capturedAt.map { "captured \($0)" } ?? "-",
                event.author, event.summary.printable + (event.problem.map { " — not valid: \($0)" } ?? ""),
            ])
        }
        try table.print(style: style)
    }

    func printClaim(_ view: FactView.ClaimView, style: Style) {
        let c = view.claim
        var head = "  \(c.claim) [\(style.label(view.excluded ? "excluded" : view.status?.rawValue ?? "retracted"))] by \(c.author), entry \(c.assertedAt)"
        if c.lastChange != c.assertedAt { head += ", last change \(c.lastChange) (\(c.amendments) amendment(s))" }
        if let counters = c.counters { head += "; counters \(counters)" }
        print(head)
        print("    \"\(c.statement.printable)\"")
        if let source = c.source {
            let parts = [source.uri, source.publishedAt.map { "published \($0)" }].compactMap { $0 }
            if !parts.isEmpty { print("    source: " + parts.joined(separator: ", ").printable) }
        }
        var links: [String] = []
        links.append("evidence for: " + (c.evidenceFor.isEmpty ? "none" : c.evidenceFor.joined(separator: ", ")))
        links.append("against: " + (c.evidenceAgainst.isEmpty ? "none" : c.evidenceAgainst.joined(separator: ", ")))
        if !c.counteredBy.isEmpty { links.append("countered by: " + c.counteredBy.joined(separator: ", ")) }
        print("    " + links.joined(separator: "; "))
        for a in c.attestations { print("    attested: " + attestationLine(a)) }
        print("    \(view.reason)")
    }

    /// "KIND by AUTHOR (ID, entry N)", then " on TARGET" if given, and " — not valid: CODE" for
    /// an attestation whose signature or key fails: it vouches for nothing.
    func attestationLine(_ a: AttestationInfo, on target: String? = nil) -> String {
        var text = "\(a.kind.printable) by \(a.author) (\(a.attestation), entry \(a.sequence))" + (target.map { " on \($0)" } ?? "")
        if let problem = a.signing.problem { text += " — not valid: \(problem.rawValue)" }
        return text
    }
}

// MARK: - ledger parties

struct PartiesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parties",
        abstract: "Show every party with its role and keys, valid from which entry until which.",
        discussion: """
            JSON (--json), stable:
              {"as_of": {...}, "skipped": [...],
               "parties": [{"party", "name", "role", "registered_at",
                 "registered_by", "keys": [{"key_id", "public_key", "valid_from",
                   "added_by", "added_reason", "revoked_at", "revoked_by",
                   "revoked_reason"}]}]}
            A key may sign from entry valid_from on; a revoked key may not sign
            after revoked_at.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @OptionGroup var replay: ReplayOptions

    @Flag(name: .long, help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let ledger = try openLedger(directory)
        let projection = PartiesProjection()
        let result = try replay.replayForQueries(projection, in: ledger)
        reportReplay(result.info, name: projection.name, verbose: common.verbose)
        let parties = projection.parties(in: result.state)
        if json {
            let out: JSONValue = .object([
                "as_of": result.info.position.json, "parties": .array(parties.map(\.json)),
                "skipped": .array(result.info.skipped.map(\.json)),
            ])
            print(out.pretty())
            return
        }
        let style = Style.stdout
        print("\(directory): \(parties.count) parties, \(describe(result.info.position))")
        print("")
        var table = Table(header: ["PARTY", "ROLE", "NAME", "KEY", "VALID FROM", "UNTIL"])
        table.paint[5] = { text in text == "current" ? text : style.paint(text, "31") }
        for party in parties {
            for (i, key) in party.keys.enumerated() {
                let until = key.revokedAt.map { "revoked at \($0)" + (key.revokedReason.map { " (\($0))" } ?? "") } ?? "current"
                try table.append([
                    i == 0 ? party.party : "", i == 0 ? party.role : "", i == 0 ? party.name : "", String(key.keyID.prefix(16)),
                    String(key.validFrom), until,
                ])
            }
        }
        try table.print(style: style)
    }
}

// MARK: - ledger replay

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay any registered projection and print its report.",
        discussion: """
            Projections: \(ProjectionRegistry.builtIn.projections.map { "\($0.name) (\($0.summary))" }.joined(separator: "; ")).

            JSON (--json): {"projection", "version", "as_of": {...}, "report": REPORT, \
            "skipped": [...]}. REPORT is the projection's own documented shape: \
            disputed-facts {"facts": [FACT...]} (see `ledger facts --help`); parties-and-keys \
            {"parties": [...]} (see `ledger parties --help`); evidence-index {"evidence": [{"evidence", \
            "title", "author", "media_type", "sha256", "size", "captured_at", "custodian", "source", \
            "supports", "contradicts", "facts" (those of the claims it supports or contradicts; \
            a fact whose finding relies on it lists it among its own evidence), "attached_at", \
            "blob", "integrity", "holder", \
            "custody": [{"sequence", "entry_id", "action", "from", "to", "at", "note", "author", \
            "signed_at", "gap": reason|null}], "custody_gaps", "attestations"}]}; timeline \
            {"facts": [{"fact", "events": [EVENT...]}]} (see `ledger fact --help`). A custody \
            step is a gap when the chain does not start with "collected" and no custodian is \
            named, when a transfer lacks from or to or its from is not the current holder, when \
            another step names a from that is not the holder, or when it is dated before an \
            earlier step. Without --json the report is printed as indented JSON. The report \
            is printed an element at a time as it is built: if the log cannot be read back \
            part-way, the output stops there, incomplete, and the exit status and error say so.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The projection to replay.", valueName: "name"))
    var projection: String

    @OptionGroup var replay: ReplayOptions

    @Flag(name: .long, help: "Print one JSON object with the report and the replay position.")
    var json = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        guard ProjectionRegistry.builtIn.projection(named: projection) != nil else {
            throw LedgerError(.usage, "There is no projection \"\(projection)\". Choose one of: \(ProjectionRegistry.builtIn.names.joined(separator: ", ")).")
        }
        let ledger = try openLedger(directory)
        let checks = replay.signatureChecks(in: ledger)
        let registry = ProjectionRegistry.builtIn(verifiesSignatures: checks.verifies, verifyingFrom: checks.from)
        guard let chosen = registry.projection(named: projection) else { preconditionFailure("the same projections") }
        let answer = try chosen.answer(
            using: replay.engine(for: ledger), to: replay.target(in: ledger), snapshots: replay.policy, blobs: BlobStore(ledgerDirectory: directory))
        reportReplay(answer.info, name: answer.name, verbose: common.verbose)
        // The report is printed an element at a time: built whole, a million entries' report
        // took gigabytes.
        var members: [String: JSONValue] = [:]
        var path = [answer.reportKey]
        if json {
            members = [
                "projection": .string(answer.name), "version": .integer(Int64(answer.version)), "as_of": answer.info.position.json,
                "skipped": .array(answer.info.skipped.map(\.json)),
            ]
            path.insert("report", at: 0)
        } else {
            print("\(answer.name) v\(answer.version), \(describe(answer.info.position))")
        }
        let streamed = path
        try JSONValue.printPretty(members, streaming: streamed) { (emit) throws(LedgerError) in
            try answer.forEachReportElement { emit($0.prettyElement(streamedAt: streamed)) }
        }
    }
}

// MARK: - ledger snapshot

struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Write a snapshot of every projection (or one) at the last entry, now.",
        discussion: """
            Snapshots live in DIR/snapshots as <state>-v<version>-<sequence>.snapshot: the \
            projection's state at that entry and the entry id there. The timeline and \
            evidence-index projections share the snapshots of the disputed-facts index replayed \
            without signature checks (disputed-facts+unverified-signatures), since their state is \
            that index. They are caches: a snapshot whose entry id no longer matches the log, \
            whose state's version changed, or that does not check under your snapshot key \
            ($XDG_STATE_HOME or ~/.local/state, then evidence-ledger/snapshot-key, made at first \
            use: another user's, or \
            one changed by someone without the key) is ignored and rebuilt, and deleting them \
            never changes an answer. Each is written to a temporary file, synced and renamed into \
            place. Older snapshots beyond the newest eight of a state are removed. Exit 3 if a \
            snapshot cannot be written.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("Only this projection.", valueName: "name"))
    var projection: String?

    @OptionGroup var common: VerboseOption

    func run() throws {
        let registry = ProjectionRegistry.builtIn
        var chosen = registry.projections
        if let projection {
            guard let one = registry.projection(named: projection) else {
                throw LedgerError(.usage, "There is no projection \"\(projection)\". Choose one of: \(registry.names.joined(separator: ", ")).")
            }
            chosen = [one]
        }
        let ledger = try openLedger(directory, answering: false)
        let engine = ReplayEngine(ledger: ledger)
        // Projections that share a state's snapshots (the timeline and evidence index share the
        // unverified index's) need it written once.
        var written: [String: String] = [:]
        for p in chosen {
            let state = "\(p.snapshotName) v\(p.snapshotVersion)"
            if let path = written[state] {
                print("\(p.name) v\(p.version): shares the snapshot of \(state), written to \(path)")
                continue
            }
            guard let path = try p.writeSnapshot(using: engine) else {
                print("\(p.name) v\(p.version): the ledger is empty; nothing to snapshot")
                continue
            }
            written[state] = path
            print("\(p.name) v\(p.version): snapshot of \(state) at entry \(ledger.count - 1) written to \(path)")
        }
    }
}
