#ifndef SB_WMETRICS_H
#define SB_WMETRICS_H

#include "cfg.h"
#include "metrics.h"

/* The worker's metrics, served with /healthz and /readyz by the admin listener (admin.h). */
enum wmetric {
	WM_FILED,        /* messages filed under an organization */
	WM_UNROUTED,     /* messages parked as unrouted */
	WM_DEAD,         /* messages dead-lettered */
	WM_BATCHES,      /* batches committed */
	WM_PG_ERRORS,    /* failed PostgreSQL connects and transactions */
	WM_REDIS_ERRORS, /* failed Redis connects and commands */
	WM_CLAIMED,      /* entries taken over from dead consumers */
	WM_TRIMMED,      /* entries trimmed past the retention window */
	WM_REROUTED,     /* parked messages filed by a re-route */
	WM_PARKED_NOW,   /* gauge: rows in unrouted_messages */
	WM_PARKED_AGE,   /* gauge: age of the oldest parked message, seconds */
	WM_LAG,          /* gauge: entries not yet delivered to the group */
	WM_PENDING,      /* gauge: entries delivered and not acknowledged */
	WM_REDIS_UP,     /* gauge: 1 while connected to Redis */
	WM_PG_UP,        /* gauge: 1 while connected to PostgreSQL */
	WM_COUNT
};

extern struct metric wmetrics[WM_COUNT];
extern struct metric_hist wbatch_hist; /* time to write and acknowledge one batch */

/* Starts the admin listener on cfg's WORKER_METRICS_LISTEN (host:port): /metrics, /healthz
 * and /readyz (ready while both connections are up), and the status page with its API
 * (status_http.h). cfg is borrowed until wmetrics_stop(). Returns 0, or -1 with the reason
 * in err. */
int wmetrics_start(const struct cfg *cfg, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops the listener if one runs. */
void wmetrics_stop(void);

#endif
