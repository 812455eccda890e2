/* The admin listener's route table, as plain data: what each route answers for a source
 * that is ready or not, and the answers for other methods and paths. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "admin.h"

#include <stdlib.h>
#include <string.h>

struct fake {
	bool ready;
	int metrics_calls;
};

static void fake_metrics(void *arg, FILE *fp)
{
	((struct fake *)arg)->metrics_calls++;
	fputs("x_total 1\n", fp);
}

static bool fake_ready(void *arg, char *why, size_t whylen)
{
	if (!((struct fake *)arg)->ready)
		snprintf(why, whylen, "Redis down");
	return ((struct fake *)arg)->ready;
}

static void own_page(const struct admin_source *src, const struct admin_req *req,
                     struct admin_resp *resp)
{
	(void)src;
	resp->type = "text/plain";
	admin_header(resp, "X-Test", req->path);
	fprintf(resp->body, "page %s", req->path);
}

/* A binary's own routes: one exact, one a prefix that only takes POST. */
static const struct admin_route own_routes[] = {
    {"/", false, "GET", own_page},
    {"/api/x/", true, "POST", own_page},
};

/* Answers method path for f; returns the status, the body in body (free it). */
static int ask(struct fake *f, const char *method, const char *path, char **body, const char **type)
{
	const struct admin_source src = {.component = "test",
	                                 .metrics = fake_metrics,
	                                 .ready = fake_ready,
	                                 .arg = f,
	                                 .routes = own_routes,
	                                 .nroutes = 2};
	const struct admin_req req = {.method = method, .path = path};
	struct admin_resp resp = {.status = 0};
	size_t len = 0;

	*body = NULL;
	resp.body = open_memstream(body, &len);
	assert_non_null(resp.body);
	admin_handle(&src, &req, &resp);
	fclose(resp.body);
	*type = resp.type;
	return resp.status;
}

static void test_routes(void **state)
{
	struct fake f = {true, 0};
	const char *type;
	char *body;

	(void)state;
	assert_int_equal(ask(&f, "GET", "/metrics", &body, &type), 200);
	assert_string_equal(body, "x_total 1\n");
	assert_string_equal(type, "text/plain; version=0.0.4");
	assert_int_equal(f.metrics_calls, 1);
	free(body);
	assert_int_equal(ask(&f, "GET", "/healthz", &body, &type), 200);
	assert_string_equal(body, "{\"status\":\"ok\"}\n");
	assert_string_equal(type, "application/json");
	free(body);
	assert_int_equal(ask(&f, "HEAD", "/readyz", &body, &type), 200);
	assert_string_equal(body, "{\"status\":\"ready\"}\n");
	free(body);
	f.ready = false;
	assert_int_equal(ask(&f, "GET", "/readyz", &body, &type), 503);
	assert_string_equal(body, "{\"status\":\"not ready\",\"reason\":\"Redis down\"}\n");
	free(body);
	/* Liveness does not depend on readiness. */
	assert_int_equal(ask(&f, "GET", "/healthz", &body, &type), 200);
	free(body);
}

static void test_other_requests(void **state)
{
	struct fake f = {true, 0};
	const char *type;
	char *body;

	(void)state;
	assert_int_equal(ask(&f, "POST", "/metrics", &body, &type), 405);
	free(body);
	assert_int_equal(f.metrics_calls, 0);
	assert_int_equal(ask(&f, "GET", "/metrics/", &body, &type), 404);
	free(body);
	assert_int_equal(ask(&f, "GET", "/nothing", &body, &type), 404);
	assert_string_equal(body, "{\"error\":\"not found\"}\n");
	free(body);
	assert_int_equal(ask(&f, "GET", "/api/vapi/webhook", &body, &type), 404);
	free(body);
}

/* The binary's routes follow the shared ones: exact, prefix, and their method. */
static void test_own_routes(void **state)
{
	struct fake f = {true, 0};
	const char *type;
	char *body;

	(void)state;
	assert_int_equal(ask(&f, "GET", "/", &body, &type), 200);
	assert_string_equal(body, "page /");
	assert_string_equal(type, "text/plain");
	free(body);
	assert_int_equal(ask(&f, "POST", "/api/x/abc", &body, &type), 200);
	assert_string_equal(body, "page /api/x/abc");
	free(body);
	assert_int_equal(ask(&f, "GET", "/api/x/abc", &body, &type), 405);
	free(body);
	assert_int_equal(ask(&f, "POST", "/", &body, &type), 405);
	free(body);
}

/* A token is carried as a bearer or as the session cookie derived from it, never compared
 * as plain text in the cookie. */
static void test_token(void **state)
{
	struct admin_source open = {.component = "test"},
	                    guarded = {.component = "test", .token = "s3cret"};
	char session[200], other[200], cookie[300];

	(void)state;
	admin_session_cookie("s3cret", session, sizeof(session));
	admin_session_cookie("s3cret2", other, sizeof(other));
	assert_int_equal(strlen(session), 64);
	assert_string_not_equal(session, other);
	assert_true(admin_authorized(&open, "", NULL, NULL));
	assert_false(admin_authorized(&guarded, session, NULL, NULL));
	assert_true(admin_authorized(&guarded, session, "Bearer s3cret", NULL));
	assert_false(admin_authorized(&guarded, session, "Bearer s3cre", NULL));
	assert_false(admin_authorized(&guarded, session, "Basic s3cret", NULL));
	snprintf(cookie, sizeof(cookie), "a=1; " ADMIN_COOKIE "=%s", session);
	assert_true(admin_authorized(&guarded, session, NULL, cookie));
	snprintf(cookie, sizeof(cookie), ADMIN_COOKIE "=%s", other);
	assert_false(admin_authorized(&guarded, session, NULL, cookie));
	assert_false(admin_authorized(&guarded, session, NULL, ADMIN_COOKIE "=s3cret"));
	assert_true(admin_token_ok(&guarded, "s3cret"));
	assert_false(admin_token_ok(&guarded, ""));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_other_requests),
	    cmocka_unit_test(test_own_routes),
	    cmocka_unit_test(test_token),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
