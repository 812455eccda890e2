/* Authentication of webhook requests: shared secret, bearer token, HMAC signature, and
 * an allow-list of client networks. */
#include "auth.h"

#include "util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Timestamps longer than this cannot be a time (and would overflow). */
#define TS_MAX_DIGITS 18
/* Timestamps with this many digits or more are milliseconds, fewer are seconds. */
#define TS_MS_DIGITS 13
/* A clock this far from the epoch is broken: every signature is then stale. */
#define NOW_MAX_MS 4000000000000000000LL
/* Longest network entry quoted back in an error. */
#define ERR_ENTRY_MAX 64

/* Per algorithm: the name in settings and prefixes, OpenSSL's digest name, the MAC size. */
static const struct {
	const char *name;
	const char *digest;
	size_t size;
} algs[] = {
    [AUTH_ALG_SHA256] = {"sha256", "SHA256", 32},
    [AUTH_ALG_SHA512] = {"sha512", "SHA512", 64},
    [AUTH_ALG_SHA1] = {"sha1", "SHA1", 20},
};

#define NALGS (sizeof(algs) / sizeof(algs[0]))

static bool is_set(const char *s)
{
	return s != NULL && *s != '\0';
}

static bool is_blank(int c)
{
	return c == ' ' || c == '\t';
}

/* Narrows s[0..*len) to drop surrounding spaces and tabs; returns the new start. */
static const char *trim(const char *s, size_t *len)
{
	while (*len > 0 && is_blank(s[0])) {
		s++;
		(*len)--;
	}
	while (*len > 0 && is_blank(s[*len - 1]))
		(*len)--;
	return s;
}

/* The value of header name (def when name is unset), NULL when absent. */
static const char *header(const struct auth_request *r, const char *name, const char *def)
{
	if (r->header == NULL)
		return NULL;
	return r->header(r->ctx, is_set(name) ? name : def);
}

/* ---- Addresses and networks ---- */

/* Reads the address s[0..len) into addr (IPv4 in the first 4 bytes, the rest zero); an
 * IPv4-mapped IPv6 address counts as IPv4. Returns 4, 6, or 0 when it is not one. */
static int parse_addr(const char *s, size_t len, unsigned char addr[16])
{
	static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	char buf[INET6_ADDRSTRLEN + 1];

	memset(addr, 0, 16);
	if (len == 0 || len >= sizeof(buf))
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	if (inet_pton(AF_INET, buf, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, buf, addr) != 1)
		return 0;
	if (memcmp(addr, mapped, sizeof(mapped)) != 0)
		return 6;
	memmove(addr, addr + 12, 4);
	memset(addr + 4, 0, 12);
	return 4;
}

static bool all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)s[i]))
			return false;
	return len > 0;
}

/* Reads an address as a peer or an X-Forwarded-For entry writes it: surrounding blanks,
 * "[v6]", "[v6]:port" and "v4:port" are accepted. Returns the family as parse_addr(). */
static int parse_host(const char *s, size_t len, unsigned char addr[16])
{
	const char *close, *colon = NULL;
	size_t ncolons = 0;

	s = trim(s, &len);
	if (len > 0 && s[0] == '[') {
		close = memchr(s, ']', len);
		if (close == NULL)
			return 0;
		len -= (size_t)(close + 1 - s);
		if (len > 0 && (close[1] != ':' || !all_digits(close + 2, len - 1)))
			return 0;
		return parse_addr(s + 1, (size_t)(close - s - 1), addr);
	}
	for (size_t i = 0; i < len; i++)
		if (s[i] == ':' && ncolons++ == 0)
			colon = s + i;
	if (ncolons != 1)
		return parse_addr(s, len, addr);
	if (!all_digits(colon + 1, len - (size_t)(colon + 1 - s)))
		return 0;
	return parse_addr(s, (size_t)(colon - s), addr);
}

