@testable import LedgerCLI
import LedgerCore
import Testing

@Suite("Streamed reports")
struct StreamedOutputTests {
    /// Runs `printPretty` with `count` elements of about a kilobyte, then a failure: what it
    /// printed, and the error it threw.
    func failure(after count: Int) -> (printed: String, error: LedgerError?) {
        let element = JSONValue.string(String(repeating: "x", count: 1000)).prettyElement(streamedAt: ["facts"])
        var printed = ""
        do throws(LedgerError) {
            try JSONValue.printPretty(["as_of": .null], streaming: ["facts"], output: { printed += $0 }) { (emit) throws(LedgerError) in
                for _ in 0..<count { emit(element) }
                throw LedgerError(.damagedLog, "Entry 7 cannot be read back.")
            }
            return (printed, nil)
        } catch {
            return (printed, error)
        }
    }

    @Test("a report that fails after part of it was printed says the output is incomplete; before that, nothing is printed")
    func failurePartWay() throws {
        let late = failure(after: 100)
        #expect(late.error?.code == .damagedLog)
        #expect(late.error?.message == "The output above is incomplete: it stops inside \"facts\", after at most 100 elements. Entry 7 cannot be read back.")
        #expect(late.printed.hasPrefix("{\n  \"as_of\": null,\n  \"facts\": [\n    \"xxx"))
        #expect(!late.printed.hasSuffix("}\n"))
        let early = failure(after: 10)
        #expect(early.error?.message == "Entry 7 cannot be read back.")
        #expect(early.printed.isEmpty)
    }
}
