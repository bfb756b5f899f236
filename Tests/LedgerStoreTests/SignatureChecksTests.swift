import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerStore
import Testing

@Suite("Signatures checked on every core while the caller goes on")
struct SignatureChecksTests {
    /// Envelopes signed by one to three keys each; those at `bad` get one signature spoiled.
    static func envelopes(_ count: Int, bad: Set<Int>) throws -> [(Envelope, [PublicKey])] {
        let keys = try (1...3).map { try SigningKey(seed: [UInt8](repeating: UInt8($0), count: 32)) }
        return try (0..<count).map { i in
            var envelope = Envelope(payload: Array("statement \(i)".utf8), signatures: [])
            let signers = keys.prefix(1 + i % 3)
            for key in signers { try envelope.sign(with: key) }
            if bad.contains(i) { envelope.signatures[i % envelope.signatures.count].signature[5] ^= 1 }
            return (envelope, signers.map(\.publicKey))
        }
    }

    @Test("every failing position is found once and in order, whatever the batch size and queue", arguments: [(1, 1), (2, 1), (3, 16), (7, 2), (64, 16), (1000, 4)])
    func failures(batchSize: Int, queued: Int) throws {
        // Bad positions at the edges and side by side, among statements of one to three signatures.
        let bad: Set<Int> = [0, 5, 6, 41, 98, 99]
        let envelopes = try Self.envelopes(100, bad: bad)
        let checks = SignatureChecks(batchSize: batchSize, queued: queued)
        for (i, (envelope, keys)) in envelopes.enumerated() { checks.add(envelope, keys: keys, position: UInt64(1000 + i)) }
        let failed = checks.finish()
        #expect(failed == bad.sorted().map { UInt64(1000 + $0) })
        #expect(checks.finish() == failed)
    }

    @Test("no signature at all, and all good")
    func none() throws {
        #expect(SignatureChecks(batchSize: 4, queued: 2).finish() == [])
        let checks = SignatureChecks(batchSize: 4, queued: 2)
        for (i, (envelope, keys)) in try Self.envelopes(30, bad: []).enumerated() { checks.add(envelope, keys: keys, position: UInt64(i)) }
        #expect(checks.finish() == [])
    }

    @Test("a caller that stops early gets its helpers back, with nothing more checked after")
    func cancelled() throws {
        let checks = SignatureChecks(batchSize: 2, queued: 64)
        for (i, (envelope, keys)) in try Self.envelopes(60, bad: [59]).enumerated() { checks.add(envelope, keys: keys, position: UInt64(i)) }
        checks.cancel()
        // Returned, with the helpers; what was checked before is still right, the rest dropped.
        #expect(Set(checks.finish()).isSubset(of: [59]))
        // Nothing submitted: the last signatures are dropped unchecked.
        let unsubmitted = SignatureChecks(batchSize: 1000, queued: 1)
        for (i, (envelope, keys)) in try Self.envelopes(10, bad: [3]).enumerated() { unsubmitted.add(envelope, keys: keys, position: UInt64(i)) }
        unsubmitted.cancel()
        #expect(unsubmitted.finish() == [])
    }
}
