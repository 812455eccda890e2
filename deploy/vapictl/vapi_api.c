/* The Vapi management API over libcurl: one reused handle, JSON bodies, classified retries. */
#include "vapi_api.h"

#include "util.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define URL_MAX 4096
/* "METHOD /path?query" as named in messages, cut to this length. */
#define REQ_MAX 256
#define USER_AGENT "vapictl/1"

struct vapi_api {
	CURL *curl;                 /* reused, so connections are kept alive */
	char *base;                 /* base URL without trailing slash */
	struct curl_slist *headers; /* Authorization, Accept, Content-Type, Expect */
	vapi_retry_hook hook;       /* or NULL */
	void *hook_ud;              /* passed to hook */
	struct vapi_api_stats stats;
	char curl_err[CURL_ERROR_SIZE]; /* libcurl's detail for the last transfer */
};

/* One answer as received. */
struct answer {
	char *data;               /* body, NUL-terminated when not NULL */
	size_t len;               /* body length */
	size_t cap;               /* allocated */
	bool too_big;             /* the body exceeded VAPI_MAX_RESPONSE */
	long long retry_after_ms; /* Retry-After in ms, -1 when absent */
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct answer *r = ud;
	size_t len = size * n;

	if (r->len + len > (size_t)VAPI_MAX_RESPONSE) {
		r->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (r->len + len + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 16384;
		char *nd;

		while (cap < r->len + len + 1)
			cap *= 2;
		nd = realloc(r->data, cap);
		if (nd == NULL)
			return 0;
		r->data = nd;
		r->cap = cap;
	}
	memcpy(r->data + r->len, p, len);
	r->len += len;
	r->data[r->len] = '\0';
	return len;
}

/* Retry-After: delay-seconds or an HTTP date. Returns ms, or -1 when unreadable. */
static long long parse_retry_after(const char *v)
{
	long long secs;
	time_t when;

	if (util_parse_ll(v, &secs) == 0)
		return secs < 0                                ? -1
		       : secs > VAPI_RETRY_AFTER_CAP_MS / 1000 ? VAPI_RETRY_AFTER_CAP_MS
		                                               : secs * 1000;
	when = curl_getdate(v, NULL);
	if (when < 0)
		return -1;
	secs = (long long)(when - time(NULL));
	return secs <= 0                               ? 0
	       : secs > VAPI_RETRY_AFTER_CAP_MS / 1000 ? VAPI_RETRY_AFTER_CAP_MS
	                                               : secs * 1000;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	static const char name[] = "Retry-After:";
	struct answer *r = ud;
	size_t len = size * n, vlen;
	char v[80];

	if (len <= sizeof(name) - 1 || strncasecmp(p, name, sizeof(name) - 1) != 0)
		return len;
	p += sizeof(name) - 1;
	vlen = len - (sizeof(name) - 1);
	while (vlen > 0 && (*p == ' ' || *p == '\t')) {
		p++;
		vlen--;
	}
	while (vlen > 0 && strchr(" \t\r\n", p[vlen - 1]) != NULL)
		vlen--;
	if (vlen >= sizeof(v))
		return len;
	memcpy(v, p, vlen);
	v[vlen] = '\0';
	r->retry_after_ms = parse_retry_after(v);
	return len;
}

struct vapi_api *vapi_api_new(const char *base_url, const char *api_key, struct vapi_error *err)
{
	struct vapi_api *a = calloc(1, sizeof(*a));
	char *auth = NULL;
	size_t alen = strlen(api_key) + sizeof("Authorization: Bearer ");
	struct curl_slist *h = NULL;

