/* Redis first, the spool when Redis cannot take it, and the thread that re-drives the spool. */
#include "enqueue.h"

#include "log.h"
#include "metrics.h"
#include "redisconn.h"
#include "shards.h"
#include "spool.h"
#include "stream.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* After a failed connect or XADD on a shard, callers skip that shard (for the next one, or
 * the spool when none is left) for this long instead of each waiting for its own connect to
 * fail; the re-drive thread closes the shard's breaker as soon as its Redis answers. */
#define ENQ_BREAKER_MS 1000
/* The re-drive thread looks at the spool this often. */
#define ENQ_REDRIVE_MS 200
/* Threads writing the spool while Redis is down: each waits for the disk, and the waits of
 * concurrent appends share one fdatasync. */
#define ENQ_SPOOL_WRITERS 4

enum {
	E_SPOOLED,
	E_REDRIVEN,
	E_SPOOL_FULL,
	E_SPOOL_ERR,
	E_REDIS_ERR,
	E_SPOOL_ENTRIES,
	E_SPOOL_BYTES,
	E_REDIS_UP,
	E_DEGRADED,
	E_COUNT
};

/* A body waiting for a spool writer. */
struct spool_job {
	const char *body; /* borrowed until done is called */
	size_t len;
	int64_t received_at;
	char rid[80];
	enq_spooled_fn done;
	void *tag;
	struct spool_job *next;
};

/* One stream shard: its breaker, shared by every loop, and the re-drive's connection to it. */
struct enq_shard {
	char stream[SHARDS_NAME];      /* shards_stream() */
	_Atomic int64_t breaker_until; /* monotonic ms; callers skip this shard before it */
	_Atomic int up;                /* its Redis answered the re-drive's last PING */
	char labels[32];               /* {shard="i"} of its XADD counter */
	redisContext *redis;           /* the re-drive's connection, or NULL */
	int probe;    /* a new connection, or the last batch was refused: send one entry */
	int refused;  /* failed in this re-drive pass: skipped until the next */
	int wait_aof; /* INGEST_WAIT_AOF, and this Redis has WAITAOF */
	int sent;     /* records sent to it in this round */
};

struct enqueuer {
	const struct cfg *cfg;
	struct redis_addr addr;
	struct spool *spool;
	struct enq_shard *sh; /* SWITCHBOARD_SHARDS of them */
	int nsh;
	struct metric *xadds;           /* a switchboard_ingest_xadd_total row per shard */
	char streams[SHARDS_NAME + 16]; /* the stream, or the shards' names, for log lines */
	int rr;                         /* the re-drive's next shard */
	pthread_t redrive;
	int redrive_started;
	volatile int stop;
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cv;
	struct spool_job *jobs, *jobs_tail; /* waiting for a writer */
	int writers_stop;
	pthread_t writers[ENQ_SPOOL_WRITERS];
	int nwriters;
	_Atomic int spool_refused;    /* a request found the spool full; cleared as it drains */
	char instance[300];           /* this ingest's field in STREAM_INGEST_KEY_FMT */
	pthread_mutex_t episode_lock; /* guards the three below */
	int spooling;                 /* webhooks went to the spool since it was last empty */
	int64_t next_spool_log;       /* monotonic ms */
	long long episode_spooled;    /* entries spooled since spooling began */
	int64_t next_publish;         /* monotonic ms */
	int64_t next_prune;           /* monotonic ms: when stale instances are next dropped */
	struct metric m[E_COUNT];
};

