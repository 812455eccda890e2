#ifndef SB_XBATCH_H
#define SB_XBATCH_H

#include "redisconn.h"
#include "stream.h"

#include <stddef.h>

/* Group commit of XADDs: request threads hand their entry to one thread that owns the Redis
 * connection; it writes every entry waiting at that moment in one pipeline (one write, one
 * read for many replies) and wakes each request as soon as its own reply is in. */

struct xbatch; /* opaque */

/* Called (by the batch thread) when a connect fails, to open the caller's breaker. */
typedef void (*xbatch_down_fn)(void *arg);

/* Starts the batch thread for stream on addr. With wait_aof, a batch is acknowledged only
 * once WAITAOF says the local append-only file holds it on disk (where the server has
 * WAITAOF; without it, an error is logged and entries are acknowledged on the XADD). down
 * (may be NULL) is told of failed connects. Returns the batcher, or NULL with the reason in
 * err. */
struct xbatch *xbatch_start(const struct redis_addr *addr, int timeout_ms, const char *stream,
                            int wait_aof, xbatch_down_fn down, void *down_arg, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* Stops the thread (failing anything still queued) and frees b (NULL-safe). */
void xbatch_stop(struct xbatch *b);

/* XADDs e through the batch thread and waits for its reply. Returns 0 with the stream id
 * in id, or -1 with the reason in err (Redis unreachable or refusing). e must stay valid
 * until it returns. */
int xbatch_add(struct xbatch *b, const struct stream_new *e, char *id, size_t idlen, char *err,
               size_t errlen) __attribute__((warn_unused_result));

#endif
