#if canImport(Glibc)
import Glibc
#endif
import LedgerCrypto

// The tables of the disputed-facts index: node names, ids to nodes, entry ids to nodes.
//
// They are open-addressing tables over flat arrays, so that a snapshot writes them as they
// are and reads them back without hashing anything again (rebuilding a million-entry index's
// dictionaries was most of loading its snapshot), and an id costs its bytes once, not a
// string object and a dictionary entry.
//
// Slots are found from a keyed hash (IDHasher) with a key drawn at random when a state is
// made and kept in its snapshots, so that no one appending statements can choose ids that
// collide in the tables and make a replay quadratic.

/// SipHash-1-3 with a random key: what Swift's own dictionaries use, so ids collide in a table
/// only by chance.
struct IDHasher: Sendable, Hashable {
    var k0: UInt64
    var k1: UInt64

    static func random() -> IDHasher {
        var generator = SystemRandomNumberGenerator()
        return IDHasher(k0: generator.next(), k1: generator.next())
    }

    func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var state = SipState(k0: k0, k1: k1)
        let count = bytes.count
        var offset = 0
        while offset + 8 <= count {
            state.compress(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)))
            offset += 8
        }
        var last = UInt64(truncatingIfNeeded: count) << 56
        for i in 0..<(count - offset) { last |= UInt64(bytes[offset + i]) << UInt64(8 * i) }
        state.compress(last)
        return state.finalize()
    }

    /// An entry id's first word spread by the key: entry ids are SHA-256 outputs, as good as
    /// random already, so a keyed multiplication is enough to keep anyone grinding record bytes
    /// from choosing where they land.
    func spread(_ word: UInt64) -> UInt64 { (word ^ k0) &* (k1 | 1) }

    private struct SipState {
        var v0, v1, v2, v3: UInt64

        init(k0: UInt64, k1: UInt64) {
            v0 = k0 ^ 0x736f_6d65_7073_6575
            v1 = k1 ^ 0x646f_7261_6e64_6f6d
            v2 = k0 ^ 0x6c79_6765_6e65_7261
            v3 = k1 ^ 0x7465_6462_7974_6573
        }

        mutating func round() {
            v0 &+= v1; v1 = v1.rotated(13); v1 ^= v0; v0 = v0.rotated(32)
            v2 &+= v3; v3 = v3.rotated(16); v3 ^= v2
            v0 &+= v3; v3 = v3.rotated(21); v3 ^= v0
            v2 &+= v1; v1 = v1.rotated(17); v1 ^= v2; v2 = v2.rotated(32)
        }

        mutating func compress(_ m: UInt64) {
            v3 ^= m
            round()
            v0 ^= m
        }

        mutating func finalize() -> UInt64 {
            v2 ^= 0xff
            round()
            round()
            round()
            return v0 ^ v1 ^ v2 ^ v3
        }
    }
}

extension UInt64 {
    fileprivate func rotated(_ n: UInt64) -> UInt64 { self << n | self >> (64 - n) }
}

/// Each node's id, one after another in one byte array.
struct NodeNames: Sendable, Equatable {
    var bytes: [UInt8] = []
    /// Where each node's id ends in ``bytes``.
    var ends: [UInt64] = []

    var count: Int { ends.count }

    mutating func append(_ id: String) {
        bytes.append(contentsOf: id.utf8)
        ends.append(UInt64(bytes.count))
    }

    func range(of node: Int32) -> Range<Int> {
        let n = Int(node)
        return (n == 0 ? 0 : Int(ends[n - 1]))..<Int(ends[n])
    }

    func name(of node: Int32) -> String {
        String(decoding: bytes[range(of: node)], as: UTF8.self)
    }

    func hasName(_ node: Int32, _ id: UnsafeRawBufferPointer) -> Bool {
        let range = range(of: node)
        guard range.count == id.count else { return false }
        return bytes.withUnsafeBytes { all in
            range.isEmpty || memcmp(all.baseAddress! + range.lowerBound, id.baseAddress!, range.count) == 0
        }
    }

