/* One Redis connection, pipelined XADDs for all request threads. */
#include "xbatch.h"

#include "log.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

struct xreq {
	const struct stream_new *e;
	char id[64];
	char err[300];
	int rc;   /* 0, or -1 */
	int done; /* set by the batch thread */
	pthread_cond_t cv;
	struct xreq *next;
};

struct xbatch {
	pthread_mutex_t lock;
	pthread_cond_t work;
	struct xreq *head, *tail; /* waiting to be sent */
	int stop;
	pthread_t thread;
	int started;
	struct redis_addr addr;
	int timeout_ms;
	char stream[256];
	xbatch_down_fn down;
	void *down_arg;
	int wait_aof;        /* INGEST_WAIT_AOF: acknowledge only once Redis fsynced the AOF */
	int wait_aof_ok;     /* this connection's Redis has WAITAOF */
	int warned;          /* said once that it has not */
	redisContext *redis; /* used by the batch thread only */
};

/* Appends the XADD of r's entry to the connection's output buffer. */
static void append(struct xbatch *b, const struct xreq *r)
{
	char recv[24];
	const char *argv[STREAM_XADD_ARGS];
	size_t lens[STREAM_XADD_ARGS];
	int n = stream_xadd_argv(b->stream, r->e, argv, lens, recv);

	redisAppendCommandArgv(b->redis, n, argv, lens);
}

static void finish(struct xbatch *b, struct xreq *r, int rc, const char *why)
{
	pthread_mutex_lock(&b->lock);
	r->rc = rc;
	if (why != NULL)
		snprintf(r->err, sizeof(r->err), "%s", why);
	r->done = 1;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&b->lock);
}

/* Reads the XADD reply of r. Returns 0, or -1 when the connection failed. With defer, the
 * outcome is only recorded (finished after WAITAOF); else r is finished now. */
