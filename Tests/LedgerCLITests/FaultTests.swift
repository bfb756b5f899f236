import Foundation
import LedgerCore
import LedgerCrypto
import Testing

@Suite("Resource faults leave the ledger exactly as before")
struct FaultTests {
    /// A ledger with one investigator and a signed statement of about `size` bytes ready to append.
    func prepare(_ work: WorkDirectory, size: Int) throws -> String {
        for party in ["admin", "inv"] { try CLI.run(["key", "generate", "--out", work.path("\(party).pem")]) }
        try CLI.run(["init", work.path("led"), "--origin", "fault.test/ledger", "--admin-key", work.path("admin.pem")])
        let raw = try CLI.run(["key", "public", work.path("inv.pem")]).stdout.split(separator: "\n").first { $0.hasPrefix("raw (base64): ") }?.dropFirst(14) ?? ""
        try work.write("reg.json", #"{"type":"party.registered","id":"reg","party":"inv","name":"I","role":"investigator","keys":["\#(raw)"]}"#)
        try CLI.run(["append", work.path("led")], stdin: CLI.run(["sign", "--key", work.path("admin.pem"), "--author", "admin", work.path("reg.json")]).stdout)
        try work.write("big.json", #"{"type":"fact.opened","id":"big","fact":"big","proposition":"\#(String(repeating: "p", count: size))"}"#)
        let envelope = try CLI.run(["sign", "--key", work.path("inv.pem"), "--author", "inv", work.path("big.json")]).stdout
        try work.write("big.envelope", envelope)
        return work.path("big.envelope")
    }

    func snapshot(_ work: WorkDirectory) throws -> [String: Data] {
        // Every file in the ledger directory, subdirectories included.
        var out: [String: Data] = [:]
        for name in FileManager.default.subpaths(atPath: work.path("led")) ?? [] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: work.path("led/\(name)"), isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            out[name] = try Data(contentsOf: URL(fileURLWithPath: work.path("led/\(name)")))
        }
        return out
    }

    @Test("a write that hits the file-size limit (as a full disk would) fails with an I/O error and is rolled back")
    func fileSizeLimit() throws {
        let work = try WorkDirectory()
        let envelope = try prepare(work, size: 12_000)
        let before = try snapshot(work)
        let logSize = before["log"]?.count ?? 0
        // ulimit -f counts 1 KiB blocks: room for the log as it is, not for the new record.
        let limit = logSize / 1024 + 2
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["-c", "ulimit -f \(limit); exec \"$0\" append \"$1\" \"$2\"", CLI.binary, work.path("led"), envelope]
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 3, "\(message)")
        #expect(message.contains("[io]") && message.contains("left as it was"), "\(message)")
        #expect(try snapshot(work) == before)
        #expect(try CLI.run(["verify", work.path("led")]).status == 0)
        // With room again, the same statement goes in.
        #expect(try CLI.run(["append", work.path("led"), envelope]).status == 0)
    }

