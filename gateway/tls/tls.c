#include "gateway/tls/tls.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "gateway/core/log.h"

/* RFC 9113 §9.2.2: TLS 1.2 for HTTP/2 needs ephemeral key exchange and an
 * AEAD cipher. TLS 1.3 suites are all AEAD and keep OpenSSL's defaults. */
#define DEFAULT_TLS12_CIPHERS                                                                      \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"

/* Generated ticket keys rotate this often; the two before still decrypt, so
 * a ticket stays usable for two to three periods. */
#define TICKET_ROTATE_SECONDS 3600
#define MAX_TICKET_KEYS 8

typedef struct ticket_key {
    uint8_t name[16];
    uint8_t hmac[32];
    uint8_t aes[32];
} ticket_key_t;

typedef struct sni_entry {
    char *name; /* lowercase; "*.example.com" for a wildcard */
    SSL_CTX *ctx;
} sni_entry_t;

struct gw_tls_ctx {
    int refs;
    SSL_CTX **ctxs; /* one per certificate; ctxs[0] is the default */
    char **subjects;
    size_t nctxs;
    sni_entry_t *names;
    size_t nnames;
    ticket_key_t keys[MAX_TICKET_KEYS]; /* keys[0] encrypts, all decrypt */
    size_t nkeys;
    int is_key_file;     /* keys come from tls_ticket_key_file: never rotate */
    uint64_t key_period; /* rotation period of generated keys[0] */
};

static int ctx_ex_index = -1;

static void set_err(char *err, size_t errlen, const char *what, const char *file)
{
    unsigned long e = ERR_peek_last_error();
    char ossl[256] = "";
    if (e != 0)
        ERR_error_string_n(e, ossl, sizeof(ossl));
    snprintf(err, errlen, "%s '%s': %s", what, file, e != 0 ? ossl : strerror(errno));
    ERR_clear_error();
}

/* ---- session tickets ---- */

/* Generated ticket keys are derived from one process-wide secret and the
 * rotation period, so every worker computes the same keys by itself (a
 * client resumes whichever worker its next connection lands on) without
 * sharing anything mutable. */
static uint8_t ticket_secret[32];

int gw_tls_global_init(void)
{
    return RAND_bytes(ticket_secret, sizeof(ticket_secret)) == 1 ? 0 : -1;
}

static int derive_part(uint64_t period, const char *label, uint8_t *out, size_t len)
{
    uint8_t msg[40], mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    int n = snprintf((char *)msg, sizeof(msg), "h2gw %s %llu", label, (unsigned long long)period);
    if (HMAC(EVP_sha256(), ticket_secret, sizeof(ticket_secret), msg, (size_t)n, mac, &mac_len) ==
            NULL ||
        mac_len < len)
        return -1;
    memcpy(out, mac, len);
    return 0;
}

/* Returns 0, or -1 when OpenSSL failed (the key must not be used then). */
static int derive_key(uint64_t period, ticket_key_t *k)
{
    if (derive_part(period, "name", k->name, sizeof(k->name)) != 0 ||
        derive_part(period, "hmac", k->hmac, sizeof(k->hmac)) != 0 ||
        derive_part(period, "aes", k->aes, sizeof(k->aes)) != 0)
        return -1;
    return 0;
}

/* keys[0] is this period's key; the two before it still decrypt. */
static void rotate_keys_if_due(gw_tls_ctx_t *c)
{
    uint64_t period = (uint64_t)time(NULL) / TICKET_ROTATE_SECONDS;
    if (c->is_key_file || (c->nkeys > 0 && period == c->key_period))
        return;
    size_t n = 0;
    for (uint64_t i = 0; i < 3 && i <= period; i++) {
        if (derive_key(period - i, &c->keys[n]) != 0)
            break;
        n++;
    }
    /* A failed derivation leaves no key at all: no tickets are issued
     * rather than tickets under a key of garbage. */
    c->nkeys = n;
    c->key_period = period;
}

