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
        directory = ledgerDirectory + "/checkpoints"
    }

    /// The file holding the log's note verifier key.
    public var verifierKeyPath: String { directory + "/log.vkey" }

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

    /// The stored checkpoint files, oldest (smallest size) first.
    public func files() -> [String] {
        FileSystem.contents(of: directory).filter { $0.hasSuffix(".note") }.map { directory + "/" + $0 }
    }

    /// The text of the newest stored checkpoint (largest size), if any.
    public func newest() throws(LedgerError) -> (path: String, text: [UInt8])? {
        guard let path = files().last else { return nil }
        return (path, try Self.read(path))
    }

    static func read(_ path: String) throws(LedgerError) -> [UInt8] {
        let file = try FileDescriptor(path: path, flags: O_RDONLY)
        return try file.read(at: 0, count: Int(min(try file.size, 1 << 20)))
    }

    /// Stores a signed checkpoint, atomically; its name sorts by tree size.
    func save(_ note: SignedNote, size: UInt64, signer: NoteVerifier) throws(LedgerError) -> String {
        try FileSystem.makeDirectory(directory)
        if let recorded = try verifierKey() {
            guard recorded == signer else {
                throw LedgerError(.usage, "This ledger's checkpoints are signed by \(recorded.verifierKey) (\(verifierKeyPath)); the key given is \(signer.verifierKey). Sign with the ledger's log key.")
            }
        } else {
            try FileSystem.writeAtomically(Array((signer.verifierKey + "\n").utf8), to: verifierKeyPath, directory: directory)
        }
        let digits = String(size)
        let hash = String(signer.keyHash, radix: 16)
        let name = String(repeating: "0", count: 20 - digits.count) + digits + "-" + String(repeating: "0", count: 8 - hash.count) + hash + ".note"
        let path = directory + "/" + name
        try FileSystem.writeAtomically(Array(note.encoded.utf8), to: path, directory: directory)
        return path
    }
}

extension LedgerWriter {
    /// Signs a checkpoint (C2SP tlog-checkpoint as a signed note) of the whole log with the log key,
    /// stores it beside the others, and returns it. The note key name is the ledger's origin.
    public func signCheckpoint(with key: SigningKey) throws(LedgerError) -> (path: String, note: SignedNote) {
        guard let origin = state.origin else { throw LedgerError(.notALedger, "The ledger has no genesis record.") }
        let size = ledger.count
        let reader: any MerkleNodeReader
        if let tree { reader = tree } else { reader = try ledger.merkleTree() }
        let root: Digest
        do throws(MerkleTreeError) {
            root = try reader.root(size: size)
        } catch {
            throw LedgerError(error, in: ledger.directory)
        }
        let signer: NoteSigner
        let note: SignedNote
        do throws(NoteError) {
            signer = try NoteSigner(name: origin, key: key)
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
