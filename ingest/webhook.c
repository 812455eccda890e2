/* civetweb adapter: routes, body reading, the XADD, and the answers. */
#include "webhook.h"

#include "auth.h"
#include "enqueue.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <civetweb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WEBHOOK_PATH "/api/vapi/webhook"
/* A thread keeps a body buffer up to this size between requests; larger ones are freed, so
 * that 128 threads do not each hold the largest body they ever saw. */
#define BUF_KEEP (32 << 10)

enum {
	M_REQ_200,
	M_REQ_400,
	M_REQ_401,
	M_REQ_404,
	M_REQ_405,
	M_REQ_408,
	M_REQ_413,
	M_REQ_503,
	M_BYTES,
	M_AUTH_FIRST, /* one per rejecting enum auth_reason, from AUTH_MISSING on */
	M_AUTH_LAST = M_AUTH_FIRST + AUTH_NETWORK - AUTH_MISSING,
	M_COUNT
};

#define REQ(code)                                                                                  \
	{                                                                                          \
		"switchboard_ingest_requests_total", "{route=\"webhook\",status=\"" #code "\"}",   \
		    "counter", "Webhook requests answered, by route and HTTP status", 0            \
	}
#define AUTHFAIL(reason)                                                                           \
	{                                                                                          \
		"switchboard_ingest_auth_failures_total", "{reason=\"" reason "\"}", "counter",    \
		    "Requests rejected by authentication, by reason", 0                            \
	}
static struct metric metrics[M_COUNT] = {
    [M_REQ_200] = REQ(200),
    [M_REQ_400] = REQ(400),
    [M_REQ_401] = REQ(401),
    [M_REQ_404] = REQ(404),
    [M_REQ_405] = REQ(405),
    [M_REQ_408] = REQ(408),
    [M_REQ_413] = REQ(413),
    [M_REQ_503] = REQ(503),
    [M_BYTES] = {"switchboard_ingest_received_bytes_total", "", "counter", "Body bytes accepted",
                 0},
    [M_AUTH_FIRST] = AUTHFAIL("missing"),
    [M_AUTH_FIRST + 1] = AUTHFAIL("mismatch"),
    [M_AUTH_FIRST + 2] = AUTHFAIL("malformed"),
    [M_AUTH_FIRST + 3] = AUTHFAIL("stale"),
    [M_AUTH_FIRST + 4] = AUTHFAIL("network"),
};
static struct metric_hist enqueue_hist = {
    "switchboard_ingest_enqueue_seconds", "Time from body read to the entry being durable", {0}, 0};

struct ingest {
	struct mg_context *ctx;
	const struct cfg *cfg;
	struct enqueuer *q;
	struct auth_cfg auth;
	unsigned boot;                  /* random per process, prefix of request ids */
	_Atomic unsigned long long seq; /* request counter */
};

/* Per civetweb worker thread: its own Redis connection and body buffer. */
struct ingest_thread {
	struct enq_conn conn;
	char xff[2048]; /* joined X-Forwarded-For lines of the current request */
	char *buf;
	size_t cap;
};

static void *thread_init(const struct mg_context *ctx, int type)
{
	(void)ctx;
	return type == 1 ? calloc(1, sizeof(struct ingest_thread)) : NULL;
}

static void thread_exit(const struct mg_context *ctx, int type, void *p)
{
	struct ingest_thread *t = p;

	(void)ctx;
	(void)type;
	if (t == NULL)
		return;
	enq_conn_close(&t->conn);
	free(t->buf);
	free(t);
}

/* Sends a small JSON answer. Webhook answers (those with a request id) are counted. */
static void answer(struct mg_connection *conn, int status, const char *rid, const char *json)
{
	char len[24];

	switch (rid == NULL ? 0 : status) {
	case 0:
		break;
	case 200:
		metric_add(&metrics[M_REQ_200], 1);
		break;
	case 400:
		metric_add(&metrics[M_REQ_400], 1);
		break;
	case 401:
		metric_add(&metrics[M_REQ_401], 1);
		break;
	case 404:
		metric_add(&metrics[M_REQ_404], 1);
		break;
	case 405:
		metric_add(&metrics[M_REQ_405], 1);
		break;
	case 408:
		metric_add(&metrics[M_REQ_408], 1);
		break;
	case 413:
		metric_add(&metrics[M_REQ_413], 1);
		break;
	default:
		metric_add(&metrics[M_REQ_503], 1);
		break;
	}
	snprintf(len, sizeof(len), "%zu", strlen(json));
	mg_response_header_start(conn, status);
	mg_response_header_add(conn, "Content-Type", "application/json", -1);
	mg_response_header_add(conn, "Content-Length", len, -1);
	if (rid != NULL)
		mg_response_header_add(conn, "X-Request-Id", rid, -1);
	if (status == 405)
		mg_response_header_add(conn, "Allow", "POST", -1);
	if (status == 413 || status == 408)
		mg_response_header_add(conn, "Connection", "close", -1);
	mg_response_header_send(conn);
	mg_write(conn, json, strlen(json));
}

