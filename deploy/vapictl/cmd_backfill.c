/* backfill: ended calls from the API → end-of-call-report entries in the stream. */
#include "cmd_backfill.h"

#include "backfill.h"
#include "progress.h"
#include "redisconn.h"
#include "shards.h"
#include "stream.h"
#include "util.h"
#include "vapi_pager.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Outcome counts. */
struct counts {
	unsigned long listed;    /* calls the API returned */
	unsigned long enqueued;  /* reports added (or, in a dry run, that would be) */
	unsigned long not_ended; /* calls still going, or never connected: no report yet */
	unsigned long failed;    /* calls whose report could not be built */
};

static int parse_window(const struct vctl *v, int64_t *since, int64_t *until)
{
	*until = -1;
	if (v->opts->since == NULL || util_parse_time_ms(v->opts->since, since) != 0) {
		vctl_err("--since: expected a time, ISO-8601 (2025-03-01T10:00:00Z) or epoch ms");
		return -1;
	}
	if (v->opts->until != NULL && util_parse_time_ms(v->opts->until, until) != 0) {
		vctl_err("--until: expected a time, ISO-8601 (2025-03-01T10:00:00Z) or epoch ms");
		return -1;
	}
	if (*until >= 0 && *until <= *since) {
		vctl_err("--until must be later than --since");
		return -1;
	}
	return 0;
}

/* Where the reports go: a connection per stream shard, opened when first needed, to the
 * server holding the shard (through the sentinels, or the cluster's slot map), and the shard
 * the next report goes to (round-robin, as ingest spreads webhooks). */
struct sink {
	const struct cfg *cfg;
	struct redis_addr addr;
	redisContext **redis; /* per shard, or NULL */
	int next;
};

/* Connects shard i when it is not. Returns 0, or -1 with the reason in why. */
static int sink_connect(struct sink *s, int i, const char *stream, char *why, size_t n)
{
	char err[300];

	if (s->redis[i] != NULL)
		return 0;
	s->redis[i] =
	    redisconn_open_key(&s->addr, stream, (int)s->cfg->redis_timeout_ms, err, sizeof(err));
	if (s->redis[i] == NULL)
		snprintf(why, n, "redis (%s): %s", stream, err);
	return s->redis[i] != NULL ? 0 : -1;
}

/* Reads where Redis is and connects the first shard, so that a Redis out of reach stops
 * the backfill before it lists any call. Returns 0, or -1 (said on stderr). */
static int sink_open(struct sink *s, const struct cfg *c)
{
	char err[400], stream[SHARDS_NAME];

	s->cfg = c;
	if (cfg_redis_addr(c, &s->addr, err, sizeof(err)) != 0) {
		vctl_err("%s", err);
		return -1;
	}
	s->redis = calloc((size_t)c->shards, sizeof(*s->redis));
	if (s->redis == NULL) {
		vctl_err("out of memory");
		return -1;
	}
	shards_stream(c, 0, stream, sizeof(stream));
	if (sink_connect(s, 0, stream, err, sizeof(err)) != 0) {
		vctl_err("%s", err);
		return -1;
	}
	return 0;
}

static void sink_close(struct sink *s)
{
	for (int i = 0; s->redis != NULL && i < s->cfg->shards; i++)
		redisFree(s->redis[i]);
	free(s->redis);
}

/* XADDs body, as the entry ingest writes, to the next shard. A failed, refused or
 * redirected XADD drops the connection and is tried once more on a new one, which follows a
 * failover or a moved slot. Returns 0, or -1 with the reason in why. */
static int sink_add(struct sink *s, const char *body, const char *call_id, char *why, size_t n)
{
	char rid[300], id[64], stream[SHARDS_NAME];
	struct stream_new e = {body, strlen(body), util_now_ms(), rid, "backfill", NULL};
	int i = s->next;

	s->next = (i + 1) % (int)s->cfg->shards;
	shards_stream(s->cfg, i, stream, sizeof(stream));
	snprintf(rid, sizeof(rid), "backfill-%s", call_id);
	for (int attempt = 0; attempt < 2; attempt++) {
		if (sink_connect(s, i, stream, why, n) != 0)
			return -1;
		if (stream_xadd(s->redis[i], stream, &e, id, sizeof(id), why, n) == 0)
			return 0;
		redisFree(s->redis[i]);
		s->redis[i] = NULL;
	}
	return -1;
}

/* Handles one listed call. Returns 0, or -1 when the stream cannot take more. */
static int backfill_call(const struct vctl *v, struct sink *sink, const json_t *call,
                         struct counts *n)
{
	const char *id = json_string_value(json_object_get(call, "id"));
	char why[400];
	json_t *msg;
	char *body;
	int rc = 0;

	if (!backfill_call_ended(call)) {
		n->not_ended++;
		return 0;
	}
	msg = backfill_message_new(call, why, sizeof(why));
	body = msg != NULL ? backfill_dumps(msg) : NULL;
	if (msg != NULL && body == NULL)
		snprintf(why, sizeof(why), "cannot encode the report");
	json_decref(msg);
	if (body == NULL) {
		n->failed++;
		printf("failed call %s: %s\n", id != NULL ? id : "?", why);
		return 0;
	}
	if (v->opts->dry_run) {
		printf("would enqueue call %s (%zu bytes)\n", id, strlen(body));
	} else if (sink_add(sink, body, id, why, sizeof(why)) != 0) {
		vctl_err("%s", why);
		rc = -1;
	}
	n->enqueued += rc == 0;
	free(body);
	return rc;
}

int cmd_backfill(struct vctl *v)
{
	struct counts n = {0, 0, 0, 0};
	struct vapi_pager p;
	struct vapi_error err;
	struct progress pr;
	struct sink sink = {0};
	int64_t since, until;
	json_t *call;
	int rc = 0;

	if (parse_window(v, &since, &until) != 0)
		return VCTL_EXIT_USAGE;
	if (!v->opts->dry_run && sink_open(&sink, &v->cfg->redis) != 0) {
		sink_close(&sink);
		return VCTL_EXIT_FAILED;
	}
	vapi_pager_init(&p, v->api, "/call",
	                v->opts->page_size > 0 ? (int)v->opts->page_size : VCTL_BACKFILL_PAGE,
	                since, until);
	progress_start(&pr, stderr, v->opts->dry_run ? "backfill (dry run)" : "backfill", "calls",
	               -1);
	while (rc == 0 && (rc = vapi_pager_next(&p, &call, &err)) == 1) {
		n.listed++;
		rc = backfill_call(v, &sink, call, &n);
		progress_add(&pr, 1);
	}
	progress_end(&pr);
	if (rc < 0 && err.errstr[0] != '\0')
		vctl_err("%s", err.errstr);
	if (p.ties_lost)
		vctl_err("warning: a whole page of calls shares one createdAt millisecond; more "
		         "created in it may be missing: run again with a larger --page-size");
	printf("backfill%s: %lu calls listed, %lu %s, %lu not ended, %lu failed%s\n",
	       v->opts->dry_run ? " (dry run)" : "", n.listed, n.enqueued,
	       v->opts->dry_run ? "would be enqueued" : "enqueued", n.not_ended, n.failed,
	       rc < 0 ? " (stopped early: running it again is harmless)" : "");
	vapi_pager_free(&p);
	sink_close(&sink);
	return rc < 0 || n.failed > 0 ? VCTL_EXIT_FAILED : VCTL_EXIT_OK;
}