    @Test("output that cannot be written (to /dev/full) is an I/O error, never a silent success")
    func outputToFullDevice() throws {
        let sample = SampleCaseTests.sample
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        defer { try? full.close() }
        for arguments in [["log", sample], ["export", "leaves", sample], ["facts", sample, "--json", "--no-snapshots"], ["prove", "inclusion", sample, "3", "--json"], ["verify", sample]] {
            let result = try CLI.run(arguments, output: full)
            #expect(result.status == 3, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("error [io]: Cannot write to standard output"), "\(arguments): \(result.stderr)")
        }
        // A verdict stands when its report is lost: a damaged ledger is still status 1, and the
        // lost output is said beside it.
        let work = try WorkDirectory()
        let copy = work.path("copy")
        try FileManager.default.copyItem(atPath: sample, toPath: copy)
        var lines = try String(contentsOfFile: copy + "/log", encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        lines[12] = lines[12].replacingOccurrences(of: #"accepted_at":"2020"#, with: #"accepted_at":"2019"#)
        try lines.joined(separator: "\n").write(toFile: copy + "/log", atomically: true, encoding: .utf8)
        let damaged = try CLI.run(["verify", copy], output: full)
        #expect(damaged.status == 1 && damaged.stderr.contains("error [io]: Cannot write to standard output"), "\(damaged.stderr)")
    }

    @Test("a full disk (a 64 KiB tmpfs) fails with an I/O error and leaves the ledger as it was", .enabled(if: getuid() == 0, "needs root to mount a tmpfs"))
    func diskFull() throws {
        let work = try WorkDirectory()
        let envelope = try prepare(work, size: 12_000)
        let mount = work.path("small")
        try FileManager.default.createDirectory(atPath: mount, withIntermediateDirectories: true)
        let mounted = Process()
        mounted.executableURL = URL(fileURLWithPath: "/bin/mount")
        mounted.arguments = ["-t", "tmpfs", "-o", "size=64k", "tmpfs", mount]
        try mounted.run()
        mounted.waitUntilExit()
        try #require(mounted.terminationStatus == 0, "mount failed")
        defer {
            let unmount = Process()
            unmount.executableURL = URL(fileURLWithPath: "/bin/umount")
            unmount.arguments = [mount]
            try? unmount.run()
            unmount.waitUntilExit()
        }
        try FileManager.default.copyItem(atPath: work.path("led"), toPath: mount + "/led")
        // Fill the rest of the file system.
        let filler = FileManager.default.createFile(atPath: mount + "/filler", contents: nil)
        #expect(filler)
        if let handle = FileHandle(forWritingAtPath: mount + "/filler") {
            while (try? handle.write(contentsOf: Data(count: 4096))) != nil {}
            try? handle.close()
        }
        let logBefore = try Data(contentsOf: URL(fileURLWithPath: mount + "/led/log"))
        let result = try CLI.run(["append", mount + "/led", envelope])
        #expect(result.status == 3, "\(result.stderr)")
        #expect(result.stderr.contains("[io]"))
        #expect(try Data(contentsOf: URL(fileURLWithPath: mount + "/led/log")) == logBefore)
        #expect(try CLI.run(["verify", mount + "/led"]).status == 0)
    }

    @Test("permission denied: a user who may not write the ledger gets an I/O error and changes nothing")
    func permissionDenied() throws {
        let work = try WorkDirectory()
        let envelope = try prepare(work, size: 100)
        let before = try snapshot(work)
        let process = Process()
        if getuid() == 0 {
            // Root may write anywhere: run the append as an unprivileged user instead.
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work.url.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: envelope)
            process.executableURL = URL(fileURLWithPath: "/usr/bin/setpriv")
            process.arguments = ["--reuid=65534", "--regid=65534", "--clear-groups", CLI.binary, "append", work.path("led"), envelope]
        } else {
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: work.path("led"))
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: work.path("led/log"))
            process.executableURL = URL(fileURLWithPath: CLI.binary)
            process.arguments = ["append", work.path("led"), envelope]
        }
        let err = Pipe()
        process.standardError = err
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 3, "\(message)")
        #expect(message.contains("Permission denied"), "\(message)")
        try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: work.path("led"))
        #expect(try snapshot(work) == before)
    }

    /// Cuts the log at `path` back to its first `count` records.
    func keepRecords(_ count: Int, of path: String) throws {
        let log = URL(fileURLWithPath: path)
        let lines = try Data(contentsOf: log).split(separator: 0x0a, omittingEmptySubsequences: false)
        try Data(lines.prefix(count).joined(separator: [0x0a]) + [0x0a]).write(to: log)
    }

    /// `strace` with options that make it inject faults quietly, if it can trace here (it is
    /// installed, and tracing is allowed).
    static let strace: [String]? = {
        let quiet = ["strace", "-f", "-qq", "-o", "/dev/null"]
        guard let probe = try? CLI.run(["--help"], under: quiet + ["-e", "trace=getpid"]), probe.status == 0 else { return nil }
        return quiet
    }()

    @Test("an append whose log sync fails, and whose cut of the log then fails too, says its entries may be in the log, and its writer stops", .enabled(if: strace != nil, "needs strace"))
    func cutAfterFailedSyncFails() throws {
        let work = try WorkDirectory()
        let envelope = try prepare(work, size: 100)
        let faults = ["-e", "trace=fdatasync,ftruncate", "-e", "inject=fdatasync:error=EIO:when=1", "-e", "inject=ftruncate:error=EIO:when=1"]
        let failed = try CLI.run(["append", work.path("led"), envelope], under: try #require(Self.strace) + faults)
        #expect(failed.status == 3 && failed.stderr.contains("Entries 2…2 were not acknowledged, but they could not be cut from the log either"), "\(failed)")
        #expect(failed.stderr.contains("`ledger log \(work.path("led")) --from 2` before sending them again"), "\(failed)")
        // And they are there, as it said they may be.
        #expect(try CLI.succeed(["log", work.path("led"), "--from", "2"]).stdout.contains("fact.opened"))
    }

    @Test("repair stops at an index or tree it cannot read, even once: it never overwrites what they record of entries the log lost", .enabled(if: strace != nil, "needs strace"))
    func repairStopsAtUnreadableEvidence() throws {
        let work = try WorkDirectory()
        let envelope = try prepare(work, size: 100)
        try CLI.succeed(["append", work.path("led"), envelope])
        // The acknowledged entry 2 cut from the log: the index and the tree still record it.
        try keepRecords(2, of: work.path("led/log"))
        let before = try snapshot(work)
        let refused = try CLI.run(["repair", work.path("led"), "--rebuild-derived"])
        #expect(refused.status == 1 && refused.stderr.contains("[damaged-log]"), "\(refused)")
        // The opens of the index and of the tree's leaves that tell what they record fail once
        // each (EIO, as a failing disk gives); those before them succeed. The message must name one
        // of them, so that the fault is known to have hit where it is meant to.
        let faults = ["-P", work.path("led/index"), "-P", work.path("led/tree/level-00"), "-e", "trace=openat", "-e", "inject=openat:error=EIO:when=4..5"]
        let repaired = try CLI.run(["repair", work.path("led"), "--rebuild-derived"], under: try #require(Self.strace) + faults)
        #expect(repaired.status == 3, "\(repaired)")
        #expect(["led/index", "led/tree/level-00"].contains { repaired.stderr.contains("Could not open \(work.path($0)): Input/output error") }, "\(repaired)")
        #expect(try snapshot(work) == before)
        let again = try CLI.run(["repair", work.path("led"), "--rebuild-derived"])
        #expect(again.status == 1 && again.stderr.contains("[damaged-log]"), "\(again)")
    }

    @Test("init whose last directory sync fails says the ledger was created, not that nothing was", .enabled(if: strace != nil, "needs strace"))
    func initCreatedButNotSynced() throws {
        let work = try WorkDirectory()
        try CLI.succeed(["key", "generate", "--out", work.path("admin.pem")])
        let faults = ["-e", "trace=fsync", "-e", "inject=fsync:error=EIO:when=5"]
        let made = try CLI.run(["init", work.path("led"), "--origin", "fault.test/ledger", "--admin-key", work.path("admin.pem")], under: try #require(Self.strace) + faults)
        #expect(made.status == 3 && made.stderr.contains("The ledger \(work.path("led")) was created, but may not survive a power loss") && !made.stderr.contains("Nothing was created"), "\(made)")
        #expect(try CLI.succeed(["verify", work.path("led")]).stdout.contains("intact. 1 entries"))
    }

    @Test("a stored checkpoint that cannot be read once is not taken for none: a writer appends nothing over the entries it records", .enabled(if: strace != nil, "needs strace"))
    func unreadableCheckpoint() throws {
        let work = try WorkDirectory()
        let dir = work.path("led")
        try FileManager.default.copyItem(atPath: SampleCaseTests.sample, toPath: dir)
        let note = dir + "/checkpoints/00000000000000000040-48380a48.note"
        // The log cut back to 21 entries, its caches with it: only the checkpoint of 40 records the rest.
        try keepRecords(21, of: dir + "/log")
        try FileManager.default.removeItem(atPath: dir + "/index")
        try FileManager.default.removeItem(atPath: dir + "/tree")
        try work.write("f.json", #"{"type":"fact.opened","id":"f-x","fact":"f-x","proposition":"P"}"#)
        let envelope = try CLI.succeed(["sign", "--key", TransparencyTests.keys + "/DEMO-ONLY-newsroom.pem", "--author", "newsroom", work.path("f.json")]).stdout
        try work.write("f.env", envelope)
        let refused = try CLI.run(["append", dir, work.path("f.env")])
        #expect(refused.status == 1 && refused.stderr.contains("[damaged-log]"), "\(refused)")
        let log = URL(fileURLWithPath: dir + "/log")
        let before = try Data(contentsOf: log)
        let faults = ["-P", note, "-e", "trace=openat", "-e", "inject=openat:error=EIO:when=1"]
        let failed = try CLI.run(["append", dir, work.path("f.env")], under: try #require(Self.strace) + faults)
        #expect(failed.status == 3 && failed.stderr.contains("Could not open \(note)"), "\(failed)")
        #expect(try Data(contentsOf: log) == before)
    }
}
