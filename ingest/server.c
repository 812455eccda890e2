/* Event loops: accept, read, parse, answer; XADDs pipelined per loop, the spool off-loop. */
#include "server.h"

#include "admin.h"
#include "enqueue.h"
#include "httpframe.h"
#include "log.h"
#include "util.h"
#include "webhook.h"
#include "xpipe.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* A connection keeps an input buffer up to this size between requests; a larger one (a
 * large body) is freed, so that idle connections do not each hold the largest body seen. */
#define BUF_KEEP (32 << 10)
#define BUF_FIRST 4096
/* Deadlines are checked this often. */
#define SWEEP_MS 50
/* New connections taken per wake-up of one loop, so that the loops share a burst. */
#define ACCEPT_BATCH 64
#define EVENTS 256
/* After accept() ran out of descriptors, the loop stops accepting for this long. */
#define ACCEPT_PAUSE_MS 100
/* How long a stopping server waits for requests being received to complete. */
#define DRAIN_MS 3000
/* After an answer that ends the connection, what the client still sends is read and
 * dropped for this long, so that closing with unread data (a reset) cannot destroy the
 * answer before the client reads it. */
#define LINGER_MS 2000

enum conn_state {
	C_HEAD,   /* reading a request head */
	C_BODY,   /* reading its body */
	C_QUEUED, /* its entry is on its way to Redis or the spool */
	C_WRITE,  /* sending the answer */
	C_LINGER, /* answered and shut for writing: dropping what the client still sends */
	C_CLOSED, /* closed, freed at the end of the loop pass */
};

struct loop;

/* One stream shard's pipelined Redis connection in a loop. */
struct shard {
	struct loop *lp;
	int index;        /* the shard's number */
	struct xpipe *xp; /* its XADDs */
	int out;          /* the Redis socket is watched for writability */
	int appended;     /* XADDs appended in this pass */
};

struct conn {
	int fd;
	struct loop *lp;
	struct conn *prev, *next; /* the loop's connections */
	enum conn_state state;
	char peer[INET6_ADDRSTRLEN];
	char *in; /* bytes received, from the start of the current request */
	size_t len, cap;
	struct httpframe fr; /* the framing of the current request */
	struct wh_req wr;
	size_t req_end;        /* offset just past the current request */
	int64_t deadline;      /* monotonic ms: idle, head, pause or write deadline */
	int64_t body_deadline; /* monotonic ms: the whole body must be in by then */
	bool want_read;        /* data may be waiting that was not read yet */
	bool eof;              /* the peer shut its side */
	bool broken;           /* the socket failed while the entry was queued */
	struct wh_out out;     /* answer being sent */
	size_t out_off;
	char xff[2048];         /* joined X-Forwarded-For lines */
	enum enq_result result; /* of the enqueue */
	char id[64];            /* stream id on ENQ_REDIS */
	int64_t t0_us;          /* enqueue start */
	int64_t received_at;    /* wall-clock ms the body was in: the entry's, spooled too */
	struct conn *done_next; /* on a list of finished enqueues */
};

struct loop {
	struct ingest *in;
	int index;
	int ep;   /* epoll */
	int evfd; /* eventfd: spool writers finished something */
	pthread_t thread;
	int started;
	struct conn *conns;   /* every open connection */
	int queued;           /* connections in C_QUEUED */
	struct shard *sh;     /* a pipelined Redis connection per stream shard */
	int nsh;              /* SWITCHBOARD_SHARDS */
	int rr;               /* the shard the next request tries first */
	bool resetting;       /* in xpipe_reset(): failures are logged once */
	struct stream_zbuf z; /* compressor output */
	struct conn *ready;   /* enqueues finished in this pass, to answer */
	struct conn *closed;  /* to free at the end of the pass */
	pthread_mutex_t lock; /* guards spooled */
	struct conn *spooled; /* finished by the spool writers */
	bool listening;       /* the listening socket is in ep */
	int64_t relisten_at;  /* monotonic ms; 0 unless accepting is paused */
	int64_t next_sweep;
};