    /// What makes the names unusable for `nodes` nodes, if anything.
    func inconsistency(nodes: Int) -> String? {
        guard ends.count == nodes else { return "the names and the nodes differ in number" }
        var previous: UInt64 = 0
        for end in ends {
            guard end >= previous else { return "a name ends before it starts" }
            previous = end
        }
        guard previous == UInt64(bytes.count) else { return "the names do not fill their bytes" }
        return nil
    }
}

/// Ids of one kind (facts, claims or evidence items) and their nodes, by linear probing. A slot
/// is 0 when empty, else the id's hash's top 32 bits above its node + 1; a slot's place is the
/// top bits of the hash, so the table grows without hashing ids again.
struct NameTable: Sendable {
    private(set) var slots = [UInt64](repeating: 0, count: 16)
    private(set) var count = 0

    private var shift: UInt64 { UInt64(64 - slots.count.trailingZeroBitCount) }

    /// The node whose id has `hash` and passes `isNode` (compares its name), if any.
    func find(_ hash: UInt64, _ isNode: (Int32) -> Bool) -> Int32? {
        let mask = slots.count - 1
        var i = Int(hash >> shift)
        let tag = hash >> 32
        while true {
            let slot = slots[i]
            if slot == 0 { return nil }
            if slot >> 32 == tag, isNode(Int32(truncatingIfNeeded: slot) - 1) { return Int32(truncatingIfNeeded: slot) - 1 }
            i = (i + 1) & mask
        }
    }

    /// Adds `node`, whose id has `hash` and is not in the table.
    mutating func insert(_ hash: UInt64, _ node: Int32) {
        if isFull(count + 1, slots.count) { grow() }
        place((hash >> 32) << 32 | UInt64(UInt32(node + 1)))
        count += 1
    }

    private mutating func place(_ slot: UInt64) {
        let mask = slots.count - 1
        var i = Int(slot >> shift)
        while slots[i] != 0 { i = (i + 1) & mask }
        slots[i] = slot
    }

    private mutating func grow() {
        let old = slots
        slots = [UInt64](repeating: 0, count: old.count * 2)
        for slot in old where slot != 0 { place(slot) }
    }

    /// Every node in the table, in no particular order.
    var nodes: some Sequence<Int32> { slots.lazy.filter { $0 != 0 }.map { Int32(truncatingIfNeeded: $0) - 1 } }

    init() {}

    /// A table of `slots` as a snapshot stored them, to be checked (``problem(nodes:)``) before use.
    init(stored slots: [UInt64]) {
        self.slots = slots
        count = slots.count(where: { $0 != 0 })
    }

    /// What makes the table unusable over `nodes` nodes, if anything.
    func problem(nodes: Int) -> TableError? {
        if let problem = TableError.check(capacity: slots.count, count: count) { return problem }
        // A slot holds its node + 1, so 1 to `nodes`.
        for slot in slots where slot != 0 && (slot & 0xFFFF_FFFF == 0 || slot & 0xFFFF_FFFF > UInt64(nodes)) { return .nodeOutOfRange }
        let shift = self.shift
        return allReachable(slots.count, isEmpty: { slots[$0] == 0 }, home: { Int(slots[$0] >> shift) }) ? nil : .unreachable
    }
}

/// Entry ids and the node each names, keyed by the ids' first eight bytes (entry ids are
/// SHA-256 outputs), with the rare second id of a shared first word kept whole: lookups are
/// exact, at a third of the memory of whole-id keys.
struct EntryTable: Sendable {
    /// Each slot's entry id's first word and its node, or -1 for an empty slot.
    private(set) var words = [UInt64](repeating: 0, count: 16)
    private(set) var nodes = [Int32](repeating: -1, count: 16)
    private(set) var count = 0
    /// Ids whose first word an earlier id has.
    var collided: [Digest: Int32] = [:]
    /// Keys the slots' places.
    let hasher: IDHasher

    init(hasher: IDHasher) {
        self.hasher = hasher
    }

    private func home(_ word: UInt64) -> Int { Int(hasher.spread(word) >> UInt64(64 - words.count.trailingZeroBitCount)) }

