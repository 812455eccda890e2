/* Request framing on llhttp: heads, bodies, pipelining, arrival split at every byte,
 * 100-continue, and every class of hostile or ambiguous request that must be refused
 * without a body ever being handed on. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpframe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY 4096

/* A connection's input as the server keeps it: bytes of the current request from its start. */
struct conn_in {
	struct httpframe f;
	char *buf;
	size_t len;
	const char *raw; /* what the client sends */
	size_t rawlen, given;
	int heads; /* HTTPFRAME_HEAD seen for the current request */
};

static void conn_open(struct conn_in *c, const char *raw, size_t rawlen, long long max)
{
	memset(c, 0, sizeof(*c));
	httpframe_init(&c->f, max);
	c->buf = malloc(rawlen + 1);
	assert_non_null(c->buf);
	c->raw = raw;
	c->rawlen = rawlen;
}

/* Delivers up to n more bytes of the client's. */
static void deliver(struct conn_in *c, size_t n)
{
	if (n > c->rawlen - c->given)
		n = c->rawlen - c->given;
	memcpy(c->buf + c->len, c->raw + c->given, n);
	c->len += n;
	c->given += n;
}

/* Feeds what was delivered; returns DONE, ERROR, or MORE once it needs more bytes. */
static int feed_all(struct conn_in *c)
{
	for (;;) {
		int rc = httpframe_feed(&c->f, c->buf, &c->len);

		if (rc == HTTPFRAME_HEAD) {
			c->heads++;
			assert_int_equal(c->heads, 1);
			continue;
		}
		if (rc == HTTPFRAME_DONE) {
			assert_int_equal(c->heads, 1); /* a body never comes without its head */
			assert_true(c->f.end <= c->len);
			assert_true(c->f.head_len + c->f.body_len <= c->f.end);
		}
		return rc;
	}
}

/* Delivers the client's bytes in pieces of step (cuts, when given, first) until the
 * request is complete or refused. */
static int next_request(struct conn_in *c, size_t step)
{
	int rc = feed_all(c);

	while (rc == HTTPFRAME_MORE && c->given < c->rawlen) {
		deliver(c, step);
		rc = feed_all(c);
	}
	return rc;
}

/* Moves the next request to the front, as the server does after answering. */
static void conn_next(struct conn_in *c)
{
	c->len -= c->f.end;
	memmove(c->buf, c->buf + c->f.end, c->len);
	httpframe_next(&c->f);
	c->heads = 0;
}

static void expect_body(struct conn_in *c, const char *body)
{
	assert_int_equal(c->f.body_len, strlen(body));
	assert_memory_equal(c->buf + c->f.head_len, body, strlen(body));
}

/* The whole of raw, in pieces of step; the outcome of the first request. */
static int frame_one(struct conn_in *c, const char *raw, size_t rawlen, size_t step)
{
	conn_open(c, raw, rawlen, MAX_BODY);
	return next_request(c, step);
}

#define S(lit) lit, sizeof(lit) - 1

static void test_head_fields(void **state)
{
	static const char req[] = "POST /api/vapi/webhook?x=1 HTTP/1.1\r\nHost: a\r\n"
	                          "X-Vapi-Secret:  s3cret \r\nContent-Length: 7\r\nX-Empty:\r\n"
	                          "X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\n\r\n"
	                          "{\"m\":1}";
	struct conn_in c;

	(void)state;
	assert_int_equal(frame_one(&c, S(req), sizeof(req)), HTTPFRAME_DONE);
	assert_string_equal(c.f.method, "POST");
	assert_string_equal(c.buf + c.f.path, "/api/vapi/webhook");
	assert_int_equal(c.f.minor, 1);
	assert_int_equal(c.f.content_length, 7);
	assert_false(c.f.chunked);
	assert_true(c.f.keep_alive);
	assert_false(c.f.expect_continue);
	assert_int_equal(c.f.head_len, strstr(req, "{") - req);
	assert_string_equal(httpframe_header(&c.f, c.buf, "x-vapi-secret"), "s3cret");
	assert_string_equal(httpframe_header(&c.f, c.buf, "X-FORWARDED-FOR"), "1.2.3.4");
	assert_string_equal(httpframe_header(&c.f, c.buf, "x-empty"), "");
	assert_string_equal(httpframe_header(&c.f, c.buf, "host"), "a");
	assert_null(httpframe_header(&c.f, c.buf, "Authorization"));
	assert_int_equal(c.f.nh, 6);
	expect_body(&c, "{\"m\":1}");
	assert_int_equal(c.f.end, sizeof(req) - 1);
	free(c.buf);
}