struct ingest {
	const struct cfg *cfg;
	struct enqueuer *q;
	struct webhook *wh;
	struct admin *admin; /* /metrics, /healthz, /readyz on INGEST_ADMIN_LISTEN */
	int lfd;             /* the listening socket */
	struct loop *loops;
	int nloops;
	volatile int stop;
};

/* epoll tags for what is not a connection (or a shard, whose tag is itself). */
static char tag_listen, tag_event;

static void conn_progress(struct conn *c);
static void conn_read(struct conn *c);

/* --- connections --------------------------------------------------------------------- */

/* Closes c; the memory is freed at the end of the pass, so callers up the stack may still
 * look at c->state (C_CLOSED). */
static void conn_close(struct conn *c)
{
	struct loop *lp = c->lp;

	if (c->state == C_QUEUED) {
		c->broken = true; /* closed once its entry is durable */
		return;
	}
	if (c->state == C_CLOSED)
		return;
	close(c->fd);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		lp->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->state = C_CLOSED;
	c->done_next = lp->closed;
	lp->closed = c;
}

static void free_closed(struct loop *lp)
{
	for (struct conn *c = lp->closed, *next; c != NULL; c = next) {
		next = c->done_next;
		free(c->in);
		free(c->out.buf);
		free(c);
	}
	lp->closed = NULL;
}

/* Ends a connection after its answer: shut for writing, then read and drop until the
 * client closes too (or LINGER_MS). */
static void conn_linger(struct conn *c)
{
	char sink[4096];
	ssize_t n;

	if (c->state != C_LINGER) {
		if (c->eof || shutdown(c->fd, SHUT_WR) != 0) {
			conn_close(c);
			return;
		}
		c->state = C_LINGER;
		c->deadline = util_mono_ms() + LINGER_MS;
	}
	while ((n = recv(c->fd, sink, sizeof(sink), 0)) > 0)
		;
	if (n == 0 || (errno != EAGAIN && errno != EINTR))
		conn_close(c);
}

/* Writes what is left of the answer; once all of it is out, the request is over. */
static void conn_write(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n =
		    send(c->fd, c->out.buf + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			c->deadline = util_mono_ms() + c->lp->in->cfg->idle_timeout_ms;
			return; /* the rest when the socket is writable */
		}
		if (n <= 0) {
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	c->out.len = c->out_off = 0;
	if (c->state != C_WRITE)
		return; /* an interim answer (100 Continue) */
	if (c->wr.close || c->eof || c->lp->in->stop) {
		conn_linger(c);
		return;
	}
	/* Keep-alive: what follows this request is the next one. */
	c->len -= c->req_end;
	memmove(c->in, c->in + c->req_end, c->len);
	c->req_end = 0;
	httpframe_next(&c->fr);
	if (c->cap > BUF_KEEP && c->len <= BUF_FIRST) {
		char *nb = malloc(BUF_FIRST);

		if (nb != NULL) {
			memcpy(nb, c->in, c->len);
			free(c->in);
			c->in = nb;
			c->cap = BUF_FIRST;
		}
	}
	if (c->out.cap > BUF_KEEP) {
		free(c->out.buf);
		c->out = (struct wh_out){NULL, 0, 0};
	}
	c->state = C_HEAD;
	c->deadline = util_mono_ms() + (c->len ? c->lp->in->cfg->header_timeout_ms
	                                       : c->lp->in->cfg->idle_timeout_ms);
	conn_progress(c);
	if (c->want_read && (c->state == C_HEAD || c->state == C_BODY))
		conn_read(c);
}

/* Sends the answer that is in c->out and ends the request. */
static void conn_answer(struct conn *c)
{
	c->state = C_WRITE;
	if (c->out.len == 0) { /* nothing could be built: out of memory */
		c->wr.close = true;
		conn_close(c);
		return;
	}
	conn_write(c);
}

static void conn_refuse(struct conn *c, int status)
{
	webhook_refuse(c->lp->in->wh, c->state == C_HEAD ? NULL : &c->wr, status, &c->out);
	c->wr.close = true;
	conn_answer(c);
}

/* --- enqueue --------------------------------------------------------------------------- */

static void on_spooled(void *tag, enum enq_result res)
{
	struct conn *c = tag;
	struct loop *lp = c->lp;
	uint64_t one = 1;

	c->result = res;
	/* The wake-up inside the lock: once the loop has taken c it may end, and loop_free()
	 * takes the lock before closing the eventfd. */
	pthread_mutex_lock(&lp->lock);
	c->done_next = lp->spooled;
	lp->spooled = c;
	if (write(lp->evfd, &one, sizeof(one)) < 0)
		log_error("cannot wake loop %d: %s", lp->index, strerror(errno));
	pthread_mutex_unlock(&lp->lock);
}

static void to_spool(struct conn *c)
{
	enqueuer_spool(c->lp->in->q, c->wr.body, c->wr.body_len, c->received_at, c->wr.rid,
	               on_spooled, c);
}

/* The outcome of one XADD (from xpipe_read or xpipe_reset); arg is the shard. */
static void on_xadd(void *tag, int rc, const char *text, void *arg)
{
	struct conn *c = tag;
	struct shard *sh = arg;
	struct loop *lp = sh->lp;

	if (rc == 0) {
		c->result = ENQ_REDIS;
		snprintf(c->id, sizeof(c->id), "%s", text);
		c->done_next = lp->ready;
		lp->ready = c;
		enqueuer_xadded(lp->in->q, sh->index, 1);
		return;
	}
	if (!lp->resetting) {
		char msg[400];

		snprintf(msg, sizeof(msg), "XADD refused: %s; spooling", text);
		enqueuer_redis_failed(lp->in->q, sh->index, c->wr.rid, msg);
	}
	to_spool(c);
}

/* Adds or changes (op) the watch on sh's Redis socket. */
static int shard_watch(struct shard *sh, int op, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.ptr = sh};

	return epoll_ctl(sh->lp->ep, op, xpipe_fd(sh->xp), &ev);
}