static const struct metric metric_defs[E_COUNT] = {
    [E_SPOOLED] = {"switchboard_ingest_spooled_total", "", "counter",
                   "Requests kept in the local spool because Redis could not take them", 0},
    [E_REDRIVEN] = {"switchboard_ingest_redriven_total", "", "counter",
                    "Spooled entries moved into the stream", 0},
    [E_SPOOL_FULL] = {"switchboard_ingest_spool_full_total", "", "counter",
                      "Requests refused because Redis was down and the spool full", 0},
    [E_SPOOL_ERR] = {"switchboard_ingest_spool_errors_total", "", "counter", "Failed spool writes",
                     0},
    [E_REDIS_ERR] = {"switchboard_ingest_redis_errors_total", "", "counter",
                     "Failed Redis connects and commands", 0},
    [E_SPOOL_ENTRIES] = {"switchboard_ingest_spool_entries", "", "gauge",
                         "Entries waiting in the spool", 0},
    [E_SPOOL_BYTES] = {"switchboard_ingest_spool_bytes", "", "gauge", "Size of the spool", 0},
    [E_REDIS_UP] = {"switchboard_ingest_redis_up", "", "gauge",
                    "1 while Redis (a shard at least) takes entries, 0 while they go to the spool",
                    0},
    [E_DEGRADED] = {"switchboard_ingest_degraded", "", "gauge",
                    "1 while webhooks are spooled or re-driven (see /readyz's reason)", 0},
};

/* While spooling, a line says where the spool stands this often. */
#define ENQ_SPOOL_LOG_MS 60000

/* Any failure marks the shard down at once; only the re-drive thread's PING marks it up. */
static void redis_failed(struct enqueuer *q, int shard)
{
	metric_add(&q->m[E_REDIS_ERR], 1);
	atomic_store(&q->sh[shard].up, 0);
	atomic_store(&q->sh[shard].breaker_until, util_mono_ms() + ENQ_BREAKER_MS);
}

/* Whether some shard's Redis takes entries. */
static int redis_up(struct enqueuer *q, int *down)
{
	int n = 0;

	for (int i = 0; i < q->nsh; i++)
		n += atomic_load(&q->sh[i].up) != 0;
	if (down != NULL)
		*down = q->nsh - n;
	return n > 0;
}

/* "redis" and, with several shards, which one: the prefix of the log lines about it. */
static void redis_name(const struct enqueuer *q, int shard, char *out, size_t size)
{
	if (q->nsh > 1)
		snprintf(out, size, "redis (%s)", q->sh[shard].stream);
	else
		snprintf(out, size, "redis");
}

static redisContext *connect_redis(struct enqueuer *q, int shard, char *err, size_t errlen)
{
	redisContext *c = redisconn_open_key(&q->addr, q->sh[shard].stream,
	                                     (int)q->cfg->redis_timeout_ms, err, errlen);

	if (c == NULL)
		redis_failed(q, shard);
	return c;
}

int enqueuer_shards(const struct enqueuer *q)
{
	return q->nsh;
}

const char *enqueuer_stream(const struct enqueuer *q, int shard)
{
	return q->sh[shard].stream;
}

int enqueuer_breaker_open(struct enqueuer *q, int shard)
{
	return util_mono_ms() < atomic_load(&q->sh[shard].breaker_until);
}

redisContext *enqueuer_connect(struct enqueuer *q, int shard)
{
	char err[256], who[SHARDS_NAME + 16];
	redisContext *c;

	if (enqueuer_breaker_open(q, shard))
		return NULL;
	c = connect_redis(q, shard, err, sizeof(err));
	if (c == NULL) {
		redis_name(q, shard, who, sizeof(who));
		log_error("%s: %s; requests go to %s", who, err,
		          q->nsh > 1 ? "the other shards" : "the spool");
	}
	return c;
}

void enqueuer_redis_failed(struct enqueuer *q, int shard, const char *rid, const char *why)
{
	char who[SHARDS_NAME + 16];

	redis_failed(q, shard);
	redis_name(q, shard, who, sizeof(who));
	log_msg(LOGL_ERROR, rid ? "request_id" : NULL, rid, "%s: %s", who, why);
}

void enqueuer_xadded(struct enqueuer *q, int shard, int n)
{
	metric_add(&q->xadds[shard], n);
}

void enqueuer_encode(const struct enqueuer *q, struct stream_zbuf *z, struct stream_new *e)
{
	size_t n;

	if (q->cfg->compress_min == 0 || (long long)e->body_len < q->cfg->compress_min)
		return;
	n = stream_compress(z, e->body, e->body_len);
	if (n == 0)
		return;
	e->body = z->buf;
	e->body_len = n;
	e->enc = "zstd";
}

