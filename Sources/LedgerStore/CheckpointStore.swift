#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto
public import LedgerMerkle

/// Every checkpoint the ledger ever signed, in `checkpoints/<size>-<key hash>.note`, and the
/// note verifier key of the log key that signs them, in `checkpoints/log.vkey`.
public struct CheckpointStore: Sendable {
    public let directory: String

    public init(ledgerDirectory: String) {
        directory = Ledger.Layout(directory: ledgerDirectory).checkpoints
    }

    /// The file holding the log's note verifier key.
    public var verifierKeyPath: String { directory + "/log.vkey" }

    /// The recorded verifier key for deciding what checkpoints show: `nil` if none is recorded,
    /// or what is there is not a key; an I/O error reading it is thrown, never taken for none
    /// (every checkpoint would then count for nothing).
    func recordedKey() throws(LedgerError) -> NoteVerifier? {
        do throws(LedgerError) {
            return try verifierKey()
        } catch {
            if error.code == .io { throw error }
            return nil
        }
    }

    /// The log's verifier key as recorded at the first checkpoint, if any.
    public func verifierKey() throws(LedgerError) -> NoteVerifier? {
        guard FileSystem.isRegularFile(verifierKeyPath) else { return nil }
        let text = try FileDescriptor(path: verifierKeyPath, flags: O_RDONLY).read(at: 0, count: 4096)
        let line = String(decoding: text, as: UTF8.self).trimmingSuffix("\n")
        do {
            return try NoteVerifier(verifierKey: line)
        } catch {
            throw LedgerError(.invalidCheckpoint, "\(verifierKeyPath) does not hold a note verifier key: \(error).")
        }
    }

    /// The stored checkpoint files, oldest (smallest size) first: names of the form
    /// `<20-digit size>-<8 hex key hash>.note`, as ``save(_:size:signer:)`` writes them.
    public func files() -> [String] {
        FileSystem.contents(of: directory).filter(Self.isCheckpointName).map { directory + "/" + $0 }
    }

    /// Files in the checkpoint directory that are neither checkpoints nor the verifier key.
    public func strayFiles() -> [String] {
        FileSystem.contents(of: directory).filter { !Self.isCheckpointName($0) && $0 != "log.vkey" }.map { directory + "/" + $0 }
    }

    /// The tree size a checkpoint file's name gives, or `nil` for a name ``files()`` would not list.
    public static func size(ofFile path: String) -> UInt64? {
        let name = String(path.split(separator: "/").last ?? "")
        return isCheckpointName(name) ? UInt64(name.prefix(20)) : nil
    }

