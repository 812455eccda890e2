/* The status snapshot: Redis and PostgreSQL read on connections of its own, as JSON. */
#include "status.h"

#include "redisconn.h"
#include "shards.h"
#include "stream.h"
#include "timefmt.h"
#include "util.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Rows the lists show, and the most events a call's page lists. */
#define STATUS_NEWEST 20
#define STATUS_MAX_ORGS 200
#define STATUS_MAX_EVENTS 500
/* Every query of the page is cancelled past this (it must never slow the worker down). */
#define STATUS_PG_TIMEOUT "2s"
#define STATUS_PG_CONNECT_TIMEOUT "3"
/* An ingest not heard of for this long is left off the page. */
#define STATUS_INGEST_STALE_MS 60000

struct status {
	const struct cfg *cfg;
	pthread_mutex_t lock;
	int nshards;
	redisContext **redis; /* one per shard (shards.h), NULL while not connected */
	int cur;              /* the shard rcmd() asks */
	PGconn *pg;
	int64_t taken_mono;     /* when snap was taken, monotonic ms; 0: never */
	json_t *snap;           /* the last snapshot */
	json_t *pg_part;        /* the last PostgreSQL read: kept while PostgreSQL is down */
	int64_t pg_as_of;       /* epoch ms of pg_part */
	long long lag, pending; /* from the last Redis read, -1 unknown */
	long long unrouted, unrouted_oldest; /* count and epoch ms of the oldest; -1 unknown */
};

struct status *status_new(const struct cfg *cfg)
{
	struct status *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cfg = cfg;
	s->nshards = (int)cfg->shards;
	s->redis = calloc((size_t)s->nshards, sizeof(*s->redis));
	if (s->redis == NULL) {
		free(s);
		return NULL;
	}
	s->lag = s->pending = s->unrouted = s->unrouted_oldest = -1;
	pthread_mutex_init(&s->lock, NULL);
	return s;
}

void status_free(struct status *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < s->nshards; i++)
		redisFree(s->redis[i]);
	free(s->redis);
	PQfinish(s->pg);
	json_decref(s->snap);
	json_decref(s->pg_part);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- Redis ---- */

/* Shard i's connection, opened when there is none; it becomes the one rcmd() asks. */
static redisContext *redis_of(struct status *s, int i, char *err, size_t errlen)
{
	struct redis_addr a;
	char stream[SHARDS_NAME];

	s->cur = i;
	if (s->redis[i] != NULL)
		return s->redis[i];
	if (cfg_redis_addr(s->cfg, &a, err, errlen) != 0)
		return NULL;
	shards_stream(s->cfg, i, stream, sizeof(stream));
	s->redis[i] = redisconn_open_key(&a, stream, (int)s->cfg->redis_timeout_ms, err, errlen);
	return s->redis[i];
}

/* Runs a command on the current shard; NULL when the connection failed (it is then closed)
 * or is not there. */
static redisReply *rcmd(struct status *s, int argc, const char **argv)
{
	redisReply *r;

	if (s->redis[s->cur] == NULL)
		return NULL;
	r = redisconn_cmdv(s->redis[s->cur], argc, argv);
	if (r == NULL || redisconn_demoted(r)) {
		redisFree(s->redis[s->cur]);
		s->redis[s->cur] = NULL;
		freeReplyObject(r);
		r = NULL;
	}
	return r;
}

/* The value of key in a flat [key, value, ...] reply, or NULL. */
static const redisReply *field(const redisReply *r, const char *key)
{
	if (r == NULL || r->type != REDIS_REPLY_ARRAY)
		return NULL;
	for (size_t i = 0; i + 1 < r->elements; i += 2)
		if (r->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(r->element[i]->str, key) == 0)
			return r->element[i + 1];
	return NULL;
}

static long long int_of(const redisReply *v, long long dflt)
{
	if (v != NULL && v->type == REDIS_REPLY_INTEGER)
		return v->integer;
	if (v != NULL && v->type == REDIS_REPLY_STRING)
		return strtoll(v->str, NULL, 10);
	return dflt;
}

static const char *str_of(const redisReply *v)
{
	return v != NULL && v->type == REDIS_REPLY_STRING ? v->str : NULL;
}

/* The ms part of a stream id. */
static long long id_ms(const char *id)
{
	return id != NULL ? strtoll(id, NULL, 10) : 0;
}

