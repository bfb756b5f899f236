import Foundation
@testable import LedgerCore
import LedgerCrypto
import Testing

@Suite("The one-pass record reader")
struct CanonicalRecordTests {
    static let sampleLog = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Ledger/amnesty-2020/log")

    @Test("it reads every canonical record, and any record it accepts, the general reader accepts with the same value")
    func agreesWithTheGeneralReader() throws {
        let lines = try Data(contentsOf: Self.sampleLog).split(separator: 0x0a).map { [UInt8]($0) }
        #expect(lines.count == 40)
        var random = SplitMix64(seed: 107)
        var accepted = 0
        for line in lines {
            let fast = try #require(canonical(line), "a canonical sample record is not read in one pass")
            #expect(try Record.general(line) == fast)
            // Mutations: one byte changed, inserted or removed, at random places.
            for _ in 0..<300 {
                var mutated = line
                let at = Int.random(in: 0..<mutated.count, using: &random)
                switch Int.random(in: 0..<3, using: &random) {
                case 0: mutated[at] = UInt8.random(in: 0...255, using: &random)
                case 1: mutated.insert(UInt8.random(in: 0x20...0x7e, using: &random), at: at)
                default: mutated.remove(at: at)
                }
                if let value = canonical(mutated) {
                    accepted += 1
                    #expect((try? Record.general(mutated)) == value, "one-pass reader accepted what the general reader reads differently: \(String(decoding: mutated, as: UTF8.self))")
                }
            }
        }
        // Some mutations stay valid (a digit of seq, a hex digit of prev): both readers agree on them.
        #expect(accepted > 0)
    }

    @Test("non-canonical spellings of a record are left to the general reader, which refuses them")
    func nonCanonical() throws {
        let line = try #require(Data(contentsOf: Self.sampleLog).split(separator: 0x0a).first.map { [UInt8]($0) })
        let text = String(decoding: line, as: UTF8.self)
        for variant in [
            text.replacingOccurrences(of: "{\"seq\":0,", with: "{\"seq\":0 ,"),
            text.replacingOccurrences(of: "{\"seq\":0,", with: "{\"seq\":00,"),
            text.replacingOccurrences(of: "=\"", with: "\""),
            text.uppercased(),
        ] {
            #expect(canonical(Array(variant.utf8)) == nil)
            #expect(throws: LedgerError.self) { try Record(stored: Array(variant.utf8)) }
        }
    }

    /// The one-pass reader over an array's bytes.
    func canonical(_ bytes: [UInt8]) -> Record? { bytes.withUnsafeBufferPointer(Record.canonical) }
}
