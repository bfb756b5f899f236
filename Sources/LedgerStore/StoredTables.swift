import LedgerCore
import LedgerCrypto

/// A saved state's tables as its file holds them, read a block at a time: what lets
/// `verify --since` cost O(new entries + log n) whatever the size of the state it starts from.
///
/// After the rows and strings of the ``RuleTable`` come its fence levels, Bloom filters and the
/// hashes of its blocks:
/// - fence levels, id rows' then claim rows': level 1 holds the key of every 64th row, each
///   level above the key of every 64th of the level below, up to the first level of at most 64
///   keys (the top, read when the file is opened). A lookup reads one run of 64 keys of each
///   level below the top, then the run of 64 rows they lead to, as far as its key can lie.
/// - zeros up to the next 4 KiB, then the table's ``BloomFilter``s, of the id rows' keys and of
///   the claim rows', as the table built them: a key's bits lie in one 4 KiB block. Nearly every
///   id a statement introduces is new, and a lookup of one reads one block of a filter (soon read
///   for every key) and no rows.
/// - the SHA-256 of each 4 KiB block of everything before them, keyed by the tables' digest and
///   the block's number: every block is checked as it is read, so a damaged one is refused, never
///   read as an absent id or an active claim. Only the blocks a lookup needs are read;
///   ``checkWhole()`` reads them all.
final class StoredTables {
    static let blockBytes = 4096
    static let fanOut = RowIndex.storedFenceRows
    /// How many checked blocks of fence levels and filters stay in memory (16 MiB; 1,070 blocks
    /// hold all of a million-entry state's), of rows and strings (16 MiB: appends onto a
    /// million-entry ledger read some again, and each read saves a `pread` and a 4 KiB SHA-256;
    /// 1 MiB made batched appends there 1.5–2.8% slower), and pages of 128 block hashes (4 MiB):
    /// each set emptied when full.
    static let cachedFenceBlocks = 4096
    static let cachedRowBlocks = 4096
    static let cachedHashPages = 1024

    /// Where a level of fence keys lies, from the start of the tables.
    struct Level {
        var offset: Int
        var count: Int
    }

    /// Where each part lies, from the start of the tables: all of it follows from the tables'
    /// sizes and their filters' (the header's).
    struct Layout {
        /// The tables' sizes, as the header states them.
        let idRows: Int
        let claimRows: Int
        let stringBytes: Int
        /// Where the fence levels begin, after the rows and strings.
        let fencesStart: Int
        let idLevels: [Level]
        let claimLevels: [Level]
        /// Where the Bloom filters lie (after zeros up to the next 4 KiB), and their blocks.
        let idFilter: (offset: Int, blocks: Int)
        let claimFilter: (offset: Int, blocks: Int)
        /// The bytes the blocks cover: rows, strings, fence levels, padding and filters; their
        /// hashes follow.
        let covered: Int
        /// The bytes of the blocks' hashes.
        var hashBytes: Int { (covered + blockBytes - 1) / blockBytes * 32 }

        init(idRows: Int, claimRows: Int, stringBytes: Int, idFilterBlocks: Int, claimFilterBlocks: Int) {
            (self.idRows, self.claimRows, self.stringBytes) = (idRows, claimRows, stringBytes)
            var at = idRows * RuleTable.idRow + claimRows * RuleTable.claimRow + stringBytes
            fencesStart = at
            func levels(_ rows: Int) -> [Level] {
                StoredTables.levelCounts(rows: rows).map { count in
                    defer { at += count * 32 }
                    return Level(offset: at, count: count)
                }
            }
            idLevels = levels(idRows)
            claimLevels = levels(claimRows)
            at = (at + blockBytes - 1) / blockBytes * blockBytes
            idFilter = (at, idFilterBlocks)
            claimFilter = (at + idFilterBlocks * blockBytes, claimFilterBlocks)
            covered = claimFilter.offset + claimFilterBlocks * blockBytes
        }
    }