/* Reads the whole body into t->buf within timeout_ms of the start. Returns its length,
 * -1 when it exceeds max, -2 when the client failed or went away, -3 when it was too slow
 * (a client sending a byte now and then must not pin a thread). */
static long long read_body(struct mg_connection *conn, struct ingest_thread *t, long long max,
                           long long timeout_ms)
{
	/* With a Content-Length, one allocation of the right size (and a byte to see the end). */
	long long hint = mg_get_request_info(conn)->content_length;
	int64_t deadline = util_mono_ms() + timeout_ms;
	size_t len = 0;

	for (;;) {
		int n;

		if (len == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : hint > 0 ? (size_t)hint + 1 : 16 * 1024;
			char *nb;

			if ((long long)t->cap > max)
				return -1;
			if ((long long)ncap > max + 1)
				ncap = (size_t)max + 1;
			nb = realloc(t->buf, ncap + 1);
			if (nb == NULL)
				return -2;
			t->buf = nb;
			t->cap = ncap;
		}
		n = mg_read(conn, t->buf + len, t->cap - len);
		if (n < 0)
			return -2;
		if (n == 0)
			break;
		len += (size_t)n;
		if ((long long)len > max)
			return -1;
		if (util_mono_ms() > deadline)
			return -3;
	}
	t->buf[len] = '\0';
	return (long long)len;
}

/* A header's value. X-Forwarded-For lines are joined in order ("a, b"): a proxy that adds
 * its own line instead of extending the client's must not let the client's line speak for
 * it. */
static const char *get_header(void *ctx, const char *name)
{
	const struct mg_request_info *ri = mg_get_request_info(ctx);
	struct ingest_thread *t = mg_get_thread_pointer(ctx);
	size_t used = 0;

	if (strcasecmp(name, AUTH_FORWARDED_HEADER) != 0)
		return mg_get_header(ctx, name);
	for (int i = 0; i < ri->num_headers; i++) {
		int n;

		if (strcasecmp(ri->http_headers[i].name, AUTH_FORWARDED_HEADER) != 0)
			continue;
		n = snprintf(t->xff + used, sizeof(t->xff) - used, "%s%s", used ? ", " : "",
		             ri->http_headers[i].value);
		if (n < 0 || (size_t)n >= sizeof(t->xff) - used)
			return "invalid"; /* too long to read whole: refuse rather than cut */
		used += (size_t)n;
	}
	return used ? t->xff : NULL;
}

/* Checks the request's credentials (after the body is read: HMAC signs the body). Answers
 * 401 and returns -1 when rejected. */
static int authenticate(struct mg_connection *conn, struct ingest *in, const char *rid, size_t len)
{
	struct ingest_thread *t = mg_get_thread_pointer(conn);
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct auth_request req = {get_header, conn, t->buf, len, ri->remote_addr, util_now_ms()};
	struct auth_match match = {0, 0};
	enum auth_reason ar = auth_check(&in->auth, &req, &match);
	char json[160];

	if (ar == AUTH_OK || ar == AUTH_DISABLED) {
		if (match.index == 1)
			log_msg(LOGL_INFO, "request_id", rid, "accepted with the previous %s",
			        match.mode == AUTH_SECRET   ? "secret"
			        : match.mode == AUTH_BEARER ? "bearer token"
			                                    : "HMAC key");
		return 0;
	}
	metric_add(&metrics[M_AUTH_FIRST + ar - AUTH_MISSING], 1);
	log_msg(LOGL_WARN, "request_id", rid, "rejected from %s: %s", ri->remote_addr,
	        auth_reason_name(ar));
	snprintf(json, sizeof(json), "{\"error\":\"unauthorized\",\"reason\":\"%s\"}",
	         auth_reason_name(ar));
	answer(conn, 401, rid, json);
	return -1;
}

