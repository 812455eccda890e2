/* Redis first, the spool when Redis cannot take it, and the thread that re-drives the spool. */
#include "enqueue.h"

#include "log.h"
#include "metrics.h"
#include "redisconn.h"
#include "spool.h"
#include "stream.h"
#include "util.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* After a failed connect, callers go straight to the spool for this long instead of each
 * waiting for its own connect to fail; the re-drive thread closes the breaker as soon as
 * Redis answers. */
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

struct enqueuer {
	const struct cfg *cfg;
	struct redis_addr addr;
	struct spool *spool;
	pthread_t redrive;
	int redrive_started;
	int redrive_probe;    /* a new connection, or the last batch was refused: send one entry */
	int redrive_wait_aof; /* INGEST_WAIT_AOF, and the re-drive's Redis has WAITAOF */
	volatile int stop;
	pthread_mutex_t jobs_lock;
	pthread_cond_t jobs_cv;
	struct spool_job *jobs, *jobs_tail; /* waiting for a writer */
	int writers_stop;
	pthread_t writers[ENQ_SPOOL_WRITERS];
	int nwriters;
	_Atomic int64_t breaker_until; /* monotonic ms; callers skip Redis before it */
	_Atomic int spool_refused;     /* a request found the spool full; cleared as it drains */
	char instance[300];            /* this ingest's field in STREAM_INGEST_KEY_FMT */
	pthread_mutex_t episode_lock;  /* guards the three below */
	int spooling;                  /* webhooks went to the spool since it was last empty */
	int64_t next_spool_log;        /* monotonic ms */
	long long episode_spooled;     /* entries spooled since spooling began */
	int64_t next_publish;          /* monotonic ms */
	int64_t next_prune;            /* monotonic ms: when stale instances are next dropped */
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
                    "1 while Redis takes entries, 0 while they go to the spool", 0},
    [E_DEGRADED] = {"switchboard_ingest_degraded", "", "gauge",
                    "1 while webhooks are spooled or re-driven (see /readyz's reason)", 0},
};

/* While spooling, a line says where the spool stands this often. */
#define ENQ_SPOOL_LOG_MS 60000

/* Any failure marks Redis down at once; only the re-drive thread's PING marks it up. */
static void redis_failed(struct enqueuer *q)
{
	metric_add(&q->m[E_REDIS_ERR], 1);
	metric_set(&q->m[E_REDIS_UP], 0);
	atomic_store(&q->breaker_until, util_mono_ms() + ENQ_BREAKER_MS);
}

static redisContext *connect_redis(struct enqueuer *q, char *err, size_t errlen)
{
	redisContext *c = redisconn_open(&q->addr, (int)q->cfg->redis_timeout_ms, err, errlen);

	if (c == NULL)
		redis_failed(q);
	return c;
}

int enqueuer_breaker_open(struct enqueuer *q)
{
	return util_mono_ms() < atomic_load(&q->breaker_until);
}

redisContext *enqueuer_connect(struct enqueuer *q)
{
	char err[256];
	redisContext *c;

	if (enqueuer_breaker_open(q))
		return NULL;
	c = connect_redis(q, err, sizeof(err));
	if (c == NULL)
		log_error("redis: %s; requests go to the spool", err);
	return c;
}

void enqueuer_redis_failed(struct enqueuer *q, const char *rid, const char *why)
{
	redis_failed(q);
	log_msg(LOGL_ERROR, rid ? "request_id" : NULL, rid, "redis: %s", why);
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
		    q->cfg->spool_dir, q->cfg->stream);
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
		         q->cfg->stream);
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
	redisContext *redis;
	struct stream_zbuf z;
	int demoted; /* a reply said this server is no longer the master */
};

/* Reads the reply to a wait sent after a batch (WAITAOF, or WAIT for replicas when
 * replicas > 0): whether it confirms the batch. */
static int redrive_wait_ok(redisContext *c, int replicas)
{
	redisReply *r;
	int ok;

	if (redisGetReply(c, (void **)&r) != REDIS_OK) {
		log_warn("spool re-drive stopped: %s", c->errstr);
		return 0;
	}
	ok = replicas > 0 ? redisconn_wait_reached(r, replicas) : redisconn_waitaof_synced(r);
	if (!ok)
		log_warn("spool re-drive stopped: %s: %s; the batch stays in the spool",
		         replicas > 0 ? "WAIT" : "WAITAOF",
		         r->type == REDIS_REPLY_ERROR ? r->str
		         : replicas > 0               ? "too few replicas in time"
		                                      : "not on disk in time");
	freeReplyObject(r);
	return ok;
}

/* Reads the replies to n pipelined XADDs (and the waits after them): how many, from the
 * first, Redis holds (on disk with WAITAOF, on the replicas with INGEST_WAIT_REPLICAS). A
 * reply saying this server is no longer the master marks the context failed, so the next
 * pass connects anew (through the sentinels). */
static int redrive_replies(struct redrive_ctx *rc, int n)
{
	redisContext *c = rc->redis;
	int ok = 0, waits = rc->q->redrive_wait_aof || rc->q->cfg->wait_replicas > 0;
	redisReply *r;

	for (int i = 0; i < n; i++) {
		if (redisGetReply(c, (void **)&r) != REDIS_OK) {
			log_warn("spool re-drive stopped: %s", c->errstr);
			return waits ? 0 : ok;
		}
		if (ok == i && r->type == REDIS_REPLY_STRING)
			ok++;
		else if (ok == i)
			log_warn("spool re-drive stopped: XADD %s: %s", rc->q->cfg->stream,
			         r->type == REDIS_REPLY_ERROR ? r->str : "odd reply");
		if (redisconn_demoted(r))
			rc->demoted = 1;
		freeReplyObject(r);
	}
	if (rc->q->redrive_wait_aof && !redrive_wait_ok(c, 0))
		ok = 0;
	if (rc->q->cfg->wait_replicas > 0 && !redrive_wait_ok(c, (int)rc->q->cfg->wait_replicas))
		ok = 0;
	return ok;
}

