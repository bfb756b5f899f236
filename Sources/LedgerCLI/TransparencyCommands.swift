import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto
import LedgerMerkle
import LedgerStore

/// The keys a checkpoint is checked against: the log's, and optionally witnesses', k of n.
struct CheckpointKeyOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The log's note verifier key (name+hash+key), or a file holding it.", valueName: "verifier-key"))
    var vkey: String?

    @Option(name: .long, help: ArgumentHelp("A witness's cosignature verifier key, or a file holding it; repeat for several.", valueName: "verifier-key"))
    var witness: [String] = []

    @Option(name: .customLong("witnesses-required"), help: ArgumentHelp("How many of the --witness keys must have cosigned.", valueName: "k"))
    var witnessesRequired = 0

    @Option(name: .long, help: ArgumentHelp("The origin line expected in checkpoints (default: the log key's name).", valueName: "origin"))
    var origin: String?

    /// Refuses a number of required witnesses the --witness keys cannot meet (said as every
    /// usage error is, not as the argument parser's).
    func checkWitnessCount() throws {
        guard witnessesRequired >= 0, witnessesRequired <= witness.count else {
            throw ValidationError("--witnesses-required \(witnessesRequired) is not between 0 and the \(witness.count) --witness key(s) given.")
        }
    }

    /// The verifier for checkpoints of the log `origin` (or --origin, or the key's name).
    func verifier(origin ledgerOrigin: String? = nil) throws -> CheckpointVerifier {
        try checkWitnessCount()
        guard let vkey else { throw ValidationError("Give --vkey: the log's note verifier key (see `ledger verifier-key`).") }
        let log = try parseVerifierKey(vkey)
        let witnesses = try witness.map { try parseVerifierKey($0) }
        do {
            return try CheckpointVerifier(origin: origin ?? ledgerOrigin ?? log.name, log: log, witnesses: witnesses, requiredWitnesses: witnessesRequired)
        } catch {
            throw LedgerError(.usage, "The checkpoint keys cannot be used together: \(error).")
        }
    }
}

/// A note verifier key given as text, or as the path of a file holding it: a value that parses
/// as a key is one, and any other is a path (which may hold a '+', as keys do).
func parseVerifierKey(_ text: String) throws(LedgerError) -> NoteVerifier {
    let notAKey: NoteError
    do { return try NoteVerifier(verifierKey: text) } catch { notAKey = error }
    guard let bytes = try Files.readIfPresent(text, limit: 4096) else {
        // Nothing there: with a '+', most likely a key mistyped, so the key's fault is said too.
        guard text.contains("+") else {
            throw LedgerError(.usage, "Cannot read \(text): there is no such file. Check the path, or give the key itself.")
        }
        throw LedgerError(.usage, "\"\(text)\" names no file, nor is it a note verifier key. \(sentence(notAKey)) If it is meant as a file, check the path.")
    }
    let content = String(decoding: bytes, as: UTF8.self)
    let line = content.hasSuffix("\n") ? String(content.dropLast()) : content
    do {
        return try NoteVerifier(verifierKey: line)
    } catch {
        throw LedgerError(.usage, "\(text) does not hold a note verifier key: \(sentence(error))")
    }
}

/// Reads and verifies a signed checkpoint file.
func verifiedCheckpoint(_ path: String, _ verifier: CheckpointVerifier) throws(LedgerError) -> VerifiedCheckpoint {
    let text = try Files.read(path, limit: 1 << 20)
    let verified: VerifiedCheckpoint
    do {
        verified = try verifier.verify(text)
    } catch {
        throw LedgerError(.invalidCheckpoint, "\(path) does not verify: \(sentence(error))")
    }
    noteUnknownSignatures(of: verified, in: path)
    return verified
}

