/* rslots: key slots against the server's own CLUSTER KEYSLOT, and the slot map, MOVED and ASK
 * from replies recorded off a real cluster (tests/fixtures/cluster, README there). */
#include "rslots.h"
#include "testutil.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define FIXTURES "tests/fixtures/cluster/"

/* The reply recorded in FIXTURES name, parsed by hiredis' own reader. */
static redisReply *recorded(const char *name)
{
	char path[256];
	size_t len;
	char *raw;
	redisReader *rd = redisReaderCreate();
	void *reply = NULL;

	snprintf(path, sizeof(path), FIXTURES "%s", name);
	raw = test_slurp(path, &len);
	assert_non_null(raw);
	assert_int_equal(redisReaderFeed(rd, raw, len), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
	assert_non_null(reply);
	redisReaderFree(rd);
	free(raw);
	return reply;
}

/* The lines of expected.txt that start with kind, each handed to fn. */
static int each_expected(const char *kind, void (*fn)(const char *rest, void *arg), void *arg)
{
	FILE *f = fopen(FIXTURES "expected.txt", "r");
	char line[512];
	size_t klen = strlen(kind);
	int n = 0;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\n")] = '\0';
		if (strncmp(line, kind, klen) == 0 && line[klen] == ' ') {
			fn(line + klen + 1, arg);
			n++;
		}
	}
	fclose(f);
	return n;
}

static void check_keyslot(const char *rest, void *arg)
{
	char key[256];
	unsigned want;
	const char *sp = strrchr(rest, ' ');

	(void)arg;
	assert_non_null(sp);
	memcpy(key, rest, (size_t)(sp - rest));
	key[sp - rest] = '\0';
	want = (unsigned)strtoul(sp + 1, NULL, 10);
	if (rslots_keyslot(key, strlen(key)) != want)
		fail_msg("keyslot of \"%s\": %u, the server says %u", key,
		         rslots_keyslot(key, strlen(key)), want);
}

static void test_keyslot_matches_the_server(void **state)
{
	(void)state;
	assert_true(each_expected("keyslot", check_keyslot, NULL) >= 10);
	/* Hash tags: only the first {...} that is not empty counts. */
	assert_int_equal(rslots_keyslot("{user1000}.following", 20),
	                 rslots_keyslot("{user1000}.followers", 20));
	assert_int_not_equal(rslots_keyslot("foo{}{bar}", 10), rslots_keyslot("bar", 3));
	assert_int_equal(rslots_keyslot("foo{bar}{zap}", 13), rslots_keyslot("bar", 3));
	/* Length is honoured: a key may hold NUL bytes. */
	assert_int_not_equal(rslots_keyslot("a\0b", 3), rslots_keyslot("a", 1));
}

static void check_range(const char *rest, void *arg)
{
	const struct rslots *m = arg;
	unsigned from, to;
	int port;
	char host[256];
	const struct rslots_node *n;

	assert_int_equal(sscanf(rest, "%u %u %255s %d", &from, &to, host, &port), 4);
	for (unsigned s = from; s <= to; s++) {
		n = rslots_owner(m, s);
		assert_non_null(n);
		assert_string_equal(n->host, host);
		assert_int_equal(n->port, port);
	}
}

static void test_slot_map_from_cluster_slots(void **state)
{
	redisReply *r = recorded("slots.resp");
	struct rslots m;
	char err[256];

	(void)state;
	assert_int_equal(rslots_parse(r, "127.0.0.1", &m, err, sizeof(err)), 0);
	assert_int_equal(m.nnodes, 3); /* the masters only, each once */
	assert_true(each_expected("range", check_range, &m) >= 3);
	for (unsigned s = 0; s < RSLOTS_COUNT; s++)
		assert_non_null(rslots_owner(&m, s));
	assert_null(rslots_owner(&m, RSLOTS_COUNT));
	rslots_free(&m);
	freeReplyObject(r);
}

/* After a failover the map still covers every slot, with three masters, and exactly one of
 * them is new. */
static void test_slot_map_after_failover(void **state)
{
	redisReply *a = recorded("slots.resp"), *b = recorded("slots-after-failover.resp");
	struct rslots before, after;
	char err[256];
	int moved = 0;

	(void)state;
	assert_int_equal(rslots_parse(a, "127.0.0.1", &before, err, sizeof(err)), 0);
	assert_int_equal(rslots_parse(b, "127.0.0.1", &after, err, sizeof(err)), 0);
	assert_int_equal(after.nnodes, 3);
	for (int i = 0; i < after.nnodes; i++) {
		int known = 0;

		for (int k = 0; k < before.nnodes; k++)
			known |= before.nodes[k].port == after.nodes[i].port;
		moved += !known;
	}
	assert_int_equal(moved, 1);
	assert_int_equal(each_expected("failover-range", check_range, &after), 3);
	for (unsigned s = 0; s < RSLOTS_COUNT; s++)
		assert_non_null(rslots_owner(&after, s));
	rslots_free(&before);
	rslots_free(&after);
	freeReplyObject(a);
	freeReplyObject(b);
}

