#ifndef SB_ADMIN_H
#define SB_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

/* The admin listener of both binaries (civetweb, a thread per connection: it serves
 * operators and Prometheus, not Vapi): /metrics, /healthz and /readyz from one route table.
 * A binary describes itself with a struct admin_source; the routes see only plain data.
 *
 * Adding a route is one entry in the table in admin.c and a handler of type admin_handler.
 * A route that must not be open to anyone who reaches the port is where a bearer-token check
 * belongs (see admin_handle() in admin.c); none of today's routes needs one. */

/* What the binary behind the listener provides (functions called from listener threads:
 * they must be thread-safe). */
struct admin_source {
	const char *component; /* "ingest" or "worker" */
	/* Writes the binary's metrics in Prometheus text format to fp. */
	void (*metrics)(void *arg, FILE *fp);
	/* Whether the binary can do its work now; when not, a short reason in why. */
	bool (*ready)(void *arg, char *why, size_t whylen);
	void *arg; /* passed to both */
};

/* A request as a handler sees it (all borrowed). */
struct admin_req {
	const char *method; /* "GET", "HEAD", ... */
	const char *path;   /* without the query */
	const char *query;  /* after '?', or NULL */
};

/* The answer a handler writes: status and type, and the body written to body. */
struct admin_resp {
	int status;       /* 200 unless the handler sets another */
	const char *type; /* Content-Type (static) */
	FILE *body;       /* a memory stream owned by the caller */
};

typedef void (*admin_handler)(const struct admin_source *src, const struct admin_req *req,
                              struct admin_resp *resp);

/* Answers req from the route table: the route's handler for GET and HEAD on its path, 405
 * for another method, 404 for another path. resp->body must be open; status and type are
 * set. */
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
