/* auth_check() and its parsers: shared secret, bearer token, HMAC signature, network
 * allow-list with trusted proxies, several modes at once, secret rotation.
 *
 * Expected HMACs are computed here with OpenSSL's one-shot HMAC() (a different path from
 * the module's), which is first checked against the RFC 4231 and RFC 2202 vectors; a few
 * signatures are fixed literals computed outside this code, so that the module is never
 * only compared with itself. Every case of a table runs and every mismatch is printed
 * before the test fails. */
#include "auth.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

#define SECRET "s3cret-from-vapi"
#define SECRET_OLD "s3cret-before-rotation"
#define TOKEN "tok-8f2b1c"
#define TOKEN_OLD "tok-old-77aa"
#define KEY "hmac-key-current"
#define KEY_OLD "hmac-key-previous"
#define THIRD "not-any-of-ours"
#define BODY "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\"}}"
#define BODY_1 "{\"message\":{\"type\":\"status-update\",\"status\":\"endee\"}}"
/* The clock of every case, and the same moment as header text in seconds and ms. */
#define NOW_MS 1700000000000LL
#define TS "1700000000"
#define TS_MS "1700000000000"
#define VAPI_PEER "167.150.224.10"

/* How a computed MAC is written into the signature header. */
enum enc { HEX, HEX_UPPER, B64, B64_NOPAD };

/* A signature to compute for a case: key NULL means none (the case's sig is literal). */
struct signing {
	const char *key;
	enum auth_alg alg;
	enum enc enc;
	const char *prefix; /* written before the MAC */
	const char *ts;     /* timestamp text signed; NULL: the case's ts */
	const char *body;   /* body signed; NULL: the body sent */
	size_t body_len;    /* with body: 0 means strlen */
	int flip;           /* MAC byte to alter, counted from 1; negative from the end */
};

/* One request and the verdict expected. NULL headers are absent. */
struct msg {
	const char *what;
	const char *secret; /* X-Vapi-Secret */
	const char *authz;  /* Authorization */
	const char *ts;     /* x-timestamp */
	const char *sig;    /* x-signature, unless sign.key */
	const char *xff;    /* X-Forwarded-For */
	const char *peer;   /* NULL: VAPI_PEER */
	struct signing sign;
	const char *body; /* NULL: BODY */
	size_t body_len;  /* with body: 0 means strlen */
	int64_t now_ms;   /* 0: NOW_MS */
	enum auth_reason want;
	unsigned mode; /* with AUTH_OK and non-zero: the mode expected to accept */
	int index;     /* with mode: the secret expected to match */
};

/* The headers of one request, as the callback sees them. */
struct headers {
	const char *names[5];
	const char *values[5];
};

static const char *lookup(void *ctx, const char *name)
{
	const struct headers *h = ctx;

	for (size_t i = 0; i < NELEMS(h->names); i++)
		if (h->names[i] != NULL && strcasecmp(h->names[i], name) == 0)
			return h->values[i];
	return NULL;
}

/* The HMAC of data under key by the test's own means. Returns the MAC size. */
static unsigned raw_hmac(enum auth_alg alg, const char *key, const void *data, size_t len,
                         unsigned char *mac)
{
	const EVP_MD *md = alg == AUTH_ALG_SHA512 ? EVP_sha512()
	                   : alg == AUTH_ALG_SHA1 ? EVP_sha1()
	                                          : EVP_sha256();
	unsigned maclen = 0;

	assert_non_null(HMAC(md, key, (int)strlen(key), data, len, mac, &maclen));
	return maclen;
}

/* The HMAC of "{ts}.{body}", as Vapi signs. Returns the MAC size. */
static unsigned test_hmac(enum auth_alg alg, const char *key, const char *ts, const void *body,
                          size_t len, unsigned char *mac)
{
	size_t tslen = strlen(ts);
	unsigned char *buf = malloc(tslen + 1 + len);
	unsigned maclen;

	assert_non_null(buf);
	memcpy(buf, ts, tslen);
	buf[tslen] = '.';
	memcpy(buf + tslen + 1, body, len);
	maclen = raw_hmac(alg, key, buf, tslen + 1 + len, mac);
	free(buf);
	return maclen;
}

static void encode(const unsigned char *mac, unsigned len, enum enc enc, char *out, size_t size)
{
	char *p = out;

	if (enc == B64 || enc == B64_NOPAD) {
		assert_true(size > 4 * ((len + 2) / 3));
		EVP_EncodeBlock((unsigned char *)out, mac, (int)len);
		if (enc == B64_NOPAD)
			out[strcspn(out, "=")] = '\0';
		return;
	}
	assert_true(size > 2 * len);
	for (unsigned i = 0; i < len; i++, p += 2)
		snprintf(p, 3, enc == HEX ? "%02x" : "%02X", mac[i]);
}

/* Writes the signature header the case's signing describes into out. */
static void sign(const struct msg *m, const void *body, size_t len, char *out, size_t size)
{
	const struct signing *s = &m->sign;
	unsigned char mac[EVP_MAX_MD_SIZE];
	size_t plen = s->prefix ? strlen(s->prefix) : 0;
	unsigned maclen;

	if (s->body != NULL) {
		body = s->body;
		len = s->body_len ? s->body_len : strlen(s->body);
	}
	maclen = test_hmac(s->alg, s->key, s->ts ? s->ts : m->ts, body, len, mac);
	if (s->flip != 0)
		mac[s->flip > 0 ? s->flip - 1 : (int)maclen + s->flip] ^= 0x01;
	assert_true(plen < size);
	memcpy(out, s->prefix ? s->prefix : "", plen);
	encode(mac, maclen, s->enc, out + plen, size - plen);
}

