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
/// taken as a saved state. Ids are looked up in place, by binary search with positioned reads
/// (O(log n) small reads each; the file is not loaded or mapped, so memory stays small whatever
/// the ledger's size); opening it hashes its tables once (a sequential read of about 120 bytes
/// per entry), so that damage to the file is refused rather than read as a different state.
/// Lookups are meant for one thread at a time.
///
/// Layout (integers little-endian): `ELSTATE1`, the header's length (8 bytes), the header (JSON:
/// origin, count, root, last entry id, parties, keys, table sizes, SHA-256 of the tables), the
/// SHA-256 of everything before it, zero padding to a multiple of 8, then
/// - the id table: one 40-byte row per id (statement, fact, evidence, attestation and finding ids
///   and entry ids), SHA-256(kind byte ‖ id) then the sequence number, sorted by that hash;
/// - the claim table: one 48-byte row per claim, SHA-256(`c` ‖ id), the retraction's sequence
///   number (all ones if none), then offset (4 bytes) and lengths (2 + 2) of its fact id and
///   author in the string area; sorted by hash;
/// - the string area.
public final class SavedState: LedgerStateBase, @unchecked Sendable {
    static let magic = Array("ELSTATE1".utf8)
    static let idRow = 40
    static let claimRow = 48
    static let entryKind: UInt8 = 0x78
    static let claimKind: UInt8 = 0x63

    public let origin: String?
    public let count: UInt64
    public let parties: [String: LedgerState.Party]
    public let keys: [Digest: LedgerState.Key]
    /// The Merkle root of the first ``count`` entries.
    public let root: Digest
    /// The entry id of entry ``count`` − 1 (zero for an empty state).
    public let lastEntryID: Digest
    /// Where the file was read from.
    public let path: String

    /// The first read that failed after the file was opened, if any. A lookup that cannot read
    /// answers "not found", so whoever relied on lookups must check this before trusting them.
    public private(set) var readFailure: LedgerError?

    private let file: FileDescriptor
    private let ids: (offset: Int, rows: Int)
    private let claims: (offset: Int, rows: Int)
    private let strings: (offset: Int, count: Int)

