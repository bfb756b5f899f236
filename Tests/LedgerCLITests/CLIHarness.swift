import Foundation
import LedgerCore
import LedgerCrypto
import Testing

/// Runs the built `ledger` binary and captures what it prints.
struct CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The `ledger` executable built beside the test bundle (or `$LEDGER_BINARY`).
    static let binary: String = {
        if let path = ProcessInfo.processInfo.environment["LEDGER_BINARY"] { return path }
        return URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("ledger").path
    }()

    /// The repository root, found from this source file's path.
    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @discardableResult
    /// Runs `ledger` with `arguments`; its standard output goes to `output` if given (and then
    /// the result's `stdout` is empty), else it is captured. Under `wrapper` (a command and its
    /// arguments, found on the PATH), that command runs `ledger`.
    static func run(
        _ arguments: [String], stdin: String? = nil, in directory: URL? = nil, output: FileHandle? = nil, environment: [String: String] = [:],
        under wrapper: [String] = []
    ) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: wrapper.isEmpty ? binary : "/usr/bin/env")
        process.arguments = wrapper.isEmpty ? arguments : wrapper + [binary] + arguments
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        if let directory { process.currentDirectoryURL = directory }
        let out = Pipe(), err = Pipe(), input = Pipe()
        process.standardOutput = output ?? out
        if output != nil { try out.fileHandleForWriting.close() }
        process.standardError = err
        process.standardInput = stdin == nil ? FileHandle.nullDevice : input
        try process.run()
        if let stdin {
            input.fileHandleForWriting.write(Data(stdin.utf8))
            try input.fileHandleForWriting.close()
        }
        // Read both pipes before waiting, so a large output cannot fill a pipe and block.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self))
    }

    /// Runs `ledger` as ``run(_:stdin:in:output:environment:)`` does and expects status 0,
    /// saying what it printed if not.
    @discardableResult
    static func succeed(
        _ arguments: [String], stdin: String? = nil, environment: [String: String] = [:], sourceLocation: SourceLocation = #_sourceLocation
    ) throws -> Result {
        let result = try run(arguments, stdin: stdin, environment: environment)
        #expect(result.status == 0, "ledger \(arguments.joined(separator: " ")): \(result)", sourceLocation: sourceLocation)
        return result
    }
}

/// A temporary working directory, removed on release.
final class WorkDirectory: Sendable {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("ledger-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
    func write(_ name: String, _ text: String) throws { try text.write(toFile: path(name), atomically: true, encoding: .utf8) }
    func read(_ name: String) throws -> String { try String(contentsOfFile: path(name), encoding: .utf8) }
}
