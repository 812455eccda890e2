/* Dead letters: fields, bodies, and choosing them by filters. */
#include "dlqsel.h"

#include "opscli.h"
#include "stream.h"
#include "util.h"
#include "vapi_msg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Dead letters read per XRANGE while walking. */
#define DLQ_PAGE 100

int dlq_filter_parse(const char *cmd, const char *reason, const char *since, const char *until,
                     const char *limit, struct dlq_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->reason = reason;
	if (since != NULL && ops_time_opt(cmd, "--since", since, &f->since_ms) != 0)
		return -1;
	if (until != NULL && ops_time_opt(cmd, "--until", until, &f->until_ms) != 0)
		return -1;
	if (limit != NULL && (util_parse_ll(limit, &f->limit) != 0 || f->limit < 1)) {
		fprintf(stderr, "%s: --limit: expected a whole number above 0, got \"%s\"\n", cmd,
		        limit);
		return -1;
	}
	return 0;
}

const redisReply *dlq_field(const redisReply *entry, const char *name)
{
	const redisReply *f = entry->element[1];

	for (size_t i = 0; f->type == REDIS_REPLY_ARRAY && i + 1 < f->elements; i += 2)
		if (strcmp(f->element[i]->str, name) == 0)
			return f->element[i + 1];
	return NULL;
}

const char *dlq_field_str(const redisReply *entry, const char *name)
{
	const redisReply *v = dlq_field(entry, name);

	return v != NULL && v->type == REDIS_REPLY_STRING ? v->str : "";
}

static redisReply *range(struct consumer *c, const char *start, const char *end, long long n)
{
	char count[24];
	const char *argv[] = {"XRANGE", c->sh->dead, start, end, "COUNT", count};

	snprintf(count, sizeof(count), "%lld", n);
	return redisconn_cmdv(c->sh->redis, 6, argv);
}

/* dlq_get() on the selected shard. */
static redisReply *get_here(struct consumer *c, const char *id, int *redis_failed)
{
	redisReply *r = range(c, id, id, 1);

	*redis_failed = r == NULL || r->type == REDIS_REPLY_ERROR;
	if (r != NULL && r->type == REDIS_REPLY_ERROR && strstr(r->str, "Invalid stream ID"))
		*redis_failed = 0;
	if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
		freeReplyObject(r);
		return NULL;
	}
	return r;
}

redisReply *dlq_get(struct consumer *c, const char *id, int *redis_failed)
{
	int failed = 0;

	for (int i = 0; i < c->nshards; i++) {
		redisReply *r;

		consumer_select(c, i);
		r = get_here(c, id, redis_failed);
		if (r != NULL)
			return r;
		failed |= *redis_failed;
	}
	*redis_failed = failed;
	return NULL;
}

static int selected(const struct dlq_filter *f, const redisReply *e)
{
	return f->reason == NULL || strcasestr(dlq_field_str(e, "reason"), f->reason) != NULL;
}

/* dlq_each() on the selected shard; *seen counts the visits of the whole walk. */
static int each_here(struct consumer *c, const struct dlq_filter *f, const char *end,
                     long long *seen, dlq_visit visit, void *arg)
{
	char start[64] = "-";

	if (f->since_ms > 0)
		snprintf(start, sizeof(start), "%lld", (long long)f->since_ms);
	for (;;) {
		redisReply *r = range(c, start, end, DLQ_PAGE);
		int rc = 0, full = 0;
		size_t n;

		if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
			freeReplyObject(r);
			return -1;
		}
		n = r->elements;
		for (size_t i = 0; rc == 0 && !full && i < n; i++) {
			if (!selected(f, r->element[i]))
				continue;
			rc = visit(c, r->element[i], arg);
			full = f->limit > 0 && ++*seen >= f->limit;
		}
		if (n > 0)
			snprintf(start, sizeof(start), "(%s", r->element[n - 1]->element[0]->str);
		freeReplyObject(r);
		if (rc != 0 || full || n < DLQ_PAGE)
			return rc;
	}
}

int dlq_each(struct consumer *c, const struct dlq_filter *f, dlq_visit visit, void *arg)
{
	char end[32];
	long long seen = 0;
	int rc = 0;

	snprintf(end, sizeof(end), "%lld",
	         (long long)(f->until_ms > 0 ? f->until_ms : util_now_ms()));
	for (int i = 0; i < c->nshards && rc == 0 && (f->limit <= 0 || seen < f->limit); i++) {
		consumer_select(c, i);
		rc = each_here(c, f, end, &seen, visit, arg);
	}
	return rc;
}

int dlq_body(const redisReply *entry, const char **body, size_t *len, char **owned, char *why,
             size_t whylen)
{
	struct stream_entry e;

	*owned = NULL;
	if (stream_entry_parse(entry, &e) != 0) {
		snprintf(why, whylen, "malformed stream entry");
		return -1;
	}
	return stream_entry_body(&e, body, len, owned, why, whylen);
}

const char *dlq_call_id(const redisReply *entry, char *buf, size_t size)
{
	const char *body;
	size_t len;
	char *owned, why[256];
	struct vapi_msg m;

	snprintf(buf, size, "-");
	if (dlq_body(entry, &body, &len, &owned, why, sizeof(why)) != 0)
		return buf;
	if (vapi_msg_parse(body, len, &m, why, sizeof(why)) == 0) {
		if (m.call_id != NULL && m.call_id[0] != '\0')
			snprintf(buf, size, "%s", m.call_id);
		vapi_msg_free(&m);
	}
	free(owned);
	return buf;
}
