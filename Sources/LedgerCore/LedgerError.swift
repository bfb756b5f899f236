/// An error a user of the ledger can meet, with a stable code, a message that says what happened,
/// where, and what to do, and the place it was thrown.
///
/// `==` compares codes only, so tests match on codes and never on wording.
public struct LedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The stable, machine-readable kind of error. Its ``Code/name`` is printed by the CLI.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The kebab-case name, stable across versions.
        public let name: String
        /// What the error means for a command's exit status.
        public let category: Category

        private init(_ name: String, _ category: Category) {
            self.name = name
            self.category = category
        }

        public var description: String { name }

        /// How an error maps onto the CLI's exit statuses (1, 2 and 3).
        public enum Category: Sendable {
            /// A statement was rejected, damage was found, or a proof or signature is invalid: exit 1.
            case rejected
            /// The command was used wrongly: exit 2.
            case usage
            /// A file could not be read or written, or the environment is wrong: exit 3.
            case environment
        }

        // Statements refused at append (exit 1).
        public static let malformedEnvelope = Code("malformed-envelope", .rejected)
        public static let malformedEvent = Code("malformed-event", .rejected)
        public static let tooLarge = Code("too-large", .rejected)
        public static let badSignature = Code("bad-signature", .rejected)
        public static let unknownKey = Code("unknown-key", .rejected)
        public static let keyOfAnotherParty = Code("key-of-another-party", .rejected)
        public static let revokedKey = Code("revoked-key", .rejected)
        public static let roleNotAllowed = Code("role-not-allowed", .rejected)
        public static let notTheAuthor = Code("not-the-author", .rejected)
        public static let unknownReference = Code("unknown-reference", .rejected)
        public static let duplicateID = Code("duplicate-id", .rejected)
        public static let duplicateStatement = Code("duplicate-statement", .rejected)
        public static let unknownEventType = Code("unknown-event-type", .rejected)
        public static let invalidEvent = Code("invalid-event", .rejected)
        // Damage found in a stored ledger (exit 1).
        public static let damagedLog = Code("damaged-log", .rejected)
        public static let malformedRecord = Code("malformed-record", .rejected)
        public static let blobMismatch = Code("blob-mismatch", .rejected)
        // Checkpoints and proofs (exit 1).
        public static let invalidCheckpoint = Code("invalid-checkpoint", .rejected)
        public static let invalidProof = Code("invalid-proof", .rejected)
        public static let equivocation = Code("equivocation", .rejected)
        /// A reviewer's requirement of a log that is not met (its origin, its witnesses): not
        /// damage, but the log is not the one asked for, or not as attested as asked.
        public static let requirementNotMet = Code("requirement-not-met", .rejected)
        // Usage (exit 2).
        public static let usage = Code("usage", .usage)
        public static let notFound = Code("not-found", .usage)
        public static let notALedger = Code("not-a-ledger", .usage)
        public static let alreadyExists = Code("already-exists", .usage)
        /// An acceptance time given by the caller that is before the last entry's: a wrong
        /// option value, the only way one can go backwards.
        public static let timeWentBackwards = Code("time-went-backwards", .usage)
        // Environment (exit 3).
        public static let io = Code("io", .environment)
        public static let lockTimeout = Code("lock-timeout", .environment)
        public static let crypto = Code("crypto", .environment)
    }

    /// The kind of error.
    public var code: Code
    /// What happened, where, and what to do next.
    public var message: String
    /// The error underneath, if any (printed with `--verbose`).
    public var cause: String?
    /// Where the error was thrown, for `--verbose`.
    public var site: String
    /// Of a batch refused as a whole, which of its statements was refused (from 0): the message
    /// says its number when there are several, and a caller that knows where it came from can
    /// say that too.
    public var statement: Int?

    /// Creates an error; the throw site is recorded automatically.
    public init(_ code: Code, _ message: String, cause: (any Error)? = nil, file: String = #fileID, line: Int = #line) {
        self.code = code
        self.message = message.singleFullStops
        self.cause = cause.map { String(describing: $0) }
        self.site = "\(file):\(line)"
    }

    public var description: String { message }

    public static func == (a: LedgerError, b: LedgerError) -> Bool { a.code == b.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}

extension String {
    /// The text with a full stop doubled after a word made single, where a sentence ends: messages
    /// end one after an interpolated error whose own text may already end it. Only before the end
    /// of the text or before a new sentence (a space and a capital), so that a ".." in a path
    /// ("../x", "dir/..", "notes.. to store") and three dots stay as they are.
    package var singleFullStops: String {
        guard contains("..") else { return self }
        var out: [Character] = []
        var characters = self[...]
        while let c = characters.popFirst() {
            out.append(c)
            guard c == ".", let before = out.dropLast().last, before.isLetter || before.isNumber || ")\"'".contains(before),
                characters.first == "."
            else { continue }
            let after = characters.dropFirst()
            let endsSentence = after.first.map { $0 == "\n" || ($0 == " " && after.dropFirst().first?.isUppercase == true) } ?? true
            if endsSentence { characters.removeFirst() }
        }
        return String(out)
    }
}
