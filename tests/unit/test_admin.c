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

/* Answers method path for f; returns the status, the body in body (free it). */
static int ask(struct fake *f, const char *method, const char *path, char **body, const char **type)
{
	const struct admin_source src = {"test", fake_metrics, fake_ready, f};
	const struct admin_req req = {method, path, NULL};
	struct admin_resp resp = {0, NULL, NULL};
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
	assert_int_equal(ask(&f, "GET", "/", &body, &type), 404);
	assert_string_equal(body, "{\"error\":\"not found\"}\n");
	free(body);
	assert_int_equal(ask(&f, "GET", "/api/vapi/webhook", &body, &type), 404);
	free(body);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_routes),
	    cmocka_unit_test(test_other_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
