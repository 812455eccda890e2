#ifndef SB_ENQUEUE_H
#define SB_ENQUEUE_H

#include "cfg.h"
#include "stream.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

/* Durable enqueue, free of HTTP: XADD to Redis, or, when Redis cannot take the entry, append
 * it to the local spool (fsynced) and re-drive it into the stream later. */

struct enqueuer; /* opaque */

/* A caller thread's own state. Zero-initialise; release with enq_conn_close(). */
struct enq_conn {
	struct stream_zbuf z; /* compressor of large bodies */
};

enum enq_result {
	ENQ_REDIS,   /* in the stream: Redis confirmed the XADD */
	ENQ_SPOOLED, /* in the local spool, on disk */
	ENQ_FULL,    /* Redis unavailable and the spool is full */
	ENQ_FAILED,  /* Redis unavailable and the spool could not be written */
};

/* Opens the spool (re-driving what an earlier run left there) and starts the re-drive
 * thread. c is borrowed. Returns a new enqueuer, or NULL with the reason in err. */
struct enqueuer *enqueuer_start(const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops the re-drive thread and closes the spool (NULL-safe). */
void enqueuer_stop(struct enqueuer *q);

/* Makes body (len bytes, NUL-terminated) durable with the request id rid. On ENQ_REDIS the
 * stream id is copied into id. Never blocks longer than the Redis timeout. */
enum enq_result enqueuer_put(struct enqueuer *q, struct enq_conn *t, const char *body, size_t len,
                             const char *rid, char *id, size_t idlen);

/* Releases a caller's state. */
void enq_conn_close(struct enq_conn *t);

/* 1 when a request can be accepted now: Redis reachable, or the spool has not refused one
 * since it last shrank. */
int enqueuer_ready(struct enqueuer *q);

/* Writes the enqueue metrics (Prometheus text) to fp. */
void enqueuer_metrics(struct enqueuer *q, FILE *fp);

#endif