static void redis_close(struct shard *sh, const char *why)
{
	struct loop *lp = sh->lp;
	size_t n = xpipe_pending(sh->xp);
	char msg[400];

	if (xpipe_fd(sh->xp) >= 0)
		epoll_ctl(lp->ep, EPOLL_CTL_DEL, xpipe_fd(sh->xp), NULL);
	sh->out = 0;
	sh->appended = 0;
	snprintf(msg, sizeof(msg), "%s; %zu requests in flight go to the spool", why, n);
	enqueuer_redis_failed(lp->in->q, sh->index, NULL, msg);
	lp->resetting = true;
	xpipe_reset(sh->xp, why, on_xadd, sh);
	lp->resetting = false;
}

/* A connection for this shard's XADDs, opened when there is none (and its breaker
 * allows). */
static int redis_ready(struct shard *sh)
{
	struct enqueuer *q = sh->lp->in->q;
	redisContext *rc;

	if (xpipe_fd(sh->xp) >= 0)
		return 0;
	rc = enqueuer_connect(q, sh->index);
	if (rc == NULL)
		return -1;
	if (xpipe_attach(sh->xp, rc) != 0) {
		enqueuer_redis_failed(q, sh->index, NULL, xpipe_error(sh->xp));
		return -1;
	}
	if (shard_watch(sh, EPOLL_CTL_ADD, EPOLLIN) != 0) {
		redis_close(sh, "cannot watch the Redis socket");
		return -1;
	}
	return 0;
}

/* The next shard, round-robin, whose breaker is closed and whose connection is up or opens
 * now; NULL when none can take a request. */
static struct shard *next_shard(struct loop *lp)
{
	for (int k = 0; k < lp->nsh; k++) {
		struct shard *sh = &lp->sh[lp->rr];

		lp->rr = lp->rr + 1 == lp->nsh ? 0 : lp->rr + 1;
		if (!enqueuer_breaker_open(lp->in->q, sh->index) && redis_ready(sh) == 0)
			return sh;
	}
	return NULL;
}

/* Makes the body durable: appended to this pass's XADD pipeline of the next shard, or
 * spooled when no shard can take it. */
