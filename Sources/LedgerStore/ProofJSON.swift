public import LedgerCore
import LedgerCrypto
public import LedgerMerkle

/// The JSON form of proofs (DESIGN.md, wire format 8), as `ledger prove --json` writes them and
/// `ledger check` reads them: sizes as integers, hashes as canonical padded base64 of exactly 32
/// bytes, exactly the members named and no others, so that one proof has one accepted text.
extension InclusionProof {
    /// `{"index", "tree_size", "leaf_hash", "proof": [hash…], "root"}`, members in that order.
    public var jsonText: String {
        ProofMembers.text([
            ("index", .integer(Int64(index))), ("tree_size", .integer(Int64(treeSize))), ("leaf_hash", .hash(leafHash)),
            ("proof", .array(hashes.map(JSONValue.hash))), ("root", .hash(root)),
        ])
    }

    /// Reads the JSON form; `source` names the input in errors.
    /// - Throws: ``LedgerError/Code/invalidProof`` naming the member at fault.
    public init(json: JSONValue, source: String) throws(LedgerError) {
        let o = try ProofMembers(json, source: source, ProofMembers.inclusion, other: (ProofMembers.consistency, "consistency"))
        self.init(
            index: try o.size("index"), treeSize: try o.size("tree_size"), leafHash: try o.hash("leaf_hash"), hashes: try o.hashes("proof"),
            root: try o.hash("root"))
    }
}

extension ConsistencyProof {
    /// `{"old_size", "new_size", "old_root", "new_root", "proof": [hash…]}`, members in that order.
    public var jsonText: String {
        ProofMembers.text([
            ("old_size", .integer(Int64(oldSize))), ("new_size", .integer(Int64(newSize))), ("old_root", .hash(oldRoot)),
            ("new_root", .hash(newRoot)), ("proof", .array(hashes.map(JSONValue.hash))),
        ])
    }

    /// Reads the JSON form; `source` names the input in errors.
    /// - Throws: ``LedgerError/Code/invalidProof`` naming the member at fault.
    public init(json: JSONValue, source: String) throws(LedgerError) {
        let o = try ProofMembers(json, source: source, ProofMembers.consistency, other: (ProofMembers.inclusion, "inclusion"))
        self.init(
            oldSize: try o.size("old_size"), newSize: try o.size("new_size"), oldRoot: try o.hash("old_root"), newRoot: try o.hash("new_root"),
            hashes: try o.hashes("proof"))
    }
}

extension JSONValue {
    /// A hash as proofs write it: canonical padded base64.
    fileprivate static func hash(_ digest: Digest) -> JSONValue { .string(Base64.encode(digest.rawRepresentation)) }
}

/// A proof's members, checked to be exactly the expected ones, read with errors naming them.
private struct ProofMembers {
    /// The members, in the order given, as one line of JSON.
    static func text(_ members: [(String, JSONValue)]) -> String {
        var out = JSONWriter()
        out.object { o in
            for (name, value) in members { o.value(name, value) }
        }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    static let inclusion = ["index", "tree_size", "leaf_hash", "proof", "root"]
    static let consistency = ["old_size", "new_size", "old_root", "new_root", "proof"]

    let members: [String: JSONValue]
    let source: String

    /// Reads the members `names`; `other` are those of the other kind of proof, and its name.
    init(_ json: JSONValue, source: String, _ names: [String], other: (names: [String], kind: String)) throws(LedgerError) {
        guard let members = json.objectValue else { throw LedgerError(.invalidProof, "\(source) is not a JSON object.") }
        guard Set(members.keys) == Set(names) else {
            if Set(members.keys) == Set(other.names) {
                throw LedgerError(.usage, "\(source) is \(other.kind == "inclusion" ? "an" : "a") \(other.kind) proof; check it with `ledger check \(other.kind)`.")
            }
            throw LedgerError(.invalidProof, "\(source) must have exactly \(names.dropLast().joined(separator: ", ")) and \(names.last ?? ""). Give the file `ledger prove --json` wrote.")
        }
        self.members = members
        self.source = source
    }

    private func read<T>(_ name: String, _ convert: (JSONValue) -> T?) throws(LedgerError) -> T {
        guard let value = members[name], let result = convert(value) else {
            throw LedgerError(.invalidProof, "\(source): member \"\(name)\" is missing or malformed (sizes are integers from 0, hashes canonical padded base64 of 32 bytes). Give the file `ledger prove --json` wrote.")
        }
        return result
    }

    private static func digest(_ value: JSONValue) -> Digest? {
        value.stringValue.flatMap { Base64.decodeCanonical($0) }.flatMap { try? Digest(rawRepresentation: $0) }
    }

    func size(_ name: String) throws(LedgerError) -> UInt64 {
        try read(name) { $0.integerValue.flatMap { $0 >= 0 ? UInt64($0) : nil } }
    }

    func hash(_ name: String) throws(LedgerError) -> Digest {
        try read(name, Self.digest)
    }

    func hashes(_ name: String) throws(LedgerError) -> [Digest] {
        try read(name) { value in
            guard let list = value.arrayValue else { return nil }
            let hashes = list.compactMap(Self.digest)
            return hashes.count == list.count ? hashes : nil
        }
    }
}