	memset(err, 0, sizeof(*err));
	if (a == NULL || (a->base = strdup(base_url)) == NULL || (auth = malloc(alen)) == NULL)
		goto fail;
	snprintf(auth, alen, "Authorization: Bearer %s", api_key);
	if ((h = curl_slist_append(NULL, auth)) == NULL ||
	    (a->headers = curl_slist_append(h, "Accept: application/json")) == NULL)
		goto fail;
	h = NULL; /* now owned by a->headers */
	if (curl_slist_append(a->headers, "Content-Type: application/json") == NULL ||
	    curl_slist_append(a->headers, "Expect:") == NULL) /* no 100-continue round trip */
		goto fail;
	a->curl = curl_easy_init();
	if (a->curl == NULL)
		goto fail;
	explicit_bzero(auth, alen);
	free(auth);
	return a;
fail:
	snprintf(err->errstr, sizeof(err->errstr), "cannot set up the HTTP client (out of memory)");
	if (auth != NULL)
		explicit_bzero(auth, alen);
	free(auth);
	curl_slist_free_all(h);
	vapi_api_free(a);
	return NULL;
}

void vapi_api_free(struct vapi_api *a)
{
	if (a == NULL)
		return;
	if (a->curl != NULL)
		curl_easy_cleanup(a->curl);
	curl_slist_free_all(a->headers); /* holds the key: libcurl does not copy lists */
	free(a->base);
	free(a);
}

void vapi_api_set_retry_hook(struct vapi_api *a, vapi_retry_hook hook, void *ud)
{
	a->hook = hook;
	a->hook_ud = ud;
}

void vapi_api_stats(const struct vapi_api *a, struct vapi_api_stats *st)
{
	*st = a->stats;
}

/* Sets the options of one transfer. */
static void setup(struct vapi_api *a, const char *method, const char *url, const char *payload,
                  struct answer *r)
{
	CURL *c = a->curl;

	curl_easy_setopt(c, CURLOPT_URL, url);
	if (payload != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(payload));
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
	} else {
		curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
	}
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST,
	                 strcmp(method, payload != NULL ? "POST" : "GET") == 0 ? NULL : method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, a->headers);
	curl_easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)VAPI_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)VAPI_REQUEST_TIMEOUT_MS);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, a->curl_err);
}

static bool transport_retryable(CURLcode cc, bool idempotent)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
		return true; /* nothing was sent */
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return idempotent; /* the request may have been applied */
	default:
		return false;
	}
}

/* Whether a failed attempt may be repeated. */
static bool should_retry(bool idempotent, CURLcode cc, long status)
{
	if (cc != CURLE_OK)
		return transport_retryable(cc, idempotent);
	if (status == 429)
		return true; /* rate limited: not applied */
	return idempotent && (status == 408 || status >= 500);
}

/* Appends the strings of Vapi's error "message" (a string or an array) to out. */
static void error_detail(const char *body, size_t len, char *out, size_t size)
{
	json_t *j = json_loadb(body, len, 0, NULL), *m = json_object_get(j, "message"), *v;
	size_t i, n = 0;

	out[0] = '\0';
	if (json_is_string(m)) {
		snprintf(out, size, "%s", json_string_value(m));
	} else if (json_is_array(m)) {
		json_array_foreach(m, i, v)
		{
			if (json_is_string(v) && n < size)
				n += (size_t)snprintf(out + n, size - n, "%s%s", n ? "; " : "",
				                      json_string_value(v));
		}
	} else if (j == NULL && len > 0) {
		snprintf(out, size, "%.200s", body);
		for (char *p = out; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20)
				*p = ' ';
	}
	json_decref(j);
}

static void describe_failure(struct vapi_api *a, const char *req, CURLcode cc, long status,
                             const struct answer *r, struct vapi_error *err, char *reason,
                             size_t rsize)
{
	char detail[700];

	err->status = cc == CURLE_OK ? status : 0;
	if (r->too_big) {
		snprintf(reason, rsize, "too large");
		snprintf(err->errstr, sizeof(err->errstr), "%s: answer larger than %ld bytes", req,
		         VAPI_MAX_RESPONSE);
	} else if (cc != CURLE_OK) {
		snprintf(reason, rsize, "%s", curl_easy_strerror(cc));
		snprintf(err->errstr, sizeof(err->errstr), "%s: %.200s%s%.300s", req,
		         curl_easy_strerror(cc), a->curl_err[0] ? ": " : "", a->curl_err);
	} else {
		snprintf(reason, rsize, "HTTP %ld", status);
		error_detail(r->data, r->len, detail, sizeof(detail));
		snprintf(err->errstr, sizeof(err->errstr), "%s: HTTP %ld%s%.600s", req, status,
		         detail[0] ? ": " : "", detail);
	}
}