static void conn_enqueue(struct conn *c)
{
	struct loop *lp = c->lp;
	struct stream_new e = {c->wr.body, c->wr.body_len, util_now_ms(), c->wr.rid, "http", NULL};
	struct shard *sh;

	c->state = C_QUEUED;
	lp->queued++;
	c->t0_us = util_mono_us();
	c->received_at = e.received_at;
	if ((sh = next_shard(lp)) != NULL) {
		enqueuer_encode(lp->in->q, &lp->z, &e);
		xpipe_add(sh->xp, &e, c);
		sh->appended++;
		return;
	}
	to_spool(c);
}

/* Answers a connection whose entry is durable (or could not be made so). */
static void conn_enqueued(struct conn *c)
{
	c->lp->queued--;
	c->state = C_WRITE;
	if (c->broken) {
		conn_close(c);
		return;
	}
	c->wr.close = c->wr.close || c->lp->in->stop; /* the answer says so */
	webhook_enqueued(c->lp->in->wh, &c->wr, c->result, c->id, c->t0_us, &c->out);
	conn_answer(c);
}

/* --- reading requests ------------------------------------------------------------------ */

static const char *conn_header(void *ctx, const char *name)
{
	struct conn *c = ctx;
	size_t used = 0;

	if (strcasecmp(name, "X-Forwarded-For") != 0)
		return httpframe_header(&c->fr, c->in, name);
	/* Lines joined in order ("a, b"): a proxy that adds its own line instead of
	 * extending the client's must not let the client's line speak for it. */
	for (int i = 0; i < c->fr.nh; i++) {
		int n;

		if (strcasecmp(c->in + c->fr.h[i].name, "X-Forwarded-For") != 0)
			continue;
		n = snprintf(c->xff + used, sizeof(c->xff) - used, "%s%s", used ? ", " : "",
		             c->in + c->fr.h[i].value);
		if (n < 0 || (size_t)n >= sizeof(c->xff) - used)
			return "invalid"; /* too long to read whole: refuse rather than cut */
		used += (size_t)n;
	}
	return used ? c->xff : NULL;
}

static int grow(struct conn *c, size_t want)
{
	char *nb;

	if (want <= c->cap)
		return 0;
	nb = realloc(c->in, want);
	if (nb == NULL)
		return -1;
	c->in = nb;
	c->cap = want;
	return 0;
}

/* The head is in: route it, and get ready for its body. */
static void on_head(struct conn *c)
{
	struct ingest *in = c->lp->in;
	const struct cfg *cfg = in->cfg;

	c->wr = (struct wh_req){.method = c->fr.method,
	                        .path = c->in + c->fr.path,
	                        .header = conn_header,
	                        .ctx = c,
	                        .peer = c->peer,
	                        .content_length = c->fr.content_length,
	                        .has_body = c->fr.chunked || c->fr.content_length > 0,
	                        .close = !c->fr.keep_alive};
	c->req_end = c->fr.head_len; /* a request without a body ends with its head */
	if (webhook_head(in->wh, &c->wr, &c->out) == 0) {
		conn_answer(c);
		return;
	}
	if (!c->fr.chunked) {
		c->req_end += (size_t)(c->fr.content_length > 0 ? c->fr.content_length : 0);
		if (grow(c, c->req_end + 1) != 0) {
			conn_refuse(c, 413);
			return;
		}
	}
	c->state = C_BODY;
	c->body_deadline = util_mono_ms() + cfg->request_timeout_ms;
	c->deadline = util_mono_ms() + cfg->header_timeout_ms;
	if (c->fr.expect_continue && (c->fr.chunked || c->len < c->req_end)) {
		webhook_continue(&c->out);
		conn_write(c);
	}
}

