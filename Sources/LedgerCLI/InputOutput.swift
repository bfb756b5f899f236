#if canImport(Glibc)
import Glibc
#endif
import LedgerCore
import LedgerCrypto
import LedgerStore

/// Reading and writing the user's files, with errors that name them.
enum Files {
    /// Reads a whole file (or standard input for `-`), up to `limit` bytes.
    static func read(_ path: String, limit: Int = 64 << 20) throws(LedgerError) -> [UInt8] {
        try read(path, limit: limit, missingIsNil: false, statement: false)!
    }

    /// Reads a file of statements (events or envelopes): one larger than `limit` is a statement
    /// refused as too large, as it is when it comes on standard input, not a wrong file named.
    static func readStatements(_ path: String, limit: Int) throws(LedgerError) -> [UInt8] {
        try read(path, limit: limit, missingIsNil: false, statement: true)!
    }

    /// As ``read(_:limit:)``, but `nil` when no file `path` exists: one open, so that a file
    /// there and unreadable is an error, never taken for no file.
    static func readIfPresent(_ path: String, limit: Int = 64 << 20) throws(LedgerError) -> [UInt8]? {
        try read(path, limit: limit, missingIsNil: true, statement: false)
    }

    private static func read(_ path: String, limit: Int, missingIsNil: Bool, statement: Bool) throws(LedgerError) -> [UInt8]? {
        let fd = path == "-" ? dup(0) : open(path, O_RDONLY | O_CLOEXEC)
        // Named as a person would name it in messages.
        let named = path == "-" ? "standard input" : path
        guard fd >= 0 else {
            let code = errno
            // Absent only if nothing is there: a link whose target is missing (a volume not
            // mounted, say) is a file that cannot be read, not one never written.
            var info = stat()
            let present = lstat(path, &info) == 0
            if code == ENOENT, missingIsNil, !present { return nil }
            if code == ENOENT, present {
                throw LedgerError(.io, "Cannot read \(path): it is a symbolic link to a file that is missing. Mount or restore what it points to, or give the file itself.")
            }
            throw LedgerError(
                code == ENOENT ? .usage : .io,
                "Cannot read \(named): \(String(cString: strerror(code))). \(code == ENOENT ? "Check the path." : "Check that you may read it.")")
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFDIR {
            throw LedgerError(.usage, "Cannot read \(named): it is a directory; give a file.")
        }
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw LedgerError(.io, "Cannot read \(named): \(String(cString: strerror(errno))).")
            }
            if n == 0 { break }
            out += buffer[..<n]
            guard out.count <= limit else {
                if statement && path == "-" {
                    throw LedgerError(.tooLarge, "Standard input holds more than \(limit) bytes of statements, more than one append takes. Split the batch.")
                }
                if statement {
                    throw LedgerError(.tooLarge, "\(path) is larger than \(limit) bytes, more than a statement may be. Attach large documents as blobs by hash.")
                }
                // A wrong file named, not a statement refused: a usage mistake.
                throw LedgerError(.usage, "\(path) is larger than \(limit) bytes, the most this command reads from it. Check that it is the file you meant.")
            }
        }
        return out
    }

    static func readText(_ path: String) throws(LedgerError) -> String {
        let bytes = try read(path, limit: 1 << 20)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw LedgerError(.usage, "\(path) is not UTF-8 text.")
        }
        return text
    }

    /// Creates `path` with `mode`, refusing to overwrite anything.
    static func create(_ path: String, contents: [UInt8], mode: mode_t) throws(LedgerError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard fd >= 0 else {
            let code = errno
            if code == EEXIST {
                throw LedgerError(.alreadyExists, "\(path) already exists; it was left untouched. Choose another path, or move the old file away first.")
            }
            // No name at all is an option given wrong; a file that cannot be created is one that
            // cannot be written (3), as for every output file.
            if path.isEmpty { throw LedgerError(.usage, "No file name was given to write to.") }
            let advice = code == ENOENT || code == ENOTDIR ? "Check the path: its directory must exist." : "Check that you may write in \(FileSystem.parent(of: path))."
            throw LedgerError(.io, "Cannot create \(path): \(String(cString: strerror(code))). \(advice)")
        }
        defer { close(fd) }
        // A file that could not be written whole is removed: a partial key must not stay behind
        // (nor stop the next attempt as "already exists").
        func failed(_ what: String, _ code: Int32) -> LedgerError {
            unlink(path)
            let room = code == ENOSPC ? " Free some space, or choose another disk, and try again." : ""
            return LedgerError(.io, "Cannot \(what) \(path): \(String(cString: strerror(code))). Nothing was left there.\(room)")
        }
        // The mode given to open() is reduced by the umask; a private key must be 0600 whatever it is.
        fchmod(fd, mode)
        var written = 0
        while written < contents.count {
            let n = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress.map { $0 + written }, $0.count - written) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw failed("write", n == 0 ? ENOSPC : errno) }
            written += n
        }
        guard fsync(fd) == 0 else { throw failed("sync", errno) }
        // The new name is durable only once its directory is.
        do throws(LedgerError) {
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
        } catch {
            unlink(path)
            throw error
        }
    }

    static func signingKey(_ path: String) throws(LedgerError) -> SigningKey {
        let text = try readText(path)
        do {
            return try SigningKey(pemRepresentation: text)
        } catch {
            let found = if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
                "it holds an encrypted private key, and ledger reads keys only unencrypted (`openssl pkey -in \(path) -out PLAIN.pem` decrypts it)"
            } else if text.contains("-----BEGIN PUBLIC KEY-----") && !text.contains("-----BEGIN PRIVATE KEY-----") {
                "it holds a public key; signing needs the private key"
            } else if !text.contains("-----BEGIN PRIVATE KEY-----") {
                "it holds no PRIVATE KEY block"
            } else {
                "\(error)"
            }
            throw LedgerError(.usage, "\(path) does not hold an unencrypted Ed25519 private key in PEM (PKCS#8): \(found). Make one with `ledger key generate --out FILE`.")
        }
    }

    static func publicKey(_ path: String) throws(LedgerError) -> PublicKey {
        let text = try readText(path)
        do {
            return try PublicKey(pemRepresentation: text)
        } catch where text.contains("-----BEGIN PUBLIC KEY-----") {
            throw LedgerError(.usage, "\(path) does not hold a usable Ed25519 public key: \(error).")
        } catch {}
        if text.contains("-----BEGIN PRIVATE KEY-----") {
            do {
                return try SigningKey(pemRepresentation: text).publicKey
            } catch {
                throw LedgerError(.usage, "\(path) does not hold a usable Ed25519 private key: \(error).")
            }
        }
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            throw LedgerError(.usage, "\(path) holds an encrypted private key; ledger reads keys only unencrypted. Give its public half instead: `openssl pkey -in \(path) -pubout -out public.pem`.")
        }
        throw LedgerError(.usage, "\(path) holds neither an Ed25519 public key (SPKI PEM) nor a private key (PKCS#8 PEM). Give a key file `ledger key generate` wrote, or the public key `ledger key public` printed.")
    }
}

