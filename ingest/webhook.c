/* The routes: what each request is answered, and the counters of those answers. */
#include "webhook.h"

#include "auth.h"
#include "enqueue.h"
#include "log.h"
#include "metrics.h"
#include "util.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WEBHOOK_PATH "/api/vapi/webhook"

enum {
	M_REQ_200,
	M_REQ_400,
	M_REQ_401,
	M_REQ_404,
	M_REQ_405,
	M_REQ_408,
	M_REQ_413,
	M_REQ_431,
	M_REQ_501,
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
    [M_REQ_431] = REQ(431),
    [M_REQ_501] = REQ(501),
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

struct webhook {
	const struct cfg *cfg;
	struct enqueuer *q;
	struct auth_cfg auth;
	unsigned boot;                  /* random per process, prefix of request ids */
	_Atomic unsigned long long seq; /* request counter */
};

/* Room for n more bytes in o. */
static int reserve(struct wh_out *o, size_t n)
{
	size_t cap = o->cap ? o->cap : 512;
	char *nb;

	if (o->len + n <= o->cap)
		return 0;
	while (cap < o->len + n)
		cap *= 2;
	nb = realloc(o->buf, cap);
	if (nb == NULL)
		return -1;
	o->buf = nb;
	o->cap = cap;
	return 0;
}

static const char *reason_phrase(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 401:
		return "Unauthorized";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 413:
		return "Payload Too Large";
	case 431:
		return "Request Header Fields Too Large";
	case 500:
		return "Internal Server Error";
	case 501:
		return "Not Implemented";
	default:
		return "Service Unavailable";
	}
}

static void count(int status)
{
	static const int codes[] = {200, 400, 401, 404, 405, 408, 413, 431, 501};
	static const int slots[] = {M_REQ_200, M_REQ_400, M_REQ_401, M_REQ_404, M_REQ_405,
	                            M_REQ_408, M_REQ_413, M_REQ_431, M_REQ_501};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == status) {
			metric_add(&metrics[slots[i]], 1);
			return;
		}
	metric_add(&metrics[M_REQ_503], 1);
}

/* Appends a whole response to o: the head, then len bytes of body. Webhook answers (those
 * with a request id) are counted. With close, the head says the connection ends. */
static void respond(struct wh_out *o, int status, const char *rid, const char *type,
                    const char *body, size_t len, bool close)
{
	char head[512];
	int n;

	if (rid != NULL)
		count(status);
	n = snprintf(head, sizeof(head),
	             "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s%s%s%s\r\n",
	             status, reason_phrase(status), type, len, rid ? "X-Request-Id: " : "",
	             rid ? rid : "", rid ? "\r\n" : "", status == 405 ? "Allow: POST\r\n" : "",
	             close ? "Connection: close\r\n" : "");
	if (n < 0 || (size_t)n >= sizeof(head) || reserve(o, (size_t)n + len) != 0)
		return; /* out of memory: the server closes a connection with nothing to send */
	memcpy(o->buf + o->len, head, (size_t)n);
	memcpy(o->buf + o->len + n, body, len);
	o->len += (size_t)n + len;
}

static void answer(struct wh_out *o, int status, const struct wh_req *r, const char *json)
{
	respond(o, status, r ? (r->rid[0] ? r->rid : NULL) : NULL, "application/json", json,
	        strlen(json), r == NULL || r->close);
}

void webhook_metrics(void *arg, FILE *fp)
{
	struct webhook *w = arg;

	metrics_write(fp, metrics, M_COUNT, &enqueue_hist);
	enqueuer_metrics(w->q, fp);
}

bool webhook_ready(void *arg, char *why, size_t whylen)
{
	struct webhook *w = arg;

	/* A request can be made durable: Redis takes it, or the spool does. Degraded (spooling)
	 * is still ready, so that load balancers keep sending; the reason says it. */
	if (enqueuer_ready(w->q)) {
		if (!enqueuer_degraded(w->q, why, whylen))
			why[0] = '\0';
		return true;
	}
	snprintf(why, whylen, "Redis down and spool full");
	return false;
}

int webhook_head(struct webhook *w, struct wh_req *r, struct wh_out *o)
{
	bool client_close = r->close;

	r->rid[0] = '\0';
	if (strncmp(r->path, WEBHOOK_PATH, strlen(WEBHOOK_PATH)) == 0)
		snprintf(r->rid, sizeof(r->rid), "%08x%016llx", w->boot,
		         (unsigned long long)atomic_fetch_add(&w->seq, 1));
	/* Answered before its body is read: a body that follows is not read, so the
	 * connection cannot serve another request. */
	r->close = client_close || r->has_body;
	if (r->rid[0] == '\0') {
		/* The admin routes are on the admin listener; load balancers probe here. */
		if (strcmp(r->path, "/healthz") == 0)
			answer(o, 200, r, "{\"status\":\"ok\"}");
		else
			answer(o, 404, r, "{\"error\":\"not found\"}");
	} else if (strcmp(r->path, WEBHOOK_PATH) != 0) {
		answer(o, 404, r, "{\"error\":\"not found\"}");
	} else if (strcmp(r->method, "POST") != 0) {
		answer(o, 405, r, "{\"error\":\"method not allowed\"}");
	} else if (r->content_length > w->cfg->max_body) {
		answer(o, 413, r, "{\"error\":\"body too large\"}");
	} else {
		r->close = client_close; /* the body is read: as the client asked */
		return 1;
	}
	return 0;
}

