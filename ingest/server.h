#ifndef SB_SERVER_H
#define SB_SERVER_H

#include "cfg.h"

#include <stddef.h>

/* The HTTP/1.1 server of ingest: INGEST_THREADS event loops (epoll) share one listening
 * socket; each serves its connections without blocking and owns a pipelined Redis
 * connection per stream shard (SWITCHBOARD_SHARDS), handing each request to the next shard
 * that can take it, so a request costs a read, a write and a share of one XADD round trip. */

struct ingest; /* opaque: the running server */

/* Binds INGEST_LISTEN and starts the loops with the settings in c (borrowed: must outlive
 * the server). Returns the server, or NULL with the reason in err. */
struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops accepting, lets requests in flight finish and be answered, frees everything
 * (NULL-safe). */
void ingest_stop(struct ingest *in);

#endif