static json_t *iso(long long ms)
{
	char buf[32];

	return ms > 0 ? json_string(timefmt_iso_ms(ms, buf, sizeof(buf))) : json_null();
}

/* A count that may be unknown (-1) as JSON. */
static json_t *count(long long n)
{
	return n >= 0 ? json_integer(n) : json_null();
}

/* What the shards add up to. */
struct stream_sum {
	long long length, lag, pending, oldest; /* -1: unknown */
	char last_delivered[48];                /* the newest of the shards' */
	json_t *consumers;                      /* name → {pending, idle} */
};

/* Adds the current shard's consumers to sum: pending summed, the shortest idle kept. */
static void read_consumers(struct status *s, const char *stream, struct stream_sum *sum)
{
	const char *argv[] = {"XINFO", "CONSUMERS", stream, s->cfg->group};
	redisReply *r = rcmd(s, 4, argv);

	for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		const redisReply *c = r->element[i];
		const char *name = str_of(field(c, "name"));
		long long pending = int_of(field(c, "pending"), 0);
		long long idle = int_of(field(c, "idle"), 0);
		json_t *had = name != NULL ? json_object_get(sum->consumers, name) : NULL;

		if (name == NULL)
			continue;
		if (had != NULL) {
			pending += json_integer_value(json_object_get(had, "pending"));
			if (json_integer_value(json_object_get(had, "idle")) < idle)
				idle = json_integer_value(json_object_get(had, "idle"));
		}
		json_object_set_new(sum->consumers, name,
		                    json_pack("{s:I, s:I}", "pending", pending, "idle", idle));
	}
	freeReplyObject(r);
}

/* Adds the current shard's stream, group and oldest pending entry to sum. */
static void read_shard_stream(struct status *s, const char *stream, long long now,
                              struct stream_sum *sum)
{
	const char *info[] = {"XINFO", "STREAM", stream};
	const char *groups[] = {"XINFO", "GROUPS", stream};
	const char *pend[] = {"XPENDING", stream, s->cfg->group};
	redisReply *ri = rcmd(s, 3, info), *rg = ri ? rcmd(s, 3, groups) : NULL;
	redisReply *rp = rg ? rcmd(s, 3, pend) : NULL;
	const redisReply *g = NULL;
	const char *last;

	for (size_t i = 0; rg != NULL && rg->type == REDIS_REPLY_ARRAY && i < rg->elements; i++)
		if (str_of(field(rg->element[i], "name")) != NULL &&
		    strcmp(str_of(field(rg->element[i], "name")), s->cfg->group) == 0)
			g = rg->element[i];
	/* XPENDING's summary: [count, smallest id, greatest id, consumers]. */
	if (rp != NULL && rp->type == REDIS_REPLY_ARRAY && rp->elements >= 2 &&
	    rp->element[1]->type == REDIS_REPLY_STRING &&
	    now - id_ms(rp->element[1]->str) > sum->oldest)
		sum->oldest = now - id_ms(rp->element[1]->str);
	/* No stream yet (XINFO answers an error) is an empty one. */
	util_add_known(&sum->lag, g ? int_of(field(g, "lag"), -1) : (ri ? 0 : -1));
	util_add_known(&sum->pending, g ? int_of(field(g, "pending"), -1) : (ri ? 0 : -1));
	util_add_known(&sum->length, ri ? int_of(field(ri, "length"), 0) : -1);
	last = str_of(field(g, "last-delivered-id"));
	if (last != NULL &&
	    (sum->last_delivered[0] == '\0' || id_ms(last) > id_ms(sum->last_delivered)))
		snprintf(sum->last_delivered, sizeof(sum->last_delivered), "%s", last);
	freeReplyObject(ri);
	freeReplyObject(rg);
	freeReplyObject(rp);
	if (s->redis[s->cur] != NULL)
		read_consumers(s, stream, sum);
}

/* The stream over every shard: its group and the age of its oldest pending entry; the
 * consumers (dead ones hold entries and have been idle past the claim time). */