/* Acts on what has been read: the head, the body, the request. */
static void conn_progress(struct conn *c)
{
	enum httpframe_status rc;

	if (c->state == C_HEAD) {
		if (c->len == 0) {
			if (c->eof)
				conn_close(c);
			return;
		}
		rc = httpframe_feed(&c->fr, c->in, &c->len);
		if (rc == HTTPFRAME_HEAD) {
			on_head(c);
		} else {
			if (rc == HTTPFRAME_ERROR)
				conn_refuse(c, c->fr.status);
			else if (c->eof)
				conn_close(c);
			return;
		}
	}
	if (c->state != C_BODY)
		return;
	rc = httpframe_feed(&c->fr, c->in, &c->len);
	if (rc != HTTPFRAME_DONE) {
		if (rc == HTTPFRAME_ERROR)
			conn_refuse(c, c->fr.status);
		else if (c->eof)
			conn_close(c);
		return;
	}
	/* Only now, with the trailers read and checked, is the body handed on. */
	c->req_end = c->fr.end;
	c->wr.body = c->in + c->fr.head_len;
	c->wr.body_len = c->fr.body_len;
	if (webhook_body(c->lp->in->wh, &c->wr, &c->out) == 0)
		conn_answer(c);
	else
		conn_enqueue(c);
}

/* Room to read into, by state; 0 when nothing more should be read now. */
static size_t read_room(struct conn *c)
{
	size_t limit;

	switch (c->state) {
	case C_HEAD:
		limit = HTTPFRAME_MAX_HEAD + 1;
		break;
	case C_BODY:
		limit = c->fr.chunked
		            ? c->fr.head_len + (size_t)webhook_max_body(c->lp->in->wh) + 65536
		            : c->cap;
		break;
	default:
		return 0;
	}
	if (c->len == c->cap && c->cap < limit) {
		size_t want = c->cap ? c->cap * 2 : BUF_FIRST;

		(void)grow(c, want < limit ? want : limit);
	}
	return c->cap - c->len;
}

/* Reads what the socket holds, as far as the state has room for. Returns 1 when it stopped
 * for lack of room (data may be left), 0 when the socket is drained or closed. */
static int read_some(struct conn *c)
{
	for (;;) {
		size_t room = read_room(c);
		ssize_t n;

		if (room == 0)
			return 1;
		n = recv(c->fd, c->in + c->len, room, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0) {
			c->eof = true; /* closed or reset: what is in still counts */
			return 0;
		}
		if (c->state == C_BODY || c->len == 0)
			c->deadline = util_mono_ms() + c->lp->in->cfg->header_timeout_ms;
		c->len += (size_t)n;
		if ((size_t)n < room)
			return 0; /* drained: the next arrival raises a new edge */
	}
}

/* Reads (edge-triggered: until the socket is drained or the request is complete) and acts
 * on what arrived. */
static void conn_read(struct conn *c)
{
	for (;;) {
		enum conn_state before = c->state;
		int full = read_some(c);

		c->want_read = full;
		conn_progress(c);
		/* The head turned into a body (more room), or a request was answered. */
		if (!c->want_read || (c->state != C_HEAD && c->state != C_BODY) ||
		    (c->state == before && read_room(c) == 0))
			return;
	}
}

static void conn_event(struct conn *c, uint32_t events)
{
	if (events & EPOLLERR) {
		conn_close(c); /* a queued one only once its entry is durable */
		return;
	}
	if ((events & EPOLLOUT) && c->out_off < c->out.len)
		conn_write(c);
	if (c->state == C_LINGER && (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)))
		conn_linger(c);
	else if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP)) {
		if (c->state == C_HEAD || c->state == C_BODY)
			conn_read(c);
		else if (c->state != C_CLOSED)
			c->want_read = true;
	}
}

/* --- accepting ------------------------------------------------------------------------- */

static void peer_text(const struct sockaddr_storage *sa, char *out, size_t n)
{
	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
			inet_ntop(AF_INET, &s6->sin6_addr.s6_addr[12], out, (socklen_t)n);
		else
			inet_ntop(AF_INET6, &s6->sin6_addr, out, (socklen_t)n);
	} else {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, (socklen_t)n);
	}
}

