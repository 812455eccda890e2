/* Redis first, the spool when Redis cannot take it, and the thread that re-drives the spool. */
#include "enqueue.h"

#include "log.h"
#include "metrics.h"
#include "redisconn.h"
#include "spool.h"
#include "stream.h"
#include "util.h"
#include "xbatch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* After a failed connect, callers go straight to the spool for this long instead of each
 * waiting for its own connect to fail; the re-drive thread closes the breaker as soon as
 * Redis answers. */
#define ENQ_BREAKER_MS 1000
/* The re-drive thread looks at the spool this often. */
#define ENQ_REDRIVE_MS 200

enum {
	E_SPOOLED,
	E_REDRIVEN,
	E_SPOOL_FULL,
	E_SPOOL_ERR,
	E_REDIS_ERR,
	E_SPOOL_ENTRIES,
	E_SPOOL_BYTES,
	E_REDIS_UP,
	E_COUNT
};

struct enqueuer {
	const struct cfg *cfg;
	struct redis_addr addr;
	struct spool *spool;
	struct xbatch *xb; /* the pipelined XADDs of all request threads */
	pthread_t redrive;
	int redrive_started;
	volatile int stop;
	_Atomic int64_t breaker_until; /* monotonic ms; callers skip Redis before it */
	_Atomic int spool_refused;     /* a request found the spool full; cleared as it drains */
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
};

/* Any failure marks Redis down at once; only the re-drive thread's PING marks it up. */
static void redis_failed(struct enqueuer *q)
{
	metric_add(&q->m[E_REDIS_ERR], 1);
	metric_set(&q->m[E_REDIS_UP], 0);
	atomic_store(&q->breaker_until, util_mono_ms() + ENQ_BREAKER_MS);
}

static void on_redis_down(void *arg)
{
	redis_failed(arg);
}

static redisContext *connect_redis(struct enqueuer *q, char *err, size_t errlen)
{
	redisContext *c = redisconn_open(&q->addr, (int)q->cfg->redis_timeout_ms, err, errlen);

	if (c == NULL)
		redis_failed(q);
	return c;
}

/* XADD through the batch thread, unless the breaker says Redis is down. */
static int put_redis(struct enqueuer *q, const struct stream_new *e, char *id, size_t idlen)
{
	char err[256];

	if (util_mono_ms() < atomic_load(&q->breaker_until))
		return -1;
	if (xbatch_add(q->xb, e, id, idlen, err, sizeof(err)) == 0)
		return 0;
	metric_add(&q->m[E_REDIS_ERR], 1);
	log_msg(LOGL_ERROR, "request_id", e->request_id, "redis: %s", err);
	return -1;
}

/* Bodies of at least INGEST_COMPRESS_MIN bytes go into the stream zstd-compressed: Redis
 * writes (AOF) and holds (retention) a quarter of the bytes. */
static void encode(const struct enqueuer *q, struct stream_zbuf *z, struct stream_new *e)
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

enum enq_result enqueuer_put(struct enqueuer *q, struct enq_conn *t, const char *body, size_t len,
                             const char *rid, char *id, size_t idlen)
{
	struct stream_new e = {body, len, util_now_ms(), rid, "http", NULL};
	char err[256];
	int rc;

	encode(q, &t->z, &e);
	if (put_redis(q, &e, id, idlen) == 0)
		return ENQ_REDIS;
	rc = spool_append(q->spool, body, len, e.received_at, rid, err, sizeof(err));
	if (rc == -2) {
		atomic_store(&q->spool_refused, 1);
		metric_add(&q->m[E_SPOOL_FULL], 1);
		log_msg(LOGL_ERROR, "request_id", rid,
		        "Redis unavailable and the spool is full "
		        "(INGEST_SPOOL_MAX): answering 503");
		return ENQ_FULL;
	}
	if (rc != 0) {
		metric_add(&q->m[E_SPOOL_ERR], 1);
		log_msg(LOGL_ERROR, "request_id", rid,
		        "Redis unavailable and spool failed: %s; "
		        "answering 503",
		        err);
		return ENQ_FAILED;
	}
	metric_add(&q->m[E_SPOOLED], 1);
	snprintf(id, idlen, "spool");
	return ENQ_SPOOLED;
}

void enq_conn_close(struct enq_conn *t)
{
	stream_zbuf_free(&t->z);
}

struct redrive_ctx {
	struct enqueuer *q;
	redisContext *redis;
	struct stream_zbuf z;
};

static int redrive_one(void *arg, const struct spool_rec *r)
{
	struct redrive_ctx *rc = arg;
	struct stream_new e = {r->body, r->body_len, r->received_at, r->request_id, "spool", NULL};
	char id[64], err[256];

	encode(rc->q, &rc->z, &e);

	if (stream_xadd(rc->redis, rc->q->cfg->stream, &e, id, sizeof(id), err, sizeof(err)) != 0) {
		log_warn("spool re-drive stopped: %s", err);
		return -1;
	}
	return 0;
}

static int ping(redisContext *c)
{
	const char *argv[] = {"PING"};
	redisReply *r = redisconn_cmdv(c, 1, argv);
	int ok = r != NULL && r->type == REDIS_REPLY_STATUS;

	freeReplyObject(r);
	return ok;
}

/* One pass: reach Redis (closing the breaker), then move what the spool holds. */
static void redrive_pass(struct enqueuer *q, redisContext **redis)
{
	struct redrive_ctx ctx = {q, NULL, {NULL, 0}};
	long long moved;
	char err[256];

	if (*redis != NULL && !ping(*redis)) {
		redisFree(*redis);
		*redis = NULL;
	}
	if (*redis == NULL)
		*redis = connect_redis(q, err, sizeof(err));
	if (*redis == NULL) {
		metric_set(&q->m[E_REDIS_UP], 0);
		return;
	}
	atomic_store(&q->breaker_until, 0);
	metric_set(&q->m[E_REDIS_UP], 1);
	if (spool_entries(q->spool, NULL) == 0)
		return;
	ctx.redis = *redis;
	if (spool_drain(q->spool, redrive_one, &ctx, &moved, err, sizeof(err)) != 0)
		log_error("spool: %s", err);
	stream_zbuf_free(&ctx.z);
	if (moved > 0) {
		atomic_store(&q->spool_refused, 0);
		metric_add(&q->m[E_REDRIVEN], moved);
		log_info("re-drove %lld spooled entries into %s; %lld left", moved, q->cfg->stream,
		         spool_entries(q->spool, NULL));
	}
	if ((*redis)->err) {
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
	if (redisconn_parse_url(c->redis_url, &q->addr, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "REDIS_URL: %s", why);
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
	q->xb = xbatch_start(&q->addr, (int)c->redis_timeout_ms, c->stream, c->wait_aof,
	                     on_redis_down, q, why, sizeof(why));
	if (q->xb == NULL) {
		snprintf(err, errlen, "%s", why);
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
	xbatch_stop(q->xb);
	spool_close(q->spool);
	free(q);
}

int enqueuer_ready(struct enqueuer *q)
{
	return atomic_load(&q->m[E_REDIS_UP].value) || !atomic_load(&q->spool_refused);
}

void enqueuer_metrics(struct enqueuer *q, FILE *fp)
{
	long long bytes, entries = spool_entries(q->spool, &bytes);

	metric_set(&q->m[E_SPOOL_ENTRIES], entries);
	metric_set(&q->m[E_SPOOL_BYTES], bytes);
	metrics_write(fp, q->m, E_COUNT, NULL);
}
