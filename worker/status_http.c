/* The status page, its login form and its JSON API: thin civetweb handlers around status.c. */
#include "status_http.h"

#include "util.h"

#include <civetweb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The page itself (worker/status_page.html, embedded at build time). */
extern const char status_page_html[];
extern const size_t status_page_html_len;

#define STATUS_COOKIE "sb_admin"
#define STATUS_MAX_ID 200
#define STATUS_MAX_FORM 4096

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

/* What the handlers share. */
struct status_http {
	struct status *status;
	const char *token;                    /* empty: open */
	char cookie[2 * EVP_MAX_MD_SIZE + 1]; /* the session cookie's value: HMAC of the token */
};

static struct status_http state;

static void send_body(struct mg_connection *c, int code, const char *type, const char *body,
                      size_t len, const char *extra_name, const char *extra_value)
{
	char n[24];

	mg_response_header_start(c, code);
	mg_response_header_add(c, "Content-Type", type, -1);
	mg_response_header_add(c, "Cache-Control", "no-store", -1);
	mg_response_header_add(c, "X-Content-Type-Options", "nosniff", -1);
	mg_response_header_add(c, "Content-Security-Policy",
	                       "default-src 'none'; script-src 'unsafe-inline'; style-src "
	                       "'unsafe-inline'; connect-src 'self'; form-action 'self'; "
	                       "frame-ancestors 'none'",
	                       -1);
	snprintf(n, sizeof(n), "%zu", len);
	if (extra_name != NULL)
		mg_response_header_add(c, extra_name, extra_value, -1);
	mg_response_header_add(c, "Content-Length", n, -1);
	mg_response_header_send(c);
	mg_write(c, body, len);
}

static int send_json(struct mg_connection *c, int code, char *json)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";

	if (json == NULL) {
		send_body(c, 500, "application/json", oom, sizeof(oom) - 1, NULL, NULL);
		return 500;
	}
	send_body(c, code, "application/json", json, strlen(json), NULL, NULL);
	free(json);
	return code;
}

/* Whether the request carries the token: as a bearer, or as the session cookie. */
static int authorized(struct mg_connection *c)
{
	const char *auth = mg_get_header(c, "Authorization");
	const char *cookies = mg_get_header(c, "Cookie");
	char got[sizeof(state.cookie)];

	if (state.token[0] == '\0')
		return 1;
	if (auth != NULL && strncmp(auth, "Bearer ", 7) == 0)
		return util_ct_equal(auth + 7, strlen(auth + 7), state.token, strlen(state.token));
	if (cookies != NULL && mg_get_cookie(cookies, STATUS_COOKIE, got, sizeof(got)) > 0)
		return util_ct_equal(got, strlen(got), state.cookie, strlen(state.cookie));
	return 0;
}

static int method_is(struct mg_connection *c, const char *m)
{
	return strcmp(mg_get_request_info(c)->request_method, m) == 0;
}

static int refuse_method(struct mg_connection *c, const char *allow)
{
	static const char body[] = "{\"error\":\"method not allowed\"}";

	send_body(c, 405, "application/json", body, sizeof(body) - 1, "Allow", allow);
	return 405;
}

static int send_login(struct mg_connection *c, int code, const char *note)
{
	char page[sizeof(login_html) + 128];
	int n = snprintf(page, sizeof(page), login_html, note);

	send_body(c, code, "text/html; charset=utf-8", page, (size_t)n, NULL, NULL);
	return code;
}

static int on_page(struct mg_connection *c, void *cbdata)
{
	(void)cbdata;
	if (!method_is(c, "GET") && !method_is(c, "HEAD"))
		return refuse_method(c, "GET, HEAD");
	if (!authorized(c))
		return send_login(c, 200, "");
	send_body(c, 200, "text/html; charset=utf-8", status_page_html, status_page_html_len, NULL,
	          NULL);
	return 200;
}

