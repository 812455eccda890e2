/* civetweb adapter: routes, body reading, the XADD, and the answers. */
#include "webhook.h"

#include "auth.h"
#include "log.h"
#include "metrics.h"
#include "redisconn.h"
#include "stream.h"
#include "util.h"

#include <civetweb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WEBHOOK_PATH "/api/vapi/webhook"
/* A thread keeps a body buffer up to this size between requests; larger ones are freed. */
#define BUF_KEEP (1 << 20)

enum {
	M_REQ_200,
	M_REQ_400,
	M_REQ_401,
	M_REQ_404,
	M_REQ_405,
	M_REQ_413,
	M_REQ_503,
	M_BYTES,
	M_REDIS_ERR,
	M_AUTH_MISSING,
	M_AUTH_MISMATCH,
	M_COUNT
};

#define REQ(code)                                                                                  \
	{                                                                                          \
		"switchboard_ingest_requests_total", "{route=\"webhook\",status=\"" #code "\"}",   \
		    "counter", "Webhook requests answered, by route and HTTP status", 0            \
	}
static struct metric metrics[M_COUNT] = {
    [M_REQ_200] = REQ(200),
    [M_REQ_400] = REQ(400),
    [M_REQ_401] = REQ(401),
    [M_REQ_404] = REQ(404),
    [M_REQ_405] = REQ(405),
    [M_REQ_413] = REQ(413),
    [M_REQ_503] = REQ(503),
    [M_BYTES] = {"switchboard_ingest_received_bytes_total", "", "counter", "Body bytes accepted",
                 0},
    [M_REDIS_ERR] = {"switchboard_ingest_redis_errors_total", "", "counter",
                     "Failed Redis connects and commands", 0},
    [M_AUTH_MISSING] = {"switchboard_ingest_auth_failures_total", "{reason=\"missing\"}", "counter",
                        "Requests rejected by authentication, by reason", 0},
    [M_AUTH_MISMATCH] = {"switchboard_ingest_auth_failures_total", "{reason=\"mismatch\"}",
                         "counter", "Requests rejected by authentication, by reason", 0},
};
static struct metric_hist enqueue_hist = {"switchboard_ingest_enqueue_seconds",
                                          "Time from body read to Redis confirming the XADD",
                                          {0},
                                          0};

struct ingest {
	struct mg_context *ctx;
	const struct cfg *cfg;
	struct redis_addr addr;
	struct auth_cfg auth;
	unsigned boot;                  /* random per process, prefix of request ids */
	_Atomic unsigned long long seq; /* request counter */
};

/* Per civetweb worker thread: its own Redis connection and body buffer. */
struct ingest_thread {
	redisContext *redis;
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
	redisFree(t->redis);
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
	if (status == 413)
		mg_response_header_add(conn, "Connection", "close", -1);
	mg_response_header_send(conn);
	mg_write(conn, json, strlen(json));
}

/* Reads the whole body into t->buf. Returns its length, -1 when it exceeds max, -2 when
 * the client failed or went away. */
