#ifndef SB_WEBHOOK_H
#define SB_WEBHOOK_H

#include "auth.h"
#include "cfg.h"
#include "enqueue.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The routes of the webhook listener, free of sockets: POST /api/vapi/webhook and a plain
 * GET /healthz for load balancers (metrics and readiness are on the admin listener, through
 * webhook_metrics() and webhook_ready()). The server (server.c) describes each request as
 * plain data and sends the answers these functions write. */

struct webhook; /* opaque: settings, authentication, counters */

/* An answer being built: the whole HTTP response, head and body. Zero-initialise; free
 * buf. */
struct wh_out {
	char *buf;  /* grown as needed */
	size_t len; /* bytes in buf */
	size_t cap; /* its size */
};

/* A request as the routes see it (all borrowed). */
struct wh_req {
	const char *method;
	const char *path;                                   /* without the query */
	const char *(*header)(void *ctx, const char *name); /* NULL when absent, any case */
	void *ctx;                                          /* passed to header */
	const char *peer;                                   /* the TCP peer's address */
	long long content_length;                           /* -1 when absent */
	bool has_body;                                      /* a body follows the head */
	bool close;       /* in: the client ends the connection; out: the answer closes it */
	const char *body; /* once read */
	size_t body_len;
	char rid[40]; /* request id, set by webhook_head() on the webhook route */
};

/* Builds the authentication settings from c (strings borrowed from c). Returns 0, or -1
 * with err naming the variable that is wrong. Free with auth_cfg_free_networks(). */
int webhook_auth_init(struct auth_cfg *a, const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* The routes for c (borrowed) over q (borrowed). Returns NULL with the reason in err. */
struct webhook *webhook_new(const struct cfg *c, struct enqueuer *q, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Frees w (NULL-safe). */
void webhook_free(struct webhook *w);

/* Routes a request whose head is in. Returns 1 when its body is to be read (the webhook
 * route, at most webhook_max_body() bytes), or 0 with the answer in o. */
int webhook_head(struct webhook *w, struct wh_req *r, struct wh_out *o);

/* Writes ingest's metrics (the webhook's counters and the enqueuer's) to fp; arg is the
 * struct webhook. For the admin listener: safe from any thread. */
void webhook_metrics(void *arg, FILE *fp);

/* Whether a webhook can be made durable now (Redis, or room in the spool); else false with
 * the reason in why. arg is the struct webhook. */
bool webhook_ready(void *arg, char *why, size_t whylen);

/* Largest body accepted. */
long long webhook_max_body(const struct webhook *w);

/* Checks a webhook whose body is in. Returns 1 when it is to be enqueued, or 0 with the
 * answer (401, 400) in o. */
int webhook_body(struct webhook *w, struct wh_req *r, struct wh_out *o);

/* Answers a webhook after its enqueue: 200 with the stream id (or "spool"), or 503.
 * t0_us is when the enqueue started (monotonic), for the latency histogram. */
void webhook_enqueued(struct webhook *w, const struct wh_req *r, enum enq_result res,
                      const char *id, int64_t t0_us, struct wh_out *o);

/* Appends the interim "100 Continue" a client that sent Expect waits for. */
void webhook_continue(struct wh_out *o);

/* Answers a request the server cannot finish: 400 (malformed), 408 (too slow), 413 (body
 * over the limit), 431 (head, chunk extensions or trailers too large) or 501 (a transfer
 * coding other than chunked). r may be NULL before the head was read. */
void webhook_refuse(struct webhook *w, const struct wh_req *r, int status, struct wh_out *o);

#endif