/* Key file: one or more 80-byte keys (16 name, 32 HMAC secret, 32 AES-256
 * key), the nginx and nghttpx format; the first key encrypts new tickets. */
static int load_key_file(gw_tls_ctx_t *c, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        set_err(err, errlen, "cannot read ticket key file", path);
        return -1;
    }
    uint8_t buf[MAX_TICKET_KEYS * sizeof(ticket_key_t) + 1];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    if (n == 0 || n % sizeof(ticket_key_t) != 0 || n > MAX_TICKET_KEYS * sizeof(ticket_key_t)) {
        snprintf(err, errlen, "ticket key file '%s': %zu bytes; expected 1 to %d keys of 80 bytes",
                 path, n, MAX_TICKET_KEYS);
        return -1;
    }
    memcpy(c->keys, buf, n);
    c->nkeys = n / sizeof(ticket_key_t);
    c->is_key_file = 1;
    OPENSSL_cleanse(buf, sizeof(buf));
    return 0;
}

static int on_ticket_key(SSL *ssl, unsigned char *name, unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    gw_tls_ctx_t *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_ex_index);
    if (c == NULL || c->nkeys == 0)
        return -1;
    const ticket_key_t *k = NULL;
    int rv = 1;
    rotate_keys_if_due(c);
    if (enc) {
        k = &c->keys[0];
        memcpy(name, k->name, 16);
        if (RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1)
            return -1;
    } else {
        for (size_t i = 0; i < c->nkeys; i++) {
            if (memcmp(name, c->keys[i].name, 16) == 0) {
                k = &c->keys[i];
                rv = i == 0 ? 1 : 2; /* 2: decrypts, but issue a ticket under the new key */
                break;
            }
        }
        if (k == NULL)
            return 0; /* unknown key: full handshake */
    }
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, (void *)k->hmac, sizeof(k->hmac)),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (EVP_MAC_CTX_set_params(hctx, params) != 1)
        return -1;
    int ok = enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv)
                 : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k->aes, iv);
    return ok == 1 ? rv : -1;
}

/* ---- ALPN and SNI ---- */

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    static const char *const preferred[] = {"h2", "http/1.1"};
    for (size_t p = 0; p < 2; p++) {
        size_t plen = strlen(preferred[p]);
        for (unsigned int i = 0; i < inlen; i += 1u + in[i]) {
            if (in[i] == plen && i + 1 + plen <= inlen &&
                memcmp(in + i + 1, preferred[p], plen) == 0) {
                *out = in + i + 1;
                *outlen = (unsigned char)plen;
                return SSL_TLSEXT_ERR_OK;
            }
        }
    }
    /* Nothing we speak: go on without ALPN; the client gets HTTP/1.1. */
    return SSL_TLSEXT_ERR_NOACK;
}

static SSL_CTX *find_ctx_for_name(const gw_tls_ctx_t *c, const char *name)
{
    char lower[256];
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof(lower))
        return NULL;
    for (size_t i = 0; i <= len; i++)
        lower[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    for (size_t i = 0; i < c->nnames; i++) {
        if (strcmp(c->names[i].name, lower) == 0)
            return c->names[i].ctx;
    }
    /* "*.example.com" matches exactly one label before "example.com". */
    const char *dot = strchr(lower, '.');
    if (dot == NULL || dot == lower)
        return NULL;
    for (size_t i = 0; i < c->nnames; i++) {
        const char *n = c->names[i].name;
        if (n[0] == '*' && n[1] == '.' && strcmp(n + 1, dot) == 0)
            return c->names[i].ctx;
    }
    return NULL;
}

static int on_servername(SSL *ssl, int *alert, void *arg)
{
    (void)alert;
    gw_tls_ctx_t *c = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    SSL_CTX *ctx = find_ctx_for_name(c, name);
    if (ctx != NULL && ctx != SSL_get_SSL_CTX(ssl))
        SSL_set_SSL_CTX(ssl, ctx);
    return SSL_TLSEXT_ERR_OK; /* unknown names get the default certificate */
}

