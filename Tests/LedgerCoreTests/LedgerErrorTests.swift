import LedgerCore
import Testing

@Suite("Error messages")
struct LedgerErrorTests {
    @Test("a full stop doubled by an interpolated error is made single; paths and ellipses are left alone")
    func singleFullStops() {
        let cases: [(String, String)] = [
            ("Refused: treat the log as tampered with..", "Refused: treat the log as tampered with."),
            ("INVALID: the path does not lead to the root.. It shows nothing.", "INVALID: the path does not lead to the root. It shows nothing."),
            ("must be an Ed25519 note key (type 0x01)..", "must be an Ed25519 note key (type 0x01)."),
            ("Cannot read ../ledger/log: no such file.", "Cannot read ../ledger/log: no such file."),
            ("ledger verify .. found nothing", "ledger verify .. found nothing"),
            ("wait... then go", "wait... then go"),
            ("one.two..three", "one.two..three"),
            ("There is no file /tmp/notes.. to store.", "There is no file /tmp/notes.. to store."),
            ("no dots here", "no dots here"),
        ]
        for (text, expected) in cases {
            #expect(text.singleFullStops == expected, "\(text)")
        }
        #expect(LedgerError(.usage, "fetch the checkpoint again..").message == "fetch the checkpoint again.")
    }
}