static int take_reply(struct xbatch *b, struct xreq *r, int defer)
{
	redisReply *reply = NULL;
	int rc;

	if (redisGetReply(b->redis, (void **)&reply) != REDIS_OK)
		return -1;
	rc = reply->type == REDIS_REPLY_STRING ? 0 : -1;
	if (rc == 0)
		snprintf(r->id, sizeof(r->id), "%s", reply->str);
	else
		snprintf(r->err, sizeof(r->err), "%s",
		         reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply");
	freeReplyObject(reply);
	if (defer)
		r->rc = rc;
	else
		finish(b, r, rc, NULL);
	return 0;
}

/* Appends WAITAOF 1 0 <timeout> after the batch: one fsync wait covers all its entries. */
static void append_waitaof(struct xbatch *b)
{
	char timeout[24];
	const char *argv[] = {"WAITAOF", "1", "0", timeout};

	snprintf(timeout, sizeof(timeout), "%d", b->timeout_ms);
	redisAppendCommandArgv(b->redis, 4, argv, NULL);
}

/* Reads WAITAOF's reply: 1 when the local AOF holds the batch on disk, 0 when not, -1 when
 * the connection failed. */
static int take_waitaof(struct xbatch *b)
{
	redisReply *reply = NULL;
	int ok;

	if (redisGetReply(b->redis, (void **)&reply) != REDIS_OK)
		return -1;
	ok = reply->type == REDIS_REPLY_ARRAY && reply->elements >= 1 &&
	     reply->element[0]->type == REDIS_REPLY_INTEGER && reply->element[0]->integer >= 1;
	freeReplyObject(reply);
	return ok;
}

static void drop_connection(struct xbatch *b)
{
	log_warn("redis: %s; reconnecting", b->redis->errstr);
	redisFree(b->redis);
	b->redis = NULL;
}

/* Sends the list and hands out the replies in order, each request woken as soon as its own
 * reply is in (with WAITAOF, once the batch is on disk). Returns the first request left
 * without an answer when the connection failed (the connection is then closed), or NULL. */
static struct xreq *send_list(struct xbatch *b, struct xreq *list)
{
	int defer = b->wait_aof_ok, synced;
	struct xreq *r, *next;

	for (struct xreq *q = list; q != NULL; q = q->next)
		append(b, q);
	if (defer)
		append_waitaof(b);
	for (r = list; r != NULL; r = next) {
		next = r->next; /* r may be gone once finished */
		if (take_reply(b, r, defer) != 0) {
			drop_connection(b);
			return defer ? list : r; /* deferred ones are all still unanswered */
		}
	}
	if (!defer)
		return NULL;
	synced = take_waitaof(b);
	if (synced < 0) {
		drop_connection(b);
		return list;
	}
	for (r = list; r != NULL; r = next) {
		next = r->next;
		if (r->rc == 0 && !synced)
			finish(b, r, -1, "WAITAOF: the entry did not reach the disk in time");
		else
			finish(b, r, r->rc, NULL);
	}
	return NULL;
}

/* Whether this Redis knows WAITAOF (7.2 and later). */
static int has_waitaof(redisContext *c)
{
	const char *argv[] = {"COMMAND", "INFO", "WAITAOF"};
	redisReply *r = redisconn_cmdv(c, 3, argv);
	int yes = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	          r->element[0]->type == REDIS_REPLY_ARRAY;

	freeReplyObject(r);
	return yes;
}

static int connect_redis(struct xbatch *b, char *why, size_t n)
{
	if (b->redis != NULL)
		return 0;
	b->redis = redisconn_open(&b->addr, b->timeout_ms, why, n);
	if (b->redis == NULL && b->down != NULL)
		b->down(b->down_arg);
	if (b->redis == NULL)
		return -1;
	b->wait_aof_ok = b->wait_aof && has_waitaof(b->redis);
	if (b->wait_aof && !b->wait_aof_ok && !b->warned) {
		log_error(
		    "INGEST_WAIT_AOF=true, but this Redis has no WAITAOF (it needs 7.2 or "
		    "later): acknowledging once the XADD is confirmed, as without the setting");
		b->warned = 1;
	}
	return 0;
}

static void fail_all(struct xbatch *b, struct xreq *r, const char *why)
{
	for (struct xreq *next; r != NULL; r = next) {
		next = r->next;
		finish(b, r, -1, why);
	}
}

/* Sends one taken list; a connection that broke (Redis restarted) is replaced once for
 * the requests still without a reply. An entry whose reply was lost may then be written
 * twice: harmless, the workers' writes are idempotent. */
static void process(struct xbatch *b, struct xreq *list)
{
	char why[256];

	for (int attempt = 0; list != NULL && attempt < 2; attempt++) {
		if (connect_redis(b, why, sizeof(why)) != 0) {
			fail_all(b, list, why);
			return;
		}
		list = send_list(b, list);
	}
	fail_all(b, list, "redis connection lost twice");
}

static void *batch_main(void *arg)
{
	struct xbatch *b = arg;

	for (;;) {
		struct xreq *list;

		pthread_mutex_lock(&b->lock);
		while (b->head == NULL && !b->stop)
			pthread_cond_wait(&b->work, &b->lock);
		list = b->head;
		b->head = b->tail = NULL;
		pthread_mutex_unlock(&b->lock);
		if (list == NULL)
			break; /* stopping, nothing left */
		if (b->stop)
			fail_all(b, list, "stopping");
		else
			process(b, list);
	}
	redisFree(b->redis);
	return NULL;
}

struct xbatch *xbatch_start(const struct redis_addr *addr, int timeout_ms, const char *stream,
                            int wait_aof, xbatch_down_fn down, void *down_arg, char *err,
                            size_t errlen)
{
	struct xbatch *b = calloc(1, sizeof(*b));

	if (b == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->work, NULL);
	b->addr = *addr;
	b->timeout_ms = timeout_ms;
	snprintf(b->stream, sizeof(b->stream), "%s", stream);
	b->down = down;
	b->down_arg = down_arg;
	b->wait_aof = wait_aof;
	if (pthread_create(&b->thread, NULL, batch_main, b) != 0) {
		snprintf(err, errlen, "cannot start the Redis batch thread");
		xbatch_stop(b);
		return NULL;
	}
	b->started = 1;
	return b;
}

void xbatch_stop(struct xbatch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	b->stop = 1;
	pthread_cond_signal(&b->work);
	pthread_mutex_unlock(&b->lock);
	if (b->started)
		pthread_join(b->thread, NULL);
	pthread_cond_destroy(&b->work);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

int xbatch_add(struct xbatch *b, const struct stream_new *e, char *id, size_t idlen, char *err,
               size_t errlen)
{
	struct xreq r;

	memset(&r, 0, sizeof(r));
	r.e = e;
	pthread_cond_init(&r.cv, NULL);
	pthread_mutex_lock(&b->lock);
	if (b->stop) {
		pthread_mutex_unlock(&b->lock);
		pthread_cond_destroy(&r.cv);
		snprintf(err, errlen, "stopping");
		return -1;
	}
	if (b->tail != NULL)
		b->tail->next = &r;
	else
		b->head = &r;
	b->tail = &r;
	pthread_cond_signal(&b->work);
	while (!r.done)
		pthread_cond_wait(&r.cv, &b->lock);
	pthread_mutex_unlock(&b->lock);
	pthread_cond_destroy(&r.cv);
	if (r.rc == 0)
		snprintf(id, idlen, "%s", r.id);
	else
		snprintf(err, errlen, "XADD: %s", r.err);
	return r.rc;
}