static json_t *stream_json(struct status *s, struct stream_sum *sum)
{
	const char *name;
	json_t *v, *consumers = json_array(), *out;

	s->lag = sum->lag;
	s->pending = sum->pending;
	json_object_foreach(sum->consumers, name, v)
	{
		long long pending = json_integer_value(json_object_get(v, "pending"));
		long long idle = json_integer_value(json_object_get(v, "idle"));

		json_array_append_new(consumers,
		                      json_pack("{s:s, s:I, s:I, s:b}", "name", name, "pending",
		                                pending, "idle_seconds", idle / 1000, "dead",
		                                pending > 0 && idle > s->cfg->claim_idle_ms));
	}
	out = json_pack("{s:s, s:I, s:o, s:s, s:o, s:o, s:s?, s:o, s:o}", "name", s->cfg->stream,
	                "shards", (json_int_t)s->nshards, "length", count(sum->length), "group",
	                s->cfg->group, "lag", count(s->lag), "pending", count(s->pending),
	                "last_delivered", sum->last_delivered[0] ? sum->last_delivered : NULL,
	                "oldest_pending_age_seconds",
	                sum->oldest >= 0 ? json_integer(sum->oldest / 1000) : json_null(),
	                "consumers", consumers);
	return out;
}

/* Newest first, by the dead letter's id. */
static int newest_first(const void *a, const void *b)
{
	const char *x = json_string_value(json_object_get(*(json_t *const *)a, "id"));
	const char *y = json_string_value(json_object_get(*(json_t *const *)b, "id"));
	long long p = id_ms(x), q = id_ms(y);

	return p != q ? (p < q ? 1 : -1) : -strcmp(x, y);
}

/* Adds the current shard's dead-letter count and newest entries to *total and all. */
static void read_shard_dead(struct status *s, const char *dead, long long *total, json_t *all)
{
	char n[16];
	const char *len[] = {"XLEN", dead};
	const char *range[] = {"XREVRANGE", dead, "+", "-", "COUNT", n};
	redisReply *rl, *rr;

	snprintf(n, sizeof(n), "%d", STATUS_NEWEST);
	rl = rcmd(s, 2, len);
	rr = rl ? rcmd(s, 6, range) : NULL;
	util_add_known(total, rl ? int_of(rl, -1) : -1);
	for (size_t i = 0; rr != NULL && rr->type == REDIS_REPLY_ARRAY && i < rr->elements; i++) {
		const redisReply *e = rr->element[i];
		const redisReply *f = e->elements == 2 ? e->element[1] : NULL;

		json_array_append_new(
		    all, json_pack("{s:s, s:o, s:s?, s:s?, s:o}", "id", e->element[0]->str, "time",
		                   iso(int_of(field(f, "dead_at"), id_ms(e->element[0]->str))),
		                   "reason", str_of(field(f, "reason")), "original_id",
		                   str_of(field(f, "original_id")), "attempts",
		                   count(int_of(field(f, "attempts"), -1))));
	}
	freeReplyObject(rl);
	freeReplyObject(rr);
}

/* The dead letters: how many over every shard, and the newest STATUS_NEWEST. */
static json_t *dead_json(long long total, json_t *all)
{
	size_t n = json_array_size(all);
	json_t **v = calloc(n + 1, sizeof(*v)), *newest = json_array();

	for (size_t i = 0; v != NULL && i < n; i++)
		v[i] = json_array_get(all, i);
	if (v != NULL)
		qsort(v, n, sizeof(*v), newest_first);
	for (size_t i = 0; v != NULL && i < n && i < STATUS_NEWEST; i++)
		json_array_append(newest, v[i]);
	free(v);
	json_decref(all);
	return json_pack("{s:o, s:o}", "count", count(total), "newest", newest);
}

/* Each ingest's spool, from the hash they publish to (STREAM_INGEST_KEY_FMT over shard 0's
 * stream); shard 0 must be the current one. */
static json_t *read_ingest(struct status *s, long long now)
{
	char key[SHARDS_NAME + 16], stream[SHARDS_NAME];
	const char *argv[] = {"HGETALL", key};
	redisReply *r;
	json_t *out = json_array();

	shards_stream(s->cfg, 0, stream, sizeof(stream));
	snprintf(key, sizeof(key), STREAM_INGEST_KEY_FMT, stream);
	r = rcmd(s, 2, argv);
	for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
	     i += 2) {
		long long entries = -1, bytes = -1, at = 0;

		if (sscanf(r->element[i + 1]->str, "%lld %lld %lld", &entries, &bytes, &at) != 3 ||
		    now - at > STATUS_INGEST_STALE_MS)
			continue;
		json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:o}", "instance",
		                                     r->element[i]->str, "spool_entries", entries,
		                                     "spool_bytes", bytes, "seen", iso(at)));
	}
	freeReplyObject(r);
	return out;
}

