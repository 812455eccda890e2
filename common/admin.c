/* The admin listener: one route table, answered by civetweb for either binary. */
#include "admin.h"

#include "util.h"

#include <civetweb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdlib.h>
#include <string.h>

struct admin {
	struct mg_context *ctx;
	struct admin_source src;
	char session[2 * EVP_MAX_MD_SIZE + 1]; /* admin_session_cookie() of the token */
};

void admin_header(struct admin_resp *resp, const char *name, const char *value)
{
	if (resp->nheaders >= ADMIN_MAX_HEADERS)
		return;
	resp->hname[resp->nheaders] = name;
	snprintf(resp->hvalue[resp->nheaders], sizeof(resp->hvalue[0]), "%s", value);
	resp->nheaders++;
}

bool admin_token_ok(const struct admin_source *src, const char *given)
{
	const char *t = src->token != NULL ? src->token : "";

	if (*t == '\0')
		return true;
	return given != NULL && util_ct_equal(given, strlen(given), t, strlen(t));
}

void admin_session_cookie(const char *token, char *buf, size_t size)
{
	static const char what[] = "switchboard admin session";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	if (size > 0)
		buf[0] = '\0';
	if (token == NULL || *token == '\0' ||
	    HMAC(EVP_sha256(), token, (int)strlen(token), (const unsigned char *)what,
	         sizeof(what) - 1, mac, &len) == NULL)
		return;
	for (unsigned i = 0; i < len && 2 * i + 2 < size; i++)
		snprintf(buf + 2 * i, 3, "%02x", mac[i]);
}

bool admin_authorized(const struct admin_source *src, const char *session,
                      const char *authorization, const char *cookies)
{
	char got[2 * EVP_MAX_MD_SIZE + 1];

	if (src->token == NULL || src->token[0] == '\0')
		return true;
	if (authorization != NULL && strncmp(authorization, "Bearer ", 7) == 0)
		return admin_token_ok(src, authorization + 7);
	if (cookies != NULL && session[0] != '\0' &&
	    mg_get_cookie(cookies, ADMIN_COOKIE, got, sizeof(got)) > 0)
		return util_ct_equal(got, strlen(got), session, strlen(session));
	return false;
}

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
		/* Ready with a reason: working, but not as usual (ingest spooling). */
		if (why[0] != '\0')
			fprintf(resp->body, "{\"status\":\"degraded\",\"reason\":\"%s\"}\n", why);
		else
			fputs("{\"status\":\"ready\"}\n", resp->body);
		return;
	}
	resp->status = 503;
	/* The reasons are fixed texts of ours: no character in them needs escaping. */
	fprintf(resp->body, "{\"status\":\"not ready\",\"reason\":\"%s\"}\n", why);
}

/* The routes of the admin listener for both binaries: open, for scrapers and probes. */
static const struct admin_route routes[] = {
    {"/metrics", false, "GET", route_metrics},
    {"/healthz", false, "GET", route_healthz},
    {"/readyz", false, "GET", route_readyz},
};

static bool matches(const struct admin_route *r, const char *path)
{
	return r->prefix ? strncmp(path, r->path, strlen(r->path)) == 0
	                 : strcmp(path, r->path) == 0;
}

static bool method_ok(const struct admin_route *r, const char *method)
{
	return strcmp(method, r->method) == 0 ||
	       (strcmp(r->method, "GET") == 0 && strcmp(method, "HEAD") == 0);
}

/* The route for path: the shared ones first, then the binary's. */
static const struct admin_route *find(const struct admin_source *src, const char *path)
{
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (matches(&routes[i], path))
			return &routes[i];
	for (size_t i = 0; i < src->nroutes; i++)
		if (matches(&src->routes[i], path))
			return &src->routes[i];
	return NULL;
}

void admin_handle(const struct admin_source *src, const struct admin_req *req,
                  struct admin_resp *resp)
{
	const struct admin_route *r = find(src, req->path);

	resp->status = 200;
	resp->type = "application/json";
	if (r == NULL) {
		resp->status = 404;
		fputs("{\"error\":\"not found\"}\n", resp->body);
		return;
	}
	if (!method_ok(r, req->method)) {
		resp->status = 405;
		admin_header(resp, "Allow",
		             strcmp(r->method, "GET") == 0 ? "GET, HEAD" : r->method);
		fputs("{\"error\":\"method not allowed\"}\n", resp->body);
		return;
	}
	r->handler(src, req, resp);
}

/* civetweb's side: the request as plain data in, the answer out. */
static int on_request(struct mg_connection *conn, void *cbdata)
{
	const struct admin *a = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	char form[ADMIN_MAX_BODY + 1];
	struct admin_req req = {ri->request_method,
	                        ri->local_uri ? ri->local_uri : "",
	                        ri->query_string,
	                        form,
	                        0,
	                        admin_authorized(&a->src, a->session,
	                                         mg_get_header(conn, "Authorization"),
	                                         mg_get_header(conn, "Cookie")),
	                        a->session};
	struct admin_resp resp = {500, "application/json", NULL, 0, {NULL}, {""}};
	char *text = NULL;
	size_t len = 0;
	int got;

	while (strcmp(req.method, "POST") == 0 && req.body_len < ADMIN_MAX_BODY &&
	       (got = mg_read(conn, form + req.body_len, ADMIN_MAX_BODY - req.body_len)) > 0)
		req.body_len += (size_t)got;
	form[req.body_len] = '\0';

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
	mg_response_header_add(conn, "X-Content-Type-Options", "nosniff", -1);
	for (size_t i = 0; i < resp.nheaders; i++)
		mg_response_header_add(conn, resp.hname[i], resp.hvalue[i], -1);
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
	const char *opts[] = {"listening_ports", listen, "num_threads", "4", NULL};
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
	admin_session_cookie(src->token, a->session, sizeof(a->session));
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
