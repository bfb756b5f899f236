import Foundation
import LedgerCrypto
@testable import LedgerMerkle
import Testing

// Vectors of golang/mod (BSD-3-Clause), sumdb/note/note.go (the package documentation's example)
// and sumdb/note/note_test.go (TestNewVerifier, TestSign, TestOpen).
enum GoNoteVectors {
    static let peterVerifierKey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    /// note_test.go TestSign: the signer key `PRIVATE+KEY+PeterNeumann+c74f20a3+<base64(0x01 ‖ seed)>`.
    static let peterSignerKeyData = "AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
    static let enochVerifierKey = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
    static let text = "If you think cryptography is the answer to your problem,\n"
        + "then you don't know what your problem is.\n"
    static let peterSignature =
        "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    static let enochSignature =
        "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"

    static var peterSeed: [UInt8] {
        Array((Base64.decodeCanonical(peterSignerKeyData) ?? []).dropFirst())
    }
}

@Suite("Signed notes (C2SP signed-note, Go's sumdb/note)")
struct SignedNoteTests {
    @Test("Go's documented example note verifies with its verifier key")
    func goExampleVerifies() throws {
        let verifier = try NoteVerifier(verifierKey: GoNoteVectors.peterVerifierKey)
        #expect(verifier.name == "PeterNeumann")
        #expect(verifier.keyHash == 0xc74f_20a3)
        #expect(verifier.algorithm == .ed25519)
        #expect(verifier.verifierKey == GoNoteVectors.peterVerifierKey)
        let note = try SignedNote(parsing: GoNoteVectors.text + "\n" + GoNoteVectors.peterSignature)
        let result = try note.verify(with: [verifier])
        #expect(note.text == GoNoteVectors.text)
        #expect(result.verified.map(\.name) == ["PeterNeumann"])
        #expect(result.unknown.isEmpty)
        #expect(note.encoded == GoNoteVectors.text + "\n" + GoNoteVectors.peterSignature)
    }

    @Test("Go's test signer key gives the same verifier key and the same signed note (TestSign)")
    func sameSignatureAsGo() throws {
        let key = try SigningKey(seed: GoNoteVectors.peterSeed)
        let signer = try NoteSigner(name: "PeterNeumann", key: key)
        #expect(signer.verifier.verifierKey == GoNoteVectors.peterVerifierKey)
        let note = try SignedNote(text: GoNoteVectors.text, signatures: [signer.signature(for: GoNoteVectors.text)])
        #expect(note.encoded == GoNoteVectors.text + "\n" + GoNoteVectors.peterSignature)
        // Re-signing replaces the key's earlier line (TestSign, "existing signature is replaced").
        let bad = try NoteSignature(name: "PeterNeumann", keyHash: 0xc74f_20a3, signature: [1, 2, 3])
        let replaced = try SignedNote(text: GoNoteVectors.text, signatures: [bad]).adding(signer.signature(for: GoNoteVectors.text))
        #expect(replaced.encoded == note.encoded)
    }

    @Test("Go's doubly signed note: both verify; with one key the other is reported unknown (TestOpen)")
    func twoSigners() throws {
        let peter = try NoteVerifier(verifierKey: GoNoteVectors.peterVerifierKey)
        let enoch = try NoteVerifier(verifierKey: GoNoteVectors.enochVerifierKey)
        let note = try SignedNote(
            parsing: GoNoteVectors.text + "\n" + GoNoteVectors.peterSignature + GoNoteVectors.enochSignature)
        let both = try note.verify(with: [peter, enoch])
        #expect(both.verified.map(\.keyHash) == [0xc74f_20a3, 0xaf0c_fe78])
        let one = try note.verify(with: [peter])
        #expect(one.verified.map(\.name) == ["PeterNeumann"])
        #expect(one.unknown.map(\.name) == ["EnochRoot"])
        #expect(throws: NoteError.noVerifiedSignature) { try note.verify(with: []) }
    }

