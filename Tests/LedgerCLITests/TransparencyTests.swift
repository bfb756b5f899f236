import Foundation
import LedgerCore
import LedgerCrypto
import LedgerStore
import Testing

@Suite("Checkpoints and proofs through the CLI")
struct TransparencyTests {
    static let sample = SampleCaseTests.sample
    static let vkey = sample + "/checkpoints/log.vkey"
    static let old = sample + "/checkpoints/00000000000000000021-48380a48.note"
    static let new = sample + "/checkpoints/00000000000000000040-48380a48.note"
    static let keys = CLI.repositoryRoot.appendingPathComponent("Tools/sample/keys").path
    static let logKey = keys + "/DEMO-ONLY-log.pem"

    /// A copy of the sample ledger in `work`, named `name`.
    func copyOfSample(_ work: WorkDirectory, _ name: String) throws -> String {
        let dir = work.path(name)
        try FileManager.default.copyItem(atPath: Self.sample, toPath: dir)
        return dir
    }

    /// Writes a record of `envelope` after the last of `dir`'s log, linked to it and accepted a
    /// minute later, to the log alone: past the index, as anyone who can write the directory can.
    func appendPastIndex(_ dir: String, _ envelope: Envelope) throws {
        let log = URL(fileURLWithPath: dir + "/log")
        let lines = try Data(contentsOf: log).split(separator: 0x0a)
        let last = try Record(stored: Array(lines.last!))
        let record = Record(
            sequence: last.sequence + 1, previous: Record.entryID(of: Array(lines.last!)), acceptedAt: Timestamp(seconds: last.acceptedAt.seconds + 60),
            batchEnd: last.sequence + 1, envelope: envelope)
        let handle = try FileHandle(forWritingTo: log)
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(record.encoded() + [0x0a]))
        try handle.close()
    }

    /// Flips the lowest bit of the byte at `offset` of the file at `path`.
    func flipBit(of path: String, at offset: Int) throws {
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        bytes[offset] ^= 0x01
        try bytes.write(to: URL(fileURLWithPath: path))
    }

    /// An envelope of `fact.opened` for `id`, signed by Amnesty.
    func openingFact(_ work: WorkDirectory, _ id: String, proposition: String) throws -> String {
        try work.write("f.json", #"{"type":"fact.opened","id":"\#(id)","fact":"\#(id)","proposition":"\#(proposition)"}"#)
        return try CLI.run(["sign", "--key", Self.keys + "/DEMO-ONLY-amnesty.pem", "--author", "amnesty", "--signed-at", "2020-09-30T00:00:00Z", work.path("f.json")]).stdout
    }

    @Test("append --checkpoint with a key that is not the log's appends nothing")
    func appendCheckpointWrongKey() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let envelope = try openingFact(work, "f-new", proposition: "Something new")
        let log = try Data(contentsOf: URL(fileURLWithPath: dir + "/log"))
        // A key of no party, and a party's statement key (a log key is recorded already).
        #expect(try CLI.run(["key", "generate", "--out", work.path("stranger.pem")]).status == 0)
        for (key, says) in [(work.path("stranger.pem"), "checkpoints are signed by"), (Self.keys + "/DEMO-ONLY-amnesty.pem", "checkpoints are signed by")] {
            let refused = try CLI.run(["append", dir, "--checkpoint", key], stdin: envelope)
            #expect(refused.status == 2 && refused.stdout.isEmpty && refused.stderr.contains(says), "\(refused)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/log")) == log)
            // Refused before a writer opened: no lock file, no kept rule state written.
            #expect(!FileManager.default.fileExists(atPath: dir + "/lock") && !FileManager.default.fileExists(atPath: dir + "/rules.state"))
            let checkpoint = try CLI.run(["checkpoint", dir, "--key", key])
            #expect(checkpoint.status == 2 && checkpoint.stderr.contains(says), "\(checkpoint)")
            #expect(!FileManager.default.fileExists(atPath: dir + "/lock") && !FileManager.default.fileExists(atPath: dir + "/rules.state"))
        }
        // A log key file that cannot be read as one: refused too, before a writer opens.
        let garbled = try copyOfSample(work, "garbled")
        try "not a key\n".write(toFile: garbled + "/checkpoints/log.vkey", atomically: true, encoding: .utf8)
        let unreadable = try CLI.run(["checkpoint", garbled, "--key", Self.logKey])
        #expect(unreadable.status != 0 && unreadable.stderr.contains("log.vkey"), "\(unreadable)")
        #expect(!FileManager.default.fileExists(atPath: garbled + "/lock") && !FileManager.default.fileExists(atPath: garbled + "/rules.state"))
        let appended = try CLI.run(["append", dir, "--checkpoint", Self.logKey], stdin: envelope)
        #expect(appended.status == 0 && appended.stderr.contains("checkpoint of 41 entries"), "\(appended)")
    }

    @Test("checkpoint says what its writer's open did, as append does: a torn tail cut is never silent")
    func checkpointSaysTheOpen() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"seq":40,"prev":"ab"#.utf8))
        try handle.close()
        let signed = try CLI.run(["checkpoint", dir, "--key", Self.logKey])
        #expect(signed.status == 0 && signed.stderr.contains("Recovered from an interrupted write: cut 20 bytes"), "\(signed)")
    }

    @Test("verify of a log whose genesis cannot be read speaks of requirements only if some were given")
    func requirementsNotGiven() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        try Data().write(to: URL(fileURLWithPath: dir + "/log"))
        let plain = try CLI.run(["verify", dir])
        #expect(plain.status == 1 && !(plain.stdout + plain.stderr).contains("requirements given"), "\(plain)")
        let required = try CLI.run(["verify", dir, "--origin", "evidence-ledger.example/amnesty-2020"])
        #expect(required.status == 1 && (required.stdout + required.stderr).contains("requirements given (--origin, --witnesses-required) were not checked"), "\(required)")
    }

    /// The first checkpoint records its key as the log's for good.
    @Test("a party's key is refused as the log key, and the first checkpoint says it records its key as the log's")
    func firstCheckpointKey() throws {
        let work = try WorkDirectory()
        let admin = Self.keys + "/DEMO-ONLY-ledger-admin.pem"
        try CLI.succeed(["init", work.path("new"), "--origin", "example.org/x", "--admin-key", admin])
        let refused = try CLI.run(["checkpoint", work.path("new"), "--key", admin])
        #expect(refused.status == 2 && refused.stderr.contains("is registered to party \"admin\" in this ledger") && refused.stdout.isEmpty, "\(refused)")
        #expect(!FileManager.default.fileExists(atPath: work.path("new") + "/checkpoints/log.vkey"))
        let shown = try CLI.run(["key", "public", Self.logKey]).stdout
        let raw = try #require(shown.split(separator: "\n").first { $0.hasPrefix("raw (base64): ") }?.dropFirst("raw (base64): ".count))
        // A batch that registers the very key its checkpoint is to be signed with: refused whole,
        // not appended with only the checkpoint failing after it.
        try work.write("p.json", #"{"type":"party.registered","id":"p-x","party":"x","name":"X","role":"investigator","keys":["\#(raw)"]}"#)
        let registering = try CLI.run(["sign", "--key", admin, "--author", "admin", work.path("p.json")])
        let log = try Data(contentsOf: URL(fileURLWithPath: work.path("new") + "/log"))
        let batch = try CLI.run(["append", work.path("new"), "--checkpoint", Self.logKey], stdin: registering.stdout)
        #expect(batch.status == 2 && batch.stdout.isEmpty && batch.stderr.contains("is registered to party \"x\" by statement 1 of those being appended") && batch.stderr.contains("Nothing was appended"), "\(batch)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: work.path("new") + "/log")) == log)
        #expect(!FileManager.default.fileExists(atPath: work.path("new") + "/checkpoints/log.vkey"))
        let first = try CLI.run(["checkpoint", work.path("new"), "--key", Self.logKey])
        #expect(first.status == 0 && first.stderr.contains("first checkpoint: its key is recorded as the log key"), "\(first)")
        let second = try CLI.run(["checkpoint", work.path("new"), "--key", Self.logKey])
        #expect(second.status == 0 && !second.stderr.contains("first checkpoint"), "\(second)")
        // A party that registers the recorded log key's public half (anyone can read it) does not
        // stop checkpoints.
        try work.write("k.json", #"{"type":"key.added","id":"k-log","party":"admin","key":"\#(raw)"}"#)
        let signed = try CLI.run(["sign", "--key", admin, "--author", "admin", work.path("k.json")])
        try CLI.succeed(["append", work.path("new")], stdin: signed.stdout)
        let third = try CLI.run(["checkpoint", work.path("new"), "--key", Self.logKey])
        #expect(third.status == 0, "\(third)")
    }

    @Test("a record past the index, which no writer checked, is verified by readers despite --trust-signatures, and refused by the next writer")
    func unindexedRecordNotTrusted() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        // A claim by Amnesty with its signature spoiled, linked to the last entry and added to the
        // log alone, as anyone who can write the directory can.
        try work.write("c.json", #"{"type":"claim.asserted","id":"c-forged","claim":"c-forged","fact":"idemia-system-deployed","stance":"affirms","statement":"Forged."}"#)
        let signed = try CLI.run(["sign", "--key", Self.keys + "/DEMO-ONLY-amnesty.pem", "--author", "amnesty", "--signed-at", "2020-09-24T09:00:00Z", work.path("c.json")])
        var envelope = try Envelope(jsonText: Array(signed.stdout.utf8))
        envelope.signatures[0].signature[3] ^= 1
        try appendPastIndex(dir, envelope)
        let facts = try CLI.run(["facts", dir, "--trust-signatures", "--no-snapshots"])
        #expect(facts.status == 0 && facts.stderr.contains("Entry 40 is past the index") && facts.stdout.contains("bad-signature:c-forged"), "\(facts)")
        let appended = try CLI.run(["checkpoint", dir, "--key", Self.logKey])
        #expect(appended.status == 1 && appended.stderr.contains("Entry 40 of") && appended.stderr.contains("does not verify"), "\(appended)")
    }

    @Test("the timeline lists an event that is no valid statement of its named author with its problem, in `fact` and in the timeline projection, trusted signatures or not")
    func timelineSaysInvalidEvents() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        // Idemia's denial retracted under a key that is no one's, past the index.
        try CLI.succeed(["key", "generate", "--out", work.path("stranger.pem")])
        try work.write("r.json", #"{"type":"claim.retracted","id":"forged-retract","claim":"idemia-never-deployed","reason":"Withdrawn."}"#)
        let signed = try CLI.run(["sign", "--key", work.path("stranger.pem"), "--author", "idemia", "--signed-at", "2020-09-24T09:00:00Z", work.path("r.json")])
        try appendPastIndex(dir, try Envelope(jsonText: Array(signed.stdout.utf8)))
        for trust in [[], ["--trust-signatures"]] {
            let text = try CLI.run(["fact", dir, "idemia-system-deployed", "--no-snapshots"] + trust)
            let line = text.stdout.split(separator: "\n").first { $0.contains("retracted: Withdrawn.") }
            #expect(line?.contains("— not valid: key-invalid") == true, "\(trust): \(text.stdout)")
            let json = try CLI.run(["replay", dir, "--projection", "timeline", "--json", "--no-snapshots"] + trust)
            let value = try JSONParser.parse(Array(json.stdout.utf8))
            let events = value.objectValue?["report"]?.objectValue?["facts"]?.arrayValue?.compactMap { $0.objectValue }.first { $0["fact"] == .string("idemia-system-deployed") }?["events"]?.arrayValue ?? []
            let forged = events.compactMap(\.objectValue).first { $0["event"] == .string("forged-retract") }
            #expect(forged?["problem"] == .string("key-invalid"), "\(trust): \(json.stdout.prefix(2000))")
            // The others stand, valid.
            #expect(events.count > 1 && events.compactMap(\.objectValue).filter { $0["event"] != .string("forged-retract") }.allSatisfy { $0["problem"] == .null }, "\(trust)")
        }
    }

    @Test("a fact's timeline takes the evidence a finding relies on whole, but only from a finding that takes effect; a change to a retracted claim is listed as such")
    func timelineEvidenceOfFindings() throws {
        let work = try WorkDirectory()
        let newsroom = Self.keys + "/DEMO-ONLY-newsroom.pem"
        var n = 0
        func signed(_ json: String, key: String = newsroom) throws -> String {
            n += 1
            try work.write("e\(n).json", json)
            return try CLI.run(["sign", "--key", key, "--author", "newsroom", "--signed-at", "2020-09-24T11:00:00Z", work.path("e\(n).json")]).stdout
        }
        func timeline(_ dir: String, _ fact: String) throws -> [[String: JSONValue]] {
            let shown = try CLI.run(["fact", dir, fact, "--json", "--no-snapshots"])
            let value = try JSONParser.parse(Array(shown.stdout.utf8))
            return try #require(value.objectValue?["timeline"]?.arrayValue, "\(shown)").compactMap(\.objectValue)
        }
        func events(_ entries: [[String: JSONValue]]) -> [String] { entries.compactMap { $0["event"]?.stringValue } }
        // A new fact, and evidence bearing on no claim with a step of custody.
        let setUp = [
            #"{"type":"fact.opened","id":"open:f-new","fact":"f-new","proposition":"P"}"#,
            #"{"type":"evidence.attached","id":"attach:e-new","evidence":"e-new","sha256":"\#(SHA256.hash([1]).hexString)","size":1,"media_type":"text/plain","title":"T"}"#,
            #"{"type":"custody.recorded","id":"custody:e-new","evidence":"e-new","action":"collected"}"#,
        ]
        let valid = try copyOfSample(work, "valid")
        let forged = try copyOfSample(work, "forged")
        for dir in [valid, forged] {
            try CLI.succeed(["append", dir, "--accepted-at", "2020-09-24T12:00:00Z"], stdin: try setUp.map { try signed($0) }.joined())
        }
        #expect(events(try timeline(valid, "f-new")) == ["open:f-new"])
        // A finding that relies on it brings its events before it; an attestation of its custody
        // entry made after the finding is the fact's too.
        let finding = #"{"type":"finding.recorded","id":"finding:f-new","fact":"f-new","finding":"fi-new","outcome":"inconclusive","rationale":"R","relies_on":["e-new"]}"#
        try CLI.succeed(["append", valid, "--accepted-at", "2020-09-24T12:00:00Z"], stdin: try signed(finding))
        let custodyEntry = try #require(try timeline(valid, "f-new").first { $0["event"] == .string("custody:e-new") }?["entry_id"]?.stringValue)
        let attestation = #"{"type":"attestation.made","id":"attest:custody","attestation":"att-custody","target":"\#(custodyEntry)","kind":"reviewed"}"#
        try CLI.succeed(["append", valid, "--accepted-at", "2020-09-24T12:00:00Z"], stdin: try signed(attestation))
        #expect(events(try timeline(valid, "f-new")) == ["open:f-new", "attach:e-new", "custody:e-new", "finding:f-new", "attest:custody"])
        // A forged finding (a key that is no one's) brings nothing; a change to a claim retracted
        // at entry 27 is said to be one.
        try CLI.succeed(["key", "generate", "--out", work.path("stranger.pem")])
        try appendPastIndex(forged, try Envelope(jsonText: Array(try signed(finding, key: work.path("stranger.pem")).utf8)))
        let amendment = #"{"type":"claim.amended","id":"amend:after-retraction","claim":"newsroom-uyghurs-premature","statement":"Changed."}"#
        try appendPastIndex(forged, try Envelope(jsonText: Array(try signed(amendment).utf8)))
        let forgedTimeline = try timeline(forged, "f-new")
        #expect(events(forgedTimeline) == ["open:f-new", "finding:f-new"] && forgedTimeline.last?["problem"] == .string("key-invalid"), "\(forgedTimeline)")
        let changed = try timeline(forged, "used-against-uyghurs").first { $0["event"] == .string("amend:after-retraction") }
        #expect(changed?["problem"] == .string("claim-retracted"), "\(String(describing: changed))")
        // An attestation of that change attests nothing on the fact, as in its view.
        let changeEntry = try #require(changed?["entry_id"]?.stringValue)
        let ofChange = #"{"type":"attestation.made","id":"attest:of-change","attestation":"att-of-change","target":"\#(changeEntry)","kind":"reviewed"}"#
        try appendPastIndex(forged, try Envelope(jsonText: Array(try signed(ofChange).utf8)))
        let after = events(try timeline(forged, "used-against-uyghurs"))
        #expect(after.contains("amend:after-retraction") && !after.contains("attest:of-change"), "\(after)")
    }

    @Test("a subject's evidence past the index, signed with its own valid key, attacks no claim: `fact` excludes it for the role `verify` refuses it for")
    func unindexedEvidenceByASubject() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let paper = "Idemia's own paper."
        try work.write("paper.txt", paper)
        #expect(try CLI.run(["blob", "add", dir, work.path("paper.txt")]).status == 0)
        try work.write("e.json", #"{"type":"evidence.attached","id":"idemia-paper","evidence":"idemia-paper","sha256":"\#(SHA256.hash(Array(paper.utf8)).hexString)","size":\#(paper.utf8.count),"media_type":"text/plain","title":"Paper","contradicts":["amnesty-rejects-never-deployed"]}"#)
        let signed = try CLI.run(["sign", "--key", Self.keys + "/DEMO-ONLY-idemia.pem", "--author", "idemia", "--signed-at", "2020-09-24T10:00:00Z", work.path("e.json")])
        try appendPastIndex(dir, try Envelope(jsonText: Array(signed.stdout.utf8)))
        let fact = try CLI.run(["fact", dir, "idemia-system-deployed", "--no-snapshots"])
        #expect(fact.status == 0, "\(fact)")
        #expect(fact.stdout.contains("\nIntegrity:      role-not-allowed:idemia-paper\n"), "\(fact.stdout)")
        #expect(fact.stdout.contains("\n    excluded: its author's role may not attach evidence (role-not-allowed: \"idemia\" is registered as subject)\n"), "\(fact.stdout)")
        #expect(fact.stdout.contains("\n    undecided: claim idemia-never-deployed and it attack each other, and nothing else settles either\n"), "\(fact.stdout)")
        #expect(!fact.stdout.contains("attacked by evidence idemia-paper"), "\(fact.stdout)")
        let verified = try CLI.run(["verify", dir])
        #expect(verified.status == 1 && verified.stdout.contains("role-not-allowed"), "\(verified)")
    }

    @Test("an attestation whose signature fails and a finding by an investigator, past the index, are marked not valid: in text, and as \"problem\" in JSON; neither counts as an earlier finding")
    func invalidAttestationAndFinding() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        func signed(_ party: String, _ json: String) throws -> Envelope {
            try work.write("event.json", json)
            let out = try CLI.run(["sign", "--key", Self.keys + "/DEMO-ONLY-\(party).pem", "--author", party, "--signed-at", "2020-09-24T10:00:00Z", work.path("event.json")])
            return try Envelope(jsonText: Array(out.stdout.utf8))
        }
        var review = try signed("newsroom", #"{"type":"attestation.made","id":"forged-review","attestation":"forged-review","target":"amnesty-rejects-never-deployed","kind":"reviewed"}"#)
        review.signatures[0].signature[3] ^= 1
        try appendPastIndex(dir, review)
        try appendPastIndex(dir, try signed("amnesty", #"{"type":"finding.recorded","id":"amnesty-finding","finding":"amnesty-finding","fact":"idemia-system-deployed","outcome":"substantiated","rationale":"We say so."}"#))
        let text = try CLI.run(["fact", dir, "idemia-system-deployed", "--no-snapshots"])
        #expect(text.status == 0, "\(text)")
        #expect(text.stdout.contains("\nIntegrity:      bad-signature:forged-review, role-not-allowed:amnesty-finding\n"), "\(text.stdout)")
        #expect(
            text.stdout.contains(
                "\n    attested: reviewed by newsroom (amnesty-rejects-never-deployed-reviewed, entry 32)\n"
                    + "    attested: reviewed by newsroom (forged-review, entry 40) — not valid: bad-signature\n"), "\(text.stdout)")
        #expect(text.stdout.contains("\nFinding:        inconclusive (newsroom-finding-1 by newsroom, entry 35)") && !text.stdout.contains("earlier finding"), "\(text.stdout)")
        let json = try CLI.run(["fact", dir, "idemia-system-deployed", "--no-snapshots", "--json"])
        let fact = try #require(try JSONParser.parse(Array(json.stdout.utf8.dropLast())).objectValue?["fact"]?.objectValue)
        #expect(fact["findings"]?.arrayValue?.map { $0.objectValue?["problem"] } == [.null, .string("role-not-allowed")])
        #expect(fact["finding"]?.objectValue?["problem"] == .null)
        let claim = try #require(fact["claims"]?.arrayValue?.first { $0.objectValue?["claim"] == .string("amnesty-rejects-never-deployed") }?.objectValue)
        #expect(claim["attestations"]?.arrayValue?.map { $0.objectValue?["problem"] } == [.null, .string("bad-signature")])
    }

    @Test("an answer replayed from a log whose last record the index shows changed is printed, then status 1; one as of before it is not concerned")
    func answerFromChangedRecord() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let log = URL(fileURLWithPath: dir + "/log")
        var lines = try Data(contentsOf: log).split(separator: 0x0a).map(Array.init)
        var record = try Record(stored: lines[lines.count - 1])
        record.acceptedAt = Timestamp(seconds: record.acceptedAt.seconds + 1)
        lines[lines.count - 1] = record.encoded()
        try Data(lines.flatMap { $0 + [0x0a] }).write(to: log)
        for command in [["facts", dir], ["fact", dir, "idemia-system-deployed"], ["parties", dir], ["replay", dir, "--projection", "timeline"]] {
            let r = try CLI.run(command)
            #expect(r.status == 1 && !r.stdout.isEmpty && r.stderr.contains("before relying on the answer"), "\(command): \(r.stderr)")
        }
        // An answer as of an entry before the changed one does not rest on it.
        let earlier = try CLI.run(["facts", dir, "--as-of", "5"])
        #expect(earlier.status == 0 && !earlier.stderr.contains("before relying on the answer"), "\(earlier.stderr)")
    }

    @Test("a file named like a checkpoint that the log key did not sign is not taken for lost entries")
    func unsignedCheckpointFile() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        try "junk\n".write(toFile: dir + "/checkpoints/00000000000000000099-48380a48.note", atomically: true, encoding: .utf8)
        let verified = try CLI.run(["verify", dir])
        #expect(verified.status == 1 && verified.stdout.contains("[invalid-checkpoint]") && !verified.stdout.contains("[damaged-log]"), "\(verified)")
        #expect(try CLI.run(["facts", dir]).status == 0)
        #expect(try CLI.run(["repair", dir, "--rebuild-derived"]).status == 0)
    }

    @Test("checkpoints count as acknowledged by the key verify is given, and by name where there is none")
    func acknowledgedByWhichKey() throws {
        let work = try WorkDirectory()
        // A checkpoint of 43 entries signed by a planted key, with that key as log.vkey: with the
        // log's own key given, it is an invalid checkpoint, not a sign of entries gone.
        let planted = try copyOfSample(work, "planted")
        let evil = work.path("evil.pem")
        #expect(try CLI.run(["key", "generate", "--out", evil]).status == 0)
        let other = try fork(work, keep: 40, add: 3, checkpointKey: evil)
        let note = try #require(FileManager.default.contentsOfDirectory(atPath: other + "/checkpoints").first { $0.hasPrefix("00000000000000000043") })
        try FileManager.default.removeItem(atPath: planted + "/checkpoints/log.vkey")
        for file in [note, "log.vkey"] { try FileManager.default.copyItem(atPath: other + "/checkpoints/" + file, toPath: planted + "/checkpoints/" + file) }
        let given = try CLI.run(["verify", planted, "--vkey", Self.vkey])
        #expect(given.status == 1 && given.stdout.contains("[invalid-checkpoint]") && !given.stdout.contains("acknowledged and are gone"), "\(given.stdout)")
        // With no log.vkey at all, a checkpoint file still counts by its name: a cut log is not intact.
        let cut = try copyOfSample(work, "cut")
        var lines = try String(contentsOfFile: cut + "/log", encoding: .utf8).split(separator: "\n").map(String.init)
        lines.removeLast(10)
        try (lines.joined(separator: "\n") + "\n").write(toFile: cut + "/log", atomically: true, encoding: .utf8)
        for derived in ["index", "tree", "checkpoints/log.vkey"] { try FileManager.default.removeItem(atPath: cut + "/" + derived) }
        let verified = try CLI.run(["verify", cut])
        #expect(verified.status == 1 && verified.stdout.contains("acknowledged and are gone"), "\(verified.stdout)")
    }

    /// Two runs checking against the same last checkpoint could cosign two of the same size.
    @Test("cosign-checkpoint holds its state file's lock from reading the state to writing it")
    func cosignLocksItsState() throws {
        let work = try WorkDirectory()
        let state = work.path("w.state")
        let cosign = ["--key", Self.keys + "/DEMO-ONLY-newsroom.pem", "--name", "witness.example", "--vkey", Self.vkey, "--state", state]
        #expect(try CLI.run(["cosign-checkpoint", Self.old] + cosign).status == 0)
        let before = try Data(contentsOf: URL(fileURLWithPath: state))
        let copy = try copyOfSample(work, "led")
        // Held while a second process waits for it, then let go.
        do {
            let held = try WriterLock(path: state + ".lock", timeout: 0)
            let refused = try CLI.run(["cosign-checkpoint", Self.new, "--ledger", copy, "--lock-timeout", "0"] + cosign)
            #expect(refused.status == 3 && refused.stderr.contains("lock \(state).lock") && refused.stdout.isEmpty, "\(refused)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: state)) == before)
            withExtendedLifetime(held) {}
        }
        #expect(try CLI.run(["cosign-checkpoint", Self.new, "--ledger", copy, "--lock-timeout", "0"] + cosign).status == 0)
        // Through a link, the state it leads to is locked, read and written: the link stays.
        try FileManager.default.createSymbolicLink(atPath: work.path("link.state"), withDestinationPath: state)
        var linked = cosign
        linked[linked.count - 1] = work.path("link.state")
        let throughLink = try CLI.run(["cosign-checkpoint", Self.new, "--ledger", copy] + linked)
        #expect(throughLink.status == 0, "\(throughLink)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: work.path("link.state")) == state)
        do {
            let held = try WriterLock(path: state + ".lock", timeout: 0)
            let waited = try CLI.run(["cosign-checkpoint", Self.new, "--ledger", copy, "--lock-timeout", "0"] + linked)
            #expect(waited.status == 3 && waited.stderr.contains("lock \(state).lock"), "\(waited)")
            withExtendedLifetime(held) {}
        }
        // A state whose entry for the log is not a checkpoint's text, or that is no JSON object,
        // is refused as it is: read as empty, the witness would forget what it cosigned.
        for (text, says) in [(#"{"evidence-ledger.example/amnesty-2020": 5}"#, "something other than the text of the checkpoint"), ("[]", "is not a JSON object")] {
            try text.write(toFile: state, atomically: true, encoding: .utf8)
            let refused = try CLI.run(["cosign-checkpoint", Self.old] + cosign)
            #expect(refused.status == 2 && refused.stderr.contains(says) && refused.stdout.isEmpty, "\(refused)")
            #expect(try String(contentsOfFile: state, encoding: .utf8) == text)
        }
    }

    @Test("files around the log: a dangling witness state, a missing log.vkey, a changed blob, a linked snapshots directory, init DIR/, a directory as a key")
    func filesAroundTheLog() throws {
        let work = try WorkDirectory()
        let keys = Self.keys
        // A witness whose state is a link to a missing file must not cosign as if it had none.
        let state = work.path("real.state")
        let cosign = { (checkpoint: String, state: String) in
            try CLI.run(["cosign-checkpoint", checkpoint, "--key", keys + "/DEMO-ONLY-newsroom.pem", "--name", "witness.example", "--vkey", Self.vkey, "--state", state])
        }
        #expect(try cosign(Self.new, state).status == 0)
        try FileManager.default.moveItem(atPath: state, toPath: work.path("moved.state"))
        try FileManager.default.createSymbolicLink(atPath: work.path("link.state"), withDestinationPath: state)
        let dangling = try cosign(Self.old, work.path("link.state"))
        #expect(dangling.status == 3 && dangling.stderr.contains("symbolic link to a file that is missing"), "\(dangling)")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: work.path("link.state")) == state)
        // Checkpoints stored without log.vkey: no key is taken for the log's.
        let led = try copyOfSample(work, "led")
        try FileManager.default.removeItem(atPath: led + "/checkpoints/log.vkey")
        #expect(try CLI.run(["key", "generate", "--out", work.path("stranger.pem")]).status == 0)
        let wrongKey = try CLI.run(["checkpoint", led, "--key", work.path("stranger.pem")])
        #expect(wrongKey.status == 1 && wrongKey.stderr.contains("log.vkey is missing"), "\(wrongKey)")
        #expect(!FileManager.default.fileExists(atPath: led + "/checkpoints/log.vkey"))
        // A stored blob that was changed is kept aside, as evidence, when the original is added.
        let hash = "254ca23ec5342e179ef675e50fc2e6df2dd6d272f41b96a36ec247d3d663b405"
        let blob = led + "/blobs/sha256/" + hash
        try FileManager.default.copyItem(atPath: blob, toPath: work.path("original"))
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: blob)
        try "tampered".write(toFile: blob, atomically: false, encoding: .utf8)
        let added = try CLI.run(["blob", "add", led, work.path("original")])
        #expect(added.status == 0 && added.stderr.contains("had been changed"), "\(added)")
        let aside = try FileManager.default.contentsOfDirectory(atPath: led + "/blobs/sha256").filter { $0.hasPrefix(hash + ".mismatched-") }
        #expect(aside.count == 1)
        #expect(try String(contentsOfFile: led + "/blobs/sha256/" + aside[0], encoding: .utf8) == "tampered")
        // blob check lists it from then on: the record that a stored blob was changed.
        let checked = try CLI.run(["blob", "check", led])
        #expect(checked.status == 0 && checked.stdout.contains("set aside   \(led)/blobs/sha256/\(aside[0])"), "\(checked)")
        // A FIFO is refused as evidence at once, not waited on.
        #expect(mkfifo(work.path("fifo"), 0o600) == 0)
        let fifo = try CLI.run(["blob", "add", led, work.path("fifo")])
        #expect(fifo.status == 2 && fifo.stderr.contains("is not a regular file"), "\(fifo)")
        // Nothing is removed through a snapshots directory that is a link.
        let outside = work.path("outside")
        try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
        try "notes".write(toFile: outside + "/timeline-v1-00000000000000000001.snapshot", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: led + "/snapshots")
        try FileManager.default.createSymbolicLink(atPath: led + "/snapshots", withDestinationPath: outside)
        #expect(try CLI.run(["replay", led, "--projection", "timeline", "--json"]).status == 0)
        #expect(FileManager.default.fileExists(atPath: outside + "/timeline-v1-00000000000000000001.snapshot"))
        // `init DIR/` creates DIR; a directory given as a key file is a usage mistake.
        try FileManager.default.createDirectory(atPath: work.path("new"), withIntermediateDirectories: true)
        let created = try CLI.run(["init", work.path("new") + "/", "--origin", "example.org/x", "--admin-key", keys + "/DEMO-ONLY-ledger-admin.pem"])
        #expect(created.status == 0, "\(created)")
        #expect(try CLI.run(["verify", work.path("new")]).status == 0)
        #expect(try CLI.run(["key", "public", work.path("new")]).status == 2)
        // A lock timeout that cannot be waited for is a usage mistake, not a crash.
        for timeout in ["nan", "-5", "inf"] {
            let refused = try CLI.run(["append", work.path("new"), "--lock-timeout=\(timeout)", work.path("original")])
            #expect(refused.status == 2 && refused.stderr.contains("cannot be waited for"), "\(timeout): \(refused)")
        }
    }

    @Test("a torn last record inside an acknowledged group commit: verify and the writer name the same lost entries")
    func tornAcknowledged() throws {
        let work = try WorkDirectory()
        let led = try copyOfSample(work, "led")
        var log = try Data(contentsOf: URL(fileURLWithPath: led + "/log"))
        log[log.count - 1] = UInt8(ascii: "B")
        try log.write(to: URL(fileURLWithPath: led + "/log"))
        let verify = try CLI.run(["verify", led])
        #expect(verify.status == 1)
        #expect(verify.stdout.contains("entry 35: [damaged-log] A stored checkpoint records 40 entries, but the log holds only 35 of them: entries 35…39"), "\(verify.stdout)")
        #expect(verify.stdout.contains("so the writer refuses") && !verify.stdout.contains("no acknowledged entry is affected"), "\(verify.stdout)")
        try work.write("f.env", try openingFact(work, "another-fact", proposition: "P"))
        let append = try CLI.run(["append", led, work.path("f.env")])
        #expect(append.status == 1 && append.stderr.contains("the log holds only 35 of them: entries 35…39"), "\(append)")
        // The acknowledged checkpoint is still shown: it is the evidence of what was acknowledged.
        let shown = try CLI.run(["checkpoint", led, "--show"])
        #expect(shown.status == 0 && shown.stdout.hasPrefix("evidence-ledger.example/amnesty-2020\n40\n"), "\(shown)")
    }

    @Test("control characters, line separators and bidirectional formatting in a ledger's texts reach no terminal: escapes in plain output and JSON")
    func controlCharacters() throws {
        let work = try WorkDirectory()
        let led = try copyOfSample(work, "led")
        try work.write("f.env", try openingFact(work, "forged-look", proposition: #"Real\r\u001b[2KFORGED \u009b32maccepted\u007f \u202egnp.exe\u2028"#))
        #expect(try CLI.run(["append", led, work.path("f.env")]).status == 0)
        let raw: [Character] = ["\u{1B}", "\u{9B}", "\u{7F}", "\r", "\u{202E}", "\u{2028}"]
        for command in [["fact", led, "forged-look"], ["facts", led], ["fact", led, "forged-look", "--json"], ["facts", led, "--json"], ["show", led, "40", "--json"]] {
            let r = try CLI.run(command)
            #expect(r.status == 0, "\(command): \(r.stderr)")
            #expect(!r.stdout.contains { raw.contains($0) }, "\(command)")
            #expect(r.stdout.contains(#"\u001b[2KFORGED \u009b32maccepted\u007f \u202egnp.exe"#), "\(command): \(r.stdout.prefix(3000))")
        }
    }

    @Test("mistakes in what is given are usage mistakes that change nothing, and messages say what happened")
    func givenMistakes() throws {
        let work = try WorkDirectory()
        let led = try copyOfSample(work, "led")
        // A key file that is not there opens no writer: no lock file, no kept rule state.
        let noKey = try CLI.run(["checkpoint", led, "--key", work.path("nonexistent.pem")])
        #expect(noKey.status == 2 && !FileManager.default.fileExists(atPath: led + "/lock"), "\(noKey)")
        // A file larger than a command reads, and a saved state that is not there: status 2.
        try Data(repeating: 0x41, count: 2 << 20).write(to: URL(fileURLWithPath: work.path("big")))
        #expect(try CLI.run(["verify", led, "--vkey", work.path("big")]).status == 2)
        try work.write("since.note", try String(contentsOfFile: led + "/checkpoints/00000000000000000040-48380a48.note", encoding: .utf8))
        let noState = try CLI.run(["verify", led, "--since", work.path("since.note"), "--vkey", Self.vkey, "--state", work.path("none.state")])
        #expect(noState.status == 2 && noState.stderr.contains("There is no saved state"), "\(noState)")
        // A statement too large is refused as one (1), from a file as from standard input.
        try Data(repeating: 0x20, count: 200_000).write(to: URL(fileURLWithPath: work.path("big.env")))
        let bigFile = try CLI.run(["append", led, work.path("big.env")])
        #expect(bigFile.status == 1 && bigFile.stderr.contains("[too-large]"), "\(bigFile)")
        // A key file in a directory that is not there cannot be written (3, as for every output
        // file), and says where to look; one with no name is an option given wrong (2).
        let noDirectory = try CLI.run(["key", "generate", "--out", work.path("no-such-dir/k.pem")])
        #expect(noDirectory.status == 3 && noDirectory.stderr.contains("Check the path: its directory must exist"), "\(noDirectory)")
        let noFileName = try CLI.run(["key", "generate", "--out", ""])
        #expect(noFileName.status == 2 && noFileName.stderr.contains("No file name"), "\(noFileName)")
        // An author that is not a party id, and a genesis signed after it is accepted, are options
        // given wrong.
        try work.write("e.json", #"{"type":"fact.opened","id":"f","fact":"f","proposition":"P"}"#)
        #expect(try CLI.run(["sign", "--key", Self.keys + "/DEMO-ONLY-amnesty.pem", "--author", "bad author!", work.path("e.json")]).status == 2)
        let backwards = try CLI.run(["init", work.path("n2"), "--origin", "x.example/l", "--admin-key", Self.keys + "/DEMO-ONLY-ledger-admin.pem", "--signed-at", "2021-01-01T00:00:00Z", "--accepted-at", "2020-01-01T00:00:00Z"])
        #expect(backwards.status == 2 && !FileManager.default.fileExists(atPath: work.path("n2")), "\(backwards)")
        // A fixed acceptance time alone signs the genesis at that time.
        let fixed = try CLI.run(["init", work.path("n3"), "--origin", "x.example/l", "--admin-key", Self.keys + "/DEMO-ONLY-ledger-admin.pem", "--accepted-at", "2020-01-01T00:00:00Z"])
        #expect(fixed.status == 0, "\(fixed)")
        // A directory with checkpoints that is not a ledger shows none.
        try FileManager.default.createDirectory(atPath: work.path("not-a-ledger"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: led + "/checkpoints", toPath: work.path("not-a-ledger/checkpoints"))
        #expect(try CLI.run(["checkpoint", work.path("not-a-ledger"), "--show"]).status == 2)
        // An empty admin name is an option given wrong.
        let noName = try CLI.run(["init", work.path("n"), "--origin", "x.example/l", "--admin-key", Self.keys + "/DEMO-ONLY-ledger-admin.pem", "--admin-name", ""])
        #expect(noName.status == 2 && noName.stderr.contains("--admin-name"), "\(noName)")
        // A public or encrypted key given to sign: said plainly, without OpenSSL's error queue.
        try work.write("c.json", #"{"type":"fact.opened","id":"f","fact":"f","proposition":"P"}"#)
        let notAKey = try CLI.run(["sign", "--key", Self.keys + "/README.md", "--author", "amnesty", work.path("c.json")])
        #expect(notAKey.status == 2 && notAKey.stderr.contains("no PRIVATE KEY block") && !notAKey.stderr.contains("error:0"), "\(notAKey)")
        try work.write("pub.pem", try CLI.run(["key", "public", Self.keys + "/DEMO-ONLY-amnesty.pem"]).stdout)
        let signWithPublic = try CLI.run(["sign", "--key", work.path("pub.pem"), "--author", "amnesty", work.path("c.json")])
        #expect(signWithPublic.status == 2 && signWithPublic.stderr.contains("holds a public key") && !signWithPublic.stderr.contains("error:0"), "\(signWithPublic)")
        // Leaves past the log are not exported as if there were no more.
        #expect(try CLI.run(["export", "leaves", led, "--to", "41"]).status == 2)
        // A file named like the newest checkpoint is not shown as one.
        let showCopy = try copyOfSample(work, "show")
        try "garbage\n".write(toFile: showCopy + "/checkpoints/00000000000000000040-48380a48.note", atomically: true, encoding: .utf8)
        let shown = try CLI.run(["checkpoint", showCopy, "--show"])
        #expect(shown.status == 1 && shown.stdout.isEmpty && shown.stderr.contains("not one the log key signed"), "\(shown)")
        // Sixty-four digits are an entry id, not a sequence number.
        let zeros = try CLI.run(["show", led, String(repeating: "0", count: 64)])
        #expect(zeros.status == 2 && zeros.stderr.contains("No entry has id"), "\(zeros)")
        // A file name that is not UTF-8 is refused as given, not read as another name.
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "\"$0\" log \"$(printf 'bad\\377dir')\" 2>&1; exit $?", CLI.binary]
        let pipe = Pipe()
        shell.standardOutput = pipe
        try shell.run()
        let said = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        shell.waitUntilExit()
        #expect(shell.terminationStatus == 2 && said.contains("(bad\\xff") && said.contains("is not UTF-8 text"), "\(said)")
        // A reader does not claim to have rebuilt the index it read past.
        try FileManager.default.removeItem(atPath: led + "/index")
        let log = try CLI.run(["log", led, "--limit", "1"])
        #expect(log.status == 0 && log.stderr.contains("the log was read instead") && !FileManager.default.fileExists(atPath: led + "/index"), "\(log)")
        // Output lost after the work was done says so, and not "run the command again".
        let full = try FileHandle(forWritingTo: URL(fileURLWithPath: "/dev/full"))
        let generated = try CLI.run(["key", "generate", "--out", work.path("k.pem")], output: full)
        #expect(generated.status == 3 && generated.stderr.contains("the key was written to") && FileManager.default.fileExists(atPath: work.path("k.pem")), "\(generated)")
    }

    @Test("what writers killed mid-write left is removed by the next writer or repair, and nothing else")
    func writerLeftovers() throws {
        let work = try WorkDirectory()
        let fm = FileManager.default
        for command in [["repair", "--rebuild-derived"], ["checkpoint", "--key", Self.keys + "/DEMO-ONLY-log.pem"]] {
            let led = try copyOfSample(work, "led-\(command[0])")
            let leftovers = ["index.tmp-4242", "rules.state.tmp-17", "tree.rebuilding-99/level-00", "checkpoints/00000000000000000099-48380a48.note.tmp-5", "checkpoints/log.vkey.tmp-6"]
            try fm.createDirectory(atPath: led + "/tree.rebuilding-99", withIntermediateDirectories: false)
            for name in leftovers { try "partial".write(toFile: led + "/" + name, atomically: false, encoding: .utf8) }
            let kept = ["index.tmp", "notes-of-the-operator.txt", "tree.rebuilding", "checkpoints/README"]
            for name in kept { try "mine".write(toFile: led + "/" + name, atomically: false, encoding: .utf8) }
            let r = try CLI.run(command.prefix(1) + [led] + command.dropFirst())
            #expect(r.status == 0, "\(command): \(r)")
            for name in leftovers { #expect(!fm.fileExists(atPath: led + "/" + name), "\(command): \(name)") }
            #expect(!fm.fileExists(atPath: led + "/tree.rebuilding-99"), "\(command)")
            for name in kept { #expect(fm.fileExists(atPath: led + "/" + name), "\(command): \(name)") }
            #expect(try CLI.run(["verify", led]).status == 0, "\(command)")
        }
    }

    @Test("the verifier key printed for the log key is the one recorded with the checkpoints")
    func verifierKey() throws {
        let printed = try CLI.run(["verifier-key", Self.logKey, "--name", "evidence-ledger.example/amnesty-2020"])
        #expect(printed.stdout == (try String(contentsOfFile: Self.vkey, encoding: .utf8)))
        let verified = try CLI.run(["verify", Self.sample])
        #expect(verified.stdout.contains("2 checkpoint(s) verified"))
        // A witness's key given as the log's is a usage mistake, not damage to the ledger.
        let work = try WorkDirectory()
        try CLI.run(["key", "generate", "--out", work.path("w.pem")])
        try work.write("w.vkey", try CLI.run(["verifier-key", work.path("w.pem"), "--name", "witness.example/w", "--witness"]).stdout)
        for arguments in [[Self.sample], [Self.sample, "--since", Self.old]] {
            let witnessKey = try CLI.run(["verify"] + arguments + ["--vkey", work.path("w.vkey")])
            #expect(witnessKey.status == 2 && witnessKey.stderr.contains("must be an Ed25519 note key"), "\(arguments): \(witnessKey.stdout) \(witnessKey.stderr)")
            #expect(!witnessKey.stdout.contains("DAMAGED"))
        }
    }

    @Test("every entry's inclusion proof checks against both checkpoints; a flipped bit, another size or another key does not")
    func inclusion() throws {
        let work = try WorkDirectory()
        for (checkpoint, size) in [(Self.new, 40), (Self.old, 21)] {
            for entry in 0..<size {
                let proof = try CLI.run(["prove", "inclusion", Self.sample, String(entry), "--size", String(size), "--json"])
                try work.write("p.json", proof.stdout)
                let checked = try CLI.run(["check", "inclusion", work.path("p.json"), "--checkpoint", checkpoint, "--vkey", Self.vkey])
                #expect(checked.status == 0, "entry \(entry) at \(size): \(checked.stderr)")
            }
        }
        let proof = try CLI.run(["prove", "inclusion", Self.sample, "7", "--json"]).stdout
        let object = try #require(JSONParser.parse(Array(proof.utf8.dropLast())).objectValue)
        #expect(object.keys.sorted() == ["index", "leaf_hash", "proof", "root", "tree_size"])
        let list = object["proof"]?.arrayValue ?? []
        let hashes = list.compactMap { $0.stringValue }
        #expect(hashes.count == list.count && !hashes.isEmpty)
        for (i, hash) in hashes.enumerated() {
            var bytes = try #require(Base64.decode(hash))
            bytes[i % 32] ^= 0x01
            try work.write("bad.json", proof.replacingOccurrences(of: hash, with: Base64.encode(bytes)))
            let checked = try CLI.run(["check", "inclusion", work.path("bad.json"), "--checkpoint", Self.new, "--vkey", Self.vkey])
            #expect(checked.status == 1, "flipped proof hash \(i)")
            #expect(checked.stderr.contains("[invalid-proof]"))
        }
        try work.write("p.json", proof)
        #expect(try CLI.run(["check", "inclusion", work.path("p.json"), "--checkpoint", Self.old, "--vkey", Self.vkey]).status == 1)
        try CLI.run(["key", "generate", "--out", work.path("other.pem")])
        let otherKey = try CLI.run(["verifier-key", work.path("other.pem"), "--name", "evidence-ledger.example/amnesty-2020"]).stdout
        #expect(try CLI.run(["check", "inclusion", work.path("p.json"), "--checkpoint", Self.new, "--vkey", otherKey.trimmingCharacters(in: .newlines)]).status == 1)
    }

    @Test("--vkey and --witness take a key, or a file holding it even if its path has a '+'; a bad key and a missing file are said as such")
    func verifierKeyOrFile() throws {
        let work = try WorkDirectory()
        try FileManager.default.createDirectory(atPath: work.path("k+d"), withIntermediateDirectories: false)
        try FileManager.default.copyItem(atPath: Self.vkey, toPath: work.path("k+d/log.vkey"))
        try work.write("p.json", try CLI.succeed(["prove", "inclusion", Self.sample, "39", "--json"]).stdout)
        let check = ["check", "inclusion", work.path("p.json"), "--checkpoint", Self.new]
        try CLI.succeed(check + ["--vkey", work.path("k+d/log.vkey")])
        try CLI.succeed(check + ["--vkey", try String(contentsOfFile: Self.vkey, encoding: .utf8).trimmingCharacters(in: .newlines)])
        // A witness's key file too: read, so the checkpoint is found not cosigned by it (status 1, not 2).
        try work.write("k+d/w.vkey", try CLI.succeed(["verifier-key", Self.keys + "/DEMO-ONLY-newsroom.pem", "--name", "witness.example/w", "--witness"]).stdout)
        let witnessed = try CLI.run(check + ["--vkey", Self.vkey, "--witness", work.path("k+d/w.vkey"), "--witnesses-required", "1"])
        #expect(witnessed.status == 1, "\(witnessed)")
        let missing = try CLI.run(check + ["--vkey", work.path("k+d/none.vkey")])
        #expect(missing.status == 2 && missing.stderr.contains("\"\(work.path("k+d/none.vkey"))\" names no file, nor is it a note verifier key."), "\(missing)")
        let badKey = try CLI.run(check + ["--vkey", "log.example+abcd+AQID"])
        #expect(badKey.status == 2 && badKey.stderr.contains("the key hash must be 8 lowercase hex digits"), "\(badKey)")
        let noFile = try CLI.run(check + ["--vkey", work.path("none.vkey")])
        #expect(noFile.status == 2 && noFile.stderr.contains("Cannot read \(work.path("none.vkey")): there is no such file."), "\(noFile)")
        try work.write("k+d/bad.vkey", "not a key\n")
        let badFile = try CLI.run(check + ["--vkey", work.path("k+d/bad.vkey")])
        #expect(badFile.status == 2 && badFile.stderr.contains("\(work.path("k+d/bad.vkey")) does not hold a note verifier key: ") && !badFile.stderr.contains(". ."), "\(badFile)")
    }

    @Test("consistency proofs between every pair of sizes verify offline; tampered ones do not")
    func consistency() throws {
        let work = try WorkDirectory()
        let proof = try CLI.run(["prove", "consistency", Self.sample, "--from", "21", "--to", "40", "--json"]).stdout
        try work.write("c.json", proof)
        let checked = try CLI.run(["check", "consistency", work.path("c.json"), "--checkpoint", Self.new, "--old-checkpoint", Self.old, "--vkey", Self.vkey])
        #expect(checked.status == 0, "\(checked.stderr)")
        try work.write("bad.json", proof.replacingOccurrences(of: "\"old_size\":21", with: "\"old_size\":20"))
        #expect(try CLI.run(["check", "consistency", work.path("bad.json"), "--checkpoint", Self.new, "--vkey", Self.vkey]).status == 1)
        for m in stride(from: 1, through: 40, by: 3) {
            let p = try CLI.run(["prove", "consistency", Self.sample, "--from", String(m), "--to", "40", "--json"]).stdout
            try work.write("m.json", p)
            #expect(try CLI.run(["check", "consistency", work.path("m.json"), "--checkpoint", Self.new, "--vkey", Self.vkey]).status == 0, "from \(m)")
        }
        // A proof of the other kind is said to be one: a file given wrong.
        let swapped = try CLI.run(["check", "inclusion", work.path("c.json"), "--checkpoint", Self.new, "--vkey", Self.vkey])
        #expect(swapped.status == 2 && swapped.stderr.contains("is a consistency proof; check it with `ledger check consistency`"), "\(swapped)")
        try work.write("i.json", try CLI.run(["prove", "inclusion", Self.sample, "3", "--json"]).stdout)
        let other = try CLI.run(["check", "consistency", work.path("i.json"), "--checkpoint", Self.new, "--vkey", Self.vkey])
        #expect(other.status == 2 && other.stderr.contains("is an inclusion proof; check it with `ledger check inclusion`"), "\(other)")
    }

    @Test("export leaves: one base64 line per record, whose leaf hash is the entry id")
    func exportLeaves() throws {
        let leaves = try CLI.run(["export", "leaves", Self.sample]).stdout.split(separator: "\n")
        #expect(leaves.count == 40)
        let log = try CLI.run(["log", Self.sample, "--json"]).stdout.split(separator: "\n")
        #expect(log.count == 40)
        for (leaf, line) in zip(leaves, log) {
            let bytes = try #require(Base64.decode(leaf))
            #expect(line.contains(SHA256.hash([0] + bytes).hexString))
        }
        #expect(try CLI.run(["export", "leaves", Self.sample, "--to", "21"]).stdout.split(separator: "\n").count == 21)
    }

    /// A copy of the sample ledger cut back to its first `keep` entries, then grown with other
    /// statements and checkpointed with the same log key: a second history.
    func fork(_ work: WorkDirectory, keep: Int, add: Int, checkpointKey: String = Self.logKey) throws -> String {
        let dir = work.path("fork")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for file in ["FORMAT", "log"] { try FileManager.default.copyItem(atPath: Self.sample + "/" + file, toPath: dir + "/" + file) }
        let lines = try String(contentsOfFile: dir + "/log", encoding: .utf8).split(separator: "\n").prefix(keep)
        try (lines.joined(separator: "\n") + "\n").write(toFile: dir + "/log", atomically: true, encoding: .utf8)
        for n in 0..<add {
            let envelope = try openingFact(work, "fork-\(n)", proposition: "Another history")
            #expect(try CLI.run(["append", dir, "--accepted-at", "2020-09-30T00:00:00Z"], stdin: envelope).status == 0)
        }
        #expect(try CLI.run(["checkpoint", dir, "--key", checkpointKey]).status == 0)
        return dir
    }

    @Test("equivocation: a second history signed by the same key is caught with a self-contained proof")
    func equivocation() throws {
        let work = try WorkDirectory()
        // Consistent: the sample's own two checkpoints.
        #expect(try CLI.run(["check", "equivocation", Self.old, Self.new, "--vkey", Self.vkey, "--ledger", Self.sample]).status == 0)
        // Same size, different roots.
        let same = try fork(work, keep: 21, add: 19)
        let forked = same + "/checkpoints/00000000000000000040-48380a48.note"
        let result = try CLI.run(["check", "equivocation", Self.new, forked, "--vkey", Self.vkey])
        #expect(result.status == 1)
        #expect(result.stderr.contains("[equivocation]"))
        let evidence = try #require(JSONParser.parse(Array(result.stdout.utf8.dropLast())).objectValue)
        let newText = try String(contentsOfFile: Self.new, encoding: .utf8)
        let vkeyText = try String(contentsOfFile: Self.vkey, encoding: .utf8)
        let signed: [String?] = [evidence["checkpoint_a"]?.stringValue, evidence["checkpoint_b"]?.stringValue]
        #expect(signed.contains(newText))
        #expect(evidence["verifier_key"]?.stringValue.map { $0 + "\n" } == vkeyText)
        // The forked ledger's history does not extend the sample's checkpoint at 21... it does;
        // but the sample's tree at 40 is not a prefix of a fork of 45 built on its first 30.
        try FileManager.default.removeItem(atPath: same)
        let longer = try fork(work, keep: 30, add: 15)
        let fortyFive = longer + "/checkpoints/00000000000000000045-48380a48.note"
        let inconsistent = try CLI.run(["check", "equivocation", Self.new, fortyFive, "--vkey", Self.vkey, "--ledger", longer])
        #expect(inconsistent.status == 1, "\(inconsistent.stderr)")
        #expect(inconsistent.stderr.contains("[equivocation]"))
        #expect(try CLI.run(["check", "equivocation", Self.old, fortyFive, "--vkey", Self.vkey, "--ledger", longer]).status == 0, "the fork still extends the checkpoint at 21")
        // The evidence stands on its own: its proof leads to the larger checkpoint's root from
        // another root at 40 than the sample's checkpoint there.
        let misbehaviour = try #require(JSONParser.parse(Array(inconsistent.stdout.utf8.dropLast())).objectValue)
        let proof = try #require(misbehaviour["consistency_proof"])
        var writer = JSONWriter()
        writer.value(proof)
        try work.write("evidence.json", String(decoding: writer.bytes, as: UTF8.self))
        let checked = try CLI.run(["check", "consistency", work.path("evidence.json"), "--checkpoint", fortyFive, "--vkey", Self.vkey])
        #expect(checked.status == 0, "\(checked.stderr)")
        let refuted = try CLI.run(["check", "consistency", work.path("evidence.json"), "--checkpoint", fortyFive, "--old-checkpoint", Self.new, "--vkey", Self.vkey])
        #expect(refuted.status == 1 && refuted.stderr.contains("[invalid-proof]"), "\(refuted.stderr)")
    }

    @Test("a damaged node of the stored tree (a cache) on a proof's path neither accuses the log nor makes an invalid proof")
    func damagedTreeCache() throws {
        let work = try WorkDirectory()
        let copy = try copyOfSample(work, "copy")
        // Node 4 of level 2 lies on the path from 21 to 40 entries; the root at 40 does not use it.
        try flipBit(of: copy + "/tree/level-02", at: 4 * 32)
        let checked = try CLI.run(["check", "equivocation", Self.old, Self.new, "--vkey", Self.vkey, "--ledger", copy])
        #expect(checked.status == 0 && checked.stdout.hasPrefix("CONSISTENT"), "\(checked.stdout) \(checked.stderr)")
        try CLI.run(["key", "generate", "--out", work.path("w.pem")])
        let cosign = ["--key", work.path("w.pem"), "--name", "witness.example/w", "--vkey", Self.vkey, "--time", "1600800000"]
        #expect(try CLI.run(["cosign-checkpoint", Self.old] + cosign).status == 0)
        let cosigned = try CLI.run(["cosign-checkpoint", Self.new, "--ledger", copy] + cosign)
        #expect(cosigned.status == 0, "\(cosigned.stderr)")
        // An older checkpoint is refused as older, not as a split view.
        let older = try CLI.run(["cosign-checkpoint", Self.old] + cosign)
        #expect(older.status == 1 && older.stderr.contains("error [invalid-checkpoint]") && older.stderr.contains("this one is older (size 21)"), "\(older)")
        // Every proof made from the damaged copy checks, at sizes with a stored checkpoint or not,
        // and verify --since does not take the cache for a rewritten log.
        let newCheckpoint = copy + "/checkpoints/00000000000000000040-48380a48.note"
        for size in 1..<40 {
            try work.write("c.json", try CLI.run(["prove", "consistency", copy, "--from", String(size), "--to", "40", "--json"]).stdout)
            let consistent = try CLI.run(["check", "consistency", work.path("c.json"), "--checkpoint", newCheckpoint, "--vkey", Self.vkey])
            #expect(consistent.status == 0, "from \(size): \(consistent.stderr)")
            try work.write("i.json", try CLI.run(["prove", "inclusion", copy, String(size), "--size", "40", "--json"]).stdout)
            let included = try CLI.run(["check", "inclusion", work.path("i.json"), "--checkpoint", newCheckpoint, "--vkey", Self.vkey])
            #expect(included.status == 0, "entry \(size): \(included.stderr)")
        }
        let since = try CLI.run(["verify", copy, "--since", Self.old, "--vkey", Self.vkey])
        #expect(since.status == 0, "\(since.stdout)")
    }

    @Test("a proof of a size no checkpoint has leads to the root of the log's entries, whatever the stored tree says; a log changed under its own checkpoint gives no proof")
    func proofsOfUncheckpointedSizes() throws {
        let work = try WorkDirectory()
        let copy = try copyOfSample(work, "copy")
        // Level 5's first node covers entries 0–31: in the root at 35 and in the path of entry 33.
        try flipBit(of: copy + "/tree/level-05", at: 0)
        let right = try CLI.succeed(["prove", "inclusion", Self.sample, "33", "--size", "35", "--json"]).stdout
        // Between the checkpoints of 21 and 40 entries, then past the last one left.
        #expect(try CLI.succeed(["prove", "inclusion", copy, "33", "--size", "35", "--json"]).stdout == right)
        try FileManager.default.removeItem(atPath: copy + "/checkpoints/00000000000000000040-48380a48.note")
        #expect(try CLI.succeed(["prove", "inclusion", copy, "33", "--size", "35", "--json"]).stdout == right)
        let consistency = try CLI.succeed(["prove", "consistency", Self.sample, "--from", "30", "--to", "35", "--json"]).stdout
        #expect(try CLI.succeed(["prove", "consistency", copy, "--from", "30", "--to", "35", "--json"]).stdout == consistency)

        // Entry 10 changed: the log no longer leads to its own checkpoint of 40 entries.
        let changed = try copyOfSample(work, "changed")
        let log = URL(fileURLWithPath: changed + "/log")
        var lines = try String(contentsOf: log, encoding: .utf8).components(separatedBy: "\n")
        #expect(lines[10].contains("09:30:00Z"))
        lines[10] = lines[10].replacingOccurrences(of: "09:30:00Z", with: "09:31:00Z")
        try lines.joined(separator: "\n").write(to: log, atomically: false, encoding: .utf8)
        let refused = try CLI.run(["prove", "inclusion", changed, "10", "--json"])
        #expect(refused.status == 1 && refused.stdout.isEmpty && refused.stderr.contains("error [damaged-log]: The log of \(changed) does not lead to"), "\(refused)")
        // Entries before the change still have their proofs, whether the stored tree is used or
        // not: the checkpoint of 21 entries and the log up to the change give their root.
        let atThirty = try CLI.succeed(["prove", "inclusion", Self.sample, "0", "--size", "30", "--json"]).stdout
        #expect(try CLI.succeed(["prove", "inclusion", changed, "0", "--size", "9", "--json"]).stdout == CLI.succeed(["prove", "inclusion", Self.sample, "0", "--size", "9", "--json"]).stdout)
        let late = try copyOfSample(work, "late")
        var last = try String(contentsOf: URL(fileURLWithPath: late + "/log"), encoding: .utf8).components(separatedBy: "\n")
        // A character of its signature changed: a well-formed record, not the one signed.
        let at = try #require(last[39].range(of: "\"sig\":\"")).upperBound
        last[39].replaceSubrange(at...at, with: last[39][at] == "A" ? "B" : "A")
        try last.joined(separator: "\n").write(to: URL(fileURLWithPath: late + "/log"), atomically: false, encoding: .utf8)
        #expect(try CLI.succeed(["prove", "inclusion", late, "0", "--size", "30", "--json"]).stdout == atThirty)
        // Entry 25 rewritten and every link after it made again: the log contradicts the
        // checkpoint of 40 entries, and what the entries up to 30 say cannot stand for it.
        let relinked = try copyOfSample(work, "relinked")
        var records = try String(contentsOf: URL(fileURLWithPath: relinked + "/log"), encoding: .utf8).components(separatedBy: "\n")
        #expect(records[25].contains("\"accepted_at\":\"2020-09-22T09:00:00Z\""))
        records[25] = records[25].replacingOccurrences(of: "\"accepted_at\":\"2020-09-22T09:00:00Z\"", with: "\"accepted_at\":\"2020-09-22T09:00:01Z\"")
        for i in 26..<40 {
            let previous = Record.entryID(of: Array(records[i - 1].utf8)).hexString
            let at = try #require(records[i].range(of: #""prev":""#)).upperBound
            records[i].replaceSubrange(at..<records[i].index(at, offsetBy: 64), with: previous)
        }
        try records.joined(separator: "\n").write(to: URL(fileURLWithPath: relinked + "/log"), atomically: false, encoding: .utf8)
        for proof in [["inclusion", relinked, "25", "--size", "30"], ["consistency", relinked, "--from", "21", "--to", "30"]] {
            let contradicted = try CLI.run(["prove"] + proof)
            #expect(contradicted.status == 1 && contradicted.stderr.contains("error [damaged-log]"), "\(proof): \(contradicted)")
        }
    }

    @Test("a ledger directory of another log, or too short, and a proof that leads elsewhere accuse nobody")
    func equivocationWithoutEvidence() throws {
        let work = try WorkDirectory()
        // The fork shares the sample's first 30 entries, so it holds 45 entries but not the log of
        // the sample's checkpoint at 40: the proof it makes leads to its own root at 40.
        let longer = try fork(work, keep: 30, add: 15)
        let fortyFive = longer + "/checkpoints/00000000000000000045-48380a48.note"
        let other = try CLI.run(["check", "equivocation", Self.old, Self.new, "--vkey", Self.vkey, "--ledger", longer])
        #expect(other.status == 2, "\(other.stderr)")
        #expect(other.stderr.contains("[usage]") && other.stderr.contains("not the log the checkpoint was signed over"), "\(other.stderr)")
        #expect(!other.stdout.contains("misbehaviour"))
        // A copy of the log cut at 30 entries cannot speak for the checkpoint of 45.
        let short = work.path("short")
        try FileManager.default.copyItem(atPath: longer, toPath: short)
        var lines = try String(contentsOfFile: short + "/log", encoding: .utf8).split(separator: "\n").map(String.init)
        lines.removeLast(15)
        try (lines.joined(separator: "\n") + "\n").write(toFile: short + "/log", atomically: true, encoding: .utf8)
        // Its own checkpoint of 45, index and tree would make the cut log damaged rather than short.
        for name in try FileManager.default.contentsOfDirectory(atPath: short + "/checkpoints") where name.hasSuffix(".note") {
            try FileManager.default.removeItem(atPath: short + "/checkpoints/" + name)
        }
        for derived in ["index", "tree"] { try FileManager.default.removeItem(atPath: short + "/" + derived) }
        #expect(try CLI.run(["repair", short, "--rebuild-derived"]).status == 0)
        let cut = try CLI.run(["check", "equivocation", Self.old, fortyFive, "--vkey", Self.vkey, "--ledger", short])
        #expect(cut.status == 2 && cut.stderr.contains("holds 30 entries"), "\(cut.stderr)")
        #expect(!cut.stdout.contains("misbehaviour"))
        // A proof made from another log, or with a hash changed, leads to another root: invalid,
        // not evidence. Both the checker and a witness say so.
        let foreign = try CLI.run(["prove", "consistency", longer, "--from", "21", "--to", "45", "--json"]).stdout
        try work.write("foreign.json", foreign)
        let wrongLog = try CLI.run(["check", "equivocation", Self.old, Self.new, "--vkey", Self.vkey, "--proof", work.path("foreign.json")])
        #expect(wrongLog.status == 1 && wrongLog.stderr.contains("[invalid-proof]"), "\(wrongLog.stderr)")
        #expect(!wrongLog.stdout.contains("misbehaviour"))
        let own = try CLI.run(["prove", "consistency", Self.sample, "--from", "21", "--to", "40", "--json"]).stdout
        let object = try #require(JSONParser.parse(Array(own.utf8.dropLast())).objectValue)
        let hash = try #require(object["proof"]?.arrayValue?.first?.stringValue)
        var bytes = try #require(Base64.decode(hash))
        bytes[0] ^= 0x01
        try work.write("flipped.json", own.replacingOccurrences(of: hash, with: Base64.encode(bytes)))
        let flipped = try CLI.run(["check", "equivocation", Self.old, Self.new, "--vkey", Self.vkey, "--proof", work.path("flipped.json")])
        #expect(flipped.status == 1 && flipped.stderr.contains("[invalid-proof]"), "\(flipped.stderr)")
        #expect(!flipped.stdout.contains("misbehaviour"))
        try CLI.run(["key", "generate", "--out", work.path("w.pem")])
        let cosign = ["--key", work.path("w.pem"), "--name", "witness.example/w", "--vkey", Self.vkey, "--time", "1600800000"]
        #expect(try CLI.run(["cosign-checkpoint", Self.old] + cosign).status == 0)
        let refused = try CLI.run(["cosign-checkpoint", Self.new, "--proof", work.path("flipped.json")] + cosign)
        #expect(refused.status == 1 && refused.stderr.contains("[invalid-proof]"), "\(refused.stderr)")
        let wrongLedger = try CLI.run(["cosign-checkpoint", Self.new, "--ledger", longer] + cosign)
        #expect(wrongLedger.status == 2 && wrongLedger.stderr.contains("not the log the checkpoint was signed over"), "\(wrongLedger.stderr)")
        #expect(try CLI.run(["cosign-checkpoint", Self.new, "--ledger", Self.sample] + cosign).status == 0)
    }

    @Test("witness cosignatures: k of n required, rollback and a conflicting history refused")
    func witnesses() throws {
        let work = try WorkDirectory()
        for w in ["w1", "w2"] {
            try CLI.run(["key", "generate", "--out", work.path("\(w).pem")])
            try work.write("\(w).vkey", try CLI.run(["verifier-key", work.path("\(w).pem"), "--name", "witness.example/\(w)", "--witness"]).stdout)
        }
        func cosign(_ file: String, _ w: String, _ extra: [String] = []) throws -> CLI.Result {
            try CLI.run(["cosign-checkpoint", file, "--key", work.path("\(w).pem"), "--name", "witness.example/\(w)", "--vkey", Self.vkey, "--time", "1600800000"] + extra)
        }
        #expect(try cosign(Self.old, "w1").status == 0)
        let w1 = try cosign(Self.new, "w1", ["--ledger", Self.sample])
        #expect(w1.status == 0, "\(w1.stderr)")
        try work.write("new-w1.note", w1.stdout)
        let both = try CLI.run(["cosign-checkpoint", work.path("new-w1.note"), "--key", work.path("w2.pem"), "--name", "witness.example/w2", "--vkey", Self.vkey])
        try work.write("new-w1w2.note", both.stdout)
        let proof = try CLI.run(["prove", "inclusion", Self.sample, "3", "--json"]).stdout
        try work.write("p.json", proof)
        let witnessArgs = ["--witness", work.path("w1.vkey"), "--witness", work.path("w2.vkey")]
        func check(_ note: String, required: Int) throws -> Int32 {
            try CLI.run(["check", "inclusion", work.path("p.json"), "--checkpoint", note, "--vkey", Self.vkey] + witnessArgs + ["--witnesses-required", String(required)]).status
        }
        #expect(try check(work.path("new-w1w2.note"), required: 2) == 0)
        #expect(try check(work.path("new-w1.note"), required: 2) == 1)
        #expect(try check(work.path("new-w1.note"), required: 1) == 0)
        #expect(try check(Self.new, required: 1) == 1)
        // Cosignatures of keys not given are ignored, and said.
        let unknown = try CLI.run(["check", "inclusion", work.path("p.json"), "--checkpoint", work.path("new-w1w2.note"), "--vkey", Self.vkey])
        #expect(unknown.status == 0 && unknown.stderr.contains("also carries 2 signature(s) of keys not given") && unknown.stderr.contains("witness.example/w1"), "\(unknown)")
        // A full verification applies the same requirement to the newest stored checkpoint, and
        // saves no rule state when it is not met.
        let led = try copyOfSample(work, "led")
        func verify(required: Int, _ extra: [String] = []) throws -> CLI.Result {
            try CLI.run(["verify", led, "--vkey", Self.vkey] + witnessArgs + ["--witnesses-required", String(required)] + extra)
        }
        let uncosigned = try verify(required: 1, ["--save-state", work.path("s.state")])
        #expect(uncosigned.status == 1 && uncosigned.stdout.contains("checkpoint of 40 entries: [requirement-not-met]"), "\(uncosigned)")
        #expect(uncosigned.stdout.contains("NOT VERIFIED (requirements given not met)"), "\(uncosigned)")
        #expect(!FileManager.default.fileExists(atPath: work.path("s.state")))
        try FileManager.default.removeItem(atPath: led + "/checkpoints/00000000000000000040-48380a48.note")
        try FileManager.default.copyItem(atPath: work.path("new-w1.note"), toPath: led + "/checkpoints/00000000000000000040-48380a48.note")
        #expect(try verify(required: 1).status == 0)
        #expect(try verify(required: 2).status == 1)
        // The trusted checkpoint of --since is the reviewer's, trusted as it is: only the newest
        // must be cosigned.
        try CLI.succeed(["verify", led, "--since", Self.old, "--vkey", Self.vkey] + witnessArgs + ["--witnesses-required", "1"])
        // The log key re-signs the checkpoint it holds cosigned: nothing changes, no split view.
        let stored = led + "/checkpoints/00000000000000000040-48380a48.note"
        try CLI.succeed(["checkpoint", led, "--key", Self.logKey])
        #expect(try Data(contentsOf: URL(fileURLWithPath: stored)) == Data(contentsOf: URL(fileURLWithPath: work.path("new-w1.note"))))
        // Not if the log's own signature there is broken: that file is no checkpoint of the log's.
        let broken = try String(contentsOf: URL(fileURLWithPath: stored), encoding: .utf8)
        let signature = try #require(broken.split(separator: "\n").first { $0.hasPrefix("— evidence-ledger.example/amnesty-2020 ") }?.split(separator: " ").last)
        try broken.replacingOccurrences(of: signature, with: "A" + signature.dropFirst()).write(toFile: stored, atomically: false, encoding: .utf8)
        let refusedResign = try CLI.run(["checkpoint", led, "--key", Self.logKey])
        #expect(refusedResign.status == 1 && refusedResign.stderr.contains("lacks the log key's signature of this one"), "\(refusedResign)")
        try broken.write(toFile: stored, atomically: false, encoding: .utf8)
        // A witness's own last checkpoint is checked with the log key alone: requirements given
        // now do not make it refuse what it cosigned then.
        let required = try cosign(work.path("new-w1w2.note"), "w1", ["--witness", work.path("w2.vkey"), "--witnesses-required", "1"])
        #expect(required.status == 0, "\(required)")
        let unnamed = try CLI.run(["verify", led, "--vkey", Self.vkey])
        #expect(unnamed.status == 0 && unnamed.stderr.contains("also carries 1 signature(s) of keys not given"), "\(unnamed)")
        let otherOrigin = try CLI.run(["verify", led, "--vkey", Self.vkey, "--origin", "another.example/log"])
        #expect(otherOrigin.status == 1 && otherOrigin.stdout.contains("not the log you meant"), "\(otherOrigin)")
        // Its own origin, and no witness required: nothing more is asked, even of a ledger without
        // checkpoints; witnesses required without their keys, or without the log key, are usage
        // mistakes; and a damaged ledger still gets its full report.
        #expect(try CLI.run(["verify", led, "--origin", "evidence-ledger.example/amnesty-2020"]).status == 0)
        try FileManager.default.removeItem(atPath: led + "/checkpoints/00000000000000000040-48380a48.note")
        try FileManager.default.removeItem(atPath: led + "/checkpoints/00000000000000000021-48380a48.note")
        #expect(try CLI.run(["verify", led, "--vkey", Self.vkey, "--origin", "evidence-ledger.example/amnesty-2020"]).status == 0)
        #expect(try CLI.run(["verify", led, "--witnesses-required", "1"]).status == 2)
        #expect(try CLI.run(["verify", led] + witnessArgs + ["--witnesses-required", "1"]).status == 2)
        var log = try Data(contentsOf: URL(fileURLWithPath: led + "/log"))
        log[400] ^= 1
        try log.write(to: URL(fileURLWithPath: led + "/log"))
        let damaged = try verify(required: 1, ["--origin", "evidence-ledger.example/amnesty-2020"])
        #expect(damaged.status == 1 && damaged.stdout.contains("DAMAGED") && damaged.stdout.contains("entry 0:"), "\(damaged)")
        // With the genesis unreadable, the requirements cannot be checked: said, not found unmet.
        #expect(!damaged.stdout.contains("requirement-not-met") && damaged.stderr.contains("were not checked"), "\(damaged)")
        let tooMany = try CLI.run(["verify", led, "--since", Self.new, "--vkey", Self.vkey, "--witness", work.path("w1.vkey"), "--witnesses-required", "2"])
        #expect(tooMany.status == 2 && tooMany.stderr.hasPrefix("error [usage]: --witnesses-required 2"), "\(tooMany)")
        // Rollback: w1 has cosigned 40 and refuses 21.
        #expect(try cosign(Self.old, "w1").status == 1)
        // A conflicting checkpoint of the same size is refused.
        let fork = try fork(work, keep: 21, add: 19)
        let conflicting = try cosign(fork + "/checkpoints/00000000000000000040-48380a48.note", "w1")
        #expect(conflicting.status == 1)
        #expect(conflicting.stderr.contains("two histories"))
        // A witness state that is there but cannot be read is an error, never taken for no state
        // (a directory where the file should be is a wrong name: usage).
        try FileManager.default.createDirectory(atPath: work.path("unreadable.state"), withIntermediateDirectories: false)
        let unreadable = try cosign(Self.old, "w2", ["--state", work.path("unreadable.state")])
        #expect(unreadable.status == 2, "\(unreadable.stderr)")
        #expect(unreadable.stderr.contains("Cannot read \(work.path("unreadable.state"))"), "\(unreadable.stderr)")
    }

    @Test("an index or tree leaf file that is a link, a directory or a FIFO records nothing: readers answer from the log, and none waits")
    func cacheFilesThatAreNoFiles() throws {
        let work = try WorkDirectory()
        for (name, make) in [("index", "link"), ("index", "directory"), ("index", "fifo"), ("tree/level-00", "directory"), ("tree/level-00", "fifo")] {
            let dir = try copyOfSample(work, "\(make)-\(name.replacingOccurrences(of: "/", with: "-"))")
            let path = dir + "/" + name
            try FileManager.default.moveItem(atPath: path, toPath: dir + "/moved")
            switch make {
            case "link": try FileManager.default.createSymbolicLink(atPath: path, withDestinationPath: dir + "/moved")
            case "directory": try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            default: #expect(mkfifo(path, 0o600) == 0)
            }
            for command in [["log", dir], ["show", dir, "3"], ["facts", dir, "--no-snapshots"], ["verify", dir]] {
                let answered = try CLI.run(command)
                #expect(answered.status == 0, "\(name) as a \(make): \(command): \(answered)")
            }
        }
        // A snapshot that is a FIFO is not waited on either: the answer is replayed from the log.
        let dir = try copyOfSample(work, "fifo-snapshot")
        try CLI.succeed(["snapshot", dir])
        let snapshot = try #require(FileManager.default.contentsOfDirectory(atPath: dir + "/snapshots").first { $0.hasSuffix(".snapshot") })
        try FileManager.default.removeItem(atPath: dir + "/snapshots/" + snapshot)
        #expect(mkfifo(dir + "/snapshots/" + snapshot, 0o600) == 0)
        #expect(try CLI.run(["facts", dir, "--json"]).stdout == CLI.succeed(["facts", dir, "--json", "--no-snapshots"]).stdout)
    }

    @Test("verify --since refuses a newest checkpoint named for another size than it states, as a full verification finds it")
    func misnamedNewest() throws {
        let work = try WorkDirectory()
        let copy = try copyOfSample(work, "copy")
        try FileManager.default.copyItem(atPath: Self.old, toPath: copy + "/checkpoints/00000000000000000040-ffffffff.note")
        let since = try CLI.run(["verify", copy, "--since", Self.old, "--vkey", Self.vkey])
        #expect(since.status == 1 && since.stderr.contains("error [invalid-checkpoint]") && since.stderr.contains("is named for size 40 but says 21"), "\(since)")
        let full = try CLI.run(["verify", copy])
        #expect(full.status == 1 && full.stdout.contains("is named for size 40 but says 21"), "\(full)")
    }

    @Test("a saved rule state carries incremental verification forward; one of another checkpoint is refused")
    func savedState() throws {
        let work = try WorkDirectory()
        let state = work.path("rules.state")
        let saved = try CLI.run(["verify", Self.sample, "--since", Self.old, "--vkey", Self.vkey, "--save-state", state])
        #expect(saved.status == 0, "\(saved.stderr)")
        #expect(saved.stdout.contains("Saved the rule state at the checkpoint of 40 entries to \(state)"))
        // It names the checkpoint file to keep with it, as a full verification does.
        #expect(saved.stdout.contains("keep a copy of \(Self.new) with it. Next time: --since \(Self.new) --state \(state)."), "\(saved.stdout)")
        let next = try CLI.run(["verify", Self.sample, "--since", Self.new, "--vkey", Self.vkey, "--state", state])
        #expect(next.status == 0, "\(next.stderr)")
        #expect(next.stdout.contains("0 new entries;") && !next.stdout.contains("(40…39)"), "\(next.stdout)")
        let wrong = try CLI.run(["verify", Self.sample, "--since", Self.old, "--vkey", Self.vkey, "--state", state])
        #expect(wrong.status == 2)
        #expect(wrong.stderr.contains("is for 40 entries"))
        let alone = try CLI.run(["verify", Self.sample, "--state", state])
        #expect(alone.status == 2)
        let nowhere = work.path("no-such-directory/x.state")
        let unwritable = try CLI.run(["verify", Self.sample, "--save-state", nowhere])
        #expect(unwritable.status == 3 && unwritable.stderr.contains(nowhere + ":") && !unwritable.stderr.contains(".tmp-"), "\(unwritable.stderr)")
        let full = try CLI.run(["verify", Self.sample, "--save-state", work.path("full.state")])
        #expect(full.status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: work.path("full.state"))) == Data(contentsOf: URL(fileURLWithPath: state)))
    }

    @Test("verify --state takes no file in the ledger directory, as --save-state writes none there, even a good state")
    func stateInLedgerDirectory() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let mine = work.path("mine.state")
        try CLI.succeed(["verify", dir, "--vkey", Self.vkey, "--save-state", mine])
        // A state that would do, put where the writer keeps its own, below it, and linked to from outside.
        try FileManager.default.copyItem(atPath: mine, toPath: dir + "/rules.state")
        try FileManager.default.copyItem(atPath: mine, toPath: dir + "/checkpoints/x.state")
        try FileManager.default.createSymbolicLink(atPath: work.path("link.state"), withDestinationPath: dir + "/rules.state")
        // And a FIFO, which opening would wait on for good: refused before it is opened.
        #expect(mkfifo(dir + "/checkpoints/fifo.state", 0o600) == 0)
        for state in [dir + "/rules.state", dir + "/checkpoints/x.state", work.path("link.state"), dir + "/checkpoints/fifo.state"] {
            let refused = try CLI.run(["verify", dir, "--since", Self.new, "--vkey", Self.vkey, "--state", state])
            #expect(refused.status == 2 && refused.stdout.isEmpty, "\(refused)")
            #expect(refused.stderr.contains("error [usage]: --state \(state) lies in the ledger directory \(dir)"), "\(refused)")
            #expect(refused.stderr.contains("must be your own"), "\(refused)")
        }
        try CLI.succeed(["verify", dir, "--since", Self.new, "--vkey", Self.vkey, "--state", mine])
    }

    @Test("verify --since with a saved state finds lines put into the log before the new entries, and a stored checkpoint between the trusted and the newest that the log contradicts")
    func sinceSeesInsertionsAndCheckpointsBetween() throws {
        let work = try WorkDirectory()
        let dir = try copyOfSample(work, "led")
        let fork = try copyOfSample(work, "fork")
        let state = work.path("s40.state")
        try CLI.succeed(["verify", dir, "--vkey", Self.vkey, "--save-state", state])
        // Checkpoints at 41 and 42; the fork's checkpoint at 41 is of another entry 40.
        for id in ["f-a", "f-b"] {
            try CLI.succeed(["append", dir, "--checkpoint", Self.logKey], stdin: try openingFact(work, id, proposition: "P"))
        }
        try CLI.succeed(["append", fork, "--checkpoint", Self.logKey], stdin: try openingFact(work, "f-x", proposition: "Q"))
        let since = ["--since", Self.new, "--vkey", Self.vkey, "--state", state]
        let intact = try CLI.run(["verify", dir] + since)
        #expect(intact.status == 0, "\(intact)")

        // A line put in before entry 39, the index pointing past it: the entries read are intact.
        let inserted = work.path("inserted")
        try FileManager.default.copyItem(atPath: dir, toPath: inserted)
        let log = try Data(contentsOf: URL(fileURLWithPath: inserted + "/log"))
        let at = log.split(separator: 0x0a, omittingEmptySubsequences: false).prefix(39).reduce(0) { $0 + $1.count + 1 }
        let junk = Data(#"{"not":"a record"}"#.utf8 + [0x0a])
        try (log.prefix(at) + junk + log.dropFirst(at)).write(to: URL(fileURLWithPath: inserted + "/log"))
        var index = [UInt8](try Data(contentsOf: URL(fileURLWithPath: inserted + "/index")))
        for entry in 39..<(index.count / 16) {
            let offset = index[(16 * entry)..<(16 * entry + 8)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) } + UInt64(junk.count)
            for byte in 0..<8 { index[16 * entry + byte] = UInt8(truncatingIfNeeded: offset >> (56 - 8 * UInt64(byte))) }
        }
        try Data(index).write(to: URL(fileURLWithPath: inserted + "/index"))
        let found = try CLI.run(["verify", inserted] + since)
        #expect(found.status == 1 && found.stdout.contains("a line before entry 40 was changed, put in or taken out"), "\(found)")

        // The fork's checkpoint of 41 entries, signed by the log key, stored in place of the log's own.
        let split = work.path("split")
        try FileManager.default.copyItem(atPath: dir, toPath: split)
        let name = "/checkpoints/00000000000000000041-48380a48.note"
        try FileManager.default.copyItem(atPath: dir + name, toPath: work.path("t41.note"))
        try FileManager.default.removeItem(atPath: split + name)
        try FileManager.default.copyItem(atPath: fork + name, toPath: split + name)
        let contradicted = try CLI.run(["verify", split] + since)
        #expect(contradicted.status == 1 && contradicted.stdout.contains("The checkpoint \(split + name), signed by the log key, commits to root"), "\(contradicted)")
        #expect(try CLI.run(["verify", split]).status == 1)
        // Also at the trusted size itself.
        let atTrusted = try CLI.run(["verify", split, "--since", work.path("t41.note"), "--vkey", Self.vkey])
        #expect(atTrusted.status == 1 && atTrusted.stdout.contains("The checkpoint \(split + name), signed by the log key, commits to root"), "\(atTrusted)")

        // Something that is not a file in a checkpoint's place is said to be so, not waited on.
        let fifo = work.path("fifo")
        try FileManager.default.copyItem(atPath: dir, toPath: fifo)
        try FileManager.default.removeItem(atPath: fifo + name)
        #expect(mkfifo(fifo + name, 0o644) == 0)
        let notAFile = try CLI.run(["verify", fifo] + since)
        #expect(notAFile.status == 1 && notAFile.stdout.contains("is not a regular file"), "\(notAFile)")
        // Nor is a link, which stops no verification: what else it finds is still said.
        try FileManager.default.createSymbolicLink(atPath: fifo + "/checkpoints/00000000000000000005-48380a48.note", withDestinationPath: Self.old)
        let linked = try CLI.run(["verify", fifo])
        #expect(linked.status == 1 && linked.stdout.contains("00000000000000000005-48380a48.note is not a regular file") && linked.stdout.contains("DAMAGED"), "\(linked)")

        // Without a state, an old entry changed behind tree files that still fold to the trusted
        // root is the log's change, not damage to the tree.
        let changed = work.path("changed")
        try FileManager.default.copyItem(atPath: dir, toPath: changed)
        var lines = try String(contentsOfFile: changed + "/log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[12] = lines[12].replacingOccurrences(of: #"accepted_at":"2020"#, with: #"accepted_at":"2019"#)
        try lines.joined(separator: "\n").write(toFile: changed + "/log", atomically: true, encoding: .utf8)
        let oldChanged = try CLI.run(["verify", changed, "--since", Self.new, "--vkey", Self.vkey])
        #expect(oldChanged.status == 1 && oldChanged.stdout.contains("which the tree files still fold to") && !oldChanged.stdout.contains("the tree files are damaged, not the log"), "\(oldChanged)")
    }

    @Test("incremental verification: only new entries are checked; a rewrite before the trusted checkpoint is caught")
    func incremental() throws {
        let ok = try CLI.run(["verify", Self.sample, "--since", Self.old, "--vkey", Self.vkey])
        #expect(ok.status == 0, "\(ok.stdout)")
        #expect(ok.stdout.contains("19 new entries (21…39) checked in full"))
        let work = try WorkDirectory()
        let copy = try copyOfSample(work, "copy")
        // Rewrite entry 5 (before the trusted checkpoint): the first 21 entries no longer have the
        // trusted root, and the stored checkpoints no longer match.
        var lines = try String(contentsOfFile: copy + "/log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[5] = lines[5].replacingOccurrences(of: "\"accepted_at\":\"2020-09-21T07:30:00Z\"", with: "\"accepted_at\":\"2020-09-21T07:31:00Z\"")
        try lines.joined(separator: "\n").write(toFile: copy + "/log", atomically: true, encoding: .utf8)
        try? FileManager.default.removeItem(atPath: copy + "/tree")
        let rewritten = try CLI.run(["verify", copy, "--since", Self.old, "--vkey", Self.vkey])
        #expect(rewritten.status == 1)
        #expect(rewritten.stdout.contains("[equivocation]"), "\(rewritten.stdout)")
        let full = try CLI.run(["verify", copy])
        #expect(full.status == 1)
        #expect(full.stdout.contains("[invalid-checkpoint]"))
    }
}

@Suite("Equivocation checks and unreadable input")
struct EquivocationInputTests {
    @Test("a proof file that cannot be read is a usage error, not evidence of misbehaviour")
    func missingProofFile() throws {
        let result = try CLI.run(["check", "equivocation", TransparencyTests.old, TransparencyTests.new, "--vkey", TransparencyTests.vkey, "--proof", "/nonexistent/proof.json"])
        #expect(result.status == 2, "\(result.stderr)")
        #expect(!result.stdout.contains("misbehaviour"))
    }
}
