import Foundation
import LedgerCore
import LedgerCrypto
import Synchronization
import Testing

@Suite("The sample case: disputed facts of Ledger/amnesty-2020")
struct SampleCaseTests {
    static let sample = CLI.repositoryRoot.appendingPathComponent("Ledger/amnesty-2020").path

    /// The facts as `ledger facts --json` reports them, by fact id.
    func facts(_ extra: [String] = []) throws -> [String: [String: JSONValue]] {
        let result = try CLI.run(["facts", Self.sample, "--json", "--no-snapshots"] + extra)
        #expect(result.status == 0, "\(result.stderr)")
        let value = try JSONParser.parse(Array(result.stdout.utf8.dropLast()))
        var out: [String: [String: JSONValue]] = [:]
        for fact in value.objectValue?["facts"]?.arrayValue ?? [] {
            if let object = fact.objectValue, let id = object["fact"]?.stringValue { out[id] = object }
        }
        return out
    }

    func claims(_ fact: [String: JSONValue]?) -> [String: (status: String, reason: String)] {
        var out: [String: (String, String)] = [:]
        for claim in fact?["claims"]?.arrayValue ?? [] {
            guard let o = claim.objectValue, let id = o["claim"]?.stringValue else { continue }
            out[id] = (o["status"]?.stringValue ?? "", o["reason"]?.stringValue ?? "")
        }
        return out
    }

    @Test("separate processes print the same bytes: no answer depends on the order of a hash table, whose seed differs from process to process")
    func sameBytesAcrossProcesses() throws {
        var commands: [[String]] = [["facts", "--json"], ["facts"], ["parties", "--json"], ["fact", "idemia-system-deployed", "--json"], ["fact", "idemia-system-deployed"]]
        for projection in ["disputed-facts", "timeline", "evidence-index", "parties-and-keys"] { commands.append(["replay", "--projection", projection, "--json"]) }
        for command in commands {
            let arguments = [command[0], Self.sample] + command.dropFirst() + ["--no-snapshots"]
            let outputs = try (0..<3).map { _ in try CLI.run(arguments) }
            #expect(outputs.allSatisfy { $0.status == 0 && !$0.stdout.isEmpty }, "\(command)")
            #expect(Set(outputs.map(\.stdout)).count == 1, "\(command)")
        }
    }

    @Test("every fact of the case has the expected dispute status, claim statuses and finding")
    func statuses() throws {
        let facts = try facts()
        let expected: [String: (dispute: String, finding: String?)] = [
            "idemia-sold-to-chinese-police": ("uncontested", "substantiated"),
            "idemia-system-deployed": ("disputed", "inconclusive"),
            "idemia-realtime-capable": ("uncontested", "inconclusive"),
            "axis-export-licence-required": ("uncontested", "unsubstantiated"),
            "axis-mass-surveillance": ("uncontested", nil),
            "used-against-uyghurs": ("uncontested", "inconclusive"),
            "noldus-exported-to-china": ("uncontested", nil),
        ]
        #expect(Set(facts.keys) == Set(expected.keys))
        for (id, want) in expected {
            #expect(facts[id]?["dispute_status"]?.stringValue == want.dispute, "\(id)")
            #expect(facts[id]?["finding"]?.objectValue?["outcome"]?.stringValue == want.finding, "\(id)")
            #expect(facts[id]?["integrity"]?.arrayValue == [], "\(id): signatures, keys and the article's blob all hold")
        }
        // "Never deployed": Idemia's denial and Amnesty's counterclaim attack each other, and
        // nothing else settles either, so under grounded semantics both are undecided.
        let deployed = claims(facts["idemia-system-deployed"])
        #expect(deployed["idemia-never-deployed"]?.status == "undecided")
        #expect(deployed["idemia-never-deployed"]?.reason == "undecided: claim amnesty-rejects-never-deployed and it attack each other, and nothing else settles either")
        #expect(deployed["amnesty-rejects-never-deployed"]?.status == "undecided")
        // The premature Uyghur claim was retracted: it is no longer an active claim.
        let uyghurs = claims(facts["used-against-uyghurs"])
        #expect(uyghurs.keys.sorted() == ["newsroom-uyghurs-not-impossible"])
        #expect(uyghurs["newsroom-uyghurs-not-impossible"]?.status == "accepted")
        #expect(claims(facts["idemia-realtime-capable"])["idemia-no-realtime"]?.reason == "accepted: nothing attacks it")
    }

