#if canImport(Glibc)
import Glibc
#endif
public import LedgerCore
public import LedgerCrypto

/// A reviewer's saved rule state: the append-rule state of a ledger at a size they verified,
/// with that size's Merkle root and last entry id, so that a later `verify --since` checks only
/// the entries after it, in O(new entries + log n), instead of rebuilding the state from genesis.
///
/// It is the reviewer's own file, written by their own verification (`ledger verify
/// --save-state`) and kept with the checkpoint they trust; nothing in a ledger directory is ever
/// taken as a saved state. Opening it reads its header and a few kilobytes; ids are looked up
/// in place, a lookup reading a run of keys from each fence level and one block of rows, each
/// 4 KiB block checked against its hash as it is read (``StoredTables``), so that damage to the
/// file is refused rather than read as a different state. The file is not loaded or mapped, and
/// the cost of using it does not grow with its size but for its O(log n) fence levels. Lookups
/// are meant for one thread at a time.
///
/// Layout (integers little-endian): `ELSTATE3`, the header's length (8 bytes), the header (JSON:
/// origin, count, root, last entry id, the log's length at count, parties, keys, table and
/// filter sizes, SHA-256 of the tables, the append rules), the SHA-256 of everything before it, zero padding to a multiple of
/// 8, then the tables of a ``RuleTable`` (rows and strings), their fence levels, Bloom filters and
/// blocks' hashes (``StoredTables``).
public final class SavedState: LedgerStateBase, RuleTableBacked, @unchecked Sendable {
    /// How a saved state's file begins.
    package static let magic = Array("ELSTATE3".utf8)

    public let origin: String?
    public let count: UInt64
    public let parties: [String: LedgerState.Party]
    public let keys: [Digest: LedgerState.Key]
    /// The Merkle root of the first ``count`` entries.
    public let root: Digest
    /// The entry id of entry ``count`` − 1 (zero for an empty state).
    public let lastEntryID: Digest
    /// The log's length in bytes at ``count`` entries, where entry ``count`` begins: the log is
    /// only appended to, so lines inserted or removed before it change where it begins.
    public let logBytes: UInt64
    /// Where the file was read from.
    public let path: String
    private let table: RuleTable

    var tables: [RuleTable] { [table] }

    /// The first read that failed after the file was opened, if any. A lookup that cannot read
    /// answers "not found", so whoever relied on lookups must check this before trusting them.
    public var readFailure: LedgerError? { table.readFailure }

    /// What to do about a reviewer's saved state that is damaged.
    public static let saveAnother = "Save a new one with `ledger verify DIR --save-state FILE`."

