/* The dead-letter stream: list, show, redrive, purge. */
#include "ops.h"

#include "consumer.h"
#include "stream.h"
#include "util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fields of a dead letter copied back into the main stream by a redrive. */
static const char *const redrive_fields[] = {STREAM_F_BODY, STREAM_F_RECEIVED_AT,
                                             STREAM_F_REQUEST_ID, STREAM_F_SOURCE, STREAM_F_ENC};

static const redisReply *field(const redisReply *entry, const char *name)
{
	const redisReply *f = entry->element[1];

	for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
		if (strcmp(f->element[i]->str, name) == 0)
			return f->element[i + 1];
	return NULL;
}

static const char *field_str(const redisReply *entry, const char *name)
{
	const redisReply *v = field(entry, name);

	return v != NULL && v->type == REDIS_REPLY_STRING ? v->str : "";
}

static redisReply *range(struct consumer *c, const char *start, const char *end, long long n)
{
	char count[24];
	const char *argv[] = {"XRANGE", c->cfg->dead_stream, start, end, "COUNT", count};

	snprintf(count, sizeof(count), "%lld", n);
	return redisconn_cmdv(c->redis, 6, argv);
}

static int dlq_list(struct consumer *c, int argc, char **argv)
{
	const char *limit_s = "100";
	const struct ops_opt opts[] = {{"limit", &limit_s, NULL}, {NULL, NULL, NULL}};
	long long limit;
	redisReply *r;
	int npos;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0 ||
	    util_parse_ll(limit_s, &limit) != 0 || limit < 1) {
		fprintf(stderr, "dlq list [--limit N]\n");
		return 2;
	}
	r = range(c, "-", "+", limit);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(r);
		return 1;
	}
	printf("%-20s %-20s %-8s %s\n", "ID", "ORIGINAL_ID", "ATTEMPTS", "REASON");
	for (size_t i = 0; i < r->elements; i++) {
		const redisReply *e = r->element[i];

		printf("%-20s %-20s %-8s %.100s\n", e->element[0]->str, field_str(e, "original_id"),
		       field_str(e, "attempts"), field_str(e, "reason"));
	}
	freeReplyObject(r);
	return 0;
}

/* Prints the body of a dead letter as received (decoded when it was stored compressed). */
static void print_body(const redisReply *entry)
{
	struct stream_entry e;
	const char *body;
	size_t len;
	char *owned = NULL, why[256];

	if (stream_entry_parse(entry, &e) != 0 ||
	    stream_entry_body(&e, &body, &len, &owned, why, sizeof(why)) != 0) {
		printf("body: (unreadable)\n");
		return;
	}
	printf("body: ");
	fwrite(body, 1, len, stdout);
	printf("\n");
	free(owned);
}

static int dlq_show(struct consumer *c, int argc, char **argv)
{
	const struct ops_opt opts[] = {{NULL, NULL, NULL}};
	const char *id[1];
	redisReply *r;
	int npos;

	if (ops_parse(argc, argv, opts, id, 1, &npos) != 0 || npos != 1) {
		fprintf(stderr, "dlq show ID\n");
		return 2;
	}
	r = range(c, id[0], id[0], 1);
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		fprintf(stderr, "dlq show: no dead letter %s\n", id[0]);
		freeReplyObject(r);
		return 1;
	}
	printf("id: %s\n", r->element[0]->element[0]->str);
	for (size_t i = 0; i + 1 < r->element[0]->element[1]->elements; i += 2) {
		const redisReply *k = r->element[0]->element[1]->element[i];
		const redisReply *v = r->element[0]->element[1]->element[i + 1];

		if (strcmp(k->str, STREAM_F_BODY) != 0)
			printf("%s: %s\n", k->str, v->str);
	}
	print_body(r->element[0]);
	freeReplyObject(r);
	return 0;
}

