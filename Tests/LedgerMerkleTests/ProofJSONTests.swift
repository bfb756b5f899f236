import Foundation
import LedgerCrypto
@testable import LedgerMerkle
import Testing

@Suite("Proof JSON")
struct ProofJSONTests {
    @Test("an inclusion proof encodes with exactly the export keys and base64 hashes, and decodes back")
    func inclusionRoundTrip() throws {
        let proof = try ReferenceVectors.tree.inclusionProof(index: 5, size: 8)
        let data = try JSONEncoder().encode(proof)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["index", "tree_size", "leaf_hash", "proof", "root"])
        #expect(object["index"] as? Int == 5)
        #expect(object["tree_size"] as? Int == 8)
        // base64 of testonly's NodeHashes()[0][5] and RootHashes()[8]:
        // echo 4271a2…b658 | xxd -r -p | base64, echo 5dc9da…4328 | xxd -r -p | base64
        #expect(object["leaf_hash"] as? String == "QnGia+DYqE8L1UyMMC58s6O10fpngKQLzOKHNHfatlg=")
        #expect(object["root"] as? String == "XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=")
        #expect((object["proof"] as? [String])?.count == 3)
        #expect(try JSONDecoder().decode(InclusionProof.self, from: data) == proof)
    }

    @Test("a consistency proof encodes with exactly the export keys and base64 hashes, and decodes back")
    func consistencyRoundTrip() throws {
        let proof = try ReferenceVectors.tree.consistencyProof(from: 6, to: 8)
        let data = try JSONEncoder().encode(proof)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(Set(object.keys) == ["old_size", "new_size", "old_root", "new_root", "proof"])
        #expect(object["old_size"] as? Int == 6 && object["new_size"] as? Int == 8)
        #expect(object["old_root"] as? String == Data(ReferenceVectors.roots[6].rawRepresentation).base64EncodedString())
        #expect(object["proof"] as? [String] == proof.hashes.map { Data($0.rawRepresentation).base64EncodedString() })
        #expect(try JSONDecoder().decode(ConsistencyProof.self, from: data) == proof)
    }

    @Test("decoding rejects hashes of the wrong length and non-canonical base64")
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
        func inclusion(leaf: String, proof: [String] = [], root: String) -> Data {
            let proofList = proof.map { "\"\($0)\"" }.joined(separator: ",")
            return Data(#"{"index":0,"tree_size":1,"leaf_hash":"\#(leaf)","proof":[\#(proofList)],"root":"\#(root)"}"#.utf8)
        }
        #expect(try JSONDecoder().decode(InclusionProof.self, from: inclusion(leaf: good, root: good)).hashes.isEmpty)
        for bad in [short, long, nonCanonical, unpadded, "", "not base64!"] {
            #expect(throws: DecodingError.self, "leaf \(bad)") {
                try JSONDecoder().decode(InclusionProof.self, from: inclusion(leaf: bad, root: good))
            }
            #expect(throws: DecodingError.self, "root \(bad)") {
                try JSONDecoder().decode(InclusionProof.self, from: inclusion(leaf: good, root: bad))
            }
            #expect(throws: DecodingError.self, "proof \(bad)") {
                try JSONDecoder().decode(InclusionProof.self, from: inclusion(leaf: good, proof: [good, bad], root: good))
            }
            let consistency = Data(
                #"{"old_size":1,"new_size":2,"old_root":"\#(good)","new_root":"\#(good)","proof":["\#(bad)"]}"#.utf8)
            #expect(throws: DecodingError.self) { try JSONDecoder().decode(ConsistencyProof.self, from: consistency) }
        }
        let missingKey = Data(#"{"index":0,"leaf_hash":"\#(good)","proof":[],"root":"\#(good)"}"#.utf8)
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(InclusionProof.self, from: missingKey) }
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
        }
    }
}