long long webhook_max_body(const struct webhook *w)
{
	return w->cfg->max_body;
}

/* Checks the request's credentials (after the body is read: HMAC signs the body). Answers
 * 401 and returns -1 when rejected. */
static int authenticate(struct webhook *w, struct wh_req *r, struct wh_out *o)
{
	struct auth_request req = {r->header, r->ctx, r->body, r->body_len, r->peer, util_now_ms()};
	struct auth_match match = {0, 0};
	enum auth_reason ar = auth_check(&w->auth, &req, &match);
	char json[160];

	if (ar == AUTH_OK || ar == AUTH_DISABLED) {
		if (match.index == 1)
			log_msg(LOGL_INFO, "request_id", r->rid, "accepted with the previous %s",
			        match.mode == AUTH_SECRET   ? "secret"
			        : match.mode == AUTH_BEARER ? "bearer token"
			                                    : "HMAC key");
		return 0;
	}
	metric_add(&metrics[M_AUTH_FIRST + ar - AUTH_MISSING], 1);
	log_msg(LOGL_WARN, "request_id", r->rid, "rejected from %s: %s", r->peer,
	        auth_reason_name(ar));
	snprintf(json, sizeof(json), "{\"error\":\"unauthorized\",\"reason\":\"%s\"}",
	         auth_reason_name(ar));
	answer(o, 401, r, json);
	return -1;
}

int webhook_body(struct webhook *w, struct wh_req *r, struct wh_out *o)
{
	if (authenticate(w, r, o) != 0)
		return 0;
	if (r->body_len == 0) {
		answer(o, 400, r, "{\"error\":\"empty body\"}");
		return 0;
	}
	return 1;
}

void webhook_enqueued(struct webhook *w, const struct wh_req *r, enum enq_result res,
                      const char *id, int64_t t0_us, struct wh_out *o)
{
	char json[160];

	(void)w;
	if (res != ENQ_REDIS && res != ENQ_SPOOLED) {
		answer(o, 503, r, "{\"error\":\"queue unavailable, retry later\"}");
		return;
	}
	metric_hist_observe(&enqueue_hist, util_mono_us() - t0_us);
	metric_add(&metrics[M_BYTES], (int64_t)r->body_len);
	snprintf(json, sizeof(json), "{\"ok\":true,\"id\":\"%s\",\"request_id\":\"%s\"}",
	         res == ENQ_SPOOLED ? "spool" : id, r->rid);
	answer(o, 200, r, json);
}

void webhook_continue(struct wh_out *o)
{
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";

	if (reserve(o, sizeof(cont) - 1) != 0)
		return;
	memcpy(o->buf + o->len, cont, sizeof(cont) - 1);
	o->len += sizeof(cont) - 1;
}

void webhook_refuse(struct webhook *w, const struct wh_req *r, int status, struct wh_out *o)
{
	struct wh_req none = {0};
	const char *json = status == 408   ? "{\"error\":\"request timeout\"}"
	                   : status == 413 ? "{\"error\":\"body too large\"}"
	                   : status == 431 ? "{\"error\":\"request headers too large\"}"
	                   : status == 501 ? "{\"error\":\"transfer coding not implemented\"}"
	                                   : "{\"error\":\"bad request\"}";

	if (status == 408 && r != NULL && r->rid[0])
		log_msg(LOGL_WARN, "request_id", r->rid,
		        "body not received within %lld ms: closing", w->cfg->request_timeout_ms);
	none = r != NULL ? *r : none;
	none.close = true;
	answer(o, status, &none, json);
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

struct webhook *webhook_new(const struct cfg *c, struct enqueuer *q, char *err, size_t errlen)
{
	struct webhook *w = calloc(1, sizeof(*w));

	if (w == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->cfg = c;
	w->q = q;
	if (webhook_auth_init(&w->auth, c, err, errlen) != 0) {
		free(w);
		return NULL;
	}
	w->boot = (unsigned)random();
	return w;
}

void webhook_free(struct webhook *w)
{
	if (w == NULL)
		return;
	auth_cfg_free_networks(&w->auth);
	free(w);
}