    /// Opens and checks a saved state's header; its tables are checked as they are read.
    /// - Parameter remedy: what to do about it if it is damaged, for messages.
    /// - Throws: ``LedgerError/Code/io`` if it cannot be read, ``LedgerError/Code/usage`` if it
    ///   is not a saved state or is damaged.
    /// - Parameter followLinks: whether `path` may be a symbolic link (never for a file inside a
    ///   ledger directory).
    public init(path: String, remedy: String = SavedState.saveAnother, followLinks: Bool = true) throws(LedgerError) {
        func bad(_ what: String) -> LedgerError {
            LedgerError(.usage, "\(path) is not a usable saved state: \(what). \(remedy)")
        }
        // A state file that is not there is a wrong name given, as for every other input file.
        guard access(path, F_OK) == 0 || errno != ENOENT else {
            throw LedgerError(.notFound, "There is no saved state \(path). Check the path: it is the file --save-state wrote.")
        }
        let file = try FileDescriptor(path: path, flags: O_RDONLY, followLinks: followLinks)
        self.path = path
        let size = Int(try file.size)
        guard size >= Self.magic.count + 8 + 32, size < Int.max / 2 else { throw bad("it is too short") }
        let start = try file.read(at: 0, count: 16)
        guard start.count == 16, start.starts(with: Self.magic) else {
            let earlier = ["ELSTATE1", "ELSTATE2"].contains { start.starts(with: Array($0.utf8)) }
            throw bad(earlier ? "it was saved by an earlier version of ledger, in a format this one no longer reads" : "it does not start with ELSTATE3")
        }
        let headerLength = Self.headerLength(start)
        guard headerLength <= size - 48 else { throw bad("its header is longer than the file") }
        let headerEnd = 16 + headerLength
        let head = try file.read(at: 0, count: headerEnd + 32)
        guard head.count == headerEnd + 32,
            head.withUnsafeBytes({ SHA256.hash(UnsafeRawBufferPointer(rebasing: $0[..<headerEnd])) == Digest(loadingFrom: $0, at: headerEnd) })
        else { throw bad("its header is damaged (checksum)") }
        let header: Header
        do throws(LedgerError) {
            header = try Header(json: Array(head[16..<headerEnd]))
        } catch {
            throw bad(error.message)
        }
        guard header.rules == LedgerState.rules else {
            throw bad("it was saved under other append rules (\(header.rules ?? "unnamed")) than this version of ledger applies (\(LedgerState.rules))")
        }
        // Every count is checked against the room left before it is multiplied or added.
        let tables = Self.tablesStart(headerEnd: headerEnd)
        guard tables <= size, (0...((size - tables) / RuleTable.idRow)).contains(header.idRows),
            (0...((size - tables - header.idRows * RuleTable.idRow) / RuleTable.claimRow)).contains(header.claimRows)
        else { throw bad("its tables do not fill the file as its header says") }
        let rest = size - tables - header.idRows * RuleTable.idRow - header.claimRows * RuleTable.claimRow
        let blocks = (0...(size / StoredTables.blockBytes))
        guard (0...rest).contains(header.stringBytes), blocks.contains(header.filterBlocks.ids), blocks.contains(header.filterBlocks.claims) else {
            throw bad("its tables do not fill the file as its header says")
        }
        let layout = header.layout
        guard size - tables == layout.covered + layout.hashBytes else { throw bad("its tables do not fill the file as its header says") }
        table = try RuleTable.open(file: file, name: "the saved state \(path)", remedy: remedy, start: tables, layout: layout, digest: header.tablesDigest)
        origin = header.origin
        count = header.count
        parties = header.parties
        keys = header.keys
        root = header.root
        lastEntryID = header.lastEntryID
        logBytes = header.logBytes
    }

    private init(_ other: SavedState, table: RuleTable) {
        (origin, count, parties, keys, root, lastEntryID, logBytes, path) =
            (other.origin, other.count, other.parties, other.keys, other.root, other.lastEntryID, other.logBytes, other.path)
        self.table = table
    }

    /// How many blocks of its tables lookups have read.
    var blocksRead: Int { table.blocksRead ?? 0 }

    /// Whether its tables were checked whole for lookups that read them often, their rows read
    /// since against digests taken then (``RuleTable/isCheckedWhole``).
    package var isCheckedWhole: Bool { table.isCheckedWhole }

    /// A reader of the same file for bringing the blocks of lookups into the page cache from
    /// another thread: it does not check them, so its answers are never to be used (see
    /// ``RuleTable/cacheWarmer()``). `nil` if the file cannot be read again.
    package func cacheWarmer() -> SavedState? {
        table.cacheWarmer().map { SavedState(self, table: $0) }
    }

    public func sequence(of kind: IDKind, _ id: String) -> UInt64? {
        table.sequence(RuleTable.key(kind.rawValue, id))
    }

    public func sequence(ofEntry entryID: Digest) -> UInt64? {
        table.sequence(RuleTable.key(entry: entryID))
    }

    public func claim(_ id: String) -> LedgerState.Claim? {
        table.claim(RuleTable.key(RuleTable.claimKind, id))
    }

