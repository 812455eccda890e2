/* Pipelined XADDs on one non-blocking hiredis context. */
#include "xpipe.h"

#include "log.h"
#include "redisconn.h"
#include "util.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_XADD, SLOT_WAITAOF, SLOT_WAIT };

/* One command sent and waiting for its reply (or, for an XADD under WAITAOF, for the
 * fsync that covers it). */
struct slot {
	void *tag;
	int64_t sent_ms; /* monotonic, when appended */
	int kind;        /* SLOT_XADD, SLOT_WAITAOF or SLOT_WAIT */
	int rc;          /* XADD outcome, kept until the waits answer; for a wait: the last */
	char text[300];  /* entry id, or the reason */
};

struct xpipe {
	redisContext *c;
	char stream[256];
	int timeout_ms;
	int wait_aof;            /* INGEST_WAIT_AOF */
	int wait_aof_ok;         /* this connection's Redis has WAITAOF */
	int wait_replicas;       /* INGEST_WAIT_REPLICAS: WAIT for this many replicas */
	int demoted;             /* a reply said this server is no longer the master */
	int batch;               /* XADDs appended since the last commit */
	struct slot *ring;       /* cap slots; [done, tail) pending, [head, tail) unanswered */
	size_t cap;              /* a power of two */
	size_t done, head, tail; /* counters, taken modulo cap */
	char err[256];
};

/* Said once per process: INGEST_WAIT_AOF cannot be honoured by this Redis. */
static atomic_int warned_no_waitaof;

struct xpipe *xpipe_new(const char *stream, int wait_aof, int wait_replicas, int timeout_ms)
{
	struct xpipe *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	snprintf(p->stream, sizeof(p->stream), "%s", stream);
	p->wait_aof = wait_aof;
	p->wait_replicas = wait_replicas;
	p->timeout_ms = timeout_ms;
	p->cap = 64;
	p->ring = calloc(p->cap, sizeof(*p->ring));
	if (p->ring == NULL) {
		free(p);
		return NULL;
	}
	return p;
}

void xpipe_free(struct xpipe *p)
{
	if (p == NULL)
		return;
	redisFree(p->c);
	free(p->ring);
	free(p);
}