/// Says which signature lines of `checkpoint` (from `path`) were of keys not given: ignored, as
/// C2SP says, but said, since a reader may hold the key of one of them.
func noteUnknownSignatures(of checkpoint: VerifiedCheckpoint, in path: String) {
    guard !checkpoint.unknownSignatures.isEmpty else { return }
    let names = checkpoint.unknownSignatures.map(\.keyName)
    Terminal.note("note: \(path) also carries \(names.count) signature(s) of keys not given, not checked: \(names.joined(separator: ", ")).")
}

/// An error's description as a sentence ending in one full stop.
func sentence(_ error: any Error) -> String {
    var text = String(describing: error)
    // Some descriptions end in a space after their full stop.
    while text.last == " " { text.removeLast() }
    return text.hasSuffix(".") ? text : text + "."
}

struct CheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "checkpoint",
        abstract: "Sign a checkpoint of the whole log with the log key, or show the newest.",
        discussion: """
            A checkpoint is a C2SP tlog-checkpoint (origin, tree size, base64 root) signed as a \
            C2SP signed note; it verifies with Go's golang.org/x/mod/sumdb/note. Every checkpoint \
            is kept in DIR/checkpoints; the log key's verifier key is recorded in \
            DIR/checkpoints/log.vkey at the first one, and later checkpoints must use the same key.
            """
    )

    @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
    var directory: String

    @Option(name: .long, help: ArgumentHelp("The log's private key (PKCS#8 PEM): sign a checkpoint now.", valueName: "file"))
    var key: String?

    @Flag(name: .long, help: "Print the newest stored checkpoint instead.")
    var show = false

    @OptionGroup var common: VerboseOption

    /// The origin a stored checkpoint must carry: the log's, or, of a damaged log (which does
    /// not open), the checkpoint's own first line.
    private func expectedOrigin(of checkpoint: [UInt8]) throws(LedgerError) -> String {
        do throws(LedgerError) {
            return try Ledger(directory: directory).origin()
        } catch where error.code == .damagedLog || error.code == .malformedRecord {
            return String(decoding: checkpoint.prefix { $0 != 0x0a }, as: UTF8.self)
        }
    }

    func run() throws {
        switch (key, show) {
        case let (key?, false):
            // The key is read and checked first: a wrong path or key opens nothing (an open may
            // write the lock file and the kept rule state).
            let signingKey = try Files.signingKey(key)
            try CheckpointStore(ledgerDirectory: directory).requireSigner(signingKey.publicKey)
            let writer = try openWriter(directory)
            let signed = try signCheckpointSayingWhatItRecords(writer, signingKey)
            Terminal.done = "the checkpoint was stored in \(signed.path)"
            print(signed.note.encoded, terminator: "")
            Terminal.note("stored \(signed.path)")
        case (nil, true):
            let store = CheckpointStore(ledgerDirectory: directory)
            guard let newest = try store.newest() else {
                throw LedgerError(.notFound, "\(directory) has no checkpoint yet. Sign one with `ledger checkpoint \(directory) --key LOG-KEY.pem`.")
            }
            // Shown only if the log key signed it for this log: a file named like one is not a
            // checkpoint. Of a damaged log (which does not open), its own origin line is taken: its
            // acknowledged checkpoint is the evidence to show.
            if let key = try store.verifierKey() {
                let origin = try expectedOrigin(of: newest.text)
                do {
                    _ = try CheckpointVerifier(origin: origin, log: key).verify(newest.text)
                } catch {
                    throw LedgerError(.invalidCheckpoint, "The newest stored checkpoint, \(newest.path), is not one the log key signed: \(sentence(error)) Run `ledger verify \(directory)`.")
                }
            } else {
                Terminal.note("note: \(newest.path) is not checked: the log's verifier key (checkpoints/log.vkey) is missing.")
            }
            // Byte for byte when written to a file (it is a signed note); on a terminal, the controls
            // a note should not hold are shown as escapes.
            let text = String(decoding: newest.text, as: UTF8.self)
            print(Terminal.stdoutIsTerminal ? text.printableLines : text, terminator: "")
        default:
            throw ValidationError("Give either --key (sign a new checkpoint) or --show (print the newest).")
        }
    }
}