    let file: FileDescriptor
    let name: String
    /// What to do about a damaged block, for messages.
    let remedy: String
    /// Where the tables begin in the file; every offset here is from there.
    let start: Int
    let layout: Layout
    /// Keys the block hashes: the tables' digest, as the header states it.
    let salt: Digest
    private var idTop: [Digest] = []
    private var claimTop: [Digest] = []
    private var fenceBlocks: [Int: [UInt8]] = [:]
    private var rowBlocks: [Int: [UInt8]] = [:]
    private var hashPages: [Int: [UInt8]] = [:]
    /// How many blocks have been read from the file (and checked, but by a reader that does not
    /// check them: ``checksBlocks``).
    private(set) var blocksRead = 0
    /// Whether blocks are checked against their hashes as they are read: always, but for a
    /// reader that only brings blocks into the page cache (``SavedStateReadAhead``), whose
    /// answers no one uses. It still reads the hashes, for the reader that checks them, and keeps
    /// few blocks in memory (the page cache holds them): a reader of its own on each of several
    /// threads would otherwise hold megabytes each.
    let checksBlocks: Bool
    private let cacheLimits: (fences: Int, rows: Int, hashPages: Int)

    /// The sizes of the fence levels of `rows` rows, level 1 first (none for no rows).
    static func levelCounts(rows: Int) -> [Int] {
        var counts: [Int] = []
        var count = rows
        while count > 0, counts.last.map({ $0 > fanOut }) ?? true {
            count = (count + fanOut - 1) / fanOut
            counts.append(count)
        }
        return counts
    }

    /// The tables at `start` in `file`, whose sizes the caller has checked against the file's.
    /// Reads (and checks, if `checksBlocks`) the top fence levels.
    init(file: FileDescriptor, name: String, remedy: String, start: Int, layout: Layout, salt: Digest, checksBlocks: Bool) throws(LedgerError) {
        self.file = file
        self.name = name
        self.remedy = remedy
        self.start = start
        self.layout = layout
        self.salt = salt
        self.checksBlocks = checksBlocks
        cacheLimits = checksBlocks ? (Self.cachedFenceBlocks, Self.cachedRowBlocks, Self.cachedHashPages) : (256, 16, 64)
        idTop = try keys(of: layout.idLevels.last, in: 0..<(layout.idLevels.last?.count ?? 0))
        claimTop = try keys(of: layout.claimLevels.last, in: 0..<(layout.claimLevels.last?.count ?? 0))
    }

    /// Whether a row may hold `key`: false only if none does (its Bloom filter block says so).
    func mayContain(_ key: Digest, claims: Bool) throws(LedgerError) -> Bool {
        let filter = claims ? layout.claimFilter : layout.idFilter
        guard filter.blocks > 0 else { return false }
        let bits = try block(filter.offset / Self.blockBytes + BloomFilter.block(of: key, among: filter.blocks))
        return bits.withUnsafeBytes { BloomFilter.mayContain(key, inBlock: $0) }
    }

    /// The rows of the run of 64 that holds `key` if any row does, among `rows` rows: found by
    /// descending the fence levels from the top.
    func rows(holding key: Digest, claims: Bool, rows: Int) throws(LedgerError) -> Range<Int>? {
        let levels = claims ? layout.claimLevels : layout.idLevels
        guard var position = RowIndex.lastNotAfter(key, in: claims ? claimTop : idTop) else { return nil }
        for level in levels.dropLast().reversed() {
            let first = position * Self.fanOut
            let run = try keys(of: level, in: first..<min(first + Self.fanOut, level.count))
            // A level's first key of a run is the key above it, so one is never after `key`.
            guard let next = RowIndex.lastNotAfter(key, in: run) else { throw damaged("its fence levels are out of order") }
            position = first + next
        }
        let first = position * Self.fanOut
        guard first < rows else { throw damaged("its fence levels point past its rows") }
        return first..<min(first + Self.fanOut, rows)
    }

    private func keys(of level: Level?, in range: Range<Int>) throws(LedgerError) -> [Digest] {
        guard let level, !range.isEmpty else { return [] }
        guard range.lowerBound >= 0, range.upperBound <= level.count else { throw damaged("its fence levels point past their end") }
        let bytes = try read(range.count * 32, at: level.offset + range.lowerBound * 32)
        return bytes.withUnsafeBytes { raw in (0..<range.count).map { Digest(loadingFrom: raw, at: $0 * 32) } }
    }

    /// `count` bytes at `offset` from the start of the tables, every block they touch checked.
    func read(_ count: Int, at offset: Int) throws(LedgerError) -> [UInt8] {
        guard offset >= 0, count >= 0, offset + count <= layout.covered else { throw damaged("a read of \(count) bytes at \(offset) lies outside its tables") }
        var out: [UInt8] = []
        out.reserveCapacity(count)
        var at = offset
        while at < offset + count {
            let number = at / Self.blockBytes
            let block = try self.block(number)
            let from = at - number * Self.blockBytes
            let take = min(block.count - from, offset + count - at)
            out += block[from..<(from + take)]
            at += take
        }
        return out
    }