/* Adds the messages the current shard's workers filed per minute over the last hour to
 * per[60] (oldest first), from their counters (STREAM_FILED_KEY_FMT: one hash per hour, a
 * field per minute). */
static void read_shard_filed(struct status *s, const char *stream, long long now, long long *per)
{
	long long minute = now / 60000;

	for (long long hour = (minute - 59) / 60; hour <= minute / 60 && s->redis[s->cur]; hour++) {
		char key[SHARDS_NAME + 40];
		const char *argv[] = {"HGETALL", key};
		redisReply *r;

		snprintf(key, sizeof(key), STREAM_FILED_KEY_FMT, stream, hour);
		r = rcmd(s, 2, argv);
		for (size_t i = 0; r != NULL && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements;
		     i += 2) {
			long long m = hour * 60 + strtoll(r->element[i]->str, NULL, 10);

			if (m > minute - 60 && m <= minute)
				per[m - (minute - 59)] += strtoll(r->element[i + 1]->str, NULL, 10);
		}
		freeReplyObject(r);
	}
}

static json_t *filed_json(const long long *per)
{
	long long total = 0;
	json_t *points = json_array();

	for (int i = 0; i < 60; i++) {
		json_array_append_new(points, json_integer(per[i]));
		total += per[i];
	}
	return json_pack("{s:o, s:I}", "per_minute", points, "last_hour", total);
}

/* Everything read from Redis, shard by shard; NULL with the reason in err when no shard
 * can be reached. A shard that cannot be read leaves its counts unknown and its reason in
 * err while the others are shown. */
static json_t *read_redis(struct status *s, long long now, char *err, size_t errlen)
{
	struct stream_sum sum = {0, 0, 0, -1, "", json_object()};
	long long dead = 0, per[60] = {0};
	json_t *all_dead = json_array(), *ingest = NULL, *out;
	int reached = 0;

	for (int i = 0; i < s->nshards; i++) {
		char stream[SHARDS_NAME], dname[SHARDS_NAME], why[256] = "";

		shards_stream(s->cfg, i, stream, sizeof(stream));
		shards_dead(s->cfg, i, dname, sizeof(dname));
		if (redis_of(s, i, why, sizeof(why)) != NULL) {
			read_shard_stream(s, stream, now, &sum);
			read_shard_dead(s, dname, &dead, all_dead);
			if (i == 0)
				ingest = read_ingest(s, now);
			read_shard_filed(s, stream, now, per);
		}
		if (s->redis[i] != NULL) {
			reached++;
			continue;
		}
		if (err[0] == '\0')
			snprintf(err, errlen, "%s%.60s%s%.150s", s->nshards > 1 ? "shard " : "",
			         s->nshards > 1 ? stream : "", s->nshards > 1 ? ": " : "",
			         why[0] ? why : "connection lost");
		util_add_known(&sum.length, -1);
		util_add_known(&sum.lag, -1);
		util_add_known(&sum.pending, -1);
		util_add_known(&dead, -1);
	}
	out = json_pack("{s:o, s:o, s:o, s:o}", "stream", stream_json(s, &sum), "dead_letters",
	                dead_json(dead, all_dead), "ingest", ingest ? ingest : json_array(),
	                "filed", filed_json(per));
	json_decref(sum.consumers);
	if (reached == 0) {
		json_decref(out);
		return NULL;
	}
	return out;
}

/* ---- PostgreSQL ---- */

static PGconn *pg_of(struct status *s, char *err, size_t errlen)
{
	const char *keys[] = {"dbname", "connect_timeout", "options", NULL};
	const char *vals[] = {
	    s->cfg->database_url, STATUS_PG_CONNECT_TIMEOUT,
	    "-c statement_timeout=" STATUS_PG_TIMEOUT " -c default_transaction_read_only=on", NULL};

	if (s->pg != NULL && PQstatus(s->pg) == CONNECTION_OK)
		return s->pg;
	PQfinish(s->pg);
	s->pg = PQconnectdbParams(keys, vals, 1);
	if (PQstatus(s->pg) != CONNECTION_OK) {
		snprintf(err, errlen, "%s", PQerrorMessage(s->pg));
		err[strcspn(err, "\n")] = '\0';
		PQfinish(s->pg);
		s->pg = NULL;
	}
	return s->pg;
}

