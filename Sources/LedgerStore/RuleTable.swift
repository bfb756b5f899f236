#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto

/// A sorted table of the append-rule state's ids and claims, in a file: the tables of a
/// ``SavedState``, or a run that a growing rule state was moved to (``RuleRuns``).
///
/// Layout from its first byte (integers little-endian):
/// - id rows, 40 bytes each: SHA-256(kind byte ‖ id) — the ``IDKind`` byte, or `x` for an entry
///   id — then the sequence number; sorted by the hash;
/// - claim rows, 48 bytes each: SHA-256(`c` ‖ id), the retraction's sequence number (all ones if
///   none), then the offset (4 bytes) and lengths (2 + 2) of its fact id and author in the string
///   area; sorted by the hash;
/// - the string area.
///
/// A table written here keeps small things in memory: the key of every 16th row (a lookup reads
/// at most the 16 rows from there) and a Bloom filter (10 bits a row: nearly every id a statement
/// introduces is new, and is answered without a read). A saved state's table keeps them in its
/// file instead, with a checksum of every block (``StoredTables``), so that opening one reads
/// none of its rows; once its lookups have read rows often enough, it is checked whole and its
/// rows read as a table written here reads them from then on. Lookups are meant for one thread at a time.
final class RuleTable: @unchecked Sendable {
    static let idRow = 40
    static let claimRow = 48
    static let entryKind: UInt8 = 0x78
    static let claimKind: UInt8 = 0x63

    /// Where a table's rows lie in its file.
    struct Region {
        var offset: Int
        var rows: Int
    }

    let file: FileDescriptor
    /// What it is, for messages ("the saved state /x/y.state").
    let name: String
    let ids: Region
    let claims: Region
    let strings: (offset: Int, count: Int)
    /// SHA-256 of every byte of the tables, in order (for a saved state's, as its header states it).
    let digest: Digest
    fileprivate var index: Index

    /// How lookups find the block of rows that could hold a key.
    fileprivate enum Index {
        /// Built as the table was written here.
        case memory(ids: RowIndex, claims: RowIndex)
        /// In the table's file, read as needed.
        case stored(StoredTables)
        /// A saved state's tables checked whole (``checkWholeIfReadOften(_:)``): its rows read
        /// since as a table written here reads them, with the same index in memory and a digest
        /// of each run of 16 rows to check them against; its strings still a checked block at a
        /// time.
        case checked(StoredTables, ids: RowIndex, claims: RowIndex)
    }

    /// The first read that failed, if any; the lookup it served answered "not found".
    fileprivate(set) var readFailure: LedgerError?
    /// How many lookups in a saved state's tables went on to read rows (see
    /// ``checkWholeIfReadOften(_:)``).
    private var rowLookups = 0

    var rowCount: Int { ids.rows + claims.rows }
    /// The tables' size in bytes.
    var byteCount: Int { ids.rows * Self.idRow + claims.rows * Self.claimRow + strings.count }

    fileprivate init(file: FileDescriptor, name: String, start: Int, idRows: Int, claimRows: Int, stringBytes: Int, digest: Digest, index: Index) {
        self.file = file
        self.name = name
        ids = Region(offset: start, rows: idRows)
        claims = Region(offset: start + idRows * Self.idRow, rows: claimRows)
        strings = (start + idRows * Self.idRow + claimRows * Self.claimRow, stringBytes)
        self.digest = digest
        self.index = index
    }

    /// Opens the tables of a saved state, which lie in `file` from `start` as `layout` says,
    /// sizes checked by the caller. Reads only the top fence levels; `digest` is what the file's
    /// header states. Without `checksBlocks`, only to bring blocks into the page cache from
    /// another thread ahead of a checking table's lookups (see ``StoredTables/checksBlocks``):
    /// never for answers.
    static func open(
        file: FileDescriptor, name: String, remedy: String, start: Int, layout: StoredTables.Layout, digest: Digest, checksBlocks: Bool = true
    ) throws(LedgerError) -> RuleTable {
        let stored = try StoredTables(file: file, name: name, remedy: remedy, start: start, layout: layout, salt: digest, checksBlocks: checksBlocks)
        return RuleTable(
            file: file, name: name, start: start, idRows: layout.idRows, claimRows: layout.claimRows, stringBytes: layout.stringBytes, digest: digest,
            index: .stored(stored))
    }