static void handle_post(struct mg_connection *conn, struct ingest *in, const char *rid)
{
	struct ingest_thread *t = mg_get_thread_pointer(conn);
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char id[64], json[160];
	long long len;
	int64_t t0;

	if (ri->content_length > in->cfg->max_body ||
	    (len = read_body(conn, t, in->cfg->max_body, in->cfg->request_timeout_ms)) == -1) {
		answer(conn, 413, rid, "{\"error\":\"body too large\"}");
		return;
	}
	if (len == -3) {
		log_msg(LOGL_WARN, "request_id", rid, "body not received within %lld ms: closing",
		        in->cfg->request_timeout_ms);
		answer(conn, 408, rid, "{\"error\":\"request timeout\"}");
		return;
	}
	if (len < 0)
		return; /* the client went away or timed out: nothing to answer */
	if (authenticate(conn, in, rid, (size_t)len) != 0)
		return;
	if (len == 0) {
		answer(conn, 400, rid, "{\"error\":\"empty body\"}");
		return;
	}
	t0 = util_mono_us();
	switch (enqueuer_put(in->q, &t->conn, t->buf, (size_t)len, rid, id, sizeof(id))) {
	case ENQ_REDIS:
	case ENQ_SPOOLED:
		metric_hist_observe(&enqueue_hist, util_mono_us() - t0);
		metric_add(&metrics[M_BYTES], len);
		snprintf(json, sizeof(json), "{\"ok\":true,\"id\":\"%s\",\"request_id\":\"%s\"}",
		         id, rid);
		answer(conn, 200, rid, json);
		break;
	default:
		answer(conn, 503, rid, "{\"error\":\"queue unavailable, retry later\"}");
	}
	if (t->cap > BUF_KEEP) {
		free(t->buf);
		t->buf = NULL;
		t->cap = 0;
	}
	if (t->conn.z.cap > BUF_KEEP)
		enq_conn_close(&t->conn);
}

static int on_webhook(struct mg_connection *conn, void *cbdata)
{
	struct ingest *in = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char rid[40];

	snprintf(rid, sizeof(rid), "%08x%016llx", in->boot,
	         (unsigned long long)atomic_fetch_add(&in->seq, 1));
	if (strcmp(ri->local_uri, WEBHOOK_PATH) != 0)
		answer(conn, 404, rid, "{\"error\":\"not found\"}");
	else if (strcmp(ri->request_method, "POST") != 0)
		answer(conn, 405, rid, "{\"error\":\"method not allowed\"}");
	else
		handle_post(conn, in, rid);
	return 1;
}

static int on_healthz(struct mg_connection *conn, void *cbdata)
{
	(void)cbdata;
	answer(conn, 200, NULL, "{\"status\":\"ok\"}");
	return 1;
}

/* Ready while a request can be made durable: Redis reachable, or room in the spool. */
static int on_readyz(struct mg_connection *conn, void *cbdata)
{
	struct ingest *in = cbdata;

	if (enqueuer_ready(in->q))
		answer(conn, 200, NULL, "{\"status\":\"ready\"}");
	else
		answer(conn, 503, NULL, "{\"status\":\"not ready: Redis down and spool full\"}");
	return 1;
}

static int on_metrics(struct mg_connection *conn, void *cbdata)
{
	char *text = NULL;
	size_t len = 0;
	FILE *fp = open_memstream(&text, &len);

	if (fp == NULL) {
		mg_send_http_error(conn, 500, "out of memory");
		return 500;
	}
	metrics_write(fp, metrics, M_COUNT, &enqueue_hist);
	enqueuer_metrics(((struct ingest *)cbdata)->q, fp);
	fclose(fp);
	mg_send_http_ok(conn, "text/plain; version=0.0.4", (long long)len);
	mg_write(conn, text, len);
	free(text);
	return 200;
}

