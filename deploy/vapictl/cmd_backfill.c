/* backfill: ended calls from the API → end-of-call-report entries in the stream. */
#include "cmd_backfill.h"

#include "backfill.h"
#include "progress.h"
#include "redisconn.h"
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

static redisContext *connect_redis(const struct vctl *v)
{
	struct redis_addr addr;
	redisContext *c;
	char err[300];

	if (redisconn_parse_url(v->cfg->redis_url, &addr, err, sizeof(err)) != 0) {
		vctl_err("REDIS_URL: %s", err);
		return NULL;
	}
	c = redisconn_open(&addr, (int)v->cfg->redis_timeout_ms, err, sizeof(err));
	if (c == NULL)
		vctl_err("redis: %s", err);
	return c;
}

/* XADDs body as the entry ingest writes. Returns 0, or -1 with the reason in why (the
 * context is then not to be used again). */
static int enqueue(redisContext *c, const char *stream, const char *body, const char *call_id,
                   char *why, size_t n)
{
	char rid[300], id[64];
	struct stream_new e = {body, strlen(body), util_now_ms(), rid, "backfill", NULL};

	snprintf(rid, sizeof(rid), "backfill-%s", call_id);
	return stream_xadd(c, stream, &e, id, sizeof(id), why, n);
}

/* Handles one listed call. Returns 0, or -1 when the stream cannot take more. */
static int backfill_call(const struct vctl *v, redisContext *redis, const json_t *call,
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
	} else if (enqueue(redis, v->cfg->stream, body, id, why, sizeof(why)) != 0) {
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
	redisContext *redis = NULL;
	int64_t since, until;
	json_t *call;
	int rc = 0;

	if (parse_window(v, &since, &until) != 0)
		return VCTL_EXIT_USAGE;
	if (!v->opts->dry_run && (redis = connect_redis(v)) == NULL)
		return VCTL_EXIT_FAILED;
	vapi_pager_init(&p, v->api, "/call",
	                v->opts->page_size > 0 ? (int)v->opts->page_size : VCTL_BACKFILL_PAGE,
	                since, until);
	progress_start(&pr, stderr, v->opts->dry_run ? "backfill (dry run)" : "backfill", "calls",
	               -1);
	while (rc == 0 && (rc = vapi_pager_next(&p, &call, &err)) == 1) {
		n.listed++;
		rc = backfill_call(v, redis, call, &n);
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
	redisFree(redis);
	return rc < 0 || n.failed > 0 ? VCTL_EXIT_FAILED : VCTL_EXIT_OK;
}