/* Says, once when it starts and then once a minute, that webhooks go to the spool. */
static void spool_started(struct enqueuer *q)
{
	int64_t now = util_mono_ms();
	long long bytes, entries;
	int first;

	pthread_mutex_lock(&q->episode_lock);
	first = !q->spooling;
	q->spooling = 1;
	q->episode_spooled++;
	if (!first && now < q->next_spool_log) {
		pthread_mutex_unlock(&q->episode_lock);
		return;
	}
	q->next_spool_log = now + ENQ_SPOOL_LOG_MS;
	pthread_mutex_unlock(&q->episode_lock);
	entries = spool_entries(q->spool, &bytes);
	if (first)
		log_warn(
		    "redis unreachable: webhooks go to the spool in %s (answered 200; re-driven "
		    "into %s when Redis is back)",
		    q->cfg->spool_dir, q->streams);
	else
		log_warn("still spooling: %lld entries, %lld bytes in the spool", entries, bytes);
}

/* Says, once the re-drive has emptied the spool, how much went through it. */
static void spool_emptied(struct enqueuer *q)
{
	long long n;

	pthread_mutex_lock(&q->episode_lock);
	n = q->spooling ? q->episode_spooled : -1;
	q->spooling = 0;
	q->episode_spooled = 0;
	pthread_mutex_unlock(&q->episode_lock);
	if (n >= 0)
		log_info("spool empty again: %lld webhooks spooled meanwhile are in %s", n,
		         q->streams);
}

/* Appends one job's body to the spool and waits for the disk. */
static enum enq_result spool_one(struct enqueuer *q, const struct spool_job *j)
{
	char err[256];
	int rc = spool_append(q->spool, j->body, j->len, j->received_at, j->rid, err, sizeof(err));

	if (rc == -2) {
		atomic_store(&q->spool_refused, 1);
		metric_add(&q->m[E_SPOOL_FULL], 1);
		log_msg(LOGL_ERROR, "request_id", j->rid,
		        "Redis unavailable and the spool is full "
		        "(INGEST_SPOOL_MAX): answering 503");
		return ENQ_FULL;
	}
	if (rc != 0) {
		metric_add(&q->m[E_SPOOL_ERR], 1);
		log_msg(LOGL_ERROR, "request_id", j->rid,
		        "Redis unavailable and spool failed: %s; answering 503", err);
		return ENQ_FAILED;
	}
	metric_add(&q->m[E_SPOOLED], 1);
	spool_started(q);
	return ENQ_SPOOLED;
}

static void *writer_main(void *arg)
{
	struct enqueuer *q = arg;

	for (;;) {
		struct spool_job *j;

		pthread_mutex_lock(&q->jobs_lock);
		while (q->jobs == NULL && !q->writers_stop)
			pthread_cond_wait(&q->jobs_cv, &q->jobs_lock);
		j = q->jobs;
		if (j != NULL && (q->jobs = j->next) == NULL)
			q->jobs_tail = NULL;
		pthread_mutex_unlock(&q->jobs_lock);
		if (j == NULL)
			return NULL; /* stopping, and nothing left */
		j->done(j->tag, spool_one(q, j));
		free(j);
	}
}

void enqueuer_spool(struct enqueuer *q, const char *body, size_t len, int64_t received_at,
                    const char *rid, enq_spooled_fn done, void *tag)
{
	struct spool_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		metric_add(&q->m[E_SPOOL_ERR], 1);
		done(tag, ENQ_FAILED);
		return;
	}
	*j = (struct spool_job){body, len, received_at, "", done, tag, NULL};
	snprintf(j->rid, sizeof(j->rid), "%s", rid);
	pthread_mutex_lock(&q->jobs_lock);
	if (q->jobs_tail != NULL)
		q->jobs_tail->next = j;
	else
		q->jobs = j;
	q->jobs_tail = j;
	pthread_cond_signal(&q->jobs_cv);
	pthread_mutex_unlock(&q->jobs_lock);
}