/* Runs m under a and returns the verdict, with the match in *match. */
static enum auth_reason run(const struct auth_cfg *a, const struct msg *m, struct auth_match *match)
{
	const char *body = m->body ? m->body : BODY;
	size_t len = m->body && m->body_len ? m->body_len : strlen(body);
	char sig[200];
	struct headers h = {
	    {AUTH_DEFAULT_SECRET_HEADER, AUTH_DEFAULT_BEARER_HEADER, AUTH_DEFAULT_TS_HEADER,
	     AUTH_DEFAULT_SIG_HEADER, AUTH_FORWARDED_HEADER},
	    {m->secret, m->authz, m->ts, m->sig, m->xff},
	};
	struct auth_request r = {
	    lookup, &h, body, len, m->peer ? m->peer : VAPI_PEER, m->now_ms ? m->now_ms : NOW_MS};

	if (m->sign.key != NULL) {
		sign(m, body, len, sig, sizeof(sig));
		h.values[3] = sig;
	}
	return auth_check(a, &r, match);
}

static void check_msgs(const struct auth_cfg *a, const struct msg *msgs, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		const struct msg *m = &msgs[i];
		struct auth_match match;
		enum auth_reason got = run(a, m, &match);

		if (got != m->want) {
			print_error("%s: expected %s, got %s\n", m->what, auth_reason_name(m->want),
			            auth_reason_name(got));
			bad++;
		} else if (got == AUTH_OK && m->mode != 0 &&
		           (match.mode != m->mode || match.index != m->index)) {
			print_error("%s: expected mode %u secret %d, got mode %u secret %d\n",
			            m->what, m->mode, m->index, match.mode, match.index);
			bad++;
		}
	}
	assert_int_equal(bad, 0);
}

/* ---- Names ---- */

/* The names are labels in logs and metrics: changing one breaks dashboards. */
static void test_reason_names(void **state)
{
	(void)state;
	assert_string_equal(auth_reason_name(AUTH_OK), "ok");
	assert_string_equal(auth_reason_name(AUTH_DISABLED), "disabled");
	assert_string_equal(auth_reason_name(AUTH_MISSING), "missing");
	assert_string_equal(auth_reason_name(AUTH_MISMATCH), "mismatch");
	assert_string_equal(auth_reason_name(AUTH_MALFORMED), "malformed");
	assert_string_equal(auth_reason_name(AUTH_STALE), "stale");
	assert_string_equal(auth_reason_name(AUTH_NETWORK), "network");
	assert_string_equal(auth_reason_name((enum auth_reason)99), "unknown");
}

static void test_parse_alg(void **state)
{
	static const struct {
		const char *text;
		int rc;
		enum auth_alg alg;
	} cases[] = {
	    {"sha256", 0, AUTH_ALG_SHA256},
	    {"SHA256", 0, AUTH_ALG_SHA256},
	    {"sha512", 0, AUTH_ALG_SHA512},
	    {"Sha1", 0, AUTH_ALG_SHA1},
	    {"sha-256", -1, 0},
	    {"md5", -1, 0},
	    {"", -1, 0},
	    {"sha2566", -1, 0},
	};
	enum auth_alg alg;

	(void)state;
	for (size_t i = 0; i < NELEMS(cases); i++) {
		alg = (enum auth_alg)42;
		assert_int_equal(auth_parse_alg(cases[i].text, &alg), cases[i].rc);
		if (cases[i].rc == 0)
			assert_int_equal(alg, cases[i].alg);
	}
	assert_int_equal(auth_parse_alg(NULL, &alg), -1);
	assert_string_equal(auth_alg_name(AUTH_ALG_SHA256), "sha256");
	assert_string_equal(auth_alg_name(AUTH_ALG_SHA512), "sha512");
	assert_string_equal(auth_alg_name(AUTH_ALG_SHA1), "sha1");
}

/* ---- Disabled, nothing configured ---- */

/* Turned off, everything passes: no credential, a wrong one, from any network. */
static void test_disabled(void **state)
{
	struct auth_cfg a = {.disabled = true, .secret = {SECRET, NULL}};
	static const struct msg msgs[] = {
	    {.what = "nothing offered", .want = AUTH_DISABLED},
	    {.what = "wrong secret", .secret = "wrong", .want = AUTH_DISABLED},
	    {.what = "right secret", .secret = SECRET, .want = AUTH_DISABLED},
	    {.what = "outside the allow-list", .peer = "203.0.113.9", .want = AUTH_DISABLED},
	};
	char err[128];

	(void)state;
	assert_int_equal(
	    auth_parse_networks("167.150.224.0/23", &a.allow, &a.nallow, err, sizeof(err)), 0);
	check_msgs(&a, msgs, NELEMS(msgs));
	a.secret[0] = NULL;
	check_msgs(&a, msgs, NELEMS(msgs));
	auth_cfg_free_networks(&a);
	assert_null(a.allow);
	assert_int_equal(a.nallow, 0);
	auth_cfg_free_networks(NULL);
}

/* Enabled with no secret at all fails closed, whatever is offered. */
static void test_nothing_configured(void **state)
{
	static const struct auth_cfg a = {.secret = {"", NULL}, .bearer = {NULL, ""}};
	static const struct msg msgs[] = {
	    {.what = "nothing offered", .want = AUTH_MISSING},
	    {.what = "empty secret offered", .secret = "", .want = AUTH_MISSING},
	    {.what = "a secret offered", .secret = SECRET, .want = AUTH_MISSING},
	    {.what = "a bearer offered", .authz = "Bearer ", .want = AUTH_MISSING},
	};

	(void)state;
	assert_int_equal(auth_modes(&a), 0);
	check_msgs(&a, msgs, NELEMS(msgs));
}

