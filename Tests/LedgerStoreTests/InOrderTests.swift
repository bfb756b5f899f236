import Foundation
@testable import LedgerStore
import Testing

@Suite("Work produced on every core and consumed in order")
struct InOrderTests {
    /// Counts under a lock, from any thread.
    final class Tally: @unchecked Sendable {
        private let lock = NSLock()
        private var counts: [Int: Int] = [:]
        func add(_ key: Int) { lock.withLock { counts[key, default: 0] += 1 } }
        var snapshot: [Int: Int] { lock.withLock { counts } }
    }

    /// A result that notes, when dropped, whether that happens on the thread that made it.
    final class Token: @unchecked Sendable {
        let index: Int
        let maker = pthread_self()
        let drops: Tally

        init(_ index: Int, drops: Tally) {
            self.index = index
            self.drops = drops
        }

        deinit { drops.add(pthread_equal(maker, pthread_self()) != 0 ? 1 : 0) }
    }

    @Test("every result is produced once and consumed in order, whatever the window", arguments: [(0, 1), (1, 1), (7, 1), (200, 3), (1000, 8)])
    func order(count: Int, window: Int) throws {
        let produced = Tally()
        var consumed: [Int] = []
        inOrder(count, window: window) { index, _ in
            produced.add(index)
            // Uneven work, so that results come ready out of order.
            if index % 5 == 0 { usleep(UInt32(index % 3) * 200) }
            return index * 3
        } consume: { consumed.append($0) }
        #expect(consumed == (0..<count).map { $0 * 3 })
        #expect(produced.snapshot == Dictionary(uniqueKeysWithValues: (0..<count).map { ($0, 1) }))
    }

    struct Stop: Error {}

    @Test("a consumer that throws stops production within the window and sees nothing after")
    func stops() throws {
        let produced = Tally()
        var consumed: [Int] = []
        #expect(throws: Stop.self) {
            try inOrder(10_000, window: 4) { index, _ in
                produced.add(index)
                return index
            } consume: { (index) throws(Stop) in
                consumed.append(index)
                if index == 50 { throw Stop() }
            }
        }
        #expect(consumed == Array(0...50))
        // Produced at most a window ahead of what was consumed, and what workers had in hand.
        #expect(produced.snapshot.count <= 51 + 4 + workerCount)
    }

    @Test("results are dropped on the thread that produced them, each once")
    func drops() throws {
        let drops = Tally()
        do {
            var seen = 0
            inOrder(400, window: 6) { index, _ in Token(index, drops: drops) } consume: { token in
                #expect(token.index == seen)
                seen += 1
            }
        }
        let counts = drops.snapshot
        #expect(counts[0, default: 0] + counts[1, default: 0] == 400)
        // With more than one core, helpers drop what they made; on one, the caller makes and drops all.
        #expect(counts[0, default: 0] < 40, "\(counts)")
    }

    @Test("each worker's scratch value is its own")
    func perWorker() throws {
        let scratch = PerWorker { [Int]() }
        inOrder(300, window: 4) { index, worker in
            scratch.with(worker) { $0.append(index) }
            return 0
        } consume: { _ in }
        var all: [Int] = []
        for worker in 0..<workerCount { scratch.with(worker) { all += $0 } }
        #expect(all.sorted() == Array(0..<300))
    }

    @Test("many callers at once, on the shared pool, each get their own results in order")
    func manyCallers() async throws {
        let answers = await withTaskGroup(of: Bool.self) { group in
            for caller in 0..<16 {
                group.addTask {
                    var consumed: [Int] = []
                    inOrder(300, window: 3) { index, _ in index * 7 + caller } consume: { consumed.append($0) }
                    return consumed == (0..<300).map { $0 * 7 + caller }
                }
            }
            var all: [Bool] = []
            for await answer in group { all.append(answer) }
            return all
        }
        #expect(answers.count == 16 && answers.allSatisfy { $0 })
    }

    @Test("helpers each run once, on threads of their own at once, and threads are used again")
    func helperThreads() {
        final class Rounds: @unchecked Sendable {
            let condition = Condition()
            var runs = 0
            var running = 0
            var mostAtOnce = 0
            /// Helpers that ran on a thread that had run one before.
            var reused = 0
        }
        // Rounds one after another: from the second on, the threads of the round before wait
        // for work. Within a round every helper waits until all of it is running, which only
        // threads of their own can do; a helper that waits too long gives up, so a failure
        // cannot hang the test.
        let tally = Rounds()
        // Threads of their own, apart from those the tests running alongside use.
        let threads = HelperThreads()
        for round in 0..<5 {
            let group = DispatchGroup()
            let helpers = 2 + round
            for _ in 0..<helpers {
                threads.start(in: group) {
                    tally.condition.lock()
                    tally.runs += 1
                    tally.running += 1
                    tally.mostAtOnce = max(tally.mostAtOnce, tally.running)
                    if Thread.current.threadDictionary["helper-ran"] != nil { tally.reused += 1 }
                    Thread.current.threadDictionary["helper-ran"] = true
                    tally.condition.broadcast()
                    let deadline = Condition.deadline(in: 5)
                    while tally.running < helpers, tally.condition.wait(until: deadline) {}
                    tally.condition.unlock()
                }
            }
            #expect(group.wait(timeout: .now() + 10) == .success, "round \(round): a helper never returned")
            tally.condition.lock()
            #expect(tally.mostAtOnce == helpers, "round \(round): \(tally.mostAtOnce) of \(helpers) helpers ran at once")
            tally.running = 0
            tally.mostAtOnce = 0
            tally.condition.unlock()
            // Until the round's threads wait for the next (or five seconds have passed).
            for _ in 0..<500 where threads.waiting < helpers { usleep(10_000) }
        }
        #expect(tally.runs == 2 + 3 + 4 + 5 + 6)
        // Each round after the first can use every thread of the round before: 2 + 3 + 4 + 5.
        #expect(tally.reused == 14, "\(tally.reused) of 20 helpers ran on a thread used before")
    }

    @Test("a helper handed to a thread as its wait runs out is still run")
    func helperAtTheDeadline() {
        // Threads that wait no time at all: nearly every helper is handed off while its thread
        // is timing out. A thread that left without looking for one would strand it.
        final class Count: @unchecked Sendable {
            let condition = Condition()
            var runs = 0
        }
        let threads = HelperThreads(linger: 0)
        let count = Count()
        var stranded = 0
        for _ in 0..<20_000 {
            let group = DispatchGroup()
            threads.start(in: group) {
                count.condition.lock()
                count.runs += 1
                count.condition.unlock()
            }
            if group.wait(timeout: .now() + 10) != .success { stranded += 1 }
            if stranded > 0 { break }
        }
        #expect(stranded == 0)
        count.condition.lock()
        #expect(count.runs == 20_000)
        count.condition.unlock()
    }
}