struct redrive_ctx {
	struct enqueuer *q;
	struct stream_zbuf z;
	signed short to[SPOOL_DRAIN_BATCH];    /* per record: the shard it went to this round, -1 */
	unsigned char held[SPOOL_DRAIN_BATCH]; /* per record: a shard holds it */
};

/* Reads the reply to a wait sent after a batch (WAITAOF, or WAIT for replicas when
 * replicas > 0): whether it confirms the batch. */
static int redrive_wait_ok(redisContext *c, const char *stream, int replicas)
{
	redisReply *r;
	int ok;

	if (redisGetReply(c, (void **)&r) != REDIS_OK) {
		log_warn("spool re-drive stopped: %s: %s", stream, c->errstr);
		return 0;
	}
	ok = replicas > 0 ? redisconn_wait_reached(r, replicas) : redisconn_waitaof_synced(r);
	if (!ok)
		log_warn("spool re-drive stopped: %s: %s: %s; the batch stays in the spool", stream,
		         replicas > 0 ? "WAIT" : "WAITAOF",
		         r->type == REDIS_REPLY_ERROR ? r->str
		         : replicas > 0               ? "too few replicas in time"
		                                      : "not on disk in time");
	freeReplyObject(r);
	return ok;
}

/* Reads shard's replies to the XADDs of the records sent to it in this round (to[j] ==
 * shard) and to the waits after them, and marks in held[] the records it holds (on disk with
 * WAITAOF, on the replicas with INGEST_WAIT_REPLICAS). A refused XADD, a failed wait or a
 * lost connection leaves the shard out for the rest of the pass, its records for the others;
 * a connection that failed, or whose server is no longer the one to ask, is dropped so that
 * the next pass connects anew (through the sentinels, or the slot map). */
