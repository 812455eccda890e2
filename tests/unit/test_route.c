/* route_resolve() over the composed fixtures (FIXTURES_DIR, default tests/fixtures), with
 * the database's answers built by hand in struct route_facts. Each table row is one rule of
 * DESIGN.md "Routing"; mismatches are all printed with the row's name before failing. */
#include "route.h"

#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "testutil.h"

/* One message, what the database knows about it, and the decision expected. */
struct route_case {
	const char *name;         /* the rule the row shows */
	const char *file;         /* fixture in FIXTURES_DIR */
	struct route_facts facts; /* the look-up results */
	enum route_rule rule;
	const char *org_id; /* NULL when unrouted */
	const char *reason; /* text the reason must contain */
};

/* Organizations the hand-built facts name. */
#define ORG_PHONE "org_by_phone"
#define ORG_ASST "org_by_assistant"

static const struct route_case inbound_cases[] = {
    {"inbound: by phone number",
     "inbound.phone.json",
     {ORG_PHONE, false, ORG_ASST},
     ROUTE_PHONE,
     ORG_PHONE,
     "routed by phone_number"},
    {"inbound: phone wins over metadata naming another org",
     "inbound.metadata-other-org.json",
     {ORG_PHONE, true, NULL},
     ROUTE_PHONE,
     ORG_PHONE,
     "routed by phone_number"},
    {"inbound: unknown phone falls back to the assistant",
     "inbound.phone.json",
     {NULL, false, ORG_ASST},
     ROUTE_ASSISTANT,
     ORG_ASST,
     "routed by assistant"},
    {"inbound: unknown phone, no assistant",
     "inbound.phone.json",
     {NULL, false, NULL},
     ROUTE_NONE,
     NULL,
     "unknown phone number \"phone-inbound-0006\""},
    /* Callers can shape an inbound call's metadata, so it is not used even as a fallback. */
    {"inbound: unknown phone, existing metadata org still unrouted",
     "inbound.metadata-other-org.json",
     {NULL, true, NULL},
     ROUTE_NONE,
     NULL,
     "unknown phone number \"phone-inbound-0006\""},
};

static const struct route_case metadata_cases[] = {
    {"outbound: assistantOverrides metadata org exists",
     "outbound.overrides-metadata.json",
     {NULL, true, ORG_ASST},
     ROUTE_METADATA,
     "org_acme",
     "routed by metadata"},
    {"outbound: metadata org missing, no fallback to a known assistant",
     "outbound.overrides-metadata.json",
     {NULL, false, ORG_ASST},
     ROUTE_NONE,
     NULL,
     "\"org_acme\" named in call.assistantOverrides.metadata does not exist"},
    {"outbound: assistant.metadata",
     "outbound.assistant-metadata.json",
     {NULL, true, ORG_ASST},
     ROUTE_METADATA,
     "org_globex",
     "routed by metadata"},
    {"outbound: call.metadata",
     "outbound.call-metadata.json",
     {NULL, true, NULL},
     ROUTE_METADATA,
     "org_initech",
     "routed by metadata"},
    {"outbound: assistant.metadata beats call.metadata",
     "outbound.assistant-and-call-metadata.json",
     {NULL, true, NULL},
     ROUTE_METADATA,
     "org_umbrella",
     "routed by metadata"},
    {"outbound: missing org named in assistant.metadata",
     "outbound.assistant-and-call-metadata.json",
     {NULL, false, NULL},
     ROUTE_NONE,
     NULL,
     "\"org_umbrella\" named in assistant.metadata does not exist"},
    /* The number an outbound call is placed from says nothing about whose call it is. */
    {"outbound: a known phone number does not route",
     "status-update.ended.json",
     {ORG_PHONE, false, ORG_ASST},
     ROUTE_ASSISTANT,
     ORG_ASST,
     "routed by assistant"},
};

static const struct route_case fallback_cases[] = {
    {"web call without metadata: by assistant",
     "webcall.no-metadata.json",
     {NULL, false, ORG_ASST},
     ROUTE_ASSISTANT,
     ORG_ASST,
     "routed by assistant"},
    {"web call without metadata, unknown assistant",
     "webcall.no-metadata.json",
     {NULL, false, NULL},
     ROUTE_NONE,
     NULL,
     "unknown assistant \"asst-support-0005\""},
    {"nothing to route by",
     "unknown-type.no-identifiers.json",
     {NULL, false, NULL},
     ROUTE_NONE,
     NULL,
     "no phone number, organizationId or assistant"},
    /* Facts for identifiers the message lacks cannot come from the database; even so
     * they must not route an outbound message without metadata or assistant. */
    {"nothing to route by, stray phone fact",
     "unknown-type.no-identifiers.json",
     {ORG_PHONE, true, NULL},
     ROUTE_NONE,
     NULL,
     "no phone number, organizationId or assistant"},
};