/* Runs a read; NULL with the reason in err on failure. */
static PGresult *pq(struct status *s, const char *sql, int n, const char *const *p, char *err,
                    size_t errlen)
{
	PGresult *r = PQexecParams(s->pg, sql, n, NULL, p, NULL, NULL, 0);

	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "%s", PQresultErrorMessage(r));
		err[strcspn(err, "\n")] = '\0';
		PQclear(r);
		return NULL;
	}
	return r;
}

static const char *cell(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

static long long cell_ll(const PGresult *r, int row, int col)
{
	return cell(r, row, col) ? strtoll(cell(r, row, col), NULL, 10) : -1;
}

static json_t *cell_num(const PGresult *r, int row, int col)
{
	return cell(r, row, col) ? json_real(strtod(cell(r, row, col), NULL)) : json_null();
}

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"

static json_t *read_unrouted(struct status *s, char *err, size_t errlen)
{
	char lim[16];
	const char *p[1] = {lim};
	PGresult *c = pq(s, "SELECT count(*), " MS("min(created_at)") " FROM unrouted_messages", 0,
	                 NULL, err, errlen);
	PGresult *r;
	json_t *newest;

	if (c == NULL)
		return NULL;
	snprintf(lim, sizeof(lim), "%d", STATUS_NEWEST);
	r = pq(s,
	       "SELECT " MS("created_at") ", type, vapi_call_id, reason, stream_id"
	                                  " FROM unrouted_messages ORDER BY id DESC LIMIT $1",
	       1, p, err, errlen);
	if (r == NULL) {
		PQclear(c);
		return NULL;
	}
	newest = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(newest,
		                      json_pack("{s:o, s:s?, s:s?, s:s?, s:s?}", "time",
		                                iso(cell_ll(r, i, 0)), "type", cell(r, i, 1),
		                                "call_id", cell(r, i, 2), "reason", cell(r, i, 3),
		                                "stream_id", cell(r, i, 4)));
	s->unrouted = cell_ll(c, 0, 0);
	s->unrouted_oldest = cell_ll(c, 0, 1);
	PQclear(c);
	PQclear(r);
	return json_pack("{s:I, s:o}", "count", s->unrouted, "newest", newest);
}

/* Calls per organization over the last hour and day, each count an index range scan of
 * calls_org_created. */
static json_t *read_orgs(struct status *s, char *err, size_t errlen)
{
	char lim[16];
	const char *p[1] = {lim};
	PGresult *r;
	json_t *out;

	snprintf(lim, sizeof(lim), "%d", STATUS_MAX_ORGS);
	r = pq(
	    s,
	    "SELECT o.id, o.name,"
	    " (SELECT count(*) FROM calls c WHERE c.organization_id = o.id"
	    "  AND c.created_at > now() - interval '1 hour'),"
	    " (SELECT count(*) FROM calls c WHERE c.organization_id = o.id"
	    "  AND c.created_at > now() - interval '24 hours'),"
	    " " MS(
	        "(SELECT max(c.created_at) FROM calls c WHERE c.organization_id = o.id)") " AS "
	                                                                                  "last "
	                                                                                  "FROM "
	                                                                                  "organiza"
	                                                                                  "tions o "
	                                                                                  "ORDER "
	                                                                                  "BY last "
	                                                                                  "DESC "
	                                                                                  "NULLS "
	                                                                                  "LAST, "
	                                                                                  "o.id "
	                                                                                  "LIMIT "
	                                                                                  "$1",
	    1, p, err, errlen);
	if (r == NULL)
		return NULL;
	out = json_array();
	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
		    out, json_pack("{s:s, s:s?, s:I, s:I, s:o}", "id", cell(r, i, 0), "name",
		                   cell(r, i, 1), "calls_1h", cell_ll(r, i, 2), "calls_24h",
		                   cell_ll(r, i, 3), "last_call", iso(cell_ll(r, i, 4))));
	PQclear(r);
	return out;
}

