import ArgumentParser
#if canImport(Glibc)
// For `stdout`, a C global: only its error flag is read, on the main thread, at the end.
@preconcurrency import Glibc
#endif
import LedgerCore

/// `ledger`: the command-line tool.
@main
struct LedgerTool: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ledger",
        abstract: "A tamper-evident, append-only ledger of signed claims, counterclaims and evidence.",
        discussion: """
            A ledger is a directory. Investigators sign statements on their own machines \
            (`ledger sign`) and append them (`ledger append`); reviewers check that nothing was \
            changed, removed or reordered (`ledger verify`); readers see where each disputed fact \
            stands, as of any moment (`ledger facts`, `ledger fact`).

            EXIT STATUS (the same for every command):
              0  success: for verify, the ledger is intact; for a command that \
            replays it (facts, fact, parties, replay), every record replayed (after the snapshot it \
            starts from, if any) links to the one before and the index shows none changed since it \
            was written (a blob missing, unreadable or mismatched is an integrity code in the \
            answer, its evidence excluded, not a status: blob check gives 1 or 3 for it)
              1  verification failed: damage found, a signature or proof is invalid, the log \
            holds event types this version does not know, a requirement given to verify is not met \
            (--origin, --witnesses-required), or a statement was rejected (nothing was appended)
              2  usage mistake: a wrong option, argument or input file name, or a \
            directory that is not a ledger
              3  I/O or environment problem: a file cannot be read or written, the disk is \
            full, or another writer holds the lock too long
            """,
        subcommands: [
            InitCommand.self, KeyCommand.self, SignCommand.self, CosignCommand.self, AppendCommand.self,
            LogCommand.self, ShowCommand.self, VerifyCommand.self, BlobCommand.self, RepairCommand.self,
            FactsCommand.self, FactCommand.self, PartiesCommand.self, ReplayCommand.self, SnapshotCommand.self,
            CheckpointCommand.self, VerifierKeyCommand.self, ProveCommand.self, CheckCommand.self, ExportCommand.self,
            CosignCheckpointCommand.self,
        ]
    )

    /// Parses and runs a command, mapping every error onto the documented exit statuses.
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        // CommandLine.arguments repairs bytes that are not UTF-8, so a file name holding them
        // would name another file (or none): refused, with the argument as given.
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) == nil else { continue }
            // Shown as given: bytes outside printable ASCII as \xNN.
            let given = UnsafeBufferPointer(start: raw, count: strlen(raw)).map { byte in
                let b = UInt8(bitPattern: byte)
                if b == 0x5C { return "\\\\" }
                return (0x20..<0x7F).contains(b) ? String(UnicodeScalar(b)) : "\\x" + (b < 16 ? "0" : "") + String(b, radix: 16)
            }.joined()
            Terminal.fail(LedgerError(.usage, "Argument \(i) (\(given)) is not UTF-8 text; ledger takes file names and values in UTF-8. Rename the file or give the value in UTF-8."), verbose: false)
        }
        // A file-size limit (ulimit -f) must give a clear error and a rolled-back append, not
        // kill the process half-way through a write.
        signal(SIGXFSZ, SIG_IGN)
        let verbose = arguments.contains("--verbose")
        if let unknown = unknownHelpTopic(arguments) {
            Terminal.fail(LedgerError(.usage, "There is no command `ledger \(unknown)`. `ledger help` lists the commands."), verbose: false)
        }
        do {
            var command = try parseAsRoot(arguments)
            // A group of commands named without one of them is a usage mistake (the argument
            // parser would print its help and succeed, as if something were done).
            let group = type(of: command).configuration
            if type(of: command) != LedgerTool.self, !group.subcommands.isEmpty, let name = group.commandName {
                let names = group.subcommands.map { $0._commandName }.joined(separator: ", ")
                throw LedgerError(.usage, "`ledger \(name)` needs one of its commands: \(names). `ledger help \(name)` says what each does.")
            }
            try command.run()
            try Terminal.flushOutput()
            if let caveat = Terminal.caveat { throw caveat.error }
        } catch let error as LedgerError {
            Terminal.fail(error, verbose: verbose)
        } catch let error as ExitCode {
            // A verdict (verify's 1) stands when its report could not be written, said on standard
            // error; a success needs its output delivered.
            if let lost = Terminal.unwrittenOutput() {
                Terminal.say(lost)
                Glibc.exit(error.rawValue == 0 ? 3 : error.rawValue)
            }
            // Evidence that a record the answer rests on was changed is said, and its status
            // (1) stands over the command's own (blob check's 3 for a blob it cannot read).
            if error.rawValue != 0, let caveat = Terminal.caveat { Terminal.fail(caveat.error, verbose: verbose) }
            Glibc.exit(error.rawValue)
        } catch let error as ValidationError {
            // A command's own check of its options, made once they are parsed: reported as every
            // other error is, with its code.
            Terminal.fail(LedgerError(.usage, error.message), verbose: verbose)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                print(message)
                Glibc.exit(0)
            }
            Terminal.error(message)
            // ArgumentParser reports usage mistakes as EX_USAGE (64); this tool's contract is 2.
            Glibc.exit(code == .validationFailure ? 2 : 3)
        }
    }
}

