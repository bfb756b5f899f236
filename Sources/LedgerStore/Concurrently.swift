#if canImport(Glibc)
import Glibc
#endif
import Dispatch

/// How many threads share work: one for each core online.
package let workerCount = max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))

/// `body(0)`, …, `body(count - 1)` run on every core, answered in order: the way the package
/// shares independent work between cores (checking signatures, building facts). For work whose
/// results are folded in order as they come, see ``inOrder(_:window:produce:consume:)``.
package func concurrently<T: Sendable>(_ count: Int, _ body: @Sendable (Int) -> T) -> [T] {
    var out = [T?](repeating: nil, count: count)
    out.withUnsafeMutableBufferPointer { buffer in
        let results = Results(buffer: buffer)
        DispatchQueue.concurrentPerform(iterations: count) { i in results.buffer[i] = body(i) }
    }
    return out.map { $0! }
}

/// Lets concurrent iterations write distinct elements of one buffer.
private struct Results<T>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<T?>
}

/// Produces `produce(0)`, …, `produce(count - 1)` on every core and hands each to `consume` on
/// the calling thread, in order, while later ones are produced: a fold in order (`consume`)
/// fed by work that needs none (`produce`), such as a replay applying records other cores
/// decode. At most `window` results wait ahead of the one being consumed.
///
/// One thread a core, the calling thread included: it produces whatever comes next whenever
/// the result it needs is not ready, so no core waits while work remains and no thread waits
/// for a core (handing every piece from one thread to others, with more threads than cores,
/// cost replays as much again as the work itself). `produce` is told which worker runs it
/// (0 is the calling thread), for memory of its own (``PerWorker``). A result consumed is
/// handed back to the helper that produced it, which drops it when it next takes work: freeing
/// memory allocated on another thread makes threads wait for each other's allocator locks. (What
/// is consumed after its helper has finished, or never consumed, is dropped at the end, here.)
///
/// `consume` gets each result `inout`, so that it can move parts out and back rather than copy
/// them (a copy of a decoded record retains each of its strings and arrays).
///
/// If `consume` throws, nothing more is produced, and the error is rethrown once every
/// worker has stopped.
package func inOrder<T: Sendable, E: Error>(
    _ count: Int, window: Int, produce: @Sendable (_ index: Int, _ worker: Int) -> T, consume: (inout T) throws(E) -> Void
) throws(E) {
    guard count > 0 else { return }
    let helpers = min(workerCount - 1, count - 1)
    let shared = Handoff<T>(count: count, window: max(window, 1), workers: helpers + 1)
    let done = DispatchGroup()
    let outcome: Result<Void, E> = withoutActuallyEscaping(produce) { produce in
        for worker in stride(from: 1, through: helpers, by: 1) {
            startThread(in: done) { shared.help(worker, produce) }
        }
        defer {
            shared.stop()
            done.wait()
        }
        return Result { () throws(E) in
            for index in 0..<count {
                var result = Optional(shared.take(index) { produce($0, 0) })
                try consume(&result!.value)
                shared.consumed(&result)
            }
        }
    }
    try outcome.get()
}

/// Runs `body` on a thread of its own, counted in `group` until it returns. For helpers that
/// wait for work: on the shared dispatch pool they would hold its threads while they wait, and,
/// when callers on that pool fill it, wait about a second for a thread to start on. If no
/// thread can be had, `body` does not run: the callers here do all the work themselves then.
func startThread(in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
    HelperThreads.shared.start(in: group, body)
}

/// The threads helpers run on. A thread whose helper has returned waits a while for the next:
/// a new thread can wait milliseconds before the scheduler moves it off the busy core it was
/// started from, and a group commit lasts tens of milliseconds, while a thread that waits where
/// it last ran is woken there.
final class HelperThreads: @unchecked Sendable {
    static let shared = HelperThreads()
    /// How long a thread waits for another helper before it ends, in seconds.
    private let linger: Int
    private let condition = Condition()
    /// Threads waiting, and the helpers handed to them and not yet taken.
    private var idle = 0
    private var jobs: [Job] = []

    init(linger: Int = 10) {
        self.linger = linger
    }

    /// A helper's body and the group that counts it.
    private final class Job: @unchecked Sendable {
        private var body: (@Sendable () -> Void)?
        private let group: DispatchGroup

        init(_ body: @escaping @Sendable () -> Void, _ group: DispatchGroup) {
            self.body = body
            self.group = group
        }

        /// Runs the body, and leaves the group only once the body (and all it holds) is
        /// released: a caller may lend `body` only until it is done waiting (`withoutActuallyEscaping`).
        func run() {
            body.take()?()
            group.leave()
        }
    }