/* POST /login: a right token gets the session cookie and goes back to the page. */
static int on_login(struct mg_connection *c, void *cbdata)
{
	char form[STATUS_MAX_FORM + 1], token[512], cookie[sizeof(state.cookie) + 80];
	int n = 0, r;

	(void)cbdata;
	if (!method_is(c, "POST"))
		return refuse_method(c, "POST");
	while (n < STATUS_MAX_FORM && (r = mg_read(c, form + n, (size_t)(STATUS_MAX_FORM - n))) > 0)
		n += r;
	form[n] = '\0';
	if (state.token[0] == '\0' ||
	    mg_get_var(form, (size_t)n, "token", token, sizeof(token)) < 0 ||
	    !util_ct_equal(token, strlen(token), state.token, strlen(state.token)))
		return send_login(c, 401,
		                  "<span class=\"err\">That is not the admin token.</span>");
	snprintf(cookie, sizeof(cookie), STATUS_COOKIE "=%s; Path=/; HttpOnly; SameSite=Strict",
	         state.cookie);
	mg_response_header_start(c, 303);
	mg_response_header_add(c, "Location", "./", -1);
	mg_response_header_add(c, "Set-Cookie", cookie, -1);
	mg_response_header_add(c, "Content-Length", "0", -1);
	mg_response_header_send(c);
	return 303;
}

static int unauthorized(struct mg_connection *c)
{
	static const char body[] = "{\"error\":\"ADMIN_TOKEN required (Authorization: Bearer)\"}";

	send_body(c, 401, "application/json", body, sizeof(body) - 1, "WWW-Authenticate",
	          "Bearer realm=\"switchboard\"");
	return 401;
}

static int on_api_status(struct mg_connection *c, void *cbdata)
{
	(void)cbdata;
	if (!method_is(c, "GET"))
		return refuse_method(c, "GET");
	if (!authorized(c))
		return unauthorized(c);
	return send_json(c, 200, status_json(state.status));
}

/* GET /api/calls/{id}: id is a call id or a request id, URL-encoded. */
static int on_api_call(struct mg_connection *c, void *cbdata)
{
	const char *uri = mg_get_request_info(c)->local_uri;
	const char *raw = strstr(uri, "/api/calls/");
	char id[STATUS_MAX_ID + 1];
	char *out = NULL;
	int code;

	(void)cbdata;
	if (!method_is(c, "GET"))
		return refuse_method(c, "GET");
	if (!authorized(c))
		return unauthorized(c);
	raw = raw != NULL ? raw + strlen("/api/calls/") : "";
	if (*raw == '\0' || strlen(raw) > STATUS_MAX_ID ||
	    mg_url_decode(raw, (int)strlen(raw), id, (int)sizeof(id), 0) <= 0) {
		static const char bad[] = "{\"error\":\"give a call id or request id\"}";

		send_body(c, 400, "application/json", bad, sizeof(bad) - 1, NULL, NULL);
		return 400;
	}
	code = status_call_json(state.status, id, &out);
	return send_json(c, code, out);
}

/* The session cookie's value: HMAC-SHA256 of a fixed text under the token, in hex, so the
 * cookie never holds the token itself. */
static void derive_cookie(const char *token)
{
	static const char what[] = "switchboard status session";
	unsigned char mac[EVP_MAX_MD_SIZE];
	unsigned len = 0;

	state.cookie[0] = '\0';
	if (token[0] == '\0' ||
	    HMAC(EVP_sha256(), token, (int)strlen(token), (const unsigned char *)what,
	         sizeof(what) - 1, mac, &len) == NULL)
		return;
	for (unsigned i = 0; i < len; i++)
		snprintf(state.cookie + 2 * i, 3, "%02x", mac[i]);
}

void status_http_register(struct mg_context *ctx, struct status *status, const char *token)
{
	state.status = status;
	state.token = token != NULL ? token : "";
	derive_cookie(state.token);
	mg_set_request_handler(ctx, "/$", on_page, NULL);
	mg_set_request_handler(ctx, "/login$", on_login, NULL);
	mg_set_request_handler(ctx, "/api/status$", on_api_status, NULL);
	mg_set_request_handler(ctx, "/api/calls/", on_api_call, NULL);
}
