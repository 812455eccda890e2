/* Periodic duties: claim, trim, re-route, call_events partitions. */
#include "maint.h"

#include "log.h"
#include "util.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Parked messages are re-routed this many per transaction. */
#define MAINT_REROUTE_PAGE 500
/* call_events partitions are looked after this often, and made this many months ahead. */
#define MAINT_EVENTS_MS 3600000
#define MAINT_EVENTS_AHEAD 2

void maint_init(struct maint *m, struct consumer *c)
{
	int64_t now = util_mono_ms();

	memset(m, 0, sizeof(*m));
	m->c = c;
	/* Claim soon after start: entries of a worker that died just before are waiting. */
	m->next_claim = now + 1000;
	m->next_trim = now + c->cfg->trim_ms;
	m->next_reroute = now + c->cfg->reroute_ms;
	m->next_events = now; /* at start: a worker may be the first to run in a new month */
}

/* Splits a stream id "ms-seq" into its numbers (0-0 when unreadable). */
static void id_split(const char *id, unsigned long long *ms, unsigned long long *seq)
{
	*ms = *seq = 0;
	if (sscanf(id, "%llu-%llu", ms, seq) < 1)
		*ms = 0;
}

/* Compares stream ids as numbers: <0, 0, >0. */
static int id_cmp(const char *x, const char *y)
{
	unsigned long long a, b, p, q;

	id_split(x, &a, &b);
	id_split(y, &p, &q);
	return a != p ? (a < p ? -1 : 1) : (b < q ? -1 : b > q);
}

/* Keeps in lo the lower of the ids lo and id. */
static void id_min(char *lo, size_t size, const char *id)
{
	if (id_cmp(id, lo) < 0)
		snprintf(lo, size, "%s", id);
}

static const redisReply *map_get(const redisReply *map, const char *key)
{
	for (size_t i = 0; map->type == REDIS_REPLY_ARRAY && i + 1 < map->elements; i += 2)
		if (map->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(map->element[i]->str, key) == 0)
			return map->element[i + 1];
	return NULL;
}

static long long map_int(const redisReply *map, const char *key)
{
	const redisReply *v = map_get(map, key);

	return v != NULL && v->type == REDIS_REPLY_INTEGER ? v->integer : 0;
}

int maint_group_state(struct consumer *c, struct group_state *g)
{
	const char *argv[] = {"XINFO", "GROUPS", c->sh->stream};
	redisReply *r = redisconn_cmdv(c->sh->redis, 3, argv);
	int rc = 1;

	memset(g, 0, sizeof(*g));
	if (r == NULL) {
		consumer_redis_drop(c);
		return -1;
	}
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *grp = r->element[i], *name = map_get(grp, "name");
		const redisReply *last = map_get(grp, "last-delivered-id");

		if (name == NULL || strcmp(name->str, c->cfg->group) != 0)
			continue;
		g->pending = map_int(grp, "pending");
		g->lag = map_int(grp, "lag");
		g->consumers = map_int(grp, "consumers");
		snprintf(g->last_delivered, sizeof(g->last_delivered), "%s",
		         last != NULL && last->type == REDIS_REPLY_STRING ? last->str : "0-0");
		rc = 0;
	}
	freeReplyObject(r);
	return rc;
}

int maint_group_total(struct consumer *c, struct group_state *total)
{
	struct consumer_shard *was = c->sh;
	int rc = 1;

	memset(total, 0, sizeof(*total));
	snprintf(total->last_delivered, sizeof(total->last_delivered), "0-0");
	for (int i = 0; i < c->nshards; i++) {
		struct group_state g;
		int one;

		consumer_select(c, i);
		if (c->sh->redis == NULL && consumer_redis_up(c) != 0) {
			rc = -1;
			break;
		}
		one = maint_group_state(c, &g);
		if (one < 0) {
			rc = -1;
			break;
		}
		if (one > 0)
			continue;
		rc = 0;
		total->pending += g.pending;
		total->lag += g.lag;
		if (g.consumers > total->consumers)
			total->consumers = g.consumers;
		if (id_cmp(g.last_delivered, total->last_delivered) > 0)
			snprintf(total->last_delivered, sizeof(total->last_delivered), "%s",
			         g.last_delivered);
	}
	c->sh = was;
	return rc;
}

