#ifndef SB_MAINT_H
#define SB_MAINT_H

#include "consumer.h"

#include <stdint.h>

/* Periodic duties of a running worker: taking over entries of dead consumers, trimming the
 * stream to the retention window, re-routing parked messages. (The gauges are read when
 * scraped: status.h.) */

struct maint {
	struct consumer *c;
	int64_t next_claim, next_trim, next_reroute, next_events; /* monotonic ms */
};

/* The consumer group as XINFO GROUPS shows it. */
struct group_state {
	long long pending;       /* delivered, not acknowledged */
	long long lag;           /* not yet delivered */
	long long consumers;     /* consumers known to the group */
	char last_delivered[48]; /* last-delivered-id */
};

void maint_init(struct maint *m, struct consumer *c);

/* Runs whichever duty is due (claim and trim on every connected shard). */
void maint_tick(struct maint *m);

/* Takes over entries idle longer than min_idle_ms at any consumer (XAUTOCLAIM) and processes
 * them. *claimed counts them. Returns 0, or -1 when Redis failed. */
int maint_claim(struct consumer *c, long long min_idle_ms, long long *claimed);

/* Trims entries older than the retention window, never past the oldest pending entry or the
 * last-delivered id of any group. *trimmed counts them. Returns 0, or -1 (logged). */
int maint_trim(struct consumer *c, long long *trimmed);

/* Re-routes parked messages; *filed counts those filed now, *left those still parked.
 * Returns 0, or -1 (logged). */
int maint_reroute(struct consumer *c, long long *filed, long long *left);

/* Makes call_events partitions ahead and drops those past EVENT_RETENTION; *created and
 * *dropped count them. Returns 0, or -1 (logged). */
int maint_events(struct consumer *c, long long *created, long long *dropped);

/* Reads the group's state on the selected shard. Returns 0, -1 when Redis failed, 1 when
 * there is no such group. */
int maint_group_state(struct consumer *c, struct group_state *g);

/* The group's state over every shard (connecting those that are not): lag and pending
 * summed, the most consumers any shard knows, the newest last-delivered id. Returns 0, -1
 * when Redis failed on one, 1 when no shard has the group. */
int maint_group_total(struct consumer *c, struct group_state *g);

/* Removes this consumer from the group when it holds nothing pending (clean scale-down). */
void maint_leave_group(struct consumer *c);

#endif