/* Moves one dead letter back to the main stream and deletes it, atomically. */
static int redrive_one(struct consumer *c, const redisReply *e)
{
	const char *argv[3 + 2 * 6];
	size_t lens[3 + 2 * 6];
	const char *del[] = {"XDEL", c->cfg->dead_stream, e->element[0]->str};
	redisReply *r;
	int n = 0, ok;

	argv[n] = "XADD", lens[n++] = 4;
	argv[n] = c->cfg->stream, lens[n++] = strlen(c->cfg->stream);
	argv[n] = "*", lens[n++] = 1;
	for (size_t i = 0; i < sizeof(redrive_fields) / sizeof(redrive_fields[0]); i++) {
		const redisReply *v = field(e, redrive_fields[i]);

		if (v == NULL || v->type != REDIS_REPLY_STRING)
			continue;
		argv[n] = redrive_fields[i], lens[n++] = strlen(redrive_fields[i]);
		argv[n] = v->str, lens[n++] = v->len;
	}
	argv[n] = "redriven_from", lens[n++] = 13;
	argv[n] = e->element[0]->str, lens[n++] = e->element[0]->len;
	redisAppendCommand(c->redis, "MULTI");
	redisAppendCommandArgv(c->redis, n, argv, lens);
	redisAppendCommandArgv(c->redis, 3, del, NULL);
	redisAppendCommand(c->redis, "EXEC");
	ok = 1;
	for (int i = 0; i < 4; i++) {
		if (redisGetReply(c->redis, (void **)&r) != REDIS_OK)
			return -1;
		if (r->type == REDIS_REPLY_ERROR || (i == 3 && r->type != REDIS_REPLY_ARRAY))
			ok = 0;
		freeReplyObject(r);
	}
	return ok ? 0 : -1;
}

static int dlq_redrive(struct consumer *c, int argc, char **argv)
{
	int all = 0, npos, failed = 0;
	long long moved = 0;
	const struct ops_opt opts[] = {{"all", NULL, &all}, {NULL, NULL, NULL}};
	const char *ids[256];

	if (ops_parse(argc, argv, opts, ids, 256, &npos) != 0 || (npos == 0) == !all) {
		fprintf(stderr, "dlq redrive ID... | --all\n");
		return 2;
	}
	for (int i = 0; all || i < npos; i++) {
		redisReply *r = all ? range(c, "-", "+", 100) : range(c, ids[i], ids[i], 1);
		size_t n = r != NULL && r->type == REDIS_REPLY_ARRAY ? r->elements : 0;

		if (!all && n == 0) {
			fprintf(stderr, "dlq redrive: no dead letter %s\n", ids[i]);
			failed++;
		}
		for (size_t k = 0; k < n; k++) {
			if (redrive_one(c, r->element[k]) == 0)
				moved++;
			else
				failed++;
		}
		freeReplyObject(r);
		if (all && (n == 0 || failed))
			break;
	}
	printf("redriven: %lld, failed: %d\n", moved, failed);
	return failed ? 1 : 0;
}

static int dlq_purge(struct consumer *c, int argc, char **argv)
{
	const char *before = NULL;
	const struct ops_opt opts[] = {{"before", &before, NULL}, {NULL, NULL, NULL}};
	char minid[32];
	int64_t ms;
	redisReply *r;
	int npos;

	if (ops_parse(argc, argv, opts, NULL, 0, &npos) != 0 || before == NULL ||
	    util_parse_time_ms(before, &ms) != 0) {
		fprintf(stderr, "dlq purge --before TIME (ISO-8601 or epoch milliseconds)\n");
		return 2;
	}
	snprintf(minid, sizeof(minid), "%lld-0", (long long)ms);
	{
		const char *argv2[] = {"XTRIM", c->cfg->dead_stream, "MINID", "=", minid};

		r = redisconn_cmdv(c->redis, 5, argv2);
	}
	if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
		freeReplyObject(r);
		return 1;
	}
	printf("purged: %lld dead letters from before %s\n", r->integer, before);
	freeReplyObject(r);
	return 0;
}

int ops_dlq(const struct cfg *cfg, volatile sig_atomic_t *stop, int argc, char **argv)
{
	struct consumer c;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "dlq list [--limit N] | show ID | redrive ID...|--all | "
		                "purge --before TIME\n");
		return 2;
	}
	if (consumer_init(&c, cfg, stop) != 0 || consumer_redis_up(&c) != 0)
		return 1;
	if (strcmp(argv[1], "list") == 0)
		rc = dlq_list(&c, argc - 1, argv + 1);
	else if (strcmp(argv[1], "show") == 0)
		rc = dlq_show(&c, argc - 1, argv + 1);
	else if (strcmp(argv[1], "redrive") == 0)
		rc = dlq_redrive(&c, argc - 1, argv + 1);
	else if (strcmp(argv[1], "purge") == 0)
		rc = dlq_purge(&c, argc - 1, argv + 1);
	else {
		fprintf(stderr, "dlq: unknown subcommand \"%s\"\n", argv[1]);
		rc = 2;
	}
	consumer_close(&c);
	return rc;
}
