#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto
import LedgerStore

/// The binary form of snapshot files: any `Codable` state, written and read without JSON.
///
/// A snapshot of a large ledger's state is as large as the state; read through a JSON decoder
/// it took as long as replaying from genesis. This form is a tree of length-prefixed slots:
///
/// - a slot is a 4-byte little-endian length and that many content bytes, or the length
///   `0xFFFF_FFFF` and no content for `nil`;
/// - the content of a keyed container is its members in the order encoded, each a key slot
///   (UTF-8) followed by a value slot; of an unkeyed container, its element slots;
/// - the content of a single value is its bytes: 1 for a `Bool`, 8 little-endian for integers
///   and floating-point bit patterns, the UTF-8 bytes of a `String`;
/// - the content of a ``Column`` is its element count, element size and offset in the data
///   (8 bytes each, little-endian), then the SHA-256 of each block of ``Column/blockBytes``
///   of its elements; the elements themselves are in the data, little-endian.
///
/// The file is `ELSNAP3\n`, the tree's length (8 bytes, little-endian), the tree (the root
/// slot), the HMAC-SHA256 of everything before it under the user's ``SnapshotKey``, then the
/// data: every column's elements, one column after another. The tree is read and checked whole;
/// a column's blocks only when used, each against its hash, which the tree holds. So a changed
/// byte makes the snapshot unusable (it is then rebuilt) rather than a wrong answer, and so does
/// a snapshot made or changed by anyone without the key, its checksums remade; reading a
/// snapshot costs what is used of it.
///
/// Coding paths are not extended member by member: building one array per value cost more than
/// the decoding itself, and a snapshot that does not decode is rebuilt, not diagnosed.
package enum SnapshotBinary {
    package static let magic = Array("ELSNAP3\n".utf8)
    static let nilLength = UInt32.max
    /// The magic and the tree's length.
    static let headerBytes = magic.count + 8

    static func encode(_ value: some Encodable) throws -> [UInt8] {
        let writer = SlotWriter()
        try write(value, with: writer)
        let tree = UInt64(writer.bytes.count - headerBytes)
        withUnsafeBytes(of: tree.littleEndian) { writer.bytes.replaceSubrange(magic.count..<headerBytes, with: $0) }
        let mac = try writer.bytes.withUnsafeBytes { try treeChecksum($0) }
        writer.bytes.append(contentsOf: mac.rawRepresentation)
        for column in writer.columns { try column { writer.bytes.append(contentsOf: $0) } }
        return writer.bytes
    }

    /// Writes the snapshot of `value` to `file` (new and empty) a megabyte at a time, so that a
    /// large state is never held twice: the tree is read back once to hash it, since slot
    /// lengths are filled in after their contents, and the columns are written from where
    /// they are.
    static func encode(_ value: some Encodable, to file: FileDescriptor) throws {
        let writer = SlotWriter(file: file)
        try write(value, with: writer)
        writer.flush()
        if let failure = writer.failure { throw failure }
        try file.write(withUnsafeBytes(of: UInt64(writer.flushed - headerBytes).littleEndian) { Array($0) }, at: UInt64(magic.count))
        var mac = HMACSHA256(key: try SnapshotKey.current.get())
        try file.forEachChunk(from: 0, count: writer.flushed) { mac.update($0) }
        try file.write(mac.finalize().rawRepresentation, at: UInt64(writer.flushed))
        var at = UInt64(writer.flushed + 32)
        for column in writer.columns {
            try column { bytes in
                try file.write(bytes, at: at)
                at += UInt64(bytes.count)
            }
        }
    }

    private static func write(_ value: some Encodable, with writer: SlotWriter) throws {
        writer.bytes.append(contentsOf: magic + [UInt8](repeating: 0, count: 8))
        try writer.slot { try value.encode(to: SlotEncoder(writer: writer, codingPath: [])) }
        if let unsupported = writer.unsupported {
            throw EncodingError.invalidValue(value, .init(codingPath: [], debugDescription: "the state uses \(unsupported), which snapshots do not support"))
        }
    }

    /// Decodes a snapshot held in memory.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        let tree = try bytes.withUnsafeBytes { try treeLength(UnsafeRawBufferPointer(rebasing: $0[..<min($0.count, headerBytes)]), fileSize: UInt64(bytes.count)) }
        return try decode(type, tree: Array(bytes[..<(headerBytes + tree + 32)]), source: SnapshotSource(bytes: bytes, name: "a snapshot in memory"))
    }

    /// Decodes the snapshot file at `path`: reads and checks its tree, and leaves its columns to
    /// be read when used (the file stays open as long as the state does). `source` keeps any
    /// damage found in them.
    /// - Throws: if the file cannot be read, its tree is larger than `limit` bytes, or it does not decode.
    static func decode<T: Decodable>(_ type: T.Type, fromFile path: String, limit: Int = 1 << 30) throws -> (value: T, source: SnapshotSource) {
        let file = try FileDescriptor(path: path, flags: O_RDONLY | O_NONBLOCK)
        let tree = try file.read(at: 0, count: headerBytes).withUnsafeBytes { try treeLength($0, fileSize: try file.size) }
        guard tree <= limit else { throw corrupted("its tree is larger than \(limit) bytes") }
        let bytes = try file.read(at: 0, count: headerBytes + tree + 32)
        guard bytes.count == headerBytes + tree + 32 else { throw corrupted("it ends inside its tree") }
        let source = SnapshotSource(file: file)
        return (try decode(type, tree: bytes, source: source), source)
    }

    /// `bytes` with the checksum after its tree remade to match, where its header states a tree
    /// that fits: for the fuzzer, so that changed bytes of the tree reach the decoder instead of
    /// stopping at the checksum. The columns' block hashes are left as they are.
    package static func withTreeChecksumMatching(_ bytes: [UInt8]) -> [UInt8] {
        guard let end = treeEnd(bytes), let mac = try? bytes.withUnsafeBytes({ try treeChecksum(UnsafeRawBufferPointer(rebasing: $0[..<end])) }) else {
            return bytes
        }
        var out = bytes
        out.replaceSubrange(end..<(end + 32), with: mac.rawRepresentation)
        return out
    }

    /// Where the tree of the snapshot `bytes` ends (and its checksum begins), if its header is a
    /// snapshot's and states a tree that fits.
    package static func treeEnd(_ bytes: [UInt8]) -> Int? {
        let tree = bytes.withUnsafeBytes { try? treeLength(UnsafeRawBufferPointer(rebasing: $0.prefix(headerBytes)), fileSize: UInt64(bytes.count)) }
        return tree.map { headerBytes + $0 }
    }

    private static func corrupted(_ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: "snapshot: \(what)"))
    }

    /// The tree's length from a file's first bytes, checked against the file's size.
    private static func treeLength(_ header: UnsafeRawBufferPointer, fileSize: UInt64) throws -> Int {
        guard header.count == headerBytes, header.starts(with: magic) else { throw corrupted("not a snapshot") }
        let tree = header.loadUnaligned(fromByteOffset: magic.count, as: UInt64.self).littleEndian
        guard tree >= 4, tree <= fileSize, UInt64(headerBytes + 32) <= fileSize - tree else { throw corrupted("its tree runs past its end") }
        return Int(tree)
    }

    /// The checksum that ends the tree: the HMAC-SHA256 of everything before it (`header` and
    /// tree) under the user's ``SnapshotKey``.
    /// - Throws: why there is no key.
    private static func treeChecksum(_ headerAndTree: UnsafeRawBufferPointer) throws(LedgerError) -> Digest {
        HMACSHA256.mac(key: try SnapshotKey.current.get(), headerAndTree)
    }

    /// Decodes the tree in `bytes` (header, tree, checksum), its columns in `source`.
    private static func decode<T: Decodable>(_ type: T.Type, tree bytes: [UInt8], source: SnapshotSource) throws -> T {
        try bytes.withUnsafeBytes { bytes in
            let body = bytes.count - 32
            guard try treeChecksum(UnsafeRawBufferPointer(rebasing: bytes[..<body])) == Digest(loadingFrom: bytes, at: body) else {
                throw corrupted("its checksum does not match under your snapshot key: it is damaged, or was made or changed by someone without it")
            }
            let reader = SlotReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[..<body]), source: source, dataStart: UInt64(bytes.count))
            var cursor = headerBytes
            let root = try reader.slot(at: &cursor, end: body, codingPath: [])
            guard cursor == body else { throw reader.corrupted([], "bytes after the root value") }
            return try T(from: SlotDecoder(reader: reader, slot: root, codingPath: []))
        }
    }
}

