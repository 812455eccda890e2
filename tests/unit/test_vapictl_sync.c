/* sync_diff(), sync_patch_body_new() and the desired configuration (deploy/vapictl/sync.c).
 *
 * Data-driven: each row of `cases` is an assistant or phone number as the API could list it,
 * with the parts that differ from the desired configuration. Every row is also PATCHed in
 * memory, once replacing `server` and once merging it (the API documents neither), and must
 * then compare equal: a second sync changes nothing. */
#include "sync.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define URL "https://hooks.example.com/api/vapi/webhook"
#define SECRET "s3cret"
#define RIGHT_SERVER                                                                               \
	"{\"url\": \"" URL "\", \"timeoutSeconds\": 20, \"headers\": {\"X-Vapi-Secret\": "         \
	"\"" SECRET "\"}, \"backoffPlan\": {\"type\": \"exponential\", \"maxRetries\": 5, "        \
	"\"baseDelaySeconds\": 1, \"excludedStatusCodes\": [400, 401, 403, 404, 405, 413]}}"
#define NOTIFY "[\"status-update\", \"end-of-call-report\", \"hang\"]"
#define ALL (SYNC_D_URL | SYNC_D_HEADERS | SYNC_D_TIMEOUT | SYNC_D_BACKOFF)

struct diff_case {
	const char *name;
	enum sync_kind kind;
	const char *json; /* the resource */
	unsigned want;    /* SYNC_D_* bits */
};