struct VerifierKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verifier-key",
        abstract: "Print the note verifier key of an Ed25519 key: <name>+<8 hex key id>+<base64(0x01 ‖ key)>.",
        discussion: "For a log key, NAME is the ledger's origin. With --witness, prints a C2SP tlog-cosignature verifier key (algorithm 0x04) for a witness key."
    )

    @Argument(help: ArgumentHelp("A private (PKCS#8) or public (SPKI) PEM key.", valueName: "key-file"))
    var keyFile: String

    @Option(name: .long, help: ArgumentHelp("The key's name: the ledger's origin for a log key.", valueName: "name"))
    var name: String

    @Flag(name: .long, help: "A witness cosignature key (cosignature/v1) rather than a log key.")
    var witness = false

    @OptionGroup var common: VerboseOption

    func run() throws {
        let key = try Files.publicKey(keyFile)
        do {
            print(try NoteVerifier(name: name, publicKey: key, algorithm: witness ? .cosignatureV1 : .ed25519).verifierKey)
        } catch {
            throw LedgerError(.usage, "\(error)")
        }
    }
}

struct ProveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prove",
        abstract: "Produce inclusion and consistency proofs (RFC 9162 §2.1.3, §2.1.4).",
        subcommands: [Inclusion.self, Consistency.self]
    )

    struct Inclusion: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove that one entry is in the tree of a given size.",
            discussion: "With --json: {\"index\", \"tree_size\", \"leaf_hash\", \"proof\": [base64…], \"root\"}, hashes in base64. Check it with `ledger check inclusion` against a signed checkpoint of that size."
        )

        @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
        var directory: String

        @Argument(help: ArgumentHelp("A sequence number, or an entry id (64 hex digits).", valueName: "seq|entry-id"))
        var entry: String

        @Option(name: .long, help: ArgumentHelp("The tree size (default: the newest checkpoint's, else the whole log).", valueName: "n"))
        var size: UInt64?

        @Flag(name: .long, help: "Print the proof as JSON.")
        var json = false

        @OptionGroup var common: VerboseOption

        func run() throws {
            let ledger = try Ledger(directory: directory)
            let stored = try findEntry(entry, in: ledger)
            let treeSize = try size ?? defaultSize(ledger)
            guard stored.sequence < treeSize, treeSize <= ledger.count else {
                throw LedgerError(.usage, "Entry \(stored.sequence) is not in a tree of size \(treeSize) (the ledger has \(ledger.count) entries).")
            }
            let proof = try ledger.inclusionProof(index: stored.sequence, leafHash: stored.entryID, size: treeSize)
            if json {
                print(proof.jsonText)
                return
            }
            print("entry \(proof.index) (entry id \(proof.leafHash.hexString)) is in the tree of size \(proof.treeSize) with root \(proof.root.hexString):")
            for (i, hash) in proof.hashes.enumerated() { print("  \(i): \(hash.hexString)") }
        }
    }

    struct Consistency: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Prove that the tree of size N extends the tree of size M with nothing rewritten.",
            discussion: "With --json: {\"old_size\", \"new_size\", \"old_root\", \"new_root\", \"proof\": [base64…]}. Check it with `ledger check consistency` against two signed checkpoints."
        )

        @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
        var directory: String

        @Option(name: .long, help: ArgumentHelp("The older tree size.", valueName: "m"))
        var from: UInt64

        @Option(name: .long, help: ArgumentHelp("The newer tree size (default: the newest checkpoint's, else the whole log).", valueName: "n"))
        var to: UInt64?

        @Flag(name: .long, help: "Print the proof as JSON.")
        var json = false

        @OptionGroup var common: VerboseOption

        func run() throws {
            let ledger = try Ledger(directory: directory)
            let newSize = try to ?? defaultSize(ledger)
            guard from <= newSize, newSize <= ledger.count else {
                throw LedgerError(.usage, "No consistency proof from \(from) to \(newSize): sizes must satisfy from ≤ to ≤ \(ledger.count).")
            }
            let proof = try ledger.consistencyProof(from: from, to: newSize)
            if json {
                print(proof.jsonText)
                return
            }
            print("the tree of size \(proof.newSize) (root \(proof.newRoot.hexString)) extends the tree of size \(proof.oldSize) (root \(proof.oldRoot.hexString)):")
            for (i, hash) in proof.hashes.enumerated() { print("  \(i): \(hash.hexString)") }
        }
    }
}