#define NELEMS(a) (sizeof(a) / sizeof((a)[0]))

static const char *fixtures_dir(void)
{
	const char *d = getenv("FIXTURES_DIR");

	return d != NULL && *d != '\0' ? d : "tests/fixtures";
}

/* Parses the fixture named file into *m (release with vapi_msg_free()). Returns 0, or -1
 * with the reason printed. */
static int load_fixture(const char *file, struct vapi_msg *m)
{
	char path[1024], err[256];
	size_t len = 0;
	char *body;
	int rc;

	snprintf(path, sizeof(path), "%s/%s", fixtures_dir(), file);
	body = test_slurp(path, &len);
	if (body == NULL) {
		print_error("%s: cannot read (run from the repository root or set "
		            "FIXTURES_DIR)\n",
		            path);
		return -1;
	}
	rc = vapi_msg_parse(body, len, m, err, sizeof(err));
	if (rc != 0)
		print_error("%s: refused: %s\n", path, err);
	free(body);
	return rc;
}

static bool same_org(const char *want, const char *got)
{
	return want == NULL ? got == NULL : got != NULL && strcmp(want, got) == 0;
}

/* Routes the row's fixture with its facts. Returns 1 when the decision differs, printed. */
static int check_case(const struct route_case *c)
{
	/* Stale values from an earlier message: route_resolve() must set every field. */
	struct route_result r = {"stale", ROUTE_PHONE, "stale"};
	struct vapi_msg m;
	int bad = 0;

	if (load_fixture(c->file, &m) != 0)
		return 1;
	route_resolve(&m, &c->facts, &r);
	if (r.rule != c->rule || !same_org(c->org_id, r.org_id) ||
	    strstr(r.reason, c->reason) == NULL) {
		print_error("%s: expected %s %s \"...%s...\", got %s %s \"%s\"\n", c->name,
		            route_rule_name(c->rule), c->org_id ? c->org_id : "(null)", c->reason,
		            route_rule_name(r.rule), r.org_id ? r.org_id : "(null)", r.reason);
		bad = 1;
	}
	vapi_msg_free(&m);
	return bad;
}

static void check_cases(const struct route_case *cases, size_t n)
{
	int bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += check_case(&cases[i]);
	assert_int_equal(bad, 0);
}

static void test_inbound_by_phone(void **state)
{
	(void)state;
	check_cases(inbound_cases, NELEMS(inbound_cases));
}

static void test_outbound_by_metadata(void **state)
{
	(void)state;
	check_cases(metadata_cases, NELEMS(metadata_cases));
}

static void test_assistant_fallback_and_unrouted(void **state)
{
	(void)state;
	check_cases(fallback_cases, NELEMS(fallback_cases));
}

/* Whatever the fixture, a message the database knows nothing about is parked with a
 * reason, never filed somewhere. */
static void test_unknown_everything_is_parked(void **state)
{
	static const struct route_facts none = {NULL, false, NULL};
	char pattern[1024];
	glob_t g;

	(void)state;
	snprintf(pattern, sizeof(pattern), "%s/*.json", fixtures_dir());
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		const char *file = strrchr(g.gl_pathv[i], '/') + 1;
		struct route_result r;
		struct vapi_msg m;

		assert_int_equal(load_fixture(file, &m), 0);
		route_resolve(&m, &none, &r);
		assert_int_equal(r.rule, ROUTE_NONE);
		assert_null(r.org_id);
		assert_true(r.reason[0] != '\0' && strncmp(r.reason, "routed", 6) != 0);
		vapi_msg_free(&m);
	}
	globfree(&g);
}

/* The names are labels in logs and metrics: changing one breaks dashboards. */
static void test_rule_names(void **state)
{
	(void)state;
	assert_string_equal(route_rule_name(ROUTE_NONE), "unrouted");
	assert_string_equal(route_rule_name(ROUTE_PHONE), "phone_number");
	assert_string_equal(route_rule_name(ROUTE_METADATA), "metadata");
	assert_string_equal(route_rule_name(ROUTE_ASSISTANT), "assistant");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_inbound_by_phone),
	    cmocka_unit_test(test_outbound_by_metadata),
	    cmocka_unit_test(test_assistant_fallback_and_unrouted),
	    cmocka_unit_test(test_unknown_everything_is_parked),
	    cmocka_unit_test(test_rule_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