static void add_conn(struct loop *lp, int fd, const struct sockaddr_storage *sa)
{
	struct conn *c = calloc(1, sizeof(*c));
	struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET};
	int one = 1;

	if (c == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->lp = lp;
	httpframe_init(&c->fr, webhook_max_body(lp->in->wh));
	peer_text(sa, c->peer, sizeof(c->peer));
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->deadline = util_mono_ms() + lp->in->cfg->header_timeout_ms;
	ev.data.ptr = c;
	if (epoll_ctl(lp->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(fd);
		free(c);
		return;
	}
	c->next = lp->conns;
	if (lp->conns != NULL)
		lp->conns->prev = c;
	lp->conns = c;
}

static void set_listening(struct loop *lp, bool on)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE, .data.ptr = &tag_listen};

	if (on == lp->listening)
		return;
	if (on)
		lp->listening = epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->in->lfd, &ev) == 0;
	else
		lp->listening = epoll_ctl(lp->ep, EPOLL_CTL_DEL, lp->in->lfd, NULL) != 0;
}

static void accept_some(struct loop *lp)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct sockaddr_storage sa;
		socklen_t salen = sizeof(sa);
		int fd = accept4(lp->in->lfd, (struct sockaddr *)&sa, &salen,
		                 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			add_conn(lp, fd, &sa);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
			log_warn("accept: %s; not accepting for %d ms", strerror(errno),
			         ACCEPT_PAUSE_MS);
			set_listening(lp, false);
			lp->relisten_at = util_mono_ms() + ACCEPT_PAUSE_MS;
		}
		return; /* EAGAIN: another loop took it, or none is left */
	}
}

/* --- the loop -------------------------------------------------------------------------- */

/* Deadlines: idle and slow connections, a Redis that stopped answering. */
static void sweep(struct loop *lp, int64_t now)
{
	struct conn *c, *next;

	for (c = lp->conns; c != NULL; c = next) {
		next = c->next;
		if (c->state == C_QUEUED)
			continue;
		if (c->state == C_BODY && (now >= c->deadline || now >= c->body_deadline))
			conn_refuse(c, 408);
		else if (c->state == C_HEAD && c->len > 0 && now >= c->deadline)
			conn_refuse(c, 408);
		else if (now >= c->deadline)
			conn_close(c); /* idle, or not taking its answer */
	}
	for (int i = 0; i < lp->nsh; i++)
		if (xpipe_oldest_age_ms(lp->sh[i].xp, util_mono_ms()) >
		    lp->in->cfg->redis_timeout_ms)
			redis_close(&lp->sh[i], "no reply within REDIS_TIMEOUT_MS");
	if (lp->relisten_at != 0 && now >= lp->relisten_at && !lp->in->stop) {
		lp->relisten_at = 0;
		set_listening(lp, true);
	}
}

static void on_redis(struct shard *sh, uint32_t events)
{
	if (events & EPOLLOUT) {
		int rc = xpipe_flush(sh->xp);

		if (rc < 0) {
			redis_close(sh, xpipe_error(sh->xp));
			return;
		}
		if (rc == 0) {
			shard_watch(sh, EPOLL_CTL_MOD, EPOLLIN);
			sh->out = 0;
		}
	}
	if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && xpipe_read(sh->xp, on_xadd, sh) != 0)
		redis_close(sh, xpipe_error(sh->xp));
}

/* Sends the XADDs appended to sh in this pass in one write. */
static void flush_shard(struct shard *sh)
{
	int rc;

	xpipe_commit(sh->xp);
	sh->appended = 0;
	rc = sh->out ? 1 : xpipe_flush(sh->xp);
	if (rc < 0) {
		redis_close(sh, xpipe_error(sh->xp));
	} else if (rc == 1 && !sh->out) {
		shard_watch(sh, EPOLL_CTL_MOD, EPOLLIN | EPOLLOUT);
		sh->out = 1;
	}
}

/* Sends the XADDs appended in this pass, a write per shard. */
static void flush_redis(struct loop *lp)
{
	for (int i = 0; i < lp->nsh; i++)
		if (lp->sh[i].appended > 0 && xpipe_fd(lp->sh[i].xp) >= 0)
			flush_shard(&lp->sh[i]);
}

/* End of a pass: send the XADDs, answer what finished (whose connections may bring the
 * next requests, and XADDs), free what closed. */