int maint_claim(struct consumer *c, long long min_idle_ms, long long *claimed)
{
	char idle[24], count[24], cursor[48] = "0-0";

	*claimed = 0;
	snprintf(idle, sizeof(idle), "%lld", min_idle_ms);
	snprintf(count, sizeof(count), "%lld", c->cfg->batch);
	do {
		const char *argv[] = {"XAUTOCLAIM", c->sh->stream, c->cfg->group, c->cfg->consumer,
		                      idle,         cursor,        "COUNT",       count};
		redisReply *r = redisconn_cmdv(c->sh->redis, 8, argv);

		if (r == NULL) {
			consumer_redis_drop(c);
			return -1;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
			log_error("XAUTOCLAIM: %s",
			          r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
			freeReplyObject(r);
			return -1;
		}
		snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
		if (r->element[1]->elements > 0) {
			*claimed += (long long)r->element[1]->elements;
			log_warn(
			    "took over %zu entries idle for over %lld ms at a stopped consumer",
			    r->element[1]->elements, min_idle_ms);
			consumer_process_redelivered(c, r->element[1]);
		}
		freeReplyObject(r);
	} while (strcmp(cursor, "0-0") != 0 && !*c->stop && c->sh->redis != NULL);
	metric_add(&wmetrics[WM_CLAIMED], *claimed);
	return 0;
}

/* The oldest pending id of the group ("" when none). Returns 0, or -1 when Redis failed. */
static int oldest_pending(struct consumer *c, char *out, size_t size)
{
	const char *argv[] = {"XPENDING", c->sh->stream, c->cfg->group};
	redisReply *r = redisconn_cmdv(c->sh->redis, 3, argv);

	out[0] = '\0';
	if (r == NULL) {
		consumer_redis_drop(c);
		return -1;
	}
	/* [count, smallest id, greatest id, [[consumer, count], ...]] */
	if (r->type == REDIS_REPLY_ARRAY && r->elements >= 2 &&
	    r->element[1]->type == REDIS_REPLY_STRING)
		snprintf(out, size, "%s", r->element[1]->str);
	freeReplyObject(r);
	return 0;
}

int maint_trim(struct consumer *c, long long *trimmed)
{
	struct group_state g;
	char minid[48], pend[48];
	redisReply *r;
	int rc;

	*trimmed = 0;
	rc = maint_group_state(c, &g);
	if (rc != 0)
		return rc < 0 ? -1 : 0;
	if (oldest_pending(c, pend, sizeof(pend)) != 0)
		return -1;
	snprintf(minid, sizeof(minid), "%lld-0", (long long)(util_now_ms() - c->cfg->retention_ms));
	/* Never past what the group has yet to read, nor past anything still pending. */
	id_min(minid, sizeof(minid), g.last_delivered);
	if (pend[0] != '\0')
		id_min(minid, sizeof(minid), pend);
	{
		const char *argv[] = {"XTRIM", c->sh->stream, "MINID", "=", minid};

		r = redisconn_cmdv(c->sh->redis, 5, argv);
	}
	if (r == NULL) {
		consumer_redis_drop(c);
		return -1;
	}
	if (r->type == REDIS_REPLY_INTEGER)
		*trimmed = r->integer;
	freeReplyObject(r);
	metric_add(&wmetrics[WM_TRIMMED], *trimmed);
	if (*trimmed > 0)
		log_info("trimmed %lld entries of %s older than %s", *trimmed, c->sh->stream,
		         minid);
	return 0;
}

/* Logs a failed duty and drops a connection that is gone. Returns -1. */
static int sink_failed(struct consumer *c, enum sink_status rc, enum log_level lvl, const char *fmt,
                       const char *err)
{
	log_msg(lvl, NULL, NULL, fmt, err);
	if (rc == SINK_CONN) {
		sink_close(c->sink);
		c->sink = NULL;
	}
	return -1;
}

int maint_reroute(struct consumer *c, long long *filed, long long *left)
{
	char err[512];
	enum sink_status rc;

	*filed = *left = 0;
	if (consumer_pg_up(c) != 0)
		return -1;
	rc = sink_reroute(c->sink, MAINT_REROUTE_PAGE, filed, left, err, sizeof(err));
	if (rc != SINK_OK)
		return sink_failed(c, rc, LOGL_ERROR, "re-route: %s", err);
	metric_add(&wmetrics[WM_REROUTED], *filed);
	if (*filed > 0)
		log_info("re-routed %lld parked messages; %lld still unrouted", *filed, *left);
	return 0;
}

int maint_events(struct consumer *c, long long *created, long long *dropped)
{
	char err[512];
	enum sink_status rc;

	*created = *dropped = 0;
	if (consumer_pg_up(c) != 0)
		return -1;
	rc = sink_maintain_events(c->sink, MAINT_EVENTS_AHEAD, c->cfg->event_retention_ms, created,
	                          dropped, err, sizeof(err));
	if (rc != SINK_OK)
		return sink_failed(c, rc, LOGL_WARN,
		                   "call_events partitions: %s; trying again later", err);
	if (*created > 0 || *dropped > 0)
		log_info(
		    "call_events partitions: %lld made ahead, %lld past EVENT_RETENTION dropped",
		    *created, *dropped);
	return 0;
}

void maint_tick(struct maint *m)
{
	int64_t now = util_mono_ms();
	long long a, b;
	bool claim = now >= m->next_claim, trim = m->c->cfg->trim_ms > 0 && now >= m->next_trim;

	/* Check twice per claim timeout so that an entry waits at most 1.5 times it. */
	if (claim)
		m->next_claim = now + m->c->cfg->claim_idle_ms / 2;
	if (trim)
		m->next_trim = now + m->c->cfg->trim_ms;
	for (int i = 0; (claim || trim) && i < m->c->nshards; i++) {
		consumer_select(m->c, i);
		if (claim && m->c->sh->redis != NULL)
			(void)maint_claim(m->c, m->c->cfg->claim_idle_ms, &a);
		if (trim && m->c->sh->redis != NULL)
			(void)maint_trim(m->c, &a);
	}
	if (now >= m->next_events) {
		/* A failure (a lock not had in time) is tried again in a minute. */
		m->next_events = now + (maint_events(m->c, &a, &b) == 0 ? MAINT_EVENTS_MS : 60000);
	}
	if (m->c->cfg->reroute_ms > 0 && now >= m->next_reroute) {
		m->next_reroute = now + m->c->cfg->reroute_ms;
		(void)maint_reroute(m->c, &a, &b);
	}
}

void maint_leave_group(struct consumer *c)
{
	const char *pend[] = {"XPENDING", c->sh->stream, c->cfg->group,   "-",
	                      "+",        "1",           c->cfg->consumer};
	const char *del[] = {"XGROUP", "DELCONSUMER", c->sh->stream, c->cfg->group,
	                     c->cfg->consumer};
	redisReply *r;

	if (c->sh->redis == NULL)
		return;
	r = redisconn_cmdv(c->sh->redis, 7, pend);
	if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 0) {
		freeReplyObject(r);
		r = redisconn_cmdv(c->sh->redis, 5, del);
	}
	freeReplyObject(r);
}
