#ifndef SB_SINK_H
#define SB_SINK_H

#include "route.h"
#include "stream.h"
#include "vapi_msg.h"

#include <stdbool.h>
#include <stddef.h>

/* Writes messages to PostgreSQL: calls, call_events and unrouted_messages, idempotently. */

struct sink; /* opaque: one connection with its prepared statements */

/* How a write failed, from the SQLSTATE. */
enum sink_status {
	SINK_OK,
	SINK_CONN,  /* connection lost (class 08, 53, 57P, bad connection): reconnect, retry */
	SINK_RETRY, /* serialization failure, deadlock, cancel (40001, 40P01, 57014): retry */
	SINK_DATA,  /* anything else: the message's fault */
};

/* One message of a batch, with what became of it. */
struct sink_item {
	struct stream_entry entry; /* id, received_at, source (borrowed from the reply) */
	const char *body;          /* decoded body, NUL-terminated (borrowed or owned) */
	char *owned;               /* the decoded body when it had to be decoded: freed */
	size_t body_len;
	struct vapi_msg msg;   /* parsed when !dead */
	bool dead;             /* goes to the dead-letter stream with reason */
	bool skip;             /* left out by a filter (replay): not written */
	bool unrouted;         /* parked in unrouted_messages with reason */
	long long deliveries;  /* how often the entry was delivered */
	const char *parked_id; /* unrouted_messages.id when re-routing a parked message */
	char reason[512];
};

/* Connects to conninfo and prepares the statements. Returns a new sink (free with
 * sink_close()) or NULL with the reason in err. */
struct sink *sink_open(const char *conninfo, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes the connection and frees s (NULL-safe). */
void sink_close(struct sink *s);

/* Writes the items that are neither dead nor skipped, in the order given, in ONE transaction. Sets
 * `unrouted` and `reason` on the items it parks. Returns SINK_OK after COMMIT; otherwise
 * the transaction was rolled back, err says why, and the status says what to do. */
enum sink_status sink_write(struct sink *s, struct sink_item **items, size_t n, char *err,
                            size_t errlen) __attribute__((warn_unused_result));

/* Routes the parked messages again, limit at a time, each page in one transaction (rows
 * locked with SKIP LOCKED, so workers re-routing together do not collide). Those that now
 * resolve are filed and removed from unrouted_messages. *filed and *left count them.
 * Returns SINK_OK, or the failure with err set. */
enum sink_status sink_reroute(struct sink *s, long long limit, long long *filed, long long *left,
                              char *err, size_t errlen) __attribute__((warn_unused_result));

/* Counts parked messages and the age in seconds of the oldest. */
enum sink_status sink_parked_stats(struct sink *s, long long *count, long long *age_s, char *err,
                                   size_t errlen) __attribute__((warn_unused_result));

/* Resolves the organization of a parsed message without writing anything, for replay's
 * filters and dry runs. Copies it (or "" when unrouted) into org. */
enum sink_status sink_route(struct sink *s, const struct vapi_msg *m, char *org, size_t size,
                            char *err, size_t errlen) __attribute__((warn_unused_result));

/* The monthly partitions of call_events: this month's and `ahead` more are made, and those
 * whose month ended more than retention_ms ago (0: none) detached and dropped. *created and
 * *dropped count them. Returns SINK_OK, or the failure with err set. */
enum sink_status sink_maintain_events(struct sink *s, int ahead, long long retention_ms,
                                      long long *created, long long *dropped, char *err,
                                      size_t errlen) __attribute__((warn_unused_result));

#endif
