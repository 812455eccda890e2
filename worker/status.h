#ifndef SB_STATUS_H
#define SB_STATUS_H

#include "cfg.h"

#include <stdbool.h>

/* What the status page, its JSON API and the worker's gauges show (README "Status page"):
 * read from Redis and PostgreSQL on connections of its own, never written, cached for
 * STATUS_CACHE_MS so that any number of viewers costs the servers one read a second. The
 * Redis part is read even while PostgreSQL is down, and the other way round. Thread-safe. */

#define STATUS_CACHE_MS 1000

struct status; /* opaque */

/* Returns a new reader of cfg's servers (no connection yet; free with status_free()), or
 * NULL when out of memory. cfg is borrowed for the reader's life. */
struct status *status_new(const struct cfg *cfg);

/* Closes the reader's connections and frees it (NULL-safe). */
void status_free(struct status *s);

/* The numbers the worker's gauges export; values are -1 when not known. */
struct status_gauges {
	long long lag;            /* entries not yet delivered to the group */
	long long pending;        /* delivered, not acknowledged */
	long long unrouted;       /* rows in unrouted_messages, as last read */
	long long unrouted_age_s; /* age of the oldest, growing while PostgreSQL is down */
};

/* Fills g from the current snapshot (refreshing it when older than STATUS_CACHE_MS). */
void status_gauges(struct status *s, struct status_gauges *g);

/* The /api/status document, as a new string (free it); NULL when out of memory. */
char *status_json(struct status *s) __attribute__((warn_unused_result));

/* The /api/calls/{id} document for a call id or an ingest request id: the call's row
 * (phone numbers masked) and its events, no bodies. Returns 200 with *out set (free it),
 * 404 when no call has that id, 503 when PostgreSQL cannot be read (*out then says why). */
int status_call_json(struct status *s, const char *id, char **out)
    __attribute__((warn_unused_result));

/* Masks a phone number to its last four digits ("+15550001234" → "+*******1234", other characters
 * kept) into buf. Returns buf. */
const char *status_mask_phone(const char *number, char *buf, size_t size);

#endif