/// A consistency proof from `old` entries to checkpoint `new`: read from `file`, or made from the
/// ledger directory `ledger`, which must hold the log `new` was signed over; `nil` when neither is
/// given. A directory that holds another log, or too few entries, is a usage mistake, never
/// evidence against the log.
func consistencyProof(from old: UInt64, to new: VerifiedCheckpoint, file: String?, ledger directory: String?) throws(LedgerError) -> ConsistencyProof? {
    if let file { return try parseConsistencyProof(file) }
    guard let directory else { return nil }
    let ledger = try Ledger(directory: directory)
    guard ledger.count >= new.size else {
        throw LedgerError(.usage, "\(directory) holds \(ledger.count) entries, fewer than the \(new.size) of the checkpoint: it cannot show what the log held then. Give a copy of the log with at least \(new.size) entries, or a consistency proof with --proof.")
    }
    let made = try ledger.consistencyProof(from: old, to: new.size, newRoot: new.root)
    guard made.newRoot == new.root else {
        throw LedgerError(.usage, "The first \(new.size) entries of \(directory) hash to root \(made.newRoot.shortHex()), not the checkpoint's \(new.root.shortHex()): it is not the log the checkpoint was signed over, or it was changed since (`ledger verify \(directory)` tells). Give that log, or a consistency proof with --proof.")
    }
    return made
}

/// Whether `proof` (from `source`, for messages) shows the tree of checkpoint `new` extending that
/// of `old` (`true`) or another tree at `old`'s size (`false`: the log signed two histories).
/// - Throws: ``LedgerError/Code/invalidProof`` for a proof of other sizes, or whose path does not
///   lead to `new`'s root: it shows nothing about the log either way.
func extends(_ proof: ConsistencyProof, from source: String, old: VerifiedCheckpoint, new: VerifiedCheckpoint) throws(LedgerError) -> Bool {
    guard proof.oldSize == old.size, proof.newSize == new.size else {
        throw LedgerError(.invalidProof, "INVALID: the consistency proof \(source) is from size \(proof.oldSize) to \(proof.newSize); the checkpoints are of sizes \(old.size) and \(new.size). Give a proof between those sizes.")
    }
    do throws(ProofError) {
        return try proof.shows(extending: old, to: new)
    } catch {
        throw LedgerError(.invalidProof, "INVALID: the consistency proof \(source) does not lead from its old root to the root of the checkpoint of size \(new.size), so it shows nothing about the log. Give a proof made from the log the checkpoints were signed over.")
    }
}

/// The newest checkpoint's size, or the whole log when there is none.
func defaultSize(_ ledger: Ledger) throws(LedgerError) -> UInt64 {
    let store = CheckpointStore(ledgerDirectory: ledger.directory)
    if let newest = store.files().last, let size = CheckpointStore.size(ofFile: newest), size <= ledger.count {
        return size
    }
    return ledger.count
}

/// Reads a proof file as strict JSON, with the error naming the file.
func readProofJSON(_ path: String) throws(LedgerError) -> JSONValue {
    let bytes = try Files.read(path, limit: 1 << 20)
    do {
        return try JSONParser.parse(bytes)
    } catch {
        throw LedgerError(.invalidProof, "\(path) is not valid JSON (\(error)). Give the file `ledger prove --json` wrote.")
    }
}

/// The inclusion proof in the JSON file `path`.
func parseInclusionProof(_ path: String) throws(LedgerError) -> InclusionProof {
    try InclusionProof(json: readProofJSON(path), source: path)
}

