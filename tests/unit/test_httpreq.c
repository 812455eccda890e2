/* HTTP/1.x request heads and chunked bodies: framing, byte-by-byte arrival, limits, and the
 * malformed and ambiguous requests that must be refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "httpreq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parses text as one whole head; returns the status. */
static int parse(const char *text, char *buf, size_t cap, struct httpreq *r)
{
	size_t scan = 0, len = strlen(text);

	assert_true(len < cap);
	memcpy(buf, text, len + 1);
	return httpreq_parse(buf, len, &scan, r);
}

static void test_head_fields(void **state)
{
	char buf[1024];
	struct httpreq r;
	const char *req = "POST /api/vapi/webhook?x=1 HTTP/1.1\r\nHost: a\r\n"
	                  "X-Vapi-Secret:  s3cret \r\nContent-Length: 12\r\n"
	                  "X-Forwarded-For: 1.2.3.4\r\nx-forwarded-for: 5.6.7.8\r\n\r\n{\"m\":1}";

	(void)state;
	assert_int_equal(parse(req, buf, sizeof(buf), &r), HTTPREQ_OK);
	assert_string_equal(buf + r.method, "POST");
	assert_string_equal(buf + r.path, "/api/vapi/webhook");
	assert_int_equal(r.minor, 1);
	assert_int_equal(r.content_length, 12);
	assert_false(r.chunked);
	assert_true(r.keep_alive);
	assert_false(r.expect_continue);
	assert_int_equal(r.head_len, strstr(req, "{") - req);
	assert_string_equal(httpreq_header(buf, &r, "x-vapi-secret"), "s3cret");
	assert_string_equal(httpreq_header(buf, &r, "X-FORWARDED-FOR"), "1.2.3.4");
	assert_null(httpreq_header(buf, &r, "Authorization"));
	assert_int_equal(r.nh, 5);
}

static void test_connection_and_expect(void **state)
{
	char buf[512];
	struct httpreq r;

	(void)state;
	assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", buf, sizeof(buf), &r), HTTPREQ_OK);
	assert_false(r.keep_alive);
	assert_int_equal(r.content_length, -1);
	assert_int_equal(
	    parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", buf, sizeof(buf), &r),
	    HTTPREQ_OK);
	assert_true(r.keep_alive);
	assert_int_equal(
	    parse("GET / HTTP/1.1\r\nConnection: TE, close\r\n\r\n", buf, sizeof(buf), &r),
	    HTTPREQ_OK);
	assert_false(r.keep_alive);
	assert_int_equal(parse("POST / HTTP/1.1\r\nExpect: 100-continue\r\n"
	                       "Transfer-Encoding: gzip, chunked\r\n\r\n",
	                       buf, sizeof(buf), &r),
	                 HTTPREQ_OK);
	assert_true(r.expect_continue);
	assert_true(r.chunked);
	/* Bare LF line ends are read too. */
	assert_int_equal(parse("GET /healthz HTTP/1.1\nHost: x\n\n", buf, sizeof(buf), &r),
	                 HTTPREQ_OK);
	assert_string_equal(buf + r.path, "/healthz");
	assert_string_equal(httpreq_header(buf, &r, "host"), "x");
}

static void test_byte_by_byte_arrival(void **state)
{
	const char *req = "POST /api/vapi/webhook HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
	size_t total = strlen(req), scan = 0, n;
	char buf[256];
	struct httpreq r;

	(void)state;
	for (n = 1; n < total; n++) {
		memcpy(buf, req, n);
		if (httpreq_parse(buf, n, &scan, &r) == HTTPREQ_OK)
			break;
	}
	assert_int_equal(n, strstr(req, "abc") - req); /* complete exactly at the blank line */
	assert_int_equal(r.content_length, 3);
	assert_true(scan <= n);
}

static void test_refused_heads(void **state)
{
	static const char *bad[] = {
	    "POST\r\n\r\n",
	    "POST /x HTTP/2.0\r\n\r\n",
	    "POST /x HTTP/1.1 extra\r\n\r\n",
	    " POST /x HTTP/1.1\r\n\r\n",
	    "POST /x HTTP/1.1\r\nNo colon here\r\n\r\n",
	    "POST /x HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
	    "POST /x HTTP/1.1\r\nContent-Length: 12a\r\n\r\n",
	    "POST /x HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
	    "POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	    "POST /x HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	    "POST /x HTTP/1.1\r\nTransfer-Encoding: notchunked\r\n\r\n",
	};
	char buf[512];
	struct httpreq r;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(bad[i], buf, sizeof(buf), &r);

		if (rc != HTTPREQ_BAD)
			fail_msg("accepted (%d): %s", rc, bad[i]);
	}
	/* Repeating the same length is allowed. */
	assert_int_equal(parse("POST /x HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
	                       buf, sizeof(buf), &r),
	                 HTTPREQ_OK);
}