    @Test("as of a moment before Amnesty's counterclaim, \"the system was deployed\" is uncontested and Idemia's denial stands")
    func asOfBeforeCounterclaim() throws {
        for asOf in ["19", "2020-09-21T17:30:00Z"] {
            let facts = try facts(["--as-of", asOf])
            #expect(facts["idemia-system-deployed"]?["dispute_status"]?.stringValue == "uncontested", "as of \(asOf)")
            #expect(claims(facts["idemia-system-deployed"])["idemia-never-deployed"]?.status == "accepted", "as of \(asOf)")
            #expect(facts["idemia-system-deployed"]?["finding"] == .null, "as of \(asOf): no finding yet")
        }
        let after = try facts(["--as-of", "20"])
        #expect(after["idemia-system-deployed"]?["dispute_status"]?.stringValue == "disputed")
        // Past the end is a usage mistake (an answer as of it would be today's; 20200922 is a
        // date without its dashes), for every command that replays.
        for command in [["facts"], ["replay", "--projection", "parties-and-keys"]] {
            for asOf in ["40", "20200922"] {
                let past = try CLI.run([command[0], Self.sample] + command.dropFirst() + ["--no-snapshots", "--as-of", asOf])
                #expect(past.status == 2 && past.stdout.isEmpty, "\(command) \(asOf): \(past)")
                #expect(past.stderr.contains("--as-of \(asOf) is past the ledger's last entry (39)"), "\(past.stderr)")
            }
        }
        #expect(try CLI.run(["facts", Self.sample, "--no-snapshots", "--as-of", "39"]).status == 0)
    }

    @Test("the readable table lists every fact; one fact shows its reasons and timeline, each event with its entry id")
    func readable() throws {
        let table = try CLI.run(["facts", Self.sample, "--no-snapshots"])
        #expect(table.status == 0)
        #expect(table.stdout.contains("idemia-system-deployed") && table.stdout.contains("disputed"))
        #expect(!table.stdout.contains("\u{1b}["), "no colour when stdout is not a terminal")
        let fact = try CLI.run(["fact", Self.sample, "idemia-system-deployed", "--no-snapshots"])
        #expect(fact.status == 0)
        #expect(fact.stdout.contains("attack each other"))
        // The timeline names each event's entry by the first 16 hex digits of its id, which
        // `show` gives whole.
        let lines = fact.stdout.split(separator: "\n").map(String.init)
        let header = try #require(lines.firstIndex { $0.hasPrefix("SEQ ") })
        #expect(lines[header].split(separator: " ") == ["SEQ", "ENTRY", "ACCEPTED_AT", "SIGNED_AT", "PUBLISHED_AT", "AUTHOR", "EVENT"], "\(lines[header])")
        let rows = lines[(header + 1)...]
        // The evidence the finding (35) relies on comes whole: its attachment (24), custody (25,
        // 26) and attestation (30), though it bears on claims of other facts.
        #expect(rows.map { $0.split(separator: " ")[0] } == ["7", "18", "20", "24", "25", "26", "30", "31", "32", "35"])
        for row in rows {
            let cells = row.split(separator: " ")
            let shown = try CLI.run(["show", Self.sample, String(cells[0]), "--json"])
            let entryID = try #require(try JSONParser.parse(Array(shown.stdout.utf8.dropLast())).objectValue?["entry_id"]?.stringValue)
            #expect(cells[1] == entryID.prefix(16) && cells[1].count == 16, "\(row)")
        }
        let missing = try CLI.run(["fact", Self.sample, "no-such-fact", "--no-snapshots"])
        #expect(missing.status == 2)
    }