static void set_options(const struct cfg *c, const char **opts, char *threads, char *timeout,
                        char *idle)
{
	int n = 0;

	snprintf(threads, 24, "%lld", c->threads);
	snprintf(timeout, 24, "%lld", c->header_timeout_ms);
	snprintf(idle, 24, "%lld", c->idle_timeout_ms);
	opts[n++] = "listening_ports";
	opts[n++] = c->listen;
	opts[n++] = "num_threads";
	opts[n++] = threads;
	opts[n++] = "request_timeout_ms";
	opts[n++] = timeout;
	opts[n++] = "enable_keep_alive";
	opts[n++] = "yes";
	opts[n++] = "keep_alive_timeout_ms";
	opts[n++] = idle;
	opts[n++] = "decode_url";
	opts[n++] = "no";
	/* A burst of connections waits in the kernel and in civetweb's queue rather than being
	 * refused while threads are busy. */
	opts[n++] = "listen_backlog";
	opts[n++] = "4096";
	opts[n++] = "connection_queue";
	opts[n++] = "1024";
	/* Headers and body leave in two writes: without this, Nagle's algorithm and the
	 * client's delayed ACK hold every answer back by up to 40 ms. */
	opts[n++] = "tcp_nodelay";
	opts[n++] = "1";
	opts[n] = NULL;
}

int webhook_auth_init(struct auth_cfg *a, const struct cfg *c, char *err, size_t errlen)
{
	char why[256];

	memset(a, 0, sizeof(*a));
	a->disabled = c->auth_disabled;
	a->secret[0] = c->secret;
	a->secret[1] = c->secret_prev;
	a->secret_header = c->secret_header;
	a->bearer[0] = c->bearer;
	a->bearer[1] = c->bearer_prev;
	a->bearer_header = c->bearer_header;
	a->hmac_secret[0] = c->hmac;
	a->hmac_secret[1] = c->hmac_prev;
	a->sig_header = c->sig_header;
	a->ts_header = c->ts_header;
	a->tolerance_ms = c->hmac_tolerance_ms;
	if (auth_parse_alg(c->hmac_alg, &a->hmac_alg) != 0) {
		snprintf(err, errlen, "WEBHOOK_HMAC_ALGORITHM: expected sha256, sha512 or sha1");
		return -1;
	}
	if (auth_parse_networks(c->allow_networks, &a->allow, &a->nallow, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "INGEST_ALLOW_NETWORKS: %s", why);
		return -1;
	}
	if (auth_parse_networks(c->trusted_proxies, &a->proxies, &a->nproxies, why, sizeof(why)) !=
	    0) {
		snprintf(err, errlen, "INGEST_TRUSTED_PROXIES: %s", why);
		auth_cfg_free_networks(a);
		return -1;
	}
	return 0;
}

struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
{
	struct ingest *in = calloc(1, sizeof(*in));
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data ed;
	const char *opts[24];
	char threads[24], timeout[24], idle[24], why[256];
	unsigned code = 0;

	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->cfg = c;
	if (webhook_auth_init(&in->auth, c, err, errlen) != 0)
		goto fail;
	in->boot = (unsigned)random();
	in->q = enqueuer_start(c, err, errlen);
	if (in->q == NULL)
		goto fail;
	memset(&cb, 0, sizeof(cb));
	cb.init_thread = thread_init;
	cb.exit_thread = thread_exit;
	set_options(c, opts, threads, timeout, idle);
	init =
	    (struct mg_init_data){.callbacks = &cb, .user_data = in, .configuration_options = opts};
	ed = (struct mg_error_data){.code = &code, .text = why, .text_buffer_size = sizeof(why)};
	why[0] = '\0';
	in->ctx = mg_start2(&init, &ed);
	if (in->ctx == NULL) {
		snprintf(err, errlen, "INGEST_LISTEN %s: %s", c->listen, why);
		goto fail;
	}
	mg_set_request_handler(in->ctx, "/api/vapi/webhook", on_webhook, in);
	mg_set_request_handler(in->ctx, "/healthz$", on_healthz, in);
	mg_set_request_handler(in->ctx, "/readyz$", on_readyz, in);
	mg_set_request_handler(in->ctx, "/metrics$", on_metrics, in);
	return in;
fail:
	enqueuer_stop(in->q);
	auth_cfg_free_networks(&in->auth);
	free(in);
	return NULL;
}

void ingest_stop(struct ingest *in)
{
	if (in == NULL)
		return;
	mg_stop(in->ctx); /* requests in flight finish first */
	enqueuer_stop(in->q);
	auth_cfg_free_networks(&in->auth);
	free(in);
}