    /// Writes `state` (and the base it continues, if any) to `path`, atomically. Its tables are
    /// merged on disk (in `storage`'s directory) and copied in: memory stays bounded whatever the
    /// ledger's size.
    /// - Parameters:
    ///   - root: the Merkle root of the state's ``LedgerState/count`` entries.
    ///   - lastEntryID: the entry id of its last entry.
    ///   - logBytes: the log's length in bytes at that many entries.
    public static func write(
        _ state: LedgerState, root: Digest, lastEntryID: Digest, logBytes: UInt64, to path: String, storage: RuleStateStorage = RuleStateStorage()
    ) throws(LedgerError) {
        let base: [RuleTable]
        switch state.base {
        case nil: base = []
        case let backed as any RuleTableBacked: base = backed.tables
        default: throw LedgerError(.usage, "Only a state that continues a saved state file can be saved.")
        }
        let own = try RuleTable.write(state, in: storage.directory)
        let table = base.isEmpty ? own : try RuleTable.merge(base + [own], in: storage.directory)

        var parties: [JSONValue] = []
        for party in state.parties.values.sorted(by: { $0.id < $1.id }) {
            parties.append(.object([
                "id": .string(party.id), "name": .string(party.name), "role": .string(party.role.rawValue),
                "registered_at": .integer(Int64(party.registeredAt)),
            ]))
        }
        var keys: [JSONValue] = []
        for key in state.keys.values.sorted(by: { $0.publicKey.keyID < $1.publicKey.keyID }) {
            keys.append(.object([
                "key": .string(Base64.encode(key.publicKey.rawRepresentation)), "party": .string(key.party),
                "valid_from": .integer(Int64(key.validFrom)), "revoked_at": key.revokedAt.map { .integer(Int64($0)) } ?? .null,
            ]))
        }
        var header = JSONWriter()
        header.value(.object([
            "rules": .string(LedgerState.rules), "tables_sha256": .string(table.digest.hexString),
            "origin": state.origin.map(JSONValue.string) ?? .null, "count": .integer(Int64(state.count)),
            "root": .string(root.hexString), "last_entry": .string(lastEntryID.hexString), "log_bytes": .integer(Int64(logBytes)),
            "parties": .array(parties),
            "keys": .array(keys), "id_rows": .integer(Int64(table.ids.rows)), "claim_rows": .integer(Int64(table.claims.rows)),
            "id_filter_blocks": .integer(Int64(table.storedLayout.idFilter.blocks)),
            "claim_filter_blocks": .integer(Int64(table.storedLayout.claimFilter.blocks)),
            "string_bytes": .integer(Int64(table.strings.count)),
        ]))
        var head = magic
        withUnsafeBytes(of: UInt64(header.bytes.count).littleEndian) { head.append(contentsOf: $0) }
        head += header.bytes
        head += SHA256.hash(head).rawRepresentation
        while head.count % 8 != 0 { head.append(0) }
        try FileSystem.writeAtomically(to: path, mode: 0o644, directory: FileSystem.parent(of: path)) { (file) throws(LedgerError) in
            try file.write(head, at: 0)
            try table.store(in: file, at: UInt64(head.count))
        }
    }

    /// Refuses a saved state `--state` gives from the ledger directory `ledger`: the rule state
    /// the writer keeps there (`rules.state`) or any other file there is the operator's, and a
    /// saved state is only as good as the reviewer's own verification that saved it.
    /// - Throws: ``LedgerError/Code/usage``.
    package static func checkSource(_ path: String, ledger directory: String) throws(LedgerError) {
        try refuseInLedger(path, option: "--state", ledger: directory, "a saved state must be your own, saved by your own verification, never one the ledger holds. Save one outside the ledger directory with a full `ledger verify \(directory) --vkey KEY --save-state FILE`, or verify without --state (the rule state is then rebuilt from the log).")
    }

    /// Refuses `path`, given with `option`, if it lies in the ledger directory `directory` or
    /// below it, after links: where it is named, or, if it is a link, where it leads. `why` says
    /// why and what to do.
    private static func refuseInLedger(_ path: String, option: String, ledger directory: String, _ why: String) throws(LedgerError) {
        guard let ledger = FileSystem.resolved(directory) else { return }
        let places = [FileSystem.resolved(FileSystem.parent(of: path)), FileSystem.resolved(path).map { FileSystem.parent(of: $0) }]
        for case let parent? in places where parent == ledger || parent.hasPrefix(ledger.hasSuffix("/") ? ledger : ledger + "/") {
            throw LedgerError(.usage, "\(option) \(path) lies in the ledger directory \(directory), whose files are the ledger's own: \(why)")
        }
    }

