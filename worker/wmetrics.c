/* Worker metrics and their HTTP listener (civetweb, two threads). */
#include "wmetrics.h"

#include "status.h"
#include "status_http.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    [WM_REDIS_UP] = G("redis_up", "1 while connected to Redis"),
    [WM_PG_UP] = G("postgres_up", "1 while connected to PostgreSQL"),
};

struct metric_hist wbatch_hist = {
    "switchboard_worker_batch_seconds", "Time to write, commit and acknowledge one batch", {0}, 0};

static struct mg_context *listener;
static struct status *snapshot; /* what the page and the gauges read */

/* The group and parked gauges, read from Redis and PostgreSQL now (cached a second), not
 * left by the batch loop: they keep moving while the worker waits for PostgreSQL. */
static void refresh_gauges(void)
{
	struct status_gauges g;

	status_gauges(snapshot, &g);
	metric_set(&wmetrics[WM_LAG], g.lag);
	metric_set(&wmetrics[WM_PENDING], g.pending);
	metric_set(&wmetrics[WM_PARKED_NOW], g.unrouted);
	metric_set(&wmetrics[WM_PARKED_AGE], g.unrouted_age_s);
}

static int on_metrics(struct mg_connection *conn, void *cbdata)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	(void)cbdata;
	if (fp == NULL) {
		mg_send_http_error(conn, 500, "out of memory");
		return 500;
	}
	refresh_gauges();
	metrics_write(fp, wmetrics, WM_COUNT, &wbatch_hist);
	fclose(fp);
	mg_send_http_ok(conn, "text/plain; version=0.0.4", (long long)len);
	mg_write(conn, text, len);
	free(text);
	return 200;
}

static int on_health(struct mg_connection *conn, void *cbdata)
{
	int ready =
	    atomic_load(&wmetrics[WM_REDIS_UP].value) && atomic_load(&wmetrics[WM_PG_UP].value);
	const char *body =
	    cbdata == NULL || ready ? "{\"status\":\"ok\"}\n" : "{\"status\":\"not ready\"}\n";
	int status = cbdata == NULL || ready ? 200 : 503;

	mg_response_header_start(conn, status);
	mg_response_header_add(conn, "Content-Type", "application/json", -1);
	mg_response_header_send(conn);
	mg_write(conn, body, strlen(body));
	return status;
}

int wmetrics_start(const struct cfg *cfg, char *err, size_t errlen)
{
	const char *listen = cfg->metrics_listen;
	const char *opts[] = {"listening_ports", listen, "num_threads", "4", NULL};
	struct mg_callbacks cb;
	struct mg_init_data init = {&cb, NULL, opts};
	unsigned code = 0;
	char why[256] = "";
	struct mg_error_data ed = {&code, why, sizeof(why)};

	memset(&cb, 0, sizeof(cb));
	snapshot = status_new(cfg);
	if (snapshot == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	mg_init_library(0);
	listener = mg_start2(&init, &ed);
	if (listener == NULL) {
		snprintf(err, errlen, "WORKER_METRICS_LISTEN %s: %s", listen, why);
		mg_exit_library();
		status_free(snapshot);
		snapshot = NULL;
		return -1;
	}
	mg_set_request_handler(listener, "/metrics$", on_metrics, NULL);
	mg_set_request_handler(listener, "/healthz$", on_health, NULL);
	mg_set_request_handler(listener, "/readyz$", on_health, listener);
	status_http_register(listener, snapshot, cfg->admin_token);
	return 0;
}

void wmetrics_stop(void)
{
	if (listener == NULL)
		return;
	mg_stop(listener);
	mg_exit_library();
	listener = NULL;
	status_free(snapshot);
	snapshot = NULL;
}