    private func slot(of word: UInt64) -> Int? {
        let mask = words.count - 1
        var i = home(word)
        while nodes[i] >= 0 {
            if words[i] == word { return i }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Records that `entryID`, never inserted before, names `node`.
    mutating func insert(_ entryID: Digest, _ node: Int32) {
        let word = entryID.leadingWord
        if slot(of: word) != nil {
            collided[entryID] = node
            return
        }
        if isFull(count + 1, words.count) { grow() }
        place(word, node)
        count += 1
    }

    private mutating func place(_ word: UInt64, _ node: Int32) {
        let mask = words.count - 1
        var i = home(word)
        while nodes[i] >= 0 { i = (i + 1) & mask }
        words[i] = word
        nodes[i] = node
    }

    private mutating func grow() {
        let (oldWords, oldNodes) = (words, nodes)
        words = [UInt64](repeating: 0, count: oldWords.count * 2)
        nodes = [Int32](repeating: -1, count: oldWords.count * 2)
        for (word, node) in zip(oldWords, oldNodes) where node >= 0 { place(word, node) }
    }

    /// The node `entryID` names. Exact for every id inserted; an id never inserted may answer
    /// the node of another with the same first word, which the full rules then ignore.
    subscript(entryID: Digest) -> Int32? {
        if let node = collided[entryID] { return node }
        return slot(of: entryID.leadingWord).map { nodes[$0] }
    }

    /// Every slot's id's first word and node, in no particular order (``collided`` holds the rest).
    var contents: [(word: UInt64, node: Int32)] {
        zip(words, nodes).filter { $0.1 >= 0 }.map { ($0.0, $0.1) }
    }

    /// A table of slots as a snapshot stored them, to be checked (``problem(nodes:)``) before use.
    init(hasher: IDHasher, words: [UInt64], nodes: [Int32], collided: [Digest: Int32]) {
        self.hasher = hasher
        self.words = words
        self.nodes = nodes
        self.collided = collided
        count = nodes.count(where: { $0 >= 0 })
    }

    /// What makes the table unusable over `nodeCount` nodes, if anything.
    func problem(nodes nodeCount: Int) -> TableError? {
        guard words.count == nodes.count else { return .lengths }
        if let problem = TableError.check(capacity: words.count, count: count) { return problem }
        guard nodes.allSatisfy({ $0 >= -1 && $0 < nodeCount }), collided.values.allSatisfy({ $0 >= 0 && $0 < nodeCount }) else {
            return .nodeOutOfRange
        }
        return allReachable(words.count, isEmpty: { nodes[$0] < 0 }, home: { home(words[$0]) }) ? nil : .unreachable
    }
}

/// Whether `count` entries fill a table of `capacity` slots more than either table is let fill:
/// beyond it, failed lookups probe long runs.
private func isFull(_ count: Int, _ capacity: Int) -> Bool { count * 4 > capacity * 3 }

/// Why stored table slots cannot be used.
enum TableError: Error, CustomStringConvertible {
    case capacity, full, lengths, nodeOutOfRange, unreachable

    static func check(capacity: Int, count: Int) -> TableError? {
        guard capacity >= 16, capacity.nonzeroBitCount == 1 else { return .capacity }
        // A table with no free slot would make a failed lookup probe forever.
        return isFull(count, capacity) ? .full : nil
    }

    var description: String {
        switch self {
        case .capacity: "a table's size is not a power of two"
        case .full: "a table is fuller than any table is let grow"
        case .lengths: "a table's arrays differ in length"
        case .nodeOutOfRange: "a table names a node that does not exist"
        case .unreachable: "a table holds an entry its lookups cannot reach"
        }
    }
}

/// Whether every occupied slot of a linear-probing table is reached by probing from its home:
/// no free slot lies between the two. One pass, from a free slot (there is one: tables are
/// never full).
private func allReachable(_ capacity: Int, isEmpty: (Int) -> Bool, home: (Int) -> Int) -> Bool {
    guard let free = (0..<capacity).first(where: isEmpty) else { return false }
    var runStart = free + 1
    for step in 1...capacity {
        let i = (free + step) % capacity
        if isEmpty(i) {
            runStart = i + 1
            continue
        }
        // Probing from the home reaches i only if the home lies in the run of occupied slots
        // that ends at i.
        let fromRun = (i - runStart + capacity) % capacity
        let fromHome = (i - home(i) + capacity) % capacity
        if fromHome > fromRun { return false }
    }
    return true
}