static void redrive_replies(struct redrive_ctx *rc, int shard, int n)
{
	struct enq_shard *s = &rc->q->sh[shard];
	int bad = 0, demoted = 0, waits_ok = 1, replicas = (int)rc->q->cfg->wait_replicas;
	redisReply *r;

	for (int j = 0; j < n; j++) {
		if (rc->to[j] != shard)
			continue;
		if (redisGetReply(s->redis, (void **)&r) != REDIS_OK) {
			log_warn("spool re-drive stopped: %s: %s", s->stream, s->redis->errstr);
			bad = 1;
			break;
		}
		if (r->type == REDIS_REPLY_STRING)
			rc->held[j] = 1;
		else if (!bad)
			log_warn("spool re-drive stopped: XADD %s: %s", s->stream,
			         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
		bad |= r->type != REDIS_REPLY_STRING;
		demoted |= redisconn_demoted(r);
		freeReplyObject(r);
	}
	/* Both waits' replies are read, so that the next batch's are its own; a connection lost
	 * before them confirms nothing. */
	if (s->wait_aof && (s->redis->err || !redrive_wait_ok(s->redis, s->stream, 0)))
		waits_ok = 0;
	if (replicas > 0 && (s->redis->err || !redrive_wait_ok(s->redis, s->stream, replicas)))
		waits_ok = 0;
	if (!waits_ok) {
		bad = 1;
		for (int j = 0; j < n; j++)
			if (rc->to[j] == shard)
				rc->held[j] = 0;
	}
	s->refused = bad;
	s->probe = bad;
	if (s->redis->err || demoted) {
		redisFree(s->redis);
		s->redis = NULL;
	}
}

/* The next shard, round-robin, that may take a record in this round: connected, not
 * refused in this pass, and not probing with a record already. -1 when none is left. */
static int redrive_next(struct enqueuer *q)
{
	for (int k = 0; k < q->nsh; k++) {
		struct enq_shard *s = &q->sh[q->rr];
		int i = q->rr;

		q->rr = q->rr + 1 == q->nsh ? 0 : q->rr + 1;
		if (s->redis != NULL && !s->redis->err && !s->refused && !(s->probe && s->sent > 0))
			return i;
	}
	return -1;
}

/* Sends each record of recs[0..n) that no shard holds yet to the next shard (round-robin)
 * as pipelined XADDs, with the waits in force after each shard's share; every shard's
 * commands leave before any reply is read, so that their round trips overlap. Returns how
 * many records were sent: 0 when every one is held, or no shard is left in this pass. */
static int redrive_round(struct redrive_ctx *rc, const struct spool_rec *recs, int n)
{
	struct enqueuer *q = rc->q;
	int timeout = (int)q->cfg->redis_timeout_ms, sent = 0;

	for (int i = 0; i < q->nsh; i++)
		q->sh[i].sent = 0;
	for (int j = 0; j < n; j++) {
		struct stream_new e = {recs[j].body,       recs[j].body_len, recs[j].received_at,
		                       recs[j].request_id, "spool",          NULL};
		int i = rc->held[j] ? -1 : redrive_next(q);

		rc->to[j] = (signed short)i;
		if (i < 0)
			continue;
		enqueuer_encode(q, &rc->z, &e);
		stream_xadd_append(q->sh[i].redis, q->sh[i].stream, &e);
		q->sh[i].sent++;
		sent++;
	}
	for (int i = 0; i < q->nsh; i++) {
		struct enq_shard *s = &q->sh[i];
		int done = 0;

		if (s->sent == 0)
			continue;
		if (s->wait_aof)
			redisconn_append_waitaof(s->redis, timeout);
		if (q->cfg->wait_replicas > 0)
			redisconn_append_wait(s->redis, (int)q->cfg->wait_replicas, timeout);
		while (!done && redisBufferWrite(s->redis, &done) == REDIS_OK)
			;
	}
	for (int i = 0; i < q->nsh; i++)
		if (q->sh[i].sent > 0)
			redrive_replies(rc, i, n);
	return sent;
}

/* One batch of spooled records, spread over the shards and pipelined (and with WAITAOF,
 * one fsync wait per shard after them), so a backlog moves at Redis's pace, not one round
 * trip (and one append-only file fsync) per record. The records a shard refuses go to the
 * others, round after round, until every one is held or no shard is left. Returns how many,
 * from the first, Redis holds. A record held after one no shard took, or sent before a
 * WAITAOF that failed, stays in the spool too and is re-driven again: the workers' writes are
 * idempotent. To keep such copies few, on a new connection and after a refused batch a
 * shard takes one record a round until it takes one. */
static int redrive_batch(void *arg, const struct spool_rec *recs, int n)
{
	struct redrive_ctx *rc = arg;
	int held = 0;

	memset(rc->held, 0, (size_t)n);
	while (redrive_round(rc, recs, n) > 0)
		;
	while (held < n && rc->held[held])
		held++;
	return held;
}

static int ping(redisContext *c)
{
	const char *argv[] = {"PING"};
	redisReply *r = redisconn_cmdv(c, 1, argv);
	int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

	freeReplyObject(r);
	return ok;
}

/* Publishes the spool's size for the status page once a second (STREAM_INGEST_KEY_FMT over
 * shard 0's stream, where the worker's status page reads it, whatever the shard count), and
 * drops the fields of instances not heard of for a day. */
static void publish(struct enqueuer *q, redisContext *redis)
{
	int64_t now = util_now_ms(), mono = util_mono_ms();
	long long bytes, entries;
	char key[SHARDS_NAME + 16], val[80];
	redisReply *r;

	if (mono < q->next_publish)
		return;
	q->next_publish = mono + 1000;
	entries = spool_entries(q->spool, &bytes);
	snprintf(key, sizeof(key), STREAM_INGEST_KEY_FMT, q->sh[0].stream);
	snprintf(val, sizeof(val), "%lld %lld %lld", entries, bytes, (long long)now);
	freeReplyObject(redisCommand(redis, "HSET %s %s %s", key, q->instance, val));
	if (mono < q->next_prune || (r = redisCommand(redis, "HGETALL %s", key)) == NULL)
		return;
	q->next_prune = mono + 60000;
	for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
		long long e, b, at;

		if (sscanf(r->element[i + 1]->str, "%lld %lld %lld", &e, &b, &at) == 3 &&
		    now - at > 86400000LL)
			freeReplyObject(redisCommand(redis, "HDEL %s %s", key, r->element[i]->str));
	}
	freeReplyObject(r);
}

