/* The status page, its sign-in form and its JSON API: thin admin routes around status.c. */
#include "status_http.h"

#include <civetweb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The page itself (worker/status_page.html, embedded at build time). */
extern const char status_page_html[];
extern const size_t status_page_html_len;

#define STATUS_MAX_ID 200

static const char login_html[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<title>Switchboard status: sign in</title>"
    "<style>body{font:15px system-ui,sans-serif;display:grid;place-items:center;height:90vh;"
    "background:#f8f9fa}form{background:#fff;border:1px solid #dadce0;border-radius:6px;"
    "padding:24px;display:grid;gap:10px;width:340px}input,button{padding:8px;font:inherit}"
    ".err{color:#c5221f}</style></head><body><form method=\"post\" action=\"login\">"
    "<strong>Switchboard status</strong><label>Admin token (ADMIN_TOKEN)"
    "<input type=\"password\" name=\"token\" autofocus required></label>%s"
    "<button type=\"submit\">Sign in</button></form></body></html>";

static void page_headers(struct admin_resp *resp)
{
	resp->type = "text/html; charset=utf-8";
	admin_header(resp, "Content-Security-Policy",
	             "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
	             "connect-src 'self'; form-action 'self'; frame-ancestors 'none'");
}

static void login_page(struct admin_resp *resp, int status, const char *note)
{
	page_headers(resp);
	resp->status = status;
	fprintf(resp->body, login_html, note);
}

static void unauthorized(struct admin_resp *resp)
{
	resp->status = 401;
	admin_header(resp, "WWW-Authenticate", "Bearer realm=\"switchboard\"");
	fputs("{\"error\":\"ADMIN_TOKEN required (Authorization: Bearer)\"}", resp->body);
}

/* Writes json (a new string, freed here) as the body; NULL is out of memory. */
static void json_body(struct admin_resp *resp, int status, char *json)
{
	resp->status = json != NULL ? status : 500;
	fputs(json != NULL ? json : "{\"error\":\"out of memory\"}", resp->body);
	free(json);
}

static void on_page(const struct admin_source *src, const struct admin_req *req,
                    struct admin_resp *resp)
{
	(void)src;
	if (!req->authorized) {
		login_page(resp, 200, "");
		return;
	}
	page_headers(resp);
	fwrite(status_page_html, 1, status_page_html_len, resp->body);
}

/* POST /login: the right token gets the session cookie and goes back to the page. */
static void on_login(const struct admin_source *src, const struct admin_req *req,
                     struct admin_resp *resp)
{
	char token[512], cookie[300];

	if (req->session[0] == '\0' ||
	    mg_get_var(req->body, req->body_len, "token", token, sizeof(token)) < 0 ||
	    !admin_token_ok(src, token)) {
		login_page(resp, 401, "<span class=\"err\">That is not the admin token.</span>");
		return;
	}
	snprintf(cookie, sizeof(cookie), ADMIN_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
	         req->session);
	resp->status = 303;
	admin_header(resp, "Location", "./");
	admin_header(resp, "Set-Cookie", cookie);
}

static void on_api_status(const struct admin_source *src, const struct admin_req *req,
                          struct admin_resp *resp)
{
	if (!req->authorized) {
		unauthorized(resp);
		return;
	}
	json_body(resp, 200, status_json(src->arg));
}

/* GET /api/calls/{id}: id is a call id or a request id, URL-encoded. */
static void on_api_call(const struct admin_source *src, const struct admin_req *req,
                        struct admin_resp *resp)
{
	const char *raw = req->path + strlen("/api/calls/");
	char id[STATUS_MAX_ID + 1], *out = NULL;
	int code;

	if (!req->authorized) {
		unauthorized(resp);
		return;
	}
	if (*raw == '\0' || strlen(raw) > STATUS_MAX_ID ||
	    mg_url_decode(raw, (int)strlen(raw), id, (int)sizeof(id), 0) <= 0) {
		resp->status = 400;
		fputs("{\"error\":\"give a call id or request id\"}", resp->body);
		return;
	}
	code = status_call_json(src->arg, id, &out);
	json_body(resp, code, out);
}

const struct admin_route status_http_routes[] = {
    {"/", false, "GET", on_page},
    {"/login", false, "POST", on_login},
    {"/api/status", false, "GET", on_api_status},
    {"/api/calls/", true, "GET", on_api_call},
};

const size_t status_http_nroutes = sizeof(status_http_routes) / sizeof(status_http_routes[0]);