static void check_redirect(const char *rest, void *arg)
{
	const char *file = ((const char **)arg)[0];
	enum rslots_redirect want =
	    strcmp(((const char **)arg)[1], "moved") == 0 ? RSLOTS_MOVED : RSLOTS_ASK;
	redisReply *r = recorded(file);
	unsigned slot, wslot;
	int port, wport;
	char host[256], whost[256];

	assert_int_equal(sscanf(rest, "%u %255s %d", &wslot, whost, &wport), 3);
	assert_int_equal(rslots_redirect(r, &slot, host, sizeof(host), &port), want);
	assert_int_equal(slot, wslot);
	assert_string_equal(host, whost);
	assert_int_equal(port, wport);
	freeReplyObject(r);
}

static void test_moved_and_ask(void **state)
{
	const char *moved[] = {"moved.resp", "moved"}, *ask[] = {"ask.resp", "ask"};

	(void)state;
	assert_int_equal(each_expected("moved", check_redirect, moved), 1);
	assert_int_equal(each_expected("ask", check_redirect, ask), 1);
}

static redisReply *error_reply(const char *text)
{
	char raw[512];
	redisReader *rd = redisReaderCreate();
	void *reply = NULL;

	snprintf(raw, sizeof(raw), "-%s\r\n", text);
	assert_int_equal(redisReaderFeed(rd, raw, strlen(raw)), REDIS_OK);
	assert_int_equal(redisReaderGetReply(rd, &reply), REDIS_OK);
	redisReaderFree(rd);
	return reply;
}

static void test_other_errors_are_no_redirect(void **state)
{
	const char *texts[] = {"ERR unknown command",    "MOVED",
	                       "MOVED x 127.0.0.1:7000", "MOVED 16384 127.0.0.1:7000",
	                       "MOVED 1 127.0.0.1",      "MOVED 1 127.0.0.1:0",
	                       "ASK 1 127.0.0.1:70000",  "CLUSTERDOWN The cluster is down"};
	unsigned slot;
	int port;
	char host[256];

	(void)state;
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		redisReply *r = error_reply(texts[i]);

		if (rslots_redirect(r, &slot, host, sizeof(host), &port) != RSLOTS_NONE)
			fail_msg("\"%s\" read as a redirection", texts[i]);
		freeReplyObject(r);
	}
	{ /* IPv6: the port follows the last colon */
		redisReply *r = error_reply("MOVED 42 ::1:7001");

		assert_int_equal(rslots_redirect(r, &slot, host, sizeof(host), &port),
		                 RSLOTS_MOVED);
		assert_string_equal(host, "::1");
		assert_int_equal(port, 7001);
		freeReplyObject(r);
	}
}

/* Hand-made shapes: an unknown endpoint ("" or "?") is the host asked; anything else is
 * refused. */
static void test_slot_map_shapes(void **state)
{
	const char *unknown = "*2\r\n"
	                      "*3\r\n:0\r\n:8191\r\n*3\r\n$0\r\n\r\n:7000\r\n$4\r\nid-a\r\n"
	                      "*3\r\n:8192\r\n:16383\r\n*3\r\n$1\r\n?\r\n:7001\r\n$4\r\nid-b\r\n";
	const char *bad[] = {
	    "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n", /* past the end */
	    "*1\r\n*3\r\n:9\r\n:1\r\n*2\r\n$9\r\n127.0.0.1\r\n:7000\r\n",     /* backwards */
	    "*1\r\n*2\r\n:0\r\n:1\r\n",                                       /* no master */
	    "-ERR This instance has cluster support disabled\r\n", ":1\r\n"};
	struct rslots m;
	char err[256];

	(void)state;
	{
		redisReader *rd = redisReaderCreate();
		void *r = NULL;

		assert_int_equal(redisReaderFeed(rd, unknown, strlen(unknown)), REDIS_OK);
		assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
		assert_int_equal(rslots_parse(r, "10.0.0.7", &m, err, sizeof(err)), 0);
		assert_int_equal(m.nnodes, 2);
		assert_string_equal(rslots_owner(&m, 0)->host, "10.0.0.7");
		assert_int_equal(rslots_owner(&m, 16383)->port, 7001);
		rslots_free(&m);
		freeReplyObject(r);
		redisReaderFree(rd);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		redisReader *rd = redisReaderCreate();
		void *r = NULL;

		assert_int_equal(redisReaderFeed(rd, bad[i], strlen(bad[i])), REDIS_OK);
		assert_int_equal(redisReaderGetReply(rd, &r), REDIS_OK);
		if (rslots_parse(r, "127.0.0.1", &m, err, sizeof(err)) != -1)
			fail_msg("shape %zu accepted", i);
		assert_null(m.nodes);
		freeReplyObject(r);
		redisReaderFree(rd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_keyslot_matches_the_server),
	    cmocka_unit_test(test_slot_map_from_cluster_slots),
	    cmocka_unit_test(test_slot_map_after_failover),
	    cmocka_unit_test(test_moved_and_ask),
	    cmocka_unit_test(test_other_errors_are_no_redirect),
	    cmocka_unit_test(test_slot_map_shapes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
