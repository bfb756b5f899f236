import ArgumentParser
import LedgerCore
import LedgerCrypto

struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key",
        abstract: "Make Ed25519 keys and show their public halves.",
        subcommands: [Generate.self, Public.self]
    )

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate an Ed25519 private key (PKCS#8 PEM, file mode 0600).",
            discussion: "The key is interchangeable with `openssl genpkey -algorithm ed25519`. An existing file is never overwritten. Prints the key id."
        )

        @Option(name: .long, help: ArgumentHelp("Where to write the private key.", valueName: "file"))
        var out: String

        @OptionGroup var common: VerboseOption

        func run() throws {
            let key = try SigningKey.generate()
            let pem: String
            do {
                pem = try key.pemRepresentation()
            } catch {
                throw LedgerError(.crypto, "Could not encode the new key: \(error).")
            }
            try Files.create(out, contents: Array(pem.utf8), mode: 0o600)
            Terminal.done = "the key was written to \(out) (its key id: `ledger key public \(out)`)"
            print("wrote \(out) (keyid \(key.publicKey.keyID.hexString))")
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a key's public half: SPKI PEM, raw base64 (for party.registered and key.added) and key id.",
            discussion: "FILE may hold a private key (PKCS#8 PEM) or a public key (SPKI PEM)."
        )

        @Argument(help: ArgumentHelp("A PEM key file.", valueName: "file"))
        var file: String

        @OptionGroup var common: VerboseOption

        func run() throws {
            let key = try Files.publicKey(file)
            print(key.pemRepresentation, terminator: "")
            print("raw (base64): \(Base64.encode(key.rawRepresentation))")
            print("keyid: \(key.keyID.hexString)")
        }
    }
}
