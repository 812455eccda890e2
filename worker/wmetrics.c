/* Worker metrics, and what the admin listener serves of them. */
#include "wmetrics.h"

#include "admin.h"
#include "status.h"
#include "status_http.h"

#include <stdbool.h>
#include <stdio.h>

#define C(name, labels, help)                                                                      \
	{                                                                                          \
		"switchboard_worker_" name, labels, "counter", help, 0                             \
	}
#define G(name, help)                                                                              \
	{                                                                                          \
		"switchboard_worker_" name, "", "gauge", help, 0                                   \
	}
#define MSGS "Messages processed, by outcome"

struct metric wmetrics[WM_COUNT] = {
    [WM_FILED] = C("messages_total", "{outcome=\"filed\"}", MSGS),
    [WM_UNROUTED] = C("messages_total", "{outcome=\"unrouted\"}", MSGS),
    [WM_DEAD] = C("messages_total", "{outcome=\"dead\"}", MSGS),
    [WM_BATCHES] = C("batches_total", "", "Batches committed and acknowledged"),
    [WM_PG_ERRORS] = C("postgres_errors_total", "",
                       "Failed PostgreSQL connects and "
                       "transactions"),
    [WM_REDIS_ERRORS] = C("redis_errors_total", "", "Failed Redis connects and commands"),
    [WM_CLAIMED] = C("claimed_total", "", "Entries taken over from consumers that stopped"),
    [WM_TRIMMED] = C("trimmed_total", "", "Entries trimmed past the retention window"),
    [WM_REROUTED] = C("rerouted_total", "", "Parked messages filed by a later re-route"),
    [WM_PARKED_NOW] = G("unrouted_messages", "Messages parked as unrouted"),
    [WM_PARKED_AGE] = G("unrouted_oldest_age_seconds", "Age of the oldest parked message"),
    [WM_LAG] = G("group_lag", "Stream entries not yet delivered to the group"),
    [WM_PENDING] = G("group_pending", "Entries delivered to the group and not acknowledged"),
    [WM_REDIS_UP] = G("redis_up", "1 while connected to Redis (to every stream shard)"),
    [WM_PG_UP] = G("postgres_up", "1 while connected to PostgreSQL"),
};

struct metric_hist wbatch_hist = {
    "switchboard_worker_batch_seconds", "Time to write, commit and acknowledge one batch", {0}, 0};

static struct admin *listener;
static struct status *snapshot; /* what the status page and the gauges read */

/* The group and unrouted gauges, read from Redis and PostgreSQL now (cached a second) rather
 * than left by the batch loop: they keep moving while the worker waits for PostgreSQL. */
static void write_metrics(void *arg, FILE *fp)
{
	struct status_gauges g;

	status_gauges(arg, &g);
	metric_set(&wmetrics[WM_LAG], g.lag);
	metric_set(&wmetrics[WM_PENDING], g.pending);
	metric_set(&wmetrics[WM_PARKED_NOW], g.unrouted);
	metric_set(&wmetrics[WM_PARKED_AGE], g.unrouted_age_s);
	metrics_write(fp, wmetrics, WM_COUNT, &wbatch_hist);
}

static bool is_ready(void *arg, char *why, size_t whylen)
{
	bool redis = atomic_load(&wmetrics[WM_REDIS_UP].value) != 0;
	bool pg = atomic_load(&wmetrics[WM_PG_UP].value) != 0;

	(void)arg;
	if (!redis || !pg)
		snprintf(why, whylen, "%s",
		         !redis && !pg ? "Redis and PostgreSQL down"
		         : redis       ? "PostgreSQL down"
		                       : "Redis down");
	return redis && pg;
}

int wmetrics_start(const struct cfg *cfg, char *err, size_t errlen)
{
	struct admin_source src = {.component = "worker",
	                           .metrics = write_metrics,
	                           .ready = is_ready,
	                           .routes = status_http_routes,
	                           .nroutes = status_http_nroutes,
	                           .token = cfg->admin_token};

	snapshot = status_new(cfg);
	if (snapshot == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	src.arg = snapshot;
	listener = admin_start(cfg->metrics_listen, "WORKER_METRICS_LISTEN", &src, err, errlen);
	if (listener == NULL) {
		status_free(snapshot);
		snapshot = NULL;
		return -1;
	}
	return 0;
}

void wmetrics_stop(void)
{
	admin_stop(listener);
	listener = NULL;
	status_free(snapshot);
	snapshot = NULL;
}
