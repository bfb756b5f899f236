import ArgumentParser
#if canImport(Glibc)
import Glibc
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
              0  success; the ledger is intact
              1  verification failed: damage found, a signature or proof is invalid, or a \
            statement was rejected (nothing was appended)
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
        // A file-size limit (ulimit -f) must give a clear error and a rolled-back append, not
        // kill the process half-way through a write.
        signal(SIGXFSZ, SIG_IGN)
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
        } catch let error as LedgerError {
            Terminal.fail(error, verbose: arguments.contains("--verbose"))
        } catch let error as ExitCode {
            Glibc.exit(error.rawValue)
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
    static func writeOut(_ bytes: [UInt8]) {
        fflush(nil)
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(1, $0.baseAddress.map { $0 + done }, $0.count - done) }
            guard n > 0 else { return }
            done += n
        }
    }

    /// Writes to standard error unbuffered, in one call.
    static func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }

    static func note(_ text: String) {
        write(text + "\n")
    }

    static func fail(_ error: LedgerError, verbose: Bool) -> Never {
        self.error("error [\(error.code.name)]: \(error.message)")
        if verbose {
            if let cause = error.cause { self.error("  cause: \(cause)") }
            self.error("  raised at: \(error.site)")
        }
        switch error.code.category {
        case .rejected: Glibc.exit(1)
        case .usage: Glibc.exit(2)
        case .environment: Glibc.exit(3)
        }
    }

    static var stdoutIsTerminal: Bool { isatty(1) == 1 }
    static var stderrIsTerminal: Bool { isatty(2) == 1 }
}