    /// Opens and checks a saved state.
    /// - Throws: ``LedgerError/Code/io`` if it cannot be read, ``LedgerError/Code/usage`` if it
    ///   is not a saved state or is damaged.
    public init(path: String) throws(LedgerError) {
        func bad(_ what: String) -> LedgerError {
            LedgerError(.usage, "\(path) is not a usable saved state: \(what). Save a new one with `ledger verify DIR --save-state FILE`.")
        }
        let file = try FileDescriptor(path: path, flags: O_RDONLY, followLinks: true)
        self.file = file
        self.path = path
        let size = Int(try file.size)
        guard size >= Self.magic.count + 8 + 32, size < Int.max / 2 else { throw bad("it is too short") }
        let start = try file.read(at: 0, count: 16)
        guard start.count == 16, start.starts(with: Self.magic) else { throw bad("it does not start with ELSTATE1") }
        let headerLength = Int(clamping: start[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
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
        // Every count is checked against the room left before it is multiplied or added.
        let tables = (headerEnd + 32 + 7) / 8 * 8
        guard tables <= size, (0...((size - tables) / Self.idRow)).contains(header.idRows),
            (0...((size - tables - header.idRows * Self.idRow) / Self.claimRow)).contains(header.claimRows),
            header.stringBytes == size - tables - header.idRows * Self.idRow - header.claimRows * Self.claimRow
        else { throw bad("its tables do not fill the file as its header says") }
        // The tables are checked whole: one sequential hash (about 0.1 s for a million entries), so
        // that a damaged row can never pass for an absent id or an active claim.
        var hasher = SHA256.Hasher()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        var at = UInt64(tables)
        while at < UInt64(size) {
            let got = try chunk.withUnsafeMutableBytes { buffer in
                Result { () throws(LedgerError) in
                    try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(buffer.count, size - Int(at))]), at: at)
                }
            }.get()
            guard got > 0 else { break }
            chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[..<got])) }
            at += UInt64(got)
        }
        guard at == UInt64(size), hasher.finalize() == header.tablesDigest else { throw bad("its tables are damaged (checksum)") }
        let claimsAt = tables + header.idRows * Self.idRow
        let stringsAt = claimsAt + header.claimRows * Self.claimRow
        origin = header.origin
        count = header.count
        parties = header.parties
        keys = header.keys
        root = header.root
        lastEntryID = header.lastEntryID
        ids = (tables, header.idRows)
        claims = (claimsAt, header.claimRows)
        strings = (stringsAt, header.stringBytes)
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

    /// Reads `count` bytes at `offset`; `nil` (and ``readFailure`` set) if they cannot all be read.
    private func read(_ count: Int, at offset: Int) -> [UInt8]? {
        do throws(LedgerError) {
            let bytes = try file.read(at: UInt64(offset), count: count)
            if bytes.count == count { return bytes }
            throw LedgerError(.io, "\(path) ended early: it changed while this verification used it, so what was checked against it cannot be relied on. Verify again with a copy of the saved state that nothing writes.")
        } catch {
            if readFailure == nil { readFailure = error }
            return nil
        }
    }

    /// Binary search for `key` in a sorted table: the row, read whole. One small read per step
    /// until the rows left fit in a few pages, then one read of them all.
    private func find(_ key: Digest, in table: (offset: Int, rows: Int), rowSize: Int) -> [UInt8]? {
        var low = 0
        var high = table.rows
        while (high - low) * rowSize > 8192 {
            let middle = (low + high) / 2
            guard let row = read(rowSize, at: table.offset + middle * rowSize) else { return nil }
            let found = row.withUnsafeBytes { Digest(loadingFrom: $0) }
            if found == key { return row }
            if found < key { low = middle + 1 } else { high = middle }
        }
        guard low < high, let block = read((high - low) * rowSize, at: table.offset + low * rowSize) else { return nil }
        return block.withUnsafeBytes { raw -> [UInt8]? in
            var low = 0
            var high = block.count / rowSize
            while low < high {
                let middle = (low + high) / 2
                let found = Digest(loadingFrom: raw, at: middle * rowSize)
                if found == key { return Array(raw[(middle * rowSize)..<((middle + 1) * rowSize)]) }
                if found < key { low = middle + 1 } else { high = middle }
            }
            return nil
        }
    }

    private static func word(_ row: [UInt8], at offset: Int) -> UInt64 {
        row.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    public func sequence(of kind: IDKind, _ id: String) -> UInt64? {
        find(Self.key(kind.rawValue, id), in: ids, rowSize: Self.idRow).map { Self.word($0, at: 32) }
    }

    public func sequence(ofEntry entryID: Digest) -> UInt64? {
        find(Self.key(entry: entryID), in: ids, rowSize: Self.idRow).map { Self.word($0, at: 32) }
    }

    public func claim(_ id: String) -> LedgerState.Claim? {
        guard let row = find(Self.key(Self.claimKind, id), in: claims, rowSize: Self.claimRow) else { return nil }
        let fields = row.withUnsafeBytes { Self.claimFields($0, at: 0) }
        guard fields.offset + fields.factLength + fields.authorLength <= strings.count,
            let text = read(fields.factLength + fields.authorLength, at: strings.offset + fields.offset)
        else { return nil }
        return LedgerState.Claim(
            fact: String(decoding: text[..<fields.factLength], as: UTF8.self),
            author: String(decoding: text[fields.factLength...], as: UTF8.self),
            retractedAt: fields.retracted == .max ? nil : fields.retracted)
    }

    /// The fields of the claim row at `at`: its retraction, and where its fact id and author lie
    /// in the string area.
    private static func claimFields(_ raw: UnsafeRawBufferPointer, at: Int) -> (retracted: UInt64, offset: Int, factLength: Int, authorLength: Int) {
        (
            UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 32, as: UInt64.self)),
            Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: at + 40, as: UInt32.self))),
            Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at + 44, as: UInt16.self))),
            Int(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: at + 46, as: UInt16.self)))
        )
    }

    /// Every row of both tables, for writing a state that continues this one (read whole: saving
    /// is a pass over everything anyway).
    fileprivate func forEachRow(id: (Digest, UInt64) -> Void, claim: (Digest, UInt64, [UInt8], [UInt8]) -> Void) throws(LedgerError) {
        let total = ids.rows * Self.idRow + claims.rows * Self.claimRow + strings.count
        guard let tables = read(total, at: ids.offset) else { throw readFailure ?? LedgerError(.io, "\(path) cannot be read whole to save a state that continues it. Check that it is still there and readable, or verify from genesis to save a new state.") }
        let stringsStart = ids.rows * Self.idRow + claims.rows * Self.claimRow
        tables.withUnsafeBytes { raw in
            for row in 0..<ids.rows {
                let at = row * Self.idRow
                id(Digest(loadingFrom: raw, at: at), UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: at + 32, as: UInt64.self)))
            }
            for row in 0..<claims.rows {
                let at = ids.rows * Self.idRow + row * Self.claimRow
                let fields = Self.claimFields(raw, at: at)
                let text = stringsStart + fields.offset
                guard fields.offset + fields.factLength + fields.authorLength <= strings.count else { continue }
                claim(
                    Digest(loadingFrom: raw, at: at), fields.retracted, Array(raw[text..<(text + fields.factLength)]),
                    Array(raw[(text + fields.factLength)..<(text + fields.factLength + fields.authorLength)]))
            }
        }
    }

    /// Writes `state` (and the base it continues, if any) to `path`, atomically.
    /// - Parameters:
    ///   - root: the Merkle root of the state's ``LedgerState/count`` entries.
    ///   - lastEntryID: the entry id of its last entry.
    public static func write(_ state: LedgerState, root: Digest, lastEntryID: Digest, to path: String) throws(LedgerError) {
        var idRows: [(Digest, UInt64)] = []
        idRows.reserveCapacity(state.eventIDs.count + state.entries.count + state.facts.count + state.evidence.count)
        for (kind, table) in [
            (IDKind.event, state.eventIDs), (.fact, state.facts), (.evidence, state.evidence), (.attestation, state.attestations),
            (.finding, state.findings),
        ] {
            for (id, sequence) in table { idRows.append((key(kind.rawValue, id), sequence)) }
        }
        for (entry, sequence) in state.entries { idRows.append((key(entry: entry), sequence)) }
        var claimRows: [(key: Digest, retracted: UInt64, fact: [UInt8], author: [UInt8])] = []
        for (id, claim) in state.claims {
            claimRows.append((key(claimKind, id), claim.retractedAt ?? .max, Array(claim.fact.utf8), Array(claim.author.utf8)))
        }
        if let base = state.base as? SavedState {
            // A claim changed since the base (retracted) is in both; the state's copy is newer.
            let changed = Set(claimRows.map(\.key))
            try base.forEachRow(id: { idRows.append(($0, $1)) }) { key, retracted, fact, author in
                if !changed.contains(key) { claimRows.append((key, retracted, fact, author)) }
            }
        } else if state.base != nil {
            throw LedgerError(.usage, "Only a state that continues a saved state file can be saved.")
        }
        idRows.sort { $0.0 < $1.0 }
        claimRows.sort { $0.key < $1.key }

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
        var strings: [UInt8] = []
        var claimBytes: [UInt8] = []
        claimBytes.reserveCapacity(claimRows.count * claimRow)
        for row in claimRows {
            guard row.fact.count <= Int(UInt16.max), row.author.count <= Int(UInt16.max), strings.count <= Int(UInt32.max) else {
                throw LedgerError(.tooLarge, "The rule state cannot be saved to \(path): a claim's fact or author is over 64 KiB, or its strings pass 4 GiB, this format's limits. Verify without --save-state.")
            }
            append(row.key, to: &claimBytes)
            append(row.retracted, to: &claimBytes)
            withUnsafeBytes(of: UInt32(strings.count).littleEndian) { claimBytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt16(row.fact.count).littleEndian) { claimBytes.append(contentsOf: $0) }
            withUnsafeBytes(of: UInt16(row.author.count).littleEndian) { claimBytes.append(contentsOf: $0) }
            strings += row.fact
            strings += row.author
        }
        var tables: [UInt8] = []
        tables.reserveCapacity(idRows.count * idRow + claimBytes.count + strings.count)
        for (key, sequence) in idRows {
            append(key, to: &tables)
            append(sequence, to: &tables)
        }
        tables += claimBytes
        tables += strings
        var header = JSONWriter()
        header.value(.object([
            "tables_sha256": .string(SHA256.hash(tables).hexString),
            "origin": state.origin.map(JSONValue.string) ?? .null, "count": .integer(Int64(state.count)),
            "root": .string(root.hexString), "last_entry": .string(lastEntryID.hexString), "parties": .array(parties),
            "keys": .array(keys), "id_rows": .integer(Int64(idRows.count)), "claim_rows": .integer(Int64(claimRows.count)),
            "string_bytes": .integer(Int64(strings.count)),
        ]))
        var out = magic
        append(UInt64(header.bytes.count), to: &out)
        out += header.bytes
        out += SHA256.hash(out).rawRepresentation
        while out.count % 8 != 0 { out.append(0) }
        out += tables
        try FileSystem.writeAtomically(out, to: path, mode: 0o644, directory: FileSystem.parent(of: path))
    }

    private static func append(_ digest: Digest, to out: inout [UInt8]) {
        withUnsafeTemporaryAllocation(byteCount: 32, alignment: 8) { buffer in
            digest.store(into: buffer)
            out.append(contentsOf: UnsafeRawBufferPointer(buffer))
        }
    }

    private static func append(_ value: UInt64, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    /// The JSON header.
    private struct Header {
        var origin: String?
        var count: UInt64
        var root: Digest
        var lastEntryID: Digest
        var parties: [String: LedgerState.Party] = [:]
        var keys: [Digest: LedgerState.Key] = [:]
        var idRows: Int
        var claimRows: Int
        var stringBytes: Int
        var tablesDigest: Digest

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
                let idRows = o["id_rows"]?.integerValue, let claimRows = o["claim_rows"]?.integerValue,
                let stringBytes = o["string_bytes"]?.integerValue, let parties = o["parties"]?.arrayValue,
                let keys = o["keys"]?.arrayValue, let tables = o["tables_sha256"]?.stringValue.flatMap({ Digest(hexString: $0) })
            else { throw bad("lacks a member or has one of the wrong type") }
            tablesDigest = tables
            origin = o["origin"]?.stringValue
            self.count = UInt64(count)
            self.root = root
            lastEntryID = last
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