    static func isCheckpointName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard bytes.count == 34, name.hasSuffix(".note"), bytes[20] == UInt8(ascii: "-") else { return false }
        let digits = bytes[0..<20].allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
        let hex = bytes[21..<29].allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
        return digits && hex
    }

    /// How many entries the stored checkpoints show acknowledged: the largest size that one signed
    /// by `key` (by default the recorded verifier key) commits to, for the size its name gives. A
    /// file merely named like a checkpoint is no evidence of what the log held; but with no key to
    /// check them by, every file counts by its name.
    /// - Returns: the size, and whether it was taken from a name because there was no key.
    /// - Throws: ``LedgerError/Code/io`` if a checkpoint cannot be read (never taken for none).
    func acknowledgedSize(key: NoteVerifier? = nil) throws(LedgerError) -> (size: UInt64, byName: Bool) {
        guard let key = key ?? (try? verifierKey()) else { return (files().compactMap(Self.size(ofFile:)).max() ?? 0, true) }
        return (try signed(by: key, newestOnly: true).first?.size ?? 0, false)
    }

    /// The stored checkpoints that `key` signed, for the sizes their names give, newest first
    /// (only the newest of them if `newestOnly`; only those of more than `above` entries).
    /// - Throws: ``LedgerError/Code/io`` if one cannot be read: an older one would otherwise
    ///   stand for it, and what it showed acknowledged could be written over.
    func signed(by key: NoteVerifier, newestOnly: Bool = false, above: UInt64 = 0) throws(LedgerError) -> [Checkpoint] {
        try signed(by: key, sizes: { $0 > above || (above == 0 && $0 == 0) }, firstOnly: newestOnly)
    }

    /// The stored checkpoints that `key` signed, for the sizes their names give, among the names
    /// whose sizes are `included`: largest first (smallest first unless `largestFirst`), only
    /// the first of them if `firstOnly` (only those before it are read and verified).
    /// - Throws: ``LedgerError/Code/io`` if one cannot be read.
    func signed(by key: NoteVerifier, sizes included: (UInt64) -> Bool, largestFirst: Bool = true, firstOnly: Bool = false) throws(LedgerError) -> [Checkpoint] {
        guard let verifier = try? CheckpointVerifier(origin: key.name, log: key) else { return [] }
        // Names sort by size, smallest first.
        let named = files().compactMap { path in Self.size(ofFile: path).flatMap { included($0) ? (path, $0) : nil } }
        var out: [Checkpoint] = []
        for (path, size) in largestFirst ? named.reversed() : named {
            guard let text = try Self.readIfFile(path), let verified = try? verifier.verify(text), verified.checkpoint.size == size else { continue }
            out.append(verified.checkpoint)
            if firstOnly { break }
        }
        return out
    }

    /// The roots of the stored checkpoints the log's recorded key signed, by size (of more than
    /// `above` entries); none without a readable key.
    func signedRoots(above: UInt64 = 0) throws(LedgerError) -> [UInt64: Digest] {
        guard let key = try recordedKey() else { return [:] }
        return Dictionary(try signed(by: key, above: above).map { ($0.size, $0.root) }, uniquingKeysWith: { a, _ in a })
    }

    /// The text of the newest stored checkpoint (largest size), if any.
    public func newest() throws(LedgerError) -> (path: String, text: [UInt8])? {
        guard let path = files().last else { return nil }
        return (path, try Self.read(path))
    }

    /// The bytes of the checkpoint file at `path`; `nil` if something other than a regular file is
    /// there, which holds no checkpoint. A file that cannot be read may hold one: an error.
    static func readIfFile(_ path: String) throws(LedgerError) -> [UInt8]? {
        do throws(LedgerError) {
            return try read(path)
        } catch {
            if error.code == .io { throw error }
            return nil
        }
    }

    static func read(_ path: String) throws(LedgerError) -> [UInt8] {
        // Only a regular file, and without blocking: a FIFO in a checkpoint's place would wait
        // for a writer, and a link is not followed (which reading it as one would be an I/O error).
        let notAFile = LedgerError(.invalidCheckpoint, "\(path) is not a regular file, so it holds no checkpoint. Remove it if it is not the log's own.")
        var info = stat()
        guard lstat(path, &info) != 0 || (info.st_mode & S_IFMT) == S_IFREG else { throw notAFile }
        let file = try FileDescriptor(path: path, flags: O_RDONLY | O_NONBLOCK)
        guard fstat(file.fd, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { throw notAFile }
        return try file.read(at: 0, count: Int(min(try file.size, 1 << 20)))
    }

    /// Throws unless `key` may sign this ledger's checkpoints: it is the recorded log key, or
    /// none is recorded and no checkpoint is stored. Returns whether one is recorded (none is
    /// before the first checkpoint). Also asked before a writer is opened, which may write the
    /// lock file and the kept rule state: a wrong key then changes nothing.
    @discardableResult
    package func requireSigner(_ key: PublicKey) throws(LedgerError) -> Bool {
        guard let recorded = try verifierKey() else {
            // Checkpoints without the key that signed them: any key would be taken as the log's.
            let stored = files()
            guard stored.isEmpty else {
                throw LedgerError(.invalidCheckpoint, "\(verifierKeyPath) is missing, but \(stored.count) checkpoint(s) are stored here: which key signed them cannot be checked, so no other is taken as the log key. Put the log's verifier key back (`ledger verifier-key LOG-KEY.pem --name ORIGIN > \(verifierKeyPath)`), then sign again.")
            }
            return false
        }
        guard recorded.publicKey == key else {
            throw LedgerError(.usage, "This ledger's checkpoints are signed by \(recorded.verifierKey) (\(verifierKeyPath)); the key given (key id \(key.keyID.shortHex())) is another. Sign with the ledger's log key. Nothing was written.")
        }
        return true
    }

    /// Stores a signed checkpoint, atomically; its name sorts by tree size. The first one
    /// records its signer as the log key.
    func save(_ note: SignedNote, size: UInt64, signer: NoteVerifier) throws(LedgerError) -> String {
        try FileSystem.makeDirectory(directory)
        if try !requireSigner(signer.publicKey) {
            try FileSystem.writeAtomically(Array((signer.verifierKey + "\n").utf8), to: verifierKeyPath, directory: directory)
        }
        let digits = String(size)
        let hash = String(signer.keyHash, radix: 16)
        let name = String(repeating: "0", count: 20 - digits.count) + digits + "-" + String(repeating: "0", count: 8 - hash.count) + hash + ".note"
        let path = directory + "/" + name
        // A checkpoint once signed is never replaced: two different roots signed for one size
        // would be the log key contradicting itself. The same signed text is kept as stored, with
        // any witnesses' cosignatures added to it since, if it carries this very signature (Ed25519
        // signs deterministically): one it lacks, or a broken one, is no checkpoint of the log's.
        if FileSystem.isRegularFile(path) {
            let bytes = try Self.read(path)
            guard let stored = try? SignedNote(parsing: bytes), stored.text == note.text, Set(note.signatures).isSubset(of: stored.signatures) else {
                throw LedgerError(.invalidCheckpoint, "\(path) already holds a different checkpoint of \(size) entries (its signed text is another, it lacks the log key's signature of this one, or it is not a signed note). Signing another root for the same size would be a split view; run `ledger verify \(directory.dropLast("/checkpoints".count))` to find out why they differ.")
            }
            return path
        }
        try FileSystem.writeAtomically(Array(note.encoded.utf8), to: path, directory: directory)
        return path
    }
}

