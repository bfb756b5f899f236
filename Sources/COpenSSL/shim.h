#ifndef LEDGER_COPENSSL_SHIM_H
#define LEDGER_COPENSSL_SHIM_H

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <openssl/bn.h>

/// Whether the last error OpenSSL queued is BN_mod_sqrt's "not a square" (ERR_GET_LIB and
/// ERR_GET_REASON are macros in some versions): any other failure is no answer about the number.
static inline int ledger_ossl_last_error_is_not_a_square(void) {
    unsigned long e = ERR_peek_last_error();
    return ERR_GET_LIB(e) == ERR_LIB_BN && ERR_GET_REASON(e) == BN_R_NOT_A_SQUARE;
}

/// BIO_get_mem_data is a macro over BIO_ctrl, which Swift cannot import.
static inline long ledger_ossl_bio_mem_data(BIO *bio, char **out) {
    return BIO_get_mem_data(bio, out);
}

/// SHA-256 state held inline by the caller. The EVP digest calls allocate and free a context on
/// every digest, which costs more than hashing a 65-byte Merkle node; the one-block functions do
/// not. They are deprecated in OpenSSL 3 but remain supported through the 3.x series.
typedef SHA256_CTX ledger_ossl_sha256_ctx;

#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wdeprecated-declarations"
static inline void ledger_ossl_sha256_init(ledger_ossl_sha256_ctx *ctx) { SHA256_Init(ctx); }
static inline void ledger_ossl_sha256_update(ledger_ossl_sha256_ctx *ctx, const void *data, size_t len) {
    SHA256_Update(ctx, data, len);
}
static inline void ledger_ossl_sha256_final(ledger_ossl_sha256_ctx *ctx, unsigned char *out) {
    SHA256_Final(out, ctx);
}
#pragma clang diagnostic pop

#endif
