import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore

/// A reviewer's saved state as the fuzzer sees it: an input that starts as a saved state does
/// (`ELSTATE3`) has its checksums made to match (``SavedState/withChecksumsMatching(_:)``), so
/// that changes to its header, rows, top fence levels and filters reach the code that reads them,
/// and is opened from a file. Nothing may crash, and every lookup must answer the same through the
/// reader that checks each block and through one that does not (the read-ahead's), until the
/// checking one checks the tables whole (after a few lookups in files this small); a lookup or
/// the whole check may only refuse the file. (Inputs of 32 KiB hold one fence level a table, read
/// when the file is opened; the lower levels are forged in a test of their own.)
enum SavedStateFuzzing {
    /// A new file holding `bytes`, removed once `body` has opened it (callers may run at once).
    static func withFile<R>(holding bytes: [UInt8], _ body: (String) -> R) -> R? {
        let path = NSTemporaryDirectory() + "/ledger-fuzz-\(UUID().uuidString).state"
        guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else { return nil }
        defer { try? FileManager.default.removeItem(atPath: path) }
        return body(path)
    }

    /// Ids the seed state holds, of each kind, and as many it does not.
    static let lookups: [(IDKind?, String)] = (0..<80).flatMap { i in
        [(.fact, "f\(i)"), (.event, "s\(i)"), (nil, "c\(i)"), (.evidence, "e\(i)"), (.attestation, "a\(i)")]
    }
    static let entries = (0..<80).map { SHA256.hash(Array("entry \($0)".utf8)) }

    static func run(_ bytes: [UInt8]) {
        let fixed = SavedState.withChecksumsMatching(bytes)
        guard let opened = withFile(holding: fixed.bytes, { try? SavedState(path: $0) }), let state = opened, let unchecked = state.cacheWarmer() else { return }
        // Blocks whose checksums were not remade (a file too large to remake that opens) are
        // refused by the checking reader alone: the answers may differ then, and only must not
        // crash. So may they once the checking reader has checked the tables whole, or refused
        // them then (rows out of order): it reads its rows through an index it built from them,
        // not through the fence keys stored, which a forged file can make lead a lookup astray.
        func agree<T: Equatable>(_ lookup: (SavedState) -> T, _ what: @autoclosure () -> String) {
            let sameWay = fixed.complete && !state.isCheckedWhole && state.readFailure == nil
            let (checked, notChecked) = (lookup(state), lookup(unchecked))
            precondition(!sameWay || checked == notChecked || state.readFailure != nil, "saved state: the readers disagree on \(what())")
        }
        for (kind, id) in lookups {
            if let kind {
                agree({ $0.sequence(of: kind, id) }, "\(kind) \(id)")
            } else {
                agree({ $0.claim(id) }, "claim \(id)")
            }
        }
        for entry in entries { agree({ $0.sequence(ofEntry: entry) }, "entry \(entry.shortHex())") }
        // The checking reader checks more: where it has no failure reading the same way, neither has the other.
        precondition(!fixed.complete || state.isCheckedWhole || state.readFailure != nil || unchecked.readFailure == nil, "saved state: only the reader that does not check failed")
        _ = try? state.checkWhole()
    }

    /// `state` after the statements of ``seedStatements`` (signed with `sign`), saved: rows
    /// enough for two fence levels, in under 32 KiB.
    static func seed(_ state: LedgerState, sign: ([String: JSONValue], String) -> Envelope?) -> [UInt8]? {
        var state = state
        for (n, (party, fields)) in seedStatements.enumerated() {
            let before = state.count
            if let envelope = sign(fields, party), let event = try? Event(payload: envelope.payload) {
                _ = try? state.admit(
                    envelope, event: event, entryID: entries[n % entries.count], sequence: before, acceptedAt: Timestamp(seconds: 1_600_675_200),
                    signaturesChecked: true)
            }
            if state.count == before { state.skip() }
        }
        let path = NSTemporaryDirectory() + "/ledger-fuzz-seed-\(UUID().uuidString).state"
        defer { try? FileManager.default.removeItem(atPath: path) }
        guard (try? SavedState.write(state, root: .zero, lastEntryID: .zero, logBytes: 0, to: path)) != nil else { return nil }
        return FileManager.default.contents(atPath: path).map { [UInt8]($0) }
    }

    /// Facts, claims on them, evidence for the claims and attestations of the evidence, with ids
    /// among ``lookups``.
    static var seedStatements: [(String, [String: JSONValue])] {
        (0..<30).flatMap { i -> [(String, [String: JSONValue])] in
            var out: [(String, [String: JSONValue])] = [
                ("inv", ["type": "fact.opened", "id": .string("s\(3 * i)"), "fact": .string("f\(2 * i)"), "proposition": .string("P\(i)")]),
                ("sub", ["type": "claim.asserted", "id": .string("s\(3 * i + 1)"), "claim": .string("c\(2 * i)"), "fact": .string("f\(2 * i)"), "stance": "denies", "statement": "No."]),
            ]
            if i % 2 == 0 {
                out.append(("inv", [
                    "type": "evidence.attached", "id": .string("s\(3 * i + 2)"), "evidence": .string("e\(i)"), "sha256": .string(Digest.zero.hexString), "size": 1,
                    "media_type": "text/plain", "title": "T", "supports": .array([.string("c\(2 * i)")]),
                ]))
            } else {
                out.append(("rev", ["type": "attestation.made", "id": .string("s\(3 * i + 2)"), "attestation": .string("a\(i)"), "target": .string("e\(i - 1)"), "kind": "reviewed"]))
            }
            return out
        }
    }
}