/// The consistency proof in the JSON file `path`.
func parseConsistencyProof(_ path: String) throws(LedgerError) -> ConsistencyProof {
    try ConsistencyProof(json: readProofJSON(path), source: path)
}

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check proofs and checkpoints offline, with no ledger directory at hand.",
        discussion: "Tree sizes and roots are taken only from checkpoints whose signatures verify, never from the proof file. Exit 0 valid, 1 invalid, 2 usage mistake, 3 I/O problem.",
        subcommands: [Inclusion.self, Consistency.self, Equivocation.self]
    )

    struct Inclusion: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check an inclusion proof against a signed checkpoint.")

        @Argument(help: ArgumentHelp("The proof (JSON from `ledger prove inclusion --json`).", valueName: "proof.json"))
        var proof: String

        @Option(name: .long, help: ArgumentHelp("The signed checkpoint.", valueName: "file"))
        var checkpoint: String

        @OptionGroup var keys: CheckpointKeyOptions
        @OptionGroup var common: VerboseOption

        func run() throws {
            let verified = try verifiedCheckpoint(checkpoint, keys.verifier())
            let proof = try parseInclusionProof(self.proof)
            do {
                guard proof.treeSize == verified.size, proof.root == verified.root else {
                    throw LedgerError(.invalidProof, "The proof is for a tree of size \(proof.treeSize) with root \(proof.root.shortHex()); the checkpoint is of size \(verified.size) with root \(verified.root.shortHex()). Ask for a proof at the checkpoint's size.")
                }
                try proof.verify(leafHash: proof.leafHash, in: verified)
            } catch let error as ProofError {
                throw LedgerError(.invalidProof, "INVALID: \(error).")
            }
            print("VALID: entry \(proof.index) (entry id \(proof.leafHash.hexString)) is in the checkpointed tree of size \(verified.size), root \(verified.root.hexString).")
        }
    }

    struct Consistency: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a consistency proof against a signed checkpoint.",
            discussion: "The new size and root come from --checkpoint. Give the older checkpoint you trust with --old-checkpoint; without it, the old root printed is the proof's own, to compare with one you trust."
        )

        @Argument(help: ArgumentHelp("The proof (JSON from `ledger prove consistency --json`).", valueName: "proof.json"))
        var proof: String

        @Option(name: .long, help: ArgumentHelp("The newer signed checkpoint.", valueName: "file"))
        var checkpoint: String

        @Option(name: .customLong("old-checkpoint"), help: ArgumentHelp("The older signed checkpoint.", valueName: "file"))
        var oldCheckpoint: String?

        @OptionGroup var keys: CheckpointKeyOptions
        @OptionGroup var common: VerboseOption

        func run() throws {
            let verifier = try keys.verifier()
            let new = try verifiedCheckpoint(checkpoint, verifier)
            let proof = try parseConsistencyProof(self.proof)
            var oldRoot = proof.oldRoot
            var trusted = "as given in the proof: compare it with a checkpoint you trust"
            if let oldCheckpoint {
                let old = try verifiedCheckpoint(oldCheckpoint, verifier)
                guard old.size == proof.oldSize else {
                    throw LedgerError(.invalidProof, "INVALID: the proof starts at size \(proof.oldSize); the old checkpoint is of size \(old.size).")
                }
                oldRoot = old.root
                trusted = "from the verified old checkpoint"
            }
            do {
                guard proof.newSize == new.size else {
                    throw LedgerError(.invalidProof, "INVALID: the proof ends at size \(proof.newSize); the checkpoint is of size \(new.size).")
                }
                try proof.verify(oldSize: proof.oldSize, oldRoot: oldRoot, newSize: new.size, newRoot: new.root)
            } catch let error as ProofError {
                throw LedgerError(.invalidProof, "INVALID: \(error).")
            }
            print("VALID: the checkpointed tree of size \(new.size) (root \(new.root.hexString)) extends the tree of size \(proof.oldSize) with root \(oldRoot.hexString) (\(trusted)).")
        }
    }

    struct Equivocation: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check whether two checkpoints signed by the same log key are consistent.",
            discussion: """
                Same size and different roots, or a larger tree that does not extend the smaller, \
                means the log showed two different histories (a split view). Then a self-contained \
                proof of misbehaviour is printed as JSON: both signed checkpoints, the verifier key, \
                and a consistency proof that leads to the larger checkpoint's root from another root \
                than the smaller's. For different sizes, give the consistency proof (--proof) or the \
                log's ledger directory to produce it (--ledger). Exit 0 consistent, 1 not (or, with \
                error code invalid-proof, a proof that does not lead to the larger checkpoint's root \
                and so shows nothing), 2 when the directory holds another log or too few entries.
                """
        )

        @Argument(help: ArgumentHelp("A signed checkpoint.", valueName: "a"))
        var a: String

        @Argument(help: ArgumentHelp("Another signed checkpoint by the same key.", valueName: "b"))
        var b: String

        @Option(name: .long, help: ArgumentHelp("A consistency proof between the two sizes.", valueName: "proof.json"))
        var proof: String?

        @Option(name: .long, help: ArgumentHelp("A ledger directory to produce the consistency proof from.", valueName: "dir"))
        var ledger: String?

        @OptionGroup var keys: CheckpointKeyOptions
        @OptionGroup var common: VerboseOption

        func run() throws {
            let verifier = try keys.verifier()
            var (small, large) = (try verifiedCheckpoint(a, verifier), try verifiedCheckpoint(b, verifier))
            if small.size > large.size { swap(&small, &large) }
            func misbehaviour(_ reason: String, proof: ConsistencyProof?) throws -> Never {
                var out = JSONWriter()
                out.object { o in
                    o.string("misbehaviour", reason)
                    o.string("verifier_key", verifier.log.verifierKey)
                    o.string("checkpoint_a", small.note.encoded)
                    o.string("checkpoint_b", large.note.encoded)
                    if let proof { o.raw("consistency_proof", Array(proof.jsonText.utf8)) }
                }
                print(String(decoding: out.bytes, as: UTF8.self))
                throw LedgerError(.equivocation, "INCONSISTENT: \(reason)")
            }
            if small.size == large.size {
                guard small.root == large.root else {
                    try misbehaviour("two checkpoints of size \(small.size) signed by the same log key with different roots", proof: nil)
                }
                print("CONSISTENT: both checkpoints are of size \(small.size) with root \(small.root.hexString).")
                return
            }
            guard let consistency = try consistencyProof(from: small.size, to: large, file: proof, ledger: ledger) else {
                throw ValidationError("The checkpoints have different sizes: give --proof or --ledger to check that the larger extends the smaller.")
            }
            guard try extends(consistency, from: proof ?? "made from \(ledger ?? "")", old: small, new: large) else {
                try misbehaviour("the tree of size \(large.size) had root \(consistency.oldRoot.hexString) at size \(small.size), not \(small.root.hexString): it does not extend the tree of size \(small.size)", proof: consistency)
            }
            print("CONSISTENT: the tree of size \(large.size) extends the tree of size \(small.size).")
        }
    }
}

