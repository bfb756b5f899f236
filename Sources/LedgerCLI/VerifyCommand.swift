import ArgumentParser
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Verify a ledger: the whole log from genesis, or only what is new since a trusted checkpoint.",
        discussion: """
            Full verification recomputes every entry id and chain link, verifies every signature, \
            checks every append rule at each entry's position (keys registered to the author and \
            not revoked, roles, references, unique ids), every stored evidence blob, and the \
            signature and root of every stored checkpoint. Reports every finding with its sequence \
            number, what was expected and what was found (the first 200 printed, then how many \
            more).

            With --since, verification is incremental: the trusted checkpoint and the ledger's \
            newest checkpoint must verify with --vkey, the log's first entries must still have the \
            trusted root, a consistency proof must lead from one to the other, and only the new \
            entries are checked in full, with the stored checkpoints between the two. The append rules need the state of everything before \
            them: with --state (the rule state you saved when you verified the trusted checkpoint) \
            only the new entries are read, whatever the ledger's size; without it the entries \
            before the checkpoint are read again to rebuild the state (their signatures are not \
            rechecked). With --state the old entries themselves are not read: the stored tree must \
            fold to the trusted root, and the entry just before the new ones must be the one you \
            saved and end where the log did then; old entries changed behind an unchanged tree, \
            the log's length before the new entries kept, are found by a full verification.

            With --witness and --witnesses-required k, the newest checkpoint the log key signed \
            must also be cosigned by k of those witnesses; with --origin, the log must be of that \
            origin (its genesis record and its checkpoints). Both apply with and without --since.

            --save-state FILE saves the rule state at the newest checkpoint that verified (with \
            --since: the ledger's newest checkpoint), only if the ledger is intact. Keep it with \
            that checkpoint file: together they are what --since and --state take next time. The \
            state is yours; never take one from the ledger's operator. FILE must lie outside the \
            ledger directory, and an existing FILE must be a saved state: nothing else is replaced. \
            --state takes no file in the ledger directory either (the writer keeps its own there).

            Exit 0 if intact, 1 if anything was found, 2 for a usage mistake (a saved state of \
            another checkpoint is one), 3 if a file cannot be read or written.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("A checkpoint you trust (a signed note file): verify only what came after it.", valueName: "checkpoint-file"))
    var since: String?

    @Option(name: .long, help: ArgumentHelp("The rule state you saved at the --since checkpoint: read only the new entries.", valueName: "state-file"))
    var state: String?

    @Option(name: .customLong("save-state"), help: ArgumentHelp("Save the rule state at the newest verified checkpoint to this file.", valueName: "state-file"))
    var saveState: String?

    @OptionGroup var keys: CheckpointKeyOptions

    @OptionGroup var common: VerboseOption

    func run() throws {
        try keys.checkWitnessCount()
        var lastShown = 0.0
        let progress: (UInt64, UInt64, UInt64) -> Void = { records, read, total in
            // A progress line for long logs only; rewritten in place on a terminal.
            guard total > 16 << 20 else { return }
            let now = Clock.seconds()
            guard now - lastShown >= 1 || read == total else { return }
            lastShown = now
            let line = "verifying: \(records) entries, \(read * 100 / max(total, 1))% of \(total >> 20) MiB"
            Terminal.write(Terminal.stderrIsTerminal ? "\r" + line : line + "\n")
            if Terminal.stderrIsTerminal && read == total { Terminal.write("\n") }
        }
        let report: VerificationReport
        var summary: String
        if let since {
            guard keys.vkey != nil else { throw ValidationError("--since needs --vkey: the log's note verifier key you trust.") }
            let origin = try Ledger(directory: directory).origin()
            // Refused before it is opened: a file there may be anything, a FIFO that would never answer included.
            let saved = try state.map { (path) throws(LedgerError) in
                try SavedState.checkSource(path, ledger: directory)
                return try SavedState(path: path)
            }
            let result = try Verifier.verify(
                directory: directory, since: Files.read(since, limit: 1 << 20), verifier: keys.verifier(origin: origin), state: saved,
                saveState: saveState, progress: progress)
            report = result.report
            let checked = report.checked == 0 ? "0 new entries" : "\(report.checked) new entries (\(result.trusted.size)…\(report.records - 1)) checked in full, \(report.signatures) signatures verified"
            summary = "\(checked); consistent from the trusted checkpoint (\(result.trusted.size) entries) to the newest (\(result.newest.size) entries, root \(result.newest.root.shortHex()))"
            if !result.newest.witnesses.isEmpty { summary += ", cosigned by \(result.newest.witnesses.map(\.name).joined(separator: ", "))" }
            noteUnknownSignatures(of: result.newest, in: "The ledger's newest checkpoint")
        } else {
            guard state == nil else { throw ValidationError("--state goes with --since: it is the rule state at that checkpoint.") }
            // Checked as --since checks it: a witness's key, say, is a usage mistake, not damage.
            let configured = keys.vkey == nil && keys.witness.isEmpty ? nil : try keys.verifier()
            let requirements = Verifier.Requirements(
                origin: keys.origin, witnesses: configured?.witnesses ?? [], requiredWitnesses: configured?.requiredWitnesses ?? 0)
            report = try Verifier.verify(directory: directory, logKey: configured?.log, requirements: requirements, saveState: saveState, progress: progress)
            summary = "\(report.records) entries, \(report.signatures) signatures verified, \(report.checkpoints) checkpoint(s) verified"
            if requirements.requiredWitnesses > 0 {
                summary += "; the newest cosigned by \(requirements.requiredWitnesses) or more of the \(requirements.witnesses.count) witness(es) given"
            }
            // Cosignatures are checked only against --witness keys; the others are said.
            if let newest = report.newestCheckpoint { noteUnknownSignatures(of: newest.checkpoint, in: newest.path) }
        }
        for note in report.notes { Terminal.note("note: \(note)") }
        if report.isIntact {
            print("\(directory): intact. \(summary); last entry id \(report.lastEntryID.hexString).")
            guard let saveState else { return }
            guard let size = report.savedStateSize else {
                throw LedgerError(.usage, "The rule state was not saved to \(saveState): it is saved at a stored checkpoint, and none was verified. Either none is stored (ask the operator to run `ledger checkpoint`) or the log's verifier key was not at hand (give it with --vkey); then verify again.")
            }
            // Named, for it is what --since takes with this state: keep a copy of it with the state.
            let checkpoint = report.newestCheckpoint.flatMap { $0.checkpoint.size == size ? $0.path : nil } ?? "<the checkpoint of \(size) entries>"
            print("Saved the rule state at the checkpoint of \(size) entries to \(saveState); keep a copy of \(checkpoint) with it. Next time: --since \(checkpoint) --state \(saveState).")
            return
        }
        let shown = report.findings.prefix(200)
        for finding in shown { print(finding.description.printable) }
        if report.findings.count > shown.count { print("… and \(report.findings.count - shown.count) more findings.") }
        // Event types this version does not know, and requirements not met, are not damage; but
        // nothing vouches for the one, and the log is not as asked for in the other.
        let reasons = [(LedgerError.Code.unknownEventType, "event types unknown to this version"), (.requirementNotMet, "requirements given not met")]
            .filter { reason in report.findings.contains { $0.code == reason.0 } }.map(\.1)
        let verdict = report.foundDamage ? "DAMAGED" : "NOT VERIFIED (\(reasons.joined(separator: "; ")))"
        print("\(directory): \(verdict). \(report.findings.count) finding(s) in \(report.records) entries; the first at \(report.findings.min { $0.sequence < $1.sequence }?.location ?? "").")
        throw ExitCode(1)
    }
}