    /// Runs `body` on a waiting thread, or on a new one; see ``startThread(in:_:)``.
    func start(in group: DispatchGroup, _ body: @escaping @Sendable () -> Void) {
        group.enter()
        let job = Job(body, group)
        condition.lock()
        let handedOff = idle > jobs.count
        if handedOff {
            jobs.append(job)
            // Every waiting thread looks: the others find nothing and wait again. One signal
            // lost (as some C libraries have lost them) would hold the caller for ``linger``.
            condition.broadcast()
        }
        condition.unlock()
        if handedOff { return }
        final class Start {
            let threads: HelperThreads
            let job: Job
            init(_ threads: HelperThreads, _ job: Job) {
                self.threads = threads
                self.job = job
            }
        }
        let context = Unmanaged.passRetained(Start(self, job)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { context in
            let (threads, job) = {
                let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
                return (start.threads, start.job)
            }()
            threads.serve(first: job)
            return nil
        }, context)
        guard created == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            group.leave()
            return
        }
        pthread_detach(thread)
    }

    /// A thread's life: `first`, then each helper handed to it, until none comes for a while.
    private func serve(first: consuming Job) {
        var job: Job? = first
        while let current = job.take() {
            current.run()
            job = next()
        }
    }

    /// Waits for the next helper, or `nil` once none has come for ``linger`` seconds. A thread
    /// looks for a helper before it gives up, so every helper handed off is taken.
    private func next() -> Job? {
        condition.lock()
        defer { condition.unlock() }
        idle += 1
        let deadline = Condition.deadline(in: linger)
        while jobs.isEmpty, condition.wait(until: deadline) {}
        idle -= 1
        return jobs.isEmpty ? nil : jobs.removeFirst()
    }

    /// How many threads are waiting for a helper, read under the lock.
    var waiting: Int {
        condition.lock()
        defer { condition.unlock() }
        return idle
    }
}

/// The results of ``inOrder(_:window:produce:consume:)`` between its workers, under one lock.
private final class Handoff<T: Sendable>: @unchecked Sendable {
    private let count: Int
    private let window: Int
    private let condition = Condition()
    /// The next index to produce, and how many results were consumed.
    private var next = 0
    private var consumedCount = 0
    /// Results produced and not yet taken, with the worker that produced each.
    private var ready: [Int: (value: T, worker: Int)] = [:]
    /// Consumed results, for the worker that produced them to drop.
    private var spent: [[T]]
    private var stopped = false

    init(count: Int, window: Int, workers: Int) {
        self.count = count
        self.window = window
        spent = Array(repeating: [], count: workers)
    }

    private var canClaim: Bool { !stopped && next < count && next - consumedCount < window }

    /// Result `index`, produced by whichever worker got to it, or here, by `produceHere`, while
    /// it is not ready and there is something to produce.
    func take(_ index: Int, produceHere: (Int) -> T) -> (value: T, worker: Int) {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result = ready.removeValue(forKey: index) { return result }
            if canClaim {
                let claimed = next
                next += 1
                condition.unlock()
                let value = produceHere(claimed)
                condition.lock()
                if claimed == index { return (value, 0) }
                ready[claimed] = (value, 0)
                continue
            }
            condition.wait()
        }
    }

    /// Records that `result` was consumed, and takes it to hand back to the helper that produced
    /// it (one the calling thread produced is left for the caller to drop). Taken under the lock,
    /// so that the helper, not this thread, holds the last reference.
    func consumed(_ result: inout (value: T, worker: Int)?) {
        condition.lock()
        consumedCount += 1
        if let worker = result?.worker, worker != 0 {
            do {
                let taken = result.take()!
                spent[worker].append(taken.value)
            }
        }
        condition.broadcast()
        condition.unlock()
    }

    /// A helper's loop: produce what comes next while there is room, drop what was consumed.
    func help(_ worker: Int, _ produce: (Int, Int) -> T) {
        condition.lock()
        while true {
            let claimable = canClaim
            guard claimable || (!stopped && next < count) else { break }
            if !claimable {
                condition.wait()
                continue
            }
            let claimed = next
            next += 1
            var dropped = spent[worker]
            spent[worker] = []
            condition.unlock()
            dropped.removeAll()
            let value = produce(claimed, worker)
            condition.lock()
            ready[claimed] = (value, worker)
            condition.broadcast()
        }
        var dropped = spent[worker]
        spent[worker] = []
        condition.unlock()
        dropped.removeAll()
    }

    /// Ends production: helpers finish what they are producing and return.
    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}

/// One value for each worker of ``inOrder(_:window:produce:consume:)``, each used only by its
/// worker's thread: scratch memory kept from one piece of work to the next.
package final class PerWorker<Value>: @unchecked Sendable {
    private let values: UnsafeMutableBufferPointer<Value>

    package init(_ make: () -> Value) {
        values = .allocate(capacity: workerCount)
        for i in 0..<workerCount { (values.baseAddress! + i).initialize(to: make()) }
    }

    deinit {
        values.baseAddress!.deinitialize(count: values.count)
        values.deallocate()
    }

    /// Calls `body` with worker `worker`'s value, to use and change.
    package func with<R, E: Error>(_ worker: Int, _ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try body(&values[worker])
    }
}

/// A lock and a condition to wait on under it: what threads sharing work here use to take
/// turns and to wake each other.
final class Condition: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        pthread_mutex_init(mutex, nil)
        // Deadlines on the monotonic clock: a change of the system's time moves none of them.
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(changed, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(changed)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }
    /// Waits, the lock released meanwhile, until woken (or spuriously): callers wait in a loop.
    func wait() { pthread_cond_wait(changed, mutex) }
    /// As ``wait()``, or until `deadline` (``deadline(in:)``): `false` once it has passed, or
    /// on any failure, so that no caller waits in a loop that never ends.
    func wait(until deadline: timespec) -> Bool {
        var deadline = deadline
        return pthread_cond_timedwait(changed, mutex, &deadline) == 0
    }

    /// The time `seconds` from now, for ``wait(until:)``.
    static func deadline(in seconds: Int) -> timespec {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        now.tv_sec += seconds
        return now
    }
    func signal() { pthread_cond_signal(changed) }
    func broadcast() { pthread_cond_broadcast(changed) }
}