    /// A reader of a saved state's tables that reads blocks as a lookup does but does not check
    /// them, with caches of its own (``open(file:name:remedy:start:layout:digest:checksBlocks:)``
    /// without `checksBlocks`). `nil` for a table written here, or if the top fence levels cannot
    /// be read again.
    func cacheWarmer() -> RuleTable? {
        guard let stored = index.stored else { return nil }
        return try? Self.open(file: file, name: name, remedy: stored.remedy, start: stored.start, layout: stored.layout, digest: digest, checksBlocks: false)
    }

    /// Where the parts of this table lie in a saved state: as stored, or as it would be stored.
    var storedLayout: StoredTables.Layout {
        switch index {
        case let .memory(ids, claims):
            StoredTables.Layout(
                idRows: self.ids.rows, claimRows: self.claims.rows, stringBytes: strings.count, idFilterBlocks: ids.filter.blocks,
                claimFilterBlocks: claims.filter.blocks)
        case let .stored(stored), let .checked(stored, _, _): stored.layout
        }
    }

    /// Writes the table to `file` at `offset` as a saved state holds it (read back with
    /// ``open(file:name:remedy:start:layout:digest:checksBlocks:)``): its rows
    /// and strings, then its fence levels, its Bloom filters and its blocks' hashes (laid out as
    /// ``StoredTables/Layout`` says). Only for a table written here.
    func store(in file: FileDescriptor, at offset: UInt64) throws(LedgerError) {
        guard case let .memory(ids, claims) = index else { preconditionFailure("only a table written here is stored") }
        let layout = storedLayout
        var appendix = StoredTables.fenceLevels(ids.storedFences) + StoredTables.fenceLevels(claims.storedFences)
        appendix += [UInt8](repeating: 0, count: layout.idFilter.offset - layout.fencesStart - appendix.count)
        appendix += ids.filter.bytes + claims.filter.bytes
        var at = offset
        var blocks = StoredTables.BlockHasher(salt: digest)
        try self.file.forEachChunk(from: self.ids.offset, count: byteCount) { (chunk) throws(LedgerError) in
            try file.write(chunk, at: at)
            blocks.add(chunk)
            at += UInt64(chunk.count)
        }
        try file.write(appendix, at: at)
        appendix.withUnsafeBytes { blocks.add($0) }
        try file.write(blocks.finish(), at: at + UInt64(appendix.count))
    }

    /// How many blocks of a saved state's tables lookups have read (nil for a table written here).
    var blocksRead: Int? { index.stored?.blocksRead }

    /// Whether a saved state's table has been checked whole, its rows read since against the run
    /// digests taken then.
    var isCheckedWhole: Bool {
        if case .checked = index { true } else { false }
    }

    /// Checks a saved state's tables whole (again if it was checked whole for its lookups: the
    /// file may have changed since). Nothing to do for a table written here. A merge needs no
    /// such check first: it checks every block it copies as it reads it (``SequentialReader``).
    /// A failure is kept as ``readFailure`` too: lookups answered before it cannot be relied on.
    func checkWhole() throws(LedgerError) {
        guard let stored = index.stored else { return }
        do throws(LedgerError) {
            try stored.checkWhole()
        } catch {
            if readFailure == nil { readFailure = error }
            throw error
        }
    }

    static func key(_ kind: UInt8, _ id: String) -> Digest {
        var id = id
        return id.withUTF8 { SHA256.hash(prefix: kind, UnsafeRawBufferPointer($0)) }
    }

    static func key(entry: Digest) -> Digest {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { buffer in
            entry.store(into: buffer)
            return SHA256.hash(prefix: entryKind, UnsafeRawBufferPointer(buffer))
        }
    }