// MARK: - Writing

/// Used by one thread at a time, so its properties skip the runtime's exclusivity checks, which
/// cost more than the writes they guard.
final class SlotWriter {
    /// What is written and not yet in `file` (everything, without a file).
    @exclusivity(unchecked) var bytes: [UInt8] = []
    /// Where the bytes go, a megabyte at a time; `nil` to keep them all in ``bytes``.
    let file: FileDescriptor?
    /// How many bytes are already in `file`.
    private(set) var flushed = 0
    /// The first write to `file` that failed, if any.
    private(set) var failure: LedgerError?

    init(file: FileDescriptor? = nil) {
        self.file = file
    }
    /// Set by a single-value container's `encodeNil` for the slot being written.
    @exclusivity(unchecked) var slotIsNil = false
    /// What the state asked for that this form does not write (nested containers, super
    /// encoders), if anything: the snapshot is then not written, and replays still answer.
    var unsupported: String?
    /// The columns to write after the tree, in order, each handing its bytes to a writer.
    var columns: [((UnsafeRawBufferPointer) throws -> Void) throws -> Void] = []
    /// The bytes of the columns listed so far.
    var columnBytes: UInt64 = 0

    /// A container for a request this form does not support: records it, writes nowhere.
    func refuse<Key: CodingKey>(_ what: String, codingPath: [any CodingKey]) -> KeyedEncodingContainer<Key> {
        if unsupported == nil { unsupported = what }
        return KeyedEncodingContainer(KeyedSlotWriter<Key>(writer: SlotWriter(), codingPath: codingPath))
    }

