import LedgerCrypto
@testable import LedgerMerkle
import Testing

// Vectors of sigsum/sigsum-go (BSD-2-Clause), pkg/checkpoint/checkpoint_test.go: a checkpoint signed,
// and one cosigned, with the Ed25519 key whose seed is 17 followed by 31 zero bytes
// (crypto.PrivateKey{17}); and a real checkpoint of sum.golang.org.
enum SigsumVectors {
    static let seed: [UInt8] = [17] + [UInt8](repeating: 0, count: 31)
    /// checkpoint_test.go testTreeHead: size 10, root 28, 14, 71, then zeros.
    static let root = digest(base64: "HA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")

    /// checkpoint_test.go validCheckpointASCII (TestCheckpointSigned).
    static let logOrigin = "sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69"
    static let signedCheckpoint = """
        sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69
        10
        HA5HAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=

        \u{2014} sigsum.org/v1/tree/e796172b92befd62d9dc67e41c2f5bc9d3100a3023b20b1ca40288dd1c679e69 \
        gJ2ho0n8F8olcerUF1FFdv235A/5as/coWrpLrtE7ovMeP5whgwouYExowG/lTznxu6OUGjjt5yJQ6bXtTcf718MqAQ=

        """

    /// checkpoint_test.go TestCheckpointCosignVerify / TestCheckpointVerifyCosignatureByKey: the
    /// cosignature of witness "example.org/witness" at time 1234 on testCheckpoint (origin
    /// "example.org/log", same tree head).
    static let cosignatureLine = "\u{2014} example.org/witness "
        + "ys8uUAAAAAAAAATSftMzceM8zssdZ9jin9SjwIxzx9iADMf63VqirX2hafol9RsqNqbofIz0LVRqHXI2kpEBSki5RTXFtxz1vo9+Cg=="

    /// checkpoint_test.go TestGoSumDBCheckpoint: "Retrieved from https://sum.golang.org/latest,
    /// 2024-09-23", with the key of golang/go src/cmd/go/internal/modfetch/key.go.
    static let sumDBKey = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
    static let sumDBCheckpoint = """
        go.sum database tree
        30055305
        mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM=

        \u{2014} sum.golang.org Az3grpgEild5qw7+5dtV13Kf1C2Xurm8q4fhdxvcsDHnqNTaxL2AFjBY+2TyGKevucFcAAlWFJJYle3EJlDCrQ+y3A8=

        """
}

@Suite("Checkpoints (C2SP tlog-checkpoint, tlog-cosignature)")
struct CheckpointTests {
    static let origin = "example.com/ledger"

    struct Keys {
        let log: NoteSigner
        let witnesses: [WitnessSigner]
        let stranger: NoteSigner
    }

    static func keys() throws -> Keys {
        func key(_ byte: UInt8) throws -> SigningKey { try SigningKey(seed: [UInt8](repeating: byte, count: 32)) }
        return Keys(
            log: try NoteSigner(name: origin, key: key(1)),
            witnesses: try (0..<3).map { try WitnessSigner(name: "witness.example/w\($0)", key: key(UInt8(10 + $0))) },
            stranger: try NoteSigner(name: "stranger.example", key: key(99)))
    }

    static func checkpoint(size: UInt64 = 8) throws -> Checkpoint {
        try Checkpoint(origin: origin, size: size, root: ReferenceVectors.roots[Int(size)])
    }

    @Test("sigsum-go's signed checkpoint: we produce it byte for byte and verify it")
    func sigsumSigned() throws {
        let signer = try NoteSigner(name: SigsumVectors.logOrigin, key: SigningKey(seed: SigsumVectors.seed))
        let checkpoint = try Checkpoint(origin: SigsumVectors.logOrigin, size: 10, root: SigsumVectors.root)
        #expect(try checkpoint.signed(by: signer).encoded == SigsumVectors.signedCheckpoint)
        let verified = try CheckpointVerifier(origin: SigsumVectors.logOrigin, log: signer.verifier)
            .verify(SigsumVectors.signedCheckpoint)
        #expect(verified.checkpoint == checkpoint)
    }

    @Test("sigsum-go's witness cosignature: the same line from the same key, time and checkpoint")
    func sigsumCosignature() throws {
        let witness = try WitnessSigner(name: "example.org/witness", key: SigningKey(seed: SigsumVectors.seed))
        let checkpoint = try Checkpoint(origin: "example.org/log", size: 10, root: SigsumVectors.root)
        let line = try witness.cosignature(for: checkpoint.body, timestamp: 1234).line
        #expect(line == SigsumVectors.cosignatureLine)
        // And it verifies as part of a checkpoint whose log signature is ours.
        let log = try NoteSigner(name: "example.org/log", key: SigningKey(seed: [UInt8](repeating: 5, count: 32)))
        let note = try checkpoint.signed(by: log).encoded + SigsumVectors.cosignatureLine + "\n"
        let verified = try CheckpointVerifier(
            origin: "example.org/log", log: log.verifier, witnesses: [witness.verifier], requiredWitnesses: 1
        ).verify(note)
        #expect(verified.witnesses == [WitnessCosignature(name: "example.org/witness", keyHash: witness.verifier.keyHash, timestamp: 1234)])
    }

