internal import COpenSSL

/// Owns one `EVP_PKEY` and frees it. Parsed once per key and reused: building the key object is
/// a large share of a verify's cost in OpenSSL 3. An `EVP_PKEY` is safe to share between threads
/// once built, because signing and verifying never modify it.
final class PKeyBox: @unchecked Sendable {
    let pointer: OpaquePointer

    init(takingOwnershipOf pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(pointer)
    }
}

/// Drains OpenSSL's thread-local error queue into one line, so no stale error is left behind.
func drainOpenSSLErrors() -> String {
    var parts: [String] = []
    while true {
        let code = ERR_get_error()
        if code == 0 { break }
        var buffer = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(code, &buffer, buffer.count)
        parts.append(String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }
    return parts.joined(separator: "; ")
}

extension CryptoError {
    /// An ``openSSL(function:queue:)`` error carrying the current error queue.
    static func failed(_ function: String) -> CryptoError {
        .openSSL(function: function, queue: drainOpenSSLErrors())
    }
}

/// Reads PEM text through a memory BIO with `read`.
func withMemoryBIO<T>(_ text: String, _ read: (OpaquePointer) -> T?) throws(CryptoError) -> T? {
    var bytes = Array(text.utf8)
    guard bytes.count < Int32.max else { throw .invalidPEM("PEM text is too large") }
    let bio = bytes.withUnsafeMutableBytes { BIO_new_mem_buf($0.baseAddress, Int32($0.count)) }
    guard let bio else { throw .failed("BIO_new_mem_buf") }
    defer { BIO_free(bio) }
    return read(bio)
}

/// Writes PEM through a memory BIO with `write` and returns the text.
func pemText(_ write: (OpaquePointer) -> Int32) throws(CryptoError) -> String {
    guard let bio = BIO_new(BIO_s_mem()) else { throw .failed("BIO_new") }
    defer { BIO_free(bio) }
    guard write(bio) == 1 else { throw .failed("PEM_write_bio") }
    var base: UnsafeMutablePointer<CChar>?
    let length = ledger_ossl_bio_mem_data(bio, &base)
    guard let base, length > 0 else { throw .failed("BIO_get_mem_data") }
    return String(decoding: UnsafeRawBufferPointer(start: base, count: length), as: UTF8.self)
}
