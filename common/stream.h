#ifndef SB_STREAM_H
#define SB_STREAM_H

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

/* The stream entry ingest writes and every reader decodes (see README "The stream entry"). */
#define STREAM_F_BODY "body"
#define STREAM_F_RECEIVED_AT "received_at"
#define STREAM_F_REQUEST_ID "request_id"
#define STREAM_F_SOURCE "source"
#define STREAM_F_ENC "enc"

/* Keys beside the stream (each a printf format over the stream's name): the hash every ingest
 * publishes its spool to, a field per instance with "entries bytes epoch_ms"; and the hash
 * per hour (epoch ms / 3600000) the workers count filed messages in, a field per minute. */
#define STREAM_INGEST_KEY_FMT "%s:ingest"
#define STREAM_FILED_KEY_FMT "%s:filed:%lld"

/* One entry read back from the stream. Pointers borrow from the reply it was parsed from. */
struct stream_entry {
	char id[48];            /* stream entry id, "1700000000000-0" */
	const char *body;       /* body as stored (maybe encoded); NULL if the entry is gone */
	size_t body_len;        /* its length */
	int64_t received_at;    /* ms since the epoch, 0 when absent */
	const char *request_id; /* or NULL */
	const char *source;     /* "http", "spool", "backfill", or NULL */
	const char *enc;        /* NULL for a body stored as received */
};

/* Parses one [id, [field, value, ...]] element of an XREADGROUP/XRANGE reply into *e.
 * An entry whose fields are nil (deleted from the stream while pending) gets body NULL.
 * Returns 0, or -1 when the element has another shape. */
int stream_entry_parse(const redisReply *r, struct stream_entry *e)
    __attribute__((warn_unused_result));

/* Bodies this large or larger are decoded no further (a corrupt or hostile frame). */
#define STREAM_MAX_BODY (1LL << 30)

/* Gives the body of e as received, decoding `enc` ("zstd"). Without an encoding the body is
 * e's own (borrowed) and *owned is NULL; decoded, it is a new NUL-terminated buffer, also in
 * *owned: free it. Returns 0 with *body and *len, or -1 with a reason in err for an unknown
 * encoding, a corrupt frame or a missing body. The single place every reader decodes. */
int stream_entry_body(const struct stream_entry *e, const char **body, size_t *len, char **owned,
                      char *err, size_t errlen) __attribute__((warn_unused_result));

/* A compressor's reusable output buffer: zero-initialise; release with stream_zbuf_free(). */
struct stream_zbuf {
	char *buf;  /* output, grown as needed */
	size_t cap; /* its size */
};

/* Compresses src[0..len) with zstd at a fast level into z's buffer (valid until the next
 * call). Returns its size, or 0 when compression fails or would not make it smaller. */
size_t stream_compress(struct stream_zbuf *z, const char *src, size_t len);

/* Releases z's buffer. */
void stream_zbuf_free(struct stream_zbuf *z);

/* The fields of a new entry (borrowed). */
struct stream_new {
	const char *body; /* exact bytes */
	size_t body_len;
	int64_t received_at;    /* ms since the epoch */
	const char *request_id; /* may be NULL */
	const char *source;     /* "http", "spool", "backfill" */
	const char *enc;        /* NULL for a body stored as received */
};

/* The most arguments stream_xadd_argv() produces. */
#define STREAM_XADD_ARGS 13

/* Fills argv/lens (STREAM_XADD_ARGS each) with the XADD of e to stream; recv (24 bytes)
 * holds the received_at text they point to. Returns the argument count. */
int stream_xadd_argv(const char *stream, const struct stream_new *e, const char **argv,
                     size_t *lens, char *recv);

/* Appends the XADD of e to stream to c's output buffer, for pipelining: the reply is read
 * later (redisGetReply), in order. */
void stream_xadd_append(redisContext *c, const char *stream, const struct stream_new *e);

/* XADDs e to stream: the one way a single entry is written (backfill; ingest and the
 * spool re-drive pipeline with stream_xadd_append()). Copies the new id into id. Returns 0; -1 when
 * the context failed (it is dead: free it) or Redis answered an error; the reason is in err. */
int stream_xadd(redisContext *c, const char *stream, const struct stream_new *e, char *id,
                size_t idlen, char *err, size_t errlen) __attribute__((warn_unused_result));

/* Creates the consumer group at the stream's start ($ would skip entries written before the
 * first worker started) with MKSTREAM. An existing group (BUSYGROUP) is fine. Returns 1 when
 * it created the group, 0 when it existed, or -1 with a reason in err. */
int stream_ensure_group(redisContext *c, const char *stream, const char *group, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

#endif