static int add_name(gw_tls_ctx_t *c, const char *name, size_t len, SSL_CTX *ctx)
{
    if (len == 0 || len > 253)
        return 0;
    sni_entry_t *p = realloc(c->names, (c->nnames + 1) * sizeof(*p));
    if (p == NULL)
        return -1;
    c->names = p;
    char *copy = malloc(len + 1);
    if (copy == NULL)
        return -1;
    for (size_t i = 0; i < len; i++)
        copy[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] + 32 : name[i]);
    copy[len] = '\0';
    c->names[c->nnames++] = (sni_entry_t){copy, ctx};
    return 0;
}

/* Registers the DNS names of ctx's certificate for SNI: subjectAltName
 * entries, or the common name when there are none (old certificates). */
static int index_names(gw_tls_ctx_t *c, SSL_CTX *ctx)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    int rv = 0, found = 0;
    for (int i = 0; sans != NULL && i < sk_GENERAL_NAME_num(sans) && rv == 0; i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
        if (gn->type != GEN_DNS)
            continue;
        const unsigned char *s = ASN1_STRING_get0_data(gn->d.dNSName);
        rv = add_name(c, (const char *)s, (size_t)ASN1_STRING_length(gn->d.dNSName), ctx);
        found = 1;
    }
    GENERAL_NAMES_free(sans);
    if (!found && rv == 0) {
        char cn[256];
        int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        if (n > 0)
            rv = add_name(c, cn, (size_t)n, ctx);
    }
    return rv;
}

char *gw_tls_subject(X509 *x)
{
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return NULL;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
    char *data;
    long len = BIO_get_mem_data(b, &data);
    char *s = malloc((size_t)len + 1);
    if (s != NULL) {
        memcpy(s, data, (size_t)len);
        s[len] = '\0';
    }
    BIO_free(b);
    return s;
}

/* ---- contexts ---- */

static SSL_CTX *new_ssl_ctx(gw_tls_ctx_t *c, const cfg_listener_t *l, const cfg_cert_t *cert,
                            char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, l->tls_min_version == CFG_TLS_1_3 ? TLS1_3_VERSION
                                                                         : TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    /* Idle connections give their record buffers back (memory per
     * connection is what an edge terminator is judged by). */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    const char *ciphers = l->tls_ciphers != NULL ? l->tls_ciphers : DEFAULT_TLS12_CIPHERS;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
        set_err(err, errlen, "invalid tls_ciphers", ciphers);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->cert_file) != 1) {
        set_err(err, errlen, "cannot load certificate", cert->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cert->key_file, SSL_FILETYPE_PEM) != 1) {
        set_err(err, errlen, "cannot load key", cert->key_file);
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(err, errlen, "key '%s' does not match certificate '%s'", cert->key_file,
                 cert->cert_file);
        ERR_clear_error();
        goto fail;
    }
    if (l->verify_client != CFG_VERIFY_OFF && l->tls_client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(l->tls_client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, l->tls_client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            set_err(err, errlen, "cannot load tls_client_ca", l->tls_client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        int mode = SSL_VERIFY_PEER;
        if (l->verify_client == CFG_VERIFY_REQUIRE)
            mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
        SSL_CTX_set_verify(ctx, mode, NULL);
    }
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, on_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, c);
    SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, on_ticket_key);
    SSL_CTX_set_ex_data(ctx, ctx_ex_index, c);
    /* Resumption is by ticket only: a server-side cache would be per worker
     * and per replica, which tickets with shared keys are not. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /* Required to resume once client certificates are requested; the same
     * everywhere, so a ticket from another replica (shared key file)
     * resumes too. */
    static const unsigned char sid_ctx[] = "h2gw";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof(sid_ctx) - 1);
    SSL_CTX_set_num_tickets(ctx, 1);
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

