import Dispatch
import LedgerCore
import Synchronization
@testable import LedgerProjections
import Testing

@Suite("Columns read from a snapshot as used")
struct ColumnTests {
    struct Holder: Codable, Equatable {
        var numbers: Column<Int32>
    }

    /// A column of `count` random numbers, and the same read back lazily from its snapshot bytes.
    static func lazyPair(count: Int, seed: UInt64) throws -> (expected: [Int32], lazy: Column<Int32>) {
        var random = SplitMix64(seed: seed)
        let expected = (0..<count).map { _ in Int32(truncatingIfNeeded: random.next()) }
        let bytes = try SnapshotBinary.encode(Holder(numbers: Column(expected)))
        let holder = try SnapshotBinary.decode(Holder.self, from: bytes)
        return (expected, holder.numbers)
    }

    @Test("a lazy column reads as the column written, element by element, in ranges and whole, with nothing read until used")
    func readsAsWritten() throws {
        let (expected, lazy) = try Self.lazyPair(count: 100_000, seed: 3)
        #expect(lazy.blocksRead == 0)
        var random = SplitMix64(seed: 4)
        for _ in 0..<500 {
            let i = Int(random.next() % UInt64(expected.count))
            #expect(lazy[i] == expected[i])
        }
        #expect(lazy.blocksRead > 0 && lazy.blocksRead <= 500)
        // Ranges across a block's end: gathered, not read whole.
        let perBlock = Column<Int32>.blockBytes / 4
        #expect(lazy.withElements(in: (perBlock - 3)..<(perBlock + 3)) { Array($0) } == Array(expected[(perBlock - 3)..<(perBlock + 3)]))
        #expect(lazy.elements == expected)
    }

    @Test("copies of a lazy column are values: changing one or appending to it leaves the other as it was")
    func copiesAreValues() throws {
        let (expected, lazy) = try Self.lazyPair(count: 10_000, seed: 5)
        var copy = lazy
        copy[7] = 99
        copy.append(42)
        #expect(lazy[7] == expected[7] && copy[7] == 99)
        #expect(lazy.count == expected.count && copy.count == expected.count + 1 && copy[expected.count] == 42)
        // The original, never changed, written again reads the same.
        let again = try SnapshotBinary.decode(Holder.self, from: SnapshotBinary.encode(Holder(numbers: lazy)))
        #expect(again.numbers.elements == expected)
        // Changed in place where it is: in a block read in, not yet in the buffer.
        var changed = lazy
        changed[9_000] = 1
        changed[9_001] = 2
        #expect(changed[9_000] == 1 && changed[9_001] == 2 && changed[8_999] == expected[8_999])
        #expect(changed.elements == expected[..<9_000] + [1, 2] + expected[9_002...])
    }

    @Test("one lazy column read from every core at once reads each block once and answers as written")
    func concurrentReads() throws {
        let (expected, lazy) = try Self.lazyPair(count: 200_000, seed: 6)
        let mismatches = Mutex(0)
        DispatchQueue.concurrentPerform(iterations: 8) { worker in
            var random = SplitMix64(seed: UInt64(worker))
            for _ in 0..<20_000 {
                let i = Int(random.next() % UInt64(expected.count))
                if lazy[i] != expected[i] { mismatches.withLock { $0 += 1 } }
            }
        }
        #expect(mismatches.withLock { $0 } == 0)
        #expect(lazy.blocksRead <= (expected.count * 4 + Column<Int32>.blockBytes - 1) / Column<Int32>.blockBytes)
    }
}