static void end_pass(struct loop *lp)
{
	struct conn *list;

	flush_redis(lp);
	while ((list = lp->ready) != NULL) {
		lp->ready = NULL;
		for (struct conn *next; list != NULL; list = next) {
			next = list->done_next;
			conn_enqueued(list);
		}
		flush_redis(lp);
	}
	free_closed(lp);
}

static void take_spooled(struct loop *lp)
{
	uint64_t n;
	struct conn *list;

	if (read(lp->evfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_error("loop %d: eventfd: %s", lp->index, strerror(errno));
	pthread_mutex_lock(&lp->lock);
	list = lp->spooled;
	lp->spooled = NULL;
	pthread_mutex_unlock(&lp->lock);
	for (struct conn *next; list != NULL; list = next) {
		next = list->done_next;
		conn_enqueued(list);
	}
}

static void dispatch(struct loop *lp, struct epoll_event *ev)
{
	void *p = ev->data.ptr;
	uintptr_t off = (uintptr_t)p - (uintptr_t)lp->sh;

	if (p == &tag_listen)
		accept_some(lp);
	else if (p == &tag_event)
		take_spooled(lp);
	else if (off < (uintptr_t)lp->nsh * sizeof(*lp->sh))
		on_redis(p, ev->events);
	else
		conn_event(p, ev->events);
}

/* Once stopping: no new connections; idle ones closed; the loop ends when the requests
 * being received are answered (or DRAIN_MS passed) and no entry is on its way. */
static bool drained(struct loop *lp, int64_t now, int64_t until)
{
	struct conn *c, *next;
	bool busy = false;

	set_listening(lp, false);
	lp->relisten_at = 0;
	for (c = lp->conns; c != NULL; c = next) {
		next = c->next;
		if ((c->state == C_HEAD && c->len == 0 && c->out.len == 0) || c->state == C_LINGER)
			conn_close(c);
		else if (c->state != C_QUEUED && now >= until)
			conn_close(c);
		else
			busy = true;
	}
	return !busy && lp->queued == 0;
}

static void *loop_main(void *arg)
{
	struct loop *lp = arg;
	struct epoll_event evs[EVENTS];
	int64_t until = 0;

	for (;;) {
		int64_t now;
		int n = epoll_wait(lp->ep, evs, EVENTS, SWEEP_MS);

		for (int i = 0; i < n; i++)
			dispatch(lp, &evs[i]);
		end_pass(lp);
		now = util_mono_ms();
		if (now >= lp->next_sweep) {
			sweep(lp, now);
			end_pass(lp);
			lp->next_sweep = now + SWEEP_MS;
		}
		if (lp->in->stop) {
			if (until == 0)
				until = now + DRAIN_MS;
			if (drained(lp, now, until))
				break;
		}
	}
	while (lp->conns != NULL)
		conn_close(lp->conns);
	free_closed(lp);
	return NULL;
}

/* --- start and stop -------------------------------------------------------------------- */

/* Binds host:port ("127.0.0.1:8080", "[::]:8080", "localhost:8080"). */
static int open_listener(const char *listen_on, char *err, size_t errlen)
{
	char host[256];
	const char *colon = strrchr(listen_on, ':');
	struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV,
	                         .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int fd = -1, one = 1, rc;
	size_t hl = colon ? (size_t)(colon - listen_on) : 0;

	if (hl >= 2 && listen_on[0] == '[' && listen_on[hl - 1] == ']')
		snprintf(host, sizeof(host), "%.*s", (int)hl - 2, listen_on + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)hl, listen_on);
	rc = getaddrinfo(host, colon ? colon + 1 : "", &hints, &ai);
	if (rc != 0) {
		snprintf(err, errlen, "INGEST_LISTEN %s: %s", listen_on, gai_strerror(rc));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 4096) != 0) {
		int e = errno;

		snprintf(err, errlen, "INGEST_LISTEN %s: %s", listen_on, strerror(e));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* A pipe per stream shard, without a connection yet. Returns 0, or -1 when out of memory. */
static int loop_shards(struct loop *lp)
{
	const struct cfg *c = lp->in->cfg;
	int n = enqueuer_shards(lp->in->q);

	lp->sh = calloc((size_t)n, sizeof(*lp->sh));
	if (lp->sh == NULL)
		return -1;
	/* The loops start on different shards, so that a trickle of requests spreads too. */
	lp->rr = lp->index % n;
	for (; lp->nsh < n; lp->nsh++) {
		struct shard *sh = &lp->sh[lp->nsh];

		sh->lp = lp;
		sh->index = lp->nsh;
		sh->xp = xpipe_new(enqueuer_stream(lp->in->q, lp->nsh), c->wait_aof,
		                   (int)c->wait_replicas, (int)c->redis_timeout_ms);
		if (sh->xp == NULL)
			return -1;
	}
	return 0;
}

static int loop_init(struct ingest *in, struct loop *lp, int index, char *err, size_t errlen)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &tag_event};

	lp->in = in;
	lp->index = index;
	lp->ep = epoll_create1(EPOLL_CLOEXEC);
	lp->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_init(&lp->lock, NULL);
	if (lp->ep < 0 || lp->evfd < 0 || loop_shards(lp) != 0 ||
	    epoll_ctl(lp->ep, EPOLL_CTL_ADD, lp->evfd, &ev) != 0) {
		snprintf(err, errlen, "cannot set up event loop %d: %s", index, strerror(errno));
		return -1;
	}
	set_listening(lp, true);
	if (pthread_create(&lp->thread, NULL, loop_main, lp) != 0) {
		snprintf(err, errlen, "cannot start event loop %d", index);
		return -1;
	}
	lp->started = 1;
	return 0;
}

