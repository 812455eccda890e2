#ifndef SB_AUTH_H
#define SB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Authentication of Vapi server messages, free of any HTTP library: the caller describes
 * the request as plain data (a header lookup, the body, the peer address, the time).
 *
 * Three credential modes, each with a current and a previous secret so that a secret can
 * be rotated without losing a message; a request is accepted when ANY configured mode
 * accepts it. A mode is configured when at least one of its two secrets is non-empty.
 *   secret  the shared secret as the whole value of a header (default X-Vapi-Secret)
 *   bearer  "Bearer <token>" in a header (default Authorization)
 *   hmac    HMAC-SHA256 (or SHA-512, SHA-1) of "{timestamp}.{body}" in x-signature, the
 *           timestamp (epoch seconds, or milliseconds with 13 digits or more) in x-timestamp,
 *           hex or base64, optionally prefixed "<alg>=", within a tolerance of now
 * Before any credential, an optional allow-list of networks is checked against the client
 * address (the peer, or the X-Forwarded-For entry a trusted proxy vouches for). */

#define AUTH_DEFAULT_SECRET_HEADER "X-Vapi-Secret"
#define AUTH_DEFAULT_BEARER_HEADER "Authorization"
#define AUTH_DEFAULT_SIG_HEADER "x-signature"
#define AUTH_DEFAULT_TS_HEADER "x-timestamp"
#define AUTH_DEFAULT_TOLERANCE_MS 300000LL
#define AUTH_FORWARDED_HEADER "X-Forwarded-For"

/* The credential modes, as bits (auth_modes(), struct auth_match). */
enum auth_mode_bits {
	AUTH_SECRET = 1,
	AUTH_BEARER = 2,
	AUTH_HMAC = 4,
};

/* The verdict. AUTH_OK and AUTH_DISABLED accept; the others reject. */
enum auth_reason {
	AUTH_OK,        /* a configured mode accepted the credential */
	AUTH_DISABLED,  /* authentication is turned off: accepted */
	AUTH_MISSING,   /* no configured mode's header was offered */
	AUTH_MISMATCH,  /* a well-formed credential that is not ours */
	AUTH_MALFORMED, /* a credential header we cannot read */
	AUTH_STALE,     /* a correct HMAC signature whose timestamp is outside the tolerance */
	AUTH_NETWORK,   /* the client address is not in the allow-list */
};

/* HMAC digest algorithms. */
enum auth_alg {
	AUTH_ALG_SHA256, /* the default */
	AUTH_ALG_SHA512,
	AUTH_ALG_SHA1,
};

/* One network of an allow-list or a trusted-proxies list. */
struct auth_net {
	unsigned char addr[16]; /* network address, host bits zero; IPv4 in the first 4 bytes */
	int family;             /* 4 or 6 */
	int prefix;             /* 0..32 or 0..128 */
};

/* The settings. Strings are borrowed and must outlive the cfg; NULL header names take the
 * AUTH_DEFAULT_* names. The network arrays are owned: release with
 * auth_cfg_free_networks(). A zeroed cfg with no secret rejects everything. */
struct auth_cfg {
	bool disabled;              /* accept everything, the allow-list too */
	const char *secret[2];      /* shared secret: current, previous; NULL or "" unused */
	const char *secret_header;  /* header carrying the shared secret */
	const char *bearer[2];      /* bearer token: current, previous */
	const char *bearer_header;  /* header carrying "Bearer <token>" */
	const char *hmac_secret[2]; /* HMAC key: current, previous */
	enum auth_alg hmac_alg;     /* digest of the HMAC */
	const char *sig_header;     /* header carrying the signature */
	const char *ts_header;      /* header carrying the timestamp */
	long long tolerance_ms;     /* largest |now - timestamp|; <= 0 takes the default */
	struct auth_net *allow;     /* client networks accepted; none: any client */
	size_t nallow;              /* entries in allow */
	struct auth_net *proxies;   /* peers whose X-Forwarded-For is believed */
	size_t nproxies;            /* entries in proxies */
};

/* One request, as plain data. */
struct auth_request {
	/* The value of header name, NULL when absent; names match in any case. */
	const char *(*header)(void *ctx, const char *name);
	void *ctx;        /* passed to header */
	const void *body; /* the exact bytes received, borrowed */
	size_t body_len;  /* bytes in body */
	const char *peer; /* the TCP peer's address as text ("192.0.2.1", "2001:db8::1") */
	int64_t now_ms;   /* wall-clock time, epoch milliseconds */
};

/* Which credential accepted a request, for logs (to see when a previous secret falls out
 * of use). */
struct auth_match {
	unsigned mode; /* AUTH_SECRET, AUTH_BEARER or AUTH_HMAC; 0 unless AUTH_OK */
	int index;     /* 0: the current secret, 1: the previous one */
};

/* Parses a comma-separated list of networks ("167.150.224.0/23, 2001:db8::/32"; a bare
 * address is a single host) into a new array in *out with *n entries, free with free(); an
 * empty or NULL list gives NULL and 0. Returns 0, or -1 with the offending entry and why in
 * err (and *out untouched). Entries with host bits set are refused as likely typos. */
int auth_parse_networks(const char *list, struct auth_net **out, size_t *n, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Parses "sha256", "sha512" or "sha1" (any case) into *alg. Returns 0, or -1. */
int auth_parse_alg(const char *s, enum auth_alg *alg) __attribute__((warn_unused_result));

/* The name auth_parse_alg() accepts for alg ("sha256", ...). */
const char *auth_alg_name(enum auth_alg alg);

/* The credential modes a configures (AUTH_SECRET | ...); 0 when none, in which case
 * auth_check() rejects every request unless a->disabled. */
unsigned auth_modes(const struct auth_cfg *a);

/* Decides on request r under a. On AUTH_OK fills *match when match is not NULL. When no
 * mode accepts, the reason is, in order: network; stale, malformed or mismatch from a mode
 * whose headers were offered; missing. Secrets are compared in constant time. */
enum auth_reason auth_check(const struct auth_cfg *a, const struct auth_request *r,
                            struct auth_match *match);

/* "ok", "disabled", "missing", "mismatch", "malformed", "stale" or "network": the label for
 * logs and metrics. */
const char *auth_reason_name(enum auth_reason r);

/* Frees a's allow and proxies arrays and zeroes them (NULL-safe). */
void auth_cfg_free_networks(struct auth_cfg *a);

#endif
