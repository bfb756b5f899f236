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

/// Each node's id, one after another in one byte column.
struct NodeNames: Sendable, Equatable {
    var bytes = Column<UInt8>()
    /// Where each node's id ends in ``bytes``.
    var ends = Column<UInt64>()

    var count: Int { ends.count }

    mutating func append(_ id: String) {
        var id = id
        id.withUTF8 { bytes.append(contentsOf: $0) }
        ends.append(UInt64(bytes.count))
    }

    /// Where `node`'s id lies in ``bytes``; `nil` if the node or its bounds are out of range
    /// (only in a damaged snapshot).
    func range(of node: Int32) -> Range<Int>? {
        let n = Int(node)
        guard n >= 0, n < ends.count else { return nil }
        let start = n == 0 ? 0 : ends[n - 1]
        let end = ends[n]
        guard start <= end, end <= UInt64(bytes.count) else { return nil }
        return Int(start)..<Int(end)
    }

    /// `node`'s id; `nil` as for ``range(of:)``.
    func name(of node: Int32) -> String? {
        range(of: node).map { bytes.withElements(in: $0) { String(decoding: $0, as: UTF8.self) } }
    }

    /// Whether `node`'s id is `id` (false for a node out of range).
    func hasName(_ node: Int32, _ id: UnsafeRawBufferPointer) -> Bool {
        guard let range = range(of: node), range.count == id.count else { return false }
        return range.isEmpty || bytes.withElements(in: range) { memcmp($0.baseAddress!, id.baseAddress!, range.count) == 0 }
    }
}

/// Ids of one kind (facts, claims or evidence items) and their nodes, by linear probing. A slot
/// is 0 when empty, else the id's hash's top 32 bits above its node + 1; a slot's place is the
/// top bits of the hash, so the table grows without hashing ids again.
///
/// Probes stop after a table's size: a table read from a damaged snapshot may be full.
struct NameTable: Sendable {
    private(set) var slots = Column<UInt64>(repeating: 0, count: 16)
    private(set) var count = 0

    private var shift: UInt64 { UInt64(64 - slots.count.trailingZeroBitCount) }

    /// The node whose id has `hash` and passes `isNode` (compares its name), if any.
    /// - Throws: if the table has no free slot (only one read from a damaged snapshot).
    func find(_ hash: UInt64, _ isNode: (Int32) -> Bool) throws(TableExhausted) -> Int32? {
        let mask = slots.count - 1
        var i = Int(hash >> shift)
        let tag = hash >> 32
        for _ in 0..<slots.count {
            let slot = slots[i]
            if slot == 0 { return nil }
            // Wrapping: a damaged slot's node is then out of range, and refused as one.
            let node = Int32(truncatingIfNeeded: slot) &- 1
            if slot >> 32 == tag, isNode(node) { return node }
            i = (i + 1) & mask
        }
        throw TableExhausted()
    }

    /// Adds `node`, whose id has `hash` and is not in the table.
    mutating func insert(_ hash: UInt64, _ node: Int32) {
        if isFull(count + 1, slots.count) { grow() }
        let slot = (hash >> 32) << 32 | UInt64(UInt32(node + 1))
        while !place(slot) { grow() }
        count += 1
    }

    /// Puts `slot` in the first free place from its home; false if there is none.
    private mutating func place(_ slot: UInt64) -> Bool {
        let mask = slots.count - 1
        var i = Int(slot >> shift)
        for _ in 0..<slots.count {
            if slots[i] == 0 {
                slots[i] = slot
                return true
            }
            i = (i + 1) & mask
        }
        return false
    }

    private mutating func grow() {
        let old = slots
        slots = Column(repeating: 0, count: old.count * 2)
        // Twice the room of every slot placed: each finds a free place.
        for slot in old where slot != 0 { _ = place(slot) }
    }

    /// Every node in the table, in no particular order.
    var nodes: some Sequence<Int32> { slots.lazy.filter { $0 != 0 }.map { Int32(truncatingIfNeeded: $0) &- 1 } }

    init() {}

    /// A table of `slots` and `count` as a snapshot stored them: `nil` unless its size is a power
    /// of two of at least 16. Its slots are not read (they are read as used).
    init?(stored slots: Column<UInt64>, count: Int) {
        guard slots.count >= 16, slots.count.nonzeroBitCount == 1, count >= 0, count <= slots.count else { return nil }
        self.slots = slots
        self.count = count
    }
}