/* ---- Shared secret ---- */

static void test_secret(void **state)
{
	static const struct auth_cfg a = {.secret = {SECRET, NULL}};
	static const struct msg msgs[] = {
	    {.what = "right", .secret = SECRET, .want = AUTH_OK, .mode = AUTH_SECRET},
	    {.what = "absent", .want = AUTH_MISSING},
	    {.what = "empty", .secret = "", .want = AUTH_MISSING},
	    {.what = "wrong", .secret = "wrong", .want = AUTH_MISMATCH},
	    {.what = "prefix of it", .secret = "s3cret-from-vap", .want = AUTH_MISMATCH},
	    {.what = "one byte more", .secret = SECRET "!", .want = AUTH_MISMATCH},
	    {.what = "other case", .secret = "S3CRET-FROM-VAPI", .want = AUTH_MISMATCH},
	    {.what = "last byte differs", .secret = "s3cret-from-vapI", .want = AUTH_MISMATCH},
	    {.what = "leading space", .secret = " " SECRET, .want = AUTH_MISMATCH},
	    {.what = "as a bearer token", .authz = "Bearer " SECRET, .want = AUTH_MISSING},
	};

	(void)state;
	assert_int_equal(auth_modes(&a), AUTH_SECRET);
	check_msgs(&a, msgs, NELEMS(msgs));
}

/* During a rotation both secrets pass, and the match says which one did. */
static void test_secret_rotation(void **state)
{
	static const struct auth_cfg both = {.secret = {SECRET, SECRET_OLD}};
	static const struct auth_cfg old_only = {.secret = {NULL, SECRET_OLD}};
	static const struct msg msgs[] = {
	    {.what = "new", .secret = SECRET, .want = AUTH_OK, .mode = AUTH_SECRET, .index = 0},
	    {.what = "old", .secret = SECRET_OLD, .want = AUTH_OK, .mode = AUTH_SECRET, .index = 1},
	    {.what = "third", .secret = THIRD, .want = AUTH_MISMATCH},
	};
	static const struct msg old_msgs[] = {
	    {.what = "old alone",
	     .secret = SECRET_OLD,
	     .want = AUTH_OK,
	     .mode = AUTH_SECRET,
	     .index = 1},
	    {.what = "new unset", .secret = SECRET, .want = AUTH_MISMATCH},
	};

	(void)state;
	check_msgs(&both, msgs, NELEMS(msgs));
	check_msgs(&old_only, old_msgs, NELEMS(old_msgs));
}

/* ---- Bearer token ---- */

static void test_bearer(void **state)
{
	static const struct auth_cfg a = {.bearer = {TOKEN, TOKEN_OLD}};
	static const struct msg msgs[] = {
	    {.what = "right", .authz = "Bearer " TOKEN, .want = AUTH_OK, .mode = AUTH_BEARER},
	    {.what = "scheme lower case", .authz = "bearer " TOKEN, .want = AUTH_OK},
	    {.what = "scheme upper case", .authz = "BEARER " TOKEN, .want = AUTH_OK},
	    {.what = "several spaces", .authz = "Bearer   " TOKEN, .want = AUTH_OK},
	    {.what = "trailing space", .authz = "Bearer " TOKEN " ", .want = AUTH_OK},
	    {.what = "previous token",
	     .authz = "Bearer " TOKEN_OLD,
	     .want = AUTH_OK,
	     .mode = AUTH_BEARER,
	     .index = 1},
	    {.what = "third token", .authz = "Bearer " THIRD, .want = AUTH_MISMATCH},
	    {.what = "token case differs", .authz = "Bearer TOK-8F2B1C", .want = AUTH_MISMATCH},
	    {.what = "token with more", .authz = "Bearer " TOKEN " x", .want = AUTH_MISMATCH},
	    {.what = "absent", .want = AUTH_MISSING},
	    {.what = "empty", .authz = "", .want = AUTH_MISSING},
	    {.what = "Bearer without token", .authz = "Bearer", .want = AUTH_MALFORMED},
	    {.what = "Bearer and spaces", .authz = "Bearer   ", .want = AUTH_MALFORMED},
	    {.what = "no space", .authz = "Bearer" TOKEN, .want = AUTH_MALFORMED},
	    {.what = "other scheme", .authz = "Basic dXNlcjpwYXNz", .want = AUTH_MALFORMED},
	    {.what = "token alone", .authz = TOKEN, .want = AUTH_MALFORMED},
	    {.what = "in the secret header", .secret = TOKEN, .want = AUTH_MISSING},
	};

	(void)state;
	assert_int_equal(auth_modes(&a), AUTH_BEARER);
	check_msgs(&a, msgs, NELEMS(msgs));
}

/* ---- HMAC ---- */