    /// Refuses a path `--save-state` must not write: one in the ledger directory `ledger` (the
    /// ledger's own files are there, and a verification never writes to the ledger), or an
    /// existing file that is not a saved state, which saving would replace. Called before any
    /// work, so that a mistaken path changes nothing.
    /// - Throws: ``LedgerError/Code/usage``, or ``LedgerError/Code/io`` if an existing file cannot
    ///   be read.
    package static func checkTarget(_ path: String, ledger directory: String) throws(LedgerError) {
        try refuseInLedger(path, option: "--save-state", ledger: directory, "a verification writes nothing there. Save the state outside it, beside the checkpoint you trust.")
        guard FileSystem.exists(path) else { return }
        if FileSystem.isSymbolicLink(path) {
            throw LedgerError(.usage, "--save-state \(path) is a symbolic link, and saving would replace the link, not what it points to. Give the saved state's own path, or a new one.")
        }
        var head: [UInt8] = []
        if FileSystem.isRegularFile(path) {
            do throws(LedgerError) {
                head = try FileDescriptor(path: path, flags: O_RDONLY).read(at: 0, count: 7)
            } catch {
                throw LedgerError(.io, "--save-state \(path) exists and cannot be read, so whether it is a saved state (which saving may replace) cannot be told: \(error.message)")
            }
        }
        guard head == Array("ELSTATE".utf8) else {
            throw LedgerError(.usage, "--save-state \(path) names an existing file that is not a saved state (one begins with ELSTATE), and saving would replace it. Give a new path, or move that file away first.")
        }
    }

    /// Reads and checks every block of its tables (for fuzzing and tests: a merge checks each block
    /// it copies as it reads it).
    package func checkWhole() throws(LedgerError) {
        try table.checkWhole()
    }

    /// `bytes` of a saved state with its checksums made to match what else they hold, and its
    /// tables cut or padded to the size its header's counts give: so that a fuzzer's changes reach
    /// the parsing behind the checksums. `complete` is false when only the header's checksum could
    /// be remade (the header does not read, or gives a size too large to remake). Never used on a
    /// reviewer's state: a state is only as good as the verification that saved it.
    package static func withChecksumsMatching(_ bytes: [UInt8]) -> (bytes: [UInt8], complete: Bool) {
        guard bytes.count >= 16, bytes.starts(with: magic) else { return (bytes, false) }
        var out = bytes
        let headerLength = Self.headerLength(out[..<16])
        guard headerLength <= out.count - 16 else { return (bytes, false) }
        let headerEnd = 16 + headerLength
        let tables = Self.tablesStart(headerEnd: headerEnd)
        if out.count < tables { out += [UInt8](repeating: 0, count: tables - out.count) }
        out.replaceSubrange(headerEnd..<(headerEnd + 32), with: SHA256.hash(out[..<headerEnd]).rawRepresentation)
        guard let header = try? Header(json: Array(out[16..<headerEnd])),
            [header.idRows, header.claimRows, header.filterBlocks.ids, header.filterBlocks.claims].allSatisfy({ (0...1024).contains($0) }),
            (0...(1 << 16)).contains(header.stringBytes)
        else { return (out, false) }
        let layout = header.layout
        var region = Array(out[tables...].prefix(layout.covered))
        region += [UInt8](repeating: 0, count: layout.covered - region.count)
        var hashes = StoredTables.BlockHasher(salt: header.tablesDigest)
        region.withUnsafeBytes { hashes.add($0) }
        return (Array(out[..<tables]) + region + hashes.finish(), true)
    }

