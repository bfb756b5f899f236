import Foundation
import LedgerCore
import LedgerCrypto
import LedgerProjections
import LedgerStore
import Testing

@Suite("The ledger command")
struct CLITests {
    /// A ledger with an admin, an investigator (amnesty), a reviewer and a subject, made
    /// through the CLI only.
    func makeLedger(_ work: WorkDirectory) throws {
        for party in ["admin", "amnesty", "newsroom", "idemia"] {
            #expect(try CLI.run(["key", "generate", "--out", work.path("\(party).pem")]).status == 0)
        }
        let created = try CLI.run(["init", work.path("led"), "--origin", "test.example/cli", "--admin-key", work.path("admin.pem")])
        #expect(created.status == 0, "\(created.stderr)")
        var envelopes = ""
        for (party, role) in [("amnesty", "investigator"), ("newsroom", "reviewer"), ("idemia", "subject")] {
            let publicKey = try CLI.run(["key", "public", work.path("\(party).pem")]).stdout
            let raw = try #require(publicKey.split(separator: "\n").first { $0.hasPrefix("raw (base64): ") }).dropFirst("raw (base64): ".count)
            try work.write("reg-\(party).json", #"{"type":"party.registered","id":"reg-\#(party)","party":"\#(party)","name":"\#(party)","role":"\#(role)","keys":["\#(raw)"]}"#)
            let signed = try CLI.run(["sign", "--key", work.path("admin.pem"), "--author", "admin", work.path("reg-\(party).json")])
            #expect(signed.status == 0, "\(signed.stderr)")
            envelopes += signed.stdout
        }
        let appended = try CLI.run(["append", work.path("led")], stdin: envelopes)
        #expect(appended.status == 0, "\(appended.stderr)")
        #expect(appended.stdout.split(separator: "\n").map { $0.split(separator: " ")[0] } == ["1", "2", "3"])
    }

    func signAndAppend(_ work: WorkDirectory, _ party: String, _ json: String) throws -> CLI.Result {
        try work.write("event.json", json)
        let signed = try CLI.run(["sign", "--key", work.path("\(party).pem"), "--author", party, work.path("event.json")])
        guard signed.status == 0 else { return signed }
        try work.write("envelope.json", signed.stdout)
        return try CLI.run(["append", work.path("led"), work.path("envelope.json")])
    }

    @Test("every event type goes through sign, append and show unchanged")
    func roundTrips() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        let digest = SHA256.hash(Array("doc".utf8)).hexString
        let newKey = try SigningKey.generate()
        let events: [(String, String)] = [
            ("amnesty", #"{"type":"fact.opened","id":"open-f1","fact":"f1","proposition":"The system was deployed","subjects":["idemia"],"tags":["deployment"]}"#),
            ("idemia", #"{"type":"claim.asserted","id":"c1","claim":"c1","fact":"f1","stance":"denies","statement":"Never deployed.","source":{"uri":"https://example.org/a","published_at":"2020-09-21T00:00:00Z","quote":"jamais"}}"#),
            ("amnesty", #"{"type":"claim.countered","id":"c2","claim":"c2","counters":"c1","fact":"f1","stance":"affirms","statement":"It was deployed."}"#),
            ("amnesty", #"{"type":"claim.amended","id":"c2-a","claim":"c2","statement":"It was deployed in 2019.","reason":"precision"}"#),
            ("amnesty", #"{"type":"evidence.attached","id":"e1","evidence":"e1","sha256":"\#(digest)","size":3,"media_type":"text/plain","title":"Doc","supports":["c2"],"contradicts":["c1"],"captured_at":"2020-09-22T10:00:00Z","custodian":"Amnesty"}"#),
            ("amnesty", #"{"type":"custody.recorded","id":"cu1","evidence":"e1","action":"collected","to":"Amnesty"}"#),
            ("newsroom", #"{"type":"attestation.made","id":"at1","attestation":"at1","target":"e1","kind":"reviewed"}"#),
            ("newsroom", #"{"type":"finding.recorded","id":"fd1","finding":"fd1","fact":"f1","outcome":"inconclusive","rationale":"Not enough.","relies_on":["e1"]}"#),
            ("idemia", #"{"type":"claim.asserted","id":"c3","claim":"c3","fact":"f1","stance":"qualifies","statement":"Post-event only."}"#),
            ("idemia", #"{"type":"claim.retracted","id":"c3-r","claim":"c3","reason":"withdrawn"}"#),
            ("amnesty", #"{"type":"key.added","id":"k1","party":"amnesty","key":"\#(Base64.encode(newKey.publicKey.rawRepresentation))","reason":"second officer"}"#),
            ("amnesty", #"{"type":"key.revoked","id":"k2","party":"amnesty","key":"\#(Base64.encode(newKey.publicKey.rawRepresentation))","reason":"left"}"#),
        ]
        for (i, (party, json)) in events.enumerated() {
            let result = try signAndAppend(work, party, json)
            #expect(result.status == 0, "\(json): \(result.stderr)")
            let sequence = 4 + i
            let fields = result.stdout.split(separator: " ")
            #expect(fields.first.map(String.init) == String(sequence))
            let shown = try CLI.run(["show", work.path("led"), String(sequence), "--json"])
            #expect(shown.status == 0)
            let value = try JSONParser.parse(Array(shown.stdout.utf8.dropLast()))
            let event = try #require(value.objectValue?["event"]?.objectValue)
            let original = try #require(JSONParser.parse(Array(json.utf8)).objectValue)
            for (key, expected) in original { #expect(event[key] == expected, "\(key) of event \(sequence)") }
            #expect(event["author"] == .string(party))
            // Show by entry id gives the same entry.
            let entryID = String(fields[1]).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(value.objectValue?["entry_id"]?.stringValue == entryID)
            #expect(try CLI.run(["show", work.path("led"), entryID, "--json"]).stdout == shown.stdout)
        }
        let verified = try CLI.run(["verify", work.path("led")])
        #expect(verified.status == 0)
        #expect(verified.stdout.contains("intact. 16 entries"))
        let log = try CLI.run(["log", work.path("led"), "--from", "4", "--limit", "2", "--json"])
        #expect(log.stdout.split(separator: "\n").count == 2)
        #expect(log.stdout.contains("\"type\":\"fact.opened\""))
    }

    @Test("exit statuses: 0 success, 1 rejected or damaged, 2 usage, 3 environment")
    func exitStatuses() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        // 1: a subject may not record a finding; the statement is rejected.
        let rejected = try signAndAppend(work, "idemia", #"{"type":"finding.recorded","id":"x","finding":"x","fact":"nope","outcome":"substantiated","rationale":"r"}"#)
        #expect(rejected.status == 1)
        #expect(rejected.stderr.contains("error [role-not-allowed]"))
        // 1: a signature from a key that is not registered.
        #expect(try CLI.run(["key", "generate", "--out", work.path("stranger.pem")]).status == 0)
        try work.write("f.json", #"{"type":"fact.opened","id":"o","fact":"f","proposition":"P"}"#)
        try work.write("env.json", CLI.run(["sign", "--key", work.path("stranger.pem"), "--author", "amnesty", work.path("f.json")]).stdout)
        let unknown = try CLI.run(["append", work.path("led"), work.path("env.json")])
        #expect(unknown.status == 1)
        #expect(unknown.stderr.contains("[unknown-key]"))
        // 2: usage mistakes.
        #expect(try CLI.run(["verify"]).status == 2)
        #expect(try CLI.run(["append", work.path("led"), "--no-such-option"]).status == 2)
        #expect(try CLI.run(["show", work.path("led"), "not-an-id"]).status == 2)
        #expect(try CLI.run(["show", work.path("led"), "999"]).status == 2)
        #expect(try CLI.run(["sign", "--key", work.path("missing.pem"), "--author", "a", work.path("f.json")]).status == 2)
        #expect(try CLI.run(["key", "generate", "--out", work.path("amnesty.pem")]).status == 2, "refuses to overwrite a key")
        // 2: not a ledger.
        let notLedger = try CLI.run(["verify", work.path("nowhere")])
        #expect(notLedger.status == 2)
        #expect(notLedger.stderr.contains("[not-a-ledger]"))
        // 1: damage.
        var log = try Data(contentsOf: URL(fileURLWithPath: work.path("led/log")))
        log[log.count / 2] ^= 0x01
        try log.write(to: URL(fileURLWithPath: work.path("led/log")))
        let damaged = try CLI.run(["verify", work.path("led")])
        #expect(damaged.status == 1)
        #expect(damaged.stdout.contains("DAMAGED"))
    }

    /// Acceptance times never go backwards: one in the future would be every later entry's.
    @Test("an --accepted-at later than now is refused by append and init, and nothing is written")
    func futureAcceptanceTime() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        try work.write("f.json", #"{"type":"fact.opened","id":"f-later","fact":"f-later","proposition":"P"}"#)
        let signed = try CLI.run(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", work.path("f.json")])
        let log = try Data(contentsOf: URL(fileURLWithPath: work.path("led") + "/log"))
        let refused = try CLI.run(["append", work.path("led"), "--accepted-at", "9999-12-31T23:59:59Z"], stdin: signed.stdout)
        #expect(refused.status == 2 && refused.stderr.contains("is later than now") && refused.stdout.isEmpty, "\(refused)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: work.path("led") + "/log")) == log)
        let created = try CLI.run(["init", work.path("later"), "--origin", "test.example/later", "--admin-key", work.path("admin.pem"), "--accepted-at", "9999-12-31T23:59:59Z"])
        #expect(created.status == 2 && created.stderr.contains("is later than now"), "\(created)")
        #expect(!FileManager.default.fileExists(atPath: work.path("later")))
        // Even a few seconds ahead is refused: the clock skew signers are allowed does not apply.
        let formatter = ISO8601DateFormatter()
        let soon = try CLI.run(["append", work.path("led"), "--accepted-at", formatter.string(from: Date().addingTimeInterval(2))], stdin: signed.stdout)
        #expect(soon.status == 2 && soon.stderr.contains("is later than now"), "\(soon)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: work.path("led") + "/log")) == log)
        // Now, to the second, is taken; a second later than the ledger's last acceptance time,
        // which has microseconds, so that it does not go backwards.
        Thread.sleep(forTimeInterval: 1)
        let taken = try CLI.run(["append", work.path("led"), "--accepted-at", formatter.string(from: Date())], stdin: signed.stdout)
        #expect(taken.status == 0, "\(taken)")
    }

    @Test("an --accepted-at earlier than the last entry's is a usage error that names the option, and nothing is written")
    func backwardsAcceptanceTime() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        try work.write("f.json", #"{"type":"fact.opened","id":"f-early","fact":"f-early","proposition":"P"}"#)
        let signed = try CLI.succeed(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", "--signed-at", "2020-01-01T00:00:00Z", work.path("f.json")])
        let log = try Data(contentsOf: URL(fileURLWithPath: work.path("led") + "/log"))
        let refused = try CLI.run(["append", work.path("led"), "--accepted-at", "2020-01-01T00:00:00Z"], stdin: signed.stdout)
        #expect(refused.status == 2 && refused.stdout.isEmpty, "\(refused)")
        #expect(refused.stderr.contains("error [time-went-backwards]: --accepted-at: The acceptance time 2020-01-01T00:00:00Z is before the last entry's"), "\(refused)")
        #expect(refused.stderr.contains("Nothing was appended."), "\(refused)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: work.path("led") + "/log")) == log)
    }

    @Test("cosign refuses an envelope that holds the most signatures a ledger accepts, and prints nothing")
    func cosignFullEnvelope() throws {
        let work = try WorkDirectory()
        for name in ["sixteenth", "seventeenth"] { try CLI.succeed(["key", "generate", "--out", work.path("\(name).pem")]) }
        let event = #"{"author":"amnesty","fact":"f-many","id":"f-many","proposition":"P","signed_at":"2020-09-21T08:00:00Z","type":"fact.opened","v":1}"#
        var envelope = Envelope(payload: Array(event.utf8), signatures: [])
        for seed in 1..<Envelope.maximumSignatures { try envelope.sign(with: try SigningKey(seed: [UInt8](repeating: UInt8(seed), count: 32))) }
        try work.write("almost.json", String(decoding: envelope.jsonBytes, as: UTF8.self))
        // One short of the most: the signature is added, and the envelope is still read.
        let full = try CLI.succeed(["cosign", "--key", work.path("sixteenth.pem"), work.path("almost.json")])
        #expect(try Envelope(jsonText: Array(full.stdout.utf8)).signatures.count == Envelope.maximumSignatures)
        try work.write("full.json", full.stdout)
        let refused = try CLI.run(["cosign", "--key", work.path("seventeenth.pem"), work.path("full.json")])
        #expect(refused.status == 1 && refused.stdout.isEmpty, "\(refused)")
        #expect(refused.stderr.contains("error [too-large]: \(work.path("full.json")): The envelope already holds \(Envelope.maximumSignatures) signatures"), "\(refused)")
    }

    @Test("a refused batch names the file, or the line of standard input, of the statement refused")
    func refusedStatementNamed() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        try work.write("good.json", #"{"type":"fact.opened","id":"f-good","fact":"f-good","proposition":"P"}"#)
        let good = try CLI.run(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", work.path("good.json")]).stdout
        try work.write("good.env", good)
        // The same id again, in another statement: refused as the batch's second.
        try work.write("bad2.json", #"{"type":"fact.opened","id":"f-good","fact":"f-other","proposition":"Q"}"#)
        let bad = try CLI.run(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", work.path("bad2.json")]).stdout
        try work.write("bad.env", bad)
        let files = try CLI.run(["append", work.path("led"), work.path("good.env"), work.path("bad.env")])
        #expect(files.status == 1 && files.stderr.contains("\(work.path("bad.env")): Statement 2 of 2 was refused"), "\(files)")
        let lines = try CLI.run(["append", work.path("led")], stdin: good + bad)
        #expect(lines.status == 1 && lines.stderr.contains("standard input line 2: Statement 2 of 2 was refused"), "\(lines)")
        // A statement given alone is named as well.
        #expect(try CLI.run(["append", work.path("led"), work.path("good.env")]).status == 0)
        let alone = try CLI.run(["append", work.path("led"), work.path("bad.env")])
        #expect(alone.status == 1 && alone.stderr.contains("error [duplicate-id]: \(work.path("bad.env")): The statement id \"f-good\" is already used"), "\(alone)")
    }

    @Test("blob add waits for another add deciding only as long as --lock-timeout says, and stores nothing then")
    func blobAddLockTimeout() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        try work.write("doc.txt", "evidence")
        try FileManager.default.createDirectory(atPath: work.path("led/blobs"), withIntermediateDirectories: true)
        // Held while a second process waits for it, then let go.
        do {
            let held = try WriterLock(path: work.path("led/blobs/lock"), timeout: 0)
            let refused = try CLI.run(["blob", "add", work.path("led"), work.path("doc.txt"), "--lock-timeout", "0"])
            #expect(refused.status == 3 && refused.stderr.contains("blobs/lock") && refused.stdout.isEmpty, "\(refused)")
            #expect((try? FileManager.default.contentsOfDirectory(atPath: work.path("led/blobs/sha256")).filter { !$0.hasPrefix(".") }) ?? [] == [])
            withExtendedLifetime(held) {}
        }
        #expect(try CLI.run(["blob", "add", work.path("led"), work.path("doc.txt"), "--lock-timeout", "0"]).status == 0)
    }

    @Test("a fact not found lists 20 facts and says how many more")
    func messagesNameWhatAndHowMany() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        var envelopes = ""
        for n in 0..<23 {
            try work.write("f\(n).json", #"{"type":"fact.opened","id":"f\#(n)","fact":"f\#(n)","proposition":"P"}"#)
            envelopes += try CLI.run(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", work.path("f\(n).json")]).stdout
        }
        #expect(try CLI.run(["append", work.path("led")], stdin: envelopes).status == 0)
        let missing = try CLI.run(["fact", work.path("led"), "nosuch"])
        #expect(missing.status == 2 && missing.stderr.contains("f19 and 3 more."), "\(missing)")
        #expect(!missing.stderr.contains("f20"), "\(missing)")
    }

    @Test("keys: generate writes mode 0600 PKCS#8 that openssl reads; public prints SPKI and the key id")
    func keys() throws {
        let work = try WorkDirectory()
        let generated = try CLI.run(["key", "generate", "--out", work.path("k.pem")])
        #expect(generated.status == 0)
        let attributes = try FileManager.default.attributesOfItem(atPath: work.path("k.pem"))
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let key = try SigningKey(pemRepresentation: work.read("k.pem"))
        let shown = try CLI.run(["key", "public", work.path("k.pem")])
        #expect(shown.stdout.hasPrefix("-----BEGIN PUBLIC KEY-----\n"))
        #expect(shown.stdout.contains("keyid: \(key.publicKey.keyID.hexString)"))
        #expect(generated.stdout.contains(key.publicKey.keyID.hexString))
    }

    @Test("help lists every command and the exit statuses; every subcommand has help")
    func help() throws {
        let help = try CLI.run(["--help"])
        #expect(help.status == 0)
        for word in ["init", "key", "sign", "cosign", "append", "log", "show", "verify", "blob", "repair", "facts", "checkpoint", "prove", "check", "export", "cosign-checkpoint", "EXIT STATUS", "usage mistake"] {
            #expect(help.stdout.contains(word), "\(word)")
        }
        let commands: [[String]] = [
            ["init"], ["key", "generate"], ["key", "public"], ["sign"], ["cosign"], ["append"], ["log"], ["show"], ["verify"],
            ["blob", "add"], ["blob", "check"], ["repair"], ["facts"], ["fact"], ["parties"], ["replay"], ["snapshot"],
            ["checkpoint"], ["verifier-key"], ["prove", "inclusion"], ["prove", "consistency"], ["check", "inclusion"],
            ["check", "consistency"], ["check", "equivocation"], ["export", "leaves"], ["cosign-checkpoint"],
        ]
        for command in commands {
            let result = try CLI.run(command + ["--help"])
            #expect(result.status == 0, "\(command)")
            #expect(result.stdout.contains("USAGE: ledger \(command.joined(separator: " "))"), "\(command)")
            let asked = try CLI.run(["help"] + command)
            #expect(asked.status == 0 && asked.stdout.contains("USAGE: ledger \(command.joined(separator: " "))"), "help \(command)")
        }
        // Arguments after a command without subcommands are its own, and help is a command.
        for asked in [["facts", "some-dir"], ["help"]] {
            #expect(try CLI.run(["help"] + asked).status == 0, "help \(asked)")
        }
        // A group of commands named alone is a usage mistake, not a success.
        for group in ["key", "blob", "prove", "check", "export"] {
            let result = try CLI.run([group])
            #expect(result.status == 2 && result.stderr.contains("`ledger \(group)` needs one of its commands"), "\(result)")
        }
        // Help for a command that does not exist is a usage mistake, not another command's help.
        for unknown in [["nosuch"], ["key", "nosuch"]] {
            let result = try CLI.run(["help"] + unknown)
            #expect(result.status == 2 && result.stdout.isEmpty && result.stderr.contains("There is no command `ledger \(unknown.joined(separator: " "))`"), "\(result)")
        }
    }

    @Test("several processes appending at once: every acknowledged entry is there exactly once and the chain verifies")
    func concurrentAppends() async throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        let writers = 4, perWriter = 8
        var envelopes: [[String]] = []
        for w in 0..<writers {
            var mine: [String] = []
            for n in 0..<perWriter {
                try work.write("f\(w)-\(n).json", #"{"type":"fact.opened","id":"o-\#(w)-\#(n)","fact":"f-\#(w)-\#(n)","proposition":"P"}"#)
                let signed = try CLI.run(["sign", "--key", work.path("amnesty.pem"), "--author", "amnesty", work.path("f\(w)-\(n).json")])
                try work.write("e\(w)-\(n).json", signed.stdout)
                mine.append(work.path("e\(w)-\(n).json"))
            }
            envelopes.append(mine)
        }
        let batches = envelopes
        let ledgerPath = work.path("led")
        let acknowledged = try await withThrowingTaskGroup(of: [String].self) { group in
            for w in 0..<writers {
                group.addTask {
                    var ids: [String] = []
                    for file in batches[w] {
                        let result = try CLI.run(["append", ledgerPath, file, "--lock-timeout", "60"])
                        if result.status == 0 { ids.append(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) }
                    }
                    return ids
                }
            }
            var all: [String] = []
            for try await ids in group { all += ids }
            return all
        }
        #expect(acknowledged.count == writers * perWriter)
        let log = try CLI.run(["log", work.path("led"), "--json"]).stdout.split(separator: "\n")
        #expect(log.count == 4 + writers * perWriter)
        for line in acknowledged {
            let parts = line.split(separator: " ")
            #expect(log.filter { $0.contains("\"entry_id\":\"\(parts[1])\"") && $0.hasPrefix("{\"seq\":\(parts[0]),") }.count == 1, "\(line)")
        }
        #expect(try CLI.run(["verify", work.path("led")]).status == 0)
    }

    @Test("blob add stores by SHA-256; blob check reports present, missing, mismatched and unreadable")
    func blobs() throws {
        let work = try WorkDirectory()
        try makeLedger(work)
        try work.write("doc.txt", "evidence")
        let added = try CLI.run(["blob", "add", work.path("led"), work.path("doc.txt")])
        let digest = SHA256.hash(Array("evidence".utf8)).hexString
        #expect(added.stdout == "\(digest) 8\n")
        // A file that is not there is a usage mistake (2), as for every other input file.
        let missing = try CLI.run(["blob", "add", work.path("led"), work.path("nothing.txt")])
        #expect(missing.status == 2 && missing.stderr.contains("[not-found]"), "\(missing.stderr)")
        for (id, hash) in [("e1", digest), ("e2", SHA256.hash(Array("absent".utf8)).hexString)] {
            let r = try signAndAppend(work, "amnesty", #"{"type":"evidence.attached","id":"\#(id)","evidence":"\#(id)","sha256":"\#(hash)","size":8,"media_type":"text/plain","title":"T"}"#)
            #expect(r.status == 0, "\(r.stderr)")
        }
        var check = try CLI.run(["blob", "check", work.path("led")])
        #expect(check.status == 0)
        #expect(check.stdout.contains("1 present, 1 missing, 0 mismatched"))
        let blob = work.path("led/blobs/sha256/\(digest)")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: blob)
        try "evidencE".write(toFile: blob, atomically: false, encoding: .utf8)
        check = try CLI.run(["blob", "check", work.path("led")])
        #expect(check.status == 1)
        #expect(check.stdout.contains("MISMATCHED  e1"))
        // A directory in a blob's place is reported as what it is, not as a blob to add, and
        // adding the blob then changes nothing.
        let absent = SHA256.hash(Array("absent".utf8)).hexString
        try FileManager.default.createDirectory(atPath: work.path("led/blobs/sha256/\(absent)"), withIntermediateDirectories: false)
        try work.write("absent.txt", "absent")
        let before = try FileManager.default.contentsOfDirectory(atPath: work.path("led/blobs/sha256")).sorted()
        let add = try CLI.run(["blob", "add", work.path("led"), work.path("absent.txt")])
        #expect(add.status == 3 && add.stderr.contains("is a directory") && add.stderr.contains("Nothing was stored"), "\(add)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: work.path("led/blobs/sha256")).sorted() == before)
        try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: blob)
        try "evidence".write(toFile: blob + ".tmp", atomically: false, encoding: .utf8)
        try FileManager.default.removeItem(atPath: blob)
        try FileManager.default.moveItem(atPath: blob + ".tmp", toPath: blob)
        check = try CLI.run(["blob", "check", work.path("led")])
        #expect(check.status == 3 && check.stdout.contains("UNREADABLE  e2") && check.stdout.contains("1 present, 0 missing, 0 mismatched, 1 unreadable"), "\(check)")
        let verify = try CLI.run(["verify", work.path("led")])
        #expect(verify.status == 0 && verify.stderr.contains("\"e2\" (sha256 \(absent)) could not be checked") && !verify.stderr.contains("e2\" (sha256 \(absent)) is not stored"), "\(verify)")
        let evidence = try CLI.run(["replay", work.path("led"), "--projection", "evidence-index", "--json"])
        #expect(evidence.status == 0 && evidence.stdout.contains("\"blob\": \"unreadable\"") && evidence.stdout.contains("\"blob-unreadable:e2\""), "\(evidence)")
    }
}

@Suite("The sample ledger")
struct SampleLedgerTests {
    @Test("replay prints every projection's report an element at a time, the same JSON as the report built whole")
    func replayStreams() throws {
        let directory = CLI.repositoryRoot.appendingPathComponent("Ledger/amnesty-2020").path
        let ledger = try Ledger(directory: directory)
        for projection in ProjectionRegistry.builtIn.projections {
            let answer = try projection.answer(using: ReplayEngine(withoutSnapshots: ledger), snapshots: .none, blobs: BlobStore(ledgerDirectory: directory))
            let expected = try answer.report()
            #expect(expected.objectValue?[answer.reportKey]?.arrayValue?.isEmpty == false, "\(projection.name)")
            let json = try CLI.run(["replay", directory, "--projection", projection.name, "--no-snapshots", "--json"])
            #expect(json.status == 0, "\(json.stderr)")
            #expect(try JSONParser.parse(Array(json.stdout.utf8)).objectValue?["report"] == expected, "\(projection.name)")
            let plain = try CLI.run(["replay", directory, "--projection", projection.name, "--no-snapshots"])
            let body = try #require(plain.stdout.split(separator: "\n", maxSplits: 1).last)
            #expect(try JSONParser.parse(Array(body.utf8)) == expected, "\(projection.name)")
        }
    }

    @Test("regenerating Ledger/amnesty-2020 from Tools/sample gives a byte-identical ledger, and it verifies")
    func reproducible() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", CLI.repositoryRoot.appendingPathComponent("Tools/make-sample-ledger.py").path, "--check", "--ledger", CLI.binary]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(text)")
        #expect(text.contains("identical to a fresh build"))
        let verified = try CLI.run(["verify", CLI.repositoryRoot.appendingPathComponent("Ledger/amnesty-2020").path])
        #expect(verified.status == 0)
        #expect(verified.stdout.contains("intact. 40 entries"))
    }
}