    private func block(_ number: Int) throws(LedgerError) -> [UInt8] {
        let isFence = number * Self.blockBytes >= layout.fencesStart
        if let cached = isFence ? fenceBlocks[number] : rowBlocks[number] { return cached }
        let length = min(Self.blockBytes, layout.covered - number * Self.blockBytes)
        let bytes = try file.read(at: UInt64(start + number * Self.blockBytes), count: length)
        guard bytes.count == length else { throw cut(number) }
        // Without checks the hash is still read: its page is what the checking reader reads next.
        let stored = try storedHash(number)
        guard !checksBlocks || stored == bytes.withUnsafeBytes({ Self.hash(salt, number, $0) }) else { throw mismatch(number, bytes.count) }
        blocksRead += 1
        if isFence {
            Self.keep(bytes, number, in: &fenceBlocks, limit: cacheLimits.fences)
        } else {
            Self.keep(bytes, number, in: &rowBlocks, limit: cacheLimits.rows)
        }
        return bytes
    }

    /// The hash stored for block `number`, read with the 127 others of its page.
    private func storedHash(_ number: Int) throws(LedgerError) -> Digest {
        let perPage = Self.blockBytes / 32
        let page = number / perPage
        let hashes: [UInt8]
        if let cached = hashPages[page] {
            hashes = cached
        } else {
            let count = min(Self.blockBytes, layout.hashBytes - page * Self.blockBytes)
            hashes = try file.read(at: UInt64(start + layout.covered + page * Self.blockBytes), count: count)
            guard hashes.count == count else { throw cut(number) }
            Self.keep(hashes, page, in: &hashPages, limit: cacheLimits.hashPages)
        }
        return hashes.withUnsafeBytes { Digest(loadingFrom: $0, at: (number - page * perPage) * 32) }
    }

    /// Empties the caches of blocks and hashes: for tables checked whole, read unchecked since.
    func dropCaches() {
        fenceBlocks = [:]
        rowBlocks = [:]
        hashPages = [:]
    }

    private static func keep(_ bytes: [UInt8], _ number: Int, in cache: inout [Int: [UInt8]], limit: Int) {
        if cache.count >= limit { cache.removeAll(keepingCapacity: true) }
        cache[number] = bytes
    }

    /// Its size was checked when it was opened.
    private func cut(_ number: Int) -> LedgerError {
        LedgerError(.io, "\(name) ends before block \(number) of its tables: it was cut while in use. Run the command again. \(remedy)")
    }

    /// Reads every block, checking each. The blocks' hashes cover every byte, keyed by the digest
    /// the checksummed header states, so the digest itself need not be computed again.
    func checkWhole() throws(LedgerError) {
        var number = 0
        try file.forEachChunk(from: start, count: layout.covered, chunk: 256 * Self.blockBytes) { (chunk) throws(LedgerError) in
            try check(chunk, fromBlock: number)
            number += (chunk.count + Self.blockBytes - 1) / Self.blockBytes
        }
    }

    /// Checks `bytes`, whole blocks from block `first` on (the last of the tables may be short),
    /// against their hashes: for what reads the tables front to back, and uses what it checked.
    func check(_ bytes: UnsafeRawBufferPointer, fromBlock first: Int) throws(LedgerError) {
        for (i, at) in stride(from: 0, to: bytes.count, by: Self.blockBytes).enumerated() {
            let block = UnsafeRawBufferPointer(rebasing: bytes[at..<min(at + Self.blockBytes, bytes.count)])
            guard try storedHash(first + i) == Self.hash(salt, first + i, block) else { throw mismatch(first + i, block.count) }
        }
    }

    /// Block `number`, of `count` bytes, does not match its hash.
    private func mismatch(_ number: Int, _ count: Int) -> LedgerError {
        let first = start + number * Self.blockBytes
        return damaged("block \(number) of its tables (bytes \(first)–\(first + count - 1)) does not match its checksum")
    }

    /// The tables are not usable for `what`.
    func damaged(_ what: String) -> LedgerError {
        LedgerError(.usage, "\(name) is not usable: \(what). \(remedy)")
    }

