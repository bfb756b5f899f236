import Foundation
import LedgerCore
import LedgerCrypto
import Testing

func bytes(hex: String) -> [UInt8] {
    var out: [UInt8] = []
    var iterator = hex.utf8.makeIterator()
    while let hi = iterator.next(), let lo = iterator.next() {
        out.append(UInt8(String(decoding: [hi, lo], as: UTF8.self), radix: 16) ?? 0)
    }
    return out
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

@Suite("Ed25519")
struct Ed25519Tests {
    // RFC 8032 §7.1, TEST 1, TEST 2, TEST 3 and TEST SHA(abc).
    static let vectors: [(name: String, seed: String, publicKey: String, message: String, signature: String)] = [
        (
            "TEST 1", "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        ),
        (
            "TEST 2", "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
            "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
            "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
        ),
        (
            "TEST 3", "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
            "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
            "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"
        ),
        (
            // The message is SHA-512("abc").
            "TEST SHA(abc)", "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
            "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
            "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704"
        ),
    ]

    @Test("RFC 8032 §7.1 vectors: public key, signature and verification", arguments: Ed25519Tests.vectors.indices)
    func rfc8032(_ i: Int) throws {
        let vector = Self.vectors[i]
        let key = try SigningKey(seed: bytes(hex: vector.seed))
        #expect(hex(key.publicKey.rawRepresentation) == vector.publicKey, "\(vector.name) public key")
        let signature = try key.signature(for: bytes(hex: vector.message))
        #expect(hex(signature) == vector.signature, "\(vector.name) signature")
        let publicKey = try PublicKey(rawRepresentation: bytes(hex: vector.publicKey))
        #expect(publicKey.isValidSignature(signature, for: bytes(hex: vector.message)), "\(vector.name) verifies")
    }

    @Test("any flipped bit in the signature or the message fails verification")
    func tamper() throws {
        let key = try SigningKey(seed: bytes(hex: Self.vectors[1].seed))
        let message = Array("a claim".utf8)
        let signature = try key.signature(for: message)
        for bit in 0..<(64 * 8) {
            var bad = signature
            bad[bit / 8] ^= 1 << (bit % 8)
            #expect(!key.publicKey.isValidSignature(bad, for: message), "signature bit \(bit)")
        }
        for bit in 0..<(message.count * 8) {
            var bad = message
            bad[bit / 8] ^= 1 << (bit % 8)
            #expect(!key.publicKey.isValidSignature(signature, for: bad), "message bit \(bit)")
        }
        #expect(!key.publicKey.isValidSignature(Array(signature.dropLast()), for: message))
        #expect(!key.publicKey.isValidSignature(signature + [0], for: message))
        let other = try SigningKey.generate()
        #expect(!other.publicKey.isValidSignature(signature, for: message))
    }

    @Test("a verifier that keeps its context gives the answers a fresh context gives, in any order, also after a failure")
    func reusedContext() throws {
        let key = try SigningKey(seed: bytes(hex: Self.vectors[1].seed))
        let verifier = SignatureVerifier(key.publicKey)
        var random = SplitMix64(seed: 102)
        for round in 0..<300 {
            let message = (0..<Int.random(in: 0..<900, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            var signature = try key.signature(for: message)
            var tampered = message
            switch round % 4 {
            case 1: signature[Int.random(in: 0..<64, using: &random)] ^= 1 << UInt8.random(in: 0..<8, using: &random)
            case 2 where !tampered.isEmpty: tampered[Int.random(in: 0..<tampered.count, using: &random)] ^= 1
            case 3: signature = try SigningKey.generate().signature(for: message)
            default: break
            }
            #expect(verifier.isValidSignature(signature, for: tampered) == key.publicKey.isValidSignature(signature, for: tampered), "round \(round)")
            #expect(verifier.isValidSignature(signature, for: tampered) == (round % 4 == 0 || (round % 4 == 2 && message.isEmpty)), "round \(round)")
        }
        for vector in Self.vectors {
            let publicKey = try PublicKey(rawRepresentation: bytes(hex: vector.publicKey))
            #expect(SignatureVerifier(publicKey).isValidSignature(bytes(hex: vector.signature), for: bytes(hex: vector.message)), "\(vector.name)")
        }
        #expect(!verifier.isValidSignature([UInt8](repeating: 0, count: 63), for: [1]))
    }

    @Test("a signature with S increased by the group order L is rejected (non-canonical S)")
    func nonCanonicalS() throws {
        let key = try SigningKey(seed: bytes(hex: Self.vectors[0].seed))
        let message = Array("x".utf8)
        var signature = try key.signature(for: message)
        // L = 2^252 + 27742317777372353535851937790883648493, little-endian (RFC 8032 §5.1).
        let order = bytes(hex: "edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
        var carry = 0
        for i in 0..<32 {
            let sum = Int(signature[32 + i]) + Int(order[i]) + carry
            signature[32 + i] = UInt8(sum & 0xff)
            carry = sum >> 8
        }
        // S + L still fits in 32 bytes whenever S < 2^256 - L, which holds for every canonical S.
        #expect(carry == 0)
        #expect(!key.publicKey.isValidSignature(signature, for: message))
        let verifier = SignatureVerifier(key.publicKey)
        #expect(!verifier.isValidSignature(signature, for: message))
        #expect(verifier.isValidSignature(try key.signature(for: message), for: message))
    }

    @Test("wrong lengths are rejected with their counts")
    func lengths() {
        #expect(throws: CryptoError.wrongLength(what: "Ed25519 seed", got: 31, want: 32)) {
            try SigningKey(seed: [UInt8](repeating: 1, count: 31))
        }
        #expect(throws: CryptoError.wrongLength(what: "Ed25519 public key", got: 33, want: 32)) {
            try PublicKey(rawRepresentation: [UInt8](repeating: 1, count: 33))
        }
    }

    @Test("PEM round trip: PKCS#8 private and SPKI public keys")
    func pemRoundTrip() throws {
        let key = try SigningKey.generate()
        let pem = try key.pemRepresentation()
        #expect(pem.hasPrefix("-----BEGIN PRIVATE KEY-----\n"))
        let reread = try SigningKey(pemRepresentation: pem)
        #expect(reread.publicKey == key.publicKey)
        let publicPEM = key.publicKey.pemRepresentation
        #expect(publicPEM.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(try PublicKey(pemRepresentation: publicPEM) == key.publicKey)
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: publicPEM) }
        #expect(throws: CryptoError.self) { try PublicKey(pemRepresentation: "not a key") }
        #expect(!key.description.contains(pem))
    }

    /// OpenSSL's reader takes bytes after the key's DER, and unused bits in its bit string (which
    /// make it read another key), without a word.
    @Test("a PUBLIC KEY block that is not the key's one DER encoding is refused")
    func publicKeyDERExact() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 7, count: 32)).publicKey
        let der = Base64.decode(key.pemRepresentation.split(separator: "\n").dropFirst().dropLast().joined())!
        func pem(_ der: [UInt8]) -> String { "-----BEGIN PUBLIC KEY-----\n\(Base64.encode(der))\n-----END PUBLIC KEY-----\n" }
        #expect(try PublicKey(pemRepresentation: pem(der)) == key)
        var unusedBits = der
        unusedBits[11] = 4  // the bit string's unused-bits byte
        for (name, bad) in [("trailing bytes", der + [0, 0]), ("unused bits", unusedBits)] {
            #expect(throws: CryptoError.self, "\(name)") { try PublicKey(pemRepresentation: pem(bad)) }
        }
    }

    /// OpenSSL's reader takes bytes after a PKCS#8 key's DER, and lengths in longer forms than
    /// DER's, without a word.
    @Test("a PRIVATE KEY block that is not the key's one DER encoding is refused")
    func privateKeyDERExact() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 7, count: 32))
        let der = Base64.decode(try key.pemRepresentation().split(separator: "\n").dropFirst().dropLast().joined())!
        func pem(_ der: [UInt8]) -> String { "-----BEGIN PRIVATE KEY-----\n\(Base64.encode(der))\n-----END PRIVATE KEY-----\n" }
        #expect(try SigningKey(pemRepresentation: pem(der)).publicKey == key.publicKey)
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: pem(der + [0, 0])) }
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: pem(der + [0x30, 0])) }
        // The same key with a length in a longer form than the shortest, outside and inside.
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: pem([0x30, 0x81] + der.dropFirst())) }
        let octets = try #require(der.firstRange(of: [0x04, 0x22, 0x04, 0x20]))
        var inner = der
        inner.replaceSubrange(octets.lowerBound..<(octets.lowerBound + 2), with: [0x04, 0x81, 0x22])
        inner[1] += 1
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: pem(inner)) }
    }

    @Test("an encrypted private key is refused without asking for a pass phrase")
    func encryptedKey() throws {
        let dir = try TemporaryDirectory()
        let plain = dir.path("plain.pem"), encrypted = dir.path("encrypted.pem")
        try OpenSSLTool.run(["genpkey", "-algorithm", "ed25519", "-out", plain])
        try OpenSSLTool.run(["pkey", "-in", plain, "-aes256", "-passout", "pass:x", "-out", encrypted])
        let text = try String(contentsOfFile: encrypted, encoding: .utf8)
        #expect(throws: CryptoError.self) { try SigningKey(pemRepresentation: text) }
        #expect(throws: CryptoError.self) { try PublicKey(pemRepresentation: text) }
    }

    @Test("keys of other algorithms are refused")
    func otherAlgorithm() throws {
        let dir = try TemporaryDirectory()
        let ec = dir.path("ec.pem")
        try OpenSSLTool.run(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", ec])
        #expect(throws: CryptoError.notEd25519("the PEM holds a key of another algorithm")) {
            try SigningKey(pemRepresentation: String(contentsOfFile: ec, encoding: .utf8))
        }
    }

    @Test("interop: a key from `openssl genpkey` signs here and `openssl pkeyutl` verifies")
    func opensslVerifiesOurs() throws {
        let dir = try TemporaryDirectory()
        let keyPath = dir.path("key.pem"), pubPath = dir.path("pub.pem")
        let messagePath = dir.path("msg"), sigPath = dir.path("sig")
        try OpenSSLTool.run(["genpkey", "-algorithm", "ed25519", "-out", keyPath])
        try OpenSSLTool.run(["pkey", "-in", keyPath, "-pubout", "-out", pubPath])
        let key = try SigningKey(pemRepresentation: String(contentsOfFile: keyPath, encoding: .utf8))
        let filePublic = try PublicKey(pemRepresentation: String(contentsOfFile: pubPath, encoding: .utf8))
        #expect(filePublic == key.publicKey)
        let message = Array("DSSEv1 interop message ✓".utf8)
        try Data(message).write(to: URL(fileURLWithPath: messagePath))
        try Data(key.signature(for: message)).write(to: URL(fileURLWithPath: sigPath))
        try OpenSSLTool.run(["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", messagePath, "-sigfile", sigPath])
        // The same check fails for a different message, so the command above really verified.
        try Data(message + [0x21]).write(to: URL(fileURLWithPath: messagePath))
        #expect(throws: OpenSSLTool.Failure.self) {
            try OpenSSLTool.run(["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", messagePath, "-sigfile", sigPath])
        }
    }

    /// The y-coordinates of the eight points of small order, little-endian (libsodium's
    /// `ge25519_has_small_order` list; the order-8 ones derived again from the curve equation).
    static let smallOrderYs = [
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ]

    @Test("a point of small order, or y not reduced modulo p, is refused as a key, raw or in PEM")
    func weakKeysRefused() throws {
        var encodings: [[UInt8]] = []
        // Every small-order point with either sign of x, and y = p, p + 1, p + 18 and 2^255 − 1
        // (second encodings of y = 0, 1, 18 and 18 + 19 − 1), with either sign.
        let aboveP = ["edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
                      "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"]
        for y in Self.smallOrderYs + aboveP {
            for sign: UInt8 in [0, 0x80] {
                var e = bytes(hex: y)
                e[31] |= sign
                encodings.append(e)
            }
        }
        for e in encodings {
            #expect(throws: CryptoError.self, "\(hex(e))") { try PublicKey(rawRepresentation: e) }
            do {
                _ = try PublicKey(rawRepresentation: e)
            } catch {
                guard case let .unusableKey(why) = error else { Issue.record("\(hex(e)): \(error)"); continue }
                #expect(why.contains(Self.smallOrderYs.contains(hex(e.prefix(31) + [e[31] & 0x7F])) ? "small order" : "not reduced"), "\(hex(e)): \(why)")
            }
        }
        // The same key in an SPKI PEM block.
        let der = bytes(hex: "302a300506032b6570032100") + bytes(hex: Self.smallOrderYs[1])
        let pem = "-----BEGIN PUBLIC KEY-----\n\(Data(der).base64EncodedString())\n-----END PUBLIC KEY-----\n"
        do {
            _ = try PublicKey(pemRepresentation: pem)
            Issue.record("a small-order key in PEM was accepted")
        } catch {
            guard case let .unusableKey(why) = error else { Issue.record("\(error)"); return }
            #expect(why.contains("small order"), "\(why)")
        }
        // Just below the refused ones: y = p − 2 is no small-order point, so it parses.
        _ = try PublicKey(rawRepresentation: bytes(hex: "ebffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"))
    }

    @Test("why: OpenSSL verifies the signature R = identity, S = 0 of any message under the identity as key")
    func openSSLAcceptsSmallOrderForgery() throws {
        let dir = try TemporaryDirectory()
        let pubPath = dir.path("pub.pem"), messagePath = dir.path("msg"), sigPath = dir.path("sig")
        let der = bytes(hex: "302a300506032b6570032100") + bytes(hex: Self.smallOrderYs[1])
        try "-----BEGIN PUBLIC KEY-----\n\(Data(der).base64EncodedString())\n-----END PUBLIC KEY-----\n".write(toFile: pubPath, atomically: true, encoding: .utf8)
        try Data(bytes(hex: Self.smallOrderYs[1]) + [UInt8](repeating: 0, count: 32)).write(to: URL(fileURLWithPath: sigPath))
        for message in ["any statement", "another one"] {
            try Data(message.utf8).write(to: URL(fileURLWithPath: messagePath))
            try OpenSSLTool.run(["pkeyutl", "-verify", "-pubin", "-inkey", pubPath, "-rawin", "-in", messagePath, "-sigfile", sigPath])
        }
    }

    /// y-coordinates (little-endian) and whether they decode to a point, computed apart from
    /// this code (Python, Euler's criterion for (y² − 1)/(d·y² + 1) modulo p).
    static let decodings: [(y: String, isPoint: Bool)] = [
        ("0200000000000000000000000000000000000000000000000000000000000000", false),
        ("0300000000000000000000000000000000000000000000000000000000000000", true),
        ("0700000000000000000000000000000000000000000000000000000000000000", false),
        ("0900000000000000000000000000000000000000000000000000000000000000", true),
        ("1100000000000000000000000000000000000000000000000000000000000000", false),
        ("1200000000000000000000000000000000000000000000000000000000000000", true),
        ("ea29aff4f763a1dbbe46bc514fcb1b30a3242b07a477117fc79e2e476c94e449", false),
        ("03e0769b10886aef0ff2170851dd67d41755c87037c4319d9901e7fdf518c405", true),
        ("ad4063bd788deb6e33c38277838197a09aea6c4c94ead7fb948da1f6bac4476e", false),
        ("ab67eec2395b9f39493bac6d9b3fb81c7c4ba7fbd7f0c73bd84e7970352d3553", true),
        ("c1084b5865d0b5ac17a37b858a1d96a8cc29b152ff7111b5f830b7476e496428", false),
        ("d1eef6b6e884ad072a37ac1bccb8f1f559a92374f83401790bd52a53e46bf17a", true),
        ("ac9f23c193df1aa65333ee0cfe836f561f91d9ff5003efc2803a2b3e81800800", false),
        ("9e83f0f4b6c672060db4db2f5c7fdba3518d8447350c338b083bbb3a0e0d296e", true),
        ("451c2e2d8ebde07da0d3cb5cde1eedfc1e819204e9c66d37ffa9e2d96043605d", false),
    ]

    @Test("a key's bytes must decode to a point of the curve (RFC 8032 §5.1.3), with either sign of x")
    func pointDecoding() throws {
        for (y, isPoint) in Self.decodings {
            for sign: UInt8 in [0, 0x80] {
                var raw = bytes(hex: y)
                raw[31] |= sign
                let key = try PublicKey(rawRepresentation: raw)
                if isPoint {
                    try key.checkIsPoint()
                } else {
                    #expect(throws: CryptoError.self, "\(hex(raw))") { try key.checkIsPoint() }
                }
            }
        }
        // Real keys: RFC 8032's and fresh ones.
        for vector in Self.vectors { try PublicKey(rawRepresentation: bytes(hex: vector.publicKey)).checkIsPoint() }
        for _ in 0..<50 { try SigningKey.generate().publicKey.checkIsPoint() }
    }

    @Test("interop: `openssl pkeyutl` signs with our PEM key and we verify")
    func weVerifyOpenSSLs() throws {
        let dir = try TemporaryDirectory()
        let keyPath = dir.path("key.pem"), messagePath = dir.path("msg"), sigPath = dir.path("sig")
        let key = try SigningKey.generate()
        try key.pemRepresentation().write(toFile: keyPath, atomically: true, encoding: .utf8)
        let message = Array("signed by the openssl tool".utf8)
        try Data(message).write(to: URL(fileURLWithPath: messagePath))
        try OpenSSLTool.run(["pkeyutl", "-sign", "-inkey", keyPath, "-rawin", "-in", messagePath, "-out", sigPath])
        let signature = try [UInt8](Data(contentsOf: URL(fileURLWithPath: sigPath)))
        #expect(signature.count == 64)
        #expect(key.publicKey.isValidSignature(signature, for: message))
        // Ed25519 is deterministic: OpenSSL's signature equals ours.
        #expect(try key.signature(for: message) == signature)
    }
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-crypto-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    deinit { try? FileManager.default.removeItem(at: url) }
}

/// Runs the `openssl` command-line tool.
enum OpenSSLTool {
    struct Failure: Error, CustomStringConvertible {
        var arguments: [String]
        var status: Int32
        var description: String { "openssl \(arguments.joined(separator: " ")) exited \(status)" }
    }

    static func run(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw Failure(arguments: arguments, status: process.terminationStatus) }
    }
}