    /// The sequence number in the id row with `key`, if there is one.
    func sequence(_ key: Digest) -> UInt64? {
        find(key, claims: false).map { row in
            row.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 32, as: UInt64.self)) }
        }
    }

    /// The claim in the claim row with `key`, if there is one.
    func claim(_ key: Digest) -> LedgerState.Claim? {
        guard let row = find(key, claims: true) else { return nil }
        let fields = row.withUnsafeBytes { Self.claimFields($0, at: 0) }
        guard fields.offset + fields.factLength + fields.authorLength <= strings.count else {
            _ = malformed("a claim's strings lie outside its string area")
            return nil
        }
        guard let text = read(fields.factLength + fields.authorLength, at: strings.offset + fields.offset) else { return nil }
        return LedgerState.Claim(
            fact: String(decoding: text[..<fields.factLength], as: UTF8.self),
            author: String(decoding: text[fields.factLength...], as: UTF8.self),
            retractedAt: fields.retracted == .max ? nil : fields.retracted)
    }

    /// The tables break their own format (found by a lookup or a merge), kept as ``readFailure``:
    /// a saved state's is not usable, whatever its checksums say (its remedy says what to do);
    /// this process's own file must have been changed while in use.
    fileprivate func malformed(_ what: String) -> LedgerError {
        let error = index.stored?.damaged(what) ?? damaged(what)
        if readFailure == nil { readFailure = error }
        return error
    }

    private func damaged(_ what: String) -> LedgerError {
        LedgerError(.io, "\(name) cannot be relied on: \(what), so it changed while it was in use. Run the command again; a saved state must be a copy that nothing else writes, and the temporary directory (TMPDIR) a disk with room.")
    }

    /// The fields of the claim row at `at`: its retraction, and where its fact id and author lie
    /// in the string area.
    static func claimFields(_ raw: UnsafeRawBufferPointer, at: Int) -> (retracted: UInt64, offset: Int, factLength: Int, authorLength: Int) {
        (
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 32, as: UInt64.self)),
            Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 40, as: UInt32.self))),
            Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at + 44, as: UInt16.self))),
            Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at + 46, as: UInt16.self)))
        )
    }

    /// Reads `count` bytes at `offset` (checked, for a saved state's table); `nil` (and
    /// ``readFailure`` set) if they cannot all be read.
    private func read(_ count: Int, at offset: Int) -> [UInt8]? {
        do throws(LedgerError) {
            if let stored = index.stored { return try stored.read(count, at: offset - ids.offset) }
            let bytes = try file.read(at: UInt64(offset), count: count)
            if bytes.count == count { return bytes }
            throw damaged("it ended early")
        } catch {
            if readFailure == nil { readFailure = error }
            return nil
        }
    }

    /// The row with `key`: asked of the Bloom filter, then looked for in the one run of rows that
    /// could hold it.
    private func find(_ key: Digest, claims: Bool) -> [UInt8]? {
        let (region, rowSize) = claims ? (self.claims, Self.claimRow) : (ids, Self.idRow)
        switch index {
        case let .memory(ids, claimIndex), let .checked(_, ids, claimIndex):
            // This process's own file, or one checked whole: the run's rows (at most 16) are read
            // in one `pread`, a lookup's only one. Half the lookups of a verification find their
            // id, and each read and copy costs about as much as the search.
            let index = claims ? claimIndex : ids
            guard index.mayContain(key), let rows = index.block(of: key) else { return nil }
            let count = rows.count * rowSize
            return withUnsafeTemporaryAllocation(byteCount: count, alignment: 8) { buffer -> [UInt8]? in
                do throws(LedgerError) {
                    guard try file.read(into: buffer, at: UInt64(region.offset + rows.lowerBound * rowSize)) == count else { throw damaged("it ended early") }
                    guard index.matchesDigest(UnsafeRawBufferPointer(buffer), of: rows) else {
                        throw damaged("rows \(rows.lowerBound)–\(rows.upperBound - 1) of its \(claims ? "claims" : "ids") are not what they were when it was checked whole")
                    }
                } catch {
                    if readFailure == nil { readFailure = error }
                    return nil
                }
                return Self.scan(for: key, in: UnsafeRawBufferPointer(buffer), rowSize: rowSize).row
            }
        case let .stored(stored):
            let rows: Range<Int>?
            do throws(LedgerError) {
                rows = try stored.mayContain(key, claims: claims) ? try stored.rows(holding: key, claims: claims, rows: region.rows) : nil
            } catch {
                if readFailure == nil { readFailure = error }
                return nil
            }
            guard let rows else { return nil }
            rowLookups += 1
            defer { checkWholeIfReadOften(stored) }
            // Read a 4 KiB block at a time, each block checked whole, only as far as the key can
            // lie: the rows are sorted, so a lookup stops at the first row past its key. A run of 64
            // rows spans two blocks half the time (id rows) or more (claim rows).
            var row = rows.lowerBound
            while row < rows.upperBound {
                let offset = region.offset + row * rowSize
                let inBlock = (StoredTables.blockBytes - (offset - self.ids.offset) % StoredTables.blockBytes) / rowSize
                let count = min(max(inBlock, 1), rows.upperBound - row)
                guard let chunk = read(count * rowSize, at: offset) else { return nil }
                let found = chunk.withUnsafeBytes { Self.scan(for: key, in: $0, rowSize: rowSize) }
                if found.past { return found.row }
                row += count
            }
            return nil
        }
    }

    /// Once as many lookups have read rows as twice the tables' 4 KiB blocks, checks the tables
    /// whole and reads their rows from then on as a table written here is: at most 16 rows in one
    /// `pread`, each run of 16 checked against a digest taken when the tables were checked (its
    /// SHA-256's first 8 bytes), so that a file changed since is refused, as a block is. Such a
    /// lookup reads one or two blocks of rows (in a large table, rarely cached), each with a
    /// `pread` and the SHA-256 of 4 KiB: batched appends onto a million entries spent nearly half
    /// their rules' time there, about 3 µs a lookup. Checking the tables whole and keeping their
    /// index cost 0.17–0.19 s there, about what 2 lookups a block cost: switching then, when the
    /// lookups made so far have cost what switching does, never costs more than twice what the
    /// better choice would have (a process that stops soon after pays for a switch it barely
    /// used; one that goes on saves from then on). A writer appending more statements than about
    /// the state's blocks gets there (30,000 at a million entries), as does `verify --since` over
    /// about as many new entries (50,000 of the benchmark's mix at a million: 3.7 lookups an
    /// entry, one in 3 reading rows); a single append does not. Counted in lookups, not reads, so that it
    /// never depends on what a reader caches. Not for a reader that checks nothing (the
    /// read-ahead's: its answers are not used). A failure is kept as ``readFailure``, as a
    /// block's is.
    private func checkWholeIfReadOften(_ stored: StoredTables) {
        guard stored.checksBlocks, readFailure == nil, rowLookups >= 2 * (stored.layout.covered / StoredTables.blockBytes) else { return }
        // One pass front to back, every block checked as it is read, and what is kept taken from
        // the bytes checked: the rows' keys and digests, then the strings, fence levels and
        // padding (only checked), then the filters.
        do throws(LedgerError) {
            var reader = SequentialReader(self)
            let layout = stored.layout
            let idRuns = try runs(ids, rowSize: Self.idRow, reader: &reader)
            let claimRuns = try runs(claims, rowSize: Self.claimRow, reader: &reader)
            try reader.pass(from: strings.offset, to: ids.offset + layout.idFilter.offset)
            func filter(_ at: (offset: Int, blocks: Int)) throws(LedgerError) -> BloomFilter {
                BloomFilter(bytes: try reader.withBytes(at: ids.offset + at.offset, count: at.blocks * StoredTables.blockBytes) { Array($0) })
            }
            let idIndex = RowIndex(rows: ids.rows, fences: idRuns.fences, filter: try filter(layout.idFilter), runDigests: idRuns.digests)
            let claimIndex = RowIndex(rows: claims.rows, fences: claimRuns.fences, filter: try filter(layout.claimFilter), runDigests: claimRuns.digests)
            stored.dropCaches()
            index = .checked(stored, ids: idIndex, claims: claimIndex)
        } catch {
            if readFailure == nil { readFailure = error }
        }
    }

    /// The first key and the digest of every run of 16 rows of a region of a saved state's table,
    /// read on by `reader`. Every row's key must follow the one before, as the lookups from
    /// memory assume: checksums made to match forged rows are refused here.
    private func runs(_ region: Region, rowSize: Int, reader: inout SequentialReader) throws(LedgerError) -> (
        fences: [Digest], digests: [UInt64]
    ) {
        let runs = (region.rows + RowIndex.fenceRows - 1) / RowIndex.fenceRows
        var fences: [Digest] = []
        var digests: [UInt64] = []
        fences.reserveCapacity(runs)
        digests.reserveCapacity(runs)
        var previous: Digest?
        for run in 0..<runs {
            let first = run * RowIndex.fenceRows
            let count = min(RowIndex.fenceRows, region.rows - first)
            try reader.withBytes(at: region.offset + first * rowSize, count: count * rowSize) { (raw) throws(LedgerError) in
                for at in stride(from: 0, to: raw.count, by: rowSize) {
                    let key = Digest(loadingFrom: raw, at: at)
                    if let previous, !(previous < key) { throw malformed("its rows are out of order at row \(first + at / rowSize)") }
                    previous = key
                }
                fences.append(Digest(loadingFrom: raw, at: 0))
                digests.append(RowIndex.digest(raw))
            }
        }
        return (fences, digests)
    }

    /// The row with `key` among the sorted rows in `raw`, if there; `past` if a row after `key`
    /// was reached (so no later row holds it either).
    private static func scan(for key: Digest, in raw: UnsafeRawBufferPointer, rowSize: Int) -> (row: [UInt8]?, past: Bool) {
        for at in stride(from: 0, to: raw.count - rowSize + 1, by: rowSize) {
            let rowKey = Digest(loadingFrom: raw, at: at)
            if rowKey == key { return (Array(raw[at..<(at + rowSize)]), true) }
            if key < rowKey { return (nil, true) }
        }
        return (nil, false)
    }
}