struct CosignCheckpointCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cosign-checkpoint",
        abstract: "Add a witness cosignature (C2SP tlog-cosignature) to a checkpoint, after checking it extends the last one this witness signed.",
        discussion: """
            The witness keeps, in a small state file, the last checkpoint it cosigned for each \
            origin. A new checkpoint is cosigned only if it verifies with the log key and a \
            consistency proof (from --ledger or --proof) shows it extends that one; a smaller or \
            conflicting checkpoint is refused (exit 1). Prints the checkpoint with the cosignature \
            line added.
            """
    )

    @Argument(help: ArgumentHelp("The signed checkpoint.", valueName: "file"))
    var file: String

    @Option(name: .long, help: ArgumentHelp("The witness's private key (PKCS#8 PEM).", valueName: "file"))
    var key: String

    @Option(name: .long, help: ArgumentHelp("The witness's name (the key name in its cosignature lines).", valueName: "name"))
    var name: String

    @Option(name: .long, help: ArgumentHelp("The witness state file (default: the key file with .state added).", valueName: "file"))
    var state: String?

    @Option(name: .long, help: ArgumentHelp("A ledger directory to take the consistency proof from.", valueName: "dir"))
    var ledger: String?

    @Option(name: .long, help: ArgumentHelp("A consistency proof from the last cosigned checkpoint.", valueName: "proof.json"))
    var proof: String?

    @Option(name: .long, help: ArgumentHelp("The cosignature time, seconds since 1970 (default: now).", valueName: "seconds"))
    var time: UInt64?

    @Option(name: .customLong("lock-timeout"), help: ArgumentHelp("Seconds to wait for another cosign-checkpoint using the same state file.", valueName: "seconds"))
    var lockTimeout: Double = LedgerWriter.defaultLockTimeout

    @OptionGroup var keys: CheckpointKeyOptions
    @OptionGroup var common: VerboseOption

    func run() throws {
        let verifier = try keys.verifier()
        let checkpoint = try verifiedCheckpoint(file, verifier)
        var statePath = state ?? key + ".state"
        // A link to the state is followed once, here: the lock, the read and the write then all
        // go to the file it leads to. Written through the link's name, the state replaced the
        // link by a file of its own, and the witness kept two states that did not agree.
        if let resolved = realpath(statePath, nil) {
            statePath = String(cString: resolved)
            free(resolved)
        }
        // Held from reading the state to writing it: two runs at once would each check against
        // the same last checkpoint, and could cosign two of the same size, the split view a
        // witness exists to refuse.
        let lock = try WriterLock(path: statePath + ".lock", timeout: lockTimeout)
        defer { withExtendedLifetime(lock) {} }
        var known: [String: JSONValue] = [:]
        // Only a state file that does not exist yet means "no checkpoint cosigned before": one
        // that cannot be read must not let this witness forget what it signed.
        if let bytes = try Files.readIfPresent(statePath, limit: 1 << 20) {
            guard let object = (try? JSONParser.parse(bytes))?.objectValue else {
                throw LedgerError(.usage, "The witness state file \(statePath) is not a JSON object of origins and the checkpoints cosigned for them; restore it from a backup (removing it would make this witness forget what it cosigned).")
            }
            known = object
        }
        let origin = checkpoint.checkpoint.origin
        // Origins are compared as bytes, as checkpoints compare them; a dictionary of strings
        // takes canonically equivalent spellings for one.
        if let stored = known.first(where: { $0.key == origin }) {
            guard stored.key.utf8.elementsEqual(origin.utf8) else {
                throw LedgerError(.usage, "The witness state file \(statePath) holds the log of origin \(stored.key.debugDescription), which Unicode spells like \(origin.debugDescription) but is another log. Keep a state file of its own for each (--state).")
            }
            guard stored.value.stringValue != nil else {
                throw LedgerError(.usage, "The witness state file \(statePath) holds, for \(origin.debugDescription), something other than the text of the checkpoint last cosigned; restore it from a backup (without it this witness would forget what it cosigned).")
            }
        }
        if let lastText = known[origin]?.stringValue {
            let last = try verifiedCheckpoint(text: lastText, verifier.logOnly)
            if checkpoint.size < last.size {
                // Older, not contradictory: whether the two agree is `check equivocation`'s question.
                throw LedgerError(.invalidCheckpoint, "Refused: this witness already cosigned \(origin) at size \(last.size), and a witness cosigns only checkpoints that extend the last it cosigned; this one is older (size \(checkpoint.size)). Give the log's newest checkpoint; `ledger check equivocation` tells whether the two agree.")
            }
            if checkpoint.size == last.size, checkpoint.root != last.root {
                throw LedgerError(.equivocation, "Refused: this witness cosigned \(origin) at size \(last.size) with root \(last.root.shortHex()); this checkpoint has the same size but root \(checkpoint.root.shortHex()). The log showed two histories.")
            }
            if checkpoint.size > last.size {
                guard let consistency = try consistencyProof(from: last.size, to: checkpoint, file: proof, ledger: ledger) else {
                    throw ValidationError("This witness last cosigned \(origin) at size \(last.size): give --ledger or --proof to show the new checkpoint extends it.")
                }
                guard try extends(consistency, from: proof ?? "made from \(ledger ?? "")", old: last, new: checkpoint) else {
                    throw LedgerError(.equivocation, "Refused: the checkpoint of size \(checkpoint.size) does not extend the one this witness cosigned at size \(last.size): its tree had root \(consistency.oldRoot.shortHex()) at that size, not \(last.root.shortHex()). The log showed two histories.")
                }
            }
        }
        let witnessKey = try Files.signingKey(key)
        let cosigned: SignedNote
        do {
            let signer = try WitnessSigner(name: name, key: witnessKey)
            let timestamp = time ?? UInt64(currentTime().seconds)
            cosigned = try checkpoint.note.adding(signer.cosignature(for: checkpoint.note.text, timestamp: timestamp))
        } catch {
            throw LedgerError(.usage, "Cannot cosign: \(error).")
        }
        known[origin] = .string(checkpoint.note.encoded)
        var json = JSONWriter()
        json.value(.object(known))
        try FileSystem.writeAtomically(json.bytes + [0x0a], to: statePath, mode: 0o600, directory: FileSystem.parent(of: statePath))
        // The note as it is, to a file or pipe; on a terminal, its control characters escaped,
        // as `checkpoint --show` prints one: its extension lines are the log's text.
        let text = cosigned.encoded
        print(Terminal.stdoutIsTerminal ? text.printableLines : text, terminator: "")
    }
}