    @Test("facts --json, printed fact by fact, is byte for byte the indented form of the whole answer")
    func streamedJSON() throws {
        func pretty(_ value: JSONValue, _ depth: Int) -> String {
            let inner = String(repeating: "  ", count: depth + 1)
            let outer = String(repeating: "  ", count: depth)
            switch value {
            case let .array(elements) where !elements.isEmpty:
                return "[\n" + elements.map { inner + pretty($0, depth + 1) }.joined(separator: ",\n") + "\n\(outer)]"
            case let .object(members) where !members.isEmpty:
                return "{\n" + members.keys.sorted().map { key in
                    var name = JSONWriter()
                    name.string(key)
                    return inner + String(decoding: name.bytes, as: UTF8.self) + ": " + pretty(members[key]!, depth + 1)
                }.joined(separator: ",\n") + "\n\(outer)}"
            default:
                var writer = JSONWriter()
                writer.value(value)
                return String(decoding: writer.bytes, as: UTF8.self)
            }
        }
        for extra in [[], ["--status", "withdrawn"], ["--as-of", "12"]] {
            let result = try CLI.run(["facts", Self.sample, "--json", "--no-snapshots"] + extra)
            #expect(result.status == 0)
            let value = try JSONParser.parse(Array(result.stdout.utf8))
            #expect(result.stdout == pretty(value, 0) + "\n", "\(extra)")
        }
    }

    @Test("--status keeps the facts of that status only, in JSON and in the table; each is the one `fact` shows")
    func statusFilter() throws {
        let disputed = try facts(["--status", "disputed"])
        #expect(Array(disputed.keys) == ["idemia-system-deployed"])
        #expect(try facts(["--status", "withdrawn"]).isEmpty)
        let uncontested = try facts(["--status", "uncontested"])
        #expect(uncontested.count == 6 && uncontested.values.allSatisfy { $0["dispute_status"]?.stringValue == "uncontested" })
        let table = try CLI.run(["facts", Self.sample, "--no-snapshots", "--status", "disputed"])
        #expect(table.stdout.hasPrefix("\(Self.sample): 1 of 7 facts, disputed only"))
        #expect(table.stdout.contains("idemia-system-deployed") && !table.stdout.contains("noldus-exported-to-china"))
        for (id, fact) in try facts() {
            let one = try CLI.run(["fact", Self.sample, id, "--json", "--no-snapshots"])
            let value = try JSONParser.parse(Array(one.stdout.utf8.dropLast()))
            #expect(value.objectValue?["fact"] == .object(fact), "\(id)")
        }
    }