    @Test("a real sum.golang.org checkpoint verifies, its origin differing from its key name")
    func goSumDB() throws {
        let key = try NoteVerifier(verifierKey: SigsumVectors.sumDBKey)
        let verified = try CheckpointVerifier(origin: "go.sum database tree", log: key).verify(SigsumVectors.sumDBCheckpoint)
        #expect(verified.size == 30_055_305)
        #expect(verified.root == digest(base64: "mXfgRcJ0bG0j3CPdKwgGWtUzBUbX67saZGRmFuJGGsM="))
        #expect(throws: NoteError.originMismatch(expected: "sum.golang.org", found: "go.sum database tree")) {
            try CheckpointVerifier(origin: "sum.golang.org", log: key).verify(SigsumVectors.sumDBCheckpoint)
        }
    }

    @Test("sign, cosign, verify: round trip with k of n witnesses")
    func roundTrip() throws {
        let keys = try Self.keys()
        let checkpoint = try Checkpoint(origin: Self.origin, size: 8, root: ReferenceVectors.roots[8], extensions: ["ext one"])
        let note = try checkpoint.signed(by: keys.log)
            .cosigned(by: keys.witnesses[0], timestamp: 1_700_000_000)
            .cosigned(by: keys.witnesses[2], timestamp: 1_700_000_100)
        let parsed = try SignedNote(parsing: note.encoded)
        #expect(parsed == note)
        #expect(try Checkpoint(body: note.text) == checkpoint)
        let witnessKeys = keys.witnesses.map(\.verifier)
        for required in 0...2 {
            let verified = try CheckpointVerifier(
                origin: Self.origin, log: keys.log.verifier, witnesses: witnessKeys, requiredWitnesses: required
            ).verify(note.encoded)
            #expect(verified.checkpoint == checkpoint)
            #expect(verified.witnesses.map(\.timestamp) == [1_700_000_000, 1_700_000_100])
            #expect(verified.unknownSignatures.isEmpty)
        }
        #expect(throws: NoteError.notEnoughWitnesses(got: 2, want: 3)) {
            try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier, witnesses: witnessKeys, requiredWitnesses: 3)
                .verify(note.encoded)
        }
        // Two cosignatures from one witness count once.
        let again = try note.adding(keys.witnesses[0].cosignature(for: note.text, timestamp: 1_700_000_200))
        #expect(again.signatures.count == 3)
        let doubled = try SignedNote(text: note.text, signatures: note.signatures + [again.signatures[2]])
        #expect(throws: NoteError.notEnoughWitnesses(got: 2, want: 3)) {
            try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier, witnesses: witnessKeys, requiredWitnesses: 3)
                .verify(doubled.encoded)
        }
        // Witnesses that are not configured are reported, not counted.
        let verified = try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier).verify(note.encoded)
        #expect(verified.witnesses.isEmpty)
        #expect(verified.unknownSignatures.map(\.name) == ["witness.example/w0", "witness.example/w2"])
    }

    @Test("a cosignature over another checkpoint, time or key type is rejected")
    func cosignatureOverOtherCheckpoint() throws {
        let keys = try Self.keys()
        let witnessKeys = keys.witnesses.map(\.verifier)
        let verifier = try CheckpointVerifier(
            origin: Self.origin, log: keys.log.verifier, witnesses: witnessKeys, requiredWitnesses: 1)
        let note = try Self.checkpoint(size: 8).signed(by: keys.log)
        let other = try Self.checkpoint(size: 7).body
        let foreign = try keys.witnesses[1].cosignature(for: other, timestamp: 1_700_000_000)
        #expect(throws: NoteError.invalidSignature(name: "witness.example/w1", keyHash: witnessKeys[1].keyHash)) {
            try verifier.verify(note.adding(foreign).encoded)
        }
        // The same signature bytes with another timestamp.
        let good = try keys.witnesses[1].cosignature(for: note.text, timestamp: 1_700_000_000)
        var shifted = good.signature
        shifted[7] ^= 1
        let retimed = try NoteSignature(name: good.name, keyHash: good.keyHash, signature: shifted)
        #expect(throws: NoteError.invalidSignature(name: good.name, keyHash: good.keyHash)) {
            try verifier.verify(note.adding(retimed).encoded)
        }
        // A plain note signature by the witness key (type 0x01) has another key hash: unknown.
        let plain = try NoteSigner(name: "witness.example/w1", key: SigningKey(seed: [UInt8](repeating: 11, count: 32)))
        #expect(throws: NoteError.notEnoughWitnesses(got: 0, want: 1)) {
            try verifier.verify(note.adding(plain.signature(for: note.text)).encoded)
        }
        #expect(throws: NoteError.invalidTimestamp(UInt64(Int64.max) + 1)) {
            try keys.witnesses[0].cosignature(for: note.text, timestamp: UInt64(Int64.max) + 1)
        }
    }

    @Test("missing log signature, wrong origin and bad configuration are rejected")
    func rejections() throws {
        let keys = try Self.keys()
        let note = try Self.checkpoint().signed(by: keys.log)
        let strangerOnly = try SignedNote(text: note.text, signatures: [keys.stranger.signature(for: note.text)])
        #expect(throws: NoteError.missingLogSignature(name: Self.origin, keyHash: keys.log.verifier.keyHash)) {
            try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier).verify(strangerOnly.encoded)
        }
        #expect(throws: NoteError.originMismatch(expected: "example.com/other", found: Self.origin)) {
            try CheckpointVerifier(origin: "example.com/other", log: keys.log.verifier).verify(note.encoded)
        }
        // Origins are compared as bytes, as key names are: a canonically equivalent spelling is
        // another origin.
        let accented = try Checkpoint(origin: "example.com/ledger-\u{E9}", size: 1, root: Digest.zero)
        let signed = try accented.signed(by: NoteSigner(name: "example.com/ledger-\u{E9}", key: SigningKey(seed: [UInt8](repeating: 12, count: 32))))
        let logKey = try NoteSigner(name: "example.com/ledger-\u{E9}", key: SigningKey(seed: [UInt8](repeating: 12, count: 32))).verifier
        _ = try CheckpointVerifier(origin: "example.com/ledger-\u{E9}", log: logKey).verify(signed.encoded)
        #expect(throws: NoteError.originMismatch(expected: "example.com/ledger-e\u{301}", found: "example.com/ledger-\u{E9}")) {
            try CheckpointVerifier(origin: "example.com/ledger-e\u{301}", log: logKey).verify(signed.encoded)
        }
        // Each configuration refused for its own reason, not for a malformed key or note.
        func refusal(_ body: () throws -> CheckpointVerifier) -> String? {
            do {
                _ = try body()
                return nil
            } catch let NoteError.invalidConfiguration(reason) {
                return reason
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal { try CheckpointVerifier(origin: Self.origin, log: keys.witnesses[0].verifier) }?.contains("must be an Ed25519 note key") == true)
        #expect(refusal { try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier, witnesses: [keys.stranger.verifier]) }?.contains("must be a cosignature/v1 key") == true)
        #expect(refusal { try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier, witnesses: [], requiredWitnesses: 1) }?.contains("1 witnesses required, but 0 are known") == true)
        // One key under two witness names would count one cosignature line twice.
        let renamed = try WitnessSigner(name: "witness.example/renamed", key: SigningKey(seed: [UInt8](repeating: 10, count: 32)))
        #expect(
            refusal {
                try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier, witnesses: [keys.witnesses[0].verifier, renamed.verifier], requiredWitnesses: 2)
            }?.contains("are one public key") == true)
        // The same key listed twice is harmless (a different key with the same name and key hash
        // would be refused, but cannot be built without a SHA-256 prefix collision).
        #expect(try SignedNote(parsing: note.encoded).verify(with: [keys.log.verifier, keys.log.verifier]).verified.count == 1)
        // The same name with another key has another key hash: an unknown line, not a failure.
        let impostor = try NoteSigner(name: Self.origin, key: SigningKey(seed: [UInt8](repeating: 98, count: 32)))
        let withImpostor = try SignedNote(text: note.text, signatures: note.signatures + [impostor.signature(for: note.text)])
        #expect(try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier).verify(withImpostor.encoded)
            .unknownSignatures.map(\.keyHash) == [impostor.verifier.keyHash])
        // A signed note whose text is not a checkpoint is refused after its signature verified.
        let notCheckpoint = try SignedNote(text: "hello\n", signatures: [keys.log.signature(for: "hello\n")])
        #expect(throws: NoteError.malformedCheckpoint("fewer than three lines")) {
            try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier).verify(notCheckpoint.encoded)
        }
    }

    @Test("checkpoint bodies are parsed strictly")
    func bodyParsing() throws {
        let root = Base64.encode(ReferenceVectors.roots[8].rawRepresentation)
        let good = "example.com/ledger\n8\n\(root)\n"
        #expect(try Checkpoint(body: good).body == good)
        #expect(try Checkpoint(body: "a b c\n0\n\(root)\nx\ny z\n").extensions == ["x", "y z"])
        for bad in [
            "example.com/ledger\n8\n\(root)",  // no final newline
            "example.com/ledger\n8\n",  // two lines
            "\n8\n\(root)\n",  // empty origin
            "example.com/ledger\n08\n\(root)\n",  // leading zero
            "example.com/ledger\n+8\n\(root)\n",
            "example.com/ledger\n8 \n\(root)\n",
            "example.com/ledger\n18446744073709551616\n\(root)\n",  // 2^64
            "example.com/ledger\n8\n\(root.dropLast(2))\n",
            "example.com/ledger\n8\nAAAA\n",  // 3 bytes
            "example.com/ledger\n8\n\(root)\n\n",  // empty extension line
        ] {
            #expect(throws: NoteError.self, "\(bad)") { try Checkpoint(body: bad) }
        }
        #expect(try Checkpoint(body: "o\n18446744073709551615\n\(root)\n").size == UInt64.max)
        #expect(try Checkpoint(body: "o\n0\n\(root)\n").size == 0)
        #expect(throws: NoteError.self) { try Checkpoint(origin: "two\nlines", size: 1, root: .zero) }
        #expect(throws: NoteError.self) { try Checkpoint(origin: "o", size: 1, root: .zero, extensions: [""]) }
    }

    @Test("every single-bit flip in a signed, cosigned note is rejected, or only changes an unknown line")
    func bitFlips() throws {
        let keys = try Self.keys()
        let verifier = try CheckpointVerifier(
            origin: Self.origin, log: keys.log.verifier, witnesses: Array(keys.witnesses.prefix(2)).map(\.verifier),
            requiredWitnesses: 2)
        let note = try Self.checkpoint().signed(by: keys.log)
            .cosigned(by: keys.witnesses[0], timestamp: 1_700_000_000)
            .adding(keys.stranger.signature(for: Self.checkpoint().body))
            .cosigned(by: keys.witnesses[1], timestamp: 1_700_000_001)
        let bytes = Array(note.encoded.utf8)
        let original = try verifier.verify(bytes)
        #expect(original.unknownSignatures.map(\.name) == ["stranger.example"])
        // The byte range of the stranger's line, the only one whose bits may change without rejection.
        let strangerLine = Array((try keys.stranger.signature(for: note.text).line + "\n").utf8)
        let strangerStart = try #require(
            (0...(bytes.count - strangerLine.count)).first { Array(bytes[$0..<($0 + strangerLine.count)]) == strangerLine })
        let strangerRange = strangerStart..<(strangerStart + strangerLine.count)
        var accepted = 0
        for bit in 0..<(bytes.count * 8) {
            var flipped = bytes
            flipped[bit / 8] ^= 1 << UInt8(bit % 8)
            guard let result = try? verifier.verify(flipped) else { continue }
            accepted += 1
            #expect(strangerRange.contains(bit / 8), "flip of bit \(bit) outside the unknown line was accepted")
            #expect(result.checkpoint == original.checkpoint)
            // Its last base64 character before "=" also carries two unused bits, which are ignored
            // in a line of an unknown key (as Go's note.Open ignores them).
            let lastCharacter = strangerRange.upperBound - 3
            #expect(result.unknownSignatures != original.unknownSignatures || bit / 8 == lastCharacter, "flip of bit \(bit) went unreported")
        }
        // Flips in the stranger's key hash and signature bytes decode to other bytes, still unknown.
        #expect(accepted > 0)
    }

    @Test("proofs verify against verified checkpoints")
    func proofsAgainstCheckpoints() throws {
        let keys = try Self.keys()
        let tree = ReferenceVectors.tree
        let verifier = try CheckpointVerifier(origin: Self.origin, log: keys.log.verifier)
        let old = try verifier.verify(Self.checkpoint(size: 5).signed(by: keys.log).encoded)
        let new = try verifier.verify(Self.checkpoint(size: 8).signed(by: keys.log).encoded)
        let leaf = RFC6962.leafHash(ReferenceVectors.leafInputs[3])
        try tree.inclusionProof(index: 3, size: 8).verify(leafHash: leaf, in: new)
        try tree.inclusionProof(index: 3, size: 5).verify(leafHash: leaf, in: old)
        #expect(throws: ProofError.treeSizeMismatch(proof: 5, trusted: 8)) {
            try tree.inclusionProof(index: 3, size: 5).verify(leafHash: leaf, in: new)
        }
        try tree.consistencyProof(from: 5, to: 8).verify(from: old, to: new)
        #expect(throws: ProofError.self) { try tree.consistencyProof(from: 5, to: 8).verify(from: new, to: old) }
    }
}