func verifiedCheckpoint(text: String, _ verifier: CheckpointVerifier) throws(LedgerError) -> VerifiedCheckpoint {
    do {
        return try verifier.verify(text)
    } catch {
        throw LedgerError(.invalidCheckpoint, "The checkpoint in the witness state does not verify: \(error).")
    }
}

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Export data for outside tools.",
        subcommands: [Leaves.self]
    )

    struct Leaves: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print base64 of each leaf's exact bytes (each stored record), one a line, in sequence order.",
            discussion: "The RFC 6962 leaf hash of line i's bytes is entry i's entry id; a tree over them gives the checkpoint's root."
        )

        @Argument(help: ArgumentHelp("The ledger directory.", valueName: "dir"))
        var directory: String

        @Option(name: .long, help: ArgumentHelp("Export only the first N leaves.", valueName: "n"))
        var to: UInt64?

        @OptionGroup var common: VerboseOption

        func run() throws {
            // As a replay reads them: leaves of a changed record are refused, or (the index's
            // evidence) given with status 1.
            let ledger = try openLedger(directory)
            // Fewer leaves than asked for would give another tree's root, silently.
            if let to, to > ledger.count {
                throw LedgerError(.usage, "--to \(to) asks for more leaves than the ledger's \(ledger.count) entries.")
            }
            var out: [UInt8] = []
            // Leaves before a changed record do not rest on it.
            if let to, let entry = Terminal.caveat?.entry, entry >= to { Terminal.caveat = nil }
            try ledger.forEachRecord(to: to, checkingLinks: true) { (stored) throws(LedgerError) -> Bool in
                stored.bytes.withUnsafeBufferPointer { Base64.encode($0, appendingTo: &out) }
                out.append(0x0a)
                if out.count > 1 << 20 {
                    try Terminal.writeOut(out)
                    out.removeAll(keepingCapacity: true)
                }
                return true
            }
            try Terminal.writeOut(out)
        }
    }
}