/* Whether the connection may go on after the request, for a head without a body. */
static bool keeps_alive(const char *head)
{
	struct conn_in c;
	bool ka;

	assert_int_equal(frame_one(&c, head, strlen(head), strlen(head)), HTTPFRAME_DONE);
	ka = c.f.keep_alive;
	free(c.buf);
	return ka;
}

static void test_connection_decisions(void **state)
{
	(void)state;
	assert_false(keeps_alive("GET / HTTP/1.0\r\n\r\n"));
	assert_true(keeps_alive("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
	assert_true(keeps_alive("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
	assert_false(keeps_alive("GET / HTTP/1.1\r\nHost: x\r\nConnection: TE, close\r\n\r\n"));
	assert_false(keeps_alive("POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
	                         "Content-Length: 0\r\n\r\n"));
	/* An upgrade is not taken, and no request is read after it. */
	assert_false(keeps_alive("GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
	                         "Upgrade: h2c\r\n\r\n"));
}

static void test_pipelined_requests(void **state)
{
	static const char raw[] =
	    "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
	    "POST /b HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	    "3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n"
	    "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
	struct conn_in c;

	(void)state;
	assert_int_equal(frame_one(&c, S(raw), sizeof(raw)), HTTPFRAME_DONE);
	assert_string_equal(c.buf + c.f.path, "/a");
	expect_body(&c, "hello");
	conn_next(&c);
	assert_int_equal(next_request(&c, sizeof(raw)), HTTPFRAME_DONE);
	assert_string_equal(c.buf + c.f.path, "/b");
	assert_true(c.f.chunked);
	expect_body(&c, "abcde");
	conn_next(&c);
	assert_int_equal(next_request(&c, sizeof(raw)), HTTPFRAME_DONE);
	assert_string_equal(c.f.method, "GET");
	assert_string_equal(c.buf + c.f.path, "/healthz");
	assert_int_equal(c.f.body_len, 0);
	assert_int_equal(c.f.end, c.len); /* nothing after it */
	free(c.buf);
}

/* The request arrives in two pieces cut at every byte, then one byte at a time: the same
 * head, body and end each time. */
static void check_every_split(const char *raw, size_t rawlen, const char *body)
{
	for (size_t cut = 0; cut <= rawlen + 1; cut++) {
		struct conn_in c;
		int rc;

		conn_open(&c, raw, rawlen, MAX_BODY);
		if (cut <= rawlen) {
			deliver(&c, cut);
			rc = next_request(&c, rawlen);
		} else {
			rc = next_request(&c, 1);
		}
		if (rc != HTTPFRAME_DONE)
			fail_msg("cut at %zu: %d (%s)", cut, rc, c.f.why ? c.f.why : "");
		assert_string_equal(httpframe_header(&c.f, c.buf, "X-Vapi-Secret"), "s3cret");
		expect_body(&c, body);
		deliver(&c, rawlen); /* the rest, if the request ended before the cut */
		assert_int_equal(c.len - c.f.end, 5);
		assert_memory_equal(c.buf + c.f.end, "NEXT", 5);
		free(c.buf);
	}
}

static void test_split_at_every_byte(void **state)
{
	/* The buffers hold a terminating NUL after the raw bytes for the comparison above. */
	static const char sized[] = "POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\n"
	                            "X-Vapi-Secret: s3cret\r\nContent-Length: 12\r\n\r\n"
	                            "hello, worldNEXT";
	static const char chunked[] = "POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\n"
	                              "X-Vapi-Secret: s3cret\r\nTransfer-Encoding: chunked\r\n\r\n"
	                              "5\r\nhello\r\n1;ext=\"a b\"\r\n,\r\n6\r\n world\r\n"
	                              "0\r\nX-Trailer: 1\r\n\r\nNEXT";

	(void)state;
	check_every_split(sized, sizeof(sized), "hello, world");
	check_every_split(chunked, sizeof(chunked), "hello, world");
}

static void test_expect_continue(void **state)
{
	static const char raw[] = "POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\n"
	                          "Expect: 100-continue\r\nContent-Length: 3\r\n\r\nabc";
	size_t head = sizeof(raw) - 1 - 3;
	struct conn_in c;

	(void)state;
	conn_open(&c, S(raw), MAX_BODY);
	deliver(&c, head);
	/* The head alone: known before any body byte, so the server can send 100 Continue. */
	assert_int_equal(httpframe_feed(&c.f, c.buf, &c.len), HTTPFRAME_HEAD);
	assert_true(c.f.expect_continue);
	assert_int_equal(c.f.content_length, 3);
	assert_int_equal(httpframe_feed(&c.f, c.buf, &c.len), HTTPFRAME_MORE);
	deliver(&c, 3);
	assert_int_equal(httpframe_feed(&c.f, c.buf, &c.len), HTTPFRAME_DONE);
	expect_body(&c, "abc");
	free(c.buf);
}

/* Refused with status, in one piece and byte by byte, and never a body. */
static void expect_refused(const char *raw, size_t rawlen, int status)
{
	size_t steps[] = {rawlen, 1, 7};

	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct conn_in c;
		int rc = frame_one(&c, raw, rawlen, steps[i]);

		if (rc != HTTPFRAME_ERROR || c.f.status != status)
			fail_msg("%.*s: outcome %d, status %d (%s), want refused with %d",
			         rawlen > 200 ? 200 : (int)rawlen, raw, rc, c.f.status,
			         c.f.why ? c.f.why : "", status);
		assert_non_null(c.f.why);
		/* Refused for good: feeding again gives no body either. */
		assert_int_equal(httpframe_feed(&c.f, c.buf, &c.len), HTTPFRAME_ERROR);
		free(c.buf);
	}
}

#define H "POST /api/vapi/webhook HTTP/1.1\r\nHost: x\r\n"
#define TE "Transfer-Encoding: chunked\r\n\r\n"

static const struct refusal {
	const char *raw;
	size_t len;
	int status;
} refusals[] = {
    /* A NUL in the head. */
    {S(H "Content-Length: 2\0 4\r\n\r\nabcd"), 400},
    {S(H "X-Vapi-Secret: s3cret\0junk\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "Transfer-Encoding: chunked\0, gzip\r\n\r\n2\r\nab\r\n0\r\n\r\n"), 400},
    {S(H "X-\0A: b\r\nContent-Length: 2\r\n\r\nab"), 400},
    /* A bare CR: starting a header line, inside a value, ending a line; a bare LF. */
    {S(H "\rX-A: b\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "X-A: a\rb\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "Content-Length: 2\r\r\n\r\nab"), 400},
    {S("POST /api/vapi/webhook HTTP/1.1\nHost: x\nContent-Length: 2\n\nab"), 400},
    /* Transfer codings other than exactly one chunked. */
    {S(H "Transfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"), 501},
    {S(H "Transfer-Encoding: foo chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"), 501},
    {S(H "Transfer-Encoding: chunked, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"), 501},
    {S(H "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), 501},
    {S(H "Transfer-Encoding: gzip\r\n\r\nab"), 501},
    {S(H "Transfer-Encoding: identity\r\n\r\nab"), 501},
    /* HTTP/1.0 with chunked. */
    {S("POST /api/vapi/webhook HTTP/1.0\r\n" TE "2\r\nab\r\n0\r\n\r\n"), 400},
    /* Both framings, disagreeing lengths, a repeated length. */
    {S(H "Content-Length: 2\r\n" TE "2\r\nab\r\n0\r\n\r\n"), 400},
    {S(H "Content-Length: 2\r\nContent-Length: 4\r\n\r\nabcd"), 400},
    {S(H "Content-Length: 2\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "Content-Length: -2\r\n\r\nab"), 400},
    /* Folded header lines. */
    {S(H "X-A: b\r\n c\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "X-A:\r\n\tc\r\nContent-Length: 2\r\n\r\nab"), 400},
    /* Host missing or repeated. */
    {S("POST /api/vapi/webhook HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"), 400},
    {S(H "Host: y\r\nContent-Length: 2\r\n\r\nab"), 400},
    /* Not HTTP/1.0 or 1.1, or not a request line. */
    {S("POST /api/vapi/webhook HTTP/2.0\r\nHost: x\r\n\r\n"), 400},
    {S("POST /api/vapi/webhook HTTP/1.1 extra\r\nHost: x\r\n\r\n"), 400},
    {S("GARBAGE\r\n\r\n"), 400},
    {S(" POST / HTTP/1.1\r\nHost: x\r\n\r\n"), 400},
    {S("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), 400},
    {S(H "No colon here\r\n\r\n"), 400},
    /* Chunk framing: sizes, extensions with control bytes, data not followed by CRLF. */
    {S(H TE "g\r\nx\r\n0\r\n\r\n"), 400},
    {S(H TE "\r\n0\r\n\r\n"), 400},
    {S(H TE "3\r\nabcX\r\n0\r\n\r\n"), 400},
    {S(H TE "ffffffffffffffffff\r\n"), 400},
    {S(H TE "2;a=\rb\r\nab\r\n0\r\n\r\n"), 400},
    {S(H TE "2;a\0\r\nab\r\n0\r\n\r\n"), 400},
    {S(H TE "2;a=\x01\r\nab\r\n0\r\n\r\n"), 400},
    {S(H TE "2\nab\r\n0\r\n\r\n"), 400},
    /* The last chunk or the trailers ending in a bare LF. */
    {S(H TE "2\r\nab\r\n0\r\n\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nX-T: 1\n\r\n"), 400},
    /* Trailers: framing fields, folding, no colon, NUL, bare CR. */
    {S(H TE "2\r\nab\r\n0\r\nContent-Length: 5\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\ntransfer-encoding: chunked\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nHost: y\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nX-T: a\r\n b\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nno colon\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nX-T: a\0b\r\n\r\n"), 400},
    {S(H TE "2\r\nab\r\n0\r\nX-T: a\rb\r\n\r\n"), 400},
};

static void test_refused_requests(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++)
		expect_refused(refusals[i].raw, refusals[i].len, refusals[i].status);
}

/* text, then fill bytes of pad up to size, then tail. */
static char *build(const char *text, size_t size, const char *pad, const char *tail, size_t *len)
{
	size_t plen = strlen(pad), n = strlen(text);
	char *b = malloc(size + strlen(tail) + plen + 1);

	assert_non_null(b);
	memcpy(b, text, n);
	while (n < size) {
		memcpy(b + n, pad, plen);
		n += plen;
	}
	memcpy(b + n, tail, strlen(tail) + 1);
	*len = n + strlen(tail);
	return b;
}

static void test_limits(void **state)
{
	size_t len;
	char *raw;

	(void)state;
	/* A head over 16 KiB, and more than 64 header lines. */
	raw = build(H, HTTPFRAME_MAX_HEAD + 100, "X-Pad: 0123456789\r\n", "\r\n", &len);
	expect_refused(raw, len, 431);
	free(raw);
	raw = build(H, sizeof(H) + 70 * 6, "A: b\r\n", "\r\n", &len);
	expect_refused(raw, len, 431);
	free(raw);
	/* Chunk extensions, and trailers, over 64 KiB in one request. */
	raw = build(H TE "1;a=", HTTPFRAME_MAX_EXTRA + 100, "b", "\r\nx\r\n0\r\n\r\n", &len);
	expect_refused(raw, len, 431);
	free(raw);
	raw = build(H TE "1\r\nx\r\n0\r\n", 2 * HTTPFRAME_MAX_EXTRA, "X-T: 01234567\r\n", "\r\n",
	            &len);
	expect_refused(raw, len, 431);
	free(raw);
	/* A chunked body over the limit (20 chunks of 256 bytes): refused as its data passes. */
	raw = malloc(20 * 263 + 128);
	assert_non_null(raw);
	len = (size_t)snprintf(raw, 128, "%s", H TE);
	for (int k = 0; k < 20; k++) {
		memcpy(raw + len, "100\r\n", 5);
		memset(raw + len + 5, 'a', 256);
		memcpy(raw + len + 261, "\r\n", 2);
		len += 263;
	}
	memcpy(raw + len, "0\r\n\r\n", 5);
	expect_refused(raw, len + 5, 413);
	free(raw);
}

/* The largest chunk extensions and trailers allowed pass, decoded in place. */
static void test_within_limits(void **state)
{
	size_t len;
	char *raw = build(H TE "2;a=", HTTPFRAME_MAX_EXTRA / 2, "b", "\r\nab\r\n0\r\n\r\n", &len);
	struct conn_in c;

	(void)state;
	assert_int_equal(frame_one(&c, raw, len, 1000), HTTPFRAME_DONE);
	expect_body(&c, "ab");
	/* The framing bytes read were dropped as the body came. */
	assert_true(c.len < 2000);
	free(c.buf);
	free(raw);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_fields),
	    cmocka_unit_test(test_connection_decisions),
	    cmocka_unit_test(test_pipelined_requests),
	    cmocka_unit_test(test_split_at_every_byte),
	    cmocka_unit_test(test_expect_continue),
	    cmocka_unit_test(test_refused_requests),
	    cmocka_unit_test(test_limits),
	    cmocka_unit_test(test_within_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
