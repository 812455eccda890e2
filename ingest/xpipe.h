#ifndef SB_XPIPE_H
#define SB_XPIPE_H

#include "stream.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* Group commit of XADDs on one non-blocking Redis connection, for one event loop: the XADDs
 * of every request that completed in a loop pass are appended without waiting, leave in one
 * write, and their replies are handed back in order as they arrive, each request answered
 * as soon as its own reply is in. Free of HTTP and of any event library: the caller polls
 * xpipe_fd(). */

struct xpipe; /* opaque */

/* Told the outcome of one XADD: rc 0 with the new entry id in text, or -1 with the reason
 * (Redis refused it, the connection failed, or with WAITAOF the entry did not reach the
 * disk in time). tag is the caller's, given to xpipe_add(). */
typedef void (*xpipe_done_fn)(void *tag, int rc, const char *text, void *arg);

/* A pipe for stream (copied) without a connection. With wait_aof, entries are reported only
 * once WAITAOF says the local append-only file holds them (where Redis has WAITAOF: 7.2 and
 * later; without it an error is logged once per process and entries are reported on the
 * XADD). With wait_replicas > 0, also only once WAIT says that many replicas have them
 * (INGEST_WAIT_REPLICAS); an entry either wait fails for is reported failed. Returns NULL
 * when out of memory; free with xpipe_free(). */
struct xpipe *xpipe_new(const char *stream, int wait_aof, int wait_replicas, int timeout_ms)
    __attribute__((warn_unused_result));

/* Frees p and its connection (NULL-safe); pending entries are dropped without a call. */
void xpipe_free(struct xpipe *p);

/* Takes over c, a connected blocking context (from redisconn_open_key() for the stream),
 * and makes it
 * non-blocking. Returns 0, or -1 (c freed) when it failed while asking for WAITAOF. */
int xpipe_attach(struct xpipe *p, redisContext *c) __attribute__((warn_unused_result));

/* The connection's descriptor, or -1 while there is none. */
int xpipe_fd(const struct xpipe *p);

/* Appends the XADD of e (copied at once) for tag. Needs a connection. */
void xpipe_add(struct xpipe *p, const struct stream_new *e, void *tag);

/* Ends a batch of xpipe_add() calls: with WAITAOF in force, appends the one fsync wait that
 * covers them. */
void xpipe_commit(struct xpipe *p);

/* Writes what is buffered. Returns 0 when all of it left, 1 when the socket is full (wait
 * until it is writable), -1 when the connection failed (call xpipe_reset()). */
int xpipe_flush(struct xpipe *p);

/* Reads the replies that arrived and calls done for each finished entry, in order (done
 * must not call back into p). Returns 0, or -1 when the connection failed or closed (call
 * xpipe_reset()). */
int xpipe_read(struct xpipe *p, xpipe_done_fn done, void *arg);

/* Closes the connection and fails every pending entry with why (done called for each). */
void xpipe_reset(struct xpipe *p, const char *why, xpipe_done_fn done, void *arg);

/* The reason of the connection's last failure ("" when none). */
const char *xpipe_error(const struct xpipe *p);

/* Entries sent and not yet reported. */
size_t xpipe_pending(const struct xpipe *p);

/* Monotonic ms since the oldest pending entry was added, 0 when none is pending. */
int64_t xpipe_oldest_age_ms(const struct xpipe *p, int64_t now_ms);

#endif