    @Test("a snapshot is used only under the key of the user who wrote it: one changed with its checksum remade, or written under another user's key, is not resumed from")
    func snapshotsUnderTheUsersKey() throws {
        let work = try WorkDirectory()
        let copy = work.path("copy")
        try FileManager.default.copyItem(atPath: Self.sample, toPath: copy)
        let fromLog = try CLI.run(["facts", copy, "--json", "--no-snapshots"])
        try CLI.succeed(["snapshot", copy])
        let resumed = try CLI.run(["facts", copy, "--json", "--verbose"])
        #expect(resumed.stdout == fromLog.stdout && resumed.stderr.contains("resumed from the snapshot at entry 39"), "\(resumed.stderr)")
        // Another user (another state directory): the snapshot is not theirs, and their key is
        // made, readable by them alone.
        let other = ["XDG_STATE_HOME": work.path("other-user")]
        let notTheirs = try CLI.run(["facts", copy, "--json", "--verbose"], environment: other)
        #expect(notTheirs.status == 0 && notTheirs.stdout == fromLog.stdout, "\(notTheirs.stderr)")
        #expect(notTheirs.stderr.contains("replayed from genesis") && notTheirs.stderr.contains("not written under your snapshot key"), "\(notTheirs.stderr)")
        let key = try FileManager.default.attributesOfItem(atPath: work.path("other-user/evidence-ledger/snapshot-key"))
        #expect((key[.posixPermissions] as? Int) == 0o600 && (key[.size] as? Int) == 32)
        // Idemia's key made valid from entry 1,000,000 in the disputed-facts snapshot, its
        // checksum remade as anyone who can write the directory can: Idemia's claims would count
        // for nothing. (It refreshed the snapshot under the other user's key meanwhile: written again.)
        try CLI.succeed(["snapshot", copy])
        let path = copy + "/snapshots/disputed-facts-v8-00000000000000000039.snapshot"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let treeEnd = 16 + Int(bytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) })
        let party = try #require(bytes.firstRange(of: [5, 0, 0, 0] + Array("party".utf8) + [6, 0, 0, 0] + Array("idemia".utf8)))
        let validFrom = try #require(bytes[party.upperBound..<treeEnd].firstRange(of: [10, 0, 0, 0] + Array("valid_from".utf8) + [8, 0, 0, 0]))
        withUnsafeBytes(of: UInt64(1_000_000).littleEndian) { bytes.replaceSubrange(validFrom.upperBound..<(validFrom.upperBound + 8), with: $0) }
        bytes.replaceSubrange(treeEnd..<(treeEnd + 32), with: SHA256.hash(bytes[..<treeEnd]).rawRepresentation)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let forged = try CLI.run(["facts", copy, "--json", "--verbose"])
        #expect(forged.stdout == fromLog.stdout && forged.stderr.contains("replayed from genesis"), "\(forged.stderr)")

        // A key others may read is no key (whoever read it could forge snapshots), nor is a FIFO
        // there, which is not waited on; the answers stay the log's.
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: work.path("other-user/evidence-ledger/snapshot-key"))
        try FileManager.default.createDirectory(atPath: work.path("fifo-user/evidence-ledger"), withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        #expect(mkfifo(work.path("fifo-user/evidence-ledger/snapshot-key"), 0o600) == 0)
        for user in ["other-user", "fifo-user"] {
            let noKey = try CLI.run(["facts", copy, "--json", "--verbose"], environment: ["XDG_STATE_HOME": work.path(user)])
            #expect(noKey.status == 0 && noKey.stdout == fromLog.stdout && noKey.stderr.contains("no snapshot is read") && noKey.stderr.contains("is not a snapshot key"), "\(user): \(noKey.stderr)")
        }

        // Commands that start at once on a new account all take one key: what each wrote is used.
        let fresh = ["XDG_STATE_HOME": work.path("new-user")]
        // Each snapshots a ledger of its own, so that each snapshot's key is the one it made or took.
        let copies = try (0..<6).map { n in
            let path = work.path("copy-\(n)")
            try FileManager.default.copyItem(atPath: Self.sample, toPath: path)
            return path
        }
        let statuses = Mutex<[Int32]>([])
        DispatchQueue.concurrentPerform(iterations: copies.count) { n in
            let status = (try? CLI.run(["snapshot", copies[n], "--projection", "parties-and-keys"], environment: fresh).status) ?? -1
            statuses.withLock { $0.append(status) }
        }
        #expect(statuses.withLock { $0 } == [Int32](repeating: 0, count: copies.count))
        for path in copies {
            let parties = try CLI.run(["replay", path, "--projection", "parties-and-keys", "--verbose"], environment: fresh)
            #expect(parties.status == 0 && parties.stderr.contains("resumed from the snapshot at entry 39"), "\(path): \(parties.stderr)")
        }
    }

    @Test("a record changed in place (its acceptance time, which no signature covers) stops every reading command: no answer from it")
    func changedRecordStopsReaders() throws {
        let work = try WorkDirectory()
        let copy = work.path("copy")
        try FileManager.default.copyItem(atPath: Self.sample, toPath: copy)
        var lines = try String(contentsOfFile: copy + "/log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let changed = lines[12].replacingOccurrences(of: #"accepted_at":"2020"#, with: #"accepted_at":"2019"#)
        #expect(changed != lines[12])
        lines[12] = changed
        try lines.joined(separator: "\n").write(toFile: copy + "/log", atomically: true, encoding: .utf8)
        let commands: [[String]] = [
            ["facts", copy], ["fact", copy, "idemia-system-deployed"], ["parties", copy],
            ["replay", copy, "--projection", "parties-and-keys"], ["replay", copy, "--projection", "evidence-index"],
            ["replay", copy, "--projection", "timeline"],
        ]
        for command in commands {
            let result = try CLI.run(command + ["--no-snapshots"])
            #expect(result.status == 1, "\(command): \(result.stdout)")
            #expect(result.stderr.contains("error [damaged-log]: The log is damaged at entry 13: its link names"), "\(command): \(result.stderr)")
        }
        // Nor do blob check and the export of leaves answer from it; leaves before it are exported.
        for command in [["blob", "check", copy], ["export", "leaves", copy]] {
            let result = try CLI.run(command)
            #expect(result.status == 1 && result.stderr.contains("error [damaged-log]: The log is damaged at entry 13: its link names"), "\(command): \(result)")
        }
        let before = try CLI.run(["export", "leaves", copy, "--to", "12"])
        #expect(before.status == 0 && before.stdout.split(separator: "\n").count == 12, "\(before)")
        // Up to the changed record: the link of the one after it shows the change.
        let upTo = try CLI.run(["export", "leaves", copy, "--to", "13"])
        #expect(upTo.status == 1 && upTo.stderr.contains("The log is damaged at entry 13: its link names"), "\(upTo)")
        // `show` prints the record as stored, by number as by entry id, and says the log is damaged.
        let shown = try CLI.run(["show", copy, "12"])
        #expect(shown.status == 0 && shown.stdout.contains("accepted at: 2019") && shown.stderr.contains("Entry 12 is shown as stored"), "\(shown)")
        #expect(shown.stderr.contains("the index recorded entry id") && shown.stderr.contains("for entry 12 when it was written"), "\(shown)")
        // The last record changed: nothing links after it, so the index alone shows it.
        var last = lines[39]
        last = last.replacingOccurrences(of: #"accepted_at":"2020"#, with: #"accepted_at":"2021"#)
        #expect(last != lines[39])
        let lastCopy = work.path("last")
        try FileManager.default.copyItem(atPath: Self.sample, toPath: lastCopy)
        var original = try String(contentsOfFile: lastCopy + "/log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        original[39] = last
        try original.joined(separator: "\n").write(toFile: lastCopy + "/log", atomically: true, encoding: .utf8)
        let lastShown = try CLI.run(["show", lastCopy, "39"])
        #expect(lastShown.status == 0 && lastShown.stdout.contains("accepted at: 2021") && lastShown.stderr.contains("for entry 39 when it was written"), "\(lastShown)")
        for command in [["blob", "check", lastCopy], ["export", "leaves", lastCopy]] {
            let result = try CLI.run(command)
            #expect(result.status == 1 && result.stderr.contains("whose entry 39 is not the record the index recorded"), "\(command): \(result.stderr)")
        }
        // A blob it cannot read (status 3) does not hide that evidence: the status is 1.
        let blob = lastCopy + "/blobs/sha256/254ca23ec5342e179ef675e50fc2e6df2dd6d272f41b96a36ec247d3d663b405"
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.createDirectory(atPath: blob, withIntermediateDirectories: false)
        let unreadable = try CLI.run(["blob", "check", lastCopy])
        #expect(unreadable.status == 1 && unreadable.stdout.contains("UNREADABLE") && unreadable.stderr.contains("whose entry 39 is not the record the index recorded"), "\(unreadable)")
        let entryID = try #require(shown.stdout.split(separator: "\n").first { $0.hasPrefix("entry id:") }?.split(separator: " ").last)
        #expect(try CLI.run(["show", copy, String(entryID)]).stdout == shown.stdout)
        let intact = try CLI.run(["show", copy, "11"])
        #expect(intact.status == 0 && intact.stderr.isEmpty, "\(intact)")
    }
}
