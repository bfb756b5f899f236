public import LedgerCrypto

/// A witness's verified cosignature on a checkpoint.
public struct WitnessCosignature: Hashable, Sendable {
    /// The witness's key name.
    public let name: String
    /// The witness's key hash.
    public let keyHash: UInt32
    /// When the witness cosigned, in POSIX seconds: as of then, this was the largest consistent
    /// checkpoint it had seen of the log.
    public let timestamp: UInt64
}

/// A checkpoint whose log signature, and the required witness cosignatures, have been verified.
///
/// Only ``CheckpointVerifier`` creates one, so holding a `VerifiedCheckpoint` means the checks passed.
/// Take tree sizes and roots for proof verification from here, never from a proof.
public struct VerifiedCheckpoint: Hashable, Sendable {
    /// The checkpoint.
    public let checkpoint: Checkpoint
    /// The signed note it came from, exactly as verified.
    public let note: SignedNote
    /// The configured witnesses whose cosignatures verified, in note order, each once.
    public let witnesses: [WitnessCosignature]
    /// Signature lines of unknown keys: ignored, but reported.
    public let unknownSignatures: [NoteSignature]

    init(checkpoint: Checkpoint, note: SignedNote, witnesses: [WitnessCosignature], unknownSignatures: [NoteSignature]) {
        self.checkpoint = checkpoint
        self.note = note
        self.witnesses = witnesses
        self.unknownSignatures = unknownSignatures
    }

    /// The tree size.
    public var size: UInt64 { checkpoint.size }
    /// The root hash.
    public var root: Digest { checkpoint.root }
}

/// Verifies checkpoints of one log: its signature, the origin, and "k of n" witness cosignatures.
public struct CheckpointVerifier: Sendable {
    /// The origin line the checkpoints must carry.
    public let origin: String
    /// The log's key (signature type Ed25519).
    public let log: NoteVerifier
    /// The known witnesses (signature type cosignature/v1).
    public let witnesses: [NoteVerifier]
    /// How many distinct known witnesses must have cosigned.
    public let requiredWitnesses: Int

    /// A verifier for checkpoints of the log `origin` signed with `log`, cosigned by at least
    /// `requiredWitnesses` of `witnesses`.
    /// - Throws: ``NoteError/invalidConfiguration(_:)`` if the log key is not Ed25519, a witness key is not
    ///   cosignature/v1, or `requiredWitnesses` is not in `0...witnesses.count`;
    ///   ``NoteError/duplicateVerifier(name:keyHash:)`` if two keys share a name and key hash.
    public init(origin: String, log: NoteVerifier, witnesses: [NoteVerifier] = [], requiredWitnesses: Int = 0)
        throws(NoteError)
    {
        guard log.algorithm == .ed25519 else {
            throw .invalidConfiguration("the log key \(log.name) must be an Ed25519 note key (type 0x01)")
        }
        for witness in witnesses where witness.algorithm != .cosignatureV1 {
            throw .invalidConfiguration("the witness key \(witness.name) must be a cosignature/v1 key (type 0x04)")
        }
        var distinct = Set<NoteVerifier>()
        for witness in witnesses {
            distinct.insert(witness)
        }
        // A cosignature does not commit to its cosigner's name, so one key listed under two names
        // (or twice under one) would count one cosigner's line twice (C2SP tlog-cosignature).
        var keys: [[UInt8]: String] = [:]
        for witness in distinct {
            if let other = keys.updateValue(witness.name, forKey: witness.publicKey.rawRepresentation) {
                throw .invalidConfiguration("the witness keys \(other) and \(witness.name) are one public key; a key may stand for one witness only")
            }
        }
        guard (0...distinct.count).contains(requiredWitnesses) else {
            throw .invalidConfiguration("\(requiredWitnesses) witnesses required, but \(distinct.count) are known")
        }
        self.origin = origin
        self.log = log
        self.witnesses = Array(distinct).sorted { ($0.name, $0.keyHash) < ($1.name, $1.keyHash) }
        self.requiredWitnesses = requiredWitnesses
        // Reject keys that collide on name and key hash now rather than at the first checkpoint.
        _ = try noteVerifierIndex([log] + self.witnesses)
    }

    /// This log's checkpoints with no witness required: for one already trusted (a reviewer's, or
    /// the one a witness last cosigned), whose cosignatures were asked for when it was first
    /// trusted, not again under requirements made since.
    public var logOnly: CheckpointVerifier { CheckpointVerifier(origin: origin, checkedLog: log) }

    /// A verifier with no witnesses, of a log key already checked.
    private init(origin: String, checkedLog log: NoteVerifier) {
        (self.origin, self.log, witnesses, requiredWitnesses) = (origin, log, [], 0)
    }

    /// Verifies a signed checkpoint note, then parses it.
    ///
    /// 1. The note must be well formed (``SignedNote/init(parsing:)``).
    /// 2. Every signature line of the log key or of a known witness must verify; lines of unknown keys
    ///    are ignored and reported in ``VerifiedCheckpoint/unknownSignatures``.
    /// 3. A log signature must be present, and at least ``requiredWitnesses`` distinct witnesses.
    /// 4. Only then is the text parsed as a checkpoint, whose origin must be ``origin``.
    /// - Throws: ``NoteError/malformedNote(_:)``, ``NoteError/invalidSignature(name:keyHash:)``,
    ///   ``NoteError/missingLogSignature(name:keyHash:)``, ``NoteError/notEnoughWitnesses(got:want:)``,
    ///   ``NoteError/malformedCheckpoint(_:)`` or ``NoteError/originMismatch(expected:found:)``.
    public func verify(_ signedNote: some Collection<UInt8>) throws(NoteError) -> VerifiedCheckpoint {
        let note = try SignedNote(parsing: signedNote)
        let result = try note.checkSignatures(with: [log] + witnesses)
        guard result.verified.contains(where: { $0.id == log.id }) else {
            throw .missingLogSignature(name: log.name, keyHash: log.keyHash)
        }
        var cosignatures: [WitnessCosignature] = []
        for signature in result.verified where signature.id != log.id {
            guard !cosignatures.contains(where: { $0.id == signature.id }),
                  let timestamp = cosignatureTimestamp(signature.signature)
            else { continue }
            cosignatures.append(WitnessCosignature(name: signature.name, keyHash: signature.keyHash, timestamp: timestamp))
        }
        guard cosignatures.count >= requiredWitnesses else {
            throw .notEnoughWitnesses(got: cosignatures.count, want: requiredWitnesses)
        }
        let checkpoint = try Checkpoint(body: note.text)
        // As bytes, as key names are (``NoteKeyID``).
        guard checkpoint.origin.utf8.elementsEqual(origin.utf8) else { throw .originMismatch(expected: origin, found: checkpoint.origin) }
        return VerifiedCheckpoint(
            checkpoint: checkpoint, note: note, witnesses: cosignatures, unknownSignatures: result.unknown)
    }

    /// Verifies a signed checkpoint note given as text, as the byte-collection `verify` does.
    /// - Throws: as the byte-collection `verify`.
    public func verify(_ signedNote: String) throws(NoteError) -> VerifiedCheckpoint {
        try verify(Array(signedNote.utf8))
    }
}