    /// A block's hash: SHA-256 of the tables' digest, the block's number (8 bytes, little-endian)
    /// and its bytes.
    static func hash(_ salt: Digest, _ number: Int, _ bytes: UnsafeRawBufferPointer) -> Digest {
        var hasher = SHA256.Hasher()
        hasher.update(salt.rawRepresentation)
        withUnsafeBytes(of: UInt64(number).littleEndian) { hasher.update($0) }
        hasher.update(bytes)
        return hasher.finalize()
    }

    /// The fence levels of rows whose level-1 keys are `fences`, level 1 first, as stored.
    static func fenceLevels(_ fences: [Digest]) -> [UInt8] {
        var out: [UInt8] = []
        var level = fences
        while !level.isEmpty {
            for key in level { out += key.rawRepresentation }
            guard level.count > fanOut else { break }
            level = stride(from: 0, to: level.count, by: fanOut).map { level[$0] }
        }
        return out
    }

    /// Hashes blocks as the tables are written.
    struct BlockHasher {
        let salt: Digest
        private var block: [UInt8] = []
        private(set) var hashes: [UInt8] = []

        init(salt: Digest) {
            self.salt = salt
            block.reserveCapacity(StoredTables.blockBytes)
        }

        mutating func add(_ bytes: UnsafeRawBufferPointer) {
            var at = 0
            while at < bytes.count {
                let take = min(StoredTables.blockBytes - block.count, bytes.count - at)
                block += bytes[at..<(at + take)]
                at += take
                if block.count == StoredTables.blockBytes { flush() }
            }
        }

        /// The hashes of every block, the last one short if it is.
        mutating func finish() -> [UInt8] {
            if !block.isEmpty { flush() }
            return hashes
        }

        private mutating func flush() {
            hashes += block.withUnsafeBytes { StoredTables.hash(salt, hashes.count / 32, $0) }.rawRepresentation
            block.removeAll(keepingCapacity: true)
        }
    }
}

/// A Bloom filter of digests, 10 bits a key, in 4 KiB blocks of 32,768 bits: a key's first word
/// picks its block, and 7 bits in it come from its second and third words (about 1% of absent
/// keys pass). A table built here keeps one in memory (``RowIndex``); a saved state stores it as
/// it is, so that a lookup in the file reads one block of it.
struct BloomFilter {
    /// The filter's blocks, one after another.
    private(set) var bytes: [UInt8]

    var blocks: Int { bytes.count / StoredTables.blockBytes }

    /// Room for `keys` keys (at least one block).
    init(keys: Int) {
        bytes = [UInt8](repeating: 0, count: max(1, (keys * 10 + 32767) / 32768) * StoredTables.blockBytes)
    }

    /// A filter as a saved state stores it: whole blocks.
    init(bytes: [UInt8]) {
        precondition(bytes.count % StoredTables.blockBytes == 0, "a filter is whole blocks")
        self.bytes = bytes
    }

    mutating func insert(_ key: Digest) {
        let base = Self.block(of: key, among: blocks) * StoredTables.blockBytes
        for i in 0..<7 {
            let bit = Self.bit(i, of: key)
            bytes[base + bit >> 3] |= 1 << (bit & 7)
        }
    }

    func mayContain(_ key: Digest) -> Bool {
        guard blocks > 0 else { return false }
        let base = Self.block(of: key, among: blocks) * StoredTables.blockBytes
        return bytes.withUnsafeBytes { Self.mayContain(key, inBlock: UnsafeRawBufferPointer(rebasing: $0[base..<(base + StoredTables.blockBytes)])) }
    }

    /// Which of `blocks` blocks holds `key`'s bits.
    static func block(of key: Digest, among blocks: Int) -> Int { Int(key.leadingWord.multipliedFullWidth(by: UInt64(blocks)).high) }

    /// Whether `block`, the block of `key`, has all of `key`'s bits: the first one missing
    /// answers, as it does for nearly every absent key.
    static func mayContain(_ key: Digest, inBlock block: UnsafeRawBufferPointer) -> Bool {
        for i in 0..<7 {
            let bit = bit(i, of: key)
            if block[bit >> 3] & (1 << (bit & 7)) == 0 { return false }
        }
        return true
    }

    /// The `i`th of `key`'s 7 bit numbers in its block.
    private static func bit(_ i: Int, of key: Digest) -> Int {
        Int((key.secondWord &+ UInt64(i) &* (key.thirdWord | 1)) >> 49)
    }
}