/// What a table written here keeps in memory to answer lookups: the key of every 16th row and a
/// ``BloomFilter`` of its keys (about 1% of absent keys need a read).
struct RowIndex {
    /// Rows per key kept in memory: a lookup reads at most 16 rows (640 or 768 bytes).
    static let fenceRows = 16
    /// Rows per key of a stored table's first fence level (``StoredTables``), whose lookups read
    /// checked 4 KiB blocks: every fourth key kept here.
    static let storedFenceRows = 64
    /// Its keys' filter, as a saved state stores it.
    private(set) var filter: BloomFilter
    /// The key of every 16th row.
    private(set) var fences: [Digest] = []
    private(set) var rows = 0

    /// With a Bloom filter for up to `filterCapacity` keys.
    init(filterCapacity: Int) {
        filter = BloomFilter(keys: filterCapacity)
    }

    /// For rows read from a file something else could change: the digest of each run of 16 rows
    /// (``digest(_:)``) when they were checked; empty for this process's own file.
    private(set) var runDigests: [UInt64] = []

    /// The index of `rows` rows stored already: the key of every 16th, their filter, and each
    /// run's digest.
    init(rows: Int, fences: [Digest], filter: BloomFilter, runDigests: [UInt64]) {
        (self.rows, self.fences, self.filter, self.runDigests) = (rows, fences, filter, runDigests)
    }

