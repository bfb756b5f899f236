import Dispatch
import LedgerCore
import LedgerCrypto

/// Ed25519 signatures checked together on every core: the cost of verifying a log or a group
/// commit is almost all signature checks, and they are independent of one another.
final class SignatureBatch: @unchecked Sendable {
    /// One signature to check, with the position it belongs to.
    struct Item: Sendable {
        var position: UInt64
        var key: PublicKey
        var signature: [UInt8]
        var message: [UInt8]
    }

    private(set) var items: [Item] = []
    private var valid: [Bool] = []

    /// Adds every signature of `envelope`, at `position`, with the keys the rules resolved for it.
    func add(_ envelope: Envelope, keys: [PublicKey], position: UInt64) {
        let message = envelope.signedBytes
        for (key, signature) in zip(keys, envelope.signatures) {
            items.append(Item(position: position, key: key, signature: signature.signature, message: message))
        }
    }

    /// Checks every signature, 32 at a time on every core.
    func verify() {
        let items = items
        let chunk = 32
        valid = Array(
            concurrently((items.count + chunk - 1) / chunk) { c in
                items[(c * chunk)..<min(items.count, (c + 1) * chunk)].map { $0.key.isValidSignature($0.signature, for: $0.message) }
            }.joined())
    }

    /// The positions whose signatures did not verify, in order (after ``verify()``).
    var failedPositions: [UInt64] {
        var out: [UInt64] = []
        for (item, ok) in zip(items, valid) where !ok && out.last != item.position { out.append(item.position) }
        return out
    }
}

/// Signature batches checked on other threads while the caller goes on with the statements after
/// them: a batch starts once it holds `batchSize` signatures, and at most `inFlight` run at once
/// (starting another first waits for the oldest). Rules and decoding on the caller's thread then
/// overlap the signature checks instead of preceding them.
final class SignatureChecks {
    private let batchSize: Int
    private let inFlight: Int
    private var filling = SignatureBatch()
    private var running: [(batch: SignatureBatch, group: DispatchGroup)] = []
    /// Positions whose signatures failed, from the batches finished so far, in order.
    private var failed: [UInt64] = []

    init(batchSize: Int, inFlight: Int) {
        self.batchSize = batchSize
        self.inFlight = max(1, inFlight)
    }

    /// Adds every signature of `envelope`, at `position`, with the keys the rules resolved for it.
    func add(_ envelope: Envelope, keys: [PublicKey], position: UInt64) {
        filling.add(envelope, keys: keys, position: position)
        if filling.items.count >= batchSize {
            if running.count >= inFlight { finishOldest() }
            let batch = filling
            filling = SignatureBatch()
            let group = DispatchGroup()
            DispatchQueue.global().async(group: group) { batch.verify() }
            running.append((batch, group))
        }
    }

    private func finishOldest() {
        let (batch, group) = running.removeFirst()
        group.wait()
        failed += batch.failedPositions
    }

    /// Checks the signatures not yet started on this thread (and every core), waits for the
    /// batches running: the positions whose signatures failed, in order.
    func finish() -> [UInt64] {
        let last = filling
        filling = SignatureBatch()
        last.verify()
        while !running.isEmpty { finishOldest() }
        failed += last.failedPositions
        return failed
    }
}
