#ifndef SB_SPOOL_H
#define SB_SPOOL_H

#include <stddef.h>
#include <stdint.h>

/* The local spool: an append-only file of webhooks accepted while Redis could not take
 * them, each record fsynced before the request is answered, re-driven into the stream
 * in order once Redis answers again.
 *
 * Record: "SBS1" | payload length (u32 LE) | CRC-32 of the payload (u32 LE) | payload, where
 * payload = received_at (i64 LE) | request id length (u16 LE) | request id | body.
 * A record cut short by a crash (or failing its CRC) ends the readable part of the file: it
 * and anything after it are reported and dropped, never re-driven as garbage. */

struct spool; /* opaque */

/* One record as read back; pointers borrow from the spool's read buffer. */
struct spool_rec {
	int64_t received_at;
	char request_id[80]; /* copied, NUL-terminated (cut to fit) */
	const char *body;    /* body_len bytes (not NUL-terminated) */
	size_t body_len;
};

/* Opens (creating dir and file as needed) the spool in dir, holding at most max_bytes.
 * Scans what is there: counts records, drops a torn tail (logged). Returns a new spool (free
 * with spool_close()) or NULL with the reason in err. */
struct spool *spool_open(const char *dir, long long max_bytes, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes s (NULL-safe). */
void spool_close(struct spool *s);

/* Appends one record and returns once it is on disk (concurrent appends share one
 * fdatasync). Returns 0; -2 when the spool is full; -1 on an I/O error (reason in err). */
int spool_append(struct spool *s, const char *body, size_t len, int64_t received_at,
                 const char *request_id, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Records handed to a drain callback at once, at most: SPOOL_DRAIN_BATCH of them or about
 * SPOOL_DRAIN_BYTES (a larger record goes alone). */
#define SPOOL_DRAIN_BATCH 256
#define SPOOL_DRAIN_BYTES (2 << 20)

/* Takes recs[0..n) (in order; they borrow from the spool's read window, valid during the
 * call) and returns how many of them, from the first, are now durable elsewhere: those are
 * removed from the spool. Returning fewer than n ends the drain. */
typedef int (*spool_drain_fn)(void *ctx, const struct spool_rec *recs, int n);

/* Hands fn the records in order, in batches (SPOOL_DRAIN_BATCH, SPOOL_DRAIN_BYTES), up to those
 * present when it started, and removes the ones fn took; stops at the first batch fn did not take
 * whole. Reads the file a window at a time: memory does not grow with the spool. *moved
 * counts the removed. Returns 0, or -1 with the reason in err when the file could not be
 * read or rewritten. */
int spool_drain(struct spool *s, spool_drain_fn fn, void *ctx, long long *moved, char *err,
                size_t errlen) __attribute__((warn_unused_result));

/* Records held now; their size in bytes goes to *bytes when bytes is not NULL. */
long long spool_entries(struct spool *s, long long *bytes);

#endif