    /// A run of rows' digest: the first 8 bytes of its SHA-256. Only a change made by accident
    /// or by someone who cannot see these digests needs finding; a second run with the same
    /// digest would take about 2^64 tries.
    static func digest(_ rows: UnsafeRawBufferPointer) -> UInt64 {
        SHA256.hash(rows).leadingWord
    }

    /// Whether `raw`, the rows `rows` read, are as they were when the digests were taken (always,
    /// for this process's own file).
    func matchesDigest(_ raw: UnsafeRawBufferPointer, of rows: Range<Int>) -> Bool {
        runDigests.isEmpty || Self.digest(raw) == runDigests[rows.lowerBound / Self.fenceRows]
    }

    /// The first fence level as a saved state stores it: the key of every 64th row.
    var storedFences: [Digest] {
        stride(from: 0, to: fences.count, by: Self.storedFenceRows / Self.fenceRows).map { fences[$0] }
    }

    /// Adds the key of the next row; rows come in sorted order.
    mutating func add(_ key: Digest) {
        if rows % Self.fenceRows == 0 { fences.append(key) }
        rows += 1
        filter.insert(key)
    }

    func mayContain(_ key: Digest) -> Bool { filter.mayContain(key) }

    /// The rows of the block that holds `key` if any row does: the last block whose first key is
    /// not greater.
    func block(of key: Digest) -> Range<Int>? {
        guard let block = Self.lastNotAfter(key, in: fences) else { return nil }
        let first = block * Self.fenceRows
        return first..<min(first + Self.fenceRows, rows)
    }

    /// The index of the last of `keys` (sorted) not after `key`.
    static func lastNotAfter(_ key: Digest, in keys: [Digest]) -> Int? {
        var low = 0
        var high = keys.count
        while low < high {
            let middle = (low + high) / 2
            if key < keys[middle] { high = middle } else { low = middle + 1 }
        }
        return low > 0 ? low - 1 : nil
    }
}