/* Reaches shard i's Redis, closing its breaker when it answers. */
static void shard_check(struct enqueuer *q, int i)
{
	struct enq_shard *s = &q->sh[i];
	char err[256];

	s->refused = 0;
	if (s->redis != NULL && !ping(s->redis)) {
		redisFree(s->redis);
		s->redis = NULL;
	}
	if (s->redis == NULL) {
		/* A Redis that just came back may still be loading its data. */
		s->redis = connect_redis(q, i, err, sizeof(err));
		s->probe = 1;
		s->wait_aof =
		    s->redis != NULL && q->cfg->wait_aof && redisconn_has_waitaof(s->redis);
	}
	if (s->redis == NULL)
		return;
	atomic_store(&s->breaker_until, 0);
	atomic_store(&s->up, 1);
}

/* One pass: reach every shard (closing the breakers), then move what the spool holds. */
static void redrive_pass(struct enqueuer *q)
{
	struct redrive_ctx ctx = {.q = q};
	long long moved;
	char err[256];

	for (int i = 0; i < q->nsh; i++)
		shard_check(q, i);
	metric_set(&q->m[E_REDIS_UP], redis_up(q, NULL));
	if (q->sh[0].redis != NULL)
		publish(q, q->sh[0].redis);
	if (spool_entries(q->spool, NULL) == 0)
		return;
	if (spool_drain(q->spool, redrive_batch, &ctx, &moved, err, sizeof(err)) != 0)
		log_error("spool: %s", err);
	stream_zbuf_free(&ctx.z);
	if (moved > 0) {
		atomic_store(&q->spool_refused, 0);
		metric_add(&q->m[E_REDRIVEN], moved);
		log_info("re-drove %lld spooled entries into %s; %lld left", moved, q->streams,
		         spool_entries(q->spool, NULL));
		if (spool_entries(q->spool, NULL) == 0)
			spool_emptied(q);
	}
}

static void *redrive_main(void *arg)
{
	struct enqueuer *q = arg;

	while (!q->stop) {
		redrive_pass(q);
		util_sleep_ms(ENQ_REDRIVE_MS, &q->stop);
	}
	for (int i = 0; i < q->nsh; i++) {
		redisFree(q->sh[i].redis);
		q->sh[i].redis = NULL;
	}
	return NULL;
}

/* host:port of the listener, with this machine's name for a wildcard address. */
static void instance_name(const struct cfg *c, char *buf, size_t size)
{
	char host[256] = "";
	const char *colon = strrchr(c->listen, ':');

	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "ingest");
	host[sizeof(host) - 1] = '\0';
	snprintf(buf, size, "%s%s", host, colon != NULL ? colon : "");
}

/* The shards' streams, breakers and XADD counters. Returns 0, or -1 when out of memory. */
static int shards_init(struct enqueuer *q)
{
	q->nsh = (int)q->cfg->shards;
	q->sh = calloc((size_t)q->nsh, sizeof(*q->sh));
	q->xadds = calloc((size_t)q->nsh, sizeof(*q->xadds));
	if (q->sh == NULL || q->xadds == NULL)
		return -1;
	for (int i = 0; i < q->nsh; i++) {
		struct enq_shard *s = &q->sh[i];

		shards_stream(q->cfg, i, s->stream, sizeof(s->stream));
		snprintf(s->labels, sizeof(s->labels), "{shard=\"%d\"}", i);
		q->xadds[i] = (struct metric){"switchboard_ingest_xadd_total", s->labels, "counter",
		                              "Entries Redis confirmed, by stream shard", 0};
	}
	if (q->nsh > 1)
		snprintf(q->streams, sizeof(q->streams), "%s:{0..%d}", q->cfg->stream, q->nsh - 1);
	else
		snprintf(q->streams, sizeof(q->streams), "%s", q->sh[0].stream);
	return 0;
}