static json_t *read_pg(struct status *s, char *err, size_t errlen)
{
	json_t *unrouted, *orgs;

	if (pg_of(s, err, errlen) == NULL)
		return NULL;
	unrouted = read_unrouted(s, err, errlen);
	orgs = unrouted ? read_orgs(s, err, errlen) : NULL;
	if (orgs == NULL) {
		json_decref(unrouted);
		return NULL;
	}
	return json_pack("{s:o, s:o}", "unrouted", unrouted, "organizations", orgs);
}

/* ---- The snapshot ---- */

/* Age in seconds of the oldest parked message: counted from its time, so that it keeps
 * growing while PostgreSQL cannot be read. */
static long long unrouted_age(const struct status *s, long long now)
{
	if (s->unrouted < 0)
		return -1;
	return s->unrouted > 0 && s->unrouted_oldest > 0 ? (now - s->unrouted_oldest) / 1000 : 0;
}

static void take(struct status *s)
{
	long long now = util_now_ms();
	char rerr[256] = "", perr[256] = "";
	json_t *redis = read_redis(s, now, rerr, sizeof(rerr));
	json_t *pg = read_pg(s, perr, sizeof(perr)), *health, *unrouted;

	if (redis == NULL)
		s->lag = s->pending = -1;
	if (pg != NULL) {
		json_decref(s->pg_part);
		s->pg_part = pg;
		s->pg_as_of = now;
	}
	/* With shards, some may be read while another cannot: Redis is then not healthy. */
	health = json_pack("{s:b, s:s?, s:b, s:s?, s:o}", "redis", rerr[0] == '\0', "redis_error",
	                   rerr[0] ? rerr : NULL, "postgres", pg != NULL, "postgres_error",
	                   pg ? NULL : perr, "ingest",
	                   redis ? json_incref(json_object_get(redis, "ingest")) : json_array());
	json_decref(s->snap);
	s->snap = json_pack("{s:o, s:s, s:I, s:o}", "generated_at", iso(now), "consumer",
	                    s->cfg->consumer, "claim_idle_seconds",
	                    (json_int_t)(s->cfg->claim_idle_ms / 1000), "health", health);
	if (redis != NULL) {
		json_object_set(s->snap, "stream", json_object_get(redis, "stream"));
		json_object_set(s->snap, "dead_letters", json_object_get(redis, "dead_letters"));
		json_object_set(s->snap, "filed", json_object_get(redis, "filed"));
	}
	if (s->pg_part != NULL) {
		/* While PostgreSQL is down these are the last read, with the time they are from. */
		unrouted = json_deep_copy(json_object_get(s->pg_part, "unrouted"));
		json_object_set_new(unrouted, "oldest_age_seconds", count(unrouted_age(s, now)));
		json_object_set_new(unrouted, "as_of", iso(s->pg_as_of));
		json_object_set_new(s->snap, "unrouted", unrouted);
		json_object_set(s->snap, "organizations",
		                json_object_get(s->pg_part, "organizations"));
		json_object_set_new(s->snap, "postgres_as_of", iso(s->pg_as_of));
	}
	json_decref(redis);
	s->taken_mono = util_mono_ms();
}

/* Takes a new snapshot when the last one is older than STATUS_CACHE_MS. Hold the lock. */
static void fresh(struct status *s)
{
	if (s->snap == NULL || util_mono_ms() - s->taken_mono >= STATUS_CACHE_MS)
		take(s);
}

void status_gauges(struct status *s, struct status_gauges *g)
{
	pthread_mutex_lock(&s->lock);
	fresh(s);
	g->lag = s->lag;
	g->pending = s->pending;
	g->unrouted = s->unrouted;
	g->unrouted_age_s = unrouted_age(s, util_now_ms());
	pthread_mutex_unlock(&s->lock);
}

char *status_json(struct status *s)
{
	char *out;

	pthread_mutex_lock(&s->lock);
	fresh(s);
	out = json_dumps(s->snap, JSON_COMPACT);
	pthread_mutex_unlock(&s->lock);
	return out;
}

/* ---- One call ---- */

const char *status_mask_phone(const char *number, char *buf, size_t size)
{
	size_t n = strlen(number), digits = 0, o = 0;

	for (size_t i = n; i > 0; i--)
		digits += number[i - 1] >= '0' && number[i - 1] <= '9';
	for (size_t i = 0, seen = 0; i < n && o + 1 < size; i++) {
		int digit = number[i] >= '0' && number[i] <= '9';

		seen += digit;
		buf[o++] = digit && seen + 4 <= digits ? '*' : number[i];
	}
	buf[o] = '\0';
	return buf;
}

