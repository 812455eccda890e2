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
	SINK_CONN,  /* connection lost (class 08, 57P, bad connection): reconnect, retry */
	SINK_RETRY, /* serialization failure or deadlock (40001, 40P01): retry */
	SINK_DATA,  /* anything else: the message's fault */
};

/* One message of a batch, with what became of it. */
struct sink_item {
	struct stream_entry entry; /* id, received_at, source (borrowed from the reply) */
	const char *body;          /* decoded body, NUL-terminated (borrowed) */
	size_t body_len;
	struct vapi_msg msg;       /* parsed when !dead */
	bool dead;                 /* goes to the dead-letter stream with reason */
	bool unrouted;             /* parked in unrouted_messages with reason */
	char reason[512];
};

/* Connects to conninfo and prepares the statements. Returns a new sink (free with
 * sink_close()) or NULL with the reason in err. */
struct sink *sink_open(const char *conninfo, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Closes the connection and frees s (NULL-safe). */
void sink_close(struct sink *s);

/* Writes the items that are not dead, in the order given, in ONE transaction. Sets
 * `unrouted` and `reason` on the items it parks. Returns SINK_OK after COMMIT; otherwise
 * the transaction was rolled back, err says why, and the status says what to do. */
enum sink_status sink_write(struct sink *s, struct sink_item **items, size_t n, char *err,
			    size_t errlen) __attribute__((warn_unused_result));

#endif