static void loop_free(struct loop *lp)
{
	pthread_mutex_lock(&lp->lock); /* no spool writer is still waking the loop */
	pthread_mutex_unlock(&lp->lock);
	if (lp->ep > 0)
		close(lp->ep);
	if (lp->evfd > 0)
		close(lp->evfd);
	for (int i = 0; i < lp->nsh; i++)
		xpipe_free(lp->sh[i].xp);
	free(lp->sh);
	stream_zbuf_free(&lp->z);
	pthread_mutex_destroy(&lp->lock);
}

struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
{
	struct ingest *in = calloc(1, sizeof(*in));

	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->cfg = c;
	in->lfd = -1;
	in->q = enqueuer_start(c, err, errlen);
	if (in->q == NULL)
		goto fail;
	in->wh = webhook_new(c, in->q, err, errlen);
	if (in->wh == NULL)
		goto fail;
	in->lfd = open_listener(c->listen, err, errlen);
	if (in->lfd < 0)
		goto fail;
	if (c->admin_listen[0] != '\0') {
		const struct admin_source src = {.component = "ingest",
		                                 .metrics = webhook_metrics,
		                                 .ready = webhook_ready,
		                                 .arg = in->wh};

		in->admin = admin_start(c->admin_listen, "INGEST_ADMIN_LISTEN", &src, err, errlen);
		if (in->admin == NULL)
			goto fail;
	}
	in->loops = calloc((size_t)c->threads, sizeof(*in->loops));
	if (in->loops == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (; in->nloops < c->threads; in->nloops++)
		if (loop_init(in, &in->loops[in->nloops], in->nloops, err, errlen) != 0) {
			in->nloops++; /* its parts are freed too */
			goto fail;
		}
	return in;
fail:
	ingest_stop(in);
	return NULL;
}

void ingest_stop(struct ingest *in)
{
	if (in == NULL)
		return;
	in->stop = 1;
	/* New connections are refused from now on (the proxy tries another instance); the
	 * descriptor is closed once no loop can use it. */
	if (in->lfd >= 0)
		(void)shutdown(in->lfd, SHUT_RDWR);
	for (int i = 0; i < in->nloops; i++)
		if (in->loops[i].started)
			pthread_join(in->loops[i].thread, NULL);
	for (int i = 0; i < in->nloops; i++)
		loop_free(&in->loops[i]);
	free(in->loops);
	if (in->lfd >= 0)
		close(in->lfd);
	admin_stop(in->admin); /* its threads read the webhook's counters */
	webhook_free(in->wh);
	enqueuer_stop(in->q); /* after the loops: queued spool writes call back into them */
	free(in);
}
