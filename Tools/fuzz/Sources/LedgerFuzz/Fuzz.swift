import LedgerFuzzing

/// libFuzzer's entry point: every input goes through the decoders and the append checks.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    FuzzHarness.shared.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}

// SwiftPM gives every executable its own `main`, so libFuzzer's is not linked in; start the
// fuzzer through its driver instead.
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(
    _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
    _ callback: @convention(c) (UnsafeRawPointer, Int) -> CInt
) -> CInt

@main
struct Fuzzer {
    static func main() {
        var argc = CommandLine.argc
        var argv = CommandLine.unsafeArgv
        _ = runDriver(&argc, &argv) { start, count in fuzz(start, count) }
    }
}