static bool net_contains(const struct auth_net *net, const unsigned char addr[16], int family)
{
	int bits = net->prefix, i = 0;

	if (net->family != family)
		return false;
	for (; bits >= 8; bits -= 8, i++)
		if (addr[i] != net->addr[i])
			return false;
	return bits == 0 || ((addr[i] ^ net->addr[i]) & (0xff00 >> bits) & 0xff) == 0;
}

static bool in_list(const struct auth_net *nets, size_t n, const unsigned char addr[16], int family)
{
	for (size_t i = 0; i < n; i++)
		if (net_contains(&nets[i], addr, family))
			return true;
	return false;
}

/* Zeroes the host bits of addr below prefix. */
static void mask(unsigned char addr[16], int prefix)
{
	for (int i = 0; i < 16; i++, prefix -= 8)
		addr[i] &= prefix >= 8 ? 0xff : prefix <= 0 ? 0 : (unsigned char)(0xff00 >> prefix);
}

/* Reads the prefix after the slash, or the host prefix when there is none. */
static int parse_prefix(const char *slash, size_t len, int max, int *prefix)
{
	int v = 0;

	if (slash == NULL) {
		*prefix = max;
		return 0;
	}
	if (len > 3 || !all_digits(slash, len))
		return -1;
	for (size_t i = 0; i < len; i++)
		v = v * 10 + (slash[i] - '0');
	*prefix = v;
	return v <= max ? 0 : -1;
}

/* Reads one entry "addr[/prefix]". Returns 0, or -1 with why. */
static int parse_net(const char *s, size_t len, struct auth_net *net, char *why, size_t whylen)
{
	const char *slash = memchr(s, '/', len);
	size_t alen = slash ? (size_t)(slash - s) : len;
	unsigned char masked[16];
	char text[INET6_ADDRSTRLEN];

	net->family = parse_addr(s, alen, net->addr);
	if (net->family == 0) {
		snprintf(why, whylen, "not an IPv4 or IPv6 address");
		return -1;
	}
	if (net->family == 4 && memchr(s, ':', alen) != NULL) {
		snprintf(why, whylen, "write IPv4-mapped networks as IPv4");
		return -1;
	}
	if (parse_prefix(slash ? slash + 1 : NULL, len - alen - (slash != NULL),
	                 net->family == 4 ? 32 : 128, &net->prefix) != 0) {
		snprintf(why, whylen, "the prefix length must be 0 to %d",
		         net->family == 4 ? 32 : 128);
		return -1;
	}
	memcpy(masked, net->addr, sizeof(masked));
	mask(masked, net->prefix);
	if (memcmp(masked, net->addr, sizeof(masked)) != 0) {
		inet_ntop(net->family == 4 ? AF_INET : AF_INET6, masked, text, sizeof(text));
		snprintf(why, whylen, "host bits set (the network is %s/%d)", text, net->prefix);
		return -1;
	}
	return 0;
}