static int parse_answer(const char *req, const struct answer *r, json_t **out,
                        struct vapi_error *err)
{
	json_error_t jerr;

	if (r->len == 0)
		return 0;
	*out = json_loadb(r->data, r->len, 0, &jerr);
	if (*out == NULL) {
		snprintf(err->errstr, sizeof(err->errstr),
		         "%s: answer is not JSON (line %d column %d: %.160s)", req, jerr.line,
		         jerr.column, jerr.text);
		return -1;
	}
	return 0;
}

static long long retry_delay(unsigned attempt, long long retry_after_ms)
{
	if (retry_after_ms >= 0)
		return retry_after_ms;
	return util_backoff_ms(attempt, VAPI_RETRY_BASE_MS, VAPI_RETRY_CAP_MS);
}

/* Runs the attempts of one request with payload (or NULL). */
static int exchange(struct vapi_api *a, const char *method, const char *url, const char *req,
                    const char *payload, json_t **out, struct vapi_error *err)
{
	bool idempotent = strcmp(method, "POST") != 0;

	for (unsigned attempt = 0;; attempt++) {
		struct answer r = {NULL, 0, 0, false, -1};
		long status = 0;
		char reason[64];
		CURLcode cc;
		long long delay;

		a->curl_err[0] = '\0';
		setup(a, method, url, payload, &r);
		cc = curl_easy_perform(a->curl);
		a->stats.requests++;
		curl_easy_getinfo(a->curl, CURLINFO_RESPONSE_CODE, &status);
		if (cc == CURLE_OK && status >= 200 && status < 300) {
			int rc = parse_answer(req, &r, out, err);

			free(r.data);
			return rc;
		}
		describe_failure(a, req, cc, status, &r, err, reason, sizeof(reason));
		free(r.data);
		if (!should_retry(idempotent, cc, status) || attempt + 1 >= VAPI_MAX_ATTEMPTS) {
			err->refused = cc == CURLE_OK && status >= 400 && status < 500 &&
			               !should_retry(idempotent, cc, status);
			return -1;
		}
		delay = retry_delay(attempt, r.retry_after_ms);
		if (a->hook != NULL)
			a->hook(a->hook_ud, req, reason, delay);
		a->stats.retries++;
		util_sleep_ms(delay, NULL);
	}
}

int vapi_api_call(struct vapi_api *a, const char *method, const char *path, const json_t *body,
                  json_t **out, struct vapi_error *err)
{
	char url[URL_MAX], req[REQ_MAX];
	char *payload = NULL;
	int rc;

	*out = NULL;
	memset(err, 0, sizeof(*err));
	snprintf(req, sizeof(req), "%s %s", method, path);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", a->base, path) >= sizeof(url)) {
		snprintf(err->errstr, sizeof(err->errstr), "%s: URL too long", req);
		return -1;
	}
	if (body != NULL && (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
		snprintf(err->errstr, sizeof(err->errstr), "%s: cannot encode the body", req);
		return -1;
	}
	rc = exchange(a, method, url, req, payload, out, err);
	free(payload);
	return rc;
}

int vapi_api_escape(const char *s, char *out, size_t size)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		bool plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
		             (*p >= '0' && *p <= '9') || strchr("-._~", *p) != NULL;

		if (n + (plain ? 1 : 3) >= size)
			return -1;
		if (plain) {
			out[n++] = (char)*p;
		} else {
			out[n++] = '%';
			out[n++] = hex[*p >> 4];
			out[n++] = hex[*p & 15];
		}
	}
	if (n >= size)
		return -1;
	out[n] = '\0';
	return 0;
}