struct enqueuer *enqueuer_start(const struct cfg *c, char *err, size_t errlen)
{
	struct enqueuer *q = calloc(1, sizeof(*q));
	char why[256];

	if (q == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->cfg = c;
	memcpy(q->m, metric_defs, sizeof(q->m));
	instance_name(c, q->instance, sizeof(q->instance));
	pthread_mutex_init(&q->jobs_lock, NULL);
	pthread_mutex_init(&q->episode_lock, NULL);
	pthread_cond_init(&q->jobs_cv, NULL);
	if (cfg_redis_addr(c, &q->addr, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "%s", why);
		goto fail;
	}
	if (shards_init(q) != 0) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	q->spool = spool_open(c->spool_dir, c->spool_max, why, sizeof(why));
	if (q->spool == NULL) {
		snprintf(err, errlen, "INGEST_SPOOL_DIR %s: %s", c->spool_dir, why);
		goto fail;
	}
	if (spool_entries(q->spool, NULL) > 0)
		log_warn("spool holds %lld entries from an earlier run: re-driving them",
		         spool_entries(q->spool, NULL));
	for (; q->nwriters < ENQ_SPOOL_WRITERS; q->nwriters++)
		if (pthread_create(&q->writers[q->nwriters], NULL, writer_main, q) != 0) {
			snprintf(err, errlen, "cannot start the spool writer threads");
			goto fail;
		}
	if (pthread_create(&q->redrive, NULL, redrive_main, q) != 0) {
		snprintf(err, errlen, "cannot start the spool re-drive thread");
		goto fail;
	}
	q->redrive_started = 1;
	return q;
fail:
	enqueuer_stop(q);
	return NULL;
}

void enqueuer_stop(struct enqueuer *q)
{
	if (q == NULL)
		return;
	q->stop = 1;
	if (q->redrive_started)
		pthread_join(q->redrive, NULL);
	pthread_mutex_lock(&q->jobs_lock);
	q->writers_stop = 1; /* they finish the queued jobs first */
	pthread_cond_broadcast(&q->jobs_cv);
	pthread_mutex_unlock(&q->jobs_lock);
	for (int i = 0; i < q->nwriters; i++)
		pthread_join(q->writers[i], NULL);
	pthread_cond_destroy(&q->jobs_cv);
	pthread_mutex_destroy(&q->jobs_lock);
	pthread_mutex_destroy(&q->episode_lock);
	spool_close(q->spool);
	free(q->xadds);
	free(q->sh);
	free(q);
}

int enqueuer_ready(struct enqueuer *q)
{
	return redis_up(q, NULL) || !atomic_load(&q->spool_refused);
}

int enqueuer_degraded(struct enqueuer *q, char *why, size_t whylen)
{
	long long entries = spool_entries(q->spool, NULL);
	int down;

	if (!redis_up(q, &down))
		snprintf(why, whylen, "Redis unreachable: webhooks are spooled (%lld in the spool)",
		         entries);
	else if (down > 0)
		snprintf(
		    why, whylen,
		    "%d of %d Redis stream shards unreachable: their webhooks go to the others "
		    "(%lld in the spool)",
		    down, q->nsh, entries);
	else if (entries > 0)
		snprintf(why, whylen, "re-driving %lld spooled webhooks into Redis", entries);
	else
		return 0;
	return 1;
}

void enqueuer_metrics(struct enqueuer *q, FILE *fp)
{
	long long bytes, entries = spool_entries(q->spool, &bytes);
	char why[160];

	metric_set(&q->m[E_DEGRADED], enqueuer_degraded(q, why, sizeof(why)));
	metric_set(&q->m[E_SPOOL_ENTRIES], entries);
	metric_set(&q->m[E_SPOOL_BYTES], bytes);
	metric_set(&q->m[E_REDIS_UP], redis_up(q, NULL));
	metrics_write(fp, q->m, E_COUNT, NULL);
	metrics_write(fp, q->xadds, (size_t)q->nsh, NULL);
}
