#ifndef VAPI_API_H
#define VAPI_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* A client of the Vapi management API (libcurl + jansson): JSON in, JSON out, with retries.
 *
 * Retried, with capped exponential backoff and jitter (or after Retry-After when the answer
 * carries one): 429 always; for GET and PATCH (which can be repeated safely) also 408, any
 * 5xx and transport failures. POST creates something, so it is retried only when the
 * request cannot have been applied (429, connection refused, name not resolved). */

#define VAPI_MAX_ATTEMPTS 8            /* attempts per request, the first included */
#define VAPI_RETRY_BASE_MS 500         /* first backoff delay */
#define VAPI_RETRY_CAP_MS 30000        /* largest backoff delay */
#define VAPI_RETRY_AFTER_CAP_MS 120000 /* longest Retry-After honoured */
#define VAPI_CONNECT_TIMEOUT_MS 10000
#define VAPI_REQUEST_TIMEOUT_MS 120000 /* a whole request, a 1000-item page included */
#define VAPI_MAX_RESPONSE (256L << 20) /* larger answers are refused */

struct vapi_api; /* opaque */

struct vapi_error {
	long status;       /* HTTP status of the last answer, 0 when there was none */
	bool refused;      /* the API answered with a 4xx that retrying cannot change */
	char errstr[1024]; /* "PATCH /assistant/x: 400 Bad Request: property y should not exist" */
};

/* Called before each retry with the request ("GET /assistant?..."), the reason ("429",
 * "timeout") and the delay. */
typedef void (*vapi_retry_hook)(void *ud, const char *request, const char *reason,
                                long long delay_ms);

/* Counters since vapi_api_new(). */
struct vapi_api_stats {
	unsigned long requests; /* HTTP requests sent, retries included */
	unsigned long retries;  /* of those, retries */
};

/* Returns a new client for base_url (no trailing slash) authenticating with api_key (both
 * copied), or NULL with a reason in err. Free with vapi_api_free(). The caller runs
 * curl_global_init() first. */
struct vapi_api *vapi_api_new(const char *base_url, const char *api_key, struct vapi_error *err)
    __attribute__((warn_unused_result));

/* Releases a (NULL-safe). */
void vapi_api_free(struct vapi_api *a);

/* Sets the hook called before each retry (NULL for none); ud is passed to it. */
void vapi_api_set_retry_hook(struct vapi_api *a, vapi_retry_hook hook, void *ud);

/* Copies the counters of a into *st. */
void vapi_api_stats(const struct vapi_api *a, struct vapi_api_stats *st);

/* Sends method ("GET", "POST", "PATCH") to path (starting with '/', query string included,
 * already escaped) with body as JSON (borrowed; NULL for none). On a 2xx answer returns 0
 * and *out, the parsed answer (a new reference, NULL for an empty body). Otherwise returns -1
 * with err filled; *out is then NULL. */
int vapi_api_call(struct vapi_api *a, const char *method, const char *path, const json_t *body,
                  json_t **out, struct vapi_error *err) __attribute__((warn_unused_result));

/* Percent-encodes s for a URL path segment or query value into out. Returns 0, or -1 when
 * it does not fit in size bytes. */
int vapi_api_escape(const char *s, char *out, size_t size) __attribute__((warn_unused_result));

#endif