/* The test's own HMAC against published vectors, so that what it expects is right. */
static void test_hmac_reference_vectors(void **state)
{
	static const struct {
		enum auth_alg alg;
		const char *hex;
	} vectors[] = {
	    /* RFC 4231 test case 2 */
	    {AUTH_ALG_SHA256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	    {AUTH_ALG_SHA512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
	                      "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	    /* RFC 2202 test case 2 */
	    {AUTH_ALG_SHA1, "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"},
	};
	unsigned char mac[EVP_MAX_MD_SIZE];
	char hex[2 * EVP_MAX_MD_SIZE + 1];

	(void)state;
	for (size_t i = 0; i < NELEMS(vectors); i++) {
		unsigned n =
		    raw_hmac(vectors[i].alg, "Jefe", "what do ya want for nothing?", 28, mac);

		encode(mac, n, HEX, hex, sizeof(hex));
		assert_string_equal(hex, vectors[i].hex);
	}
}

/* Signatures fixed as literals, computed outside this code over "1700000000." BODY with
 * the key below: the module, not the test, must reproduce them. */
static void test_hmac_known_answers(void **state)
{
	struct auth_cfg a = {.hmac_secret = {"vapi-hmac-known-answer", NULL}};
	static const struct {
		enum auth_alg alg;
		const char *sig;
	} answers[] = {
	    {AUTH_ALG_SHA256, "4c0d6b4eb28cd25d88e1429dc552db57babc7fb92ed67f880fa00986cb51465d"},
	    {AUTH_ALG_SHA256,
	     "sha256=4c0d6b4eb28cd25d88e1429dc552db57babc7fb92ed67f880fa00986cb51465d"},
	    {AUTH_ALG_SHA256, "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n+ID6AJhstRRl0="},
	    {AUTH_ALG_SHA512,
	     "jHY/FWNh8z+DMegLTgAihhPkGl4/vkrDPBWznjbKOWvez1vBv2QRXP/YcSnUgUmR4KGF2v8v"
	     "9SEpDDejnq93pw=="},
	    {AUTH_ALG_SHA512, "8c763f156361f33f8331e80b4e00228613e41a5e3fbe4ac33c15b39e36ca396b"
	                      "decf5bc1bf64115cffd87129d4814991e0a185daff2ff521290c37a39eaf77a7"},
	    {AUTH_ALG_SHA1, "21cf2648580e3adeb435b5611cde5969667d0d66"},
	    {AUTH_ALG_SHA1, "sha1=Ic8mSFgOOt60NbVhHN5ZaWZ9DWY"},
	};

	(void)state;
	for (size_t i = 0; i < NELEMS(answers); i++) {
		struct msg m = {.what = answers[i].sig, .ts = TS, .sig = answers[i].sig};

		a.hmac_alg = answers[i].alg;
		m.want = AUTH_OK;
		check_msgs(&a, &m, 1);
		m.body = BODY_1;
		m.want = AUTH_MISMATCH;
		check_msgs(&a, &m, 1);
	}
}

/* Every algorithm in every encoding, bare and prefixed; and the same with the first or the
 * last bit of the MAC changed, so that the whole MAC is compared. */
static void test_hmac_encodings(void **state)
{
	static const enum auth_alg alg_list[] = {AUTH_ALG_SHA256, AUTH_ALG_SHA512, AUTH_ALG_SHA1};
	static const enum enc encs[] = {HEX, HEX_UPPER, B64, B64_NOPAD};
	static const int flips[] = {0, 1, -1};
	struct auth_cfg a = {.hmac_secret = {KEY, NULL}};
	char prefixes[3][16];
	int bad = 0;

	(void)state;
	for (size_t i = 0; i < NELEMS(alg_list); i++) {
		a.hmac_alg = alg_list[i];
		snprintf(prefixes[0], sizeof(prefixes[0]), "%s", "");
		snprintf(prefixes[1], sizeof(prefixes[1]), "%s=", auth_alg_name(alg_list[i]));
		for (size_t k = 0; k < sizeof(prefixes[2]); k++)
			prefixes[2][k] = (char)toupper((unsigned char)prefixes[1][k]);
		for (size_t n = 0; n < NELEMS(encs) * 3 * NELEMS(flips); n++) {
			size_t e = n % NELEMS(encs), p = n / NELEMS(encs) % 3,
			       f = n / NELEMS(encs) / 3;
			struct msg m = {.ts = TS,
			                .sign = {.key = KEY,
			                         .alg = alg_list[i],
			                         .enc = encs[e],
			                         .prefix = prefixes[p],
			                         .flip = flips[f]}};
			enum auth_reason want = flips[f] == 0 ? AUTH_OK : AUTH_MISMATCH;
			enum auth_reason got = run(&a, &m, NULL);

			if (got != want) {
				print_error(
				    "%s encoding %zu prefix \"%s\" flip %d: expected %s, got %s\n",
				    auth_alg_name(alg_list[i]), e, prefixes[p], flips[f],
				    auth_reason_name(want), auth_reason_name(got));
				bad++;
			}
		}
	}
	assert_int_equal(bad, 0);
}

/* Signed over other bytes than those received: one byte changed, added or dropped, the
 * timestamp's text changed while its value is the same, the signature altered. */
static void test_hmac_tampered(void **state)
{
	static const char bin[] = "{\"a\":\"\0\xff\"}";
	static const struct auth_cfg a = {.hmac_secret = {KEY, NULL}};
	static const struct msg msgs[] = {
	    {.what = "as signed",
	     .ts = TS,
	     .sign = {.key = KEY},
	     .want = AUTH_OK,
	     .mode = AUTH_HMAC},
	    {.what = "ms timestamp", .ts = TS_MS, .sign = {.key = KEY}, .want = AUTH_OK},
	    {.what = "one byte changed",
	     .ts = TS,
	     .sign = {.key = KEY, .body = BODY},
	     .body = BODY_1,
	     .want = AUTH_MISMATCH},
	    {.what = "one byte added",
	     .ts = TS,
	     .sign = {.key = KEY, .body = BODY},
	     .body = BODY " ",
	     .want = AUTH_MISMATCH},
	    {.what = "one byte dropped",
	     .ts = TS,
	     .sign = {.key = KEY, .body = BODY},
	     .body = "{\"message\":{\"type\":\"status-update\",\"status\":\"ended\"}",
	     .want = AUTH_MISMATCH},
	    {.what = "empty body", .ts = TS, .sign = {.key = KEY}, .body = "", .want = AUTH_OK},
	    {.what = "binary body",
	     .ts = TS,
	     .sign = {.key = KEY},
	     .body = bin,
	     .body_len = sizeof(bin) - 1,
	     .want = AUTH_OK},
	    {.what = "binary body signed up to its NUL",
	     .ts = TS,
	     .sign = {.key = KEY, .body = bin},
	     .body = bin,
	     .body_len = sizeof(bin) - 1,
	     .want = AUTH_MISMATCH},
	    {.what = "timestamp with a leading zero",
	     .ts = "0" TS,
	     .sign = {.key = KEY, .ts = TS},
	     .want = AUTH_MISMATCH},
	    {.what = "same moment in ms",
	     .ts = TS_MS,
	     .sign = {.key = KEY, .ts = TS},
	     .want = AUTH_MISMATCH},
	    {.what = "timestamp moved by 1 s",
	     .ts = "1700000001",
	     .sign = {.key = KEY, .ts = TS},
	     .want = AUTH_MISMATCH},
	    {.what = "other key", .ts = TS, .sign = {.key = THIRD}, .want = AUTH_MISMATCH},
	    {.what = "first MAC bit changed",
	     .ts = TS,
	     .sign = {.key = KEY, .flip = 1},
	     .want = AUTH_MISMATCH},
	    {.what = "last MAC bit changed",
	     .ts = TS,
	     .sign = {.key = KEY, .flip = -1},
	     .want = AUTH_MISMATCH},
	    {.what = "last MAC bit changed, base64",
	     .ts = TS,
	     .sign = {.key = KEY, .enc = B64, .flip = -1},
	     .want = AUTH_MISMATCH},

	};

	(void)state;
	check_msgs(&a, msgs, NELEMS(msgs));
}

/* The tolerance holds in both directions, for timestamps in seconds and in milliseconds;
 * staleness is only told for a signature that is right. */
static void test_hmac_stale(void **state)
{
	struct auth_cfg a = {.hmac_secret = {KEY, NULL}};
	static const struct msg msgs[] = {
	    {.what = "s, 300 s old", .ts = "1699999700", .sign = {.key = KEY}, .want = AUTH_OK},
	    {.what = "s, 301 s old", .ts = "1699999699", .sign = {.key = KEY}, .want = AUTH_STALE},
	    {.what = "s, 300 s ahead", .ts = "1700000300", .sign = {.key = KEY}, .want = AUTH_OK},
	    {.what = "s, 301 s ahead",
	     .ts = "1700000301",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "s, a day old", .ts = "1699913600", .sign = {.key = KEY}, .want = AUTH_STALE},
	    {.what = "s, zero", .ts = "0", .sign = {.key = KEY}, .want = AUTH_STALE},
	    {.what = "ms, 300 s old", .ts = "1699999700000", .sign = {.key = KEY}, .want = AUTH_OK},
	    {.what = "ms, 300.001 s old",
	     .ts = "1699999699999",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "ms, 300 s ahead",
	     .ts = "1700000300000",
	     .sign = {.key = KEY},
	     .want = AUTH_OK},
	    {.what = "ms, 300.001 s ahead",
	     .ts = "1700000300001",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "ms, a year ahead",
	     .ts = "1731536000000",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "stale and wrong key",
	     .ts = "1699999000",
	     .sign = {.key = THIRD},
	     .want = AUTH_MISMATCH},
	    {.what = "right, clock broken",
	     .ts = TS,
	     .sign = {.key = KEY},
	     .now_ms = INT64_MIN,
	     .want = AUTH_STALE},
	};
	static const struct msg tight[] = {
	    {.what = "tight, 5 s old", .ts = "1699999995", .sign = {.key = KEY}, .want = AUTH_OK},
	    {.what = "tight, 6 s old",
	     .ts = "1699999994",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "tight, 6 s ahead",
	     .ts = "1700000006000",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	};

	(void)state;
	check_msgs(&a, msgs, NELEMS(msgs));
	a.tolerance_ms = 5000;
	check_msgs(&a, tight, NELEMS(tight));
}

static void test_hmac_malformed(void **state)
{
	static const struct auth_cfg a = {.hmac_secret = {KEY, NULL}};
	static const struct msg msgs[] = {
	    {.what = "bad hex",
	     .ts = TS,
	     .sig = "4c0d6b4eb28cd25d88e1429dc552db57babc7fb92ed67f880fa00986cb51465g",
	     .want = AUTH_MALFORMED},
	    {.what = "hex one byte short",
	     .ts = TS,
	     .sig = "4c0d6b4eb28cd25d88e1429dc552db57babc7fb92ed67f880fa00986cb5146",
	     .want = AUTH_MALFORMED},
	    {.what = "hex one byte long",
	     .ts = TS,
	     .sig = "4c0d6b4eb28cd25d88e1429dc552db57babc7fb92ed67f880fa00986cb51465d00",
	     .want = AUTH_MALFORMED},
	    {.what = "bad base64",
	     .ts = TS,
	     .sig = "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n*ID6AJhstRRl0=",
	     .want = AUTH_MALFORMED},
	    {.what = "base64 url alphabet",
	     .ts = TS,
	     .sig = "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n-ID6AJhstRRl0=",
	     .want = AUTH_MALFORMED},
	    {.what = "base64 one byte short",
	     .ts = TS,
	     .sig = "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n+ID6AJhstRRg==",
	     .want = AUTH_MALFORMED},
	    {.what = "base64 too much padding",
	     .ts = TS,
	     .sig = "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n+ID6AJhstRRl0==",
	     .want = AUTH_MALFORMED},
	    {.what = "base64 stray bits",
	     .ts = TS,
	     .sig = "TA1rTrKM0l2I4UKdxVLbV7q8f7ku1n+ID6AJhstRRl1=",
	     .want = AUTH_MALFORMED},
	    {.what = "empty signature", .ts = TS, .sig = "", .want = AUTH_MALFORMED},
	    {.what = "prefix alone", .ts = TS, .sig = "sha256=", .want = AUTH_MALFORMED},
	    {.what = "v1 prefix",
	     .ts = TS,
	     .sign = {.key = KEY, .prefix = "v1="},
	     .want = AUTH_MALFORMED},
	    {.what = "other algorithm's prefix",
	     .ts = TS,
	     .sign = {.key = KEY, .prefix = "sha512="},
	     .want = AUTH_MALFORMED},
	    {.what = "sha1 MAC where sha256 is set",
	     .ts = TS,
	     .sign = {.key = KEY, .alg = AUTH_ALG_SHA1},
	     .want = AUTH_MALFORMED},
	    {.what = "signature, no timestamp",
	     .sign = {.key = KEY, .ts = TS},
	     .want = AUTH_MALFORMED},
	    {.what = "signature, empty timestamp",
	     .ts = "",
	     .sign = {.key = KEY, .ts = TS},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp, no signature", .ts = TS, .want = AUTH_MALFORMED},
	    {.what = "timestamp not a number",
	     .ts = "abc",
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp ISO-8601",
	     .ts = "2023-11-14T22:13:20Z",
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp with fraction",
	     .ts = TS ".5",
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp negative",
	     .ts = "-" TS,
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp with space",
	     .ts = TS " ",
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "timestamp of 19 digits",
	     .ts = "1700000000000000000",
	     .sign = {.key = KEY},
	     .want = AUTH_MALFORMED},
	    {.what = "both absent", .want = AUTH_MISSING},
	    {.what = "both empty", .ts = "", .sig = "", .want = AUTH_MISSING},
	};

	(void)state;
	check_msgs(&a, msgs, NELEMS(msgs));
}

static void test_hmac_rotation(void **state)
{
	static const struct auth_cfg both = {.hmac_secret = {KEY, KEY_OLD}};
	static const struct auth_cfg old_only = {.hmac_secret = {"", KEY_OLD}};
	static const struct msg msgs[] = {
	    {.what = "new", .ts = TS, .sign = {.key = KEY}, .want = AUTH_OK, .mode = AUTH_HMAC},
	    {.what = "old",
	     .ts = TS,
	     .sign = {.key = KEY_OLD},
	     .want = AUTH_OK,
	     .mode = AUTH_HMAC,
	     .index = 1},
	    {.what = "third", .ts = TS, .sign = {.key = THIRD}, .want = AUTH_MISMATCH},
	    {.what = "old, stale",
	     .ts = "1699990000",
	     .sign = {.key = KEY_OLD},
	     .want = AUTH_STALE},
	};
	static const struct msg old_msgs[] = {
	    {.what = "old alone",
	     .ts = TS,
	     .sign = {.key = KEY_OLD},
	     .want = AUTH_OK,
	     .mode = AUTH_HMAC,
	     .index = 1},
	    {.what = "new unset", .ts = TS, .sign = {.key = KEY}, .want = AUTH_MISMATCH},
	};

	(void)state;
	check_msgs(&both, msgs, NELEMS(msgs));
	check_msgs(&old_only, old_msgs, NELEMS(old_msgs));
}

/* ---- Header names ---- */

static void test_custom_headers(void **state)
{
	static const struct auth_cfg a = {
	    .secret = {SECRET, NULL},
	    .secret_header = "X-Our-Secret",
	    .bearer = {TOKEN, NULL},
	    .bearer_header = "X-Our-Auth",
	    .hmac_secret = {KEY, NULL},
	    .sig_header = "X-Our-Sig",
	    .ts_header = "X-Our-Time",
	};
	unsigned char mac[EVP_MAX_MD_SIZE];
	char sig[80];
	struct headers h = {.names = {"x-our-secret", "x-our-auth", "x-our-sig", "x-our-time"}};
	struct auth_request r = {lookup, &h, BODY, strlen(BODY), VAPI_PEER, NOW_MS};
	struct headers dflt = {{AUTH_DEFAULT_SECRET_HEADER, AUTH_DEFAULT_BEARER_HEADER,
	                        AUTH_DEFAULT_SIG_HEADER, AUTH_DEFAULT_TS_HEADER},
	                       {SECRET, "Bearer " TOKEN, NULL, TS}};

	(void)state;
	encode(mac, test_hmac(AUTH_ALG_SHA256, KEY, TS, BODY, strlen(BODY), mac), HEX, sig,
	       sizeof(sig));
	dflt.values[2] = sig;
	for (int i = 0; i < 3; i++) {
		struct auth_match match;

		memset(h.values, 0, sizeof(h.values));
		h.values[i] = i == 0 ? SECRET : i == 1 ? "Bearer " TOKEN : sig;
		h.values[3] = i == 2 ? TS : NULL;
		assert_int_equal(auth_check(&a, &r, &match), AUTH_OK);
		assert_int_equal(match.mode, 1u << i);
	}
	/* The default names carry nothing once others are set. */
	r.ctx = &dflt;
	assert_int_equal(auth_check(&a, &r, NULL), AUTH_MISSING);
}

/* ---- Networks ---- */

static void test_parse_networks(void **state)
{
	static const struct {
		const char *list;
		size_t n;
		int family0, prefix0; /* of the first entry */
	} good[] = {
	    {"167.150.224.0/23", 1, 4, 23},
	    {" 10.0.0.0/8 , 2001:db8::/32,192.0.2.1", 3, 4, 8},
	    {"2001:db8::1", 1, 6, 128},
	    {"0.0.0.0/0,::/0", 2, 4, 0},
	    {"10.0.0.0/8,", 1, 4, 8},
	    {"", 0, 0, 0},
	    {" , ,", 0, 0, 0},
	};
	static const struct {
		const char *list;
		const char *err; /* a part of the message */
	} bad[] = {
	    {"10.0.0.0/33", "\"10.0.0.0/33\": the prefix length must be 0 to 32"},
	    {"2001:db8::/129", "0 to 128"},
	    {"10.0.0.1/8", "\"10.0.0.1/8\": host bits set (the network is 10.0.0.0/8)"},
	    {"167.150.225.0/23", "the network is 167.150.224.0/23"},
	    {"2001:db8::1/32", "the network is 2001:db8::/32"},
	    {"10.0.0.0/8, banana", "\"banana\": not an IPv4 or IPv6 address"},
	    {"10.0.0.0/", "prefix length"},
	    {"10.0.0.0/-1", "prefix length"},
	    {"10.0.0.0/8x", "prefix length"},
	    {"10.0.0.0/0008", "prefix length"},
	    {"10.0.0.256", "not an IPv4"},
	    {"1.2.3.4:80", "not an IPv4"},
	    {"[2001:db8::]/32", "not an IPv4"},
	    {"::ffff:10.0.0.0/104", "as IPv4"},
	};
	struct auth_net sentinel, *nets, *keep = &sentinel;
	size_t n;
	char err[160];

	(void)state;
	for (size_t i = 0; i < NELEMS(good); i++) {
		assert_int_equal(auth_parse_networks(good[i].list, &nets, &n, err, sizeof(err)), 0);
		assert_int_equal(n, good[i].n);
		if (n > 0) {
			assert_int_equal(nets[0].family, good[i].family0);
			assert_int_equal(nets[0].prefix, good[i].prefix0);
		} else {
			assert_null(nets);
		}
		free(nets);
	}
	assert_int_equal(auth_parse_networks(NULL, &nets, &n, err, sizeof(err)), 0);
	assert_int_equal(n, 0);
	for (size_t i = 0; i < NELEMS(bad); i++) {
		nets = keep;
		err[0] = '\0';
		assert_int_equal(auth_parse_networks(bad[i].list, &nets, &n, err, sizeof(err)), -1);
		assert_ptr_equal(nets, keep);
		if (strstr(err, bad[i].err) == NULL) {
			print_error("%s: error \"%s\" lacks \"%s\"\n", bad[i].list, err,
			            bad[i].err);
			fail();
		}
	}
}

/* Parses both lists into a, which the caller frees with auth_cfg_free_networks(). */
static void set_networks(struct auth_cfg *a, const char *allow, const char *proxies)
{
	char err[160];

	assert_int_equal(auth_parse_networks(allow, &a->allow, &a->nallow, err, sizeof(err)), 0);
	assert_int_equal(auth_parse_networks(proxies, &a->proxies, &a->nproxies, err, sizeof(err)),
	                 0);
}

/* Without trusted proxies the peer is the client, whatever X-Forwarded-For says. */
static void test_allow_list(void **state)
{
	struct auth_cfg a = {.secret = {SECRET, NULL}};
	static const struct msg msgs[] = {
	    {.what = "Vapi, first address",
	     .peer = "167.150.224.0",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "Vapi, last address",
	     .peer = "167.150.225.255",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "just after", .peer = "167.150.226.0", .secret = SECRET, .want = AUTH_NETWORK},
	    {.what = "just before",
	     .peer = "167.150.223.255",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "IPv4-mapped peer",
	     .peer = "::ffff:167.150.224.10",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "IPv6 inside", .peer = "2001:db8:1ff::5", .secret = SECRET, .want = AUTH_OK},
	    {.what = "IPv6 outside",
	     .peer = "2001:db8:200::5",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "IPv6 host", .peer = "2001:db8:ffff::1", .secret = SECRET, .want = AUTH_OK},
	    {.what = "IPv6 next to host",
	     .peer = "2001:db8:ffff::2",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "unreadable peer",
	     .peer = "not-an-ip",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "empty peer", .peer = "", .secret = SECRET, .want = AUTH_NETWORK},
	    {.what = "XFF from an untrusted peer",
	     .peer = "203.0.113.5",
	     .xff = VAPI_PEER,
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "XFF pointing out from an allowed peer",
	     .xff = "203.0.113.5",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "allowed, wrong secret", .secret = "wrong", .want = AUTH_MISMATCH},
	    {.what = "allowed, no secret", .want = AUTH_MISSING},
	    {.what = "outside, no secret", .peer = "203.0.113.5", .want = AUTH_NETWORK},
	};
	struct auth_request r = {lookup, NULL, BODY, strlen(BODY), NULL, NOW_MS};
	struct headers h = {{AUTH_DEFAULT_SECRET_HEADER}, {SECRET}};

	(void)state;
	set_networks(&a, "167.150.224.0/23, 2001:db8:100::/40, 2001:db8:ffff::1", "");
	assert_int_equal(a.nallow, 3);
	check_msgs(&a, msgs, NELEMS(msgs));
	r.ctx = &h;
	assert_int_equal(auth_check(&a, &r, NULL), AUTH_NETWORK); /* no peer at all */
	auth_cfg_free_networks(&a);
}

/* Behind trusted proxies the client is the rightmost X-Forwarded-For entry that is not a
 * trusted proxy: entries to its left are the client's own say. */
static void test_trusted_proxies(void **state)
{
	struct auth_cfg a = {.secret = {SECRET, NULL}};
	static const struct msg msgs[] = {
	    {.what = "one hop",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER,
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "client's own entries to the left",
	     .peer = "10.0.0.1",
	     .xff = "203.0.113.5, 198.51.100.7," VAPI_PEER,
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "spoofed leftmost entry",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER ", 203.0.113.5",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "two proxy hops",
	     .peer = "10.0.0.1",
	     .xff = "203.0.113.5, " VAPI_PEER ", 10.9.8.7",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "only proxies: the leftmost",
	     .peer = "10.0.0.1",
	     .xff = "10.0.0.3, 10.0.0.2",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "no XFF: the proxy itself",
	     .peer = "10.0.0.1",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "empty XFF: the proxy itself",
	     .peer = "10.0.0.1",
	     .xff = "",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "unreadable entry",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER ", unknown",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "empty rightmost entry",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER ",",
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "entry with a port",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER ":5555",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "IPv6 proxy, IPv6 client",
	     .peer = "fd00::1",
	     .xff = "2001:db8:100::7",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "bracketed IPv6 entry with port",
	     .peer = "10.0.0.1",
	     .xff = "[2001:db8:100::7]:443",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "IPv4-mapped proxy",
	     .peer = "::ffff:10.0.0.1",
	     .xff = VAPI_PEER,
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "untrusted peer's XFF ignored",
	     .peer = "192.0.2.1",
	     .xff = VAPI_PEER,
	     .secret = SECRET,
	     .want = AUTH_NETWORK},
	    {.what = "allowed peer needs no proxy",
	     .xff = "203.0.113.5",
	     .secret = SECRET,
	     .want = AUTH_OK},
	    {.what = "through the proxy, wrong secret",
	     .peer = "10.0.0.1",
	     .xff = VAPI_PEER,
	     .secret = "wrong",
	     .want = AUTH_MISMATCH},
	};

	(void)state;
	set_networks(&a, "167.150.224.0/23, 2001:db8:100::/40", "10.0.0.0/8, fd00::/8");
	check_msgs(&a, msgs, NELEMS(msgs));
	auth_cfg_free_networks(&a);
}

/* ---- Several modes ---- */

/* Any mode accepts; when none does, the most telling reason is given. */
static void test_several_modes(void **state)
{
	struct auth_cfg a = {
	    .secret = {SECRET, SECRET_OLD}, .bearer = {TOKEN, NULL}, .hmac_secret = {KEY, KEY_OLD}};
	static const struct msg msgs[] = {
	    {.what = "nothing", .want = AUTH_MISSING},
	    {.what = "secret", .secret = SECRET, .want = AUTH_OK, .mode = AUTH_SECRET},
	    {.what = "bearer", .authz = "Bearer " TOKEN, .want = AUTH_OK, .mode = AUTH_BEARER},
	    {.what = "hmac, old key",
	     .ts = TS,
	     .sign = {.key = KEY_OLD},
	     .want = AUTH_OK,
	     .mode = AUTH_HMAC,
	     .index = 1},
	    {.what = "wrong secret, right bearer",
	     .secret = "wrong",
	     .authz = "Bearer " TOKEN,
	     .want = AUTH_OK,
	     .mode = AUTH_BEARER},
	    {.what = "malformed bearer, right hmac",
	     .authz = "Basic x",
	     .ts = TS,
	     .sign = {.key = KEY},
	     .want = AUTH_OK,
	     .mode = AUTH_HMAC},
	    {.what = "right secret, half an hmac",
	     .secret = SECRET,
	     .ts = TS,
	     .want = AUTH_OK,
	     .mode = AUTH_SECRET},
	    {.what = "wrong secret", .secret = "wrong", .want = AUTH_MISMATCH},
	    {.what = "bearer token as the secret", .secret = TOKEN, .want = AUTH_MISMATCH},
	    {.what = "wrong secret, malformed bearer",
	     .secret = "wrong",
	     .authz = "Basic x",
	     .want = AUTH_MALFORMED},
	    {.what = "malformed hmac alone", .ts = "soon", .sig = "00", .want = AUTH_MALFORMED},
	    {.what = "wrong secret, stale hmac",
	     .secret = "wrong",
	     .ts = "1699990000",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "malformed bearer, stale hmac",
	     .authz = "Bearer",
	     .ts = "1699990000",
	     .sign = {.key = KEY},
	     .want = AUTH_STALE},
	    {.what = "wrong bearer, wrong hmac",
	     .authz = "Bearer " THIRD,
	     .ts = TS,
	     .sign = {.key = THIRD},
	     .want = AUTH_MISMATCH},
	    {.what = "all right, outside",
	     .peer = "203.0.113.5",
	     .secret = SECRET,
	     .authz = "Bearer " TOKEN,
	     .ts = TS,
	     .sign = {.key = KEY},
	     .want = AUTH_NETWORK},
	};

	(void)state;
	assert_int_equal(auth_modes(&a), AUTH_SECRET | AUTH_BEARER | AUTH_HMAC);
	set_networks(&a, "167.150.224.0/23", NULL);
	check_msgs(&a, msgs, NELEMS(msgs));
	auth_cfg_free_networks(&a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_reason_names),
	    cmocka_unit_test(test_parse_alg),
	    cmocka_unit_test(test_disabled),
	    cmocka_unit_test(test_nothing_configured),
	    cmocka_unit_test(test_secret),
	    cmocka_unit_test(test_secret_rotation),
	    cmocka_unit_test(test_bearer),
	    cmocka_unit_test(test_hmac_reference_vectors),
	    cmocka_unit_test(test_hmac_known_answers),
	    cmocka_unit_test(test_hmac_encodings),
	    cmocka_unit_test(test_hmac_tampered),
	    cmocka_unit_test(test_hmac_stale),
	    cmocka_unit_test(test_hmac_malformed),
	    cmocka_unit_test(test_hmac_rotation),
	    cmocka_unit_test(test_custom_headers),
	    cmocka_unit_test(test_parse_networks),
	    cmocka_unit_test(test_allow_list),
	    cmocka_unit_test(test_trusted_proxies),
	    cmocka_unit_test(test_several_modes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