    func refuseUnkeyed(_ what: String, codingPath: [any CodingKey]) -> any UnkeyedEncodingContainer {
        if unsupported == nil { unsupported = what }
        return UnkeyedSlotWriter(writer: SlotWriter(), codingPath: codingPath)
    }

    func refuseEncoder(_ what: String, codingPath: [any CodingKey]) -> any Encoder {
        if unsupported == nil { unsupported = what }
        return SlotEncoder(writer: SlotWriter(), codingPath: codingPath)
    }

    /// Writes a slot whose content `body` appends.
    func slot(_ body: () throws -> Void) rethrows {
        let start = flushed + bytes.count
        bytes.append(contentsOf: [0, 0, 0, 0])
        slotIsNil = false
        try body()
        var length = SnapshotBinary.nilLength
        if !slotIsNil {
            // A slot of 4 GiB or more cannot be written: the state is then not snapshotted.
            if let fits = UInt32(exactly: flushed + bytes.count - start - 4), fits < SnapshotBinary.nilLength {
                length = fits
            } else if unsupported == nil {
                unsupported = "a value of 4 GiB or more"
            }
        }
        slotIsNil = false
        // The length goes where its placeholder is: still here, or already in the file (a
        // placeholder is never split, since flushing happens only at the end of a slot).
        let field = withUnsafeBytes(of: length.littleEndian) { Array($0) }
        if start >= flushed {
            for i in 0..<4 { bytes[start - flushed + i] = field[i] }
        } else if let file {
            do throws(LedgerError) {
                try file.write(field, at: UInt64(start))
            } catch {
                if failure == nil { failure = error }
            }
        }
        if file != nil, bytes.count >= 1 << 20 { flush() }
    }

    /// Writes what is held to `file`.
    func flush() {
        guard let file, !bytes.isEmpty else { return }
        do throws(LedgerError) {
            try file.write(bytes, at: UInt64(flushed))
        } catch {
            if failure == nil { failure = error }
        }
        flushed += bytes.count
        // A large value makes the buffer as large as itself: give that back rather than keep it.
        bytes.removeAll(keepingCapacity: bytes.count <= 4 << 20)
    }

    func nilSlot() {
        withUnsafeBytes(of: SnapshotBinary.nilLength) { bytes.append(contentsOf: $0) }
    }

    func string(_ text: String) {
        slot { bytes.append(contentsOf: text.utf8) }
    }

    func integer(_ value: UInt64) {
        slot { withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) } }
    }

    func bool(_ value: Bool) {
        slot { bytes.append(value ? 1 : 0) }
    }

    func value(_ value: some Encodable, codingPath: [any CodingKey]) throws {
        switch value {
        case let s as String: string(s)
        default: try slot { try value.encode(to: SlotEncoder(writer: self, codingPath: codingPath)) }
        }
    }
}