extension RuleTable {
    /// Writes `state`'s own ids and claims (not its base's) as a new table in an unnamed file in
    /// `directory`.
    static func write(_ state: LedgerState, in directory: String) throws(LedgerError) -> RuleTable {
        var ids: [(key: Digest, sequence: UInt64)] = []
        ids.reserveCapacity(state.eventIDs.count + state.entries.count + state.facts.count + state.evidence.count + state.attestations.count + state.findings.count)
        for (kind, table) in [
            (IDKind.event, state.eventIDs), (.fact, state.facts), (.evidence, state.evidence), (.attestation, state.attestations),
            (.finding, state.findings),
        ] {
            for (id, sequence) in table { ids.append((key(kind.rawValue, id), sequence)) }
        }
        for (entry, sequence) in state.entries { ids.append((key(entry: entry), sequence)) }
        // Sorted where they are, and each claim's strings written from the strings themselves:
        // this runs while the state's own tables are still held, so what it holds besides them is
        // the peak memory of a verification.
        ids.sort { $0.key < $1.key }
        var claims = state.claims.map { id, claim in (key: key(claimKind, id), claim: claim) }
        claims.sort { $0.key < $1.key }
        return try write(ids: ids, claimCount: claims.count, in: directory) { out throws(LedgerError) in
            for row in claims {
                try out.claim(row.key, row.claim.retractedAt ?? .max, fact: row.claim.fact.utf8, author: row.claim.author.utf8)
            }
        }
    }

    /// Writes rows sorted by key, each key once, as a new table in an unnamed file in `directory`.
    static func write(
        ids: [(key: Digest, sequence: UInt64)], claims: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])], in directory: String
    ) throws(LedgerError) -> RuleTable {
        try write(ids: ids, claimCount: claims.count, in: directory) { out throws(LedgerError) in
            for row in claims { try out.claim(row.key, row.retracted, fact: row.fact, author: row.author) }
        }
    }

    /// Writes `ids`, then the claim rows `claimRows` writes (`claimCount` of them), all sorted by key.
    private static func write(
        ids: [(key: Digest, sequence: UInt64)], claimCount: Int, in directory: String, claimRows: (TableWriter) throws(LedgerError) -> Void
    ) throws(LedgerError) -> RuleTable {
        let out = try TableWriter(in: directory, idRows: ids.count, claimRows: claimCount)
        for row in ids { try out.id(row.key, row.sequence) }
        try claimRows(out)
        return try out.finish()
    }

    /// Merges `tables` (oldest first) into one new table in an unnamed file in `directory`. A key
    /// in several keeps the newest table's row: a retraction copies its claim forward.
    static func merge(_ tables: [RuleTable], in directory: String) throws(LedgerError) -> RuleTable {
        let out = try TableWriter(in: directory, idRows: tables.reduce(0) { $0 + $1.ids.rows }, claimRows: tables.reduce(0) { $0 + $1.claims.rows })
        // A saved state's blocks are each checked as they are read: a damaged row must not be
        // copied into a new state, nor one changed since it was checked.
        var rows = tables.map { SequentialReader($0) }
        var texts = tables.map { SequentialReader($0) }
        // Each table's region taken once a pass, not through a key path at every row (a sixth of a
        // merge's time).
        for (regions, rowSize) in [(tables.map(\.ids), idRow), (tables.map(\.claims), claimRow)] {
            var next = [Int](repeating: 0, count: tables.count)
            var last = [Digest?](repeating: nil, count: tables.count)
            // Each table's keys must rise, as lookups assume: a forged state whose checksums were
            // made to match is not copied into a new one with checksums of its own.
            func head(_ i: Int) throws(LedgerError) -> Digest? {
                guard next[i] < regions[i].rows else { return nil }
                let key = try rows[i].withBytes(at: regions[i].offset + next[i] * rowSize, count: 32) { Digest(loadingFrom: $0) }
                if let previous = last[i], !(previous < key) { throw tables[i].malformed("its rows are out of order at row \(next[i])") }
                last[i] = key
                return key
            }
            var heads: [Digest?] = []
            for i in tables.indices { heads.append(try head(i)) }
            while true {
                var newest: Int?
                for i in tables.indices {
                    guard let key = heads[i] else { continue }
                    if let best = newest, let bestKey = heads[best], bestKey < key { continue }
                    newest = i
                }
                guard let newest, let key = heads[newest] else { break }
                let at = regions[newest].offset + next[newest] * rowSize
                if rowSize == idRow {
                    let sequence = try rows[newest].withBytes(at: at + 32, count: 8) { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
                    try out.id(key, sequence)
                } else {
                    let fields = try rows[newest].withBytes(at: at, count: claimRow) { claimFields($0, at: 0) }
                    let table = tables[newest]
                    guard fields.offset + fields.factLength + fields.authorLength <= table.strings.count else {
                        throw table.malformed("a claim's strings lie outside its string area")
                    }
                    let text = try texts[newest].withBytes(at: table.strings.offset + fields.offset, count: fields.factLength + fields.authorLength) {
                        Array($0)
                    }
                    try out.claim(key, fields.retracted, fact: text[..<fields.factLength], author: text[fields.factLength...])
                }
                for i in tables.indices where heads[i] == key {
                    next[i] += 1
                    heads[i] = try head(i)
                }
            }
        }
        return try out.finish()
    }
}