int auth_parse_networks(const char *list, struct auth_net **out, size_t *n, char *err,
                        size_t errlen)
{
	struct auth_net *nets;
	size_t count = 0, cap = 1;
	char why[96];

	for (const char *p = list; p != NULL && *p != '\0'; p++)
		cap += *p == ',';
	nets = calloc(cap, sizeof(*nets));
	if (nets == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (const char *p = list; p != NULL && *p != '\0';) {
		size_t len = strcspn(p, ",");
		const char *s = trim(p, &len);

		if (len > 0 && parse_net(s, len, &nets[count++], why, sizeof(why)) != 0) {
			snprintf(err, errlen, "\"%.*s\": %s",
			         (int)(len > ERR_ENTRY_MAX ? ERR_ENTRY_MAX : len), s, why);
			free(nets);
			return -1;
		}
		p += strcspn(p, ",");
		p += *p == ',';
	}
	if (count == 0) {
		free(nets);
		nets = NULL;
	}
	*out = nets;
	*n = count;
	return 0;
}

/* Finds the client's address: the peer, or, when the peer is a trusted proxy, the rightmost
 * X-Forwarded-For entry that is not a trusted proxy itself (the leftmost when all are).
 * Returns its family, 0 when an address on the way cannot be read. */
static int client_addr(const struct auth_cfg *a, const struct auth_request *r,
                       unsigned char addr[16])
{
	int family = r->peer ? parse_host(r->peer, strlen(r->peer), addr) : 0;
	const char *xff, *end;

	if (family == 0 || !in_list(a->proxies, a->nproxies, addr, family))
		return family;
	xff = header(r, AUTH_FORWARDED_HEADER, AUTH_FORWARDED_HEADER);
	if (!is_set(xff))
		return family;
	for (end = xff + strlen(xff); end != NULL;) {
		const char *start = end;

		while (start > xff && start[-1] != ',')
			start--;
		family = parse_host(start, (size_t)(end - start), addr);
		if (family == 0 || !in_list(a->proxies, a->nproxies, addr, family))
			return family;
		end = start > xff ? start - 1 : NULL;
	}
	return family;
}

static bool client_allowed(const struct auth_cfg *a, const struct auth_request *r)
{
	unsigned char addr[16];
	int family = client_addr(a, r, addr);

	return family != 0 && in_list(a->allow, a->nallow, addr, family);
}

/* ---- Credentials ---- */

/* Compares offered[0..len) with each set secret, each in time that depends only on the
 * secret's length. Returns the index of the matching one, or -1. */
static int match_secret(const char *const secret[2], const void *offered, size_t len)
{
	int found = -1;

	for (int i = 1; i >= 0; i--)
		if (is_set(secret[i]) && util_ct_equal(offered, len, secret[i], strlen(secret[i])))
			found = i;
	return found;
}

static enum auth_reason check_secret(const struct auth_cfg *a, const struct auth_request *r,
                                     int *index)
{
	const char *v = header(r, a->secret_header, AUTH_DEFAULT_SECRET_HEADER);

	if (!is_set(v))
		return AUTH_MISSING;
	*index = match_secret(a->secret, v, strlen(v));
	return *index >= 0 ? AUTH_OK : AUTH_MISMATCH;
}

static enum auth_reason check_bearer(const struct auth_cfg *a, const struct auth_request *r,
                                     int *index)
{
	const char *v = header(r, a->bearer_header, AUTH_DEFAULT_BEARER_HEADER);
	size_t len = v ? strlen(v) : 0;

	v = trim(v ? v : "", &len);
	if (len == 0)
		return AUTH_MISSING;
	if (len <= 6 || strncasecmp(v, "Bearer", 6) != 0 || !is_blank(v[6]))
		return AUTH_MALFORMED;
	len -= 6;
	v = trim(v + 6, &len);
	*index = match_secret(a->bearer, v, len);
	return *index >= 0 ? AUTH_OK : AUTH_MISMATCH;
}

/* The timestamp header's text as epoch ms. Returns 0, or -1 unless it is all digits. */
static int parse_ts(const char *s, int64_t *ms)
{
	size_t n = strlen(s);
	int64_t v = 0;

	if (n > TS_MAX_DIGITS || !all_digits(s, n))
		return -1;
	for (size_t i = 0; i < n; i++)
		v = v * 10 + (s[i] - '0');
	*ms = n >= TS_MS_DIGITS ? v : v * 1000;
	return 0;
}

static int hex_decode(const char *s, size_t len, unsigned char *out)
{
	for (size_t i = 0; i < len / 2; i++) {
		int hi = util_hex_value((unsigned char)s[2 * i]),
		    lo = util_hex_value((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -1;
		out[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static int b64_value(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Decodes standard base64, padded or not, that must come to exactly want bytes. The bits
 * left over in the last character must be zero, so each MAC has one text. */
static int base64_decode(const char *s, size_t len, unsigned char *out, size_t want)
{
	size_t pad = 0, n = 0;
	unsigned acc = 0;
	int bits = 0;

	while (pad < 2 && len > 0 && s[len - 1] == '=') {
		len--;
		pad++;
	}
	if ((pad > 0 && (len + pad) % 4 != 0) || len % 4 == 1 || len * 3 / 4 != want)
		return -1;
	for (size_t i = 0; i < len; i++) {
		int v = b64_value((unsigned char)s[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (unsigned char)(acc >> bits);
		}
	}
	return (acc & ((1u << bits) - 1)) == 0 ? 0 : -1;
}

/* Decodes the signature header ("[<alg>=]<hex or base64>") into out, the MAC's size.
 * Returns 0, or -1 when it is not a MAC of that size. */
static int decode_sig(const char *s, enum auth_alg alg, unsigned char *out)
{
	size_t nlen = strlen(algs[alg].name), len, want = algs[alg].size;

	if (strncasecmp(s, algs[alg].name, nlen) == 0 && s[nlen] == '=')
		s += nlen + 1;
	len = strlen(s);
	s = trim(s, &len);
	if (len == 2 * want)
		return hex_decode(s, len, out);
	return base64_decode(s, len, out, want);
}

/* The HMAC of "{ts}.{body}" under key into mac. Returns 0, or -1 when OpenSSL fails. */
static int hmac_payload(enum auth_alg alg, const char *key, const char *ts,
                        const struct auth_request *r, unsigned char *mac)
{
	EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
	EVP_MAC_CTX *ctx = m ? EVP_MAC_CTX_new(m) : NULL;
	OSSL_PARAM params[] = {
	    OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)algs[alg].digest, 0),
	    OSSL_PARAM_construct_end(),
	};
	size_t outlen = 0;
	int rc = -1;

	if (ctx == NULL)
		goto fail;
	if (EVP_MAC_init(ctx, (const unsigned char *)key, strlen(key), params) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)ts, strlen(ts)) != 1 ||
	    EVP_MAC_update(ctx, (const unsigned char *)".", 1) != 1 ||
	    (r->body_len > 0 && EVP_MAC_update(ctx, r->body, r->body_len) != 1) ||
	    EVP_MAC_final(ctx, mac, &outlen, EVP_MAX_MD_SIZE) != 1 || outlen != algs[alg].size)
		goto fail;
	rc = 0;
fail:
	EVP_MAC_CTX_free(ctx);
	EVP_MAC_free(m);
	return rc;
}

static bool is_stale(int64_t ts_ms, int64_t now_ms, long long tolerance_ms)
{
	int64_t diff;

	if (now_ms < 0 || now_ms > NOW_MAX_MS)
		return true;
	diff = now_ms > ts_ms ? now_ms - ts_ms : ts_ms - now_ms;
	return diff > (tolerance_ms > 0 ? tolerance_ms : AUTH_DEFAULT_TOLERANCE_MS);
}

/* A header pair is offered when either is non-empty, and then both must be readable. The
 * signature is verified before the time, so that "stale" always means a genuine sender
 * with a clock (or a replay) problem. An OpenSSL failure rejects as a mismatch. */
static enum auth_reason check_hmac(const struct auth_cfg *a, const struct auth_request *r,
                                   int *index)
{
	const char *sig = header(r, a->sig_header, AUTH_DEFAULT_SIG_HEADER);
	const char *ts = header(r, a->ts_header, AUTH_DEFAULT_TS_HEADER);
	enum auth_alg alg = (size_t)a->hmac_alg < NALGS ? a->hmac_alg : AUTH_ALG_SHA256;
	unsigned char offered[EVP_MAX_MD_SIZE], mac[EVP_MAX_MD_SIZE];
	int64_t ts_ms;

	if (!is_set(sig) && !is_set(ts))
		return AUTH_MISSING;
	if (!is_set(sig) || !is_set(ts) || parse_ts(ts, &ts_ms) != 0 ||
	    decode_sig(sig, alg, offered) != 0)
		return AUTH_MALFORMED;
	/* The previous key costs a second pass over the body only when the current one fails. */
	for (int i = 0; i < 2; i++) {
		if (is_set(a->hmac_secret[i]) &&
		    hmac_payload(alg, a->hmac_secret[i], ts, r, mac) == 0 &&
		    CRYPTO_memcmp(offered, mac, algs[alg].size) == 0) {
			*index = i;
			return is_stale(ts_ms, r->now_ms, a->tolerance_ms) ? AUTH_STALE : AUTH_OK;
		}
	}
	return AUTH_MISMATCH;
}

/* ---- The verdict ---- */

int auth_parse_alg(const char *s, enum auth_alg *alg)
{
	for (size_t i = 0; s != NULL && i < NALGS; i++) {
		if (strcasecmp(s, algs[i].name) == 0) {
			*alg = (enum auth_alg)i;
			return 0;
		}
	}
	return -1;
}

const char *auth_alg_name(enum auth_alg alg)
{
	return (size_t)alg < NALGS ? algs[alg].name : "unknown";
}

unsigned auth_modes(const struct auth_cfg *a)
{
	unsigned m = 0;

	if (is_set(a->secret[0]) || is_set(a->secret[1]))
		m |= AUTH_SECRET;
	if (is_set(a->bearer[0]) || is_set(a->bearer[1]))
		m |= AUTH_BEARER;
	if (is_set(a->hmac_secret[0]) || is_set(a->hmac_secret[1]))
		m |= AUTH_HMAC;
	return m;
}

/* How telling a rejection is: the most telling one across modes is reported. */
static int weight(enum auth_reason r)
{
	switch (r) {
	case AUTH_STALE:
		return 3;
	case AUTH_MALFORMED:
		return 2;
	case AUTH_MISMATCH:
		return 1;
	default:
		return 0;
	}
}

enum auth_reason auth_check(const struct auth_cfg *a, const struct auth_request *r,
                            struct auth_match *match)
{
	static const unsigned order[] = {AUTH_SECRET, AUTH_BEARER, AUTH_HMAC};
	unsigned modes = auth_modes(a);
	enum auth_reason verdict = AUTH_MISSING;

	if (match != NULL)
		*match = (struct auth_match){0, 0};
	if (a->disabled)
		return AUTH_DISABLED;
	if (a->nallow > 0 && !client_allowed(a, r))
		return AUTH_NETWORK;
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int index = -1;
		enum auth_reason got = !(modes & order[i])       ? AUTH_MISSING
		                       : order[i] == AUTH_SECRET ? check_secret(a, r, &index)
		                       : order[i] == AUTH_BEARER ? check_bearer(a, r, &index)
		                                                 : check_hmac(a, r, &index);

		if (got == AUTH_OK) {
			if (match != NULL)
				*match = (struct auth_match){order[i], index};
			return AUTH_OK;
		}
		if (weight(got) > weight(verdict))
			verdict = got;
	}
	return verdict;
}

const char *auth_reason_name(enum auth_reason r)
{
	static const char *const names[] = {
	    [AUTH_OK] = "ok",
	    [AUTH_DISABLED] = "disabled",
	    [AUTH_MISSING] = "missing",
	    [AUTH_MISMATCH] = "mismatch",
	    [AUTH_MALFORMED] = "malformed",
	    [AUTH_STALE] = "stale",
	    [AUTH_NETWORK] = "network",
	};

	return (size_t)r < sizeof(names) / sizeof(names[0]) ? names[r] : "unknown";
}

void auth_cfg_free_networks(struct auth_cfg *a)
{
	if (a == NULL)
		return;
	free(a->allow);
	free(a->proxies);
	a->allow = NULL;
	a->proxies = NULL;
	a->nallow = 0;
	a->nproxies = 0;
}