static void test_head_limits(void **state)
{
	size_t cap = HTTPREQ_MAX_HEAD + 4096, len = 0, scan = 0;
	char *buf = malloc(cap);
	struct httpreq r;

	(void)state;
	assert_non_null(buf);
	len = (size_t)snprintf(buf, cap, "POST /x HTTP/1.1\r\n");
	while (len < HTTPREQ_MAX_HEAD)
		len += (size_t)snprintf(buf + len, cap - len, "X-Pad: %0100d\r\n", 0);
	assert_int_equal(httpreq_parse(buf, len, &scan, &r), HTTPREQ_TOO_LARGE);
	len = (size_t)snprintf(buf, cap, "POST /x HTTP/1.1\r\n");
	for (int i = 0; i <= HTTPREQ_MAX_HEADERS; i++)
		len += (size_t)snprintf(buf + len, cap - len, "X-H%d: v\r\n", i);
	len += (size_t)snprintf(buf + len, cap - len, "\r\n");
	scan = 0;
	assert_int_equal(httpreq_parse(buf, len, &scan, &r), HTTPREQ_TOO_LARGE);
	free(buf);
}

/* Decodes raw delivered in pieces of step bytes; returns the status and the data. */
static int decode(const char *raw, size_t step, long long max, char *data, size_t *dlen,
                  size_t *end)
{
	size_t total = strlen(raw), avail = 0, in = 0, out = 0;
	char *buf = malloc(total + 1);
	struct httpchunk c = {0, 0, 0};
	int rc = HTTPCHUNK_MORE;

	assert_non_null(buf);
	while (rc == HTTPCHUNK_MORE && avail < total) {
		size_t n = total - avail < step ? total - avail : step;

		memcpy(buf + avail, raw + avail, n);
		avail += n;
		rc = httpchunk_decode(&c, buf, avail, &in, &out, max);
	}
	memcpy(data, buf, out);
	*dlen = out;
	*end = in;
	free(buf);
	return rc;
}

static void test_chunked_bodies(void **state)
{
	const char *raw = "5\r\nhello\r\n1;ext=1\r\n,\r\n6 \r\n world\r\n0\r\nX-T: 1\r\n\r\nNEXT";
	char data[64];
	size_t dlen, end;

	(void)state;
	for (size_t step = 1; step <= strlen(raw); step++) {
		assert_int_equal(decode(raw, step, 1000, data, &dlen, &end), HTTPCHUNK_DONE);
		assert_int_equal(dlen, 12);
		assert_memory_equal(data, "hello, world", 12);
		assert_string_equal(raw + end, "NEXT"); /* the next request starts here */
	}
	assert_int_equal(decode("0\r\n\r\n", 1, 1000, data, &dlen, &end), HTTPCHUNK_DONE);
	assert_int_equal(dlen, 0);
	/* Hex sizes of any case; LF-only line ends. */
	assert_int_equal(decode("A\nabcdefghij\n0\n\n", 3, 1000, data, &dlen, &end),
	                 HTTPCHUNK_DONE);
	assert_int_equal(dlen, 10);
}

static void test_chunked_refusals(void **state)
{
	char data[64];
	size_t dlen, end;

	(void)state;
	assert_int_equal(decode("g\r\nx\r\n0\r\n\r\n", 4, 1000, data, &dlen, &end), HTTPCHUNK_BAD);
	assert_int_equal(decode("\r\n0\r\n\r\n", 4, 1000, data, &dlen, &end), HTTPCHUNK_BAD);
	assert_int_equal(decode("3\r\nabcX\r\n0\r\n\r\n", 4, 1000, data, &dlen, &end),
	                 HTTPCHUNK_BAD);
	assert_int_equal(decode("ffffffffffffffff\r\n", 4, 1000, data, &dlen, &end), HTTPCHUNK_BAD);
	/* Over the limit: refused as soon as the data would pass it. */
	assert_int_equal(decode("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 2, 8, data, &dlen, &end),
	                 HTTPCHUNK_TOO_LARGE);
	assert_int_equal(decode("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n", 2, 8, data, &dlen, &end),
	                 HTTPCHUNK_DONE);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_head_fields),
	    cmocka_unit_test(test_connection_and_expect),
	    cmocka_unit_test(test_byte_by_byte_arrival),
	    cmocka_unit_test(test_refused_heads),
	    cmocka_unit_test(test_head_limits),
	    cmocka_unit_test(test_chunked_bodies),
	    cmocka_unit_test(test_chunked_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