extension RuleTable.Index {
    /// A saved state's tables' reader, whether or not they were checked whole.
    var stored: StoredTables? {
        switch self {
        case .memory: nil
        case let .stored(stored), let .checked(stored, _, _): stored
        }
    }
}

/// Reads a table's file front to back through a buffer, allowing small steps back within it. A
/// saved state's tables are read in whole blocks, each checked against its hash before any of it
/// is used (a failure kept as the table's ``RuleTable/readFailure``, as a lookup's is).
private struct SequentialReader {
    let table: RuleTable
    private var buffer: [UInt8] = []
    private var start = 0

    init(_ table: RuleTable) {
        self.table = table
    }

    var file: FileDescriptor { table.file }

    /// Calls `body` with the `count` bytes at `offset`.
    mutating func withBytes<R>(at offset: Int, count: Int, _ body: (UnsafeRawBufferPointer) throws(LedgerError) -> R) throws(LedgerError) -> R {
        if offset < start || offset + count > start + buffer.count {
            do throws(LedgerError) {
                try fill(at: offset, count: count)
            } catch {
                if table.readFailure == nil { table.readFailure = error }
                throw error
            }
        }
        let from = offset - start
        return try buffer.withUnsafeBytes { raw in
            Result { () throws(LedgerError) in try body(UnsafeRawBufferPointer(rebasing: raw[from..<(from + count)])) }
        }.get()
    }

    /// Reads (and checks) every byte from `offset` up to `end`, for what only needs checking.
    mutating func pass(from offset: Int, to end: Int) throws(LedgerError) {
        var at = offset
        while at < end {
            let count = min(1 << 18, end - at)
            try withBytes(at: at, count: count) { _ in }
            at += count
        }
    }

    /// Reads at least 256 KiB from `offset` on, as far as the tables go: a saved state's from the
    /// start of the block `offset` lies in, in whole blocks, checked.
    private mutating func fill(at offset: Int, count: Int) throws(LedgerError) {
        let stored = table.index.stored
        let blockBytes = StoredTables.blockBytes
        let base = table.ids.offset
        precondition(offset >= base, "reads lie within the tables")
        let first = stored == nil ? offset : base + (offset - base) / blockBytes * blockBytes
        let end = stored.map { base + $0.layout.covered } ?? table.strings.offset + table.strings.count
        let want = offset + count - first
        let length = min(stored == nil ? max(want, 1 << 18) : (max(want, 1 << 18) + blockBytes - 1) / blockBytes * blockBytes, end - first)
        guard length >= want else { throw LedgerError(.io, "\(file.path) ends before the row at byte \(offset): it changed while in use. Run the command again.") }
        buffer = try file.read(at: UInt64(first), count: length)
        start = first
        guard buffer.count == length else { throw LedgerError(.io, "\(file.path) ends before byte \(first + length): it changed while in use. Run the command again.") }
        if let stored {
            try buffer.withUnsafeBytes { raw in
                Result { () throws(LedgerError) in try stored.check(raw, fromBlock: (first - base) / blockBytes) }
            }.get()
        }
    }
}

/// Writes a new table, id rows then claim rows, in sorted order, to an unnamed file; the claims'
/// strings go to a second one, appended when the rows are done. Everything is hashed as written.
private final class TableWriter {
    let directory: String
    let file: FileDescriptor
    let texts: FileDescriptor
    private var out = Output()
    private var textOut = Output()
    private var hasher = SHA256.Hasher()
    private var idIndex: RowIndex
    private var claimIndex: RowIndex
    private var idRows = 0
    private var claimRows = 0

