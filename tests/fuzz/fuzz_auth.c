/* libFuzzer target: auth_check() with every mode on, and auth_parse_networks().
 *
 * Input: one flags byte, then newline-separated fields: the secret header, Authorization,
 * x-signature, x-timestamp, X-Forwarded-For, the peer address, a network list; whatever
 * follows the seventh newline is the body. A field that is not there is an absent header.
 *
 * Flags: bit 0 replaces the signature with the right one for the timestamp and body
 * (bits 1-2 the algorithm, 3-4 the encoding, 5 an "<alg>=" prefix), and then the verdict
 * must be ok or stale: anything else is a bug and aborts. Bit 6 turns on the allow-list
 * and trusted proxies; bit 7 uses the fuzzed network list as the allow-list instead. */
#include "auth.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum { F_SECRET, F_AUTHZ, F_SIG, F_TS, F_XFF, F_PEER, F_NETS, NFIELDS };

#define NOW_MS 1700000000000LL
#define KEY "fuzz-hmac-key"
#define KEY_OLD "fuzz-hmac-key-old"
#define ALLOW "167.150.224.0/23, 2001:db8:100::/40, 127.0.0.0/8, ::1"
#define PROXIES "10.0.0.0/8, fd00::/8"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

/* The fixed allow-list and trusted proxies, parsed once. */
static struct auth_cfg nets;

/* The headers of one input. */
struct req {
	const char *field[NFIELDS];
};

static const char *lookup(void *ctx, const char *name)
{
	static const char *const names[NFIELDS] = {
	    AUTH_DEFAULT_SECRET_HEADER, AUTH_DEFAULT_BEARER_HEADER, AUTH_DEFAULT_SIG_HEADER,
	    AUTH_DEFAULT_TS_HEADER,     AUTH_FORWARDED_HEADER,
	};
	const struct req *r = ctx;

	for (int i = 0; i < NFIELDS; i++)
		if (names[i] != NULL && strcasecmp(names[i], name) == 0)
			return r->field[i];
	return NULL;
}

/* Writes the right signature of "{ts}.{body}" into out, encoded as flags ask. */
static void sign(unsigned flags, enum auth_alg alg, const char *ts, const void *body, size_t len,
                 char *out, size_t size)
{
	const EVP_MD *md = alg == AUTH_ALG_SHA512 ? EVP_sha512()
	                   : alg == AUTH_ALG_SHA1 ? EVP_sha1()
	                                          : EVP_sha256();
	size_t tslen = strlen(ts);
	unsigned char mac[EVP_MAX_MD_SIZE], *buf = malloc(tslen + 1 + len);
	unsigned maclen = 0, enc = flags >> 3 & 3;
	int n = flags & 32 ? snprintf(out, size, "%s=", auth_alg_name(alg)) : 0;

	if (buf == NULL)
		abort();
	memcpy(buf, ts, tslen);
	buf[tslen] = '.';
	memcpy(buf + tslen + 1, body, len);
	if (HMAC(md, KEY, (int)strlen(KEY), buf, tslen + 1 + len, mac, &maclen) == NULL)
		abort();
	free(buf);
	if (enc >= 2) {
		EVP_EncodeBlock((unsigned char *)out + n, mac, (int)maclen);
		if (enc == 3)
			out[n + (int)strcspn(out + n, "=")] = '\0';
		return;
	}
	for (unsigned i = 0; i < maclen; i++)
		n += snprintf(out + n, size - (size_t)n, enc ? "%02X" : "%02x", mac[i]);
}

/* Splits the input into fields in buf (NUL-terminated copies) and returns the body. */
static const char *split(const unsigned char *data, size_t size, char *buf, struct req *r,
                         size_t *body_len)
{
	size_t pos = 0;

	memcpy(buf, data, size);
	buf[size] = '\0';
	for (int i = 0; i < NFIELDS; i++) {
		char *nl = memchr(buf + pos, '\n', size - pos);

		if (nl == NULL) {
			*body_len = 0;
			return buf + size;
		}
		*nl = '\0';
		r->field[i] = buf + pos;
		pos = (size_t)(nl + 1 - buf);
	}
	*body_len = size - pos;
	return buf + pos;
}

static bool ts_is_number(const char *ts)
{
	size_t n = ts ? strlen(ts) : 0;

	return n > 0 && n <= 18 && strspn(ts, "0123456789") == n;
}

static void check(unsigned flags, const struct auth_cfg *a, struct req *r, const char *body,
                  size_t len)
{
	struct auth_request req = {lookup, r, body, len, r->field[F_PEER], NOW_MS};
	struct auth_match match;
	enum auth_reason got = auth_check(a, &req, &match);

	if (strcmp(auth_reason_name(got), "unknown") == 0)
		abort();
	if (got == AUTH_OK && (match.mode == 0 || match.index < 0 || match.index > 1))
		abort();
	/* Signed right with the configured algorithm: only the clock may refuse it. */
	if ((flags & 1) && a->nallow == 0 && ts_is_number(r->field[F_TS]) && got != AUTH_OK &&
	    got != AUTH_STALE) {
		fprintf(stderr, "right signature refused: %s\n", auth_reason_name(got));
		abort();
	}
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static const enum auth_alg alg_of[4] = {AUTH_ALG_SHA256, AUTH_ALG_SHA512, AUTH_ALG_SHA1,
	                                        AUTH_ALG_SHA256};
	struct auth_cfg a = {.secret = {"fuzz-secret", "fuzz-secret-old"},
	                     .bearer = {"fuzz-token", "fuzz-token-old"},
	                     .hmac_secret = {KEY, KEY_OLD}};
	struct req r = {{NULL}};
	char *buf, sig[200], err[160];
	const char *body;
	size_t len;
	unsigned flags;

	if (size == 0)
		return 0;
	flags = data[0];
	buf = malloc(size);
	if (buf == NULL)
		return 0;
	body = split(data + 1, size - 1, buf, &r, &len);
	a.hmac_alg = alg_of[flags >> 1 & 3];
	if ((flags & 1) && r.field[F_TS] != NULL) {
		sign(flags, a.hmac_alg, r.field[F_TS], body, len, sig, sizeof(sig));
		r.field[F_SIG] = sig;
	}
	if ((flags & 128) &&
	    auth_parse_networks(r.field[F_NETS], &a.allow, &a.nallow, err, sizeof(err)) != 0)
		flags &= ~128u;
	if (flags & 64 && !(flags & 128)) {
		a.allow = nets.allow;
		a.nallow = nets.nallow;
	}
	if (flags & (64 | 128)) {
		a.proxies = nets.proxies;
		a.nproxies = nets.nproxies;
	}
	check(flags, &a, &r, body, len);
	if (flags & 128)
		free(a.allow);
	free(buf);
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char err[160];

	(void)argc;
	(void)argv;
	if (auth_parse_networks(ALLOW, &nets.allow, &nets.nallow, err, sizeof(err)) != 0 ||
	    auth_parse_networks(PROXIES, &nets.proxies, &nets.nproxies, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz_auth: %s\n", err);
		abort();
	}
	return 0;
}
