import Dispatch
import LedgerCore
import LedgerCrypto

/// Ed25519 signatures to check together: the cost of verifying a log or a group commit is almost
/// all signature checks, and they are independent of one another.
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

    /// Checks every signature, on this thread, with one OpenSSL context for each key.
    func verify() {
        var verifiers: [Digest: SignatureVerifier] = [:]
        valid = items.map { item in
            let verifier = verifiers[item.key.keyID] ?? SignatureVerifier(item.key)
            verifiers[item.key.keyID] = verifier
            return verifier.isValidSignature(item.signature, for: item.message)
        }
    }

    /// The positions whose signatures did not verify, in order (after ``verify()``).
    var failedPositions: [UInt64] {
        var out: [UInt64] = []
        for (item, ok) in zip(items, valid) where !ok && out.last != item.position { out.append(item.position) }
        return out
    }
}

/// Signatures checked on every core while the caller goes on with the statements after them.
///
/// The caller fills batches of `batchSize` signatures. One helper thread for each other core
/// checks them as they come; the caller checks batches itself whenever more than `queued` wait
/// (it is then ahead of the helpers), and checks those left when it finishes. So every core
/// works while there is work, and there are never more busy threads than cores: batches handed
/// to dispatch queues, each spread over every core while the caller ran on, kept three threads
/// busy on two cores and left signature checks waiting behind each other.
final class SignatureChecks: @unchecked Sendable {
    private let batchSize: Int
    private let queued: Int
    private var filling = SignatureBatch()
    private let condition = Condition()
    /// Batches waiting to be checked, oldest first (at most `queued` + 1: taking the first moves
    /// few); how many helpers are checking one.
    private var waiting: [SignatureBatch] = []
    private var checking = 0
    /// Positions whose signatures failed, from the batches checked so far, in no order.
    private var failed: [UInt64] = []
    private var closed = false
    private var helpersStarted = false
    private let helpers = DispatchGroup()

    init(batchSize: Int, queued: Int) {
        self.batchSize = max(1, batchSize)
        self.queued = max(1, queued)
    }

    /// Adds every signature of `envelope`, at `position`, with the keys the rules resolved for it.
    func add(_ envelope: Envelope, keys: [PublicKey], position: UInt64) {
        filling.add(envelope, keys: keys, position: position)
        guard filling.items.count >= batchSize else { return }
        submit(filling)
        filling = SignatureBatch()
    }

    private func submit(_ batch: SignatureBatch) {
        startHelpers()
        condition.lock()
        waiting.append(batch)
        condition.signal()
        while waiting.count > queued, let ahead = take() { check(ahead) }
        condition.unlock()
    }

    /// The oldest batch waiting, if any (the lock held).
    private func take() -> SignatureBatch? {
        waiting.isEmpty ? nil : waiting.removeFirst()
    }

    /// Checks `batch` with the lock released, and records its failures (the lock held).
    private func check(_ batch: SignatureBatch) {
        condition.unlock()
        batch.verify()
        let failures = batch.failedPositions
        condition.lock()
        failed += failures
    }

    private func startHelpers() {
        guard !helpersStarted else { return }
        helpersStarted = true
        for _ in 1..<max(workerCount, 1) {
            startThread(in: helpers) { [self] in help() }
        }
    }

    private func help() {
        condition.lock()
        while true {
            if let batch = take() {
                checking += 1
                check(batch)
                checking -= 1
                // Only the caller, finishing, waits for the checks running to end.
                if checking == 0, closed { condition.broadcast() }
                continue
            }
            if closed { break }
            condition.wait()
        }
        condition.unlock()
    }

    /// Drops the signatures not yet being checked, and waits for the helpers to return: for a
    /// caller that stops early (an I/O error, say). A ``finish()`` after it checks nothing that
    /// was dropped.
    func cancel() {
        filling = SignatureBatch()
        condition.lock()
        closed = true
        waiting.removeAll()
        condition.broadcast()
        while checking > 0 { condition.wait() }
        condition.unlock()
        helpers.wait()
    }

    /// Checks the signatures left, here and on the helpers, and waits for every check: the
    /// positions whose signatures failed, in order, each once. The helpers return once this or
    /// ``cancel()`` has run, so one of them must. Calling it again answers the same.
    func finish() -> [UInt64] {
        let last = filling
        filling = SignatureBatch()
        condition.lock()
        closed = true
        condition.broadcast()
        if !last.items.isEmpty { check(last) }
        while let batch = take() { check(batch) }
        while checking > 0 { condition.wait() }
        // An envelope's signatures are all in one batch, so a position fails in one at most.
        let positions = failed.sorted()
        condition.unlock()
        helpers.wait()
        return positions
    }
}