/// Entry ids and the node each names, keyed by the ids' first eight bytes (entry ids are
/// SHA-256 outputs), with the rare second id of a shared first word kept whole: lookups are
/// exact, at a third of the memory of whole-id keys. Probes stop after the table's size.
struct EntryTable: Sendable {
    /// Each slot's entry id's first word and its node, or -1 for an empty slot.
    private(set) var words = Column<UInt64>(repeating: 0, count: 16)
    private(set) var nodes = Column<Int32>(repeating: -1, count: 16)
    private(set) var count = 0
    /// Ids whose first word an earlier id has.
    var collided: [Digest: Int32] = [:]
    /// Keys the slots' places.
    let hasher: IDHasher

    init(hasher: IDHasher) {
        self.hasher = hasher
    }

    private func home(_ word: UInt64) -> Int { Int(hasher.spread(word) >> UInt64(64 - words.count.trailingZeroBitCount)) }

    /// The slot holding `word`, or the free slot where it would go (`nil` for neither).
    private func probe(_ word: UInt64) -> (slot: Int, found: Bool)? {
        let mask = words.count - 1
        var i = home(word)
        for _ in 0..<words.count {
            if nodes[i] < 0 { return (i, false) }
            if words[i] == word { return (i, true) }
            i = (i + 1) & mask
        }
        return nil
    }

    /// Records that `entryID`, never inserted before, names `node`.
    mutating func insert(_ entryID: Digest, _ node: Int32) {
        let word = entryID.leadingWord
        var probed = probe(word)
        if probed?.found == true {
            collided[entryID] = node
            return
        }
        // Probed again only after growing (or for a table with no free slot).
        if isFull(count + 1, words.count) { probed = nil }
        while probed == nil {
            grow()
            probed = probe(word)
        }
        put(word, node, at: probed!.slot)
        count += 1
    }

    private mutating func put(_ word: UInt64, _ node: Int32, at slot: Int) {
        words[slot] = word
        nodes[slot] = node
    }

    private mutating func grow() {
        let (oldWords, oldNodes) = (words, nodes)
        words = Column(repeating: 0, count: oldWords.count * 2)
        nodes = Column(repeating: -1, count: oldWords.count * 2)
        // Twice the room of every slot placed: each finds a free place.
        for (word, node) in zip(oldWords, oldNodes) where node >= 0 { put(word, node, at: probe(word)!.slot) }
    }

    /// The node `entryID` names. Exact for every id inserted; an id never inserted may answer
    /// the node of another with the same first word, which the full rules then ignore.
    /// - Throws: if the table has no free slot (only one read from a damaged snapshot).
    func node(for entryID: Digest) throws(TableExhausted) -> Int32? {
        if let node = collided[entryID] { return node }
        guard let (slot, found) = probe(entryID.leadingWord) else { throw TableExhausted() }
        return found ? nodes[slot] : nil
    }

    /// Every slot's id's first word and node, in no particular order (``collided`` holds the rest).
    var contents: [(word: UInt64, node: Int32)] {
        zip(words, nodes).filter { $0.1 >= 0 }.map { ($0.0, $0.1) }
    }

    /// A table as a snapshot stored it: `nil` unless its columns are of one size, a power of two
    /// of at least 16. Its slots are not read (they are read as used).
    init?(hasher: IDHasher, words: Column<UInt64>, nodes: Column<Int32>, count: Int, collided: [Digest: Int32]) {
        guard words.count == nodes.count, words.count >= 16, words.count.nonzeroBitCount == 1, count >= 0, count <= words.count else { return nil }
        self.hasher = hasher
        self.words = words
        self.nodes = nodes
        self.count = count
        self.collided = collided
    }
}

/// A table without a free slot, where a lookup of an id it does not hold found none: a table
/// read from a damaged snapshot (every table keeps a quarter of its slots free).
struct TableExhausted: Error {}

/// Whether `count` entries fill a table of `capacity` slots more than either table is let fill:
/// beyond it, failed lookups probe long runs.
private func isFull(_ count: Int, _ capacity: Int) -> Bool { count * 4 > capacity * 3 }