struct SlotEncoder: Encoder {
    let writer: SlotWriter
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        KeyedEncodingContainer(KeyedSlotWriter<Key>(writer: writer, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        UnkeyedSlotWriter(writer: writer, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleSlotWriter(writer: writer, codingPath: codingPath)
    }
}

/// Writes the content of the slot already open: single values are that content.
struct SingleSlotWriter: SingleValueEncodingContainer {
    let writer: SlotWriter
    var codingPath: [any CodingKey]

    mutating func encodeNil() { writer.slotIsNil = true }
    mutating func encode(_ value: Bool) { writer.bytes.append(value ? 1 : 0) }
    mutating func encode(_ value: String) { writer.bytes.append(contentsOf: value.utf8) }
    mutating func encode(_ value: Double) { raw(value.bitPattern) }
    mutating func encode(_ value: Float) { raw(UInt64(value.bitPattern)) }
    mutating func encode(_ value: Int) { raw(UInt64(bitPattern: Int64(value))) }
    mutating func encode(_ value: Int8) { raw(UInt64(bitPattern: Int64(value))) }
    mutating func encode(_ value: Int16) { raw(UInt64(bitPattern: Int64(value))) }
    mutating func encode(_ value: Int32) { raw(UInt64(bitPattern: Int64(value))) }
    mutating func encode(_ value: Int64) { raw(UInt64(bitPattern: value)) }
    mutating func encode(_ value: UInt) { raw(UInt64(value)) }
    mutating func encode(_ value: UInt8) { raw(UInt64(value)) }
    mutating func encode(_ value: UInt16) { raw(UInt64(value)) }
    mutating func encode(_ value: UInt32) { raw(UInt64(value)) }
    mutating func encode(_ value: UInt64) { raw(value) }
    mutating func encode(_ value: some Encodable) throws { try value.encode(to: SlotEncoder(writer: writer, codingPath: codingPath)) }

    private func raw(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { writer.bytes.append(contentsOf: $0) }
    }
}

struct KeyedSlotWriter<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let writer: SlotWriter
    var codingPath: [any CodingKey]

    private func key(_ key: Key) { writer.string(key.stringValue) }

    mutating func encodeNil(forKey k: Key) {
        key(k)
        writer.nilSlot()
    }

    mutating func encode(_ value: Bool, forKey k: Key) {
        key(k)
        writer.bool(value)
    }

    mutating func encode(_ value: String, forKey k: Key) {
        key(k)
        writer.string(value)
    }

    mutating func encode(_ value: Int, forKey k: Key) {
        key(k)
        writer.integer(UInt64(bitPattern: Int64(value)))
    }

    mutating func encode(_ value: Int64, forKey k: Key) {
        key(k)
        writer.integer(UInt64(bitPattern: value))
    }

    mutating func encode(_ value: UInt64, forKey k: Key) {
        key(k)
        writer.integer(value)
    }

    mutating func encode(_ value: some Encodable, forKey k: Key) throws {
        key(k)
        try writer.value(value, codingPath: codingPath)
    }

    // Absent optionals are written as nil members rather than left out, so that a decoder reading
    // members in declaration order finds each one where it looks first.
    mutating func encodeIfPresent(_ value: String?, forKey k: Key) {
        if let value { encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func encodeIfPresent(_ value: UInt64?, forKey k: Key) {
        if let value { encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func encodeIfPresent(_ value: Int?, forKey k: Key) {
        if let value { encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func encodeIfPresent(_ value: Int64?, forKey k: Key) {
        if let value { encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func encodeIfPresent(_ value: Bool?, forKey k: Key) {
        if let value { encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func encodeIfPresent<T: Encodable>(_ value: T?, forKey k: Key) throws {
        if let value { try encode(value, forKey: k) } else { encodeNil(forKey: k) }
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey k: Key) -> KeyedEncodingContainer<NestedKey> {
        writer.refuse("nested containers", codingPath: codingPath)
    }

    mutating func nestedUnkeyedContainer(forKey k: Key) -> any UnkeyedEncodingContainer {
        writer.refuseUnkeyed("nested containers", codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { writer.refuseEncoder("superEncoder", codingPath: codingPath) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { writer.refuseEncoder("superEncoder", codingPath: codingPath) }
}

struct UnkeyedSlotWriter: UnkeyedEncodingContainer {
    let writer: SlotWriter
    var codingPath: [any CodingKey]
    private(set) var count = 0

    init(writer: SlotWriter, codingPath: [any CodingKey]) {
        self.writer = writer
        self.codingPath = codingPath
    }

    mutating func encodeNil() {
        count += 1
        writer.nilSlot()
    }

    mutating func encode(_ value: String) {
        count += 1
        writer.string(value)
    }

    mutating func encode(_ value: UInt64) {
        count += 1
        writer.integer(value)
    }

    mutating func encode(_ value: some Encodable) throws {
        count += 1
        try writer.value(value, codingPath: codingPath)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        writer.refuse("nested containers", codingPath: codingPath)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        writer.refuseUnkeyed("nested containers", codingPath: codingPath)
    }

    mutating func superEncoder() -> any Encoder { writer.refuseEncoder("superEncoder", codingPath: codingPath) }
}

// MARK: - Reading

/// The bytes of a snapshot, valid while it is decoded.
struct SlotReader {
    let bytes: UnsafeRawBufferPointer
    /// Where the columns are.
    let source: SnapshotSource
    /// Where the columns' data starts in `source`.
    let dataStart: UInt64

    /// A slot's content, or `nil` content for a nil slot.
    struct Slot {
        var start: Int
        var end: Int
        var isNil: Bool
    }

    func corrupted(_ codingPath: [any CodingKey], _ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: codingPath, debugDescription: "snapshot: \(what)"))
    }

    func slot(at cursor: inout Int, end: Int, codingPath: [any CodingKey]) throws -> Slot {
        guard cursor + 4 <= end else { throw corrupted(codingPath, "a slot runs past its container") }
        let length = bytes.loadUnaligned(fromByteOffset: cursor, as: UInt32.self).littleEndian
        cursor += 4
        if length == SnapshotBinary.nilLength { return Slot(start: cursor, end: cursor, isNil: true) }
        guard Int(length) <= end - cursor else { throw corrupted(codingPath, "a slot runs past its container") }
        defer { cursor += Int(length) }
        return Slot(start: cursor, end: cursor + Int(length), isNil: false)
    }

    func string(_ slot: Slot, codingPath: [any CodingKey]) throws -> String {
        guard !slot.isNil else { throw corrupted(codingPath, "nil where a string is expected") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[slot.start..<slot.end]), as: UTF8.self)
    }

    func integer(_ slot: Slot, codingPath: [any CodingKey]) throws -> UInt64 {
        guard !slot.isNil, slot.end - slot.start == 8 else { throw corrupted(codingPath, "not an 8-byte integer") }
        return bytes.loadUnaligned(fromByteOffset: slot.start, as: UInt64.self).littleEndian
    }

    func bool(_ slot: Slot, codingPath: [any CodingKey]) throws -> Bool {
        guard !slot.isNil, slot.end - slot.start == 1, bytes[slot.start] <= 1 else { throw corrupted(codingPath, "not a Bool") }
        return bytes[slot.start] == 1
    }

    func equals(_ slot: Slot, _ text: String) -> Bool {
        var text = text
        return text.withUTF8 { utf8 in
            utf8.count == slot.end - slot.start && (utf8.isEmpty || memcmp(utf8.baseAddress!, bytes.baseAddress! + slot.start, utf8.count) == 0)
        }
    }
}

struct SlotDecoder: Decoder {
    let reader: SlotReader
    let slot: SlotReader.Slot
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard !slot.isNil else { throw reader.corrupted(codingPath, "nil where an object is expected") }
        return KeyedDecodingContainer(try KeyedSlotReader<Key>(reader: reader, slot: slot, codingPath: codingPath))
    }

    /// This slot's bytes, which must be there.
    func content() throws -> UnsafeRawBufferPointer {
        guard !slot.isNil else { throw reader.corrupted(codingPath, "nil where bytes are expected") }
        return UnsafeRawBufferPointer(rebasing: reader.bytes[slot.start..<slot.end])
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard !slot.isNil else { throw reader.corrupted(codingPath, "nil where an array is expected") }
        return UnkeyedSlotReader(reader: reader, cursor: slot.start, end: slot.end, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleSlotReader(reader: reader, slot: slot, codingPath: codingPath)
    }
}

struct SingleSlotReader: SingleValueDecodingContainer {
    let reader: SlotReader
    let slot: SlotReader.Slot
    var codingPath: [any CodingKey]

    func decodeNil() -> Bool { slot.isNil }
    func decode(_ type: Bool.Type) throws -> Bool { try reader.bool(slot, codingPath: codingPath) }
    func decode(_ type: String.Type) throws -> String { try reader.string(slot, codingPath: codingPath) }
    func decode(_ type: Double.Type) throws -> Double { Double(bitPattern: try raw()) }
    func decode(_ type: Float.Type) throws -> Float { Float(bitPattern: UInt32(truncatingIfNeeded: try raw())) }
    func decode(_ type: Int.Type) throws -> Int { try signed() }
    func decode(_ type: Int8.Type) throws -> Int8 { try signed() }
    func decode(_ type: Int16.Type) throws -> Int16 { try signed() }
    func decode(_ type: Int32.Type) throws -> Int32 { try signed() }
    func decode(_ type: Int64.Type) throws -> Int64 { try signed() }
    func decode(_ type: UInt.Type) throws -> UInt { try unsigned() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try unsigned() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try unsigned() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try unsigned() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try raw() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: SlotDecoder(reader: reader, slot: slot, codingPath: codingPath)) }

    private func raw() throws -> UInt64 { try reader.integer(slot, codingPath: codingPath) }

    private func signed<T: FixedWidthInteger & SignedInteger>() throws -> T {
        guard let value = T(exactly: Int64(bitPattern: try raw())) else { throw reader.corrupted(codingPath, "an integer out of range") }
        return value
    }

    private func unsigned<T: FixedWidthInteger & UnsignedInteger>() throws -> T {
        guard let value = T(exactly: try raw()) else { throw reader.corrupted(codingPath, "an integer out of range") }
        return value
    }
}

/// A class, so that lookups (non-mutating in the protocol) can move the cursor along.
final class KeyedSlotReader<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let reader: SlotReader
    var codingPath: [any CodingKey]
    private let start: Int
    private let end: Int
    /// Where the member after the last one found begins: members are read in the order they
    /// were written (and the writer writes absent optionals as nil), so a lookup nearly always
    /// finds its key right there, without collecting the members first.
    @exclusivity(unchecked) private var cursor: Int

    init(reader: SlotReader, slot: SlotReader.Slot, codingPath: [any CodingKey]) throws {
        self.reader = reader
        self.codingPath = codingPath
        start = slot.start
        end = slot.end
        cursor = slot.start
    }

    var allKeys: [Key] {
        var out: [Key] = []
        var position = start
        while position < end {
            guard let key = try? reader.slot(at: &position, end: end, codingPath: codingPath),
                (try? reader.slot(at: &position, end: end, codingPath: codingPath)) != nil,
                let name = try? reader.string(key, codingPath: codingPath)
            else { break }
            if let key = Key(stringValue: name) { out.append(key) }
        }
        return out
    }

    /// The value of member `key`: searched from the cursor to the end, then from the start.
    private func find(_ key: Key) -> SlotReader.Slot? {
        let name = key.stringValue
        func scan(from: Int, to: Int) -> SlotReader.Slot? {
            var position = from
            while position < to {
                guard let found = try? reader.slot(at: &position, end: end, codingPath: codingPath),
                    let value = try? reader.slot(at: &position, end: end, codingPath: codingPath)
                else { return nil }
                if reader.equals(found, name) {
                    cursor = position
                    return value
                }
            }
            return nil
        }
        return scan(from: cursor, to: end) ?? scan(from: start, to: cursor)
    }

    private func value(_ key: Key) throws -> SlotReader.Slot {
        guard let slot = find(key) else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "snapshot: member missing"))
        }
        return slot
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool { try value(key).isNil }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try reader.bool(try value(key), codingPath: codingPath) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try reader.string(try value(key), codingPath: codingPath) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try reader.integer(try value(key), codingPath: codingPath) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try T(from: SlotDecoder(reader: reader, slot: try value(key), codingPath: codingPath))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let slot = find(key), !slot.isNil else { return nil }
        return try T(from: SlotDecoder(reader: reader, slot: slot, codingPath: codingPath))
    }

    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        guard let slot = find(key), !slot.isNil else { return nil }
        return try reader.string(slot, codingPath: codingPath)
    }

    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? {
        guard let slot = find(key), !slot.isNil else { return nil }
        return try reader.integer(slot, codingPath: codingPath)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try SlotDecoder(reader: reader, slot: try value(key), codingPath: codingPath).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try SlotDecoder(reader: reader, slot: try value(key), codingPath: codingPath).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { throw reader.corrupted(codingPath, "superDecoder is not used by snapshot states") }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw reader.corrupted(codingPath, "superDecoder is not used by snapshot states") }
}

struct UnkeyedSlotReader: UnkeyedDecodingContainer {
    let reader: SlotReader
    var cursor: Int
    let end: Int
    var codingPath: [any CodingKey]
    var count: Int? { nil }
    var isAtEnd: Bool { cursor >= end }
    private(set) var currentIndex = 0

    init(reader: SlotReader, cursor: Int, end: Int, codingPath: [any CodingKey]) {
        self.reader = reader
        self.cursor = cursor
        self.end = end
        self.codingPath = codingPath
    }

    private mutating func next() throws -> SlotReader.Slot {
        let slot = try reader.slot(at: &cursor, end: end, codingPath: codingPath)
        currentIndex += 1
        return slot
    }

    mutating func decodeNil() throws -> Bool {
        var peek = cursor
        guard try reader.slot(at: &peek, end: end, codingPath: codingPath).isNil else { return false }
        cursor = peek
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: String.Type) throws -> String { try reader.string(try next(), codingPath: codingPath) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try reader.integer(try next(), codingPath: codingPath) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try T(from: SlotDecoder(reader: reader, slot: try next(), codingPath: codingPath))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try SlotDecoder(reader: reader, slot: try next(), codingPath: codingPath).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try SlotDecoder(reader: reader, slot: try next(), codingPath: codingPath).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder { throw reader.corrupted(codingPath, "superDecoder is not used by snapshot states") }
}

// MARK: - Columns

#if _endian(big)
#error("snapshots store columns little-endian, as they are in memory here")
#endif

/// Snapshots write a column's elements after the tree, and read them when used; other coders
/// see an array.
extension Column: Codable {
    func encode(to encoder: any Encoder) throws {
        guard let slots = encoder as? SlotEncoder else {
            var container = encoder.singleValueContainer()
            try container.encode(elements)
            return
        }
        let writer = slots.writer
        let size = MemoryLayout<T>.size
        var content: [UInt8] = []
        for field in [UInt64(count), UInt64(size), writer.columnBytes] { withUnsafeBytes(of: field.littleEndian) { content.append(contentsOf: $0) } }
        withElements(in: 0..<count) { elements in
            let bytes = UnsafeRawBufferPointer(elements)
            for start in stride(from: 0, to: bytes.count, by: Self.blockBytes) {
                content.append(contentsOf: SHA256.hash(UnsafeRawBufferPointer(rebasing: bytes[start..<Swift.min(bytes.count, start + Self.blockBytes)])).rawRepresentation)
            }
        }
        writer.bytes.append(contentsOf: content)
        writer.columnBytes += UInt64(count * size)
        let column = self
        writer.columns.append { write in try column.withElements(in: 0..<column.count) { try write(UnsafeRawBufferPointer($0)) } }
    }

    init(from decoder: any Decoder) throws {
        guard let slots = decoder as? SlotDecoder else {
            self.init(try decoder.singleValueContainer().decode([T].self))
            return
        }
        let content = try slots.content()
        let reader = slots.reader
        func field(_ i: Int) -> UInt64 { content.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self).littleEndian }
        guard content.count >= 24, field(1) == UInt64(MemoryLayout<T>.size) else {
            throw reader.corrupted(slots.codingPath, "a column is not of \(T.self)")
        }
        let (count, offset) = (field(0), field(2))
        let dataBytes = reader.source.size >= reader.dataStart ? reader.source.size - reader.dataStart : 0
        guard count <= dataBytes / UInt64(MemoryLayout<T>.size), offset <= dataBytes - count * UInt64(MemoryLayout<T>.size) else {
            throw reader.corrupted(slots.codingPath, "a column runs past the end of the snapshot")
        }
        let blocks = (Int(count) * MemoryLayout<T>.size + Self.blockBytes - 1) / Self.blockBytes
        guard content.count == 24 + 32 * blocks else { throw reader.corrupted(slots.codingPath, "a column's checksums do not match its size") }
        self.init(count: Int(count), source: reader.source, offset: reader.dataStart + offset, hashes: Array(content[24...]))
    }
}