/* Sends recs[0..n) as pipelined XADDs in one write (with the waits after them when in force)
 * and returns how many, from the first, Redis holds. */
static int redrive_send(struct redrive_ctx *rc, const struct spool_rec *recs, int n)
{
	int timeout = (int)rc->q->cfg->redis_timeout_ms;

	for (int i = 0; i < n; i++) {
		struct stream_new e = {recs[i].body,       recs[i].body_len, recs[i].received_at,
		                       recs[i].request_id, "spool",          NULL};

		enqueuer_encode(rc->q, &rc->z, &e);
		stream_xadd_append(rc->redis, rc->q->cfg->stream, &e);
	}
	if (rc->q->redrive_wait_aof)
		redisconn_append_waitaof(rc->redis, timeout);
	if (rc->q->cfg->wait_replicas > 0)
		redisconn_append_wait(rc->redis, (int)rc->q->cfg->wait_replicas, timeout);
	return redrive_replies(rc, n);
}

/* One batch of spooled records, pipelined (and with WAITAOF, one fsync wait after them), so
 * a backlog moves at Redis's pace, not one round trip (and one append-only file fsync) per
 * record. Returns how many, from the first, Redis holds. An XADD that Redis took after a
 * refused one (a Redis that finished loading its data mid-batch), or before a WAITAOF that
 * failed, stays in the spool too and is re-driven again: the workers' writes are
 * idempotent. To keep such copies few (and the order), on a new connection and after a
 * refused batch the first entry goes alone until Redis takes one. */
static int redrive_batch(void *arg, const struct spool_rec *recs, int n)
{
	struct redrive_ctx *rc = arg;
	int ok, first = 0;

	if (rc->q->redrive_probe) {
		if (redrive_send(rc, recs, 1) != 1)
			return 0;
		first = 1;
	}
	if (first == n)
		return n;
	ok = redrive_send(rc, recs + first, n - first);
	rc->q->redrive_probe = ok < n - first;
	return first + ok;
}

static int ping(redisContext *c)
{
	const char *argv[] = {"PING"};
	redisReply *r = redisconn_cmdv(c, 1, argv);
	int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

	freeReplyObject(r);
	return ok;
}

/* Publishes the spool's size for the status page once a second (STREAM_INGEST_KEY_FMT),
 * and drops the fields of instances not heard of for a day. */
static void publish(struct enqueuer *q, redisContext *redis)
{
	int64_t now = util_now_ms(), mono = util_mono_ms();
	long long bytes, entries;
	char key[300], val[80];
	redisReply *r;

	if (mono < q->next_publish)
		return;
	q->next_publish = mono + 1000;
	entries = spool_entries(q->spool, &bytes);
	snprintf(key, sizeof(key), STREAM_INGEST_KEY_FMT, q->cfg->stream);
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

/* One pass: reach Redis (closing the breaker), then move what the spool holds. */
static void redrive_pass(struct enqueuer *q, redisContext **redis)
{
	struct redrive_ctx ctx = {q, NULL, {NULL, 0}, 0};
	long long moved;
	char err[256];

	if (*redis != NULL && !ping(*redis)) {
		redisFree(*redis);
		*redis = NULL;
	}
	if (*redis == NULL) {
		/* A Redis that just came back may still be loading its data. */
		*redis = connect_redis(q, err, sizeof(err));
		q->redrive_probe = 1;
		q->redrive_wait_aof =
		    *redis != NULL && q->cfg->wait_aof && redisconn_has_waitaof(*redis);
	}
	if (*redis == NULL) {
		metric_set(&q->m[E_REDIS_UP], 0);
		return;
	}
	atomic_store(&q->breaker_until, 0);
	metric_set(&q->m[E_REDIS_UP], 1);
	publish(q, *redis);
	if (spool_entries(q->spool, NULL) == 0 || (*redis)->err)
		return;
	ctx.redis = *redis;
	if (spool_drain(q->spool, redrive_batch, &ctx, &moved, err, sizeof(err)) != 0)
		log_error("spool: %s", err);
	stream_zbuf_free(&ctx.z);
	if (moved > 0) {
		atomic_store(&q->spool_refused, 0);
		metric_add(&q->m[E_REDRIVEN], moved);
		log_info("re-drove %lld spooled entries into %s; %lld left", moved, q->cfg->stream,
		         spool_entries(q->spool, NULL));
		if (spool_entries(q->spool, NULL) == 0)
			spool_emptied(q);
	}
	if ((*redis)->err || ctx.demoted) {
		redisFree(*redis);
		*redis = NULL;
	}
}

static void *redrive_main(void *arg)
{
	struct enqueuer *q = arg;
	redisContext *redis = NULL;

	while (!q->stop) {
		redrive_pass(q, &redis);
		util_sleep_ms(ENQ_REDRIVE_MS, &q->stop);
	}
	redisFree(redis);
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
	free(q);
}

int enqueuer_ready(struct enqueuer *q)
{
	return atomic_load(&q->m[E_REDIS_UP].value) || !atomic_load(&q->spool_refused);
}

int enqueuer_degraded(struct enqueuer *q, char *why, size_t whylen)
{
	long long entries = spool_entries(q->spool, NULL);

	if (!atomic_load(&q->m[E_REDIS_UP].value))
		snprintf(why, whylen, "Redis unreachable: webhooks are spooled (%lld in the spool)",
		         entries);
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
	metrics_write(fp, q->m, E_COUNT, NULL);
}
