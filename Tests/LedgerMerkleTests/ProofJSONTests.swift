import Foundation
import LedgerCore
import LedgerCrypto
@testable import LedgerMerkle
import LedgerStore
import Testing

@Suite("Proof JSON")
struct ProofJSONTests {
    func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test("an inclusion proof is written with exactly the export members, in order, hashes in base64, and reads back")
    func inclusionRoundTrip() throws {
        let proof = try ReferenceVectors.tree.inclusionProof(index: 5, size: 8)
        let text = proof.jsonText
        #expect(text.hasPrefix(#"{"index":5,"tree_size":8,"leaf_hash":"#))
        let object = try #require(try parse(text).objectValue)
        #expect(Set(object.keys) == ["index", "tree_size", "leaf_hash", "proof", "root"])
        // base64 of testonly's NodeHashes()[0][5] and RootHashes()[8]:
        // echo 4271a2…b658 | xxd -r -p | base64, echo 5dc9da…4328 | xxd -r -p | base64
        #expect(object["leaf_hash"]?.stringValue == "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=")
        #expect(object["root"]?.stringValue == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
        #expect(object["proof"]?.arrayValue?.count == 3)
        #expect(try InclusionProof(json: parse(text), source: "p") == proof)
    }

    @Test("a consistency proof is written with exactly the export members, in order, hashes in base64, and reads back")
    func consistencyRoundTrip() throws {
        let proof = try ReferenceVectors.tree.consistencyProof(from: 6, to: 8)
        let text = proof.jsonText
        #expect(text.hasPrefix(#"{"old_size":6,"new_size":8,"old_root":"\#(Data(ReferenceVectors.roots[6].rawRepresentation).base64EncodedString())","#))
        let object = try #require(try parse(text).objectValue)
        #expect(Set(object.keys) == ["old_size", "new_size", "old_root", "new_root", "proof"])
        #expect(object["proof"]?.arrayValue?.compactMap(\.stringValue) == proof.hashes.map { Data($0.rawRepresentation).base64EncodedString() })
        #expect(try ConsistencyProof(json: parse(text), source: "p") == proof)
    }

    @Test("reading refuses hashes of the wrong length and non-canonical base64, naming the member, and missing or extra members")
    func rejectsBadHashes() throws {
        let good = Data(ReferenceVectors.roots[8].rawRepresentation).base64EncodedString()
        let short = Data(ReferenceVectors.roots[8].rawRepresentation.dropLast()).base64EncodedString()
        let long = Data(ReferenceVectors.roots[8].rawRepresentation + [0]).base64EncodedString()
        // The last character before "=" carries 2 unused bits; setting one gives the same bytes to a
        // lenient decoder.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
        let last = try #require(good.dropLast().last.flatMap { alphabet.firstIndex(of: $0) })
        let nonCanonical = String(good.dropLast(2)) + String(alphabet[last | 1]) + "="
        let unpadded = String(good.dropLast())
        func inclusion(leaf: String, proof: [String] = [], root: String) throws -> JSONValue {
            let proofList = proof.map { "\"\($0)\"" }.joined(separator: ",")
            return try parse(#"{"index":0,"tree_size":1,"leaf_hash":"\#(leaf)","proof":[\#(proofList)],"root":"\#(root)"}"#)
        }
        func refused(_ member: String, _ read: () throws(LedgerError) -> Void) {
            do {
                try read()
                Issue.record("accepted a bad \(member)")
            } catch {
                #expect(error.code == .invalidProof && error.message.contains("\"\(member)\""), "\(error.message)")
            }
        }
        #expect(try InclusionProof(json: inclusion(leaf: good, root: good), source: "p").hashes.isEmpty)
        for bad in [short, long, nonCanonical, unpadded, "", "not base64!"] {
            let leaf = try inclusion(leaf: bad, root: good)
            refused("leaf_hash") { () throws(LedgerError) in _ = try InclusionProof(json: leaf, source: "p") }
            let root = try inclusion(leaf: good, root: bad)
            refused("root") { () throws(LedgerError) in _ = try InclusionProof(json: root, source: "p") }
            let path = try inclusion(leaf: good, proof: [good, bad], root: good)
            refused("proof") { () throws(LedgerError) in _ = try InclusionProof(json: path, source: "p") }
            let consistency = try parse(#"{"old_size":1,"new_size":2,"old_root":"\#(good)","new_root":"\#(good)","proof":["\#(bad)"]}"#)
            refused("proof") { () throws(LedgerError) in _ = try ConsistencyProof(json: consistency, source: "p") }
        }
        for text in [#"{"index":0,"leaf_hash":"\#(good)","proof":[],"root":"\#(good)"}"#, #"{"index":0,"tree_size":1,"leaf_hash":"\#(good)","proof":[],"root":"\#(good)","extra":1}"#] {
            let json = try parse(text)
            #expect(throws: LedgerError(.invalidProof, "")) { try InclusionProof(json: json, source: "p") }
        }
        let negative = try parse(#"{"index":-1,"tree_size":1,"leaf_hash":"\#(good)","proof":[],"root":"\#(good)"}"#)
        refused("index") { () throws(LedgerError) in _ = try InclusionProof(json: negative, source: "p") }
    }

    @Test("base64 matches Foundation on every length and rejects every non-canonical variant")
    func base64() throws {
        var random = SplitMix64(seed: 7)
        for length in 0..<70 {
            let input = (0..<length).map { _ in UInt8.random(in: 0...255, using: &random) }
            let encoded = Base64.encode(input)
            #expect(encoded == Data(input).base64EncodedString())
            #expect(Base64.decodeCanonical(encoded) == input)
            // Changing any one character either fails to decode or changes the bytes.
            var characters = Array(encoded.utf8)
            for position in characters.indices {
                let original = characters[position]
                for replacement in Array("AB/+=a0 \n".utf8) where replacement != original {
                    characters[position] = replacement
                    if let decoded = Base64.decodeCanonical(utf8: characters) {
                        #expect(decoded != input, "\(encoded) at \(position)")
                    }
                }
                characters[position] = original
            }
            // Read as Go's StdEncoding reads: every setting of the unused bits gives the same
            // bytes, and only zero bits are the canonical spelling.
            let padding = characters.reversed().prefix { $0 == UInt8(ascii: "=") }.count
            guard padding > 0 else {
                #expect(Base64.decodeIgnoringUnusedBits(utf8: characters).map { [$0.bytes == input, $0.canonical] } == [true, true])
                continue
            }
            let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
            let last = characters.count - padding - 1
            let value = try #require(alphabet.firstIndex(of: characters[last]))
            for bits in 0..<(padding == 1 ? 4 : 16) {
                var variant = characters
                variant[last] = alphabet[value | bits]
                let read = Base64.decodeIgnoringUnusedBits(utf8: variant)
                #expect(read?.bytes == input && read?.canonical == (bits == 0), "\(encoded) with unused bits \(bits)")
                #expect((Base64.decodeCanonical(utf8: variant) != nil) == (bits == 0))
            }
        }
    }
}
