/// An error from the crypto layer: a closed set of causes, each with what went wrong.
///
/// OpenSSL failures carry the function that failed and the drained OpenSSL error queue, so nothing
/// stale is left for the next call. Secret bytes never appear in an error.
public enum CryptoError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A raw key, seed or signature had the wrong number of bytes.
    case wrongLength(what: String, got: Int, want: Int)
    /// PEM text could not be read as the expected kind of key.
    case invalidPEM(String)
    /// The key is not an Ed25519 key.
    case notEd25519(String)
    /// 32 bytes that are no Ed25519 public key anyone may use: why (see ``PublicKey``).
    case unusableKey(String)
    /// An OpenSSL call failed.
    case openSSL(function: String, queue: String)

    /// Whether it says something of the key or bytes given (their length, or that they are no
    /// usable key), rather than that OpenSSL failed: only then is it a verdict on them.
    public var isAboutTheInput: Bool {
        switch self {
        case .wrongLength, .unusableKey, .invalidPEM, .notEd25519: true
        case .openSSL: false
        }
    }

    public var description: String {
        switch self {
        case let .wrongLength(what, got, want):
            return "\(what) has \(got) bytes; it must have exactly \(want)."
        case let .invalidPEM(detail):
            return "not a readable PEM key: \(detail)"
        case let .notEd25519(detail):
            return "not an Ed25519 key: \(detail)"
        case let .unusableKey(why):
            return why
        case let .openSSL(function, queue):
            return queue.isEmpty ? "OpenSSL \(function) failed" : "OpenSSL \(function) failed: \(queue)"
        }
    }
}