    /// The header's length, from the 8 bytes after the magic that `start` begins with (clamped:
    /// checked against the file's size before use).
    package static func headerLength(_ start: some Collection<UInt8>) -> Int {
        Int(clamping: start.dropFirst(8).prefix(8).reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
    }

    /// Where the tables begin after a header ending at `headerEnd`: after its SHA-256, at a
    /// multiple of 8.
    package static func tablesStart(headerEnd: Int) -> Int { (headerEnd + 32 + 7) / 8 * 8 }

    /// The JSON header.
    private struct Header {
        var origin: String?
        var count: UInt64
        var root: Digest
        var lastEntryID: Digest
        var logBytes: UInt64
        var parties: [String: LedgerState.Party] = [:]
        var keys: [Digest: LedgerState.Key] = [:]
        var idRows: Int
        var claimRows: Int
        var stringBytes: Int
        var tablesDigest: Digest
        /// The append rules it was saved under (``LedgerState/rules``).
        var rules: String?
        /// How many blocks each of its tables' Bloom filters has.
        var filterBlocks: (ids: Int, claims: Int)

        /// Where the tables' parts lie, once their sizes are checked (they are multiplied).
        var layout: StoredTables.Layout {
            StoredTables.Layout(
                idRows: idRows, claimRows: claimRows, stringBytes: stringBytes, idFilterBlocks: filterBlocks.ids, claimFilterBlocks: filterBlocks.claims)
        }

        init(json bytes: [UInt8]) throws(LedgerError) {
            func bad(_ what: String) -> LedgerError { LedgerError(.usage, "its header \(what)") }
            let value: JSONValue
            do {
                value = try JSONParser.parse(bytes)
            } catch {
                throw bad("is not JSON")
            }
            guard let o = value.objectValue, let count = o["count"]?.integerValue, count >= 0,
                let root = o["root"]?.stringValue.flatMap({ Digest(hexString: $0) }),
                let last = o["last_entry"]?.stringValue.flatMap({ Digest(hexString: $0) }),
                let logBytes = o["log_bytes"]?.integerValue, logBytes >= 0,
                let idRows = o["id_rows"]?.integerValue, let claimRows = o["claim_rows"]?.integerValue,
                let stringBytes = o["string_bytes"]?.integerValue, let parties = o["parties"]?.arrayValue,
                let idFilterBlocks = o["id_filter_blocks"]?.integerValue, let claimFilterBlocks = o["claim_filter_blocks"]?.integerValue,
                let keys = o["keys"]?.arrayValue, let tables = o["tables_sha256"]?.stringValue.flatMap({ Digest(hexString: $0) })
            else { throw bad("lacks a member or has one of the wrong type") }
            tablesDigest = tables
            rules = o["rules"]?.stringValue
            filterBlocks = (Int(idFilterBlocks), Int(claimFilterBlocks))
            origin = o["origin"]?.stringValue
            self.count = UInt64(count)
            self.root = root
            lastEntryID = last
            self.logBytes = UInt64(logBytes)
            self.idRows = Int(idRows)
            self.claimRows = Int(claimRows)
            self.stringBytes = Int(stringBytes)
            for p in parties {
                guard let p = p.objectValue, let id = p["id"]?.stringValue, let name = p["name"]?.stringValue,
                    let role = p["role"]?.stringValue.flatMap(Event.Role.init(rawValue:)), let at = p["registered_at"]?.integerValue, at >= 0
                else { throw bad("has a malformed party") }
                self.parties[id] = LedgerState.Party(id: id, name: name, role: role, registeredAt: UInt64(at))
            }
            for k in keys {
                guard let k = k.objectValue, let raw = k["key"]?.stringValue.flatMap({ Base64.decodeCanonical($0) }),
                    let publicKey = try? PublicKey(rawRepresentation: raw), let party = k["party"]?.stringValue,
                    let from = k["valid_from"]?.integerValue, from >= 0
                else { throw bad("has a malformed key") }
                let revoked = k["revoked_at"]?.integerValue
                self.keys[publicKey.keyID] = LedgerState.Key(
                    publicKey: publicKey, party: party, validFrom: UInt64(from), revokedAt: revoked.map { UInt64(max($0, 0)) })
            }
        }
    }
}