static long long read_body(struct mg_connection *conn, struct ingest_thread *t, long long max)
{
	size_t len = 0;

	for (;;) {
		int n;

		if (len == t->cap) {
			size_t ncap = t->cap ? t->cap * 2 : 64 * 1024;
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
	}
	t->buf[len] = '\0';
	return (long long)len;
}

/* XADDs the entry on the thread's connection, reconnecting once if the connection had
 * gone stale. Fills id with the stream id. Returns 0, or -1 when Redis cannot take it. */
static int enqueue(struct ingest *in, struct ingest_thread *t, size_t len, const char *rid,
                   char *id, size_t idlen)
{
	char now[24], err[256];
	const char *argv[11] = {"XADD", in->cfg->stream,      "*",   STREAM_F_BODY,
	                        t->buf, STREAM_F_RECEIVED_AT, now,   STREAM_F_REQUEST_ID,
	                        rid,    STREAM_F_SOURCE,      "http"};
	size_t lens[11];

	snprintf(now, sizeof(now), "%lld", (long long)util_now_ms());
	for (int i = 0; i < 11; i++)
		lens[i] = i == 4 ? len : strlen(argv[i]);
	for (int attempt = 0; attempt < 2; attempt++) {
		redisReply *r;

		if (t->redis == NULL) {
			t->redis = redisconn_open(&in->addr, (int)in->cfg->redis_timeout_ms, err,
			                          sizeof(err));
			if (t->redis == NULL) {
				metric_add(&metrics[M_REDIS_ERR], 1);
				log_msg(LOGL_ERROR, "request_id", rid, "redis: %s", err);
				return -1;
			}
		}
		r = redisconn_cmd(t->redis, 11, argv, lens);
		if (r != NULL && r->type == REDIS_REPLY_STRING) {
			snprintf(id, idlen, "%s", r->str);
			freeReplyObject(r);
			return 0;
		}
		metric_add(&metrics[M_REDIS_ERR], 1);
		log_msg(LOGL_ERROR, "request_id", rid, "redis XADD: %s",
		        r ? r->str : t->redis->errstr);
		/* A context that failed is never reused; an error reply leaves it usable. */
		if (r == NULL) {
			redisFree(t->redis);
			t->redis = NULL;
		}
		freeReplyObject(r);
	}
	return -1;
}

static void handle_post(struct mg_connection *conn, struct ingest *in, const char *rid)
{
	struct ingest_thread *t = mg_get_thread_pointer(conn);
	const struct mg_request_info *ri = mg_get_request_info(conn);
	enum auth_result ar =
	    auth_check_secret(&in->auth, mg_get_header(conn, in->cfg->secret_header));
	char id[64], json[160];
	long long len;
	int64_t t0;

	if (ar == AUTH_MISSING || ar == AUTH_MISMATCH) {
		metric_add(&metrics[ar == AUTH_MISSING ? M_AUTH_MISSING : M_AUTH_MISMATCH], 1);
		log_msg(LOGL_WARN, "request_id", rid, "rejected: secret %s", auth_result_name(ar));
		snprintf(json, sizeof(json),
		         "{\"error\":\"unauthorized\",\"reason\":\"secret %s\"}",
		         auth_result_name(ar));
		answer(conn, 401, rid, json);
		return;
	}
	if (ri->content_length > in->cfg->max_body ||
	    (len = read_body(conn, t, in->cfg->max_body)) == -1) {
		answer(conn, 413, rid, "{\"error\":\"body too large\"}");
		return;
	}
	if (len < 0)
		return; /* the client went away or timed out: nothing to answer */
	if (len == 0) {
		answer(conn, 400, rid, "{\"error\":\"empty body\"}");
		return;
	}
	t0 = util_mono_us();
	if (enqueue(in, t, (size_t)len, rid, id, sizeof(id)) != 0) {
		answer(conn, 503, rid, "{\"error\":\"queue unavailable, retry later\"}");
	} else {
		metric_hist_observe(&enqueue_hist, util_mono_us() - t0);
		metric_add(&metrics[M_BYTES], len);
		snprintf(json, sizeof(json), "{\"ok\":true,\"id\":\"%s\",\"request_id\":\"%s\"}",
		         id, rid);
		answer(conn, 200, rid, json);
	}
	if (t->cap > BUF_KEEP) {
		free(t->buf);
		t->buf = NULL;
		t->cap = 0;
	}
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
	metrics_write(fp, metrics, M_COUNT, &enqueue_hist);
	fclose(fp);
	mg_send_http_ok(conn, "text/plain; version=0.0.4", (long long)len);
	mg_write(conn, text, len);
	free(text);
	return 200;
}

static void set_options(const struct cfg *c, const char **opts, char *threads, char *timeout)
{
	int n = 0;

	snprintf(threads, 24, "%lld", c->threads);
	snprintf(timeout, 24, "%lld", c->request_timeout_ms);
	opts[n++] = "listening_ports";
	opts[n++] = c->listen;
	opts[n++] = "num_threads";
	opts[n++] = threads;
	opts[n++] = "request_timeout_ms";
	opts[n++] = timeout;
	opts[n++] = "enable_keep_alive";
	opts[n++] = "yes";
	opts[n++] = "keep_alive_timeout_ms";
	opts[n++] = "60000";
	opts[n++] = "decode_url";
	opts[n++] = "no";
	/* Headers and body leave in two writes: without this, Nagle's algorithm and the
	 * client's delayed ACK hold every answer back by up to 40 ms. */
	opts[n++] = "tcp_nodelay";
	opts[n++] = "1";
	opts[n] = NULL;
}

struct ingest *ingest_start(const struct cfg *c, char *err, size_t errlen)
{
	struct ingest *in = calloc(1, sizeof(*in));
	struct mg_callbacks cb;
	struct mg_init_data init;
	struct mg_error_data ed;
	const char *opts[16];
	char threads[24], timeout[24], why[256];
	unsigned code = 0;

	if (in == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	in->cfg = c;
	in->auth.secret = c->secret;
	in->auth.disabled = c->auth_disabled;
	in->boot = (unsigned)random();
	if (redisconn_parse_url(c->redis_url, &in->addr, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "REDIS_URL: %s", why);
		goto fail;
	}
	memset(&cb, 0, sizeof(cb));
	cb.init_thread = thread_init;
	cb.exit_thread = thread_exit;
	set_options(c, opts, threads, timeout);
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
	mg_set_request_handler(in->ctx, "/metrics$", on_metrics, in);
	return in;
fail:
	free(in);
	return NULL;
}

void ingest_stop(struct ingest *in)
{
	if (in == NULL)
		return;
	mg_stop(in->ctx);
	free(in);
}