    @Test("every line of a known key must verify, unlike Go's note.Open which checks only the first")
    func everyLineIsChecked() throws {
        let peter = try NoteVerifier(verifierKey: GoNoteVectors.peterVerifierKey)
        let signature = GoNoteVectors.peterSignature
        let corrupted = String(signature.prefix(60)) + "ABCD" + String(signature.dropFirst(60))
        // note_test.go "Invalid signature".
        #expect(throws: NoteError.invalidSignature(name: "PeterNeumann", keyHash: 0xc74f_20a3)) {
            try SignedNote(parsing: GoNoteVectors.text + "\n" + corrupted).verify(with: [peter])
        }
        // Go accepts this note: its second PeterNeumann line is skipped as a repeat. We reject it.
        #expect(throws: NoteError.invalidSignature(name: "PeterNeumann", keyHash: 0xc74f_20a3)) {
            try SignedNote(parsing: GoNoteVectors.text + "\n" + signature + corrupted).verify(with: [peter])
        }
        // Two good lines of the same key are fine.
        let twice = try SignedNote(parsing: GoNoteVectors.text + "\n" + signature + signature).verify(with: [peter])
        #expect(twice.verified.count == 2)
    }

    /// C2SP: verifiers must ignore signatures from unknown keys. A known key's line must still be
    /// the canonical spelling.
    @Test("a line of an unknown key in non-canonical base64 is ignored; a known key's is refused")
    func nonCanonicalBase64() throws {
        let text = GoNoteVectors.text
        let line = GoNoteVectors.peterSignature.dropLast()  // without its newline
        // Non-zero padding bits: the last character before "=" with its lowest bit set.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        var characters = Array(line)
        let last = try #require(characters.lastIndex { $0 != "=" })
        let value = try #require(alphabet.firstIndex(of: characters[last]))
        #expect(value & 1 == 0, "the vector's padding bits are zero")
        characters[last] = alphabet[value | 1]
        let nonCanonical = String(characters)
        let peter = try NoteVerifier(verifierKey: GoNoteVectors.peterVerifierKey)
        let foreign = nonCanonical.replacingOccurrences(of: "PeterNeumann", with: "other.example")
        let withForeign = try SignedNote(parsing: text + "\n" + line + "\n" + foreign + "\n")
        let result = try withForeign.verify(with: [peter])
        #expect(result.verified.count == 1 && result.unknown.map(\.name) == ["other.example"])
        #expect(throws: NoteError.malformedNote("signature line 1, of PeterNeumann, is not canonical base64")) {
            try SignedNote(parsing: text + "\n" + nonCanonical + "\n").verify(with: [peter])
        }
    }

    @Test("malformed notes are rejected (TestOpen's list and more)")
    func malformed() throws {
        let text = GoNoteVectors.text
        let signature = GoNoteVectors.peterSignature
        let badNotes: [(String, [UInt8])] = [
            ("no signatures", Array(text.utf8)),
            ("empty signature block", Array((text + "\n").utf8)),
            ("no final newline", Array((text + "\n" + signature.dropLast()).utf8)),
            ("control character", Array(("\u{01}" + text + "\n" + signature).utf8)),
            ("carriage return", Array((text + "\n" + signature.dropLast() + "\r\n").utf8)),
            ("invalid UTF-8", [0xFF] + Array((text + "\n" + signature).utf8)),
            ("bad name", Array((text + "\n" + "\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").utf8)),
            ("unexpected line", Array((text + "\n" + signature + "Unexpected line.\n").utf8)),
            ("hyphen instead of em dash", Array((text + "\n" + "-" + signature.dropFirst()).utf8)),
            ("plus in name", Array((text + "\n" + signature.replacingOccurrences(of: "PeterNeumann", with: "Peter+Neumann")).utf8)),
            ("empty signature", Array((text + "\n\u{2014} PeterNeumann \n").utf8)),
            ("key hash only", Array((text + "\n\u{2014} PeterNeumann x08gow==\n").utf8)),
            ("101 signatures", Array((text + "\n" + String(repeating: signature, count: 101)).utf8)),
            ("no blank line", Array((text + signature).utf8)),
        ]
        let peter = try NoteVerifier(verifierKey: GoNoteVectors.peterVerifierKey)
        for (what, note) in badNotes {
            #expect(throws: NoteError.self, "\(what)") { try SignedNote(parsing: note) }
            do {
                _ = try SignedNote(parsing: note).verify(with: [peter])
            } catch {
                guard case .malformedNote = error else {
                    Issue.record("\(what): \(error)")
                    continue
                }
            }
        }
        // 100 signatures are accepted.
        let hundred = try SignedNote(parsing: text + "\n" + String(repeating: signature, count: 100))
        #expect(try hundred.verify(with: [peter]).verified.count == 100)
        #expect(throws: NoteError.malformedNote("the text does not end with a newline")) {
            try SignedNote(text: "no newline")
        }
    }

    @Test("the verifier key is parsed strictly: no substring and no changed byte is accepted (TestNewVerifier)")
    func verifierKeyStrictness() throws {
        let key = Array(GoNoteVectors.peterVerifierKey.utf8)
        for start in 0...key.count {
            for end in (start + 1)..<(key.count + 1) where !(start == 0 && end == key.count) {
                let candidate = String(decoding: key[start..<end], as: UTF8.self)
                #expect(throws: NoteError.self, "\(candidate)") { try NoteVerifier(verifierKey: candidate) }
            }
        }
        for position in key.indices {
            var changed = key
            changed[position] &+= 1
            let candidate = String(decoding: changed, as: UTF8.self)
            #expect(throws: NoteError.self, "\(candidate)") { try NoteVerifier(verifierKey: candidate) }
        }
        // note_test.go: a wrong-length key and an unknown algorithm, each with an adjusted key hash.
        #expect(throws: NoteError.self) {
            try NoteVerifier(verifierKey: "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
        }
        #expect(throws: NoteError.self) {
            try NoteVerifier(verifierKey: "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
        // Uppercase hex is not the canonical form.
        #expect(throws: NoteError.self) {
            try NoteVerifier(verifierKey: "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        }
    }

    // transparency-dev/formats (Apache-2.0) note/note_cosigv1_test.go, TestCoSigV1NewVerifier.
    @Test("published verifier keys of both types parse, and print back identically")
    func publishedVerifierKeys() throws {
        let witness = try NoteVerifier(verifierKey: "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
        #expect(witness.algorithm == .cosignatureV1 && witness.keyHash == 0xda77_ade7)
        #expect(witness.verifierKey == "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2")
        // The key material itself contains '+'.
        let log = try NoteVerifier(verifierKey: "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6")
        #expect(log.algorithm == .ed25519 && log.name == "TEST")
        for bad in ["bananas.sigstore.dev+12344556", "rekor.sigstore.dev+12345678+THIS_IS_NOT_BASE64!",
                    "rekor.sigstore.dev+12345678+AwEB"] {
            #expect(throws: NoteError.self, "\(bad)") { try NoteVerifier(verifierKey: bad) }
        }
    }

    /// Swift's `==` takes canonically equivalent strings as equal; C2SP and Go compare names as
    /// bytes, so a line under another spelling is another key's, and unknown.
    @Test("key names are compared as bytes: a line under a canonically equivalent name is an unknown key's")
    func namesAreBytes() throws {
        let key = try SigningKey(seed: GoNoteVectors.peterSeed)
        for (signed, line) in [("K-log", "\u{212A}-log"), ("ledger-\u{E9}", "ledger-e\u{301}"), ("ledger-e\u{301}", "ledger-\u{E9}")] {
            // The inputs: equal as Swift strings, other bytes (which is the point).
            try #require(signed == line && Array(signed.utf8) != Array(line.utf8))
            let signer = try NoteSigner(name: signed, key: key)
            let text = "a note\n"
            let genuine = try signer.signature(for: text)
            let renamed = try NoteSignature(name: line, keyHash: genuine.keyHash, signature: genuine.signature)
            let note = try SignedNote(parsing: SignedNote(text: text, signatures: [renamed]).encoded)
            #expect(throws: NoteError.noVerifiedSignature) { try note.verify(with: [signer.verifier]) }
            #expect(try note.checkSignatures(with: [signer.verifier]).unknown.count == 1)
            #expect(try SignedNote(text: text, signatures: [genuine]).verify(with: [signer.verifier]).verified.count == 1)
        }
    }

    @Test("key names are checked when signing and in verifier keys")
    func keyNames() throws {
        let key = try SigningKey(seed: GoNoteVectors.peterSeed)
        for bad in ["", "a b", "a+b", "a\u{00A0}b", "a\u{2003}b", "a\u{85}b", "a\tb"] {
            #expect(throws: NoteError.invalidKeyName(bad)) { try NoteSigner(name: bad, key: key) }
        }
        #expect(try NoteSigner(name: "example.com/ledger-\u{00E9}", key: key).verifier.name == "example.com/ledger-\u{00E9}")
    }
}