    private struct Output {
        var buffer: [UInt8] = []
        var written = 0
        var count: Int { written + buffer.count }
    }

    init(in directory: String, idRows: Int, claimRows: Int) throws(LedgerError) {
        self.directory = directory
        file = try Self.temporary(in: directory)
        texts = try Self.temporary(in: directory)
        idIndex = RowIndex(filterCapacity: idRows)
        claimIndex = RowIndex(filterCapacity: claimRows)
        out.buffer.reserveCapacity(1 << 20)
    }

    private static func temporary(in directory: String) throws(LedgerError) -> FileDescriptor {
        do throws(LedgerError) {
            return try FileDescriptor.anonymous(in: directory, prefix: "ledger-rule-state")
        } catch {
            throw LedgerError(.io, "The rule state is kept in temporary files as it grows, and none can be created: \(error.message) Set TMPDIR to a writable directory with room for about 120 bytes an entry, up to three times that while its tables merge.")
        }
    }

    func id(_ key: Digest, _ sequence: UInt64) throws(LedgerError) {
        precondition(claimRows == 0, "id rows come before claim rows")
        idIndex.add(key)
        idRows += 1
        add(key, to: &out)
        withUnsafeBytes(of: sequence.littleEndian) { add($0, to: &out) }
        if out.buffer.count >= 1 << 20 { try flush(&out, file) }
    }

    func claim(_ key: Digest, _ retracted: UInt64, fact: some Collection<UInt8>, author: some Collection<UInt8>) throws(LedgerError) {
        guard fact.count <= Int(UInt16.max), author.count <= Int(UInt16.max), textOut.count + fact.count + author.count <= Int(UInt32.max) else {
            throw LedgerError(.tooLarge, "The rule state cannot be written to its tables: a claim's fact id or author is over 64 KiB, or the claims' strings pass 4 GiB (tens of millions of claims), the limits of its format. A ledger this large needs a version of `ledger` with a wider format.")
        }
        claimIndex.add(key)
        claimRows += 1
        add(key, to: &out)
        withUnsafeBytes(of: retracted.littleEndian) { add($0, to: &out) }
        withUnsafeBytes(of: UInt32(textOut.count).littleEndian) { add($0, to: &out) }
        withUnsafeBytes(of: UInt16(fact.count).littleEndian) { add($0, to: &out) }
        withUnsafeBytes(of: UInt16(author.count).littleEndian) { add($0, to: &out) }
        textOut.buffer += fact
        textOut.buffer += author
        if out.buffer.count >= 1 << 20 { try flush(&out, file) }
        if textOut.buffer.count >= 1 << 20 { try flush(&textOut, texts) }
    }

    private func add(_ key: Digest, to output: inout Output) {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { buffer in
            key.store(into: buffer)
            add(UnsafeRawBufferPointer(buffer), to: &output)
        }
    }

    /// Adds rows' bytes (hashed: the strings are hashed when appended after the rows).
    private func add(_ bytes: UnsafeRawBufferPointer, to output: inout Output) {
        hasher.update(bytes)
        output.buffer.append(contentsOf: bytes)
    }

    private func flush(_ output: inout Output, _ file: FileDescriptor) throws(LedgerError) {
        do throws(LedgerError) {
            try file.write(output.buffer, at: UInt64(output.written))
        } catch {
            throw LedgerError(.io, "\(error.message) (The rule state is kept in temporary files in \(directory) as it grows; set TMPDIR to a directory with room for about 120 bytes an entry, up to three times that while its tables merge.)")
        }
        output.written += output.buffer.count
        output.buffer.removeAll(keepingCapacity: true)
    }

    /// Appends the strings to the rows and opens the result.
    func finish() throws(LedgerError) -> RuleTable {
        try flush(&textOut, texts)
        try texts.forEachChunk(from: 0, count: textOut.written) { (chunk) throws(LedgerError) in
            add(chunk, to: &out)
            try flush(&out, file)
        }
        try flush(&out, file)
        var finished = SHA256.Hasher()
        swap(&finished, &hasher)
        return RuleTable(
            file: file, name: "the rule state's temporary file \(file.path)", start: 0, idRows: idRows, claimRows: claimRows,
            stringBytes: textOut.written, digest: finished.finalize(), index: .memory(ids: idIndex, claims: claimIndex))
    }
}