static void ctx_free(gw_tls_ctx_t *c)
{
    for (size_t i = 0; i < c->nctxs; i++) {
        SSL_CTX_free(c->ctxs[i]);
        free(c->subjects[i]);
    }
    for (size_t i = 0; i < c->nnames; i++)
        free(c->names[i].name);
    free(c->ctxs);
    free(c->subjects);
    free(c->names);
    OPENSSL_cleanse(c->keys, sizeof(c->keys));
    free(c);
}

gw_tls_ctx_t *gw_tls_ctx_new(const cfg_listener_t *l, char *err, size_t errlen)
{
    if (ctx_ex_index < 0)
        ctx_ex_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    gw_tls_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL)
        goto nomem;
    c->refs = 1;
    c->ctxs = calloc(l->ncerts, sizeof(*c->ctxs));
    c->subjects = calloc(l->ncerts, sizeof(*c->subjects));
    if (c->ctxs == NULL || c->subjects == NULL)
        goto nomem;

    if (l->tls_ticket_key_file != NULL) {
        if (load_key_file(c, l->tls_ticket_key_file, err, errlen) != 0)
            goto fail;
    } else {
        rotate_keys_if_due(c);
    }

    for (size_t i = 0; i < l->ncerts; i++) {
        SSL_CTX *ctx = new_ssl_ctx(c, l, &l->certs[i], err, errlen);
        if (ctx == NULL)
            goto fail;
        c->ctxs[c->nctxs++] = ctx;
        c->subjects[i] = gw_tls_subject(SSL_CTX_get0_certificate(ctx));
        if (index_names(c, ctx) != 0)
            goto nomem;
    }
    return c;
nomem:
    snprintf(err, errlen, "out of memory");
fail:
    if (c != NULL)
        ctx_free(c);
    return NULL;
}

gw_tls_ctx_t *gw_tls_client_ctx_new(const cfg_backend_t *b, char *err, size_t errlen)
{
    gw_tls_ctx_t *c = calloc(1, sizeof(*c));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (c == NULL || ctx == NULL || (c->ctxs = calloc(1, sizeof(*c->ctxs))) == NULL ||
        (c->subjects = calloc(1, sizeof(*c->subjects))) == NULL) {
        SSL_CTX_free(ctx);
        if (c != NULL)
            ctx_free(c);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->refs = 1;
    c->ctxs[0] = ctx;
    c->nctxs = 1;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn) - 1);
    if (b->tls_verify) {
        int ok = b->tls_ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, b->tls_ca_file, NULL)
                                        : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            set_err(err, errlen, "cannot load tls_ca_file",
                    b->tls_ca_file != NULL ? b->tls_ca_file : "(system store)");
            ctx_free(c);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return c;
}

void gw_tls_ctx_ref(gw_tls_ctx_t *ctx)
{
    ctx->refs++;
}

void gw_tls_ctx_unref(gw_tls_ctx_t *ctx)
{
    if (ctx != NULL && --ctx->refs == 0)
        ctx_free(ctx);
}

const char *gw_tls_ctx_subject(const gw_tls_ctx_t *ctx, const char *name)
{
    SSL_CTX *s = name != NULL ? find_ctx_for_name(ctx, name) : NULL;
    for (size_t i = 0; i < ctx->nctxs; i++) {
        if (ctx->ctxs[i] == s)
            return ctx->subjects[i];
    }
    return ctx->subjects[0];
}

int gw_tls_ctx_cert(const gw_tls_ctx_t *ctx, size_t i, const char **subject, int64_t *not_after)
{
    if (i >= ctx->nctxs)
        return -1;
    X509 *x = SSL_CTX_get0_certificate(ctx->ctxs[i]);
    struct tm tm;
    *subject = ctx->subjects[i] != NULL ? ctx->subjects[i] : "";
    *not_after = 0;
    if (x != NULL && ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
        *not_after = (int64_t)timegm(&tm);
    return 0;
}

SSL_CTX *gw_tls_ctx_default(const gw_tls_ctx_t *ctx)
{
    return ctx->ctxs[0];
}
