#ifndef SB_ADMIN_H
#define SB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The admin listener of both binaries (civetweb, a thread per connection: it serves
 * operators and Prometheus, not Vapi): /metrics, /healthz and /readyz from one route table.
 * A binary describes itself with a struct admin_source; the routes see only plain data.
 *
 * Adding a route is one entry in a route table and a handler of type admin_handler: the
 * shared routes' table is in admin.c, a binary's own (the worker's status page) come with its
 * admin_source. A route that must not be open to anyone who reaches the port checks
 * req->authorized, which says whether the request carries ADMIN_TOKEN (as a bearer token,
 * or as the session cookie admin_session_cookie() names). */

struct admin_route;

/* What the binary behind the listener provides (functions called from listener threads:
 * they must be thread-safe). */
struct admin_source {
	const char *component; /* "ingest" or "worker" */
	/* Writes the binary's metrics in Prometheus text format to fp. */
	void (*metrics)(void *arg, FILE *fp);
	/* Whether the binary can do its work now; when not, a short reason in why. A reason
	 * given with true means degraded: /readyz stays 200 and says it. */
	bool (*ready)(void *arg, char *why, size_t whylen);
	void *arg;                        /* passed to both, and to the binary's routes */
	const struct admin_route *routes; /* the binary's own routes, or NULL */
	size_t nroutes;
	const char *token; /* ADMIN_TOKEN (borrowed): empty or NULL, every request is authorized */
};

#define ADMIN_COOKIE "sb_admin"
#define ADMIN_MAX_BODY 4096
#define ADMIN_MAX_HEADERS 4

/* A request as a handler sees it (all borrowed). */
struct admin_req {
	const char *method; /* "GET", "HEAD", ... */
	const char *path;   /* without the query */
	const char *query;  /* after '?', or NULL */
	const char *body;   /* a POST's body (at most ADMIN_MAX_BODY bytes), NUL-terminated */
	size_t body_len;
	bool authorized;     /* carries ADMIN_TOKEN, or none is set */
	const char *session; /* the session cookie's value for this token ("" without one) */
};

/* The answer a handler writes: status and type, extra headers, and the body written to
 * body. */
struct admin_resp {
	int status;       /* 200 unless the handler sets another */
	const char *type; /* Content-Type (static) */
	FILE *body;       /* a memory stream owned by the caller */
	size_t nheaders;
	const char *hname[ADMIN_MAX_HEADERS]; /* static names */
	char hvalue[ADMIN_MAX_HEADERS][400];
};

typedef void (*admin_handler)(const struct admin_source *src, const struct admin_req *req,
                              struct admin_resp *resp);

/* A route: its path (or, with prefix, every path that starts so), the method it answers
 * ("GET" answers HEAD too) and its handler. */
struct admin_route {
	const char *path;
	bool prefix;
	const char *method;
	admin_handler handler;
};

/* Adds a header to resp (ignored past ADMIN_MAX_HEADERS); name is static, value copied. */
void admin_header(struct admin_resp *resp, const char *name, const char *value);

/* Whether given is the token src requires (constant time; true when none is set). */
bool admin_token_ok(const struct admin_source *src, const char *given);

/* The session cookie's value for token: HMAC-SHA256 of a fixed text under it, in hex, so the
 * cookie never holds the token itself. Writes it into buf ("" for an empty token). */
void admin_session_cookie(const char *token, char *buf, size_t size);

/* Whether a request with these Authorization and Cookie headers (either may be NULL)
 * carries src's token. */
bool admin_authorized(const struct admin_source *src, const char *session,
                      const char *authorization, const char *cookies);

/* Answers req from the route tables (the shared ones, then the binary's): the route's
 * handler for its method on its path, 405 for another method, 404 for another path.
 * resp->body must be open; status and type are set. */
void admin_handle(const struct admin_source *src, const struct admin_req *req,
                  struct admin_resp *resp);

struct admin; /* opaque: a running listener */

/* Starts the listener on listen ("host:port") for src (copied; its arg is borrowed and must
 * outlive the listener). Returns NULL with the reason in err (what listen_var names, e.g.
 * "INGEST_ADMIN_LISTEN 127.0.0.1:9100: ..."). Stop with admin_stop(). */
struct admin *admin_start(const char *listen, const char *listen_var,
                          const struct admin_source *src, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* Stops the listener and frees a (NULL-safe). */
void admin_stop(struct admin *a);

#endif