func parseTime(_ text: String?, option: String) throws(LedgerError) -> Timestamp? {
    guard let text else { return nil }
    guard let time = Timestamp(rfc3339: text) else {
        throw LedgerError(.usage, "\(option) \"\(text)\" is not an RFC 3339 UTC time such as 2020-09-21T08:00:00Z.")
    }
    return time
}

/// An acceptance time given for reproducible ledgers: never later than now. Acceptance times
/// never go backwards, so one in the future would become every later entry's, for good; the
/// clock skew allowed to signers is about their clocks, not this one, so it is not added here.
func parseAcceptanceTime(_ text: String?) throws(LedgerError) -> Timestamp? {
    guard let time = try parseTime(text, option: "--accepted-at") else { return nil }
    let now = currentTime()
    guard time <= now else {
        throw LedgerError(.usage, "--accepted-at \(time.rfc3339) is later than now (\(now.rfc3339)): acceptance times never go backwards, so every later entry would be accepted at it too. Give a time that has passed, or none to take the clock's. Nothing was written.")
    }
    return time
}

extension JSONValue {
    /// Indented JSON for people, members sorted.
    func pretty() -> String {
        var out: [UInt8] = []
        appendPretty(to: &out, depth: 0)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends to one buffer: building a string per level copied every value once per
    /// enclosing level, which took minutes on the report of a large ledger.
    fileprivate func appendPretty(to out: inout [UInt8], depth: Int) {
        func newline(_ depth: Int) { Self.appendNewline(to: &out, depth: depth) }
        switch self {
        case let .array(elements) where !elements.isEmpty:
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                element.appendPretty(to: &out, depth: depth + 1)
            }
            newline(depth)
            out.append(UInt8(ascii: "]"))
        case let .object(members) where !members.isEmpty:
            out.append(UInt8(ascii: "{"))
            for (i, key) in members.keys.sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                newline(depth + 1)
                Self.appendName(key, to: &out)
                (members[key] ?? .null).appendPretty(to: &out, depth: depth + 1)
            }
            newline(depth)
            out.append(UInt8(ascii: "}"))
        default:
            var writer = JSONWriter()
            writer.value(self)
            out += Self.escapingInvisible(writer.bytes)
        }
    }

    /// JSON text with the characters JSON may leave raw but a terminal obeys or hides, as `\u`
    /// escapes (``Unicode/Scalar/isHiddenFromReaders``: DEL, the C1 controls, line separators and
    /// the bidirectional formatting characters): the same JSON. They can only be in strings,
    /// where the escapes mean the same characters.
    static func escapingInvisible(_ bytes: [UInt8]) -> [UInt8] {
        // Their UTF-8 begins with one of these bytes; most text has none.
        guard bytes.contains(where: { $0 == 0x7F || $0 == 0xC2 || $0 == 0xD8 || $0 == 0xE2 }) else { return bytes }
        var out = ""
        out.unicodeScalars.reserveCapacity(bytes.count)
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar.isHiddenFromReaders { out += scalar.jsonEscape } else { out.unicodeScalars.append(scalar) }
        }
        return Array(out.utf8)
    }

    /// A newline and the indentation of `depth`.
    fileprivate static func appendNewline(to out: inout [UInt8], depth: Int) {
        out.append(0x0a)
        out.append(contentsOf: repeatElement(0x20, count: 2 * depth))
    }

    /// A member's name, quoted, and `": "`.
    fileprivate static func appendName(_ name: String, to out: inout [UInt8]) {
        var writer = JSONWriter()
        writer.string(name)
        out += escapingInvisible(writer.bytes)
        out.append(contentsOf: [UInt8(ascii: ":"), 0x20])
    }

    /// The indented form of an element of the array that ``printPretty(_:streaming:_:)`` streams
    /// at `path`.
    func prettyElement(streamedAt path: [String]) -> [UInt8] {
        var out: [UInt8] = []
        appendPretty(to: &out, depth: path.count + 1)
        return out
    }

    /// Prints `members` as an object, exactly as ``pretty()`` would, except that the array at
    /// `path` is produced element by element by `elements`, already indented
    /// (``prettyElement(streamedAt:)``), each printed as it comes: a large report is never held
    /// whole. The path's first name is a member beside `members`; each further name is the one
    /// member of the object before it (`["report", "facts"]` prints `"report": {"facts": […]}`).
    ///
    /// If `elements` throws after part of the output was printed, the error says that the
    /// output stops short and after how many elements; before that, nothing is printed.
    /// `output` prints each piece (to standard output unless a test says otherwise).
    static func printPretty(
        _ members: [String: JSONValue], streaming path: [String], output: @escaping (String) -> Void = { print($0, terminator: "") },
        _ elements: (([UInt8]) -> Void) throws(LedgerError) -> Void
    ) throws(LedgerError) {
        precondition(!path.isEmpty && members[path[0]] == nil, "the streamed member must be named, and not also given whole")
        var out: [UInt8] = []
        var printed = false
        var streamed = 0
        func flush(over limit: Int) {
            guard out.count > limit else { return }
            output(String(decoding: out, as: UTF8.self))
            out.removeAll(keepingCapacity: true)
            printed = true
        }
        func object(_ members: [String: JSONValue], path: ArraySlice<String>, depth: Int) throws(LedgerError) {
            out.append(UInt8(ascii: "{"))
            for (i, name) in (Array(members.keys) + [path.first!]).sorted().enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                appendNewline(to: &out, depth: depth + 1)
                appendName(name, to: &out)
                if name != path.first {
                    (members[name] ?? .null).appendPretty(to: &out, depth: depth + 1)
                } else if path.count > 1 {
                    try object([:], path: path.dropFirst(), depth: depth + 1)
                } else {
                    out.append(UInt8(ascii: "["))
                    try elements { element in
                        if streamed > 0 { out.append(UInt8(ascii: ",")) }
                        appendNewline(to: &out, depth: depth + 2)
                        out.append(contentsOf: element)
                        streamed += 1
                        flush(over: 1 << 16)
                    }
                    if streamed > 0 { appendNewline(to: &out, depth: depth + 1) }
                    out.append(UInt8(ascii: "]"))
                }
            }
            appendNewline(to: &out, depth: depth)
            out.append(UInt8(ascii: "}"))
        }
        do throws(LedgerError) {
            try object(members, path: path[...], depth: 0)
        } catch where printed {
            throw LedgerError(error.code, "The output above is incomplete: it stops inside \"\(path.joined(separator: "."))\", after at most \(streamed) elements. \(error.message)", cause: error)
        }
        out.append(0x0a)
        flush(over: 0)
    }

    var compact: String {
        var writer = JSONWriter()
        writer.value(self)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