static const struct diff_case cases[] = {
    {"assistant right", SYNC_ASSISTANT,
     "{\"id\": \"a1\", \"server\": " RIGHT_SERVER ", \"serverMessages\": " NOTIFY "}", 0},
    {"equal in other forms", SYNC_ASSISTANT,
     "{\"id\": \"a2\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20.0, "
     "\"credentialId\": \"c1\", \"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, "
     "\"backoffPlan\": {\"baseDelaySeconds\": 1.0, \"maxRetries\": 5, \"type\": "
     "\"exponential\", \"excludedStatusCodes\": [413, 405, 404, 403, 401, 400, 400]}}, "
     "\"serverMessages\": [\"hang\", \"status-update\", \"end-of-call-report\"]}",
     0},
    {"no server, no messages", SYNC_ASSISTANT, "{\"id\": \"a3\", \"name\": \"x\"}",
     ALL | SYNC_D_MESSAGES},
    {"server null", SYNC_ASSISTANT,
     "{\"id\": \"a4\", \"server\": null, \"serverMessages\": " NOTIFY "}", ALL},
    {"other url", SYNC_ASSISTANT,
     "{\"id\": \"a5\", \"server\": {\"url\": \"https://other.example/\", \"timeoutSeconds\": "
     "20, \"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_URL},
    {"url with a trailing slash", SYNC_ASSISTANT,
     "{\"id\": \"a6\", \"server\": {\"url\": \"" URL "/\"}, \"serverMessages\": " NOTIFY "}", ALL},
    {"old secret", SYNC_ASSISTANT,
     "{\"id\": \"a7\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"old\"}, \"backoffPlan\": {\"type\": \"exponential\", "
     "\"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": [400, 401, 403, "
     "404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_HEADERS},
    {"secret under another header name", SYNC_ASSISTANT,
     "{\"id\": \"a8\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"x-vapi-secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_HEADERS},
    {"an extra header", SYNC_ASSISTANT,
     "{\"id\": \"a9\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\", \"Authorization\": \"Bearer t\"}, "
     "\"backoffPlan\": {\"type\": \"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": "
     "1, \"excludedStatusCodes\": [400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY
     "}",
     SYNC_D_HEADERS},
    {"secret as a number", SYNC_ASSISTANT,
     "{\"id\": \"a10\", \"server\": {\"url\": \"" URL "\", \"headers\": {\"X-Vapi-Secret\": "
     "7}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_HEADERS | SYNC_D_TIMEOUT | SYNC_D_BACKOFF},
    {"longer timeout", SYNC_ASSISTANT,
     "{\"id\": \"a11\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 30, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_TIMEOUT},
    {"timeout as a string", SYNC_ASSISTANT,
     "{\"id\": \"a12\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": \"20\", "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_TIMEOUT},
    {"no backoffPlan", SYNC_ASSISTANT,
     "{\"id\": \"a13\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_BACKOFF},
    {"fixed backoff", SYNC_ASSISTANT,
     "{\"id\": \"a14\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"fixed\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": [400, "
     "401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_BACKOFF},
    {"no retries", SYNC_ASSISTANT,
     "{\"id\": \"a15\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 0, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_BACKOFF},
    {"5xx excluded from retries", SYNC_ASSISTANT,
     "{\"id\": \"a16\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, \"excludedStatusCodes\": "
     "[400, 401, 403, 404, 405, 413, 503]}}, \"serverMessages\": " NOTIFY "}",
     SYNC_D_BACKOFF},
    {"no excludedStatusCodes", SYNC_ASSISTANT,
     "{\"id\": \"a17\", \"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 20, "
     "\"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, \"backoffPlan\": {\"type\": "
     "\"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1}}, \"serverMessages\": " NOTIFY
     "}",
     SYNC_D_BACKOFF},
    {"answer-expecting messages", SYNC_ASSISTANT,
     "{\"id\": \"a18\", \"server\": " RIGHT_SERVER ", \"serverMessages\": [\"status-update\", "
     "\"end-of-call-report\", \"hang\", \"tool-calls\"]}",
     SYNC_D_MESSAGES},
    {"a notification missing", SYNC_ASSISTANT,
     "{\"id\": \"a19\", \"server\": " RIGHT_SERVER ", \"serverMessages\": [\"status-update\", "
     "\"end-of-call-report\"]}",
     SYNC_D_MESSAGES},
    {"messages not an array", SYNC_ASSISTANT,
     "{\"id\": \"a20\", \"server\": " RIGHT_SERVER ", \"serverMessages\": \"hang\"}",
     SYNC_D_MESSAGES},
    {"phone number right", SYNC_PHONE_NUMBER,
     "{\"id\": \"p1\", \"provider\": \"twilio\", \"assistantId\": \"a1\", \"server\": " RIGHT_SERVER
     "}",
     0},
    {"phone number: messages are not its business", SYNC_PHONE_NUMBER,
     "{\"id\": \"p2\", \"provider\": \"vapi\", \"server\": " RIGHT_SERVER
     ", \"serverMessages\": [\"tool-calls\"]}",
     0},
    {"phone number without server", SYNC_PHONE_NUMBER,
     "{\"id\": \"p3\", \"provider\": \"byo-phone-number\", \"squadId\": \"s1\"}", ALL},
    {"phone number, other url", SYNC_PHONE_NUMBER,
     "{\"id\": \"p4\", \"provider\": \"telnyx\", \"server\": {\"url\": \"https://x.example\", "
     "\"timeoutSeconds\": 20, \"headers\": {\"X-Vapi-Secret\": \"" SECRET "\"}, "
     "\"backoffPlan\": {\"type\": \"exponential\", \"maxRetries\": 5, \"baseDelaySeconds\": 1, "
     "\"excludedStatusCodes\": [400, 401, 403, 404, 405, 413]}}}",
     SYNC_D_URL},
};

#define NCASES (sizeof(cases) / sizeof(cases[0]))

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (j == NULL)
		fail_msg("bad fixture JSON at line %d column %d: %s\n%s", jerr.line, jerr.column,
		         jerr.text, text);
	return j;
}

static int setup_desired(void **state)
{
	struct sync_desired *d = calloc(1, sizeof(*d));
	char err[300];

	assert_non_null(d);
	if (sync_desired_init(d, URL, "X-Vapi-Secret", SECRET, 20, NULL, err, sizeof(err)) != 0)
		fail_msg("sync_desired_init: %s", err);
	*state = d;
	return 0;
}

static int teardown_desired(void **state)
{
	sync_desired_free(*state);
	free(*state);
	return 0;
}

/* Applies body to resource as PATCH would, replacing or merging `server`. */
static void apply_patch(json_t *resource, const json_t *body, bool merge)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)body, key, v)
	{
		json_t *old = json_object_get(resource, key);

		if (merge && strcmp(key, "server") == 0 && json_is_object(old))
			assert_int_equal(json_object_update(old, v), 0);
		else
			assert_int_equal(json_object_set(resource, key, v), 0);
	}
}

static void test_diff_cases(void **state)
{
	const struct sync_desired *d = *state;
	char got[128], want[128];
	int bad = 0;

	for (size_t i = 0; i < NCASES; i++) {
		json_t *r = parse(cases[i].json);
		unsigned diff = sync_diff(d, cases[i].kind, r);

		if (diff != cases[i].want) {
			printf("case \"%s\": differs in {%s}, expected {%s}\n", cases[i].name,
			       sync_diff_names(diff, got, sizeof(got)),
			       sync_diff_names(cases[i].want, want, sizeof(want)));
			bad++;
		}
		json_decref(r);
	}
	assert_int_equal(bad, 0);
}

static void test_patch_makes_every_case_right(void **state)
{
	const struct sync_desired *d = *state;
	char err[200], names[128];
	int bad = 0;

	for (size_t i = 0; i < NCASES; i++) {
		for (int merge = 0; merge < 2; merge++) {
			json_t *r = parse(cases[i].json);
			json_t *body = sync_patch_body_new(d, cases[i].kind, r, err, sizeof(err));
			unsigned after;

			if (body == NULL)
				fail_msg("case \"%s\": %s", cases[i].name, err);
			apply_patch(r, body, merge);
			after = sync_diff(d, cases[i].kind, r);
			if (after != 0) {
				printf("case \"%s\" (%s): still differs in {%s} after the PATCH\n",
				       cases[i].name, merge ? "merge" : "replace",
				       sync_diff_names(after, names, sizeof(names)));
				bad++;
			}
			json_decref(body);
			json_decref(r);
		}
	}
	assert_int_equal(bad, 0);
}

static void test_patch_bodies(void **state)
{
	const struct sync_desired *d = *state;
	json_t *asst = parse("{\"id\": \"a\", \"name\": \"keep me\", \"model\": {}}");
	json_t *phone = parse("{\"id\": \"p\", \"provider\": \"vonage\", \"number\": \"+1555\"}");
	json_t *want = parse(RIGHT_SERVER), *notify = parse(NOTIFY);
	json_t *nop = parse("{\"id\": \"p\", \"number\": \"+1555\"}");
	char err[200] = "";
	json_t *b;

	b = sync_patch_body_new(d, SYNC_ASSISTANT, asst, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(json_object_size(b), 2);
	assert_true(json_equal(json_object_get(b, "server"), want));
	assert_true(json_equal(json_object_get(b, "serverMessages"), notify));
	json_decref(b);

	b = sync_patch_body_new(d, SYNC_PHONE_NUMBER, phone, err, sizeof(err));
	assert_non_null(b);
	assert_int_equal(json_object_size(b), 2);
	assert_string_equal(json_string_value(json_object_get(b, "provider")), "vonage");
	assert_true(json_equal(json_object_get(b, "server"), want));
	json_decref(b);

	assert_null(sync_patch_body_new(d, SYNC_PHONE_NUMBER, nop, err, sizeof(err)));
	assert_non_null(strstr(err, "provider"));
	json_decref(nop);
	json_decref(notify);
	json_decref(want);
	json_decref(phone);
	json_decref(asst);
}

static void test_extra_messages(void **state)
{
	struct sync_desired d;
	char err[300];
	json_t *want = parse("[\"status-update\", \"end-of-call-report\", \"hang\", "
	                     "\"transcript[transcriptType=final]\", \"model-output\"]");

	(void)state;
	assert_int_equal(sync_desired_init(&d, URL, "X-Vapi-Secret", SECRET, 20,
	                                   " transcript[transcriptType=final] ,hang,,model-output",
	                                   err, sizeof(err)),
	                 0);
	assert_true(json_equal(d.messages, want));
	sync_desired_free(&d);
	json_decref(want);

	static const char *const refused[] = {"tool-calls", "assistant-request",
	                                      "hang,transfer-destination-request", "function-call",
	                                      "status update"};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		err[0] = '\0';
		assert_int_equal(sync_desired_init(&d, URL, "X-Vapi-Secret", SECRET, 20, refused[i],
		                                   err, sizeof(err)),
		                 -1);
		assert_non_null(strstr(err, "--messages"));
		sync_desired_free(&d);
	}
}

static void test_timeout_and_header_are_configurable(void **state)
{
	struct sync_desired d;
	char err[300];
	json_t *r = parse("{\"server\": {\"url\": \"" URL "\", \"timeoutSeconds\": 45, "
	                  "\"headers\": {\"X-Secret\": \"" SECRET "\"}}}");

	(void)state;
	assert_int_equal(sync_desired_init(&d, URL, "X-Secret", SECRET, 45, "", err, sizeof(err)),
	                 0);
	assert_int_equal(sync_diff(&d, SYNC_PHONE_NUMBER, r), SYNC_D_BACKOFF);
	sync_desired_free(&d);
	json_decref(r);
}

static void test_helpers(void **state)
{
	static const struct {
		const char *json;
		bool unassigned;
	} phones[] = {
	    {"{}", true},
	    {"{\"assistantId\": null, \"squadId\": \"\"}", true},
	    {"{\"assistantId\": \"a\"}", false},
	    {"{\"squadId\": \"s\"}", false},
	    {"{\"workflowId\": \"w\"}", false},
	};
	json_t *r = parse("{\"server\": {\"url\": \"https://x\"}}");
	char buf[128];

	(void)state;
	for (size_t i = 0; i < sizeof(phones) / sizeof(phones[0]); i++) {
		json_t *p = parse(phones[i].json);

		assert_int_equal(sync_phone_unassigned(p), phones[i].unassigned);
		json_decref(p);
	}
	assert_string_equal(sync_server_url(r), "https://x");
	assert_null(sync_server_url(json_object_get(r, "server")));
	assert_string_equal(sync_diff_names(0, buf, sizeof(buf)), "");
	assert_string_equal(sync_diff_names(SYNC_D_URL | SYNC_D_MESSAGES, buf, sizeof(buf)),
	                    "url,serverMessages");
	assert_string_equal(sync_diff_names(ALL | SYNC_D_MESSAGES, buf, 12), "url,headers");
	json_decref(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_diff_cases, setup_desired, teardown_desired),
	    cmocka_unit_test_setup_teardown(test_patch_makes_every_case_right, setup_desired,
	                                    teardown_desired),
	    cmocka_unit_test_setup_teardown(test_patch_bodies, setup_desired, teardown_desired),
	    cmocka_unit_test(test_extra_messages),
	    cmocka_unit_test(test_timeout_and_header_are_configurable),
	    cmocka_unit_test(test_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
