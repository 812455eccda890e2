#ifndef SB_ENQUEUE_H
#define SB_ENQUEUE_H

#include "cfg.h"
#include "stream.h"

#include <hiredis/hiredis.h>
#include <stdio.h>

/* Durable enqueue, free of HTTP: the Redis connections of the callers' XADD pipelines, and,
 * when Redis cannot take an entry, the local spool (fsynced), re-driven into the stream
 * later. */

struct enqueuer; /* opaque */

enum enq_result {
	ENQ_REDIS,   /* in the stream: Redis confirmed the XADD */
	ENQ_SPOOLED, /* in the local spool, on disk */
	ENQ_FULL,    /* Redis unavailable and the spool is full */
	ENQ_FAILED,  /* Redis unavailable and the spool could not be written */
};

/* Opens the spool (re-driving what an earlier run left there) and starts the re-drive
 * thread and the spool writers. c is borrowed. Returns a new enqueuer, or NULL with the
 * reason in err. */
struct enqueuer *enqueuer_start(const struct cfg *c, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops the threads (spool writes queued are finished first) and closes the spool
 * (NULL-safe). */
void enqueuer_stop(struct enqueuer *q);

/* Bodies of at least INGEST_COMPRESS_MIN bytes are compressed into z (the caller's, reused)
 * and e then points at them with enc "zstd"; smaller ones are left as they are. */
void enqueuer_encode(const struct enqueuer *q, struct stream_zbuf *z, struct stream_new *e);

/* The stream shards (SWITCHBOARD_SHARDS, shards.h) the entries are spread over: their count,
 * and the stream of shard i (borrowed, valid until enqueuer_stop()). */
int enqueuer_shards(const struct enqueuer *q);
const char *enqueuer_stream(const struct enqueuer *q, int shard);

/* A new Redis connection for the caller's pipelined XADDs to shard's stream (free with
 * redisFree()), to the server holding it (redisconn_open_key()), or NULL when it is down or
 * was found down within the last second (the shard's breaker: requests then go to the other
 * shards, or the spool, at once instead of each waiting for a connect to fail). */
redisContext *enqueuer_connect(struct enqueuer *q, int shard);

/* 1 while shard's breaker is open: its Redis was found down within the last second. */
int enqueuer_breaker_open(struct enqueuer *q, int shard);

/* Tells that shard's Redis failed an XADD or the connection (why, logged), opening the
 * shard's breaker. rid names the request, or is NULL for a connection with several in
 * flight. */
void enqueuer_redis_failed(struct enqueuer *q, int shard, const char *rid, const char *why);

/* Counts n XADDs shard's Redis confirmed (switchboard_ingest_xadd_total{shard}). */
void enqueuer_xadded(struct enqueuer *q, int shard, int n);

/* Told from a spool writer thread when the spool write of tag finished: ENQ_SPOOLED,
 * ENQ_FULL or ENQ_FAILED. */
typedef void (*enq_spooled_fn)(void *tag, enum enq_result res);

/* Queues body (len bytes, borrowed until done is called) for the spool, where a writer
 * thread appends it and waits for the disk, sharing the fsync with concurrent writes, then
 * calls done(tag, result). Never blocks. */
void enqueuer_spool(struct enqueuer *q, const char *body, size_t len, int64_t received_at,
                    const char *rid, enq_spooled_fn done, void *tag);

/* 1 when a request can be accepted now: a shard's Redis reachable, or the spool has not
 * refused one since it last shrank. */
int enqueuer_ready(struct enqueuer *q);

/* 1 when requests are accepted but not as usual: Redis unreachable (they are spooled), some
 * shards unreachable (their share goes to the others), or the spool still being re-driven;
 * the reason in why. 0 otherwise. */
int enqueuer_degraded(struct enqueuer *q, char *why, size_t whylen);

/* Writes the enqueue metrics (Prometheus text) to fp. */
void enqueuer_metrics(struct enqueuer *q, FILE *fp);

#endif
