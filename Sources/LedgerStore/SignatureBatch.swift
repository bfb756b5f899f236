import Dispatch
import LedgerCore
import LedgerCrypto

/// Ed25519 signatures checked together on every core: the cost of verifying a log or a group
/// commit is almost all signature checks, and they are independent of one another.
final class SignatureBatch: @unchecked Sendable {
    /// One signature to check, with the position it belongs to.
    struct Item {
        var position: UInt64
        var key: PublicKey
        var signature: [UInt8]
        var message: [UInt8]
    }

    private(set) var items: [Item] = []
    private var valid: [Bool] = []

    var isEmpty: Bool { items.isEmpty }

    /// Adds every signature of `envelope`, at `position`, with the keys the rules resolved for it.
    func add(_ envelope: Envelope, keys: [PublicKey], position: UInt64) {
        let message = envelope.signedBytes
        for (key, signature) in zip(keys, envelope.signatures) {
            items.append(Item(position: position, key: key, signature: signature.signature, message: message))
        }
    }

    /// Checks every signature, in parallel when there are enough to share out.
    func verify() {
        valid = [Bool](repeating: false, count: items.count)
        let chunk = 32
        let chunks = (items.count + chunk - 1) / chunk
        if chunks <= 1 {
            for i in items.indices { valid[i] = items[i].key.isValidSignature(items[i].signature, for: items[i].message) }
            return
        }
        items.withUnsafeBufferPointer { items in
            valid.withUnsafeMutableBufferPointer { valid in
                let shared = Shared(items: items, results: valid)
                DispatchQueue.concurrentPerform(iterations: chunks) { c in
                    for i in (c * chunk)..<min(shared.items.count, (c + 1) * chunk) {
                        let item = shared.items[i]
                        shared.results[i] = item.key.isValidSignature(item.signature, for: item.message)
                    }
                }
            }
        }
    }

    /// The positions whose signatures did not verify, in order (after ``verify()``).
    var failedPositions: [UInt64] {
        var out: [UInt64] = []
        for (item, ok) in zip(items, valid) where !ok && out.last != item.position { out.append(item.position) }
        return out
    }

    /// The items, read by every iteration, and the results, each element written by one
    /// iteration only: safe to share while `verify()` waits for them all.
    private struct Shared: @unchecked Sendable {
        let items: UnsafeBufferPointer<Item>
        let results: UnsafeMutableBufferPointer<Bool>
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