static json_t *call_row(const PGresult *r)
{
	char masked[64];
	const char *num = cell(r, 0, 5);

	return json_pack(
	    "{s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:o, s:o, s:o, s:s?, s:o,"
	    " s:s?, s:o, s:o}",
	    "id", cell(r, 0, 0), "organization_id", cell(r, 0, 1), "routed_by", cell(r, 0, 2),
	    "call_type", cell(r, 0, 3), "status", cell(r, 0, 4), "customer_number",
	    num ? status_mask_phone(num, masked, sizeof(masked)) : NULL, "phone_number_id",
	    cell(r, 0, 6), "assistant_id", cell(r, 0, 7), "started_at", iso(cell_ll(r, 0, 8)),
	    "ended_at", iso(cell_ll(r, 0, 9)), "duration_seconds", cell_num(r, 0, 10),
	    "ended_reason", cell(r, 0, 11), "cost", cell_num(r, 0, 12), "success_evaluation",
	    cell(r, 0, 13), "created_at", iso(cell_ll(r, 0, 14)), "updated_at",
	    iso(cell_ll(r, 0, 15)));
}

static json_t *call_events(const PGresult *r)
{
	json_t *out = json_array();

	for (int i = 0; i < PQntuples(r); i++)
		json_array_append_new(
		    out, json_pack("{s:s, s:s?, s:o, s:o, s:s, s:s?, s:s?}", "type", cell(r, i, 0),
		                   "status", cell(r, i, 1), "occurred_at", iso(cell_ll(r, i, 2)),
		                   "received_at", iso(cell_ll(r, i, 3)), "stream_id", cell(r, i, 4),
		                   "request_id", cell(r, i, 5), "source", cell(r, i, 6)));
	return out;
}

/* Reads the call whose id, or one of whose events' request id, is id. Returns 200, 404, or
 * 503 with err set. */
static int read_call(struct status *s, const char *id, json_t **doc, char *err, size_t errlen)
{
	char lim[16];
	const char *p[2] = {id, lim};
	PGresult *c, *e;

	snprintf(lim, sizeof(lim), "%d", STATUS_MAX_EVENTS);
	c = pq(
	    s,
	    "SELECT vapi_call_id, organization_id, routed_by, call_type, status, customer_number,"
	    " phone_number_id, assistant_id, " MS("started_at") ", " MS(
	        "ended_at") ","
	                    " duration_seconds, ended_reason, cost, success_evaluation, " MS(
	                        "created_at") ", " MS("updated_at") " FROM calls WHERE "
	                                                            "vapi_call_id = $1 OR "
	                                                            "vapi_call_id ="
	                                                            " (SELECT vapi_call_id FROM "
	                                                            "call_events WHERE request_id "
	                                                            "= $1 LIMIT 1)"
	                                                            " ORDER BY vapi_call_id = $1 "
	                                                            "DESC LIMIT 1",
	    1, p, err, errlen);
	if (c == NULL)
		return 503;
	if (PQntuples(c) == 0) {
		PQclear(c);
		return 404;
	}
	p[0] = cell(c, 0, 0);
	e = pq(s,
	       "SELECT type, status, " MS("occurred_at") ", " MS(
	           "received_at") ", stream_id,"
	                          " request_id, source FROM call_events WHERE vapi_call_id = $1"
	                          " ORDER BY occurred_at NULLS LAST, id LIMIT $2",
	       2, p, err, errlen);
	if (e == NULL) {
		PQclear(c);
		return 503;
	}
	*doc = json_pack("{s:o, s:o}", "call", call_row(c), "events", call_events(e));
	PQclear(c);
	PQclear(e);
	return 200;
}

int status_call_json(struct status *s, const char *id, char **out)
{
	char err[256] = "";
	json_t *doc = NULL;
	int code = 503;

	pthread_mutex_lock(&s->lock);
	if (pg_of(s, err, sizeof(err)) != NULL)
		code = read_call(s, id, &doc, err, sizeof(err));
	pthread_mutex_unlock(&s->lock);
	if (code == 404)
		doc = json_pack("{s:s, s:s}", "error", "no call with that id or request id", "id",
		                id);
	else if (code == 503)
		doc = json_pack("{s:s, s:s}", "error", "PostgreSQL cannot be read", "reason", err);
	*out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return code;
}