int xpipe_attach(struct xpipe *p, redisContext *c)
{
	int fl;

	p->wait_aof_ok = p->wait_aof && redisconn_has_waitaof(c);
	if (c->err) {
		snprintf(p->err, sizeof(p->err), "%s", c->errstr);
		redisFree(c);
		return -1;
	}
	if (p->wait_aof && !p->wait_aof_ok && atomic_exchange(&warned_no_waitaof, 1) == 0)
		log_error(
		    "INGEST_WAIT_AOF=true, but this Redis has no WAITAOF (it needs 7.2 or "
		    "later): acknowledging once the XADD is confirmed, as without the setting");
	fl = fcntl(c->fd, F_GETFL);
	if (fl < 0 || fcntl(c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(p->err, sizeof(p->err), "cannot make the Redis socket non-blocking");
		redisFree(c);
		return -1;
	}
	c->flags &= ~REDIS_BLOCK; /* hiredis then treats EAGAIN as "try again later" */
	p->c = c;
	p->demoted = 0;
	p->err[0] = '\0';
	return 0;
}

int xpipe_fd(const struct xpipe *p)
{
	return p->c != NULL ? p->c->fd : -1;
}

/* A new slot at the tail, growing the ring when it is full. */
static struct slot *push(struct xpipe *p, int kind, void *tag)
{
	struct slot *s;

	if (p->tail - p->done == p->cap) {
		struct slot *nr = calloc(p->cap * 2, sizeof(*nr));

		if (nr == NULL)
			abort(); /* a few dozen bytes per request in flight: nothing to degrade to
			          */
		for (size_t i = p->done; i != p->tail; i++)
			nr[i & (p->cap * 2 - 1)] = p->ring[i & (p->cap - 1)];
		free(p->ring);
		p->ring = nr;
		p->cap *= 2;
	}
	s = &p->ring[p->tail++ & (p->cap - 1)];
	s->tag = tag;
	s->kind = kind;
	s->rc = -1;
	s->text[0] = '\0';
	s->sent_ms = util_mono_ms();
	return s;
}

void xpipe_add(struct xpipe *p, const struct stream_new *e, void *tag)
{
	stream_xadd_append(p->c, p->stream, e);
	push(p, SLOT_XADD, tag);
	p->batch++;
}

/* Whether XADD outcomes wait for a WAITAOF or WAIT after them. */
static int waits(const struct xpipe *p)
{
	return p->wait_aof_ok || p->wait_replicas > 0;
}

void xpipe_commit(struct xpipe *p)
{
	if (!waits(p) || p->batch == 0)
		return;
	if (p->wait_aof_ok) {
		redisconn_append_waitaof(p->c, p->timeout_ms);
		push(p, SLOT_WAITAOF, NULL)->rc = p->wait_replicas == 0;
	}
	if (p->wait_replicas > 0) {
		redisconn_append_wait(p->c, p->wait_replicas, p->timeout_ms);
		push(p, SLOT_WAIT, NULL)->rc = 1;
	}
	p->batch = 0;
}

int xpipe_flush(struct xpipe *p)
{
	int done = 0;

	if (p->c == NULL)
		return -1;
	if (redisBufferWrite(p->c, &done) != REDIS_OK) {
		snprintf(p->err, sizeof(p->err), "%s", p->c->errstr);
		return -1;
	}
	return done ? 0 : 1;
}

/* Hands out the slots [done, upto) and drops them. */
static void report(struct xpipe *p, size_t upto, xpipe_done_fn fn, void *arg)
{
	while (p->done != upto) {
		struct slot *s = &p->ring[p->done++ & (p->cap - 1)];

		if (s->kind == SLOT_XADD)
			fn(s->tag, s->rc, s->text, arg);
	}
}

/* Records reply r for the oldest unanswered slot. */
static void take(struct xpipe *p, redisReply *r, xpipe_done_fn fn, void *arg)
{
	struct slot *s = &p->ring[p->head++ & (p->cap - 1)];

	if (s->kind != SLOT_XADD) {
		int ok = s->kind == SLOT_WAITAOF ? redisconn_waitaof_synced(r)
		                                 : redisconn_wait_reached(r, p->wait_replicas);

		for (size_t i = p->done; !ok && i != p->head; i++) {
			struct slot *x = &p->ring[i & (p->cap - 1)];

			if (x->kind == SLOT_XADD && x->rc == 0) {
				x->rc = -1;
				snprintf(
				    x->text, sizeof(x->text), "%s",
				    s->kind == SLOT_WAITAOF
				        ? "WAITAOF: the entry did not reach the disk in time"
				        : "WAIT: too few replicas confirmed the entry in time");
			}
		}
		if (s->rc) /* the last wait of its batch */
			report(p, p->head, fn, arg);
		return;
	}
	s->rc = r->type == REDIS_REPLY_STRING ? 0 : -1;
	snprintf(s->text, sizeof(s->text), "%s",
	         r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_ERROR
	             ? r->str
	             : "unexpected reply");
	if (redisconn_demoted(r))
		p->demoted = 1;
	if (!waits(p))
		report(p, p->head, fn, arg);
}

int xpipe_read(struct xpipe *p, xpipe_done_fn fn, void *arg)
{
	void *reply;

	if (p->c == NULL)
		return -1;
	if (redisBufferRead(p->c) != REDIS_OK) {
		snprintf(p->err, sizeof(p->err), "%s", p->c->errstr);
		return -1;
	}
	for (;;) {
		reply = NULL;
		if (redisGetReplyFromReader(p->c, &reply) != REDIS_OK) {
			snprintf(p->err, sizeof(p->err), "%s", p->c->errstr);
			return -1;
		}
		if (reply == NULL)
			return 0;
		if (p->head == p->tail) {
			freeReplyObject(reply);
			snprintf(p->err, sizeof(p->err), "a reply nobody asked for");
			return -1;
		}
		take(p, reply, fn, arg);
		freeReplyObject(reply);
		if (p->demoted) {
			/* After a failover or a moved slot: drop this connection, the next one
			 * asks the sentinels, or the slot map. */
			snprintf(p->err, sizeof(p->err), "this Redis is no longer the master");
			return -1;
		}
	}
}

void xpipe_reset(struct xpipe *p, const char *why, xpipe_done_fn fn, void *arg)
{
	redisFree(p->c);
	p->c = NULL;
	p->batch = 0;
	for (size_t i = p->done; i != p->tail; i++) {
		struct slot *s = &p->ring[i & (p->cap - 1)];

		s->rc = -1;
		snprintf(s->text, sizeof(s->text), "%s", why);
	}
	p->head = p->tail;
	report(p, p->tail, fn, arg);
}

const char *xpipe_error(const struct xpipe *p)
{
	return p->err;
}

size_t xpipe_pending(const struct xpipe *p)
{
	return p->tail - p->done;
}

int64_t xpipe_oldest_age_ms(const struct xpipe *p, int64_t now_ms)
{
	if (p->done == p->tail)
		return 0;
	return now_ms - p->ring[p->done & (p->cap - 1)].sent_ms;
}