extension LedgerWriter {
    /// Throws unless `key` is the key this ledger's checkpoints are signed by (any key but a
    /// party's, before the first): checked by an append that is to be followed by a checkpoint,
    /// so that a wrong key refuses the append instead of failing after it.
    func checkCheckpointKey(_ key: SigningKey) throws(LedgerError) {
        try CheckpointStore(ledgerDirectory: ledger.directory).requireSigner(try checkpointSigner(key).verifier.publicKey)
    }

    private func checkpointSigner(_ key: SigningKey) throws(LedgerError) -> NoteSigner {
        guard let origin = state.origin else { throw LedgerError(.notALedger, "The ledger has no genesis record.") }
        // The first checkpoint records its key as the log's for good: a party's statement key
        // given by mistake would become it, and its holder could then sign checkpoints. Only
        // then: once the log key is recorded, a party that registered its public key (anyone
        // can read it) must not stop checkpoints.
        if let holder = state.keys[key.publicKey.keyID], try CheckpointStore(ledgerDirectory: ledger.directory).verifierKey() == nil {
            // A batch being appended, checked before it is written (``append(_:acceptedAt:checkpointKey:)``), may be what registers it.
            let registered = holder.validFrom >= ledger.count ? "by statement \(holder.validFrom - ledger.count + 1) of those being appended" : "in this ledger"
            throw LedgerError(.usage, "The key given is registered to party \"\(holder.party)\" \(registered), to sign its statements, and this would be the first checkpoint, which records its key as the log key for good. Checkpoints are signed with the log's own key, never with a party's: give the log key, or make one with `ledger key generate`. Nothing was signed.")
        }
        do throws(NoteError) {
            return try NoteSigner(name: origin, key: key)
        } catch {
            throw LedgerError(.invalidCheckpoint, "Could not sign a checkpoint: \(error).")
        }
    }

    /// Signs a checkpoint (C2SP tlog-checkpoint as a signed note) of the whole log with the log key,
    /// stores it beside the others, and returns it. The note key name is the ledger's origin.
    public func signCheckpoint(with key: SigningKey) throws(LedgerError) -> (path: String, note: SignedNote) {
        if let stopped { throw stopped }
        guard let origin = state.origin else { throw LedgerError(.notALedger, "The ledger has no genesis record.") }
        let size = ledger.count
        // The root of the log as replayed and appended, not of the tree files (a cache).
        precondition(range.size == size, "the compact range follows every record")
        let root = range.root
        let signer = try checkpointSigner(key)
        // Never a checkpoint that the newest one the log key signed contradicts: the log's root
        // at that size must be its root. Taken from the tree files, a cache; where they are
        // missing or disagree, from the log itself, which decides.
        let store = CheckpointStore(ledgerDirectory: ledger.directory)
        if let newest = try store.signed(by: signer.verifier, newestOnly: true).first, newest.size <= size {
            var then: Digest? = newest.size == size ? root : nil
            if then == nil { do throws(MerkleTreeError) { then = try tree?.root(size: newest.size) } catch {} }
            if then != newest.root {
                var logRange = CompactRange()
                try ledger.forEachRecord(to: newest.size) { (stored) throws(LedgerError) -> Bool in
                    logRange.append(stored.entryID)
                    return true
                }
                then = logRange.root
            }
            guard let then, then == newest.root else {
                throw LedgerError(.damagedLog, "The checkpoint of \(newest.size) entries the log key signed commits to root \(newest.root.shortHex()), but the log's first \(newest.size) entries hash to \(then?.shortHex() ?? "?"): a record up to entry \(newest.size - 1) changed after it was checkpointed. No checkpoint is signed, for it would contradict that one. Run `ledger verify \(ledger.directory)` for all findings.")
            }
        }
        let note: SignedNote
        do throws(NoteError) {
            note = try Checkpoint(origin: origin, size: size, root: root).signed(by: signer)
        } catch {
            throw LedgerError(.invalidCheckpoint, "Could not sign a checkpoint: \(error).")
        }
        let path = try CheckpointStore(ledgerDirectory: ledger.directory).save(note, size: size, signer: signer.verifier)
        return (path, note)
    }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        var text = self
        while text.hasSuffix(suffix) { text.removeLast(suffix.count) }
        return text
    }
}
