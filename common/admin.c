/* The admin listener: one route table, answered by civetweb for either binary. */
#include "admin.h"

#include <civetweb.h>
#include <stdlib.h>
#include <string.h>

struct admin {
	struct mg_context *ctx;
	struct admin_source src;
};

static void route_metrics(const struct admin_source *src, const struct admin_req *req,
                          struct admin_resp *resp)
{
	(void)req;
	resp->type = "text/plain; version=0.0.4";
	src->metrics(src->arg, resp->body);
}

/* The process serves: nothing else is checked (a load balancer's liveness probe). */
static void route_healthz(const struct admin_source *src, const struct admin_req *req,
                          struct admin_resp *resp)
{
	(void)src;
	(void)req;
	fputs("{\"status\":\"ok\"}\n", resp->body);
}

static void route_readyz(const struct admin_source *src, const struct admin_req *req,
                         struct admin_resp *resp)
{
	char why[200] = "";

	(void)req;
	if (src->ready(src->arg, why, sizeof(why))) {
		fputs("{\"status\":\"ready\"}\n", resp->body);
		return;
	}
	resp->status = 503;
	/* The reasons are fixed texts of ours: no character in them needs escaping. */
	fprintf(resp->body, "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", why);
}

/* Every route of the admin listener, for both binaries. */
static const struct admin_route {
	const char *path;      /* matched exactly */
	admin_handler handler; /* answers GET and HEAD */
} routes[] = {
    {"/metrics", route_metrics},
    {"/healthz", route_healthz},
    {"/readyz", route_readyz},
};

void admin_handle(const struct admin_source *src, const struct admin_req *req,
                  struct admin_resp *resp)
{
	resp->status = 200;
	resp->type = "application/json";
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (strcmp(req->path, routes[i].path) != 0)
			continue;
		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
			resp->status = 405;
			fputs("{\"error\":\"method not allowed\"}\n", resp->body);
			return;
		}
		/* A route marked private would check the bearer token here, before its
		 * handler runs. */
		routes[i].handler(src, req, resp);
		return;
	}
	resp->status = 404;
	fputs("{\"error\":\"not found\"}\n", resp->body);
}

/* civetweb's side: the request as plain data in, the answer out. */
static int on_request(struct mg_connection *conn, void *cbdata)
{
	const struct admin *a = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	struct admin_req req = {ri->request_method, ri->local_uri ? ri->local_uri : "",
	                        ri->query_string};
	struct admin_resp resp = {500, "application/json", NULL};
	char *text = NULL;
	size_t len = 0;

	resp.body = open_memstream(&text, &len);
	if (resp.body == NULL) {
		mg_send_http_error(conn, 500, "out of memory");
		return 500;
	}
	admin_handle(&a->src, &req, &resp);
	fclose(resp.body);
	mg_response_header_start(conn, resp.status);
	mg_response_header_add(conn, "Content-Type", resp.type, -1);
	mg_response_header_add(conn, "Cache-Control", "no-store", -1);
	{
		char n[32];

		snprintf(n, sizeof(n), "%zu", len);
		mg_response_header_add(conn, "Content-Length", n, -1);
	}
	mg_response_header_send(conn);
	if (strcmp(req.method, "HEAD") != 0)
		mg_write(conn, text, len);
	free(text);
	return resp.status;
}

struct admin *admin_start(const char *listen, const char *listen_var,
                          const struct admin_source *src, char *err, size_t errlen)
{
	const char *opts[] = {"listening_ports", listen, "num_threads", "2", NULL};
	struct mg_callbacks cb;
	struct mg_init_data init = {&cb, NULL, opts};
	unsigned code = 0;
	char why[256] = "";
	struct mg_error_data ed = {&code, why, sizeof(why)};
	struct admin *a = calloc(1, sizeof(*a));

	if (a == NULL) {
		snprintf(err, errlen, "%s %s: out of memory", listen_var, listen);
		return NULL;
	}
	a->src = *src;
	memset(&cb, 0, sizeof(cb));
	mg_init_library(0);
	a->ctx = mg_start2(&init, &ed);
	if (a->ctx == NULL) {
		snprintf(err, errlen, "%s %s: %s", listen_var, listen, why);
		mg_exit_library();
		free(a);
		return NULL;
	}
	mg_set_request_handler(a->ctx, "/", on_request, a);
	return a;
}

void admin_stop(struct admin *a)
{
	if (a == NULL)
		return;
	mg_stop(a->ctx);
	mg_exit_library();
	free(a);
}