extension LedgerTool {
    /// The command `ledger help …` names that does not exist, if one does not: the argument
    /// parser shows the nearest command's help for it, with status 0, as if asked for that.
    static func unknownHelpTopic(_ arguments: [String]) -> String? {
        guard arguments.first == "help" else { return nil }
        var commands = configuration.subcommands
        var path: [String] = []
        // Names down to a command without subcommands: what follows are its arguments.
        for name in arguments.dropFirst() where !name.hasPrefix("-") {
            guard !commands.isEmpty else { break }
            path.append(name)
            if path == ["help"] { return nil }
            guard let command = commands.first(where: { $0._commandName == name }) else { return path.joined(separator: " ") }
            commands = command.configuration.subcommands
        }
        return nil
    }
}

/// Options every command that reads a ledger directory shares.
struct VerboseOption: ParsableArguments {
    @Flag(name: .long, help: "On failure, also print the cause chain and where the error was raised.")
    var verbose = false
}

enum Terminal {
    static func error(_ text: String) {
        var text = text
        if !text.hasSuffix("\n") { text += "\n" }
        write(text)
    }

    /// Writes bytes to standard output, after anything `print` buffered.
    /// - Throws: ``LedgerError/Code/io`` if they cannot all be written.
    static func writeOut(_ bytes: [UInt8]) throws(LedgerError) {
        try flushOutput()
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress.map { $0 + done }, $0.count - done) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw outputFailed() }
            done += n
        }
    }

    /// Writes out what `print` buffered. Output that could not all be written (a full disk, say)
    /// is an I/O error: a command never ends as if it had printed everything when it had not.
    /// - Throws: ``LedgerError/Code/io``.
    static func flushOutput() throws(LedgerError) {
        if let error = unwrittenOutput() { throw error }
    }

    /// What ``flushOutput()`` throws, returned; then forgotten, so that it is said once.
    static func unwrittenOutput() -> LedgerError? {
        guard fflush(stdout) != 0 || ferror(stdout) != 0 else { return nil }
        let error = outputFailed()
        clearerr(stdout)
        return error
    }

    /// What a command that writes has done, said once it is done: if its report cannot then be
    /// printed, running it again is not the remedy.
    nonisolated(unsafe) static var done: String?

    /// Why a command that answered must still end with an error, and the entry it is about:
    /// what it answered from may have changed there (see `openLedger`).
    nonisolated(unsafe) static var caveat: (entry: UInt64, error: LedgerError)?

    private static func outputFailed() -> LedgerError {
        let reason = String(cString: strerror(errno))
        if let done {
            return LedgerError(.io, "Cannot write to standard output (\(reason)), so what it received is incomplete; but \(done), and running the command again would not redo that. Only its report is lost.")
        }
        return LedgerError(.io, "Cannot write to standard output (\(reason)): what it received is incomplete. Free space or write elsewhere, then run the command again.")
    }

    /// Writes to standard error unbuffered, in one call.
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    /// Notes and errors may quote a ledger's texts (an event type unknown to this version, say):
    /// control characters in them are shown as escapes (see `printable`).
    static func note(_ text: String) {
        write(text.printableLines + "\n")
    }

    /// Prints `error` on standard error as every error is printed: `error [code]: message`.
    static func say(_ error: LedgerError) {
        self.error("error [\(error.code.name)]: \(error.message.printableLines)")
    }

    /// Says `error` and ends with its status. Output the command printed before it and that could
    /// not be written (the evidence of a split view, say) is said too; the status stays the error's.
    static func fail(_ error: LedgerError, verbose: Bool) -> Never {
        let lost = unwrittenOutput()
        say(error)
        if verbose {
            if let cause = error.cause { self.error("  cause: \(cause)") }
            self.error("  raised at: \(error.site)")
        }
        if let lost { say(lost) }
        switch error.code.category {
        case .rejected: Glibc.exit(1)
        case .usage: Glibc.exit(2)
        case .environment: Glibc.exit(3)
        }
    }

    static var stdoutIsTerminal: Bool { isatty(1) == 1 }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
